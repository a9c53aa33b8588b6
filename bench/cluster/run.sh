#!/usr/bin/env bash
# bench/cluster/run.sh [BUILD_DIR] [bench_cluster options, e.g. -r 5 -n 20 -m 20]:
# the store's cost per task (issue 14 "Benchmark"). Starts a throw-away
# PostgreSQL (tests/pg/pg-temp.sh; made durable for the bench: fsync,
# synchronous_commit and full_page_writes back on, as SQLite's
# synchronous=FULL is) and two `mesatee serve --level soft --worker-start
# zygote` daemons on loopback (lib.sh): "sqlite" (the anchor: the embedded
# default store) and "pg1" (--store postgres://..., one node); each gets a
# policy pinning its measurement and platform key (the client verifies the
# evidence in its TLS handshake), a user `bench` and an echo function. Then
# bench_cluster runs at low priority, interleaving both in every round.
# "2 nodes" is a column without figures: two nodes on one database need the
# shared platform keys of the cluster-nodes work (not on this branch), so
# nothing is measured there. Figures vary with the machine's load: quote
# them with the load average the script prints.
# BENCH_QUICK=1 (the default) with no options: -r 3 -n 10 -c 4 -m 10;
# BENCH_QUICK=0: -r 5 -n 20 -c 8 -m 25.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; shift || true
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
if [ $# -eq 0 ]; then
  if [ "$QUICK" != 0 ]; then set -- -r 3 -n 10 -c 4 -m 10; else set -- -r 5 -n 20 -c 8 -m 25; fi
fi
BIN=$BUILD/bench/cluster/bench_cluster
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (cmake --build $BUILD --target bench_cluster)" >&2; exit 1; }
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
export MESATEE_WORKER=${MESATEE_WORKER:-$(find "$PWD/$BUILD" -name mesatee-worker -type f -print -quit)}
PGTEMP=$PWD/tests/pg/pg-temp.sh
source tests/integration/lib.sh
command -v jq >/dev/null || { echo "run.sh: jq is needed" >&2; exit 1; }
ROOT=$MT_WORK
PIDS=()
PGDIR=
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; sleep 0.5;
      [ -z "$PGDIR" ] || bash "$PGTEMP" stop "$PGDIR" >/dev/null 2>&1 || true;
      MT_WORK=$ROOT; MT_PID=; mt_cleanup' EXIT

env_out=$(bash "$PGTEMP" start) || { echo "run.sh: PostgreSQL could not start" >&2; exit 1; }
eval "$env_out"
PGDIR=$MT_PG_DIR
PSQL=$(dirname "$(command -v /usr/lib/postgresql/*/bin/initdb | head -1)")/psql
"$PSQL" -q -d "$MT_PG_SOCKET_URL" -c "ALTER SYSTEM SET fsync = on" \
  -c "ALTER SYSTEM SET synchronous_commit = on" -c "ALTER SYSTEM SET full_page_writes = on" \
  -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.2
echo "PostgreSQL: $("$PSQL" -At -d "$MT_PG_SOCKET_URL" -c "SELECT 'fsync=' || current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit') || ' ' || version()")"

# setup NAME [serve args...]: a server in $ROOT/NAME; prints its -S spec in SPEC
setup() {
  local name=$1; shift
  MT_WORK=$ROOT/$name; MT_DATA=$MT_WORK/server; mkdir -p "$MT_WORK"
  mt_start_server --level soft --worker-start zygote "$@" >&2
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
  [ -f "$ROOT/bench.pw" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$ROOT/bench.pw"
  MESATEE_CA=$MT_DATA/tls/server-cert.pem as admin user add bench --password-file "$ROOT/bench.pw" >/dev/null
  cp "$ROOT/bench.pw" "$MT_WORK/bench.pw"
  MESATEE_CA=$MT_DATA/tls/server-cert.pem mt_login bench
  local fn
  fn=$(as bench function register --name echo --builtin echo --arg "message=x:overridable")
  SPEC="$name,$MESATEE_SERVER,$MT_WORK/policy.json,$fn"
}
setup sqlite; A=$SPEC
setup pg1 --store "$MT_PG_URL"; B=$SPEC
bench_header "cluster ($*)"
nice -n 19 "$BIN" -S "$A" -S "$B" -u bench -w "$ROOT/bench.pw" \
  -x "2 nodes: needs cluster-nodes (shared platform keys; not measured)" "$@"
bench_footer cluster
