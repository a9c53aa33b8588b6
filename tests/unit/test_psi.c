/* Tests of the PSI core (mt_psi_compute) against a naive reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_builtin.h"

static char *psi(const char **lists, size_t n, size_t *count, mt_status *st, mt_err *err)
{
    mt_psi_input in[8];
    for (size_t i = 0; i < n; i++) {
        in[i].slot = i == 0 ? "alice" : i == 1 ? "bob" : "carol";
        in[i].data = (const uint8_t *)lists[i];
        in[i].len = strlen(lists[i]);
    }
    uint8_t *out;
    size_t len;
    *st = mt_psi_compute(in, n, 42, &out, &len, count, err);
    if (*st != MT_OK)
        return NULL;
    char *s = malloc(len + 1);
    if (len)
        memcpy(s, out, len);
    s[len] = 0;
    free(out);
    return s;
}

static void expect(const char **lists, size_t n, const char *want, size_t want_count)
{
    size_t c;
    mt_status st;
    mt_err err = {0};
    char *s = psi(lists, n, &c, &st, &err);
    assert_int_equal(st, MT_OK);
    assert_string_equal(s, want);
    assert_int_equal(c, want_count);
    free(s);
}

static void test_basic(void **state)
{
    const char *a[] = {"b\na\nc\na\n", "c\nx\na\n"};
    expect(a, 2, "a\nc\n", 2);
    const char *crlf[] = {"b\r\na\r\nc\r\n", "c\nb\n"};
    expect(crlf, 2, "b\nc\n", 2);
    const char *noeol[] = {"q\nr", "r"};
    expect(noeol, 2, "r\n", 1);
    const char *empty[] = {"a\nb\n", ""};
    expect(empty, 2, "", 0);
    const char *blank[] = {"\n\n\r\na\n\n", "a\n\n"};
    expect(blank, 2, "a\n", 1);
    const char *three[] = {"1\n2\n3\n4\n", "4\n3\n2\n", "2\n4\n9\n"};
    expect(three, 3, "2\n4\n", 2);
    /* bytewise order: prefix first, then by byte value (incl. > 0x7f) */
    const char *order[] = {"abc\nab\n\xff\nabcdefghij\nabcdefghi\nB\n",
                           "\xff\nabcdefghi\nab\nabc\nabcdefghij\nB\n"};
    expect(order, 2, "B\nab\nabc\nabcdefghi\nabcdefghij\n\xff\n", 6);
    /* duplicates in a later set do not count twice across rounds */
    const char *dup[] = {"a\n", "b\nb\n", "a\na\n"};
    expect(dup, 3, "", 0);
}

static void test_errors(void **state)
{
    char big[1100];
    memset(big, 'z', 1025);
    big[1025] = 0;
    char second[1200];
    snprintf(second, sizeof second, "ok\n\n%s\n", big);
    const char *l[] = {"ok\n", second};
    size_t c;
    mt_status st;
    mt_err err = {0};
    assert_null(psi(l, 2, &c, &st, &err));
    assert_int_equal(st, MT_EINVAL);
    assert_non_null(strstr(err.msg, "input 'bob', line 3"));
    big[1024] = 0; /* exactly the limit is fine */
    snprintf(second, sizeof second, "%s\n", big);
    const char *l2[] = {second, second};
    char *s = psi(l2, 2, &c, &st, &err);
    assert_int_equal(st, MT_OK);
    assert_int_equal(c, 1);
    free(s);
    const char *one[] = {"a"};
    assert_null(psi(one, 1, &c, &st, &err));
    assert_int_equal(st, MT_EINVAL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Random sets vs a naive sort-based reference, many sizes. */
static void test_random(void **state)
{
    srand(7);
    for (int round = 0; round < 20; round++) {
        size_t na = (size_t)(rand() % 3000), nb = (size_t)(rand() % 3000);
        char *a = malloc(na * 12 + 1), *b = malloc(nb * 12 + 1);
        char **ref = malloc((na + 1) * sizeof *ref);
        size_t la = 0, lb = 0, nref = 0;
        for (size_t i = 0; i < na; i++)
            la += (size_t)sprintf(a + la, "%x\n", rand() % 5000);
        for (size_t i = 0; i < nb; i++)
            lb += (size_t)sprintf(b + lb, "%x\n", rand() % 5000);
        a[la] = b[lb] = 0;
        /* reference: every id of a that occurs in b, deduplicated, sorted */
        char *bcopy = strdup(b);
        char *saveptr, *tok;
        char **bs = malloc((nb + 1) * sizeof *bs);
        size_t nbs = 0;
        for (tok = strtok_r(bcopy, "\n", &saveptr); tok; tok = strtok_r(NULL, "\n", &saveptr))
            bs[nbs++] = tok;
        qsort(bs, nbs, sizeof *bs, cmp_str);
        char *acopy = strdup(a);
        for (tok = strtok_r(acopy, "\n", &saveptr); tok; tok = strtok_r(NULL, "\n", &saveptr))
            if (bsearch(&tok, bs, nbs, sizeof *bs, cmp_str))
                ref[nref++] = tok;
        qsort(ref, nref, sizeof *ref, cmp_str);
        char *want = malloc(la + 1);
        size_t wl = 0, wc = 0;
        for (size_t i = 0; i < nref; i++) {
            if (i && strcmp(ref[i], ref[i - 1]) == 0)
                continue;
            wl += (size_t)sprintf(want + wl, "%s\n", ref[i]);
            wc++;
        }
        want[wl] = 0;
        const char *lists[] = {a, b};
        expect(lists, 2, want, wc);
        const char *rev[] = {b, a};
        expect(rev, 2, want, wc);
        free(a);
        free(b);
        free(ref);
        free(bs);
        free(bcopy);
        free(acopy);
        free(want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
