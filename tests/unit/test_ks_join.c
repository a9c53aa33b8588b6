/* Unit tests of the KeyStore join (src/keystore/ks_join.c, mt_ks_join.h), at
 * level soft: the join answer opens only with the requesting node's key and
 * carries the platform keys and the same root keys as a release; version-1
 * and version-2 messages are not taken for each other; garbage answers and
 * URLs are refused; over loopback, a node the release policy admits joins
 * (and re-joins) the KeyStore node, a node with another platform key is
 * refused with the reason, and a joining node whose KeyStore policy does not
 * admit the KeyStore node refuses it in the handshake. The join URL written
 * to keystore.url: --keystore-advertise (checked), else the listen address,
 * else 127.0.0.1 for a wildcard. A joined node renews its database
 * certificate (mt_ks_join_renew_db_cert) for the same key; the renewal
 * schedule and backoff (mt_dbrenew_due, mt_dbrenew_retry_s). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mt_dbcert.h"
#include "mt_dbrenew.h"
#include "mt_keystore.h"
#include "mt_ks_join.h"
#include "mt_policy.h"
#include "mt_tee.h"
#include "mt_util.h"

typedef struct env {
    char dir[64], dir2[64];
    mt_tee *tee, *tee2; /* tee2: another node (its own platform key) */
    mt_keystore *ks;
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/mt_ksjoin_test.XXXXXX");
    snprintf(e->dir2, sizeof e->dir2, "/tmp/mt_ksjoin_test2.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_non_null(mkdtemp(e->dir2));
    mt_err err;
    assert_int_equal(mt_tee_open("soft", e->dir, &e->tee, &err), MT_OK);
    assert_int_equal(mt_tee_open("soft", e->dir2, &e->tee2, &err), MT_OK);
    mt_keystore_node *node = NULL;
    char *req = NULL;
    size_t rl = 0;
    bool created = false;
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_open(e->tee, e->dir, req, rl, &e->ks, &created, &err), MT_OK);
    mt_keystore_node_free(node);
    free(req);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    mt_keystore_free(e->ks);
    mt_tee_free(e->tee);
    mt_tee_free(e->tee2);
    char cmd[192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", e->dir, e->dir2);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove the test directories\n");
    free(e);
    return 0;
}

static void identity(mt_tee *tee, EVP_PKEY **key, uint8_t **der, size_t *len)
{
    X509 *x = NULL;
    mt_err err;
    assert_int_equal(mt_tee_tls_identity(tee, key, &x, &err), MT_OK);
    *der = NULL;
    int n = i2d_X509(x, der);
    assert_true(n > 0);
    *len = (size_t)n;
    X509_free(x);
}

static void platform_fill(uint8_t p[MT_KS_JOIN_PLATFORM])
{
    for (size_t i = 0; i < MT_KS_JOIN_PLATFORM; i++)
        p[i] = (uint8_t)(i * 7 + 1);
}

