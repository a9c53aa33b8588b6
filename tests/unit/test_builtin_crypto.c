/* Tests of password_check and rsa_sign through mt_executor_run and the real
 * mesatee-worker; signatures are verified here with the public key. */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt_util.h"
#include "test_builtin_common.h"

static void test_password_check(void **state)
{
    tb_in in[2] = {{"password", "hunter2\n"}, {"breached", "123456\r\npassword\n\nhunter2\nqwerty"}};
    tb_run run;
    tb_expect_ok("password_check", NULL, in, 2, NULL, 0, &run);
    assert_string_equal(run.r.return_value, "true");
    tb_run_clear(&run);
    in[0].data = "hunter3";
    tb_expect_ok("password_check", NULL, in, 2, NULL, 0, &run);
    assert_string_equal(run.r.return_value, "false");
    tb_run_clear(&run);
    in[0].data = "hunter"; /* a prefix is not a match */
    tb_expect_ok("password_check", NULL, in, 2, NULL, 0, &run);
    assert_string_equal(run.r.return_value, "false");
    tb_run_clear(&run);

    /* SHA-1 list in the Pwned Passwords format: SHA1("password") */
    tb_in sha[2] = {{"pw", "password"},
                    {"list", "0000000000000000000000000000000000000000:3\n"
                             "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8:3861493\n"}};
    tb_expect_ok("password_check",
                 tb_args("password_slot", "pw", "list_slot", "list", "format", "sha1", NULL), sha,
                 2, NULL, 0, &run);
    assert_string_equal(run.r.return_value, "true");
    tb_run_clear(&run);
    sha[1].data = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8\n";
    tb_expect_ok("password_check",
                 tb_args("password_slot", "pw", "list_slot", "list", "format", "sha1", NULL), sha,
                 2, NULL, 0, &run);
    assert_string_equal(run.r.return_value, "true");
    tb_run_clear(&run);

    sha[1].data = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8\nnot-a-hash\n";
    tb_expect_fail("password_check",
                   tb_args("password_slot", "pw", "list_slot", "list", "format", "sha1", NULL),
                   sha, 2, NULL, 0, "input 'list', line 2, column 1: expected 40 hex digits");
    tb_expect_fail("password_check", tb_args("format", "md5", NULL), in, 2, NULL, 0,
                   "argument 'format': expected plain or sha1");
    tb_expect_fail("password_check", NULL, sha, 2, NULL, 0, "no input slot 'password'");
    const char *const outs[] = {"o"};
    in[0].data = "x";
    tb_expect_fail("password_check", NULL, in, 2, outs, 1, "declare no output slots");
    in[0].data = "\n";
    tb_expect_fail("password_check", NULL, in, 2, NULL, 0,
                   "input 'password', line 1, column 1: empty password");
    in[0].data = "a\nb\n";
    tb_expect_fail("password_check", NULL, in, 2, NULL, 0, "line 2, column 1: the password input "
                                                           "holds one line only");
}

static char *pem_of(EVP_PKEY *k, bool pub)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (pub)
        assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    else
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    BIO_free(b);
    return s;
}

static bool verify(EVP_PKEY *k, const char *data, const char *b64, const EVP_MD *md, bool pss)
{
    uint8_t *sig;
    size_t sl;
    if (mt_b64_decode(b64, &sig, &sl, NULL) != MT_OK)
        return false;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    bool ok = EVP_DigestVerifyInit(c, &pc, md, NULL, k) == 1 &&
              (!pss || (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
                        EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1)) &&
              EVP_DigestVerify(c, sig, sl, (const uint8_t *)data, strlen(data)) == 1;
    EVP_MD_CTX_free(c);
    free(sig);
    return ok;
}

static void test_rsa_sign(void **state)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    char *priv = pem_of(k, false);
    const char *doc = "pay 100 EUR to Bob\n";
    tb_in in[2] = {{"key", priv}, {"data", doc}};
    tb_run run;
    tb_expect_ok("rsa_sign", NULL, in, 2, NULL, 0, &run);
    assert_true(verify(k, doc, run.r.return_value, EVP_sha256(), false));
    assert_false(verify(k, "pay 900 EUR to Bob\n", run.r.return_value, EVP_sha256(), false));
    /* PKCS#1 v1.5 is deterministic: the same signature again */
    char *first = strdup(run.r.return_value);
    tb_run_clear(&run);
    const char *const outs[] = {"sig"};
    tb_expect_ok("rsa_sign", NULL, in, 2, outs, 1, &run);
    assert_string_equal(run.r.return_value, first);
    assert_string_equal(run.out[0], first);
    tb_run_clear(&run);
    free(first);

    tb_expect_ok("rsa_sign", tb_args("digest", "sha512", "padding", "pss", NULL), in, 2, NULL, 0,
                 &run);
    assert_true(verify(k, doc, run.r.return_value, EVP_sha512(), true));
    tb_run_clear(&run);

    tb_expect_fail("rsa_sign", tb_args("digest", "md5", NULL), in, 2, NULL, 0,
                   "argument 'digest': expected sha256, sha384 or sha512");
    tb_expect_fail("rsa_sign", tb_args("padding", "none", NULL), in, 2, NULL, 0,
                   "argument 'padding'");
    tb_in swapped[2] = {{"key", doc}, {"data", priv}};
    tb_expect_fail("rsa_sign", NULL, swapped, 2, NULL, 0,
                   "input 'key', line 1, column 1: not an unencrypted PEM private key");
    char *pub = pem_of(k, true);
    tb_in pubin[2] = {{"key", pub}, {"data", doc}};
    tb_expect_fail("rsa_sign", NULL, pubin, 2, NULL, 0, "not an unencrypted PEM private key");
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *ecp = pem_of(ec, false);
    tb_in ecin[2] = {{"key", ecp}, {"data", doc}};
    tb_expect_fail("rsa_sign", NULL, ecin, 2, NULL, 0, "the private key is not an RSA key");
    EVP_PKEY *small = EVP_RSA_gen(1024);
    char *sp = pem_of(small, false);
    tb_in smin[2] = {{"key", sp}, {"data", doc}};
    tb_expect_fail("rsa_sign", NULL, smin, 2, NULL, 0, "RSA key of 1024 bits, at least 2048");
    tb_in other[2] = {{"k", priv}, {"data", doc}};
    tb_expect_fail("rsa_sign", NULL, other, 2, NULL, 0, "no input slot 'key'");
    tb_expect_ok("rsa_sign", tb_args("key_slot", "k", NULL), other, 2, NULL, 0, &run);
    assert_true(verify(k, doc, run.r.return_value, EVP_sha256(), false));
    tb_run_clear(&run);
    free(sp);
    free(ecp);
    free(pub);
    free(priv);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_password_check, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_rsa_sign, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
