#!/usr/bin/env bash
# logistic_regression_train + logistic_regression_predict: two shops pool
# purchase data to train an L2-regularised logistic model (liblinear); the
# model owner then scores a partner's customers.
# Usage: examples/logistic_regression.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start s1 s2 partner
mkdir -p "$MT_WORK/plain"
gen() { awk -v seed="$1" 'BEGIN { srand(seed); print "visits,discount,bought";
  for (i = 0; i < 400; i++) { v = rand() * 4 - 2; d = rand() * 2 - 1;
    p = 1 / (1 + exp(-(0.5 + 2 * v - d))); printf "%.6f,%.6f,%d\n", v, d, rand() < p } }'; }
gen 1 > "$MT_WORK/plain/s1.csv"
gen 2 > "$MT_WORK/plain/s2.csv"
printf 'id,visits,discount\np1,1.5,0\np2,-1.5,0.5\n' > "$MT_WORK/plain/partner.csv"
FN=$(as s1 function register --name logit --builtin logistic_regression_train --public \
  --input-slot s1 --input-slot s2 --output-slot model --arg label=bought --arg C=1)
bl_task s1 "$FN" "in:s1=s1=$(bl_input s1 "$MT_WORK/plain/s1.csv")" \
  "in:s2=s2=$(bl_input s2 "$MT_WORK/plain/s2.csv")" "out:model=s1=$(bl_output s1 model)"
say "train: $BL_WAIT"
bl_result s1 model model "$MT_WORK/model.json"
jq -e '.model == "logistic_regression" and .coefficients[0] > 1 and .coefficients[1] < 0' \
  "$MT_WORK/model.json" >/dev/null || fail "model: $(cat "$MT_WORK/model.json")"
ok "s1 decrypted the model: $(jq -c '{coefficients, intercept}' "$MT_WORK/model.json")"
FP=$(as s1 function register --name logitp --builtin logistic_regression_predict --public \
  --input-slot model --input-slot data --output-slot scores --arg id=id)
bl_task s1 "$FP" "in:model=s1=$(bl_input s1 "$MT_WORK/model.json")" \
  "in:data=partner=$(bl_input partner "$MT_WORK/plain/partner.csv")" \
  "out:scores=partner=$(bl_output partner scores)"
say "predict: $BL_WAIT"
bl_result partner scores scores "$MT_WORK/scores.csv"
awk -F, 'NR == 1 { ok = $0 == "id,probability,prediction"; next }
         NR == 2 { ok = ok && $1 == "p1" && $2 > 0.5 && $3 == 1 }
         NR == 3 { ok = ok && $1 == "p2" && $2 < 0.5 && $3 == 0 }
         END { exit !(ok && NR == 3) }' "$MT_WORK/scores.csv" || fail "scores: $(cat "$MT_WORK/scores.csv")"
ok "partner decrypted its scores"
