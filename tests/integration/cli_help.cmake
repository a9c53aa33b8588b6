# CLI conventions: --help from the option table, did-you-mean, short forms,
# JSON errors, the generated man page and bash completion (issue 9).
add_test(NAME it_cli_help COMMAND bash ${MT_TEST_DIR}/integration/it_cli_help.sh)
set_tests_properties(it_cli_help PROPERTIES TIMEOUT 300 ENVIRONMENT
  "MESATEE_BIN=$<TARGET_FILE:mesatee>;MT_MAN_PAGE=${CMAKE_BINARY_DIR}/src/cli/mesatee.1;MT_COMPLETION=${CMAKE_BINARY_DIR}/src/cli/mesatee.bash-completion;MT_BUILD_DIR=${CMAKE_BINARY_DIR}")
