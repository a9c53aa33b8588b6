/* Unit tests of src/core/api_decode.c: the pure request-body decoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"

static const dec_limits LIM = {1 << 16, 32};

#define B(s) (const uint8_t *)(s), strlen(s)
#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_formats(void **state)
{
    (void)state;
    assert_true(dec_username_valid("alice"));
    assert_true(dec_username_valid("a.b-c_9"));
    assert_false(dec_username_valid(""));
    assert_false(dec_username_valid("Alice"));
    assert_false(dec_username_valid("a b"));
    assert_false(dec_username_valid("a/b"));
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(dec_username_valid(long_name));
    long_name[64] = '\0';
    assert_true(dec_username_valid(long_name));
    assert_true(dec_slot_name_valid("In_1"));
    assert_false(dec_slot_name_valid("in-1"));
    assert_false(dec_slot_name_valid(""));
    assert_true(dec_key_hex_valid(KEY));
    assert_false(dec_key_hex_valid("00"));
    assert_false(
        dec_key_hex_valid("00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"));
}

static void test_login_user(void **state)
{
    (void)state;
    mt_err err;
    dec_login l;
    assert_int_equal(dec_login_parse(B("{\"username\":\"a\",\"password\":\"b\"}"), &LIM, &l, &err),
                     MT_OK);
    assert_string_equal(l.username, "a");
    dec_login_free(&l);
    assert_int_equal(dec_login_parse(B("{\"username\":\"a\"}"), &LIM, &l, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "password"));
    dec_login_free(&l);
    assert_int_equal(dec_login_parse(B("{\"username\":1,\"password\":\"b\"}"), &LIM, &l, &err),
                     MT_EINVAL);
    assert_int_equal(dec_login_parse(B("[]"), &LIM, &l, &err), MT_EINVAL);
    dec_limits tiny = {8, 32};
    assert_int_equal(dec_login_parse(B("{\"username\":\"a\",\"password\":\"b\"}"), &tiny, &l, &err),
                     MT_ETOOBIG);
    dec_user_new u;
    assert_int_equal(
        dec_user_new_parse(B("{\"username\":\"bob\",\"password\":\"12345678\"}"), &LIM, &u, &err),
        MT_OK);
    assert_string_equal(u.role, "user");
    dec_user_new_free(&u);
    assert_int_equal(dec_user_new_parse(B("{\"username\":\"bob\",\"password\":\"12345678\","
                                          "\"role\":\"admin\",\"x\":1}"),
                                        &LIM, &u, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "unknown field 'x'"));
}

static void test_files(void **state)
{
    (void)state;
    mt_err err;
    dec_input_new in;
    assert_int_equal(
        dec_input_new_parse(B("{\"url\":\"mesatee://objects/"
                              "0123456789abcdef0123456789abcdef\",\"key\":\"" KEY "\"}"),
                            &LIM, &in, &err),
        MT_OK);
    assert_int_equal(in.url_kind, DEC_URL_OBJECT);
    assert_string_equal(in.object_id, "0123456789abcdef0123456789abcdef");
    assert_int_equal(in.key[0], 0x00);
    assert_int_equal(in.key[31], 0xff);
    assert_string_equal(in.name, "");
    dec_input_new_free(&in);
    const char *bad[] = {
        "{\"url\":\"mesatee://objects/xyz\",\"key\":\"" KEY "\"}",
        "{\"url\":\"file://relative\",\"key\":\"" KEY "\"}",
        "{\"url\":\"file:///a/../b\",\"key\":\"" KEY "\"}",
        "{\"url\":\"https://\",\"key\":\"" KEY "\"}",
        "{\"url\":\"https://a b\",\"key\":\"" KEY "\"}",
        "{\"url\":\"gopher://x\",\"key\":\"" KEY "\"}",
        "{\"url\":\"https://x/y\",\"key\":\"00\"}",
        "{\"url\":\"https://x/y\",\"key\":\"" KEY "\",\"sha256\":\"abc\"}",
        "{\"url\":\"https://x/y\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dec_input_new_parse(B(bad[i]), &LIM, &in, &err) != MT_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        dec_input_new_free(&in);
    }
    assert_int_equal(dec_input_new_parse(B("{\"url\":\"file:///data/x.mtf\",\"key\":\"" KEY "\"}"),
                                         &LIM, &in, &err),
                     MT_OK);
    assert_int_equal(in.url_kind, DEC_URL_FILE);
    dec_input_new_free(&in);

    dec_fusion_new fu;
    assert_int_equal(dec_fusion_new_parse(B("{\"owners\":[\"a\",\"b\"]}"), &LIM, &fu, &err), MT_OK);
    assert_int_equal(fu.n_owners, 2);
    dec_fusion_new_free(&fu);
    assert_int_equal(dec_fusion_new_parse(B("{\"owners\":[\"a\"]}"), &LIM, &fu, &err), MT_EINVAL);
    assert_int_equal(dec_fusion_new_parse(B("{\"owners\":[\"a\",\"a\"]}"), &LIM, &fu, &err),
                     MT_EINVAL);
    assert_int_equal(dec_fusion_new_parse(B("{\"owners\":[\"a\",7]}"), &LIM, &fu, &err), MT_EINVAL);
}

static void test_function(void **state)
{
    (void)state;
    mt_err err;
    dec_function *f = malloc(sizeof *f);
    assert_int_equal(
        dec_function_parse(B("{\"name\":\"p\",\"builtin\":\"psi\",\"arguments\":[{\"name\":"
                             "\"k\",\"default\":\"v\",\"overridable\":true}],\"inputs\":[{"
                             "\"name\":\"a\"},{\"name\":\"b\",\"optional\":true}],\"outputs\":"
                             "[{\"name\":\"o\"}],\"usage_quota\":3,\"public\":false,"
                             "\"allowlist\":[\"x\"]}"),
                           &LIM, f, &err),
        MT_OK);
    assert_int_equal(f->n_args, 1);
    assert_true(f->args[0].overridable);
    assert_int_equal(f->n_inputs, 2);
    assert_true(f->inputs[1].optional);
    assert_int_equal(f->usage_quota, 3);
    assert_false(f->public_);
    json_t *a = dec_function_args_json(f);
    assert_int_equal(json_array_size(a), 1);
    assert_null(json_object_get(json_array_get(a, 0), "type")); /* untyped rows unchanged */
    json_decref(a);
    dec_function_free(f);
    assert_int_equal(dec_function_parse(B("{\"name\":\"p\",\"executor_type\":\"wasm\","
                                          "\"payload\":\"AGFzbQEAAAA=\",\"arguments\":[{"
                                          "\"name\":\"n\",\"default\":\"1\",\"type\":"
                                          "\"integer\"}]}"),
                                        &LIM, f, &err),
                     MT_OK);
    a = dec_function_args_json(f);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "type")),
                        "integer");
    json_decref(a);
    dec_function_free(f);
    const char *bad[] = {
        "{\"name\":\"p\",\"builtin\":\"psi\",\"executor_type\":\"wasm\"}",
        "{\"name\":\"p\"}",
        "{\"name\":\"\",\"builtin\":\"psi\"}",
        ("{\"name\":\"p\",\"builtin\":\"psi\",\"inputs\":[{\"name\":\"a\"}],\"outputs\":[{"
         "\"name\":\"a\"}]}"),
        "{\"name\":\"p\",\"builtin\":\"psi\",\"inputs\":[{\"name\":\"a\",\"x\":1}]}",
        "{\"name\":\"p\",\"builtin\":\"psi\",\"inputs\":[\"a\"]}",
        "{\"name\":\"p\",\"builtin\":\"psi\",\"arguments\":[{\"name\":\"k\",\"default\":1}]}",
        "{\"name\":\"p\",\"builtin\":\"psi\",\"usage_quota\":1.5}",
        /* a declared argument type (wasm functions) is one of four names */
        "{\"name\":\"p\",\"builtin\":\"psi\",\"arguments\":[{\"name\":\"k\",\"type\":\"int\"}]}",
        "{\"name\":\"p\",\"builtin\":\"psi\",\"arguments\":[{\"name\":\"k\",\"type\":1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dec_function_parse(B(bad[i]), &LIM, f, &err) != MT_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        dec_function_free(f);
    }
    assert_int_equal(dec_function_parse(B(bad[0]), &LIM, f, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "takes the module as 'payload'"));
    /* executor type wasm: base64 payload, no builtin; payload only for wasm */
    assert_int_equal(dec_function_parse(B("{\"name\":\"w\",\"executor_type\":\"wasm\","
                                          "\"payload\":\"AGFzbQEAAAA=\"}"),
                                        &LIM, f, &err),
                     MT_OK);
    assert_int_equal(f->payload_len, 8);
    assert_memory_equal(f->payload, "\0asm\1\0\0\0", 8);
    dec_function_free(f);
    assert_int_equal(dec_function_parse(B("{\"name\":\"w\",\"executor_type\":\"wasm\","
                                          "\"payload\":\"AGFzbQ!AAAA=\"}"),
                                        &LIM, f, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "base64"));
    assert_int_equal(dec_function_parse(B("{\"name\":\"w\",\"builtin\":\"psi\","
                                          "\"payload\":\"AGFzbQEAAAA=\"}"),
                                        &LIM, f, &err),
                     MT_EINVAL);
    assert_int_equal(dec_function_parse(B("{\"name\":\"w\",\"executor_type\":\"lua\","
                                          "\"builtin\":\"psi\"}"),
                                        &LIM, f, &err),
                     MT_EINVAL);
    assert_int_equal(dec_function_update_parse(B("{\"usage_quota\":0}"), &LIM, f, &err), MT_OK);
    assert_true(f->has_quota);
    assert_false(f->has_public);
    dec_function_free(f);
    assert_int_equal(dec_function_update_parse(B("{\"name\":\"x\"}"), &LIM, f, &err), MT_EINVAL);
    free(f);
}

