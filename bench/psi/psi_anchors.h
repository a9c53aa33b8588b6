/* psi_anchors.h: the PSI benchmark's anchors (see psi_anchors.c). Not
 * thread-safe where libsodium is not initialised: call sodium_init() first. */
#ifndef PSI_ANCHORS_H
#define PSI_ANCHORS_H
#include <stddef.h>

#define PSI_MAX_PARTIES 8

/* Intersection size of k (<= PSI_MAX_PARTIES) lists of ids, one per line. */
size_t psi_naive_join(char *const *lists, const size_t *lens, size_t k);
/* Two-party ECDH-PSI over the first n ids of a and b; the intersection size. */
size_t psi_ecdh(const char *a, const char *b, size_t n);

#endif
