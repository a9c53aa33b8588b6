/* untrusted_fetch: fetches input ciphertext through the host: https:// with
 * libcurl (TLS verified against the system CA store, redirects refused, no
 * proxy, size limit, timeout) and file:// under an allowed root directory
 * (symlinks and ".." refused, opened race-free beneath the root).
 * Outbound policy: libcurl hands every resolved peer address to this module
 * before it connects; loopback, private (RFC 1918, CGNAT), link-local,
 * multicast, unspecified, documentation and reserved IPv4/IPv6 blocks (with
 * v4-mapped, NAT64 and 6to4 forms) and this host's own addresses are refused
 * unless an allow-list CIDR names them. Every https:// failure has the one
 * message "fetch failed" (no curl text, no address): the cause goes only to
 * the caller's optional detail buffer, for the operator's log.
 * The bytes are ciphertext; their integrity comes from the
 * mt_ff format and the registered sha256, not from the host.
 * Thread-safety: reentrant (curl_global_init is done once, thread-safely). */
#ifndef UNTRUSTED_FETCH_H
#define UNTRUSTED_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mt_err.h"

/* True for a URL whose scheme this module supports (file://, https://). */
int untrusted_fetch_url_supported(const char *url);

/* Fetches url into a heap buffer (*out, *len), failing with MT_ETOOBIG past max
 * bytes. file_root: directory file:// URLs must be under (NULL = refuse file://). */
mt_status untrusted_fetch(const char *url, const char *file_root, size_t max, uint8_t **out,
                          size_t *len, mt_err *err);

typedef struct untrusted_fetch_opts {
    const char *file_root; /* file:// URLs must be under it; NULL refuses file:// */
    const char *allow;     /* comma-separated CIDRs reachable despite the default deny
                              list (--fetch-allow); NULL = none */
    char *detail;          /* optional: the cause of a failure, for the operator's log
                              only (may hold curl text); never put it in a reason */
    size_t detail_cap;
} untrusted_fetch_opts;

/* untrusted_fetch with the outbound allow-list and a detail buffer. */
mt_status untrusted_fetch_ex(const char *url, const untrusted_fetch_opts *o, size_t max,
                             uint8_t **out, size_t *len, mt_err *err);

/* Checks a comma-separated CIDR allow-list (MT_EINVAL naming the bad entry). */
mt_status untrusted_fetch_allow_check(const char *allow, mt_err *err);

/* 1 if an https:// fetch may connect to sa (AF_INET/AF_INET6) under the
 * policy above with allow-list allow (NULL = none), else 0. */
int untrusted_fetch_addr_allowed(const struct sockaddr *sa, const char *allow);

/* Test hook: the race-free open below rootfd (force_walk: skip openat2 and
 * use the O_PATH|O_NOFOLLOW component walk). Returns an fd or -1/errno. */
int untrusted_fetch_test_open_beneath(int rootfd, const char *rel, int force_walk);

/* file:// only: checks url against file_root exactly like untrusted_fetch
 * (absolute path under file_root, no "..", opened beneath the root with
 * openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) or an O_PATH|O_NOFOLLOW walk,
 * regular file; messages name neither the path nor the root) and returns an open read-only,
 * close-on-exec descriptor in *fd and its size in *size. The executor uses it
 * to hand file:// inputs to the sandboxed worker as inherited descriptors. */
mt_status untrusted_fetch_open_file(const char *url, const char *file_root, int *fd,
                                    uint64_t *size, mt_err *err);

#endif
