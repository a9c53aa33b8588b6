/* mt_resolve: see mt_resolve.h.
 *
 * Ownership of an asynchronous request (req): two references, the caller's
 * and the completion notification's (SIGEV_THREAD: glibc runs
 * resolve_done in a thread of its own once the resolver finished the
 * request). Whoever drops the last one frees the request and any result not
 * taken. A request withdrawn by gai_cancel (EAI_CANCELED) is never notified:
 * the caller then drops both. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getaddrinfo_a, gai_cancel */
#endif
#include "mt_resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct req {
    struct gaicb cb;
    struct addrinfo hints;
    char *host, *port;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool done;
    int refs;
} req;

static _Atomic uint64_t live;

uint64_t mt_resolve_live(void)
{
    return atomic_load(&live);
}

static void req_free(req *r)
{
    if (r->cb.ar_result)
        freeaddrinfo(r->cb.ar_result);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->host);
    free(r->port);
    free(r);
    atomic_fetch_sub(&live, 1);
}

static void req_unref(req *r, int n)
{
    pthread_mutex_lock(&r->mu);
    r->refs -= n;
    bool last = r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last)
        req_free(r);
}

static void resolve_done(union sigval v)
{
    req *r = v.sival_ptr;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    req_unref(r, 1);
}

static int gai_errno(int e)
{
    if (e == EAI_MEMORY)
        return ENOMEM;
    return ENOENT; /* no such name, no address of the family, resolver failure */
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static req *req_new(const char *host, const char *port, const struct addrinfo *hints)
{
    req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_condattr_t ca;
    bool cv_ok = false;
    if (!pthread_condattr_init(&ca)) {
        cv_ok = !pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) && !pthread_cond_init(&r->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!cv_ok) {
        free(r);
        return NULL;
    }
    if (pthread_mutex_init(&r->mu, NULL)) {
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    atomic_fetch_add(&live, 1);
    r->host = strdup(host);
    r->port = port ? strdup(port) : NULL;
    if (!r->host || (port && !r->port)) {
        req_free(r);
        return NULL;
    }
    if (hints)
        r->hints = *hints;
    r->hints.ai_addr = NULL;
    r->hints.ai_canonname = NULL;
    r->hints.ai_next = NULL;
    r->cb.ar_name = r->host;
    r->cb.ar_service = r->port;
    r->cb.ar_request = &r->hints;
    r->refs = 2;
    return r;
}

int mt_resolve_bounded(const char *host, const char *port, const struct addrinfo *hints,
                       int timeout_ms, mt_resolve_canceled_fn canceled, void *ctx,
                       struct addrinfo **out)
{
    *out = NULL;
    if (canceled && canceled(ctx))
        return ECANCELED;
    /* a numeric address: no resolver involved */
    struct addrinfo nh;
    memset(&nh, 0, sizeof nh);
    if (hints)
        nh = *hints;
    nh.ai_addr = NULL;
    nh.ai_canonname = NULL;
    nh.ai_next = NULL;
    /* a literal is taken as written: AI_ADDRCONFIG is for names (glibc
     * narrows the family by it for literals too, so ::1 would be refused on
     * a host with no IPv6 address beyond loopback) */
    nh.ai_flags = (nh.ai_flags & ~AI_ADDRCONFIG) | AI_NUMERICHOST | AI_NUMERICSERV;
    int e = getaddrinfo(host, port, &nh, out);
    if (!e)
        return 0;
    *out = NULL;
    if (e != EAI_NONAME)
        return gai_errno(e);

    req *r = req_new(host, port, hints);
    if (!r)
        return ENOMEM;
    struct gaicb *list[1] = {&r->cb};
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = resolve_done;
    sev.sigev_value.sival_ptr = r;
    if ((e = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev))) {
        /* an error does not say that glibc let go of the request: EAI_AGAIN
         * (its notification's bookkeeping could not be allocated) leaves it
         * queued, a resolver thread then writes into it and nothing notifies
         * us; EAI_SYSTEM (it could not be queued) still sends the
         * notification, which drops a reference. Only a request withdrawn
         * here (EAI_CANCELED: still queued, never notified) is ours alone;
         * otherwise the caller's reference goes and the other one is leaked
         * where no notification comes (glibc does not tell which) */
        bool withdrawn = gai_cancel(&r->cb) == EAI_CANCELED;
        req_unref(r, withdrawn ? 2 : 1);
        return e == EAI_MEMORY ? ENOMEM : EAGAIN;
    }
    int64_t start = mono_ms();
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        /* the cancel and the deadline first: a stopping caller never goes on
         * with a late answer, and timeout_ms 0 gives up here */
        if (canceled && canceled(ctx)) {
            rc = ECANCELED;
            break;
        }
        int64_t left = timeout_ms - (mono_ms() - start);
        if (left <= 0) {
            rc = ETIMEDOUT;
            break;
        }
        if (r->done)
            break;
        if (left > MT_RESOLVE_SLICE_MS)
            left = MT_RESOLVE_SLICE_MS;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->done)
            break;
    }
    if (!rc) {
        e = gai_error(&r->cb);
        if (e)
            rc = gai_errno(e);
        else {
            *out = r->cb.ar_result; /* taken: req_free leaves it */
            r->cb.ar_result = NULL;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == ETIMEDOUT || rc == ECANCELED) {
        /* withdrawn (never notified: both references are ours) or, when the
         * resolver has it or has finished it, left to its notification */
        bool withdrawn = gai_cancel(&r->cb) == EAI_CANCELED;
        req_unref(r, withdrawn ? 2 : 1);
    } else {
        req_unref(r, 1);
    }
    return rc;
}

int mt_connect_bounded(int fd, const struct addrinfo *ai, int timeout_ms,
                       mt_resolve_canceled_fn canceled, void *ctx)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return errno;
    int e = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        e = errno;
        if (e == EINPROGRESS) {
            e = ETIMEDOUT;
            for (int waited = 0; waited < timeout_ms; waited += MT_RESOLVE_SLICE_MS) {
                if (canceled && canceled(ctx)) {
                    e = ECANCELED;
                    break;
                }
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int n = poll(&p, 1, MT_RESOLVE_SLICE_MS);
                if (n < 0 && errno != EINTR) {
                    e = errno;
                    break;
                }
                if (n > 0) {
                    socklen_t len = sizeof e;
                    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                        e = errno;
                    if (e && canceled && canceled(ctx))
                        e = ECANCELED;
                    break;
                }
            }
        }
    }
    if (!e && fcntl(fd, F_SETFL, fl) < 0)
        e = errno;
    return e;
}
