/* bench_nn_dnnl: ResNet-50 / MobileNet-like layers on the oneDNN backend
 * (src/nn/nn_dnnl.c) against a naive direct loop, batch 1, with 1 and 2 threads, with
 * activations in oneDNN's blocked layout (reordered from/to NCHW per call) and in plain
 * NCHW. Prints one table; run with a small REPS on a shared machine.
 * Usage: bench_nn_dnnl [REPS (default 5)] [max threads (default 2)] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_dnnl.h"
#include "nn_dnnl_priv.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *rnd(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(seed >> 40) / 16777216.0 - 0.5);
    }
    return p;
}

/* The naive reference: direct loops, float accumulation, output-stationary. */
static void conv_naive(const mt_nn_conv_desc *d, const float *x, const float *w, const float *b,
                       float *y)
{
    int64_t cg = d->c / d->group, mg = d->m / d->group;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t m = 0; m < d->m; m++) {
            int64_t gi = m / mg;
            for (int64_t oy = 0; oy < d->oh; oy++)
                for (int64_t ox = 0; ox < d->ow; ox++) {
                    float s = b ? b[m] : 0.0f;
                    for (int64_t ic = 0; ic < cg; ic++) {
                        const float *xp = x + (n * d->c + gi * cg + ic) * d->h * d->w;
                        const float *wp = w + (m * cg + ic) * d->kh * d->kw;
                        for (int64_t ky = 0; ky < d->kh; ky++) {
                            int64_t iy = oy * d->stride_h - d->pad_t + ky * d->dil_h;
                            if (iy < 0 || iy >= d->h)
                                continue;
                            for (int64_t kx = 0; kx < d->kw; kx++) {
                                int64_t ix = ox * d->stride_w - d->pad_l + kx * d->dil_w;
                                if (ix >= 0 && ix < d->w)
                                    s += xp[iy * d->w + ix] * wp[ky * d->kw + kx];
                            }
                        }
                    }
                    if (d->post.kind == MT_NN_POST_RELU && s < 0)
                        s = 0;
                    y[((n * d->m + m) * d->oh + oy) * d->ow + ox] = s;
                }
        }
}

