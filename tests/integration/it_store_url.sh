#!/usr/bin/env bash
# serve --store URL (docs/cluster.md): a SQLite store outside the data
# directory (plain path and file: URL) holds the users across a restart;
# garbage URLs are refused before anything starts (postgres://: it_store_pg).
source "$(dirname "$0")/lib.sh"
STORE=$MT_WORK/elsewhere/store.db
mkdir -p "$MT_WORK/elsewhere"
mt_start_server --store "$STORE"
mt_login admin
mt_add_user alice
[ -s "$STORE" ] || fail "--store $STORE was not created"
[ ! -e "$MT_DATA/mesatee.db" ] || fail "the default store was created beside --store"
ok "--store PATH: the store is the named file"
mt_stop_server
# the same store through a file: URL (and the environment variable) after a restart
MESATEE_STORE="file://$STORE" mt_start_server
as alice --output json user show alice | jq -e '.username == "alice"' >/dev/null ||
  fail "alice is not in the store after the restart through file://"
ok "MESATEE_STORE=file://PATH: the same store after a restart"
mt_stop_server
# the offline audit tools follow --store (or MESATEE_STORE)
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" --store "$STORE" >/dev/null ||
  fail "audit verify --store PATH"
MESATEE_STORE="file://$STORE" "$MESATEE_BIN" audit verify --data-dir "$MT_DATA" >/dev/null ||
  fail "audit verify with MESATEE_STORE"
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" >/dev/null 2>&1 &&
  fail "audit verify found a store in the data directory, where there is none"
expect_fail "audit verify --store with an unknown scheme" "unknown URL scheme" \
  "$MESATEE_BIN" audit verify --data-dir "$MT_DATA" --store "mysql://h/db"
"$MESATEE_BIN" audit export --data-dir "$MT_DATA" --store "$STORE" --since 1 \
  --out "$MT_WORK/export.jsonl" >/dev/null || fail "audit export --store PATH"
[ -s "$MT_WORK/export.jsonl" ] || fail "audit export --store wrote nothing"
ok "audit verify/export --store: the store outside the data directory"

refuse() { # refuse DESCRIPTION EXPECTED-TEXT ARGS...
  local what=$1 want=$2 out rc=0
  shift 2
  out=$("$MESATEE_BIN" serve --data-dir "$MT_WORK/refused" --listen 127.0.0.1:0 "$@" 2>&1) || rc=$?
  [ "$rc" -eq 2 ] || fail "$what: exit $rc, want 2 (usage): $out"
  grep -qF -- "$want" <<<"$out" || fail "$what: message lacks '$want': $out"
  [ ! -e "$MT_WORK/refused" ] || fail "$what: the data directory was created"
  ok "$what refused: $(head -n1 <<<"$out" | cut -c1-100)"
}
refuse "an unknown scheme" "unknown URL scheme" --store "mysql://h/db"
refuse "a file URL with a host" "names no host" --store "file://host/x.db"
refuse "an empty path" "empty SQLite path" --store "file:"
refuse "an empty --store" "empty" --store ""
