/* Allocation failures in the PSI fast path (mt_psi_compute_ex) on canonical
 * inputs parsed in place (mt_psi_input.scratch): every allocation of a run
 * is failed in turn (the k-th, for every k), and each run must give either
 * the output of the run without failures (the fast path or, while every
 * input's text can be put back, the general path on the restored text) or
 * MT_ENOMEM with a fixed message (the result's memory, or once an input's
 * text is lost). Were the general path to run on inputs
 * already overwritten by the partitioning, it would read binary values:
 * another error or another output. malloc, calloc and aligned_alloc are
 * interposed in this binary (big_alloc.c allocates through them); not under
 * a sanitizer, whose allocator would not mix with glibc's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_builtin.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PSI_OOM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define PSI_OOM_SANITIZED 1
#endif
#endif

#ifndef PSI_OOM_SANITIZED
static atomic_long fail_at; /* > 0: the fail_at-th allocation from arming fails */
static atomic_long alloc_n;
static atomic_int failed;

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_memalign(size_t, size_t);

static int should_fail(void)
{
    long f = atomic_load(&fail_at);
    long k = atomic_fetch_add(&alloc_n, 1) + 1;
    if (f > 0 && k == f) {
        atomic_store(&failed, 1);
        return 1;
    }
    return 0;
}
void *malloc(size_t n)
{
    return should_fail() ? NULL : __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    return should_fail() ? NULL : __libc_calloc(a, b);
}
void *aligned_alloc(size_t al, size_t n)
{
    return should_fail() ? NULL : __libc_memalign(al, n);
}

static uint64_t rs = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* n lists of m[i] lines (lower case) each, LF or, where crlf[i], CRLF;
 * half the ids shared */
static char **gen(size_t n, const size_t *m, const int *crlf, size_t *len)
{
    char **t = calloc(n, sizeof *t);
    assert_non_null(t);
    size_t mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = m[i] > mx ? m[i] : mx;
    uint64_t *common = malloc(mx * sizeof *common);
    assert_non_null(common);
    for (size_t j = 0; j < mx; j++)
        common[j] = rnd();
    for (size_t i = 0; i < n; i++) {
        size_t ll = crlf[i] ? 18 : 17, o = 0;
        t[i] = malloc(m[i] * ll + 1);
        assert_non_null(t[i]);
        for (size_t j = 0; j < m[i]; j++) {
            uint64_t x = j % 2 ? common[j] : rnd();
            for (int d = 15; d >= 0; d--, x >>= 4)
                t[i][o + (size_t)d] = "0123456789abcdef"[x & 15];
            o += 16;
            if (crlf[i])
                t[i][o++] = '\r';
            t[i][o++] = '\n';
        }
        t[i][o] = 0;
        len[i] = o - (i == 1 && !crlf[i]); /* one list without its last LF */
    }
    free(common);
    return t;
}

/* One run on fresh copies (scratch: each copy, 8-byte aligned by malloc). */
static mt_status run_once(char **text, const size_t *len, size_t n, unsigned flags, long k,
                          uint8_t **out, size_t *out_len, size_t *count, mt_err *err)
{
    mt_psi_input in[4];
    uint8_t *buf[4];
    for (size_t i = 0; i < n; i++) {
        buf[i] = malloc(len[i] + 1);
        assert_non_null(buf[i]);
        memcpy(buf[i], text[i], len[i]);
        buf[i][len[i]] = 0;
        in[i] = (mt_psi_input){"in", buf[i], len[i], buf[i]};
    }
    atomic_store(&alloc_n, 0);
    atomic_store(&failed, 0);
    atomic_store(&fail_at, k);
    mt_status st = mt_psi_compute_ex(in, n, 7, flags, out, out_len, count, err);
    atomic_store(&fail_at, 0);
    for (size_t i = 0; i < n; i++)
        free(buf[i]);
    return st;
}

/* clobber: whether some input loses its text to the partitioning (one not
 * parsed in place: under 816 bytes, or of CRLF lines), so that a failure
 * after the scatter must be MT_ENOMEM; else every input was parsed in place
 * and gets its text back, and every failure but the result's own memory
 * falls back to the general path (the same output). */
static void check_all(size_t n, const size_t *m, const int *crlf, unsigned flags, int clobber)
{
    size_t len[4];
    char **text = gen(n, m, crlf, len);
    uint8_t *want;
    size_t want_len, want_count;
    mt_err err = {0};
    assert_int_equal(run_once(text, len, n, flags, 0, &want, &want_len, &want_count, &err),
                     MT_OK);
    assert_true(want_count > 0);
    long total = atomic_load(&alloc_n);
    assert_true(total > 3);
    size_t ok = 0, nomem = 0, lost = 0;
    /* a few past the count: the helper threads' allocations vary a little */
    for (long k = 1; k <= total + 4; k++) {
        uint8_t *out = NULL;
        size_t out_len = 0, count = 0;
        mt_err e = {0};
        mt_status st = run_once(text, len, n, flags, k, &out, &out_len, &count, &e);
        if (st == MT_OK) {
            ok++;
            assert_int_equal(count, want_count);
            assert_int_equal(out_len, want_len);
            assert_memory_equal(out, want, want_len);
        } else {
            nomem++;
            int is_lost = strcmp(e.msg, "psi: out of memory for the partitions or the join "
                                        "(memory limit?)") == 0;
            lost += is_lost;
            if (st != MT_ENOMEM || !atomic_load(&failed) || (is_lost && !clobber) ||
                (!is_lost && strcmp(e.msg, "out of memory for the intersection") != 0))
                fail_msg("n %zu m0 %zu k %ld: status %d '%s'", n, m[0], k, (int)st, e.msg);
        }
        free(out);
    }
    /* both outcomes were seen; with an input that loses its text, the
     * point of no return was reached */
    assert_true(ok > 0);
    assert_true(nomem > 0);
    if (clobber)
        assert_true(lost > 0);
    free(want);
    for (size_t i = 0; i < n; i++)
        free(text[i]);
    free(text);
}

#endif /* PSI_OOM_SANITIZED */

static void test_fail_each_alloc(void **state)
{
    (void)state;
#ifdef PSI_OOM_SANITIZED
    skip();
#else
    static const int lf[3] = {0, 0, 0}, cr[3] = {0, 0, 1};
    /* every input parsed in place (>= 816 bytes, LF): no text lost */
    check_all(2, (size_t[]){300, 300}, lf, 0, 0);           /* small: no helpers */
    check_all(3, (size_t[]){2000, 2000, 2000}, lf, MT_PSI_ONE_THREAD, 0);
    check_all(3, (size_t[]){100000, 100000, 100000}, lf, 0, 0); /* > 4 MiB: helpers */
    /* one input whose partitions overwrite its text: 40 ids (680 bytes),
     * or CRLF lines */
    check_all(2, (size_t[]){300, 40}, lf, 0, 1);
    check_all(3, (size_t[]){2000, 2000, 2000}, cr, MT_PSI_ONE_THREAD, 1);
    check_all(3, (size_t[]){100000, 100000, 100000}, cr, 0, 1);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_each_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
