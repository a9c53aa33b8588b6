/* gateway.c: the HTTPS server (see mt_gateway.h for the contract).
 *
 * Connection accounting: every accepted connection gets its own SSL object
 * (made in the evhttp bufferevent callback). A small gw_conn record hangs off
 * the SSL as ex_data; OpenSSL calls our free callback when libevent frees the
 * SSL with the connection, so the live-connection count cannot drift whatever
 * path closed the connection. Connections over the limit are still accepted
 * by evhttp (libevent 2.1 offers no accept hook) but their socket is shut down
 * right after evhttp has attached it, so the peer sees an immediate close.
 *
 * Graceful stop: the listening socket is removed, requests arriving on open
 * connections get 503 with "Connection: close", and the loop ends when no
 * response is being written any more or the grace period is over. */
#include "mt_gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_evmem.h"
#include "mt_http_head.h"
#include "mt_vault_head.h"
#include "mt_log.h"
#include "mt_trace.h"
#include "mt_resolve.h"
#include "mt_sdnotify.h"
#include "mt_util.h"

/* ------------------------------------------------------------------------ */
/* Limits and defaults                                                      */
/* ------------------------------------------------------------------------ */

#define GW_DEFAULT_LISTEN "127.0.0.1:7443"
#define GW_LISTEN_RESOLVE_MS 5000 /* the listen host (mt_resolve_bounded) */
#define GW_DEFAULT_MAX_CONNS 256u
#define GW_DEFAULT_TIMEOUT_S 60u
#define GW_DEFAULT_GRACE_MS 5000u
/* Request bodies up to this size are wiped after handling: every JSON document
 * that carries a password or a key is far smaller. Larger bodies are raw
 * ciphertext uploads, not wiped so that the event loop stays responsive. */
#define GW_WIPE_BODY_MAX (4u << 20)
#define GW_DEFAULT_MAX_BODY ((size_t)1 << 30)
#define GW_MAX_HEADERS 16384
#define GW_MAX_PATH 2048
#define GW_MAX_TOKEN 1024
#define GW_MAX_SERIES 256      /* distinct (route,status) counters kept */
#define GW_ROUTE_LEN 72        /* route label incl. method */
#define GW_ACTION_LEN 256      /* audit action "METHOD /path" */
#define GW_OTHER_ROUTE "other" /* metrics label of requests without a route pattern */
#define GW_DEFAULT_MAX_PARKED 256 /* requests held for ?wait= (mt_gateway_config.max_parked) */
#define GW_PARK_TICK_MS 200       /* parked: deadlines and gone clients checked this often */
enum { GW_PARK_WAKE, GW_PARK_TICK, GW_PARK_STOP };
#define GW_DEFAULT_MAX_BUFFERED ((size_t)64 << 20)
#define GW_UNAUTH_MAX_BODY ((size_t)1 << 20) /* body cap of routes without a token */
#define GW_NOBODY_MAX_BODY 1024              /* built-in paths, unsupported methods */
#define GW_UNDER_READ_HIGH (256 * 1024)      /* TLS bytes read ahead of the filter */
#define GW_DEFAULT_SLOW_THREADS 2u
#define GW_DEFAULT_SLOW_QUEUE 64u
#define GW_DEFAULT_REQUEST_THREADS 2u
/* A pooled route's body up to this size, with a token and without Expect,
 * is read before its token is checked, and the check is left to the request
 * thread (see gw_decide). */
#define GW_DEFER_AUTH_MAX (64 * 1024)
#define GW_FILE_PIECE (256 * 1024) /* file bodies are read this much at a time */
/* What evhttp sees instead of a request refused at its head. */
#define GW_SYNTH_HEAD "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

/* Where the input filter is in the current request (see "Request heads"). */
typedef enum {
    GW_MODE_HEAD,    /* collecting the next request head */
    GW_MODE_BODY,    /* passing `remaining` body bytes to evhttp */
    GW_MODE_STREAM,  /* writing `remaining` body bytes to the upload sink */
    GW_MODE_HOLD,    /* request handed over; hold further bytes until it is answered */
    GW_MODE_DISCARD, /* request refused at its head; drop everything until close */
    GW_MODE_DRAIN,   /* refused, its small body still arriving: drop `remaining` bytes,
                        then answer (so the client reads the answer, not a reset) */
} gw_mode;

typedef struct gw_conn {
    mt_gateway *gw;
    SSL *ssl;                    /* NULL once OpenSSL has freed it */
    struct gw_conn *next_reject; /* pending in gw->rejects */
    int refs;                    /* SSL ex_data + input filter + pending reject */
    bool counted;                /* counted in gw->live */
    bool responding;             /* a response is being written (gw->in_flight) */

    struct bufferevent *under;  /* the TLS bufferevent below the filter; NULL once freed */
    struct bufferevent *filter; /* what evhttp reads and writes; NULL once freed */
    size_t out_copied;          /* bytes at the front of filter output copied to under */
    gw_mode mode;
    uint64_t remaining;    /* body bytes of the current request still to come */
    uint64_t drain_cl;     /* while deciding a head: its body length when small
                              enough to read and drop before a refusal, else 0 */
    size_t reserved;       /* bytes of the current body counted in gw->buffered */
    bool reserved_anon;    /* ... and in gw->buffered_anon (no token) */
    mt_upload *upload;     /* streamed body of the current request */
    uint64_t streamed;     /* bytes written to upload */
    struct evbuffer *held; /* head given to evhttp once the streamed body is complete */
    /* A request refused at its head; the request callback answers it. */
    int rej_status;
    mt_status rej_code;
    unsigned rej_retry_after;
    bool rej_www_auth;
    char rej_method[16];
    char rej_actor[65];
    char rej_action[GW_ACTION_LEN];
    char rej_msg[256];
    char rej_allow[64]; /* Allow header of a 405 refusal; "" = every method we serve */
    /* The principal gw_decide's token check of a head found, for the
     * request callback (gw_pre_authed): a request with a body costs one
     * token lookup in the store, not two (docs/cluster.md "Commits per
     * task"). Taken at most once, only for the very token that was checked,
     * and only on this connection; reset by every head. */
    bool pre_authed;
    mt_principal pre_who;
    /* A response body streamed from a file (see "File bodies"). */
    int dl_fd; /* -1 when none */
    uint64_t dl_off, dl_len;
    EVP_MD_CTX *dl_md;
    char dl_sha[65]; /* hex SHA-256 the bytes must have; "" = not checked */
} gw_conn;

typedef struct gw_series {
    char route[GW_ROUTE_LEN];
    int status;
    uint64_t count;
} gw_series;

typedef struct gw_latency {
    char route[GW_ROUTE_LEN];
    double sum_s;
    uint64_t count;
} gw_latency;

typedef struct gw_job gw_job;

struct mt_gateway {
    mt_gateway_backend be;
    bool metrics_token_set;         /* /metrics needs a bearer token */
    unsigned char metrics_token_sha[32]; /* SHA-256 of that token */
    size_t max_buffered;
    size_t buffered; /* request bodies held in memory now (reservations) */
    size_t buffered_anon; /* the part of buffered sent without a token: at most a
                             quarter of max_buffered, so anonymous clients that
                             trickle bodies cannot take the memory users need */
    /* Worker threads for slow routes (password hashing). */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    bool pool_init;
    bool pool_stop;
    pthread_t *pool_threads;
    unsigned pool_n; /* threads started */
    unsigned pool_max_queue;
    unsigned pool_queued;              /* waiting for a thread */
    gw_job *pool_q_head, *pool_q_tail; /* waiting */
    gw_job *pool_done;                 /* handled, waiting for the loop to answer */
    unsigned jobs_pending;             /* queued, running or done but not answered (loop) */
    /* Group commit of audit entries (be.audit_batch): a handled request whose
     * entry the backend did not write waits here, under pool_mu, until the
     * committer thread has made every queued entry durable in one
     * transaction; it then joins pool_done and the loop answers it. */
    pthread_cond_t commit_cv;
    bool commit_init;
    bool commit_started;
    bool commit_stop;
    pthread_t commit_thread;
    gw_job *commit_q_head, *commit_q_tail;
    /* Request threads (be.pooled routes): authenticate and handle a request
     * off the loop, then hand it to the committer (or to pool_done), under
     * pool_mu. Not bounded by a queue limit: each connection has at most one
     * request handed over at a time (GW_MODE_HOLD), so at most max_conns wait. */
    pthread_cond_t req_cv;
    bool req_cv_init;
    pthread_t *req_threads;
    unsigned req_n; /* threads started */
    gw_job *req_q_head, *req_q_tail;
    uint64_t commit_batches, commit_entries; /* committed (metrics) */
    int done_pipe[2];
    struct event *done_ev;
    char *data_dir;
    char level[16];
    char url[300];
    unsigned port;
    unsigned max_conns;
    unsigned grace_ms;
    size_t max_body;
    bool handle_signals;

    SSL_CTX *ssl_ctx;
    mt_status (*renew)(void *ctx, EVP_PKEY **key, X509 **cert, mt_err *err);
    void *renew_ctx;
    unsigned renew_interval_s;
    struct event *renew_ev;
    unsigned long renewals;
    mt_status (*reload)(void *ctx, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain,
                        mt_err *err);
    void *reload_ctx;
    struct event *sighup_ev;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *stop_ev;
    struct event *sigterm_ev;
    struct event *sigint_ev;
    void (*on_hup)(void *ctx); /* SIGHUP: the configuration reload, when set */
    void *on_hup_ctx;
    struct event *reject_ev;
    struct event *grace_ev;
    struct event *drain_ev; /* drain phase: polls drained() */
    struct event *watchdog_ev; /* WATCHDOG=1 every half WatchdogSec (mt_sdnotify) */
    void (*drain)(void *ctx);
    bool (*drained)(void *ctx);
    void *drain_ctx;
    unsigned drain_grace_ms;
    int64_t drain_deadline_ms;
    bool draining; /* drain phase begun (services refuse new tasks) */
    int stop_pipe[2];
    atomic_int stop_requested;

    bool stopping;      /* shutdown begun: no accept, 503 for new requests */
    bool loop_done;     /* event loop left; no more loop calls from callbacks */
    unsigned live;      /* open (accepted, within the limit) connections */
    unsigned in_flight; /* responses being written */
    uint64_t rejected_total;
    uint64_t audit_failures;
    gw_conn *rejects; /* over-limit connections waiting to be shut down */

    /* Parked requests (mt_gateway.h "Parked requests"), loop thread only
     * except park_wake (set by mt_gateway_wake from any thread). */
    gw_job *parked;
    unsigned parked_n, parked_max;
    uint64_t parked_full; /* refused with 503: too many parked */
    struct event *park_ev; /* deadlines and gone connections, while any is parked */
    atomic_bool park_wake;
    /* Set by the loop before it parks a request, cleared when none is
     * parked: mt_gateway_wake wakes the loop (done_pipe) only while set, so
     * a task event with nobody parked costs no write and no loop wake-up
     * (issue 13). A wake that found it clear while a request was being
     * parked is caught by gw_park itself (see there). */
    atomic_bool parked_any;

    gw_series series[GW_MAX_SERIES];
    size_t n_series;
    gw_latency latency[GW_MAX_SERIES];
    size_t n_latency;
};

/* ------------------------------------------------------------------------ */
/* Connection records (SSL ex_data)                                         */
/* ------------------------------------------------------------------------ */

static int g_conn_idx = -1;
static pthread_once_t g_conn_once = PTHREAD_ONCE_INIT;

static void gw_conn_unref(gw_conn *c)
{
    if (c && --c->refs == 0)
        free(c);
}

static void gw_maybe_finish(mt_gateway *gw)
{
    if (gw->stopping && !gw->loop_done && gw->in_flight == 0 && gw->jobs_pending == 0)
        event_base_loopbreak(gw->base);
}

/* Called by OpenSSL when a connection's SSL object is freed. */
static void gw_conn_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    gw_conn *c = ptr;
    if (!c)
        return;
    mt_gateway *gw = c->gw;
    c->ssl = NULL;
    if (c->responding) {
        c->responding = false;
        gw->in_flight--;
    }
    if (c->counted) {
        c->counted = false;
        gw->live--;
    }
    gw_maybe_finish(gw);
    gw_conn_unref(c);
}

static void gw_conn_index_init(void)
{
    g_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, gw_conn_ssl_free);
}

static gw_conn *gw_conn_of_request(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return NULL;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct bufferevent *under = bev ? bufferevent_get_underlying(bev) : NULL;
    SSL *ssl = under ? bufferevent_openssl_get_ssl(under) : NULL;
    return ssl ? SSL_get_ex_data(ssl, g_conn_idx) : NULL;
}

/* Ends the current request's claims: its memory reservation, its upload
 * sink (removing an uncommitted file), its held head and its refusal. */
static void gw_conn_req_reset(gw_conn *c)
{
    mt_gateway *gw = c->gw;
    if (c->reserved) {
        gw->buffered -= c->reserved < gw->buffered ? c->reserved : gw->buffered;
        if (c->reserved_anon)
            gw->buffered_anon -= c->reserved < gw->buffered_anon ? c->reserved : gw->buffered_anon;
        c->reserved = 0;
        c->reserved_anon = false;
    }
    if (c->upload) {
        gw->be.upload_free(c->upload);
        c->upload = NULL;
    }
    c->streamed = 0;
    c->remaining = 0;
    if (c->held) {
        evbuffer_free(c->held);
        c->held = NULL;
    }
    c->rej_status = 0;
    c->rej_www_auth = false;
    c->rej_retry_after = 0;
    c->rej_allow[0] = '\0';
}

static enum bufferevent_filter_result gw_in_filter(struct evbuffer *src, struct evbuffer *dst,
                                                   ev_ssize_t lim, enum bufferevent_flush_mode m,
                                                   void *ctx);

static int gw_dl_piece(gw_conn *c, struct evbuffer *out);

/* Output filter: evhttp counts a response as sent (and may close the
 * connection) when the filter's output is empty, so the bytes stay there
 * until the TLS bufferevent has written the copy it got: at most
 * GW_OUT_CHUNK at a time, the next chunk once the previous one is out. */
#define GW_OUT_CHUNK (64 * 1024)
static enum bufferevent_filter_result gw_out_filter(struct evbuffer *src, struct evbuffer *dst,
                                                    ev_ssize_t lim, enum bufferevent_flush_mode m,
                                                    void *ctx)
{
    (void)lim;
    (void)m;
    gw_conn *c = ctx;
    if (evbuffer_get_length(dst) > 0)
        return BEV_NEED_MORE; /* the previous chunk is not written yet */
    bool drained = c->out_copied > 0;
    if (drained) {
        evbuffer_drain(src, c->out_copied);
        c->out_copied = 0;
    }
    size_t len = evbuffer_get_length(src);
    if (len == 0 && c->dl_fd >= 0) {
        /* evhttp's part is out: the file body comes next (see "File bodies") */
        if (gw_dl_piece(c, src) < 0)
            return BEV_ERROR;
        len = evbuffer_get_length(src);
    }
    if (len == 0)
        return drained ? BEV_OK : BEV_NEED_MORE; /* BEV_OK: evhttp's write callback runs */
    size_t k = len < GW_OUT_CHUNK ? len : GW_OUT_CHUNK;
    /* One contiguous chunk: the TLS bufferevent writes each buffer chain as
     * its own SSL_write, so evhttp's head and body in two chains cost two
     * TLS records and two system calls per reply. */
    if (evbuffer_expand(dst, k) != 0)
        return BEV_ERROR;
    struct evbuffer_iovec v[8];
    int nv = evbuffer_peek(src, (ev_ssize_t)k, NULL, v, 8);
    size_t copied = 0;
    for (int i = 0; i < nv && i < 8 && copied < k; i++) {
        size_t n = v[i].iov_len < k - copied ? v[i].iov_len : k - copied;
        if (evbuffer_add(dst, v[i].iov_base, n) != 0)
            return BEV_ERROR;
        copied += n;
    }
    c->out_copied = copied;
    return BEV_NEED_MORE;
}

