#!/usr/bin/env bash
# Graceful stop (issue 9): SIGTERM first refuses new tasks (invoke: 503,
# /readyz: 503) while the API keeps answering and the running task goes on;
# a task that finishes within --shutdown-grace-s is stored finished and the
# daemon exits 0 by itself; a task still running when the grace period ends
# has its worker killed and goes back to the queue (not failed), and runs to
# the end after the restart (its integrity MACs still verify); a canceled
# task stays canceled. A second SIGTERM stops at once.
# `task wait` exit codes: 0 finished, 3 failed, 4 canceled, 5 timeout,
# 6 server unreachable / went away (for --reconnect-s); a wait survives a
# restart of the server
# (level soft: clients verify by policy, so the restarted server's fresh
# certificate is accepted).
# Tasks are held at a gate (a wrapper in front of the real worker) that the
# test opens: orderings, not timings. Timeouts below are safety nets only.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
B=$MESATEE_BIN
GATE=$MT_WORK/gate
STARTED=$MT_WORK/started
FAILNEXT=$MT_WORK/fail-next
SLEEP=$(command -v sleep)
# The worker is started with an empty environment: absolute paths only.
# (Registration checks of wasm modules would pass the gate too; we use
# built-ins, which have none.)
cat > "$MT_WORK/gated-worker" <<EOF
#!/bin/bash
echo \$\$ >> '$STARTED'
if [ -e '$FAILNEXT' ]; then rm -f '$FAILNEXT'; exit 7; fi
while [ ! -e '$GATE' ]; do [ -d '$MT_WORK' ] || exit 9; '$SLEEP' 0.05; done  # (ends when the test's directory is gone)
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod +x "$MT_WORK/gated-worker"
started() { [ -f "$STARTED" ] && wc -l < "$STARTED" || echo 0; }
wait_started() { # wait_started N: until N workers have started
  for _ in $(seq 1200); do [ "$(started)" -ge "$1" ] && return 0; sleep 0.05; done
  fail "worker $1 never started"
}
wait_exit() { # wait_exit PID: the daemon exits by itself; its exit status in $rc
  for _ in $(seq 1200); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$1" 2>/dev/null && fail "the daemon did not stop"
  rc=0; wait "$1" || rc=$?
}
status() { as alice --output json task show "$1" | jq -r .status; }
audit_all() { # every audit entry, one JSON object a line (pages of 1000)
  local after=0 page n
  while :; do
    page=$(as admin --output json audit list --after "$after" --limit 1000)
    jq -c '.entries[]' <<<"$page"
    n=$(jq '.entries | length' <<<"$page")
    [ "$n" -lt 1000 ] && break
    after=$(jq '[.entries[].seq] | max' <<<"$page")
  done
}
polls() { # polls TASK: GET /v1/tasks/TASK answered so far (audit log)
  audit_all | jq -s --arg o "task:$1" '[.[] | select(.object == $o and .action == "GET /v1/tasks/{id}")] | length'
}
start_waiter() { # start_waiter OUT TASK [wait args]: background task wait, once it got an answer
  local out=$1 t=$2 n0; shift 2
  n0=$(polls "$t")
  as alice task wait "$t" "$@" > "$out" 2>&1 &
  WAITER=$!
  for _ in $(seq 1200); do [ "$(polls "$t")" -gt "$n0" ] && return 0; sleep 0.05; done
  fail "task wait never polled"
}

