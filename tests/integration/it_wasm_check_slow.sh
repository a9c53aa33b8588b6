#!/usr/bin/env bash
# Issue 8 (items 7 and 16, second review): registering a "wasm" function runs
# the module's check in a sandboxed worker (up to 10 s CPU / 60 s wall). It
# runs on the gateway's worker threads outside the store lock, so /healthz,
# another user's GET /v1/users/me and another user's state change are
# answered while a registration's check is in flight. The check is held at a
# gate (a wrapper in front of the real worker) that the test opens only after
# those answers arrived: an ordering, not a timing. On the old code (check on
# the event loop under the store lock) the other requests time out.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
GATE=$MT_WORK/gate
STARTED=$MT_WORK/check-started
SLEEP=$(command -v sleep)
# The worker is started with an empty environment: absolute paths only.
cat > "$MT_WORK/gated-worker" <<EOF
#!/bin/bash
: > '$STARTED'
while [ ! -e '$GATE' ]; do [ -d '$MT_WORK' ] || exit 9; '$SLEEP' 0.05; done  # (ends when the test's directory is gone)
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod +x "$MT_WORK/gated-worker"
mt_start_server --worker "$MT_WORK/gated-worker"
mt_login admin
mt_add_user alice
mt_add_user bob
TOK_B=$(cat "$MT_WORK/bob.token")
"$MESATEE_BIN" key generate --out "$MT_WORK/b.key" >/dev/null

# The smallest module the check accepts: exports "_start" and "memory".
printf '\0asm\1\0\0\0\1\4\1\x60\0\0\3\2\1\0\5\3\1\0\1\7\x13\2\6_start\0\0\6memory\2\0\n\4\1\2\0\x0b' \
  > "$MT_WORK/m.wasm"

as alice function register --name gated --wasm "$MT_WORK/m.wasm" > "$MT_WORK/reg.out" 2>&1 &
REG=$!
for _ in $(seq 600); do [ -e "$STARTED" ] && break; sleep 0.05; done
[ -e "$STARTED" ] || { touch "$GATE"; fail "the module check never started"; }
# The registration is in flight (its check waits at the gate) ...
kill -0 "$REG" 2>/dev/null || { cat "$MT_WORK/reg.out"; fail "registration ended before the gate opened"; }
# ... and the rest of the server answers.
h=$(curl -sS --max-time 20 --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz") ||
  { touch "$GATE"; fail "/healthz not answered while a wasm check was in flight"; }
case "$h" in *ok*) ;; *) touch "$GATE"; fail "/healthz: $h" ;; esac
me=$(curl -sS --max-time 20 --cacert "$MESATEE_CA" -H "Authorization: Bearer $TOK_B" \
       "$MESATEE_SERVER/v1/users/me") ||
  { touch "$GATE"; fail "GET /v1/users/me not answered while a wasm check was in flight"; }
[ "$(jget "$me" .username)" = bob ] || { touch "$GATE"; fail "users/me: $me"; }
out=$(timeout 20 env MESATEE_TOKEN_FILE="$MT_WORK/bob.token" "$MESATEE_BIN" file register-output \
        --key "$MT_WORK/b.key") || { touch "$GATE"; fail "bob's registration (a write) waited: $out"; }
kill -0 "$REG" 2>/dev/null || fail "registration ended before the gate opened"
ok "/healthz, bob's users/me and bob's write answered while alice's wasm check was in flight"

touch "$GATE"
wait "$REG" || fail "registration failed after the gate opened: $(cat "$MT_WORK/reg.out")"
FN=$(tail -n 1 "$MT_WORK/reg.out")
[[ "$FN" =~ ^[0-9a-f]{32}$ ]] || fail "registration printed: $(cat "$MT_WORK/reg.out")"
[ "$(as alice --output json function show "$FN" | jq -r .executor_type)" = wasm ] ||
  fail "function $FN not stored as wasm"
ok "the registration completed once its check did: $FN"
# Exactly one audit entry for it, written with the change (201).
n=$(as admin --output json audit list --limit 1000 |
      jq '[.. | objects | select(.action? == "POST /v1/functions")] | length')
[ "$n" = 1 ] || fail "expected one audit entry for the registration, found $n"
st=$(as admin --output json audit list --limit 1000 |
      jq '[.. | objects | select(.action? == "POST /v1/functions")][0].status')
[ "$st" = 201 ] || fail "audit entry status $st"
# A refused module still answers 400 through the same path, and is audited.
printf 'not a module' > "$MT_WORK/bad.wasm"
expect_fail "a malformed module" "HTTP 400" as alice function register --name bad --wasm "$MT_WORK/bad.wasm"
n=$(as admin --output json audit list --limit 1000 |
      jq '[.. | objects | select(.action? == "POST /v1/functions" and .status? == 400)] | length')
[ "$n" = 1 ] || fail "expected one audit entry for the refused registration, found $n"
ok "one audit entry per registration (201, 400)"
