# The CLI's settings-file reader (src/cli/cli_config.c).
mt_add_unit_test(test_cli_config SOURCES ${MT_TEST_DIR}/unit/test_cli_config.c LIBS mt_cli_config)
