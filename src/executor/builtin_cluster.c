/* builtin_cluster: k-means (k-means++ seeding from a seeded PRNG, Lloyd
 * iterations) and PCA (covariance matrix, cyclic Jacobi eigen-decomposition)
 * on numeric CSV pooled from every input slot. Both are deterministic for
 * given inputs and arguments (one thread, fixed summation order). Formats in
 * docs/builtins.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"
#include "builtin_ml.h"
#include "mt_util.h"

#define PCA_MAX_FEATURES 1024

/* Checks that every output is one of the two role slots; returns their
 * indices (-1 when not declared). */
static mt_status role_outputs(const mt_bctx *ctx, const char *fn, const char *arg1,
                              const char *dflt1, const char *arg2, const char *dflt2, long *o1,
                              long *o2, mt_err *err)
{
    const char *s1 = mt_bctx_arg(ctx, arg1), *s2 = mt_bctx_arg(ctx, arg2);
    s1 = s1 ? s1 : dflt1;
    s2 = s2 ? s2 : dflt2;
    if (strcmp(s1, s2) == 0)
        return mt_err_set(err, MT_EINVAL, "arguments '%s' and '%s' name the same slot", arg1,
                          arg2);
    *o1 = ml_output_find(ctx, s1);
    *o2 = ml_output_find(ctx, s2);
    for (size_t i = 0; i < ctx->n_outputs; i++)
        if (strcmp(ctx->outputs[i].slot, s1) != 0 && strcmp(ctx->outputs[i].slot, s2) != 0)
            return mt_err_set(err, MT_EINVAL,
                              "%s: output '%.64s' is neither '%.64s' (%s) nor '%.64s' (%s)", fn,
                              ctx->outputs[i].slot, s1, arg1, s2, arg2);
    if (*o1 < 0 && *o2 < 0)
        return mt_err_set(err, MT_EINVAL, "%s: declare an output '%.64s' or '%.64s'", fn, s1, s2);
    return MT_OK;
}

static double dist2(const double *a, const double *b, size_t p)
{
    double s = 0;
    for (size_t k = 0; k < p; k++) {
        double d = a[k] - b[k];
        s += d * d;
    }
    return s;
}

/* ------------------------------------------------------------- k-means */

/* k-means++ seeding: the first centre uniformly, each next one with
 * probability proportional to the squared distance to the nearest chosen
 * centre (any row when every distance is 0). */
static void kmeans_seed(const double *x, size_t n, size_t p, size_t k, uint64_t *rng, double *c,
                        double *d)
{
    size_t first = (size_t)(ml_rand_unit(rng) * (double)n);
    memcpy(c, x + first * p, p * sizeof *c);
    for (size_t r = 0; r < n; r++)
        d[r] = dist2(x + r * p, c, p);
    for (size_t j = 1; j < k; j++) {
        double total = 0;
        for (size_t r = 0; r < n; r++)
            total += d[r];
        size_t pick = n - 1;
        if (total > 0) {
            double u = ml_rand_unit(rng) * total, acc = 0;
            for (size_t r = 0; r < n; r++) {
                acc += d[r];
                if (acc > u && d[r] > 0) {
                    pick = r;
                    break;
                }
            }
        } else {
            pick = (size_t)(ml_rand_unit(rng) * (double)n);
        }
        memcpy(c + j * p, x + pick * p, p * sizeof *c);
        for (size_t r = 0; r < n; r++) {
            double e = dist2(x + r * p, c + j * p, p);
            if (e < d[r])
                d[r] = e;
        }
    }
}

/* Lloyd iterations until no assignment changes or max_iter; an empty
 * cluster takes the row farthest from its centre. Returns the iterations. */
