#!/usr/bin/env bash
# dbcert_pg.sh: attestation-gated database credentials against a real
# PostgreSQL 15 (issue 14, docs/cluster.md "Database credentials after
# attestation"). One throw-away server whose pg_hba.conf admits the role
# mesatee only with `hostssl ... cert clientcert=verify-full` against a test CA
# that the KeyStore signs with (tests/cluster/dbcert_node, MT_DBCERT_TOOL):
#   - a node with a wrong measurement gets no certificate (exit 3), and with
#     what it holds (its self-signed attested identity), or with nothing, the
#     database refuses it;
#   - the attested node gets a certificate for its own key and connects as
#     mesatee; a certificate issued for another role does not log in as
#     mesatee (CN = role);
#   - garbage role/ttl are refused without a certificate.
# Exit 77 with "SKIP:" when PostgreSQL 15's server is absent.
set -euo pipefail
PGBIN=/usr/lib/postgresql/15/bin
TOOL=${MT_DBCERT_TOOL:?MT_DBCERT_TOOL must point at tests/cluster/dbcert_node}
skip() {
  echo "SKIP: $*" >&2
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  [ -f "$W/pg/log" ] && tail -n 20 "$W/pg/log" >&2
  exit 1
}
[ -x "$PGBIN/initdb" ] || skip "PostgreSQL 15 not installed (apt-get install postgresql-15)"
command -v psql >/dev/null || skip "psql not installed (apt-get install postgresql-client-15)"
ROOT=
if [ "$(id -u)" -eq 0 ]; then
  command -v runuser >/dev/null || skip "running as root without runuser (initdb refuses root)"
  ROOT=1
fi
as_owner() { if [ -n "$ROOT" ]; then runuser -u nobody -- "$@"; else "$@"; fi; }

W=$(mktemp -d /tmp/mt-dbcert.XXXXXX)
chmod 755 "$W"
cleanup() {
  if [ -f "$W/pg/data/postmaster.pid" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$W"
}
trap cleanup EXIT

# the database CA (the KeyStore's) and the server's certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=mesatee test database CA" -keyout "$W/ca.key" -out "$W/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  >/dev/null 2>&1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$W/server.key" -out "$W/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$W/ext"
openssl x509 -req -in "$W/server.csr" -CA "$W/ca.crt" -CAkey "$W/ca.key" -CAcreateserial \
  -days 2 -extfile "$W/ext" -out "$W/server.crt" >/dev/null 2>&1
"$TOOL" ca-check "$W/ca.crt" "$W/ca.key" || fail "the KeyStore cannot load the test CA"

mkdir -p "$W/pg"
chmod 700 "$W/pg"
[ -n "$ROOT" ] && chown nobody "$W/pg"
as_owner "$PGBIN/initdb" -D "$W/pg/data" -U postgres --auth=trust -E UTF8 --no-sync \
  --no-instructions >"$W/pg/initdb.log" 2>&1 || fail "initdb failed"
cp "$W/server.crt" "$W/server.key" "$W/ca.crt" "$W/pg/data/"
chmod 600 "$W/pg/data/server.key"
[ -n "$ROOT" ] && chown nobody "$W/pg/data/server.key" "$W/pg/data/server.crt" "$W/pg/data/ca.crt"
# the same rule as in the Patroni cluster (docs/cluster.md)
cat >"$W/pg/data/pg_hba.conf" <<HBA
local   all      postgres                 trust
hostssl postgres mesatee  127.0.0.1/32    cert clientcert=verify-full
HBA
started=
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 40000))
  cat >"$W/pg/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$W/pg'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
fsync = off
max_connections = 10
shared_buffers = 16MB
CONF
  if as_owner "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" -w -t 30 start >/dev/null 2>&1; then
    started=1
    break
  fi
done
[ -n "$started" ] || fail "pg_ctl start failed"
psql -X -q -v ON_ERROR_STOP=1 "host=$W/pg port=$PORT user=postgres dbname=postgres" \
  -c "CREATE ROLE mesatee LOGIN" -c "CREATE ROLE other LOGIN" >/dev/null || fail "CREATE ROLE"

url() { # $1 cert prefix (empty: none)
  local u="postgresql://mesatee@127.0.0.1:$PORT/postgres?sslmode=verify-full&sslrootcert=$W/ca.crt&connect_timeout=5"
  [ -z "$1" ] || u="$u&sslcert=$1.crt&sslkey=$1.key"
  echo "$u"
}

# 1. wrong measurement: no certificate; what it holds opens nothing
rc=0
"$TOOL" node "$W/ks-wrong" "$W/ca.crt" "$W/ca.key" mesatee 600 wrong "$W/wrong" 2>"$W/wrong.err" || rc=$?
[ $rc -eq 3 ] || { cat "$W/wrong.err" >&2; fail "wrong measurement: exit $rc, expected 3"; }
grep -q "no database certificate" "$W/wrong.err" || fail "refusal without the KeyStore's reason"
[ ! -e "$W/wrong.crt" ] || fail "a refused node got a certificate"
if psql -X -tA "$(url "$W/wrong.self")" -c "SELECT 1" >"$W/wrong.psql" 2>&1; then
  fail "the database accepted the self-signed identity of a node that failed attestation"
fi
grep -Eq "unknown ca|certificate" "$W/wrong.psql" || { cat "$W/wrong.psql" >&2; fail "unexpected refusal"; }
if psql -X -tA "$(url "")" -c "SELECT 1" >/dev/null 2>&1; then
  fail "the database accepted the role without a certificate"
fi
echo "ok - wrong measurement: no certificate, the database refuses the node"

# 2. the attested node
"$TOOL" node "$W/ks-right" "$W/ca.crt" "$W/ca.key" mesatee 600 right "$W/node" >/dev/null ||
  fail "the attested node got no certificate"
[ "$(psql -X -tA "$(url "$W/node")" -c "SELECT current_user")" = mesatee ] ||
  fail "the attested node cannot connect with its certificate"
[ "$(psql -X -tA "$(url "$W/node")" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" = t ] ||
  fail "not TLS"
echo "ok - the attested node connects with the KeyStore's certificate (TLS, verify-full)"

# 3. a certificate for another role does not log in as mesatee
"$TOOL" node "$W/ks-other" "$W/ca.crt" "$W/ca.key" other 600 right "$W/other" >/dev/null ||
  fail "no certificate for role other"
if psql -X -tA "$(url "$W/other")" -c "SELECT 1" >/dev/null 2>&1; then
  fail "a certificate for role other logged in as mesatee"
fi
echo "ok - CN = role: a certificate for another role is refused"

# 4. garbage role / ttl: no certificate
for args in "Bad-Role 600" "mesatee 0" "mesatee 99999999" "mesatee x1" "'' 600"; do
  eval "set -- $args"
  rc=0
  rm -rf "$W/ks-g"
  "$TOOL" node "$W/ks-g" "$W/ca.crt" "$W/ca.key" "$1" "$2" right "$W/g" 2>/dev/null || rc=$?
  [ $rc -eq 2 ] || fail "garbage ($args): exit $rc, expected 2"
  [ ! -e "$W/g.crt" ] || fail "garbage ($args) got a certificate"
done
rc=0
"$TOOL" ca-check "$W/server.crt" "$W/server.key" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "a non-CA certificate was accepted as the database CA"
echo "ok - garbage role, ttl and CA refused"
