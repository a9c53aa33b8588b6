/* executor_api: see mt_executor_api.h. */
#include "mt_executor_api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "mt_atls.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_remote_sched.h"
#include "mt_resolve.h"
#include "mt_util.h"

#define IO_TIMEOUT_S 30
#define LISTEN_RESOLVE_TIMEOUT_MS 5000 /* --executor-listen HOST (mt_resolve_bounded) */

/* One connection being served: its socket and the time at which the
 * watchdog (the accept loop) shuts it down whatever it is doing. */
typedef struct conn_slot {
    int fd; /* -1: free */
    time_t deadline;
    bool cut;
} conn_slot;

struct mt_executor_api {
    int fd;
    SSL_CTX *ctx; /* under mu: a renewal replaces it (each SSL holds its own ref) */
    mt_tee *tee;             /* borrowed: renewals */
    const mt_policy *policy; /* borrowed: renewals */
    unsigned renew_s;        /* 0: never */
    mt_remote_sched *rs;
    pthread_mutex_t rs_mu; /* rs is one handle: claims, renewals, sweeps in turn */
    /* reports (bodies up to MT_REMOTE_MAX_REPORT, decoded and written while
     * held) use a handle of their own, so that a large report never delays a
     * renewal past a short lease; the fence check in the outcome's
     * transaction (sched_finish_guarded) orders them with renewals/sweeps */
    mt_remote_sched *rs_report;
    pthread_mutex_t report_mu;
    pthread_t thread;
    pthread_t sweeper; /* expires leases (sweep_main) */
    bool sweeper_on;
    atomic_bool stop;
    size_t max_buffered;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t idle;
    conn_slot slots[MT_EXECUTOR_API_MAX_CONNS];
    size_t active;
    size_t buffered; /* body bytes reserved by connections being served */
    size_t xfers;    /* raw transfers being served (at most MAX_XFERS) */
};

typedef struct conn_arg {
    mt_executor_api *api;
    size_t slot;
} conn_arg;

