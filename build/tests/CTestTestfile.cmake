# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_common]=] "/work/main/build/tests/test_common")
set_tests_properties([=[test_common]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/common.cmake;1;mt_add_unit_test;/work/main/tests/unit/common.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
