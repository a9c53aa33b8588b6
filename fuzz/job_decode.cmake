mt_add_fuzzer(job_decode SOURCES ${MT_FUZZ_DIR}/job_decode.c LIBS mt_worker_lib)
