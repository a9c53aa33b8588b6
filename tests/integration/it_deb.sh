#!/usr/bin/env bash
# The Debian package (issue 9, packaging): `cpack -G DEB` builds it from the
# build tree; lintian finds no error in it (accepted warnings are overridden
# with reasons in packaging/debian/lintian-overrides); dpkg unpacks it into a
# scratch root (dpkg --root, its own database); every file `cmake --install`
# installs is in it under /usr (so man pages, the systemd unit and the bash
# completion land once their areas install them); the packaged binary runs
# --version and --help with the packaged library and carries no RPATH; the
# maintainer scripts create the system user and /var/lib/mesatee (run with
# stub commands, so this machine is not changed).
source "$(dirname "$0")/lib.sh"
: "${MT_BUILD_DIR:?MT_BUILD_DIR must point at the build tree}"
LIB=${MT_INSTALL_LIBDIR:-lib}
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
for t in cpack dpkg-deb dpkg lintian; do
  command -v "$t" >/dev/null || fail "$t is not installed (scripts/install-deps)"
done

# Build the package into this test's own directory.
cpack -G DEB --config "$MT_BUILD_DIR/CPackConfig.cmake" -B "$MT_WORK/pkg" >"$MT_WORK/cpack.log" 2>&1 \
  || { cat "$MT_WORK/cpack.log"; fail "cpack -G DEB"; }
DEB=$(ls "$MT_WORK"/pkg/mesatee_*_*.deb)
[ -f "$DEB" ] || fail "no .deb produced"
ok "cpack built $(basename "$DEB")"

# Control fields: name, version, Depends from dpkg-shlibdeps, scripts.
ctl=$(dpkg-deb -f "$DEB")
[ "$(dpkg-deb -f "$DEB" Package)" = mesatee ] || fail "Package: $(dpkg-deb -f "$DEB" Package)"
[ "$(dpkg-deb -f "$DEB" Version)" = "$("$MESATEE_BIN" --version | awk '{print $2}')" ] \
  || fail "Version $(dpkg-deb -f "$DEB" Version) differs from mesatee --version"
deps=$(dpkg-deb -f "$DEB" Depends)
for d in adduser libc6 libssl3 libsodium23 libjansson4 libcurl4 libsqlite3-0 libseccomp2 libevent-2.1-7; do
  grep -qE "(^|, )$d( |,|$)" <<<"$deps" || fail "Depends lacks $d: $deps"
done
members=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -t)
for m in ./postinst ./postrm ./shlibs ./triggers; do
  grep -qx "$m" <<<"$members" || fail "control archive lacks $m"
done
ok "control: Depends from the binaries' libraries ($deps)"
: "$ctl"

# lintian: no error; warnings are printed, accepted ones are overridden.
lintian --allow-root --show-overrides -EIL +pedantic "$DEB" >"$MT_WORK/lintian.log" 2>&1 || true
grep -E '^[EWIPO]:' "$MT_WORK/lintian.log" | sed 's/^/  lintian: /' || true
if grep -q '^E:' "$MT_WORK/lintian.log"; then fail "lintian reports errors (above)"; fi
grep -q '^O: mesatee: package-name-doesnt-match-sonames' "$MT_WORK/lintian.log" \
  || fail "lintian did not read the package's overrides"
ok "lintian: no errors"

# Unpack with dpkg into a scratch root with its own database.
R=$MT_WORK/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
dpkg --root="$R" --force-depends --force-not-root --unpack "$DEB" >"$MT_WORK/dpkg.log" 2>&1 \
  || { cat "$MT_WORK/dpkg.log"; fail "dpkg --unpack into the scratch root"; }
grep -q '^Status: install ok unpacked' <<<"$(dpkg --root="$R" -s mesatee)" || fail "dpkg status in the scratch root"
listed=$(dpkg --root="$R" -L mesatee)
for f in usr/bin/mesatee usr/libexec/mesatee/mesatee-worker "usr/$LIB/libmesatee.so.0" \
         usr/include/mesatee.h "usr/$LIB/pkgconfig/mesatee.pc" "usr/$LIB/cmake/mesatee/mesateeConfig.cmake" \
         usr/share/doc/mesatee/copyright usr/share/doc/mesatee/changelog.gz; do
  [ -e "$R/$f" ] || fail "/$f is not in the package"
  grep -qx "/$f" <<<"$listed" || fail "dpkg does not list /$f"
done
# the PKCS#11 module (issue 10), without an RPATH under /usr
for f in "usr/$LIB/pkcs11/libmesatee-pkcs11.so" usr/share/doc/mesatee/examples/mesatee-pkcs11.conf; do
  grep -qx "/$f" <<<"$listed" || fail "dpkg does not list /$f"
done
readelf -d "$R/usr/$LIB/pkcs11/libmesatee-pkcs11.so" | grep -qi 'rpath\|runpath' && fail "the packaged PKCS#11 module has an RPATH"
[ ! -e "$SRCDIR/packaging/systemd/mesatee.service" ] || [ -f "$R/usr/lib/systemd/system/mesatee.service" ] \
  || fail "packaging/systemd/mesatee.service exists but is not in the package"
ok "dpkg --root unpacked it; daemon, worker, library, header, pkg-config/CMake files, docs in place"

