/* Unit tests for mt_ff, the streaming AEAD file format.
 * The implementation is compiled into this test (#include "mt_ff.c") so that
 * the tests can build hand-crafted segments (seg_seal) and reach the segment
 * counters for the 2^32-segment limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_ff.c"

#define SMALL_SEG 4096u

static uint8_t KEY[32], KEY2[32];

/* Deterministic xorshift64* bytes. */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dull;
}
static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next() >> 56);
}

/* Growable byte sink. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int calls;
    mt_status fail_with; /* returned by the sink when non-zero */
} bytes;

static mt_status bytes_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    bytes *b = ctx;
    b->calls++;
    if (b->fail_with != MT_OK)
        return mt_err_set(err, b->fail_with, "sink refused");
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, buf, len);
    b->len += len;
    return MT_OK;
}

static void bytes_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Encrypts with the streaming writer (given segment size), feeding chunks of
 * `chunk` bytes (0 = random sizes). */
static void stream_encrypt(const uint8_t *key, uint32_t seg, const uint8_t *p, size_t n,
                           size_t chunk, bytes *out)
{
    mt_ff_writer *w = NULL;
    mt_err e;
    assert_int_equal(mt_ff_writer_new_segment(key, seg, bytes_sink, out, &w, &e), MT_OK);
    size_t off = 0;
    while (off < n) {
        size_t c = chunk ? chunk : 1 + (size_t)(rng_next() % (3 * seg));
        if (c > n - off)
            c = n - off;
        assert_int_equal(mt_ff_writer_write(w, p + off, c, &e), MT_OK);
        off += c;
    }
    assert_int_equal(mt_ff_writer_finish(w, &e), MT_OK);
    mt_ff_writer_free(w);
}

/* Decrypts with the streaming reader; returns the status of the first failing
 * call (feed or finish). chunk 0 = random sizes. */
static mt_status stream_decrypt(const uint8_t *key, const uint8_t *c, size_t n, size_t chunk,
                                bytes *out, mt_err *e)
{
    mt_ff_reader *r = NULL;
    assert_int_equal(mt_ff_reader_new(key, bytes_sink, out, &r, e), MT_OK);
    size_t off = 0;
    mt_status st = MT_OK;
    while (off < n && st == MT_OK) {
        size_t k = chunk ? chunk : 1 + (size_t)(rng_next() % 100000);
        if (k > n - off)
            k = n - off;
        st = mt_ff_reader_feed(r, c + off, k, e);
        off += k;
    }
    if (st == MT_OK)
        st = mt_ff_reader_finish(r, e);
    mt_ff_reader_free(r);
    return st;
}

/* Both decrypt paths must fail with `code`; the streaming sink must not have
 * received more than `max_released` bytes. */
static void expect_fail(const uint8_t *key, const uint8_t *c, size_t n, mt_status code)
{
    mt_err e;
    uint8_t *p = (uint8_t *)1;
    size_t pl = 99;
    assert_int_equal(mt_ff_decrypt(key, c, n, &p, &pl, &e), code);
    assert_null(p);
    assert_int_equal(pl, 0);
    if (code == MT_ECRYPTO)
        assert_true(strstr(e.msg, "decryption failed") || strstr(e.msg, "wrong key"));
    bytes b = {0};
    assert_int_equal(stream_decrypt(key, c, n, 0, &b, &e), code);
    bytes_free(&b);
    assert_int_equal(stream_decrypt(key, c, n, 7, &b, &e), code);
    bytes_free(&b);
}

static void expect_ok(const uint8_t *key, const uint8_t *c, size_t n, const uint8_t *plain,
                      size_t plen)
{
    mt_err e;
    uint8_t *p = NULL;
    size_t pl = 0;
    assert_int_equal(mt_ff_decrypt(key, c, n, &p, &pl, &e), MT_OK);
    assert_int_equal(pl, plen);
    if (plen)
        assert_memory_equal(p, plain, plen);
    free(p);
}

/* A 3.5-segment file with 4096-byte segments. */
static uint8_t g_plain[3 * SMALL_SEG + 1000];
static bytes g_ct;

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++) {
        KEY[i] = (uint8_t)i;
        KEY2[i] = (uint8_t)(0xa0 + i);
    }
    rng_fill(g_plain, sizeof g_plain);
    memset(&g_ct, 0, sizeof g_ct);
    stream_encrypt(KEY, SMALL_SEG, g_plain, sizeof g_plain, 0, &g_ct);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bytes_free(&g_ct);
    return 0;
}

static uint8_t *dup_ct(size_t extra)
{
    uint8_t *c = malloc(g_ct.len + extra + 1);
    assert_non_null(c);
    memcpy(c, g_ct.p, g_ct.len);
    return c;
}

#define SEGC (SMALL_SEG + MT_FF_TAG_LEN)
#define SEG_OFF(i) (MT_FF_HEADER_LEN + (size_t)(i)*SEGC)

/* ------------------------------------------------------------------------ */

static void test_key_id_and_sizes(void **state)
{
    (void)state;
    uint8_t a[16], b[16], a2[16];
    mt_ff_key_id(KEY, a);
    mt_ff_key_id(KEY2, b);
    mt_ff_key_id(KEY, a2);
    assert_memory_equal(a, a2, 16);
    assert_memory_not_equal(a, b, 16);
    /* matches SHA-256("mesatee-ff-key-id" || key)[0..16] computed independently */
    uint8_t msg[17 + 32], md[32];
    unsigned int ml;
    memcpy(msg, "mesatee-ff-key-id", 17);
    memcpy(msg + 17, KEY, 32);
    assert_int_equal(EVP_Digest(msg, sizeof msg, md, &ml, EVP_sha256(), NULL), 1);
    assert_memory_equal(a, md, 16);

    assert_int_equal(mt_ff_ciphertext_size(0), 56);
    assert_int_equal(mt_ff_ciphertext_size(1), 57);
    assert_int_equal(mt_ff_ciphertext_size(65536), 40 + 65536 + 16);
    assert_int_equal(mt_ff_ciphertext_size(65537), 40 + 65537 + 32);
}

