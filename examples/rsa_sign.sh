#!/usr/bin/env bash
# rsa_sign: a notary's RSA private key signs a client's document inside the
# TEE; neither sees the other's input, and the signature (base64, the
# task's return value) verifies with the notary's public key.
# Usage: examples/rsa_sign.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start notary client
mkdir -p "$MT_WORK/plain"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$MT_WORK/plain/notary.pem" 2>/dev/null
openssl pkey -in "$MT_WORK/plain/notary.pem" -pubout -out "$MT_WORK/notary.pub"
printf 'I, the client, agree to the terms.\n' > "$MT_WORK/plain/doc.txt"
FN=$(as notary function register --name sign --builtin rsa_sign --public \
  --input-slot key --input-slot data --arg digest=sha256)
bl_task client "$FN" "in:key=notary=$(bl_input notary "$MT_WORK/plain/notary.pem")" \
  "in:data=client=$(bl_input client "$MT_WORK/plain/doc.txt")"
sig=${BL_WAIT#finished: }
printf '%s' "$sig" | base64 -d > "$MT_WORK/doc.sig"
openssl dgst -sha256 -verify "$MT_WORK/notary.pub" -signature "$MT_WORK/doc.sig" \
  "$MT_WORK/plain/doc.txt" >/dev/null || fail "signature does not verify"
ok "signature verifies with the notary's public key"
