#!/usr/bin/env bash
# failure.sh: the issue-14 failure script (docs/cluster.md "Failure tests").
# Every member runs in its own network namespace (tests/cluster/netns.sh: veth
# pairs to a bridge in a hub namespace, a /24 chosen per run, no uplink):
#   e1 e2 e3  etcd                        .11 .12 .13
#   p1 p2     Patroni + PostgreSQL 15     .21 .22
#   c         the parties' CLI (clients)  .31
#   n1 n2     `mesatee serve --store` on the multi-host URL
#             (target_session_attrs=read-write, client certificate)  .41 .42
#   x1 x2     `mesatee executor` (soft level, attested TLS)  .51 .52
#   xw        an executor whose binary differs (wrong measurement)  .53
# With a two-party PSI task and a GBDT training task of known result in flight:
#   5. the wrong-measurement executor claims nothing; a node with a wrong
#      measurement gets no database certificate and the database refuses it
#   2. kill -9 of the executor holding both tasks: the leases expire, the other
#      executor runs them, the parties decrypt the right results, one
#      "task finished" each
#   4. the holder's link goes down: after the lease expires the other executor
#      claims the task (fencing token 2); the link comes back, the old holder's
#      late report (token 1) is refused by fencing; one output
#   3. kill -9 of the PostgreSQL primary: Patroni promotes the standby, the
#      node reconnects; no task, file or audit entry lost (before/after and
#      `audit verify`); every request answered during the failover has its
#      audit entry (spooled, then in the chain: status and time kept; the
#      chain checkpointed after it); the tasks in flight finish; prints the failover figure
#      failover_task_s (primary killed -> first task accepted through mesatee)
#   1. kill -9 of a node mid-request, clients retry on the other: needs several
#      nodes on one database (a KeyStore join, `serve --keystore-join`); skipped
#      with a message where this build has no such option
#   6. a whole node partitioned (n2, running tasks itself, a PSI task of its
#      own at its gate): the clients retry on n1; the database server ends
#      n2's sessions (keepalives) and with them its liveness lock, n1's
#      sweeper requeues the run after --node-dead-after-ms (3000 here), an
#      executor of n1 runs it once, both decrypt; the link comes back: n2's
#      late outcome is dropped (log line, counter), nothing else changes, n2
#      holds its lock again and runs a task itself; prints
#      partition_lock_release_s and partition_requeue_s (needs the join too)
# Workers are held at gate files (orderings, not timings); every wait polls
# with a bound. Root only; exit 77 with "SKIP:" where namespaces, etcd,
# Patroni or PostgreSQL 15 are missing. MT_KEEP=1 keeps the work directory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/netns.sh
. "$HERE/netns.sh"
# shellcheck source=tests/cluster/ha.sh
. "$HERE/ha.sh"

skip() { echo "SKIP: $*" >&2; exit 77; }
T_START=$(date +%s.%N)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
log() { echo "[$(elapsed "$T_START" "$(now)")s] $*"; }

# ---- prerequisites ----------------------------------------------------------
PGBIN=/usr/lib/postgresql/15/bin
: "${MESATEE_BIN:?MESATEE_BIN must point at the mesatee binary}"
: "${MESATEE_WORKER:?MESATEE_WORKER must point at the mesatee-worker binary}"
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, PostgreSQL runs as user postgres)"
command -v etcd >/dev/null || skip "etcd not installed (apt-get install etcd-server)"
command -v patroni >/dev/null || skip "Patroni not installed (apt-get install patroni)"
[ -x "$PGBIN/postgres" ] || skip "PostgreSQL 15 not installed (apt-get install postgresql-15)"
for t in psql curl jq runuser; do command -v $t >/dev/null || skip "$t not installed"; done
id postgres >/dev/null 2>&1 || skip "no user postgres (installed with postgresql-15)"
nsx_usable || skip "cannot create network namespaces and veth pairs here (root with CAP_NET_ADMIN/CAP_SYS_ADMIN needed)"
SERVE_HELP=$("$MESATEE_BIN" serve --help 2>&1 || true)
grep -q -- '--remote-executors' <<<"$SERVE_HELP" ||
  skip "this mesatee has no remote executors (built without the server)"

