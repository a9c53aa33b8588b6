#!/usr/bin/env bash
# onnx_infer with several inputs and outputs, external data and a pinned model hash
# (docs/nn.md "onnx_infer built-in"): a vendor's two-input model runs on a hospital's
# tensor A and a lab's tensor B, both outputs go to the hospital (outputs=*); the MLP with
# its weights as external data after the ModelProto (model_size); model_sha256 makes the
# task run exactly the approved model; bad mappings fail with reasons quoting no names.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }
GEN=$(dirname "$0")/onnx_model.py
D=$MT_WORK/d
mkdir -p "$D"
"$PY" "$GEN" "$D"

mt_start_server
mt_login admin
for u in vendor hospital lab; do mt_add_user "$u"; done

enc() { # enc USER FILE: USER encrypts and registers FILE; prints the file id
  local k; k=$(mktemp -u "$MT_WORK/$1.XXXXXX")
  as "$1" file encrypt --in "$2" --out "$k.enc" --key-out "$k.key" >/dev/null
  as "$1" file register "$(as "$1" file upload "$k.enc")" --key "$k.key"
}
outkey() { "$MESATEE_BIN" key generate --out "$MT_WORK/$1.key" >/dev/null; }
N=0
# two MODEL [ARGS...]: vendor(model) x hospital(a) x lab(b) -> hospital(sum, prod)
two() {
  local model=$1; shift
  N=$((N + 1))
  outkey sum$N; outkey prod$N
  local os op fn mid aid bid
  os=$(as hospital file register-output --key "$MT_WORK/sum$N.key")
  op=$(as hospital file register-output --key "$MT_WORK/prod$N.key")
  fn=$(as vendor function register --name "two$N" --builtin onnx_infer --public \
    --input-slot model --input-slot a --input-slot b --output-slot sum --output-slot prod "$@")
  T=$(as vendor task create --function "$fn" --input model=vendor --input a=hospital \
    --input b=lab --output sum=hospital --output prod=hospital)
  mid=$(enc vendor "$model"); aid=$(enc hospital "$D/a.npy"); bid=$(enc lab "$D/b.npy")
  as vendor task assign "$T" --input "model=$mid" >/dev/null
  as hospital task assign "$T" --input "a=$aid" --output "sum=$os" --output "prod=$op" >/dev/null
  OS_=$os
  as lab task assign "$T" --input "b=$bid" >/dev/null
  for u in vendor hospital lab; do as "$u" task approve "$T" >/dev/null; done
  as vendor task invoke "$T" >/dev/null
  as vendor task wait "$T" --timeout 120 >/dev/null || true
}
# one MODEL INPUT [ARGS...]: vendor(model) x hospital(input) -> hospital(output)
one() {
  local model=$1 input=$2; shift 2
  N=$((N + 1))
  outkey out$N
  local o fn mid iid
  o=$(as hospital file register-output --key "$MT_WORK/out$N.key")
  fn=$(as vendor function register --name "one$N" --builtin onnx_infer --public \
    --input-slot model --input-slot input --output-slot output "$@")
  T=$(as vendor task create --function "$fn" --input model=vendor --input input=hospital \
    --output output=hospital)
  mid=$(enc vendor "$model"); iid=$(enc hospital "$input")
  as vendor task assign "$T" --input "model=$mid" >/dev/null
  as hospital task assign "$T" --input "input=$iid" --output "output=$o" >/dev/null
  for u in vendor hospital; do as "$u" task approve "$T" >/dev/null; done
  as vendor task invoke "$T" >/dev/null
  as vendor task wait "$T" --timeout 120 >/dev/null || true
}
status() { as hospital --output json task show "$T"; }
finished() {
  local s; s=$(status)
  [ "$(jget "$s" .status)" = finished ] || fail "$1: $(jget "$s" .status) $(jget "$s" .failure_reason)"
}

