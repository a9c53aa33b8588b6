# Cluster tests (issue 14, docs/cluster.md "Failure tests"): label "cluster".
# dbcert_node: the attestation-gated database credential flow in one process
# (KeyStore + node, soft level), used by the scripts below.
add_executable(dbcert_node ${MT_TEST_DIR}/cluster/dbcert_node.c)
target_link_libraries(dbcert_node PRIVATE mt_keystore)
# db_writer: failover.sh's writer on mesatee's own database layer (mt_db):
# multi-host URL, retry of retryable errors, reconnect after the failover.
add_executable(db_writer ${MT_TEST_DIR}/cluster/db_writer.c)
target_link_libraries(db_writer PRIVATE mt_store)
# A single PostgreSQL with `hostssl ... cert clientcert=verify-full`: an attested
# node connects with the KeyStore's certificate, a node with a wrong measurement
# gets none and is refused (a few seconds; skips without PostgreSQL 15).
add_test(NAME cluster_dbcert COMMAND bash ${MT_TEST_DIR}/cluster/dbcert_pg.sh)
set_tests_properties(cluster_dbcert PROPERTIES LABELS cluster SKIP_RETURN_CODE 77 TIMEOUT 120
  ENVIRONMENT "MT_DBCERT_TOOL=$<TARGET_FILE:dbcert_node>")
# etcd x3 + Patroni/PostgreSQL x2 in network namespaces, kill -9 of the primary
# (~30 s; root; skips where namespaces, etcd or Patroni are absent). It does not
# depend on the build type: registered in the normal build only, not in the
# sanitizer build (MT_SANITIZE) nor in Release builds (scripts/test --matrix),
# so CI runs it once.
if(NOT MT_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Release")
  add_test(NAME cluster_failover COMMAND bash ${MT_TEST_DIR}/cluster/failover.sh)
  set_tests_properties(cluster_failover PROPERTIES LABELS cluster SKIP_RETURN_CODE 77
    TIMEOUT 300 ENVIRONMENT
    "MT_DBCERT_TOOL=$<TARGET_FILE:dbcert_node>;MT_DB_WRITER=$<TARGET_FILE:db_writer>")
endif()
# The failure script (tests/cluster/failure.sh): etcd x3 + Patroni/PostgreSQL x2,
# a mesatee node on the multi-host URL and 2 executors, each in a network
# namespace; executor kill, partition + fencing, primary kill, wrong
# measurement, node kill, a whole node partitioned, with PSI and GBDT tasks
# in flight (~140 s; root; skips like cluster_failover). Normal build only,
# for the same reason.
if(NOT MT_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Release")
  add_test(NAME cluster_failure COMMAND bash ${MT_TEST_DIR}/cluster/failure.sh)
  set_tests_properties(cluster_failure PROPERTIES LABELS cluster SKIP_RETURN_CODE 77
    TIMEOUT 400 ENVIRONMENT
    "MESATEE_BIN=$<TARGET_FILE:mesatee>;MESATEE_WORKER=$<TARGET_FILE:mesatee-worker>;MT_DBCERT_TOOL=$<TARGET_FILE:dbcert_node>")
endif()
