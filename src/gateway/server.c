/* server.c: mt_server_run (see mt_server.h): opens the TEE provider and the
 * core, and serves the core through the gateway until stopped. The backend
 * vtable below is the only place where the gateway meets mt_core. */
#include "mt_server.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mt_executor_api.h"
#include "mt_gateway.h"
#include "mt_log.h"
#include "mt_sdnotify.h"
#include "mt_util.h"

/* The running gateway, for mt_server_stop. g_stoppers counts mt_server_stop
 * calls between loading g_gw and writing to it, so the gateway is not freed
 * under them. */
static _Atomic(mt_gateway *) g_gw;
static atomic_int g_stop_requested;
static atomic_int g_stoppers;

/* ---- backend: the mt_core functions behind the gateway's vtable ---- */

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

static void be_handle(void *ctx, const mt_request *req, mt_response *resp)
{
    mt_core_handle(ctx, req, resp);
}

static mt_status be_audit(void *ctx, const char *actor, const char *action, const char *object,
                          int status, mt_err *err)
{
    return mt_core_audit(ctx, actor, action, object, status, err);
}

static char *be_metrics(void *ctx)
{
    return mt_core_metrics(ctx);
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

/* Certificate renewal: a fresh key and certificate with fresh evidence. */
static mt_status renew_identity(void *ctx, EVP_PKEY **key, X509 **cert, mt_err *err)
{
    return mt_tee_tls_identity(ctx, key, cert, err);
}

#define DEFAULT_CERT_RENEW_S 3600
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

/* ---- server ---- */

void mt_server_stop(void)
{
    atomic_store(&g_stop_requested, 1);
    atomic_fetch_add(&g_stoppers, 1);
    mt_gateway *gw = atomic_load(&g_gw);
    if (gw)
        mt_gateway_stop(gw);
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
    mt_gateway *gw = NULL;
    mt_policy *exec_policy = NULL;
    mt_executor_api *exec_api = NULL;
    mt_status st = mt_mkdirs(data_dir, 0700, err);
    if (st != MT_OK)
        goto out;
    if ((st = mt_tee_open(level, data_dir, &tee, err)) != MT_OK)
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
    if ((st = mt_core_open(&cfg->core, tee, &core, err)) != MT_OK)
        goto out;
    if (cfg->remote_executors) {
        if (!cfg->executor_policy) {
            st = mt_err_set(err, MT_EINVAL, "--remote-executors needs --executor-policy FILE");
            goto out;
        }
        if ((st = mt_policy_load(cfg->executor_policy, &exec_policy, err)) != MT_OK ||
            (st = mt_executor_api_start(cfg->executor_listen, data_dir, tee, exec_policy, core,
                                        cfg->executor_max_buffered, &exec_api, err)) != MT_OK)
            goto out;
    } else if ((st = mt_core_start_scheduler(core, err)) != MT_OK)
        goto out;
    if ((st = mt_tee_tls_identity(tee, &key, &cert, err)) != MT_OK)
        goto out;

    mt_gateway_backend be = {
        .ctx = core,
        .authenticate = be_authenticate,
        .needs_auth = be_needs_auth,
        .max_body = be_max_body,
        .handle = be_handle,
        .audit = be_audit,
        .metrics = be_metrics,
        .ready = be_ready,
        .streams_body = be_streams_body,
        .upload_begin = be_upload_begin,
        .upload_write = mt_core_upload_write,
        .upload_free = mt_core_upload_free,
        .slow = be_slow,
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
        .max_connections = cfg->max_connections,
        .max_body = upload > json ? upload : json,
        .handle_signals = true,
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
    key = NULL;
    cert = NULL;
    if (st != MT_OK)
        goto out;

    atomic_store(&g_gw, gw);
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
    while (atomic_load(&g_stoppers) > 0) {
    }
out:
    mt_executor_api_stop(exec_api);
    mt_policy_free(exec_policy);
    mt_gateway_free(gw);
    EVP_PKEY_free(key);
    X509_free(cert);
    if (core)
        mt_core_close(core); /* stops the scheduler, kills workers, closes the store */
    mt_tee_free(tee);
    return st;
}
