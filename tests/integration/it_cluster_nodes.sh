#!/usr/bin/env bash
# Several `serve` nodes on one PostgreSQL store (issue 14, docs/cluster.md
# "Several nodes"): node A (the KeyStore node, --keystore-listen) and node B
# (--keystore-join, verifying A with --keystore-policy) at level soft on one
# throw-away cluster (tests/pg/pg-temp.sh). B is refused until its platform
# key is allowed on A (both sides say why); users made on A log in on B and
# A's tokens work on B; a two-party PSI registered through A and invoked
# through B: both parties decrypt the right result; both nodes write the
# audit chain at once and it verifies (online with the MACs, and offline);
# the KeyStore admin routes on B name A; a node whose measurement the release
# policy does not hold (other settings: --workers 3) is refused and never
# serves; garbage on the join listener gets 400/refusal, never keys.
# Objects live in a shared directory (B's objects -> A's), the "shared
# mount" of docs/cluster.md.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
PGT=$(dirname "$0")/../pg/pg-temp.sh
env_out=$(bash "$PGT" start) || { rc=$?; [ "$rc" = 77 ] && exit 77; fail "pg-temp.sh start: exit $rc"; }
eval "$env_out"
B_PID=
B_DATA=$MT_WORK/node-b
ALL_PIDS=()
stop_b() { [ -z "$B_PID" ] || { kill -TERM "$B_PID" 2>/dev/null || true; wait "$B_PID" 2>/dev/null || true; B_PID=; }; }
stop_all() { local p; for p in "${ALL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap 'stop_all; bash "$PGT" stop "$MT_PG_DIR" >/dev/null 2>&1 || true; mt_cleanup' EXIT

mt_start_server --level soft --store "$MT_PG_URL" --keystore-listen 127.0.0.1:0
A_URL=$MESATEE_SERVER
unset MESATEE_CA
[ -s "$MT_DATA/keystore.url" ] || fail "node A wrote no keystore.url"
KS_URL=$(cat "$MT_DATA/keystore.url")
mt_gateway_policy "$MT_WORK/ks-policy.json"
A_SHOW=$("$MESATEE_BIN" attest show --output json)
export MESATEE_POLICY=$MT_WORK/ks-policy.json # clients verify A by this policy
mt_login admin
for u in alice bob; do mt_add_user "$u"; done

# node B: `serve` joining A; prints server.url when it serves
start_b() { # start_b DATA_DIR LOG [extra args]: background; sets B_PID
  local d=$1 log=$2; shift 2
  mkdir -p "$d"
  [ -e "$d/objects" ] || ln -s "$MT_DATA/objects" "$d/objects"
  "$MESATEE_BIN" serve --data-dir "$d" --listen 127.0.0.1:0 --level soft \
    --admin-password-file "$MT_WORK/admin.pw" --store "$MT_PG_URL" \
    --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/ks-policy.json" "$@" >"$log" 2>&1 &
  B_PID=$!
  ALL_PIDS+=("$B_PID")
}
wait_refused() { # wait_refused LOG: the node must exit non-zero without serving
  local rc=0
  wait "$B_PID" || rc=$?
  B_PID=
  [ "$rc" != 0 ] || fail "a refused node exited 0: $(tail -n 3 "$1")"
  [ ! -s "$(dirname "$1")/server.url" ] || fail "a refused node served"
}
platform_key() { sed -n 's/.*TEE level soft: evidence measurement [0-9a-f]*, platform key \([0-9a-f]\{64\}\).*/\1/p' "$1" | head -n1; }

# 1. B's platform key is not in A's release policy yet: refused on both sides
start_b "$B_DATA" "$MT_WORK/b1.log"
wait_refused "$B_DATA/b1.log"
grep -q "refused by the KeyStore release policy" "$MT_WORK/b1.log" || fail "B does not say why: $(tail -n 2 "$MT_WORK/b1.log")"
grep -q "KeyStore join refused by the release policy" "$MT_WORK/server.log" || fail "A does not log the refusal"
B_PK=$(platform_key "$MT_WORK/b1.log")
[ ${#B_PK} = 64 ] || fail "no platform key in B's log"
ok "a node not in the release policy gets nothing; both sides say why"

# the KeyStore node admits B (its platform key; same build and settings)
as admin admin release allow --kind soft_platform_key "$B_PK" >/dev/null || fail "release allow B's key"
start_b "$B_DATA" "$MT_WORK/b2.log"
for _ in $(seq 1200); do [ -s "$B_DATA/server.url" ] && break; kill -0 "$B_PID" 2>/dev/null || fail "B exited: $(tail -n 5 "$MT_WORK/b2.log")"; sleep 0.05; done
[ -s "$B_DATA/server.url" ] || fail "B did not start"
B_URL=$(cat "$B_DATA/server.url")
grep -q "joined the KeyStore at $KS_URL" "$MT_WORK/b2.log" || fail "B does not log the join"
# clients verify either node: A's and B's platform keys in one policy
jq --arg k "$B_PK" '.soft_platform_keys += [$k]' "$MT_WORK/ks-policy.json" >"$MT_WORK/both.json"
export MESATEE_POLICY=$MT_WORK/both.json
asb() { local u=$1; shift; MESATEE_SERVER=$B_URL MESATEE_TOKEN_FILE="$MT_WORK/$u.btoken" "$MESATEE_BIN" "$@"; }
B_MAIN=$B_PID
ok "node B joined the KeyStore node over attested TLS and serves"

# 2. users made on A log in on B; a token A issued is valid on B
for u in alice bob; do
  asb "$u" login --user "$u" --password-file "$MT_WORK/$u.pw" >/dev/null || fail "$u cannot log in on B"
done
MESATEE_SERVER=$B_URL as alice --output json user show alice | jq -e '.username == "alice"' >/dev/null ||
  fail "A's token is not accepted by B"
ok "users created on A log in on B; A's session token works on B"

# 2b. failed logins count on both nodes (docs/cluster.md "Login rate limits"):
# spread over A and B they are refused after one node's 5, not twice that
# (the bucket drains one failure per 12 s: the bound widens by what drained
# meanwhile); a success on A clears the account's count on B too. Few
# attempts: each failure here also counts for the address 127.0.0.1 (20).
mt_add_user carol
mt_add_user dave
printf 'wrong-password-1\n' > "$MT_WORK/wrong.pw"
login_on() { # login_on URL USER PWFILE: prints 200, 401, 429 or the output
  local out
  if out=$(MESATEE_SERVER=$1 MESATEE_TOKEN_FILE="$MT_WORK/ll.token" "$MESATEE_BIN" login --user "$2" --password-file "$3" 2>&1); then
    echo 200
  else
    case "$out" in *"HTTP 429"*) echo 429 ;; *"HTTP 401"*) echo 401 ;; *) echo "$out" ;; esac
  fi
}
fails=0 t0=$SECONDS r=
for i in $(seq 20); do
  url=$A_URL; [ $((i % 2)) = 0 ] && url=$B_URL
  r=$(login_on "$url" carol "$MT_WORK/wrong.pw")
  [ "$r" = 401 ] || break
  fails=$((fails + 1))
