#!/usr/bin/env bash
# libmesatee keeps connections alive between requests; none opened under an
# earlier TLS trust may carry a request after the trust changed. In policy
# (attested TLS) mode curl's own reuse check cannot tell: its TLS settings
# are the same for every policy. Two soft-level servers behind a TCP proxy
# (its first connection goes to s1, all later ones to s2); the admin token
# is s2's, policy A admits only s1 and policy B only s2:
#  - a request under A (connection 0, to s1), then policy B: every request
#    must go to s2 (s1 refuses the token with 401, so one sent over the old
#    connection fails);
#  - the same with the pool kept across the change (a test hook): the trust
#    generation check alone refuses the old connection (EATTEST, nothing
#    sent), the next request opens one to s2;
#  - a request with verification off (connection 0, unverified, to s1), then
#    verification on: the same.
source "$(dirname "$0")/lib.sh"
: "${MT_CLIENT_POOL:?MT_CLIENT_POOL must point at the client_pool test program}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
B=$MESATEE_BIN
# the client is under test, not the store: under MT_TEST_PG lib.sh gives each
# data directory a PostgreSQL of its own and stops the first when the second
# starts, which would take s1's store away while it serves
if mt_pg_skip "two servers at once, each with a store of its own (the client is under test)"; then
  exit 0
fi

mt_start_server --level soft
S1_PID=$MT_PID; S1_URL=$MESATEE_SERVER
MT_DATA=$MT_WORK/server2
mt_start_server --level soft
S2_URL=$MESATEE_SERVER
PROXY_PID=
trap 'kill $S1_PID $PROXY_PID 2>/dev/null || true; mt_cleanup' EXIT
mt_login admin # s2's token: s1 answers it 401

policy_for() { # URL FILE: a policy that admits the server at URL only
  local show
  show=$(MESATEE_SERVER=$1 "$B" attest show --output json) || fail "attest show $1"
  cat > "$2" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jget "$show" .measurements.measurement)"]}},
 "soft_platform_keys": ["$(jget "$show" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
}
policy_for "$S1_URL" "$MT_WORK/A.json"
policy_for "$S2_URL" "$MT_WORK/B.json"
cmp -s "$MT_WORK/A.json" "$MT_WORK/B.json" && fail "the two servers have the same identity"

start_proxy() { # conn0 -> s1, later connections -> s2; port in PX
  rm -f "$MT_WORK/proxy.port"
  python3 -c '
import socket, sys, threading
ports = [int(p) for p in sys.argv[1:]]
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(16)
print(ls.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except Exception: pass
    try: b.shutdown(socket.SHUT_WR)
    except Exception: pass
n = 0
while True:
    c, _ = ls.accept()
    s = socket.create_connection(("127.0.0.1", ports[min(n, len(ports) - 1)]))
    print("conn%d -> %d" % (n, ports[min(n, len(ports) - 1)]), file=sys.stderr, flush=True)
    threading.Thread(target=pump, args=(c, s), daemon=True).start()
    threading.Thread(target=pump, args=(s, c), daemon=True).start()
    n += 1
' "${S1_URL##*:}" "${S2_URL##*:}" > "$MT_WORK/proxy.port" 2>>"$MT_WORK/proxy.log" &
  PROXY_PID=$!
  for _ in $(seq 200); do [ -s "$MT_WORK/proxy.port" ] && break; sleep 0.05; done
  PX=$(cat "$MT_WORK/proxy.port")
  [ -n "$PX" ] || fail "the proxy did not start"
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=; }

# sanity: s1 refuses s2's token, policy B refuses s1
out=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$MT_WORK/server/tls/server-cert.pem" \
  -H "Authorization: Bearer $(cat "$MT_WORK/admin.token")" "$S1_URL/v1/users/me")
[ "$out" = 401 ] || fail "s1 answered s2's token $out"
"$MT_CLIENT_POOL" insecure "$S1_URL" "$MT_WORK/admin.token" "$MT_WORK/B.json" > "$MT_WORK/s1.out" 2>&1 &&
  fail "policy B admitted s1: $(cat "$MT_WORK/s1.out")"
grep -q "after: GET /v1/users/me: attestation_failed: .*refused by policy" "$MT_WORK/s1.out" ||
  fail "s1 under policy B: $(cat "$MT_WORK/s1.out")"

start_proxy
rc=0; "$MT_CLIENT_POOL" policy "https://127.0.0.1:$PX" "$MT_WORK/admin.token" \
  "$MT_WORK/A.json" "$MT_WORK/B.json" > "$MT_WORK/policy.out" 2>&1 || rc=$?
stop_proxy
[ "$rc" = 0 ] || fail "after a policy change: exit $rc: $(cat "$MT_WORK/policy.out")"
[ "$(grep -c '^after: .*: ok$' "$MT_WORK/policy.out")" = 3 ] || fail "$(cat "$MT_WORK/policy.out")"
ok "after a policy change no request goes over a connection verified under the old policy"

# the trust generation check on its own: the pool is kept across the change
# (a test hook), so the request after it finds the connection verified under
# A; it must be refused before sending (a request sent to s1 gets 401)
start_proxy
rc=0; "$MT_CLIENT_POOL" keep "https://127.0.0.1:$PX" "$MT_WORK/admin.token" \
  "$MT_WORK/A.json" "$MT_WORK/B.json" > "$MT_WORK/keep.out" 2>&1 || rc=$?
stop_proxy
grep -q '^before: GET /healthz: ok$' "$MT_WORK/keep.out" || fail "$(cat "$MT_WORK/keep.out")"
grep -q '^kept: GET /v1/users/me: attestation_failed: .*not verified under the current policy .*(nothing was sent)$' \
  "$MT_WORK/keep.out" || fail "the old connection after a policy change: $(cat "$MT_WORK/keep.out")"
[ "$rc" = 0 ] || fail "pool kept across a policy change: exit $rc: $(cat "$MT_WORK/keep.out")"
[ "$(grep -c '^after: .*: ok$' "$MT_WORK/keep.out")" = 3 ] || fail "$(cat "$MT_WORK/keep.out")"
ok "with the pool kept, the connection verified under the old policy carries no request"

start_proxy
rc=0; "$MT_CLIENT_POOL" insecure "https://127.0.0.1:$PX" "$MT_WORK/admin.token" \
  "$MT_WORK/B.json" > "$MT_WORK/insecure.out" 2>&1 || rc=$?
stop_proxy
grep -q '^before: GET /healthz: ok$' "$MT_WORK/insecure.out" || fail "$(cat "$MT_WORK/insecure.out")"
[ "$rc" = 0 ] || fail "after insecure off: exit $rc: $(cat "$MT_WORK/insecure.out")"
[ "$(grep -c '^after: .*: ok$' "$MT_WORK/insecure.out")" = 3 ] || fail "$(cat "$MT_WORK/insecure.out")"
ok "after insecure mode is switched off no request goes over the unverified connection"
