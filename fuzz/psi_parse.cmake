mt_add_fuzzer(psi_parse SOURCES ${MT_FUZZ_DIR}/psi_parse.c LIBS mt_worker_lib)
