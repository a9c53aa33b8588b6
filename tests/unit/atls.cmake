# The executor API's message reader (src/attest/mt_atls.c): framing and
# bounded body buffers (issue 8 item 6).
mt_add_unit_test(test_atls SOURCES ${MT_TEST_DIR}/unit/test_atls.c LIBS mt_tee mt_attest mt_common)
