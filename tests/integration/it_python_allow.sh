#!/usr/bin/env bash
# The operator's python allow-list (issue 11; python_modules.h): --python-allow
# / --python-deny set it, each python task stores it in its MACed declaration
# (argument python_modules, approved by every participant, shown by task show
# with its SHA-256), the worker enforces the stored list, a task whose list is
# no longer the server's fails before it runs, and a tampered list fails the
# integrity check. Garbage in the options stops the server at start.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy is not installed"; exit 77; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 (the CLI) not installed"; exit 77; }

# ---- garbage in the options: the server does not start, the message names it ----
bad_start() { # bad_start WANT ARGS...
  local want=$1; shift
  local out
  printf 'pw-%s\n' "$RANDOM$RANDOM" > "$MT_WORK/bad.pw"
  out=$(timeout 60 "$MESATEE_BIN" serve --data-dir "$MT_WORK/bad" --listen 127.0.0.1:0 \
          --admin-password-file "$MT_WORK/bad.pw" "$@" 2>&1) && fail "serve $* started"
  case "$out" in *"$want"*) ;; *) fail "serve $*: expected '$want' in: $out";; esac
}
bad_start "--python-deny: 'a b' is not a top-level module name" --python-deny 'a b'
bad_start "--python-allow: '1x' is not a top-level module name" --python-allow 1x
bad_start "--python-deny: 'nosuchmodule' is not in the default allow-list" --python-deny nosuchmodule
bad_start "'mesatee' is the functions' own interface" --python-deny mesatee
bad_start "'json' is also in --python-allow" --python-deny json --python-allow json
bad_start "is not a top-level module name" --python-allow "$(head -c 100 /dev/zero | tr '\0' x)"
ok "bad --python-allow/--python-deny values stop the server with a message naming them"

mt_start_server --task-cpu-s 5 --task-wall-s 30 --python-allow shlex --python-deny json,xgboost
mt_login admin
for u in alice bob; do mt_add_user "$u"; done

L=$(as bob --output json function builtins)
[ "$(jget "$L" '.python_modules | index("shlex") != null')" = true ] || fail "shlex not listed"
[ "$(jget "$L" '.python_modules | index("json")')" = null ] || fail "json still listed"
ok "GET /v1/builtins lists the operator's list (shlex added, json and xgboost removed)"

printf '%s\n' 'def entrypoint(argv):' '    import shlex' '    return " ".join(shlex.split("a \"b c\""))' \
  > "$MT_WORK/shlex.py"
printf '%s\n' 'def entrypoint(argv):' '    import json' '    return json.dumps(1)' > "$MT_WORK/json.py"
FA=$(as alice function register --name shl --python "$MT_WORK/shlex.py" --public)
FJ=$(as alice function register --name js --python "$MT_WORK/json.py" --public)
expect_fail "a function cannot declare the server's python_modules" \
  "argument 'python_modules' is set by the server" \
  as alice function register --name x --python "$MT_WORK/json.py" --arg python_modules=os,mesatee

run() { # run TASK USER...: every USER approves, the first invokes and waits
  local t=$1; shift
  for u in "$@"; do as "$u" task approve "$t" >/dev/null; done
  as "$1" task invoke "$t" >/dev/null
  as "$1" task wait "$t" --timeout 120 >/dev/null || true
}
T=$(as bob task create --function "$FA")
S=$(as bob --output json task show "$T")
PM=$(jget "$S" .arguments.python_modules)
case ",$PM," in *,shlex,*) ;; *) fail "task's list lacks shlex: $PM";; esac
case ",$PM," in *,json,*|*,xgboost,*) fail "task's list has a denied module: $PM";; esac
[ "$(jget "$S" .python_modules_sha256)" = "$(printf '%s' "$PM" | sha256sum | cut -d' ' -f1)" ] \
  || fail "python_modules_sha256 is not the SHA-256 of the list"