/* The input filter is being freed with the connection. */
static void gw_dl_end(gw_conn *c);
static void gw_filter_free(void *ctx)
{
    gw_conn *c = ctx;
    gw_dl_end(c); /* a file body cut short by the connection's end */
    gw_conn_req_reset(c);
    c->filter = NULL;
    c->under = NULL;
    gw_conn_unref(c);
}

/* Shuts down the sockets of over-limit connections; evhttp then sees EOF and
 * frees them. Runs after evhttp has attached the socket to the bufferevent. */
static void gw_reject_cb(evutil_socket_t fd, short what, void *arg)
{
    mt_gateway *gw = arg;
    gw_conn *c = gw->rejects;
    gw->rejects = NULL;
    while (c) {
        gw_conn *next = c->next_reject;
        if (c->ssl) {
            int sfd = SSL_get_fd(c->ssl);
            if (sfd >= 0)
                shutdown(sfd, SHUT_RDWR);
        }
        gw_conn_unref(c);
        c = next;
    }
}

/* evhttp's bufferevent factory: one TLS server bufferevent per connection.
 * libevent falls back to a plaintext bufferevent when this returns NULL, so
 * failure here is fatal rather than a silent downgrade. */
static struct bufferevent *gw_bevcb(struct event_base *base, void *arg)
{
    mt_gateway *gw = arg;
    gw_conn *c = calloc(1, sizeof *c);
    SSL *ssl = c ? SSL_new(gw->ssl_ctx) : NULL;
    struct bufferevent *under = NULL, *bev = NULL;
    if (ssl)
        under = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                               BEV_OPT_CLOSE_ON_FREE);
    /* evhttp reads through gw_in_filter, which sees each request head before
     * evhttp does (see "Request heads"). */
    if (under)
        bev = bufferevent_filter_new(under, gw_in_filter, gw_out_filter,
                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                                     gw_filter_free, c);
    if (!bev) {
        mt_error("mesatee: out of memory creating a TLS connection; refusing to fall back "
                 "to plaintext, aborting");
        abort();
    }
    c->gw = gw;
    c->ssl = ssl;
    c->under = under;
    c->filter = bev;
    c->mode = GW_MODE_HEAD;
    c->dl_fd = -1;
    c->refs = 2; /* SSL ex_data + filter context */
    SSL_set_ex_data(ssl, g_conn_idx, c);
    bufferevent_setwatermark(under, EV_READ, 0, GW_UNDER_READ_HIGH);
    if (gw->stopping || gw->live >= gw->max_conns) {
        gw->rejected_total++;
        c->refs++;
        c->next_reject = gw->rejects;
        gw->rejects = c;
        event_active(gw->reject_ev, EV_TIMEOUT, 0);
    } else {
        c->counted = true;
        gw->live++;
    }
    return bev;
}

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */
/* ------------------------------------------------------------------------ */

static void gw_metrics_record(mt_gateway *gw, const char *route, int status, double secs)
{
    size_t i;
    for (i = 0; i < gw->n_series; i++)
        if (gw->series[i].status == status && !strcmp(gw->series[i].route, route))
            break;
    if (i == gw->n_series) {
        if (gw->n_series == GW_MAX_SERIES) {
            route = GW_OTHER_ROUTE; /* bounded cardinality: fold into "other" */
            for (i = 0; i < gw->n_series; i++)
                if (gw->series[i].status == status && !strcmp(gw->series[i].route, route))
                    break;
        }
        if (i == gw->n_series && gw->n_series < GW_MAX_SERIES) {
            snprintf(gw->series[i].route, sizeof gw->series[i].route, "%s", route);
            gw->series[i].status = status;
            gw->n_series++;
        }
    }
    if (i < gw->n_series)
        gw->series[i].count++;

    for (i = 0; i < gw->n_latency; i++)
        if (!strcmp(gw->latency[i].route, route))
            break;
    if (i == gw->n_latency && gw->n_latency < GW_MAX_SERIES) {
        snprintf(gw->latency[i].route, sizeof gw->latency[i].route, "%s", route);
        gw->n_latency++;
    }
    if (i < gw->n_latency) {
        gw->latency[i].sum_s += secs;
        gw->latency[i].count++;
    }
}

/* Appends a Prometheus label value with \, " and newline escaped. */
static void gw_add_label(struct evbuffer *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

static void gw_metrics_render(mt_gateway *gw, struct evbuffer *b)
{
    evbuffer_add_printf(b,
                        "# HELP mesatee_http_parked_requests Requests held until their task "
                        "ends (GET /v1/tasks/{id}?wait=).\n# TYPE mesatee_http_parked_requests "
                        "gauge\nmesatee_http_parked_requests %u\n# HELP "
                        "mesatee_http_parked_refused_total Waiting requests refused (503) "
                        "because too many were held.\n# TYPE mesatee_http_parked_refused_total "
                        "counter\nmesatee_http_parked_refused_total %llu\n",
                        gw->parked_n, (unsigned long long)gw->parked_full);
    evbuffer_add_printf(b, "# HELP mesatee_http_requests_total HTTP requests answered, by route "
                           "and status.\n# TYPE mesatee_http_requests_total counter\n");
    for (size_t i = 0; i < gw->n_series; i++) {
        evbuffer_add_printf(b, "mesatee_http_requests_total{route=\"");
        gw_add_label(b, gw->series[i].route);
        evbuffer_add_printf(b, "\",status=\"%d\"} %llu\n", gw->series[i].status,
                            (unsigned long long)gw->series[i].count);
    }
    evbuffer_add_printf(b, "# HELP mesatee_http_request_duration_seconds Time spent answering "
                           "requests, by route.\n"
                           "# TYPE mesatee_http_request_duration_seconds summary\n");
    for (size_t i = 0; i < gw->n_latency; i++) {
        evbuffer_add_printf(b, "mesatee_http_request_duration_seconds_sum{route=\"");
        gw_add_label(b, gw->latency[i].route);
        evbuffer_add_printf(b, "\"} %.6f\n", gw->latency[i].sum_s);
        evbuffer_add_printf(b, "mesatee_http_request_duration_seconds_count{route=\"");
        gw_add_label(b, gw->latency[i].route);
        evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)gw->latency[i].count);
    }
    evbuffer_add_printf(b,
                        "# HELP mesatee_http_connections Open HTTPS connections.\n"
                        "# TYPE mesatee_http_connections gauge\n"
                        "mesatee_http_connections %u\n"
                        "# HELP mesatee_http_connections_rejected_total Connections closed at "
                        "once because the connection limit was reached or the server was "
                        "stopping.\n"
                        "# TYPE mesatee_http_connections_rejected_total counter\n"
                        "mesatee_http_connections_rejected_total %llu\n"
                        "# HELP mesatee_audit_failures_total Audit entries that could be "
                        "neither appended nor spooled (their requests were answered 503).\n"
                        "# TYPE mesatee_audit_failures_total counter\n"
                        "mesatee_audit_failures_total %llu\n"
                        "# HELP mesatee_http_body_bytes_buffered Request body bytes held in "
                        "memory now (reserved at the request head).\n"
                        "# TYPE mesatee_http_body_bytes_buffered gauge\n"
                        "mesatee_http_body_bytes_buffered %zu\n"
                        "# HELP mesatee_http_slow_pending Requests of slow routes (password "
                        "hashing) queued or running on the gateway's worker threads, or "
                        "waiting for the audit group commit.\n"
                        "# TYPE mesatee_http_slow_pending gauge\n"
                        "mesatee_http_slow_pending %u\n",
                        gw->live, (unsigned long long)gw->rejected_total,
                        (unsigned long long)gw->audit_failures, gw->buffered, gw->jobs_pending);
    if (gw->commit_init) {
        pthread_mutex_lock(&gw->pool_mu);
        unsigned long long batches = gw->commit_batches, entries = gw->commit_entries;
        pthread_mutex_unlock(&gw->pool_mu);
        evbuffer_add_printf(b,
                            "# HELP mesatee_audit_group_commits_total Transactions of the audit "
                            "group committer (one fsync each).\n"
                            "# TYPE mesatee_audit_group_commits_total counter\n"
                            "mesatee_audit_group_commits_total %llu\n"
                            "# HELP mesatee_audit_group_entries_total Audit entries appended by "
                            "the group committer.\n"
                            "# TYPE mesatee_audit_group_entries_total counter\n"
                            "mesatee_audit_group_entries_total %llu\n",
                            batches, entries);
    }
    if (gw->be.metrics) {
        char *extra = gw->be.metrics(gw->be.ctx);
        if (extra) {
            size_t n = strlen(extra);
            evbuffer_add(b, extra, n);
            if (n && extra[n - 1] != '\n')
                evbuffer_add(b, "\n", 1);
            free(extra);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

/* Everything one request carries through the handler, for audit and metrics. */
typedef struct gw_req {
    mt_gateway *gw;
    struct evhttp_request *req;
    struct timespec t0;
    const char *method;         /* method name, "OTHER" for unknown */
    char action[GW_ACTION_LEN]; /* audit action "METHOD /path" */
    char route[GW_ROUTE_LEN];   /* metrics label */
    char object[80];
    const char *actor;
    bool audited; /* the backend wrote the entry in the change's transaction */
    char request_id[17]; /* X-Request-Id and the access log */
} gw_req;

static const char *gw_reason(int status)
{
    return mt_http_reason(status);
}

static double gw_elapsed(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void gw_on_complete(struct evhttp_request *req, void *arg)
{
    mt_gateway *gw = arg;
    gw_conn *c = gw_conn_of_request(req);
    if (c && c->responding) {
        c->responding = false;
        gw->in_flight--;
    }
    if (c && c->under && c->mode == GW_MODE_HOLD) {
        /* The request is answered: the next head may come. Bytes that arrived
         * meanwhile wait in the TLS bufferevent; run the filter over them.
         * (Only in HOLD: the filter hands evhttp one request at a time, so a
         * completion in any other mode is not the one it holds for, and its
         * state, e.g. a streaming upload, must stay.) */
        gw_conn_req_reset(c);
        {
            c->mode = GW_MODE_HEAD;
            if (evbuffer_get_length(bufferevent_get_input(c->under)))
                bufferevent_trigger(c->under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
        }
    }
    gw_maybe_finish(gw);
}

static void gw_evbuffer_free_cb(const void *data, size_t len, void *arg)
{
    free((void *)data);
}

/* For JSON answers: they may carry a token or a key (login, key release). */
static void gw_evbuffer_wipe_free_cb(const void *data, size_t len, void *arg)
{
    (void)arg;
    mt_wipe((void *)data, len);
    free((void *)data);
}

/* Audits, counts, sets the headers and marks the response in flight: the
 * part of answering that comes before the bytes (gw_finish, gw_finish_fd).
 * Returns the connection's filter bufferevent (NULL if gone). */
static struct bufferevent *gw_finish_begin(gw_req *r, int status, const char *content_type)
{
    mt_gateway *gw = r->gw;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    if (content_type)
        evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
    if (gw->stopping)
        evhttp_add_header(h, "Connection", "close");
    evhttp_add_header(h, "X-Request-Id", r->request_id);

    double secs = gw_elapsed(&r->t0);
    if (mt_trace_on() && !strcmp(r->route, "POST /v1/tasks/{id}/invoke") &&
        !strncmp(r->object, "task:", 5)) /* MESATEE_TRACE_TASKS (mt_trace.h) */
        mt_trace_mark(r->object + 5, "gw_reply");
    gw_metrics_record(gw, r->route, status, secs);
    mt_log_access(&(mt_log_access_rec){r->request_id, r->method, r->route,
                                       strcmp(r->actor, "-") ? r->actor : NULL, status,
                                       secs * 1000.0});

    gw_conn *c = gw_conn_of_request(r->req);
    if (c && !c->responding) {
        c->responding = true;
        gw->in_flight++;
        evhttp_request_set_on_complete_cb(r->req, gw_on_complete, gw);
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    return evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
}

/* The request's audit entry, unless the backend wrote it with its change
 * or the committer made it durable (one try per request). True when it is
 * durable (in the chain or the local audit spool, be.audit); false when it
 * could be neither appended nor spooled (the spool is full): the request is
 * then not served but answered 503 (gw_audit_refusal), fail closed. */
static bool gw_audit(gw_req *r, int status)
{
    mt_gateway *gw = r->gw;
    if (!gw->be.audit || r->audited)
        return true;
    r->audited = true;
    mt_err err;
    mt_err_clear(&err);
    if (gw->be.audit(gw->be.ctx, r->actor, r->action, r->object[0] ? r->object : "-", status,
                     &err) == MT_OK)
        return true;
    gw->audit_failures++;
    mt_error("mesatee: audit entry for \"%s\" (%d) could not be recorded (%s): answered 503 "
             "instead",
             r->action, status, err.msg);
    return false;
}

#define GW_AUDIT_REFUSAL                                                                          \
    "the audit log cannot be written now (the store is unreachable and the local audit spool "  \
    "is full): the request was not served; retry later"

static void gw_finish_begin_send(gw_req *r, int status, const char *content_type,
                                 struct evbuffer *body);

/* 503 for a request whose audit entry could not be recorded; its own entry
 * is not attempted again (it could not be recorded either). */
static void gw_audit_refusal(gw_req *r)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", mt_status_name(MT_EUNAVAIL),
                          "message", GW_AUDIT_REFUSAL);
    if (j && strstr(r->action, " /v1/transit/")) /* Vault clients read "errors" */
        json_object_set_new(j, "errors", json_pack("[s]", GW_AUDIT_REFUSAL));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct evbuffer *b = evbuffer_new();
    if (b && text)
        evbuffer_add(b, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "5");
    gw_finish_begin_send(r, 503, "application/json", b);
}

/* Audits, counts and sends. body (may be NULL) is moved into the reply.
 * Every request ends here (or in gw_finish_fd) exactly once. */
static void gw_finish(gw_req *r, int status, const char *content_type, struct evbuffer *body)
{
    if (!gw_audit(r, status)) {
        if (body)
            evbuffer_free(body);
        gw_audit_refusal(r);
        return;
    }
    gw_finish_begin_send(r, status, content_type, body);
}

static void gw_finish_begin_send(gw_req *r, int status, const char *content_type,
                                 struct evbuffer *body)
{
    struct bufferevent *fbev = gw_finish_begin(r, status, content_type);
    evhttp_send_reply(r->req, status, gw_reason(status), body);
    if (body)
        evbuffer_free(body);
    /* libevent 2.1's filter does not pass on output that was added while
     * writing was disabled once writing is enabled (evhttp adds the response,
     * then enables writing): push it to the TLS bufferevent now. Only the
     * copy moves (gw_out_filter), so evhttp's write callback cannot run here. */
    if (fbev)
        bufferevent_flush(fbev, EV_WRITE, BEV_NORMAL);
}

static void gw_finish_json(gw_req *r, int status, json_t *json)
{
    struct evbuffer *b = evbuffer_new();
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    if (!b || !text) {
        free(text);
        if (b)
            evbuffer_free(b);
        evhttp_send_error(r->req, 500, "Internal Server Error");
        return;
    }
    evbuffer_add_reference(b, text, strlen(text), gw_evbuffer_wipe_free_cb, NULL);
    gw_finish(r, status, "application/json", b);
}

/* Sends {"error":{"code":mt_status_name(code),"message":msg}} with status. */
static void gw_finish_error(gw_req *r, int status, mt_status code, const char *msg)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", mt_status_name(code), "message", msg);
    if (j && strstr(r->action, " /v1/transit/")) /* Vault clients read "errors" */
        json_object_set_new(j, "errors", json_pack("[s]", msg));
    gw_finish_json(r, status, j);
    json_decref(j);
}

static void gw_finish_text(gw_req *r, int status, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, text, strlen(text));
    gw_finish(r, status, "text/plain; charset=utf-8", b);
}

/* ------------------------------------------------------------------------ */
/* File bodies                                                              */
/* ------------------------------------------------------------------------ */

/* A download (mt_response.has_raw_fd) is answered with its Content-Length
 * and no body; the output filter (gw_out_filter) then appends the body in
 * pieces of GW_FILE_PIECE bytes read from the descriptor the backend
 * hashed, each once the previous one has been written to the TLS
 * connection, so a connection holds well under a megabyte whatever the
 * file's size, and evhttp sees its response written (and the request
 * complete) only after the last piece. The pieces are hashed as they go;
 * the last one is sent only if the whole matches the SHA-256 the backend
 * checked, otherwise (the host changed the file in between) the connection
 * is cut and the client sees a short body. */

static void gw_dl_end(gw_conn *c)
{
    if (c->dl_fd >= 0)
        close(c->dl_fd);
    c->dl_fd = -1;
    EVP_MD_CTX_free(c->dl_md);
    c->dl_md = NULL;
}

/* Appends the next piece of the file body to out. 1: appended; 0: the body
 * is complete (descriptor closed); -1: failed (connection to be cut). */
static int gw_dl_piece(gw_conn *c, struct evbuffer *out)
{
    if (c->dl_off >= c->dl_len) {
        gw_dl_end(c);
        return 0;
    }
    uint64_t left = c->dl_len - c->dl_off;
    size_t want = left < GW_FILE_PIECE ? (size_t)left : GW_FILE_PIECE;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1 || v.iov_len < want) {
        mt_error("mesatee: out of memory sending a file body; connection closed");
        goto fail;
    }
    for (size_t got = 0; got < want;) {
        ssize_t n = pread(c->dl_fd, (uint8_t *)v.iov_base + got, want - got,
                          (off_t)(c->dl_off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            mt_error("mesatee: reading a file body failed (%s); connection closed",
                     n < 0 ? strerror(errno) : "the file became shorter");
            goto fail;
        }
        got += (size_t)n;
    }
    if (EVP_DigestUpdate(c->dl_md, v.iov_base, want) != 1)
        goto fail;
    if (c->dl_off + want == c->dl_len && c->dl_sha[0]) {
        uint8_t d[32];
        unsigned int dl = 0;
        char hex[65];
        if (EVP_DigestFinal_ex(c->dl_md, d, &dl) != 1 || dl != 32)
            goto fail;
        mt_hex_encode(d, 32, hex);
        if (!mt_ct_equal(hex, c->dl_sha, 64)) {
            mt_error("mesatee: a file changed on disk after its integrity check while it was "
                     "sent (the object directory was modified); connection closed before "
                     "its last bytes");
            goto fail;
        }
    }
    v.iov_len = want;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        goto fail;
    c->dl_off += want;
    return 1;
fail:
    gw_dl_end(c);
    if (c->ssl) {
        int sfd = SSL_get_fd(c->ssl);
        if (sfd >= 0)
            shutdown(sfd, SHUT_RDWR);
    }
    return -1;
}

/* Answers with len bytes of fd (owned) as the body; sha: hex SHA-256 they
 * must have ("" = unchecked). */
static void gw_finish_fd(gw_req *r, int status, int fd, uint64_t len, const char *sha)
{
    if (!gw_audit(r, status)) { /* before any header of the body is set */
        close(fd);
        gw_audit_refusal(r);
        return;
    }
    gw_conn *c = gw_conn_of_request(r->req);
    if (len == 0) {
        close(fd);
        gw_finish(r, status, "application/octet-stream", NULL);
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!c || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || c->dl_fd >= 0) {
        EVP_MD_CTX_free(md);
        close(fd);
        gw_finish_error(r, 500, MT_ENOMEM, "out of memory sending the response");
        return;
    }
    char cl[24];
    snprintf(cl, sizeof cl, "%llu", (unsigned long long)len);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Length", cl);
    c->dl_fd = fd;
    c->dl_off = 0;
    c->dl_len = len;
    c->dl_md = md;
    snprintf(c->dl_sha, sizeof c->dl_sha, "%s", sha && strlen(sha) == 64 ? sha : "");
    gw_finish(r, status, "application/octet-stream", NULL);
}

/* ------------------------------------------------------------------------ */
/* Request handling                                                         */
/* ------------------------------------------------------------------------ */

static const char *gw_method_name(enum evhttp_cmd_type cmd, bool *supported)
{
    *supported = true;
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        break;
    }
    *supported = false;
    switch (cmd) {
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

/* Copies s into out as printable ASCII (others become '?'), truncated. */
static void gw_printable(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out[n] = '\0';
}

static void gw_set_action(gw_req *r, const char *path)
{
    char p[GW_ACTION_LEN];
    gw_printable(p, sizeof p, path);
    snprintf(r->action, sizeof r->action, "%s %.200s", r->method, p);
}

/* Decodes the request target's path into *out (heap) and its raw query into
 * *query (heap or NULL). Refuses NUL bytes, control characters, ".." segments,
 * relative and overlong paths. */
static mt_status gw_decode_target(const char *target, char **out, char **query, mt_err *err)
{
    *out = NULL;
    *query = NULL;
    if (!target || target[0] != '/')
        return mt_err_set(err, MT_EINVAL, "request target must be an absolute path");
    if (strlen(target) > GW_MAX_PATH)
        return mt_err_set(err, MT_EINVAL, "request target longer than %d bytes", GW_MAX_PATH);
    struct evhttp_uri *uri = evhttp_uri_parse(target);
    if (!uri)
        return mt_err_set(err, MT_EINVAL, "request target is not a valid URI path");
    const char *raw = evhttp_uri_get_path(uri);
    const char *q = evhttp_uri_get_query(uri);
    size_t len = 0;
    char *path = evhttp_uridecode(raw && *raw ? raw : "/", 0, &len);
    mt_status st = MT_OK;
    if (!path) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory decoding the request path");
        goto out;
    }
    if (strlen(path) != len) {
        st = mt_err_set(err, MT_EINVAL, "request path contains a NUL byte");
        goto out;
    }
    if (path[0] != '/') {
        st = mt_err_set(err, MT_EINVAL, "request path must start with '/'");
        goto out;
    }
    for (const char *s = path; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            st = mt_err_set(err, MT_EINVAL, "request path contains a control character");
            goto out;
        }
    }
    for (const char *s = path; (s = strstr(s, "..")) != NULL; s += 2) {
        bool seg_start = s[-1] == '/';
        bool seg_end = s[2] == '/' || s[2] == '\0';
        if (seg_start && seg_end) {
            st = mt_err_set(err, MT_EINVAL, "request path must not contain '..' segments");
            goto out;
        }
    }
    if (q) {
        *query = strdup(q);
        if (!*query) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory copying the query");
            goto out;
        }
    }
    *out = path;
    path = NULL;
