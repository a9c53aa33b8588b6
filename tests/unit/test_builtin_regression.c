/* Tests of linear_regression_train/predict and logistic_regression_train/
 * predict through mt_executor_run and the real mesatee-worker: golden
 * models, a cross-check against numpy's closed form (skipped without
 * python3-numpy), the optimality condition of the logistic fit, bad input. */
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

static const char *const one_out[] = {"model_out", "copy"};

static json_t *model_of(const tb_run *run, size_t i)
{
    json_error_t je;
    json_t *m = json_loads(run->out[i], 0, &je);
    assert_non_null(m);
    return m;
}

static double coef(const json_t *m, size_t k)
{
    return json_number_value(json_array_get(json_object_get(m, "coefficients"), k));
}

static void test_linear_golden(void **state)
{
    /* y = 1 + 2 x1 - 3 x2, rows from two parties, columns in different order */
    tb_in in[2] = {{"a", "x1,x2,y\n0,0,1\n1,0,3\n0,1,-2\n"},
                   {"b", "y,x2,x1\n1,2,3\n5,1,3.5\n9.5,-2,1.25\n"}};
    tb_run run;
    tb_expect_ok("linear_regression_train", tb_args("label", "y", NULL), in, 2, one_out, 2, &run);
    assert_string_equal(run.r.return_value, "rows: 6, r2: 1.000000");
    assert_string_equal(run.out[0], run.out[1]);
    json_t *m = model_of(&run, 0);
    assert_string_equal(json_string_value(json_object_get(m, "model")), "linear_regression");
    assert_string_equal(json_string_value(json_object_get(m, "label")), "y");
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "features"), 1)), "x2");
    assert_true(fabs(json_number_value(json_object_get(m, "intercept")) - 1) < 1e-9);
    assert_true(fabs(coef(m, 0) - 2) < 1e-9);
    assert_true(fabs(coef(m, 1) + 3) < 1e-9);
    assert_int_equal(json_integer_value(json_object_get(m, "rows")), 6);

    /* chained: the model is the input of predict */
    tb_in pin[2] = {{"model", run.out[0]}, {"data", "name,x2,x1\np,1,1\n\"q,r\",0,10\n"}};
    tb_run pr;
    const char *const pouts[] = {"pred"};
    tb_expect_ok("linear_regression_predict", tb_args("id", "name", NULL), pin, 2, pouts, 1, &pr);
    double v1, v2;
    assert_int_equal(sscanf(pr.out[0], "id,prediction\np,%lf\n\"q,r\",%lf\n", &v1, &v2), 2);
    assert_true(fabs(v1) < 1e-9 && fabs(v2 - 21) < 1e-9);
    assert_string_equal(pr.r.return_value, "predicted rows: 2");
    tb_run_clear(&pr);
    json_decref(m);
    tb_run_clear(&run);

    /* ridge without intercept, one feature: w = sum(xy) / (sum(x^2) + ridge) = 28/15 */
    tb_in r1[1] = {{"a", "x,y\n1,2\n2,4\n3,6\n"}};
    tb_expect_ok("linear_regression_train",
                 tb_args("label", "2", "ridge", "1", "intercept", "false", NULL), r1, 1, one_out,
                 1, &run);
    m = model_of(&run, 0);
    assert_true(fabs(coef(m, 0) - 28.0 / 15.0) < 1e-12);
    assert_true(json_number_value(json_object_get(m, "intercept")) == 0);
    assert_true(json_number_value(json_object_get(m, "ridge")) == 1);
    json_decref(m);
    tb_run_clear(&run);

    /* explicit feature subset */
    tb_in r2[1] = {{"a", "junk,x,y\nq,1,3\nw,2,5\ne,4,9\n"}};
    tb_expect_ok("linear_regression_train", tb_args("label", "y", "features", "x", NULL), r2, 1,
                 one_out, 1, &run);
    m = model_of(&run, 0);
    assert_int_equal(json_array_size(json_object_get(m, "coefficients")), 1);
    assert_true(fabs(coef(m, 0) - 2) < 1e-9);
    json_decref(m);
    tb_run_clear(&run);
}

