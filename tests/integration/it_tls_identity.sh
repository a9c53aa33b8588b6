#!/usr/bin/env bash
# The server's TLS identity and the client's TLS errors (issue 9, "Reaching
# the server from another machine"):
#  - garbage in every new flag, environment variable and config key;
#  - level none: the key and certificate are kept across restarts (same
#    fingerprint), reissued for the same key when --tls-san changes (logged);
#    SIGHUP after removing the key makes a new identity;
#  - the client tells apart a name mismatch, an unknown CA and a changed
#    certificate; --tls-server-name (flag, env, config key) verifies a name
#    other than the address;
#  - an operator's certificate chain and key: served with its chain, checked
#    at start (mismatch, expiry, order, purpose, encryption, permissions,
#    missing and damaged files: refused with a clear error before anything is
#    created), reloaded on SIGHUP (in-flight connections keep working, a bad
#    new file keeps the old identity);
#  - level soft: the RA-TLS certificate carries the same --tls-san names, no
#    key is kept on disk, SIGHUP makes a fresh certificate.
source "$(dirname "$0")/lib.sh"
B=$MESATEE_BIN
W=$MT_WORK
command -v openssl >/dev/null || fail "openssl is needed"

# usage_fail DESC WANT cmd...: exit status 2 and WANT in the message.
usage_fail() {
  local desc=$1 want=$2 rc=0 out
  shift 2
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" = 2 ] || fail "$desc: exit $rc (want 2): $out"
  case $out in *"$want"*) ok "$desc" ;; *) fail "$desc: expected '$want' in: $out" ;; esac
}
# fp_file PEM / fp_served HOST:PORT: SHA-256 fingerprints.
fp_file() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
fp_served() {
  openssl s_client -connect "$1" -servername mesatee.example.test </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256
}
hostport() { local u; u=$(cat "$MT_DATA/server.url"); echo "${u#https://}"; }

# ---------------------------------------------------------------- garbage
usage_fail "--tls-san with a space" "--tls-san: 'bad name' is neither a DNS host name" \
  "$B" serve --data-dir "$W/g1" --tls-san "bad name"
usage_fail "--tls-san empty" "--tls-san has an empty value" "$B" serve --data-dir "$W/g1" --tls-san ""
usage_fail "--tls-san empty list item" "empty item" "$B" serve --data-dir "$W/g1" --tls-san "a.example,,b.example"
usage_fail "--tls-san bad address" "'999.1.1.1' is neither" "$B" serve --data-dir "$W/g1" --tls-san 999.1.1.1
usage_fail "--tls-san label too long" "is neither" "$B" serve --data-dir "$W/g1" --tls-san "$(printf 'a%.0s' {1..64}).example"
usage_fail "--tls-san control character" "control character" "$B" serve --data-dir "$W/g1" --tls-san "$(printf 'a\001b')"
many=(); for i in $(seq 33); do many+=(--tls-san "h$i.example"); done
usage_fail "33 --tls-san" "more than 32 times" "$B" serve --data-dir "$W/g1" "${many[@]}"
usage_fail "--tls-cert alone" "go together" "$B" serve --data-dir "$W/g1" --tls-cert /etc/hostname
usage_fail "--tls-key alone" "go together" "$B" serve --data-dir "$W/g1" --tls-key /etc/hostname
usage_fail "--tls-cert empty" "has an empty value" "$B" serve --data-dir "$W/g1" --tls-cert "" --tls-key x
usage_fail "--tls-cert at level soft" "are for --level none" \
  "$B" serve --data-dir "$W/g1" --level soft --tls-cert a --tls-key b
[ ! -e "$W/g1" ] || fail "a refused serve created its data directory"
usage_fail "--tls-server-name with a space" "TLS server name 'a?b' is neither" \
  "$B" --tls-server-name "a b" --server https://127.0.0.1:1 user list
