#!/usr/bin/env bash
# Python's string-hash seed under the zygote (issue 11; docs/python-functions.md
# "Determinism and state"): by default the tasks of one zygote share it; with
# --zygote-max-tasks 1 (one task per zygote) two consecutive tasks get
# different hash('x'), and the next zygote is already started (warming up)
# when the previous task ends, so the next task does not start it.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy is not installed"; exit 77; }

zygotes() { pgrep -P "$MT_PID" -f -- '--zygote' | sort | tr '\n' ' ' || true; }
run() { # run TASK: invoke, wait, print hash('x')
  as alice task approve "$1" >/dev/null; as alice task invoke "$1" >/dev/null
  as alice task wait "$1" --timeout 60 >/dev/null || true
  local s; s=$(as alice --output json task show "$1")
  [ "$(jget "$s" .status)" = finished ] || fail "task $1: $(jget "$s" .status) $(jget "$s" .failure_reason)"
  jget "$s" .result.return_value
}
printf '%s\n' 'def entrypoint(argv):' '    return hash("x")' > "$MT_WORK/hash.py"

# ---- default (256 tasks per zygote): one seed for the zygote's tasks ----
MT_DATA=$MT_WORK/default
mt_start_server --worker-start zygote
mt_login admin; mt_add_user alice
F=$(as alice function register --name hash --python "$MT_WORK/hash.py")
H=()
for i in 1 2 3; do H[$i]=$(run "$(as alice task create --function "$F")"); done
[ "${H[1]}" = "${H[2]}" ] && [ "${H[2]}" = "${H[3]}" ] ||
  fail "default mode: expected one seed per zygote, got ${H[*]}"
ok "default: the tasks of one zygote share hash('x') (${H[1]}), as documented"
mt_stop_server

# ---- --zygote-max-tasks 1: a seed per task, the next zygote started early ----
MT_DATA=$MT_WORK/safe
rm -f "$MT_WORK"/*.token
mt_start_server --worker-start zygote --zygote-max-tasks 1
mt_login admin; mt_add_user alice
F=$(as alice function register --name hash --python "$MT_WORK/hash.py")
T1=$(as alice task create --function "$F"); T2=$(as alice task create --function "$F")
T3=$(as alice task create --function "$F")
Z0=$(zygotes)
[ -n "$Z0" ] || fail "no zygote before the first task"
H1=$(run "$T1")
Z1=$(zygotes)
# the zygote that will fork T2 was started when T1 was forked (not by T2)
new=""
for z in $Z1; do case " $Z0 " in *" $z "*) ;; *) new=$z;; esac; done
[ -n "$new" ] || fail "no new zygote started after the first task (before: $Z0, after: $Z1)"
H2=$(run "$T2")
[ "$H1" != "$H2" ] || fail "--zygote-max-tasks 1: two consecutive tasks share hash('x') ($H1)"
# T2 ran in the zygote started early: it is out of service now
for _ in $(seq 1200); do case " $(zygotes) " in *" $new "*) sleep 0.05;; *) break;; esac; done
case " $(zygotes) " in *" $new "*) fail "the early-started zygote $new did not serve the next task";; esac
H3=$(run "$T3")
[ "$H3" != "$H2" ] && [ "$H3" != "$H1" ] || fail "--zygote-max-tasks 1: hashes $H1 $H2 $H3"
ok "--zygote-max-tasks 1: consecutive tasks get different hash('x') ($H1, $H2, $H3); the next zygote starts while the previous task runs"
echo "it_python_hash_seed: all checks passed"
