/* Tests of the PSI core (mt_psi_compute) against a naive reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "big_alloc.h"
#include "mt_builtin.h"
#include "mt_util.h"

static char *psi(const char **lists, size_t n, size_t *count, mt_status *st, mt_err *err)
{
    mt_psi_input in[8];
    for (size_t i = 0; i < n; i++) {
        in[i].slot = i == 0 ? "alice" : i == 1 ? "bob" : "carol";
        in[i].data = (const uint8_t *)lists[i];
        in[i].len = strlen(lists[i]);
        in[i].scratch = NULL;
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
        in[i].scratch = NULL;
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

/* Sizes around the partition thresholds (up to 16384 ids of the smallest
 * input per partition: 1, 1, 1, 2, 4, 8 and 32 partitions), 2 and 5
 * parties, and an overlong id found on a big input's last line. */
static void test_partitioned(void **state)
{
    gen_state = 11;
    static const size_t sizes[] = {4000, 16384, 16385, 32769, 70000, 131073, 270000};
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
    mt_psi_input in[2] = {{"alice", (const uint8_t *)a, la, NULL}, {"bob", (const uint8_t *)b, lb, NULL}};
    uint8_t *out;
    size_t len, count;
    mt_err err = {0};
    assert_int_equal(mt_psi_compute(in, 2, 5, &out, &len, &count, &err), MT_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "input 'bob', line 100001: id is 1025 bytes"));
    free(a);
    free(b);
}

/* Output of mt_psi_compute on two binary-safe lists (bytes may be NUL). */
static char *psi2(const char *a, size_t la, const char *b, size_t lb, size_t *len, size_t *count)
{
    mt_psi_input in[2] = {{"a", (const uint8_t *)a, la, NULL}, {"b", (const uint8_t *)b, lb, NULL}};
    uint8_t *out;
    mt_err err = {0};
    assert_int_equal(mt_psi_compute(in, 2, 3, &out, len, count, &err), MT_OK);
    return (char *)out;
}

/* Edge cases of the partitioned path (24-byte entries: the length in the
 * hash word, bytes 0..15 inline, longer ids by offset): empty inputs, every
 * line equal, all distinct, duplicates within a party, ids of 7..9 and
 * 15..17 bytes that differ only in their last byte or only in length (a
 * trailing NUL), long ids that differ only in their tail, and list sizes
 * around the partition counts and not a multiple of them. */
static void test_partition_edges(void **state)
{
    (void)state;
    size_t len, count;
    char *o;
    /* empty: both, one, only blank lines */
    o = psi2("", 0, "", 0, &len, &count);
    assert_int_equal(count, 0);
    assert_int_equal(len, 0);
    free(o);
    o = psi2("\n\r\n\n", 4, "a\n", 2, &len, &count);
    assert_int_equal(count, 0);
    free(o);
    /* NUL bytes and lengths: "a" != "a\0", 16 vs 17 bytes with a NUL */
    static const char a1[] = "a\na\0\n0123456789abcdef\n0123456789abcdef\0\nx\0y\n";
    static const char b1[] = "a\0\n0123456789abcdef\0\nx\0y\nzz\n";
    o = psi2(a1, sizeof a1 - 1, b1, sizeof b1 - 1, &len, &count);
    static const char w1[] = "0123456789abcdef\0\na\0\nx\0y\n";
    assert_int_equal(count, 3);
    assert_int_equal(len, sizeof w1 - 1);
    assert_memory_equal(o, w1, len);
    free(o);

    /* lengths 7..9 and 15..17 (and 40), ids differing in the last byte */
    static const int lens[] = {7, 8, 9, 15, 16, 17, 40};
    char *a = malloc(4096), *b = malloc(4096), *want = malloc(4096);
    size_t la = 0, lb = 0, lw = 0;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        int l = lens[i];
        la += (size_t)sprintf(a + la, "%0*d\n", l, 1);   /* ...0001 in both */
        lb += (size_t)sprintf(b + lb, "%0*d\n", l, 1);
        la += (size_t)sprintf(a + la, "%0*d\n", l, 2);   /* ...0002 only in a */
        lb += (size_t)sprintf(b + lb, "%0*d\n", l, 3);   /* ...0003 only in b */
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        lw += (size_t)sprintf(want + lw, "%0*d\n", lens[i], 1);
    o = psi2(a, la, b, lb, &len, &count);
    assert_int_equal(count, 7);
    /* the reference order: sort the expected lines bytewise */
    strv ref = ref_set(want, lw);
    lw = 0;
    for (size_t i = 0; i < ref.n; i++)
        lw += (size_t)sprintf(want + lw, "%s\n", ref.v[i]);
    strv_free(&ref);
    assert_int_equal(len, lw);
    assert_memory_equal(o, want, lw);
    free(o);

    /* big lists: all equal, all distinct, duplicates within one party,
     * sizes at and around the partition counts (16384 ids per partition) */
    static const size_t ns[] = {1, 16383, 16384, 16385, 3 * 16384 + 5, 32768 * 3 - 1};
    size_t cap = 32768 * 3 * 40 + 64; /* 25 bytes a line at most, 2 lines of <= 6 */
    a = realloc(a, cap);
    b = realloc(b, cap);
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t];
        /* all equal: n copies of one id on each side */
        la = lb = 0;
        for (size_t i = 0; i < n; i++) {
            la += (size_t)sprintf(a + la, "same-id-of-twenty-bytes\n");
            lb += (size_t)sprintf(b + lb, "same-id-of-twenty-bytes\r\n");
        }
        o = psi2(a, la, b, lb, &len, &count);
        assert_int_equal(count, 1);
        assert_int_equal(len, 24);
        assert_memory_equal(o, "same-id-of-twenty-bytes\n", 24);
        free(o);
        /* all distinct: disjoint ranges */
        la = lb = 0;
        for (size_t i = 0; i < n; i++) {
            la += (size_t)sprintf(a + la, "%016zx\n", i);
            lb += (size_t)sprintf(b + lb, "%016zx\n", i + n);
        }
        o = psi2(a, la, b, lb, &len, &count);
        assert_int_equal(count, 0);
        assert_int_equal(len, 0);
        free(o);
        /* duplicates within a party: a holds every id twice (second copy
         * long form), b every third id once: the result is every third id */
        la = lb = 0;
        for (size_t i = 0; i < n; i++)
            la += (size_t)sprintf(a + la, "%zu\n%zu\n", i, i);
        for (size_t i = 0; i < n; i += 3)
            lb += (size_t)sprintf(b + lb, "%zu\n", i);
        o = psi2(a, la, b, lb, &len, &count);
        assert_int_equal(count, (n + 2) / 3);
        strv r = ref_set(b, lb);
        size_t lr = 0;
        char *rw = malloc(lb + 1);
        for (size_t i = 0; i < r.n; i++)
            lr += (size_t)sprintf(rw + lr, "%s\n", r.v[i]);
        strv_free(&r);
        assert_int_equal(len, lr);
        assert_memory_equal(o, rw, lr);
        free(rw);
        free(o);
        /* both orders of the same lists give the same bytes */
        size_t len2, count2;
        char *o1 = psi2(a, la, b, lb, &len, &count);
        char *o2 = psi2(b, lb, a, la, &len2, &count2);
        assert_int_equal(len, len2);
        assert_int_equal(count, count2);
        assert_memory_equal(o1, o2, len);
        free(o1);
        free(o2);
    }
    free(a);
    free(b);
    free(want);
}


