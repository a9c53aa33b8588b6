/* Tests of the oneDNN backend (src/nn/nn_dnnl.c): every function against a naive
 * reference computed here in double, on seeded random data and shapes chosen to hit the
 * awkward cases (groups, depthwise, dilation, asymmetric pads, stride 2, 1x1, transposed
 * with output padding, all Gemm transposes and C broadcasts, MatMul batch broadcast,
 * pooling with/without pads in the count and ceil mode, LRN, softmax on several axes).
 *
 * Tolerance: for sums of products (Conv, Gemm, MatMul) |got - ref| <= 1e-5 * S + 1e-6,
 * S = sum of |terms| of that output (float accumulation in any order stays far below:
 * about K * 6e-8 * S in the worst case, K <= 600 here, and oneDNN's blocked sums do
 * better); for the others |got - ref| <= 1e-5 * (1 + |ref|). A wrong index or a missing
 * term is off by far more. Cached calls and the uncached call are compared bit for bit
 * where they run the same primitive. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn_dnnl.h"
#include "nn_dnnl_priv.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rnd(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static float *fzero(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static double post(const mt_nn_post *p, double v)
{
    switch (p->kind) {
    case MT_NN_POST_RELU:
        return v > 0 ? v : 0;
    case MT_NN_POST_CLIP:
        return v < p->lo ? p->lo : v > p->hi ? p->hi : v;
    case MT_NN_POST_LEAKY_RELU:
        return v < 0 ? p->alpha * v : v;
    default:
        return v;
    }
}

/* got vs ref with per-element scale S (sum of |terms|), or S == NULL: relative */
static void check_close(const char *what, const float *got, const double *ref, const double *S,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double tol = S ? 1e-5 * S[i] + 1e-6 : 1e-5 * (1.0 + fabs(ref[i]));
        if (!(fabs((double)got[i] - ref[i]) <= tol))
            fail_msg("%s: element %zu: got %.9g want %.9g (tol %.3g)", what, i, got[i], ref[i],
                     tol);
    }
}

static mt_nn_dnnl *new_ctx(int threads)
{
    char err[256];
    mt_nn_dnnl *ctx = mt_nn_dnnl_create(threads, err, sizeof err);
    if (!ctx)
        fail_msg("create: %s", err);
    return ctx;
}

/* ---- Conv / ConvTranspose --------------------------------------------------------- */

static void conv_ref(const mt_nn_conv_desc *d, const float *x, const float *w, const float *b,
                     double *y, double *S)
{
    int64_t g = d->group, cg = d->c / g, mg = d->m / g;
    size_t ny = (size_t)(d->n * d->m * d->oh * d->ow);
    for (size_t i = 0; i < ny; i++)
        y[i] = S[i] = 0;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t gi = 0; gi < g; gi++)
            for (int64_t ic = 0; ic < cg; ic++)
                for (int64_t om = 0; om < mg; om++)
                    for (int64_t ky = 0; ky < d->kh; ky++)
                        for (int64_t kx = 0; kx < d->kw; kx++) {
                            int64_t c = gi * cg + ic, m = gi * mg + om;
                            double wv = d->transposed
                                ? w[((c * mg + om) * d->kh + ky) * d->kw + kx]
                                : w[((m * cg + ic) * d->kh + ky) * d->kw + kx];
                            if (!d->transposed) {
                                for (int64_t oy = 0; oy < d->oh; oy++) {
                                    int64_t iy = oy * d->stride_h - d->pad_t + ky * d->dil_h;
                                    if (iy < 0 || iy >= d->h)
                                        continue;
                                    for (int64_t ox = 0; ox < d->ow; ox++) {
                                        int64_t ix = ox * d->stride_w - d->pad_l + kx * d->dil_w;
                                        if (ix < 0 || ix >= d->w)
                                            continue;
                                        double t = wv * x[((n * d->c + c) * d->h + iy) * d->w + ix];
                                        size_t o = (size_t)(((n * d->m + m) * d->oh + oy) * d->ow + ox);
                                        y[o] += t;
                                        S[o] += fabs(t);
                                    }
                                }
                            } else {
                                for (int64_t iy = 0; iy < d->h; iy++) {
                                    int64_t oy = iy * d->stride_h - d->pad_t + ky * d->dil_h;
                                    if (oy < 0 || oy >= d->oh)
                                        continue;
                                    for (int64_t ix = 0; ix < d->w; ix++) {
                                        int64_t ox = ix * d->stride_w - d->pad_l + kx * d->dil_w;
                                        if (ox < 0 || ox >= d->ow)
                                            continue;
                                        double t = wv * x[((n * d->c + c) * d->h + iy) * d->w + ix];
                                        size_t o = (size_t)(((n * d->m + m) * d->oh + oy) * d->ow + ox);
                                        y[o] += t;
                                        S[o] += fabs(t);
                                    }
                                }
                            }
                        }
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t m = 0; m < d->m; m++)
            for (int64_t i = 0; i < d->oh * d->ow; i++) {
                size_t o = (size_t)((n * d->m + m) * d->oh * d->ow + i);
                if (b) {
                    y[o] += b[m];
                    S[o] += fabs(b[m]);
                }
                y[o] = post(&d->post, y[o]);
            }
}

