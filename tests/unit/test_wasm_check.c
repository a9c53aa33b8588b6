/* Tests of mt_executor_wasm_check: a wasm module is decoded and validated in
 * a sandboxed mesatee-worker at registration, never in the calling (daemon)
 * process (issue 8, item 16). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_executor.h"

#ifndef MT_WORKER_PATH
#error "MT_WORKER_PATH must be defined by the build"
#endif

typedef struct big {
    uint8_t *b;
    size_t n, cap;
} big;

static void put(big *m, const void *p, size_t n)
{
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->b = realloc(m->b, m->cap);
        assert_non_null(m->b);
    }
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void uleb(big *m, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        b |= v ? 0x80 : 0;
        put(m, &b, 1);
    } while (v);
}

/* type () -> (), one function exported as "_start" with the given body
 * (locals + code + end), one memory exported as "memory". */
static void module(big *m, const big *body)
{
    memset(m, 0, sizeof *m);
    put(m, "\0asm\1\0\0\0", 8);
    put(m, "\1\4\1\x60\0\0", 6);        /* type */
    put(m, "\3\2\1\0", 4);              /* function */
    put(m, "\5\3\1\0\1", 5);            /* memory 1 page */
    put(m, "\7\x13\2\6_start\0\0\6memory\2\0", 21); /* exports */
    big c = {0};
    uleb(&c, 1);
    uleb(&c, (uint32_t)body->n);
    put(&c, body->b, body->n);
    put(m, "\x0A", 1);
    uleb(m, (uint32_t)c.n);
    put(m, c.b, c.n);
    free(c.b);
}

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void test_check_in_worker(void **state)
{
    (void)state;
    big body = {0}, m;
    mt_err e;
    put(&body, "\0\x0B", 2);
    module(&m, &body);
    assert_int_equal(mt_executor_wasm_check(MT_WORKER_PATH, m.b, m.n, &e), MT_OK);
    /* the caller never decides by itself: no worker, no verdict */
    assert_int_equal(mt_executor_wasm_check("/nonexistent/mesatee-worker", m.b, m.n, &e),
                     MT_EUNAVAIL);
    assert_int_equal(mt_executor_wasm_check(NULL, m.b, m.n, &e), MT_EUNAVAIL);
    free(m.b);
    /* errors come back from the worker with section and offset */
    assert_int_equal(mt_executor_wasm_check(MT_WORKER_PATH, (const uint8_t *)"\0asm\1\0\0\0\1\5",
                                            10, &e),
                     MT_EINVAL);
    assert_non_null(strstr(e.msg, "type section, offset"));
    /* missing exports */
    assert_int_equal(
        mt_executor_wasm_check(MT_WORKER_PATH, (const uint8_t *)"\0asm\1\0\0\0", 8, &e),
        MT_EINVAL);
    assert_non_null(strstr(e.msg, "_start"));
    free(body.b);
}

static void test_check_limits(void **state)
{
    (void)state;
    big body = {0}, m;
    mt_err e;
    /* 1,000,000 nested blocks (2 MB): refused with the nesting limit */
    put(&body, "\0", 1);
    for (int i = 0; i < 1000000; i++)
        put(&body, "\x02\x40", 2);
    for (int i = 0; i <= 1000000; i++)
        put(&body, "\x0B", 1);
    module(&m, &body);
    assert_int_equal(mt_executor_wasm_check(MT_WORKER_PATH, m.b, m.n, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "code section"));
    assert_non_null(strstr(e.msg, "nested too deeply"));
    free(m.b);
    free(body.b);
}

/* A module whose validation allocates a lot (4 million constants: some
 * 60 MB of translated code before the final type error) does not raise the
 * caller's peak memory: the work happens in the worker. */
static void test_check_memory_not_in_caller(void **state)
{
    (void)state;
    big body = {0}, m;
    mt_err e;
    put(&body, "\0", 1);
    for (int i = 0; i < 4000000; i++)
        put(&body, "\x41\x00", 2);
    put(&body, "\x0B", 1);
    module(&m, &body);
    free(body.b);
    long before = vm_hwm_kb();
    assert_true(before > 0);
    assert_int_equal(mt_executor_wasm_check(MT_WORKER_PATH, m.b, m.n, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "code section"));
    long after = vm_hwm_kb();
    /* generous: in-process validation grows it by more than 60 MB */
    assert_true(after - before < 16 * 1024);
    free(m.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_in_worker),
        cmocka_unit_test(test_check_limits),
        cmocka_unit_test(test_check_memory_not_in_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
