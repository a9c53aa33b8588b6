/* Tests of mt_vcache (the verified-peer cache of attested TLS) through the
 * one path every relying party uses, mt_policy_verify_cert, on the recorded
 * Gramine RA-TLS certificate (ra-tls/PROVENANCE.md) at its pinned time, and
 * of claims.valid_until (the end of what a verification relied on) on the
 * recorded SGX, TDX, SEV-SNP and Nitro evidence. The clock is the `now`
 * argument: a test moves it instead of sleeping. */
#include "test_attest_util.c"

#include <openssl/pem.h>
#include <pthread.h>
#include <openssl/x509.h>

#include "mt_policy.h"
#include "mt_ratls.h"
#include "mt_vcache.h"

#define AT 1685577600 /* 2023-06-01T00:00:00Z: the Gramine certificate's PCK chain is valid */
#define FORMS MT_RATLS_FORM_CCC

#define POLICY_FMT                                                                                 \
    "{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],\"min_level\":\"sgx\","                     \
    "\"measurements\":{\"gateway\":{\"mrenclave\":"                                                \
    "[\"0866e7ca11b9f4efe4bf39b2607f4e1299f111920d96d95719080f01b62b7585\"]}},"                    \
    "\"allow_debug\":%s,\"accepted_tcb_statuses\":[\"NotEvaluated\"],\"comment\":\"%s\"}"

static mt_policy *policy(const char *allow_debug, const char *comment)
{
    char j[1024];
    snprintf(j, sizeof j, POLICY_FMT, allow_debug, comment);
    mt_policy *p = NULL;
    mt_err err;
    if (mt_policy_parse(j, strlen(j), &p, &err) != MT_OK)
        fail_msg("policy: %s", err.msg);
    return p;
}

/* The Gramine certificate as DER (the form a TLS stack hands over). */
static uint8_t *gramine_der(size_t *len)
{
    size_t n;
    uint8_t *pem = tv_read("ra-tls/ccc-gramine-cert.pem", &n);
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(x);
    uint8_t *der = NULL;
    int dl = i2d_X509(x, &der);
    X509_free(x);
    assert_true(dl > 0);
    uint8_t *out = malloc((size_t)dl);
    assert_non_null(out);
    memcpy(out, der, (size_t)dl);
    OPENSSL_free(der);
    *len = (size_t)dl;
    return out;
}

static void reset(size_t cap, int64_t ttl)
{
    mt_err err;
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), cap, ttl, &err), MT_OK);
}

static mt_vcache_stats stats(void)
{
    mt_vcache_stats s;
    mt_vcache_stats_get(mt_vcache_global(), &s);
    return s;
}

static mt_status verify(const mt_policy *p, const uint8_t *der, size_t len, int64_t now,
                        mt_attest_claims *c, mt_ratls_info *info)
{
    mt_err err;
    mt_err_clear(&err);
    return mt_policy_verify_cert(p, der, len, FORMS, now, c, info, &err);
}

/* A hit returns exactly what a full verification returns. */
static void test_hit_same_result(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    mt_policy *p = policy("true", "a");
    mt_attest_claims *full = malloc(sizeof *full), *hit = malloc(sizeof *hit);
    assert_non_null(full);
    assert_non_null(hit);
    mt_ratls_info fi, hi;
    reset(0, 600); /* disabled: a full verification */
    memset(full, 0xa5, sizeof *full);
    assert_int_equal(verify(p, der, len, AT + 1, full, &fi), MT_OK);
    assert_int_equal(stats().hits, 0);
    reset(256, 600);
    assert_int_equal(verify(p, der, len, AT, hit, &hi), MT_OK);
    mt_vcache_stats s = stats();
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.stored, 1);
    assert_int_equal(s.hits, 0);
    memset(hit, 0x5a, sizeof *hit);
    memset(&hi, 0x5a, sizeof hi);
    assert_int_equal(verify(p, der, len, AT + 1, hit, &hi), MT_OK);
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.entries, 1);
    assert_memory_equal(full, hit, sizeof *full);
    assert_memory_equal(&fi, &hi, sizeof fi);
    assert_true(full->valid_until > AT); /* bounded by the PCK chain */
    /* info NULL on a hit, too */
    assert_int_equal(verify(p, der, len, AT + 2, hit, NULL), MT_OK);
    assert_int_equal(stats().hits, 2);
    /* PEM bytes of the same certificate are another key: verified in full */
    size_t pl;
    uint8_t *pem = tv_read("ra-tls/ccc-gramine-cert.pem", &pl);
    assert_int_equal(verify(p, pem, pl, AT + 3, hit, NULL), MT_OK);
    assert_int_equal(stats().stored, 2);
    free(pem);
    free(full);
    free(hit);
    mt_policy_free(p);
    free(der);
}

