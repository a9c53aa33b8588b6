#!/usr/bin/env bash
# The daemon's configuration and process life (issue 9): the configuration
# file with flags > environment > file and --print-config; a bad file refused
# before anything is touched; the data directory lock; the generated admin
# password in a 0600 file, never on stdout/stderr; JSON logs and the access
# log with X-Request-Id; SIGHUP changing the log level and reporting what
# needs a restart.
source "$(dirname "$0")/lib.sh"
M=$MESATEE_BIN
W=$MT_WORK
unset MESATEE_SERVE_CONFIG MESATEE_LOG MESATEE_LOG_FORMAT

# ---- --print-config: values and their sources ----
cat > "$W/m.conf" <<CONF
# a comment
data-dir = $W/d1
task_wall_s = 60
workers = 2
[serve]
log-format = json
CONF
out=$(MESATEE_WORKERS=3 "$M" serve --config "$W/m.conf" --task-wall-s 70 --print-config)
grep -Eq "^data-dir +=  *$W/d1 +# file $W/m.conf:2" <<<"$out" || fail "data-dir from the file: $out"
grep -Eq "^task-wall-s += 70 +# flag --task-wall-s" <<<"$out" || fail "flag over file: $out"
grep -Eq "^workers += 3 +# env MESATEE_WORKERS" <<<"$out" || fail "env over file: $out"
grep -Eq "^log-format += json +# file $W/m.conf:6" <<<"$out" || fail "[serve] section: $out"
grep -Eq "^listen +127.0.0.1:7443 +# default" <<<"$out" || fail "default: $out"
out2=$(MESATEE_ZYGOTE_MAX_TASKS=7 "$M" serve --config "$W/m.conf" --print-config)
grep -Eq "^zygote-max-tasks += 7 +# env MESATEE_ZYGOTE_MAX_TASKS" <<<"$out2" ||
  fail "zygote-max-tasks from the environment: $out2"
[ ! -e "$W/d1" ] || fail "--print-config touched the data directory"
ok "--print-config shows flag > env > file > default with file:line"
j=$(MESATEE_WORKERS=3 "$M" --output json serve --config "$W/m.conf" --task-wall-s 70 --print-config)
[ "$(jget "$j" '.settings["task-wall-s"].source')" = flag ] || fail "json source: $j"
[ "$(jget "$j" '.settings.workers.origin')" = MESATEE_WORKERS ] || fail "json env: $j"
[ "$(jget "$j" '.settings["data-dir"].origin')" = "$W/m.conf:2" ] || fail "json file: $j"
[ "$(jget "$j" '.settings.listen.value')" = null ] || fail "json default: $j"
[ "$(jget "$j" '.config_file')" = "$W/m.conf" ] || fail "json config_file: $j"
ok "--print-config --output json"
# the global --config before the command names the same file
out=$("$M" --config "$W/m.conf" serve --print-config)
grep -q "# file $W/m.conf:4" <<<"$out" || fail "global --config: $out"
out=$(MESATEE_SERVE_CONFIG=$W/m.conf "$M" serve --print-config)
grep -q "# file $W/m.conf:4" <<<"$out" || fail "MESATEE_SERVE_CONFIG: $out"
ok "--config before the command and MESATEE_SERVE_CONFIG"

# ---- the example configuration: parses as shipped and with every key set ----
EX=$(dirname "$0")/../../packaging/mesatee.conf
out=$("$M" serve --config "$EX" --print-config) || fail "example config: $out"
! grep -q "# file" <<<"$out" || fail "the example sets a key by default: $out"
sed 's/^#\([a-z0-9-]* = \)/\1/' "$EX" > "$W/example-all.conf"
out=$("$M" serve --config "$W/example-all.conf" --print-config) ||
  fail "example config with every key: $out"
j=$("$M" --output json serve --config "$W/example-all.conf" --print-config)
missing=$(jget "$j" '.settings | to_entries[] | select(.value.source != "file") | .key')
[ -z "$missing" ] || fail "keys missing from packaging/mesatee.conf: $missing"
ok "packaging/mesatee.conf: every key documented, valid when uncommented"

