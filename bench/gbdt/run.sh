#!/usr/bin/env bash
# GBDT benchmark on fixed-seed data, anchor and ours interleaved (anchor,
# ours, anchor, ours ...), RUNS rounds (default 2), every run printed:
#  anchor: libxgboost called directly in a fresh process (bench_gbdt anchor)
#     with the worker's OpenMP setting (OMP_WAIT_POLICY=PASSIVE, from
#     bench/common.sh); its timers cover the same steps as the built-in's
#     log: load = CSV + DMatrix + labels, train = booster + boosting rounds,
#     predict = in-place prediction from the dense matrix.
#  ours: gbdt_train then gbdt_predict as new platform tasks each round
#     (predict: the task log's predict time, which includes the model check:
#     XGBoost's UBJSON of the loaded model read back and the first 256 rows
#     compared with XGBoost's; the engine is no longer in the log, which
#     every participant reads: "unlogged", and the check's own time "-")
#     through a real `mesatee serve` (a fresh sandboxed worker decrypts,
#     parses, trains/predicts, encrypts); the files are encrypted and
#     uploaded once; AUC of the decrypted predictions.
# Usage: bench/gbdt/run.sh [BUILD_DIR]
# env: BENCH_QUICK (default 1: 200000 training rows; 0: 1000000),
#      GBDT_ROWS (training rows; test rows = ROWS/5), RUNS (2),
#      GBDT_TREES (100), GBDT_DEPTH (6), GBDT_THREADS (2), GBDT_ETA (0.1)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
ROWS=${GBDT_ROWS:-$([ "$QUICK" = 0 ] && echo 1000000 || echo 200000)}; TEST=$((ROWS / 5))
RUNS=${RUNS:-2}
TREES=${GBDT_TREES:-100}; DEPTH=${GBDT_DEPTH:-6}; THREADS=${GBDT_THREADS:-2}; ETA=${GBDT_ETA:-0.1}
B=$PWD/$BUILD/bench/gbdt/bench_gbdt
export MESATEE_BIN=$PWD/$BUILD/src/cli/mesatee
[ -x "$B" ] && [ -x "$MESATEE_BIN" ] || { echo "build first: cmake --build $BUILD --target bench_gbdt mesatee" >&2; exit 1; }
source tests/integration/lib.sh
bench_header gbdt
echo "== data: $ROWS training + $TEST test rows x 28 features (fixed seeds); $TREES trees, depth $DEPTH, eta $ETA, $THREADS threads, hist; OMP_WAIT_POLICY=$OMP_WAIT_POLICY for the anchor (the worker's own setting)"
"$B" gen "$ROWS" 1 "$MT_WORK/train.csv"
"$B" gen "$TEST" 2 "$MT_WORK/test.csv"

mt_start_server --task-mem-mb 8192 --task-wall-s 3600
mt_login admin
mt_add_user alice
as alice file encrypt --in "$MT_WORK/train.csv" --out "$MT_WORK/train.enc" --key-out "$MT_WORK/train.key" >/dev/null
FTR=$(as alice file register "$(as alice file upload "$MT_WORK/train.enc")" --key "$MT_WORK/train.key")
as alice file encrypt --in "$MT_WORK/test.csv" --out "$MT_WORK/test.enc" --key-out "$MT_WORK/test.key" >/dev/null
FTE=$(as alice file register "$(as alice file upload "$MT_WORK/test.enc")" --key "$MT_WORK/test.key")
"$MESATEE_BIN" key generate --out "$MT_WORK/model.key" >/dev/null
"$MESATEE_BIN" key generate --out "$MT_WORK/pred.key" >/dev/null
FN=$(as alice function register --name gbdt --builtin gbdt_train --input-slot train \
  --output-slot model --arg label=label --arg objective=binary:logistic --arg trees="$TREES" \
  --arg depth="$DEPTH" --arg eta="$ETA" --arg threads="$THREADS" --arg seed=0)
FP=$(as alice function register --name gbdtp --builtin gbdt_predict --input-slot model \
  --input-slot data --output-slot pred --arg threads="$THREADS")
