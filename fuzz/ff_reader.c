/* Fuzz target for the mt_ff reader and header parser.
 * Input: byte 0 picks the feed chunk size (1..256, or whole-buffer when 0),
 * the rest is an mt_ff file fed to a reader keyed with FUZZ_KEY (bytes
 * 0x00..0x1f). The same bytes go through the one-shot decrypt and
 * mt_ff_header_parse. Must never crash or leak; any status is fine, but a
 * successful one-shot and streaming decrypt must agree. */
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

    uint8_t *plain = NULL;
    size_t plain_len = 0;
    mt_status st1 = mt_ff_decrypt(key, data, size, &plain, &plain_len, &err);
    if ((st == MT_OK) != (st1 == MT_OK))
        abort(); /* one-shot and streaming readers disagree */
    if (st == MT_OK && (plain_len != a.len || (plain_len && memcmp(plain, a.p, plain_len))))
        abort();
    free(plain);
    free(a.p);
    return 0;
}