# Everything `cmake --install` installs is in the package (man pages,
# completion and units included once the tree installs them).
DESTDIR="$MT_WORK/ref" cmake --install "$MT_BUILD_DIR" --prefix /usr >"$MT_WORK/ref.log" 2>&1 \
  || { cat "$MT_WORK/ref.log"; fail "cmake --install into DESTDIR"; }
missing=$(cd "$MT_WORK/ref" && find . -type f -o -type l | sed 's|^\./||' | while read -r f; do
  [ -e "$R/$f" ] || [ -L "$R/$f" ] || echo "$f"; done)
[ -z "$missing" ] || fail "installed by cmake --install but not in the .deb: $missing"
n=$(cd "$MT_WORK/ref" && find . -type f -o -type l | wc -l)
man=0
[ ! -d "$R/usr/share/man" ] || man=$(find "$R/usr/share/man" -type f | wc -l)
comp=$([ -f "$R/usr/share/bash-completion/completions/mesatee" ] && echo yes || echo no)
ok "all $n installed files are in the package (man pages: $man, bash completion: $comp)"

# The packaged binary: no RPATH under /usr, runs with the packaged library.
for b in usr/bin/mesatee usr/libexec/mesatee/mesatee-worker "usr/$LIB/libmesatee.so.0"; do
  if grep -qE 'RPATH|RUNPATH' <<<"$(readelf -d "$R/$b")"; then fail "/$b has an RPATH"; fi
done
export LD_LIBRARY_PATH=$R/usr/$LIB
got=$(ldd "$R/usr/bin/mesatee" | awk '$1 == "libmesatee.so.0" {print $3}')
[ "$(readlink -f "$got")" = "$(readlink -f "$R/usr/$LIB/libmesatee.so.0")" ] \
  || fail "packaged mesatee loads libmesatee from '$got'"
v=$("$R/usr/bin/mesatee" --version) || fail "packaged mesatee --version"
grep -q "^mesatee $(dpkg-deb -f "$DEB" Version)" <<<"$v" || fail "--version: $v"
h=$("$R/usr/bin/mesatee" --help 2>&1) || fail "packaged mesatee --help: $h"
grep -q 'serve' <<<"$h" || fail "--help does not list serve: $h"
# and it finds the (stripped) packaged worker in /usr/bin/../libexec/mesatee: one task.
MESATEE_BIN=$R/usr/bin/mesatee
unset MESATEE_WORKER
mt_start_server
mt_login admin
mt_add_user alice
printf 'a\nb\n' > "$MT_WORK/in.txt"
as alice file encrypt --in "$MT_WORK/in.txt" --out "$MT_WORK/in.enc" --key-out "$MT_WORK/in.key" >/dev/null
FA=$(as alice file register "$(as alice file upload "$MT_WORK/in.enc")" --key "$MT_WORK/in.key")
"$MESATEE_BIN" key generate --out "$MT_WORK/o.key" >/dev/null
FO=$(as alice file register-output --key "$MT_WORK/o.key")
FN=$(as alice function register --name self-psi --builtin psi --input-slot a --input-slot b --output-slot r)
T=$(as alice task create --function "$FN" --input a=alice --input b=alice --output r=alice)
as alice task assign "$T" --input "a=$FA" --input "b=$FA" --output "r=$FO" >/dev/null
as alice task approve "$T" >/dev/null 2>&1 || true
as alice task invoke "$T" >/dev/null
as alice task wait "$T" --timeout 120 >/dev/null || fail "task $T on the packaged server did not finish"
unset LD_LIBRARY_PATH
ok "packaged mesatee runs (--version: $v; --help) and serves a task with the packaged worker"

# Maintainer scripts, run against stub commands (nothing on this machine changes).
S=$MT_WORK/stubs
mkdir -p "$S"
for c in adduser chown chmod mkdir systemctl; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n' "$c" "$MT_WORK" > "$S/$c"
done
printf '#!/bin/sh\nexit "${MT_STUB_GETENT_RC:-2}"\n' > "$S/getent"
chmod 755 "$S"/*
dpkg-deb --ctrl-tarfile "$DEB" | tar -x -C "$MT_WORK" ./postinst ./postrm
sh -n "$MT_WORK/postinst" && sh -n "$MT_WORK/postrm" || fail "maintainer scripts: syntax"
PATH=$S:$PATH sh "$MT_WORK/postinst" configure || fail "postinst configure"
grep -q '^adduser --system --group --home /var/lib/mesatee .* mesatee$' "$MT_WORK/calls" \
  || fail "postinst did not create the system user: $(cat "$MT_WORK/calls")"
if [ ! -d /var/lib/mesatee ]; then
  grep -qx 'chown mesatee:mesatee /var/lib/mesatee' "$MT_WORK/calls" || fail "postinst: data dir owner"
  grep -qx 'chmod 0750 /var/lib/mesatee' "$MT_WORK/calls" || fail "postinst: data dir mode"
fi
rm -f "$MT_WORK/calls"
PATH=$S:$PATH MT_STUB_GETENT_RC=0 sh "$MT_WORK/postinst" configure || fail "postinst configure (user exists)"
! grep -q '^adduser' "$MT_WORK/calls" 2>/dev/null || fail "postinst re-created an existing user"
PATH=$S:$PATH sh "$MT_WORK/postrm" purge || fail "postrm purge"
! grep -q 'rm\|deluser' "$MT_WORK/calls" 2>/dev/null || fail "postrm purge deletes data"
ok "postinst creates the mesatee user and /var/lib/mesatee once; postrm keeps the data"
