#!/usr/bin/env bash
# pca: two labs pool sensor readings; lab1 gets the principal components
# (covariance + Jacobi eigen-decomposition), lab2 the projected rows.
# Usage: examples/pca.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start lab1 lab2
mkdir -p "$MT_WORK/plain"
# t drives both a and b (b = 2a + noise); c is small independent noise
gen() { awk -v seed="$1" -v pre="$2" 'BEGIN { srand(seed); print "id,a,b,c";
  for (i = 0; i < 100; i++) { t = rand() * 10;
    printf "%s%d,%.4f,%.4f,%.4f\n", pre, i, t, 2 * t + rand() * 0.1, rand() * 0.1 } }'; }
gen 1 x > "$MT_WORK/plain/lab1.csv"
gen 2 y > "$MT_WORK/plain/lab2.csv"
FN=$(as lab1 function register --name pca --builtin pca --public \
  --input-slot lab1 --input-slot lab2 --output-slot components --output-slot transformed \
  --arg id=id --arg components=2)
bl_task lab1 "$FN" "in:lab1=lab1=$(bl_input lab1 "$MT_WORK/plain/lab1.csv")" \
  "in:lab2=lab2=$(bl_input lab2 "$MT_WORK/plain/lab2.csv")" \
  "out:components=lab1=$(bl_output lab1 components)" "out:transformed=lab2=$(bl_output lab2 transformed)"
say "pca: $BL_WAIT"
bl_result lab1 components components "$MT_WORK/components.csv"
# first component ~ (1, 2, 0) / sqrt(5) and explains > 99% of the variance
awk -F, 'NR == 1 { ok = $0 == "component,explained_variance,explained_variance_ratio,a,b,c"; next }
         $1 == 1 { ok = ok && $3 > 0.99 && $4 > 0.44 && $4 < 0.46 && $5 > 0.88 && $5 < 0.9 && $6 * $6 < 0.001; one = 1 }
         END { exit !(ok && one && NR == 4) }' "$MT_WORK/components.csv" \
  || fail "components: $(cat "$MT_WORK/components.csv")"
ok "lab1 decrypted the components: $(grep '^1,' "$MT_WORK/components.csv")"
bl_result lab2 transformed transformed "$MT_WORK/transformed.csv"
[ "$(head -1 "$MT_WORK/transformed.csv")" = "id,pc1,pc2" ] && [ "$(wc -l < "$MT_WORK/transformed.csv")" = 201 ] \
  || fail "transformed: $(head -3 "$MT_WORK/transformed.csv")"
ok "lab2 decrypted 200 projected rows"