/* Binds HOST:PORT; -1 with err set. */
static int bind_listen(const char *addr, unsigned *port, mt_err *err)
{
    const char *listen_addr = addr;
    char host[256];
    const char *colon = strrchr(listen_addr, ':');
    if (!colon || (size_t)(colon - listen_addr) >= sizeof host || colon == listen_addr) {
        mt_err_set(err, MT_EINVAL, "--executor-listen must be HOST:PORT");
        return -1;
    }
    memcpy(host, listen_addr, (size_t)(colon - listen_addr));
    host[colon - listen_addr] = '\0';
    /* AI_ADDRCONFIG as the gateway's --listen (gateway.c gw_bind): one name
     * gives every listener the same address */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;
    /* bounded (mt_resolve.h): a numeric address at once, a name within
     * LISTEN_RESOLVE_TIMEOUT_MS, so a DNS server that does not answer makes
     * the start fail with a reason instead of hanging it */
    int e = mt_resolve_bounded(host, colon + 1, &hints, LISTEN_RESOLVE_TIMEOUT_MS, NULL, NULL,
                               &ai);
    if (e || !ai) {
        if (ai)
            freeaddrinfo(ai);
        mt_err_set(err, MT_EINVAL, "cannot resolve executor listen address %s%s", listen_addr,
                   e == ETIMEDOUT ? ": no answer within 5000 ms" : "");
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        mt_err_set(err, MT_EIO, "cannot listen on %s: %s", listen_addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void respond(SSL *ssl, int status, const char *reason, const char *body)
{
    char head[160];
    size_t len = body ? strlen(body) : 0;
    snprintf(head, sizeof head,
             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             status, reason, len);
    mt_err err;
    if (mt_atls_write(ssl, head, strlen(head), &err) == MT_OK && len)
        (void)mt_atls_write(ssl, body, len, &err);
}

char *mt_executor_api_error_response(mt_status code, const char *msg)
{
    int st = mt_status_http(code);
    json_t *j = json_pack("{s:s, s:s}", "error", msg ? msg : "", "code", mt_status_name(code));
    char *s = j ? mt_json_dump(j) : NULL;
    json_decref(j);
    const char *body = s ? s : "{}";
    size_t len = strlen(body), cap = len + 200;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap,
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 st, mt_http_reason(st), len, body);
    free(s);
    return out;
}

static void respond_error(SSL *ssl, mt_status code, const char *msg)
{
    char *out = mt_executor_api_error_response(code, msg);
    mt_err err;
    if (out)
        (void)mt_atls_write(ssl, out, strlen(out), &err);
    free(out);
}

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void set_deadline(mt_executor_api *api, size_t slot, time_t d)
{
    pthread_mutex_lock(&api->mu);
    api->slots[slot].deadline = d;
    pthread_mutex_unlock(&api->mu);
}

/* Reserves n body bytes against the listener's total; false when over. */
static bool reserve(mt_executor_api *api, size_t n, size_t *held)
{
    pthread_mutex_lock(&api->mu);
    bool ok = n <= api->max_buffered && api->buffered <= api->max_buffered - n;
    *held = api->buffered;
    if (ok)
        api->buffered += n;
    pthread_mutex_unlock(&api->mu);
    return ok;
}

static void release(mt_executor_api *api, size_t n)
{
    pthread_mutex_lock(&api->mu);
    api->buffered -= n;
    pthread_mutex_unlock(&api->mu);
}

/* One request on an established, verified connection (the peer passed the
 * executor-role policy inside the handshake: nothing is read before). */
/* The peer id of a verified connection (mt_remote_sched.h): the first hex
 * digits of SHA-256 over the client certificate's public key. */
static bool peer_id(SSL *ssl, char out[MT_REMOTE_PEER_ID_LEN + 1])
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    unsigned char *der = NULL;
    int n = cert ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der) : -1;
    X509_free(cert);
    if (n <= 0)
        return false;
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)n, h);
    OPENSSL_free(der);
    for (size_t i = 0; i < MT_REMOTE_PEER_ID_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    return true;
}

/* The query of a transfer route "POST <route>?Q HTTP/1.1" in head, parsed;
 * false (nothing parsed) when head is not that route. */
static bool xfer_route(const char *head, const char *route, mt_rxfer *x, mt_status *rc,
                       mt_err *err)
{
    size_t n = strlen(route);
    if (strncmp(head, route, n) != 0 || head[n] != '?')
        return false;
    const char *q = head + n + 1, *sp = strchr(q, ' ');
    if (!sp || strncmp(sp, " HTTP/1.1", 9) != 0)
        *rc = mt_err_set(err, MT_EINVAL, "transfer: malformed request line");
    else
        *rc = mt_rxfer_parse(q, (size_t)(sp - q), x, err);
    return true;
}

/* POST /v1/executor/input?Q: the ciphertext of an input (or the module) of a
 * task the peer holds the lease of, streamed from its object. */
/* Raw transfers take at most half of the connections, so renewals and
 * reports always find one (a lease must not run out behind big uploads). */
#define MAX_XFERS (MT_EXECUTOR_API_MAX_CONNS / 2)

static bool xfer_enter(mt_executor_api *api)
{
    pthread_mutex_lock(&api->mu);
    bool ok = api->xfers < MAX_XFERS;
    if (ok)
        api->xfers++;
    pthread_mutex_unlock(&api->mu);
    return ok;
}

static void xfer_leave(mt_executor_api *api)
{
    pthread_mutex_lock(&api->mu);
    api->xfers--;
    pthread_mutex_unlock(&api->mu);
}

/* A transfer in progress pushes its connection's deadline forward: the
 * request deadline bounds idleness, not the size of what moves. */
static void xfer_alive(mt_executor_api *api, size_t slot)
{
    set_deadline(api, slot, now_s() + MT_EXECUTOR_API_REQUEST_S);
}

