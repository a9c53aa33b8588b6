#!/usr/bin/env bash
# Certificate renewal on the executor API (issue 14): both ends of the
# mutually attested executor channel renew their TLS key and certificate
# with fresh evidence (`serve --cert-renew-s`, `executor --cert-renew-s`), so
# policies with a short max_evidence_age_s (5 s here) keep admitting them.
# 1. server and executor renewing every second: after 6.5 s (older than the
#    policies allow for their first certificates) a task still runs remotely.
# 2. an executor that never renews (--cert-renew-s 0) is refused by the
#    scheduler once its evidence is older than 5 s: the task stays queued.
source "$(dirname "$0")/lib.sh"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
B=$MESATEE_BIN
EXP=()
cleanup() { for p in "${EXP[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; mt_cleanup; }
trap cleanup EXIT
wait_for() { # wait_for WHAT CMD...: up to 60 s
  local what=$1; shift
  for _ in $(seq 1200); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}

ids=()
for n in a b; do
  ids+=("$("$B" executor --data-dir "$MT_WORK/ex-$n" --level soft --worker "$MESATEE_WORKER" \
    --poll-ms 100 --print-identity)") || fail "executor --print-identity"
done
mt_executor_policy "$MT_WORK/executor-policy.json" 5 "${ids[@]}"
mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen 127.0.0.1:0 --cert-renew-s 1
EURL=$(cat "$MT_DATA/executor.url")
mt_gateway_policy "$MT_WORK/scheduler-policy.json" 5
# the REST certificate renews every second too: clients verify the server by
# policy, not by pinning the certificate file (which changes under them)
unset MESATEE_CA
export MESATEE_POLICY=$MT_WORK/scheduler-policy.json
executor() { # executor N LOG [args]
  local n=$1 log=$2; shift 2
  "$B" --policy "$MT_WORK/scheduler-policy.json" executor --scheduler "$EURL" \
    --data-dir "$MT_WORK/ex-$n" --level soft --worker "$MESATEE_WORKER" --poll-ms 100 \
    --worker-start spawn --name "ex$n" "$@" >"$MT_WORK/$log" 2>&1 &
  EXP+=($!)
}
expect_fail "executor --cert-renew-s -1" "cert-renew-s" "$B" executor --data-dir "$MT_WORK/x" \
  --scheduler https://127.0.0.1:1 --policy /dev/null --cert-renew-s -1
expect_fail "executor --cert-renew-s x" "cert-renew-s" "$B" executor --data-dir "$MT_WORK/x" \
  --scheduler https://127.0.0.1:1 --policy /dev/null --cert-renew-s x
expect_fail "executor --cert-renew-s above a year" "cert-renew-s" "$B" executor \
  --data-dir "$MT_WORK/x" --scheduler https://127.0.0.1:1 --policy /dev/null \
  --cert-renew-s 31536001

mt_login admin
mt_add_user alice
FN=$(as alice function register --name e --builtin echo --arg "message=x:overridable")
st() { as alice --output json task show "$1" | jq -r .status; }
echo_task() {
  local t; t=$(as alice task create --function "$FN" --arg "message=$1")
  as alice task approve "$t" >/dev/null 2>&1 || true
  as alice task invoke "$t" >/dev/null
  printf '%s' "$t"
}

# 1. both ends renew every second
executor a exa.log --cert-renew-s 1
sleep 6.5
T1=$(echo_task renewed)
as alice task wait "$T1" --timeout 60 >/dev/null || fail "task after 6.5 s: $(st "$T1"); $(tail -5 "$MT_WORK/exa.log")"
grep -q "executor API: TLS key and certificate renewed" "$MT_WORK/server.log" ||
  fail "the executor API did not renew its certificate"
grep -q "TLS key and certificate renewed" "$MT_WORK/exa.log" || fail "the executor did not renew"
ok "server and executor renewing every second: a task runs after 6.5 s with 5 s evidence policies"
kill -TERM "${EXP[0]}"; wait "${EXP[0]}" 2>/dev/null || true

# 2. an executor that never renews is refused once its evidence is 5 s old
refused() { grep -c "peer refused in the TLS handshake" "$MT_WORK/server.log" || true; }
nb=$(refused)
executor b exb.log --cert-renew-s 0
wait_for "executor b's start" grep -q "certificate never renewed" "$MT_WORK/exb.log"
# The policy counts ages in whole seconds, so the first refusal comes 5-7 s
# after the evidence: wait for it (ages only grow, every later handshake is
# refused too), then queue the task and wait for two more refused claims.
wait_for "the first refused handshake" bash -c "[ \$(grep -c 'peer refused in the TLS handshake' '$MT_WORK/server.log') -gt $nb ]"
T2=$(echo_task stale)
n0=$(refused)
wait_for "two refused claims after the task" bash -c "[ \$(grep -c 'peer refused in the TLS handshake' '$MT_WORK/server.log') -gt $((n0 + 1)) ]"
[ "$(st "$T2")" = queued ] || [ "$(st "$T2")" = staged ] || fail "task ran on a stale executor: $(st "$T2")"
ok "an executor that never renews is refused after max_evidence_age_s: $(grep 'peer refused' "$MT_WORK/server.log" | tail -1 | sed 's/.*handshake: //')"
