# Unit tests and examples of the machine-learning built-ins (gbdt_train,
# gbdt_predict, kmeans, pca: src/executor/builtin_gbdt.c, builtin_cluster.c).
mt_add_unit_test(test_builtin_gbdt SOURCES ${MT_TEST_DIR}/unit/test_builtin_gbdt.c
                 LIBS test_builtin_common)  # XGBoost comes with mt_worker_lib
# the fallback tests run __test_gbdt_predict_* of the test worker
add_dependencies(test_builtin_gbdt mesatee-worker-test)
target_compile_definitions(test_builtin_gbdt PRIVATE
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")
mt_add_unit_test(test_builtin_cluster SOURCES ${MT_TEST_DIR}/unit/test_builtin_cluster.c
                 LIBS test_builtin_common m)
set_tests_properties(test_builtin_gbdt test_builtin_cluster PROPERTIES TIMEOUT 120)

foreach(ex gbdt kmeans pca)
  add_test(NAME example_${ex} COMMAND bash ${PROJECT_SOURCE_DIR}/examples/${ex}.sh)
  set_tests_properties(example_${ex} PROPERTIES
    ENVIRONMENT "MESATEE_BIN=$<TARGET_FILE:mesatee>" TIMEOUT 120)
endforeach()

# gbdt_predict's own predictor (src/executor/gbdt_forest.c): bit-identical to
# XGBoost on models trained in the test, refusals of what it does not handle
mt_add_unit_test(test_gbdt_forest SOURCES ${MT_TEST_DIR}/unit/test_gbdt_forest.c
                 LIBS mt_worker_lib)
set_tests_properties(test_gbdt_forest PROPERTIES TIMEOUT 120)
