#!/usr/bin/env bash
# libmesatee-pkcs11 against a live server, beside SoftHSM2 (issue 10): the
# same pkcs11-tool (opensc), OpenSSL engine_pkcs11 and p11tool (GnuTLS)
# commands run against both modules. Signatures are verified by plain
# openssl with the exported public key, which must equal the server's
# (GET /v1/transit/keys/NAME). Where the two modules differ the script says
# so (docs/keystore.md, "PKCS#11 module", "Compared with SoftHSM2").
# Environment: MESATEE_BIN, MESATEE_PKCS11 (the module), MT_P11_RANDCALL
# (tests/unit/test_p11_randcall binary).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${MESATEE_PKCS11:?MESATEE_PKCS11 must point at libmesatee-pkcs11.so}"
mt_sanitizer_tools "$MESATEE_PKCS11"
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
ENGINE=$(find /usr/lib -path '*engines-3/pkcs11.so' 2>/dev/null | head -n 1)
for t in pkcs11-tool p11tool softhsm2-util openssl curl; do
  command -v "$t" >/dev/null || { echo "skip: $t not installed (scripts/install-deps)"; exit 77; }
done
[ -f "$SOFTHSM" ] && [ -n "$ENGINE" ] || { echo "skip: softhsm2 / libengine-pkcs11-openssl missing"; exit 77; }

mt_start_server
mt_login admin
mt_add_user alice
mt_add_user bob
PIN=$(cat "$MT_WORK/alice.pw")
W=$MT_WORK/p11; mkdir -p "$W"

# Our module: server + pinned CA; the PIN is alice's password.
cat > "$W/mesatee.conf" <<CONF
# written by it_pkcs11.sh
server = $MESATEE_SERVER
ca = $MESATEE_CA
user = alice
token_label = cmp
CONF
export MESATEE_PKCS11_CONF=$W/mesatee.conf
if [ -n "${MT_TOOL_PRELOAD:-}" ]; then
  # Sanitizer build: the third-party tools would run with the ASan runtime
  # preloaded, and pkcs11-tool 0.23 itself reads freed memory when it exports
  # an EC public key (ASan reports it inside pkcs11-tool, with SoftHSM2 too).
  # So the side-by-side comparison runs in the normal build; here the module
  # runs the logged-in random-call test under ASan+UBSan.
  [ -n "${MT_P11_RANDCALL:-}" ] || { echo "skip: sanitizer build without MT_P11_RANDCALL"; exit 77; }
  as alice key create ec1 --type ecdsa-p256 >/dev/null && as alice key create rsa1 --type rsa-2048 >/dev/null &&
    as alice key create aes1 >/dev/null || fail "transit keys for the random-call test"
  P11_RANDCALL_CONF=$W/mesatee.conf P11_RANDCALL_PIN=$(cat "$MT_WORK/alice.pw") \
    P11_RANDCALL_ITER=${P11_RANDCALL_ITER:-3000} \
    "$MT_P11_RANDCALL" "$MESATEE_PKCS11" > "$W/randcall.out" 2>&1 ||
    fail "random calls: $(tail -n 20 "$W/randcall.out")"
  ok "sanitizer build: random-call test logged in to the live server under ASan+UBSan"
  echo "SKIP (sanitizer build only): the pkcs11-tool / engine / p11tool comparison with SoftHSM2 runs in the normal build"
  exit 0
fi
# SoftHSM2: own config and token directory, same token label and PIN.
mkdir -p "$W/softhsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$W/softhsm/tokens" > "$W/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm/softhsm2.conf
softhsm2-util --init-token --free --label cmp --pin "$PIN" --so-pin "so-$PIN" >/dev/null

declare -A MOD=([softhsm]=$SOFTHSM [mesatee]=$MESATEE_PKCS11)
SIDES="softhsm mesatee"
p11() { local side=$1; shift; pkcs11-tool --module "${MOD[$side]}" --token-label cmp "$@"; }
p11l() { local side=$1; shift; p11 "$side" --login --pin "$PIN" "$@"; }
hexid() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
# CKA_ID of a key: SoftHSM keeps the one given at generation; ours is "NAME:vN".
declare -A ID
ID[softhsm.ec1]=01; ID[softhsm.rsa1]=02; ID[softhsm.ed1]=03
ID[mesatee.ec1]=$(hexid ec1:v1); ID[mesatee.rsa1]=$(hexid rsa1:v1); ID[mesatee.ed1]=$(hexid ed1:v1)
server_pub() { # server_pub NAME VERSION > PEM: the server's public key of that version
  curl -sS --cacert "$MESATEE_CA" -H "Authorization: Bearer $(cat "$MT_WORK/alice.token")" \
    "$MESATEE_SERVER/v1/transit/keys/$1" |
    /usr/bin/python3 -c '
import base64, json, sys
k = json.load(sys.stdin)["data"]["keys"][sys.argv[1]]["public_key"]
if not k.startswith("-----"):  # ed25519: base64 of the raw key, as Vault gives it
    der = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(k)
    k = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PUBLIC KEY-----\n"
print(k, end="")' "$2"
}

