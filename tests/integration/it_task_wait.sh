#!/usr/bin/env bash
# Long-poll task wait (issue 13): GET /v1/tasks/{id}?wait=DURATION holds the
# answer until the task is final (finished, failed, canceled) or the wait is
# over (then the current state); garbage wait values are 400 naming the
# parameter; at most --max-task-waiters are held (more: 503 naming the
# reason); a client that leaves is dropped; a stop answers those held; and
# `task wait` needs one long poll (its first request) instead of repeated
# polls (counted in the audit log: every answer is audited once).
# Tasks are held at a gate (a wrapper in front of the real worker) that the
# test opens: orderings, not timings. Loops below are safety nets only.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
B=$MESATEE_BIN
GATE=$MT_WORK/gate
STARTED=$MT_WORK/started
FAILNEXT=$MT_WORK/fail-next
SLEEP=$(command -v sleep)
cat > "$MT_WORK/gated-worker" <<EOF
#!/bin/bash
echo \$\$ >> '$STARTED'
while [ ! -e '$GATE' ]; do [ -d '$MT_WORK' ] || exit 9; '$SLEEP' 0.05; done  # (ends when the test's directory is gone)
if [ -e '$FAILNEXT' ]; then rm -f '$FAILNEXT'; exit 7; fi
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod +x "$MT_WORK/gated-worker"
started() { [ -f "$STARTED" ] && wc -l < "$STARTED" || echo 0; }
wait_started() {
  for _ in $(seq 1200); do [ "$(started)" -ge "$1" ] && return 0; sleep 0.05; done
  fail "worker $1 never started"
}
audit_all() {
  local after=0 page n
  while :; do
    page=$(as admin --output json audit list --after "$after" --limit 1000)
    jq -c '.entries[]' <<<"$page"
    n=$(jq '.entries | length' <<<"$page")
    [ "$n" -lt 1000 ] && break
    after=$(jq '[.entries[].seq] | max' <<<"$page")
  done
}
polls() { # GET /v1/tasks/TASK answered so far (audit log)
  audit_all | jq -s --arg o "task:$1" '[.[] | select(.object == $o and .action == "GET /v1/tasks/{id}")] | length'
}
parked() { curl -s --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" | awk '$1 == "mesatee_http_parked_requests" {print $2}'; }
wait_parked() { # wait_parked N: until N requests are held
  for _ in $(seq 1200); do [ "$(parked)" = "$1" ] && return 0; sleep 0.05; done
  fail "parked requests: $(parked), want $1"
}
get() { # get TASK QUERY -> "BODY CODE"
  curl -s -w ' %{http_code}' --cacert "$MESATEE_CA" \
    -H "Authorization: Bearer $(cat "$MT_WORK/alice.token")" "$MESATEE_SERVER/v1/tasks/$1?$2"
}
bg_get() { # bg_get TASK QUERY OUT: get in the background, curl's PID in BG
  curl -s -w ' %{http_code}' --cacert "$MESATEE_CA" \
    -H "Authorization: Bearer $(cat "$MT_WORK/alice.token")" "$MESATEE_SERVER/v1/tasks/$1?$2" > "$3" &
  BG=$!
}

for bad in 0 -1 x; do
  expect_fail "--max-task-waiters '$bad' refused" "max-task-waiters" \
    "$B" serve --data-dir "$MT_WORK/never" --max-task-waiters "$bad"
done

mt_start_server --worker "$MT_WORK/gated-worker" --workers 2 --worker-start spawn \
  --max-task-waiters 2 --shutdown-grace-s 1
mt_login admin
mt_add_user alice
FN=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
new_task() {
  local t
  t=$(as alice task create --function "$FN" --arg "message=$1")
  as alice task approve "$t" >/dev/null 2>&1 || true
  echo "$t"
}

# ---- bad wait values: 400 naming the parameter ------------------------
T0=$(new_task zero)
for q in wait=x wait=-1 wait=61s wait=60001ms wait=1h wait= wait=10x wait=9999999999 wait \
         wait=1s%00 'wait=1s&wait=2s' foo=1; do
  out=$(get "$T0" "$q")
  case "$out" in *' 400') ;; *) fail "?$q: $out" ;; esac
  case "$q" in foo=1) want="unknown parameter" ;; *) want="'wait'" ;; esac
  case "$out" in *"$want"*) ;; *) fail "?$q: no $want in: $out" ;; esac
