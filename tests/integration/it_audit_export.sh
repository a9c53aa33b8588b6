#!/usr/bin/env bash
# Audit retention (issue 9): probes and scrapes are counted, not chained;
# `mesatee audit export --since` while the server runs; two consecutive
# exports verify offline and chain, against a held signed checkpoint and the
# store; tampered, truncated, reordered and garbage exports are refused.
source "$(dirname "$0")/lib.sh"
B=$MESATEE_BIN
mt_start_server --level soft
mt_login admin
mt_add_user alice
count() { as admin --output json audit list --limit 1000 | jq '.entries | length'; }
n0=$(count)
for _ in $(seq 10); do
  curl -sf --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz" >/dev/null
  curl -sf --cacert "$MESATEE_CA" "$MESATEE_SERVER/readyz" >/dev/null
  curl -sf --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" >/dev/null
done
n1=$(count)
# the first `audit list` itself is one entry
[ "$n1" -eq $((n0 + 1)) ] || fail "30 probes/scrapes changed the audit log from $n0 to $n1 entries"
m=$(curl -sf --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics")
grep -q 'mesatee_http_requests_total{route="GET /healthz",status="200"} 10$' <<<"$m" || fail "healthz not counted"
grep -q 'mesatee_http_requests_total{route="GET /readyz",status="200"} 10$' <<<"$m" || fail "readyz not counted"
grep -Eq '^mesatee_attest_peer_cache_misses_total [0-9]+$' <<<"$m" || fail "no verified-peer cache counters"
ok "30 probes and scrapes: counted in mesatee_http_requests_total, no audit entries"
[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$MESATEE_CA" -X POST "$MESATEE_SERVER/healthz")" = 405 ] || fail "POST /healthz"

for i in 1 2 3; do "$B" key generate --out "$MT_WORK/k$i" >/dev/null
  as alice file register-output --key "$MT_WORK/k$i" >/dev/null; done
as alice audit checkpoint --out "$MT_WORK/cp.json" >/dev/null
pk=$(jq -r .key_id "$MT_WORK/cp.json"); cpn=$(jq -r .entries "$MT_WORK/cp.json")
# export 1: everything so far (server running)
e1=$("$B" --output json audit export --data-dir "$MT_DATA" --since 1 --out "$MT_WORK/e1.jsonl") || fail "export 1: $e1"
last1=$(jget "$e1" .last)
[ "$(jget "$e1" .first)" = 1 ] || fail "export 1 first: $e1"
[ "$(stat -c %a "$MT_WORK/e1.jsonl")" = 600 ] || fail "export not mode 0600"
for i in 4 5; do "$B" key generate --out "$MT_WORK/k$i" >/dev/null
  as alice file register-output --key "$MT_WORK/k$i" >/dev/null; done
e2=$("$B" --output json audit export --data-dir "$MT_DATA" --since $((last1 + 1)) --out "$MT_WORK/e2.jsonl") || fail "export 2: $e2"
[ "$(jget "$e2" .first)" = $((last1 + 1)) ] || fail "export 2 first: $e2"
[ "$(jget "$e2" .anchor)" = "$(jget "$e1" .head)" ] || fail "export 2 is not anchored on export 1's head"
ok "two exports while the server runs: 1..$last1 and $((last1 + 1))..$(jget "$e2" .last)"
# by time: every entry from now on (none yet) is refused; an old time exports all
expect_fail "export since a future time" "no audit entries" \
  "$B" audit export --data-dir "$MT_DATA" --since 2999-01-01T00:00:00Z --out "$MT_WORK/none.jsonl"
[ -e "$MT_WORK/none.jsonl" ] && fail "an empty export left a file"
"$B" audit export --data-dir "$MT_DATA" --since 2000-01-01T00:00:00Z --out "$MT_WORK/all.jsonl" >/dev/null
[ "$(head -1 "$MT_WORK/all.jsonl" | jq -r .first)" = 1 ] || fail "export by time"
ok "export by time"

# offline verification (the server keeps running)
out=$("$B" --output json audit verify --export "$MT_WORK/e1.jsonl" --export "$MT_WORK/e2.jsonl" \
        --checkpoint "$MT_WORK/cp.json" --key-id "$pk") || fail "verify: $out"
[ "$(jget "$out" .checkpoints_matched)" = 1 ] || fail "checkpoint $cpn not matched: $out"
ok "two exports chain, checkpoint of $cpn entries inside them: $out"
"$B" audit verify --export "$MT_WORK/e2.jsonl" >/dev/null || fail "a later export alone verifies from its anchor"
mt_stop_server
"$B" audit verify --export "$MT_WORK/e1.jsonl" --export "$MT_WORK/e2.jsonl" --data-dir "$MT_DATA" >/dev/null \
  || fail "the store does not continue the exports"
ok "the store continues the exports"

# garbage
expect_fail "exports out of order" "does not continue" \
  "$B" audit verify --export "$MT_WORK/e2.jsonl" --export "$MT_WORK/e1.jsonl"
python3 - "$MT_WORK/e1.jsonl" "$MT_WORK/t1.jsonl" <<'EOP'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
e = json.loads(lines[3]); e["actor"] = "mallory"; lines[3] = json.dumps(e, separators=(",", ":"))
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOP
expect_fail "edited entry" "content was changed" "$B" audit verify --export "$MT_WORK/t1.jsonl"
head -n 3 "$MT_WORK/e1.jsonl" > "$MT_WORK/t2.jsonl"
expect_fail "truncated export" "truncated" "$B" audit verify --export "$MT_WORK/t2.jsonl"
head -c 100 "$MT_WORK/e1.jsonl" > "$MT_WORK/t3.jsonl"
expect_fail "cut mid-line" "newline" "$B" audit verify --export "$MT_WORK/t3.jsonl"
{ cat "$MT_WORK/e1.jsonl"; echo '{}'; } > "$MT_WORK/t4.jsonl"
expect_fail "bytes after the last entry" "bytes after" "$B" audit verify --export "$MT_WORK/t4.jsonl"
sed '1s/"anchor":"0/"anchor":"1/' "$MT_WORK/e1.jsonl" > "$MT_WORK/t5.jsonl"
expect_fail "wrong anchor" "header" "$B" audit verify --export "$MT_WORK/t5.jsonl"
echo 'not json' > "$MT_WORK/t6.jsonl"
expect_fail "not an export" "header" "$B" audit verify --export "$MT_WORK/t6.jsonl"
expect_fail "missing export file" "No such file" "$B" audit verify --export "$MT_WORK/nope.jsonl"
expect_fail "export without --since" "missing --since" "$B" audit export --data-dir "$MT_DATA" --out "$MT_WORK/x.jsonl"
expect_fail "export without --out" "missing --out" "$B" audit export --data-dir "$MT_DATA" --since 1
expect_fail "export without --data-dir" "missing --data-dir" "$B" audit export --since 1 --out "$MT_WORK/x.jsonl"
expect_fail "bad --since" "--since must be" "$B" audit export --data-dir "$MT_DATA" --since yesterday --out "$MT_WORK/x.jsonl"
expect_fail "--since 0" "out of range" "$B" audit export --data-dir "$MT_DATA" --since 0 --out "$MT_WORK/x.jsonl"
# (MESATEE_STORE unset: under MT_TEST_PG it names the store, and the directory is not read)
expect_fail "export of a non data dir" "" env -u MESATEE_STORE "$B" audit export --data-dir "$MT_WORK/nowhere" --since 1 --out "$MT_WORK/x.jsonl"
[ -e "$MT_WORK/x.jsonl" ] && fail "a failed export left a file"
ok "garbage refused"
