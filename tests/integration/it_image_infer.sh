#!/usr/bin/env bash
# image_classify and face_detect as multi-party tasks (docs/nn.md): a vendor's ONNX
# classifier (torchvision MobileNetV2, random weights, exported at test time by
# image_models.py) with its labels runs on a hospital's JPEG/PNG images decoded inside
# the worker; the hospital's top-5 match torch's on the same preprocessing; a vendor's
# detector's boxes after threshold + NMS match a Python reference; the vendor cannot
# read either result; bad images fail with clear reasons that quote nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
GEN=$(dirname "$0")/image_models.py
D=$MT_WORK/d
mkdir -p "$D"
rc=0
"$PY" "$GEN" gen "$D" 2> "$MT_WORK/gen.err" || rc=$?
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || { cat "$MT_WORK/gen.err"; fail "image_models.py gen: exit $rc"; }

# the image libraries are linked into the worker only, never the daemon
deps=$(ldd "$MESATEE_BIN" 2>&1 || true)
case "$deps" in *libjpeg*|*libspng*) fail "the daemon links an image library: $deps";; esac
ok "the daemon links no libjpeg or libspng"

mt_start_server
mt_login admin
mt_add_user vendor
mt_add_user hospital

declare -A FILES
enc() { # enc USER FILE: USER encrypts and registers FILE (once; later tasks reuse it)
  local c=${FILES["$1:$2"]:-}
  if [ -z "$c" ]; then
    local k; k=$(mktemp -u "$MT_WORK/$1.XXXXXX")
    as "$1" file encrypt --in "$2" --out "$k.enc" --key-out "$k.key" >/dev/null
    c=$(as "$1" file register "$(as "$1" file upload "$k.enc")" --key "$k.key")
    FILES["$1:$2"]=$c
  fi
  echo "$c"
}
N=0
# run BUILTIN MODEL LABELS|- "SLOT=FILE ..." [ARGS...]: vendor(model[, labels]) x
# hospital(images) -> hospital(output); sets T, O, OK_
run() {
  local builtin=$1 model=$2 labels=$3 imgs=$4; shift 4
  N=$((N + 1))
  local slots=(--input-slot model) cin=(--input model=vendor) vas has=() spec s f id
  enc vendor "$model" > "$MT_WORK/id"; id=$(cat "$MT_WORK/id"); FILES["vendor:$model"]=$id
  vas=(--input "model=$id")
  if [ "$labels" != - ]; then
    enc vendor "$labels" > "$MT_WORK/id"; id=$(cat "$MT_WORK/id"); FILES["vendor:$labels"]=$id
    slots+=(--input-slot labels); cin+=(--input labels=vendor)
    vas+=(--input "labels=$id"); set -- "$@" --arg labels_slot=labels
  fi
  for spec in $imgs; do
    s=${spec%%=*}; f=${spec#*=}
    enc hospital "$f" > "$MT_WORK/id"; id=$(cat "$MT_WORK/id"); FILES["hospital:$f"]=$id
    slots+=(--input-slot "$s"); cin+=(--input "$s=hospital"); has+=(--input "$s=$id")
  done
  OK_=$MT_WORK/out$N.key
  "$MESATEE_BIN" key generate --out "$OK_" >/dev/null
  O=$(as hospital file register-output --key "$OK_")
  local fn
  fn=$(as vendor function register --name "img$N" --builtin "$builtin" --public \
    "${slots[@]}" --output-slot output "$@")
  T=$(as vendor task create --function "$fn" "${cin[@]}" --output output=hospital)
  as vendor task assign "$T" "${vas[@]}" >/dev/null
  as hospital task assign "$T" "${has[@]}" --output "output=$O" >/dev/null
  as vendor task approve "$T" >/dev/null
  as hospital task approve "$T" >/dev/null
  as vendor task invoke "$T" >/dev/null
  as vendor task wait "$T" --timeout 120 >/dev/null || true
}
status() { as "$1" --output json task show "$T"; }
IMGS="img_a=$D/img_a.png img_b=$D/img_b.jpg img_c=$D/img_c.jpg img_d=$D/img_d.png \
img_e=$D/img_e.png img_f=$D/img_f.png img_g=$D/img_g.png"

# ---- image_classify: 7 images (RGB/gray/palette/RGBA/16-bit PNG, baseline and
# progressive JPEG), labels, top-5 as CSV, 2 threads ----
run image_classify "$D/classifier.onnx" "$D/labels.txt" "$IMGS" --arg threads=2
s=$(status hospital)
[ "$(jget "$s" .status)" = finished ] || fail "classify: $(jget "$s" .status) $(jget "$s" .failure_reason)"
[ "$(jget "$s" .result.return_value)" = "images: 7" ] || fail "result: $(jget "$s" .result)"
case "$(jget "$s" .log)" in *"image_classify: 7 images, input 64x80, 10 classes"*"2 threads"*) ;;
  *) fail "log: $(jget "$s" .log)";; esac
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/top.csv"
"$PY" "$GEN" check-classify "$MT_WORK/top.csv" "$D/classify.json" "$D/labels.txt" ||
  fail "top-5 differ from torch's: $(cat "$MT_WORK/top.csv")"
