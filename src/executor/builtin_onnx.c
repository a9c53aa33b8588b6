/* builtin_onnx: the onnx_infer built-in (issue 12, docs/nn.md "onnx_infer built-in").
 * One party's ONNX model (input slot model_slot; with model_size, the ModelProto is
 * followed by its external-data blob in the same slot) runs on other parties' tensors
 * (input_slot, or one slot per model input named by argument inputs=NAME=SLOT,...: .npy,
 * or CSV rows of numbers); the model's first output (or those named by outputs=) is
 * written to its output slot (.npy, or CSV rows) encrypted for that slot's owner. The
 * model slot's SHA-256 is logged (participants read it) and, with model_sha256, must
 * match before anything runs, so parties approve exactly one model.
 *
 * Runs inside the sandboxed worker only (this file and mt_nn are linked into the
 * worker executables, never into the daemon). The engine's own messages name nodes
 * and tensors by the model owner's names: they go to the operator-only detail
 * (mt_bctx_detail); the task's reason, which every participant reads, gets the kind
 * of failure and, for a node, only its op type (npy.h: our own messages never quote
 * input bytes). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "builtin_ml.h"
#include "mt_builtin.h"
#include "mt_bschema.h"
#include "mt_util.h"
#include "nn.h"
#include "npy.h"

#define ONNX_CSV_MAX_TOKEN 64
#define ONNX_MAX_ELEMS (1ull << 31)

/* The op type of an engine message "node 'NAME' (OP): ...", copied into op when it
 * is a plain identifier; the node name itself is never copied. */
static void engine_op(const char *msg, char *op, size_t cap)
{
    op[0] = 0;
    if (strncmp(msg, "node '", 6) != 0)
        return;
    /* the last "' (IDENT): " within the bounded prefix (names are at most 128 bytes) */
    const char *best = NULL;
    size_t best_n = 0;
    for (const char *p = msg + 6; *p && p < msg + 6 + 130; p++) {
        if (p[0] != '\'' || p[1] != ' ' || p[2] != '(')
            continue;
        const char *s = p + 3;
        size_t n = 0;
        while (n < 64 && (isalnum((unsigned char)s[n]) || s[n] == '_'))
            n++;
        if (n && s[n] == ')' && s[n + 1] == ':') {
            best = s;
            best_n = n;
        }
    }
    if (best && best_n < cap) {
        memcpy(op, best, best_n);
        op[best_n] = 0;
    }
}

static mt_status engine_fail(mt_bctx *ctx, int rc, const char *stage, const char *msg,
                             size_t cap_mb, mt_err *err)
{
    mt_bctx_detail(ctx, "onnx_infer %s: %s", stage, msg);
    char op[80];
    engine_op(msg, op, sizeof op);
    char where[120] = "";
    if (op[0])
        snprintf(where, sizeof where, " (at a node of op type %s)", op);
    switch (rc) {
    case MT_NN_EUNSUPPORTED:
        return mt_err_set(err, MT_EINVAL,
                          "onnx_infer: %s: the model uses an operator, attribute, type or "
                          "dynamic shape the engine does not support%s",
                          stage, where);
    case MT_NN_ESHAPE:
        return mt_err_set(err, MT_EINVAL, "onnx_infer: %s: shapes do not fit%s", stage, where);
    case MT_NN_ENOMEM:
        return mt_err_set(err, MT_ETOOBIG,
                          "onnx_infer: %s: the model needs more than the memory cap of %zu MiB "
                          "(argument memory_mb)%s",
                          stage, cap_mb, where);
    default:
        if (!strcmp(stage, "loading the model"))
            return mt_err_set(err, MT_EINVAL,
                              "onnx_infer: %s: the model is malformed (not an ONNX ModelProto "
                              "the engine accepts)%s",
                              stage, where);
        return mt_err_set(err, MT_EINVAL, "onnx_infer: %s: the model or the input is invalid%s",
                          stage, where);
    }
}

/* ---- input ---------------------------------------------------------------------- */

typedef struct {
    int rank;
    int64_t dims[MT_NN_MAX_RANK];
    uint64_t count;
    double *v; /* count values */
} in_tensor;

