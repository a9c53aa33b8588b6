/* Unit tests of src/core/api_page.c: the list routes' query reader (limit,
 * cursor, audit's after) and the opaque cursor codec, with garbage. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <string.h>

#include "api_page.h"

static const char ID[] = "0123456789abcdef0123456789abcdef";

static void test_defaults(void **state)
{
    (void)state;
    dec_page p;
    mt_err err;
    assert_int_equal(dec_page_query_parse(NULL, PAGE_FILES, &p, &err), MT_OK);
    assert_int_equal(p.limit, DEC_PAGE_DEFAULT);
    assert_false(p.has_pos);
    assert_int_equal(dec_page_query_parse("", PAGE_TASKS, &p, &err), MT_OK);
    assert_int_equal(dec_page_query_parse("limit=1", PAGE_TASKS, &p, &err), MT_OK);
    assert_int_equal(p.limit, 1);
    assert_int_equal(dec_page_query_parse("limit=1000", PAGE_USERS, &p, &err), MT_OK);
    assert_int_equal(p.limit, 1000);
}

static void test_round_trip(void **state)
{
    (void)state;
    char cur[DEC_CURSOR_MAX + 1], q[DEC_CURSOR_MAX + 32];
    dec_page p;
    mt_err err;
    page_list lists[] = {PAGE_FILES, PAGE_FUNCTIONS, PAGE_TASKS};
    for (size_t i = 0; i < 3; i++) {
        page_cursor_make(lists[i], 1796523473, 0, ID, cur, sizeof cur);
        assert_true(strlen(cur) > 0 && strspn(cur, "0123456789abcdef") == strlen(cur));
        snprintf(q, sizeof q, "cursor=%s&limit=7", cur);
        assert_int_equal(dec_page_query_parse(q, lists[i], &p, &err), MT_OK);
        assert_true(p.has_pos);
        assert_int_equal(p.time, 1796523473);
        assert_string_equal(p.key, ID);
        assert_int_equal(p.limit, 7);
    }
    page_cursor_make(PAGE_USERS, 0, 0, "a.b-c_d", cur, sizeof cur);
    snprintf(q, sizeof q, "cursor=%s", cur);
    assert_int_equal(dec_page_query_parse(q, PAGE_USERS, &p, &err), MT_OK);
    assert_string_equal(p.key, "a.b-c_d");
    page_cursor_make(PAGE_AUDIT, 0, 42, NULL, cur, sizeof cur);
    snprintf(q, sizeof q, "after=3&cursor=%s", cur);
    assert_int_equal(dec_page_query_parse(q, PAGE_AUDIT, &p, &err), MT_OK);
    assert_int_equal(p.seq, 42); /* the cursor wins over after */
    assert_int_equal(dec_page_query_parse("after=3", PAGE_AUDIT, &p, &err), MT_OK);
    assert_int_equal(p.seq, 3);
    assert_true(p.has_pos);
    /* a cursor of another list */
    page_cursor_make(PAGE_FILES, 1, 0, ID, cur, sizeof cur);
    snprintf(q, sizeof q, "cursor=%s", cur);
    assert_int_equal(dec_page_query_parse(q, PAGE_TASKS, &p, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "another list"));
    /* a too small buffer gives an empty cursor, never a cut one */
    char small[8];
    page_cursor_make(PAGE_FILES, 1, 0, ID, small, sizeof small);
    assert_string_equal(small, "");
}

static void test_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "limit=0",
        "limit=1001",
        "limit=",
        "limit=-1",
        "limit=1x",
        "limit=99999999999999999999",
        "limit=1&limit=2",
        "cursor=",
        "cursor=zz",
        "cursor=616",
        "cursor=6",
        "cursor=662e312e30", /* f.1.0: no id */
        "cursor=662e782e30313233343536373839616263646566303132333435363738396162636465",
        "cursor=752e",   /* u. : no name */
        "cursor=752e41", /* u.A: not a username */
        "cursor=662e31002e",
        "colour=red",
        "limit",
        "&",
        "limit=5&",
        "after=1",
        "cursor=612e31&cursor=612e32",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dec_page p;
        mt_err err;
        memset(&err, 0, sizeof err);
        page_list l = strstr(bad[i], "752e")   ? PAGE_USERS
                      : strstr(bad[i], "612e") ? PAGE_AUDIT
                                               : PAGE_FILES;
        mt_status st = dec_page_query_parse(bad[i], l, &p, &err);
        if (st != MT_EINVAL)
            fail_msg("accepted garbage query '%s'", bad[i]);
        assert_true(strstr(err.msg, "query") != NULL);
        assert_null(strstr(err.msg, "zz")); /* never repeats the input */
        assert_int_equal(p.limit, DEC_PAGE_DEFAULT);
        assert_false(p.has_pos);
    }
    dec_page p;
    mt_err err;
    char longq[700];
    memset(longq, 'a', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    assert_int_equal(dec_page_query_parse(longq, PAGE_FILES, &p, &err), MT_EINVAL);
    assert_int_equal(dec_page_query_parse("after=x", PAGE_AUDIT, &p, &err), MT_EINVAL);
    assert_int_equal(dec_page_query_parse("after=1&after=2", PAGE_AUDIT, &p, &err), MT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
