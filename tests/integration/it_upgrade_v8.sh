#!/usr/bin/env bash
# Upgrade from the last released store schema (8) end to end, with two
# binaries: an old mesatee (MESATEE_OLD_BIN, e.g. a build of commit c7e9085;
# its worker MESATEE_OLD_WORKER, default next to it in the build tree) writes
# a data dir at level none and at level soft (users, a finished two-party psi
# task, KeyStore transit keys: aes256-gcm96 rotated once, ecdsa-p256, hmac, a
# grant to bob); it is stopped and this build (MESATEE_BIN) starts on the same
# data dir (at soft after `admin release allow` of the new measurement on the
# old server, docs/operations.md "Upgrades"; before that it is refused and
# leaves the store at schema 8, so the old build still starts). Checked through the CLI: the old
# ciphertexts decrypt, the signature verifies, the HMAC is the same, the
# grant works, the old output downloads and decrypts, the old inputs run in a
# new task, rotate/trim/export on an upgraded key, a KEK rotation rewraps
# everything, the audit chain verifies, and the old CLI still talks to the
# new server. Skipped (77) without MESATEE_OLD_BIN. The unit test
# test_from_v8 (tests/unit/test_store_migrate.c) covers the same upgrade
# from a fixture, without an old binary.
set -euo pipefail
if [ -z "${MESATEE_OLD_BIN:-}" ]; then
  echo "SKIP: set MESATEE_OLD_BIN to a schema-8 mesatee (e.g. a build of commit c7e9085) to run the upgrade test"
  exit 77
fi
if [ "${MT_TEST_PG:-}" = 1 ]; then
  # (schema 8 predates the PostgreSQL backend: the old binary has no --store)
  echo "SKIP: under MT_TEST_PG: the upgrade is from a schema-8 SQLite store (the old build knows no PostgreSQL)"
  exit 77
fi
. "$(dirname "$0")/lib.sh"
shopt -s inherit_errexit # a failure inside $(psi_task ...) fails the test
NEW=$MESATEE_BIN
NEW_WORKER=${MESATEE_WORKER:-$(dirname "$NEW")/../executor/mesatee-worker}
OLD=$MESATEE_OLD_BIN
OLD_WORKER=${MESATEE_OLD_WORKER:-$(dirname "$OLD")/../executor/mesatee-worker}
[ -x "$OLD" ] && [ -x "$OLD_WORKER" ] || fail "MESATEE_OLD_BIN / its worker $OLD_WORKER not executable"
W=$MT_WORK
schema() { sqlite3 "$MT_DATA/mesatee.db" 'SELECT max(version) FROM schema_version'; }
old() { MESATEE_BIN=$OLD MESATEE_WORKER=$OLD_WORKER "$@"; }
new() { MESATEE_BIN=$NEW MESATEE_WORKER=$NEW_WORKER "$@"; }

# psi_task A_IN B_IN: a two-party task on those input files with fresh
# outputs; echoes "TASK ALICE_OUT" (alice's output key in $W/ra.key).
psi_task() {
  local ao bo t
  rm -f "$W/ra.key" "$W/rb.key"
  "$MESATEE_BIN" key generate --out "$W/ra.key" >/dev/null
  "$MESATEE_BIN" key generate --out "$W/rb.key" >/dev/null
  ao=$(as alice file register-output --key "$W/ra.key")
  bo=$(as bob file register-output --key "$W/rb.key")
  t=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
  as alice task assign "$t" --input "a=$1" --output "ra=$ao" >/dev/null
  as bob task assign "$t" --input "b=$2" --output "rb=$bo" >/dev/null
  as alice task approve "$t" >/dev/null; as bob task approve "$t" >/dev/null
  as alice task invoke "$t" >/dev/null; as alice task wait "$t" --timeout 60 >/dev/null
  echo "$t $ao"
}
# result TASK OUT KEY: alice's output, downloaded and decrypted, is ids 30..40
result() {
  rm -f "$W/r.enc" "$W/r.txt"
  as alice file download "$2" --out "$W/r.enc" >/dev/null
  as alice file decrypt --in "$W/r.enc" --key "$3" --task "$1" --slot ra --file "$2" --out "$W/r.txt" >/dev/null
  [ "$(tr '\n' ' ' < "$W/r.txt")" = "$(seq -f 'id-%03g' 30 40 | tr '\n' ' ')" ] || fail "psi result: $(cat "$W/r.txt")"
}