/* Deterministic pseudo-random numbers in [-1, 1). */
static double lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / (double)(1ULL << 52) - 1.0;
}

static void test_linear_numpy(void **state)
{
    /* Debian's numpy lives with /usr/bin/python3, which may not be first on PATH */
    const char *py = tb_shell_ok("python3 -c 'import numpy'")            ? "python3"
                     : tb_shell_ok("/usr/bin/python3 -c 'import numpy'") ? "/usr/bin/python3"
                                                                          : NULL;
    if (!py) {
        print_message("python3-numpy is not importable: numpy cross-check skipped\n");
        skip();
    }
    char *csv = malloc(1 << 16);
    size_t o = (size_t)sprintf(csv, "f1,f2,f3,target\n");
    uint64_t s = 7;
    for (int r = 0; r < 200; r++) {
        double a = lcg(&s) * 10, b = lcg(&s), c = lcg(&s) * 100;
        double y = 0.5 + 1.5 * a - 2 * b + 0.01 * c + lcg(&s) * 0.3;
        o += (size_t)sprintf(csv + o, "%.17g,%.17g,%.17g,%.17g\n", a, b, c, y);
    }
    tb_in in[1] = {{"data", csv}};
    tb_run run;
    tb_expect_ok("linear_regression_train", tb_args("label", "target", "ridge", "0.5", NULL), in,
                 1, one_out, 1, &run);
    json_t *m = model_of(&run, 0);
    char *path = tb_write_plain("train.csv", csv);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import numpy as np; d = np.loadtxt(\"%s\", delimiter=\",\", skiprows=1); "
             "X = np.hstack([d[:, :3], np.ones((len(d), 1))]); y = d[:, 3]; "
             "A = X.T @ X + 0.5 * np.diag([1, 1, 1, 0]); "
             "print(\" \".join(\"%%.17g\" %% v for v in np.linalg.solve(A, X.T @ y)))'",
             py, path);
    char *out = tb_shell_out(cmd);
    assert_non_null(out);
    double want[4];
    assert_int_equal(sscanf(out, "%lf %lf %lf %lf", &want[0], &want[1], &want[2], &want[3]), 4);
    for (int k = 0; k < 3; k++)
        assert_true(fabs(coef(m, (size_t)k) - want[k]) <= 1e-9 * (1 + fabs(want[k])));
    assert_true(fabs(json_number_value(json_object_get(m, "intercept")) - want[3]) <=
                1e-9 * (1 + fabs(want[3])));
    free(out);
    free(path);
    free(csv);
    json_decref(m);
    tb_run_clear(&run);
}

