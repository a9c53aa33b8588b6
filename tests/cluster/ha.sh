# shellcheck shell=bash
# ha.sh: the HA database of the cluster tests (sourced after netns.sh; bash):
# a test CA and the servers' certificate, 3 etcd members, 2 PostgreSQL 15
# under Patroni (synchronous mode), the exact configuration documented in
# docs/cluster.md. Used by tests/cluster/failure.sh.
#
#   ha_tls DIR IP...          DIR/ca.{crt,key}, DIR/server.{crt,key} (SANs: IPs)
#   ha_client_cert DIR PREFIX CN
#                             PREFIX.{crt,key}: a client certificate from the test CA
#   ha_etcd_start W NS...     one etcd member per namespace (3), waits until
#                             healthy (30 s) from namespace $HA_CLIENT_NS;
#                             sets HA_ETCD_HOSTS
#   ha_patroni_start W TLS SUBNET PGBIN NS...
#                             one Patroni + PostgreSQL per namespace; sets
#                             HA_SUPER_PW
#   ha_api IP PATH            HTTP status of Patroni's REST API (primary, sync)
#   ha_wait_roles NS...       waits for a leader (60 s) and the synchronous
#                             standby (90 s): sets HA_PRIMARY, HA_STANDBY
# Member addresses come from the caller: HA_IP_<NS> (e.g. HA_IP_e1).
# Functions return non-zero with a message on stderr; the caller fails.

HA_CLIENT_NS=c
HA_ETCD_HOSTS=
HA_SUPER_PW=
HA_PRIMARY=
HA_STANDBY=

ha_ip() { local v="HA_IP_$1"; printf '%s' "${!v}"; }

ha_tls() {
  local d=$1 ip san=""
  shift
  mkdir -p "$d"
  for ip in "$@"; do san="$san${san:+,}IP:$ip"; done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mesatee test database CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1 || return 1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pg" \
    -keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || return 1
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -days 2 -extfile "$d/ext" -out "$d/server.crt" >/dev/null 2>&1 || return 1
  chown postgres "$d/server.key" "$d/server.crt"
  chmod 600 "$d/server.key"
  chmod 644 "$d/ca.crt" "$d/server.crt"
}

ha_client_cert() {
  local d=$1 p=$2 cn=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$p.key" -out "$p.csr" >/dev/null 2>&1 || return 1
  printf 'extendedKeyUsage=clientAuth\n' >"$p.ext"
  openssl x509 -req -in "$p.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 1 -extfile "$p.ext" -out "$p.crt" >/dev/null 2>&1 || return 1
  chmod 600 "$p.key"
}

ha_etcd_start() {
  local w=$1 m ip cluster="" endpoints=""
  shift
  for m in "$@"; do
    cluster="$cluster${cluster:+,}$m=http://$(ha_ip "$m"):2380"
    endpoints="$endpoints${endpoints:+,}http://$(ha_ip "$m"):2379"
    HA_ETCD_HOSTS="$HA_ETCD_HOSTS${HA_ETCD_HOSTS:+,}$(ha_ip "$m"):2379"
  done
  for m in "$@"; do
    ip=$(ha_ip "$m")
    mkdir -p "$w/$m"
    cat >"$w/$m/etcd.conf.yml" <<EOF
name: $m
data-dir: $w/$m/data
listen-peer-urls: http://$ip:2380
listen-client-urls: http://$ip:2379
initial-advertise-peer-urls: http://$ip:2380
advertise-client-urls: http://$ip:2379
initial-cluster: $cluster
initial-cluster-state: new
initial-cluster-token: mtc-$$
heartbeat-interval: 100
election-timeout: 1000
enable-grpc-gateway: true
EOF
    nsx_exec "$m" etcd --config-file "$w/$m/etcd.conf.yml" >"$w/$m/etcd.log" 2>&1 &
    disown "$!"
  done
  for _ in $(seq 300); do
    nsx_exec "$HA_CLIENT_NS" env ETCDCTL_API=3 etcdctl --endpoints="$endpoints" \
      --dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "etcd cluster not healthy within 30 s" >&2
  return 1
}

# pg_hba: replication and the superuser by password over TLS; the role
# mesatee (database mesatee) by client certificate only (verify-full).
ha_patroni_start() {
  local w=$1 tls=$2 subnet=$3 pgbin=$4 m ip repl_pw
  shift 4
  HA_SUPER_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  repl_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  for m in "$@"; do
    ip=$(ha_ip "$m")
    mkdir -p "$w/$m"
    cat >"$w/$m/patroni.yml" <<EOF
scope: mtc
namespace: /mesatee/
name: $m
restapi:
  listen: $ip:8008
  connect_address: $ip:8008
etcd3:
  hosts: $HA_ETCD_HOSTS
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
        max_connections: 80
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
        wal_keep_size: 64MB
        tcp_keepalives_idle: 10
        tcp_keepalives_interval: 5
        tcp_keepalives_count: 3
        tcp_user_timeout: 25000
  initdb:
    - encoding: UTF8
    - auth-local: peer
    - auth-host: scram-sha-256
  pg_hba:
    - local   all         all                        peer
    - hostssl replication replicator $subnet.0/24 scram-sha-256
    - hostssl all         postgres   $subnet.0/24 scram-sha-256
    - hostssl mesatee     mesatee    $subnet.0/24 cert clientcert=verify-full
postgresql:
  listen: $ip:5432
  connect_address: $ip:5432
  data_dir: $w/$m/data
  bin_dir: $pgbin
  pgpass: $w/$m/pgpass
  authentication:
    superuser:
      username: postgres
      password: $HA_SUPER_PW
      sslmode: verify-full
      sslrootcert: $tls/ca.crt
    replication:
      username: replicator
      password: $repl_pw
      sslmode: verify-full
      sslrootcert: $tls/ca.crt
  parameters:
    unix_socket_directories: $w/$m
    ssl: "on"
    ssl_cert_file: $tls/server.crt
    ssl_key_file: $tls/server.key
    ssl_ca_file: $tls/ca.crt
    password_encryption: scram-sha-256
    shared_buffers: 16MB
    fsync: "off"
EOF
    chown -R postgres "$w/$m"
    chmod 700 "$w/$m"
    nsx_exec "$m" runuser -u postgres -- patroni "$w/$m/patroni.yml" >"$w/$m/patroni.log" 2>&1 &
    disown "$!"
  done
}

ha_api() {
  nsx_exec "$HA_CLIENT_NS" curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    "http://$1:8008/$2" || true
}

ha_wait_roles() {
  local m
  HA_PRIMARY=
  for _ in $(seq 600); do
    for m in "$@"; do
      [ "$(ha_api "$(ha_ip "$m")" primary)" = 200 ] && HA_PRIMARY=$m
    done
    [ -n "$HA_PRIMARY" ] && break
    sleep 0.1
  done
  [ -n "$HA_PRIMARY" ] || { echo "Patroni elected no leader within 60 s" >&2; return 1; }
  for m in "$@"; do [ "$m" = "$HA_PRIMARY" ] || HA_STANDBY=$m; done
  for _ in $(seq 900); do
    [ "$(ha_api "$(ha_ip "$HA_STANDBY")" sync)" = 200 ] && return 0
    sleep 0.1
  done
  echo "$HA_STANDBY did not become the synchronous standby within 90 s" >&2
  return 1
}
