#!/usr/bin/env bash
# bench/keystore/run.sh [BUILD_DIR] [bench_keystore options, e.g. -c 4 -d 1 -r 3]:
# starts `mesatee serve --level soft` on loopback (lib.sh), writes a policy
# pinning its measurement and platform key (the client verifies the evidence
# in every TLS handshake, as `mesatee --policy` does), adds a user `bench`,
# initialises a SoftHSM2 token in its own SOFTHSM2_CONF / token dir, and runs
# bench_keystore with all columns, at the same nice level as the server (the
# caller's, normally 0): the in-process anchors (SoftHSM2, OpenSSL) and our
# server and module get the same priority. Our PKCS#11 module's column
# runs when BUILD_DIR holds libmesatee-pkcs11.so (configured for the same
# server and policy, user bench). Figures vary with the machine's load: quote
# them with the load average the script prints.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; shift || true
BIN=$BUILD/bench/keystore/bench_keystore
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (cmake --build $BUILD --target bench_keystore)" >&2; exit 1; }
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
source tests/integration/lib.sh
command -v jq >/dev/null || { echo "run.sh: jq is needed" >&2; exit 1; }

mt_start_server --level soft
unset MESATEE_CA
show=$("$MESATEE_BIN" attest show --output json)
cat >"$MT_WORK/policy.json" <<EOP
{"mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
 "measurements": {"gateway": {"measurement": ["$(jget "$show" .measurements.measurement)"]}},
 "soft_platform_keys": ["$(jget "$show" .soft_platform_key)"], "max_evidence_age_s": 86400}
EOP
export MESATEE_POLICY=$MT_WORK/policy.json
MESATEE_CA=$MT_DATA/tls/server-cert.pem mt_login admin
MESATEE_CA=$MT_DATA/tls/server-cert.pem mt_add_user bench

ARGS=(-s "$MESATEE_SERVER" -P "$MT_WORK/policy.json" -u bench -w "$MT_WORK/bench.pw")
HSM=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ -f "$HSM" ] && command -v softhsm2-util >/dev/null; then
  mkdir -p "$MT_WORK/softhsm/tokens"
  export SOFTHSM2_CONF=$MT_WORK/softhsm/softhsm2.conf
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$MT_WORK/softhsm/tokens" >"$SOFTHSM2_CONF"
  softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 87654321 >/dev/null
  ARGS+=(-m "$HSM" -p 87654321)
else
  echo "run.sh: SoftHSM2 not installed: its column is skipped (apt install softhsm2)"
fi
# our module (docs/keystore.md, "PKCS#11 module"): same server, same attestation policy,
# user bench (the PIN is the password)
OURS=$(find "$BUILD" -name 'libmesatee-pkcs11.so' -print -quit 2>/dev/null || true)
if [ -n "$OURS" ]; then
  export MESATEE_PKCS11_CONF=$MT_WORK/pkcs11.conf
  printf 'server = %s\npolicy = %s\nuser = bench\n' "$MESATEE_SERVER" "$MT_WORK/policy.json" \
    >"$MESATEE_PKCS11_CONF"
  ARGS+=(-M "$OURS" -q "$(cat "$MT_WORK/bench.pw")")
fi
bench_header "keystore ($*)"
"$BIN" "${ARGS[@]}" "$@"
bench_footer keystore