static void test_roundtrip_sizes(void **state)
{
    (void)state;
    const size_t seg = MT_FF_DEFAULT_SEGMENT;
    const size_t sizes[] = {0, 1, seg - 1, seg, seg + 1, 3 * seg, 5 * 1000 * 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *plain = malloc(n + 1);
        assert_non_null(plain);
        rng_fill(plain, n);
        uint8_t *ct = NULL, *pt = NULL;
        size_t cl = 0, pl = 0;
        mt_err e;
        assert_int_equal(mt_ff_encrypt(KEY, plain, n, &ct, &cl, &e), MT_OK);
        assert_int_equal(cl, mt_ff_ciphertext_size(n));
        assert_memory_equal(ct, "MTF1\x01\x01\x00\x00\x00\x01\x00\x00", 12);
        assert_int_equal(mt_ff_decrypt(KEY, ct, cl, &pt, &pl, &e), MT_OK);
        assert_int_equal(pl, n);
        if (n)
            assert_memory_equal(pt, plain, n);
        free(pt);

        /* streaming reader: 1-byte feeds (small sizes) and random chunks */
        bytes b = {0};
        if (n <= 3 * seg) {
            assert_int_equal(stream_decrypt(KEY, ct, cl, 1, &b, &e), MT_OK);
            assert_int_equal(b.len, n);
            if (n)
                assert_memory_equal(b.p, plain, n);
            bytes_free(&b);
        }
        assert_int_equal(stream_decrypt(KEY, ct, cl, 0, &b, &e), MT_OK);
        assert_int_equal(b.len, n);
        if (n)
            assert_memory_equal(b.p, plain, n);
        bytes_free(&b);

        /* streaming writer (1-byte and random chunks) -> one-shot decrypt */
        bytes w = {0};
        stream_encrypt(KEY, MT_FF_DEFAULT_SEGMENT, plain, n, n <= 3 * seg ? 1 : 0, &w);
        assert_int_equal(w.len, cl);
        assert_memory_not_equal(w.p + 28, ct + 28, 7); /* fresh nonce prefix per file */
        expect_ok(KEY, w.p, w.len, plain, n);
        bytes_free(&w);
        stream_encrypt(KEY, MT_FF_DEFAULT_SEGMENT, plain, n, 0, &w);
        expect_ok(KEY, w.p, w.len, plain, n);
        bytes_free(&w);
        free(ct);
        free(plain);
    }
}

static void test_small_segments(void **state)
{
    (void)state;
    assert_int_equal(g_ct.len, 40 + sizeof g_plain + 4 * 16);
    expect_ok(KEY, g_ct.p, g_ct.len, g_plain, sizeof g_plain);
    bytes b = {0};
    mt_err e;
    assert_int_equal(stream_decrypt(KEY, g_ct.p, g_ct.len, 1, &b, &e), MT_OK);
    assert_int_equal(b.len, sizeof g_plain);
    assert_memory_equal(b.p, g_plain, sizeof g_plain);
    bytes_free(&b);
    /* exact multiple of the segment: last segment is full, no empty extra one */
    bytes w = {0};
    stream_encrypt(KEY, SMALL_SEG, g_plain, 2 * SMALL_SEG, 0, &w);
    assert_int_equal(w.len, 40 + 2 * SEGC);
    expect_ok(KEY, w.p, w.len, g_plain, 2 * SMALL_SEG);
    bytes_free(&w);
    /* bad writer segment sizes */
    mt_ff_writer *wr = NULL;
    assert_int_equal(mt_ff_writer_new_segment(KEY, 4095, bytes_sink, &w, &wr, &e), MT_EINVAL);
    assert_int_equal(mt_ff_writer_new_segment(KEY, 6000, bytes_sink, &w, &wr, &e), MT_EINVAL);
    assert_int_equal(mt_ff_writer_new_segment(KEY, 32u << 20, bytes_sink, &w, &wr, &e), MT_EINVAL);
    assert_null(wr);
}

static void test_header_parse(void **state)
{
    (void)state;
    mt_ff_header h;
    mt_err e;
    assert_int_equal(mt_ff_header_parse(g_ct.p, 40, &h, &e), MT_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.algorithm, 1);
    assert_int_equal(h.segment_size, SMALL_SEG);
    uint8_t id[16];
    mt_ff_key_id(KEY, id);
    assert_memory_equal(h.key_id, id, 16);
    assert_int_equal(mt_ff_header_parse(g_ct.p, 39, &h, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "shorter than"));

    struct {
        size_t off;
        uint8_t val;
        const char *msg;
    } bad[] = {
        {0, 'X', "bad magic"},     {3, '2', "bad magic"},      {4, 3, "version 3"},
        {4, 0, "version 0"},       {5, 2, "algorithm 2"},      {6, 1, "reserved"},
        {7, 0x80, "reserved"},     {35, 1, "reserved"},        {39, 0xff, "reserved"},
        {8, 0x01, "segment size"}, {10, 0x18, "segment size"}, {11, 0x01, "segment size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *c = dup_ct(0);
        c[bad[i].off] = bad[i].val;
        assert_int_equal(mt_ff_header_parse(c, 40, &h, &e), MT_EINVAL);
        assert_non_null(strstr(e.msg, bad[i].msg));
        expect_fail(KEY, c, g_ct.len, MT_EINVAL);
        free(c);
    }
    /* a version 1 file relabelled version 2: 40 bytes are too short for its
     * header, and with the rest it no longer authenticates */
    {
        uint8_t *c = dup_ct(0);
        c[4] = 2;
        assert_int_equal(mt_ff_header_parse(c, 40, &h, &e), MT_EINVAL);
        assert_non_null(strstr(e.msg, "version 2"));
        expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
        free(c);
    }
    /* segment sizes: 2048 too small, 32 MiB too big, 4096 and 16 MiB accepted */
    uint8_t hb[40];
    memcpy(hb, g_ct.p, 40);
    const uint32_t segs[] = {2048, 32u << 20, 0, 4096 + 4096 / 2};
    for (size_t i = 0; i < 4; i++) {
        put_be32(hb + 8, segs[i]);
        assert_int_equal(mt_ff_header_parse(hb, 40, &h, &e), MT_EINVAL);
    }
    put_be32(hb + 8, 16u << 20);
    assert_int_equal(mt_ff_header_parse(hb, 40, &h, &e), MT_OK);
    put_be32(hb + 8, 4096);
    assert_int_equal(mt_ff_header_parse(hb, 40, &h, &e), MT_OK);
}

static void test_wrong_key(void **state)
{
    (void)state;
    mt_err e;
    uint8_t *p = NULL;
    size_t pl;
    assert_int_equal(mt_ff_decrypt(KEY2, g_ct.p, g_ct.len, &p, &pl, &e), MT_ECRYPTO);
    assert_string_equal(e.msg, "wrong key (key id mismatch)");
    bytes b = {0};
    assert_int_equal(stream_decrypt(KEY2, g_ct.p, g_ct.len, 0, &b, &e), MT_ECRYPTO);
    assert_string_equal(e.msg, "wrong key (key id mismatch)");
    assert_int_equal(b.len, 0);
    bytes_free(&b);
    /* key id field altered: same report */
    uint8_t *c = dup_ct(0);
    c[20] ^= 1;
    expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
    assert_int_equal(mt_ff_decrypt(KEY, c, g_ct.len, &p, &pl, &e), MT_ECRYPTO);
    assert_string_equal(e.msg, "wrong key (key id mismatch)");
    free(c);
}

static void test_truncation(void **state)
{
    (void)state;
    mt_err e;
    uint8_t *p = NULL;
    size_t pl;
    /* every prefix fails: < 40 as a malformed header, >= 40 as a crypto failure */
    for (size_t n = 0; n < g_ct.len; n++) {
        mt_status want = n < MT_FF_HEADER_LEN ? MT_EINVAL : MT_ECRYPTO;
        assert_int_equal(mt_ff_decrypt(KEY, g_ct.p, n, &p, &pl, &e), want);
        bytes b = {0};
        assert_int_equal(stream_decrypt(KEY, g_ct.p, n, 0, &b, &e), want);
        bytes_free(&b);
    }
    /* header only, and exactly at each segment boundary */
    for (size_t i = 0; i <= 3; i++) {
        size_t n = SEG_OFF(i);
        assert_int_equal(mt_ff_decrypt(KEY, g_ct.p, n, &p, &pl, &e), MT_ECRYPTO);
        assert_non_null(strstr(e.msg, "decryption failed at segment"));
        bytes b = {0};
        assert_int_equal(stream_decrypt(KEY, g_ct.p, n, 1, &b, &e), MT_ECRYPTO);
        /* only the segments before the cut, all verified, were released */
        assert_int_equal(b.len, i == 0 ? 0 : (i - 1) * SMALL_SEG);
        if (b.len)
            assert_memory_equal(b.p, g_plain, b.len);
        bytes_free(&b);
    }
}

static void test_extension(void **state)
{
    (void)state;
    const size_t extras[] = {1, 15, 16, 17, SEGC, 2 * SEGC + 3};
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        uint8_t *c = dup_ct(extras[i]);
        rng_fill(c + g_ct.len, extras[i]);
        expect_fail(KEY, c, g_ct.len + extras[i], MT_ECRYPTO);
        memset(c + g_ct.len, 0, extras[i]);
        expect_fail(KEY, c, g_ct.len + extras[i], MT_ECRYPTO);
        free(c);
    }
    /* a copy of the last segment appended */
    size_t last = g_ct.len - SEG_OFF(3);
    uint8_t *c = dup_ct(last);
    memcpy(c + g_ct.len, g_ct.p + SEG_OFF(3), last);
    expect_fail(KEY, c, g_ct.len + last, MT_ECRYPTO);
    free(c);
    /* a full-size last segment followed by one more byte */
    bytes w = {0};
    stream_encrypt(KEY, SMALL_SEG, g_plain, 2 * SMALL_SEG, 0, &w);
    w.p = realloc(w.p, w.len + 1);
    w.p[w.len] = 0;
    expect_fail(KEY, w.p, w.len + 1, MT_ECRYPTO);
    bytes_free(&w);
}

