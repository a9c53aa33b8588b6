/* builtin_regression: linear regression (least squares via the normal
 * equations, optional ridge, Cholesky) and L2-regularised logistic
 * regression (liblinear, solver L2R_LR), with their predict functions.
 * Training rows come from every input slot (same columns, any order of
 * columns); models are the JSON documented in docs/builtins.md. */
#include <linear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"
#include "mt_json.h"
#include "mt_util.h"

#define REG_MAX_FEATURES 1024
#define REG_MODEL_MAX (16u << 20)

/* ------------------------------------------------------------- data */

/* Training or prediction data: rows of every parsed input, features and
 * the label by name. */
typedef struct reg_data {
    mt_csv **t;
    size_t n_t;
    size_t n_rows;         /* over all tables */
    size_t p;              /* number of features */
    char **features;       /* p names (point into t[0]'s header or the model) */
    size_t *fcol;          /* n_t * p column indices */
    size_t *lcol;          /* n_t label column indices (train) */
    const char *label;
} reg_data;

static void reg_data_free(reg_data *d)
{
    for (size_t i = 0; d->t && i < d->n_t; i++)
        mt_csv_free(d->t[i]);
    free(d->t);
    free(d->features);
    free(d->fcol);
    free(d->lcol);
    memset(d, 0, sizeof *d);
}

