/* Tests of kmeans and pca through mt_executor_run and the real mesatee-worker:
 * golden outputs on small fixed data, determinism of the seed, a cross-check
 * of pca against numpy's eigh (skipped without python3-numpy), bad input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_builtin_common.h"

static const char *const km_outs[] = {"assignments", "centroids"};

static void test_kmeans_golden(void **state)
{
    (void)state;
    tb_in in[2] = {{"alice", "id,x,y\na1,0,0\na2,10,10\na3,0,1\na4,11,11\n"},
                   {"bob", "y,id,x\n0,b1,1\n10,b2,11\n1,b3,1\n11,b4,10\n"}};
    tb_run run;
    tb_expect_ok("kmeans", tb_args("k", "2", "id", "id", "seed", "1", NULL), in, 2, km_outs, 2,
                 &run);
    assert_string_equal(run.r.return_value, "rows: 8, k: 2, iterations: 2, inertia: 4");
    const char *c0 = "cluster,x,y,size\n0,0.5,0.5,4\n1,10.5,10.5,4\n";
    const char *c1 = "cluster,x,y,size\n0,10.5,10.5,4\n1,0.5,0.5,4\n";
    bool low_first = strcmp(run.out[1], c0) == 0;
    if (!low_first && strcmp(run.out[1], c1) != 0)
        fail_msg("centroids: %s", run.out[1]);
    char want[256];
    int L = low_first ? 0 : 1, H = 1 - L;
    snprintf(want, sizeof want,
             "id,cluster\na1,%d\na2,%d\na3,%d\na4,%d\nb1,%d\nb2,%d\nb3,%d\nb4,%d\n", L, H, L, H, L,
             H, L, H);
    assert_string_equal(run.out[0], want);

    /* same seed, same result; only the centroids output declared */
    tb_run again;
    tb_expect_ok("kmeans", tb_args("k", "2", "id", "id", "seed", "1", NULL), in, 2, km_outs + 1,
                 1, &again);
    assert_string_equal(again.out[0], run.out[1]);
    tb_run_clear(&again);
    tb_run_clear(&run);

    /* k = 1: the mean; features chosen; no id: one cluster column */
    tb_in one[1] = {{"a", "x,y,z\n1,5,0\n3,7,0\n"}};
    const char *const outs[] = {"assignments", "c"};
    tb_expect_ok("kmeans", tb_args("k", "1", "features", "y,x", "centroids_slot", "c", NULL), one,
                 1, outs, 2, &run);
    assert_string_equal(run.out[0], "cluster\n0\n0\n");
    assert_string_equal(run.out[1], "cluster,y,x,size\n0,6,2,2\n");
    assert_string_equal(run.r.return_value, "rows: 2, k: 1, iterations: 2, inertia: 4");
    tb_run_clear(&run);
}

/* Parses a CSV of numbers (header skipped, first skip fields of each row
 * skipped) into v; returns the count. */
static size_t nums(const char *s, int skip, double *v, size_t cap)
{
    size_t n = 0;
    const char *p = strchr(s, '\n') + 1;
    while (*p && n < cap) {
        for (int k = 0; k < skip; k++)
            p = strchr(p, ',') + 1;
        for (;;) {
            char *e;
            v[n++] = strtod(p, &e);
            p = e;
            if (*p == '\n') {
                p++;
                break;
            }
            p++;
        }
    }
    return n;
}

