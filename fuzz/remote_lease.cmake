mt_add_fuzzer(remote_lease SOURCES ${MT_FUZZ_DIR}/remote_lease.c LIBS mt_worker_lib)