out:
    free(path);
    evhttp_uri_free(uri);
    return st;
}

/* The token of an "Authorization: Bearer <token>" value; NULL if absent or
 * malformed. */
static const char *gw_bearer_value(const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    if (n == 0 || n > GW_MAX_TOKEN)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7f)
            return NULL;
    return t;
}

/* Parses "Authorization: Bearer <token>"; NULL if absent or malformed. */
static const char *gw_bearer(struct evhttp_request *req)
{
    return gw_bearer_value(
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"));
}

/* ------------------------------------------------------------------------ */
/* Request heads                                                            */
/* ------------------------------------------------------------------------ */
/* evhttp (libevent 2.1) reads a whole body before any callback of ours runs,
 * with one body limit for every route. So each connection's bytes pass
 * through gw_in_filter, a bufferevent filter between TLS and evhttp, which
 * takes each request head (request line and headers, up to the blank line)
 * before evhttp sees it and decides, before any body byte is read:
 *  - a head that is not strictly well-formed HTTP/1.x, has Transfer-Encoding
 *    (411: bodies need a Content-Length) or repeats Content-Length or
 *    Authorization is refused;
 *  - a body on a route that needs a token is refused without a valid token
 *    (401); a body over the route's limit is refused (413), and routes
 *    without a token take at most GW_UNAUTH_MAX_BODY;
 *  - a body that would take the bodies held in memory over max_buffered is
 *    refused (503, Retry-After);
 *  - a streamed route's body (uploads) goes to the backend's upload sink as it
 *    arrives; evhttp gets the head (with Content-Length: 0) when it is done;
 *  - otherwise the head and exactly Content-Length body bytes go to evhttp,
 *    and further bytes wait until the request is answered.
 * A refused request reaches evhttp as GW_SYNTH_HEAD; the request callback
 * answers it from the recorded refusal (audited and metered like any
 * request), with "Connection: close", and the rest of the body is dropped.
 * The head is parsed strictly so that evhttp, which parses it again, reads
 * the same method, target and Content-Length. */

/* Records a refusal and hands evhttp the synthetic head; drops the rest. */
static void gw_refuse(gw_conn *c, struct evbuffer *dst, int status, mt_status code,
                      unsigned retry_after, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void gw_refuse(gw_conn *c, struct evbuffer *dst, int status, mt_status code,
                      unsigned retry_after, const char *fmt, ...)
{
    bool www = c->rej_www_auth;
    gw_conn_req_reset(c);
    c->rej_www_auth = www;
    c->rej_status = status;
    c->rej_code = code;
    c->rej_retry_after = retry_after;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->rej_msg, sizeof c->rej_msg, fmt, ap);
    va_end(ap);
    if (c->drain_cl && status < 500) {
        /* Closing with unread bytes makes the kernel send a reset that can
         * destroy the answer before the client reads it: for a client error
         * a small body is read (and dropped, never held) first. "Busy"
         * answers (5xx) go at once: the client is to back off, not send. */
        c->remaining = c->drain_cl;
        c->drain_cl = 0;
        c->mode = GW_MODE_DRAIN;
        return;
    }
    evbuffer_add(dst, GW_SYNTH_HEAD, strlen(GW_SYNTH_HEAD));
    c->mode = GW_MODE_DISCARD;
}

static bool gw_is_builtin(const char *path)
{
    return !strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics");
}

#define GW_ALLOW_ALL "GET, POST, PUT, DELETE"

/* The Allow value of path into out: "GET" for the built-in paths, the
 * backend's methods otherwise; false (out = every method we serve) when no
 * route has that path (path NULL: not decoded). */
static bool gw_allow(mt_gateway *gw, const char *path, char *out, size_t cap)
{
    if (path && gw_is_builtin(path)) {
        snprintf(out, cap, "GET");
        return true;
    }
    if (path && gw->be.allow && gw->be.allow(gw->be.ctx, path, out, cap) && out[0])
        return true;
    snprintf(out, cap, "%s", GW_ALLOW_ALL);
    return false;
}

/* True if method is one of the comma-separated methods of allow. */
static bool gw_method_in(const char *allow, const char *method)
{
    size_t m = strlen(method);
    for (const char *p = allow; *p;) {
        size_t n = strcspn(p, ",");
        if (n == m && !strncmp(p, method, m))
            return true;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

/* Gives evhttp a head with a body, without its Expect line: "100 Continue"
 * goes to the client from here (evhttp would add it to the filter's output
 * while writing is disabled, where libevent 2.1 leaves it). */
static void gw_pass_head(gw_conn *c, const char *h, size_t n, const mt_http_head *hd,
                         struct evbuffer *dst)
{
    if (!hd->ex_end) {
        evbuffer_add(dst, h, n);
        return;
    }
    evbuffer_add(dst, h, hd->ex_at);
    evbuffer_add(dst, h + hd->ex_end, n - hd->ex_end);
    if (hd->expect_continue && c->under)
        bufferevent_write(c->under, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* The principal c's last head check found, when token is the token it
 * checked (its SHA-256 is the principal's token_id): *who receives it and
 * it is used up. The check was of this request's own head (a head resets
 * it; with pipelined requests at worst of a later head on the same
 * connection with the same token, checked just as recently). Otherwise
 * (token NULL: not wanted) false: the caller checks the token in the
 * store. */
static bool gw_pre_authed(gw_conn *c, const char *token, mt_principal *who)
{
    if (!c || !c->pre_authed)
        return false;
    c->pre_authed = false;
    uint8_t md[32];
    unsigned int ml = 0;
    char hex[65];
    bool same =
        token && EVP_Digest(token, strlen(token), md, &ml, EVP_sha256(), NULL) == 1 && ml == 32;
    if (same) {
        mt_hex_encode(md, 32, hex);
        same = strlen(c->pre_who.token_id) == 64 && !CRYPTO_memcmp(hex, c->pre_who.token_id, 64);
    }
    if (same)
        *who = c->pre_who;
    mt_wipe(&c->pre_who, sizeof c->pre_who);
    return same;
}

/* Decides what to do with the head h (n bytes, NUL-terminated); see above. */
static void gw_decide(gw_conn *c, const char *h, size_t n, struct evbuffer *dst)
{
    mt_gateway *gw = c->gw;
    mt_http_head hd;
    snprintf(c->rej_method, sizeof c->rej_method, "OTHER");
    snprintf(c->rej_actor, sizeof c->rej_actor, "-");
    snprintf(c->rej_action, sizeof c->rej_action, "OTHER -");
    c->rej_www_auth = false;
    c->pre_authed = false;
    if (!mt_http_head_parse(h, n, &hd)) {
        gw_refuse(c, dst, 400, MT_EINVAL, 0, "malformed HTTP request head");
        return;
    }
    snprintf(c->rej_method, sizeof c->rej_method, "%s", hd.method);
    static const char *const known[] = {"GET",     "POST",  "PUT",     "DELETE", "HEAD",
                                        "OPTIONS", "TRACE", "CONNECT", "PATCH"};
    bool is_known = false;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        is_known = is_known || !strcmp(hd.method, known[k]);
    if (!is_known) {
        gw_refuse(c, dst, 405, MT_EINVAL, 0,
                  "method is not supported; use GET, POST, PUT or DELETE");
        return;
    }
    char target[GW_MAX_PATH + 1];
    char *path = NULL, *query = NULL;
    mt_err err;
    mt_err_clear(&err);
    mt_status st = MT_EINVAL;
    if (hd.target_len <= GW_MAX_PATH) {
        memcpy(target, hd.target, hd.target_len);
        target[hd.target_len] = '\0';
        st = gw_decode_target(target, &path, &query, &err);
    } else {
        snprintf(target, sizeof target, "%.*s", 200, hd.target);
    }
    char p[GW_ACTION_LEN];
    gw_printable(p, sizeof p, st == MT_OK ? path : target);
    snprintf(c->rej_action, sizeof c->rej_action, "%s %.200s", hd.method, p);
    free(query);

    if (hd.dup) {
        gw_refuse(c, dst, 400, MT_EINVAL, 0, "repeated Content-Length, Authorization or Expect header");
        goto out;
    }
    if (hd.has_te) {
        gw_refuse(c, dst, 411, MT_EINVAL, 0,
                  "Transfer-Encoding is not accepted; send the body with a Content-Length");
        goto out;
    }
    {
        /* A method the path does not take: 405 with the path's Allow, before
         * any token check or body byte (a head without a body is answered
         * the same way by the request callback). */
        char allow[64];
        bool path_known = gw_allow(gw, st == MT_OK ? path : NULL, allow, sizeof allow);
        if (path_known && hd.has_cl && hd.cl > 0 && !gw_method_in(allow, hd.method)) {
            c->drain_cl = hd.cl <= GW_UNAUTH_MAX_BODY ? hd.cl : 0;
            gw_refuse(c, dst, 405, MT_EINVAL, 0, "method %.16s is not allowed on this path; use %s",
                      hd.method, allow);
            snprintf(c->rej_allow, sizeof c->rej_allow, "%s", allow);
            goto out;
        }
    }
    /* From here a refusal reads and drops a small body before it answers
     * (gw_refuse); a larger one is answered at once and the connection closed. */
    c->drain_cl = hd.has_cl && hd.cl <= GW_UNAUTH_MAX_BODY ? hd.cl : 0;
    if (!hd.has_cl || hd.cl == 0) {
        /* No body: evhttp and the request callback do the rest. */
        evbuffer_add(dst, h, n);
        c->mode = GW_MODE_HOLD;
        goto out;
    }
    bool supported = !strcmp(hd.method, "GET") || !strcmp(hd.method, "POST") ||
                     !strcmp(hd.method, "PUT") || !strcmp(hd.method, "DELETE");
    if (!supported) {
        /* evhttp reads no body for HEAD or TRACE: the body's bytes would be
         * parsed as a next request that this filter never saw (smuggling
         * past every check here). No route takes a body on other methods. */
        gw_refuse(c, dst, 405, MT_EINVAL, 0,
                  "method not allowed here (with a body): use GET, POST, PUT or DELETE");
        goto out;
    }
    if (st != MT_OK || gw_is_builtin(path)) {
        if (hd.cl > GW_NOBODY_MAX_BODY) {
            gw_refuse(c, dst, 413, MT_ETOOBIG, 0,
                      "request body of %llu bytes exceeds the limit of %d bytes here",
                      (unsigned long long)hd.cl, GW_NOBODY_MAX_BODY);
            goto out;
        }
        gw_pass_head(c, h, n, &hd, dst);
        c->mode = GW_MODE_BODY;
        c->remaining = hd.cl;
        goto out;
    }
    size_t limit = gw->be.max_body(gw->be.ctx, hd.method, path);
    bool anon = false;
    if (gw->be.needs_auth(gw->be.ctx, hd.method, path)) {
        char av[GW_MAX_TOKEN + 16];
        const char *token = NULL;
        if (hd.auth && hd.auth_len < sizeof av) {
            memcpy(av, hd.auth, hd.auth_len);
            av[hd.auth_len] = '\0';
            token = gw_bearer_value(av);
        }
        /* A small body of a pooled route (the transit operations): its token
         * is checked by the request thread before anything handles it, not
         * here on the loop (where the check would take the store lock the
         * request threads hold). Until then its bytes count as
         * unauthenticated (a quarter of max_buffered); when that quota is
         * full, or the client asked to hear a refusal before sending
         * (Expect: 100-continue), the token is checked here as before. */
        size_t anon_cap = gw->max_buffered / 4;
        bool defer = token && gw->req_n > 0 && gw->be.pooled &&
                     gw->be.pooled(gw->be.ctx, hd.method, path) && !hd.expect_continue &&
                     hd.cl <= GW_DEFER_AUTH_MAX &&
                     hd.cl <= anon_cap - (gw->buffered_anon < anon_cap ? gw->buffered_anon
                                                                       : anon_cap) &&
                     !(gw->be.streams_body && gw->be.streams_body(gw->be.ctx, hd.method, path));
        mt_principal who;
        memset(&who, 0, sizeof who);
        mt_err aerr;
        mt_err_clear(&aerr);
        mt_status ast = defer   ? MT_OK
                        : token ? gw->be.authenticate(gw->be.ctx, token, &who, &aerr)
                                : MT_EAUTH;
        mt_wipe(av, sizeof av);
        if (defer) {
            anon = true;
        } else if (ast != MT_OK) {
            c->rej_www_auth = true;
            gw_refuse(c, dst, mt_status_http(ast), ast, 0, "%s",
                      !token ? "missing or malformed 'Authorization: Bearer <token>' header; "
                               "log in with POST /v1/auth/login"
                      : aerr.msg[0] ? aerr.msg
                                    : "token is invalid, expired or revoked; log in again");
            goto out;
        }
        if (!defer) {
            who.username[sizeof who.username - 1] = '\0';
            snprintf(c->rej_actor, sizeof c->rej_actor, "%s", who.username);
            c->pre_who = who;
            c->pre_authed = true;
        }
    } else {
        anon = true;
        if (limit > GW_UNAUTH_MAX_BODY)
            limit = GW_UNAUTH_MAX_BODY;
    }
    if (hd.cl > limit) {
        gw_refuse(c, dst, 413, MT_ETOOBIG, 0,
                  "request body of %llu bytes exceeds the limit of %zu bytes for %.120s",
                  (unsigned long long)hd.cl, limit, c->rej_action);
        goto out;
    }
    if (gw->be.streams_body && gw->be.streams_body(gw->be.ctx, hd.method, path)) {
        mt_err uerr;
        mt_err_clear(&uerr);
        mt_status ust = gw->be.upload_begin(gw->be.ctx, &c->upload, &uerr);
        c->held = ust == MT_OK ? evbuffer_new() : NULL;
        if (!c->held) {
            mt_error("mesatee: cannot start an upload for %s: %s", c->rej_action, uerr.msg);
            gw_refuse(c, dst, 503, MT_EUNAVAIL, 5, "cannot store the upload now; retry later");
            goto out;
        }
        /* The head without its Content-Length and Expect lines, then
         * "Content-Length: 0": evhttp gets no body, the handler the sink. */
        size_t cut[2][2] = {{hd.cl_at, hd.cl_end}, {hd.ex_at, hd.ex_end}};
        if (cut[1][1] && cut[1][0] < cut[0][0]) {
            size_t t0 = cut[0][0], t1 = cut[0][1];
            cut[0][0] = cut[1][0];
            cut[0][1] = cut[1][1];
            cut[1][0] = t0;
            cut[1][1] = t1;
        }
        size_t at = 0;
        for (int k = 0; k < 2; k++) {
            if (!cut[k][1])
                continue;
            evbuffer_add(c->held, h + at, cut[k][0] - at);
            at = cut[k][1];
        }
        evbuffer_add(c->held, h + at, n - 2 - at);
        evbuffer_add(c->held, "Content-Length: 0\r\n\r\n", 21);
        if (hd.expect_continue && c->under)
            bufferevent_write(c->under, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->mode = GW_MODE_STREAM;
        c->remaining = hd.cl;
        goto out;
    }
    if (hd.cl >
        gw->max_buffered - (gw->buffered < gw->max_buffered ? gw->buffered : gw->max_buffered)) {
        mt_warn("mesatee: %zu bytes of request bodies in memory; refusing %llu more (503)",
                gw->buffered, (unsigned long long)hd.cl);
        gw_refuse(c, dst, 503, MT_EUNAVAIL, 1,
                  "the server is holding too many request bodies; retry shortly");
        goto out;
    }
    size_t anon_cap = gw->max_buffered / 4;
    if (anon && hd.cl > anon_cap - (gw->buffered_anon < anon_cap ? gw->buffered_anon : anon_cap)) {
        mt_warn("mesatee: %zu bytes of unauthenticated request bodies in memory; refusing "
                "%llu more (503)",
                gw->buffered_anon, (unsigned long long)hd.cl);
        gw_refuse(c, dst, 503, MT_EUNAVAIL, 1,
                  "the server is holding too many unauthenticated request bodies; retry "
                  "shortly");
        goto out;
    }
    c->reserved = (size_t)hd.cl;
    gw->buffered += c->reserved;
    if (anon) {
        c->reserved_anon = true;
        gw->buffered_anon += c->reserved;
    }
    gw_pass_head(c, h, n, &hd, dst);
    c->mode = GW_MODE_BODY;
    c->remaining = hd.cl;
out:
    c->drain_cl = 0;
    free(path);
}

/* Writes up to `remaining` bytes of src to the upload sink. */
static enum bufferevent_filter_result gw_stream(gw_conn *c, struct evbuffer *src,
                                                struct evbuffer *dst)
{
    mt_gateway *gw = c->gw;
    bool any = false;
    if (!c->upload || !c->held) {
        /* the request this body belonged to is gone: never write anywhere */
        gw_refuse(c, dst, 500, MT_EINTERNAL, 0, "internal error: upload state lost");
        return BEV_OK;
    }
    while (c->remaining && evbuffer_get_length(src)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(src, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        size_t k = v.iov_len < c->remaining ? v.iov_len : (size_t)c->remaining;
        mt_err err;
        mt_err_clear(&err);
        mt_status st = gw->be.upload_write(c->upload, v.iov_base, k, &err);
        evbuffer_drain(src, k);
        any = true;
        if (st != MT_OK) {
            mt_error("mesatee: storing an upload failed for %s: %s", c->rej_action, err.msg);
            if (st == MT_ETOOBIG)
                gw_refuse(c, dst, 507, MT_ETOOBIG, 0, "no space left to store the upload");
            else
                gw_refuse(c, dst, 500, MT_EIO, 0, "storing the upload failed; see the server log");
            return BEV_OK;
        }
        c->remaining -= k;
        c->streamed += k;
    }
    if (c->remaining == 0) {
        evbuffer_add_buffer(dst, c->held);
        c->mode = GW_MODE_HOLD;
        return BEV_OK;
    }
    return any ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result gw_in_filter(struct evbuffer *src, struct evbuffer *dst,
                                                   ev_ssize_t lim, enum bufferevent_flush_mode m,
                                                   void *ctx)
{
    (void)lim;
    (void)m;
    gw_conn *c = ctx;
    size_t avail = evbuffer_get_length(src);
    switch (c->mode) {
    case GW_MODE_DISCARD:
        evbuffer_drain(src, avail);
        return BEV_NEED_MORE;
    case GW_MODE_DRAIN: {
        size_t k = avail < c->remaining ? avail : (size_t)c->remaining;
        evbuffer_drain(src, k);
        c->remaining -= k;
        if (c->remaining)
            return BEV_NEED_MORE;
        evbuffer_add(dst, GW_SYNTH_HEAD, strlen(GW_SYNTH_HEAD));
        c->mode = GW_MODE_DISCARD;
        return BEV_OK;
    }
    case GW_MODE_HOLD:
        return BEV_NEED_MORE;
    case GW_MODE_BODY: {
        size_t k = avail < c->remaining ? avail : (size_t)c->remaining;
        if (k == 0)
            return BEV_NEED_MORE;
        evbuffer_remove_buffer(src, dst, k);
        c->remaining -= k;
        if (c->remaining == 0)
            c->mode = GW_MODE_HOLD;
        return BEV_OK;
    }
    case GW_MODE_STREAM:
        return gw_stream(c, src, dst);
    case GW_MODE_HEAD:
        break;
    }
    if (avail == 0)
        return BEV_NEED_MORE;
    struct evbuffer_ptr end = evbuffer_search(src, "\r\n\r\n", 4, NULL);
    if (end.pos < 0 && avail <= GW_MAX_HEADERS)
        return BEV_NEED_MORE;
    if (end.pos < 0 || (size_t)end.pos + 4 > GW_MAX_HEADERS) {
        snprintf(c->rej_method, sizeof c->rej_method, "OTHER");
        snprintf(c->rej_actor, sizeof c->rej_actor, "-");
        snprintf(c->rej_action, sizeof c->rej_action, "OTHER -");
        gw_refuse(c, dst, 431, MT_ETOOBIG, 0, "request head longer than %d bytes", GW_MAX_HEADERS);
        evbuffer_drain(src, avail);
        return BEV_OK;
    }
    size_t n = (size_t)end.pos + 4;
    char *h = malloc(n + 1);
    if (!h)
        return BEV_ERROR;
    evbuffer_remove(src, h, n);
    h[n] = '\0';
    char *vh = NULL;
    size_t vn = 0;
    if (mt_vault_head_rewrite(h, n, &vh, &vn)) { /* Vault clients on /v1/transit/ */
        mt_wipe(h, n);
        free(h);
        h = vh;
        n = vn;
    }
    gw_decide(c, h, n, dst);
    mt_wipe(h, n); /* may hold a token */
    free(h);
    return BEV_OK;
}

/* True if token (NULL: none was sent) is the /metrics token. */
static bool gw_metrics_token_ok(const mt_gateway *gw, const char *token)
{
    if (!token)
        return false;
    unsigned char h[32];
    unsigned int hl = 0;
    if (EVP_Digest(token, strlen(token), h, &hl, EVP_sha256(), NULL) != 1 || hl != sizeof h)
        return false;
    return CRYPTO_memcmp(h, gw->metrics_token_sha, sizeof h) == 0;
}

static void gw_serve_builtin(gw_req *r, const char *path)
{
    mt_gateway *gw = r->gw;
    snprintf(r->route, sizeof r->route, "GET %s", path);
    /* Probes and scrapes come every few seconds for months: they are counted
     * (mesatee_http_requests_total{route="GET /healthz"} etc.), not appended
     * to the audit hash chain one entry each (docs/operations.md). */
    r->audited = true;
    if (!strcmp(path, "/healthz")) {
        gw_finish_text(r, 200, "ok\n");
    } else if (!strcmp(path, "/readyz")) {
        bool ready = !gw->be.ready || gw->be.ready(gw->be.ctx);
        gw_finish_text(r, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
    } else if (gw->metrics_token_set && !gw_metrics_token_ok(gw, gw_bearer(r->req))) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
                          "Bearer realm=\"metrics\"");
        gw_finish_error(r, 401, MT_EAUTH,
                        "/metrics needs 'Authorization: Bearer <token>' with the token of "
                        "the server's --metrics-token-file");
    } else {
        struct evbuffer *b = evbuffer_new();
        if (b)
            gw_metrics_render(gw, b);
        gw_finish(r, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    }
}

/* One request for the backend, with copies of everything handle reads, so
 * that it can run on a worker thread (slow routes) while the loop goes on. */
struct gw_job {
    gw_job *next;
    gw_req r;
    char *path;
    char *query;
    uint8_t *body; /* copy (slow routes) or NULL */
    const uint8_t *body_ref;
    size_t body_len;
    mt_upload *upload; /* owned by the job from here on */
    mt_principal who;
    bool authed;
    char peer[64];
    mt_response resp;
    bool audit_later;    /* mt_request.audit_later */
    bool commit_wait;    /* its audit entry goes through the committer */
    bool defer_sync;     /* mt_request.defer_sync */
    bool sync_only;      /* commit_wait for its change's sync only (resp.needs_sync) */
    bool pooled;         /* handled on a request thread (be.pooled) */
    char *token;         /* pooled: the bearer token a request thread checks */
    mt_status auth_rc;   /* pooled: authentication failed (status in resp.status) */
    char auth_msg[MT_ERR_MSG_MAX]; /* ... and why */
    char *json_text;     /* pooled: resp.json serialised on the request thread */
    mt_status commit_rc; /* the committer's result for it */
    char commit_msg[MT_ERR_MSG_MAX];
    int64_t park_deadline_ms; /* parked: answer at the latest then (mt_mono_ms) */
    uint64_t park_seq; /* be.task_seq before its last handle */
};

static void gw_job_free(gw_job *j)
{
    if (!j)
        return;
    if (j->upload)
        j->r.gw->be.upload_free(j->upload);
    if (j->body) {
        mt_wipe(j->body, j->body_len); /* may hold a password */
        free(j->body);
    }
    free(j->path);
    free(j->query);
    if (j->token) {
        mt_wipe(j->token, strlen(j->token));
        free(j->token);
    }
    if (j->json_text) { /* may carry a key (datakey) */
        mt_wipe(j->json_text, strlen(j->json_text));
        free(j->json_text);
    }
    mt_wipe(&j->who, sizeof j->who);
    free(j);
}

static void gw_job_handle(gw_job *j)
{
    mt_gateway *gw = j->r.gw;
    mt_request rq = {
        .method = j->r.method,
        .path = j->path,
        .query = j->query,
        .body = j->body ? j->body : j->body_ref,
        .body_len = j->body_len,
        .who = j->authed ? &j->who : NULL,
        .upload = j->upload,
        .peer = j->peer[0] ? j->peer : NULL,
        .audit_later = j->audit_later,
        .defer_sync = j->defer_sync,
    };
    memset(&j->resp, 0, sizeof j->resp);
    gw->be.handle(gw->be.ctx, &rq, &j->resp);
    /* passwords and hex keys arrive in small bodies (a copy is wiped in
     * gw_job_free; a referenced body is wiped here) */
    if (!j->body && j->body_ref && j->body_len <= GW_WIPE_BODY_MAX)
        mt_wipe((void *)j->body_ref, j->body_len);
}

/* The audit names of a handled job (actor, object, route, action) from its
 * response; the same before the committer and when answering. */
static void gw_job_names(gw_job *j)
{
    gw_req *r = &j->r;
    mt_response *resp = &j->resp;
    if (j->authed)
        r->actor = j->who.username;
    resp->object[sizeof resp->object - 1] = '\0';
    resp->route[sizeof resp->route - 1] = '\0';
    if (resp->object[0])
        gw_printable(r->object, sizeof r->object, resp->object);
    if (resp->route[0]) {
        gw_printable(r->route, sizeof r->route, resp->route);
        gw_printable(r->action, sizeof r->action, resp->route);
    }
}

/* Answers a handled job (loop thread) and frees it. */
static void gw_job_answer(gw_job *j)
{
    mt_gateway *gw = j->r.gw;
    gw_req *r = &j->r;
    gw_job_names(j);
    mt_response resp = j->resp;
    memset(&j->resp, 0, sizeof j->resp);
    r->audited = resp.audited; /* written in the change's transaction: not again */
    if (j->sync_only && j->commit_rc != MT_OK) {
        /* committed (with its entry), but whether it is on disk is unknown */
        json_decref(resp.json);
        free(resp.raw);
        if (resp.has_raw_fd && resp.raw_fd >= 0)
            close(resp.raw_fd);
        gw_finish_error(r, 500, MT_EIO,
                        "the change was committed but could not be made durable; see the "
                        "server log");
        gw_job_free(j);
        return;
    }
    if (j->commit_wait && !j->sync_only) {
        if (j->commit_rc == MT_OK) {
            r->audited = true; /* durable in a group commit before this reply */
        } else {
            /* Neither appended nor spooled (be.audit_batch goes through the
             * audit spool): no reply without its entry; not served. */
            gw->audit_failures++;
            mt_error("mesatee: audit entry for \"%s\" could not be recorded (%s): answered 503 "
                     "instead",
                     r->action, j->commit_msg);
            json_decref(resp.json);
            free(resp.raw);
            if (resp.has_raw_fd && resp.raw_fd >= 0)
                close(resp.raw_fd);
            r->audited = true; /* its refusal cannot be recorded either */
            gw_audit_refusal(r);
            gw_job_free(j);
            return;
        }
    }
    if (j->auth_rc != MT_OK) { /* pooled: the token was refused (audited above) */
        if (j->auth_rc == MT_EAUTH)
            evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
                              "Bearer error=\"invalid_token\"");
        gw_finish_error(r, resp.status, j->auth_rc, j->auth_msg);
        gw_job_free(j);
        return;
    }
    if (resp.retry_after_s) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", resp.retry_after_s);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", ra);
    }
    int status = resp.status;
    if (status < 100 || status > 599) {
        mt_error("mesatee: backend returned HTTP status %d for %s", status, r->action);
        json_decref(resp.json);
        free(resp.raw);
        if (resp.has_raw_fd && resp.raw_fd >= 0)
            close(resp.raw_fd);
        gw_finish_error(r, 500, MT_EINTERNAL, "internal error; see the server log");
    } else if (j->json_text) {
        struct evbuffer *b = evbuffer_new();
        char *text = j->json_text;
        size_t len = strlen(text);
        if (!b || evbuffer_add_reference(b, text, len, gw_evbuffer_wipe_free_cb, NULL)) {
            if (b)
                evbuffer_free(b);
            gw_finish_error(r, 500, MT_ENOMEM, "out of memory sending the response");
        } else {
            j->json_text = NULL; /* the buffer frees it */
            gw_finish(r, status, "application/json", b);
        }
        json_decref(resp.json);
        free(resp.raw);
        if (resp.has_raw_fd && resp.raw_fd >= 0)
            close(resp.raw_fd);
    } else if (resp.json) {
        gw_finish_json(r, status, resp.json);
        json_decref(resp.json);
        free(resp.raw);
        if (resp.has_raw_fd && resp.raw_fd >= 0)
            close(resp.raw_fd);
    } else if (resp.has_raw_fd && resp.raw_fd >= 0) {
        free(resp.raw);
        resp.raw_fd_sha256[sizeof resp.raw_fd_sha256 - 1] = '\0';
        gw_finish_fd(r, status, resp.raw_fd, resp.raw_fd_len, resp.raw_fd_sha256);
    } else if (resp.raw) {
        struct evbuffer *b = evbuffer_new();
        if (!b || evbuffer_add_reference(b, resp.raw, resp.raw_len, gw_evbuffer_free_cb, NULL)) {
            if (b)
                evbuffer_free(b);
            free(resp.raw);
            gw_finish_error(r, 500, MT_ENOMEM, "out of memory sending the response");
        } else {
            gw_finish(r, status, "application/octet-stream", b);
        }
    } else {
        gw_finish(r, status, NULL, NULL);
    }
    gw_job_free(j);
}

/* pool_mu held: waits on cv until the queue head..tail has a job or the
 * gateway stops; pops and returns the first job, or NULL when stopping with
 * nothing left. pool_mu is held again on return. */
static gw_job *gw_queue_pop(mt_gateway *gw, gw_job **head, gw_job **tail, pthread_cond_t *cv)
{
    while (!*head && !gw->pool_stop)
        pthread_cond_wait(cv, &gw->pool_mu);
    gw_job *j = *head;
    if (!j)
        return NULL;
    *head = j->next;
    if (!*head)
        *tail = NULL;
    return j;
}

/* Worker thread: handles slow jobs, hands them back through done_pipe. */
static void *gw_pool_main(void *arg)
{
    mt_gateway *gw = arg;
    pthread_setname_np(pthread_self(), "mt-gw-slow"); /* top -H, perf --per-thread */
    pthread_mutex_lock(&gw->pool_mu);
    for (;;) {
        gw_job *j = gw_queue_pop(gw, &gw->pool_q_head, &gw->pool_q_tail, &gw->pool_cv);
        if (!j)
            break; /* stopping and nothing left */
        gw->pool_queued--;
        pthread_mutex_unlock(&gw->pool_mu);
        gw_job_handle(j);
        pthread_mutex_lock(&gw->pool_mu);
        j->next = gw->pool_done;
        gw->pool_done = j;
        ssize_t w = write(gw->done_pipe[1], "j", 1);
        (void)w; /* a full pipe already wakes the loop */
    }
    pthread_mutex_unlock(&gw->pool_mu);
    return NULL;
}

/* A pooled job on a request thread (or in gw_pool_drain): checks its token,
 * handles it and serialises its JSON answer, all without the loop. */
static void gw_job_run_pooled(gw_job *j)
{
    mt_gateway *gw = j->r.gw;
    if (j->token) {
        mt_err err;
        mt_err_clear(&err);
        mt_status st = gw->be.authenticate(gw->be.ctx, j->token, &j->who, &err);
        mt_wipe(j->token, strlen(j->token));
        free(j->token);
        j->token = NULL;
        if (st != MT_OK) {
            /* answered as gw_serve_backend answers a refused token */
            memset(&j->resp, 0, sizeof j->resp);
            j->auth_rc = st;
            j->resp.status = mt_status_http(st);
            snprintf(j->auth_msg, sizeof j->auth_msg, "%s",
                     err.msg[0] ? err.msg : "token is invalid, expired or revoked; log in again");
            return;
        }
        j->who.username[sizeof j->who.username - 1] = '\0';
        j->authed = true;
        j->r.actor = j->who.username;
    }
    gw_job_handle(j);
    if (j->resp.json && !j->resp.raw && !j->resp.has_raw_fd) {
        j->json_text = json_dumps(j->resp.json, JSON_COMPACT);
        if (j->json_text) {
            json_decref(j->resp.json);
            j->resp.json = NULL;
        }
    }
}

/* A handled pooled job (pool_mu held): to the committer when its entry is
 * still to be written, else to the loop. */
static void gw_job_pooled_done(mt_gateway *gw, gw_job *j)
{
    j->next = NULL;
    if (gw->commit_started && !j->resp.audited && j->resp.status >= 100 &&
        j->resp.status <= 599) {
        gw_job_names(j);
        j->commit_wait = true;
        if (gw->commit_q_tail)
            gw->commit_q_tail->next = j;
        else
            gw->commit_q_head = j;
        gw->commit_q_tail = j;
        pthread_cond_signal(&gw->commit_cv);
        return;
    }
    j->next = gw->pool_done;
    gw->pool_done = j;
    ssize_t w = write(gw->done_pipe[1], "j", 1);
    (void)w; /* a full pipe already wakes the loop */
}

/* Request thread: handles pooled jobs until the gateway stops. */
static void *gw_req_main(void *arg)
{
    mt_gateway *gw = arg;
    pthread_setname_np(pthread_self(), "mt-gw-req");
    pthread_mutex_lock(&gw->pool_mu);
    for (;;) {
        gw_job *j = gw_queue_pop(gw, &gw->req_q_head, &gw->req_q_tail, &gw->req_cv);
        if (!j)
            break; /* stopping and nothing left */
        pthread_mutex_unlock(&gw->pool_mu);
        gw_job_run_pooled(j);
        pthread_mutex_lock(&gw->pool_mu);
        gw_job_pooled_done(gw, j);
    }
    pthread_mutex_unlock(&gw->pool_mu);
    return NULL;
}

/* Committer thread: takes every job queued for the audit log, appends all
 * their entries in one transaction (be.audit_batch: one fsync) and hands
 * them to the loop; stops when asked and nothing is left. */
static void *gw_commit_main(void *arg)
{
    mt_gateway *gw = arg;
    pthread_setname_np(pthread_self(), "mt-gw-commit");
    size_t cap = 0;
    mt_audit_item *items = NULL;
    pthread_mutex_lock(&gw->pool_mu);
    for (;;) {
        while (!gw->commit_q_head && !gw->commit_stop)
            pthread_cond_wait(&gw->commit_cv, &gw->pool_mu);
        gw_job *batch = gw->commit_q_head;
        if (!batch)
            break;
        gw->commit_q_head = gw->commit_q_tail = NULL;
        pthread_mutex_unlock(&gw->pool_mu);
        size_t n = 0;
        for (gw_job *j = batch; j; j = j->next)
            n++;
        mt_err err;
        mt_err_clear(&err);
        mt_status rc = MT_OK;
        if (n > cap) {
            mt_audit_item *ni = realloc(items, n * sizeof *items);
            if (ni) {
                items = ni;
                cap = n;
            } else {
                rc = mt_err_set(&err, MT_ENOMEM, "out of memory");
            }
        }
        size_t n_sync = 0;
        uint64_t mark = 0; /* covers every sync-only job's commit */
        for (gw_job *j = batch; j; j = j->next) { /* counted whatever rc is */
            n_sync += j->sync_only;
            if (j->sync_only && j->resp.sync_mark > mark)
                mark = j->resp.sync_mark;
        }
        if (!rc) {
            size_t i = 0;
            for (gw_job *j = batch; j; j = j->next) {
                if (j->sync_only) /* its entry is in its change's transaction */
                    continue;
                items[i++] = (mt_audit_item){j->r.actor, j->r.action,
                                             j->r.object[0] ? j->r.object : "-",
                                             j->resp.status, 0};
            }
            n = i;
            if (n)
                rc = gw->be.audit_batch(gw->be.ctx, items, n, &err);
        }
        /* the changes of the sync-only jobs committed before they were
         * queued: one sync, none when the batch's entries were recorded
         * (be.audit_batch returned MT_OK only once a sync that started after
         * its own commit, or after this call began, completed: the WAL is
         * append-only, so that fdatasync covered every change committed
         * before the batch was taken; mt_gateway.h "audit_batch") */
        mt_err serr;
        mt_err_clear(&serr);
        bool covered = n && !rc;
        mt_status src = n_sync && !covered ? gw->be.sync(gw->be.ctx, mark, &serr) : MT_OK;
        if (src)
            mt_error("mesatee: %zu committed changes could not be made durable (%s): answered "
                     "500",
                     n_sync, serr.msg);
        pthread_mutex_lock(&gw->pool_mu);
        if (!rc && n) {
            gw->commit_batches++;
            gw->commit_entries += n;
        }
        while (batch) { /* in queue order: the loop reverses pool_done */
            gw_job *j = batch;
            batch = j->next;
            j->commit_rc = j->sync_only ? src : rc;
            snprintf(j->commit_msg, sizeof j->commit_msg, "%s", j->sync_only ? serr.msg : err.msg);
            j->next = gw->pool_done;
            gw->pool_done = j;
        }
        ssize_t w = write(gw->done_pipe[1], "j", 1);
        (void)w; /* a full pipe already wakes the loop */
    }
    pthread_mutex_unlock(&gw->pool_mu);
    free(items);
    return NULL;
}

/* Answers every handled job (loop thread), oldest first. */
static void gw_pool_answer(mt_gateway *gw)
{
    pthread_mutex_lock(&gw->pool_mu);
    gw_job *done = gw->pool_done;
    gw->pool_done = NULL;
    pthread_mutex_unlock(&gw->pool_mu);
    gw_job *rev = NULL;
    while (done) {
        gw_job *next = done->next;
        done->next = rev;
        rev = done;
        done = next;
    }
    while (rev) {
        gw_job *next = rev->next;
        gw->jobs_pending--;
        gw_job_answer(rev);
        rev = next;
    }
    gw_maybe_finish(gw);
}

static void gw_park_recheck(mt_gateway *gw, int why); /* "Parked requests" */

static void gw_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    gw_pool_answer(arg);
    mt_gateway *gw = arg;
    if (atomic_exchange(&gw->park_wake, false))
        gw_park_recheck(gw, GW_PARK_WAKE);
}

/* Stops the worker threads after they have handled what is queued, and
 * answers everything (before evhttp frees the connections). */
static void gw_pool_drain(mt_gateway *gw)
{
    if (!gw->pool_init)
        return;
    pthread_mutex_lock(&gw->pool_mu);
    gw->pool_stop = true;
    pthread_cond_broadcast(&gw->pool_cv);
    if (gw->req_cv_init)
        pthread_cond_broadcast(&gw->req_cv);
    pthread_mutex_unlock(&gw->pool_mu);
    for (unsigned i = 0; i < gw->pool_n; i++)
        pthread_join(gw->pool_threads[i], NULL);
    gw->pool_n = 0;
    for (unsigned i = 0; i < gw->req_n; i++)
        pthread_join(gw->req_threads[i], NULL);
    gw->req_n = 0;
    /* Pooled jobs left (none when the threads ran) are handled here, before
     * the committer stops. */
    while (gw->req_q_head) {
        gw_job *j = gw->req_q_head;
        gw->req_q_head = j->next;
        gw_job_run_pooled(j);
        pthread_mutex_lock(&gw->pool_mu);
        gw_job_pooled_done(gw, j);
        pthread_mutex_unlock(&gw->pool_mu);
    }
    gw->req_q_tail = NULL;
    /* No thread left: queued jobs (none when threads ran) are handled here. */
    while (gw->pool_q_head) {
        gw_job *j = gw->pool_q_head;
        gw->pool_q_head = j->next;
        gw_job_handle(j);
        j->next = gw->pool_done;
        gw->pool_done = j;
    }
    gw->pool_q_tail = NULL;
    gw->pool_queued = 0;
    if (gw->commit_started) { /* commits what is queued, then stops */
        pthread_mutex_lock(&gw->pool_mu);
        gw->commit_stop = true;
        pthread_cond_broadcast(&gw->commit_cv);
        pthread_mutex_unlock(&gw->pool_mu);
        pthread_join(gw->commit_thread, NULL);
        gw->commit_started = false;
    }
    if (gw->http)
        gw_pool_answer(gw);
}

/* ------------------------------------------------------------------------ */
/* Parked requests (GET /v1/tasks/{id}?wait=; mt_gateway.h)                  */
/* ------------------------------------------------------------------------ */

static void gw_job_resp_clear(mt_response *resp)
{
    json_decref(resp->json);
    free(resp->raw);
    if (resp->has_raw_fd && resp->raw_fd >= 0)
        close(resp->raw_fd);
    memset(resp, 0, sizeof *resp);
}

/* A loop job handled for the last time: answered now, or after the
 * committer made its audit entry durable (as gw_serve_backend does). */
static void gw_job_finish_loop(gw_job *j)
{
    mt_gateway *gw = j->r.gw;
    j->resp.park_ms = 0;
    if (!gw->commit_started || j->resp.audited || j->resp.status < 100 ||
        j->resp.status > 599) {
        gw_job_answer(j);
        return;
    }
    gw_job_names(j);
    j->commit_wait = true;
    pthread_mutex_lock(&gw->pool_mu);
    j->next = NULL;
    if (gw->commit_q_tail)
        gw->commit_q_tail->next = j;
    else
        gw->commit_q_head = j;
    gw->commit_q_tail = j;
    pthread_cond_signal(&gw->commit_cv);
    pthread_mutex_unlock(&gw->pool_mu);
    gw->jobs_pending++;
}

/* A handled loop job whose answer asks to wait (resp.park_ms): held in
 * gw->parked (true), refused with 503 when gw->parked_max are held (true),
 * or false when it is to be answered now (stopping). */
static bool gw_park(gw_job *j)
{
    mt_gateway *gw = j->r.gw;
    if (gw->stopping || !gw->park_ev)
        return false;
    struct evhttp_request *req = j->r.req;
    if (gw->parked_n >= gw->parked_max) {
        gw->parked_full++;
        gw_job_names(j); /* j->r.actor points into j: free j only after */
        gw_job_resp_clear(&j->resp);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        gw_finish_error(&j->r, 503, MT_EUNAVAIL,
                        "too many requests are waiting for tasks; retry shortly or poll "
                        "without ?wait=");
        gw_job_free(j);
        return true;
    }
    j->park_deadline_ms = mt_mono_ms() + (int64_t)j->resp.park_ms;
    j->body_ref = NULL; /* GET: no body; the input buffer is the connection's */
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    if (evbuffer_get_length(in))
        evbuffer_drain(in, evbuffer_get_length(in));
    j->next = gw->parked;
    gw->parked = j;
    gw->parked_n++;
    /* A task event between j->park_seq (read before its handling) and here
     * whose mt_gateway_wake saw parked_any clear wrote nothing: both sides
     * are sequentially consistent (the event is recorded before its wake
     * loads parked_any; parked_any is stored here before the check), so
     * either that wake writes done_pipe or this check sees the event. */
    atomic_store(&gw->parked_any, true);
    bool missed = gw->be.task_changed
                      ? gw->be.task_seq(gw->be.ctx) != j->park_seq &&
                            gw->be.task_changed(gw->be.ctx, j->path, j->park_seq)
                      : atomic_load(&gw->park_wake);
    if (missed) {
        atomic_store(&gw->park_wake, true);
        ssize_t w = write(gw->done_pipe[1], "w", 1); /* gw_done_cb rechecks */
        (void)w;
    }
    gw_conn *c = gw_conn_of_request(req);
    if (c && !c->responding) { /* a graceful stop waits for it (it answers at once) */
        c->responding = true;
        gw->in_flight++;
        evhttp_request_set_on_complete_cb(req, gw_on_complete, gw);
    }
    if (!event_pending(gw->park_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = {0, GW_PARK_TICK_MS * 1000};
        event_add(gw->park_ev, &tv);
    }
    return true;
}

/* True when the client of a parked request has closed its connection. evhttp
 * does not read while a request is being answered (nor does the filter in
 * HOLD), so the socket is peeked: end of stream or an error means gone; bytes
 * waiting (a TLS alert, a pipelined request) leave it held until its time. */
static bool gw_park_client_gone(gw_job *j)
{
    if (!evhttp_request_get_connection(j->r.req))
        return true;
    gw_conn *c = gw_conn_of_request(j->r.req);
    evutil_socket_t fd = c && c->under ? bufferevent_getfd(c->under) : -1;
    if (fd < 0)
        return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Checks a parked request's token again, as a new request's is
 * (be.authenticate), before it is handled again or answered: a user
 * disabled, or a token revoked or expired, while it waited gets no task.
 * True: still valid (j->who refreshed). False: answered as gw_serve_backend
 * answers a refused token (401 with the same text, audited and counted as
 * that refusal, actor "-") and freed. */
static bool gw_park_reauth(gw_job *j)
{
    mt_gateway *gw = j->r.gw;
    const char *token = gw_bearer(j->r.req);
    mt_principal who;
    memset(&who, 0, sizeof who);
    mt_err err;
    mt_err_clear(&err);
    mt_status st = token ? gw->be.authenticate(gw->be.ctx, token, &who, &err) : MT_EAUTH;
    if (st == MT_OK) {
        who.username[sizeof who.username - 1] = '\0';
        j->who = who;
        j->r.actor = j->who.username;
        mt_wipe(&who, sizeof who);
        return true;
    }
    mt_wipe(&who, sizeof who);
    gw_job_resp_clear(&j->resp);
    j->authed = false;
    j->r.actor = "-";
    if (st == MT_EAUTH)
        evhttp_add_header(evhttp_request_get_output_headers(j->r.req), "WWW-Authenticate",
                          "Bearer error=\"invalid_token\"");
    gw_finish_error(&j->r, mt_status_http(st), st,
                    err.msg[0] ? err.msg : "token is invalid, expired or revoked; log in again");
    gw_job_free(j);
    return false;
}

/* Goes over the parked requests (loop thread). GW_PARK_WAKE (a task event):
 * each is handled again and answered if its answer is final or its time is
 * up; GW_PARK_TICK: only those whose time is up or whose client left;
 * GW_PARK_STOP: every one is answered now (handled again first). A request
 * whose connection is gone is answered with its last answer (which evhttp
 * drops; it is audited and counted as answered). Before either, its token
 * is checked again (gw_park_reauth): a refused one is answered 401. */
static void gw_park_recheck(mt_gateway *gw, int why)
{
    gw_job *list = gw->parked;
    gw->parked = NULL;
    gw->parked_n = 0;
    int64_t now = mt_mono_ms();
    while (list) {
        gw_job *j = list;
        list = j->next;
        bool gone = gw_park_client_gone(j);
        bool due = now >= j->park_deadline_ms;
        /* a task event of another task: not handled again */
        bool same = why == GW_PARK_WAKE && gw->be.task_changed &&
                    !gw->be.task_changed(gw->be.ctx, j->path, j->park_seq);
        if (!gone && (why == GW_PARK_TICK || same) && !due) {
            j->next = gw->parked;
            gw->parked = j;
            gw->parked_n++;
            continue;
        }
        if (gone && evhttp_request_get_connection(j->r.req))
            evhttp_add_header(evhttp_request_get_output_headers(j->r.req), "Connection", "close");
        /* handled again or answered: with what its token gets now */
        if (j->authed && !gw_park_reauth(j))
            continue;
        if (!gone) {
            gw_job_resp_clear(&j->resp);
            if (gw->be.task_seq && gw->be.task_changed)
                j->park_seq = gw->be.task_seq(gw->be.ctx);
            gw_job_handle(j);
            if (j->resp.park_ms && !due && why != GW_PARK_STOP) {
                j->next = gw->parked;
                gw->parked = j;
                gw->parked_n++;
                continue;
            }
        }
        gw_job_finish_loop(j);
    }
    if (!gw->parked && gw->park_ev)
        event_del(gw->park_ev);
    if (!gw->parked)
        atomic_store(&gw->parked_any, false);
    gw_maybe_finish(gw);
}

static void gw_park_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_park_recheck(arg, GW_PARK_TICK);
}

void mt_gateway_wake(mt_gateway *gw)
{
    if (!gw)
        return;
    atomic_store(&gw->park_wake, true);
    if (atomic_load(&gw->parked_any) && gw->done_pipe[1] >= 0) {
        ssize_t w = write(gw->done_pipe[1], "w", 1); /* full pipe: a wake is pending */
        (void)w;
    }
}

static void gw_serve_backend(gw_req *r, const char *path, const char *query)
{
    mt_gateway *gw = r->gw;
    struct evhttp_request *req = r->req;
    gw_conn *c = gw_conn_of_request(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    bool streamed = c && c->upload;
    size_t body_len = streamed ? (size_t)c->streamed : evbuffer_get_length(in);
    size_t limit = gw->be.max_body(gw->be.ctx, r->method, path);
    char msg[MT_ERR_MSG_MAX];
    if (body_len > limit) {
        snprintf(msg, sizeof msg,
                 "request body of %zu bytes exceeds the limit of %zu bytes for %.120s", body_len,
                 limit, r->action);
        gw_finish_error(r, 413, MT_ETOOBIG, msg);
        return;
    }

    gw_job *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path)) || (query && !(j->query = strdup(query)))) {
        gw_job_free(j);
        gw_finish_error(r, 500, MT_ENOMEM, "out of memory");
        return;
    }
    j->r = *r;
    if (streamed) {
        j->upload = c->upload;
        c->upload = NULL;
    }
    bool slow = gw->pool_n > 0 && gw->be.slow && gw->be.slow(gw->be.ctx, r->method, path);
    /* Pooled: token check and handle on a request thread (mt_gateway.h). */
    bool pooled = !slow && !streamed && gw->req_n > 0 && gw->be.pooled &&
                  gw->be.pooled(gw->be.ctx, r->method, path);
    if (gw->be.needs_auth(gw->be.ctx, r->method, path)) {
        const char *token = gw_bearer(req);
        if (!token) {
            gw_job_free(j);
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
            gw_finish_error(r, 401, MT_EAUTH,
                            "missing or malformed 'Authorization: Bearer <token>' header; "
                            "log in with POST /v1/auth/login");
            return;
        }
        mt_err err;
        mt_err_clear(&err);
        mt_status st = MT_OK;
        /* a streamed upload's token is checked again at its end (the
         * upload may have taken long) */
        bool pre = gw_pre_authed(c, streamed ? NULL : token, &j->who);
        if (pre) {
            ; /* checked at its head */
        } else if (pooled) {
            if (!(j->token = strdup(token)))
                st = mt_err_set(&err, MT_ENOMEM, "out of memory");
        } else {
            st = gw->be.authenticate(gw->be.ctx, token, &j->who, &err);
        }
        if (st != MT_OK) {
            gw_job_free(j);
            if (st == MT_EAUTH)
                evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                                  "Bearer error=\"invalid_token\"");
            gw_finish_error(r, mt_status_http(st), st,
                            err.msg[0] ? err.msg
                                       : "token is invalid, expired or revoked; log in again");
            return;
        }
        if (!pooled || pre) { /* a pooled job without j->token is not checked again */
            j->who.username[sizeof j->who.username - 1] = '\0';
            j->authed = true;
            j->r.actor = j->who.username;
        }
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        if (addr)
            snprintf(j->peer, sizeof j->peer, "%s", addr);
    }
    bool copy = slow || pooled; /* the loop goes on: the job keeps its own body */
    if (!streamed && body_len) {
        const uint8_t *body = evbuffer_pullup(in, (ev_ssize_t)body_len);
        if (body && copy && (j->body = malloc(body_len)) != NULL)
            memcpy(j->body, body, body_len);
        if (!body || (copy && !j->body)) {
            gw_job_free(j);
            gw_finish_error(r, 500, MT_ENOMEM, "out of memory reading the request body");
            return;
        }
        j->body_ref = body;
        j->body_len = body_len;
    } else {
        j->body_len = body_len;
    }
    if (pooled) {
        j->pooled = true;
        j->audit_later = gw->commit_started;
    } else if (!slow) {
        j->audit_later = gw->commit_started;
        j->defer_sync = gw->commit_started && gw->be.sync;
        if (gw->be.task_seq && gw->be.task_changed) /* before the read it may park on */
            j->park_seq = gw->be.task_seq(gw->be.ctx);
        gw_job_handle(j);
        if (j->resp.park_ms && gw_park(j)) /* ?wait=: answered later (or refused) */
            return;
        /* Its entry not written with a change: group-commit it, then reply
         * (gw_commit_main); a change committed without its fsync
         * (needs_sync): the committer syncs it, then the reply goes; other
         * jobs are answered at once. */
        j->sync_only = j->resp.audited && j->resp.needs_sync;
        if (!j->sync_only && (!gw->commit_started || j->resp.audited || j->resp.status < 100 ||
                              j->resp.status > 599)) {
            gw_job_answer(j);
            return;
        }
        gw_job_names(j);
        j->commit_wait = true;
    }
    /* Slow or pooled route: a worker or request thread handles it; gw_done_cb
     * answers. */
    j->body_ref = NULL;
    if (evbuffer_get_length(in)) {
        mt_wipe(evbuffer_pullup(in, -1), evbuffer_get_length(in));
        evbuffer_drain(in, evbuffer_get_length(in));
    }
    pthread_mutex_lock(&gw->pool_mu);
    bool full = !j->commit_wait && !j->pooled && gw->pool_queued >= gw->pool_max_queue;
    if (j->pooled) {
        j->next = NULL;
        if (gw->req_q_tail)
            gw->req_q_tail->next = j;
        else
            gw->req_q_head = j;
        gw->req_q_tail = j;
        pthread_cond_signal(&gw->req_cv);
    } else if (j->commit_wait) {
        j->next = NULL;
        if (gw->commit_q_tail)
            gw->commit_q_tail->next = j;
        else
            gw->commit_q_head = j;
        gw->commit_q_tail = j;
        pthread_cond_signal(&gw->commit_cv);
    } else if (!full) {
        j->next = NULL;
        if (gw->pool_q_tail)
            gw->pool_q_tail->next = j;
        else
            gw->pool_q_head = j;
        gw->pool_q_tail = j;
        gw->pool_queued++;
        pthread_cond_signal(&gw->pool_cv);
    }
    pthread_mutex_unlock(&gw->pool_mu);
    if (full) {
        gw_job_free(j);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        gw_finish_error(r, 503, MT_EUNAVAIL, "too many requests waiting; retry shortly");
        return;
    }
    gw->jobs_pending++;
    if (c && !c->responding) {
        /* counts as in flight so that a graceful stop waits for it */
        c->responding = true;
        gw->in_flight++;
        evhttp_request_set_on_complete_cb(req, gw_on_complete, gw);
    }
}

/* A request's id (X-Request-Id, access log): 8 bytes of RAND_bytes, taken
 * from a per-thread pool refilled 64 ids at a time (each RAND_bytes call
 * cost a few microseconds of DRBG locking and parameter handling; two
 * requests per echo task). Not a secret: the client gets it. false: no
 * random bytes (the caller falls back to the clock). */
static bool gw_request_rid(uint8_t rid[8])
{
    static _Thread_local uint8_t pool[64 * 8];
    static _Thread_local size_t left;
    if (!left) {
        if (RAND_bytes(pool, sizeof pool) != 1)
            return false;
        left = sizeof pool;
    }
    left -= 8;
    memcpy(rid, pool + left, 8);
    mt_wipe(pool + left, 8); /* each id is handed out once */
    return true;
}

/* evhttp generic callback: every request that evhttp parsed comes here. */
static void gw_request_cb(struct evhttp_request *req, void *arg)
{
    mt_gateway *gw = arg;
    gw_req r;
    memset(&r, 0, sizeof r);
    r.gw = gw;
    r.req = req;
    r.actor = "-";
    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    uint8_t rid[8] = {0};
    if (!gw_request_rid(rid))
        memcpy(rid, &r.t0, sizeof rid < sizeof r.t0 ? sizeof rid : sizeof r.t0);
    mt_hex_encode(rid, sizeof rid, r.request_id);
    snprintf(r.route, sizeof r.route, "%s", GW_OTHER_ROUTE);
    bool supported;
    r.method = gw_method_name(evhttp_request_get_command(req), &supported);

    gw_conn *c = gw_conn_of_request(req);
    if (c && c->rej_status) {
        /* Refused at its head (gw_decide): answer, audit and meter it here. */
        struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
        r.method = c->rej_method;
        r.actor = c->rej_actor;
        snprintf(r.action, sizeof r.action, "%s", c->rej_action);
        evhttp_add_header(oh, "Connection", "close");
        if (c->rej_www_auth)
            evhttp_add_header(oh, "WWW-Authenticate", "Bearer");
        if (c->rej_status == 405)
            evhttp_add_header(oh, "Allow", c->rej_allow[0] ? c->rej_allow : GW_ALLOW_ALL);
        if (c->rej_retry_after) {
            char ra[16];
            snprintf(ra, sizeof ra, "%u", c->rej_retry_after);
            evhttp_add_header(oh, "Retry-After", ra);
        }
        gw_finish_error(&r, c->rej_status, c->rej_code, c->rej_msg);
        return;
    }

    const char *target = evhttp_request_get_uri(req);
    char *path = NULL, *query = NULL;
    mt_err err;
    mt_err_clear(&err);
    mt_status st = gw_decode_target(target, &path, &query, &err);
    gw_set_action(&r, st == MT_OK ? path : target);
    char trace_id[33];
    if (st == MT_OK && mt_trace_on() && mt_trace_invoke_id(path, trace_id)) /* mt_trace.h */
        mt_trace_mark_at(trace_id, "gw_recv",
                         (int64_t)r.t0.tv_sec * 1000000 + r.t0.tv_nsec / 1000);

    char allow[64];
    bool path_known = gw_allow(gw, st == MT_OK ? path : NULL, allow, sizeof allow);
    if (!supported || (path_known && !gw_method_in(allow, r.method))) {
        /* 405 with the methods of this path (every method we serve when the
         * path is unknown), before any token check */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        char msg[MT_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "method %s is not allowed %s; use %s", r.method,
                 path_known ? "on this path" : "here", allow);
        gw_finish_error(&r, 405, MT_EINVAL, msg);
    } else if (st != MT_OK) {
        gw_finish_error(&r, mt_status_http(st), st, err.msg);
    } else if (gw->stopping) {
        gw_finish_error(&r, 503, MT_EUNAVAIL, "server is shutting down; retry shortly");
    } else if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics")) {
        if (strcmp(r.method, "GET") != 0) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
            gw_finish_error(&r, 405, MT_EINVAL, "only GET is supported on this path");
        } else {
            gw_serve_builtin(&r, path);
        }
    } else {
        gw_serve_backend(&r, path, query);
    }
    free(path);
    free(query);
}