static void test_reorder_and_drop(void **state)
{
    (void)state;
    uint8_t *c = dup_ct(0);
    /* swap segments 0 and 1 */
    memcpy(c + SEG_OFF(0), g_ct.p + SEG_OFF(1), SEGC);
    memcpy(c + SEG_OFF(1), g_ct.p + SEG_OFF(0), SEGC);
    expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
    /* duplicate segment 0 in place of 1 */
    memcpy(c, g_ct.p, g_ct.len);
    memcpy(c + SEG_OFF(1), g_ct.p + SEG_OFF(0), SEGC);
    expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
    /* drop a middle segment */
    memcpy(c, g_ct.p, SEG_OFF(1));
    memcpy(c + SEG_OFF(1), g_ct.p + SEG_OFF(2), g_ct.len - SEG_OFF(2));
    expect_fail(KEY, c, g_ct.len - SEGC, MT_ECRYPTO);
    free(c);
}

static void test_bit_flips(void **state)
{
    (void)state;
    uint8_t *c = dup_ct(0);
    mt_err e;
    for (size_t i = 0; i < g_ct.len; i++) {
        uint8_t bit = (uint8_t)(1u << (i % 8));
        c[i] ^= bit;
        uint8_t *p = NULL;
        size_t pl;
        mt_status st = mt_ff_decrypt(KEY, c, g_ct.len, &p, &pl, &e);
        /* header flips: EINVAL (format fields) or ECRYPTO (key id, prefix, tags) */
        assert_true(st == MT_ECRYPTO || (i < 40 && st == MT_EINVAL));
        assert_null(p);
        c[i] ^= bit;
    }
    /* streaming on a sample of positions (incl. header, data, tags) */
    const size_t pos[] = {
        28, 34, 40, 41, SEG_OFF(1) - 1, SEG_OFF(1), SEG_OFF(2) + 100, g_ct.len - 17, g_ct.len - 1};
    for (size_t k = 0; k < sizeof pos / sizeof pos[0]; k++) {
        c[pos[k]] ^= 0x80;
        expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
        c[pos[k]] ^= 0x80;
    }
    expect_ok(KEY, c, g_ct.len, g_plain, sizeof g_plain);
    free(c);
}

static void test_swap_between_files(void **state)
{
    (void)state;
    bytes o = {0};
    stream_encrypt(KEY, SMALL_SEG, g_plain, sizeof g_plain, 0, &o);
    assert_int_equal(o.len, g_ct.len);
    uint8_t *c = dup_ct(0);
    for (size_t i = 0; i < 4; i++) {
        memcpy(c, g_ct.p, g_ct.len);
        size_t n = i < 3 ? SEGC : g_ct.len - SEG_OFF(3);
        memcpy(c + SEG_OFF(i), o.p + SEG_OFF(i), n);
        expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
    }
    /* header of the other file on our segments */
    memcpy(c, g_ct.p, g_ct.len);
    memcpy(c, o.p, MT_FF_HEADER_LEN);
    expect_fail(KEY, c, g_ct.len, MT_ECRYPTO);
    free(c);
    bytes_free(&o);
}

