#!/usr/bin/env bash
# bench/python/run.sh [BUILD_DIR]: Python functions (issue 11).
#  1. per-task overhead: trivial.py (imports numpy and pandas, returns) as a
#     task, invoke -> finished as the client sees it (`task invoke` + `task
#     wait`, two CLI processes included) and the worker's metered wall_ms, on
#     a server with --worker-start zygote (warm interpreter) and one with
#     --worker-start spawn (a cold interpreter importing numpy+pandas per task);
#  2. groupby.py (pandas group-by of GROUPBY_ROWS rows) and lstsq.py (NumPy
#     least squares on LSTSQ_ROWS x 28) as a task on the zygote server
#     (decryption included) vs the same script run by plain /usr/bin/python3
#     on the plaintext file, reported twice: the whole process (interpreter
#     start and imports included, which the task does not pay) and
#     compute-only (timed inside the script from after its imports, the
#     file's read included), so the comparison is fair either way: the
#     client's invoke->finished against the whole plain process, the worker's
#     wall (decryption included) against plain compute-only. CPU times are
#     printed beside (the worker's metered cpu_ms, the plain script's
#     process CPU over its compute part): on a loaded machine they move much
#     less than wall times.
# PARTS=overhead|data|all (default all) picks the parts.
# bench/common.sh: the header (date, commit, load) and the footer (load at
# the end); the plain python3 anchor runs with the worker's environment
# (`env -i OMP_WAIT_POLICY=PASSIVE`: the executor starts workers with that
# variable and nothing else), at the same nice level as the servers.
# Every measurement is interleaved (A, B, A, B, ...) and printed; medians at
# the end. BENCH_QUICK=1 (the default; a shared 2-core machine): ROUNDS=5
# GROUPBY_ROWS=1000000 LSTSQ_ROWS=200000; BENCH_QUICK=0: the issue's sizes,
# GROUPBY_ROWS=10000000 LSTSQ_ROWS=1000000. ROUNDS, GROUPBY_ROWS and
# LSTSQ_ROWS override either. Figures depend on the load: quote them with
# the load averages printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
ROUNDS=${ROUNDS:-5}
if [ "$QUICK" != 0 ]; then
  GROUPBY_ROWS=${GROUPBY_ROWS:-1000000}; LSTSQ_ROWS=${LSTSQ_ROWS:-200000}
else
  GROUPBY_ROWS=${GROUPBY_ROWS:-10000000}; LSTSQ_ROWS=${LSTSQ_ROWS:-1000000}
fi
PARTS=${PARTS:-all}
case $PARTS in overhead|data|all) ;; *) echo "PARTS must be overhead, data or all" >&2; exit 2;; esac
PY=/usr/bin/python3
# the plain-python anchor: the worker's environment (src/executor: only
# OMP_WAIT_POLICY=PASSIVE)
PLAIN=(env -i OMP_WAIT_POLICY=PASSIVE "$PY")
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
HERE=$PWD/bench/python
source tests/integration/lib.sh
ROOT=$MT_WORK
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; MT_WORK=$ROOT; MT_PID=; mt_cleanup' EXIT
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# setup MODE: a server with --worker-start MODE, user bench logged in
setup() {
  MT_WORK=$ROOT/$1; MT_DATA=$MT_WORK/server; mkdir -p "$MT_WORK"
  mt_start_server --worker-start "$1" --task-cpu-s 3600 --task-wall-s 3600 --task-mem-mb 8192 >&2
  PIDS+=("$MT_PID")
  mt_login admin; mt_add_user bench
  eval "URL_$1=\$MESATEE_SERVER CA_$1=\$MESATEE_CA WORK_$1=\$MT_WORK"
}
use() { eval "MESATEE_SERVER=\$URL_$1 MESATEE_CA=\$CA_$1 MT_WORK=\$WORK_$1"; export MESATEE_SERVER MESATEE_CA; }
# task MODE FN [INPUT_FILE_ID]: one task, prints "client_ms worker_wall_ms
# worker_cpu_ms result"
task() {
  use "$1"
  local t s t0 t1
  if [ -n "${3:-}" ]; then
    t=$(as bench task create --function "$2" --input data=bench)
    as bench task assign "$t" --input "data=$3" >/dev/null
  else
    t=$(as bench task create --function "$2")
  fi
  as bench task approve "$t" >/dev/null
  t0=$(now); as bench task invoke "$t" >/dev/null; as bench task wait "$t" --timeout 3600 >/dev/null; t1=$(now)
  s=$(as bench --output json task show "$t")
  [ "$(jget "$s" .status)" = finished ] || { echo "task failed: $(jget "$s" .failure_reason)" >&2; exit 1; }
  echo "$(ms "$t0" "$t1") $(jget "$s" .metering.wall_ms) $(jget "$s" .metering.cpu_ms) $(jget "$s" .result.return_value)"
}
upload() { # upload MODE FILE: prints the registered file id
  use "$1"
  as bench file encrypt --in "$2" --out "$2.enc" --key-out "$2.key" >/dev/null
  as bench file register "$(as bench file upload "$2.enc")" --key "$2.key"
}

