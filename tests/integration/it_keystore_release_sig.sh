#!/usr/bin/env bash
# Issue 10: auditor signatures over KeyStore release-policy changes. The
# server is started with two auditor keys and threshold 2 (recorded in the
# sealed KeyStore): a change signed by one auditor is refused (403, nothing
# changed), by both it takes effect; a signature over another document (an
# earlier draft, another measurement) and garbage signature files are
# refused; the recorded signer set stays in force when the flags are dropped
# and cannot be swapped by restarting with other keys; bad flag values.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 0; }
B=$MESATEE_BIN
for a in alice bob carol; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/$a.pem" 2>/dev/null
  openssl pkey -in "$MT_WORK/$a.pem" -pubout -out "$MT_WORK/$a.pub" 2>/dev/null
done
cat "$MT_WORK/alice.pub" "$MT_WORK/bob.pub" >"$MT_WORK/ab.pub"
cat "$MT_WORK/alice.pub" "$MT_WORK/carol.pub" >"$MT_WORK/ac.pub"
openssl genpkey -algorithm ED25519 -out "$MT_WORK/ed.pem" 2>/dev/null
openssl pkey -in "$MT_WORK/ed.pem" -pubout -out "$MT_WORK/ed.pub" 2>/dev/null

# bad flag values: nothing starts, the message names the problem
serve_fail() { # DESC WANT ARGS...
  local desc=$1 want=$2; shift 2
  mkdir -p "$MT_DATA"
  [ -f "$MT_WORK/admin.pw" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/admin.pw"
  expect_fail "$desc" "$want" timeout 60 "$B" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 \
    --admin-password-file "$MT_WORK/admin.pw" --level soft "$@"
}
serve_fail "--release-threshold 3 with two keys refused" "more than the 2 auditor keys" \
  --release-signers "$MT_WORK/ab.pub" --release-threshold 3
serve_fail "--release-threshold 0 refused" "release-threshold" \
  --release-signers "$MT_WORK/ab.pub" --release-threshold 0
serve_fail "--release-threshold garbage refused" "release-threshold" \
  --release-signers "$MT_WORK/ab.pub" --release-threshold two
serve_fail "--keystore-collateral that is not a directory refused" "keystore-collateral: not a readable directory" \
  --keystore-collateral "$MT_WORK/ab.pub"
serve_fail "--keystore-collateral that does not exist refused" "keystore-collateral: not a readable directory" \
  --keystore-collateral "$MT_WORK/no-such-dir"
serve_fail "--release-signers: an Ed25519 key refused" "not a P-256 public key" \
  --release-signers "$MT_WORK/ed.pub"
printf 'not a pem\n' > "$MT_WORK/junk.pub"
serve_fail "--release-signers: a file without keys refused" "holds no PEM public key" \
  --release-signers "$MT_WORK/junk.pub"
serve_fail "--release-signers: a missing file refused" "--release-signers" \
  --release-signers "$MT_WORK/absent.pub"

mt_start_server --level soft --release-signers "$MT_WORK/ab.pub" --release-threshold 2
mt_login admin
pol=$(as admin admin release show --output json) || fail "release show: $pol"
[ "$(jget "$pol" .release_signers.keys)" = 2 ] && [ "$(jget "$pol" .release_signers.threshold)" = 2 ] ||
  fail "release show does not report the signers: $pol"
SEQ0=$(jget "$pol" .seq)
M=$(printf 'release-sig-test-build' | sha256sum | cut -d' ' -f1)
M2=$(printf 'another build' | sha256sum | cut -d' ' -f1)
unchanged() { local p; p=$(as admin admin release show --output json) || fail "release show: $p"
  [ "$(jget "$p" .seq)" = "$SEQ0" ] && ! jget "$p" '.measurements[]' | grep -q "$M" ||
    fail "$1: the policy changed: $p"; }

expect_fail "allow without signatures refused (403)" "needs 2 auditor signatures" \
  as admin admin release allow "$M"
unchanged "unsigned allow"
D=$MT_WORK/draft.json
as admin admin release draft allow "$M" > "$D" || fail "release draft: $(cat "$D")"
[ "$(jq -r .seq "$D")" = $((SEQ0 + 1)) ] && jq -r '.measurements[]' "$D" | grep -qx "$M" ||
  fail "draft does not hold the change: $(cat "$D")"
"$B" policy sign --key "$MT_WORK/alice.pem" "$D" >/dev/null || fail "policy sign (alice)"
expect_fail "allow with one of two signatures refused" "1 of 2 needed are valid" \
  as admin admin release allow "$M" --signatures "$D.sig"
unchanged "allow signed by one auditor"
# carol is not a configured auditor: her signature does not count
cp "$D.sig" "$MT_WORK/ac.sig"
"$B" policy sign --key "$MT_WORK/carol.pem" "$D" >/dev/null || fail "policy sign (carol)"
expect_fail "a non-auditor's signature does not count" "1 of 2 needed are valid" \
  as admin admin release allow "$M" --signatures "$D.sig"
# a signature over another document: the same two auditors sign a draft for M2
D2=$MT_WORK/draft2.json
as admin admin release draft allow "$M2" > "$D2" || fail "release draft 2"
"$B" policy sign --key "$MT_WORK/alice.pem" "$D2" >/dev/null && "$B" policy sign --key "$MT_WORK/bob.pem" "$D2" >/dev/null ||
  fail "policy sign of draft 2"
expect_fail "signatures over another document refused" "signature does not verify" \
  as admin admin release allow "$M" --signatures "$D2.sig"
unchanged "allow with signatures over another document"
# garbage signature files
printf 'garbage\n' > "$MT_WORK/g1.sig"
expect_fail "garbage signature file refused" "signatures" as admin admin release allow "$M" --signatures "$MT_WORK/g1.sig"
printf 'mesatee-policy-sig-v1\nzz not-base64\n' > "$MT_WORK/g2.sig"
expect_fail "malformed signature line refused" "signatures" as admin admin release allow "$M" --signatures "$MT_WORK/g2.sig"
head -c 3000 /dev/urandom > "$MT_WORK/g3.sig"
expect_fail "binary signature file refused" "signatures" as admin admin release allow "$M" --signatures "$MT_WORK/g3.sig"
expect_fail "missing signature file refused" "--signatures" as admin admin release allow "$M" --signatures "$MT_WORK/absent.sig"
expect_fail "release draft takes no --signatures" "no --signatures" as admin admin release draft allow "$M" --signatures "$D.sig"
expect_fail "release draft of a bad value refused" "64 lowercase hex" as admin admin release draft allow XYZ
unchanged "garbage signatures"
# now alice and bob sign the right document: accepted
"$B" policy sign --key "$MT_WORK/bob.pem" "$D" >/dev/null || fail "policy sign (bob)"
out=$(as admin admin release allow "$M" --signatures "$D.sig" --output json) || fail "allow with both signatures: $out"
[ "$(jget "$out" .changed)" = true ] && [ "$(jget "$out" .seq)" = $((SEQ0 + 1)) ] ||
  fail "allow with both signatures: $out"
grep -q "KeyStore release policy: allowed measurement $M (auditor signatures checked)" "$MT_WORK/server.log" ||
  fail "the signed change is not logged"
ok "allow signed by both auditors takes effect"
# replaying the same signatures for another change fails (seq moved on)
expect_fail "replayed signatures refused" "signature does not verify" \
  as admin admin release revoke "$M" --signatures "$D.sig"
# a signed revoke
R=$MT_WORK/revoke.json
as admin admin release draft revoke "$M" > "$R" || fail "draft revoke"
"$B" policy sign --key "$MT_WORK/alice.pem" "$R" >/dev/null && "$B" policy sign --key "$MT_WORK/bob.pem" "$R" >/dev/null ||
  fail "sign revoke"
as admin admin release revoke "$M" --signatures "$R.sig" >/dev/null || fail "signed revoke"
pol=$(as admin admin release show --output json)
! jget "$pol" '.measurements[]' | grep -q "$M" || fail "signed revoke left $M: $pol"
ok "signed revoke takes effect; replayed signatures refused"
audit=$(as admin audit list --limit 1000 --output json) || fail "audit list: $audit"
n403=$(jget "$audit" "[.entries[] | select(.action == \"POST /v1/admin/release-policy/allow\" and .object == \"measurement:$M\" and .status == 403)] | length")
n200=$(jget "$audit" "[.entries[] | select(.action == \"POST /v1/admin/release-policy/allow\" and .object == \"measurement:$M\" and .status == 200)] | length")
[ "$n403" -ge 4 ] && [ "$n200" = 1 ] || fail "audit: refused ($n403) and accepted ($n200) changes of $M: $audit"
ok "refused and accepted release-policy changes are audited"
mt_stop_server

# the recorded signers stay in force without the flags; another set is refused
mt_start_server --level soft
mt_login admin
expect_fail "signers recorded in the KeyStore still apply without --release-signers" \
  "needs 2 auditor signatures" as admin admin release allow "$M"
mt_stop_server
serve_fail "restart with another signer set refused" "differ from the ones recorded" \
  --release-signers "$MT_WORK/ac.pub"
serve_fail "restart with another threshold refused" "differ from the ones recorded" \
  --release-signers "$MT_WORK/ab.pub" --release-threshold 1
ok "the signer set cannot be dropped or swapped by the host"

# Rules of the hardware levels are refused at soft, with the reason; their
# values are checked before anything is sent (no input echoed)
mt_start_server --level soft
mt_login admin
expect_fail "min_svn at level soft refused" "not a security version of level soft" \
  as admin admin release allow --kind min_svn isv_svn=3
expect_fail "mrsigner at level soft refused" "level sgx only" \
  as admin admin release allow --kind mrsigner "$M"
expect_fail "isv_prod_id at level soft refused" "level sgx only" \
  as admin admin release allow --kind isv_prod_id 3
for bad in "min_svn GARBAGE=1" "min_svn isv_svn=GARBAGE" "min_svn isv_svn=-1" "isv_prod_id GARBAGE" \
           "isv_prod_id 65536" "mrsigner GARBAGE" "nokind GARBAGE"; do
  set -- $bad
  out=$(as admin admin release allow --kind "$1" "$2" 2>&1) && fail "release allow --kind $bad accepted"
  ! grep -q GARBAGE <<<"$out" || fail "the error echoes the value: $out"
done
# the same garbage straight to the REST API (the CLI's checks bypassed): 400,
# the value not echoed, nothing changed
TOK=$(jq -r .token "$MT_WORK/admin.token" 2>/dev/null || cat "$MT_WORK/admin.token")
SEQ1=$(jget "$(as admin admin release show --output json)" .seq)
for body in '{"kind":"min_svn","value":"GARBAGE=1"}' '{"kind":"min_svn","value":"isv_svn=GARBAGE"}' \
            '{"kind":"isv_prod_id","value":"GARBAGE"}' '{"kind":"GARBAGE","value":"1"}' \
            '{"kind":"mrsigner","value":"GARBAGE"}'; do
  code=$(curl -sS -o "$MT_WORK/api.out" -w '%{http_code}' --insecure -H "Authorization: Bearer $TOK" \
    -X POST --data "$body" "$MESATEE_SERVER/v1/admin/release-policy/allow")
  [ "$code" = 400 ] || fail "REST allow $body: HTTP $code $(cat "$MT_WORK/api.out")"
  ! grep -q GARBAGE "$MT_WORK/api.out" || fail "the REST error echoes the value: $(cat "$MT_WORK/api.out")"
done
for body in '{"pem":"GARBAGE"}' '{"pem":1}' '{"pem":"x","threshold":"GARBAGE"}' '{"pem":"GARBAGE","threshold":99}'; do
  code=$(curl -sS -o "$MT_WORK/api.out" -w '%{http_code}' --insecure -H "Authorization: Bearer $TOK" \
    -X POST --data "$body" "$MESATEE_SERVER/v1/admin/release-policy/signers")
  [ "$code" = 400 ] || fail "REST signers $body: HTTP $code $(cat "$MT_WORK/api.out")"
  ! grep -q GARBAGE "$MT_WORK/api.out" || fail "the REST error echoes the value: $(cat "$MT_WORK/api.out")"
done
[ "$(jget "$(as admin admin release show --output json)" .seq)" = "$SEQ1" ] || fail "REST garbage changed the policy"
ok "new release-policy kinds: refused at soft and for garbage, without echoing the value"

# A signed change of the recorded auditor set: the CURRENT auditors (alice
# and bob, threshold 2) sign a document naming the new set (alice and carol,
# threshold 1)
SEQ0=$(jget "$(as admin admin release show --output json)" .seq)
S=$MT_WORK/signers.json
as admin admin release draft --signers "$MT_WORK/ac.pub" --threshold 1 > "$S" || fail "draft --signers: $(cat "$S")"
[ "$(jq -r .release_signers.threshold "$S")" = 1 ] && [ "$(jq -r .seq "$S")" = $((SEQ0 + 1)) ] &&
  [ "$(jq -r .release_signers.pem "$S")" = "$(cat "$MT_WORK/ac.pub")" ] || fail "signers draft: $(cat "$S")"
expect_fail "release signers without --signers refused" "needs --signers" as admin admin release signers
expect_fail "--threshold without --signers refused" "goes with --signers" as admin admin release show --threshold 1
expect_fail "--threshold 0 refused" "threshold must be" as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 0
expect_fail "--threshold garbage refused" "threshold must be" as admin admin release draft --signers "$MT_WORK/ac.pub" --threshold x
expect_fail "--signers with a value refused" "takes no value" as admin admin release signers X --signers "$MT_WORK/ac.pub"
expect_fail "draft --signers takes no --signatures" "no --signatures" \
  as admin admin release draft --signers "$MT_WORK/ac.pub" --signatures "$S"
expect_fail "--signers of a junk file refused" "holds no PEM public key" \
  as admin admin release signers --signers "$MT_WORK/junk.pub" --signatures "$S"
expect_fail "--signers of an Ed25519 key refused" "not a P-256" \
  as admin admin release draft --signers "$MT_WORK/ed.pub"
expect_fail "--signers threshold above the keys refused" "more than the 2 auditor keys" \
  as admin admin release draft --signers "$MT_WORK/ac.pub" --threshold 3
expect_fail "unsigned signer change refused" "needs 2 auditor signatures" \
  as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 1
"$B" policy sign --key "$MT_WORK/alice.pem" "$S" >/dev/null || fail "policy sign signers (alice)"
expect_fail "signer change under the current threshold refused" "1 of 2 needed are valid" \
  as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 1 --signatures "$S.sig"
# carol (in the NEW set only) does not count for this change
"$B" policy sign --key "$MT_WORK/carol.pem" "$S" >/dev/null || fail "policy sign signers (carol)"
expect_fail "a signer of the new set only does not count" "1 of 2 needed are valid" \
  as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 1 --signatures "$S.sig"
expect_fail "signatures over the draft do not cover another threshold" "signature does not verify" \
  as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 2 --signatures "$S.sig"
expect_fail "garbage signatures for a signer change refused" "signatures" \
  as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 1 --signatures "$MT_WORK/g3.sig"
p=$(as admin admin release show --output json)
[ "$(jget "$p" .seq)" = "$SEQ0" ] && [ "$(jget "$p" .release_signers.threshold)" = 2 ] || fail "refused signer changes changed the policy: $p"
"$B" policy sign --key "$MT_WORK/bob.pem" "$S" >/dev/null || fail "policy sign signers (bob)"
out=$(as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 1 --signatures "$S.sig" --output json) ||
  fail "signer change signed by alice and bob: $out"
[ "$(jget "$out" .release_signers.threshold)" = 1 ] && [ "$(jget "$out" .seq)" = $((SEQ0 + 1)) ] || fail "signer change: $out"
ok "a signer change signed by the current auditors takes effect"
# replay: the same signatures again (nothing to change), and for a change back
expect_fail "replayed signer change refused" "nothing to change" \
  as admin admin release signers --signers "$MT_WORK/ac.pub" --threshold 1 --signatures "$S.sig"
expect_fail "old signatures do not cover another signer change" "signature does not verify" \
  as admin admin release signers --signers "$MT_WORK/ab.pub" --threshold 2 --signatures "$S.sig"
# bob is no longer an auditor: his signature alone is not enough for a policy change
D3=$MT_WORK/draft3.json
as admin admin release draft allow "$M2" > "$D3" || fail "draft 3"
"$B" policy sign --key "$MT_WORK/bob.pem" "$D3" >/dev/null || fail "policy sign draft 3 (bob)"
expect_fail "a removed auditor's signature does not count" "0 of 1 needed are valid" \
  as admin admin release allow "$M2" --signatures "$D3.sig"
"$B" policy sign --key "$MT_WORK/carol.pem" "$D3" >/dev/null || fail "policy sign draft 3 (carol)"
as admin admin release allow "$M2" --signatures "$D3.sig" >/dev/null || fail "carol alone (threshold 1) could not allow"
ok "the new auditor set and threshold are in force; the old one is not"
audit=$(as admin audit list --limit 1000 --output json) || fail "audit list: $audit"
n=$(jget "$audit" '[.entries[] | select(.action == "POST /v1/admin/release-policy/signers" and .object == "release_signers:threshold-1")] | length')
[ "$n" -ge 5 ] || fail "signer changes are not audited ($n): $audit"
mt_stop_server
serve_fail "restart with the replaced signer set refused" "differ from the ones recorded" \
  --release-signers "$MT_WORK/ab.pub"
mt_start_server --level soft --release-signers "$MT_WORK/ac.pub" --release-threshold 1
mt_stop_server
ok "after a signer change the server starts with the new set, not the old one"
