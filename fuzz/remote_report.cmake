mt_add_fuzzer(remote_report SOURCES ${MT_FUZZ_DIR}/remote_report.c LIBS mt_worker_lib)
