/* Tests of the executor API's message reader (mt_atls.h): one framing only
 * (duplicate Content-Length, Transfer-Encoding), and a body buffer that grows
 * with the bytes received rather than the length announced (issue 8 item 6,
 * executor API). Plain TLS over a socketpair; the attestation check of the
 * handshake is tested elsewhere (it_remote_executor.sh), except how it treats
 * the certificate's self-signature and the verified-peer cache
 * (test_peer_proves_key: soft-level identities over a socketpair). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mt_atls.h"
#include "mt_ratls.h"
#include "mt_tee.h"
#include "mt_util.h"
#include "mt_vcache.h"

static mt_status parse(const char *head, size_t max, size_t *cl)
{
    mt_err err;
    mt_err_clear(&err);
    return mt_atls_parse_head(head, max, cl, &err);
}

static void test_parse_head_framing(void **state)
{
    (void)state;
    size_t cl = 7;
    assert_int_equal(parse("POST /v1/executor/report HTTP/1.1\r\nContent-Length: 12", 100, &cl),
                     MT_OK);
    assert_int_equal(cl, 12);
    assert_int_equal(parse("POST /x HTTP/1.1\r\nHost: a", 100, &cl), MT_OK);
    assert_int_equal(cl, 0);
    assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 101", 100, &cl), MT_ETOOBIG);
    /* two lengths (equal or not) or a transfer coding: refused */
    assert_int_equal(
        parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 50", 100, &cl),
        MT_EINVAL);
    assert_int_equal(
        parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5", 100, &cl),
        MT_EINVAL);
    assert_int_equal(parse("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked", 100, &cl),
                     MT_EINVAL);
    assert_int_equal(
        parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", 100, &cl),
        MT_EINVAL);
    assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: -1", 100, &cl), MT_EINVAL);
    assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 5x", 100, &cl), MT_EINVAL);
}

/* A TLS pair over a socketpair; the client side is driven by a thread. */
typedef struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    int fds[2];
    const char *send; /* what the client sends, then it closes */
    size_t send_len;
} pair;

static void *client_main(void *p)
{
    pair *t = p;
    if (SSL_connect(t->c) == 1) {
        (void)SSL_write(t->c, t->send, (int)t->send_len);
        SSL_shutdown(t->c);
    }
    shutdown(t->fds[1], SHUT_RDWR);
    return NULL;
}

static void pair_open(pair *t)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pkey);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"t", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    t->sctx = SSL_CTX_new(TLS_server_method());
    t->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->sctx);
    assert_non_null(t->cctx);
    assert_int_equal(SSL_CTX_use_certificate(t->sctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(t->sctx, pkey), 1);
    X509_free(x);
    EVP_PKEY_free(pkey);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t->fds), 0);
    t->s = SSL_new(t->sctx);
    t->c = SSL_new(t->cctx);
    assert_int_equal(SSL_set_fd(t->s, t->fds[0]), 1);
    assert_int_equal(SSL_set_fd(t->c, t->fds[1]), 1);
}

static void pair_close(pair *t)
{
    SSL_free(t->s);
    SSL_free(t->c);
    SSL_CTX_free(t->sctx);
    SSL_CTX_free(t->cctx);
    close(t->fds[0]);
    close(t->fds[1]);
}

/* A /proc/self/status field in kB (-1 when unavailable). */
static long proc_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* A peer announcing 256 MiB and sending 10 bytes: the read fails at the
 * close, and the reader never reserved the announced size (the old reader
 * allocated it whole before the first body byte). */
static void test_body_grows_with_bytes(void **state)
{
    (void)state;
    static const char msg[] =
        "POST /v1/executor/report HTTP/1.1\r\nContent-Length: 268435456\r\n\r\n0123456789";
    pair t;
    memset(&t, 0, sizeof t);
    pair_open(&t);
    t.send = msg;
    t.send_len = sizeof msg - 1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_main, &t), 0);
    assert_int_equal(SSL_accept(t.s), 1);
    char head[1024];
    size_t cl = 0;
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(mt_atls_read_head(t.s, head, sizeof head, 256u << 20, &cl, &err), MT_OK);
    assert_int_equal(cl, 256u << 20);
    long vm_before = proc_kb("VmSize"), peak_before = proc_kb("VmPeak");
    uint8_t *body = (uint8_t *)"x";
    assert_int_equal(mt_atls_read_body(t.s, cl, &body, &err), MT_EIO);
    assert_null(body);
    long peak_after = proc_kb("VmPeak");
    pthread_join(th, NULL);
    pair_close(&t);
    if (vm_before > 0 && peak_after > 0) {
        long limit = (vm_before > peak_before ? vm_before : peak_before) + 64 * 1024;
        print_message("VmPeak %ld kB (before %ld kB, VmSize %ld kB)\n", peak_after, peak_before,
                      vm_before);
        if (peak_after > limit)
            fail_msg("reading 10 of 256 MiB announced raised the peak address space to %ld kB",
                     peak_after);
    }
}

