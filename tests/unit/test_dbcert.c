/* Unit tests of mt_dbcert (src/keystore/ks_dbcert.c): the KeyStore issues a
 * database client certificate only to a node whose attestation passes its
 * release policy; the certificate certifies the node's attested key for the
 * role, is signed by the database CA, short-lived, client-auth only.
 * Garbage roles, ttls, CA material and requests are refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mt_dbcert.h"
#include "mt_keystore.h"
#include "mt_tee.h"

/* a measurement that is not this build's */
#define OTHER_MEAS "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

typedef struct env {
    char dir[64];
    mt_tee *tee;
    mt_keystore *ks;
    char *ca_pem, *ca_key_pem;
    mt_dbcert_ca *ca;
} env;

static char *bio_str(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

/* A P-256 CA (ca true) or leaf (ca false) certificate, self-signed. */
static void make_ca(bool ca, char **cert_pem, char **key_pem)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test db CA", -1,
                               -1, 0);
    X509_set_issuer_name(x, nm);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    *cert_pem = bio_str(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    *key_pem = bio_str(b);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/mt_dbcert_test.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    mt_err err;
    assert_int_equal(mt_tee_open("soft", e->dir, &e->tee, &err), MT_OK);
    mt_keystore_node *node = NULL;
    char *req = NULL;
    size_t rl = 0;
    bool created = false;
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_open(e->tee, e->dir, req, rl, &e->ks, &created, &err), MT_OK);
    assert_true(created); /* the policy allows exactly this node */
    mt_keystore_node_free(node);
    free(req);
    make_ca(true, &e->ca_pem, &e->ca_key_pem);
    assert_int_equal(mt_dbcert_ca_load(e->ca_pem, strlen(e->ca_pem), e->ca_key_pem,
                                       strlen(e->ca_key_pem), &e->ca, &err),
                     MT_OK);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    mt_dbcert_ca_free(e->ca);
    mt_keystore_free(e->ks);
    mt_tee_free(e->tee);
    free(e->ca_pem);
    free(e->ca_key_pem);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
    free(e);
    return 0;
}

static X509 *pem_x509(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* An attested node gets a certificate for its own key, role as CN, signed
 * by the CA, valid about ttl seconds, client auth only, not a CA. */
static void test_attested_node_gets_cert(void **state)
{
    env *e = *state;
    mt_err err;
    mt_keystore_node *node = NULL;
    char *req = NULL, *pem = NULL, *key = NULL;
    size_t rl = 0;
    char meas[MT_KEYSTORE_MEAS_HEX + 1];
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_db_cert(e->ks, e->ca, req, rl, "mesatee", 600, &pem, meas, &err),
                     MT_OK);
    assert_int_equal(strlen(meas), 64);
    X509 *x = pem_x509(pem);
    X509 *ca = pem_x509(e->ca_pem);
    assert_non_null(x);
    char cn[80];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                          sizeof cn) > 0);
    assert_string_equal(cn, "mesatee");
    assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)), 0);
    /* the certified key is the node's attested key */
    assert_int_equal(mt_keystore_node_key_pem(node, &key, &err), MT_OK);
    BIO *b = BIO_new_mem_buf(key, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    /* short-lived */
    time_t lo = time(NULL) + 600 - 5, hi = time(NULL) + 600 + 5;
    assert_true(X509_cmp_time(X509_get0_notAfter(x), &lo) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(x), &hi) < 0);
    /* client auth only, not a CA */
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    /* the chain verifies as an SSL client certificate */
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, ca);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    X509_STORE_CTX_init(sc, st, x, NULL);
    X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_CLIENT);
    assert_int_equal(X509_verify_cert(sc), 1);
    X509_STORE_CTX_free(sc);
    X509_STORE_free(st);
    /* two certificates carry different serials */
    char *pem2 = NULL;
    assert_int_equal(mt_keystore_db_cert(e->ks, e->ca, req, rl, "mesatee", 60, &pem2, NULL, &err),
                     MT_OK);
    X509 *x2 = pem_x509(pem2);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(x2)),
                         0);
    X509_free(x2);
    free(pem2);
    X509_free(x);
    X509_free(ca);
    free(key);
    free(pem);
    free(req);
    mt_keystore_node_free(node);
}

/* A node whose measurement is not in the release policy gets MT_EPERM, no
 * certificate, and the refused measurement is named. */
