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
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/netns.sh
. "$HERE/netns.sh"

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
IP_E1=$SUBNET.11 IP_E2=$SUBNET.12 IP_E3=$SUBNET.13
IP_P1=$SUBNET.21 IP_P2=$SUBNET.22
log "namespaces up, subnet $SUBNET.0/24"

# ---- TLS: a test CA, the servers' certificate ---------------------------------
mkdir -p "$W/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=mesatee test database CA" -keyout "$W/tls/ca.key" -out "$W/tls/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  >/dev/null 2>&1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pg" \
  -keyout "$W/tls/server.key" -out "$W/tls/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:%s,IP:%s\nextendedKeyUsage=serverAuth\n' "$IP_P1" "$IP_P2" >"$W/tls/ext"
openssl x509 -req -in "$W/tls/server.csr" -CA "$W/tls/ca.crt" -CAkey "$W/tls/ca.key" \
  -CAcreateserial -days 2 -extfile "$W/tls/ext" -out "$W/tls/server.crt" >/dev/null 2>&1
chown postgres "$W/tls/server.key" "$W/tls/server.crt"
chmod 600 "$W/tls/server.key"
chmod 644 "$W/tls/ca.crt" "$W/tls/server.crt"

# ---- etcd: three members ---------------------------------------------------------
CLUSTER="e1=http://$IP_E1:2380,e2=http://$IP_E2:2380,e3=http://$IP_E3:2380"
for m in e1 e2 e3; do
  ipv="IP_${m^^}"
  ip=${!ipv}
  mkdir -p "$W/$m"
  cat >"$W/$m/etcd.conf.yml" <<EOF
name: $m
data-dir: $W/$m/data
listen-peer-urls: http://$ip:2380
listen-client-urls: http://$ip:2379
initial-advertise-peer-urls: http://$ip:2380
advertise-client-urls: http://$ip:2379
initial-cluster: $CLUSTER
initial-cluster-state: new
initial-cluster-token: mtc-$$
heartbeat-interval: 100
election-timeout: 1000
enable-grpc-gateway: true
EOF
  nsx_exec "$m" etcd --config-file "$W/$m/etcd.conf.yml" >"$W/$m/etcd.log" 2>&1 &
done
ENDPOINTS="http://$IP_E1:2379,http://$IP_E2:2379,http://$IP_E3:2379"
ok=
for _ in $(seq 300); do
  if nsx_exec c env ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" --dial-timeout=1s \
    --command-timeout=2s endpoint health >/dev/null 2>&1; then
    ok=1
    break
  fi
  sleep 0.1
done
[ -n "$ok" ] || fail "etcd cluster not healthy within 30 s"
log "etcd: 3 members healthy"

# ---- Patroni + PostgreSQL -----------------------------------------------------------
SUPER_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
REPL_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
for m in p1 p2; do
  ipv="IP_${m^^}"
  ip=${!ipv}
  mkdir -p "$W/$m"
  cat >"$W/$m/patroni.yml" <<EOF
scope: mtc
namespace: /mesatee/
name: $m
restapi:
  listen: $ip:8008
  connect_address: $ip:8008
etcd3:
  hosts: $IP_E1:2379,$IP_E2:2379,$IP_E3:2379
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters:
        max_connections: 20
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
        wal_keep_size: 64MB
  initdb:
    - encoding: UTF8
    - auth-local: peer
    - auth-host: scram-sha-256
  pg_hba:
    - local   all         all                        peer
    - hostssl replication replicator $SUBNET.0/24 scram-sha-256
    - hostssl all         postgres   $SUBNET.0/24 scram-sha-256
    - hostssl postgres    mesatee    $SUBNET.0/24 cert clientcert=verify-full
