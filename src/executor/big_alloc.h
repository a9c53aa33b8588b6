/* big_alloc: memory for the large arrays of a worker (issue 13 "Cold
 * memory"). A fresh worker first-touches every page of its inputs and
 * tables; on a VM that hands freed pages back to its host each such 4 KiB
 * fault is costly. mt_big_alloc gives malloc-compatible memory (release it
 * with free, realloc works) that, from 2 MiB up, is 2 MiB-aligned and
 * populated writable in one call (MADV_POPULATE_WRITE, Linux 5.14+), before
 * the hot loops rather than one fault at a time inside them. It is not
 * asked for transparent huge pages: measured on the project's VM (THP
 * defrag "madvise"), MADV_HUGEPAGE made first touch 4-5x more expensive in
 * CPU (presumably synchronous compaction under defrag "madvise"). Populating is a
 * hint: on an older kernel, or at a memory limit, the memory is ordinary
 * and faults in on first touch. Below 2 MiB it is plain malloc. NULL when
 * out of memory (a memory limit counts populated pages the same as touched
 * ones).
 * Thread-safe; no state. */
#ifndef MT_BIG_ALLOC_H
#define MT_BIG_ALLOC_H

#include <stddef.h>

#define MT_BIG_ALLOC_HUGE ((size_t)2 << 20)

void *mt_big_alloc(size_t bytes);
/* The hint part alone, on p[0..bytes) of an existing allocation: populated
 * writable. */
void mt_big_hint(void *p, size_t bytes);

#endif
