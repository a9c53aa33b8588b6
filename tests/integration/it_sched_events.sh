#!/usr/bin/env bash
# The scheduler wakes on events and groups its commits (issue 13):
# - a task invoked while the scheduler sleeps is claimed because the invoke
#   woke it, not by a timer: /metrics counts wake-ups by cause, and the
#   timer count stays 0 (the only timed sleep is the retry after a failed
#   claim); without the wake the task would never start and the wait fails;
# - claim on invoke: that task's claim commits with its invoke (counted in
#   /metrics; the scheduler commits only the outcome; audit order kept);
# - group commit: a thread that stores a task's outcome claims the next
#   queued task in the same transaction, so three queued tasks behind a
#   running one cost 3 commits for 5 state changes (counted in /metrics);
#   the audit log still has every "task running" / "task finished" entry, in
#   order, and the outcomes survive a restart with their MACs intact.
# Tasks are held at a gate (a wrapper in front of the real worker) that the
# test opens: orderings and counts, not timings. Loops are safety nets only.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
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
started() { [ -f "$STARTED" ] && wc -l < "$STARTED" || echo 0; }
wait_started() {
  for _ in $(seq 1200); do [ "$(started)" -ge "$1" ] && return 0; sleep 0.05; done
  fail "worker $1 never started"
}
metric() { # metric NAME_WITH_LABELS: its value in /metrics
  curl -s --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
wait_sleeping() { # until the scheduler's one thread waits for a task
  for _ in $(seq 1200); do [ "$(metric mesatee_scheduler_sleeping)" = 1 ] && return 0; sleep 0.05; done
  fail "the scheduler thread never went to sleep: $(metric mesatee_scheduler_sleeping)"
}
EV='mesatee_scheduler_wakeups_total{cause="event"}'
TM='mesatee_scheduler_wakeups_total{cause="timer"}'

start() {
  mt_start_server --worker "$MT_WORK/gated-worker" --workers 1 --worker-start spawn \
    --shutdown-grace-s 1
}
start
mt_login admin
mt_add_user alice
FN=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
new_task() {
  local t
  t=$(as alice task create --function "$FN" --arg "message=$1")
  as alice task approve "$t" >/dev/null 2>&1 || true
  echo "$t"
}

# ---- a task invoked while the scheduler sleeps: woken by the invoke -------
touch "$GATE"
T1=$(new_task one)
wait_sleeping
OI=mesatee_scheduler_claims_on_invoke_total
e0=$(metric "$EV"); o0=$(metric "$OI"); c0=$(metric mesatee_scheduler_commits_total)
as alice task invoke "$T1" >/dev/null
as alice task wait "$T1" --timeout 60 >/dev/null || fail "task $T1 did not finish: $(as alice task show "$T1")"
e1=$(metric "$EV"); t1=$(metric "$TM"); o1=$(metric "$OI"); c1=$(metric mesatee_scheduler_commits_total)
[ "$t1" = 0 ] || fail "timer wake-ups: $t1, want 0"
[ $((e1 - e0)) -ge 1 ] || fail "event wake-ups went from $e0 to $e1"
ok "a task invoked while the scheduler slept ran; event wake-ups +$((e1 - e0)), timer wake-ups 0"
# claim on invoke: the sleeping thread's claim rode on the invoke's commit,
# so the scheduler committed only the outcome; the audit log still has the
# invoke, then the scheduler's "task running", then "task finished" (the
# wait's GETs may come between them)
[ $((o1 - o0)) = 1 ] || fail "claims on invoke: $o0 -> $o1, want +1"
[ $((c1 - c0)) = 1 ] || fail "scheduler commits for T1: $((c1 - c0)), want 1 (the outcome)"
trail=$(as admin --output json audit list --limit 1000 | jq -r --arg a "task:$T1" \
  '.entries[] | select(.object == $a) | select(.action | startswith("GET ") | not)
  | "\(.actor) \(.action)"' | tr '\n' ',')
case "$trail" in
  *"alice POST /v1/tasks/{id}/invoke,scheduler task running,scheduler task finished,"*) ;;
  *) fail "audit trail of T1: $trail" ;;
esac
ok "the claim rode on the invoke's commit (+1 claim on invoke, 1 scheduler commit); audit: invoke, running, finished"

# ---- group commit: outcome of one task + claim of the next, one commit ----
rm -f "$GATE"
n=$(started)
T2=$(new_task two); as alice task invoke "$T2" >/dev/null
wait_started $((n + 1))   # T2 is claimed (committed) and held
T3=$(new_task three); as alice task invoke "$T3" >/dev/null
T4=$(new_task four); as alice task invoke "$T4" >/dev/null
[ "$(as alice --output json task show "$T3" | jq -r .status)" = staged ] || fail "T3 not queued"
c0=$(metric mesatee_scheduler_commits_total); r0=$(metric mesatee_scheduler_transitions_total)
touch "$GATE"
for t in "$T2" "$T3" "$T4"; do
  as alice task wait "$t" --timeout 60 >/dev/null || fail "task $t did not finish"
done
c1=$(metric mesatee_scheduler_commits_total); r1=$(metric mesatee_scheduler_transitions_total)
[ $((r1 - r0)) = 5 ] || fail "state changes committed: $((r1 - r0)), want 5 (3 outcomes, 2 claims)"
[ $((c1 - c0)) = 3 ] || fail "scheduler commits: $((c1 - c0)), want 3 (each outcome with the next claim)"
ok "3 queued tasks: 5 state changes in 3 commits (outcome + next claim together)"
[ "$(metric "$TM")" = 0 ] || fail "timer wake-ups: $(metric "$TM")"

# the audit trail keeps every change, in order
trail=$(as admin --output json audit list --limit 1000 | jq -r --arg a "task:$T2" --arg b "task:$T3" \
  --arg c "task:$T4" '.entries[] | select(.object == $a or .object == $b or .object == $c)
  | select(.action == "task running" or .action == "task finished") | "\(.object) \(.action)"' | tr '\n' ',')
want="task:$T2 task running,task:$T2 task finished,task:$T3 task running,task:$T3 task finished,task:$T4 task running,task:$T4 task finished,"
[ "$trail" = "$want" ] || fail "audit trail: $trail"
ok "the audit log has each running/finished entry, in order"

# ---- the grouped outcomes are durable and sealed: a restart keeps them ----
mt_stop_server
start
for t in "$T2" "$T3" "$T4"; do
  out=$(as alice --output json task show "$t") || fail "task show $t after restart: $out"
  [ "$(jq -r .status <<<"$out")" = finished ] || fail "task $t after restart: $out"
done
ok "after a restart the three outcomes are there and pass their integrity checks"
echo "PASS"