/* ------------------------------------------------------------------------ */
/* Stop                                                                     */
/* ------------------------------------------------------------------------ */

static void gw_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    mt_gateway *gw = arg;
    if (gw->in_flight)
        mt_warn("mesatee: %u response(s) still in flight after the grace period; closing",
                gw->in_flight);
    event_base_loopbreak(gw->base);
}

static void gw_begin_shutdown(mt_gateway *gw)
{
    if (gw->stopping)
        return;
    gw->stopping = true;
    gw_park_recheck(gw, GW_PARK_STOP); /* parked requests: their current answer, now */
    mt_info("mesatee: shutting down: no new connections, finishing in-flight requests");
    if (gw->bound) {
        evhttp_del_accept_socket(gw->http, gw->bound);
        gw->bound = NULL;
    }
    if (gw->in_flight == 0 && gw->jobs_pending == 0) {
        event_base_loopbreak(gw->base);
        return;
    }
    struct timeval tv = {.tv_sec = gw->grace_ms / 1000,
                         .tv_usec = (suseconds_t)(gw->grace_ms % 1000) * 1000};
    evtimer_add(gw->grace_ev, &tv);
}

/* Drain phase: every 100 ms until the services are drained or the grace
 * period is over, then the shutdown proper. */
static void gw_drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mt_gateway *gw = arg;
    if (gw->stopping)
        return;
    bool done = gw->drained(gw->drain_ctx);
    if (done || mt_mono_ms() >= gw->drain_deadline_ms) {
        if (done)
            mt_info("mesatee: no task running; stopping");
        else
            mt_warn("mesatee: the grace period (%u ms) is over with tasks still running; "
                    "stopping them (they go back to the queue)",
                    gw->drain_grace_ms);
        gw_begin_shutdown(gw);
        return;
    }
    struct timeval tv = {0, 100 * 1000};
    evtimer_add(gw->drain_ev, &tv);
}

