/* big_alloc: see big_alloc.h. */
#include "big_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

void mt_big_hint(void *p, size_t bytes)
{
    if (!p || bytes < MT_BIG_ALLOC_HUGE)
        return;
    uintptr_t a = ((uintptr_t)p + MT_BIG_ALLOC_HUGE - 1) & ~(uintptr_t)(MT_BIG_ALLOC_HUGE - 1);
    uintptr_t b = ((uintptr_t)p + bytes) & ~(uintptr_t)(MT_BIG_ALLOC_HUGE - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
    /* the whole range (also the unaligned ends); EINVAL on kernels before
     * 5.14 and ENOMEM at a memory limit leave it to first touch */
    uintptr_t s = (uintptr_t)p & ~(uintptr_t)4095;
    (void)madvise((void *)s, (uintptr_t)p + bytes - s, MADV_POPULATE_WRITE);
#endif
}

void *mt_big_alloc(size_t bytes)
{
    if (bytes < MT_BIG_ALLOC_HUGE)
        return malloc(bytes ? bytes : 1);
    size_t sz = (bytes + MT_BIG_ALLOC_HUGE - 1) & ~(MT_BIG_ALLOC_HUGE - 1);
    void *p = aligned_alloc(MT_BIG_ALLOC_HUGE, sz);
    mt_big_hint(p, sz);
    return p;
}
