# Executor type "python" (issue 11): the registration check runs in a
# sandboxed worker that embeds CPython; the daemon-side library never links it.
mt_add_unit_test(test_python_check SOURCES ${MT_TEST_DIR}/unit/test_python_check.c
                 LIBS mt_executor)
add_dependencies(test_python_check mesatee-worker)
target_compile_definitions(test_python_check PRIVATE MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>")
