mt_add_fuzzer(zygote_req SOURCES ${MT_FUZZ_DIR}/zygote_req.c LIBS mt_worker_lib)
