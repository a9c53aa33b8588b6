/* builtin_gbdt: gradient boosted trees on XGBoost's C API (Debian
 * libxgboost-dev, 1.7): gbdt_train writes XGBoost's own JSON model, so a
 * model trained elsewhere can be brought to gbdt_predict and the other way
 * round. Training rows come from every input slot (CSV with a header, or
 * LIBSVM); documented in docs/builtins.md.
 *
 * XGBoost runs inside the sandboxed worker: its OpenMP threads are created
 * with clone(CLONE_THREAD), and its cgroup probe gets ENOENT (sandbox.c).
 * XGBoost's own error texts are passed on only for training parameters;
 * for a model or data it refuses, the reason is ours and quotes nothing.
 *
 * gbdt_predict predicts with our own predictor (gbdt_forest.h) when it
 * accepts the model XGBoost loaded and matches XGBoost bit for bit on the
 * first rows (own_predictor) and predicts every row, else (also when our
 * full prediction fails, e.g. out of memory) with XGBoost's. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>

#include "builtin_csv.h"
#include "builtin_ml.h"
#include "gbdt_forest.h"
#include "mt_json.h"
#include "mt_util.h"

#define GBDT_MODEL_MAX (256u << 20)       /* bytes of a model JSON */
#define GBDT_LIBSVM_MAX_COL (1u << 20)    /* feature indices of LIBSVM input */
#define GBDT_LIBSVM_MAX_TOKEN 256
#define GBDT_MAX_CLASS 1000

/* ------------------------------------------------------------- XGBoost glue */

static mt_bctx *log_ctx; /* one job per worker process */

static void xgb_log(const char *msg)
{
    if (log_ctx)
        mt_bctx_log(log_ctx, "xgboost: %.300s", msg);
}

static void xgb_init(mt_bctx *ctx)
{
    log_ctx = ctx;
    XGBRegisterLogCallback(xgb_log);
    XGBSetGlobalConfig("{\"verbosity\": 1}");
}

/* MT_EINTERNAL with what failed; XGBoost's text only when show is true (its
 * messages about data can quote feature names or values: those calls pass
 * false, and the text goes to the operator-only detail). */
