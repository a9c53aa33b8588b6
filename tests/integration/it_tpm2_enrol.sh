#!/usr/bin/env bash
# TPM attestation-key trust by enrolment, end to end (issue 8, item 1): a
# swtpm with an EK certificate from a local CA (swtpm_setup + swtpm_localca),
# `mesatee attest tpm-enroll` (credential activation against the TPM) writes
# a signed enrolment record, in one step or split between the TPM host and
# the enroller (tpm-request, tpm-challenge, tpm-activate, tpm-enroll --state); a policy trusting the enroller verifies the
# server and logs in; a policy naming only an EK CA is refused at load (it
# used to accept any AK whose evidence carried a public EK certificate); a
# record from an untrusted enroller is refused; and `attest verify-evidence
# --policy` on the server's certificate reaches the same verdicts as the live
# client (one code path). Skips when swtpm, swtpm_setup or swtpm_localca,
# jq or openssl are absent.
source "$(dirname "$0")/lib.sh"
for t in jq openssl swtpm swtpm_setup swtpm_localca; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed (Debian: jq openssl swtpm swtpm-tools)"; exit 0; }
done
B=$MESATEE_BIN

# A local EK CA and a TPM whose EK certificate it issued.
mkdir -p "$MT_WORK/ca" "$MT_WORK/tpm"
chmod 700 "$MT_WORK/ca"
cat >"$MT_WORK/setup.conf" <<EOF
create_certs_tool = swtpm_localca
create_certs_tool_config = $MT_WORK/localca.conf
create_certs_tool_options = $MT_WORK/localca.options
active_pcr_banks = sha256
EOF
cat >"$MT_WORK/localca.conf" <<EOF
statedir = $MT_WORK/ca
signingkey = $MT_WORK/ca/signkey.pem
issuercert = $MT_WORK/ca/issuercert.pem
certserial = $MT_WORK/ca/certserial
EOF
printf -- '--platform-manufacturer mesatee\n--platform-version 2.1\n--platform-model test\n' \
  >"$MT_WORK/localca.options"
swtpm_setup --tpm2 --tpmstate "$MT_WORK/tpm" --create-ek-cert --create-platform-cert \
  --lock-nvram --overwrite --config "$MT_WORK/setup.conf" >"$MT_WORK/swtpm_setup.log" 2>&1 ||
  fail "swtpm_setup: $(cat "$MT_WORK/swtpm_setup.log")"
cat "$MT_WORK/ca/issuercert.pem" "$MT_WORK/ca/swtpm-localca-rootca-cert.pem" >"$MT_WORK/ek-ca.pem"
mt_start_swtpm "$MT_WORK/tpm"
TCTI=$MT_TCTI

# Enrol: credential activation against the TPM, record signed by the enroller.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/enroller.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/other.pem" 2>/dev/null
out=$("$B" --output json attest tpm-enroll --tpm2-tcti "$TCTI" --ek-ca "$MT_WORK/ek-ca.pem" \
  --key "$MT_WORK/enroller.pem" --out "$MT_WORK/rec.json") || fail "tpm-enroll: $out"
