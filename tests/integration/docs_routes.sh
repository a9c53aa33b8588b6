#!/usr/bin/env bash
# The REST API docs stay true to the code: every route of the dispatcher's
# table (src/core/api.c) is in docs/api/openapi.yaml and in the table of
# docs/design.md, and the OpenAPI file names no route the code lacks.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
code=$(sed -n 's/^ *{"\(GET\|POST\|PUT\|DELETE\)", "\([^"]*\)",.*/\1 \2/p' "$root/src/core/api.c" | sort)
[ "$(echo "$code" | wc -l)" -ge 20 ] || { echo "could not read the route table"; exit 1; }
api=$(awk '/^paths:/ {p=1; next} p && /^[^ ]/ {p=0}
  p && /^  \/[^ ]*:$/ {path=$1; sub(/:$/, "", path)}
  p && /^    (get|post|put|delete):/ {m=toupper($1); sub(/:$/, "", m); print m, path}' \
  "$root/docs/api/openapi.yaml" | sort)
if ! diff <(echo "$code") <(echo "$api"); then
  echo "docs/api/openapi.yaml and src/core/api.c disagree (< code, > openapi)"; exit 1
fi
missing=0
while read -r m p; do
  grep -qF "| $m | $p |" "$root/docs/design.md" || { echo "design.md lacks $m $p"; missing=1; }
done <<< "$code"
[ "$missing" = 0 ] && echo "ok - $(echo "$code" | wc -l) routes documented in openapi.yaml and design.md"
