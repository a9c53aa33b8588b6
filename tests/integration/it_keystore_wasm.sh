#!/usr/bin/env bash
# KeyStore keys used by a wasm task end to end (docs/keystore.md, "Keys in
# tasks"; docs/wasm-functions.md, key_sign): tests/integration/wasm/key_sign.wat
# (built here with wat2wasm) signs its input "data" with the key named by the
# task argument wasm_key and writes the raw signature to its output "sig".
# Alice's ecdsa-p256, ed25519 and rsa-2048 KeyStore keys sign bob's document
# in tasks both approve; the output decrypts for alice only and verifies with
# openssl against `mesatee key read`'s public key. Each use is audited and
# metered (task metering key_signs, /metrics mesatee_task_key_signs_total).
# Refused, with nothing signed (no output written, no key-use audit entry,
# key_signs 0): no wasm_key in the approved arguments, a key whose owner takes
# no part (same answer whether it exists), a key type that cannot sign, and
# tasks whose approval or approved arguments the host edited in mesatee.db.
source "$(dirname "$0")/lib.sh"
for t in jq openssl wat2wasm sqlite3 curl; do
  [ "$t" = sqlite3 ] && [ "${MT_TEST_PG:-}" = 1 ] && continue # mt_sql uses psql there
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
wat2wasm "$(dirname "$0")/wasm/key_sign.wat" -o "$MT_WORK/key_sign.wasm"

mt_start_server
mt_login admin
for u in alice bob carol; do mt_add_user "$u"; done
DB=$MT_DATA/mesatee.db
sql() { mt_sql "$1"; }

pubkey() { # pubkey USER NAME FILE: the latest version's public key (PEM)
  as "$1" --output json key read "$2" |
    jq -r '.data.keys | to_entries | max_by(.key | tonumber) | .value.public_key' >"$3"
  if ! grep -q 'BEGIN PUBLIC KEY' "$3"; then
    # ed25519: Vault gives the raw 32 bytes in base64; made an SPKI here
    { printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; base64 -d "$3"; } >"$3.der" &&
      openssl pkey -pubin -inform DER -in "$3.der" -out "$3" 2>/dev/null ||
      fail "no public key for $1/$2: $(cat "$3")"
  fi
}
as alice key create notary-ec --type ecdsa-p256 >/dev/null
as alice key create notary-ed --type ed25519 >/dev/null
as alice key create notary-rsa --type rsa-2048 >/dev/null
as alice key create vault --type aes256-gcm96 >/dev/null
as carol key create secret --type ecdsa-p256 >/dev/null
for k in ec ed rsa; do pubkey alice "notary-$k" "$MT_WORK/$k.pub"; done

printf 'I, Bob, agree to the terms of the wasm notary.\n' >"$MT_WORK/doc.txt"
as bob file encrypt --in "$MT_WORK/doc.txt" --out "$MT_WORK/doc.enc" --key-out "$MT_WORK/doc.key" >/dev/null
DOC=$(as bob file register "$(as bob file upload "$MT_WORK/doc.enc")" --key "$MT_WORK/doc.key")
FN=$(as alice function register --name wasm-notary --wasm "$MT_WORK/key_sign.wasm" --public \
  --input-slot data --output-slot sig --arg wasm_key=:overridable --arg wasm_key_version=0:overridable)
ok "wasm notary registered; alice's KeyStore keys created"

# new_task NAME [--arg ...]: alice creates, bob assigns his document, alice a
# fresh output of hers; sets T_NAME and O_NAME (output file id); no approval.
n=0
new_task() {
  local name=$1; shift
  n=$((n + 1))
  "$MESATEE_BIN" key generate --out "$MT_WORK/$name.okey" >/dev/null
  local o t
  o=$(as alice file register-output --key "$MT_WORK/$name.okey")
  t=$(as alice task create --function "$FN" "$@" --input data=bob --output sig=alice)
  as bob task assign "$t" --input "data=$DOC" >/dev/null
  as alice task assign "$t" --output "sig=$o" >/dev/null
  eval "T_$name=$t O_$name=$o"
}
approve_run() { # approve_run TASK: both approve, alice invokes; prints `task wait`'s line
  as alice task approve "$1" >/dev/null; as bob task approve "$1" >/dev/null
  as alice task invoke "$1" >/dev/null
  as alice task wait "$1" --timeout 60 2>&1 || true
}
show() { as alice --output json task show "$1"; }
key_uses() { # key_uses TASK: the number of key-use audit entries of the task alice sees
  as alice --output json audit list --limit 1000 |
    jq --arg o "task:$1" '[.entries[] | select(.object == $o and
      (.action | startswith("task signs with KeyStore key")))] | length'
}
nothing_signed() { # nothing_signed TASK OUTPUT WHAT
  local s; s=$(show "$1")
  [ "$(jget "$s" .status)" = failed ] || fail "$3: task is $(jget "$s" .status)"
  [ "$(jget "$s" .metering.key_signs)" = 0 ] || fail "$3: key_signs $(jget "$s" .metering.key_signs)"
  [ "$(as alice --output json file show "$2" | jq -r .written)" = false ] || fail "$3: output written"
}
metric() { curl -s --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" |
  awk '$1 == "mesatee_task_key_signs_total" {print $2}'; }