done
ok "garbage ?wait= values are 400 naming the parameter"
out=$(get "$T0" "wait=1s")
[ "$(jget "${out% *}" .status)" = approved ] && [ "${out##* }" = 200 ] || fail "wait on an approved task: $out"
ok "?wait= on a task that is not running answers its state after the wait (approved)"
out=$(curl -s -w ' %{http_code}' --cacert "$MESATEE_CA" "$MESATEE_SERVER/v1/tasks/$T0?wait=5s")
case "$out" in *' 401') ;; *) fail "?wait= without a token: $out" ;; esac
out=$(curl -s -w ' %{http_code}' --cacert "$MESATEE_CA" -H "Authorization: Bearer $(cat "$MT_WORK/admin.token")" \
  "$MESATEE_SERVER/v1/tasks/$T0?wait=5s")
case "$out" in *' 404') ;; *) fail "?wait= on another user's task: $out" ;; esac
ok "?wait= needs the authorisation of a plain GET (401, 404)"

# ---- a held task: the wait ends with the task ---------------------------
n=$(started)
T1=$(new_task one); as alice task invoke "$T1" >/dev/null
wait_started $((n + 1))
out=$(get "$T1" "wait=200ms")
[ "$(jget "${out% *}" .status)" = running ] || fail "timed-out wait: $out"
ok "a wait that runs out answers the current, non-final state (running)"
p0=$(polls "$T1")
as alice task wait "$T1" --timeout 600 > "$MT_WORK/w1.out" 2>&1 &
W1=$!
wait_parked 1
touch "$GATE"
rc=0; wait "$W1" || rc=$?
[ "$rc" = 0 ] || fail "task wait: exit $rc: $(cat "$MT_WORK/w1.out")"
p1=$(polls "$T1")
[ $((p1 - p0)) = 1 ] || fail "task wait made $((p1 - p0)) requests, want 1 (one long poll, no plain GET first)"
ok "task wait learns the end with one long poll, its first request ($((p1 - p0)) request)"
[ "$(parked)" = 0 ] || fail "still parked: $(parked)"

# ---- cancel and failure wake the waiters --------------------------------
rm -f "$GATE"
n=$(started)
T2=$(new_task two); as alice task invoke "$T2" >/dev/null
wait_started $((n + 1))
as alice task wait "$T2" --timeout 600 >/dev/null 2>&1 &
W2=$!
wait_parked 1
as alice task cancel "$T2" >/dev/null
rc=0; wait "$W2" || rc=$?
[ "$rc" = 4 ] || fail "task wait on a canceled task: exit $rc"
ok "a cancel wakes the waiter (exit 4)"
touch "$GATE"; wait_parked 0; rm -f "$GATE"
n=$(started)
T3=$(new_task three); as alice task invoke "$T3" >/dev/null
wait_started $((n + 1))
as alice task wait "$T3" --timeout 600 >/dev/null 2>&1 &
W3=$!
wait_parked 1
touch "$FAILNEXT" "$GATE"
rc=0; wait "$W3" || rc=$?
[ "$rc" = 3 ] || fail "task wait on a failed task: exit $rc"
ok "a failure wakes the waiter (exit 3)"

# ---- the bound, a client that leaves, a stop ------------------------------
rm -f "$GATE"
n=$(started)
T4=$(new_task four); as alice task invoke "$T4" >/dev/null
wait_started $((n + 1))
bg_get "$T4" "wait=60s" "$MT_WORK/c1.out"; C1=$BG
bg_get "$T4" "wait=60s" "$MT_WORK/c2.out"; C2=$BG
wait_parked 2
out=$(get "$T4" "wait=60s")
case "$out" in *"too many requests are waiting"*' 503') ;; *) fail "a third waiter: $out" ;; esac
ok "waiters beyond --max-task-waiters get 503: $out"
rc=0; as alice task wait "$T4" --timeout 3 >/dev/null 2>&1 || rc=$?
[ "$rc" = 5 ] || fail "task wait while the waiters are full: exit $rc, want 5 (it polls, then times out)"
ok "task wait refused a long poll (503) polls instead (exit 5 at its timeout, not 6)"
kill "$C1"; wait "$C1" 2>/dev/null || true
wait_parked 1
ok "a waiter whose client left is dropped"
PID=$MT_PID
kill -TERM "$PID"
for _ in $(seq 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$PID" 2>/dev/null && fail "the daemon did not stop"
rc=0; wait "$PID" || rc=$?; MT_PID=
[ "$rc" = 0 ] || fail "daemon exit $rc with a parked waiter"
wait "$C2" || true
out=$(cat "$MT_WORK/c2.out")
case "$out" in *'"status"'*' 200') ;; *) fail "the parked waiter at the stop got: $out" ;; esac
ok "a stop answers the parked waiter ($(jget "${out% *}" .status)) and exits 0"

