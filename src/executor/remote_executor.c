/* remote_executor: the executor role; contract in mt_remote_executor.h.
 * Moved out of src/cli/cmd_executor.c (issue 14), with leases, remote
 * cancel, slots and health reports added. */
#include "mt_remote_executor.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_atls.h"
#include "mt_executor.h"
#include "mt_json.h"
#include "mt_resolve.h"
#include "mt_util.h"
#include "remote_job.h"

/* Reports answered 503 (scheduler buffering too much) are sent again this
 * many times, after 1, 2, 4 ... s. */
#define REPORT_RETRIES 3u
#define XFER_RETRIES 3u
/* A node's name resolves within this (mt_resolve_bounded), each of its
 * addresses connects within this, or the request goes to the next node. */
#define EX_RESOLVE_TIMEOUT_MS 5000
#define EX_CONNECT_TIMEOUT_MS 5000

static void ex_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One request over a fresh attested connection. *status 0 when the handshake
 * or the connection failed (message in err). */
/* The client context requests start with: cfg->ctx until the first renewal,
 * then the newest renewed one (held here, one reference). */
static pthread_mutex_t ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *ctx_renewed;

static SSL_CTX *ctx_get(const mt_rexec_config *c)
{
    pthread_mutex_lock(&ctx_mu);
    SSL_CTX *ctx = ctx_renewed ? ctx_renewed : c->ctx;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&ctx_mu);
    return ctx;
}

static void ctx_set(SSL_CTX *ctx)
{
    pthread_mutex_lock(&ctx_mu);
    SSL_CTX *old = ctx_renewed;
    ctx_renewed = ctx;
    pthread_mutex_unlock(&ctx_mu);
    SSL_CTX_free(old); /* requests still using it hold their own reference */
}

/* A node's host as in its URL, for "%s%s%s": an IPv6 literal (the only
 * host with a ':', cmd_executor.c) in brackets. */
#define EX_HOST(n) strchr((n)->host, ':') ? "[" : "", (n)->host, strchr((n)->host, ':') ? "]" : ""

/* The node requests go to: an index into cfg->nodes, moved on by
 * node_failed (one mt_rexec_run per process, as ctx_renewed). */
static atomic_uint node_cur;

static unsigned node_pick(const mt_rexec_config *c)
{
    return atomic_load(&node_cur) % c->n_nodes;
}

/* Node i failed a request (unreachable, refused, 503): later requests go to
 * the next node, unless another request moved on already. */
static void node_failed(const mt_rexec_config *c, unsigned i, const char *why)
{
    unsigned expect = i;
    if (c->n_nodes < 2 ||
        !atomic_compare_exchange_strong(&node_cur, &expect, (i + 1) % c->n_nodes))
        return;
    const mt_rexec_node *a = &c->nodes[i], *b = &c->nodes[(i + 1) % c->n_nodes];
    fprintf(stderr,
            "mesatee executor: scheduler https://%s%s%s:%s failed (%s); moving to "
            "https://%s%s%s:%s\n",
            EX_HOST(a), a->port, why, EX_HOST(b), b->port);
}

/* Why the last TLS call on ssl failed, when no policy verdict of this
 * executor explains it. OpenSSL queues a fatal alert the peer sent as
 * reason SSL_AD_REASON_OFFSET + the alert: the peer ended the channel on
 * purpose (e.g. refused this executor's certificate). A read or write that
 * ran past its socket bound (SO_RCVTIMEO/SO_SNDTIMEO: EAGAIN) leaves the
 * socket BIO's retry flag set: the peer is silent (hung, SIGSTOP, a dead
 * path). Anything else: the connection was closed or reset (a node that
 * refuses this executor may reset it before its alert is read). Empties
 * this thread's OpenSSL error queue. */
typedef enum { EX_CHAN_ALERT, EX_CHAN_TIMEOUT, EX_CHAN_CLOSED } ex_chan;

static ex_chan ex_chan_failure(SSL *ssl)
{
    bool alert = false;
    for (unsigned long e; (e = ERR_get_error());)
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
            alert = true;
    if (alert)
        return EX_CHAN_ALERT;
    BIO *b = SSL_get_rbio(ssl);
    return b && BIO_should_retry(b) ? EX_CHAN_TIMEOUT : EX_CHAN_CLOSED;
}

/* A mutually attested TLS connection to node n: *fd and *ssl to ex_close;
 * each read or write within io_ms (0: 120 s).
 * MT_EUNAVAIL when the node cannot be reached (its name does not resolve
 * within EX_RESOLVE_TIMEOUT_MS, no address connects within
 * EX_CONNECT_TIMEOUT_MS) or its handshake fails without a policy verdict
 * (closed, timed out: a hung node), MT_EAUTH when this executor's --policy
 * refuses the node. Messages name
 * the node as configured (the operator's own --scheduler). */
