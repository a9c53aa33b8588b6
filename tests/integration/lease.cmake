# (after integration.cmake, which sets MT_IT_ENV: the files are included sorted)
# issue 14, the executor fleet: leases, fencing, remote cancel, slots, health
# (docs/design.md "Executor leases").
add_test(NAME it_executor_lease COMMAND bash ${MT_TEST_DIR}/integration/it_executor_lease.sh)
set_tests_properties(it_executor_lease PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