/* Hand-built files that the writer never makes. */
static void test_crafted_segments(void **state)
{
    (void)state;
    uint8_t id[16], prefix[7] = {1, 2, 3, 4, 5, 6, 7}, hdr[40];
    mt_ff_key_id(KEY, id);
    header_encode(SMALL_SEG, id, prefix, hdr);
    EVP_CIPHER_CTX *ctx = ctx_new(KEY, 1);
    assert_non_null(ctx);
    size_t cap = 40 + 3 * SEGC;
    uint8_t *f = malloc(cap);
    memcpy(f, hdr, 40);

    /* sanity: a correctly built 2-segment file opens */
    assert_true(seg_seal(ctx, hdr, 40, 0, false, g_plain, SMALL_SEG, f + 40));
    assert_true(seg_seal(ctx, hdr, 40, 1, true, g_plain + SMALL_SEG, 10, f + 40 + SEGC));
    expect_ok(KEY, f, 40 + SEGC + 26, g_plain, SMALL_SEG + 10);

    /* non-last segment shorter than segment_size */
    assert_true(seg_seal(ctx, hdr, 40, 0, false, g_plain, 100, f + 40));
    assert_true(seg_seal(ctx, hdr, 40, 1, true, g_plain, 10, f + 40 + 116));
    expect_fail(KEY, f, 40 + 116 + 26, MT_ECRYPTO);

    /* last segment not flagged last (stream cut at a boundary) */
    assert_true(seg_seal(ctx, hdr, 40, 0, false, g_plain, SMALL_SEG, f + 40));
    assert_true(seg_seal(ctx, hdr, 40, 1, false, g_plain, 10, f + 40 + SEGC));
    expect_fail(KEY, f, 40 + SEGC + 26, MT_ECRYPTO);

    /* a "last" segment followed by another segment */
    assert_true(seg_seal(ctx, hdr, 40, 0, true, g_plain, SMALL_SEG, f + 40));
    assert_true(seg_seal(ctx, hdr, 40, 1, true, g_plain, 10, f + 40 + SEGC));
    expect_fail(KEY, f, 40 + SEGC + 26, MT_ECRYPTO);

    /* index skips 1 */
    assert_true(seg_seal(ctx, hdr, 40, 0, false, g_plain, SMALL_SEG, f + 40));
    assert_true(seg_seal(ctx, hdr, 40, 2, true, g_plain, 10, f + 40 + SEGC));
    expect_fail(KEY, f, 40 + SEGC + 26, MT_ECRYPTO);

    /* AAD is the header: seal under one header, present with another prefix */
    assert_true(seg_seal(ctx, hdr, 40, 0, true, g_plain, 10, f + 40));
    expect_ok(KEY, f, 40 + 26, g_plain, 10);
    f[28] ^= 1;
    expect_fail(KEY, f, 40 + 26, MT_ECRYPTO);
    EVP_CIPHER_CTX_free(ctx);
    free(f);
}

static void test_segment_limit(void **state)
{
    (void)state;
    mt_err e;
    /* reader: pretend 2^32 segments already passed */
    bytes b = {0};
    mt_ff_reader *r = NULL;
    assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &b, &r, &e), MT_OK);
    assert_int_equal(mt_ff_reader_feed(r, g_ct.p, 40, &e), MT_OK);
    r->index = (uint64_t)UINT32_MAX + 1;
    assert_int_equal(mt_ff_reader_feed(r, g_ct.p + 40, 2 * SEGC, &e), MT_ECRYPTO);
    assert_non_null(strstr(e.msg, "2^32"));
    /* sticky failure */
    assert_int_equal(mt_ff_reader_feed(r, g_ct.p, 1, &e), MT_ECRYPTO);
    assert_int_equal(mt_ff_reader_finish(r, &e), MT_ECRYPTO);
    mt_ff_reader_free(r);
    assert_int_equal(b.len, 0);

    /* writer: index 2^32-1 is the last one allowed */
    mt_ff_writer *w = NULL;
    assert_int_equal(mt_ff_writer_new_segment(KEY, SMALL_SEG, bytes_sink, &b, &w, &e), MT_OK);
    w->index = UINT32_MAX;
    assert_int_equal(mt_ff_writer_write(w, g_plain, SMALL_SEG + 1, &e), MT_OK);
    assert_int_equal(mt_ff_writer_finish(w, &e), MT_ETOOBIG);
    assert_non_null(strstr(e.msg, "2^32"));
    assert_int_equal(mt_ff_writer_write(w, g_plain, 1, &e), MT_EINVAL);
    mt_ff_writer_free(w);
    bytes_free(&b);
}

static void test_api_misuse_and_sink_errors(void **state)
{
    (void)state;
    mt_err e;
    bytes b = {0};
    mt_ff_writer *w = NULL;
    mt_ff_reader *r = NULL;
    assert_int_equal(mt_ff_writer_new(NULL, bytes_sink, &b, &w, &e), MT_EINVAL);
    assert_int_equal(mt_ff_reader_new(KEY, NULL, &b, &r, &e), MT_EINVAL);
    /* finish twice */
    assert_int_equal(mt_ff_writer_new(KEY, bytes_sink, &b, &w, &e), MT_OK);
    assert_int_equal(mt_ff_writer_finish(w, &e), MT_OK);
    assert_int_equal(mt_ff_writer_finish(w, &e), MT_EINVAL);
    assert_int_equal(mt_ff_writer_write(w, g_plain, 1, &e), MT_EINVAL);
    mt_ff_writer_free(w);
    assert_int_equal(b.len, 56); /* empty plaintext: header + one empty last segment */
    bytes out = {0};
    assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &out, &r, &e), MT_OK);
    assert_int_equal(mt_ff_reader_feed(r, b.p, b.len, &e), MT_OK);
    assert_int_equal(mt_ff_reader_finish(r, &e), MT_OK);
    assert_int_equal(mt_ff_reader_finish(r, &e), MT_EINVAL);
    assert_int_equal(mt_ff_reader_feed(r, b.p, 1, &e), MT_EINVAL);
    mt_ff_reader_free(r);
    assert_int_equal(out.len, 0);
    bytes_free(&b);
    bytes_free(&out);
    /* sink failure aborts the writer and the reader with the sink's code */
    b.fail_with = MT_EIO;
    assert_int_equal(mt_ff_writer_new(KEY, bytes_sink, &b, &w, &e), MT_OK);
    assert_int_equal(mt_ff_writer_write(w, g_plain, 10, &e), MT_EIO);
    assert_int_equal(mt_ff_writer_finish(w, &e), MT_EINVAL);
    mt_ff_writer_free(w);
    out.fail_with = MT_EIO;
    assert_int_equal(stream_decrypt(KEY, g_ct.p, g_ct.len, 0, &out, &e), MT_EIO);
    /* the empty input and NULL arguments */
    uint8_t *p;
    size_t pl;
    assert_int_equal(mt_ff_decrypt(KEY, NULL, 0, &p, &pl, &e), MT_EINVAL);
    assert_int_equal(mt_ff_encrypt(KEY, NULL, 0, &p, &pl, &e), MT_OK);
    assert_int_equal(pl, 56);
    free(p);
    mt_ff_writer_free(NULL);
    mt_ff_reader_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* File helpers                                                              */
/* ------------------------------------------------------------------------ */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* mt_ff_reader_into: plaintext decrypted straight into the caller's buffer
 * (any chunking), the sink never called; a segment failing its tag leaves
 * nothing of its plaintext there (wiped to zeros); a buffer too small fails
 * with MT_ETOOBIG; the mode is set before the first feed only. */
