/* builtin_psi: private set intersection inside the TEE.
 *
 * Every party's id list arrives decrypted in the worker. Lists whose ids are
 * all 16 hex digits take the fast path ("fast path" below: 64-bit values);
 * every other input takes the general path described here, which gives the
 * same bytes. The general path is
 * a partitioned hash join, built so that the random accesses stay in cache:
 *
 *  1. count: each input is split into lines (64-byte blocks turned into a
 *     newline bit mask), every id is hashed (SipHash-1-3, keyed from the
 *     seed) and counted in
 *     a histogram of the hash's top 12 bits. The smallest input (in bytes)
 *     goes first: its id count fixes the number of partitions P = 2^b
 *     (about PSI_PART_TARGET ids of it per partition, at most 2^12).
 *  2. partition: a second pass hashes the ids again and scatters them by
 *     the top b hash bits, staged PSI_WC at a time in a small buffer per
 *     partition, into one contiguous array per input (a counting
 *     sort, so partition p of input i is a slice, in input order); each
 *     24-byte entry carries 53 hash bits and the length, and the id's first
 *     16 bytes zero-padded (longer ids: 8 bytes and the offset), so ids of
 *     up to 16 bytes are compared and sorted without touching the input.
 *  3. join, partition by partition: a small open-addressing table (8-byte
 *     slots: tag and index) over the smallest input's slice collapses its
 *     duplicates (round 1); the other inputs' slices stream through it in
 *     input order, and an id seen in every earlier round moves to round r.
 *     A slice, its table and its round counters take about 700 KiB, so the
 *     probes hit L2 or L3. Survivors (round n) are compacted to the front of the
 *     slice; every slice is wiped once used (it holds copies of the ids).
 *  4. sort: the survivors' 8-byte big-endian prefixes are radix sorted, LSD,
 *     on packed keys: each byte replaced by its rank among the values that
 *     occur, in as few bits as those need (hex ids: 32 bits), scattered by
 *     the top 12 bits, each bucket sorted in cache on the rest; runs of equal prefixes are then sorted by a comparison
 *     sort on the whole id.
 * Threads (large inputs, PSI_PAR_MIN): steps 1 and 2 take two inputs at a
 * time, both counted at once, then their memory taken in input order on
 * the calling thread (so that the input named when memory runs out is the
 * one named on one thread), then both scattered at once; step 3 joins the
 * partitions from pm on (about half of the smallest input's ids) on a
 * helper thread with its own table, kept[p] per partition. The result is
 * byte for byte that of one thread (MT_PSI_ONE_THREAD), and so is the
 * first error: that of the sequence count 0, partition 0, count 1, ...;
 * no helper thread: everything on the calling thread.
 *
 * Memory (issue 13 "Cold memory": a fresh worker pays for every page it
 * first touches): 24 bytes per id of every input (the partitioned entries),
 * besides the inputs; the ids are hashed twice (a counting pass, then the
 * scatter) instead of keeping a record array. The sort keys (16 bytes per
 * survivor, twice) and the output go into the largest probe input's
 * entries once the join has wiped them, when they fit there. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "big_alloc.h"
#include "mt_builtin.h"
#include "mt_siphash.h"
#include "mt_util.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "builtin_psi assumes a little-endian machine"
#endif

/* Ids of the smallest input per partition: its slice (24 B per id), table
 * (16 B per id) and round counters (2 B per id), about 700 KiB, in L2/L3.
 * For the join alone 2048 to 16384 measured alike; the partitioning
 * scatter is what the count decides: 2 x 2^24 ids as a task took 15% less
 * worker CPU with 16384 (1024 partitions) than with 4096 (4096 of them);
 * 65536 measured like 16384 (issue 13, bench/RESULTS.md). */
#define PSI_PART_TARGET 16384u
#define PSI_PART_MAX_BITS 12
#define PSI_HIST (1u << PSI_PART_MAX_BITS)
/* Lengths are stored in the top 11 bits of an entry's hash word. */
#define PSI_LEN_BITS 11
#define PSI_MAX_INPUT (((uint64_t)1 << (64 - PSI_LEN_BITS)) - 1)

/* Inputs of at least this many bytes in all are worked on by two threads
 * (both paths: parse or count and scatter two inputs at a time, join the
 * partitions in two halves); each thread touches only its own arrays.
 * Smaller ones are not worth a thread. */
#define PSI_PAR_MIN ((size_t)4 << 20)

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

/* The first 16 bytes of the id s[0..len), zero-padded, as two little-endian
 * words; avail >= len is the number of readable bytes at s. */
static inline void psi_prefix(const uint8_t *s, size_t len, size_t avail, uint64_t *p0,
                              uint64_t *p1)
{
    uint64_t a, b;
    if (avail >= 16) {
        a = psi_load64(s);
        b = psi_load64(s + 8);
    } else {
        uint8_t t[16] = {0};
        memcpy(t, s, len < 16 ? len : 16);
        a = psi_load64(t);
        b = psi_load64(t + 8);
    }
    if (len < 8) {
        a &= len ? ~0ULL >> (64 - 8 * len) : 0;
        b = 0;
    } else if (len < 16) {
        b &= len > 8 ? ~0ULL >> (64 - 8 * (len - 8)) : 0;
    }
    *p0 = a;
    *p1 = b;
}

/* Keyed 64-bit hash of the id s[0..len): SipHash-1-3 (a PRF, mt_siphash.h)
 * under a key from the task's random seed. The ids are a party's: the
 * multiply-fold hash with the seed mixed in used before had collisions for
 * every seed (bytes 8..15 equal to PSI_K2 zeroed the state), which a party
 * could use to put all its ids in one partition and one probe chain. */
static inline uint64_t psi_hash(const uint8_t *s, size_t len, uint64_t seed)
{
    const mt_siphash_key k = {seed, seed ^ PSI_K3};
    return mt_siphash13(&k, s, len);
}

uint64_t mt_psi_id_hash(const uint8_t *id, size_t len, uint64_t seed)
{
    return psi_hash(id, len, seed);
}

/* ------------------------------------------------------------- scanning */

/* Bit i set where s[i] == '\n', for the n <= 64 bytes at s. */
static inline uint64_t psi_nl_mask(const uint8_t *s, size_t n)
{
    uint64_t m = 0;
#ifdef __SSE2__
    if (n == 64) {
        const __m128i nl = _mm_set1_epi8('\n');
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * k));
            m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) << (16 * k);
        }
        return m;
    }
#endif
    for (size_t i = 0; i < n; i++)
        m |= (uint64_t)(s[i] == '\n') << i;
    return m;
}

/* One id, partitioned: 24 bytes (issue 13 "Cold memory": a fresh worker pays
 * for every page it touches, so an id costs its input bytes and this). */
typedef struct psi_ent {
    uint64_t h;   /* the hash's low 53 bits | length << 53 */
    uint64_t p0;  /* bytes 0..7 of the id, zero-padded, little-endian */
    uint64_t p1;  /* length <= 16: bytes 8..15, zero-padded; longer: the id's
                   * offset in its input (the tail is read from there) */
} psi_ent;

#define PSI_HASH_MASK ((~0ULL) >> PSI_LEN_BITS)

static inline size_t psi_ent_len(const psi_ent *e)
{
    return (size_t)(e->h >> (64 - PSI_LEN_BITS));
}

/* Bytes 8..15 of the id as a little-endian word (zero-padded). */
static inline uint64_t psi_ent_w1(const psi_ent *e, const uint8_t *base)
{
    return psi_ent_len(e) <= 16 ? e->p1 : psi_load64(base + e->p1 + 8);
}

/* One input, partitioned. */
typedef struct psi_part {
    const mt_psi_input *in;
    psi_ent *ent;  /* n entries, partition p at ent[off[p] .. off[p + 1]) */
    size_t n;
    size_t *off;   /* P + 1 */
} psi_part;

/* Scatter state of a partitioning pass: the next free entry of every
 * partition, and a small buffer per partition (software write-combining):
 * entries are staged there and copied out PSI_WC at a time, so the
 * scatter to up to 4096 slices writes whole runs instead of one random
 * 24-byte store (a cache and TLB miss) per id. */
#define PSI_WC 8
typedef struct psi_wc {
    size_t *cur;    /* P: next free entry of partition p in the array */
    uint8_t *fill;  /* P: entries staged for p */
    psi_ent *buf;   /* P * PSI_WC */
} psi_wc;

static inline void psi_wc_put(psi_part *pt, psi_wc *wc, size_t p, const psi_ent *e)
{
    psi_ent *b = wc->buf + p * PSI_WC;
    b[wc->fill[p]] = *e;
    if (++wc->fill[p] == PSI_WC) {
        memcpy(&pt->ent[wc->cur[p]], b, PSI_WC * sizeof *b);
        wc->cur[p] += PSI_WC;
        wc->fill[p] = 0;
    }
}

/* Splits input in into ids (LF ends a line, a CR before it is dropped, empty
 * lines are skipped) and hashes each. With pt == NULL it counts the ids by
 * the top PSI_PART_MAX_BITS hash bits into hist (and checks every id's
 * length); otherwise it scatters them into pt (through wc, by the 'bits'
 * top hash bits), in input order within each
 * partition. Two passes over the input instead of a record array: the
 * histogram pass costs a second hash per id, the array a page per 256 ids. */
static inline mt_status psi_scan_id(const mt_psi_input *in, size_t off, size_t len, size_t line,
                                    uint64_t seed, uint32_t *hist, psi_part *pt, psi_wc *wc,
                                    unsigned bits, mt_err *err)
{
    if (len > MT_PSI_MAX_ID)
        return mt_err_set(err, MT_EINVAL,
                          "input '%s', line %zu: id is %zu bytes, longer than the limit of %d",
                          in->slot ? in->slot : "?", line, len, MT_PSI_MAX_ID);
    const uint8_t *s = in->data + off;
    uint64_t p0, p1;
    psi_prefix(s, len, in->len - off, &p0, &p1);
    uint64_t h = psi_hash(s, len, seed);
    if (!pt) {
        hist[h >> (64 - PSI_PART_MAX_BITS)]++;
        return MT_OK;
    }
    size_t p = bits ? (size_t)(h >> (64 - bits)) : 0; /* bits == 0: shift 64 avoided */
    psi_ent e = {(h & PSI_HASH_MASK) | (uint64_t)len << (64 - PSI_LEN_BITS), p0,
                 len <= 16 ? p1 : (uint64_t)off};
    psi_wc_put(pt, wc, p, &e);
    return MT_OK;
}

static mt_status psi_scan(const mt_psi_input *in, uint64_t seed, uint32_t *hist, psi_part *pt,
                          psi_wc *wc, unsigned bits, mt_err *err)
{
    if (in->len > PSI_MAX_INPUT)
        return mt_err_set(err, MT_EINVAL, "input '%s' is too large for psi",
                          in->slot ? in->slot : "?");
    const uint8_t *d = in->data;
    size_t n = in->len, start = 0, line = 0;
    mt_status st;
    for (size_t blk = 0; blk < n; blk += 64) {
        uint64_t m = psi_nl_mask(d + blk, n - blk < 64 ? n - blk : 64);
        while (m) {
            size_t pos = blk + (size_t)__builtin_ctzll(m);
            m &= m - 1;
            line++;
            size_t len = pos - start;
            if (len && d[pos - 1] == '\r')
                len--;
            if (len && (st = psi_scan_id(in, start, len, line, seed, hist, pt, wc, bits, err)) !=
                           MT_OK)
                return st;
            start = pos + 1;
        }
    }
    if (start < n) /* a last line without LF keeps a trailing CR */
        return psi_scan_id(in, start, n - start, line + 1, seed, hist, pt, wc, bits, err);
    return MT_OK;
}

/* ------------------------------------------------------------- partitioning */

