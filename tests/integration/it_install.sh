#!/usr/bin/env bash
# Install, move, build against it (issue 9, libmesatee and packaging):
#  - `cmake --install` into a temporary prefix, then the prefix is MOVED;
#  - the installed mesatee.pc and CMake package still point at the moved tree;
#  - an external C program (tests/integration/pkg/consumer.c) builds against it
#    with pkg-config and with find_package(mesatee), and runs the typed list/get
#    calls against a live server;
#  - the installed `mesatee` runs from the moved prefix with its own libmesatee
#    (RUNPATH $ORIGIN/../lib) and its own worker (libexec/mesatee).
source "$(dirname "$0")/lib.sh"
: "${MT_BUILD_DIR:?MT_BUILD_DIR must point at the build tree}"
LIB=${MT_INSTALL_LIBDIR:-lib}   # CMAKE_INSTALL_LIBDIR, relative to the prefix
SRC=$(cd "$(dirname "$0")/pkg" && pwd)
CC=${CC:-cc}
XFLAGS=${MT_CONSUMER_FLAGS:-}   # sanitizer flags in a sanitized build
# loads_moved_lib BIN: BIN's libmesatee resolves to the moved tree's file.
loads_moved_lib() {
  local got
  got=$(ldd "$1" | awk '$1 == "libmesatee.so.0" {print $3}')
  [ -n "$got" ] && [ "$(readlink -f "$got")" = "$(readlink -f "$P/$LIB/libmesatee.so.0")" ]
}

cmake --install "$MT_BUILD_DIR" --prefix "$MT_WORK/stage" >"$MT_WORK/install.log" 2>&1 \
  || { cat "$MT_WORK/install.log"; fail "cmake --install"; }
mkdir -p "$MT_WORK/moved"
mv "$MT_WORK/stage" "$MT_WORK/moved/prefix"
P=$MT_WORK/moved/prefix
[ ! -e "$MT_WORK/stage" ] || fail "stage still exists"
for f in bin/mesatee libexec/mesatee/mesatee-worker include/mesatee.h "$LIB/libmesatee.so" \
         "$LIB/pkgconfig/mesatee.pc" "$LIB/cmake/mesatee/mesateeConfig.cmake" \
         "$LIB/cmake/mesatee/mesateeConfigVersion.cmake"; do
  [ -e "$P/$f" ] || fail "installed tree lacks $f"
done
ok "installed into a temporary prefix and moved it"

# The library itself: SONAME, only mesatee_* exported, the typed calls among them.
soname=$(readelf -d "$P/$LIB/libmesatee.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmesatee.so.0 ] || fail "SONAME is '$soname'"
exports=$(nm -D --defined-only "$P/$LIB/libmesatee.so" | awk '$2=="T"{print $3}' | sed 's/@.*//')
! grep -qv '^mesatee_' <<<"$exports" || fail "non-mesatee symbols exported"
for s in mesatee_file_list mesatee_file_get_info mesatee_file_info_free mesatee_function_list \
         mesatee_function_get_info mesatee_function_info_free mesatee_task_list \
         mesatee_task_get_info mesatee_task_info_free; do
  grep -qx "$s" <<<"$exports" || fail "$s is not exported"
done
ok "libmesatee.so.0 exports only mesatee_*, typed calls included"

# pkg-config, from the moved tree.
export PKG_CONFIG_PATH=$P/$LIB/pkgconfig
pfx=$(pkg-config --variable=prefix mesatee)
[ "$(cd "$pfx" && pwd -P)" = "$(cd "$P" && pwd -P)" ] || fail "mesatee.pc prefix is $pfx, not the moved $P"
[ "$(pkg-config --modversion mesatee)" = "$("$P/bin/mesatee" --version | awk '{print $2}')" ] \
  || fail "pkg-config version differs from mesatee --version"
libdir=$(pkg-config --variable=libdir mesatee)
# shellcheck disable=SC2046
# shellcheck disable=SC2086
$CC -std=c17 -Wall -Wextra -Werror $XFLAGS -o "$MT_WORK/consumer-pc" "$SRC/consumer.c" \
  $(pkg-config --cflags mesatee) $(pkg-config --libs mesatee) -Wl,-rpath,"$libdir" \
  || fail "building against the installed tree with pkg-config"
out=$("$MT_WORK/consumer-pc") || fail "consumer (pkg-config) failed: $out"
case "$out" in *"client ok"*) ;; *) fail "consumer (pkg-config): $out" ;; esac
loads_moved_lib "$MT_WORK/consumer-pc" || fail "consumer-pc does not use the moved library"
ok "pkg-config: prefix follows the moved tree; consumer builds and runs"

# CMake find_package, from the moved tree.
cmake -S "$SRC" -B "$MT_WORK/consumer-build" -DCMAKE_PREFIX_PATH="$P" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $XFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$XFLAGS" \
  >"$MT_WORK/cmake.log" 2>&1 \
  || { cat "$MT_WORK/cmake.log"; fail "configuring a find_package(mesatee) project"; }
grep -q "mesatee_DIR:PATH=$P/$LIB/cmake/mesatee" "$MT_WORK/consumer-build/CMakeCache.txt" \
  || fail "find_package did not find the moved tree: $(grep mesatee_DIR "$MT_WORK/consumer-build/CMakeCache.txt")"
cmake --build "$MT_WORK/consumer-build" >>"$MT_WORK/cmake.log" 2>&1 \
  || { cat "$MT_WORK/cmake.log"; fail "building a find_package(mesatee) project"; }