/* ---- the fast path (ids of 16 hex digits, one letter case) vs the general
 * path and the sort-based reference ---- */

/* Runs both paths on k lists: the same bytes and count, equal to the
 * reference; fast says whether the fast path must take them. */
static void check_paths(char **lists, size_t k, int fast)
{
    mt_psi_input in[8];
    size_t lens[8];
    for (size_t i = 0; i < k; i++) {
        lens[i] = strlen(lists[i]);
        in[i] = (mt_psi_input){"x", (const uint8_t *)lists[i], lens[i], NULL};
    }
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
    size_t wo = 0;
    for (size_t i = 0; i < acc.n; i++)
        wo += (size_t)sprintf(want + wo, "%s\n", acc.v[i]);
    want[wo] = 0;
    uint8_t *og, *of, *od;
    size_t lg, lf, ld, cg, cf, cd;
    mt_err err = {0};
    assert_int_equal(mt_psi_compute_ex(in, k, 7, MT_PSI_GENERAL, &og, &lg, &cg, &err), MT_OK);
    mt_status st = mt_psi_compute_ex(in, k, 8, MT_PSI_FAST_ONLY, &of, &lf, &cf, &err);
    assert_int_equal(st, fast ? MT_OK : MT_EUNAVAIL);
    assert_int_equal(mt_psi_compute(in, k, 9, &od, &ld, &cd, &err), MT_OK);
    assert_int_equal(cg, acc.n);
    assert_int_equal(lg, wo);
    assert_memory_equal(og ? (const char *)og : "", want, wo);
    assert_int_equal(cd, cg);
    assert_int_equal(ld, lg);
    size_t cc = 12345; /* the counting entry: the same size */
    assert_int_equal(mt_psi_count(in, k, 11, &cc, &err), MT_OK);
    assert_int_equal(cc, cg);
    assert_memory_equal(od ? (const char *)od : "", want, wo);
    if (fast) {
        assert_int_equal(cf, cg);
        assert_int_equal(lf, lg);
        assert_memory_equal(of ? (const char *)of : "", want, wo);
        /* on one thread (large inputs otherwise take a helper thread) */
        uint8_t *o1;
        size_t l1, c1;
        assert_int_equal(mt_psi_compute_ex(in, k, 10, MT_PSI_FAST_ONLY | MT_PSI_ONE_THREAD, &o1,
                                           &l1, &c1, &err),
                         MT_OK);
        assert_int_equal(c1, cg);
        assert_int_equal(l1, lg);
        assert_memory_equal(o1 ? (const char *)o1 : "", want, wo);
        free(o1);
    } else {
        assert_null(of);
    }
    /* with scratch (the worker's buffers, mt_psi_input.scratch): the same
     * bytes; the fast path parses and partitions in the inputs' own bytes
     * (no fresh memory for them, issue 13), overwriting them; an input the
     * fast path gives up on (the general path runs) gets its text back,
     * byte for byte */
    mt_psi_input ins[8];
    uint8_t *copy[8], *os;
    size_t ls, cs;
    for (size_t i = 0; i < k; i++) {
        assert_non_null(copy[i] = malloc(lens[i] + 1));
        memcpy(copy[i], lists[i], lens[i] + 1);
        ins[i] = (mt_psi_input){"x", copy[i], lens[i], copy[i]};
    }
    assert_int_equal(mt_psi_compute_ex(ins, k, 13, 0, &os, &ls, &cs, &err), MT_OK);
    assert_int_equal(cs, cg);
    assert_int_equal(ls, lg);
    assert_memory_equal(os ? (const char *)os : "", want, wo);
    free(os);
    size_t changed = 0;
    for (size_t i = 0; i < k; i++) {
        changed += memcmp(copy[i], lists[i], lens[i]) != 0;
        free(copy[i]);
    }
    if (fast && cg)
        assert_true(changed > 0);
    if (!fast)
        assert_int_equal(changed, 0);
    free(og);
    free(of);
    free(od);
    free(want);
    strv_free(&acc);
}

