/* server.c: mt_server_run (see mt_server.h): opens the TEE provider and the
 * core, and serves the core through the gateway until stopped. The backend
 * vtable below is the only place where the gateway meets mt_core. */
#include "mt_server.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mt_dirlock.h"
#include "mt_executor_api.h"
#include "mt_dbcert.h"
#include "mt_dbrenew.h"
#include "mt_ks_join.h"
#include "mt_gateway.h"
#include "mt_log.h"
#include "mt_tls_id.h"
#include "mt_sdnotify.h"
#include "mt_util.h"
#include "mt_vcache.h"

/* The running gateway, for mt_server_stop. g_stoppers counts mt_server_stop
 * calls between loading g_gw and writing to it, so the gateway is not freed
 * under them. */
static _Atomic(mt_gateway *) g_gw;
static mt_core *g_core;    /* while serving, for mt_server_set_limits */
static mt_dbrenew *g_dbrenew; /* a joined node's certificate renewal, for /metrics */
static bool g_level_none;
static atomic_int g_stop_requested;
static atomic_int g_stoppers;
/* A joined node's KeyStore client, for mt_server_stop (mt_ks_join_cancel:
 * a renewal or re-join stuck on an unreachable KeyStore node must not delay
 * the stop); read under g_stoppers like g_gw. */
static _Atomic(mt_ks_joined *) g_joined;

/* ---- backend: the mt_core functions behind the gateway's vtable ---- */

/* A task changed state (any thread): parked ?wait= requests look again. */
static void be_task_event(void *gw)
{
    mt_gateway_wake(gw);
}

static mt_status be_authenticate(void *ctx, const char *token, mt_principal *out, mt_err *err)
{
    return mt_core_authenticate(ctx, token, out, err);
}

static bool be_needs_auth(void *ctx, const char *method, const char *path)
{
    return mt_core_route_needs_auth(method, path);
}

static size_t be_max_body(void *ctx, const char *method, const char *path)
{
    return mt_core_route_max_body(ctx, method, path);
}

/* Every KeyStore join decision goes into the (shared) audit chain. */
/* Through the audit spool (mt_core_audit_record): kept while the store is
 * unreachable; false (nothing durable: the spool is full) stops a release. */
static bool join_audit(void *ctx, bool released, const char *measurement)
{
    char obj[80];
    snprintf(obj, sizeof obj, "measurement:%.64s", measurement[0] ? measurement : "none");
    mt_err err;
    mt_err_clear(&err);
    mt_audit_item it = {"-", released ? "keystore: node joined" : "keystore: join refused", obj,
                        released ? 200 : 403, 0};
    if (mt_core_audit_record(ctx, &it, 1, NULL, &err) != MT_OK) {
        mt_error("audit of a KeyStore join: %s", err.msg);
        return false;
    }
    return true;
}

static void join_dbcert_audit(void *ctx, bool issued, const char *measurement)
{
    char obj[80];
    snprintf(obj, sizeof obj, "measurement:%.64s", measurement[0] ? measurement : "none");
    mt_err err;
    mt_err_clear(&err);
    /* the release that carries the certificate is audited (join_audit)
     * and withheld when that entry cannot be recorded */
    mt_audit_item it = {"-",
                        issued ? "keystore: database certificate issued"
                               : "keystore: database certificate failed",
                        obj, issued ? 200 : 500, 0};
    if (mt_core_audit_record(ctx, &it, 1, NULL, &err) != MT_OK)
        mt_error("audit of a database certificate: %s", err.msg);
}

/* The KeyStore node's database CA (docs/cluster.md "Database credentials in
 * the join answer"): --keystore-db-ca FILE is sealed into keystore.sealed
 * (replacing another sealed one), --keystore-db-ca-create makes one when
 * none is sealed; then the sealed one, if any, is loaded (*ca; NULL: none)
 * and its certificate written to DATA_DIR/db-ca.crt (public: PostgreSQL's
 * ssl_ca_file). */
