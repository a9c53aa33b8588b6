# cli_help.c (--help, usage, man page, completion, did-you-mean, table check)
# against tables made in the test.
mt_add_unit_test(test_cli_help SOURCES ${MT_TEST_DIR}/unit/test_cli_help.c
                 ${PROJECT_SOURCE_DIR}/src/cli/cli_help.c LIBS libmesatee mt_common PkgConfig::JANSSON)
target_include_directories(test_cli_help PRIVATE ${PROJECT_SOURCE_DIR}/src/cli)