# ---- two inputs from two parties, both outputs (outputs=*), the model's hash pinned ----
SHA=$(sha256sum "$D/two.onnx" | cut -d' ' -f1)
two "$D/two.onnx" --arg inputs=A=a,B=b --arg 'outputs=*' --arg "model_sha256=$SHA"
finished "two inputs"
s=$(status)
[ "$(jget "$s" .result.return_value)" = "output shapes: [3,4] [3,4]" ] || fail "result: $(jget "$s" .result)"
[ "$(jget "$s" .arguments.model_sha256)" = "$SHA" ] || fail "task show lacks model_sha256"
case "$(jget "$s" .log)" in *"model sha256 $SHA"*"2 of 2 outputs written"*"load+inputs "*" ms, prepare "*" ms, run "*" ms"*) ;; *) fail "log: $(jget "$s" .log)";; esac
as hospital task result "$T" --slot sum --key "$MT_WORK/sum$N.key" --out "$MT_WORK/sum.npy"
as hospital task result "$T" --slot prod --key "$MT_WORK/prod$N.key" --out "$MT_WORK/prod.npy"
"$PY" "$GEN" check "$MT_WORK/sum.npy" "$D/sum.npy" || fail "sum differs"
"$PY" "$GEN" check "$MT_WORK/prod.npy" "$D/prod.npy" || fail "prod differs"
ok "A from the hospital, B from the lab: sum and prod match numpy; the model's sha256 is in the record"
# a chosen list, in another order than the model's: prod only
two "$D/two.onnx" --arg inputs=B=b,A=a --arg outputs=prod=prod
finished "chosen output"
[ "$(jget "$(status)" .result.return_value)" = "output shapes: [3,4]" ] || fail "result: $(jget "$(status)" .result)"
as hospital task result "$T" --slot prod --key "$MT_WORK/prod$N.key" --out "$MT_WORK/prod2.npy"
"$PY" "$GEN" check "$MT_WORK/prod2.npy" "$D/prod.npy" || fail "prod (chosen) differs"
# an output slot left out of the list holds an empty output (the worker seals every slot)
as hospital task result "$T" --slot sum --key "$MT_WORK/sum$N.key" --out "$MT_WORK/sum2.npy"
[ ! -s "$MT_WORK/sum2.npy" ] || fail "sum written: $(wc -c < "$MT_WORK/sum2.npy") bytes"
ok "outputs=prod=prod writes only that output (sum left empty)"

# ---- external data after the ModelProto in the same payload ----
one "$D/model_ext.bin" "$D/input.npy" --arg "model_size=$(cat "$D/model_ext.size")"
finished "external data"
as hospital task result "$T" --slot output --key "$MT_WORK/out$N.key" --out "$MT_WORK/y.npy"
"$PY" "$GEN" check "$MT_WORK/y.npy" "$D/expected.npy" || fail "external-data output differs"
ok "weights as external data in the model slot (model_size) give numpy's result"

# ---- failures: clear reasons, no model names or data, nothing written ----
bad() { # bad DESC WANT (after a task ran)
  local s r; s=$(status); r="$(jget "$s" .failure_reason)"
  [ "$(jget "$s" .status)" = failed ] || fail "$1: status $(jget "$s" .status)"
  case "$r" in *"$2"*) ;; *) fail "$1: expected '$2' in: $r";; esac
  case "$r" in *adder*|*multiplier*|*secret*) fail "$1: the reason quotes model bytes: $r";; esac
  ok "$1: $r"
}
two "$D/two.onnx" --arg inputs=A=a,B=b --arg "model_sha256=$(printf 0%.0s {1..64})"
bad "another model than the task names" "is not the one the task names (argument model_sha256; the model's SHA-256 is $SHA)"
two "$D/two.onnx"
bad "two inputs, no mapping" "the model has 2 inputs: map each to an input slot with argument 'inputs'"
two "$D/two.onnx" --arg inputs=A=a
bad "an input not mapped" "the model's input 2 (of 2) is not mapped"
two "$D/two.onnx" --arg inputs=A=a,B=b,C=b
bad "a name the model lacks" "argument 'inputs' entry 3: the model has no input of that name"
two "$D/two.onnx" --arg inputs=A=a,B=model
bad "the model slot as an input" "argument 'inputs' entry 2: no input slot 'model'"
two "$D/two.onnx" --arg inputs=A=a,garbage
bad "garbage mapping" "argument 'inputs' entry 2: expected NAME=SLOT"
two "$D/two.onnx" --arg inputs=A=a,B=b --arg outputs=sum=sum,nope=prod
bad "unknown output" "argument 'outputs' entry 2: the model has no output of that name"
two "$D/two.onnx" --arg inputs=A=a,B=b --arg outputs=sum=sum,prod=sum
bad "two outputs to one slot" "two model outputs go to output slot 'sum'"
two "$D/two.onnx" --arg inputs=A=a,B=b --arg shape=12
bad "shape with two inputs" "argument 'shape' reshapes a single input"
one "$D/model_ext.onnx" "$D/input.npy"
bad "external data without model_size" "it keeps tensors in external data"
one "$D/model_ext.bin" "$D/input.npy" --arg model_size=999999
bad "model_size past the slot" "argument 'model_size': expected 1 to the model slot's size"
one "$D/model_ext.bin" "$D/input.npy" --arg model_size=$(( $(cat "$D/model_ext.size") - 7 ))
bad "model_size cutting the ModelProto" "loading the model"

# ---- garbage arguments are refused at registration ----
expect_fail "model_size garbage" "argument 'model_size'" \
  as vendor function register --name g1 --builtin onnx_infer --input-slot model --input-slot input \
  --output-slot output --arg model_size=big
expect_fail "model_sha256 too long" "argument 'model_sha256'" \
  as vendor function register --name g2 --builtin onnx_infer --input-slot model --input-slot input \
  --output-slot output --arg "model_sha256=$SHA$SHA"
echo "all onnx_infer multi-input/output checks passed"
