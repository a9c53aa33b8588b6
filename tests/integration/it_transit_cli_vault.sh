#!/usr/bin/env bash
# `mesatee key export|backup|restore|trim` and the Vault options of
# create/config/encrypt/decrypt (--exportable, --allow-plaintext-backup,
# --derived, --convergent, --context), issue 10, docs/cli.md and
# docs/keystore.md: results checked with openssl, a restore after a KEK
# rotation wraps the key under the new KEK version (checked in the store),
# export and backup are audited, and bad input is refused with a clear error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mt_start_server
as admin login --user admin --password-file "$MT_WORK/admin.pw" >/dev/null
mt_add_user alice
mt_add_user bob
W=$MT_WORK
printf 'the quick brown fox' > "$W/msg"

# ---- ecdsa-p521 -------------------------------------------------------------------
as alice key create p5 --type ecdsa-p521 | grep -q '^type: ecdsa-p521$' || fail "create ecdsa-p521"
as alice key export p5 --kind public-key | sed 1d > "$W/p5.pem"
openssl pkey -pubin -in "$W/p5.pem" -noout -text | grep -q 'NIST CURVE: P-521' || fail "p521 public key"
sig=$(as alice key sign p5 --in "$W/msg" --hash sha2-512)
echo "${sig#vault:v1:}" | base64 -d > "$W/p5.sig"
openssl dgst -sha512 -verify "$W/p5.pem" -signature "$W/p5.sig" "$W/msg" >/dev/null ||
  fail "openssl does not verify the P-521 signature"
as alice key rotate p5 | grep -q '^latest_version: 2$' || fail "rotate p521"
as alice key verify p5 "$sig" --in "$W/msg" --hash sha2-512 | grep -q '^valid$' || fail "verify v1 after rotate"
ok "ecdsa-p521: create, export public-key, sign (openssl verifies), rotate, verify"

# ---- export -----------------------------------------------------------------------
as alice key create ex1 >/dev/null
expect_fail "export of a key that is not exportable" "not exportable" \
  as alice key export ex1 --kind encryption-key
as alice key config ex1 --exportable | grep -q '^exportable: true$' || fail "config --exportable"
hk=$(as alice key export ex1 --kind hmac-key | sed -n 2p | base64 -d | od -An -tx1 | tr -d ' \n')
mine=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hk" -binary "$W/msg" | base64)
theirs=$(as alice key hmac ex1 --in "$W/msg")
[ "vault:v1:$mine" = "$theirs" ] || fail "exported hmac-key does not make the server's HMAC"
[ "$(as alice key export ex1 --kind encryption-key | sed -n 2p | base64 -d | wc -c)" = 32 ] ||
  fail "export encryption-key: not 32 bytes"
ok "key export: hmac-key (openssl makes the same HMAC), encryption-key"
as alice key create ec1 --type ecdsa-p256 --exportable >/dev/null
as alice key export ec1 --kind signing-key --key-version latest | sed 1d > "$W/ec1.key"
openssl pkey -in "$W/ec1.key" -pubout > "$W/ec1.pub"
as alice --output json key read ec1 | jq -ej '.data.keys["1"].public_key' | cmp -s - "$W/ec1.pub" ||
  fail "exported signing key does not match the public key"
ok "key export --kind signing-key: openssl reads it, its public key is the key's"
expect_fail "export --kind garbage" "--kind" as alice key export ex1 --kind private-key
expect_fail "export --key-version garbage" "key-version" as alice key export ex1 --kind hmac-key --key-version x
expect_fail "export of a version that does not exist" "does not exist" \
  as alice key export ex1 --kind hmac-key --key-version 7
expect_fail "bob exports alice's key" "no such key" as bob key export alice:ex1 --kind hmac-key

# ---- backup / restore (after a KEK rotation: rewrapped under the new KEK) ------------------
as alice key create bk --exportable --allow-plaintext-backup >/dev/null
ct=$(as alice key encrypt bk --in "$W/msg")
as alice key backup bk --out "$W/bk.b64" | grep -q 'written' || fail "key backup --out"
[ "$(stat -c %a "$W/bk.b64")" = 600 ] || fail "backup file mode"
expect_fail "backup of a key without allow_plaintext_backup" "allow_plaintext_backup" \
  as alice key backup ex1
as admin admin keystore rotate >/dev/null
mt_kek_wait 2
as alice key restore bk2 --in "$W/bk.b64" | grep -q '^restored bk2$' || fail "key restore"
[ "$(as alice key decrypt bk2 "$ct")" = "the quick brown fox" ] || fail "restored key does not decrypt"
[ "$(mt_sql "SELECT kek_version FROM transit_key_versions WHERE owner='alice' AND name='bk2'")" = 2 ] ||
  fail "restored key is not wrapped under KEK version 2"
