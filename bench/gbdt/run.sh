#!/usr/bin/env bash
# GBDT benchmark, all in one run, on the same fixed-seed data:
#  1. anchor: libxgboost called directly in one process (bench_gbdt anchor):
#     CSV load, train, predict, AUC.
#  2. ours: gbdt_train then gbdt_predict as platform tasks through a real
#     `mesatee serve` (encrypt, upload, assign, approve, sandboxed worker,
#     download, decrypt), AUC of the decrypted predictions.
# Usage: bench/gbdt/run.sh [BUILD_DIR]
# env: GBDT_ROWS (training rows, default 1000000; test rows = ROWS/5),
#      GBDT_TREES (100), GBDT_DEPTH (6), GBDT_THREADS (2), GBDT_ETA (0.1)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
ROWS=${GBDT_ROWS:-1000000}; TEST=$((ROWS / 5))
TREES=${GBDT_TREES:-100}; DEPTH=${GBDT_DEPTH:-6}; THREADS=${GBDT_THREADS:-2}; ETA=${GBDT_ETA:-0.1}
B=$PWD/$BUILD/bench/gbdt/bench_gbdt
export MESATEE_BIN=$PWD/$BUILD/src/cli/mesatee
[ -x "$B" ] && [ -x "$MESATEE_BIN" ] || { echo "build first: cmake --build $BUILD --target bench_gbdt mesatee" >&2; exit 1; }
source tests/integration/lib.sh
echo "== data: $ROWS training + $TEST test rows x 28 features (fixed seeds)"
"$B" gen "$ROWS" 1 "$MT_WORK/train.csv"
"$B" gen "$TEST" 2 "$MT_WORK/test.csv"
ls -l "$MT_WORK/train.csv" "$MT_WORK/test.csv" | awk '{ print "   " $9 ": " $5 " bytes" }'

echo "== anchor: libxgboost in one process ($TREES trees, depth $DEPTH, eta $ETA, $THREADS threads, hist)"
A=$("$B" anchor "$MT_WORK/train.csv" "$MT_WORK/test.csv" "$THREADS" "$TREES" "$DEPTH" "$ETA")
echo "$A" | sed 's/^/   /'
av() { echo "$A" | awk -v k="$1" '$1 == k { print $2 }'; }

echo "== ours: gbdt_train + gbdt_predict through mesatee serve"
mt_start_server --task-mem-mb 8192 --task-wall-s 3600
mt_login admin
mt_add_user alice
ms() { date +%s%3N; }
t0=$(ms)
as alice file encrypt --in "$MT_WORK/train.csv" --out "$MT_WORK/train.enc" --key-out "$MT_WORK/train.key" >/dev/null
FTR=$(as alice file register "$(as alice file upload "$MT_WORK/train.enc")" --key "$MT_WORK/train.key")
"$MESATEE_BIN" key generate --out "$MT_WORK/model.key" >/dev/null
FMO=$(as alice file register-output --key "$MT_WORK/model.key")
FN=$(as alice function register --name gbdt --builtin gbdt_train --input-slot train \
  --output-slot model --arg label=label --arg objective=binary:logistic --arg trees="$TREES" \
  --arg depth="$DEPTH" --arg eta="$ETA" --arg threads="$THREADS" --arg seed=0)
T=$(as alice task create --function "$FN" --input train=alice --output model=alice)
as alice task assign "$T" --input train="$FTR" --output model="$FMO" >/dev/null
as alice task approve "$T" >/dev/null
t1=$(ms)
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 3600 >/dev/null || fail "train task failed: $(as alice task show "$T")"
t2=$(ms)
as alice task result "$T" --slot model --key "$MT_WORK/model.key" --out "$MT_WORK/model.json" >/dev/null
t3=$(ms)
TJ=$(as alice --output json task show "$T")
train_log=$(jget "$TJ" .log)
train_s=$(echo "$train_log" | sed -n 's/.*train \([0-9.]*\) s.*/\1/p')
load_s=$(echo "$train_log" | sed -n 's/.*load \([0-9.]*\) s.*/\1/p')
train_wall=$(jget "$TJ" .metering.wall_ms)

