mt_add_fuzzer(npy_parse SOURCES ${MT_FUZZ_DIR}/npy_parse.c LIBS mt_worker_lib)
