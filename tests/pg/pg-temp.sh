#!/usr/bin/env bash
# pg-temp.sh: a throw-away PostgreSQL cluster for tests (docs/cluster.md).
#
#   pg-temp.sh start        initdb + pg_ctl start in a new temp dir; prints
#                           shell assignments to eval:
#                             MT_PG_DIR   the cluster's directory (give it to stop)
#                             MT_PG_URL   postgresql://...@127.0.0.1:PORT/postgres?sslmode=require
#                                         (TCP accepts TLS only: hostssl in pg_hba.conf)
#                             MT_PG_SOCKET_URL  the same database over the unix socket
#                             MT_PG_MULTI_URL   two hosts, the first dead, with
#                                         target_session_attrs=read-write (failover)
#                             MT_PG_PORT, MT_PG_RESTART (a command that restarts it)
#   pg-temp.sh restart DIR  pg_ctl restart (fast)
#   pg-temp.sh stop DIR     stops it (immediate) and removes DIR
#   pg-temp.sh halt DIR     stops the server (fast: connections are cut, what was
#                           committed stays; synchronous_commit is off here), keeps DIR
#   pg-temp.sh resume DIR   starts a halted server again (same port); waits
#   pg-temp.sh run CMD...   start, run CMD with the variables exported, stop;
#                           CMD's exit status
#   pg-temp.sh sweep        stop the clusters whose owner is gone
# MT_PG_OWNER=PID (start): the cluster belongs to process PID; every start
# first stops the clusters whose owner process has exited (killed tests).
# Exit status 77 (ctest's skip) with a "SKIP:" line when PostgreSQL's server
# binaries are absent (install postgresql-15; scripts/install-deps does).
#
# initdb refuses to run as root: as root the cluster belongs to "nobody"
# (runuser -u nobody), its directory is chowned to it; the tests, as root,
# connect over TCP/TLS or the socket. Authentication is "trust" (a private
# cluster on loopback and a 0700 directory, for tests only), fsync is off.
set -euo pipefail

PGBIN=${MT_PG_BIN:-}
if [ -z "$PGBIN" ]; then
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then PGBIN=$d; break; fi
  done
fi

skip() {
  echo "SKIP: $*" >&2
  exit 77
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

start() {
  [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] ||
    skip "PostgreSQL server not installed (apt-get install postgresql-15)"
  if [ "$(id -u)" -eq 0 ] && ! command -v runuser >/dev/null; then
    skip "running as root without runuser (initdb refuses root)"
  fi
  sweep
  local dir
  dir=$(mktemp -d /tmp/mt-pg.XXXXXX)
  chmod 700 "$dir"
  # MT_PG_OWNER: the PID of the test that owns the cluster; a later start
  # stops clusters whose owner is gone (a test killed with SIGKILL)
  [ -z "${MT_PG_OWNER:-}" ] || echo "$MT_PG_OWNER" >"$dir/owner"
  [ "$(id -u)" -eq 0 ] && chown nobody "$dir"
  as_owner "$PGBIN/initdb" -D "$dir/data" -U mesatee --auth=trust -E UTF8 --no-sync \
    --no-instructions >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    echo "pg-temp: initdb failed" >&2
    exit 1
  }
  # TLS: a throw-away self-signed P-256 certificate (milliseconds)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -days 2 -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >/dev/null 2>&1
  chmod 600 "$dir/data/server.key"
  [ "$(id -u)" -eq 0 ] && chown nobody "$dir/data/server.key" "$dir/data/server.crt"
  cat >"$dir/data/pg_hba.conf" <<HBA
local   all all              trust
hostssl all all 127.0.0.1/32 trust
HBA
  local port tries=0
  while :; do
    port=$((20000 + RANDOM % 40000))
    cat >"$dir/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
shared_buffers = 16MB
CONF
    if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start >/dev/null 2>&1; then
      break
    fi
    tries=$((tries + 1))
    if [ $tries -ge 5 ]; then
      cat "$dir/log" >&2 || true
      rm -rf "$dir"
      echo "pg-temp: pg_ctl start failed" >&2
      exit 1
    fi
  done
  local self
  self=$(readlink -f "$0")
  echo "MT_PG_DIR='$dir'"
  echo "MT_PG_PORT=$port"
  echo "MT_PG_URL='postgresql://mesatee@127.0.0.1:$port/postgres?sslmode=require'"
  echo "MT_PG_SOCKET_URL='postgresql://mesatee@/postgres?host=$dir&port=$port'"
  echo "MT_PG_MULTI_URL='postgresql://mesatee@127.0.0.1:1,127.0.0.1:$port/postgres?sslmode=require&target_session_attrs=read-write&connect_timeout=5'"
  echo "MT_PG_RESTART='$self restart $dir'"
}

# sweep: stops and removes the clusters whose recorded owner process is gone
sweep() {
  local d pid
  for d in /tmp/mt-pg.*; do
    [ -f "$d/owner" ] || continue
    pid=$(cat "$d/owner" 2>/dev/null) || continue
    case "$pid" in '' | *[!0-9]*) continue ;; esac
    kill -0 "$pid" 2>/dev/null && continue
    stop "$d" >/dev/null 2>&1 || true
  done
}

stop() {
  local dir=$1
  case "$dir" in /tmp/mt-pg.*) ;; *) echo "pg-temp: not a pg-temp dir: $dir" >&2; exit 2 ;; esac
  [ -d "$dir/data" ] && as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:?dir}" ;;
restart)
  case "${2:?dir}" in /tmp/mt-pg.*) ;; *) exit 2 ;; esac
  as_owner "$PGBIN/pg_ctl" -D "$2/data" -l "$2/log" -m fast -w -t 30 restart >/dev/null
  ;;
halt)
  case "${2:?dir}" in /tmp/mt-pg.*) ;; *) exit 2 ;; esac
  as_owner "$PGBIN/pg_ctl" -D "$2/data" -m fast -w -t 30 stop >/dev/null
  ;;
resume)
  case "${2:?dir}" in /tmp/mt-pg.*) ;; *) exit 2 ;; esac
  as_owner "$PGBIN/pg_ctl" -D "$2/data" -l "$2/log" -w -t 60 start >/dev/null
  ;;
sweep) sweep ;;
run)
  shift
  vars=$(MT_PG_OWNER=$$ start) || exit $?
  eval "$vars"
  export MT_PG_DIR MT_PG_PORT MT_PG_URL MT_PG_SOCKET_URL MT_PG_MULTI_URL MT_PG_RESTART
  trap 'stop "$MT_PG_DIR"' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  set +e
  "$@"
  exit $?
  ;;
*)
  echo "usage: pg-temp.sh start | stop DIR | restart DIR | halt DIR | resume DIR | run CMD..." >&2
  exit 2
  ;;
esac