W=$(mktemp -d /tmp/mt-failure.XXXXXX)
chmod 755 "$W"
B=$MESATEE_BIN
export MESATEE_CONFIG=$W/no-config
unset MESATEE_SERVER MESATEE_CA MESATEE_TOKEN_FILE MESATEE_OUTPUT MESATEE_STORE
SLEEP=$(command -v sleep)
PROBE_PID=
cleanup() {
  local rc=$?
  [ -z "$PROBE_PID" ] || kill "$PROBE_PID" 2>/dev/null || true # scenario 3's probe loop
  nsx_teardown
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for f in "$W"/n1/server.log "$W"/n2/server.log "$W"/x1/ex.log "$W"/x2/ex.log "$W"/p1/patroni.log "$W"/p2/patroni.log; do
      [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 25 "$f" >&2; }
    done
  fi
  if [ -n "${MT_KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
# poll WHAT SECONDS CMD...: CMD every 0.1 s until it succeeds, else fail
poll() {
  local what=$1 n=$(($2 * 10))
  shift 2
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  fail "timed out after ${n}00 ms waiting for $what"
}

# every process of namespace $1 (nsx_exec runs in a subshell: $! is not the
# program's PID)
ns_pids() { ip netns pids "$NSX_PREFIX-$1" 2>/dev/null || true; }
ns_empty() { [ -z "$(ns_pids "$1")" ]; }
# stop N: kill -9 everything in namespace N and wait until it is gone
stop() { nsx_kill "$1"; poll "every process of $1 to end" 10 ns_empty "$1"; }

# ---- network -----------------------------------------------------------------
SUBNET="10.$((100 + RANDOM % 100)).$((RANDOM % 250))"
nsx_init "mtf$$" "$SUBNET"
declare -A NUM=([e1]=11 [e2]=12 [e3]=13 [p1]=21 [p2]=22 [c]=31 [n1]=41 [n2]=42
  [x1]=51 [x2]=52 [xw]=53)
for m in e1 e2 e3 p1 p2 c n1 n2 x1 x2 xw; do
  nsx_add "$m" "${NUM[$m]}"
  eval "HA_IP_$m=$SUBNET.${NUM[$m]}"
done
IP_P1=$SUBNET.21 IP_P2=$SUBNET.22 IP_N1=$SUBNET.41
log "namespaces up, subnet $SUBNET.0/24"

# ---- etcd x3, Patroni x2 ----------------------------------------------------------
ha_tls "$W/tls" "$IP_P1" "$IP_P2" || fail "cannot make the test CA"
ha_etcd_start "$W" e1 e2 e3 || fail "etcd"
log "etcd: 3 members healthy"
ha_patroni_start "$W" "$W/tls" "$SUBNET" "$PGBIN" p1 p2
ha_wait_roles p1 p2 || fail "Patroni"
log "Patroni leader $HA_PRIMARY, synchronous standby $HA_STANDBY"
PRIMARY=$HA_PRIMARY STANDBY=$HA_STANDBY
SUPER_URL="postgresql://postgres@$(ha_ip "$PRIMARY"):5432/postgres?sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=3"
PGPASSWORD=$HA_SUPER_PW nsx_exec c psql -X -q -v ON_ERROR_STOP=1 "$SUPER_URL" \
  -c "CREATE ROLE mesatee LOGIN" -c "CREATE DATABASE mesatee OWNER mesatee" >/dev/null ||
  fail "cannot create the role and the database as superuser"

# ---- scenario 5 (database part): credentials only after attestation -----------------
mkdir -p "$W/n1" "$W/cred"
chmod 700 "$W/cred"
url_for() { # $1: certificate prefix
  echo "postgresql://mesatee@$IP_P1:5432,$IP_P2:5432/mesatee?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$W/tls/ca.crt&sslcert=$1.crt&sslkey=$1.key&connect_timeout=2"
}
if [ -n "${MT_DBCERT_TOOL:-}" ]; then
  rc=0
  "$MT_DBCERT_TOOL" node "$W/ks-wrong" "$W/tls/ca.crt" "$W/tls/ca.key" mesatee 3600 wrong \
    "$W/cred/wrong" >"$W/cred/wrong.out" 2>&1 || rc=$?
  [ $rc -eq 3 ] || { cat "$W/cred/wrong.out" >&2; fail "wrong measurement: dbcert exit $rc, expected 3"; }
  [ ! -e "$W/cred/wrong.crt" ] || fail "a refused node got a certificate"
  if nsx_exec n2 psql -X -q -tA "$(url_for "$W/cred/wrong.self")" -c "SELECT 1" >"$W/cred/wrong.psql" 2>&1; then
    fail "the database accepted a node that failed attestation"
  fi
  ok "5. a node with a wrong measurement gets no database certificate; with its own attested identity the database refuses it ($(head -c 100 "$W/cred/wrong.psql" | tr '\n' ' '))"
  "$MT_DBCERT_TOOL" node "$W/ks-right" "$W/tls/ca.crt" "$W/tls/ca.key" mesatee 3600 right \
    "$W/cred/node" >"$W/cred/node.out" 2>&1 || { cat "$W/cred/node.out" >&2; fail "the attested node got no certificate"; }
  CRED="KeyStore (dbcert_node, after attestation)"
else
  ha_client_cert "$W/tls" "$W/cred/node" mesatee || fail "client certificate"
  echo "skip - MT_DBCERT_TOOL not set: the node's certificate comes from the test CA; no wrong-measurement database check"
  CRED="test CA (openssl)"
fi
URL=$(url_for "$W/cred/node")

# ---- the executors' identities, the node ------------------------------------------
# one worker wrapper for every executor (the worker is part of the
# measurement: the same file): it waits for the gate file of its executor
# (the namespace it runs in), then is the worker
cat >"$W/worker" <<EOF
#!/bin/bash
x=\$(ip netns identify \$\$)
x=\${x##*-}
echo \$\$ >> '$W'/\$x/started
while [ ! -e '$W'/\$x/gate ]; do '$SLEEP' 0.05; done
exec -a mesatee-worker '$MESATEE_WORKER' "\$@"
EOF
chmod 755 "$W/worker"
for x in x1 x2 xw; do
  mkdir -p "$W/$x"
  : >"$W/$x/started"
done
# xw: the same program with one byte more: another measurement
cp "$B" "$W/xw/mesatee"
printf 'x' >>"$W/xw/mesatee"
declare -A XBIN=([x1]=$B [x2]=$B [xw]=$W/xw/mesatee)
ids=()
for x in x1 x2 xw; do
  id=$("${XBIN[$x]}" executor --data-dir "$W/$x/data" --level soft --worker "$W/worker" \
    --poll-ms 100 --print-identity) || fail "executor --print-identity ($x)"
  printf '%s' "$id" >"$W/$x/identity.json"
  ids+=("$id")
done
meas() { jq -r .measurement "$W/$1/identity.json"; }
[ "$(meas x1)" = "$(meas x2)" ] || fail "x1 and x2 measure differently"
[ "$(meas xw)" != "$(meas x1)" ] || fail "the modified binary measures the same"
# the policy admits the measurement of x1/x2 and the platform keys of all three:
# xw differs only by its measurement
cat >"$W/executor-policy.json" <<EOP
{"mesatee_policy": 1, "role": "executor", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"executor": {"measurement": ["$(meas x1)"]}},
 "soft_platform_keys": [$(for x in x1 x2 xw; do jq .soft_platform_key "$W/$x/identity.json"; done | paste -sd,)],
 "max_evidence_age_s": 86400}
EOP
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$W/admin.pw"
LEASE_MS=3000
# start_node N: `mesatee serve` in namespace N on the cluster's URL. Every
# node names the gated worker wrapper (--worker is measured: scenario 6 runs
# n2 with local workers, and its measurement must stay n1's); a node with
# --remote-executors never starts it.
start_node() {
  local n=$1 ip
  ip=$(ha_ip "$n")
  mkdir -p "$W/$n"
  nsx_exec "$n" "$B" serve --data-dir "$W/$n/data" --listen "$ip:8443" --level soft \
    --admin-password-file "$W/admin.pw" --store "$URL" --worker "$W/worker" --remote-executors \
    --executor-policy "$W/executor-policy.json" --executor-listen "$ip:8444" \
    --executor-lease-ms $LEASE_MS --executor-max-attempts 4 "${@:2}" >>"$W/$n/server.log" 2>&1 &
  local pid=$!
  disown "$pid" # killed on purpose: no job notice
  for _ in $(seq 600); do
    [ -s "$W/$n/data/server.url" ] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$W/$n/server.log" >&2; fail "node $n exited at start"; }
    sleep 0.1
  done
  fail "node $n did not start within 60 s"
}
# several nodes need the KeyStore join (cluster-nodes): n1 is the KeyStore node
JOIN=
grep -q -- '--keystore-join' <<<"$SERVE_HELP" && JOIN=1
if [ -n "$JOIN" ]; then start_node n1 --keystore-listen "$IP_N1:8445"; else start_node n1; fi
N1_URL=$(cat "$W/n1/data/server.url")
log "node n1 up at $N1_URL on $URL (database certificate from the $CRED)"

# ---- clients (namespace c) ------------------------------------------------------------
SERVER=$N1_URL SERVER_CA=$W/n1/data/tls/server-cert.pem
as() {
  local u=$1
  shift
  nsx_exec c env MESATEE_TOKEN_FILE="$W/c/$u.token" MESATEE_SERVER="$SERVER" \
    MESATEE_CA="$SERVER_CA" MESATEE_CONFIG="$W/no-config" "$B" "$@"
}
mkdir -p "$W/c"
as admin login --user admin --password-file "$W/admin.pw" >/dev/null || fail "admin login"
for u in alice bob; do
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$W/c/$u.pw"
  as admin user add "$u" --password-file "$W/c/$u.pw" >/dev/null
  as "$u" login --user "$u" --password-file "$W/c/$u.pw" >/dev/null
done
# the parties' gateway policy: the node's measurement and platform key
show=$(as admin attest show --output json) || fail "attest show"
cat >"$W/gateway-policy.json" <<EOP
{"mesatee_policy": 1, "role": "gateway", "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jq -r .measurements.measurement <<<"$show")"]}},
 "soft_platform_keys": ["$(jq -r .soft_platform_key <<<"$show")"], "max_evidence_age_s": 86400}