/* Memory for a large array (big_alloc.h: 2 MiB-aligned,
 * populated at once: a fresh worker's first touch, issue 13). */
static void *psi_big_alloc(size_t bytes)
{
    return mt_big_alloc(bytes);
}

/* Partitioning input pt->in by the top 'bits' hash bits given its 12-bit
 * histogram (a counting sort: partition p is a slice of one array), in two
 * steps: psi_part_alloc takes the memory (in input order, on the calling
 * thread: the first input to run out of memory is the one named, as when
 * one input is partitioned after the other), psi_part_scatter fills it
 * (two inputs at a time on two threads: each touches only its own). */
static mt_status psi_part_alloc(psi_part *pt, psi_wc *wc, const uint32_t *hist, size_t n,
                                unsigned bits, mt_err *err)
{
    size_t parts = (size_t)1 << bits;
    pt->n = n;
    pt->off = malloc((parts + 1) * sizeof *pt->off);
    pt->ent = psi_big_alloc(n * sizeof *pt->ent);
    wc->cur = malloc(parts * sizeof *wc->cur);
    wc->fill = calloc(parts, 1);
    wc->buf = malloc(parts * PSI_WC * sizeof *wc->buf);
    if (!pt->off || !pt->ent || !wc->cur || !wc->fill || !wc->buf) {
        free(wc->cur);
        free(wc->fill);
        free(wc->buf);
        *wc = (psi_wc){0};
        return mt_err_set(err, MT_ENOMEM, "out of memory for the ids of input '%s' (memory limit?)",
                          pt->in->slot ? pt->in->slot : "?");
    }
    /* coarsen the 12-bit histogram to 'bits' bits; off[p] = start of p */
    size_t sum = 0, group = PSI_HIST >> bits;
    for (size_t p = 0; p < parts; p++) {
        pt->off[p] = sum;
        for (size_t k = 0; k < group; k++)
            sum += hist[p * group + k];
    }
    pt->off[parts] = sum;
    memcpy(wc->cur, pt->off, parts * sizeof *wc->cur);
    return MT_OK;
}

/* The scatter state's buffers (copies of ids: wiped) freed. */
static void psi_wc_free(psi_wc *wc, unsigned bits)
{
    if (wc->buf)
        mt_wipe(wc->buf, ((size_t)1 << bits) * PSI_WC * sizeof *wc->buf);
    free(wc->buf);
    free(wc->fill);
    free(wc->cur);
    *wc = (psi_wc){0};
}

static mt_status psi_part_scatter(psi_part *pt, psi_wc *wc, unsigned bits, uint64_t seed,
                                  mt_err *err)
{
    size_t parts = (size_t)1 << bits;
    mt_status st = psi_scan(pt->in, seed, NULL, pt, wc, bits, err);
    for (size_t p = 0; st == MT_OK && p < parts; p++) /* the staged rest */
        memcpy(&pt->ent[wc->cur[p]], wc->buf + p * PSI_WC, wc->fill[p] * sizeof *wc->buf);
    psi_wc_free(wc, bits);
    return st;
}

/* Runs job(a) on this thread and job(b) on a helper thread (b == NULL:
 * only a; a helper that cannot be started: b after a, here). Each job
 * touches only its own argument. */
typedef struct psi_task {
    void (*job)(void *);
    void *arg;
} psi_task;

static void *psi_task_thread(void *t)
{
    ((psi_task *)t)->job(((psi_task *)t)->arg);
    return NULL;
}

static void psi_two(void (*job)(void *), void *a, void *b)
{
    psi_task t = {job, b};
    pthread_t th;
    pthread_attr_t at;
    bool two = false;
    if (b && pthread_attr_init(&at) == 0) {
        two = pthread_attr_setstacksize(&at, (size_t)1 << 20) == 0 &&
              pthread_create(&th, &at, psi_task_thread, &t) == 0;
        pthread_attr_destroy(&at);
    }
    job(a);
    if (two)
        pthread_join(th, NULL);
    else if (b)
        job(b);
}

/* One input of the general path in its count and scatter jobs. */
typedef struct psi_gin {
    const mt_psi_input *in;
    uint64_t seed;
    uint32_t hist[PSI_HIST];
    size_t ids;
    psi_part *pt; /* scatter: where to (NULL: not partitioned) */
    psi_wc wc;
    unsigned bits;
    mt_status st;
    mt_err err;
} psi_gin;

static void psi_count_job(void *arg)
{
    psi_gin *g = arg;
    memset(g->hist, 0, sizeof g->hist);
    g->ids = 0;
    if ((g->st = psi_scan(g->in, g->seed, g->hist, NULL, NULL, 0, &g->err)) != MT_OK)
        return;
    for (size_t h = 0; h < PSI_HIST; h++)
        g->ids += g->hist[h];
}

static void psi_scatter_gjob(void *arg)
{
    psi_gin *g = arg;
    if (g->pt)
        g->st = psi_part_scatter(g->pt, &g->wc, g->bits, g->seed, &g->err);
}

/* ------------------------------------------------------------- join */

/* True if a (of input base ba) and b (of input base bb) are the same id:
 * equal hash and length (h), then the bytes: 0..15 from the entries when
 * the length is <= 16, else bytes 0..7 and the tail from the inputs. */
static inline bool psi_ent_eq(const psi_ent *a, const uint8_t *ba, const psi_ent *b,
                              const uint8_t *bb)
{
    if (a->h != b->h || a->p0 != b->p0)
        return false;
    size_t la = psi_ent_len(a);
    if (la <= 16)
        return a->p1 == b->p1;
    return memcmp(ba + a->p1 + 8, bb + b->p1 + 8, la - 8) == 0;
}

/* Per-partition work space, sized for the largest build slice. */
typedef struct psi_join {
    uint64_t *tab;   /* slot: tag << 32 | (index + 1); 0 = empty */
    uint16_t *round;
    size_t cap;      /* entries of round; tab has >= 2 * cap slots */
} psi_join;

static inline uint64_t psi_tag(uint64_t h)
{
    return (h >> 20) & 0xffffffffULL;
}

/* Intersects partition p of every input: b is the build input (round 1),
 * probes are the others in round order. Survivors are moved to the front of
 * b's slice; returns their number. Every slice of p is wiped afterwards
 * except the survivors. */
static size_t psi_join_part(psi_join *js, psi_part *b, psi_part *const *probes, size_t np,
                            size_t p)
{
    psi_ent *be = b->ent + b->off[p];
    size_t nb = b->off[p + 1] - b->off[p];
    const uint8_t *bbase = b->in->data;
    size_t kept = 0;
    if (nb == 0)
        goto wipe;
    size_t tsize = 16;
    while (tsize < 2 * nb)
        tsize <<= 1;
    size_t tmask = tsize - 1;
    memset(js->tab, 0, tsize * sizeof *js->tab);
    uint16_t *round = js->round;
    size_t alive = 0;
    for (size_t i = 0; i < nb; i++) {
        const psi_ent *e = &be[i];
        uint64_t tag = psi_tag(e->h);
        size_t s = (size_t)e->h & tmask;
        round[i] = 0;
        for (;;) {
            uint64_t v = js->tab[s];
            if (!v) {
                js->tab[s] = tag << 32 | (uint64_t)(i + 1);
                round[i] = 1;
                alive++;
                break;
            }
            if (v >> 32 == tag && psi_ent_eq(&be[(uint32_t)v - 1], bbase, e, bbase))
                break; /* a duplicate: the first one stands for it */
            s = (s + 1) & tmask;
        }
    }
    uint16_t r = 1;
    for (size_t k = 0; k < np && alive; k++) {
        r++;
        const psi_ent *pe = probes[k]->ent + probes[k]->off[p];
        size_t n = probes[k]->off[p + 1] - probes[k]->off[p];
        const uint8_t *pbase = probes[k]->in->data;
        alive = 0;
        for (size_t i = 0; i < n; i++) {
            const psi_ent *e = &pe[i];
            uint64_t tag = psi_tag(e->h);
            size_t s = (size_t)e->h & tmask;
            for (;;) {
                uint64_t v = js->tab[s];
                if (!v)
                    break;
                if (v >> 32 == tag) {
                    size_t j = (uint32_t)v - 1;
                    if (psi_ent_eq(&be[j], bbase, e, pbase)) {
                        if (round[j] == r - 1) {
                            round[j] = r;
                            alive++;
                        }
                        break;
                    }
                }
                s = (s + 1) & tmask;
            }
        }
    }
    if (r == np + 1 && alive)
        for (size_t i = 0; i < nb; i++)
            if (round[i] == r)
                be[kept++] = be[i];
wipe:
    mt_wipe(be + kept, (nb - kept) * sizeof *be);
    for (size_t k = 0; k < np; k++)
        mt_wipe(probes[k]->ent + probes[k]->off[p],
                (probes[k]->off[p + 1] - probes[k]->off[p]) * sizeof(psi_ent));
    return kept;
}

/* The join of partitions [p0, p1) with its own work space (one per
 * thread): kept[p] for each. */
typedef struct psi_gjoin {
    psi_join js;
    psi_part *b;
    psi_part *const *probes;
    size_t np, p0, p1;
    size_t *kept;
} psi_gjoin;

static void psi_gjoin_job(void *arg)
{
    psi_gjoin *J = arg;
    for (size_t p = J->p0; p < J->p1; p++)
        J->kept[p] = psi_join_part(&J->js, J->b, J->probes, J->np, p);
}

/* ------------------------------------------------------------- sorting */

typedef struct psi_key {
    uint64_t k; /* bytes 0..7 of the id, big-endian: the radix key */
    const psi_ent *e;
} psi_key;

/* Bytewise order of two whole ids (of the build input). */
static int psi_cmp_ids(const psi_ent *a, const psi_ent *b, const uint8_t *base)
{
    uint64_t a0 = __builtin_bswap64(a->p0), b0 = __builtin_bswap64(b->p0);
    if (a0 != b0)
        return a0 < b0 ? -1 : 1;
    uint64_t a1 = __builtin_bswap64(psi_ent_w1(a, base)),
             b1 = __builtin_bswap64(psi_ent_w1(b, base));
    if (a1 != b1)
        return a1 < b1 ? -1 : 1;
    /* equal zero-padded 16-byte prefixes: an id of <= 16 bytes is a prefix of
     * the other one */
    size_t la = psi_ent_len(a), lb = psi_ent_len(b);
    if (la > 16 && lb > 16) {
        size_t n = (la < lb ? la : lb) - 16;
        int c = memcmp(base + a->p1 + 16, base + b->p1 + 16, n);
        if (c)
            return c;
    }
    return la < lb ? -1 : la > lb;
}

static int psi_cmp_keys(const void *x, const void *y, void *base)
{
    const psi_key *a = x, *b = y;
    return psi_cmp_ids(a->e, b->e, base);
}

#define PSI_DIGIT_MAX_BITS 12 /* at most 4096 buckets a pass */

/* Sorts v[0..n) bytewise by id; tmp has room for n keys. LSD radix sort on
 * the 8-byte key: one pass counts every byte's values, and each key is
 * replaced by a packed key of the same order: every byte by its rank among
 * the values that occur at its position, in as many bits as those values
 * need (hex ids: 4 bits a byte, 32 in all; bytes with a single value take
 * none). The packed keys are then scattered by their top
 * PSI_DIGIT_MAX_BITS bits (the one pass through memory), and each bucket
 * is sorted in cache: insertion sort when small, else LSD passes of at
 * most 8 bits on the rest of the packed key. Packing is
 * one-to-one on the keys that occur, so runs of equal keys are the runs of
 * equal packed keys; they are sorted by psi_cmp_keys. */
