/* builtin_setops: set operations over the parties' CSV id columns:
 * private_join_and_compute (N parties, aggregate over the common ids),
 * psi_cardinality (only the size of the intersection), and the merge-based
 * ordered_set_intersect / ordered_set_join of two sorted inputs.
 * Formats and arguments: docs/builtins.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"
#include "mt_util.h"

/* Parses every input as CSV with a header; t[i] for ctx->inputs[i]. */
static mt_status parse_all(mt_bctx *ctx, mt_csv **t, mt_err *err)
{
    for (size_t i = 0; i < ctx->n_inputs; i++) {
        mt_csv_opts o = {.slot = ctx->inputs[i].slot};
        mt_status st = mt_csv_parse(ctx->inputs[i].data, ctx->inputs[i].len, &o, &t[i], err);
        if (st != MT_OK)
            return st;
    }
    return MT_OK;
}

static void free_all(mt_csv **t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        mt_csv_free(t[i]);
    free(t);
}

static mt_status check_id(const mt_csv *t, size_t row, size_t col, mt_err *err)
{
    if (mt_csv_cell(t, row, col)[0] == 0)
        return mt_err_set(err, MT_EINVAL, "input '%s', line %zu, column %zu: empty id", t->slot,
                          t->line[row], col + 1);
    return MT_OK;
}