static void conv_fill_out(mt_nn_conv_desc *d)
{
    int64_t ekh = (d->kh - 1) * d->dil_h + 1, ekw = (d->kw - 1) * d->dil_w + 1;
    if (d->transposed) {
        d->oh = d->stride_h * (d->h - 1) + d->out_pad_h + ekh - d->pad_t - d->pad_b;
        d->ow = d->stride_w * (d->w - 1) + d->out_pad_w + ekw - d->pad_l - d->pad_r;
    } else {
        d->oh = (d->h + d->pad_t + d->pad_b - ekh) / d->stride_h + 1;
        d->ow = (d->w + d->pad_l + d->pad_r - ekw) / d->stride_w + 1;
    }
}

/* Runs d uncached, cached twice, in both activation layouts; checks against conv_ref. */
static void conv_case(mt_nn_dnnl *ctx, mt_nn_conv_desc d, int with_bias, const char *name)
{
    conv_fill_out(&d);
    size_t nx = (size_t)(d.n * d.c * d.h * d.w), ny = (size_t)(d.n * d.m * d.oh * d.ow);
    size_t nw = (size_t)(d.transposed ? d.c * (d.m / d.group) * d.kh * d.kw
                                      : d.m * (d.c / d.group) * d.kh * d.kw);
    float *x = rnd(nx), *w = rnd(nw), *b = with_bias ? rnd((size_t)d.m) : NULL;
    float *y0 = fzero(ny), *y1 = fzero(ny), *y2 = fzero(ny);
    double *ref = malloc(ny * sizeof *ref), *S = malloc(ny * sizeof *S);
    assert_non_null(ref);
    assert_non_null(S);
    conv_ref(&d, x, w, b, ref, S);
    char err[256] = "";
    static int keys[64];
    static int next;
    for (int blocked = 1; blocked >= 0; blocked--) {
        mt_nn_dnnl_set_blocked(ctx, blocked);
        int rc = mt_nn_dnnl_conv(ctx, NULL, &d, x, w, b, y0, err, sizeof err);
        if (rc)
            fail_msg("%s (blocked %d): rc %d: %s", name, blocked, rc, err);
        check_close(name, y0, ref, S, ny);
        const void *key = &keys[next++ % 64];
        assert_int_equal(mt_nn_dnnl_conv(ctx, key, &d, x, w, b, y1, err, sizeof err), 0);
        assert_int_equal(mt_nn_dnnl_conv(ctx, key, &d, x, w, b, y2, err, sizeof err), 0);
        assert_memory_equal(y0, y1, ny * sizeof *y0);
        assert_memory_equal(y1, y2, ny * sizeof *y1);
    }
    mt_nn_dnnl_set_blocked(ctx, 1);
    free(x);
    free(w);
    free(b);
    free(y0);
    free(y1);
    free(y2);
    free(ref);
    free(S);
}

static mt_nn_conv_desc cdesc(int64_t n, int64_t c, int64_t h, int64_t w, int64_t m, int64_t k,
                             int64_t group, int64_t stride, int64_t dil)
{
    mt_nn_conv_desc d;
    memset(&d, 0, sizeof d);
    d.n = n; d.c = c; d.h = h; d.w = w; d.m = m; d.kh = k; d.kw = k; d.group = group;
    d.stride_h = d.stride_w = stride;
    d.dil_h = d.dil_w = dil;
    return d;
}

static void test_conv(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(2);
    mt_nn_conv_desc d = cdesc(1, 3, 9, 7, 5, 3, 1, 1, 1);
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    conv_case(ctx, d, 1, "conv 3x3 pad 1 bias");
    d = cdesc(2, 16, 8, 8, 24, 1, 1, 1, 1);
    conv_case(ctx, d, 0, "conv 1x1 no bias");
    d = cdesc(1, 8, 11, 10, 12, 3, 4, 2, 1); /* groups, stride 2, asymmetric pads */
    d.pad_t = 0; d.pad_l = 1; d.pad_b = 2; d.pad_r = 0;
    d.post.kind = MT_NN_POST_RELU;
    conv_case(ctx, d, 1, "group conv stride 2 asym pads relu");
    d = cdesc(1, 16, 10, 10, 16, 3, 16, 1, 1); /* depthwise */
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    d.post = (mt_nn_post){MT_NN_POST_CLIP, 0.0f, 0.25f, 0.0f};
    conv_case(ctx, d, 1, "depthwise relu6-like clip");
    d = cdesc(1, 6, 13, 12, 4, 3, 2, 1, 2); /* dilation 2, grouped */
    d.pad_t = 2; d.pad_b = 1; d.pad_l = 0; d.pad_r = 2;
    d.post = (mt_nn_post){MT_NN_POST_LEAKY_RELU, 0, 0, 0.1f};
    conv_case(ctx, d, 1, "dilated leaky relu");
    d = cdesc(1, 3, 23, 21, 8, 7, 1, 2, 1); /* first-layer-like 7x7 s2 */
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 3;
    conv_case(ctx, d, 1, "7x7 stride 2");
    d = cdesc(1, 5, 6, 5, 7, 2, 1, 1, 1); /* even kernel, different h/w strides */
    d.stride_h = 2; d.stride_w = 1; d.kw = 3; d.dil_w = 2;
    conv_case(ctx, d, 1, "2x3 kernel mixed strides");

    /* ConvTranspose */
    d = cdesc(1, 4, 5, 6, 3, 3, 1, 2, 1);
    d.transposed = 1;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    d.out_pad_h = d.out_pad_w = 1;
    conv_case(ctx, d, 1, "convtranspose stride 2 out_pad 1");
    d = cdesc(2, 6, 4, 5, 4, 3, 2, 2, 1);
    d.transposed = 1;
    d.pad_t = 0; d.pad_l = 1; d.pad_b = 1; d.pad_r = 0;
    d.post.kind = MT_NN_POST_RELU;
    conv_case(ctx, d, 0, "grouped convtranspose asym pads");
    d = cdesc(1, 3, 4, 4, 2, 2, 1, 1, 2);
    d.transposed = 1;
    conv_case(ctx, d, 1, "dilated convtranspose");
    d = cdesc(1, 5, 4, 3, 6, 3, 1, 2, 1);
    d.transposed = 1;
    d.stride_w = 3;
    d.out_pad_h = 1; /* beyond pad_b: oneDNN sees a negative right padding */
    d.out_pad_w = 2;
    d.pad_l = 1;
    conv_case(ctx, d, 1, "convtranspose out_pad beyond pads");
    d = cdesc(1, 8, 7, 7, 8, 1, 1, 2, 1);
    d.transposed = 1;
    d.out_pad_h = d.out_pad_w = 1;
    conv_case(ctx, d, 1, "convtranspose 1x1 stride 2 out_pad");
    mt_nn_dnnl_free(ctx);
}