/* A complete small body is read exactly; bytes after it are left unread. */
static void test_body_exact(void **state)
{
    (void)state;
    static const char msg[] = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    pair t;
    memset(&t, 0, sizeof t);
    pair_open(&t);
    t.send = msg;
    t.send_len = sizeof msg - 1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_main, &t), 0);
    assert_int_equal(SSL_accept(t.s), 1);
    char head[1024];
    uint8_t *body = NULL;
    size_t blen = 0;
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(mt_atls_read_msg(t.s, head, sizeof head, 100, &body, &blen, &err), MT_OK);
    assert_int_equal(blen, 5);
    assert_string_equal((const char *)body, "hello");
    assert_string_equal(head, "POST /x HTTP/1.1\r\nContent-Length: 5");
    free(body);
    pthread_join(th, NULL);
    pair_close(&t);
}

typedef struct {
    SSL *ssl;
    int rc;
} hs_side;

static void *connect_main(void *p)
{
    hs_side *h = p;
    h->rc = SSL_connect(h->ssl);
    return NULL;
}

static mt_vcache_stats cache_stats(void)
{
    mt_vcache_stats st;
    mt_vcache_stats_get(mt_vcache_global(), &st);
    return st;
}

/* The server's socket, cut (/dev/null over it) when the client's
 * Certificate has been read: the server never reads its CertificateVerify. */
static int g_cut_fd = -1;

static void cut_after_cert(int write_p, int version, int content_type, const void *buf,
                           size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    (void)arg;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const uint8_t *)buf)[0] == SSL3_MT_CERTIFICATE && g_cut_fd >= 0) {
        int n = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (n >= 0) {
            dup2(n, g_cut_fd);
            close(n);
        }
    }
}

/* One mutually attested handshake between a server presenting scert and a
 * client presenting ccert (same key, soft evidence); 1 if both completed.
 * cut: the server stops reading after the client's Certificate. */
static int handshake(EVP_PKEY *key, X509 *scert, X509 *ccert, const mt_policy *pol, bool cut)
{
    SSL_CTX *sctx = NULL, *cctx = NULL;
    mt_err err;
    assert_int_equal(mt_atls_ctx_new(true, key, scert, pol, &sctx, &err), MT_OK);
    assert_int_equal(mt_atls_ctx_new(false, key, ccert, pol, &cctx, &err), MT_OK);
    /* both sides wipe decrypted records once read */
    assert_true(SSL_CTX_get_options(sctx) & SSL_OP_CLEANSE_PLAINTEXT);
    assert_true(SSL_CTX_get_options(cctx) & SSL_OP_CLEANSE_PLAINTEXT);
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    SSL *s = SSL_new(sctx);
    hs_side c = {.ssl = SSL_new(cctx)};
    assert_int_equal(SSL_set_fd(s, fds[0]), 1);
    assert_int_equal(SSL_set_fd(c.ssl, fds[1]), 1);
    g_cut_fd = cut ? fds[0] : -1;
    if (cut)
        SSL_set_msg_callback(s, cut_after_cert);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, connect_main, &c), 0);
    int rs = SSL_accept(s);
    if (rs != 1) {
        shutdown(fds[0], SHUT_RDWR);
        shutdown(fds[1], SHUT_RDWR); /* fds[0] may be /dev/null by now */
    }
    pthread_join(th, NULL);
    SSL_free(s);
    SSL_free(c.ssl);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    close(fds[0]);
    close(fds[1]);
    return rs == 1 && c.rc == 1;
}

/* Inside the handshake the RA-TLS certificate's self-signature is not
 * checked (MT_RATLS_PEER_PROVES_KEY: CertificateVerify proves the key), and
 * a verified peer is remembered only once the handshake is done. */
