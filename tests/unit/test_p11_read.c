/* Unit tests of libmesatee-pkcs11's readers: the configuration file
 * (p11_conf.h) and the server's transit answers (p11_resp.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mt_util.h"
#include "p11_conf.h"
#include "p11_resp.h"

/* ---- configuration ---------------------------------------------------- */

static void test_conf_accepts_all_keys(void **state)
{
    (void)state;
    const char t[] = "# pkcs11\n\nserver = https://h:1\r\npolicy=/p.json\n"
                     "policy_signers = /s.pem\ntls_server_name = n.example\n\tuser = alice \n"
                     "token_label = lab\ntimeout = 7\n";
    p11_conf c;
    mt_err err;
    assert_int_equal(p11_conf_parse(t, sizeof t - 1, &c, &err), MT_OK);
    assert_string_equal(c.server, "https://h:1");
    assert_string_equal(c.policy, "/p.json");
    assert_string_equal(c.policy_signers, "/s.pem");
    assert_string_equal(c.tls_server_name, "n.example");
    assert_string_equal(c.user, "alice");
    assert_string_equal(c.token_label, "lab");
    assert_null(c.ca);
    assert_int_equal(c.timeout, 7);
    p11_conf_clear(&c);
}

static void test_conf_defaults(void **state)
{
    (void)state;
    const char t[] = "server = https://h\nca = /ca.pem";
    p11_conf c;
    mt_err err;
    assert_int_equal(p11_conf_parse(t, sizeof t - 1, &c, &err), MT_OK);
    assert_string_equal(c.token_label, "mesatee");
    assert_int_equal(c.timeout, 30);
    assert_string_equal(c.ca, "/ca.pem");
    p11_conf_clear(&c);
}

static void refused(const char *t, size_t len, const char *why)
{
    p11_conf c;
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(p11_conf_parse(t, len, &c, &err), MT_EINVAL);
    if (!strstr(err.msg, why))
        fail_msg("message '%s' lacks '%s'", err.msg, why);
    assert_null(c.server);
    assert_null(c.token_label);
}
#define REFUSED(t, why) refused(t, sizeof(t) - 1, why)

static void test_conf_garbage(void **state)
{
    (void)state;
    REFUSED("server = https://h\nbogus = 1\n", "line 2: unknown key 'bogus'");
    REFUSED("server = https://h\nserver = https://i\n", "line 2: key 'server' already set on line 1");
    REFUSED("server = https://h\nuser =\n", "line 2: key 'user' has an empty value");
    REFUSED("server = https://h\nuser\n", "line 2: expected 'key = value'");
    REFUSED("server = http://h\n", "line 1: server must be an https:// URL");
    REFUSED("ca = /x\n", "'server' is required");
    REFUSED("server = https://h\npolicy = a\nca = b\n", "exclude each other");
    REFUSED("server = https://h\npolicy_signers = s\n", "'policy_signers' needs 'policy'");
    REFUSED("server = https://h\ntimeout = 0\n", "line 2: timeout must be 1..3600");
    REFUSED("server = https://h\ntimeout = 3601\n", "timeout must be 1..3600");
    REFUSED("server = https://h\ntimeout = 5s\n", "timeout must be 1..3600");
    REFUSED("server = https://h\ntoken_label = 012345678901234567890123456789012\n",
            "token_label is longer than 32 bytes");
    REFUSED("server = https://h\nuser = a\x01z\n", "control character");
    REFUSED("server = https://h\0\n", "NUL byte");
    char *big = malloc(P11_CONF_MAX_LINE + 40);
    assert_non_null(big);
    memset(big, 'a', P11_CONF_MAX_LINE + 39);
    memcpy(big, "user = ", 7);
    refused(big, P11_CONF_MAX_LINE + 39, "line 1: longer than");
    free(big);
}

static void test_conf_load_names_file(void **state)
{
    (void)state;
    p11_conf c;
    mt_err err;
    mt_err_clear(&err);
    assert_int_not_equal(p11_conf_load("/nonexistent/p11.conf", &c, &err), MT_OK);
    assert_non_null(strstr(err.msg, "/nonexistent/p11.conf"));
    p11_conf_clear(&c);
}

/* ---- transit answers -------------------------------------------------- */

