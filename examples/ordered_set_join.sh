#!/usr/bin/env bash
# ordered_set_join: a shop and a bank join their sorted tables on the id;
# only the shop receives the joined rows.
# Usage: examples/ordered_set_join.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start shop bank
mkdir -p "$MT_WORK/plain"
printf 'id,item\nu01,pen\nu03,"ink, blue"\nu05,pad\n' > "$MT_WORK/plain/shop.csv"
printf 'id,balance\nu02,5\nu03,7\nu05,9\n' > "$MT_WORK/plain/bank.csv"
FN=$(as shop function register --name osj --builtin ordered_set_join --public \
  --input-slot a_shop --input-slot b_bank --output-slot joined)
bl_task shop "$FN" "in:a_shop=shop=$(bl_input shop "$MT_WORK/plain/shop.csv")" \
  "in:b_bank=bank=$(bl_input bank "$MT_WORK/plain/bank.csv")" \
  "out:joined=shop=$(bl_output shop joined)"
say "$BL_WAIT"
bl_result shop joined joined "$MT_WORK/joined.csv"
printf 'id,item,balance\nu03,"ink, blue",7\nu05,pad,9\n' > "$MT_WORK/want.csv"
bl_expect_file "$MT_WORK/joined.csv" "$MT_WORK/want.csv" "joined rows"