static void serve_input(mt_executor_api *api, size_t slot, SSL *ssl, const mt_rxfer *x,
                        size_t blen)
{
    mt_err err;
    mt_err_clear(&err);
    char path[4096 + 32];
    if (blen) {
        respond_error(ssl, MT_EINVAL, "transfer: an input request has no body");
        return;
    }
    pthread_mutex_lock(&api->rs_mu);
    mt_status rc = mt_remote_sched_xfer(api->rs, x, false, path, &err);
    pthread_mutex_unlock(&api->rs_mu);
    int fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (!rc && (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)))
        rc = mt_err_set(&err, MT_EIO, "the object of this slot cannot be read");
    if (rc) {
        if (fd >= 0)
            close(fd);
        respond_error(ssl, rc, err.msg);
        return;
    }
    char head[200];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
             "%lld\r\nConnection: close\r\n\r\n",
             (long long)sb.st_size);
    rc = mt_atls_write(ssl, head, strlen(head), &err);
    uint8_t buf[1 << 16];
    for (off_t left = sb.st_size; !rc && left > 0;) {
        ssize_t n = read(fd, buf, (size_t)left < sizeof buf ? (size_t)left : sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* the object shrank: the peer sees a short body and fails */
            break;
        rc = mt_atls_write(ssl, buf, (size_t)n, &err);
        left -= n;
        xfer_alive(api, slot);
    }
    close(fd);
}

/* POST /v1/executor/output?Q: an output's ciphertext (blen bytes) streamed
 * into its staging place (mt_remote_sched_upload_*: a file, or rows of the
 * database with --objects db), checked by the report. */
static void serve_output(mt_executor_api *api, size_t slot, SSL *ssl, const mt_rxfer *x,
                         size_t blen)
{
    mt_err err;
    mt_err_clear(&err);
    untrusted_upload *u = NULL;
    pthread_mutex_lock(&api->rs_mu);
    mt_status rc = mt_remote_sched_upload_begin(api->rs, x, blen, &u, &err);
    pthread_mutex_unlock(&api->rs_mu);
    if (rc) {
        respond_error(ssl, rc, err.msg);
        return;
    }
    uint8_t buf[1 << 16];
    bool early = false;
    for (size_t left = blen; !rc && left > 0;) {
        int n = SSL_read(ssl, buf, left < sizeof buf ? (int)left : (int)sizeof buf);
        if (n <= 0) {
            rc = mt_err_set(&err, MT_EIO, "the upload ended early");
            early = true;
            break;
        }
        rc = mt_remote_sched_upload_write(u, buf, (size_t)n, &err);
        left -= (size_t)n;
        xfer_alive(api, slot);
    }
    char dh[65];
    if (!rc) { /* the lease may have changed hands meanwhile (a fence reissued) */
        pthread_mutex_lock(&api->rs_mu);
        rc = mt_remote_sched_upload_recheck(api->rs, x, &err);
        pthread_mutex_unlock(&api->rs_mu);
    }
    if (!rc)
        rc = mt_remote_sched_upload_commit(u, dh, &err);
    mt_remote_sched_upload_free(u);
    if (rc) {
        if (!early)
            respond_error(ssl, rc, err.msg);
        return;
    }
    char body[128];
    snprintf(body, sizeof body, "{\"size\":%zu,\"sha256\":\"%s\"}", blen, dh);
    respond(ssl, 200, "OK", body);
}