static size_t kmeans_lloyd(const double *x, size_t n, size_t p, size_t k, size_t max_iter,
                           double *c, uint32_t *a, size_t *size, double *d)
{
    size_t it = 0;
    bool changed = true;
    while (changed && it < max_iter) {
        changed = false;
        it++;
        for (size_t r = 0; r < n; r++) {
            uint32_t best = 0;
            double bd = dist2(x + r * p, c, p);
            for (size_t j = 1; j < k; j++) {
                double e = dist2(x + r * p, c + j * p, p);
                if (e < bd) {
                    bd = e;
                    best = (uint32_t)j;
                }
            }
            if (it == 1 || a[r] != best)
                changed = true;
            a[r] = best;
            d[r] = bd;
        }
        memset(c, 0, k * p * sizeof *c);
        memset(size, 0, k * sizeof *size);
        for (size_t r = 0; r < n; r++) {
            size[a[r]]++;
            for (size_t q = 0; q < p; q++)
                c[a[r] * p + q] += x[r * p + q];
        }
        for (size_t j = 0; j < k; j++) {
            if (size[j] == 0) {
                size_t far = 0;
                for (size_t r = 1; r < n; r++)
                    if (d[r] > d[far])
                        far = r;
                if (d[far] > 0) {
                    size[a[far]]--;
                    for (size_t q = 0; q < p; q++)
                        c[a[far] * p + q] -= x[far * p + q];
                    a[far] = (uint32_t)j;
                    d[far] = 0;
                    size[j] = 1;
                    memcpy(c + j * p, x + far * p, p * sizeof *c);
                    changed = true;
                }
            }
        }
        for (size_t j = 0; j < k; j++)
            for (size_t q = 0; size[j] && q < p; q++)
                c[j * p + q] /= (double)size[j];
    }
    /* final assignment against the final centres */
    for (size_t r = 0; r < n; r++) {
        uint32_t best = 0;
        double bd = dist2(x + r * p, c, p);
        for (size_t j = 1; j < k; j++) {
            double e = dist2(x + r * p, c + j * p, p);
            if (e < bd) {
                bd = e;
                best = (uint32_t)j;
            }
        }
        a[r] = best;
        d[r] = bd;
    }
    memset(size, 0, k * sizeof *size);
    for (size_t r = 0; r < n; r++)
        size[a[r]]++;
    return it;
}