ms() { date +%s%3N; }
sec() { awk -v a="$1" 'BEGIN { printf "%.3f", a / 1000 }'; }
ours_run() { # one train task and one predict task; prints "LOAD TRAIN TRAIN_WALL ITF PRED_S PRED_ITF AUC CHECK_S ENGINE"
  local T T2 t1 t2 t4 t5 FMO FMI FPO TJ log load train
  rm -f "$MT_WORK/model.key" "$MT_WORK/pred.key" "$MT_WORK/model.in.key" "$MT_WORK/model.enc"  # fresh keys per round
  "$MESATEE_BIN" key generate --out "$MT_WORK/model.key" >/dev/null
  "$MESATEE_BIN" key generate --out "$MT_WORK/pred.key" >/dev/null
  FMO=$(as alice file register-output --key "$MT_WORK/model.key")
  T=$(as alice task create --function "$FN" --input train=alice --output model=alice)
  as alice task assign "$T" --input train="$FTR" --output model="$FMO" >/dev/null
  as alice task approve "$T" >/dev/null
  t1=$(ms); as alice task invoke "$T" >/dev/null
  as alice task wait "$T" --timeout 3600 >/dev/null || fail "train task failed: $(as alice task show "$T")"
  t2=$(ms)
  as alice task result "$T" --slot model --key "$MT_WORK/model.key" --out "$MT_WORK/model.json" >/dev/null
  TJ=$(as alice --output json task show "$T"); log=$(jget "$TJ" .log)
  load=$(echo "$log" | sed -n 's/.*load \([0-9.]*\) s.*/\1/p'); train=$(echo "$log" | sed -n 's/.*train \([0-9.]*\) s.*/\1/p')
  as alice file encrypt --in "$MT_WORK/model.json" --out "$MT_WORK/model.enc" --key-out "$MT_WORK/model.in.key" >/dev/null
  FMI=$(as alice file register "$(as alice file upload "$MT_WORK/model.enc")" --key "$MT_WORK/model.in.key")
  FPO=$(as alice file register-output --key "$MT_WORK/pred.key")
  T2=$(as alice task create --function "$FP" --input model=alice --input data=alice --output pred=alice)
  as alice task assign "$T2" --input model="$FMI" --input data="$FTE" --output pred="$FPO" >/dev/null
  as alice task approve "$T2" >/dev/null
  t4=$(ms); as alice task invoke "$T2" >/dev/null
  as alice task wait "$T2" --timeout 3600 >/dev/null || fail "predict task failed: $(as alice task show "$T2")"
  t5=$(ms)
  as alice task result "$T2" --slot pred --key "$MT_WORK/pred.key" --out "$MT_WORK/pred.csv" >/dev/null
  local plog; plog=$(jget "$(as alice --output json task show "$T2")" .log)
  echo "$load $train $(sec "$(jget "$TJ" .metering.wall_ms)") $(sec $((t2 - t1))) \
$(echo "$plog" | sed -n 's/.*predict \([0-9.]*\) s.*/\1/p') \
$(sec $((t5 - t4))) $("$B" auc "$MT_WORK/test.csv" "$MT_WORK/pred.csv") \
$(echo "$plog" | sed -n 's/.*model check \([0-9.]*\) s.*/\1/p' | grep . || echo -) \
$(echo "$plog" | grep -q '(own predictor)' && echo own || { echo "$plog" | grep -q "(XGBoost's predictor)" && echo xgboost || echo unlogged; })"
}
rps() { awk -v n="$TEST" -v s="$1" -v t="$THREADS" 'BEGIN { printf "%.0f", n / s / t }'; }
printf '\n| run | what | load s | train s (boosting) | train task s (worker wall / invoke->finished) | predict rows/s/thread | predict engine (model check s) | predict task invoke->finished s | AUC |\n|---|---|---|---|---|---|---|---|---|\n'
for i in $(seq 1 "$RUNS"); do
  A=$("$B" anchor "$MT_WORK/train.csv" "$MT_WORK/test.csv" "$THREADS" "$TREES" "$DEPTH" "$ETA")
  av() { echo "$A" | awk -v k="$1" '$1 == k { print $2 }'; }
  printf '| %d | anchor: libxgboost, fresh process (CSV+DMatrix; whole process %s s) | %s | %s | | %s | libxgboost | | %.6f |\n' \
    "$i" "$(av anchor_total_s)" "$(av anchor_load_s)" "$(av anchor_train_s)" "$(av anchor_predict_rows_per_s_per_thread)" "$(av anchor_auc)"
  ours_run > "$MT_WORK/ours.run"
  read -r load train twall titf pred pitf auc check engine < "$MT_WORK/ours.run"
  printf '| %d | ours: gbdt_train + gbdt_predict tasks (decrypt+CSV+DMatrix) | %s | %s | %s / %s | %s | %s (%s) | %s | %.6f |\n' \
    "$i" "$load" "$train" "$twall" "$titf" "$(rps "$pred")" "$engine" "$check" "$pitf" "$auc"
  [ "$auc" = "$(av anchor_auc)" ] || { echo "bench: AUC differs: ours $auc, anchor $(av anchor_auc)" >&2; exit 1; }
done
mt_stop_server
# load-robust view: one thread, thread CPU time, same model (the last round's)
# and rows in one process: XGBoost's predictor vs ours, interleaved
echo
echo "== predict on one thread, thread CPU time (bench_gbdt cpu; model of the last round):"
"$B" cpu "$MT_WORK/model.json" "$MT_WORK/test.csv" "${GBDT_CPU_REPS:-3}"
echo "Targets: train (boosting) <= 1.1x the anchor; predict >= 700000 rows/s per thread; AUC identical."
bench_footer gbdt
