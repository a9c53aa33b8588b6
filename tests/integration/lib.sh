# Shared helpers for the integration tests: a real `mesatee serve` on loopback
# (port chosen by the kernel) in a temporary data dir, driven through the CLI.
# Usage: source lib.sh; mt_start_server; ... ; (cleanup runs on exit)
set -euo pipefail
: "${MESATEE_BIN:?MESATEE_BIN must point at the mesatee binary}"
MT_WORK=$(mktemp -d "${TMPDIR:-/tmp}/mesatee-it.XXXXXX")
MT_DATA=$MT_WORK/server
MT_PID=
MT_SW_PID=
export MESATEE_CONFIG=$MT_WORK/no-config   # never read the user's config
unset MESATEE_SERVER MESATEE_CA MESATEE_TOKEN_FILE MESATEE_OUTPUT MESATEE_STORE

mt_cleanup() {
  [ -z "$MT_PEER" ] || kill "$MT_PEER" 2>/dev/null || true
  mt_stop_swtpm
  if [ -n "$MT_PID" ] && kill -0 "$MT_PID" 2>/dev/null; then
    kill -TERM "$MT_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$MT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$MT_PID" 2>/dev/null || true
  fi
  if [ -n "${MT_PG_TEST_DIR:-}" ]; then
    bash "$(dirname "${BASH_SOURCE[0]}")/../pg/pg-temp.sh" stop "$MT_PG_TEST_DIR" >/dev/null 2>&1 || true
  fi
  if [ -z "${MT_KEEP:-}" ]; then rm -rf "$MT_WORK"; else echo "kept $MT_WORK"; fi
}
trap mt_cleanup EXIT
# a test killed by ctest's timeout (SIGTERM) or ^C still runs its EXIT trap
# (stops the server and the throw-away PostgreSQL of MT_TEST_PG)
trap 'exit 143' TERM
trap 'exit 130' INT

# mt_silent_peer: a TCP listener on loopback that accepts and never answers
# (a task fetching an https:// input from it stays running); its port goes to
# $MT_WORK/peer.port, its PID to MT_PEER (killed at exit).
MT_PEER=
mt_silent_peer() {
  python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' > "$MT_WORK/peer.port" &
  MT_PEER=$!
  for _ in $(seq 50); do [ -s "$MT_WORK/peer.port" ] && break; sleep 0.1; done
}

fail() { echo "FAIL: $*" >&2; [ -f "$MT_WORK/server.log" ] && tail -n 30 "$MT_WORK/server.log" >&2; exit 1; }
ok() { echo "ok - $*"; }

# MT_TEST_PG=1: every server of the test keeps its store in a throw-away
# PostgreSQL cluster of its own (tests/pg/pg-temp.sh), started at the first
# mt_start_server (a new one when the test moved MT_DATA to a new data
# directory) and stopped by mt_cleanup: the integration suite on the
# PostgreSQL backend (docs/cluster.md). A test that passes --store (or sets
# MESATEE_STORE) keeps its own store.
MT_PG_TEST_DIR=
mt_pg_store_args() {
  [ "${MT_TEST_PG:-}" = 1 ] || return 0
  case " $* " in *" --store "*) return 0 ;; esac
  # ... or names it in MESATEE_STORE (not the one exported here)
  [ -n "${MESATEE_STORE:-}" ] && [ "$MESATEE_STORE" != "${MT_PG_TEST_URL:-}" ] && return 0
  # a test that moves to a new data directory (or removed it) expects a new store
  if [ -n "$MT_PG_TEST_DIR" ] && { [ "${MT_PG_TEST_FOR:-}" != "$MT_DATA" ] || [ ! -e "$MT_DATA" ]; }; then
    bash "$(dirname "${BASH_SOURCE[0]}")/../pg/pg-temp.sh" stop "$MT_PG_TEST_DIR" >/dev/null 2>&1 || true
    MT_PG_TEST_DIR=
  fi
  if [ -z "$MT_PG_TEST_DIR" ]; then
    MT_PG_TEST_FOR=$MT_DATA
    local env_out
    env_out=$(MT_PG_OWNER=$$ bash "$(dirname "${BASH_SOURCE[0]}")/../pg/pg-temp.sh" start) || fail "MT_TEST_PG: pg-temp.sh start"
    MT_PG_TEST_DIR=$(sed -n "s/^MT_PG_DIR=//p" <<<"$env_out" | tr -d "'\"")
    MT_PG_TEST_URL=$(sed -n "s/^MT_PG_URL=//p" <<<"$env_out" | tr -d "'\"")
  fi
  MT_PG_STORE=(--store "$MT_PG_TEST_URL")
  export MESATEE_STORE=$MT_PG_TEST_URL # the offline tools (audit verify/export) follow it
}

