mt_add_fuzzer(wasm_exec SOURCES ${MT_FUZZ_DIR}/wasm_exec.c LIBS mt_wasm)
