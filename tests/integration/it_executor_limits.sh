#!/usr/bin/env bash
# Resource limits of the executor API (`serve --remote-executors`,
# docs/threat-model.md "Resource exhaustion"):
# - a peer that never finishes its handshake (one byte now and then, each
#   within the socket's per-read timeout) is cut by the listener's deadline,
#   and does not stop an attested executor from being served meanwhile
#   (the old listener served one connection at a time, with only a per-read
#   timeout: such a peer held it for ever);
# - JSON bodies count against a total of buffered bytes
#   (--executor-max-buffered-mib): a report body above it (sent by the
#   exec_post test client) is answered 503 and not read, the daemon stays up;
# - outputs above that total still get through: they stream to disk
#   (POST /v1/executor/output) and are never buffered (docs/design.md
#   "Executor transfers").
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
B=$MESATEE_BIN
EX=$MT_WORK/executor
SLOW_PID=
trap 'if [ -n "$SLOW_PID" ]; then kill "$SLOW_PID" 2>/dev/null || true; fi; mt_cleanup' EXIT

: "${MT_EXEC_POST:?MT_EXEC_POST must point at the exec_post test client}"
id=$("$B" executor --data-dir "$EX" --level soft --print-identity) || fail "executor --print-identity"
emeas=$(jget "$id" .measurement); epk=$(jget "$id" .soft_platform_key)
pid=$("$MT_EXEC_POST" "$MT_WORK/c1" id 2>/dev/null) || fail "exec_post id"
cat >"$MT_WORK/executor-policy.json" <<EOP
{"mesatee_policy": 1, "role": "executor", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"executor": {"measurement": ["$emeas", "$(jget "$pid" .measurement)"]}},
 "soft_platform_keys": ["$epk", "$(jget "$pid" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen 127.0.0.1:0 --executor-max-buffered-mib 1
EURL=$(cat "$MT_DATA/executor.url")
EPORT=${EURL##*:}
mt_gateway_policy "$MT_WORK/scheduler-policy.json"

mt_login admin
for u in alice bob; do mt_add_user "$u"; done
# 150,000 common ids: the output (and so the report) is well above 1 MiB
seq -f "id%g" 1 150000 > "$MT_WORK/alice.txt"
cp "$MT_WORK/alice.txt" "$MT_WORK/bob.txt"
mt_psi2_invoke
status() { as alice task show "$T" --output json | jq -r .status; }

# A slow, unauthenticated peer, started right before the executor (the
# listener cuts it 15 s after it connected: started before the setup above,
# as it was, a setup slower than that on a loaded machine saw it cut before
# the check below): a TLS record header byte by byte, one every
# 2 s (well inside the 30 s per-read timeout), until the server closes.
cat >"$MT_WORK/slow.py" <<'EOP'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
s.settimeout(1)
for b in b"\x16\x03\x01\x02\x00" + b"\x01" * 600:
    try:
        s.send(bytes([b]))
        if s.recv(1) == b"":
            print("closed by the server"); sys.exit(0)
    except socket.timeout:
        pass
    except OSError:
        print("closed by the server"); sys.exit(0)
    time.sleep(1)
print("still open"); sys.exit(1)
EOP
python3 "$MT_WORK/slow.py" "$EPORT" >"$MT_WORK/slow.log" 2>&1 &
SLOW_PID=$!
for _ in $(seq 300); do
  grep -q connected "$MT_WORK/slow.log" && break
  kill -0 "$SLOW_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q connected "$MT_WORK/slow.log" || fail "the slow peer did not connect: $(cat "$MT_WORK/slow.log")"

kill -0 "$SLOW_PID" 2>/dev/null || fail "the slow peer ended early: $(cat "$MT_WORK/slow.log")"
# While the slow peer holds its connection, the executor is served: it claims
# the task and streams its outputs (over 1 MiB each, above the 1 MiB total of
# buffered bodies: they are not buffered) and the task finishes.
timeout 90 "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
  --data-dir "$EX" --level soft --max-tasks 1 >"$MT_WORK/executor.log" 2>&1 ||
  fail "executor did not finish (blocked by the slow peer?): $(tail -n 5 "$MT_WORK/executor.log")"
[ "$(status)" = finished ] || fail "task status $(status): $(tail -n 5 "$MT_WORK/executor.log")"
as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/ra.txt" >/dev/null ||
  fail "alice's result"
[ "$(wc -l <"$MT_WORK/ra.txt")" = 150000 ] || fail "alice's result has $(wc -l <"$MT_WORK/ra.txt") lines"
ok "executor served while a slow peer is connected; outputs above the buffered total streamed"
# A JSON body above the total is answered 503 and not read.
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$MT_WORK/big-report"
out=$("$MT_EXEC_POST" "$MT_WORK/c1" post "$MT_WORK/scheduler-policy.json" "${EURL#https://}" \
  /v1/executor/report "$MT_WORK/big-report" 2>/dev/null) || true
grep -q "^HTTP 503" <<<"$out" || fail "a 2 MiB report body was not refused with 503: $out"
grep -q "bytes already buffered" "$MT_WORK/server.log" || fail "no refusal in the server log"
curl -sf --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz" >/dev/null || fail "daemon not healthy"
ok "a report body above the buffered total is answered 503; the daemon stays up"

# The slow peer is cut by the handshake deadline (15 s), not held for ever.
wait "$SLOW_PID"; rc=$?; SLOW_PID=
[ "$rc" = 0 ] || fail "the slow peer was never disconnected: $(cat "$MT_WORK/slow.log")"
grep -q "connection past its deadline closed" "$MT_WORK/server.log" || fail "no deadline in the log"
ok "a peer that never completes its handshake is disconnected at the deadline"
