/* builtin_psi: private set intersection inside the TEE.
 *
 * Every party's id list arrives decrypted in the worker; the intersection is
 * computed with an open-addressing hash table over the smallest list (slots
 * hold a hash tag and an index; ids are never copied, they point into the
 * input buffers), the other lists are streamed through it, and the result is
 * sorted with an LSD radix sort on an 8-byte prefix followed by a comparison
 * sort of the rare equal-prefix runs. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mt_builtin.h"
#include "mt_util.h"

/* ------------------------------------------------------------- hashing */

static inline uint64_t psi_mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t psi_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#define PSI_K1 0x9e3779b97f4a7c15ULL
#define PSI_K2 0xd6e8feb86659fd93ULL
#define PSI_K3 0xa0761d6478bd642fULL

/* Seeded 64-bit hash of a short byte string (multiply-fold mixing). */
static inline uint64_t psi_hash(const uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t h = seed ^ (len * PSI_K3);
    size_t i = 0;
    for (; i + 16 <= len; i += 16)
        h = psi_mix(psi_load64(p + i) ^ PSI_K1 ^ h, psi_load64(p + i + 8) ^ PSI_K2);
    if (i < len) {
        uint8_t t[16] = {0};
        memcpy(t, p + i, len - i);
        h = psi_mix(psi_load64(t) ^ PSI_K1 ^ h, psi_load64(t + 8) ^ PSI_K2);
    }
    return psi_mix(h ^ PSI_K3, PSI_K1 ^ len);
}

/* ------------------------------------------------------------- parsing */

/* Line iterator over one input. */
typedef struct psi_lines {
    const mt_psi_input *in;
    size_t pos;
    size_t line; /* 1-based number of the line last returned */
} psi_lines;

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "psi_find_nl assumes a little-endian machine"
#endif

/* Position of the first '\n' in s[0..n), or n. Word-at-a-time: ids are
 * short, so a libc memchr call per line costs more than the scan. */
static inline size_t psi_find_nl(const uint8_t *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const uint64_t nl = ones * '\n';
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = psi_load64(s + i) ^ nl;
        uint64_t z = (x - ones) & ~x & highs;
        if (z)
            return i + (size_t)(__builtin_ctzll(z) >> 3); /* little-endian */
    }
    for (; i < n; i++)
        if (s[i] == '\n')
            return i;
    return n;
}

