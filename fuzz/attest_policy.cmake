# Fuzz target of the client attestation policy reader (owned by attest).
mt_add_fuzzer(attest_policy SOURCES ${MT_FUZZ_DIR}/attest_policy.c LIBS mt_attest)
