#!/usr/bin/env bash
# Bad input and cross-party access against a real server: every case must get
# a clear 4xx JSON error and change nothing.
source "$(dirname "$0")/lib.sh"
mt_start_server
mt_login admin
mt_add_user alice
mt_add_user bob
mt_add_user carol

TOK_A=$(cat "$MT_WORK/alice.token")
# raw METHOD PATH [curl args...]: prints "STATUS BODY"
raw() {
  local m=$1 p=$2; shift 2
  curl -sS --tlsv1.3 --cacert "$MESATEE_CA" -X "$m" -o "$MT_WORK/body" -w '%{http_code}' \
    "$MESATEE_SERVER$p" "$@" > "$MT_WORK/code" || true
  printf '%s %s' "$(cat "$MT_WORK/code")" "$(cat "$MT_WORK/body")"
}
# expect_http DESC STATUS ERRCODE METHOD PATH [curl args]
expect_http() {
  local desc=$1 st=$2 code=$3; shift 3
  local r; r=$(raw "$@")
  [ "${r%% *}" = "$st" ] || fail "$desc: expected HTTP $st, got: $r"
  local body=${r#* }
  [ "$(jget "$body" .error.code)" = "$code" ] || fail "$desc: expected error code $code in: $body"
  [ -n "$(jget "$body" .error.message)" ] || fail "$desc: empty error message"
  ok "$desc -> $st $code: $(jget "$body" .error.message)"
}
AUTH=(-H "Authorization: Bearer $TOK_A")
JSON=(-H "Content-Type: application/json")

# Protocol-level garbage.
expect_http "unknown route" 404 not_found GET /v1/nope "${AUTH[@]}"
expect_http "no token" 401 unauthenticated GET /v1/files
expect_http "bad token" 401 unauthenticated GET /v1/files -H "Authorization: Bearer xyz"
expect_http "malformed JSON" 400 invalid_argument POST /v1/files/outputs "${AUTH[@]}" "${JSON[@]}" --data '{"key":'
expect_http "wrong type" 400 invalid_argument POST /v1/files/outputs "${AUTH[@]}" "${JSON[@]}" --data '{"key":5}'
expect_http "unknown field" 400 invalid_argument POST /v1/files/outputs "${AUTH[@]}" "${JSON[@]}" --data "{\"key\":\"$(printf '%064d' 0)\",\"evil\":1}"
expect_http "deep JSON" 400 invalid_argument POST /v1/tasks "${AUTH[@]}" "${JSON[@]}" --data "$(printf '[%.0s' $(seq 100))"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' > "$MT_WORK/big.json"
expect_http "oversized JSON body" 413 too_large POST /v1/tasks "${AUTH[@]}" "${JSON[@]}" --data-binary "@$MT_WORK/big.json"
expect_http "upload that is not ciphertext" 400 invalid_argument POST /v1/objects "${AUTH[@]}" -H "Content-Type: application/octet-stream" --data-binary "@$MT_WORK/big.json"
expect_http "non-admin creates a user" 403 permission_denied POST /v1/users "${AUTH[@]}" "${JSON[@]}" --data '{"username":"mallory","password":"password123","role":"admin"}'
expect_http "login with wrong password" 401 unauthenticated POST /v1/auth/login "${JSON[@]}" --data '{"username":"alice","password":"wrong-password"}'

# Alice's file and a PSI function/task between alice and bob.
seq -f "id%g" 1 1000 > "$MT_WORK/a.txt"; seq -f "id%g" 500 1500 > "$MT_WORK/b.txt"
as alice file encrypt --in "$MT_WORK/a.txt" --out "$MT_WORK/a.enc" --key-out "$MT_WORK/a.key" >/dev/null
as bob file encrypt --in "$MT_WORK/b.txt" --out "$MT_WORK/b.enc" --key-out "$MT_WORK/b.key" >/dev/null
"$MESATEE_BIN" key generate --out "$MT_WORK/other.key" >/dev/null
URL_A=$(as alice file upload "$MT_WORK/a.enc")
expect_fail "register with the wrong key" "key id mismatch" as alice file register "$URL_A" --key "$MT_WORK/other.key"
expect_fail "bob registers alice's upload" "HTTP 4" as bob file register "$URL_A" --key "$MT_WORK/a.key"
FA=$(as alice file register "$URL_A" --key "$MT_WORK/a.key")
URL_B=$(as bob file upload "$MT_WORK/b.enc")
FB=$(as bob file register "$URL_B" --key "$MT_WORK/b.key")
"$MESATEE_BIN" key generate --out "$MT_WORK/ao.key" >/dev/null
"$MESATEE_BIN" key generate --out "$MT_WORK/bo.key" >/dev/null
OA=$(as alice file register-output --key "$MT_WORK/ao.key")
OB=$(as bob file register-output --key "$MT_WORK/bo.key")
expect_fail "bob reads alice's file" "HTTP 404" as bob file show "$FA"
expect_fail "bob deletes alice's file" "HTTP 404" as bob file delete "$FA"
as alice file show "$FA" >/dev/null && ok "alice's file is intact"

FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b --output-slot ra --output-slot rb --private --quota 1)
expect_fail "unknown built-in" "HTTP 400" as alice function register --name x --builtin nosuch --input-slot a
expect_fail "bob sees alice's private function" "HTTP 404" as bob function show "$FN"
expect_fail "task on an unknown function" "HTTP 404" as alice task create --function "$(printf '%032d' 0)" --input a=alice
T=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
expect_fail "carol reads the task" "HTTP 404" as carol task show "$T"
expect_fail "carol approves the task" "HTTP 404" as carol task approve "$T"
expect_fail "bob assigns alice's file" "HTTP 40" as bob task assign "$T" --input "b=$FA"
expect_fail "alice assigns her file to bob's slot" "HTTP 40" as alice task assign "$T" --input "b=$FA"
expect_fail "invoke before approval" "HTTP 409" as alice task invoke "$T"
[ "$(as alice --output json task show "$T" | jq -r .status)" = created ] && ok "task still created"
as alice task assign "$T" --input "a=$FA" --output "ra=$OA" >/dev/null
as bob task assign "$T" --input "b=$FB" --output "rb=$OB" >/dev/null
[ "$(as alice --output json task show "$T" | jq -r .status)" = data_assigned ] || fail "not data_assigned"
as alice task approve "$T" >/dev/null
expect_fail "invoke before every participant approved" "HTTP 409" as alice task invoke "$T"
as bob task approve "$T" >/dev/null
expect_fail "bob (not the creator) invokes" "HTTP 403" as bob task invoke "$T"
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 60 >/dev/null && ok "task finished"
as bob task result "$T" --slot rb --key "$MT_WORK/bo.key" --out "$MT_WORK/rb.txt" >/dev/null
[ "$(wc -l < "$MT_WORK/rb.txt")" = 501 ] || fail "bob's intersection has $(wc -l < "$MT_WORK/rb.txt") lines, want 501"
ok "bob's result decrypts to the 501 common ids"
expect_fail "alice downloads bob's output" "HTTP 404" as alice file download "$OB" --out "$MT_WORK/x"
expect_fail "bob decrypts with the wrong key" "wrong key" as bob task result "$T" --slot rb --key "$MT_WORK/ao.key" --out "$MT_WORK/y"
[ ! -e "$MT_WORK/y" ] && ok "nothing written on a wrong key"