# --- garbage configuration: a clear error from C_Initialize, no crash -------
printf 'server = https://127.0.0.1:1\nbogus = 1\n' > "$W/bad.conf"
if MESATEE_PKCS11_CONF=$W/bad.conf pkcs11-tool --module "$MESATEE_PKCS11" -L > "$W/bad.out" 2>&1; then
  fail "garbage config accepted"
fi
grep -q "line 2: unknown key 'bogus'" "$W/bad.out" || fail "garbage config: $(cat "$W/bad.out")"
grep -q CKR_GENERAL_ERROR "$W/bad.out" || fail "garbage config: no CKR: $(cat "$W/bad.out")"
MESATEE_PKCS11_CONF=$W/missing.conf pkcs11-tool --module "$MESATEE_PKCS11" -L > "$W/bad.out" 2>&1 &&
  fail "missing config accepted"
grep -q "missing.conf" "$W/bad.out" || fail "missing config: $(cat "$W/bad.out")"
ok "garbage / missing configuration: C_Initialize fails and names the line or file"

# --- list slots, mechanisms --------------------------------------------------
for s in $SIDES; do
  p11 "$s" --list-slots > "$W/$s.slots" 2>&1 || fail "$s --list-slots: $(cat "$W/$s.slots")"
  grep -q 'token label *: cmp' "$W/$s.slots" || fail "$s: token label: $(cat "$W/$s.slots")"
  p11 "$s" --list-mechanisms 2>&1 | sed -n 's/^  \([A-Z0-9-]*\).*/\1/p' | sort -u > "$W/$s.mechs"
done
ok "--list-slots: both show token 'cmp'"
common=$(comm -12 "$W/softhsm.mechs" "$W/mesatee.mechs" | tr '\n' ' ')
for m in ECDSA ECDSA-KEY-PAIR-GEN RSA-PKCS RSA-PKCS-KEY-PAIR-GEN RSA-PKCS-PSS \
  SHA256-RSA-PKCS SHA256-RSA-PKCS-PSS RSA-PKCS-OAEP AES-GCM AES-KEY-GEN SHA256 SHA384 SHA512; do
  case " $common " in *" $m "*) ;; *) fail "mechanism $m not listed by both: common = $common";; esac
done
only_ours=$(comm -13 "$W/softhsm.mechs" "$W/mesatee.mechs" | tr '\n' ' ')
ok "--list-mechanisms: our list shares $(echo "$common" | wc -w) mechanisms with SoftHSM2 (ours only: ${only_ours:-none})"

# --- wrong PIN, no login -------------------------------------------------------
p11 mesatee --login --pin wrong-pin --list-objects > "$W/badpin.out" 2>&1 && fail "wrong PIN accepted"
grep -q CKR_PIN_INCORRECT "$W/badpin.out" || fail "wrong PIN: $(cat "$W/badpin.out")"
ok "wrong PIN: CKR_PIN_INCORRECT"

# --- key pair generation: EC P-256, RSA 2048, Ed25519 (ours) -------------------
for s in $SIDES; do
  p11l "$s" --keypairgen --key-type EC:prime256v1 --label ec1 --id 01 > "$W/$s.gen" 2>&1 ||
    fail "$s EC keypairgen: $(cat "$W/$s.gen")"
  p11l "$s" --keypairgen --key-type rsa:2048 --label rsa1 --id 02 >> "$W/$s.gen" 2>&1 ||
    fail "$s RSA keypairgen: $(cat "$W/$s.gen")"
done
p11l mesatee --keypairgen --key-type EC:prime256v1 --label ec1 > "$W/dup.out" 2>&1 &&
  fail "a second key named ec1 was created"
grep -q CKR_ATTRIBUTE_VALUE_INVALID "$W/dup.out" || fail "duplicate key name: $(cat "$W/dup.out")"
p11l mesatee --keypairgen --key-type EC:secp521r1 --label ec521 > "$W/p521.out" 2>&1 &&
  fail "P-521 accepted"
grep -q CKR_ATTRIBUTE_VALUE_INVALID "$W/p521.out" || fail "P-521: $(cat "$W/p521.out")"
ok "--keypairgen EC p256 + RSA 2048 on both; duplicate name / P-521 refused"
for s in $SIDES; do
  p11l "$s" --keygen --key-type AES:32 --label aes1 --sensitive > "$W/$s.aes" 2>&1 || fail "$s AES keygen: $(cat "$W/$s.aes")"
  grep -q 'sensitive, always sensitive, never extractable' "$W/$s.aes" || fail "$s AES key: $(cat "$W/$s.aes")"
  p11l "$s" --generate-random 48 -o "$W/$s.rnd" >/dev/null 2>&1 || fail "$s --generate-random"
  [ "$(stat -c %s "$W/$s.rnd")" = 48 ] || fail "$s: random bytes"
