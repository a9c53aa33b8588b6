#!/usr/bin/env bash
# Executor uploads with several nodes and `--objects db` (issue 14,
# docs/cluster.md "Object storage"): node A (the KeyStore node) and node B
# (joined) on one throw-away PostgreSQL, each with its own local object
# directory (no shared mount), 3 s executor leases. A remote executor given
# both nodes (--scheduler A,B: failover, docs/cluster.md "Executors with
# several nodes") claims a two-party PSI through A and uploads its outputs
# there; they are staged in the database (object_stage*), not on A's disk;
# A is killed (-9) while the executor holds the task's lease (its report
# held at a gate); the executor's renewals move to B, which renews the same
# lease (same fencing token, lease extended past the kill, the task claimed
# once); the report goes to B, which moves the staged upload into place
# inside the outcome's transaction: both parties decrypt the right result
# through B, no staging row is left. An executor whose policy admits only A
# moves from an unreachable first URL to B and refuses B at the handshake:
# failover checks every node against --policy.
# Then (through B) a staged chunk flipped and a staged chunk truncated before
# the report: the report is refused at its digest check and the task fails
# at once with the reason (no output stored, no staging row left).
# The executor's report waits at a gate file (MESATEE_TEST_EXECUTOR_REPORT_GATE,
# a test hook of remote_executor.c).
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v psql >/dev/null || { echo "SKIP: psql not installed"; exit 77; }
PGT=$(dirname "$0")/../pg/pg-temp.sh
env_out=$(bash "$PGT" start) || { rc=$?; [ "$rc" = 77 ] && exit 77; fail "pg-temp.sh start: exit $rc"; }
eval "$env_out"
B=$MESATEE_BIN
B_DATA=$MT_WORK/node-b
B_PID=
EX_PID=
ALL_PIDS=()
stop_all() { local p; for p in "${ALL_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap 'stop_all; bash "$PGT" stop "$MT_PG_DIR" >/dev/null 2>&1 || true; mt_cleanup' EXIT
sql() { psql "$MT_PG_URL" -qAtc "$1"; }

id=$("$B" executor --data-dir "$MT_WORK/executor" --level soft --print-identity) || fail "executor --print-identity"
mt_executor_policy "$MT_WORK/executor-policy.json" 86400 "$id"
EXEC_ARGS=(--objects db --remote-executors --executor-policy "$MT_WORK/executor-policy.json"
  --executor-listen 127.0.0.1:0 --executor-lease-ms 3000)
mt_start_server --level soft --store "$MT_PG_URL" --keystore-listen 127.0.0.1:0 "${EXEC_ARGS[@]}"
ALL_PIDS+=("$MT_PID")
A_EURL=$(cat "$MT_DATA/executor.url")
unset MESATEE_CA
KS_URL=$(cat "$MT_DATA/keystore.url")
mt_gateway_policy "$MT_WORK/ks-policy.json"
export MESATEE_POLICY=$MT_WORK/ks-policy.json
mt_login admin
for u in alice bob; do mt_add_user "$u"; done

# node B: its own object directory; refused once (its platform key is not
# allowed yet), then joins
start_b() {
  mkdir -p "$B_DATA"
  rm -f "$B_DATA/server.url"
  "$B" serve --data-dir "$B_DATA" --listen 127.0.0.1:0 --level soft \
    --admin-password-file "$MT_WORK/admin.pw" --store "$MT_PG_URL" \
    --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/ks-policy.json" "${EXEC_ARGS[@]}" >"$1" 2>&1 &
  B_PID=$!
  ALL_PIDS+=("$B_PID")
}
start_b "$MT_WORK/b1.log"
wait "$B_PID" && fail "B joined without its key allowed"
B_PK=$(sed -n 's/.*TEE level soft: evidence measurement [0-9a-f]*, platform key \([0-9a-f]\{64\}\).*/\1/p' "$MT_WORK/b1.log" | head -n1)
[ ${#B_PK} = 64 ] || fail "no platform key in B's log: $(tail -n 3 "$MT_WORK/b1.log")"
as admin admin release allow --kind soft_platform_key "$B_PK" >/dev/null || fail "release allow B's key"
start_b "$MT_WORK/b.log"
for _ in $(seq 1200); do [ -s "$B_DATA/server.url" ] && [ -s "$B_DATA/executor.url" ] && break; kill -0 "$B_PID" 2>/dev/null || fail "B exited: $(tail -n 5 "$MT_WORK/b.log")"; sleep 0.05; done
[ -s "$B_DATA/executor.url" ] || fail "B did not start"
B_URL=$(cat "$B_DATA/server.url")
B_EURL=$(cat "$B_DATA/executor.url")
[ "$(readlink -f "$B_DATA/objects")" != "$(readlink -f "$MT_DATA/objects")" ] || fail "the nodes share an object directory"
# clients and the executor verify either node
jq --arg k "$B_PK" '.soft_platform_keys += [$k]' "$MT_WORK/ks-policy.json" >"$MT_WORK/both.json"
export MESATEE_POLICY=$MT_WORK/both.json
asb() { local u=$1; shift; MESATEE_SERVER=$B_URL MESATEE_TOKEN_FILE="$MT_WORK/$u.btoken" "$B" "$@"; }
for u in alice bob; do asb "$u" login --user "$u" --password-file "$MT_WORK/$u.pw" >/dev/null || fail "$u on B"; done
ok "node A (KeyStore) and node B (joined) on one PostgreSQL, --objects db, separate object directories"

# start_executor SCHEDULER_URL LOG [env...]: one task, report held at the gate
start_executor() {
  local url=$1 log=$2; shift 2
  rm -f "$MT_WORK/gate"
  env MESATEE_TEST_EXECUTOR_REPORT_GATE="$MT_WORK/gate" "$@" \
    "$B" --policy "$MT_WORK/both.json" executor --scheduler "$url" \
    --data-dir "$MT_WORK/executor" --level soft --max-tasks 1 >"$log" 2>&1 &
  EX_PID=$!
  ALL_PIDS+=("$EX_PID")
  for _ in $(seq 1200); do
    grep -q "waiting at the report gate" "$log" 2>/dev/null && return 0
    kill -0 "$EX_PID" 2>/dev/null || fail "executor exited: $(tail -n 5 "$log")"
    sleep 0.05
  done
  fail "the executor did not reach the report gate: $(tail -n 5 "$log")"
}
finish_executor() { touch "$MT_WORK/gate"; wait "$EX_PID" || true; EX_PID=; }
want=$(seq -f "id%g" 201 300 | LC_ALL=C sort)
seq -f "id%g" 1 300 >"$MT_WORK/alice.txt"
seq -f "id%g" 201 500 >"$MT_WORK/bob.txt"

# 1. an executor given both nodes: claim and uploads through A, A killed
# while it holds the lease, renewals and the report through B
mt_psi2_invoke
start_executor "$A_EURL,$B_EURL" "$MT_WORK/ex1.log"
grep -q "2 scheduler nodes, starting with $A_EURL" "$MT_WORK/ex1.log" || fail "the executor does not start with A"
[ "$(sql "SELECT count(*) FROM object_stage WHERE task_id = '$T'")" = 2 ] ||
  fail "the two uploads are not staged in the database: $(sql "SELECT task_id, fence, size FROM object_stage")"
ls "$MT_DATA/objects" | grep -q '\.up-' && fail "an upload was staged on node A's disk"
lease0=$(sql "SELECT lease_fence || ' ' || run_attempt FROM tasks WHERE task_id = '$T'")
kill -KILL "$MT_PID"; wait "$MT_PID" 2>/dev/null || true
killed_ms=$(($(date +%s%N) / 1000000))
# a renewal after the kill: A refuses the connection, the executor moves to
# B, and B extends the lease (past anything a renewal before the kill set)
for _ in $(seq 1200); do
  [ "$(sql "SELECT lease_until > $killed_ms + 3000 FROM tasks WHERE task_id = '$T'")" = t ] && break
  kill -0 "$EX_PID" 2>/dev/null || fail "executor exited: $(tail -n 5 "$MT_WORK/ex1.log")"
  sleep 0.05
done
[ "$(sql "SELECT lease_until > $killed_ms + 3000 FROM tasks WHERE task_id = '$T'")" = t ] ||
  fail "the lease was not renewed through B: $(tail -n 5 "$MT_WORK/ex1.log")"
grep -q "scheduler $A_EURL failed (.*); moving to $B_EURL" "$MT_WORK/ex1.log" ||
  fail "the executor did not say it moved to B: $(tail -n 5 "$MT_WORK/ex1.log")"
[ "$(sql "SELECT status || ' ' || lease_fence || ' ' || run_attempt FROM tasks WHERE task_id = '$T'")" = "running $lease0" ] ||
  fail "the task changed hands: $(sql "SELECT status, lease_fence, run_attempt FROM tasks WHERE task_id = '$T'") (was $lease0)"
ok "A killed while the executor held the task's lease: renewed through B under the same fencing token"
finish_executor
grep -q "task $T reported" "$MT_WORK/ex1.log" || fail "the report was refused: $(tail -n 5 "$MT_WORK/ex1.log")"
grep -q "lease lost" "$MT_WORK/ex1.log" && fail "the executor lost the lease: $(grep "lease lost" "$MT_WORK/ex1.log")"
asb alice task wait "$T" --timeout 60 >/dev/null || fail "task did not finish: $(asb alice task show "$T")"
asb alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/ra.txt" >/dev/null || fail "alice's result through B"
asb bob task result "$T" --slot rb --key "$MT_WORK/bob.out.key" --out "$MT_WORK/rb.txt" >/dev/null || fail "bob's result through B"
[ "$(LC_ALL=C sort "$MT_WORK/ra.txt")" = "$want" ] || fail "alice's result is wrong"
[ "$(LC_ALL=C sort "$MT_WORK/rb.txt")" = "$want" ] || fail "bob's result is wrong"
[ "$(sql "SELECT count(*) FROM object_stage") $(sql "SELECT count(*) FROM object_stage_chunks")" = "0 0" ] ||
  fail "staging rows left after the report"
[ "$(sql "SELECT status || ' ' || lease_fence || ' ' || run_attempt FROM tasks WHERE task_id = '$T'")" = "finished $lease0" ] ||
  fail "the task did not finish once under its first claim: $(sql "SELECT status, lease_fence, run_attempt FROM tasks WHERE task_id = '$T'")"
ok "outputs uploaded through node A, A killed, report taken by node B: both parties decrypt the right result"

# 1b. failover checks every node against --policy: an executor whose policy
# admits only A's platform key, given an unreachable first URL and B
# (the unreachable first URL an IPv6 literal: brackets stripped for the
# connect, put back in the messages)
"$B" --policy "$MT_WORK/ks-policy.json" executor --scheduler "https://[::1]:1,$B_EURL" \
  --data-dir "$MT_WORK/executor" --level soft --max-tasks 1 >"$MT_WORK/ex-pol.log" 2>&1 &
EX_PID=$!
ALL_PIDS+=("$EX_PID")
for _ in $(seq 1200); do
  grep -q "attested TLS handshake with the scheduler failed at 127.0.0.1:${B_EURL##*:}" "$MT_WORK/ex-pol.log" && break
  kill -0 "$EX_PID" 2>/dev/null || fail "executor exited: $(tail -n 5 "$MT_WORK/ex-pol.log")"
  sleep 0.05
done
grep -q "attested TLS handshake with the scheduler failed at 127.0.0.1:${B_EURL##*:}" "$MT_WORK/ex-pol.log" ||
  fail "B was not refused: $(tail -n 5 "$MT_WORK/ex-pol.log")"
grep -q "scheduler https://\[::1\]:1 failed (cannot connect to \[::1\]:1: .*); moving to $B_EURL" "$MT_WORK/ex-pol.log" ||
  fail "no move from the unreachable node: $(tail -n 5 "$MT_WORK/ex-pol.log")"
# the verdict (it quotes B's evidence) in the executor's log only, the
# error (which a task's failure reason may carry) constant
grep -q "scheduler $B_EURL: the peer is refused by the .* policy" "$MT_WORK/ex-pol.log" ||
  fail "no policy verdict in the executor's log: $(tail -n 5 "$MT_WORK/ex-pol.log")"
grep -q "failed at 127.0.0.1:${B_EURL##*:}: this executor's --policy refused the node" "$MT_WORK/ex-pol.log" ||
  fail "the handshake error is not the constant one: $(tail -n 5 "$MT_WORK/ex-pol.log")"
kill -KILL "$EX_PID"; wait "$EX_PID" 2>/dev/null || true; EX_PID=
ok "failover attests the next node with the same --policy: B (not in it) refused"

# 2. a staged chunk changed (one byte flipped) or truncated before the
# report: the task fails at once with the reason, nothing stored
damage() { # damage T2 SQL-EXPR LOG-TEXT DESC
  local t=$1 expr=$2 logtext=$3 desc=$4
  declare -gA O2
  for u in alice bob; do "$B" key generate --out "$MT_WORK/$u.$t.k2" >/dev/null; O2[$u]=$(asb "$u" file register-output --key "$MT_WORK/$u.$t.k2"); done
  T2=$(asb alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
  asb alice task assign "$T2" --input "a=${IN[alice]}" --output "ra=${O2[alice]}" >/dev/null
  asb bob task assign "$T2" --input "b=${IN[bob]}" --output "rb=${O2[bob]}" >/dev/null
  asb alice task approve "$T2" >/dev/null; asb bob task approve "$T2" >/dev/null
  asb alice task invoke "$T2" >/dev/null
  start_executor "$B_EURL" "$MT_WORK/ex-$t.log"
  n=$(sql "UPDATE object_stage_chunks SET data = $expr WHERE task_id = '$T2' AND seq = 0 AND gen = (SELECT min(gen) FROM object_stage WHERE task_id = '$T2') RETURNING 1" | grep -c 1)
  [ "$n" = 1 ] || fail "$desc: no staged chunk to damage"
  finish_executor
  st=$(asb alice --output json task show "$T2")
  [ "$(jget "$st" .status)" = failed ] || fail "$desc: the task is $(jget "$st" .status)"
  jget "$st" .failure_reason | grep -q "the executor's outputs could not be stored (io_error" ||
    fail "$desc: reason: $(jget "$st" .failure_reason)"
  grep -q "$logtext" "$MT_WORK/b.log" || fail "$desc: B's log lacks '$logtext'"
  asb alice task result "$T2" --slot ra --key "$MT_WORK/alice.$t.k2" --out "$MT_WORK/x" >/dev/null 2>&1 && fail "$desc: an output was stored"
  [ "$(sql "SELECT count(*) FROM object_stage WHERE task_id = '$T2'")" = 0 ] || fail "$desc: staging rows left"
  ok "$desc: refused at the report, task failed at once: $(jget "$st" .failure_reason)"
}
damage flip "set_byte(data, 0, get_byte(data, 0) # 255)" "does not match the SHA-256 of the report" \
  "a staged chunk with a byte flipped"
damage trunc "substring(data from 1 for length(data) - 1)" "is damaged (chunk 0 of 1: wrong length)" \
  "a truncated staged chunk"