static void psi_sort(psi_key *v, psi_key *tmp, size_t n, const uint8_t *base)
{
    size_t cnt[8][256];
    uint16_t rank[8][256];
    size_t bucket[(size_t)1 << PSI_DIGIT_MAX_BITS];
    unsigned shift[8], width = 0;
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = v[i].k;
        for (int b = 0; b < 8; b++)
            cnt[b][(k >> (8 * b)) & 0xff]++;
    }
    for (int b = 0; b < 8; b++) { /* byte 0 is the least significant */
        unsigned r = 0;
        for (int x = 0; x < 256; x++)
            rank[b][x] = (uint16_t)(cnt[b][x] ? r++ : 0);
        unsigned w = 0;
        while (((unsigned)1 << w) < r)
            w++;
        shift[b] = width;
        width += w; /* <= 64: at most 8 bits a byte */
    }
    if (width == 0)
        goto runs; /* every key equal */
    for (size_t i = 0; i < n; i++) {
        uint64_t k = v[i].k, pk = 0;
        for (int b = 0; b < 8; b++)
            pk |= (uint64_t)rank[b][(k >> (8 * b)) & 0xff] << shift[b];
        v[i].k = pk;
    }
    /* MSD first: one scatter by the top digit (through memory), then each
     * bucket, a few thousand keys at most for uniform ids, is sorted LSD
     * on the remaining bits while it is in cache, ping-ponging between
     * its range of tmp and the same range of v */
    unsigned tbits = width < PSI_DIGIT_MAX_BITS ? width : PSI_DIGIT_MAX_BITS;
    unsigned rest = width - tbits, tsh = rest;
    size_t buckets = (size_t)1 << tbits;
    memset(bucket, 0, buckets * sizeof *bucket);
    for (size_t i = 0; i < n; i++)
        bucket[v[i].k >> tsh]++;
    size_t sum = 0;
    for (size_t x = 0; x < buckets; x++) {
        size_t c = bucket[x];
        bucket[x] = sum;
        sum += c;
    }
    for (size_t i = 0; i < n; i++)
        tmp[bucket[v[i].k >> tsh]++] = v[i];
    /* bucket[x] is now the end of bucket x */
    unsigned passes = rest ? (rest + 7) / 8 : 0;
    unsigned dbits = passes ? (rest + passes - 1) / passes : 0;
    uint64_t dmask = ((uint64_t)1 << dbits) - 1;
    size_t lo = 0;
    for (size_t x = 0; x < buckets; x++) {
        size_t hi = bucket[x], m = hi - lo;
        psi_key *src = tmp + lo, *dst = v + lo;
        if (m > 1 && m <= 32) {
            for (size_t i = 1; i < m; i++) { /* insertion sort, in tmp */
                psi_key t = src[i];
                size_t j = i;
                while (j > 0 && src[j - 1].k > t.k) {
                    src[j] = src[j - 1];
                    j--;
                }
                src[j] = t;
            }
        } else if (m > 1) {
            for (unsigned q = 0; q < passes; q++) {
                unsigned sh = q * dbits;
                size_t c2[256] = {0};
                for (size_t i = 0; i < m; i++)
                    c2[(src[i].k >> sh) & dmask]++;
                size_t s2 = 0;
                for (size_t d = 0; d <= dmask; d++) {
                    size_t c = c2[d];
                    c2[d] = s2;
                    s2 += c;
                }
                for (size_t i = 0; i < m; i++)
                    dst[c2[(src[i].k >> sh) & dmask]++] = src[i];
                psi_key *t = src;
                src = dst;
                dst = t;
            }
        }
        if (src != v + lo)
            memcpy(v + lo, src, m * sizeof *v);
        lo = hi;
    }
runs:
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j].k == v[i].k)
            j++;
        if (j - i > 1)
            qsort_r(v + i, j - i, sizeof *v, psi_cmp_keys, (void *)base);
        i = j;
    }
}

/* ------------------------------------------------------------- compute */

#ifdef PSI_PROFILE
#include <time.h>
static double psi_t(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
#define PSI_T(name) fprintf(stderr, "%-10s %.1f ms\n", name, (psi_t() - t0_) * 1e3), t0_ = psi_t()
#else
#define PSI_T(name) ((void)0)
#endif

/* The general path: any ids (see the top of this file). threads: large
 * inputs take a helper thread (else all on this one: the same result). */
static mt_status psi_compute_general(const mt_psi_input *in, size_t n, uint64_t seed,
                                     bool threads, uint8_t **out, size_t *out_len,
                                     size_t *count, mt_err *err)
{
#ifdef PSI_PROFILE
    double t0_ = psi_t();
#endif
    size_t small = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i].len < in[small].len)
            small = i;
        total += in[i].len;
    }
    bool two = threads && total >= PSI_PAR_MIN;

    mt_status st = MT_OK;
    psi_gin *g = calloc(2, sizeof *g); /* the inputs counted and scattered at once */
    psi_part *parts = calloc(n, sizeof *parts); /* parts[0]: build; then rounds 2..n */
    psi_part **probes = calloc(n, sizeof *probes);
    psi_gjoin J[2];
    psi_key *keys = NULL, *tmp = NULL;
    size_t *kept = NULL, nparts = 0, m = 0, bufcap = 16; /* slack: short ids copied as 16 B */
    uint8_t *buf = NULL, *keymem = NULL; /* keymem: keys' own allocation, if any */
    size_t keymem_len = 0;
    psi_part *reuse = NULL; /* the probe whose entries hold the keys (and the output) */
    bool joined = false;
    memset(J, 0, sizeof J);
    if (!g || !parts || !probes) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    /* count and partition, the smallest input first, then the others in
     * order (their rounds); every input is scanned, so that an overlong id
     * fails the task even when the intersection is already known empty.
     * Two inputs at a time when two: both counted at once, then their
     * memory taken in order, then both scattered at once; the first error
     * in the order of one input after the other (count 0, partition 0,
     * count 1, ...) is the one reported. */
    unsigned bits = 0;
    bool empty = false;
    for (size_t k0 = 0; k0 < n; k0 += two ? 2 : 1) {
        size_t w = two && k0 + 1 < n ? 2 : 1;
        for (size_t j = 0; j < w; j++) {
            size_t k = k0 + j;
            g[j].in = &in[k == 0 ? small : (k <= small ? k - 1 : k)];
            g[j].seed = seed;
            g[j].pt = NULL;
        }
        psi_two(psi_count_job, &g[0], w == 2 ? &g[1] : NULL);
        PSI_T("count");
        for (size_t j = 0; j < w; j++) {
            size_t k = k0 + j;
            if ((st = g[j].st) != MT_OK) {
                if (err)
                    *err = g[j].err;
                break;
            }
            if (k == 0)
                while (bits < PSI_PART_MAX_BITS && ((size_t)PSI_PART_TARGET << bits) < g[j].ids)
                    bits++;
            empty = empty || g[j].ids == 0;
            if (empty)
                continue;
            parts[k].in = g[j].in;
            g[j].bits = bits;
            if ((st = psi_part_alloc(&parts[k], &g[j].wc, g[j].hist, g[j].ids, bits, err)) !=
                MT_OK)
                break;
            g[j].pt = &parts[k];
        }
        /* scatter what was allocated (an error above: nothing, it fails) */
        for (size_t j = 0; j < w; j++)
            if (st != MT_OK && g[j].pt) {
                psi_wc_free(&g[j].wc, g[j].bits);
                g[j].pt = NULL;
            }
        if (st != MT_OK)
            goto out;
        psi_two(psi_scatter_gjob, &g[0], w == 2 ? &g[1] : NULL);
        for (size_t j = 0; j < w; j++)
            if (g[j].pt && (st = g[j].st) != MT_OK) {
                if (err)
                    *err = g[j].err;
                goto out;
            }
        PSI_T("partition");
    }
    if (empty)
        goto out;

    /* join partition by partition: when two, the partitions from pm on
     * (about half of the build input's ids) on a helper thread with its
     * own table */
    nparts = (size_t)1 << bits;
    size_t pm = nparts;
    if (two && nparts >= 2) {
        pm = 1;
        while (pm < nparts - 1 && parts[0].off[pm] < parts[0].n / 2)
            pm++;
    }
    size_t maxb[2] = {0, 0};
    for (size_t p = 0; p < nparts; p++) {
        size_t nb = parts[0].off[p + 1] - parts[0].off[p], *mb = &maxb[p >= pm];
        *mb = nb > *mb ? nb : *mb;
    }
    if (maxb[0] > UINT32_MAX - 1 || maxb[1] > UINT32_MAX - 1) {
        st = mt_err_set(err, MT_EINVAL, "psi: too many ids in input '%s'", in[small].slot);
        goto out;
    }
    kept = malloc(nparts * sizeof *kept);
    for (size_t k = 1; k < n; k++)
        probes[k - 1] = &parts[k];
    for (int h = 0; h < 2; h++) {
        J[h] = (psi_gjoin){{NULL, NULL, maxb[h]}, &parts[0], probes, n - 1, h ? pm : 0,
                           h ? nparts : pm, kept};
        if (h == 1 && pm == nparts)
            break;
        size_t tsize = 16;
        while (tsize < 2 * maxb[h])
            tsize <<= 1;
        J[h].js.tab = psi_big_alloc(tsize * sizeof *J[h].js.tab);
        J[h].js.round = malloc((maxb[h] ? maxb[h] : 1) * sizeof *J[h].js.round);
        if (!J[h].js.tab || !J[h].js.round)
            break;
    }
    if (!kept || !J[0].js.tab || !J[0].js.round ||
        (pm < nparts && (!J[1].js.tab || !J[1].js.round))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for the join table");
        goto out;
    }
    psi_two(psi_gjoin_job, &J[0], pm < nparts ? &J[1] : NULL);
    for (size_t p = 0; p < nparts; p++)
        m += kept[p];
    joined = true; /* all but the survivors are wiped */
    PSI_T("join");
    if (m == 0)
        goto out;

    /* sort the survivors and write them out. Memory already touched is
     * reused (fresh pages cost a fault each): the keys and the output go
     * where the largest probe input's entries were (wiped by the join). */
    for (size_t k = 1; k < n; k++)
        if (!reuse || parts[k].n > reuse->n)
            reuse = &parts[k];
    for (size_t p = 0; p < nparts; p++) {
        const psi_ent *e = parts[0].ent + parts[0].off[p];
        for (size_t i = 0; i < kept[p]; i++)
            bufcap += psi_ent_len(&e[i]) + 1;
    }
    size_t room = reuse->n * sizeof(psi_ent), keybytes = 2 * m * sizeof(psi_key);
    if (keybytes <= room) {
        keys = (psi_key *)(void *)reuse->ent;
    } else {
        if (!(keymem = psi_big_alloc(keybytes))) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory for an intersection of %zu ids", m);
            goto out;
        }
        keymem_len = keybytes;
        keys = (psi_key *)(void *)keymem;
    }
    tmp = keys + m;
    size_t k = 0;
    for (size_t p = 0; p < nparts; p++) {
        const psi_ent *e = parts[0].ent + parts[0].off[p];
        for (size_t i = 0; i < kept[p]; i++) {
            keys[k].k = __builtin_bswap64(e[i].p0);
            keys[k].e = &e[i];
            k++;
        }
    }
    const uint8_t *base = in[small].data;
    PSI_T("keys");
    psi_sort(keys, tmp, m, base);
    PSI_T("sort");
    /* the output is written after the keys when it fits there, and moved
     * to the front of that allocation, which becomes *out */
    uint8_t *region = keymem ? keymem : (uint8_t *)reuse->ent;
    size_t region_len = keymem ? keymem_len : room;
    bool in_region = region_len - m * sizeof(psi_key) >= bufcap;
    if (in_region) {
        buf = region + m * sizeof(psi_key);
    } else if (!(buf = malloc(bufcap))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for an intersection of %zu ids", m);
        goto out;
    }
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        if (i + 8 < m)
            __builtin_prefetch(keys[i + 8].e);
        const psi_ent *e = keys[i].e;
        size_t len = psi_ent_len(e);
        if (len <= 16) {
            memcpy(buf + o, &e->p0, 8);
            memcpy(buf + o + 8, &e->p1, 8);
        } else {
            memcpy(buf + o, base + e->p1, len);
        }
        o += len;
        buf[o++] = '\n';
    }
    if (in_region) {
        memmove(region, buf, o);
        mt_wipe(region + o, region_len - o);
        buf = region;
        bufcap = region_len;
        if (keymem)
            keymem = NULL;
        else
            reuse->ent = NULL;
    } else {
        mt_wipe(buf + o, bufcap - o);
    }
    keys = NULL; /* wiped with their allocation below, or with the output's */
    PSI_T("output");
    *out = buf;
    buf = NULL;
    *out_len = o;
    *count = m;
