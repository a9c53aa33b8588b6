mt_add_unit_test(test_sdnotify SOURCES ${MT_TEST_DIR}/unit/test_sdnotify.c LIBS mt_gateway)
