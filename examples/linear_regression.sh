#!/usr/bin/env bash
# linear_regression_train + linear_regression_predict: two hospitals train a
# model on their pooled rows; the model goes (encrypted) to a researcher, who
# then uses it as an input to predict on a third party's data.
# Usage: examples/linear_regression.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start h1 h2 researcher clinic
mkdir -p "$MT_WORK/plain"
# y = 1 + 2 x1 - 3 x2 exactly
printf 'x1,x2,y\n0,0,1\n1,0,3\n0,1,-2\n' > "$MT_WORK/plain/h1.csv"
printf 'x2,x1,y\n2,3,1\n1,3.5,5\n-2,1.25,9.5\n' > "$MT_WORK/plain/h2.csv"
printf 'x1,x2\n1,1\n10,0\n' > "$MT_WORK/plain/clinic.csv"
FN=$(as researcher function register --name lr --builtin linear_regression_train --public \
  --input-slot h1 --input-slot h2 --output-slot model --arg label=y --arg ridge=0)
bl_task researcher "$FN" "in:h1=h1=$(bl_input h1 "$MT_WORK/plain/h1.csv")" \
  "in:h2=h2=$(bl_input h2 "$MT_WORK/plain/h2.csv")" "out:model=researcher=$(bl_output researcher model)"
say "train: $BL_WAIT"
bl_result researcher model model "$MT_WORK/model.json"
jq -e '.model == "linear_regression" and (.coefficients[0] - 2 | fabs) < 1e-9 and
       (.coefficients[1] + 3 | fabs) < 1e-9 and (.intercept - 1 | fabs) < 1e-9' \
  "$MT_WORK/model.json" >/dev/null || fail "model: $(cat "$MT_WORK/model.json")"
ok "researcher decrypted the model: $(jq -c '{coefficients, intercept}' "$MT_WORK/model.json")"
# the researcher brings the model as an encrypted input of the predict task
FP=$(as researcher function register --name lrp --builtin linear_regression_predict --public \
  --input-slot model --input-slot data --output-slot predictions)
bl_task researcher "$FP" "in:model=researcher=$(bl_input researcher "$MT_WORK/model.json")" \
  "in:data=clinic=$(bl_input clinic "$MT_WORK/plain/clinic.csv")" \
  "out:predictions=clinic=$(bl_output clinic pred)"
say "predict: $BL_WAIT"
bl_result clinic predictions pred "$MT_WORK/pred.csv"
awk -F, 'NR == 1 { ok = $1 == "prediction"; next }
         NR == 2 { ok = ok && ($1 < 1e-9 && $1 > -1e-9) }
         NR == 3 { ok = ok && ($1 - 21 < 1e-9 && 21 - $1 < 1e-9) }
         END { exit !(ok && NR == 3) }' "$MT_WORK/pred.csv" || fail "predictions: $(cat "$MT_WORK/pred.csv")"
ok "clinic decrypted its predictions"