# predict: the model as an input, the test rows as another
as alice file encrypt --in "$MT_WORK/test.csv" --out "$MT_WORK/test.enc" --key-out "$MT_WORK/test.key" >/dev/null
FTE=$(as alice file register "$(as alice file upload "$MT_WORK/test.enc")" --key "$MT_WORK/test.key")
as alice file encrypt --in "$MT_WORK/model.json" --out "$MT_WORK/model.enc" --key-out "$MT_WORK/model.in.key" >/dev/null
FMI=$(as alice file register "$(as alice file upload "$MT_WORK/model.enc")" --key "$MT_WORK/model.in.key")
"$MESATEE_BIN" key generate --out "$MT_WORK/pred.key" >/dev/null
FPO=$(as alice file register-output --key "$MT_WORK/pred.key")
FP=$(as alice function register --name gbdtp --builtin gbdt_predict --input-slot model \
  --input-slot data --output-slot pred --arg threads="$THREADS")
T2=$(as alice task create --function "$FP" --input model=alice --input data=alice --output pred=alice)
as alice task assign "$T2" --input model="$FMI" --input data="$FTE" --output pred="$FPO" >/dev/null
as alice task approve "$T2" >/dev/null
t4=$(ms)
as alice task invoke "$T2" >/dev/null
as alice task wait "$T2" --timeout 3600 >/dev/null || fail "predict task failed: $(as alice task show "$T2")"
t5=$(ms)
as alice task result "$T2" --slot pred --key "$MT_WORK/pred.key" --out "$MT_WORK/pred.csv" >/dev/null
PJ=$(as alice --output json task show "$T2")
pred_s=$(jget "$PJ" .log | sed -n 's/.*predict \([0-9.]*\) s.*/\1/p')
our_auc=$("$B" auc "$MT_WORK/test.csv" "$MT_WORK/pred.csv")
mt_stop_server

f() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
a_train=$(av anchor_train_s); a_load=$(av anchor_load_s); a_auc=$(av anchor_auc)
a_pred=$(av anchor_predict_rows_per_s_per_thread)
our_pred=$(awk -v n="$TEST" -v s="$pred_s" -v t="$THREADS" 'BEGIN { printf "%.0f", n / s / t }')
printf '\n%-58s %14s %14s %10s %12s\n' "GBDT $ROWS x 28, $TREES trees, depth $DEPTH, $THREADS threads" "ours" "anchor" "ratio" "target"
printf '%-58s %14s %14s %10s %12s\n' "train (XGBoost boosting rounds only), s" "$train_s" "$a_train" "$(f "$train_s" "$a_train")" "<= 1.1x"
printf '%-58s %14s %14s %10s %12s\n' "train incl. data load (worker: decrypt+CSV; anchor: CSV), s" \
  "$(awk -v a="$train_wall" 'BEGIN { printf "%.3f", a / 1000 }')" \
  "$(awk -v a="$a_train" -v b="$a_load" 'BEGIN { printf "%.3f", a + b }')" \
  "$(f "$(awk -v a="$train_wall" 'BEGIN { print a / 1000 }')" "$(awk -v a="$a_train" -v b="$a_load" 'BEGIN { print a + b }')")" ""
printf '%-58s %14s %14s %10s %12s\n' "  end to end: invoke -> finished (scheduler+worker), s" "$(awk -v a=$((t2 - t1)) 'BEGIN { printf "%.3f", a / 1000 }')" "" "" ""
printf '%-58s %14s %14s %10s %12s\n' "  end to end: encrypt+upload+...+download, s" "$(awk -v a=$((t3 - t0)) 'BEGIN { printf "%.3f", a / 1000 }')" "" "" ""
printf '%-58s %14s %14s %10s %12s\n' "predict, rows/s per thread ($TEST rows)" "$our_pred" "$a_pred" "$(f "$our_pred" "$a_pred")" ">= 700000"
printf '%-58s %14s %14s %10s %12s\n' "  predict task invoke -> finished, s" "$(awk -v a=$((t5 - t4)) 'BEGIN { printf "%.3f", a / 1000 }')" "" "" ""
printf '%-58s %14.6f %14.6f %10s %12s\n' "AUC on the test rows" "$our_auc" "$a_auc" \
  "$([ "$our_auc" = "$a_auc" ] && echo identical || echo DIFFERENT)" "identical"
[ "$our_auc" = "$a_auc" ] || { echo "bench: AUC differs: ours $our_auc, anchor $a_auc" >&2; exit 1; }
