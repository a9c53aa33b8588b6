/* nn_torch_run: runs one single-input, single-output float32 ONNX model through the
 * engine (src/nn/nn.h) on a raw float32 input and, in check mode, compares the output
 * with a raw float32 reference (torch's output, written by tests/nn/torch_models.py).
 *
 * Metric (docs/nn.md "Real models"): rel = max_i |ours_i - ref_i| / max_i |ref_i|;
 * passes when rel <= tol (and no NaN/Inf, same element count).
 *
 * usage:
 *   nn_torch_run [-t threads] [-n] MODEL.onnx INPUT.f32 N C H W REF.f32 TOL    check mode
 *   nn_torch_run [-t threads] [-n] -s MODEL.onnx INPUT.f32 N C H W             serve mode
 * -n: no graph passes (mt_nn_limits.no_passes: no BatchNorm folding, no fusion).
 * Serve mode (bench/nn/bench_torch.py) loads and prepares once, prints "ready", then for
 * each stdin line "K" runs the model K times and prints one line of K wall times in ms
 * (mt_nn_run only: model already loaded and prepared, input already in memory).
 * Exit: 0 pass, 1 mismatch, 2 usage/engine error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "nn.h"

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size <= 0 || st.st_size > (1 << 30)) {
        fclose(f);
        return NULL;
    }
    uint8_t *b = malloc((size_t)st.st_size);
    if (b && fread(b, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)st.st_size;
    return b;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int usage(void)
{
    fprintf(stderr, "usage: nn_torch_run [-t threads] [-n] [-s] MODEL INPUT.f32 N C H W "
                    "[REF.f32 TOL]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads = 1, serve = 0, no_passes = 0, a = 1;
    while (a < argc && argv[a][0] == '-') {
        if (strcmp(argv[a], "-t") == 0 && a + 1 < argc) {
            threads = atoi(argv[a + 1]);
            a += 2;
        } else if (strcmp(argv[a], "-s") == 0) {
            serve = 1;
            a++;
        } else if (strcmp(argv[a], "-n") == 0) {
            no_passes = 1;
            a++;
        } else {
            return usage();
        }
    }
    if (argc - a != (serve ? 6 : 8) || threads < 1)
        return usage();
    const char *mpath = argv[a], *ipath = argv[a + 1];
    mt_nn_tensor in = {.dtype = MT_NN_FLOAT, .rank = 4};
    size_t nel = 1;
    for (int i = 0; i < 4; i++) {
        in.dims[i] = strtoll(argv[a + 2 + i], NULL, 10);
        if (in.dims[i] < 1 || in.dims[i] > 4096)
            return usage();
        nel *= (size_t)in.dims[i];
    }
    size_t mlen = 0, ilen = 0;
    uint8_t *mbuf = slurp(mpath, &mlen);
    uint8_t *ibuf = slurp(ipath, &ilen);
    if (!mbuf || !ibuf || ilen != nel * sizeof(float)) {
        fprintf(stderr, "nn_torch_run: cannot read %s or %s (or input is not %zu floats)\n",
                mpath, ipath, nel);
        return 2;
    }
    in.data = ibuf;
    char err[512];
    mt_nn_limits lim = {.mem_cap = (size_t)4 << 30, .threads = threads,
                        .no_passes = no_passes};
    mt_nn_model *m = NULL;
    double t0 = now_ms();
    if (mt_nn_load(mbuf, mlen, &lim, &m, err, sizeof err) != MT_NN_OK ||
        mt_nn_prepare(m, &in, 1, err, sizeof err) != MT_NN_OK) {
        fprintf(stderr, "nn_torch_run: %s: %s\n", mpath, err);
        mt_nn_free(m);
        return 2;
    }
    double t_prep = now_ms() - t0;
    mt_nn_tensor out;
    int rc = 0;
    if (serve) {
        printf("ready load+prepare %.1f ms, %zu nodes\n", t_prep, mt_nn_num_nodes(m));
        fflush(stdout);
        char line[64];
        while (fgets(line, sizeof line, stdin)) {
            int k = atoi(line);
            if (k < 1 || k > 1000)
                break;
            for (int i = 0; i < k; i++) {
                double s = now_ms();
                if (mt_nn_run(m, &in, 1, &out, 1, err, sizeof err) != MT_NN_OK) {
                    fprintf(stderr, "nn_torch_run: run: %s\n", err);
                    rc = 2;
                    goto done;
                }
                printf("%s%.3f", i ? " " : "", now_ms() - s);
            }
            printf("\n");
            fflush(stdout);
        }
        goto done;
    }
    t0 = now_ms();
    if (mt_nn_run(m, &in, 1, &out, 1, err, sizeof err) != MT_NN_OK) {
        fprintf(stderr, "nn_torch_run: run: %s\n", err);
        rc = 2;
        goto done;
    }
    double t_run = now_ms() - t0;
    size_t rlen = 0;
    uint8_t *rbuf = slurp(argv[a + 6], &rlen);
    double tol = strtod(argv[a + 7], NULL);
    size_t onel = 1;
    for (int i = 0; i < out.rank; i++)
        onel *= (size_t)out.dims[i];
    if (!rbuf || out.dtype != MT_NN_FLOAT || rlen != onel * sizeof(float)) {
        fprintf(stderr, "nn_torch_run: output has %zu elements of type %d, reference %zu bytes\n",
                onel, out.dtype, rlen);
        free(rbuf);
        rc = 1;
        goto done;
    }
    const float *o = out.data, *r = (const float *)rbuf;
    double maxd = 0, maxr = 0;
    size_t argd = 0;
    int bad = 0;
    for (size_t i = 0; i < onel; i++) {
        if (!isfinite(o[i]))
            bad = 1;
        double d = fabs((double)o[i] - (double)r[i]);
        if (d > maxd) {
            maxd = d;
            argd = i;
        }
        if (fabs((double)r[i]) > maxr)
            maxr = fabs((double)r[i]);
    }
    double rel = maxr > 0 ? maxd / maxr : maxd;
    printf("%s: %zu outputs, max|diff| %.3g at %zu, max|ref| %.3g, rel %.3g (tol %.0e), "
           "nodes %zu, prepare %.0f ms, run %.0f ms, threads %d%s\n",
           mpath, onel, maxd, argd, maxr, rel, tol, mt_nn_num_nodes(m), t_prep, t_run,
           threads, no_passes ? ", no passes" : "");
    if (bad || !(rel <= tol)) {
        printf("FAIL: %s\n", bad ? "non-finite output" : "above tolerance");
        rc = 1;
    }
    free(rbuf);
done:
    mt_nn_free(m);
    free(mbuf);
    free(ibuf);
    return rc;
}