static void test_conv_cache(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(1);
    mt_nn_conv_desc d = cdesc(1, 16, 8, 8, 32, 3, 1, 1, 1);
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    conv_fill_out(&d);
    size_t nx = 16 * 64, nw = 32 * 16 * 9, ny = 32 * 64;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(32), *y = fzero(ny), *y2 = fzero(ny);
    char err[256];
    int key;
    mt_nn_dnnl_stats st0, st1, st2;
    assert_int_equal(mt_nn_dnnl_conv(ctx, &key, &d, x, w, b, y, err, sizeof err), 0);
    mt_nn_dnnl_stats_get(ctx, &st0);
    assert_int_equal(st0.entries, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mt_nn_dnnl_conv(ctx, &key, &d, x, w, b, y2, err, sizeof err), 0);
    mt_nn_dnnl_stats_get(ctx, &st1);
    assert_memory_equal(y, y2, ny * sizeof *y);
    /* warm: nothing built, weights reordered at most once, arena not regrown */
    assert_int_equal(st1.entries, 1);
    assert_int_equal(st1.builds, st0.builds);
    assert_int_equal(st1.weight_reorders, st0.weight_reorders);
    assert_true(st0.weight_reorders <= 1);
    assert_int_equal(st1.arena_grows, st0.arena_grows);
    /* the cache keeps the reordered weights: a second key with other weights differs */
    float *w2 = rnd(nw);
    int key2;
    assert_int_equal(mt_nn_dnnl_conv(ctx, &key2, &d, x, w2, b, y2, err, sizeof err), 0);
    assert_memory_not_equal(y, y2, ny * sizeof *y);
    /* uncached calls are not kept */
    assert_int_equal(mt_nn_dnnl_conv(ctx, NULL, &d, x, w, b, y2, err, sizeof err), 0);
    assert_memory_equal(y, y2, ny * sizeof *y);
    mt_nn_dnnl_stats_get(ctx, &st2);
    assert_int_equal(st2.entries, 2);
    free(x);
    free(w);
    free(w2);
    free(b);
    free(y);
    free(y2);
    mt_nn_dnnl_free(ctx);
}

/* ---- Gemm / MatMul --------------------------------------------------------------- */

static void gemm_case(mt_nn_dnnl *ctx, mt_nn_gemm_desc d, int with_c)
{
    size_t M = (size_t)d.m, K = (size_t)d.k, N = (size_t)d.n;
    float *a = rnd(M * K), *b = rnd(K * N), *c = with_c ? rnd((size_t)(d.c_rows * d.c_cols)) : NULL;
    float *y0 = fzero(M * N), *y1 = fzero(M * N), *y2 = fzero(M * N);
    double *ref = malloc(M * N * sizeof *ref), *S = malloc(M * N * sizeof *S);
    assert_non_null(ref);
    assert_non_null(S);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (size_t k = 0; k < K; k++) {
                double av = d.trans_a ? a[k * M + i] : a[i * K + k];
                double bv = d.trans_b ? b[j * K + k] : b[k * N + j];
                s += av * bv;
                sa += fabs(av * bv);
            }
            s *= d.alpha;
            sa *= fabs(d.alpha);
            if (c) {
                double cv = c[(d.c_rows == 1 ? 0 : i) * (size_t)d.c_cols + (d.c_cols == 1 ? 0 : j)];
                s += d.beta * cv;
                sa += fabs(d.beta * cv);
            }
            ref[i * N + j] = post(&d.post, s);
            S[i * N + j] = sa;
        }
    char err[256] = "", name[128];
    snprintf(name, sizeof name, "gemm %zux%zux%zu ta %d tb %d c %lldx%lld alpha %g beta %g", M, K,
             N, d.trans_a, d.trans_b, (long long)d.c_rows, (long long)d.c_cols, d.alpha, d.beta);
    int rc = mt_nn_dnnl_gemm(ctx, NULL, &d, a, b, c, y0, err, sizeof err);
    if (rc)
        fail_msg("%s: rc %d: %s", name, rc, err);
    check_close(name, y0, ref, S, M * N);
    static int key[32];
    static int next;
    const void *k = &key[next++ % 32];
    assert_int_equal(mt_nn_dnnl_gemm(ctx, k, &d, a, b, c, y1, err, sizeof err), 0);
    assert_int_equal(mt_nn_dnnl_gemm(ctx, k, &d, a, b, c, y2, err, sizeof err), 0);
    check_close(name, y1, ref, S, M * N);
    assert_memory_equal(y1, y2, M * N * sizeof *y1);
    free(a);
    free(b);
    free(c);
    free(y0);
    free(y1);
    free(y2);
    free(ref);
    free(S);
}