done
took=$((SECONDS - t0))
[ "$r" = 429 ] || fail "no 429 after $fails failed logins spread over A and B: $r"
[ "$fails" -ge 5 ] && [ "$fails" -le $((5 + took / 12 + 1)) ] ||
  fail "$fails failed logins over A and B before 429 in $took s (one node's limit: 5, one more per 12 s)"
ok "failed logins spread over A and B: refused after $fails (one node's limit, $took s)"
r=$(login_on "$A_URL" dave "$MT_WORK/wrong.pw"); [ "$r" = 401 ] || fail "dave on A: $r"
r=$(login_on "$B_URL" dave "$MT_WORK/wrong.pw"); [ "$r" = 401 ] || fail "dave on B: $r"
r=$(login_on "$A_URL" dave "$MT_WORK/dave.pw"); [ "$r" = 200 ] || fail "dave's login on A: $r"
fails=0
for _ in $(seq 20); do
  r=$(login_on "$B_URL" dave "$MT_WORK/wrong.pw")
  [ "$r" = 401 ] || break
  fails=$((fails + 1))
done
[ "$r" = 429 ] || fail "no 429 on B: $r"
[ "$fails" -ge 5 ] || fail "after a success on A, B refused after $fails failures (its own count was not cleared)"
ok "a success on A cleared the count on B ($fails failures, then 429)"