/* n ids of 16 hex digits, each line 16 digits and a LF (what the fast path
 * parses in place), the last LF left out when nolf; upper case when up. */
static char *gen_canon(size_t n, uint64_t u, int up, int nolf)
{
    char *b = malloc(n * 17 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(b + o, up ? "%016llX\n" : "%016llx\n",
                             (unsigned long long)(gen_rand() % u * 0x9e3779b97f4a7c15ULL));
    if (nolf && o)
        b[--o] = 0;
    return b;
}

/* n ids of 16 hex digits from a universe of u values spread by mul (plus
 * base), upper case letters when up; CRLF, empty lines and no final LF
 * now and then; duplicates whenever n > u. */
static char *gen_hex(size_t n, uint64_t u, uint64_t mul, uint64_t base, int up)
{
    char *b = malloc(n * 19 + 8);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = base + (gen_rand() % u) * mul;
        o += (size_t)sprintf(b + o, up ? "%016llX" : "%016llx", (unsigned long long)x);
        if (gen_rand() % 16 == 0)
            b[o++] = '\r';
        b[o++] = '\n';
        if (gen_rand() % 64 == 0)
            b[o++] = '\n';
    }
    if (o && gen_rand() % 2)
        o--; /* no LF after the last line (and then no CR) */
    if (o && b[o - 1] == '\r')
        o--;
    b[o] = 0;
    return b;
}

static char *gen_skew(size_t n, uint64_t base, size_t *len);