static void test_peer_proves_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/mt-test-atls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    mt_tee *tee = NULL;
    mt_err err;
    if (mt_tee_open("soft", dir, &tee, &err) != MT_OK)
        fail_msg("soft tee: %s", err.msg);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    assert_int_equal(mt_tee_tls_identity(tee, &key, &cert, &err), MT_OK);
    char m[65], pk[65], json[512];
    mt_tee_soft_ids(tee, m, pk);
    snprintf(json, sizeof json,
             "{\"mesatee_policy\": 1, \"allowed_kinds\": [\"soft\"], \"min_level\": \"soft\", "
             "\"measurements\": {\"gateway\": {\"measurement\": [\"%s\"]}}, "
             "\"soft_platform_keys\": [\"%s\"], \"max_evidence_age_s\": 600}",
             m, pk);
    mt_policy *pol = NULL;
    if (mt_policy_parse(json, strlen(json), &pol, &err) != MT_OK)
        fail_msg("policy: %s", err.msg);
    /* the same certificate with one bit of its signature flipped */
    X509 *bad = X509_dup(cert);
    assert_non_null(bad);
    const ASN1_BIT_STRING *sig = NULL;
    X509_get0_signature(&sig, NULL, bad);
    assert_true(sig && sig->length > 8);
    ((ASN1_BIT_STRING *)sig)->data[sig->length - 1] ^= 0x01;
    uint8_t *der = NULL;
    int dl = i2d_X509(bad, &der);
    assert_true(dl > 0);
    mt_attest_claims *claims = malloc(sizeof *claims);
    assert_non_null(claims);
    assert_int_equal(mt_ratls_verify_cert(der, (size_t)dl, MT_RATLS_FORM_CCC, NULL, mt_now(),
                                          claims, NULL, &err),
                     MT_EAUTH); /* checked in full: refused */
    OPENSSL_free(der);
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), 256, 600, &err), MT_OK);

    /* both sides verify each other in the handshake: it completes, and
     * each peer's certificate is remembered after it */
    mt_vcache_stats st0 = cache_stats();
    assert_true(handshake(key, bad, cert, pol, false));
    mt_vcache_stats st = cache_stats();
    assert_int_equal(st.stored - st0.stored, 2);
    assert_int_equal(st.hits - st0.hits, 0);
    assert_int_equal(st.entries, 2);
    assert_true(handshake(key, bad, cert, pol, false));
    assert_int_equal(cache_stats().hits - st0.hits, 2);

    /* a server that verified the client's certificate but never read its
     * CertificateVerify (the handshake fails there) remembers nothing of it
     * (the client, which completed its side, remembers the server's) */
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), 256, 600, &err), MT_OK);
    assert_false(handshake(key, bad, cert, pol, true));
    assert_true(cache_stats().entries <= 1);
    mt_policy_pending *pc = NULL;
    assert_int_equal(mt_policy_verify_peer(pol, cert, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY,
                                           mt_now(), claims, NULL, &pc, &err),
                     MT_OK);
    assert_non_null(pc); /* a miss: the client's certificate was not stored */
    mt_policy_pending_free(pc);

    /* a verification whose handshake never completes leaves nothing */
    assert_int_equal(mt_vcache_configure(mt_vcache_global(), 256, 600, &err), MT_OK);
    SSL_CTX *cctx = NULL;
    assert_int_equal(mt_atls_ctx_new(false, key, cert, pol, &cctx, &err), MT_OK);
    SSL *ssl = SSL_new(cctx);
    mt_policy_pending *pd = NULL;
    assert_int_equal(mt_policy_verify_peer(pol, bad, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY,
                                           mt_now(), claims, NULL, &pd, &err),
                     MT_OK);
    assert_non_null(pd);
    mt_atls_hold_pending(ssl, pd);
    mt_atls_info_cb(ssl, SSL_CB_HANDSHAKE_START, 1);
    SSL_free(ssl); /* frees the pending entry (ASan: no leak) */
    assert_int_equal(cache_stats().entries, 0);
    /* ... and one that completes stores it */
    ssl = SSL_new(cctx);
    assert_int_equal(mt_policy_verify_peer(pol, bad, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY,
                                           mt_now(), claims, NULL, &pd, &err),
                     MT_OK);
    mt_atls_hold_pending(ssl, pd);
    mt_atls_info_cb(ssl, SSL_CB_HANDSHAKE_DONE, 1);
    assert_int_equal(cache_stats().entries, 1);
    SSL_free(ssl);
    SSL_CTX_free(cctx);

    free(claims);
    X509_free(bad);
    X509_free(cert);
    EVP_PKEY_free(key);
    mt_policy_free(pol);
    mt_tee_free(tee);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_head_framing),
        cmocka_unit_test(test_body_grows_with_bytes),
        cmocka_unit_test(test_body_exact),
        cmocka_unit_test(test_peer_proves_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