static mt_status ex_connect(const mt_rexec_config *c, const mt_rexec_node *n, unsigned io_ms,
                            int *fdp, SSL **sslp, mt_err *err)
{
    *fdp = -1;
    *sslp = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai0 = NULL;
    /* bounded: a DNS server that does not answer must not hold a renewal
     * past its lease (mt_resolve.h) */
    int e = mt_resolve_bounded(n->host, n->port, &hints, EX_RESOLVE_TIMEOUT_MS, NULL, NULL, &ai0);
    if (e == ETIMEDOUT)
        return mt_err_set(err, MT_EUNAVAIL, "cannot resolve %s: no answer within %d ms",
                          n->host, EX_RESOLVE_TIMEOUT_MS);
    if (e || !ai0) {
        if (ai0)
            freeaddrinfo(ai0);
        return mt_err_set(err, MT_EUNAVAIL, "cannot resolve %s", n->host);
    }
    int fd = -1;
    for (const struct addrinfo *ai = ai0; ai && fd < 0; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
            e = errno;
            continue;
        }
        if ((e = mt_connect_bounded(fd, ai, EX_CONNECT_TIMEOUT_MS, NULL, NULL))) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai0);
    if (fd < 0) {
        if (e == ETIMEDOUT)
            return mt_err_set(err, MT_EUNAVAIL,
                              "cannot connect to %s%s%s:%s: no connection within %d ms", EX_HOST(n),
                              n->port, EX_CONNECT_TIMEOUT_MS);
        return mt_err_set(err, MT_EUNAVAIL, "cannot connect to %s%s%s:%s: %s", EX_HOST(n), n->port,
                          strerror(e));
    }
    int one = 1; /* requests go out as several TLS records: no Nagle delay */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* each read or write (the handshake's too) within io_ms, 0: 120 s */
    struct timeval tv = {io_ms ? (time_t)(io_ms / 1000) : 120,
                         io_ms ? (suseconds_t)(io_ms % 1000) * 1000 : 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* every node is attested with the same context, the same --policy: a
     * failover checks the next node exactly as the first */
    SSL_CTX *ctx = ctx_get(c);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    *fdp = fd;
    *sslp = ssl;
    if (!ssl || SSL_set_fd(ssl, fd) != 1)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    /* a policy verdict of this handshake (not one left over from an earlier
     * one on this thread) tells a refused node from a hung or cut one */
    mt_atls_clear_refusal();
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) {
        const char *why = mt_atls_last_refusal();
        if (why[0]) { /* this executor's --policy refused the node */
            /* the verdict quotes the node's evidence (e.g. its measurement):
             * this executor's log only; the error, which a task's failure
             * reason may carry, is constant but for the configured node */
            fprintf(stderr, "mesatee executor: scheduler https://%s%s%s:%s: %s\n", EX_HOST(n),
                    n->port, why);
            return mt_err_set(err, MT_EAUTH,
                              "attested TLS handshake with the scheduler failed at %s%s%s:%s: "
                              "this executor's --policy refused the node (the reason is in "
                              "this executor's log)",
                              EX_HOST(n), n->port);
        }
        /* no verdict: the node went silent (accepted by its kernel but
         * hung, SIGSTOP), closed, or ended the handshake itself: the next
         * node */
        ex_chan why_ch = ex_chan_failure(ssl);
        return mt_err_set(
            err, MT_EUNAVAIL, "attested TLS handshake with the scheduler failed at %s%s%s:%s: %s",
            EX_HOST(n), n->port,
            why_ch == EX_CHAN_TIMEOUT ? "unreachable or no answer (timed out)"
            : why_ch == EX_CHAN_ALERT ? "the scheduler ended the handshake (TLS alert)"
                                      : "unreachable or no answer (the connection "
                                        "was closed)");
    }
    return MT_OK;
}

static void ex_close(int fd, SSL *ssl)
{
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
}

/* The request head of POST path with a body of len bytes. */
static mt_status ex_head(const mt_rexec_node *nd, SSL *ssl, const char *path, const char *type,
                         uint64_t len, mt_err *err)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s%s%s\r\nContent-Type: %s\r\n"
                     "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                     path, EX_HOST(nd), type, (unsigned long long)len);
    if (n < 0 || (size_t)n >= sizeof head)
        return mt_err_set(err, MT_EINTERNAL, "request line too long");
    return mt_atls_write(ssl, head, (size_t)n, err);
}

/* *reached: the handshake completed, so the request may have arrived even
 * when this fails (its answer lost). */
static mt_status ex_request_at(const mt_rexec_config *c, const mt_rexec_node *n, unsigned io_ms,
                               const char *path, const char *body, size_t len, int *status,
                               uint8_t **resp, size_t *resp_len, bool *reached, mt_err *err)
{
    *status = 0;
    *resp = NULL;
    *resp_len = 0;
    *reached = false;
    int fd;
    SSL *ssl;
    mt_status rc = ex_connect(c, n, io_ms, &fd, &ssl, err);
    if (rc)
        goto out;
    *reached = true;
    /* TLS 1.3: the scheduler checks this executor's certificate after our
     * side of the handshake completed; a refusal shows as a closed channel. */
    char rhead[8192];
    ERR_clear_error();
    if ((rc = ex_head(n, ssl, path, "application/json", len, err)) ||
        (len && (rc = mt_atls_write(ssl, body, len, err))) ||
        (rc = mt_atls_read_msg(ssl, rhead, sizeof rhead, c->max_job, resp, resp_len, err))) {
        if (rc == MT_ETOOBIG)
            rc = mt_err_set(err, MT_ETOOBIG,
                            "the scheduler's answer is larger than --max-job-mib (%zu MiB); "
                            "raise it to run such jobs",
                            c->max_job >> 20);
        /* a refusal of this executor's certificate arrives as an alert (or
         * as a reset that overtook it); silence past the read bound is no
         * verdict: the node is unreachable or hung */
        ex_chan why_ch = rc == MT_EIO ? ex_chan_failure(ssl) : EX_CHAN_CLOSED;
        if (rc == MT_EIO && why_ch == EX_CHAN_ALERT)
            rc = mt_err_set(err, MT_EAUTH,
                            "attested TLS handshake with the scheduler failed at %s%s%s:%s: the "
                            "scheduler refused this executor (see its log)",
                            EX_HOST(n), n->port);
        else if (rc == MT_EIO && why_ch == EX_CHAN_TIMEOUT)
            rc = mt_err_set(err, MT_EUNAVAIL,
                            "the scheduler at %s%s%s:%s is unreachable or hung: no answer within "
                            "%u s",
                            EX_HOST(n), n->port, io_ms ? (io_ms + 999) / 1000 : 120);
        else if (rc == MT_EIO)
            rc = mt_err_set(err, MT_EUNAVAIL,
                            "the scheduler at %s%s%s:%s closed the connection without an answer: "
                            "it refused this executor in the handshake (see its log) or the "
                            "connection was cut",
                            EX_HOST(n), n->port);
        goto out;
    }
    if (sscanf(rhead, "HTTP/1.1 %d", status) != 1)
        rc = mt_err_set(err, MT_EIO, "bad response from the scheduler");
    SSL_shutdown(ssl);
out:
    ex_close(fd, ssl);
    return rc;
}

/* One request to the current node; when it fails (unreachable, the
 * handshake or the channel failed, or it answered 503: e.g. cut off from
 * the database) the next node of cfg->nodes is tried, each at most once per
 * request. The lease and its fencing token live in the shared store, so any
 * node takes a renewal or a report of a lease claimed through another; a
 * report resent after a cut answer is fenced like any other (a second copy
 * of a stored report is refused). io_ms: ex_connect's. *resent (may be
 * NULL, the caller's false): set when the answer returned is to a copy sent
 * after an earlier try reached a node and lost its answer (that node may
 * have acted on it). */
