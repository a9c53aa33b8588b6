# Client library (libmesatee) and CLI (mesatee) unit tests; owned by the client/cli area.
mt_add_unit_test(test_client SOURCES ${MT_TEST_DIR}/unit/test_client.c
                 LIBS libmesatee PkgConfig::CURL PkgConfig::OPENSSL Threads::Threads)
mt_add_unit_test(test_cli SOURCES ${MT_TEST_DIR}/unit/test_cli.c LIBS)
target_compile_definitions(test_cli PRIVATE MT_CLI_BIN="$<TARGET_FILE:mesatee>")
add_dependencies(test_cli mesatee)
