#!/usr/bin/env bash
# Three organisations compute a private set intersection through mesatee.
#
# Each organisation (a hospital, a bank, an insurer) holds a list of N customer
# ids. They want the ids all three share, without any of them seeing the others'
# lists. Each encrypts its list locally with a fresh key, uploads the
# ciphertext, and registers an output file under its own key; the hospital
# registers the PSI function and creates the task; all three assign their data
# and approve; the task runs in a sandboxed worker; each downloads and decrypts
# only its own result and checks it against the expected intersection.
#
# With --level soft or tpm2 the server attests itself: the demo reads the
# server's claims once (`mesatee attest show`; trust on first use of the soft
# platform key or the TPM's AK), checks the measurement against `mesatee
# measure` of the installed files, writes a policy, and every organisation's
# client verifies the server against that policy inside the TLS handshake
# (`--policy`, no certificate pinning). Level tpm2 runs its own swtpm.
#
# Usage: examples/psi-demo.sh [--level none|soft|tpm2] [BUILD_DIR]
#   env: N (100000), OVERLAP, LEVEL (same as --level; default none),
#        DEMO_EXPORT=DIR (after the run, copy the server's data dir, admin
#        password, policy and TPM state there, for tests)
set -euo pipefail
cd "$(dirname "$0")/.."
LEVEL=${LEVEL:-none}
BUILD=build
while [ $# -gt 0 ]; do
  case $1 in
    --level) [ $# -ge 2 ] || { echo "demo: --level needs a value" >&2; exit 2; }; LEVEL=$2; shift 2 ;;
    --level=*) LEVEL=${1#--level=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) BUILD=$1; shift ;;
  esac
done
case $LEVEL in none|soft|tpm2) ;; *) echo "demo: LEVEL must be none, soft or tpm2 (got '$LEVEL')" >&2; exit 2 ;; esac
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
N=${N:-100000}
OVERLAP=${OVERLAP:-12345}
[ -x "$MESATEE_BIN" ] || { echo "demo: $MESATEE_BIN not built (run scripts/demo)" >&2; exit 1; }
if [ "$LEVEL" = tpm2 ] && ! command -v swtpm >/dev/null; then
  echo "SKIP: demo at level tpm2 needs swtpm (Debian: apt install swtpm swtpm-tools)"; exit 0
fi
if [ "$LEVEL" != none ] && ! command -v jq >/dev/null; then
  echo "demo: level $LEVEL needs jq to read the server's claims" >&2; exit 1
fi
source tests/integration/lib.sh

now_ms() { date +%s%3N; }
t0=$(now_ms)
say() { awk -v ms="$(( $(now_ms) - t0 ))" -v m="$*" 'BEGIN { printf "[%6.2fs] %s\n", ms / 1000, m }'; }

serve_args=(--level "$LEVEL")
if [ "$LEVEL" = tpm2 ]; then
  mt_start_swtpm
  serve_args+=(--tpm2-tcti "$MT_TCTI")
  say "started a software TPM (swtpm, state in $MT_WORK/tpm) at $MT_TCTI"
