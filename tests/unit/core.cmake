# Unit tests of the core module (src/core).
mt_add_unit_test(test_core_decode SOURCES ${MT_TEST_DIR}/unit/test_core_decode.c
                 LIBS mt_core)
target_include_directories(test_core_decode PRIVATE ${PROJECT_SOURCE_DIR}/src/core)

mt_add_unit_test(test_core_api SOURCES ${MT_TEST_DIR}/unit/test_core_api.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE)
# wasm modules are checked at registration in a real (sandboxed) worker
add_dependencies(test_core_api mesatee-worker)
target_compile_definitions(test_core_api PRIVATE MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>")

mt_add_unit_test(test_core_flow SOURCES ${MT_TEST_DIR}/unit/test_core_flow.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE)
add_dependencies(test_core_flow mesatee-worker mesatee-worker-test)
target_compile_definitions(test_core_flow PRIVATE
  MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>"
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")

# issue 13: statements kept per scheduler thread (stmt_cache.c)
mt_add_unit_test(test_stmt_cache_thread SOURCES ${MT_TEST_DIR}/unit/test_stmt_cache_thread.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE Threads::Threads)
target_include_directories(test_stmt_cache_thread PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