# ---- garbage: refused with file and line, nothing touched ----
for bad in "workerz = 3" "workers = 0" "workers = lots" "level = hardware" "log-level = loud" \
  "listen = 7443" "remote-executors = perhaps" "just words" "[client]"$'\n'"x = 1" \
  "data-dir = $W/d2"$'\n'"data-dir = $W/d3"; do
  printf 'data-dir = %s\n\n%s\n' "$W/d2" "$bad" > "$W/bad.conf"
  if out=$("$M" serve --config "$W/bad.conf" --listen 127.0.0.1:0 2>&1); then
    fail "bad config '$bad' accepted"
  fi
  grep -q "$W/bad.conf:[34]: " <<<"$out" || fail "'$bad': no file:line in: $out"
  [ ! -e "$W/d2" ] || fail "'$bad': the data directory was created"
done
ok "a config with one bad key or value refuses to start, naming file:line; nothing touched"
expect_fail "a missing --config file" "cannot read configuration file" \
  "$M" serve --config "$W/none.conf" --print-config
printf 'data-dir = /x\0\n' > "$W/nul.conf"
expect_fail "a NUL byte" "NUL byte" "$M" serve --config "$W/nul.conf" --print-config
expect_fail "garbage in the environment" "MESATEE_TASK_CPU_S must be a number" \
  env MESATEE_TASK_CPU_S=-5 "$M" serve --config "$W/m.conf" --print-config
expect_fail "garbage flag" "--log-format must be one of text, json" \
  "$M" serve --data-dir "$W/d2" --log-format yaml
expect_fail "garbage flag" "--log-level must be one of" \
  "$M" serve --data-dir "$W/d2" --log-level 7
expect_fail "garbage --node-dead-after-ms" "--node-dead-after-ms must be a number from 100" \
  "$M" serve --data-dir "$W/d2" --node-dead-after-ms 5
expect_fail "garbage --audit-spool-max-kib" "--audit-spool-max-kib must be a number from 1" \
  "$M" serve --data-dir "$W/d2" --audit-spool-max-kib lots
expect_fail "garbage --worker-start" "--worker-start must be one of zygote, spawn" \
  "$M" serve --data-dir "$W/d2" --worker-start fork
expect_fail "garbage --keystore-join-timeout-s" "--keystore-join-timeout-s must be a number from 5 to 3600" \
  "$M" serve --data-dir "$W/d2" --keystore-join https://127.0.0.1:1 --keystore-join-timeout-s 4
expect_fail "garbage MESATEE_KEYSTORE_JOIN_TIMEOUT_S" \
  "MESATEE_KEYSTORE_JOIN_TIMEOUT_S must be a number from 5 to 3600" \
  env MESATEE_KEYSTORE_JOIN_TIMEOUT_S=lots "$M" serve --data-dir "$W/d2" \
  --keystore-join https://127.0.0.1:1
expect_fail "garbage MESATEE_WORKER_START" "MESATEE_WORKER_START must be one of zygote, spawn" \
  env MESATEE_WORKER_START=Zygote "$M" serve --data-dir "$W/d2"
expect_fail "garbage executor --worker-start" "--worker-start must be one of zygote, spawn" \
  "$M" executor --scheduler https://127.0.0.1:1 --data-dir "$W/d2" --worker-start ""x
expect_fail "garbage --zygote-max-tasks" "--zygote-max-tasks must be a number from 1 to 1000000" \
  "$M" serve --data-dir "$W/d2" --zygote-max-tasks 0
expect_fail "garbage MESATEE_ZYGOTE_MAX_TASKS" \
  "MESATEE_ZYGOTE_MAX_TASKS must be a number from 1 to 1000000" \
  env MESATEE_ZYGOTE_MAX_TASKS=12x "$M" serve --data-dir "$W/d2"
expect_fail "garbage executor --zygote-max-tasks" \
  "--zygote-max-tasks must be a number from 1 to 1000000" \
  "$M" executor --scheduler https://127.0.0.1:1 --data-dir "$W/d2" --zygote-max-tasks 1000001
[ ! -e "$W/d2" ] || fail "a refused flag created the data directory"

# ---- measure: the same measurement from flags and from the file ----
m1=$("$M" measure --level soft --workers 2 --task-wall-s 60 --fetch-allow 10.0.0.0/8)
printf 'level = soft\nworkers = 2\ntask-wall-s = 60\nfetch-allow = 10.0.0.0/8\ndata-dir = /elsewhere\n' \
  > "$W/meas.conf"
