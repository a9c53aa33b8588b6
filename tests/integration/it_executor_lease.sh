#!/usr/bin/env bash
# Executor leases, fencing, remote cancel and slots (docs/design.md "Executor
# leases"; issue 14). The daemon gives executors 3 s leases (renewed every
# second: margin for an ASan build on a loaded machine), 2 claims per task.
# 1. kill -9 an executor mid-task: the lease runs out, the task goes back to the
#    queue, a second executor runs it; alice and bob decrypt the right result;
#    the audit shows one "task finished".
# 2. an executor paused (SIGSTOP) past its lease while a second one holds the
#    task: resumed, its late report (old fencing token) is refused; the second
#    executor's outcome is the one stored.
# 3. a task whose lease ran out twice (max attempts 2) fails with the reason.
# 4. cancelling a remotely running task stops it there (renewal) -> canceled.
# 5. --slots 2: two tasks run at once on one executor; /metrics shows its health.
# 5b. the right fencing token with a wrong lease secret: refused, nothing written.
# Workers are held at gates (files): orderings, not timings; the waits poll.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
B=$MESATEE_BIN
SLEEP=$(command -v sleep)
declare -A EXP   # running executors: name -> pid
cleanup() {
  for p in "${EXP[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for n in a b; do # gated workers left behind by a killed executor
    if [ -f "$MT_WORK/started-$n" ]; then
      while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$MT_WORK/started-$n"
    fi
  done
  mt_cleanup
}
trap cleanup EXIT

# A worker that waits for its gate file before it becomes the real worker.
for n in a b; do
  cat >"$MT_WORK/w-$n" <<EOF
#!/bin/bash
echo \$\$ >> '$MT_WORK/started-$n'
while [ ! -e '$MT_WORK/gate-$n' ]; do '$SLEEP' 0.05; done
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
  chmod +x "$MT_WORK/w-$n"; : >"$MT_WORK/started-$n"
done
started() { wc -l <"$MT_WORK/started-$1"; }
more() { [ "$(started "$1")" -ge "$2" ]; } # more N COUNT: executor N's workers started >= COUNT
wait_for() { # wait_for WHAT CMD...: up to 60 s
  local what=$1; shift
  for _ in $(seq 1200); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}

# Garbage for the new flags (before anything runs).
X=(--data-dir "$MT_WORK/x")
XS=(--data-dir "$MT_WORK/x" --scheduler https://127.0.0.1:1 --policy /dev/null)
expect_fail "lease without --remote-executors" "need --remote-executors" \
  "$B" serve "${X[@]}" --executor-lease-ms 2000
expect_fail "lease 5 ms" "executor-lease-ms" "$B" serve "${X[@]}" --remote-executors --executor-lease-ms 5
expect_fail "lease abc" "executor-lease-ms" "$B" serve "${X[@]}" --remote-executors --executor-lease-ms abc
expect_fail "attempts 0" "executor-max-attempts" "$B" serve "${X[@]}" --remote-executors --executor-max-attempts 0
expect_fail "slots 0" "slots" "$B" executor "${XS[@]}" --slots 0
expect_fail "slots 65" "slots" "$B" executor "${XS[@]}" --slots 65
expect_fail "slots x" "slots" "$B" executor "${XS[@]}" --slots x
expect_fail "bad name" "--name must be" "$B" executor "${XS[@]}" --name 'a b'
# a listen host resolved by mt_resolve_bounded (docs/design.md "Name resolution")
expect_fail "listen on a name that does not resolve" "cannot resolve the listen address" \
  "$B" serve "${X[@]}" --listen nosuchhost.invalid:0
# --scheduler lists (several nodes, docs/cluster.md "Executors with several nodes")
XL=(--data-dir "$MT_WORK/x" --policy /dev/null)
expect_fail "scheduler list, second not https" "--scheduler must be https://HOST:PORT" \
  "$B" executor "${XL[@]}" --scheduler https://127.0.0.1:1,http://127.0.0.1:2
expect_fail "scheduler list, empty entry" "--scheduler must be https://HOST:PORT" \
  "$B" executor "${XL[@]}" --scheduler https://127.0.0.1:1,,https://127.0.0.1:2
expect_fail "scheduler list, trailing comma" "a comma with no URL" \
  "$B" executor "${XL[@]}" --scheduler https://127.0.0.1:1,
expect_fail "scheduler list, 9 nodes" "at most 8" "$B" executor "${XL[@]}" \
  --scheduler "$(printf 'https://127.0.0.1:%d,' 1 2 3 4 5 6 7 8)https://127.0.0.1:9"
# ports 1..65535 in digits; a host without whitespace, '/', '@'; an IPv6
# address only in brackets (stripped: the connect path takes the address)
for u in https://127.0.0.1:0 https://127.0.0.1:65536 https://127.0.0.1:99999 https://127.0.0.1:+1 \
  https://127.0.0.1:1x https://127.0.0.1:123456 'https://127.0.0.1: 1' 'https://a b:1' \
  https://a/b:1 https://u@h:1 https://::1:1 'https://[::1:1' \
  'https://[::1]1' 'https://[localhost]:1' 'https://[]:1' 'https://[::1]:0' https://:1; do
  expect_fail "scheduler URL '$u'" "--scheduler must be https://HOST:PORT" \
    "$B" executor "${XL[@]}" --scheduler "https://127.0.0.1:2,$u"
done
expect_fail "scheduler URL with a tab" "--scheduler contains a control character" \
  "$B" executor "${XL[@]}" --scheduler "$(printf 'https://a\tb:1')"
# a valid list (an IPv6 literal in brackets) gets past the parser, to the policy
out=$("$B" executor "${XL[@]}" --scheduler 'https://[::1]:1,https://h.example:65535' 2>&1) &&
  fail "an executor with --policy /dev/null started"
case "$out" in *"--scheduler"*) fail "a valid --scheduler list refused: $out" ;; esac
ok "--scheduler https://[::1]:1,https://h.example:65535 parsed"
expect_fail "--scheduler given twice" "--scheduler given more than once" \
  "$B" executor "${XL[@]}" --scheduler https://127.0.0.1:1 --scheduler https://127.0.0.1:2

