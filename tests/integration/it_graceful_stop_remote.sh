#!/usr/bin/env bash
# Graceful stop with remote executors (issue 9, leases of issue 14): a task
# handed to a remote executor and still running when the grace period ends is
# left to its lease (mt_core_config.keep_leased), not failed or requeued at
# the stop; here its executor dies during the outage, so after the restart
# the lease (2 s) runs out, the task goes back to the queue ("task requeued
# (lease expired)"), an executor runs it again and it finishes; its integrity
# MACs still verify (the claim re-checks the whole binding). A remote run
# whose cancellation was requested ends canceled at the stop instead.
# (it_executor_restart: an executor that survives the outage finishes it.) The executor's worker is held at a gate: orderings,
# not timings (timeouts are safety nets).
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
B=$MESATEE_BIN
EX=$MT_WORK/executor
EX_PID=
trap 'if [ -n "$EX_PID" ]; then kill "$EX_PID" 2>/dev/null || true; fi; mt_cleanup' EXIT
GATE=$MT_WORK/gate
STARTED=$MT_WORK/started
SLEEP=$(command -v sleep)
cat > "$MT_WORK/gated-worker" <<EOF
#!/bin/bash
echo \$\$ >> '$STARTED'
while [ ! -e '$GATE' ]; do [ -d '$MT_WORK' ] || exit 9; '$SLEEP' 0.05; done  # (ends when the test's directory is gone)
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod +x "$MT_WORK/gated-worker"

id=$("$B" executor --data-dir "$EX" --level soft --worker "$MT_WORK/gated-worker" --poll-ms 100 --max-tasks 1 --print-identity) ||
  fail "executor --print-identity"
cat >"$MT_WORK/executor-policy.json" <<EOP
{"mesatee_policy": 1, "role": "executor", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"executor": {"measurement": ["$(jget "$id" .measurement)"]}},
 "soft_platform_keys": ["$(jget "$id" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
start() {
  mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
    --executor-listen 127.0.0.1:0 --shutdown-grace-s 1 --executor-lease-ms 2000
  EURL=$(cat "$MT_DATA/executor.url")
  if [ ! -f "$MT_WORK/scheduler-policy.json" ]; then
    mt_gateway_policy "$MT_WORK/scheduler-policy.json"
  fi
}
executor() { # executor LOG: one task, in the background
  "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" --data-dir "$EX" \
    --level soft --worker "$MT_WORK/gated-worker" --poll-ms 100 --max-tasks 1 >"$1" 2>&1 &
  EX_PID=$!
}
status() { as alice --output json task show "$T" | jq -r .status; }

start
mt_login admin
mt_add_user alice
FN=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
T=$(as alice task create --function "$FN" --arg message=remote)
as alice task approve "$T" >/dev/null 2>&1 || true
as alice task invoke "$T" >/dev/null
executor "$MT_WORK/executor1.log"
for _ in $(seq 1200); do [ -s "$STARTED" ] && break; sleep 0.05; done
[ -s "$STARTED" ] || fail "the executor's worker never started: $(cat "$MT_WORK/executor1.log")"
[ "$(status)" = running ] || fail "task is $(status), want running"
ok "task $T running on the remote executor (held at the gate)"

PID=$MT_PID
kill -TERM "$PID"
for _ in $(seq 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$PID" 2>/dev/null && fail "the daemon did not stop"
rc=0; wait "$PID" || rc=$?; MT_PID=
[ "$rc" = 0 ] || fail "daemon exit status $rc"
grep -q "running task(s) back in the queue" "$MT_WORK/server.log" &&
  fail "the leased remote task was requeued at the stop"
ok "grace period over: the leased remote task was left to its lease"
touch "$GATE"                                        # the old run ends; its report has nowhere to go
for _ in $(seq 1200); do kill -0 "$EX_PID" 2>/dev/null || break; sleep 0.05; done
kill "$EX_PID" 2>/dev/null || true; wait "$EX_PID" 2>/dev/null || true; EX_PID=

start
case "$(status)" in running|staged) ;; *) fail "after the restart the task is $(status)" ;; esac
for _ in $(seq 1200); do [ "$(status)" = staged ] && break; sleep 0.05; done
[ "$(status)" = staged ] || fail "the lease of the dead executor did not run out: $(status)"
ok "after the restart the dead executor's lease ran out and the task is staged again"
executor "$MT_WORK/executor2.log"
rc=0; as alice task wait "$T" --timeout 300 >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "task after the restart: exit $rc, $(status): $(cat "$MT_WORK/executor2.log")"
rv=$(as alice --output json task show "$T" | jq -r '.result.return_value // .return_value')
[ "$rv" = remote ] || fail "return value $rv"
ev=$(as admin --output json audit list --limit 1000 |
       jq -r --arg t "task:$T" '[.entries[] | select(.object == $t and (.action | startswith("task "))) | .action] | join(",")')
case "$ev" in *"task running"*"task requeued (lease expired)"*"task running"*"task finished"*) ;; *) fail "audit trail: $ev" ;; esac
ok "a fresh executor ran the requeued task to the end; audit: $ev"
wait "$EX_PID" 2>/dev/null || true; EX_PID=

# A remote run whose cancellation was requested is canceled at the stop, not requeued.
rm -f "$GATE"
n=$(wc -l < "$STARTED")
T2=$(as alice task create --function "$FN" --arg message=cancel)
as alice task approve "$T2" >/dev/null 2>&1 || true
as alice task invoke "$T2" >/dev/null
executor "$MT_WORK/executor3.log"
for _ in $(seq 1200); do [ "$(wc -l < "$STARTED")" -gt "$n" ] && break; sleep 0.05; done
[ "$(wc -l < "$STARTED")" -gt "$n" ] || fail "the executor's worker never started for T2"
as alice task cancel "$T2" >/dev/null
[ "$(as alice --output json task show "$T2" | jq -r .status)" = running ] || fail "T2 not running"
mt_stop_server
touch "$GATE"
kill "$EX_PID" 2>/dev/null || true; wait "$EX_PID" 2>/dev/null || true; EX_PID=
start
[ "$(as alice --output json task show "$T2" | jq -r .status)" = canceled ] ||
  fail "T2 is $(as alice --output json task show "$T2" | jq -r .status), want canceled"
ok "a remote run canceled before the stop ends canceled, not requeued"
mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "audit chain does not verify"
ok "audit chain verifies"
