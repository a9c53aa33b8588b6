/* Tests of password_check, rsa_sign and keystore_sign (KeyStore keys in the
 * job) through mt_executor_run and the real
 * mesatee-worker; signatures are verified here with the public key. */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
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

/* A KeyStore key in the job (as keyuse.c loads it): PKCS#8 DER. */
static void job_key(mt_job_key *jk, EVP_PKEY *k, const char *type)
{
    unsigned char *der = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    assert_non_null(p8);
    int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(n > 0);
    PKCS8_PRIV_KEY_INFO_free(p8);
    jk->arg = "key";
    jk->type = (char *)type;
    jk->version = 1;
    jk->der = der;
    jk->der_len = (size_t)n;
    jk->ref = NULL;
}

static void test_keystore_keys(void **state)
{
    const char *doc = "pay 100 EUR to Bob\n";
    tb_in in[1] = {{"data", doc}};
    tb_run run;
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256"),
             *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(rsa);
    assert_non_null(ec);
    assert_non_null(ed);
    mt_job_key kr, ke, kd;
    job_key(&kr, rsa, "rsa-2048");
    job_key(&ke, ec, "ecdsa-p256");
    job_key(&kd, ed, "ed25519");

    /* rsa_sign: the KeyStore key replaces the key slot; one input */
    tb_set_keys(&kr, 1);
    tb_expect_ok("rsa_sign", tb_args("key", "alice/k", NULL), in, 1, NULL, 0, &run);
    assert_true(verify(rsa, doc, run.r.return_value, EVP_sha256(), false));
    assert_non_null(strstr(run.r.log, "KeyStore key"));
    tb_run_clear(&run);
    tb_set_keys(&kr, 1);
    tb_expect_ok("rsa_sign", tb_args("key", "alice/k", "padding", "pss", NULL), in, 1, NULL, 0,
                 &run);
    assert_true(verify(rsa, doc, run.r.return_value, EVP_sha256(), true));
    tb_run_clear(&run);
    /* keystore_sign with each type; the signature verifies with the public key */
    const char *const outs[] = {"sig"};
    tb_set_keys(&ke, 1);
    tb_expect_ok("keystore_sign", tb_args("key", "alice/k", NULL), in, 1, outs, 1, &run);
    assert_true(verify(ec, doc, run.r.return_value, EVP_sha256(), false));
    assert_string_equal(run.out[0], run.r.return_value);
    tb_run_clear(&run);
    tb_set_keys(&kd, 1);
    tb_expect_ok("keystore_sign", tb_args("key", "alice/k", NULL), in, 1, NULL, 0, &run);
    assert_true(verify(ed, doc, run.r.return_value, NULL, false));
    tb_run_clear(&run);
    tb_set_keys(&kr, 1);
    tb_expect_ok("keystore_sign", tb_args("key", "alice/k", "digest", "sha384", NULL), in, 1,
                 NULL, 0, &run);
    assert_true(verify(rsa, doc, run.r.return_value, EVP_sha384(), true)); /* PSS by default */
    tb_run_clear(&run);

    /* wrong type, no key loaded, key and key slot together, two inputs */
    tb_set_keys(&ke, 1);
    tb_expect_fail("rsa_sign", tb_args("key", "alice/k", NULL), in, 1, NULL, 0,
                   "argument 'key': the KeyStore key is of type ecdsa-p256, not rsa");
    tb_expect_fail("keystore_sign", tb_args("key", "alice/k", NULL), in, 1, NULL, 0,
                   "argument 'key': no KeyStore key was loaded for this task");
    tb_expect_fail("rsa_sign", tb_args("key", "alice/k", NULL), in, 1, NULL, 0,
                   "no KeyStore key was loaded");
    tb_set_keys(&kr, 1);
    tb_expect_fail("rsa_sign", tb_args("key", "alice/k", "key_slot", "data", NULL), in, 1, NULL,
                   0, "either argument 'key'");
    tb_in two[2] = {{"data", doc}, {"more", "x"}};
    tb_set_keys(&kr, 1);
    tb_expect_fail("keystore_sign", tb_args("key", "alice/k", NULL), two, 2, NULL, 0,
                   "needs exactly 1 input slot");
    /* the worker checks the argument's form against the schema */
    tb_set_keys(&kr, 1);
    tb_expect_fail("keystore_sign", tb_args("key", "no-owner", NULL), in, 1, NULL, 0,
                   "argument 'key': expected a KeyStore key OWNER/NAME");
    /* a job whose key is garbage: refused, no crash */
    uint8_t junk[16] = {0x30, 0x03, 1, 2, 3};
    mt_job_key kj = {"key", "rsa-2048", 1, junk, sizeof junk, NULL};
    tb_set_keys(&kj, 1);
    tb_expect_fail("keystore_sign", tb_args("key", "alice/k", NULL), in, 1, NULL, 0,
                   "the KeyStore key is unreadable");
    OPENSSL_free(kr.der);
    OPENSSL_free(ke.der);
    OPENSSL_free(kd.der);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_password_check, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_rsa_sign, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_keystore_keys, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
