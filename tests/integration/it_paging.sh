#!/usr/bin/env bash
# Paging of the list commands (issue 9): `mesatee ... list` fetches every page;
# --limit N / --cursor C ask for one page and print the next cursor on stderr;
# JSON output carries next_cursor; bad --limit / --cursor are usage errors and
# a cursor of another list is refused by the server (400) with a clear message.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mt_start_server
mt_login admin
mt_add_user alice
for i in 1 2 3 4 5; do
  as alice key generate --out "$MT_WORK/k$i" >/dev/null
  as alice file register-output --key "$MT_WORK/k$i" --name "out$i" >/dev/null
done
n=$(as alice file list | grep -c '^[0-9a-f]\{32\}') || true
[ "$n" = 5 ] || fail "file list shows $n files, expected 5: $(as alice file list)"
ok "file list (all pages): 5 files"

as alice file list --limit 2 > "$MT_WORK/p1" 2> "$MT_WORK/p1.err"
[ "$(grep -c '^[0-9a-f]\{32\}' "$MT_WORK/p1")" = 2 ] || fail "page 1: $(cat "$MT_WORK/p1")"
cur=$(sed -n 's/^more: add --cursor \([0-9a-f]*\) for the next page$/\1/p' "$MT_WORK/p1.err")
[ -n "$cur" ] || fail "no next cursor hint on stderr: $(cat "$MT_WORK/p1.err")"
ids=$(grep -o '^[0-9a-f]\{32\}' "$MT_WORK/p1")
pages=1
while [ -n "$cur" ]; do
  as alice file list --limit 2 --cursor "$cur" > "$MT_WORK/p" 2> "$MT_WORK/p.err"
  ids="$ids"$'\n'"$(grep -o '^[0-9a-f]\{32\}' "$MT_WORK/p")"
  cur=$(sed -n 's/^more: add --cursor \([0-9a-f]*\) for the next page$/\1/p' "$MT_WORK/p.err")
  pages=$((pages + 1))
  [ "$pages" -le 5 ] || fail "paging does not end"
done
[ "$pages" = 3 ] || fail "5 files in pages of 2 took $pages pages"
[ "$(echo "$ids" | sort -u | grep -c .)" = 5 ] || fail "pages do not cover the 5 files once: $ids"
ok "file list --limit 2 --cursor: 3 pages, every file once"

j=$(as alice --output json file list --limit 4)
[ "$(jget "$j" '.files | length')" = 4 ] || fail "json page: $j"
c2=$(jget "$j" '.next_cursor')
[ "$c2" != null ] || fail "json page without next_cursor: $j"
j=$(as alice --output json file list --limit 4 --cursor "$c2")
[ "$(jget "$j" '.next_cursor')" = null ] || fail "last json page has a next_cursor: $j"
j=$(as alice --output json file list)
[ "$(jget "$j" '.files | length')" = 5 ] && [ "$(jget "$j" '.next_cursor')" = null ] \
  || fail "json all pages: $j"
ok "--output json: next_cursor, null on the last page"

expect_fail "--limit 0" "--limit must be a number from 1 to 1000" as alice file list --limit 0
expect_fail "--limit abc" "--limit must be a number from 1 to 1000" as alice task list --limit abc
expect_fail "--limit 1001" "--limit must be a number from 1 to 1000" as alice function list --limit 1001
expect_fail "--cursor zz" "--cursor takes the next cursor" as alice file list --cursor zz
expect_fail "a files cursor for tasks" "belongs to another list" as alice task list --cursor "$c2"
expect_fail "an altered cursor" "not a cursor of this list" as alice file list --cursor "${c2}00"
expect_fail "a user list cursor from a non-admin" "administrators" as alice user list --cursor "$c2"
expect_fail "a files cursor for users" "another list" as admin user list --cursor "$c2"
out=$(curl -s --cacert "$MESATEE_CA" -H "Authorization: Bearer $(cat "$MT_WORK/alice.token")" \
  "$MESATEE_SERVER/v1/files?limit=2&bogus=1")
case "$out" in *'"invalid_argument"'*"unknown parameter"*) ok "unknown query parameter: 400" ;;
  *) fail "unknown parameter: $out" ;; esac

# the other lists page the same way
as admin user list --limit 1 2> "$MT_WORK/u.err" | grep -q . || fail "user list --limit 1 printed nothing"
grep -q '^more: add --cursor' "$MT_WORK/u.err" || fail "user list --limit 1: no next cursor"
[ "$(as admin user list | grep -c .)" -ge 2 ] || fail "user list (all pages)"
as alice task list >/dev/null && as alice function list >/dev/null || fail "task/function list"
as admin audit list --limit 3 2> "$MT_WORK/a.err" >/dev/null
ac=$(sed -n 's/^more: add --cursor \([0-9a-f]*\) for the next page$/\1/p' "$MT_WORK/a.err")
[ -n "$ac" ] || fail "audit list --limit 3: no next cursor: $(cat "$MT_WORK/a.err")"
j=$(as admin --output json audit list --limit 3 --cursor "$ac")
first=$(jget "$j" '.entries[0].seq')
[ "$first" = 4 ] || fail "audit page 2 starts at seq $first, expected 4: $j"
expect_fail "audit --after and --cursor" "not both" as admin audit list --after 1 --cursor "$ac"
ok "user, task, function and audit lists page"
