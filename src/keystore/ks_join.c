/* ks_join: see mt_ks_join.h. */
#include "mt_ks_join.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ks_internal.h"
#include "mt_atls.h"
#include "mt_dbcert.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_resolve.h"
#include "mt_util.h"

#define JOIN_PATH "/v1/keystore/join"
#define IO_TIMEOUT_S 10
#define CONNECT_TIMEOUT_MS 5000 /* a client's connect(), each address */
#define RESOLVE_TIMEOUT_MS 5000 /* a client's name resolution (mt_resolve_bounded) */
#define CONN_DEADLINE_S 20 /* a whole join, however slowly the peer sends */
#define MAX_CONNS 8        /* served at once; more are closed at accept */

_Static_assert(MT_KS_JOIN_PLATFORM == KS_JOIN_PLATFORM_LEN, "platform key block size");

/* A peer that closes mid-write must not kill the process (TLS writes go
 * through write(2)); as the gateway and the executor do. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* ---- messages ----------------------------------------------------------- */

mt_status mt_ks_join_make_answer(mt_keystore *ks, const uint8_t platform[MT_KS_JOIN_PLATFORM],
                                 const uint8_t *cert, size_t cert_len, char **resp,
                                 size_t *resp_len, mt_err *err)
{
    uint8_t *rec = NULL, *plain = NULL;
    size_t rl = 0;
    uint32_t cur = 0;
    char level[16];
    mt_status rc = ks_export_roots(ks, &rec, &rl, &cur, level, err);
    if (rc)
        return rc;
    if (!(plain = malloc(MT_KS_JOIN_PLATFORM + rl))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    } else {
        memcpy(plain, platform, MT_KS_JOIN_PLATFORM);
        memcpy(plain + MT_KS_JOIN_PLATFORM, rec, rl);
        rc = ks_msg_encrypt(&ks_msg_join, cert, cert_len, cur, plain, MT_KS_JOIN_PLATFORM + rl,
                            resp, resp_len, err);
        mt_wipe(plain, MT_KS_JOIN_PLATFORM + rl);
    }
    free(plain);
    mt_wipe(rec, rl);
    free(rec);
    return rc;
}

mt_status mt_ks_join_parse_answer(EVP_PKEY *priv, const uint8_t *cert, size_t cert_len,
                                  const char *resp, size_t len,
                                  uint8_t platform[MT_KS_JOIN_PLATFORM], mt_keyring **kr,
                                  mt_err *err)
{
    *kr = NULL;
    uint8_t *plain = NULL;
    size_t pl = 0;
    uint32_t cur = 0;
    mt_status rc =
        ks_msg_decrypt(&ks_msg_join, priv, cert, cert_len, resp, len, &plain, &pl, &cur, err);
    if (rc)
        return rc;
    if (pl < MT_KS_JOIN_PLATFORM) /* ks_msg_decrypt checked it; kept local */
        rc = mt_err_set(err, MT_EINVAL, "KeyStore join answer: too short");
    if (!rc)
        rc = ks_keyring_from_records(plain + MT_KS_JOIN_PLATFORM, pl - MT_KS_JOIN_PLATFORM, cur,
                                     kr, err);
    if (!rc)
        memcpy(platform, plain, MT_KS_JOIN_PLATFORM);
    mt_wipe(plain, pl);
    free(plain);
    return rc;
}

mt_status mt_ks_join_answer_db_cert(const char *resp, size_t len, char **pem, mt_err *err)
{
    *pem = NULL;
    json_t *doc = mt_json_parse(resp, len, MT_KEYSTORE_MSG_MAX, 4, err);
    if (!doc)
        return mt_err_prefix(err, MT_EINVAL, "KeyStore join answer: ");
    const char *c = NULL;
    mt_status rc = mt_json_str_opt(doc, "db_cert", MT_KS_JOIN_DBCERT_MAX, &c, NULL, err);
    if (!rc && c && strncmp(c, "-----BEGIN CERTIFICATE-----", 27) != 0)
        rc = mt_err_set(err, MT_EINVAL, "field 'db_cert': not a PEM certificate");
    if (!rc && c && !(*pem = strdup(c)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    json_decref(doc);
    if (rc)
        mt_err_prefix(err, rc, "KeyStore join answer: ");
    return rc;
}

/* Adds "db_cert" to an answer (*resp replaced). */
static mt_status add_db_cert(char **resp, size_t *resp_len, const char *pem, mt_err *err)
{
    json_t *doc = json_loadb(*resp, *resp_len, 0, NULL);
    char *out = NULL;
    if (doc && json_object_set_new(doc, "db_cert", json_string(pem)) == 0)
        out = mt_json_dump(doc);
    json_decref(doc);
    if (!out)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_wipe(*resp, *resp_len);
    free(*resp);
    *resp = out;
    *resp_len = strlen(out);
    return MT_OK;
}

/* "https://HOST:PORT" for the option flag (named in the messages). */
static mt_status parse_url_flag(const char *url, const char *flag, char host[256], char port[8],
                                mt_err *err)
{
    static const char pre[] = "https://";
    if (!url || strncmp(url, pre, sizeof pre - 1) != 0)
        return mt_err_set(err, MT_EINVAL, "%s: expected https://HOST:PORT", flag);
    const char *h = url + sizeof pre - 1, *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end || end == h + 1 || end[1] != ':')
            return mt_err_set(err, MT_EINVAL, "%s: bad [IPv6] host", flag);
        h++;
    } else {
        end = strchr(h, ':');
        if (!end || end == h)
            return mt_err_set(err, MT_EINVAL, "%s: expected https://HOST:PORT", flag);
    }
    size_t hl = (size_t)(end - h);
    if (hl > 253)
        return mt_err_set(err, MT_EINVAL, "%s: host name too long", flag);
    for (size_t i = 0; i < hl; i++) {
        char ch = h[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':';
        if (!ok)
            return mt_err_set(err, MT_EINVAL, "%s: bad character in the host", flag);
    }
    const char *p = end + (*end == ']' ? 2 : 1);
    unsigned long v = 0;
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < 6)
        v = v * 10 + (unsigned long)(p[n++] - '0');
    if (n == 0 || n > 5 || v == 0 || v > 65535 || (p[n] && strcmp(p + n, "/") != 0))
        return mt_err_set(err, MT_EINVAL,
                          "%s: expected a port 1..65535 after the host and nothing else", flag);
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, 8, "%lu", v);
    return MT_OK;
}

