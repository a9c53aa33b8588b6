mt_add_fuzzer(csv_parse SOURCES ${MT_FUZZ_DIR}/csv_parse.c LIBS mt_worker_lib)
