#!/usr/bin/env bash
# gbdt_train + gbdt_predict: two hospitals pool labelled rows to train
# gradient boosted trees (XGBoost, binary:logistic, 2 threads in the
# sandbox); the model stays with h1, who then scores a partner's patients.
# The model is XGBoost's own JSON, so h1 could also have brought one.
# Usage: examples/gbdt.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start h1 h2 partner
mkdir -p "$MT_WORK/plain"
gen() { awk -v seed="$1" 'BEGIN { srand(seed); print "age,bp,risk";
  for (i = 0; i < 300; i++) { a = rand() * 60 + 20; b = rand() * 80 + 90;
    printf "%.2f,%.1f,%d\n", a, b, (a > 50 && b > 140) || rand() < 0.05 } }'; }
gen 1 > "$MT_WORK/plain/h1.csv"
gen 2 > "$MT_WORK/plain/h2.csv"
printf 'id,bp,age\nold-high,165,75\nyoung-low,100,25\n' > "$MT_WORK/plain/partner.csv"
FN=$(as h1 function register --name gbdt --builtin gbdt_train --public \
  --input-slot h1 --input-slot h2 --output-slot model --arg label=risk \
  --arg objective=binary:logistic --arg trees=20 --arg depth=3 --arg threads=2 --arg seed=1)
bl_task h1 "$FN" "in:h1=h1=$(bl_input h1 "$MT_WORK/plain/h1.csv")" \
  "in:h2=h2=$(bl_input h2 "$MT_WORK/plain/h2.csv")" "out:model=h1=$(bl_output h1 model)"
say "train: $BL_WAIT"
bl_result h1 model model "$MT_WORK/model.json"
jq -e '.learner.feature_names == ["age", "bp"] and (.learner.gradient_booster.model.trees | length) == 20' \
  "$MT_WORK/model.json" >/dev/null || fail "model: $(head -c 300 "$MT_WORK/model.json")"
ok "h1 decrypted its XGBoost JSON model (20 trees, features age, bp)"
FP=$(as h1 function register --name gbdtp --builtin gbdt_predict --public \
  --input-slot model --input-slot data --output-slot scores --arg id=id)
bl_task h1 "$FP" "in:model=h1=$(bl_input h1 "$MT_WORK/model.json")" \
  "in:data=partner=$(bl_input partner "$MT_WORK/plain/partner.csv")" \
  "out:scores=partner=$(bl_output partner scores)"
say "predict: $BL_WAIT"
bl_result partner scores scores "$MT_WORK/scores.csv"
awk -F, 'NR == 1 { ok = $0 == "id,probability,prediction"; next }
         NR == 2 { ok = ok && $1 == "old-high" && $2 > 0.5 && $3 == 1 }
         NR == 3 { ok = ok && $1 == "young-low" && $2 < 0.5 && $3 == 0 }
         END { exit !(ok && NR == 3) }' "$MT_WORK/scores.csv" || fail "scores: $(cat "$MT_WORK/scores.csv")"
ok "partner decrypted its scores: $(tail -n +2 "$MT_WORK/scores.csv" | tr '\n' ' ')"
