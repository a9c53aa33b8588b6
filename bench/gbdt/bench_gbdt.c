/* bench_gbdt: the data generator and the in-process anchor of the GBDT
 * benchmark (bench/gbdt/run.sh), also used by bench/logreg.
 *
 *   bench_gbdt gen ROWS SEED OUT.csv
 *       Fixed-seed synthetic binary classification, 28 features (f1..f28)
 *       and a label column: 14 informative features drawn around 2 cluster
 *       centres per class at vertices of a hypercube (side 1.6), 6 redundant
 *       linear combinations of them, 8 noise features, 5 % of labels flipped
 *       (the shape of sklearn's make_classification; our own generator).
 *   bench_gbdt anchor TRAIN.csv TEST.csv THREADS TREES DEPTH ETA
 *       libxgboost called directly in this process with the parameters the
 *       gbdt_train built-in passes, its timers around the same steps as the
 *       built-in's log: load = CSV parse + DMatrix build + labels, train =
 *       booster create + parameters + boosting rounds, predict = in-place
 *       prediction from the dense float matrix (XGBoosterPredictFromDense,
 *       as gbdt_predict does for CSV); also the whole process's work
 *       (total_s: both CSVs, train, predict, AUC). Run it with the worker's
 *       OpenMP setting (OMP_WAIT_POLICY=PASSIVE; bench/common.sh sets it).
 *   bench_gbdt auc TEST.csv PRED.csv
 *       AUC of predictions (the first column of PRED.csv, after a header)
 *       against the label column of TEST.csv, printed with 17 digits. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>

#include "gbdt_forest.h"

#define NF 28

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gauss(uint64_t *s)
{
    return sqrt(-2 * log(unit(s))) * cos(2 * M_PI * unit(s));
}

static int gen(long rows, uint64_t seed, const char *path)
{
    /* the structure (centres, mixing weights) is fixed; seed draws the rows */
    uint64_t st = 42;
    double centre[4][14], mix[6][14];
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 14; k++)
            centre[c][k] = (rng_next(&st) & 1) ? 0.8 : -0.8;
    for (int r = 0; r < 6; r++)
        for (int k = 0; k < 14; k++)
            mix[r][k] = unit(&st) * 2 - 1;
    FILE *f = fopen(path, "w");
    if (!f)
        return perror(path), 1;
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    for (int k = 0; k < NF; k++)
        fprintf(f, "f%d,", k + 1);
    fprintf(f, "label\n");
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (long i = 0; i < rows; i++) {
        int cls = (int)(rng_next(&s) & 1), cl = cls * 2 + (int)(rng_next(&s) & 1);
        double x[NF];
        for (int k = 0; k < 14; k++)
            x[k] = centre[cl][k] + gauss(&s);
        for (int r = 0; r < 6; r++) {
            x[14 + r] = 0;
            for (int k = 0; k < 14; k++)
                x[14 + r] += mix[r][k] * x[k];
        }
        for (int k = 20; k < NF; k++)
            x[k] = gauss(&s);
        if (unit(&s) < 0.05)
            cls = (int)(rng_next(&s) & 1);
        for (int k = 0; k < NF; k++)
            fprintf(f, "%.6g,", x[k]);
        fprintf(f, "%d\n", cls);
    }
    return fclose(f) != 0;
}

/* Reads a numeric CSV with a header: all columns but the last into x
 * (float, row-major), the last into y. */
static long load(const char *path, float **x, float **y)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return perror(path), -1;
    char *line = NULL;
    size_t cap = 0;
    long n = 0, alloc = 1024;
    *x = malloc((size_t)alloc * NF * sizeof **x);
    *y = malloc((size_t)alloc * sizeof **y);
    if (getline(&line, &cap, f) < 0)
        return -1;
    while (getline(&line, &cap, f) > 0) {
        if (n == alloc) {
            alloc *= 2;
            *x = realloc(*x, (size_t)alloc * NF * sizeof **x);
            *y = realloc(*y, (size_t)alloc * sizeof **y);
        }
        char *p = line;
        for (int k = 0; k < NF; k++) {
            (*x)[n * NF + k] = (float)strtod(p, &p);
            p++;
        }
        (*y)[n++] = (float)strtod(p, NULL);
    }
    free(line);
    fclose(f);
    return n;
}