postgresql:
  listen: $ip:5432
  connect_address: $ip:5432
  data_dir: $W/$m/data
  bin_dir: $PGBIN
  pgpass: $W/$m/pgpass
  authentication:
    superuser:
      username: postgres
      password: $SUPER_PW
      sslmode: verify-full
      sslrootcert: $W/tls/ca.crt
    replication:
      username: replicator
      password: $REPL_PW
      sslmode: verify-full
      sslrootcert: $W/tls/ca.crt
  parameters:
    unix_socket_directories: $W/$m
    ssl: "on"
    ssl_cert_file: $W/tls/server.crt
    ssl_key_file: $W/tls/server.key
    ssl_ca_file: $W/tls/ca.crt
    password_encryption: scram-sha-256
    shared_buffers: 16MB
    fsync: "off"
EOF
  chown -R postgres "$W/$m"
  chmod 700 "$W/$m"
  nsx_exec "$m" runuser -u postgres -- patroni "$W/$m/patroni.yml" >"$W/$m/patroni.log" 2>&1 &
done

# role of a member from its REST API: 200 on /primary, /sync (synchronous standby)
api() { nsx_exec c curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1:8008/$2" || true; }
PRIMARY=
for _ in $(seq 600); do
  for m in p1 p2; do
    ipv="IP_${m^^}"
    [ "$(api "${!ipv}" primary)" = 200 ] && PRIMARY=$m
  done
  [ -n "$PRIMARY" ] && break
  sleep 0.1
done
[ -n "$PRIMARY" ] || fail "Patroni elected no leader within 60 s"
if [ "$PRIMARY" = p1 ]; then STANDBY=p2; else STANDBY=p1; fi
log "Patroni leader: $PRIMARY"
ipv="IP_${STANDBY^^}"
ok=
for _ in $(seq 900); do
  [ "$(api "${!ipv}" sync)" = 200 ] && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || fail "$STANDBY did not become the synchronous standby within 90 s"
log "$STANDBY streams as the synchronous standby"

# ---- the client's credentials ----------------------------------------------------------
mkdir -p "$W/c"
chmod 700 "$W/c"
ipv="IP_${PRIMARY^^}"
SUPER_URL="postgresql://postgres@${!ipv}:5432/postgres?sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=3"
PGPASSWORD=$SUPER_PW nsx_exec c psql -X -q -v ON_ERROR_STOP=1 "$SUPER_URL" \
  -c "CREATE ROLE mesatee LOGIN" \
  -c "CREATE TABLE acked (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())" \
  -c "GRANT SELECT, INSERT ON acked TO mesatee" >/dev/null ||
  fail "cannot create the role and the table as superuser"

client_cert_openssl() { # $1: output prefix: a certificate CN=mesatee from the test CA
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mesatee" \
    -keyout "$1.key" -out "$1.csr" >/dev/null 2>&1
  printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$W/tls/ca.crt" -CAkey "$W/tls/ca.key" -CAcreateserial \
    -days 1 -extfile "$1.ext" -out "$1.crt" >/dev/null 2>&1
  chmod 600 "$1.key"
}
url_for() { # $1: cert prefix
  echo "postgresql://mesatee@$IP_P1:5432,$IP_P2:5432/postgres?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$W/tls/ca.crt&sslcert=$1.crt&sslkey=$1.key&connect_timeout=2"
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
  client_cert_openssl "$W/c/node"
  log "MT_DBCERT_TOOL not set: the client certificate comes from the test CA (openssl)"
fi
URL=$(url_for "$W/c/node")
# without a certificate the database refuses the role
if nsx_exec c psql -X -q -tA "postgresql://mesatee@$IP_P1:5432,$IP_P2:5432/postgres?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=2" \
  -c "SELECT 1" >/dev/null 2>&1; then
  fail "the database accepted the role without a client certificate"
fi
[ "$(nsx_exec c psql -X -q -tA "$URL" -c "SELECT current_user")" = mesatee ] ||
  fail "the client cannot connect with its certificate"
log "client connected: certificate authentication, TLS verify-full, multi-host URL"

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
for _ in $(seq 100); do
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
echo "run_s=$(elapsed "$T_START" "$(now)")"
echo "ok - failover"