# 3. PSI: inputs registered through A, approved and invoked through B
seq -f "id%g" 1 300 > "$MT_WORK/alice.txt"
seq -f "id%g" 201 500 > "$MT_WORK/bob.txt"
declare -A IN OUT
for u in alice bob; do
  as "$u" file encrypt --in "$MT_WORK/$u.txt" --out "$MT_WORK/$u.enc" --key-out "$MT_WORK/$u.key" >/dev/null
  IN[$u]=$(as "$u" file register "$(as "$u" file upload "$MT_WORK/$u.enc")" --key "$MT_WORK/$u.key")
  "$MESATEE_BIN" key generate --out "$MT_WORK/$u.out.key" >/dev/null
  OUT[$u]=$(as "$u" file register-output --key "$MT_WORK/$u.out.key")
done
FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b \
  --output-slot ra --output-slot rb --public)
T=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T" --input "a=${IN[alice]}" --output "ra=${OUT[alice]}" >/dev/null
asb bob task assign "$T" --input "b=${IN[bob]}" --output "rb=${OUT[bob]}" >/dev/null || fail "assign on B"
asb alice task approve "$T" >/dev/null && asb bob task approve "$T" >/dev/null || fail "approve on B"
asb alice task invoke "$T" >/dev/null || fail "invoke on B"
asb alice task wait "$T" --timeout 120 >/dev/null || fail "PSI task: $(asb alice task show "$T")"
for u in alice bob; do
  s=$([ $u = alice ] && echo ra || echo rb)
  if [ $u = alice ]; then run=asb; else run=as; fi
  $run "$u" task result "$T" --slot "$s" --key "$MT_WORK/$u.out.key" --out "$MT_WORK/$u.res" >/dev/null ||
    fail "$u cannot decrypt the result"
  [ "$(sort "$MT_WORK/$u.res" | tr -d '\r' | grep -c .)" = 100 ] || fail "$u's result: $(wc -l <"$MT_WORK/$u.res") lines"
done
ok "PSI registered through A, run through B: both parties decrypt 100 common ids"

# 4. both nodes write the audit chain at the same time
( for _ in $(seq 6); do as alice login --user alice --password-file "$MT_WORK/alice.pw" >/dev/null || exit 1; done ) &
pa=$!
( for _ in $(seq 6); do asb bob login --user bob --password-file "$MT_WORK/bob.pw" >/dev/null || exit 1; done ) &
pb=$!
wait $pa || fail "writes on A failed"
wait $pb || fail "writes on B failed"
# a checkpoint makes the daemon walk the whole chain with every MAC
# (checkpoints carry each node's own TEE key and the cluster key, the same on
# every node: docs/cluster.md)
for url in "$A_URL" "$B_URL"; do
  cp=$MT_WORK/cp-$( [ "$url" = "$A_URL" ] && echo a || echo b).json
  out=$(MESATEE_SERVER=$url as admin audit checkpoint --out "$cp" 2>&1) ||
    fail "audit checkpoint (MAC walk) on $url: $out"
  kid=$(jq -r .key_id "$cp")
  out=$(MESATEE_SERVER=$url as admin audit verify --checkpoint "$cp" --key-id "$kid" 2>&1) ||
    fail "the checkpoint does not match the chain on $url: $out"
