/* Unit tests of the built-in argument schemas (mt_bschema.h): the table is in
 * step with the worker's registry, and every kind of bad value, unknown or
 * missing argument and wrong slot layout is refused with an error naming the
 * argument and never quoting the value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mt_bschema.h"
#include "mt_executor.h"

#define SECRET "S3CRETvalue"

static json_t *obj(const char *text)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    assert_non_null(o);
    return o;
}

/* The check must fail with MT_EINVAL, name want, and never quote SECRET. */
static void refused(mt_status rc, const mt_err *err, const char *want)
{
    assert_int_equal(rc, MT_EINVAL);
    if (!strstr(err->msg, want))
        fail_msg("expected '%s' in: %s", want, err->msg);
    assert_null(strstr(err->msg, SECRET));
}

static void test_table_matches_registry(void **state)
{
    (void)state;
    assert_true(mt_bschema_count() >= 17);
    for (size_t i = 0; i < mt_bschema_count(); i++) {
        const mt_bschema *s = mt_bschema_at(i);
        if (!mt_builtin_exists(s->name))
            fail_msg("schema '%s' has no built-in in the registry", s->name);
        assert_ptr_equal(mt_bschema_find(s->name), s);
        for (size_t j = 0; j < s->n_args; j++) {
            assert_non_null(s->args[j].help);
            assert_ptr_equal(mt_bschema_arg(s, s->args[j].name), &s->args[j]);
            mt_err err;
            /* every documented default is itself valid */
            if (s->args[j].dflt)
                assert_int_equal(mt_bschema_check_value(&s->args[j], s->args[j].dflt, &err),
                                 MT_OK);
        }
        json_t *o = mt_bschema_json(s);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "name")), s->name);
        assert_int_equal(json_array_size(json_object_get(o, "arguments")), s->n_args);
        json_decref(o);
    }
    /* the other direction: every production built-in has a schema */
    static const char *const names[] = {
        "echo", "psi", "private_join_and_compute", "psi_cardinality", "ordered_set_intersect",
        "ordered_set_join", "linear_regression_train", "linear_regression_predict",
        "logistic_regression_train", "logistic_regression_predict", "sql", "password_check",
        "rsa_sign", "keystore_sign", "gbdt_train", "gbdt_predict", "kmeans", "pca", "onnx_infer",
        "image_classify", "face_detect", NULL};
    size_t n = 0;
    for (size_t i = 0; names[i]; i++, n++) {
        assert_true(mt_builtin_exists(names[i]));
        assert_non_null(mt_bschema_find(names[i]));
    }
    assert_int_equal(n, mt_bschema_count());
    assert_null(mt_bschema_find("nope"));
    assert_null(mt_bschema_find(NULL));
    assert_null(mt_bschema_find("__test_spin"));
}

