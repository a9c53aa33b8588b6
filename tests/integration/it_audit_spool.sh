#!/usr/bin/env bash
# No request is served without its audit entry, even while the store cannot
# take it (docs/design.md "Audit spool"): the store is made unreachable for
# writes (SQLite: another process holds `BEGIN EXCLUSIVE`; MT_TEST_PG=1: the
# throw-away PostgreSQL is stopped) while requests are made. They are
# answered, their entries wait in the MACed local spool, and once the store
# is back every one of them is in the chain, with the time it was answered
# at, and `audit verify` passes; only the first entry of the outage tried the
# store (mesatee_audit_store_failures_total); a change made right after the
# store is back goes into the chain behind them. Then: past --audit-spool-max-kib requests
# are refused with 503 (fail closed) and leave no entry; a spool left at a
# stop is appended at the next start before anything is served; a tampered
# spool is refused whole (log ALARM, metric, an entry recording the refusal).
# (--shutdown-grace-s 0: a stop with the store down need not wait for the
# drain check, which reads the store.)
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 0; }
[ "${MT_TEST_PG:-}" = 1 ] || command -v sqlite3 >/dev/null ||
  { echo "SKIP: sqlite3 (the CLI) not installed"; exit 0; }
DB=$MT_DATA/mesatee.db
SPOOL=$MT_DATA/audit-spool
B=$MESATEE_BIN

metric() { # metric NAME: its value on /metrics (empty when absent)
  curl -s --cacert "$MESATEE_CA" "$MESATEE_SERVER/metrics" | sed -n "s/^$1 //p"
}
me() { # me USER: GET /v1/users/me, prints the HTTP status, body into $MT_WORK/me.out
  curl -s -o "$MT_WORK/me.out" -w '%{http_code}' --cacert "$MESATEE_CA" \
    -H "Authorization: Bearer $(cat "$MT_WORK/$1.token")" "$MESATEE_SERVER/v1/users/me"
}
# entries ACTOR: that actor's GET /v1/users/me entries in the chain. On
# PostgreSQL a stopped store also fails the token check (actor "-", an
# error status), so there every such entry counts (the steps run one after
# the other).
entries() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    mt_sql "SELECT count(*) FROM audit WHERE action = 'GET /v1/users/me'"
  else
    mt_sql "SELECT count(*) FROM audit WHERE actor = '$1' AND action = 'GET /v1/users/me'"
  fi
}
# refused: the last answer was the audit refusal (503 with its reason), not
# the request's own answer (which on PostgreSQL may be an error as well)
refused() { [ "$1" = 503 ] && grep -q "audit log cannot be written" "$MT_WORK/me.out"; }
# answered CODE: the request's own answer (SQLite: 200; PostgreSQL down: any
# answer but the refusal)
answered() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then ! refused "$1"; else [ "$1" = 200 ]; fi
}

