# mt_ff reader and header parser (owned by crypto).
mt_add_fuzzer(ff_reader SOURCES ${MT_FUZZ_DIR}/ff_reader.c LIBS mt_crypto)
