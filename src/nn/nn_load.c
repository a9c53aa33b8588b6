/* nn_load.c: ONNX ModelProto -> the engine's graph (nn_int.h). Bounds first: the wire
 * format is walked with a schema-aware depth check before protobuf-c unpacks it (so a
 * deeply nested payload cannot exhaust the stack), then every count, dim, element count
 * and name length is checked before use. Initializer bytes are charged to the caller's
 * memory cap. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

int nn_fail(mt_nn_model *m, int code, const char *fmt, ...)
{
    if (m && m->err && m->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->err, m->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int nn_node_fail(mt_nn_model *m, const nn_node *n, int code, const char *fmt, ...)
{
    if (m && m->err && m->errlen) {
        int k = snprintf(m->err, m->errlen, "node '%.128s' (%.64s): ", n->name, n->op);
        if (k > 0 && (size_t)k < m->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(m->err + k, m->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* ---- wire pre-scan ---------------------------------------------------------------- */
enum { W_LEAF, W_MODEL, W_GRAPH, W_NODE, W_ATTR, W_VINFO, W_TYPE, W_TSEQ, W_TMAP, W_TRAIN, W_FUNC };

static int w_child(int kind, uint32_t field)
{
    switch (kind) {
    case W_MODEL: return field == 7 ? W_GRAPH : field == 20 ? W_TRAIN : field == 25 ? W_FUNC : W_LEAF;
    case W_GRAPH: return field == 1 ? W_NODE : (field == 11 || field == 12 || field == 13) ? W_VINFO : W_LEAF;
    case W_NODE: return field == 5 ? W_ATTR : W_LEAF;
    case W_ATTR: return (field == 6 || field == 11) ? W_GRAPH : (field == 14 || field == 15) ? W_TYPE : W_LEAF;
    case W_VINFO: return field == 2 ? W_TYPE : W_LEAF;
    case W_TYPE: return (field == 4 || field == 9) ? W_TSEQ : field == 5 ? W_TMAP : W_LEAF;
    case W_TSEQ: return field == 1 ? W_TYPE : W_LEAF;
    case W_TMAP: return field == 2 ? W_TYPE : W_LEAF;
    case W_TRAIN: return (field == 1 || field == 2) ? W_GRAPH : W_LEAF;
    case W_FUNC: return field == 7 ? W_NODE : W_LEAF;
    default: return W_LEAF;
    }
}

