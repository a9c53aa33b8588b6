#!/usr/bin/env bash
# Remote executors with `serve --objects db` (issue 14, docs/cluster.md
# "Object storage"): inputs stream from the database through the node's
# digest-checked cache (POST /v1/executor/input), outputs are uploaded into
# staging rows of the database (POST /v1/executor/output; object_stage*) and
# enter the object tables in the transaction that stores the outcome; both
# parties decrypt; the outputs
# are database rows; a tampered input in the database fails the task with a
# clear error and no output.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
B=$MESATEE_BIN
EX=$MT_WORK/executor
declare -A O2
EX_PID=
trap 'if [ -n "$EX_PID" ]; then kill "$EX_PID" 2>/dev/null || true; fi; mt_cleanup' EXIT
id=$("$B" executor --data-dir "$EX" --level soft --print-identity) || fail "executor --print-identity"
mt_executor_policy "$MT_WORK/executor-policy.json" 86400 "$id"
mt_start_server --level soft --objects db --remote-executors \
  --executor-policy "$MT_WORK/executor-policy.json" --executor-listen 127.0.0.1:0
EURL=$(cat "$MT_DATA/executor.url")
mt_gateway_policy "$MT_WORK/scheduler-policy.json"
run_executor() {
  timeout 60 "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
    --data-dir "$EX" --level soft --max-tasks 1 >"$MT_WORK/executor.log" 2>&1 ||
    fail "executor failed: $(tail -n 10 "$MT_WORK/executor.log")"
}
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"
mt_psi2_invoke
run_executor
as alice task wait "$T" --timeout 60 >/dev/null || fail "task did not finish: $(as alice task show "$T")"
want=$(seq -f "id%g" 201 300 | LC_ALL=C sort)
as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/ra.txt" >/dev/null
as bob task result "$T" --slot rb --key "$MT_WORK/bob.out.key" --out "$MT_WORK/rb.txt" >/dev/null
[ "$(LC_ALL=C sort "$MT_WORK/ra.txt")" = "$want" ] || fail "alice's result is wrong"
[ "$(LC_ALL=C sort "$MT_WORK/rb.txt")" = "$want" ] || fail "bob's result is wrong"
ls "$MT_DATA/objects" | grep -q '\.up-' && fail "an upload was left in the object directory"
ok "remote executor, --objects db: streamed inputs and uploaded outputs; both parties decrypt"
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP (part): sqlite3 not installed"; exit 0; }
q() { mt_sql "$1"; } # SQLite or MT_TEST_PG's PostgreSQL (lib.sh)
for f in "${OUT[alice]}" "${OUT[bob]}"; do
  o=$(q "SELECT object_id FROM files WHERE file_id = '$f'")
  [ "$(q "SELECT count(*) FROM object_data WHERE id = '$o'")" = 1 ] || fail "output object $o is not in the database"
done
[ "$(q "SELECT count(*) FROM object_stage") $(q "SELECT count(*) FROM object_stage_chunks")" = "0 0" ] ||
  fail "staging rows left after the report"
ok "the uploaded outputs are rows of the store's database; no staging row left"

# tampered input in the database, local cache removed: the task fails, no output
A=$(q "SELECT object_id FROM files WHERE file_id = '${IN[alice]}'")
if [ "${MT_TEST_PG:-}" = 1 ]; then # (no randomblob there: byte 0 changed)
  q "UPDATE object_chunks SET data = set_byte(data, 0, (get_byte(data, 0) + 1) % 256) WHERE gen = (SELECT gen FROM object_data WHERE id = '$A')"
else
  q "UPDATE object_chunks SET data = randomblob(length(data)) WHERE gen = (SELECT gen FROM object_data WHERE id = '$A')"
fi
rm -f "$MT_DATA/objects/$A"
for u in alice bob; do "$B" key generate --out "$MT_WORK/$u.k2" >/dev/null; O2[$u]=$(as "$u" file register-output --key "$MT_WORK/$u.k2"); done
T2=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T2" --input "a=${IN[alice]}" --output "ra=${O2[alice]}" >/dev/null
as bob task assign "$T2" --input "b=${IN[bob]}" --output "rb=${O2[bob]}" >/dev/null
as alice task approve "$T2" >/dev/null; as bob task approve "$T2" >/dev/null
as alice task invoke "$T2" >/dev/null
# the claim itself fails (the job is built from the cache): no task reaches the executor
"$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
  --data-dir "$EX" --level soft --max-tasks 1 >"$MT_WORK/executor2.log" 2>&1 &
EX_PID=$!
as alice task wait "$T2" --timeout 60 >/dev/null 2>&1 || true
kill "$EX_PID" 2>/dev/null || true; wait "$EX_PID" 2>/dev/null || true; EX_PID=
st=$(as alice --output json task show "$T2" | jq -r .status)
[ "$st" = failed ] || { tail -5 "$MT_WORK/executor2.log" >&2; fail "task with a tampered input is $st"; }
as alice task result "$T2" --slot ra --key "$MT_WORK/alice.k2" --out "$MT_WORK/x" >/dev/null 2>&1 && fail "an output was stored"
ok "remote, tampered input in the database: task failed: $(as alice --output json task show "$T2" | jq -r .failure_reason | cut -c1-140)"

# the sweep keeps the upload a live lease may still report: a task 'running'
# under fence 5 (set by hand here) keeps <output>.up-5, loses <output>.up-4
mt_stop_server
RA=$(q "SELECT object_id FROM files WHERE file_id = '${OUT[alice]}'")
q "UPDATE tasks SET status = 'running', lease_fence = 5 WHERE task_id = '$T'"
head -c 10 /dev/zero >"$MT_DATA/objects/$RA.up-5"
head -c 10 /dev/zero >"$MT_DATA/objects/$RA.up-4"
: >"$MT_WORK/server.log"
mt_start_server --level soft --objects db --remote-executors \
  --executor-policy "$MT_WORK/executor-policy.json" --executor-listen 127.0.0.1:0
[ -e "$MT_DATA/objects/$RA.up-5" ] || fail "the sweep removed the upload of a live lease"
[ ! -e "$MT_DATA/objects/$RA.up-4" ] || fail "the sweep kept the upload of an old fence"
grep -q "removed 1 leftover file(s) of interrupted writes (10 bytes)" "$MT_WORK/server.log" ||
  fail "sweep log: $(grep -i leftover "$MT_WORK/server.log")"
ok "the start-up sweep keeps <object>.up-<fence> of a live lease, removes an old fence's"
