/* Unit tests for mt_http_head (the gateway's strict request-head reader,
 * issue 8 item 6): the fields the gateway acts on, and the heads it must
 * refuse because evhttp could read them differently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_http_head.h"

static bool parse(const char *text, mt_http_head *h)
{
    return mt_http_head_parse(text, strlen(text), h);
}

static void test_fields(void **state)
{
    (void)state;
    const char *t = "POST /v1/objects?x=1 HTTP/1.1\r\nHost: a\r\n"
                    "authorization:  Bearer tok  \r\nContent-Length: 1234\r\n"
                    "Expect: 100-Continue\r\n\r\n";
    mt_http_head h;
    assert_true(parse(t, &h));
    assert_string_equal(h.method, "POST");
    assert_int_equal(h.target_len, strlen("/v1/objects?x=1"));
    assert_memory_equal(h.target, "/v1/objects?x=1", h.target_len);
    assert_true(h.has_cl);
    assert_int_equal(h.cl, 1234);
    assert_false(h.has_te);
    assert_false(h.dup);
    assert_int_equal(h.auth_len, strlen("Bearer tok"));
    assert_memory_equal(h.auth, "Bearer tok", h.auth_len);
    assert_true(h.expect_continue);
    assert_memory_equal(t + h.cl_at, "Content-Length: 1234\r\n", h.cl_end - h.cl_at);
    assert_memory_equal(t + h.ex_at, "Expect: 100-Continue\r\n", h.ex_end - h.ex_at);

    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &h));
    assert_false(h.has_cl);
    assert_null(h.auth);
    assert_int_equal(h.ex_end, 0);
}

static void test_flags(void **state)
{
    (void)state;
    mt_http_head h;
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n", &h));
    assert_true(h.dup);
    assert_true(parse("GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", &h));
    assert_true(h.dup);
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h));
    assert_true(h.has_te);
    /* only one Expect line is cut from a streamed head: a second is refused */
    assert_true(parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nexpect: 100-continue\r\n\r\n",
                      &h));
    assert_true(h.dup);
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "get / HTTP/1.1\r\n\r\n",                                         /* lower-case method */
        "GET  / HTTP/1.1\r\n\r\n",                                        /* two spaces */
        "GET / HTTP/2.0\r\n\r\n",                                         /* version */
        "GET / HTTP/1.1\n\r\n",                                           /* bare LF */
        "GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",                           /* bare LF in a header */
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",                      /* obs-fold */
        "GET / HTTP/1.1\r\nA : b\r\n\r\n",                                /* space before colon */
        "GET / HTTP/1.1\r\nA\x01: b\r\n\r\n",                             /* control in a name */
        "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",                             /* DEL in a value */
        "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",                  /* not digits */
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",                  /* sign */
        "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", /* 19 digits */
        "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",                     /* empty */
        "GET /a b HTTP/1.1\r\n\r\n",                                      /* space in target */
        "GET / HTTP/1.1\r\n\r\nX",                                        /* bytes after the head */
    };
    mt_http_head h;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &h))
            fail_msg("accepted bad head %zu", i);
    }
    char many[8192];
    size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= MT_HTTP_HEAD_MAX_LINES; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "X%d: y\r\n", i);
    snprintf(many + n, sizeof many - n, "\r\n");
    assert_false(parse(many, &h));
    /* A NUL inside is refused (the length says where the head ends). */
    const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    assert_false(mt_http_head_parse(nul, sizeof nul - 1, &h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