typedef struct {
    double s;
    float y;
} scored;

static int by_score(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, z = ((const scored *)b)->s;
    return (x > z) - (x < z);
}

/* Rank-based AUC (Mann-Whitney) with average ranks for ties. */
static double auc(const double *s, const float *y, long n)
{
    scored *v = malloc((size_t)n * sizeof *v);
    for (long i = 0; i < n; i++)
        v[i] = (scored){s[i], y[i]};
    qsort(v, (size_t)n, sizeof *v, by_score);
    double rank_pos = 0, npos = 0;
    for (long i = 0; i < n;) {
        long j = i;
        while (j < n && v[j].s == v[i].s)
            j++;
        double avg = (double)(i + j + 1) / 2.0; /* ranks i+1 .. j */
        for (long k = i; k < j; k++)
            if (v[k].y > 0.5) {
                rank_pos += avg;
                npos++;
            }
        i = j;
    }
    free(v);
    double nneg = (double)n - npos;
    return (rank_pos - npos * (npos + 1) / 2) / (npos * nneg);
}

#define XGB(call)                                                                                  \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s: %s\n", #call, XGBGetLastError());                                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int anchor(const char *train, const char *test, const char *threads, int trees,
                  const char *depth, double eta)
{
    float *x, *y, *tx, *ty;
    double t0 = now_s();
    long n = load(train, &x, &y);
    if (n <= 0)
        return 1;
    DMatrixHandle d;
    BoosterHandle b;
    XGB(XGDMatrixCreateFromMat_omp(x, (bst_ulong)n, NF, NAN, &d, atoi(threads)));
    XGB(XGDMatrixSetFloatInfo(d, "label", y, (bst_ulong)n));
    double t1 = now_s();
    XGB(XGBoosterCreate(&d, 1, &b));
    char e[64];
    snprintf(e, sizeof e, "%.17g", eta);
    XGB(XGBoosterSetParam(b, "objective", "binary:logistic"));
    XGB(XGBoosterSetParam(b, "tree_method", "hist"));
    XGB(XGBoosterSetParam(b, "max_depth", depth));
    XGB(XGBoosterSetParam(b, "eta", e));
    XGB(XGBoosterSetParam(b, "subsample", "1"));
    XGB(XGBoosterSetParam(b, "nthread", threads));
    XGB(XGBoosterSetParam(b, "seed", "0"));
    for (int i = 0; i < trees; i++)
        XGB(XGBoosterUpdateOneIter(b, i, d));
    double t2 = now_s();
    long m = load(test, &tx, &ty); /* not timed: gbdt_predict's timer starts after its load */
    if (m <= 0)
        return 1;
    const bst_ulong *shape;
    bst_ulong dim;
    const float *pr;
    char ai[160];
    snprintf(ai, sizeof ai,
             "{\"data\": [%llu, true], \"shape\": [%ld, %d], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)tx, m, NF);
    double t3 = now_s();
    XGB(XGBoosterPredictFromDense(b, ai,
                                  "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                  "\"iteration_end\": 0, \"strict_shape\": false, "
                                  "\"cache_id\": 0, \"missing\": NaN}",
                                  NULL, &shape, &dim, &pr));
    double t4 = now_s();
    double *s = malloc((size_t)m * sizeof *s);
    for (long i = 0; i < m; i++)
        s[i] = pr[i];
    printf("anchor_load_s %.3f\nanchor_train_s %.3f\nanchor_predict_s %.4f\n"
           "anchor_predict_rows_per_s_per_thread %.0f\nanchor_total_s %.3f\nanchor_auc %.17g\n",
           t1 - t0, t2 - t1, t4 - t3, (double)m / (t4 - t3) / atof(threads), now_s() - t0,
           auc(s, ty, m));
    free(s);
    XGBoosterFree(b);
    XGDMatrixFree(d);
    free(x);
    free(y);
    free(tx);
    free(ty);
    return 0;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One thread, thread CPU time (robust on a loaded machine): XGBoost's
 * in-place prediction and gbdt_predict's own predictor (gbdt_forest.c) on
 * the same loaded model and test rows, interleaved reps times; the model
 * check's parts (XGBoost's UBJSON of the loaded model, our reading of it);
 * exits 1 unless the predictions are the same bits. */
static int cpu_cmd(const char *model, const char *test, int reps)
{
    float *tx, *ty;
    long m = load(test, &tx, &ty);
    FILE *f = fopen(model, "rb");
    if (m <= 0 || !f)
        return 1;
    static char buf[64 << 20];
    size_t ml = fread(buf, 1, sizeof buf, f);
    fclose(f);
    BoosterHandle b;
    XGB(XGBoosterCreate(NULL, 0, &b));
    XGB(XGBoosterLoadModelFromBuffer(b, buf, ml));
    XGB(XGBoosterSetParam(b, "nthread", "1"));
    char ai[160];
    snprintf(ai, sizeof ai,
             "{\"data\": [%llu, true], \"shape\": [%ld, %d], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)tx, m, NF);
    float *ours = malloc((size_t)m * sizeof *ours);
    for (int r = 0; r < reps; r++) {
        bst_ulong jl;
        const char *js;
        double c0 = cpu_s();
        XGB(XGBoosterSaveModelToBuffer(b, "{\"format\": \"ubj\"}", &jl, &js));
        double c1 = cpu_s();
        mt_gbdt_forest *fo;
        mt_err err;
        if (mt_gbdt_forest_parse((const uint8_t *)js, jl, NF, &fo, &err) != MT_OK) {
            fprintf(stderr, "cpu: %s\n", err.msg);
            return 1;
        }
        double c2 = cpu_s();
        const bst_ulong *shape;
        bst_ulong dim;
        const float *pr;
        XGB(XGBoosterPredictFromDense(b, ai,
                                      "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                      "\"iteration_end\": 0, \"strict_shape\": false, "
                                      "\"cache_id\": 0, \"missing\": NaN}",
                                      NULL, &shape, &dim, &pr));
        double c3 = cpu_s();
        if (mt_gbdt_forest_predict_dense(fo, tx, (size_t)m, 1, ours, &err) != MT_OK)
            return 1;
        double c4 = cpu_s();
        if (memcmp(ours, pr, (size_t)m * sizeof *ours) != 0) {
            fprintf(stderr, "cpu: predictions differ\n");
            return 1;
        }
        printf("cpu_rep %d xgboost_rows_per_cpu_s %.0f own_rows_per_cpu_s %.0f "
               "model_ubj_cpu_s %.4f model_read_cpu_s %.4f ubj_bytes %llu same_bits 1\n",
               r + 1, (double)m / (c3 - c2), (double)m / (c4 - c3), c1 - c0, c2 - c1,
               (unsigned long long)jl);
        mt_gbdt_forest_free(fo);
    }
    free(ours);
    XGBoosterFree(b);
    free(tx);
    free(ty);
    return 0;
}

static int auc_cmd(const char *test, const char *preds)
{
    float *tx, *ty;
    long m = load(test, &tx, &ty);
    FILE *f = fopen(preds, "r");
    if (m <= 0 || !f)
        return 1;
    double *s = malloc((size_t)m * sizeof *s);
    char line[256];
    long i = 0;
    if (!fgets(line, sizeof line, f))
        return 1;
    while (i < m && fgets(line, sizeof line, f))
        s[i++] = strtod(line, NULL);
    fclose(f);
    if (i != m) {
        fprintf(stderr, "auc: %ld predictions for %ld rows\n", i, m);
        return 1;
    }
    printf("%.17g\n", auc(s, ty, m));
    free(s);
    free(tx);
    free(ty);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return gen(atol(argv[2]), strtoull(argv[3], NULL, 10), argv[4]);
    if (argc == 8 && strcmp(argv[1], "anchor") == 0)
        return anchor(argv[2], argv[3], argv[4], atoi(argv[5]), argv[6], atof(argv[7]));
    if (argc == 4 && strcmp(argv[1], "auc") == 0)
        return auc_cmd(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "cpu") == 0)
        return cpu_cmd(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: bench_gbdt gen ROWS SEED OUT.csv | anchor TRAIN TEST THREADS TREES "
                    "DEPTH ETA | auc TEST PRED | cpu MODEL TEST REPS\n");
    return 2;
}