mt_status mt_ks_join_parse_url(const char *url, char host[256], char port[8], mt_err *err)
{
    return parse_url_flag(url, "--keystore-join", host, port, err);
}

mt_status mt_ks_join_check_advertise(const char *url, mt_err *err)
{
    char h[256], p[8];
    if (url && strlen(url) >= 300)
        return mt_err_set(err, MT_EINVAL, "--keystore-advertise: URL too long");
    return parse_url_flag(url, "--keystore-advertise", h, p, err);
}

/* The URL joining nodes are told (keystore.url): advertise (validated),
 * else https://HOST:PORT of the listen address when its host is not a
 * wildcard, else https://127.0.0.1:PORT. */
static mt_status join_url(const char *listen, const char *advertise, unsigned port,
                          char out[300], mt_err *err)
{
    char h[256], p[8];
    if (advertise) {
        if (strlen(advertise) >= 300)
            return mt_err_set(err, MT_EINVAL, "--keystore-advertise: URL too long");
        mt_status rc = parse_url_flag(advertise, "--keystore-advertise", h, p, err);
        if (rc)
            return rc;
        size_t n = strlen(advertise);
        snprintf(out, 300, "%.*s", (int)(n && advertise[n - 1] == '/' ? n - 1 : n), advertise);
        return MT_OK;
    }
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    const char *host = listen;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    bool wild = hl == 0 || hl >= sizeof h || (hl == 7 && !strncmp(host, "0.0.0.0", 7)) ||
                (hl == 2 && !strncmp(host, "::", 2)) || (hl == 1 && host[0] == '*');
    if (wild) {
        snprintf(out, 300, "https://127.0.0.1:%u", port);
        return MT_OK;
    }
    memcpy(h, host, hl);
    h[hl] = '\0';
    snprintf(out, 300, strchr(h, ':') ? "https://[%s]:%u" : "https://%s:%u", h, port);
    return parse_url_flag(out, "--keystore-listen", h, p, err); /* a name joiners can use */
}

/* ---- server ------------------------------------------------------------- */

struct mt_ks_join_server {
    int fd;
    SSL_CTX *ctx;
    mt_keystore *ks;
    uint8_t platform[MT_KS_JOIN_PLATFORM];
    pthread_t th;
    bool th_on;
    atomic_bool stop;
    pthread_mutex_t mu; /* guards conns and active */
    pthread_cond_t idle;
    struct {
        int fd; /* -1: free */
        time_t deadline;
    } conns[MAX_CONNS];
    unsigned active;
    mt_ks_join_audit_fn audit;
    void *audit_ctx;
    const mt_dbcert_ca *ca;
    char role[MT_DBCERT_ROLE_MAX + 1];
    uint32_t ttl_s;
    mt_ks_join_dbcert_fn db_fn;
    char url[300]; /* what keystore.url says */
};

void mt_ks_join_server_set_db_ca(mt_ks_join_server *s, const mt_dbcert_ca *ca, const char *role,
                                 uint32_t ttl_s, mt_ks_join_dbcert_fn db_fn)
{
    s->ca = ca;
    snprintf(s->role, sizeof s->role, "%s", role ? role : "mesatee");
    s->ttl_s = ttl_s;
    s->db_fn = db_fn;
}

void mt_ks_join_server_set_audit(mt_ks_join_server *s, mt_ks_join_audit_fn fn, void *ctx)
{
    s->audit = fn;
    s->audit_ctx = ctx;
}

/* The client certificate is decided on after the handshake, by the
 * KeyStore's release policy (see the header); here: present and a proof of
 * possession (TLS 1.3 CertificateVerify). */
