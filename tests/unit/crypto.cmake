# Unit tests of the crypto and tee modules (owned by crypto).
# test_ff compiles src/crypto/mt_ff.c into the test itself to reach internal
# counters (2^32-segment limit); it links mt_crypto for the other modules.
mt_add_unit_test(test_ff SOURCES ${MT_TEST_DIR}/unit/test_ff.c ${PROJECT_SOURCE_DIR}/src/crypto/mt_algs.c LIBS mt_common PkgConfig::OPENSSL)
target_include_directories(test_ff PRIVATE ${PROJECT_SOURCE_DIR}/src/crypto)
mt_add_unit_test(test_pwhash SOURCES ${MT_TEST_DIR}/unit/test_pwhash.c LIBS mt_crypto)
mt_add_unit_test(test_keywrap SOURCES ${MT_TEST_DIR}/unit/test_keywrap.c LIBS mt_crypto)
mt_add_unit_test(test_tee SOURCES ${MT_TEST_DIR}/unit/test_tee.c LIBS mt_tee)
