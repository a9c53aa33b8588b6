# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_client]=] "/work/main/build/tests/test_client")
set_tests_properties([=[test_client]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/client.cmake;2;mt_add_unit_test;/work/main/tests/unit/client.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_cli]=] "/work/main/build/tests/test_cli")
set_tests_properties([=[test_cli]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/client.cmake;4;mt_add_unit_test;/work/main/tests/unit/client.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_common]=] "/work/main/build/tests/test_common")
set_tests_properties([=[test_common]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/common.cmake;1;mt_add_unit_test;/work/main/tests/unit/common.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_ff]=] "/work/main/build/tests/test_ff")
set_tests_properties([=[test_ff]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/crypto.cmake;4;mt_add_unit_test;/work/main/tests/unit/crypto.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_pwhash]=] "/work/main/build/tests/test_pwhash")
set_tests_properties([=[test_pwhash]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/crypto.cmake;6;mt_add_unit_test;/work/main/tests/unit/crypto.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_keywrap]=] "/work/main/build/tests/test_keywrap")
set_tests_properties([=[test_keywrap]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/crypto.cmake;7;mt_add_unit_test;/work/main/tests/unit/crypto.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_tee]=] "/work/main/build/tests/test_tee")
set_tests_properties([=[test_tee]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/crypto.cmake;8;mt_add_unit_test;/work/main/tests/unit/crypto.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_objstore]=] "/work/main/build/tests/test_objstore")
set_tests_properties([=[test_objstore]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/executor.cmake;2;mt_add_unit_test;/work/main/tests/unit/executor.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_fetch]=] "/work/main/build/tests/test_fetch")
set_tests_properties([=[test_fetch]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/executor.cmake;3;mt_add_unit_test;/work/main/tests/unit/executor.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_psi]=] "/work/main/build/tests/test_psi")
set_tests_properties([=[test_psi]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/executor.cmake;4;mt_add_unit_test;/work/main/tests/unit/executor.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_executor]=] "/work/main/build/tests/test_executor")
set_tests_properties([=[test_executor]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/executor.cmake;5;mt_add_unit_test;/work/main/tests/unit/executor.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_gateway]=] "/work/main/build/tests/test_gateway")
set_tests_properties([=[test_gateway]=] PROPERTIES  TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;12;add_test;/work/main/tests/unit/gateway.cmake;1;mt_add_unit_test;/work/main/tests/unit/gateway.cmake;0;;/work/main/tests/CMakeLists.txt;20;include;/work/main/tests/CMakeLists.txt;0;")