/* *ret = prefix followed by v in decimal. */
static mt_status set_ret(char **ret, const char *prefix, size_t v, mt_err *err)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s%zu", prefix, v);
    if (!(*ret = strdup(buf)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* ------------------------------------------------- private_join_and_compute */

typedef struct pjc_entry {
    const char *id;
    double sum;
    uint64_t count;
    size_t round; /* number of leading inputs the id was seen in */
} pjc_entry;

static int cmp_entry_ptr(const void *a, const void *b)
{
    const pjc_entry *x = *(pjc_entry *const *)a, *y = *(pjc_entry *const *)b;
    return strcmp(x->id, y->id);
}

mt_status mt_builtin_private_join_and_compute(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"id", "value", "aggregate", NULL};
    *ret = NULL;
    mt_status st = mt_arg_only(ctx, "private_join_and_compute", allowed, err);
    if (st != MT_OK)
        return st;
    const char *id_spec = mt_bctx_arg(ctx, "id"), *val_spec = mt_bctx_arg(ctx, "value");
    const char *agg = mt_bctx_arg(ctx, "aggregate");
    id_spec = id_spec ? id_spec : "id";
    val_spec = val_spec ? val_spec : "value";
    agg = agg ? agg : "sum";
    int mode = !strcmp(agg, "sum") ? 0 : !strcmp(agg, "count") ? 1 : !strcmp(agg, "mean") ? 2 : -1;
    if (mode < 0)
        return mt_err_set(err, MT_EINVAL, "argument 'aggregate': expected sum, count or mean");
    if (ctx->n_inputs < 2)
        return mt_err_set(err, MT_EINVAL,
                          "private_join_and_compute needs at least 2 input slots, got %zu",
                          ctx->n_inputs);
    mt_csv **t = calloc(ctx->n_inputs, sizeof *t);
    pjc_entry *ent = NULL, **sorted = NULL;
    mt_strmap map = {0};
    mt_sbuf out = {0};
    if (!t)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if ((st = parse_all(ctx, t, err)) != MT_OK)
        goto out;
    if ((st = mt_strmap_init(&map, t[0]->n_rows, err)) != MT_OK)
        goto out;
    if (!(ent = calloc(t[0]->n_rows + 1, sizeof *ent))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    size_t n_ent = 0;
    for (size_t k = 0; k < ctx->n_inputs; k++) {
        size_t ic, vc = 0;
        if ((st = mt_csv_column(t[k], id_spec, "id", &ic, err)) != MT_OK ||
            (mode != 1 && (st = mt_csv_column(t[k], val_spec, "value", &vc, err)) != MT_OK))
            goto out;
        for (size_t r = 0; r < t[k]->n_rows; r++) {
            if ((st = check_id(t[k], r, ic, err)) != MT_OK)
                goto out;
            double v = 0;
            if (mode != 1 && (st = mt_csv_number(t[k], r, vc, &v, err)) != MT_OK)
                goto out;
            const char *id = mt_csv_cell(t[k], r, ic);
            size_t len = strlen(id);
            pjc_entry *e = NULL;
            if (k == 0) {
                bool found;
                uint32_t old;
                if ((st = mt_strmap_put(&map, id, len, (uint32_t)n_ent, &found, &old, err)) !=
                    MT_OK)
                    goto out;
                if (found) {
                    e = &ent[old];
                } else {
                    e = &ent[n_ent++];
                    e->id = id;
                    e->round = 1;
                }
            } else {
                int64_t j = mt_strmap_get(&map, id, len);
                if (j < 0)
                    continue;
                e = &ent[j];
                if (e->round == k)
                    e->round = k + 1;
                else if (e->round != k + 1)
                    continue; /* missing from an earlier input: never in the result */
            }
            e->sum += v;
            e->count++;
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n_ent; i++)
        m += ent[i].round == ctx->n_inputs;
    if (!(sorted = malloc((m + 1) * sizeof *sorted))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    m = 0;
    for (size_t i = 0; i < n_ent; i++)
        if (ent[i].round == ctx->n_inputs)
            sorted[m++] = &ent[i];
    qsort(sorted, m, sizeof *sorted, cmp_entry_ptr);
    mt_sbuf_printf(&out, "id,%s\n", agg);
    for (size_t i = 0; i < m; i++) {
        mt_sbuf_csv_field(&out, sorted[i]->id, strlen(sorted[i]->id));
        mt_sbuf_put(&out, ",", 1);
        if (mode == 0)
            mt_sbuf_num(&out, sorted[i]->sum);
        else if (mode == 1)
            mt_sbuf_printf(&out, "%llu", (unsigned long long)sorted[i]->count);
        else
            mt_sbuf_num(&out, sorted[i]->sum / (double)sorted[i]->count);
        mt_sbuf_put(&out, "\n", 1);
    }
    if ((st = mt_sbuf_write_all(ctx, &out, err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx, "private_join_and_compute: %zu inputs, %s over %zu common ids",
                ctx->n_inputs, agg, m);
    st = set_ret(ret, "intersection size: ", m, err);
out:
    mt_sbuf_free(&out);
    free(sorted);
    free(ent);
    mt_strmap_free(&map);
    free_all(t, ctx->n_inputs);
    return st;
}

/* ------------------------------------------------------------ psi_cardinality */

mt_status mt_builtin_psi_cardinality(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {NULL};
    *ret = NULL;
    mt_status st = mt_arg_only(ctx, "psi_cardinality", allowed, err);
    if (st != MT_OK)
        return st;
    if (ctx->n_outputs != 0)
        return mt_err_set(err, MT_EINVAL,
                          "psi_cardinality reveals only the size as its return value: declare "
                          "no output slots (got %zu)",
                          ctx->n_outputs);
    if (ctx->n_inputs < 2)
        return mt_err_set(err, MT_EINVAL,
                          "psi_cardinality needs at least 2 input slots (one id list per party), "
                          "got %zu",
                          ctx->n_inputs);
    mt_psi_input *in = calloc(ctx->n_inputs, sizeof *in);
    if (!in)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < ctx->n_inputs; i++) {
        in[i].slot = ctx->inputs[i].slot;
        in[i].data = ctx->inputs[i].data;
        in[i].len = ctx->inputs[i].len;
    }
    uint64_t seed = 0;
    size_t count = 0;
    st = mt_random((uint8_t *)&seed, sizeof seed, err);
    if (st == MT_OK) /* counted: no id is formatted (fast path) */
        st = mt_psi_count(in, ctx->n_inputs, seed, &count, err);
    free(in);
    if (st != MT_OK)
        return st;
    mt_bctx_log(ctx, "psi_cardinality: %zu inputs", ctx->n_inputs);
    return set_ret(ret, "", count, err);
}

/* ------------------------------------------------------------ ordered sets */

typedef struct ordered {
    mt_csv *t[2];
    size_t idcol[2];
    size_t in[2]; /* ctx input index, in slot-name order */
} ordered;

/* Parses the two inputs (slot-name order), finds the id columns and checks
 * that ids are non-empty and strictly increasing bytewise. */
static mt_status ordered_load(mt_bctx *ctx, const char *fn, ordered *o, mt_err *err)
{
    static const char *const allowed[] = {"id", NULL};
    mt_status st = mt_arg_only(ctx, fn, allowed, err);
    if (st != MT_OK)
        return st;
    if (ctx->n_inputs != 2)
        return mt_err_set(err, MT_EINVAL, "%s needs exactly 2 input slots, got %zu", fn,
                          ctx->n_inputs);
    const char *id_spec = mt_bctx_arg(ctx, "id");
    id_spec = id_spec ? id_spec : "id";
    mt_inputs_by_name(ctx, o->in);
    for (int k = 0; k < 2; k++) {
        const mt_bctx_input *in = &ctx->inputs[o->in[k]];
        mt_csv_opts opts = {.slot = in->slot};
        if ((st = mt_csv_parse(in->data, in->len, &opts, &o->t[k], err)) != MT_OK ||
            (st = mt_csv_column(o->t[k], id_spec, "id", &o->idcol[k], err)) != MT_OK)
            return st;
        const mt_csv *t = o->t[k];
        for (size_t r = 0; r < t->n_rows; r++) {
            if ((st = check_id(t, r, o->idcol[k], err)) != MT_OK)
                return st;
            if (r > 0 && strcmp(mt_csv_cell(t, r - 1, o->idcol[k]),
                                mt_csv_cell(t, r, o->idcol[k])) >= 0)
                return mt_err_set(err, MT_EINVAL,
                                  "input '%s', line %zu, column %zu: id not greater than the "
                                  "previous row's (inputs must be sorted bytewise, ascending, "
                                  "without duplicates)",
                                  t->slot, t->line[r], o->idcol[k] + 1);
        }
    }
    return MT_OK;
}

static void ordered_free(ordered *o)
{
    mt_csv_free(o->t[0]);
    mt_csv_free(o->t[1]);
}

/* Merge walk: calls fn for every matching (row a, row b); flags rows. */
static size_t ordered_merge(const ordered *o, uint8_t *flag_a, uint8_t *flag_b,
                            void (*fn)(void *, size_t, size_t), void *arg)
{
    const mt_csv *a = o->t[0], *b = o->t[1];
    size_t i = 0, j = 0, m = 0;
    while (i < a->n_rows && j < b->n_rows) {
        int c = strcmp(mt_csv_cell(a, i, o->idcol[0]), mt_csv_cell(b, j, o->idcol[1]));
        if (c < 0) {
            i++;
        } else if (c > 0) {
            j++;
        } else {
            if (flag_a)
                flag_a[i] = 1;
            if (flag_b)
                flag_b[j] = 1;
            if (fn)
                fn(arg, i, j);
            m++;
            i++;
            j++;
        }
    }
    return m;
}

mt_status mt_builtin_ordered_set_intersect(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    ordered o = {0};
    uint8_t *flags[2] = {NULL, NULL};
    mt_sbuf buf[2] = {{0}};
    mt_status st = ordered_load(ctx, "ordered_set_intersect", &o, err);
    if (st != MT_OK)
        goto out;
    if (ctx->n_outputs > 2) {
        st = mt_err_set(err, MT_EINVAL,
                        "ordered_set_intersect has at most 2 output slots (one per input), got "
                        "%zu",
                        ctx->n_outputs);
        goto out;
    }
    for (int k = 0; k < 2; k++)
        if (!(flags[k] = calloc(o.t[k]->n_rows + 1, 1))) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
    size_t m = ordered_merge(&o, flags[0], flags[1], NULL, NULL);
    size_t outs[2];
    mt_outputs_by_name(ctx, outs);
    for (size_t k = 0; k < ctx->n_outputs; k++) {
        const mt_csv *t = o.t[k];
        mt_sbuf_puts(&buf[k], "id,member\n");
        for (size_t r = 0; r < t->n_rows; r++) {
            const char *id = mt_csv_cell(t, r, o.idcol[k]);
            mt_sbuf_csv_field(&buf[k], id, strlen(id));
            mt_sbuf_puts(&buf[k], flags[k][r] ? ",1\n" : ",0\n");
        }
        if (buf[k].oom) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory building the output");
            goto out;
        }
    }
    for (size_t k = 0; k < ctx->n_outputs; k++)
        if ((st = mt_bctx_output_write(ctx, outs[k], buf[k].p, buf[k].len, err)) != MT_OK)
            goto out;
    mt_bctx_log(ctx, "ordered_set_intersect: %zu and %zu rows", o.t[0]->n_rows, o.t[1]->n_rows);
    st = set_ret(ret, "intersection size: ", m, err);
out:
    for (int k = 0; k < 2; k++) {
        free(flags[k]);
        mt_sbuf_free(&buf[k]);
    }
    ordered_free(&o);
    return st;
}

typedef struct join_arg {
    const ordered *o;
    mt_sbuf *b;
} join_arg;

static void join_row(void *arg, size_t i, size_t j)
{
    join_arg *ja = arg;
    const ordered *o = ja->o;
    const char *id = mt_csv_cell(o->t[0], i, o->idcol[0]);
    mt_sbuf_csv_field(ja->b, id, strlen(id));
    size_t row[2] = {i, j};
    for (int k = 0; k < 2; k++)
        for (size_t c = 0; c < o->t[k]->n_cols; c++) {
            if (c == o->idcol[k])
                continue;
            const char *v = mt_csv_cell(o->t[k], row[k], c);
            mt_sbuf_put(ja->b, ",", 1);
            mt_sbuf_csv_field(ja->b, v, strlen(v));
        }
    mt_sbuf_put(ja->b, "\n", 1);
}

/* True if name equals "id" or one of the first n header names already
 * written (for the joined header). */
static bool name_taken(const ordered *o, int upto_k, size_t upto_c, const char *name)
{
    if (strcmp(name, "id") == 0)
        return true;
    for (int k = 0; k <= upto_k; k++)
        for (size_t c = 0; c < o->t[k]->n_cols; c++) {
            if (k == upto_k && c >= upto_c)
                return false;
            if (c != o->idcol[k] && strcmp(o->t[k]->header[c], name) == 0)
                return true;
        }
    return false;
}

mt_status mt_builtin_ordered_set_join(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    ordered o = {0};
    mt_sbuf b = {0};
    mt_status st = ordered_load(ctx, "ordered_set_join", &o, err);
    if (st != MT_OK)
        goto out;
    mt_sbuf_puts(&b, "id");
    for (int k = 0; k < 2; k++)
        for (size_t c = 0; c < o.t[k]->n_cols; c++) {
            if (c == o.idcol[k])
                continue;
            const char *name = o.t[k]->header[c];
            mt_sbuf_put(&b, ",", 1);
            if (name_taken(&o, k, c, name)) {
                mt_sbuf q = {0};
                mt_sbuf_printf(&q, "%s.%s", ctx->inputs[o.in[k]].slot, name);
                if (q.oom)
                    b.oom = true;
                else
                    mt_sbuf_csv_field(&b, q.p, q.len);
                mt_sbuf_free(&q);
            } else {
                mt_sbuf_csv_field(&b, name, strlen(name));
            }
        }
    mt_sbuf_put(&b, "\n", 1);
    join_arg ja = {&o, &b};
    size_t m = ordered_merge(&o, NULL, NULL, join_row, &ja);
    if ((st = mt_sbuf_write_all(ctx, &b, err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx, "ordered_set_join: %zu and %zu rows", o.t[0]->n_rows, o.t[1]->n_rows);
    st = set_ret(ret, "joined rows: ", m, err);
out:
    mt_sbuf_free(&b);
    ordered_free(&o);
    return st;
}
