# Unit tests of executor type "wasm" (src/executor/wasm_fn.c): host API, WASI
# subset, limits, registration check. Module tests need wabt's wat2wasm.
mt_add_unit_test(test_wasm_fn SOURCES ${MT_TEST_DIR}/unit/test_wasm_fn.c LIBS mt_worker_lib)