done
ck=$(jq -r .cluster_key_id "$MT_WORK/cp-a.json")
[ "$ck" = "$(jq -r .cluster_key_id "$MT_WORK/cp-b.json")" ] && [ ${#ck} = 64 ] ||
  fail "the nodes sign with different cluster keys: $ck / $(jq -r .cluster_key_id "$MT_WORK/cp-b.json")"
[ "$(jq -r .key_id "$MT_WORK/cp-a.json")" != "$(jq -r .key_id "$MT_WORK/cp-b.json")" ] ||
  fail "the two nodes' own keys should differ"
for url in "$A_URL" "$B_URL"; do
  out=$(MESATEE_SERVER=$url as admin audit verify --checkpoint "$MT_WORK/cp-a.json" \
    --checkpoint "$MT_WORK/cp-b.json" --key-id "$ck" 2>&1) ||
    fail "both nodes' checkpoints under the cluster key on $url: $out"
done
ok "checkpoints of both nodes verify under one pinned cluster key, on either node"
out=$("$MESATEE_BIN" --output json audit verify --data-dir "$MT_DATA" --store "$MT_PG_URL") ||
  fail "offline audit verify: $out"
n=$(jget "$out" .entries)
[ "$n" -gt 25 ] || fail "audit verify: only $n entries"
al=$(as admin --output json audit list --limit 1000)
jq -e '[.entries[] | select(.action == "keystore: join refused")] | length >= 1' <<<"$al" >/dev/null ||
  fail "the refused join is not in the audit log"
jq -e '[.entries[] | select(.action == "keystore: node joined")] | length >= 1' <<<"$al" >/dev/null ||
  fail "the join is not in the audit log"
ok "audit chain of $n entries intact (MACs on both nodes, offline) after concurrent writes on A and B"

# 4b. a rotation on the KeyStore node after B joined: A rewraps every stored
# key under version 2 (and retires nothing while it serves joins); a second
# PSI invoked through B runs (on whichever node claims it; B re-joins when it
# meets version 2) and both parties decrypt it
as admin admin keystore rotate >/dev/null || fail "rotate on A"
for _ in $(seq 600); do
  st=$(as admin admin keystore status --output json)
  [ "$(jget "$st" .current)" = 2 ] && [ "$(jget "$st" .rewrap.pending)" = 0 ] && break
  sleep 0.1
done
[ "$(jget "$st" .rewrap.pending)" = 0 ] || fail "rewrap after rotate: $st"
[ "$(jget "$st" '[.versions[].version]|join(",")')" = "1,2" ] || fail "a KeyStore node serving joins retired a version: $st"
for u in alice bob; do
  "$MESATEE_BIN" key generate --out "$MT_WORK/$u.out2.key" >/dev/null
  OUT[$u]=$(as "$u" file register-output --key "$MT_WORK/$u.out2.key")
done
T2=$(asb alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
asb alice task assign "$T2" --input "a=${IN[alice]}" --output "ra=${OUT[alice]}" >/dev/null
asb bob task assign "$T2" --input "b=${IN[bob]}" --output "rb=${OUT[bob]}" >/dev/null
asb alice task approve "$T2" >/dev/null && asb bob task approve "$T2" >/dev/null && asb alice task invoke "$T2" >/dev/null ||
  fail "second PSI through B"
asb alice task wait "$T2" --timeout 120 >/dev/null || fail "PSI after rotation: $(asb alice task show "$T2")"
for u in alice bob; do
  s=$([ $u = alice ] && echo ra || echo rb)
  asb "$u" task result "$T2" --slot "$s" --key "$MT_WORK/$u.out2.key" --out "$MT_WORK/$u.res2" >/dev/null ||
    fail "$u cannot decrypt the result after rotation"
  [ "$(grep -c . "$MT_WORK/$u.res2")" = 100 ] || fail "$u's result after rotation"
done
ok "after a rotation on the KeyStore node a PSI through B runs and decrypts$(grep -q re-joined "$MT_WORK/b2.log" && echo " (B re-joined)")"

# 5. KeyStore administration only on the KeyStore node; B names it
expect_fail "rotate on a joined node names the KeyStore node" "$KS_URL" \
  env MESATEE_SERVER="$B_URL" MESATEE_TOKEN_FILE="$MT_WORK/admin.token" "$MESATEE_BIN" admin keystore rotate
expect_fail "release-policy changes on a joined node are refused" "joined the KeyStore node" \
  env MESATEE_SERVER="$B_URL" MESATEE_TOKEN_FILE="$MT_WORK/admin.token" "$MESATEE_BIN" admin release allow --kind soft_platform_key "$B_PK"

# 6. a build whose measurement is not in the policy: refused even with its key allowed
C_DATA=$MT_WORK/node-c
start_b "$C_DATA" "$MT_WORK/c1.log" --workers 3
wait_refused "$C_DATA/c1.log"
C_PK=$(platform_key "$MT_WORK/c1.log")
as admin admin release allow --kind soft_platform_key "$C_PK" >/dev/null || fail "release allow C's key"
start_b "$C_DATA" "$MT_WORK/c2.log" --workers 3
wait_refused "$C_DATA/c2.log"
grep -q "refused by the KeyStore release policy: this node's measurement is $(jget "$("$MESATEE_BIN" measure --level soft --workers 3 --output json)" .measurement)" "$MT_WORK/c2.log" ||
  fail "C's refusal does not name its measurement: $(tail -n 2 "$MT_WORK/c2.log")"
[ "$(grep -c "KeyStore join refused" "$MT_WORK/server.log")" -ge 3 ] || fail "A did not log every refusal"
ok "a node with another measurement cannot join and does not serve"

# 7. a wrong KeyStore: B's policy does not admit A (bad measurement)
jq '.measurements.gateway.measurement = ["'"$(printf '0%.0s' $(seq 64))"'"]' "$MT_WORK/ks-policy.json" >"$MT_WORK/bad-ks.json"
out=$("$MESATEE_BIN" serve --data-dir "$MT_WORK/node-d" --listen 127.0.0.1:0 --level soft \
  --store "$MT_PG_URL" --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/bad-ks.json" 2>&1) &&
  fail "joined a KeyStore its policy refuses"
grep -q "attested TLS with $KS_URL failed" <<<"$out" || fail "unclear: $(tail -n1 <<<"$out")"
ok "a joining node refuses a KeyStore node its --keystore-policy does not admit"

# 8. garbage: flags and bytes on the join listener
expect_fail "--keystore-join without a policy" "--keystore-policy" \
  "$MESATEE_BIN" serve --data-dir "$MT_WORK/node-e" --level soft --store "$MT_PG_URL" --keystore-join "$KS_URL"
expect_fail "--keystore-join with a bad URL" "keystore-join" \
  "$MESATEE_BIN" serve --data-dir "$MT_WORK/node-e" --level soft --store "$MT_PG_URL" \
  --keystore-join "http://x:1" --keystore-policy "$MT_WORK/ks-policy.json"
expect_fail "--keystore-join and --keystore-listen together" "exclude each other" \
  "$MESATEE_BIN" serve --data-dir "$MT_WORK/node-e" --level soft --store "$MT_PG_URL" \
  --keystore-join "$KS_URL" --keystore-policy "$MT_WORK/ks-policy.json" --keystore-listen 127.0.0.1:0
expect_fail "--keystore-listen with a bad address" "keystore-listen" \
  "$MESATEE_BIN" serve --data-dir "$MT_WORK/node-e" --level soft --keystore-listen nope
port=${KS_URL##*:}
head -c 3000 /dev/urandom | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" >/dev/null 2>&1 || true
printf 'POST /v1/keystore/join HTTP/1.1\r\nContent-Length: 5\r\n\r\nxxxxx' |
  timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" >"$MT_WORK/garbage.out" 2>/dev/null || true
! grep -q '"sealed"' "$MT_WORK/garbage.out" || fail "a client without a certificate got an answer"
kill -0 "$MT_PID" || fail "node A died on garbage"
as admin --output json user show admin >/dev/null || fail "node A stopped answering after garbage"
ok "garbage flags are refused; garbage bytes on the join listener get nothing and A goes on"

# 9. database credentials after attestation: PostgreSQL admits `mesatee` over
# TCP only with a client certificate from the KeyStore node's CA
# (`cert clientcert=verify-full`); node A (restarted with --keystore-db-ca)
# uses the local socket; B gets a certificate for its attested key at join.
command -v psql >/dev/null || { echo "ok - # SKIP database certificates: psql not installed"; exit 0; }
B_PID=$B_MAIN
stop_b
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=mesatee test database CA" -keyout "$MT_WORK/dbca.key" -out "$MT_WORK/dbca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
cat "$MT_WORK/dbca.crt" "$MT_WORK/dbca.key" >"$MT_WORK/dbca.pem"
cp "$MT_WORK/dbca.crt" "$MT_PG_DIR/data/dbca.crt"
[ "$(id -u)" != 0 ] || chown nobody "$MT_PG_DIR/data/dbca.crt"
echo "ssl_ca_file = 'dbca.crt'" >>"$MT_PG_DIR/data/postgresql.auto.conf"
printf 'local all all trust\nhostssl all mesatee 127.0.0.1/32 cert clientcert=verify-full\n' >"$MT_PG_DIR/data/pg_hba.conf"
psql "$MT_PG_SOCKET_URL" -qAtc "SELECT pg_reload_conf()" >/dev/null || fail "pg reload"
for _ in $(seq 50); do psql "$MT_PG_URL" -qAtc "SELECT 1" >/dev/null 2>&1 || break; sleep 0.1; done
psql "$MT_PG_URL" -qAtc "SELECT 1" >/dev/null 2>&1 && fail "the database still admits a client without a certificate"
mt_stop_server
mt_start_server --level soft --store "$MT_PG_SOCKET_URL" --keystore-listen 127.0.0.1:0 --keystore-db-ca "$MT_WORK/dbca.pem"
KS_URL=$(cat "$MT_DATA/keystore.url")
start_b "$B_DATA" "$MT_WORK/b3.log"
for _ in $(seq 1200); do [ -s "$B_DATA/server.url" ] && [ "$(cat "$B_DATA/server.url")" != "$B_URL" ] && break; kill -0 "$B_PID" 2>/dev/null || fail "B exited: $(tail -n 5 "$MT_WORK/b3.log")"; sleep 0.05; done
B_URL=$(cat "$B_DATA/server.url")
grep -q "opening the store with the database certificate" "$MT_WORK/b3.log" || fail "B did not use a database certificate"
[ "$(stat -c %a "$B_DATA/db-client.key")" = 600 ] || fail "db-client.key is not mode 0600"
openssl x509 -in "$B_DATA/db-client.crt" -noout -subject | grep -q "CN *= *mesatee" || fail "certificate subject"
openssl verify -CAfile "$MT_WORK/dbca.crt" "$B_DATA/db-client.crt" >/dev/null || fail "certificate not from the database CA"
asb alice login --user alice --password-file "$MT_WORK/alice.pw" >/dev/null || fail "B cannot serve with its database certificate"
as admin --output json audit list --limit 1000 |
  jq -e '[.entries[] | select(.action == "keystore: database certificate issued")] | length >= 1' >/dev/null ||
  fail "the certificate issuance is not in the audit log"
ok "a joined node opens PostgreSQL (cert clientcert=verify-full) with the certificate the KeyStore node issued after attestation; issuance audited"
expect_fail "--keystore-db-ca without --keystore-listen" "--keystore-db-ca is for the KeyStore node" \
  "$MESATEE_BIN" serve --data-dir "$MT_WORK/node-e" --level soft --store "$MT_PG_URL" --keystore-db-ca "$MT_WORK/dbca.pem"