static void test_answer_round_trip(void **state)
{
    env *e = *state;
    EVP_PKEY *key = NULL, *other = NULL;
    uint8_t *der = NULL, *der2 = NULL, plat[MT_KS_JOIN_PLATFORM], got[MT_KS_JOIN_PLATFORM];
    size_t dl = 0, dl2 = 0;
    identity(e->tee, &key, &der, &dl);
    identity(e->tee, &other, &der2, &dl2);
    platform_fill(plat);
    char *resp = NULL;
    size_t rl = 0;
    mt_err err;
    assert_int_equal(mt_ks_join_make_answer(e->ks, plat, der, dl, &resp, &rl, &err), MT_OK);
    mt_keyring *kr = NULL;
    assert_int_equal(mt_ks_join_parse_answer(key, der, dl, resp, rl, got, &kr, &err), MT_OK);
    assert_memory_equal(got, plat, sizeof plat);
    assert_int_equal(mt_keyring_current(kr), 1);
    /* the same root key as a version-1 release to the same KeyStore */
    mt_keystore_node *node = NULL;
    char *req = NULL, *r1 = NULL, meas[MT_KEYSTORE_MEAS_HEX + 1];
    size_t ql = 0, r1l = 0;
    mt_keyring *kr1 = NULL;
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &ql, &err), MT_OK);
    assert_int_equal(mt_keystore_release(e->ks, req, ql, &r1, &r1l, meas, &err), MT_OK);
    assert_int_equal(mt_keystore_accept(node, r1, r1l, &kr1, &err), MT_OK);
    uint8_t a[32], b[32];
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, a, NULL, &err), MT_OK);
    assert_int_equal(mt_keyring_kek(kr1, "file-keys", 1, b, NULL, &err), MT_OK);
    assert_memory_equal(a, b, 32);
    mt_keyring_free(kr);
    mt_keyring_free(kr1);
    /* another key, or another certificate: nothing opens */
    assert_int_equal(mt_ks_join_parse_answer(other, der, dl, resp, rl, got, &kr, &err), MT_ECRYPTO);
    assert_null(kr);
    assert_int_equal(mt_ks_join_parse_answer(key, der2, dl2, resp, rl, got, &kr, &err),
                     MT_ECRYPTO);
    /* versions are not taken for each other */
    assert_int_equal(mt_ks_join_parse_answer(key, der, dl, r1, r1l, got, &kr, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "mesatee_keystore"));
    assert_int_equal(mt_keystore_accept(node, resp, rl, &kr1, &err), MT_EINVAL);
    /* a flipped byte in the sealed field: MT_ECRYPTO or MT_EINVAL, never keys */
    char *bad = strdup(resp);
    char *s = strstr(bad, "\"sealed\":\"");
    assert_non_null(s);
    s[12] = s[12] == 'A' ? 'B' : 'A';
    assert_int_not_equal(mt_ks_join_parse_answer(key, der, dl, bad, rl, got, &kr, &err), MT_OK);
    assert_null(kr);
    /* truncations */
    for (size_t n = 0; n < rl; n += 17)
        assert_int_not_equal(mt_ks_join_parse_answer(key, der, dl, resp, n, got, &kr, &err),
                             MT_OK);
    static const char *const garbage[] = {
        "", "{}", "[]", "null",
        "{\"mesatee_keystore\":2,\"op\":\"release\",\"current\":1,\"ephemeral\":\"\",\"sealed\":\"\"}",
        "{\"mesatee_keystore\":2,\"op\":\"join\",\"current\":0,\"ephemeral\":\"AA==\",\"sealed\":\"AA==\"}",
        "{\"mesatee_keystore\":2,\"op\":\"join\",\"current\":1,\"ephemeral\":\"AA==\",\"sealed\":\"AA==\"}",
        "{\"mesatee_keystore\":2,\"op\":\"join\",\"current\":1,\"ephemeral\":\"AA==\",\"sealed\":\"AA==\",\"x\":1}",
        NULL};
    for (size_t i = 0; garbage[i]; i++)
        assert_int_equal(mt_ks_join_parse_answer(key, der, dl, garbage[i], strlen(garbage[i]),
                                                 got, &kr, &err),
                         MT_EINVAL);
    /* the optional database certificate: absent, a PEM, or refused */
    char *pem = (char *)1;
    assert_int_equal(mt_ks_join_answer_db_cert(resp, rl, &pem, &err), MT_OK);
    assert_null(pem);
    static const char with[] = "{\"db_cert\":\"-----BEGIN CERTIFICATE-----\\nAA\\n\"}";
    assert_int_equal(mt_ks_join_answer_db_cert(with, sizeof with - 1, &pem, &err), MT_OK);
    assert_non_null(pem);
    free(pem);
    static const char *const bad_db[] = {"{\"db_cert\":\"x\"}", "{\"db_cert\":1}", "[", NULL};
    for (size_t i = 0; bad_db[i]; i++)
        assert_int_equal(mt_ks_join_answer_db_cert(bad_db[i], strlen(bad_db[i]), &pem, &err),
                         MT_EINVAL);
    /* an answer with "db_cert" still opens */
    char *resp2 = malloc(rl + 64);
    assert_non_null(resp2);
    memcpy(resp2, resp, rl - 1);
    int n2 = snprintf(resp2 + rl - 1, 64, ",\"db_cert\":\"-----BEGIN CERTIFICATE-----\"}");
    assert_int_equal(mt_ks_join_parse_answer(key, der, dl, resp2, rl - 1 + (size_t)n2, got, &kr,
                                             &err),
                     MT_OK);
    mt_keyring_free(kr);
    kr = NULL;
    free(resp2);
    free(bad);
    free(resp);
    free(r1);
    free(req);
    mt_keystore_node_free(node);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    OPENSSL_free(der);
    OPENSSL_free(der2);
}