static void test_fast_path(void **state)
{
    (void)state;
    gen_state = 23;
    char *l[6];
    /* random lists of both cases, 2..5 parties, sizes around the partition
     * counts (16384 ids of the smallest input per partition) */
    static const size_t sizes[] = {1, 100, 8192, 8193, 40000, 150000};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        size_t n = sizes[t];
        uint64_t mul = t % 2 ? 0x9e3779b97f4a7c15ULL : 1; /* spread or clustered */
        for (int up = 0; up < 2; up++) {
            for (size_t k = 2; k <= 5; k += 3) {
                for (size_t i = 0; i < k; i++)
                    l[i] = gen_hex(i == 1 ? n / 2 + 1 : n, n + n / 2 + 1, mul, 77, up);
                check_paths(l, k, 1);
                for (size_t i = 0; i < k; i++)
                    free(l[i]);
            }
        }
    }
    /* two parties over PSI_PAR_MIN (4 MiB) in all: the helper threads */
    l[0] = gen_hex(300000, 400000, 0x9e3779b97f4a7c15ULL, 5, 0);
    l[1] = gen_hex(250000, 400000, 0x9e3779b97f4a7c15ULL, 5, 0);
    check_paths(l, 2, 1);
    free(l[0]);
    free(l[1]);
    /* duplicates: a universe of 5 values repeated over 30000 lines, 3 parties */
    for (size_t i = 0; i < 3; i++)
        l[i] = gen_hex(30000, 5, 1u << 20, 0, 0);
    check_paths(l, 3, 1);
    for (size_t i = 0; i < 3; i++)
        free(l[i]);
    /* skewed value ranges (sequential ids and one sentinel; sentinels at
     * both ends of a dense band): the smallest input's largest partition
     * would hold over 4 times an even one's ids, so the general path runs
     * (MT_PSI_FAST_ONLY: MT_EUNAVAIL), with the same bytes by default */
    {
        size_t la, lb;
        l[0] = gen_skew(100000, 0x5000, &la);
        l[1] = gen_skew(70000, 0x5000 + 20000, &lb); /* the smallest */
        check_paths(l, 2, 0);
        l[1][0] = '1'; /* the low sentinel 1000000000000000: one outlier above */
        check_paths(l, 2, 0);
        free(l[0]);
        free(l[1]);
        /* below the limit: a smallest input of 60000 in one partition */
        l[0] = gen_skew(80000, 0x5000, &la);
        l[1] = gen_skew(60000, 0x5000 + 20000, &lb);
        check_paths(l, 2, 1);
        free(l[0]);
        free(l[1]);
    }
    /* ids of 64 hex digits: not eligible from the first line on */
    l[0] = strdup("00000000000000000000000000000000000000000000000000000000000000aa\n"
                  "00000000000000000000000000000000000000000000000000000000000000bb\n");
    l[1] = strdup("00000000000000000000000000000000000000000000000000000000000000bb\n");
    check_paths(l, 2, 0);
    free(l[0]);
    free(l[1]);
    /* the extremes of the value range, a far outlier beside a cluster (one
     * partition takes nearly all), a value shared by all but one party */
    l[0] = strdup("ffffffffffffffff\n0000000000000000\n00000000000000ff\n7fffffffffffffff\n"
                  "8000000000000000\n");
    l[1] = strdup("8000000000000000\nffffffffffffffff\n0000000000000000\n7fffffffffffffff\n");
    l[2] = strdup("0000000000000000\r\n7fffffffffffffff\n\n\nffffffffffffffff");
    check_paths(l, 3, 1);
    for (size_t i = 0; i < 3; i++)
        free(l[i]);
    l[0] = gen_hex(20000, 20000, 1, 0x1000, 0);
    l[1] = gen_hex(20000, 20000, 1, 0x1000, 0);
    size_t a0 = strlen(l[0]);
    l[0] = realloc(l[0], a0 + 40);
    strcpy(l[0] + a0, "\nfedcba9876543210\n");
    l[1] = realloc(l[1], strlen(l[1]) + 40);
    strcat(l[1], "\nfedcba9876543210\n");
    check_paths(l, 2, 1);
    free(l[0]);
    free(l[1]);
    /* empty: no ids, only blank lines, one side empty */
    char e0[] = "", e1[] = "\n\r\n\n", h1[] = "0123456789abcdef\n";
    char *em[] = {e0, e1};
    check_paths(em, 2, 1);
    char *em2[] = {h1, e0};
    check_paths(em2, 2, 1);
    char *em3[] = {e1, h1, h1};
    check_paths(em3, 3, 1);
    /* digits only go with either case; letters of both cases do not (they
     * are different ids), whichever input has them */
    char d1[] = "0123456789012345\n1111111111111111\n", u1[] = "0123456789012345\nABCDEF0123456789\n",
         w1[] = "abcdef0123456789\n0123456789012345\n";
    char *dc[] = {d1, u1};
    check_paths(dc, 2, 1);
    char *mix[] = {u1, w1};
    check_paths(mix, 2, 0);
    char *mix3[] = {d1, w1, u1};
    check_paths(mix3, 3, 0);
    char m1[] = "0123456789abcDef\n0123456789abcdef\n";
    char *mix1[] = {m1, w1};
    check_paths(mix1, 2, 0);
    /* not 16 hex digits somewhere (even on a big input's last line): the
     * general path decides, errors included */
    static const char *const odd[] = {"0123456789abcdeg", "0123456789abcde",
                                      "0123456789abcdef0", "0123456789abcde\x80",
                                      "0123456789abcdef\r", " 123456789abcdef",
                                      "0123456789abcde\r\n"};
    for (size_t t = 0; t < sizeof odd / sizeof odd[0]; t++) {
        l[0] = gen_hex(9000, 9000, 1, 0, 0);
        l[1] = gen_hex(9000, 9000, 1, 0, 0);
        size_t n1 = strlen(l[1]);
        l[1] = realloc(l[1], n1 + 40);
        sprintf(l[1] + n1, "\n%s", odd[t]); /* the last line, no LF */
        check_paths(l, 2, 0);
        char *rev[] = {l[1], l[0]};
        check_paths(rev, 2, 0);
        free(l[0]);
        free(l[1]);
    }
    /* lists the fast path parses in place (with scratch: check_paths),
     * then one line that is not 16 digits and a LF, or a letter of the other
     * case, far in: their text goes back (the fast path or the general path
     * then runs on it) */
    for (int up = 0; up < 2; up++)
        for (int nolf = 0; nolf < 2; nolf++) {
            l[0] = gen_canon(300000, 400000, up, nolf);
            l[1] = gen_canon(250000, 400000, up, !nolf);
            check_paths(l, 2, 1);
            static const char *const bad[] = {"0123456789012345\r\n", "\n",
                                              "0123456789ABCDEF\n", "0123456789abcdeg\n"};
            for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
                char *m = malloc(strlen(l[1]) + 20);
                size_t at = 170000 * 17;
                memcpy(m, l[1], at);
                strcpy(m + at, bad[t]);
                strcat(m + at, l[1] + at);
                char *two[] = {l[0], m};
                /* CR LF and empty lines: still the fast path; a letter of
                 * the other case (in lower-case lists) or a bad digit: not */
                check_paths(two, 2, t < 2 || (t == 2 && up));
                free(m);
            }
            free(l[0]);
            free(l[1]);
        }
    /* an overlong id after many hex ids: the general path's error */
    l[0] = gen_hex(1000, 1000, 1, 0, 0);
    size_t n0 = strlen(l[0]);
    l[0] = realloc(l[0], n0 + 1100);
    l[0][n0] = '\n';
    memset(l[0] + n0 + 1, 'a', 1025);
    l[0][n0 + 1026] = 0;
    mt_psi_input in[2] = {{"alice", (const uint8_t *)h1, strlen(h1), NULL},
                          {"bob", (const uint8_t *)l[0], strlen(l[0]), NULL}};
    uint8_t *out;
    size_t len, count;
    mt_err err = {0};
    assert_int_equal(mt_psi_compute(in, 2, 5, &out, &len, &count, &err), MT_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "input 'bob', line "));
    free(l[0]);
}

/* mt_big_alloc (the PSI tables' and the worker's input memory): usable,
 * 2 MiB-aligned from 2 MiB up, realloc and free work; the hint keeps the
 * bytes already there (populating writes nothing), on every chunk of a
 * range larger than one huge-page chunk and on unaligned ends. */
/* n ids of the general path's kinds (16 bytes and shorter, longer ones
 * read from the input), from a universe of u values: value x is shared
 * by every input that draws it; x % 7 picks the length. */
static char *gen_ids(size_t n, uint64_t u, uint64_t base, size_t *len)
{
    char *b = malloc(n * 48 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = base + gen_rand() % u;
        switch (x % 7) {
        case 0:
            o += (size_t)sprintf(b + o, "%llx", (unsigned long long)x);
            break;
        case 1:
            o += (size_t)sprintf(b + o, "id-%013llu", (unsigned long long)x); /* 16 bytes */
            break;
        case 2:
            o += (size_t)sprintf(b + o, "user-%llu@example.org", (unsigned long long)x);
            break;
        default:
            o += (size_t)sprintf(b + o, "%012llu-%llu", (unsigned long long)x,
                                 (unsigned long long)(x % 1000));
        }
        b[o++] = '\n';
    }
    b[o] = 0;
    *len = o;
    return b;
}