static void test_reader_into(void **state)
{
    (void)state;
    enum { N = 5 * SMALL_SEG + 123 };
    uint8_t *p = malloc(N);
    rng_fill(p, N);
    bytes c = {0}, sink = {0};
    stream_encrypt(KEY, SMALL_SEG, p, N, 0, &c);
    uint8_t *out = malloc(N + 16);
    mt_err e;
    for (size_t chunk = 1; chunk <= 100000; chunk *= 37) {
        memset(out, 0xAA, N + 16);
        mt_ff_reader *r = NULL;
        assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &sink, &r, &e), MT_OK);
        assert_int_equal(mt_ff_reader_into(r, out, N, &e), MT_OK);
        mt_status st = MT_OK;
        for (size_t off = 0; off < c.len && st == MT_OK; off += chunk)
            st = mt_ff_reader_feed(r, c.p + off, chunk < c.len - off ? chunk : c.len - off, &e);
        assert_int_equal(st, MT_OK);
        assert_int_equal(mt_ff_reader_finish(r, &e), MT_OK);
        assert_int_equal(mt_ff_reader_out_len(r), N);
        assert_memory_equal(out, p, N);
        assert_int_equal(out[N], 0xAA); /* nothing past the plaintext */
        mt_ff_reader_free(r);
    }
    assert_int_equal(sink.calls, 0);
    /* segment 2 tampered: segments 0-1 in out, segment 2's bytes zeros */
    size_t hdr = c.len - (N + 6 * MT_FF_TAG_LEN), at = hdr + 2 * (SMALL_SEG + MT_FF_TAG_LEN) + 7;
    c.p[at] ^= 1;
    memset(out, 0xAA, N + 16);
    mt_ff_reader *r = NULL;
    assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &sink, &r, &e), MT_OK);
    assert_int_equal(mt_ff_reader_into(r, out, N, &e), MT_OK);
    mt_status st = mt_ff_reader_feed(r, c.p, c.len, &e);
    if (st == MT_OK)
        st = mt_ff_reader_finish(r, &e);
    assert_int_equal(st, MT_ECRYPTO);
    assert_int_equal(mt_ff_reader_out_len(r), 2 * SMALL_SEG);
    assert_memory_equal(out, p, 2 * SMALL_SEG);
    for (size_t i = 2 * SMALL_SEG; i < 3 * SMALL_SEG; i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(out[3 * SMALL_SEG], 0xAA); /* the next segment was never decrypted */
    mt_ff_reader_free(r);
    c.p[at] ^= 1;
    /* too small a buffer */
    assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &sink, &r, &e), MT_OK);
    assert_int_equal(mt_ff_reader_into(r, out, N - 1, &e), MT_OK);
    st = mt_ff_reader_feed(r, c.p, c.len, &e);
    if (st == MT_OK)
        st = mt_ff_reader_finish(r, &e);
    assert_int_equal(st, MT_ETOOBIG);
    mt_ff_reader_free(r);
    /* only before the first feed; NULL refused */
    assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &sink, &r, &e), MT_OK);
    assert_int_equal(mt_ff_reader_into(r, NULL, N, &e), MT_EINVAL);
    assert_int_equal(mt_ff_reader_feed(r, c.p, 10, &e), MT_OK);
    assert_int_equal(mt_ff_reader_into(r, out, N, &e), MT_EINVAL);
    mt_ff_reader_free(r);
    assert_int_equal(sink.calls, 0);
    free(out);
    free(p);
    bytes_free(&c);
}

/* Segment i of a file with header hdr (hlen bytes), sealed by raw EVP calls
 * written from docs/formats.md 1.2 alone (not seg_seal): AES-256-GCM, nonce
 * prefix(7) || u32_be(i) || last, AAD the header; ciphertext then tag. */
static void reference_seal(const uint8_t *key, const uint8_t *hdr, size_t hlen, uint32_t i,
                           int last, const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t iv[12];
    int l = 0;
    memcpy(iv, hdr + 28, 7);
    iv[7] = (uint8_t)(i >> 24);
    iv[8] = (uint8_t)(i >> 16);
    iv[9] = (uint8_t)(i >> 8);
    iv[10] = (uint8_t)i;
    iv[11] = (uint8_t)last;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, hdr, (int)hlen), 1);
    if (n)
        assert_int_equal(EVP_EncryptUpdate(c, out, &l, in, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + n, &l), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + n), 1);
    EVP_CIPHER_CTX_free(c);
}

/* mt_ff_encrypt_into / mt_ff_decrypt_into: the one-shot helpers into the
 * caller's buffer. Their bytes are the documented layout (checked against
 * reference_seal: the format is unchanged by the one-shot fast path) and
 * interoperate with mt_ff_encrypt/_decrypt; a buffer one byte short fails
 * with MT_ETOOBIG before anything is written; a tampered segment fails with
 * MT_ECRYPTO and leaves the whole plaintext range of out zeroed. */
