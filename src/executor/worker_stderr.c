/* worker_stderr: the relay of workers' fd 2 to the daemon's log; contract in
 * worker_stderr.h. Every byte read here comes from untrusted code. */
#include "worker_stderr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "mt_log.h"

#define RELAY_READ 4096
#define AT_EXIT_DRAIN_MS 2000

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_rfd = -1, g_wfd = -1;
static pid_t g_pid;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_running; /* g_mu: the relay thread reads the pipe */
static bool g_busy;    /* g_mu: it holds bytes it read and has not logged yet */
static atomic_int g_reset;

/* The relay thread's state (that thread only). */
typedef struct relay {
    uint8_t untrusted_line[MT_WORKER_STDERR_LINE_MAX];
    size_t len;
    double tokens;    /* lines it may log now, at most MT_WORKER_STDERR_BURST */
    double last;      /* CLOCK_MONOTONIC seconds of the last refill */
    uint64_t dropped; /* lines dropped in the current run of drops; 0: none */
} relay;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void relay_refill(relay *r)
{
    double t = now_s();
    if (t > r->last)
        r->tokens += (t - r->last) * MT_WORKER_STDERR_RATE;
    if (r->tokens > MT_WORKER_STDERR_BURST)
        r->tokens = MT_WORKER_STDERR_BURST;
    r->last = t;
}

/* Ends a run of drops with its count; it costs a line. */
static void relay_end_run(relay *r)
{
    mt_warn(MT_WORKER_STDERR_RELAY "%llu lines dropped (rate limit)",
            (unsigned long long)r->dropped);
    r->tokens -= 1;
    r->dropped = 0;
}

/* Logs (or drops) the line held, escaped, and empties it. A run of drops
 * ends only once the bucket holds a second's worth again, so a steady flood
 * gets about MT_WORKER_STDERR_RATE + 1 lines a second into the log (the
 * lines and each run's count cost tokens; each run's first-drop line not). */
static void relay_line(relay *r)
{
    if (r->len == 0)
        return;
    if (r->dropped && r->tokens >= MT_WORKER_STDERR_RATE)
        relay_end_run(r);
    if (!r->dropped && r->tokens >= 1) {
        static const char hex[] = "0123456789abcdef";
        char esc[4 * MT_WORKER_STDERR_LINE_MAX + 1];
        size_t n = 0;
        for (size_t i = 0; i < r->len; i++) {
            uint8_t b = r->untrusted_line[i];
            if (b >= 0x20 && b < 0x7f && b != '\\') {
                esc[n++] = (char)b;
            } else {
                esc[n++] = '\\';
                esc[n++] = 'x';
                esc[n++] = hex[b >> 4];
                esc[n++] = hex[b & 15];
            }
        }
        esc[n] = '\0';
        r->tokens -= 1;
        mt_warn(MT_WORKER_STDERR_PREFIX "%s", esc);
    } else {
        if (!r->dropped)
            mt_warn(MT_WORKER_STDERR_RELAY "rate limit reached (%d lines, then %d a "
                                           "second): dropping lines",
                    MT_WORKER_STDERR_BURST, MT_WORKER_STDERR_RATE);
        r->dropped++;
    }
    r->len = 0;
}

static void relay_set(bool *flag, bool v)
{
    pthread_mutex_lock(&g_mu);
    *flag = v;
    if (!v)
        pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void *relay_main(void *arg)
{
    (void)arg;
    relay r = {.tokens = MT_WORKER_STDERR_BURST, .last = now_s()};
    uint8_t untrusted_buf[RELAY_READ];
    int e = 0;
    for (;;) {
        struct pollfd p = {.fd = g_rfd, .events = POLLIN};
        int pr = poll(&p, 1, r.dropped ? 1000 : -1);
        if (pr < 0 && errno != EINTR) {
            e = errno;
            break;
        }
        relay_set(&g_busy, true);
        if (atomic_exchange(&g_reset, 0)) {
            r.tokens = MT_WORKER_STDERR_BURST;
            r.dropped = 0;
        }
        relay_refill(&r);
        ssize_t n = pr > 0 ? read(g_rfd, untrusted_buf, sizeof untrusted_buf) : 0;
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            e = errno;
            relay_set(&g_busy, false);
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (untrusted_buf[i] == '\n') {
                relay_line(&r);
                continue;
            }
            r.untrusted_line[r.len++] = untrusted_buf[i];
            if (r.len == MT_WORKER_STDERR_LINE_MAX)
                relay_line(&r); /* cut: the rest is the next line */
        }
        int avail = 1;
        if (n > 0 && ioctl(g_rfd, FIONREAD, &avail) == 0 && avail == 0)
            relay_line(&r); /* a line without its newline, once the pipe is empty */
        if (r.dropped && r.tokens >= MT_WORKER_STDERR_RATE)
            relay_end_run(&r);
        relay_set(&g_busy, false);
    }
    mt_error("worker stderr relay stopped (%s): workers' stderr is no longer logged", strerror(e));
    relay_set(&g_running, false);
    return NULL;
}

static void relay_at_exit(void)
{
    if (getpid() == g_pid) /* not in a forked child of the daemon */
        (void)mt_worker_stderr_drain(AT_EXIT_DRAIN_MS);
}

static void relay_init(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        mt_error("worker stderr relay: pipe failed (%s): workers get /dev/null as stderr",
                 strerror(errno));
        return;
    }
    /* both ends above 0-2, so no file action of a spawn clobbers them */
    int rfd = fcntl(p[0], F_DUPFD_CLOEXEC, 3), wfd = fcntl(p[1], F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(p[0]);
    close(p[1]);
    if (rfd < 0 || wfd < 0) {
        mt_error("worker stderr relay: fcntl failed (%s): workers get /dev/null as stderr",
                 strerror(e));
        goto fail;
    }
    g_rfd = rfd;
    relay_set(&g_running, true);
    /* no signal is delivered to the relay thread (the daemon's handlers and
     * signalfds stay as they are) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &at, relay_main, NULL);
    pthread_attr_destroy(&at);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        relay_set(&g_running, false);
        g_rfd = -1;
        mt_error("worker stderr relay: cannot start its thread (%s): workers get /dev/null "
                 "as stderr",
                 strerror(rc));
        goto fail;
    }
    g_pid = getpid();
    g_wfd = wfd;
    atexit(relay_at_exit);
    return;
fail:
    if (rfd >= 0)
        close(rfd);
    if (wfd >= 0)
        close(wfd);
}

int mt_worker_stderr_fd(void)
{
    pthread_once(&g_once, relay_init);
    return g_wfd;
}

bool mt_worker_stderr_drain(int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    bool ok = false;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        int avail = 1;
        if (!g_running || (!g_busy && ioctl(g_rfd, FIONREAD, &avail) == 0 && avail == 0)) {
            ok = true;
            break;
        }
        if (timeout_ms < 0)
            pthread_cond_wait(&g_cv, &g_mu);
        else if (pthread_cond_clockwait(&g_cv, &g_mu, CLOCK_MONOTONIC, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}

void mt_worker_stderr_test_reset(void)
{
    atomic_store(&g_reset, 1);
}
