#!/usr/bin/env bash
# Functions of executor type "wasm" end to end through the CLI: the three C
# examples of examples/wasm compiled to wasm32-wasi run as multi-party tasks
# (millionaires' problem, private average over N parties, word count over an
# encrypted document), plus registration errors, fuel metering, fuel and
# memory limits and private modules. MT_WASM_DIR holds the built modules.
source "$(dirname "$0")/lib.sh"
: "${MT_WASM_DIR:?MT_WASM_DIR must point at the built wasm examples}"
W=$MT_WASM_DIR
for m in millionaires average wordcount; do
  [ -f "$W/$m.wasm" ] || fail "$W/$m.wasm is missing (build the wasm_examples target)"
done
mt_start_server
mt_login admin
for u in alice bob carol dave; do mt_add_user "$u"; done

# put USER NAME CONTENT: encrypts, uploads and registers an input; prints its id.
put() {
  printf '%s' "$3" > "$MT_WORK/$2.txt"
  as "$1" file encrypt --in "$MT_WORK/$2.txt" --out "$MT_WORK/$2.enc" --key-out "$MT_WORK/$2.key" >/dev/null
  as "$1" file register "$(as "$1" file upload "$MT_WORK/$2.enc")" --key "$MT_WORK/$2.key"
}
# run_task TASK USER...: every USER approves, the first invokes, wait for the end.
run_task() {
  local t=$1; shift
  for u in "$@"; do as "$u" task approve "$t" >/dev/null; done
  as "$1" task invoke "$t" >/dev/null
  as "$1" task wait "$t" --timeout 60 >/dev/null || true
}
show() { as "$1" --output json task show "$2"; }

# ---- registration ------------------------------------------------------------
printf 'not a module' > "$MT_WORK/bad.wasm"
expect_fail "garbage is refused at registration" "offset" \
  as alice function register --name bad --wasm "$MT_WORK/bad.wasm"
printf '\0asm\1\0\0\0\1\5\1\140\0' > "$MT_WORK/trunc.wasm"
expect_fail "a truncated module names its section" "type section" \
  as alice function register --name bad --wasm "$MT_WORK/trunc.wasm"
if command -v wat2wasm >/dev/null; then
  printf '(module (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32))) (memory (export "memory") 1) (func (export "_start")))' > "$MT_WORK/open.wat"
  wat2wasm "$MT_WORK/open.wat" -o "$MT_WORK/open.wasm"
  expect_fail "file access is refused at registration" "path_open" \
    as alice function register --name bad --wasm "$MT_WORK/open.wasm"
  printf '(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))' > "$MT_WORK/spin.wat"
  wat2wasm "$MT_WORK/spin.wat" -o "$MT_WORK/spin.wasm"
fi
printf '{"name":"x","executor_type":"wasm"}' > "$MT_WORK/nopayload.json"
expect_fail "wasm without a payload" "payload" as alice function register --spec "$MT_WORK/nopayload.json"

# ---- millionaires' problem: alice and bob --------------------------------------
FN=$(as alice function register --name millionaires --wasm "$W/millionaires.wasm" \
       --input-slot a --input-slot b --public)
SHA=$(sha256sum "$W/millionaires.wasm" | cut -d' ' -f1)
[ "$(as bob --output json function show "$FN" | jq -r .payload.sha256)" = "$SHA" ] \
  && ok "participants see the SHA-256 of the module they approve"
[ "$(as bob --output json function show "$FN" | jq -r .executor_type)" = wasm ] || fail "executor_type"
A=$(put alice wa "1500000")
B=$(put bob wb $' 2300000\n')
T=$(as alice task create --function "$FN" --input a=alice --input b=bob)
as alice task assign "$T" --input "a=$A" >/dev/null
as bob task assign "$T" --input "b=$B" >/dev/null
run_task "$T" alice bob
S=$(show bob "$T")
[ "$(jget "$S" .status)" = finished ] || fail "millionaires: $(jget "$S" .failure_reason)"
[ "$(jget "$S" .result.return_value)" = b ] || fail "millionaires: got $(jget "$S" .result.return_value)"
FUEL=$(jget "$S" .metering.fuel_used)
[ "$FUEL" -gt 0 ] || fail "no fuel metered"
case "$(jget "$S" .log)" in *1500000*|*2300000*) fail "an amount leaked into the log";; esac
ok "millionaires: bob is richer; neither amount revealed; fuel used $FUEL"

# ---- private average over four parties -----------------------------------------
# registered from a spec: its slots p1..p8 are optional
jq -n --arg p "$(base64 -w0 "$W/average.wasm")" '{name: "average", executor_type: "wasm",
  payload: $p, public: true, inputs: [range(1; 9) | {name: "p\(.)", optional: true}],
  arguments: [{name: "min_parties", default: "3"}]}' > "$MT_WORK/average.json"
FA=$(as alice function register --spec "$MT_WORK/average.json")
declare -A V=([alice]=52000 [bob]=61000 [carol]=47500 [dave]=70500) ID
i=0; INS=(); ASG=()
for u in alice bob carol dave; do
  i=$((i+1)); ID[$u]=$(put "$u" "sal$u" "${V[$u]}"); INS+=(--input "p$i=$u")
done
T=$(as carol task create --function "$FA" "${INS[@]}")
i=0
for u in alice bob carol dave; do i=$((i+1)); as "$u" task assign "$T" --input "p$i=${ID[$u]}" >/dev/null; done
run_task "$T" carol alice bob dave
S=$(show dave "$T")
[ "$(jget "$S" .result.return_value)" = "parties=4 mean=57750.00" ] \
  || fail "average: $(jget "$S" .status) $(jget "$S" .result.return_value) $(jget "$S" .failure_reason)"
