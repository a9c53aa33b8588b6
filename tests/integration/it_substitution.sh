#!/usr/bin/env bash
# Input and output substitution by the host (issue 8 item 9). The host owns
# the object directory: it can swap an input's ciphertext for another one
# under the same key, or copy one task's output object over another's.
#  - a swapped input: the task fails with an integrity reason, writes nothing;
#  - a copied output: `task result` and `file download` refuse it;
#  - the same output key twice: refused unless --allow-key-reuse.
source "$(dirname "$0")/lib.sh"
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: the sqlite3 shell is needed to play the host"; exit 0; }
mt_start_server --workers 1
mt_login admin
mt_add_user alice
mt_add_user bob

obj() { echo "$MT_DATA/objects/$1"; } # object file of an object / output file id
status() { as alice --output json task show "$1" | jq -r "$2"; }

seq -f "id%g" 1 300 > "$MT_WORK/a.txt"
seq -f "id%g" 200 400 > "$MT_WORK/a2.txt"
as alice file encrypt --in "$MT_WORK/a.txt" --out "$MT_WORK/a.enc" --key-out "$MT_WORK/a.key" >/dev/null
# another ciphertext under the same key (e.g. an older or newer version of the data)
as alice file encrypt --in "$MT_WORK/a2.txt" --out "$MT_WORK/a2.enc" --key "$MT_WORK/a.key" >/dev/null
URL=$(as alice file upload "$MT_WORK/a.enc")
FA=$(as alice file register "$URL" --key "$MT_WORK/a.key")
OBJ_A=${URL#mesatee://objects/}
[ -f "$(obj "$OBJ_A")" ] || fail "no object file for $URL"
FN=$(as alice function register --name psi-self --builtin psi --input-slot a --input-slot b \
       --output-slot ra --output-slot rb)

# new_key NAME: a fresh key file
new_key() { "$MESATEE_BIN" key generate --out "$MT_WORK/$1.key" >/dev/null; }
# staged OUT_RA OUT_RB: an approved self-PSI task over FA, not invoked
staged() {
  local t
  t=$(as alice task create --function "$FN" --input a=alice --input b=alice --output ra=alice \
        --output rb=alice)
  as alice task assign "$t" --input "a=$FA" --input "b=$FA" --output "ra=$1" --output "rb=$2" >/dev/null
  as alice task approve "$t" >/dev/null
  echo "$t"
}

# ---- 1. one key per output ----------------------------------------------
new_key o1
O1=$(as alice file register-output --key "$MT_WORK/o1.key")
expect_fail "alice registers a second output with the same key" "already the key of another output" \
  as alice file register-output --key "$MT_WORK/o1.key"
expect_fail "bob registers an output with alice's output key" "HTTP 409" \
  as bob file register-output --key "$MT_WORK/o1.key"
O1B=$(as alice file register-output --key "$MT_WORK/o1.key" --allow-key-reuse)
ok "an explicitly allowed reuse is accepted ($O1B)"

# ---- 2. input swapped on disk between registration and invoke -----------
T1=$(staged "$O1" "$O1B")
cp "$(obj "$OBJ_A")" "$MT_WORK/a.saved"
cp "$MT_WORK/a2.enc" "$(obj "$OBJ_A")"   # the host substitutes the ciphertext
as alice task invoke "$T1" >/dev/null
expect_fail "task over a substituted input" "integrity check failed" as alice task wait "$T1" --timeout 60
case "$(status "$T1" .failure_reason)" in
  *"input 'a'"*"does not match the SHA-256 recorded at registration"*) ;;
  *) fail "reason: $(status "$T1" .failure_reason)";;
esac
[ "$(as alice --output json file show "$O1" | jq -r .written)" = false ] || fail "output marked written"
[ ! -e "$(obj "$O1")" ] && [ ! -e "$(obj "$O1B")" ] || fail "an output object exists after the failure"
ls "$MT_DATA/objects" | grep -q "\.tmp\." && fail "a temporary output file was left behind"
ok "substituted input: $(status "$T1" .failure_reason); no output written"
cp "$MT_WORK/a.saved" "$(obj "$OBJ_A")"  # put the registered ciphertext back

