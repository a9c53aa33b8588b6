#!/usr/bin/env bash
# The worker zygote starts with `serve` (issue 13): before any task ran, the
# daemon has a `mesatee-worker --zygote` child, and the first task is forked
# by that same zygote (its pid unchanged). With --worker-start spawn there is
# none.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
zygote_of() { # zygote_of PID: the pid of PID's child running --zygote, or nothing
  local c
  for c in $(pgrep -P "$1" || true); do
    tr '\0' ' ' < "/proc/$c/cmdline" 2>/dev/null | grep -q -- '--zygote' && echo "$c"
  done
  return 0
}
wait_zygote() {
  for _ in $(seq 1200); do Z=$(zygote_of "$MT_PID"); [ -n "$Z" ] && return 0; sleep 0.05; done
  fail "no zygote child of the daemon before any task"
}
mt_start_server --worker "$MESATEE_WORKER"
wait_zygote
ok "zygote $Z runs before the first task"
mt_login admin
mt_add_user alice
FN=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
T=$(as alice task create --function "$FN" --arg "message=hi")
as alice task approve "$T" >/dev/null 2>&1 || true
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 120 >/dev/null || fail "the first task did not finish"
[ "$(zygote_of "$MT_PID")" = "$Z" ] || fail "zygote changed: $Z -> $(zygote_of "$MT_PID")"
ok "the first task ran from the zygote started with serve (pid $Z unchanged)"
mt_stop_server
mt_start_server --worker "$MESATEE_WORKER" --worker-start spawn
# the scheduler (and a zygote) starts before server.url is written: no wait needed
[ -z "$(zygote_of "$MT_PID")" ] || fail "--worker-start spawn started a zygote"
ok "--worker-start spawn: no zygote"