static int w_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int s = 0; s < 70; s += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static int w_scan(const uint8_t *p, const uint8_t *end, int kind, int depth)
{
    if (depth > 48)
        return -2;
    while (p < end) {
        uint64_t key, v;
        if (w_varint(&p, end, &key))
            return -1;
        uint32_t field = (uint32_t)(key >> 3);
        switch (key & 7) {
        case 0:
            if (w_varint(&p, end, &v))
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2: {
            if (w_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return -1;
            int ck = w_child(kind, field);
            if (ck != W_LEAF) {
                int r = w_scan(p, p + v, ck, depth + 1);
                if (r)
                    return r;
            }
            p += v;
            break;
        }
        default:
            return -1;
        }
    }
    return 0;
}

/* ---- tensors ------------------------------------------------------------------------ */
/* Tensor names come from the party's model (up to NN_MAX_TENSORS): they are hashed with
 * SipHash-1-3 (a PRF, mt_siphash.h) under the model's random key m->hkey, so that the
 * model's author cannot choose names that collide and make the table's probing quadratic
 * (FNV-1a, used before, lets anyone pick names equal in the low bits). */
static uint64_t h_str(const mt_nn_model *m, const char *s)
{
    return mt_siphash13(&m->hkey, s, strlen(s));
}

int nn_tensor_find(const mt_nn_model *m, const char *name)
{
    if (!m->hcap)
        return -1;
    size_t steps = 0;
    int found = -1;
    for (size_t i = h_str(m, name) & (m->hcap - 1);; i = (i + 1) & (m->hcap - 1)) {
        steps++;
        int k = m->hash[i];
        if (k < 0)
            break;
        if (strcmp(m->t[k].name, name) == 0) {
            found = k;
            break;
        }
    }
    if (m->probe_count)
        *m->probe_count += steps;
    return found;
}

static int h_grow(mt_nn_model *m)
{
    size_t nc = m->hcap ? m->hcap * 2 : 1024;
    int *h = malloc(nc * sizeof *h);
    if (!h)
        return -1;
    memset(h, 0xff, nc * sizeof *h);
    for (size_t k = 0; k < m->nt; k++) {
        size_t i = h_str(m, m->t[k].name) & (nc - 1);
        while (h[i] >= 0)
            i = (i + 1) & (nc - 1);
        h[i] = (int)k;
    }
    free(m->hash);
    m->hash = h;
    m->hcap = nc;
    return 0;
}

int nn_tensor_slot(mt_nn_model *m)
{
    if (m->nt == m->tcap) {
        size_t nc = m->tcap ? m->tcap * 2 : 256;
        nn_t *t = realloc(m->t, nc * sizeof *t);
        if (!t)
            return -1;
        m->t = t;
        m->tcap = nc;
    }
    nn_t *t = &m->t[m->nt];
    memset(t, 0, sizeof *t);
    t->name = "";
    t->producer = -1;
    return 0;
}

/* adds a tensor with this name (the name must outlive the model); returns its index */
int nn_tensor_add(mt_nn_model *m, const char *name)
{
    if (m->nt >= NN_MAX_TENSORS)
        return -1;
    if (nn_tensor_slot(m))
        return -1;
    if ((m->nt + 1) * 2 > m->hcap && h_grow(m))
        return -1;
    m->t[m->nt].name = name;
    size_t i = h_str(m, name) & (m->hcap - 1);
    size_t steps = 1;
    while (m->hash[i] >= 0) {
        i = (i + 1) & (m->hcap - 1);
        steps++;
    }
    if (m->probe_count)
        *m->probe_count += steps;
    m->hash[i] = (int)m->nt;
    return (int)m->nt++;
}

size_t mt_nn_dtype_size(int dt)
{
    switch (dt) {
    case MT_NN_FLOAT: case MT_NN_INT32: case MT_NN_UINT32: return 4;
    case MT_NN_UINT8: case MT_NN_INT8: case MT_NN_BOOL: return 1;
    case MT_NN_UINT16: case MT_NN_INT16: case MT_NN_FLOAT16: case MT_NN_BFLOAT16: return 2;
    case MT_NN_INT64: case MT_NN_DOUBLE: case MT_NN_UINT64: return 8;
    default: return 0;
    }
}

int nn_count(const int64_t *dims, int rank, size_t *count)
{
    size_t c = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || dims[i] > NN_MAX_DIM)
            return -1;
        if (dims[i] && c > SIZE_MAX / (size_t)dims[i])
            return -1;
        c *= (size_t)dims[i];
    }
    if (c > ((size_t)1 << 40))
        return -1;
    *count = c;
    return 0;
}

int nn_bytes(int dtype, size_t count, size_t *bytes)
{
    size_t es = mt_nn_dtype_size(dtype);
    if (!es || count > SIZE_MAX / es)
        return -1;
    *bytes = count * es;
    return 0;
}

int nn_charge(mt_nn_model *m, size_t bytes, const char *what)
{
    size_t used = m->const_bytes + m->fold_bytes + m->arena_size;
    if (bytes > m->cap || used > m->cap - bytes)
        return nn_fail(m, MT_NN_ENOMEM,
                       "%s needs %zu bytes: above the memory cap of %zu bytes (%zu in use)",
                       what, bytes, m->cap, used);
    return 0;
}