EOP

# ---- the tasks: PSI (alice, bob) and GBDT training (alice, bob) ---------------------------
seq -f "id%g" 1 300 >"$W/c/alice.txt"
seq -f "id%g" 201 500 >"$W/c/bob.txt"
seq -f "id%g" 201 300 | LC_ALL=C sort >"$W/c/psi.want"
gen() { awk -v seed="$1" 'BEGIN { srand(seed); print "age,bp,risk";
  for (i = 0; i < 200; i++) { a = rand() * 60 + 20; b = rand() * 80 + 90;
    printf "%.2f,%.1f,%d\n", a, b, (a > 50 && b > 140) || rand() < 0.05 } }'; }
gen 1 >"$W/c/alice.csv"
gen 2 >"$W/c/bob.csv"
declare -A IN_PSI IN_GB
for u in alice bob; do
  as "$u" file encrypt --in "$W/c/$u.txt" --out "$W/c/$u.enc" --key-out "$W/c/$u.key" >/dev/null
  IN_PSI[$u]=$(as "$u" file register "$(as "$u" file upload "$W/c/$u.enc")" --key "$W/c/$u.key")
  as "$u" file encrypt --in "$W/c/$u.csv" --out "$W/c/$u.csv.enc" --key-out "$W/c/$u.csv.key" >/dev/null
  IN_GB[$u]=$(as "$u" file register "$(as "$u" file upload "$W/c/$u.csv.enc")" --key "$W/c/$u.csv.key")
done
FN_PSI=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b \
  --output-slot ra --output-slot rb --public)
FN_GB=$(as alice function register --name gbdt --builtin gbdt_train --public \
  --input-slot a --input-slot b --output-slot model --arg label=risk \
  --arg objective=binary:logistic --arg trees=10 --arg depth=3 --arg threads=1 --arg seed=1)
NK=0
# psi_task / gbdt_task: a task to invoked; prints its id; output keys under
# $W/c/<task>.<user>.key
psi_task() {
  local t
  NK=$((NK + 1))
  declare -A out
  for u in alice bob; do
    "$B" key generate --out "$W/c/k$NK.$u" >/dev/null
    out[$u]=$(as "$u" file register-output --key "$W/c/k$NK.$u")
  done
  t=$(as alice task create --function "$FN_PSI" --input a=alice --input b=bob --output ra=alice --output rb=bob)
  as alice task assign "$t" --input "a=${IN_PSI[alice]}" --output "ra=${out[alice]}" >/dev/null
  as bob task assign "$t" --input "b=${IN_PSI[bob]}" --output "rb=${out[bob]}" >/dev/null
  for u in alice bob; do mv "$W/c/k$NK.$u" "$W/c/$t.$u.key"; as "$u" task approve "$t" >/dev/null; done
  as alice task invoke "$t" >/dev/null
  printf '%s' "$t"
}
gbdt_task() {
  local t o
  NK=$((NK + 1))
  "$B" key generate --out "$W/c/k$NK.alice" >/dev/null
  o=$(as alice file register-output --key "$W/c/k$NK.alice")
  t=$(as alice task create --function "$FN_GB" --input a=alice --input b=bob --output model=alice)
  as alice task assign "$t" --input "a=${IN_GB[alice]}" --output "model=$o" >/dev/null
  as bob task assign "$t" --input "b=${IN_GB[bob]}" >/dev/null
  mv "$W/c/k$NK.alice" "$W/c/$t.alice.key"
  for u in alice bob; do as "$u" task approve "$t" >/dev/null; done
  as alice task invoke "$t" >/dev/null
  printf '%s' "$t"
}
st() { as alice --output json task show "$1" | jq -r .status; }
is() { [ "$(st "$1")" = "$2" ]; }
events() {
  as admin --output json audit list --limit 1000 |
    jq -r --arg t "task:$1" '[.entries[] | select(.object == $t and (.action | startswith("task "))) | .action] | join(",")'
}
# check_psi T / check_gbdt T: the parties decrypt the known result; one
# "task finished" in the audit
check_psi() {
  as alice task wait "$1" --timeout 90 >/dev/null || fail "PSI task $1: $(st "$1")"
  as alice task result "$1" --slot ra --key "$W/c/$1.alice.key" --out "$W/c/$1.ra" >/dev/null
  as bob task result "$1" --slot rb --key "$W/c/$1.bob.key" --out "$W/c/$1.rb" >/dev/null
  LC_ALL=C sort "$W/c/$1.ra" | cmp -s - "$W/c/psi.want" || fail "PSI $1: alice's result is wrong"
  LC_ALL=C sort "$W/c/$1.rb" | cmp -s - "$W/c/psi.want" || fail "PSI $1: bob's result is wrong"
  [ "$(events "$1" | tr ',' '\n' | grep -c '^task finished$')" = 1 ] || fail "PSI $1: $(events "$1")"
}
check_gbdt() {
  as alice task wait "$1" --timeout 90 >/dev/null || fail "GBDT task $1: $(st "$1")"
  as alice task result "$1" --slot model --key "$W/c/$1.alice.key" --out "$W/c/$1.model" >/dev/null
  cmp -s "$W/c/$1.model" "$W/c/gbdt.want" || fail "GBDT $1: the model differs from the reference run"
  [ "$(events "$1" | tr ',' '\n' | grep -c '^task finished$')" = 1 ] || fail "GBDT $1: $(events "$1")"
}

