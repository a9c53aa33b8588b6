# Fuzz target of the soft evidence reader (owned by attest).
mt_add_fuzzer(attest_soft_evidence SOURCES ${MT_FUZZ_DIR}/attest_soft_evidence.c LIBS mt_attest)
