# Installation and packaging (issue 9; owned by the packaging area).
# it_install: install into a temporary prefix, move it, build an external
# program against it with pkg-config and CMake, run the moved binaries.
# A sanitized libmesatee needs a sanitized program (the runtime comes first).
set(MT_CONSUMER_FLAGS "")
if(MT_SANITIZE)
  set(MT_CONSUMER_FLAGS "-fsanitize=address,undefined -fno-sanitize-recover=all")
endif()
add_test(NAME it_install COMMAND bash ${MT_TEST_DIR}/integration/it_install.sh)
set_tests_properties(it_install PROPERTIES
  ENVIRONMENT "MESATEE_BIN=$<TARGET_FILE:mesatee>;MT_BUILD_DIR=${PROJECT_BINARY_DIR};CC=${CMAKE_C_COMPILER};MT_INSTALL_LIBDIR=${CMAKE_INSTALL_LIBDIR};MT_CONSUMER_FLAGS=${MT_CONSUMER_FLAGS}"
  TIMEOUT 600 LABELS "install")
# it_deb: cpack -G DEB, lintian, dpkg --root unpack, the packaged binary runs.
# Slow (cpack strips and compresses, lintian): label "slow" so `ctest -LE slow`
# can leave it out.
add_test(NAME it_deb COMMAND bash ${MT_TEST_DIR}/integration/it_deb.sh)
set_tests_properties(it_deb PROPERTIES
  ENVIRONMENT "MESATEE_BIN=$<TARGET_FILE:mesatee>;MT_BUILD_DIR=${PROJECT_BINARY_DIR};MT_INSTALL_LIBDIR=${CMAKE_INSTALL_LIBDIR}"
  TIMEOUT 600 LABELS "install;slow")
