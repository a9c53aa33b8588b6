# Object storage backends (src/store/mt_ostore.h): one program, run on the
# directory backend, on the database backend over SQLite, and over a
# throw-away PostgreSQL cluster (tests/pg/pg-temp.sh; skipped with a message,
# exit 77, where PostgreSQL is not installed).
add_executable(test_ostore ${MT_TEST_DIR}/unit/test_ostore.c)
target_link_libraries(test_ostore PRIVATE mt_ostore PkgConfig::CMOCKA Threads::Threads)
add_test(NAME test_ostore_dir COMMAND test_ostore dir ${CMAKE_CURRENT_BINARY_DIR}/test_ostore_dir)
# a fresh SQLite file each run (the orphan checks count rows of the whole table)
add_test(NAME test_ostore_sqlite
         COMMAND sh -c "rm -f \"$1\" \"$1-wal\" \"$1-shm\" && exec \"$0\" db \"$1\""
                 $<TARGET_FILE:test_ostore> ${CMAKE_CURRENT_BINARY_DIR}/test_ostore.sqlite)
add_test(NAME test_ostore_pg
         COMMAND ${PROJECT_SOURCE_DIR}/tests/pg/pg-temp.sh run sh -c
                 "exec \"$0\" db \"$MT_PG_URL\"" $<TARGET_FILE:test_ostore>)
set_tests_properties(test_ostore_dir test_ostore_sqlite test_ostore_pg PROPERTIES TIMEOUT 120
                     SKIP_RETURN_CODE 77)