# ---- 3. outputs copied between tasks, slots and files --------------------
# Both tasks' outputs use ONE key (allowed explicitly), so that only the
# binding, not the key, can tell the outputs apart.
new_key shared
P=$(as alice file register-output --key "$MT_WORK/shared.key")
Q=$(as alice file register-output --key "$MT_WORK/shared.key" --allow-key-reuse)
R=$(as alice file register-output --key "$MT_WORK/shared.key" --allow-key-reuse)
S=$(as alice file register-output --key "$MT_WORK/shared.key" --allow-key-reuse)
T2=$(staged "$P" "$Q")
T3=$(staged "$R" "$S")
for t in "$T2" "$T3"; do
  as alice task invoke "$t" >/dev/null
  as alice task wait "$t" --timeout 60 >/dev/null || fail "task $t: $(status "$t" .failure_reason)"
done
as alice task result "$T3" --slot ra --key "$MT_WORK/shared.key" --out "$MT_WORK/r3.txt" >/dev/null
[ "$(wc -l < "$MT_WORK/r3.txt")" = 300 ] || fail "task 3's output has $(wc -l < "$MT_WORK/r3.txt") lines"
ok "an output in place decrypts (task result checks task, slot and file)"
as alice file download "$R" --out "$MT_WORK/r.enc" >/dev/null || fail "download of R"

cp "$(obj "$R")" "$MT_WORK/r.saved"
cp "$(obj "$P")" "$(obj "$R")"   # task 2's output 'ra' copied over task 3's 'ra'
# the server compares the object with the SHA-256 recorded when it was written
expect_fail "the server serves an output object that changed" "integrity check failed" \
  as alice file download "$R" --out "$MT_WORK/x.enc"
# a host that also rewrites the recorded hash in the database (the store is
# host storage): the file row's MAC (item 8, a TEE-held key) no longer matches,
# so the server refuses before serving anything; the client's own binding
# check (task, slot, file in the mt_ff v2 header) is the second line, tested
# below with `file decrypt` and in test_client)
sethash() { mt_sql "UPDATE files SET sha256 = '$(sha256sum "$(obj "$1")" | cut -d' ' -f1)' WHERE file_id = '$1'"; }
sethash "$R"
rm -f "$MT_WORK/x.txt"
expect_fail "task result of an output copied from another task" "integrity check failed" \
  as alice task result "$T3" --slot ra --key "$MT_WORK/shared.key" --out "$MT_WORK/x.txt"
[ ! -e "$MT_WORK/x.txt" ] || fail "plaintext written for a copied output"
expect_fail "file download of an output copied from another file" "integrity check failed" \
  as alice file download "$R" --out "$MT_WORK/x.enc"
[ ! -e "$MT_WORK/x.enc" ] || fail "ciphertext kept for a copied output"

cp "$(obj "$S")" "$(obj "$R")"   # task 3's own 'rb' copied over its 'ra'
sethash "$R"
expect_fail "task result of an output copied from another slot" "integrity check failed" \
  as alice task result "$T3" --slot ra --key "$MT_WORK/shared.key" --out "$MT_WORK/x.txt"

# `file decrypt` of a downloaded output checks the binding when told what it is
as alice file download "$P" --out "$MT_WORK/p.enc" >/dev/null
expect_fail "file decrypt of task 2's output as task 3's" "output of another task" \
  as alice file decrypt --in "$MT_WORK/p.enc" --out "$MT_WORK/x.txt" --key "$MT_WORK/shared.key" \
    --task "$T3" --slot ra --file "$R"
as alice file decrypt --in "$MT_WORK/r.enc" --out "$MT_WORK/r.txt" --key "$MT_WORK/shared.key" \
  --task "$T3" --slot ra --file "$R" >/dev/null || fail "decrypt of the genuine output"
# an unbound file (version 1) is not accepted as an output unless asked
cp "$MT_WORK/a.enc" "$(obj "$R")"
sethash "$R"
expect_fail "an unbound file served as an output" "integrity check failed" \
  as alice file download "$R" --out "$MT_WORK/x.enc"
cp "$MT_WORK/r.saved" "$(obj "$R")"
sethash "$R"
as alice task result "$T3" --slot ra --key "$MT_WORK/shared.key" --out "$MT_WORK/r3b.txt" >/dev/null \
  || fail "the genuine output is refused after being put back"
ok "outputs copied between tasks, slots and files are refused on download"

mt_stop_server