static void test_oneshot_into(void **state)
{
    (void)state;
    const size_t seg = MT_FF_DEFAULT_SEGMENT;
    for (size_t k = 0; k < 4; k++) {
        const size_t ns[4] = {0, 1000, 2 * seg, 3 * seg + 123};
        size_t n = ns[k], cl = (size_t)mt_ff_ciphertext_size(n), got = 99;
        uint8_t *p = malloc(n + 1), *c = malloc(cl + 1), *ref = malloc(cl), *q = malloc(n + 1);
        assert_true(p && c && ref && q);
        rng_fill(p, n);
        mt_err e;
        memset(c, 0xAA, cl + 1);
        assert_int_equal(mt_ff_encrypt_into(KEY, p, n, c, cl - 1, &got, &e), MT_ETOOBIG);
        assert_int_equal(got, 0);
        assert_int_equal(c[0], 0xAA);
        assert_int_equal(mt_ff_encrypt_into(KEY, n ? p : NULL, n, c, cl, &got, &e), MT_OK);
        assert_int_equal(got, cl);
        assert_int_equal(c[cl], 0xAA);
        /* byte-identical to the documented layout */
        uint8_t id[16];
        mt_ff_key_id(KEY, id);
        assert_memory_equal(c, "MTF1\x01\x01\x00\x00\x00\x01\x00\x00", 12);
        assert_memory_equal(c + 12, id, 16);
        assert_memory_equal(c + 35, "\0\0\0\0\0", 5);
        memcpy(ref, c, 40);
        size_t nseg = n ? (n + seg - 1) / seg : 1;
        for (size_t i = 0; i < nseg; i++) {
            size_t len = i + 1 < nseg ? seg : n - i * seg;
            reference_seal(KEY, c, 40, (uint32_t)i, i + 1 == nseg, p + i * seg, len,
                           ref + 40 + i * (seg + 16));
        }
        assert_memory_equal(c, ref, cl);
        /* interoperates with the allocating helpers */
        uint8_t *d = NULL;
        size_t dl = 0;
        assert_int_equal(mt_ff_decrypt(KEY, c, cl, &d, &dl, &e), MT_OK);
        assert_int_equal(dl, n);
        assert_memory_equal(d, p, n);
        free(d);
        uint8_t *c2 = NULL;
        size_t c2l = 0;
        assert_int_equal(mt_ff_encrypt(KEY, p, n, &c2, &c2l, &e), MT_OK);
        assert_int_equal(c2l, cl);
        memset(q, 0xAA, n + 1);
        assert_int_equal(mt_ff_decrypt_into(KEY, c2, c2l, q, n, &got, &e), MT_OK);
        assert_int_equal(got, n);
        assert_memory_equal(q, p, n);
        assert_int_equal(q[n], 0xAA);
        free(c2);
        /* too small, wrong key, tampered last segment: out[0..min(cap, cl))
         * wiped (mt_ff.h), nothing past it written */
        if (n) {
            memset(q, 0xAA, n + 1);
            assert_int_equal(mt_ff_decrypt_into(KEY, c, cl, q, n - 1, &got, &e), MT_ETOOBIG);
            assert_int_equal(got, 0);
            for (size_t i = 0; i < n - 1; i++)
                assert_int_equal(q[i], 0);
            assert_int_equal(q[n - 1], 0xAA);
        }
        memset(q, 0xAA, n + 1);
        assert_int_equal(mt_ff_decrypt_into(KEY2, c, cl, q, n, &got, &e), MT_ECRYPTO);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(q[i], 0);
        assert_int_equal(q[n], 0xAA);
        c[cl - 1] ^= 1;
        memset(q, 0xAA, n + 1);
        assert_int_equal(mt_ff_decrypt_into(KEY, c, cl, q, n, &got, &e), MT_ECRYPTO);
        assert_int_equal(got, 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(q[i], 0);
        assert_int_equal(q[n], 0xAA);
        free(p);
        free(c);
        free(ref);
        free(q);
    }
    uint8_t b[64];
    size_t got;
    mt_err e;
    assert_int_equal(mt_ff_encrypt_into(KEY, NULL, 1, b, sizeof b, &got, &e), MT_EINVAL);
    assert_int_equal(mt_ff_decrypt_into(KEY, b, sizeof b, NULL, 8, &got, &e), MT_EINVAL);
}

/* mt_ff_decrypt_into's wipe contract (mt_ff.h; review L2): failures before
 * any segment is opened (bad header, wrong key) wipe out[0..min(cap, len))
 * too and write nothing past it; a ciphertext shorter than cap wipes only
 * len bytes. */
static void test_decrypt_into_wipes(void **state)
{
    (void)state;
    mt_err e;
    size_t n = 5000, cl = (size_t)mt_ff_ciphertext_size(n), got = 7;
    uint8_t *p = malloc(n), *c = malloc(cl), *q = malloc(cl + 64);
    assert_true(p && c && q);
    rng_fill(p, n);
    assert_int_equal(mt_ff_encrypt_into(KEY, p, n, c, cl, &got, &e), MT_OK);
    for (int k = 0; k < 3; k++) {
        /* k 0: wrong key; 1: bad magic; 2: reserved byte set (bad header) */
        const uint8_t *key = k == 0 ? KEY2 : KEY;
        if (k == 1)
            c[0] ^= 1;
        if (k == 2) {
            c[0] ^= 1;
            c[6] ^= 1;
        }
        for (int big = 0; big < 2; big++) {
            size_t cap = big ? cl + 32 : n; /* cap > len: only len bytes wiped */
            memset(q, 0xA5, cl + 64);
            got = 7;
            assert_int_not_equal(mt_ff_decrypt_into(key, c, cl, q, cap, &got, &e), MT_OK);
            assert_int_equal(got, 0);
            size_t w = cap < cl ? cap : cl;
            for (size_t i = 0; i < w; i++)
                assert_int_equal(q[i], 0);
            for (size_t i = w; i < cl + 64; i++)
                assert_int_equal(q[i], 0xA5);
        }
    }
    /* a ciphertext shorter than any header */
    memset(q, 0xA5, 64);
    assert_int_equal(mt_ff_decrypt_into(KEY, c, 10, q, 32, &got, &e), MT_EINVAL);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(q[i], 0);
    for (size_t i = 10; i < 64; i++)
        assert_int_equal(q[i], 0xA5);
    free(p);
    free(c);
    free(q);
}

/* Review L1: in-place or overlapping one-shot calls are refused with
 * MT_EINVAL and leave both buffers untouched (a shifted overlap used to
 * seal plaintext already overwritten by ciphertext into a valid file). */
static void test_into_overlap_refused(void **state)
{
    (void)state;
    mt_err e;
    size_t n = 3000, cl = (size_t)mt_ff_ciphertext_size(n), got = 7;
    uint8_t *buf = malloc(2 * cl), *keep = malloc(2 * cl);
    assert_true(buf && keep);
    rng_fill(buf, 2 * cl);
    memcpy(keep, buf, 2 * cl);
    /* plaintext at buf + off, output at buf: in place, shifted both ways, last byte shared */
    const size_t offs[4] = {0, 40, cl - n, cl - 1};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(mt_ff_encrypt_into(KEY, buf + offs[k], n, buf, cl, &got, &e), MT_EINVAL);
        assert_non_null(strstr(e.msg, "overlaps"));
        assert_int_equal(got, 0);
        /* output ahead of the plaintext, still sharing bytes with it */
        size_t ahead = k == 0 ? 1 : k == 1 ? 40 : n - 1;
        assert_int_equal(mt_ff_encrypt_into(KEY, buf, n, buf + ahead, cl, &got, &e), MT_EINVAL);
        assert_memory_equal(buf, keep, 2 * cl);
    }
    /* adjacent is fine */
    assert_int_equal(mt_ff_encrypt_into(KEY, buf + cl, n, buf, cl, &got, &e), MT_OK);
    assert_int_equal(got, cl);
    /* decrypt: ciphertext at buf, output overlapping it; then adjacent */
    memcpy(keep, buf, 2 * cl);
    for (int k = 0; k < 3; k++) {
        uint8_t *o = k == 0 ? buf : k == 1 ? buf + 40 : buf + cl - 1;
        got = 7;
        assert_int_equal(mt_ff_decrypt_into(KEY, buf, cl, o, n, &got, &e), MT_EINVAL);
        assert_non_null(strstr(e.msg, "overlaps"));
        assert_int_equal(got, 0);
        assert_memory_equal(buf, keep, 2 * cl); /* nothing wiped either */
    }
    assert_int_equal(mt_ff_decrypt_into(KEY, buf, cl, buf + cl, n, &got, &e), MT_OK);
    assert_int_equal(got, n);
    assert_memory_equal(buf + cl, keep + cl, n); /* the plaintext it was sealed from */
    free(buf);
    free(keep);
}

/* Review M1 / L3: the one-shot helpers seal and open every segment with
 * their own copy of the header, not with the header bytes in the caller's
 * out / ct, which someone else may change meanwhile. Made deterministic
 * without threads: one memfd page is mapped twice, so writing one part of
 * a buffer changes another part (as a concurrent writer or a second
 * mapping of the same file would). */
