/* mt_atls: see mt_atls.h. */
#include "mt_atls.h"

#include <errno.h>

#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mt_log.h"
#include "mt_util.h"

static _Thread_local char g_refusal[MT_ERR_MSG_MAX + 96];
static int g_pol_idx = -1;
static int g_pend_idx = -1; /* SSL ex_data: the mt_policy_pending of its peer */
static int g_verdict_idx = -1; /* SSL ex_data: VERDICT_OK/_REFUSED of this handshake */
static char g_verdict_ok, g_verdict_refused; /* their addresses are the values */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void pend_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                      void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    mt_policy_pending_free(ptr);
}

/* SSL_dup: the copy holds no pending entry (one owner; nothing dups today). */
static int pend_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
                    long argl, void *argp)
{
    (void)to;
    (void)from;
    (void)idx;
    (void)argl;
    (void)argp;
    *from_d = NULL;
    return 1;
}

static void idx_init(void)
{
    g_pol_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    g_pend_idx = SSL_get_ex_new_index(0, NULL, NULL, pend_dup, pend_free);
    g_verdict_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void mt_atls_hold_pending(SSL *ssl, mt_policy_pending *pd)
{
    pthread_once(&g_once, idx_init);
    if (!ssl || g_pend_idx < 0) {
        mt_policy_pending_free(pd);
        return;
    }
    mt_policy_pending *old = SSL_get_ex_data(ssl, g_pend_idx);
    if (SSL_set_ex_data(ssl, g_pend_idx, pd) != 1) {
        mt_policy_pending_free(pd); /* not remembered: verified again next time */
        return;
    }
    if (old != pd)
        mt_policy_pending_free(old);
}

void mt_atls_info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    pthread_once(&g_once, idx_init); /* libmesatee installs it on curl's contexts */
    if (g_pend_idx >= 0)
        mt_policy_pending_commit(SSL_get_ex_data(ssl, g_pend_idx));
}

/* mt_atls_ctx_new's info callback: the above, and a new handshake forgets
 * the verdict of the last one (an SSL is never reused today). The verdict
 * is per handshake: TLS 1.3 post-handshake client authentication
 * (SSL_VERIFY_POST_HANDSHAKE) would need it reset per chain; it is not
 * used, and OpenSSL signals no HANDSHAKE_START for it. */
static void atls_info_cb(const SSL *ssl, int where, int ret)
{
    mt_atls_info_cb(ssl, where, ret);
    if ((where & SSL_CB_HANDSHAKE_START) && g_verdict_idx >= 0)
        SSL_set_ex_data((SSL *)ssl, g_verdict_idx, NULL); /* OpenSSL passes its own SSL */
}

const char *mt_atls_last_refusal(void)
{
    return g_refusal;
}

void mt_atls_clear_refusal(void)
{
    g_refusal[0] = '\0';
}

/* 1 if the peer's leaf carries evidence that verifies and satisfies pol. */
static int check_leaf(SSL *ssl, X509 *leaf, const mt_policy *pol)
{
    if (!leaf) {
        snprintf(g_refusal, sizeof g_refusal, "the peer presents no certificate");
        return 0;
    }
    mt_attest_claims *claims = malloc(sizeof *claims);
    mt_policy_pending *pend = NULL;
    mt_err err;
    mt_err_clear(&err);
    int64_t now = mt_now();
    int ok = 0;
    mt_status st = MT_OK;
    if (!claims)
        snprintf(g_refusal, sizeof g_refusal, "out of memory");
    /* verified first: a peer seen before is not parsed again (mt_vcache.h);
     * in the handshake (TLS 1.3 only), whose CertificateVerify proves the
     * peer holds the key: no self-signature check (MT_RATLS_PEER_PROVES_KEY) */
    else if ((st = mt_policy_verify_peer(pol, leaf, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY,
                                         now, claims, NULL, &pend, &err)) ==
             MT_ENOTFOUND)
        snprintf(g_refusal, sizeof g_refusal, "the peer presents no attestation evidence");
    else if (st == MT_EPERM)
        snprintf(g_refusal, sizeof g_refusal, "the peer is refused by the %s policy: %s",
                 mt_policy_role(pol), err.msg);
    else if (st != MT_OK)
        snprintf(g_refusal, sizeof g_refusal, "the peer's evidence does not verify: %s", err.msg);
    else
        ok = 1;
    /* remembered in the verified-peer cache only once the handshake is
     * done (mt_atls_info_cb): a peer without the key adds nothing */
    mt_atls_hold_pending(ssl, ok ? pend : NULL);
    if (!ok)
        mt_policy_pending_free(pend);
    free(claims);
    return ok;
}

static int verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
    (void)preverify_ok; /* self-signed: trust comes from the evidence */
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    const mt_policy *pol = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_pol_idx) : NULL;
    if (!pol)
        return 0;
    if (X509_STORE_CTX_get_error_depth(xs) > 0) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1; /* the leaf carries the evidence */
    }
    /* OpenSSL calls back more than once for the leaf (each chain error,
     * then the final call): it is verified once per handshake, as the
     * verified-peer cache holds it only once the handshake is done. */
    void *v = SSL_get_ex_data(ssl, g_verdict_idx);
    int ok = v == &g_verdict_ok       ? 1
             : v == &g_verdict_refused ? 0
                                       : check_leaf(ssl, X509_STORE_CTX_get_current_cert(xs), pol);
    if (!v)
        SSL_set_ex_data(ssl, g_verdict_idx, ok ? &g_verdict_ok : &g_verdict_refused);
    if (ok)
        X509_STORE_CTX_set_error(xs, X509_V_OK);
    return ok;
}

