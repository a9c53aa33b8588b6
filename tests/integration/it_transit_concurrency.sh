#!/usr/bin/env bash
# Group commit of audit entries (docs/design.md, "Audit log"): many concurrent
# transit requests from several keep-alive connections (bench/transit_load)
# are answered, and afterwards the audit log holds exactly one entry per
# request, with its status, in one linear chain whose hashes and MACs the
# daemon checks (checkpoint) and `mesatee audit verify` checks offline; the
# requests are metered. A batch that cannot commit (a trigger injected into
# the store makes the insert fail) is answered and spooled locally, and its
# entries reach the chain once the store takes them (audit spool).
source "$(dirname "$0")/lib.sh"
LOAD=${MT_TRANSIT_LOAD:?MT_TRANSIT_LOAD must point at bench/transit_load}
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 (the CLI) not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
DB=$MT_DATA/mesatee.db
q() { mt_sql "$1"; }

mt_start_server --level soft
mt_login admin
mt_add_user alice
mt_add_user bob
as alice key create aes >/dev/null
as bob key create ec --type ecdsa-p256 >/dev/null
L() { "$LOAD" -s "$MESATEE_SERVER" -C "$MESATEE_CA" "$@"; }

# 12 x 40 encrypts (alice), 6 x 30 signs (bob) and 4 x 10 requests for a key
# that does not exist, all at once
L -t "$MT_WORK/alice.token" -k aes -o encrypt -c 12 -n 40 > "$MT_WORK/enc.out" & p1=$!
L -t "$MT_WORK/bob.token" -k ec -o sign -c 6 -n 30 > "$MT_WORK/sign.out" & p2=$!
L -t "$MT_WORK/bob.token" -k nosuch -o encrypt -c 4 -n 10 > "$MT_WORK/bad.out" & p3=$!
wait $p1 || fail "encrypt load: $(cat "$MT_WORK/enc.out")"
wait $p2 || fail "sign load: $(cat "$MT_WORK/sign.out")"
if wait $p3; then fail "requests for a missing key succeeded"; fi
grep -q " 0 ok, 40 failed" "$MT_WORK/bad.out" || fail "missing key: $(cat "$MT_WORK/bad.out")"
ok "480 encrypts, 180 signs, 40 refused requests answered concurrently"

n_enc=$(q "SELECT count(*) FROM audit WHERE actor='alice' AND action='POST /v1/transit/encrypt/{key}' AND status=200")
n_sign=$(q "SELECT count(*) FROM audit WHERE actor='bob' AND action='POST /v1/transit/sign/{key}' AND status=200")
n_bad=$(q "SELECT count(*) FROM audit WHERE actor='bob' AND action='POST /v1/transit/encrypt/{key}' AND status=404")
[ "$n_enc" = 480 ] || fail "480 encrypts but $n_enc audit entries"
[ "$n_sign" = 180 ] || fail "180 signs but $n_sign audit entries"
[ "$n_bad" = 40 ] || fail "40 refused requests but $n_bad audit entries with status 404"
[ "$(q "SELECT CASE WHEN count(*) = max(seq) - min(seq) + 1 THEN 1 ELSE 0 END FROM audit")" = 1 ] || fail "audit seq has gaps"
ok "one audit entry per request, with its status; seq without gaps"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$MT_WORK/metrics.txt"
grep -q '^mesatee_http_requests_total{route="POST /v1/transit/encrypt/{key}",status="200"} 480$' \
  "$MT_WORK/metrics.txt" || fail "encrypts not metered: $(grep transit "$MT_WORK/metrics.txt")"
grep -q '^mesatee_http_requests_total{route="POST /v1/transit/sign/{key}",status="200"} 180$' \
  "$MT_WORK/metrics.txt" || fail "signs not metered"
ok "metered: 480 encrypts, 180 signs"
batches=$(sed -n 's/^mesatee_audit_group_commits_total //p' "$MT_WORK/metrics.txt")
grouped=$(sed -n 's/^mesatee_audit_group_entries_total //p' "$MT_WORK/metrics.txt")
[ -n "$batches" ] && [ "$grouped" -ge 700 ] && [ "$batches" -le "$grouped" ] ||
  fail "group commit metrics: $batches batches, $grouped entries"