done
p11l mesatee --keygen --key-type AES:32 --label aes2 > "$W/aes2.out" 2>&1 && fail "non-sensitive AES key accepted"
grep -q CKR_TEMPLATE_INCONSISTENT "$W/aes2.out" || fail "non-sensitive AES key: $(cat "$W/aes2.out")"
ok "--keygen AES:32 --sensitive and --generate-random on both; a non-sensitive key refused (CKR_TEMPLATE_INCONSISTENT)"

# --- objects: attributes, public keys equal the server's -----------------------
for s in $SIDES; do
  p11l "$s" --list-objects > "$W/$s.objs" 2>&1 || fail "$s --list-objects: $(cat "$W/$s.objs")"
done
for k in ec1 rsa1; do
  for s in $SIDES; do
    grep -q "label: *$k\$" "$W/$s.objs" || fail "$s: no object $k: $(cat "$W/$s.objs")"
    p11l "$s" --read-object --type pubkey --label "$k" -o "$W/$s.$k.der" >/dev/null 2>&1 ||
      fail "$s: cannot read public key $k"
    openssl pkey -pubin -inform DER -in "$W/$s.$k.der" -out "$W/$s.$k.pem" || fail "$s: $k DER"
  done
  server_pub "$k" 1 | openssl pkey -pubin -outform DER -out "$W/server.$k.der"
  cmp -s "$W/server.$k.der" "$W/mesatee.$k.der" || fail "$k: module public key != server's"
done
grep -A4 'Private Key Object; EC' "$W/mesatee.objs" | grep -q 'sensitive, always sensitive, never extractable' ||
  fail "private key attributes: $(cat "$W/mesatee.objs")"
ok "--list-objects on both; exported public keys ec1/rsa1 equal the server's; private keys sensitive, never extractable"