/* Next non-empty id: 1 with *p and *len set, 0 at the end, -1 on an overlong id. */
static inline int psi_next(psi_lines *it, const uint8_t **p, size_t *len, mt_err *err)
{
    const uint8_t *d = it->in->data;
    size_t n = it->in->len;
    while (it->pos < n) {
        const uint8_t *s = d + it->pos;
        size_t rest = n - it->pos;
        size_t l = psi_find_nl(s, rest);
        bool has_nl = l < rest;
        it->pos += l + (has_nl ? 1 : 0);
        it->line++;
        if (has_nl && l > 0 && s[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        if (l > MT_PSI_MAX_ID) {
            mt_err_set(err, MT_EINVAL,
                       "input '%s', line %zu: id is %zu bytes, longer than the limit of %d",
                       it->in->slot ? it->in->slot : "?", it->line, l, MT_PSI_MAX_ID);
            return -1;
        }
        *p = s;
        *len = l;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- table */

/* One slot per distinct id of the smallest input; 16 bytes, so a probe
 * touches one cache line of the table and, on a tag match, the id itself. */
typedef struct psi_slot {
    const uint8_t *p; /* NULL = empty */
    uint32_t tag;     /* high hash bits */
    uint16_t len;
    uint16_t round;   /* last input (1-based) in which this id was seen */
} psi_slot;

typedef struct psi_table {
    psi_slot *slots;
    size_t mask;
} psi_table;

#define PSI_BATCH 32

typedef struct psi_pending {
    const uint8_t *p;
    size_t len;
    uint64_t h;
} psi_pending;

/* Number of ids at most in d (newlines, plus an unterminated last line). */
static size_t psi_count_lines(const uint8_t *d, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += d[i] == '\n';
    return c + (n > 0 && d[n - 1] != '\n');
}

/* Reads up to PSI_BATCH ids, hashes them and prefetches their home slots. */
static int psi_fill(psi_lines *it, const psi_table *t, uint64_t seed, psi_pending *b,
                    size_t *nb, mt_err *err)
{
    size_t k = 0;
    int r = 1;
    while (k < PSI_BATCH && (r = psi_next(it, &b[k].p, &b[k].len, err)) > 0) {
        b[k].h = psi_hash(b[k].p, b[k].len, seed);
        __builtin_prefetch(&t->slots[(size_t)b[k].h & t->mask]);
        k++;
    }
    *nb = k;
    /* second stage: the home slots are (mostly) in cache now; prefetch the
     * ids they point to where the tag matches, for the comparison. */
    for (size_t j = 0; j < k; j++) {
        const psi_slot *s = &t->slots[(size_t)b[j].h & t->mask];
        if (s->p && s->tag == (uint32_t)(b[j].h >> 32))
            __builtin_prefetch(s->p);
    }
    return r < 0 ? -1 : 0;
}

#define PSI_HUGE (2u << 20)

/* Zeroed memory for the table; large tables are 2 MiB-aligned and asked to
 * be backed by transparent huge pages, which removes most TLB misses and
 * page faults of the random probes. */
static void *psi_table_alloc(size_t bytes)
{
    if (bytes < PSI_HUGE)
        return calloc(1, bytes);
    void *p = aligned_alloc(PSI_HUGE, bytes);
    if (!p)
        return NULL;
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure is harmless */
    memset(p, 0, bytes);
    return p;
}

/* Builds the table over input in (round 1); duplicates collapse. */
static mt_status psi_build(psi_table *t, const mt_psi_input *in, uint64_t seed, mt_err *err)
{
    size_t lines = psi_count_lines(in->data, in->len);
    size_t sz = 16;
    while (sz < lines * 2)
        sz <<= 1;
    t->slots = psi_table_alloc(sz * sizeof *t->slots);
    if (!t->slots)
        return mt_err_set(err, MT_ENOMEM, "out of memory for %zu ids of input '%s'", lines,
                          in->slot);
    t->mask = sz - 1;
    psi_lines it = {.in = in};
    psi_pending b[PSI_BATCH];
    size_t nb;
    do {
        if (psi_fill(&it, t, seed, b, &nb, err) < 0)
            return MT_EINVAL;
        for (size_t k = 0; k < nb; k++) {
            uint32_t tag = (uint32_t)(b[k].h >> 32);
            size_t i = (size_t)b[k].h & t->mask;
            for (;;) {
                psi_slot *s = &t->slots[i];
                if (!s->p) {
                    s->p = b[k].p;
                    s->tag = tag;
                    s->len = (uint16_t)b[k].len;
                    s->round = 1;
                    break;
                }
                if (s->tag == tag && s->len == b[k].len && memcmp(s->p, b[k].p, b[k].len) == 0)
                    break; /* duplicate */
                i = (i + 1) & t->mask;
            }
        }
    } while (nb == PSI_BATCH);
    return MT_OK;
}

/* Streams input in (round r >= 2) through the table: ids seen in every
 * earlier round move to round r. */
static mt_status psi_probe(psi_table *t, const mt_psi_input *in, uint16_t round, uint64_t seed,
                           mt_err *err)
{
    psi_lines it = {.in = in};
    psi_pending b[PSI_BATCH];
    size_t nb;
    do {
        if (psi_fill(&it, t, seed, b, &nb, err) < 0)
            return MT_EINVAL;
        for (size_t k = 0; k < nb; k++) {
            uint32_t tag = (uint32_t)(b[k].h >> 32);
            size_t i = (size_t)b[k].h & t->mask;
            for (;;) {
                psi_slot *s = &t->slots[i];
                if (!s->p)
                    break;
                if (s->tag == tag && s->len == b[k].len &&
                    memcmp(s->p, b[k].p, b[k].len) == 0) {
                    if (s->round == round - 1)
                        s->round = round;
                    break;
                }
                i = (i + 1) & t->mask;
            }
        }
    } while (nb == PSI_BATCH);
    return MT_OK;
}

/* ------------------------------------------------------------- sorting */

typedef struct psi_key {
    uint64_t k; /* first 8 bytes, big-endian, zero-padded */
    const uint8_t *p;
    size_t len;
} psi_key;

static int psi_cmp_ids(const psi_key *a, const psi_key *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int psi_cmp_keys(const void *x, const void *y)
{
    const psi_key *a = x, *b = y;
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    return psi_cmp_ids(a, b);
}

/* Sorts v[0..n) bytewise: LSD radix on the 8-byte prefix, then qsort of runs
 * with equal prefixes. tmp has room for n keys. */
static void psi_sort(psi_key *v, psi_key *tmp, size_t n)
{
    for (int byte = 0; byte < 8; byte++) {
        size_t cnt[256] = {0};
        int shift = byte * 8;
        for (size_t i = 0; i < n; i++)
            cnt[(v[i].k >> shift) & 0xff]++;
        bool trivial = false;
        for (int b = 0; b < 256; b++)
            if (cnt[b] == n)
                trivial = true;
        if (trivial)
            continue;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[cnt[(v[i].k >> shift) & 0xff]++] = v[i];
        memcpy(v, tmp, n * sizeof *v);
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j].k == v[i].k)
            j++;
        if (j - i > 1)
            qsort(v + i, j - i, sizeof *v, psi_cmp_keys);
        i = j;
    }
}

/* ------------------------------------------------------------- compute */

mt_status mt_psi_compute(const mt_psi_input *in, size_t n, uint64_t seed, uint8_t **out,
                         size_t *out_len, size_t *count, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    *count = 0;
    if (n < 2)
        return mt_err_set(err, MT_EINVAL, "psi needs at least 2 inputs, got %zu", n);
    if (n > UINT16_MAX - 1)
        return mt_err_set(err, MT_EINVAL, "psi: at most %d inputs", UINT16_MAX - 1);
    size_t small = 0;
    for (size_t i = 1; i < n; i++)
        if (in[i].len < in[small].len)
            small = i;

    psi_table t = {0};
    psi_key *keys = NULL, *tmp = NULL;
    uint8_t *buf = NULL;
    mt_status st = psi_build(&t, &in[small], seed, err);
    uint16_t round = 1;
    for (size_t i = 0; st == MT_OK && i < n; i++) {
        if (i == small)
            continue;
        st = psi_probe(&t, &in[i], ++round, seed, err);
    }
    if (st != MT_OK)
        goto out;

    size_t m = 0, bytes = 0;
    for (size_t i = 0; i <= t.mask; i++)
        if (t.slots[i].p && t.slots[i].round == round) {
            m++;
            bytes += t.slots[i].len + 1u;
        }
    if (m == 0)
        goto out;
    keys = malloc(m * sizeof *keys);
    tmp = malloc(m * sizeof *tmp);
    buf = malloc(bytes);
    if (!keys || !tmp || !buf) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for an intersection of %zu ids", m);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i <= t.mask; i++) {
        const psi_slot *e = &t.slots[i];
        if (!e->p || e->round != round)
            continue;
        keys[k].p = e->p;
        keys[k].len = e->len;
        k++;
    }
    /* ids are scattered over the inputs: prefetch a few keys ahead */
    for (size_t i = 0; i < m; i++) {
        if (i + 16 < m)
            __builtin_prefetch(keys[i + 16].p);
        uint8_t pre[8] = {0};
        memcpy(pre, keys[i].p, keys[i].len < 8 ? keys[i].len : 8);
        uint64_t key = 0;
        for (int b = 0; b < 8; b++)
            key = key << 8 | pre[b];
        keys[i].k = key;
    }
    psi_sort(keys, tmp, m);
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        if (i + 16 < m)
            __builtin_prefetch(keys[i + 16].p);
        memcpy(buf + o, keys[i].p, keys[i].len);
        o += keys[i].len;
        buf[o++] = '\n';
    }
    *out = buf;
    buf = NULL;
    *out_len = o;
    *count = m;
out:
    free(buf);
    free(keys);
    free(tmp);
    free(t.slots);
    return st;
}

/* ------------------------------------------------------------- built-in */

mt_status mt_builtin_psi(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    if (ctx->n_inputs < 2)
        return mt_err_set(err, MT_EINVAL,
                          "psi needs at least 2 input slots (one id list per party), got %zu",
                          ctx->n_inputs);
    mt_psi_input *in = calloc(ctx->n_inputs, sizeof *in);
    if (!in)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < ctx->n_inputs; i++) {
        in[i].slot = ctx->inputs[i].slot;
        in[i].data = ctx->inputs[i].data;
        in[i].len = ctx->inputs[i].len;
    }
    uint64_t seed = 0;
    mt_status st = mt_random((uint8_t *)&seed, sizeof seed, err);
    uint8_t *res = NULL;
    size_t res_len = 0, count = 0;
    if (st == MT_OK)
        st = mt_psi_compute(in, ctx->n_inputs, seed, &res, &res_len, &count, err);
    free(in);
    for (size_t i = 0; st == MT_OK && i < ctx->n_outputs; i++)
        st = mt_bctx_output_write(ctx, i, res, res_len, err);
    if (res) {
        mt_wipe(res, res_len);
        free(res);
    }
    if (st != MT_OK)
        return st;
    mt_bctx_log(ctx, "psi: %zu inputs, %zu outputs, intersection of %zu ids", ctx->n_inputs,
                ctx->n_outputs, count);
    char buf[64];
    snprintf(buf, sizeof buf, "intersection size: %zu", count);
    if (!(*ret = strdup(buf)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}