ids=()
for n in a b; do
  ids+=("$("$B" executor --data-dir "$MT_WORK/ex-$n" --level soft --worker "$MT_WORK/w-$n" \
    --poll-ms 100 --print-identity)") || fail "executor --print-identity"
done
mt_executor_policy "$MT_WORK/executor-policy.json" 86400 "${ids[@]}"
expect_fail "executor API on a name that does not resolve" "cannot resolve executor listen address" \
  "$B" serve --data-dir "$MT_WORK/x2" --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen nosuchhost.invalid:0
mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen 127.0.0.1:0 --executor-lease-ms 3000 --executor-max-attempts 2
EURL=$(cat "$MT_DATA/executor.url")
mt_gateway_policy "$MT_WORK/scheduler-policy.json"
grep -q "leases of 3000 ms, 2 attempt(s) per task" "$MT_WORK/server.log" ||
  fail "the daemon does not announce the lease settings"

# executor N LOG [args]: executor N (its gated worker, its data dir) in the background
executor() {
  local n=$1 log=$2; shift 2
  "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
    --data-dir "$MT_WORK/ex-$n" --level soft --worker "$MT_WORK/w-$n" --poll-ms 100 \
    --worker-start spawn --name "ex$n" "$@" >"$MT_WORK/$log" 2>&1 &
  EXP[$n]=$!
}
reap() { wait "${EXP[$1]}" 2>/dev/null || true; unset "EXP[$1]"; }
st() { as alice --output json task show "$1" | jq -r .status; }
is() { [ "$(st "$1")" = "$2" ]; }
events() {
  as admin --output json audit list --limit 1000 |
    jq -r --arg t "task:$1" '[.entries[] | select(.object == $t and (.action | startswith("task "))) | .action] | join(",")'
}

mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"

# 1. kill -9 an executor mid-task.
mt_psi2_invoke
n0=$(started a)
executor a ex1.log --max-tasks 1
wait_for "executor a's worker" more a $((n0 + 1))
is "$T" running || fail "PSI task is $(st "$T"), want running"
kill -KILL "${EXP[a]}"; reap a
wait_for "the lease to run out" is "$T" staged
grep -q "task $T: the executor's lease (fencing token 1) expired" "$MT_WORK/server.log" ||
  fail "no lease expiry logged"
ok "executor killed mid-task: after its lease ran out the task is staged again"
touch "$MT_WORK/gate-b"
executor b ex2.log --max-tasks 1
as alice task wait "$T" --timeout 60 >/dev/null || fail "task did not finish: $(st "$T"): $(cat "$MT_WORK/ex2.log")"
reap b
is "$T" finished || fail "task is $(st "$T")"
grep -q "fencing token 2" "$MT_WORK/ex2.log" || fail "the second run is not under token 2"
want=$(seq -f "id%g" 201 300 | LC_ALL=C sort)
as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/ra.txt" >/dev/null
as bob task result "$T" --slot rb --key "$MT_WORK/bob.out.key" --out "$MT_WORK/rb.txt" >/dev/null
[ "$(LC_ALL=C sort "$MT_WORK/ra.txt")" = "$want" ] || fail "alice's result is wrong"
[ "$(LC_ALL=C sort "$MT_WORK/rb.txt")" = "$want" ] || fail "bob's result is wrong"
ev=$(events "$T")
[ "$ev" = "task running,task requeued (lease expired),task running,task finished" ] ||
  fail "audit trail: $ev"
