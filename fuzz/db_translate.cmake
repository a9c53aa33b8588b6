mt_add_fuzzer(db_translate SOURCES ${MT_FUZZ_DIR}/db_translate.c LIBS mt_store)
