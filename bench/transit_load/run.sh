#!/usr/bin/env bash
# bench/transit_load/run.sh [BUILD_DIR] [CONNS...]: starts `mesatee serve
# --level soft` on loopback with its store on disk (lib.sh: WAL,
# synchronous=FULL), makes a user and an aes256-gcm96 and an ecdsa-p256 key,
# and runs transit_load for encrypt (1 KiB) and sign at each connection count
# (default 1 8 32) for BENCH_SECS seconds (default 3). MESATEE_BIN may name
# another build's binary (a before/after comparison on the same machine).
# Figures vary with the machine's load: quote them with the load average.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}; shift || true
LOAD=$PWD/$BUILD/bench/transit_load/transit_load
[ -x "$LOAD" ] || { echo "run.sh: $LOAD not built" >&2; exit 1; }
export MESATEE_BIN=${MESATEE_BIN:-$PWD/$BUILD/src/cli/mesatee}
source tests/integration/lib.sh
CONNS=("$@"); [ ${#CONNS[@]} -gt 0 ] || CONNS=(1 8 32)
mt_start_server --level soft
mt_login admin
mt_add_user bench
as bench key create aes >/dev/null
as bench key create ec --type ecdsa-p256 >/dev/null
echo "run.sh: $(date -u +%FT%TZ), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${CONNS[@]}"; do
  "$LOAD" -s "$MESATEE_SERVER" -C "$MESATEE_CA" -t "$MT_WORK/bench.token" -k aes -o encrypt \
    -c "$c" -d "${BENCH_SECS:-3}" || true
  "$LOAD" -s "$MESATEE_SERVER" -C "$MESATEE_CA" -t "$MT_WORK/bench.token" -k ec -o sign \
    -c "$c" -d "${BENCH_SECS:-3}" || true
done
echo "run.sh: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
