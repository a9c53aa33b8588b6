/* mt_resolve_bounded (src/common/mt_resolve.h): bounded, cancellable name
 * resolution, without DNS: numeric addresses (the fast path: no asynchronous
 * request at all), "localhost" (the hosts file, through the asynchronous
 * path), a cancel before and during the wait, a zero timeout, and that every
 * request given up is freed once the resolver has finished with it
 * (mt_resolve_live back to 0; run under ASan in CI). Waits are bounded polls.
 *
 * And a getaddrinfo_a that fails although glibc keeps the request: the test
 * binary defines getaddrinfo_a (mt_common's call binds to it; every other
 * call passes to glibc's, dlsym RTLD_NEXT) and, armed, answers as glibc's
 * does when a request cannot be queued: EAI_SYSTEM, with the completion
 * notification still sent (here held back and delivered by the test once
 * mt_resolve_bounded has returned). mt_resolve_bounded freed the request at
 * once ("never queued: no notification"), so the notification freed it a
 * second time; now the caller's reference only goes.
 *
 * And AI_ADDRCONFIG for names only: getaddrinfo is defined here too and,
 * armed, narrows the family as glibc's does on a host with no IPv6 beyond
 * loopback; a literal ::1 still converts at once. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "mt_resolve.h"

static const struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

static void wait_none_live(void)
{
    for (int i = 0; i < 6000 && mt_resolve_live(); i++) { /* up to 60 s */
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(mt_resolve_live(), 0);
}

static void test_numeric(void **state)
{
    (void)state;
    struct addrinfo *ai = NULL;
    assert_int_equal(mt_resolve_bounded("127.0.0.1", "8443", &hints, 5000, NULL, NULL, &ai), 0);
    assert_non_null(ai);
    assert_int_equal(ai->ai_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port), 8443);
    freeaddrinfo(ai);
    assert_int_equal(mt_resolve_bounded("::1", "1", &hints, 5000, NULL, NULL, &ai), 0);
    assert_int_equal(ai->ai_family, AF_INET6);
    freeaddrinfo(ai);
    /* no asynchronous request was made: even a zero timeout answers */
    assert_int_equal(mt_resolve_bounded("10.1.2.3", "80", &hints, 0, NULL, NULL, &ai), 0);
    freeaddrinfo(ai);
    assert_int_equal(mt_resolve_live(), 0);
}

static void test_name(void **state)
{
    (void)state;
    struct addrinfo *ai = NULL;
    int rc = mt_resolve_bounded("localhost", "8443", &hints, 60000, NULL, NULL, &ai);
    assert_int_equal(rc, 0);
    assert_non_null(ai);
    freeaddrinfo(ai);
    wait_none_live();
}

static bool always(void *ctx)
{
    (void)ctx;
    return true;
}

/* false at the first call (mt_resolve_bounded's check before it starts),
 * true from the second (the first check of the wait) */
static bool second(void *ctx)
{
    int *n = ctx;
    return ++*n >= 2;
}

static void test_cancel(void **state)
{
    (void)state;
    struct addrinfo *ai = (struct addrinfo *)1;
    /* canceled before: nothing starts, not even the numeric conversion */
    assert_int_equal(mt_resolve_bounded("127.0.0.1", "1", &hints, 5000, always, NULL, &ai),
                     ECANCELED);
    assert_null(ai);
    /* canceled during the wait: given up at once (whether or not the answer
     * was in: a stopping caller never goes on with it), freed later */
    for (int round = 0; round < 20; round++) {
        int calls = 0;
        ai = (struct addrinfo *)1;
        assert_int_equal(mt_resolve_bounded("localhost", "1", &hints, 60000, second, &calls, &ai),
                         ECANCELED);
        assert_null(ai);
        assert_int_equal(calls, 2);
    }
    wait_none_live();
}

static void test_timeout(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct addrinfo *ai = (struct addrinfo *)1;
        assert_int_equal(mt_resolve_bounded("localhost", "1", &hints, 0, NULL, NULL, &ai),
                         ETIMEDOUT);
        assert_null(ai);
    }
    wait_none_live();
}

static _Atomic int gai_armed;
static struct sigevent gai_held; /* the notification glibc would send */

int getaddrinfo_a(int mode, struct gaicb *list[], int n, struct sigevent *sev)
{
    if (!atomic_exchange(&gai_armed, 0)) {
        int (*real)(int, struct gaicb *[], int, struct sigevent *) =
            (int (*)(int, struct gaicb *[], int, struct sigevent *))dlsym(RTLD_NEXT,
                                                                         "getaddrinfo_a");
        return real ? real(mode, list, n, sev) : EAI_SYSTEM;
    }
    gai_held = *sev;
    errno = EAGAIN;
    return EAI_SYSTEM;
}

static void test_queue_error_notified(void **state)
{
    (void)state;
    wait_none_live();
    struct addrinfo *ai = (struct addrinfo *)1;
    atomic_store(&gai_armed, 1);
    assert_int_equal(mt_resolve_bounded("localhost", "1", &hints, 5000, NULL, NULL, &ai), EAGAIN);
    assert_int_equal(atomic_load(&gai_armed), 0); /* the armed answer was given */
    assert_null(ai);
    assert_int_equal(gai_held.sigev_notify, SIGEV_THREAD);
    if (mt_resolve_live() != 1) /* the notification below would free it again */
        fail_msg("the request was freed although its notification was still to come");
    gai_held.sigev_notify_function(gai_held.sigev_value);
    assert_int_equal(mt_resolve_live(), 0);
}

/* A host with IPv4 beyond loopback only, as glibc's getaddrinfo sees it
 * for AI_ADDRCONFIG: an unspecified family narrowed to IPv4 (a literal ::1
 * then fails: EAI_NONAME). Armed by the test below; otherwise glibc's. */
static atomic_int v4_only;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real)
        real = (int (*)(const char *, const char *, const struct addrinfo *,
                        struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
    if (!real)
        return EAI_SYSTEM;
    struct addrinfo h;
    if (atomic_load(&v4_only) && hints && (hints->ai_flags & AI_ADDRCONFIG) &&
        hints->ai_family == AF_UNSPEC) {
        h = *hints;
        h.ai_family = AF_INET;
        hints = &h;
    }
    return real(node, service, hints, res);
}

/* AI_ADDRCONFIG (the listeners' hint, as libevent's) is for names: a
 * literal is taken as written, at once, even where the host has no IPv6
 * beyond loopback. Failed before: the literal went to the resolver (a zero
 * timeout: ETIMEDOUT; a longer one: not found on such a host). */
static void test_numeric_addrconfig(void **state)
{
    (void)state;
    const struct addrinfo ac = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;
    atomic_store(&v4_only, 1);
    int rc = mt_resolve_bounded("::1", "1", &ac, 0, NULL, NULL, &ai);
    atomic_store(&v4_only, 0);
    assert_int_equal(rc, 0);
    assert_non_null(ai);
    assert_int_equal(ai->ai_family, AF_INET6);
    freeaddrinfo(ai);
    wait_none_live();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_queue_error_notified),
        cmocka_unit_test(test_numeric_addrconfig),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
