#!/usr/bin/env bash
# Level tpm2 end to end: starts swtpm (software TPM, no EK certificate
# needed), `mesatee serve --level tpm2 --tpm2-tcti swtpm:...`, then checks
# that the certificate carries a TPM quote bound to the TLS key, that
# `mesatee measure --level tpm2` predicts the application PCR, that a policy
# with the right PCR and pinned AK logs in, and that a wrong PCR value or a
# wrong AK is refused inside the handshake. Skips when swtpm is absent.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v swtpm >/dev/null || { echo "SKIP: swtpm not installed (Debian: apt install swtpm)"; exit 0; }
B=$MESATEE_BIN

mt_start_swtpm        # lib.sh: free port pair, state in $MT_WORK/tpm, stopped at exit
TCTI=$MT_TCTI

mt_start_server --level tpm2 --tpm2-tcti "$TCTI" --cert-renew-s 1
unset MESATEE_CA

show=$("$B" attest show --output json) || fail "attest show: $show"
[ "$(jget "$show" .kind)" = tpm2 ] || fail "attest show: kind is not tpm2: $show"
[ "$(jget "$show" .level)" = 3 ] || fail "attest show: level is not 3: $show"
pcr=$(jget "$show" .measurements.pcr23)
ak=$(jget "$show" .tpm2_ak)
[ ${#pcr} -eq 64 ] && [ ${#ak} -eq 64 ] || fail "attest show: no pcr23/tpm2_ak: $show"
[ "$(jget "$show" .ratls.tag)" = 1836343554 ] || fail "attest show: not the tpm2 RA-TLS tag: $show"
ok "attest show prints the TPM claims (pcr23, tpm2_ak)"

[ "$("$B" measure --level tpm2)" = "$pcr" ] || fail "measure --level tpm2 differs from pcr23 $pcr"
[ "$("$B" measure --level tpm2 --workers 3)" != "$pcr" ] || fail "measure ignores the settings"
[ "$("$B" measure --level soft)" != "$pcr" ] || fail "measure tpm2 equals soft"
ok "mesatee measure --level tpm2 predicts the application PCR"

policy() { # policy FILE PCR AK
  cat >"$1" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["tpm2"], "min_level": "tpm2",
 "measurements": {"gateway": {"pcr23": ["$2"]}},
 "tpm2_aks": ["$3"], "max_evidence_age_s": 3600}
EOP
}
flip() { [ "${1:0:1}" = 0 ] && echo "1${1:1}" || echo "0${1:1}"; }
policy "$MT_WORK/good.json" "$pcr" "$ak"
policy "$MT_WORK/bad-pcr.json" "$(flip "$pcr")" "$ak"
policy "$MT_WORK/bad-ak.json" "$pcr" "$(flip "$ak")"

out=$("$B" --policy "$MT_WORK/good.json" attest verify --output json) || fail "attest verify: $out"
[ "$(jget "$out" .policy_satisfied)" = true ] || fail "attest verify: $out"
export MESATEE_POLICY=$MT_WORK/good.json
mt_login admin
as admin user list >/dev/null || fail "user list with the matching tpm2 policy"
ok "a client with the matching tpm2 policy logs in and calls the API"

# Renewal at level tpm2: a fresh quote for a fresh key every second.
# (polled, 60 s at most: a renewal with a quote from swtpm can lag behind
# its one-second timer on a loaded machine)
spki1=$(jget "$show" .ratls.spki_sha256)
for _ in $(seq 120); do
  spki2=$("$B" attest show --output json | jq -r .ratls.spki_sha256)
  [ "$spki1" != "$spki2" ] && break
  sleep 0.5
done
[ "$spki1" != "$spki2" ] || fail "tpm2: the TLS key was not renewed"
as admin user list >/dev/null || fail "tpm2: renewed certificate refused"
ok "tpm2 certificate renewed with a fresh quote and still accepted"

MESATEE_POLICY=$MT_WORK/bad-pcr.json expect_fail "wrong PCR value refused" \
  "policy rule 'measurements.gateway.pcr23' failed" as admin user list
MESATEE_POLICY=$MT_WORK/bad-ak.json expect_fail "unpinned TPM AK refused" \
  "policy rule 'tpm2_aks' failed" as admin user list
cat >"$MT_WORK/soft-only.json" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "measurements": {"gateway": {"measurement": ["$pcr"]}},
 "soft_platform_keys": ["$ak"]}
EOP
MESATEE_POLICY=$MT_WORK/soft-only.json expect_fail "tpm2 server refused by a soft-only policy" \
  "policy rule 'allowed_kinds' failed" as admin user list
cat >"$MT_WORK/no-pin.json" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["tpm2"], "measurements": {"gateway": {"pcr23": ["$pcr"]}}}
EOP
expect_fail "a tpm2 policy without a pinned AK is rejected" "tpm2_aks" \
  "$B" --policy "$MT_WORK/no-pin.json" attest verify

# Another setting: the PCR (and so the policy) no longer matches. (The
# KeyStore releases keys only to allowed builds, issue 10: allowed first.)
as admin admin release allow "$("$B" measure --level tpm2 --workers 3 --output json | jq -r .measurement)" \
  >/dev/null || fail "release allow of the changed settings"
mt_stop_server
mt_start_server --level tpm2 --tpm2-tcti "$TCTI" --workers 3
unset MESATEE_CA
expect_fail "tpm2 server with changed settings refused" "measurements.gateway.pcr23" \
  as admin user list

# An unreachable TPM fails at start with a message naming the TCTI.
mt_stop_server
if "$B" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 --level tpm2 \
  --tpm2-tcti "swtpm:host=127.0.0.1,port=1" >"$MT_WORK/bad.log" 2>&1; then
  fail "serve with an unreachable TPM started"
fi
grep -q "TCTI" "$MT_WORK/bad.log" || fail "unreachable TPM: message does not name the TCTI: $(cat "$MT_WORK/bad.log")"
ok "unreachable TPM refused at start naming the TCTI"
echo "it_attest_tpm2: all passed"
