# Fuzz target of the attestation verifiers (owned by attest).
mt_add_fuzzer(attest_pck_ext SOURCES ${MT_FUZZ_DIR}/attest_pck_ext.c LIBS mt_attest)
