#!/usr/bin/env bash
# Audit retention (issue 9): `mesatee audit prune --before SEQ --export FILE`
# asks the daemon (it alone holds the audit key that MACs the prune anchor)
# to delete the entries before SEQ once FILE, a verified export, holds them.
# After a prune the store's chain verifies from the anchor (offline and by
# the daemon's checkpoint), the old export chains into the store, a later
# export chains onto the old one; a prune without a covering export, past the
# end, by a non-admin or with garbage is refused with nothing deleted; a
# tampered or moved anchor is detected (daemon: MAC; offline: chain, held
# export or checkpoint).
source "$(dirname "$0")/lib.sh"
B=$MESATEE_BIN
mt_start_server --level soft
mt_login admin
mt_add_user alice
for i in 1 2 3; do "$B" key generate --out "$MT_WORK/k$i" >/dev/null
  as alice file register-output --key "$MT_WORK/k$i" >/dev/null; done
as alice audit checkpoint --out "$MT_WORK/cp_old.json" >/dev/null
cpo=$(jq -r .entries "$MT_WORK/cp_old.json"); pk=$(jq -r .key_id "$MT_WORK/cp_old.json")
e1=$("$B" --output json audit export --data-dir "$MT_DATA" --since 1 --out "$MT_WORK/e1.jsonl") || fail "export 1: $e1"
last1=$(jget "$e1" .last); head1=$(jget "$e1" .head)
[ "$cpo" -lt "$last1" ] || fail "checkpoint $cpo not inside export 1..$last1"
for i in 4 5; do "$B" key generate --out "$MT_WORK/k$i" >/dev/null
  as alice file register-output --key "$MT_WORK/k$i" >/dev/null; done
rows() { mt_sql "SELECT count(*) FROM audit"; }
n_before=$(rows)

# garbage: nothing is deleted
expect_fail "prune without --export" "missing --export" as admin audit prune --before 3
expect_fail "prune without --before" "missing --before" as admin audit prune --export "$MT_WORK/e1.jsonl"
expect_fail "prune --before x" "--before must be" as admin audit prune --before x --export "$MT_WORK/e1.jsonl"
expect_fail "prune --before 1" "--before must be" as admin audit prune --before 1 --export "$MT_WORK/e1.jsonl"
expect_fail "prune with a missing export" "No such file" as admin audit prune --before 3 --export "$MT_WORK/nope.jsonl"
"$B" audit export --data-dir "$MT_DATA" --since 3 --out "$MT_WORK/part.jsonl" >/dev/null
expect_fail "export not covering the first entries" "does not cover entry 1" \
  as admin audit prune --before 4 --export "$MT_WORK/part.jsonl"
expect_fail "export ending before --before" "does not cover" \
  as admin audit prune --before $((last1 + 3)) --export "$MT_WORK/e1.jsonl"
python3 - "$MT_WORK/e1.jsonl" "$MT_WORK/t1.jsonl" <<'EOP'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
e = json.loads(lines[3]); e["actor"] = "mallory"; lines[3] = json.dumps(e, separators=(",", ":"))
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOP
expect_fail "edited export" "content was changed" as admin audit prune --before 3 --export "$MT_WORK/t1.jsonl"
expect_fail "non-admin prune" "administrators only" as alice audit prune --before 3 --export "$MT_WORK/e1.jsonl"
"$B" audit export --data-dir "$MT_DATA" --since 1 --out "$MT_WORK/all.jsonl" >/dev/null
alast=$(head -1 "$MT_WORK/all.jsonl" | jq -r .last)
expect_fail "--before past the export's end" "does not cover" \
  as admin audit prune --before $((alast + 50)) --export "$MT_WORK/all.jsonl"
# post BODY: "<http status> <body>" of a direct POST /v1/audit/prune as admin
post() { curl -s -w ' %{http_code}' --cacert "$MESATEE_CA" -H "Authorization: Bearer $(cat "$MT_WORK/admin.token")" \
  -H 'Content-Type: application/json' -X POST --data "$1" "$MESATEE_SERVER/v1/audit/prune"; }
want() { case "$2" in *"$3"*" $1") ;; *) fail "POST /v1/audit/prune, $4: want $1 and '$3' in: $2" ;; esac; }
want 409 "$(post "{\"before\":3,\"export_first\":1,\"export_last\":$last1,\"export_head\":\"$(printf '%064d' 7)\"}")" \
  "not this audit log" "a wrong export head"
want 409 "$(post "{\"before\":3,\"export_first\":1,\"export_last\":$((alast + 9)),\"export_head\":\"$head1\"}")" \
  "not this audit log" "an export past the log's end"
want 400 "$(post "{\"before\":$((alast + 900)),\"export_first\":1,\"export_last\":$alast,\"export_head\":\"$(head -1 "$MT_WORK/all.jsonl" | jq -r .head)\"}")" \
  "last entry is" "before past the log's end"
want 400 "$(post '{"before":"3","export_first":1,"export_last":2,"export_head":"x"}')" "before" "a string before"
want 400 "$(post "{\"before\":3,\"export_first\":1,\"export_last\":$last1,\"export_head\":\"$head1\",\"x\":1}")" \
  "x" "an unknown field"
