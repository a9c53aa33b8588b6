mt_add_fuzzer(transit_input SOURCES ${MT_FUZZ_DIR}/transit_input.c LIBS mt_transit)
