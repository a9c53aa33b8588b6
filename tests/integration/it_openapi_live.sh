#!/usr/bin/env bash
# The live server answers as docs/api/openapi.yaml says, for every route of
# the spec (issue 9): tests/integration/openapi_live.py exercises each
# operation's success and errors against a real server, validates every JSON
# body against the response schema, checks 405 + Allow on every path, and
# fails when an operation of the spec has no exercise.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
py=
for c in /usr/bin/python3 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import yaml' 2>/dev/null; then py=$c; break; fi
done
[ -n "$py" ] || { echo "SKIP: python3 with PyYAML (Debian: python3-yaml) is needed"; exit 77; }
head -c 32 /dev/urandom | base64 | tr -d '/+=' > "$MT_WORK/metrics.token"
# one KeyStore auditor (threshold 1): release-policy changes are signed
for a in aud1 aud2; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$MT_WORK/$a.pem" 2>/dev/null
  openssl pkey -in "$MT_WORK/$a.pem" -pubout -out "$MT_WORK/$a.pub" 2>/dev/null
done
mt_start_server --metrics-token-file "$MT_WORK/metrics.token" \
  --release-signers "$MT_WORK/aud1.pub" --release-threshold 1
printf 'id1\nid2\nid3\n' > "$MT_WORK/a.txt"
printf 'id2\nid3\nid4\n' > "$MT_WORK/b.txt"
"$MESATEE_BIN" file encrypt --in "$MT_WORK/a.txt" --out "$MT_WORK/a.enc" --key-out "$MT_WORK/a.key" >/dev/null
"$MESATEE_BIN" file encrypt --in "$MT_WORK/b.txt" --out "$MT_WORK/b.enc" --key-out "$MT_WORK/b.key" >/dev/null
MT_URL=$MESATEE_SERVER MT_CA=$MESATEE_CA MT_ADMIN_PW=$MT_WORK/admin.pw \
MT_CIPHER1=$MT_WORK/a.enc MT_CIPHER2=$MT_WORK/b.enc MT_KEY1=$MT_WORK/a.key MT_KEY2=$MT_WORK/b.key \
MT_METRICS_TOKEN=$MT_WORK/metrics.token MT_WORK=$MT_WORK MT_BIN=$MESATEE_BIN \
MT_AUD1=$MT_WORK/aud1.pem MT_AUD2_PUB=$MT_WORK/aud2.pub \
MT_SPEC=$root/docs/api/openapi.yaml "$py" "$root/tests/integration/openapi_live.py" || fail "live answers differ from docs/api/openapi.yaml"
