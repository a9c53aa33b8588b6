#!/usr/bin/env bash
# /metrics (issue 9): a live scrape passes `promtool check metrics` (Debian's
# prometheus package) with no lint problem; it carries the process_* metrics
# and mesatee_build_info; `serve --metrics-token-file FILE` makes it answer
# only "Authorization: Bearer <token>" (401 otherwise) and refuses bad token
# files at start; without the option it stays open as before.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if ! command -v promtool >/dev/null; then
  echo "SKIP: promtool not installed (Debian package prometheus; scripts/install-deps)"
  exit 77
fi

scrape() { curl -s --cacert "$MESATEE_CA" -o "$MT_WORK/m.txt" -w '%{http_code}' "$@" "$MESATEE_SERVER/metrics"; }

# --- garbage token files: refused before anything starts -----------------
mkdir -p "$MT_DATA"
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/admin.pw"
printf 'short\n' > "$MT_WORK/tok-short"
printf 'has a space in it, long enough\n' > "$MT_WORK/tok-space"
: > "$MT_WORK/tok-empty"
for t in tok-short tok-space tok-empty tok-missing; do
  expect_fail "token file $t refused" "--metrics-token-file $MT_WORK/$t" \
    "$MESATEE_BIN" serve --data-dir "$MT_WORK/never" --listen 127.0.0.1:0 \
    --admin-password-file "$MT_WORK/admin.pw" --metrics-token-file "$MT_WORK/$t"
  [ ! -e "$MT_WORK/never/server.url" ] || fail "$t: the server started"
done
out=$("$MESATEE_BIN" serve --data-dir "$MT_WORK/never" --listen 127.0.0.1:0 \
  --admin-password-file "$MT_WORK/admin.pw" --metrics-token-file "$MT_WORK/tok-space" 2>&1 || true)
case "$out" in *"has a space"*) fail "the error repeats the token file's bytes: $out" ;; esac
ok "the error names the file, not its bytes"

# --- without a token: open, as before ------------------------------------
mt_start_server
mt_login admin
as admin user list >/dev/null
code=$(scrape)
[ "$code" = 200 ] || fail "/metrics without a token option answered $code"
if ! promtool check metrics < "$MT_WORK/m.txt" > "$MT_WORK/promtool.out" 2>&1; then
  cat "$MT_WORK/promtool.out" >&2; fail "promtool check metrics found problems (open /metrics)"
fi
ok "promtool check metrics: no problems"
for m in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
         process_open_fds process_max_fds process_start_time_seconds mesatee_task_cpu_seconds_total \
         mesatee_http_requests_total; do
  grep -q "^$m[ {]" "$MT_WORK/m.txt" || fail "/metrics lacks $m"
  grep -q "^# TYPE $m " "$MT_WORK/m.txt" || fail "/metrics lacks the TYPE of $m"
done
grep -qE '^mesatee_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+",level="none"\} 1$' "$MT_WORK/m.txt" \
  || fail "mesatee_build_info line: $(grep build_info "$MT_WORK/m.txt")"
rss=$(awk '$1 == "process_resident_memory_bytes" {print $2}' "$MT_WORK/m.txt")
[ "${rss%.*}" -gt 1000000 ] || fail "implausible resident memory $rss"
start=$(awk '$1 == "process_start_time_seconds" {print $2}' "$MT_WORK/m.txt")
now=$(date +%s)
[ "${start%.*}" -le "$now" ] && [ "${start%.*}" -gt $((now - 3600)) ] || fail "start time $start vs now $now"
ok "process_* and mesatee_build_info present and plausible"
mt_stop_server

# --- with a token ---------------------------------------------------------
head -c 32 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/metrics.token"
mt_start_server --metrics-token-file "$MT_WORK/metrics.token"
tok=$(cat "$MT_WORK/metrics.token")
code=$(scrape)
[ "$code" = 401 ] || fail "/metrics without a token answered $code"
grep -q '"unauthenticated"' "$MT_WORK/m.txt" || fail "401 body: $(cat "$MT_WORK/m.txt")"
hdr=$(curl -s -D - -o /dev/null --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics")
echo "$hdr" | grep -qi '^WWW-Authenticate: Bearer' || fail "401 without WWW-Authenticate: $hdr"
code=$(scrape -H "Authorization: Bearer ${tok}x")
[ "$code" = 401 ] || fail "/metrics with a wrong token answered $code"
code=$(scrape -H "Authorization: Bearer ")
[ "$code" = 401 ] || fail "/metrics with an empty token answered $code"
code=$(scrape -H "Authorization: Basic $(printf 'a:%s' "$tok" | base64 -w0)")
[ "$code" = 401 ] || fail "/metrics with Basic auth answered $code"
mt_login admin
code=$(scrape -H "Authorization: Bearer $(cat "$MT_WORK/admin.token" 2>/dev/null || echo none)")
[ "$code" = 401 ] || fail "/metrics with a user's token answered $code"
ok "401 without, with a wrong, an empty, a Basic and a user token"
code=$(scrape -H "Authorization: Bearer $tok")
[ "$code" = 200 ] || fail "/metrics with the token answered $code"
promtool check metrics < "$MT_WORK/m.txt" || fail "promtool check metrics found problems (token)"
grep -q 'mesatee_http_requests_total{route="GET /metrics",status="401"}' "$MT_WORK/m.txt" \
  || fail "refused scrapes are not counted"
ok "/metrics with the token: 200 and promtool-clean"
# the other probes stay open
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz")
[ "$code" = 200 ] || fail "/healthz answered $code with a metrics token set"
ok "/healthz stays open"