usage_fail "--tls-server-name without value" "needs a value" "$B" user list --tls-server-name
usage_fail "MESATEE_TLS_SERVER_NAME garbage" "(from MESATEE_TLS_SERVER_NAME)" \
  env MESATEE_TLS_SERVER_NAME="-bad-.example" "$B" --server https://127.0.0.1:1 user list
printf 'tls_server_name = under_score.example\n' >"$W/bad.conf"
usage_fail "tls_server_name config key garbage" "(from config $W/bad.conf:1)" \
  "$B" --config "$W/bad.conf" --server https://127.0.0.1:1 user list
printf 'tls_server_name =\n' >"$W/empty.conf"
usage_fail "tls_server_name config key empty" "key 'tls_server_name' has an empty value" \
  "$B" --config "$W/empty.conf" user list
printf 'tls_server_name = a.example\ntls_server_name = b.example\n' >"$W/twice.conf"
usage_fail "tls_server_name config key twice" "set twice" "$B" --config "$W/twice.conf" user list

# ------------------------------------------------- level none: kept identity
mt_start_server
san=$(openssl x509 -in "$MT_DATA/tls/server-cert.pem" -noout -ext subjectAltName)
case $san in *"DNS:localhost"*) ;; *) fail "default SANs lack localhost: $san" ;; esac
case $san in *"IP Address:127.0.0.1"*) ;; *) fail "default SANs lack 127.0.0.1: $san" ;; esac
case $san in *"DNS:$(hostname | tr 'A-Z' 'a-z')"*) ;; *) fail "default SANs lack the host name: $san" ;; esac
ok "default names: the host name, localhost, 127.0.0.1 ($san)"
mt_login admin
FP1=$(fp_file "$MT_DATA/tls/server-cert.pem")
PUB1=$(openssl x509 -in "$MT_DATA/tls/server-cert.pem" -noout -pubkey)
cp "$MT_DATA/tls/server-cert.pem" "$W/pin1.pem"
mt_stop_server
mt_start_server
[ "$(fp_file "$MT_DATA/tls/server-cert.pem")" = "$FP1" ] || fail "the certificate changed across a restart"
[ "$(fp_served "$(hostport)")" = "$FP1" ] || fail "the served certificate is not the kept one"
grep -q "TLS identity: reusing" "$W/server.log" || fail "no 'reusing' line in the log"
as admin user list >/dev/null || fail "the pinned certificate no longer works after a restart"
ok "restart: the same key and certificate ($FP1), logged as reused"

mt_stop_server
mt_start_server --tls-san localhost,127.0.0.1 --tls-san mesatee.example.test
FP2=$(fp_file "$MT_DATA/tls/server-cert.pem")
[ "$FP2" != "$FP1" ] || fail "new --tls-san names but the same certificate"
[ "$(openssl x509 -in "$MT_DATA/tls/server-cert.pem" -noout -pubkey)" = "$PUB1" ] ||
  fail "a new --tls-san list changed the key"
grep -q "issued a new certificate .* because the names changed from" "$W/server.log" ||
  fail "the reissue is not explained in the log"
ok "--tls-san changed: a new certificate for the same key, the log says why"

# the three errors
expect_fail "changed certificate" \
  "the server's certificate changed: $W/pin1.pem pins sha256:" as admin --ca "$W/pin1.pem" user list
out=$(as admin --ca "$W/pin1.pem" user list 2>&1 || true)
case $out in *"pin the server"*) fail "the error still advises pinning: $out" ;; esac
case $out in *"presents sha256:"*"DNS:mesatee.example.test"*) ok "the error shows both fingerprints and the names" ;;
  *) fail "changed-certificate error lacks details: $out" ;; esac
expect_fail "name mismatch" "name mismatch: the server's certificate does not name 'wrong.example.test' (it names DNS:localhost, IP:127.0.0.1, DNS:mesatee.example.test)" \
  as admin --tls-server-name wrong.example.test user list