static void test_url(void **state)
{
    (void)state;
    char host[256], port[8];
    mt_err err;
    assert_int_equal(mt_ks_join_parse_url("https://node-a.example:7445", host, port, &err), MT_OK);
    assert_string_equal(host, "node-a.example");
    assert_string_equal(port, "7445");
    assert_int_equal(mt_ks_join_parse_url("https://[::1]:1/", host, port, &err), MT_OK);
    assert_string_equal(host, "::1");
    static const char *const bad[] = {"", "http://a:1", "https://", "https://a", "https://a:",
                                      "https://a:0", "https://a:65536", "https://a:123456",
                                      "https://a:1/x", "https://a b:1", "https://:1",
                                      "https://[::1]1", "https://a:1x", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(mt_ks_join_parse_url(bad[i], host, port, &err), MT_EINVAL);
    assert_int_equal(mt_ks_join_parse_url(NULL, host, port, &err), MT_EINVAL);
}

/* A soft policy admitting tee's measurement and platform key. */
static mt_policy *policy_for(mt_tee *tee)
{
    char m[65], pk[65], json[512];
    mt_tee_soft_ids(tee, m, pk);
    snprintf(json, sizeof json,
             "{\"mesatee_policy\": 1, \"role\": \"gateway\", \"allowed_kinds\": [\"soft\"], "
             "\"min_level\": \"soft\", \"measurements\": {\"gateway\": {\"measurement\": "
             "[\"%s\"]}}, \"soft_platform_keys\": [\"%s\"], \"max_evidence_age_s\": 600}",
             m, pk);
    mt_policy *p = NULL;
    mt_err err;
    if (mt_policy_parse(json, strlen(json), &p, &err))
        fail_msg("policy: %s", err.msg);
    return p;
}

static void test_join_over_tls(void **state)
{
    env *e = *state;
    uint8_t plat[MT_KS_JOIN_PLATFORM];
    platform_fill(plat);
    mt_ks_join_server *srv = NULL;
    mt_err err;
    assert_int_equal(mt_ks_join_server_start("127.0.0.1:0", NULL, e->tee, e->ks, plat, e->dir,
                                             &srv, &err),
                     MT_OK);
    /* the wrapped keys' records are wiped once read (docs/threat-model.md) */
    assert_true(mt_ks_join_server_tls_options(srv) & SSL_OP_CLEANSE_PLAINTEXT);
    char path[128], url[64] = "";
    snprintf(path, sizeof path, "%s/%s", e->dir, MT_KS_JOIN_URL_FILE);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(url, sizeof url, f));
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
    mt_policy *pol = policy_for(e->tee);
    /* a peer that connects and sends nothing does not hold the listener:
     * the join below is served beside it (each join has its own thread and
     * a deadline) */
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sa.sin_port = htons((uint16_t)atoi(strrchr(url, ':') + 1));
    assert_int_equal(connect(silent, (struct sockaddr *)&sa, sizeof sa), 0);
    /* the KeyStore node's own identity: admitted */
    mt_ks_joined *j = NULL;
    if (mt_ks_join_open(e->tee, url, pol, 0, &j, &err))
        fail_msg("join: %s", err.msg);
    assert_memory_equal(mt_ks_joined_platform(j), plat, sizeof plat);
    mt_keyring *kr = mt_ks_joined_take_keyring(j);
    assert_non_null(kr);
    assert_null(mt_ks_joined_take_keyring(j));
    mt_keyring_free(kr);
    /* a rotation on the KeyStore node: a re-join gets the new version */
    uint32_t v = 0;
    assert_int_equal(mt_keystore_rotate(e->ks, &v, &err), MT_OK);
    assert_int_equal(mt_ks_join_refresh(j, &kr, &err), MT_OK);
    assert_int_equal(mt_keyring_current(kr), v);
    assert_true(mt_keyring_has(kr, 1));
    mt_keyring_free(kr);
    mt_ks_joined_free(j);
    /* another node (its own platform key) is refused, with the reason */
    j = NULL;
    assert_int_equal(mt_ks_join_open(e->tee2, url, pol, 0, &j, &err), MT_EPERM);
    assert_null(j);
    assert_non_null(strstr(err.msg, "refused by the KeyStore release policy"));
    /* once its key is allowed, it joins */
    char m2[65], pk2[65];
    mt_tee_soft_ids(e->tee2, m2, pk2);
    bool changed = false;
    assert_int_equal(mt_keystore_policy_allow(e->ks, "soft_platform_key", pk2, &changed, &err),
                     MT_OK);
    if (mt_ks_join_open(e->tee2, url, pol, 0, &j, &err))
        fail_msg("join after allow: %s", err.msg);
    mt_ks_joined_free(j);
    /* a KeyStore policy that does not admit the KeyStore node: refused in
     * the handshake by the joining node */
    mt_policy *wrong = policy_for(e->tee2);
    j = NULL;
    assert_int_equal(mt_ks_join_open(e->tee, url, wrong, 0, &j, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "attested TLS"));
    /* level none never joins; missing arguments */
    mt_tee *none = NULL;
    assert_int_equal(mt_tee_open("none", e->dir2, &none, &err), MT_OK);
    assert_int_equal(mt_ks_join_open(none, url, pol, 0, &j, &err), MT_EINVAL);
    mt_tee_free(none);
    assert_int_equal(mt_ks_join_open(e->tee, url, NULL, 0, &j, &err), MT_EINVAL);
    assert_int_equal(mt_ks_join_open(e->tee, "https://127.0.0.1:1", pol, 0, &j, &err), MT_EIO);
    mt_policy_free(wrong);
    mt_policy_free(pol);
    mt_ks_join_server_stop(srv); /* cuts the silent connection */
    char byte;
    assert_true(read(silent, &byte, 1) <= 0);
    close(silent);
    mt_ks_join_server_stop(NULL);
    mt_ks_joined_free(NULL);
    /* a bad listen address */
    assert_int_equal(mt_ks_join_server_start("nope", NULL, e->tee, e->ks, plat, e->dir, &srv,
                                             &err),
                     MT_EINVAL);
}

