# The remote executor's job reader (src/executor/remote_job.c).
mt_add_unit_test(test_remote_job SOURCES ${MT_TEST_DIR}/unit/test_remote_job.c LIBS mt_worker_lib)