# ---- a server killed and restarted during the first hold -----------------
# The first request of `task wait` is a hold already: a server that dies
# during it (kill -9: the connection is cut) and comes back on the same
# address must find the waiter polling again, as after a first quick GET.
mt_start_server --worker "$MT_WORK/gated-worker" --workers 2 --worker-start spawn \
  --max-task-waiters 2 --shutdown-grace-s 1
PORT=${MESATEE_SERVER##*:}
T5=$(new_task five) # approved, never invoked: the hold lasts until its wait runs out
as alice task wait "$T5" --timeout 600 > "$MT_WORK/w5.out" 2>&1 &
W5=$!
wait_parked 1
kill -KILL "$MT_PID"; wait "$MT_PID" 2>/dev/null || true; MT_PID=
rm -f "$MT_DATA/server.url"
"$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen "127.0.0.1:$PORT" \
  --admin-password-file "$MT_WORK/admin.pw" "${MT_PG_STORE[@]}" --worker "$MT_WORK/gated-worker" \
  --workers 2 --worker-start spawn --max-task-waiters 2 --shutdown-grace-s 1 >>"$MT_WORK/server.log" 2>&1 &
MT_PID=$!
for _ in $(seq 1200); do [ -s "$MT_DATA/server.url" ] && break; kill -0 "$MT_PID" 2>/dev/null || fail "restart"; sleep 0.05; done
# until the waiter holds again, on the restarted server (or has given up)
for _ in $(seq 1200); do
  kill -0 "$W5" 2>/dev/null || break
  [ "$(parked)" = 1 ] && break
  sleep 0.05
done
kill -0 "$W5" 2>/dev/null || { rc=0; wait "$W5" || rc=$?
  fail "task wait gave up when the server was killed during its first hold: exit $rc: $(cat "$MT_WORK/w5.out")"; }
[ "$(parked)" = 1 ] || fail "parked requests after the restart: $(parked), want 1"
as alice task cancel "$T5" >/dev/null
rc=0; wait "$W5" || rc=$?
[ "$rc" = 4 ] || fail "task wait across a restart during its first hold: exit $rc, want 4 (canceled): $(cat "$MT_WORK/w5.out")"
ok "task wait survives a server killed and restarted during its first hold (exit 4 at the cancel)"

# ---- a stopped server: --timeout still bounds the wait -------------------
# Every request of a wait with --timeout ends by it (plus 1 s): a daemon
# stopped (SIGSTOP: the kernel still accepts connections) while the hold is
# parked, or before the wait starts, ends `task wait --timeout 3` with the
# timeout (5), not the error (6) after the connect timeout (10 s) or the
# stall check (60 s). No duration is asserted: only an outer bound (30 s)
# far above the timeout, so that a wrong run ends too.
T6=$(new_task six) # approved, never invoked: the hold lasts until its wait runs out
stopped_wait() { # stopped_wait LABEL PARKED_FIRST: sets rc of `task wait --timeout 3`
  as alice task wait "$T6" --timeout 3 > "$MT_WORK/w6.out" 2>&1 &
  W6=$!
  [ "$2" = 1 ] && wait_parked 1
  kill -STOP "$MT_PID"
  for _ in $(seq 600); do kill -0 "$W6" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$W6" 2>/dev/null && { kill "$W6"; sleep 0.2; }
  rc=0; wait "$W6" || rc=$?
  kill -CONT "$MT_PID"
  [ "$rc" = 5 ] || fail "task wait --timeout 3, server stopped $1: exit $rc, want 5: $(cat "$MT_WORK/w6.out")"
}
stopped_wait "during the hold" 1
wait_parked 0
ok "task wait --timeout 3 against a server stopped during the hold: exit 5 ($(cat "$MT_WORK/w6.out"))"
stopped_wait "before the wait" 0
ok "task wait --timeout 3 against a server stopped before it: exit 5"
