# issue 14: the core's unit tests on PostgreSQL (docs/cluster.md "Tests"):
# the same programs under a throw-away cluster of their own (pg-temp.sh run),
# MT_TEST_STORE_URL naming it; each test opens its core on a fresh schema.
# Skipped (77) with a message where PostgreSQL is absent. Label `pg`.
foreach(t test_core_api test_core_flow test_audit_group test_transit_store test_audit_spool
          test_stmt_cache)
  add_test(NAME ${t}_pg COMMAND bash ${MT_TEST_DIR}/pg/pg-temp.sh run
           bash -c "MT_TEST_STORE_URL=\$MT_PG_URL exec \"\$0\"" $<TARGET_FILE:${t}>)
  set_tests_properties(${t}_pg PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS pg)
endforeach()
