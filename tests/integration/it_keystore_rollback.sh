#!/usr/bin/env bash
# Issue 10: rollback of keystore.sealed to an older copy. Keys are stored
# wrapped under root key version 1; a copy of keystore.sealed is kept; the
# root key is rotated (version 2) and the background rewrap moves every
# stored key to it and retires version 1. Restoring the old copy (only
# version 1) is detected at start: the daemon refuses, naming the version
# the store needs, and changes nothing; putting the newest copy back starts
# and every key still works. A rollback to a copy taken after the rotation
# but before the retire (both versions) is harmless and starts.
# What is NOT detected at soft (docs/attestation.md): a rollback of the whole
# data directory, or of a policy change alone (no rotation in between); at
# tpm2 the TPM NV counter detects both (it_keystore_rollback_tpm2.sh).
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 0; }
mt_start_server --level soft
mt_login admin
mt_add_user alice
printf 'kept across rollback attempts' > "$MT_WORK/msg"
as alice key create tk >/dev/null || fail "transit key create"
CT=$(as alice key encrypt tk --in "$MT_WORK/msg") || fail "transit encrypt"
cp "$MT_DATA/keystore.sealed" "$MT_WORK/ks.v1"
out=$(as admin admin keystore rotate --output json)
[ "$(jget "$out" .version)" = 2 ] || fail "rotate: $out"
cp "$MT_DATA/keystore.sealed" "$MT_WORK/ks.v12"   # may already lack v1 if the pass was quick
mt_kek_wait 2
mt_sql "SELECT count(*) FROM transit_key_versions WHERE kek_version != 2" | grep -qx 0 ||
  fail "transit keys not on version 2"
mt_stop_server
cp "$MT_DATA/keystore.sealed" "$MT_WORK/ks.v2"
sum_db=$(mt_store_sum)

cp "$MT_WORK/ks.v1" "$MT_DATA/keystore.sealed"
if timeout 60 "$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 --level soft "${MT_PG_STORE[@]}" \
    --admin-password-file "$MT_WORK/admin.pw" > "$MT_WORK/rollback.log" 2>&1; then
  fail "a rolled-back keystore.sealed was accepted: $(cat "$MT_WORK/rollback.log")"
fi
grep -q "wrapped under KeyStore root key version 2, which .*keystore.sealed does not have: the KeyStore state was replaced by an older copy (rollback)" "$MT_WORK/rollback.log" ||
  fail "rollback not named: $(cat "$MT_WORK/rollback.log")"
cmp -s "$MT_WORK/ks.v1" "$MT_DATA/keystore.sealed" || fail "the refused start rewrote keystore.sealed"
[ "$(mt_store_sum)" = "$sum_db" ] || fail "the refused start changed the store"
ok "rollback of keystore.sealed to before a rotation refused at start, nothing changed"

cp "$MT_WORK/ks.v12" "$MT_DATA/keystore.sealed"
mt_start_server --level soft
[ "$(as alice key decrypt tk "$CT")" = "kept across rollback attempts" ] || fail "decrypt after v1+v2 copy"
mt_stop_server
ok "a copy holding the version in use starts"

cp "$MT_WORK/ks.v2" "$MT_DATA/keystore.sealed"
mt_start_server --level soft
[ "$(as alice key decrypt tk "$CT")" = "kept across rollback attempts" ] || fail "decrypt after restoring the newest state"
mt_stop_server
ok "the newest keystore.sealed put back: every key works"
