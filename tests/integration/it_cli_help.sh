#!/usr/bin/env bash
# The CLI's conventions (docs/cli.md): --help of every command from the option
# table (each option with description and default), the table check, short
# forms, "did you mean", --output json results and JSON errors on stderr (a
# usage error, a server error, a network error), the generated man page (lint
# with groff -ww, or mandoc -Tlint where installed) and the bash completion
# (sourced and driven through COMP_WORDS), and their installed locations.
# Env: MESATEE_BIN; MT_MAN_PAGE, MT_COMPLETION (the build's generated files);
# MT_BUILD_DIR (for the install check).
source "$(dirname "$0")/lib.sh"
M=$MESATEE_BIN
W=$MT_WORK

# ---- every option of every command has a description and a default ----
out=$("$M" __check-help) || fail "table check: $out"
ok "__check-help: $out"
n=0
while read -r name _; do
  [ -n "$name" ] || continue
  # "group sub" from the commands list of --help
  read -r -a words <<<"$name"
  help=$("$M" "${words[@]}" --help) || fail "$name --help failed"
  case "$help" in *"usage: mesatee $name"*) ;; *) fail "$name --help: no usage line: $help" ;; esac
  # each option line carries a description and "(default: ...)" (a long
  # option's description is on the next line)
  bad=$(awk '
    function check() { if (inopt && rec !~ /^[^ (].* \(default: .+\)$/) { print hdr; bad = 1 } inopt = 0 }
    inopt && length($0) > 32 && substr($0, 1, 32) ~ /^ +$/ && substr($0, 33, 1) != " " { rec = (rec == "" ? "" : rec " ") substr($0, 33); next }
    { check() }
    /^  (-[a-zA-Z], |    )--/ { inopt = 1; hdr = $0; rec = substr($0, 33); sub(/^ +/, "", rec) }
    END { check(); exit bad }' <<<"$help") || fail "$name --help: option without description/default: $bad"
  n=$((n + 1))
done < <("$M" --help | sed -n '/^commands:/,/^$/p' | sed -nE 's/^  ([a-z_-]+( [a-z-]+)?) {2,}.*/\1/p')
[ "$n" -ge 40 ] || fail "only $n commands in --help"
ok "--help of $n commands: every option has a description and a default"
"$M" help task wait | grep -q "usage: mesatee task wait TASK_ID" || fail "mesatee help task wait"
"$M" file --help | grep -q "usage: mesatee file encrypt" || fail "mesatee file --help"
"$M" -V | grep -q "^mesatee " || fail "-V"
ok "help forms: mesatee help CMD, GROUP --help, -V"

# ---- did you mean ----
expect_fail "typo in a command" "did you mean 'task'?" "$M" tsk list
expect_fail "typo in a subcommand" "did you mean 'task show'?" "$M" task shwo x
expect_fail "typo in an option" "did you mean '--password-file'?" "$M" login --user a --pasword-file x
expect_fail "typo in a global option" "did you mean '--server'?" "$M" --sever https://x file list
expect_fail "typo after help" "did you mean 'task'?" "$M" help tsk
expect_fail "no suggestion for garbage" "unknown command 'qqqqqqqq'" "$M" qqqqqqqq
if "$M" qqqqqqqq 2>&1 | grep -q "did you mean"; then fail "suggested something for garbage"; fi
for bad in -- - -Q --=x '--%%' $'--\xff' "-$(printf 'x%.0s' {1..300})"; do
  rc=0; "$M" file list "$bad" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || [ "$bad" = -- ] || [ "$bad" = - ] || fail "garbage option '$bad': exit $rc"
done
ok "garbage options: usage errors"

# ---- short forms ----
printf 'secret data\n' >"$W/plain"
"$M" key generate -o "$W/k" >/dev/null || fail "key generate -o"
"$M" file encrypt -i "$W/plain" -o "$W/c" -k "$W/k" >/dev/null || fail "encrypt with short forms"
"$M" file decrypt -i"$W/c" -o"$W/p2" -k"$W/k" >/dev/null || fail "decrypt with attached short values"
cmp -s "$W/plain" "$W/p2" || fail "short-form round trip differs"
expect_fail "flag short form with a value" "takes no value" "$M" -hx
expect_fail "unknown short form" "unknown option '-Q'" "$M" file list -Q
ok "short forms -i -o -k (and -oVALUE)"

# ---- --output json: results and errors ----
j=$("$M" --output json key generate -o "$W/k2") || fail "json key generate"
[ "$(jget "$j" .key_file)" = "$W/k2" ] || fail "key generate json: $j"
j=$("$M" --output json file decrypt -i "$W/c" -o "$W/p3" -k "$W/k") || fail "json decrypt"
[ "$(jget "$j" .decrypted)" = true ] || fail "decrypt json: $j"
rc=0; "$M" --output json file encrypt --in x >"$W/o" 2>"$W/e" || rc=$?
[ "$rc" -eq 2 ] && [ ! -s "$W/o" ] || fail "json usage error: exit $rc, stdout $(cat "$W/o")"
[ "$(jq -r .error.code "$W/e")" = usage ] && [ "$(jq -r .error.exit_code "$W/e")" = 2 ] &&
  [ "$(jq -r .error.http_status "$W/e")" = null ] &&
  [ "$(jq -r .error.message "$W/e")" = "missing --out" ] || fail "json usage error: $(cat "$W/e")"
[ "$(wc -l <"$W/e")" -eq 1 ] || fail "json error is not one line: $(cat "$W/e")"
rc=0; MESATEE_OUTPUT=json "$M" tsk >/dev/null 2>"$W/e" || rc=$?
[ "$rc" -eq 2 ] && jq -e '.error.message | test("did you mean")' "$W/e" >/dev/null ||
  fail "MESATEE_OUTPUT=json unknown command: $(cat "$W/e")"
cp "$W/c" "$W/c.bad"; mt_flip_byte "$W/c.bad" 60
rc=0; "$M" --output json file decrypt -i "$W/c.bad" -o "$W/p4" -k "$W/k" 2>"$W/e" || rc=$?
[ "$rc" -eq 1 ] && [ "$(jq -r .error.code "$W/e")" = crypto_failed ] && [ ! -e "$W/p4" ] ||
  fail "json decrypt of a tampered file: $(cat "$W/e")"
rc=0; "$M" --output json config show --config /nonexistent 2>"$W/e" || rc=$?
[ "$rc" -eq 2 ] && [ "$(jq -r .error.code "$W/e")" = usage ] || fail "json config error: $(cat "$W/e")"
rc=0; "$M" --output json --server https://127.0.0.1:1 file list 2>"$W/e" || rc=$?
[ "$rc" -eq 1 ] && [ "$(jq -r .error.http_status "$W/e")" = null ] &&
  [ "$(jq -r .error.code "$W/e")" = network_error ] &&
  jq -e '.error.message | test("connect")' "$W/e" >/dev/null || fail "json network error: $(cat "$W/e")"
ok "json results and JSON errors (usage, local, network)"

mt_start_server
mt_login admin
rc=0; as admin --output json file show 0123456789abcdef0123456789abcdef >"$W/o" 2>"$W/e" || rc=$?
[ "$rc" -eq 1 ] && [ ! -s "$W/o" ] || fail "json server error: exit $rc, stdout $(cat "$W/o")"
[ "$(jq -r .error.http_status "$W/e")" = 404 ] && [ "$(jq -r .error.code "$W/e")" = not_found ] &&
  [ "$(jq -r .error.exit_code "$W/e")" = 1 ] || fail "json server error: $(cat "$W/e")"
j=$(as admin --output json user list) || fail "json user list"
jq -e . <<<"$j" >/dev/null || fail "user list json: $j"
ok "JSON error of a server error: http_status 404, code not_found"

# ---- progress on stderr: forced (MESATEE_PROGRESS=1), off when not a terminal ----
seq -f "id%08g" 1 200000 >"$W/big.txt"
as admin file encrypt -i "$W/big.txt" -o "$W/big.enc" --key-out "$W/big.key" >/dev/null
url=$(MESATEE_PROGRESS=1 as admin file upload "$W/big.enc" 2>"$W/e") || fail "upload: $(cat "$W/e")"
grep -q "upload: .*(100%)" "$W/e" || fail "no upload progress: $(cat "$W/e")"
as admin file upload "$W/big.enc" >/dev/null 2>"$W/e" || fail "upload"
[ ! -s "$W/e" ] || fail "progress drawn although stderr is no terminal: $(cat "$W/e")"
if command -v script >/dev/null; then # a real terminal (pty) on stderr
  script -qec "MESATEE_TOKEN_FILE=$W/admin.token '$M' file upload '$W/big.enc'" /dev/null >"$W/tty" 2>&1 ||
    fail "upload under script: $(cat "$W/tty")"
  grep -q "upload: " "$W/tty" || fail "no progress on a terminal: $(cat "$W/tty")"
fi
FI=$(as admin file register "$url" --key "$W/big.key")
FN=$(as admin function register --name self-psi --builtin psi --input-slot a --input-slot b --output-slot r)
as admin key generate -o "$W/r.key" >/dev/null
FO=$(as admin file register-output -k "$W/r.key")
T=$(as admin task create -f "$FN" --input a=admin --input b=admin --output r=admin)
as admin task assign "$T" --input "a=$FI" --input "b=$FI" --output "r=$FO" >/dev/null
as admin task approve "$T" >/dev/null 2>&1 || true
as admin task invoke "$T" >/dev/null
MESATEE_PROGRESS=1 as admin task wait "$T" -t 120 >/dev/null 2>"$W/e" || fail "task wait: $(cat "$W/e")"
grep -qE "task: (finished|running|staged|ready|pending)[a-z]* \([0-9]+s\)" "$W/e" || fail "no task wait progress: $(cat "$W/e")"
MESATEE_PROGRESS=1 as admin task result "$T" --slot r -k "$W/r.key" -o "$W/r.txt" >/dev/null 2>"$W/e" ||
  fail "task result: $(cat "$W/e")"
grep -q "download: " "$W/e" || fail "no download progress: $(cat "$W/e")"
[ "$(wc -l <"$W/r.txt")" -eq 200000 ] || fail "psi of a file with itself: $(wc -l <"$W/r.txt") lines"
ok "progress on stderr: upload, task wait, download"
mt_stop_server

# ---- man page ----
man_src=${MT_MAN_PAGE:-}
[ -n "$man_src" ] && [ -s "$man_src" ] || { "$M" __man >"$W/mesatee.1"; man_src=$W/mesatee.1; }
cmp -s <("$M" __man) "$man_src" || fail "the built man page differs from 'mesatee __man'"
if command -v mandoc >/dev/null; then
  mandoc -Tlint -W warning "$man_src" && ok "mandoc -Tlint" || fail "mandoc -Tlint: $(mandoc -Tlint "$man_src" 2>&1 | head)"
fi
warn=$(groff -man -ww -z "$man_src" 2>&1) || fail "groff failed: $warn"
[ -z "$warn" ] || fail "groff warnings: $warn"
# the check lintian runs on installed man pages
warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$man_src" 2>&1 >/dev/null) ||
  fail "man --warnings failed: $warn"
[ -z "$warn" ] || fail "man --warnings: $warn"
text=$(MANWIDTH=100 man -l "$man_src" 2>&1 | col -b 2>/dev/null || MANWIDTH=100 man -l "$man_src" 2>&1)
for want in "file encrypt" "--key-out NEWKEYFILE" "task wait TASK_ID" "EXIT STATUS" "MESATEE_OUTPUT"; do
  grep -qF -- "$want" <<<"$text" || fail "man page lacks '$want'"
done
ok "man page: groff -ww clean, renders with man -l"

# ---- bash completion ----
comp=${MT_COMPLETION:-}
[ -n "$comp" ] && [ -s "$comp" ] || { "$M" completion bash >"$W/comp"; comp=$W/comp; }
cmp -s <("$M" completion bash) "$comp" || fail "the built completion differs"
bash --norc --noprofile -c '
  source "$1"
  t() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _mesatee; echo "${COMPREPLY[*]}"; }
  [ "$(t mesatee fi)" = "file" ] || { echo "fi -> $(t mesatee fi)"; exit 1; }
  [ "$(t mesatee task w)" = "wait" ] || { echo "task w -> $(t mesatee task w)"; exit 1; }
  [ "$(t mesatee help ta)" = "task" ] || { echo "help ta -> $(t mesatee help ta)"; exit 1; }
  [ "$(t mesatee help task wa)" = "wait" ] || { echo "help task wa -> $(t mesatee help task wa)"; exit 1; }
  [ "$(t mesatee -s https://x:1 task w)" = "wait" ] || { echo "global value skipped?"; exit 1; }
  [ "$(t mesatee file encrypt --k)" = "--key-out --key" ] || { echo "--k -> $(t mesatee file encrypt --k)"; exit 1; }
  [ "$(t mesatee serve --level s)" = "soft sev-snp sgx" ] || { echo "level -> $(t mesatee serve --level s)"; exit 1; }
  [ "$(t mesatee --output j)" = "json" ] || { echo "output -> $(t mesatee --output j)"; exit 1; }
  r=$(t mesatee task create --output x); [ -z "$r" ] || { echo "task create --output offered $r"; exit 1; }
  complete -p mesatee | grep -q _mesatee || exit 1
' _ "$comp" || fail "completion"
ok "bash completion: commands, subcommands, options, choices"

# ---- installed locations ----
if [ -n "${MT_BUILD_DIR:-}" ]; then
  cmake --install "$MT_BUILD_DIR" --prefix "$W/inst" >/dev/null || fail "cmake --install"
  man1=$(find "$W/inst" -path '*/man/man1/mesatee.1.gz' | head -1)
  [ -n "$man1" ] || fail "no share/man/man1/mesatee.1.gz installed"
  [ -s "$W/inst/share/bash-completion/completions/mesatee" ] || fail "completion not installed"
  ok "installed: ${man1#"$W/inst/"}, share/bash-completion/completions/mesatee"
fi
echo "PASS it_cli_help"
