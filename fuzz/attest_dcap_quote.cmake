# Fuzz target of the attestation verifiers (owned by attest).
mt_add_fuzzer(attest_dcap_quote SOURCES ${MT_FUZZ_DIR}/attest_dcap_quote.c LIBS mt_attest)
