# Debian package (issue 9): `cpack -G DEB` in the build tree, or
# `cmake --build build --target package_deb`. docs/packaging.md says what it
# installs; tests/integration/it_deb.sh builds, lints and installs it.
#
# The package is one binary package `mesatee` for /usr: the daemon and CLI
# (/usr/bin/mesatee, no RPATH under /usr, see cmake/rpath.cmake), the worker
# (/usr/libexec/mesatee/mesatee-worker), libmesatee with its header,
# pkg-config and CMake files, the systemd unit, man pages and bash completion
# when the tree has them, and maintainer scripts that create the `mesatee`
# system user and /var/lib/mesatee (packaging/debian/).

set(MT_PKG_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(MT_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/mesatee)

# Debian-required documentation: copyright, and the changelog compressed
# with gzip -9n (reproducible: no name, no time stamp).
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/packaging/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
  COMMAND gzip -9n -c ${MT_PKG_DIR}/debian/changelog > ${CMAKE_BINARY_DIR}/packaging/changelog.gz
  DEPENDS ${MT_PKG_DIR}/debian/changelog VERBATIM)
add_custom_target(mt_pkg_doc ALL DEPENDS ${CMAKE_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${MT_PKG_DIR}/debian/copyright ${CMAKE_BINARY_DIR}/packaging/changelog.gz
  DESTINATION ${MT_DOC_DIR})
install(FILES ${MT_PKG_DIR}/debian/lintian-overrides
  DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME mesatee)

# Artefacts other areas provide; installed when present in the tree.
#  - systemd unit (life): packaging/systemd/mesatee.service
#  - the man page and the bash completion are generated from the option table
#    and installed by src/cli/CMakeLists.txt.
if(EXISTS ${MT_PKG_DIR}/systemd/mesatee.service)
  install(FILES ${MT_PKG_DIR}/systemd/mesatee.service DESTINATION lib/systemd/system)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mesatee)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "mesatee")
set(CPACK_PACKAGE_CONTACT "mesatee maintainers <maintainers@users.noreply.h-seed-8157b5bd.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "secure-computing function-as-a-service platform")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "Organisations that do not trust each other nor the host register encrypted\n\
data and functions; every party approves a task, which runs in a sandboxed\n\
worker inside the trusted execution environment, and each output is\n\
encrypted for its owners only.\n\
.\n\
This package contains the daemon and command-line client (mesatee), the\n\
sandboxed task worker, and the client library libmesatee with its header,\n\
pkg-config and CMake package files.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/mesatee")
# Depends from the ELF files' needs (dpkg-shlibdeps), plus what the
# maintainer scripts use.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${MT_PKG_DIR}/debian/postinst ${MT_PKG_DIR}/debian/postrm ${MT_PKG_DIR}/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_SOURCE_IGNORE_FILES "/build[^/]*/;/\\\\.git/")
include(CPack)