static mt_status read_npy(const mt_bctx_input *in, in_tensor *t, mt_err *err)
{
    mt_npy a;
    mt_status rc = mt_npy_parse(in->data, in->len, &a, err);
    if (rc != MT_OK)
        return mt_err_prefix(err, rc, "onnx_infer: input slot '%s': ", in->slot);
    if (a.rank > MT_NN_MAX_RANK || a.count > ONNX_MAX_ELEMS)
        return mt_err_set(err, MT_EINVAL, "onnx_infer: input slot '%s': array too large",
                          in->slot);
    t->rank = a.rank;
    memcpy(t->dims, a.dims, sizeof a.dims[0] * (size_t)a.rank);
    t->count = a.count;
    t->v = malloc((a.count ? a.count : 1) * sizeof *t->v);
    if (!t->v)
        return mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory reading the input");
    for (uint64_t i = 0; i < a.count; i++) {
        const uint8_t *p = a.data + i * a.itemsize;
        if (a.dtype == MT_NPY_F32) {
            float f;
            memcpy(&f, p, 4);
            t->v[i] = f;
        } else if (a.dtype == MT_NPY_F64) {
            memcpy(&t->v[i], p, 8);
        } else {
            int64_t x;
            memcpy(&x, p, 8);
            t->v[i] = (double)x;
        }
    }
    return MT_OK;
}

/* CSV: lines of comma-separated numbers, every line the same count; empty lines
 * ignored. Shape [rows, columns]. Errors name the line, never its text. */
static mt_status read_csv(const mt_bctx_input *in, in_tensor *t, mt_err *err)
{
    size_t cap = 0, n = 0, rows = 0, cols = 0, line = 0;
    const char *p = (const char *)in->data, *end = p + in->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        line++;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p) {
            p = eol ? eol + 1 : end;
            continue;
        }
        size_t c = 0;
        const char *q = p;
        for (;;) {
            const char *tok_end = memchr(q, ',', (size_t)(le - q));
            if (!tok_end)
                tok_end = le;
            const char *a = q, *b = tok_end;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            char tok[ONNX_CSV_MAX_TOKEN + 1];
            size_t tl = (size_t)(b - a);
            char *ep = NULL;
            double v = 0;
            if (tl > 0 && tl <= ONNX_CSV_MAX_TOKEN) {
                memcpy(tok, a, tl);
                tok[tl] = 0;
                errno = 0;
                v = strtod(tok, &ep);
            }
            if (tl == 0 || tl > ONNX_CSV_MAX_TOKEN || ep != tok + tl || errno == ERANGE)
                return mt_err_set(err, MT_EINVAL,
                                  "onnx_infer: input slot '%s' line %zu field %zu: not a number",
                                  in->slot, line, c + 1);
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                if (nc > ONNX_MAX_ELEMS)
                    return mt_err_set(err, MT_EINVAL, "onnx_infer: input slot '%s': too many values",
                                      in->slot);
                double *nv = realloc(t->v, nc * sizeof *nv);
                if (!nv)
                    return mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory reading the input");
                t->v = nv;
                cap = nc;
            }
            t->v[n++] = v;
            c++;
            if (tok_end == le)
                break;
            q = tok_end + 1;
        }
        if (rows && c != cols)
            return mt_err_set(err, MT_EINVAL,
                              "onnx_infer: input slot '%s' line %zu: %zu fields, the first row "
                              "has %zu",
                              in->slot, line, c, cols);
        cols = c;
        rows++;
        p = eol ? eol + 1 : end;
    }
    if (!rows)
        return mt_err_set(err, MT_EINVAL, "onnx_infer: input slot '%s': no rows", in->slot);
    t->rank = 2;
    t->dims[0] = (int64_t)rows;
    t->dims[1] = (int64_t)cols;
    t->count = n;
    return MT_OK;
}

