#!/usr/bin/env bash
# SQL clean-room benchmark, all in one run, on the same fixed-seed data:
#  Two parties: a retailer `a` (id,region: one row per customer, even ids)
#  and a bank `b` (id,amount: transactions in cents, ids drawn from twice the
#  retailer's range, so about half of them match a customer). The query is
#  the clean room's typical private join with a group-by aggregate and the
#  minimum group size policy on:
#    SELECT region, COUNT(*) AS __group_size, SUM(amount) AS total_cents
#    FROM a JOIN b USING (id) GROUP BY region ORDER BY region
#  (with min_group_size set the built-in allows COUNT/SUM/AVG/TOTAL only;
#  AVG is left out so the two CSV outputs can be compared byte for byte)
#  1. ours: the `sql` built-in as a platform task through a real
#     `mesatee serve` (each party encrypts, uploads and registers its CSV,
#     assigns, approves; the sandboxed worker decrypts, loads both tables
#     into in-memory SQLite, runs the query, encrypts the result).
#  2. anchor: the same query in the plain `sqlite3` shell (Debian sqlite3)
#     on the plaintext CSVs: in-memory database, the worker's settings
#     (PRAGMA temp_store = MEMORY, loading in one transaction), the same
#     STRICT column types, `.import`, then the query; a fresh sqlite3
#     process per run; its wall and CPU time (user + sys).
#  Anchor and ours run interleaved (anchor, ours, anchor, ours ...), RUNS
#  rounds (default 2), every run printed; each of ours is a new task (a
#  fresh worker: decrypt, load, query, encrypt).
#  Throughput: input rows (both tables) per second and GB/s of ciphertext
#  (both inputs) over the worker's wall time (metering) and over the
#  scheduler's invoke -> finished; the anchor over its CPU time. The two
#  results must be identical.
# Usage: bench/sql/run.sh [BUILD_DIR]   env SQL_ROWS (total input rows,
#        default 10000000, or 1000000 with BENCH_QUICK=1 (the default);
#        split evenly between the two parties), RUNS (2)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
ROWS=${SQL_ROWS:-$([ "$QUICK" = 0 ] && echo 10000000 || echo 1000000)}
RUNS=${RUNS:-2}
NA=$((ROWS / 2)); NB=$((ROWS - NA))
export MESATEE_BIN=$PWD/$BUILD/src/cli/mesatee
[ -x "$MESATEE_BIN" ] || { echo "build first: cmake --build $BUILD --target mesatee mesatee-worker" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench/sql needs the sqlite3 shell (apt-get install sqlite3)" >&2; exit 1; }
source tests/integration/lib.sh
bench_header sql
QUERY='SELECT region, COUNT(*) AS __group_size, SUM(amount) AS total_cents FROM a JOIN b USING (id) GROUP BY region ORDER BY region'

echo "== data: a = $NA rows (id,region), b = $NB rows (id,amount), fixed seeds"
# a: customer ids 0, 2, 4, ... shuffled by a fixed permutation, 24 regions
awk -v n="$NA" 'BEGIN { srand(1); print "id,region";
  for (i = 0; i < n; i++) printf "%d,region_%02d\n", ((i * 7919) % n) * 2, int(rand() * 24) }' > "$MT_WORK/a.csv"
# b: ids uniform in [0, 2 * NA), amounts 1 to 100000 cents
awk -v n="$NB" -v m="$NA" 'BEGIN { srand(2); print "id,amount";
  for (i = 0; i < n; i++) printf "%d,%d\n", int(rand() * 2 * m), 1 + int(rand() * 100000) }' > "$MT_WORK/b.csv"
ls -l "$MT_WORK/a.csv" "$MT_WORK/b.csv" | awk '{ print "   " $9 ": " $5 " bytes" }'