static mt_status xgb_fail(mt_err *err, const char *what, bool show)
{
    const char *e = XGBGetLastError();
    if (log_ctx && e && *e)
        mt_bctx_detail(log_ctx, "%s: XGBoost: %.900s", what, e);
    if (show && e && *e) {
        /* XGBoost's messages start with a source location: keep the last line */
        const char *nl = strrchr(e, '\n');
        while (nl && nl[1] == 0 && nl > e) {
            const char *q = nl - 1;
            while (q > e && *q != '\n')
                q--;
            nl = *q == '\n' ? q : NULL;
        }
        return mt_err_set(err, MT_EINVAL, "%s: XGBoost: %.300s", what, nl ? nl + 1 : e);
    }
    return mt_err_set(err, MT_EINVAL, "%s", what);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------- LIBSVM */

/* Sparse rows pooled from several inputs. */
typedef struct svm_data {
    size_t n;          /* rows */
    size_t nnz;
    size_t *indptr;    /* n + 1 */
    unsigned *indices; /* nnz */
    float *values;     /* nnz */
    float *y;          /* n */
    size_t max_col;    /* 1 + largest index seen, 0 when none */
    const char **row_slot;
    size_t *row_line;
    size_t cap_rows, cap_nnz;
} svm_data;

static void svm_free(svm_data *d)
{
    if (d->values)
        mt_wipe(d->values, d->nnz * sizeof *d->values);
    free(d->indptr);
    free(d->indices);
    free(d->values);
    free(d->y);
    free(d->row_slot);
    free(d->row_line);
    memset(d, 0, sizeof *d);
}

static bool svm_reserve(svm_data *d, size_t rows, size_t nnz)
{
    if (rows + 1 > d->cap_rows) {
        size_t c = d->cap_rows ? d->cap_rows * 2 : 1024;
        while (c < rows + 1)
            c *= 2;
        void *a = realloc(d->indptr, c * sizeof *d->indptr);
        if (a)
            d->indptr = a;
        void *b = realloc(d->y, c * sizeof *d->y);
        if (b)
            d->y = b;
        void *s = realloc(d->row_slot, c * sizeof *d->row_slot);
        if (s)
            d->row_slot = s;
        void *l = realloc(d->row_line, c * sizeof *d->row_line);
        if (l)
            d->row_line = l;
        if (!a || !b || !s || !l)
            return false;
        d->cap_rows = c;
    }
    if (nnz > d->cap_nnz) {
        size_t c = d->cap_nnz ? d->cap_nnz * 2 : 4096;
        while (c < nnz)
            c *= 2;
        void *a = realloc(d->indices, c * sizeof *d->indices);
        if (a)
            d->indices = a;
        void *b = realloc(d->values, c * sizeof *d->values);
        if (b)
            d->values = b;
        if (!a || !b)
            return false;
        d->cap_nnz = c;
    }
    return true;
}

/* Strict number of token [s, s+len) into *out; false if it is not one. */
static bool svm_number(const char *s, size_t len, double *out)
{
    char buf[GBDT_LIBSVM_MAX_TOKEN + 1];
    if (len == 0 || len > GBDT_LIBSVM_MAX_TOKEN)
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    return mt_num_parse(buf, out);
}

/* Appends the LIBSVM lines of in to d: "label index:value ..." separated by
 * spaces or tabs, indices strictly increasing non-negative integers (used as
 * 0-based columns, as XGBoost's own reader does), LF or CRLF line ends,
 * empty lines skipped. Messages count tokens from 1 (the label) as columns. */
static mt_status svm_parse(const mt_bctx_input *in, svm_data *d, mt_err *err)
{
    const char *p = (const char *)in->data, *end = p + in->len;
    size_t line = 0;
    if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        line++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        const char *q = p;
        p = eol ? eol + 1 : end;
        if (memchr(q, 0, (size_t)(le - q)) || memchr(q, '\r', (size_t)(le - q)))
            return mt_err_set(err, MT_EINVAL, "input '%s', line %zu: NUL or CR byte", in->slot,
                              line);
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        if (q == le)
            continue; /* empty line */
        if (!svm_reserve(d, d->n + 1, d->nnz + 64))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        size_t tok = 0;
        long prev = -1;
        while (q < le) {
            const char *t = q;
            while (q < le && *q != ' ' && *q != '\t')
                q++;
            size_t tl = (size_t)(q - t);
            tok++;
            double v;
            if (tok == 1) {
                /* range checked before the conversion to float (out of
                 * range it would be undefined, and infinite in practice) */
                if (!svm_number(t, tl, &v) || !(fabs(v) <= FLT_MAX))
                    return mt_err_set(err, MT_EINVAL,
                                      "input '%s', line %zu, column 1: label is not a finite "
                                      "32-bit number",
                                      in->slot, line);
                d->y[d->n] = (float)v;
            } else {
                const char *colon = memchr(t, ':', tl);
                char ib[16];
                size_t il = colon ? (size_t)(colon - t) : 0;
                int64_t idx;
                if (!colon || il == 0 || il >= sizeof ib)
                    return mt_err_set(err, MT_EINVAL,
                                      "input '%s', line %zu, column %zu: expected index:value",
                                      in->slot, line, tok);
                memcpy(ib, t, il);
                ib[il] = 0;
                if (!mt_int_parse(ib, &idx) || idx < 0 || idx >= GBDT_LIBSVM_MAX_COL)
                    return mt_err_set(err, MT_EINVAL,
                                      "input '%s', line %zu, column %zu: index must be an integer "
                                      "from 0 to %u",
                                      in->slot, line, tok, GBDT_LIBSVM_MAX_COL - 1);
                if (idx <= prev)
                    return mt_err_set(err, MT_EINVAL,
                                      "input '%s', line %zu, column %zu: indices must increase",
                                      in->slot, line, tok);
                if (!svm_number(colon + 1, tl - il - 1, &v) || !(fabs(v) <= FLT_MAX))
                    return mt_err_set(err, MT_EINVAL,
                                      "input '%s', line %zu, column %zu: value is not a finite "
                                      "32-bit number",
                                      in->slot, line, tok);
                if (!svm_reserve(d, d->n + 1, d->nnz + 1))
                    return mt_err_set(err, MT_ENOMEM, "out of memory");
                d->indices[d->nnz] = (unsigned)idx;
                d->values[d->nnz++] = (float)v;
                if ((size_t)idx + 1 > d->max_col)
                    d->max_col = (size_t)idx + 1;
                prev = (long)idx;
            }
            while (q < le && (*q == ' ' || *q == '\t'))
                q++;
        }
        d->row_slot[d->n] = in->slot;
        d->row_line[d->n] = line;
        d->n++;
        d->indptr[d->n] = d->nnz;
    }
    return MT_OK;
}