CONSUMER=$MT_WORK/consumer-build/consumer
out=$("$CONSUMER") || fail "consumer (cmake) failed: $out"
loads_moved_lib "$CONSUMER" || fail "consumer (cmake) does not use the moved library"
ok "CMake: find_package(mesatee) finds the moved tree; mesatee::mesatee links and runs"
# A version the package does not provide is refused.
cat > "$MT_WORK/badver.cmake" <<'CM'
find_package(mesatee 9.0 QUIET)
if(mesatee_FOUND)
  message(FATAL_ERROR "found mesatee for version 9.0")
endif()
CM
cmake -DCMAKE_PREFIX_PATH="$P" -P "$MT_WORK/badver.cmake" >/dev/null 2>&1 \
  || fail "find_package(mesatee 9.0) was accepted"
ok "find_package(mesatee 9.0) is refused (version file)"

# The installed binary runs from the moved prefix with its own library ...
MESATEE_BIN=$P/bin/mesatee
grep -q '^mesatee ' <<<"$("$MESATEE_BIN" --version)" || fail "moved mesatee --version"
loads_moved_lib "$MESATEE_BIN" || fail "moved mesatee loads $(ldd "$MESATEE_BIN" | grep libmesatee)"
grep -qF "RUNPATH)            Library runpath: [\$ORIGIN/../$LIB]" <<<"$(readelf -d "$MESATEE_BIN")" \
  || fail "mesatee RUNPATH is not \$ORIGIN/../$LIB: $(readelf -d "$MESATEE_BIN" | grep -i path)"
ok "moved mesatee runs with the moved libmesatee (RUNPATH \$ORIGIN/../$LIB)"
# The PKCS#11 module (issue 10) sits in $LIB/pkcs11 and loads the moved libmesatee.
[ -f "$P/$LIB/pkcs11/libmesatee-pkcs11.so" ] || fail "installed tree lacks $LIB/pkcs11/libmesatee-pkcs11.so"
loads_moved_lib "$P/$LIB/pkcs11/libmesatee-pkcs11.so" ||
  fail "moved PKCS#11 module loads $(ldd "$P/$LIB/pkcs11/libmesatee-pkcs11.so" | grep libmesatee)"
ok "moved libmesatee-pkcs11.so loads the moved libmesatee (RUNPATH \$ORIGIN/..)"
# ... and its own worker: a wrapper in its place records that it ran.
mv "$P/libexec/mesatee/mesatee-worker" "$P/libexec/mesatee/mesatee-worker.real"
cat > "$P/libexec/mesatee/mesatee-worker" <<SH
#!/bin/sh
echo ran >> "$MT_WORK/worker-used"
exec "$P/libexec/mesatee/mesatee-worker.real" "\$@"
SH
chmod 755 "$P/libexec/mesatee/mesatee-worker"
unset MESATEE_WORKER
mt_start_server
mt_login admin
mt_add_user alice
mt_add_user bob
printf 'a\nb\nc\n' > "$MT_WORK/in.txt"
as alice file encrypt --in "$MT_WORK/in.txt" --out "$MT_WORK/in.enc" --key-out "$MT_WORK/in.key" >/dev/null
FA=$(as alice file register "$(as alice file upload "$MT_WORK/in.enc")" --key "$MT_WORK/in.key" --name ids)
"$MESATEE_BIN" key generate --out "$MT_WORK/o.key" >/dev/null
FO=$(as alice file register-output --key "$MT_WORK/o.key" --name out)
FN=$(as alice function register --name self-psi --builtin psi --input-slot a --input-slot b --output-slot r)
T=$(as alice task create --function "$FN" --input a=alice --input b=alice --output r=alice)
as alice task assign "$T" --input "a=$FA" --input "b=$FA" --output "r=$FO" >/dev/null
as alice task approve "$T" >/dev/null 2>&1 || true
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 120 >/dev/null || fail "task $T did not finish"
[ -s "$MT_WORK/worker-used" ] || fail "the moved mesatee did not run the moved prefix's worker"
ok "moved mesatee serve ran task $T with the moved prefix's worker"

# The typed calls against the live server, from both consumers.
for bin in "$MT_WORK/consumer-pc" "$CONSUMER"; do
  out=$("$bin" "$MESATEE_SERVER" "$MESATEE_CA" alice "$MT_WORK/alice.pw") \
    || fail "$(basename "$bin") against the server: $out"
  grep -qx "files 2" <<<"$out" || fail "files count: $out"
  grep -q "^file $FA input ids owners=alice written=1 size=$(stat -c %s "$MT_WORK/in.enc")\$" <<<"$out" \
    || fail "input file line: $out"
  grep -q "^file $FO output out owners=alice written=1 " <<<"$out" || fail "output file line: $out"
  grep -q "^function $FN self-psi builtin psi public=1 inputs=a,b outputs=r\$" <<<"$out" \
    || fail "function line: $out"
  grep -q "^task $T finished $FN alice participants=alice approvals=alice failure=-\$" <<<"$out" \
    || fail "task line: $out"
  grep -qx "bad id -> invalid_argument" <<<"$out" || fail "malformed id: $out"
  grep -qx "unknown id -> not_found" <<<"$out" || fail "unknown id: $out"
done
ok "typed list/get calls agree with what the CLI created (pkg-config and CMake builds)"
# bob sees none of alice's files or tasks.
out=$("$CONSUMER" "$MESATEE_SERVER" "$MESATEE_CA" bob "$MT_WORK/bob.pw") || fail "bob: $out"
grep -qx "files 0" <<<"$out" && grep -qx "tasks 0" <<<"$out" || fail "bob sees: $out"
ok "another user's lists are empty"
