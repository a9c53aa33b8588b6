#!/usr/bin/env bash
# onnx_infer: a hospital's patient records, a vendor's model, results only to the
# hospital. The vendor uploads its ONNX model encrypted (the hospital never sees it,
# only that the task ran on it); the hospital uploads its tensor encrypted (a .npy of
# float32 features, one row per patient); the engine runs inside the sandboxed worker
# and the class probabilities are encrypted for the hospital alone.
# The model is a tiny MLP written by tests/integration/onnx_model.py (no torch needed);
# a real vendor would bring e.g. `torch.onnx.export` output.
# Usage: examples/onnx_infer.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start hospital vendor
mkdir -p "$MT_WORK/plain"
/usr/bin/python3 tests/integration/onnx_model.py "$MT_WORK/plain"
FN=$(as vendor function register --name triage --builtin onnx_infer --public \
  --input-slot model --input-slot records --output-slot probabilities \
  --arg input_slot=records --arg output_slot=probabilities --arg threads=2)
bl_task vendor "$FN" "in:model=vendor=$(bl_input vendor "$MT_WORK/plain/model.onnx")" \
  "in:records=hospital=$(bl_input hospital "$MT_WORK/plain/input.npy")" \
  "out:probabilities=hospital=$(bl_output hospital probabilities)"
say "inference: $BL_WAIT"
bl_result hospital probabilities probabilities "$MT_WORK/probabilities.npy"
/usr/bin/python3 tests/integration/onnx_model.py check "$MT_WORK/probabilities.npy" \
  "$MT_WORK/plain/expected.npy" || fail "probabilities differ from numpy's"
ok "hospital decrypted the probabilities (5 patients x 3 classes), equal to numpy's on the same weights"
if as vendor task result "$BL_TASK" --slot probabilities --key "$MT_WORK/hospital.probabilities.key" \
  --out "$MT_WORK/vendor.npy" 2>/dev/null; then
  fail "the vendor could download the hospital's result"
fi
ok "the vendor cannot download the result"