static void *nn_alloc(size_t bytes)
{
    size_t b = (bytes + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    void *p = aligned_alloc(NN_ALIGN, b ? b : NN_ALIGN);
    if (p)
        memset(p, 0, b ? b : NN_ALIGN);
    return p;
}

/* TensorProto -> t (dtype/rank/dims/count/own/data); what names it in errors. The data is
 * charged to the cap when m is given. */
int nn_tensor_from_proto(mt_nn_model *m, const Onnx__TensorProto *tp, const uint8_t *payload,
                         size_t plen, nn_t *t, const char *what)
{
    if (!tp->has_data_type)
        return nn_fail(m, MT_NN_EINVAL, "tensor %.128s: no data_type", what);
    t->dtype = tp->data_type;
    if (!mt_nn_dtype_size(t->dtype))
        return nn_fail(m, MT_NN_EUNSUPPORTED, "tensor %.128s: data type %d not supported", what,
                       (int)tp->data_type);
    if (tp->n_dims > MT_NN_MAX_RANK)
        return nn_fail(m, MT_NN_EUNSUPPORTED, "tensor %.128s: rank %zu above %d", what,
                       tp->n_dims, MT_NN_MAX_RANK);
    t->rank = (int)tp->n_dims;
    for (int i = 0; i < t->rank; i++)
        t->dims[i] = tp->dims[i];
    size_t bytes;
    if (nn_count(t->dims, t->rank, &t->count) || nn_bytes(t->dtype, t->count, &bytes))
        return nn_fail(m, MT_NN_EINVAL, "tensor %.128s: invalid or too large dims", what);
    if (tp->segment)
        return nn_fail(m, MT_NN_EUNSUPPORTED, "tensor %.128s: segments not supported", what);
    const uint8_t *raw = NULL;
    size_t rawlen = 0;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        const char *loc = NULL;
        uint64_t off = 0, len = UINT64_MAX;
        for (size_t i = 0; i < tp->n_external_data; i++) {
            const Onnx__StringStringEntryProto *e = tp->external_data[i];
            if (!e->key || !e->value)
                continue;
            char *endp;
            if (strcmp(e->key, "location") == 0)
                loc = e->value;
            else if (strcmp(e->key, "offset") == 0)
                off = strtoull(e->value, &endp, 10);
            else if (strcmp(e->key, "length") == 0)
                len = strtoull(e->value, &endp, 10);
        }
        if (!loc || !payload)
            return nn_fail(m, MT_NN_EUNSUPPORTED,
                           "tensor %.128s: external data needs the model's data blob (files are "
                           "not read)", what);
        if (len == UINT64_MAX)
            len = bytes;
        if (off > plen || len > plen - off)
            return nn_fail(m, MT_NN_EINVAL, "tensor %.128s: external data outside the payload", what);
        raw = payload + off;
        rawlen = (size_t)len;
    } else if (tp->has_raw_data) {
        raw = tp->raw_data.data;
        rawlen = tp->raw_data.len;
    }
    if (m) {
        int rc = nn_charge(m, bytes, "initializer");
        if (rc)
            return rc;
    }
    void *d = nn_alloc(bytes);
    if (!d)
        return nn_fail(m, MT_NN_ENOMEM, "tensor %.128s: out of memory", what);
    size_t n = t->count;
    int bad = 0;
    if (raw) {
        if (rawlen != bytes)
            bad = 1;
        else if (bytes)
            memcpy(d, raw, bytes);
    } else {
        switch (t->dtype) {
        case MT_NN_FLOAT:
            if (tp->n_float_data != n) bad = 1;
            else if (n) memcpy(d, tp->float_data, n * 4);
            break;
        case MT_NN_DOUBLE:
            if (tp->n_double_data != n) bad = 1;
            else if (n) memcpy(d, tp->double_data, n * 8);
            break;
        case MT_NN_INT64:
            if (tp->n_int64_data != n) bad = 1;
            else if (n) memcpy(d, tp->int64_data, n * 8);
            break;
        case MT_NN_UINT64: case MT_NN_UINT32:
            if (tp->n_uint64_data != n) bad = 1;
            else for (size_t i = 0; i < n; i++) nn_sti(d, t->dtype, i, (int64_t)tp->uint64_data[i]);
            break;
        case MT_NN_FLOAT16: case MT_NN_BFLOAT16: /* the bits, in int32_data */
            if (tp->n_int32_data != n) bad = 1;
            else for (size_t i = 0; i < n; i++) ((uint16_t *)d)[i] = (uint16_t)tp->int32_data[i];
            break;
        default: /* int32, int16, int8, uint16, uint8, bool in int32_data */
            if (tp->n_int32_data != n) bad = 1;
            else for (size_t i = 0; i < n; i++) nn_sti(d, t->dtype, i, tp->int32_data[i]);
        }
    }
    if (bad) {
        free(d);
        return nn_fail(m, MT_NN_EINVAL, "tensor %.128s: data size does not match its dims", what);
    }
    t->own = d;
    t->own_bytes = bytes;
    t->data = d;
    if (m)
        m->const_bytes += bytes;
    return 0;
}

