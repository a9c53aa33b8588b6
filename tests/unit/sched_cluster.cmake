# issue 14: several schedulers (three cores in one process) on one store,
# hundreds of tasks, each run exactly once (docs/cluster.md "Scheduling
# across nodes"); registered once per backend, like test_store_db.
add_executable(test_sched_cluster ${MT_TEST_DIR}/unit/test_sched_cluster.c)
target_link_libraries(test_sched_cluster PRIVATE mt_core mt_crypto mt_tee PkgConfig::CMOCKA
                      Threads::Threads)
target_include_directories(test_sched_cluster PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
add_dependencies(test_sched_cluster mesatee-worker-test)
target_compile_definitions(test_sched_cluster PRIVATE
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")
# "sqlite": the store in the shared data directory (mesatee.db)
add_test(NAME test_sched_cluster_sqlite COMMAND test_sched_cluster sqlite)
add_test(NAME test_sched_cluster_pg
         COMMAND ${PROJECT_SOURCE_DIR}/tests/pg/pg-temp.sh run sh -c
                 "exec \"$0\" \"$MT_PG_URL\"" $<TARGET_FILE:test_sched_cluster>)
set_tests_properties(test_sched_cluster_sqlite test_sched_cluster_pg PROPERTIES TIMEOUT 300
                     SKIP_RETURN_CODE 77)
set_tests_properties(test_sched_cluster_pg PROPERTIES LABELS pg) # the scripts/test --pg pass

# issue 14: failed-login rate limits shared by two nodes (two cores in one
# process) on one store (docs/cluster.md "Login rate limits"); per backend.
add_executable(test_login_limit ${MT_TEST_DIR}/unit/test_login_limit.c)
target_link_libraries(test_login_limit PRIVATE mt_core mt_crypto mt_tee PkgConfig::CMOCKA
                      Threads::Threads)
target_include_directories(test_login_limit PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
add_dependencies(test_login_limit mesatee-worker-test)
target_compile_definitions(test_login_limit PRIVATE
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")
add_test(NAME test_login_limit_sqlite COMMAND test_login_limit sqlite)
add_test(NAME test_login_limit_pg
         COMMAND ${PROJECT_SOURCE_DIR}/tests/pg/pg-temp.sh run sh -c
                 "exec \"$0\" \"$MT_PG_URL\"" $<TARGET_FILE:test_login_limit>)
set_tests_properties(test_login_limit_sqlite test_login_limit_pg PROPERTIES TIMEOUT 300
                     SKIP_RETURN_CODE 77)
set_tests_properties(test_login_limit_pg PROPERTIES LABELS pg) # the scripts/test --pg pass
