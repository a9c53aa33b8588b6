/* Tests of the built-ins' CSV reader and helpers (builtin_csv.h), in process. */
#include <math.h>
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

/* ---- numbers: bit-identical to strtod ---- */

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A random number text: printf forms of random doubles, or random digit
 * strings (long significands, leading zeros, large exponents). */
static void random_number(uint64_t *s, char *buf, size_t cap)
{
    uint64_t r = rnd(s);
    double v = ldexp((double)(rnd(s) >> 11), (int)(rnd(s) % 120) - 110) * ((r & 1) ? -1 : 1);
    switch ((r >> 1) % 6) {
    case 0:
        snprintf(buf, cap, "%.6g", v);
        break;
    case 1:
        snprintf(buf, cap, "%.17g", v);
        break;
    case 2:
        snprintf(buf, cap, "%.*f", (int)(rnd(s) % 12), v);
        break;
    case 3:
        snprintf(buf, cap, "%.*e", (int)(rnd(s) % 20), v);
        break;
    default: {
        size_t o = 0;
        if (rnd(s) % 3 == 0)
            buf[o++] = rnd(s) & 1 ? '-' : '+';
        size_t ni = rnd(s) % 24, nf = rnd(s) % 24;
        for (size_t i = 0; i < ni; i++)
            buf[o++] = (char)('0' + (rnd(s) % 4 == 0 ? 0 : rnd(s) % 10));
        if (rnd(s) & 1 || ni == 0) {
            buf[o++] = '.';
            for (size_t i = 0; i < nf || (ni == 0 && i == 0); i++)
                buf[o++] = (char)('0' + rnd(s) % 10);
        }
        if (rnd(s) % 4 == 0)
            o += (size_t)snprintf(buf + o, cap - o, "e%d", (int)(rnd(s) % 700) - 350);
        buf[o] = 0;
    }
    }
}

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

static void test_numbers_strtod(void **state)
{
    uint64_t s = 7;
    char buf[128];
    for (int i = 0; i < 200000; i++) {
        random_number(&s, buf, sizeof buf);
        double a, b = strtod(buf, NULL);
        bool ok = mt_num_parse(buf, &a);
        if (ok != (bool)isfinite(b))
            fail_msg("'%s': mt_num_parse %d, strtod %g", buf, ok, b);
        if (ok && !same_bits(a, b))
            fail_msg("'%s': %.17g != strtod %.17g", buf, a, b);
    }
    const char *edge[] = {"0", "-0", "-0.0", "9007199254740992", "9007199254740993",
                          "1e22", "1e23", "123456789012345678901234567890", "0.1", "1e-22",
                          "4.9e-324", "2.2250738585072014e-308", "1.7976931348623157e308"};
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++) {
        double a;
        assert_true(mt_num_parse(edge[k], &a));
        assert_true(same_bits(a, strtod(edge[k], NULL)));
    }
}

/* ---- mt_csv_read_numbers against mt_csv_parse + mt_num_parse ---- */

typedef struct num_rows {
    mt_sbuf b; /* one text line per row: line, bad, why, value bits */
} num_rows;

static mt_status collect(void *u, size_t line, const double *v, size_t bad, const char *why,
                         mt_err *err)
{
    num_rows *nr = u;
    mt_sbuf_printf(&nr->b, "%zu %zu %s", line, bad, why ? why : "-");
    for (size_t j = 0; j < 3; j++) {
        uint64_t bits;
        double x = isnan(v[j]) ? NAN : v[j];
        memcpy(&bits, &x, 8);
        mt_sbuf_printf(&nr->b, " %016llx", (unsigned long long)bits);
    }
    mt_sbuf_puts(&nr->b, "\n");
    return MT_OK;
}

/* Reads columns 2, 0, 1 of text both ways; the results and messages must be
 * the same. Returns whether it parsed. */
