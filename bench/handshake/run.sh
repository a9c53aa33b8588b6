#!/usr/bin/env bash
# bench/handshake/run.sh [BUILD_DIR] [bench_handshake options]: starts a swtpm
# on free loopback ports for the tpm2 row (skipped when swtpm is absent), then
# runs bench_handshake (plain TLS 1.3 vs soft, tpm2 and recorded SGX/TDX).
# BENCH_QUICK=1 (the default) with no options: -n 200 -r 3; BENCH_QUICK=0: -n 500 -r 5.
# Every run is printed under each row (wall/CPU ms per handshake), the plain
# TLS row ("none") is the anchor, measured interleaved with each evidence kind.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh
BUILD=${1:-build}; shift || true
QUICK=${BENCH_QUICK:-1}; export BENCH_QUICK=$QUICK
if [ $# -eq 0 ]; then if [ "$QUICK" != 0 ]; then set -- -n 200 -r 3; else set -- -n 500 -r 5; fi; fi
bench_header "handshake ($*)"
BIN=$BUILD/bench/handshake/bench_handshake
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (cmake --build $BUILD --target bench_handshake)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mt-bench-hs.XXXXXX")
SW_PID=
trap '[ -z "$SW_PID" ] || kill "$SW_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
if command -v swtpm >/dev/null; then
  for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket
for _ in range(50):
    a=socket.socket(); a.bind(("127.0.0.1",0)); p=a.getsockname()[1]
    b=socket.socket()
    try:
        b.bind(("127.0.0.1",p+1)); print(p); break
    except OSError: pass
    finally: a.close(); b.close()')
    swtpm socket --tpm2 --tpmstate dir="$WORK" \
      --server type=tcp,port="$port",bindaddr=127.0.0.1 \
      --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
      --flags not-need-init,startup-clear >>"$WORK/swtpm.log" 2>&1 &
    SW_PID=$!; sleep 0.3
    kill -0 "$SW_PID" 2>/dev/null && break
    SW_PID=
  done
  [ -z "$SW_PID" ] || export MESATEE_TPM2_TCTI="swtpm:host=127.0.0.1,port=$port"
else
  echo "run.sh: swtpm not installed: the tpm2 row is skipped (apt install swtpm)"
fi
"$BIN" "$@"
bench_footer handshake
