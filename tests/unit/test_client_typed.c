/* Unit tests of libmesatee's reader of the server's file, function and task
 * JSON (src/client/typed_decode.c): the fields land in the structs, paging
 * cursors are returned, and every malformed answer is refused with a message
 * naming the item and field, leaving the vector as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "typed_decode.h"

#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"
#define ID3 "00112233445566778899aabbccddeeff"
#define H64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

#define FILE1                                                                                  \
    "{\"file_id\":\"" ID1 "\",\"kind\":\"input\",\"name\":\"ids\",\"owners\":[\"alice\"],"    \
    "\"url\":\"mesatee://objects/x\",\"size\":123,\"sha256\":\"" H64 "\",\"written\":true,"   \
    "\"created_at\":\"2026-01-01T00:00:00Z\"}"
#define FILE2                                                                                  \
    "{\"file_id\":\"" ID2 "\",\"kind\":\"fusion\",\"name\":\"\",\"owners\":[\"alice\",\"bob\"]," \
    "\"url\":\"mesatee://objects/y\",\"size\":null,\"sha256\":null,\"written\":false,"         \
    "\"created_at\":\"2026-01-02T00:00:00Z\"}"

static int page(mt_typed_kind k, const char *json, mt_typed_vec *v, char **cur, char *err)
{
    return mt_typed_decode_page(k, json, strlen(json), v, cur, err);
}

static void test_files_page_and_cursor(void **state)
{
    (void)state;
    mt_typed_vec v = {0};
    char *cur = NULL;
    char err[MT_TYPED_ERR_MAX];
    assert_int_equal(page(MT_TYPED_FILE, "{\"files\":[" FILE1 "],\"next_cursor\":\"c/1 +\"}", &v,
                          &cur, err),
                     MESATEE_OK);
    assert_string_equal(cur, "c/1 +");
    free(cur);
    assert_int_equal(page(MT_TYPED_FILE, "{\"files\":[" FILE2 "],\"next_cursor\":null}", &v, &cur,
                          err),
                     MESATEE_OK);
    assert_null(cur);
    assert_int_equal(v.n, 2);
    mesatee_file_info *f = v.items;
    assert_string_equal(f[0].id, ID1);
    assert_string_equal(f[0].kind, "input");
    assert_string_equal(f[0].name, "ids");
    assert_int_equal(f[0].n_owners, 1);
    assert_string_equal(f[0].owners[0], "alice");
    assert_int_equal(f[0].size, 123);
    assert_string_equal(f[0].sha256, H64);
    assert_int_equal(f[0].written, 1);
    assert_string_equal(f[0].created_at, "2026-01-01T00:00:00Z");
    assert_non_null(strstr(f[0].json, "\"url\":\"mesatee://objects/x\""));
    assert_string_equal(f[1].name, "");
    assert_int_equal(f[1].n_owners, 2);
    assert_string_equal(f[1].owners[1], "bob");
    assert_int_equal(f[1].size, -1);
    assert_null(f[1].sha256);
    assert_int_equal(f[1].written, 0);
    /* an empty cursor ends paging like an absent one */
    assert_int_equal(page(MT_TYPED_FILE, "{\"files\":[],\"next_cursor\":\"\"}", &v, &cur, err),
                     MESATEE_OK);
    assert_null(cur);
    assert_int_equal(v.n, 2);
    mt_typed_free(MT_TYPED_FILE, v.items, v.n);
}

