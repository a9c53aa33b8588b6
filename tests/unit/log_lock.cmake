# mt_log (formats, access lines) and mt_dirlock (the data directory lock).
mt_add_unit_test(test_log_lock SOURCES ${MT_TEST_DIR}/unit/test_log_lock.c
                 LIBS mt_common PkgConfig::JANSSON)
