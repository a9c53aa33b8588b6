/* builtin_onnx: the onnx_infer built-in (issue 12, docs/nn.md "onnx_infer built-in").
 * One party's ONNX model (input slot model_slot) runs on another party's tensor
 * (input slot input_slot: .npy, or CSV rows of numbers); the model's output is
 * written to the output slot (.npy, or CSV rows) encrypted for that slot's owner.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

mt_status mt_builtin_onnx_infer(mt_bctx *ctx, char **ret, mt_err *err)
{
    const char *model_slot = arg_str(ctx, "model_slot", "model");
    const char *input_slot = arg_str(ctx, "input_slot", "input");
    const char *output_slot = arg_str(ctx, "output_slot", "output");
    const char *fmt = arg_str(ctx, "format", "npy");
    const char *ofmt = arg_str(ctx, "output_format", "npy");
    int64_t threads = arg_int(ctx, "threads", 1);
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
    const mt_bctx_input *din = mt_bctx_input_find(ctx, input_slot);
    if (!min)
        return mt_err_set(err, MT_EINVAL, "onnx_infer: no input slot '%s' (argument model_slot)",
                          model_slot);
    if (!din)
        return mt_err_set(err, MT_EINVAL, "onnx_infer: no input slot '%s' (argument input_slot)",
                          input_slot);
    long oidx = ml_output_find(ctx, output_slot);
    if (oidx < 0)
        return mt_err_set(err, MT_EINVAL,
                          "onnx_infer: no output slot '%s' (argument output_slot)", output_slot);

    /* oneDNN's Intel ITT (VTune) hooks dlopen("libittnotify.so") at the first primitive
     * and its JIT profiling looks for a VTune agent: inside the sandbox that dlopen is an
     * openat() the filter kills (sandbox.c). Both are read once from the environment at
     * oneDNN's first use, which is below: switch them off here, in this worker only,
     * rather than allow any file access. */
    if (setenv("DNNL_ITT_TASK_LEVEL", "0", 1) != 0 || setenv("DNNL_JIT_PROFILE", "0", 1) != 0)
        return mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory");

    in_tensor t = {0};
    mt_nn_model *m = NULL;
    void *buf = NULL;
    size_t es = 0;
    char msg[512];
    mt_status rc = !strcmp(fmt, "csv") ? read_csv(din, &t, err) : read_npy(din, &t, err);
    const char *shape = mt_bctx_arg(ctx, "shape");
    if (rc == MT_OK && shape && *shape)
        rc = apply_shape(shape, &t, err);
    if (rc != MT_OK)
        goto done;

    mt_nn_limits lim = {.mem_cap = (size_t)mem_mb << 20, .threads = (int)threads};
    int nrc = mt_nn_load(min->data, min->len, &lim, &m, msg, sizeof msg);
    if (nrc != MT_NN_OK) {
        rc = engine_fail(ctx, nrc, "loading the model", msg, (size_t)mem_mb, err);
        goto done;
    }
    /* the input: argument input_name, else the model's only (first) input */
    size_t nin = mt_nn_num_inputs(m), which = 0;
    const char *iname = mt_bctx_arg(ctx, "input_name");
    if (iname && *iname) {
        for (which = 0; which < nin; which++)
            if (!strcmp(mt_nn_input_name(m, which), iname))
                break;
        if (which == nin) {
            rc = mt_err_set(err, MT_EINVAL, "argument 'input_name': the model has no such input");
            goto done;
        }
    }
    if (nin != 1) {
        rc = mt_err_set(err, MT_EINVAL,
                        "onnx_infer: the model has %zu inputs; onnx_infer feeds exactly one", nin);
        goto done;
    }
    mt_nn_tensor decl;
    if (mt_nn_input_decl(m, which, &decl) != MT_NN_OK) {
        rc = mt_err_set(err, MT_EINVAL, "onnx_infer: the model's input has no tensor type");
        goto done;
    }
    /* the declared shape must agree where it is concrete */
    bool fits = decl.rank == t.rank;
    for (int i = 0; fits && i < t.rank; i++)
        fits = decl.dims[i] < 0 || decl.dims[i] == t.dims[i];
    if (!fits) {
        char ds[160] = "";
        size_t k = 0;
        for (int i = 0; i < decl.rank && k + 24 < sizeof ds; i++)
            k += (size_t)(decl.dims[i] < 0
                              ? snprintf(ds + k, sizeof ds - k, "%s?", i ? "," : "")
                              : snprintf(ds + k, sizeof ds - k, "%s%lld", i ? "," : "",
                                         (long long)decl.dims[i]));
        rc = mt_err_set(err, MT_EINVAL,
                        "onnx_infer: the input's shape does not fit the model's input, declared "
                        "[%s] (? = any; argument 'shape' reshapes the input)",
                        ds);
        goto done;
    }
    es = mt_nn_dtype_size(decl.dtype);
    if (decl.dtype != MT_NN_FLOAT && decl.dtype != MT_NN_DOUBLE && decl.dtype != MT_NN_INT64) {
        rc = mt_err_set(err, MT_EINVAL,
                        "onnx_infer: the model's input has element type %d (float, double or "
                        "int64 supported)",
                        decl.dtype);
        goto done;
    }
    if (t.count > ((size_t)mem_mb << 20) / es) {
        rc = mt_err_set(err, MT_ETOOBIG,
                        "onnx_infer: the input is larger than the memory cap of %lld MiB",
                        (long long)mem_mb);
        goto done;
    }
    buf = malloc(t.count ? t.count * es : es);
    if (!buf) {
        rc = mt_err_set(err, MT_ENOMEM, "onnx_infer: out of memory converting the input");
        goto done;
    }
    for (uint64_t i = 0; i < t.count; i++) {
        if (decl.dtype == MT_NN_FLOAT)
            ((float *)buf)[i] = (float)t.v[i];
        else if (decl.dtype == MT_NN_DOUBLE)
            ((double *)buf)[i] = t.v[i];
        else {
            double v = t.v[i];
            if (!(v >= -9.2e18 && v <= 9.2e18) || v != floor(v)) {
                rc = mt_err_set(err, MT_EINVAL,
                                "onnx_infer: the model's input is int64 and element %llu is not "
                                "an integer",
                                (unsigned long long)i);
                goto done;
            }
            ((int64_t *)buf)[i] = (int64_t)v;
        }
    }
    mt_nn_tensor in = {.dtype = decl.dtype, .rank = t.rank, .data = buf};
    memcpy(in.dims, t.dims, sizeof t.dims[0] * (size_t)t.rank);
    /* prepare with the shape only: given values, the engine would pin them and fold
     * the whole graph into constants at prepare (nn.h) */
    mt_nn_tensor shape_only = in;
    shape_only.data = NULL;
    nrc = mt_nn_prepare(m, &shape_only, 1, msg, sizeof msg);
    if (nrc != MT_NN_OK) {
        rc = engine_fail(ctx, nrc, "preparing the model for the input's shape", msg,
                         (size_t)mem_mb, err);
        goto done;
    }
    size_t nout = mt_nn_num_outputs(m);
    mt_nn_tensor outs[4];
    if (nout < 1 || nout > 4) {
        rc = mt_err_set(err, MT_EINVAL, "onnx_infer: the model has %zu outputs (1 to 4 supported)",
                        nout);
        goto done;
    }
    nrc = mt_nn_run(m, &in, 1, outs, nout, msg, sizeof msg);
    if (nrc != MT_NN_OK) {
        rc = engine_fail(ctx, nrc, "running the model", msg, (size_t)mem_mb, err);
        goto done;
    }
    rc = write_output(ctx, (size_t)oidx, &outs[0], !strcmp(ofmt, "csv"), err);
    if (rc != MT_OK)
        goto done;
    char r[160];
    int k = snprintf(r, sizeof r, "output shape: [");
    for (int i = 0; i < outs[0].rank && k > 0 && (size_t)k + 24 < sizeof r; i++)
        k += snprintf(r + k, sizeof r - (size_t)k, "%s%lld", i ? "," : "",
                      (long long)outs[0].dims[i]);
    snprintf(r + k, sizeof r - (size_t)k, "]");
    mt_bctx_log(ctx, "onnx_infer: %zu nodes, %zu MiB reserved, %lld threads", mt_nn_num_nodes(m),
                mt_nn_mem_used(m) >> 20, (long long)threads);
    *ret = strdup(r);
    if (!*ret)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
done:
    if (t.v)
        mt_wipe(t.v, (t.count ? t.count : 1) * sizeof *t.v);
    free(t.v);
    if (buf)
        mt_wipe(buf, t.count * (es ? es : 1));
    free(buf);
    mt_nn_free(m);
    return rc;
}