fi
say "starting mesatee serve (level $LEVEL, embedded SQLite store) in $MT_DATA"
mt_start_server "${serve_args[@]}"
verified="clients pinned the server's certificate file (level none: no attestation)"
if [ "$LEVEL" != none ]; then
  # First contact: read the claims once (handshake only, nothing sent) and
  # trust on first use the platform key (soft) or the TPM's AK (tpm2).
  unset MESATEE_CA
  show=$("$MESATEE_BIN" attest show --output json) || { echo "demo: attest show failed: $show" >&2; exit 1; }
  [ "$(jget "$show" .kind)" = "$LEVEL" ] || { echo "demo: server presents $(jget "$show" .kind) evidence, not $LEVEL" >&2; exit 1; }
  POLICY=$MT_WORK/policy.json
  if [ "$LEVEL" = soft ]; then
    meas=$(jget "$show" .measurements.measurement); key=$(jget "$show" .soft_platform_key)
    ref=$("$MESATEE_BIN" measure --level soft)
    [ "$meas" = "$ref" ] || { echo "demo: the server's measurement $meas is not the one of the installed files ($ref)" >&2; exit 1; }
    say "attest show (TOFU): kind soft, measurement $meas (= mesatee measure of the installed files), platform key $key"
    jq -n --arg m "$meas" --arg k "$key" '{mesatee_policy: 1, allowed_kinds: ["soft"], min_level: "soft",
      measurements: {gateway: {measurement: [$m]}}, soft_platform_keys: [$k], max_evidence_age_s: 86400,
      comment: "psi-demo: soft measurement and platform key, trusted on first use"}' > "$POLICY"
    verified="every client verified the server's soft evidence (measurement ${meas:0:16}..., platform key ${key:0:16}...) against the demo policy inside the TLS handshake"
  else
    # The AK is pinned (tpm2_aks): an AK is trusted only when pinned or
    # enrolled. This demo's swtpm has no EK certificate, so TOFU it is; with a
    # real TPM, enrol it (mesatee attest tpm-enroll, docs/attestation.md).
    pcr=$(jget "$show" .measurements.pcr23); ak=$(jget "$show" .tpm2_ak)
    ref=$("$MESATEE_BIN" measure --level tpm2)
    [ "$pcr" = "$ref" ] || { echo "demo: the server's pcr23 $pcr is not the one of the installed files ($ref)" >&2; exit 1; }
    say "attest show (TOFU): kind tpm2, pcr23 $pcr (= mesatee measure --level tpm2), TPM AK $ak"
    jq -n --arg p "$pcr" --arg a "$ak" '{mesatee_policy: 1, allowed_kinds: ["tpm2"], min_level: "tpm2",
      measurements: {gateway: {pcr23: [$p]}}, tpm2_aks: [$a], max_evidence_age_s: 86400,
      comment: "psi-demo: application PCR and TPM AK, trusted on first use"}' > "$POLICY"
    verified="every client verified the server's TPM quote (pcr23 ${pcr:0:16}..., AK ${ak:0:16}...) against the demo policy inside the TLS handshake"
  fi
  export MESATEE_POLICY=$POLICY
  out=$("$MESATEE_BIN" attest verify --output json) || { echo "demo: policy check failed: $out" >&2; exit 1; }
  say "wrote $POLICY; every organisation's client uses --policy (no certificate pinning)"
fi
mt_login admin
orgs=(hospital bank insurer)
for o in "${orgs[@]}"; do mt_add_user "$o"; done
say "admin registered ${orgs[*]}; each logged in with its own token"

# Ids: OVERLAP shared by all three; every pair shares some more; the rest private.
mkdir -p "$MT_WORK/plain"
gen() { # gen ORG PAIR1 PAIR2
  local o=$1
  {
    seq -f "shared-%08g" 1 "$OVERLAP"
    seq -f "$2-%08g" 1 5000
    seq -f "$3-%08g" 1 5000
    seq -f "$o-only-%08g" 1 $((N - OVERLAP - 10000))
  } | shuf --random-source=<(yes "$o") > "$MT_WORK/plain/$o.txt"
}
gen hospital pair-hb pair-hi
gen bank pair-hb pair-bi
gen insurer pair-hi pair-bi
say "each organisation has $N ids ($(wc -c < "$MT_WORK/plain/hospital.txt") bytes); $OVERLAP are common to all three"

