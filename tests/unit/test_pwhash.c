/* Unit tests for mt_pwhash (Argon2id password storage). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "mt_pwhash.h"

static void test_hash_verify(void **state)
{
    (void)state;
    char h[MT_PWHASH_STRLEN], h2[MT_PWHASH_STRLEN];
    mt_err e;
    assert_int_equal(mt_pwhash_hash("correct horse", h, &e), MT_OK);
    assert_true(strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0);
    assert_true(strlen(h) < MT_PWHASH_STRLEN);
    assert_true(mt_pwhash_verify(h, "correct horse"));
    assert_false(mt_pwhash_verify(h, "correct horsf"));
    assert_false(mt_pwhash_verify(h, "correct hors"));
    assert_false(mt_pwhash_verify(h, "correct horse "));
    assert_false(mt_pwhash_verify(h, ""));
    /* random salt: same password, different strings, both verify */
    assert_int_equal(mt_pwhash_hash("correct horse", h2, &e), MT_OK);
    assert_string_not_equal(h, h2);
    assert_true(mt_pwhash_verify(h2, "correct horse"));
}

static void test_length_limits(void **state)
{
    (void)state;
    char h[MT_PWHASH_STRLEN];
    char pw[MT_PASSWORD_MAX + 2];
    mt_err e;
    assert_int_equal(mt_pwhash_hash("1234567", h, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "8 to 256"));
    assert_string_equal(h, "");
    assert_int_equal(mt_pwhash_hash("", h, &e), MT_EINVAL);
    assert_int_equal(mt_pwhash_hash(NULL, h, &e), MT_EINVAL);
    memset(pw, 'a', sizeof pw);
    pw[MT_PASSWORD_MAX + 1] = '\0'; /* 257 bytes */
    assert_int_equal(mt_pwhash_hash(pw, h, &e), MT_EINVAL);
    pw[MT_PASSWORD_MAX] = '\0'; /* 256 bytes: accepted */
    assert_int_equal(mt_pwhash_hash(pw, h, &e), MT_OK);
    assert_true(mt_pwhash_verify(h, pw));
    pw[MT_PASSWORD_MAX] = 'a';
    assert_false(mt_pwhash_verify(h, pw)); /* over-long never verifies */
    assert_int_equal(mt_pwhash_hash("12345678", h, &e), MT_OK);
    assert_true(mt_pwhash_verify(h, "12345678"));
    assert_false(mt_pwhash_verify(h, "1234567"));
}

static void test_garbage_stored(void **state)
{
    (void)state;
    char h[MT_PWHASH_STRLEN];
    mt_err e;
    assert_int_equal(mt_pwhash_hash("password1", h, &e), MT_OK);
    assert_false(mt_pwhash_verify(NULL, "password1"));
    assert_false(mt_pwhash_verify(h, NULL));
    assert_false(mt_pwhash_verify("", "password1"));
    assert_false(mt_pwhash_verify("$argon2id$", "password1"));
    assert_false(mt_pwhash_verify("$argon2id$v=19$m=65536,t=2,p=1$AAAA$BBBB", "password1"));
    assert_false(mt_pwhash_verify("plaintext password1", "password1"));
    /* other Argon2 variants are refused even when well-formed */
    char other[MT_PWHASH_STRLEN];
    memcpy(other, h, sizeof other);
    memcpy(other, "$argon2i$", 9);
    memmove(other + 9, h + 10, strlen(h + 10) + 1);
    assert_false(mt_pwhash_verify(other, "password1"));
    /* not NUL-terminated within MT_PWHASH_STRLEN */
    char longs[300];
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    memcpy(longs, h, strlen(h));
    assert_false(mt_pwhash_verify(longs, "password1"));
    /* each single-character change of the stored hash fails */
    size_t n = strlen(h);
    for (size_t i = n - 8; i < n; i++) {
        char c[MT_PWHASH_STRLEN];
        memcpy(c, h, sizeof c);
        c[i] = c[i] == 'A' ? 'B' : 'A';
        assert_false(mt_pwhash_verify(c, "password1"));
    }
}

static void *thread_hash(void *arg)
{
    char *out = arg;
    mt_status st = mt_pwhash_hash("thread-pass", out, NULL);
    return st == MT_OK ? out : NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[2];
    char h[2][MT_PWHASH_STRLEN];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_hash, h[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_non_null(r);
        assert_true(mt_pwhash_verify(h[i], "thread-pass"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_hash_verify),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_garbage_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