/* mt_policy_verify_x509 keys the cache by the certificate object's own
 * encoding: what it stores is found by mt_policy_verify_cert with the DER
 * bytes the object was read from (and the reverse), with the same claims. */
static void test_x509_own_encoding(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    const uint8_t *p8 = der;
    X509 *x = d2i_X509(NULL, &p8, (long)len);
    assert_non_null(x);
    assert_ptr_equal(p8, der + len);
    mt_policy *p = policy("true", "x509");
    mt_attest_claims *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(mt_policy_verify_x509(p, NULL, FORMS, AT, a, NULL, &err), MT_EINVAL);
    reset(256, 600);
    memset(a, 0xa5, sizeof *a);
    assert_int_equal(mt_policy_verify_x509(p, x, FORMS, AT, a, NULL, &err), MT_OK);
    mt_vcache_stats s = stats();
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.stored, 1);
    assert_int_equal(s.hits, 0);
    memset(b, 0x5a, sizeof *b);
    assert_int_equal(verify(p, der, len, AT, b, NULL), MT_OK); /* the DER bytes: a hit */
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.stored, 1);
    assert_memory_equal(a, b, sizeof *a);
    assert_int_equal(mt_policy_verify_x509(p, x, FORMS, AT + 1, b, NULL, &err), MT_OK);
    assert_int_equal(stats().hits, 2);
    assert_memory_equal(a, b, sizeof *a);
    /* stored by mt_policy_verify_cert, found through the object */
    reset(256, 600);
    assert_int_equal(verify(p, der, len, AT, a, NULL), MT_OK);
    assert_int_equal(mt_policy_verify_x509(p, x, FORMS, AT, b, NULL, &err), MT_OK);
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.stored, 1);
    assert_memory_equal(a, b, sizeof *a);
    free(a);
    free(b);
    mt_policy_free(p);
    X509_free(x);
    free(der);
}

/* Any change of the policy (document, expected values) misses. */
static void test_policy_change_misses(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    mt_policy *p1 = policy("true", "one"), *p2 = policy("true", "two"),
              *p1b = policy("true", "one");
    uint8_t d1[32], d2[32], d1b[32];
    mt_policy_digest(p1, d1);
    mt_policy_digest(p2, d2);
    mt_policy_digest(p1b, d1b);
    assert_memory_not_equal(d1, d2, 32);
    assert_memory_equal(d1, d1b, 32); /* the same document decides the same way */
    mt_attest_claims *c = malloc(sizeof *c);
    assert_non_null(c);
    reset(256, 600);
    assert_int_equal(verify(p1, der, len, AT, c, NULL), MT_OK);
    assert_int_equal(verify(p2, der, len, AT, c, NULL), MT_OK);
    mt_vcache_stats s = stats();
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.stored, 2);
    assert_int_equal(verify(p1b, der, len, AT, c, NULL), MT_OK);
    assert_int_equal(stats().hits, 1);
    /* an expected value set afterwards changes the digest: a miss, and the
     * new rule is applied (the Gramine report_data is not all 0x11) */
    mt_err err;
    assert_int_equal(mt_policy_set_expected(p1, MT_POLICY_EXPECT_REPORT_DATA, "11", &err), MT_OK);
    mt_policy_digest(p1, d2);
    assert_memory_not_equal(d1, d2, 32);
    assert_int_equal(mt_policy_verify_cert(p1, der, len, FORMS, AT, c, NULL, &err), MT_EPERM);
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 3);
    assert_int_equal(s.stored, 2);
    free(c);
    mt_policy_free(p1);
    mt_policy_free(p2);
    mt_policy_free(p1b);
    free(der);
}

/* Entries end at the TTL, at the collateral's end, and when the clock goes
 * back before the verification; then the certificate is verified again. */
static void test_expiry(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    mt_policy *p = policy("true", "ttl");
    mt_attest_claims *c = malloc(sizeof *c);
    assert_non_null(c);
    reset(256, 5);
    assert_int_equal(verify(p, der, len, AT, c, NULL), MT_OK);
    assert_int_equal(verify(p, der, len, AT + 4, c, NULL), MT_OK);
    assert_int_equal(stats().hits, 1);
    assert_int_equal(verify(p, der, len, AT + 5, c, NULL), MT_OK); /* TTL over */
    mt_vcache_stats s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.stored, 2);
    assert_int_equal(verify(p, der, len, AT + 4, c, NULL), MT_OK); /* before it: again */
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.expired, 2);
    /* A TTL of ten years: the collateral's end (here the PCK chain) still
     * bounds the entry, and at that time the certificate no longer verifies. */
    reset(256, 10LL * 365 * 86400);
    assert_int_equal(verify(p, der, len, AT, c, NULL), MT_OK);
    int64_t until = c->valid_until;
    assert_true(until > AT && until < INT64_MAX);
    assert_int_equal(verify(p, der, len, until - 1, c, NULL), MT_OK);
    assert_int_equal(stats().hits, 1);
    assert_int_equal(verify(p, der, len, until, c, NULL), MT_EAUTH);
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.entries, 0);
    free(c);
    mt_policy_free(p);
    free(der);
}