mt_status mt_atls_ctx_new(bool server, EVP_PKEY *key, X509 *cert, const mt_policy *policy,
                          SSL_CTX **out, mt_err *err)
{
    *out = NULL;
    if (!key || !cert || !policy)
        return mt_err_set(err, MT_EINVAL, "attested TLS needs a key, a certificate and a policy");
    pthread_once(&g_once, idx_init);
    g_refusal[0] = '\0';
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx || g_pol_idx < 0 || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 ||
        SSL_CTX_set_ex_data(ctx, g_pol_idx, (void *)policy) != 1) {
        SSL_CTX_free(ctx);
        return mt_err_set(err, MT_EINTERNAL, "cannot set up the attested TLS context");
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* decrypted records are wiped once read, and the read buffer when freed */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CLEANSE_PLAINTEXT);
    if (server)
        SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_verify(ctx,
                       SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       verify_cb);
    SSL_CTX_set_info_callback(ctx, atls_info_cb);
    *out = ctx;
    return MT_OK;
}

mt_status mt_atls_write(SSL *ssl, const void *data, size_t len, mt_err *err)
{
    const uint8_t *p = data;
    while (len) {
        int chunk = len > (1u << 20) ? 1 << 20 : (int)len;
        int n = SSL_write(ssl, p, chunk);
        if (n <= 0)
            return mt_err_set(err, MT_EIO, "TLS write failed");
        p += n;
        len -= (size_t)n;
    }
    return MT_OK;
}

mt_status mt_atls_parse_head(const char *head, size_t max_body, size_t *content_length,
                             mt_err *err)
{
    *content_length = 0;
    bool seen = false;
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        /* one framing only: a second length or a transfer coding could make
         * the two ends disagree about where the body ends */
        if (!strncasecmp(line + 2, "transfer-encoding:", 18))
            return mt_err_set(err, MT_EINVAL, "Transfer-Encoding is not supported");
        if (!strncasecmp(line + 2, "content-length:", 15)) {
            if (seen)
                return mt_err_set(err, MT_EINVAL, "more than one Content-Length");
            seen = true;
            const char *v = line + 17;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v < '0' || *v > '9')
                return mt_err_set(err, MT_EINVAL, "bad Content-Length");
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || (*end && *end != '\r'))
                return mt_err_set(err, MT_EINVAL, "bad Content-Length");
            if (n > max_body)
                return mt_err_set(err, MT_ETOOBIG, "body larger than %zu bytes", max_body);
            *content_length = (size_t)n;
        }
    }
    return MT_OK;
}

mt_status mt_atls_read_head(SSL *ssl, char *head, size_t head_cap, size_t max_body,
                            size_t *content_length, mt_err *err)
{
    *content_length = 0;
    size_t h = 0;
    /* byte by byte up to the blank line: heads are small */
    for (;;) {
        if (h + 1 >= head_cap)
            return mt_err_set(err, MT_ETOOBIG, "message head too large");
        int n = SSL_read(ssl, head + h, 1);
        if (n <= 0)
            return mt_err_set(err, MT_EIO, "connection closed while reading");
        h++;
        if (h >= 4 && !memcmp(head + h - 4, "\r\n\r\n", 4))
            break;
    }
    head[h - 4] = '\0';
    return mt_atls_parse_head(head, max_body, content_length, err);
}

/* First allocation of a body buffer; it doubles as bytes arrive. */
#define ATLS_BODY_CHUNK ((size_t)1 << 16)

mt_status mt_atls_read_body(SSL *ssl, size_t len, uint8_t **body, mt_err *err)
{
    *body = NULL;
    if (!len)
        return MT_OK;
    /* Grown as bytes arrive, never beyond len: a peer that announces a large
     * body and sends little holds only what it sent. */
    size_t cap = len < ATLS_BODY_CHUNK ? len : ATLS_BODY_CHUNK;
    uint8_t *b = malloc(cap + 1);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t got = 0;
    while (got < len) {
        if (got == cap) {
            size_t ncap = cap > len / 2 ? len : cap * 2;
            uint8_t *nb = realloc(b, ncap + 1);
            if (!nb) {
                free(b);
                return mt_err_set(err, MT_ENOMEM, "out of memory");
            }
            b = nb;
            cap = ncap;
        }
        size_t room = cap - got;
        int want = room > (1u << 20) ? 1 << 20 : (int)room;
        int n = SSL_read(ssl, b + got, want);
        if (n <= 0) {
            free(b);
            return mt_err_set(err, MT_EIO, "connection closed while reading the body");
        }
        got += (size_t)n;
    }
    b[len] = '\0';
    *body = b;
    return MT_OK;
}

mt_status mt_atls_read_msg(SSL *ssl, char *head, size_t head_cap, size_t max_body,
                           uint8_t **body, size_t *body_len, mt_err *err)
{
    *body = NULL;
    *body_len = 0;
    size_t clen = 0;
    mt_status st = mt_atls_read_head(ssl, head, head_cap, max_body, &clen, err);
    if (st == MT_OK && (st = mt_atls_read_body(ssl, clen, body, err)) == MT_OK)
        *body_len = clen;
    return st;
}
