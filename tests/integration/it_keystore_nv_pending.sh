#!/usr/bin/env bash
# Security review (KeyStore, level tpm2): a failed TPM NV counter increment
# must not let two different sealed states record the same counter value.
# Fault injection (test only): MESATEE_TEST_KS_NV_FAIL_INCREMENTS=n makes the
# first n increments of the daemon fail. (1) change A is saved, its increment
# fails; change B completes the owed increment before it is written, so
# putting state A back after B is refused at start. (2) while the owed
# increment still fails, a change is refused with a clear error and not
# applied; once the TPM answers, the change goes through.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v swtpm >/dev/null || { echo "SKIP: swtpm not installed"; exit 0; }
mt_start_swtpm
T=(--level tpm2 --tpm2-tcti "$MT_TCTI")
mt_start_server "${T[@]}"
mt_login admin
mt_stop_server
m() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
has() { as admin admin release show --output json | jq -r '.measurements[]' | grep -qx "$1"; }

# (1) a failed increment, another change, then the first state put back
MESATEE_TEST_KS_NV_FAIL_INCREMENTS=1 mt_start_server "${T[@]}"
as admin admin release allow "$(m build-a)" >/dev/null || fail "allow a"
grep -q "the state was saved but the TPM NV counter 0x[0-9a-f]* was not incremented (TPM2_NV_Increment failed (injected test fault))" "$MT_WORK/server.log" ||
  fail "the increment fault was not injected: $(cat "$MT_WORK/server.log")"
cp "$MT_DATA/keystore.sealed" "$MT_WORK/state.a"
as admin admin release revoke "$(m build-a)" >/dev/null || fail "revoke a"
grep -q "KeyStore: completed the TPM NV counter increment of the last change" "$MT_WORK/server.log" ||
  fail "the owed increment was not completed before the next change"
mt_stop_server
cp "$MT_DATA/keystore.sealed" "$MT_WORK/state.b"
cp "$MT_WORK/state.a" "$MT_DATA/keystore.sealed"
if timeout 60 "$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 "${T[@]}" \
    --admin-password-file "$MT_WORK/admin.pw" > "$MT_WORK/rollback.log" 2>&1; then
  fail "state A (saved before a failed increment) was accepted after state B: rollback undetected"
fi
grep -q "keystore.sealed is older than this TPM.s NV counter 0x[0-9a-f]* (state [0-9]*, TPM [0-9]*): an older copy was put back (rollback)" "$MT_WORK/rollback.log" ||
  fail "rollback not named: $(cat "$MT_WORK/rollback.log")"
cp "$MT_WORK/state.b" "$MT_DATA/keystore.sealed"
mt_start_server "${T[@]}"
has "$(m build-a)" && fail "the revocation of build a is lost"
mt_stop_server
ok "a failed increment followed by another change: putting the first state back is refused at start"

# (2) the owed increment cannot be completed: the change is refused, not applied
MESATEE_TEST_KS_NV_FAIL_INCREMENTS=2 mt_start_server "${T[@]}"
as admin admin release allow "$(m build-c)" >/dev/null || fail "allow c"
before=$(sha256sum < "$MT_DATA/keystore.sealed")
out=$(as admin admin release allow "$(m build-d)" 2>&1) && fail "a change was saved while the counter increment is owed: $out"
echo "$out" | grep -q "KeyStore state not changed: the TPM NV counter 0x[0-9a-f]* owes the last change's increment to [0-9]* and still cannot take it" ||
  fail "no clear error: $out"
echo "$out" | grep -q "no change is saved until it does (check the TPM, retry or restart): TPM2_NV_Increment failed" || fail "no advice: $out"
[ "$(sha256sum < "$MT_DATA/keystore.sealed")" = "$before" ] || fail "the refused change wrote keystore.sealed"
has "$(m build-d)" && fail "the refused change was applied in memory"
has "$(m build-c)" || fail "the saved change is missing"
cp "$MT_DATA/keystore.sealed" "$MT_WORK/state.c"
as admin admin release allow "$(m build-d)" >/dev/null || fail "allow d once the TPM answers"
has "$(m build-d)" || fail "build d missing"
mt_stop_server
cp "$MT_DATA/keystore.sealed" "$MT_WORK/state.d"
cp "$MT_WORK/state.c" "$MT_DATA/keystore.sealed"
if timeout 60 "$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 "${T[@]}" \
    --admin-password-file "$MT_WORK/admin.pw" > "$MT_WORK/rollback2.log" 2>&1; then
  fail "state C was accepted after state D"
fi
grep -q "older than this TPM's NV counter" "$MT_WORK/rollback2.log" || fail "rollback 2: $(cat "$MT_WORK/rollback2.log")"
cp "$MT_WORK/state.d" "$MT_DATA/keystore.sealed"
mt_start_server "${T[@]}"
has "$(m build-c)" && has "$(m build-d)" || fail "the current state lacks c or d"
mt_stop_server
ok "while the owed increment fails a change is refused and not applied; then it goes through"
