/* Tests of the built-ins' CSV reader and helpers (builtin_csv.h), in process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "builtin_csv.h"

static mt_csv *parse(const char *s, bool no_header, mt_status *st, mt_err *err)
{
    mt_csv_opts o = {.slot = "alice", .no_header = no_header, .max_record = 64, .max_cols = 8};
    mt_csv *t = NULL;
    *st = mt_csv_parse((const uint8_t *)s, strlen(s), &o, &t, err);
    return t;
}

static void expect_err(const char *s, const char *want)
{
    mt_status st;
    mt_err err = {0};
    mt_csv *t = parse(s, false, &st, &err);
    assert_null(t);
    assert_int_not_equal(st, MT_OK);
    if (!strstr(err.msg, want))
        fail_msg("'%s': got '%s', want '%s'", s, err.msg, want);
}

static void test_basic(void **state)
{
    mt_status st;
    mt_err err = {0};
    mt_csv *t = parse("\xef\xbb\xbfid,v\r\na,1\n\n\"b,\"\"x\"\"\ny\",2.5\r\n\"\",-3e2", false, &st,
                      &err);
    assert_int_equal(st, MT_OK);
    assert_int_equal(t->n_cols, 2);
    assert_int_equal(t->n_rows, 3);
    assert_string_equal(t->header[0], "id");
    assert_string_equal(mt_csv_cell(t, 0, 0), "a");
    assert_string_equal(mt_csv_cell(t, 1, 0), "b,\"x\"\ny");
    assert_string_equal(mt_csv_cell(t, 2, 0), "");
    assert_int_equal(t->line[0], 2);
    assert_int_equal(t->line[1], 4);
    assert_int_equal(t->line[2], 6);
    double v;
    assert_int_equal(mt_csv_number(t, 2, 1, &v, &err), MT_OK);
    assert_true(v == -300.0);
    size_t c;
    assert_int_equal(mt_csv_column(t, "v", "value", &c, &err), MT_OK);
    assert_int_equal(c, 1);
    assert_int_equal(mt_csv_column(t, "1", "value", &c, &err), MT_OK);
    assert_int_equal(c, 0);
    assert_int_equal(mt_csv_column(t, "3", "label", &c, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "argument 'label': input 'alice' has no column '3'"));
    mt_csv_free(t);

    /* trailing comma: an empty last field; header only: zero rows */
    t = parse("a,b\nx,\n", false, &st, &err);
    assert_int_equal(st, MT_OK);
    assert_string_equal(mt_csv_cell(t, 0, 1), "");
    mt_csv_free(t);
    t = parse("a,b\n", false, &st, &err);
    assert_int_equal(t->n_rows, 0);
    mt_csv_free(t);
    t = parse("1,2\n3,4", true, &st, &err);
    assert_int_equal(st, MT_OK);
    assert_int_equal(t->n_rows, 2);
    assert_string_equal(t->header[1], "c2");
    assert_string_equal(mt_csv_cell(t, 1, 1), "4");
    mt_csv_free(t);
    mt_csv_free(NULL);
}

static void test_errors(void **state)
{
    expect_err("", "input 'alice', line 1, column 1: empty input");
    expect_err("\n\r\n", "empty input");
    expect_err("a,b\n1,2\n3\n", "input 'alice', line 3, column 2: expected 2 fields as in the header, found 1");
    expect_err("a,b\n1,2,3\n", "line 2, column 3: expected 2 fields");
    expect_err("a,b\n1,x\"y\n", "line 2, column 2: quote inside an unquoted field");
    expect_err("a,b\n1,\"xy\"z\n", "line 2, column 2: unexpected character after a closing quote");
    expect_err("a,b\n1,2\n\"open\n,\n", "line 3, column 1: unterminated quoted field");
    expect_err("a,b\n1,2\rx\n", "line 2, column 2: carriage return not followed");
    expect_err("a,,b\n", "line 1, column 2: empty header name");
    expect_err("a,b,a\n", "line 1, column 3: duplicate header name");
    expect_err("a,b\n1,0123456789012345678901234567890123456789012345678901234567890123456789\n",
               "line 2, column 2: record longer than 64 bytes");
    expect_err("a,b,c,d,e,f,g,h,i\n", "line 1, column 9: too many fields");
    mt_status st;
    mt_err err = {0};
    mt_csv_opts o = {.slot = "s"};
    mt_csv *t = NULL;
    st = mt_csv_parse((const uint8_t *)"a\nx\0y\n", 6, &o, &t, &err);
    assert_int_equal(st, MT_EINVAL);
    assert_non_null(strstr(err.msg, "line 2, column 1: NUL byte"));

    t = parse("x,y\n1,abc\n2,\n3,1e999\n4, 5\n", false, &st, &err);
    assert_int_equal(st, MT_OK);
    double v;
    assert_int_equal(mt_csv_number(t, 0, 1, &v, &err), MT_EINVAL);
    assert_string_equal(err.msg, "input 'alice', line 2, column 2: not a finite number");
    assert_int_equal(mt_csv_number(t, 1, 1, &v, &err), MT_EINVAL);
    assert_string_equal(err.msg, "input 'alice', line 3, column 2: empty numeric field");
    assert_int_equal(mt_csv_number(t, 2, 1, &v, &err), MT_EINVAL);
    assert_int_equal(mt_csv_number(t, 3, 1, &v, &err), MT_EINVAL);
    mt_csv_free(t);
}