out:
    if (buf) {
        mt_wipe(buf, bufcap);
        free(buf);
    }
    if (keymem) {
        mt_wipe(keymem, keymem_len);
        free(keymem);
    }
    for (int h = 0; h < 2; h++) {
        free(J[h].js.tab);
        free(J[h].js.round);
    }
    for (size_t i = 0; parts && i < n; i++) {
        if (parts[i].ent && (!joined || &parts[i] == reuse))
            mt_wipe(parts[i].ent, parts[i].n * sizeof *parts[i].ent); /* keys are there */
        else if (i == 0 && joined)
            for (size_t p = 0; p < nparts; p++)
                mt_wipe(parts[0].ent + parts[0].off[p], kept[p] * sizeof(psi_ent));
        free(parts[i].ent);
        free(parts[i].off);
    }
    free(kept);
    free(g);
    free(parts);
    free(probes);
    PSI_T("free");
    return st;
}

/* ------------------------------------------------------------- fast path
 *
 * Ids of exactly 16 hex digits (the common case: 64-bit ids printed as
 * hex), with every letter of every input in one case (all a-f or all A-F;
 * digits go with either), are parsed once into their 64-bit values, a
 * bijection on such ids whose numeric order is their bytewise order. Any
 * other id anywhere (another length, another byte, letters in both cases,
 * a last line's CR kept) makes psi_fast give up before it has produced
 * anything, and the general path above runs instead on the same inputs:
 * both give the same bytes for every input the fast path accepts (the
 * unit tests and the psi_parse fuzzer compare them).
 *
 *  1. parse: every input into its own array of values (one SSE2 load,
 *     range check and nibble pack per id); the smallest input's (in
 *     bytes) minimum and maximum fix the partitioning: partition p holds
 *     the values v with (v - min) >> shift == p, about PSI_FAST_TARGET of
 *     the smallest input's ids each. A partition is a range of values, so
 *     the partitions in order are the values in order.
 *  2. scatter: a counting sort by partition into one array per input
 *     (8 bytes per id), staged a cache line at a time per partition; a
 *     value of another input outside [min, max] cannot be in the
 *     intersection and is dropped. Steps 1 and 2 run on two threads when
 *     the inputs are large (psi_run: each input's job touches only its
 *     own arrays).
 *  3. join, partition by partition: a table of 64-byte buckets (psi_bkt,
 *     four values each, picked by a multiply-shift hash whose multiplier
 *     is drawn from the seed) over the smallest input's slice collapses
 *     its duplicates (round 1); every other input's slice moves the
 *     values it meets from round r - 1 to r; the values of round n
 *     survive. The table (about half a bucket per id: about 1 MiB for an
     even partition) is sized for L2: a value range whose largest partition
     holds over PSI_FAST_SKEW times an even one's ids (outliers beside a
     dense band) takes the general path instead, decided before the
     scatter.
 *  4. the survivors of a partition, in a range of 2^shift values, are
 *     sorted in cache (MSD radix on the bits below the partition bits,
 *     then insertion sort), and formatted as 16 hex digits and LF.
 *     Steps 3 and 4 of the second half of the partitions run on a helper
 *     thread (own table) when the inputs are large; its sorted survivors
 *     are formatted after the first half's (psi_joiner).
 * Memory: about 16 bytes per id of every input (parsed and scattered;
 * the parsed arrays but the smallest's are freed once scattered), besides
 * the decrypted inputs and the two halves' tables (each sized by its own
 * largest slice); the output goes to the sink 64 KiB at a time. An input
 * with scratch (mt_psi_input: the worker's buffer of it) needs no fresh
 * memory (issue 13: a fresh worker pays for every page it first touches):
 * when every line is 16 digits and a LF in one case it is parsed into its
 * own bytes (psi_parse_inplace; its text is put back, psi_unparse, if the
 * general path runs after all), and its scattered values go after the
 * parsed ones (or at its start, when parsed elsewhere). Memory the
 * fast path cannot get makes it give up like an id it does not take (all
 * it holds wiped and freed): the general path runs and reports any
 * shortfall of its own; but once the scatter has begun on an input's
 * scratch, the general path cannot run on it and the shortfall is
 * MT_ENOMEM here. Every copy of an id is wiped before it is freed (the
 * slices partition by partition as the join leaves them, while they are
 * in cache; what lies in an input's scratch with the input, by its owner). */

#define PSI_FAST_TARGET 16384u
#define PSI_FAST_MAX_BITS 12
/* the fast path takes a value range only when its largest partition holds
 * at most this many times the ids of an even one (else: the general path) */
#define PSI_FAST_SKEW 4u
#define PSI_HEXLINE 17 /* 16 digits and LF */
#define PSI_FAST_WC 8   /* values staged per partition in the scatter */

enum { PSI_CASE_LOWER = 1, PSI_CASE_UPPER = 2 };

#if !(defined(__SSE2__) && defined(__x86_64__))
/* hex digit value, or -1 */
static int psi_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
#endif

/* The 16 bytes at s as hex digits, s[0] the most significant, in *v;
 * returns the letter cases seen (PSI_CASE_*), or -1 when a byte is not a
 * hex digit. Reads exactly s[0..16). */
static inline int psi_hex16(const uint8_t *s, uint64_t *v)
{
#if defined(__SSE2__) && defined(__x86_64__)
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    /* signed compares: bytes >= 0x80 are negative and match no range */
    __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i lo = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('a' - 1)),
                               _mm_cmplt_epi8(x, _mm_set1_epi8('f' + 1)));
    __m128i up = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                               _mm_cmplt_epi8(x, _mm_set1_epi8('F' + 1)));
    int ml = _mm_movemask_epi8(lo), mu = _mm_movemask_epi8(up);
    if ((_mm_movemask_epi8(dig) | ml | mu) != 0xffff)
        return -1;
    /* digit: low nibble; letter: low nibble + 9 */
    __m128i nib = _mm_add_epi8(_mm_and_si128(x, _mm_set1_epi8(0x0f)),
                               _mm_and_si128(_mm_or_si128(lo, up), _mm_set1_epi8(9)));
    /* 16-bit lane = even digit | odd digit << 8 -> byte even << 4 | odd */
    __m128i pair = _mm_and_si128(_mm_or_si128(_mm_slli_epi16(nib, 4), _mm_srli_epi16(nib, 8)),
                                 _mm_set1_epi16(0xff));
    uint64_t w = (uint64_t)_mm_cvtsi128_si64(_mm_packus_epi16(pair, pair));
    *v = __builtin_bswap64(w);
    return (ml ? PSI_CASE_LOWER : 0) | (mu ? PSI_CASE_UPPER : 0);
#else
    uint64_t r = 0;
    int cs = 0;
    for (int i = 0; i < 16; i++) {
        int d = psi_hexval(s[i]);
        if (d < 0)
            return -1;
        if (s[i] >= 'a')
            cs |= PSI_CASE_LOWER;
        else if (s[i] >= 'A')
            cs |= PSI_CASE_UPPER;
        r = r << 4 | (uint64_t)d;
    }
    *v = r;
    return cs;
#endif
}

/* The partitioning of the fast path: partition p holds the values v with
 * (v - mn) >> shift == p, for mn <= v <= mx. */
typedef struct psi_range {
    uint64_t mn, mx;
    unsigned shift;
    size_t *hist; /* NULL, or parts + 1 counters: hist[p + 1] counts p */
} psi_range;

/* Parses input in into v (room for cap values): true with *nv set when
 * every id is 16 hex digits (lines as in psi_scan: LF ends a line, a CR
 * before it is dropped, empty lines skipped); *cases collects the letter
 * cases; *lo, *hi the smallest and largest value (untouched when there is
 * none); with rg->hist, the values in rg's range are counted by partition
 * (*inr of them). False: not for the fast path. */
static bool psi_fast_parse(const mt_psi_input *in, uint64_t *v, size_t cap, size_t *nv,
                           int *cases, uint64_t *lo_, uint64_t *hi_, const psi_range *rg,
                           size_t *inr)
{
    const uint8_t *d = in->data;
    size_t len = in->len, pos = 0, n = 0, kept = 0;
    uint64_t lo = *lo_, hi = *hi_;
    uint64_t mn = rg ? rg->mn : 0, w = rg ? rg->mx - rg->mn : 0;
    unsigned shift = rg ? rg->shift : 0;
    size_t *hist = rg ? rg->hist : NULL;
    int cs = 0;
    while (pos < len) {
        size_t l, next;
        if (len - pos >= PSI_HEXLINE && d[pos + 16] == '\n') {
            l = 16;
            next = pos + PSI_HEXLINE;
        } else {
            const uint8_t *nl = memchr(d + pos, '\n', len - pos);
            l = nl ? (size_t)(nl - (d + pos)) : len - pos;
            next = pos + l + (nl ? 1 : 0);
            if (nl && l && d[pos + l - 1] == '\r')
                l--;
            if (l == 0) {
                pos = next;
                continue;
            }
            if (l != 16)
                return false;
        }
        uint64_t x;
        int c = psi_hex16(d + pos, &x); /* pos + 16 <= len: l == 16 */
        if (c < 0 || n == cap)
            return false;
        cs |= c;
        v[n++] = x;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        if (hist && x - mn <= w) { /* mn <= x <= mx */
            hist[((x - mn) >> shift) + 1]++;
            kept++;
        }
        pos = next;
    }
    *nv = n;
    *cases |= cs;
    *lo_ = lo;
    *hi_ = hi;
    if (inr)
        *inr = kept;
    return true;
}

/* Puts back the text of lines 0..n-1 of an input parsed in place by
 * psi_parse_inplace (d: its bytes, len of them; v == d: its values): each
 * line 16 hex digits in the case cs (PSI_CASE_*, at most one) and a LF but
 * where the input ended without one. Last line first: line i's text
 * [17 i, 17 i + 17) lies above the values 0..i-1 still to be read. */
static void psi_unparse(uint8_t *d, size_t len, const uint64_t *v, size_t n, int cs)
{
    const char *dg = cs & PSI_CASE_UPPER ? "0123456789ABCDEF" : "0123456789abcdef";
    uint8_t t[16];
    for (size_t i = n; i-- > 0;) {
        uint64_t x = v[i];
        for (int j = 15; j >= 0; j--, x >>= 4)
            t[j] = (uint8_t)dg[x & 15];
        memcpy(d + i * PSI_HEXLINE, t, 16);
        if (i * PSI_HEXLINE + 16 < len)
            d[i * PSI_HEXLINE + 16] = '\n';
    }
    mt_wipe(t, sizeof t); /* the last id's digits */
}

/* Parses input in into its own bytes (v == in->data, writable: value i's 8
 * bytes lie below line i's text, already read), as psi_fast_parse would,
 * when every line is 16 hex digits and a LF (the last one's LF optional)
 * in one letter case: the text can then be put back from the values
 * (psi_unparse). Any other input: its text is put back at the first line
 * that is not so, and false (then psi_fast_parse decides). */