seq -f "id-%03g" 1 40 > "$W/alice.txt"; seq -f "id-%03g" 30 60 > "$W/bob.txt"
printf 'upgrade transit plaintext' > "$W/msg"
for level in none soft; do
  rm -rf "$MT_DATA" "$W"/*.token "$W"/*.key "$W"/*.enc
  # ---- the old build writes the data dir -------------------------------
  export MESATEE_BIN=$OLD MESATEE_WORKER=$OLD_WORKER
  mt_start_server --level "$level"
  mt_login admin
  mt_add_user alice
  mt_add_user bob
  declare -A IN
  for u in alice bob; do
    as "$u" file encrypt --in "$W/$u.txt" --out "$W/$u.enc" --key-out "$W/$u.key" >/dev/null
    IN[$u]=$(as "$u" file register "$(as "$u" file upload "$W/$u.enc")" --key "$W/$u.key")
  done
  FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b \
         --output-slot ra --output-slot rb --public)
  read -r T1 O1 <<< "$(psi_task "${IN[alice]}" "${IN[bob]}")"
  cp "$W/ra.key" "$W/o1.key"
  result "$T1" "$O1" "$W/o1.key"
  as alice key create k1 >/dev/null
  ct1=$(as alice key encrypt k1 --in "$W/msg")
  as alice key rotate k1 >/dev/null
  ct2=$(as alice key encrypt k1 --in "$W/msg")
  as alice key create e1 --type ecdsa-p256 >/dev/null
  sig=$(as alice key sign e1 --in "$W/msg")
  as alice key create h1 --type hmac >/dev/null
  hm=$(as alice key hmac h1 --in "$W/msg")
  as alice key grant k1 --user bob --op decrypt --op encrypt >/dev/null
  as alice --output json key read e1 | jq -er '.data.keys["1"].public_key' > "$W/e1.pem"
  if [ "$level" = soft ]; then
    # not allowed yet: this build refuses to start, before any migration
    mt_stop_server
    if out=$(new timeout 60 "$NEW" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 --level soft \
               --admin-password-file "$W/admin.pw" 2>&1); then
      fail "soft: a build not in the release policy started"
    fi
    case "$out" in *"not in the KeyStore release policy"*"release allow"*) ;;
      *) fail "soft: refusal of the new build: $out" ;; esac
    [ "$(schema)" = 8 ] || fail "soft: the refused build migrated the store to $(schema)"
    ok "soft: the new build, not allowed yet, is refused and leaves the store at schema 8"
    mt_start_server --level soft
    mt_login admin
    m=$(new "$NEW" measure --level soft --output json | jq -er .measurement)
    as admin admin release allow "$m" >/dev/null || fail "soft: release allow of the new build"
  fi
  mt_stop_server
  [ "$(schema)" = 8 ] || fail "MESATEE_OLD_BIN wrote schema $(schema), not 8"
  ok "$level: the old build wrote a schema-8 data dir"

  # ---- this build on the same data dir ---------------------------------
  export MESATEE_BIN=$NEW MESATEE_WORKER=$NEW_WORKER
  mt_start_server --level "$level"
  [ "$(schema)" = 10 ] || fail "$level: schema after the upgrade: $(schema)"
  for u in admin alice bob; do mt_login "$u"; done
  [ "$(as alice task show "$T1" --output json | jq -r .status)" = finished ] || fail "$level: old task"
  result "$T1" "$O1" "$W/o1.key"
  ok "$level: the old task's output downloads and decrypts"
  [ "$(as alice key decrypt k1 "$ct1")" = "upgrade transit plaintext" ] || fail "$level: decrypt v1"
  [ "$(as alice key decrypt k1 "$ct2")" = "upgrade transit plaintext" ] || fail "$level: decrypt v2"
  [ "$(as bob key decrypt alice:k1 "$ct1")" = "upgrade transit plaintext" ] || fail "$level: grant"
  as alice key verify e1 "$sig" --in "$W/msg" | grep -q '^valid$' || fail "$level: verify"
  echo "${sig#vault:v1:}" | base64 -d > "$W/sig.der"
  openssl dgst -sha256 -verify "$W/e1.pem" -signature "$W/sig.der" "$W/msg" >/dev/null ||
    fail "$level: openssl with the old public key"
  [ "$(as alice --output json key read e1 | jq -er '.data.keys["1"].public_key')" = "$(cat "$W/e1.pem")" ] ||
    fail "$level: the public key changed"
  [ "$(as alice key hmac h1 --in "$W/msg")" = "$hm" ] || fail "$level: hmac differs"
  as alice key verify h1 "$hm" --hmac --in "$W/msg" | grep -q '^valid$' || fail "$level: hmac verify"
  ok "$level: old ciphertexts decrypt, signature and HMAC verify, the grant works"
  [ "$(old as alice key decrypt k1 "$ct2")" = "upgrade transit plaintext" ] ||
    fail "$level: the old CLI against the new server"
  ok "$level: the old CLI still works against the new server"
  read -r T2 O2 <<< "$(psi_task "${IN[alice]}" "${IN[bob]}")"
  result "$T2" "$O2" "$W/ra.key"
  ok "$level: the old input files run in a new task"
  as alice key rotate k1 | grep -q '^latest_version: 3$' || fail "$level: rotate"
  as alice key config k1 --min-decryption-version 2 --min-encryption-version 2 --exportable >/dev/null
  as alice key trim k1 --min-available-version 2 >/dev/null || fail "$level: trim"
  expect_fail "$level: the trimmed version" "too old" as alice key decrypt k1 "$ct1"
  [ "$(as alice key decrypt k1 "$ct2")" = "upgrade transit plaintext" ] || fail "$level: decrypt v2 after trim"
  [ "$(as alice --output json key export k1 --kind encryption-key | jq -r '.data.keys | keys | join(",")')" = 2,3 ] ||
    fail "$level: export"
  ok "$level: rotate, trim, export on an upgraded key"
  as admin admin keystore rotate >/dev/null
  mt_kek_wait 2
  [ "$(jget "$MT_KS_STATUS" .rewrap.stuck)" = 0 ] || fail "$level: stuck rows: $MT_KS_STATUS"
  result "$T1" "$O1" "$W/o1.key"
  [ "$(as bob key decrypt alice:k1 "$ct2")" = "upgrade transit plaintext" ] || fail "$level: after the KEK rotation"
  ok "$level: a KEK rotation rewraps every old key"
  mt_stop_server
  mt_start_server --level "$level"
  for u in alice bob; do mt_login "$u"; done
  [ "$(as bob key decrypt alice:k1 "$ct2")" = "upgrade transit plaintext" ] || fail "$level: after a restart"
  result "$T2" "$O2" "$W/ra.key"
  mt_stop_server
  "$NEW" audit verify --data-dir "$MT_DATA" >/dev/null || fail "$level: audit verify"
  ok "$level: restarted; the audit chain verifies"
done
