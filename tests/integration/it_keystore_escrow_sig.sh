#!/usr/bin/env bash
# Security review of issue 10: with auditors (release signers) recorded in
# the KeyStore, an admin alone cannot escrow the root keys (an escrow takes
# them out of the TEE). Level soft, auditors alice and bob, threshold 2:
# an escrow without signatures, with one of two, over another escrow's
# document (other recipients, other threshold), with garbage signature
# files, or replayed after use is refused (403/400) and writes nothing
# (seq unchanged, no file); `admin keystore escrow draft` prints the
# document (seq + 1, recipients' fingerprints, threshold, purpose) that
# `mesatee policy sign` signs; with both signatures the escrow is written
# and spends the seq, and recovery from it still works (a transit
# ciphertext of before decrypts). Garbage REST "signatures" fields: 400.
source "$(dirname "$0")/lib.sh"
for t in jq openssl curl; do command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }; done
B=$MESATEE_BIN
for a in alice bob carol; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/$a.pem" 2>/dev/null
  openssl pkey -in "$MT_WORK/$a.pem" -pubout -out "$MT_WORK/$a.pub" 2>/dev/null
done
cat "$MT_WORK/alice.pub" "$MT_WORK/bob.pub" >"$MT_WORK/ab.pub"
for i in 1 2 3; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/r$i.key" 2>/dev/null
  openssl pkey -in "$MT_WORK/r$i.key" -pubout -out "$MT_WORK/r$i.pub"
done
SIGNERS=(--release-signers "$MT_WORK/ab.pub" --release-threshold 2)
mt_start_server --level soft "${SIGNERS[@]}"
mt_login admin
mt_add_user dave
printf 'kept across an escrow' > "$MT_WORK/tmsg"
as dave key create tk >/dev/null
TCT=$(as dave key encrypt tk --in "$MT_WORK/tmsg")
SEQ0=$(jget "$(as admin admin release show --output json)" .seq)
E=$MT_WORK/escrow.json
R=(--recipient "$MT_WORK/r1.pub" --recipient "$MT_WORK/r2.pub")
unchanged() {
  [ "$(jget "$(as admin admin release show --output json)" .seq)" = "$SEQ0" ] || fail "$1: the KeyStore's seq moved"
  [ ! -e "$E" ] || fail "$1: an escrow file was written"
}
sign() { local f=$1; shift; for a in "$@"; do "$B" policy sign --key "$MT_WORK/$a.pem" "$f" >/dev/null || fail "policy sign $f ($a)"; done; }

# ---- refused -----------------------------------------------------------------------
expect_fail "escrow without signatures refused (auditors recorded)" "needs 2 auditor signatures" \
  as admin admin keystore escrow "${R[@]}" --threshold 1 --out "$E"
unchanged "unsigned escrow"
D=$MT_WORK/draft.json
as admin admin keystore escrow draft "${R[@]}" --threshold 1 > "$D" || fail "escrow draft: $(cat "$D")"
fp1=$(openssl pkey -pubin -in "$MT_WORK/r1.pub" -outform DER | sha256sum | cut -d' ' -f1)
fp2=$(openssl pkey -pubin -in "$MT_WORK/r2.pub" -outform DER | sha256sum | cut -d' ' -f1)
[ "$(jq -c '[.seq, .escrow.purpose, .escrow.threshold, .escrow.recipients, .mesatee_release_policy]' "$D")" = \
  "[$((SEQ0 + 1)),\"escrow\",1,[\"$fp1\",\"$fp2\"],1]" ] || fail "escrow draft content: $(cat "$D")"
ok "escrow draft names seq + 1, the recipients' fingerprints, the threshold and the purpose"
sign "$D" alice
expect_fail "escrow with one of two signatures refused" "1 of 2 needed are valid" \
  as admin admin keystore escrow "${R[@]}" --threshold 1 --signatures "$D.sig" --out "$E"