static void serve_one(mt_executor_api *api, size_t slot, SSL *ssl)
{
    char head[8192];
    uint8_t *body = NULL;
    size_t blen = 0;
    mt_err err;
    mt_err_clear(&err);
    /* bodies up to MT_RXFER_MAX_BYTES for an output transfer (streamed to
     * disk, never buffered); every other route at most MT_REMOTE_MAX_REPORT */
    mt_status rc = mt_atls_read_head(ssl, head, sizeof head, MT_RXFER_MAX_BYTES, &blen, &err);
    if (rc) {
        if (rc != MT_EIO)
            respond_error(ssl, rc, err.msg);
        return;
    }
    char peer[MT_REMOTE_PEER_ID_LEN + 1];
    if (!peer_id(ssl, peer)) { /* cannot happen after a mutual handshake */
        respond_error(ssl, MT_EAUTH, "no client certificate");
        return;
    }
    mt_rxfer x;
    if (xfer_route(head, "POST /v1/executor/input", &x, &rc, &err) ||
        xfer_route(head, "POST /v1/executor/output", &x, &rc, &err)) {
        if (rc) {
            respond_error(ssl, rc, err.msg);
        } else if (!xfer_enter(api)) {
            respond_error(ssl, MT_EUNAVAIL, "too many transfers at once; retry later");
        } else {
            if (!strncmp(head, "POST /v1/executor/input?", 24))
                serve_input(api, slot, ssl, &x, blen);
            else
                serve_output(api, slot, ssl, &x, blen);
            xfer_leave(api);
        }
        return;
    }
    if (blen > MT_REMOTE_MAX_REPORT) {
        respond_error(ssl, MT_ETOOBIG, "request body larger than the executor API accepts");
        return;
    }
    /* the body is buffered whole (mt_rreport_decode parses it): its bytes
     * count against the listener's total before any is read */
    size_t held = 0;
    if (!reserve(api, blen, &held)) {
        mt_warn("executor API: refused a %zu-byte body: %zu bytes already buffered (limit "
                "%zu)",
                blen, held, api->max_buffered);
        respond_error(ssl, MT_EUNAVAIL,
                      "the executor API is buffering too many bytes; retry later");
        /* discard (not buffer) the body the peer is sending, so that it
         * reads the answer instead of a reset; the deadline bounds this */
        char sink[16384];
        for (size_t left = blen; left;) {
            int n = SSL_read(ssl, sink, left < sizeof sink ? (int)left : (int)sizeof sink);
            if (n <= 0)
                break;
            left -= (size_t)n;
        }
        return;
    }
    if ((rc = mt_atls_read_body(ssl, blen, &body, &err))) {
        release(api, blen);
        if (rc != MT_EIO)
            respond_error(ssl, rc, err.msg);
        return;
    }
    if (!strncmp(head, "POST /v1/executor/claim ", 24)) {
        json_t *job = NULL;
        mt_rhello hello; /* the executor's health, an empty body from older ones */
        rc = mt_rhello_decode((const char *)body, blen, &hello, &err);
        if (!rc) {
            mt_remote_sched_health(&hello, peer);
            pthread_mutex_lock(&api->rs_mu);
            rc = mt_remote_sched_claim(api->rs, &job, &err);
            pthread_mutex_unlock(&api->rs_mu);
        }
        if (rc) {
            respond_error(ssl, rc, err.msg);
        } else if (!job) {
            respond(ssl, 204, "No Content", NULL);
        } else {
            char *s = mt_json_dump(job);
            json_decref(job);
            if (s)
                respond(ssl, 200, "OK", s);
            else
                respond_error(ssl, MT_ENOMEM, "out of memory");
            if (s)
                mt_wipe(s, strlen(s)); /* carries file keys */
            free(s);
        }
    } else if (!strncmp(head, "POST /v1/executor/health ", 25)) {
        mt_rhello hello;
        rc = mt_rhello_decode((const char *)body, blen, &hello, &err);
        if (!rc && !hello.present)
            rc = mt_err_set(&err, MT_EINVAL, "executor health: empty body");
        if (rc) {
            respond_error(ssl, rc, err.msg);
        } else {
            mt_remote_sched_health(&hello, peer);
            respond(ssl, 200, "OK", "{\"stored\":true}");
        }
    } else if (!strncmp(head, "POST /v1/executor/renew ", 24)) {
        json_t *ans = NULL;
        pthread_mutex_lock(&api->rs_mu);
        rc = mt_remote_sched_renew(api->rs, body, blen, &ans, &err);
        pthread_mutex_unlock(&api->rs_mu);
        char *s = ans ? mt_json_dump(ans) : NULL;
        json_decref(ans);
        if (rc)
            respond_error(ssl, rc, err.msg);
        else if (s)
            respond(ssl, 200, "OK", s);
        else
            respond_error(ssl, MT_ENOMEM, "out of memory");
        free(s);
    } else if (!strncmp(head, "POST /v1/executor/report ", 25)) {
        pthread_mutex_lock(&api->report_mu);
        rc = mt_remote_sched_report(api->rs_report, body, blen, &err);
        pthread_mutex_unlock(&api->report_mu);
        if (rc)
            respond_error(ssl, rc, err.msg);
        else
            respond(ssl, 200, "OK", "{\"stored\":true}");
    } else {
        respond_error(ssl, MT_ENOTFOUND, "no such executor route");
    }
    free(body);
    release(api, blen);
}