static int accept_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static int bind_listen(const char *addr, unsigned *port, mt_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1])
        return mt_err_set(err, MT_EINVAL, "--keystore-listen: expected HOST:PORT"), -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    /* AI_ADDRCONFIG as the gateway's --listen (gateway.c gw_bind): one name
     * gives every listener the same address */
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;
    /* bounded as a join's resolution: a DNS server that does not answer
     * makes the start fail with a reason instead of hanging it */
    int e = mt_resolve_bounded(host, colon + 1, &hints, RESOLVE_TIMEOUT_MS, NULL, NULL, &ai);
    if (e || !ai) {
        if (ai)
            freeaddrinfo(ai);
        return mt_err_set(err, MT_EINVAL, "--keystore-listen: cannot resolve %s%s", addr,
                          e == ETIMEDOUT ? ": no answer within 5000 ms" : ""),
               -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
        int e = errno;
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return mt_err_set(err, MT_EIO, "--keystore-listen %s: %s", addr, strerror(e)), -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *port = 0;
    if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void reply(SSL *ssl, int status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : status == 403 ? "Forbidden" : "Bad Request",
                     type, len);
    mt_err e;
    if (n > 0 && (size_t)n < sizeof head && !mt_atls_write(ssl, head, (size_t)n, &e) && len)
        (void)mt_atls_write(ssl, body, len, &e);
}

static void release_slot(mt_ks_join_server *s, int fd);

static void serve_conn(mt_ks_join_server *s, int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(s->ctx);
    char head[2048], meas[MT_KEYSTORE_MEAS_HEX + 1] = "";
    uint8_t *body = NULL, *der = NULL, *peer = NULL;
    size_t bl = 0, dl = 0;
    int pl = 0;
    char *resp = NULL;
    size_t rl = 0;
    mt_err err;
    mt_err_clear(&err);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
        mt_warn("KeyStore join: TLS handshake failed (a peer without a client certificate or "
                "not TLS 1.3)");
        goto out;
    }
    X509 *pc = SSL_get0_peer_certificate(ssl);
    if (!pc || (pl = i2d_X509(pc, &peer)) <= 0)
        goto out;
    mt_status rc = mt_atls_read_msg(ssl, head, sizeof head, MT_KEYSTORE_MSG_MAX, &body, &bl, &err);
    if (rc || strncmp(head, "POST " JOIN_PATH " ", sizeof "POST " JOIN_PATH) != 0) {
        static const char m[] = "expected POST " JOIN_PATH " with a KeyStore release request\n";
        reply(ssl, 400, "text/plain", m, sizeof m - 1);
        mt_warn("KeyStore join: malformed request refused");
        goto out;
    }
    rc = ks_attest_request(s->ks, (const char *)body, bl, &der, &dl, meas, &err);
    if (rc == MT_EINVAL) {
        static const char m[] = "malformed KeyStore release request\n";
        reply(ssl, 400, "text/plain", m, sizeof m - 1);
        mt_warn("KeyStore join: malformed release request refused");
        goto out;
    }
    if (!rc && (dl != (size_t)pl || memcmp(der, peer, dl) != 0)) {
        static const char m[] =
            "the release request's evidence is not the TLS client certificate\n";
        reply(ssl, 403, "text/plain", m, sizeof m - 1);
        mt_warn("KeyStore join refused: the request's evidence is not the TLS client certificate");
        goto out;
    }
    if (rc && s->audit)
        (void)s->audit(s->audit_ctx, false, meas); /* a refusal: nothing to withhold */
    if (rc) {
        char m[512];
        int n = snprintf(m, sizeof m,
                         "refused by the KeyStore release policy: this node's measurement is %s; "
                         "on the KeyStore node allow it (`mesatee admin release allow "
                         "MEASUREMENT`) and, at level soft or tpm2, this node's platform key or "
                         "AK (`--kind soft_platform_key` / `--kind tpm2_ak`, printed in its log)\n",
                         meas[0] ? meas : "(none)");
        reply(ssl, 403, "text/plain", m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1);
        mt_warn("KeyStore join refused by the release policy: peer measurement %s (%s)",
                meas[0] ? meas : "(none)", mt_status_name(rc));
        goto out;
    }
    if ((rc = mt_ks_join_make_answer(s->ks, s->platform, der, dl, &resp, &rl, &err))) {
        static const char m[] = "the KeyStore could not build the answer (see its log)\n";
        reply(ssl, 400, "text/plain", m, sizeof m - 1);
        mt_error("KeyStore join: %s", err.msg);
        goto out;
    }
    if (s->ca) { /* database credentials after attestation (mt_dbcert.h) */
        char *pem = NULL;
        rc = mt_keystore_db_cert(s->ks, s->ca, (const char *)body, bl, s->role, s->ttl_s, &pem,
                                 NULL, &err);
        if (!rc)
            rc = add_db_cert(&resp, &rl, pem, &err);
        free(pem);
        if (s->db_fn)
            s->db_fn(s->audit_ctx, rc == MT_OK, meas);
        if (rc) {
            static const char m[] = "the KeyStore could not issue the database certificate "
                                    "(see its log)\n";
            reply(ssl, 400, "text/plain", m, sizeof m - 1);
            mt_error("KeyStore join: database certificate: %s", err.msg);
            goto out;
        }
    }
    if (s->audit && !s->audit(s->audit_ctx, true, meas)) {
        /* no release without its audit entry (docs/design.md "Audit spool") */
        static const char m[] = "the KeyStore could not record this release in the audit log "
                                "(see its log); nothing was released, retry later\n";
        reply(ssl, 503, "text/plain", m, sizeof m - 1);
        mt_error("KeyStore join: release to measurement %s not made: its audit entry could not "
                 "be recorded",
                 meas[0] ? meas : "(none)");
        goto out;
    }
    reply(ssl, 200, "application/json", resp, rl);
    mt_info("KeyStore join: released the root keys and the shared platform keys to a node with "
            "measurement %s",
            meas[0] ? meas : "(none)");
    SSL_shutdown(ssl);