# mt_flip_byte FILE OFFSET: XOR the byte at OFFSET with 0xff, so the file surely changes
# (overwriting with a fixed value is a no-op when the byte already had it: 1 in 256 for
# random ciphertext, which made tamper tests flaky).
mt_flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  [ -n "$b" ] || { echo "mt_flip_byte: $1 has no byte at offset $2" >&2; return 1; }
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Backend-neutral access to the store, for steps that inspect it or play the
# host tampering with it (the store is untrusted on both backends). They
# follow MT_TEST_PG: the SQLite file $MT_DATA/mesatee.db, or the test's
# throw-away PostgreSQL (started by the first mt_start_server). Output is
# the same on both: one row per line, columns separated by `|`, no header.
# Write the SQL in the subset both engines share (no group_concat, no rowid).
mt_pg_admin_url() { sed 's#/postgres?#/template1?#' <<<"$MT_PG_TEST_URL"; }
mt_sql() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    [ -n "$MT_PG_TEST_DIR" ] || fail "mt_sql: no PostgreSQL store yet (start the server first)"
    psql "$MT_PG_TEST_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
  else
    sqlite3 -batch -cmd ".timeout 10000" "$MT_DATA/mesatee.db" "$1"
  fi
}
# mt_sql_file FILE: runs the statements of FILE (several; one transaction if it says so).
mt_sql_file() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    [ -n "$MT_PG_TEST_DIR" ] || fail "mt_sql_file: no PostgreSQL store yet"
    psql "$MT_PG_TEST_URL" -X -q -A -t -v ON_ERROR_STOP=1 -f "$1"
  else
    sqlite3 -batch -cmd ".timeout 10000" "$MT_DATA/mesatee.db" <"$1"
  fi
}
# mt_store_save NAME / mt_store_restore NAME: copy the whole store aside and
# put it back (the server must be stopped). SQLite: the files; PostgreSQL: a
# database copied with CREATE DATABASE ... TEMPLATE.
mt_store_save() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    PGOPTIONS="-c client_min_messages=warning" psql "$(mt_pg_admin_url)" -X -q -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS mt_snap_$1" -c "CREATE DATABASE mt_snap_$1 TEMPLATE postgres" ||
      fail "mt_store_save $1"
  else
    rm -rf "$MT_WORK/store-$1"; mkdir "$MT_WORK/store-$1"
    cp -a "$MT_DATA"/mesatee.db* "$MT_WORK/store-$1/"
  fi
}
mt_store_restore() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    psql "$(mt_pg_admin_url)" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE postgres WITH (FORCE)" \
      -c "CREATE DATABASE postgres TEMPLATE mt_snap_$1" || fail "mt_store_restore $1"
  else
    rm -f "$MT_DATA"/mesatee.db*; cp -a "$MT_WORK/store-$1/"* "$MT_DATA/"
  fi
}
# mt_store_sum: a digest of the store's content (equal when nothing changed).
mt_store_sum() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    # (each dump kept in $MT_WORK/store-dump.* to tell what changed; the
    # \restrict lines of newer pg_dump carry a random token)
    pg_dump "$MT_PG_TEST_URL" --data-only --no-owner | grep -Ev '^(--|\\(un)?restrict )' |
      tee "$MT_WORK/store-dump.$(date +%s%N)" | sha256sum
  else
    sha256sum <"$MT_DATA/mesatee.db"
  fi
}
# mt_pg_skip REASON: true (and says why) when the step only SQLite can serve.
mt_pg_skip() {
  [ "${MT_TEST_PG:-}" = 1 ] || return 1
  echo "skip - under MT_TEST_PG: $*"
}

