#!/usr/bin/env bash
# onnx_infer as a multi-party task (docs/nn.md "onnx_infer built-in"): a vendor's
# ONNX model (written by onnx_model.py, weights known to the test only) runs on a
# hospital's tensor; the hospital decrypts the output and it matches numpy's result
# on the same weights; the vendor cannot read it; bad models and inputs fail with
# clear reasons that quote nothing from the model or the data.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }
GEN=$(dirname "$0")/onnx_model.py
mkdir -p "$MT_WORK/d"
"$PY" "$GEN" "$MT_WORK/d"
D=$MT_WORK/d

# the engine (libdnnl, libprotobuf-c) is linked into the worker only, never the daemon
deps=$(ldd "$MESATEE_BIN" 2>&1 || true)
case "$deps" in *libdnnl*|*libprotobuf-c*|*libpython*) fail "the daemon links the engine: $deps";; esac
ok "the daemon links no libdnnl, libprotobuf-c or libpython"

mt_start_server
mt_login admin
mt_add_user vendor
mt_add_user hospital

enc() { # enc USER FILE: USER encrypts and registers FILE; prints the file id
  local k; k=$(mktemp -u "$MT_WORK/$1.XXXXXX")
  as "$1" file encrypt --in "$2" --out "$k.enc" --key-out "$k.key" >/dev/null
  as "$1" file register "$(as "$1" file upload "$k.enc")" --key "$k.key"
}
N=0
# infer MODEL_FILE INPUT_FILE [ARGS...]: a task vendor(model) x hospital(input) ->
# hospital(output); sets T, O (output id), OK_ (the output key file)
infer() {
  local model=$1 input=$2; shift 2
  N=$((N + 1))
  local mid iid fn
  mid=$(enc vendor "$model")
  iid=$(enc hospital "$input")
  OK_=$MT_WORK/out$N.key
  "$MESATEE_BIN" key generate --out "$OK_" >/dev/null
  O=$(as hospital file register-output --key "$OK_")
  fn=$(as vendor function register --name "infer$N" --builtin onnx_infer --public \
    --input-slot model --input-slot input --output-slot output "$@")
  T=$(as vendor task create --function "$fn" --input model=vendor --input input=hospital \
    --output output=hospital)
  as vendor task assign "$T" --input "model=$mid" >/dev/null
  as hospital task assign "$T" --input "input=$iid" --output "output=$O" >/dev/null
  as vendor task approve "$T" >/dev/null
  as hospital task approve "$T" >/dev/null
  as vendor task invoke "$T" >/dev/null
  as vendor task wait "$T" --timeout 120 >/dev/null || true
}
status() { as "$1" --output json task show "$T"; }

# ---- the model on the hospital's .npy (float32), 2 threads ----
infer "$D/model.onnx" "$D/input.npy" --arg threads=2
s=$(status hospital)
[ "$(jget "$s" .status)" = finished ] || fail "npy task: $(jget "$s" .status) $(jget "$s" .failure_reason)"
[ "$(jget "$s" .result.return_value)" = "output shape: [5,3]" ] || fail "result: $(jget "$s" .result)"
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/y.npy"
"$PY" "$GEN" check "$MT_WORK/y.npy" "$D/expected.npy" || fail "output differs from numpy's"
# the engine ran the graph (Gemm+Relu fused: 4 nodes), not a folded constant
case "$(jget "$s" .log)" in *"onnx_infer: 4 nodes"*"2 threads"*) ;; *) fail "log: $(jget "$s" .log)";; esac
ok "hospital decrypted the output: matches numpy on the same weights"
# the vendor takes part but the output is not its own: no key, and the server refuses it
expect_fail "vendor cannot fetch the hospital's output" "not_found" \
  as vendor task result "$T" --slot output --key "$OK_" --out "$MT_WORK/stolen.npy"
[ ! -s "$MT_WORK/stolen.npy" ] || fail "vendor got output bytes"
# what the hospital sees of the vendor's model: the task's record, no model bytes
hs=$(status hospital)
case "$hs" in *dense_1*|*secret*) fail "the task record shows model bytes";; esac
echo "$hs" > "$MT_WORK/hospital_view.json"

# ---- float64 .npy, CSV in and CSV out, a reshape through 'shape' ----
infer "$D/model.onnx" "$D/input_f64.npy"
[ "$(jget "$(status hospital)" .status)" = finished ] || fail "f64: $(jget "$(status hospital)" .failure_reason)"
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/y64.npy"
"$PY" "$GEN" check "$MT_WORK/y64.npy" "$D/expected.npy" || fail "f64 output differs"
ok "float64 .npy input converted to the model's float32"
infer "$D/model.onnx" "$D/input.csv" --arg format=csv --arg output_format=csv --arg memory_mb=65536
[ "$(jget "$(status hospital)" .status)" = finished ] || fail "csv: $(jget "$(status hospital)" .failure_reason)"
case "$(jget "$(status hospital)" .log)" in *"memory_mb lowered to "*"(half the task's memory limit)"*) ;;
  *) fail "memory_mb above half the task's limit: $(jget "$(status hospital)" .log)";; esac
