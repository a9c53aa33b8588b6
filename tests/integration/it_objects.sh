#!/usr/bin/env bash
# Object storage (issue 14, docs/cluster.md "Object storage"): `serve
# --objects db` keeps objects as chunked rows in the store's database (here
# SQLite, or PostgreSQL under MT_TEST_PG: the store is edited through lib.sh's
# mt_sql on both): a two-party PSI task end to end, everything still there after a
# restart with the local cache wiped; tampered or truncated objects (in the
# database and in the default directory) make the task fail with a clear
# error, never produce output; a consistent forgery (bytes and recorded
# digest changed together) is refused by the worker's SHA-256 check;
# leftovers of interrupted writes are swept at start (logged with count and
# bytes); `dir:PATH` (a shared mount); garbage --objects values refused.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 0; }
q() { mt_sql "$1"; }
# the host damaging chunk rows (WHERE clause $1): random bytes of the same
# length (SQLite), or byte 0 changed (PostgreSQL: no randomblob)
damage_chunks() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    q "UPDATE object_chunks SET data = set_byte(data, 0, (get_byte(data, 0) + 1) % 256) WHERE $1"
  else
    q "UPDATE object_chunks SET data = randomblob(length(data)) WHERE $1"
  fi
}
hex_of() { if [ "${MT_TEST_PG:-}" = 1 ]; then echo "encode($1, 'hex')"; else echo "hex($1)"; fi; }
status() { as alice --output json task show "$1" | jq -r .status; }
reason() { as alice --output json task show "$1" | jq -r '.failure_reason // .result.failure_reason // empty'; }
oid_of() { q "SELECT object_id FROM files WHERE file_id = '$1'"; }
check_results() { # TASK: both parties decrypt the 100 common ids
  for u in alice bob; do
    s=$([ $u = alice ] && echo ra || echo rb)
    as "$u" task result "$1" --slot "$s" --key "$MT_WORK/$u.out.key" --out "$MT_WORK/$u.res" >/dev/null ||
      fail "$u cannot decrypt the result of $1"
    [ "$(grep -c . "$MT_WORK/$u.res")" = 100 ] || fail "$u's result: $(wc -l <"$MT_WORK/$u.res") lines"
  done
}
# T2 = the PSI function again on the same inputs, new outputs (invoked by the caller)
psi_again() {
  for u in alice bob; do
    rm -f "$MT_WORK/$u.k2"; "$MESATEE_BIN" key generate --out "$MT_WORK/$u.k2" >/dev/null
    OUT2[$u]=$(as "$u" file register-output --key "$MT_WORK/$u.k2")
  done
  T2=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
  as alice task assign "$T2" --input "a=${IN[alice]}" --output "ra=${OUT2[alice]}" >/dev/null
  as bob task assign "$T2" --input "b=${IN[bob]}" --output "rb=${OUT2[bob]}" >/dev/null
  as alice task approve "$T2" >/dev/null; as bob task approve "$T2" >/dev/null
  as alice task invoke "$T2" >/dev/null
}
declare -A OUT2 M
expect_task_fails() { # TASK WHAT
  as alice task wait "$1" --timeout 60 >/dev/null 2>&1 || true
  [ "$(status "$1")" = failed ] || fail "$2: task $1 is $(status "$1")"
  local r; r=$(reason "$1")
  [ -n "$r" ] || fail "$2: no failure reason"
  for u in alice bob; do
    s=$([ $u = alice ] && echo ra || echo rb)
    if as "$u" task result "$1" --slot "$s" --key "$MT_WORK/$u.k2" --out "$MT_WORK/x.res" >/dev/null 2>&1; then
      fail "$2: $u got an output"
    fi
  done
  ok "$2: task failed, no output: $(cut -c1-150 <<<"$r")"
}

# ---- garbage --objects values ----------------------------------------------
for bad in "s3://bucket" "dir:relative/path" "dir:" "database" ""; do
  out=$("$MESATEE_BIN" serve --data-dir "$MT_WORK/g" --objects "$bad" 2>&1) && fail "--objects '$bad' accepted"
  grep -q -- "--objects" <<<"$out" || fail "--objects '$bad': unclear error: $out"
done
out=$(MESATEE_OBJECTS=nfs "$MESATEE_BIN" serve --data-dir "$MT_WORK/g" 2>&1) && fail "MESATEE_OBJECTS=nfs accepted"
grep -q "dir, dir:/ABSOLUTE/PATH or db" <<<"$out" || fail "MESATEE_OBJECTS=nfs: unclear error: $out"
[ ! -e "$MT_WORK/g" ] || fail "a refused --objects created the data directory"
ok "garbage --objects values and MESATEE_OBJECTS refused before anything starts"