unchanged "escrow signed by one auditor"
sign "$D" carol
expect_fail "a non-auditor's signature does not count" "1 of 2 needed are valid" \
  as admin admin keystore escrow "${R[@]}" --threshold 1 --signatures "$D.sig" --out "$E"
sign "$D" bob  # now alice, bob (and carol): a good document for exactly this escrow
expect_fail "signatures used for other recipients refused" "escrow refused" \
  as admin admin keystore escrow --recipient "$MT_WORK/r1.pub" --recipient "$MT_WORK/r3.pub" --threshold 1 \
  --signatures "$D.sig" --out "$E"
expect_fail "signatures used for another threshold refused" "escrow refused" \
  as admin admin keystore escrow "${R[@]}" --threshold 2 --signatures "$D.sig" --out "$E"
expect_fail "signatures used for the recipients in another order refused" "escrow refused" \
  as admin admin keystore escrow --recipient "$MT_WORK/r2.pub" --recipient "$MT_WORK/r1.pub" --threshold 1 \
  --signatures "$D.sig" --out "$E"
# a release-policy change document's signatures do not authorize an escrow
M=$(printf 'escrow-sig-test' | sha256sum | cut -d' ' -f1)
as admin admin release draft allow "$M" > "$MT_WORK/pol.json" || fail "release draft"
sign "$MT_WORK/pol.json" alice bob
expect_fail "a policy change's signatures do not authorize an escrow" "escrow refused" \
  as admin admin keystore escrow "${R[@]}" --threshold 1 --signatures "$MT_WORK/pol.json.sig" --out "$E"
# nor the escrow document's a policy change
expect_fail "an escrow's signatures do not authorize a policy change" "signature does not verify" \
  as admin admin release allow "$M" --signatures "$D.sig"
printf 'garbage\n' > "$MT_WORK/g1.sig"
expect_fail "garbage signature file refused" "signatures" \
  as admin admin keystore escrow "${R[@]}" --signatures "$MT_WORK/g1.sig" --out "$E"
head -c 3000 /dev/urandom > "$MT_WORK/g2.sig"
expect_fail "binary signature file refused" "signatures" \
  as admin admin keystore escrow "${R[@]}" --signatures "$MT_WORK/g2.sig" --out "$E"
expect_fail "missing signature file refused" "--signatures" \
  as admin admin keystore escrow "${R[@]}" --signatures "$MT_WORK/absent.sig" --out "$E"
expect_fail "escrow draft takes no --out" "takes no --out" \
  as admin admin keystore escrow draft "${R[@]}" --out "$E"
expect_fail "escrow draft takes no --signatures" "no --out or --signatures" \
  as admin admin keystore escrow draft "${R[@]}" --signatures "$D.sig"
expect_fail "escrow with another value refused" "takes no value" \
  as admin admin keystore escrow GARBAGE "${R[@]}" --out "$E"
expect_fail "escrow draft of a garbage recipient refused" "recipient 1" \
  as admin admin keystore escrow draft --recipient "$MT_WORK/tmsg"
expect_fail "a user cannot escrow, signed or not" "403" \
  as dave admin keystore escrow "${R[@]}" --threshold 1 --signatures "$D.sig" --out "$E"
TOK=$(jq -r .token "$MT_WORK/admin.token" 2>/dev/null || cat "$MT_WORK/admin.token")
PEM=$(jq -Rs . < "$MT_WORK/r1.pub")
for sig in '1' '[]' '"garbage"' '"mesatee-policy-sig-v1\nzz nope\n"' '{"a":1}'; do
  code=$(curl -sS -o "$MT_WORK/api.out" -w '%{http_code}' --insecure -H "Authorization: Bearer $TOK" \
    -X POST --data "{\"recipients\":[$PEM],\"signatures\":$sig}" "$MESATEE_SERVER/v1/admin/keystore/escrow")
  case "$code" in 400|403) ;; *) fail "REST escrow with signatures $sig: HTTP $code $(cat "$MT_WORK/api.out")" ;; esac
  ! grep -q '"shares"' "$MT_WORK/api.out" || fail "REST escrow with signatures $sig answered an escrow"