setup zygote; [ "$PARTS" = data ] || setup spawn
bench_header "python (PARTS=$PARTS ROUNDS=$ROUNDS GROUPBY_ROWS=$GROUPBY_ROWS LSTSQ_ROWS=$LSTSQ_ROWS)"
echo "mesatee: $MESATEE_BIN; plain anchor: ${PLAIN[*]}"
: > "$ROOT/overhead"; : > "$ROOT/data"
if [ "$PARTS" != data ]; then
use zygote; FZ=$(as bench function register --name trivial --python "$HERE/trivial.py")
use spawn; FS=$(as bench function register --name trivial --python "$HERE/trivial.py")
task zygote "$FZ" >/dev/null; task spawn "$FS" >/dev/null # first starts
echo "== per-task overhead, trivial.py (imports numpy+pandas): client invoke->finished ms, worker wall ms"
for r in $(seq "$ROUNDS"); do
  read -r ac aw au _ <<<"$(task zygote "$FZ")"; read -r bc bw bu _ <<<"$(task spawn "$FS")"
  echo "round $r: zygote client $ac ms (worker $aw ms, cpu $au ms) | spawn client $bc ms (worker $bw ms, cpu $bu ms) | load $(cut -d' ' -f1 /proc/loadavg)"
  echo "$ac $aw $bc $bw" >> "$ROOT/overhead"
done
fi
if [ "$PARTS" != overhead ]; then
echo "== data: $GROUPBY_ROWS rows group-by, $LSTSQ_ROWS x 28 least squares"
$PY - "$ROOT/groupby.csv" "$GROUPBY_ROWS" "$ROOT/lstsq.bin" "$LSTSQ_ROWS" <<'PYGEN'
import sys, numpy as np
rng = np.random.default_rng(1)
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    f.write("k,v\n")
    k = rng.integers(0, 1000, n); v = rng.random(n)
    for i in range(0, n, 100000):
        f.write("".join("%d,%.6f\n" % (a, b) for a, b in zip(k[i:i + 100000], v[i:i + 100000])))
m = int(sys.argv[4])
X = rng.standard_normal((m, 28)); y = X @ np.arange(28) + 1 + 0.01 * rng.standard_normal(m)
np.column_stack([X, y]).astype("<f8").tofile(sys.argv[3])
PYGEN
ls -l "$ROOT/groupby.csv" "$ROOT/lstsq.bin" | awk '{print "input " $NF ": " $5 " bytes"}'
use zygote
FG=$(as bench function register --name groupby --python "$HERE/groupby.py" --input-slot data)
FL=$(as bench function register --name lstsq --python "$HERE/lstsq.py" --input-slot data)
IG=$(upload zygote "$ROOT/groupby.csv"); IL=$(upload zygote "$ROOT/lstsq.bin")
for r in $(seq "$ROUNDS"); do
  read -r gc gw gu gres <<<"$(task zygote "$FG" "$IG")"
  t0=$(now); pg=$("${PLAIN[@]}" "$HERE/groupby.py" "$ROOT/groupby.csv" 2>"$ROOT/cg"); t1=$(now)
  [ "$pg" = "$gres" ] || { echo "results differ: task '$gres' plain '$pg'" >&2; exit 1; }
  read -r lc lw lu lres <<<"$(task zygote "$FL" "$IL")"
  t2=$(now); pl=$("${PLAIN[@]}" "$HERE/lstsq.py" "$ROOT/lstsq.bin" 2>"$ROOT/cl"); t3=$(now)
  [ "$pl" = "$lres" ] || { echo "results differ: task '$lres' plain '$pl'" >&2; exit 1; }
  read -r gcm gcu < <(awk '/^compute_ms/ {print $2, $4}' "$ROOT/cg")
  read -r lcm lcu < <(awk '/^compute_ms/ {print $2, $4}' "$ROOT/cl")
  echo "round $r: groupby task $gc ms (worker $gw, cpu $gu) plain $(ms "$t0" "$t1") ms (compute $gcm, cpu $gcu) | lstsq task $lc ms (worker $lw, cpu $lu) plain $(ms "$t2" "$t3") ms (compute $lcm, cpu $lcu) | load $(cut -d' ' -f1 /proc/loadavg)"
  echo "$gc $(ms "$t0" "$t1") $lc $(ms "$t2" "$t3") $gw $gcm $lw $lcm $gu $gcu $lu $lcu" >> "$ROOT/data"
done
fi
$PY - "$ROOT/overhead" "$ROOT/data" <<'PYSUM'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
med = lambda xs: st.median(xs)
if rows:
    zc = med([int(r[0]) for r in rows]); zw = med([int(r[1]) for r in rows])
    sc = med([int(r[2]) for r in rows]); sw = med([int(r[3]) for r in rows])
    print("median per-task overhead: zygote client %d ms (worker %d ms), spawn/cold client %d ms (worker %d ms)" % (zc, zw, sc, sw))
d = [list(map(int, l.split())) for l in open(sys.argv[2])]
for name, c, p, w, pc, u, pu in (("groupby", 0, 1, 4, 5, 8, 9), ("lstsq  ", 2, 3, 6, 7, 10, 11)):
    if not d:
        break
    m = lambda i: med([r[i] for r in d])
    print("median %s: task client %d ms vs plain python3 whole %d ms: %.2fx | task worker %d ms vs plain compute-only %d ms: %.2fx | CPU: task worker %d ms vs plain compute-only %d ms: %.2fx"
          % (name, m(c), m(p), m(c) / m(p), m(w), m(pc), m(w) / m(pc), m(u), m(pu), m(u) / m(pu)))
PYSUM
bench_footer python
