#!/usr/bin/env bash
# A joined node renews its database client certificate (issue 14,
# docs/cluster.md "Database credentials in the join answer"): PostgreSQL
# admits `mesatee` over TCP only with a certificate from the KeyStore node's
# CA (`cert clientcert=verify-full`, as it_cluster_nodes step 9); the
# KeyStore node A issues them with a short lifetime (--keystore-db-cert-ttl
# 24); node B joins, renews before expiry for the same key (db-client.key
# unchanged, db-client.crt replaced), and after the FIRST certificate has
# expired (PostgreSQL refuses it: checked) B's new connections (its old ones
# terminated by the test) use the renewed one; /metrics shows the expiry and
# the renewals; with A gone a renewal fails, is logged and counted and is
# retried. The CA given once with --keystore-db-ca is sealed in
# keystore.sealed: A restarts without the file and B joins again with a
# certificate from it; --keystore-db-ca-create makes a CA inside the
# KeyStore, exports only its certificate (db-ca.crt) and keeps it across a
# restart. keystore.url and `keystore status` name the join URL
# (--keystore-advertise or the listen address). Bad flag values are refused
# with the flag's name.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v psql >/dev/null || { echo "SKIP: psql not installed"; exit 77; }
PGT=$(dirname "$0")/../pg/pg-temp.sh
env_out=$(bash "$PGT" start) || { rc=$?; [ "$rc" = 77 ] && exit 77; fail "pg-temp.sh start: exit $rc"; }
eval "$env_out"
B_PID=
B_DATA=$MT_WORK/node-b
trap '[ -z "$B_PID" ] || { kill -TERM "$B_PID" 2>/dev/null; wait "$B_PID" 2>/dev/null; }; [ -z "${MT_PID:-}" ] || { kill -TERM "$MT_PID" 2>/dev/null; wait "$MT_PID" 2>/dev/null; }; bash "$PGT" stop "$MT_PG_DIR" >/dev/null 2>&1 || true; mt_cleanup' EXIT
TTL=24

# 1. bad flag values: refused by name before anything serves
E=$MT_WORK/node-e
expect_fail "--keystore-db-cert-ttl below 10 s" "--keystore-db-cert-ttl must be a number from 10 to 86400" \
  "$MESATEE_BIN" serve --data-dir "$E" --level soft --keystore-listen 127.0.0.1:0 --keystore-db-cert-ttl 5
expect_fail "--keystore-db-cert-ttl not a number" "--keystore-db-cert-ttl must be a number" \
  "$MESATEE_BIN" serve --data-dir "$E" --level soft --keystore-listen 127.0.0.1:0 --keystore-db-cert-ttl 1h
expect_fail "--keystore-db-cert-ttl without a CA" "--keystore-db-cert-ttl needs --keystore-db-ca" \
  "$MESATEE_BIN" serve --data-dir "$MT_WORK/node-t" --level soft --listen 127.0.0.1:0 --keystore-listen 127.0.0.1:0 --keystore-db-cert-ttl 60
expect_fail "--keystore-advertise without --keystore-listen" "--keystore-advertise is for the KeyStore node" \
  "$MESATEE_BIN" serve --data-dir "$E" --level soft --keystore-advertise https://ks.example:7445
for bad in http://ks.example:7445 https://ks.example:0 https://ks.example:1/x; do
  expect_fail "--keystore-advertise $bad" "--keystore-advertise: " \
    "$MESATEE_BIN" serve --data-dir "$E" --level soft --listen 127.0.0.1:0 --keystore-listen 127.0.0.1:0 \
    --keystore-advertise "$bad"
done
[ ! -s "$E/keystore.url" ] || fail "a refused --keystore-advertise wrote keystore.url"
expect_fail "--keystore-db-ca-create without --keystore-listen" "--keystore-db-ca-create is for the KeyStore node" \
  "$MESATEE_BIN" serve --data-dir "$E" --level soft --keystore-db-ca-create