/* A certificate differing in one byte misses (and here fails: not stored). */
static void test_one_byte_and_failures(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    mt_policy *p = policy("true", "byte"), *strict = policy("false", "byte");
    mt_attest_claims *c = malloc(sizeof *c);
    assert_non_null(c);
    reset(256, 600);
    assert_int_equal(verify(p, der, len, AT, c, NULL), MT_OK);
    der[len - 1] ^= 0x01; /* the last byte of the signature */
    for (int i = 0; i < 2; i++)
        assert_int_equal(verify(p, der, len, AT, c, NULL), MT_EAUTH);
    mt_vcache_stats s = stats();
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 3);
    assert_int_equal(s.stored, 1);
    der[len - 1] ^= 0x01;
    assert_int_equal(verify(p, der, len, AT, c, NULL), MT_OK);
    assert_int_equal(stats().hits, 1);
    /* a policy refusal (a debug enclave) is verified in full every time */
    for (int i = 0; i < 2; i++)
        assert_int_equal(verify(strict, der, len, AT, c, NULL), MT_EPERM);
    s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 5);
    assert_int_equal(s.stored, 1);
    /* outside the certificate's validity: refused, nothing stored */
    assert_int_equal(verify(p, der, len, 0, c, NULL), MT_EAUTH);
    assert_int_equal(stats().stored, 1);
    free(c);
    mt_policy_free(p);
    mt_policy_free(strict);
    free(der);
}

/* MT_RATLS_PEER_PROVES_KEY (verification inside a handshake) skips the
 * self-signature. Such a verdict is remembered only through
 * mt_policy_verify_peer's pending entry, committed once the handshake is
 * done: a handshake that fails (a peer without the key) leaves nothing; the
 * forms are part of the key, so a committed verdict is never found by a
 * caller without the flag (a certificate from a file or a request body),
 * which still checks the signature. */
static void test_peer_proves_key(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    mt_policy *p = policy("true", "proves");
    mt_attest_claims *c = malloc(sizeof *c);
    assert_non_null(c);
    mt_err err;
    const unsigned pk = FORMS | MT_RATLS_PEER_PROVES_KEY;
    reset(256, 600);
    der[len - 1] ^= 0x01; /* the last byte of the signature */
    const uint8_t *q = der;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    assert_non_null(x);
    /* the plain entry points accept it with the flag but remember nothing */
    assert_int_equal(mt_policy_verify_cert(p, der, len, pk, AT, c, NULL, &err), MT_OK);
    assert_int_equal(mt_policy_verify_x509(p, x, pk, AT, c, NULL, &err), MT_OK);
    assert_int_equal(stats().stored, 0);
    /* a handshake that fails: the pending entry is dropped */
    mt_policy_pending *pd = NULL;
    assert_int_equal(mt_policy_verify_peer(p, x, pk, AT, c, NULL, &pd, &err), MT_OK);
    assert_non_null(pd);
    mt_policy_pending_free(pd);
    assert_int_equal(stats().stored, 0);
    /* without the flag: refused */
    assert_int_equal(mt_policy_verify_peer(p, x, FORMS, AT, c, NULL, &pd, &err), MT_EINVAL);
    assert_null(pd);
    /* a handshake that completes: stored once, however often committed */
    assert_int_equal(mt_policy_verify_peer(p, x, pk, AT, c, NULL, &pd, &err), MT_OK);
    assert_int_equal(stats().stored, 0);
    mt_policy_pending_commit(pd);
    mt_policy_pending_commit(pd);
    mt_policy_pending_free(pd);
    assert_int_equal(stats().stored, 1);
    /* ... found by the next handshake (no pending entry on a hit) ... */
    assert_int_equal(mt_policy_verify_peer(p, x, pk, AT + 1, c, NULL, &pd, &err), MT_OK);
    assert_null(pd);
    assert_int_equal(stats().hits, 1);
    /* ... never by a caller that checks the signature */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mt_policy_verify_cert(p, der, len, FORMS, AT, c, NULL, &err), MT_EAUTH);
        tv_assert_msg(&err, "does not verify with its own key");
    }
    mt_vcache_stats s = stats();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.stored, 1);
    X509_free(x);
    free(c);
    mt_policy_free(p);
    free(der);
}