static char *read_url(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, MT_KS_JOIN_URL_FILE);
    uint8_t *b = NULL;
    size_t n = 0;
    mt_err err;
    assert_int_equal(mt_file_read(path, 4096, &b, &n, &err), MT_OK);
    char *s = calloc(1, n + 1);
    memcpy(s, b, n);
    free(b);
    s[strcspn(s, "\n")] = '\0';
    return s;
}

/* keystore.url: the advertised URL, the listen address, 127.0.0.1 for a
 * wildcard; a bad --keystore-advertise is refused by name. */
static void test_advertise(void **state)
{
    env *e = *state;
    uint8_t plat[MT_KS_JOIN_PLATFORM];
    platform_fill(plat);
    mt_ks_join_server *srv = NULL;
    mt_err err;
    assert_int_equal(mt_ks_join_server_start("127.0.0.1:0", "https://ks.example:7777/", e->tee,
                                             e->ks, plat, e->dir, &srv, &err),
                     MT_OK);
    char *u = read_url(e->dir);
    assert_string_equal(u, "https://ks.example:7777");
    assert_string_equal(mt_ks_join_server_url(srv), u);
    free(u);
    mt_ks_join_server_stop(srv);
    assert_int_equal(mt_ks_join_server_start("0.0.0.0:0", NULL, e->tee, e->ks, plat, e->dir,
                                             &srv, &err),
                     MT_OK);
    u = read_url(e->dir);
    assert_int_equal(strncmp(u, "https://127.0.0.1:", 18), 0);
    free(u);
    mt_ks_join_server_stop(srv);
    assert_int_equal(mt_ks_join_server_start("localhost:0", NULL, e->tee, e->ks, plat, e->dir,
                                             &srv, &err),
                     MT_OK);
    u = read_url(e->dir);
    assert_int_equal(strncmp(u, "https://localhost:", 18), 0);
    free(u);
    mt_ks_join_server_stop(srv);
    static const char *const bad[] = {"http://ks:1", "https://ks", "https://ks:0",
                                      "https://k s:1", "https://ks:1/x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        srv = NULL;
        assert_int_equal(mt_ks_join_server_start("127.0.0.1:0", bad[i], e->tee, e->ks, plat,
                                                 e->dir, &srv, &err),
                         MT_EINVAL);
        assert_null(srv);
        assert_non_null(strstr(err.msg, "--keystore-advertise"));
    }
}

