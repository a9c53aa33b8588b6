#!/usr/bin/env bash
# Fusion outputs and chained tasks: task 1 writes A∩B into a fusion file owned
# jointly by alice and bob (platform key, never returned); the fusion file
# becomes an input of task 2, which intersects it with carol's list and gives
# carol the result. Nobody can download the fusion file.
source "$(dirname "$0")/lib.sh"
mt_start_server
mt_login admin
for u in alice bob carol; do mt_add_user "$u"; done
seq -f "id%g" 1 1000 > "$MT_WORK/alice.txt"
seq -f "id%g" 501 1500 > "$MT_WORK/bob.txt"
seq -f "id%g" 901 2000 > "$MT_WORK/carol.txt"
declare -A IN
for u in alice bob carol; do
  as "$u" file encrypt --in "$MT_WORK/$u.txt" --out "$MT_WORK/$u.enc" --key-out "$MT_WORK/$u.key" >/dev/null
  IN[$u]=$(as "$u" file register "$(as "$u" file upload "$MT_WORK/$u.enc")" --key "$MT_WORK/$u.key")
done
FN=$(as alice function register --name psi2 --builtin psi --input-slot x --input-slot y --output-slot r --public)

expect_fail "fusion with a single owner" "at least 2" as alice file register-fusion --owners alice
expect_fail "fusion without the caller" "HTTP 4" as alice file register-fusion --owners bob,carol
FUS=$(as alice file register-fusion --owners alice,bob --name "A and B")
T1=$(as alice task create --function "$FN" --input x=alice --input y=bob --output r=alice,bob)
as alice task assign "$T1" --input "x=${IN[alice]}" --output "r=$FUS" >/dev/null
as bob task assign "$T1" --input "y=${IN[bob]}" >/dev/null
as alice task approve "$T1" >/dev/null; as bob task approve "$T1" >/dev/null
as alice task invoke "$T1" >/dev/null
as alice task wait "$T1" --timeout 60 >/dev/null && ok "task 1 wrote A∩B into the fusion file"
expect_fail "fusion content cannot be downloaded" "HTTP 403" as alice file download "$FUS" --out "$MT_WORK/f"
expect_fail "carol cannot turn the fusion file into an input" "HTTP 404" as carol file as-input "$FUS"
JOINT=$(as bob file as-input "$FUS")
ok "bob turned the fusion output into input $JOINT (owners alice,bob)"

"$MESATEE_BIN" key generate --out "$MT_WORK/carol.out.key" >/dev/null
OC=$(as carol file register-output --key "$MT_WORK/carol.out.key")
T2=$(as carol task create --function "$FN" --input x=alice,bob --input y=carol --output r=carol)
expect_fail "carol assigns the joint file she does not own" "HTTP 40" as carol task assign "$T2" --input "x=$JOINT"
as alice task assign "$T2" --input "x=$JOINT" >/dev/null
as carol task assign "$T2" --input "y=${IN[carol]}" --output "r=$OC" >/dev/null
for u in alice bob carol; do as "$u" task approve "$T2" >/dev/null; done
as carol task invoke "$T2" >/dev/null
as carol task wait "$T2" --timeout 60 >/dev/null
as carol task result "$T2" --slot r --key "$MT_WORK/carol.out.key" --out "$MT_WORK/r.txt" >/dev/null
[ "$(cat "$MT_WORK/r.txt")" = "$(seq -f "id%g" 901 1000 | LC_ALL=C sort)" ] || fail "chained result is wrong"
ok "task 2 gave carol (A∩B)∩C = 100 ids; alice and bob never saw carol's list, carol never saw A∩B"