/* "d0,d1,..." (non-negative integers) replacing t's shape; the count must agree. */
static mt_status apply_shape(const char *s, in_tensor *t, mt_err *err)
{
    int64_t dims[MT_NN_MAX_RANK];
    int rank = 0;
    uint64_t n = 1;
    const char *p = s;
    while (*p) {
        char *ep;
        errno = 0;
        if (!isdigit((unsigned char)*p))
            return mt_err_set(err, MT_EINVAL, "argument 'shape': expected d0,d1,... (integers)");
        unsigned long long d = strtoull(p, &ep, 10);
        if (errno || d > (1ull << 31) || rank >= MT_NN_MAX_RANK)
            return mt_err_set(err, MT_EINVAL,
                              "argument 'shape': at most %d dimensions of at most 2^31",
                              MT_NN_MAX_RANK);
        dims[rank++] = (int64_t)d;
        n = d && n > ONNX_MAX_ELEMS / d ? ONNX_MAX_ELEMS + 1 : n * d;
        p = ep;
        if (*p == ',')
            p++;
        else if (*p)
            return mt_err_set(err, MT_EINVAL, "argument 'shape': expected d0,d1,... (integers)");
    }
    if (n != t->count)
        return mt_err_set(err, MT_EINVAL,
                          "argument 'shape': holds a different number of elements than the input");
    t->rank = rank;
    memcpy(t->dims, dims, sizeof dims[0] * (size_t)rank);
    return MT_OK;
}

/* ---- output --------------------------------------------------------------------- */

static double out_at(const mt_nn_tensor *o, size_t i)
{
    switch (o->dtype) {
    case MT_NN_FLOAT: return ((const float *)o->data)[i];
    case MT_NN_DOUBLE: return ((const double *)o->data)[i];
    case MT_NN_INT64: return (double)((const int64_t *)o->data)[i];
    case MT_NN_INT32: return ((const int32_t *)o->data)[i];
    default: return 0;
    }
}

static mt_status write_output(mt_bctx *ctx, size_t idx, const mt_nn_tensor *o, bool csv,
                              mt_err *err)
{
    const char *descr = o->dtype == MT_NN_FLOAT    ? "<f4"
                        : o->dtype == MT_NN_DOUBLE ? "<f8"
                        : o->dtype == MT_NN_INT64  ? "<i8"
                        : o->dtype == MT_NN_INT32  ? "<i4"
                                                   : NULL;
    if (!descr)
        return mt_err_set(err, MT_EINVAL,
                          "onnx_infer: the model's output has element type %d (float, double, "
                          "int64 or int32 supported)",
                          o->dtype);
    size_t count = 1;
    for (int i = 0; i < o->rank; i++)
        count *= (size_t)o->dims[i];
    size_t es = mt_nn_dtype_size(o->dtype);
    if (!csv) {
        char hdr[640];
        size_t hl = mt_npy_header(hdr, sizeof hdr, descr, o->rank, o->dims);
        if (!hl)
            return mt_err_set(err, MT_EINTERNAL, "onnx_infer: npy header does not fit");
        mt_status rc = mt_bctx_output_write(ctx, idx, hdr, hl, err);
        if (rc == MT_OK && count)
            rc = mt_bctx_output_write(ctx, idx, o->data, count * es, err);
        return rc;
    }
    /* CSV: one line per index of the first dimension (a scalar or 1-D output: one line) */
    size_t rows = o->rank >= 2 ? (size_t)o->dims[0] : 1;
    size_t cols = rows ? count / (rows ? rows : 1) : 0;
    char buf[8192];
    size_t bl = 0;
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            if (bl + 40 > sizeof buf) {
                mt_status rc = mt_bctx_output_write(ctx, idx, buf, bl, err);
                if (rc != MT_OK)
                    return rc;
                bl = 0;
            }
            double v = out_at(o, r * cols + c);
            int k = o->dtype == MT_NN_INT64 || o->dtype == MT_NN_INT32
                        ? snprintf(buf + bl, sizeof buf - bl, "%s%.0f", c ? "," : "", v)
                        : snprintf(buf + bl, sizeof buf - bl, "%s%.*g", c ? "," : "",
                                   o->dtype == MT_NN_DOUBLE ? 17 : 9, v);
            bl += (size_t)k;
        }
        buf[bl++] = '\n';
    }
    return bl ? mt_bctx_output_write(ctx, idx, buf, bl, err) : MT_OK;
}

