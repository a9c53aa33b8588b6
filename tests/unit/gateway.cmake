mt_add_unit_test(test_gateway SOURCES ${MT_TEST_DIR}/unit/test_gateway.c LIBS mt_gateway PkgConfig::CURL)
mt_add_unit_test(test_http_head SOURCES ${MT_TEST_DIR}/unit/test_http_head.c LIBS mt_gateway)