ak=$(jget "$out" .tpm2_ak); enroller=$(jget "$out" .tpm2_enroller)
[ ${#ak} -eq 64 ] && [ ${#enroller} -eq 64 ] || fail "tpm-enroll printed no hashes: $out"
[ "$(jq -r .tpm2_ak "$MT_WORK/rec.json")" = "$ak" ] || fail "record's tpm2_ak differs"
out=$("$B" --output json attest tpm-enroll --tpm2-tcti "$TCTI" --ek-ca "$MT_WORK/other.pem" \
  --key "$MT_WORK/other.pem" --out "$MT_WORK/bad.json" 2>&1) && fail "enrolment against a wrong EK CA succeeded"
[ ! -e "$MT_WORK/bad.json" ] || fail "a failed enrolment wrote a record"
ok "tpm-enroll: credential activation, signed record (wrong EK CA refused, nothing written)"
"$B" --output json attest tpm-enroll --tpm2-tcti "$TCTI" --ek-ca "$MT_WORK/ek-ca.pem" \
  --key "$MT_WORK/other.pem" --out "$MT_WORK/other-rec.json" >/dev/null || fail "second enrolment"
# Split enrolment: the challenge is made and checked on the enroller's side;
# the TPM host only sees public data and the challenge.
"$B" attest tpm-request --tpm2-tcti "$TCTI" --out "$MT_WORK/req.json" >/dev/null || fail "tpm-request"
"$B" attest tpm-challenge "$MT_WORK/req.json" --ek-ca "$MT_WORK/ek-ca.pem" \
  --state "$MT_WORK/state.json" --out "$MT_WORK/chal.json" >/dev/null || fail "tpm-challenge"
[ "$(stat -c %a "$MT_WORK/state.json")" = 600 ] || fail "enrolment state is not mode 0600"
"$B" attest tpm-activate "$MT_WORK/chal.json" --tpm2-tcti "$TCTI" --out "$MT_WORK/ans.json" \
  >/dev/null || fail "tpm-activate"
out=$("$B" --output json attest tpm-enroll --state "$MT_WORK/state.json" --answer "$MT_WORK/ans.json" \
  --key "$MT_WORK/enroller.pem" --ek-ca "$MT_WORK/ek-ca.pem" --out "$MT_WORK/rec2.json") ||
  fail "tpm-enroll --state: $out"
[ "$(jget "$out" .tpm2_ak)" = "$ak" ] || fail "split enrolment: another AK: $out"
[ ! -e "$MT_WORK/state.json" ] || fail "the enrolment state was not removed"
expect_fail "split enrolment: the state is used once" "enrolment state" \
  "$B" attest tpm-enroll --state "$MT_WORK/state.json" --answer "$MT_WORK/ans.json" \
  --key "$MT_WORK/enroller.pem" --out "$MT_WORK/rec3.json"
"$B" attest tpm-challenge "$MT_WORK/req.json" --ek-ca "$MT_WORK/ek-ca.pem" \
  --state "$MT_WORK/state.json" --out "$MT_WORK/chal.json" >/dev/null || fail "tpm-challenge 2"
printf '{"answer": "%064d"}' 0 >"$MT_WORK/guess.json"
expect_fail "split enrolment: a guessed answer is refused" "credential activation failed" \
  "$B" attest tpm-enroll --state "$MT_WORK/state.json" --answer "$MT_WORK/guess.json" \
  --key "$MT_WORK/enroller.pem" --out "$MT_WORK/rec3.json"
[ ! -e "$MT_WORK/rec3.json" ] && [ ! -e "$MT_WORK/state.json" ] || fail "refused enrolment left files"
ok "split enrolment (tpm-request, tpm-challenge, tpm-activate, tpm-enroll --state)"
mt_stop_swtpm
mt_start_swtpm "$MT_WORK/tpm"   # the server gets the TPM to itself
TCTI=$MT_TCTI

mt_start_server --level tpm2 --tpm2-tcti "$TCTI"
unset MESATEE_CA
pcr=$("$B" measure --level tpm2)
show=$("$B" attest show --output json) || fail "attest show: $show"
[ "$(jget "$show" .tpm2_ak)" = "$ak" ] || fail "server AK differs from the enrolled one: $show"

policy() { # policy FILE EXTRA-JSON-MEMBERS
  cat >"$1" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["tpm2"], "min_level": "tpm2",
 "measurements": {"gateway": {"pcr23": ["$pcr"]}}$2}
EOP
}
policy "$MT_WORK/enrolled.json" ", \"tpm2_ek_ca\": \"ek-ca.pem\", \"tpm2_enrollers\": [\"$enroller\"],
 \"tpm2_enrolments\": [\"rec.json\"], \"required_checks\": {\"tpm2\": [\"ek_chain\"]}"
policy "$MT_WORK/split.json" ", \"tpm2_ek_ca\": \"ek-ca.pem\", \"tpm2_enrollers\": [\"$enroller\"],
 \"tpm2_enrolments\": [\"rec2.json\"], \"required_checks\": {\"tpm2\": [\"ek_chain\"]}"
policy "$MT_WORK/ekca-only.json" ", \"tpm2_ek_ca\": \"ek-ca.pem\""
policy "$MT_WORK/untrusted.json" ", \"tpm2_enrollers\": [\"$enroller\"],
 \"tpm2_enrolments\": [\"rec.json\", \"other-rec.json\"]"
policy "$MT_WORK/pinned-needs-ek.json" ", \"tpm2_aks\": [\"$ak\"], \"required_checks\": {\"tpm2\": [\"ek_chain\"]}"

out=$("$B" --policy "$MT_WORK/enrolled.json" attest verify --output json) || fail "attest verify: $out"
[ "$(jget "$out" .policy_satisfied)" = true ] || fail "attest verify: $out"
[ "$(jget "$out" '.checked | index("ek_chain") != null')" = true ] || fail "no ek_chain in: $out"
MESATEE_POLICY=$MT_WORK/enrolled.json mt_login admin
MESATEE_POLICY=$MT_WORK/enrolled.json as admin user list >/dev/null || fail "user list, enrolled AK"
out=$("$B" --policy "$MT_WORK/split.json" attest verify --output json) || fail "attest verify, split record: $out"
ok "a policy trusting the enrolment record verifies the server (ek_chain) and logs in"

expect_fail "a policy with only tpm2_ek_ca is refused at load" \
  "'tpm2_ek_ca' alone establishes no trust" "$B" --policy "$MT_WORK/ekca-only.json" attest verify
expect_fail "a record signed by an untrusted enroller refuses the policy" \
  "not a trusted enroller" "$B" --policy "$MT_WORK/untrusted.json" attest verify
expect_fail "a pin does not satisfy required ek_chain" \
  "policy rule 'required_checks' failed" "$B" --policy "$MT_WORK/pinned-needs-ek.json" attest verify

# verify-evidence --policy on the server's certificate: the same verdicts.
hp=${MESATEE_SERVER#https://}; hp=${hp%%/*}
openssl s_client -connect "$hp" </dev/null 2>/dev/null | openssl x509 -outform PEM >"$MT_WORK/cert.pem" ||
  fail "cannot fetch the server certificate"
out=$("$B" --policy "$MT_WORK/enrolled.json" --output json attest verify-evidence --kind ratls-cert \
  "$MT_WORK/cert.pem") || fail "verify-evidence, enrolled policy: $out"
[ "$(jget "$out" .tpm2_ak)" = "$ak" ] || fail "verify-evidence: $out"
[ "$(jget "$out" '.checked | index("ek_chain") != null')" = true ] || fail "verify-evidence: no ek_chain: $out"
expect_fail "verify-evidence: ek_ca-only policy refused at load" \
  "'tpm2_ek_ca' alone establishes no trust" \
  "$B" --policy "$MT_WORK/ekca-only.json" attest verify-evidence --kind ratls-cert "$MT_WORK/cert.pem"
expect_fail "verify-evidence: pinned policy requiring ek_chain fails closed" \
  "policy rule 'required_checks' failed" \
  "$B" --policy "$MT_WORK/pinned-needs-ek.json" attest verify-evidence --kind ratls-cert "$MT_WORK/cert.pem"
expect_fail "verify-evidence: --collateral with --policy is refused" "--collateral cannot be used" \
  "$B" --policy "$MT_WORK/enrolled.json" attest verify-evidence --kind ratls-cert \
  --collateral "$MT_WORK" "$MT_WORK/cert.pem"
expect_fail "verify-evidence: --expect-report-data checks the certificate's evidence" \
  "policy rule 'expected_report_data' failed" \
  "$B" --policy "$MT_WORK/enrolled.json" attest verify-evidence --kind ratls-cert \
  --expect-report-data 00 "$MT_WORK/cert.pem"
rd=$(jget "$out" .report_data)
"$B" --policy "$MT_WORK/enrolled.json" attest verify-evidence --kind ratls-cert \
  --expect-report-data "$rd" "$MT_WORK/cert.pem" >/dev/null || fail "--expect-report-data with the right value"
ok "verify-evidence --policy agrees with the live client (--expect-report-data too)"

# The executor API: an executor policy that cannot establish AK trust stops
# the scheduler at start (it used to accept a forged executor).
sed 's/"gateway"/"executor"/; s/"mesatee_policy": 1,/"mesatee_policy": 1, "role": "executor",/' \
  "$MT_WORK/ekca-only.json" >"$MT_WORK/exec-ekca-only.json"
mt_stop_server
expect_fail "serve --executor-policy with only tpm2_ek_ca refused at start" \
  "'tpm2_ek_ca' alone establishes no trust" \
  timeout 120 "$B" serve --data-dir "$MT_WORK/exec-data" --listen 127.0.0.1:0 \
  --admin-password-file "$MT_WORK/admin.pw" --remote-executors \
  --executor-listen 127.0.0.1:0 --executor-policy "$MT_WORK/exec-ekca-only.json"
echo "it_tpm2_enrol: all passed"
