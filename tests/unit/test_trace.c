/* Unit tests of mt_trace (MESATEE_TRACE_TASKS, issue 13): the invoke path
 * matcher and the reader of another process's stamps ("name=US,..."), with
 * garbage: only [a-z_]{1,24}=[0-9]{1,18} pairs are taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_trace.h"

static void test_pairs(void **state)
{
    (void)state;
    const char *id = "0123456789abcdef0123456789abcdef";
    assert_int_equal(mt_trace_mark_pairs(id, "w_", "a=1"), 1);
    assert_int_equal(mt_trace_mark_pairs(id, "w_", "child=12,seccomp=13,report=999999"), 3);
    assert_int_equal(mt_trace_mark_pairs(id, "w_", ""), 0);
    assert_int_equal(mt_trace_mark_pairs(id, NULL, "x_y=5"), 1);
    static const char *const bad[] = {
        "=1", "a=", "a", "A=1", "a=1,", "a=1,,b=2", "a=-1", "a=1x", "a b=1", "a=1\nb=2",
        "a=1234567890123456789", "abcdefghijklmnopqrstuvwxy=1", "a=1;b=2", "é=1",
        "a=1,b", "trace task 0123 x 1=2", "a=\x01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mt_trace_mark_pairs(id, "w_", bad[i]), -1);
    assert_int_equal(mt_trace_mark_pairs(id, "w_", NULL), -1);
    assert_int_equal(mt_trace_mark_pairs(id, "prefix_too_long", "a=1"), -1);
    /* the longest name and stamp taken */
    assert_int_equal(mt_trace_mark_pairs(id, "w_", "abcdefghijklmnopqrstuvwx=123456789012345678"), 1);
}

static void test_invoke_id(void **state)
{
    (void)state;
    char id[33];
    assert_true(mt_trace_invoke_id("/v1/tasks/0123456789abcdef0123456789abcdef/invoke", id));
    assert_string_equal(id, "0123456789abcdef0123456789abcdef");
    assert_true(mt_trace_invoke_id("POST /v1/tasks/0123456789abcdef0123456789abcdef/invoke", id));
    static const char *const bad[] = {
        "/v1/tasks/0123456789abcdef0123456789abcdef", "/v1/tasks/0123456789ABCDEF0123456789abcdef/invoke",
        "/v1/tasks/0123456789abcdef0123456789abcde/invoke", "/v1/tasks/0123456789abcdef0123456789abcdef/invoke/x",
        "/v1/tasks//invoke", "GET /v1/tasks/0123456789abcdef0123456789abcdef/invoke", "", "/v1/tasks/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mt_trace_invoke_id(bad[i], id));
    assert_false(mt_trace_invoke_id(NULL, id));
}

int main(void)
{
    setenv("MESATEE_TRACE_TASKS", "1", 1); /* the marks are logged (stderr) too */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_invoke_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
