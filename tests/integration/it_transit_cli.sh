#!/usr/bin/env bash
# `mesatee key ...` (issue 10, docs/cli.md, docs/keystore.md): the KeyStore
# transit API from the CLI, for every subcommand, with signatures checked by
# openssl, and bad input (wrong key type, too-old version, tampered
# ciphertext, another user's key, unknown algorithm, garbage options) giving a
# clear error and changing nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mt_start_server
as admin login --user admin --password-file "$MT_WORK/admin.pw" >/dev/null
mt_add_user alice
mt_add_user bob
W=$MT_WORK
printf 'the quick brown fox' > "$W/msg"

as alice key create k1 | grep -q '^type: aes256-gcm96$' || fail "key create"
as alice key create e1 --type ecdsa-p256 >/dev/null
as alice key create r1 --type rsa-2048 >/dev/null
as alice key create h1 --type hmac >/dev/null
[ "$(as alice key list | tr '\n' ' ')" = "e1 h1 k1 r1 " ] || fail "key list: $(as alice key list)"
ok "key create, key list"
as alice key read e1 | grep -q 'P-256' || fail "key read"
as alice --output json key read e1 | jq -er '.data.keys["1"].public_key' > "$W/e1.pem"
openssl pkey -pubin -in "$W/e1.pem" -noout || fail "key read: public key is not PEM"
ok "key read: the public key"

ct=$(as alice key encrypt k1 --in "$W/msg")
case "$ct" in vault:v1:*) ;; *) fail "key encrypt: $ct" ;; esac
as alice key decrypt k1 "$ct" --out "$W/back"
cmp -s "$W/msg" "$W/back" || fail "key decrypt"
printf 'hdr' > "$W/aad"
ct_ad=$(as alice key encrypt k1 --in "$W/msg" --aad-file "$W/aad")
[ "$(as alice key decrypt k1 "$ct_ad" --aad-file "$W/aad")" = "the quick brown fox" ] || fail "decrypt with aad"
expect_fail "decrypt without the associated data" "decryption failed" as alice key decrypt k1 "$ct_ad"
ok "key encrypt, key decrypt (with associated data)"
as alice key rotate k1 | grep -q '^latest_version: 2$' || fail "key rotate"
rw=$(as alice key rewrap k1 "$ct")
case "$rw" in vault:v2:*) ;; *) fail "key rewrap: $rw" ;; esac
[ "$(as alice key decrypt k1 "$rw")" = "the quick brown fox" ] || fail "decrypt rewrapped"
ok "key rotate, key rewrap"
as alice key datakey k1 --bits 128 | grep -q '^plaintext: ' || fail "key datakey"
as alice key datakey k1 --wrapped | grep -q '^plaintext: ' && fail "key datakey --wrapped shows a plaintext"
ok "key datakey"

sig=$(as alice key sign e1 --in "$W/msg")
as alice key verify e1 "$sig" --in "$W/msg" | grep -q '^valid$' || fail "key verify"
echo "${sig#vault:v1:}" | base64 -d > "$W/sig.der"
openssl dgst -sha256 -verify "$W/e1.pem" -signature "$W/sig.der" "$W/msg" >/dev/null ||
  fail "openssl does not verify the ECDSA signature"
printf 'other' > "$W/other"
expect_fail "verify of other data" "invalid" as alice key verify e1 "$sig" --in "$W/other"
rsig=$(as alice key sign r1 --in "$W/msg" --hash sha2-512 --signature-algorithm pkcs1v15)
as alice --output json key read r1 | jq -er '.data.keys["1"].public_key' > "$W/r1.pem"
echo "${rsig#vault:v1:}" | base64 -d > "$W/rsig"
openssl dgst -sha512 -verify "$W/r1.pem" -signature "$W/rsig" "$W/msg" >/dev/null ||
  fail "openssl does not verify the RSA PKCS#1 v1.5 signature"
openssl dgst -sha256 -binary "$W/msg" > "$W/digest"
psig=$(as alice key sign r1 --in "$W/digest" --prehashed)
echo "${psig#vault:v1:}" | base64 -d > "$W/psig"
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto \
  -verify "$W/r1.pem" -signature "$W/psig" "$W/msg" >/dev/null ||
  fail "openssl does not verify the prehashed RSA-PSS signature"
