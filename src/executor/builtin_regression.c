/* builtin_regression: linear regression (least squares via the normal
 * equations, optional ridge, Cholesky) and L2-regularised logistic
 * regression (our L-BFGS by default, liblinear's L2R_LR as solver=liblinear),
 * with their predict functions. Training rows come from every input slot
 * (same columns, any order of columns), read straight into one matrix by
 * mt_csv_read_numbers; models are the JSON documented in docs/builtins.md. */
#include <linear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ------------------------------------------------------------- training data */

/* Training data: the numbers of every input slot pooled into one matrix,
 * read straight from the CSV bytes (mt_csv_read_numbers), no table. */
typedef struct reg_train {
    mt_csv **head;          /* header of each input, slot-name order */
    size_t n_t;
    size_t n, p, cap;       /* rows, features, allocated rows */
    double *x;              /* n x p, row-major */
    double *y;              /* n labels */
    const char *label;      /* names point into head[0] */
    const char **features;
} reg_train;

static void reg_train_free(reg_train *d)
{
    if (d->x)
        mt_wipe(d->x, d->cap * d->p * sizeof *d->x);
    free(d->x);
    free(d->y);
    for (size_t i = 0; d->head && i < d->n_t; i++)
        mt_csv_free(d->head[i]);
    free(d->head);
    free(d->features);
    memset(d, 0, sizeof *d);
}

/* Row sink of reg_train_load. Number errors are kept (the first), not
 * returned, so that a later CSV syntax error is reported first, as when
 * every input was parsed before any number was read. */
typedef struct reg_sink {
    reg_train *d;
    const char *slot;
    const size_t *col;      /* p + 1 columns: the features, then the label */
    bool binary;            /* labels must be 0 or 1 */
    bool has_num, has_lab;
    mt_err num_err, lab_err;
} reg_sink;

/* Makes room for rows more rows. The matrix is moved by hand, not realloc'd,
 * so that the old block can be wiped. */
static mt_status reg_reserve(reg_train *d, size_t rows, mt_err *err)
{
    size_t p = d->p;
    if (rows <= d->cap - d->n)
        return MT_OK;
    size_t cap = d->cap ? d->cap * 2 : 4096;
    if (cap < d->n + rows)
        cap = d->n + rows;
    if (cap > SIZE_MAX / ((p + 1) * sizeof(double)))
        return mt_err_set(err, MT_ETOOBIG, "too many rows");
    double *x = malloc(cap * p * sizeof *x), *y = realloc(d->y, cap * sizeof *y);
    if (y)
        d->y = y;
    if (!x || !y) {
        free(x);
        return mt_err_set(err, MT_ENOMEM, "out of memory for %zu x %zu values", cap, p);
    }
    if (d->x) {
        memcpy(x, d->x, d->n * p * sizeof *x);
        mt_wipe(d->x, d->cap * p * sizeof *x);
        free(d->x);
    }
    d->x = x;
    d->cap = cap;
    return MT_OK;
}

static mt_status reg_row(void *u, size_t line, const double *v, size_t bad, const char *why,
                         mt_err *err)
{
    reg_sink *k = u;
    reg_train *d = k->d;
    size_t p = d->p;
    mt_status st;
    if (d->n == d->cap && (st = reg_reserve(d, 1, err)) != MT_OK)
        return st;
    if (bad <= p && !k->has_num) {
        k->has_num = true;
        mt_err_set(&k->num_err, MT_EINVAL, "input '%s', line %zu, column %zu: %s", k->slot, line,
                   k->col[bad] + 1, why);
    }
    memcpy(d->x + d->n * p, v, p * sizeof *v);
    d->y[d->n++] = v[p];
    if (k->binary && bad > p && !k->has_lab && v[p] != 0 && v[p] != 1) {
        k->has_lab = true;
        mt_err_set(&k->lab_err, MT_EINVAL, "input '%s', line %zu, column %zu: label must be 0 or 1",
                   k->slot, line, k->col[p] + 1);
    }
    return MT_OK;
}

static mt_status reg_row_ignore(void *u, size_t line, const double *v, size_t bad,
                                const char *why, mt_err *err)
{
    return MT_OK;
}

