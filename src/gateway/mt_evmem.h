/* mt_evmem: libevent's heap wiped on release.
 *
 * libevent copies what goes through it: evbuffer chains (a request body
 * spread over several chains is copied into one by evbuffer_pullup, which
 * frees the originals), grown buffers, evhttp's header and body buffers,
 * bufferevent_openssl's decrypted input. With its default allocator all of
 * these are freed with plain free(), so plaintext request bodies (passwords,
 * keys, file keys, results sent over TLS to the gateway and the executor API)
 * stay in freed heap. mt_evmem_install() makes libevent allocate with
 * mt_secmem_malloc / mt_secmem_realloc / mt_secmem_free
 * (event_set_mem_functions): every block libevent frees, and the old block of
 * every realloc, is overwritten with zeros (OPENSSL_cleanse over its whole
 * usable size) before it goes back to malloc.
 *
 * Contract:
 * - Who calls it: every process that uses libevent, early in main before
 *   any libevent allocation (the mesatee binary does, for `mesatee serve` and
 *   the executor API it serves); mt_gateway_new calls it too, before its
 *   event_base_new, so an embedder or a test that never called it is covered
 *   as long as it made no libevent allocation of its own before.
 * - Once: event_set_mem_functions runs only on the first call (pthread_once);
 *   later calls do nothing. libevent wants it before its first allocation:
 *   with mt_secmem the blocks carry no header (the size comes from
 *   malloc_usable_size), so a block libevent allocated with plain malloc
 *   before the call is still released correctly (and wiped) after it. A
 *   block libevent returns to the caller (evbuffer_readln, evhttp_uridecode,
 *   ...) is released with mt_secmem_free where it may hold a secret
 *   (libevent's documentation says free() is no longer the right call once
 *   an allocator is replaced; plain free() still works here, since the
 *   blocks carry no header, but skips the wipe: the gateway's decoded
 *   request paths, which are not secret, are freed that way).
 * - Thread-safety: the first call writes libevent's process-wide allocator
 *   pointers without a lock: make it before other threads use libevent. The
 *   functions installed are thread-safe (malloc/free, atomic counters).
 * - Failure: none at run time. A libevent built with
 *   EVENT__DISABLE_MM_REPLACEMENT cannot take an allocator: the build fails
 *   (Debian's libevent 2.1 has the replacement compiled in).
 * What it does not cover: OpenSSL's own record buffers (the gateway sets
 * SSL_OP_CLEANSE_PLAINTEXT for those, see docs/threat-model.md), libcurl's. */
#ifndef MT_EVMEM_H
#define MT_EVMEM_H

#include <stddef.h>

/* Installs the wiping allocator for libevent (first call only). */
void mt_evmem_install(void);

/* Tests only: blocks handed out by the installed allocator (malloc, and the
 * new block of a realloc) and blocks released (free, and the old block of a
 * realloc: each wiped first, through mt_secmem_free and its observer), counted
 * since the process started. */
void mt_evmem_counts(size_t *allocated, size_t *released);

#endif