int mt_nn_tensor_parse(const uint8_t *buf, size_t len, size_t cap, mt_nn_tensor *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    mt_nn_model tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.err = err;
    tmp.errlen = errlen;
    tmp.cap = cap ? cap : ((size_t)1 << 30);
    if (w_scan(buf, buf + len, W_LEAF, 0))
        return nn_fail(&tmp, MT_NN_EINVAL, "tensor: malformed protobuf");
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp)
        return nn_fail(&tmp, MT_NN_EINVAL, "tensor: malformed protobuf");
    nn_t t;
    memset(&t, 0, sizeof t);
    int rc = nn_tensor_from_proto(&tmp, tp, NULL, 0, &t, tp->name ? tp->name : "?");
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (rc)
        return rc;
    out->dtype = t.dtype;
    out->rank = t.rank;
    memcpy(out->dims, t.dims, sizeof t.dims);
    out->data = t.own;
    return 0;
}

void mt_nn_tensor_free(mt_nn_tensor *t)
{
    if (t) {
        free(t->data);
        t->data = NULL;
    }
}

/* ---- element access --------------------------------------------------------------- */
int nn_is_float(int dt)
{
    return dt == MT_NN_FLOAT || dt == MT_NN_DOUBLE || dt == MT_NN_FLOAT16 || dt == MT_NN_BFLOAT16;
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, f = h & 0x3ff, u;
    if (e == 0) {
        if (!f) {
            u = s;
        } else { /* subnormal */
            float v = (float)f * (1.0f / 16777216.0f);
            return s ? -v : v;
        }
    } else if (e == 31) {
        u = s | 0x7f800000u | (f << 13);
    } else {
        u = s | ((e + 112) << 23) | (f << 13);
    }
    float r;
    memcpy(&r, &u, 4);
    return r;
}

static uint16_t float_to_half(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return (uint16_t)(s | 0x7c00 | ((u & 0x7fffff) ? 0x200 : 0));
    float a = fabsf(v);
    if (a >= 65520.f)
        return (uint16_t)(s | 0x7c00);
    if (a < 6.103515625e-05f) { /* subnormal: round to a multiple of 2^-24 */
        float q = nearbyintf(a * 16777216.0f);
        return (uint16_t)(s | (uint16_t)q);
    }
    uint32_t e = ((u >> 23) & 0xff) - 112, m = u & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(s | h);
}

static float bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

static uint16_t float_to_bf16(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffff))
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
int nn_is_numeric(int dt) { return mt_nn_dtype_size(dt) != 0; }

double nn_ld(const void *p, int dt, size_t i)
{
    switch (dt) {
    case MT_NN_FLOAT: return ((const float *)p)[i];
    case MT_NN_DOUBLE: return ((const double *)p)[i];
    case MT_NN_UINT8: case MT_NN_BOOL: return ((const uint8_t *)p)[i];
    case MT_NN_INT8: return ((const int8_t *)p)[i];
    case MT_NN_UINT16: return ((const uint16_t *)p)[i];
    case MT_NN_INT16: return ((const int16_t *)p)[i];
    case MT_NN_INT32: return ((const int32_t *)p)[i];
    case MT_NN_UINT32: return ((const uint32_t *)p)[i];
    case MT_NN_INT64: return (double)((const int64_t *)p)[i];
    case MT_NN_UINT64: return (double)((const uint64_t *)p)[i];
    case MT_NN_FLOAT16: return half_to_float(((const uint16_t *)p)[i]);
    case MT_NN_BFLOAT16: return bf16_to_float(((const uint16_t *)p)[i]);
    default: return 0;
    }
}

