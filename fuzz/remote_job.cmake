mt_add_fuzzer(remote_job SOURCES ${MT_FUZZ_DIR}/remote_job.c LIBS mt_worker_lib)