static mt_status svm_load(mt_bctx *ctx, const size_t *idx, size_t n, svm_data *d, mt_err *err)
{
    memset(d, 0, sizeof *d);
    if (!svm_reserve(d, 0, 1))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    d->indptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        mt_status st = svm_parse(&ctx->inputs[idx[i]], d, err);
        if (st != MT_OK) {
            svm_free(d);
            return st;
        }
    }
    if (d->n == 0) {
        svm_free(d);
        return mt_err_set(err, MT_EINVAL, "no data rows (every input is empty)");
    }
    return MT_OK;
}

mt_status mt_libsvm_parse_view(const char *slot, const uint8_t *data, size_t len,
                               void (*check)(const mt_libsvm_view *v, void *u), void *u,
                               mt_err *err)
{
    mt_bctx_input in = {.slot = slot, .data = data, .len = len};
    svm_data d;
    memset(&d, 0, sizeof d);
    if (!svm_reserve(&d, 0, 1))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    d.indptr[0] = 0;
    mt_status st = svm_parse(&in, &d, err);
    if (st == MT_OK && check) {
        mt_libsvm_view v = {.n = d.n, .nnz = d.nnz, .max_col = d.max_col, .indptr = d.indptr,
                            .indices = d.indices, .values = d.values, .y = d.y};
        check(&v, u);
    }
    svm_free(&d);
    return st;
}

/* ------------------------------------------------------------- arguments */

typedef enum { OBJ_BINARY, OBJ_SQUARED, OBJ_SOFTPROB } gbdt_obj;

static mt_status arg_format(const mt_bctx *ctx, bool *libsvm, mt_err *err)
{
    const char *f = mt_bctx_arg(ctx, "format");
    if (!f || strcmp(f, "csv") == 0)
        *libsvm = false;
    else if (strcmp(f, "libsvm") == 0)
        *libsvm = true;
    else
        return mt_err_set(err, MT_EINVAL, "argument 'format': expected csv or libsvm");
    return MT_OK;
}

/* ------------------------------------------------------------- training */

/* Checks the labels of a training set against the objective. */
static mt_status check_labels(gbdt_obj obj, int64_t num_class, size_t n, const float *yf,
                              const double *yd, const char *const *slot, const size_t *line,
                              const size_t *col, mt_err *err)
{
    for (size_t r = 0; r < n; r++) {
        double v = yf ? yf[r] : yd[r];
        const char *why = NULL;
        if (obj == OBJ_BINARY && !(v >= 0 && v <= 1))
            why = "binary:logistic needs labels from 0 to 1";
        else if (obj == OBJ_SOFTPROB && (v != floor(v) || v < 0 || v >= (double)num_class))
            why = "multi:softprob needs integer labels from 0 to num_class - 1";
        if (why)
            return mt_err_set(err, MT_EINVAL, "input '%s', line %zu, column %zu: %s", slot[r],
                              line[r], col ? col[r] : 1, why);
    }
    return MT_OK;
}

