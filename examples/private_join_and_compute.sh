#!/usr/bin/env bash
# private_join_and_compute: three retailers learn the total spend of the
# customers they all share, and nothing about the others' customers.
# Usage: examples/private_join_and_compute.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start north south east
mkdir -p "$MT_WORK/plain"
printf 'id,value\nc1,10\nc2,20\nc3,30\nc4,1\n' > "$MT_WORK/plain/north.csv"
printf 'id,value\nc2,5\nc4,2\nc1,0.5\nc9,99\n' > "$MT_WORK/plain/south.csv"
printf 'value,id\n7,c4\n1,c1\n3,c5\n' > "$MT_WORK/plain/east.csv"
FN=$(as north function register --name pjc --builtin private_join_and_compute --public \
  --input-slot north --input-slot south --input-slot east --output-slot north_out \
  --output-slot south_out --arg aggregate=sum)
args=()
for p in north south east; do
  args+=("in:$p=$p=$(bl_input "$p" "$MT_WORK/plain/$p.csv")")
done
args+=("out:north_out=north=$(bl_output north out)" "out:south_out=south=$(bl_output south out)")
bl_task north "$FN" "${args[@]}"
say "$BL_WAIT"
[ "$BL_WAIT" = "finished: intersection size: 2" ] || fail "unexpected: $BL_WAIT"
printf 'id,sum\nc1,11.5\nc4,10\n' > "$MT_WORK/want.csv"
for p in north south; do
  bl_result "$p" "${p}_out" out "$MT_WORK/$p.result.csv"
  bl_expect_file "$MT_WORK/$p.result.csv" "$MT_WORK/want.csv" "$p's decrypted result"
done
say "private_join_and_compute example done"