# --- sign / verify --------------------------------------------------------------
printf 'sign me: %s\n' "$(date +%s%N)" > "$W/msg"
openssl dgst -sha256 -binary "$W/msg" > "$W/msg.h"
(printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$W/msg.h") > "$W/msg.di"
for s in $SIDES; do
  ec=${ID[$s.ec1]}; rsa=${ID[$s.rsa1]}
  p11l "$s" --sign --mechanism ECDSA --id "$ec" -i "$W/msg.h" -o "$W/$s.ec.sig" --signature-format openssl >/dev/null 2>&1 ||
    fail "$s ECDSA sign"
  openssl dgst -sha256 -verify "$W/$s.ec1.pem" -signature "$W/$s.ec.sig" "$W/msg" >/dev/null ||
    fail "$s ECDSA signature does not verify with openssl"
  p11l "$s" --sign --mechanism ECDSA --id "$ec" -i "$W/msg.h" -o "$W/$s.ec.raw" >/dev/null 2>&1
  p11l "$s" --verify --mechanism ECDSA --id "$ec" -i "$W/msg.h" --signature-file "$W/$s.ec.raw" > "$W/$s.v" 2>&1 ||
    fail "$s ECDSA --verify: $(cat "$W/$s.v")"
  p11l "$s" --sign --mechanism RSA-PKCS --id "$rsa" -i "$W/msg.di" -o "$W/$s.rsa.sig" >/dev/null 2>&1 ||
    fail "$s RSA-PKCS sign"
  openssl dgst -sha256 -verify "$W/$s.rsa1.pem" -signature "$W/$s.rsa.sig" "$W/msg" >/dev/null ||
    fail "$s RSA-PKCS signature does not verify"
  # transit signs PSS with the largest salt (Vault's "auto"): --salt-len 222 (max for RSA 2048, SHA-256) on both
  p11l "$s" --sign --mechanism RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 222 \
    --id "$rsa" -i "$W/msg.h" -o "$W/$s.pss.sig" >/dev/null 2>&1 || fail "$s RSA-PKCS-PSS sign"
  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max \
    -verify "$W/$s.rsa1.pem" -signature "$W/$s.pss.sig" "$W/msg" >/dev/null || fail "$s PSS does not verify"
done
cmp -s "$W/softhsm.rsa.sig" "$W/mesatee.rsa.sig" && fail "two different RSA keys gave the same signature"
# Mechanisms SoftHSM2 2.6 with OpenSSL 3 fails on (CKR_GENERAL_ERROR / CKR_MECHANISM_INVALID): ours only.
for mech in SHA256-RSA-PKCS SHA256-RSA-PKCS-PSS; do
  extra=(); [ "$mech" = SHA256-RSA-PKCS-PSS ] && extra=(--mgf MGF1-SHA256 --salt-len 222)
  p11l mesatee --sign --mechanism "$mech" "${extra[@]}" --id "${ID[mesatee.rsa1]}" -i "$W/msg" -o "$W/m.$mech" >/dev/null 2>&1 ||
    fail "$mech sign"
  p11l mesatee --verify --mechanism "$mech" "${extra[@]}" --id "${ID[mesatee.rsa1]}" -i "$W/msg" \
    --signature-file "$W/m.$mech" > "$W/v.out" 2>&1 || fail "$mech --verify: $(cat "$W/v.out")"
done
openssl dgst -sha256 -verify "$W/mesatee.rsa1.pem" -signature "$W/m.SHA256-RSA-PKCS" "$W/msg" >/dev/null ||
  fail "SHA256-RSA-PKCS does not verify"
p11l mesatee --sign --mechanism ECDSA-SHA256 --id "${ID[mesatee.ec1]}" -i "$W/msg" -o "$W/m.ecsha" \
  --signature-format openssl >/dev/null 2>&1 || fail "ECDSA-SHA256 sign"
openssl dgst -sha256 -verify "$W/mesatee.ec1.pem" -signature "$W/m.ecsha" "$W/msg" >/dev/null ||
  fail "ECDSA-SHA256 does not verify"
# a flipped signature byte is refused
cp "$W/mesatee.ec.raw" "$W/bad.raw"; mt_flip_byte "$W/bad.raw" 10
p11l mesatee --verify --mechanism ECDSA --id "${ID[mesatee.ec1]}" -i "$W/msg.h" --signature-file "$W/bad.raw" \
  > "$W/v.out" 2>&1 && grep -q 'Signature is valid' "$W/v.out" && fail "tampered signature accepted"
p11l mesatee --sign --mechanism RSA-PKCS --id "${ID[mesatee.ec1]}" -i "$W/msg.di" -o "$W/x" > "$W/x.out" 2>&1 &&
  fail "RSA-PKCS with an EC key accepted"
grep -q CKR_KEY_TYPE_INCONSISTENT "$W/x.out" || fail "wrong key type: $(cat "$W/x.out")"
ok "sign/verify ECDSA, RSA-PKCS, RSA-PKCS-PSS on both (openssl verifies); SHA256-RSA-PKCS(-PSS), ECDSA-SHA256 on ours; tampered / wrong key type refused"

# --- RSA-OAEP (SHA-256, MGF1-SHA-256): openssl encrypts, both modules decrypt -----
# pkcs11-tool 0.23 --encrypt takes secret keys only ("Secret key not found" for RSA), so
# C_Encrypt with CKM_RSA_PKCS_OAEP is driven by test_p11_randcall (run below) instead.
# SoftHSM2 2.6 does OAEP with SHA-1 only (SHA-256 parameters: CKR_ARGUMENTS_BAD), transit
# with SHA-256 only: each module gets its own parameters, the same plaintext.
printf 'secret %s' "$RANDOM" > "$W/pt"
declare -A OAEP_MD=([softhsm]=sha1 [mesatee]=sha256) OAEP_HASH=([softhsm]=SHA-1 [mesatee]=SHA256)
for s in $SIDES; do
  md=${OAEP_MD[$s]}
  openssl pkeyutl -encrypt -pubin -inkey "$W/$s.rsa1.pem" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:$md -pkeyopt rsa_mgf1_md:$md -in "$W/pt" -out "$W/$s.ct" ||
    fail "$s: openssl pkeyutl -encrypt"
  p11l "$s" --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm "${OAEP_HASH[$s]}" \
    --mgf "MGF1-$(echo "${OAEP_HASH[$s]}" | tr -d -)" \
    --id "${ID[$s.rsa1]}" -i "$W/$s.ct" -o "$W/$s.dec" > "$W/d.out" 2>&1 || fail "$s OAEP decrypt: $(cat "$W/d.out")"
  cmp -s "$W/pt" "$W/$s.dec" || fail "$s: OAEP decrypt gave other bytes"
done
p11l softhsm --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
  --id "${ID[softhsm.rsa1]}" -i "$W/softhsm.ct" > "$W/x.out" 2>&1 && fail "SoftHSM2 now takes OAEP-SHA256: test both with it"
cmp -s "$W/softhsm.dec" "$W/mesatee.dec" || fail "the two modules decrypted to different bytes"
# only transit's parameters: SHA-1 OAEP is refused before anything is sent
openssl pkeyutl -encrypt -pubin -inkey "$W/mesatee.rsa1.pem" -pkeyopt rsa_padding_mode:oaep \
  -in "$W/pt" -out "$W/mesatee.ct1"
p11l mesatee --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 \
  --id "${ID[mesatee.rsa1]}" -i "$W/mesatee.ct1" > "$W/x.out" 2>&1 && fail "RSA-OAEP with SHA-1 accepted"
grep -q CKR_MECHANISM_PARAM_INVALID "$W/x.out" || fail "RSA-OAEP SHA-1: $(cat "$W/x.out")"
# a tampered ciphertext
cp "$W/mesatee.ct" "$W/bad.ct"; mt_flip_byte "$W/bad.ct" 40; mt_flip_byte "$W/bad.ct" 41
p11l mesatee --decrypt --mechanism RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
  --id "${ID[mesatee.rsa1]}" -i "$W/bad.ct" -o "$W/bad.dec" > "$W/x.out" 2>&1 && fail "tampered OAEP ciphertext accepted"
grep -q CKR_ENCRYPTED_DATA_INVALID "$W/x.out" || fail "tampered OAEP: $(cat "$W/x.out")"
ok "RSA-OAEP: openssl pkeyutl ciphertexts decrypt with pkcs11-tool on both modules to the same plaintext (SoftHSM2: SHA-1 only; ours: SHA-256 only, SHA-1 refused); tampered ciphertext refused"

# --- OpenSSL through engine_pkcs11: CSR and file signature ----------------------
for s in $SIDES; do
  cat > "$W/$s.openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = ${MOD[$s]}
init = 0
[req]
distinguished_name = dn
[dn]
CNF
  for k in ec1 rsa1; do
    uri="pkcs11:token=cmp;object=$k;type=private;pin-value=$PIN"
    OPENSSL_CONF=$W/$s.openssl.cnf openssl req -new -engine pkcs11 -keyform engine -key "$uri" \
      -subj "/CN=$k-$s" -out "$W/$s.$k.csr" > "$W/req.out" 2>&1 || fail "$s $k: openssl req: $(cat "$W/req.out")"
    openssl req -in "$W/$s.$k.csr" -verify -noout > /dev/null 2>&1 || fail "$s $k: CSR does not verify"
    # libp11 writes our EC point compressed into the CSR (SoftHSM2's: uncompressed)
    conv=(); [ "$k" = ec1 ] && conv=(-ec_conv_form uncompressed)
    openssl req -in "$W/$s.$k.csr" -pubkey -noout | openssl pkey -pubin "${conv[@]}" -outform DER |
      cmp -s - "$W/$s.$k.der" || fail "$s $k: CSR key is not the token's"
    OPENSSL_CONF=$W/$s.openssl.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$uri" \
      -out "$W/$s.$k.dgst" "$W/msg" > "$W/dgst.out" 2>&1 || fail "$s $k: openssl dgst -sign: $(cat "$W/dgst.out")"
    openssl dgst -sha256 -verify "$W/$s.$k.pem" -signature "$W/$s.$k.dgst" "$W/msg" >/dev/null ||
      fail "$s $k: dgst signature does not verify"
    # RSA: with the digest named, so that the module gets a DigestInfo (transit does not
    # sign raw PKCS#1 v1.5 blocks: CKR_DATA_INVALID; SoftHSM2 does)
    dg=(); [ "$k" = rsa1 ] && dg=(-pkeyopt digest:sha256)
    OPENSSL_CONF=$W/$s.openssl.cnf openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$uri" \
      "${dg[@]}" -in "$W/msg.h" -out "$W/$s.$k.pku" > "$W/pku.out" 2>&1 || fail "$s $k: pkeyutl -sign: $(cat "$W/pku.out")"
    openssl pkeyutl -verify -pubin -inkey "$W/$s.$k.pem" "${dg[@]}" -in "$W/msg.h" -sigfile "$W/$s.$k.pku" \
      >/dev/null 2>&1 || fail "$s $k: pkeyutl signature does not verify"
  done
done
ok "openssl req / dgst / pkeyutl with engine pkcs11 on both: CSRs and signatures verify with plain openssl"

# --- p11tool (GnuTLS) -----------------------------------------------------------
for s in $SIDES; do
  GNUTLS_PIN=$PIN p11tool --provider "${MOD[$s]}" --login --list-all "pkcs11:token=cmp" > "$W/$s.p11tool" 2>&1 ||
    fail "$s p11tool --list-all: $(cat "$W/$s.p11tool")"
  for k in ec1 rsa1; do
    grep -q "object=$k;type=private" "$W/$s.p11tool" || fail "$s p11tool: no private $k: $(cat "$W/$s.p11tool")"
    grep -q "object=$k;type=public" "$W/$s.p11tool" || fail "$s p11tool: no public $k"
  done
done
ok "p11tool --provider --list-all lists ec1/rsa1 (private + public) on both"

# --- Ed25519 (ours): after the engine, because libp11 0.4.12 (engine_pkcs11) cannot
# enumerate a token that holds an Ed25519 key ("Unable to enumerate private keys";
# SoftHSM2 2.6 alike) ----------------------------------------------------------
p11l mesatee --keypairgen --key-type EC:edwards25519 --label ed1 --id 03 > "$W/ed.gen" 2>&1 ||
  fail "Ed25519 keypairgen: $(cat "$W/ed.gen")"
p11l mesatee --read-object --type pubkey --label ed1 -o "$W/ed1.der" >/dev/null 2>&1 || fail "read ed1"
openssl pkey -pubin -in "$W/ed1.der" -out "$W/ed1.pem" # pkcs11-tool writes Ed25519 keys as PEM
p11l mesatee --sign --mechanism EDDSA --id "${ID[mesatee.ed1]}" -i "$W/msg" -o "$W/m.ed" >/dev/null 2>&1 ||
  fail "EDDSA sign"
openssl pkeyutl -verify -pubin -inkey "$W/ed1.pem" -rawin -in "$W/msg" -sigfile "$W/m.ed" >/dev/null ||
  fail "Ed25519 signature does not verify"
server_pub ed1 1 | cmp -s - "$W/ed1.pem" || fail "ed1: module public key != server's"
ok "Ed25519: keypairgen, EDDSA signature verifies with openssl, public key equals the server's"

# --- isolation: bob's keys are not alice's objects ------------------------------
cat > "$W/bob.conf" <<CONF
server = $MESATEE_SERVER
ca = $MESATEE_CA
user = bob
token_label = cmp
CONF
MESATEE_PKCS11_CONF=$W/bob.conf pkcs11-tool --module "$MESATEE_PKCS11" --login --pin "$(cat "$MT_WORK/bob.pw")" \
  --keypairgen --key-type EC:prime256v1 --label bobkey >/dev/null 2>&1 || fail "bob keypairgen"
p11l mesatee --list-objects > "$W/objs2" 2>&1
grep -q bobkey "$W/objs2" && fail "alice sees bob's key"
MESATEE_PKCS11_CONF=$W/bob.conf pkcs11-tool --module "$MESATEE_PKCS11" --login --pin "$(cat "$MT_WORK/bob.pw")" \
  --list-objects 2>&1 | grep -q 'label: *ec1$' && fail "bob sees alice's key"
ok "another user's keys are not visible"
# ... until bob grants alice the use of one: then it shows as bob:bobkey and signs
curl -sS -f --cacert "$MESATEE_CA" -H "Authorization: Bearer $(cat "$MT_WORK/bob.token")" \
  -H 'Content-Type: application/json' -d '{"user": "alice", "operations": ["read", "sign"]}' \
  "$MESATEE_SERVER/v1/transit/keys/bobkey/grants" >/dev/null || fail "bob grants alice bobkey"
p11l mesatee --list-objects > "$W/objs5" 2>&1
grep -q 'label: *bob:bobkey$' "$W/objs5" || fail "granted key not shown: $(cat "$W/objs5")"
p11l mesatee --sign --mechanism ECDSA --id "$(hexid bob:bobkey:v1)" -i "$W/msg.h" -o "$W/bob.sig" \
  --signature-format openssl >/dev/null 2>&1 || fail "sign with the granted key"
p11l mesatee --read-object --type pubkey --label bob:bobkey -o "$W/bob.der" >/dev/null 2>&1 || fail "read bob:bobkey"
openssl dgst -sha256 -verify <(openssl pkey -pubin -inform DER -in "$W/bob.der") -signature "$W/bob.sig" "$W/msg" \
  >/dev/null || fail "granted key's signature does not verify"
ok "a key bob granted to alice (read, sign) shows as bob:bobkey and signs"

# nothing changed by the refused and random calls: the keys are still there
p11l mesatee --read-object --type pubkey --label ec1 -o "$W/ec1.again" >/dev/null 2>&1 &&
  cmp -s "$W/ec1.again" "$W/mesatee.ec1.der" || fail "ec1 changed"
# --- PIN = a mesatee token (no `user` in the configuration) ----------------------
printf 'server = %s\nca = %s\ntoken_label = cmp\n' "$MESATEE_SERVER" "$MESATEE_CA" > "$W/token.conf"
MESATEE_PKCS11_CONF=$W/token.conf p11 mesatee --login --pin "$(cat "$MT_WORK/alice.token")" --list-objects \
  > "$W/tok.out" 2>&1 || fail "token as PIN: $(cat "$W/tok.out")"
grep -q 'label: *rsa1$' "$W/tok.out" || fail "token as PIN: no objects: $(cat "$W/tok.out")"
MESATEE_PKCS11_CONF=$W/token.conf p11 mesatee --login --pin "not-a-token" --list-objects > "$W/tok.out" 2>&1 &&
  fail "a wrong token accepted"
grep -q CKR_PIN_INCORRECT "$W/tok.out" || fail "wrong token: $(cat "$W/tok.out")"
ok "without 'user' the PIN is a mesatee token (alice's works, a wrong one is CKR_PIN_INCORRECT)"

# --- key versions: rotate, each version its own objects; a retired version goes away --
api() { # api METHOD PATH [JSON]: alice's REST call
  curl -sS -f --cacert "$MESATEE_CA" -H "Authorization: Bearer $(cat "$MT_WORK/alice.token")" \
    -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} "$MESATEE_SERVER$2"
}
api POST /v1/transit/keys/ec1/rotate '{}' >/dev/null || fail "rotate ec1"
p11l mesatee --list-objects > "$W/objs3" 2>&1
grep -q "ID: *$(hexid ec1:v2)" "$W/objs3" && grep -q "ID: *$(hexid ec1:v1)" "$W/objs3" ||
  fail "versions 1 and 2 of ec1 not both shown: $(cat "$W/objs3")"
