#!/usr/bin/env bash
# bench/wasm/run.sh [BUILD_DIR]: the wasm interpreter's kernels natively, on
# mt_wasm and on wabt's wasm-interp (the anchors), from the same C source,
# kernel by kernel in each run, 3 rounds per kernel, each round native,
# novec, mt_wasm, wabt in turn (interleaved; every round printed, then a
# summary row "best"), then the 1 MiB module instantiation. RUNS (default 2;
# BENCH_QUICK=0: 3) separate runs of bench_wasm, each a fresh process, every
# one printed. BENCH_QUICK=1 (the default) runs wabt in round 1 of run 1 only
# (it takes minutes per round); BENCH_QUICK=0 runs it in every round of every
# run.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
RUNS=${RUNS:-$([ "$QUICK" = 0 ] && echo 3 || echo 2)}
BIN=$BUILD/bench/wasm/bench_wasm
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (cmake --build $BUILD --target bench_wasm)" >&2; exit 1; }
ls "$BUILD"/bench/wasm/*.wasm >/dev/null 2>&1 || { echo "run.sh: no kernels: the clang wasm32 toolchain is missing" >&2; exit 1; }
bench_header "wasm ($RUNS runs)"
for r in $(seq 1 "$RUNS"); do
  echo "-- run $r, load average $(bench_load)"
  if [ "$QUICK" = 0 ]; then "$BIN" "$BUILD/bench/wasm"
  elif [ "$r" -eq 1 ]; then "$BIN" "$BUILD/bench/wasm" --wabt-once
  else "$BIN" "$BUILD/bench/wasm" --no-wabt; fi
done
bench_footer wasm