# ---- --objects db (the store's database) -----------------------------------
mt_start_server --objects db
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"
mt_psi2_invoke
as alice task wait "$T" --timeout 60 >/dev/null || fail "PSI task: $(as alice task show "$T")"
check_results "$T"
n=$(q "SELECT count(*) FROM object_data")
[ "$n" -ge 4 ] || fail "object_data holds $n objects (2 inputs + 2 outputs expected)"
for f in "${IN[alice]}" "${IN[bob]}" "${OUT[alice]}" "${OUT[bob]}"; do
  o=$(oid_of "$f")
  [ "$(q "SELECT count(*) FROM object_data WHERE id = '$o'")" = 1 ] || fail "object $o of file $f not in the database"
done
ok "--objects db: PSI end to end, inputs and outputs are rows of the store's database ($n objects)"

mt_stop_server
rm -rf "$MT_DATA/objects"
mt_start_server --objects db
[ "$(status "$T")" = finished ] || fail "task lost at restart"
check_results "$T"
ok "restart with the local object cache wiped: both parties still decrypt (objects come from the database)"
rm -rf "$MT_DATA/objects"/*
if ! mt_pg_skip "mesatee backup archives a SQLite data directory (it_backup checks the refusal)"; then
  out=$("$MESATEE_BIN" backup --data-dir "$MT_DATA" --out "$MT_WORK/b.mtb" 2>&1) || fail "backup with --objects db: $out"
  "$MESATEE_BIN" restore --in "$MT_WORK/b.mtb" --data-dir "$MT_WORK/restored" >/dev/null || fail "restore"
  n2=$(sqlite3 "$MT_WORK/restored/mesatee.db" "SELECT count(*) FROM object_data")
  [ "$n2" = "$n" ] || fail "the restored store holds $n2 objects, not $n"
  ok "backup of a store with --objects db (no object files): the objects travel as rows ($n2)"
fi

# a wasm function: its module is stored in the registering transaction and
# read back through the cache
if [ -f "${MT_WASM_DIR:-/nonexistent}/millionaires.wasm" ]; then
  WFN=$(as alice function register --name mill --wasm "$MT_WASM_DIR/millionaires.wasm" \
    --input-slot a --input-slot b --public)
  mo=$(q "SELECT payload_object FROM functions WHERE function_id = '$WFN'")
  [ "$(q "SELECT count(*) FROM object_data WHERE id = '$mo'")" = 1 ] || fail "the module is not in the database"
  rm -f "$MT_DATA/objects/$mo"
  for u in alice bob; do
    printf '%s' "$([ $u = alice ] && echo 1500000 || echo 2300000)" >"$MT_WORK/$u.m"
    as "$u" file encrypt --in "$MT_WORK/$u.m" --out "$MT_WORK/$u.m.enc" --key-out "$MT_WORK/$u.m.key" >/dev/null
    M[$u]=$(as "$u" file register "$(as "$u" file upload "$MT_WORK/$u.m.enc")" --key "$MT_WORK/$u.m.key")
  done
  WT=$(as alice task create --function "$WFN" --input a=alice --input b=bob)
  as alice task assign "$WT" --input "a=${M[alice]}" >/dev/null
  as bob task assign "$WT" --input "b=${M[bob]}" >/dev/null
  as alice task approve "$WT" >/dev/null; as bob task approve "$WT" >/dev/null
  as alice task invoke "$WT" >/dev/null
  as alice task wait "$WT" --timeout 60 >/dev/null || fail "wasm task: $(reason "$WT")"
  [ "$(as alice --output json task show "$WT" | jq -r .result.return_value)" = b ] || fail "wasm result"
  ok "db: a wasm function's module is a database object; the task reads it through the cache"
else
  echo "SKIP (part): no wasm examples built (MT_WASM_DIR), the module path is not exercised"
fi

# tampered chunk (same length, recorded digest unchanged) + no cache: refused
A=$(oid_of "${IN[alice]}")
q "CREATE TABLE saved AS SELECT seq, data FROM object_chunks WHERE gen = (SELECT gen FROM object_data WHERE id = '$A')"
damage_chunks "gen = (SELECT gen FROM object_data WHERE id = '$A')"
rm -f "$MT_DATA/objects/$A"
psi_again
expect_task_fails "$T2" "db: tampered input chunk"
grep -q "do not match the SHA-256 recorded" "$MT_WORK/server.log" || grep -q "do not match the SHA-256 recorded" <<<"$(reason "$T2")" ||
  fail "no clear error for the tampered chunk: $(reason "$T2")"
q "UPDATE object_chunks SET data = (SELECT data FROM saved WHERE saved.seq = object_chunks.seq) WHERE gen = (SELECT gen FROM object_data WHERE id = '$A')"

# consistent forgery: truncated bytes with a matching size and digest in the header
B=$(oid_of "${IN[bob]}")
q "UPDATE object_chunks SET data = substr(data, 1, length(data) - 16) WHERE gen = (SELECT gen FROM object_data WHERE id = '$B')"
sha=$(q "SELECT $(hex_of data) FROM object_chunks WHERE gen = (SELECT gen FROM object_data WHERE id = '$B')" | xxd -r -p | sha256sum | cut -c1-64)
q "UPDATE object_data SET size = size - 16, sha256 = '$sha' WHERE id = '$B'"
rm -f "$MT_DATA/objects/$B"
psi_again
expect_task_fails "$T2" "db: truncated input (consistent header)"
grep -q "$A" <<<"$(reason "$T2")" && fail "alice's restored input still refused"

# a missing chunk: reported, no output
q "DELETE FROM object_chunks WHERE gen = (SELECT gen FROM object_data WHERE id = '$B')"
rm -f "$MT_DATA/objects/$B"
psi_again
expect_task_fails "$T2" "db: input with its chunk deleted"
grep -q "chunk" <<<"$(reason "$T2")" || fail "missing chunk not named: $(reason "$T2")"

# a tampered output object: the download is refused
RA=$(oid_of "${OUT[alice]}")
damage_chunks "gen = (SELECT gen FROM object_data WHERE id = '$RA')"
rm -f "$MT_DATA/objects/$RA"
if out=$(as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/bad.res" 2>&1); then
  fail "a tampered output object was downloaded"
fi
ok "db: a tampered output object is refused at download: $(tail -n1 <<<"$out" | cut -c1-120)"

# ---- crash leftovers swept at start ----------------------------------------
mt_stop_server
o=$MT_DATA/objects
head -c 100 /dev/zero >"$o/0123456789abcdef0123456789abcdef.up-7"
head -c 20 /dev/zero >"$o/upload.tmp.123.abc"
head -c 30 /dev/zero >"$o/0123456789abcdef0123456789abcdef.tmp-9f"
head -c 50 /dev/zero >"$o/0123456789abcdef0123456789abcdef.report-01"
echo keep >"$o/0123456789abcdef0123456789abcdef"
: >"$MT_WORK/server.log"
mt_start_server --objects db
grep -q "removed 4 leftover file(s) of interrupted writes (200 bytes)" "$MT_WORK/server.log" ||
  fail "no sweep log line: $(grep -i leftover "$MT_WORK/server.log")"
[ "$(ls "$o" | grep -c '\.up-\|\.tmp\|\.report-')" = 0 ] || fail "leftovers remain: $(ls "$o")"
[ -e "$o/0123456789abcdef0123456789abcdef" ] || fail "the sweep removed an object"
ok "crash leftovers (.up-, .tmp., .tmp-, .report-) swept at start: $(grep -o 'removed 4.*' "$MT_WORK/server.log")"
mt_stop_server

# ---- the default directory and dir:PATH ------------------------------------
export MT_DATA=$MT_WORK/data2
rm -f "$MT_WORK"/*.token "$MT_WORK"/*.key "$MT_WORK"/*.enc
mt_start_server --objects "dir:$MT_WORK/shared"
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
mt_psi2_invoke
as alice task wait "$T" --timeout 60 >/dev/null || fail "PSI task on dir:PATH: $(as alice task show "$T")"
check_results "$T"
[ -e "$MT_WORK/shared/objects/$(oid_of "${OUT[alice]}")" ] || fail "output not under dir:PATH"
[ -z "$(ls "$MT_DATA/objects" 2>/dev/null)" ] || fail "objects written to the data directory with dir:PATH"
if [ "${MT_TEST_PG:-}" = 1 ]; then # (a new data directory: a new store, lib.sh)
  tables="SELECT count(*) FROM information_schema.tables WHERE table_name = 'object_data'"
else
  tables="SELECT count(*) FROM sqlite_master WHERE name = 'object_data'"
fi
[ "$(q "$tables")" = 0 ] || fail "object tables created for dir:PATH"
ok "dir:PATH (a shared mount): objects live there, PSI end to end"
A=$(oid_of "${IN[alice]}")
f=$MT_WORK/shared/objects/$A
cp "$f" "$MT_WORK/a.saved"
head -c "$(stat -c %s "$f")" /dev/urandom >"$f.new" && mv "$f.new" "$f"
psi_again
expect_task_fails "$T2" "dir: tampered input object"
cp "$MT_WORK/a.saved" "$f"
B=$(oid_of "${IN[bob]}")
truncate -s -16 "$MT_WORK/shared/objects/$B"
psi_again
expect_task_fails "$T2" "dir: truncated input object"
grep -q "input 'b'" <<<"$(reason "$T2")" || fail "truncated input b not named: $(reason "$T2")"
