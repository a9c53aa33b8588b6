/* psi_anchors: the two anchors of the PSI benchmark, shared by bench_psi
 * (in process) and bench_psi_task (each run in a fresh process):
 *  psi_naive_join: copy every id to its own string, qsort each list with
 *      strcmp, intersect the sorted lists (the floor a plain join reaches);
 *  psi_ecdh: two-party ECDH-PSI on ristretto255 (libsodium), the classical
 *      crypto protocol: H(x) = from_hash(SHA-512(x)), A blinds with a, B with
 *      b, each double-blinds the other's, the doubly blinded encodings are
 *      intersected (4n scalar multiplications; network not counted).
 * Lists are ids of 16 characters, one per line ("%016llx\n"). */
#include "psi_anchors.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_LEN 16

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "psi_anchors: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **split_copy(const char *buf, size_t len, size_t *n)
{
    size_t cap = len / 2 + 1, k = 0;
    char **v = xmalloc(cap * sizeof *v);
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l) {
            v[k] = xmalloc(l + 1);
            memcpy(v[k], p, l);
            v[k][l] = 0;
            k++;
        }
        p += l + 1;
    }
    *n = k;
    return v;
}

/* Intersection size of k lists: sort each, then intersect in turn. */
size_t psi_naive_join(char *const *lists, const size_t *lens, size_t k)
{
    char **v[PSI_MAX_PARTIES];
    size_t nv[PSI_MAX_PARTIES];
    for (size_t i = 0; i < k; i++) {
        v[i] = split_copy(lists[i], lens[i], &nv[i]);
        qsort(v[i], nv[i], sizeof *v[i], cmp_str);
    }
    /* acc = v[0] deduplicated, then acc ∩ v[i] in place */
    size_t m = 0;
    char **acc = xmalloc(nv[0] * sizeof *acc);
    for (size_t i = 0; i < nv[0]; i++)
        if (m == 0 || strcmp(acc[m - 1], v[0][i]) != 0)
            acc[m++] = v[0][i];
    for (size_t l = 1; l < k; l++) {
        size_t i = 0, j = 0, o = 0;
        while (i < m && j < nv[l]) {
            int c = strcmp(acc[i], v[l][j]);
            if (c == 0) {
                acc[o++] = acc[i++];
                j++;
            } else if (c < 0) {
                i++;
            } else {
                j++;
            }
        }
        m = o;
    }
    free(acc);
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < nv[i]; j++)
            free(v[i][j]);
        free(v[i]);
    }
    return m;
}

static int cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void hash_to_point(const char *id, size_t len, uint8_t p[32])
{
    uint8_t h[crypto_hash_sha512_BYTES];
    crypto_hash_sha512(h, (const uint8_t *)id, len);
    crypto_core_ristretto255_from_hash(p, h);
}

/* Returns the intersection size over the first n ids of each list. */
size_t psi_ecdh(const char *a, const char *b, size_t n)
{
    uint8_t ka[32], kb[32];
    crypto_core_ristretto255_scalar_random(ka);
    crypto_core_ristretto255_scalar_random(kb);
    uint8_t(*A1)[32] = xmalloc(n * 32), (*B1)[32] = xmalloc(n * 32);
    uint8_t(*A2)[32] = xmalloc(n * 32), (*B2)[32] = xmalloc(n * 32);
    uint8_t pt[32];
    for (size_t i = 0; i < n; i++) { /* A: a*H(x) -> B */
        hash_to_point(a + i * (ID_LEN + 1), ID_LEN, pt);
        if (crypto_scalarmult_ristretto255(A1[i], ka, pt) != 0)
            abort();
    }
    for (size_t i = 0; i < n; i++) { /* B: b*H(y) -> A */
        hash_to_point(b + i * (ID_LEN + 1), ID_LEN, pt);
        if (crypto_scalarmult_ristretto255(B1[i], kb, pt) != 0)
            abort();
    }
    for (size_t i = 0; i < n; i++) /* B: b*(a*H(x)) */
        if (crypto_scalarmult_ristretto255(A2[i], kb, A1[i]) != 0)
            abort();
    for (size_t i = 0; i < n; i++) /* A: a*(b*H(y)) */
        if (crypto_scalarmult_ristretto255(B2[i], ka, B1[i]) != 0)
            abort();
    qsort(A2, n, 32, cmp32);
    qsort(B2, n, 32, cmp32);
    size_t i = 0, j = 0, m = 0;
    while (i < n && j < n) {
        int c = memcmp(A2[i], B2[j], 32);
        if (c == 0) {
            m++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    free(A1);
    free(B1);
    free(A2);
    free(B2);
    return m;
}