static void test_values_garbage(void **state)
{
    (void)state;
    mt_err err;
    const mt_bschema *g = mt_bschema_find("gbdt_train");
    const mt_barg *trees = mt_bschema_arg(g, "trees"), *eta = mt_bschema_arg(g, "eta");
    const mt_barg *obj_ = mt_bschema_arg(g, "objective");
    /* integers: type and range */
    static const char *const bad_int[] = {"", "abc", "1.5", " 1", "1 ", "1e3", "0x10", "+",
                                          "0", "10001", "-1", "99999999999999999999",
                                          SECRET, NULL};
    for (size_t i = 0; bad_int[i]; i++)
        refused(mt_bschema_check_value(trees, bad_int[i], &err), &err,
                "argument 'trees': expected an integer from 1 to 10000");
    assert_int_equal(mt_bschema_check_value(trees, "1", &err), MT_OK);
    assert_int_equal(mt_bschema_check_value(trees, "10000", &err), MT_OK);
    assert_int_equal(mt_bschema_check_value(trees, "+7", &err), MT_OK);
    /* numbers */
    static const char *const bad_num[] = {"", "nan", "inf", "-inf", "1e400", "0x1p3", ".", "1e",
                                          "1.5.2", "2", "0", "-0.5", " 0.5", SECRET, NULL};
    for (size_t i = 0; bad_num[i]; i++)
        refused(mt_bschema_check_value(eta, bad_num[i], &err), &err, "argument 'eta': expected a number");
    assert_int_equal(mt_bschema_check_value(eta, "0.3", &err), MT_OK);
    assert_int_equal(mt_bschema_check_value(eta, "1", &err), MT_OK);
    assert_int_equal(mt_bschema_check_value(eta, "1e-1", &err), MT_OK);
    assert_int_equal(mt_bschema_check_value(eta, ".5", &err), MT_OK);
    /* enums: exact, case-sensitive */
    refused(mt_bschema_check_value(obj_, "BINARY:LOGISTIC", &err), &err,
            "argument 'objective': expected binary:logistic, reg:squarederror or multi:softprob");
    refused(mt_bschema_check_value(obj_, SECRET, &err), &err, "argument 'objective'");
    assert_int_equal(mt_bschema_check_value(obj_, "multi:softprob", &err), MT_OK);
    /* booleans */
    const mt_barg *icpt = mt_bschema_arg(mt_bschema_find("linear_regression_train"), "intercept");
    static const char *const bad_bool[] = {"", "1", "yes", "TRUE", "true ", SECRET, NULL};
    for (size_t i = 0; bad_bool[i]; i++)
        refused(mt_bschema_check_value(icpt, bad_bool[i], &err), &err,
                "argument 'intercept': expected true or false");
    /* slot names */
    const mt_barg *ms = mt_bschema_arg(mt_bschema_find("gbdt_predict"), "model_slot");
    refused(mt_bschema_check_value(ms, "a-b", &err), &err, "argument 'model_slot': expected a slot");
    refused(mt_bschema_check_value(ms, "", &err), &err, "argument 'model_slot'");
    /* strings: length */
    const mt_barg *q = mt_bschema_arg(mt_bschema_find("sql"), "query");
    static char big[100002];
    memset(big, 'x', sizeof big - 1);
    refused(mt_bschema_check_value(q, big, &err), &err, "argument 'query': longer than 100000");
    big[100000] = '\0';
    assert_int_equal(mt_bschema_check_value(q, big, &err), MT_OK);
    refused(mt_bschema_check_value(q, NULL, &err), &err, "argument 'query'");
}

static void test_args_objects(void **state)
{
    (void)state;
    mt_err err;
    const mt_bschema *k = mt_bschema_find("kmeans");
    json_t *a = obj("{\"k\":\"3\",\"seed\":\"9\"}");
    assert_int_equal(mt_bschema_check_args(k, a, true, &err), MT_OK);
    json_decref(a);
    /* unknown argument */
    a = obj("{\"k\":\"3\",\"kk\":\"" SECRET "\"}");
    refused(mt_bschema_check_args(k, a, true, &err), &err, "kmeans: unknown argument 'kk'");
    json_decref(a);
    /* missing required: only when complete */
    a = obj("{\"seed\":\"1\"}");
    assert_int_equal(mt_bschema_check_args(k, a, false, &err), MT_OK);
    refused(mt_bschema_check_args(k, a, true, &err), &err, "kmeans: argument 'k' is required");
    json_decref(a);
    refused(mt_bschema_check_args(k, NULL, true, &err), &err, "argument 'k' is required");
    /* required but empty */
    a = obj("{\"k\":\"\"}");
    refused(mt_bschema_check_args(k, a, false, &err), &err, "argument 'k' is required");
    json_decref(a);
    /* wrong JSON type */
    a = obj("{\"k\":3}");
    refused(mt_bschema_check_args(k, a, true, &err), &err, "argument 'k': expected a string");
    json_decref(a);
    a = obj("[\"k\"]");
    refused(mt_bschema_check_args(k, a, true, &err), &err, "arguments must be an object");
    json_decref(a);
    /* out of range */
    a = obj("{\"k\":\"0\"}");
    refused(mt_bschema_check_args(k, a, true, &err), &err, "argument 'k': expected an integer");
    json_decref(a);
    /* psi takes none */
    a = obj("{\"x\":\"1\"}");
    refused(mt_bschema_check_args(mt_bschema_find("psi"), a, true, &err), &err,
            "psi: unknown argument 'x'");
    json_decref(a);
    /* wasm: the function's own names are free, "wasm_" is reserved */
    const mt_bschema *w = mt_bschema_wasm();
    a = obj("{\"top\":\"anything\",\"wasm_fuel\":\"5000\",\"wasm_clock\":\"1\"}");
    assert_int_equal(mt_bschema_check_args(w, a, true, &err), MT_OK);
    json_decref(a);
    a = obj("{\"wasm_fuel\":\"0\"}");
    refused(mt_bschema_check_args(w, a, true, &err), &err, "argument 'wasm_fuel'");
    json_decref(a);
    a = obj("{\"wasm_memory_mb\":\"1025\"}");
    refused(mt_bschema_check_args(w, a, true, &err), &err, "argument 'wasm_memory_mb'");
    json_decref(a);
    a = obj("{\"wasm_clocks\":\"1\"}");
    refused(mt_bschema_check_args(w, a, true, &err), &err, "unknown argument 'wasm_clocks'");
    json_decref(a);
    a = obj("{\"mine\":1}");
    refused(mt_bschema_check_args(w, a, true, &err), &err, "argument 'mine': expected a string");
    json_decref(a);
}

