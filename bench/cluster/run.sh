#!/usr/bin/env bash
# bench/cluster/run.sh [BUILD_DIR] [bench_cluster options, e.g. -r 5 -n 20 -m 20]:
# the store's cost per task (issue 14 "Benchmark"). Starts a throw-away
# PostgreSQL (tests/pg/pg-temp.sh; made durable for the bench: fsync,
# synchronous_commit and full_page_writes back on, as SQLite's
# synchronous=FULL is) and two `mesatee serve --level soft --worker-start
# zygote` daemons on loopback (lib.sh): "sqlite" (the anchor: the embedded
# default store), "pg1" (--store postgres://..., one node) and "pg2" (two
# nodes on a second database of the same PostgreSQL: node A the KeyStore
# node, --keystore-listen; node B --keystore-join, admitted by `admin release
# allow` of its platform key, its objects directory a link to A's, the
# "shared mount" of docs/cluster.md); each gets a policy pinning its
# measurement and platform key(s) (the client verifies the evidence in its
# TLS handshake), a user `bench` and an echo function. Then bench_cluster
# runs at the servers' nice level (the caller's, normally 0: the clients get
# the same priority as every server), interleaving all three in every round; pg2's latency
# tasks alternate between the nodes, its throughput clients are spread over
# both. Figures vary with the machine's load: quote them with the load
# average the script prints.
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
# pg2: two nodes on their own database
"$PSQL" -q -d "$MT_PG_SOCKET_URL" -c "CREATE DATABASE pg2" >/dev/null
PG2_URL=${MT_PG_URL/\/postgres\?//pg2?}
[ "$PG2_URL" != "$MT_PG_URL" ] || { echo "run.sh: cannot derive the pg2 database URL from $MT_PG_URL" >&2; exit 1; }
setup pg2 --store "$PG2_URL" --keystore-listen 127.0.0.1:0
P2=$MT_WORK; N1=$MESATEE_SERVER
NB=$P2/node-b; mkdir -p "$NB"; ln -s "$MT_DATA/objects" "$NB/objects"
start_b() { # start_b LOG: node B joining node A (pg2); sets BPID
  "$MESATEE_BIN" serve --data-dir "$NB" --listen 127.0.0.1:0 --level soft --worker-start zygote \
    --admin-password-file "$P2/admin.pw" --store "$PG2_URL" \
    --keystore-join "$(cat "$MT_DATA/keystore.url")" --keystore-policy "$P2/policy.json" >"$1" 2>&1 &
  BPID=$!; PIDS+=("$BPID")
}
start_b "$P2/b1.log"; wait "$BPID" 2>/dev/null || true # refused: its key is not allowed yet
BPK=$(sed -n 's/.*TEE level soft: evidence measurement [0-9a-f]*, platform key \([0-9a-f]\{64\}\).*/\1/p' "$P2/b1.log" | head -n1)
[ ${#BPK} = 64 ] || { echo "run.sh: node B printed no platform key: $(tail -n 3 "$P2/b1.log")" >&2; exit 1; }
MESATEE_CA=$MT_DATA/tls/server-cert.pem as admin admin release allow --kind soft_platform_key "$BPK" >/dev/null
start_b "$P2/b2.log"
for _ in $(seq 600); do [ -s "$NB/server.url" ] && break; kill -0 "$BPID" 2>/dev/null || { echo "run.sh: node B exited: $(tail -n 3 "$P2/b2.log")" >&2; exit 1; }; sleep 0.05; done
[ -s "$NB/server.url" ] || { echo "run.sh: node B did not start" >&2; exit 1; }
N2=$(cat "$NB/server.url")
jq --arg k "$BPK" '.soft_platform_keys += [$k]' "$P2/policy.json" >"$P2/both.json"
C=${SPEC/,$N1,$P2\/policy.json,/,$N1|$N2,$P2\/both.json,}
[ "$C" != "$SPEC" ] || { echo "run.sh: cannot build the pg2 spec" >&2; exit 1; }
echo "pg2: node A $N1 (KeyStore node), node B $N2 (joined), one database"
# store commits per task (issue 13/14 "fsync count per task"): the
# /metrics counters mesatee_store_commits_total of every node before and
# after the bench, divided by the tasks finished meanwhile (independent of
# the machine's load). NODES: "NAME DATA_DIR" lines.
NODES="sqlite $ROOT/sqlite/server
pg1 $ROOT/pg1/server
pg2 $P2/server
pg2 $NB"
# mesatee_store_round_trips_total (requests to PostgreSQL waited for: the
# cost that commits do not show) the same way.
# snap: one line per node: NAME sqlite_write sqlite_read pg_write pg_read finished pg_trips
snap() {
  while read -r name dir; do
    curl -s --cacert "$dir/tls/server-cert.pem" "$(cat "$dir/server.url")/metrics" | awk -v n="$name" '
      /^mesatee_store_commits_total\{backend="sqlite",kind="write"\}/ {sw=$2}
      /^mesatee_store_commits_total\{backend="sqlite",kind="read"\}/ {sr=$2}
      /^mesatee_store_commits_total\{backend="postgres",kind="write"\}/ {pw=$2}
      /^mesatee_store_commits_total\{backend="postgres",kind="read"\}/ {pr=$2}
      /^mesatee_tasks\{status="finished"\}/ {f=$2}
      /^mesatee_store_round_trips_total\{backend="postgres"\}/ {rt=$2}
      END {print n, sw+0, sr+0, pw+0, pr+0, f+0, rt+0}'
  done <<<"$NODES"
}
snap >"$ROOT/commits.before"
bench_header "cluster ($*)"
"$BIN" -S "$A" -S "$B" -S "$C" -u bench -w "$ROOT/bench.pw" "$@"
snap >"$ROOT/commits.after"
# per server: commits summed over its nodes, tasks from its first node (one store)
echo "store commits per finished echo task (create, approve, invoke, claim, outcome; every node of the server):"
paste -d' ' "$ROOT/commits.before" "$ROOT/commits.after" | awk '
  { n=$1; if (!(n in seen)) { seen[n]=1; order[++k]=n; tasks[n]=$13-$6 }
    w[n]+=($9-$2)+($11-$4); r[n]+=($10-$3)+($12-$5); rt[n]+=$14-$7 }
  END { for (i=1;i<=k;i++) { n=order[i]; t=tasks[n]
          if (t > 0) printf "  %-6s %5d tasks: %.2f write commits/task, %.2f read-only commits/task, %.1f PostgreSQL round trips/task\n", n, t, w[n]/t, r[n]/t, rt[n]/t
          else printf "  %-6s no task finished\n", n } }'
bench_footer cluster
