#!/usr/bin/env bash
# Issue 10: the audit entry of a root-key retirement is durable BEFORE the
# version is destroyed. Fault injection: the daemon runs with
# MESATEE_TEST_KEK_CRASH_AFTER_RETIRE=1, which ends the process right after
# the destruction (before anything else is written, as a crash or a failed
# store commit there would). After a restart the retirement's entry is in
# the audit chain (it was lost before this ordering), the version is gone,
# the chain verifies (audit verify) and the keys stored under the new version work.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
MESATEE_TEST_KEK_CRASH_AFTER_RETIRE=1 mt_start_server --level soft
mt_login admin
mt_add_user alice
printf 'kept across the retirement' > "$MT_WORK/msg"
as alice key create tk >/dev/null || fail "transit key create"
CT=$(as alice key encrypt tk --in "$MT_WORK/msg") || fail "transit encrypt"
out=$(as admin admin keystore rotate --output json)
[ "$(jget "$out" .version)" = 2 ] || fail "rotate: $out"
# the rewrap moves the one key to version 2, retires version 1, and the
# injected fault ends the process right after the destruction
for _ in $(seq 600); do kill -0 "$MT_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$MT_PID" 2>/dev/null; then fail "the daemon did not reach the retirement"; fi
rc=0; wait "$MT_PID" || rc=$?
MT_PID=
[ "$rc" = 99 ] || fail "the daemon ended with $rc, not at the injected fault (99)"
ok "fault injected right after root key version 1 was destroyed"

mt_start_server --level soft
st=$(as admin admin keystore status --output json) || fail "keystore status: $st"
[ "$(jget "$st" '[.versions[].version]|join(",")')" = 2 ] || fail "version 1 not destroyed: $st"
audit=$(as admin audit list --limit 1000 --output json) || fail "audit list: $audit"
n=$(jget "$audit" '[.entries[] | select(.action == "keystore: root key version retired" and .object == "kek:1")] | length')
[ "$n" -ge 1 ] || fail "the retirement of version 1 is not in the audit chain: $audit"
[ "$(as alice key decrypt tk "$CT")" = "kept across the retirement" ] || fail "decrypt after the fault"
mt_stop_server
v=$("$MESATEE_BIN" audit verify --data-dir "$MT_DATA" 2>&1) || fail "the audit chain does not verify after the fault: $v"
ok "the retirement's audit entry survived a crash right after the destruction; keys work"
