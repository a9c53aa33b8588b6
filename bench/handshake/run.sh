#!/usr/bin/env bash
# bench/handshake/run.sh [BUILD_DIR] [bench_handshake options]: starts a swtpm
# on free loopback ports for the tpm2 row (skipped when swtpm is absent), then
# runs bench_handshake (plain TLS 1.3 vs soft, tpm2 and recorded SGX/TDX).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}; shift || true
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