typedef struct {
    const char *name;
    int64_t c, h, m, k, stride, pad, group;
} layer;

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void loadavg(const char *when)
{
    FILE *f = fopen("/proc/loadavg", "r");
    char buf[128] = "?";
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            strcpy(buf, "?\n");
        fclose(f);
    }
    printf("load average %s: %s", when, buf);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int maxthr = argc > 2 ? atoi(argv[2]) : 2;
    if (reps < 1 || reps > 1000 || maxthr < 1) {
        fprintf(stderr, "usage: bench_nn_dnnl [REPS (1..1000)] [MAX_THREADS]\n");
        return 2;
    }
    static const layer L[] = {
        {"conv1 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3, 1},
        {"3x3 64->64 @56", 64, 56, 64, 3, 1, 1, 1},
        {"1x1 64->256 @56", 64, 56, 256, 1, 1, 0, 1},
        {"3x3 256->256 @14", 256, 14, 256, 3, 1, 1, 1},
        {"1x1 1024->256 @14", 1024, 14, 256, 1, 1, 0, 1},
        {"1x1 512->2048 @7", 512, 7, 2048, 1, 1, 0, 1},
        {"dw 3x3 144 @56 (MobileNetV2)", 144, 56, 144, 3, 1, 1, 144},
    };
    loadavg("before");
    printf("batch 1, float32, fused ReLU; ms per call; per layer REPS rounds, each round the naive\n"
           "loop then every one of our columns (interleaved), every round printed, then the\n"
           "medians (ours after one warm-up call per column; the naive loop has none)\n");
    char err[256];
    enum { MAXCOL = 64 };
    if (maxthr * 2 > MAXCOL) {
        fprintf(stderr, "bench_nn_dnnl: at most %d threads\n", MAXCOL / 2);
        return 2;
    }
    for (size_t li = 0; li < sizeof L / sizeof L[0]; li++) {
        const layer *l = &L[li];
        mt_nn_conv_desc d;
        memset(&d, 0, sizeof d);
        d.n = 1; d.c = l->c; d.h = d.w = l->h; d.m = l->m; d.kh = d.kw = l->k;
        d.group = l->group; d.stride_h = d.stride_w = l->stride; d.dil_h = d.dil_w = 1;
        d.pad_t = d.pad_l = d.pad_b = d.pad_r = l->pad;
        d.oh = d.ow = (l->h + 2 * l->pad - l->k) / l->stride + 1;
        d.post.kind = MT_NN_POST_RELU;
        size_t nx = (size_t)(d.c * d.h * d.w), ny = (size_t)(d.m * d.oh * d.ow);
        size_t nw = (size_t)(d.m * (d.c / d.group) * d.kh * d.kw);
        double flop = 2.0 * (double)ny * (double)(d.c / d.group) * (double)(d.kh * d.kw);
        float *x = rnd(nx, 1 + li), *w = rnd(nw, 100 + li), *b = rnd((size_t)d.m, 200 + li);
        float *yr = malloc(ny * sizeof *yr), *y = malloc(ny * sizeof *y);
        int ncol = maxthr * 2;
        mt_nn_dnnl *ctx[MAXCOL];
        int key[MAXCOL];
        double *ts = malloc((size_t)reps * (size_t)(ncol + 1) * sizeof *ts); /* [r][0]: naive */
        if (!yr || !y || !ts)
            return 1;
        for (int c = 0; c < ncol; c++) { /* column c: threads c / 2 + 1, blocked when even */
            if (!(ctx[c] = mt_nn_dnnl_create(c / 2 + 1, err, sizeof err))) {
                fprintf(stderr, "create: %s\n", err);
                return 1;
            }
            mt_nn_dnnl_set_blocked(ctx[c], c % 2 == 0);
            if (mt_nn_dnnl_conv(ctx[c], &key[c], &d, x, w, b, y, err, sizeof err)) { /* warm-up */
                fprintf(stderr, "%s: %s\n", l->name, err);
                return 1;
            }
        }
        printf("\n%-30s %7s %9s", l->name, "MFLOP", "naive");
        for (int t = 1; t <= maxthr; t++)
            printf("  blk %dt  nchw %dt", t, t);
        printf("\n");
        double maxdiff = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            conv_naive(&d, x, w, b, yr);
            ts[(size_t)r * (size_t)(ncol + 1)] = (now() - t0) * 1e3;
            for (int c = 0; c < ncol; c++) {
                double t1 = now();
                mt_nn_dnnl_conv(ctx[c], &key[c], &d, x, w, b, y, err, sizeof err);
                ts[(size_t)r * (size_t)(ncol + 1) + (size_t)c + 1] = (now() - t1) * 1e3;
                for (size_t i = 0; i < ny; i++) {
                    double df = fabs((double)y[i] - yr[i]);
                    maxdiff = df > maxdiff ? df : maxdiff;
                }
            }
            printf("%-30s %7.1f", "  round", flop / 1e6);
            for (int c = 0; c <= ncol; c++)
                printf(c ? "  %8.2f" : " %9.1f", ts[(size_t)r * (size_t)(ncol + 1) + (size_t)c]);
            printf("\n");
        }
        double col[1000], best = 1e30;
        int n = reps;
        printf("%-30s %7.1f", "  median", flop / 1e6);
        for (int c = 0; c <= ncol; c++) {
            for (int r = 0; r < n; r++)
                col[r] = ts[(size_t)r * (size_t)(ncol + 1) + (size_t)c];
            qsort(col, (size_t)n, sizeof col[0], cmp);
            double med = col[n / 2];
            if (c && med < best)
                best = med;
            printf(c ? "  %8.2f" : " %9.1f", med);
        }
        printf("\n%-30s GFLOP/s (best median of ours) %.1f, max|diff| vs naive %.2g\n", "",
               flop / best / 1e6, maxdiff);
        for (int c = 0; c < ncol; c++)
            mt_nn_dnnl_free(ctx[c]);
        free(ts);
        free(x);
        free(w);
        free(b);
        free(yr);
        free(y);
    }
    loadavg("after");
    return 0;
}
