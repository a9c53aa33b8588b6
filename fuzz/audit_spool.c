/* Fuzz target for the audit spool file reader (mt_spool_parse,
 * src/core/untrusted_spool.c): the spool lies on the host's disk, so its
 * bytes are outside input. The first byte picks the mode:
 *  - even: the rest is a spool file image, authenticated under a fixed key
 *    (the corpus holds valid images under it, so mutations reach the
 *    records' fields past the MACs only where they keep them valid: the
 *    length, structure and MAC checks themselves are what is fuzzed);
 *  - odd: the rest is cut into records (time, status, three strings), which
 *    are written as an image with mt_spool_image and read back: they must
 *    come back equal, and a cut image is refused.
 * Either way the reader accepts or refuses; never crashes, leaks or reads
 * out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "untrusted_spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[32] = {0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

static void take(const uint8_t **p, const uint8_t *end, char *out, size_t max)
{
    size_t l = 0;
    if (*p < end) {
        l = **p % (max + 1);
        (*p)++;
    }
    size_t i = 0;
    for (; i < l && *p < end; i++, (*p)++)
        out[i] = (char)(**p ? **p : 'x'); /* no NUL inside a string */
    out[i] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    mt_err err;
    mt_spool_rec *recs = NULL;
    size_t cnt = 0;
    if ((data[0] & 1) == 0) {
        uint8_t id[16], last[32];
        if (mt_spool_parse(b, n, KEY, &recs, &cnt, id, last, &err) == MT_OK) {
            for (size_t i = 0; i < cnt; i++)
                if (strlen(recs[i].actor) > MT_SPOOL_ACTOR_MAX ||
                    strlen(recs[i].action) > MT_SPOOL_ACTION_MAX ||
                    strlen(recs[i].object) > MT_SPOOL_OBJECT_MAX)
                    abort();
        } else if (recs || cnt) {
            abort();
        }
        free(recs);
        return 0;
    }
    /* odd: records from the bytes, written and read back */
    mt_spool_rec in[8];
    size_t k = 0;
    const uint8_t *p = b, *end = b + n;
    while (k < 8 && end - p >= 12) {
        mt_spool_rec *r = &in[k++];
        memset(r, 0, sizeof *r);
        uint64_t t = 0;
        for (int i = 0; i < 8; i++)
            t = t << 8 | *p++;
        r->time = (int64_t)t;
        uint32_t s = 0;
        for (int i = 0; i < 4; i++)
            s = s << 8 | *p++;
        r->status = (int32_t)s;
        take(&p, end, r->actor, MT_SPOOL_ACTOR_MAX);
        take(&p, end, r->action, MT_SPOOL_ACTION_MAX);
        take(&p, end, r->object, MT_SPOOL_OBJECT_MAX);
    }
    uint8_t id[16] = {0}, *img = NULL;
    size_t il = 0;
    if (n >= 16)
        memcpy(id, b, 16);
    if (mt_spool_image(KEY, id, in, k, &img, &il, &err) != MT_OK)
        abort();
    if (mt_spool_parse(img, il, KEY, &recs, &cnt, NULL, NULL, &err) != MT_OK || cnt != k)
        abort();
    for (size_t i = 0; i < k; i++)
        if (recs[i].time != in[i].time || recs[i].status != in[i].status ||
            strcmp(recs[i].actor, in[i].actor) || strcmp(recs[i].action, in[i].action) ||
            strcmp(recs[i].object, in[i].object))
            abort();
    /* any cut of a valid image that is not at a record boundary is refused */
    if (il > 0) {
        size_t cut = il - 1;
        mt_spool_rec *r2 = NULL;
        size_t c2 = 0;
        mt_status rc = mt_spool_parse(img, cut, KEY, &r2, &c2, NULL, NULL, &err);
        if (rc == MT_OK && c2 >= cnt)
            abort();
        free(r2);
    }
    free(img);
    free(recs);
    return 0;
}