/* systemd's watchdog: pinged from the loop, so only a live loop pings. */
static void gw_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    mt_sdnotify_watchdog();
}

/* First stop request: the drain phase when configured, else the shutdown. */
static void gw_begin_stop(mt_gateway *gw)
{
    if (gw->stopping || gw->draining)
        return;
    if (!gw->drain_ev) {
        gw_begin_shutdown(gw);
        return;
    }
    gw->draining = true;
    mt_info("mesatee: stopping: no new tasks; waiting up to %u ms for the running ones (a "
            "second SIGTERM stops at once)",
            gw->drain_grace_ms);
    gw->drain(gw->drain_ctx);
    gw->drain_deadline_ms = mt_mono_ms() + gw->drain_grace_ms;
    gw_drain_poll_cb(-1, 0, gw);
}

static void gw_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    mt_gateway *gw = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    if (atomic_load(&gw->stop_requested))
        gw_begin_stop(gw);
}

static void gw_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    mt_gateway *gw = arg;
    mt_info("mesatee: received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (gw->draining || gw->stopping) {
        /* second signal: no more waiting (running tasks go back to the queue) */
        mt_warn("mesatee: second stop signal: stopping at once");
        if (gw->drain_ev)
            evtimer_del(gw->drain_ev);
        gw_begin_shutdown(gw);
        event_base_loopbreak(gw->base);
        return;
    }
    gw_begin_stop(gw);
}

