#!/usr/bin/env bash
# The store is untrusted (issue 8, item 8): tasks are approved by both
# parties but not run; the daemon is stopped and rows are edited directly in
# mesatee.db (an approval flag, an input's file id, an output's owner, an
# argument) and the tasks are put in the queue as a host could. After the
# restart each tampered task fails with "integrity check failed: CLASS" and
# runs nothing (no output written); an untampered task staged the same way
# runs; invoking a tampered task through the API is refused the same way.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 (the CLI) not installed"; exit 0; }
DB=$MT_DATA/mesatee.db
sql() { mt_sql "$1"; }

mt_start_server --workers 1
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 50 > "$MT_WORK/alice.txt"
seq -f "id%g" 30 80 > "$MT_WORK/bob.txt"
for u in alice bob; do
  as "$u" file encrypt --in "$MT_WORK/$u.txt" --out "$MT_WORK/$u.enc" --key-out "$MT_WORK/$u.key" >/dev/null
  "$MESATEE_BIN" key generate --out "$MT_WORK/$u.out.key" >/dev/null
done
FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b \
  --output-slot ra --output-slot rb --public)
input() { as "$1" file register "$(as "$1" file upload "$MT_WORK/$1.enc")" --key "$MT_WORK/$1.key"; }
declare -A OA OB IA
# new_task NAME [alice-only]: assigned by both, approved by both (or alice only).
new_task() {
  local t ia ib oa ob
  ia=$(input alice); ib=$(input bob)
  oa=$(as alice file register-output --key "$MT_WORK/alice.out.key" --allow-key-reuse)
  ob=$(as bob file register-output --key "$MT_WORK/bob.out.key" --allow-key-reuse)
  t=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
  as alice task assign "$t" --input "a=$ia" --output "ra=$oa" >/dev/null
  as bob task assign "$t" --input "b=$ib" --output "rb=$ob" >/dev/null
  as alice task approve "$t" >/dev/null
  [ "${2:-}" = alice-only ] || as bob task approve "$t" >/dev/null
  OA[$1]=$oa; OB[$1]=$ob; IA[$1]=$ia
  eval "T_$1=$t"
}
new_task ok; new_task flip alice-only; new_task input; new_task owner; new_task arg; new_task api
OTHER=$(input alice)
[ "$(as alice --output json task show "$T_flip" | jq -r .status)" = data_assigned ] || fail "flip task state"
[ "$(as alice --output json task show "$T_ok" | jq -r .status)" = approved ] || fail "ok task state"
ok "six tasks approved (one by alice only), none invoked"

mt_stop_server
# The host edits the stopped daemon's database, then queues the tasks itself.
sql "UPDATE tasks SET approvals = '[\"alice\",\"bob\"]' WHERE task_id = '$T_flip'"
sql "UPDATE task_files SET file_id = '$OTHER' WHERE task_id = '$T_input' AND slot = 'a';
     UPDATE tasks SET assignments = replace(assignments, '${IA[input]}', '$OTHER') WHERE task_id = '$T_input'"
sql "UPDATE file_owners SET username = 'alice' WHERE file_id = '${OB[owner]}'"
sql "UPDATE tasks SET arguments = '{\"mode\":\"x\"}' WHERE task_id = '$T_arg'"
sql "UPDATE tasks SET arguments = '{\"mode\":\"x\"}' WHERE task_id = '$T_api'"
n=0
for t in "$T_ok" "$T_flip" "$T_input" "$T_owner" "$T_arg"; do
  n=$((n + 1))
  sql "UPDATE tasks SET status = 'staged', staged_seq = $n WHERE task_id = '$t'"
done
ok "rows edited and tasks queued directly in mesatee.db"

mt_start_server --workers 1
mt_login alice
as alice task wait "$T_ok" --timeout 60 >/dev/null || fail "untampered task did not finish"
ok "the untampered task ran"
# check TASK CLASS DESC: the scheduler failed it with that class. Read from
# the database: a task whose declaration or file fails its check cannot be
# read through the API at all (that answer is the integrity error too).
check() {
  local st=
  for _ in $(seq 300); do
    st=$(sql "SELECT status FROM tasks WHERE task_id = '$1'")
    case "$st" in failed|finished|canceled) break ;; esac; sleep 0.1
  done
  [ "$st" = failed ] || fail "$3: tampered task is $st"
  local r; r=$(sql "SELECT failure_reason FROM tasks WHERE task_id = '$1'")
  case "$r" in *"integrity check failed: $2") ok "$3: task failed: $r" ;;
    *) fail "$3: reason '$r', want 'integrity check failed: $2'" ;; esac
}
check "$T_flip" approval "approval flag flipped"
as alice --output json task show "$T_flip" | jq -e '.status == "failed"' >/dev/null ||
  fail "the failed task is not visible through the API"
check "$T_input" approval "input file id changed"
check "$T_owner" file "output owner changed"
check "$T_arg" task "argument changed"
expect_fail "showing a task whose argument was changed" "integrity check failed: task" \
  as alice task show "$T_arg"
expect_fail "invoking a task whose argument was changed" "integrity check failed: task" \
  as alice task invoke "$T_api"
expect_fail "the new owner reading a file whose owner row was changed" "integrity check failed: file" \
  as alice file show "${OB[owner]}"
# The outcome participants read (return value, failure reason, log) is MACed
# too (review finding): a host that edits a finished task's result is caught.
as alice --output json task show "$T_ok" | jq -e '.status == "finished"' >/dev/null ||
  fail "the untampered task is not shown as finished"
if [ "${MT_TEST_PG:-}" = 1 ]; then
  sql "UPDATE tasks SET result = jsonb_set(result::jsonb, '{return_value}', '\"forged\"')::text WHERE task_id = '$T_ok'"
else
  sql "UPDATE tasks SET result = json_set(result, '\$.return_value', 'forged') WHERE task_id = '$T_ok'"
fi
expect_fail "showing a task whose result was edited" "integrity check failed: result" \
  as alice task show "$T_ok"
sql "UPDATE tasks SET failure_reason = 'all fine' WHERE task_id = '$T_flip'"
expect_fail "showing a task whose failure reason was edited" "integrity check failed: result" \
  as alice task show "$T_flip"
mt_stop_server

# Nothing ran for the tampered tasks: no output written, no output object.
for k in flip input owner arg api; do
  for o in "${OA[$k]}" "${OB[$k]}"; do
    [ "$(sql "SELECT written FROM files WHERE file_id = '$o'")" = 0 ] || fail "$k: output $o written"
    [ ! -e "$MT_DATA/objects/$o" ] || fail "$k: output object $o exists"
  done
done
[ "$(sql "SELECT written FROM files WHERE file_id = '${OA[ok]}'")" = 1 ] || fail "ok: output not written"
ok "the tampered tasks wrote no output"
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" >/dev/null && ok "audit chain intact"