out:
    if (resp)
        mt_wipe(resp, rl);
    free(resp);
    free(body);
    free(der);
    OPENSSL_free(peer);
    SSL_free(ssl);
    release_slot(s, fd);
}

/* The slot of fd freed before fd is closed, so the watchdog never shuts a
 * reused descriptor down. */
static void release_slot(mt_ks_join_server *s, int fd)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd == fd)
            s->conns[i].fd = -1;
    close(fd);
    s->active--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

typedef struct conn_arg {
    mt_ks_join_server *s;
    int fd;
} conn_arg;

static void *conn_main(void *p)
{
    conn_arg a = *(conn_arg *)p;
    free(p);
    serve_conn(a.s, a.fd);
    return NULL;
}

/* Cuts connections past their deadline (all of them when stopping). */
static void watchdog(mt_ks_join_server *s, bool all)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd >= 0 && (all || now > s->conns[i].deadline))
            shutdown(s->conns[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
}

/* A thread for the connection c, or c closed when MAX_CONNS are served. */
static void start_conn(mt_ks_join_server *s, int c)
{
    conn_arg *a = malloc(sizeof *a);
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < MAX_CONNS && s->conns[i].fd >= 0)
        i++;
    pthread_t th;
    pthread_attr_t attr;
    bool ok = a && i < MAX_CONNS && pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        a->s = s;
        a->fd = c;
        s->conns[i].fd = c;
        s->conns[i].deadline = time(NULL) + CONN_DEADLINE_S;
        s->active++;
        if (pthread_create(&th, &attr, conn_main, a) != 0) {
            s->conns[i].fd = -1;
            s->active--;
            ok = false;
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        free(a);
        close(c);
        mt_warn("KeyStore join: connection refused (%d joins in progress)", MAX_CONNS);
    }
}

static void *server_main(void *p)
{
    mt_ks_join_server *s = p;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        watchdog(s, false);
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0)
            start_conn(s, c);
    }
    return NULL;
}

