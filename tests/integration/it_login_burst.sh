#!/usr/bin/env bash
# Issue 8 item 7: password hashing (Argon2id) runs on the gateway's worker
# threads outside the store lock, so a burst of bad logins does not stall
# /healthz or other users' requests: requests issued after the burst was sent
# are answered before the burst's last login answer (an ordering, not a
# timing). Failed logins are rate limited per account and per client address
# (429 with Retry-After), before any hashing.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 0; }
mt_start_server
mt_login admin
mt_add_user alice
TOK_A=$(cat "$MT_WORK/alice.token")
HOSTPORT=${MESATEE_SERVER#https://}

cat > "$MT_WORK/burst.py" <<'PY'
import json, socket, ssl, sys, threading, secrets
ca, hostport, token = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = hostport.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
order, lock = [], threading.Lock()
N = 16
sent = threading.Barrier(N + 1)

def conn():
    return ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)

def read_status(s):
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])

def login(i):
    s = conn()
    body = json.dumps({"username": "nobody" + secrets.token_hex(4), "password": "wrong-password"})
    s.sendall((f"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode())
    sent.wait()
    st = read_status(s)
    with lock:
        order.append(("login", st))
    s.close()

def get(name, path, auth):
    s = conn()
    h = f"Authorization: Bearer {token}\r\n" if auth else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{h}Connection: close\r\n\r\n".encode())
    st = read_status(s)
    with lock:
        order.append((name, st))
    s.close()

ts = [threading.Thread(target=login, args=(i,)) for i in range(N)]
for t in ts: t.start()
sent.wait()  # every login request of the burst is on the wire
others = [threading.Thread(target=get, args=("healthz", "/healthz", False)),
          threading.Thread(target=get, args=("me", "/v1/users/me", True))]
for t in others: t.start()
for t in ts + others: t.join()
print(json.dumps(order))
PY
order=$(python3 "$MT_WORK/burst.py" "$MESATEE_CA" "$HOSTPORT" "$TOK_A")
echo "completion order: $order"
[ "$(jq '[.[] | select(.[0] == "login" and .[1] == 401)] | length' <<<"$order")" = 16 ] ||
  fail "every login of the burst must get 401: $order"
last_login=$(jq '[to_entries[] | select(.value[0] == "login") | .key] | max' <<<"$order")
for n in healthz me; do
  idx=$(jq --arg n "$n" '[to_entries[] | select(.value[0] == $n) | .key][0]' <<<"$order")
  st=$(jq --arg n "$n" '[.[] | select(.[0] == $n) | .[1]][0]' <<<"$order")
  [ "$st" = 200 ] || fail "$n during the burst: HTTP $st"
  [ "$idx" -lt "$last_login" ] || fail "$n (answer #$idx) waited for the burst (last login answer #$last_login)"
done
ok "/healthz and another user's request were answered while the burst of 16 bad logins was in flight"

# login_code USER PASSWORD: prints "STATUS RETRY-AFTER"
login_code() {
  curl -sS --tlsv1.3 --cacert "$MESATEE_CA" -D "$MT_WORK/hdr" -o "$MT_WORK/body" -w '%{http_code}' \
    -H "Content-Type: application/json" --data "{\"username\":\"$1\",\"password\":\"$2\"}" \
    "$MESATEE_SERVER/v1/auth/login" > "$MT_WORK/code"
  printf '%s %s' "$(cat "$MT_WORK/code")" \
    "$(awk 'tolower($1) == "retry-after:" {print $2}' "$MT_WORK/hdr" | tr -d '\r')"
}
# Per account: a few failures, then 429 with Retry-After, even with the right password.
got=
for i in $(seq 6); do
  r=$(login_code alice "wrong-$i")
  case "$r" in 401*) ;; 429*) got=$r; break ;; *) fail "alice bad login $i: $r" ;; esac
done
[ -n "$got" ] || fail "no 429 after 6 failed logins for one account"
[ "${got#429 }" -gt 0 ] 2>/dev/null || fail "429 without a Retry-After: '$got'"
r=$(login_code alice "$(cat "$MT_WORK/alice.pw")")
[ "${r%% *}" = 429 ] || fail "locked account logged in with the right password: $r"
ok "account limit: 429 with Retry-After ${got#429 } s, also for the right password"
# Per address: failures for many accounts from one address end in 429 too.
got=
for i in $(seq 25); do
  r=$(login_code "someone$i" wrong-password)
  case "$r" in 401*) ;; 429*) got=$r; break ;; *) fail "bad login $i: $r" ;; esac
done
[ -n "$got" ] || fail "no 429 after 25 failed logins from one address"
grep -q address "$MT_WORK/body" || fail "429 does not name the address limit: $(cat "$MT_WORK/body")"
ok "address limit: 429 with Retry-After ${got#429 } s"
# Other users' tokens keep working; the limits are counted in the audit log.
as alice file list >/dev/null || fail "alice's token stopped working"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz" | grep -q ok || fail "healthz"
ok "tokens and health unaffected by the login limits"
