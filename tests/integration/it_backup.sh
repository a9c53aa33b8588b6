#!/usr/bin/env bash
# Backup and restore (issue 9, "Data over time"): a two-party workload, an
# online `mesatee backup` taken while a task is in flight, the server stopped,
# `mesatee restore` into a fresh directory, a server started on it: every
# party downloads and decrypts its results again with its old token, the
# snapshot is point-in-time, the audit chain verifies. Then garbage: truncated
# and tampered archives, a non-empty target, missing arguments.
# LEVEL=none (default) or soft: the same on one machine with the same binary.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the stalling https peer"; exit 0; }
LEVEL=${LEVEL:-none}
B=$MESATEE_BIN
SERVE=(--level "$LEVEL" --workers 2 --fetch-allow 127.0.0.1/32)
mt_start_server "${SERVE[@]}"
mt_login admin
mt_add_user alice
mt_add_user bob

# Two parties, one PSI task with an output for each.
seq -f "id-%05g" 1 400 > "$MT_WORK/a.txt"
seq -f "id-%05g" 200 700 > "$MT_WORK/b.txt"
for u in alice bob; do
  p=$MT_WORK/${u:0:1}.txt
  as "$u" file encrypt --in "$p" --out "$MT_WORK/$u.enc" --key-out "$MT_WORK/$u.key" >/dev/null
  url=$(as "$u" file upload "$MT_WORK/$u.enc")
  printf '%s' "$(as "$u" file register "$url" --key "$MT_WORK/$u.key")" > "$MT_WORK/$u.in"
  "$B" key generate --out "$MT_WORK/$u.out.key" >/dev/null
  printf '%s' "$(as "$u" file register-output --key "$MT_WORK/$u.out.key")" > "$MT_WORK/$u.out"
done
FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b \
       --output-slot ra --output-slot rb --public)
T1=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T1" --input "a=$(cat "$MT_WORK/alice.in")" --output "ra=$(cat "$MT_WORK/alice.out")" >/dev/null
as bob task assign "$T1" --input "b=$(cat "$MT_WORK/bob.in")" --output "rb=$(cat "$MT_WORK/bob.out")" >/dev/null
as alice task approve "$T1" >/dev/null
as bob task approve "$T1" >/dev/null
as alice task invoke "$T1" >/dev/null
as alice task wait "$T1" --timeout 60 >/dev/null || fail "the two-party task did not finish"
comm -12 <(sort "$MT_WORK/a.txt") <(sort "$MT_WORK/b.txt") > "$MT_WORK/expected.txt"
for u in alice bob; do
  s=r${u:0:1}
  as "$u" task result "$T1" --slot "$s" --key "$MT_WORK/$u.out.key" --out "$MT_WORK/$u.before.txt" >/dev/null
  cmp -s <(sort "$MT_WORK/$u.before.txt") "$MT_WORK/expected.txt" || fail "$u's result is wrong before the backup"
done
ok "two-party task $T1 finished; alice and bob decrypted their results"

# A task in flight: its input comes from an https peer that never answers.
mt_silent_peer
FS=$(as alice file register "https://127.0.0.1:$(cat "$MT_WORK/peer.port")/ids.enc" --key "$MT_WORK/alice.key" \
       --sha256 "$(sha256sum "$MT_WORK/alice.enc" | cut -d' ' -f1)")
"$B" key generate --out "$MT_WORK/t2.key" >/dev/null
O2=$(as alice file register-output --key "$MT_WORK/t2.key")
FN1=$(as alice function register --name self-psi --builtin psi --input-slot a --input-slot b --output-slot r)
T2=$(as alice task create --function "$FN1" --input a=alice --input b=alice --output r=alice)
as alice task assign "$T2" --input "a=$(cat "$MT_WORK/alice.in")" --input "b=$FS" --output "r=$O2" >/dev/null
as alice task approve "$T2" >/dev/null 2>&1 || true
as alice task invoke "$T2" >/dev/null
for _ in $(seq 100); do
  [ "$(as alice --output json task show "$T2" | jq -r .status)" = running ] && break; sleep 0.1
done
[ "$(as alice --output json task show "$T2" | jq -r .status)" = running ] || fail "task T2 did not reach running"

