#!/bin/sh
# Runs bench_fileformat, then the anchor `openssl speed -evp aes-256-gcm
# -bytes 16384 -seconds 3` (one core, 16 KiB buffers), and prints one table:
# our encrypt and decrypt rates (best of the iterations), the OpenSSL anchor,
# and the ratios. All rates are GB/s of plaintext (10^9 bytes per second).
# Usage: bench/fileformat/run.sh [BUILD_DIR]   (default: <repo>/build)
# Environment: MIB (buffer size, default 256), ITERS (default 5).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
bin=$build/bench/fileformat/bench_fileformat
if [ ! -x "$bin" ]; then
    echo "run.sh: $bin not found; build it first:" >&2
    echo "  cmake -S $root -B $build && make -C $build bench_fileformat" >&2
    exit 1
fi
command -v openssl >/dev/null || { echo "run.sh: the openssl command is needed for the anchor" >&2; exit 1; }

ours=$("$bin" "${MIB:-256}" "${ITERS:-5}")
echo "$ours"
speed=$(openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null)
# The result line reads "AES-256-GCM  4203054.92k": 1000s of bytes per second.
anchor=$(echo "$speed" | awk 'toupper($1) == "AES-256-GCM" { v = $NF; sub(/k$/, "", v); printf "%.2f", v * 1000 / 1e9 }')
if [ -z "$anchor" ]; then
    echo "run.sh: could not parse the openssl speed output:" >&2
    echo "$speed" >&2
    exit 1
fi
echo "openssl speed -evp aes-256-gcm -bytes 16384: $anchor GB/s"
echo
echo "$ours" | awk -v a="$anchor" '
    $1 == "RESULT" { best[$2] = $3 }
    END {
        printf "%-10s %12s %12s %12s %9s %9s\n", "mode", "encrypt", "decrypt", "openssl", "enc/ossl", "dec/ossl"
        split("oneshot stream", modes, " ")
        for (i = 1; i <= 2; i++) {
            m = modes[i]; e = best[m "_encrypt"]; d = best[m "_decrypt"]
            printf "%-10s %7.2f GB/s %7.2f GB/s %7.2f GB/s %9.2f %9.2f\n", m, e, d, a, e / a, d / a
        }
    }'