# executor X [args]: executor X in its namespace, scheduler = node n1
EXEC_URL="https://$IP_N1:8444"
executor() {
  local x=$1
  shift
  nsx_exec "$x" "${XBIN[$x]}" --policy "$W/gateway-policy.json" executor --scheduler "$EXEC_URL" \
    --data-dir "$W/$x/data" --level soft --worker "$W/worker" --poll-ms 100 \
    --worker-start spawn --name "$x" "$@" >>"$W/$x/ex.log" 2>&1 &
  disown "$!"
}
workers() { wc -l <"$W/$1/started"; }
more() { [ "$(workers "$1")" -ge "$2" ]; }
logged() { grep -q -- "$2" "$1"; }
# no staged report or upload left in the node's object directory
no_leftovers() {
  local left
  left=$(find "$W/n1/data" \( -name '*.report-*' -o -name '*.up-*' \) -print)
  [ -z "$left" ] || fail "$1: staged outputs left: $left"
}

# ---- scenario 5: an executor with a wrong measurement claims nothing ------------------
touch "$W/xw/gate"
E5=$(as alice function register --name echo --builtin echo --arg "message=x:overridable")
T5=$(as alice task create --function "$E5" --arg message=five)
as alice task approve "$T5" >/dev/null 2>&1 || true
as alice task invoke "$T5" >/dev/null
executor xw
poll "xw's refused handshakes" 60 logged "$W/xw/ex.log" "refused this executor"
refused() { grep -c "refused this executor" "$W/xw/ex.log" || true; }
c5=$(refused)
# a few more polls of xw: still nothing claimed
more_refused() { [ "$(refused)" -ge $((c5 + 2)) ] || ns_empty xw; }
poll "more refused polls of xw" 60 more_refused
stop xw
[ "$(workers xw)" = 0 ] || fail "the wrong-measurement executor started a worker"
is "$T5" staged || fail "task $T5 is $(st "$T5") after the wrong-measurement executor polled"
why=$(grep -m1 "executor API: peer refused in the TLS handshake: .*measurements.executor.measurement" \
  "$W/n1/server.log") || fail "the node did not log the refused measurement"
case "$why" in *"the executor's measurement $(meas xw) is not one of the 1 expected"*) ;;
  *) fail "the node's refusal does not name the executor's measurement: $why" ;; esac
ok "5. an executor with a wrong measurement claimed nothing (task still staged; node: ${why#*failed: })"

# ---- reference GBDT run on a healthy cluster (x1 alone, gate open) -------------------------
touch "$W/x1/gate"
executor x1 --slots 2
T0=$(gbdt_task)
as alice task wait "$T0" --timeout 90 >/dev/null || fail "reference GBDT task: $(st "$T0")"
as alice task result "$T0" --slot model --key "$W/c/$T0.alice.key" --out "$W/c/gbdt.want" >/dev/null
jq -e '(.learner.gradient_booster.model.trees | length) == 10 and .learner.feature_names == ["age","bp"]' \
  "$W/c/gbdt.want" >/dev/null || fail "reference model: $(head -c 200 "$W/c/gbdt.want")"
as alice task wait "$T5" --timeout 60 >/dev/null || fail "echo task $T5 after a good executor: $(st "$T5")"
ok "reference run: GBDT model of 10 trees (features age, bp); the staged echo task ran on x1"

# ---- scenario 2: kill -9 an executor mid-task ---------------------------------------------
rm -f "$W/x1/gate"
n0=$(workers x1)
TP=$(psi_task)
TG=$(gbdt_task)
poll "x1's two workers" 60 more x1 $((n0 + 2))
if ! is "$TP" running || ! is "$TG" running; then
  fail "want both running: $(st "$TP") $(st "$TG")"
fi
touch "$W/x2/gate"
executor x2 --slots 2 # idle: both tasks are held by x1
stop x1               # the executor and its gated workers
T_K=$(now)
log "kill -9 of x1 holding PSI $TP and GBDT $TG"
both_finished() { is "$TP" finished && is "$TG" finished; }
poll "the tasks to run elsewhere" 90 both_finished
log "both finished $(elapsed "$T_K" "$(now)") s after the kill"
check_psi "$TP"
check_gbdt "$TG"
for t in "$TP" "$TG"; do
  logged "$W/n1/server.log" "task $t: the executor's lease (fencing token 1) expired" ||
    fail "no lease expiry logged for $t"
  logged "$W/x2/ex.log" "task $t running (.*fencing token 2)" || fail "$t not run by x2 under token 2"