mt_status mt_builtin_kmeans(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"k",        "features",         "id",
                                          "seed",     "max_iter",         "centroids_slot",
                                          "assignments_slot", NULL};
    *ret = NULL;
    mt_status st;
    int64_t k, seed, max_iter;
    long oc, oa;
    if ((st = mt_arg_only(ctx, "kmeans", allowed, err)) != MT_OK)
        return st;
    if (!mt_bctx_arg(ctx, "k"))
        return mt_err_set(err, MT_EINVAL, "argument 'k' is required: the number of clusters");
    if ((st = mt_arg_int(ctx, "k", 1, 10000, 1, &k, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "seed", 0, INT64_MAX, 0, &seed, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "max_iter", 1, 100000, 300, &max_iter, err)) != MT_OK ||
        (st = role_outputs(ctx, "kmeans", "centroids_slot", "centroids", "assignments_slot",
                           "assignments", &oc, &oa, err)) != MT_OK)
        return st;
    const char *id = mt_bctx_arg(ctx, "id");
    size_t n_idx = 0, *idx = ml_inputs_except(ctx, NULL, &n_idx);
    if (!idx)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    ml_matrix m = {0};
    double *c = NULL, *d = NULL;
    uint32_t *a = NULL;
    size_t *size = NULL;
    mt_sbuf bc = {0}, ba = {0};
    size_t n = 0, p = 0, K = (size_t)k;
    ml_load_opts lo = {.features = mt_bctx_arg(ctx, "features"), .exclude = id, .idx = idx,
                       .n_idx = n_idx};
    if ((st = ml_load(ctx, &lo, id != NULL, &m, err)) != MT_OK)
        goto out;
    n = m.n;
    p = m.p;
    if (K > n) {
        st = mt_err_set(err, MT_EINVAL, "argument 'k': %zu clusters but only %zu rows", K, n);
        goto out;
    }
    if (!(c = malloc(K * p * sizeof *c)) || !(d = malloc(n * sizeof *d)) ||
        !(a = malloc(n * sizeof *a)) || !(size = malloc(K * sizeof *size))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    uint64_t rng = (uint64_t)seed;
    kmeans_seed(m.xd, n, p, K, &rng, c, d);
    size_t iters = kmeans_lloyd(m.xd, n, p, K, (size_t)max_iter, c, a, size, d);
    double inertia = 0;
    for (size_t r = 0; r < n; r++)
        inertia += d[r];
    if (oc >= 0) {
        mt_sbuf_puts(&bc, "cluster");
        for (size_t q = 0; q < p; q++) {
            mt_sbuf_put(&bc, ",", 1);
            mt_sbuf_csv_field(&bc, m.names[q], strlen(m.names[q]));
        }
        mt_sbuf_puts(&bc, ",size\n");
        for (size_t j = 0; j < K; j++) {
            mt_sbuf_printf(&bc, "%zu", j);
            for (size_t q = 0; q < p; q++) {
                mt_sbuf_put(&bc, ",", 1);
                mt_sbuf_num(&bc, c[j * p + q]);
            }
            mt_sbuf_printf(&bc, ",%zu\n", size[j]);
        }
        if ((st = ml_sbuf_write(ctx, (size_t)oc, &bc, err)) != MT_OK)
            goto out;
    }
    if (oa >= 0) {
        mt_sbuf_puts(&ba, id ? "id,cluster\n" : "cluster\n");
        for (size_t r = 0; r < n; r++) {
            if (id) {
                mt_sbuf_csv_field(&ba, m.ids[r], strlen(m.ids[r]));
                mt_sbuf_put(&ba, ",", 1);
            }
            mt_sbuf_printf(&ba, "%u\n", a[r]);
        }
        if ((st = ml_sbuf_write(ctx, (size_t)oa, &ba, err)) != MT_OK)
            goto out;
    }
    mt_bctx_log(ctx, "kmeans: %zu rows, %zu features, k %zu, %zu iterations", n, p, K, iters);
    char buf[160];
    snprintf(buf, sizeof buf, "rows: %zu, k: %zu, iterations: %zu, inertia: %.9g", n, K, iters,
             inertia);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    mt_sbuf_free(&bc);
    mt_sbuf_free(&ba);
    if (c)
        mt_wipe(c, K * p * sizeof *c);
    free(c);
    free(d);
    free(a);
    free(size);
    free(idx);
    ml_matrix_free(&m);
    return st;
}

/* ------------------------------------------------------------- PCA */

/* Cyclic Jacobi: diagonalises the symmetric a (p x p, row-major, destroyed)
 * into eigenvalues w and eigenvectors in the columns of v. */
static void jacobi_eigen(double *a, size_t p, double *w, double *v)
{
    for (size_t i = 0; i < p; i++)
        for (size_t j = 0; j < p; j++)
            v[i * p + j] = i == j;
    double norm = 0;
    for (size_t i = 0; i < p * p; i++)
        norm += a[i] * a[i];
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (size_t i = 0; i < p; i++)
            for (size_t j = i + 1; j < p; j++)
                off += a[i * p + j] * a[i * p + j];
        if (off <= norm * 1e-30 || off == 0)
            break;
        for (size_t i = 0; i < p; i++)
            for (size_t j = i + 1; j < p; j++) {
                double aij = a[i * p + j];
                if (aij == 0)
                    continue;
                double theta = (a[j * p + j] - a[i * p + i]) / (2 * aij);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double cs = 1 / sqrt(t * t + 1), sn = t * cs;
                for (size_t r = 0; r < p; r++) { /* columns i, j */
                    double ari = a[r * p + i], arj = a[r * p + j];
                    a[r * p + i] = cs * ari - sn * arj;
                    a[r * p + j] = sn * ari + cs * arj;
                }
                for (size_t r = 0; r < p; r++) { /* rows i, j */
                    double air = a[i * p + r], ajr = a[j * p + r];
                    a[i * p + r] = cs * air - sn * ajr;
                    a[j * p + r] = sn * air + cs * ajr;
                }
                for (size_t r = 0; r < p; r++) {
                    double vri = v[r * p + i], vrj = v[r * p + j];
                    v[r * p + i] = cs * vri - sn * vrj;
                    v[r * p + j] = sn * vri + cs * vrj;
                }
            }
    }
    for (size_t i = 0; i < p; i++)
        w[i] = a[i * p + i];
}

