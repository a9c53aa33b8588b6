#!/usr/bin/env bash
# Issue 10, lost TPM: escrow of the KeyStore root keys and recovery on a new
# TPM, end to end at level tpm2 with swtpm (MT_KS_LEVEL=soft runs the same
# at soft, where "losing" means the state no longer opens). Files, task
# outputs and transit keys are made and the root key rotated; the admin
# escrows the root keys to three recovery recipients (2 needed); the TPM
# state is thrown away and a fresh swtpm started: the daemon no longer
# starts (its KeyStore is sealed in the old TPM). `serve --keystore-recover`
# with a wrong recipient key, too few keys, a truncated or garbage escrow
# fails with a clear error and writes nothing; with two right keys it
# rebuilds the KeyStore under the new TPM: the old outputs decrypt, the old
# inputs run in a new task, the transit ciphertext decrypts. A second
# recovery is refused (nothing to recover). Garbage and non-admin escrow
# requests are refused.
source "$(dirname "$0")/lib.sh"
for t in jq openssl; do command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }; done
LEVEL=${MT_KS_LEVEL:-tpm2}
B=$MESATEE_BIN
SERVE=(--level "$LEVEL")
if [ "$LEVEL" = tpm2 ]; then
  command -v swtpm >/dev/null || { echo "SKIP: swtpm not installed"; exit 0; }
  mt_start_swtpm "$MT_WORK/tpm-old"
  SERVE+=(--tpm2-tcti "$MT_TCTI")
fi
# client_policy: the clients' attestation policy for the running node (sets
# MESATEE_POLICY, and NODE to its TPM AK or soft platform key)
client_policy() {
  local show; show=$("$B" attest show --output json) || fail "attest show: $show"
  if [ "$LEVEL" = tpm2 ]; then
    echo "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"min_level\":\"tpm2\",\"measurements\":{\"gateway\":{\"pcr23\":[\"$(jget "$show" .measurements.pcr23)\"]}},\"tpm2_aks\":[\"$(jget "$show" .tpm2_ak)\"]}"
  else
    echo "{\"mesatee_policy\":1,\"allowed_kinds\":[\"soft\"],\"min_level\":\"soft\",\"measurements\":{\"gateway\":{\"measurement\":[\"$(jget "$show" .measurements.measurement)\"]}},\"soft_platform_keys\":[\"$(jget "$show" .soft_platform_key)\"]}"
  fi >"$MT_WORK/client-policy.json"
  export MESATEE_POLICY=$MT_WORK/client-policy.json
  NODE=$(jget "$show" "$([ "$LEVEL" = tpm2 ] && echo .tpm2_ak || echo .soft_platform_key)")
}
start() { mt_start_server "${SERVE[@]}" "$@"; unset MESATEE_CA MESATEE_POLICY; client_policy; }
result() { as "$1" task result "$T" --slot "$2" --key "$MT_WORK/$1.out.key" --out "$3" >/dev/null; }

# ---- before: files, a task, transit keys, a rotation ------------------------
start
NODE1=$NODE
mt_login admin
mt_add_user alice; mt_add_user bob
seq -f "id-%03g" 1 40 > "$MT_WORK/alice.txt"; seq -f "id-%03g" 30 60 > "$MT_WORK/bob.txt"
mt_psi2_invoke
as alice task wait "$T" --timeout 120 >/dev/null || fail "psi task before the loss"
result alice ra "$MT_WORK/r1.alice"; result bob rb "$MT_WORK/r1.bob"
[ "$(wc -l < "$MT_WORK/r1.alice")" = 11 ] || fail "psi result: $(cat "$MT_WORK/r1.alice")"
printf 'kept across a lost TPM' > "$MT_WORK/tmsg"
as alice key create tk >/dev/null
TCT=$(as alice key encrypt tk --in "$MT_WORK/tmsg")
as admin admin keystore rotate >/dev/null
mt_kek_wait 2
ok "level $LEVEL: files, a finished task, a transit ciphertext; root key rotated to version 2"

