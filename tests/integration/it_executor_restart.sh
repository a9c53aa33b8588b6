#!/usr/bin/env bash
# A scheduler restart does not touch tasks that remote executors run under a
# lease (mt_core_config.keep_leased; issue 14, failure case 1): the executor
# keeps renewing through the outage, reports to the restarted daemon, and the
# task finishes once, with no "task failed (restart)" or "task requeued
# (stop)". 1. kill -9 of the daemon mid-task; 2. a graceful stop (SIGTERM)
# mid-task. Workers wait at a gate file: orderings, not timings.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
B=$MESATEE_BIN
SLEEP=$(command -v sleep)
EXP=
cleanup() {
  if [ -n "$EXP" ]; then kill -KILL "$EXP" 2>/dev/null || true; fi
  if [ -f "$MT_WORK/started" ]; then
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$MT_WORK/started"
  fi
  mt_cleanup
}
trap cleanup EXIT
wait_for() { # wait_for WHAT CMD...: up to 60 s
  local what=$1; shift
  for _ in $(seq 1200); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}
cat >"$MT_WORK/w" <<EOF
#!/bin/bash
echo \$\$ >> '$MT_WORK/started'
while [ ! -e '$MT_WORK/gate' ]; do '$SLEEP' 0.05; done
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod +x "$MT_WORK/w"; : >"$MT_WORK/started"

id=$("$B" executor --data-dir "$MT_WORK/ex" --level soft --worker "$MT_WORK/w" --poll-ms 100 --print-identity) ||
  fail "executor --print-identity"
mt_executor_policy "$MT_WORK/executor-policy.json" 86400 "$id"
EPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# 60 s leases, renewed every 20 s (a failed renewal is retried at the next
# third): the lease holds while the daemon is back within 20 s of the stop,
# whatever the phase of the renewals. (15 s leases left a restart 5 s at
# worst, which a stop plus an ASan start on a loaded machine can exceed.)
SARGS=(--level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json"
  --executor-listen "127.0.0.1:$EPORT" --executor-lease-ms 60000 --shutdown-grace-s 1)
mt_start_server "${SARGS[@]}"
mt_gateway_policy "$MT_WORK/scheduler-policy.json"
"$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "https://127.0.0.1:$EPORT" \
  --data-dir "$MT_WORK/ex" --level soft --worker "$MT_WORK/w" --poll-ms 100 \
  --worker-start spawn --name exr >"$MT_WORK/ex.log" 2>&1 &
EXP=$!

mt_login admin
mt_add_user alice
FN=$(as alice function register --name e --builtin echo --arg "message=x:overridable")
st() { as alice --output json task show "$1" | jq -r .status; }
events() {
  as admin --output json audit list --limit 1000 |
    jq -r --arg t "task:$1" '[.entries[] | select(.object == $t and (.action | startswith("task "))) | .action] | join(",")'
}
echo_task() {
  local t; t=$(as alice task create --function "$FN" --arg "message=$1")
  as alice task approve "$t" >/dev/null 2>&1 || true
  as alice task invoke "$t" >/dev/null
  printf '%s' "$t"
}
started() { [ "$(wc -l <"$MT_WORK/started")" -ge "$1" ]; }

for round in kill term; do
  rm -f "$MT_WORK/gate"
  n=$(($(wc -l <"$MT_WORK/started") + 1))
  T=$(echo_task "$round")
  wait_for "the executor's worker" started "$n"
  [ "$(st "$T")" = running ] || fail "$round: task $(st "$T"), want running"
  if [ $round = kill ]; then kill -KILL "$MT_PID"; else kill -TERM "$MT_PID"; fi
  wait "$MT_PID" 2>/dev/null || true
  mt_start_server "${SARGS[@]}"
  [ "$(st "$T")" = running ] || fail "$round: after the restart the task is $(st "$T"), want running"
  touch "$MT_WORK/gate"
  as alice task wait "$T" --timeout 60 >/dev/null || fail "$round: task $(st "$T"): $(tail -5 "$MT_WORK/ex.log")"
  [ "$(as alice --output json task show "$T" | jq -r .result.return_value)" = "$round" ] ||
    fail "$round: wrong result: $(as alice --output json task show "$T")"
  ev=$(events "$T")
  [ "$(grep -o 'task finished' <<<"$ev" | wc -l)" = 1 ] || fail "$round: audit: $ev"
  grep -q "restart\|requeued" <<<"$ev" && fail "$round: the restart touched the task: $ev"
  ok "$round of the daemon mid-task: the executor's lease held, the task finished once ($ev)"
done