static void *conn_main(void *p)
{
    conn_arg *a = p;
    mt_executor_api *api = a->api;
    size_t slot = a->slot;
    free(a);
    int c = api->slots[slot].fd; /* set before the thread started, fixed until freed below */
    pthread_mutex_lock(&api->mu);
    SSL *ssl = SSL_new(api->ctx);
    pthread_mutex_unlock(&api->mu);
    if (ssl && SSL_set_fd(ssl, c) == 1) {
        if (SSL_accept(ssl) == 1) {
            set_deadline(api, slot, now_s() + MT_EXECUTOR_API_REQUEST_S);
            serve_one(api, slot, ssl);
            SSL_shutdown(ssl);
        } else {
            const char *why = mt_atls_last_refusal();
            mt_warn("executor API: peer refused in the TLS handshake: %s",
                    why[0] ? why : "no client certificate, handshake failure or timeout");
        }
    }
    SSL_free(ssl);
    pthread_mutex_lock(&api->mu);
    close(c);
    api->slots[slot].fd = -1;
    api->active--;
    pthread_cond_broadcast(&api->idle);
    pthread_mutex_unlock(&api->mu);
    return NULL;
}

/* Shuts down connections past their deadline (all of them when stopping):
 * a blocked read returns and the connection's thread ends. */
static void watchdog(mt_executor_api *api, bool all)
{
    time_t now = now_s();
    pthread_mutex_lock(&api->mu);
    for (size_t i = 0; i < MT_EXECUTOR_API_MAX_CONNS; i++) {
        conn_slot *s = &api->slots[i];
        if (s->fd >= 0 && !s->cut && (all || now >= s->deadline)) {
            if (!all)
                mt_warn("executor API: connection past its deadline closed");
            shutdown(s->fd, SHUT_RDWR);
            s->cut = true;
        }
    }
    pthread_mutex_unlock(&api->mu);
}

static void start_conn(mt_executor_api *api, int c)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    pthread_mutex_lock(&api->mu);
    size_t slot = MT_EXECUTOR_API_MAX_CONNS;
    for (size_t i = 0; i < MT_EXECUTOR_API_MAX_CONNS && slot == MT_EXECUTOR_API_MAX_CONNS; i++)
        if (api->slots[i].fd < 0)
            slot = i;
    conn_arg *a = slot < MT_EXECUTOR_API_MAX_CONNS ? malloc(sizeof *a) : NULL;
    pthread_attr_t attr;
    bool started = false;
    if (a && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        *a = (conn_arg){api, slot};
        api->slots[slot] = (conn_slot){c, now_s() + MT_EXECUTOR_API_HANDSHAKE_S, false};
        pthread_t t;
        started = pthread_create(&t, &attr, conn_main, a) == 0;
        pthread_attr_destroy(&attr);
        if (started)
            api->active++;
        else
            api->slots[slot].fd = -1;
    }
    pthread_mutex_unlock(&api->mu);
    if (!started) {
        free(a);
        mt_warn("executor API: %s; connection closed",
                slot < MT_EXECUTOR_API_MAX_CONNS ? "cannot start a thread"
                                                 : "too many connections being served");
        close(c);
    }
}