static mt_status keystore_db_ca(const mt_server_config *cfg, struct mt_keystore *ks,
                                const char *data_dir, mt_dbcert_ca **ca, mt_err *err)
{
    *ca = NULL;
    char *cert = NULL, *key = NULL;
    bool changed = false;
    mt_status st = MT_OK;
    if (cfg->keystore_db_ca) {
        uint8_t *pem = NULL;
        size_t pl = 0;
        mt_dbcert_ca *f = NULL;
        st = mt_file_read(cfg->keystore_db_ca, MT_DBCERT_PEM_MAX, &pem, &pl, err);
        if (st == MT_OK)
            st = mt_dbcert_ca_load((const char *)pem, pl, (const char *)pem, pl, &f, err);
        if (pem)
            mt_wipe(pem, pl);
        free(pem);
        if (st == MT_OK)
            st = mt_dbcert_ca_pem(f, &cert, &key, err);
        mt_dbcert_ca_free(f);
        if (st == MT_OK)
            st = mt_keystore_db_ca_set(ks, cert, key, &changed, err);
        if (st != MT_OK) {
            mt_err_prefix(err, st, "--keystore-db-ca %s: ", cfg->keystore_db_ca);
            goto done;
        }
        mt_info("KeyStore: the database CA of %s is %s keystore.sealed; the file is not needed "
                "any more (delete it: later starts use the sealed CA)",
                cfg->keystore_db_ca, changed ? "now sealed in" : "already in");
    } else if (cfg->keystore_db_ca_create) {
        st = mt_keystore_db_ca_get(ks, &cert, &key, err);
        if (st == MT_ENOTFOUND) {
            st = mt_dbcert_ca_create(NULL, MT_DBCERT_CA_DAYS, &cert, &key, err);
            if (st == MT_OK)
                st = mt_keystore_db_ca_set(ks, cert, key, &changed, err);
            if (st != MT_OK) {
                mt_err_prefix(err, st, "--keystore-db-ca-create: ");
                goto done;
            }
            mt_info("KeyStore: created a database CA (%u days) sealed in keystore.sealed; its "
                    "key never leaves the KeyStore",
                    MT_DBCERT_CA_DAYS);
        } else if (st == MT_OK) {
            mt_info("KeyStore: --keystore-db-ca-create: a database CA is already sealed; kept");
        } else {
            goto done;
        }
    }
    if (key) {
        mt_wipe(key, strlen(key));
        free(key);
    }
    free(cert);
    cert = key = NULL;
    st = mt_keystore_db_ca_get(ks, &cert, &key, err);
    if (st == MT_ENOTFOUND) {
        st = MT_OK;
        goto done;
    }
    if (st == MT_OK)
        st = mt_dbcert_ca_load(cert, strlen(cert), key, strlen(key), ca, err);
    if (st != MT_OK) {
        mt_err_prefix(err, st, "the database CA sealed in keystore.sealed: ");
        goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/db-ca.crt", data_dir);
    if ((st = mt_file_write_atomic(path, cert, strlen(cert), 0644, err)) != MT_OK)
        goto done;
    mt_info("KeyStore: database CA active; its certificate (PostgreSQL's ssl_ca_file) is %s",
            path);
done:
    if (key) {
        mt_wipe(key, strlen(key));
        free(key);
    }
    free(cert);
    if (st != MT_OK) {
        mt_dbcert_ca_free(*ca);
        *ca = NULL;
    }
    return st;
}

/* A joined node with a database certificate: cert and key into data_dir
 * (0600) and *url = store_url + sslcert/sslkey (heap). */
static mt_status joined_db_url(mt_ks_joined *j, const char *data_dir, const char *store_url,
                               char **url, mt_err *err)
{
    char *cert = NULL, *key = NULL, cp[4096], kp[4096];
    *url = NULL;
    mt_status st = mt_ks_joined_db_cert(j, &cert, &key, NULL, NULL, err);
    if (st == MT_ENOTFOUND)
        return MT_OK;
    if (st != MT_OK)
        return st;
    snprintf(cp, sizeof cp, "%s/db-client.crt", data_dir);
    snprintf(kp, sizeof kp, "%s/db-client.key", data_dir);
    if (!store_url || strncmp(store_url, "postgres", 8) != 0)
        st = mt_err_set(err, MT_EINVAL, "--keystore-db-ca: the KeyStore node issued a database "
                                        "certificate, but this node's --store is not postgres://");
    if (st == MT_OK)
        st = mt_file_write_atomic(cp, cert, strlen(cert), 0600, err);
    if (st == MT_OK)
        st = mt_file_write_atomic(kp, key, strlen(key), 0600, err);
    mt_wipe(key, strlen(key));
    free(key);
    free(cert);
    if (st != MT_OK)
        return st;
    /* libpq reads these files at every connection: the renewal
     * (mt_dbrenew.h) replaces db-client.crt in place, the URL stays */
    size_t n = strlen(store_url) + strlen(cp) + strlen(kp) + 32;
    if (!(*url = malloc(n)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(*url, n, "%s%csslcert=%s&sslkey=%s", store_url, strchr(store_url, '?') ? '&' : '?',
             cp, kp);
    mt_info("joined node: opening the store with the database certificate from the KeyStore "
            "node (%s)",
            cp);
    return MT_OK;
}

static void be_handle(void *ctx, const mt_request *req, mt_response *resp)
{
    mt_core_handle(ctx, req, resp);
}

/* Both go through the audit spool (mt_core_audit_record): MT_OK once the
 * entry is durable in the chain or the local spool; an error means it is
 * neither, and the gateway answers 503 instead of serving unaudited. */
/* Records the entries of replies about to leave. Appended to the chain,
 * their commit's sync also made durable every change committed before it
 * (a reply may have been built from one: docs/design.md "Group sync");
 * spooled, nothing synced: the sync runs here, and its failure refuses the
 * replies as an unrecorded entry would (503). */
static mt_status audit_record(void *ctx, const mt_audit_item *items, size_t n, mt_err *err)
{
    bool spooled = false;
    mt_status rc = mt_core_audit_record(ctx, items, n, &spooled, err);
    if (!rc && spooled && (rc = mt_core_sync(ctx, err)))
        mt_err_prefix(err, rc, "audit entries spooled, but the store's sync failed: ");
    return rc;
}

static mt_status be_audit(void *ctx, const char *actor, const char *action, const char *object,
                          int status, mt_err *err)
{
    mt_audit_item it = {actor, action, object, status, 0};
    return audit_record(ctx, &it, 1, err);
}

static mt_status be_audit_batch(void *ctx, const mt_audit_item *items, size_t n, mt_err *err)
{
    return audit_record(ctx, items, n, err);
}

static mt_status be_sync(void *ctx, uint64_t mark, mt_err *err)
{
    return mt_core_sync_to(ctx, mark, err);
}

static uint64_t be_task_seq(void *ctx)
{
    return mt_core_task_event_seq(ctx);
}

static bool be_task_changed(void *ctx, const char *path, uint64_t since)
{
    return mt_core_task_changed(ctx, path, since);
}

/* The core's metrics, then the verified-peer cache's counters (attested
 * TLS peers: executor API, scheduler, KeyStore; mt_vcache.h). */
static char *be_metrics(void *ctx)
{
    char *core = mt_core_metrics(ctx);
    if (!core)
        return NULL;
    /* remote executors' health and lease counters ("" without --remote-executors) */
    char *x = mt_remote_sched_metrics();
    if (!x) {
        free(core);
        return NULL;
    }
    mt_vcache_stats s;
    mt_vcache_stats_get(mt_vcache_global(), &s);
    static const char fmt[] =
        "# HELP mesatee_attest_peer_cache_hits_total Attested TLS peer certificates found in "
        "the verified-peer cache (not verified again).\n"
        "# TYPE mesatee_attest_peer_cache_hits_total counter\n"
        "mesatee_attest_peer_cache_hits_total %llu\n"
        "# HELP mesatee_attest_peer_cache_misses_total Attested TLS peer certificates verified "
        "in full.\n"
        "# TYPE mesatee_attest_peer_cache_misses_total counter\n"
        "mesatee_attest_peer_cache_misses_total %llu\n"
        "# HELP mesatee_attest_peer_cache_entries Verified peers remembered now.\n"
        "# TYPE mesatee_attest_peer_cache_entries gauge\n"
        "mesatee_attest_peer_cache_entries %zu\n";
    size_t cl = strlen(core), xl = strlen(x), cap = cl + xl + sizeof fmt + 3 * 24;
    char *out = malloc(cap);
    if (!out) {
        free(core);
        free(x);
        return NULL;
    }
    memcpy(out, core, cl);
    memcpy(out + cl, x, xl);
    snprintf(out + cl + xl, cap - cl - xl, fmt, (unsigned long long)s.hits,
             (unsigned long long)s.misses, s.entries);
    free(core);
    free(x);
    /* a joined node's database certificate (mt_dbrenew.h) */
    char *d = g_dbrenew ? mt_dbrenew_metrics(g_dbrenew) : NULL;
    if (d) {
        size_t ol = strlen(out), dl = strlen(d);
        char *both = realloc(out, ol + dl + 1);
        if (both) {
            memcpy(both + ol, d, dl + 1);
            out = both;
        }
        free(d);
    }
    return out;
}

static bool be_ready(void *ctx)
{
    return mt_core_ready(ctx);
}

static bool be_streams_body(void *ctx, const char *method, const char *path)
{
    (void)ctx;
    return mt_core_route_streams_body(method, path);
}

static mt_status be_upload_begin(void *ctx, mt_upload **out, mt_err *err)
{
    return mt_core_upload_begin(ctx, out, err);
}

static bool be_slow(void *ctx, const char *method, const char *path)
{
    (void)ctx;
    return mt_core_route_is_slow(method, path);
}

/* The transit operations (docs/keystore.md) are handled on the gateway's
 * request threads: every core route takes core->mu itself, so handle is
 * thread-safe, and the loop goes on with TLS and HTTP meanwhile. */
static bool be_pooled(void *ctx, const char *method, const char *path)
{
    (void)ctx;
    (void)method;
    return strncmp(path, "/v1/transit/", 12) == 0;
}

static bool be_allow(void *ctx, const char *path, char *out, size_t cap)
{
    (void)ctx;
    return mt_core_route_allow(path, out, cap);
}

/* Certificate renewal: a fresh key and certificate with fresh evidence. */
static mt_status renew_identity(void *ctx, EVP_PKEY **key, X509 **cert, mt_err *err)
{
    return mt_tee_tls_identity(ctx, key, cert, err);
}

#define DEFAULT_CERT_RENEW_S 3600

/* The executor API's certificate renewal follows --cert-renew-s. */
static unsigned exec_renew_s(const mt_server_config *cfg, mt_tee *tee)
{
    if (!strcmp(mt_tee_level(tee), "none") || cfg->cert_renew_s < 0)
        return 0;
    return cfg->cert_renew_s == 0              ? DEFAULT_CERT_RENEW_S
           : cfg->cert_renew_s > 86400LL * 365 ? 86400u * 365
                                              : (unsigned)cfg->cert_renew_s;
}
#define DEFAULT_SHUTDOWN_GRACE_S 30

/* Graceful stop (mt_gateway_config.drain): refuse new tasks, tell systemd,
 * then wait for the running ones (drained). */
static int64_t g_last_running = -2; /* last count put in STATUS= */

static void srv_drain(void *ctx)
{
    mt_sdnotify_stopping("stopping: no new tasks, waiting for the running ones");
    g_last_running = -2;
    mt_core_drain(ctx);
}

static bool srv_drained(void *ctx)
{
    int64_t n = mt_core_tasks_running(ctx);
    if (n != g_last_running && n > 0) {
        mt_info("stopping: %lld task(s) still running", (long long)n);
        mt_sdnotify_status("stopping: %lld task(s) still running", (long long)n);
    }
    g_last_running = n;
    return n == 0;
}

/* The server's TLS identity: the operator's files, the stable level-none
 * identity in the data directory, or a fresh RA-TLS one (mt_tls_id.h). */
typedef struct server_identity {
    mt_tee *tee;
    const char *data_dir;
    const char *tls_cert, *tls_key; /* operator files; NULL = our own */
    bool explicit_san;              /* --tls-san given */
    char san[MT_TLS_SAN_TEXT_MAX];
} server_identity;

static mt_status load_identity(void *ctx, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain,
                               mt_err *err)
{
    server_identity *id = ctx;
    *chain = NULL;
    if (id->tls_cert)
        return mt_tls_id_operator(id->tls_cert, id->tls_key, id->explicit_san ? id->san : NULL,
                                  key, cert, chain, err);
    if (!strcmp(mt_tee_level(id->tee), "none"))
        return mt_tls_id_self(id->tee, id->data_dir, id->san, key, cert, err);
    return mt_tee_tls_identity(id->tee, key, cert, err);
}

/* ---- server ---- */

mt_status mt_server_set_limits(const mt_server_limits *l, mt_err *err)
{
    mt_gateway *gw = atomic_load(&g_gw);
    if (!gw || !g_core)
        return mt_err_set(err, MT_EUNAVAIL, "the server is not running");
    if (!g_level_none)
        return mt_err_set(err, MT_EPERM, "the limits are measured at this level: restart to "
                                         "change them");
    mt_core_set_limits(g_core, l->task_mem_bytes, l->task_cpu_seconds, l->task_wall_ms,
                       l->token_ttl_seconds);
    mt_gateway_set_max_connections(gw, l->max_connections);
    return MT_OK;
}

void mt_server_stop(void)
{
    atomic_store(&g_stop_requested, 1);
    atomic_fetch_add(&g_stoppers, 1);
    mt_gateway *gw = atomic_load(&g_gw);
    if (gw)
        mt_gateway_stop(gw);
    mt_ks_join_cancel(atomic_load(&g_joined));
    atomic_fetch_sub(&g_stoppers, 1);
}

mt_status mt_server_run(const mt_server_config *cfg, mt_err *err)
{
    if (!cfg || !cfg->core.data_dir || !cfg->core.data_dir[0])
        return mt_err_set(err, MT_EINVAL, "server needs a data dir (--data-dir)");
    atomic_store(&g_stop_requested, 0);

    const char *data_dir = cfg->core.data_dir;
    const char *level = cfg->tee_level ? cfg->tee_level : "none";
    mt_tee *tee = NULL;
    mt_core *core = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    server_identity *ident = calloc(1, sizeof *ident);
    mt_gateway *gw = NULL;
    mt_policy *exec_policy = NULL;
    mt_executor_api *exec_api = NULL;
    mt_policy *ks_policy = NULL;
    mt_ks_joined *joined = NULL;
    mt_ks_join_server *join_srv = NULL;
    mt_dbcert_ca *db_ca = NULL;
    mt_dbrenew *dbrenew = NULL;
    char *db_url = NULL;
    int lock_fd = -1;
    mt_status st = MT_OK;
    if (!ident) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    /* The names and the operator's files are checked before anything is made. */
    ident->data_dir = data_dir;
    ident->tls_cert = cfg->tls_cert;
    ident->tls_key = cfg->tls_key;
    ident->explicit_san = cfg->n_tls_san > 0;
    if ((st = mt_tls_san_list(cfg->tls_san, cfg->n_tls_san, cfg->listen, ident->san,
                              sizeof ident->san, err)) != MT_OK)
        goto out;
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
        st = mt_err_set(err, MT_EINVAL, "give both --tls-cert FILE and --tls-key FILE");
        goto out;
    }
    if (cfg->tls_cert && strcmp(level, "none") != 0) {
        st = mt_err_set(err, MT_EINVAL,
                        "--tls-cert/--tls-key are for level none: attested levels make their "
                        "own RA-TLS certificates (clients verify them by policy)");
        goto out;
    }
    if (cfg->tls_cert && (st = load_identity(ident, &key, &cert, &chain, err)) != MT_OK)
        goto out;
    if ((st = mt_mkdirs(data_dir, 0700, err)) != MT_OK)
        goto out;
    /* before anything else writes in the data directory (mt_dirlock.h) */
    if ((st = mt_dirlock_acquire(data_dir, &lock_fd, err)) != MT_OK)
        goto out;
    if ((st = mt_tee_open(level, data_dir, &tee, err)) != MT_OK)
        goto out;
    ident->tee = tee;
    if ((st = mt_tee_set_tls_san(tee, ident->san, err)) != MT_OK)
        goto out;
    if (!cfg->tls_cert && !strcmp(level, "none") &&
        (st = load_identity(ident, &key, &cert, &chain, err)) != MT_OK)
        goto out;
    const char *measured_files[] = {cfg->core.worker_path, NULL};
    const char *mc = cfg->measured_config ? cfg->measured_config : "";
    if ((st = mt_tee_set_config(tee, (const uint8_t *)mc, strlen(mc), measured_files, err)) !=
        MT_OK)
        goto out;
    if (!strcmp(mt_tee_level(tee), "soft")) {
        char meas[65], pk[65];
        mt_tee_soft_ids(tee, meas, pk);
        mt_info("TEE level soft: evidence measurement %s, platform key %s (pin these in the "
                "clients' policy; `mesatee measure` recomputes the first)",
                meas, pk);
    }
    mt_core_config ccfg = cfg->core;
    ccfg.keep_leased = cfg->remote_executors;
    ccfg.node_dead_after_ms = cfg->node_dead_after_ms;
    ccfg.run_max_attempts = cfg->executor_max_attempts;
    if (cfg->keystore_db_ca && !cfg->keystore_listen) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-db-ca is for the KeyStore node "
                                        "(--keystore-listen)");
        goto out;
    }
    if (cfg->keystore_advertise && !cfg->keystore_listen) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-advertise is for the KeyStore node "
                                        "(--keystore-listen)");
        goto out;
    }
    if (cfg->keystore_advertise &&
        (st = mt_ks_join_check_advertise(cfg->keystore_advertise, err)) != MT_OK)
        goto out;
    if (cfg->keystore_db_ca_create && !cfg->keystore_listen) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-db-ca-create is for the KeyStore node "
                                        "(--keystore-listen)");
        goto out;
    }
    if (cfg->keystore_db_ca_create && cfg->keystore_db_ca) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-db-ca FILE and --keystore-db-ca-create "
                                        "exclude each other (import a CA or make one)");
        goto out;
    }
    if (cfg->keystore_db_cert_ttl_s && !cfg->keystore_listen) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-db-cert-ttl is for the KeyStore node "
                                        "(--keystore-listen)");
        goto out;
    }
    if (cfg->keystore_db_cert_ttl_s && (cfg->keystore_db_cert_ttl_s < MT_DBCERT_TTL_MIN ||
                                        cfg->keystore_db_cert_ttl_s > MT_DBCERT_TTL_MAX)) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-db-cert-ttl: %u..%u seconds",
                        MT_DBCERT_TTL_MIN, MT_DBCERT_TTL_MAX);
        goto out;
    }
    if (cfg->keystore_join_timeout_s && !cfg->keystore_join) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-join-timeout-s is for --keystore-join");
        goto out;
    }
    if (cfg->keystore_join && cfg->keystore_listen) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-join and --keystore-listen exclude each "
                                        "other: only the KeyStore node serves joins");
        goto out;
    }
    if (cfg->keystore_join) { /* before the core: it takes the shared keys */
        if (!cfg->keystore_policy) {
            st = mt_err_set(err, MT_EINVAL, "--keystore-join needs --keystore-policy FILE (the "
                                            "evidence the KeyStore node must show)");
            goto out;
        }
        if ((st = mt_policy_load(cfg->keystore_policy, &ks_policy, err)) != MT_OK) {
            mt_err_prefix(err, st, "--keystore-policy: ");
            goto out;
        }
        if ((st = mt_ks_join_open(tee, cfg->keystore_join, ks_policy,
                                   cfg->keystore_join_timeout_s * 1000u, &joined, err)) != MT_OK)
            goto out;
        atomic_store(&g_joined, joined);
        if (atomic_load(&g_stop_requested))
            mt_ks_join_cancel(joined);
        ccfg.keystore_joined = joined;
        if ((st = joined_db_url(joined, data_dir, ccfg.store_url, &db_url, err)) != MT_OK)
            goto out;
        if (db_url) {
            ccfg.store_url = db_url;
            char cp[4096];
            snprintf(cp, sizeof cp, "%s/db-client.crt", data_dir);
            if ((st = mt_dbrenew_start(joined, cp, &dbrenew, err)) != MT_OK)
                goto out;
            g_dbrenew = dbrenew;
        }
    } else if (cfg->keystore_policy) {
        st = mt_err_set(err, MT_EINVAL, "--keystore-policy is for --keystore-join");
        goto out;
    }
    if ((st = mt_core_open(&ccfg, tee, &core, err)) != MT_OK)
        goto out;
    if (cfg->keystore_listen) {
        struct mt_keystore *ks = NULL;
        uint8_t platform[MT_KS_JOIN_PLATFORM];
        st = mt_core_join_source(core, &ks, platform, err);
        if (st == MT_OK && !strcmp(mt_tee_level(tee), "none"))
            st = mt_err_set(err, MT_EINVAL, "--keystore-listen needs an attested level (at level "
                                            "none nothing attests the joining nodes)");
        /* the database CA before the listener starts: a join served at once
         * then already gets its certificate (review: the CA's creation and
         * sealing used to run while joins were served) */
        if (st == MT_OK)
            st = keystore_db_ca(cfg, ks, data_dir, &db_ca, err);
        if (st == MT_OK && !db_ca && cfg->keystore_db_cert_ttl_s)
            st = mt_err_set(err, MT_EINVAL,
                            "--keystore-db-cert-ttl needs --keystore-db-ca FILE, "
                            "--keystore-db-ca-create or a database CA sealed in keystore.sealed");
        if (st == MT_OK)
            st = mt_ks_join_server_start(cfg->keystore_listen, cfg->keystore_advertise, tee, ks,
                                         platform, data_dir, &join_srv, err);
        mt_wipe(platform, sizeof platform);
        if (st != MT_OK)
            goto out;
        mt_ks_join_server_set_audit(join_srv, join_audit, core);
        if (db_ca) {
            mt_ks_join_server_set_db_ca(join_srv, db_ca, "mesatee",
                                        cfg->keystore_db_cert_ttl_s ? cfg->keystore_db_cert_ttl_s
                                                                    : MT_DBCERT_TTL_MAX,
                                        join_dbcert_audit);
        }
        mt_core_set_join_info(core, mt_ks_join_server_url(join_srv),
                              !db_ca                      ? 0
                              : cfg->keystore_db_cert_ttl_s ? cfg->keystore_db_cert_ttl_s
                                                          : MT_DBCERT_TTL_MAX);
    }
    if (cfg->remote_executors) {
        if (!cfg->executor_policy) {
            st = mt_err_set(err, MT_EINVAL, "--remote-executors needs --executor-policy FILE");
            goto out;
        }
        if ((st = mt_policy_load(cfg->executor_policy, &exec_policy, err)) != MT_OK ||
            (st = mt_executor_api_start(cfg->executor_listen, data_dir, tee, exec_policy, core,
                                        cfg->executor_max_buffered, cfg->executor_lease_ms,
                                        cfg->executor_max_attempts, exec_renew_s(cfg, tee),
                                        &exec_api, err)) != MT_OK)
            goto out;
    } else if ((st = mt_core_start_scheduler(core, err)) != MT_OK)
        goto out;
    if (!cert && (st = load_identity(ident, &key, &cert, &chain, err)) != MT_OK)
        goto out;

    mt_gateway_backend be = {
        .ctx = core,
        .authenticate = be_authenticate,
        .needs_auth = be_needs_auth,
        .max_body = be_max_body,
        .handle = be_handle,
        .audit = be_audit,
        .audit_batch = be_audit_batch,
        .sync = be_sync,
        .task_seq = be_task_seq,
        .task_changed = be_task_changed,
        .metrics = be_metrics,
        .ready = be_ready,
        .streams_body = be_streams_body,
        .upload_begin = be_upload_begin,
        .upload_write = mt_core_upload_write,
        .upload_free = mt_core_upload_free,
        .slow = be_slow,
        .pooled = be_pooled,
        .allow = be_allow,
    };
    /* evhttp's own limit is the largest body of any route (the upload). */
    size_t upload = mt_core_route_max_body(core, "POST", "/v1/objects");
    size_t json = mt_core_route_max_body(core, "POST", "/v1/tasks");
    mt_gateway_config gcfg = {
        .listen = cfg->listen,
        .data_dir = data_dir,
        .level = mt_tee_level(tee),
        .key = key,
        .cert = cert,
        .chain = chain,
        .reload = load_identity,
        .reload_ctx = ident,
        .max_connections = cfg->max_connections,
        .max_parked = cfg->max_task_waiters,
        .max_body = upload > json ? upload : json,
        .handle_signals = true,
        .metrics_token = cfg->metrics_token,
        .on_hup = cfg->reload,
        .on_hup_ctx = cfg->reload_ctx,
        .drain = srv_drain,
        .drained = srv_drained,
        .drain_ctx = core,
        .drain_grace_ms = cfg->shutdown_grace_s < 0 ? 0
                          : cfg->shutdown_grace_s == 0 ? DEFAULT_SHUTDOWN_GRACE_S * 1000u
                          : cfg->shutdown_grace_s > 86400 ? 86400u * 1000u
                                                          : (unsigned)cfg->shutdown_grace_s * 1000u,
    };
    if (strcmp(mt_tee_level(tee), "none") != 0 && cfg->cert_renew_s >= 0) {
        gcfg.renew = renew_identity;
        gcfg.renew_ctx = tee;
        gcfg.renew_interval_s =
            cfg->cert_renew_s == 0 ? DEFAULT_CERT_RENEW_S
            : cfg->cert_renew_s > 86400LL * 365 ? 86400u * 365 : (unsigned)cfg->cert_renew_s;
    }
    st = mt_gateway_new(&gcfg, &be, &gw, err);
    EVP_PKEY_free(key); /* the gateway's TLS context holds its own references */
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    key = NULL;
    cert = NULL;
    chain = NULL;
    if (st != MT_OK)
        goto out;

    g_core = core;
    g_level_none = !strcmp(mt_tee_level(tee), "none");
    atomic_store(&g_gw, gw);
    mt_core_set_task_listener(core, be_task_event, gw); /* ?wait= */
    if (atomic_load(&g_stop_requested))
        mt_gateway_stop(gw);
    {
        char status[400];
        snprintf(status, sizeof status, "serving on %s (level %s)", mt_gateway_url(gw),
                 mt_tee_level(tee));
        mt_sdnotify_ready(status); /* the socket listens since mt_gateway_new */
    }
    st = mt_gateway_run(gw, err);
    mt_sdnotify_stopping("stopping: closing the store"); /* also after a failed loop */
    atomic_store(&g_gw, NULL);
    g_core = NULL;
    while (atomic_load(&g_stoppers) > 0) {
    }
out:
    g_dbrenew = NULL; /* /metrics is not served any more (the gateway stopped) */
    /* stopping: no join waits on the KeyStore node any more (a renewal or
     * re-join in flight fails at once; mt_ks_join_cancel) */
    atomic_store(&g_joined, NULL);
    while (atomic_load(&g_stoppers) > 0) {
    }
    mt_ks_join_cancel(joined);
    mt_ks_join_server_stop(join_srv);
    mt_dbcert_ca_free(db_ca);
    mt_executor_api_stop(exec_api);
    mt_policy_free(exec_policy);
    if (core)
        mt_core_set_task_listener(core, NULL, NULL); /* before the gateway goes */
    mt_gateway_free(gw);
    mt_dbrenew_stop(dbrenew); /* after the gateway's threads, which render /metrics */
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    if (core)
        mt_core_close(core); /* stops the scheduler, kills workers, closes the store */
    mt_ks_joined_free(joined);
    free(db_url);
    mt_policy_free(ks_policy);
    mt_tee_free(tee);
    free(ident);
    mt_dirlock_release(lock_fd);
    return st;
}