mt_status mt_ks_join_server_start(const char *listen, const char *advertise, mt_tee *tee,
                                  mt_keystore *ks, const uint8_t platform[MT_KS_JOIN_PLATFORM],
                                  const char *data_dir, mt_ks_join_server **out, mt_err *err)
{
    *out = NULL;
    if (!listen || !tee || !ks || !platform || !data_dir)
        return mt_err_set(err, MT_EINVAL, "mt_ks_join_server_start: NULL argument");
    mt_ks_join_server *s = calloc(1, sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    ignore_sigpipe();
    s->fd = -1;
    s->ks = ks;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    for (size_t i = 0; i < MAX_CONNS; i++)
        s->conns[i].fd = -1;
    memcpy(s->platform, platform, MT_KS_JOIN_PLATFORM);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    unsigned port = 0;
    char h[256], p[8];
    /* a bad --keystore-advertise is refused before anything listens */
    mt_status rc = advertise ? parse_url_flag(advertise, "--keystore-advertise", h, p, err) : MT_OK;
    if (!rc)
        rc = mt_tee_tls_identity(tee, &key, &cert, err);
    if (!rc) {
        s->ctx = SSL_CTX_new(TLS_server_method());
        if (!s->ctx || SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_use_certificate(s->ctx, cert) != 1 || SSL_CTX_use_PrivateKey(s->ctx, key) != 1)
            rc = mt_err_set(err, MT_EINTERNAL, "KeyStore join: cannot set up TLS");
        else {
            SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                               accept_any);
            SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_num_tickets(s->ctx, 0);
            SSL_CTX_set_options(s->ctx, SSL_OP_CLEANSE_PLAINTEXT); /* wrapped keys */
        }
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    if (!rc && (s->fd = bind_listen(listen, &port, err)) < 0)
        rc = err->code ? err->code : MT_EIO;
    if (!rc)
        rc = join_url(listen, advertise, port, s->url, err);
    if (!rc) {
        char path[4096], line[304];
        snprintf(path, sizeof path, "%s/%s", data_dir, MT_KS_JOIN_URL_FILE);
        snprintf(line, sizeof line, "%s\n", s->url);
        rc = mt_file_write_atomic(path, line, strlen(line), 0644, err);
    }
    if (!rc && pthread_create(&s->th, NULL, server_main, s) != 0)
        rc = mt_err_set(err, MT_EINTERNAL, "cannot start the KeyStore join listener");
    if (rc) {
        mt_ks_join_server_stop(s);
        return rc;
    }
    s->th_on = true;
    mt_info("KeyStore join listener (attested TLS, the release policy decides) on port %u; "
            "joining nodes use %s (%s)",
            port, s->url, MT_KS_JOIN_URL_FILE);
    *out = s;
    return MT_OK;
}

const char *mt_ks_join_server_url(const mt_ks_join_server *s)
{
    return s->url;
}

uint64_t mt_ks_join_server_tls_options(const mt_ks_join_server *s)
{
    return s && s->ctx ? SSL_CTX_get_options(s->ctx) : 0;
}

void mt_ks_join_server_stop(mt_ks_join_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    if (s->th_on)
        pthread_join(s->th, NULL);
    /* cut the joins in progress and wait for their threads */
    watchdog(s, true);
    pthread_mutex_lock(&s->mu);
    while (s->active)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    if (s->fd >= 0)
        close(s->fd);
    SSL_CTX_free(s->ctx);
    mt_wipe(s->platform, sizeof s->platform);
    free(s);
}

/* ---- client ------------------------------------------------------------- */

struct mt_ks_joined {
    mt_tee *tee;
    const mt_policy *policy;
    char url[300], host[256], port[8];
    uint8_t platform[MT_KS_JOIN_PLATFORM];
    bool have_platform;
    mt_keyring *kr;
    pthread_mutex_t mu; /* serialises joins (refresh, renewal) and guards db_cert */
    char *db_cert;      /* PEM of the last certificate (first join or renewal), or NULL */
    EVP_PKEY *key;      /* the first join's identity key (what db_cert certifies) */
    /* mt_ks_join_cancel: never under mu (a join holds mu throughout) */
    pthread_mutex_t io_mu;
    int io_fd;     /* the socket of the join in flight, -1 when none */
    bool canceled; /* every join from now on fails at once */
    bool expired;  /* the join in flight ran past its deadline (join_watch) */
    uint32_t deadline_ms; /* a whole join (mt_ks_join_open) */
};

/* The error of a join stopped by mt_ks_join_cancel or by its deadline. */
static mt_status canceled_err(mt_ks_joined *j, mt_err *err)
{
    pthread_mutex_lock(&j->io_mu);
    bool expired = j->expired && !j->canceled;
    pthread_mutex_unlock(&j->io_mu);
    if (expired)
        return mt_err_set(err, MT_EIO,
                          "KeyStore join with %s: not done within %u ms (--keystore-join-"
                          "timeout-s): the KeyStore node answers too slowly",
                          j->url, j->deadline_ms);
    return mt_err_set(err, MT_EIO, "KeyStore join with %s: canceled (this node is stopping)",
                      j->url);
}

/* The join in flight's socket, for mt_ks_join_cancel; false when canceled. */
static bool io_set(mt_ks_joined *j, int fd)
{
    pthread_mutex_lock(&j->io_mu);
    bool ok = !j->canceled && !j->expired;
    j->io_fd = ok ? fd : -1;
    pthread_mutex_unlock(&j->io_mu);
    return ok;
}

/* Closes the join's socket (forgotten first: a cancel never shuts down a
 * descriptor number reused meanwhile). */
static void io_close(mt_ks_joined *j, int fd)
{
    if (fd < 0)
        return;
    pthread_mutex_lock(&j->io_mu);
    if (j->io_fd == fd)
        j->io_fd = -1;
    pthread_mutex_unlock(&j->io_mu);
    close(fd);
}

/* Canceled, or the join in flight is past its deadline. */
static bool is_canceled(mt_ks_joined *j)
{
    pthread_mutex_lock(&j->io_mu);
    bool c = j->canceled || j->expired;
    pthread_mutex_unlock(&j->io_mu);
    return c;
}

static bool join_canceled(void *j)
{
    return is_canceled(j);
}

void mt_ks_join_cancel(mt_ks_joined *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->io_mu);
    j->canceled = true;
    if (j->io_fd >= 0)
        shutdown(j->io_fd, SHUT_RDWR); /* a blocked read/write/handshake returns */
    pthread_mutex_unlock(&j->io_mu);
}

/* The deadline of one whole join: a thread that waits for the join to end
 * or for deadline_ms to pass; past it, the join is marked expired and its
 * socket shut down, as mt_ks_join_cancel does (a step in progress fails at
 * once; a resolution or connect in progress gives up within 100 ms; every
 * later step of this join fails). So a KeyStore node that answers each step
 * just within its own bound (a byte every few seconds) cannot hold a join,
 * and a renewal or a node's start behind it, for longer. */
typedef struct join_watch {
    mt_ks_joined *j;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool done;         /* under mu */
    struct timespec at;
    pthread_t th;
    bool running;
} join_watch;

static void *watch_main(void *p)
{
    join_watch *w = p;
    pthread_mutex_lock(&w->mu);
    while (!w->done && pthread_cond_timedwait(&w->cv, &w->mu, &w->at) != ETIMEDOUT)
        ;
    bool expired = !w->done;
    pthread_mutex_unlock(&w->mu);
    if (expired) {
        mt_ks_joined *j = w->j;
        pthread_mutex_lock(&j->io_mu);
        j->expired = true;
        if (j->io_fd >= 0)
            shutdown(j->io_fd, SHUT_RDWR); /* a blocked read/write/handshake returns */
        pthread_mutex_unlock(&j->io_mu);
    }
    return NULL;
}

/* Starts the deadline of a join (the previous join's expiry forgotten).
 * MT_EINTERNAL when its thread cannot start (the join is not made
 * unbounded). */
static mt_status watch_start(join_watch *w, mt_ks_joined *j, mt_err *err)
{
    memset(w, 0, sizeof *w);
    w->j = j;
    pthread_mutex_lock(&j->io_mu);
    j->expired = false;
    pthread_mutex_unlock(&j->io_mu);
    clock_gettime(CLOCK_MONOTONIC, &w->at);
    uint64_t ns = (uint64_t)w->at.tv_nsec + (uint64_t)j->deadline_ms * 1000000u;
    w->at.tv_sec += (time_t)(ns / 1000000000u);
    w->at.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->running = pthread_create(&w->th, NULL, watch_main, w) == 0;
    if (!w->running) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        return mt_err_set(err, MT_EINTERNAL, "KeyStore join: cannot start its deadline thread");
    }
    return MT_OK;
}