static void test_numbers(void **state)
{
    double v;
    int64_t i;
    assert_true(mt_num_parse("1", &v) && v == 1);
    assert_true(mt_num_parse("-.5", &v) && v == -0.5);
    assert_true(mt_num_parse("+2.", &v) && v == 2);
    assert_true(mt_num_parse("1E-3", &v) && v == 0.001);
    const char *bad[] = {"", "-", ".", "e5", "1e", "1e+", "0x10", "inf", "nan", " 1", "1 ",
                         "1.2.3", "1e5x"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_false(mt_num_parse(bad[k], &v));
    assert_true(mt_int_parse("-42", &i) && i == -42);
    assert_false(mt_int_parse("4.2", &i));
    assert_false(mt_int_parse("99999999999999999999", &i));
    mt_sbuf b = {0};
    mt_sbuf_num(&b, 0.1 + 0.2);
    mt_sbuf_puts(&b, " ");
    mt_sbuf_num(&b, -0.0);
    mt_sbuf_puts(&b, " ");
    mt_sbuf_num(&b, 2.5);
    mt_sbuf_puts(&b, " ");
    mt_sbuf_num(&b, 1e20);
    assert_string_equal(b.p, "0.30000000000000004 0 2.5 1e+20");
    mt_sbuf_free(&b);
}

static void test_writer_roundtrip(void **state)
{
    const char *fields[] = {"plain", "a,b", "q\"uote", "line\nbreak", " lead", "", "cr\r\nlf"};
    size_t n = sizeof fields / sizeof fields[0];
    mt_sbuf b = {0};
    for (size_t r = 0; r < 2; r++) {
        for (size_t i = 0; i < n; i++) {
            if (i)
                mt_sbuf_put(&b, ",", 1);
            if (r == 0) {
                char h[8];
                snprintf(h, sizeof h, "h%zu", i);
                mt_sbuf_puts(&b, h);
            } else {
                mt_sbuf_csv_field(&b, fields[i], strlen(fields[i]));
            }
        }
        mt_sbuf_put(&b, "\n", 1);
    }
    mt_csv_opts o = {.slot = "w"};
    mt_csv *t = NULL;
    mt_err err = {0};
    assert_int_equal(mt_csv_parse((const uint8_t *)b.p, b.len, &o, &t, &err), MT_OK);
    assert_int_equal(t->n_rows, 1);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(mt_csv_cell(t, 0, i), fields[i]);
    mt_csv_free(t);
    mt_sbuf_free(&b);
}

static void test_strmap(void **state)
{
    mt_strmap m;
    mt_err err = {0};
    assert_int_equal(mt_strmap_init(&m, 2, &err), MT_OK);
    char keys[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        bool found;
        assert_int_equal(mt_strmap_put(&m, keys[i], strlen(keys[i]), (uint32_t)i, &found, NULL,
                                       &err),
                         MT_OK);
        assert_false(found);
    }
    bool found;
    uint32_t old;
    assert_int_equal(mt_strmap_put(&m, "k7", 2, 99, &found, &old, &err), MT_OK);
    assert_true(found);
    assert_int_equal(old, 7);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mt_strmap_get(&m, keys[i], strlen(keys[i])), i);
    assert_int_equal(mt_strmap_get(&m, "nope", 4), -1);
    assert_int_equal(m.count, 1000);
    mt_strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_strmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