p11l mesatee --sign --mechanism ECDSA --id "$(hexid ec1:v2)" -i "$W/msg.h" -o "$W/v2.sig" \
  --signature-format openssl >/dev/null 2>&1 || fail "sign with ec1 v2"
server_pub ec1 2 > "$W/ec1v2.pem"
openssl dgst -sha256 -verify "$W/ec1v2.pem" -signature "$W/v2.sig" "$W/msg" >/dev/null ||
  fail "ec1 v2 signature does not verify with the server's v2 public key"
openssl dgst -sha256 -verify "$W/mesatee.ec1.pem" -signature "$W/v2.sig" "$W/msg" >/dev/null 2>&1 &&
  fail "ec1 v2 signature verifies with v1's key"
api POST /v1/transit/keys/ec1/config '{"min_decryption_version": 2}' >/dev/null || fail "config ec1"
p11l mesatee --list-objects > "$W/objs4" 2>&1
grep -q "ID: *$(hexid ec1:v1)" "$W/objs4" && fail "retired version ec1 v1 still shown"
p11l mesatee --sign --mechanism ECDSA --id "$(hexid ec1:v1)" -i "$W/msg.h" -o "$W/x" > "$W/x.out" 2>&1 &&
  fail "signed with retired version ec1 v1"
ok "rotation: ec1 v1 and v2 are separate objects (CKA_ID ec1:vN), v2 signs with its own key; v1 gone after min_decryption_version 2"

