#!/usr/bin/env bash
# bench/faas/cost.sh BINDIR [MODE] [CLIENTS] [TASKS_PER_CLIENT]: what one
# echo task costs the server, counted (independent of the machine's load):
# starts `BINDIR/mesatee serve --level soft --worker-start zygote` (worker
# BINDIR/mesatee-worker, default --workers), a user and an echo function as
# run.sh does, lets bench_faas (cost mode, -C) create CLIENTS x TASKS (default
# 8 x 50) tasks over kept-alive connections, and then counts with `perf
# stat --per-thread` on the daemon and its worker zygote (whose forked
# workers are inherited) while bench_faas's clients invoke and collect them
# (MODE: burst = each client invokes all, then polls every 10 ms; poll =
# invoke, poll every 1 ms; wait = invoke, mesatee_task_wait; default burst):
# CPU (task-clock) of the daemon and of zygote+workers, fsync/fdatasync
# calls, and SQL statements compiled and stepped (uprobes on libsqlite3's
# sqlite3_prepare_v2/_v3 and sqlite3_step; they slow the run down, so the
# rate it prints is not a throughput figure: run.sh's are; PROBES=0 leaves
# them out), each per task, and the client's (bench_faas: task-clock and
# syscalls); then the scheduler's /metrics counters. bench_faas runs at the
# server's nice level (the caller's, normally 0), not below it.
# RECORD=FILE: `perf record -g` of the daemon instead of the counts
# (RECORD_EV=EVENT: of that event, e.g. a uprobe with the SQL text;
# RECORD_OPTS: more perf record options for either, e.g. --call-graph dwarf).
# RECORD_CLIENT=FILE: `perf record -g --call-graph dwarf` of the client
# (bench_faas) instead of its counts. EXTRA_EV=EV1,EV2: more events counted
# (e.g. context-switches). Needs perf with uprobes (root).
# bench_faas is taken from BUILD (default build). Compare two builds by
# running it for each, alternating.
set -euo pipefail
cd "$(dirname "$0")/../.."
BINDIR=$(cd "${1:?usage: cost.sh BINDIR [MODE] [CLIENTS] [TASKS_PER_CLIENT]}" && pwd)
MODE=${2:-burst}; NC=${3:-8}; NT=${4:-50}
BENCH=${BUILD:-build}/bench/faas/bench_faas
[ -x "$BENCH" ] || { echo "cost.sh: $BENCH not built" >&2; exit 1; }
export MESATEE_BIN=$BINDIR/mesatee MESATEE_WORKER=$BINDIR/mesatee-worker
source tests/integration/lib.sh
ADDED=()
PP=; BP=; CP=
trap '[ -n "$PP" ] && kill -INT "$PP" 2>/dev/null; [ -n "$CP" ] && kill -INT "$CP" 2>/dev/null; [ -n "$BP" ] && kill "$BP" 2>/dev/null; mt_cleanup; for p in "${ADDED[@]}"; do perf probe -q -d "$p" || true; done' EXIT
EV=task-clock,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync${EXTRA_EV:+,$EXTRA_EV}
if [ "${PROBES:-1}" != 0 ]; then
  LIB=$(ldd "$MESATEE_BIN" | awk '/libsqlite3/ {print $3}')
  for f in sqlite3_prepare_v2 sqlite3_prepare_v3 sqlite3_step; do # removed at exit if added here
    if ! perf probe -l 2>/dev/null | grep -q "probe_libsqlite3:$f "; then
      perf probe -q -x "$LIB" "$f"; ADDED+=("probe_libsqlite3:$f")
    fi
    EV=$EV,probe_libsqlite3:$f
  done
