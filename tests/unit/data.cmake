# Data over time (issue 9): the store opened from every earlier schema, and
# the backup archive writer/reader and data-directory backup/restore.
mt_add_unit_test(test_store_migrate SOURCES ${MT_TEST_DIR}/unit/test_store_migrate.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE)
add_dependencies(test_store_migrate mesatee-worker)
target_compile_definitions(test_store_migrate PRIVATE
  MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>"
  MT_FIXTURE_DIR="${MT_TEST_DIR}/unit/fixtures")
mt_add_unit_test(test_backup SOURCES ${MT_TEST_DIR}/unit/test_backup.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE)
