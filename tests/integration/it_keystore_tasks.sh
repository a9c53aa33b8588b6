#!/usr/bin/env bash
# KeyStore keys used by tasks (docs/keystore.md, "Keys in tasks"): alice owns ecdsa-p256,
# rsa-2048 and aes KeyStore keys; bob provides a document; a task that alice
# takes part in names her key in its arguments ("key": "alice/NAME"), both
# approve, and the built-in (keystore_sign, rsa_sign) signs bob's data with
# her key inside the worker; the signature verifies with the public key that
# `mesatee key read` gives out. Refused: a key whose owner does not take part (at
# create, the same answer whether or not the key exists), a task the owner
# has not approved (invoke), a key that does not exist or is of the wrong type
# (the task fails at dispatch; the key never reaches the worker), garbage
# arguments. The private key appears in no log.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 0; }

mt_start_server
mt_login admin
for u in alice bob carol; do mt_add_user "$u"; done

# pubkey USER NAME FILE [VERSION]: the key's public key (PEM) from
# `mesatee key read`, of VERSION or the latest.
pubkey() {
  local sel='max_by(.key | tonumber)'
  [ -z "${4:-}" ] || sel="map(select(.key == \"$4\")) | .[0]"
  as "$1" --output json key read "$2" | jq -r ".data.keys | to_entries | $sel | .value.public_key" >"$3"
  grep -q 'BEGIN PUBLIC KEY' "$3" || fail "no public key for $1/$2: $(cat "$3")"
}

as alice key create notary-ec --type ecdsa-p256 >/dev/null
as alice key create notary-rsa --type rsa-2048 >/dev/null
as alice key create vault --type aes256-gcm96 >/dev/null
as carol key create secret --type ecdsa-p256 >/dev/null
pubkey alice notary-ec "$MT_WORK/ec.pub"
pubkey alice notary-rsa "$MT_WORK/rsa.pub"
ok "alice's KeyStore keys created"

printf 'I, Bob, agree to the terms.\n' >"$MT_WORK/doc.txt"
as bob file encrypt --in "$MT_WORK/doc.txt" --out "$MT_WORK/doc.enc" --key-out "$MT_WORK/doc.key" >/dev/null
DOC=$(as bob file register "$(as bob file upload "$MT_WORK/doc.enc")" --key "$MT_WORK/doc.key")
FN=$(as alice function register --name kssign --builtin keystore_sign --public --input-slot data \
  --arg key=:overridable --arg key_version=0:overridable)
FR=$(as alice function register --name rsasign --builtin rsa_sign --public --input-slot data \
  --arg key=:overridable --arg padding=pkcs1:overridable)

# run_task CREATOR FUNCTION KEY [ARG...]: creates, bob assigns, both approve,
# creator invokes; prints `task wait`'s line.
run_task() {
  local c=$1 f=$2 k=$3; shift 3
  local t; t=$(as "$c" task create --function "$f" --arg "key=$k" "$@" --input data=bob)
  as bob task assign "$t" --input "data=$DOC" >/dev/null
  as alice task approve "$t" >/dev/null; as bob task approve "$t" >/dev/null
  as "$c" task invoke "$t" >/dev/null
  as "$c" task wait "$t" --timeout 60 2>&1 || true
}
verify() { # verify LINE PUBKEY
  local sig=${1#finished: }
  printf '%s' "$sig" | base64 -d >"$MT_WORK/doc.sig" || fail "signature is not base64: $1"
  openssl dgst -sha256 -verify "$2" -signature "$MT_WORK/doc.sig" "$MT_WORK/doc.txt" >/dev/null ||
    fail "signature does not verify with $2"
}

line=$(run_task alice "$FN" alice/notary-ec)
case "$line" in finished:*) ;; *) fail "keystore_sign with alice's ecdsa key: $line" ;; esac
verify "$line" "$MT_WORK/ec.pub"
ok "keystore_sign: bob's data signed with alice's ecdsa-p256 key verifies with its public key"
for u in alice bob; do
  as "$u" --output json audit list --limit 1000 | jq -r '.entries[] | "\(.actor) \(.action)"' |
    grep -qx "scheduler task signs with KeyStore key alice/notary-ec v1" ||
    fail "$u does not see the key use in the audit log"
done
ok "the key use is in the audit log, for every participant"

line=$(run_task alice "$FR" alice/notary-rsa)
case "$line" in finished:*) ;; *) fail "rsa_sign with alice's rsa key: $line" ;; esac
verify "$line" "$MT_WORK/rsa.pub"
ok "rsa_sign: signed with alice's rsa-2048 KeyStore key (PKCS#1 v1.5), verifies"

