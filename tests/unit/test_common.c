/* Unit tests for src/common: codecs, ids, the bounded JSON reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_util.h"

static void test_hex(void **state)
{
    (void)state;
    uint8_t in[3] = {0x00, 0xab, 0xff}, out[3];
    char hex[7];
    mt_hex_encode(in, 3, hex);
    assert_string_equal(hex, "00abff");
    assert_int_equal(mt_hex_decode("00ABff", out, 3, NULL), MT_OK);
    assert_memory_equal(in, out, 3);
    mt_err e;
    assert_int_equal(mt_hex_decode("00abf", out, 3, &e), MT_EINVAL);
    assert_int_equal(mt_hex_decode("00abfg", out, 3, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "position 5"));
}

static void test_b64(void **state)
{
    (void)state;
    const char *vec[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                            {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < 5; i++) {
        char *enc = mt_b64_encode((const uint8_t *)vec[i][0], strlen(vec[i][0]));
        assert_string_equal(enc, vec[i][1]);
        free(enc);
        uint8_t *dec;
        size_t n;
        assert_int_equal(mt_b64_decode(vec[i][1], &dec, &n, NULL), MT_OK);
        assert_int_equal(n, strlen(vec[i][0]));
        assert_memory_equal(dec, vec[i][0], n);
        free(dec);
    }
    uint8_t *dec;
    size_t n;
    assert_int_equal(mt_b64_decode("Zm9", &dec, &n, NULL), MT_EINVAL);
    assert_int_equal(mt_b64_decode("Zm=v", &dec, &n, NULL), MT_EINVAL);
    assert_int_equal(mt_b64_decode("Z!9v", &dec, &n, NULL), MT_EINVAL);
}

static void test_ids(void **state)
{
    (void)state;
    mt_id a, b;
    mt_id_new(&a);
    mt_id_new(&b);
    assert_true(mt_id_valid(a.s));
    assert_string_not_equal(a.s, b.s);
    assert_false(mt_id_valid("ABC"));
    assert_false(mt_id_valid("0123456789abcdef0123456789abcdeg"));
    assert_false(mt_id_valid("0123456789abcdef0123456789abcdef0"));
}

static void test_json_limits(void **state)
{
    (void)state;
    mt_err e;
    const char *ok = "{\"a\":\"x\",\"n\":5,\"b\":true,\"l\":[1,2]}";
    json_t *v = mt_json_parse(ok, strlen(ok), 1024, 4, &e);
    assert_non_null(v);
    const char *s;
    int64_t n;
    bool b;
    json_t *arr;
    assert_int_equal(mt_json_str(v, "a", 10, &s, &e), MT_OK);
    assert_string_equal(s, "x");
    assert_int_equal(mt_json_int(v, "n", 0, 10, &n, &e), MT_OK);
    assert_int_equal(mt_json_int(v, "n", 6, 10, &n, &e), MT_EINVAL);
    assert_int_equal(mt_json_bool_opt(v, "b", &b, false, &e), MT_OK);
    assert_true(b);
    assert_int_equal(mt_json_array(v, "l", 1, &arr, &e), MT_EINVAL);
    assert_int_equal(mt_json_str(v, "missing", 10, &s, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "missing"));
    static const char *const allowed[] = {"a", "n", "b", NULL};
    assert_int_equal(mt_json_only_keys(v, allowed, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "'l'"));
    json_decref(v);

    const char *deep = "[[[[[1]]]]]";
    assert_null(mt_json_parse(deep, strlen(deep), 1024, 4, &e));
    assert_int_equal(e.code, MT_EINVAL);
    const char *instr = "{\"a\":\"[[[[[[[\"}";
    v = mt_json_parse(instr, strlen(instr), 1024, 4, &e);
    assert_non_null(v);
    json_decref(v);
    assert_null(mt_json_parse(ok, strlen(ok), 5, 4, &e));
    assert_int_equal(e.code, MT_ETOOBIG);
    assert_null(mt_json_parse("{\"a\":1,\"a\":2}", 13, 100, 4, &e));
    assert_null(mt_json_parse("{} x", 4, 100, 4, &e));
    assert_null(mt_json_parse("{\"a\"\0:1}", 8, 100, 4, &e));
    assert_null(mt_json_parse("", 0, 100, 4, &e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_json_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