done
code=$(curl -sS -o "$MT_WORK/api.out" -w '%{http_code}' --insecure -H "Authorization: Bearer $TOK" \
  -X POST --data "{\"recipients\":[$PEM]}" "$MESATEE_SERVER/v1/admin/keystore/escrow")
[ "$code" = 403 ] && ! grep -q '"shares"' "$MT_WORK/api.out" || fail "REST escrow without signatures: HTTP $code"
unchanged "refused escrows"
ok "unsigned, under-threshold, foreign and garbage-signed escrows refused; nothing written, seq unchanged"

# ---- signed: accepted once ------------------------------------------------------------
out=$(as admin admin keystore escrow "${R[@]}" --threshold 1 --signatures "$D.sig" --out "$E") ||
  fail "escrow signed by both auditors: $out"
[ -s "$E" ] && [ "$(jq -r '.threshold, (.shares|length)' "$E" | tr '\n' ' ')" = "1 2 " ] || fail "escrow file: $(head -c 300 "$E")"
[ "$(jget "$(as admin admin release show --output json)" .seq)" = $((SEQ0 + 1)) ] || fail "the escrow did not spend the seq"
grep -q "root keys escrowed to 2 recipient(s) .* (auditor signatures checked)" "$MT_WORK/server.log" ||
  fail "the signed escrow is not logged"
as admin audit list --limit 1000 --output json | jq -e '[.entries[] | select(.action == "POST /v1/admin/keystore/escrow")] |
  ([.[] | select(.status == 200)] | length) == 1 and ([.[] | select(.status == 403)] | length) >= 5' >/dev/null ||
  fail "audit of the escrows: $(as admin audit list --limit 1000 --output json | jq -c '[.entries[] | select(.action == "POST /v1/admin/keystore/escrow") | [.object, .status]]')"
ok "escrow signed by both auditors written (seq spent, logged, refusals and the escrow audited)"
mv "$E" "$MT_WORK/escrow.ok.json"
expect_fail "replayed escrow signatures refused" "escrow refused" \
  as admin admin keystore escrow "${R[@]}" --threshold 1 --signatures "$D.sig" --out "$E"
[ ! -e "$E" ] || fail "a replayed escrow wrote its file"
ok "replayed signatures refused (the seq moved on)"

# ---- recovery from the signed escrow still works ---------------------------------------
mt_stop_server
printf 'damaged' > "$MT_DATA/keystore.sealed"
mt_start_server --level soft "${SIGNERS[@]}" --keystore-recover "$MT_WORK/escrow.ok.json" \
  --keystore-recover-key "$MT_WORK/r2.key"
grep -q "KeyStore recovery: done" "$MT_WORK/server.log" || fail "no recovery log line"
mt_login admin; mt_login dave
[ "$(as dave key decrypt tk "$TCT")" = "kept across an escrow" ] || fail "the transit ciphertext after recovery"
expect_fail "the recovered KeyStore keeps the auditors: unsigned escrow refused" "needs 2 auditor signatures" \
  as admin admin keystore escrow "${R[@]}" --out "$E"
ok "recovery from the signed escrow: the transit ciphertext decrypts, the auditors still apply"
mt_stop_server

# ---- without auditors the admin is the authority -------------------------------------------
rm -rf "$MT_DATA"; rm -f "$MT_WORK"/*.token
mt_start_server --level soft
mt_login admin
as admin admin keystore escrow "${R[@]}" --out "$E" >/dev/null || fail "escrow without auditors"
as admin admin keystore escrow "${R[@]}" --signatures "$MT_WORK/g1.sig" --out "$MT_WORK/e2.json" >/dev/null ||
  fail "escrow without auditors with an ignored signatures file"
ok "without auditors the admin alone escrows (documented)"
echo "it_keystore_escrow_sig: all checks passed"