# A PostgreSQL store (MT_TEST_PG) is backed up with the database's own tools:
# `mesatee backup` refuses it by design (docs/operations.md), so everything
# below, which restores the archive, is SQLite's only.
if [ "${MT_TEST_PG:-}" = 1 ]; then
  expect_fail "backup of the PostgreSQL store" "pg_basebackup or pg_dump" \
    "$B" backup --data-dir "$MT_DATA" --out "$MT_WORK/x.mtb" --store "$MESATEE_STORE"
  [ -e "$MT_WORK/x.mtb" ] && fail "a refused backup left a file"
  mt_pg_skip "the rest (archive, restore, archive garbage) backs up a SQLite data directory"
  exit 0
fi

# The online backup, while T2 runs and bob keeps writing (outputs registered
# in a loop: rows and audit entries appended during the snapshot).
"$B" key generate --out "$MT_WORK/w.key" >/dev/null
( while :; do as bob file register-output --key "$MT_WORK/w.key" --allow-key-reuse >/dev/null 2>&1 || true; done ) &
WRITER=$!
sleep 0.5
out=$("$B" --output json backup --data-dir "$MT_DATA" --out "$MT_WORK/backup.mtb" --level "$LEVEL") \
  || { kill $WRITER; fail "backup failed: $out"; }
kill $WRITER; wait $WRITER 2>/dev/null || true
[ "$(jget "$out" .level)" = "$LEVEL" ] || fail "backup level: $out"
[ "$(stat -c %a "$MT_WORK/backup.mtb")" = 600 ] || fail "backup file is not mode 0600"
ls "$MT_WORK" | grep -q 'backup.mtb.*tmp' && fail "backup left temporary files"
ok "online backup while task $T2 runs: $(jget "$out" .files) files, $(jget "$out" .bytes) bytes"
# After the snapshot: a file that must not be in the backup.
"$B" key generate --out "$MT_WORK/late.key" >/dev/null
LATE=$(as alice file register-output --key "$MT_WORK/late.key")
as alice task show "$T2" >/dev/null
mt_stop_server
kill "$MT_PEER" 2>/dev/null || true

out=$("$B" --output json restore --in "$MT_WORK/backup.mtb" --check) || fail "restore --check: $out"
[ "$(jget "$out" .intact)" = true ] && [ "$(jget "$out" .level)" = "$LEVEL" ] || fail "restore --check: $out"
ok "restore --check verifies the archive and writes nothing"

# Restore into a fresh directory and serve from it.
OLD=$MT_DATA
MT_DATA=$MT_WORK/restored/server
out=$("$B" restore --in "$MT_WORK/backup.mtb" --data-dir "$MT_DATA") || fail "restore failed: $out"
ok "restore: $out"
[ -f "$MT_DATA/mesatee.db" ] && [ -f "$MT_DATA/sealing.key" ] || fail "restored directory incomplete"
[ "$(stat -c %a "$MT_DATA")" = 700 ] || fail "restored directory is not mode 0700"
if [ "$LEVEL" = soft ]; then
  cmp -s "$OLD/platform-key.pem" "$MT_DATA/platform-key.pem" || fail "platform key not restored"
fi
ls "$MT_WORK/restored" | grep -q restore && fail "restore left its temporary directory"
mt_start_server "${SERVE[@]}"
for u in alice bob; do
  s=r${u:0:1}
  as "$u" task result "$T1" --slot "$s" --key "$MT_WORK/$u.out.key" --out "$MT_WORK/$u.after.txt" >/dev/null \
    || fail "$u cannot download its result after the restore"
  cmp -s "$MT_WORK/$u.before.txt" "$MT_WORK/$u.after.txt" || fail "$u's result differs after the restore"
done
ok "after the restore alice and bob (old tokens) downloaded and decrypted their results again"
st=$(as alice --output json task show "$T2" | jq -r .status)
case $st in failed|staged|running|finished) ok "the in-flight task is known after the restore ($st)" ;;
  *) fail "in-flight task T2 is $st after the restore" ;; esac
expect_fail "a file made after the snapshot is not in the backup" "not" as alice file show "$LATE"
as bob function show "$FN" >/dev/null || fail "function lost"
# every file bob sees (incl. those registered during the snapshot) is intact
for f in $(as bob --output json file list | jq -r '.files[].file_id'); do
  as bob file show "$f" >/dev/null || fail "file $f of the snapshot does not verify"
done
ok "bob's $(as bob --output json file list | jq '.files | length') files (some written during the snapshot) verify"
# The restored service keeps working.
T3=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
ok "new task $T3 created on the restored server"
mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "audit chain of the restored store"
ok "audit chain of the restored store verifies"

