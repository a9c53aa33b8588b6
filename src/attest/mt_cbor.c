/* mt_cbor: minimal CBOR reader; see mt_cbor.h. */
#include "mt_cbor.h"

#include <string.h>

bool mt_cbor_head(mt_rd *r, uint8_t *major, uint64_t *arg)
{
    uint8_t ib = mt_rd_u8(r);
    if (!mt_rd_ok(r))
        return false;
    uint8_t ai = ib & 0x1f;
    *major = ib >> 5;
    if (ai < 24)
        *arg = ai;
    else if (ai == 24)
        *arg = mt_rd_u8(r);
    else if (ai == 25)
        *arg = mt_rd_u16be(r);
    else if (ai == 26)
        *arg = mt_rd_u32be(r);
    else if (ai == 27)
        *arg = mt_rd_u64be(r);
    else {
        r->failed = true; /* 28..30 reserved, 31 indefinite */
        r->off = r->len;
        return false;
    }
    return mt_rd_ok(r);
}

bool mt_cbor_peek(const mt_rd *r, uint8_t *major)
{
    if (r->failed || r->off >= r->len)
        return false;
    *major = r->p[r->off] >> 5;
    return true;
}

/* Skips one item at nesting depth d. */
static bool skip_depth(mt_rd *r, int d)
{
    uint8_t mt;
    uint64_t arg;
    if (d > MT_CBOR_MAX_DEPTH || !mt_cbor_head(r, &mt, &arg))
        goto bad;
    switch (mt) {
    case MT_CBOR_UINT:
    case MT_CBOR_NINT:
    case MT_CBOR_SIMPLE: return true;
    case MT_CBOR_BSTR:
    case MT_CBOR_TSTR:
        if (arg > mt_rd_left(r))
            goto bad;
        mt_rd_skip(r, (size_t)arg);
        return mt_rd_ok(r);
    case MT_CBOR_TAG: return skip_depth(r, d + 1);
    case MT_CBOR_ARRAY:
    case MT_CBOR_MAP: {
        /* Each item takes at least one byte: bound the count by what is left. */
        if (arg > mt_rd_left(r))
            goto bad;
        uint64_t n = mt == MT_CBOR_MAP ? 2 * arg : arg;
        for (uint64_t i = 0; i < n; i++)
            if (!skip_depth(r, d + 1))
                return false;
        return true;
    }
    }
bad:
    r->failed = true;
    r->off = r->len;
    return false;
}

bool mt_cbor_skip(mt_rd *r) { return skip_depth(r, 0); }

/* A string of the given major type. */
static bool str(mt_rd *r, uint8_t want, const uint8_t **p, size_t *n)
{
    uint8_t mt;
    uint64_t arg;
    if (!mt_cbor_head(r, &mt, &arg) || mt != want || arg > mt_rd_left(r)) {
        r->failed = true;
        r->off = r->len;
        return false;
    }
    *n = (size_t)arg;
    *p = mt_rd_take(r, *n);
    return mt_rd_ok(r);
}

bool mt_cbor_bstr(mt_rd *r, const uint8_t **p, size_t *n) { return str(r, MT_CBOR_BSTR, p, n); }

bool mt_cbor_tstr(mt_rd *r, const char **p, size_t *n)
{
    const uint8_t *q;
    if (!str(r, MT_CBOR_TSTR, &q, n))
        return false;
    *p = (const char *)q;
    return true;
}

bool mt_cbor_int(mt_rd *r, int64_t *out)
{
    uint8_t mt;
    uint64_t arg;
    if (!mt_cbor_head(r, &mt, &arg) || (mt != MT_CBOR_UINT && mt != MT_CBOR_NINT) ||
        arg > (uint64_t)INT64_MAX) {
        r->failed = true;
        r->off = r->len;
        return false;
    }
    *out = mt == MT_CBOR_UINT ? (int64_t)arg : -1 - (int64_t)arg;
    return true;
}

bool mt_cbor_null(mt_rd *r)
{
    uint8_t b = mt_rd_u8(r);
    return mt_rd_ok(r) && b == 0xf6;
}

/* One decoded map key for mt_cbor_map_unique. */
typedef struct cbor_key {
    uint8_t major;
    uint64_t arg;
    const uint8_t *p; /* string bytes, or the whole encoding for other types */
    size_t n;
} cbor_key;

bool mt_cbor_map_unique(const mt_rd *r)
{
    mt_rd c = *r;
    uint8_t mt;
    uint64_t n;
    if (!mt_cbor_head(&c, &mt, &n) || mt != MT_CBOR_MAP || n > MT_CBOR_MAX_MAP_KEYS)
        return false;
    cbor_key keys[MT_CBOR_MAX_MAP_KEYS];
    for (uint64_t i = 0; i < n; i++) {
        cbor_key *k = &keys[i];
        const uint8_t *start = mt_rd_ptr(&c);
        uint8_t km;
        if (!mt_cbor_peek(&c, &km))
            return false;
        if (km == MT_CBOR_UINT || km == MT_CBOR_NINT) {
            if (!mt_cbor_head(&c, &k->major, &k->arg))
                return false;
            k->p = NULL;
            k->n = 0;
        } else if (km == MT_CBOR_BSTR || km == MT_CBOR_TSTR) {
            if (!str(&c, km, &k->p, &k->n))
                return false;
            k->major = km;
            k->arg = k->n;
        } else {
            if (!mt_cbor_skip(&c))
                return false;
            k->major = km;
            k->arg = 0;
            k->p = start;
            k->n = (size_t)(mt_rd_ptr(&c) - start);
        }
        for (uint64_t j = 0; j < i; j++)
            if (keys[j].major == k->major && keys[j].arg == k->arg && keys[j].n == k->n &&
                (k->n == 0 || memcmp(keys[j].p, k->p, k->n) == 0))
                return false;
        if (!mt_cbor_skip(&c))
            return false;
    }
    return mt_rd_ok(&c);
}

size_t mt_cbor_put_head(uint8_t *out, uint8_t major, uint64_t arg)
{
    uint8_t m = (uint8_t)(major << 5);
    if (arg < 24) {
        out[0] = m | (uint8_t)arg;
        return 1;
    }
    size_t nb = arg <= 0xff ? 1 : arg <= 0xffff ? 2 : arg <= 0xffffffffu ? 4 : 8;
    out[0] = m | (nb == 1 ? 24 : nb == 2 ? 25 : nb == 4 ? 26 : 27);
    for (size_t i = 0; i < nb; i++)
        out[1 + i] = (uint8_t)(arg >> (8 * (nb - 1 - i)));
    return 1 + nb;
}
