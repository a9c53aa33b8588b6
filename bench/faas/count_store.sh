#!/usr/bin/env bash
# bench/faas/count_store.sh BINDIR [N]: what the store does per task, counted
# (independent of the machine's load): starts `BINDIR/mesatee serve` (worker
# BINDIR/mesatee-worker, --workers 2), creates and approves N echo tasks
# (default 40), then counts per daemon thread, with `perf stat --per-thread`,
# the fdatasync syscalls and the SQL statements compiled (uprobes on
# sqlite3_prepare_v2/_v3) while 8 CLI processes invoke them all and they are
# waited for; prints the counts and the scheduler's /metrics counters. The
# scheduler threads are the two with sqlite3_prepare_v3 calls (new build) or
# the two busiest besides the main thread. Needs perf with uprobes (root).
# Compare two builds by running it for each (e.g. the merge base's binaries
# copied to a directory, then this build's).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:?usage: count_store.sh BINDIR [N]}; N=${2:-40}
export MESATEE_BIN=$BIN/mesatee MESATEE_WORKER=$BIN/mesatee-worker
source tests/integration/lib.sh
ADDED=()
trap 'mt_cleanup; for p in "${ADDED[@]}"; do perf probe -q -d "$p" || true; done' EXIT
LIB=$(ldd "$MESATEE_BIN" | awk '/libsqlite3/ {print $3}')
for f in sqlite3_prepare_v2 sqlite3_prepare_v3; do # uprobes, removed at exit if added here
  if ! perf probe -l 2>/dev/null | grep -q "probe_libsqlite3:$f "; then
    perf probe -q -x "$LIB" "$f"; ADDED+=("probe_libsqlite3:$f")
  fi
done
mt_start_server --level soft --workers 2 >/dev/null
mt_login admin; mt_add_user bob
FN=$(as bob function register --name echo --builtin echo --arg "message=x:overridable")
for _ in $(seq "$N"); do
  t=$(as bob task create --function "$FN"); as bob task approve "$t" >/dev/null 2>&1 || true; echo "$t"
done > "$MT_WORK/tasks"
perf stat --per-thread -e syscalls:sys_enter_fdatasync,probe_libsqlite3:sqlite3_prepare_v2,probe_libsqlite3:sqlite3_prepare_v3 \
  -p "$MT_PID" -o "$MT_WORK/perf.txt" &
PP=$!; sleep 1
xargs -P 8 -I{} env MESATEE_TOKEN_FILE="$MT_WORK/bob.token" "$MESATEE_BIN" task invoke {} < "$MT_WORK/tasks" >/dev/null
while read -r t; do as bob task wait "$t" --timeout 300 >/dev/null; done < "$MT_WORK/tasks"
sleep 0.5; kill -INT "$PP"; wait "$PP" || true
echo "count_store.sh: $N echo tasks, $(basename "$BIN"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep -v '^$\|^#' "$MT_WORK/perf.txt" | grep -v 'not counted' | awk '$2 > 0' || true
curl -s --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" | grep '^mesatee_scheduler' || true
