/* mt_rd: bounds-checked reader; see mt_rd.h. */
#include "mt_rd.h"

#include <stdio.h>
#include <string.h>

void mt_rd_init(mt_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->off = 0;
    r->failed = false;
}

bool mt_rd_ok(const mt_rd *r) { return !r->failed; }

size_t mt_rd_left(const mt_rd *r) { return r->len - r->off; }

const uint8_t *mt_rd_ptr(const mt_rd *r) { return r->p ? r->p + r->off : NULL; }

/* Marks r failed and moves the cursor to the end. */
static void rd_fail(mt_rd *r)
{
    r->failed = true;
    r->off = r->len;
}

const uint8_t *mt_rd_take(mt_rd *r, size_t n)
{
    if (r->failed || n > r->len - r->off) {
        rd_fail(r);
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

void mt_rd_bytes(mt_rd *r, void *out, size_t n)
{
    const uint8_t *q = mt_rd_take(r, n);
    if (q)
        memcpy(out, q, n);
    else if (n)
        memset(out, 0, n);
}

void mt_rd_skip(mt_rd *r, size_t n) { (void)mt_rd_take(r, n); }

mt_rd mt_rd_sub(mt_rd *r, size_t n)
{
    mt_rd s;
    const uint8_t *q = mt_rd_take(r, n);
    mt_rd_init(&s, q, q ? n : 0);
    if (!q)
        s.failed = true;
    return s;
}

uint8_t mt_rd_u8(mt_rd *r)
{
    const uint8_t *q = mt_rd_take(r, 1);
    return q ? q[0] : 0;
}

/* Little-endian unsigned of n <= 8 bytes. */
static uint64_t rd_le(mt_rd *r, size_t n)
{
    const uint8_t *q = mt_rd_take(r, n);
    uint64_t v = 0;
    if (!q)
        return 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | q[i];
    return v;
}

/* Big-endian unsigned of n <= 8 bytes. */
static uint64_t rd_be(mt_rd *r, size_t n)
{
    const uint8_t *q = mt_rd_take(r, n);
    uint64_t v = 0;
    if (!q)
        return 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | q[i];
    return v;
}

uint16_t mt_rd_u16le(mt_rd *r) { return (uint16_t)rd_le(r, 2); }
uint32_t mt_rd_u32le(mt_rd *r) { return (uint32_t)rd_le(r, 4); }
uint64_t mt_rd_u64le(mt_rd *r) { return rd_le(r, 8); }
uint16_t mt_rd_u16be(mt_rd *r) { return (uint16_t)rd_be(r, 2); }
uint32_t mt_rd_u32be(mt_rd *r) { return (uint32_t)rd_be(r, 4); }
uint64_t mt_rd_u64be(mt_rd *r) { return rd_be(r, 8); }

bool mt_der_next(mt_rd *r, mt_der *out)
{
    memset(out, 0, sizeof *out);
    uint8_t tag = mt_rd_u8(r);
    uint8_t l0 = mt_rd_u8(r);
    if (!mt_rd_ok(r) || (tag & 0x1f) == 0x1f) {
        rd_fail(r);
        return false;
    }
    size_t len = l0;
    if (l0 & 0x80) {
        size_t nb = l0 & 0x7f;
        if (nb == 0 || nb > 4) {
            rd_fail(r);
            return false;
        }
        len = (size_t)rd_be(r, nb);
    }
    const uint8_t *v = mt_rd_take(r, len);
    if (!v && len) {
        return false;
    }
    if (!mt_rd_ok(r))
        return false;
    out->tag = tag;
    out->val = v;
    out->len = len;
    return true;
}

bool mt_der_uint(const mt_der *d, uint64_t *out)
{
    if (d->tag != 0x02 || d->len == 0 || (d->val[0] & 0x80))
        return false;
    size_t i = 0;
    while (i + 1 < d->len && d->val[i] == 0)
        i++;
    if (d->len - i > 8)
        return false;
    uint64_t v = 0;
    for (; i < d->len; i++)
        v = (v << 8) | d->val[i];
    *out = v;
    return true;
}

bool mt_der_oid_text(const uint8_t *val, size_t len, char *out, size_t cap)
{
    if (!len || cap < 2)
        return false;
    size_t o = 0;
    uint64_t acc = 0;
    bool first = true;
    for (size_t i = 0; i < len; i++) {
        if (acc > (UINT64_MAX >> 7))
            return false;
        acc = (acc << 7) | (val[i] & 0x7f);
        if (val[i] & 0x80) {
            if (i + 1 == len)
                return false;
            continue;
        }
        int n;
        if (first) {
            uint64_t a = acc < 80 ? acc / 40 : 2;
            n = snprintf(out + o, cap - o, "%llu.%llu", (unsigned long long)a,
                         (unsigned long long)(acc - a * 40));
            first = false;
        } else {
            n = snprintf(out + o, cap - o, ".%llu", (unsigned long long)acc);
        }
        if (n < 0 || (size_t)n >= cap - o)
            return false;
        o += (size_t)n;
        acc = 0;
    }
    return true;
}