/* Layouts kept between convolutions (mt_nn_dnnl_conv_io): A's output left blocked and
 * read as such by B gives B's plain-path result; to_plain restores A's NCHW output; no
 * blocked output without room, without a key, or when not asked. */
static void close_rel(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i])))
            fail_msg("%s: element %zu: %g vs %g", what, i, (double)got[i], (double)want[i]);
}

static void test_conv_layouts(void **state)
{
    (void)state;
    char err[256] = "";
    mt_nn_dnnl *ctx = mt_nn_dnnl_create(1, err, sizeof err);
    assert_non_null(ctx);
    mt_nn_conv_desc a = cdesc(2, 16, 9, 9, 24, 3, 1, 1, 1), b = cdesc(2, 24, 9, 9, 20, 1, 1, 1, 1);
    a.pad_t = a.pad_l = a.pad_b = a.pad_r = 1;
    a.post.kind = MT_NN_POST_RELU;
    conv_fill_out(&a);
    conv_fill_out(&b);
    size_t nx = 2 * 16 * 81, na = 2 * 24 * 81, nb = 2 * 20 * 81;
    size_t cap = MT_NN_DNNL_BLOCKED_BYTES(2, 24, 9, 9);
    float *x = rnd(nx), *wa = rnd(24 * 16 * 9), *ba = rnd(24), *wb = rnd(20 * 24);
    float *ya = fzero(na), *yb = fzero(nb), *yab = fzero(cap / sizeof(float)),
          *ybb = fzero(nb), *tmp = fzero(cap / sizeof(float));
    static int ka, kb, ka2, kb2;
    /* plain path */
    assert_int_equal(mt_nn_dnnl_conv(ctx, &ka, &a, x, wa, ba, ya, err, sizeof err), 0);
    assert_int_equal(mt_nn_dnnl_conv(ctx, &kb, &b, ya, wb, NULL, yb, err, sizeof err), 0);
    /* kept layout: twice (the second run uses the cached entries) */
    for (int round = 0; round < 2; round++) {
        mt_nn_dnnl_stats st0, st1;
        mt_nn_dnnl_stats_get(ctx, &st0);
        mt_nn_dnnl_io io1 = {NULL, cap, NULL};
        assert_int_equal(mt_nn_dnnl_conv_io(ctx, &ka2, &a, x, wa, ba, yab, &io1, err, sizeof err), 0);
        assert_non_null(io1.y_layout); /* oneDNN prefers nChw8c/16c on x86-64 */
        mt_nn_dnnl_io io2 = {io1.y_layout, 0, NULL};
        assert_int_equal(mt_nn_dnnl_conv_io(ctx, &kb2, &b, yab, wb, NULL, ybb, &io2, err, sizeof err), 0);
        assert_null(io2.y_layout);
        close_rel("B after a kept layout", ybb, yb, nb);
        memcpy(tmp, yab, cap);
        assert_int_equal(mt_nn_dnnl_to_plain(ctx, io1.y_layout, tmp, err, sizeof err), 0);
        close_rel("A back to NCHW", tmp, ya, na);
        mt_nn_dnnl_stats_get(ctx, &st1);
        assert_int_equal(st1.blocked_outputs, st0.blocked_outputs + 1);
        assert_int_equal(st1.to_plain, st0.to_plain + 1);
    }
    /* the blocked data is not NCHW (else the test above proves nothing) */
    int differs = 0;
    for (size_t i = 0; i < na && !differs; i++)
        differs = yab[i] != ya[i];
    assert_true(differs);
    /* no room, no key, not asked: NCHW out */
    static int kc;
    mt_nn_dnnl_io io3 = {NULL, 64, NULL};
    assert_int_equal(mt_nn_dnnl_conv_io(ctx, &kc, &a, x, wa, ba, tmp, &io3, err, sizeof err), 0);
    assert_null(io3.y_layout);
    close_rel("A without room", tmp, ya, na);
    mt_nn_dnnl_io io4 = {NULL, cap, NULL};
    assert_int_equal(mt_nn_dnnl_conv_io(ctx, NULL, &a, x, wa, ba, tmp, &io4, err, sizeof err), 0);
    assert_null(io4.y_layout);
    close_rel("A without a key", tmp, ya, na);
    /* a NULL layout is already plain; bad arguments */
    assert_int_equal(mt_nn_dnnl_to_plain(ctx, NULL, tmp, err, sizeof err), 0);
    close_rel("to_plain(NULL) leaves the data", tmp, ya, na);
    assert_int_equal(mt_nn_dnnl_to_plain(ctx, NULL, NULL, err, sizeof err), MT_NN_DNNL_EINVAL);
    assert_int_equal(mt_nn_dnnl_conv_io(ctx, &kc, &a, x, wa, ba, tmp, NULL, err, sizeof err),
                     MT_NN_DNNL_EINVAL);
    free(x); free(wa); free(ba); free(wb); free(ya); free(yb); free(yab); free(ybb); free(tmp);
    mt_nn_dnnl_free(ctx);
}

