# The database layer (src/store, mt_db.h): one program, run on each backend.
# (not mt_add_unit_test: the program needs a URL, so it is registered twice)
add_executable(test_store_db ${MT_TEST_DIR}/unit/test_store_db.c)
target_link_libraries(test_store_db PRIVATE mt_store mt_core PkgConfig::CMOCKA)
target_include_directories(test_store_db PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
add_test(NAME test_store_db_sqlite
         COMMAND test_store_db ${CMAKE_CURRENT_BINARY_DIR}/test_store_db.sqlite)
# a throw-away PostgreSQL cluster (tests/pg/pg-temp.sh: initdb + pg_ctl, TLS);
# skipped with a message (exit 77) where PostgreSQL is not installed
add_test(NAME test_store_db_pg
         COMMAND ${PROJECT_SOURCE_DIR}/tests/pg/pg-temp.sh run sh -c
                 "exec \"$0\" \"$MT_PG_URL\"" $<TARGET_FILE:test_store_db>)
set_tests_properties(test_store_db_sqlite test_store_db_pg PROPERTIES TIMEOUT 120
                     SKIP_RETURN_CODE 77)
# A failed WAL fsync is sticky (Linux's fsync semantics simulated by the
# program's own fdatasync/fsync, exported so that libsqlite3 calls them).
add_executable(test_wal_sync_fail ${MT_TEST_DIR}/unit/test_wal_sync_fail.c)
target_link_libraries(test_wal_sync_fail PRIVATE mt_store PkgConfig::CMOCKA ${CMAKE_DL_LIBS})
set_target_properties(test_wal_sync_fail PROPERTIES ENABLE_EXPORTS ON)
add_test(NAME test_wal_sync_fail COMMAND test_wal_sync_fail)
set_tests_properties(test_wal_sync_fail PROPERTIES TIMEOUT 120)
