# Unit tests of the built-in functions (src/executor/builtin_*.c): each runs
# the built-ins through mt_executor_run with the real mesatee-worker.
add_library(test_builtin_common STATIC ${MT_TEST_DIR}/unit/test_builtin_common.c)
target_link_libraries(test_builtin_common PUBLIC mt_executor mt_crypto PkgConfig::CMOCKA)
target_compile_definitions(test_builtin_common PUBLIC
  MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>")
add_dependencies(test_builtin_common mesatee-worker)

mt_add_unit_test(test_builtin_csv SOURCES ${MT_TEST_DIR}/unit/test_builtin_csv.c
                 LIBS mt_worker_lib)
foreach(t setops regression sql crypto)
  mt_add_unit_test(test_builtin_${t} SOURCES ${MT_TEST_DIR}/unit/test_builtin_${t}.c
                   LIBS test_builtin_common)
  set_tests_properties(test_builtin_${t} PROPERTIES TIMEOUT 120)
endforeach()
target_link_libraries(test_builtin_crypto PRIVATE PkgConfig::OPENSSL)

# The examples (examples/<function>.sh): each runs its function as a
# multi-party task through the CLI against a real server.
foreach(ex private_join_and_compute psi_cardinality ordered_set_intersect ordered_set_join
        linear_regression logistic_regression sql password_check rsa_sign)
  add_test(NAME example_${ex} COMMAND bash ${PROJECT_SOURCE_DIR}/examples/${ex}.sh)
  set_tests_properties(example_${ex} PROPERTIES
    ENVIRONMENT "MESATEE_BIN=$<TARGET_FILE:mesatee>" TIMEOUT 120)
endforeach()