/* Label (name or 1-based index in the first input) and features (argument
 * "features": comma-separated names; default all other columns of the first
 * input) from the first input's header t0. */
static mt_status reg_names(mt_bctx *ctx, const mt_csv *t0, reg_train *d, mt_err *err)
{
    const char *label = mt_bctx_arg(ctx, "label");
    size_t lc;
    mt_status st;
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
    return MT_OK;
}

/* Loads the training matrix from every input (slot-name order). Errors are
 * reported in the order of a parse-everything-first reader: the first CSV
 * syntax error; else the first label/feature setup error; else no rows; else
 * the first number error (row order, features then label); else (binary)
 * the first label that is not 0 or 1. */
static mt_status reg_train_load(mt_bctx *ctx, bool binary, reg_train *d, mt_err *err)
{
    const char *label = mt_bctx_arg(ctx, "label");
    if (!label || !*label)
        return mt_err_set(err, MT_EINVAL,
                          "argument 'label' is required: the label column's name or number");
    if (ctx->n_inputs < 1)
        return mt_err_set(err, MT_EINVAL, "needs at least 1 input slot with training rows");
    size_t *idx = malloc(ctx->n_inputs * sizeof *idx), *col = NULL;
    if (!idx || !(d->head = calloc(ctx->n_inputs, sizeof *d->head))) {
        free(idx);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    d->n_t = ctx->n_inputs;
    mt_inputs_by_name(ctx, idx);
    mt_err setup = {0};
    bool has_setup = false;
    reg_sink k = {.d = d, .binary = binary};
    mt_status st = MT_OK;
    for (size_t i = 0; i < d->n_t; i++) {
        const mt_bctx_input *in = &ctx->inputs[idx[i]];
        mt_csv_opts o = {.slot = in->slot};
        size_t body, line;
        if ((st = mt_csv_parse_header(in->data, in->len, &o, &d->head[i], &body, &line, err)) !=
            MT_OK)
            goto out;
        const mt_csv *t = d->head[i];
        if (!has_setup && i == 0) {
            st = reg_names(ctx, t, d, &setup);
            if (st == MT_OK && !(col = malloc((d->p + 1) * sizeof *col)))
                st = mt_err_set(&setup, MT_ENOMEM, "out of memory");
            has_setup = st != MT_OK;
        }
        if (!has_setup) {
            st = reg_col(t, d->label, "label", &col[d->p], &setup);
            for (size_t f = 0; st == MT_OK && f < d->p; f++)
                st = reg_col(t, d->features[f], "feature", &col[f], &setup);
            has_setup = st != MT_OK;
        }
        if (has_setup && setup.code == MT_ENOMEM) {
            *err = setup;
            st = MT_ENOMEM;
            goto out;
        }
        if (!has_setup) { /* rows <= line feeds + 1: one allocation */
            size_t lf = 1;
            for (const uint8_t *q = in->data + body, *e = in->data + in->len;
                 (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
                lf++;
            if ((st = reg_reserve(d, lf, err)) != MT_OK)
                goto out;
        }
        /* after a setup error only the CSV syntax is still checked */
        mt_csv_numcols nc = {.col = col, .n = has_setup ? 0 : d->p + 1};
        k.slot = in->slot;
        k.col = col;
        if ((st = mt_csv_read_numbers(in->data, in->len, &o, t, body, line, &nc,
                                      has_setup ? reg_row_ignore : reg_row, &k, err)) != MT_OK)
            goto out;
    }
    if (has_setup) {
        *err = setup;
        st = setup.code;
    } else if (d->n == 0) {
        st = mt_err_set(err, MT_EINVAL, "no training rows (every input has only a header)");
    } else if (k.has_num) {
        *err = k.num_err;
        st = k.num_err.code;
    } else if (k.has_lab) {
        *err = k.lab_err;
        st = k.lab_err.code;
    }
out:
    free(idx);
    free(col);
    return st;
}

/* ------------------------------------------------------------- models */

static mt_status model_write(mt_bctx *ctx, const char *kind, const reg_train *d,
                             double intercept, const double *w, const char *param,
                             double param_v, mt_err *err)
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
        json_object_set_new(m, "rows", json_integer((json_int_t)d->n))) {
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
    /* reasons name the rule, not the model's bytes (jansson quotes them) */
    if (!m->root)
        return mt_err_set(err, MT_EINVAL, "input '%s': not a model: %s", in->slot,
                          e.code == MT_ETOOBIG ? "larger than the limit" : "malformed JSON");
    const char *k;
    json_t *f, *c;
    static const char *const keys[] = {"model", "label", "features", "coefficients", "intercept",
                                       "ridge", "C", "rows", NULL};
    if (!json_is_object(m->root) || mt_json_only_keys(m->root, keys, &e) != MT_OK ||
        mt_json_str(m->root, "model", 64, &k, &e) != MT_OK ||
        mt_json_array(m->root, "features", REG_MAX_FEATURES, &f, &e) != MT_OK ||
        mt_json_array(m->root, "coefficients", REG_MAX_FEATURES, &c, &e) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "input '%s': not a model: expected an object with "
                          "the fields model, features and coefficients (and only known ones)",
                          in->slot);
    if (strcmp(k, kind) != 0) {
        /* the model's own text is named only when it is one of the known kinds */
        const char *known = !strcmp(k, "linear_regression")     ? "linear_regression"
                            : !strcmp(k, "logistic_regression") ? "logistic_regression"
                                                                : NULL;
        if (known)
            return mt_err_set(err, MT_EINVAL, "input '%s': a '%s' model, expected '%s'",
                              in->slot, known, kind);
        return mt_err_set(err, MT_EINVAL, "input '%s': not a '%s' model", in->slot, kind);
    }
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
        for (size_t k = 0; k < m.p; k++) {
            mt_err ce;
            /* the feature names come from the model (another party's input):
             * the reason gives the feature's position, not its name */
            if ((st = reg_col(d.t[i], m.features[k], "feature", &d.fcol[i * m.p + k], &ce)) !=
                MT_OK) {
                mt_bctx_detail(ctx, "%s", ce.msg);
                st = mt_err_set(err, st, "input '%s' has no column for the model's feature %zu "
                                "(line 1)", d.t[i]->slot, k + 1);
                goto out;
            }
        }
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
    reg_train d = {0};
    double *x = NULL, *y = NULL, *a = NULL, *v = NULL;
    size_t p = 0, q = 0, n = 0;
    if ((st = reg_train_load(ctx, false, &d, err)) != MT_OK)
        goto out;
    p = d.p;
    q = p + (icpt ? 1 : 0);
    n = d.n;
    x = d.x;
    y = d.y;
    if (!(a = calloc(q * q, sizeof *a)) || !(v = calloc(q, sizeof *v))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for %zu x %zu values", n, p);
        goto out;
    }
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
    free(a);
    free(v);
    reg_train_free(&d);
    return st;
}

mt_status mt_builtin_linear_regression_predict(mt_bctx *ctx, char **ret, mt_err *err)
{
    return reg_predict(ctx, "linear_regression_predict", "linear_regression", 0, ret, err);
}

/* ------------------------------------------------------------- logistic */

#define LR_HISTORY 10   /* L-BFGS correction pairs */
#define LR_MAX_ITER 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Loss accumulator: sum log(1 + e_i) is kept as a running product of the
 * factors (each in (1, 2]) that is folded into a log only every few hundred
 * rows, so the pass costs one exp per row and almost no log; the terms -m of
 * negative margins are summed apart. The extra rounding is below 1e-13
 * relative per fold: immaterial for the line search. */
typedef struct lr_loss {
    double prod, lin, logs;
} lr_loss;

/* Adds log(1 + exp(-m)) for the margin m = y' z (y' = +-1 from the 0/1
 * label y) to *l and returns d loss / d z, without overflow. */
static inline double lr_point(double z, double y, lr_loss *l)
{
    double m = y != 0 ? z : -z, e = exp(-fabs(m)), s;
    l->prod *= 1 + e;
    if (m >= 0) {
        s = e / (1 + e);
    } else {
        l->lin -= m;
        s = 1 / (1 + e);
    }
    return y != 0 ? -s : s;
}

static inline void lr_fold(lr_loss *l)
{
    if (l->prod > 0x1p900) {
        l->logs += log(l->prod);
        l->prod = 1;
    }
}

/* The objective f(w) = 1/2 |w|^2 + C sum_i log(1 + exp(-y'_i w.x_i)) (x_i
 * with a constant 1 appended when icpt, so the intercept w[p] is
 * regularised, as in liblinear) and its gradient g (p + icpt values), in one
 * pass over the rows: four rows at a time, so the dot products are four
 * independent chains and each x row is read once for z and once, from
 * cache, for the gradient. gd: scratch of p values. Deterministic. */
static double lr_fg(const reg_train *d, bool icpt, double C, const double *w, double *g,
                    double *gd)
{
    size_t n = d->n, p = d->p, r = 0;
    const double *x = d->x, *y = d->y;
    double b = icpt ? w[p] : 0, gb = 0;
    lr_loss loss = {1, 0, 0};
    memset(gd, 0, p * sizeof *gd);
    for (; r + 4 <= n; r += 4) {
        const double *x0 = x + r * p, *x1 = x0 + p, *x2 = x1 + p, *x3 = x2 + p;
        double z0 = b, z1 = b, z2 = b, z3 = b;
        for (size_t k = 0; k < p; k++) {
            double wk = w[k];
            z0 += x0[k] * wk;
            z1 += x1[k] * wk;
            z2 += x2[k] * wk;
            z3 += x3[k] * wk;
        }
        double c0 = lr_point(z0, y[r], &loss), c1 = lr_point(z1, y[r + 1], &loss);
        double c2 = lr_point(z2, y[r + 2], &loss), c3 = lr_point(z3, y[r + 3], &loss);
        lr_fold(&loss);
        for (size_t k = 0; k < p; k++)
            gd[k] += (c0 * x0[k] + c1 * x1[k]) + (c2 * x2[k] + c3 * x3[k]);
        gb += (c0 + c1) + (c2 + c3);
    }
    for (; r < n; r++) {
        const double *xr = x + r * p;
        double z = b;
        for (size_t k = 0; k < p; k++)
            z += xr[k] * w[k];
        double c = lr_point(z, y[r], &loss);
        lr_fold(&loss);
        for (size_t k = 0; k < p; k++)
            gd[k] += c * xr[k];
        gb += c;
    }
    double reg = 0;
    for (size_t k = 0; k < p; k++) {
        reg += w[k] * w[k];
        g[k] = w[k] + C * gd[k];
    }
    if (icpt) {
        reg += w[p] * w[p];
        g[p] = w[p] + C * gb;
    }
    return 0.5 * reg + C * (loss.logs + log(loss.prod) + loss.lin);
}

static double lr_dot(const double *a, const double *b, size_t q)
{
    double s = 0;
    for (size_t k = 0; k < q; k++)
        s += a[k] * b[k];
    return s;
}

/* Minimises lr_fg by L-BFGS from w = 0 (w: p + icpt values, zeroed):
 * two-loop recursion over the last LR_HISTORY pairs, initial scaling
 * s.y / y.y, backtracking line search (Armijo, quadratic interpolation) that
 * first tries the step 1. Stops, as liblinear's L2R_LR does, when
 * |g| <= eps * max(min(#pos, #neg), 1) / n * |g(0)|, when no step makes
 * progress any more (the rounding floor) or after LR_MAX_ITER iterations.
 * *iters receives the iterations. MT_ENOMEM only. */
static mt_status lr_lbfgs(const reg_train *d, bool icpt, double C, double eps, size_t npos,
                          size_t nneg, double *w, int *iters, mt_err *err)
{
    size_t q = d->p + (icpt ? 1 : 0), m = LR_HISTORY;
    double *buf = calloc(5 * q + d->p + 2 * m * q + 2 * m, sizeof *buf);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    double *g = buf, *gn = g + q, *wn = gn + q, *dir = wn + q, *gd = dir + q, *sv = gd + d->p;
    double *yv = sv + m * q, *rho = yv + m * q, *alpha = rho + m;
    (void)gd;
    double *scratch = gd;
    double f = lr_fg(d, icpt, C, w, g, scratch);
    size_t minc = npos < nneg ? npos : nneg;
    double tol = eps * (double)(minc > 1 ? minc : 1) / (double)d->n * sqrt(lr_dot(g, g, q));
    size_t hist = 0, newest = 0; /* pairs stored; slot of the newest */
    int it = 0;
    for (; it < LR_MAX_ITER; it++) {
        double gnorm = sqrt(lr_dot(g, g, q));
        if (gnorm <= tol)
            break;
        /* dir = -H g by the two-loop recursion */
        for (size_t k = 0; k < q; k++)
            dir[k] = -g[k];
        for (size_t i = 0; i < hist; i++) {
            size_t j = (newest + m - i) % m;
            alpha[j] = rho[j] * lr_dot(sv + j * q, dir, q);
            for (size_t k = 0; k < q; k++)
                dir[k] -= alpha[j] * yv[j * q + k];
        }
        double step = 1;
        if (hist) {
            const double *s0 = sv + newest * q, *y0 = yv + newest * q;
            double gamma = lr_dot(s0, y0, q) / lr_dot(y0, y0, q);
            for (size_t k = 0; k < q; k++)
                dir[k] *= gamma;
        } else {
            step = 1 / gnorm > 1 ? 1 : 1 / gnorm;
        }
        for (size_t i = hist; i-- > 0;) {
            size_t j = (newest + m - i) % m;
            double beta = rho[j] * lr_dot(yv + j * q, dir, q);
            for (size_t k = 0; k < q; k++)
                dir[k] += sv[j * q + k] * (alpha[j] - beta);
        }
        double gdir = lr_dot(g, dir, q);
        if (!(gdir < 0)) { /* not a descent direction: restart from -g */
            hist = 0;
            for (size_t k = 0; k < q; k++)
                dir[k] = -g[k];
            gdir = -gnorm * gnorm;
            step = 1 / gnorm > 1 ? 1 : 1 / gnorm;
        }
        bool accepted = false;
        double fn = f;
        for (int ls = 0; ls < 40 && !accepted; ls++) {
            for (size_t k = 0; k < q; k++)
                wn[k] = w[k] + step * dir[k];
            fn = lr_fg(d, icpt, C, wn, gn, scratch);
            /* Armijo, or (near the optimum, where f no longer resolves the
             * decrease) f unchanged to rounding with a smaller slope */
            if (fn <= f + 1e-4 * step * gdir ||
                (fabs(fn - f) <= 1e-12 * fabs(f) && fabs(lr_dot(gn, dir, q)) <= -gdir)) {
                accepted = true;
                break;
            }
            double den = 2 * (fn - f - step * gdir);
            double t = den > 0 ? -gdir * step * step / den : 0.5 * step;
            step = t < 0.1 * step ? 0.1 * step : t > 0.5 * step ? 0.5 * step : t;
        }
        if (!accepted)
            break;
        size_t j = hist ? (newest + 1) % m : 0;
        double sy = 0, yy = 0;
        for (size_t k = 0; k < q; k++) {
            sv[j * q + k] = wn[k] - w[k];
            yv[j * q + k] = gn[k] - g[k];
            sy += sv[j * q + k] * yv[j * q + k];
            yy += yv[j * q + k] * yv[j * q + k];
        }
        if (sy > 1e-12 * yy && yy > 0) { /* curvature: keep the pair */
            rho[j] = 1 / sy;
            newest = j;
            if (hist < m)
                hist++;
        }
        memcpy(w, wn, q * sizeof *w);
        memcpy(g, gn, q * sizeof *g);
        f = fn;
    }
    *iters = it;
    mt_wipe(buf, (5 * q + d->p + 2 * m * q + 2 * m) * sizeof *buf);
    free(buf);
    return MT_OK;
}

static void liblinear_silent(const char *s)
{
    (void)s;
}

/* liblinear's L2R_LR (trust-region Newton) on the same objective. */
static mt_status lr_liblinear(const reg_train *d, bool icpt, double C, double eps, double *w,
                              int *iters, mt_err *err)
{
    size_t n = d->n, p = d->p, per = p + 2;
    if (n > INT32_MAX / 2 || n * per > INT32_MAX)
        return mt_err_set(err, MT_ETOOBIG, "%zu rows x %zu features is over liblinear's limits",
                          n, p);
    struct feature_node *nodes = malloc(n * per * sizeof *nodes), **rows = malloc(n * sizeof *rows);
    struct model *model = NULL;
    mt_status st = MT_OK;
    if (!nodes || !rows) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for %zu x %zu values", n, p);
        goto out;
    }
    for (size_t r = 0; r < n; r++) {
        struct feature_node *f = nodes + r * per;
        rows[r] = f;
        for (size_t k = 0; k < p; k++)
            if (d->x[r * p + k] != 0)
                *f++ = (struct feature_node){(int)k + 1, d->x[r * p + k]};
        if (icpt)
            *f++ = (struct feature_node){(int)p + 1, 1.0};
        *f = (struct feature_node){-1, 0};
    }
    struct problem prob = {.l = (int)n, .n = (int)p + (icpt ? 1 : 0), .y = d->y, .x = rows,
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
    for (size_t k = 0; k < p + (icpt ? 1 : 0); k++)
        w[k] = sign * model->w[k];
    *iters = -1;
out:
    if (model)
        free_and_destroy_model(&model);
    if (nodes)
        mt_wipe(nodes, n * per * sizeof *nodes);
    free(nodes);
    free(rows);
    return st;
}

mt_status mt_builtin_logistic_regression_train(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"label", "features", "C",      "eps",
                                          "intercept", "solver", NULL};
    *ret = NULL;
    double C, eps;
    bool icpt;
    mt_status st;
    if ((st = mt_arg_only(ctx, "logistic_regression_train", allowed, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "C", 1e-9, 1e9, 1.0, &C, err)) != MT_OK ||
        (st = mt_arg_double(ctx, "eps", 1e-12, 1, 0.01, &eps, err)) != MT_OK ||
        (st = mt_arg_bool(ctx, "intercept", true, &icpt, err)) != MT_OK)
        return st;
    const char *solver = mt_bctx_arg(ctx, "solver");
    bool lib = false;
    if (solver && strcmp(solver, "liblinear") == 0)
        lib = true;
    else if (solver && strcmp(solver, "lbfgs") != 0)
        return mt_err_set(err, MT_EINVAL, "argument 'solver': expected lbfgs or liblinear");
    reg_train d = {0};
    double *w = NULL;
    size_t p = 0, n = 0;
    double t0 = now_s();
    if ((st = reg_train_load(ctx, true, &d, err)) != MT_OK)
        goto out;
    double t1 = now_s();
    p = d.p;
    n = d.n;
    size_t pos[2] = {0, 0};
    for (size_t r = 0; r < n; r++)
        pos[d.y[r] == 1]++;
    if (pos[0] == 0 || pos[1] == 0) {
        st = mt_err_set(err, MT_EINVAL, "every label is %d: training needs rows of both classes",
                        pos[1] ? 1 : 0);
        goto out;
    }
    if (!(w = calloc(p + 1, sizeof *w))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    int iters = 0;
    if ((st = lib ? lr_liblinear(&d, icpt, C, eps, w, &iters, err)
                  : lr_lbfgs(&d, icpt, C, eps, pos[1], pos[0], w, &iters, err)) != MT_OK)
        goto out;
    double t2 = now_s();
    double b = icpt ? w[p] : 0;
    size_t correct = 0;
    for (size_t r = 0; r < n; r++) {
        double z = b;
        for (size_t k = 0; k < p; k++)
            z += w[k] * d.x[r * p + k];
        correct += (z >= 0) == (d.y[r] == 1);
    }
    if ((st = model_write(ctx, "logistic_regression", &d, b, w, "C", C, err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx,
                "logistic_regression_train: %zu rows, %zu features, solver %s, %d iterations; "
                "load %.3f s, fit %.3f s",
                n, p, lib ? "liblinear" : "lbfgs", iters, t1 - t0, t2 - t1);
    char buf[128];
    snprintf(buf, sizeof buf, "rows: %zu, training accuracy: %.6f", n,
             (double)correct / (double)n);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    free(w);
    reg_train_free(&d);
    return st;
}

mt_status mt_builtin_logistic_regression_predict(mt_bctx *ctx, char **ret, mt_err *err)
{
    return reg_predict(ctx, "logistic_regression_predict", "logistic_regression", 1, ret, err);
}
