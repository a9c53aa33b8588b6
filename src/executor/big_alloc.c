/* big_alloc: see big_alloc.h. */
#include "big_alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

/* Huge pages are tried chunk by chunk while they come cheap; once a chunk
 * costs more than 4 KiB pages would (the kernel compacting memory to find
 * 2 MiB blocks), the rest of the process gets 4 KiB pages. Measured on
 * the project VM (THP defrag "madvise"): populating 128 MiB took 6 ms in
 * huge pages and 46 ms in 4 KiB pages while free 2 MiB blocks lasted, but
 * 512 MiB took 740-1040 ms in huge pages against 190-210 ms in 4 KiB pages
 * once they ran out. */
#define BIG_CHUNK ((size_t)32 << 20)
#define BIG_HUGE_MAX_NS_PER_MIB 250000 /* 4 KiB pages: ~350 us per MiB */

static atomic_int big_thp_off; /* 1: huge pages turned out slow here */

static uint64_t big_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void big_populate(uintptr_t a, uintptr_t b)
{
#ifdef MADV_POPULATE_WRITE
    /* EINVAL on kernels before 5.14 and ENOMEM at a memory limit leave it
     * to first touch */
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
#else
    (void)a;
    (void)b;
#endif
}

void mt_big_hint(void *p, size_t bytes)
{
    if (!p || bytes < MT_BIG_ALLOC_HUGE)
        return;
    uintptr_t s = (uintptr_t)p & ~(uintptr_t)4095, e = (uintptr_t)p + bytes;
    uintptr_t a = ((uintptr_t)p + MT_BIG_ALLOC_HUGE - 1) & ~(uintptr_t)(MT_BIG_ALLOC_HUGE - 1);
    uintptr_t b = e & ~(uintptr_t)(MT_BIG_ALLOC_HUGE - 1);
    if (b <= a) {
        big_populate(s, e);
        return;
    }
    big_populate(s, a); /* the unaligned ends in 4 KiB pages */
    big_populate(b, e);
    for (uintptr_t c = a; c < b; c += BIG_CHUNK) {
        uintptr_t ce = b - c > BIG_CHUNK ? c + BIG_CHUNK : b;
        if (atomic_load_explicit(&big_thp_off, memory_order_relaxed)) {
            big_populate(c, ce);
            continue;
        }
        uint64_t t0 = big_now_ns();
        if (madvise((void *)c, ce - c, MADV_HUGEPAGE) != 0) {
            atomic_store_explicit(&big_thp_off, 1, memory_order_relaxed);
            big_populate(c, ce);
            continue;
        }
        big_populate(c, ce);
        uint64_t mib = (ce - c) >> 20;
        if (big_now_ns() - t0 > mib * BIG_HUGE_MAX_NS_PER_MIB) {
            /* slow (or preempted: either way 4 KiB pages are the safe side) */
            atomic_store_explicit(&big_thp_off, 1, memory_order_relaxed);
        }
    }
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
