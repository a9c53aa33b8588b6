#!/usr/bin/env bash
# libmesatee-pkcs11 under concurrency (issue 10): test_p11_threads runs
# several threads, each with its own session, signing (server), verifying
# (module), encrypting and decrypting (AES-GCM on the server, RSA-OAEP
# encrypt in the module and decrypt on the server) at once, checks every
# result, then logs out while other sessions sign and logs in again.
# Environment: MESATEE_BIN, MESATEE_PKCS11 (the module), MT_P11_THREADS
# (tests/unit/test_p11_threads binary).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${MESATEE_PKCS11:?MESATEE_PKCS11 must point at libmesatee-pkcs11.so}"
: "${MT_P11_THREADS:?MT_P11_THREADS must point at test_p11_threads}"
mt_sanitizer_tools "$MESATEE_PKCS11"
mt_start_server
mt_login admin
mt_add_user alice
as alice key create thr-ec --type ecdsa-p256 >/dev/null && as alice key create thr-rsa --type rsa-2048 >/dev/null &&
  as alice key create thr-aes >/dev/null || fail "transit keys"
cat > "$MT_WORK/p11.conf" <<CONF
# written by it_pkcs11_threads.sh
server = $MESATEE_SERVER
ca = $MESATEE_CA
user = alice
CONF
MESATEE_PKCS11_CONF=$MT_WORK/p11.conf P11_PIN=$(cat "$MT_WORK/alice.pw") \
  P11_THREADS=${P11_THREADS:-8} P11_ITER=${P11_ITER:-6} \
  "$MT_P11_THREADS" "$MESATEE_PKCS11" > "$MT_WORK/threads.out" 2>&1 ||
  fail "threads: $(tail -n 30 "$MT_WORK/threads.out")"
grep -q '^PASS' "$MT_WORK/threads.out" || fail "threads: no PASS line"
ok "$(grep 'operations checked' "$MT_WORK/threads.out")"
as alice key list >/dev/null || fail "server unusable after the run"
ok "$(grep "^imports:" "$MT_WORK/threads.out")"
ok "concurrent sessions: results verified, logout race survived, second login works"
