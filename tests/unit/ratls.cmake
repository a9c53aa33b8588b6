# Unit tests of attested TLS: RA-TLS certificates (interop vectors from
# ${MT_SHARED_DIR}/testvectors/attestation/ra-tls, skipped when absent), soft
# evidence and its producer in mt_tee, and the client policy.
mt_add_unit_test(test_ratls SOURCES ${MT_TEST_DIR}/unit/test_ratls.c LIBS mt_attest mt_tee)
target_compile_definitions(test_ratls PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
mt_add_unit_test(test_policy SOURCES ${MT_TEST_DIR}/unit/test_policy.c LIBS mt_attest)
target_compile_definitions(test_policy PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
# Policy requirements (required_checks, SNP VMPL/policy bits, expected report
# data, nonce, user data) on recorded evidence (issue 8, item 4).
mt_add_unit_test(test_policy_require SOURCES ${MT_TEST_DIR}/unit/test_policy_require.c
  LIBS mt_attest)
target_compile_definitions(test_policy_require PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
# The verified-peer cache of attested TLS (mt_vcache, issue 13) and the
# collateral end (claims.valid_until) of every evidence kind, on recorded
# evidence.
mt_add_unit_test(test_vcache SOURCES ${MT_TEST_DIR}/unit/test_vcache.c LIBS mt_attest)
target_compile_definitions(test_vcache PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
