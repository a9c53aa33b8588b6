# Process life (issue 9): graceful stop with a grace period and requeue, task
# wait exit codes, the systemd unit and the sd_notify protocol (docs/service.md).
foreach(t it_graceful_stop it_graceful_stop_remote)
  add_test(NAME ${t} COMMAND bash ${MT_TEST_DIR}/integration/${t}.sh)
  set_tests_properties(${t} PROPERTIES
    ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 600)
endforeach()
add_test(NAME it_systemd COMMAND bash ${MT_TEST_DIR}/integration/it_systemd.sh)
set_tests_properties(it_systemd PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
# issue 13: long-poll task wait (GET /v1/tasks/{id}?wait=)
add_test(NAME it_task_wait COMMAND bash ${MT_TEST_DIR}/integration/it_task_wait.sh)
set_tests_properties(it_task_wait PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
# issue 13: the worker zygote starts with serve
add_test(NAME it_zygote_prestart COMMAND bash ${MT_TEST_DIR}/integration/it_zygote_prestart.sh)
set_tests_properties(it_zygote_prestart PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
# issue 13: the scheduler wakes on events (no poll) and groups its commits
add_test(NAME it_sched_events COMMAND bash ${MT_TEST_DIR}/integration/it_sched_events.sh)
set_tests_properties(it_sched_events PROPERTIES
  ENVIRONMENT "${MT_IT_ENV};MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>" TIMEOUT 300)