grep -q '"tabby, ""striped"""' "$MT_WORK/top.csv" || grep -qv tabby "$MT_WORK/top.csv" ||
  fail "a label with a comma is not quoted"
ok "hospital's top-5 (7 images, labels) match torch's on the same preprocessing"
expect_fail "vendor cannot fetch the hospital's classes" "not_found" \
  as vendor task result "$T" --slot output --key "$OK_" --out "$MT_WORK/stolen.csv"
[ ! -s "$MT_WORK/stolen.csv" ] || fail "vendor got output bytes"

# JSON output, no labels, no softmax, top_k 3: the raw logits' order
run image_classify "$D/classifier.onnx" - "img_a=$D/img_a.png" --arg output_format=json \
  --arg softmax=false --arg top_k=3
[ "$(jget "$(status hospital)" .status)" = finished ] || fail "json: $(jget "$(status hospital)" .failure_reason)"
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/top.json"
[ "$(jq '.images[0].top | length' "$MT_WORK/top.json")" = 3 ] || fail "json: $(cat "$MT_WORK/top.json")"
[ "$(jq -r '.images[0].image' "$MT_WORK/top.json")" = img_a ] || fail "json image name"
[ "$(jq -r '.images[0].top[0].class' "$MT_WORK/top.json")" = "$(jq -r '.img_a.classes[0]' "$D/classify.json")" ] ||
  fail "json: top class differs from torch's"
jq -e '.images[0].top | (.[0].score >= .[1].score) and (.[1].score >= .[2].score) and (.[0].score > 1 or .[2].score < 0 or true)' \
  "$MT_WORK/top.json" >/dev/null || fail "json scores not sorted"
ok "JSON output, softmax off, top_k=3"

# ---- face_detect: threshold + greedy NMS vs the Python reference ----
fargs=()
for k in score_threshold iou_threshold max_detections; do
  fargs+=(--arg "$k=$(jq -r ".args.$k" "$D/faces.json")")
done
run face_detect "$D/detector.onnx" - "face_a=$D/face_a.png face_b=$D/face_b.jpg" "${fargs[@]}"
s=$(status hospital)
[ "$(jget "$s" .status)" = finished ] || fail "faces: $(jget "$s" .status) $(jget "$s" .failure_reason)"
[ "$(jget "$s" .result.return_value)" = "images: 2" ] || fail "faces result: $(jget "$s" .result)"
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/faces.csv"
"$PY" "$GEN" check-faces "$MT_WORK/faces.csv" "$D/faces.json" ||
  fail "detections differ from the reference: $(cat "$MT_WORK/faces.csv")"
ok "face_detect: boxes and scores after threshold + NMS match the Python reference"
expect_fail "vendor cannot fetch the hospital's detections" "not_found" \
  as vendor task result "$T" --slot output --key "$OK_" --out "$MT_WORK/stolen2.csv"