declare -A IN_FILE OUT_FILE
for o in "${orgs[@]}"; do
  as "$o" file encrypt --in "$MT_WORK/plain/$o.txt" --out "$MT_WORK/$o.enc" --key-out "$MT_WORK/$o.key"
  url=$(as "$o" file upload "$MT_WORK/$o.enc")
  IN_FILE[$o]=$(as "$o" file register "$url" --key "$MT_WORK/$o.key" --name "$o ids")
  "$MESATEE_BIN" key generate --out "$MT_WORK/$o.out.key" >/dev/null
  OUT_FILE[$o]=$(as "$o" file register-output --key "$MT_WORK/$o.out.key" --name "$o psi result")
done
say "each encrypted its list locally (AES-256-GCM, chunked), uploaded only ciphertext, registered input + output files"

FN=$(as hospital function register --name psi3 --builtin psi --description "3-party PSI" \
  --input-slot hospital_ids --input-slot bank_ids --input-slot insurer_ids \
  --output-slot hospital_result --output-slot bank_result --output-slot insurer_result --public)
TASK=$(as hospital task create --function "$FN" \
  --input hospital_ids=hospital --input bank_ids=bank --input insurer_ids=insurer \
  --output hospital_result=hospital --output bank_result=bank --output insurer_result=insurer)
say "hospital registered function $FN (built-in psi) and created task $TASK"
for o in "${orgs[@]}"; do
  as "$o" task assign "$TASK" --input "${o}_ids=${IN_FILE[$o]}" --output "${o}_result=${OUT_FILE[$o]}" >/dev/null
done
for o in "${orgs[@]}"; do as "$o" task approve "$TASK" >/dev/null; done
say "all three assigned their files and approved the task"
as hospital task invoke "$TASK" >/dev/null
ti=$(now_ms)
as hospital task wait "$TASK" --timeout 120
say "task finished in $(( $(now_ms) - ti )) ms after invoke"

sort "$MT_WORK/plain/hospital.txt" > "$MT_WORK/h.s"; sort "$MT_WORK/plain/bank.txt" > "$MT_WORK/b.s"; sort "$MT_WORK/plain/insurer.txt" > "$MT_WORK/i.s"
comm -12 "$MT_WORK/h.s" "$MT_WORK/b.s" | comm -12 - "$MT_WORK/i.s" | LC_ALL=C sort > "$MT_WORK/expected.txt"
for o in "${orgs[@]}"; do
  as "$o" task result "$TASK" --slot "${o}_result" --key "$MT_WORK/$o.out.key" --out "$MT_WORK/$o.result.txt"
  if ! cmp -s <(LC_ALL=C sort "$MT_WORK/$o.result.txt") "$MT_WORK/expected.txt"; then
    echo "demo: $o's result differs from the expected intersection" >&2; exit 1
  fi
  # Nobody else can read it: another organisation's download is refused.
  for other in "${orgs[@]}"; do
    [ "$other" = "$o" ] && continue
    if as "$other" file download "${OUT_FILE[$o]}" --out "$MT_WORK/steal" 2>/dev/null; then
      echo "demo: $other could download $o's result" >&2; exit 1
    fi
  done
  say "$o decrypted its result with its own key: $(wc -l < "$MT_WORK/$o.result.txt") ids, equal to the expected intersection"
done
as hospital --output json task show "$TASK" | jq -c '{status, metering}' | sed 's/^/         metering: /'
say "each party saw only its own data and its own result; the server and the other parties saw only ciphertext"
mt_stop_server
"$MESATEE_BIN" audit verify --data-dir "$MT_DATA"
mt_stop_swtpm
if [ -n "${DEMO_EXPORT:-}" ]; then
  mkdir -p "$DEMO_EXPORT"
  cp -a "$MT_DATA" "$DEMO_EXPORT/data"
  cp "$MT_WORK/admin.pw" "$DEMO_EXPORT/admin.pw"
  [ -z "${POLICY:-}" ] || cp "$POLICY" "$DEMO_EXPORT/policy.json"
  [ ! -d "$MT_WORK/tpm" ] || cp -a "$MT_WORK/tpm" "$DEMO_EXPORT/tpm"
fi
say "demo done at level $LEVEL: $verified"
