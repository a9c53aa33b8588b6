/* Unit tests of the gateway's TLS identity reload (mt_gateway_reload_identity
 * and SIGHUP): a new key, certificate and chain are installed and written to
 * tls/server-cert.pem; a failing reload keeps the identity and the file; a
 * gateway without a reload callback refuses; with handle_signals, SIGHUP
 * makes the running gateway serve the new certificate (and its chain). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "mt_gateway.h"

/* ---- a backend that is never reached by these tests' handshakes ---- */
static mt_status be_auth(void *ctx, const char *token, mt_principal *out, mt_err *err)
{
    return mt_err_set(err, MT_EAUTH, "no");
}
static bool be_needs_auth(void *ctx, const char *method, const char *path)
{
    return false;
}
static size_t be_max_body(void *ctx, const char *method, const char *path)
{
    return 1024;
}
static void be_handle(void *ctx, const mt_request *req, mt_response *resp)
{
    resp->status = 404;
    resp->json = json_pack("{s:s}", "error", "none");
}
static mt_status be_audit(void *ctx, const char *actor, const char *action, const char *object,
                          int status, mt_err *err)
{
    return MT_OK;
}

/* A self-signed certificate (a CA when ca) for a new key, CN=cn. */
static void make_cert(const char *cn, bool ca, EVP_PKEY **key, X509 **cert)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    *key = k;
    *cert = x;
}

/* What the reload callback hands out next. */
typedef struct next_id {
    EVP_PKEY *key;
    X509 *cert;
    X509 *extra; /* chain certificate, or NULL */
    bool fail;
    int calls;
} next_id;

static mt_status reload_cb(void *ctx, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain,
                           mt_err *err)
{
    next_id *n = ctx;
    n->calls++;
    if (n->fail)
        return mt_err_set(err, MT_EINVAL, "the new files are bad");
    EVP_PKEY_up_ref(n->key);
    X509_up_ref(n->cert);
    *key = n->key;
    *cert = n->cert;
    if (n->extra) {
        *chain = sk_X509_new_null();
        X509_up_ref(n->extra);
        sk_X509_push(*chain, n->extra);
    }
    return MT_OK;
}

static char dir[64];
static char cert_file[128];

/* The certificates in dir/tls/server-cert.pem, in order. */
static int file_certs(X509 **out, int max)
{
    FILE *f = fopen(cert_file, "r");
    assert_non_null(f);
    int n = 0;
    X509 *x;
    while (n < max && (x = PEM_read_X509(f, NULL, NULL, NULL)))
        out[n++] = x;
    fclose(f);
    ERR_clear_error();
    return n;
}

/* The leaf and the number of certificates the gateway on port serves. */
static X509 *served(unsigned port, int *n_certs)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    X509 *leaf = SSL_get1_peer_certificate(ssl);
    STACK_OF(X509) *sk = SSL_get_peer_cert_chain(ssl);
    *n_certs = sk ? sk_X509_num(sk) : 0;
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return leaf;
}

static void *run_thread(void *arg)
{
    mt_err err;
    mt_err_clear(&err);
    mt_gateway_run(arg, &err);
    return NULL;
}

static void test_reload(void **state)
{
    (void)state;
    EVP_PKEY *k1, *k2, *k3, *kca;
    X509 *c1, *c2, *c3, *ca;
    make_cert("one", false, &k1, &c1);
    make_cert("two", false, &k2, &c2);
    make_cert("three", false, &k3, &c3);
    make_cert("ca", true, &kca, &ca);
    next_id next = {.key = k2, .cert = c2, .extra = ca};
    mt_gateway_backend be = {.authenticate = be_auth, .needs_auth = be_needs_auth,
                             .max_body = be_max_body, .handle = be_handle, .audit = be_audit};
    mt_gateway_config cfg = {.listen = "127.0.0.1:0", .data_dir = dir, .key = k1, .cert = c1,
                             .handle_signals = true, .reload = reload_cb, .reload_ctx = &next};
    mt_gateway *gw = NULL;
    mt_err err;
    mt_err_clear(&err);
    if (mt_gateway_new(&cfg, &be, &gw, &err) != MT_OK)
        fail_msg("mt_gateway_new: %s", err.msg);
    X509 *got[4];
    assert_int_equal(file_certs(got, 4), 1);
    assert_int_equal(X509_cmp(got[0], c1), 0);
    X509_free(got[0]);

    /* a reload installs and writes the new certificate and its chain */
    assert_int_equal(mt_gateway_reload_identity(gw, &err), MT_OK);
    assert_int_equal(file_certs(got, 4), 2);
    assert_int_equal(X509_cmp(got[0], c2), 0);
    assert_int_equal(X509_cmp(got[1], ca), 0);
    X509_free(got[0]);
    X509_free(got[1]);

    /* a failing reload keeps both */
    next.fail = true;
    assert_int_equal(mt_gateway_reload_identity(gw, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "the new files are bad"));
    assert_int_equal(file_certs(got, 4), 2);
    assert_int_equal(X509_cmp(got[0], c2), 0);
    X509_free(got[0]);
    X509_free(got[1]);
    /* a key that does not match its certificate is refused, identity kept */
    next.fail = false;
    next.key = k1;
    next.extra = NULL;
    assert_int_not_equal(mt_gateway_reload_identity(gw, &err), MT_OK);
    assert_int_equal(file_certs(got, 4), 2);
    X509_free(got[0]);
    X509_free(got[1]);

    /* running: serves c2 with its chain; SIGHUP switches to c3 */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, gw), 0);
    int n = 0;
    X509 *leaf = served(mt_gateway_port(gw), &n);
    assert_int_equal(X509_cmp(leaf, c2), 0);
    assert_int_equal(n, 2);
    X509_free(leaf);
    next.key = k3;
    next.cert = c3;
    int before = next.calls;
    assert_int_equal(kill(getpid(), SIGHUP), 0);
    for (int i = 0; i < 3000 && next.calls == before; i++) /* 30 s at most */
        usleep(10000);
    assert_int_equal(next.calls, before + 1);
    leaf = NULL;
    for (int i = 0; i < 3000; i++) { /* the loop installs it right after the callback */
        X509_free(leaf);
        leaf = served(mt_gateway_port(gw), &n);
        if (X509_cmp(leaf, c3) == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(X509_cmp(leaf, c3), 0);
    assert_int_equal(n, 1);
    X509_free(leaf);
    mt_gateway_stop(gw);
    pthread_join(th, NULL);
    mt_gateway_free(gw);

    /* no reload callback: refused */
    cfg.reload = NULL;
    cfg.handle_signals = false;
    assert_int_equal(mt_gateway_new(&cfg, &be, &gw, &err), MT_OK);
    assert_int_equal(mt_gateway_reload_identity(gw, &err), MT_EINVAL);
    mt_gateway_free(gw);

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
    EVP_PKEY_free(kca);
    X509_free(c1);
    X509_free(c2);
    X509_free(c3);
    X509_free(ca);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mt-gw-reload-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(cert_file, sizeof cert_file, "%s/tls/server-cert.pem", dir);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reload)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
