mt_add_fuzzer(tls_san SOURCES ${MT_FUZZ_DIR}/tls_san.c LIBS mt_tee)
