# Issue 9 "Users and functions": user lifecycle and built-in argument schemas.
add_test(NAME it_users COMMAND bash ${MT_TEST_DIR}/integration/it_users.sh)
set_tests_properties(it_users PROPERTIES ENVIRONMENT "MESATEE_BIN=$<TARGET_FILE:mesatee>" TIMEOUT 300)
