#!/usr/bin/env bash
# password_check: a user learns whether a password is in a security
# vendor's breached-password list (SHA-1 list, Pwned Passwords format);
# the answer is only true or false, and nobody sees the other's data.
# Usage: examples/password_check.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build} source "$(dirname "$0")/builtin-lib.sh"
bl_start alice vendor
mkdir -p "$MT_WORK/plain"
for p in 123456 password qwerty letmein; do
  printf '%s' "$p" | sha1sum | awk '{ printf "%s:%d\n", toupper($1), NR * 1000 }'
done > "$MT_WORK/plain/breached.txt"
FN=$(as alice function register --name pwcheck --builtin password_check --public \
  --input-slot password --input-slot breached --arg format=sha1)
for pw in letmein 'correct horse battery staple'; do
  printf '%s\n' "$pw" > "$MT_WORK/plain/pw.txt"
  bl_task alice "$FN" "in:password=alice=$(bl_input alice "$MT_WORK/plain/pw.txt")" \
    "in:breached=vendor=$(bl_input vendor "$MT_WORK/plain/breached.txt")"
  say "$BL_WAIT"
  want=false; [ "$pw" = letmein ] && want=true
  [ "$BL_WAIT" = "finished: $want" ] || fail "expected $want, got $BL_WAIT"
done
ok "breached password found, strong password not found"