# versions: after a rotation the latest signs; key_version pins an older one
as alice key rotate notary-ec >/dev/null
pubkey alice notary-ec "$MT_WORK/ec2.pub" 2
line=$(run_task alice "$FN" alice/notary-ec)
verify "$line" "$MT_WORK/ec2.pub"
line=$(run_task alice "$FN" alice/notary-ec --arg key_version=1)
verify "$line" "$MT_WORK/ec.pub"
line=$(run_task alice "$FN" alice/notary-ec --arg key_version=7)
case "$line" in *"the KeyStore key is not available to this task"*) ;; *) fail "version 7: $line" ;; esac
ok "key_version: the latest by default, a named version when pinned, a missing one refused"

# ---- refused ------------------------------------------------------------------
msg="can be used only by a task its owner, or a user the owner granted 'sign' on it, takes part in"
expect_fail "owner not a participant (bob names alice's key)" "$msg" \
  as bob task create --function "$FN" --arg key=alice/notary-ec --input data=bob
a=$(as alice task create --function "$FN" --arg key=carol/secret --input data=bob 2>&1 || true)
b=$(as alice task create --function "$FN" --arg key=carol/none --input data=bob 2>&1 || true)
case "$a" in *"$msg"*) ;; *) fail "carol's key named by alice: $a" ;; esac
[ "$a" = "$b" ] || fail "the refusal differs for an existing and a missing key: '$a' vs '$b'"
ok "another user's key: the same refusal whether or not it exists"

# a grant of "sign" stands for the owner: carol grants alice, alice's task
# (carol not in it) signs with carol's key; a grant of "verify" only does not
as carol key grant secret --user alice --op verify >/dev/null
expect_fail "a grant without sign" "$msg" \
  as alice task create --function "$FN" --arg key=carol/secret --input data=bob
as carol key grant secret --user alice --op verify --op sign >/dev/null
pubkey carol secret "$MT_WORK/carol.pub"
line=$(run_task alice "$FN" carol:secret)
case "$line" in finished:*) ;; *) fail "carol's key granted to alice: $line" ;; esac
verify "$line" "$MT_WORK/carol.pub"
ok "a participant the owner granted 'sign' uses the key (OWNER:NAME form)"
t=$(as alice task create --function "$FN" --arg key=carol/secret --input data=bob)
as carol key revoke secret --user alice >/dev/null
expect_fail "grant revoked" "$msg" \
  as alice task create --function "$FN" --arg key=carol/secret --input data=bob
as bob task assign "$t" --input "data=$DOC" >/dev/null
as alice task approve "$t" >/dev/null; as bob task approve "$t" >/dev/null
as alice task invoke "$t" >/dev/null
line=$(as alice task wait "$t" --timeout 60 2>&1 || true)
case "$line" in *"$msg"*) ;; *) fail "grant revoked after create: $line" ;; esac
ok "a grant revoked after task create: the task fails at dispatch"

t=$(as alice task create --function "$FN" --arg key=alice/notary-ec --input data=bob)
as bob task assign "$t" --input "data=$DOC" >/dev/null
as bob task approve "$t" >/dev/null
expect_fail "owner has not approved" "every participant" as alice task invoke "$t"

line=$(run_task alice "$FN" alice/nosuch)
case "$line" in *"argument 'key': the KeyStore key is not available to this task"*) ;;
  *) fail "missing key: $line" ;; esac
ok "a key that does not exist: the task fails at dispatch"
line=$(run_task alice "$FR" alice/notary-ec)
case "$line" in *"rsa_sign cannot sign with a KeyStore key of type ecdsa-p256"*) ;;
  *) fail "rsa_sign with an ecdsa key: $line" ;; esac
line=$(run_task alice "$FN" alice/vault)
case "$line" in *"cannot sign with a KeyStore key of type aes256-gcm96"*) ;;
  *) fail "keystore_sign with an aes key: $line" ;; esac
ok "wrong key type: the task fails naming the type"

expect_fail "garbage key argument" "expected a KeyStore key OWNER/NAME" \
  as alice task create --function "$FN" --arg 'key=not a key' --input data=bob
expect_fail "key without owner" "expected a KeyStore key OWNER/NAME" \
  as alice task create --function "$FN" --arg key=notary-ec --input data=bob
expect_fail "negative version" "argument 'key_version'" \
  as alice task create --function "$FN" --arg key=alice/notary-ec --arg key_version=-1 --input data=bob
expect_fail "version not a number" "argument 'key_version'" \
  as alice task create --function "$FN" --arg key=alice/notary-ec --arg key_version=x --input data=bob

# ---- the private key stays inside -------------------------------------------------
if grep -q 'PRIVATE KEY' "$MT_WORK/server.log"; then fail "a private key in the server log"; fi
for t in $(as alice --output json task list | jq -r '.tasks[].task_id'); do
  if as alice --output json task show "$t" | grep -q 'PRIVATE KEY\|"der"'; then
    fail "key material in task $t"
  fi
done
ok "no key material in the server log or the tasks"