/* The general path on two threads (inputs over PSI_PAR_MIN in all: both
 * counted, then scattered, at once; the partitions joined in two halves)
 * gives the bytes, count and errors it gives on one thread
 * (MT_PSI_ONE_THREAD): two to five inputs, 1 to 16 partitions, an empty
 * intersection, an input without ids, an overlong id in the first and
 * in a later input. */
static void test_general_threads(void **state)
{
    (void)state;
    static const struct {
        size_t k, n[5];
        uint64_t u, base[5];
        int bad; /* > 0: input bad - 1 gets an overlong id in its middle */
    } cs[] = {
        {2, {150000, 150000}, 200000, {0, 0}, 0},                  /* 16 partitions */
        {5, {55000, 56000, 57000, 58000, 55500}, 70000, {0}, 0},   /* odd count of inputs */
        {3, {100, 130000, 140000}, 150000, {0}, 0},                /* one partition */
        {2, {140000, 150000}, 1000000, {0, 5000000}, 0},           /* disjoint */
        {3, {200000, 0, 100000}, 300000, {0}, 0},                  /* no ids in one */
        {4, {300000, 310000, 305000, 320000}, 400000, {0}, 0},     /* 32 partitions */
        {3, {120000, 130000, 140000}, 150000, {0}, 3},             /* overlong: last */
        {2, {150000, 150000}, 200000, {0}, 1},                     /* overlong: first */
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        mt_psi_input in[5];
        char *txt[5];
        static const char *slot[] = {"a", "b", "c", "d", "e"};
        gen_state = 0x7e57 + c;
        for (size_t i = 0; i < cs[c].k; i++) {
            size_t len;
            txt[i] = gen_ids(cs[c].n[i], cs[c].u, cs[c].base[i], &len);
            if (cs[c].bad == (int)i + 1) { /* an id of 1025 bytes after the middle line */
                char *nl = strchr(txt[i] + len / 2, '\n');
                char *t = malloc(len + 1100);
                size_t h = (size_t)(nl + 1 - txt[i]);
                memcpy(t, txt[i], h);
                memset(t + h, 'x', 1025);
                t[h + 1025] = '\n';
                memcpy(t + h + 1026, txt[i] + h, len - h + 1);
                free(txt[i]);
                txt[i] = t;
                len += 1026;
            }
            in[i] = (mt_psi_input){slot[i], (const uint8_t *)txt[i], len, NULL};
        }
        uint8_t *o1 = NULL, *o2 = NULL;
        size_t l1 = 0, l2 = 0, c1 = 0, c2 = 0;
        mt_err e1 = {0}, e2 = {0};
        mt_status s1 = mt_psi_compute_ex(in, cs[c].k, 5, MT_PSI_GENERAL | MT_PSI_ONE_THREAD,
                                         &o1, &l1, &c1, &e1);
        mt_status s2 = mt_psi_compute_ex(in, cs[c].k, 6, MT_PSI_GENERAL, &o2, &l2, &c2, &e2);
        assert_int_equal(s1, cs[c].bad ? MT_EINVAL : MT_OK);
        assert_int_equal(s2, s1);
        assert_string_equal(e2.msg, e1.msg);
        assert_int_equal(c2, c1);
        assert_int_equal(l2, l1);
        if (l1)
            assert_memory_equal(o2, o1, l1);
        if (cs[c].bad)
            assert_non_null(strstr(e1.msg, slot[cs[c].bad - 1]));
        else if (c == 3 || c == 4)
            assert_int_equal(c1, 0);
        else
            assert_true(c1 > 0);
        free(o1);
        free(o2);
        for (size_t i = 0; i < cs[c].k; i++)
            free(txt[i]);
    }
}

static void test_big_alloc(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, ((size_t)2 << 20) - 1, (size_t)2 << 20,
                                   ((size_t)2 << 20) + 1, (size_t)70 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *p = mt_big_alloc(n);
        assert_non_null(p);
        if (n >= MT_BIG_ALLOC_HUGE)
            assert_int_equal((uintptr_t)p % MT_BIG_ALLOC_HUGE, 0);
        if (n) {
            memset(p, 0xa5, n);
            p[n - 1] = 0x5a;
        }
        uint8_t *q = realloc(p, n + 4096);
        assert_non_null(q);
        if (n > 1)
            assert_int_equal(q[0], 0xa5);
        if (n)
            assert_int_equal(q[n - 1], 0x5a);
        free(q);
    }
    size_t n = ((size_t)67 << 20) + 123;
    uint8_t *m = malloc(n + 7);
    assert_non_null(m);
    for (size_t i = 0; i < n + 7; i++)
        m[i] = (uint8_t)(i * 31 + 7);
    for (int round = 0; round < 2; round++) { /* the second: after any switch to 4 KiB */
        mt_big_hint(m + 7, n);
        mt_big_hint(m + 3, 100);
        mt_big_hint(NULL, n);
        for (size_t i = 0; i < n + 7; i += 4093)
            assert_int_equal(m[i], (uint8_t)(i * 31 + 7));
        assert_int_equal(m[n + 6], (uint8_t)((n + 6) * 31 + 7));
    }
    free(m);
}

/* ---- a skewed value range under a memory limit ---- */

/* n ids: 0000000000000000 and ffffffffffffffff (sentinels at both ends of
 * the range) and a dense band base, base + 1, ... of n - 2 values. */
static char *gen_skew(size_t n, uint64_t base, size_t *len)
{
    char *b = malloc(n * 17 + 1);
    size_t o = 0;
    o += (size_t)sprintf(b + o, "%016llx\n", 0ULL);
    for (size_t i = 0; i + 2 < n; i++)
        o += (size_t)sprintf(b + o, "%016llx\n", (unsigned long long)(base + i));
    o += (size_t)sprintf(b + o, "%016llx\n", ~0ULL);
    *len = o;
    return b;
}

