# issue 14: executor leases across a store outage longer than the lease
# (docs/design.md "Executor leases"): the throw-away PostgreSQL is halted and
# resumed (tests/pg/pg-temp.sh halt/resume); PostgreSQL only (SQLite has no
# outage), skipped (77) without PostgreSQL.
add_executable(test_lease_outage ${MT_TEST_DIR}/unit/test_lease_outage.c)
target_link_libraries(test_lease_outage PRIVATE mt_core mt_crypto mt_tee PkgConfig::CMOCKA
                      Threads::Threads)
target_include_directories(test_lease_outage PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
add_dependencies(test_lease_outage mesatee-worker-test)
target_compile_definitions(test_lease_outage PRIVATE
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")
add_test(NAME test_lease_outage_pg
         COMMAND ${PROJECT_SOURCE_DIR}/tests/pg/pg-temp.sh run sh -c
                 "exec \"$0\" \"$MT_PG_URL\" \"$MT_PG_DIR\" \"$1\""
                 $<TARGET_FILE:test_lease_outage> ${PROJECT_SOURCE_DIR}/tests/pg/pg-temp.sh)
set_tests_properties(test_lease_outage_pg PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                     LABELS pg) # the scripts/test --pg pass
# the same binary on SQLite: only the local run of a once-leased task (a
# second core with a local scheduler on the same file; no outage), with the
# host's lease_until edit that must not let the old holder report
add_test(NAME test_lease_outage_sqlite COMMAND test_lease_outage sqlite)
set_tests_properties(test_lease_outage_sqlite PROPERTIES TIMEOUT 300)