[ "$(metric)" = 0 ] || fail "mesatee_task_key_signs_total before any task: $(metric)"

# ---- signs with each key type; verifies with openssl --------------------------
verify() { # verify KIND SIGFILE
  case "$1" in
    ec) openssl dgst -sha256 -verify "$MT_WORK/ec.pub" -signature "$2" "$MT_WORK/doc.txt" ;;
    ed) openssl pkeyutl -verify -pubin -inkey "$MT_WORK/ed.pub" -rawin -in "$MT_WORK/doc.txt" -sigfile "$2" ;;
    rsa) openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
           -verify "$MT_WORK/rsa.pub" -signature "$2" "$MT_WORK/doc.txt" ;;
  esac >/dev/null 2>&1
}
for k in ec ed rsa; do
  new_task "$k" --arg "wasm_key=alice/notary-$k"
  eval "t=\$T_$k o=\$O_$k"
  line=$(approve_run "$t")
  case "$line" in finished:*signed*) ;; *) fail "wasm task with notary-$k: $line" ;; esac
  as alice task result "$t" --slot sig --key "$MT_WORK/$k.okey" --out "$MT_WORK/$k.sig" >/dev/null
  verify "$k" "$MT_WORK/$k.sig" || fail "the $k signature does not verify with key read's public key"
  verify "$k" "$MT_WORK/ec.sig" 2>/dev/null && [ "$k" != ec ] && fail "$k key verifies the ec signature"
  s=$(show "$t")
  [ "$(jget "$s" .metering.key_signs)" = 1 ] || fail "$k: key_signs $(jget "$s" .metering.key_signs)"
  [ "$(key_uses "$t")" = 1 ] || fail "$k: key-use audit entries: $(key_uses "$t")"
  ok "wasm key_sign with alice's notary-$k: the output decrypts for alice and verifies (openssl); metered 1, audited"
done
expect_fail "bob cannot download alice's signature" "HTTP 40" as bob file download "$O_ec" --out "$MT_WORK/x"
as bob --output json audit list --limit 1000 | jq -r '.entries[].action' |
  grep -qx "task signs with KeyStore key alice/notary-ed v1" || fail "bob does not see the key use"
[ "$(metric)" = 3 ] || fail "mesatee_task_key_signs_total after three signing tasks: $(metric)"
[ "$(as alice --output json function stats "$FN" | jq -r .key_signs)" = 3 ] ||
  fail "function stats: $(as alice --output json function stats "$FN")"
ok "/metrics: mesatee_task_key_signs_total 3; function stats key_signs 3; bob (participant) sees the key use in the audit log"

# ---- refused: nothing signed ----------------------------------------------------
new_task noarg
line=$(approve_run "$T_noarg")
case "$line" in failed:*) ;; *) fail "no wasm_key: $line" ;; esac
case "$(jget "$(show "$T_noarg")" .log)" in *"key_sign returned -1"*) ;;
  *) fail "no wasm_key: log $(jget "$(show "$T_noarg")" .log)" ;; esac
nothing_signed "$T_noarg" "$O_noarg" "no wasm_key"
[ "$(key_uses "$T_noarg")" = 0 ] || fail "no wasm_key: a key use was audited"
ok "no wasm_key in the approved arguments: key_sign returns -1, the task fails, nothing signed"