ok "key backup / key restore: decrypts, sealed under the current KEK version"
expect_fail "restore over an existing key" "force" as alice key restore bk --in "$W/bk.b64"
as alice key rotate bk >/dev/null
as alice key restore bk --in "$W/bk.b64" --force >/dev/null
as alice key read bk | grep -q '^latest_version: 1$' || fail "restore --force"
printf 'bm90IGEgYmFja3Vw\n' > "$W/garbage"
expect_fail "restore of garbage" "backup" as alice key restore g1 --in "$W/garbage"
head -c 100 "$W/bk.b64" > "$W/short"
expect_fail "restore of a truncated backup" "backup" as alice key restore g1 --in "$W/short"
expect_fail "restore into another user's namespace" "your own name" \
  as bob key restore alice:g2 --in "$W/bk.b64"
expect_fail "nothing written by the refused restores" "no such key" as alice key read g1
ok "key restore --force; bad backups refused, nothing written"

# ---- trim ---------------------------------------------------------------------------------
as alice key create tr >/dev/null
for _ in 1 2 3; do as alice key rotate tr >/dev/null; done
expect_fail "trim while min_encryption_version is 0" "min_encryption_version" \
  as alice key trim tr --min-available-version 2
as alice key config tr --min-decryption-version 3 --min-encryption-version 3 >/dev/null
as alice key trim tr --min-available-version 2 | grep -q '^min_available_version: 2$' || fail "key trim"
[ "$(as alice --output json key read tr | jq -c '.data.keys|keys')" = '["2","3","4"]' ] || fail "trim left version 1"
expect_fail "trim below the current minimum" "decremented" as alice key trim tr --min-available-version 1
expect_fail "trim without a version" "min-available-version" as alice key trim tr
expect_fail "trim with garbage" "min-available-version" as alice key trim tr --min-available-version two
ok "key trim"

# ---- derived and convergent keys ------------------------------------------------------------
as alice key create dv --derived | grep -q '^derived: true$' || fail "create --derived"
c1=$(as alice key encrypt dv --in "$W/msg" --context tenant-a)
[ "$(as alice key decrypt dv "$c1" --context tenant-a)" = "the quick brown fox" ] || fail "derived decrypt"
expect_fail "derived: decrypt without context" "context" as alice key decrypt dv "$c1"
expect_fail "derived: another context" "decryption failed" as alice key decrypt dv "$c1" --context tenant-b
expect_fail "derived: encrypt without context" "context" as alice key encrypt dv --in "$W/msg"
as alice key datakey dv --context tenant-a | grep -q '^plaintext: ' || fail "datakey --context"
as alice key rotate dv >/dev/null
rw=$(as alice key rewrap dv "$c1" --context tenant-a)
[ "$(as alice key decrypt dv "$rw" --context tenant-a)" = "the quick brown fox" ] || fail "rewrap --context"
as alice key create cv --derived --convergent >/dev/null
[ "$(as alice key encrypt cv --in "$W/msg" --context t)" = "$(as alice key encrypt cv --in "$W/msg" --context t)" ] ||
  fail "convergent: two encryptions differ"
[ "$(as alice key encrypt cv --in "$W/msg" --context t)" != "$(as alice key encrypt cv --in "$W/msg" --context u)" ] ||
  fail "convergent: another context gives the same ciphertext"
expect_fail "--convergent without --derived" "requires derived" as alice key create cx --convergent
expect_fail "--derived on an ecdsa key" "derived" as alice key create cx --type ecdsa-p256 --derived
expect_fail "--context on a key that is not derived" "not derived" \
  as alice key encrypt ex1 --in "$W/msg" --context x
ok "derived keys (--context on encrypt, decrypt, rewrap, datakey) and convergent encryption"

# ---- audited ----------------------------------------------------------------------------------
as admin audit list --limit 1000 > "$W/audit.txt"
for r in "GET /v1/transit/export/{kind}/{key}" "GET /v1/transit/backup/{key}" \
         "POST /v1/transit/restore/{key}" "POST /v1/transit/keys/{key}/trim"; do
  grep -qF "$r" "$W/audit.txt" || fail "not audited: $r"
done
ok "export, backup, restore and trim are audited"
curl -sS --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" > "$W/metrics.txt"
for r in "GET /v1/transit/export/{kind}/{key}" "POST /v1/transit/restore/{key}" \
         "POST /v1/transit/keys/{key}/trim"; do
  grep -qF "route=\"$r\"" "$W/metrics.txt" || fail "not metered: $r"
done
ok "export, restore and trim are metered"
