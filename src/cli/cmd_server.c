/* cmd_server: `mesatee serve` (fills mt_server_config, runs the gateway in
 * the foreground) and the offline `mesatee audit verify --data-dir DIR`.
 * Built with MT_CLI_HAVE_SERVER / MT_CLI_HAVE_CORE when those libraries are
 * part of the build; otherwise the commands say they are not built in. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mt_util.h"
#include "serve_config.h"
#ifdef MT_CLI_HAVE_SERVER
#include "mt_server.h"
#include "mt_tls_id.h"
#include "tee_tpm2.h"
#endif
#ifdef MT_CLI_HAVE_CORE
#include "mt_core.h"
#include "mt_db.h"
#include "mt_executor.h"
#include "untrusted_fetch.h"
#endif

/* The mesatee-worker executable: --worker > MESATEE_WORKER > next to this
 * binary > <bindir>/../<libexecdir>/mesatee/ (installed) > the build tree's
 * worker. Heap string, or NULL (message printed). */
char *cli_find_worker(cli_ctx *ctx)
{
    return cli_find_worker_at(cli_opt_get(ctx, "worker"));
}

char *cli_find_worker_at(const char *w)
{
    if (!w)
        w = getenv("MESATEE_WORKER");
    if (w && *w) {
        if (access(w, X_OK) != 0) {
            cli_fail("worker %s is not executable: %s", w, strerror(errno));
            return NULL;
        }
        return strdup(w);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *cand = NULL;
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        size_t len = strlen(self) + sizeof "/mesatee-worker";
        if ((cand = malloc(len))) {
            snprintf(cand, len, "%s/mesatee-worker", self);
            if (access(cand, X_OK) == 0)
                return cand;
        }
#ifdef MT_CLI_LIBEXEC_REL
        /* installed layout: <prefix>/bin/mesatee, <prefix>/<libexec>/mesatee/mesatee-worker */
        char inst[PATH_MAX + 64];
        snprintf(inst, sizeof inst, "%s/../%s/mesatee/mesatee-worker", self, MT_CLI_LIBEXEC_REL);
        if (access(inst, X_OK) == 0) {
            free(cand);
            return strdup(inst);
        }
#endif
    }
#ifdef MT_CLI_BUILD_WORKER
    if (access(MT_CLI_BUILD_WORKER, X_OK) == 0) {
        free(cand);
        return strdup(MT_CLI_BUILD_WORKER);
    }
#endif
    cli_fail("cannot find the mesatee-worker executable (looked at %s); give --worker PATH "
             "or set MESATEE_WORKER",
             cand ? cand : "the directory of this binary");
    free(cand);
    return NULL;
}

/* The settings text that the soft level measures (docs/attestation.md) is
 * built from the parsed settings: serve_config_measured. */
void cli_measured_config(const serve_config *c, char *out, size_t cap)
{
    serve_config_measured(c, out, cap);
}

#ifdef MT_CLI_HAVE_SERVER
/* Reads the /metrics bearer token of --metrics-token-file: one line of 16 to
 * 256 printable ASCII characters without spaces (a trailing newline is
 * dropped). Heap string (wipe it), or NULL after printing an error that names
 * the file but never its bytes. */
