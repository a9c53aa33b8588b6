# Store backends (issue 14, docs/cluster.md): serve --store.
add_test(NAME it_store_url COMMAND bash ${MT_TEST_DIR}/integration/it_store_url.sh)
set_tests_properties(it_store_url PROPERTIES ENVIRONMENT "MESATEE_BIN=$<TARGET_FILE:mesatee>" TIMEOUT 300)
# the core on PostgreSQL: one node, a throw-away cluster (skips without postgresql-15)
add_test(NAME it_store_pg COMMAND bash ${MT_TEST_DIR}/integration/it_store_pg.sh)
set_tests_properties(it_store_pg PROPERTIES ENVIRONMENT "${MT_IT_ENV}" TIMEOUT 300 SKIP_RETURN_CODE 77)
# object storage (serve --objects): db on SQLite, dir:PATH, tampering, sweep
add_test(NAME it_objects COMMAND bash ${MT_TEST_DIR}/integration/it_objects.sh)
set_tests_properties(it_objects PROPERTIES TIMEOUT 300 ENVIRONMENT
  "${MT_IT_ENV};MT_WASM_DIR=${PROJECT_BINARY_DIR}/examples/wasm")
add_test(NAME it_objects_remote COMMAND bash ${MT_TEST_DIR}/integration/it_objects_remote.sh)
set_tests_properties(it_objects_remote PROPERTIES ENVIRONMENT "${MT_IT_ENV}" TIMEOUT 300)
add_test(NAME it_objects_pg COMMAND bash ${MT_TEST_DIR}/integration/it_objects_pg.sh)
set_tests_properties(it_objects_pg PROPERTIES ENVIRONMENT "${MT_IT_ENV}" TIMEOUT 300 SKIP_RETURN_CODE 77)
# issue 14 gap: audit entries survive an unreachable store (local MACed spool,
# replay, fail closed past the cap, tampered spool refused); MT_TEST_PG=1 stops
# the throw-away PostgreSQL instead of locking the SQLite file
add_test(NAME it_audit_spool COMMAND bash ${MT_TEST_DIR}/integration/it_audit_spool.sh)
set_tests_properties(it_audit_spool PROPERTIES ENVIRONMENT "${MT_IT_ENV}" TIMEOUT 300)