fi
mt_start_server --level soft --worker-start zygote >/dev/null
unset MESATEE_CA
show=$("$MESATEE_BIN" attest show --output json)
cat >"$MT_WORK/policy.json" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jget "$show" .measurements.measurement)"]}},
 "soft_platform_keys": ["$(jget "$show" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
export MESATEE_POLICY=$MT_WORK/policy.json MESATEE_CA=$MT_DATA/tls/server-cert.pem
mt_login admin
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/bench.pw"
as admin user add bench --password-file "$MT_WORK/bench.pw" >/dev/null
mt_login bench
FN=$(as bench function register --name echo --builtin echo --arg "message=x:overridable")
mkfifo "$MT_WORK/go"
"$BENCH" -C "$MESATEE_SERVER,$MT_WORK/policy.json,$FN" -M "$MODE" -G "$MT_WORK/go" \
  -u bench -w "$MT_WORK/bench.pw" -c "$NC" -m "$NT" > "$MT_WORK/bench.out" &
BP=$!
for _ in $(seq 1200); do grep -q READY "$MT_WORK/bench.out" && break; sleep 0.1; done
grep -q READY "$MT_WORK/bench.out" || { echo "cost.sh: bench_faas did not get ready" >&2; exit 1; }
metric() { curl -s --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }
C0=$(metric mesatee_scheduler_commits_total); T0=$(metric mesatee_scheduler_transitions_total)
ZYG=$(pgrep -P "$MT_PID" | tr '\n' ',' | sed 's/,$//')
DTIDS=" $(ls /proc/"$MT_PID"/task | tr '\n' ' ')"
if [ -n "${RECORD:-}" ]; then # a profile of the daemon instead (perf report -i RECORD)
  if [ -n "${RECORD_EV:-}" ]; then perf record -e "$RECORD_EV" ${RECORD_OPTS:-} -o "$RECORD" -p "$MT_PID" 2>/dev/null &
  else perf record -g ${RECORD_OPTS:-} -o "$RECORD" -p "$MT_PID" 2>/dev/null &
  fi
else
  perf stat --per-thread -x, -e "$EV" -p "$MT_PID${ZYG:+,$ZYG}" -o "$MT_WORK/perf.txt" &
fi
PP=$!
# the client (bench_faas: libmesatee, its threads all started by READY)
if [ -n "${RECORD_CLIENT:-}" ]; then # a profile of the client too (perf report -i RECORD_CLIENT)
  perf record -g --call-graph dwarf -o "$RECORD_CLIENT" -p "$BP" 2>/dev/null &
else
  perf stat -x, -e task-clock,raw_syscalls:sys_enter -p "$BP" -o "$MT_WORK/perf-client.txt" &
fi
CP=$!; sleep 1
echo go > "$MT_WORK/go"
wait "$BP"; BP=
kill -INT "$CP" 2>/dev/null; wait "$CP" || true; CP=
sleep 0.3; kill -INT "$PP"; wait "$PP" || true; PP=
C1=$(metric mesatee_scheduler_commits_total); T1=$(metric mesatee_scheduler_transitions_total)
N=$((NC * NT))
echo "cost.sh: $N echo tasks ($MODE, $NC clients), $BINDIR, load average $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$MT_WORK/bench.out" | grep -v READY
# perf -x, --per-thread lines: comm-tid,value,unit,event,...
awk -F, -v n="$N" -v dt="$DTIDS" '
  /^#/ || NF < 4 { next }
  { split($1, a, "-"); tid = a[length(a)]; v = $2 + 0; ev = $4
    who = index(dt, " " tid " ") ? "daemon" : "zygote+workers"
    tot[who "," ev] += v; if (who == "daemon" && v > 0) th[$1 "," ev] = v }
  END {
    for (k in tot) { split(k, b, ",");
      printf "  %-15s %-38s %12.1f  per task %9.3f\n", b[1], b[2], tot[k], tot[k] / n }
    print "  daemon threads (nonzero):"
    for (k in th) { split(k, b, ","); printf "    %-24s %-38s %12.1f\n", b[1], b[2], th[k] }
  }' "$MT_WORK/perf.txt" | sort
[ -f "$MT_WORK/perf-client.txt" ] && awk -F, -v n="$N" '/^#/ || NF < 4 { next }
  # perf -x, lines: value,unit,event,...
  { printf "  %-15s %-38s %12.1f  per task %9.3f\n", "client", $3, $1, $1 / n }' \
  "$MT_WORK/perf-client.txt"
echo "  scheduler commits $((C1 - C0)), task state changes committed $((T1 - T0)) ($N tasks)"
echo "  (task-clock in ms)"
