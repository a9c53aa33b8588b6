#!/usr/bin/env bash
# Separate executor role with mutual attestation (docs/design.md "Separate
# roles"): `serve --remote-executors` runs no task itself; a PSI task stays
# staged until an attested `mesatee executor` claims it over the executor API,
# runs it with the sandboxed worker and reports the outputs; each party
# decrypts its own result. An executor whose measurement is not in the
# executor policy, and a client without a certificate, are refused in the
# handshake and get no task; the public gateway does not serve the API.
# A transfer whose node fails in the TLS handshake (accepted, then closed:
# no policy verdict) is retried on the next --scheduler node (the task was
# failed when such a failure counted as a refusal).
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
B=$MESATEE_BIN
EX=$MT_WORK/executor
EX_PID=
trap 'if [ -n "$EX_PID" ]; then kill "$EX_PID" 2>/dev/null || true; fi; mt_cleanup' EXIT

# The executor's own identity (its data dir, this binary, the worker, its settings).
id=$("$B" executor --data-dir "$EX" --level soft --print-identity) || fail "executor --print-identity"
emeas=$(jget "$id" .measurement); epk=$(jget "$id" .soft_platform_key)
[ ${#emeas} -eq 64 ] && [ ${#epk} -eq 64 ] || fail "no executor identity: $id"
cat >"$MT_WORK/executor-policy.json" <<EOP
{"mesatee_policy": 1, "role": "executor", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"executor": {"measurement": ["$emeas"]}},
 "soft_platform_keys": ["$epk"], "max_evidence_age_s": 86400}
EOP

mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen 127.0.0.1:0
[ -s "$MT_DATA/executor.url" ] || fail "no executor.url"
EURL=$(cat "$MT_DATA/executor.url")
mt_gateway_policy "$MT_WORK/scheduler-policy.json"
ok "daemon serves the executor API on $EURL"

mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"
mt_psi2_invoke
status() { as alice task show "$T" --output json | jq -r .status; }
sleep 1
[ "$(status)" = staged ] || fail "the daemon ran the task itself: $(status)"
ok "with --remote-executors the daemon runs no task itself"

# A client without a certificate: no response, no task.
if out=$(curl -sk --max-time 5 -X POST "$EURL/v1/executor/claim" 2>&1); then
  fail "executor API answered a client without a certificate: $out"
fi
[ "$(status)" = staged ] || fail "task left staged after a client without certificate"
ok "client without a certificate refused in the handshake"

# The public gateway does not serve the executor API.
code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$MT_WORK/admin.token" 2>/dev/null || true)" \
  --cacert "$MT_DATA/tls/server-cert.pem" "$MESATEE_SERVER/v1/executor/claim" || true)
[ "$code" != 200 ] && [ "$code" != 204 ] || fail "gateway serves the executor API ($code)"
[ "$(status)" = staged ] || fail "task left staged after the gateway probe"
ok "the public gateway does not serve the executor API (HTTP $code)"

# An executor with other settings (other measurement): refused, gets no task.
"$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" --data-dir "$EX" \
  --level soft --poll-ms 100 --max-tasks 1 >"$MT_WORK/bad-executor.log" 2>&1 &
EX_PID=$!
# wait (60 s at most) for its first refused handshake and the scheduler's log
# line, not a fixed time: a loaded machine (ASan) can take seconds to start it
for _ in $(seq 600); do
  grep -q "refused this executor" "$MT_WORK/bad-executor.log" &&
    grep -q "measurements.executor.measurement" "$MT_WORK/server.log" && break
  kill -0 "$EX_PID" 2>/dev/null || break
  sleep 0.1
done
kill "$EX_PID" 2>/dev/null || fail "the mismatching executor exited (did it get a task?)"
wait "$EX_PID" 2>/dev/null || true; EX_PID=
grep -q "refused this executor" "$MT_WORK/bad-executor.log" ||
  fail "bad executor not refused: $(tail -n 5 "$MT_WORK/bad-executor.log")"
grep -q "measurements.executor.measurement" "$MT_WORK/server.log" ||
  fail "scheduler did not log the policy refusal"
[ "$(status)" = staged ] || fail "a mismatching executor got the task"
ok "executor with a different measurement refused in the handshake; task stays staged"

# The matching executor claims, runs and reports the task.
timeout 60 "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
  --data-dir "$EX" --level soft --max-tasks 1 >"$MT_WORK/executor.log" 2>&1 ||
  fail "executor failed: $(tail -n 10 "$MT_WORK/executor.log")"
as alice task wait "$T" --timeout 60 >/dev/null || fail "task did not finish: $(status)"
[ "$(status)" = finished ] || fail "task status $(status)"
want=$(seq -f "id%g" 201 300 | LC_ALL=C sort)
as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/ra.txt" >/dev/null
as bob task result "$T" --slot rb --key "$MT_WORK/bob.out.key" --out "$MT_WORK/rb.txt" >/dev/null
[ "$(LC_ALL=C sort "$MT_WORK/ra.txt")" = "$want" ] || fail "alice's result is wrong"
[ "$(LC_ALL=C sort "$MT_WORK/rb.txt")" = "$want" ] || fail "bob's result is wrong"
ok "remote executor ran PSI; alice and bob decrypt the 100 common ids"

