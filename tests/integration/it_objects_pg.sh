#!/usr/bin/env bash
# `serve --store postgres://... --objects db` (issue 14, docs/cluster.md
# "Object storage") on a throw-away PostgreSQL (tests/pg/pg-temp.sh; skips
# where PostgreSQL is absent): a two-party PSI task end to end with every
# object as chunked rows of the database; a restart with the node's local
# object cache wiped keeps everything (a fresh node sees the same objects);
# a tampered chunk fails the next task with a clear error and no output; a
# database that refuses the output's rows fails the task at once (not left
# running until the next start) and removes the worker's local output files.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
PGT=$(dirname "$0")/../pg/pg-temp.sh
env_out=$(bash "$PGT" start) || { rc=$?; [ "$rc" = 77 ] && exit 77; fail "pg-temp.sh start: exit $rc"; }
eval "$env_out"
trap 'mt_cleanup; bash "$PGT" stop "$MT_PG_DIR" >/dev/null 2>&1 || true' EXIT
command -v psql >/dev/null || { echo "SKIP: psql not installed"; exit 77; }
q() { psql "$MT_PG_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

mt_start_server --store "$MT_PG_URL" --objects db
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"
mt_psi2_invoke
as alice task wait "$T" --timeout 120 >/dev/null || fail "PSI task: $(as alice task show "$T")"
check() {
  for u in alice bob; do
    s=$([ $u = alice ] && echo ra || echo rb)
    as "$u" task result "$T" --slot "$s" --key "$MT_WORK/$u.out.key" --out "$MT_WORK/$u.res" >/dev/null ||
      fail "$u cannot decrypt the result"
    [ "$(grep -c . "$MT_WORK/$u.res")" = 100 ] || fail "$u's result: $(wc -l <"$MT_WORK/$u.res") lines"
  done
}
check
for f in "${IN[alice]}" "${IN[bob]}" "${OUT[alice]}" "${OUT[bob]}"; do
  o=$(q "SELECT object_id FROM files WHERE file_id = '$f'")
  [ "$(q "SELECT count(*) FROM object_data d JOIN object_chunks c ON c.gen = d.gen WHERE d.id = '$o'")" -ge 1 ] ||
    fail "object $o of file $f has no rows in PostgreSQL"
done
ok "PostgreSQL store with --objects db: PSI end to end, inputs and outputs are chunked rows"
mt_stop_server
rm -rf "$MT_DATA/objects"
mt_start_server --store "$MT_PG_URL" --objects db
[ "$(as alice --output json task show "$T" | jq -r .status)" = finished ] || fail "task lost at restart"
check
ok "restart with the local object cache wiped: both parties still decrypt from PostgreSQL"

A=$(q "SELECT object_id FROM files WHERE file_id = '${IN[alice]}'")
q "UPDATE object_chunks SET data = set_byte(data, 100, (get_byte(data, 100) + 1) % 256) WHERE gen = (SELECT gen FROM object_data WHERE id = '$A')"
rm -f "$MT_DATA/objects/$A"
for u in alice bob; do "$MESATEE_BIN" key generate --out "$MT_WORK/$u.k2" >/dev/null; done
O2a=$(as alice file register-output --key "$MT_WORK/alice.k2"); O2b=$(as bob file register-output --key "$MT_WORK/bob.k2")
T2=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T2" --input "a=${IN[alice]}" --output "ra=$O2a" >/dev/null
as bob task assign "$T2" --input "b=${IN[bob]}" --output "rb=$O2b" >/dev/null
as alice task approve "$T2" >/dev/null; as bob task approve "$T2" >/dev/null
as alice task invoke "$T2" >/dev/null
as alice task wait "$T2" --timeout 60 >/dev/null 2>&1 || true
show=$(as alice --output json task show "$T2")
[ "$(jq -r .status <<<"$show")" = failed ] || fail "tampered chunk: task is $(jq -r .status <<<"$show")"
grep -q "do not match the SHA-256" <<<"$(jq -r .failure_reason <<<"$show")" || fail "unclear reason: $show"
as alice task result "$T2" --slot ra --key "$MT_WORK/alice.k2" --out "$MT_WORK/x" >/dev/null 2>&1 && fail "an output was stored"
ok "PostgreSQL, a tampered chunk: the task failed, no output: $(jq -r .failure_reason <<<"$show" | cut -c1-120)"

# the database refuses the output's rows (a trigger playing a failing
# object store): the task fails at once with the reason, instead of staying
# 'running' until the next start
IN3=$(as alice file register "$(as alice file upload "$MT_WORK/alice.enc")" --key "$MT_WORK/alice.key")
q "CREATE FUNCTION mt_test_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'test: object rows refused'; END \$\$"
q "CREATE TRIGGER mt_test_refuse BEFORE INSERT ON object_chunks FOR EACH ROW EXECUTE FUNCTION mt_test_refuse()"
for u in alice bob; do "$MESATEE_BIN" key generate --out "$MT_WORK/$u.k3" >/dev/null; done
O3a=$(as alice file register-output --key "$MT_WORK/alice.k3"); O3b=$(as bob file register-output --key "$MT_WORK/bob.k3")
T3=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T3" --input "a=$IN3" --output "ra=$O3a" >/dev/null
as bob task assign "$T3" --input "b=${IN[bob]}" --output "rb=$O3b" >/dev/null
as alice task approve "$T3" >/dev/null; as bob task approve "$T3" >/dev/null
as alice task invoke "$T3" >/dev/null
as alice task wait "$T3" --timeout 120 >/dev/null 2>&1 || true
show=$(as alice --output json task show "$T3")
[ "$(jq -r .status <<<"$show")" = failed ] || fail "refused output rows: task is $(jq -r .status <<<"$show")"
grep -q "the task's outputs could not be stored (" <<<"$(jq -r .failure_reason <<<"$show")" || fail "unclear reason: $show"
grep -q "task $T3: storing the outcome failed (.*SQLSTATE P0001.*); the task fails" "$MT_WORK/server.log" || fail "the server log does not say why"
as alice task result "$T3" --slot ra --key "$MT_WORK/alice.k3" --out "$MT_WORK/x" >/dev/null 2>&1 && fail "an output was stored"
for o in "$O3a" "$O3b"; do # the worker's local output files went with the failure
  ob=$(q "SELECT object_id FROM files WHERE file_id = '$o'")
  [ -n "$ob" ] || fail "output $o has no object id"
  [ ! -e "$MT_DATA/objects/$ob" ] || fail "the unstored output $ob stayed on the node's disk"
done
q "DROP TRIGGER mt_test_refuse ON object_chunks"
ok "PostgreSQL, the output's rows refused: the task failed at once, no local output left: $(jq -r .failure_reason <<<"$show")"
