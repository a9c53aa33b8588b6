# Unit tests of the server's TLS names and identity (src/tee/mt_tls_id.c):
# name checks and lists, the stable level-none identity, operator files.
mt_add_unit_test(test_tls_id SOURCES ${MT_TEST_DIR}/unit/test_tls_id.c LIBS mt_tee)