static void test_gemm(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(2);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            mt_nn_gemm_desc d = {7, 13, 5, ta, tb, 1.0f, 1.0f, 7, 5, {0}};
            gemm_case(ctx, d, 1); /* full C */
            d.c_rows = 1;
            d.alpha = 0.5f;
            d.beta = 2.0f;
            gemm_case(ctx, d, 1); /* C as a row */
            d.c_rows = 7;
            d.c_cols = 1;
            gemm_case(ctx, d, 1); /* C as a column */
            d.c_rows = 1;
            d.post.kind = MT_NN_POST_RELU;
            gemm_case(ctx, d, 1); /* scalar C, relu */
            gemm_case(ctx, d, 0); /* no C */
        }
    mt_nn_gemm_desc fc = {1, 300, 37, 0, 1, 1.0f, 1.0f, 1, 37, {0}};
    gemm_case(ctx, fc, 1); /* fully connected at batch 1 (torch Linear: B transposed) */
    fc.m = 8;
    fc.post = (mt_nn_post){MT_NN_POST_CLIP, -0.5f, 0.5f, 0};
    gemm_case(ctx, fc, 1);
    mt_nn_gemm_desc z = {3, 4, 5, 0, 0, 1.0f, 0.0f, 3, 5, {0}};
    gemm_case(ctx, z, 1); /* beta 0: C ignored */
    mt_nn_dnnl_free(ctx);
}

static void matmul_case(mt_nn_dnnl *ctx, int64_t batch, int64_t ab, int64_t bb, int64_t m,
                        int64_t k, int64_t n, const void *key)
{
    float *a = rnd((size_t)(ab * m * k)), *b = rnd((size_t)(bb * k * n));
    size_t ny = (size_t)(batch * m * n);
    float *y = fzero(ny), *y2 = fzero(ny);
    double *ref = malloc(ny * sizeof *ref), *S = malloc(ny * sizeof *S);
    assert_non_null(ref);
    assert_non_null(S);
    for (int64_t t = 0; t < batch; t++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                const float *ap = a + (ab == 1 ? 0 : t) * m * k;
                const float *bp = b + (bb == 1 ? 0 : t) * k * n;
                double s = 0, sa = 0;
                for (int64_t q = 0; q < k; q++) {
                    double v = (double)ap[i * k + q] * bp[q * n + j];
                    s += v;
                    sa += fabs(v);
                }
                ref[(t * m + i) * n + j] = s;
                S[(t * m + i) * n + j] = sa;
            }
    char err[256] = "";
    int rc = mt_nn_dnnl_matmul(ctx, key, batch, ab, bb, m, k, n, a, b, y, err, sizeof err);
    if (rc)
        fail_msg("matmul: rc %d: %s", rc, err);
    check_close("matmul", y, ref, S, ny);
    assert_int_equal(mt_nn_dnnl_matmul(ctx, key, batch, ab, bb, m, k, n, a, b, y2, err, sizeof err), 0);
    assert_memory_equal(y, y2, ny * sizeof *y);
    free(a);
    free(b);
    free(y);
    free(y2);
    free(ref);
    free(S);
}

