#!/usr/bin/env bash
# bench/login/run.sh [ROUNDS] [BURST]: /healthz latency while a burst of bad
# logins (Argon2id each) is in flight, against the same daemon with no burst
# (the anchor), in interleaved rounds. Issue 8 item 7: hashing runs on the
# gateway's worker threads, so the two should be close; before, every login
# in the burst stalled the event loop. Each round's burst comes from its own
# loopback source address (127.0.0.N) so the per-address login limit does not
# answer it with 429s. MESATEE_BIN picks the binary (default build/).
# Prints median and max healthz milliseconds per round and condition.
# Every round is printed (no-burst is the anchor, interleaved with the burst).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
export MESATEE_BIN=${MESATEE_BIN:-$PWD/build/src/cli/mesatee}
ROUNDS=${1:-5}
BURST=${2:-24}
source tests/integration/lib.sh
bench_header "login (rounds $ROUNDS, burst $BURST)"
mt_start_server
/usr/bin/python3 - "$MESATEE_CA" "${MESATEE_SERVER#https://}" "$ROUNDS" "$BURST" <<'PY'
import json, secrets, socket, ssl, statistics, sys, threading, time
ca, hostport, rounds, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = hostport.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False

def conn(src="127.0.0.1"):
    raw = socket.create_connection((host, int(port)), source_address=(src, 0))
    return ctx.wrap_socket(raw, server_hostname=host)

def request(s, text):
    s.sendall(text.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data

def healthz_ms(n, stop=None):
    out = []
    for _ in range(n):
        if stop is not None and stop.is_set():
            break
        s = conn()
        t0 = time.monotonic()
        request(s, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out.append((time.monotonic() - t0) * 1000)
        s.close()
        time.sleep(0.02)
    return out

def bad_login(src):
    s = conn(src)
    body = json.dumps({"username": "u" + secrets.token_hex(4), "password": "wrong-password"})
    request(s, f"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}")
    s.close()

print(f"{'round':>5} {'condition':>10} {'n':>4} {'median_ms':>10} {'max_ms':>8}")
for r in range(rounds):
    a = healthz_ms(20)
    print(f"{r:>5} {'no burst':>10} {len(a):>4} {statistics.median(a):>10.2f} {max(a):>8.2f}")
    src = f"127.0.0.{10 + r}"
    stop = threading.Event()
    ts = [threading.Thread(target=bad_login, args=(src,)) for _ in range(burst)]
    for t in ts: t.start()
    time.sleep(0.05)
    res = []
    h = threading.Thread(target=lambda: res.extend(healthz_ms(1000, stop)))
    h.start()
    for t in ts: t.join()
    stop.set()
    h.join()
    if res:
        print(f"{r:>5} {'burst':>10} {len(res):>4} {statistics.median(res):>10.2f} {max(res):>8.2f}")
PY
bench_footer login