ok "average over 4 parties: $(jget "$S" .result.return_value)"
T=$(as alice task create --function "$FA" --input p1=alice --input p2=bob)
as alice task assign "$T" --input "p1=${ID[alice]}" >/dev/null
as bob task assign "$T" --input "p2=${ID[bob]}" >/dev/null
run_task "$T" alice bob
S=$(show alice "$T")
[ "$(jget "$S" .status)" = failed ] || fail "two parties must not get a mean"
case "$(jget "$S" .failure_reason)" in *"exited with status 3"*) ;; *) fail "reason: $(jget "$S" .failure_reason)";; esac
ok "average refuses two parties: $(jget "$S" .failure_reason)"

# ---- word count: carol's private module over dave's encrypted document ----------
FW=$(as carol function register --name wordcount --wasm "$W/wordcount.wasm" --private \
       --allow dave --input-slot doc --output-slot counts --arg top=0:overridable \
       --arg wasm_fuel=2000000000:overridable)
expect_fail "alice cannot see carol's private module" "HTTP 404" as alice function show "$FW"
for _ in $(seq 200); do echo "the quick brown fox jumps over the lazy dog The DOG sleeps"; done > "$MT_WORK/doc.txt"
D=$(put dave doc "$(cat "$MT_WORK/doc.txt")")
"$MESATEE_BIN" key generate --out "$MT_WORK/counts.key" >/dev/null
O=$(as dave file register-output --key "$MT_WORK/counts.key")
T=$(as dave task create --function "$FW" --input doc=dave --output counts=dave --arg top=3)
as dave task assign "$T" --input "doc=$D" --output "counts=$O" >/dev/null
run_task "$T" dave carol
S=$(show dave "$T")
[ "$(jget "$S" .status)" = finished ] || fail "wordcount: $(jget "$S" .failure_reason)"
[ "$(jget "$S" .result.return_value)" = "words=2400 distinct=9" ] || fail "wordcount: $(jget "$S" .result.return_value)"
as dave task result "$T" --slot counts --key "$MT_WORK/counts.key" --out "$MT_WORK/counts.txt" >/dev/null
[ "$(cat "$MT_WORK/counts.txt")" = "$(printf 'the\t600\ndog\t400\nbrown\t200')" ] \
  || fail "wordcount output: $(cat "$MT_WORK/counts.txt")"
ok "word count: $(jget "$S" .result.return_value); output decrypted by dave only; fuel $(jget "$S" .metering.fuel_used)"
expect_fail "carol cannot download dave's counts" "HTTP 40" as carol file download "$O" --out "$MT_WORK/x"

# fuel limit: the same task with too little fuel fails with a clear reason
expect_fail "the same output key twice" "already the key of another output" \
  as dave file register-output --key "$MT_WORK/counts.key"
O2=$(as dave file register-output --key "$MT_WORK/counts.key" --allow-key-reuse)
T=$(as dave task create --function "$FW" --input doc=dave --output counts=dave --arg wasm_fuel=5000)
as dave task assign "$T" --input "doc=$D" --output "counts=$O2" >/dev/null
run_task "$T" dave carol
S=$(show dave "$T")
case "$(jget "$S" .status) $(jget "$S" .failure_reason)" in failed*"fuel exhausted"*) ;; *) fail "fuel: $(jget "$S" .failure_reason)";; esac
[ "$(as dave --output json file show "$O2" | jq -r .written)" = false ] || fail "output of a failed task written"
ok "fuel limit: $(jget "$S" .failure_reason)"

# an endless loop is stopped by fuel, not by the wall clock
if [ -f "$MT_WORK/spin.wasm" ]; then
  FS=$(as alice function register --name spin --wasm "$MT_WORK/spin.wasm" --arg wasm_fuel=100000000)
  T=$(as alice task create --function "$FS")
  run_task "$T" alice
  S=$(show alice "$T")
  case "$(jget "$S" .failure_reason)" in *"fuel exhausted"*) ;; *) fail "spin: $(jget "$S" .failure_reason)";; esac
  [ "$(jget "$S" .metering.fuel_used)" -ge 100000000 ] || fail "spin fuel $(jget "$S" .metering.fuel_used)"
  ok "endless loop stopped after $(jget "$S" .metering.fuel_used) instructions"
fi
# declared argument types (issue 9): checked at registration and task creation
jq '.name = "average-typed" | .arguments = [{name: "min_parties", default: "x", type: "integer"}]' \
  "$MT_WORK/average.json" > "$MT_WORK/typed.json"
expect_fail "typed default that is no integer" "argument 'min_parties': expected an integer" \
  as alice function register --spec "$MT_WORK/typed.json"
jq '.arguments = [{name: "min_parties", default: "3", overridable: true, type: "integer"}]' \
  "$MT_WORK/typed.json" > "$MT_WORK/typed2.json"
FT=$(as alice function register --spec "$MT_WORK/typed2.json")
expect_fail "typed argument set to a non-integer" "argument 'min_parties': expected an integer" \
  as alice task create --function "$FT" --arg min_parties=three --input p1=alice
expect_fail "reserved wasm argument out of range" "argument 'wasm_memory_mb'" \
  as alice task create --function "$FT" --arg wasm_memory_mb=4096 --input p1=alice
as alice task create --function "$FT" --arg min_parties=4 --input p1=alice >/dev/null ||
  fail "a typed argument set right"
ok "wasm argument types checked at register and task create"
echo "it_wasm: all checks passed"
