# Unit tests of the attestation verifiers (owned by attest). Test vectors come
# from ${MT_SHARED_DIR}/testvectors/attestation (or env MESATEE_TESTVECTORS);
# without them the tests skip with a message. test_attest_util.c is #included
# by each test (shared helpers, all static).
foreach(t test_attest_snp test_attest_dcap test_attest_nitro test_attest_parsers)
  mt_add_unit_test(${t} SOURCES ${MT_TEST_DIR}/unit/${t}.c LIBS mt_attest)
  target_compile_definitions(${t} PRIVATE
    MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
endforeach()