# mt_start_server [extra serve args...]: starts the daemon, waits for server.url.
mt_start_server() {
  MT_PG_STORE=()
  mt_pg_store_args "$@"
  mkdir -p "$MT_DATA"
  [ -f "$MT_WORK/admin.pw" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/admin.pw"; }
  rm -f "$MT_DATA/server.url"
  "$MESATEE_BIN" serve --data-dir "$MT_DATA" --listen 127.0.0.1:0 \
    --admin-password-file "$MT_WORK/admin.pw" "${MT_PG_STORE[@]}" "$@" >>"$MT_WORK/server.log" 2>&1 &
  MT_PID=$!
  # a loaded machine can take a while to start it; a server that dies is
  # seen at once, so the bound is generous (60 s of sleeps)
  for _ in $(seq 1200); do
    [ -s "$MT_DATA/server.url" ] && break
    kill -0 "$MT_PID" 2>/dev/null || fail "server exited at start"
    sleep 0.05
  done
  [ -s "$MT_DATA/server.url" ] || fail "server did not write server.url"
  export MESATEE_SERVER; MESATEE_SERVER=$(cat "$MT_DATA/server.url")
  export MESATEE_CA=$MT_DATA/tls/server-cert.pem
}

mt_stop_server() {
  kill -TERM "$MT_PID"; wait "$MT_PID" || true; MT_PID=
}

# as USER cmd...: runs the CLI as USER (token file per user).
as() { local u=$1; shift; MESATEE_TOKEN_FILE="$MT_WORK/$u.token" "$MESATEE_BIN" "$@"; }

# mt_psi2_invoke: alice and bob (logged in, ids in $MT_WORK/alice.txt and
# bob.txt) encrypt and upload their inputs, register outputs, and run a
# two-party psi task to invoked. Sets IN[u], OUT[u] (file ids), FN, T.
mt_psi2_invoke() {
  declare -gA IN OUT
  for u in alice bob; do
    as "$u" file encrypt --in "$MT_WORK/$u.txt" --out "$MT_WORK/$u.enc" --key-out "$MT_WORK/$u.key" >/dev/null
    IN[$u]=$(as "$u" file register "$(as "$u" file upload "$MT_WORK/$u.enc")" --key "$MT_WORK/$u.key")
    "$MESATEE_BIN" key generate --out "$MT_WORK/$u.out.key" >/dev/null
    OUT[$u]=$(as "$u" file register-output --key "$MT_WORK/$u.out.key")
  done
  FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b \
    --output-slot ra --output-slot rb --public)
  T=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
  as alice task assign "$T" --input "a=${IN[alice]}" --output "ra=${OUT[alice]}" >/dev/null
  as bob task assign "$T" --input "b=${IN[bob]}" --output "rb=${OUT[bob]}" >/dev/null
  as alice task approve "$T" >/dev/null; as bob task approve "$T" >/dev/null
  as alice task invoke "$T" >/dev/null
}

# mt_login USER: logs USER in (password from $MT_WORK/USER.pw).
mt_login() { as "$1" login --user "$1" --password-file "$MT_WORK/$1.pw" >/dev/null; }

# mt_add_user NAME: admin creates NAME with a random password, then logs in.
mt_add_user() {
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/$1.pw"
  as admin user add "$1" --password-file "$MT_WORK/$1.pw" >/dev/null
  mt_login "$1"
}

# expect_fail DESC STATUS-SUBSTRING cmd...: the command must fail and print the substring.
expect_fail() {
  local desc=$1 want=$2; shift 2
  local out
  if out=$("$@" 2>&1); then fail "$desc: succeeded but should fail: $out"; fi
  case "$out" in *"$want"*) ok "$desc" ;; *) fail "$desc: expected '$want' in: $out" ;; esac
}

# jget JSON FIELD: prints a field of a JSON document (jq path).
jget() { printf '%s' "$1" | jq -r "$2"; }

# mt_kek_wait VERSION: waits (60 s at most) until VERSION is the only live
# root key version and no rewrap is pending, else fails; the last
# `admin keystore status` answer is left in MT_KS_STATUS.
mt_kek_wait() {
  for _ in $(seq 600); do
    MT_KS_STATUS=$(as admin admin keystore status --output json)
    [ "$(jget "$MT_KS_STATUS" '[.versions[].version]|join(",")')" = "$1" ] &&
      [ "$(jget "$MT_KS_STATUS" .rewrap.pending)" = 0 ] && return 0
    sleep 0.1
  done
  fail "rewrap to version $1 did not finish: $MT_KS_STATUS"
}

