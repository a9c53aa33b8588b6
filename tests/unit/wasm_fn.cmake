# Unit tests of executor type "wasm" (src/executor/wasm_fn.c): host API, WASI
# subset, limits, registration check. Module tests need wabt's wat2wasm.
mt_add_unit_test(test_wasm_fn SOURCES ${MT_TEST_DIR}/unit/test_wasm_fn.c LIBS mt_worker_lib)
# The registration check runs in a sandboxed worker (issue 8, item 16).
mt_add_unit_test(test_wasm_check SOURCES ${MT_TEST_DIR}/unit/test_wasm_check.c
                 LIBS mt_executor)
add_dependencies(test_wasm_check mesatee-worker)
target_compile_definitions(test_wasm_check PRIVATE MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>")
