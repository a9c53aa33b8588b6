/* builtin_ml_data: the numeric-table loader of the machine-learning
 * built-ins (see builtin_ml.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"
#include "builtin_ml.h"
#include "mt_util.h"

void ml_matrix_free(ml_matrix *m)
{
    if (m->xd)
        mt_wipe(m->xd, m->n * m->p * sizeof *m->xd);
    if (m->xf)
        mt_wipe(m->xf, m->n * m->p * sizeof *m->xf);
    free(m->xd);
    free(m->xf);
    free(m->y);
    for (size_t k = 0; m->names && k < m->p; k++)
        free(m->names[k]);
    free(m->names);
    free(m->label);
    for (size_t r = 0; m->ids && r < m->n; r++)
        free(m->ids[r]);
    free(m->ids);
    free(m->row_slot);
    free(m->row_line);
    free(m->label_col);
    memset(m, 0, sizeof *m);
}

size_t *ml_inputs_except(const mt_bctx *ctx, const char *skip, size_t *n)
{
    size_t *idx = malloc((ctx->n_inputs + 1) * sizeof *idx);
    if (!idx)
        return NULL;
    mt_inputs_by_name(ctx, idx);
    size_t k = 0;
    for (size_t i = 0; i < ctx->n_inputs; i++)
        if (!skip || strcmp(ctx->inputs[idx[i]].slot, skip) != 0)
            idx[k++] = idx[i];
    *n = k;
    return idx;
}

long ml_output_find(const mt_bctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->n_outputs; i++)
        if (strcmp(ctx->outputs[i].slot, name) == 0)
            return (long)i;
    return -1;
}

mt_status ml_sbuf_write(mt_bctx *ctx, size_t idx, const mt_sbuf *b, mt_err *err)
{
    if (b->oom)
        return mt_err_set(err, MT_ENOMEM, "out of memory building the output (memory limit?)");
    return mt_bctx_output_write(ctx, idx, b->p, b->len, err);
}

/* Column named name in t, or MT_EINVAL naming the slot and what. */
static mt_status col_by_name(const mt_csv *t, const char *name, size_t len, const char *what,
                             size_t *col, mt_err *err)
{
    for (size_t c = 0; c < t->n_cols; c++)
        if (strlen(t->header[c]) == len && memcmp(t->header[c], name, len) == 0) {
            *col = c;
            return MT_OK;
        }
    return mt_err_set(err, MT_EINVAL, "input '%s', line 1: no %s column '%.*s'", t->slot, what,
                      (int)(len > 64 ? 64 : len), name);
}