/* Address space of this process now (bytes), from /proc/self/statm. */
static size_t vm_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Child: under RLIMIT_AS = its address space now + extra, one path
 * (flags) on in; writes the result's size, count and a digest of its bytes
 * to fd. Exit status: 0 ok, 1 the path failed, 4 no limit set. */
static int skew_child(const mt_psi_input *in, unsigned flags, size_t extra, int fd)
{
    malloc_trim(0);
    struct rlimit rl = {vm_now() + extra, vm_now() + extra};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 4;
    uint8_t *o = NULL;
    uint64_t r[3] = {0, 0, 1469598103934665603ULL};
    size_t len, cnt;
    mt_err err = {0};
    if (mt_psi_compute_ex(in, 2, 3, flags, &o, &len, &cnt, &err) != MT_OK)
        return 1;
    for (size_t i = 0; i < len; i++)
        r[2] = (r[2] ^ o[i]) * 1099511628211ULL;
    r[0] = len;
    r[1] = cnt;
    free(o);
    return write(fd, r, sizeof r) == (ssize_t)sizeof r ? 0 : 5;
}

/* Runs skew_child in a forked child: its exit status; r its record. */
static int skew_run(const mt_psi_input *in, unsigned flags, size_t extra, uint64_t r[3])
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        _exit(skew_child(in, flags, extra, fds[1]));
    }
    close(fds[1]);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    ssize_t got = read(fds[0], r, 3 * sizeof *r);
    close(fds[0]);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 0)
        assert_int_equal(got, 3 * sizeof *r);
    return WEXITSTATUS(ws);
}

/* Sentinels at both ends of the value range beside a dense band put every
 * id of the smallest input into one partition of the fast path: its
 * tables would then need more memory than the general path (and fail
 * where it succeeds). Under a memory limit the general path passes with
 * room to spare, the default path must pass too, with the same bytes. */
static void test_skew_memory_limit(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the sanitizer's shadow memory does not fit under RLIMIT_AS */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
    skip();
#endif
#endif
    size_t n = (size_t)1 << 21, la, lb;
    char *a = gen_skew(n, 0x1000, &la);
    char *b = gen_skew(n, 0x1000 + n / 2, &lb); /* half the band in common */
    mt_psi_input in[2] = {{"alice", (const uint8_t *)a, la, NULL}, {"bob", (const uint8_t *)b, lb, NULL}};
    /* the general path needs about 25 bytes per id of both inputs here
     * beyond the inputs (test runs: 100-120 MiB); the fast path's tables for
     * one partition of all ids took over 200 MiB (RSS 305 vs 188 MB) */
    const char *ov = getenv("MT_TEST_SKEW_MB");
    size_t extra = (ov && *ov ? (size_t)strtoul(ov, NULL, 10) : 160) << 20;
    uint64_t rg[3], rd[3];
    assert_int_equal(skew_run(in, MT_PSI_GENERAL, extra, rg), 0);
    assert_int_equal(skew_run(in, 0, extra, rd), 0);
    assert_int_equal(rd[0], rg[0]);
    assert_int_equal(rd[1], rg[1]);
    assert_int_equal(rd[2], rg[2]);
    free(a);
    free(b);
}

/* ---- the built-in's outputs (psi_fan): the same bytes to every output,
 * outputs 1.. written by a helper thread once the result fills a stage ---- */

typedef struct mem_out {
    uint8_t *p;
    size_t len, cap;
    size_t fail_after; /* a write that would pass this many bytes fails; 0: never */
    size_t idx;        /* the output's index, in the error */
} mem_out;

static mt_status mem_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    mem_out *o = ctx;
    if (o->fail_after && o->len + len > o->fail_after)
        return mt_err_set(err, MT_EIO, "writing an output failed: test sink %zu full", o->idx);
    if (o->len + len > o->cap) {
        o->cap = (o->len + len) * 2;
        o->p = realloc(o->p, o->cap);
        assert_non_null(o->p);
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return MT_OK;
}

/* Runs the built-in over two lists of n ids (every third shared) into
 * n_out in-memory outputs; fail[i]: output i's ciphertext sink fails past
 * that many bytes (0: never). On success every output must decrypt to the
 * same, sorted intersection; on failure the first failing output's error
 * is returned and no return value. */
