#!/usr/bin/env bash
# The core on PostgreSQL (issue 14): `serve --store postgres://...` against a
# throw-away cluster (tests/pg/pg-temp.sh, TLS required), one node:
# users, files, a two-party PSI task whose results both parties decrypt, a
# KeyStore-free echo task, the audit trail, all still there after a restart;
# an unreachable database stops the start with a clear error.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
PGT=$(dirname "$0")/../pg/pg-temp.sh
env_out=$(bash "$PGT" start) || { rc=$?; [ "$rc" = 77 ] && exit 77; fail "pg-temp.sh start: exit $rc"; }
eval "$env_out"
trap 'bash "$PGT" stop "$MT_PG_DIR" >/dev/null 2>&1 || true; mt_cleanup' EXIT

mt_start_server --store "$MT_PG_URL"
[ ! -e "$MT_DATA/mesatee.db" ] || fail "a SQLite store was created beside --store postgres://"
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"
mt_psi2_invoke
as alice task wait "$T" --timeout 120 >/dev/null || fail "PSI task: $(as alice task show "$T")"
for u in alice bob; do
  s=$([ $u = alice ] && echo ra || echo rb)
  as "$u" task result "$T" --slot "$s" --key "$MT_WORK/$u.out.key" --out "$MT_WORK/$u.res" >/dev/null ||
    fail "$u cannot decrypt the result"
  [ "$(sort "$MT_WORK/$u.res" | tr -d '\r' | grep -c .)" = 100 ] || fail "$u's result: $(wc -l <"$MT_WORK/$u.res") lines"
done
ok "PSI on a PostgreSQL store: both parties decrypt 100 common ids"
EFN=$(as alice function register --name e --builtin echo --arg "message=x:overridable")
E=$(as alice task create --function "$EFN" --arg message=pg)
as alice task approve "$E" >/dev/null 2>&1 || true
as alice task invoke "$E" >/dev/null
as alice task wait "$E" --timeout 60 >/dev/null || fail "echo task"
[ "$(as alice --output json task show "$E" | jq -r .result.return_value)" = pg ] || fail "echo result"
n=$(as admin --output json audit list --limit 1000 | jq '.entries | length')
[ "$n" -gt 10 ] || fail "audit trail has $n entries"
ok "echo task and an audit trail of $n entries on PostgreSQL"
mt_stop_server
mt_start_server --store "$MT_PG_URL"
[ "$(as alice --output json task show "$T" | jq -r .status)" = finished ] || fail "task lost at restart"
as bob --output json user show bob | jq -e '.username == "bob"' >/dev/null || fail "bob lost at restart"
n2=$(as admin --output json audit list --limit 1000 | jq '.entries | length')
[ "$n2" -ge "$n" ] || fail "audit entries lost at restart: $n -> $n2"
ok "users, tasks and the audit trail survive a restart on PostgreSQL"
mt_stop_server
out=$("$MESATEE_BIN" --output json audit verify --data-dir "$MT_DATA" --store "$MT_PG_URL") ||
  fail "audit verify --store postgres://: $out"
[ "$(jq -r .entries <<<"$out")" -ge "$n2" ] || fail "audit verify: $out"
"$MESATEE_BIN" audit export --data-dir "$MT_DATA" --store "$MT_PG_URL" --since 1 \
  --out "$MT_WORK/export.jsonl" >/dev/null || fail "audit export --store postgres://"
"$MESATEE_BIN" audit verify --export "$MT_WORK/export.jsonl" >/dev/null || fail "the export does not verify"
ok "the offline audit tools read the PostgreSQL store (--store): chain intact, export verifies"

# an unreachable database: a clear error, exit non-zero, no crash
out=$("$MESATEE_BIN" serve --data-dir "$MT_WORK/unreach" --listen 127.0.0.1:0 \
  --admin-password-file "$MT_WORK/admin.pw" \
  --store "postgresql://mesatee@127.0.0.1:1/postgres?sslmode=require&connect_timeout=2" 2>&1) &&
  fail "serve started against an unreachable database"
grep -qi "postgres\|database\|connect" <<<"$out" || fail "unclear error: $out"
ok "an unreachable PostgreSQL stops the start: $(tail -n1 <<<"$out" | cut -c1-120)"