/* Expired leases (mt_remote_sched_sweep) every SWEEP_MS, on a thread of its
 * own: a report being stored holds rs_mu, and the accept loop must not wait. */
#define SWEEP_MS 250

/* A new TLS identity with fresh evidence for new connections. */
static void renew_identity(mt_executor_api *api)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    SSL_CTX *ctx = NULL;
    mt_err err;
    mt_err_clear(&err);
    mt_status rc = mt_tee_tls_identity(api->tee, &key, &cert, &err);
    if (!rc)
        rc = mt_atls_ctx_new(true, key, cert, api->policy, &ctx, &err);
    EVP_PKEY_free(key);
    X509_free(cert);
    if (rc) {
        mt_error("executor API: TLS certificate renewal failed, keeping the current one until "
                 "the next try in %u s: %s",
                 api->renew_s, err.msg);
        return;
    }
    pthread_mutex_lock(&api->mu);
    SSL_CTX *old = api->ctx;
    api->ctx = ctx;
    pthread_mutex_unlock(&api->mu);
    SSL_CTX_free(old); /* connections being served hold their own reference */
    mt_info("executor API: TLS key and certificate renewed with fresh evidence (every %u s)",
            api->renew_s);
}

static void *sweep_main(void *p)
{
    mt_executor_api *api = p;
    struct timespec next_renew;
    clock_gettime(CLOCK_MONOTONIC, &next_renew);
    next_renew.tv_sec += (time_t)api->renew_s;
    while (!atomic_load(&api->stop)) {
        struct timespec ts = {0, SWEEP_MS * 1000000L};
        nanosleep(&ts, NULL);
        if (api->renew_s) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec >= next_renew.tv_sec) {
                renew_identity(api);
                next_renew.tv_sec = now.tv_sec + (time_t)api->renew_s;
            }
        }
        mt_err err;
        mt_err_clear(&err);
        pthread_mutex_lock(&api->rs_mu);
        (void)mt_remote_sched_sweep(api->rs, &err); /* each failure is logged there */
        pthread_mutex_unlock(&api->rs_mu);
    }
    return NULL;
}

