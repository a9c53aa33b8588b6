/* big_alloc: see big_alloc.h. */
#include "big_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

void mt_big_hint(void *p, size_t bytes)
{
    if (!p || bytes < MT_BIG_ALLOC_HUGE)
        return;
    /* no MADV_HUGEPAGE: with the kernel's THP defrag at "madvise" (Debian's
     * default) a fault in an madvised range may compact memory
     * synchronously; on the project VM 512 MiB took 740-1040 ms of CPU in
     * huge pages against 190-210 ms in 4 KiB pages (bench/RESULTS.md, PSI
     * cold memory) */
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
