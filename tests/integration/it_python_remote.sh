#!/usr/bin/env bash
# Python functions on a separate `mesatee executor` (issue 11; docs/design.md
# "Separate roles"): with --remote-executors the daemon runs nothing itself;
# an attested executor claims a two-party numpy task and a function that
# imports a module the operator denied, runs both in its own sandboxed worker
# and reports: the first finishes with the right coefficients, the second
# fails with the allow-list's message (the approved list travels in the job).
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy is not installed"; exit 77; }
B=$MESATEE_BIN
EX=$MT_WORK/executor
EXD=$(cd "$(dirname "$0")/../../examples/python" && pwd)
id=$("$B" executor --data-dir "$EX" --level soft --print-identity) || fail "executor --print-identity"
cat >"$MT_WORK/executor-policy.json" <<EOP
{"mesatee_policy": 1, "role": "executor", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"executor": {"measurement": ["$(jget "$id" .measurement)"]}},
 "soft_platform_keys": ["$(jget "$id" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen 127.0.0.1:0 --python-deny json
EURL=$(cat "$MT_DATA/executor.url")
mt_gateway_policy "$MT_WORK/scheduler-policy.json"
mt_login admin
for u in alice bob; do mt_add_user "$u"; done
put() { # put USER NAME CONTENT
  printf '%s' "$3" > "$MT_WORK/$2.txt"
  as "$1" file encrypt --in "$MT_WORK/$2.txt" --out "$MT_WORK/$2.enc" --key-out "$MT_WORK/$2.key" >/dev/null
  as "$1" file register "$(as "$1" file upload "$MT_WORK/$2.enc")" --key "$MT_WORK/$2.key"
}
FN=$(as alice function register --name linreg --python "$EXD/linreg.py" --input-slot a --input-slot b --public)
A=$(put alice la "$(printf '0,0,1\n1,0,3\n0,1,-2\n2,1,2\n')")
Bf=$(put bob lb "$(printf '1,1,0\n3,2,1\n5,1,8\n')")
T=$(as alice task create --function "$FN" --input a=alice --input b=bob)
as alice task assign "$T" --input "a=$A" >/dev/null; as bob task assign "$T" --input "b=$Bf" >/dev/null
as alice task approve "$T" >/dev/null; as bob task approve "$T" >/dev/null
as alice task invoke "$T" >/dev/null
printf '%s\n' 'def entrypoint(argv):' '    import json' '    return json.dumps(1)' > "$MT_WORK/json.py"
FJ=$(as alice function register --name js --python "$MT_WORK/json.py")
TJ=$(as alice task create --function "$FJ"); as alice task approve "$TJ" >/dev/null
as alice task invoke "$TJ" >/dev/null
[ "$(as alice --output json task show "$T" | jq -r .status)" = staged ] || fail "the daemon ran the task itself"
timeout 60 "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
  --data-dir "$EX" --level soft --max-tasks 2 >"$MT_WORK/executor.log" 2>&1 ||
  fail "executor failed: $(tail -n 10 "$MT_WORK/executor.log")"
as alice task wait "$T" --timeout 60 >/dev/null || true
S=$(as bob --output json task show "$T")
[ "$(jget "$S" .result.return_value)" = "1.000 2.000 -3.000" ] \
  || fail "remote linreg: $(jget "$S" .status) $(jget "$S" .failure_reason) $(jget "$S" .log)"
[ "$(jget "$S" .metering.cpu_ms)" -gt 0 ] || fail "remote python task not metered: $(jget "$S" .metering)"
ok "a remote executor ran the two-party numpy task: $(jget "$S" .result.return_value) (cpu $(jget "$S" .metering.cpu_ms) ms)"
as alice task wait "$TJ" --timeout 60 >/dev/null 2>&1 || true
S=$(as alice --output json task show "$TJ")
case "$(jget "$S" .status) $(jget "$S" .log)" in failed*"module json is not allowed in mesatee functions"*) ;;
  *) fail "remote denied import: $(jget "$S" .status) $(jget "$S" .log)";; esac
ok "the remote executor's worker enforces the approved allow-list (json denied)"
echo "it_python_remote: all checks passed"
