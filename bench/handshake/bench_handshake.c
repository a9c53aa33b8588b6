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
 * Rows:
 *   none      plain TLS 1.3, pinned certificate (the baseline)
 *   soft      level soft evidence, TOFU policy (measurement + platform key)
 *   tpm2      level tpm2 quote (needs MESATEE_TPM2_TCTI, e.g. a swtpm; else skipped)
 *   sgx-ratls recorded Intel SGX SDK RA-TLS certificate (CCC form, DCAP quote,
 *             its PEM converted to DER once, the form a TLS stack receives;
 *             no collateral: an empty handle, which holds the verified-PCK-chain
 *             cache) verified at its pinned time in the handshake of
 *             a level-none server: what a client pays against an SGX server
 *   sgx-dcap  recorded dcap-qvl SGX quote with its collateral (TCB info, QE
 *             identity, CRLs) in a handle loaded once: its cache keeps the
 *             parsed, verified collateral and PCK chain (mt_dcap_coll.h)
 *   tdx-dcap  recorded dcap-qvl TDX quote with its collateral, likewise
 *   sev-snp   recorded go-sev-guest Milan report with its VCEK and AMD chain
 *             in a handle loaded once (it remembers the verified chain)
 * The recorded rows replace the level-none chain check by the evidence check
 * (they cannot bind to the live key: its enclave key is not ours).
 *
 * Verified-peer cache (mt_vcache.h, issue 13): each row with a certificate
 * (soft, tpm2, sgx-ratls) is measured three ways, interleaved run by run
 * (none, uncached, cached, none, uncached, cached, ...): "none" again (the
 * row's own baseline), "nocache" (mt_ratls_verify_x509 + mt_policy_check,
 * the full verification of every handshake; the recorded sgx-ratls row
 * parses its DER with mt_ratls_verify_cert) and "cached"
 * (mt_policy_verify_x509, libmesatee's path: the first handshake verifies,
 * the next ones find the certificate in the cache; the TLS handshake still
 * proves possession of its key). Ratios are to the row's own none runs.
 *
 * Usage: bench_handshake [-n HANDSHAKES] [-r REPEATS] [-t TESTVECTOR_DIR]
 * Prints one table: median of the repeats of handshakes/s, wall ms per
 * handshake, client CPU ms per handshake, verify CPU ms per handshake, and the
 * ratio of wall time per handshake to the plain TLS row. */
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
 * row's server cannot prove the recorded key (it is not ours); it is
 * measured as a client pays it against a server that can. */
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

/* Runs `repeats` runs and prints a table row with the ratios to base (NULL:
 * this is the base). Returns false on failure; *med gets the medians. */
static bool row(const char *name, EVP_PKEY *key, X509 *cert, verifier *v, unsigned n,
                unsigned repeats, const result *base, result *med)
{
    double hs[MAX_REPEATS], wall[MAX_REPEATS], cpu[MAX_REPEATS], ver[MAX_REPEATS];
    for (unsigned i = 0; i < repeats; i++) {
        result r;
        if (!run_once(key, cert, v, n, &r)) {
            printf("| %-9s | failed: %s |\n", name,
                   v->last_err[0] ? v->last_err : "handshake failed");
            return false;
        }
        hs[i] = r.hs_per_s;
        wall[i] = r.wall_ms;
        cpu[i] = r.client_cpu_ms;
        ver[i] = r.verify_cpu_ms;
    }
    char runs[40 * MAX_REPEATS] = "";
    size_t used = 0;
    for (unsigned i = 0; i < repeats && used < sizeof runs; i++)
        used += (size_t)snprintf(runs + used, sizeof runs - used, " %.3f/%.3f", wall[i], cpu[i]);
    med->hs_per_s = median(hs, repeats);
    med->wall_ms = median(wall, repeats);
    med->client_cpu_ms = median(cpu, repeats);
    med->verify_cpu_ms = median(ver, repeats);
    printf("| %-9s | %8.0f | %7.3f | %7.3f | %8.3f | %5.2fx | %5.2fx |\n", name, med->hs_per_s,
           med->wall_ms, med->client_cpu_ms, med->verify_cpu_ms,
           base ? med->wall_ms / base->wall_ms : 1.0,
           base ? med->client_cpu_ms / base->client_cpu_ms : 1.0);
    printf("|   (%s, every run, wall/client CPU ms per handshake:%s) |\n", name, runs);
    fflush(stdout);
    return true;
}

static void print_line(const char *name, const result *m, const result *base)
{
    printf("| %-18s | %8.0f | %7.3f | %7.3f | %8.3f | %5.2fx | %5.2fx |\n", name, m->hs_per_s,
           m->wall_ms, m->client_cpu_ms, m->verify_cpu_ms, m->wall_ms / base->wall_ms,
           m->client_cpu_ms / base->client_cpu_ms);
}

