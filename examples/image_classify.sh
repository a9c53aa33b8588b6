#!/usr/bin/env bash
# image_classify: a hospital's scans, a vendor's image classifier, results only to the
# hospital. The vendor uploads its ONNX model and its class labels encrypted (the
# hospital never sees them); the hospital uploads two images encrypted (a PNG and a
# JPEG); the worker decodes them (libspng, libjpeg-turbo), resizes and normalises
# them, runs the model and writes the top-3 classes per image encrypted for the
# hospital alone. The model is a torchvision MobileNetV2 with random weights written by
# tests/integration/image_models.py (needs Debian's python3-torch, python3-torchvision
# and python3-pil; the example is skipped without them); a real vendor would bring its
# own `torch.onnx.export` output.
# Usage: examples/image_classify.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
mkdir -p "$MT_WORK/plain"
rc=0
/usr/bin/python3 tests/integration/image_models.py gen "$MT_WORK/plain" --no-detector \
  2>/dev/null || rc=$?
[ "$rc" = 77 ] && { echo "SKIP: torch, torchvision or PIL missing"; exit 77; }
[ "$rc" = 0 ] || fail "image_models.py: exit $rc"
bl_start hospital vendor
FN=$(as vendor function register --name scan-triage --builtin image_classify --public \
  --input-slot model --input-slot labels --input-slot scan_1 --input-slot scan_2 \
  --output-slot findings --arg labels_slot=labels --arg output_slot=findings \
  --arg top_k=3 --arg threads=2)
bl_task vendor "$FN" "in:model=vendor=$(bl_input vendor "$MT_WORK/plain/classifier.onnx")" \
  "in:labels=vendor=$(bl_input vendor "$MT_WORK/plain/labels.txt")" \
  "in:scan_1=hospital=$(bl_input hospital "$MT_WORK/plain/img_a.png")" \
  "in:scan_2=hospital=$(bl_input hospital "$MT_WORK/plain/img_b.jpg")" \
  "out:findings=hospital=$(bl_output hospital findings)"
say "classification: $BL_WAIT"
bl_result hospital findings findings "$MT_WORK/findings.csv"
cat "$MT_WORK/findings.csv"
[ "$(wc -l < "$MT_WORK/findings.csv")" = 7 ] || fail "expected a header and 2 x 3 rows"
head -1 "$MT_WORK/findings.csv" | grep -qx 'image,rank,class,label,score' || fail "header"
ok "hospital decrypted its findings: the top-3 classes of both scans"
if as vendor task result "$BL_TASK" --slot findings --key "$MT_WORK/hospital.findings.key" \
  --out "$MT_WORK/vendor.csv" 2>/dev/null; then
  fail "the vendor could download the hospital's findings"
fi
ok "the vendor cannot download the findings"