# --- import (C_CreateObject via transit import) and delete (C_DestroyObject) ------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER -out "$W/imp-ec.der" 2>/dev/null &&
  openssl pkey -inform DER -in "$W/imp-ec.der" -pubout -out "$W/imp-ec.pub" &&
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform DER -out "$W/imp-rsa.der" 2>/dev/null &&
  openssl pkey -inform DER -in "$W/imp-rsa.der" -pubout -out "$W/imp-rsa.pub" &&
  head -c 32 /dev/urandom > "$W/imp-aes.key" || fail "import key material"
# pkcs11-tool --sign picks the key by --id: SoftHSM keeps the one given, ours is NAME:v1
ID[softhsm.imp-ec]=11; ID[softhsm.imp-rsa]=12; ID[softhsm.imp-aes]=13
for k in imp-ec imp-rsa imp-aes; do ID[mesatee.$k]=$(hexid "$k:v1"); done
for s in $SIDES; do
  for k in ec rsa; do
    p11l "$s" --write-object "$W/imp-$k.der" --type privkey --label "imp-$k" --id "${ID[$s.imp-$k]}" \
      > "$W/$s.imp.out" 2>&1 || fail "$s --write-object imp-$k: $(cat "$W/$s.imp.out")"
  done
  p11l "$s" --write-object "$W/imp-aes.key" --type secrkey --key-type AES:32 --sensitive --label imp-aes --id "${ID[$s.imp-aes]}" \
    > "$W/$s.imp.out" 2>&1 || fail "$s --write-object imp-aes: $(cat "$W/$s.imp.out")"
  p11l "$s" --sign --mechanism ECDSA --id "${ID[$s.imp-ec]}" -i "$W/msg.h" -o "$W/$s.imp-ec.sig" --signature-format openssl \
    >/dev/null 2>&1 || fail "$s: sign with the imported EC key"
  openssl dgst -sha256 -verify "$W/imp-ec.pub" -signature "$W/$s.imp-ec.sig" "$W/msg" >/dev/null ||
    fail "$s: the imported EC key's signature does not verify with the original public key"
  p11l "$s" --sign --mechanism RSA-PKCS --id "${ID[$s.imp-rsa]}" -i "$W/msg.di" -o "$W/$s.imp-rsa.sig" >/dev/null 2>&1 ||
    fail "$s: sign with the imported RSA key"
  openssl dgst -sha256 -verify "$W/imp-rsa.pub" -signature "$W/$s.imp-rsa.sig" "$W/msg" >/dev/null ||
    fail "$s: the imported RSA key's signature does not verify with the original public key"
