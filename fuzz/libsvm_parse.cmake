mt_add_fuzzer(libsvm_parse SOURCES ${MT_FUZZ_DIR}/libsvm_parse.c LIBS mt_worker_lib)