ok "key sign, key verify: openssl verifies ECDSA, RSA PKCS#1 v1.5 and prehashed PSS signatures"
hm=$(as alice key hmac h1 --in "$W/msg" --hash sha2-384)
as alice key verify h1 "$hm" --hmac --hash sha2-384 --in "$W/msg" | grep -q '^valid$' || fail "hmac verify"
ok "key hmac, key verify --hmac"
[ "$(as alice key random --bytes 20 --format hex | tr -d '\n' | wc -c)" = 40 ] || fail "key random"
[ "$(as alice key hash --in "$W/msg")" = "$(sha256sum "$W/msg" | cut -d' ' -f1)" ] || fail "key hash"
[ "$(as alice key hash --in "$W/msg" --hash sha3-256)" = "$(openssl dgst -sha3-256 -r "$W/msg" | cut -d' ' -f1)" ] ||
  fail "key hash sha3-256"
ok "key random, key hash"

# import: an ed25519 key made by openssl; its signatures verify with openssl
openssl genpkey -algorithm ed25519 -outform DER -out "$W/ed.der" 2>/dev/null
openssl pkey -inform DER -in "$W/ed.der" -pubout -out "$W/ed.pub"
as alice key import imp --type ed25519 --material "$W/ed.der" | grep -q '^imported_key: true$' ||
  fail "key import"
isig=$(as alice key sign imp --in "$W/msg")
echo "${isig#vault:v1:}" | base64 -d > "$W/isig"
openssl pkeyutl -verify -pubin -inkey "$W/ed.pub" -rawin -in "$W/msg" -sigfile "$W/isig" >/dev/null ||
  fail "the imported key's signature does not verify with the original"
expect_fail "import of a key that exists" "already exists" as alice key import imp --type ed25519 --material "$W/ed.der"
ok "key import (BYOK): signatures verify with the original key"

# grants: bob uses alice:e1 for verify only
expect_fail "bob without a grant" "no such key" as bob key sign alice:e1 --in "$W/msg"
as alice key grant e1 --user bob --op verify >/dev/null
as bob key verify alice:e1 "$sig" --in "$W/msg" | grep -q '^valid$' || fail "bob verifies with a grant"
expect_fail "bob may only verify" "no such key" as bob key sign alice:e1 --in "$W/msg"
expect_fail "bob may not rotate alice's key" "owner" as bob key rotate alice:e1
as bob key list | grep -qx 'alice:e1' || fail "bob lists alice:e1"
as alice key revoke e1 --user bob >/dev/null
expect_fail "after revoke" "no such key" as bob key verify alice:e1 "$sig" --in "$W/msg"
ok "key grant, key revoke"

# bad input: clear errors, nothing changed
before=$(as alice --output json key read k1 | jq -c '.data')
expect_fail "wrong key type" "does not support signing" as alice key sign k1 --in "$W/msg"
expect_fail "wrong key type (encrypt with ecdsa)" "does not support" as alice key encrypt e1 --in "$W/msg"
expect_fail "a version that does not exist" "does not exist" as alice key encrypt k1 --in "$W/msg" --key-version 7
expect_fail "tampered ciphertext" "decryption failed" as alice key decrypt k1 "${ct%????}AAA="
as alice key config k1 --min-decryption-version 2 >/dev/null
expect_fail "too-old version" "too old" as alice key decrypt k1 "$ct"
expect_fail "unknown hash algorithm" "unknown hash algorithm" as alice key sign e1 --in "$W/msg" --hash md5
expect_fail "unknown key type" "unknown key type" as alice key create x1 --type des
expect_fail "bad key name" "invalid key name" as alice key create 'bad/name'
expect_fail "garbage version" "version number" as alice key encrypt k1 --in "$W/msg" --key-version x
expect_fail "garbage --bits" "128, 256 or 512" as alice key datakey k1 --bits 7
expect_fail "garbage --deletion-allowed" "true or false" as alice key config k1 --deletion-allowed maybe
expect_fail "config without options" "nothing to configure" as alice key config k1
expect_fail "grant without --op" "--op" as alice key grant k1 --user bob
expect_fail "grant of an unknown operation" "operations" as alice key grant k1 --user bob --op export
expect_fail "delete without deletion_allowed" "deletion is not allowed" as alice key delete k1
after=$(as alice --output json key read k1 | jq -c '.data | .min_decryption_version = 1')
[ "$before" = "$after" ] || fail "the refused requests changed the key: $before vs $after"
ok "bad input: clear errors; only the accepted config changed"

as alice key config k1 --deletion-allowed true >/dev/null
as alice key delete k1 | grep -q 'deleted k1' || fail "key delete"
expect_fail "deleted key" "no such key" as alice key read k1
ok "key config, key delete"