/* Beyond the capacity the least recently used entry goes. */
static void test_capacity(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *der = gramine_der(&len);
    mt_policy *p[3] = {policy("true", "p0"), policy("true", "p1"), policy("true", "p2")};
    mt_attest_claims *c = malloc(sizeof *c);
    assert_non_null(c);
    reset(2, 600);
    assert_int_equal(verify(p[0], der, len, AT, c, NULL), MT_OK);
    assert_int_equal(verify(p[1], der, len, AT, c, NULL), MT_OK);
    assert_int_equal(verify(p[0], der, len, AT, c, NULL), MT_OK); /* p0 used last */
    assert_int_equal(stats().hits, 1);
    assert_int_equal(verify(p[2], der, len, AT, c, NULL), MT_OK); /* evicts p1 */
    mt_vcache_stats s = stats();
    assert_int_equal(s.evicted, 1);
    assert_int_equal(s.entries, 2);
    assert_int_equal(verify(p[0], der, len, AT, c, NULL), MT_OK);
    assert_int_equal(verify(p[2], der, len, AT, c, NULL), MT_OK);
    assert_int_equal(stats().hits, 3);
    assert_int_equal(verify(p[1], der, len, AT, c, NULL), MT_OK); /* verified again */
    s = stats();
    assert_int_equal(s.hits, 3);
    assert_int_equal(s.evicted, 2);
    assert_int_equal(s.entries, 2);
    for (int i = 0; i < 3; i++)
        mt_policy_free(p[i]);
    free(c);
    free(der);
}

/* Bad settings are refused and change nothing; a standalone handle. */
static void test_configure(void **state)
{
    (void)state;
    mt_err err;
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), MT_VCACHE_MAX_CAP + 1, 600, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "capacity"));
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), 4, 0, &err), MT_EINVAL);
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), 4, -5, &err), MT_EINVAL);
    assert_null(mt_vcache_new(4, 0));
    assert_null(mt_vcache_new(MT_VCACHE_MAX_CAP + 1, 1));
    mt_vcache *v = mt_vcache_new(1, 10);
    assert_non_null(v);
    mt_attest_claims *c = calloc(1, sizeof *c);
    assert_non_null(c);
    mt_ratls_info info = {.not_after = 1000};
    uint8_t k1[32] = {1}, k2[32] = {2}, zero[32] = {0};
    c->valid_until = 0; /* cannot be told: never stored */
    mt_vcache_put(v, k1, 100, c, &info);
    c->valid_until = 105;
    mt_vcache_put(v, zero, 100, c, &info); /* a failed key hash: never stored */
    mt_vcache_stats s;
    mt_vcache_stats_get(v, &s);
    assert_int_equal(s.stored, 0);
    mt_vcache_put(v, k1, 100, c, &info);
    assert_true(mt_vcache_get(v, k1, 104, c, NULL));
    assert_false(mt_vcache_get(v, k1, 105, c, NULL)); /* valid_until */
    c->valid_until = INT64_MAX;
    info.not_after = 102;
    mt_vcache_put(v, k1, 100, c, &info);
    assert_true(mt_vcache_get(v, k1, 102, c, NULL)); /* notAfter is inclusive */
    assert_false(mt_vcache_get(v, k1, 103, c, NULL));
    info.not_after = 1000;
    mt_vcache_put(v, k1, 100, c, &info);
    mt_vcache_put(v, k2, 100, c, &info); /* capacity 1 */
    assert_false(mt_vcache_get(v, k1, 101, c, NULL));
    assert_true(mt_vcache_get(v, k2, 101, c, NULL));
    mt_vcache_drop(v, k2);
    assert_false(mt_vcache_get(v, k2, 101, c, NULL));
    mt_vcache_free(v);
    mt_vcache_free(NULL);
    free(c);
}

/* Several threads sharing one handle (the documented use): counters add up,
 * the capacity holds, and every hit returns the entry of its own key. */