msg="can be used only by a task its owner, or a user the owner granted 'sign' on it, takes part in"
a=$(as alice task create --function "$FN" --arg wasm_key=carol/secret --input data=bob --output sig=alice 2>&1 || true)
b=$(as alice task create --function "$FN" --arg wasm_key=carol/none --input data=bob --output sig=alice 2>&1 || true)
case "$a" in *"argument 'wasm_key': a KeyStore key $msg"*) ;; *) fail "carol's key: $a" ;; esac
[ "$a" = "$b" ] || fail "the refusal differs for an existing and a missing key: '$a' vs '$b'"
expect_fail "bob's task naming alice's key (alice takes no part)" "$msg" \
  as bob task create --function "$FN" --arg wasm_key=alice/notary-ec --input data=bob --output sig=bob
expect_fail "garbage wasm_key" "argument 'wasm_key': expected a KeyStore key OWNER/NAME" \
  as alice task create --function "$FN" --arg 'wasm_key=no key' --input data=bob --output sig=alice
ok "a key whose owner takes no part: refused at create (same answer whether it exists); garbage refused"

new_task aes --arg wasm_key=alice/vault
line=$(approve_run "$T_aes")
case "$line" in *"argument 'wasm_key': mesatee.key_sign cannot sign with a KeyStore key of type aes256-gcm96"*) ;;
  *) fail "aes key: $line" ;; esac
nothing_signed "$T_aes" "$O_aes" "aes key"
[ "$(key_uses "$T_aes")" = 0 ] || fail "aes key: a key use was audited"
ok "a key type that cannot sign: the task fails at dispatch naming the type; the key never left"

# ---- the host edits approvals and approved arguments -----------------------------
new_task flip --arg wasm_key=alice/notary-ec     # only bob approves
as bob task approve "$T_flip" >/dev/null
new_task swap --arg wasm_key=alice/notary-ec     # both approve notary-ec ...
as alice task approve "$T_swap" >/dev/null; as bob task approve "$T_swap" >/dev/null
mt_stop_server
sql "UPDATE tasks SET approvals = '[\"alice\",\"bob\"]' WHERE task_id = '$T_flip'"
sql "UPDATE tasks SET arguments = replace(arguments, 'alice/notary-ec', 'alice/notary-rsa') WHERE task_id = '$T_swap'"
[ "$(sql "SELECT count(*) FROM tasks WHERE task_id = '$T_swap' AND arguments LIKE '%notary-rsa%'")" = 1 ] ||
  fail "the argument edit did not apply: $(sql "SELECT arguments FROM tasks WHERE task_id = '$T_swap'")"
sql "UPDATE tasks SET status = 'staged', staged_seq = 1 WHERE task_id = '$T_flip';
     UPDATE tasks SET status = 'staged', staged_seq = 2 WHERE task_id = '$T_swap'"
mt_start_server
for u in alice bob; do mt_login "$u"; done
check() { # check TASK OUTPUT CLASS WHAT
  local st=
  for _ in $(seq 300); do
    st=$(sql "SELECT status FROM tasks WHERE task_id = '$1'")
    case "$st" in failed|finished|canceled) break ;; esac; sleep 0.1
  done
  [ "$st" = failed ] || fail "$4: tampered task is $st"
  local r; r=$(sql "SELECT failure_reason FROM tasks WHERE task_id = '$1'")
  case "$r" in *"integrity check failed: $3") ;; *) fail "$4: reason '$r'" ;; esac
  [ "$(sql "SELECT key_signs FROM tasks WHERE task_id = '$1'")" = 0 ] || fail "$4: key_signs"
  [ "$(sql "SELECT written FROM files WHERE file_id = '$2'")" = 0 ] || fail "$4: output written"
  [ "$(sql "SELECT count(*) FROM audit WHERE object = 'task:$1' AND action LIKE 'task signs with%'")" = 0 ] ||
    fail "$4: a key use was audited"
  ok "$4: the task failed ($r); nothing signed, no key use"
}
check "$T_flip" "$O_flip" approval "an approval the owner never gave, written by the host"
check "$T_swap" "$O_swap" task "the approved wasm_key swapped for another of alice's keys"

# ---- the private key stays inside -------------------------------------------------
if grep -q 'PRIVATE KEY' "$MT_WORK/server.log"; then fail "a private key in the server log"; fi
[ "$(metric)" = 3 ] || fail "mesatee_task_key_signs_total after the refusals: $(metric)"
ok "no key material in the server log; the refusals metered nothing"
echo "it_keystore_wasm: all checks passed"
