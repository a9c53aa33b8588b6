# The gateway's TLS identity reload (mt_gateway_reload_identity, SIGHUP).
mt_add_unit_test(test_gateway_reload SOURCES ${MT_TEST_DIR}/unit/test_gateway_reload.c
  LIBS mt_gateway)