static mt_status ex_request_io(const mt_rexec_config *c, unsigned io_ms, const char *path,
                               const char *body, size_t len, int *status, uint8_t **resp,
                               size_t *resp_len, bool *resent, mt_err *err)
{
    bool lost = false;
    for (unsigned tries = 1;; tries++) {
        unsigned i = node_pick(c);
        bool reached;
        if (resent && lost)
            *resent = true;
        mt_status rc = ex_request_at(c, &c->nodes[i], io_ms, path, body, len, status, resp,
                                     resp_len, &reached, err);
        if (rc && rc != MT_EAUTH && reached) /* a refused executor sent nothing */
            lost = true;
        if (rc == MT_ETOOBIG || (!rc && *status != 503))
            return rc;
        node_failed(c, i, rc ? err->msg : "it answered HTTP 503");
        if (tries >= c->n_nodes)
            return rc;
        free(*resp);
        *resp = NULL;
        *resp_len = 0;
        *status = 0;
    }
}

static mt_status ex_request(const mt_rexec_config *c, const char *path, const char *body,
                            size_t len, int *status, uint8_t **resp, size_t *resp_len,
                            mt_err *err)
{
    return ex_request_io(c, 0, path, body, len, status, resp, resp_len, NULL, err);
}

/* A raw transfer (remote_job.h mt_rxfer). Input (up_fd < 0): the answer's
 * body, exactly want bytes, goes to down_fd. Output: up_len bytes of up_fd
 * are the body; the answer's sha256 must be up_sha. MT_ECONFLICT when the
 * scheduler answered 409 (lease lost). */
static mt_status ex_xfer(const mt_rexec_config *c, const mt_rxfer *x, int up_fd, uint64_t up_len,
                         const char *up_sha, int down_fd, uint64_t want, mt_err *err)
{
    char q[512], path[600];
    if (!mt_rxfer_format(x, q, sizeof q))
        return mt_err_set(err, MT_EINTERNAL, "cannot name this transfer");
    snprintf(path, sizeof path, "/v1/executor/%s?%s", up_fd >= 0 ? "output" : "input", q);
    int fd, status = 0;
    SSL *ssl;
    uint8_t *body = NULL;
    size_t blen = 0;
    uint8_t buf[1 << 16];
    unsigned node = node_pick(c);
    bool local = false; /* a failure of this host's files, not of the node */
    ERR_clear_error();
    mt_status rc = ex_connect(c, &c->nodes[node], 0, &fd, &ssl, err);
    if (!rc)
        rc = ex_head(&c->nodes[node], ssl, path, "application/octet-stream",
                     up_fd >= 0 ? up_len : 0, err);
    for (uint64_t left = up_fd >= 0 ? up_len : 0; !rc && left;) {
        ssize_t n = read(up_fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            local = true;
            rc = mt_err_set(err, MT_EIO, "reading an output to upload: %s",
                            n ? strerror(errno) : "it shrank");
        } else if (!(rc = mt_atls_write(ssl, buf, (size_t)n, err)))
            left -= (uint64_t)n;
    }
    char rhead[8192];
    size_t clen = 0;
    if (!rc)
        rc = mt_atls_read_head(ssl, rhead, sizeof rhead,
                               up_fd >= 0 ? 4096 : (size_t)MT_RXFER_MAX_BYTES, &clen, err);
    if (!rc && sscanf(rhead, "HTTP/1.1 %d", &status) != 1)
        rc = mt_err_set(err, MT_EIO, "bad response from the scheduler");
    if (!rc && (status != 200 || up_fd >= 0)) { /* a small JSON answer */
        if (clen > 4096)
            rc = mt_err_set(err, MT_EIO, "bad response from the scheduler");
        else
            rc = mt_atls_read_body(ssl, clen, &body, err);
        blen = clen;
    }
    if (!rc && status != 200) {
        /* the answer's text stays in this executor's log: the error can
         * become a task's failure reason, which other parties read */
        fprintf(stderr,
                "mesatee executor: task %s: the scheduler refused a transfer (HTTP %d): %.200s\n",
                x->task_id, status, body ? (const char *)body : "");
        rc = mt_err_set(err, status == 409 ? MT_ECONFLICT : MT_EIO,
                        "the scheduler refused the transfer (HTTP %d; see the executor's log)",
                        status);
    } else if (!rc && up_fd >= 0) {
        const char *sha = NULL;
        json_t *j = body ? json_loadb((const char *)body, blen, 0, NULL) : NULL;
        sha = json_string_value(json_object_get(j, "sha256"));
        if (!sha || strcmp(sha, up_sha) != 0)
            rc = mt_err_set(err, MT_EIO, "the scheduler stored an upload that does not match");
        json_decref(j);
    } else if (!rc) {
        if (clen != want)
            rc = mt_err_set(err, MT_EIO, "the scheduler's input is %zu bytes, the job says %llu",
                            clen, (unsigned long long)want);
        for (size_t left = clen; !rc && left;) {
            int n = SSL_read(ssl, buf, left < sizeof buf ? (int)left : (int)sizeof buf);
            if (n <= 0) {
                rc = mt_err_set(err, MT_EIO, "an input transfer ended early");
                break;
            }
            for (size_t off = 0; !rc && off < (size_t)n;) {
                ssize_t w = write(down_fd, buf + off, (size_t)n - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    local = true;
                    rc = mt_err_set(err, MT_EIO, "writing an input: %s", strerror(errno));
                } else
                    off += (size_t)w;
            }
            left -= (size_t)n;
        }
    }
    if (!rc)
        SSL_shutdown(ssl);
    /* the node could not be reached, hung or cut the channel before it
     * answered: ex_xfer_retried tries again on the next node (a refusal by
     * this executor's --policy, MT_EAUTH, is not retried anywhere) */
    if (rc && rc != MT_EAUTH && rc != MT_ENOMEM && !status && !local)
        node_failed(c, node, err->msg);
    free(body);
    ex_close(fd, ssl);
    return rc;
}

