#!/usr/bin/env bash
# bench/faas/trace.sh [BUILD_DIR] [N]: the stage breakdown of N (default 20)
# echo tasks on one `mesatee serve --level soft --worker-start zygote` run
# with MESATEE_TRACE_TASKS=1 (src/common/mt_trace.h): each task is invoked
# and waited for alone (CLI), then bench/faas/trace_breakdown.py prints the
# median time of every stage of the server-side path, invoke request ->
# task event, and every task's total. Quote it with the load average it
# prints. KIND=wasm: the task
# is a wasm function whose _start returns at once (one memory page; the
# module bench_faas instantiates in process) instead of the echo built-in.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; N=${2:-20}
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
export MESATEE_WORKER=${MESATEE_WORKER:-$(find "$PWD/$BUILD" -name mesatee-worker -type f -print -quit)}
source tests/integration/lib.sh
trap 'mt_cleanup' EXIT
bench_header "faas trace (N=$N, ${KIND:-echo})"
MESATEE_TRACE_TASKS=1 mt_start_server --level soft --worker-start zygote
mt_login admin; mt_add_user bench
if [ "${KIND:-echo}" = wasm ]; then
  # (module (memory (export "memory") 1) (func (export "_start")))
  printf '\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x05\x03\x01\x00\x01\x07\x13\x02\x06_start\x00\x00\x06memory\x02\x00\x0a\x04\x01\x02\x00\x0b' >"$MT_WORK/empty.wasm"
  F=$(as bench function register --name empty --wasm "$MT_WORK/empty.wasm")
else
  F=$(as bench function register --name echo --builtin echo --arg "message=x:overridable")
fi
for _ in $(seq "$N"); do
  T=$(as bench task create --function "$F")
  as bench task approve "$T" >/dev/null 2>&1 || true
  as bench task invoke "$T" >/dev/null
  as bench task wait "$T" --timeout 60 >/dev/null
done
/usr/bin/python3 bench/faas/trace_breakdown.py "$MT_WORK/server.log"
bench_footer "faas trace"