# Garbage.
head -c 2000 "$MT_WORK/backup.mtb" > "$MT_WORK/trunc.mtb"
expect_fail "truncated archive" "truncated" "$B" restore --in "$MT_WORK/trunc.mtb" --data-dir "$MT_WORK/g1"
[ -e "$MT_WORK/g1" ] && fail "a refused restore created its target"
cp "$MT_WORK/backup.mtb" "$MT_WORK/bad.mtb"
sz=$(stat -c %s "$MT_WORK/bad.mtb")
mt_flip_byte "$MT_WORK/bad.mtb" $((sz / 2))
expect_fail "tampered archive" "damaged" "$B" restore --in "$MT_WORK/bad.mtb" --data-dir "$MT_WORK/g2"
[ -e "$MT_WORK/g2" ] && fail "a refused restore created its target"
cp "$MT_WORK/backup.mtb" "$MT_WORK/tail.mtb"; printf 'junk' >> "$MT_WORK/tail.mtb"
expect_fail "trailing bytes" "trailing" "$B" restore --in "$MT_WORK/tail.mtb" --data-dir "$MT_WORK/g3"
printf 'hello' > "$MT_WORK/notabackup"
expect_fail "not an archive" "not a mesatee backup" "$B" restore --in "$MT_WORK/notabackup" --data-dir "$MT_WORK/g4"
mkdir -p "$MT_WORK/full"; echo x > "$MT_WORK/full/keep"
expect_fail "non-empty target" "not empty" "$B" restore --in "$MT_WORK/backup.mtb" --data-dir "$MT_WORK/full"
[ "$(ls "$MT_WORK/full")" = keep ] || fail "a refused restore changed a non-empty target"
mkdir -p "$MT_WORK/empty"
"$B" restore --in "$MT_WORK/backup.mtb" --data-dir "$MT_WORK/empty" >/dev/null || fail "restore into an empty directory"
ok "restore into an existing empty directory"
expect_fail "restore --check of a tampered archive" "does not verify" "$B" restore --in "$MT_WORK/bad.mtb" --check
expect_fail "restore --check with --data-dir" "verifies only" "$B" restore --in "$MT_WORK/backup.mtb" --check --data-dir "$MT_WORK/g6"
expect_fail "restore without --in" "missing --in" "$B" restore --data-dir "$MT_WORK/g5"
expect_fail "restore without --data-dir" "missing --data-dir" "$B" restore --in "$MT_WORK/backup.mtb"
expect_fail "backup without --out" "missing --out" "$B" backup --data-dir "$OLD"
expect_fail "backup without --data-dir" "missing --data-dir" "$B" backup --out "$MT_WORK/x.mtb"
expect_fail "backup of a directory that is not a data dir" "not a mesatee data directory" \
  "$B" backup --data-dir "$MT_WORK/full" --out "$MT_WORK/x.mtb"
expect_fail "backup with a bad level" "--level must be" "$B" backup --data-dir "$OLD" --out "$MT_WORK/x.mtb" --level bogus
expect_fail "backup into the data directory" "outside the data directory" \
  "$B" backup --data-dir "$OLD" --out "$OLD/objects/b.mtb"
expect_fail "backup into a missing directory" "" "$B" backup --data-dir "$OLD" --out "$MT_WORK/no/such/x.mtb"
expect_fail "backup of a PostgreSQL store" "pg_basebackup or pg_dump" \
  "$B" backup --data-dir "$OLD" --out "$MT_WORK/x.mtb" --store "postgresql://u:pw@127.0.0.1/mesatee"
expect_fail "backup --store of another file" "inside the data directory" \
  "$B" backup --data-dir "$OLD" --out "$MT_WORK/x.mtb" --store "$MT_WORK/backup.mtb"
expect_fail "backup --store garbage" "unknown URL scheme" \
  "$B" backup --data-dir "$OLD" --out "$MT_WORK/x.mtb" --store "mysql://h/db"
expect_fail "backup --store file: without a path" "--store" \
  "$B" backup --data-dir "$OLD" --out "$MT_WORK/x.mtb" --store "file:"
"$B" backup --data-dir "$OLD" --out "$MT_WORK/s.mtb" --store "file:$OLD/mesatee.db" >/dev/null \
  || fail "backup --store naming the data directory's own store"
ok "backup --store: PostgreSQL, another file and garbage refused; the data directory's own file accepted"
[ -e "$MT_WORK/x.mtb" ] && fail "a failed backup left a file"
ok "garbage refused, nothing half-written"
