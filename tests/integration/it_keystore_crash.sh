#!/usr/bin/env bash
# Issue 10 faults: kill -9 during a KeyStore rotation and during the
# background rewrap. The rewrap is throttled (one row per transaction, a
# pause between batches: MESATEE_KEK_REWRAP_BATCH / _PAUSE_MS) so that the
# kill lands in the middle of it; after a restart the pass resumes, every
# stored key ends on the new version, the old version is retired, and every
# file still decrypts: no key is lost.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 0; }
B=$MESATEE_BIN
DB=$MT_DATA/mesatee.db
slow() { MESATEE_KEK_REWRAP_BATCH=1 MESATEE_KEK_REWRAP_PAUSE_MS=400 mt_start_server; }
crash() { kill -KILL "$MT_PID"; wait "$MT_PID" 2>/dev/null || true; MT_PID=; }
status() { as admin admin keystore status --output json; }
wait_done() { mt_kek_wait "$1"; } # only VERSION live and nothing pending
rows_on() { mt_sql "SELECT count(*) FROM files WHERE kek_version = $1"; }
check_files() { # every output still decrypts to the same result
  as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/r.$1" >/dev/null ||
    fail "$1: output of alice does not decrypt"
  cmp -s "$MT_WORK/r.ref" "$MT_WORK/r.$1" || fail "$1: output differs"
  for f in "${EXTRA[@]}"; do as alice file show "$f" >/dev/null || fail "$1: file $f"; done
}

slow
mt_login admin
mt_add_user alice; mt_add_user bob
seq -f "id-%03g" 1 40 > "$MT_WORK/alice.txt"; seq -f "id-%03g" 30 60 > "$MT_WORK/bob.txt"
mt_psi2_invoke
as alice task wait "$T" --timeout 120 >/dev/null || fail "task"
as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/r.ref" >/dev/null
EXTRA=()
for i in $(seq 12); do
  "$B" key generate --out "$MT_WORK/x$i.key" >/dev/null
  EXTRA+=("$(as alice file register-output --key "$MT_WORK/x$i.key")")
done
N=$(mt_sql "SELECT count(*) FROM files")
[ "$N" -ge 16 ] && [ "$(rows_on 1)" = "$N" ] || fail "setup: $N files, $(rows_on 1) on version 1"

# ---- kill -9 in the middle of the rewrap ----------------------------------
[ "$(jget "$(as admin admin keystore rotate --output json)" .version)" = 2 ] || fail "rotate"
for _ in $(seq 300); do [ "$(rows_on 2)" -ge 3 ] && break; sleep 0.05; done
crash
on2=$(rows_on 2); on1=$(rows_on 1)
[ "$on2" -ge 3 ] && [ "$on1" -ge 1 ] && [ $((on1 + on2)) = "$N" ] ||
  fail "not killed mid-rewrap: $on1 rows on v1, $on2 on v2 of $N"
ok "killed during the rewrap with $on2 of $N keys rewrapped"
mt_start_server
st=$(status)
[ "$(jget "$st" .current)" = 2 ] || fail "after restart: $st"
wait_done 2
[ "$(rows_on 2)" = "$N" ] || fail "after restart: $(rows_on 2) of $N on version 2"
check_files "rewrap-crash"
ok "restart resumed the rewrap: all $N keys on version 2, version 1 retired, files decrypt"
mt_stop_server

# ---- kill -9 right after the rotation is recorded ---------------------------
slow
as admin admin keystore rotate --output json >/dev/null || fail "second rotate"
crash
mt_start_server
wait_done 3
[ "$(rows_on 3)" = "$N" ] || fail "after the rotation crash: $(rows_on 3) of $N on version 3"
check_files "rotate-crash"
ok "killed during the rotation: restart finished it (version 3 only), files decrypt"

# ---- a torn write of the KeyStore state is never read ----------------------
mt_stop_server
head -c 100 "$MT_DATA/keystore.sealed" > "$MT_DATA/keystore.sealed.tmp.0123456789abcdef"
mt_start_server
[ "$(jget "$(status)" .current)" = 3 ] || fail "a leftover temporary state file was read"
check_files "torn"
mt_stop_server
cp "$MT_DATA/keystore.sealed" "$MT_WORK/ks.bak"
mt_flip_byte "$MT_DATA/keystore.sealed" 40
if "$B" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 "${MT_PG_STORE[@]}" > "$MT_WORK/tampered.log" 2>&1; then
  fail "a tampered KeyStore state was accepted"
fi
grep -q "does not open with this platform's KeyStore seal key" "$MT_WORK/tampered.log" ||
  fail "tampered state: $(cat "$MT_WORK/tampered.log")"
cp "$MT_WORK/ks.bak" "$MT_DATA/keystore.sealed"
mt_start_server
check_files "restored"
ok "a leftover temporary state is ignored; a tampered one refuses the start and changes nothing"
