#!/usr/bin/env bash
# libmesatee-pkcs11 over attested TLS (issue 10): with `policy = FILE` in the
# module's configuration the server must present soft evidence that
# satisfies the policy inside the TLS handshake; a policy with a wrong
# measurement is refused before the PIN leaves the client (no login request
# reaches the server), with the failing rule on stderr; `policy` and `ca`
# together is a configuration error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${MESATEE_PKCS11:?MESATEE_PKCS11 must point at libmesatee-pkcs11.so}"
command -v pkcs11-tool >/dev/null && command -v jq >/dev/null || { echo "skip: pkcs11-tool / jq missing"; exit 77; }
B=$MESATEE_BIN
mt_start_server --level soft
mt_login admin
mt_add_user carol
unset MESATEE_CA
show=$("$B" attest show --output json) || fail "attest show"
meas=$(jq -r .measurements.measurement <<<"$show"); pk=$(jq -r .soft_platform_key <<<"$show")
[ ${#meas} -eq 64 ] && [ ${#pk} -eq 64 ] || fail "attest show: $show"
policy() { # policy FILE MEASUREMENT
  printf '{"mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["%s"]}},
 "soft_platform_keys": ["%s"], "max_evidence_age_s": 86400}\n' "$2" "$pk" > "$1"
}
policy "$MT_WORK/good.json" "$meas"
policy "$MT_WORK/bad.json" "$( [ "${meas:0:1}" = 0 ] && echo "1${meas:1}" || echo "0${meas:1}" )"
conf() { printf 'server = %s\npolicy = %s\nuser = carol\n' "$MESATEE_SERVER" "$1" > "$MT_WORK/p11.conf"; }
PIN=$(cat "$MT_WORK/carol.pw")
export MESATEE_PKCS11_CONF=$MT_WORK/p11.conf
p11() { pkcs11-tool --module "$MESATEE_PKCS11" "$@"; }

conf "$MT_WORK/good.json"
p11 --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 --label att1 > "$MT_WORK/gen.out" 2>&1 ||
  fail "keypairgen over attested TLS: $(cat "$MT_WORK/gen.out")"
printf 'x' | openssl dgst -sha256 -binary > "$MT_WORK/h"
p11 --login --pin "$PIN" --sign --mechanism ECDSA --label att1 -i "$MT_WORK/h" -o "$MT_WORK/sig" >/dev/null 2>&1 ||
  fail "sign over attested TLS"
ok "policy satisfied: login, keypairgen and sign through the module"

logins=$(grep -c 'route="POST /v1/auth/login"' "$MT_WORK/server.log" || true)
conf "$MT_WORK/bad.json"
p11 --login --pin "$PIN" --list-objects > "$MT_WORK/bad.out" 2>&1 && fail "wrong measurement accepted"
grep -q "policy rule 'measurements.gateway.measurement' failed" "$MT_WORK/bad.out" ||
  fail "refusal does not name the rule: $(cat "$MT_WORK/bad.out")"
grep -q CKR_DEVICE_ERROR "$MT_WORK/bad.out" || fail "refusal: $(cat "$MT_WORK/bad.out")"
sleep 0.2
[ "$(grep -c 'route="POST /v1/auth/login"' "$MT_WORK/server.log" || true)" = "$logins" ] ||
  fail "a login request reached the server despite the failed policy"
ok "policy not satisfied: C_Login fails (CKR_DEVICE_ERROR) naming the rule; the PIN never reached the server"

printf 'server = %s\npolicy = %s\nca = %s\n' "$MESATEE_SERVER" "$MT_WORK/good.json" "$MT_DATA/tls/server-cert.pem" > "$MT_WORK/p11.conf"
p11 -L > "$MT_WORK/both.out" 2>&1 && fail "policy + ca accepted"
grep -q "exclude each other" "$MT_WORK/both.out" || fail "policy + ca: $(cat "$MT_WORK/both.out")"
printf 'server = %s\npolicy = %s/nonexistent.json\n' "$MESATEE_SERVER" "$MT_WORK" > "$MT_WORK/p11.conf"
p11 -L > "$MT_WORK/nof.out" 2>&1 && fail "missing policy file accepted"
grep -q "policy" "$MT_WORK/nof.out" || fail "missing policy: $(cat "$MT_WORK/nof.out")"
ok "policy and ca together, or an unreadable policy: C_Initialize fails with the reason"