static void test_declarations(void **state)
{
    (void)state;
    mt_err err;
    const mt_bschema *sql = mt_bschema_find("sql");
    json_t *d = obj("[{\"name\":\"query\",\"default\":\"SELECT 1\",\"overridable\":false}]");
    assert_int_equal(mt_bschema_check_decl(sql, d, 1, 1, &err), MT_OK);
    /* slot counts */
    refused(mt_bschema_check_decl(sql, d, 0, 1, &err), &err, "sql: needs at least 1 input slots");
    json_decref(d);
    /* a required argument must be declared */
    d = obj("[{\"name\":\"max_rows\",\"default\":\"5\",\"overridable\":false}]");
    refused(mt_bschema_check_decl(sql, d, 1, 0, &err), &err, "argument 'query' is required");
    json_decref(d);
    /* ... with a value, or overridable to be set per task */
    d = obj("[{\"name\":\"query\",\"default\":\"\",\"overridable\":false}]");
    refused(mt_bschema_check_decl(sql, d, 1, 0, &err), &err, "argument 'query' is required");
    json_decref(d);
    d = obj("[{\"name\":\"query\",\"default\":\"\",\"overridable\":true}]");
    assert_int_equal(mt_bschema_check_decl(sql, d, 1, 0, &err), MT_OK);
    json_decref(d);
    /* a bad default, an unknown name */
    d = obj("[{\"name\":\"query\",\"default\":\"SELECT 1\"},{\"name\":\"max_rows\",\"default\":"
            "\"" SECRET "\",\"overridable\":true}]");
    refused(mt_bschema_check_decl(sql, d, 1, 0, &err), &err, "argument 'max_rows': expected an integer");
    json_decref(d);
    d = obj("[{\"name\":\"query\",\"default\":\"SELECT 1\"},{\"name\":\"rows\",\"default\":\"1\"}]");
    refused(mt_bschema_check_decl(sql, d, 1, 0, &err), &err, "sql: unknown argument 'rows'");
    json_decref(d);
    /* exact counts */
    const mt_bschema *pc = mt_bschema_find("password_check");
    refused(mt_bschema_check_decl(pc, NULL, 3, 0, &err), &err, "needs exactly 2 input slots, 3 declared");
    refused(mt_bschema_check_decl(pc, NULL, 2, 1, &err), &err, "needs exactly 0 output slots, 1 declared");
    assert_int_equal(mt_bschema_check_decl(pc, NULL, 2, 0, &err), MT_OK);
    refused(mt_bschema_check_decl(mt_bschema_find("kmeans"), NULL, 1, 3, &err), &err,
            "needs 1 to 2 output slots");
}

