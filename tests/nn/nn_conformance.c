/* nn_conformance: runs Debian's libonnx-testdata node tests (model.onnx +
 * test_data_set_N/{input,output}_K.pb) through the engine and compares with ONNX's
 * backend-test tolerances (rtol 1e-3, atol 1e-7; integers and bools exactly; NaN
 * matches NaN). Prints a per-op table and fails when below the recorded floor
 * (tests/nn/conformance.floor: "passed N" = least number of passing node tests,
 * "require Op" = every test of Op must pass). Exits 77 (ctest skip) without the data.
 *
 * usage: nn_conformance [-v] [-o only-substring] DATA_DIR FLOOR_FILE */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn.h"
#include "nn_int.h"

typedef struct {
    char op[64];
    int pass, total;
} row;

static row rows[512];
static int nrows;

static row *row_get(const char *op)
{
    for (int i = 0; i < nrows; i++)
        if (strcmp(rows[i].op, op) == 0)
            return &rows[i];
    if (nrows == 512)
        return &rows[511];
    snprintf(rows[nrows].op, sizeof rows[nrows].op, "%s", op);
    return &rows[nrows++];
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size < 0 || st.st_size > (1 << 28)) {
        fclose(f);
        return NULL;
    }
    uint8_t *b = malloc((size_t)st.st_size + 1);
    if (b && fread(b, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)st.st_size;
    return b;
}