done
no_leftovers "scenario 2"
ok "2. executor killed mid-task: leases expired, x2 ran both (token 2); alice and bob decrypt the PSI result, the model equals the reference, one 'task finished' each ($(events "$TP"))"

# ---- scenario 4: partition the holder, heal, its late report is fenced ------------------
stop x2
rm -f "$W/x1/gate" "$W/x2/gate"
: >"$W/x1/ex.log"
executor x1 --slots 2
n1=$(workers x1)
T4=$(psi_task)
poll "x1's worker" 60 more x1 $((n1 + 1))
is "$T4" running || fail "T4 is $(st "$T4")"
nsx_link x1 down
log "x1 holds PSI $T4; its link is down"
poll "the partitioned holder's lease to expire" 60 logged "$W/n1/server.log" "task $T4: the executor's lease (fencing token 1) expired"
n2=$(workers x2)
executor x2 --slots 2
poll "x2 to claim T4 (token 2)" 60 more x2 $((n2 + 1))
is "$T4" running || fail "T4 is $(st "$T4")"
# the old holder finishes while cut off, then the link comes back
touch "$W/x1/gate"
wp=$(tail -n 1 "$W/x1/started")
poll "x1's worker to end" 60 eval '! kill -0 '"$wp"' 2>/dev/null'
nsx_link x1 up
log "x1's link is up again; its worker finished while cut off"
fenced() {
  logged "$W/n1/server.log" "task $T4: refused a report with fencing token 1" ||
    logged "$W/x1/ex.log" "task $T4: lease lost (fencing token 1)"
}
poll "the old holder's report to be refused" 90 fenced
is "$T4" running || fail "the late report changed T4: $(st "$T4")"
touch "$W/x2/gate"
check_psi "$T4"
no_leftovers "scenario 4"
how=$(grep -m1 "task $T4: refused a report with fencing token 1" "$W/n1/server.log" | sed 's/.*refused/refused/' | cut -c1-120 ||
  grep -m1 "task $T4: lease lost" "$W/x1/ex.log" | cut -c1-120)
ok "4. partitioned holder: task re-run by x2 (token 2); after healing, the old holder was fenced ($how); one output, both decrypt"

# ---- scenario 3: kill -9 the PostgreSQL primary ------------------------------------------
stop x1
rm -f "$W/x2/gate"
n3=$(workers x2)
T3P=$(psi_task)
T3G=$(gbdt_task)
poll "x2's two workers" 60 more x2 $((n3 + 2))
snapshot() { # tasks, files, users, audit entries seen through the node
  { as alice --output json task list | jq -r '.tasks[]?.task_id // .[]?.task_id // empty'
    for u in alice bob; do
      as "$u" --output json file list | jq -r '.files[]?.file_id // .[]?.file_id // empty'
    done
    as admin --output json user list | jq -r '.users[]?.username // .[]?.username // empty'
    as admin --output json audit list --limit 1000 | jq -r '.entries[] | "audit \(.seq // .id) \(.action) \(.object)"'
  } | LC_ALL=C sort
}
snapshot >"$W/c/before"
nb=$(wc -l <"$W/c/before")
[ "$(grep -c '^audit ' "$W/c/before")" -gt 10 ] || fail "snapshot has no audit entries: $(head -n 3 "$W/c/before")"
# probe: one GET /v1/users/me (alice) during the failover; its HTTP status
# (000: no answer) goes to $W/c/probes. A loop of them runs beside the
# accept loop (so the failover figure is not theirs) from the kill until a
# task is accepted, then one more. No other step of the script makes
# that request, so the chain must end up with exactly one such entry per
# answered probe, each with a time inside the failover window (the node
# keeps the entries the database cannot take in its local audit spool and
# appends them once it reaches the promoted primary: docs/cluster.md "Audit
# entries during a failover").
: >"$W/c/probes"
probe() {
  nsx_exec c curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 --cacert "$SERVER_CA" \
    -H "Authorization: Bearer $(cat "$W/c/alice.token")" "$SERVER/v1/users/me" >>"$W/c/probes" ||
    true
}
probe_loop() { while [ -d "$W/c" ] && [ ! -e "$W/c/probe.stop" ]; do probe; sleep 0.2; done; }
metric() { # metric NAME: its value on the node's /metrics (empty when absent)
  nsx_exec c curl -s --max-time 30 --cacert "$SERVER_CA" "$SERVER/metrics" | sed -n "s/^$1 //p"
}
spooled0=$(metric mesatee_audit_spooled_total)
[ -n "$spooled0" ] || fail "no mesatee_audit_spooled_total on the node's /metrics"
P_T0=$(date +%s)
T_KILL=$(now)
nsx_kill "$PRIMARY"
probe_loop &
PROBE_PID=$!
poll "every process of $PRIMARY to end" 10 ns_empty "$PRIMARY"
log "kill -9 of the primary $PRIMARY (Patroni + PostgreSQL); tasks $T3P $T3G in flight on x2"
accept() { # a task accepted through mesatee: created, approved, invoked
  local t
  t=$(as alice task create --function "$E5" --arg message=after 2>/dev/null) || return 1
  as alice task approve "$t" >/dev/null 2>&1 || true
  as alice task invoke "$t" >/dev/null 2>&1 || return 1
  echo "$t" >"$W/c/accepted"
}
poll "a task accepted through the node after the failover" 90 accept
T_ACC=$(now)
FAILOVER=$(elapsed "$T_KILL" "$T_ACC")
touch "$W/c/probe.stop"
wait "$PROBE_PID"
PROBE_PID=
probe # one more, answered by a node on the promoted primary
P_T1=$(($(date +%s) + 1))
# polled (30 s or more): one look could meet Patroni's REST API slow to answer
# (curl --max-time 2) on a loaded machine, or not yet showing the new role
for _ in $(seq 60); do [ "$(ha_api "$(ha_ip "$STANDBY")" primary)" = 200 ] && break; sleep 0.5; done
[ "$(ha_api "$(ha_ip "$STANDBY")" primary)" = 200 ] || fail "$STANDBY is not the primary"
log "$STANDBY promoted; first task accepted through mesatee ${FAILOVER}s after the kill"
touch "$W/x2/gate"
check_psi "$T3P"
check_gbdt "$T3G"
as alice task wait "$(cat "$W/c/accepted")" --timeout 60 >/dev/null || fail "the task accepted after the failover"
snapshot >"$W/c/after"
lost=$(LC_ALL=C comm -23 "$W/c/before" "$W/c/after" | wc -l)
[ "$lost" = 0 ] || fail "lost in the failover: $(LC_ALL=C comm -23 "$W/c/before" "$W/c/after" | head -n 5)"
ok "3. primary killed: $STANDBY promoted, node reconnected; all $nb tasks, files, users and audit entries seen before are there; the in-flight PSI and GBDT finished with the right results ($(events "$T3P"))"
# the audit entries of the requests answered during the failover: the spool
# was used and is drained into the chain; the daemon verifies every entry's
# MAC and signs a checkpoint of the chain as it stands (checked offline
# against the database at the end)
spool_empty() { [ "$(metric mesatee_audit_spool_entries)" = 0 ]; }
poll "the node's audit spool to be appended to the chain" 60 spool_empty
spooled=$(metric mesatee_audit_spooled_total)
[ "$spooled" -gt "$spooled0" ] ||
  fail "no audit entry was spooled during the failover (mesatee_audit_spooled_total $spooled0 -> $spooled)"