# mt_start_swtpm [STATE_DIR]: starts a software TPM (swtpm) on a free loopback
# port pair with its state in STATE_DIR (default $MT_WORK/tpm; the same state
# gives the same AK), sets MT_TCTI for `serve --tpm2-tcti`. The caller checks
# `command -v swtpm` first. Stopped by mt_stop_swtpm or at exit.
mt_start_swtpm() {
  local dir=${1:-$MT_WORK/tpm} port=
  mkdir -p "$dir"
  for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket
for _ in range(50):
    a=socket.socket(); a.bind(("127.0.0.1",0)); p=a.getsockname()[1]
    b=socket.socket()
    try:
        b.bind(("127.0.0.1",p+1)); print(p); break
    except OSError: pass
    finally: a.close(); b.close()')
    swtpm socket --tpm2 --tpmstate dir="$dir" \
      --server type=tcp,port="$port",bindaddr=127.0.0.1 \
      --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
      --flags not-need-init,startup-clear >>"$MT_WORK/swtpm.log" 2>&1 &
    MT_SW_PID=$!
    # until both its ports accept connections (30 s at most; a swtpm that
    # lost its port to another process exits at once: try another pair). A
    # fixed 0.3 s was not enough on a loaded machine: a daemon started next
    # found nothing listening yet.
    for _ in $(seq 300); do
      kill -0 "$MT_SW_PID" 2>/dev/null || break
      { : <"/dev/tcp/127.0.0.1/$port" && : <"/dev/tcp/127.0.0.1/$((port + 1))"; } 2>/dev/null && break
      sleep 0.1
    done
    kill -0 "$MT_SW_PID" 2>/dev/null && break
    wait "$MT_SW_PID" 2>/dev/null || true
    MT_SW_PID=
  done
  [ -n "$MT_SW_PID" ] || fail "swtpm did not start: $(cat "$MT_WORK/swtpm.log")"
  MT_TCTI="swtpm:host=127.0.0.1,port=$port"
}

mt_stop_swtpm() {
  if [ -n "${MT_SW_PID:-}" ]; then
    kill "$MT_SW_PID" 2>/dev/null || true
    wait "$MT_SW_PID" 2>/dev/null || true
  fi
  MT_SW_PID=
}

# mt_sanitizer_tools LIB: when LIB (a library of ours that third-party
# programs load: libmesatee, the PKCS#11 module) is a sanitizer build, those
# programs (python3, pkcs11-tool, openssl, p11tool) need the ASan/UBSan
# runtime first in their library list; wraps them to preload it, with leak
# detection off for them (their own allocations at exit are not ours to
# report; our code's leaks are covered by the sanitizer runs of our own
# binaries and test_p11_randcall). No-op for a normal build.
mt_sanitizer_tools() {
  local lib=$1 deps p
  # ldd's output read whole: `ldd | grep -q` fails under pipefail when grep
  # exits first and ldd gets SIGPIPE, which made this a no-op now and then
  deps=$(ldd "$lib" 2>/dev/null) || return 0
  case "$deps" in *libasan*) ;; *) return 0 ;; esac
  p="$(awk '/libasan/ {print $3}' <<<"$deps") $(awk '/libubsan/ {print $3}' <<<"$deps")"
  MT_TOOL_PRELOAD=$p
  MT_TOOL_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0"
  pkcs11-tool() { LD_PRELOAD=$MT_TOOL_PRELOAD ASAN_OPTIONS=$MT_TOOL_ASAN command pkcs11-tool "$@"; }
  p11tool() { LD_PRELOAD=$MT_TOOL_PRELOAD ASAN_OPTIONS=$MT_TOOL_ASAN command p11tool "$@"; }
  openssl() { LD_PRELOAD=$MT_TOOL_PRELOAD ASAN_OPTIONS=$MT_TOOL_ASAN command openssl "$@"; }
}

# mt_gateway_policy FILE [MAX_AGE_S]: a level-soft policy (role gateway) that
# admits exactly the running test server (its measurement and platform key
# from `attest show`); what executors and clients verify the server by.
mt_gateway_policy() {
  local show
  show=$("$MESATEE_BIN" attest show --output json) || fail "attest show"
  cat >"$1" <<EOP
{"mesatee_policy": 1, "role": "gateway", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jget "$show" .measurements.measurement)"]}},
 "soft_platform_keys": ["$(jget "$show" .soft_platform_key)"], "max_evidence_age_s": ${2:-86400}}
EOP
}

# mt_executor_policy FILE MAX_AGE_S ID_JSON...: a level-soft executor-role
# policy admitting the executors whose `--print-identity` documents
# (measurement, soft_platform_key) are given; the daemon's --executor-policy.
mt_executor_policy() {
  local f=$1 age=$2 m="" k="" id
  shift 2
  for id in "$@"; do
    m="$m${m:+,}\"$(jget "$id" .measurement)\""
    k="$k${k:+,}\"$(jget "$id" .soft_platform_key)\""
  done
  cat >"$f" <<EOP
{"mesatee_policy": 1, "role": "executor", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"executor": {"measurement": [$m]}},
 "soft_platform_keys": [$k], "max_evidence_age_s": $age}
EOP
}
