#!/usr/bin/env bash
# The two-machine walkthrough of docs/getting-started.md, run exactly as
# written: every block marked `<!-- two-machines: NAME -->` is extracted from
# the page and run by bash on its "host". Three hosts are stood in for by
# separate home directories and loopback addresses: the server listens on
# 127.0.0.2 only and its certificate names a host name (mesatee.example.test)
# and that address; the hospital and the bank each have their own HOME,
# CLI configuration file, keys and token file, and get from the operator only
# the server's certificate and their initial password. Then: each party's
# result is the intersection of the two lists, the operator's fingerprint is
# the one each party sees, and the server's identity survives a restart.
source "$(dirname "$0")/lib.sh"
DOC=$(cd "$(dirname "$0")/../.." && pwd)/docs/getting-started.md
[ -f "$DOC" ] || fail "no $DOC"
command -v openssl >/dev/null || fail "openssl is needed"

# block NAME: the sh block after the marker, or nothing.
block() {
  awk -v m="<!-- two-machines: $1 -->" '
    $0 == m { want = 1; next }
    want && /^```sh$/ { inb = 1; want = 0; next }
    inb && /^```$/ { exit }
    inb { print }' "$DOC"
}
for b in server-prepare server-start server-fingerprint server-accounts party-setup \
  hospital-task bank-join hospital-start party-result; do
  [ -n "$(block "$b")" ] || fail "docs/getting-started.md has no block '$b'"
done
ok "the walkthrough's blocks are in docs/getting-started.md"

# `mesatee` on PATH, as on an installed host.
BIN=$MT_WORK/bin
mkdir -p "$BIN"
ln -s "$(readlink -f "$MESATEE_BIN")" "$BIN/mesatee"

ADDR=127.0.0.2
NAME=mesatee.example.test
PORT=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.2",0)); print(s.getsockname()[1]); s.close()') ||
  fail "cannot bind 127.0.0.2 (loopback addresses beyond 127.0.0.1 are needed)"
SH=$MT_WORK/server-host HH=$MT_WORK/hospital-host BH=$MT_WORK/bank-host
mkdir -p "$SH" "$HH" "$BH"
SERVER_VARS=(MESATEE_NAME="$NAME" MESATEE_ADDR="$ADDR" MESATEE_PORT="$PORT"
  MESATEE_DATA="$SH/var/lib/mesatee" MESATEE_ADMIN_PW="$SH/etc/mesatee/admin.pw")

# on HOST_HOME BLOCK [VAR=value...]: runs a block on a host, in its home
# directory, with only that host's settings (no MESATEE_* of this test).
on() {
  local home=$1 name=$2
  shift 2
  (cd "$home" && env -u MESATEE_CONFIG -u MESATEE_SERVER -u MESATEE_CA -u MESATEE_TOKEN_FILE \
    -u MESATEE_OUTPUT -u MESATEE_TLS_SERVER_NAME -u MESATEE_POLICY -u XDG_CONFIG_HOME \
    HOME="$home" PATH="$BIN:$PATH" "$@" bash -euo pipefail -c "$(block "$name")")
}

start_server() {
  rm -f "$SH/var/lib/mesatee/server.url"
  (cd "$SH" && exec env HOME="$SH" PATH="$BIN:$PATH" "${SERVER_VARS[@]}" \
    bash -c "exec $(block server-start)") >>"$MT_WORK/server.log" 2>&1 &
  MT_PID=$!
  for _ in $(seq 1200); do
    [ -s "$SH/var/lib/mesatee/server.url" ] && break
    kill -0 "$MT_PID" 2>/dev/null || fail "server exited at start"
    sleep 0.05
  done
  [ -s "$SH/var/lib/mesatee/server.url" ] || fail "server did not start"
}

# ---- 1. the server host
on "$SH" server-prepare "${SERVER_VARS[@]}"
start_server
[ "$(cat "$SH/var/lib/mesatee/server.url")" = "https://$ADDR:$PORT" ] || fail "server.url is not $ADDR:$PORT"
san=$(openssl x509 -in "$SH/var/lib/mesatee/tls/server-cert.pem" -noout -ext subjectAltName)
case $san in *"DNS:$NAME"*) ;; *) fail "the certificate does not name $NAME: $san" ;; esac
[ "$(stat -c %a "$SH/var/lib/mesatee/tls/server-key.pem")" = 600 ] || fail "server-key.pem is not mode 0600"
ok "server on $ADDR:$PORT with a certificate for $NAME; its key kept with mode 0600"
OP_FP=$(on "$SH" server-fingerprint "${SERVER_VARS[@]}")
mkdir -p "$SH/handout"
on "$SH/handout" server-accounts "${SERVER_VARS[@]}" >/dev/null
ok "operator: fingerprint printed, accounts hospital and bank created"