static void make_ca(char **cert_pem, char **key_pem)
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
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    PEM_write_bio_X509(b, x);
    long n = BIO_get_mem_data(b, &p);
    *cert_pem = strndup(p, (size_t)n);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(b, &p);
    *key_pem = strndup(p, (size_t)n);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A joined node renews its database certificate: a new certificate for the
 * same key, valid about the KeyStore node's ttl; without a CA on the
 * KeyStore node, or with the KeyStore node gone, the renewal fails and the
 * old certificate stays. */
static void test_db_cert_renewal(void **state)
{
    env *e = *state;
    uint8_t plat[MT_KS_JOIN_PLATFORM];
    platform_fill(plat);
    mt_err err;
    char *ca_pem = NULL, *ca_key = NULL;
    make_ca(&ca_pem, &ca_key);
    mt_dbcert_ca *ca = NULL;
    assert_int_equal(mt_dbcert_ca_load(ca_pem, strlen(ca_pem), ca_key, strlen(ca_key), &ca, &err),
                     MT_OK);
    mt_ks_join_server *srv = NULL;
    assert_int_equal(mt_ks_join_server_start("127.0.0.1:0", NULL, e->tee, e->ks, plat, e->dir,
                                             &srv, &err),
                     MT_OK);
    mt_ks_join_server_set_db_ca(srv, ca, "mesatee", 600, NULL);
    mt_policy *pol = policy_for(e->tee);
    mt_ks_joined *j = NULL;
    if (mt_ks_join_open(e->tee, mt_ks_join_server_url(srv), pol, 0, &j, &err))
        fail_msg("join: %s", err.msg);
    char *c1 = NULL, *k1 = NULL, *c2 = NULL, *k2 = NULL;
    int64_t nb = 0, na = 0, na2 = 0;
    assert_int_equal(mt_ks_joined_db_cert(j, &c1, &k1, &nb, &na, &err), MT_OK);
    int64_t now = mt_now();
    assert_true(na > now + 500 && na <= now + 600);
    assert_true(nb < now);
    /* the renewal: a new certificate, the same key */
    if (mt_ks_join_renew_db_cert(j, &err))
        fail_msg("renew: %s", err.msg);
    assert_int_equal(mt_ks_joined_db_cert(j, &c2, &k2, NULL, &na2, &err), MT_OK);
    assert_string_not_equal(c1, c2); /* a fresh 128-bit serial */
    assert_string_equal(k1, k2);
    assert_true(na2 >= na);
    free(c2);
    mt_wipe(k2, strlen(k2));
    free(k2);
    /* the KeyStore node without a CA: no certificate, the last one stays */
    mt_ks_join_server_set_db_ca(srv, NULL, "mesatee", 600, NULL);
    assert_int_equal(mt_ks_join_renew_db_cert(j, &err), MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "no database certificate"));
    assert_int_equal(mt_ks_joined_db_cert(j, &c2, NULL, NULL, NULL, &err), MT_OK);
    free(c2);
    /* the KeyStore node gone: an I/O error */
    mt_ks_join_server_stop(srv);
    assert_int_equal(mt_ks_join_renew_db_cert(j, &err), MT_EIO);
    mt_ks_joined_free(j);
    /* a node that got no certificate has none to renew */
    assert_int_equal(mt_ks_join_server_start("127.0.0.1:0", NULL, e->tee, e->ks, plat, e->dir,
                                             &srv, &err),
                     MT_OK);
    if (mt_ks_join_open(e->tee, mt_ks_join_server_url(srv), pol, 0, &j, &err))
        fail_msg("join: %s", err.msg);
    assert_int_equal(mt_ks_join_renew_db_cert(j, &err), MT_ENOTFOUND);
    assert_int_equal(mt_ks_joined_db_cert(j, &c2, NULL, NULL, NULL, &err), MT_ENOTFOUND);
    mt_dbrenew *r = NULL;
    assert_int_equal(mt_dbrenew_start(j, "/nonexistent/db-client.crt", &r, &err), MT_EINVAL);
    assert_null(r);
    mt_ks_joined_free(j);
    mt_ks_join_server_stop(srv);
    mt_policy_free(pol);
    free(c1);
    mt_wipe(k1, strlen(k1));
    free(k1);
    mt_dbcert_ca_free(ca);
    free(ca_pem);
    free(ca_key);
}

