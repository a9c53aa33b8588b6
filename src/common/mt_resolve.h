/* mt_resolve: name resolution that is bounded in time and can be given up.
 *
 * getaddrinfo() blocks for as long as the system's resolver takes (a DNS
 * server that does not answer: timeout x attempts x servers, tens of
 * seconds or more) and cannot be interrupted. mt_resolve_bounded:
 *  - a numeric address (IPv4, IPv6, numeric port) is converted at once
 *    (AI_NUMERICHOST | AI_NUMERICSERV: no resolver, no thread), as written:
 *    a hint AI_ADDRCONFIG applies to names only;
 *  - any other name is resolved asynchronously (glibc getaddrinfo_a) while
 *    the caller waits at most timeout_ms, asking canceled(ctx) (may be NULL)
 *    before each wait of at most MT_RESOLVE_SLICE_MS; on a timeout or a
 *    cancel the request is withdrawn (gai_cancel) or, when the resolver is
 *    already working on it, abandoned: its memory is freed by its completion
 *    notification, never by the caller, so the caller returns at once.
 *    When getaddrinfo_a itself fails (EAGAIN, ENOMEM below) glibc may still
 *    hold the request without notifying anyone (its notification's own
 *    allocation failed): unless it can be withdrawn, its memory is then
 *    leaked, never freed under the resolver (mt_resolve_live counts it).
 *    The cancel is checked before the result, so a caller that is stopping
 *    never proceeds with a late answer; timeout_ms 0 gives up at the first
 *    check.
 * Returns 0 with *out set (free it with freeaddrinfo), ETIMEDOUT, ECANCELED,
 * ENOENT (the name does not resolve: no such host, no address of the asked
 * family, or a resolver failure), ENOMEM or EAGAIN (getaddrinfo_a could not
 * take the request). Messages are the caller's.
 * Thread-safety: any thread; requests are independent. */
#ifndef MT_RESOLVE_H
#define MT_RESOLVE_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>

#define MT_RESOLVE_SLICE_MS 100

typedef bool (*mt_resolve_canceled_fn)(void *ctx);

int mt_resolve_bounded(const char *host, const char *port, const struct addrinfo *hints,
                       int timeout_ms, mt_resolve_canceled_fn canceled, void *ctx,
                       struct addrinfo **out);

/* Asynchronous requests whose memory is not freed yet (started and neither
 * finished nor withdrawn, including abandoned ones): tests check that an
 * abandoned request is freed once the resolver finishes it. */
uint64_t mt_resolve_live(void);

/* connect() of fd to ai within timeout_ms, asking canceled(ctx) (may be
 * NULL) before each wait of at most MT_RESOLVE_SLICE_MS; fd is blocking
 * again afterwards. Returns 0, ETIMEDOUT, ECANCELED (also when a connect
 * error follows a cancel: the canceller's shutdown() ended it) or the
 * connect error. */
int mt_connect_bounded(int fd, const struct addrinfo *ai, int timeout_ms,
                       mt_resolve_canceled_fn canceled, void *ctx);

#endif
