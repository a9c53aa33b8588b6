#!/usr/bin/env bash
# The Python SDK (sdk/python, issue 11) against a real server on loopback at
# level soft: sdk/python/tests (pytest, Debian python3-pytest) with every
# client on attested TLS: two organisations' multi-party tasks (a builtin and
# a python function), errors with the server's code and message, bad
# arguments refused before C, the signature checker's drift detection, and
# examples/python/two_party_regression.py run as two organisations.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
"$py" -c 'import pytest, numpy' 2>/dev/null ||
  { echo "SKIP: /usr/bin/python3 with pytest and numpy (Debian: python3-pytest python3-numpy)"; exit 77; }
: "${MESATEE_LIB:?MESATEE_LIB must point at libmesatee.so}"
mt_start_server --level soft --task-cpu-s 10 --task-wall-s 60
# a sanitizer build of libmesatee needs its runtime preloaded into python
mt_sanitizer_tools "$MESATEE_LIB"
LD_PRELOAD=${MT_TOOL_PRELOAD:-} ASAN_OPTIONS=${MT_TOOL_ASAN:-${ASAN_OPTIONS:-}} \
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_WORK=$MT_WORK MT_ADMIN_PW=$MT_WORK/admin.pw \
PYTHONPATH=$ROOT/sdk/python PYTHONDONTWRITEBYTECODE=1 \
  "$py" -m pytest -q -p no:cacheprovider --basetemp="$MT_WORK/pytest" "$ROOT/sdk/python/tests" ||
  fail "pytest sdk/python/tests"
ok "python SDK: pytest against a server at level soft"