static void test_pca_golden(void **state)
{
    (void)state;
    tb_in in[2] = {{"a", "id,u,v\np,1,1\nq,2,2\n"}, {"b", "v,u,id\n3,3,r\n4,4,s\n"}};
    const char *const outs[] = {"components", "transformed"};
    tb_run run;
    tb_expect_ok("pca", tb_args("id", "id", NULL), in, 2, outs, 2, &run);
    assert_string_equal(run.r.return_value,
                        "rows: 4, components: 2, explained variance ratio: 1.000000");
    assert_true(strncmp(run.out[0],
                        "component,explained_variance,explained_variance_ratio,u,v\n"
                        "mean,,,2.5,2.5\n1,3.33333333333333",
                        88) == 0);
    double c[16];
    /* row "1": variance 10/3, ratio 1, (1/sqrt2, 1/sqrt2); row "2": 0 */
    const char *r1 = strstr(run.out[0], "\n1,");
    assert_non_null(r1);
    assert_int_equal(nums(r1, 1, c, 16), 8);
    assert_true(fabs(c[0] - 10.0 / 3) < 1e-12 && fabs(c[1] - 1) < 1e-12);
    assert_true(fabs(c[2] - M_SQRT1_2) < 1e-12 && fabs(c[3] - M_SQRT1_2) < 1e-12);
    assert_true(fabs(c[4]) < 1e-12 && fabs(c[5]) < 1e-12);
    double t[16];
    assert_true(strncmp(run.out[1], "id,pc1,pc2\np,", 13) == 0);
    assert_int_equal(nums(run.out[1], 1, t, 16), 8);
    const double want[4] = {-1.5 * M_SQRT2, -0.5 * M_SQRT2, 0.5 * M_SQRT2, 1.5 * M_SQRT2};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(t[2 * i] - want[i]) < 1e-12 && fabs(t[2 * i + 1]) < 1e-12);
    tb_run_clear(&run);

    /* independent axes, scale=false: components are the axes by variance */
    tb_in ax[1] = {{"a", "x,y,z\n0,3,5\n0,-3,5\n1,0,5\n-1,0,5\n"}};
    const char *const co[] = {"components"};
    tb_expect_ok("pca", tb_args("components", "2", NULL), ax, 1, co, 1, &run);
    assert_string_equal(run.out[0],
                        "component,explained_variance,explained_variance_ratio,x,y,z\n"
                        "mean,,,0,0,5\n1,6,0.89999999999999991,0,1,0\n"
                        "2,0.66666666666666663,0.099999999999999992,1,0,0\n");
    assert_string_equal(run.r.return_value,
                        "rows: 4, components: 2, explained variance ratio: 1.000000");
    tb_run_clear(&run);
}

/* Random 6-feature data: eigenvalues and |components| match numpy's eigh. */
static void test_pca_numpy(void **state)
{
    (void)state;
    /* Debian's numpy lives with /usr/bin/python3, which may not be first on PATH */
    const char *py = tb_shell_ok("python3 -c 'import numpy'")            ? "python3"
                     : tb_shell_ok("/usr/bin/python3 -c 'import numpy'") ? "/usr/bin/python3"
                                                                          : NULL;
    if (!py)
        skip();
    char *data = malloc(64 * 1024), *p = data;
    p += sprintf(p, "a,b,c,d,e,f\n");
    uint64_t s = 99;
    for (int r = 0; r < 200; r++) {
        double v[6];
        for (int k = 0; k < 6; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            v[k] = (double)((int64_t)(s >> 33) % 10000) / 1000.0;
        }
        v[3] += 2 * v[0];
        v[5] -= v[1];
        p += sprintf(p, "%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", v[0], v[1], v[2], v[3], v[4], v[5]);
    }
    char *path = tb_write_plain("pca.csv", data);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import numpy as n; x=n.loadtxt(\"%s\",delimiter=\",\",skiprows=1); "
             "w,v=n.linalg.eigh(n.cov(x.T)); o=n.argsort(-w); "
             "print(\" \".join(\"%%.17g\" %% q for q in list(w[o])+list(n.abs(v[:,o].T).ravel())))'",
             py, path);
    char *ref = tb_shell_out(cmd);
    assert_non_null(ref);
    double want[6 + 36];
    char *q = ref;
    for (int i = 0; i < 42; i++)
        want[i] = strtod(q, &q);
    tb_in in[1] = {{"x", data}};
    const char *const co[] = {"components"};
    tb_run run;
    tb_expect_ok("pca", NULL, in, 1, co, 1, &run);
    const char *r1 = strstr(run.out[0], "\n1,");
    double got[6 * 8];
    assert_int_equal(nums(r1, 1, got, 48), 48);
    for (int c = 0; c < 6; c++) {
        double ev = got[c * 8];
        if (fabs(ev - want[c]) > 1e-9 * (1 + fabs(want[c])))
            fail_msg("eigenvalue %d: %.17g vs numpy %.17g", c, ev, want[c]);
        for (int k = 0; k < 6; k++)
            if (fabs(fabs(got[c * 8 + 2 + k]) - want[6 + c * 6 + k]) > 1e-7)
                fail_msg("component %d[%d]: %.17g vs numpy %.17g", c, k, got[c * 8 + 2 + k],
                         want[6 + c * 6 + k]);
    }
    tb_run_clear(&run);
    free(ref);
    free(path);
    free(data);
}