static void watch_stop(join_watch *w)
{
    if (!w->running)
        return;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    w->running = false;
}

/* Connects to the KeyStore node: each address of its host in turn, each
 * within CONNECT_TIMEOUT_MS; the socket is registered for
 * mt_ks_join_cancel (io_close closes it). */
static mt_status connect_to(mt_ks_joined *j, int *fdp, mt_err *err)
{
    *fdp = -1;
    if (is_canceled(j))
        return canceled_err(j, err);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai0 = NULL;
    /* bounded and cancellable: a numeric address at once, a name within
     * RESOLVE_TIMEOUT_MS (a resolver that does not answer no longer holds
     * a renewal, or the node's stop, for its own timeouts) */
    int e =
        mt_resolve_bounded(j->host, j->port, &hints, RESOLVE_TIMEOUT_MS, join_canceled, j, &ai0);
    if (e == ECANCELED)
        return canceled_err(j, err);
    if (e == ETIMEDOUT)
        return mt_err_set(err, MT_EIO, "KeyStore join: cannot resolve %s: no answer within %d ms",
                          j->host, RESOLVE_TIMEOUT_MS);
    if (e || !ai0) {
        if (ai0)
            freeaddrinfo(ai0);
        return mt_err_set(err, MT_EIO, "KeyStore join: cannot resolve %s", j->host);
    }
    int fd = -1;
    for (const struct addrinfo *ai = ai0; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (!io_set(j, fd)) {
            e = ECANCELED;
        } else if (!(e = mt_connect_bounded(fd, ai, CONNECT_TIMEOUT_MS, join_canceled, j))) {
            break;
        }
        io_close(j, fd);
        fd = -1;
        if (e == ECANCELED)
            break;
    }
    freeaddrinfo(ai0);
    if (fd < 0) {
        if (e == ECANCELED)
            return canceled_err(j, err);
        if (e == ETIMEDOUT)
            return mt_err_set(err, MT_EIO,
                              "KeyStore join: cannot connect to %s: no connection within %d ms",
                              j->url, CONNECT_TIMEOUT_MS);
        return mt_err_set(err, MT_EIO, "KeyStore join: cannot connect to %s: %s", j->url,
                          strerror(e));
    }
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    *fdp = fd;
    return MT_OK;
}

/* One join: *kr and platform from a fresh attested identity, or, with
 * reuse, from fresh evidence for that key (a database certificate renewal:
 * the certified key stays). db_cert (may be NULL): the answer's "db_cert"
 * (heap, NULL when absent). first: the first join keeps its key in j->key
 * when the answer has a database certificate. */
static mt_status join_steps(mt_ks_joined *j, uint8_t platform[MT_KS_JOIN_PLATFORM],
                            mt_keyring **kr, bool first, EVP_PKEY *reuse, char **db_cert,
                            mt_err *err);

/* One join within j->deadline_ms (join_watch): join_steps' results, or
 * MT_EIO "not done within ..." when the deadline stopped it. */
static mt_status join_once(mt_ks_joined *j, uint8_t platform[MT_KS_JOIN_PLATFORM],
                           mt_keyring **kr, bool first, EVP_PKEY *reuse, char **db_cert,
                           mt_err *err)
{
    join_watch w;
    mt_status rc = watch_start(&w, j, err);
    if (!rc)
        rc = join_steps(j, platform, kr, first, reuse, db_cert, err);
    watch_stop(&w);
    pthread_mutex_lock(&j->io_mu);
    bool expired = j->expired && !j->canceled;
    pthread_mutex_unlock(&j->io_mu);
    if (rc && expired) /* whatever step it stopped: the deadline is the reason */
        rc = canceled_err(j, err);
    if (!rc && expired) { /* done just as it passed: the answer is whole and checked */
        pthread_mutex_lock(&j->io_mu);
        j->expired = false;
        pthread_mutex_unlock(&j->io_mu);
    }
    return rc;
}