int64_t nn_ldi(const void *p, int dt, size_t i)
{
    switch (dt) {
    case MT_NN_INT64: return ((const int64_t *)p)[i];
    case MT_NN_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case MT_NN_FLOAT: case MT_NN_DOUBLE: case MT_NN_FLOAT16: case MT_NN_BFLOAT16: {
        double v = nn_ld(p, dt, i);
        if (!(v == v)) return 0;
        if (v >= 9.2e18) return INT64_MAX;
        if (v <= -9.2e18) return INT64_MIN;
        return (int64_t)v;
    }
    default: return (int64_t)nn_ld(p, dt, i);
    }
}

static int64_t clampi(double v, double lo, double hi)
{
    if (!(v == v))
        return 0;
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return (int64_t)v;
}

void nn_st(void *p, int dt, size_t i, double v)
{
    switch (dt) {
    case MT_NN_FLOAT: ((float *)p)[i] = (float)v; break;
    case MT_NN_DOUBLE: ((double *)p)[i] = v; break;
    case MT_NN_FLOAT16: ((uint16_t *)p)[i] = float_to_half((float)v); break;
    case MT_NN_BFLOAT16: ((uint16_t *)p)[i] = float_to_bf16((float)v); break;
    case MT_NN_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case MT_NN_INT64: ((int64_t *)p)[i] = clampi(v, -9.2e18, 9.2e18); break;
    case MT_NN_UINT64: ((uint64_t *)p)[i] = (uint64_t)clampi(v, 0, 9.2e18); break;
    default: nn_sti(p, dt, i, clampi(v, -9.2e18, 9.2e18));
    }
}

void nn_sti(void *p, int dt, size_t i, int64_t v)
{
    switch (dt) {
    case MT_NN_FLOAT: ((float *)p)[i] = (float)v; break;
    case MT_NN_DOUBLE: ((double *)p)[i] = (double)v; break;
    case MT_NN_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case MT_NN_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case MT_NN_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case MT_NN_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case MT_NN_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case MT_NN_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case MT_NN_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case MT_NN_INT64: ((int64_t *)p)[i] = v; break;
    case MT_NN_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case MT_NN_FLOAT16: case MT_NN_BFLOAT16: nn_st(p, dt, i, (double)v); break;
    default: break;
    }
}

/* ---- attributes ------------------------------------------------------------------- */
const Onnx__AttributeProto *nn_attr(const nn_node *n, const char *name)
{
    for (size_t i = 0; i < n->p->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->p->attribute[i];
        if (a->name && strcmp(a->name, name) == 0)
            return a;
    }
    return NULL;
}

int64_t nn_attr_i(const nn_node *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = nn_attr(n, name);
    return a && a->has_i ? a->i : def;
}

float nn_attr_f(const nn_node *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = nn_attr(n, name);
    return a && a->has_f ? a->f : def;
}

const char *nn_attr_s(const nn_node *n, const char *name, const char *def)
{
    const Onnx__AttributeProto *a = nn_attr(n, name);
    /* protobuf-c bytes are not NUL terminated: the loader checked them (no NUL inside)
     * and they are compared with memcmp-free helpers only through this copy */
    static _Thread_local char buf[256];
    if (!a || !a->has_s)
        return def;
    size_t l = a->s.len < sizeof buf - 1 ? a->s.len : sizeof buf - 1;
    if (l)
        memcpy(buf, a->s.data, l);
    buf[l] = 0;
    return buf;
}

size_t nn_attr_ints(const nn_node *n, const char *name, const int64_t **v)
{
    const Onnx__AttributeProto *a = nn_attr(n, name);
    if (!a) {
        *v = NULL;
        return 0;
    }
    *v = a->ints;
    return a->n_ints;
}