expect_fail "--keystore-db-ca with --keystore-db-ca-create" "exclude each other" \
  "$MESATEE_BIN" serve --data-dir "$E" --level soft --keystore-listen 127.0.0.1:0 --keystore-db-ca-create --keystore-db-ca /nonexistent

# 2. the database CA; PostgreSQL: TCP for `mesatee` only with a certificate
# from it (the socket stays trusted: node A and this test's checks use it)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=mesatee test database CA" -keyout "$MT_WORK/dbca.key" -out "$MT_WORK/dbca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
cat "$MT_WORK/dbca.crt" "$MT_WORK/dbca.key" >"$MT_WORK/dbca.pem"
cp "$MT_WORK/dbca.crt" "$MT_PG_DIR/data/dbca.crt"
[ "$(id -u)" != 0 ] || chown nobody "$MT_PG_DIR/data/dbca.crt"
echo "ssl_ca_file = 'dbca.crt'" >>"$MT_PG_DIR/data/postgresql.auto.conf"
printf 'local all all trust\nhostssl all mesatee 127.0.0.1/32 cert clientcert=verify-full\n' >"$MT_PG_DIR/data/pg_hba.conf"
psql "$MT_PG_SOCKET_URL" -qAtc "SELECT pg_reload_conf()" >/dev/null || fail "pg reload"
for _ in $(seq 100); do psql "$MT_PG_URL" -qAtc "SELECT 1" >/dev/null 2>&1 || break; sleep 0.1; done
psql "$MT_PG_URL" -qAtc "SELECT 1" >/dev/null 2>&1 && fail "the database still admits a client without a certificate"
# psql_cert CERT KEY: a TCP connection with that client certificate
PG_HOSTPORT="host=127.0.0.1 port=$MT_PG_PORT user=mesatee dbname=postgres sslmode=require"
psql_cert() { psql "$PG_HOSTPORT sslcert=$1 sslkey=$2" -qAtc "SELECT 1" >/dev/null 2>&1; }

# 3. node A, the KeyStore node, with short-lived database certificates
mt_start_server --level soft --store "$MT_PG_SOCKET_URL" --keystore-listen 127.0.0.1:0 \
  --keystore-db-ca "$MT_WORK/dbca.pem" --keystore-db-cert-ttl "$TTL"
unset MESATEE_CA
KS_URL=$(cat "$MT_DATA/keystore.url")
case "$KS_URL" in https://127.0.0.1:[0-9]*) ;; *) fail "keystore.url: $KS_URL" ;; esac
mt_gateway_policy "$MT_WORK/ks-policy.json"
export MESATEE_POLICY=$MT_WORK/ks-policy.json
mt_login admin
st=$(as admin admin keystore status --output json) || fail "keystore status"
[ "$(jget "$st" .join.url)" = "$KS_URL" ] || fail "keystore status join.url: $(jget "$st" .join)"
[ "$(jget "$st" .join.db_cert_ttl_s)" = "$TTL" ] || fail "keystore status join.db_cert_ttl_s: $(jget "$st" .join)"
ok "keystore.url is the listen address ($KS_URL); keystore status shows it and the certificate lifetime"

# 4. node B joins (A's release policy admits A's own platform key: B gets a
# copy of it, so no allow step is needed here; it_cluster_nodes tests that)
mkdir -p "$B_DATA"
cp "$MT_DATA/platform-key.pem" "$B_DATA/platform-key.pem"
"$MESATEE_BIN" serve --data-dir "$B_DATA" --listen 127.0.0.1:0 --level soft \
  --admin-password-file "$MT_WORK/admin.pw" --store "$MT_PG_URL" \
  --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/ks-policy.json" >"$MT_WORK/b.log" 2>&1 &
