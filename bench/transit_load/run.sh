#!/usr/bin/env bash
# bench/transit_load/run.sh [BUILD_DIR] [CONNS...]: starts `mesatee serve
# --level soft` on loopback with its store on disk (lib.sh: WAL,
# synchronous=FULL), makes a user and an aes256-gcm96 and an ecdsa-p256 key,
# and runs transit_load for encrypt (1 KiB) and sign at each connection count
# (default 1 8 32) for BENCH_SECS seconds (default 3). MESATEE_BIN may name
# another build's binary (a before/after comparison on the same machine).
# Anchor: GET /healthz with the same client on the same connections (the
# gateway's floor), measured interleaved with the two routes (healthz,
# encrypt, sign, then again) in ROUNDS rounds (default 2), every run printed.
# BENCH_QUICK=1 (the default): 1 and 8 connections, BENCH_SECS 2.
# Figures vary with the machine's load: quote them with the load average.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; shift || true
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
ROUNDS=${ROUNDS:-2}
SECS=${BENCH_SECS:-$([ "$QUICK" = 0 ] && echo 3 || echo 2)}
LOAD=$PWD/$BUILD/bench/transit_load/transit_load
[ -x "$LOAD" ] || { echo "run.sh: $LOAD not built" >&2; exit 1; }
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
source tests/integration/lib.sh
CONNS=("$@"); [ ${#CONNS[@]} -gt 0 ] || if [ "$QUICK" = 0 ]; then CONNS=(1 8 32); else CONNS=(1 8); fi
mt_start_server --level soft
mt_login admin
mt_add_user bench
as bench key create aes >/dev/null
as bench key create ec --type ecdsa-p256 >/dev/null
bench_header "transit_load (connections ${CONNS[*]}, $SECS s per run, $ROUNDS rounds)"
for r in $(seq 1 "$ROUNDS"); do
  for c in "${CONNS[@]}"; do
    for o in healthz encrypt sign; do
      k=aes; [ "$o" = sign ] && k=ec
      printf 'round %d: ' "$r"
      "$LOAD" -s "$MESATEE_SERVER" -C "$MESATEE_CA" -t "$MT_WORK/bench.token" -k "$k" -o "$o" \
        -c "$c" -d "$SECS" || true
    done
  done
done
bench_footer transit_load