void mt_gateway_set_max_connections(mt_gateway *gw, unsigned n)
{
    gw->max_conns = n ? n : GW_DEFAULT_MAX_CONNS;
}

void mt_gateway_stop(mt_gateway *gw)
{
    if (!gw)
        return;
    int saved = errno;
    atomic_store(&gw->stop_requested, 1);
    ssize_t w = write(gw->stop_pipe[1], "s", 1);
    (void)w;
    errno = saved;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */
/* ------------------------------------------------------------------------ */

/* Splits "HOST:PORT" / "[V6]:PORT" into host (no brackets) and port. */
static mt_status gw_parse_listen(const char *listen, char *host, size_t cap, unsigned *port,
                                 bool *v6, mt_err *err)
{
    const char *colon;
    const char *h;
    size_t hlen;
    *v6 = false;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return mt_err_set(err, MT_EINVAL, "listen address '%s' is not [IPV6]:PORT", listen);
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        *v6 = true;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || strchr(listen, ':') != colon)
            return mt_err_set(err, MT_EINVAL,
                              "listen address '%s' is not HOST:PORT (use [ADDR]:PORT for IPv6)",
                              listen);
        h = listen;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= cap)
        return mt_err_set(err, MT_EINVAL, "listen address '%s' has no usable host", listen);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    const char *p = colon + 1;
    unsigned long v = 0;
    if (!*p || strlen(p) > 5)
        return mt_err_set(err, MT_EINVAL, "listen address '%s' has no valid port", listen);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return mt_err_set(err, MT_EINVAL, "listen address '%s' has no valid port", listen);
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return mt_err_set(err, MT_EINVAL, "port %lu in '%s' is out of range 0-65535", v, listen);
    *port = (unsigned)v;
    return MT_OK;
}

