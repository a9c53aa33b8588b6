#!/usr/bin/env bash
# PSI benchmark, all in one run:
#  1. bench_psi: our PSI compute at 2 x 2^20, 2 x 2^24 and 5 x 2^20 ids
#     beside a plain in-memory join (the floor) and an ECDH-PSI baseline on
#     libsodium ristretto255, with the targets (thread CPU, best of N).
#  2. End to end through a real server: two parties each encrypt, upload and
#     register 2^20 ids, assign, approve, invoke, wait, download and decrypt.
# Usage: bench/psi/run.sh [BUILD_DIR]   (default build; env LOG2N=20 for the
#        end-to-end size, PSI_BENCH_BIG=0 skips the 2 x 2^24 compute case)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
LOG2N=${LOG2N:-20}
N=$((1 << LOG2N))
export MESATEE_BIN=$PWD/$BUILD/src/cli/mesatee
[ -x "$BUILD/bench/psi/bench_psi" ] && [ -x "$MESATEE_BIN" ] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }
echo "== PSI compute (in-process)"
"$BUILD/bench/psi/bench_psi"

echo
echo "== PSI end to end through mesatee serve, 2 parties x 2^$LOG2N ids"
source tests/integration/lib.sh
mt_start_server
mt_login admin
mt_add_user alice
mt_add_user bob
# Random 16-hex-digit ids; half of each list is shared.
gen() { awk -v n="$N" -v seed="$1" -v shared=$((N / 2)) 'BEGIN {
  srand(seed); for (i = 0; i < n; i++) {
    if (i < shared) { srand(7 + i); } 
    printf "%08x%08x\n", int(rand() * 4294967296), int(rand() * 4294967296)
    if (i < shared) srand(seed * 1000003 + i)
  } }' > "$MT_WORK/$2.txt"; }
gen 1 alice; gen 2 bob
"$MESATEE_BIN" key generate --out "$MT_WORK/alice.out.key" >/dev/null
"$MESATEE_BIN" key generate --out "$MT_WORK/bob.out.key" >/dev/null
FN=$(as alice function register --name psi2 --builtin psi --input-slot a --input-slot b --output-slot ra --output-slot rb --public)
T=$(as alice task create --function "$FN" --input a=alice --input b=bob --output ra=alice --output rb=bob)
ms() { date +%s%3N; }
t0=$(ms)
party() { # party USER SLOT_IN SLOT_OUT
  local u=$1 f o
  as "$u" file encrypt --in "$MT_WORK/$u.txt" --out "$MT_WORK/$u.enc" --key-out "$MT_WORK/$u.key" >/dev/null
  f=$(as "$u" file register "$(as "$u" file upload "$MT_WORK/$u.enc")" --key "$MT_WORK/$u.key")
  o=$(as "$u" file register-output --key "$MT_WORK/$u.out.key")
  as "$u" task assign "$T" --input "$2=$f" --output "$3=$o" >/dev/null
}
party alice a ra & p1=$!
party bob b rb & p2=$!
wait $p1 $p2
as alice task approve "$T" >/dev/null
as bob task approve "$T" >/dev/null
t1=$(ms)
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 120 >/dev/null
t2=$(ms)
as alice task result "$T" --slot ra --key "$MT_WORK/alice.out.key" --out "$MT_WORK/ra.txt" >/dev/null &
p1=$!
as bob task result "$T" --slot rb --key "$MT_WORK/bob.out.key" --out "$MT_WORK/rb.txt" >/dev/null &
p2=$!
wait $p1 $p2
t3=$(ms)
met=$(as alice --output json task show "$T" | jq -c .metering)
expect=$(sort "$MT_WORK/alice.txt" "$MT_WORK/bob.txt" | uniq -d | wc -l)
got=$(wc -l < "$MT_WORK/ra.txt")
[ "$got" = "$expect" ] || { echo "bench: intersection $got != expected $expect" >&2; exit 1; }
cmp -s "$MT_WORK/ra.txt" "$MT_WORK/rb.txt" || { echo "bench: results differ" >&2; exit 1; }
printf '\n%-52s %10s %12s\n' "step (2 parties x $N ids, intersection $got)" "ms" "target"
printf '%-52s %10d %12s\n' "encrypt+upload+register+assign (parallel), approve" $((t1 - t0)) ""
printf '%-52s %10d %12s\n' "invoke -> finished (scheduler + worker)" $((t2 - t1)) ""
printf '%-52s %10s %12s\n' "  worker wall ms (metering)" "$(jget "$met" .wall_ms)" ""
printf '%-52s %10s %12s\n' "  worker cpu ms: fetch+decrypt+PSI+encrypt" "$(jget "$met" .cpu_ms)" ""
printf '%-52s %10d %12s\n' "download+decrypt (parallel)" $((t3 - t2)) ""
printf '%-52s %10d %12s\n' "whole round trip" $((t3 - t0)) "<= 3000"
mt_stop_server
