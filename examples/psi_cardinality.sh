#!/usr/bin/env bash
# psi_cardinality: two companies learn only how many customers they share.
# Usage: examples/psi_cardinality.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start acme globex
mkdir -p "$MT_WORK/plain"
seq -f "cust-%05g" 1 3000 > "$MT_WORK/plain/acme.txt"
seq -f "cust-%05g" 2001 9000 > "$MT_WORK/plain/globex.txt"
FN=$(as acme function register --name card --builtin psi_cardinality --public \
  --input-slot acme --input-slot globex)
bl_task acme "$FN" "in:acme=acme=$(bl_input acme "$MT_WORK/plain/acme.txt")" \
  "in:globex=globex=$(bl_input globex "$MT_WORK/plain/globex.txt")"
say "$BL_WAIT"
[ "$BL_WAIT" = "finished: 1000" ] || fail "unexpected: $BL_WAIT"
ok "only the size of the intersection (1000) was revealed"