static void test_matmul(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(2);
    int k1, k2;
    matmul_case(ctx, 1, 1, 1, 5, 7, 3, NULL);
    matmul_case(ctx, 4, 4, 4, 6, 9, 11, &k1);
    matmul_case(ctx, 3, 1, 3, 8, 5, 4, &k2); /* A broadcast */
    matmul_case(ctx, 3, 3, 1, 8, 5, 4, NULL); /* B broadcast */
    matmul_case(ctx, 2, 2, 2, 1, 64, 1, NULL);
    /* a cached MatMul still reads B on every call (it is not a constant weight) */
    float *a = rnd(12), *b = rnd(12), *y1 = fzero(9), *y2 = fzero(9);
    char err[256];
    assert_int_equal(mt_nn_dnnl_matmul(ctx, &k1, 1, 1, 1, 3, 4, 3, a, b, y1, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        b[i] = -b[i];
    assert_int_equal(mt_nn_dnnl_matmul(ctx, &k1, 1, 1, 1, 3, 4, 3, a, b, y2, err, sizeof err), 0);
    for (int i = 0; i < 9; i++)
        assert_true(y1[i] == -y2[i]);
    free(a);
    free(b);
    free(y1);
    free(y2);
    mt_nn_dnnl_free(ctx);
}

/* ---- pooling ------------------------------------------------------------------ */

static void pool_case(mt_nn_dnnl *ctx, mt_nn_pool_desc d, int ceil_mode)
{
    int64_t ekh = (d.kh - 1) * d.dil_h + 1, ekw = (d.kw - 1) * d.dil_w + 1;
    int64_t sh = d.h + d.pad_t + d.pad_b - ekh, sw = d.w + d.pad_l + d.pad_r - ekw;
    d.oh = (ceil_mode ? (sh + d.stride_h - 1) : sh) / d.stride_h + 1;
    d.ow = (ceil_mode ? (sw + d.stride_w - 1) : sw) / d.stride_w + 1;
    size_t nx = (size_t)(d.n * d.c * d.h * d.w), ny = (size_t)(d.n * d.c * d.oh * d.ow);
    float *x = rnd(nx), *y = fzero(ny);
    double *ref = malloc(ny * sizeof *ref);
    assert_non_null(ref);
    for (int64_t p = 0; p < d.n * d.c; p++)
        for (int64_t oy = 0; oy < d.oh; oy++)
            for (int64_t ox = 0; ox < d.ow; ox++) {
                double acc = d.max ? -INFINITY : 0;
                int64_t cnt = 0, cnt_pad = 0;
                for (int64_t ky = 0; ky < d.kh; ky++)
                    for (int64_t kx = 0; kx < d.kw; kx++) {
                        int64_t iy = oy * d.stride_h - d.pad_t + ky * d.dil_h;
                        int64_t ix = ox * d.stride_w - d.pad_l + kx * d.dil_w;
                        if (iy < d.h + d.pad_b && ix < d.w + d.pad_r)
                            cnt_pad++;
                        if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w)
                            continue;
                        double v = x[(p * d.h + iy) * d.w + ix];
                        cnt++;
                        if (d.max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                    }
                if (!d.max)
                    acc /= (double)(d.avg_include_pad ? cnt_pad : cnt);
                ref[(p * d.oh + oy) * d.ow + ox] = acc;
            }
    char err[256] = "";
    int rc = mt_nn_dnnl_pool(ctx, &d, x, y, err, sizeof err);
    if (rc)
        fail_msg("pool max %d incl %d ceil %d: rc %d: %s", d.max, d.avg_include_pad, ceil_mode,
                 rc, err);
    check_close("pool", y, ref, NULL, ny);
    free(x);
    free(y);
    free(ref);
}

static void test_pool(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(2);
    for (int kind = 0; kind < 3; kind++) {
        mt_nn_pool_desc d;
        memset(&d, 0, sizeof d);
        d.max = kind == 0;
        d.avg_include_pad = kind == 2;
        d.n = 2; d.c = 3; d.h = 9; d.w = 8;
        d.kh = d.kw = 3; d.stride_h = d.stride_w = 2; d.dil_h = d.dil_w = 1;
        d.pad_t = d.pad_l = 1; d.pad_b = d.pad_r = 1;
        pool_case(ctx, d, 0);
        d.pad_t = 0; d.pad_l = 2; d.pad_b = 1; d.pad_r = 0; /* asymmetric */
        pool_case(ctx, d, 0);
        d.kh = 2; d.kw = 3; d.stride_h = 1; d.stride_w = 3;
        d.pad_t = d.pad_l = d.pad_b = d.pad_r = 0;
        pool_case(ctx, d, 0);
        if (!d.avg_include_pad)
            pool_case(ctx, d, 1); /* ceil mode */
        d.kh = d.kw = 2; d.dil_h = d.dil_w = 2; d.stride_h = d.stride_w = 1;
        pool_case(ctx, d, 0); /* dilation */
        d.kh = d.h; d.kw = d.w; d.dil_h = d.dil_w = 1; /* global */
        pool_case(ctx, d, 0);
    }
    /* ceil mode with count_include_pad: left to the reference kernel */
    mt_nn_pool_desc d = {0, 1, 1, 1, 5, 5, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0};
    float x[25] = {0}, y[9];
    char err[256] = "";
    assert_int_equal(mt_nn_dnnl_pool(ctx, &d, x, y, err, sizeof err), MT_NN_DNNL_EUNSUPPORTED);
    mt_nn_dnnl_free(ctx);
}

/* ---- BatchNorm, LRN, Softmax -------------------------------------------------------- */

static void test_batchnorm(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(1);
    const int64_t shapes[][3] = {{2, 5, 7}, {1, 16, 1}, {3, 1, 10}};
    for (int t = 0; t < 3; t++) {
        int64_t n = shapes[t][0], c = shapes[t][1], s = shapes[t][2];
        size_t nx = (size_t)(n * c * s);
        float *x = rnd(nx), *y = fzero(nx), *sc = rnd((size_t)c), *bi = rnd((size_t)c);
        float *mean = rnd((size_t)c), *var = rnd((size_t)c);
        for (int64_t i = 0; i < c; i++)
            var[i] = fabsf(var[i]) + 0.1f;
        double *ref = malloc(nx * sizeof *ref);
        assert_non_null(ref);
        float eps = 1e-5f;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++)
                for (int64_t q = 0; q < s; q++) {
                    size_t o = (size_t)((i * c + j) * s + q);
                    ref[o] = sc[j] * (x[o] - mean[j]) / sqrt((double)var[j] + eps) + bi[j];
                }
        char err[256] = "";
        int rc = mt_nn_dnnl_batchnorm(ctx, n, c, s, eps, sc, bi, mean, var, x, y, err, sizeof err);
        if (rc)
            fail_msg("batchnorm: rc %d: %s", rc, err);
        check_close("batchnorm", y, ref, NULL, nx);
        free(x); free(y); free(sc); free(bi); free(mean); free(var); free(ref);
    }
    mt_nn_dnnl_free(ctx);
}

static void test_lrn(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(2);
    const int64_t shapes[][5] = {{1, 7, 4, 5, 3}, {2, 10, 3, 3, 5}, {1, 4, 2, 2, 1}};
    for (int t = 0; t < 3; t++) {
        int64_t n = shapes[t][0], c = shapes[t][1], h = shapes[t][2], w = shapes[t][3];
        int64_t size = shapes[t][4];
        float alpha = 1e-2f, beta = 0.75f, bias = 2.0f;
        if (t == 1) {
            alpha = 2e-4f;
            bias = 1.0f;
        }
        size_t nx = (size_t)(n * c * h * w);
        float *x = rnd(nx), *y = fzero(nx);
        double *ref = malloc(nx * sizeof *ref);
        assert_non_null(ref);
        int64_t lo = (size - 1) / 2, hi = size / 2; /* floor / ceil of (size-1)/2 */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++)
                for (int64_t p = 0; p < h * w; p++) {
                    double sq = 0;
                    for (int64_t q = j - lo; q <= j + hi; q++) {
                        if (q < 0 || q >= c)
                            continue;
                        double v = x[(i * c + q) * h * w + p];
                        sq += v * v;
                    }
                    size_t o = (size_t)((i * c + j) * h * w + p);
                    ref[o] = x[o] / pow(bias + alpha / (double)size * sq, beta);
                }
        char err[256] = "";
        int rc = mt_nn_dnnl_lrn(ctx, n, c, h, w, size, alpha, beta, bias, x, y, err, sizeof err);
        if (rc)
            fail_msg("lrn: rc %d: %s", rc, err);
        check_close("lrn", y, ref, NULL, nx);
        free(x); free(y); free(ref);
    }
    float x[16] = {0}, y[16];
    char err[256] = "";
    assert_int_equal(mt_nn_dnnl_lrn(ctx, 1, 4, 2, 2, 2, 1e-4f, 0.75f, 1.0f, x, y, err, sizeof err),
                     MT_NN_DNNL_EUNSUPPORTED);
    mt_nn_dnnl_free(ctx);
}

