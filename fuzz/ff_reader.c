/* Fuzz target for the mt_ff reader and header parser.
 * Input: byte 0 picks the feed chunk size (1..256, or whole-buffer when 0),
 * the rest is an mt_ff file fed to a reader keyed with FUZZ_KEY (bytes
 * 0x00..0x1f). The same bytes go through the one-shot decrypt and
 * mt_ff_header_parse. Must never crash or leak; any status is fine, but a
 * successful one-shot and streaming decrypt must agree, and so must a reader
 * expecting a version 2 file's own binding (one expecting another binding
 * must fail without releasing plaintext), and so must a reader decrypting
 * into a buffer (mt_ff_reader_into), and so must mt_ff_decrypt_into (whose
 * failure leaves only zeros where it wrote). */
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
    /* one-shot into a caller's buffer: agrees too; a failure leaves zeros */
    uint8_t *dst = malloc(size ? size : 1);
    if (dst) {
        size_t got = 1;
        memset(dst, 0xA5, size ? size : 1);
        mt_status s4 = mt_ff_decrypt_into(key, data, size, dst, size, &got, &err);
        if ((s4 == MT_OK) != (st1 == MT_OK) || (s4 == MT_OK && got != plain_len) ||
            (s4 != MT_OK && got != 0) || (s4 == MT_OK && got && memcmp(dst, plain, got)))
            abort();
        if (s4 == MT_ECRYPTO)
            for (size_t i = 0; i < size && dst[i] != 0xA5; i++)
                if (dst[i] != 0)
                    abort(); /* plaintext of a failed decryption left behind */
        free(dst);
    }
    free(plain);
    free(a.p);
    return 0;
}