static uint8_t *map_aliased(size_t len, size_t alias_page, int fd)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), span = (len + pg - 1) / pg * pg + pg;
    uint8_t *b = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(b != MAP_FAILED);
    assert_true(mmap(b + alias_page * pg, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                     0) == b + alias_page * pg);
    return b;
}

static void test_into_header_copy(void **state)
{
    (void)state;
    const size_t seg = MT_FF_DEFAULT_SEGMENT, pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = seg + 1000, cl = (size_t)mt_ff_ciphertext_size(n), got = 0;
    size_t span = (cl + pg - 1) / pg * pg + pg;
    if (2 * pg >= seg) { /* 64 KiB pages: page 1 would not lie inside segment 0 */
        print_message("test_into_header_copy: skipped, page size %zu\n", pg);
        skip();
    }
    uint8_t *p = malloc(n), *ref = malloc(1000 + 16);
    assert_true(p && ref);
    rng_fill(p, n);
    mt_err e;
    int fd = memfd_create("test_ff", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)pg), 0);

    /* encrypt: out's pages 0 and 1 are the same page, so sealing segment 0
     * overwrites the header in out (with ciphertext) before segment 1 */
    uint8_t *out = map_aliased(cl, 0, fd);
    assert_true(mmap(out + pg, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
                out + pg);
    assert_int_equal(mt_ff_encrypt_into(KEY, p, n, out, cl, &got, &e), MT_OK);
    assert_int_equal(got, cl);
    /* segment 1 (the last) sealed with the header now in out would mean its
     * nonce and AAD came from the caller's buffer after the header was
     * written: a nonce the caller (or anyone writing out) chose */
    reference_seal(KEY, out, 40, 1, 1, p + seg, 1000, ref);
    assert_memory_not_equal(out + 40 + seg + 16, ref, 1000 + 16);
    assert_int_equal(munmap(out, span), 0);

    /* decrypt: a correct file in ct whose page 0 (the header) is also out's
     * page 1, so opening segment 0 overwrites ct's header with plaintext
     * before segment 1 is opened; the copy taken first still opens it */
    uint8_t *c = NULL;
    size_t clen = 0;
    assert_int_equal(mt_ff_encrypt(KEY, p, n, &c, &clen, &e), MT_OK);
    uint8_t *ct = map_aliased(clen, 0, fd), *q = map_aliased(n, 1, fd);
    memcpy(ct, c, clen);
    assert_int_equal(mt_ff_decrypt_into(KEY, ct, clen, q, n, &got, &e), MT_OK);
    assert_int_equal(got, n);
    assert_memory_equal(q, p, n);
    assert_memory_not_equal(ct, c, 40); /* the header in ct did change */
    assert_int_equal(munmap(ct, (clen + pg - 1) / pg * pg + pg), 0);
    assert_int_equal(munmap(q, (n + pg - 1) / pg * pg + pg), 0);
    close(fd);
    free(c);
    free(p);
    free(ref);
}

/* Format version 2: outputs bound to (task, slot, file). Regression test of
 * issue 8 item 9: an output copied from another task, slot or file is refused
 * before any plaintext is released, and the binding is authenticated. */