size_t nn_attr_floats(const nn_node *n, const char *name, const float **v)
{
    const Onnx__AttributeProto *a = nn_attr(n, name);
    if (!a) {
        *v = NULL;
        return 0;
    }
    *v = a->floats;
    return a->n_floats;
}

/* ---- model -------------------------------------------------------------------------- */
static int name_ok(const char *s)
{
    return s && strnlen(s, NN_MAX_NAME + 1) <= NN_MAX_NAME;
}

static int tensor_ref(mt_nn_model *m, const char *name)
{
    int k = nn_tensor_find(m, name);
    return k >= 0 ? k : nn_tensor_add(m, name);
}

static int load_graph(mt_nn_model *m, const uint8_t *buf, size_t len)
{
    Onnx__GraphProto *g = m->mp->graph;
    if (!g)
        return nn_fail(m, MT_NN_EINVAL, "model: no graph");
    if (g->n_node > NN_MAX_NODES)
        return nn_fail(m, MT_NN_EINVAL, "graph: %zu nodes, above the limit of %d", g->n_node,
                       NN_MAX_NODES);
    if (g->n_initializer > NN_MAX_TENSORS || g->n_input > NN_MAX_IO || g->n_output > NN_MAX_IO)
        return nn_fail(m, MT_NN_EINVAL, "graph: too many initializers, inputs or outputs");
    if (g->n_sparse_initializer)
        return nn_fail(m, MT_NN_EUNSUPPORTED, "graph: sparse initializers are not supported");
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *tp = g->initializer[i];
        if (!name_ok(tp->name) || !tp->name[0])
            return nn_fail(m, MT_NN_EINVAL, "initializer %zu: missing or too long name", i);
        if (nn_tensor_find(m, tp->name) >= 0)
            return nn_fail(m, MT_NN_EINVAL, "initializer '%.128s' defined twice", tp->name);
        int k = nn_tensor_add(m, tp->name);
        if (k < 0)
            return nn_fail(m, MT_NN_ENOMEM, "too many tensors");
        int rc = nn_tensor_from_proto(m, tp, buf, len, &m->t[k], tp->name);
        if (rc)
            return rc;
        m->t[k].kind = NN_T_CONST;
        m->t[k].init = 1;
        m->t[k].shaped = 1;
    }
    m->inputs = calloc(g->n_input + 1, sizeof(int));
    m->outputs = calloc(g->n_output + 1, sizeof(int));
    if (!m->inputs || !m->outputs)
        return nn_fail(m, MT_NN_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_input; i++) {
        Onnx__ValueInfoProto *vi = g->input[i];
        if (!name_ok(vi->name) || !vi->name[0])
            return nn_fail(m, MT_NN_EINVAL, "graph input %zu: missing or too long name", i);
        int k = nn_tensor_find(m, vi->name);
        if (k >= 0 && m->t[k].init)
            continue; /* an initializer listed as input (IR < 4): a constant */
        if (k >= 0)
            return nn_fail(m, MT_NN_EINVAL, "graph input '%.128s' listed twice", vi->name);
        k = nn_tensor_add(m, vi->name);
        if (k < 0)
            return nn_fail(m, MT_NN_ENOMEM, "too many tensors");
        m->t[k].kind = NN_T_INPUT;
        m->inputs[m->nin++] = k;
    }
    m->orig = calloc(g->n_node + 1, sizeof(nn_node));
    if (!m->orig)
        return nn_fail(m, MT_NN_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *np = g->node[i];
        nn_node *n = &m->orig[m->norig++];
        n->p = np;
        n->name = np->name && name_ok(np->name) ? np->name : "";
        n->op = np->op_type && name_ok(np->op_type) ? np->op_type : "?";
        if (!np->op_type || !name_ok(np->op_type))
            return nn_node_fail(m, n, MT_NN_EINVAL, "missing or too long op_type");
        if (np->domain && np->domain[0] && strcmp(np->domain, "ai.onnx") != 0)
            return nn_node_fail(m, n, MT_NN_EUNSUPPORTED, "domain '%.64s' not supported",
                                np->domain);
        n->def = nn_op_lookup(np->op_type);
        if (!n->def)
            return nn_node_fail(m, n, MT_NN_EUNSUPPORTED, "operator not supported");
        if (np->n_output < 1)
            return nn_node_fail(m, n, MT_NN_EINVAL, "a node needs at least one output");
        if (np->n_input > 1024 || np->n_output > 1024 || np->n_attribute > 256)
            return nn_node_fail(m, n, MT_NN_EINVAL, "too many inputs, outputs or attributes");
        for (size_t a = 0; a < np->n_attribute; a++) {
            const Onnx__AttributeProto *at = np->attribute[a];
            if (!name_ok(at->name))
                return nn_node_fail(m, n, MT_NN_EINVAL, "attribute %zu: missing name", a);
            if (at->g || at->n_graphs)
                return nn_node_fail(m, n, MT_NN_EUNSUPPORTED, "subgraph attributes not supported");
            if (at->name && strcmp(at->name, "broadcast") == 0)
                return nn_node_fail(m, n, MT_NN_EUNSUPPORTED,
                                    "legacy broadcast attribute (opset < 7) not supported");
            if (at->ref_attr_name && at->ref_attr_name[0])
                return nn_node_fail(m, n, MT_NN_EUNSUPPORTED, "attribute references not supported");
        }
        n->nin = (int)np->n_input;
        n->nout = (int)np->n_output;
        n->in = calloc((size_t)n->nin + 1, sizeof(int));
        n->out = calloc((size_t)n->nout + 1, sizeof(int));
        if (!n->in || !n->out)
            return nn_fail(m, MT_NN_ENOMEM, "out of memory");
        for (int j = 0; j < n->nin; j++) {
            if (!name_ok(np->input[j]))
                return nn_node_fail(m, n, MT_NN_EINVAL, "input %d: name too long", j);
            n->in[j] = np->input[j][0] ? tensor_ref(m, np->input[j]) : -1;
            if (np->input[j][0] && n->in[j] < 0)
                return nn_fail(m, MT_NN_ENOMEM, "too many tensors");
        }
        for (int j = 0; j < n->nout; j++) {
            if (!name_ok(np->output[j]))
                return nn_node_fail(m, n, MT_NN_EINVAL, "output %d: name too long", j);
            if (!np->output[j][0]) {
                n->out[j] = -1;
                continue;
            }
            int k = tensor_ref(m, np->output[j]);
            if (k < 0)
                return nn_fail(m, MT_NN_ENOMEM, "too many tensors");
            if (m->t[k].kind != NN_T_NONE || m->t[k].producer >= 0)
                return nn_node_fail(m, n, MT_NN_EINVAL, "output '%.128s' is defined twice",
                                    np->output[j]);
            m->t[k].producer = (int)i;
            n->out[j] = k;
        }
    }
    for (size_t i = 0; i < g->n_output; i++) {
        Onnx__ValueInfoProto *vi = g->output[i];
        if (!name_ok(vi->name) || !vi->name[0])
            return nn_fail(m, MT_NN_EINVAL, "graph output %zu: missing or too long name", i);
        int k = nn_tensor_find(m, vi->name);
        if (k < 0)
            return nn_fail(m, MT_NN_EINVAL, "graph output '%.128s' is never produced", vi->name);
        m->outputs[m->nout++] = k;
    }
    /* every consumed tensor must exist */
    for (size_t i = 0; i < m->norig; i++)
        for (int j = 0; j < m->orig[i].nin; j++) {
            int k = m->orig[i].in[j];
            if (k >= 0 && m->t[k].kind == NN_T_NONE && m->t[k].producer < 0)
                return nn_node_fail(m, &m->orig[i], MT_NN_EINVAL,
                                    "input '%.128s' is not produced by any node, initializer or "
                                    "graph input", m->t[k].name);
        }
    m->nt_orig = m->nt;
    return 0;
}

