#!/usr/bin/env bash
# ordered_set_intersect: a shop and a bank, each with a sorted id column,
# each learn which of their own rows the other one also has.
# Usage: examples/ordered_set_intersect.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start shop bank
mkdir -p "$MT_WORK/plain"
printf 'id,item\nu01,pen\nu03,ink\nu05,pad\n' > "$MT_WORK/plain/shop.csv"
printf 'id,balance\nu02,5\nu03,7\nu05,9\nu08,1\n' > "$MT_WORK/plain/bank.csv"
# outputs pair with inputs in slot-name order: a_shop -> a_shop_flags, b_bank -> b_bank_flags
FN=$(as shop function register --name osi --builtin ordered_set_intersect --public \
  --input-slot a_shop --input-slot b_bank --output-slot a_shop_flags --output-slot b_bank_flags)
bl_task shop "$FN" "in:a_shop=shop=$(bl_input shop "$MT_WORK/plain/shop.csv")" \
  "in:b_bank=bank=$(bl_input bank "$MT_WORK/plain/bank.csv")" \
  "out:a_shop_flags=shop=$(bl_output shop flags)" "out:b_bank_flags=bank=$(bl_output bank flags)"
say "$BL_WAIT"
bl_result shop a_shop_flags flags "$MT_WORK/shop.flags"
bl_result bank b_bank_flags flags "$MT_WORK/bank.flags"
printf 'id,member\nu01,0\nu03,1\nu05,1\n' > "$MT_WORK/want.shop"
printf 'id,member\nu02,0\nu03,1\nu05,1\nu08,0\n' > "$MT_WORK/want.bank"
bl_expect_file "$MT_WORK/shop.flags" "$MT_WORK/want.shop" "shop's membership flags"
bl_expect_file "$MT_WORK/bank.flags" "$MT_WORK/want.bank" "bank's membership flags"
