#!/usr/bin/env bash
# kmeans: two retailers cluster their pooled customers (k-means++ seeding
# with a fixed seed, Lloyd iterations); each learns the centroids, only the
# analyst gets the per-customer assignments.
# Usage: examples/kmeans.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start r1 r2 analyst
mkdir -p "$MT_WORK/plain"
gen() { awk -v seed="$1" -v pre="$2" 'BEGIN { srand(seed); print "id,spend,visits";
  for (i = 0; i < 50; i++) { c = i % 2;
    printf "%s%d,%.3f,%.3f\n", pre, i, (c ? 100 : 10) + rand(), (c ? 2 : 20) + rand() } }'; }
gen 1 a > "$MT_WORK/plain/r1.csv"
gen 2 b > "$MT_WORK/plain/r2.csv"
FN=$(as analyst function register --name km --builtin kmeans --public \
  --input-slot r1 --input-slot r2 --output-slot centroids --output-slot assignments \
  --arg k=2 --arg id=id --arg seed=7)
bl_task analyst "$FN" "in:r1=r1=$(bl_input r1 "$MT_WORK/plain/r1.csv")" \
  "in:r2=r2=$(bl_input r2 "$MT_WORK/plain/r2.csv")" \
  "out:centroids=r1=$(bl_output r1 centroids)" "out:assignments=analyst=$(bl_output analyst assignments)"
say "kmeans: $BL_WAIT"
case $BL_WAIT in *"rows: 100, k: 2"*) ;; *) fail "return value: $BL_WAIT" ;; esac
bl_result r1 centroids centroids "$MT_WORK/centroids.csv"
awk -F, 'NR == 1 { ok = $0 == "cluster,spend,visits,size"; next }
         { ok = ok && $4 == 50 && (($2 > 100 && $2 < 101 && $3 > 2 && $3 < 3) || ($2 > 10 && $2 < 11 && $3 > 20 && $3 < 21)) }
         END { exit !(ok && NR == 3) }' "$MT_WORK/centroids.csv" || fail "centroids: $(cat "$MT_WORK/centroids.csv")"
ok "r1 decrypted the centroids"
bl_result analyst assignments assignments "$MT_WORK/assignments.csv"
# every even-numbered customer in one cluster, every odd one in the other
awk -F, 'NR > 1 { n = substr($1, 2) % 2; if (!(n in c)) c[n] = $2; else if (c[n] != $2) bad = 1 }
         END { exit !(!bad && NR == 101 && c[0] != c[1]) }' "$MT_WORK/assignments.csv" \
  || fail "assignments: $(head "$MT_WORK/assignments.csv")"
ok "analyst decrypted 100 assignments, split as the data was generated"