static void test_function_and_task(void **state)
{
    (void)state;
    char err[MT_TYPED_ERR_MAX];
    const char *fn = "{\"function_id\":\"" ID1 "\",\"owner\":\"alice\",\"name\":\"psi\","
                     "\"description\":\"d\",\"executor_type\":\"builtin\",\"builtin\":\"psi\","
                     "\"public\":false,\"disabled\":true,\"arguments\":[],"
                     "\"inputs\":[{\"name\":\"a\"},{\"name\":\"b\",\"optional\":true}],"
                     "\"outputs\":[{\"name\":\"r\"}],\"usage_quota\":5,\"current_usage\":2,"
                     "\"created_at\":\"t1\",\"updated_at\":\"t2\",\"allowlist\":[\"bob\"]}";
    void *p = NULL;
    assert_int_equal(mt_typed_decode_one(MT_TYPED_FUNCTION, fn, strlen(fn), &p, err), MESATEE_OK);
    mesatee_function_info *f = p;
    assert_string_equal(f->id, ID1);
    assert_string_equal(f->owner, "alice");
    assert_string_equal(f->builtin, "psi");
    assert_int_equal(f->is_public, 0);
    assert_int_equal(f->disabled, 1);
    assert_int_equal(f->n_inputs, 2);
    assert_string_equal(f->inputs[1], "b");
    assert_int_equal(f->n_outputs, 1);
    assert_string_equal(f->outputs[0], "r");
    assert_int_equal(f->usage_quota, 5);
    assert_int_equal(f->current_usage, 2);
    assert_non_null(strstr(f->json, "\"allowlist\":[\"bob\"]"));
    mt_typed_free(MT_TYPED_FUNCTION, p, 1);

    const char *t = "{\"task_id\":\"" ID2 "\",\"function_id\":\"" ID1 "\",\"function_name\":\"psi\","
                    "\"creator\":\"alice\",\"status\":\"failed\",\"arguments\":{},"
                    "\"inputs\":[],\"outputs\":[],\"participants\":[\"alice\",\"bob\"],"
                    "\"approvals\":[\"bob\"],\"assignments\":{},\"result\":null,"
                    "\"failure_reason\":\"worker crashed\",\"log\":null,"
                    "\"metering\":{\"cpu_ms\":7,\"peak_rss_kb\":8,\"wall_ms\":9,\"bytes_in\":10,"
                    "\"bytes_out\":11,\"fuel_used\":12},\"cancel_requested\":true,"
                    "\"created_at\":\"t1\",\"updated_at\":\"t2\"}";
    assert_int_equal(mt_typed_decode_one(MT_TYPED_TASK, t, strlen(t), &p, err), MESATEE_OK);
    mesatee_task_info *k = p;
    assert_string_equal(k->id, ID2);
    assert_string_equal(k->function_id, ID1);
    assert_string_equal(k->status, "failed");
    assert_int_equal(k->n_participants, 2);
    assert_int_equal(k->n_approvals, 1);
    assert_string_equal(k->approvals[0], "bob");
    assert_string_equal(k->failure_reason, "worker crashed");
    assert_int_equal(k->cancel_requested, 1);
    assert_int_equal(k->cpu_ms, 7);
    assert_int_equal(k->bytes_out, 11);
    assert_int_equal(k->fuel_used, 12);
    mt_typed_free(MT_TYPED_TASK, p, 1);

    /* optional fields absent: defaults, never NULL strings */
    const char *t2 = "{\"task_id\":\"" ID2 "\",\"function_id\":\"" ID1 "\",\"creator\":\"a\","
                     "\"status\":\"created\",\"participants\":[]}";
    assert_int_equal(mt_typed_decode_one(MT_TYPED_TASK, t2, strlen(t2), &p, err), MESATEE_OK);
    k = p;
    assert_string_equal(k->function_name, "");
    assert_non_null(k->approvals);
    assert_int_equal(k->n_approvals, 0);
    assert_null(k->failure_reason);
    assert_int_equal(k->fuel_used, 0);
    mt_typed_free(MT_TYPED_TASK, p, 1);
}

