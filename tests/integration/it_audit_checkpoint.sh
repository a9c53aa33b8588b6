#!/usr/bin/env bash
# The audit log is keyed and checkpointed (issue 8, item 10): a user keeps
# signed checkpoints (signed by the soft platform key); dropping the newest
# entries is detected against a held checkpoint offline and through the
# daemon; editing an entry and recomputing the whole unkeyed SHA-256 chain
# passes the unkeyed check but is detected against a held checkpoint, and the
# daemon refuses to sign the forged log (MACs under a TEE-held key), also after
# appending to it.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 (the CLI) not installed"; exit 0; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
DB=$MT_DATA/mesatee.db
B=$MESATEE_BIN

mt_start_server --level soft
mt_login admin
mt_add_user alice
pk=$("$B" attest show --output json | jq -r .soft_platform_key)
as alice audit checkpoint --out "$MT_WORK/cp1.json" >/dev/null
[ "$(jq -r .key_id "$MT_WORK/cp1.json")" = "$pk" ] || fail "checkpoint not signed by the platform key"
[ "$(jq -r .level "$MT_WORK/cp1.json")" = soft ] || fail "checkpoint level"
ok "checkpoint of $(jq -r .entries "$MT_WORK/cp1.json") entries signed by the platform key"
for i in 1 2 3; do "$B" key generate --out "$MT_WORK/k$i" >/dev/null
  as alice file register-output --key "$MT_WORK/k$i" >/dev/null; done
as alice audit checkpoint --out "$MT_WORK/cp2.json" >/dev/null
n1=$(jq -r .entries "$MT_WORK/cp1.json"); n2=$(jq -r .entries "$MT_WORK/cp2.json")
[ "$n2" -gt "$n1" ] || fail "second checkpoint does not extend the first"
as alice audit verify --checkpoint "$MT_WORK/cp1.json" --checkpoint "$MT_WORK/cp2.json" >/dev/null ||
  fail "online verify of an intact log"
