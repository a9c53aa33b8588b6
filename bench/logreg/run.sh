#!/usr/bin/env bash
# Logistic regression benchmark, one run, same fixed-seed data (the GBDT
# benchmark's generator, bench_gbdt gen):
#  ours:   logistic_regression_train (solver lbfgs, the default; C=1, eps
#          0.01) as a platform task through a real `mesatee serve`; time = the
#          worker's wall time (decrypt + CSV parse + fit + encrypt), from
#          metering; the built-in's log splits it into load and fit.
#  anchor: sklearn LogisticRegression(lbfgs, C=1), fit only, run by Debian's
#          python3 when python3-sklearn is importable (else skipped).
# Usage: bench/logreg/run.sh [BUILD_DIR]   env: LOGREG_ROWS (default 800000)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
ROWS=${LOGREG_ROWS:-800000}; TEST=$((ROWS / 4))
B=$PWD/$BUILD/bench/gbdt/bench_gbdt
export MESATEE_BIN=$PWD/$BUILD/src/cli/mesatee
[ -x "$B" ] && [ -x "$MESATEE_BIN" ] || { echo "build first: cmake --build $BUILD --target bench_gbdt mesatee" >&2; exit 1; }
PY=""
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import sklearn, numpy' 2>/dev/null; then PY=$p; break; fi
done
source tests/integration/lib.sh
echo "== data: $ROWS training + $TEST test rows x 28 features (fixed seeds)"
"$B" gen "$ROWS" 3 "$MT_WORK/train.csv"
"$B" gen "$TEST" 4 "$MT_WORK/test.csv"

echo "== ours: logistic_regression_train through mesatee serve"
mt_start_server --task-mem-mb 8192 --task-wall-s 3600
mt_login admin
mt_add_user alice
as alice file encrypt --in "$MT_WORK/train.csv" --out "$MT_WORK/train.enc" --key-out "$MT_WORK/train.key" >/dev/null
FTR=$(as alice file register "$(as alice file upload "$MT_WORK/train.enc")" --key "$MT_WORK/train.key")
"$MESATEE_BIN" key generate --out "$MT_WORK/model.key" >/dev/null
FMO=$(as alice file register-output --key "$MT_WORK/model.key")
FN=$(as alice function register --name lr --builtin logistic_regression_train --input-slot train \
  --output-slot model --arg label=label --arg C=1)
T=$(as alice task create --function "$FN" --input train=alice --output model=alice)
as alice task assign "$T" --input train="$FTR" --output model="$FMO" >/dev/null
as alice task approve "$T" >/dev/null
ms() { date +%s%3N; }
t1=$(ms)
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 3600 >/dev/null || fail "task failed: $(as alice task show "$T")"
t2=$(ms)
as alice task result "$T" --slot model --key "$MT_WORK/model.key" --out "$MT_WORK/model.json" >/dev/null
TJ=$(as alice --output json task show "$T")
wall=$(jget "$TJ" .metering.wall_ms)
echo "   worker log: $(jget "$TJ" .log | grep logistic_regression_train)"
mt_stop_server

if [ -n "$PY" ]; then
  A=$("$PY" bench/logreg/anchor.py "$MT_WORK/train.csv" "$MT_WORK/test.csv" "$MT_WORK/model.json")
  echo "$A" | sed 's/^/   /'
else
  echo "   python3-sklearn not importable: anchor skipped"; A=""
fi
av() { echo "$A" | awk -v k="$1" '$1 == k { print $2 }'; }
ws=$(awk -v a="$wall" 'BEGIN { printf "%.3f", a / 1000 }')
printf '\n%-52s %12s %12s %12s\n' "logistic regression $ROWS x 28" "ours" "anchor" "target"
printf '%-52s %12s %12s %12s\n' "fit, s (ours: worker wall incl. decrypt + CSV)" "$ws" "$(av anchor_fit_s)" "<= 1.2"
printf '%-52s %12s %12s %12s\n' "  invoke -> finished, s" "$(awk -v a=$((t2 - t1)) 'BEGIN { printf "%.3f", a / 1000 }')" "" ""
printf '%-52s %12s %12s %12s\n' "AUC on the test rows" "$(av our_auc)" "$(av anchor_auc)" "within 0.002"
if [ -n "$A" ]; then
  awk -v a="$(av our_auc)" -v b="$(av anchor_auc)" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.002) }' \
    || { echo "bench: AUC differs by more than 0.002" >&2; exit 1; }
fi
