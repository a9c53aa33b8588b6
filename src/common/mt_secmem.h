/* mt_secmem: wiping heap allocation for memory that may hold secrets
 * (passwords, hex keys, tokens, job documents carrying file keys).
 *
 * Contract:
 * - mt_secmem_malloc(n) is malloc(n). mt_secmem_free(p) overwrites the whole
 *   usable size of the block (malloc_usable_size, which is at least the size
 *   that was asked for) with zeros that the compiler cannot elide
 *   (OPENSSL_cleanse), then frees it. free(NULL) semantics: a no-op.
 * - The size comes from the allocator itself, so no header sits before the
 *   block: blocks from plain malloc may be given to mt_secmem_free and blocks
 *   from mt_secmem_malloc to plain free(). That is what makes it safe to
 *   install the pair while jansson values (or json_dumps strings, which
 *   callers free with free()) already exist.
 * - mt_secmem_install_json() registers the pair with json_set_alloc_funcs, so
 *   every jansson string, object, array and parser/dump buffer is wiped when
 *   jansson frees it. It does nothing when jansson already uses functions
 *   other than malloc/free (an application that embeds libmesatee keeps its
 *   own allocator). Strings returned by json_dumps and freed by the caller
 *   with free() are NOT wiped by this: callers that dump secrets wipe them.
 * Thread-safety: malloc/free are thread-safe. mt_secmem_install_json writes
 * jansson's process-wide allocator pointers: call it early in main (or once,
 * under pthread_once) before other threads use jansson. The observer below is
 * for tests only and must be set while no other thread allocates. */
#ifndef MT_SECMEM_H
#define MT_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

void *mt_secmem_malloc(size_t n);
void mt_secmem_free(void *p);
/* realloc for buffers that grow while holding secrets (job documents,
 * responses with tokens): copies into a new block and wipes and frees the old
 * one, so no stale copy stays on the heap. NULL p: malloc. On failure NULL is
 * returned and p is untouched (still owned by the caller). */
void *mt_secmem_realloc(void *p, size_t n);

/* Registers mt_secmem_malloc/mt_secmem_free as jansson's allocator. Returns
 * true if they are installed after the call (now or by an earlier call). */
bool mt_secmem_install_json(void);

/* Tests only: fn(p, n, arg) is called by mt_secmem_free after the block p of
 * usable size n was wiped and before it is freed. NULL removes it. */
typedef void (*mt_secmem_observer)(const void *p, size_t n, void *arg);
void mt_secmem_set_observer(mt_secmem_observer fn, void *arg);

#endif
