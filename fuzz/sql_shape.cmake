mt_add_fuzzer(sql_shape SOURCES ${MT_FUZZ_DIR}/sql_shape.c LIBS mt_worker_lib)
