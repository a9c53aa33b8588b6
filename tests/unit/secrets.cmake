# Issue 8 items 13/14: wiping allocator, temp files, error prefixes, the one
# status table (incl. the executor API's answers), SQLite row-loop errors.
mt_add_unit_test(test_secrets SOURCES ${MT_TEST_DIR}/unit/test_secrets.c
                 LIBS mt_server mt_common)
mt_add_unit_test(test_store_loop SOURCES ${MT_TEST_DIR}/unit/test_store_loop.c
                 LIBS mt_core PkgConfig::SQLITE)
target_include_directories(test_store_loop PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
