#!/usr/bin/env bash
# MESATEE_TRACE_TASKS=1 (src/common/mt_trace.h, issue 13): an echo task's
# path is traced stage by stage, in order, from the invoke request to the task
# event, the worker's own stamps included, and its sandbox is applied before
# it reads the job (the child's seccomp stamp precedes job_read); built-in
# tasks fork from the native zygote, which imported no Python module. Without
# the variable nothing is traced. No timing is judged.
source "$(dirname "$0")/lib.sh"

MT_DATA=$MT_WORK/on
MESATEE_TRACE_TASKS=1 mt_start_server --worker-start zygote
mt_login admin; mt_add_user alice
F=$(as alice function register --name echo --builtin echo --arg "message=hi:overridable")
T=$(as alice task create --function "$F")
as alice task approve "$T" >/dev/null 2>&1 || true
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 60 >/dev/null || fail "echo task did not finish"
for _ in $(seq 1200); do grep -q "trace task $T event_raised" "$MT_WORK/server.log" && break; sleep 0.05; done
out=$(/usr/bin/python3 "$(dirname "$0")/../../bench/faas/trace_breakdown.py" "$MT_WORK/server.log" --check "$T") ||
  fail "trace of $T: $out"
ok "traced: $out"
# garbage in the worker's stamps is never logged (only [a-z_]=digits)
grep "trace task" "$MT_WORK/server.log" | grep -Evq 'trace task [0-9a-f]{32} [a-z_]+ [0-9]+$' &&
  fail "a trace line of another shape: $(grep 'trace task' "$MT_WORK/server.log" | grep -Ev 'trace task [0-9a-f]{32} [a-z_]+ [0-9]+$' | head -1)"
ok "every trace line is 'trace task ID STAGE US'"
# the zygotes: a native one (built-ins, wasm) and a python one
pgrep -P "$MT_PID" -f -- '--zygote=native' >/dev/null || fail "no native zygote"
N=$(pgrep -P "$MT_PID" -f -- '--zygote=native' | head -1)
grep -q _multiarray_umath "/proc/$N/maps" && fail "the native zygote imported numpy"
ok "built-in tasks fork from a native zygote that imported no Python module"
mt_stop_server

MT_DATA=$MT_WORK/off
: >"$MT_WORK/server.log"
mt_start_server --worker-start zygote
mt_login admin
F=$(as admin function register --name echo --builtin echo --arg "message=hi:overridable")
T=$(as admin task create --function "$F")
as admin task approve "$T" >/dev/null 2>&1 || true
as admin task invoke "$T" >/dev/null
as admin task wait "$T" --timeout 60 >/dev/null || fail "echo task did not finish (trace off)"
grep -q "trace task" "$MT_WORK/server.log" && fail "traced without MESATEE_TRACE_TASKS"
ok "no trace lines without MESATEE_TRACE_TASKS"