done
server_pub imp-ec 1 | openssl pkey -pubin -outform DER > "$W/imp-ec.srv.der"
openssl pkey -pubin -in "$W/imp-ec.pub" -outform DER | cmp -s - "$W/imp-ec.srv.der" ||
  fail "the server's imp-ec public key is not the imported key's"
api GET /v1/transit/keys/imp-aes | grep -q '"type": *"aes256-gcm96"' || fail "imp-aes not on the server"
ok "--write-object privkey (EC P-256, RSA-2048) and secrkey (AES-256) on both; the imported keys sign, openssl verifies with the original public keys"
# what transit cannot hold, and a name that exists, are refused with nothing made on the server
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -outform DER -out "$W/p521.der" 2>/dev/null
p11l mesatee --write-object "$W/p521.der" --type privkey --label imp-p521 > "$W/x.out" 2>&1 && fail "P-521 import accepted"
grep -q CKR_ATTRIBUTE_VALUE_INVALID "$W/x.out" || fail "P-521 import: $(cat "$W/x.out")"
api GET /v1/transit/keys/imp-p521 >/dev/null 2>&1 && fail "a refused import left a key"
p11l mesatee --write-object "$W/imp-ec.pub" --type pubkey --label imp-pub > "$W/x.out" 2>&1 && fail "public key import accepted"
grep -q CKR_ATTRIBUTE_VALUE_INVALID "$W/x.out" || fail "public key import: $(cat "$W/x.out")"
p11l mesatee --write-object "$W/imp-ec.der" --type privkey --label imp-ec > "$W/x.out" 2>&1 && fail "import over an existing key accepted"
grep -q CKR_ATTRIBUTE_VALUE_INVALID "$W/x.out" || fail "import over an existing key: $(cat "$W/x.out")"
p11l mesatee --write-object "$W/imp-ec.der" --type privkey --label 'bad/name' > "$W/x.out" 2>&1 && fail "bad key name accepted"
p11l mesatee --write-object "$W/imp-ec.der" --type privkey --label imp-ec2 --id 01 > "$W/x.out" 2>&1 && fail "a CKA_ID other than NAME:v1 accepted"
grep -q CKR_ATTRIBUTE_READ_ONLY "$W/x.out" || fail "CKA_ID: $(cat "$W/x.out")"
p11l mesatee --write-object "$W/imp-aes.key" --type secrkey --key-type AES:32 --label imp-aes2 > "$W/x.out" 2>&1 &&
  fail "a non-sensitive secret key import accepted"
