#!/usr/bin/env bash
# Issue 10: rollback detection at level tpm2 with a TPM NV counter (swtpm).
# The KeyStore defines an NV counter at its first save, records its value in
# keystore.sealed and increments it on every change of the sealed state.
# A copy of the whole data directory is saved, a release-policy change is
# made (no rotation: the store needs nothing new, which is exactly the case
# the soft level cannot detect), the old copy is put back: the start is
# refused naming the file and what to do, and nothing is changed; the
# current data directory starts. A crash between the write of the state and
# the increment (fault injection, test only) is completed by the next start.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v swtpm >/dev/null || { echo "SKIP: swtpm not installed"; exit 0; }
mt_start_swtpm
T=(--level tpm2 --tpm2-tcti "$MT_TCTI")
mt_start_server "${T[@]}"
grep -q "KeyStore: TPM NV counter 0x[0-9a-f]* defined" "$MT_WORK/server.log" || fail "no NV counter defined at first start"
mt_login admin
mt_add_user alice
printf 'kept across rollback attempts' > "$MT_WORK/msg"
as alice key create tk >/dev/null || fail "transit key create"
CT=$(as alice key encrypt tk --in "$MT_WORK/msg") || fail "transit encrypt"
mt_stop_server
cp -a "$MT_DATA" "$MT_WORK/data.old"; mt_store_save old

M=$(printf 'a later build' | sha256sum | cut -d' ' -f1)
mt_start_server "${T[@]}"
as admin admin release allow "$M" >/dev/null || fail "release allow"
mt_stop_server
cp -a "$MT_DATA" "$MT_WORK/data.new"; mt_store_save new

# the whole data directory rolled back to before the policy change
rm -rf "$MT_DATA"; cp -a "$MT_WORK/data.old" "$MT_DATA"; mt_store_restore old
sum=$({ cat "$MT_DATA/keystore.sealed"; mt_store_sum; } | sha256sum)
if timeout 60 "$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 "${T[@]}" "${MT_PG_STORE[@]}" \
    --admin-password-file "$MT_WORK/admin.pw" > "$MT_WORK/rollback.log" 2>&1; then
  fail "a rolled-back data directory was accepted: $(cat "$MT_WORK/rollback.log")"
fi
grep -q "keystore.sealed is older than this TPM.s NV counter 0x[0-9a-f]* (state [0-9]*, TPM [0-9]*): an older copy was put back (rollback)" "$MT_WORK/rollback.log" ||
  fail "rollback not named: $(cat "$MT_WORK/rollback.log")"
grep -q "Put back the newest keystore.sealed and its store" "$MT_WORK/rollback.log" || fail "no advice: $(cat "$MT_WORK/rollback.log")"
[ "$({ cat "$MT_DATA/keystore.sealed"; mt_store_sum; } | sha256sum)" = "$sum" ] || fail "the refused start changed the data directory"
ok "rollback of the data directory to before a policy change refused at start, nothing changed"

# keystore.sealed alone rolled back (the store current)
rm -rf "$MT_DATA"; cp -a "$MT_WORK/data.new" "$MT_DATA"; mt_store_restore new
cp "$MT_WORK/data.old/keystore.sealed" "$MT_DATA/keystore.sealed"
if timeout 60 "$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 "${T[@]}" "${MT_PG_STORE[@]}" \
    --admin-password-file "$MT_WORK/admin.pw" > "$MT_WORK/rollback2.log" 2>&1; then
  fail "a rolled-back keystore.sealed was accepted"
fi
grep -q "older than this TPM's NV counter" "$MT_WORK/rollback2.log" || fail "rollback 2: $(cat "$MT_WORK/rollback2.log")"
ok "rollback of keystore.sealed alone refused"

# the current data directory starts, with the change and every key
rm -rf "$MT_DATA"; cp -a "$MT_WORK/data.new" "$MT_DATA"; mt_store_restore new
mt_start_server "${T[@]}"
[ "$(as alice key decrypt tk "$CT")" = "kept across rollback attempts" ] || fail "decrypt with the current state"
as admin admin release show --output json | jq -r '.measurements[]' | grep -qx "$M" || fail "the policy change is missing"
ok "the current data directory starts: the change and the keys are there"

# a crash after the state is written, before the TPM counter is incremented
mt_stop_server
MESATEE_TEST_KS_NV_CRASH_BEFORE_INCREMENT=1 mt_start_server "${T[@]}"
M2=$(printf 'yet another build' | sha256sum | cut -d' ' -f1)
as admin admin release allow "$M2" >/dev/null 2>&1 && fail "the fault was not injected"
rc=0; wait "$MT_PID" || rc=$?
MT_PID=
[ "$rc" = 98 ] || fail "the daemon ended with $rc, not at the injected fault (98)"
# swtpm has no resource manager: the dead daemon's transient objects stay
# loaded; restart it on the same state (as a reboot, or /dev/tpmrm0, would)
mt_stop_swtpm
mt_start_swtpm "$MT_WORK/tpm"
T=(--level tpm2 --tpm2-tcti "$MT_TCTI")
mt_start_server "${T[@]}"
grep -q "KeyStore: completed the TPM NV counter increment of the last change" "$MT_WORK/server.log" ||
  fail "the interrupted increment was not completed"
as admin admin release show --output json | jq -r '.measurements[]' | grep -qx "$M2" || fail "the change written before the crash is missing"
mt_stop_server
mt_start_server "${T[@]}"   # and the state is consistent afterwards
mt_stop_server
ok "a crash between the state write and the counter increment is completed at the next start"

