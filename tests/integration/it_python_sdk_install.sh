#!/usr/bin/env bash
# `pip install ./sdk/python` works offline (docs/python.md): into a
# throw-away venv (/usr/bin/python3 -m venv --system-site-packages) with
# --no-index --no-build-isolation (Debian's setuptools and wheel), from a
# copy of sdk/python (the build leaves build/ and *.egg-info behind). The
# installed package then finds libmesatee through MESATEE_LIB, next to the
# package, and not at all (a clear OSError naming MESATEE_LIB).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${MESATEE_LIB:?MESATEE_LIB must point at libmesatee.so}"
/usr/bin/python3 -c 'import venv, ensurepip, setuptools, wheel' 2>/dev/null ||
  { echo "SKIP: needs python3-venv, python3-setuptools and python3-wheel"; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/mesatee-pyinst.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cp -r "$ROOT/sdk/python" "$W/src"
rm -rf "$W/src/build" "$W/src"/*.egg-info
/usr/bin/python3 -m venv --system-site-packages --without-pip "$W/venv"
# the venv sees Debian's pip (python3-pip) through the system site-packages
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
  "$W/venv/bin/python" -m pip install -q --no-index \
  --no-build-isolation "$W/src" > "$W/pip.log" 2>&1 || { cat "$W/pip.log" >&2; fail "pip install"; }
site=$("$W/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -f "$site/mesatee/client.py" ] && [ -f "$site/mesatee/py.typed" ] || fail "package not installed into $site"
echo "ok - pip install --no-index --no-build-isolation ./sdk/python into a venv"
mt_sanitizer_preload=
if ldd "$MESATEE_LIB" 2>/dev/null | grep -q libasan; then
  mt_sanitizer_preload="$(ldd "$MESATEE_LIB" | awk '/libasan|libubsan/ {print $3}' | tr '\n' ' ')"
fi
run() { (cd "$W" && LD_PRELOAD=$mt_sanitizer_preload ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 \
          "$W/venv/bin/python" -c "$1"); }
code='import mesatee, sys; k = mesatee.generate_key(); assert len(k) == 32
print(mesatee.__file__, mesatee.version())'
out=$(MESATEE_LIB=$MESATEE_LIB run "$code") || fail "import with MESATEE_LIB: $out"
case "$out" in "$site/mesatee/__init__.py "*) ;; *) fail "imported the wrong package: $out";; esac
echo "ok - the installed package loads libmesatee from MESATEE_LIB ($out)"
cp "$MESATEE_LIB" "$site/mesatee/libmesatee.so.0"
out=$(env -u MESATEE_LIB LD_LIBRARY_PATH= bash -c "$(declare -f run); W=$W mt_sanitizer_preload='$mt_sanitizer_preload' run '$code'") ||
  fail "libmesatee next to the package: $out"
echo "ok - ... or next to the package (mesatee/libmesatee.so.0)"
rm "$site/mesatee/libmesatee.so.0"
out=$(env -u MESATEE_LIB LD_LIBRARY_PATH= bash -c "$(declare -f run); W=$W mt_sanitizer_preload='$mt_sanitizer_preload' run '$code'" 2>&1) &&
  { ldconfig -p | grep -q 'libmesatee.so.0 ' || fail "loaded a library that is nowhere: $out"; }
case "$out" in *"set MESATEE_LIB"*|*"version"*) ;; *) fail "no clear error without the library: $out";; esac
echo "ok - without the library: a clear error naming MESATEE_LIB"