static char *read_metrics_token(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err err;
    mt_err_clear(&err);
    if (mt_file_read(path, 4096, &buf, &len, &err) != MT_OK) {
        cli_fail("--metrics-token-file %s: %s", path, err.msg);
        return NULL;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    bool ok = len >= 16 && len <= 256;
    for (size_t i = 0; ok && i < len; i++)
        ok = buf[i] > 0x20 && buf[i] < 0x7f;
    if (!ok) {
        mt_wipe(buf, len);
        free(buf);
        cli_fail("--metrics-token-file %s: the token must be one line of 16 to 256 printable "
                 "ASCII characters without spaces (e.g. `head -c 32 /dev/urandom | base64 | "
                 "tr -d '/+=' > FILE`)",
                 path);
        return NULL;
    }
    buf[len] = '\0'; /* mt_file_read leaves room for a NUL */
    return (char *)buf;
}
#endif

static void wipe_free(char *p)
{
    if (p) {
        mt_wipe(p, strlen(p));
        free(p);
    }
}

/* The admin password for a first start: --admin-password-file when that file
 * exists (the operator's choice), else MESATEE_ADMIN_PASSWORD; NULL (and
 * CLI_OK) when the daemon is to generate one (written to the
 * admin-password-file path, or DATA_DIR/admin-password). */
static int admin_password(const serve_config *c, char **out)
{
    *out = NULL;
    const char *pwfile = serve_config_get(c, "admin-password-file");
    if (pwfile && access(pwfile, F_OK) == 0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        mt_err err;
        if (mt_file_read(pwfile, 4096, &buf, &len, &err) != MT_OK)
            return cli_fail("cannot read %s: %s", pwfile, err.msg);
        char *password = (char *)buf;
        password[strcspn(password, "\r\n")] = '\0';
        if (!*password) {
            free(password);
            return cli_fail("admin password file %s is empty", pwfile);
        }
        *out = password;
    } else if (!pwfile && getenv("MESATEE_ADMIN_PASSWORD") && *getenv("MESATEE_ADMIN_PASSWORD")) {
        /* flag > environment; used only at the first start */
        if (!(*out = strdup(getenv("MESATEE_ADMIN_PASSWORD"))))
            return cli_fail("out of memory");
        char *env = getenv("MESATEE_ADMIN_PASSWORD");
        mt_wipe(env, strlen(env)); /* also clears /proc/PID/environ */
        unsetenv("MESATEE_ADMIN_PASSWORD");
    }
    return CLI_OK;
}

int cli_cmd_serve(cli_ctx *ctx)
{
    serve_config *c = NULL;
    bool printed;
    int rc = cli_serve_config_load_or_print(ctx, &c, &printed);
    if (rc != CLI_OK || printed)
        return rc;
    rc = cli_serve_run(ctx, c);
    serve_config_free(c);
    return rc;
}

int cli_serve_run(cli_ctx *ctx, serve_config *c)
{
    const char *data_dir = serve_config_get(c, "data-dir");
    if (!data_dir)
        return cli_usage_error(ctx, "missing --data-dir (or data-dir in the configuration "
                                    "file, or MESATEE_DATA_DIR)");
    const char *store = serve_config_get(c, "store");
    (void)store; /* unused in a build without the server */
#ifdef MT_CLI_HAVE_CORE
    if (store) { /* checked before anything starts (docs/cluster.md) */
        mt_err serr;
        if (mt_core_store_check(store, NULL, &serr) != MT_OK)
            return cli_usage_error(ctx, "--store: %s", serr.msg);
    }
#endif
    const char *objects = serve_config_get(c, "objects");
    (void)objects;
#ifdef MT_CLI_HAVE_CORE
    if (objects) {
        mt_err oerr;
        if (mt_core_objects_check(objects, &oerr) != MT_OK)
            return cli_usage_error(ctx, "--objects: %s", oerr.msg);
    }
#endif
    const char *level = serve_config_get(c, "level");
    const char *tcti = serve_config_get(c, "tpm2-tcti");
    if (tcti && (!level || strcmp(level, "tpm2") != 0))
        return cli_usage_error(ctx, "--tpm2-tcti is only for --level tpm2");
#ifdef MT_CLI_HAVE_SERVER
    mt_err err;
    mt_err_clear(&err);
    if (cli_serve_apply_log(c, &err) != MT_OK)
        return cli_fail("serve: %s", err.msg);
    /* a failed WAL fsync stops the daemon (exit MT_DB_SYNC_FATAL_EXIT):
     * its restart recovers from what is on disk (docs/operations.md) */
#ifdef MT_CLI_HAVE_CORE
    mt_db_set_sync_fatal(true);
#endif
    /* glibc malloc: keep freed memory mapped (a heap top up to 32 MiB is
     * not trimmed, blocks under 4 MiB come from the heap, not mmap). With
     * the defaults every task's burst of allocations (SQLite's page caches
     * refilled after another connection's commit, request buffers) found
     * its memory handed back and faulted it in again: ~77 page faults per
     * echo task in the daemon, ~38 with these (bench/faas/cost.sh). Only
     * where memory goes back to the kernel changes; freed memory was never
     * wiped by it (secrets are wiped before free: mt_wipe, mt_secmem). */
    (void)mallopt(M_TRIM_THRESHOLD, 32 << 20);
    (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
    /* flag > environment; read by the tpm2 attester (tee_tpm2.h) */
    if (tcti && setenv("MESATEE_TPM2_TCTI", tcti, 1) != 0)
        return cli_fail("cannot set MESATEE_TPM2_TCTI: %s", strerror(errno));
    if (untrusted_fetch_allow_check(serve_config_get(c, "fetch-allow"), &err) != MT_OK)
        return cli_fail("serve: --fetch-allow: %s", err.msg);
    /* TLS names and the operator's certificate (mt_tls_id.h); tls-san is
     * repeatable: its values arrive joined with ',' (a list is accepted) */
    const char *san = serve_config_get(c, "tls-san");
    {
        char san_text[MT_TLS_SAN_TEXT_MAX];
        if (mt_tls_san_list(san ? &san : NULL, san ? 1 : 0, serve_config_get(c, "listen"),
                            san_text, sizeof san_text, &err) != MT_OK)
            return cli_usage_error(ctx, "--tls-san: %s", err.msg);
    }
    const char *tls_cert = serve_config_get(c, "tls-cert"), *tls_key = serve_config_get(c, "tls-key");
    if ((tls_cert && !*tls_cert) || (tls_key && !*tls_key))
        return cli_usage_error(ctx, "--tls-cert and --tls-key need a file name");
    if ((tls_cert != NULL) != (tls_key != NULL))
        return cli_usage_error(ctx, "--tls-cert FILE and --tls-key FILE go together");
    if (tls_cert && level && strcmp(level, "none") != 0)
        return cli_usage_error(ctx, "--tls-cert/--tls-key are for --level none: attested levels "
                                    "make their own RA-TLS certificates (clients verify them by "
                                    "policy, not by name)");
    bool remote = serve_config_bool(c, "remote-executors");
    const char *mbuf = serve_config_get(c, "executor-max-buffered-mib");
    if (!remote && (serve_config_get(c, "executor-listen") ||
                    serve_config_get(c, "executor-policy") || mbuf))
        return cli_usage_error(ctx, "--executor-listen, --executor-policy and "
                                    "--executor-max-buffered-mib need --remote-executors");
    if (!remote && serve_config_get(c, "executor-lease-ms"))
        return cli_usage_error(ctx, "--executor-lease-ms is the lease of remote executors: they "
                                    "need --remote-executors");
    if (serve_config_bool(c, "log-task-errors"))
        mt_executor_set_log_task_errors(true);
    mt_worker_start wstart = MT_WORKER_START_ZYGOTE;
    if (serve_config_get(c, "worker-start") &&
        !mt_worker_start_parse(serve_config_get(c, "worker-start"), &wstart))
        return cli_usage_error(ctx, "--worker-start must be zygote or spawn");
    mt_executor_set_worker_start(wstart);
    if (serve_config_get(c, "zygote-max-tasks")) /* range checked by serve_config */
        mt_executor_set_zygote_max_tasks(
            strtoull(serve_config_get(c, "zygote-max-tasks"), NULL, 10));
    char *password = NULL;
    int rc = admin_password(c, &password);
    if (rc != CLI_OK)
        return rc;
    char *metrics_token = NULL;
    const char *mtf = serve_config_get(c, "metrics-token-file");
    if (mtf && !(metrics_token = read_metrics_token(mtf))) {
        wipe_free(password);
        return CLI_FAIL;
    }
    char *worker = cli_find_worker_at(serve_config_get(c, "worker"));
    if (!worker) {
        wipe_free(password);
        wipe_free(metrics_token);
        return CLI_FAIL;
    }
    mt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = serve_config_get(c, "listen");
    cfg.tee_level = level ? level : "none";
    char measured[2048];
    cli_measured_config(c, measured, sizeof measured);
    cfg.measured_config = measured;
    cfg.max_connections = (unsigned)serve_config_u64(c, "max-connections", 0);
    cfg.max_task_waiters = (unsigned)serve_config_u64(c, "max-task-waiters", 0);
    /* absent: the default (1 hour); 0: never */
    uint64_t renew_s = serve_config_u64(c, "cert-renew-s", 0);
    cfg.cert_renew_s = !serve_config_get(c, "cert-renew-s") ? 0
                       : renew_s == 0                      ? -1
                                                           : (long long)renew_s;
    uint64_t grace_s = serve_config_u64(c, "shutdown-grace-s", 30);
    cfg.shutdown_grace_s = grace_s == 0 ? -1 : (long long)grace_s; /* 0: no wait */
    cfg.core.audit_spool_max = serve_config_u64(c, "audit-spool-max-kib", 0) << 10; /* 0: 16 MiB */
    cfg.core.data_dir = data_dir;
    cfg.core.store_url = store;
    cfg.core.objects = objects;
    cfg.core.worker_path = worker;
    cfg.core.file_url_root = serve_config_get(c, "file-url-root");
    cfg.core.fetch_allow = serve_config_get(c, "fetch-allow");
    cfg.core.python_allow = serve_config_get(c, "python-allow");
    cfg.core.python_deny = serve_config_get(c, "python-deny");
    cfg.core.seal_legacy_store = serve_config_bool(c, "seal-legacy-store");
    cfg.core.release_signers = serve_config_get(c, "release-signers");
    cfg.core.release_threshold = (unsigned)serve_config_u64(c, "release-threshold", 0);
    cfg.core.keystore_collateral = serve_config_get(c, "keystore-collateral");
    /* --keystore-recover-key is repeatable: the values joined with ',' */
    static char rk_text[4096];
    static const char *rk[16];
    size_t n_rk = 0;
    const char *rks = serve_config_get(c, "keystore-recover-key");
    cfg.core.keystore_recover = serve_config_get(c, "keystore-recover");
    if (rks && !cfg.core.keystore_recover) {
        wipe_free(password);
        wipe_free(metrics_token);
        free(worker);
        return cli_fail("--keystore-recover-key needs --keystore-recover FILE (the escrow)");
    }
    if (rks && strlen(rks) < sizeof rk_text) {
        snprintf(rk_text, sizeof rk_text, "%s", rks);
        for (char *p = rk_text, *s; n_rk < 16 && (s = strsep(&p, ","));)
            if (*s)
                rk[n_rk++] = s;
    }
    cfg.core.keystore_recover_keys = rk;
    cfg.core.n_keystore_recover_keys = n_rk;
    cfg.core.workers = (unsigned)serve_config_u64(c, "workers", 0);
    cfg.core.token_ttl_seconds = (int64_t)serve_config_u64(c, "token-ttl-s", 0);
    cfg.core.task_mem_bytes = serve_config_u64(c, "task-mem-mb", 0) * 1024 * 1024;
    cfg.core.task_cpu_seconds = (uint32_t)serve_config_u64(c, "task-cpu-s", 0);
    cfg.core.task_wall_ms = (uint32_t)(serve_config_u64(c, "task-wall-s", 0) * 1000);
    cfg.core.admin_password = password;
    /* a generated password goes to the named file (it did not exist) */
    cfg.core.admin_password_out = password ? NULL : serve_config_get(c, "admin-password-file");
    cfg.remote_executors = remote;
    cfg.executor_listen = serve_config_get(c, "executor-listen");
    cfg.executor_policy = serve_config_get(c, "executor-policy");
    cfg.keystore_listen = serve_config_get(c, "keystore-listen");
    cfg.keystore_join = serve_config_get(c, "keystore-join");
    cfg.keystore_join_timeout_s = (uint32_t)serve_config_u64(c, "keystore-join-timeout-s", 0);
    cfg.keystore_policy = serve_config_get(c, "keystore-policy");
    cfg.keystore_db_ca = serve_config_get(c, "keystore-db-ca");
    /* range checked by serve_config (10..86400); 0 = unset */
    cfg.keystore_db_cert_ttl_s = (uint32_t)serve_config_u64(c, "keystore-db-cert-ttl", 0);
    cfg.keystore_advertise = serve_config_get(c, "keystore-advertise");
    cfg.keystore_db_ca_create = serve_config_bool(c, "keystore-db-ca-create");
    cfg.executor_max_buffered = (size_t)serve_config_u64(c, "executor-max-buffered-mib", 0)
                                * 1024 * 1024;
    /* ranges checked by serve_config (100..3600000, 1..1000) */
    cfg.executor_lease_ms = (uint32_t)serve_config_u64(c, "executor-lease-ms", 0);
    cfg.executor_max_attempts = (uint32_t)serve_config_u64(c, "executor-max-attempts", 0);
    /* 100..86400000 (serve_config); absent: 0, the default */
    cfg.node_dead_after_ms = (uint32_t)serve_config_u64(c, "node-dead-after-ms", 0);
    cfg.tls_san = san ? &san : NULL;
    cfg.n_tls_san = san ? 1 : 0;
    cfg.tls_cert = tls_cert;
    cfg.tls_key = tls_key;
    cfg.metrics_token = metrics_token;
    cfg.reload = cli_serve_reload;
    cli_serve_reload_init(ctx, c);
    mt_status st = mt_server_run(&cfg, &err);
    cli_serve_reload_done();
    wipe_free(password);
    wipe_free(metrics_token);
    free(worker);
    if (st != MT_OK)
        return cli_fail("serve: %s", err.msg[0] ? err.msg : mt_status_name(st));
    return CLI_OK;
#else
    (void)cli_find_worker;
    (void)wipe_free;
    (void)admin_password;
    return cli_fail("this mesatee binary was built without the server (mt_gateway)");
#endif
}

#ifdef MT_CLI_HAVE_CORE
#define MAX_CHECKPOINTS 64

/* Reads and verifies (signature, format) one held checkpoint file. */
static int load_checkpoint(const char *path, mt_audit_checkpoint *cp)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_file_read(path, 65536, &buf, &len, &err);
    if (st == MT_OK)
        st = mt_core_audit_checkpoint_parse(buf, len, cp, &err);
    free(buf);
    if (st != MT_OK)
        return cli_fail("checkpoint %s: %s", path, err.msg[0] ? err.msg : mt_status_name(st));
    return CLI_OK;
}

/* Loads every --checkpoint; all must be signed by one key (--key-id when
 * given, else the first's cluster key, or its node key when it has none):
 * the node key or the cluster key (audit.c), so checkpoints of several
 * nodes of one cluster verify under the cluster key's id. */
#define load_checkpoints cli_load_checkpoints
int cli_load_checkpoints(cli_ctx *ctx, mt_audit_checkpoint *cps, int *n)
{
    const char *files[MAX_CHECKPOINTS];
    *n = cli_opt_all(ctx, "checkpoint", files, MAX_CHECKPOINTS);
    if (*n < 0)
        return cli_usage_error(ctx, "at most %d --checkpoint files", MAX_CHECKPOINTS);
    const char *pin = cli_opt_get(ctx, "key-id");
    for (int i = 0; i < *n; i++) {
        int rc = load_checkpoint(files[i], &cps[i]);
        if (rc != CLI_OK)
            return rc;
        const char *want = pin ? pin : cps[0].cluster_key_id[0] ? cps[0].cluster_key_id
                                                                 : cps[0].key_id;
        if (!mt_core_audit_checkpoint_signed_by(&cps[i], want))
            return cli_fail("checkpoint %s is signed by key %s%s%s, not %s", files[i],
                            cps[i].key_id, cps[i].cluster_key_id[0] ? " and cluster key " : "",
                            cps[i].cluster_key_id, want);
    }
    if (!pin && *n > 0)
        fprintf(stderr,
                "mesatee: warning: the checkpoints are checked against their own signing key "
                "%s; a forged set would agree with itself. Pass --key-id with the key you "
                "trust (the one you saw when you saved them, or the attested server's)\n",
                cps[0].cluster_key_id[0] ? cps[0].cluster_key_id : cps[0].key_id);
    return CLI_OK;
}
#endif

int cli_cmd_audit_verify(cli_ctx *ctx)
{
    const char *data_dir = cli_opt_get(ctx, "data-dir");
    if (cli_opt_has(ctx, "export"))
        return cli_audit_verify_exports(ctx);
    if (!data_dir)
        return cli_audit_verify_online(ctx);
    if (!*data_dir)
        return cli_usage_error(ctx, "missing --data-dir");
#ifdef MT_CLI_HAVE_CORE
    mt_audit_checkpoint cps[MAX_CHECKPOINTS];
    int n = 0;
    int rc = load_checkpoints(ctx, cps, &n);
    if (rc != CLI_OK)
        return rc;
    uint64_t entries = 0, covered = 0;
    for (int i = 0; i < n; i++)
        if (cps[i].entries > covered)
            covered = cps[i].entries;
    mt_err err;
    mt_err_clear(&err);
    const char *store = cli_opt_get(ctx, "store");
    if (!store || !*store)
        store = getenv("MESATEE_STORE"); /* as serve's */
    mt_status st = mt_core_audit_verify_dir(data_dir, store, cps, (size_t)n, &entries, &err);
    if (st != MT_OK)
        return cli_fail("audit log of %s: %s", data_dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    uint64_t anchor = 0;
    char ahash[65];
    if ((st = mt_core_audit_anchor_dir(data_dir, store, &anchor, ahash, &err)) != MT_OK)
        return cli_fail("audit log of %s: %s", data_dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    if (ctx->json)
        printf("{\"intact\":true,\"entries\":%llu,\"covered_by_checkpoints\":%llu,"
               "\"anchor_seq\":%llu,\"anchor_hash\":\"%s\"}\n",
               (unsigned long long)entries, (unsigned long long)covered,
               (unsigned long long)anchor, ahash);
    else if (anchor)
        printf("audit log intact from the prune anchor (entry %llu, hash %s): entries %llu..%llu; "
               "%llu covered by %d held checkpoint(s)\n",
               (unsigned long long)anchor, ahash, (unsigned long long)anchor + 1,
               (unsigned long long)entries, (unsigned long long)covered, n);
    else
        printf("audit log intact: %llu entries; %llu covered by %d held checkpoint(s)%s\n",
               (unsigned long long)entries, (unsigned long long)covered, n,
               entries > covered ? " (the rest is authenticated only by the daemon's MACs: "
                                   "run `mesatee audit checkpoint`)"
                                 : "");
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

int cli_audit_verify_online(cli_ctx *ctx)
{
#ifdef MT_CLI_HAVE_CORE
    mt_audit_checkpoint cps[MAX_CHECKPOINTS];
    int n = 0;
    int rc = load_checkpoints(ctx, cps, &n);
    if (rc != CLI_OK)
        return rc;
    if (n == 0)
        return cli_usage_error(ctx, "give --data-dir DIR (offline) or --checkpoint FILE (the "
                                    "server's log against a checkpoint you hold)");
    uint64_t newest = 0;
    for (int i = 0; i < n; i++) {
        char *resp = NULL;
        if (mesatee_audit_checkpoint(ctx->client, (int64_t)cps[i].entries, &resp) != MESATEE_OK) {
            int http = mesatee_client_http_status(ctx->client);
            rc = cli_fail("audit log does not match held checkpoint of %llu entries: %s%s",
                          (unsigned long long)cps[i].entries,
                          mesatee_client_errmsg(ctx->client),
                          http == 409 ? " (truncated)" : "");
            mesatee_free(resp);
            return rc;
        }
        mt_audit_checkpoint now;
        rc = CLI_OK;
        mt_err err;
        mt_err_clear(&err);
        if (mt_core_audit_checkpoint_parse((const uint8_t *)resp, strlen(resp), &now, &err) !=
            MT_OK)
            rc = cli_fail("the server's checkpoint: %s", err.msg);
        else if (!mt_core_audit_checkpoint_signed_by(&now, cps[i].key_id) &&
                 !mt_core_audit_checkpoint_signed_by(&now, cps[i].cluster_key_id))
            rc = cli_fail("the server signs with key %s%s%s, the held checkpoint with %s%s%s",
                          now.key_id, now.cluster_key_id[0] ? " and cluster key " : "",
                          now.cluster_key_id, cps[i].key_id,
                          cps[i].cluster_key_id[0] ? " and cluster key " : "",
                          cps[i].cluster_key_id);
        else if (now.entries != cps[i].entries || strcmp(now.head, cps[i].head) != 0)
            rc = cli_fail("audit log rewritten: entry %llu differs from the held checkpoint",
                          (unsigned long long)cps[i].entries);
        mesatee_free(resp);
        if (rc != CLI_OK)
            return rc;
        if (cps[i].entries > newest)
            newest = cps[i].entries;
    }
    if (ctx->json)
        printf("{\"consistent\":true,\"checkpoints\":%d}\n", n);
    else
        printf("audit log consistent with %d held checkpoint(s) (up to entry %llu); the server "
               "verified every entry's MAC\n",
               n, (unsigned long long)newest);
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

int cli_cmd_audit_checkpoint(cli_ctx *ctx)
{
#ifdef MT_CLI_HAVE_CORE
    const char *e = cli_opt_get(ctx, "entries"), *out = cli_opt_get(ctx, "out");
    long long entries = -1;
    if (e) {
        char *end;
        errno = 0;
        entries = strtoll(e, &end, 10);
        if (errno || *end || end == e || entries < 0)
            return cli_usage_error(ctx, "--entries must be a number of entries");
    }
    char *resp = NULL;
    if (mesatee_audit_checkpoint(ctx->client, entries, &resp) != MESATEE_OK) {
        int rc = cli_fail("%s", mesatee_client_errmsg(ctx->client));
        mesatee_free(resp);
        return rc;
    }
    mt_audit_checkpoint cp;
    mt_err err;
    mt_err_clear(&err);
    int rc = CLI_OK;
    if (mt_core_audit_checkpoint_parse((const uint8_t *)resp, strlen(resp), &cp, &err) != MT_OK)
        rc = cli_fail("the server's checkpoint: %s", err.msg);
    else if (out && mt_file_write_atomic(out, resp, strlen(resp), 0644, &err) != MT_OK)
        rc = cli_fail("cannot write %s: %s", out, err.msg);
    else if (ctx->json)
        puts(resp);
    else
        printf("audit checkpoint: %llu entries, head %s, signed by %s key %s%s%s%s%s\n",
               (unsigned long long)cp.entries, cp.head, cp.level, cp.key_id,
               cp.cluster_key_id[0] ? " and cluster key " : "", cp.cluster_key_id,
               out ? "; saved to " : "", out ? out : "");
    mesatee_free(resp);
    return rc;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

/* `mesatee measure [serve options]`: the soft measurement that `mesatee serve`
 * with the same options would put into its evidence, from the installed files.
 * With --level tpm2: the value of the application PCR (MESATEE_TPM2_PCR,
 * default 23) after the daemon extends that measurement into it:
 * SHA-256(32 zero bytes || measurement). */
int cli_cmd_measure(cli_ctx *ctx)
{
#ifdef MT_CLI_HAVE_SERVER
    serve_config *c = NULL;
    int rc = cli_serve_config_load(ctx, &c);
    if (rc != CLI_OK)
        return rc;
    const char *level = serve_config_get(c, "level");
    bool tpm2 = level && !strcmp(level, "tpm2");
    if (level && strcmp(level, "soft") != 0 && !tpm2) {
        serve_config_free(c);
        return cli_usage_error(ctx, "measure supports --level soft and tpm2 (the hardware "
                                    "levels are measured by the hardware: see "
                                    "docs/attestation.md)");
    }
    unsigned pcr = 23;
    const char *pe = getenv("MESATEE_TPM2_PCR");
    if (tpm2 && pe && *pe) {
        char *end = NULL;
        unsigned long v = strtoul(pe, &end, 10);
        if (*end || v < 8 || v > 23) {
            serve_config_free(c);
            return cli_usage_error(ctx, "MESATEE_TPM2_PCR must be a PCR index from 8 to 23");
        }
        pcr = (unsigned)v;
    }
    char measured[2048];
    cli_measured_config(c, measured, sizeof measured);
    char *worker = cli_find_worker_at(serve_config_get(c, "worker"));
    serve_config_free(c);
    if (!worker)
        return CLI_FAIL;
    const char *files[] = {worker, NULL};
    uint8_t m[32];
    char hex[65];
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_tee_measure_soft((const uint8_t *)measured, strlen(measured), files, m, &err);
    free(worker);
    if (st != MT_OK)
        return cli_fail("measure: %s", err.msg);
    mt_hex_encode(m, 32, hex);
    if (tpm2) {
        uint8_t v[32];
        char vhex[65];
        mt_tpm2_expected_pcr(m, v);
        mt_hex_encode(v, 32, vhex);
        if (ctx->json)
            printf("{\"kind\":\"tpm2\",\"measurement\":\"%s\",\"pcr\":%u,\"pcr%u\":\"%s\"}\n",
                   hex, pcr, pcr, vhex);
        else
            printf("%s\n", vhex);
        return CLI_OK;
    }
    if (ctx->json)
        printf("{\"kind\":\"soft\",\"measurement\":\"%s\"}\n", hex);
    else
        printf("%s\n", hex);
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without the server (mt_tee)");
#endif
}