/* ---- the built-in --------------------------------------------------------------- */

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int64_t arg_int(const mt_bctx *ctx, const char *name, int64_t dflt)
{
    const char *v = mt_bctx_arg(ctx, name);
    int64_t x;
    return v && *v && mt_int_parse(v, &x) ? x : dflt;
}

static const char *arg_str(const mt_bctx *ctx, const char *name, const char *dflt)
{
    const char *v = mt_bctx_arg(ctx, name);
    return v && *v ? v : dflt;
}

/* ---- slot mappings -------------------------------------------------------------- */

#define ONNX_MAX_MAP 256

/* "NAME=SLOT,NAME=SLOT,...": entries point into *copy (caller frees copy and *ents).
 * Errors name the argument and the entry's position, never its text. */
typedef struct {
    const char *name;
    const char *slot;
    bool used;
} map_ent;

static mt_status parse_map(const char *arg, const char *s, char **copy, map_ent **ents, size_t *n,
                           mt_err *err)
{
    *copy = strdup(s);
    *ents = calloc(ONNX_MAX_MAP, sizeof **ents);
    *n = 0;
    if (!*copy || !*ents)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char *p = *copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        char *eq = strchr(p, '=');
        if (*n == ONNX_MAX_MAP)
            return mt_err_set(err, MT_EINVAL, "argument '%s': at most %d entries", arg,
                              ONNX_MAX_MAP);
        if (!eq || eq == p || !eq[1] || strchr(eq + 1, '='))
            return mt_err_set(err, MT_EINVAL,
                              "argument '%s' entry %zu: expected NAME=SLOT (entries separated "
                              "by commas)",
                              arg, *n + 1);
        *eq = 0;
        for (size_t j = 0; j < *n; j++)
            if (!strcmp((*ents)[j].name, p))
                return mt_err_set(err, MT_EINVAL,
                                  "argument '%s' entry %zu: the same name as entry %zu", arg,
                                  *n + 1, j + 1);
        (*ents)[*n].name = p;
        (*ents)[*n].slot = eq + 1;
        (*n)++;
        if (!comma)
            return MT_OK;
        p = comma + 1;
    }
}

/* ---- one model input fed from one slot ------------------------------------------ */

typedef struct {
    size_t idx;                /* the model input */
    const mt_bctx_input *in;   /* its slot */
    in_tensor t;
    mt_nn_tensor decl;
    void *buf;                 /* t converted to decl.dtype */
    size_t es;
} feed;

static void feed_clear(feed *f)
{
    if (f->t.v)
        mt_wipe(f->t.v, (f->t.count ? f->t.count : 1) * sizeof *f->t.v);
    free(f->t.v);
    if (f->buf)
        mt_wipe(f->buf, (f->t.count ? f->t.count : 1) * (f->es ? f->es : 1));
    free(f->buf);
}