static bool diff_read(const char *text, size_t len, const bool *empty_nan)
{
    mt_csv_opts o = {.slot = "s", .max_record = 200, .max_cols = 6};
    static const size_t col[3] = {2, 0, 1};
    mt_csv_numcols nc = {.col = col, .empty_nan = empty_nan, .n = 3};
    /* reference */
    mt_err e1 = {0}, e2 = {0};
    mt_csv *t = NULL;
    mt_status s1 = mt_csv_parse((const uint8_t *)text, len, &o, &t, &e1);
    num_rows ref = {0}, got = {0};
    if (s1 == MT_OK && t->n_cols < 3) {
        mt_csv_free(t);
        return false;
    }
    if (s1 == MT_OK) {
        for (size_t r = 0; r < t->n_rows; r++) {
            double v[3];
            size_t bad = 3;
            const char *why = NULL;
            for (size_t j = 0; j < 3; j++) {
                const char *c = mt_csv_cell(t, r, col[j]);
                if (!c[0] && empty_nan[j]) {
                    v[j] = NAN;
                } else if (!mt_num_parse(c, &v[j])) {
                    v[j] = NAN;
                    if (bad == 3) {
                        bad = j;
                        why = c[0] ? "not a finite number" : "empty numeric field";
                    }
                }
            }
            collect(&ref, t->line[r], v, bad, why, NULL);
        }
        mt_csv_free(t);
    }
    /* fast path */
    mt_csv *h = NULL;
    size_t body = 0, line = 0;
    mt_status s2 = mt_csv_parse_header((const uint8_t *)text, len, &o, &h, &body, &line, &e2);
    if (s2 == MT_OK && h->n_cols < 3) {
        mt_csv_free(h);
        assert_int_not_equal(s1, MT_OK); /* fewer columns: the reference failed on a row */
        mt_sbuf_free(&ref.b);
        return false;
    }
    if (s2 == MT_OK)
        s2 = mt_csv_read_numbers((const uint8_t *)text, len, &o, h, body, line, &nc, collect,
                                 &got, &e2);
    mt_csv_free(h);
    if (s1 != s2 || strcmp(e1.msg, e2.msg) != 0)
        fail_msg("status %d '%s' vs %d '%s' on <<%.*s>>", s1, e1.msg, s2, e2.msg, (int)len, text);
    if (s1 == MT_OK && (ref.b.len != got.b.len || (ref.b.len && memcmp(ref.b.p, got.b.p, ref.b.len) != 0)))
        fail_msg("rows differ on <<%.*s>>:\n%s---\n%s", (int)len, text, ref.b.p, got.b.p);
    mt_sbuf_free(&ref.b);
    mt_sbuf_free(&got.b);
    return s1 == MT_OK;
}