mt_status mt_builtin_gbdt_train(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"label",     "features", "format", "objective",
                                          "num_class", "trees",    "depth",  "eta",
                                          "subsample", "threads",  "seed",   NULL};
    *ret = NULL;
    mt_status st;
    bool libsvm = false;
    int64_t num_class, trees, depth, threads, seed;
    double eta, subsample;
    if ((st = mt_arg_only(ctx, "gbdt_train", allowed, err)) != MT_OK ||
        (st = arg_format(ctx, &libsvm, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "trees", 1, 10000, 100, &trees, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "depth", 1, 20, 6, &depth, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "threads", 1, 64, 1, &threads, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "seed", 0, 2147483647, 0, &seed, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "num_class", 2, GBDT_MAX_CLASS, 2, &num_class, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "eta", 1e-6, 1, 0.3, &eta, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "subsample", 1e-6, 1, 1, &subsample, err)) != MT_OK)
        return st;
    const char *os = mt_bctx_arg(ctx, "objective");
    gbdt_obj obj;
    if (!os || strcmp(os, "reg:squarederror") == 0)
        obj = OBJ_SQUARED, os = "reg:squarederror";
    else if (strcmp(os, "binary:logistic") == 0)
        obj = OBJ_BINARY;
    else if (strcmp(os, "multi:softprob") == 0)
        obj = OBJ_SOFTPROB;
    else
        return mt_err_set(err, MT_EINVAL, "argument 'objective': expected binary:logistic, "
                                          "reg:squarederror or multi:softprob");
    if (obj == OBJ_SOFTPROB && !mt_bctx_arg(ctx, "num_class"))
        return mt_err_set(err, MT_EINVAL, "argument 'num_class' is required with multi:softprob");
    if (obj != OBJ_SOFTPROB && mt_bctx_arg(ctx, "num_class"))
        return mt_err_set(err, MT_EINVAL, "argument 'num_class' is only for multi:softprob");
    const char *label = mt_bctx_arg(ctx, "label");
    if (libsvm && (label || mt_bctx_arg(ctx, "features")))
        return mt_err_set(err, MT_EINVAL, "arguments 'label' and 'features' are for CSV input "
                                          "(a LIBSVM line starts with its label)");
    if (!libsvm && (!label || !*label))
        return mt_err_set(err, MT_EINVAL,
                          "argument 'label' is required: the label column's name or number");
    if (ctx->n_outputs == 0)
        return mt_err_set(err, MT_EINVAL, "gbdt_train: declare at least one output for the model");

    size_t n_idx = 0, *idx = ml_inputs_except(ctx, NULL, &n_idx);
    ml_matrix m = {0};
    svm_data sd = {0};
    DMatrixHandle dm = NULL;
    BoosterHandle b = NULL;
    float *yf = NULL;
    size_t n = 0, p = 0;
    if (!idx)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    xgb_init(ctx);
    double t0 = now_s();
    if (libsvm) {
        if ((st = svm_load(ctx, idx, n_idx, &sd, err)) != MT_OK)
            goto out;
        if ((st = check_labels(obj, num_class, sd.n, sd.y, NULL, sd.row_slot, sd.row_line, NULL,
                               err)) != MT_OK)
            goto out;
        n = sd.n;
        p = sd.max_col ? sd.max_col : 1;
        if (XGDMatrixCreateFromCSREx(sd.indptr, sd.indices, sd.values, sd.n + 1, sd.nnz, p,
                                     &dm) != 0 ||
            XGDMatrixSetFloatInfo(dm, "label", sd.y, sd.n) != 0) {
            st = xgb_fail(err, "gbdt_train: XGBoost refused the data", false);
            goto out;
        }
        svm_free(&sd);
    } else {
        ml_load_opts lo = {.label = label, .features = mt_bctx_arg(ctx, "features"),
                           .allow_missing = true, .f32 = true, .idx = idx, .n_idx = n_idx};
        if ((st = ml_load(ctx, &lo, false, &m, err)) != MT_OK)
            goto out;
        if ((st = check_labels(obj, num_class, m.n, NULL, m.y, m.row_slot, m.row_line,
                               m.label_col, err)) != MT_OK)
            goto out;
        n = m.n;
        p = m.p;
        if (!(yf = malloc(n * sizeof *yf))) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t r = 0; r < n; r++)
            yf[r] = (float)m.y[r];
        if (XGDMatrixCreateFromMat_omp(m.xf, n, p, NAN, &dm, (int)threads) != 0 ||
            XGDMatrixSetFloatInfo(dm, "label", yf, n) != 0 ||
            XGDMatrixSetStrFeatureInfo(dm, "feature_name", (const char **)m.names, p) != 0) {
            st = xgb_fail(err, "gbdt_train: XGBoost refused the data", false);
            goto out;
        }
        mt_wipe(m.xf, n * p * sizeof *m.xf); /* XGBoost holds its own copy */
        free(m.xf);
        m.xf = NULL;
    }
    double t1 = now_s();
    char v[64];
    if (XGBoosterCreate(&dm, 1, &b) != 0) {
        st = xgb_fail(err, "gbdt_train: creating the booster failed", true);
        goto out;
    }
    /* the model records the feature names: gbdt_predict finds them by name */
    if (!libsvm &&
        XGBoosterSetStrFeatureInfo(b, "feature_name", (const char **)m.names, p) != 0) {
        st = xgb_fail(err, "gbdt_train: setting the feature names failed", false);
        goto out;
    }