grep -q CKR_TEMPLATE_INCONSISTENT "$W/x.out" || fail "non-sensitive import: $(cat "$W/x.out")"
ok "import refusals: P-521, a public key, an existing name, a bad name (CKR_ATTRIBUTE_VALUE_INVALID), a CKA_ID other than NAME:v1 (CKR_ATTRIBUTE_READ_ONLY), a non-sensitive key (CKR_TEMPLATE_INCONSISTENT); nothing made"
# delete: refused while deletion_allowed is false (the key stays), then allowed;
# pkcs11-tool 0.23 names no CKR_ACTION_PROHIBITED (0x1b, PKCS#11 2.40)
p11l mesatee --delete-object --type privkey --label imp-ec > "$W/x.out" 2>&1 && fail "delete without deletion_allowed"
grep -qE "CKR_ACTION_PROHIBITED|\(0x1b\)" "$W/x.out" || fail "delete without deletion_allowed: $(cat "$W/x.out")"
api GET /v1/transit/keys/imp-ec >/dev/null || fail "a refused delete removed the key"
p11l mesatee --delete-object --type pubkey --label imp-ec > "$W/x.out" 2>&1 && fail "public key object deleted"
grep -qE "CKR_ACTION_PROHIBITED|\(0x1b\)" "$W/x.out" || fail "public key delete: $(cat "$W/x.out")"
as alice key config imp-ec --deletion-allowed true >/dev/null || fail "deletion_allowed imp-ec"
as alice key config imp-aes --deletion-allowed true >/dev/null || fail "deletion_allowed imp-aes"
for s in $SIDES; do
  p11l "$s" --delete-object --type privkey --label imp-ec > "$W/x.out" 2>&1 || fail "$s delete imp-ec: $(cat "$W/x.out")"
  p11l "$s" --delete-object --type secrkey --label imp-aes > "$W/x.out" 2>&1 || fail "$s delete imp-aes: $(cat "$W/x.out")"
  p11l "$s" --list-objects > "$W/$s.objs5" 2>&1
  grep -q 'label: *imp-ec$\|label: *imp-aes$' "$W/$s.objs5" && [ "$s" = mesatee ] &&
    fail "$s: deleted keys still listed: $(cat "$W/$s.objs5")"
done
api GET /v1/transit/keys/imp-ec >/dev/null 2>&1 && fail "imp-ec still on the server after C_DestroyObject"
api GET /v1/transit/keys/imp-aes >/dev/null 2>&1 && fail "imp-aes still on the server after C_DestroyObject"
# a key with two versions: destroying one object would delete both
p11l mesatee --delete-object --type privkey --id "$(hexid ec1:v2)" > "$W/x.out" 2>&1 && fail "deleted a key with other versions"
grep -qE "CKR_ACTION_PROHIBITED|\(0x1b\)" "$W/x.out" || fail "multi-version delete: $(cat "$W/x.out")"
ok "--delete-object: CKR_ACTION_PROHIBITED while deletion_allowed is false, for public keys and multi-version keys; with deletion_allowed the transit key is deleted"

# --- every function, logged in, random arguments (live objects in the pool) -----
if [ -n "${MT_P11_RANDCALL:-}" ]; then
  P11_RANDCALL_CONF=$W/mesatee.conf P11_RANDCALL_PIN=$PIN P11_RANDCALL_ITER=${P11_RANDCALL_ITER:-5000} \
    "$MT_P11_RANDCALL" "$MESATEE_PKCS11" > "$W/randcall.out" 2>&1 || fail "random calls: $(tail -n 20 "$W/randcall.out")"
  ok "random-call test logged in to the live server, last (its random logins may trip the login limit) (AES-GCM round trip, tampered ciphertext refused)"
fi
ok "it_pkcs11 done"
