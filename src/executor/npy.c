/* npy: see npy.h. The header is parsed by hand, byte by byte, within its
 * declared length; nothing is evaluated. */
#include "npy.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NPY_MAX_DIM (1ull << 40)

typedef struct {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool lit(cur *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* a quoted Python string (single or double quotes, no escapes) into out */
static bool qstr(cur *c, char *out, size_t cap)
{
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = 0;
    return true;
}

static bool uint_tok(cur *c, uint64_t *v)
{
    uint64_t x = 0;
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        x = x * 10 + (uint64_t)(*c->p - '0');
        if (x > NPY_MAX_DIM)
            return false;
        c->p++;
    }
    if (c->p == s)
        return false;
    /* Python 2 long suffix, written by old NumPy */
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *v = x;
    return true;
}

static mt_status parse_shape(cur *c, mt_npy *out, mt_err *err)
{
    if (!lit(c, "("))
        return mt_err_set(err, MT_EINVAL, "npy header: 'shape' is not a tuple");
    out->rank = 0;
    for (;;) {
        skip_ws(c);
        if (lit(c, ")"))
            return MT_OK;
        uint64_t d;
        if (!uint_tok(c, &d))
            return mt_err_set(err, MT_EINVAL,
                              "npy header: a 'shape' dimension is not an integer in [0, 2^40]");
        if (out->rank >= MT_NPY_MAX_RANK)
            return mt_err_set(err, MT_EINVAL, "npy header: more than %d dimensions",
                              MT_NPY_MAX_RANK);
        out->dims[out->rank++] = (int64_t)d;
        skip_ws(c);
        if (lit(c, ","))
            continue;
        skip_ws(c);
        if (lit(c, ")"))
            return MT_OK;
        return mt_err_set(err, MT_EINVAL, "npy header: malformed 'shape' tuple");
    }
}

mt_status mt_npy_parse(const uint8_t *buf, size_t len, mt_npy *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (!buf || len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return mt_err_set(err, MT_EINVAL, "not a .npy file (no \\x93NUMPY magic)");
    unsigned major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return mt_err_set(err, MT_EINVAL, "npy: truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
        off = 12;
    } else {
        return mt_err_set(err, MT_EINVAL, "npy: format version %u not supported (1, 2 or 3)",
                          major);
    }
    if (hlen > MT_NPY_MAX_HEADER)
        return mt_err_set(err, MT_EINVAL, "npy: header longer than %d bytes", MT_NPY_MAX_HEADER);
    if (hlen > len - off)
        return mt_err_set(err, MT_EINVAL, "npy: truncated header");
    cur c = {(const char *)buf + off, (const char *)buf + off + hlen};
    /* trailing padding: spaces and one newline at the end */
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\n' || c.end[-1] == '\0'))
        c.end--;
    for (const char *q = c.p; q < c.end; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            return mt_err_set(err, MT_EINVAL, "npy: header is not printable ASCII");
    skip_ws(&c);
    if (!lit(&c, "{"))
        return mt_err_set(err, MT_EINVAL, "npy header: not a dict");
    bool have_descr = false, have_order = false, have_shape = false;
    char descr[8] = "";
    for (;;) {
        skip_ws(&c);
        if (lit(&c, "}"))
            break;
        char key[16];
        if (!qstr(&c, key, sizeof key))
            return mt_err_set(err, MT_EINVAL, "npy header: malformed key");
        skip_ws(&c);
        if (!lit(&c, ":"))
            return mt_err_set(err, MT_EINVAL, "npy header: ':' expected after a key");
        skip_ws(&c);
        if (!strcmp(key, "descr") && !have_descr) {
            if (!qstr(&c, descr, sizeof descr))
                return mt_err_set(err, MT_EINVAL, "npy header: 'descr' is not a short string");
            have_descr = true;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            if (lit(&c, "True"))
                return mt_err_set(err, MT_EINVAL,
                                  "npy: fortran_order True not supported (write C order)");
            if (!lit(&c, "False"))
                return mt_err_set(err, MT_EINVAL, "npy header: 'fortran_order' is not a bool");
            have_order = true;
        } else if (!strcmp(key, "shape") && !have_shape) {
            mt_status rc = parse_shape(&c, out, err);
            if (rc != MT_OK)
                return rc;
            have_shape = true;
        } else {
            return mt_err_set(err, MT_EINVAL,
                              "npy header: unknown or repeated key (expected descr, "
                              "fortran_order, shape)");
        }
        skip_ws(&c);
        if (lit(&c, ","))
            continue;
        skip_ws(&c);
        if (lit(&c, "}"))
            break;
        return mt_err_set(err, MT_EINVAL, "npy header: ',' or '}' expected");
    }
    skip_ws(&c);
    if (c.p != c.end)
        return mt_err_set(err, MT_EINVAL, "npy header: bytes after the dict");
    if (!have_descr || !have_order || !have_shape)
        return mt_err_set(err, MT_EINVAL, "npy header: descr, fortran_order and shape required");
    if (descr[0] == '<' || descr[0] == '=' || descr[0] == '|') {
        if (!strcmp(descr + 1, "f4")) {
            out->dtype = MT_NPY_F32;
            out->itemsize = 4;
        } else if (!strcmp(descr + 1, "f8")) {
            out->dtype = MT_NPY_F64;
            out->itemsize = 8;
        } else if (!strcmp(descr + 1, "i8")) {
            out->dtype = MT_NPY_I64;
            out->itemsize = 8;
        }
    }
    if (!out->itemsize)
        return mt_err_set(err, MT_EINVAL,
                          "npy: dtype not supported (float32 '<f4', float64 '<f8' or int64 "
                          "'<i8', little-endian)");
    uint64_t n = 1;
    for (int i = 0; i < out->rank; i++) {
        uint64_t d = (uint64_t)out->dims[i];
        if (d && n > NPY_MAX_DIM / d)
            return mt_err_set(err, MT_EINVAL, "npy: more than 2^40 elements");
        n *= d;
    }
    out->count = n;
    size_t data_off = off + hlen;
    if ((len - data_off) / out->itemsize < n)
        return mt_err_set(err, MT_EINVAL, "npy: data shorter than the shape says");
    if (len - data_off != n * out->itemsize)
        return mt_err_set(err, MT_EINVAL, "npy: bytes after the data");
    out->data = buf + data_off;
    return MT_OK;
}

size_t mt_npy_header(char *buf, size_t cap, const char *descr, int rank, const int64_t *dims)
{
    if (rank < 0 || rank > MT_NPY_MAX_RANK || cap < 128)
        return 0;
    char dict[400];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int i = 0; i < rank && k > 0 && (size_t)k < sizeof dict; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%s%lld", i ? ", " : "",
                      (long long)dims[i]);
    if (k > 0 && (size_t)k < sizeof dict)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", rank == 1 ? "," : "");
    if (k <= 0 || (size_t)k >= sizeof dict)
        return 0;
    size_t total = 10 + (size_t)k + 1; /* + newline */
    size_t padded = (total + 63) / 64 * 64;
    if (padded > cap)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t hlen = padded - 10;
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)k);
    memset(buf + 10 + k, ' ', padded - 10 - (size_t)k - 1);
    buf[padded - 1] = '\n';
    return padded;
}
