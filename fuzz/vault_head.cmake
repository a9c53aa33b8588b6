mt_add_fuzzer(vault_head SOURCES ${MT_FUZZ_DIR}/vault_head.c LIBS mt_gateway)