# A task that signs with a KeyStore key (docs/keystore.md, "Keys in tasks") on the
# executor: the key travels in the claimed job like the file keys, the use is
# audited, the signature verifies with the key's public key.
as alice key create rk --type ecdsa-p256 >/dev/null
as alice --output json key read rk | jq -r '.data.keys["1"].public_key' >"$MT_WORK/rk.pub"
printf 'remote doc\n' >"$MT_WORK/doc.txt"
as bob file encrypt --in "$MT_WORK/doc.txt" --out "$MT_WORK/doc.enc" --key-out "$MT_WORK/doc.key" >/dev/null
DOC=$(as bob file register "$(as bob file upload "$MT_WORK/doc.enc")" --key "$MT_WORK/doc.key")
KFN=$(as alice function register --name kss --builtin keystore_sign --public --input-slot data \
  --arg key=alice/rk)
T2=$(as alice task create --function "$KFN" --input data=bob)
as bob task assign "$T2" --input "data=$DOC" >/dev/null
as alice task approve "$T2" >/dev/null; as bob task approve "$T2" >/dev/null
as alice task invoke "$T2" >/dev/null
# ... through `--scheduler P,EURL` where P is a node that fails in the TLS
# handshake after its first connection (a hung or dying node: TCP accepted,
# then closed with no policy verdict): the claim goes through P, the input
# transfer's handshake with P fails, the transfer moves to EURL and is
# retried there (the task was failed: the failed handshake counted as a
# refusal, which is never retried).
cat >"$MT_WORK/flaky.py" <<'EOP'
import socket, sys, threading
up = (sys.argv[1], int(sys.argv[2]))
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(16)
open(sys.argv[3] + ".tmp", "w").write(str(ls.getsockname()[1]))
import os; os.rename(sys.argv[3] + ".tmp", sys.argv[3])
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
n = 0
while True:
    c, _ = ls.accept(); n += 1
    print("connection", n, flush=True)
    if n == 1: # the claim: passed to the node
        u = socket.create_connection(up)
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    else: # accepted, then closed in the handshake
        try: c.recv(4096)
        except OSError: pass
        c.close()
EOP
EHP=${EURL#https://}
python3 "$MT_WORK/flaky.py" "${EHP%:*}" "${EHP##*:}" "$MT_WORK/flaky.port" >"$MT_WORK/flaky.log" 2>&1 &
FLAKY_PID=$!
trap 'kill "$FLAKY_PID" 2>/dev/null || true; if [ -n "$EX_PID" ]; then kill "$EX_PID" 2>/dev/null || true; fi; mt_cleanup' EXIT
for _ in $(seq 1200); do [ -s "$MT_WORK/flaky.port" ] && break; sleep 0.05; done
[ -s "$MT_WORK/flaky.port" ] || fail "the flaky node did not start: $(cat "$MT_WORK/flaky.log")"
PURL=https://127.0.0.1:$(cat "$MT_WORK/flaky.port")
timeout 60 "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$PURL,$EURL" \
  --data-dir "$EX" --level soft --max-tasks 1 >"$MT_WORK/executor2.log" 2>&1 ||
  fail "executor failed: $(tail -n 10 "$MT_WORK/executor2.log")"
line=$(as alice task wait "$T2" --timeout 60) || fail "keystore task: $line $(tail -n 10 "$MT_WORK/executor2.log")"
grep -q "connection 2" "$MT_WORK/flaky.log" || fail "no transfer went to the flaky node: $(cat "$MT_WORK/flaky.log")"
grep -q "scheduler $PURL failed (attested TLS handshake with the scheduler failed at .*unreachable or no answer.*); moving to $EURL" \
  "$MT_WORK/executor2.log" || fail "the executor did not move on: $(tail -n 10 "$MT_WORK/executor2.log")"
ok "a transfer whose node fails in the TLS handshake is retried on the next node"
printf '%s' "${line#finished: }" | base64 -d >"$MT_WORK/doc.sig"
openssl dgst -sha256 -verify "$MT_WORK/rk.pub" -signature "$MT_WORK/doc.sig" "$MT_WORK/doc.txt" \
  >/dev/null || fail "the remote executor's signature does not verify"
[ "$(as alice --output json task show "$T2" | jq -r .metering.key_signs)" = 1 ] ||
  fail "the remote signature is not metered: $(as alice --output json task show "$T2" | jq -c .metering)"
as bob --output json audit list --limit 1000 | jq -r '.entries[].action' |
  grep -qx "task signs with KeyStore key alice/rk v1" || fail "the remote key use is not audited"
ok "remote executor signed with alice's KeyStore key; the signature verifies; audited, metered (key_signs 1)"