ok "a second executor ran it (token 2); alice and bob decrypt the 100 common ids; audit: $ev"
[ -z "$(find "$MT_DATA" -name '*.report-*')" ] || fail "staged outputs left after the report"


FN=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
echo_task() {
  local t; t=$(as alice task create --function "$FN" --arg "message=$1")
  as alice task approve "$t" >/dev/null 2>&1 || true
  as alice task invoke "$t" >/dev/null
  printf '%s' "$t"
}

# 2. A late report under an old fencing token is refused.
rm -f "$MT_WORK/gate-a" "$MT_WORK/gate-b"
T2=$(echo_task two)
n0=$(started a)
executor a ex3.log --max-tasks 1
wait_for "executor a's worker" more a $((n0 + 1))
kill -STOP "${EXP[a]}"
wait_for "the paused executor's lease to run out" is "$T2" staged
nb=$(started b)
executor b ex4.log --max-tasks 1
wait_for "executor b's worker" more b $((nb + 1))
is "$T2" running || fail "T2 is $(st "$T2"), want running (executor b)"
touch "$MT_WORK/gate-a"
kill -CONT "${EXP[a]}"
wait_for "executor a to give up" eval '! kill -0 "${EXP[a]}" 2>/dev/null'
reap a
grep -q "did not store the report (HTTP 409)" "$MT_WORK/ex3.log" ||
  fail "the paused executor's report was not refused: $(tail -n 5 "$MT_WORK/ex3.log")"
grep -q "task $T2: refused a report with fencing token 1: the current lease is 2" \
  "$MT_WORK/server.log" || fail "the scheduler did not fence the late report"
is "$T2" running || fail "the late report changed T2: $(st "$T2")"
touch "$MT_WORK/gate-b"
as alice task wait "$T2" --timeout 60 >/dev/null || fail "T2 did not finish: $(cat "$MT_WORK/ex4.log")"
reap b
rv=$(as alice --output json task show "$T2" | jq -r '.result.return_value // .return_value')
[ "$rv" = two ] || fail "T2 return value $rv"
ev=$(events "$T2")
[ "$ev" = "task running,task requeued (lease expired),task running,task finished" ] ||
  fail "T2 audit trail: $ev"
ok "a paused executor's late report (token 1) refused; the holder's (token 2) stored; audit: $ev"

# 3. Out of attempts: the second expiry fails the task with the reason.
rm -f "$MT_WORK/gate-a"
T3=$(echo_task three)
for i in 1 2; do
  n0=$(started a)
  executor a ex5.log --max-tasks 1
  wait_for "executor a's worker ($i)" more a $((n0 + 1))
  kill -KILL "${EXP[a]}"; reap a
  if [ "$i" = 1 ]; then wait_for "the lease to run out" is "$T3" staged; fi
done
wait_for "the second expiry" is "$T3" failed
reason=$(as alice --output json task show "$T3" | jq -r .failure_reason)
case "$reason" in *"lease expired 2 time(s)"*"no attempt left of 2"*) ;; *) fail "reason: $reason" ;; esac
ok "after 2 expired leases the task failed: $reason"

# 4. Remote cancel: the executor learns it at its next renewal.
T4=$(echo_task four)
n0=$(started a)
executor a ex6.log --max-tasks 1
wait_for "executor a's worker" more a $((n0 + 1))
is "$T4" running || fail "T4 is $(st "$T4")"
as alice task cancel "$T4" >/dev/null
wait_for "the remote cancel" is "$T4" canceled
wait_for "executor a to end" eval '! kill -0 "${EXP[a]}" 2>/dev/null'
reap a
grep -q "cancellation requested; stopping it" "$MT_WORK/ex6.log" ||
  fail "the executor did not learn the cancel: $(cat "$MT_WORK/ex6.log")"
ok "cancelling a remotely running task stopped it on the executor: canceled"

