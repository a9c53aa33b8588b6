/* builtin_test: built-ins that misbehave on purpose, compiled only into
 * mesatee-worker-test (MT_WORKER_TEST_BUILTINS) to test the sandbox. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_builtin.h"

#ifndef MT_WORKER_TEST_BUILTINS
#error "builtin_test.c belongs to mesatee-worker-test only"
#endif

mt_status mt_builtin_test_crash(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_spin(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_alloc(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_open(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_keysign(mt_bctx *ctx, char **ret, mt_err *err);

mt_status mt_builtin_test_crash(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    raise(SIGSEGV);
    return mt_err_set(err, MT_EINTERNAL, "still alive after SIGSEGV");
}

mt_status mt_builtin_test_spin(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    volatile uint64_t x = 0;
    for (;;)
        x++;
    return MT_OK;
}

/* The blocks stay reachable through this list, so no compiler may elide the
 * allocations (clang -O2 removes a malloc+memset whose pointer is unused). */
static void *volatile g_alloc_head;

mt_status mt_builtin_test_alloc(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    size_t total = 0;
    for (;;) {
        char *p = malloc(16 << 20);
        if (!p)
            return mt_err_set(err, MT_ENOMEM, "out of memory after %zu MiB (memory limit)",
                              total >> 20);
        memset(p, 1, 16 << 20); /* touch it: really use the memory */
        void *prev = g_alloc_head;
        memcpy(p, &prev, sizeof prev);
        g_alloc_head = p;
        total += 16 << 20;
    }
}

mt_status mt_builtin_test_open(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    int fd = open("/etc/passwd", O_RDONLY);
    if (fd >= 0) {
        close(fd);
        return mt_err_set(err, MT_EINTERNAL, "sandbox failure: open() succeeded");
    }
    return mt_err_set(err, MT_EINTERNAL, "open() failed without the sandbox killing us");
}

/* Claims 3 KeyStore signatures whether or not the job carried a key: the
 * parent must refuse such a claim for a job without a key (executor.c). */
mt_status mt_builtin_test_keysign(mt_bctx *ctx, char **ret, mt_err *err)
{
    ctx->key_signs += 3;
    *ret = strdup("signed");
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}