static void ex_job_free(mt_job *job)
{
    for (size_t i = 0; i < job->n_inputs; i++) {
        if (job->inputs[i].path) /* the input's ciphertext, fetched for this task */
            unlink(job->inputs[i].path);
        free(job->inputs[i].slot);
        free(job->inputs[i].path);
        free(job->inputs[i].url);
        mt_wipe(job->inputs[i].key, 32);
    }
    for (size_t i = 0; i < job->n_outputs; i++) {
        if (job->outputs[i].path)
            unlink(job->outputs[i].path);
        free(job->outputs[i].slot);
        free(job->outputs[i].path);
        free(job->outputs[i].file_id);
        mt_wipe(job->outputs[i].key, 32);
    }
    free(job->inputs);
    free(job->outputs);
    if (job->module) {
        mt_job_input *m = (mt_job_input *)job->module;
        if (m->path)
            unlink(m->path);
        free(m->path);
        mt_wipe(m->key, 32);
        free(m);
    }
}

/* Writes ciphertext to fpath (0600, crash-safe) and returns a heap copy of
 * the path in *path. */
static mt_status ex_put(const mt_rjob_io *io, const char *fpath, char **path, mt_err *err)
{
    mt_status rc = mt_file_write_atomic(fpath, io->ciphertext, io->ciphertext_len, 0600, err);
    if (rc)
        return rc;
    if (!(*path = strdup(fpath)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* ex_xfer with the retries of both directions: a busy scheduler (503: too
 * many transfers), a node that cannot be reached, hangs in the handshake or
 * cuts the connection is retried after 1, 2 and 4 s from the start of the
 * file (the download file emptied first), after an unreachable, hung or cut
 * node on the next node (ex_xfer's node_failed); a lost lease (409) or a
 * node refused by this executor's --policy (MT_EAUTH) is not. */
static mt_status ex_xfer_retried(const mt_rexec_config *c, const mt_rxfer *x, int up_fd,
                                 uint64_t up_len, const char *up_sha, int down_fd, uint64_t want,
                                 mt_err *err)
{
    for (unsigned attempt = 0;; attempt++) {
        mt_status rc = ex_xfer(c, x, up_fd, up_len, up_sha, down_fd, want, err);
        if (!rc || rc == MT_ECONFLICT || rc == MT_EAUTH || attempt == XFER_RETRIES)
            return rc;
        if ((up_fd >= 0 && lseek(up_fd, 0, SEEK_SET) != 0) ||
            (down_fd >= 0 && (ftruncate(down_fd, 0) != 0 || lseek(down_fd, 0, SEEK_SET) != 0)))
            return rc;
        ex_sleep_ms(1000u << attempt);
    }
}

/* A streamed input (or the module) fetched into fpath (0600, new file). */
static mt_status ex_fetch(const mt_rexec_config *c, const mt_rjob *rj, const mt_rjob_io *io,
                          bool module, const char *fpath, char **path, mt_err *err)
{
    if (!rj->lease_fence)
        return mt_err_set(err, MT_EINVAL, "a streamed input needs a lease");
    mt_rxfer x;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "%s", rj->task_id);
    x.fence = rj->lease_fence;
    memcpy(x.secret, rj->lease_secret, sizeof x.secret);
    if (!module)
        snprintf(x.slot, sizeof x.slot, "%s", io->slot);
    int fd = open(fpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return mt_err_set(err, MT_EIO, "cannot create %s: %s", fpath, strerror(errno));
    mt_status rc = ex_xfer_retried(c, &x, -1, 0, NULL, fd, io->size, err);
    mt_wipe(x.secret, sizeof x.secret);
    if (close(fd) != 0 && !rc)
        rc = mt_err_set(err, MT_EIO, "writing %s: %s", fpath, strerror(errno));
    if (!rc && !(*path = strdup(fpath)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (rc)
        unlink(fpath); /* no partial ciphertext left behind */
    return rc;
}

/* The decoded job (remote_job.h, the one reader of the scheduler's job
 * document) into job; ciphertexts become files under dir. job borrows
 * strings from rj, which must outlive it. */
static mt_status ex_job_build(const mt_rexec_config *c, const mt_rjob *rj, const char *dir, mt_job *job,
                              mt_err *err)
{
    job->task_id = rj->task_id;
    job->executor_type = rj->executor_type;
    job->function = rj->function;
    job->keys = rj->keys; /* KeyStore keys: borrowed from rj, which wipes them */
    job->n_keys = rj->n_keys;
    job->arguments = rj->arguments;
    job->limits.mem_bytes = rj->mem_bytes;
    job->limits.cpu_seconds = rj->cpu_seconds;
    job->limits.wall_ms = rj->wall_ms;
    job->worker_path = c->worker;
    job->file_url_root = c->file_url_root;
    job->fetch_allow = c->fetch_allow;
    job->inputs = calloc(rj->n_inputs + 1, sizeof *job->inputs);
    job->outputs = calloc(rj->n_outputs + 1, sizeof *job->outputs);
    if (!job->inputs || !job->outputs)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char p[4200];
    mt_status rc = MT_OK;
    if (rj->has_module) {
        mt_job_input *m = calloc(1, sizeof *m);
        if (!m)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        job->module = m;
        memcpy(m->key, rj->module.key, 32);
        memcpy(m->plain_sha256, rj->module.plain_sha256, sizeof m->plain_sha256);
        snprintf(p, sizeof p, "%s/module", dir);
        if ((rc = rj->module.stream ? ex_fetch(c, rj, &rj->module, true, p, &m->path, err)
                                    : ex_put(&rj->module, p, &m->path, err)))
            return rc;
    }
    for (size_t i = 0; i < rj->n_inputs; i++) {
        const mt_rjob_io *r = &rj->inputs[i];
        mt_job_input *in = &job->inputs[job->n_inputs++];
        if (!(in->slot = strdup(r->slot)) || (r->url && !(in->url = strdup(r->url))))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        memcpy(in->key, r->key, 32);
        memcpy(in->sha256, r->sha256, sizeof in->sha256);
        snprintf(p, sizeof p, "%s/in-%zu", dir, i);
        if (r->ciphertext && (rc = ex_put(r, p, &in->path, err)))
            return rc;
        if (r->stream && (rc = ex_fetch(c, rj, r, false, p, &in->path, err)))
            return rc;
    }
    for (size_t i = 0; i < rj->n_outputs; i++) {
        const mt_rjob_io *r = &rj->outputs[i];
        mt_job_output *o = &job->outputs[job->n_outputs++];
        snprintf(p, sizeof p, "%s/out-%zu", dir, i);
        if (!(o->slot = strdup(r->slot)) || !(o->path = strdup(p)) ||
            (r->file_id[0] && !(o->file_id = strdup(r->file_id))))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        memcpy(o->key, r->key, 32);
    }
    return MT_OK;
}

/* The report document of a run (outputs' ciphertext included when ok). */
/* Uploads an output file (POST /v1/executor/output) under the claim's lease:
 * *size and hex its size and SHA-256. MT_ECONFLICT: the lease is lost. */
static mt_status ex_upload(const mt_rexec_config *c, const char *task_id, uint64_t fence,
                           const char *secret, const char *slot, const char *fpath,
                           uint64_t *size, char hex[65], mt_err *err)
{
    int fd = open(fpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return mt_err_set(err, MT_EIO, "the worker wrote no output for a slot");
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t buf[1 << 16];
    mt_status rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
                       ? MT_OK
                       : mt_err_set(err, MT_ENOMEM, "out of memory");
    for (ssize_t n; !rc && (n = read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || EVP_DigestUpdate(md, buf, (size_t)n) != 1)
            rc = mt_err_set(err, MT_EIO, "reading an output");
    }
    unsigned char d[32];
    unsigned dl = 0;
    if (!rc && EVP_DigestFinal_ex(md, d, &dl) != 1)
        rc = mt_err_set(err, MT_EINTERNAL, "sha256 failed");
    EVP_MD_CTX_free(md);
    if (!rc) {
        mt_hex_encode(d, 32, hex);
        *size = (uint64_t)sb.st_size;
    }
    if (!rc && lseek(fd, 0, SEEK_SET) != 0)
        rc = mt_err_set(err, MT_EIO, "reading an output");
    mt_rxfer x;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "%s", task_id);
    x.fence = fence;
    snprintf(x.secret, sizeof x.secret, "%s", secret);
    snprintf(x.slot, sizeof x.slot, "%s", slot);
    if (!rc)
        rc = ex_xfer_retried(c, &x, fd, *size, hex, -1, 0, err);
    mt_wipe(x.secret, sizeof x.secret);
    close(fd);
    return rc;
}

/* The report document of a run. Outputs (when ok): uploaded first with
 * ex_upload when the claim has a lease (fence > 0, secret), else included
 * as base64 (at most MT_RREPORT_MAX_BYTES each). */
static json_t *ex_report(const mt_rexec_config *c, const mt_job *job, const mt_job_result *r,
                         const char *setup_failure, uint64_t fence, const char *secret)
{
    json_t *rep = json_pack(
        "{s:s, s:b, s:b, s:s?, s:s?, s:s?, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{}}", "task_id",
        job->task_id, "ok", !setup_failure && r->ok, "canceled", !setup_failure && r->canceled,
        "return_value", setup_failure ? NULL : r->return_value, "failure_reason",
        setup_failure ? setup_failure : r->failure_reason, "log", setup_failure ? NULL : r->log,
        "metering", "cpu_ms", (json_int_t)r->cpu_ms, "peak_rss_kb", (json_int_t)r->peak_rss_kb,
        "wall_ms", (json_int_t)r->wall_ms, "bytes_in", (json_int_t)r->bytes_in, "bytes_out",
        (json_int_t)r->bytes_out, "fuel_used", (json_int_t)r->fuel_used, "outputs");
    /* only when there were any: a server before key metering refuses the key */
    if (rep && !setup_failure && r->key_signs &&
        json_object_set_new(json_object_get(rep, "metering"), "key_signs",
                            json_integer((json_int_t)r->key_signs))) {
        json_decref(rep);
        return NULL;
    }
    if (!rep || setup_failure || !r->ok)
        return rep;
    json_t *outs = json_object_get(rep, "outputs");
    for (size_t i = 0; fence && secret && secret[0] && i < job->n_outputs; i++) {
        uint64_t size = 0;
        char hex[65];
        mt_err err;
        mt_err_clear(&err);
        if (ex_upload(c, job->task_id, fence, secret, job->outputs[i].slot, job->outputs[i].path,
                      &size, hex, &err) != MT_OK) {
            /* the scheduler fails the task for a missing slot */
            fprintf(stderr, "mesatee executor: task %s: uploading an output: %s\n",
                    job->task_id, err.msg);
            continue;
        }
        json_object_set_new(outs, job->outputs[i].slot,
                            json_pack("{s:b, s:s, s:I}", "uploaded", 1, "sha256", hex, "size",
                                      (json_int_t)size));
    }
    for (size_t i = 0; !(fence && secret && secret[0]) && i < job->n_outputs; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        mt_err err;
        /* an output above the report limit could not be stored anyway */
        if (mt_file_read(job->outputs[i].path, MT_RREPORT_MAX_BYTES, &data, &len, &err) !=
            MT_OK)
            continue; /* the scheduler fails the task for a missing slot */
        uint8_t md[32];
        char hex[65];
        SHA256(data, len, md);
        mt_hex_encode(md, 32, hex);
        char *b64 = mt_b64_encode(data, len);
        free(data);
        if (b64)
            json_object_set_new(outs, job->outputs[i].slot,
                                json_pack("{s:s, s:s, s:I}", "ciphertext", b64, "sha256", hex,
                                          "size", (json_int_t)len));
        free(b64);
    }
    return rep;
}

/* The task id and fencing token of a job document the reader refused, when
 * it has a valid id (so that the scheduler learns the task failed); else
 * tid "". */
static void ex_refused_task_id(const uint8_t *doc, size_t len, char tid[MT_ID_LEN + 1],
                               uint64_t *fence, char secret[65])
{
    tid[0] = 0;
    *fence = 0;
    secret[0] = 0;
    json_t *j = mt_json_parse((const char *)doc, len, len, MT_JSON_DEFAULT_DEPTH, NULL);
    const char *t = json_string_value(json_object_get(j, "task_id"));
    json_t *f = json_object_get(json_object_get(j, "lease"), "fence");
    const char *sec = json_string_value(json_object_get(json_object_get(j, "lease"), "secret"));
    if (t && mt_id_valid(t)) {
        snprintf(tid, MT_ID_LEN + 1, "%s", t);
        if (json_is_integer(f) && json_integer_value(f) > 0 &&
            json_integer_value(f) <= MT_RLEASE_FENCE_MAX)
            *fence = (uint64_t)json_integer_value(f);
        if (mt_rlease_secret_valid(sec))
            memcpy(secret, sec, 65);
    }
    json_decref(j);
}

/* ---- the executor's shared state ---------------------------------------- */

typedef struct rx_state {
    const mt_rexec_config *c;
    pthread_mutex_t mu; /* guards everything below */
    unsigned long claimed; /* claims made or being made (max_tasks) */
    bool stop;             /* a slot thread failed to start: the others end */
    pthread_cond_t renew_cv; /* wakes renew_main at stop (CLOCK_MONOTONIC) */
    unsigned busy;
    uint64_t tasks_run, tasks_failed;
    char last_error[MT_RHELLO_ERROR_MAX + 1];
} rx_state;

/* The last error: a fixed phrase, with an HTTP status when http > 0 (never
 * task data: the scheduler shows it in /metrics). */
static void set_error(rx_state *x, const char *phrase, int http)
{
    pthread_mutex_lock(&x->mu);
    if (http > 0)
        snprintf(x->last_error, sizeof x->last_error, "%s (HTTP %d)", phrase, http);
    else
        snprintf(x->last_error, sizeof x->last_error, "%s", phrase);
    pthread_mutex_unlock(&x->mu);
}

/* The claim's body: this executor's health (mt_rhello). */
static char *hello_body(rx_state *x)
{
    pthread_mutex_lock(&x->mu);
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "executor", x->c->name, "slots",
                          (json_int_t)x->c->slots, "busy", (json_int_t)x->busy, "tasks_run",
                          (json_int_t)x->tasks_run, "tasks_failed",
                          (json_int_t)x->tasks_failed, "last_error", x->last_error);
    pthread_mutex_unlock(&x->mu);
    char *s = j ? mt_json_dump(j) : NULL;
    json_decref(j);
    return s;
}

/* ---- the lease of one running task ---------------------------------------- */

typedef struct lease {
    rx_state *x;
    const char *task_id;
    uint64_t fence;
    const char *secret; /* the claim's lease secret (64 hex) */
    uint32_t lease_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;         /* under mu */
    atomic_bool lost;  /* the scheduler refused a renewal: another executor has it */
    atomic_bool cancel; /* the task's cancellation was requested */
} lease;

static bool lease_should_stop(void *arg)
{
    lease *l = arg;
    return atomic_load(&l->lost) || atomic_load(&l->cancel);
}

/* Renews every third of the lease until stopped, the lease is lost or the
 * task is canceled. */
static void *lease_main(void *p)
{
    lease *l = p;
    char body[200];
    snprintf(body, sizeof body, "{\"task_id\":\"%s\",\"fence\":%llu,\"secret\":\"%s\"}",
             l->task_id, (unsigned long long)l->fence, l->secret);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(l->lease_ms / 3) * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
            ;
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        int status = 0;
        uint8_t *resp = NULL;
        size_t rlen = 0;
        mt_err err;
        mt_err_clear(&err);
        mt_rrenew_answer ans;
        /* a node that accepts but does not answer must not hold the renewal
         * past the lease: each read within half of it (at least 5 s), so a
         * renewal sent at a third fails over with time left */
        unsigned io_ms = l->lease_ms / 2 > 5000 ? l->lease_ms / 2 : 5000;
        if (ex_request_io(l->x->c, io_ms, "/v1/executor/renew", body, strlen(body), &status, &resp,
                          &rlen, NULL, &err)) {
            /* unreachable: keep trying; the scheduler decides when it ran out */
            fprintf(stderr, "mesatee executor: task %s: renewing its lease: %s\n", l->task_id,
                    err.msg);
            set_error(l->x, "cannot reach the scheduler to renew a lease", 0);
        } else if (status == 409) {
            fprintf(stderr, "mesatee executor: task %s: lease lost (fencing token %llu): the "
                            "scheduler handed the task to another executor; stopping it\n",
                    l->task_id, (unsigned long long)l->fence);
            set_error(l->x, "lease lost", 0);
            atomic_store(&l->lost, true);
        } else if (status != 200 ||
                   mt_rrenew_answer_decode((const char *)resp, rlen, &ans, &err) != MT_OK) {
            fprintf(stderr, "mesatee executor: task %s: renewal answered HTTP %d%s%s\n",
                    l->task_id, status, err.msg[0] ? ": " : "", err.msg);
            set_error(l->x, "lease renewal failed", status);
        } else {
            l->lease_ms = ans.lease_ms;
            if (ans.cancel && !atomic_exchange(&l->cancel, true))
                fprintf(stderr, "mesatee executor: task %s: cancellation requested; stopping "
                                "it\n",
                        l->task_id);
        }
        free(resp);
        pthread_mutex_lock(&l->mu);
        if (atomic_load(&l->lost) || atomic_load(&l->cancel))
            break;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- one task -------------------------------------------------------------- */

/* Stops a task's renewal thread (l NULL: none ran) and wipes the lease
 * secret it used. */
static void lease_end(lease *l, pthread_t lt, char *secret, size_t secret_len)
{
    if (l) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(lt, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    mt_wipe(secret, secret_len);
}

/* Runs one claimed job document and reports it. */
static mt_status ex_run(rx_state *x, const uint8_t *doc, size_t doc_len, mt_err *err)
{
    const mt_rexec_config *c = x->c;
    mt_job job;
    memset(&job, 0, sizeof job);
    mt_job_result res;
    memset(&res, 0, sizeof res);
    mt_rjob rj;
    char dir[4096], reason[MT_ERR_MSG_MAX + 64] = "", tid[MT_ID_LEN + 1];
    mt_err jerr;
    mt_err_clear(&jerr);
    lease l;
    memset(&l, 0, sizeof l);
    bool lease_on = false;
    pthread_t lt;
    memset(&lt, 0, sizeof lt); /* only joined when lease_on */
    uint64_t fence = 0;
    char secret[65] = "";
    mt_status rc = mt_rjob_decode((const char *)doc, doc_len, &rj, &jerr);
    if (!rc) {
        fence = rj.lease_fence;
        memcpy(secret, rj.lease_secret, sizeof secret);
    }
    if (rc) {
        ex_refused_task_id(doc, doc_len, tid, &fence, secret);
        if (!tid[0])
            return mt_err_set(err, MT_EINVAL, "malformed job from the scheduler: %s", jerr.msg);
        dir[0] = 0;
    } else {
        snprintf(tid, sizeof tid, "%s", rj.task_id);
        /* the token in the name: a task this executor lost and got back runs
         * in a directory of its own */
        snprintf(dir, sizeof dir, "%s/%s-%llu", c->work_dir, tid,
                 (unsigned long long)rj.lease_fence);
        rc = mt_mkdirs(dir, 0700, &jerr);
        if (!rc)
            rc = ex_job_build(c, &rj, dir, &job, &jerr);
    }
    if (!rc && rj.lease_fence) {
        l.x = x;
        l.task_id = tid;
        l.fence = rj.lease_fence;
        l.secret = secret;
        l.lease_ms = rj.lease_ms;
        pthread_mutex_init(&l.mu, NULL);
        /* lease_main's deadlines are CLOCK_MONOTONIC (a clock step must not
         * skip or stall renewals) */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l.cv, &ca);
        pthread_condattr_destroy(&ca);
        lease_on = pthread_create(&lt, NULL, lease_main, &l) == 0;
        if (!lease_on) {
            pthread_mutex_destroy(&l.mu);
            pthread_cond_destroy(&l.cv);
            rc = mt_err_set(&jerr, MT_EINTERNAL, "cannot start the lease thread");
        }
    }
    if (rc) {
        snprintf(reason, sizeof reason, "the executor could not prepare the task: %s",
                 jerr.msg);
    } else {
        fprintf(stderr, "mesatee executor: task %s running (%s/%s, fencing token %llu)\n", tid,
                job.executor_type, job.function, (unsigned long long)rj.lease_fence);
        mt_status xrc = mt_executor_run(&job, lease_on ? lease_should_stop : NULL,
                                        lease_on ? &l : NULL, &res, &jerr);
        if (xrc != MT_OK) {
            /* the message names host paths: the executor's log, not the reason */
            fprintf(stderr, "mesatee executor: task %s: could not start the worker: %s\n", tid,
                    jerr.msg);
            snprintf(reason, sizeof reason, "could not start the worker (%s; see the executor "
                     "log)", mt_status_name(xrc));
            set_error(x, "could not start the worker", 0);
        }
    }
    /* the lease stays renewed until the report is answered: storing a large
     * report takes time, and the scheduler's sweeper does not wait for it */
    job.task_id = tid;
    json_t *rep = ex_report(c, &job, &res, reason[0] ? reason : NULL, fence, secret);
    if (rep && fence && json_object_set_new(rep, "fence", json_integer((json_int_t)fence))) {
        json_decref(rep);
        rep = NULL;
    }
    /* test hook (it_executor_lease.sh): a report with the right fencing
     * token but not the claim's secret, as one that guessed the token */
    char rsecret[sizeof secret];
    memcpy(rsecret, secret, sizeof rsecret);
    if (rsecret[0] && getenv("MESATEE_TEST_EXECUTOR_WRONG_SECRET"))
        rsecret[0] = rsecret[0] == '0' ? '1' : '0';
    if (rep && rsecret[0] &&
        json_object_set_new(rep, "lease_secret", json_string(rsecret))) {
        json_decref(rep);
        rep = NULL;
    }
    mt_wipe(rsecret, sizeof rsecret);
    char *body = rep ? mt_json_dump(rep) : NULL;
    json_decref(rep);
    bool failed = reason[0] || !res.ok;
    mt_job_result_clear(&res);
    ex_job_free(&job);
    mt_rjob_free(&rj);
    if (dir[0])
        rmdir(dir);
    if (!body) {
        lease_end(lease_on ? &l : NULL, lt, secret, sizeof secret);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    int status = 0;
    uint8_t *resp = NULL;
    size_t rlen = 0;
    /* test hook (it_objects_nodes.sh: the outputs went up through one node,
     * which is killed before the report, which then goes to the next node of
     * --scheduler): wait until the file MESATEE_TEST_EXECUTOR_REPORT_GATE
     * exists */
    const char *gate = getenv("MESATEE_TEST_EXECUTOR_REPORT_GATE");
    if (gate && *gate) {
        fprintf(stderr, "mesatee executor: task %s: outputs uploaded; waiting at the report "
                        "gate\n", tid);
        for (unsigned i = 0; i < 6000 && access(gate, F_OK) != 0; i++)
            ex_sleep_ms(50);
    }
    /* 503: the scheduler is buffering too many reports; retry a few times */
    bool resent = false;
    for (unsigned attempt = 0;; attempt++) {
        rc = ex_request_io(c, 0, "/v1/executor/report", body, strlen(body), &status, &resp, &rlen,
                           &resent, err);
        if (rc || status != 503 || attempt == REPORT_RETRIES)
            break;
        fprintf(stderr, "mesatee executor: task %s: the scheduler is busy (HTTP 503), "
                        "retrying the report\n", tid);
        free(resp);
        resp = NULL;
        ex_sleep_ms(1000u << attempt);
    }
    free(body);
    lease_end(lease_on ? &l : NULL, lt, secret, sizeof secret);
    if (!rc && status == 409 && resent) {
        /* the node that lost its answer may have stored this very report,
         * which makes the copy's token stale: not a refusal */
        fprintf(stderr,
                "mesatee executor: task %s: the report may already be stored (resent "
                "after a lost answer; the next node answered HTTP 409)\n",
                tid);
    } else if (!rc && status != 200) {
        set_error(x, "the scheduler refused a report", status);
        rc = mt_err_set(err, MT_EIO, "the scheduler did not store the report (HTTP %d): %.200s",
                        status, resp ? (const char *)resp : "");
        failed = true;
    } else if (!rc) {
        fprintf(stderr, "mesatee executor: task %s reported\n", tid);
    } else {
        set_error(x, "cannot reach the scheduler to report", 0);
        failed = true;
    }
    free(resp);
    pthread_mutex_lock(&x->mu);
    x->tasks_run++;
    if (failed)
        x->tasks_failed++;
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* The health after a task (POST /v1/executor/health): best effort. */
static void send_health(rx_state *x)
{
    char *hello = hello_body(x);
    int status = 0;
    uint8_t *resp = NULL;
    size_t rlen = 0;
    mt_err err;
    mt_err_clear(&err);
    if (hello && ex_request(x->c, "/v1/executor/health", hello, strlen(hello), &status, &resp,
                            &rlen, &err) == MT_OK &&
        status != 200)
        fprintf(stderr, "mesatee executor: health report answered HTTP %d\n", status);
    free(resp);
    free(hello);
}

/* ---- slots ------------------------------------------------------------------ */

/* One slot: claims and runs one task at a time until max_tasks were claimed. */
static void *slot_main(void *p)
{
    rx_state *x = p;
    const mt_rexec_config *c = x->c;
    unsigned backoff = c->poll_ms;
    for (;;) {
        pthread_mutex_lock(&x->mu);
        bool more = !x->stop && (!c->max_tasks || x->claimed < c->max_tasks);
        if (more)
            x->claimed++; /* reserved: given back when no task came */
        pthread_mutex_unlock(&x->mu);
        if (!more)
            break;
        int status = 0;
        uint8_t *resp = NULL;
        size_t rlen = 0;
        mt_err rerr;
        mt_err_clear(&rerr);
        char *hello = hello_body(x);
        mt_status rc = hello ? ex_request(c, "/v1/executor/claim", hello, strlen(hello),
                                          &status, &resp, &rlen, &rerr)
                             : mt_err_set(&rerr, MT_ENOMEM, "out of memory");
        free(hello);
        bool got = !rc && status == 200 && resp;
        if (got) {
            pthread_mutex_lock(&x->mu);
            x->busy++;
            pthread_mutex_unlock(&x->mu);
            if (ex_run(x, resp, rlen, &rerr))
                fprintf(stderr, "mesatee executor: %s\n", rerr.msg);
            pthread_mutex_lock(&x->mu);
            x->busy--;
            pthread_mutex_unlock(&x->mu);
            send_health(x);
            mt_wipe(resp, rlen);
            backoff = c->poll_ms;
        } else {
            pthread_mutex_lock(&x->mu);
            x->claimed--;
            pthread_mutex_unlock(&x->mu);
        }
        if (rc) {
            fprintf(stderr, "mesatee executor: %s\n", rerr.msg);
            set_error(x, "cannot reach the scheduler to claim", 0);
            ex_sleep_ms(backoff);
            backoff = backoff < 10000 ? backoff * 2 : backoff;
        } else if (!got && status != 204) {
            fprintf(stderr, "mesatee executor: claim failed (HTTP %d): %.200s\n", status,
                    resp ? (const char *)resp : "");
            set_error(x, "the scheduler refused a claim", status);
            ex_sleep_ms(c->poll_ms);
        } else if (!got) {
            backoff = c->poll_ms;
            ex_sleep_ms(c->poll_ms);
        }
        free(resp);
    }
    return NULL;
}

/* Renews the client context every cfg->renew_s seconds until x->stop. */
static void *renew_main(void *p)
{
    rx_state *x = p;
    const mt_rexec_config *c = x->c;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        next.tv_sec += (time_t)c->renew_s;
        pthread_mutex_lock(&x->mu);
        while (!x->stop && pthread_cond_timedwait(&x->renew_cv, &x->mu, &next) != ETIMEDOUT)
            ;
        bool stop = x->stop;
        pthread_mutex_unlock(&x->mu);
        if (stop)
            break;
        SSL_CTX *ctx = NULL;
        mt_err err;
        mt_err_clear(&err);
        if (c->renew(c->renew_ctx, &ctx, &err) != MT_OK) {
            fprintf(stderr, "mesatee executor: certificate renewal failed, keeping the current "
                            "one: %s\n", err.msg);
            set_error(x, "certificate renewal failed", 0);
            continue;
        }
        ctx_set(ctx);
        fprintf(stderr, "mesatee executor: TLS key and certificate renewed with fresh evidence\n");
    }
    return NULL;
}

mt_status mt_rexec_run(const mt_rexec_config *cfg, mt_err *err)
{
    if (!cfg->slots || cfg->slots > MT_REXEC_MAX_SLOTS)
        return mt_err_set(err, MT_EINVAL, "slots must be 1..%d", MT_REXEC_MAX_SLOTS);
    if (!cfg->nodes || !cfg->n_nodes || cfg->n_nodes > MT_REXEC_MAX_NODES)
        return mt_err_set(err, MT_EINVAL, "1..%d scheduler nodes", MT_REXEC_MAX_NODES);
    atomic_store(&node_cur, 0);
    /* a scheduler that closes a connection while a body is still going out
     * (a refused transfer) must not kill the executor: EPIPE instead */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    rx_state x;
    memset(&x, 0, sizeof x);
    x.c = cfg;
    pthread_mutex_init(&x.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x.renew_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t th[MT_REXEC_MAX_SLOTS], rt;
    bool renewing = cfg->renew && cfg->renew_s &&
                    pthread_create(&rt, NULL, renew_main, &x) == 0;
    if (cfg->renew && cfg->renew_s && !renewing)
        fprintf(stderr, "mesatee executor: cannot start the certificate renewal thread; the "
                        "certificate is not renewed\n");
    unsigned n = 0;
    mt_status rc = MT_OK;
    for (; n < cfg->slots; n++)
        if (pthread_create(&th[n], NULL, slot_main, &x)) {
            rc = mt_err_set(err, MT_EINTERNAL, "cannot start the executor's slot threads");
            /* the started ones end at max_tasks: make that now */
            pthread_mutex_lock(&x.mu);
            x.stop = true;
            pthread_mutex_unlock(&x.mu);
            break;
        }
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    if (n) /* the last word on this executor's health: every slot idle */
        send_health(&x);
    if (renewing) {
        pthread_mutex_lock(&x.mu);
        x.stop = true;
        pthread_cond_signal(&x.renew_cv);
        pthread_mutex_unlock(&x.mu);
        pthread_join(rt, NULL);
    }
    ctx_set(NULL);
    pthread_cond_destroy(&x.renew_cv);
    pthread_mutex_destroy(&x.mu);
    return rc;
}