# 5. Slots: two tasks at once on one executor; its health in /metrics.
T5=$(echo_task five); T6=$(echo_task six)
n0=$(started a)
executor a ex7.log --max-tasks 2 --slots 2
wait_for "two workers at once" more a $((n0 + 2))
is "$T5" running && is "$T6" running || fail "T5 $(st "$T5"), T6 $(st "$T6"): want both running"
touch "$MT_WORK/gate-a"
for t in "$T5" "$T6"; do as alice task wait "$t" --timeout 60 >/dev/null || fail "task $t: $(st "$t")"; done
reap a
m=$(curl -s --cacert "$MT_DATA/tls/server-cert.pem" "$MESATEE_SERVER/metrics")
grep -Eq '^mesatee_executor_slots\{executor="exa",peer="[0-9a-f]{16}"\} 2$' <<<"$m" || fail "no slots metric: $(grep executor <<<"$m")"
grep -q '^mesatee_executor_leases_expired_total [4-9]' <<<"$m" || fail "expired leases not counted"
grep -q '^mesatee_executor_reports_fenced_total [1-9]' <<<"$m" || fail "fenced reports not counted"
grep -q '^mesatee_executor_remote_cancels_total [1-9]' <<<"$m" || fail "remote cancels not counted"
grep -Eq '^mesatee_executor_tasks_run_total\{executor="exb",peer="[0-9a-f]{16}"\} 1$' <<<"$m" || fail "tasks run not reported"
grep -Eq '^mesatee_executor_tasks_run_total\{executor="exa",peer="[0-9a-f]{16}"\} 2$' <<<"$m" || fail "exa's tasks not reported"
grep -Eq '^mesatee_executor_busy\{executor="exa",peer="[0-9a-f]{16}"\} 0$' <<<"$m" || fail "exa's busy slots not reported"
ok "--slots 2 ran two tasks at once; /metrics shows the executors' health and the lease counters"

# 5b. The right fencing token with a wrong lease secret (an executor that
# guessed the token): refused with 409, no output written, none left staged.
touch "$MT_WORK/gate-a"
PFN=$(as alice function register --name psi2b --builtin psi --input-slot a --input-slot b \
  --output-slot ra --output-slot rb --public)
declare -A OUT8
for u in alice bob; do
  "$B" key generate --out "$MT_WORK/$u.out8.key" >/dev/null
  OUT8[$u]=$(as "$u" file register-output --key "$MT_WORK/$u.out8.key")
done
T8=$(as alice task create --function "$PFN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T8" --input "a=${IN[alice]}" --output "ra=${OUT8[alice]}" >/dev/null
as bob task assign "$T8" --input "b=${IN[bob]}" --output "rb=${OUT8[bob]}" >/dev/null
as alice task approve "$T8" >/dev/null; as bob task approve "$T8" >/dev/null
as alice task invoke "$T8" >/dev/null
MESATEE_TEST_EXECUTOR_WRONG_SECRET=1 executor a ex10.log --max-tasks 1
wait_for "executor a to end" eval '! kill -0 "${EXP[a]}" 2>/dev/null'
reap a
grep -q "did not store the report (HTTP 409)" "$MT_WORK/ex10.log" ||
  fail "the wrong-secret report was not refused: $(tail -n 5 "$MT_WORK/ex10.log")"
grep -q "task $T8: refused a report with fencing token [0-9]*: not the lease secret" \
  "$MT_WORK/server.log" || fail "the scheduler did not refuse the wrong lease secret"
is "$T8" running || fail "the wrong-secret report changed T8: $(st "$T8")"
left=$(find "$MT_DATA" -name '*.report-*' | wc -l)
[ "$left" = 0 ] || fail "staged outputs left behind: $(find "$MT_DATA" -name '*.report-*')"
as alice task result "$T8" --slot ra --key "$MT_WORK/alice.out8.key" --out "$MT_WORK/ra8.txt" \
  >/dev/null 2>&1 && fail "an output of the refused report is readable"
as alice task cancel "$T8" >/dev/null
wait_for "the refused task's lease to run out" is "$T8" canceled
left=$(find "$MT_DATA" -name '*.up-*' | wc -l)
[ "$left" = 0 ] || fail "uploads of the expired lease left behind: $(find "$MT_DATA" -name '*.up-*')"
ok "a report with the right fencing token but a wrong lease secret: 409, nothing written"

# 6. Untrusted storage: a fencing token rolled back in the database (to let an
# old holder's report in) fails the next claim instead.
if [ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null; then
  rm -f "$MT_WORK/gate-a"
  T7=$(echo_task seven)
  n0=$(started a)
  executor a ex8.log --max-tasks 1
  wait_for "executor a's worker" more a $((n0 + 1))
  kill -KILL "${EXP[a]}"; reap a
  wait_for "the lease to run out" is "$T7" staged
  mt_sql \
    "UPDATE tasks SET lease_fence = 0 WHERE task_id = '$T7'"
  executor b ex9.log --max-tasks 1
  wait_for "the claim to refuse the edited lease" is "$T7" failed
  kill "${EXP[b]}" 2>/dev/null || true; reap b
  reason=$(as alice --output json task show "$T7" | jq -r .failure_reason)
  case "$reason" in *"integrity check failed: lease"*) ;; *) fail "T7 reason: $reason" ;; esac
  ok "a rolled-back fencing token is caught by its MAC: $reason"
else
  echo "skip - sqlite3 (the CLI) not installed: no rolled-back token check"
fi

mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "audit chain does not verify"
ok "audit chain verifies"