static mt_status join_steps(mt_ks_joined *j, uint8_t platform[MT_KS_JOIN_PLATFORM],
                            mt_keyring **kr, bool first, EVP_PKEY *reuse, char **db_cert,
                            mt_err *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    uint8_t *der = NULL, *resp = NULL;
    char *b = NULL, *req = NULL, head[2048];
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1, dl = 0, status = 0;
    size_t resp_len = 0;
    mt_status rc;
    if (reuse) {
        rc = EVP_PKEY_up_ref(reuse) == 1
                 ? MT_OK
                 : mt_err_set(err, MT_EINTERNAL, "cannot reference the database key");
        if (!rc)
            key = reuse;
        if (!rc)
            rc = mt_tee_tls_identity_for_key(j->tee, key, &cert, err);
    } else {
        rc = mt_tee_tls_identity(j->tee, &key, &cert, err);
    }
    if (!rc && (dl = i2d_X509(cert, &der)) <= 0)
        rc = mt_err_set(err, MT_EINTERNAL, "cannot encode the evidence certificate");
    if (!rc && !(b = mt_b64_encode(der, (size_t)dl)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        json_t *doc = json_pack("{s:i, s:s, s:s}", "mesatee_keystore", 1, "op", "release",
                                "evidence", b);
        req = doc ? mt_json_dump(doc) : NULL;
        json_decref(doc);
        if (!req)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = mt_atls_ctx_new(false, key, cert, j->policy, &ctx, err);
    if (!rc)
        rc = connect_to(j, &fd, err);
    if (!rc && (!(ssl = SSL_new(ctx)) || SSL_set_fd(ssl, fd) != 1))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc && SSL_connect(ssl) != 1) {
        const char *why = mt_atls_last_refusal();
        rc = is_canceled(j) ? canceled_err(j, err)
                            : mt_err_set(err, MT_EPERM,
                                         "KeyStore join: attested TLS with %s failed: %s", j->url,
                                         why[0] ? why : "handshake failed");
    }
    if (!rc) {
        char rh[512];
        size_t rql = strlen(req);
        int n = snprintf(rh, sizeof rh,
                         "POST " JOIN_PATH " HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                         "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         j->host, rql);
        if (n <= 0 || (size_t)n >= sizeof rh)
            rc = mt_err_set(err, MT_EINTERNAL, "request head too long");
        if (!rc)
            rc = mt_atls_write(ssl, rh, (size_t)n, err);
        if (!rc)
            rc = mt_atls_write(ssl, req, rql, err);
        if (!rc)
            rc = mt_atls_read_msg(ssl, head, sizeof head, MT_KEYSTORE_MSG_MAX, &resp, &resp_len,
                                  err);
        if (rc == MT_EIO && is_canceled(j))
            rc = canceled_err(j, err);
        else if (rc == MT_EIO)
            rc = mt_err_set(err, MT_EPERM, "KeyStore join: %s closed the channel (it refused "
                                           "this node's TLS certificate; see its log)",
                            j->url);
        if (!rc && sscanf(head, "HTTP/1.1 %d", &status) != 1)
            rc = mt_err_set(err, MT_EIO, "KeyStore join: bad answer from %s", j->url);
    }
    if (!rc && status != 200) {
        /* the KeyStore's fixed text: printable ASCII only, one line */
        char why[600];
        size_t o = 0;
        for (size_t i = 0; resp && i < resp_len && o + 1 < sizeof why; i++)
            if (resp[i] >= 0x20 && resp[i] < 0x7f)
                why[o++] = (char)resp[i];
        why[o] = '\0';
        rc = mt_err_set(err, status == 403 ? MT_EPERM : MT_EINVAL,
                        "KeyStore join at %s: HTTP %d: %s", j->url, status, o ? why : "refused");
    }
    if (!rc)
        rc = mt_ks_join_parse_answer(key, der, (size_t)dl, (const char *)resp, resp_len,
                                     platform, kr, err);
    if (!rc && db_cert)
        rc = mt_ks_join_answer_db_cert((const char *)resp, resp_len, db_cert, err);
    if (!rc && first && db_cert && *db_cert && EVP_PKEY_up_ref(key) == 1)
        j->key = key;
    if (rc && *kr) {
        mt_keyring_free(*kr);
        *kr = NULL;
    }
    if (resp)
        mt_wipe(resp, resp_len);
    free(resp);
    if (ssl && !rc)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    io_close(j, fd);
    SSL_CTX_free(ctx);
    free(req);
    free(b);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

mt_status mt_ks_join_open(mt_tee *tee, const char *url, const mt_policy *policy,
                          uint32_t deadline_ms, mt_ks_joined **out, mt_err *err)
{
    *out = NULL;
    if (!deadline_ms)
        deadline_ms = MT_KS_JOIN_DEADLINE_MS_DEFAULT;
    if (!tee || !url || !policy)
        return mt_err_set(err, MT_EINVAL, "--keystore-join needs --keystore-policy FILE");
    if (!strcmp(mt_tee_level(tee), "none"))
        return mt_err_set(err, MT_EINVAL, "--keystore-join needs an attested level (a node at "
                                          "level none has no evidence to join with)");
    mt_ks_joined *j = calloc(1, sizeof *j);
    if (!j)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    ignore_sigpipe();
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->io_mu, NULL);
    j->io_fd = -1;
    j->deadline_ms = deadline_ms;
    j->tee = tee;
    j->policy = policy;
    snprintf(j->url, sizeof j->url, "%s", url);
    mt_status rc = strlen(url) >= sizeof j->url
                       ? mt_err_set(err, MT_EINVAL, "--keystore-join: URL too long")
                       : mt_ks_join_parse_url(url, j->host, j->port, err);
    if (!rc)
        rc = join_once(j, j->platform, &j->kr, true, NULL, &j->db_cert, err);
    if (rc) {
        mt_ks_joined_free(j);
        return rc;
    }
    j->have_platform = true;
    mt_info("joined the KeyStore at %s: root key version %u current", j->url,
            mt_keyring_current(j->kr));
    *out = j;
    return MT_OK;
}

mt_status mt_ks_join_refresh(mt_ks_joined *j, mt_keyring **kr, mt_err *err)
{
    uint8_t p[MT_KS_JOIN_PLATFORM];
    pthread_mutex_lock(&j->mu);
    mt_status rc = join_once(j, p, kr, false, NULL, NULL, err);
    pthread_mutex_unlock(&j->mu);
    if (!rc && CRYPTO_memcmp(p, j->platform, sizeof p) != 0) {
        mt_keyring_free(*kr);
        *kr = NULL;
        rc = mt_err_set(err, MT_ECONFLICT,
                        "KeyStore join at %s: the platform keys changed (a different KeyStore "
                        "node); restart this node",
                        j->url);
    }
    mt_wipe(p, sizeof p);
    return rc;
}

/* notBefore/notAfter of a PEM certificate that certifies key (the answer
 * came over attested TLS from the KeyStore node; checked all the same, a
 * certificate for another key would only fail later in libpq). */
static mt_status db_cert_times(const char *pem, EVP_PKEY *key, int64_t *nb, int64_t *na,
                               mt_err *err)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    struct tm t1, t2;
    mt_status rc = MT_OK;
    if (!x)
        rc = mt_err_set(err, MT_EINVAL, "the database certificate is not a PEM certificate");
    else if (X509_check_private_key(x, key) != 1)
        rc = mt_err_set(err, MT_EINVAL, "the database certificate does not certify this "
                                        "node's key");
    else if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &t1) != 1 ||
             ASN1_TIME_to_tm(X509_get0_notAfter(x), &t2) != 1)
        rc = mt_err_set(err, MT_EINVAL, "the database certificate has unreadable dates");
    else {
        *nb = (int64_t)timegm(&t1);
        *na = (int64_t)timegm(&t2);
    }
    ERR_clear_error();
    X509_free(x);
    return rc;
}