static void *api_main(void *p)
{
    mt_executor_api *api = p;
    while (!atomic_load(&api->stop)) {
        watchdog(api, false);
        struct pollfd pfd = {.fd = api->fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        int c = accept4(api->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            /* as the gateway's: a reply written as several TLS records must
             * not wait for the executor's delayed ACK. Best effort. */
            int one = 1;
            (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            start_conn(api, c);
        }
    }
    /* stop: cut every connection and wait for their threads */
    watchdog(api, true);
    pthread_mutex_lock(&api->mu);
    while (api->active)
        pthread_cond_wait(&api->idle, &api->mu);
    pthread_mutex_unlock(&api->mu);
    return NULL;
}

mt_status mt_executor_api_start(const char *listen, const char *data_dir, mt_tee *tee,
                                const mt_policy *policy, mt_core *core,
                                size_t max_buffered, uint32_t lease_ms, uint32_t max_attempts,
                                unsigned renew_s, mt_executor_api **out, mt_err *err)
{
    *out = NULL;
    if (!policy || strcmp(mt_policy_role(policy), "executor") != 0)
        return mt_err_set(err, MT_EINVAL,
                          "the executor policy must name \"role\": \"executor\"");
    mt_executor_api *api = calloc(1, sizeof *api);
    if (!api)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    api->fd = -1;
    api->tee = tee;
    api->policy = policy;
    api->renew_s = renew_s;
    api->max_buffered = max_buffered ? max_buffered : MT_EXECUTOR_API_MAX_BUFFERED;
    for (size_t i = 0; i < MT_EXECUTOR_API_MAX_CONNS; i++)
        api->slots[i].fd = -1;
    pthread_mutex_init(&api->mu, NULL);
    pthread_mutex_init(&api->rs_mu, NULL);
    pthread_mutex_init(&api->report_mu, NULL);
    pthread_cond_init(&api->idle, NULL);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    unsigned port = 0;
    mt_status rc = mt_tee_tls_identity(tee, &key, &cert, err);
    if (!rc)
        rc = mt_atls_ctx_new(true, key, cert, policy, &api->ctx, err);
    EVP_PKEY_free(key);
    X509_free(cert);
    if (!rc && (api->fd = bind_listen(listen ? listen : "127.0.0.1:7444", &port, err)) < 0)
        rc = err->code ? err->code : MT_EIO;
    if (!rc)
        rc = mt_remote_sched_new(core, &api->rs, err);
    if (!rc)
        rc = mt_remote_sched_new(core, &api->rs_report, err);
    for (int i = 0; !rc && (lease_ms || max_attempts) && i < 2; i++)
        rc = mt_remote_sched_set_leases(
            i ? api->rs_report : api->rs, lease_ms ? lease_ms : MT_REMOTE_LEASE_MS_DEFAULT,
            max_attempts ? max_attempts : MT_REMOTE_MAX_ATTEMPTS_DEFAULT, err);
    if (!rc) {
        char path[4096], url[64];
        snprintf(path, sizeof path, "%s/executor.url", data_dir);
        snprintf(url, sizeof url, "https://127.0.0.1:%u\n", port);
        rc = mt_file_write_atomic(path, url, strlen(url), 0644, err);
    }
    if (!rc) {
        int e = pthread_create(&api->sweeper, NULL, sweep_main, api);
        if (e)
            rc = mt_err_set(err, MT_EINTERNAL, "cannot start the lease sweeper: %s", strerror(e));
        else
            api->sweeper_on = true;
    }
    if (!rc) {
        int e = pthread_create(&api->thread, NULL, api_main, api);
        if (e)
            rc = mt_err_set(err, MT_EINTERNAL, "cannot start the executor API: %s", strerror(e));
    }
    if (rc) {
        atomic_store(&api->stop, true);
        if (api->sweeper_on)
            pthread_join(api->sweeper, NULL);
        mt_remote_sched_free(api->rs_report);
        mt_remote_sched_free(api->rs);
        if (api->fd >= 0)
            close(api->fd);
        SSL_CTX_free(api->ctx);
        pthread_mutex_destroy(&api->mu);
        pthread_mutex_destroy(&api->rs_mu);
        pthread_mutex_destroy(&api->report_mu);
        pthread_cond_destroy(&api->idle);
        free(api);
        return rc;
    }
    mt_info("executor API (mutually attested TLS, role executor) on 127.0.0.1:%u; tasks run "
            "on remote executors only; at most %d connections, %zu body bytes buffered; "
            "leases of %u ms, %u attempt(s) per task",
            port, MT_EXECUTOR_API_MAX_CONNS, api->max_buffered,
            lease_ms ? lease_ms : MT_REMOTE_LEASE_MS_DEFAULT,
            max_attempts ? max_attempts : MT_REMOTE_MAX_ATTEMPTS_DEFAULT);
    *out = api;
    return MT_OK;
}

void mt_executor_api_stop(mt_executor_api *api)
{
    if (!api)
        return;
    atomic_store(&api->stop, true);
    pthread_join(api->thread, NULL);
    pthread_join(api->sweeper, NULL);
    mt_remote_sched_free(api->rs_report);
    mt_remote_sched_free(api->rs);
    close(api->fd);
    SSL_CTX_free(api->ctx);
    pthread_mutex_destroy(&api->mu);
    pthread_mutex_destroy(&api->rs_mu);
    pthread_mutex_destroy(&api->report_mu);
    pthread_cond_destroy(&api->idle);
    free(api);
}