typedef struct renew_arg {
    mt_ks_joined *j;
    mt_status rc;
    mt_err err;
} renew_arg;

static void *renew_thread(void *p)
{
    renew_arg *a = p;
    a->rc = mt_ks_join_renew_db_cert(a->j, &a->err);
    return NULL;
}

/* A KeyStore node that accepts no connection (its listen queue full: the
 * kernel drops the SYNs, connect() would wait for minutes): a renewal gives
 * up after the connect timeout; a renewal stuck in connect() is ended at
 * once by mt_ks_join_cancel (a node's stop), and so is every later join.
 * Fails without the fix: the renewal waited in connect() until the kernel
 * gave up (about two minutes) with "Connection timed out", and nothing could
 * end it sooner. */
static void test_join_stuck_connect(void **state)
{
    env *e = *state;
    uint8_t plat[MT_KS_JOIN_PLATFORM];
    platform_fill(plat);
    mt_err err;
    char *ca_pem = NULL, *ca_key = NULL;
    make_ca(&ca_pem, &ca_key);
    mt_dbcert_ca *ca = NULL;
    assert_int_equal(mt_dbcert_ca_load(ca_pem, strlen(ca_pem), ca_key, strlen(ca_key), &ca, &err),
                     MT_OK);
    mt_ks_join_server *srv = NULL;
    assert_int_equal(mt_ks_join_server_start("127.0.0.1:0", NULL, e->tee, e->ks, plat, e->dir,
                                             &srv, &err),
                     MT_OK);
    mt_ks_join_server_set_db_ca(srv, ca, "mesatee", 600, NULL);
    mt_policy *pol = policy_for(e->tee);
    mt_ks_joined *j = NULL;
    if (mt_ks_join_open(e->tee, mt_ks_join_server_url(srv), pol, 0, &j, &err))
        fail_msg("join: %s", err.msg);
    const char *colon = strrchr(mt_ks_join_server_url(srv), ':');
    assert_non_null(colon);
    int port = atoi(colon + 1);
    mt_ks_join_server_stop(srv);
    /* the same port: a listener whose queue is full */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 0), 0);
    int fill[3];
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fill[i] >= 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    /* a renewal gives up after the connect timeout */
    assert_int_equal(mt_ks_join_renew_db_cert(j, &err), MT_EIO);
    if (!strstr(err.msg, "no connection within"))
        fail_msg("renewal against a full listen queue: %s", err.msg);
    /* a renewal stuck in connect(): ended by a cancel */
    renew_arg a = {.j = j};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, renew_thread, &a), 0);
    struct timespec ts = {0, 300 * 1000 * 1000}; /* likely inside connect() by now */
    nanosleep(&ts, NULL);
    mt_ks_join_cancel(j);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, MT_EIO);
    if (!strstr(a.err.msg, "canceled"))
        fail_msg("renewal after a cancel: %s", a.err.msg);
    /* and every join after it */
    assert_int_equal(mt_ks_join_renew_db_cert(j, &err), MT_EIO);
    assert_non_null(strstr(err.msg, "canceled"));
    mt_ks_join_cancel(NULL);
    for (int i = 0; i < 3; i++)
        close(fill[i]);
    close(lfd);
    mt_ks_joined_free(j);
    mt_policy_free(pol);
    mt_dbcert_ca_free(ca);
    free(ca_pem);
    free(ca_key);
}

