/* mt_evmem: see mt_evmem.h. */
#include "mt_evmem.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>

#include "mt_secmem.h"

#ifdef EVENT__DISABLE_MM_REPLACEMENT
#error "libevent was built without event_set_mem_functions: its freed buffers could not be wiped"
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_size_t g_allocated, g_released;

static void *evmem_malloc(size_t n)
{
    void *p = mt_secmem_malloc(n);
    if (p)
        atomic_fetch_add_explicit(&g_allocated, 1, memory_order_relaxed);
    return p;
}

/* Always a new block: the old one is wiped and freed (mt_secmem_realloc). */
static void *evmem_realloc(void *p, size_t n)
{
    void *q = mt_secmem_realloc(p, n);
    if (q) {
        atomic_fetch_add_explicit(&g_allocated, 1, memory_order_relaxed);
        if (p)
            atomic_fetch_add_explicit(&g_released, 1, memory_order_relaxed);
    }
    return q;
}

static void evmem_free(void *p)
{
    if (!p)
        return;
    mt_secmem_free(p);
    atomic_fetch_add_explicit(&g_released, 1, memory_order_relaxed);
}

static void evmem_once(void)
{
    event_set_mem_functions(evmem_malloc, evmem_realloc, evmem_free);
}

void mt_evmem_install(void)
{
    pthread_once(&g_once, evmem_once);
}

void mt_evmem_counts(size_t *allocated, size_t *released)
{
    *allocated = atomic_load(&g_allocated);
    *released = atomic_load(&g_released);
}