static void test_softmax(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(2);
    /* [outer, axis, inner]: last axis, middle axis, first axis, axis of length 1 */
    const int64_t shapes[][3] = {{6, 10, 1}, {2, 7, 9}, {1, 5, 12}, {3, 1, 4}, {1, 1000, 1}};
    for (int log = 0; log < 2; log++)
        for (int t = 0; t < 5; t++) {
            int64_t o = shapes[t][0], a = shapes[t][1], in = shapes[t][2];
            size_t nx = (size_t)(o * a * in);
            float *x = rnd(nx), *y = fzero(nx);
            for (size_t i = 0; i < nx; i++)
                x[i] *= 20.0f; /* large range: needs the max subtraction */
            double *ref = malloc(nx * sizeof *ref);
            assert_non_null(ref);
            for (int64_t i = 0; i < o; i++)
                for (int64_t q = 0; q < in; q++) {
                    double mx = -INFINITY, sum = 0;
                    for (int64_t j = 0; j < a; j++)
                        mx = fmax(mx, x[(i * a + j) * in + q]);
                    for (int64_t j = 0; j < a; j++)
                        sum += exp(x[(i * a + j) * in + q] - mx);
                    for (int64_t j = 0; j < a; j++) {
                        double v = x[(i * a + j) * in + q] - mx;
                        ref[(i * a + j) * in + q] = log ? v - log1p(sum - 1.0) : exp(v) / sum;
                    }
                }
            char err[256] = "";
            int rc = mt_nn_dnnl_softmax(ctx, log, o, a, in, x, y, err, sizeof err);
            if (rc)
                fail_msg("softmax: rc %d: %s", rc, err);
            check_close(log ? "logsoftmax" : "softmax", y, ref, NULL, nx);
            free(x); free(y); free(ref);
        }
    mt_nn_dnnl_free(ctx);
}

/* ---- bad parameters ------------------------------------------------------------- */

static void expect_einval(int rc, const char *err, const char *needle)
{
    assert_int_equal(rc, MT_NN_DNNL_EINVAL);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not name '%s'", err, needle);
}