# ---- escrow ---------------------------------------------------------------------
for i in 1 2 3 4; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/r$i.key" 2>/dev/null
  openssl pkey -in "$MT_WORK/r$i.key" -pubout -out "$MT_WORK/r$i.pub"
done
openssl req -x509 -new -key "$MT_WORK/r1.key" -subj /CN=recovery-1 -days 30 -out "$MT_WORK/r1.crt" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$MT_WORK/ed.key" 2>/dev/null
openssl pkey -in "$MT_WORK/ed.key" -pubout -out "$MT_WORK/ed.pub"
esc() { as admin admin keystore escrow "$@"; }
expect_fail "a user cannot escrow" "403" as alice admin keystore escrow --recipient "$MT_WORK/r1.pub" --out "$MT_WORK/x.json"
expect_fail "no recipient" "needs --recipient" esc --out "$MT_WORK/x.json"
expect_fail "no --out" "needs --out" esc --recipient "$MT_WORK/r1.pub"
expect_fail "threshold above the recipients" "--threshold: expected an integer 1 to 2" \
  esc --recipient "$MT_WORK/r1.pub" --recipient "$MT_WORK/r2.pub" --threshold 3 --out "$MT_WORK/x.json"
expect_fail "threshold 0" "--threshold" esc --recipient "$MT_WORK/r1.pub" --threshold 0 --out "$MT_WORK/x.json"
expect_fail "an ed25519 recipient" "recipient 2: expected an X.509 certificate or PUBLIC KEY PEM of a P-256" \
  esc --recipient "$MT_WORK/r1.pub" --recipient "$MT_WORK/ed.pub" --out "$MT_WORK/x.json"
expect_fail "a recipient twice" "recipient 2: the same key as recipient 1" \
  esc --recipient "$MT_WORK/r1.crt" --recipient "$MT_WORK/r1.pub" --out "$MT_WORK/x.json"
expect_fail "a garbage recipient" "recipient 1: expected" esc --recipient "$MT_WORK/alice.txt" --out "$MT_WORK/x.json"
TOK=$(jq -r .token "$MT_WORK/admin.token" 2>/dev/null || cat "$MT_WORK/admin.token")
for body in '{}' '[1]' '{"recipients":[]}' '{"recipients":"x"}' '{"recipients":[1]}' \
    '{"recipients":["x"],"threshold":2}' '{"recipients":["x"],"more":1}' '{"recipients":'; do
  code=$(curl -sS -o "$MT_WORK/api.out" -w '%{http_code}' --insecure -H "Authorization: Bearer $TOK" \
    -X POST --data "$body" "$MESATEE_SERVER/v1/admin/keystore/escrow")
  [ "$code" = 400 ] || fail "escrow garbage $body: HTTP $code $(cat "$MT_WORK/api.out")"
done
[ ! -e "$MT_WORK/x.json" ] || fail "a refused escrow wrote its file"
ok "escrow: non-admin, garbage recipients, bad thresholds and bodies refused (400/403), nothing written"

out=$(esc --recipient "$MT_WORK/r1.crt" --recipient "$MT_WORK/r2.pub" --recipient "$MT_WORK/r3.pub" \
  --threshold 2 --out "$MT_WORK/escrow.json")
case "$out" in *"escrow of 1 root key version(s) to 3 recipient(s), 2 needed"*) ;; *) fail "escrow: $out" ;; esac
[ "$(stat -c %a "$MT_WORK/escrow.json")" = 600 ] || fail "escrow file mode"
[ "$(jq -r '.current, (.versions|join(",")), .threshold, (.shares|length), .level' "$MT_WORK/escrow.json" | tr '\n' ' ')" = "2 2 2 3 $LEVEL " ] ||
  fail "escrow header: $(jq -c 'del(.sealed, .shares)' "$MT_WORK/escrow.json")"