/* what the input error names: the slot (the task's own name for it) */
static mt_status feed_convert(feed *f, size_t *budget, int64_t mem_mb, mt_err *err)
{
    const in_tensor *t = &f->t;
    const mt_nn_tensor *decl = &f->decl;
    bool fits = decl->rank == t->rank;
    for (int i = 0; fits && i < t->rank; i++)
        fits = decl->dims[i] < 0 || decl->dims[i] == t->dims[i];
    if (!fits) {
        char ds[160] = "";
        size_t k = 0;
        for (int i = 0; i < decl->rank && k + 24 < sizeof ds; i++)
            k += (size_t)(decl->dims[i] < 0
                              ? snprintf(ds + k, sizeof ds - k, "%s?", i ? "," : "")
                              : snprintf(ds + k, sizeof ds - k, "%s%lld", i ? "," : "",
                                         (long long)decl->dims[i]));
        return mt_err_set(err, MT_EINVAL,
                          "onnx_infer: input slot '%s': the input's shape does not fit the "
                          "model's input, declared [%s] (? = any; argument 'shape' reshapes a "
                          "single input)",
                          f->in->slot, ds);
    }
    if (decl->dtype != MT_NN_FLOAT && decl->dtype != MT_NN_DOUBLE && decl->dtype != MT_NN_INT64)
        return mt_err_set(err, MT_EINVAL,
                          "onnx_infer: input slot '%s': the model's input has element type %d "
                          "(float, double or int64 supported)",
                          f->in->slot, decl->dtype);
    f->es = mt_nn_dtype_size(decl->dtype);
    if (t->count > *budget / f->es)
        return mt_err_set(err, MT_ETOOBIG,
                          "onnx_infer: the input is larger than the memory cap of %lld MiB",
                          (long long)mem_mb);
    *budget -= t->count * f->es;
    f->buf = malloc(t->count ? t->count * f->es : f->es);
    if (!f->buf)
        return mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory converting the input");
    for (uint64_t i = 0; i < t->count; i++) {
        if (decl->dtype == MT_NN_FLOAT)
            ((float *)f->buf)[i] = (float)t->v[i];
        else if (decl->dtype == MT_NN_DOUBLE)
            ((double *)f->buf)[i] = t->v[i];
        else {
            double v = t->v[i];
            if (!(v >= -9.2e18 && v <= 9.2e18) || v != floor(v))
                return mt_err_set(err, MT_EINVAL,
                                  "onnx_infer: input slot '%s': the model's input is int64 and "
                                  "element %llu is not an integer",
                                  f->in->slot, (unsigned long long)i);
            ((int64_t *)f->buf)[i] = (int64_t)v;
        }
    }
    return MT_OK;
}

/* the model's SHA-256 (hex) against argument model_sha256 (hex, either case) */
static mt_status model_hash(mt_bctx *ctx, const mt_bctx_input *min, char hex[65], mt_err *err)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    if (EVP_Digest(min->data, min->len, h, &hl, EVP_sha256(), NULL) != 1 || hl != 32)
        return mt_err_set(err, MT_EINTERNAL, "onnx_infer: SHA-256 failed");
    mt_hex_encode(h, 32, hex);
    const char *want = mt_bctx_arg(ctx, "model_sha256");
    if (!want || !*want)
        return MT_OK;
    bool ok = strlen(want) == 64;
    for (size_t i = 0; ok && i < 64; i++)
        ok = isxdigit((unsigned char)want[i]) && tolower((unsigned char)want[i]) == hex[i];
    if (!ok)
        return mt_err_set(err, MT_EINVAL,
                          "onnx_infer: the model in slot '%s' is not the one the task names "
                          "(argument model_sha256; the model's SHA-256 is %s)",
                          min->slot, hex);
    return MT_OK;
}

