/* mt_vcache: see mt_vcache.h. A small array scanned linearly: at most a few
 * hundred 32-byte keys, far cheaper than one signature verification. */
#include "mt_vcache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct vc_entry {
    uint8_t key[32];
    int64_t verified_at, expires;
    uint64_t used; /* LRU tick */
    mt_attest_claims claims;
    mt_ratls_info info;
} vc_entry;

struct mt_vcache {
    pthread_mutex_t mu;
    vc_entry **slots; /* cap pointers, NULL when free */
    size_t cap;
    int64_t ttl_s;
    uint64_t tick;
    mt_vcache_stats stats;
};

static void slots_clear(mt_vcache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i])
            OPENSSL_cleanse(c->slots[i], sizeof *c->slots[i]);
        free(c->slots[i]);
        c->slots[i] = NULL;
    }
    c->stats.entries = 0;
}

mt_vcache *mt_vcache_new(size_t cap, int64_t ttl_s)
{
    if (cap > MT_VCACHE_MAX_CAP || ttl_s < 1)
        return NULL;
    mt_vcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cap && !(c->slots = calloc(cap, sizeof *c->slots))) {
        free(c);
        return NULL;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->slots);
        free(c);
        return NULL;
    }
    c->cap = cap;
    c->ttl_s = ttl_s;
    return c;
}

void mt_vcache_free(mt_vcache *c)
{
    if (!c)
        return;
    slots_clear(c);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static mt_vcache *g_cache;
static mt_vcache g_disabled = {.mu = PTHREAD_MUTEX_INITIALIZER, .ttl_s = 1};
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    g_cache = mt_vcache_new(MT_VCACHE_DEFAULT_CAP, MT_VCACHE_DEFAULT_TTL_S);
}

mt_vcache *mt_vcache_global(void)
{
    pthread_once(&g_once, global_init);
    return g_cache ? g_cache : &g_disabled; /* out of memory: a cache of 0 */
}

mt_status mt_vcache_configure(mt_vcache *c, size_t cap, int64_t ttl_s, mt_err *err)
{
    if (!c || cap > MT_VCACHE_MAX_CAP || ttl_s < 1)
        return mt_err_set(err, MT_EINVAL,
                          "verified-peer cache: capacity must be 0 to %u and TTL >= 1 s",
                          MT_VCACHE_MAX_CAP);
    vc_entry **ns = cap ? calloc(cap, sizeof *ns) : NULL;
    if (cap && !ns)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    slots_clear(c);
    memset(&c->stats, 0, sizeof c->stats);
    free(c->slots);
    c->slots = ns;
    c->cap = cap;
    c->ttl_s = ttl_s;
    pthread_mutex_unlock(&c->mu);
    return MT_OK;
}

void mt_vcache_key(const uint8_t *cert, size_t len, unsigned forms,
                   const uint8_t policy_digest[32], uint8_t key[32])
{
    static const uint8_t tag[] = "mesatee-vcache-v1";
    uint8_t ch[32], f[4] = {(uint8_t)forms, (uint8_t)(forms >> 8), (uint8_t)(forms >> 16),
                            (uint8_t)(forms >> 24)};
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned hl = 0;
    bool ok = m && EVP_Digest(cert, len, ch, &hl, EVP_sha256(), NULL) == 1 &&
              EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(m, tag, sizeof tag) == 1 && EVP_DigestUpdate(m, f, 4) == 1 &&
              EVP_DigestUpdate(m, ch, 32) == 1 && EVP_DigestUpdate(m, policy_digest, 32) == 1 &&
              EVP_DigestFinal_ex(m, key, &hl) == 1;
    EVP_MD_CTX_free(m);
    if (!ok) /* an all-zero key is never stored (see put): misses */
        memset(key, 0, 32);
}

static bool key_null(const uint8_t key[32])
{
    static const uint8_t zero[32];
    return memcmp(key, zero, 32) == 0;
}

/* The slot of key, or -1; called with the lock held. */
static long find(mt_vcache *c, const uint8_t key[32])
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i] && memcmp(c->slots[i]->key, key, 32) == 0)
            return (long)i;
    return -1;
}

static void drop_slot(mt_vcache *c, size_t i)
{
    OPENSSL_cleanse(c->slots[i], sizeof *c->slots[i]);
    free(c->slots[i]);
    c->slots[i] = NULL;
    c->stats.entries--;
}

bool mt_vcache_get(mt_vcache *c, const uint8_t key[32], int64_t now, mt_attest_claims *claims,
                   mt_ratls_info *info)
{
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    long i = key_null(key) ? -1 : find(c, key);
    if (i >= 0) {
        vc_entry *e = c->slots[i];
        if (now >= e->expires || now < e->verified_at) {
            /* over, or the clock went back before the verification */
            drop_slot(c, (size_t)i);
            c->stats.expired++;
        } else {
            e->used = ++c->tick;
            memcpy(claims, &e->claims, sizeof *claims);
            if (info)
                *info = e->info;
            hit = true;
        }
    }
    if (hit)
        c->stats.hits++;
    else
        c->stats.misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void mt_vcache_put(mt_vcache *c, const uint8_t key[32], int64_t verified_at,
                   const mt_attest_claims *claims, const mt_ratls_info *info)
{
    if (!claims || !info || key_null(key) || claims->valid_until == 0)
        return;
    int64_t exp = verified_at > INT64_MAX - c->ttl_s ? INT64_MAX : verified_at + c->ttl_s;
    /* notAfter is inclusive for the certificate check (at <= not_after) */
    if (info->not_after < INT64_MAX && info->not_after + 1 < exp)
        exp = info->not_after + 1;
    if (claims->valid_until < exp)
        exp = claims->valid_until;
    if (exp <= verified_at)
        return;
    vc_entry *n = malloc(sizeof *n);
    if (!n)
        return;
    memcpy(n->key, key, 32);
    n->verified_at = verified_at;
    n->expires = exp;
    memcpy(&n->claims, claims, sizeof *claims);
    n->info = *info;
    pthread_mutex_lock(&c->mu);
    if (!c->cap) {
        pthread_mutex_unlock(&c->mu);
        free(n);
        return;
    }
    long i = find(c, key);
    if (i >= 0) {
        drop_slot(c, (size_t)i);
    } else {
        size_t lru = 0;
        bool have_lru = false;
        for (size_t j = 0; j < c->cap; j++) {
            if (!c->slots[j]) {
                i = (long)j;
                break;
            }
            if (!have_lru || c->slots[j]->used < c->slots[lru]->used) {
                lru = j;
                have_lru = true;
            }
        }
        if (i < 0) {
            drop_slot(c, lru);
            c->stats.evicted++;
            i = (long)lru;
        }
    }
    n->used = ++c->tick;
    c->slots[i] = n;
    c->stats.entries++;
    c->stats.stored++;
    pthread_mutex_unlock(&c->mu);
}

void mt_vcache_drop(mt_vcache *c, const uint8_t key[32])
{
    pthread_mutex_lock(&c->mu);
    long i = find(c, key);
    if (i >= 0)
        drop_slot(c, (size_t)i);
    pthread_mutex_unlock(&c->mu);
}

void mt_vcache_stats_get(mt_vcache *c, mt_vcache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
