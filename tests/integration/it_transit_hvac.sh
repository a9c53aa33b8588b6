#!/usr/bin/env bash
# An unmodified Vault client, Debian's python3-hvac, against the KeyStore
# transit API (issue 10, docs/keystore.md): tests/integration/transit_hvac.py
# runs every transit method hvac has (create, read, list, rotate, configure,
# encrypt, decrypt, rewrap, datakey, sign, verify, hmac, random, hash, delete)
# plus import (through hvac's adapter) and grants, with TLS verified against
# the server's certificate, and the bad-input cases; then libmesatee's
# mesatee_transit_* calls (tests/integration/transit_libmesatee.py).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
"$py" -c 'import hvac, cryptography' 2>/dev/null ||
  { echo "SKIP: /usr/bin/python3 with hvac and cryptography (Debian: python3-hvac python3-cryptography)"; exit 77; }
mt_start_server
as admin login --user admin --password-file "$MT_WORK/admin.pw" >/dev/null
mt_add_user alice
mt_add_user bob
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ALICE_TOKEN=$MT_WORK/alice.token \
MT_BOB_TOKEN=$MT_WORK/bob.token "$py" "$root/tests/integration/transit_hvac.py" ||
  fail "python3-hvac against /v1/transit"
# the Vault features added later (ecdsa-p521, export, backup/restore, trim,
# derived and convergent keys): tests/integration/transit_hvac_vault.py
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ALICE_TOKEN=$MT_WORK/alice.token \
MT_BOB_TOKEN=$MT_WORK/bob.token "$py" "$root/tests/integration/transit_hvac_vault.py" ||
  fail "python3-hvac: export, backup/restore, trim, derived and convergent keys"
# libmesatee's typed transit calls (ctypes), the base of the PKCS#11 module;
# a sanitizer build of the library needs its runtime preloaded into python
# (mt_sanitizer_tools in lib.sh)
mt_sanitizer_tools "${MESATEE_LIB:?MESATEE_LIB must point at libmesatee.so}"
LD_PRELOAD=${MT_TOOL_PRELOAD:-} ASAN_OPTIONS=${MT_TOOL_ASAN:-${ASAN_OPTIONS:-}} \
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ALICE_TOKEN=$MT_WORK/alice.token \
MT_BOB_TOKEN=$MT_WORK/bob.token MESATEE_LIB=$MESATEE_LIB \
  "$py" "$root/tests/integration/transit_libmesatee.py" || fail "libmesatee transit calls"
# every request was audited with its route, and metered
as admin audit list --limit 1000 > "$MT_WORK/audit.txt"
grep -q "POST /v1/transit/encrypt/{key}" "$MT_WORK/audit.txt" || fail "encrypt is not in the audit log"
grep -q "GET /v1/transit/keys" "$MT_WORK/audit.txt" || fail "LIST is not in the audit log"
ok "transit requests are audited"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$MT_WORK/metrics.txt"
grep -q 'route="POST /v1/transit/sign/{key}"' "$MT_WORK/metrics.txt" || fail "sign is not metered"
ok "transit requests are metered"
# X-Vault-Token and LIST are honoured on /v1/transit/ only: elsewhere the
# gateway behaves as before (no token: 401; LIST: 405)
tok=$(cat "$MT_WORK/alice.token")
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$MESATEE_CA" -H "X-Vault-Token: $tok" \
  "$MESATEE_SERVER/v1/users/me")
[ "$code" = 401 ] || fail "X-Vault-Token accepted outside /v1/transit/: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$MESATEE_CA" -X LIST -H "X-Vault-Token: $tok" \
  "$MESATEE_SERVER/v1/files")
[ "$code" = 405 ] || fail "LIST outside /v1/transit/: $code"
body=$(curl -sS --cacert "$MESATEE_CA" -X LIST -H "X-Vault-Token: $tok" "$MESATEE_SERVER/v1/transit/keys")
echo "$body" | jq -e '.data.keys | index("k-ecdsa-p256")' >/dev/null || fail "LIST with curl: $body"
body=$(curl -sS --cacert "$MESATEE_CA" -X LIST -H "X-Vault-Token: nope" "$MESATEE_SERVER/v1/transit/keys")
echo "$body" | jq -e '.errors | length == 1' >/dev/null || fail "a bad token on /v1/transit/: no Vault errors: $body"
ok "X-Vault-Token and LIST only on /v1/transit/; Vault's errors on a refused token"
# refused requests are audited too (bob's probe of alice's key: 404)
as admin --output json audit list --limit 1000 > "$MT_WORK/audit.json"
jq -e '[.entries[] | select(.actor == "bob" and .status == 404 and (.action | startswith("GET /v1/transit/keys/")))] | length > 0' \
  "$MT_WORK/audit.json" >/dev/null || fail "bob's refused read of alice's key is not audited"
ok "refused transit requests are audited"