echo "== anchor: sqlite3 $(sqlite3 --version | cut -d' ' -f1) shell, in-memory, plaintext"
cat > "$MT_WORK/anchor.sql" <<EOF
PRAGMA temp_store = MEMORY;
BEGIN;
CREATE TABLE a (id INTEGER, region TEXT) STRICT;
CREATE TABLE b (id INTEGER, amount INTEGER) STRICT;
.mode csv
.import --skip 1 $MT_WORK/a.csv a
.import --skip 1 $MT_WORK/b.csv b
COMMIT;
.headers on
.output $MT_WORK/anchor.csv
$QUERY;
EOF
TIMEFORMAT='%R %U %S'
anchor_run() { # prints "WALL CPU" of one fresh sqlite3 process
  { time sqlite3 :memory: < "$MT_WORK/anchor.sql" >/dev/null; } 2>&1 | tail -1 | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'; }
# the query alone (tables loaded first, then timed with .timer), once
{ head -n 9 "$MT_WORK/anchor.sql"; echo ".timer on"; echo ".output /dev/null"; echo "$QUERY;"; } \
  > "$MT_WORK/anchor_q.sql"

echo "== ours: the sql built-in through mesatee serve"
mt_start_server --task-mem-mb 12288 --task-wall-s 3600
mt_login admin
mt_add_user alice
mt_add_user bob
"$MESATEE_BIN" key generate --out "$MT_WORK/res.key" >/dev/null
FN=$(as alice function register --name cleanroom --builtin sql --input-slot a --input-slot b \
  --output-slot result --arg query="$QUERY" --arg min_group_size=10 --public)
ms() { date +%s%3N; }
t0=$(ms)
party() { # party USER SLOT: encrypt, upload, register (once)
  local u=$1
  as "$u" file encrypt --in "$MT_WORK/$2.csv" --out "$MT_WORK/$2.enc" --key-out "$MT_WORK/$2.key" >/dev/null
  as "$u" file register "$(as "$u" file upload "$MT_WORK/$2.enc")" --key "$MT_WORK/$2.key" > "$MT_WORK/$2.fid"
}
party alice a & p1=$!
party bob b & p2=$!
wait $p1 $p2
t_up=$(( $(ms) - t0 ))
FA=$(cat "$MT_WORK/a.fid"); FB=$(cat "$MT_WORK/b.fid")
ours_run() { # one new task, a fresh worker; prints "INVOKE_TO_FINISHED_MS WALL_MS CPU_MS RSS"
  local T o t1 t2 TJ
  T=$(as alice task create --function "$FN" --input a=alice --input b=bob --output result=alice)
  rm -f "$MT_WORK/res.key"; "$MESATEE_BIN" key generate --out "$MT_WORK/res.key" >/dev/null  # a fresh key per output
  o=$(as alice file register-output --key "$MT_WORK/res.key")
  as alice task assign "$T" --input "a=$FA" --output "result=$o" >/dev/null
  as bob task assign "$T" --input "b=$FB" >/dev/null
  as alice task approve "$T" >/dev/null
  as bob task approve "$T" >/dev/null
  t1=$(ms)
  as alice task invoke "$T" >/dev/null
  as alice task wait "$T" --timeout 3600 >/dev/null || fail "sql task failed: $(as alice task show "$T")"
  t2=$(ms)
  as alice task result "$T" --slot result --key "$MT_WORK/res.key" --out "$MT_WORK/ours.csv" >/dev/null
  TJ=$(as alice --output json task show "$T")
  echo "$((t2 - t1)) $(jget "$TJ" .metering.wall_ms) $(jget "$TJ" .metering.cpu_ms) $(jget "$TJ" '.metering.peak_rss_kb // .metering.peak_rss // empty')"
}
s() { awk -v a="$1" 'BEGIN { printf "%.3f", a / 1000 }'; }
r() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.2f", n / s / 1e6 }'; }      # M per s
printf '\nSQL clean room: %d rows (a %d + b %d); every run, interleaved; s\n' "$ROWS" "$NA" "$NB"
printf '| run | what | wall s | CPU s | M rows/s (wall) | invoke->finished s | peak RSS |\n|---|---|---|---|---|---|---|\n'
for i in $(seq 1 "$RUNS"); do
  read -r aw ac < <(anchor_run)
  printf '| %d | anchor: sqlite3 shell, plaintext, .import + query | %s | %s | %s | | |\n' "$i" "$aw" "$ac" "$(r "$ROWS" "$aw")"
  ours_run > "$MT_WORK/ours.run"
  read -r itf ow oc rss < "$MT_WORK/ours.run"
  printf '| %d | ours: sql task (fresh worker: decrypt+load+query+encrypt) | %s | %s | %s | %s | %s KiB |\n' \
    "$i" "$(s "$ow")" "$(s "$oc")" "$(r "$ROWS" "$(s "$ow")")" "$(s "$itf")" "$rss"
  cmp -s "$MT_WORK/ours.csv" "$MT_WORK/anchor.csv" || {
    echo "bench: results differ from sqlite3's:" >&2; diff "$MT_WORK/ours.csv" "$MT_WORK/anchor.csv" | head >&2; exit 1; }
done
mt_stop_server
anchor_q=$(sqlite3 :memory: < "$MT_WORK/anchor_q.sql" 2>&1 | sed -n 's/^Run Time: real \([0-9.]*\) user \([0-9.]*\) sys \([0-9.]*\).*/\2 \3/p' | awk '{ print $1 + $2 }')
groups=$(($(wc -l < "$MT_WORK/ours.csv") - 1))
ct=$(( $(stat -c %s "$MT_WORK/a.enc") + $(stat -c %s "$MT_WORK/b.enc") ))
printf '\nresult: %d groups, identical to sqlite3 in every run; %d ciphertext bytes; both parties encrypt+upload+register: %s s (once)\n' "$groups" "$ct" "$(s "$t_up")"
printf 'anchor, the query alone (tables loaded first, .timer): %s s CPU\n' "$anchor_q"
bench_footer sql
exit 0