static void test_output_binding(void **state)
{
    (void)state;
    static const char T1[] = "0123456789abcdef0123456789abcdef",
                      T2[] = "fedcba9876543210fedcba9876543210",
                      F1[] = "00000000000000000000000000000011",
                      F2[] = "00000000000000000000000000000022";
    mt_err e;
    mt_ff_binding b, other;
    assert_int_equal(mt_ff_binding_make(T1, "result", F1, &b, &e), MT_OK);
    assert_int_equal(mt_ff_binding_make("t1", "result", F1, &other, &e), MT_EINVAL);
    assert_int_equal(mt_ff_binding_make(T1, "", F1, &other, &e), MT_EINVAL);

    bytes ct = {0};
    mt_ff_writer *w = NULL;
    assert_int_equal(mt_ff_writer_new_segment(KEY, SMALL_SEG, bytes_sink, &ct, &w, &e), MT_OK);
    assert_int_equal(mt_ff_writer_bind(w, &b, &e), MT_OK);
    assert_int_equal(mt_ff_writer_write(w, g_plain, 2 * SMALL_SEG + 5, &e), MT_OK);
    assert_int_equal(mt_ff_writer_bind(w, &b, &e), MT_EINVAL); /* header already out */
    assert_int_equal(mt_ff_writer_finish(w, &e), MT_OK);
    mt_ff_writer_free(w);
    assert_int_equal(ct.len, MT_FF_HEADER_V2_LEN + 2 * SMALL_SEG + 5 + 3 * 16);

    mt_ff_header h;
    assert_int_equal(mt_ff_header_parse(ct.p, MT_FF_HEADER_LEN, &h, &e), MT_EINVAL);
    assert_int_equal(mt_ff_header_parse(ct.p, ct.len, &h, &e), MT_OK);
    assert_int_equal(h.version, 2);
    assert_true(h.bound);
    assert_int_equal(h.length, MT_FF_HEADER_V2_LEN);
    assert_int_equal(mt_ff_binding_check(&h, &b, &e), MT_OK);
    assert_int_equal(mt_ff_binding_check(&h, NULL, &e), MT_OK);

    /* readers without an expectation read it (one-shot and streaming, any chunking) */
    expect_ok(KEY, ct.p, ct.len, g_plain, 2 * SMALL_SEG + 5);
    bytes pt = {0};
    assert_int_equal(stream_decrypt(KEY, ct.p, ct.len, 1, &pt, &e), MT_OK);
    assert_int_equal(pt.len, 2 * SMALL_SEG + 5);
    bytes_free(&pt);

    /* the expected binding opens; any other is refused before any plaintext */
    const struct {
        const char *t, *s, *f, *why;
    } cases[] = {{T2, "result", F1, "another task"},
                 {T1, "other", F1, "another output slot"},
                 {T1, "result", F2, "another output file"}};
    for (size_t k = 0; k <= 3; k++) {
        mt_ff_binding x = b;
        if (k < 3)
            assert_int_equal(mt_ff_binding_make(cases[k].t, cases[k].s, cases[k].f, &x, &e),
                             MT_OK);
        mt_ff_reader *r = NULL;
        assert_int_equal(mt_ff_reader_new(KEY, bytes_sink, &pt, &r, &e), MT_OK);
        mt_ff_reader_expect(r, &x);
        mt_status st = mt_ff_reader_feed(r, ct.p, ct.len, &e);
        if (st == MT_OK)
            st = mt_ff_reader_finish(r, &e);
        mt_ff_reader_free(r);
        if (k == 3) {
            assert_int_equal(st, MT_OK);
            assert_int_equal(pt.len, 2 * SMALL_SEG + 5);
        } else {
            assert_int_equal(st, MT_ECRYPTO);
            assert_non_null(strstr(e.msg, cases[k].why));
            assert_int_equal(pt.len, 0);
        }
        bytes_free(&pt);
    }

    /* the binding is authenticated: rewriting it in the header breaks every segment */
    uint8_t *c = malloc(ct.len);
    memcpy(c, ct.p, ct.len);
    c[40] ^= 0x01;
    expect_fail(KEY, c, ct.len, MT_ECRYPTO);
    /* downgrade to version 1 (drop the binding) fails too */
    c[40] ^= 0x01;
    c[4] = 1;
    uint8_t *v1 = malloc(ct.len - 48);
    memcpy(v1, c, 40);
    memcpy(v1 + 40, c + 88, ct.len - 88);
    expect_fail(KEY, v1, ct.len - 48, MT_ECRYPTO);
    free(v1);
    free(c);

    /* an unbound (version 1) file is refused where a binding is expected */
    bytes v1ct = {0};
    stream_encrypt(KEY, SMALL_SEG, g_plain, 10, 0, &v1ct);
    assert_int_equal(mt_ff_header_parse(v1ct.p, v1ct.len, &h, &e), MT_OK);
    assert_false(h.bound);
    assert_int_equal(mt_ff_binding_check(&h, &b, &e), MT_ECRYPTO);
    assert_non_null(strstr(e.msg, "not bound"));

    /* file helper: a mismatch leaves no output file */
    char dir[] = "/tmp/mt_ff_bind_XXXXXX", in[64], out[64];
    assert_non_null(mkdtemp(dir));
    snprintf(in, sizeof in, "%s/ct", dir);
    snprintf(out, sizeof out, "%s/pt", dir);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ct.p, 1, ct.len, f), ct.len);
    fclose(f);
    mt_ff_binding x;
    assert_int_equal(mt_ff_binding_make(T2, "result", F1, &x, &e), MT_OK);
    assert_int_equal(mt_ff_decrypt_file_bound(KEY, in, out, &x, &e), MT_ECRYPTO);
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_equal(mt_ff_decrypt_file_bound(KEY, in, out, &b, &e), MT_OK);
    assert_int_equal(access(out, F_OK), 0);
    unlink(out);
    unlink(in);
    DIR *d = opendir(dir);
    struct dirent *de;
    int left = 0;
    while ((de = readdir(d)))
        left += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(left, 0);
    rmdir(dir);
    bytes_free(&v1ct);
    bytes_free(&ct);
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/mt_ff_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char in[256], enc[256], dec[256], bad[256];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(enc, sizeof enc, "%s/in.mtf", dir);
    snprintf(dec, sizeof dec, "%s/out", dir);
    snprintf(bad, sizeof bad, "%s/bad.mtf", dir);
    size_t n = 3 * 1024 * 1024 + 77;
    uint8_t *plain = malloc(n);
    rng_fill(plain, n);
    write_file(in, plain, n);
    mt_err e;
    assert_int_equal(mt_ff_encrypt_file(KEY, in, enc, &e), MT_OK);
    assert_int_equal(mt_ff_decrypt_file(KEY, enc, dec, &e), MT_OK);
    uint8_t *got = NULL;
    size_t gl = 0;
    assert_int_equal(mt_file_read(dec, 64u << 20, &got, &gl, &e), MT_OK);
    assert_int_equal(gl, n);
    assert_memory_equal(got, plain, n);
    free(got);
    struct stat st;
    assert_int_equal(stat(dec, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(count_entries(dir), 3);
    assert_int_equal(unlink(dec), 0);

    /* wrong key: nothing at out_path, no temporary left */
    assert_int_equal(mt_ff_decrypt_file(KEY2, enc, dec, &e), MT_ECRYPTO);
    assert_int_not_equal(access(dec, F_OK), 0);
    assert_int_equal(count_entries(dir), 2);

    /* tampered late in the file (after many segments were written to tmp) */
    uint8_t *ct = NULL;
    size_t cl = 0;
    assert_int_equal(mt_file_read(enc, 64u << 20, &ct, &cl, &e), MT_OK);
    ct[cl - 5] ^= 1;
    write_file(bad, ct, cl);
    assert_int_equal(mt_ff_decrypt_file(KEY, bad, dec, &e), MT_ECRYPTO);
    assert_int_not_equal(access(dec, F_OK), 0);
    /* truncated at a segment boundary */
    write_file(bad, ct, 40 + 2 * (MT_FF_DEFAULT_SEGMENT + 16));
    assert_int_equal(mt_ff_decrypt_file(KEY, bad, dec, &e), MT_ECRYPTO);
    assert_int_not_equal(access(dec, F_OK), 0);
    assert_int_equal(count_entries(dir), 3);
    free(ct);

    /* a pre-existing out_path is left untouched on failure */
    write_file(dec, (const uint8_t *)"keep", 4);
    assert_int_equal(mt_ff_decrypt_file(KEY, bad, dec, &e), MT_ECRYPTO);
    assert_int_equal(mt_file_read(dec, 100, &got, &gl, &e), MT_OK);
    assert_int_equal(gl, 4);
    assert_memory_equal(got, "keep", 4);
    free(got);
    unlink(dec);

    /* missing input, unwritable output directory */
    char missing[300], nodir[300];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/out", dir);
    assert_int_equal(mt_ff_encrypt_file(KEY, missing, enc, &e), MT_ENOTFOUND);
    assert_non_null(strstr(e.msg, "nope"));
    assert_int_equal(mt_ff_encrypt_file(KEY, in, nodir, &e), MT_EIO);
    assert_int_equal(count_entries(dir), 3);

    /* empty file round trip */
    write_file(in, plain, 0);
    assert_int_equal(mt_ff_encrypt_file(KEY, in, enc, &e), MT_OK);
    assert_int_equal(stat(enc, &st), 0);
    assert_int_equal(st.st_size, 56);
    assert_int_equal(mt_ff_decrypt_file(KEY, enc, dec, &e), MT_OK);
    assert_int_equal(stat(dec, &st), 0);
    assert_int_equal(st.st_size, 0);

    unlink(in);
    unlink(enc);
    unlink(dec);
    unlink(bad);
    assert_int_equal(rmdir(dir), 0);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_id_and_sizes),
        cmocka_unit_test(test_roundtrip_sizes),
        cmocka_unit_test(test_small_segments),
        cmocka_unit_test(test_header_parse),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_extension),
        cmocka_unit_test(test_reorder_and_drop),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_swap_between_files),
        cmocka_unit_test(test_crafted_segments),
        cmocka_unit_test(test_segment_limit),
        cmocka_unit_test(test_api_misuse_and_sink_errors),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_output_binding),
        cmocka_unit_test(test_reader_into),
        cmocka_unit_test(test_oneshot_into),
        cmocka_unit_test(test_decrypt_into_wipes),
        cmocka_unit_test(test_into_overlap_refused),
        cmocka_unit_test(test_into_header_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