mt_status mt_builtin_onnx_infer(mt_bctx *ctx, char **ret, mt_err *err)
{
    const char *model_slot = arg_str(ctx, "model_slot", "model");
    const char *input_slot = arg_str(ctx, "input_slot", "input");
    const char *output_slot = arg_str(ctx, "output_slot", "output");
    const char *fmt = arg_str(ctx, "format", "npy");
    const char *ofmt = arg_str(ctx, "output_format", "npy");
    const char *inputs_map = arg_str(ctx, "inputs", NULL);
    const char *outputs_map = arg_str(ctx, "outputs", NULL);
    int64_t threads = arg_int(ctx, "threads", 1);
    int64_t model_size = arg_int(ctx, "model_size", -1);
    /* the engine's cap: half the task's memory limit (the rest holds the decrypted
     * inputs, the unpacked protobuf, oneDNN's reordered weights and code), or less
     * when memory_mb asks for less */
    int64_t half_mb = ctx->mem_limit ? (int64_t)(ctx->mem_limit >> 21) : 1024;
    if (half_mb < 1)
        half_mb = 1;
    int64_t mem_mb = arg_int(ctx, "memory_mb", half_mb);
    if (threads < 1 || threads > 16)
        return mt_err_set(err, MT_EINVAL, "argument 'threads': expected 1..16");
    if (mem_mb < 1 || mem_mb > 65536)
        return mt_err_set(err, MT_EINVAL, "argument 'memory_mb': expected 1..65536");
    if (mem_mb > half_mb) {
        mt_bctx_log(ctx, "onnx_infer: memory_mb lowered to %lld (half the task's memory limit)",
                    (long long)half_mb);
        mem_mb = half_mb;
    }
    const mt_bctx_input *min = mt_bctx_input_find(ctx, model_slot);
    if (!min)
        return mt_err_set(err, MT_EINVAL, "onnx_infer: no input slot '%s' (argument model_slot)",
                          model_slot);
    if (model_size == 0 || (model_size > 0 && (uint64_t)model_size > min->len))
        return mt_err_set(err, MT_EINVAL,
                          "argument 'model_size': expected 1 to the model slot's size: the "
                          "ModelProto's length, the external-data blob follows it");
    char hex[65];
    mt_status rc = model_hash(ctx, min, hex, err);
    if (rc != MT_OK)
        return rc;
    /* participants read the log: what ran is this model (whole slot, blob included) */
    mt_bctx_log(ctx, "onnx_infer: model sha256 %s", hex);

    /* oneDNN's Intel ITT (VTune) hooks dlopen("libittnotify.so") at the first primitive
     * and its JIT profiling looks for a VTune agent: inside the sandbox that dlopen is an
     * openat() the filter kills (sandbox.c). Both are read once from the environment at
     * oneDNN's first use, which is below: switch them off here, in this worker only,
     * rather than allow any file access. */
    if (setenv("DNNL_ITT_TASK_LEVEL", "0", 1) != 0 || setenv("DNNL_JIT_PROFILE", "0", 1) != 0)
        return mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory");

    mt_nn_model *m = NULL;
    feed *feeds = NULL;
    size_t nfeeds = 0;
    mt_nn_tensor *shapes = NULL, *ins = NULL, *outs = NULL;
    char *in_copy = NULL, *out_copy = NULL;
    map_ent *in_map = NULL, *out_map = NULL;
    size_t n_in_map = 0, n_out_map = 0;
    long *oslots = NULL;
    char *r = NULL;
    char msg[512];

    mt_nn_limits lim = {.mem_cap = (size_t)mem_mb << 20, .threads = (int)threads};
    struct timespec t0, t1, t2, t3;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int nrc = model_size > 0 ? mt_nn_load_ext(min->data, (size_t)model_size,
                                              min->data + model_size,
                                              min->len - (size_t)model_size, &lim, &m, msg,
                                              sizeof msg)
                             : mt_nn_load(min->data, min->len, &lim, &m, msg, sizeof msg);
    if (nrc != MT_NN_OK) {
        if (model_size < 0 && strstr(msg, "external data needs the model's data blob")) {
            mt_bctx_detail(ctx, "onnx_infer loading the model: %s", msg);
            rc = mt_err_set(err, MT_EINVAL,
                            "onnx_infer: loading the model: it keeps tensors in external data; "
                            "put the data after the ModelProto in the model slot and give the "
                            "ModelProto's length as argument 'model_size'");
        } else {
            rc = engine_fail(ctx, nrc, "loading the model", msg, (size_t)mem_mb, err);
        }
        goto done;
    }

    /* ---- which slot feeds which model input ---- */
    size_t nin = mt_nn_num_inputs(m);
    feeds = calloc(nin ? nin : 1, sizeof *feeds);
    shapes = calloc(nin ? nin : 1, sizeof *shapes);
    ins = calloc(nin ? nin : 1, sizeof *ins);
    if (!feeds || !shapes || !ins) {
        rc = mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory");
        goto done;
    }
    nfeeds = nin;
    if (inputs_map) {
        if ((rc = parse_map("inputs", inputs_map, &in_copy, &in_map, &n_in_map, err)))
            goto done;
        for (size_t i = 0; i < nin; i++) {
            const map_ent *e = NULL;
            for (size_t j = 0; j < n_in_map && !e; j++)
                if (!strcmp(in_map[j].name, mt_nn_input_name(m, i))) {
                    e = &in_map[j];
                    in_map[j].used = true;
                }
            if (!e) {
                rc = mt_err_set(err, MT_EINVAL,
                                "argument 'inputs': the model's input %zu (of %zu) is not mapped "
                                "to a slot",
                                i + 1, nin);
                goto done;
            }
            feeds[i].in = mt_bctx_input_find(ctx, e->slot);
            if (!feeds[i].in || feeds[i].in == min) {
                rc = mt_err_set(err, MT_EINVAL,
                                "argument 'inputs' entry %zu: no input slot '%s' (other than "
                                "the model's)",
                                (size_t)(e - in_map) + 1, e->slot);
                goto done;
            }
        }
        for (size_t j = 0; j < n_in_map; j++)
            if (!in_map[j].used) {
                rc = mt_err_set(err, MT_EINVAL,
                                "argument 'inputs' entry %zu: the model has no input of that "
                                "name",
                                j + 1);
                goto done;
            }
    } else {
        if (nin != 1) {
            rc = mt_err_set(err, MT_EINVAL,
                            "onnx_infer: the model has %zu inputs: map each to an input slot "
                            "with argument 'inputs' (NAME=SLOT,...)",
                            nin);
            goto done;
        }
        const char *iname = mt_bctx_arg(ctx, "input_name");
        if (iname && *iname && strcmp(mt_nn_input_name(m, 0), iname)) {
            rc = mt_err_set(err, MT_EINVAL, "argument 'input_name': the model has no such input");
            goto done;
        }
        feeds[0].in = mt_bctx_input_find(ctx, input_slot);
        if (!feeds[0].in) {
            rc = mt_err_set(err, MT_EINVAL,
                            "onnx_infer: no input slot '%s' (argument input_slot)", input_slot);
            goto done;
        }
    }
    const char *shape = mt_bctx_arg(ctx, "shape");
    if (shape && *shape && nin != 1) {
        rc = mt_err_set(err, MT_EINVAL,
                        "argument 'shape' reshapes a single input; the model has %zu (give each "
                        "its shape in its .npy)",
                        nin);
        goto done;
    }
    size_t budget = (size_t)mem_mb << 20;
    for (size_t i = 0; i < nin; i++) {
        feed *f = &feeds[i];
        f->idx = i;
        rc = !strcmp(fmt, "csv") ? read_csv(f->in, &f->t, err) : read_npy(f->in, &f->t, err);
        if (rc == MT_OK && shape && *shape)
            rc = apply_shape(shape, &f->t, err);
        if (rc != MT_OK)
            goto done;
        if (mt_nn_input_decl(m, i, &f->decl) != MT_NN_OK) {
            rc = mt_err_set(err, MT_EINVAL,
                            "onnx_infer: the model's input %zu has no tensor type", i + 1);
            goto done;
        }
        if ((rc = feed_convert(f, &budget, mem_mb, err)))
            goto done;
        ins[i] = (mt_nn_tensor){.dtype = f->decl.dtype, .rank = f->t.rank, .data = f->buf};
        memcpy(ins[i].dims, f->t.dims, sizeof f->t.dims[0] * (size_t)f->t.rank);
        /* prepare with the shapes only: given values, the engine would pin them and
         * fold the whole graph into constants at prepare (nn.h) */
        shapes[i] = ins[i];
        shapes[i].data = NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    nrc = mt_nn_prepare(m, shapes, nin, msg, sizeof msg);
    if (nrc != MT_NN_OK) {
        rc = engine_fail(ctx, nrc, "preparing the model for the input's shape", msg,
                         (size_t)mem_mb, err);
        goto done;
    }

    /* ---- which model output goes to which output slot ---- */
    size_t nout = mt_nn_num_outputs(m);
    outs = calloc(nout ? nout : 1, sizeof *outs);
    oslots = malloc((nout ? nout : 1) * sizeof *oslots);
    if (!outs || !oslots) {
        rc = mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory");
        goto done;
    }
    size_t written = 0;
    for (size_t k = 0; k < nout; k++)
        oslots[k] = -1;
    if (!outputs_map) {
        oslots[0] = ml_output_find(ctx, output_slot);
        if (nout < 1 || oslots[0] < 0) {
            rc = nout < 1 ? mt_err_set(err, MT_EINVAL, "onnx_infer: the model has no outputs")
                          : mt_err_set(err, MT_EINVAL,
                                       "onnx_infer: no output slot '%s' (argument output_slot)",
                                       output_slot);
            goto done;
        }
    } else if (!strcmp(outputs_map, "*")) {
        for (size_t k = 0; k < nout; k++) {
            oslots[k] = ml_output_find(ctx, mt_nn_output_name(m, k));
            if (oslots[k] < 0) {
                rc = mt_err_set(err, MT_EINVAL,
                                "argument 'outputs=*': the model's output %zu (of %zu) has no "
                                "output slot of the same name",
                                k + 1, nout);
                goto done;
            }
        }
    } else {
        if ((rc = parse_map("outputs", outputs_map, &out_copy, &out_map, &n_out_map, err)))
            goto done;
        for (size_t j = 0; j < n_out_map; j++) {
            size_t k = 0;
            while (k < nout && strcmp(mt_nn_output_name(m, k), out_map[j].name))
                k++;
            long o = ml_output_find(ctx, out_map[j].slot);
            if (k == nout || o < 0) {
                rc = k == nout ? mt_err_set(err, MT_EINVAL,
                                            "argument 'outputs' entry %zu: the model has no "
                                            "output of that name",
                                            j + 1)
                               : mt_err_set(err, MT_EINVAL,
                                            "argument 'outputs' entry %zu: no output slot '%s'",
                                            j + 1, out_map[j].slot);
                goto done;
            }
            oslots[k] = o;
        }
    }
    for (size_t k = 0; k < nout; k++)
        for (size_t j = 0; j < k; j++)
            if (oslots[k] >= 0 && oslots[k] == oslots[j]) {
                rc = mt_err_set(err, MT_EINVAL,
                                "onnx_infer: two model outputs go to output slot '%s'",
                                ctx->outputs[oslots[k]].slot);
                goto done;
            }

    clock_gettime(CLOCK_MONOTONIC, &t2);
    nrc = mt_nn_run(m, ins, nin, outs, nout, msg, sizeof msg);
    clock_gettime(CLOCK_MONOTONIC, &t3);
    if (nrc != MT_NN_OK) {
        rc = engine_fail(ctx, nrc, "running the model", msg, (size_t)mem_mb, err);
        goto done;
    }
    /* the return value: the shape of each output written, in model order */
    size_t rcap = 64 + nout * 24 * (MT_NN_MAX_RANK + 1), rl = 0;
    r = malloc(rcap);
    if (!r) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    rl = (size_t)snprintf(r, rcap, "output shape%s:", outputs_map ? "s" : "");
    for (size_t k = 0; k < nout; k++) {
        if (oslots[k] < 0)
            continue;
        rc = write_output(ctx, (size_t)oslots[k], &outs[k], !strcmp(ofmt, "csv"), err);
        if (rc != MT_OK)
            goto done;
        written++;
        rl += (size_t)snprintf(r + rl, rcap - rl, " [");
        for (int i = 0; i < outs[k].rank; i++)
            rl += (size_t)snprintf(r + rl, rcap - rl, "%s%lld", i ? "," : "",
                                   (long long)outs[k].dims[i]);
        rl += (size_t)snprintf(r + rl, rcap - rl, "]");
    }
    mt_bctx_log(ctx, "onnx_infer: %zu nodes, %zu MiB reserved, %lld threads, %zu of %zu outputs "
                     "written",
                mt_nn_num_nodes(m), mt_nn_mem_used(m) >> 20, (long long)threads, written, nout);
    /* where a cold task's time goes (load: parse + constants; run: the first inference,
     * which also makes the oneDNN primitives and reorders the weights) */
    mt_bctx_log(ctx, "onnx_infer: load+inputs %.1f ms, prepare %.1f ms, run %.1f ms",
                ms_between(&t0, &t1), ms_between(&t1, &t2), ms_between(&t2, &t3));
    *ret = r;
    r = NULL;
done:
    for (size_t i = 0; i < nfeeds; i++)
        feed_clear(&feeds[i]);
    free(feeds);
    free(shapes);
    free(ins);
    free(outs);
    free(oslots);
    free(in_copy);
    free(in_map);
    free(out_copy);
    free(out_map);
    free(r);
    mt_nn_free(m);
    return rc;
}
