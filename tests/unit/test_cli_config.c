/* Unit tests of the CLI's settings-file reader (cli_config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli_config.h"

static mt_status parse(const char *text, size_t len, cli_config *c, mt_err *err)
{
    mt_err_clear(err);
    return cli_config_parse(text, len, c, err);
}

static void test_accepts_all_keys(void **state)
{
    (void)state;
    const char t[] = "# settings\n\nserver = https://h:1\n\tca=/x/ca.pem  \r\n"
                     "token_file =  /t \noutput = json\ntls_server_name = mesatee.example.org";
    cli_config c;
    mt_err err;
    assert_int_equal(parse(t, sizeof t - 1, &c, &err), MT_OK);
    assert_string_equal(c.value[0], "https://h:1");
    assert_int_equal(c.line[0], 3);
    assert_string_equal(c.value[1], "/x/ca.pem");
    assert_string_equal(c.value[2], "/t");
    assert_string_equal(c.value[3], "json");
    assert_int_equal(c.line[3], 6);
    assert_string_equal(c.value[4], "mesatee.example.org");
    assert_int_equal(c.line[4], 7);
    cli_config_clear(&c);
}

static void expect_refused(const char *t, size_t len, int line, const char *why)
{
    cli_config c;
    mt_err err;
    assert_int_equal(parse(t, len, &c, &err), MT_EINVAL);
    assert_int_equal(c.error_line, line);
    if (!strstr(err.msg, why))
        fail_msg("message '%s' lacks '%s'", err.msg, why);
    for (int i = 0; i < CLI_CONFIG_NKEYS; i++)
        assert_null(c.value[i]);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("server = a\nserver = b\n", 22, 2, "key 'server' is set twice (first on line 1)");
    expect_refused("nokey\n", 6, 1, "expected 'key = value'");
    expect_refused("ca = x\nevil = 1\n", 16, 2, "unknown key 'evil'");
    expect_refused("ca =  \t\n", 8, 1, "key 'ca' has an empty value");
    expect_refused("tls_server_name =\n", 18, 1, "key 'tls_server_name' has an empty value");
    expect_refused("tls_server_name = a\ntls_server_name = b\n", 40, 2,
                   "key 'tls_server_name' is set twice");
    expect_refused("tls_server = a\n", 15, 1, "unknown key 'tls_server' (known keys: server, ca, "
                                             "token_file, output, tls_server_name)");
    expect_refused("ca = a\0b\n", 9, 0, "NUL byte");
    char big[CLI_CONFIG_MAX_LINE + 20];
    memset(big, 'x', sizeof big);
    memcpy(big, "ca = ", 5);
    expect_refused(big, sizeof big, 1, "line longer than");
}

/* A long unknown key is quoted at most 64 bytes, so the message stays short. */
static void test_long_key_quoted_briefly(void **state)
{
    (void)state;
    char t[600];
    memset(t, 'k', 500);
    memcpy(t + 500, " = v\n", 5);
    cli_config c;
    mt_err err;
    assert_int_equal(parse(t, 505, &c, &err), MT_EINVAL);
    assert_true(strlen(err.msg) < 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_all_keys),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_long_key_quoted_briefly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
