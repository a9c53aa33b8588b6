# Unit tests of the hardware evidence producers (src/tee/tee_hw.c; not
# exercised on hardware here) against fake configfs-tsm and Gramine trees with
# recorded outputs from ${MT_SHARED_DIR}/testvectors/attestation (skipped when
# absent), and of auditor signatures over policy files plus the tpm2 policy
# rules (src/attest/mt_policy_sig.c, mt_policy.c).
mt_add_unit_test(test_tee_hw SOURCES ${MT_TEST_DIR}/unit/test_tee_hw.c LIBS mt_tee mt_attest)
target_compile_definitions(test_tee_hw PRIVATE
  MT_TESTVECTORS="${MT_SHARED_DIR}/testvectors/attestation")
target_include_directories(test_tee_hw PRIVATE ${MT_TEST_DIR}/unit ${PROJECT_SOURCE_DIR}/src/tee)
mt_add_unit_test(test_policy_sig SOURCES ${MT_TEST_DIR}/unit/test_policy_sig.c LIBS mt_attest)