B_PID=$!
for _ in $(seq 1200); do [ -s "$B_DATA/server.url" ] && break; kill -0 "$B_PID" 2>/dev/null || fail "B exited: $(tail -n 5 "$MT_WORK/b.log")"; sleep 0.05; done
[ -s "$B_DATA/server.url" ] || fail "B did not start"
B_URL=$(cat "$B_DATA/server.url")
asb() { MESATEE_SERVER=$B_URL MESATEE_TOKEN_FILE="$MT_WORK/admin.btoken" "$MESATEE_BIN" "$@"; }
cp "$B_DATA/db-client.crt" "$MT_WORK/first.crt"
KEY_SUM=$(sha256sum <"$B_DATA/db-client.key")
FIRST_SERIAL=$(openssl x509 -in "$MT_WORK/first.crt" -noout -serial | cut -d= -f2)
FIRST_NA=$(date -d "$(openssl x509 -in "$MT_WORK/first.crt" -noout -enddate | cut -d= -f2)" +%s)
left=$(( FIRST_NA - $(date +%s) ))
[ "$left" -le "$TTL" ] || fail "the first certificate is valid $left s, more than --keystore-db-cert-ttl $TTL"
asb login --user admin --password-file "$MT_WORK/admin.pw" >/dev/null || fail "B cannot serve with its certificate"
grep -q "database certificate expires in" "$MT_WORK/b.log" || fail "B does not log its renewal schedule"
ok "B joined and opened PostgreSQL with a certificate valid $left s"

# 5. the renewal: a new certificate for the same key, before the first expires
for _ in $(seq 1200); do cmp -s "$B_DATA/db-client.crt" "$MT_WORK/first.crt" || break; kill -0 "$B_PID" || fail "B died"; sleep 0.05; done
cmp -s "$B_DATA/db-client.crt" "$MT_WORK/first.crt" && fail "B did not renew its certificate within 60 s"
openssl x509 -in "$MT_WORK/first.crt" -noout -checkend 0 >/dev/null || fail "B renewed only after the first certificate expired"
for _ in $(seq 100); do grep -q "database certificate renewed" "$MT_WORK/b.log" && break; sleep 0.05; done
grep -q "database certificate renewed" "$MT_WORK/b.log" || fail "B does not log the renewal"
[ "$(sha256sum <"$B_DATA/db-client.key")" = "$KEY_SUM" ] || fail "the renewal changed db-client.key"
[ "$(stat -c %a "$B_DATA/db-client.crt")" = 600 ] || fail "db-client.crt is not mode 0600"
openssl verify -CAfile "$MT_WORK/dbca.crt" "$B_DATA/db-client.crt" >/dev/null || fail "the renewed certificate is not from the CA"
as admin --output json audit list --limit 1000 |
  jq -e '[.entries[] | select(.action == "keystore: database certificate issued")] | length >= 2' >/dev/null ||
  fail "the renewal's issuance is not in the audit log"
ok "B renewed its database certificate before expiry: same key, new certificate from the CA, audited"

# 6. once the first certificate has expired PostgreSQL refuses it, and B's
# new connections use the renewed file
# (2 s past notAfter: OpenSSL calls a certificate expired only after it)
for _ in $(seq 1200); do [ "$(date +%s)" -ge $((FIRST_NA + 2)) ] && break; sleep 0.05; done
[ "$(date +%s)" -ge $((FIRST_NA + 2)) ] || fail "the first certificate did not expire"
psql_cert "$MT_WORK/first.crt" "$B_DATA/db-client.key" && fail "PostgreSQL admits the expired first certificate"
for _ in $(seq 300); do psql_cert "$B_DATA/db-client.crt" "$B_DATA/db-client.key" && break; sleep 0.1; done
psql_cert "$B_DATA/db-client.crt" "$B_DATA/db-client.key" || fail "PostgreSQL refuses B's current certificate"
# B's open connections were made with the first certificate: cut them
psql "$MT_PG_SOCKET_URL" -qAtc "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'mesatee' AND client_addr IS NOT NULL" >/dev/null ||
  fail "terminate B's connections"