#define SETP(k, fmt, val)                                                                          \
    do {                                                                                           \
        snprintf(v, sizeof v, fmt, val);                                                           \
        if (XGBoosterSetParam(b, k, v) != 0) {                                                     \
            st = xgb_fail(err, "gbdt_train: parameter " k, true);                                 \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    SETP("objective", "%s", os);
    if (obj == OBJ_SOFTPROB)
        SETP("num_class", "%lld", (long long)num_class);
    SETP("tree_method", "%s", "hist");
    SETP("max_depth", "%lld", (long long)depth);
    SETP("eta", "%.17g", eta);
    SETP("subsample", "%.17g", subsample);
    SETP("nthread", "%lld", (long long)threads);
    SETP("seed", "%lld", (long long)seed);
#undef SETP
    for (int64_t it = 0; it < trees; it++)
        if (XGBoosterUpdateOneIter(b, (int)it, dm) != 0) {
            st = xgb_fail(err, "gbdt_train: training failed", false);
            goto out;
        }
    double t2 = now_s();
    bst_ulong mlen = 0;
    const char *model = NULL;
    if (XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &mlen, &model) != 0) {
        st = xgb_fail(err, "gbdt_train: saving the model failed", true);
        goto out;
    }
    for (size_t i = 0; i < ctx->n_outputs; i++)
        if ((st = mt_bctx_output_write(ctx, i, model, mlen, err)) != MT_OK)
            goto out;
    mt_bctx_log(ctx, "gbdt_train: %zu rows, %zu features, %lld trees; load %.3f s, train %.3f s",
                n, p, (long long)trees, t1 - t0, t2 - t1);
    char buf[160];
    snprintf(buf, sizeof buf, "rows: %zu, features: %zu, trees: %lld", n, p, (long long)trees);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    if (b)
        XGBoosterFree(b);
    if (dm)
        XGDMatrixFree(dm);
    free(yf);
    free(idx);
    ml_matrix_free(&m);
    svm_free(&sd);
    log_ctx = NULL;
    return st;
}

/* ------------------------------------------------------------- predict */

/* The model's objective name ("" when the configuration does not say). */
static mt_status model_objective(BoosterHandle b, char *out, size_t cap, mt_err *err)
{
    bst_ulong len = 0;
    const char *cfg = NULL;
    out[0] = 0;
    if (XGBoosterSaveJsonConfig(b, &len, &cfg) != 0)
        return xgb_fail(err, "gbdt_predict: reading the model's configuration failed", false);
    json_error_t je;
    json_t *root = json_loadb(cfg, len, 0, &je);
    json_t *name = json_object_get(json_object_get(json_object_get(root, "learner"),
                                                   "objective"),
                                   "name");
    if (json_is_string(name))
        snprintf(out, cap, "%s", json_string_value(name));
    json_decref(root);
    return MT_OK;
}

/* XGBoost's prediction (type 0, all trees) of n rows: in place from the
 * dense row-major matrix x (n x nf, NaN missing) when dm is NULL, else from
 * dm. The result belongs to b until its next prediction. 0 on success. */