static char *pem_of(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

/* A key answer with two versions of the given key; the PEM's newlines
 * escaped for JSON. */
static char *key_answer(const char *type, const char *pk1, const char *pk2, int latest)
{
    char *out = malloc(16384);
    assert_non_null(out);
    char e1[4096], e2[4096];
    size_t j = 0;
    for (const char *p = pk1; *p && j < sizeof e1 - 2; p++)
        j += (size_t)snprintf(e1 + j, sizeof e1 - j, *p == '\n' ? "\\n" : "%c", *p);
    j = 0;
    for (const char *p = pk2; *p && j < sizeof e2 - 2; p++)
        j += (size_t)snprintf(e2 + j, sizeof e2 - j, *p == '\n' ? "\\n" : "%c", *p);
    snprintf(out, 16384,
             "{\"data\":{\"name\":\"k\",\"type\":\"%s\",\"latest_version\":%d,"
             "\"min_decryption_version\":1,\"keys\":{\"2\":{\"public_key\":\"%s\"},"
             "\"1\":{\"public_key\":\"%s\"}}}}",
             type, latest, e2, e1);
    return out;
}

static void test_resp_keyinfo(void **state)
{
    (void)state;
    EVP_PKEY *a = EVP_EC_gen("P-256"), *b = EVP_EC_gen("P-256");
    assert_non_null(a);
    assert_non_null(b);
    char *pa = pem_of(a), *pb = pem_of(b);
    char *j = key_answer("ecdsa-p256", pa, pb, 2);
    p11_keyinfo k;
    mt_err err;
    assert_int_equal(p11_resp_keyinfo(j, strlen(j), &k, &err), MT_OK);
    assert_int_equal(k.type, P11_KT_ECDSA_P256);
    assert_int_equal(k.nver, 2);
    assert_int_equal(k.ver[0].version, 1); /* sorted */
    assert_int_equal(k.ver[1].version, 2);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(a, &der);
    assert_int_equal((size_t)n, k.ver[0].spki_len);
    assert_memory_equal(der, k.ver[0].spki, (size_t)n);
    OPENSSL_free(der);
    p11_keyinfo_free(&k);
    free(j);
    /* the wrong type for the key, a version above latest */
    j = key_answer("ecdsa-p384", pa, pb, 2);
    assert_int_equal(p11_resp_keyinfo(j, strlen(j), &k, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not match the key type"));
    assert_null(k.name);
    free(j);
    j = key_answer("ecdsa-p256", pa, pb, 1);
    assert_int_equal(p11_resp_keyinfo(j, strlen(j), &k, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "above latest_version"));
    free(j);
    free(pa);
    free(pb);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_resp_ed25519_raw(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(pk);
    uint8_t raw[32];
    size_t rl = sizeof raw;
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &rl), 1);
    char *b64 = mt_b64_encode(raw, rl);
    char j[512];
    snprintf(j, sizeof j,
             "{\"data\":{\"name\":\"e\",\"type\":\"ed25519\",\"latest_version\":1,"
             "\"keys\":{\"1\":{\"public_key\":\"%s\"}}}}",
             b64);
    p11_keyinfo k;
    mt_err err;
    assert_int_equal(p11_resp_keyinfo(j, strlen(j), &k, &err), MT_OK);
    assert_int_equal(k.type, P11_KT_ED25519);
    assert_int_equal(k.ver[0].spki_len, 44);
    assert_memory_equal(k.ver[0].spki + 12, raw, 32);
    p11_keyinfo_free(&k);
    snprintf(j, sizeof j,
             "{\"data\":{\"name\":\"e\",\"type\":\"ed25519\",\"latest_version\":1,"
             "\"keys\":{\"1\":{\"public_key\":\"AAEC\"}}}}");
    assert_int_equal(p11_resp_keyinfo(j, strlen(j), &k, &err), MT_EINVAL);
    free(b64);
    EVP_PKEY_free(pk);
}

static void test_resp_aes_and_garbage(void **state)
{
    (void)state;
    p11_keyinfo k;
    mt_err err;
    const char ok[] = "{\"data\":{\"name\":\"a\",\"type\":\"aes256-gcm96\",\"latest_version\":2,"
                      "\"keys\":{\"1\":1,\"2\":2}}}";
    assert_int_equal(p11_resp_keyinfo(ok, sizeof ok - 1, &k, &err), MT_OK);
    assert_int_equal(k.nver, 2);
    assert_null(k.ver[0].spki);
    p11_keyinfo_free(&k);
    const char *bad[] = {
        "{\"data\":{\"name\":\"a\",\"type\":\"aes256-gcm96\",\"latest_version\":1,\"keys\":{\"01\":1}}}",
        "{\"data\":{\"name\":\"a\",\"type\":\"aes256-gcm96\",\"latest_version\":1,\"keys\":{}}}",
        "{\"data\":{\"name\":\"\",\"type\":\"aes256-gcm96\",\"latest_version\":1,\"keys\":{\"1\":1}}}",
        "{\"data\":{\"name\":\"a\",\"type\":\"aes256-gcm96\",\"latest_version\":0,\"keys\":{\"1\":1}}}",
        "{\"nodata\":1}",
        "[1,2]",
        "{\"data\":",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_err_clear(&err);
        assert_int_equal(p11_resp_keyinfo(bad[i], strlen(bad[i]), &k, &err), MT_EINVAL);
        assert_true(err.msg[0] != 0);
        assert_null(k.ver);
    }
}

static void test_resp_names_and_vault(void **state)
{
    (void)state;
    char **names;
    size_t n;
    mt_err err;
    const char l[] = "[\"a\",\"bob:k\"]";
    assert_int_equal(p11_resp_name_list(l, sizeof l - 1, &names, &n, &err), MT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[1], "bob:k");
    p11_names_free(names, n);
    assert_int_equal(p11_resp_name_list("[]", 2, &names, &n, &err), MT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(p11_resp_name_list("[1]", 3, &names, &n, &err), MT_EINVAL);
    assert_int_equal(p11_resp_name_list("{}", 2, &names, &n, &err), MT_EINVAL);
    uint8_t *out;
    size_t ol;
    uint32_t v;
    assert_int_equal(p11_resp_vault_str("vault:v12:AAEC", &v, &out, &ol, &err), MT_OK);
    assert_int_equal(v, 12);
    assert_int_equal(ol, 3);
    free(out);
    const char *bad[] = {"vault:v0:AA==", "vault:v:AA==", "vault:v1AA==", "v1:AA==",
                         "vault:v1:!!", "vault:v99999999999:AA=="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(p11_resp_vault_str(bad[i], &v, &out, &ol, &err), MT_EINVAL);
        assert_null(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_accepts_all_keys), cmocka_unit_test(test_conf_defaults),
        cmocka_unit_test(test_conf_garbage),          cmocka_unit_test(test_conf_load_names_file),
        cmocka_unit_test(test_resp_keyinfo),          cmocka_unit_test(test_resp_ed25519_raw),
        cmocka_unit_test(test_resp_aes_and_garbage),  cmocka_unit_test(test_resp_names_and_vault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