as admin --tls-server-name mesatee.example.test user list >/dev/null || fail "--tls-server-name did not verify the name"
MESATEE_TLS_SERVER_NAME=mesatee.example.test as admin user list >/dev/null || fail "MESATEE_TLS_SERVER_NAME did not work"
printf 'tls_server_name = mesatee.example.test\n' >"$W/good.conf"
as admin --config "$W/good.conf" user list >/dev/null || fail "config key tls_server_name did not work"
out=$(as admin --config "$W/good.conf" config show)
case $out in *"tls_server_name = mesatee.example.test (config $W/good.conf:1)"*) ;; *) fail "config show: $out" ;; esac
ok "--tls-server-name, MESATEE_TLS_SERVER_NAME and tls_server_name verify the name, not the address"

# operator PKI: root -> intermediate -> leaf
P=$W/pki
mkdir -p "$P"
gen() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$1.key" -subj "/CN=$1" -out "$P/$1.csr" 2>/dev/null; }
sign() { # sign NAME ISSUER EXTS
  openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -CAcreateserial -days 30 \
    -extfile <(printf '%b' "$3") -out "$P/$1.pem" 2>/dev/null
}
CA_EXT='basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n'
LEAF_EXT='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:mesatee.example.test,IP:127.0.0.1\n'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/root.key" \
  -subj /CN=root -days 30 -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign -out "$P/root.pem" 2>/dev/null
gen inter && sign inter root "$CA_EXT"
gen leaf && sign leaf inter "$LEAF_EXT"
gen leaf2 && sign leaf2 inter "$LEAF_EXT"
gen client && sign client inter 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:mesatee.example.test\n'
for f in leaf leaf2 client inter root; do chmod 600 "$P/$f.key"; done
cat "$P/leaf.pem" "$P/inter.pem" >"$P/chain.pem"
[ -s "$P/chain.pem" ] && [ -s "$P/leaf2.pem" ] || fail "could not make the test PKI"

expect_fail "unknown CA" "unknown CA: the server's certificate sha256:" as admin --ca "$P/root.pem" user list
out=$(env -u MESATEE_CA "$B" --token-file "$W/admin.token" user list 2>&1 || true)
case $out in *"unknown CA"*"system's trust store"*) ok "unknown CA without --ca (system store)" ;; *) fail "system store: $out" ;; esac

# SIGHUP at level none without the key: a new identity (rotation)
rm "$MT_DATA/tls/server-key.pem"
kill -HUP "$MT_PID"
for _ in $(seq 1200); do grep -q "TLS identity reloaded" "$W/server.log" && break; sleep 0.05; done
grep -q "TLS identity: created a new key" "$W/server.log" || fail "SIGHUP without a key did not make one"
FP3=$(fp_served "$(hostport)")
[ "$FP3" != "$FP2" ] && [ "$FP3" = "$(fp_file "$MT_DATA/tls/server-cert.pem")" ] || fail "SIGHUP did not install the new identity"
ok "SIGHUP after removing the key: a new identity is served and written"
mt_stop_server

# a kept key open to others, or damaged, is refused (not replaced)
chmod 644 "$MT_DATA/tls/server-key.pem"
expect_fail "kept key open to group/other" "server-key.pem has mode 644 and is open to group/other" \
  "$B" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 --admin-password-file "$W/admin.pw"
chmod 600 "$MT_DATA/tls/server-key.pem"
cp "$MT_DATA/tls/server-key.pem" "$W/key.bak"
echo garbage >"$MT_DATA/tls/server-key.pem"
expect_fail "damaged kept key" "server-key.pem is not a usable private key" \
  "$B" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 --admin-password-file "$W/admin.pw"
[ "$(cat "$MT_DATA/tls/server-key.pem")" = garbage ] || fail "the damaged key was replaced"
cp "$W/key.bak" "$MT_DATA/tls/server-key.pem"

