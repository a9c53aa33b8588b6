#!/usr/bin/env bash
# A node that dies and never comes back (issue 14, docs/cluster.md "A node
# that never comes back"): node A (KeyStore node) and node B (joined) on one
# throw-away PostgreSQL (tests/pg/pg-temp.sh), both with
# --node-dead-after-ms 1500 and one local worker. A task is held at a gate
# (a wrapper in front of the real worker, the same file on both nodes, so
# their measurements agree) on whichever node claims it; that node is
# killed (kill -9) and the other one requeues the task after the grace
# period and runs it once: status finished, the echoed value, and in the
# audit chain one "task requeued (node stopped)", two "task running", one
# "task finished". Orderings, not timings: the timeouts are safety nets.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
PGT=$(dirname "$0")/../pg/pg-temp.sh
env_out=$(bash "$PGT" start) || { rc=$?; [ "$rc" = 77 ] && exit 77; fail "pg-temp.sh start: exit $rc"; }
eval "$env_out"
B_PID=
B_DATA=$MT_WORK/node-b
ALL_PIDS=()
stop_all() {
  local p
  for p in "${ALL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  touch "$GATE" 2>/dev/null || true # a worker left at the gate by the killed node goes on and ends
}
trap 'stop_all; bash "$PGT" stop "$MT_PG_DIR" >/dev/null 2>&1 || true; mt_cleanup' EXIT

GATE=$MT_WORK/gate
STARTED=$MT_WORK/started
SLEEP=$(command -v sleep)
# the worker starts with an empty environment: absolute paths only
cat >"$MT_WORK/gated-worker" <<EOF
#!/bin/bash
echo started >> '$STARTED'
while [ ! -e '$GATE' ]; do [ -d '$MT_WORK' ] || exit 9; '$SLEEP' 0.05; done  # (ends when the test's directory is gone)
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod +x "$MT_WORK/gated-worker"
# the same settings on both nodes (B's measurement must be A's)
NODE_ARGS=(--level soft --store "$MT_PG_URL" --worker "$MT_WORK/gated-worker" --workers 1
  --worker-start spawn --node-dead-after-ms 1500)

mt_start_server "${NODE_ARGS[@]}" --keystore-listen 127.0.0.1:0
A_PID=$MT_PID
ALL_PIDS+=("$A_PID")
A_URL=$MESATEE_SERVER
unset MESATEE_CA
KS_URL=$(cat "$MT_DATA/keystore.url")
mt_gateway_policy "$MT_WORK/ks-policy.json"
export MESATEE_POLICY=$MT_WORK/ks-policy.json
mt_login admin
mt_add_user alice

start_b() { # start_b LOG: background; sets B_PID
  mkdir -p "$B_DATA"
  [ -e "$B_DATA/objects" ] || ln -s "$MT_DATA/objects" "$B_DATA/objects"
  "$MESATEE_BIN" serve --data-dir "$B_DATA" --listen 127.0.0.1:0 "${NODE_ARGS[@]}" \
    --admin-password-file "$MT_WORK/admin.pw" \
    --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/ks-policy.json" >"$1" 2>&1 &
  B_PID=$!
  ALL_PIDS+=("$B_PID")
}
# B's platform key is allowed on A after a first, refused start
start_b "$MT_WORK/b1.log"
rc=0; wait "$B_PID" || rc=$?
[ "$rc" != 0 ] || fail "B joined without its key allowed"
B_PK=$(sed -n 's/.*TEE level soft: evidence measurement [0-9a-f]*, platform key \([0-9a-f]\{64\}\).*/\1/p' "$MT_WORK/b1.log" | head -n1)
[ ${#B_PK} = 64 ] || fail "no platform key in B's log: $(tail -n 3 "$MT_WORK/b1.log")"
as admin admin release allow --kind soft_platform_key "$B_PK" >/dev/null || fail "release allow B's key"
start_b "$MT_WORK/b2.log"
for _ in $(seq 1200); do
  [ -s "$B_DATA/server.url" ] && break
  kill -0 "$B_PID" 2>/dev/null || fail "B exited: $(tail -n 5 "$MT_WORK/b2.log")"
  sleep 0.05
done
[ -s "$B_DATA/server.url" ] || fail "B did not start"
B_URL=$(cat "$B_DATA/server.url")
jq --arg k "$B_PK" '.soft_platform_keys += [$k]' "$MT_WORK/ks-policy.json" >"$MT_WORK/both.json"
export MESATEE_POLICY=$MT_WORK/both.json
ok "two nodes on one PostgreSQL store (A the KeyStore node, B joined)"

# a task held at the gate on whichever node claims it
FN=$(as alice function register --name e --builtin echo --arg "message=x:overridable")
T=$(as alice task create --function "$FN" --arg "message=survived")
as alice task approve "$T" >/dev/null && as alice task invoke "$T" >/dev/null || fail "invoke"
for _ in $(seq 1200); do [ -s "$STARTED" ] && break; sleep 0.05; done
[ -s "$STARTED" ] || fail "no worker started"
if grep -q "task $T running" "$MT_WORK/server.log"; then
  X=A; X_PID=$A_PID; Y_URL=$B_URL; Y_LOG=$MT_WORK/b2.log
elif grep -q "task $T running" "$MT_WORK/b2.log"; then
  X=B; X_PID=$B_PID; Y_URL=$A_URL; Y_LOG=$MT_WORK/server.log
else
  fail "no node logs the claim of $T"
fi
on_y() { MESATEE_SERVER=$Y_URL as "$@"; }
[ "$(on_y alice --output json task show "$T" | jq -r .status)" = running ] || fail "the task is not running"

# the node that runs it dies for good; the survivor takes it after the grace
kill -KILL "$X_PID"
wait "$X_PID" 2>/dev/null || true
[ "$X" = A ] && MT_PID=
touch "$GATE"
on_y alice task wait "$T" --timeout 120 >/dev/null || fail "the task did not finish on the survivor: $(on_y alice task show "$T")"
show=$(on_y alice --output json task show "$T")
[ "$(jq -r .status <<<"$show")" = finished ] || fail "task: $show"
[ "$(jq -r .result.return_value <<<"$show")" = survived ] || fail "task result: $show"
grep -q "task $T: the node that ran it stopped (node id [0-9a-f]\{16\}, without its liveness lock" "$Y_LOG" ||
  fail "the survivor does not log the requeue: $(grep "$T" "$Y_LOG" | tail -n 3)"
al=$(on_y admin --output json audit list --limit 1000)
cnt() { jq --arg o "task:$T" --arg a "$1" '[.entries[] | select(.object == $o and .action == $a)] | length' <<<"$al"; }
[ "$(cnt "task requeued (node stopped)")" = 1 ] || fail "requeue entries: $(cnt "task requeued (node stopped)")"
[ "$(cnt "task running")" = 2 ] || fail "claims: $(cnt "task running")"
[ "$(cnt "task finished")" = 1 ] || fail "outcomes: $(cnt "task finished")"
ok "node $X killed mid-task: the survivor requeued it after --node-dead-after-ms and ran it once"

# the survivor itself is not taken for stopped: a second task runs there
T2=$(on_y alice task create --function "$FN" --arg "message=again")
on_y alice task approve "$T2" >/dev/null && on_y alice task invoke "$T2" >/dev/null || fail "invoke 2"
on_y alice task wait "$T2" --timeout 120 >/dev/null || fail "second task: $(on_y alice task show "$T2")"
ok "the survivor goes on serving"
