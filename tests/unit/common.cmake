mt_add_unit_test(test_common SOURCES ${MT_TEST_DIR}/unit/test_common.c LIBS mt_common)
mt_add_unit_test(test_trace SOURCES ${MT_TEST_DIR}/unit/test_trace.c LIBS mt_common)
mt_add_unit_test(test_resolve SOURCES ${MT_TEST_DIR}/unit/test_resolve.c LIBS mt_common)
mt_add_unit_test(test_siphash SOURCES ${MT_TEST_DIR}/unit/test_siphash.c LIBS mt_common)