static void test_read_numbers(void **state)
{
    static const bool strict[3] = {false, false, false}, missing[3] = {true, false, true};
    const char *fixed[] = {
        "a,b,c\n1,2,3\n",
        ("\xef\xbb\xbf\r\n\na,b,c,pad\r\n1.5,-2,3e2,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n"
         "\"4\",5,6,\"q,\"\"\n\"\n"),
        "a,b,c\n1,,3\n",                  /* empty */
        "a,b,c\n1,x,3\n7,8,\n",           /* not a number, empty last */
        "a,b,c\n1,2,3,4\n",               /* too many fields */
        "a,b,c\n1,2\n",                   /* too few */
        "a,b,c\n1,2,3\r4,5,6\n",          /* lone CR */
        "a,b,c\n1,2,3\n4,5,6,",            /* trailing comma at the end */
        "a,b,c\n1,2,1e999\n",             /* not finite */
        "a,b,c\n1,2,3\n4,\"5\n",          /* unterminated */
        "a,b,c\n1,2\"3,4\n",              /* quote inside */
        "a,b,c\n12345678901234567890123,0.000000000000000000000000001,-0\n",
        "a,a,c\n1,2,3\n",                 /* duplicate header */
        "",
    };
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        diff_read(fixed[k], strlen(fixed[k]), strict);
        diff_read(fixed[k], strlen(fixed[k]), missing);
    }
    /* an over-long record (max_record 200 here) */
    char big[400];
    memset(big, '1', sizeof big);
    memcpy(big, "a,b,c\n1,2,", 10);
    diff_read(big, sizeof big, strict);

    /* random records from a small alphabet and random numbers */
    uint64_t s = 99;
    static const char *const pieces[] = {",", ",", ",", "\n", "\n", "\r\n", "\r", "\"",
                                         "\"\"", "x", " ", "", "-", ".", "e", "0"};
    char text[4096], num[128];
    int parsed = 0;
    for (int i = 0; i < 20000; i++) {
        size_t o = (size_t)snprintf(text, sizeof text, "%s", rnd(&s) & 1 ? "a,b,c\n" : "a,b,c,pad\n");
        size_t n = rnd(&s) % 40;
        for (size_t k = 0; k < n && o < sizeof text - 200; k++) {
            uint64_t r = rnd(&s) % 10;
            if (r < 5) {
                random_number(&s, num, sizeof num);
                o += (size_t)snprintf(text + o, sizeof text - o, "%s", num);
            } else if (r < 6) {
                o += (size_t)snprintf(text + o, sizeof text - o, "yyyyyyyyyyyyyyyyyyyyyyyyyyyy");
            } else {
                o += (size_t)snprintf(text + o, sizeof text - o, "%s",
                                      pieces[rnd(&s) % (sizeof pieces / sizeof pieces[0])]);
            }
        }
        parsed += diff_read(text, o, rnd(&s) & 1 ? strict : missing);
    }
    /* well-formed numeric rows: the fast path proper */
    for (int i = 0; i < 2000; i++) {
        size_t o = (size_t)snprintf(text, sizeof text, "a,b,c,pad\n");
        for (int r = 0; r < 20; r++) {
            for (int c = 0; c < 3; c++) {
                random_number(&s, num, sizeof num);
                o += (size_t)snprintf(text + o, sizeof text - o, "%s,", num);
            }
            o += (size_t)snprintf(text + o, sizeof text - o, "%s", r & 1 ? "p\r\n" : "p\n");
        }
        assert_true(diff_read(text, o, strict));
        parsed++;
    }
    assert_true(parsed > 2000);
}

/* Keys an untrusted party chooses cannot be made to collide: 8 free bytes
 * followed by the word 0x9e3779b97f4a7c15 (little-endian) gave one hash for
 * every seed under the multiply-fold hash used before (the word zeroed the
 * state); under SipHash-1-3 they are all distinct. */
static void test_strmap_no_seedless_collisions(void **state)
{
    (void)state;
    mt_strmap m;
    mt_err err;
    assert_int_equal(mt_strmap_init(&m, 512, &err), MT_OK);
    enum { N = 256 };
    char keys[N][16];
    uint64_t h[N];
    static const uint8_t k1[8] = {0x15, 0x7c, 0x4a, 0x7f, 0xb9, 0x79, 0x37, 0x9e};
    for (int i = 0; i < N; i++) {
        memset(keys[i], 'a', 8);
        keys[i][0] = (char)('A' + i % 26);
        keys[i][1] = (char)('A' + i / 26);
        memcpy(keys[i] + 8, k1, 8);
        h[i] = mt_strmap_hash(&m, keys[i], 16);
    }
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            same += h[i] == h[j];
    assert_int_equal(same, 0);
    bool found;
    for (int i = 0; i < N; i++)
        assert_int_equal(mt_strmap_put(&m, keys[i], 16, (uint32_t)i, &found, NULL, &err), MT_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(mt_strmap_get(&m, keys[i], 16), i);
    mt_strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_numbers_strtod),
        cmocka_unit_test(test_read_numbers),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_strmap_no_seedless_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