/* A "KeyStore node" that answers every step just in time: it accepts, sends
 * the header of a 16 KiB TLS handshake record and then one byte of it every
 * 100 ms, so no read waits anywhere near its 10 s bound, and the record
 * (the ServerHello the client waits for) is never complete. Gives up after
 * 60 s (then closes: a join without an overall deadline fails later with
 * another message, so the test fails rather than hangs). */
typedef struct trickle {
    int lfd;
    int port;
    atomic_bool stop;
    pthread_t th;
} trickle;

static void *trickle_main(void *p)
{
    trickle *t = p;
    int c = accept(t->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    static const unsigned char head[5] = {0x16, 0x03, 0x03, 0x40, 0x00};
    if (send(c, head, sizeof head, MSG_NOSIGNAL) == (ssize_t)sizeof head)
        for (int i = 0; i < 600 && !atomic_load(&t->stop); i++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (send(c, "\x02", 1, MSG_NOSIGNAL) != 1)
                break;
        }
    close(c);
    return NULL;
}

/* A whole join is bounded by its deadline, however slowly (but within each
 * step's own bound) the KeyStore node answers: the join gives up with the
 * deadline's error. Fails without the deadline: the join waited for the
 * record until the peer closed (60 s), then failed with another message. */
static void test_join_deadline(void **state)
{
    env *e = *state;
    trickle t = {.lfd = socket(AF_INET, SOCK_STREAM, 0)};
    atomic_init(&t.stop, false);
    assert_true(t.lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(t.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(t.lfd, 4), 0);
    assert_int_equal(getsockname(t.lfd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(pthread_create(&t.th, NULL, trickle_main, &t), 0);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", ntohs(sa.sin_port));
    mt_policy *pol = policy_for(e->tee);
    mt_ks_joined *j = NULL;
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(mt_ks_join_open(e->tee, url, pol, 1500, &j, &err), MT_EIO);
    assert_null(j);
    if (!strstr(err.msg, "not done within 1500 ms"))
        fail_msg("join with a trickling peer: %s", err.msg);
    atomic_store(&t.stop, true);
    /* the deadline may pass before the join connected (a slow identity step
     * on a loaded machine): wake the trickler from accept, or the join
     * below would wait for it forever (Linux: accept fails with EINVAL) */
    shutdown(t.lfd, SHUT_RDWR);
    pthread_join(t.th, NULL);
    close(t.lfd);
    mt_policy_free(pol);
}

static void test_renew_schedule(void **state)
{
    (void)state;
    assert_int_equal(mt_dbrenew_due(1000, 1000 + 86400), 1000 + 57600);
    assert_int_equal(mt_dbrenew_due(1000, 1030), 1020);
    assert_int_equal(mt_dbrenew_due(1000, 900), 1000); /* already expired: now */
    assert_int_equal(mt_dbrenew_retry_s(1, 100000), 2);
    assert_int_equal(mt_dbrenew_retry_s(2, 100000), 4);
    assert_int_equal(mt_dbrenew_retry_s(8, 100000), 256);
    assert_int_equal(mt_dbrenew_retry_s(9, 100000), 300);
    assert_int_equal(mt_dbrenew_retry_s(1000, 100000), 300);
    assert_int_equal(mt_dbrenew_retry_s(8, 100), 50); /* never past half the time left */
    assert_int_equal(mt_dbrenew_retry_s(3, 1), 1);
    assert_int_equal(mt_dbrenew_retry_s(20, -5), 300); /* expired: keep trying */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answer_round_trip, setup, teardown),
        cmocka_unit_test(test_url),
        cmocka_unit_test_setup_teardown(test_join_over_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_advertise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_cert_renewal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_stuck_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_deadline, setup, teardown),
        cmocka_unit_test(test_renew_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