# The handover: the certificate and each party's password file, nothing else.
for org in hospital bank; do
  h=$MT_WORK/$org-host
  cp "$SH/var/lib/mesatee/tls/server-cert.pem" "$h/server-cert.pem"
  cp "$SH/handout/$org.pw" "$h/$org.pw"
done

# ---- 2. each organisation's host
party_vars() { echo "ORG=$1" "MESATEE_NAME=$NAME" "MESATEE_ADDR=$ADDR" "MESATEE_PORT=$PORT"; }
for org in hospital bank; do
  h=$MT_WORK/$org-host
  # shellcheck disable=SC2046
  out=$(on "$h" party-setup $(party_vars "$org")) || fail "$org: setup failed: $out"
  case $out in *"$OP_FP"*) ;; *) fail "$org sees another fingerprint than the operator's ($OP_FP): $out" ;; esac
  case $out in *"logged in as $org"*) ;; *) fail "$org did not log in: $out" ;; esac
  case $out in *"tls_server_name = $NAME ("*) ;; *) fail "$org's config show lacks tls_server_name: $out" ;; esac
  [ -f "$h/.config/mesatee/token" ] || fail "$org has no token file of its own"
  ok "$org: same fingerprint as the operator's, own config file and token, logged in"
done

# Ids: 300 shared, the rest each party's own.
{ seq -f "shared-%05g" 1 300; seq -f "hospital-%05g" 1 700; } | shuf > "$HH/psi/ids.txt"
{ seq -f "shared-%05g" 1 300; seq -f "bank-%05g" 1 900; } | shuf > "$BH/psi/ids.txt"
seq -f "shared-%05g" 1 300 | LC_ALL=C sort > "$MT_WORK/expected.txt"

# shellcheck disable=SC2046
out=$(on "$HH" hospital-task $(party_vars hospital)) || fail "hospital: task preparation failed: $out"
TASK=$(printf '%s\n' "$out" | sed -n 's/^task \([0-9a-f]\{32\}\): send this id to the bank$/\1/p')
[ -n "$TASK" ] || fail "hospital did not print the task id: $out"
ok "hospital: encrypted, uploaded, registered, created task $TASK, assigned"
# shellcheck disable=SC2046
out=$(on "$BH" bank-join $(party_vars bank) TASK="$TASK") || fail "bank: joining failed: $out"
ok "bank: looked at the task, encrypted, uploaded, registered, assigned, approved"
# shellcheck disable=SC2046
out=$(on "$HH" hospital-start $(party_vars hospital) TASK="$TASK") || fail "hospital: approve/invoke failed: $out"
ok "hospital: checked the task, approved, started it"
for org in hospital bank; do
  h=$MT_WORK/$org-host
  # shellcheck disable=SC2046
  out=$(on "$h" party-result $(party_vars "$org") TASK="$TASK") || fail "$org: result failed: $out"
  cmp -s <(LC_ALL=C sort "$h/psi/result.txt") "$MT_WORK/expected.txt" ||
    fail "$org's result is not the intersection"
  ok "$org decrypted its own result on its own host: the 300 shared ids"
done
# Nothing but the certificate and the password crossed: keys stay on their host.
cmp -s "$HH/psi/result.key" "$BH/psi/result.key" && fail "the parties share a result key"
# The bank cannot decrypt the hospital's result with its own key.
if env HOME="$BH" "$BIN/mesatee" file decrypt --in "$HH/psi/ids.enc" --out "$MT_WORK/x" \
  --key "$BH/psi/ids.key" 2>/dev/null; then
  fail "the bank's key decrypts the hospital's file"
fi
ok "each party's keys are its own"

# ---- the identity survives a restart: same certificate, the parties keep working
fp1=$(openssl x509 -in "$SH/var/lib/mesatee/tls/server-cert.pem" -noout -fingerprint -sha256)
mt_stop_server
start_server
fp2=$(openssl x509 -in "$SH/var/lib/mesatee/tls/server-cert.pem" -noout -fingerprint -sha256)
[ "$fp1" = "$fp2" ] || fail "the certificate changed across a restart: $fp1 / $fp2"
grep -q "TLS identity: reusing" "$MT_WORK/server.log" || fail "the restart did not log the reuse"
out=$(cd "$HH" && env -u MESATEE_CONFIG -u XDG_CONFIG_HOME HOME="$HH" "$BIN/mesatee" task show "$TASK") ||
  fail "hospital cannot reach the restarted server with its pinned certificate: $out"
ok "restart: same certificate ($fp2), the parties' pinned configuration still works"