int mt_nn_load(const uint8_t *buf, size_t len, const mt_nn_limits *lim, mt_nn_model **out,
               char *err, size_t errlen)
{
    return mt_nn_load_ext(buf, len, NULL, 0, lim, out, err, errlen);
}

int mt_nn_load_ext(const uint8_t *buf, size_t len, const uint8_t *ext, size_t extlen,
                   const mt_nn_limits *lim, mt_nn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = 0;
    mt_nn_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return MT_NN_ENOMEM;
    }
    m->err = err;
    m->errlen = errlen;
    m->cap = lim && lim->mem_cap ? lim->mem_cap : ((size_t)1 << 30);
    m->threads = lim && lim->threads > 0 ? lim->threads : 1;
    m->no_passes = lim ? lim->no_passes : 0;
    if (m->threads > 64)
        m->threads = 64;
    int rc;
    /* the tensor-name table's key (h_str): never run unkeyed */
    if (!mt_siphash_key_random(&m->hkey)) {
        rc = nn_fail(m, MT_NN_EUNSUPPORTED, "model: no random key for the tensor-name table "
                     "(getrandom failed); try again");
        goto fail;
    }
    int ws = w_scan(buf, buf + len, W_MODEL, 0);
    if (ws) {
        rc = nn_fail(m, MT_NN_EINVAL, ws == -2 ? "model: protobuf nested too deeply"
                                               : "model: malformed protobuf");
        goto fail;
    }
    m->mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!m->mp) {
        rc = nn_fail(m, MT_NN_EINVAL, "model: malformed protobuf (not an ONNX ModelProto)");
        goto fail;
    }
    m->opset = -1;
    for (size_t i = 0; i < m->mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->mp->opset_import[i];
        if (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0)
            m->opset = o->has_version ? (int)o->version : -1;
    }
    if (m->opset < 0 && m->mp->n_opset_import == 0)
        m->opset = 7; /* IR 2 models carry no opset_import: the oldest we accept */
    if (m->opset < 1 || m->opset > 17) {
        rc = nn_fail(m, MT_NN_EUNSUPPORTED, "model: default-domain opset %d not supported "
                     "(1 to 17)", m->opset);
        goto fail;
    }
    rc = load_graph(m, ext, extlen);
    if (rc)
        goto fail;
    *out = m;
    return 0;
