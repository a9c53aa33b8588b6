#!/usr/bin/env bash
# sql: a clean room. Two parties each bring a table; the exact query is part
# of the task every participant approves; the platform enforces read-only
# tables, max_rows and a minimum group size of 2 (the east group is
# suppressed). The result is checked against the sqlite3 shell on plaintext.
# Usage: examples/sql.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start retailer telco
mkdir -p "$MT_WORK/plain"
printf 'customer,region,amount\n1,north,30\n2,north,12.5\n3,south,8\n4,south,20\n5,east,99\n6,north,1\n' \
  > "$MT_WORK/plain/sales.csv"
printf 'customer,plan\n1,gold\n2,basic\n3,gold\n4,gold\n5,gold\n6,basic\n' > "$MT_WORK/plain/plans.csv"
Q="SELECT s.region, p.plan, COUNT(*) AS __group_size, SUM(s.amount) AS total FROM sales s JOIN plans p USING (customer) GROUP BY s.region, p.plan ORDER BY s.region, p.plan"
FN=$(as retailer function register --name cleanroom --builtin sql --public \
  --input-slot sales --input-slot plans --output-slot result \
  --arg "query=$Q" --arg min_group_size=2 --arg max_rows=100)
bl_task retailer "$FN" "in:sales=retailer=$(bl_input retailer "$MT_WORK/plain/sales.csv")" \
  "in:plans=telco=$(bl_input telco "$MT_WORK/plain/plans.csv")" \
  "out:result=retailer=$(bl_output retailer result)"
say "$BL_WAIT"
bl_result retailer result result "$MT_WORK/result.csv"
if command -v sqlite3 >/dev/null; then
  sqlite3 :memory: \
    "CREATE TABLE sales(customer INTEGER, region TEXT, amount REAL)" \
    "CREATE TABLE plans(customer INTEGER, plan TEXT)" \
    ".mode csv" ".import --skip 1 $MT_WORK/plain/sales.csv sales" \
    ".import --skip 1 $MT_WORK/plain/plans.csv plans" ".headers on" \
    "SELECT * FROM ($Q) WHERE __group_size >= 2" | tr -d '\r' > "$MT_WORK/want.csv"
else
  printf 'region,plan,__group_size,total\nnorth,basic,2,13.5\nsouth,gold,2,28.0\n' > "$MT_WORK/want.csv"
fi
bl_expect_file "$MT_WORK/result.csv" "$MT_WORK/want.csv" "clean-room result (groups below 2 suppressed)"
# the same function refuses a query that writes
FW=$(as retailer function register --name bad --builtin sql --public --input-slot sales \
  --arg "query=DELETE FROM sales")
SALES_ID=$(bl_input retailer "$MT_WORK/plain/sales.csv")
if (bl_task retailer "$FW" "in:sales=retailer=$SALES_ID") >/dev/null 2>&1; then
  fail "a DELETE query ran"
fi
ok "a DELETE query was refused by the platform"
