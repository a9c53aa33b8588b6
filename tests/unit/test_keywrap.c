/* Unit tests for mt_keywrap (AES-256-GCM wrapping of 32-byte keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "mt_keywrap.h"

static const uint8_t AAD[] = "file:0123456789abcdef0123456789abcdef";

static void fill(uint8_t *p, size_t n, uint8_t base)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(base + i);
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t kek[32], key[32], out[32], w1[MT_KEYWRAP_LEN], w2[MT_KEYWRAP_LEN];
    fill(kek, 32, 1);
    fill(key, 32, 100);
    mt_err e;
    assert_int_equal(mt_keywrap_seal(kek, AAD, sizeof AAD, key, w1, &e), MT_OK);
    assert_int_equal(w1[0], 1);
    assert_int_equal(mt_keywrap_open(kek, AAD, sizeof AAD, w1, sizeof w1, out, &e), MT_OK);
    assert_memory_equal(out, key, 32);
    /* random nonce: two wraps differ, both open */
    assert_int_equal(mt_keywrap_seal(kek, AAD, sizeof AAD, key, w2, &e), MT_OK);
    assert_memory_not_equal(w1, w2, MT_KEYWRAP_LEN);
    assert_int_equal(mt_keywrap_open(kek, AAD, sizeof AAD, w2, sizeof w2, out, &e), MT_OK);
    assert_memory_equal(out, key, 32);
    /* key bytes do not appear in the wrapped form */
    assert_memory_not_equal(w1 + 13, key, 32);
    /* empty AAD */
    assert_int_equal(mt_keywrap_seal(kek, NULL, 0, key, w1, &e), MT_OK);
    assert_int_equal(mt_keywrap_open(kek, NULL, 0, w1, sizeof w1, out, &e), MT_OK);
    assert_memory_equal(out, key, 32);
    assert_int_equal(mt_keywrap_open(kek, AAD, 1, w1, sizeof w1, out, &e), MT_ECRYPTO);
}

static void expect_unwrap_fail(const uint8_t *kek, const uint8_t *aad, size_t aad_len,
                               const uint8_t *w, size_t wl)
{
    uint8_t out[32];
    mt_err e;
    memset(out, 0x5a, sizeof out);
    assert_int_equal(mt_keywrap_open(kek, aad, aad_len, w, wl, out, &e), MT_ECRYPTO);
    assert_string_equal(e.msg, "key unwrap failed");
    uint8_t zero[32] = {0};
    assert_memory_equal(out, zero, 32); /* wiped */
}

static void test_failures(void **state)
{
    (void)state;
    uint8_t kek[32], kek2[32], key[32], w[MT_KEYWRAP_LEN + 1];
    fill(kek, 32, 1);
    fill(kek2, 32, 2);
    fill(key, 32, 100);
    mt_err e;
    assert_int_equal(mt_keywrap_seal(kek, AAD, sizeof AAD, key, w, &e), MT_OK);
    expect_unwrap_fail(kek2, AAD, sizeof AAD, w, MT_KEYWRAP_LEN);    /* wrong KEK */
    expect_unwrap_fail(kek, AAD, sizeof AAD - 1, w, MT_KEYWRAP_LEN); /* shorter AAD */
    uint8_t aad2[sizeof AAD];
    memcpy(aad2, AAD, sizeof AAD);
    aad2[5] ^= 1;
    expect_unwrap_fail(kek, aad2, sizeof aad2, w, MT_KEYWRAP_LEN); /* other AAD */
    for (size_t i = 0; i < MT_KEYWRAP_LEN; i++) {                  /* each byte */
        for (int bit = 0; bit < 8; bit += 7) {
            w[i] ^= (uint8_t)(1u << bit);
            expect_unwrap_fail(kek, AAD, sizeof AAD, w, MT_KEYWRAP_LEN);
            w[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t n = 0; n < MT_KEYWRAP_LEN; n++) /* short */
        expect_unwrap_fail(kek, AAD, sizeof AAD, w, n);
    w[MT_KEYWRAP_LEN] = 0;
    expect_unwrap_fail(kek, AAD, sizeof AAD, w, MT_KEYWRAP_LEN + 1); /* long */
    uint8_t out[32];
    assert_int_equal(mt_keywrap_open(kek, AAD, sizeof AAD, w, MT_KEYWRAP_LEN, out, &e), MT_OK);
    assert_memory_equal(out, key, 32);
    assert_int_equal(mt_keywrap_seal(NULL, AAD, 1, key, w, &e), MT_EINVAL);
    assert_int_equal(mt_keywrap_seal(kek, NULL, 3, key, w, &e), MT_EINVAL);
    assert_int_equal(mt_keywrap_open(kek, AAD, 1, NULL, 61, out, &e), MT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
