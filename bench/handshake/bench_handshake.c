/* bench_handshake: attested TLS vs plain TLS 1.3 on loopback (issue 3).
 *
 * One server thread accepts TLS 1.3 connections on 127.0.0.1 with a key and
 * certificate from mt_tee_tls_identity (made once, as the gateway does: the
 * evidence is produced at certificate time, never per handshake); the main
 * thread runs full handshakes against it (no session resumption, no tickets)
 * and reads one byte, so each connection is a complete handshake. The client
 * verifies the server the way libmesatee does (src/client/client.c,
 * attest_leaf): for level none, OpenSSL's chain check against the pinned
 * certificate (what `--ca FILE` does); above none, mt_ratls_verify_x509 on the
 * TLS stack's peer certificate at the current time then mt_policy_check,
 * inside the handshake. The time spent in
 * that verification is measured with the client thread's CPU clock.
 *
 * Every row is measured interleaved with its own plain-TLS runs, run by run
 * (none, kind, none, kind, ...), and its ratios are to those runs only: no
 * ratio is ever taken against runs made at another time.
 *
 * Rows:
 *   soft      level soft evidence, TOFU policy (measurement + platform key)
 *   tpm2      level tpm2 quote (needs MESATEE_TPM2_TCTI, e.g. a swtpm; else skipped)
 *   sgx-ratls recorded Intel SGX SDK RA-TLS certificate (CCC form, DCAP quote,
 *             its PEM converted to DER once, the form a TLS stack receives;
 *             no collateral: an empty handle, which holds the verified-PCK-chain
 *             cache) verified at its pinned time in the handshake. Its key is
 *             P-384, so a real SDK server's CertificateVerify is a P-384
 *             signature: the server here presents a fresh P-384 key in a
 *             certificate carrying the recorded one's subject and extensions
 *             (same size on the wire; its quote does not bind this key, which
 *             is why the client verifies the recorded DER, not the presented
 *             certificate). The handshake pays the P-384 CertificateVerify
 *             (in the client CPU and wall columns, outside verify CPU), the
 *             callback the evidence check without the self-signature
 *             (MT_RATLS_PEER_PROVES_KEY), as a client of such a server does.
 *             Two anchors, interleaved in the same loop: "none" (plain TLS
 *             with our P-256 server key, what issue 13 compares with) and
 *             "none-p384" (plain TLS with a P-384 server key, like for like).
 *   sgx-dcap  recorded dcap-qvl SGX quote with its collateral (TCB info, QE
 *             identity, CRLs) in a handle loaded once: its cache keeps the
 *             parsed, verified collateral and PCK chain (mt_dcap_coll.h)
 *   tdx-dcap  recorded dcap-qvl TDX quote with its collateral, likewise
 *   sev-snp   recorded go-sev-guest Milan report with its VCEK and AMD chain
 *             in a handle loaded once (it remembers the verified chain)
 * The recorded quote rows (sgx-dcap, tdx-dcap, sev-snp) run against our
 * level-none server (P-256, the key mesatee makes at every level:
 * src/tee/mt_tls_id.c for none, mt_tee_tls_identity above) and replace its
 * pinned chain check by the evidence check (they cannot bind to the live
 * key: their key is not ours).
 *
 * Verified-peer cache (mt_vcache.h, issue 13): each row with a certificate
 * (soft, tpm2, sgx-ratls) is measured three ways besides its none runs:
 * "nocache" (mt_ratls_verify_x509 + mt_policy_check, the full verification of
 * every handshake; the recorded sgx-ratls row parses its DER with
 * mt_ratls_verify_cert) and "cached" (mt_policy_verify_x509, libmesatee's
 * path: the first handshake verifies, the next ones find the certificate in
 * the cache; the TLS handshake still proves possession of its key).
 *
 * Usage: bench_handshake [-n HANDSHAKES] [-r REPEATS] [-t TESTVECTOR_DIR]
 * Prints one table: median of the repeats of handshakes/s, wall ms per
 * handshake, client CPU ms per handshake, verify CPU ms per handshake, and the
 * ratios of the medians of wall time and client CPU per handshake to the
 * row's anchor (its own none runs unless the line names another), then every
 * run's wall ratio and every run in order (wall and client CPU). */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mt_attest.h"
