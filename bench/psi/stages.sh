#!/usr/bin/env bash
# PSI as a whole cold task, stage by stage (issue 13 "Cold memory"): where
# the time of one task goes, and an A/B of two builds. Each invocation of
# bench_psi_task runs RUNS cold tasks (zygote-forked workers) with
# MESATEE_TRACE_TASKS=1; bench/psi/stages.py turns the trace lines (the
# executor's x_* and the worker's w_* stamps, docs/operations.md) into one
# line per task. With two build directories the invocations alternate
# A B B A ... (each build's own bench_psi_task, executor and worker), every
# task printed with the load; then the medians.
# Run 1 of each invocation meets a zygote that was just started (its python
# twin still importing on the other CPU): look at runs 2.. for the steady
# state. Usage: bench/psi/stages.sh BUILD_A [BUILD_B]
#   env LOG2N (20), RUNS (tasks per invocation, 4), ROUNDS (invocations of each, 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
A=${1:-build}; B=${2:-}
L=${LOG2N:-20}; R=${RUNS:-4}; N=${ROUNDS:-2}
for d in "$A" $B; do
  [ -x "$d/bench/psi/bench_psi_task" ] && [ -x "$d/src/executor/mesatee-worker" ] ||
    { echo "build first: cmake --build $d" >&2; exit 1; }
done
A=$(cd "$A" && pwd); [ -n "$B" ] && B=$(cd "$B" && pwd)
bench_header "psi stages (2 x 2^$L, $R tasks x $N invocations${B:+, A=$A B=$B})"
out=$(mktemp); trap 'rm -f "$out" "$out.all"' EXIT
: > "$out.all"
for r in $(seq "$N"); do
  order="A"; [ -n "$B" ] && { [ $((r % 2)) = 1 ] && order="A B" || order="B A"; }
  for w in $order; do
    d=$A; [ "$w" = B ] && d=$B
    load=$(cut -d' ' -f1 /proc/loadavg)
    MESATEE_TRACE_TASKS=1 "$d/bench/psi/bench_psi_task" -k 2 -l "$L" -r "$R" \
      -a "$d/src/executor/mesatee-worker" > "$out" 2>&1
    /usr/bin/python3 bench/psi/stages.py "$w" "$r" "$load" < "$out" | tee -a "$out.all"
  done
done
/usr/bin/python3 bench/psi/stages.py --summary < "$out.all"
bench_footer "psi stages"