/* Resolves the feature names from the first table (sets m->p, m->names). */
static mt_status resolve_features(const mt_csv *t0, const ml_load_opts *o, long lc, long xc,
                                  ml_matrix *m, mt_err *err)
{
    if (!(m->names = calloc(t0->n_cols + 1, sizeof *m->names)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (o->features) {
        const char *p = o->features;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            size_t c = 0;
            mt_status st = col_by_name(t0, p, len, "feature", &c, err);
            if (st != MT_OK)
                return mt_err_prefix(err, MT_EINVAL, "argument 'features': ");
            if ((long)c == lc)
                return mt_err_set(err, MT_EINVAL,
                                  "argument 'features': '%.64s' is the label column", p);
            for (size_t k = 0; k < m->p; k++)
                if (strcmp(m->names[k], t0->header[c]) == 0)
                    return mt_err_set(err, MT_EINVAL,
                                      "argument 'features': column '%.64s' listed twice",
                                      t0->header[c]);
            if (m->p >= t0->n_cols)
                return mt_err_set(err, MT_EINVAL, "argument 'features': too many names");
            if (!(m->names[m->p++] = strdup(t0->header[c])))
                return mt_err_set(err, MT_ENOMEM, "out of memory");
            if (!comma)
                break;
            p = comma + 1;
        }
    } else {
        for (size_t c = 0; c < t0->n_cols; c++)
            if ((long)c != lc && (long)c != xc && !(m->names[m->p++] = strdup(t0->header[c])))
                return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (m->p == 0)
        return mt_err_set(err, MT_EINVAL, "input '%s': no feature columns", t0->slot);
    if (m->p > ML_MAX_FEATURES)
        return mt_err_set(err, MT_EINVAL, "%zu features, more than the limit of %d", m->p,
                          ML_MAX_FEATURES);
    return MT_OK;
}

/* Grows the per-row arrays of m to hold cap rows. */
static mt_status grow(ml_matrix *m, const ml_load_opts *o, bool want_ids, size_t cap,
                      mt_err *err)
{
    size_t p = m->p;
    if (cap > SIZE_MAX / (p * sizeof(double) + 64))
        return mt_err_set(err, MT_ETOOBIG, "too many rows");
#define GROW(field, count)                                                                         \
    do {                                                                                           \
        void *q_ = realloc(m->field, (count) * sizeof *m->field);                                  \
        if (!q_)                                                                                   \
            return mt_err_set(err, MT_ENOMEM, "out of memory for %zu x %zu values", cap, p);      \
        m->field = q_;                                                                             \
    } while (0)
    if (o->f32)
        GROW(xf, cap * p);
    else
        GROW(xd, cap * p);
    if (o->label) {
        GROW(y, cap);
        GROW(label_col, cap);
    }
    if (want_ids)
        GROW(ids, cap);
    GROW(row_slot, cap);
    GROW(row_line, cap);
#undef GROW
    return MT_OK;
}

mt_status ml_load(mt_bctx *ctx, const ml_load_opts *o, bool want_ids, ml_matrix *m, mt_err *err)
{
    memset(m, 0, sizeof *m);
    mt_status st = MT_OK;
    mt_csv *t = NULL;
    size_t *fcol = NULL;
    if (o->n_idx == 0)
        return mt_err_set(err, MT_EINVAL, "needs at least 1 input slot with data rows");
    for (size_t i = 0; i < o->n_idx; i++) {
        const mt_bctx_input *in = &ctx->inputs[o->idx[i]];
        mt_csv_opts co = {.slot = in->slot};
        if ((st = mt_csv_parse(in->data, in->len, &co, &t, err)) != MT_OK)
            goto out;
        long lc = -1, xc = -1;
        size_t c;
        if (o->label) {
            if (i == 0) {
                if ((st = mt_csv_column(t, o->label, "label", &c, err)) != MT_OK)
                    goto out;
                if (!(m->label = strdup(t->header[c]))) {
                    st = mt_err_set(err, MT_ENOMEM, "out of memory");
                    goto out;
                }
            } else if ((st = col_by_name(t, m->label, strlen(m->label), "label", &c, err)) !=
                       MT_OK) {
                goto out;
            }
            lc = (long)c;
        }
        if (o->exclude) {
            if ((st = col_by_name(t, o->exclude, strlen(o->exclude), "id", &c, err)) != MT_OK) {
                if (want_ids)
                    goto out;
                st = MT_OK; /* an exclude column that is absent is just not excluded */
            } else {
                xc = (long)c;
            }
        }
        if (i == 0) {
            if ((st = resolve_features(t, o, lc, xc, m, err)) != MT_OK)
                goto out;
            if (!(fcol = malloc(m->p * sizeof *fcol))) {
                st = mt_err_set(err, MT_ENOMEM, "out of memory");
                goto out;
            }
        }
        for (size_t k = 0; k < m->p; k++)
            if ((st = col_by_name(t, m->names[k], strlen(m->names[k]), "feature", &fcol[k],
                                  err)) != MT_OK)
                goto out;
        if (t->n_rows && (st = grow(m, o, want_ids, m->n + t->n_rows, err)) != MT_OK)
            goto out;
        size_t base = m->n;
        for (size_t r = 0; r < t->n_rows; r++) {
            size_t row = base + r;
            for (size_t k = 0; k < m->p; k++) {
                double v;
                const char *cell = mt_csv_cell(t, r, fcol[k]);
                if (o->allow_missing && cell[0] == 0)
                    v = NAN;
                else if ((st = mt_csv_number(t, r, fcol[k], &v, err)) != MT_OK)
                    goto out;
                if (o->f32) {
                    float f = (float)v;
                    if (isinf(f)) {
                        st = mt_err_set(err, MT_EINVAL,
                                        "input '%s', line %zu, column %zu: number out of the "
                                        "range of a 32-bit float",
                                        t->slot, t->line[r], fcol[k] + 1);
                        goto out;
                    }
                    m->xf[row * m->p + k] = f;
                } else {
                    m->xd[row * m->p + k] = v;
                }
            }
            if (o->label) {
                if ((st = mt_csv_number(t, r, (size_t)lc, &m->y[row], err)) != MT_OK)
                    goto out;
                m->label_col[row] = (size_t)lc + 1;
            }
            if (want_ids && !(m->ids[row] = strdup(mt_csv_cell(t, r, (size_t)xc)))) {
                st = mt_err_set(err, MT_ENOMEM, "out of memory");
                goto out;
            }
            m->row_slot[row] = in->slot;
            m->row_line[row] = t->line[r];
            if (want_ids)
                m->n = row + 1; /* ids owned so far, for ml_matrix_free */
        }
        m->n += want_ids ? 0 : t->n_rows;
        mt_csv_free(t);
        t = NULL;
    }
    if (m->n == 0)
        st = mt_err_set(err, MT_EINVAL, "no data rows (every input has only a header)");
out:
    mt_csv_free(t);
    free(fcol);
    if (st != MT_OK)
        ml_matrix_free(m);
    return st;
}