static bool psi_parse_inplace(const mt_psi_input *in, uint64_t *v, size_t *nv, int *cases,
                              uint64_t *lo_, uint64_t *hi_)
{
    const uint8_t *d = in->data;
    size_t len = in->len, n = 0;
    uint64_t lo = *lo_, hi = *hi_;
    int cs = 0;
    for (size_t pos = 0; pos < len; pos += PSI_HEXLINE) {
        uint64_t x;
        int c = len - pos < 16 || (len - pos > 16 && d[pos + 16] != '\n')
                    ? -1
                    : psi_hex16(d + pos, &x);
        if (c < 0 || (cs | c) == (PSI_CASE_LOWER | PSI_CASE_UPPER)) {
            psi_unparse(in->scratch, len, v, n, cs);
            return false;
        }
        cs |= c;
        v[n++] = x; /* (8 n + 8 <= 17 n for n >= 1: below this line) */
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    *nv = n;
    *cases |= cs;
    *lo_ = lo;
    *hi_ = hi;
    return true;
}

/* Sorts v[0..m) ascending; the values differ only in their low 'bits' bits.
 * tmp has room for m values. MSD radix, insertion sort for small ranges;
 * qsort past a few levels (crafted clusters). */
static int psi_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void psi_sort_u64(uint64_t *v, uint64_t *tmp, size_t m, unsigned bits, int depth)
{
    if (m <= 24) {
        for (size_t i = 1; i < m; i++) {
            uint64_t t = v[i];
            size_t j = i;
            while (j > 0 && v[j - 1] > t) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = t;
        }
        return;
    }
    if (depth > 6 || bits == 0 || m > UINT32_MAX) {
        qsort(v, m, sizeof *v, psi_cmp_u64);
        return;
    }
    unsigned db = 1;
    while (db < 11 && ((size_t)4 << db) < m)
        db++;
    if (db > bits)
        db = bits;
    unsigned sh = bits - db;
    size_t nb = (size_t)1 << db;
    uint32_t cnt[(1u << 11) + 1];
    memset(cnt, 0, (nb + 1) * sizeof *cnt);
    for (size_t i = 0; i < m; i++)
        cnt[((v[i] >> sh) & (nb - 1)) + 1]++;
    for (size_t b = 1; b <= nb; b++)
        cnt[b] += cnt[b - 1];
    /* cnt[b]: start of bucket b */
    uint32_t pos[(1u << 11)];
    memcpy(pos, cnt, nb * sizeof *pos);
    for (size_t i = 0; i < m; i++)
        tmp[pos[(v[i] >> sh) & (nb - 1)]++] = v[i];
    memcpy(v, tmp, m * sizeof *v);
    for (size_t b = 0; b < nb; b++) {
        size_t s = cnt[b], e = cnt[b + 1];
        if (e - s > 1)
            psi_sort_u64(v + s, tmp + s, e - s, sh, depth + 1);
    }
}

/* A bucket of the join table (one cache line): four values and their
 * rounds, as offsets from the partition's epoch: r <= epoch is empty (the
 * table is zeroed once, and a partition's epoch is above every round of
 * the partitions before it). Slots fill in order; a full bucket spills
 * into the next one (linear probing by bucket). r[4] is a sink for
 * branch-free updates: always 0, never a round. The four compares of a
 * lookup are branch-free: the only branches left are the rare ones
 * (a duplicate, a full bucket), which predict well, where a slot table
 * mispredicts on every other lookup when half of the probes hit. */
#define PSI_BKT 4
#define PSI_PREFETCH 8 /* lookups ahead */
typedef struct psi_bkt {
    uint64_t k[PSI_BKT];
    uint32_t r[PSI_BKT + 1];
    uint32_t pad[3];
} psi_bkt;

/* Bits 0..3: slot i of bk is in use; bits 4..7: slot i holds x. The
 * table must be 16-byte aligned and ep < 2^31 (signed compares). */
static inline unsigned psi_bkt_look(const psi_bkt *bk, uint64_t x, uint32_t ep)
{
#if defined(__SSE2__) && defined(__x86_64__)
    const __m128i *v = (const __m128i *)(const void *)bk;
    __m128i X = _mm_set1_epi64x((long long)x);
    __m128i e01 = _mm_cmpeq_epi32(_mm_load_si128(v), X);
    __m128i e23 = _mm_cmpeq_epi32(_mm_load_si128(v + 1), X);
    e01 = _mm_and_si128(e01, _mm_shuffle_epi32(e01, _MM_SHUFFLE(2, 3, 0, 1)));
    e23 = _mm_and_si128(e23, _mm_shuffle_epi32(e23, _MM_SHUFFLE(2, 3, 0, 1)));
    unsigned eq = (unsigned)_mm_movemask_pd(_mm_castsi128_pd(e01)) |
                  (unsigned)_mm_movemask_pd(_mm_castsi128_pd(e23)) << 2;
    __m128i occ = _mm_cmpgt_epi32(_mm_load_si128(v + 2), _mm_set1_epi32((int)ep));
    return (unsigned)_mm_movemask_ps(_mm_castsi128_ps(occ)) | eq << 4;
#else
    return (unsigned)(bk->r[0] > ep) | (unsigned)(bk->r[1] > ep) << 1 |
           (unsigned)(bk->r[2] > ep) << 2 | (unsigned)(bk->r[3] > ep) << 3 |
           (unsigned)(bk->k[0] == x) << 4 | (unsigned)(bk->k[1] == x) << 5 |
           (unsigned)(bk->k[2] == x) << 6 | (unsigned)(bk->k[3] == x) << 7;
#endif
}

typedef struct psi_fast {
    uint64_t **sc;     /* n arrays: input k's values as parsed (k = 0: then
                        * the survivors), each freed once scattered */
    size_t *sccap;     /* room of sc[k] */
    bool *scin;        /* sc[k] is input k's own bytes (psi_parse_inplace):
                        * neither wiped nor freed here (the owner wipes) */
    uint64_t **part;   /* n arrays: input k's values by partition */
    bool *inplace;     /* part[k] lies in its input's scratch (not freed) */
    bool clobbered;    /* an input's text is lost (partitions in its scratch,
                        * not parsed in place): no general path */
    size_t *pn;        /* values in part[k] */
    size_t **off;      /* n arrays of P + 1 offsets */
    psi_bkt *tab, *tab2; /* the join tables (tab2: the helper thread's) */
    size_t tslots, tslots2; /* buckets of each */
    uint64_t *tmp, *tmp2; /* the sorts' buffers, for the largest slice of each half */
    size_t tmp_n, tmp_n2;
    atomic_bool bail;  /* parse: an input is not for the fast path, or no memory */
    uint8_t *chunk;    /* formatted output, PSI_CHUNK bytes */
    size_t parts, wiped; /* partitions; those whose slices are wiped */
} psi_fast;

/* Formatted output is handed on in pieces of at most this many bytes
 * (whole lines), each as soon as it is full. */
#define PSI_CHUNK (PSI_HEXLINE * 3855) /* 65535 bytes */

static void psi_fast_free(psi_fast *f, size_t n)
{
    for (size_t k = 0; f->sc && k < n; k++)
        if (f->sc[k] && (!f->scin || !f->scin[k])) {
            mt_wipe(f->sc[k], f->sccap[k] * sizeof *f->sc[k]);
            free(f->sc[k]);
        }
    free(f->sc);
    free(f->scin);
    free(f->sccap);
    for (size_t k = 0; f->part && k < n; k++) {
        if (f->part[k]) {
            if (!f->parts || f->wiped < f->parts) /* else wiped partition by partition */
                mt_wipe(f->part[k], f->pn[k] * sizeof *f->part[k]);
            if (!f->inplace || !f->inplace[k])
                free(f->part[k]);
        }
        if (f->off)
            free(f->off[k]);
    }
    psi_bkt *tabs[2] = {f->tab, f->tab2};
    uint64_t *tmps[2] = {f->tmp, f->tmp2};
    size_t tsl[2] = {f->tslots, f->tslots2}, tmn[2] = {f->tmp_n, f->tmp_n2};
    for (int i = 0; i < 2; i++) {
        if (tabs[i]) {
            mt_wipe(tabs[i], tsl[i] * sizeof *tabs[i]);
            free(tabs[i]);
        }
        if (tmps[i]) {
            mt_wipe(tmps[i], tmn[i] * sizeof *tmps[i]);
            free(tmps[i]);
        }
    }

    if (f->chunk) {
        mt_wipe(f->chunk, PSI_CHUNK);
        free(f->chunk);
    }
    free(f->part);
    free(f->inplace);
    free(f->pn);
    free(f->off);
}

/* Where the result goes: called with whole lines, in order. */
typedef mt_status (*psi_sink)(void *ctx, const uint8_t *buf, size_t len, mt_err *err);

/* One input of the fast path, for psi_run's jobs. */
typedef struct psi_in {
    const mt_psi_input *in;
    psi_fast *f;
    size_t k;              /* its place: 0 the smallest (build) input */
    const psi_range *rg;   /* scatter: the partitioning */
    size_t parts;
    uint64_t lo, hi;       /* parse: smallest and largest value */
    size_t nv;             /* parse: values */
    int cases;
    bool ok;               /* parse: every id was 16 hex digits */
    mt_status st;          /* MT_OK or MT_ENOMEM */
} psi_in;

/* Parses input p->in into f->sc[k] (allocated here). */
static void psi_parse_job(psi_in *p)
{
    psi_fast *f = p->f;
    if (atomic_load_explicit(&f->bail, memory_order_relaxed)) {
        p->ok = false; /* another input is not for the fast path: not parsed */
        return;
    }
    /* n ids take >= 17 n - 1 bytes; 2 more: the join's collect writes one
     * past the survivors, of the first half and of the second
     * (psi_join_range) */
    size_t cap = (p->in->len + 1) / PSI_HEXLINE + 3;
    p->lo = UINT64_MAX;
    p->hi = 0;
    /* an input with scratch (mt_psi_input) room for its values and, after
     * them, its partitions: parsed into its own bytes (no fresh memory,
     * issue 13) when its text allows (psi_parse_inplace) */
    uint8_t *scr = p->in->scratch;
    if (scr && scr == p->in->data && (uintptr_t)scr % _Alignof(uint64_t) == 0 &&
        cap <= p->in->len / (2 * sizeof(uint64_t))) {
        uint64_t *v = (uint64_t *)(void *)scr;
        if (psi_parse_inplace(p->in, v, &p->nv, &p->cases, &p->lo, &p->hi)) {
            f->sc[p->k] = v;
            f->sccap[p->k] = cap;
            f->scin[p->k] = true;
            p->ok = true;
            return;
        }
        p->lo = UINT64_MAX; /* (the text is back as it was) */
        p->hi = 0;
    }
    if (!(f->sc[p->k] = mt_big_alloc(cap * sizeof *f->sc[p->k]))) {
        p->st = MT_ENOMEM;
        atomic_store_explicit(&f->bail, true, memory_order_relaxed);
        return;
    }
    f->sccap[p->k] = cap;
    p->ok = psi_fast_parse(p->in, f->sc[p->k], cap, &p->nv, &p->cases, &p->lo, &p->hi, NULL,
                           NULL);
    if (!p->ok)
        atomic_store_explicit(&f->bail, true, memory_order_relaxed);
}

/* Whether the first non-empty line of in (as psi_fast_parse splits lines)
 * is 16 hex digits: a look before anything is allocated for the fast path
 * (an input of other ids is not parsed at all). An input of empty lines
 * only is eligible. */
static bool psi_fast_first_ok(const mt_psi_input *in)
{
    const uint8_t *d = in->data;
    size_t len = in->len, pos = 0;
    while (pos < len && (d[pos] == '\n' || (d[pos] == '\r' && len - pos >= 2 && d[pos + 1] == '\n')))
        pos += d[pos] == '\n' ? 1 : 2;
    if (pos == len)
        return true;
    uint64_t x;
    if (len - pos < 16 || psi_hex16(d + pos, &x) < 0)
        return false;
    return len - pos == 16 || d[pos + 16] == '\n' ||
           (d[pos + 16] == '\r' && len - pos >= 18 && d[pos + 17] == '\n');
}

/* Counts input k's values by partition (those in the range: f->pn[k]) and
 * scatters them into f->part[k]: the input's scratch when it has one that
 * holds them (its bytes, parsed, are not read again; issue 13: its pages
 * are already touched, fresh ones would each be a fault and a zeroing),
 * else a new array; then its parsed values are wiped and freed (but the
 * smallest input's: its array takes the survivors). */
static void psi_scatter_job(psi_in *p)
{
    psi_fast *f = p->f;
    size_t k = p->k, parts = p->parts, nv = p->nv;
    const uint64_t *v = f->sc[k];
    uint64_t mn = p->rg->mn, w = p->rg->mx - p->rg->mn;
    unsigned shift = p->rg->shift;
    size_t *off = f->off[k] = calloc(parts + 1, sizeof *off);
    if (!off) {
        p->st = MT_ENOMEM;
        return;
    }
    size_t kept = 0;
    for (size_t j = 0; j < nv; j++) {
        uint64_t x = v[j];
        if (x - mn <= w) { /* mn <= x <= mx */
            off[((x - mn) >> shift) + 1]++;
            kept++;
        }
    }
    for (size_t q = 1; q <= parts; q++)
        off[q] += off[q - 1];
    f->pn[k] = kept;
    /* staged PSI_FAST_WC values (a cache line) at a time per partition,
     * so that the scatter writes whole lines */
    size_t *cur = malloc(parts * sizeof *cur);
    uint8_t *wfill = calloc(parts, 1);
    uint64_t *wbuf = malloc(parts * PSI_FAST_WC * sizeof *wbuf);
    /* in the input's scratch: after its values when they are there too */
    uint8_t *scr = p->in->scratch;
    size_t skip = f->scin[k] ? f->sccap[k] * sizeof(uint64_t) : 0;
    bool inplace = cur && wfill && wbuf && scr && scr == p->in->data &&
                   (uintptr_t)scr % _Alignof(uint64_t) == 0 && skip <= p->in->len &&
                   (kept ? kept : 1) <= (p->in->len - skip) / sizeof(uint64_t);
    scr += inplace ? skip : 0;
    uint64_t *dst = f->part[k] =
        inplace ? (uint64_t *)(void *)scr : mt_big_alloc((kept ? kept : 1) * sizeof *dst);
    f->inplace[k] = inplace;
    if (!cur || !wfill || !wbuf || !dst) {
        free(cur);
        free(wfill);
        free(wbuf);
        p->st = MT_ENOMEM;
        return;
    }
    memcpy(cur, off, parts * sizeof *cur);
    for (size_t j = 0; j < nv; j++) {
        uint64_t x = v[j];
        if (x - mn > w)
            continue;
        size_t q = (size_t)((x - mn) >> shift);
        uint64_t *wb = wbuf + q * PSI_FAST_WC;
        wb[wfill[q]] = x;
        if (++wfill[q] == PSI_FAST_WC) {
            memcpy(dst + cur[q], wb, PSI_FAST_WC * sizeof *wb);
            cur[q] += PSI_FAST_WC;
            wfill[q] = 0;
        }
    }
    for (size_t q = 0; q < parts; q++) /* the staged rest */
        memcpy(dst + cur[q], wbuf + q * PSI_FAST_WC, wfill[q] * sizeof *wbuf);
    mt_wipe(wbuf, parts * PSI_FAST_WC * sizeof *wbuf);
    free(wbuf);
    free(wfill);
    free(cur);
    if (k > 0 && !f->scin[k]) {
        mt_wipe(f->sc[k], f->sccap[k] * sizeof *f->sc[k]);
        free(f->sc[k]);
        f->sc[k] = NULL;
    }
}

/* (PSI_PAR_MIN, above: inputs this large are parsed and scattered two at
 * a time, a helper thread taking the odd places.) */

typedef struct psi_batch {
    psi_in *pi;
    size_t n;
    void (*job)(psi_in *);
} psi_batch;

static void *psi_batch_odd(void *arg)
{
    psi_batch *b = arg;
    for (size_t k = 1; k < b->n; k += 2)
        b->job(&b->pi[k]);
    return NULL;
}

/* Runs job on every input: on two threads when the inputs are large (the
 * helper the odd places, this thread the even ones), else in turn. */
static void psi_run(psi_in *pi, size_t n, void (*job)(psi_in *), size_t total)
{
    psi_batch b = {pi, n, job};
    pthread_t th;
    pthread_attr_t at;
    bool two = false;
    if (total >= PSI_PAR_MIN && n >= 2 && pthread_attr_init(&at) == 0) {
        two = pthread_attr_setstacksize(&at, (size_t)1 << 20) == 0 &&
              pthread_create(&th, &at, psi_batch_odd, &b) == 0;
        pthread_attr_destroy(&at);
    }
    for (size_t k = 0; k < n; k += two ? 2 : 1)
        job(&pi[k]);
    if (two)
        pthread_join(th, NULL);
}

/* The join of partitions [p0, p1) (steps 3 and 4): each partition's
 * survivors are sorted in surv, after the partitions before it (m in
 * all), then formatted and handed to sink when there is one (st: its
 * status); every partition's slices are wiped as it is left (done: how
 * many). One joiner per thread, each with its own table and buffer. */
typedef struct psi_joiner {
    psi_fast *f;
    size_t n;
    const psi_range *rg;
    uint64_t mul;
    psi_bkt *tab;          /* f->tslots buckets, zeroed */
    uint64_t *tmp;         /* f->tmp_n values */
    uint64_t *surv;
    size_t m;
    size_t p0, p1, done;
    const uint16_t *pair;  /* formatting: two digits per byte value */
    uint8_t *chunk;        /* PSI_CHUNK bytes, fill used */
    size_t fill;
    psi_sink sink;
    void *sink_ctx;
    mt_err *err;
    mt_status st;
} psi_joiner;

/* Formats v[0..cnt) (values - mn) into J's chunk, handing full chunks on. */
static void psi_format(psi_joiner *J, const uint64_t *v, size_t cnt)
{
    uint64_t mn = J->rg->mn;
    for (size_t j = 0; j < cnt && J->st == MT_OK; j++) {
        if (J->fill == PSI_CHUNK) {
            if ((J->st = J->sink(J->sink_ctx, J->chunk, J->fill, J->err)) != MT_OK)
                return;
            J->fill = 0;
        }
        uint64_t x = v[j] + mn;
        uint8_t *o = J->chunk + J->fill;
        for (int q = 0; q < 8; q++)
            memcpy(o + 2 * q, &J->pair[(x >> (56 - 8 * q)) & 0xff], 2);
        o[16] = '\n';
        J->fill += PSI_HEXLINE;
    }
}

static void psi_join_range(psi_joiner *J)
{
    psi_fast *f = J->f;
    size_t n = J->n;
    uint64_t mul = J->mul, *surv = J->surv;
    uint32_t ep = 0; /* the partition's epoch */
    for (size_t p = J->p0; p < J->p1 && J->st == MT_OK; p++) {
        const uint64_t *b = f->part[0] + f->off[0][p];
        size_t nb = f->off[0][p + 1] - f->off[0][p];
        if (nb == 0)
            goto next;
        size_t tsz = 4;
        while (tsz * 2 < nb)
            tsz <<= 1;
        unsigned tb = (unsigned)__builtin_ctzll(tsz);
        size_t tmask = tsz - 1;
        psi_bkt *t = J->tab;
        size_t alive = 0;
        for (size_t j = 0; j < nb; j++) {
            uint64_t x = b[j];
            size_t h = (size_t)((x * mul) >> (64 - tb));
            if (j + PSI_PREFETCH < nb) /* the bucket of a later value: latency hidden */
                __builtin_prefetch(&t[(b[j + PSI_PREFETCH] * mul) >> (64 - tb)], 1);
            for (;;) {
                psi_bkt *bk = &t[h];
                unsigned lk = psi_bkt_look(bk, x, ep), occ = lk & 15;
                if ((lk >> 4) & occ)
                    break; /* a duplicate */
                if (occ != (1u << PSI_BKT) - 1) {
                    unsigned i = (unsigned)__builtin_ctz(~occ);
                    bk->k[i] = x;
                    bk->r[i] = ep + 1;
                    alive++;
                    break;
                }
                h = (h + 1) & tmask;
            }
        }
        uint32_t r = ep + 1;
        for (size_t k = 1; k < n && alive; k++) {
            r++;
            const uint64_t *q = f->part[k] + f->off[k][p];
            size_t nq = f->off[k][p + 1] - f->off[k][p];
            alive = 0;
            for (size_t j = 0; j < nq; j++) {
                uint64_t x = q[j];
                size_t h = (size_t)((x * mul) >> (64 - tb));
                if (j + PSI_PREFETCH < nq)
                    __builtin_prefetch(&t[(q[j + PSI_PREFETCH] * mul) >> (64 - tb)], 1);
                for (;;) {
                    psi_bkt *bk = &t[h];
                    unsigned lk = psi_bkt_look(bk, x, ep), occ = lk & 15;
                    unsigned hit = (lk >> 4) & occ;
                    /* slot of the hit, or the sink r[4] (0: never r - 1) */
                    uint32_t *rp = &bk->r[__builtin_ctz(hit | (1u << PSI_BKT))];
                    uint32_t up = *rp == r - 1;
                    *rp += up;
                    alive += up;
                    if (hit | (occ ^ ((1u << PSI_BKT) - 1)))
                        break; /* found, or a bucket with room: not further */
                    h = (h + 1) & tmask;
                }
            }
        }
        uint32_t last = ep + (uint32_t)n;
        ep += (uint32_t)n; /* every slot of this partition is now empty for the next */
        if (r != last || !alive)
            goto next;
        size_t m0 = J->m, m = m0;
        /* branch-free (about half of them survive): surv[m] is written
         * before m counts it, one past the survivors (room: psi_parse_job) */
        for (size_t h = 0; h < tsz; h++)
            for (unsigned i = 0; i < PSI_BKT; i++) {
                surv[m] = t[h].k[i] - J->rg->mn;
                m += t[h].r[i] == last;
            }
        J->m = m;
        psi_sort_u64(surv + m0, J->tmp, m - m0, J->rg->shift, 0);
        if (J->sink)
            psi_format(J, surv + m0, m - m0);
    next:
        /* this partition's slices (copies of ids) are wiped while they are
         * still in cache, not in one more pass over all of them at the end */
        for (size_t k = 0; k < n; k++)
            mt_wipe(f->part[k] + f->off[k][p], (f->off[k][p + 1] - f->off[k][p]) * sizeof(uint64_t));
        J->done++;
    }
}

static void *psi_join_thread(void *arg)
{
    psi_join_range(arg);
    return NULL;
}

/* 1: done (*st the result; on MT_OK the intersection went to sink, *count
 * its size); 0: not for the fast path, nothing given to sink and no
 * input's scratch written. */
static int psi_fast_compute(const mt_psi_input *in, size_t n, uint64_t seed, bool threads,
                            psi_sink sink, void *sink_ctx, size_t *count, mt_status *st,
                            mt_err *err)
{
#ifdef PSI_PROFILE
    double t0_ = psi_t();
#endif
    psi_fast f = {0};
    int done = 1;
    *st = MT_OK;
    *count = 0;
    size_t small = 0;
    for (size_t i = 1; i < n; i++)
        if (in[i].len < in[small].len)
            small = i;
    /* a quick look before any allocation: the first id of each input */
    for (size_t i = 0; i < n; i++)
        if (!psi_fast_first_ok(&in[i]))
            return 0;
    f.sc = calloc(n, sizeof *f.sc);
    f.sccap = calloc(n, sizeof *f.sccap);
    f.scin = calloc(n, sizeof *f.scin);
    f.part = calloc(n, sizeof *f.part);
    f.inplace = calloc(n, sizeof *f.inplace);
    f.pn = calloc(n, sizeof *f.pn);
    f.off = calloc(n, sizeof *f.off);
    atomic_init(&f.bail, false);
    psi_in *pi = calloc(n, sizeof *pi);
    size_t *h0 = NULL;
    /* from here on, anything the fast path cannot do (an id it does not
     * take, memory it cannot get, a skewed value range) ends in 'fall back'
     * (done 0): nothing has been handed to sink before the join */
    done = 0;
    if (!f.sc || !f.sccap || !f.scin || !f.part || !f.inplace || !f.pn || !f.off || !pi)
        goto out;
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        pi[k].in = &in[k == 0 ? small : (k <= small ? k - 1 : k)];
        pi[k].f = &f;
        pi[k].k = k;
        total += pi[k].in->len;
    }
    if (!threads)
        total = 0; /* below PSI_PAR_MIN: all on this thread */
    /* parse every input (two at a time when they are large; once one is
     * not eligible, the inputs not yet started are not parsed) */
    psi_run(pi, n, psi_parse_job, total);
    PSI_T("f_parse");
    int cases = 0;
    bool empty = false;
    for (size_t k = 0; k < n; k++) {
        cases |= pi[k].cases;
        if (pi[k].st != MT_OK || !pi[k].ok || cases == (PSI_CASE_LOWER | PSI_CASE_UPPER))
            goto out;
    }
    for (size_t k = 0; k < n; k++)
        empty = empty || pi[k].nv == 0;
    size_t parts = 1;
    psi_range rg = {pi[0].lo, pi[0].hi, 0, NULL};
    if (!empty) {
        unsigned bits = 0;
        while (bits < PSI_FAST_MAX_BITS && ((size_t)PSI_FAST_TARGET << bits) < pi[0].nv)
            bits++;
        unsigned span = rg.mn < rg.mx ? 64 - (unsigned)__builtin_clzll(rg.mx - rg.mn) : 0;
        rg.shift = span > bits ? span - bits : 0;
        if (rg.shift > 63) /* one partition would do: two, by the top bit */
            rg.shift = 63;
        parts = (size_t)((rg.mx - rg.mn) >> rg.shift) + 1;
        /* a skewed value range (outliers beside a dense band, sequential ids
         * and a sentinel) puts most ids in a few partitions, whose tables
         * would leave the cache and take more memory than the general path:
         * the smallest input's largest slice decides, before any scatter */
        if (!(h0 = calloc(parts, sizeof *h0)))
            goto out;
        const uint64_t *v0 = f.sc[0];
        size_t big = 0;
        for (size_t j = 0; j < pi[0].nv; j++) {
            size_t q = (size_t)((v0[j] - rg.mn) >> rg.shift);
            h0[q]++;
        }
        for (size_t q = 0; q < parts; q++)
            big = h0[q] > big ? h0[q] : big;
        size_t avg = pi[0].nv / parts;
        if (big > PSI_FAST_SKEW * (avg > PSI_FAST_TARGET ? avg : PSI_FAST_TARGET))
            goto out;
        if ((uint64_t)parts * n > INT32_MAX - 2)
            goto out; /* rounds would overflow: the general path */
        /* count and scatter every input (two at a time when large) */
        for (size_t k = 0; k < n; k++) {
            pi[k].rg = &rg;
            pi[k].parts = parts;
        }
        psi_run(pi, n, psi_scatter_job, total);
        PSI_T("f_scatter");
        /* an input whose partitions went into its buffer loses its text
         * unless it was parsed in place: its values (below the partitions)
         * are intact until the join (after the point of no fallback) and
         * give its text back; any other's text is gone */
        for (size_t k = 0; k < n; k++)
            f.clobbered = f.clobbered || (f.inplace[k] && !f.scin[k]);
        for (size_t k = 0; k < n; k++)
            if (pi[k].st != MT_OK)
                goto out;
        for (size_t k = 0; k < n; k++)
            empty = empty || f.pn[k] == 0; /* nothing in the smallest input's range */
    }
    if (empty) {
        done = 1;
        goto out; /* *count 0, nothing to write */
    }

    f.parts = parts;
    const size_t *off0 = f.off[0];
    /* large inputs: the partitions' second half (by ids of the smallest
     * input) is joined and sorted by a helper with its own table */
    size_t pm = parts;
    if (total >= PSI_PAR_MIN && parts >= 2) {
        pm = 1;
        while (pm < parts - 1 && off0[pm] < f.pn[0] / 2)
            pm++;
    }
    /* each half's table and sort buffer, for its own largest slice of the
     * smallest input; a table is zeroed once (populated zero pages) */
    size_t maxb[2] = {0, 0}, tsz[2];
    for (size_t p = 0; p < parts; p++) {
        size_t s = off0[p + 1] - off0[p], *m = &maxb[p >= pm];
        *m = s > *m ? s : *m;
    }
    if (maxb[0] > (size_t)UINT32_MAX / 2 || maxb[1] > (size_t)UINT32_MAX / 2)
        goto out; /* (not reached below the skew limit) the general path */
    for (int i = 0; i < 2; i++) {
        tsz[i] = 4; /* buckets: about 2 values of the slice each, at most */
        while (tsz[i] * 2 < maxb[i])
            tsz[i] <<= 1;
    }
    size_t ts = tsz[0];
    f.tslots = ts;
    f.tmp_n = maxb[0] ? maxb[0] : 1;
    f.tab = ts * sizeof *f.tab >= MT_BIG_ALLOC_HUGE ? mt_big_alloc(ts * sizeof *f.tab)
                                                  : aligned_alloc(64, ts * sizeof *f.tab);
    f.tmp = mt_big_alloc(f.tmp_n * sizeof *f.tmp);
    f.chunk = malloc(PSI_CHUNK);
    if (pm < parts) {
        f.tslots2 = tsz[1];
        f.tmp_n2 = maxb[1] ? maxb[1] : 1;
        f.tab2 = tsz[1] * sizeof *f.tab2 >= MT_BIG_ALLOC_HUGE
                     ? mt_big_alloc(tsz[1] * sizeof *f.tab2)
                     : aligned_alloc(64, tsz[1] * sizeof *f.tab2);
        f.tmp2 = mt_big_alloc(f.tmp_n2 * sizeof *f.tmp2);
    }
    if (!f.tab || !f.tmp || !f.chunk || (pm < parts && (!f.tab2 || !f.tmp2)))
        goto out; /* no memory for the join: the general path */
    done = 1;
    memset(f.tab, 0, ts * sizeof *f.tab);
    PSI_T("f_table");
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    const char *dg = cases & PSI_CASE_UPPER ? upper : lower;
    uint16_t pair[256];
    for (int x = 0; x < 256; x++)
        pair[x] = (uint16_t)((uint8_t)dg[x >> 4] | (uint16_t)(uint8_t)dg[x & 15] << 8);
    /* multiply-shift, odd multiplier from the seed */
    uint64_t mul = psi_mix(seed ^ PSI_K2, PSI_K1) | 1;
    /* the helper's survivors go after the first half's in the smallest
     * input's parsed array (one slot apart: the branch-free collect writes
     * one past its count), and are formatted once the first half is out */
    psi_joiner J = {&f, n, &rg, mul, f.tab, f.tmp, f.sc[0], 0, 0, pm, 0,
                    pair, f.chunk, 0, sink, sink_ctx, err, MT_OK};
    psi_joiner H = {&f, n, &rg, mul, f.tab2, f.tmp2, f.sc[0] + off0[pm] + 1, 0, pm, parts, 0,
                    pair, NULL, 0, NULL, NULL, NULL, MT_OK};
    pthread_t th;
    bool two = false;
    if (pm < parts) {
        memset(f.tab2, 0, tsz[1] * sizeof *f.tab2);
        pthread_attr_t at;
        if (pthread_attr_init(&at) == 0) {
            two = pthread_attr_setstacksize(&at, (size_t)1 << 20) == 0 &&
                  pthread_create(&th, &at, psi_join_thread, &H) == 0;
            pthread_attr_destroy(&at);
        }
    }
    psi_join_range(&J);
    if (two)
        pthread_join(th, NULL);
    else if (pm < parts)
        psi_join_range(&H); /* no helper thread: its half here, with its table */
    f.wiped = J.done + H.done == parts ? parts : 0;
    if (J.st == MT_OK && pm < parts && sink)
        psi_format(&J, H.surv, H.m);
    if (J.st == MT_OK && J.fill)
        J.st = sink(sink_ctx, f.chunk, J.fill, err);
    if ((*st = J.st) != MT_OK)
        goto out;
    PSI_T("f_join_sort_format");
    *count = J.m + H.m;
out:
    /* the general path: inputs parsed in place get their text back (over
     * their partitions, if any, wiped first and not wiped again after) */
    for (size_t k = 0; !done && !f.clobbered && pi && f.scin && k < n; k++)
        if (f.scin[k]) {
            if (f.part && f.part[k] && f.inplace && f.inplace[k]) {
                mt_wipe(f.part[k], f.pn[k] * sizeof *f.part[k]);
                f.part[k] = NULL;
            }
            psi_unparse(pi[k].in->scratch, pi[k].in->len, f.sc[k], pi[k].nv, pi[k].cases);
        }
    if (!done && f.clobbered) {
        /* an input's text was lost (its partitions in its scratch, its
         * text not parsed in place): the general path cannot run on it;
         * what failed after that is memory (the scatter's or the join's) */
        done = 1;
        *st = mt_err_set(err, MT_ENOMEM,
                         "psi: out of memory for the partitions or the join (memory limit?)");
    }
    if (pi) /* each input's smallest and largest id */
        mt_wipe(pi, n * sizeof *pi);
    free(pi);
    free(h0);
    psi_fast_free(&f, n);
    PSI_T("f_free");
    return done;
}