ok "online verify: the log is consistent with both held checkpoints"
# A forged checkpoint file is refused.
jq '.entries += 1' "$MT_WORK/cp2.json" > "$MT_WORK/forged.json"
expect_fail "forged checkpoint" "signature verification failed" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/forged.json"
# The cluster key (audit.c "Cluster key"): one Ed25519 key per deployment,
# endorsed by the node key; pinned, it verifies; partial or foreign cluster
# fields are refused; a checkpoint without them (older servers) still parses.
ck=$(jq -r .cluster_key_id "$MT_WORK/cp1.json")
[ ${#ck} = 64 ] && [ "$ck" = "$(jq -r .cluster_key_id "$MT_WORK/cp2.json")" ] && [ "$ck" != "$pk" ] ||
  fail "cluster key id: $ck"
as alice audit verify --checkpoint "$MT_WORK/cp1.json" --checkpoint "$MT_WORK/cp2.json" \
  --key-id "$ck" >/dev/null || fail "online verify pinned to the cluster key"
jq 'del(.endorsement)' "$MT_WORK/cp2.json" > "$MT_WORK/partial.json"
expect_fail "cluster fields without the endorsement" "go together" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/partial.json"
jq 'del(.cluster_key, .cluster_key_id, .cluster_signature, .endorsement)' "$MT_WORK/cp2.json" > "$MT_WORK/old.json"
"$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/old.json" --key-id "$pk" >/dev/null ||
  fail "a checkpoint without the cluster fields (older server) no longer verifies"
expect_fail "an old checkpoint pinned to the cluster key" "not $ck" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/old.json" --key-id "$ck"
# a foreign cluster key with a valid self-signature: the node key did not endorse it
openssl genpkey -algorithm ed25519 -out "$MT_WORK/foreign.pem" 2>/dev/null
jq -j '"mesatee-audit-checkpoint/v1\n\(.entries)\n\(.head)\n\(.time)\n\(.level)\n"' "$MT_WORK/cp2.json" > "$MT_WORK/cp2.msg"
openssl pkeyutl -sign -rawin -inkey "$MT_WORK/foreign.pem" -in "$MT_WORK/cp2.msg" -out "$MT_WORK/foreign.sig"
openssl pkey -in "$MT_WORK/foreign.pem" -pubout -outform DER -out "$MT_WORK/foreign.der"
fk=$(base64 -w0 < "$MT_WORK/foreign.der"); fid=$(sha256sum < "$MT_WORK/foreign.der" | cut -c1-64)
jq --arg k "$fk" --arg id "$fid" --arg s "$(base64 -w0 < "$MT_WORK/foreign.sig")" \
  '.cluster_key = $k | .cluster_key_id = $id | .cluster_signature = $s' "$MT_WORK/cp2.json" > "$MT_WORK/foreign.json"
expect_fail "a foreign cluster key" "endorsement of the cluster key verification failed" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/foreign.json"
jq --arg s "$(base64 -w0 < "$MT_WORK/foreign.sig")" '.cluster_signature = $s' "$MT_WORK/cp2.json" > "$MT_WORK/badcs.json"
expect_fail "a wrong cluster signature" "cluster signature verification failed" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/badcs.json"
ok "cluster key: pinned, partial, old-format, foreign and wrongly signed checkpoints"
mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp1.json" \
  --checkpoint "$MT_WORK/cp2.json" --key-id "$pk" >/dev/null || fail "offline verify of an intact log"
mt_start_server --level soft
as alice audit checkpoint --out "$MT_WORK/cp3.json" >/dev/null
[ "$(jq -r .cluster_key_id "$MT_WORK/cp3.json")" = "$ck" ] || fail "the cluster key changed across a restart"
mt_stop_server
ok "offline verify: intact against both held checkpoints"
mt_store_save base

# Truncation: drop the newest entries (what remains is a valid unkeyed chain).
mt_sql "DELETE FROM audit WHERE seq > $((n1 + 1))"
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "the truncated chain should verify unkeyed"
expect_fail "truncation against a held checkpoint (offline)" "truncated" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp2.json"
mt_start_server --level soft
expect_fail "truncation against a held checkpoint (online)" "truncated" \
  as alice audit verify --checkpoint "$MT_WORK/cp2.json"
mt_stop_server
mt_store_restore base

# Rewrite: edit an entry, then recompute every hash of the unkeyed chain.
# (rows read and written through mt_sql: the same on SQLite and PostgreSQL;
# no field of these entries holds a '|')
mt_sql "UPDATE audit SET actor = 'mallory' WHERE seq = 3"
mt_sql "SELECT seq, time, actor, action, object, status FROM audit ORDER BY seq" > "$MT_WORK/rows.txt"
python3 - "$MT_WORK/rows.txt" > "$MT_WORK/rewrite.sql" <<'EOP'
import hashlib, sys
prev = "0" * 64
print("BEGIN;")
for line in open(sys.argv[1]).read().splitlines():
    seq, t, actor, action, obj, status = line.split("|")
    h = hashlib.sha256(f"{prev}\n{seq}\n{t}\n{actor}\n{action}\n{obj}\n{status}".encode()).hexdigest()
    print(f"UPDATE audit SET prev_hash = '{prev}', hash = '{h}' WHERE seq = {seq};")
    prev = h
print("COMMIT;")
EOP
mt_sql_file "$MT_WORK/rewrite.sql"
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "the recomputed chain should verify unkeyed"
ok "a rewritten log with a recomputed unkeyed chain passes the unkeyed check alone"
expect_fail "rewrite against a held checkpoint (offline)" "rewritten" \
  "$B" audit verify --data-dir "$MT_DATA" --checkpoint "$MT_WORK/cp1.json"
mt_start_server --level soft
expect_fail "the daemon refuses to sign the rewritten log" "integrity check failed: audit log" \
  as alice audit checkpoint
expect_fail "rewrite against a held checkpoint (online)" "integrity check failed: audit log" \
  as alice audit verify --checkpoint "$MT_WORK/cp1.json"
"$B" key generate --out "$MT_WORK/k4" >/dev/null
as alice file register-output --key "$MT_WORK/k4" >/dev/null || fail "service stopped"
expect_fail "new entries do not launder the forged one" "integrity check failed: audit log" \
  as alice audit checkpoint