m2=$("$M" measure --config "$W/meas.conf")
[ "$m1" = "$m2" ] || fail "measure from flags ($m1) and file ($m2) differ"
m3=$("$M" measure --config "$W/meas.conf" --workers 3)
[ "$m1" != "$m3" ] || fail "a flag over the file did not change the measurement"
ok "measure: the file's settings measure as the same flags"

# ---- mesatee executor: its keys from the same file's [executor] section ----
cat > "$W/shared.conf" <<CONF
[serve]
listen = 127.0.0.1:0
[executor]
data-dir = $W/ex
level = soft
poll-ms = 100
fetch-allow = 10.0.0.0/8
CONF
out=$(MESATEE_MAX_TASKS=5 "$M" executor --config "$W/shared.conf" --print-config)
grep -Eq "^poll-ms += 100 +# file $W/shared.conf:6" <<<"$out" || fail "executor file: $out"
grep -Eq "^max-tasks += 5 +# env MESATEE_MAX_TASKS" <<<"$out" || fail "executor env: $out"
! grep -q "^listen" <<<"$out" || fail "executor shows serve's keys: $out"
id1=$("$M" executor --config "$W/shared.conf" --print-identity | jq -r .measurement)
id2=$("$M" executor --data-dir "$W/ex" --level soft --poll-ms 100 --fetch-allow 10.0.0.0/8 \
  --print-identity | jq -r .measurement)
[ -n "$id1" ] && [ "$id1" = "$id2" ] || fail "executor measurement file ($id1) vs flags ($id2)"
id3=$("$M" executor --config "$W/shared.conf" --poll-ms 200 --print-identity | jq -r .measurement)
[ "$id1" != "$id3" ] || fail "executor: a flag over the file did not change the measurement"
printf '[executor]\ndata-dir = %s\npoll-ms = 5\n' "$W/ex2" > "$W/exbad.conf"
expect_fail "executor: a bad value in [executor]" "exbad.conf:3: poll-ms must be a number from 10" \
  "$M" executor --config "$W/exbad.conf" --print-identity
printf 'data-dir = %s\nlisten = 127.0.0.1:0\n' "$W/ex2" > "$W/exbad.conf"
expect_fail "executor: serve's key outside [serve]" "exbad.conf:2: unknown key 'listen'" \
  "$M" executor --config "$W/exbad.conf" --print-identity
[ ! -e "$W/ex2" ] || fail "a refused executor config created its data directory"
ok "executor: file ([executor]) > defaults, env and flags over it, same measurement as flags"