static void test_bad_input(void **state)
{
    (void)state;
    tb_in ok[1] = {{"a", "x,y\n1,2\n3,4\n"}};
    tb_expect_fail("kmeans", NULL, ok, 1, km_outs, 2, "argument 'k' is required");
    tb_expect_fail("kmeans", tb_args("k", "3", NULL), ok, 1, km_outs, 2,
                   "3 clusters but only 2 rows");
    tb_expect_fail("kmeans", tb_args("k", "0", NULL), ok, 1, km_outs, 2,
                   "argument 'k': expected an integer from 1 to 10000");
    tb_expect_fail("kmeans", tb_args("k", "1", "kk", "1", NULL), ok, 1, km_outs, 2,
                   "unknown argument 'kk'");
    const char *const other[] = {"model"};
    tb_expect_fail("kmeans", tb_args("k", "1", NULL), ok, 1, other, 1,
                   "output 'model' is neither 'centroids'");
    tb_expect_fail("kmeans", tb_args("k", "1", NULL), ok, 1, NULL, 0,
                   "declare an output 'centroids' or 'assignments'");
    tb_in bad[1] = {{"a", "x,y\n1,2\n3,\n"}};
    tb_expect_fail("kmeans", tb_args("k", "1", NULL), bad, 1, km_outs, 2,
                   "input 'a', line 3, column 2: empty numeric field");
    tb_in q[1] = {{"a", "x,y\n1,2\n\"3,4\n"}};
    tb_expect_fail("kmeans", tb_args("k", "1", NULL), q, 1, km_outs, 2, "input 'a', line 3");
    /* exact text: the prefix once (it was formatted into its own buffer) */
    tb_expect_fail("kmeans", tb_args("k", "1", "features", "x,w", NULL), ok, 1, km_outs, 2,
                   "argument 'features': input 'a', line 1: no feature column 'w'");
    tb_expect_fail("kmeans", tb_args("k", "1", "id", "name", NULL), ok, 1, km_outs, 2,
                   "input 'a', line 1: no id column 'name'");
    const char *const pc[] = {"components"};
    tb_expect_fail("pca", tb_args("components", "3", NULL), ok, 1, pc, 1,
                   "argument 'components': 3, but only 2 features");
    tb_in one[1] = {{"a", "x,y\n1,2\n"}};
    tb_expect_fail("pca", NULL, one, 1, pc, 1, "at least 2 rows");
    tb_in cst[1] = {{"a", "x,y\n1,2\n1,3\n"}};
    tb_expect_fail("pca", tb_args("scale", "true", NULL), cst, 1, pc, 1,
                   "feature 1 (in the order used) is constant");
    tb_expect_fail("pca", tb_args("scale", "yes", NULL), cst, 1, pc, 1, "argument 'scale'");
    tb_in empty[1] = {{"a", ""}};
    tb_expect_fail("pca", NULL, empty, 1, pc, 1, "input 'a'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kmeans_golden),
        cmocka_unit_test(test_pca_golden),
        cmocka_unit_test(test_pca_numpy),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, tb_setup, tb_teardown);
}