/* Parses the inputs listed in idx[0..n) as CSV tables with a header. */
static mt_status reg_parse(mt_bctx *ctx, const size_t *idx, size_t n, reg_data *d, mt_err *err)
{
    if (!(d->t = calloc(n ? n : 1, sizeof *d->t)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    d->n_t = n;
    for (size_t i = 0; i < n; i++) {
        const mt_bctx_input *in = &ctx->inputs[idx[i]];
        mt_csv_opts o = {.slot = in->slot};
        mt_status st = mt_csv_parse(in->data, in->len, &o, &d->t[i], err);
        if (st != MT_OK)
            return st;
        d->n_rows += d->t[i]->n_rows;
    }
    return MT_OK;
}

/* Column of name in table t, MT_EINVAL naming slot and what when absent. */
static mt_status reg_col(const mt_csv *t, const char *name, const char *what, size_t *col,
                         mt_err *err)
{
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(t->header[c], name) == 0) {
            *col = c;
            return MT_OK;
        }
    return mt_err_set(err, MT_EINVAL, "input '%s' has no %s column '%.64s' (line 1)", t->slot,
                      what, name);
}

/* Training setup: label (name or 1-based index in the first table) and the
 * features (argument "features": comma-separated names; default all other
 * columns of the first table), resolved by name in every table. */
static mt_status reg_train_setup(mt_bctx *ctx, reg_data *d, mt_err *err)
{
    const char *label = mt_bctx_arg(ctx, "label");
    if (!label || !*label)
        return mt_err_set(err, MT_EINVAL,
                          "argument 'label' is required: the label column's name or number");
    if (ctx->n_inputs < 1)
        return mt_err_set(err, MT_EINVAL, "needs at least 1 input slot with training rows");
    size_t *idx = malloc(ctx->n_inputs * sizeof *idx);
    if (!idx)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_inputs_by_name(ctx, idx);
    mt_status st = reg_parse(ctx, idx, ctx->n_inputs, d, err);
    free(idx);
    if (st != MT_OK)
        return st;
    const mt_csv *t0 = d->t[0];
    size_t lc;
    if ((st = mt_csv_column(t0, label, "label", &lc, err)) != MT_OK)
        return st;
    d->label = t0->header[lc];
    if (!(d->features = calloc(t0->n_cols, sizeof *d->features)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    const char *fs = mt_bctx_arg(ctx, "features");
    if (fs) {
        const char *p = fs;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            size_t c = 0;
            while (c < t0->n_cols && !(strlen(t0->header[c]) == len &&
                                       memcmp(t0->header[c], p, len) == 0))
                c++;
            if (c == t0->n_cols)
                return mt_err_set(err, MT_EINVAL,
                                  "argument 'features': input '%s' has no column '%.*s'",
                                  t0->slot, (int)(len > 64 ? 64 : len), p);
            if (c == lc)
                return mt_err_set(err, MT_EINVAL,
                                  "argument 'features': '%.64s' is the label column", d->label);
            for (size_t k = 0; k < d->p; k++)
                if (d->features[k] == t0->header[c])
                    return mt_err_set(err, MT_EINVAL,
                                      "argument 'features': column '%.*s' listed twice",
                                      (int)(len > 64 ? 64 : len), p);
            d->features[d->p++] = t0->header[c];
            if (!comma)
                break;
            p = comma + 1;
        }
    } else {
        for (size_t c = 0; c < t0->n_cols; c++)
            if (c != lc)
                d->features[d->p++] = t0->header[c];
    }
    if (d->p == 0)
        return mt_err_set(err, MT_EINVAL, "no feature columns besides the label '%.64s'",
                          d->label);
    if (d->p > REG_MAX_FEATURES)
        return mt_err_set(err, MT_EINVAL, "%zu features, more than the limit of %d", d->p,
                          REG_MAX_FEATURES);
    if (!(d->fcol = malloc(d->n_t * d->p * sizeof *d->fcol)) ||
        !(d->lcol = malloc(d->n_t * sizeof *d->lcol)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < d->n_t; i++) {
        if ((st = reg_col(d->t[i], d->label, "label", &d->lcol[i], err)) != MT_OK)
            return st;
        for (size_t k = 0; k < d->p; k++)
            if ((st = reg_col(d->t[i], d->features[k], "feature", &d->fcol[i * d->p + k], err)) !=
                MT_OK)
                return st;
    }
    if (d->n_rows == 0)
        return mt_err_set(err, MT_EINVAL, "no training rows (every input has only a header)");
    return MT_OK;
}

/* Reads the numeric matrix X (n_rows x p, row-major) and, when y is non-NULL,
 * the labels. */
static mt_status reg_matrix(const reg_data *d, double *x, double *y, mt_err *err)
{
    size_t r = 0;
    for (size_t i = 0; i < d->n_t; i++) {
        const mt_csv *t = d->t[i];
        for (size_t row = 0; row < t->n_rows; row++, r++) {
            mt_status st;
            for (size_t k = 0; k < d->p; k++)
                if ((st = mt_csv_number(t, row, d->fcol[i * d->p + k], &x[r * d->p + k], err)) !=
                    MT_OK)
                    return st;
            if (y && (st = mt_csv_number(t, row, d->lcol[i], &y[r], err)) != MT_OK)
                return st;
        }
    }
    return MT_OK;
}

/* ------------------------------------------------------------- models */

static mt_status model_write(mt_bctx *ctx, const char *kind, const reg_data *d, double intercept,
                             const double *w, const char *param, double param_v, mt_err *err)
{
    json_t *m = json_object(), *f = json_array(), *c = json_array();
    mt_status st = MT_OK;
    if (!m || !f || !c)
        goto oom;
    for (size_t k = 0; k < d->p; k++)
        if (json_array_append_new(f, json_string(d->features[k])) ||
            json_array_append_new(c, json_real(w[k])))
            goto oom;
    if (json_object_set_new(m, "model", json_string(kind)) ||
        json_object_set_new(m, "label", json_string(d->label)) ||
        json_object_set_new(m, "features", f) || json_object_set_new(m, "coefficients", c) ||
        json_object_set_new(m, "intercept", json_real(intercept)) ||
        json_object_set_new(m, param, json_real(param_v)) ||
        json_object_set_new(m, "rows", json_integer((json_int_t)d->n_rows))) {
        f = c = NULL;
        goto oom;
    }
    char *s = json_dumps(m, JSON_INDENT(1) | JSON_REAL_PRECISION(17) | JSON_PRESERVE_ORDER);
    json_decref(m);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_sbuf b = {0};
    mt_sbuf_puts(&b, s);
    mt_sbuf_puts(&b, "\n");
    free(s);
    st = mt_sbuf_write_all(ctx, &b, err);
    mt_sbuf_free(&b);
    return st;
oom:
    json_decref(f);
    json_decref(c);
    json_decref(m);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
}

typedef struct reg_model {
    json_t *root;
    size_t p;
    const char **features;
    double *w;
    double intercept;
} reg_model;

static void reg_model_free(reg_model *m)
{
    json_decref(m->root);
    free(m->features);
    free(m->w);
    memset(m, 0, sizeof *m);
}

/* Reads and validates a model JSON of the given kind. */
static mt_status reg_model_load(const mt_bctx_input *in, const char *kind, reg_model *m,
                                mt_err *err)
{
    mt_err e = {0};
    m->root = mt_json_parse((const char *)in->data, in->len, REG_MODEL_MAX, 8, &e);
    if (!m->root)
        return mt_err_set(err, MT_EINVAL, "input '%s': not a model: %s", in->slot, e.msg);
    const char *k;
    json_t *f, *c;
    static const char *const keys[] = {"model", "label", "features", "coefficients", "intercept",
                                       "ridge", "C", "rows", NULL};
    if (!json_is_object(m->root) || mt_json_only_keys(m->root, keys, &e) != MT_OK ||
        mt_json_str(m->root, "model", 64, &k, &e) != MT_OK ||
        mt_json_array(m->root, "features", REG_MAX_FEATURES, &f, &e) != MT_OK ||
        mt_json_array(m->root, "coefficients", REG_MAX_FEATURES, &c, &e) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "input '%s': not a model: %s", in->slot,
                          e.msg[0] ? e.msg : "expected a JSON object");
    if (strcmp(k, kind) != 0)
        return mt_err_set(err, MT_EINVAL, "input '%s': a '%.64s' model, expected '%s'", in->slot,
                          k, kind);
    json_t *b = json_object_get(m->root, "intercept");
    if (json_array_size(f) != json_array_size(c) || json_array_size(f) == 0 || !json_is_number(b))
        return mt_err_set(err, MT_EINVAL,
                          "input '%s': model needs as many coefficients as features (>= 1) and a "
                          "numeric intercept",
                          in->slot);
    m->p = json_array_size(f);
    m->intercept = json_number_value(b);
    if (!(m->features = calloc(m->p, sizeof *m->features)) ||
        !(m->w = calloc(m->p, sizeof *m->w)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->p; i++) {
        json_t *fi = json_array_get(f, i), *ci = json_array_get(c, i);
        if (!json_is_string(fi) || !json_is_number(ci) || !isfinite(json_number_value(ci)))
            return mt_err_set(err, MT_EINVAL,
                              "input '%s': model feature %zu: expected a name and a finite "
                              "coefficient",
                              in->slot, i + 1);
        m->features[i] = json_string_value(fi);
        m->w[i] = json_number_value(ci);
    }
    if (!isfinite(m->intercept))
        return mt_err_set(err, MT_EINVAL, "input '%s': model intercept is not finite", in->slot);
    return MT_OK;
}

/* Shared predict: model from slot arg model_slot (default "model"), data
 * from every other input (slot-name order); link 0 = identity, 1 = logistic. */
static mt_status reg_predict(mt_bctx *ctx, const char *fn, const char *kind, int link,
                             char **ret, mt_err *err)
{
    static const char *const allowed[] = {"model_slot", "id", NULL};
    *ret = NULL;
    mt_status st = mt_arg_only(ctx, fn, allowed, err);
    if (st != MT_OK)
        return st;
    const char *ms = mt_bctx_arg(ctx, "model_slot");
    ms = ms ? ms : "model";
    const mt_bctx_input *min = mt_bctx_input_find(ctx, ms);
    if (!min)
        return mt_err_set(err, MT_EINVAL, "%s: no input slot '%.64s' holding the model", fn, ms);
    if (ctx->n_inputs < 2)
        return mt_err_set(err, MT_EINVAL, "%s: needs a data input slot besides '%.64s'", fn, ms);
    reg_model m = {0};
    reg_data d = {0};
    size_t *idx = malloc(ctx->n_inputs * sizeof *idx), *dsel = NULL, *idcol = NULL;
    double *x = NULL;
    mt_sbuf b = {0};
    if (!idx) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = reg_model_load(min, kind, &m, err)) != MT_OK)
        goto out;
    mt_inputs_by_name(ctx, idx);
    size_t nd = 0;
    for (size_t i = 0; i < ctx->n_inputs; i++)
        if (&ctx->inputs[idx[i]] != min)
            idx[nd++] = idx[i];
    if ((st = reg_parse(ctx, idx, nd, &d, err)) != MT_OK)
        goto out;
    d.p = m.p;
    if (!(d.fcol = malloc(nd * m.p * sizeof *d.fcol)) || !(idcol = calloc(nd, sizeof *idcol)) ||
        !(x = malloc((m.p ? m.p : 1) * sizeof *x))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    const char *id = mt_bctx_arg(ctx, "id");
    for (size_t i = 0; i < nd; i++) {
        for (size_t k = 0; k < m.p; k++)
            if ((st = reg_col(d.t[i], m.features[k], "feature", &d.fcol[i * m.p + k], err)) !=
                MT_OK)
                goto out;
        if (id && (st = mt_csv_column(d.t[i], id, "id", &idcol[i], err)) != MT_OK)
            goto out;
    }
    if (id)
        mt_sbuf_puts(&b, "id,");
    mt_sbuf_puts(&b, link ? "probability,prediction\n" : "prediction\n");
    for (size_t i = 0; i < nd; i++) {
        const mt_csv *t = d.t[i];
        for (size_t r = 0; r < t->n_rows; r++) {
            double z = m.intercept;
            for (size_t k = 0; k < m.p; k++) {
                if ((st = mt_csv_number(t, r, d.fcol[i * m.p + k], &x[k], err)) != MT_OK)
                    goto out;
                z += m.w[k] * x[k];
            }
            if (id) {
                const char *v = mt_csv_cell(t, r, idcol[i]);
                mt_sbuf_csv_field(&b, v, strlen(v));
                mt_sbuf_put(&b, ",", 1);
            }
            if (link) {
                double pr = 1.0 / (1.0 + exp(-z));
                mt_sbuf_num(&b, pr);
                mt_sbuf_puts(&b, pr >= 0.5 ? ",1\n" : ",0\n");
            } else {
                mt_sbuf_num(&b, z);
                mt_sbuf_put(&b, "\n", 1);
            }
        }
    }
    if ((st = mt_sbuf_write_all(ctx, &b, err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx, "%s: %zu rows, %zu features", fn, d.n_rows, m.p);
    char buf[64];
    snprintf(buf, sizeof buf, "predicted rows: %zu", d.n_rows);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    mt_sbuf_free(&b);
    free(x);
    free(idcol);
    free(dsel);
    free(idx);
    reg_data_free(&d);
    reg_model_free(&m);
    return st;
}

/* ------------------------------------------------------------- linear */

/* In-place Cholesky of the SPD matrix a (n x n, row-major, lower triangle
 * used) and solve of a x = b (b overwritten by x). False if a is not
 * numerically positive definite. */
static bool cholesky_solve(double *a, double *b, size_t n)
{
    double maxd = 0;
    for (size_t i = 0; i < n; i++)
        maxd = fmax(maxd, fabs(a[i * n + i]));
    double tol = maxd * 1e-12 + 1e-300;
    for (size_t j = 0; j < n; j++) {
        double s = a[j * n + j];
        for (size_t k = 0; k < j; k++)
            s -= a[j * n + k] * a[j * n + k];
        if (!(s > tol))
            return false;
        double l = sqrt(s);
        a[j * n + j] = l;
        for (size_t i = j + 1; i < n; i++) {
            double t = a[i * n + j];
            for (size_t k = 0; k < j; k++)
                t -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = t / l;
        }
    }
    for (size_t i = 0; i < n; i++) { /* L z = b */
        double t = b[i];
        for (size_t k = 0; k < i; k++)
            t -= a[i * n + k] * b[k];
        b[i] = t / a[i * n + i];
    }
    for (size_t i = n; i-- > 0;) { /* L^T x = z */
        double t = b[i];
        for (size_t k = i + 1; k < n; k++)
            t -= a[k * n + i] * b[k];
        b[i] = t / a[i * n + i];
    }
    return true;
}

mt_status mt_builtin_linear_regression_train(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"label", "features", "ridge", "intercept", NULL};
    *ret = NULL;
    double ridge;
    bool icpt;
    mt_status st;
    if ((st = mt_arg_only(ctx, "linear_regression_train", allowed, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "ridge", 0, 1e12, 0, &ridge, err)) != MT_OK ||
        (st = mt_arg_bool(ctx, "intercept", true, &icpt, err)) != MT_OK)
        return st;
    reg_data d = {0};
    double *x = NULL, *y = NULL, *a = NULL, *v = NULL;
    size_t p = 0, q = 0, n = 0;
    if ((st = reg_train_setup(ctx, &d, err)) != MT_OK)
        goto out;
    p = d.p;
    q = p + (icpt ? 1 : 0);
    n = d.n_rows;
    if (!(x = malloc(n * p * sizeof *x)) || !(y = malloc(n * sizeof *y)) ||
        !(a = calloc(q * q, sizeof *a)) || !(v = calloc(q, sizeof *v))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for %zu x %zu values", n, p);
        goto out;
    }
    if ((st = reg_matrix(&d, x, y, err)) != MT_OK)
        goto out;
    /* A = X1^T X1 (lower triangle), v = X1^T y, X1 = [X, 1] */
    for (size_t r = 0; r < n; r++) {
        const double *xr = x + r * p;
        for (size_t i = 0; i < p; i++) {
            for (size_t j = 0; j <= i; j++)
                a[i * q + j] += xr[i] * xr[j];
            v[i] += xr[i] * y[r];
        }
        if (icpt) {
            for (size_t j = 0; j < p; j++)
                a[p * q + j] += xr[j];
            a[p * q + p] += 1;
            v[p] += y[r];
        }
    }
    for (size_t i = 0; i < p; i++)
        a[i * q + i] += ridge;
    for (size_t i = 0; i < q; i++)
        for (size_t j = i + 1; j < q; j++)
            a[i * q + j] = a[j * q + i];
    if (!cholesky_solve(a, v, q)) {
        st = mt_err_set(err, MT_EINVAL,
                        "the normal equations are singular (collinear or constant features, or "
                        "fewer rows than coefficients): set ridge > 0 or drop features");
        goto out;
    }
    double rss = 0, ysum = 0, yss = 0;
    for (size_t r = 0; r < n; r++) {
        double f = icpt ? v[p] : 0;
        for (size_t k = 0; k < p; k++)
            f += v[k] * x[r * p + k];
        rss += (y[r] - f) * (y[r] - f);
        ysum += y[r];
    }
    for (size_t r = 0; r < n; r++)
        yss += (y[r] - ysum / (double)n) * (y[r] - ysum / (double)n);
    if ((st = model_write(ctx, "linear_regression", &d, icpt ? v[p] : 0, v, "ridge", ridge,
                          err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx, "linear_regression_train: %zu rows, %zu features", n, p);
    char buf[128];
    snprintf(buf, sizeof buf, "rows: %zu, r2: %.6f", n, yss > 0 ? 1 - rss / yss : 1.0);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    if (x)
        mt_wipe(x, n * p * sizeof *x);
    free(x);
    free(y);
    free(a);
    free(v);
    reg_data_free(&d);
    return st;
}

mt_status mt_builtin_linear_regression_predict(mt_bctx *ctx, char **ret, mt_err *err)
{
    return reg_predict(ctx, "linear_regression_predict", "linear_regression", 0, ret, err);
}

/* ------------------------------------------------------------- logistic */

static void liblinear_silent(const char *s)
{
    (void)s;
}

mt_status mt_builtin_logistic_regression_train(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"label", "features", "C", "eps", "intercept", NULL};
    *ret = NULL;
    double C, eps;
    bool icpt;
    mt_status st;
    if ((st = mt_arg_only(ctx, "logistic_regression_train", allowed, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "C", 1e-9, 1e9, 1.0, &C, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "eps", 1e-12, 1, 0.01, &eps, err)) != MT_OK ||
        (st = mt_arg_bool(ctx, "intercept", true, &icpt, err)) != MT_OK)
        return st;
    reg_data d = {0};
    double *x = NULL, *y = NULL, *w = NULL;
    struct feature_node *nodes = NULL, **rows = NULL;
    struct model *model = NULL;
    size_t p = 0, n = 0, per = 0;
    if ((st = reg_train_setup(ctx, &d, err)) != MT_OK)
        goto out;
    p = d.p;
    n = d.n_rows;
    per = p + 2;
    if (n > INT32_MAX / 2 || n * per > INT32_MAX) {
        st = mt_err_set(err, MT_ETOOBIG, "%zu rows x %zu features is over liblinear's limits",
                        n, p);
        goto out;
    }
    if (!(x = malloc(n * p * sizeof *x)) || !(y = malloc(n * sizeof *y)) ||
        !(nodes = malloc(n * per * sizeof *nodes)) || !(rows = malloc(n * sizeof *rows)) ||
        !(w = calloc(p, sizeof *w))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for %zu x %zu values", n, p);
        goto out;
    }
    if ((st = reg_matrix(&d, x, y, err)) != MT_OK)
        goto out;
    size_t r = 0, pos[2] = {0, 0};
    for (size_t i = 0; i < d.n_t; i++)
        for (size_t row = 0; row < d.t[i]->n_rows; row++, r++) {
            if (y[r] != 0 && y[r] != 1) {
                st = mt_err_set(err, MT_EINVAL,
                                "input '%s', line %zu, column %zu: label must be 0 or 1",
                                d.t[i]->slot, d.t[i]->line[row], d.lcol[i] + 1);
                goto out;
            }
            pos[y[r] == 1]++;
        }
    if (pos[0] == 0 || pos[1] == 0) {
        st = mt_err_set(err, MT_EINVAL, "every label is %d: training needs rows of both classes",
                        pos[1] ? 1 : 0);
        goto out;
    }
    for (r = 0; r < n; r++) {
        struct feature_node *f = nodes + r * per;
        rows[r] = f;
        for (size_t k = 0; k < p; k++)
            if (x[r * p + k] != 0)
                *f++ = (struct feature_node){(int)k + 1, x[r * p + k]};
        if (icpt)
            *f++ = (struct feature_node){(int)p + 1, 1.0};
        *f = (struct feature_node){-1, 0};
    }
    struct problem prob = {.l = (int)n, .n = (int)p + (icpt ? 1 : 0), .y = y, .x = rows,
                           .bias = icpt ? 1.0 : -1.0};
    struct parameter param = {.solver_type = L2R_LR, .eps = eps, .C = C, .p = 0.1};
    const char *bad = check_parameter(&prob, &param);
    if (bad) {
        st = mt_err_set(err, MT_EINVAL, "logistic_regression_train: %s", bad);
        goto out;
    }
    set_print_string_function(liblinear_silent);
    if (!(model = train(&prob, &param))) {
        st = mt_err_set(err, MT_ENOMEM, "liblinear training failed (out of memory?)");
        goto out;
    }
    /* two classes: w describes P(label[0]); we report P(1) */
    double sign = model->label[0] == 1 ? 1.0 : -1.0;
    for (size_t k = 0; k < p; k++)
        w[k] = sign * model->w[k];
    double b = icpt ? sign * model->w[p] : 0;
    size_t correct = 0;
    for (r = 0; r < n; r++) {
        double z = b;
        for (size_t k = 0; k < p; k++)
            z += w[k] * x[r * p + k];
        correct += (z >= 0) == (y[r] == 1);
    }
    if ((st = model_write(ctx, "logistic_regression", &d, b, w, "C", C, err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx, "logistic_regression_train: %zu rows, %zu features", n, p);
    char buf[128];
    snprintf(buf, sizeof buf, "rows: %zu, training accuracy: %.6f", n,
             (double)correct / (double)n);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    if (model)
        free_and_destroy_model(&model);
    if (x)
        mt_wipe(x, n * p * sizeof *x);
    free(x);
    free(y);
    free(w);
    free(nodes);
    free(rows);
    reg_data_free(&d);
    return st;
}

mt_status mt_builtin_logistic_regression_predict(mt_bctx *ctx, char **ret, mt_err *err)
{
    return reg_predict(ctx, "logistic_regression_predict", "logistic_regression", 1, ret, err);
}