as hospital task result "$T" --slot output --key "$OK_" --out "$MT_WORK/y.csv"
[ "$(wc -l < "$MT_WORK/y.csv")" = 5 ] || fail "csv rows: $(cat "$MT_WORK/y.csv")"
"$PY" "$GEN" check "$MT_WORK/y.csv" "$D/expected.npy" || fail "csv output differs"
ok "CSV rows in, CSV rows out"

# ---- bad inputs: each a failed task with a clear reason quoting nothing ----
bad() { # bad DESC WANT MODEL INPUT [ARGS...]
  local desc=$1 want=$2; shift 2
  infer "$@"
  local s r; s=$(status hospital); r="$(jget "$s" .failure_reason) $(jget "$s" .log)"
  [ "$(jget "$s" .status)" = failed ] || fail "$desc: status $(jget "$s" .status)"
  case "$r" in *"$want"*) ;; *) fail "$desc: expected '$want' in: $r";; esac
  case "$r" in *secret_layer*|*SECRETDATA*|*dense_*) fail "$desc: the reason quotes model or data bytes: $r";; esac
  [ "$(as hospital --output json file show "$O" | jq -r .written)" = false ] || fail "$desc: output written"
  ok "$desc: $(jget "$s" .failure_reason)"
}
bad "unsupported op" "op type Einsum" "$D/badop.onnx" "$D/input.npy"
head -c 200 /dev/urandom > "$MT_WORK/garbage.onnx"
bad "malformed model" "loading the model: the model is malformed" "$MT_WORK/garbage.onnx" "$D/input.npy"
printf 'SECRETDATA,1,2\n' > "$MT_WORK/bad.csv"
bad "CSV with a word" "line 1 field 1: not a number" "$D/model.onnx" "$MT_WORK/bad.csv" --arg format=csv
printf '1,2,3,4\n1,2,3\n' > "$MT_WORK/ragged.csv"
bad "ragged CSV" "line 2: 3 fields" "$D/model.onnx" "$MT_WORK/ragged.csv" --arg format=csv
head -c 150 "$D/input.npy" > "$MT_WORK/trunc.npy"
bad "truncated npy" "npy: data shorter than the shape says" "$D/model.onnx" "$MT_WORK/trunc.npy"
printf 'SECRETDATA' > "$MT_WORK/notnpy.npy"
bad "not an npy" "not a .npy file" "$D/model.onnx" "$MT_WORK/notnpy.npy"
"$PY" -c "import numpy as np; np.save('$MT_WORK/wide.npy', np.zeros((2, 7), '<f4'))"
bad "shape mismatch" "declared [?,4]" "$D/model.onnx" "$MT_WORK/wide.npy"
"$PY" -c "import numpy as np; np.save('$MT_WORK/i32.npy', np.zeros((2, 4), '<i4'))"
bad "int32 npy" "dtype not supported" "$D/model.onnx" "$MT_WORK/i32.npy"
# 40000 rows fit 1 MiB (640 KB) but the model's intermediate tensors do not: the engine
# refuses at prepare; 70000 rows are refused before the engine sees them
"$PY" -c "import numpy as np; np.save('$MT_WORK/mid.npy', np.zeros((40000, 4), '<f4'))"
bad "model above the memory cap" "preparing the model for the input's shape: the model needs more than the memory cap of 1 MiB" \
  "$D/model.onnx" "$MT_WORK/mid.npy" --arg memory_mb=1
"$PY" -c "import numpy as np; np.save('$MT_WORK/big.npy', np.zeros((70000, 4), '<f4'))"
bad "input above the memory cap" "the input is larger than the memory cap of 1 MiB" "$D/model.onnx" "$MT_WORK/big.npy" --arg memory_mb=1
bad "shape argument with another count" "argument 'shape'" "$D/model.onnx" "$D/input.npy" --arg shape=3,4
bad "unknown input name" "argument 'input_name'" "$D/model.onnx" "$D/input.npy" --arg input_name=nope

# ---- garbage arguments are refused at registration ----
expect_fail "threads out of range" "argument 'threads'" \
  as vendor function register --name g1 --builtin onnx_infer --input-slot model --input-slot input \
  --output-slot output --arg threads=0
expect_fail "format not an enum value" "argument 'format'" \
  as vendor function register --name g2 --builtin onnx_infer --input-slot model --input-slot input \
  --output-slot output --arg format=xml
expect_fail "memory_mb garbage" "argument 'memory_mb'" \
  as vendor function register --name g3 --builtin onnx_infer --input-slot model --input-slot input \
  --output-slot output --arg memory_mb=lots
echo "all onnx_infer checks passed"