static void test_bad_params(void **state)
{
    (void)state;
    char err[256];
    assert_null(mt_nn_dnnl_create(0, err, sizeof err));
    assert_non_null(strstr(err, "threads"));
    mt_nn_dnnl_free(NULL);
    mt_nn_dnnl *ctx = new_ctx(1);
    float buf[4096] = {0}, y[4096];
    mt_nn_conv_desc d = cdesc(1, 4, 5, 5, 6, 3, 1, 1, 1);
    conv_fill_out(&d);
    assert_int_equal(mt_nn_dnnl_conv(ctx, NULL, &d, buf, buf, NULL, y, err, sizeof err), 0);
    mt_nn_conv_desc b = d;
    b.group = 4; /* divides c, not m */
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "group");
    b = d;
    b.oh = d.oh + 1;
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "oh");
    b = d;
    b.stride_w = 0;
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "stride");
    b = d;
    b.pad_l = -1;
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "pad");
    b = d;
    b.dil_h = 0;
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "dil");
    b = d;
    b.n = INT64_C(1) << 40;
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "overflow");
    b = d;
    b.post = (mt_nn_post){MT_NN_POST_CLIP, 1.0f, 0.0f, 0};
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "post.lo");
    b = d;
    b.post.kind = (mt_nn_post_kind)42;
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "post.kind");
    b = d;
    b.transposed = 1;
    b.out_pad_h = 1; /* not below stride 1 */
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &b, buf, buf, NULL, y, err, sizeof err), err, "out_pad");
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, &d, NULL, buf, NULL, y, err, sizeof err), err, "x");
    expect_einval(mt_nn_dnnl_conv(NULL, NULL, &d, buf, buf, NULL, y, err, sizeof err), err, "ctx");
    expect_einval(mt_nn_dnnl_conv(ctx, NULL, NULL, buf, buf, NULL, y, err, sizeof err), err, "desc");

    mt_nn_gemm_desc g = {4, 4, 4, 0, 0, 1.0f, 1.0f, 2, 4, {0}};
    expect_einval(mt_nn_dnnl_gemm(ctx, NULL, &g, buf, buf, buf, y, err, sizeof err), err, "c_rows");
    g.c_rows = 1;
    g.c_cols = 3;
    expect_einval(mt_nn_dnnl_gemm(ctx, NULL, &g, buf, buf, buf, y, err, sizeof err), err, "c_cols");
    g.c_cols = 4;
    g.trans_a = 2;
    expect_einval(mt_nn_dnnl_gemm(ctx, NULL, &g, buf, buf, buf, y, err, sizeof err), err, "trans_a");
    g.trans_a = 0;
    g.alpha = NAN;
    expect_einval(mt_nn_dnnl_gemm(ctx, NULL, &g, buf, buf, buf, y, err, sizeof err), err, "alpha");
    g.alpha = 1.0f;
    g.k = 0;
    expect_einval(mt_nn_dnnl_gemm(ctx, NULL, &g, buf, buf, buf, y, err, sizeof err), err, "k");

    expect_einval(mt_nn_dnnl_matmul(ctx, NULL, 3, 2, 1, 2, 2, 2, buf, buf, y, err, sizeof err), err,
                  "a_batch");
    expect_einval(mt_nn_dnnl_matmul(ctx, NULL, 3, 3, 2, 2, 2, 2, buf, buf, y, err, sizeof err), err,
                  "b_batch");
    expect_einval(mt_nn_dnnl_matmul(ctx, NULL, 1, 1, 1, 2, 2, 2, buf, NULL, y, err, sizeof err), err,
                  "b is NULL");

    mt_nn_pool_desc p = {1, 0, 1, 1, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0};
    assert_int_equal(mt_nn_dnnl_pool(ctx, &p, buf, y, err, sizeof err), 0);
    mt_nn_pool_desc q = p;
    q.oh = 4;
    expect_einval(mt_nn_dnnl_pool(ctx, &q, buf, y, err, sizeof err), err, "oh");
    q = p;
    q.pad_t = 2; /* not smaller than the kernel */
    expect_einval(mt_nn_dnnl_pool(ctx, &q, buf, y, err, sizeof err), err, "pads");
    q = p;
    q.kw = 0;
    expect_einval(mt_nn_dnnl_pool(ctx, &q, buf, y, err, sizeof err), err, "kw");
    q = p;
    q.max = 3;
    expect_einval(mt_nn_dnnl_pool(ctx, &q, buf, y, err, sizeof err), err, "max");

    expect_einval(mt_nn_dnnl_batchnorm(ctx, 1, 2, 3, -1.0f, buf, buf, buf, buf, buf, y, err,
                                       sizeof err), err, "epsilon");
    expect_einval(mt_nn_dnnl_batchnorm(ctx, 1, 2, 3, 1e-5f, buf, buf, NULL, buf, buf, y, err,
                                       sizeof err), err, "mean");
    expect_einval(mt_nn_dnnl_batchnorm(ctx, 1, 0, 3, 1e-5f, buf, buf, buf, buf, buf, y, err,
                                       sizeof err), err, "c");
    expect_einval(mt_nn_dnnl_lrn(ctx, 1, 4, 2, 2, 0, 1e-4f, 0.75f, 1.0f, buf, y, err, sizeof err),
                  err, "size");
    expect_einval(mt_nn_dnnl_lrn(ctx, 1, 4, 2, 2, 3, INFINITY, 0.75f, 1.0f, buf, y, err, sizeof err),
                  err, "alpha");
    expect_einval(mt_nn_dnnl_softmax(ctx, 2, 1, 4, 1, buf, y, err, sizeof err), err, "log");
    expect_einval(mt_nn_dnnl_softmax(ctx, 0, 1, -4, 1, buf, y, err, sizeof err), err, "axis");
    /* errors never carry tensor contents: only names and fixed text */
    mt_nn_dnnl_free(ctx);
}

/* Descriptor-keyed entries stop at a cap (4096) so changing shapes cannot grow the
 * cache without bound; past it, calls still work, uncached. */
static void test_cache_cap(void **state)
{
    (void)state;
    mt_nn_dnnl *ctx = new_ctx(1);
    float x[4200], y[4200];
    for (int i = 0; i < 4200; i++)
        x[i] = (float)(i % 7);
    char err[256];
    for (int64_t a = 1; a <= 4200; a++)
        assert_int_equal(mt_nn_dnnl_softmax(ctx, 0, 1, a, 1, x, y, err, sizeof err), 0);
    mt_nn_dnnl_stats st;
    mt_nn_dnnl_stats_get(ctx, &st);
    assert_int_equal(st.entries, 4096);
    double sum = 0;
    for (int i = 0; i < 4200; i++)
        sum += y[i];
    assert_true(fabs(sum - 1.0) < 1e-3);
    mt_nn_dnnl_free(ctx);
}

static void test_threads(void **state)
{
    (void)state;
    for (int t = 1; t <= 3; t++) {
        mt_nn_dnnl *ctx = new_ctx(t);
        int got = mt_nn_dnnl_omp_threads(ctx);
        /* Debian's libdnnl uses libgomp; the count is applied per call */
        assert_int_equal(got, t);
        mt_nn_dnnl_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),      cmocka_unit_test(test_conv_cache),
        cmocka_unit_test(test_conv_layouts),
        cmocka_unit_test(test_gemm),      cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_pool),      cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_lrn),       cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_bad_params), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_cache_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
