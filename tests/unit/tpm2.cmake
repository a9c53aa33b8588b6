# Tests of the TPM 2.0 verifier (src/attest/mt_tpm2*.c) and attester
# (src/tee/tee_tpm2.c). Vectors from ${MT_SHARED_DIR}/testvectors/attestation
# (or env MESATEE_TESTVECTORS), skipped when absent. test_tpm2_loop starts its
# own swtpm (swtpm_setup + swtpm socket on free ports in a temp dir) and skips
# when swtpm is not installed or mesatee was built without tss2.
mt_add_unit_test(test_tpm2_verify SOURCES ${MT_TEST_DIR}/unit/test_tpm2_verify.c LIBS mt_attest)
target_compile_definitions(test_tpm2_verify PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
target_include_directories(test_tpm2_verify PRIVATE ${MT_TEST_DIR}/unit)
mt_add_unit_test(test_tpm2_loop SOURCES ${MT_TEST_DIR}/unit/test_tpm2_loop.c LIBS mt_tee mt_attest)
set_tests_properties(test_tpm2_loop PROPERTIES TIMEOUT 120)
