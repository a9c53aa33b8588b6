#!/usr/bin/env bash
# Auditor signatures over the policy file: `mesatee policy sign` by two
# auditors; a client given --policy-signers accepts the policy only when the
# required auditors signed its exact bytes (tampered policy, missing .sig,
# missing auditor and threshold cases).
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 0; }
B=$MESATEE_BIN

mt_start_server --level soft
unset MESATEE_CA
show=$("$B" attest show --output json) || fail "attest show"
meas=$(jget "$show" .measurements.measurement)
pk=$(jget "$show" .soft_platform_key)
P=$MT_WORK/policy.json
cat >"$P" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "measurements": {"gateway": {"measurement": ["$meas"]}},
 "soft_platform_keys": ["$pk"]}
EOP
for a in alice bob carol; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/$a.pem" 2>/dev/null
  openssl pkey -in "$MT_WORK/$a.pem" -pubout -out "$MT_WORK/$a.pub" 2>/dev/null
done
cat "$MT_WORK/alice.pub" "$MT_WORK/bob.pub" >"$MT_WORK/ab.pub"
cat "$MT_WORK/alice.pub" "$MT_WORK/bob.pub" "$MT_WORK/carol.pub" >"$MT_WORK/abc.pub"

expect_fail "unsigned policy refused" "no auditor signatures" \
  "$B" --policy "$P" --policy-signers "$MT_WORK/ab.pub" attest verify
"$B" policy sign --key "$MT_WORK/alice.pem" "$P" >/dev/null || fail "policy sign (alice)"
expect_fail "policy signed by one of two auditors refused" "1 of 2" \
  "$B" --policy "$P" --policy-signers "$MT_WORK/ab.pub" attest verify
"$B" --policy "$P" --policy-signers "$MT_WORK/ab.pub" --policy-threshold 1 attest verify >/dev/null ||
  fail "threshold 1 with alice's signature"
"$B" policy sign --key "$MT_WORK/bob.pem" "$P" >/dev/null || fail "policy sign (bob)"
[ "$(grep -c . "$P.sig")" = 3 ] || fail "POLICY.sig should hold a header and two lines"
out=$("$B" --policy "$P" --policy-signers "$MT_WORK/ab.pub" attest verify --output json) ||
  fail "policy signed by both auditors: $out"
[ "$(jget "$out" .policy_satisfied)" = true ] || fail "attest verify: $out"
ok "policy signed by every listed auditor accepted"

export MESATEE_POLICY=$P MESATEE_POLICY_SIGNERS=$MT_WORK/ab.pub
mt_login admin
as admin user list >/dev/null || fail "API call with a signed policy"
ok "a client requiring auditor signatures logs in"

expect_fail "carol did not sign" "2 of 3" as admin user list --policy-signers "$MT_WORK/abc.pub"
cp "$P" "$P.orig"
sed -i 's/"soft_platform_keys"/ "soft_platform_keys"/' "$P"
expect_fail "tampered policy refused" "does not verify" as admin user list
cp "$P.orig" "$P"
as admin user list >/dev/null || fail "restored policy refused"
rm "$P.sig"
expect_fail "missing signature file refused" "no auditor signatures" as admin user list
expect_fail "threshold without signers is a usage error" "needs --policy-signers" \
  env -u MESATEE_POLICY_SIGNERS "$B" --policy "$P" --policy-threshold 1 attest verify
echo "it_policy_sig: all passed"