if grep -q "$(base64 -w0 < "$MT_WORK/tmsg")" "$MT_WORK/escrow.json"; then fail "plaintext in the escrow"; fi
SET=$(jq -j '.shares[].recipient' "$MT_WORK/escrow.json" | sha256sum | cut -c1-16)
as admin audit list --output json | jq -e --arg o "kek-escrow:2-of-3:$SET" '[.entries[] |
  select(.action == "POST /v1/admin/keystore/escrow" and .object == $o and .status == 200)] |
  length == 1' >/dev/null || fail "the escrow is not audited with its recipient set $SET"
for k in r1 r2 r3; do
  fp=$(openssl pkey -pubin -in "$MT_WORK/$k.pub" -outform DER | sha256sum | cut -d' ' -f1)
  jq -e --arg f "$fp" '[.shares[].recipient] | index($f) != null' "$MT_WORK/escrow.json" >/dev/null ||
    fail "recipient $k's fingerprint is not in the escrow"
done
ok "escrow to 3 recipients (a certificate and two public keys), 2 needed: written 0600, audited"

# ---- the TPM is lost ------------------------------------------------------------
mt_stop_server
D=$MT_DATA
if [ "$LEVEL" = tpm2 ]; then
  mt_stop_swtpm
  rm -rf "$MT_WORK/tpm-old"
  mt_start_swtpm "$MT_WORK/tpm-new"
  SERVE=(--level "$LEVEL" --tpm2-tcti "$MT_TCTI")
else
  # soft: the state no longer opens (e.g. a damaged disk block)
  printf 'damaged' > "$D/keystore.sealed"
fi
sums() { sha256sum "$D"/keystore.* 2>/dev/null; ls "$D" | grep -c lost || true; }
BEFORE=$(sums)
# serve_fail DESC MESSAGE ARGS...: serve exits non-zero naming MESSAGE; nothing written
serve_fail() {
  local desc=$1 msg=$2; shift 2
  local out rc=0
  out=$(timeout 60 "$B" serve --data-dir "$D" --listen 127.0.0.1:0 "${SERVE[@]}" "$@" 2>&1) || rc=$?
  [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$desc: serve exited $rc: $(tail -n 3 <<<"$out")"
  case "$out" in *"$msg"*) ;; *) fail "$desc: expected '$msg' in: $(tail -n 5 <<<"$out")" ;; esac
  [ "$(sums)" = "$BEFORE" ] || fail "$desc: the KeyStore files changed"
  ok "$desc: refused, nothing written ($(grep -o "$msg.\{0,60\}" <<<"$out" | head -n 1))"
}
if [ "$LEVEL" = tpm2 ]; then
  serve_fail "start on the new TPM" "KeyStore seal key"
else
  serve_fail "start with the damaged state" "keystore.sealed"
fi
head -c 300 "$MT_WORK/escrow.json" > "$MT_WORK/trunc.json"
printf 'garbage' > "$MT_WORK/garbage.json"
jq '.threshold = 1' "$MT_WORK/escrow.json" > "$MT_WORK/edited.json"
REC=(--keystore-recover "$MT_WORK/escrow.json")
serve_fail "one key of the two needed" "the escrow needs the keys of 2 of its 3 recipients; 1 given" \
  "${REC[@]}" --keystore-recover-key "$MT_WORK/r2.key"
serve_fail "a key that is no recipient" "recovery key 2 is not a recipient of this escrow" \
  "${REC[@]}" --keystore-recover-key "$MT_WORK/r1.key" --keystore-recover-key "$MT_WORK/r4.key"
serve_fail "a public key given as a recovery key" "recovery key 1: expected an unencrypted PEM private key" \
  "${REC[@]}" --keystore-recover-key "$MT_WORK/r1.pub" --keystore-recover-key "$MT_WORK/r2.key"
serve_fail "a truncated escrow" "escrow file:" \
  --keystore-recover "$MT_WORK/trunc.json" --keystore-recover-key "$MT_WORK/r1.key" --keystore-recover-key "$MT_WORK/r2.key"
serve_fail "a garbage escrow" "escrow file:" \
  --keystore-recover "$MT_WORK/garbage.json" --keystore-recover-key "$MT_WORK/r1.key"
