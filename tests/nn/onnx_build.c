/* onnx_build.c: see onnx_build.h. Field numbers from onnx.proto (libonnx-dev). */
#include "onnx_build.h"

#include <stdlib.h>
#include <string.h>

void pb_free(pb *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void pb_raw(pb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n)
            c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p)
            abort();
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

void pb_varint(pb *b, uint64_t v)
{
    uint8_t t[10];
    size_t k = 0;
    do {
        t[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            t[k] |= 0x80;
        k++;
    } while (v);
    pb_raw(b, t, k);
}

void pb_int(pb *b, int field, int64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, (uint64_t)v);
}

void pb_f32(pb *b, int field, float v)
{
    pb_varint(b, ((uint64_t)field << 3) | 5);
    pb_raw(b, &v, 4);
}

void pb_bytes(pb *b, int field, const void *d, size_t n)
{
    pb_varint(b, ((uint64_t)field << 3) | 2);
    pb_varint(b, n);
    pb_raw(b, d, n);
}

void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

void pb_msg(pb *b, int field, pb *sub)
{
    pb_bytes(b, field, sub->p, sub->n);
    pb_free(sub);
}

void ob_tensor(pb *out, int field, const char *name, int dtype, int rank, const int64_t *dims,
               const void *raw, size_t rawlen)
{
    pb t = {0};
    for (int i = 0; i < rank; i++)
        pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, dtype);
    if (name)
        pb_str(&t, 8, name);
    if (raw)
        pb_bytes(&t, 9, raw, rawlen);
    pb_msg(out, field, &t);
}

void ob_vinfo(pb *g, int field, const char *name, int dtype, int rank, const int64_t *dims)
{
    pb shape = {0}, tt = {0}, tp = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        pb dim = {0};
        if (dims[i] >= 0)
            pb_int(&dim, 1, dims[i]);
        else
            pb_str(&dim, 2, "N");
        pb_msg(&shape, 1, &dim);
    }
    pb_int(&tt, 1, dtype);
    pb_msg(&tt, 2, &shape);
    pb_msg(&tp, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &tp);
    pb_msg(g, field, &vi);
}

void ob_node_begin(pb *node, const char *name, const char *op, const char *const *in, int nin,
                   const char *const *out, int nout)
{
    memset(node, 0, sizeof *node);
    for (int i = 0; i < nin; i++)
        pb_str(node, 1, in[i]);
    for (int i = 0; i < nout; i++)
        pb_str(node, 2, out[i]);
    pb_str(node, 3, name);
    pb_str(node, 4, op);
}

void ob_attr_i(pb *node, const char *name, int64_t v)
{
    pb a = {0};
    pb_str(&a, 1, name);
    pb_int(&a, 3, v);
    pb_int(&a, 20, 2);
    pb_msg(node, 5, &a);
}

void ob_attr_f(pb *node, const char *name, float v)
{
    pb a = {0};
    pb_str(&a, 1, name);
    pb_f32(&a, 2, v);
    pb_int(&a, 20, 1);
    pb_msg(node, 5, &a);
}

void ob_attr_ints(pb *node, const char *name, const int64_t *v, int n)
{
    pb a = {0};
    pb_str(&a, 1, name);
    for (int i = 0; i < n; i++)
        pb_int(&a, 8, v[i]);
    pb_int(&a, 20, 7);
    pb_msg(node, 5, &a);
}

void ob_attr_s(pb *node, const char *name, const char *s)
{
    pb a = {0};
    pb_str(&a, 1, name);
    pb_str(&a, 4, s);
    pb_int(&a, 20, 3);
    pb_msg(node, 5, &a);
}

void ob_node_end(pb *g, pb *node) { pb_msg(g, 1, node); }

void ob_model(pb *out, pb *g, int opset)
{
    pb op = {0};
    pb_str(&op, 1, "");
    pb_int(&op, 2, opset);
    pb_int(out, 1, 8);
    pb_str(out, 2, "mesatee-tests");
    pb_msg(out, 8, &op);
    pb_str(g, 2, "g");
    pb_msg(out, 7, g);
}
