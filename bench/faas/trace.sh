#!/usr/bin/env bash
# bench/faas/trace.sh [BUILD_DIR] [N]: the stage breakdown of N (default 20)
# echo tasks on one `mesatee serve --level soft --worker-start zygote` run
# with MESATEE_TRACE_TASKS=1 (src/common/mt_trace.h): each task is invoked
# and waited for alone (CLI), then bench/faas/trace_breakdown.py prints the
# median time of every stage of the server-side path, invoke request ->
# task event. Quote it with the load average it prints.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; N=${2:-20}
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
export MESATEE_WORKER=${MESATEE_WORKER:-$(find "$PWD/$BUILD" -name mesatee-worker -type f -print -quit)}
source tests/integration/lib.sh
trap 'mt_cleanup' EXIT
bench_header "faas trace (N=$N)"
MESATEE_TRACE_TASKS=1 mt_start_server --level soft --worker-start zygote
mt_login admin; mt_add_user bench
F=$(as bench function register --name echo --builtin echo --arg "message=x:overridable")
for _ in $(seq "$N"); do
  T=$(as bench task create --function "$F")
  as bench task approve "$T" >/dev/null 2>&1 || true
  as bench task invoke "$T" >/dev/null
  as bench task wait "$T" --timeout 60 >/dev/null
done
/usr/bin/python3 bench/faas/trace_breakdown.py "$MT_WORK/server.log"
bench_footer "faas trace"