want 400 "$(post "{\"before\":3,\"export_first\":1,\"export_last\":$last1,\"export_head\":\"ABC\"}")" \
  "export_head" "a bad head"
want 400 "$(post "{\"before\":3,\"export_first\":5,\"export_last\":4,\"export_head\":\"$head1\"}")" \
  "export_last" "last before first"
want 400 "$(post 'not json')" "" "not JSON"
[ "$(mt_sql "SELECT min(seq) FROM audit")" = 1 ] \
  || fail "a refused prune deleted entries"
ok "garbage refused, nothing deleted ($n_before rows before)"

# the prune (server running)
p=$(as admin --output json audit prune --before $((last1 + 1)) --export "$MT_WORK/e1.jsonl") || fail "prune: $p"
[ "$(jget "$p" .anchor_seq)" = "$last1" ] || fail "anchor seq: $p"
[ "$(jget "$p" .anchor_hash)" = "$head1" ] || fail "anchor hash: $p"
[ "$(jget "$p" .deleted)" = "$last1" ] || fail "deleted: $p"
first=$(as admin --output json audit list --limit 1 | jq '.entries[0].seq')
[ "$first" = $((last1 + 1)) ] || fail "the log starts at $first, not $((last1 + 1))"
as admin --output json audit list --limit 1000 | jq -e '.entries | map(.action) | index("POST /v1/audit/prune")' >/dev/null \
  || fail "the prune is not audited"
ok "pruned entries 1..$last1; the log starts at $first; the prune is itself an entry"
expect_fail "prune again" "nothing to prune" as admin audit prune --before $((last1 + 1)) --export "$MT_WORK/e1.jsonl"
as alice audit checkpoint --out "$MT_WORK/cp_new.json" >/dev/null || fail "checkpoint after prune"
cpn=$(jq -r .entries "$MT_WORK/cp_new.json")
as alice audit verify --checkpoint "$MT_WORK/cp_new.json" >/dev/null || fail "online verify after prune"
expect_fail "checkpoint for a pruned entry" "was pruned" as alice audit verify --checkpoint "$MT_WORK/cp_old.json"
ok "the daemon verifies its keyed chain from the anchor (checkpoint of $cpn entries)"
mt_stop_server
mt_start_server --level soft
as alice audit checkpoint >/dev/null || fail "checkpoint after restart"
mt_stop_server

# offline: from the anchor, the old export into the store, a new export onto the old one
v=$("$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp_new.json" --key-id "$pk") || fail "verify: $v"
grep -q "from the prune anchor (entry $last1" <<<"$v" || fail "verify does not name the anchor: $v"
"$B" audit verify --export "$MT_WORK/e1.jsonl" --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp_old.json" \
  --checkpoint "$MT_WORK/cp_new.json" --key-id "$pk" >/dev/null || fail "the old export does not chain into the pruned store"
e3=$("$B" --output json audit export --data-dir "$MT_DATA" --since 1 --out "$MT_WORK/e3.jsonl") || fail "export 3: $e3"
[ "$(jget "$e3" .first)" = $((last1 + 1)) ] && [ "$(jget "$e3" .anchor)" = "$head1" ] || fail "export after prune: $e3"
"$B" audit verify --export "$MT_WORK/e1.jsonl" --export "$MT_WORK/e3.jsonl" --data-dir "$MT_DATA" >/dev/null \
  || fail "exports across the prune do not chain"
expect_fail "a pruned store without the export, held checkpoint" "was pruned" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp_old.json"
ok "offline: the chain verifies from the anchor; exports chain across the prune"

# a tampered or moved anchor
# (each on the pruned store, put back after: mt_store_save/restore serve both backends)
mt_store_save pruned
mt_sql "UPDATE audit_anchor SET hash = '$(printf '%064d' 1)'"
out=$("$B" audit verify --data-dir "$MT_DATA" 2>&1) && fail "changed anchor hash verified: $out"
grep -q "prev_hash" <<<"$out" || fail "changed anchor hash: $out"
ok "anchor hash changed: offline chain broken"
# moved: one more entry deleted, the anchor rewritten consistently onto it
mt_store_restore pruned
mt_sql "UPDATE audit_anchor SET seq = seq + 1, hash = (SELECT hash FROM audit WHERE seq = $((last1 + 1))); DELETE FROM audit WHERE seq = $((last1 + 1))"
"$B" audit verify --data-dir "$MT_DATA" >/dev/null \
  || fail "a consistently moved anchor breaks the unkeyed chain (expected only the key to tell)"
expect_fail "moved anchor vs the held export" "was pruned" \
  "$B" audit verify --export "$MT_WORK/e1.jsonl" --data-dir "$MT_DATA"
mt_start_server --level soft
expect_fail "moved anchor (daemon)" "integrity check failed" as alice audit checkpoint
mt_stop_server
mt_store_restore pruned
mt_sql "DELETE FROM audit_anchor"
expect_fail "anchor row deleted" "entries removed" "$B" audit verify --data-dir "$MT_DATA"
ok "tampered, moved and deleted anchors are detected"