start() { # start [extra serve args]: level soft on $PORT (0 = any), policy from the evidence
  # --worker-start spawn: gated-worker counts (and fails) per-task worker starts
  mt_start_server --level soft --worker "$MT_WORK/gated-worker" --workers 2 \
    --worker-start spawn --listen "127.0.0.1:${PORT:-0}" "$@"
  unset MESATEE_CA
  PORT=${MESATEE_SERVER##*:}
  if [ ! -f "$MT_WORK/policy.json" ]; then
    local show
    show=$(MESATEE_POLICY= "$B" attest show --output json) || fail "attest show"
    cat > "$MT_WORK/policy.json" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jget "$show" .measurements.measurement)"]}},
 "soft_platform_keys": ["$(jget "$show" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
  fi
  export MESATEE_POLICY=$MT_WORK/policy.json
}
# mt_start_server passes --listen 127.0.0.1:0 first; ours (later) wins.

# ---- bad input --------------------------------------------------------
for bad in -1 abc 86401 "" 1.5; do
  expect_fail "--shutdown-grace-s '$bad' refused" "--shutdown-grace-s" \
    "$B" serve --data-dir "$MT_WORK/never" --shutdown-grace-s "$bad"
done
[ ! -e "$MT_WORK/never" ] || fail "a refused serve created its data dir"

start --shutdown-grace-s 300
mt_login admin
mt_add_user alice
FN=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
new_task() { # new_task MESSAGE -> approved task id
  local t
  t=$(as alice task create --function "$FN" --arg "message=$1")
  as alice task approve "$t" >/dev/null 2>&1 || true
  echo "$t"
}

# ---- task wait exit codes ----------------------------------------------
touch "$GATE"
T0=$(new_task zero); as alice task invoke "$T0" >/dev/null
rc=0; as alice task wait "$T0" --timeout 120 >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "task wait on a finished task: exit $rc"
ok "task wait: finished -> 0"
touch "$FAILNEXT"
TF=$(new_task fails); as alice task invoke "$TF" >/dev/null
rc=0; as alice task wait "$TF" --timeout 120 >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "task wait on a failed task: exit $rc ($(status "$TF"))"
ok "task wait: failed -> 3"
rm -f "$GATE"
n=$(started)
TC=$(new_task canceled); as alice task invoke "$TC" >/dev/null
wait_started $((n + 1))
rc=0; as alice task wait "$TC" --timeout 1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 5 ] || fail "task wait --timeout on a running task: exit $rc"
ok "task wait: timeout -> 5"
as alice task cancel "$TC" >/dev/null
rc=0; as alice task wait "$TC" --timeout 120 >/dev/null 2>&1 || rc=$?
[ "$rc" = 4 ] || fail "task wait on a canceled task: exit $rc ($(status "$TC"))"
ok "task wait: canceled -> 4"
rc=0; MESATEE_SERVER=https://127.0.0.1:1 as alice task wait "$TC" --timeout 5 >/dev/null 2>&1 || rc=$?
[ "$rc" = 6 ] || fail "task wait against no server: exit $rc"
ok "task wait: unreachable server -> 6"
expect_fail "task wait: bad --timeout is a usage error" "--timeout" as alice task wait "$TC" --timeout x
for bad in 0 -1 x 1e3 ""; do
  rc=0; out=$(as alice task wait "$TC" --reconnect-s "$bad" 2>&1) || rc=$?
  [ "$rc" = 2 ] || fail "--reconnect-s '$bad': exit $rc: $out"
  case "$out" in *--reconnect-s*) ;; *) fail "--reconnect-s '$bad': $out" ;; esac
done
ok "task wait: bad --reconnect-s values are usage errors (exit 2)"

# ---- a task that finishes within the grace period ----------------------
n=$(started)
T1=$(new_task within); as alice task invoke "$T1" >/dev/null
wait_started $((n + 1))
T3=$(new_task later)                                 # approved, not invoked
[ "$(status "$T1")" = running ] || fail "T1 is $(status "$T1"), want running"
PID=$MT_PID
kill -TERM "$PID"
for _ in $(seq 600); do
  code=$(curl -sk -o /dev/null -w '%{http_code}' "$MESATEE_SERVER/readyz" || true)
  [ "$code" = 503 ] && break; sleep 0.05
done
[ "$code" = 503 ] || fail "/readyz answers $code during the stop, want 503"
ok "SIGTERM: /readyz answers 503 while running tasks finish"
out=$(as alice task invoke "$T3" 2>&1) && fail "invoke during the stop succeeded: $out"
case "$out" in *503*"shutting down"*) ;; *) fail "invoke during the stop: $out" ;; esac
ok "invoke during the stop: $out"
[ "$(status "$T3")" = approved ] || fail "refused invoke changed T3: $(status "$T3")"
[ "$(status "$T1")" = running ] || fail "T1 is $(status "$T1") during the stop, want running"
ok "the API keeps answering during the grace period (T1 running, T3 approved)"
touch "$GATE"                                        # T1 may finish now
wait_exit "$PID"; MT_PID=
[ "$rc" = 0 ] || fail "daemon exit status $rc after a graceful stop"
grep -q "no task running; stopping" "$MT_WORK/server.log" || fail "no 'no task running' log line"
ok "T1 finished within the grace period; the daemon stopped by itself (exit 0)"

