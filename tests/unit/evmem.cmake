# mt_evmem: libevent's blocks (evbuffer chains, pullup copies, grown maps) wiped
# when libevent frees them.
mt_add_unit_test(test_gateway_evmem SOURCES ${MT_TEST_DIR}/unit/test_evmem.c LIBS mt_gateway)