served=
for _ in $(seq 100); do
  if asb --output json user show admin >/dev/null 2>&1; then served=1; break; fi
  sleep 0.2
done
[ -n "$served" ] || fail "B does not serve after its connections were cut: $(tail -n 5 "$MT_WORK/b.log")"
serials=$(psql "$MT_PG_SOCKET_URL" -qAtc "SELECT s.client_serial FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'mesatee' AND a.client_addr IS NOT NULL AND s.client_serial IS NOT NULL")
[ -n "$serials" ] || fail "no TCP connection of B with a client certificate"
first_dec=$(python3 -c "print(int('$FIRST_SERIAL', 16))")
! grep -qx "$first_dec" <<<"$serials" || fail "B opened a new connection with the expired first certificate"
ok "after the first certificate expired (PostgreSQL refuses it) B reconnects with the renewed one"

# 7. /metrics: the expiry gauge and the renewal counters
m=$(curl -sfk "$B_URL/metrics") || fail "B /metrics"
na=$(sed -n 's/^mesatee_db_cert_not_after_seconds \([0-9]*\)$/\1/p' <<<"$m")
[ -n "$na" ] || fail "no mesatee_db_cert_not_after_seconds on /metrics"
[ "$na" -gt "$(date +%s)" ] || fail "the expiry gauge is in the past ($na)"
n=$(sed -n 's/^mesatee_db_cert_renewals_total \([0-9]*\)$/\1/p' <<<"$m")
[ "${n:-0}" -ge 1 ] || fail "mesatee_db_cert_renewals_total: ${n:-none}"
grep -q '^mesatee_db_cert_renew_due_seconds [0-9]' <<<"$m" || fail "no renew_due gauge"
ok "B's /metrics shows the certificate's expiry and $n renewal(s)"

# 8. the KeyStore node gone: the renewal fails, is logged, counted and retried
mt_stop_server
for _ in $(seq 1200); do grep -q "database certificate renewal at .* failed (1 in a row" "$MT_WORK/b.log" && break; kill -0 "$B_PID" || fail "B died"; sleep 0.05; done
grep -q "database certificate renewal at .* failed (1 in a row" "$MT_WORK/b.log" || fail "B does not log a failed renewal"
for _ in $(seq 1200); do grep -q "failed (2 in a row" "$MT_WORK/b.log" && break; kill -0 "$B_PID" || fail "B died"; sleep 0.05; done
grep -q "failed (2 in a row" "$MT_WORK/b.log" || fail "B does not retry a failed renewal"
m=$(curl -sfk "$B_URL/metrics") || fail "B /metrics"
f=$(sed -n 's/^mesatee_db_cert_renewal_failures_total \([0-9]*\)$/\1/p' <<<"$m")
[ "${f:-0}" -ge 2 ] || fail "mesatee_db_cert_renewal_failures_total: ${f:-none}"
ok "with the KeyStore node gone B logs the failed renewals, counts them ($f) and retries"
kill -TERM "$B_PID"; wait "$B_PID" || true; B_PID=

# 9. the CA given once is sealed: A restarts without the file (deleted), B
# joins again and gets a certificate from it
grep -q "now sealed in keystore.sealed" "$MT_WORK/server.log" || fail "A does not say it sealed the CA"
rm -f "$MT_WORK/dbca.pem" "$MT_WORK/dbca.key"
mt_start_server --level soft --store "$MT_PG_SOCKET_URL" --keystore-listen 127.0.0.1:0 --keystore-db-cert-ttl 60
KS_URL=$(cat "$MT_DATA/keystore.url")
cmp -s "$MT_DATA/db-ca.crt" "$MT_WORK/dbca.crt" ||
  [ "$(openssl x509 -in "$MT_DATA/db-ca.crt" -noout -fingerprint -sha256)" = "$(openssl x509 -in "$MT_WORK/dbca.crt" -noout -fingerprint -sha256)" ] ||
  fail "db-ca.crt is not the imported CA's certificate"
