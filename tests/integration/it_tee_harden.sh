#!/usr/bin/env bash
# Soft-level process hardening (src/tee/mt_tee.c): above level none the daemon
#   - refuses to start under a debugger or tracer (here: `strace -f`), with a
#     message naming it, and writes no server.url; level none still starts;
#   - keeps its secrets in locked memory (VmLck > 0 in /proc/PID/status: the
#     sealing secret's page and OpenSSL's secure heap for private keys);
#   - logs loudly when a tracer attaches while it runs (checked every 2 s;
#     root can attach to a non-dumpable process).
# Parts that need strace, or root to attach, skip with a message.
source "$(dirname "$0")/lib.sh"
B=$MESATEE_BIN

# Locked memory while running at level soft.
mt_start_server --level soft
lck=$(awk '/^VmLck:/ {print $2}' "/proc/$MT_PID/status")
[ -n "$lck" ] || fail "no VmLck in /proc/$MT_PID/status"
if [ "$(ulimit -l)" = unlimited ] || [ "$(ulimit -l)" -ge 512 ] || [ "$(id -u)" = 0 ]; then
  [ "$lck" -gt 0 ] || fail "level soft: no memory locked (VmLck $lck kB)"
  grep -q "not locked in memory\|cannot lock secret pages" "$MT_WORK/server.log" &&
    fail "level soft: lock warning although the limit allows it"
  ok "level soft: secrets in locked memory (VmLck $lck kB)"
else
  grep -q "not locked in memory\|cannot lock secret pages" "$MT_WORK/server.log" ||
    fail "RLIMIT_MEMLOCK $(ulimit -l) KiB is small but no warning was logged"
  ok "level soft: small RLIMIT_MEMLOCK ($(ulimit -l) KiB) warned about"
fi
grep -q "secrets locked in memory, no debugger attached" "$MT_WORK/server.log" ||
  fail "level soft: the start message does not state the hardening"

if ! command -v strace >/dev/null; then
  echo "SKIP: strace not installed: debugger detection not exercised (apt install strace)"
  echo "it_tee_harden: passed (partly skipped)"; exit 0
fi
if ! strace -f -o /dev/null true 2>/dev/null; then
  echo "SKIP: strace cannot trace here (ptrace not permitted): debugger detection not exercised"
  echo "it_tee_harden: passed (partly skipped)"; exit 0
fi

# A tracer attaching while the daemon runs is logged loudly.
strace -p "$MT_PID" -o /dev/null 2>"$MT_WORK/strace-attach.log" &
ST_PID=$!
{
  for _ in $(seq 50); do
    grep -q "SECURITY: a debugger or tracer" "$MT_WORK/server.log" && break
    kill -0 "$ST_PID" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "SECURITY: a debugger or tracer (pid $ST_PID (strace))" "$MT_WORK/server.log"; then
    ok "level soft: a tracer attaching at run time is logged (pid $ST_PID, strace)"
  elif ! kill -0 "$ST_PID" 2>/dev/null; then
    echo "SKIP: cannot attach to the running daemon here ($(cat "$MT_WORK/strace-attach.log")): run-time detection not exercised"
  else
    kill "$ST_PID"; fail "a tracer attached for 5 s but the daemon logged nothing"
  fi
  kill "$ST_PID" 2>/dev/null || true; wait "$ST_PID" 2>/dev/null || true
}
mt_stop_server

# Started under strace -f: level soft refuses, naming the tracer.
rm -f "$MT_DATA/server.url"
if strace -f -o /dev/null "$B" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 --level soft \
  --admin-password-file "$MT_WORK/admin.pw" >"$MT_WORK/traced.log" 2>&1; then
  fail "level soft started under strace -f: $(tail -n 5 "$MT_WORK/traced.log")"
fi
grep -q "refusing to start: a debugger or tracer is attached to this process (pid [0-9]* (strace)" \
  "$MT_WORK/traced.log" || fail "refusal under strace does not name the tracer: $(cat "$MT_WORK/traced.log")"
[ ! -e "$MT_DATA/server.url" ] || fail "a traced soft daemon wrote server.url"
ok "level soft under strace -f: refused at start, naming strace"

# Level none under the same tracer starts (the check is the level's).
strace -f -o /dev/null "$B" serve --data-dir "$MT_WORK/none" --listen 127.0.0.1:0 --level none \
  --admin-password-file "$MT_WORK/admin.pw" >"$MT_WORK/none.log" 2>&1 &
NP=$!
for _ in $(seq 100); do [ -s "$MT_WORK/none/server.url" ] && break; sleep 0.1; done
[ -s "$MT_WORK/none/server.url" ] || { kill "$NP" 2>/dev/null; fail "level none did not start under strace: $(tail -n 5 "$MT_WORK/none.log")"; }
for c in $(pgrep -P "$NP" || true); do kill "$c" 2>/dev/null || true; done  # the daemon
kill "$NP" 2>/dev/null || true; wait "$NP" 2>/dev/null || true
ok "level none under strace -f starts (only levels above none refuse a tracer)"
echo "it_tee_harden: all passed"