/* Each malformed answer: refused, message names the place, vector intact. */
static void test_garbage_refused(void **state)
{
    (void)state;
    static const struct {
        mt_typed_kind k;
        const char *json;
        const char *msg;
    } cases[] = {
        {MT_TYPED_FILE, "", "not valid JSON"},
        {MT_TYPED_FILE, "[]", "not a JSON object"},
        {MT_TYPED_FILE, "{\"files\":[]} x", "not valid JSON"},
        {MT_TYPED_FILE, "{\"files\":[],\"files\":[]}", "not valid JSON"},
        {MT_TYPED_FILE, "{}", "files: expected an array"},
        {MT_TYPED_FILE, "{\"files\":{}}", "files: expected an array"},
        {MT_TYPED_FILE, "{\"files\":[],\"next_cursor\":5}", "next_cursor: expected a string"},
        {MT_TYPED_FILE, "{\"files\":[" FILE1 ",7]}", "files[2]: expected an object"},
        {MT_TYPED_FILE, "{\"files\":[{\"kind\":\"input\"}]}", "files[1].file_id: missing"},
        {MT_TYPED_FILE, "{\"files\":[{\"file_id\":\"ABC\"}]}",
         "files[1].file_id: expected 32 lower-case hex"},
        {MT_TYPED_FILE, "{\"files\":[{\"file_id\":\"" ID1 "\",\"kind\":\"other\"}]}",
         "files[1].kind: expected input, output or fusion"},
        {MT_TYPED_FILE,
         "{\"files\":[{\"file_id\":\"" ID1 "\",\"kind\":\"input\",\"owners\":[\"a\",3]}]}",
         "files[1].owners: expected an array of strings"},
        {MT_TYPED_FILE,
         "{\"files\":[{\"file_id\":\"" ID1 "\",\"kind\":\"input\",\"owners\":[],\"size\":\"1\"}]}",
         "files[1].size: expected an integer"},
        {MT_TYPED_FILE,
         "{\"files\":[{\"file_id\":\"" ID1 "\",\"kind\":\"input\",\"owners\":[],\"size\":-5}]}",
         "files[1].size: expected a size >= 0"},
        {MT_TYPED_FILE,
         "{\"files\":[{\"file_id\":\"" ID1 "\",\"kind\":\"input\",\"owners\":[],\"sha256\":\"zz\"}]}",
         "files[1].sha256: expected 64 lower-case hex"},
        {MT_TYPED_FILE,
         "{\"files\":[{\"file_id\":\"" ID1 "\",\"kind\":\"input\",\"owners\":[],\"written\":1}]}",
         "files[1].written: expected true or false"},
        {MT_TYPED_FUNCTION,
         "{\"functions\":[{\"function_id\":\"" ID1 "\",\"owner\":\"a\",\"name\":\"n\","
         "\"executor_type\":\"builtin\",\"public\":true,\"inputs\":[\"a\"]}]}",
         "functions[1].inputs[0]: expected an object with a string 'name'"},
        {MT_TYPED_FUNCTION,
         "{\"functions\":[{\"function_id\":\"" ID1 "\",\"owner\":\"a\",\"name\":\"n\","
         "\"executor_type\":\"builtin\"}]}",
         "functions[1].public: missing"},
        {MT_TYPED_TASK,
         "{\"tasks\":[{\"task_id\":\"" ID1 "\",\"function_id\":\"" ID2 "\",\"creator\":\"a\","
         "\"status\":\"created\",\"participants\":[],\"metering\":[]}]}",
         "tasks[1].metering: expected an object"},
        {MT_TYPED_TASK,
         "{\"tasks\":[{\"task_id\":\"" ID1 "\",\"function_id\":\"" ID2 "\",\"creator\":\"a\","
         "\"status\":\"created\",\"participants\":[],\"metering\":{\"cpu_ms\":1.5}}]}",
         "tasks[1].cpu_ms: expected an integer"},
        {MT_TYPED_TASK,
         "{\"tasks\":[{\"task_id\":\"" ID1 "\",\"function_id\":\"" ID2 "\",\"creator\":\"a\","
         "\"status\":null,\"participants\":[]}]}",
         "tasks[1].status: missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* one good item first (the vector must keep it), except for tasks/functions */
        mt_typed_vec v = {0};
        char *cur = (char *)"untouched";
        char err[MT_TYPED_ERR_MAX];
        size_t before = 0;
        if (cases[i].k == MT_TYPED_FILE) {
            assert_int_equal(page(MT_TYPED_FILE, "{\"files\":[" FILE1 "]}", &v, &cur, err),
                             MESATEE_OK);
            before = 1;
        } else if (cases[i].k == MT_TYPED_FUNCTION || cases[i].k == MT_TYPED_TASK) {
            /* start the index at 1 like the file cases: one decoded earlier page */
            const char *one = cases[i].k == MT_TYPED_TASK
                                  ? "{\"tasks\":[{\"task_id\":\"" ID3 "\",\"function_id\":\"" ID2
                                    "\",\"creator\":\"a\",\"status\":\"created\","
                                    "\"participants\":[]}]}"
                                  : "{\"functions\":[{\"function_id\":\"" ID3 "\",\"owner\":\"a\","
                                    "\"name\":\"n\",\"executor_type\":\"builtin\","
                                    "\"public\":true}]}";
            assert_int_equal(page(cases[i].k, one, &v, &cur, err), MESATEE_OK);
            before = 1;
        }
        int st = page(cases[i].k, cases[i].json, &v, &cur, err);
        if (st != MESATEE_ESERVER || !strstr(err, cases[i].msg))
            fail_msg("case %zu (%s): status %d, message '%s', want '%s'", i, cases[i].json, st,
                     err, cases[i].msg);
        assert_null(cur);
        assert_int_equal(v.n, before);
        mt_typed_free(cases[i].k, v.items, v.n);
    }
    /* decode_one: same checks, *out stays NULL */
    void *p = (void *)1;
    char err[MT_TYPED_ERR_MAX];
    assert_int_equal(mt_typed_decode_one(MT_TYPED_TASK, "{\"task_id\":1}", 13, &p, err),
                     MESATEE_ESERVER);
    assert_null(p);
    assert_non_null(strstr(err, "task.task_id: expected a string"));
    assert_int_equal(mt_typed_decode_one(MT_TYPED_FILE, NULL, 0, &p, err), MESATEE_ESERVER);
    assert_null(p);
    mt_typed_free(MT_TYPED_FILE, NULL, 3); /* no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_page_and_cursor),
        cmocka_unit_test(test_function_and_task),
        cmocka_unit_test(test_garbage_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