static mt_status gw_tls_context(SSL_CTX **out, EVP_PKEY *key, X509 *cert,
                                STACK_OF(X509) *chain, mt_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return mt_err_set(err, MT_ENOMEM, "cannot create the TLS context");
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 || (chain && SSL_CTX_set1_chain(ctx, chain) != 1)) {
        unsigned long e = ERR_get_error();
        char buf[160];
        ERR_error_string_n(e, buf, sizeof buf);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return mt_err_set(err, MT_ECRYPTO,
                          "cannot set up TLS 1.3 with the server key and certificate: %s", buf);
    }
    /* CLEANSE_PLAINTEXT: OpenSSL wipes each decrypted record once it is
     * read, and the read buffer before RELEASE_BUFFERS frees it (libevent's
     * copies: mt_evmem) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    *out = ctx;
    return MT_OK;
}

/* Writes tls/server-cert.pem: cert, then the chain (if any). */
static mt_status gw_write_cert(const char *data_dir, X509 *cert, STACK_OF(X509) *chain,
                               mt_err *err)
{
    char dir[4096], path[4200];
    if (snprintf(dir, sizeof dir, "%s/tls", data_dir) >= (int)sizeof dir)
        return mt_err_set(err, MT_EINVAL, "data dir path too long");
    mt_status st = mt_mkdirs(dir, 0700, err);
    if (st != MT_OK)
        return st;
    if (chmod(dir, 0700) != 0)
        return mt_err_set(err, MT_EIO, "cannot set mode 0700 on %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/server-cert.pem", dir);
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = bio && PEM_write_bio_X509(bio, cert) == 1;
    for (int i = 0; ok && chain && i < sk_X509_num(chain); i++)
        ok = PEM_write_bio_X509(bio, sk_X509_value(chain, i)) == 1;
    if (!ok) {
        BIO_free(bio);
        return mt_err_set(err, MT_ENOMEM, "cannot encode the server certificate as PEM");
    }
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    st = mt_file_write_atomic(path, pem, (size_t)n, 0644, err);
    BIO_free(bio);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Certificate renewal                                                       */
/* ------------------------------------------------------------------------ */

mt_status mt_gateway_renew_now(mt_gateway *gw, mt_err *err)
{
    if (!gw || !gw->renew)
        return mt_err_set(err, MT_EINVAL, "this gateway has no certificate renewal");
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    SSL_CTX *ctx = NULL;
    mt_status st = gw->renew(gw->renew_ctx, &key, &cert, err);
    if (st == MT_OK)
        st = gw_tls_context(&ctx, key, cert, NULL, err);
    if (st == MT_OK) {
        /* Connections already made hold a reference to the old context. */
        SSL_CTX_free(gw->ssl_ctx);
        gw->ssl_ctx = ctx;
        gw->renewals++;
        st = gw_write_cert(gw->data_dir, cert, NULL, err);
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    return st;
}

unsigned long mt_gateway_renewals(const mt_gateway *gw)
{
    return gw ? gw->renewals : 0;
}

uint64_t mt_gateway_tls_options(const mt_gateway *gw)
{
    return gw && gw->ssl_ctx ? SSL_CTX_get_options(gw->ssl_ctx) : 0;
}

static void gw_renew_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mt_gateway *gw = arg;
    if (gw->stopping)
        return;
    mt_err err;
    mt_err_clear(&err);
    if (mt_gateway_renew_now(gw, &err) != MT_OK)
        mt_error("mesatee: TLS certificate renewal failed, keeping the current one until the "
                 "next try in %u s: %s",
                 gw->renew_interval_s, err.msg);
    else
        mt_info("mesatee: TLS key and certificate renewed with fresh evidence (renewal %lu; "
                "next in %u s)",
                gw->renewals, gw->renew_interval_s);
}

/* ------------------------------------------------------------------------ */
/* Identity reload (SIGHUP)                                                  */
/* ------------------------------------------------------------------------ */

mt_status mt_gateway_reload_identity(mt_gateway *gw, mt_err *err)
{
    if (!gw || !gw->reload)
        return mt_err_set(err, MT_EINVAL, "this gateway cannot reload its TLS identity");
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    SSL_CTX *ctx = NULL;
    mt_status st = gw->reload(gw->reload_ctx, &key, &cert, &chain, err);
    if (st == MT_OK && (!key || !cert))
        st = mt_err_set(err, MT_EINTERNAL, "the identity reload gave no key or certificate");
    if (st == MT_OK)
        st = gw_tls_context(&ctx, key, cert, chain, err);
    if (st == MT_OK) {
        /* Connections already made hold a reference to the old context. */
        SSL_CTX_free(gw->ssl_ctx);
        gw->ssl_ctx = ctx;
        st = gw_write_cert(gw->data_dir, cert, chain, err);
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    return st;
}

static void gw_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    mt_gateway *gw = arg;
    if (gw->stopping)
        return;
    mt_sdnotify_reloading(); /* systemd: RELOADING=1 ... READY=1 */
    if (gw->on_hup) {
        mt_info("mesatee: received SIGHUP: reloading the configuration");
        gw->on_hup(gw->on_hup_ctx);
    }
    if (gw->reload) {
        mt_info("mesatee: received SIGHUP: reloading the TLS identity");
        mt_err err;
        mt_err_clear(&err);
        if (mt_gateway_reload_identity(gw, &err) != MT_OK)
            mt_error("mesatee: TLS identity reload failed, keeping the current one: %s",
                     err.msg);
        else
            mt_info("mesatee: TLS identity reloaded (new connections use it; open ones keep "
                    "theirs)");
    }
    mt_sdnotify_ready("reloaded");
}

static mt_status gw_bind(mt_gateway *gw, const char *spec, mt_err *err)
{
    char host[256];
    unsigned port = 0;
    bool v6 = false;
    mt_status st = gw_parse_listen(spec, host, sizeof host, &port, &v6, err);
    if (st != MT_OK)
        return st;
    /* The host resolved within GW_LISTEN_RESOLVE_MS (mt_resolve.h) with the
     * hints libevent's evhttp_bind_socket used (passive, AI_ADDRCONFIG: a
     * name such as localhost gives the address it gave, e.g. 127.0.0.1
     * rather than ::1 on a host without IPv6 beyond loopback; a numeric
     * address is taken as written), the first address bound here and the
     * socket handed to libevent, which never resolves: a DNS server that
     * does not answer makes the start fail with a reason instead of
     * hanging it. Socket options as libevent's: non-blocking, SO_REUSEADDR,
     * SO_KEEPALIVE, backlog 128. */
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int e = mt_resolve_bounded(host, portstr, &hints, GW_LISTEN_RESOLVE_MS, NULL, NULL, &ai);
    if (!e && !ai)
        e = ENOENT;
    if (e) {
        if (ai)
            freeaddrinfo(ai);
        return mt_err_set(err, MT_EINVAL, "cannot resolve the listen address %s%s", spec,
                          e == ETIMEDOUT ? ": no answer within 5000 ms" : "");
    }
    int lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(lfd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(lfd, 128) != 0) {
        e = errno;
        if (lfd >= 0)
            close(lfd);
        freeaddrinfo(ai);
        return mt_err_set(err, MT_EIO,
                          "cannot listen on %s: %s (is the address local and the port free?)", spec,
                          strerror(e));
    }
    freeaddrinfo(ai);
    gw->bound = evhttp_accept_socket_with_handle(gw->http, lfd);
    if (!gw->bound) /* out of memory; whether libevent closed lfd depends on where it
                     * failed, so it is left open (the start fails, the process ends) */
        return mt_err_set(err, MT_ENOMEM, "cannot listen on %s: libevent refused the socket", spec);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(gw->bound);
    /* Accepted connections inherit TCP_NODELAY (Linux): a reply written as
     * several TLS records must not wait for the client's delayed ACK (40 ms
     * per keep-alive request otherwise). Best effort. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t slen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &slen) != 0)
        return mt_err_set(err, MT_EIO, "getsockname on %s failed: %s", spec, strerror(errno));
    if (ss.ss_family == AF_INET6) {
        gw->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        v6 = true;
    } else {
        gw->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    const char *url_host = host;
    if (!strcmp(host, "0.0.0.0"))
        url_host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        url_host = "::1";
    bool bracket = v6 && strchr(url_host, ':') != NULL;
    snprintf(gw->url, sizeof gw->url, "https://%s%s%s:%u", bracket ? "[" : "", url_host,
             bracket ? "]" : "", gw->port);
    return MT_OK;
}

mt_status mt_gateway_new(const mt_gateway_config *cfg, const mt_gateway_backend *backend,
                         mt_gateway **out, mt_err *err)
{
    *out = NULL;
    if (!cfg || !backend || !cfg->data_dir || !cfg->key || !cfg->cert)
        return mt_err_set(err, MT_EINVAL, "gateway needs a data dir, a TLS key and certificate");
    if (!backend->authenticate || !backend->needs_auth || !backend->max_body || !backend->handle ||
        !backend->audit)
        return mt_err_set(err, MT_EINVAL, "gateway backend is missing a required function");
    pthread_once(&g_conn_once, gw_conn_index_init);
    if (g_conn_idx < 0)
        return mt_err_set(err, MT_ENOMEM, "cannot allocate an OpenSSL ex_data index");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    mt_gateway *gw = calloc(1, sizeof *gw);
    if (!gw)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    gw->stop_pipe[0] = gw->stop_pipe[1] = -1;
    gw->done_pipe[0] = gw->done_pipe[1] = -1;
    gw->be = *backend;
    if (cfg->metrics_token) {
        unsigned int hl = 0;
        if (!*cfg->metrics_token ||
            EVP_Digest(cfg->metrics_token, strlen(cfg->metrics_token), gw->metrics_token_sha, &hl,
                       EVP_sha256(), NULL) != 1 ||
            hl != sizeof gw->metrics_token_sha) {
            free(gw);
            return mt_err_set(err, MT_EINVAL, "cannot use the metrics token (empty?)");
        }
        gw->metrics_token_set = true;
    }
    if (!gw->be.streams_body || !gw->be.upload_begin || !gw->be.upload_write || !gw->be.upload_free)
        gw->be.streams_body = NULL;
    gw->max_buffered = cfg->max_buffered ? cfg->max_buffered : GW_DEFAULT_MAX_BUFFERED;
    gw->pool_max_queue = cfg->slow_queue ? cfg->slow_queue : GW_DEFAULT_SLOW_QUEUE;
    unsigned slow_threads = cfg->slow_threads ? cfg->slow_threads : GW_DEFAULT_SLOW_THREADS;
    unsigned req_threads =
        cfg->request_threads ? cfg->request_threads : GW_DEFAULT_REQUEST_THREADS;
    gw->max_conns = cfg->max_connections ? cfg->max_connections : GW_DEFAULT_MAX_CONNS;
    gw->grace_ms = cfg->shutdown_grace_ms ? cfg->shutdown_grace_ms : GW_DEFAULT_GRACE_MS;
    gw->parked_max = cfg->max_parked ? cfg->max_parked : GW_DEFAULT_MAX_PARKED;
    gw->max_body = cfg->max_body ? cfg->max_body : GW_DEFAULT_MAX_BODY;
    gw->handle_signals = cfg->handle_signals;
    gw->on_hup = cfg->on_hup;
    gw->on_hup_ctx = cfg->on_hup_ctx;
    if (cfg->drain && cfg->drained) {
        gw->drain = cfg->drain;
        gw->drained = cfg->drained;
        gw->drain_ctx = cfg->drain_ctx;
        gw->drain_grace_ms = cfg->drain_grace_ms;
    }
    snprintf(gw->level, sizeof gw->level, "%s", cfg->level ? cfg->level : "none");
    unsigned timeout = cfg->timeout_seconds ? cfg->timeout_seconds : GW_DEFAULT_TIMEOUT_S;
    mt_status st = MT_OK;

    gw->data_dir = strdup(cfg->data_dir);
    if (!gw->data_dir) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = gw_tls_context(&gw->ssl_ctx, cfg->key, cfg->cert, cfg->chain, err)) != MT_OK)
        goto out;
    gw->reload = cfg->reload;
    gw->reload_ctx = cfg->reload_ctx;
    gw->renew = cfg->renew;
    gw->renew_ctx = cfg->renew_ctx;
    gw->renew_interval_s = cfg->renew ? cfg->renew_interval_s : 0;
    if (pipe2(gw->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pipe2(gw->done_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        st = mt_err_set(err, MT_EIO, "cannot create the stop pipe: %s", strerror(errno));
        goto out;
    }
    if (pthread_mutex_init(&gw->pool_mu, NULL) != 0) {
        st = mt_err_set(err, MT_ENOMEM, "cannot create the worker pool lock");
        goto out;
    }
    if (pthread_cond_init(&gw->pool_cv, NULL) != 0) {
        pthread_mutex_destroy(&gw->pool_mu);
        st = mt_err_set(err, MT_ENOMEM, "cannot create the worker pool condition");
        goto out;
    }
    gw->pool_init = true;
    mt_evmem_install(); /* libevent's buffers wiped when freed (first call only) */
    gw->base = event_base_new();
    gw->http = gw->base ? evhttp_new(gw->base) : NULL;
    if (gw->http) {
        gw->stop_ev = event_new(gw->base, gw->stop_pipe[0], EV_READ | EV_PERSIST, gw_stop_cb, gw);
        gw->done_ev = event_new(gw->base, gw->done_pipe[0], EV_READ | EV_PERSIST, gw_done_cb, gw);
        gw->reject_ev = event_new(gw->base, -1, 0, gw_reject_cb, gw);
        gw->grace_ev = evtimer_new(gw->base, gw_grace_cb, gw);
        gw->park_ev = event_new(gw->base, -1, EV_PERSIST, gw_park_tick_cb, gw);
        if (gw->drain)
            gw->drain_ev = evtimer_new(gw->base, gw_drain_poll_cb, gw);
        if (mt_sdnotify_watchdog_usec())
            gw->watchdog_ev = event_new(gw->base, -1, EV_PERSIST, gw_watchdog_cb, gw);
        if (gw->renew_interval_s)
            gw->renew_ev = event_new(gw->base, -1, EV_PERSIST, gw_renew_cb, gw);
        if (gw->handle_signals) {
            gw->sigterm_ev = evsignal_new(gw->base, SIGTERM, gw_signal_cb, gw);
            gw->sigint_ev = evsignal_new(gw->base, SIGINT, gw_signal_cb, gw);
            if (gw->reload || gw->on_hup)
                gw->sighup_ev = evsignal_new(gw->base, SIGHUP, gw_sighup_cb, gw);
        }
    }
    struct timeval renew_tv = {(time_t)gw->renew_interval_s, 0};
    unsigned long long wd_half = mt_sdnotify_watchdog_usec() / 2;
    if (wd_half < 1000)
        wd_half = 1000; /* never a zero-timeout persistent timer */
    struct timeval watchdog_tv = {(time_t)(wd_half / 1000000),
                                  (suseconds_t)(wd_half % 1000000)};
    if (!gw->http || !gw->stop_ev || !gw->done_ev || event_add(gw->done_ev, NULL) != 0 ||
        !gw->reject_ev || !gw->grace_ev || (gw->drain && !gw->drain_ev) ||
        (mt_sdnotify_watchdog_usec() &&
         (!gw->watchdog_ev || event_add(gw->watchdog_ev, &watchdog_tv) != 0)) ||
        (gw->renew_interval_s && (!gw->renew_ev || event_add(gw->renew_ev, &renew_tv) != 0)) ||
        (gw->handle_signals && (!gw->sigterm_ev || !gw->sigint_ev)) ||
        event_add(gw->stop_ev, NULL) != 0 ||
        (gw->handle_signals &&
         (evsignal_add(gw->sigterm_ev, NULL) != 0 || evsignal_add(gw->sigint_ev, NULL) != 0)) ||
        (gw->handle_signals && (gw->reload || gw->on_hup) &&
         (!gw->sighup_ev || evsignal_add(gw->sighup_ev, NULL) != 0))) {
        st = mt_err_set(err, MT_ENOMEM, "cannot set up the event loop");
        goto out;
    }
    evhttp_set_allowed_methods(gw->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                             EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(gw->http, GW_MAX_HEADERS);
    evhttp_set_max_body_size(gw->http, gw->max_body > (size_t)INT64_MAX ? (ev_ssize_t)INT64_MAX
                                                                        : (ev_ssize_t)gw->max_body);
    evhttp_set_timeout(gw->http, (int)timeout);
    evhttp_set_bevcb(gw->http, gw_bevcb, gw);
    evhttp_set_gencb(gw->http, gw_request_cb, gw);

    if (gw->be.slow) {
        gw->pool_threads = calloc(slow_threads, sizeof *gw->pool_threads);
        if (!gw->pool_threads) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        for (; gw->pool_n < slow_threads; gw->pool_n++)
            if (pthread_create(&gw->pool_threads[gw->pool_n], NULL, gw_pool_main, gw) != 0) {
                st = mt_err_set(err, MT_ENOMEM, "cannot start the gateway's worker threads");
                goto out;
            }
    }

    if (gw->be.pooled) {
        gw->req_threads = calloc(req_threads, sizeof *gw->req_threads);
        if (!gw->req_threads || pthread_cond_init(&gw->req_cv, NULL) != 0) {
            st = mt_err_set(err, MT_ENOMEM, "cannot set up the gateway's request threads");
            goto out;
        }
        gw->req_cv_init = true;
        for (; gw->req_n < req_threads; gw->req_n++)
            if (pthread_create(&gw->req_threads[gw->req_n], NULL, gw_req_main, gw) != 0) {
                st = mt_err_set(err, MT_ENOMEM, "cannot start the gateway's request threads");
                goto out;
            }
    }

    if (gw->be.audit_batch && gw->done_ev) {
        if (pthread_cond_init(&gw->commit_cv, NULL) != 0) {
            st = mt_err_set(err, MT_ENOMEM, "cannot create the audit committer's condition");
            goto out;
        }
        gw->commit_init = true;
        if (pthread_create(&gw->commit_thread, NULL, gw_commit_main, gw) != 0) {
            st = mt_err_set(err, MT_ENOMEM, "cannot start the gateway's audit committer");
            goto out;
        }
        gw->commit_started = true;
    }

    if ((st = gw_write_cert(gw->data_dir, cfg->cert, cfg->chain, err)) != MT_OK)
        goto out;
    if ((st = gw_bind(gw, cfg->listen ? cfg->listen : GW_DEFAULT_LISTEN, err)) != MT_OK)
        goto out;
    char url_path[4200];
    if (snprintf(url_path, sizeof url_path, "%s/server.url", gw->data_dir) >=
        (int)sizeof url_path) {
        st = mt_err_set(err, MT_EINVAL, "data dir path too long");
        goto out;
    }
    if ((st = mt_file_write_atomic(url_path, gw->url, strlen(gw->url), 0644, err)) != MT_OK)
        goto out;
    *out = gw;
    gw = NULL;
out:
    mt_gateway_free(gw);
    return st;
}

const char *mt_gateway_url(const mt_gateway *gw)
{
    return gw->url;
}

unsigned mt_gateway_port(const mt_gateway *gw)
{
    return gw->port;
}

mt_status mt_gateway_run(mt_gateway *gw, mt_err *err)
{
    if (!gw || gw->loop_done)
        return mt_err_set(err, MT_EINVAL, "gateway is not ready to run (already ran?)");
    mt_info("mesatee: serving on %s, level %s, data dir %s", gw->url, gw->level, gw->data_dir);
    if (!strcmp(gw->level, "none"))
        mt_warn("mesatee: security level none: no TEE protection; the host can read keys and "
                "data in memory. Use --level soft (or a hardware TEE) outside of testing");
    if (atomic_load(&gw->stop_requested))
        gw_begin_stop(gw);
    int rc = gw->stopping && gw->in_flight == 0 ? 0 : event_base_dispatch(gw->base);
    gw->loop_done = true;
    gw->stopping = true;
    if (gw->bound) {
        evhttp_del_accept_socket(gw->http, gw->bound);
        gw->bound = NULL;
    }
    gw_park_recheck(gw, GW_PARK_STOP);
    gw_pool_drain(gw);     /* answers pending slow requests while their connections exist */
    evhttp_free(gw->http); /* closes every remaining connection */
    gw->http = NULL;
    /* Run the deferred bufferevent finalizers (they free the SSL objects). */
    event_base_loop(gw->base, EVLOOP_NONBLOCK);
    if (rc < 0)
        return mt_err_set(err, MT_EINTERNAL, "event loop failed");
    mt_info("mesatee: stopped");
    return MT_OK;
}

void mt_gateway_free(mt_gateway *gw)
{
    if (!gw)
        return;
    gw->loop_done = true;
    gw->stopping = true;
    while (gw->parked) { /* never ran: evhttp_free below frees their requests */
        gw_job *j = gw->parked;
        gw->parked = j->next;
        gw_job_resp_clear(&j->resp);
        gw_job_free(j);
    }
    gw_pool_drain(gw);
    if (gw->http) {
        if (gw->bound)
            evhttp_del_accept_socket(gw->http, gw->bound);
        evhttp_free(gw->http);
    }
    if (gw->stop_ev)
        event_free(gw->stop_ev);
    if (gw->done_ev)
        event_free(gw->done_ev);
    if (gw->park_ev)
        event_free(gw->park_ev);
    if (gw->sigterm_ev)
        event_free(gw->sigterm_ev);
    if (gw->sigint_ev)
        event_free(gw->sigint_ev);
    if (gw->sighup_ev)
        event_free(gw->sighup_ev);
    if (gw->grace_ev)
        event_free(gw->grace_ev);
    if (gw->drain_ev)
        event_free(gw->drain_ev);
    if (gw->watchdog_ev)
        event_free(gw->watchdog_ev);
    if (gw->renew_ev)
        event_free(gw->renew_ev);
    if (gw->reject_ev)
        event_free(gw->reject_ev);
    if (gw->base)
        event_base_free(gw->base); /* runs finalizers: SSL objects go, ex_data freed */
    for (gw_conn *c = gw->rejects, *next; c; c = next) {
        next = c->next_reject;
        gw_conn_unref(c);
    }
    SSL_CTX_free(gw->ssl_ctx);
    if (gw->stop_pipe[0] >= 0)
        close(gw->stop_pipe[0]);
    if (gw->stop_pipe[1] >= 0)
        close(gw->stop_pipe[1]);
    if (gw->done_pipe[0] >= 0)
        close(gw->done_pipe[0]);
    if (gw->done_pipe[1] >= 0)
        close(gw->done_pipe[1]);
    for (gw_job *j = gw->pool_done, *next; j; j = next) {
        next = j->next;
        json_decref(j->resp.json);
        free(j->resp.raw);
        if (j->resp.has_raw_fd && j->resp.raw_fd >= 0)
            close(j->resp.raw_fd);
        gw_job_free(j);
    }
    if (gw->commit_init)
        pthread_cond_destroy(&gw->commit_cv);
    if (gw->req_cv_init)
        pthread_cond_destroy(&gw->req_cv);
    free(gw->req_threads);
    if (gw->pool_init) {
        pthread_mutex_destroy(&gw->pool_mu);
        pthread_cond_destroy(&gw->pool_cv);
    }
    free(gw->pool_threads);
    free(gw->data_dir);
    free(gw);
}
