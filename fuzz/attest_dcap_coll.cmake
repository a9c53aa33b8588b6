# Fuzz target of the attestation verifiers (owned by attest).
mt_add_fuzzer(attest_dcap_coll SOURCES ${MT_FUZZ_DIR}/attest_dcap_coll.c LIBS mt_attest)