mt_status mt_builtin_pca(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"features",        "id",
                                          "components",      "scale",
                                          "components_slot", "transformed_slot",
                                          NULL};
    *ret = NULL;
    mt_status st;
    int64_t kc;
    bool scale;
    long ocomp, otr;
    if ((st = mt_arg_only(ctx, "pca", allowed, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "components", 1, PCA_MAX_FEATURES, 0, &kc, err)) != MT_OK ||
        (st = mt_arg_bool(ctx, "scale", false, &scale, err)) != MT_OK ||
        (st = role_outputs(ctx, "pca", "components_slot", "components", "transformed_slot",
                           "transformed", &ocomp, &otr, err)) != MT_OK)
        return st;
    const char *id = mt_bctx_arg(ctx, "id");
    size_t n_idx = 0, *idx = ml_inputs_except(ctx, NULL, &n_idx);
    if (!idx)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    ml_matrix m = {0};
    double *mean = NULL, *sd = NULL, *cov = NULL, *w = NULL, *v = NULL;
    size_t *order = NULL;
    mt_sbuf bc = {0}, bt = {0};
    size_t n = 0, p = 0, K = 0;
    ml_load_opts lo = {.features = mt_bctx_arg(ctx, "features"), .exclude = id, .idx = idx,
                       .n_idx = n_idx};
    if ((st = ml_load(ctx, &lo, id != NULL, &m, err)) != MT_OK)
        goto out;
    n = m.n;
    p = m.p;
    K = kc ? (size_t)kc : p;
    if (p > PCA_MAX_FEATURES) {
        st = mt_err_set(err, MT_EINVAL, "pca: %zu features, more than the limit of %d", p,
                        PCA_MAX_FEATURES);
        goto out;
    }
    if (K > p) {
        st = mt_err_set(err, MT_EINVAL, "argument 'components': %zu, but only %zu features", K,
                        p);
        goto out;
    }
    if (n < 2) {
        st = mt_err_set(err, MT_EINVAL, "pca needs at least 2 rows");
        goto out;
    }
    if (!(mean = calloc(p, sizeof *mean)) || !(sd = malloc(p * sizeof *sd)) ||
        !(cov = calloc(p * p, sizeof *cov)) || !(w = malloc(p * sizeof *w)) ||
        !(v = malloc(p * p * sizeof *v)) || !(order = malloc(p * sizeof *order))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    double *x = m.xd;
    for (size_t r = 0; r < n; r++)
        for (size_t q = 0; q < p; q++)
            mean[q] += x[r * p + q];
    for (size_t q = 0; q < p; q++)
        mean[q] /= (double)n;
    for (size_t r = 0; r < n; r++)
        for (size_t q = 0; q < p; q++)
            x[r * p + q] -= mean[q];
    for (size_t q = 0; q < p; q++) {
        double s = 0;
        for (size_t r = 0; r < n; r++)
            s += x[r * p + q] * x[r * p + q];
        sd[q] = sqrt(s / (double)(n - 1));
        if (scale && !(sd[q] > 0)) {
            /* by position: column names come from the input's header */
            st = mt_err_set(err, MT_EINVAL,
                            "pca: feature %zu (in the order used) is constant: it cannot be "
                            "scaled (scale=false or drop it)",
                            q + 1);
            goto out;
        }
    }
    if (scale)
        for (size_t r = 0; r < n; r++)
            for (size_t q = 0; q < p; q++)
                x[r * p + q] /= sd[q];
    for (size_t r = 0; r < n; r++) {
        const double *xr = x + r * p;
        for (size_t i = 0; i < p; i++)
            for (size_t j = 0; j <= i; j++)
                cov[i * p + j] += xr[i] * xr[j];
    }
    for (size_t i = 0; i < p; i++)
        for (size_t j = 0; j <= i; j++) {
            cov[i * p + j] /= (double)(n - 1);
            cov[j * p + i] = cov[i * p + j];
        }
    jacobi_eigen(cov, p, w, v);
    /* descending eigenvalues (stable for ties); each vector's largest
     * component (the first of equals) made positive */
    for (size_t i = 0; i < p; i++) {
        size_t j = i;
        while (j > 0 && w[order[j - 1]] < w[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    double total = 0, kept = 0;
    for (size_t i = 0; i < p; i++)
        total += w[i] > 0 ? w[i] : 0;
    for (size_t c = 0; c < p; c++) {
        size_t e = order[c], big = 0;
        for (size_t q = 1; q < p; q++)
            if (fabs(v[q * p + e]) > fabs(v[big * p + e]) * (1 + 1e-12))
                big = q;
        if (v[big * p + e] < 0)
            for (size_t q = 0; q < p; q++)
                v[q * p + e] = -v[q * p + e];
    }
    if (ocomp >= 0) {
        mt_sbuf_puts(&bc, "component,explained_variance,explained_variance_ratio");
        for (size_t q = 0; q < p; q++) {
            mt_sbuf_put(&bc, ",", 1);
            mt_sbuf_csv_field(&bc, m.names[q], strlen(m.names[q]));
        }
        mt_sbuf_puts(&bc, "\nmean,,");
        for (size_t q = 0; q < p; q++) {
            mt_sbuf_put(&bc, ",", 1);
            mt_sbuf_num(&bc, mean[q]);
        }
        if (scale) {
            mt_sbuf_puts(&bc, "\nscale,,");
            for (size_t q = 0; q < p; q++) {
                mt_sbuf_put(&bc, ",", 1);
                mt_sbuf_num(&bc, sd[q]);
            }
        }
        mt_sbuf_put(&bc, "\n", 1);
    }
    for (size_t c = 0; c < K; c++) {
        size_t e = order[c];
        double ev = w[e] > 0 ? w[e] : 0;
        kept += ev;
        if (ocomp < 0)
            continue;
        mt_sbuf_printf(&bc, "%zu,", c + 1);
        mt_sbuf_num(&bc, ev);
        mt_sbuf_put(&bc, ",", 1);
        mt_sbuf_num(&bc, total > 0 ? ev / total : 0);
        for (size_t q = 0; q < p; q++) {
            mt_sbuf_put(&bc, ",", 1);
            mt_sbuf_num(&bc, v[q * p + e]);
        }
        mt_sbuf_put(&bc, "\n", 1);
    }
    if (ocomp >= 0 && (st = ml_sbuf_write(ctx, (size_t)ocomp, &bc, err)) != MT_OK)
        goto out;
    if (otr >= 0) {
        if (id)
            mt_sbuf_puts(&bt, "id,");
        for (size_t c = 0; c < K; c++)
            mt_sbuf_printf(&bt, c ? ",pc%zu" : "pc%zu", c + 1);
        mt_sbuf_put(&bt, "\n", 1);
        for (size_t r = 0; r < n; r++) {
            if (id) {
                mt_sbuf_csv_field(&bt, m.ids[r], strlen(m.ids[r]));
                mt_sbuf_put(&bt, ",", 1);
            }
            for (size_t c = 0; c < K; c++) {
                double s = 0;
                for (size_t q = 0; q < p; q++)
                    s += x[r * p + q] * v[q * p + order[c]];
                if (c)
                    mt_sbuf_put(&bt, ",", 1);
                mt_sbuf_num(&bt, s);
            }
            mt_sbuf_put(&bt, "\n", 1);
        }
        if ((st = ml_sbuf_write(ctx, (size_t)otr, &bt, err)) != MT_OK)
            goto out;
    }
    mt_bctx_log(ctx, "pca: %zu rows, %zu features, %zu components", n, p, K);
    char buf[160];
    snprintf(buf, sizeof buf, "rows: %zu, components: %zu, explained variance ratio: %.6f", n, K,
             total > 0 ? kept / total : 0.0);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    mt_sbuf_free(&bc);
    mt_sbuf_free(&bt);
    free(mean);
    free(sd);
    if (cov)
        mt_wipe(cov, p * p * sizeof *cov);
    free(cov);
    free(w);
    free(v);
    free(order);
    free(idx);
    ml_matrix_free(&m);
    return st;
}
