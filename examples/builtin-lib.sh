# Helpers shared by the built-in examples (examples/<function>.sh): a real
# `mesatee serve` (tests/integration/lib.sh), parties that encrypt their own
# files locally, and one task run through the CLI from creation to results.
# Usage: BUILD=build source examples/builtin-lib.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export MESATEE_BIN=${MESATEE_BIN:-$PWD/${BUILD:-build}/src/cli/mesatee}
[ -x "$MESATEE_BIN" ] || { echo "example: $MESATEE_BIN not built" >&2; exit 1; }
source tests/integration/lib.sh

say() { echo "== $*"; }

# bl_start USER...: starts the server; admin creates the users.
bl_start() {
  mt_start_server
  mt_login admin
  for u in "$@"; do mt_add_user "$u"; done
}

# bl_input USER FILE: USER encrypts FILE locally, uploads the ciphertext and
# registers it; prints the file id.
bl_input() {
  local u=$1 f=$2 b k; b=$(basename "$f"); k=$(mktemp -u "$MT_WORK/$u.$b.XXXXXX")
  as "$u" file encrypt --in "$f" --out "$k.enc" --key-out "$k.key" >/dev/null
  local url; url=$(as "$u" file upload "$k.enc")
  as "$u" file register "$url" --key "$k.key" --name "$u $b"
}

# bl_output USER NAME: USER registers an output under a fresh key
# $MT_WORK/USER.NAME.key; prints the file id.
bl_output() {
  "$MESATEE_BIN" key generate --out "$MT_WORK/$1.$2.key" >/dev/null
  as "$1" file register-output --key "$MT_WORK/$1.$2.key" --name "$1 $2"
}

# bl_task CREATOR FUNCTION_ID "SLOT=USER=FILE_ID"... : creates the task
# (input slots start with "in:", output slots with "out:"), every owner
# assigns its file, every participant approves, the creator invokes and
# waits. Sets BL_TASK (the task id) and BL_WAIT (`task wait`'s line,
# "finished: <return value>"); fails the script if the task fails.
bl_task() {
  local creator=$1 fn=$2; shift 2
  local create=() users=() spec kind kind_slot slot user file
  for spec in "$@"; do
    IFS='=' read -r kind_slot user file <<<"$spec"
    kind=${kind_slot%%:*}; slot=${kind_slot#*:}
    [ "$kind" = in ] && create+=(--input "$slot=$user") || create+=(--output "$slot=$user")
    users+=("$user")
  done
  local task; task=$(as "$creator" task create --function "$fn" "${create[@]}")
  declare -A assign=()
  for spec in "$@"; do
    IFS='=' read -r kind_slot user file <<<"$spec"
    kind=${kind_slot%%:*}; slot=${kind_slot#*:}
    [ "$kind" = in ] && assign[$user]+=" --input $slot=$file" || assign[$user]+=" --output $slot=$file"
  done
  for user in "${!assign[@]}"; do
    # shellcheck disable=SC2086  # slot names and ids hold no spaces
    as "$user" task assign "$task" ${assign[$user]} >/dev/null
  done
  local u
  for u in $(printf '%s\n' "$creator" "${users[@]}" | sort -u); do
    as "$u" task approve "$task" >/dev/null
  done
  as "$creator" task invoke "$task" >/dev/null
  BL_TASK=$task
  BL_WAIT=$(as "$creator" task wait "$task" --timeout 60) || fail "task $task: $BL_WAIT"
}

# bl_result USER SLOT NAME OUT: USER downloads and decrypts its output.
bl_result() {
  as "$1" task result "$BL_TASK" --slot "$2" --key "$MT_WORK/$1.$3.key" --out "$4"
}

# bl_expect_file GOT WANT DESC
bl_expect_file() {
  if ! cmp -s "$1" "$2"; then
    echo "example: $3 differs from the expected result:" >&2; diff "$2" "$1" >&2 || true; exit 1
  fi
  ok "$3"
}