static void test_wrong_measurement_refused(void **state)
{
    env *e = *state;
    mt_err err;
    bool changed = false;
    char m[65], pk[65];
    mt_tee_soft_ids(e->tee, m, pk);
    assert_int_equal(mt_keystore_policy_allow(e->ks, "measurement", OTHER_MEAS, &changed, &err), MT_OK);
    assert_int_equal(mt_keystore_policy_revoke(e->ks, "measurement", m, &err), MT_OK);
    mt_keystore_node *node = NULL;
    char *req = NULL, *pem = (char *)"x";
    size_t rl = 0;
    char meas[MT_KEYSTORE_MEAS_HEX + 1];
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_db_cert(e->ks, e->ca, req, rl, "mesatee", 600, &pem, meas, &err),
                     MT_EPERM);
    assert_null(pem);
    assert_string_equal(meas, m);
    assert_non_null(strstr(err.msg, "no database certificate"));
    /* allowed again: issued again */
    assert_int_equal(mt_keystore_policy_allow(e->ks, "measurement", m, &changed, &err), MT_OK);
    assert_int_equal(mt_keystore_db_cert(e->ks, e->ca, req, rl, "mesatee", 600, &pem, NULL, &err),
                     MT_OK);
    free(pem);
    free(req);
    mt_keystore_node_free(node);
}