# ---------------------------------------------------- operator certificate
cp "$P/chain.pem" "$W/op-cert.pem"
cp "$P/leaf.key" "$W/op-key.pem"
chmod 600 "$W/op-key.pem"
mt_start_server --tls-cert "$W/op-cert.pem" --tls-key "$W/op-key.pem"
export MESATEE_CA=$P/root.pem
as admin --tls-server-name mesatee.example.test user list >/dev/null || fail "the operator's chain does not verify against its root"
as admin user list >/dev/null || fail "the operator's certificate does not verify by IP"
n=$(openssl s_client -connect "$(hostport)" -showcerts </dev/null 2>/dev/null | grep -c "BEGIN CERTIFICATE")
[ "$n" = 2 ] || fail "the server sends $n certificates, not leaf + intermediate"
[ "$(fp_served "$(hostport)")" = "$(fp_file "$P/leaf.pem")" ] || fail "the operator's certificate is not served"
grep -q "TLS identity: operator certificate sha256:" "$W/server.log" || fail "no operator-certificate line in the log"
ok "operator certificate and key: served with its chain, verified against the operator's root"

# SIGHUP: an in-flight connection keeps working, new ones get the new certificate
mkfifo "$W/fifo"
openssl s_client -connect "$(hostport)" -quiet <"$W/fifo" >"$W/inflight.out" 2>/dev/null &
SC=$!
exec 3>"$W/fifo"
sleep 0.5
cp "$P/leaf2.pem" "$W/op-cert.pem" && cat "$P/inter.pem" >>"$W/op-cert.pem"
cp "$P/leaf2.key" "$W/op-key.pem"
kill -HUP "$MT_PID"
for _ in $(seq 1200); do [ "$(grep -c "TLS identity reloaded" "$W/server.log")" -ge 2 ] && break; sleep 0.05; done
[ "$(fp_served "$(hostport)")" = "$(fp_file "$P/leaf2.pem")" ] || fail "SIGHUP did not pick up the new operator certificate"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
exec 3>&-
wait "$SC" || true
grep -q "HTTP/1.1 200" "$W/inflight.out" || fail "the connection opened before SIGHUP broke: $(cat "$W/inflight.out")"
as admin user list >/dev/null || fail "clients fail after the reload"
ok "SIGHUP: the new operator certificate is served; a connection opened before keeps working"

# SIGHUP with a bad new file: the old identity stays, the log says why
cp "$P/leaf.key" "$W/op-key.pem"
kill -HUP "$MT_PID"
for _ in $(seq 1200); do grep -q "TLS identity reload failed" "$W/server.log" && break; sleep 0.05; done
grep -q "TLS identity reload failed, keeping the current one: the key in $W/op-key.pem does not belong to the certificate" "$W/server.log" ||
  fail "a bad reload is not logged with its reason"
[ "$(fp_served "$(hostport)")" = "$(fp_file "$P/leaf2.pem")" ] || fail "a bad reload replaced the identity"
as admin user list >/dev/null || fail "clients fail after a bad reload"
ok "SIGHUP with a key that does not match: the old identity stays, the log says why"
mt_stop_server