#include "mt_policy.h"
#include "mt_atls.h"
#include "mt_ratls.h"
#include "mt_tee.h"
#include "mt_util.h"
#include "mt_vcache.h"

#ifndef MT_BENCH_TESTVECTORS
#define MT_BENCH_TESTVECTORS "../shared/testvectors/attestation"
#endif
#define MAX_REPEATS 9

/* What libmesatee passes inside the handshake (src/client/client.c
 * attest_leaf): both forms, and the handshake proves the key, so the
 * certificate's self-signature is not checked (mt_ratls.h). The recorded
 * sgx-ratls row's server proves a key of the recorded certificate's type
 * (P-384) but not the recorded key itself (not ours): the client pays the
 * CertificateVerify of a key of that type, as against a real SDK server. */
#define HS_FORMS (MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY | MT_RATLS_PEER_PROVES_KEY)

typedef enum { V_PINNED, V_ATTESTED, V_RECORDED_CERT, V_RECORDED_QUOTE } vmode;

typedef struct {
    vmode mode;
    mt_policy *policy;            /* V_ATTESTED; V_RECORDED_CERT */
    bool cached;                  /* mt_policy_verify_cert (the verified-peer cache) */
    const uint8_t *rec;           /* recorded certificate or quote */
    size_t rec_len;
    mt_attest_kind rec_kind;      /* V_RECORDED_QUOTE */
    mt_attest_collateral *coll;   /* recorded rows: collateral handle (cached) */
    int64_t rec_at;               /* recorded rows: pinned verification time */
    double verify_cpu_s;          /* accumulated over handshakes */
    unsigned failures;
    char last_err[256];
} verifier;

static double cpu_now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
    return cpu_now(CLOCK_MONOTONIC);
}

/* The client side: libmesatee's checks, timed. Returns 1 to continue. */
static int verify_cb(X509_STORE_CTX *xs, void *arg)
{
    verifier *v = arg;
    double t0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
    int ok = 0;
    mt_err err;
    mt_err_clear(&err);
    mt_attest_claims *claims = NULL;
    if (v->mode == V_PINNED) {
        ok = X509_verify_cert(xs) == 1;
        if (!ok)
            snprintf(v->last_err, sizeof v->last_err, "pinned certificate check: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
    } else if ((claims = malloc(sizeof *claims)) == NULL) {
        snprintf(v->last_err, sizeof v->last_err, "out of memory");
    } else if (v->mode == V_ATTESTED) {
        X509 *leaf = X509_STORE_CTX_get0_cert(xs);
        int64_t now = mt_now();
        if (!leaf)
            snprintf(v->last_err, sizeof v->last_err, "no peer certificate");
        else if (v->cached) { /* libmesatee: verified first, MT_ENOTFOUND = no evidence */
            SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
            mt_policy_pending *pend = NULL;
            ok = (mt_policy_verify_peer(v->policy, leaf, HS_FORMS, now, claims, NULL, &pend,
                                        &err)) == MT_OK;
            mt_atls_hold_pending(ssl, ok ? pend : NULL); /* stored at handshake done */
            if (!ok)
                mt_policy_pending_free(pend);
        }
        else if (mt_ratls_verify_x509(leaf, HS_FORMS,
                                      mt_policy_collateral(v->policy), now, claims, NULL,
                                      &err) != MT_OK || /* MT_ENOTFOUND: no evidence */
                 mt_policy_check(v->policy, claims, now, &err) != MT_OK)
            snprintf(v->last_err, sizeof v->last_err, "%s", err.msg);
        else
            ok = 1;
        if (!ok && v->cached && !v->last_err[0])
            snprintf(v->last_err, sizeof v->last_err, "%s", err.msg);
    } else if (v->mode == V_RECORDED_CERT) {
        if (v->cached) /* remembered after the first full check (the recorded
                        * key is not this handshake's: no pending entry) */
            ok = mt_policy_verify_cert(v->policy, v->rec, v->rec_len,
                                       MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY, v->rec_at,
                                       claims, NULL, &err) == MT_OK;
        else
            ok = mt_ratls_verify_cert(v->rec, v->rec_len, HS_FORMS,
                                      v->coll, v->rec_at, claims, NULL, &err) == MT_OK &&
                 mt_policy_check(v->policy, claims, v->rec_at, &err) == MT_OK;
        if (!ok)
            snprintf(v->last_err, sizeof v->last_err, "%s", err.msg);
    } else {
        ok = mt_attest_verify(v->rec_kind, v->rec, v->rec_len, v->coll, v->rec_at, claims,
                              &err) == MT_OK;
        if (!ok)
            snprintf(v->last_err, sizeof v->last_err, "%s", err.msg);
    }
    free(claims);
    v->verify_cpu_s += cpu_now(CLOCK_THREAD_CPUTIME_ID) - t0;
    if (!ok)
        v->failures++;
    return ok;
}

/* ---- server ------------------------------------------------------------- */

typedef struct {
    SSL_CTX *ctx;
    int lfd;
    unsigned count; /* connections to serve, then exit */
    unsigned failed;
} server;

static void *server_main(void *arg)
{
    server *s = arg;
    for (unsigned i = 0; i < s->count; i++) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                i--;
                continue;
            }
            s->failed++;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = SSL_new(s->ctx);
        if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1 && SSL_write(ssl, "k", 1) == 1)
            SSL_shutdown(ssl);
        else
            s->failed++;
        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
    }
    return NULL;
}