! grep -q PRIVATE "$MT_DATA/db-ca.crt" || fail "db-ca.crt holds a private key"
cp "$B_DATA/db-client.crt" "$MT_WORK/before-rejoin.crt"
rm -f "$B_DATA/server.url"
"$MESATEE_BIN" serve --data-dir "$B_DATA" --listen 127.0.0.1:0 --level soft \
  --admin-password-file "$MT_WORK/admin.pw" --store "$MT_PG_URL" \
  --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/ks-policy.json" >"$MT_WORK/b2.log" 2>&1 &
B_PID=$!
for _ in $(seq 1200); do [ -s "$B_DATA/server.url" ] && break; kill -0 "$B_PID" 2>/dev/null || fail "B exited: $(tail -n 5 "$MT_WORK/b2.log")"; sleep 0.05; done
[ -s "$B_DATA/server.url" ] || fail "B did not start again"
B_URL=$(cat "$B_DATA/server.url")
cmp -s "$B_DATA/db-client.crt" "$MT_WORK/before-rejoin.crt" && fail "B got no new certificate"
openssl verify -CAfile "$MT_DATA/db-ca.crt" "$B_DATA/db-client.crt" >/dev/null || fail "B's certificate is not from the sealed CA"
asb login --user admin --password-file "$MT_WORK/admin.pw" >/dev/null || fail "B cannot serve with a certificate from the sealed CA"
kill -TERM "$B_PID"; wait "$B_PID" || true; B_PID=
mt_stop_server
ok "the CA imported once is sealed in keystore.sealed: without the file A issues, B joins and serves"

# 10. --keystore-advertise: what keystore.url and keystore status say;
# --keystore-db-ca-create: a CA made inside the KeyStore, only its
# certificate exported, kept across a restart
MT_DATA=$MT_WORK/node-adv
mt_start_server --level soft --keystore-listen 127.0.0.1:0 --keystore-db-ca-create
openssl x509 -in "$MT_DATA/db-ca.crt" -noout -text | grep -q "CA:TRUE" || fail "db-ca.crt is not a CA certificate"
! grep -q PRIVATE "$MT_DATA/db-ca.crt" || fail "db-ca.crt holds a private key"
cp "$MT_DATA/db-ca.crt" "$MT_WORK/made-ca.crt"
mt_stop_server
mt_start_server --level soft --keystore-listen 0.0.0.0:0 --keystore-advertise https://ks.example:7445/
[ "$(cat "$MT_DATA/keystore.url")" = "https://ks.example:7445" ] || fail "keystore.url: $(cat "$MT_DATA/keystore.url")"
unset MESATEE_CA
mt_gateway_policy "$MT_WORK/adv-policy.json"
MESATEE_POLICY=$MT_WORK/adv-policy.json mt_login admin
st=$(MESATEE_POLICY=$MT_WORK/adv-policy.json as admin admin keystore status --output json) || fail "keystore status"
[ "$(jget "$st" .join.url)" = "https://ks.example:7445" ] || fail "keystore status join: $(jget "$st" .join)"
[ "$(jget "$st" .join.db_cert_ttl_s)" = 86400 ] || fail "keystore status: the sealed CA is not used ($(jget "$st" .join))"
cmp -s "$MT_DATA/db-ca.crt" "$MT_WORK/made-ca.crt" || fail "the CA made inside the KeyStore changed across a restart"
grep -q "created a database CA" "$MT_WORK/server.log" || fail "no log of the CA made inside the KeyStore"
mt_stop_server
ok "--keystore-advertise goes to keystore.url and keystore status; --keystore-db-ca-create seals a CA, exports its certificate only, keeps it"