# ---- first start: the generated admin password in a 0600 file ----
D=$W/d4
printf 'data-dir = %s\nlisten = 127.0.0.1:0\nlog-format = json\n' "$D" > "$W/run.conf"
"$M" serve --config "$W/run.conf" >"$W/s4.out" 2>"$W/s4.err" &
P4=$!
MT_PID=$P4
for _ in $(seq 1200); do [ -s "$D/server.url" ] && break; sleep 0.05; done
[ -s "$D/server.url" ] || { cat "$W/s4.err"; fail "server with the config file did not start"; }
[ -f "$D/admin-password" ] || fail "no $D/admin-password"
[ "$(stat -c %a "$D/admin-password")" = 600 ] || fail "admin-password mode $(stat -c %a "$D/admin-password")"
PW=$(cat "$D/admin-password")
[ ${#PW} -eq 20 ] || fail "password length ${#PW}"
! grep -qF "$PW" "$W/s4.out" "$W/s4.err" || fail "the password is on stdout/stderr"
[ ! -s "$W/s4.out" ] || fail "serve wrote to stdout: $(cat "$W/s4.out")"
grep -q "admin-password" "$W/s4.err" || fail "the log does not say where the password is"
ok "generated admin password: $D/admin-password mode 0600, not on stdout/stderr, the log says where"
export MESATEE_SERVER; MESATEE_SERVER=$(cat "$D/server.url")
export MESATEE_CA=$D/tls/server-cert.pem
cp "$D/admin-password" "$W/admin.pw"
mt_login admin
ok "log in with the generated password"

# ---- JSON logs, access log with X-Request-Id ----
hdr=$(curl -sS -D - -o /dev/null --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz")
rid=$(printf '%s' "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')
[[ "$rid" =~ ^[0-9a-f]{16}$ ]] || fail "X-Request-Id '$rid' in: $hdr"
as admin user list >/dev/null
sleep 0.2
while IFS= read -r line; do
  jq -e . >/dev/null 2>&1 <<<"$line" || fail "not a JSON log line: $line"
done < "$W/s4.err"
acc=$(jq -c "select(.type==\"access\" and .request_id==\"$rid\")" "$W/s4.err")
[ -n "$acc" ] || fail "no access line for $rid: $(tail -5 "$W/s4.err")"
[ "$(jget "$acc" .route)" = "GET /healthz" ] && [ "$(jget "$acc" .status)" = 200 ] &&
  [ "$(jget "$acc" .method)" = GET ] && [ "$(jget "$acc" .user)" = null ] ||
  fail "access line: $acc"
jget "$acc" .duration_ms | grep -Eq '^[0-9]+(\.[0-9]+)?$' || fail "duration: $acc"
acc=$(jq -c 'select(.type=="access" and .user=="admin")' "$W/s4.err" | tail -1)
[ "$(jget "$acc" .route)" = "GET /v1/users" ] || fail "authenticated access line: $acc"
ok "JSON log lines; access line per request with route, status, duration, user, request id"

# ---- the lock: a second daemon on the same directory exits before touching it ----
cert_before=$(sha256sum "$D/tls/server-cert.pem")
if out=$("$M" serve --config "$W/run.conf" 2>&1); then fail "second serve started"; fi
grep -q "in use by another mesatee process (PID $P4 holds $D/lock)" <<<"$out" ||
  fail "second serve: $out"
[ "$(sha256sum "$D/tls/server-cert.pem")" = "$cert_before" ] || fail "the certificate was rewritten"
[ "$(cat "$D/lock")" = "$P4" ] || fail "lock file holds $(cat "$D/lock")"
ok "a second serve on the same data directory exits naming PID $P4; certificate untouched"
expect_fail "an executor on the serving directory" "in use by another mesatee process (PID $P4" \
  "$M" executor --data-dir "$D" --print-identity
[ "$(sha256sum "$D/tls/server-cert.pem")" = "$cert_before" ] || fail "the certificate was rewritten"


# ---- SIGHUP: log level and access log change, the rest needs a restart ----
printf 'data-dir = %s\nlisten = 127.0.0.1:0\nlog-format = json\nlog-level = warn\nworkers = 7\n' \
  "$D" > "$W/run.conf"
kill -HUP "$P4"
for _ in $(seq 1200); do grep -q "log-level is now warn" "$W/s4.err" && break; sleep 0.05; done
grep -q "log-level is now warn" "$W/s4.err" || fail "SIGHUP: no log-level change: $(tail -3 "$W/s4.err")"
grep -q "workers changed (now 7) but cannot change while running" "$W/s4.err" ||
  fail "SIGHUP: workers not reported as needing a restart"
kill -0 "$P4" || fail "SIGHUP stopped the server"
n1=$(grep -c '"type":"access"' "$W/s4.err")
curl -sS -o /dev/null --cacert "$MESATEE_CA" "$MESATEE_SERVER/healthz"
sleep 0.2
n2=$(grep -c '"type":"access"' "$W/s4.err")
[ "$n1" = "$n2" ] || fail "access lines still logged at level warn ($n1 -> $n2)"
ok "SIGHUP: log level changed at runtime (access lines stop at warn); workers needs a restart"
printf 'data-dir = %s\nlisten = 127.0.0.1:0\nlog-level = warn\nworkers = 7\naccess-log = %s\n' \
  "$D" "$W/access.log" > "$W/run.conf"
kill -HUP "$P4"
for _ in $(seq 1200); do grep -q "access-log is now" "$W/s4.err" && break; sleep 0.05; done
as admin user list >/dev/null
sleep 0.2
grep -q 'access request_id=[0-9a-f]\{16\} method=GET route="GET /v1/users" status=200 duration_ms=[0-9.]* user=admin' \
  "$W/access.log" || fail "text access log file: $(cat "$W/access.log" 2>&1)"
ok "SIGHUP: access log to a file, text format"
# a reload keeps open connections: one keep-alive connection across a SIGHUP
python3 - "$MESATEE_SERVER" "$MESATEE_CA" "$P4" > "$W/keepalive.out" 2>&1 <<'PY' ||
import http.client, os, signal, ssl, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
c.request("GET", "/healthz"); r = c.getresponse(); r.read(); assert r.status == 200
sock = c.sock
os.kill(int(sys.argv[3]), signal.SIGHUP)
time.sleep(0.5)
c.request("GET", "/healthz"); r = c.getresponse(); r.read(); assert r.status == 200
assert c.sock is sock, "the connection was replaced"
print("same connection")
PY
  fail "keep-alive across SIGHUP: $(cat "$W/keepalive.out")"
grep -q "same connection" "$W/keepalive.out" || fail "keep-alive: $(cat "$W/keepalive.out")"
ok "SIGHUP keeps open connections (one keep-alive connection answered before and after)"

# limits at level none: applied at once (a login after it gets the new token lifetime)
printf 'data-dir = %s\nlisten = 127.0.0.1:0\nlog-level = warn\nworkers = 7\naccess-log = %s\ntoken-ttl-s = 120\n' \
  "$D" "$W/access.log" > "$W/run.conf"
kill -HUP "$P4"
for _ in $(seq 1200); do grep -q "token-ttl-s is now 120" "$W/s4.err" && break; sleep 0.05; done
grep -q "token-ttl-s is now 120" "$W/s4.err" || fail "SIGHUP: token-ttl-s not applied: $(tail -3 "$W/s4.err")"
resp=$(curl -sS --cacert "$MESATEE_CA" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PW\"}" "$MESATEE_SERVER/v1/auth/login")
left=$(( $(date -d "$(jget "$resp" .expires_at)" +%s) - $(date +%s) ))
[ "$left" -le 120 ] && [ "$left" -gt 0 ] || fail "token lifetime after reload: $left s ($resp)"
ok "SIGHUP at level none: token-ttl-s applied to the next login (${left}s left)"
printf 'data-dir = %s\nbogus = 1\n' "$D" > "$W/run.conf"
kill -HUP "$P4"
for _ in $(seq 1200); do grep -q "configuration not reloaded" "$W/s4.err" && break; sleep 0.05; done
grep -q "configuration not reloaded.*run.conf:2: unknown key 'bogus'" "$W/s4.err" ||
  fail "SIGHUP with a bad file: $(tail -2 "$W/s4.err")"
as admin user list >/dev/null || fail "server unusable after a bad reload"
ok "SIGHUP with a bad file: refused with file:line, the server runs on"

kill -TERM "$P4"; wait "$P4" || true; MT_PID=
# the lock goes with the process: a new server starts on the directory
printf 'data-dir = %s\nlisten = 127.0.0.1:0\n' "$D" > "$W/run.conf"
rm -f "$D/server.url"
"$M" serve --config "$W/run.conf" >"$W/s5.out" 2>"$W/s5.err" &
MT_PID=$!
for _ in $(seq 1200); do [ -s "$D/server.url" ] && break; sleep 0.05; done
[ -s "$D/server.url" ] || fail "restart after the first server stopped: $(cat "$W/s5.err")"
ok "after the holder exits, the directory can be used again"
kill -TERM "$MT_PID"; wait "$MT_PID" || true; MT_PID=

# at an attested level the limits are measured: a reload reports, changes nothing
D6=$W/d6
printf 'data-dir = %s\nlisten = 127.0.0.1:0\nlevel = soft\n' "$D6" > "$W/soft.conf"
"$M" serve --config "$W/soft.conf" >"$W/s6.out" 2>"$W/s6.err" &
MT_PID=$!
for _ in $(seq 1200); do [ -s "$D6/server.url" ] && break; sleep 0.05; done
[ -s "$D6/server.url" ] || fail "soft server: $(cat "$W/s6.err")"
printf 'data-dir = %s\nlisten = 127.0.0.1:0\nlevel = soft\ntask-wall-s = 30\n' "$D6" > "$W/soft.conf"
kill -HUP "$MT_PID"
for _ in $(seq 1200); do grep -q "task-wall-s changed" "$W/s6.err" && break; sleep 0.05; done
grep -q "task-wall-s changed but the limits are measured at this level" "$W/s6.err" ||
  fail "soft SIGHUP: $(tail -3 "$W/s6.err")"
ok "SIGHUP at level soft: limits are measured, reported as needing a restart"