static SSL_CTX *server_ctx(EVP_PKEY *key, X509 *cert)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

/* ---- one measured run --------------------------------------------------- */

typedef struct {
    double hs_per_s, wall_ms, client_cpu_ms, verify_cpu_ms;
} result;

/* Runs n handshakes (plus 10 warm-up ones) of the client configured by v
 * against a fresh server thread presenting key/cert. false on any failure. */
static bool run_once(EVP_PKEY *key, X509 *cert, verifier *v, unsigned n, result *r)
{
    const unsigned warm = 10;
    bool ok = false;
    server s = {.ctx = server_ctx(key, cert), .lfd = -1, .count = n + warm};
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    pthread_t th;
    bool started = false;
    if (!s.ctx || !cctx || SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION) != 1)
        goto out;
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(cctx, verify_cb, v);
    SSL_CTX_set_info_callback(cctx, mt_atls_info_cb); /* libmesatee's, too */
    if (v->mode == V_PINNED && X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert) != 1)
        goto out;
    if ((s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s.lfd, 64) != 0 ||
        getsockname(s.lfd, (struct sockaddr *)&sa, &sl) != 0)
        goto out;
    if (pthread_create(&th, NULL, server_main, &s) != 0)
        goto out;
    started = true;
    double w0 = 0, c0 = 0, v0 = 0;
    unsigned done = 0;
    for (unsigned i = 0; i < n + warm; i++) {
        if (i == warm) {
            w0 = wall_now();
            c0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
            v0 = v->verify_cpu_s;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        char b;
        if (fd < 0)
            break;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = NULL;
        bool good = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                    (ssl = SSL_new(cctx)) != NULL && SSL_set_fd(ssl, fd) == 1 &&
                    SSL_connect(ssl) == 1 && SSL_read(ssl, &b, 1) == 1;
        if (ssl) {
            SSL_set_quiet_shutdown(ssl, 1);
            SSL_free(ssl);
        }
        close(fd);
        ERR_clear_error();
        if (!good)
            break;
        done++;
    }
    if (done == n + warm) {
        double w = wall_now() - w0;
        r->hs_per_s = n / w;
        r->wall_ms = w * 1e3 / n;
        r->client_cpu_ms = (cpu_now(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e3 / n;
        r->verify_cpu_ms = (v->verify_cpu_s - v0) * 1e3 / n;
        ok = true;
    } else {
        shutdown(s.lfd, SHUT_RDWR); /* unblock the server's accept */
    }
out:
    if (started) {
        if (!ok) {
            /* the server waits for connections that will not come */
            pthread_cancel(th);
        }
        pthread_join(th, NULL);
    }
    if (s.lfd >= 0)
        close(s.lfd);
    SSL_CTX_free(cctx);
    SSL_CTX_free(s.ctx);
    return ok;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One arm of a row: a server presenting key/cert and a client verifying it
 * with v (v->cached set to `cached` before each run; a cached arm starts
 * each run with a fresh verified-peer cache). */
typedef struct {
    const char *label;
    EVP_PKEY *key;
    X509 *cert;
    verifier *v;
    bool cached;
} arm;

/* One printed line: arm `arm` with its ratios to the medians of arm `to`. */
typedef struct {
    int arm, to;
} cmp_line;

#define MAX_ARMS 4

static void print_line(const char *name, const result *m, const result *base)
{
    printf("| %-33s | %8.0f | %7.3f | %7.3f | %8.3f | %5.2fx | %5.2fx |\n", name, m->hs_per_s,
           m->wall_ms, m->client_cpu_ms, m->verify_cpu_ms, m->wall_ms / base->wall_ms,
           m->client_cpu_ms / base->client_cpu_ms);
}

/* One row, its arms interleaved run by run (arm 0, 1, ..., arm 0, 1, ...;
 * arm 0 is the row's plain TLS). Prints one line per entry of lines (the
 * medians of the arm, ratios to the medians of its anchor, named after the
 * anchor unless it is arm 0), every run's wall ratio to its anchor in the
 * same repeat, and every run's wall and client CPU in order. false on any
 * failure (printed). */
static bool row_arms(const char *name, const arm *arms, int narms, const cmp_line *lines,
                     int nlines, unsigned n, unsigned repeats)
{
    double a[MAX_ARMS][4][MAX_REPEATS], wall_run[MAX_ARMS][MAX_REPEATS];
    double cpu_run[MAX_ARMS][MAX_REPEATS];
    if (narms < 1 || narms > MAX_ARMS)
        return false;
    for (unsigned i = 0; i < repeats; i++) {
        for (int k = 0; k < narms; k++) {
            result r;
            verifier *w = arms[k].v;
            w->cached = arms[k].cached;
            if (arms[k].cached && mt_vcache_configure(mt_vcache_global(), MT_VCACHE_DEFAULT_CAP,
                                                      MT_VCACHE_DEFAULT_TTL_S, NULL) != MT_OK) {
                printf("| %-33s | failed: cannot reset the verified-peer cache |\n", name);
                return false;
            }
            if (!run_once(arms[k].key, arms[k].cert, w, n, &r)) {
                printf("| %-33s | failed (%s): %s |\n", name, arms[k].label,
                       w->last_err[0] ? w->last_err : "handshake failed");
                return false;
            }
            a[k][0][i] = r.hs_per_s;
            a[k][1][i] = r.wall_ms;
            a[k][2][i] = r.client_cpu_ms;
            a[k][3][i] = r.verify_cpu_ms;
            wall_run[k][i] = r.wall_ms; /* median() below sorts a[][] in place */
            cpu_run[k][i] = r.client_cpu_ms;
        }
    }
    result m[MAX_ARMS];
    for (int k = 0; k < narms; k++) {
        m[k].hs_per_s = median(a[k][0], repeats);
        m[k].wall_ms = median(a[k][1], repeats);
        m[k].client_cpu_ms = median(a[k][2], repeats);
        m[k].verify_cpu_ms = median(a[k][3], repeats);
    }
    char nm[96];
    for (int l = 0; l < nlines; l++) {
        const arm *x = &arms[lines[l].arm], *to = &arms[lines[l].to];
        if (lines[l].to == 0)
            snprintf(nm, sizeof nm, "%s: %s", name, x->label);
        else
            snprintf(nm, sizeof nm, "%s: %s vs %s", name, x->label, to->label);
        print_line(nm, &m[lines[l].arm], &m[lines[l].to]);
    }
    printf("|   (%s, wall ratio per run:", name);
    const char *sep = "";
    for (int l = 0; l < nlines; l++) {
        if (lines[l].arm == lines[l].to)
            continue;
        printf("%s %s/%s", sep, arms[lines[l].arm].label, arms[lines[l].to].label);
        for (unsigned i = 0; i < repeats; i++)
            printf(" %.2f", wall_run[lines[l].arm][i] / wall_run[lines[l].to][i]);
        sep = ";";
    }
    printf(") |\n");
    for (int c = 0; c < 2; c++) {
        printf("|   (%s, every run in order, %s ms per handshake ", name,
               c ? "client CPU" : "wall");
        for (int k = 0; k < narms; k++)
            printf("%s%s", k ? "/" : "", arms[k].label);
        printf(":");
        for (unsigned i = 0; i < repeats; i++)
            for (int k = 0; k < narms; k++)
                printf("%s%.3f", k ? "/" : " ", c ? cpu_run[k][i] : wall_run[k][i]);
        printf(") |\n");
    }
    fflush(stdout);
    return true;
}

/* A fresh P-384 key and a self-issued certificate for it (SHA-256, as the
 * recorded SGX SDK certificate). With `like`, the certificate carries like's
 * subject and extensions (the same size on the wire; the evidence in them
 * does not bind this key); without, CN=bench-p384 and no extensions (plain
 * TLS). false on failure, nothing allocated. */
static bool p384_identity(X509 *like, EVP_PKEY **key, X509 **cert)
{
    EVP_PKEY *k = EVP_EC_gen("P-384");
    X509 *x = X509_new();
    X509_NAME *own = NULL;
    const X509_NAME *subj = like ? X509_get_subject_name(like) : NULL;
    bool ok = k && x && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
              X509_set_pubkey(x, k) == 1;
    if (ok && !subj) {
        own = X509_NAME_new();
        ok = own && X509_NAME_add_entry_by_txt(own, "CN", MBSTRING_ASC,
                                               (const unsigned char *)"bench-p384", -1, -1,
                                               0) == 1;
        subj = own;
    }
    ok = ok && X509_set_subject_name(x, subj) == 1 && X509_set_issuer_name(x, subj) == 1;
    for (int i = 0; ok && like && i < X509_get_ext_count(like); i++)
        ok = X509_add_ext(x, X509_get_ext(like, i), -1) == 1;
    ok = ok && X509_sign(x, k, EVP_sha256()) > 0;
    X509_NAME_free(own);
    if (!ok) {
        EVP_PKEY_free(k);
        X509_free(x);
        ERR_clear_error();
        return false;
    }
    *key = k;
    *cert = x;
    return true;
}

/* A policy for a recorded SGX certificate: its mrenclave, debug allowed,
 * TCB not evaluated (no collateral). NULL on failure. */
static mt_policy *recorded_policy(const uint8_t *cert, size_t len, int64_t at)
{
    mt_attest_claims *c = malloc(sizeof *c);
    mt_err err;
    mt_policy *p = NULL;
    char *pj = NULL;
    json_t *pol = NULL;
    const mt_attest_measurement *m;
    char hex[2 * MT_ATTEST_VALUE_MAX + 1];
    if (!c || mt_ratls_verify_cert(cert, len, MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY, NULL, at,
                                   c, NULL, &err) != MT_OK ||
        !(m = mt_attest_claims_measurement(c, "mrenclave")))
        goto out;
    mt_hex_encode(m->value, m->len, hex);
    pol = json_pack("{s:i, s:[s], s:s, s:{s:{s:[s]}}, s:b, s:[s]}", "mesatee_policy", 1,
                    "allowed_kinds", "sgx", "min_level", "sgx", "measurements", "gateway",
                    "mrenclave", hex, "allow_debug", 1, "accepted_tcb_statuses", "NotEvaluated");
    pj = pol ? json_dumps(pol, JSON_COMPACT) : NULL;
    if (!pj || mt_policy_parse(pj, strlen(pj), &p, &err) != MT_OK)
        p = NULL;
out:
    json_decref(pol);
    free(pj);
    free(c);
    return p;
}

/* Builds a policy from the claims the live server presents (trust on first
 * use, as examples/psi-demo.sh does). NULL on failure. */
static mt_policy *tofu_policy(X509 *cert)
{
    uint8_t *der = NULL;
    int dl = i2d_X509(cert, &der);
    mt_attest_claims *claims = malloc(sizeof *claims);
    mt_ratls_info info;
    mt_err err;
    mt_policy *p = NULL;
    char *cj = NULL, *pj = NULL;
    json_t *c = NULL, *pol = NULL;
    if (dl <= 0 || !claims ||
        mt_ratls_verify_cert(der, (size_t)dl, MT_RATLS_FORM_CCC, NULL, mt_now(), claims, &info,
                             &err) != MT_OK) {
        fprintf(stderr, "bench_handshake: the live certificate does not verify\n");
        goto out;
    }
    cj = mt_policy_claims_json(claims, &info);
    c = cj ? json_loads(cj, 0, NULL) : NULL;
    const char *kind = c ? json_string_value(json_object_get(c, "kind")) : NULL;
    if (!kind)
        goto out;
    json_t *meas = json_object();
    pol = json_pack("{s:i, s:[s], s:s, s:{s:o}, s:i}", "mesatee_policy", 1, "allowed_kinds", kind,
                    "min_level", kind, "measurements", "gateway", meas, "max_evidence_age_s",
                    86400);
    const char *mname = !strcmp(kind, "soft") ? "measurement" : "pcr23";
    const char *v = json_string_value(json_object_get(json_object_get(c, "measurements"), mname));
    if (!pol || !v)
        goto out;
    json_object_set_new(meas, mname, json_pack("[s]", v));
    const char *pin_field = !strcmp(kind, "soft") ? "soft_platform_keys" : "tpm2_aks";
    const char *pin = json_string_value(
        json_object_get(c, !strcmp(kind, "soft") ? "soft_platform_key" : "tpm2_ak"));
    if (!pin)
        goto out;
    json_object_set_new(pol, pin_field, json_pack("[s]", pin));
    pj = json_dumps(pol, JSON_COMPACT);
    if (!pj || mt_policy_parse(pj, strlen(pj), &p, &err) != MT_OK) {
        fprintf(stderr, "bench_handshake: policy: %s\n", pj ? err.msg : "out of memory");
        p = NULL;
    }
out:
    json_decref(c);
    json_decref(pol);
    free(cj);
    free(pj);
    free(claims);
    OPENSSL_free(der);
    return p;
}

/* A live level: mt_tee identity (key + certificate with evidence, made once). */
static bool live_identity(const char *level, const char *dir, mt_tee **tee, EVP_PKEY **key,
                          X509 **cert)
{
    mt_err err;
    mt_err_clear(&err);
    static const uint8_t config[] = "mesatee-config-v1\nlevel=bench\n";
    if (mt_tee_open(level, dir, tee, &err) != MT_OK ||
        mt_tee_set_config(*tee, config, sizeof config - 1, NULL, &err) != MT_OK ||
        mt_tee_tls_identity(*tee, key, cert, &err) != MT_OK) {
        printf("| %-9s | skipped: %s |\n", level, err.msg);
        mt_tee_free(*tee);
        *tee = NULL;
        return false;
    }
    return true;
}

static uint8_t *read_vec(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *b = NULL;
    mt_err err;
    if (mt_file_read(path, 1u << 20, &b, len, &err) != MT_OK) {
        printf("| (recorded) | skipped: %s |\n", err.msg);
        return NULL;
    }
    return b;
}

/* A recorded PEM certificate as DER, the form a TLS stack receives (takes
 * and frees pem; NULL on failure). */
static uint8_t *pem_to_der(uint8_t *pem, size_t *len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)*len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    uint8_t *der = NULL, *out = NULL;
    int dl = x ? i2d_X509(x, &der) : -1;
    if (dl > 0 && (out = malloc((size_t)dl)) != NULL) {
        memcpy(out, der, (size_t)dl);
        *len = (size_t)dl;
    } else {
        printf("| (recorded) | skipped: the certificate is not PEM |\n");
    }
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(b);
    free(pem);
    return out;
}

int main(int argc, char **argv)
{
    unsigned n = 500, repeats = 3;
    const char *tv = getenv("MESATEE_TESTVECTORS") ? getenv("MESATEE_TESTVECTORS")
                                                   : MT_BENCH_TESTVECTORS;
    int opt;
    while ((opt = getopt(argc, argv, "n:r:t:")) != -1) {
        if (opt == 'n')
            n = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'r')
            repeats = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 't')
            tv = optarg;
        else {
            fprintf(stderr, "usage: %s [-n HANDSHAKES] [-r REPEATS(1-%d)] [-t TESTVECTOR_DIR]\n",
                    argv[0], MAX_REPEATS);
            return 2;
        }
    }
    if (n == 0 || repeats == 0 || repeats > MAX_REPEATS) {
        fprintf(stderr, "bench_handshake: -n must be > 0 and -r 1 to %d\n", MAX_REPEATS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/mt-bench-hs.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_handshake: %u full TLS 1.3 handshakes per run on 127.0.0.1, median of %u runs; "
           "OpenSSL %s\n\n",
           n, repeats, OpenSSL_version(OPENSSL_VERSION_STRING));
    printf("| row | hs/s | wall ms/hs | client CPU ms/hs | verify CPU ms/hs | wall vs none | "
           "client CPU vs none |\n|---|---|---|---|---|---|---|\n");
    /* "none" in each row is that row's own plain TLS runs (P-256), measured
     * in the same loop; "vs none-p384" lines are to the P-384 plain TLS runs. */
    int rc = 0;
    char sub[64];

    /* none: plain TLS with the pinned certificate. */
    mt_tee *tnone = NULL;
    EVP_PKEY *knone = NULL;
    X509 *cnone = NULL;
    snprintf(sub, sizeof sub, "%s/none", dir);
    if (!live_identity("none", sub, &tnone, &knone, &cnone))
        return 1;
    verifier vp = {.mode = V_PINNED};

    const char *levels[] = {"soft", "tpm2"};
    for (int i = 0; i < 2; i++) {
        if (!strcmp(levels[i], "tpm2") && !getenv("MESATEE_TPM2_TCTI")) {
            printf("| tpm2      | skipped: MESATEE_TPM2_TCTI is not set (run.sh starts a swtpm) |\n");
            continue;
        }
        mt_tee *t = NULL;
        EVP_PKEY *k = NULL;
        X509 *c = NULL;
        snprintf(sub, sizeof sub, "%s/%s", dir, levels[i]);
        if (!live_identity(levels[i], sub, &t, &k, &c))
            continue;
        verifier v = {.mode = V_ATTESTED, .policy = tofu_policy(c)};
        const arm arms[] = {{"none", knone, cnone, &vp, false},
                            {"nocache", k, c, &v, false},
                            {"cached", k, c, &v, true}};
        const cmp_line lines[] = {{0, 0}, {1, 0}, {2, 0}};
        if (!v.policy || !row_arms(levels[i], arms, 3, lines, 3, n, repeats))
            rc = 1;
        mt_policy_free(v.policy);
        EVP_PKEY_free(k);
        X509_free(c);
        mt_tee_free(t);
    }

    /* Recorded evidence: verified in the handshake (see the rows above). */
    struct {
        const char *name, *file, *coll, *at;
        vmode mode;
        mt_attest_kind kind;
        const char *vcek; /* SEV-SNP: coll is the AMD chain, this the VCEK */
    } rec[] = {
        {"sgx-ratls", "ra-tls/ccc-intel-sgxsdk-cert.pem", NULL, "2024-01-15T00:00:00Z",
         V_RECORDED_CERT, MT_ATTEST_SGX, NULL},
        {"sgx-dcap", "sgx-dcap/dcapqvl-sgx-quote.dat", "sgx-dcap/dcapqvl-sgx-quote-collateral.json",
         "2025-06-20T00:00:00Z", V_RECORDED_QUOTE, MT_ATTEST_SGX, NULL},
        {"tdx-dcap", "tdx/dcapqvl-tdx-quote.dat", "tdx/dcapqvl-tdx-quote-collateral.json",
         "2025-06-20T00:00:00Z", V_RECORDED_QUOTE, MT_ATTEST_TDX, NULL},
        {"sev-snp", "sev-snp/gosevguest-milan-report.bin", "sev-snp/amd-ask-ark-milan-vcek.pem",
         "2025-01-01T00:00:00Z", V_RECORDED_QUOTE, MT_ATTEST_SEV_SNP,
         "sev-snp/gosevguest-milan-vcek.der"},
    };
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++) {
        size_t len = 0, cl = 0, vl = 0;
        uint8_t *ev = read_vec(tv, rec[i].file, &len);
        uint8_t *cb = rec[i].coll ? read_vec(tv, rec[i].coll, &cl) : NULL;
        uint8_t *vb = rec[i].vcek ? read_vec(tv, rec[i].vcek, &vl) : NULL;
        if (!ev || (rec[i].coll && !cb) || (rec[i].vcek && !vb)) {
            free(ev);
            free(cb);
            free(vb);
            continue;
        }
        if (rec[i].mode == V_RECORDED_CERT && !(ev = pem_to_der(ev, &len)))
            continue;
        verifier v = {.mode = rec[i].mode, .rec = ev, .rec_len = len, .rec_kind = rec[i].kind};
        mt_err err;
        mt_err_clear(&err);
        /* A handle even without collateral: it carries the verifier cache. */
        v.coll = mt_attest_collateral_new();
        if (mt_attest_time_parse(rec[i].at, &v.rec_at, &err) != MT_OK || !v.coll ||
            (cb && !vb &&
             mt_attest_collateral_add(v.coll, MT_COLL_DCAP_BUNDLE, cb, cl, &err) != MT_OK) ||
            (vb && (mt_attest_collateral_add(v.coll, MT_COLL_AMD_CHAIN, cb, cl, &err) != MT_OK ||
                    mt_attest_collateral_add(v.coll, MT_COLL_AMD_VCEK, vb, vl, &err) != MT_OK))) {
            printf("| %-9s | failed: %s |\n", rec[i].name, v.coll ? err.msg : "out of memory");
            rc = 1;
        } else if (rec[i].mode == V_RECORDED_CERT) {
            /* The server: a fresh key of the recorded certificate's type
             * (P-384) in a certificate of its size; the anchor: plain TLS
             * with a P-384 key, beside plain TLS with ours (P-256). */
            const uint8_t *p = ev;
            X509 *recx = d2i_X509(NULL, &p, (long)len);
            EVP_PKEY *ks = NULL, *k384 = NULL;
            X509 *cs = NULL, *c384 = NULL;
            EVP_PKEY *rk = recx ? X509_get0_pubkey(recx) : NULL;
            v.policy = recorded_policy(ev, len, v.rec_at);
            if (!rk || EVP_PKEY_get_bits(rk) != 384 || !p384_identity(recx, &ks, &cs) ||
                !p384_identity(NULL, &k384, &c384)) {
                printf("| %-9s | failed: the recorded certificate's key is not P-384, or "
                       "making a P-384 identity failed |\n", rec[i].name);
                rc = 1;
            } else {
                const arm arms[] = {{"none", knone, cnone, &vp, false},
                                    {"none-p384", k384, c384, &vp, false},
                                    {"nocache", ks, cs, &v, false},
                                    {"cached", ks, cs, &v, true}};
                const cmp_line lines[] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {2, 1}, {3, 1}};
                if (!v.policy || !row_arms(rec[i].name, arms, 4, lines, 6, n, repeats))
                    rc = 1;
            }
            mt_policy_free(v.policy);
            EVP_PKEY_free(ks);
            EVP_PKEY_free(k384);
            X509_free(cs);
            X509_free(c384);
            X509_free(recx);
        } else {
            const arm arms[] = {{"none", knone, cnone, &vp, false},
                                {"evidence", knone, cnone, &v, false}};
            const cmp_line lines[] = {{0, 0}, {1, 0}};
            if (!row_arms(rec[i].name, arms, 2, lines, 2, n, repeats))
                rc = 1;
        }
        mt_attest_collateral_free(v.coll);
        free(ev);
        free(cb);
        free(vb);
    }
    printf("\nTargets (issue 13): every evidence kind <= 1.5x plain TLS, verify CPU <= 0.5 ms.\n");
    printf("Targets (issue 3): wall vs none <= 2x with evidence made in advance and "
           "collateral cached; verify CPU <= 1 ms.\n");
    EVP_PKEY_free(knone);
    X509_free(cnone);
    mt_tee_free(tnone);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_handshake: could not remove %s\n", dir);
    return rc;
}
