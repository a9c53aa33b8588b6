# (after integration.cmake, which sets MT_IT_ENV: the files are included sorted)
# issue 14, the executor fleet: leases, fencing, remote cancel, slots, health
# (docs/design.md "Executor leases").
add_test(NAME it_executor_lease COMMAND bash ${MT_TEST_DIR}/integration/it_executor_lease.sh)
set_tests_properties(it_executor_lease PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
# the executor API over its attested TLS, sent garbage by a test client
add_executable(exec_post ${MT_TEST_DIR}/integration/exec_post.c)
target_link_libraries(exec_post PRIVATE mt_tee mt_attest mt_common)
add_test(NAME it_executor_api_garbage COMMAND bash ${MT_TEST_DIR}/integration/it_executor_api_garbage.sh)
set_tests_properties(it_executor_api_garbage PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MT_EXEC_POST=$<TARGET_FILE:exec_post>" TIMEOUT 300)
# certificate renewal on both ends of the executor API
add_test(NAME it_executor_cert_renew COMMAND bash ${MT_TEST_DIR}/integration/it_executor_cert_renew.sh)
set_tests_properties(it_executor_cert_renew PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
# a scheduler restart leaves leased remote runs to their leases
add_test(NAME it_executor_restart COMMAND bash ${MT_TEST_DIR}/integration/it_executor_restart.sh)
set_tests_properties(it_executor_restart PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
# it_executor_limits (registered in integration.cmake) also uses the test client
set_tests_properties(it_executor_limits PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MT_EXEC_POST=$<TARGET_FILE:exec_post>")