/* Level none attests nothing: no certificate. */
static void test_level_none_refused(void **state)
{
    env *e = *state;
    char dir[sizeof e->dir + 8];
    snprintf(dir, sizeof dir, "%s/none", e->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    mt_err err;
    mt_tee *none = NULL;
    mt_keystore *ks = NULL;
    bool created = false;
    assert_int_equal(mt_tee_open("none", dir, &none, &err), MT_OK);
    assert_int_equal(mt_keystore_open(none, dir, NULL, 0, &ks, &created, &err), MT_OK);
    mt_keystore_node *node = NULL;
    char *req = NULL, *pem = NULL;
    size_t rl = 0;
    assert_int_equal(mt_keystore_request(none, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_db_cert(ks, e->ca, req, rl, "mesatee", 600, &pem, NULL, &err),
                     MT_EPERM);
    assert_null(pem);
    free(req);
    mt_keystore_node_free(node);
    mt_keystore_free(ks);
    mt_tee_free(none);
}

static void test_garbage(void **state)
{
    env *e = *state;
    mt_err err;
    mt_keystore_node *node = NULL;
    char *req = NULL, *pem = NULL;
    size_t rl = 0;
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    static const char *const bad_roles[] = {"", "Mesatee", "1abc", "a-b", "a b", "a;b",
                                            "0123456789012345678901234567890123456789012345678901"
                                            "234567890123",
                                            NULL};
    for (size_t i = 0; bad_roles[i]; i++) {
        assert_int_equal(
            mt_keystore_db_cert(e->ks, e->ca, req, rl, bad_roles[i], 600, &pem, NULL, &err),
            MT_EINVAL);
        assert_null(pem);
        assert_non_null(strstr(err.msg, "database role"));
    }
    assert_int_equal(mt_keystore_db_cert(e->ks, e->ca, req, rl, NULL, 600, &pem, NULL, &err),
                     MT_EINVAL);
    assert_int_equal(mt_dbcert_check_role("app_2", &err), MT_OK);
    /* the server's administrative roles are never certified */
    assert_int_equal(mt_dbcert_check_role("postgres", &err), MT_EINVAL);
    assert_int_equal(mt_dbcert_check_role("pg_read_server_files", &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "not certified"));
    static const uint32_t bad_ttl[] = {0, 9, 86401, UINT32_MAX};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            mt_keystore_db_cert(e->ks, e->ca, req, rl, "mesatee", bad_ttl[i], &pem, NULL, &err),
            MT_EINVAL);
        assert_non_null(strstr(err.msg, "ttl"));
    }
    static const char *const bad_req[] = {"", "{}", "garbage", "{\"mesatee_keystore\":1,"
                                                               "\"op\":\"release\",\"evidence\":"
                                                               "\"AAAA\"}",
                                          NULL};
    for (size_t i = 0; bad_req[i]; i++) {
        mt_status rc = mt_keystore_db_cert(e->ks, e->ca, bad_req[i], strlen(bad_req[i]), "mesatee",
                                           600, &pem, NULL, &err);
        assert_true(rc == MT_EINVAL || rc == MT_EPERM);
        assert_null(pem);
    }
    assert_int_equal(mt_keystore_db_cert(e->ks, NULL, req, rl, "mesatee", 600, &pem, NULL, &err),
                     MT_EINVAL);
    /* CA material */
    mt_dbcert_ca *ca = NULL;
    char *leaf = NULL, *leaf_key = NULL, *other = NULL, *other_key = NULL;
    make_ca(false, &leaf, &leaf_key);
    make_ca(true, &other, &other_key);
    assert_int_equal(mt_dbcert_ca_load(leaf, strlen(leaf), leaf_key, strlen(leaf_key), &ca, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "not a CA"));
    assert_int_equal(
        mt_dbcert_ca_load(e->ca_pem, strlen(e->ca_pem), other_key, strlen(other_key), &ca, &err),
        MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not match"));
    assert_int_equal(mt_dbcert_ca_load("garbage", 7, other_key, strlen(other_key), &ca, &err),
                     MT_EINVAL);
    assert_int_equal(mt_dbcert_ca_load(other, strlen(other), "garbage", 7, &ca, &err), MT_EINVAL);
    assert_int_equal(mt_dbcert_ca_load(other, 0, other_key, strlen(other_key), &ca, &err),
                     MT_EINVAL);
    assert_int_equal(mt_dbcert_ca_load(other, strlen(other), e->ca_pem, strlen(e->ca_pem), &ca,
                                       &err),
                     MT_EINVAL); /* a certificate given as the key */
    assert_null(ca);
    assert_int_equal(mt_dbcert_ca_load(other, strlen(other), other_key, strlen(other_key), &ca,
                                       &err),
                     MT_OK);
    mt_dbcert_ca_free(ca);
    mt_dbcert_ca_free(NULL);
    free(leaf);
    free(leaf_key);
    free(other);
    free(other_key);
    free(req);
    mt_keystore_node_free(node);
}

/* A CA made inside the KeyStore (--keystore-db-ca-create): it loads as a
 * database CA, is a CA (pathlen 0, keyCertSign), valid about the days
 * asked; its separate PEMs (mt_dbcert_ca_pem) load again; bad days refused;
 * a certificate it issues verifies against it. */
static void test_ca_create(void **state)
{
    env *e = *state;
    mt_err err;
    char *c = NULL, *k = NULL, *c2 = NULL, *k2 = NULL;
    assert_int_equal(mt_dbcert_ca_create(NULL, 0, &c, &k, &err), MT_EINVAL);
    assert_int_equal(mt_dbcert_ca_create(NULL, 36501, &c, &k, &err), MT_EINVAL);
    assert_int_equal(mt_dbcert_ca_create(NULL, 10, &c, &k, &err), MT_OK);
    assert_null(strstr(c, "PRIVATE"));
    mt_dbcert_ca *ca = NULL;
    assert_int_equal(mt_dbcert_ca_load(c, strlen(c), k, strlen(k), &ca, &err), MT_OK);
    assert_int_equal(mt_dbcert_ca_pem(ca, &c2, &k2, &err), MT_OK);
    assert_string_equal(c, c2);
    mt_dbcert_ca *ca2 = NULL;
    assert_int_equal(mt_dbcert_ca_load(c2, strlen(c2), k2, strlen(k2), &ca2, &err), MT_OK);
    mt_dbcert_ca_free(ca2);
    BIO *b = BIO_new_mem_buf(c, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    assert_int_equal(X509_check_ca(x), 1);
    assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_get_pathlen(x), 0);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
    assert_true(days >= 9 && days <= 10);
    /* it issues: a node's certificate verifies against it */
    mt_keystore_node *node = NULL;
    char *req = NULL, *pem = NULL;
    size_t rl = 0;
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_db_cert(e->ks, ca, req, rl, "mesatee", 600, &pem, NULL, &err),
                     MT_OK);
    b = BIO_new_mem_buf(pem, -1);
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, x);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, leaf, NULL);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(leaf);
    X509_free(x);
    free(pem);
    free(req);
    mt_keystore_node_free(node);
    mt_dbcert_ca_free(ca);
    free(c);
    free(k);
    free(c2);
    free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attested_node_gets_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_measurement_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_none_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_create, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
