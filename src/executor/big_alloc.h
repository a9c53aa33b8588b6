/* big_alloc: memory for the large arrays of a worker (issue 13 "Cold
 * memory"). A fresh worker first-touches every page of its inputs and
 * tables; on a VM that hands freed pages back to its host each such 4 KiB
 * fault is costly. mt_big_alloc gives malloc-compatible memory (release it
 * with free, realloc works) that, from 2 MiB up, is 2 MiB-aligned and
 * populated writable (MADV_POPULATE_WRITE, Linux 5.14+) before the hot
 * loops rather than one fault at a time inside them, in 32 MiB chunks
 * asked to be transparent huge pages (MADV_HUGEPAGE) for as long as they
 * come cheaper than 4 KiB pages would: on the project VM (THP defrag
 * "madvise") huge pages were 8x cheaper while free 2 MiB blocks lasted and
 * 4-5x dearer once the kernel had to compact memory for them; after the
 * first slow chunk the process keeps to 4 KiB pages (one process-wide
 * flag, atomic). Only the speed depends on it: both are hints; on an older
 * kernel, or at a memory limit, the memory faults in on first touch. Below
 * 2 MiB it is plain malloc. NULL when out of memory (a memory limit counts
 * populated pages the same as touched ones).
 * Thread-safe. */
#ifndef MT_BIG_ALLOC_H
#define MT_BIG_ALLOC_H

#include <stddef.h>

#define MT_BIG_ALLOC_HUGE ((size_t)2 << 20)

void *mt_big_alloc(size_t bytes);
/* The hint part alone, on p[0..bytes) of an existing allocation: huge pages
 * (while cheap) for its 2 MiB-aligned interior, populated writable. */
void mt_big_hint(void *p, size_t bytes);

#endif
