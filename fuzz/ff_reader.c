/* Fuzz target for the mt_ff reader and header parser.
 * Input: byte 0 picks the feed chunk size (1..256, or whole-buffer when 0),
 * the rest is an mt_ff file fed to a reader keyed with FUZZ_KEY (bytes
 * 0x00..0x1f). The same bytes go through the one-shot decrypt and
 * mt_ff_header_parse. Must never crash or leak; any status is fine, but a
 * successful one-shot and streaming decrypt must agree, and so must a reader
 * expecting a version 2 file's own binding (one expecting another binding
 * must fail without releasing plaintext), and so must a reader decrypting
 * into a buffer (mt_ff_reader_into), and so must mt_ff_decrypt_into (whose
 * failure, MT_ETOOBIG for a buffer one byte short included, leaves exactly
 * out[0..min(cap, len)) zeros and nothing written past it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_ff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t *p;
    size_t len, cap;
} acc;

static mt_status acc_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    acc *a = ctx;
    if (len == 0)
        return MT_OK;
    if (a->len + len > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        while (cap < a->len + len)
            cap *= 2;
        uint8_t *p = realloc(a->p, cap);
        if (!p)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, buf, len);
    a->len += len;
    return MT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[MT_FF_KEY_LEN];
    for (int i = 0; i < MT_FF_KEY_LEN; i++)
        key[i] = (uint8_t)i;
    if (size == 0)
        return 0;
    size_t chunk = data[0] ? data[0] : size;
    data++;
    size--;

    mt_ff_header h;
    mt_err err;
    (void)mt_ff_header_parse(data, size, &h, &err);

    acc a = {0};
    mt_ff_reader *r = NULL;
    mt_status st = mt_ff_reader_new(key, acc_sink, &a, &r, &err);
    for (size_t off = 0; st == MT_OK && off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        st = mt_ff_reader_feed(r, data + off, n, &err);
    }
    if (st == MT_OK)
        st = mt_ff_reader_finish(r, &err);
    mt_ff_reader_free(r);

    /* version 2: a reader expecting the file's own binding agrees with the
     * plain reader; one expecting another binding never succeeds */
    mt_ff_header h2;
    if (mt_ff_header_parse(data, size, &h2, &err) == MT_OK && h2.bound) {
        for (int other = 0; other < 2; other++) {
            mt_ff_binding want = h2.binding;
            want.slot_hash[0] ^= (uint8_t)other;
            acc a2 = {0};
            mt_ff_reader *r2 = NULL;
            mt_status s2 = mt_ff_reader_new(key, acc_sink, &a2, &r2, &err);
            mt_ff_reader_expect(r2, &want);
            if (s2 == MT_OK)
                s2 = mt_ff_reader_feed(r2, data, size, &err);
            if (s2 == MT_OK)
                s2 = mt_ff_reader_finish(r2, &err);
            mt_ff_reader_free(r2);
            if (other ? (s2 == MT_OK || a2.len) : ((s2 == MT_OK) != (st == MT_OK)))
                abort();
            free(a2.p);
        }
    }

    /* decrypting into a buffer of the input's size (mt_ff_reader_into, as
     * the worker does) agrees with the sink; what it released before a
     * failure is the sink's (a failed segment is wiped, never released) */
    uint8_t *into = malloc(size + 1);
    if (into) {
        mt_ff_reader *r3 = NULL;
        mt_status s3 = mt_ff_reader_new(key, acc_sink, &a, &r3, &err);
        size_t before = a.len;
        if (s3 == MT_OK)
            s3 = mt_ff_reader_into(r3, into, size, &err);
        for (size_t off = 0; s3 == MT_OK && off < size; off += chunk) {
            size_t n = size - off < chunk ? size - off : chunk;
            s3 = mt_ff_reader_feed(r3, data + off, n, &err);
        }
        if (s3 == MT_OK)
            s3 = mt_ff_reader_finish(r3, &err);
        size_t got = mt_ff_reader_out_len(r3);
        mt_ff_reader_free(r3);
        if (a.len != before || (s3 == MT_OK) != (st == MT_OK) || got != a.len ||
            (got && memcmp(into, a.p, got)))
            abort(); /* the sink was called, or the two modes disagree */
        free(into);
    }

    uint8_t *plain = NULL;
    size_t plain_len = 0;
    mt_status st1 = mt_ff_decrypt(key, data, size, &plain, &plain_len, &err);
    if ((st == MT_OK) != (st1 == MT_OK))
        abort(); /* one-shot and streaming readers disagree */
    if (st == MT_OK && (plain_len != a.len || (plain_len && memcmp(plain, a.p, plain_len))))
        abort();
    /* a success's plaintext length follows from the header and the length
     * alone (docs/formats.md 1.2): full segments of seg + 16 bytes, then a
     * last one of 16..seg + 16 */
    if (st1 == MT_OK) {
        mt_ff_header h3;
        if (mt_ff_header_parse(data, size, &h3, &err) != MT_OK || size < h3.length)
            abort();
        size_t body = size - h3.length, sc = (size_t)h3.segment_size + MT_FF_TAG_LEN;
        size_t nseg = body / sc + (body % sc != 0);
        if (plain_len != body - MT_FF_TAG_LEN * nseg)
            abort();
    }
    /* one-shot into a caller's buffer (cap = the input's size, then one
     * byte less than the plaintext): agrees with mt_ff_decrypt; on success
     * out[plain_len..] is untouched; on any failure (MT_ETOOBIG included)
     * out[0..min(cap, size)) is all zeros and nothing past it written
     * (mt_ff.h) */
    const size_t guard = 64;
    uint8_t *dst = malloc(size + guard);
    for (int small = 0; dst && small < 2; small++) {
        if (small && (st1 != MT_OK || plain_len == 0))
            break;
        size_t cap = small ? plain_len - 1 : size, got = 1;
        memset(dst, 0xA5, size + guard);
        mt_status s4 = mt_ff_decrypt_into(key, data, size, dst, cap, &got, &err);
        if (small ? s4 != MT_ETOOBIG : (s4 == MT_OK) != (st1 == MT_OK))
            abort();
        if (s4 == MT_OK && (got != plain_len || (got && memcmp(dst, plain, got))))
            abort();
        if (s4 != MT_OK && got != 0)
            abort();
        size_t zeros = s4 == MT_OK ? 0 : (cap < size ? cap : size);
        size_t from = s4 == MT_OK ? got : zeros;
        for (size_t i = 0; i < zeros; i++)
            if (dst[i] != 0)
                abort(); /* plaintext (or old bytes) of a failed decryption left behind */
        for (size_t i = from; i < size + guard; i++)
            if (dst[i] != 0xA5)
                abort(); /* written past the plaintext / the wiped range */
    }
    free(dst);
    free(plain);
    free(a.p);
    return 0;
}
