#!/usr/bin/env bash
# The executor API (src/gateway/executor_api.c) over its real, mutually
# attested TLS, sent what no well-behaved executor sends: garbage bodies on
# every route, unknown routes and methods, lying or missing Content-Length,
# renewals and reports for tasks the sender does not hold, health under
# another executor's name. Each gets a 4xx answer whose message carries no
# byte of the request; the daemon keeps serving (its REST API and the
# executor API answer afterwards). The client is tests/integration/exec_post.c
# (a soft-level identity of its own, admitted by the executor policy).
source "$(dirname "$0")/lib.sh"
: "${MT_EXEC_POST:?MT_EXEC_POST must point at the exec_post test client}"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
trap mt_cleanup EXIT
P=$MT_EXEC_POST
MARK=zq8MARKERq8z   # a byte string that must never come back

id=$("$P" "$MT_WORK/c1" id) || fail "exec_post id"
mt_executor_policy "$MT_WORK/executor-policy.json" 86400 "$id"
mt_start_server --level soft --remote-executors --executor-policy "$MT_WORK/executor-policy.json" \
  --executor-listen 127.0.0.1:0
EURL=$(cat "$MT_DATA/executor.url"); EHP=${EURL#https://}
mt_gateway_policy "$MT_WORK/gw-policy.json"

# post ROUTE BODY-TEXT [DATA_DIR]: prints "HTTP nnn" then the body
post() { printf '%s' "$2" >"$MT_WORK/body"; "$P" "${3:-$MT_WORK/c1}" post "$MT_WORK/gw-policy.json" "$EHP" "$1" "$MT_WORK/body" 2>>"$MT_WORK/client.log"; }
# raw FILE-TEXT: the bytes as they are (head included)
raw() { printf "$1" >"$MT_WORK/raw"; "$P" "$MT_WORK/c1" raw "$MT_WORK/gw-policy.json" "$EHP" "$MT_WORK/raw" 2>>"$MT_WORK/client.log"; }
# want CODE-PATTERN DESC ANSWER: the status matches, the answer has no marker
want() {
  local st; st=$(head -n1 <<<"$3")
  [[ "$st" =~ ^HTTP\ $1$ ]] || fail "$2: want HTTP $1, got: $3"
  grep -q "$MARK" <<<"$3" && fail "$2: the answer echoes request bytes: $3"
  ok "$2 -> ${st#HTTP }"
}

ID0=0123456789abcdef0123456789abcdef   # a well-formed id nobody holds
SEC=$(printf '0%.0s' $(seq 64))
for r in claim health renew report; do
  want '4[01][0-9]' "$r: not JSON" "$(post /v1/executor/$r "$MARK{{")"
  want '4[01][0-9]' "$r: a JSON array" "$(post /v1/executor/$r "[\"$MARK\"]")"
  want '4[01][0-9]' "$r: nested 10000 deep" "$(post /v1/executor/$r "$(printf '[%.0s' $(seq 10000))")"
  want '4[01][0-9]' "$r: NUL inside" "$(printf '{"executor":"a\0%s"}' "$MARK" >"$MT_WORK/body"; "$P" "$MT_WORK/c1" post "$MT_WORK/gw-policy.json" "$EHP" /v1/executor/$r "$MT_WORK/body" 2>>"$MT_WORK/client.log")"
done
want '400' "health: empty body" "$(post /v1/executor/health '')"
want '400' "health: name with a space" "$(post /v1/executor/health "{\"executor\":\"a $MARK\",\"slots\":1,\"busy\":0,\"tasks_run\":0,\"tasks_failed\":0,\"last_error\":\"\"}")"
want '400' "health: name of 65 bytes" "$(post /v1/executor/health "{\"executor\":\"$(printf 'a%.0s' $(seq 65))\",\"slots\":1,\"busy\":0,\"tasks_run\":0,\"tasks_failed\":0,\"last_error\":\"\"}")"
want '400' "health: busy above slots" "$(post /v1/executor/health '{"executor":"e1","slots":1,"busy":2,"tasks_run":0,"tasks_failed":0,"last_error":""}')"
want '400' "health: negative slots" "$(post /v1/executor/health '{"executor":"e1","slots":-1,"busy":0,"tasks_run":0,"tasks_failed":0,"last_error":""}')"
want '400' "renew: fence a string" "$(post /v1/executor/renew "{\"task_id\":\"$ID0\",\"fence\":\"$MARK\",\"secret\":\"$SEC\"}")"
want '400' "renew: task id not an id" "$(post /v1/executor/renew "{\"task_id\":\"$MARK\",\"fence\":1,\"secret\":\"$SEC\"}")"
want '40[49]' "renew: a task nobody holds" "$(post /v1/executor/renew "{\"task_id\":\"$ID0\",\"fence\":1,\"secret\":\"$SEC\"}")"
want '400' "report: no task id" "$(post /v1/executor/report "{\"ok\":true,\"log\":\"$MARK\"}")"
want '40[49]' "report: a task nobody holds" "$(post /v1/executor/report "{\"task_id\":\"$ID0\",\"fence\":1,\"lease_secret\":\"$SEC\",\"ok\":true,\"canceled\":false,\"return_value\":\"$MARK\",\"failure_reason\":\"\",\"log\":\"\",\"metering\":{\"cpu_ms\":0,\"peak_rss_kb\":0,\"wall_ms\":0,\"bytes_in\":0,\"bytes_out\":0,\"fuel_used\":0},\"outputs\":{}}")"
Q="task=$ID0&fence=1&secret=$SEC"
want '400' "input transfer: not a query" "$(post "/v1/executor/input?$MARK" '')"
want '400' "input transfer: fields out of order" "$(post "/v1/executor/input?fence=1&task=$ID0&secret=$SEC&slot=" '')"
want '400' "input transfer: slot not hex" "$(post "/v1/executor/input?$Q&slot=$MARK" '')"
want '400' "input transfer: slot '/'" "$(post "/v1/executor/input?$Q&slot=2f" '')"
want '400' "input transfer: with a body" "$(post "/v1/executor/input?$Q&slot=" "$MARK")"
want '409' "input transfer: a task nobody holds" "$(post "/v1/executor/input?$Q&slot=61" '')"
want '409' "output transfer: a task nobody holds" "$(post "/v1/executor/output?$Q&slot=61" '')"
want '400' "output transfer: no slot" "$(post "/v1/executor/output?$Q" '')"
want '404' "unknown route" "$(post /v1/executor/$MARK '{}')"
want '404' "GET on a route" "$(raw "GET /v1/executor/claim HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")"
want '4[01][0-9]' "Content-Length not a number" "$(raw "POST /v1/executor/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1$MARK\r\n\r\n{}")"
want '4[01][0-9]' "two Content-Length" "$(raw "POST /v1/executor/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")"
want '4[01][0-9]' "Content-Length above the report limit" "$(raw "POST /v1/executor/report HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{}")"
want '4[01][0-9]' "Transfer-Encoding chunked" "$(raw "POST /v1/executor/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")"
want '204' "claim: an empty queue" "$(post /v1/executor/claim '')"

# health under one name from two executors: two rows, told apart by peer
H='{"executor":"twin","slots":3,"busy":1,"tasks_run":7,"tasks_failed":0,"last_error":""}'
want '200' "health from executor 1" "$(post /v1/executor/health "$H")"
want '200' "health from executor 2, same name" "$(post /v1/executor/health "${H/\"tasks_run\":7/\"tasks_run\":9}" "$MT_WORK/c1")"
m=$(curl -s --cacert "$MT_DATA/tls/server-cert.pem" "$MESATEE_SERVER/metrics")
rows=$(grep -Ec '^mesatee_executor_tasks_run_total\{executor="twin",peer="[0-9a-f]{16}"\} (7|9)$' <<<"$m")
[ "$rows" = 2 ] || fail "want two rows for the name twin, got: $(grep twin <<<"$m")"
ok "one name from two executor keys: two rows, neither overwritten"
grep -q "$MARK" <<<"$m" && fail "/metrics shows request bytes"

# still serving
curl -sf --cacert "$MT_DATA/tls/server-cert.pem" "$MESATEE_SERVER/metrics" >/dev/null || fail "REST API gone"
want '204' "the executor API still answers" "$(post /v1/executor/claim '')"
kill -0 "$MT_PID" || fail "the daemon died"
ok "the daemon kept serving"