run face_detect "$D/detector.onnx" - "face_a=$D/face_a.png" --arg output_format=json \
  --arg score_threshold=1 --arg max_detections=1
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/faces.json"
[ "$(jq '.images[0].detections | length' "$MT_WORK/faces.json")" = 0 ] || fail "threshold 1: $(cat "$MT_WORK/faces.json")"
[ "$(jq '.images[0].width' "$MT_WORK/faces.json")" = 120 ] || fail "json width"
ok "face_detect JSON, a threshold nothing passes"

# ---- bad images and models: failed tasks, clear reasons that quote nothing ----
bad() { # bad DESC WANT BUILTIN MODEL IMAGE [ARGS...]
  local desc=$1 want=$2 b=$3 m=$4 i=$5; shift 5
  run "$b" "$m" - "img=$i" "$@"
  local s r; s=$(status hospital); r="$(jget "$s" .failure_reason) $(jget "$s" .log)"
  [ "$(jget "$s" .status)" = failed ] || fail "$desc: status $(jget "$s" .status)"
  case "$r" in *"$want"*) ;; *) fail "$desc: expected '$want' in: $r";; esac
  case "$r" in *SECRET*|*30000*|*logits*) fail "$desc: the reason quotes input bytes: $r";; esac
  [ "$(as hospital --output json file show "$O" | jq -r .written)" = false ] || fail "$desc: output written"
  ok "$desc: $(jget "$s" .failure_reason)"
}
C=$D/classifier.onnx
bad "truncated JPEG" "image slot 'img': JPEG: the data is truncated or corrupt" image_classify "$C" "$D/bad_trunc.jpg"
bad "PNG bomb (30000x30000 declared)" "image slot 'img': PNG: the image is larger than the limits" image_classify "$C" "$D/bad_bomb.png"
bad "above max_pixels" "PNG: the image is larger than the limits (at most 32768 pixels a side and 1000 pixels" \
  image_classify "$C" "$D/img_a.png" --arg max_pixels=1000
bad "wrong magic" "image slot 'img': image: not a JPEG or PNG file" face_detect "$D/detector.onnx" "$D/bad_magic.png"
bad "empty image" "image slot 'img': image: the file is empty" image_classify "$C" "$D/bad_empty.png"
bad "classifier given to face_detect" "two outputs" face_detect "$C" "$D/img_a.png"
# a malformed model, one above the memory cap: the engine's paths, as it_onnx_infer checks
bad "model above the memory cap" "memory cap of 1 MiB" image_classify "$C" "$D/img_a.png" --arg memory_mb=1

# labels with the wrong line count
printf 'a\nb\n' > "$MT_WORK/labels2.txt"
run image_classify "$C" "$MT_WORK/labels2.txt" "img=$D/img_a.png"
case "$(jget "$(status hospital)" .failure_reason)" in *"line count differs"*) ;;
  *) fail "labels count: $(jget "$(status hospital)" .failure_reason)";; esac
ok "labels with the wrong line count refused"

# ---- garbage arguments refused at registration ----
reg() { as vendor function register --name "g$RANDOM" --builtin "$1" --input-slot model \
  --input-slot img --output-slot output "${@:2}"; }
expect_fail "top_k out of range" "argument 'top_k'" reg image_classify --arg top_k=0
expect_fail "layout not an enum value" "argument 'layout'" reg image_classify --arg layout=chw
expect_fail "iou_threshold garbage" "argument 'iou_threshold'" reg face_detect --arg iou_threshold=lots
expect_fail "score_threshold above 1" "argument 'score_threshold'" reg face_detect --arg score_threshold=2
expect_fail "labels_slot not a slot name" "argument 'labels_slot'" reg image_classify --arg labels_slot=no/pe
# mean/std are strings to the schema: the built-in refuses them at run time
run image_classify "$C" - "img=$D/img_a.png" --arg std=1,0,1
case "$(jget "$(status hospital)" .failure_reason)" in *"argument 'std': expected three"*) ;;
  *) fail "std garbage: $(jget "$(status hospital)" .failure_reason)";; esac
ok "std with a zero refused"
echo "all image_classify / face_detect checks passed"