serve_fail "an escrow whose threshold was lowered" "its share does not decrypt" \
  --keystore-recover "$MT_WORK/edited.json" --keystore-recover-key "$MT_WORK/r1.key"
serve_fail "an escrow file that does not exist" "--keystore-recover $MT_WORK/none.json" \
  --keystore-recover "$MT_WORK/none.json" --keystore-recover-key "$MT_WORK/r1.key"
serve_fail "no recovery key" "--keystore-recover needs 1 to 16 --keystore-recover-key" "${REC[@]}"
serve_fail "a recovery key without an escrow" "--keystore-recover-key needs --keystore-recover" \
  --keystore-recover-key "$MT_WORK/r1.key"

# ---- recovery ---------------------------------------------------------------------
start "${REC[@]}" --keystore-recover-key "$MT_WORK/r3.key" --keystore-recover-key "$MT_WORK/r1.key"
grep -q "KeyStore recovery: done with 2 of 3 recipients' keys" "$MT_WORK/server.log" || fail "no recovery log line"
[ "$LEVEL" != tpm2 ] || [ "$NODE" != "$NODE1" ] || fail "the new TPM has the old AK"
ls "$D" | grep -q '^keystore.sealed.lost-' || fail "the old state was not kept aside"
mt_login admin; mt_login alice; mt_login bob
ks=$(as admin admin keystore status --output json)
[ "$(jget "$ks" .current)" = 2 ] || fail "recovered current version: $ks"
result alice ra "$MT_WORK/r2.alice"; result bob rb "$MT_WORK/r2.bob"
cmp -s "$MT_WORK/r1.alice" "$MT_WORK/r2.alice" && cmp -s "$MT_WORK/r1.bob" "$MT_WORK/r2.bob" ||
  fail "the outputs of before the loss differ"
[ "$(as alice key decrypt tk "$TCT")" = "kept across a lost TPM" ] || fail "the transit ciphertext"
pol=$(as admin admin release show --output json)
[ "$(jget "$pol" "$([ "$LEVEL" = tpm2 ] && echo '.tpm2_aks|join(",")' || echo '.soft_platform_keys|join(",")')")" = "$NODE" ] ||
  fail "the recovered release policy does not allow exactly the new node: $pol"
ok "recovered on the new $([ "$LEVEL" = tpm2 ] && echo TPM || echo state) with 2 of 3 keys: old outputs decrypt, the transit ciphertext decrypts, the policy allows the new node"
# the old inputs in a new task
"$B" key generate --out "$MT_WORK/n.a.key" >/dev/null; "$B" key generate --out "$MT_WORK/n.b.key" >/dev/null
o1=$(as alice file register-output --key "$MT_WORK/n.a.key"); o2=$(as bob file register-output --key "$MT_WORK/n.b.key")
T2=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T2" --input "a=${IN[alice]}" --output "ra=$o1" >/dev/null
as bob task assign "$T2" --input "b=${IN[bob]}" --output "rb=$o2" >/dev/null
as alice task approve "$T2" >/dev/null; as bob task approve "$T2" >/dev/null
as alice task invoke "$T2" >/dev/null
as alice task wait "$T2" --timeout 120 >/dev/null || fail "a new task on the old inputs"
as alice task result "$T2" --slot ra --key "$MT_WORK/n.a.key" --out "$MT_WORK/r3.alice" >/dev/null
cmp -s "$MT_WORK/r1.alice" "$MT_WORK/r3.alice" || fail "the new task's result differs"
ok "a new task runs on the files registered before the loss"

# ---- afterwards ---------------------------------------------------------------------
mt_stop_server
BEFORE=$(sums)
serve_fail "a second recovery" "there is nothing to recover" \
  "${REC[@]}" --keystore-recover-key "$MT_WORK/r3.key" --keystore-recover-key "$MT_WORK/r1.key"
start
result alice ra "$MT_WORK/r4.alice"
cmp -s "$MT_WORK/r1.alice" "$MT_WORK/r4.alice" || fail "after a plain restart"
ok "a plain restart opens the recovered KeyStore"
echo "it_keystore_escrow: all checks passed"
