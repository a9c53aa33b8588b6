#!/usr/bin/env bash
# Transit operations under concurrency (docs/keystore.md, "Performance"):
# tests/integration/transit_race.py drives encrypt/decrypt/rewrap from
# several keep-alive connections while other connections rotate the key,
# change its min_decryption_version / min_encryption_version and delete and
# re-create a key in use, and checks every answer (no stale version after a
# change is answered, every plaintext back, a deleted key unusable at once).
# Afterwards the audit log holds exactly one entry per request with its
# status (the request threads and group commit lose none), in one chain
# without gaps that `mesatee audit verify` accepts.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 (the CLI) not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
DB=$MT_DATA/mesatee.db
q() { sqlite3 -batch "$DB" "$1"; }

mt_start_server --level soft
mt_login admin
mt_add_user alice
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ALICE_TOKEN=$MT_WORK/alice.token \
MT_COUNTS=$MT_WORK/counts.json "$py" "$root/tests/integration/transit_race.py" ||
  fail "transit operations under concurrency"

total=0
for st in $(jq -r 'keys[]' "$MT_WORK/counts.json"); do
  want=$(jq -r --arg s "$st" '.[$s]' "$MT_WORK/counts.json")
  got=$(q "SELECT count(*) FROM audit WHERE action LIKE '% /v1/transit/%' AND status=$st")
  [ "$got" = "$want" ] || fail "$want transit requests answered $st but $got audit entries"
  total=$((total + want))
done
[ "$(q "SELECT count(*) FROM audit WHERE action LIKE '% /v1/transit/%'")" = "$total" ] ||
  fail "audit entries of transit requests the client did not make"
[ "$(q "SELECT count(*) FROM audit WHERE actor='-' AND status=401 AND action LIKE '% /v1/transit/%'")" = 5 ] ||
  fail "refused tokens not audited as actor -"
[ "$(q "SELECT count(*) = max(seq) - min(seq) + 1 FROM audit")" = 1 ] || fail "audit seq has gaps"
ok "$total transit requests, one audit entry each with its status; seq without gaps"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$MT_WORK/metrics.txt"
grep -q '^mesatee_audit_failures_total 0$' "$MT_WORK/metrics.txt" || fail "audit failures counted"
n=$(awk '/^mesatee_http_requests_total\{.*status="401"\} / {s += $NF} END {print s + 0}' \
  "$MT_WORK/metrics.txt")
[ "$n" = 5 ] || fail "refused tokens not metered ($n): $(grep 'status="401"' "$MT_WORK/metrics.txt")"
ok "metered, no audit failure"
# The token of a small transit body is checked by the request thread
# (Bearer error="invalid_token"); a body over 64 KiB, or one whose client
# asks for Expect: 100-continue, still has its token checked at the head,
# before its body is read (plain "Bearer", connection closed).
tok=$(cat "$MT_WORK/alice.token")
bad=${tok%?}$([ "${tok: -1}" = 0 ] && echo 1 || echo 0)
post() { curl -sS -o "$MT_WORK/post.out" -D "$MT_WORK/post.hdr" -w '%{http_code}' \
  --cacert "$MESATEE_CA" -H "X-Vault-Token: $bad" "$@" "$MESATEE_SERVER/v1/transit/encrypt/race"; }
[ "$(post -d '{"plaintext":"aGk="}')" = 401 ] || fail "small body, bad token: not 401"
grep -qi '^WWW-Authenticate: Bearer error="invalid_token"' "$MT_WORK/post.hdr" ||
  fail "small body, bad token: $(cat "$MT_WORK/post.hdr")"
head -c 70000 /dev/zero | tr '\0' 'a' > "$MT_WORK/big.body"
[ "$(post --data-binary @"$MT_WORK/big.body")" = 401 ] || fail "70000-byte body, bad token: not 401"
grep -qi '^WWW-Authenticate: Bearer.$' "$MT_WORK/post.hdr" ||
  fail "70000-byte body, bad token: not refused at the head: $(cat "$MT_WORK/post.hdr")"
[ "$(post -H 'Expect: 100-continue' -d '{"plaintext":"aGk="}')" = 401 ] ||
  fail "Expect: 100-continue, bad token: not 401"
grep -qi '^WWW-Authenticate: Bearer.$' "$MT_WORK/post.hdr" ||
  fail "Expect: 100-continue, bad token: not refused at the head: $(cat "$MT_WORK/post.hdr")"
[ "$(q "SELECT count(*) FROM audit WHERE actor='-' AND status=401 AND action LIKE '% /v1/transit/%'")" = 8 ] ||
  fail "the three refused tokens are not audited"
ok "bad tokens: small bodies refused by the request thread, large or Expect ones at the head; audited"
mt_stop_server
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" >/dev/null || fail "offline audit verify"
ok "offline audit verify: the chain is intact"