/* A growing result buffer (every old copy wiped). */
typedef struct psi_buf {
    uint8_t *p;
    size_t len, cap;
} psi_buf;

static mt_status psi_buf_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    psi_buf *b = ctx;
    if (len > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : PSI_CHUNK;
        while (cap - b->len < len)
            cap *= 2;
        uint8_t *p = mt_big_alloc(cap);
        if (!p)
            return mt_err_set(err, MT_ENOMEM, "out of memory for the intersection");
        if (b->len)
            memcpy(p, b->p, b->len);
        if (b->p) {
            mt_wipe(b->p, b->len); /* only the written bytes hold ids */
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return MT_OK;
}

static mt_status psi_check_n(size_t n, mt_err *err)
{
    if (n < 2)
        return mt_err_set(err, MT_EINVAL, "psi needs at least 2 inputs, got %zu", n);
    if (n > UINT16_MAX - 1)
        return mt_err_set(err, MT_EINVAL, "psi: at most %d inputs", UINT16_MAX - 1);
    return MT_OK;
}

/* The scratch buffers' ranges [scratch, scratch + len), sorted by start. */
typedef struct psi_span {
    uintptr_t lo, hi;
    size_t k;
} psi_span;

static int psi_cmp_span(const void *a, const void *b)
{
    const psi_span *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* psi_check_n, and the rule of mt_psi_input.scratch that no two inputs'
 * scratch buffers overlap (the fast path writes each input's as its own):
 * pairwise for a few inputs, else sorted by start. */
static mt_status psi_check_inputs(const mt_psi_input *in, size_t n, mt_err *err)
{
    mt_status st = psi_check_n(n, err);
    if (st != MT_OK)
        return st;
    size_t a = SIZE_MAX, b = SIZE_MAX;
    if (n <= 64) {
        for (size_t i = 0; i < n && a == SIZE_MAX; i++)
            for (size_t j = i + 1; j < n; j++) {
                if (!in[i].scratch || !in[j].scratch || !in[i].len || !in[j].len)
                    continue;
                uintptr_t li = (uintptr_t)in[i].scratch, lj = (uintptr_t)in[j].scratch;
                if (li < lj + in[j].len && lj < li + in[i].len) {
                    a = i;
                    b = j;
                    break;
                }
            }
    } else {
        psi_span *sp = malloc(n * sizeof *sp);
        if (!sp)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (in[i].scratch && in[i].len)
                sp[m++] = (psi_span){(uintptr_t)in[i].scratch,
                                     (uintptr_t)in[i].scratch + in[i].len, i};
        qsort(sp, m, sizeof *sp, psi_cmp_span);
        for (size_t q = 1, far = 0; q < m && a == SIZE_MAX; q++) {
            if (sp[q].lo < sp[far].hi) {
                a = sp[far].k < sp[q].k ? sp[far].k : sp[q].k;
                b = sp[far].k < sp[q].k ? sp[q].k : sp[far].k;
            }
            far = sp[q].hi > sp[far].hi ? q : far;
        }
        free(sp);
    }
    if (a != SIZE_MAX)
        return mt_err_set(err, MT_EINVAL,
                          "psi: inputs %zu and %zu have overlapping scratch buffers (each "
                          "input's scratch must be its own memory)",
                          a, b);
    return MT_OK;
}

mt_status mt_psi_compute_ex(const mt_psi_input *in, size_t n, uint64_t seed, unsigned flags,
                            uint8_t **out, size_t *out_len, size_t *count, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    *count = 0;
    mt_status st = psi_check_inputs(in, n, err);
    if (st != MT_OK)
        return st;
    if (!(flags & MT_PSI_GENERAL)) {
        /* the result is at most the smallest input's bytes and a LF (17
         * bytes per id, each id taking >= 17 bytes but the last): sized
         * once, its pages touched only as they are written */
        size_t cap = in[0].len;
        for (size_t i = 1; i < n; i++)
            cap = in[i].len < cap ? in[i].len : cap;
        psi_buf b = {malloc(cap + 1), 0, cap + 1};
        if (!b.p)
            return mt_err_set(err, MT_ENOMEM, "out of memory for the intersection");
        if (psi_fast_compute(in, n, seed, !(flags & MT_PSI_ONE_THREAD), psi_buf_sink, &b, count,
                             &st, err)) {
            if (st != MT_OK) {
                *count = 0;
                if (b.p)
                    mt_wipe(b.p, b.len);
                free(b.p);
                return st;
            }
            *out = b.p;
            *out_len = b.len;
            return MT_OK;
        }
        free(b.p); /* not the fast path: nothing was written to it */
    }
    if (flags & MT_PSI_FAST_ONLY)
        return mt_err_set(err, MT_EUNAVAIL, "psi: not every id is 16 hex digits of one case");
    return psi_compute_general(in, n, seed, !(flags & MT_PSI_ONE_THREAD), out, out_len, count,
                               err);
}

mt_status mt_psi_count(const mt_psi_input *in, size_t n, uint64_t seed, size_t *count,
                       mt_err *err)
{
    *count = 0;
    mt_status st = psi_check_inputs(in, n, err);
    if (st != MT_OK)
        return st;
    /* no sink: the fast path counts its survivors, formats nothing */
    if (psi_fast_compute(in, n, seed, true, NULL, NULL, count, &st, err)) {
        if (st != MT_OK)
            *count = 0;
        return st;
    }
    uint8_t *out = NULL;
    size_t len = 0;
    st = psi_compute_general(in, n, seed, true, &out, &len, count, err);
    if (out) {
        mt_wipe(out, len);
        free(out);
    }
    if (st != MT_OK)
        *count = 0;
    return st;
}

mt_status mt_psi_compute(const mt_psi_input *in, size_t n, uint64_t seed, uint8_t **out,
                         size_t *out_len, size_t *count, mt_err *err)
{
    return mt_psi_compute_ex(in, n, seed, 0, out, out_len, count, err);
}

/* ------------------------------------------------------------- built-in */

/* The built-in's outputs all get the same bytes (issue 13: 2 x 2^20 ids
 * write 2 x 8.9 MB, each encrypted under its own key). The result is staged
 * PSI_FAN_BUF bytes at a time; each full stage is written to the first
 * half of the outputs (output 0 when there are 2 or 3: the caller also
 * formats the result) by the caller and to the rest by one helper thread at
 * the same time, while
 * the caller goes on filling the other stage. Every output gets every byte
 * in order, as with one writer: the helper writes a stage only after the
 * caller handed it over (mutex), and the caller refills a stage only after
 * the helper is done with it. Small results (under one stage) and a helper
 * that cannot be started (tried once, at the first full stage) are written
 * by the caller alone, output by output.
 * The stages hold result ids: wiped when the fan closes. */
#define PSI_FAN_BUF ((size_t)256 << 10) /* one stage, in L2 while encrypted */

typedef struct psi_fan {
    mt_bctx *ctx;
    size_t split;          /* the caller writes outputs [0, split), the helper the rest */
    uint8_t *buf;          /* two stages of PSI_FAN_BUF bytes */
    size_t cur, fill;      /* the stage being filled, its bytes */
    size_t used[2];        /* bytes of each stage ever written (wiped at close) */
    bool started, failed;  /* helper running; a write failed (no more writes) */
    bool no_helper;        /* starting the helper failed once: not tried again */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const uint8_t *job;    /* the stage the helper writes; NULL: none */
    size_t job_len;
    bool quit;
    mt_status hst;         /* the helper's first failure (then it writes no more) */
    mt_err herr;
} psi_fan;

/* Writes buf to outputs from..to-1, in order; stops at the first failure. */
static mt_status psi_fan_write(mt_bctx *c, size_t from, size_t to, const uint8_t *buf,
                               size_t len, mt_err *err)
{
    for (size_t i = from; i < to; i++) {
        mt_status st = mt_bctx_output_write(c, i, buf, len, err);
        if (st != MT_OK)
            return st;
    }
    return MT_OK;
}

static void *psi_fan_thread(void *arg)
{
    psi_fan *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->job && !f->quit)
            pthread_cond_wait(&f->cv, &f->mu);
        if (!f->job)
            break; /* quit, nothing left */
        const uint8_t *b = f->job;
        size_t len = f->job_len;
        bool skip = f->hst != MT_OK;
        pthread_mutex_unlock(&f->mu);
        mt_status st =
            skip ? MT_OK : psi_fan_write(f->ctx, f->split, f->ctx->n_outputs, b, len, &f->herr);
        pthread_mutex_lock(&f->mu);
        if (st != MT_OK)
            f->hst = st;
        f->job = NULL;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Waits until the helper has written its stage; its failure, if any. */
static mt_status psi_fan_wait(psi_fan *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->job)
        pthread_cond_wait(&f->cv, &f->mu);
    mt_status st = f->hst;
    pthread_mutex_unlock(&f->mu);
    return st;
}

/* Writes the stage being filled to every output: with the helper when it
 * runs (or can be started, for a full stage), else here output by output.
 * The first failure is reported (the caller's outputs' before the helper's
 * of the same stage) and ends all writing. */
static mt_status psi_fan_flush(psi_fan *f, mt_err *err)
{
    mt_bctx *c = f->ctx;
    const uint8_t *b = f->buf + f->cur * PSI_FAN_BUF;
    size_t len = f->fill;
    if (len == 0)
        return MT_OK;
    f->fill = 0;
    if (!f->started && !f->no_helper && len == PSI_FAN_BUF && c->n_outputs >= 2) {
        pthread_attr_t at;
        if (pthread_attr_init(&at) == 0) {
            f->started = pthread_attr_setstacksize(&at, (size_t)1 << 20) == 0 &&
                         pthread_create(&f->th, &at, psi_fan_thread, f) == 0;
            pthread_attr_destroy(&at);
        }
        f->no_helper = !f->started; /* the rest of the stages: here */
    }
    if (!f->started)
        return psi_fan_write(c, 0, c->n_outputs, b, len, err);
    /* the helper is done with the other stage before it gets this one */
    mt_status hs = psi_fan_wait(f);
    if (hs != MT_OK) {
        if (err)
            *err = f->herr;
        return hs;
    }
    pthread_mutex_lock(&f->mu);
    f->job = b;
    f->job_len = len;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    mt_status st = psi_fan_write(c, 0, f->split, b, len, err);
    f->cur ^= 1; /* the caller fills the other stage meanwhile */
    return st;
}

/* psi_sink of the built-in: the same bytes to every output, staged. */
static mt_status psi_out_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    psi_fan *f = ctx;
    if (f->failed)
        return mt_err_set(err, MT_EINTERNAL, "psi: output written after a failure");
    while (len > 0) {
        size_t n = PSI_FAN_BUF - f->fill < len ? PSI_FAN_BUF - f->fill : len;
        memcpy(f->buf + f->cur * PSI_FAN_BUF + f->fill, buf, n);
        f->fill += n;
        if (f->fill > f->used[f->cur])
            f->used[f->cur] = f->fill;
        buf += n;
        len -= n;
        if (f->fill == PSI_FAN_BUF) {
            mt_status st = psi_fan_flush(f, err);
            if (st != MT_OK) {
                f->failed = true;
                return st;
            }
        }
    }
    return MT_OK;
}

static mt_status psi_fan_open(psi_fan *f, mt_bctx *ctx, mt_err *err)
{
    *f = (psi_fan){.ctx = ctx, .split = ctx->n_outputs / 2};
    if (pthread_mutex_init(&f->mu, NULL) != 0)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (pthread_cond_init(&f->cv, NULL) != 0) {
        pthread_mutex_destroy(&f->mu);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (!(f->buf = malloc(2 * PSI_FAN_BUF))) {
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        return mt_err_set(err, MT_ENOMEM, "out of memory for the outputs");
    }
    return MT_OK;
}

/* Writes what is staged (st == MT_OK: the run succeeded so far), stops the
 * helper once it is done with its stage, wipes the stages. Returns st, or
 * the first write failure. */
static mt_status psi_fan_close(psi_fan *f, mt_status st, mt_err *err)
{
    if (st == MT_OK && !f->failed)
        st = psi_fan_flush(f, err);
    if (f->started) {
        mt_status hs = psi_fan_wait(f);
        if (st == MT_OK && hs != MT_OK) {
            if (err)
                *err = f->herr;
            st = hs;
        }
        pthread_mutex_lock(&f->mu);
        f->quit = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->th, NULL);
    }
    /* (only what was written: a small result leaves most pages untouched) */
    mt_wipe(f->buf, f->used[0]);
    mt_wipe(f->buf + PSI_FAN_BUF, f->used[1]);
    free(f->buf);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    return st;
}

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
        in[i].scratch = ctx->inputs[i].scratch; /* the worker's: one buffer per input */
    }
    uint64_t seed = 0;
    mt_status st = mt_random((uint8_t *)&seed, sizeof seed, err);
    uint8_t *res = NULL;
    size_t res_len = 0, count = 0;
    psi_fan fan;
    bool fan_open = false;
    if (st == MT_OK)
        st = psi_check_inputs(in, ctx->n_inputs, err);
    if (st == MT_OK)
        fan_open = (st = psi_fan_open(&fan, ctx, err)) == MT_OK;
    /* the fast path writes every output as it formats the result; the
     * general one gives the whole result, written below */
    if (st == MT_OK && !psi_fast_compute(in, ctx->n_inputs, seed, true, psi_out_sink, &fan,
                                         &count, &st, err))
        st = psi_compute_general(in, ctx->n_inputs, seed, true, &res, &res_len, &count, err);
    free(in);
    if (st == MT_OK && res_len)
        st = psi_out_sink(&fan, res, res_len, err);
    if (fan_open)
        st = psi_fan_close(&fan, st, err);
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
