/* cmd_server: `mesatee serve` (fills mt_server_config, runs the gateway in
 * the foreground) and the offline `mesatee audit verify --data-dir DIR`.
 * Built with MT_CLI_HAVE_SERVER / MT_CLI_HAVE_CORE when those libraries are
 * part of the build; otherwise the commands say they are not built in. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mt_util.h"
#ifdef MT_CLI_HAVE_SERVER
#include "mt_server.h"
#include "tee_tpm2.h"
#endif
#ifdef MT_CLI_HAVE_CORE
#include "mt_core.h"
#include "mt_executor.h"
#include "untrusted_fetch.h"
#endif

/* Parses an unsigned decimal option within [min, max]; false after a usage error. */
static bool opt_u64(cli_ctx *ctx, const char *name, uint64_t min, uint64_t max, uint64_t *out,
                    int *rc)
{
    const char *v = cli_opt_get(ctx, name);
    if (!v)
        return true;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-' || x < min || x > max) {
        *rc = cli_usage_error(ctx, "--%s must be a number from %llu to %llu", name,
                              (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = x;
    return true;
}

/* The mesatee-worker executable: --worker > MESATEE_WORKER > next to this
 * binary > <bindir>/../<libexecdir>/mesatee/ (installed) > the build tree's
 * worker. Heap string, or NULL (message printed). */
char *cli_find_worker(cli_ctx *ctx)
{
    const char *w = cli_opt_get(ctx, "worker");
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

/* The settings text that the soft level measures (docs/attestation.md):
 * "mesatee-config-v1\n" then "name=value\n" for each setting that shapes the
 * service, in this order, the value as given ("" when absent). Paths of the
 * deployment (data dir, listen address, password file, worker path) are not
 * in it; the worker's bytes are measured instead. */
void cli_measured_config(const cli_ctx *ctx, char *out, size_t cap)
{
    static const char *const names[] = {"level",       "workers",     "task-mem-mb",
                                        "task-cpu-s",  "task-wall-s", "token-ttl-s",
                                        "file-url-root", "max-connections", NULL};
    size_t n = (size_t)snprintf(out, cap, "mesatee-config-v1\n");
    for (int i = 0; names[i] && n < cap; i++) {
        const char *v = cli_opt_get(ctx, names[i]);
        n += (size_t)snprintf(out + n, cap - n, "%s=%.900s\n", names[i], v ? v : "");
    }
    /* Settings that loosen data protection are measured when used (absent,
     * the text is what it always was): the outbound allow-list and the
     * operator's log of task failure details. */
    const char *fa = cli_opt_get(ctx, "fetch-allow");
    if (fa && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "fetch-allow=%.900s\n", fa);
    if (cli_opt_has(ctx, "log-task-errors") && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "log-task-errors=1\n");
    /* trusting a store's unsealed rows once (upgrade from before the MACs):
     * measured, so attested clients see a server started that way */
    if (cli_opt_has(ctx, "seal-legacy-store") && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "seal-legacy-store=1\n");
}

static bool cli_level_known(const char *level)
{
    static const char *const levels[] = {"none", "soft", "tpm2", "sev-snp", "tdx", "sgx", NULL};
    for (int i = 0; levels[i]; i++)
        if (!strcmp(levels[i], level))
            return true;
    return false;
}

int cli_cmd_serve(cli_ctx *ctx)
{
    const char *data_dir = cli_opt_get(ctx, "data-dir");
    if (!data_dir || !*data_dir)
        return cli_usage_error(ctx, "missing --data-dir");
    const char *level = cli_opt_get(ctx, "level");
    if (level && !cli_level_known(level))
        return cli_usage_error(ctx, "--level must be none, soft, tpm2, sev-snp, tdx or sgx");
    const char *tcti = cli_opt_get(ctx, "tpm2-tcti");
    if (tcti && (!level || strcmp(level, "tpm2") != 0))
        return cli_usage_error(ctx, "--tpm2-tcti is only for --level tpm2");
    const char *listen = cli_opt_get(ctx, "listen");
    if (listen && (!strchr(listen, ':') || listen[0] == ':'))
        return cli_usage_error(ctx, "--listen must be HOST:PORT");
    int rc = CLI_OK;
    uint64_t workers = 0, mem_mb = 0, cpu_s = 0, wall_s = 0, ttl_s = 0, maxconn = 0;
    if (!opt_u64(ctx, "workers", 1, 1024, &workers, &rc) ||
        !opt_u64(ctx, "task-mem-mb", 16, 1024 * 1024, &mem_mb, &rc) ||
        !opt_u64(ctx, "task-cpu-s", 1, 86400 * 7, &cpu_s, &rc) ||
        !opt_u64(ctx, "task-wall-s", 1, 86400 * 7, &wall_s, &rc) ||
        !opt_u64(ctx, "token-ttl-s", 60, 86400 * 365, &ttl_s, &rc) ||
        !opt_u64(ctx, "max-connections", 1, 65536, &maxconn, &rc))
        return rc;
    uint64_t renew_s = 0;
    if (!opt_u64(ctx, "cert-renew-s", 0, 86400ULL * 365, &renew_s, &rc))
        return rc;
#ifdef MT_CLI_HAVE_SERVER
    /* flag > environment; read by the tpm2 attester (tee_tpm2.h) */
    if (tcti && setenv("MESATEE_TPM2_TCTI", tcti, 1) != 0)
        return cli_fail("cannot set MESATEE_TPM2_TCTI: %s", strerror(errno));
    {
        mt_err ferr = {0};
        if (untrusted_fetch_allow_check(cli_opt_get(ctx, "fetch-allow"), &ferr) != MT_OK)
            return cli_fail("serve: --fetch-allow: %s", ferr.msg);
    }
    if (cli_opt_has(ctx, "log-task-errors"))
        mt_executor_set_log_task_errors(true);
    char *password = NULL;
    const char *pwfile = cli_opt_get(ctx, "admin-password-file");
    if (pwfile) {
        uint8_t *buf = NULL;
        size_t len = 0;
        mt_err err;
        if (mt_file_read(pwfile, 4096, &buf, &len, &err) != MT_OK)
            return cli_fail("cannot read %s: %s", pwfile, err.msg);
        password = (char *)buf;
        password[strcspn(password, "\r\n")] = '\0';
        if (!*password) {
            free(password);
            return cli_fail("admin password file %s is empty", pwfile);
        }
    } else if (getenv("MESATEE_ADMIN_PASSWORD") && *getenv("MESATEE_ADMIN_PASSWORD")) {
        /* flag > environment; used only at the first start */
        if (!(password = strdup(getenv("MESATEE_ADMIN_PASSWORD"))))
            return cli_fail("out of memory");
        char *env = getenv("MESATEE_ADMIN_PASSWORD");
        mt_wipe(env, strlen(env)); /* also clears /proc/PID/environ */
        unsetenv("MESATEE_ADMIN_PASSWORD");
    }
    char *worker = cli_find_worker(ctx);
    if (!worker) {
        if (password) {
            mt_wipe(password, strlen(password));
            free(password);
        }
        return CLI_FAIL;
    }
    mt_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = listen;
    cfg.tee_level = level ? level : "none";
    char measured[2048];
    cli_measured_config(ctx, measured, sizeof measured);
    cfg.measured_config = measured;
    cfg.max_connections = (unsigned)maxconn;
    /* absent: the default (1 hour); 0: never */
    cfg.cert_renew_s = !cli_opt_get(ctx, "cert-renew-s") ? 0
                       : renew_s == 0                    ? -1
                                                         : (long long)renew_s;
    cfg.core.data_dir = data_dir;
    cfg.core.worker_path = worker;
    cfg.core.file_url_root = cli_opt_get(ctx, "file-url-root");
    cfg.core.fetch_allow = cli_opt_get(ctx, "fetch-allow");
    cfg.core.seal_legacy_store = cli_opt_has(ctx, "seal-legacy-store");
    cfg.core.workers = (unsigned)workers;
    cfg.core.token_ttl_seconds = (int64_t)ttl_s;
    cfg.core.task_mem_bytes = mem_mb * 1024 * 1024;
    cfg.core.task_cpu_seconds = (uint32_t)cpu_s;
    cfg.core.task_wall_ms = (uint32_t)(wall_s * 1000);
    cfg.core.admin_password = password;
    cfg.remote_executors = cli_opt_has(ctx, "remote-executors");
    cfg.executor_listen = cli_opt_get(ctx, "executor-listen");
    cfg.executor_policy = cli_opt_get(ctx, "executor-policy");
    const char *mbuf = cli_opt_get(ctx, "executor-max-buffered-mib");
    unsigned long mbuf_mib = 0;
    char *mbuf_end = NULL;
    if (mbuf && ((mbuf_mib = strtoul(mbuf, &mbuf_end, 10)) < 1 || mbuf_mib > 65536 ||
                 *mbuf_end || mbuf[0] == '-')) {
        free(worker);
        if (password) {
            mt_wipe(password, strlen(password));
            free(password);
        }
        return cli_usage_error(ctx, "--executor-max-buffered-mib must be 1..65536");
    }
    cfg.executor_max_buffered = (size_t)mbuf_mib * 1024 * 1024;
    if (!cfg.remote_executors && (cfg.executor_listen || cfg.executor_policy || mbuf)) {
        free(worker);
        if (password) {
            mt_wipe(password, strlen(password));
            free(password);
        }
        return cli_usage_error(ctx, "--executor-listen, --executor-policy and "
                                    "--executor-max-buffered-mib need --remote-executors");
    }
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_server_run(&cfg, &err);
    if (password) {
        mt_wipe(password, strlen(password));
        free(password);
    }
    free(worker);
    if (st != MT_OK)
        return cli_fail("serve: %s", err.msg[0] ? err.msg : mt_status_name(st));
    return CLI_OK;
#else
    (void)cli_find_worker;
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
 * given, else the key of the first). */
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
        const char *want = pin ? pin : cps[0].key_id;
        if (strcmp(cps[i].key_id, want) != 0)
            return cli_fail("checkpoint %s is signed by key %s, not %s", files[i], cps[i].key_id,
                            want);
    }
    if (!pin && *n > 0)
        fprintf(stderr,
                "mesatee: warning: the checkpoints are checked against their own signing key "
                "%s; a forged set would agree with itself. Pass --key-id with the key you "
                "trust (the one you saw when you saved them, or the attested server's)\n",
                cps[0].key_id);
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
    mt_status st = mt_core_audit_verify_dir(data_dir, cps, (size_t)n, &entries, &err);
    if (st != MT_OK)
        return cli_fail("audit log of %s: %s", data_dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    if (ctx->json)
        printf("{\"intact\":true,\"entries\":%llu,\"covered_by_checkpoints\":%llu}\n",
               (unsigned long long)entries, (unsigned long long)covered);
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
        else if (strcmp(now.key_id, cps[i].key_id) != 0)
            rc = cli_fail("the server signs with key %s, the held checkpoint with %s",
                          now.key_id, cps[i].key_id);
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
        printf("audit checkpoint: %llu entries, head %s, signed by %s key %s%s%s\n",
               (unsigned long long)cp.entries, cp.head, cp.level, cp.key_id,
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
    const char *level = cli_opt_get(ctx, "level");
    bool tpm2 = level && !strcmp(level, "tpm2");
    if (level && strcmp(level, "soft") != 0 && !tpm2)
        return cli_usage_error(ctx, "measure supports --level soft and tpm2 (the hardware "
                                    "levels are measured by the hardware: see "
                                    "docs/attestation.md)");
    unsigned pcr = 23;
    const char *pe = getenv("MESATEE_TPM2_PCR");
    if (tpm2 && pe && *pe) {
        char *end = NULL;
        unsigned long v = strtoul(pe, &end, 10);
        if (*end || v < 8 || v > 23)
            return cli_usage_error(ctx, "MESATEE_TPM2_PCR must be a PCR index from 8 to 23");
        pcr = (unsigned)v;
    }
    char measured[2048];
    cli_measured_config(ctx, measured, sizeof measured);
    char *worker = cli_find_worker(ctx);
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
