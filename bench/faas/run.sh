#!/usr/bin/env bash
# bench/faas/run.sh [BUILD_DIR] [bench_faas options, e.g. -r 5 -n 20 -m 25]:
# starts two `mesatee serve --level soft` daemons on loopback (lib.sh), one
# with --worker-start zygote and one with --worker-start spawn, each with an
# access log, a policy pinning its measurement and platform key (the client
# verifies the evidence in its TLS handshake, as `mesatee --policy` does), a
# user `bench` and an echo function; then runs bench_faas, which measures
# both servers and the anchors interleaved in every round (see bench_faas.c).
# Priority: bench_faas (the clients and the in-process anchors: fork+exec
# floor, posix_spawn, wasm instantiate) runs at the same nice level as the
# servers (the caller's, normally 0): no side gets a lower priority. Figures vary with the machine's load: quote them with
# the load average the script prints.
# Before/after in one run: OLD_BIN=DIR (holding an older build's mesatee and
# mesatee-worker) makes server B that older binary with --worker-start
# zygote instead of this build with spawn; bench_faas labels it "old-zygote".
# TRACE=1 starts both servers with MESATEE_TRACE_TASKS=1: bench_faas's srv
# column then uses the trace's microsecond stamps (gw_recv -> event_raised)
# instead of the logs' millisecond stamps; the trace's log lines cost the
# servers time in every column (both servers alike), so quote TRACE=1 runs as
# such. Default: off.
# BENCH_QUICK=1 (the default) with no bench_faas options: -r 3 -n 10 -m 10
# (3 rounds, 10 latency tasks, 10 tasks per client); BENCH_QUICK=0: its defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; shift || true
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
if [ $# -eq 0 ] && [ "$QUICK" != 0 ]; then set -- -r 3 -n 10 -m 10; fi
BIN=$BUILD/bench/faas/bench_faas
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (cmake --build $BUILD --target bench_faas)" >&2; exit 1; }
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
export MESATEE_WORKER=${MESATEE_WORKER:-$(find "$PWD/$BUILD" -name mesatee-worker -type f -print -quit)}
source tests/integration/lib.sh
command -v jq >/dev/null || { echo "run.sh: jq is needed" >&2; exit 1; }
ROOT=$MT_WORK
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; MT_WORK=$ROOT; MT_PID=; mt_cleanup' EXIT

# setup MODE: a server with --worker-start MODE in $ROOT/MODE; prints its -A/-B spec
setup() {
  MT_WORK=$ROOT/$1; MT_DATA=$MT_WORK/server; mkdir -p "$MT_WORK"
  if [ "${TRACE:-0}" = 1 ]; then export MESATEE_TRACE_TASKS=1; else unset MESATEE_TRACE_TASKS; fi
  if [ "$1" = old ]; then
    MESATEE_BIN=$OLD_BIN/mesatee MESATEE_WORKER=$OLD_BIN/mesatee-worker \
      mt_start_server --level soft --worker-start zygote --access-log "$MT_WORK/access.log" >&2
  else
    mt_start_server --level soft --worker-start "$1" --access-log "$MT_WORK/access.log" >&2
  fi
  PIDS+=("$MT_PID")
  unset MESATEE_CA
  local show
  show=$("$MESATEE_BIN" attest show --output json)
  cat >"$MT_WORK/policy.json" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jget "$show" .measurements.measurement)"]}},
 "soft_platform_keys": ["$(jget "$show" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
  export MESATEE_POLICY=$MT_WORK/policy.json
  MESATEE_CA=$MT_DATA/tls/server-cert.pem mt_login admin
  # one password for user bench on both servers
  [ -f "$ROOT/bench.pw" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$ROOT/bench.pw"
  cp "$ROOT/bench.pw" "$MT_WORK/bench.pw"
  MESATEE_CA=$MT_DATA/tls/server-cert.pem as admin user add bench --password-file "$ROOT/bench.pw" >/dev/null
  MESATEE_CA=$MT_DATA/tls/server-cert.pem mt_login bench
  local fn
  fn=$(as bench function register --name echo --builtin echo --arg "message=x:overridable")
  SPEC="$MESATEE_SERVER,$MT_WORK/policy.json,$fn,$MT_WORK/access.log,$MT_WORK/server.log"
}
setup zygote; A=$SPEC
if [ -n "${OLD_BIN:-}" ]; then setup old; else setup spawn; fi; B=$SPEC
bench_header "faas ($*${TRACE:+, TRACE=$TRACE})"
BNAME=spawn; [ -n "${OLD_BIN:-}" ] && BNAME=old-zygote
"$BIN" -A "$A" -N "$BNAME" -B "$B" -u bench -w "$ROOT/bench.pw" "$@"
# group commit under load: scheduler commits vs task state changes committed
for m in zygote old spawn; do
  d=$ROOT/$m; [ -d "$d" ] || continue
  u=$(cat "$d/server/server.url")
  met=$(curl -s --cacert "$d/server/tls/server-cert.pem" "$u/metrics" |
    sed -n 's/^mesatee_scheduler_\(commits\|transitions\)_total \([0-9]*\)$/\1=\2/p' | tr '\n' ' ')
  echo "scheduler ($m server): $met(transitions per commit > 1: claims rode on outcomes)"
done
bench_footer faas