static void test_slots(void **state)
{
    (void)state;
    mt_err err;
    const mt_bschema *gp = mt_bschema_find("gbdt_predict");
    json_t *ins = obj("[{\"name\":\"model\"},{\"name\":\"rows\"}]");
    json_t *outs = obj("[{\"name\":\"pred\"}]");
    json_t *a = obj("{}");
    assert_int_equal(mt_bschema_check_slots(gp, a, ins, outs, &err), MT_OK); /* default "model" */
    json_decref(a);
    a = obj("{\"model_slot\":\"rows\"}");
    assert_int_equal(mt_bschema_check_slots(gp, a, ins, outs, &err), MT_OK);
    json_decref(a);
    a = obj("{\"model_slot\":\"pred\"}");
    refused(mt_bschema_check_slots(gp, a, ins, outs, &err), &err,
            "argument 'model_slot' must name one of the function's input slots");
    json_decref(a);
    json_decref(ins);
    /* role outputs: every output is named by centroids_slot / assignments_slot */
    const mt_bschema *k = mt_bschema_find("kmeans");
    ins = obj("[{\"name\":\"a\"}]");
    json_t *good = obj("[{\"name\":\"centroids\"},{\"name\":\"assignments\"}]");
    a = obj("{\"k\":\"2\"}");
    assert_int_equal(mt_bschema_check_slots(k, a, ins, good, &err), MT_OK);
    refused(mt_bschema_check_slots(k, a, ins, outs, &err), &err,
            "every output slot must be the one named by centroids_slot, assignments_slot");
    json_decref(a);
    a = obj("{\"k\":\"2\",\"centroids_slot\":\"pred\"}");
    assert_int_equal(mt_bschema_check_slots(k, a, ins, outs, &err), MT_OK);
    json_decref(a);
    json_decref(ins);
    json_decref(good);
    json_decref(outs);
}

static void test_wasm_declared_types(void **state)
{
    (void)state;
    mt_err err;
    const mt_bschema *w = mt_bschema_wasm();
    json_t *d = obj("[{\"name\":\"top\",\"default\":\"3\",\"overridable\":true,\"type\":"
                    "\"integer\"},{\"name\":\"rate\",\"default\":\"\",\"overridable\":true,"
                    "\"type\":\"number\"},{\"name\":\"on\",\"default\":\"true\",\"type\":"
                    "\"boolean\"},{\"name\":\"free\",\"default\":\"x\"}]");
    assert_int_equal(mt_bschema_check_decl(w, d, 0, 0, &err), MT_OK);
    json_t *a = obj("{\"top\":\"7\",\"rate\":\"0.5\",\"on\":\"false\",\"free\":\"y\"}");
    assert_int_equal(mt_bschema_check_typed(d, a, &err), MT_OK);
    json_decref(a);
    a = obj("{\"top\":\"" SECRET "\"}");
    refused(mt_bschema_check_typed(d, a, &err), &err, "argument 'top': expected an integer");
    json_decref(a);
    a = obj("{\"rate\":\"nan\"}");
    refused(mt_bschema_check_typed(d, a, &err), &err, "argument 'rate': expected a finite number");
    json_decref(a);
    a = obj("{\"on\":\"1\"}");
    refused(mt_bschema_check_typed(d, a, &err), &err, "argument 'on': expected true or false");
    json_decref(a);
    json_decref(d);
    /* a bad typed default, an unknown type */
    d = obj("[{\"name\":\"top\",\"default\":\"x\",\"type\":\"integer\"}]");
    refused(mt_bschema_check_decl(w, d, 0, 0, &err), &err, "argument 'top': expected an integer");
    json_decref(d);
    d = obj("[{\"name\":\"top\",\"default\":\"x\",\"type\":\"int\"}]");
    refused(mt_bschema_check_decl(w, d, 0, 0, &err), &err, "unknown declared type");
    json_decref(d);
    /* built-in arguments take their type from the schema */
    d = obj("[{\"name\":\"k\",\"default\":\"2\",\"type\":\"integer\"}]");
    refused(mt_bschema_check_decl(mt_bschema_find("kmeans"), d, 1, 1, &err), &err,
            "takes its type from the schema");
    json_decref(d);
    d = obj("[{\"name\":\"wasm_fuel\",\"default\":\"2\",\"type\":\"integer\"}]");
    refused(mt_bschema_check_decl(w, d, 0, 0, &err), &err, "takes its type from the schema");
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_registry), cmocka_unit_test(test_values_garbage),
        cmocka_unit_test(test_args_objects),           cmocka_unit_test(test_declarations),
        cmocka_unit_test(test_slots),                  cmocka_unit_test(test_wasm_declared_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
