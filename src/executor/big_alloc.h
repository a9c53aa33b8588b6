/* big_alloc: memory for the large arrays of a worker (issue 13 "Cold
 * memory"). A fresh worker first-touches every page of its inputs and
 * tables; on a VM that hands freed pages back to its host each such 4 KiB
 * fault is costly. mt_big_alloc gives malloc-compatible memory (release it
 * with free, realloc works) that, from 2 MiB up, is 2 MiB-aligned, asked to
 * be backed by transparent huge pages (MADV_HUGEPAGE, where the kernel
 * allows it: "madvise" or "always") and populated writable in one call
 * (MADV_POPULATE_WRITE, Linux 5.14+), so the pages come in 2 MiB at a time
 * and before the hot loops, not one fault per 4 KiB inside them. Both are
 * hints: on an older kernel, or when the kernel refuses, the memory is
 * ordinary and faults in on first touch as before. Below 2 MiB it is plain
 * malloc. NULL when out of memory (a memory limit counts populated pages
 * the same as touched ones).
 * Thread-safe; no state. */
#ifndef MT_BIG_ALLOC_H
#define MT_BIG_ALLOC_H

#include <stddef.h>

#define MT_BIG_ALLOC_HUGE ((size_t)2 << 20)

void *mt_big_alloc(size_t bytes);
/* The hint part alone, on p[0..bytes) of an existing allocation: huge pages
 * for its 2 MiB-aligned interior, populated writable. */
void mt_big_hint(void *p, size_t bytes);

#endif