/* One row with a certificate, interleaved run by run: the plain TLS server
 * (nkey/ncert, verifier vp), then v without the cache, then v with it (a
 * fresh cache each run). v's server is key/cert. Prints the medians of each
 * (ratios to this row's none) and every run's wall ratio. */
static bool row_cmp(const char *name, EVP_PKEY *key, X509 *cert, verifier *v, EVP_PKEY *nkey,
                    X509 *ncert, verifier *vp, unsigned n, unsigned repeats)
{
    double a[3][4][MAX_REPEATS];
    for (unsigned i = 0; i < repeats; i++) {
        for (int k = 0; k < 3; k++) {
            result r;
            verifier *w = k == 0 ? vp : v;
            v->cached = k == 2;
            if (k == 2 && mt_vcache_configure(mt_vcache_global(), MT_VCACHE_DEFAULT_CAP,
                                              MT_VCACHE_DEFAULT_TTL_S, NULL) != MT_OK)
                return false;
            if (!run_once(k ? key : nkey, k ? cert : ncert, w, n, &r)) {
                printf("| %-18s | failed (%s): %s |\n", name,
                       k == 0 ? "none" : k == 1 ? "nocache" : "cached",
                       w->last_err[0] ? w->last_err : "handshake failed");
                return false;
            }
            a[k][0][i] = r.hs_per_s;
            a[k][1][i] = r.wall_ms;
            a[k][2][i] = r.client_cpu_ms;
            a[k][3][i] = r.verify_cpu_ms;
        }
    }
    double ratio[2][MAX_REPEATS], wall_run[3][MAX_REPEATS];
    for (unsigned i = 0; i < repeats; i++) {
        for (int k = 1; k < 3; k++)
            ratio[k - 1][i] = a[k][1][i] / a[0][1][i];
        for (int k = 0; k < 3; k++)
            wall_run[k][i] = a[k][1][i]; /* median() below sorts a[][] in place */
    }
    result m[3];
    for (int k = 0; k < 3; k++) {
        m[k].hs_per_s = median(a[k][0], repeats);
        m[k].wall_ms = median(a[k][1], repeats);
        m[k].client_cpu_ms = median(a[k][2], repeats);
        m[k].verify_cpu_ms = median(a[k][3], repeats);
    }
    char nm[64];
    snprintf(nm, sizeof nm, "%s: none", name);
    print_line(nm, &m[0], &m[0]);
    snprintf(nm, sizeof nm, "%s: nocache", name);
    print_line(nm, &m[1], &m[0]);
    snprintf(nm, sizeof nm, "%s: cached", name);
    print_line(nm, &m[2], &m[0]);
    printf("|   (wall ratio per run: nocache");
    for (unsigned i = 0; i < repeats; i++)
        printf(" %.2f", ratio[0][i]);
    printf("; cached");
    for (unsigned i = 0; i < repeats; i++)
        printf(" %.2f", ratio[1][i]);
    printf(") |\n|   (every run in order, wall ms per handshake none/nocache/cached:");
    for (unsigned i = 0; i < repeats; i++)
        printf(" %.3f/%.3f/%.3f", wall_run[0][i], wall_run[1][i], wall_run[2][i]);
    printf(") |\n");
    fflush(stdout);
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
    result base, med;
    if (!row("none", knone, cnone, &vp, n, repeats, NULL, &base))
        return 1;

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
        if (!v.policy || !row_cmp(levels[i], k, c, &v, knone, cnone, &vp, n, repeats))
            rc = 1;
        mt_policy_free(v.policy);
        EVP_PKEY_free(k);
        X509_free(c);
        mt_tee_free(t);
    }

    /* Recorded evidence: verified in the handshake of the level-none server. */
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
        if (mt_attest_time_parse(rec[i].at, &v.rec_at, &err) != MT_OK)
            rc = 1;
        /* A handle even without collateral: it carries the verifier cache. */
        v.coll = mt_attest_collateral_new();
        if (!v.coll ||
            (cb && !vb &&
             mt_attest_collateral_add(v.coll, MT_COLL_DCAP_BUNDLE, cb, cl, &err) != MT_OK) ||
            (vb && (mt_attest_collateral_add(v.coll, MT_COLL_AMD_CHAIN, cb, cl, &err) != MT_OK ||
                    mt_attest_collateral_add(v.coll, MT_COLL_AMD_VCEK, vb, vl, &err) != MT_OK)))
            rc = 1;
        if (rec[i].mode == V_RECORDED_CERT) {
            v.policy = recorded_policy(ev, len, v.rec_at);
            if (!v.policy || !row_cmp(rec[i].name, knone, cnone, &v, knone, cnone, &vp, n, repeats))
                rc = 1;
            mt_policy_free(v.policy);
        } else if (rc == 0 && !row(rec[i].name, knone, cnone, &v, n, repeats, &base, &med)) {
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
