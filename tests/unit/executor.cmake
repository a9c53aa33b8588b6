# Unit tests of the host (untrusted_objstore, untrusted_fetch) and executor areas.
mt_add_unit_test(test_objstore SOURCES ${MT_TEST_DIR}/unit/test_objstore.c LIBS mt_host Threads::Threads)
mt_add_unit_test(test_fetch SOURCES ${MT_TEST_DIR}/unit/test_fetch.c LIBS mt_host Threads::Threads)
mt_add_unit_test(test_psi SOURCES ${MT_TEST_DIR}/unit/test_psi.c LIBS mt_worker_lib)
mt_add_unit_test(test_psi_oom SOURCES ${MT_TEST_DIR}/unit/test_psi_oom.c LIBS mt_worker_lib)
mt_add_unit_test(test_sandbox SOURCES ${MT_TEST_DIR}/unit/test_sandbox.c LIBS mt_worker_lib)
mt_add_unit_test(test_executor SOURCES ${MT_TEST_DIR}/unit/test_executor.c
                 LIBS mt_executor mt_crypto Threads::Threads)
add_dependencies(test_executor mesatee-worker mesatee-worker-test)
target_compile_definitions(test_executor PRIVATE
  MT_WORKER_PATH="$<TARGET_FILE:mesatee-worker>"
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")
mt_add_unit_test(test_zygote SOURCES ${MT_TEST_DIR}/unit/test_zygote.c
                 LIBS mt_executor mt_crypto Threads::Threads)
add_dependencies(test_zygote mesatee-worker mesatee-worker-test)
target_compile_definitions(test_zygote PRIVATE
  MT_WORKER_TEST_PATH="$<TARGET_FILE:mesatee-worker-test>")
