mt_add_fuzzer(atls_head SOURCES ${MT_FUZZ_DIR}/atls_head.c LIBS mt_attest)
