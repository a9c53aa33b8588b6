#!/usr/bin/env bash
# failover.sh: PostgreSQL failover under Patroni on a 3-member etcd cluster,
# every member in its own network namespace (issue 14, docs/cluster.md
# "Failure tests"). Runs as root; exit 77 (ctest's skip) with a "SKIP:" line
# when namespaces, etcd, Patroni or PostgreSQL 15 are unavailable.
#
#   namespaces (veth pairs to a bridge in a hub namespace, SUBNET.0/24, no
#   uplink: all traffic stays inside this machine):
#     e1 e2 e3  etcd members           SUBNET.11 .12 .13
#     p1 p2     Patroni + PostgreSQL   SUBNET.21 .22
#     c         the client (psql)      SUBNET.31
#
# What it checks:
#   1. etcd forms a cluster; Patroni elects a leader; the other member streams
#      as the synchronous standby.
#   2. The client (libpq through mesatee's mt_db layer when MT_DB_WRITER
#      points at tests/cluster/db_writer, else psql; multi-host URL with target_session_attrs=read-write,
#      TLS verify-full, client certificate) writes rows continuously; after
#      some are acknowledged, the primary's node dies (kill -9 of Patroni and
#      every PostgreSQL process in its namespace).
#   3. Patroni promotes the standby; the same client URL reaches it; writing
#      resumes. Every acknowledged row is there (synchronous replication).
#   4. Failover time = primary killed -> first write acknowledged again,
#      printed as "failover_s=N.NN".
# Client certificate: with MT_DBCERT_TOOL (tests/cluster/dbcert_node, built by
# CMake) the client's certificate comes from the KeyStore after attestation
# (docs/cluster.md "Database credentials after attestation"), and a node with
# a wrong measurement is shown to get none and to be refused by the database;
# without it a test CA made here signs it (openssl).
# MT_KEEP=1 keeps the work directory (logs) after the run.
# MT_PARTITION_LOCK=1 (opt-in, ~25 s more; not in CI): before the failover,
# two idle client sessions hold advisory locks, one with the server's TCP
# keepalives (ha.sh: idle 10 s, 3 probes 5 s apart, user timeout 25 s), one
# with them set back to the kernel's defaults; the client's link goes down
# and the time until the server released the first lock is printed as
# "partition_lock_s=N.NN" (the second must still be held then); the link
# comes back up before the failover (docs/cluster.md "Partitions and TCP
# keepalives").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/netns.sh
. "$HERE/netns.sh"
# shellcheck source=tests/cluster/ha.sh
. "$HERE/ha.sh"

skip() {
  echo "SKIP: $*" >&2
  exit 77
}
T_START=$(date +%s.%N)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
log() { echo "[$(elapsed "$T_START" "$(now)")s] $*"; }

# ---- prerequisites ----------------------------------------------------------
PGBIN=/usr/lib/postgresql/15/bin
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, PostgreSQL runs as user postgres)"
command -v etcd >/dev/null || skip "etcd not installed (apt-get install etcd-server)"
command -v patroni >/dev/null || skip "Patroni not installed (apt-get install patroni)"
[ -x "$PGBIN/postgres" ] || skip "PostgreSQL 15 not installed (apt-get install postgresql-15)"
command -v psql >/dev/null || skip "psql not installed (apt-get install postgresql-client-15)"
command -v curl >/dev/null || skip "curl not installed"
id postgres >/dev/null 2>&1 || skip "no user postgres (installed with postgresql-15)"
command -v runuser >/dev/null || skip "runuser not available"
nsx_usable || skip "cannot create network namespaces and veth pairs here (root with CAP_NET_ADMIN/CAP_SYS_ADMIN needed)"