static int cmp_dirent(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int verbose;

static int compare(const mt_nn_tensor *got, const mt_nn_tensor *exp, char *why, size_t wl)
{
    mt_nn_tensor g2 = *got;
    if (got->dtype == MT_NN_BFLOAT16 && exp->dtype == MT_NN_UINT16) { /* see run_test */
        g2.dtype = MT_NN_UINT16;
        got = &g2;
    }
    if (got->dtype != exp->dtype) {
        snprintf(why, wl, "type %d, expected %d", got->dtype, exp->dtype);
        return 0;
    }
    if (got->rank != exp->rank) {
        snprintf(why, wl, "rank %d, expected %d", got->rank, exp->rank);
        return 0;
    }
    size_t cnt = 1;
    for (int i = 0; i < got->rank; i++) {
        if (got->dims[i] != exp->dims[i]) {
            snprintf(why, wl, "dim %d is %lld, expected %lld", i, (long long)got->dims[i],
                     (long long)exp->dims[i]);
            return 0;
        }
        cnt *= (size_t)got->dims[i];
    }
    for (size_t i = 0; i < cnt; i++) {
        if (nn_is_float(got->dtype)) {
            double a = nn_ld(got->data, got->dtype, i), e = nn_ld(exp->data, exp->dtype, i);
            if (isnan(a) && isnan(e))
                continue;
            if (isinf(e) && a == e)
                continue;
            if (!(fabs(a - e) <= 1e-7 + 1e-3 * fabs(e))) {
                snprintf(why, wl, "element %zu: %g, expected %g", i, a, e);
                return 0;
            }
        } else if (nn_ldi(got->data, got->dtype, i) != nn_ldi(exp->data, exp->dtype, i)) {
            snprintf(why, wl, "element %zu differs", i);
            return 0;
        }
    }
    return 1;
}

/* 1 pass, 0 fail, -1 unclaimed (an op the engine does not implement) */
static int run_test(const char *dir, char *op, size_t oplen, char *why, size_t wl)
{
    char path[4096];
    size_t len;
    if (snprintf(path, sizeof path, "%s/model.onnx", dir) >= (int)sizeof path)
        return 0;
    uint8_t *buf = slurp(path, &len);
    if (!buf) {
        snprintf(why, wl, "cannot read model.onnx");
        return 0;
    }
    mt_nn_limits lim = {(size_t)256 << 20, 1, 0};
    mt_nn_model *m;
    char err[512];
    int rc = mt_nn_load(buf, len, &lim, &m, err, sizeof err);
    /* row name: the single node's op, or "(multi-node)" */
    snprintf(op, oplen, "?");
    if (rc) {
        free(buf);
        snprintf(why, wl, "%s", err);
        if (rc == MT_NN_EUNSUPPORTED) {
            /* "node 'x' (Op): operator not supported" */
            const char *p = strchr(err, '('), *q = p ? strchr(p, ')') : NULL;
            if (p && q && (size_t)(q - p) < oplen)
                snprintf(op, oplen, "%.*s", (int)(q - p - 1), p + 1);
            return -1;
        }
        return 0;
    }
    if (m->norig == 1)
        snprintf(op, oplen, "%s", m->orig[0].op);
    else
        snprintf(op, oplen, "(multi-node)");
    int ok = 1, sets = 0, unsup = 0;
    for (int s = 0; ok && s < 64; s++) {
        char sd[4096];
        if (snprintf(sd, sizeof sd, "%s/test_data_set_%d", dir, s) >= (int)sizeof sd)
            break;
        struct stat st;
        if (stat(sd, &st))
            break;
        sets++;
        size_t nin = mt_nn_num_inputs(m), nout = mt_nn_num_outputs(m);
        mt_nn_tensor in[64], exp[64], got[64];
        memset(in, 0, sizeof in);
        memset(exp, 0, sizeof exp);
        if (nin > 64 || nout > 64) {
            snprintf(why, wl, "too many inputs");
            ok = 0;
            break;
        }
        size_t ni = 0, no = 0;
        int prc = 0;
        for (; ni < nin; ni++) {
            if (snprintf(path, sizeof path, "%s/input_%zu.pb", sd, ni) >= (int)sizeof path)
                break;
            uint8_t *tb = slurp(path, &len);
            if (!tb)
                break;
            prc = mt_nn_tensor_parse(tb, len, 0, &in[ni], err, sizeof err);
            free(tb);
            if (prc)
                break;
        }
        for (; !prc && no < nout; no++) {
            if (snprintf(path, sizeof path, "%s/output_%zu.pb", sd, no) >= (int)sizeof path)
                break;
            uint8_t *tb = slurp(path, &len);
            if (!tb)
                break;
            prc = mt_nn_tensor_parse(tb, len, 0, &exp[no], err, sizeof err);
            free(tb);
            if (prc)
                break;
        }
        /* ONNX 1.12's test data stores bfloat16 tensors as uint16 */
        for (size_t k = 0; k < ni; k++) {
            mt_nn_tensor decl;
            if (in[k].dtype == MT_NN_UINT16 && !mt_nn_input_decl(m, k, &decl) &&
                decl.dtype == MT_NN_BFLOAT16)
                in[k].dtype = MT_NN_BFLOAT16;
        }
        if (ni != nin || no != nout) {
            snprintf(why, wl, "test data: %s", prc ? err : "missing input/output file");
            ok = 0;
            unsup = prc == MT_NN_EUNSUPPORTED; /* e.g. strings: not claimed */
        } else if ((rc = mt_nn_prepare(m, in, nin, err, sizeof err)) || /* values pinned */
                   (rc = mt_nn_run(m, in, nin, got, nout, err, sizeof err))) {
            snprintf(why, wl, "%s", err);
            ok = 0;
            unsup = rc == MT_NN_EUNSUPPORTED; /* a documented limit: not claimed */
        } else {
            for (size_t k = 0; ok && k < nout; k++)
                if (!compare(&got[k], &exp[k], why, wl)) {
                    size_t l = strlen(why);
                    snprintf(why + l, wl - l, " (output %zu)", k);
                    ok = 0;
                }
        }
        for (size_t k = 0; k < 64; k++) {
            mt_nn_tensor_free(&in[k]);
            mt_nn_tensor_free(&exp[k]);
        }
    }
    if (!sets) {
        snprintf(why, wl, "no test data sets");
        ok = 0;
    }
    mt_nn_free(m);
    free(buf);
    return unsup ? -1 : ok;
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    int ai = 1;
    for (; ai < argc && argv[ai][0] == '-'; ai++) {
        if (strcmp(argv[ai], "-v") == 0)
            verbose = 1;
        else if (strcmp(argv[ai], "-o") == 0 && ai + 1 < argc)
            only = argv[++ai];
    }
    if (argc - ai != 2) {
        fprintf(stderr, "usage: nn_conformance [-v] [-o substring] DATA_DIR FLOOR_FILE\n");
        return 2;
    }
    const char *data = argv[ai], *floorf = argv[ai + 1];
    DIR *d = opendir(data);
    if (!d) {
        printf("SKIP: no ONNX node test data at %s (Debian package libonnx-testdata)\n", data);
        return 77;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0 || (only && !strstr(e->d_name, only)))
            continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 1024;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                return 2;
        }
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_dirent);
    int passed = 0, claimed = 0, claimed_pass = 0;
    for (size_t i = 0; i < nn; i++) {
        char dir[4096], op[64], why[600] = "";
        snprintf(dir, sizeof dir, "%s/%s", data, names[i]);
        int r = run_test(dir, op, sizeof op, why, sizeof why);
        row *rw = row_get(r < 0 ? "(not supported)" : op);
        rw->total++;
        if (r > 0) {
            rw->pass++;
            passed++;
        }
        if (r >= 0) {
            claimed++;
            claimed_pass += r > 0;
        }
        if (verbose && r <= 0)
            printf("%-55s %s: %s\n", names[i], r < 0 ? "UNSUPPORTED" : "FAIL", why);
        else if (r == 0)
            printf("FAIL %-50s %s\n", names[i], why);
    }
    printf("\n%-28s %7s\n", "op", "passed");
    for (int i = 0; i < nrows; i++)
        printf("%-28s %3d/%-3d%s\n", rows[i].op, rows[i].pass, rows[i].total,
               rows[i].pass == rows[i].total ? "" : "  *");
    printf("\nnode tests: %d/%zu passed (%.1f%%); claimed by the engine: %d/%d passed\n", passed,
           nn, nn ? 100.0 * passed / (double)nn : 0.0, claimed_pass, claimed);
    /* floor */
    FILE *f = fopen(floorf, "r");
    if (!f) {
        fprintf(stderr, "cannot open floor file %s: %s\n", floorf, strerror(errno));
        return 1;
    }
    char line[256];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        char w[64];
        int v;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "passed %d", &v) == 1) {
            if (!only && passed < v) {
                printf("BELOW FLOOR: %d node tests passed, the floor is %d\n", passed, v);
                bad = 1;
            }
        } else if (sscanf(line, "require %63s", w) == 1) {
            for (int i = 0; i < nrows; i++)
                if (strcmp(rows[i].op, w) == 0 && rows[i].pass != rows[i].total) {
                    printf("BELOW FLOOR: %s passes %d/%d, all are required\n", w, rows[i].pass,
                           rows[i].total);
                    bad = 1;
                }
        }
    }
    fclose(f);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    return bad;
}
