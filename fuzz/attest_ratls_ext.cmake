# Fuzz target of the RA-TLS extension and claims readers (owned by attest).
mt_add_fuzzer(attest_ratls_ext SOURCES ${MT_FUZZ_DIR}/attest_ratls_ext.c LIBS mt_attest)