static int xgb_predict(BoosterHandle b, DMatrixHandle dm, const float *x, size_t n, bst_ulong nf,
                       const bst_ulong **shape, bst_ulong *dim, const float **pred)
{
    static const char pred_cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                   "\"iteration_end\": 0, \"strict_shape\": false";
    if (dm)
        return XGBoosterPredictFromDMatrix(b, dm, "{\"type\": 0, \"training\": false, "
                                                  "\"iteration_begin\": 0, \"iteration_end\": 0, "
                                                  "\"strict_shape\": false}",
                                           shape, dim, pred);
    /* CSV: in-place prediction straight from our float matrix (an
     * __array_interface__ over x), no DMatrix and no copy */
    char ai[160], cfg[sizeof pred_cfg + 64];
    snprintf(ai, sizeof ai,
             "{\"data\": [%llu, true], \"shape\": [%zu, %llu], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)x, n, (unsigned long long)nf);
    snprintf(cfg, sizeof cfg, "%s, \"cache_id\": 0, \"missing\": NaN}", pred_cfg);
    return XGBoosterPredictFromDense(b, ai, cfg, NULL, shape, dim, pred);
}

#define GBDT_PROBE_ROWS 256

/* Our own predictor for the model loaded in b (*forest, NULL when not
 * used), and the name of the engine that predicts (logged by the test
 * worker's built-ins only): the trees are
 * read from XGBoost's own UBJSON of the loaded model (gbdt_forest.c refuses
 * what it does not reproduce exactly), then ours and XGBoost's predict the
 * first rows (dense x, or the CSR rows of sd) and any difference in any bit
 * keeps XGBoost's predictor. Why ours declined is not logged: it describes
 * the model, which the task log's other readers may not know (and
 * mt_bctx_detail is for failures); gbdt_forest.c's tests cover each reason.
 * differs (a test fault only) makes the check see a difference. */
static const char *own_predictor(BoosterHandle b, bst_ulong nf, const float *x, const svm_data *sd,
                                 size_t n, unsigned threads, bool differs, mt_gbdt_forest **forest)
{
    *forest = NULL;
    bst_ulong jl = 0;
    const char *js = NULL;
    mt_err fe = {0};
    if (XGBoosterSaveModelToBuffer(b, "{\"format\": \"ubj\"}", &jl, &js) != 0)
        return "XGBoost's predictor";
    if (mt_gbdt_forest_parse((const uint8_t *)js, jl, nf, forest, &fe) != MT_OK)
        return "XGBoost's predictor";
    size_t k = n < GBDT_PROBE_ROWS ? n : GBDT_PROBE_ROWS;
    float mine[GBDT_PROBE_ROWS];
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *theirs = NULL;
    DMatrixHandle dm = NULL;
    int xr = 0;
    mt_status st;
    if (x) {
        st = mt_gbdt_forest_predict_dense(*forest, x, k, threads, mine, &fe);
        xr = k ? xgb_predict(b, NULL, x, k, nf, &shape, &dim, &theirs) : 0;
    } else {
        st = mt_gbdt_forest_predict_csr(*forest, sd->indptr, sd->indices, sd->values, k,
                                        threads, mine, &fe);
        xr = k ? (XGDMatrixCreateFromCSREx(sd->indptr, sd->indices, sd->values, k + 1,
                                           sd->indptr[k], nf, &dm) ||
                  xgb_predict(b, dm, NULL, k, nf, &shape, &dim, &theirs))
               : 0;
    }
    bool same =
        !differs && st == MT_OK && xr == 0 &&
        (k == 0 || (dim == 1 && shape[0] == k && memcmp(mine, theirs, k * sizeof *mine) == 0));
    if (dm)
        XGDMatrixFree(dm);
    if (!same) {
        mt_gbdt_forest_free(*forest);
        *forest = NULL;
        return "XGBoost's predictor";
    }
    return "own predictor";
}

mt_status mt_builtin_gbdt_predict(mt_bctx *ctx, char **ret, mt_err *err)
{
    return mt_builtin_gbdt_predict_fault(ctx, MT_GBDT_FAULT_NONE, ret, err);
}

mt_status mt_builtin_gbdt_predict_fault(mt_bctx *ctx, mt_gbdt_fault fault, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"model_slot", "format", "features", "id", "threads",
                                          NULL};
    *ret = NULL;
    mt_status st;
    bool libsvm = false;
    int64_t threads;
    if ((st = mt_arg_only(ctx, "gbdt_predict", allowed, err)) != MT_OK ||
        (st = arg_format(ctx, &libsvm, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "threads", 1, 64, 1, &threads, err)) != MT_OK)
        return st;
    const char *ms = mt_bctx_arg(ctx, "model_slot");
    ms = ms ? ms : "model";
    const char *id = mt_bctx_arg(ctx, "id");
    if (libsvm && (id || mt_bctx_arg(ctx, "features")))
        return mt_err_set(err, MT_EINVAL, "arguments 'id' and 'features' are for CSV input");
    const mt_bctx_input *min = mt_bctx_input_find(ctx, ms);
    if (!min)
        return mt_err_set(err, MT_EINVAL, "gbdt_predict: no input slot '%.64s' holding the model",
                          ms);
    size_t n_idx = 0, *idx = ml_inputs_except(ctx, ms, &n_idx);
    if (!idx)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (n_idx == 0) {
        free(idx);
        return mt_err_set(err, MT_EINVAL, "gbdt_predict: needs a data input slot besides '%.64s'",
                          ms);
    }
    ml_matrix m = {0};
    svm_data sd = {0};
    DMatrixHandle dm = NULL;
    BoosterHandle b = NULL;
    mt_sbuf o = {0};
    size_t n = 0;
    mt_gbdt_forest *forest = NULL;
    float *own = NULL;
    xgb_init(ctx);

    /* The model: a JSON object (checked by our bounded reader first) that
     * XGBoost accepts. */
    mt_err je = {0};
    json_t *mj = mt_json_parse((const char *)min->data, min->len, GBDT_MODEL_MAX, 64, &je);
    bool shaped = json_is_object(mj) && json_is_object(json_object_get(mj, "learner"));
    json_decref(mj);
    if (!shaped) {
        st = mt_err_set(err, MT_EINVAL, "input '%s': not an XGBoost JSON model%s", min->slot,
                        je.code == MT_ETOOBIG ? " (larger than the limit)" : "");
        goto out;
    }
    bst_ulong nf = 0;
    if (XGBoosterCreate(NULL, 0, &b) != 0 ||
        XGBoosterLoadModelFromBuffer(b, min->data, min->len) != 0 ||
        XGBoosterGetNumFeature(b, &nf) != 0 || nf == 0) {
        st = mt_err_set(err, MT_EINVAL, "input '%s': not an XGBoost JSON model XGBoost can load",
                        min->slot);
        goto out;
    }
    char objective[64];
    if ((st = model_objective(b, objective, sizeof objective, err)) != MT_OK)
        goto out;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)threads);
    if (XGBoosterSetParam(b, "nthread", v) != 0) {
        st = xgb_fail(err, "gbdt_predict: parameter nthread", true);
        goto out;
    }

    if (libsvm) {
        if ((st = svm_load(ctx, idx, n_idx, &sd, err)) != MT_OK)
            goto out;
        if (sd.max_col > nf) {
            for (size_t k = 0; k < sd.nnz; k++)
                if (sd.indices[k] >= nf) {
                    size_t r = 0;
                    while (sd.indptr[r + 1] <= k)
                        r++;
                    st = mt_err_set(err, MT_EINVAL,
                                    "input '%s', line %zu: feature index %u is beyond the "
                                    "model's %llu features",
                                    sd.row_slot[r], sd.row_line[r], sd.indices[k],
                                    (unsigned long long)nf);
                    goto out;
                }
        }
        n = sd.n;
    } else {
        /* features: the argument, else the model's feature names, else every
         * column but the id */
        bst_ulong nn = 0;
        const char **mnames = NULL;
        char *joined = NULL;
        const char *features = mt_bctx_arg(ctx, "features");
        if (!features && XGBoosterGetStrFeatureInfo(b, "feature_name", &nn, &mnames) == 0 &&
            nn > 0) {
            if (nn != nf) {
                st = mt_err_set(err, MT_EINVAL, "input '%s': the model names %llu features but "
                                                "has %llu",
                                min->slot, (unsigned long long)nn, (unsigned long long)nf);
                goto out;
            }
            size_t tl = 1;
            for (bst_ulong k = 0; k < nn; k++) {
                if (strchr(mnames[k], ','))
                    tl = 0; /* not expressible as a list: reported below */
                tl += tl ? strlen(mnames[k]) + 1 : 0;
            }
            if (tl == 0) {
                st = mt_err_set(err, MT_EINVAL, "input '%s': a model feature name holds a "
                                                "comma: give the argument 'features'",
                                min->slot);
                goto out;
            }
            if (!(joined = malloc(tl))) {
                st = mt_err_set(err, MT_ENOMEM, "out of memory");
                goto out;
            }
            joined[0] = 0;
            for (bst_ulong k = 0; k < nn; k++) {
                if (k)
                    strcat(joined, ",");
                strcat(joined, mnames[k]);
            }
            features = joined;
        }
        ml_load_opts lo = {.features = features, .exclude = id, .allow_missing = true,
                           .f32 = true, .idx = idx, .n_idx = n_idx};
        st = ml_load(ctx, &lo, id != NULL, &m, err);
        free(joined);
        if (st != MT_OK)
            goto out;
        if (m.p != nf) {
            st = mt_err_set(err, MT_EINVAL, "%zu feature columns, but the model has %llu "
                                            "features",
                            m.p, (unsigned long long)nf);
            goto out;
        }
        n = m.n;
    }
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *pred = NULL;
    /* Our own predictor (gbdt_forest.c) when it takes the model XGBoost
     * loaded and agrees bit for bit with XGBoost on the first rows; else
     * XGBoost's predictor. Timed with the prediction (the log's predict
     * time), not apart from it. */
    double tc = now_s();
    const char *engine = own_predictor(b, nf, libsvm ? NULL : m.xf, &sd, n, (unsigned)threads,
                                       fault == MT_GBDT_FAULT_CHECK_DIFFERS, &forest);
    if (forest) {
        /* every row by ours; should that fail (out of memory, a thread that
         * cannot start), XGBoost's predictor predicts every row instead:
         * nothing is written before the prediction is complete */
        mt_err fe = {0};
        mt_status fs = MT_ENOMEM;
        if (fault != MT_GBDT_FAULT_PREDICT_FAILS && (own = malloc((n ? n : 1) * sizeof *own)))
            fs = libsvm
                     ? mt_gbdt_forest_predict_csr(forest, sd.indptr, sd.indices, sd.values, n,
                                                  (unsigned)threads, own, &fe)
                     : mt_gbdt_forest_predict_dense(forest, m.xf, n, (unsigned)threads, own, &fe);
        if (fs == MT_OK) {
            pred = own;
        } else {
            free(own);
            own = NULL;
            mt_gbdt_forest_free(forest);
            forest = NULL;
            engine = "XGBoost's predictor";
        }
    }
    if (!forest) {
        if (libsvm) {
            if (XGDMatrixCreateFromCSREx(sd.indptr, sd.indices, sd.values, sd.n + 1, sd.nnz, nf,
                                         &dm) != 0) {
                st = xgb_fail(err, "gbdt_predict: XGBoost refused the data", false);
                goto out;
            }
            svm_free(&sd);
        }
        if (xgb_predict(b, dm, libsvm ? NULL : m.xf, n, nf, &shape, &dim, &pred) != 0) {
            st = xgb_fail(err, "gbdt_predict: prediction failed", false);
            goto out;
        }
        if (dim < 1 || dim > 2 || shape[0] != n) {
            st = mt_err_set(err, MT_EINTERNAL, "gbdt_predict: unexpected prediction shape");
            goto out;
        }
    }
    double t1 = now_s();
    size_t k = forest || dim != 2 ? 1 : (size_t)shape[1];
    bool binary = strcmp(objective, "binary:logistic") == 0 && k == 1;
    if (id)
        mt_sbuf_puts(&o, "id,");
    if (k > 1) {
        for (size_t c = 0; c < k; c++)
            mt_sbuf_printf(&o, "p%zu,", c);
        mt_sbuf_puts(&o, "prediction\n");
    } else {
        mt_sbuf_puts(&o, binary ? "probability,prediction\n" : "prediction\n");
    }
    for (size_t r = 0; r < n; r++) {
        if (id) {
            mt_sbuf_csv_field(&o, m.ids[r], strlen(m.ids[r]));
            mt_sbuf_put(&o, ",", 1);
        }
        const float *pr = pred + r * k;
        if (k > 1) {
            size_t best = 0;
            for (size_t c = 0; c < k; c++) {
                mt_sbuf_num(&o, pr[c]);
                mt_sbuf_put(&o, ",", 1);
                if (pr[c] > pr[best])
                    best = c;
            }
            mt_sbuf_printf(&o, "%zu\n", best);
        } else {
            mt_sbuf_num(&o, pr[0]);
            if (binary)
                mt_sbuf_puts(&o, pr[0] >= 0.5f ? ",1" : ",0");
            mt_sbuf_put(&o, "\n", 1);
        }
    }
    if ((st = mt_sbuf_write_all(ctx, &o, err)) != MT_OK)
        goto out;
    /* the engine only for the test worker's built-ins: which one predicts
     * depends on the model and the data's first rows, and every participant
     * reads the log (docs/threat-model.md "Failure reasons and task logs");
     * for the same reason the check's time is not a figure of its own (it
     * is near 0 when our predictor refuses the model): predict covers it */
    mt_bctx_log(ctx, "gbdt_predict: %zu rows, %llu features, %lld threads; predict %.3f s%s%s%s",
                n, (unsigned long long)nf, (long long)threads, t1 - tc,
                fault != MT_GBDT_FAULT_NONE ? " (" : "", fault != MT_GBDT_FAULT_NONE ? engine : "",
                fault != MT_GBDT_FAULT_NONE ? ")" : "");
    char buf[64];
    snprintf(buf, sizeof buf, "predicted rows: %zu", n);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    mt_sbuf_free(&o);
    mt_gbdt_forest_free(forest);
    free(own);
    if (b)
        XGBoosterFree(b);
    if (dm)
        XGDMatrixFree(dm);
    free(idx);
    ml_matrix_free(&m);
    svm_free(&sd);
    log_ctx = NULL;
    return st;
}