static void test_linear_bad(void **state)
{
    tb_in ok[1] = {{"a", "x,y\n1,2\n2,4\n"}};
    tb_expect_fail("linear_regression_train", NULL, ok, 1, one_out, 1, "argument 'label' is required");
    tb_expect_fail("linear_regression_train", tb_args("label", "z", NULL), ok, 1, one_out, 1,
                   "argument 'label': input 'a' has no column 'z'");
    tb_expect_fail("linear_regression_train", tb_args("label", "y", "ridge", "-1", NULL), ok, 1,
                   one_out, 1, "argument 'ridge': expected a number");
    tb_expect_fail("linear_regression_train", tb_args("label", "y", "intercept", "yes", NULL), ok,
                   1, one_out, 1, "argument 'intercept': expected true or false");
    tb_expect_fail("linear_regression_train", tb_args("label", "y", "features", "x,q", NULL), ok,
                   1, one_out, 1, "argument 'features': input 'a' has no column 'q'");
    tb_in nan[1] = {{"a", "x,y\n1,2\n2,four\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), nan, 1, one_out, 1,
                   "input 'a', line 3, column 2: not a finite number");
    tb_in cols[1] = {{"a", "x,y\n1,2\n2\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), cols, 1, one_out, 1,
                   "input 'a', line 3, column 2: expected 2 fields");
    tb_in coll[1] = {{"a", "x1,x2,y\n1,2,1\n2,4,0\n3,6,1\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), coll, 1, one_out, 1,
                   "normal equations are singular");
    tb_in hdr[1] = {{"a", "x,y\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), hdr, 1, one_out, 1,
                   "no training rows");
    tb_in empty[1] = {{"a", ""}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), empty, 1, one_out, 1,
                   "input 'a', line 1, column 1: empty input");
    tb_in two[2] = {{"a", "x,y\n1,2\n"}, {"b", "y,z\n1,2\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), two, 2, one_out, 1,
                   "input 'b' has no feature column 'x'");

    const char *model = "{\"model\":\"linear_regression\",\"features\":[\"x\"],"
                        "\"coefficients\":[2],\"intercept\":1}";
    tb_in p1[2] = {{"model", model}, {"data", "y\n1\n"}};
    const char *const pouts[] = {"pred"};
    tb_expect_fail("linear_regression_predict", NULL, p1, 2, pouts, 1,
                   "input 'data' has no column for the model's feature 1 (line 1)");
    tb_in p2[2] = {{"model", "{\"model\":\"linear_regression\"}"}, {"data", "x\n1\n"}};
    tb_expect_fail("linear_regression_predict", NULL, p2, 2, pouts, 1,
                   "input 'model': not a model");
    tb_in p3[2] = {{"model", model}, {"data", "x\n1\n2x\n"}};
    tb_expect_fail("linear_regression_predict", NULL, p3, 2, pouts, 1,
                   "input 'data', line 3, column 1: not a finite number");
    tb_expect_fail("logistic_regression_predict", NULL, p3, 2, pouts, 1,
                   "a 'linear_regression' model, expected 'logistic_regression'");
    tb_in p4[2] = {{"m", model}, {"data", "x\n1\n"}};
    tb_expect_fail("linear_regression_predict", NULL, p4, 2, pouts, 1,
                   "no input slot 'model' holding the model");
    tb_run run;
    tb_expect_ok("linear_regression_predict", tb_args("model_slot", "m", NULL), p4, 2, pouts, 1,
                 &run);
    assert_string_equal(run.out[0], "prediction\n3\n");
    tb_run_clear(&run);
}

static double sigmoid(double z)
{
    return 1 / (1 + exp(-z));
}

static void test_logistic(void **state)
{
    char *csv = malloc(1 << 16);
    size_t o = (size_t)sprintf(csv, "age,score,bought\n");
    uint64_t s = 11;
    double X[300][2], Y[300];
    for (int r = 0; r < 300; r++) {
        X[r][0] = lcg(&s) * 3;
        X[r][1] = lcg(&s) * 2;
        double p = sigmoid(0.3 + 2 * X[r][0] - 1 * X[r][1]);
        Y[r] = (lcg(&s) + 1) / 2 < p ? 1 : 0;
        o += (size_t)sprintf(csv + o, "%.17g,%.17g,%g\n", X[r][0], X[r][1], Y[r]);
    }
    tb_in in[1] = {{"shop", csv}};
    tb_run run;
    tb_expect_ok("logistic_regression_train",
                 tb_args("label", "bought", "C", "2", "eps", "1e-10", NULL), in, 1, one_out, 1,
                 &run);
    json_t *m = model_of(&run, 0);
    double w[3] = {coef(m, 0), coef(m, 1), json_number_value(json_object_get(m, "intercept"))};
    /* optimality of min 1/2 |w|^2 + C sum log(1 + exp(-y' w.x)) (bias included in w,
     * as liblinear regularises it): w + C sum (sigma(w.x) - y) x = 0 */
    double g[3] = {w[0], w[1], w[2]};
    for (int r = 0; r < 300; r++) {
        double d = 2 * (sigmoid(w[0] * X[r][0] + w[1] * X[r][1] + w[2]) - Y[r]);
        g[0] += d * X[r][0];
        g[1] += d * X[r][1];
        g[2] += d;
    }
    for (int k = 0; k < 3; k++)
        assert_true(fabs(g[k]) < 1e-5);
    assert_true(w[0] > 1 && w[1] < 0); /* the generating signs */
    assert_string_equal(json_string_value(json_object_get(m, "model")), "logistic_regression");
    assert_true(json_number_value(json_object_get(m, "C")) == 2);
    assert_non_null(strstr(run.r.return_value, "rows: 300, training accuracy: 0."));

    /* predict with the trained model: same probabilities as computed here */
    tb_in pin[2] = {{"model", run.out[0]}, {"new", "score,age\n0,0\n-1,2\n"}};
    const char *const pouts[] = {"pred"};
    tb_run pr;
    tb_expect_ok("logistic_regression_predict", NULL, pin, 2, pouts, 1, &pr);
    double p1, p2;
    int l1, l2;
    assert_int_equal(sscanf(pr.out[0], "probability,prediction\n%lf,%d\n%lf,%d\n", &p1, &l1,
                            &p2, &l2),
                     4);
    assert_true(fabs(p1 - sigmoid(w[2])) < 1e-12);
    assert_true(fabs(p2 - sigmoid(w[2] + 2 * w[0] - w[1])) < 1e-12);
    assert_int_equal(l1, p1 >= 0.5);
    assert_int_equal(l2, 1);
    tb_run_clear(&pr);
    json_decref(m);
    tb_run_clear(&run);
    free(csv);

    /* golden predict on a hand-written model */
    const char *model = "{\"model\":\"logistic_regression\",\"features\":[\"x\"],"
                        "\"coefficients\":[1],\"intercept\":0}";
    tb_in g1[2] = {{"model", model}, {"d", "x\n0\n-2\n"}};
    tb_expect_ok("logistic_regression_predict", NULL, g1, 2, pouts, 1, &pr);
    assert_string_equal(pr.out[0], "probability,prediction\n0.5,1\n0.11920292202211755,0\n");
    tb_run_clear(&pr);
}

static void test_logistic_bad(void **state)
{
    tb_in lab[1] = {{"a", "x,y\n1,0\n2,1\n3,2\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), lab, 1, one_out, 1,
                   "input 'a', line 4, column 2: label must be 0 or 1");
    tb_in one[1] = {{"a", "x,y\n1,1\n2,1\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), one, 1, one_out, 1,
                   "every label is 1");
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", "C", "0", NULL), one, 1,
                   one_out, 1, "argument 'C': expected a number");
    tb_in nolab[1] = {{"a", "x,z\n1,1\n2,0\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), nolab, 1, one_out, 1,
                   "has no column 'y'");
    tb_in quote[1] = {{"a", "x,y\n1,\"0\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), quote, 1, one_out, 1,
                   "input 'a', line 2, column 2: unterminated quoted field");
}

/* Both solvers minimise the same objective: with a tight tolerance their
 * coefficients agree; the default is lbfgs; rows pool from two slots. */
static void test_logistic_solvers(void **state)
{
    char *a = malloc(1 << 16), *b = malloc(1 << 16);
    size_t oa = (size_t)sprintf(a, "u,v,w,y\n"), ob = (size_t)sprintf(b, "y,w,v,u\n");
    uint64_t s = 5;
    for (int r = 0; r < 400; r++) {
        double u = lcg(&s) * 2, v = lcg(&s) * 3 + 1, w = lcg(&s);
        double p = sigmoid(-0.5 + 1.5 * u - 0.7 * v + 0.2 * w);
        int y = (lcg(&s) + 1) / 2 < p;
        if (r % 3)
            oa += (size_t)sprintf(a + oa, "%.6g,%.6g,%.6g,%d\r\n", u, v, w, y);
        else
            ob += (size_t)sprintf(b + ob, "%d,\"%.6g\",%.6g,%.6g\n", y, w, v, u);
    }
    tb_in in[2] = {{"b", b}, {"a", a}};
    json_t *m[2];
    const char *solver[2] = {"lbfgs", "liblinear"};
    for (int k = 0; k < 2; k++) {
        tb_run run;
        tb_expect_ok("logistic_regression_train",
                     tb_args("label", "y", "eps", "1e-9", "solver", solver[k], NULL), in, 2,
                     one_out, 1, &run);
        assert_non_null(strstr(run.r.return_value, "rows: 400, training accuracy: 0."));
        m[k] = model_of(&run, 0);
        tb_run_clear(&run);
    }
    for (int k = 0; k < 3; k++)
        assert_true(fabs(coef(m[0], (size_t)k) - coef(m[1], (size_t)k)) < 1e-6);
    assert_true(fabs(json_number_value(json_object_get(m[0], "intercept")) -
                     json_number_value(json_object_get(m[1], "intercept"))) < 1e-6);
    /* the default is lbfgs, same model as asking for it */
    tb_run run;
    tb_expect_ok("logistic_regression_train", tb_args("label", "y", "eps", "1e-9", NULL), in, 2,
                 one_out, 1, &run);
    json_t *d = model_of(&run, 0);
    assert_true(json_equal(d, m[0]));
    json_decref(d);
    tb_run_clear(&run);
    json_decref(m[0]);
    json_decref(m[1]);
    free(a);
    free(b);
    tb_in one[1] = {{"a", "x,y\n1,0\n2,1\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", "solver", "newton", NULL),
                   one, 1, one_out, 1, "argument 'solver': expected lbfgs or liblinear");
}

/* Errors come in the order of a reader that parses every input before it
 * reads a number: CSV syntax first (any slot), then columns, then numbers,
 * then labels. */
static void test_error_order(void **state)
{
    tb_in syn[1] = {{"a", "x,y\n1,zz\n2,1\n3,\"1\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), syn, 1, one_out, 1,
                   "input 'a', line 4, column 2: unterminated quoted field");
    tb_in syn2[2] = {{"a", "x,y\n1,zz\n"}, {"b", "x,y\n1,0\n2,1,3\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), syn2, 2, one_out, 1,
                   "input 'b', line 3, column 3: expected 2 fields as in the header, found 3");
    tb_in col[2] = {{"a", "x,y\n1,zz\n"}, {"b", "x,z\n1,0\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), col, 2, one_out, 1,
                   "input 'b' has no label column 'y' (line 1)");
    tb_in col2[2] = {{"a", "x,z\n1,0\n"}, {"b", "x,y\n1,\"0\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), col2, 2, one_out, 1,
                   "input 'b', line 2, column 2: unterminated quoted field");
    tb_in num[2] = {{"a", "x,y\n1,0\n2,3\n"}, {"b", "y,x\n1,\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), num, 2, one_out, 1,
                   "input 'b', line 2, column 2: empty numeric field");
    tb_in lab[2] = {{"a", "x,y\n1,0\n2,3\n"}, {"b", "y,x\n1,2\n"}};
    tb_expect_fail("logistic_regression_train", tb_args("label", "y", NULL), lab, 2, one_out, 1,
                   "input 'a', line 3, column 2: label must be 0 or 1");
    tb_in empty[2] = {{"a", "x,y\n"}, {"b", "y,x\r\n\r\n"}};
    tb_expect_fail("linear_regression_train", tb_args("label", "y", NULL), empty, 2, one_out, 1,
                   "no training rows");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_golden, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_linear_numpy, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_linear_bad, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_logistic, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_logistic_bad, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_logistic_solvers, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_error_order, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
