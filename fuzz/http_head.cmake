mt_add_fuzzer(http_head SOURCES ${MT_FUZZ_DIR}/http_head.c LIBS mt_gateway)