mt_status mt_ks_joined_db_cert(mt_ks_joined *j, char **cert_pem, char **key_pem,
                               int64_t *not_before, int64_t *not_after, mt_err *err)
{
    *cert_pem = NULL;
    if (key_pem)
        *key_pem = NULL;
    pthread_mutex_lock(&j->mu);
    mt_status rc = MT_OK;
    int64_t nb = 0, na = 0;
    if (!j->db_cert || !j->key)
        rc = mt_err_set(err, MT_ENOTFOUND, "the KeyStore node issued no database certificate");
    if (!rc)
        rc = db_cert_times(j->db_cert, j->key, &nb, &na, err);
    if (!rc && !(*cert_pem = strdup(j->db_cert)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc && key_pem) {
        BIO *b = BIO_new(BIO_s_mem());
        char *p = NULL;
        long n = 0;
        if (b && PEM_write_bio_PKCS8PrivateKey(b, j->key, NULL, NULL, 0, NULL, NULL) == 1 &&
            (n = BIO_get_mem_data(b, &p)) > 0 && (*key_pem = malloc((size_t)n + 1))) {
            memcpy(*key_pem, p, (size_t)n);
            (*key_pem)[n] = '\0';
        }
        BIO_free_all(b); /* BIO_s_mem frees (does not wipe) its buffer: a short-lived copy */
        if (!*key_pem)
            rc = mt_err_set(err, MT_ENOMEM, "cannot encode the database key");
    }
    pthread_mutex_unlock(&j->mu);
    if (rc) {
        free(*cert_pem);
        *cert_pem = NULL;
        return rc;
    }
    if (not_before)
        *not_before = nb;
    if (not_after)
        *not_after = na;
    return MT_OK;
}

mt_status mt_ks_join_renew_db_cert(mt_ks_joined *j, mt_err *err)
{
    uint8_t p[MT_KS_JOIN_PLATFORM];
    mt_keyring *kr = NULL;
    char *pem = NULL;
    int64_t nb = 0, na = 0;
    pthread_mutex_lock(&j->mu);
    mt_status rc = MT_OK;
    if (!j->key)
        rc = mt_err_set(err, MT_ENOTFOUND, "the KeyStore node issued no database certificate");
    if (!rc)
        rc = join_once(j, p, &kr, false, j->key, &pem, err);
    if (!rc && CRYPTO_memcmp(p, j->platform, sizeof p) != 0)
        rc = mt_err_set(err, MT_ECONFLICT,
                        "KeyStore join at %s: the platform keys changed (a different KeyStore "
                        "node); restart this node",
                        j->url);
    if (!rc && !pem)
        rc = mt_err_set(err, MT_EUNAVAIL,
                        "the KeyStore node at %s gave no database certificate this time (is it "
                        "still started with a database CA?)",
                        j->url);
    if (!rc)
        rc = db_cert_times(pem, j->key, &nb, &na, err);
    if (!rc) {
        free(j->db_cert);
        j->db_cert = pem;
        pem = NULL;
    }
    pthread_mutex_unlock(&j->mu);
    mt_keyring_free(kr); /* the core refreshes its own keyring when it needs to */
    free(pem);
    mt_wipe(p, sizeof p);
    return rc;
}

const uint8_t *mt_ks_joined_platform(const mt_ks_joined *j)
{
    return j->platform;
}

mt_keyring *mt_ks_joined_take_keyring(mt_ks_joined *j)
{
    mt_keyring *kr = j->kr;
    j->kr = NULL;
    return kr;
}

const char *mt_ks_joined_url(const mt_ks_joined *j)
{
    return j->url;
}

void mt_ks_joined_free(mt_ks_joined *j)
{
    if (!j)
        return;
    mt_keyring_free(j->kr);
    mt_wipe(j->platform, sizeof j->platform);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->io_mu);
    free(j->db_cert);
    EVP_PKEY_free(j->key);
    free(j);
}