# bad operator files at start: refused with a clear error, nothing created
refused() { # refused DESC WANT CERT KEY
  local d=$W/refused out rc=0
  out=$("$B" serve --data-dir "$d" --listen 127.0.0.1:0 --admin-password-file "$W/admin.pw" \
    --tls-cert "$3" --tls-key "$4" 2>&1) || rc=$?
  [ "$rc" = 1 ] || fail "$1: exit $rc: $out"
  case $out in *"$2"*) ;; *) fail "$1: expected '$2' in: $out" ;; esac
  [ ! -e "$d" ] || fail "$1: the refused start created $d"
  ok "refused: $1"
}
cp "$P/leaf.key" "$W/k.pem"; chmod 600 "$W/k.pem"
refused "key of another certificate" "the key in $W/k.pem does not belong to the certificate in $P/leaf2.pem" "$P/leaf2.pem" "$W/k.pem"
refused "missing certificate file" "--tls-cert $W/nope.pem does not exist" "$W/nope.pem" "$W/k.pem"
refused "missing key file" "--tls-key $W/nope.key does not exist" "$P/leaf.pem" "$W/nope.key"
head -c 3000 /dev/urandom >"$W/junk.pem"
refused "random bytes as certificate" "holds no PEM certificate" "$W/junk.pem" "$W/k.pem"
cp "$W/junk.pem" "$W/junk.key"; chmod 600 "$W/junk.key"
refused "random bytes as key" "is not a PEM private key" "$P/leaf.pem" "$W/junk.key"
{ cat "$P/leaf.pem"; echo "-----BEGIN CERTIFICATE-----"; echo "bm90IGEgY2VydA=="; echo "-----END CERTIFICATE-----"; } >"$W/trunc.pem"
refused "damaged second certificate" "certificate 2 is damaged" "$W/trunc.pem" "$W/k.pem"
cat "$P/leaf.pem" "$P/root.pem" "$P/inter.pem" >"$W/order.pem"
refused "chain out of order" "certificate 2 did not issue certificate 1" "$W/order.pem" "$W/k.pem"
cat "$P/leaf.pem" "$W/k.pem" >"$W/withkey.pem"
refused "key inside the certificate file" "also holds a private key" "$W/withkey.pem" "$W/k.pem"
cp "$P/leaf.key" "$W/world.key"; chmod 644 "$W/world.key"
refused "key readable by everyone" "has mode 644: every user can read the private key" "$P/leaf.pem" "$W/world.key"
openssl pkey -in "$P/leaf.key" -aes256 -passout pass:secret -out "$W/enc.key" 2>/dev/null; chmod 600 "$W/enc.key"
refused "encrypted key" "holds an encrypted private key" "$P/leaf.pem" "$W/enc.key"
cp "$P/client.key" "$W/ck.pem"; chmod 600 "$W/ck.pem"
refused "client-only certificate" "may not be used by a TLS server" "$P/client.pem" "$W/ck.pem"
# an expired certificate (openssl ca sets the dates)
mkdir -p "$P/ca" && : >"$P/ca/index.txt" && echo 1000 >"$P/ca/serial"
cat >"$P/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $P/ca/index.txt
new_certs_dir = $P/ca
serial = $P/ca/serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
EOF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/old.key" -subj /CN=old \
  -addext subjectAltName=DNS:mesatee.example.test -out "$P/old.csr" 2>/dev/null
openssl ca -batch -config "$P/ca.cnf" -cert "$P/inter.pem" -keyfile "$P/inter.key" -in "$P/old.csr" \
  -out "$P/old.pem" -startdate 20200101000000Z -enddate 20200201000000Z -notext 2>/dev/null ||
  fail "openssl ca could not make an expired certificate"
chmod 600 "$P/old.key"
refused "expired certificate" "the certificate in $P/old.pem expired on 2020-02-01T00:00:00Z" "$P/old.pem" "$P/old.key"

# ---------------------------------------------------- attested level: same names
MT_DATA=$W/soft
mt_start_server --level soft --tls-san soft.example.test,127.0.0.1
san=$(openssl x509 -in "$MT_DATA/tls/server-cert.pem" -noout -ext subjectAltName)
case $san in *"DNS:soft.example.test"*"IP Address:127.0.0.1"*) ;; *) fail "level soft ignores --tls-san: $san" ;; esac
[ ! -e "$MT_DATA/tls/server-key.pem" ] || fail "level soft kept a TLS key on disk"
S1=$(fp_served "$(hostport)")
kill -HUP "$MT_PID"
for _ in $(seq 600); do grep -q "TLS identity reloaded" "$W/server.log" && [ "$(fp_served "$(hostport)")" != "$S1" ] && break; sleep 0.1; done
[ "$(fp_served "$(hostport)")" != "$S1" ] || fail "SIGHUP at level soft did not make a fresh RA-TLS certificate"
ok "level soft: the RA-TLS certificate carries the --tls-san names; SIGHUP makes a fresh one"
mt_stop_server
