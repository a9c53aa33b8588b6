/* builtin_test: built-ins that misbehave on purpose, compiled only into
 * mesatee-worker-test (MT_WORKER_TEST_BUILTINS) to test the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "builtin_ml.h"
#include "job_codec.h"
#include "mt_builtin.h"

#ifndef MT_WORKER_TEST_BUILTINS
#error "builtin_test.c belongs to mesatee-worker-test only"
#endif

mt_status mt_builtin_test_crash(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_spin(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_alloc(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_open(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_state(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_keysign(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_sleep(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_keysign_huge(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_env(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_stderr(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_arena(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_gbdt_named(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_sparse(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_gbdt_differs(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_gbdt_fails(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_linger(mt_bctx *ctx, char **ret, mt_err *err);

/* Set by __test_linger: worker_main (test worker only) then sleeps after
 * its complete result instead of exiting. */
bool mt_builtin_test_lingering;

/* Dies of SIGSEGV, or of SIGKILL with the argument "signal" = "kill" (as a
 * worker the kernel kills at a limit: no result, its channel's EOF). */
mt_status mt_builtin_test_crash(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    const char *sig = mt_bctx_arg(ctx, "signal");
    raise(sig && strcmp(sig, "kill") == 0 ? SIGKILL : SIGSEGV);
    return mt_err_set(err, MT_EINTERNAL, "still alive after the signal");
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

/* Reports what a previous task could have left in this process: a static
 * counter, a static buffer and a freed heap block, all written by every
 * call; "calls=1 prev=(none) heap=(none)" in a fresh process each time. */
static unsigned g_state_calls;
static char g_state_prev[64];
#define STATE_MARK "MT-LEFTOVER-OF-PID-"

mt_status mt_builtin_test_state(mt_bctx *ctx, char **ret, mt_err *err)
{
    (void)ctx;
    g_state_calls++;
    char *blk = malloc(4096);
    if (!blk)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char heap[64] = "(none)";
    /* offset 256: past the allocator's free-list pointers */
    /* read through volatile: the block is uninitialised on purpose */
    const volatile char *v = blk + 256;
    size_t k = 0;
    while (k < sizeof STATE_MARK - 1 && v[k] == STATE_MARK[k])
        k++;
    if (k == sizeof STATE_MARK - 1) {
        size_t m = 0;
        for (; m < 40 && v[m] >= 0x20 && v[m] < 0x7f; m++)
            heap[m] = v[m];
        heap[m] = 0;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "pid=%d calls=%u prev=%s heap=%s", (int)getpid(), g_state_calls, g_state_prev[0] ? g_state_prev : "(none)", heap);
    snprintf(g_state_prev, sizeof g_state_prev, "task-in-pid-%d", (int)getpid());
    snprintf(blk + 256, 64, STATE_MARK "%d", (int)getpid());
    free(blk);
    if (!(*ret = strdup(buf)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* Claims 3 KeyStore signatures whether or not the job carried a key: the
 * parent must refuse such a claim for a job without a key (executor.c). */
mt_status mt_builtin_test_keysign(mt_bctx *ctx, char **ret, mt_err *err)
{
    ctx->key_signs += 3;
    *ret = strdup("signed");
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* Sleeps the argument "ms" (decimal, at most 600000) and returns "slept": a
 * task that runs a while and then ends normally (test_zygote). */
mt_status mt_builtin_test_sleep(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    const char *a = mt_bctx_arg(ctx, "ms");
    char *end = NULL;
    unsigned long ms = a ? strtoul(a, &end, 10) : 0;
    if (!a || !*a || *end || ms > 600000)
        return mt_err_set(err, MT_EINVAL, "__test_sleep needs 'ms' (0..600000)");
    /* optional 'fill': that many bytes written to every output first (the
     * parent's early flushing sees them while the worker sleeps) */
    const char *fa = mt_bctx_arg(ctx, "fill");
    unsigned long fill = fa ? strtoul(fa, &end, 10) : 0;
    if (fa && (!*fa || *end || fill > (64UL << 20)))
        return mt_err_set(err, MT_EINVAL, "__test_sleep: 'fill' must be 0..67108864");
    static const uint8_t zero[65536];
    for (size_t i = 0; i < ctx->n_outputs; i++)
        for (unsigned long done = 0; done < fill;) {
            size_t len = fill - done < sizeof zero ? (size_t)(fill - done) : sizeof zero;
            mt_status st = mt_bctx_output_write(ctx, i, zero, len, err);
            if (st != MT_OK)
                return st;
            done += len;
        }
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    *ret = strdup("slept");
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* Claims 2^32 + 1 signatures: above MT_JOB_KEY_SIGNS_MAX, the parent must
 * fail the task even when it carried a key. */
mt_status mt_builtin_test_keysign_huge(mt_bctx *ctx, char **ret, mt_err *err)
{
    ctx->key_signs += 4294967297ull;
    *ret = strdup("signed");
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* The worker's environment as "OMP_WAIT_POLICY=<value>; <n> variable(s)": the
 * executor starts workers with OMP_WAIT_POLICY=PASSIVE and nothing else (docs/nn.md). */
mt_status mt_builtin_test_env(mt_bctx *ctx, char **ret, mt_err *err)
{
    (void)ctx;
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    const char *v = getenv("OMP_WAIT_POLICY");
    char buf[128];
    snprintf(buf, sizeof buf, "OMP_WAIT_POLICY=%.32s; %zu variable(s)", v ? v : "(unset)", n);
    *ret = strdup(buf);
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* Writes all of buf to fd 2 (O_NONBLOCK: a full pipe answers EAGAIN, then
 * it waits 1 ms for the relay to read and writes the rest). */
static bool stderr_write_all(const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(2, buf, len);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        } else {
            return false;
        }
    }
    return true;
}

#define TEST_STDERR_FLOOD 2000

/* What hostile code may write to its fd 2 (test_executor
 * test_worker_stderr): a forged daemon log line with terminal escapes, a
 * bell and a carriage return; a 300-byte line; then a flood of
 * TEST_STDERR_FLOOD lines "flood NNNN" in one write. Returns "wrote". */
mt_status mt_builtin_test_stderr(mt_bctx *ctx, char **ret, mt_err *err)
{
    (void)ctx;
    *ret = NULL;
    static const char forged[] = "2026-12-07T21:51:02.117Z error [1] FATAL audit FORGED "
                                 "\x1b[2J\x1b[31mred\x07\r\n";
    char longline[301];
    memset(longline, 'L', 300);
    longline[300] = '\n';
    size_t cap = TEST_STDERR_FLOOD * 11 + 1, n = 0;
    char *flood = malloc(cap);
    if (!flood)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < TEST_STDERR_FLOOD; i++)
        n += (size_t)snprintf(flood + n, cap - n, "flood %04d\n", i);
    bool ok = stderr_write_all(forged, sizeof forged - 1) &&
              stderr_write_all(longline, sizeof longline) && stderr_write_all(flood, n);
    int e = errno;
    free(flood);
    if (!ok)
        return mt_err_set(err, MT_EIO, "write to fd 2 failed (errno %d)", e);
    *ret = strdup("wrote");
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifndef TEST_ASAN
/* Whether a block allocated on a helper thread comes from glibc's main
 * arena (worker_main.c: mallopt(M_ARENA_MAX, 1)): glibc marks every chunk
 * of another arena with the NON_MAIN_ARENA bit (0x4) of the size word just
 * before the block (malloc/malloc.c, unchanged since glibc 2.3; a test
 * built-in only). 64 KiB: under the mmap threshold. */
static void *arena_probe(void *arg)
{
    int *main_arena = arg;
    void *volatile p = malloc(64 << 10);
    if (p) {
        size_t size_word;
        memcpy(&size_word, (const char *)p - sizeof size_word, sizeof size_word);
        *main_arena = (size_word & 0x2) ? -1 : !(size_word & 0x4); /* 0x2: mmapped */
        free(p);
    }
    return NULL;
}
#endif

/* "one arena" when a helper thread allocates from the main arena, "own
 * arena" when it got one of its own (test_executor test_worker_arena). */
mt_status mt_builtin_test_arena(mt_bctx *ctx, char **ret, mt_err *err)
{
    (void)ctx;
#ifdef TEST_ASAN
    *ret = strdup("not measurable: AddressSanitizer replaces malloc");
#else
    int main_arena = -2;
    pthread_t t;
    if (pthread_create(&t, NULL, arena_probe, &main_arena) != 0)
        return mt_err_set(err, MT_EINTERNAL, "cannot start a thread");
    pthread_join(t, NULL);
    if (main_arena < 0)
        return mt_err_set(err, MT_EINTERNAL, "the probe block was %s",
                          main_arena == -1 ? "mmapped" : "not allocated");
    *ret = strdup(main_arena ? "one arena" : "own arena");
#endif
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* gbdt_predict (same arguments) that names its engine in the log, with no
 * fault or an injected one (builtin_ml.h, test_builtin_gbdt.c): the own
 * predictor's first-rows check sees a difference, or its full prediction
 * fails after the check passed. */
mt_status mt_builtin_test_gbdt_named(mt_bctx *ctx, char **ret, mt_err *err)
{
    return mt_builtin_gbdt_predict_fault(ctx, MT_GBDT_TEST_NAMED, ret, err);
}

mt_status mt_builtin_test_gbdt_differs(mt_bctx *ctx, char **ret, mt_err *err)
{
    return mt_builtin_gbdt_predict_fault(ctx, MT_GBDT_FAULT_CHECK_DIFFERS, ret, err);
}

mt_status mt_builtin_test_gbdt_fails(mt_bctx *ctx, char **ret, mt_err *err)
{
    return mt_builtin_gbdt_predict_fault(ctx, MT_GBDT_FAULT_PREDICT_FAILS, ret, err);
}

/* Leaves every output file (the regular files open for writing; run it with
 * no inputs) sparse and 15 GiB long: one byte written at 15 GiB, under the
 * worker's RLIMIT_FSIZE, so that hashing the outputs (the executor's
 * sealing) takes far longer than the worker did (test_executor
 * test_seal_wall_limit). Returns the number of files extended. */
mt_status mt_builtin_test_sparse(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    if (ctx->n_inputs)
        return mt_err_set(err, MT_EINVAL, "__test_sparse takes no inputs");
    int done = 0;
    for (int fd = 3; fd < 1024; fd++) {
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (lseek(fd, (off_t)15 << 30, SEEK_SET) < 0 || write(fd, "x", 1) != 1)
            continue; /* not writable */
        done++;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%d", done);
    *ret = strdup(buf);
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* Writes "lingered\n" to every output and returns "lingering"; then the
 * worker, having sent its complete result and closed the channel, sleeps
 * for up to a minute instead of exiting (worker_main, test worker only), as
 * a worker whose wipe of large inputs takes a while: the daemon must end
 * it at that EOF rather than wait for its exit (test_executor
 * test_killed_at_eof). */
mt_status mt_builtin_test_linger(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    const char *partial = mt_bctx_arg(ctx, "partial");
    if (partial && strcmp(partial, "1") == 0) {
        /* "partial": a truncated result, the channel ended (shutdown, the
         * fd still open), and a minute's sleep in the function itself: a
         * worker alive with its memory at that EOF, its result incomplete */
        static const char cut[] = "{\"ok\":tr";
        if (write(MT_JOB_FIRST_FD, cut, sizeof cut - 1) < 0 ||
            shutdown(MT_JOB_FIRST_FD, SHUT_RDWR) != 0)
            return mt_err_set(err, MT_EIO, "__test_linger: the channel refused");
        struct timespec pt = {.tv_sec = 60, .tv_nsec = 0};
        while (nanosleep(&pt, &pt) != 0 && errno == EINTR)
            ;
        return mt_err_set(err, MT_EINTERNAL, "__test_linger: still alive after a minute");
    }
    for (size_t i = 0; i < ctx->n_outputs; i++) {
        mt_status st = mt_bctx_output_write(ctx, i, (const uint8_t *)"lingered\n", 9, err);
        if (st != MT_OK)
            return st;
    }
    mt_builtin_test_lingering = true;
    *ret = strdup("lingering");
    return *ret ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}
