# Fuzz target of the policy signature file reader (owned by attest).
mt_add_fuzzer(attest_policy_sig SOURCES ${MT_FUZZ_DIR}/attest_policy_sig.c LIBS mt_attest)
