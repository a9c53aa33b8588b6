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

/* ---- partitioned path: k lists of generated ids vs a sort-based reference ---- */

typedef struct strv {
    char **v;
    size_t n;
} strv;

/* Lines of buf as mt_psi_compute reads them (LF, CR before LF dropped,
 * empty lines skipped), sorted and deduplicated. */
static strv ref_set(const char *buf, size_t len)
{
    strv s = {malloc((len + 1) * sizeof(char *)), 0};
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        size_t keep = l;
        if (nl && keep && buf[pos + keep - 1] == '\r')
            keep--;
        if (keep)
            s.v[s.n++] = strndup(buf + pos, keep);
        pos += l + (nl ? 1 : 0);
    }
    qsort(s.v, s.n, sizeof *s.v, cmp_str);
    size_t o = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (o && strcmp(s.v[o - 1], s.v[i]) == 0)
            free(s.v[i]);
        else
            s.v[o++] = s.v[i];
    }
    s.n = o;
    return s;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static uint64_t gen_state;
static uint64_t gen_rand(void)
{
    gen_state = gen_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return gen_state >> 33;
}

/* n ids drawn from a universe of u: short hex, 16 hex chars, and ids of 17
 * to 60 bytes sharing a 20-byte prefix (equal 16-byte prefixes: the tail
 * comparison and the tie sort); LF or CRLF, some empty lines, duplicates,
 * and sometimes no LF at the end. */
static char *gen_list(size_t n, uint64_t u, size_t *len)
{
    char *b = malloc(n * 72 + 8);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = gen_rand() % u;
        switch (x % 4) {
        case 0:
            o += (size_t)sprintf(b + o, "%llx", (unsigned long long)x);
            break;
        case 1:
            o += (size_t)sprintf(b + o, "%016llx", (unsigned long long)(x * 0x9e3779b97f4a7c15ULL));
            break;
        default:
            o += (size_t)sprintf(b + o, "common-prefix-20byte%.*llu", (int)(x % 40), (unsigned long long)x);
            break;
        }
        if (gen_rand() % 8 == 0)
            b[o++] = '\r';
        b[o++] = '\n';
        if (gen_rand() % 50 == 0)
            b[o++] = '\n';
    }
    if (o && gen_rand() % 2)
        o--; /* no LF after the last line, and then no CR either */
    if (o && b[o - 1] == '\r')
        o--;
    b[o] = 0;
    *len = o;
    return b;
}

/* k lists, the first of n0 ids (the build side when it is the smallest),
 * the others of n ids: result vs the reference. */
static void check_lists(size_t k, size_t n0, size_t n, uint64_t u)
{
    char *lists[5];
    size_t lens[5];
    mt_psi_input in[5];
    for (size_t i = 0; i < k; i++) {
        lists[i] = gen_list(i == 0 ? n0 : n, u, &lens[i]);
        in[i].slot = "x";
        in[i].data = (const uint8_t *)lists[i];
        in[i].len = lens[i];
    }
    /* reference: intersect the sorted sets in turn */
    strv acc = ref_set(lists[0], lens[0]);
    for (size_t i = 1; i < k; i++) {
        strv o = ref_set(lists[i], lens[i]);
        size_t a = 0, b = 0, w = 0;
        while (a < acc.n && b < o.n) {
            int c = strcmp(acc.v[a], o.v[b]);
            if (c == 0) {
                acc.v[w++] = acc.v[a++];
                b++;
            } else if (c < 0) {
                free(acc.v[a++]);
            } else {
                b++;
            }
        }
        while (a < acc.n)
            free(acc.v[a++]);
        acc.n = w;
        strv_free(&o);
    }
    size_t wl = 1;
    for (size_t i = 0; i < acc.n; i++)
        wl += strlen(acc.v[i]) + 1;
    char *want = malloc(wl);
    size_t o = 0;
    for (size_t i = 0; i < acc.n; i++)
        o += (size_t)sprintf(want + o, "%s\n", acc.v[i]);
    want[o] = 0;
    uint8_t *out;
    size_t len, count;
    mt_err err = {0};
    assert_int_equal(mt_psi_compute(in, k, 99 + n, &out, &len, &count, &err), MT_OK);
    assert_int_equal(count, acc.n);
    assert_int_equal(len, o);
    assert_memory_equal(out ? (const char *)out : "", want, o);
    free(out);
    free(want);
    strv_free(&acc);
    for (size_t i = 0; i < k; i++)
        free(lists[i]);
}

/* Sizes around the partition thresholds (up to 4096 ids of the smallest
 * input per partition: 1, 1, 2, 4, 8, 32 and 128 partitions), 2 and 5
 * parties, and an overlong id found on a big input's last line. */
static void test_partitioned(void **state)
{
    gen_state = 11;
    static const size_t sizes[] = {4000, 4096, 4097, 8193, 20000, 70000, 270000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t u = sizes[i] * 3 / 2;
        check_lists(2, sizes[i], sizes[i] + 1000, u);
        check_lists(2, sizes[i], sizes[i] / 2, u); /* the second list is the build side */
    }
    check_lists(5, 20000, 30000, 25000);
    check_lists(5, 70000, 60000, 50000);
    /* duplicates: one id repeated across partitions' worth of lines */
    check_lists(3, 50000, 50000, 7);

    size_t la;
    char *a = gen_list(100000, 150000, &la);
    char *b = malloc(100000 * 8 + 1200);
    size_t lb = 0;
    for (int i = 0; i < 100000; i++)
        lb += (size_t)sprintf(b + lb, "%x\r\n", i);
    memset(b + lb, 'q', 1025);
    lb += 1025;
    mt_psi_input in[2] = {{"alice", (const uint8_t *)a, la}, {"bob", (const uint8_t *)b, lb}};
    uint8_t *out;
    size_t len, count;
    mt_err err = {0};
    assert_int_equal(mt_psi_compute(in, 2, 5, &out, &len, &count, &err), MT_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "input 'bob', line 100001: id is 1025 bytes"));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_partitioned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