ok "group committer: $grouped entries in $batches transactions"
grep -q '^mesatee_audit_failures_total 0$' "$MT_WORK/metrics.txt" || fail "audit failures counted"

# the daemon walks the whole chain (hashes and MACs) before it signs
as alice audit checkpoint --out "$MT_WORK/cp1.json" >/dev/null || fail "checkpoint of the chain"
entries=$(jq -r .entries "$MT_WORK/cp1.json")
[ "$entries" -ge 700 ] || fail "checkpoint covers $entries entries"
ok "daemon checkpoint over $entries entries (hash chain and MACs checked)"

# A batch that cannot commit: its entries go to the local audit spool (MACed,
# docs/operations.md "Audit spool"), the requests are answered, and the
# entries reach the chain, with their original status, once the store takes
# them again.
if [ "${MT_TEST_PG:-}" = 1 ]; then
  q "CREATE FUNCTION perf_fail_fn() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'injected'; END \$\$;
     CREATE TRIGGER perf_fail BEFORE INSERT ON audit FOR EACH ROW
       WHEN (NEW.action = 'POST /v1/transit/hash') EXECUTE FUNCTION perf_fail_fn();"
else
  q "CREATE TRIGGER perf_fail BEFORE INSERT ON audit WHEN NEW.action = 'POST /v1/transit/hash' BEGIN SELECT RAISE(ABORT, 'injected'); END;"
fi
code=$(curl -sS -o "$MT_WORK/hash.json" -w '%{http_code}' --cacert "$MESATEE_CA" \
  -H "X-Vault-Token: $(cat "$MT_WORK/alice.token")" -d '{"input":"aGVsbG8="}' \
  "$MESATEE_SERVER/v1/transit/hash")
[ "$code" = 200 ] || fail "a request whose audit commit failed (spooled) answered $code: $(cat "$MT_WORK/hash.json")"
[ "$(q "SELECT count(*) FROM audit WHERE action = 'POST /v1/transit/hash'")" = 0 ] ||
  fail "the refused entry is in the chain while the store refuses it"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$MT_WORK/metrics2.txt"
grep -q '^mesatee_audit_spooled_total [1-9]' "$MT_WORK/metrics2.txt" ||
  fail "the entry is not counted as spooled: $(grep audit_spool "$MT_WORK/metrics2.txt")"
if [ "${MT_TEST_PG:-}" = 1 ]; then q "DROP TRIGGER perf_fail ON audit; DROP FUNCTION perf_fail_fn();"; else q "DROP TRIGGER perf_fail;"; fi
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$MESATEE_CA" \
  -H "X-Vault-Token: $(cat "$MT_WORK/alice.token")" -d '{"input":"aGVsbG8="}' \
  "$MESATEE_SERVER/v1/transit/hash")
[ "$code" = 200 ] || fail "hash after the fault answered $code"
n=0
for _ in $(seq 600); do
  n=$(q "SELECT count(*) FROM audit WHERE action = 'POST /v1/transit/hash' AND status = 200")
  [ "$n" = 2 ] && break
  sleep 0.1
done
[ "$n" = 2 ] || fail "the spooled entry and the one after the fault: $n of 2 in the chain"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$MT_WORK/metrics3.txt"
grep -q '^mesatee_audit_spool_replayed_total [1-9]' "$MT_WORK/metrics3.txt" ||
  fail "the replay is not counted: $(grep audit_spool "$MT_WORK/metrics3.txt")"
grep -q '^mesatee_audit_failures_total 0$' "$MT_WORK/metrics3.txt" ||
  fail "an entry was lost (neither appended nor spooled): $(grep audit_failures "$MT_WORK/metrics3.txt")"
ok "a batch that cannot commit: answered, spooled, appended once the store takes it; the next one commits"

as alice audit checkpoint --out "$MT_WORK/cp2.json" >/dev/null || fail "checkpoint after the fault"
mt_stop_server
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp1.json" \
  --checkpoint "$MT_WORK/cp2.json" >/dev/null || fail "offline audit verify"
ok "offline audit verify: the chain is intact and extends both checkpoints"