static mt_status run_builtin(size_t n, size_t n_out, const size_t *fail, mt_err *err)
{
    char *lists[2];
    for (int k = 0; k < 2; k++) {
        lists[k] = malloc(n * 17 + 1);
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            o += (size_t)sprintf(lists[k] + o, "%016llx\n",
                                 (unsigned long long)(i % 3 == 0 ? i * 0x9e3779b9ULL
                                                                 : ((uint64_t)(k + 1) << 60) + i));
    }
    mt_bctx *ctx = calloc(1, sizeof *ctx);
    mt_bctx_input in[2];
    mt_bctx_output out[4];
    mem_out mo[4];
    uint8_t key[4][MT_FF_KEY_LEN];
    assert_true(n_out <= 4);
    for (int k = 0; k < 2; k++)
        in[k] = (mt_bctx_input){k ? "b" : "a", (const uint8_t *)lists[k], strlen(lists[k]), NULL};
    for (size_t i = 0; i < n_out; i++) {
        memset(key[i], (int)(0x40 + i), MT_FF_KEY_LEN);
        mo[i] = (mem_out){NULL, 0, 0, fail ? fail[i] : 0, i};
        out[i] = (mt_bctx_output){"o", NULL, 0};
        assert_int_equal(mt_ff_writer_new(key[i], mem_sink, &mo[i], &out[i].writer, err), MT_OK);
    }
    ctx->inputs = in;
    ctx->n_inputs = 2;
    ctx->outputs = out;
    ctx->n_outputs = n_out;
    char *ret = NULL;
    mt_status st = mt_builtin_psi(ctx, &ret, err);
    size_t want = (n + 2) / 3;
    if (st == MT_OK) {
        char buf[64];
        snprintf(buf, sizeof buf, "intersection size: %zu", want);
        assert_non_null(ret);
        assert_string_equal(ret, buf);
        uint8_t *first = NULL;
        size_t first_len = 0;
        for (size_t i = 0; i < n_out; i++) {
            assert_int_equal(mt_ff_writer_finish(out[i].writer, err), MT_OK);
            assert_int_equal(out[i].plain_bytes, want * 17);
            uint8_t *pt = NULL;
            size_t pl = 0;
            assert_int_equal(mt_ff_decrypt(key[i], mo[i].p, mo[i].len, &pt, &pl, err), MT_OK);
            assert_int_equal(pl, want * 17);
            if (i == 0) {
                for (size_t j = 1; j < want; j++) /* sorted, one line per id */
                    assert_true(memcmp(pt + (j - 1) * 17, pt + j * 17, 16) < 0);
                first = pt;
                first_len = pl;
            } else {
                assert_memory_equal(pt, first, first_len);
                free(pt);
            }
        }
        free(first);
    } else {
        assert_null(ret);
    }
    for (size_t i = 0; i < n_out; i++) {
        mt_ff_writer_free(out[i].writer);
        free(mo[i].p);
    }
    free(ret);
    free(ctx);
    for (int k = 0; k < 2; k++)
        free(lists[k]);
    return st;
}

/* pthread_create of this binary (it comes before libc's): while
 * g_create_fail is set every call fails with EAGAIN and is counted. */
static atomic_bool g_create_fail;
static atomic_int g_create_calls;

int pthread_create(pthread_t *th, const pthread_attr_t *at, void *(*fn)(void *), void *arg)
{
    if (atomic_load(&g_create_fail)) {
        atomic_fetch_add(&g_create_calls, 1);
        return EAGAIN;
    }
    int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
    return real ? real(th, at, fn, arg) : EAGAIN;
}

/* No thread can be started: the caller writes every output (the result is
 * the same), the fan tries its helper once and not at every later stage
 * (the run with one output, which never wants the helper, counts the
 * other attempts of the same inputs), and a failing output still fails the
 * run with its own error. */
static void test_builtin_no_threads(void **state)
{
    (void)state;
    mt_err err = {0};
    atomic_store(&g_create_fail, true);
    atomic_store(&g_create_calls, 0);
    assert_int_equal(run_builtin(340000, 1, NULL, &err), MT_OK); /* seven stages */
    int others = atomic_load(&g_create_calls);
    atomic_store(&g_create_calls, 0);
    assert_int_equal(run_builtin(340000, 3, NULL, &err), MT_OK);
    assert_int_equal(atomic_load(&g_create_calls), others + 1);
    for (size_t w = 0; w < 3; w++) {
        size_t fail[3] = {0, 0, 0};
        fail[w] = 1000000;
        memset(&err, 0, sizeof err);
        assert_int_equal(run_builtin(340000, 3, fail, &err), MT_EIO);
        char want[64];
        snprintf(want, sizeof want, "writing an output failed: test sink %zu full", w);
        assert_string_equal(err.msg, want);
    }
    atomic_store(&g_create_fail, false);
}

static void test_builtin_outputs(void **state)
{
    (void)state;
    mt_err err = {0};
    /* a result of one id (no helper), of ~100 KiB (under one stage: no
     * helper), of ~1.9 MB (seven stages: the helper writes outputs 1..) */
    static const size_t ns[] = {1, 18000, 340000};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (size_t n_out = 1; n_out <= 4; n_out++)
            assert_int_equal(run_builtin(ns[t], n_out, NULL, &err), MT_OK);
    /* a failing output fails the run with its error, whichever thread
     * writes it: output 0 (the caller), output 1 or 2 (the helper), late
     * (past several stages; or 1880000: in the last, partial stage, so that
     * only the fan's close finds it) or at its first segment */
    static const size_t at[] = {200000, 1000000, 100, 1880000};
    for (size_t w = 0; w < 3; w++)
        for (size_t a = 0; a < sizeof at / sizeof at[0]; a++) {
            size_t fail[3] = {0, 0, 0};
            fail[w] = at[a];
            memset(&err, 0, sizeof err);
            assert_int_equal(run_builtin(340000, 3, fail, &err), MT_EIO);
            char want[64];
            snprintf(want, sizeof want, "writing an output failed: test sink %zu full", w);
            assert_string_equal(err.msg, want);
        }
    /* four outputs: the caller writes 0 and 1, the helper 2 and 3 */
    for (size_t w = 0; w < 4; w++) {
        size_t fail[4] = {0, 0, 0, 0};
        fail[w] = 700000;
        memset(&err, 0, sizeof err);
        assert_int_equal(run_builtin(340000, 4, fail, &err), MT_EIO);
        char want[64];
        snprintf(want, sizeof want, "writing an output failed: test sink %zu full", w);
        assert_string_equal(err.msg, want);
    }
    /* two failing outputs: the run fails with one of their errors */
    size_t fail2[3] = {0, 300000, 150000};
    memset(&err, 0, sizeof err);
    assert_int_equal(run_builtin(340000, 3, fail2, &err), MT_EIO);
    assert_non_null(strstr(err.msg, "writing an output failed: test sink"));
}

