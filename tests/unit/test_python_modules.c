/* Unit tests of the operator's python allow-list (python_modules.h): the
 * default list is the built-in table, sorted; --python-allow adds and
 * --python-deny removes; every kind of bad name or contradiction is refused
 * naming the option; the worker's validity check refuses anything that is
 * not a canonical list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_bschema.h"
#include "python_modules.h"

static void refused(const char *allow, const char *deny, mt_status code, const char *want)
{
    char *out = (char *)1;
    mt_err e;
    mt_err_clear(&e);
    assert_int_equal(mt_python_modules_effective(allow, deny, &out, &e), code);
    assert_null(out);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in: %s", want, e.msg);
}

static void test_default(void **state)
{
    (void)state;
    char *out = NULL;
    mt_err e;
    mt_err_clear(&e);
    assert_int_equal(mt_python_modules_effective(NULL, NULL, &out, &e), MT_OK);
    assert_true(mt_python_modules_valid(out));
    size_t n = 0;
    for (const char *const *m = mt_bschema_python_modules(); *m; m++, n++)
        assert_true(mt_python_modules_has(out, *m));
    size_t commas = 0;
    for (const char *p = out; *p; p++)
        commas += *p == ',';
    assert_int_equal(commas + 1, n);
    assert_false(mt_python_modules_has(out, "os"));
    assert_false(mt_python_modules_has(out, "num")); /* whole names only */
    /* empty options are the default */
    char *same = NULL;
    assert_int_equal(mt_python_modules_effective("", ",,", &same, &e), MT_OK);
    assert_string_equal(out, same);
    free(same);
    free(out);
}

static void test_allow_deny(void **state)
{
    (void)state;
    char *out = NULL;
    mt_err e;
    mt_err_clear(&e);
    assert_int_equal(mt_python_modules_effective("shlex,zoneinfo,shlex", "json,xgboost", &out, &e),
                     MT_OK);
    assert_true(mt_python_modules_valid(out));
    assert_true(mt_python_modules_has(out, "shlex"));
    assert_true(mt_python_modules_has(out, "zoneinfo"));
    assert_true(mt_python_modules_has(out, "mesatee"));
    assert_false(mt_python_modules_has(out, "json"));
    assert_false(mt_python_modules_has(out, "xgboost"));
    /* sorted: abc first, zoneinfo last, shlex once */
    assert_int_equal(strncmp(out, "abc,", 4), 0);
    assert_string_equal(out + strlen(out) - 9, ",zoneinfo");
    assert_non_null(strstr(out, ",shlex,"));
    assert_null(strstr(strstr(out, ",shlex,") + 1, ",shlex,"));
    free(out);
}

static void test_garbage(void **state)
{
    (void)state;
    refused("a b", NULL, MT_EINVAL, "--python-allow: 'a b' is not a top-level module name");
    refused("1abc", NULL, MT_EINVAL, "--python-allow");
    refused("os.path", NULL, MT_EINVAL, "--python-allow");
    refused("\xc3\xa9t\xc3\xa9", NULL, MT_EINVAL, "--python-allow");
    refused(NULL, "nosuch", MT_EINVAL, "--python-deny: 'nosuch' is not in the default allow-list");
    refused(NULL, "mesatee", MT_EINVAL, "'mesatee' is the functions' own interface");
    refused("json", "json", MT_EINVAL, "'json' is also in --python-allow");
    char big[100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    refused(big, NULL, MT_EINVAL, "is not a top-level module name");
    /* many valid names: over the text limit */
    size_t cap = 600 * 66;
    char *many = malloc(cap), *p = many;
    assert_non_null(many);
    for (int i = 0; i < 600; i++)
        p += sprintf(p, "%sm%060d", i ? "," : "", i);
    refused(many, NULL, MT_EINVAL, "more than 512 modules");
    p = many;
    for (int i = 0; i < 200; i++)
        p += sprintf(p, "%sm%060d", i ? "," : "", i);
    refused(many, NULL, MT_ETOOBIG, "longer than 4096 bytes");
    free(many);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(mt_python_modules_valid("abc,mesatee,numpy"));
    assert_false(mt_python_modules_valid(NULL));
    assert_false(mt_python_modules_valid(""));
    assert_false(mt_python_modules_valid("abc,numpy"));        /* no mesatee */
    assert_false(mt_python_modules_valid("numpy,mesatee"));    /* not sorted */
    assert_false(mt_python_modules_valid("mesatee,mesatee"));  /* twice */
    assert_false(mt_python_modules_valid("mesatee,"));         /* empty name */
    assert_false(mt_python_modules_valid(",mesatee"));
    assert_false(mt_python_modules_valid("a b,mesatee"));
    assert_false(mt_python_modules_valid("mesatee,os.path"));
    assert_true(mt_python_modules_valid("mesatee,mesatee2"));  /* a prefix sorts first */
    assert_false(mt_python_modules_valid("mesatee2,mesatee"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_allow_deny),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