static void test_task_assign(void **state)
{
    (void)state;
    mt_err err;
    dec_task_new *t = malloc(sizeof *t);
    assert_int_equal(dec_task_new_parse(B("{\"function_id\":\"0123456789abcdef0123456789abcdef\","
                                          "\"inputs\":[{\"name\":\"a\",\"owners\":[\"u\"]}]}"),
                                        &LIM, t, &err),
                     MT_OK);
    assert_int_equal(t->n_inputs, 1);
    assert_int_equal(json_object_size(t->arguments), 0);
    dec_task_new_free(t);
    const char *bad[] = {
        "{\"function_id\":\"0123\"}",
        "{\"function_id\":\"0123456789abcdef0123456789abcdef\",\"arguments\":{\"k\":1}}",
        "{\"function_id\":\"0123456789abcdef0123456789abcdef\",\"arguments\":[]}",
        "{\"function_id\":\"0123456789abcdef0123456789abcdef\",\"inputs\":[{\"name\":\"a\","
        "\"owners\":[]}]}",
        "{\"function_id\":\"0123456789abcdef0123456789abcdef\",\"inputs\":[{\"name\":\"a\","
        "\"owners\":[\"u\"]},{\"name\":\"a\",\"owners\":[\"u\"]}]}",
        "{\"function_id\":\"0123456789abcdef0123456789abcdef\",\"executor\":\"builtin\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dec_task_new_parse(B(bad[i]), &LIM, t, &err) != MT_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        dec_task_new_free(t);
    }
    free(t);
    dec_assign as;
    assert_int_equal(dec_assign_parse(B("{\"inputs\":{\"a\":\"0123456789abcdef0123456789abcdef\""
                                        "}}"),
                                      &LIM, &as, &err),
                     MT_OK);
    assert_int_equal(as.n_inputs, 1);
    dec_assign_free(&as);
    assert_int_equal(dec_assign_parse(B("{\"inputs\":{\"a\":\"zz\"}}"), &LIM, &as, &err),
                     MT_EINVAL);
    assert_int_equal(dec_assign_parse(B("{}"), &LIM, &as, &err), MT_EINVAL);
    assert_int_equal(dec_empty_body(NULL, 0, &LIM, &err), MT_OK);
    assert_int_equal(dec_empty_body(B("{}"), &LIM, &err), MT_OK);
    assert_int_equal(dec_empty_body(B("{\"a\":1}"), &LIM, &err), MT_EINVAL);
}

static void test_audit_query(void **state)
{
    (void)state;
    mt_err err;
    dec_audit_query q;
    assert_int_equal(dec_audit_query_parse(NULL, &q, &err), MT_OK);
    assert_int_equal(q.limit, 100);
    assert_int_equal(dec_audit_query_parse("after=5&limit=7", &q, &err), MT_OK);
    assert_int_equal(q.after, 5);
    assert_int_equal(q.limit, 7);
    assert_int_equal(dec_audit_query_parse("limit=1001", &q, &err), MT_EINVAL);
    assert_int_equal(dec_audit_query_parse("after=-1", &q, &err), MT_EINVAL);
    assert_int_equal(dec_audit_query_parse("after", &q, &err), MT_EINVAL);
    assert_int_equal(dec_audit_query_parse("after=99999999999999999999", &q, &err), MT_EINVAL);
    assert_int_equal(dec_audit_query_parse("x=1", &q, &err), MT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),     cmocka_unit_test(test_login_user),
        cmocka_unit_test(test_files),       cmocka_unit_test(test_function),
        cmocka_unit_test(test_task_assign), cmocka_unit_test(test_audit_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