/* A party cannot choose ids that collide for every seed: 16-byte ids whose
 * bytes 8..15 are 0xd6e8feb86659fd93 (little-endian) all hashed alike under
 * the multiply-fold hash used before; under SipHash-1-3 they are distinct,
 * and the general path intersects them correctly. */
static void test_no_seedless_collisions(void **state)
{
    (void)state;
    enum { N = 256 };
    static const uint8_t k2[8] = {0x93, 0xfd, 0x59, 0x66, 0xb8, 0xfe, 0xe8, 0xd6};
    uint8_t a[N * 17], b[N * 17];
    uint64_t h[N];
    for (int i = 0; i < N; i++) {
        uint8_t *id = a + 17 * i;
        memset(id, 'a', 8);
        id[0] = (uint8_t)('A' + i % 26);
        id[1] = (uint8_t)('A' + i / 26);
        memcpy(id + 8, k2, 8);
        id[16] = '\n';
        h[i] = mt_psi_id_hash(id, 16, 0x1234);
    }
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            same += h[i] == h[j];
    assert_int_equal(same, 0);
    memcpy(b, a, sizeof b);
    mt_psi_input in[2] = {{"a", a, sizeof a, NULL}, {"b", b, N / 2 * 17, NULL}};
    uint8_t *out = NULL;
    size_t len = 0, count = 0;
    mt_err err;
    assert_int_equal(mt_psi_compute_ex(in, 2, 0x1234, MT_PSI_GENERAL, &out, &len, &count, &err),
                     MT_OK);
    assert_int_equal(count, N / 2);
    free(out);
}

/* Inputs whose scratch buffers overlap: MT_EINVAL before anything is
 * written (mt_psi_input.scratch: no other input's); adjacent ones are fine. */
static void test_scratch_overlap(void **state)
{
    (void)state;
    const size_t L = 17 * 100; /* 100 canonical ids: parsed in place */
    uint8_t *buf = malloc(2 * L + 1), *copy = malloc(2 * L);
    assert_non_null(buf);
    assert_non_null(copy);
    for (size_t j = 0; j < 200; j++) {
        snprintf((char *)buf + 17 * j, 18, "%016llx", (unsigned long long)(j % 100) * 977);
        buf[17 * j + 16] = '\n';
    }
    memcpy(copy, buf, 2 * L);
    uint8_t *out;
    size_t out_len, count;
    mt_err err = {0};
    for (int cnt = 0; cnt < 2; cnt++) {
        mt_psi_input in[2] = {{"a", buf, L + 17, buf}, {"b", buf + L, L, buf + L}};
        memset(&err, 0, sizeof err);
        mt_status st = cnt ? mt_psi_count(in, 2, 1, &count, &err)
                           : mt_psi_compute_ex(in, 2, 1, 0, &out, &out_len, &count, &err);
        assert_int_equal(st, MT_EINVAL);
        assert_string_equal(err.msg, "psi: inputs 0 and 1 have overlapping scratch buffers "
                                     "(each input's scratch must be its own memory)");
        assert_memory_equal(buf, copy, 2 * L); /* untouched */
        /* the same scratch given to two inputs */
        mt_psi_input in2[3] = {{"a", buf, L, NULL}, {"b", buf + L, L, buf + L},
                               {"c", buf + L, L, buf + L}};
        memset(&err, 0, sizeof err);
        st = cnt ? mt_psi_count(in2, 3, 1, &count, &err)
                 : mt_psi_compute_ex(in2, 3, 1, 0, &out, &out_len, &count, &err);
        assert_int_equal(st, MT_EINVAL);
        assert_non_null(strstr(err.msg, "inputs 1 and 2 have overlapping scratch"));
        assert_memory_equal(buf, copy, 2 * L);
    }
    /* adjacent: the two halves of one buffer, each its own input's */
    mt_psi_input in[2] = {{"a", buf, L, buf}, {"b", buf + L, L, buf + L}};
    assert_int_equal(mt_psi_compute_ex(in, 2, 1, 0, &out, &out_len, &count, &err), MT_OK);
    assert_int_equal(count, 100);
    free(out);
    /* many inputs (the sorted check): one pair overlapping, then none */
    enum { N = 80 };
    mt_psi_input many[N];
    uint8_t *b[N];
    for (size_t i = 0; i < N; i++) {
        b[i] = malloc(L);
        assert_non_null(b[i]);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N; i++) {
            memcpy(b[i], copy, L);
            many[i] = (mt_psi_input){"x", b[i], L, b[i]};
        }
        if (pass == 0)
            many[71] = (mt_psi_input){"x", b[13] + 32, L - 32, b[13] + 32};
        memset(&err, 0, sizeof err);
        mt_status st = mt_psi_compute_ex(many, N, 1, 0, &out, &out_len, &count, &err);
        if (pass == 0) {
            assert_int_equal(st, MT_EINVAL);
            assert_non_null(strstr(err.msg, "inputs 13 and 71 have overlapping scratch"));
        } else {
            assert_int_equal(st, MT_OK);
            assert_int_equal(count, 100);
            free(out);
        }
    }
    for (size_t i = 0; i < N; i++)
        free(b[i]);
    free(buf);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: no freed heap of other tests in its address space */
        cmocka_unit_test(test_skew_memory_limit),
        cmocka_unit_test(test_no_seedless_collisions),
        cmocka_unit_test(test_scratch_overlap),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_partitioned),
        cmocka_unit_test(test_partition_edges),
        cmocka_unit_test(test_fast_path),
        cmocka_unit_test(test_general_threads),
        cmocka_unit_test(test_big_alloc),
        cmocka_unit_test(test_builtin_outputs),
        cmocka_unit_test(test_builtin_no_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