NPROBE=$(grep -cv '^000$' "$W/c/probes" || true)
[ "$NPROBE" -ge 2 ] || fail "only $NPROBE probes were answered during the failover: $(sort "$W/c/probes" | uniq -c | xargs)"
as admin audit checkpoint --out "$W/c/checkpoint3.json" >/dev/null ||
  fail "audit checkpoint after the failover (the daemon's MAC check of the chain)"
ok "3. audit: $((spooled - spooled0)) entries spooled during the failover and appended; the daemon verified the chain and signed checkpoint $(jq -r .entries "$W/c/checkpoint3.json"); $NPROBE probes answered ($(sort "$W/c/probes" | uniq -c | xargs))"

# ---- scenario 1: kill -9 a node mid-request --------------------------------------------
if [ -n "$JOIN" ]; then
  # n2 joins n1's KeyStore over attested TLS (--keystore-join, verifying n1
  # by the gateway policy) and shares its keys; objects: n1's directory (the
  # "shared mount")
  # (n1's keystore.url names this URL too: its listen address is not a
  # wildcard; --keystore-advertise would override it)
  KS_URL="https://$IP_N1:8445"
  mkdir -p "$W/n2/data"
  ln -s "$W/n1/data/objects" "$W/n2/data/objects"
  start_n2() {
    nsx_exec n2 "$B" serve --data-dir "$W/n2/data" --listen "$(ha_ip n2):8443" --level soft \
      --admin-password-file "$W/admin.pw" --store "$URL" --worker "$W/worker" --remote-executors \
      --executor-policy "$W/executor-policy.json" --executor-listen "$(ha_ip n2):8444" \
      --executor-lease-ms $LEASE_MS --executor-max-attempts 4 \
      --keystore-join "$KS_URL" --keystore-policy "$W/gateway-policy.json" >>"$W/n2/server.log" 2>&1 &
    disown "$!"
  }
  # first start: its platform key is not released yet (refused, it stops)
  start_n2
  # its refusal first, then its end: n2 runs in the background, so right
  # after start_n2 its namespace can still be empty (it has not started
  # yet), which ended a wait for the empty namespace at once, before n2
  # wrote anything (seen: "not refused ...: " with an empty log)
  for _ in $(seq 600); do
    logged "$W/n2/server.log" "refused by the KeyStore release policy" && break
    sleep 0.1
  done
  logged "$W/n2/server.log" "refused by the KeyStore release policy" ||
    fail "n2's first join was not refused by the release policy: $(tail -n 2 "$W/n2/server.log")"
  poll "n2 to stop after its refused join" 60 ns_empty n2
  n2_key=$(sed -n 's/.*TEE level soft: evidence measurement [0-9a-f]*, platform key \([0-9a-f]\{64\}\).*/\1/p' \
    "$W/n2/server.log" | head -n 1)
  [ ${#n2_key} = 64 ] || fail "no platform key in n2's log: $(tail -n 3 "$W/n2/server.log")"
  as admin admin release allow --kind soft_platform_key "$n2_key" >/dev/null || fail "release allow n2"
  start_n2
  poll "node n2 to join" 60 test -s "$W/n2/data/server.url"
  N2_URL=$(cat "$W/n2/data/server.url")
  # executors and clients verify either node
  jq --arg k "$n2_key" '.soft_platform_keys += [$k]' "$W/gateway-policy.json" >"$W/both.json"
  mv "$W/both.json" "$W/gateway-policy.json"
  # x2 follows n2's executor API, held at its gate
  stop x2
  rm -f "$W/x2/gate"
  EXEC_URL="https://$(ha_ip n2):8444"
  executor x2 --slots 2
  n4=$(workers x2)
  T1=$(psi_task)
  poll "x2's worker (claimed through n2)" 60 more x2 $((n4 + 1))
  # a request in flight on n1 (the long-poll wait) when n1 dies
  as alice task wait "$T1" --timeout 60 >"$W/c/wait1.out" 2>&1 &
  wpid=$!
  sleep 0.5 # let the wait reach n1 (an early kill only makes it a connect failure)
  stop n1
  log "kill -9 of node n1 with PSI $T1 running and a task wait in flight on it"
  if wait "$wpid"; then fail "the wait on n1 returned while the task was held: $(cat "$W/c/wait1.out")"; fi
  # the clients retry on n2 (same users, tokens and files: one database)
  SERVER=$N2_URL SERVER_CA=$W/n2/data/tls/server-cert.pem
  touch "$W/x2/gate"
  check_psi "$T1"
  ok "1. node n1 killed mid-request: the clients retried on n2, PSI $T1 finished once ($(events "$T1"))"
else
  echo "SKIP scenario 1: needs several nodes (cluster-nodes)"
fi

# ---- scenario 6: a whole node partitioned with a local run in flight -------------------
# n2 runs tasks itself (no --remote-executors: its own scheduler threads
# claim; the gated wrapper as its worker, gate $W/n2/gate), n1 (back after
# scenario 1, the KeyStore node) serves executors. Both run with
# --node-dead-after-ms $DEAD_MS (the default 60 s would only add CI time).
# A PSI task runs on n2 (held at its gate) when n2's link goes down. The
# clients' request to n2 fails, they retry on n1 and get answers; the
# database server ends n2's sessions (TCP keepalives, docs/cluster.md
# "Partitions and TCP keepalives"), which releases n2's liveness lock; after
# the grace n1's sweeper requeues the run, x1 (on n1) runs it once, both
# parties decrypt the right result. The link comes back: n2's run (still at
# its gate) is stopped by its cancel check and its late outcome dropped
# (log line and counter), the stored result stays, n2 takes its lock again
# and runs a new task itself.
if [ -n "$JOIN" ]; then
  T6_START=$(now)
  DEAD_MS=3000
  stop x2
  stop n2
  rm -f "$W/n1/data/server.url" "$W/n2/data/server.url"
  start_node n1 --keystore-listen "$IP_N1:8445" --node-dead-after-ms $DEAD_MS
  nsx_exec n2 "$B" serve --data-dir "$W/n2/data" --listen "$(ha_ip n2):8443" --level soft \
    --admin-password-file "$W/admin.pw" --store "$URL" --worker "$W/worker" --worker-start spawn \
    --executor-max-attempts 4 --node-dead-after-ms $DEAD_MS \
    --keystore-join "$KS_URL" --keystore-policy "$W/gateway-policy.json" >>"$W/n2/server.log" 2>&1 &
  disown "$!"
  poll "node n2 to join again (local workers)" 60 test -s "$W/n2/data/server.url"
  N1_URL=$(cat "$W/n1/data/server.url") N2_URL=$(cat "$W/n2/data/server.url")
  on_n1() { SERVER=$N1_URL SERVER_CA=$W/n1/data/tls/server-cert.pem; }
  on_n2() { SERVER=$N2_URL SERVER_CA=$W/n2/data/tls/server-cert.pem; }
  # the superuser on the current primary (scenario 3 moved it): the
  # server's view of the liveness lock and the run's node
  SQL_URL="postgresql://postgres@$IP_P1:5432,$IP_P2:5432/mesatee?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$W/tls/ca.crt&connect_timeout=3"
  sql() { PGPASSWORD=$HA_SUPER_PW nsx_exec c psql -X -q -tA -v ON_ERROR_STOP=1 "$SQL_URL" -c "$1"; }
  lock_count() { # sessions holding node $1's liveness lock (node_live.c, db_cluster.c)
    sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = 'mesatee') AND classid = $((16#${1:0:8}))::oid AND objid = $((16#${1:8:8}))::oid AND objsubid = 1"
  }
  rm -f "$W/n2/gate"
  : >"$W/n2/started"
  # no executor runs: n2's own scheduler claims the task invoked through it
  on_n2
  T6=$(psi_task)
  poll "n2 to run PSI $T6 itself" 60 logged "$W/n2/server.log" "task $T6 running"
  poll "n2's worker" 60 more n2 1
  is "$T6" running || fail "T6 is $(st "$T6")"
  NODE6=$(sql "SELECT run_node FROM tasks WHERE task_id = '$T6'")
  [[ $NODE6 =~ ^[0-9a-f]{16}$ ]] || fail "T6's run_node: '$NODE6'"
  [ "$(lock_count "$NODE6")" -ge 1 ] || fail "n2 ($NODE6) holds no liveness lock before the partition"
  dropped0=$(metric mesatee_scheduler_outcomes_dropped_total)
  lost0=$(metric mesatee_node_liveness_lock_lost_total)
  if [ -z "$dropped0" ] || [ -z "$lost0" ]; then fail "n2's /metrics lacks the scheduler or liveness counters"; fi
  nsx_link n2 down
  T_P=$(now)
  log "n2 (node id $NODE6) runs PSI $T6; its link is down"
  EXEC_URL="https://$IP_N1:8444"
  touch "$W/x1/gate"
  executor x1 --slots 2
  # the clients: n2 does not answer (the client's connect timeout, 10 s);
  # they retry on n1, which answers
  rc=0
  nsx_exec c timeout 60 env MESATEE_TOKEN_FILE="$W/c/alice.token" MESATEE_SERVER="$N2_URL" \
    MESATEE_CA="$W/n2/data/tls/server-cert.pem" MESATEE_CONFIG="$W/no-config" "$B" task show "$T6" \
    >"$W/c/cut.out" 2>&1 || rc=$?
  [ $rc -ne 0 ] || fail "the cut-off node answered: $(head -c 200 "$W/c/cut.out")"
  grep -Eq 'cannot connect to|timed out' "$W/c/cut.out" ||
    fail "the request to the cut-off node (exit $rc): $(head -c 200 "$W/c/cut.out")"
  CUT_S=$(elapsed "$T_P" "$(now)")
  on_n1
  is "$T6" running || fail "through n1: T6 is $(st "$T6")"
  # the server releases n2's lock when it ends n2's sessions
  released() { [ "$(lock_count "$NODE6" 2>/dev/null)" = 0 ]; }
  for _ in $(seq 240); do released && break; sleep 0.5; done
  released || fail "n2's liveness lock still held 120 s after the partition"
  LOCK_S=$(elapsed "$T_P" "$(now)")
  log "the database released n2's liveness lock ${LOCK_S}s after the partition"
  poll "n1 to requeue n2's run" 60 logged "$W/n1/server.log" \
    "task $T6: the node that ran it stopped (node id $NODE6, without its liveness lock"
  REQUEUE_S=$(elapsed "$T_P" "$(now)")
  check_psi "$T6"
  DONE_S=$(elapsed "$T_P" "$(now)")
  logged "$W/x1/ex.log" "task $T6 running" || fail "$T6 not run by x1"
  ev6=$(events "$T6")
  cnt6() { tr ',' '\n' <<<"$ev6" | grep -cx "$1" || true; }
  if [ "$(cnt6 'task requeued (node stopped)')" != 1 ] || [ "$(cnt6 'task running')" != 2 ] ||
    [ "$(cnt6 'task finished')" != 1 ]; then fail "T6's audit: $ev6"; fi
  res6=$(as alice --output json task show "$T6" | jq -c .result)
  log "requeued ${REQUEUE_S}s, finished on n1/x1 ${DONE_S}s after the partition"
  ok "6. node n2 partitioned with PSI $T6 running on it: the clients' request to n2 failed (${CUT_S}s after the partition: $(grep -Eom1 'cannot connect to|timed out' "$W/c/cut.out")), they retried on n1 and got answers; the server released n2's liveness lock after ${LOCK_S}s, n1 requeued the run after the ${DEAD_MS} ms grace, x1 ran it once; both decrypt ($ev6)"
  # the link comes back: n2's run is no longer its own
  nsx_link n2 up
  T_H=$(now)
  poll "n2's late outcome to be dropped" 90 logged "$W/n2/server.log" \
    "task $T6: outcome of attempt [0-9]* dropped: the task is no longer this node's run"
  DROP_S=$(elapsed "$T_H" "$(now)")
  on_n2
  held() { [ "$(metric mesatee_node_liveness_lock_held)" = 1 ]; }
  poll "n2 to hold its liveness lock again" 60 held
  dropped1=$(metric mesatee_scheduler_outcomes_dropped_total)
  lost1=$(metric mesatee_node_liveness_lock_lost_total)
  [ "$dropped1" -gt "$dropped0" ] || fail "mesatee_scheduler_outcomes_dropped_total $dropped0 -> $dropped1"
  [ "$lost1" -gt "$lost0" ] || fail "mesatee_node_liveness_lock_lost_total $lost0 -> $lost1"
  # nothing changed: one outcome, the same result, both still decrypt it
  # (a download checks the SHA-256 recorded with the outcome)
  [ "$(events "$T6")" = "$ev6" ] || fail "T6's audit after the heal: $(events "$T6")"
  [ "$(as alice --output json task show "$T6" | jq -c .result)" = "$res6" ] || fail "T6's result changed"
  check_psi "$T6"
  no_leftovers "scenario 6"
  # n2 serves and runs tasks itself again (no executor left)
  stop x1
  touch "$W/n2/gate"
  T6E=$(as alice task create --function "$E5" --arg message=six)
  as alice task approve "$T6E" >/dev/null 2>&1 || true
  as alice task invoke "$T6E" >/dev/null
  as alice task wait "$T6E" --timeout 60 >/dev/null || fail "echo task on n2 after the heal: $(st "$T6E")"
  logged "$W/n2/server.log" "task $T6E running" || fail "n2 did not run $T6E itself"
  ok "6. link back: n2's late outcome of $T6 dropped ${DROP_S}s after the heal (dropped_total $dropped0 -> $dropped1, liveness lock lost $lost0 -> $lost1), one outcome and the result unchanged; n2 holds its lock again and ran echo $T6E itself"
  echo "partition_lock_release_s=$LOCK_S"
  echo "partition_requeue_s=$REQUEUE_S"
  echo "scenario6_s=$(elapsed "$T6_START" "$(now)")"
else
  echo "SKIP scenario 6: needs several nodes (cluster-nodes)"
fi

# ---- the audit chain over everything ------------------------------------------------
pids="$(ns_pids n1) $(ns_pids n2)"
# shellcheck disable=SC2086
[ -z "${pids// /}" ] || kill -TERM $pids 2>/dev/null || true
poll "node n1 to stop" 30 ns_empty n1
poll "node n2 to stop" 30 ns_empty n2
verified=$(nsx_exec n1 "$B" --output json audit verify --data-dir "$W/n1/data" --store "$URL") ||
  fail "audit verify --store: $verified"
ne=$(jq -r .entries <<<"$verified")
[ "$ne" -ge "$(grep -c '^audit ' "$W/c/before")" ] || fail "audit verify: $verified"
ok "audit verify on the promoted primary: chain intact, $ne entries"
verified=$(nsx_exec n1 "$B" --output json audit verify --data-dir "$W/n1/data" --store "$URL" \
  --checkpoint "$W/c/checkpoint3.json") || fail "audit verify --checkpoint (after the failover): $verified"
nsx_exec n1 "$B" audit export --data-dir "$W/n1/data" --store "$URL" --since 1 \
  --out "$W/c/audit.jsonl" >/dev/null || fail "audit export --store"
# exactly one entry per answered probe, each timed inside the failover window
# (kill .. the last probe), with the status it was answered with
jq -r 'select(.action == "GET /v1/users/me") | "\(.time) \(.status)"' "$W/c/audit.jsonl" >"$W/c/probe.entries"
ne=$(wc -l <"$W/c/probe.entries")
[ "$ne" = "$NPROBE" ] ||
  fail "$NPROBE requests were answered during the failover, the chain has $ne entries for them"
inside=$(awk -v a="$P_T0" -v b="$P_T1" '$1 >= a && $1 <= b' "$W/c/probe.entries" | wc -l)
[ "$inside" = "$NPROBE" ] ||
  fail "$inside of the $NPROBE failover entries keep the time they were answered at ($P_T0..$P_T1)"
got=$(awk '{print $2}' "$W/c/probe.entries" | sort | uniq -c | xargs)
want=$(grep -v '^000$' "$W/c/probes" | sort | uniq -c | xargs)
[ "$got" = "$want" ] || fail "the failover entries' statuses ($got) are not the answers ($want)"
ok "audit after the failover: the chain matches the checkpoint taken after it; each of the $NPROBE requests answered during the failover has its entry ($got), timed inside it"
echo "failover_task_s=$FAILOVER"
echo "run_s=$(elapsed "$T_START" "$(now)")"
echo "ok - failure"