# Quota of 1 is used: a second task cannot be invoked.
expect_fail "an output key used twice" "already the key of another output" as alice file register-output --key "$MT_WORK/ao.key"
"$MESATEE_BIN" key generate --out "$MT_WORK/ao2.key" >/dev/null
"$MESATEE_BIN" key generate --out "$MT_WORK/bo2.key" >/dev/null
OA2=$(as alice file register-output --key "$MT_WORK/ao2.key"); OB2=$(as bob file register-output --key "$MT_WORK/bo2.key")
T2=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
as alice task assign "$T2" --input "a=$FA" --output "ra=$OA2" >/dev/null
as bob task assign "$T2" --input "b=$FB" --output "rb=$OB2" >/dev/null
as alice task approve "$T2" >/dev/null; as bob task approve "$T2" >/dev/null
expect_fail "quota exceeded" "HTTP 429" as alice task invoke "$T2"
[ "$(as alice --output json task show "$T2" | jq -r .status)" = approved ] && ok "task still approved after the refused invoke"

# Tampered ciphertext: a task over it fails with a reason and writes nothing.
cp "$MT_WORK/a.enc" "$MT_WORK/t.enc"
mt_flip_byte "$MT_WORK/t.enc" 100
URL_T=$(as alice file upload "$MT_WORK/t.enc")
FT=$(as alice file register "$URL_T" --key "$MT_WORK/a.key")
FN1=$(as alice function register --name psi-self --builtin psi --input-slot a --input-slot b --output-slot ra)
"$MESATEE_BIN" key generate --out "$MT_WORK/ao3.key" >/dev/null
OA3=$(as alice file register-output --key "$MT_WORK/ao3.key")
T3=$(as alice task create --function "$FN1" --input a=alice --input b=alice --output ra=alice)
as alice task assign "$T3" --input "a=$FT" --input "b=$FA" --output "ra=$OA3" >/dev/null
as alice task approve "$T3" >/dev/null 2>&1 || true
as alice task invoke "$T3" >/dev/null
expect_fail "task over tampered ciphertext" "decryption failed" as alice task wait "$T3" --timeout 60
[ "$(as alice --output json file show "$OA3" | jq -r .written)" = false ] && ok "no output written for the failed task"

# Logout revokes the token.
TOK_C=$(cat "$MT_WORK/carol.token")
as carol logout >/dev/null
expect_http "revoked token" 401 unauthenticated GET /v1/files -H "Authorization: Bearer $TOK_C"
mt_stop_server
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" && ok "audit chain intact"
