#!/usr/bin/env bash
# Transit operations under concurrency (docs/keystore.md, "Performance"):
# tests/integration/transit_race.py drives encrypt/decrypt/rewrap from
# several keep-alive connections while other connections rotate the key,
# change its min_decryption_version / min_encryption_version and delete and
# re-create a key in use, and checks every answer (no stale version after a
# change is answered, every plaintext back, a deleted key unusable at once).
# Afterwards the audit log holds exactly one entry per request with its
# status (the request threads and group commit lose none), in one chain
# without gaps that `mesatee audit verify` accepts.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 (the CLI) not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
DB=$MT_DATA/mesatee.db
q() { mt_sql "$1"; }

mt_start_server --level soft
mt_login admin
mt_add_user alice
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ALICE_TOKEN=$MT_WORK/alice.token \
MT_COUNTS=$MT_WORK/counts.json "$py" "$root/tests/integration/transit_race.py" ||
  fail "transit operations under concurrency"

total=0
for st in $(jq -r 'keys[]' "$MT_WORK/counts.json"); do
  want=$(jq -r --arg s "$st" '.[$s]' "$MT_WORK/counts.json")
  got=$(q "SELECT count(*) FROM audit WHERE action LIKE '% /v1/transit/%' AND status=$st")
  [ "$got" = "$want" ] || fail "$want transit requests answered $st but $got audit entries"
  total=$((total + want))
done
[ "$(q "SELECT count(*) FROM audit WHERE action LIKE '% /v1/transit/%'")" = "$total" ] ||
  fail "audit entries of transit requests the client did not make"
[ "$(q "SELECT count(*) FROM audit WHERE actor='-' AND status=401 AND action LIKE '% /v1/transit/%'")" = 5 ] ||
  fail "refused tokens not audited as actor -"
[ "$(q "SELECT CASE WHEN count(*) = max(seq) - min(seq) + 1 THEN 1 ELSE 0 END FROM audit")" = 1 ] || fail "audit seq has gaps"
ok "$total transit requests, one audit entry each with its status; seq without gaps"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$MT_WORK/metrics.txt"
grep -q '^mesatee_audit_failures_total 0$' "$MT_WORK/metrics.txt" || fail "audit failures counted"
n=$(awk '/^mesatee_http_requests_total\{.*status="401"\} / {s += $NF} END {print s + 0}' \
  "$MT_WORK/metrics.txt")
[ "$n" = 5 ] || fail "refused tokens not metered ($n): $(grep 'status="401"' "$MT_WORK/metrics.txt")"
ok "metered, no audit failure"
# The token of a small transit body is checked by the request thread
# (Bearer error="invalid_token"); a body over 64 KiB, or one whose client
# asks for Expect: 100-continue, still has its token checked at the head,
# before its body is read (plain "Bearer", connection closed).
tok=$(cat "$MT_WORK/alice.token")
bad=${tok%?}$([ "${tok: -1}" = 0 ] && echo 1 || echo 0)
post() { curl -sS -o "$MT_WORK/post.out" -D "$MT_WORK/post.hdr" -w '%{http_code}' \
  --cacert "$MESATEE_CA" -H "X-Vault-Token: $bad" "$@" "$MESATEE_SERVER/v1/transit/encrypt/race"; }
[ "$(post -d '{"plaintext":"aGk="}')" = 401 ] || fail "small body, bad token: not 401"
grep -qi '^WWW-Authenticate: Bearer error="invalid_token"' "$MT_WORK/post.hdr" ||
  fail "small body, bad token: $(cat "$MT_WORK/post.hdr")"
head -c 70000 /dev/zero | tr '\0' 'a' > "$MT_WORK/big.body"
[ "$(post --data-binary @"$MT_WORK/big.body")" = 401 ] || fail "70000-byte body, bad token: not 401"
grep -qi '^WWW-Authenticate: Bearer.$' "$MT_WORK/post.hdr" ||
  fail "70000-byte body, bad token: not refused at the head: $(cat "$MT_WORK/post.hdr")"
[ "$(post -H 'Expect: 100-continue' -d '{"plaintext":"aGk="}')" = 401 ] ||
  fail "Expect: 100-continue, bad token: not 401"
grep -qi '^WWW-Authenticate: Bearer.$' "$MT_WORK/post.hdr" ||
  fail "Expect: 100-continue, bad token: not refused at the head: $(cat "$MT_WORK/post.hdr")"
[ "$(q "SELECT count(*) FROM audit WHERE actor='-' AND status=401 AND action LIKE '% /v1/transit/%'")" = 8 ] ||
  fail "the three refused tokens are not audited"
ok "bad tokens: small bodies refused by the request thread, large or Expect ones at the head; audited"
# A graceful stop while requests are on the request threads: the server
# exits cleanly, and every encrypt answered 200 has its durable entry.
before=$(q "SELECT count(*) FROM audit WHERE actor='alice' AND status=200 AND action='POST /v1/transit/encrypt/{key}'")
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ALICE_TOKEN=$MT_WORK/alice.token "$py" - \
  > "$MT_WORK/stop.out" 2>&1 <<'EOP' & lp=$!
import http.client, json, os, ssl, threading, urllib.parse
u = urllib.parse.urlsplit(os.environ["MT_URL"])
ctx = ssl.create_default_context(cafile=os.environ["MT_CA"])
tok = open(os.environ["MT_ALICE_TOKEN"]).read().strip()
ok = [0] * 4
def run(i):
    try:
        c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
        while True:
            c.request("POST", "/v1/transit/encrypt/race", body='{"plaintext":"aGk="}',
                      headers={"X-Vault-Token": tok})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                ok[i] += 1
            elif r.status != 503:
                print("unexpected", r.status)
            if r.getheader("Connection", "").lower() == "close":
                return
    except (OSError, http.client.HTTPException):
        return
ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print("answered200", sum(ok))
EOP
for _ in $(seq 100); do
  [ "$(q "SELECT count(*) FROM audit WHERE actor='alice' AND status=200 AND action='POST /v1/transit/encrypt/{key}'")" -gt $((before + 50)) ] && break
  sleep 0.1
done
kill -TERM "$MT_PID"; rc=0; wait "$MT_PID" || rc=$?; MT_PID=
[ "$rc" = 0 ] || fail "the server exited $rc on SIGTERM under transit load"
wait $lp || fail "load during the stop: $(cat "$MT_WORK/stop.out")"
grep -q unexpected "$MT_WORK/stop.out" && fail "during the stop: $(cat "$MT_WORK/stop.out")"
n200=$(sed -n 's/^answered200 //p' "$MT_WORK/stop.out")
after=$(q "SELECT count(*) FROM audit WHERE actor='alice' AND status=200 AND action='POST /v1/transit/encrypt/{key}'")
[ -n "$n200" ] && [ "$n200" -gt 0 ] && [ $((after - before)) -ge "$n200" ] ||
  fail "stop under load: $n200 encrypts answered 200 but $((after - before)) entries"
ok "SIGTERM under transit load: clean exit, each of the $n200 answered encrypts audited"
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" >/dev/null || fail "offline audit verify"
ok "offline audit verify: the chain is intact"