fail:
    mt_nn_free(m);
    return rc;
}

size_t mt_nn_num_inputs(const mt_nn_model *m) { return m->nin; }
size_t mt_nn_num_outputs(const mt_nn_model *m) { return m->nout; }
const char *mt_nn_input_name(const mt_nn_model *m, size_t i)
{
    return i < m->nin ? m->t[m->inputs[i]].name : NULL;
}
const char *mt_nn_output_name(const mt_nn_model *m, size_t i)
{
    return i < m->nout ? m->t[m->outputs[i]].name : NULL;
}

int mt_nn_input_decl(const mt_nn_model *m, size_t i, mt_nn_tensor *d)
{
    memset(d, 0, sizeof *d);
    if (i >= m->nin)
        return MT_NN_EINVAL;
    const char *name = m->t[m->inputs[i]].name;
    const Onnx__GraphProto *g = m->mp->graph;
    for (size_t k = 0; k < g->n_input; k++) {
        const Onnx__ValueInfoProto *vi = g->input[k];
        if (strcmp(vi->name, name) != 0)
            continue;
        const Onnx__TypeProto *tp = vi->type;
        if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
            return MT_NN_EUNSUPPORTED;
        d->dtype = tp->tensor_type->elem_type;
        const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
        if (!sh)
            return MT_NN_EUNSUPPORTED;
        if (sh->n_dim > MT_NN_MAX_RANK)
            return MT_NN_EUNSUPPORTED;
        d->rank = (int)sh->n_dim;
        for (size_t j = 0; j < sh->n_dim; j++) {
            const Onnx__TensorShapeProto__Dimension *dm = sh->dim[j];
            d->dims[j] = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                                 dm->dim_value >= 0 && dm->dim_value <= NN_MAX_DIM
                             ? dm->dim_value
                             : -1;
        }
        return 0;
    }
    return MT_NN_EINVAL;
}
