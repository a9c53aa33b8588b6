mt_add_fuzzer(wasm_decode SOURCES ${MT_FUZZ_DIR}/wasm_decode.c LIBS mt_wasm)
