# The platform KeyStore library (issue 10): sealed state, release policy,
# release messages, rotation/retire, KEK derivation.
mt_add_unit_test(test_keystore SOURCES ${MT_TEST_DIR}/unit/test_keystore.c LIBS mt_keystore)
mt_add_unit_test(test_tpm2_blob SOURCES ${MT_TEST_DIR}/unit/test_tpm2_blob.c LIBS mt_tee)
# The release policy at sev-snp / tdx / sgx against real recorded evidence
# (policy side only; NOT exercised on hardware).
mt_add_unit_test(test_keystore_hw SOURCES ${MT_TEST_DIR}/unit/test_keystore_hw.c
  LIBS mt_keystore mt_attest)
target_compile_definitions(test_keystore_hw PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
# Escrow of the root keys to recovery recipients (Shamir over GF(2^8), P-256
# ECDH shares) and recovery of a lost KeyStore state (issue 10, lost TPM).
mt_add_unit_test(test_escrow SOURCES ${MT_TEST_DIR}/unit/test_escrow.c LIBS mt_keystore)
# Database client certificates issued after attestation (issue 14, mt_dbcert.h).
mt_add_unit_test(test_dbcert SOURCES ${MT_TEST_DIR}/unit/test_dbcert.c LIBS mt_keystore)
# The KeyStore join of several serve nodes (issue 14, mt_ks_join.h): join
# answers, URLs, joins over loopback attested TLS.
mt_add_unit_test(test_ks_join SOURCES ${MT_TEST_DIR}/unit/test_ks_join.c LIBS mt_keystore)