W=$(mktemp -d /tmp/mt-cluster.XXXXXX)
chmod 755 "$W"
WRITER=
cleanup() {
  local rc=$?
  # the psql writer loop runs in this namespace: stop it before the others
  [ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null || true
  nsx_teardown
  if [ -n "${MT_KEEP:-}" ] || [ $rc -ne 0 ]; then
    if [ $rc -ne 0 ]; then
      for f in "$W"/p1/patroni.log "$W"/p2/patroni.log "$W"/e1/etcd.log; do
        [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 25 "$f" >&2; }
      done
    fi
    [ -n "${MT_KEEP:-}" ] && echo "kept $W" >&2
  fi
  [ -n "${MT_KEEP:-}" ] || rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- network -----------------------------------------------------------------
# a /24 inside 10.0.0.0/8 chosen per run; namespaces names carry the PID
SUBNET="10.$((100 + RANDOM % 100)).$((RANDOM % 250))"
nsx_init "mtc$$" "$SUBNET"
nsx_add e1 11
nsx_add e2 12
nsx_add e3 13
nsx_add p1 21
nsx_add p2 22
nsx_add c 31
# shellcheck disable=SC2034 # read by ha.sh (ha_ip)
HA_IP_e1=$SUBNET.11 HA_IP_e2=$SUBNET.12 HA_IP_e3=$SUBNET.13
HA_IP_p1=$SUBNET.21 HA_IP_p2=$SUBNET.22
IP_P1=$HA_IP_p1 IP_P2=$HA_IP_p2
log "namespaces up, subnet $SUBNET.0/24"

# ---- TLS, etcd x3, Patroni x2 (tests/cluster/ha.sh) -----------------------------------
ha_tls "$W/tls" "$IP_P1" "$IP_P2" || fail "cannot make the test CA"
ha_etcd_start "$W" e1 e2 e3 || fail "etcd"
log "etcd: 3 members healthy"
ha_patroni_start "$W" "$W/tls" "$SUBNET" "$PGBIN" p1 p2
ha_wait_roles p1 p2 || fail "Patroni"
PRIMARY=$HA_PRIMARY STANDBY=$HA_STANDBY
log "Patroni leader: $PRIMARY"
log "$STANDBY streams as the synchronous standby"
api() { ha_api "$@"; }

# ---- the client's credentials ----------------------------------------------------------
mkdir -p "$W/c"
chmod 700 "$W/c"
ipv="IP_${PRIMARY^^}"
SUPER_URL="postgresql://postgres@${!ipv}:5432/postgres?sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=3"
PGPASSWORD=$HA_SUPER_PW nsx_exec c psql -X -q -v ON_ERROR_STOP=1 "$SUPER_URL" \
  -c "CREATE ROLE mesatee LOGIN" -c "CREATE DATABASE mesatee" >/dev/null ||
  fail "cannot create the role and the database as superuser"
PGPASSWORD=$HA_SUPER_PW nsx_exec c psql -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@${!ipv}:5432/mesatee?sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=3" \
  -c "CREATE TABLE acked (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())" \
  -c "GRANT SELECT, INSERT ON acked TO mesatee" >/dev/null ||
  fail "cannot create the role and the table as superuser"

url_for() { # $1: cert prefix
  echo "postgresql://mesatee@$IP_P1:5432,$IP_P2:5432/mesatee?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$W/tls/ca.crt&sslcert=$1.crt&sslkey=$1.key&connect_timeout=2"
}
if [ -n "${MT_DBCERT_TOOL:-}" ]; then
  # the KeyStore attests the node and issues its certificate (docs/cluster.md)
  "$MT_DBCERT_TOOL" ca-check "$W/tls/ca.crt" "$W/tls/ca.key" >/dev/null ||
    fail "dbcert_node cannot load the test CA"
  rc=0
  "$MT_DBCERT_TOOL" node "$W/ks-wrong" "$W/tls/ca.crt" "$W/tls/ca.key" mesatee 600 wrong \
    "$W/c/wrong" >"$W/c/wrong.out" 2>&1 || rc=$?
  [ $rc -eq 3 ] || { cat "$W/c/wrong.out" >&2; fail "a node with a wrong measurement: exit $rc, expected 3 (refused)"; }
  [ ! -e "$W/c/wrong.crt" ] || fail "a refused node got a certificate file"
  # it still holds its own (self-signed, attested) identity: the database refuses it
  [ -s "$W/c/wrong.self.crt" ] || fail "dbcert_node wrote no identity for the refused node"
  if nsx_exec c psql -X -q -tA "$(url_for "$W/c/wrong.self")" -c "SELECT 1" >"$W/c/wrong.psql" 2>&1; then
    fail "the database accepted a node that failed attestation"
  fi
  log "a node with a wrong measurement: no certificate, the database refuses it ($(head -c 120 "$W/c/wrong.psql" | tr '\n' ' '))"
  "$MT_DBCERT_TOOL" node "$W/ks-right" "$W/tls/ca.crt" "$W/tls/ca.key" mesatee 600 right \
    "$W/c/node" >"$W/c/node.out" 2>&1 || { cat "$W/c/node.out" >&2; fail "the attested node got no certificate"; }
  log "the attested node got a certificate from the KeyStore: $(openssl x509 -in "$W/c/node.crt" -noout -subject -enddate | tr '\n' ' ')"
else
  ha_client_cert "$W/tls" "$W/c/node" mesatee || fail "client certificate"
  log "MT_DBCERT_TOOL not set: the client certificate comes from the test CA (openssl)"
fi
URL=$(url_for "$W/c/node")
# without a certificate the database refuses the role
if nsx_exec c psql -X -q -tA "postgresql://mesatee@$IP_P1:5432,$IP_P2:5432/mesatee?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=2" \
  -c "SELECT 1" >/dev/null 2>&1; then
  fail "the database accepted the role without a client certificate"
fi
[ "$(nsx_exec c psql -X -q -tA "$URL" -c "SELECT current_user")" = mesatee ] ||
  fail "the client cannot connect with its certificate"
log "client connected: certificate authentication, TLS verify-full, multi-host URL"
# the server ends a vanished client's session (and its advisory locks) within ~25 s
# (ha.sh's Patroni parameters; docs/cluster.md "Partitions and TCP keepalives")
ka=$(nsx_exec c psql -X -q -tA "$URL" -c "SELECT current_setting('tcp_keepalives_idle') || ',' ||
  current_setting('tcp_keepalives_interval') || ',' || current_setting('tcp_keepalives_count') ||
  ',' || current_setting('tcp_user_timeout')")
[ "$ka" = "10,5,3,25000" ] || fail "the server's TCP keepalives on a client session: '$ka' (want 10,5,3,25000)"
log "server TCP keepalives on the client's session: idle 10 s, 3 probes 5 s apart, user timeout 25 s"

PARTITION_S=
if [ "${MT_PARTITION_LOCK:-}" = 1 ]; then
  q() { nsx_exec "$PRIMARY" runuser -u postgres -- psql -X -q -tA -h "$W/$PRIMARY" -d mesatee -c "$1"; }
  held() { q "SELECT coalesce(string_agg(objid::text, ',' ORDER BY objid), '') FROM pg_locks WHERE locktype = 'advisory' AND objid IN (4242, 4243) AND granted"; }
  mkfifo "$W/c/f1" "$W/c/f2"
  nsx_exec c psql -X -q -tA "$URL" <"$W/c/f1" >"$W/c/l1.out" 2>&1 &
  nsx_exec c psql -X -q -tA "$URL" <"$W/c/f2" >"$W/c/l2.out" 2>&1 &
  exec 7>"$W/c/f1" 8>"$W/c/f2" # kept open: the sessions stay idle, not ended
  echo "SELECT pg_advisory_lock(4242);" >&7
  echo "SET tcp_keepalives_idle = 0; SET tcp_keepalives_interval = 0; SET tcp_keepalives_count = 0;
        SET tcp_user_timeout = 0; SELECT pg_advisory_lock(4243);" >&8
  for _ in $(seq 1 300); do [ "$(held)" = 4242,4243 ] && break; sleep 0.2; done
  [ "$(held)" = 4242,4243 ] || fail "partition: the client's sessions do not hold their locks ($(held))"
  t0=$(now)
  nsx_link c down
  for _ in $(seq 1 600); do [ "$(held)" = 4243 ] && break; sleep 0.5; done # up to 5 min
  h=$(held)
  PARTITION_S=$(elapsed "$t0" "$(now)")
  [ "$h" = 4243 ] || fail "partition: locks held ${PARTITION_S}s after the client's link went down: '$h' (want 4243 only)"
  log "client cut off: its session with keepalives ended after ${PARTITION_S}s (lock released); the one with the kernel's defaults still holds its lock"
  nsx_link c up
  exec 7>&- 8>&-
fi

# ---- write, kill the primary, write again ----------------------------------------------
ACK=$W/c/acked
: >"$ACK"
# writer (psql; db_writer does the same on mt_db): ids 1, 2, ...; an id is recorded in $ACK only after its commit was
# acknowledged; a failed attempt is retried with the same id (ON CONFLICT: an
# attempt whose commit landed but whose answer was lost is not doubled)
writer() {
  local id=1 t
  while [ ! -e "$W/c/stop" ]; do
    if nsx_exec c psql -X -q -tA "$URL" -c \
      "INSERT INTO acked (id) VALUES ($id) ON CONFLICT (id) DO NOTHING" >/dev/null 2>&1; then
      t=$(now)
      echo "$id $t" >>"$ACK"
      id=$((id + 1))
    else
      sleep 0.05
    fi
  done
}
if [ -n "${MT_DB_WRITER:-}" ]; then
  # mesatee's database layer (src/store, tests/cluster/db_writer.c): the same
  # acknowledgement protocol, retrying retryable errors, reconnecting
  nsx_exec c "$MT_DB_WRITER" "$URL" "$ACK" "$W/c/stop" 2>"$W/c/writer.err" &
  WRITER_KIND="mt_db (db_writer)"
else
  writer &
  WRITER_KIND=psql
fi
WRITER=$!
log "writer: $WRITER_KIND"
for _ in $(seq 600); do
  [ "$(wc -l <"$ACK")" -ge 20 ] && break
  kill -0 $WRITER 2>/dev/null || fail "writer died"
  sleep 0.1
done
[ "$(wc -l <"$ACK")" -ge 20 ] || fail "fewer than 20 writes acknowledged in 60 s"
before=$(wc -l <"$ACK")
T_KILL=$(now)
nsx_kill "$PRIMARY"
# an acknowledgement stamped after the kill may still be of a commit the old
# primary made before it: count only those stamped after every process of
# the namespace is gone
for _ in $(seq 600); do
  [ -z "$(ip netns pids "$NSX_PREFIX-$PRIMARY" 2>/dev/null)" ] && break
  sleep 0.05
done
[ -z "$(ip netns pids "$NSX_PREFIX-$PRIMARY" 2>/dev/null)" ] || fail "processes of $PRIMARY survive kill -9"
T_DEAD=$(now)
log "kill -9: every process of $PRIMARY (Patroni and PostgreSQL) gone after $(elapsed "$T_KILL" "$T_DEAD")s; $before writes acknowledged before"
FIRST=
for _ in $(seq 900); do
  FIRST=$(awk -v t="$T_DEAD" '$2 > t { print $2; exit }' "$ACK")
  [ -n "$FIRST" ] && break
  sleep 0.1
done
[ -n "$FIRST" ] || {
  touch "$W/c/stop"
  wait $WRITER || true
  [ -f "$W/c/writer.err" ] && tail -n 5 "$W/c/writer.err" >&2
  fail "no write accepted within 90 s of the kill"
}
FAILOVER=$(elapsed "$T_KILL" "$FIRST")
ipv="IP_${STANDBY^^}"
# polled (30 s or more): one look could meet Patroni's REST API slow to answer
# (curl --max-time 2) on a loaded machine, or not yet showing the new role
for _ in $(seq 60); do [ "$(api "${!ipv}" primary)" = 200 ] && break; sleep 0.5; done
[ "$(api "${!ipv}" primary)" = 200 ] || fail "$STANDBY is not the primary after the failover"
log "$STANDBY promoted; first write acknowledged ${FAILOVER}s after the kill"
# a few more writes on the new primary, then stop the writer
n=$(wc -l <"$ACK")
for _ in $(seq 300); do
  [ "$(wc -l <"$ACK")" -ge $((n + 5)) ] && break
  sleep 0.1
done
touch "$W/c/stop"
wait $WRITER || fail "the writer failed: $(tail -n 3 "$W/c/writer.err" 2>/dev/null)"
[ -f "$W/c/writer.err" ] && log "writer errors during the failover: $(wc -l <"$W/c/writer.err") lines, e.g. $(head -n 1 "$W/c/writer.err")"
total=$(wc -l <"$ACK")
# every acknowledged id is in the table, and nothing else is
got=$(nsx_exec c psql -X -q -tA "$URL" -c "SELECT count(*) FROM acked")
missing=$(nsx_exec c psql -X -q -tA "$URL" -c \
  "SELECT count(*) FROM unnest('{$(awk '{print $1}' "$ACK" | paste -sd,)}'::bigint[]) a(id) WHERE NOT EXISTS (SELECT 1 FROM acked WHERE acked.id = a.id)")
[ "$missing" = 0 ] || fail "$missing acknowledged rows lost in the failover"
# and nothing doubled or unacknowledged (an attempt whose answer was lost is
# retried with the same id until acknowledged)
[ "$got" -eq "$total" ] ||
  fail "table holds $got rows, $total acknowledged"
log "no acknowledged row lost: $total acknowledged, $got in the table"
echo "failover_s=$FAILOVER"
[ -z "$PARTITION_S" ] || echo "partition_lock_s=$PARTITION_S"
echo "run_s=$(elapsed "$T_START" "$(now)")"
echo "ok - failover"