as bob task show "$T" | grep -q "python_modules" || fail "task show (text) lacks the list"
run "$T" bob
S=$(as bob --output json task show "$T")
[ "$(jget "$S" .result.return_value)" = "a b c" ] || fail "shlex: $(jget "$S" .failure_reason) $(jget "$S" .log)"
# the function's own view: not in argv, not in mesatee.args
printf '%s\n' 'import mesatee' 'def entrypoint(argv):' \
  '    return "%d %s" % (len(argv), "python_modules" in mesatee.args)' > "$MT_WORK/argv.py"
FV=$(as alice function register --name argv --python "$MT_WORK/argv.py")
T=$(as alice task create --function "$FV"); run "$T" alice
[ "$(jget "$(as alice --output json task show "$T")" .result.return_value)" = "1 False" ] \
  || fail "python_modules reached the function's arguments"
ok "task show has the approved list and its SHA-256; an allowed module imports; the list is not a function argument"

T=$(as bob task create --function "$FJ"); run "$T" bob
S=$(as bob --output json task show "$T")
[ "$(jget "$S" .status)" = failed ] || fail "json ran: $(jget "$S" .status)"
case "$(jget "$S" .log)" in *"module json is not allowed in mesatee functions"*) ;;
  *) fail "json: $(jget "$S" .log)";; esac
ok "a denied module fails the task: $(jget "$S" .failure_reason)"

# ---- the list changes after approval: the approved task fails, a new one runs ----
T1=$(as bob task create --function "$FA"); as bob task approve "$T1" >/dev/null
T2=$(as bob task create --function "$FA"); as bob task approve "$T2" >/dev/null
mt_stop_server
# tamper with T2's stored list (storage is untrusted): add os
mt_sql \
  "UPDATE tasks SET arguments = replace(arguments, 'mesatee,', 'mesatee,os,') WHERE task_id = '$T2'"
# (and with --worker-start spawn: each python task its own interpreter, hence
# its own hash seed; docs/python-functions.md "Determinism and state")
mt_start_server --task-cpu-s 5 --task-wall-s 30 --python-allow shlex --python-deny xgboost \
  --worker-start spawn
as bob task invoke "$T1" >/dev/null; as bob task wait "$T1" --timeout 60 >/dev/null || true
S=$(as bob --output json task show "$T1")
[ "$(jget "$S" .status)" = failed ] || fail "T1 ran under another list: $(jget "$S" .status)"
case "$(jget "$S" .failure_reason)" in *"python allow-list"*"is not the one this task was created and approved with"*) ;;
  *) fail "T1: $(jget "$S" .failure_reason)";; esac
ok "a task approved under another list fails before it runs: $(jget "$S" .failure_reason)"
out=$(as bob task invoke "$T2" 2>&1; as bob task wait "$T2" --timeout 60 2>&1; as bob --output json task show "$T2" 2>&1) || true
case "$out" in *"integrity check failed"*) ;; *) fail "tampered list not detected: $out";; esac
ok "a tampered stored list fails the integrity check"
T=$(as bob task create --function "$FJ"); run "$T" bob
S=$(as bob --output json task show "$T")
[ "$(jget "$S" .result.return_value)" = 1 ] || fail "json after the change: $(jget "$S" .failure_reason)"
ok "a task created under the new list (json allowed again) runs"
printf '%s\n' 'def entrypoint(argv):' '    return hash("mesatee")' > "$MT_WORK/hash.py"
FH=$(as alice function register --name hash --python "$MT_WORK/hash.py")
H=()
for i in 1 2; do
  T=$(as alice task create --function "$FH"); run "$T" alice
  H[$i]=$(jget "$(as alice --output json task show "$T")" .result.return_value)
  [ -n "${H[$i]}" ] && [ "${H[$i]}" != null ] || fail "hash task $i"
done
[ "${H[1]}" != "${H[2]}" ] || fail "two spawned python tasks share a hash seed"
ok "with --worker-start spawn each python task has its own hash seed"
echo "it_python_allow: all checks passed"