# ---- making the store fail and come back ---------------------------------
LOCK_PID=
store_down() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    pg_ctl_as -m fast -w -t 30 stop >/dev/null || fail "stopping PostgreSQL"
    return
  fi
  rm -f "$MT_WORK/lock.fifo"; mkfifo "$MT_WORK/lock.fifo"
  sqlite3 "$DB" <"$MT_WORK/lock.fifo" >"$MT_WORK/lock.out" 2>&1 &
  LOCK_PID=$!
  exec 3>"$MT_WORK/lock.fifo"
  echo "BEGIN EXCLUSIVE;" >&3
  # held once a writer of our own is refused (poll, generous bound)
  for _ in $(seq 600); do
    sqlite3 -cmd ".timeout 1" "$DB" "BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  fail "the write lock on the store was not taken"
}
store_up() {
  if [ "${MT_TEST_PG:-}" = 1 ]; then
    pg_ctl_as -l "$MT_PG_TEST_DIR/log" -w -t 30 start >/dev/null || fail "starting PostgreSQL"
    return
  fi
  echo "ROLLBACK;" >&3
  exec 3>&-
  wait "$LOCK_PID" || true
  LOCK_PID=
}
pg_ctl_as() { # pg_ctl on the test's cluster, as its owner (nobody when we are root)
  local bin=/usr/lib/postgresql/15/bin
  [ -x "$bin/pg_ctl" ] || bin=$(ls -d /usr/lib/postgresql/*/bin | head -1)
  if [ "$(id -u)" = 0 ]; then
    runuser -u nobody -- "$bin/pg_ctl" -D "$MT_PG_TEST_DIR/data" "$@"
  else
    "$bin/pg_ctl" -D "$MT_PG_TEST_DIR/data" "$@"
  fi
}
wait_spool_empty() { # the background replay drains the spool (generous bound)
  local n
  for _ in $(seq 600); do
    n=$(metric mesatee_audit_spool_entries)
    [ "$n" = 0 ] && [ ! -e "$SPOOL" ] && return 0
    sleep 0.1
  done
  fail "the spool was not appended to the chain: $n entries wait"
}

# ---- 1. requests while the store is down: answered, then all in the chain
mt_start_server --shutdown-grace-s 0
if [ "${MT_TEST_PG:-}" = 1 ]; then
  [ -d "$MT_PG_TEST_DIR/data" ] || { echo "SKIP: the PostgreSQL cluster's data directory is not $MT_PG_TEST_DIR/data"; exit 0; }
fi
mt_login admin
mt_add_user alice
mt_add_user bob
[ "$(metric mesatee_audit_spool_entries)" = 0 ] || fail "a fresh server has spooled entries"
c0=$(entries alice)
f0=$(metric mesatee_audit_store_failures_total)
[ -n "$f0" ] || fail "no mesatee_audit_store_failures_total on /metrics"
store_down
N=4
t_down=$(date +%s)
for i in $(seq $N); do
  ( code=$(curl -s -o "$MT_WORK/body.$i" -w '%{http_code}' --cacert "$MESATEE_CA" \
      -H "Authorization: Bearer $(cat "$MT_WORK/alice.token")" "$MESATEE_SERVER/v1/users/me")
    echo "$code" >"$MT_WORK/code.$i" ) &
done
wait_codes() {
  for _ in $(seq 1200); do
    local all=1
    for i in $(seq "$1"); do [ -s "$MT_WORK/code.$i" ] || all=0; done
    [ $all = 1 ] && return 0
    sleep 0.1
  done
  fail "requests did not finish"
}
wait_codes $N
for i in $(seq $N); do
  cp "$MT_WORK/body.$i" "$MT_WORK/me.out"
  answered "$(cat "$MT_WORK/code.$i")" ||
    fail "request $i while the store was down: $(cat "$MT_WORK/code.$i") $(cat "$MT_WORK/me.out")"
done
ok "$N requests answered ($(sort "$MT_WORK"/code.* | uniq -c | xargs)) while the store could not take their audit entries"
[ -s "$SPOOL" ] || fail "no audit spool was written"
spooled=$(metric mesatee_audit_spooled_total)
[ "$spooled" -ge $N ] || fail "mesatee_audit_spooled_total $spooled < $N"
grep -q "spooled locally until it can" "$MT_WORK/server.log" || fail "no log line about spooling"
# one request found the store failing; every entry after it went straight
# to the spool, behind it, without waiting for the store's error again
f1=$(metric mesatee_audit_store_failures_total)
[ "$f1" = $((f0 + 1)) ] || fail "the store was tried $((f1 - f0)) times during one outage, want 1"
if [ "${MT_TEST_PG:-}" != 1 ]; then # (a stopped PostgreSQL cannot be read either)
  [ "$(entries alice)" = "$c0" ] || fail "entries reached the chain while it was locked"
fi
if [ "${MT_TEST_PG:-}" = 1 ]; then
  # the replay thread's tries fail at once here: let it reach its longest
  # backoff, so that the spooled entries still wait when the change below
  # comes (poll the log, generous bound)
  for _ in $(seq 600); do
    grep -q "retrying in 5000 ms" "$MT_WORK/server.log" && break
    sleep 0.1
  done
fi
t_up=$(date +%s)
store_up
# a change right after the store is back, while the spooled entries may
# still wait for the replay: its entry must go into the chain behind them
mt_add_user carol
wait_spool_empty
[ "$(entries alice)" = $((c0 + N)) ] || fail "chain has $(entries alice) alice entries, want $((c0 + N))"
carol=$(mt_sql "SELECT seq FROM audit WHERE action = 'POST /v1/users' AND object = 'user:carol'")
[ -n "$carol" ] || fail "no audit entry for creating carol"
after=$(mt_sql "SELECT count(*) FROM audit WHERE action = 'GET /v1/users/me' AND actor <> 'carol'
  AND seq > $carol")
[ "$after" = 0 ] ||
  fail "$after entries answered during the outage were appended after a later change (seq $carol)"
ok "a change made right after the store came back is in the chain after the spooled entries"
# their original times: answered while the store was down, appended after
late=$(mt_sql "SELECT count(*) FROM audit WHERE action = 'GET /v1/users/me' AND time >= $t_down AND time <= $t_up")
[ "$late" = $N ] || fail "$late of the $N entries keep the time they were answered at ($t_down..$t_up)"
[ "$(metric mesatee_audit_spool_replayed_total)" -ge $N ] || fail "replayed_total"
ok "every request's entry is in the chain with its original time after the store came back"

# ---- 2. the cap: fail closed; a spool left at a stop goes in at the start
mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "audit verify after the replay"
ok "audit verify: the chain with the replayed entries is intact"
mt_start_server --shutdown-grace-s 0 --audit-spool-max-kib 1
c0=$(entries bob)
store_down
n200=0; n503=0
# (an entry takes ~75 bytes: about a dozen fit; then every further one is
# refused, until the store is back)
for i in $(seq 60); do
  code=$(me bob)
  if refused "$code"; then n503=$((n503 + 1))
  elif answered "$code"; then
    [ $n503 = 0 ] || fail "request $i answered after an earlier one was refused (the spool is still full)"
    n200=$((n200 + 1))
  else fail "request $i: HTTP $code $(cat "$MT_WORK/me.out")"; fi
  [ $n503 -lt 3 ] || break
done
[ $n200 -ge 1 ] && [ $n503 -ge 1 ] || fail "with a 1 KiB spool: $n200 answered, $n503 refused"
ok "past --audit-spool-max-kib 1: $n200 requests answered, $n503 refused with 503 (fail closed)"
grep -q "could be neither appended to the chain nor spooled" "$MT_WORK/server.log" ||
  fail "no log line for the refused entries"
mt_stop_server # the spool stays
[ -s "$SPOOL" ] || fail "no spool left at the stop"
store_up
mt_start_server --shutdown-grace-s 0
# appended before serving: the first answer already sees them
[ "$(entries bob)" = $((c0 + n200)) ] ||
  fail "after the restart: $(entries bob) bob entries, want $((c0 + n200)) (the refused ones must not be there)"
[ ! -e "$SPOOL" ] || fail "the spool is still there after the start"
grep -q "left in the audit spool by an earlier run" "$MT_WORK/server.log" || fail "no start log line"
ok "the spool left at the stop was appended at the start, before serving; refused requests left no entry"

# ---- 3. a tampered spool is refused whole
c0=$(entries alice)
store_down
answered "$(me alice)" || fail "request while the store is down: $(cat "$MT_WORK/me.out")"
mt_stop_server
[ -s "$SPOOL" ] || fail "no spool left at the stop"
size=$(stat -c %s "$SPOOL")
mt_flip_byte "$SPOOL" $((size - 40))
store_up
mt_start_server --shutdown-grace-s 0
grep -q "ALARM audit spool refused" "$MT_WORK/server.log" || fail "no alarm in the log"
[ "$(metric mesatee_audit_spool_refused_total)" = 1 ] || fail "refused_total"
[ "$(entries alice)" = "$c0" ] || fail "an entry of a tampered spool reached the chain"
[ "$(mt_sql "SELECT count(*) FROM audit WHERE action LIKE 'audit spool refused:%'")" = 1 ] ||
  fail "the refusal is not recorded in the chain"
ls "$MT_DATA"/audit-spool.refused-* >/dev/null 2>&1 || fail "the refused spool was not kept aside"
ok "a tampered spool is refused: alarm, metric, chain entry, file kept aside, nothing appended"
mt_stop_server
"$B" audit verify --data-dir "$MT_DATA" >/dev/null || fail "audit verify at the end"
ok "audit verify passes"
