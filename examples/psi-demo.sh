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
# Usage: examples/psi-demo.sh [BUILD_DIR]   (N=100000 by default; env N, OVERLAP)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
N=${N:-100000}
OVERLAP=${OVERLAP:-12345}
[ -x "$MESATEE_BIN" ] || { echo "demo: $MESATEE_BIN not built (run scripts/demo)" >&2; exit 1; }
source tests/integration/lib.sh

now_ms() { date +%s%3N; }
t0=$(now_ms)
say() { awk -v ms="$(( $(now_ms) - t0 ))" -v m="$*" 'BEGIN { printf "[%6.2fs] %s\n", ms / 1000, m }'; }

say "starting mesatee serve (level none, embedded SQLite store) in $MT_DATA"
mt_start_server
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
say "demo done"