start --shutdown-grace-s 1
[ "$(status "$T1")" = finished ] || fail "T1 is $(status "$T1") after the restart"
[ "$(as alice --output json task show "$T1" | jq -r '.result.return_value // .return_value')" = within ] ||
  fail "T1's return value: $(as alice --output json task show "$T1")"
ok "T1 stored finished with its return value"

# ---- a task still running when the grace period ends: requeued --------
rm -f "$GATE"
n=$(started)
as alice task invoke "$T3" >/dev/null
wait_started $((n + 1))
WPIDS=$(pgrep -P "$MT_PID" || true)
start_waiter "$MT_WORK/wait.out" "$T3" --timeout 600
PID=$MT_PID
kill -TERM "$PID"
wait_exit "$PID"; MT_PID=
[ "$rc" = 0 ] || fail "daemon exit status $rc after the grace period"
grep -q "grace period .* is over with tasks still running" "$MT_WORK/server.log" ||
  fail "no grace-period log line"
grep -q "task $T3 requeued" "$MT_WORK/server.log" || fail "T3 not logged as requeued"
for w in $WPIDS; do
  state=$(awk '{print $3}' "/proc/$w/stat" 2>/dev/null || echo gone)
  case "$state" in gone|Z|X) ;; *) fail "worker $w outlived the daemon (state $state)" ;; esac
done
kill -0 "$WAITER" 2>/dev/null || fail "task wait ended when the server went away: $(cat "$MT_WORK/wait.out")"
ok "grace period over: worker killed, T3 requeued, task wait still waiting"
touch "$GATE"
start --shutdown-grace-s 300                         # same port, same policy
rc=0; wait "$WAITER" || rc=$?
[ "$rc" = 0 ] || fail "task wait across the restart: exit $rc: $(cat "$MT_WORK/wait.out")"
[ "$(status "$T3")" = finished ] || fail "T3 is $(status "$T3") after the restart"
ok "T3 ran again after the restart and finished; task wait survived the restart (exit 0)"
ev=$(audit_all | jq -rs --arg t "task:$T3" '[.[] | select(.object == $t) | .action] | join(",")')
case "$ev" in *"task requeued (stop)"*"task running"*"task finished"*) ;; *) fail "T3's audit trail: $ev" ;; esac
ok "audit: $ev"

# ---- a second SIGTERM stops at once; the wait reports the server gone ---
rm -f "$GATE"
T4=$(new_task twice)
n=$(started)
as alice task invoke "$T4" >/dev/null
wait_started $((n + 1))
start_waiter "$MT_WORK/wait4.out" "$T4" --timeout 600 --reconnect-s 1
PID=$MT_PID
kill -TERM "$PID"
for _ in $(seq 600); do
  [ "$(curl -sk -o /dev/null -w '%{http_code}' "$MESATEE_SERVER/readyz" || true)" = 503 ] && break
  sleep 0.05
done
kill -TERM "$PID"
wait_exit "$PID"; MT_PID=
[ "$rc" = 0 ] || fail "daemon exit status $rc after a second SIGTERM"
grep -q "second stop signal: stopping at once" "$MT_WORK/server.log" || fail "no second-signal log line"
grep -q "task $T4 requeued" "$MT_WORK/server.log" || fail "T4 not requeued at the second SIGTERM"
ok "a second SIGTERM (grace 300 s) stopped at once; T4 requeued"
rc=0; wait "$WAITER" || rc=$?
[ "$rc" = 6 ] || fail "task wait with the server gone: exit $rc: $(cat "$MT_WORK/wait4.out")"
grep -q "went away" "$MT_WORK/wait4.out" || fail "task wait message: $(cat "$MT_WORK/wait4.out")"
ok "task wait: server went away and did not come back -> 6: $(cat "$MT_WORK/wait4.out")"
touch "$GATE"
start
rc=0; as alice task wait "$T4" --timeout 300 >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "T4 after the restart: exit $rc ($(status "$T4"))"
[ "$(status "$TC")" = canceled ] || fail "the canceled task is $(status "$TC")"
ok "T4 finished after the restart; canceled task still canceled"
mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "audit chain does not verify"
ok "audit chain verifies after the stops and requeues"
