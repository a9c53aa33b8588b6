#!/usr/bin/env bash
# kill -9 of the daemon while a task runs, then restart: users, files,
# functions and finished tasks are intact; the interrupted task is failed with
# a reason; the worker did not outlive the daemon; the audit chain verifies.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the stalling https peer"; exit 0; }
# the https peer below is on loopback, which the outbound policy refuses by default
mt_start_server --workers 2 --fetch-allow 127.0.0.1/32
mt_login admin
mt_add_user alice

# A finished task before the crash.
seq -f "x%g" 1 100 > "$MT_WORK/a.txt"
as alice file encrypt --in "$MT_WORK/a.txt" --out "$MT_WORK/a.enc" --key-out "$MT_WORK/a.key" >/dev/null
FA=$(as alice file register "$(as alice file upload "$MT_WORK/a.enc")" --key "$MT_WORK/a.key")
FN=$(as alice function register --name self-psi --builtin psi --input-slot a --input-slot b --output-slot r)
run_task() { # run_task INPUT_B_FILE -> task id (invoked)
  local o t k
  k=$(mktemp -u "$MT_WORK/o.XXXXXX.key") # one key per output
  "$MESATEE_BIN" key generate --out "$k" >/dev/null
  o=$(as alice file register-output --key "$k")
  t=$(as alice task create --function "$FN" --input a=alice --input b=alice --output r=alice)
  as alice task assign "$t" --input "a=$FA" --input "b=$1" --output "r=$o" >/dev/null
  as alice task approve "$t" >/dev/null 2>&1 || true
  as alice task invoke "$t" >/dev/null
  echo "$t"
}
T1=$(run_task "$FA")
as alice task wait "$T1" --timeout 60 >/dev/null
ok "task $T1 finished before the crash"

# A task whose input comes from an https peer that accepts and never answers:
# the worker stays in its fetch, the task stays running.
mt_silent_peer
FS=$(as alice file register "https://127.0.0.1:$(cat "$MT_WORK/peer.port")/ids.enc" --key "$MT_WORK/a.key" \
       --sha256 "$(sha256sum "$MT_WORK/a.enc" | cut -d' ' -f1)")
T2=$(run_task "$FS")
for _ in $(seq 100); do
  [ "$(as alice --output json task show "$T2" | jq -r .status)" = running ] && break; sleep 0.1
done
[ "$(as alice --output json task show "$T2" | jq -r .status)" = running ] || fail "task did not reach running"
ok "task $T2 is running (worker stalled in its fetch)"
# Cancel of a running task kills its worker.
TC=$(run_task "$FS")
for _ in $(seq 100); do
  [ "$(as alice --output json task show "$TC" | jq -r .status)" = running ] && break; sleep 0.1
done
as alice task cancel "$TC" >/dev/null
expect_fail "waiting on a canceled task" "canceled" as alice task wait "$TC" --timeout 30
# task workers: the daemon's mesatee-worker children that are not zygotes,
# and the zygotes' children (one native and one python zygote by default)
# but their spares (named mesatee-spare while they wait for a request)
workers() {
  local p z
  for p in $(pgrep -P "$MT_PID" -f mesatee-worker); do
    if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- '--zygote'; then z+=" $p"; else echo "$p"; fi
  done
  for p in $z; do
    for c in $(pgrep -P "$p" || true); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" = mesatee-spare ] || echo "$c"
    done
  done
}
for _ in $(seq 300); do [ "$(workers | wc -l)" = 1 ] && break; sleep 0.1; done
[ "$(workers | wc -l)" = 1 ] || fail "the canceled task's worker still runs ($(workers | wc -l) workers)"
ok "cancel of a running task killed its worker"
# every process under the daemon's zygotes, the spares included: none may
# outlive the daemon (below)
zygote_children() {
  local p
  for p in $(pgrep -P "$MT_PID" -f mesatee-worker); do
    if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- '--zygote'; then pgrep -P "$p" || true; fi
  done
}
WORKERS=$({ pgrep -P "$MT_PID" -f mesatee-worker || true; workers; zygote_children; } | sort -u | tr '\n' ' ') # zygotes, spares and the worker
[ -n "$WORKERS" ] || fail "no worker process under the daemon"
kill -9 "$MT_PID"; wait "$MT_PID" 2>/dev/null || true; MT_PID=
ok "daemon killed with SIGKILL"
# The workers get SIGKILL when the daemon dies (the zygotes' children when
# their zygote dies): their exit takes its time on a loaded machine, so poll
# (60 s at most; a worker that outlived the daemon stays in its fetch forever).
alive() {
  local w state
  for w in $WORKERS; do
    state=$(awk '{print $3}' "/proc/$w/stat" 2>/dev/null || echo gone)
    case "$state" in gone|Z|X) ;; *) echo "$w ($state)" ;; esac
  done
}
for _ in $(seq 600); do [ -z "$(alive)" ] && break; sleep 0.1; done
[ -z "$(alive)" ] || fail "workers outlived the daemon: $(alive | tr '\n' ' ')"
ok "the worker died with the daemon"

mt_start_server --workers 2 --fetch-allow 127.0.0.1/32
mt_login alice
[ "$(as alice --output json task show "$T1" | jq -r .status)" = finished ] || fail "finished task lost"
ok "finished task intact after restart"
st=$(as alice --output json task show "$T2")
[ "$(jget "$st" .status)" = failed ] || fail "interrupted task is $(jget "$st" .status), want failed"
case "$(jget "$st" .failure_reason)" in *restart*) ;; *) fail "reason: $(jget "$st" .failure_reason)";; esac
ok "interrupted task failed: $(jget "$st" .failure_reason)"
as alice file show "$FA" >/dev/null && ok "files intact"
as alice function show "$FN" >/dev/null && ok "functions intact"
T3=$(run_task "$FA")
as alice task wait "$T3" --timeout 60 >/dev/null && ok "new tasks run after the restart"
mt_stop_server
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA" && ok "audit chain intact across the crash"