typedef struct {
    mt_vcache *v;
    int id;
    int bad;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    mt_attest_claims *c = calloc(1, sizeof *c), *out = malloc(sizeof *out);
    if (!c || !out) {
        a->bad = 1;
        free(c);
        free(out);
        return NULL;
    }
    mt_ratls_info info = {.not_after = INT64_MAX};
    c->valid_until = INT64_MAX;
    for (int i = 0; i < 2000; i++) {
        uint8_t k[32] = {0};
        k[0] = (uint8_t)(1 + (i * 7 + a->id) % 16);
        c->n_measurements = k[0]; /* the entry says which key it belongs to */
        if (i % 3 == 0)
            mt_vcache_put(a->v, k, 100, c, &info);
        else if (mt_vcache_get(a->v, k, 101, out, NULL) && out->n_measurements != k[0])
            a->bad = 1;
    }
    free(c);
    free(out);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    mt_vcache *v = mt_vcache_new(8, 600);
    assert_non_null(v);
    pthread_t th[4];
    worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (worker_arg){.v = v, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    mt_vcache_stats s;
    mt_vcache_stats_get(v, &s);
    uint64_t gets = 0, puts = 0;
    for (int i = 0; i < 2000; i++)
        *(i % 3 == 0 ? &puts : &gets) += 1;
    assert_int_equal(s.hits + s.misses, 4 * gets);
    assert_int_equal(s.stored, 4 * puts);
    assert_true(s.entries <= 8);
    assert_true(s.hits > 0);
    mt_vcache_free(v);
}

/* valid_until of each evidence kind: verification holds at valid_until - 1
 * and fails at valid_until (something it relied on ends there). */
static void check_until(mt_attest_kind kind, const uint8_t *ev, size_t len,
                        const mt_attest_collateral *coll, int64_t at)
{
    mt_attest_claims *c = malloc(sizeof *c);
    assert_non_null(c);
    mt_err err;
    if (mt_attest_verify(kind, ev, len, coll, at, c, &err) != MT_OK)
        fail_msg("%s: %s", mt_attest_kind_name(kind), err.msg);
    int64_t until = c->valid_until;
    assert_true(until > at && until < INT64_MAX);
    assert_int_equal(mt_attest_verify(kind, ev, len, coll, until - 1, c, &err), MT_OK);
    assert_int_equal(c->valid_until, until);
    assert_int_equal(mt_attest_verify(kind, ev, len, coll, until, c, &err), MT_EAUTH);
    free(c);
}

static void check_dcap(mt_attest_kind kind, const char *quote, const char *bundle)
{
    size_t ql, bl;
    uint8_t *q = tv_read(quote, &ql), *b = tv_read(bundle, &bl);
    for (int cached = 0; cached < 2; cached++) { /* fresh handle, then the DCAP cache */
        mt_attest_collateral *coll = mt_attest_collateral_new();
        assert_non_null(coll);
        assert_int_equal(mt_attest_collateral_add(coll, MT_COLL_DCAP_BUNDLE, b, bl, NULL), MT_OK);
        mt_attest_claims *c = malloc(sizeof *c);
        assert_non_null(c);
        if (cached)
            assert_int_equal(mt_attest_verify(kind, q, ql, coll, tv_time("2025-06-20T00:00:00Z"),
                                              c, NULL),
                             MT_OK);
        free(c);
        check_until(kind, q, ql, coll, tv_time("2025-06-20T00:00:00Z"));
        mt_attest_collateral_free(coll);
    }
    free(q);
    free(b);
}

static void test_valid_until(void **state)
{
    TV_REQUIRE();
    check_dcap(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat",
               "sgx-dcap/dcapqvl-sgx-quote-collateral.json");
    check_dcap(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", "tdx/dcapqvl-tdx-quote-collateral.json");
    /* SEV-SNP: the VCEK and its chain */
    tv_item items[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                       {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                       {0, NULL}};
    mt_attest_collateral *coll = tv_coll(items);
    size_t n;
    uint8_t *rep = tv_read("sev-snp/gosevguest-milan-report.bin", &n);
    check_until(MT_ATTEST_SEV_SNP, rep, n, coll, tv_time("2025-01-01T00:00:00Z"));
    free(rep);
    mt_attest_collateral_free(coll);
    /* Nitro: the document's own chain */
    uint8_t *raw = tv_read("nitro/evervault-ga-attestation-doc.b64", &n);
    while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        raw[--n] = 0;
    uint8_t *doc = NULL;
    size_t dl = 0;
    assert_int_equal(mt_b64_decode((const char *)raw, &doc, &dl, NULL), MT_OK);
    check_until(MT_ATTEST_NITRO, doc, dl, NULL, tv_time("2023-09-18T15:03:31Z"));
    free(doc);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_same_result),
        cmocka_unit_test(test_x509_own_encoding),
        cmocka_unit_test(test_policy_change_misses),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_one_byte_and_failures),
        cmocka_unit_test(test_peer_proves_key),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_configure),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_valid_until),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
