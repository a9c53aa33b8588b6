/* untrusted_fetch: fetches input ciphertext through the host: https:// with
 * libcurl (TLS verified against the system CA store, redirects refused, size
 * limit, timeout) and file:// under an allowed root directory (symlinks and
 * ".." refused). The bytes are ciphertext; their integrity comes from the
 * mt_ff format and the registered sha256, not from the host.
 * Thread-safety: reentrant (curl_global_init is done once, thread-safely). */
#ifndef UNTRUSTED_FETCH_H
#define UNTRUSTED_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

/* True for a URL whose scheme this module supports (file://, https://). */
int untrusted_fetch_url_supported(const char *url);

/* Fetches url into a heap buffer (*out, *len), failing with MT_ETOOBIG past max
 * bytes. file_root: directory file:// URLs must be under (NULL = refuse file://). */
mt_status untrusted_fetch(const char *url, const char *file_root, size_t max, uint8_t **out,
                          size_t *len, mt_err *err);

/* file:// only: checks url against file_root exactly like untrusted_fetch
 * (absolute path under realpath(file_root), no "..", no symlink in the path
 * below the root, regular file, O_NOFOLLOW) and returns an open read-only,
 * close-on-exec descriptor in *fd and its size in *size. The executor uses it
 * to hand file:// inputs to the sandboxed worker as inherited descriptors. */
mt_status untrusted_fetch_open_file(const char *url, const char *file_root, int *fd,
                                    uint64_t *size, mt_err *err);

#endif
