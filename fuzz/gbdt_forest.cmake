mt_add_fuzzer(gbdt_forest SOURCES ${MT_FUZZ_DIR}/gbdt_forest.c LIBS mt_worker_lib)
