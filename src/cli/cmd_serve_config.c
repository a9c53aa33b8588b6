/* cmd_serve_config: the daemon's settings for `mesatee serve` and `mesatee
 * measure` (serve_config.h) from the configuration file, the environment and
 * the command line; `serve --print-config`; and the SIGHUP reload of what
 * can change while the daemon runs (log level, log format, access log).
 *
 * The file: serve's own `--config FILE` (after the command word), else the
 * global `--config FILE` given before it, else MESATEE_SERVE_CONFIG, else
 * CLI_SERVE_DEFAULT_CONFIG when that file exists. (MESATEE_CONFIG and the
 * client's settings file are not read by these commands.) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mt_log.h"
#include "mt_util.h"
#include "serve_config.h"
#ifdef MT_CLI_HAVE_SERVER
#include "mt_server.h"
#endif

#ifndef CLI_SERVE_DEFAULT_CONFIG
#define CLI_SERVE_DEFAULT_CONFIG "/etc/mesatee/mesatee.conf"
#endif

/* MESATEE_LOG and MESATEE_LOG_FORMAT as the daemon found them: it sets them
 * itself for its workers (cli_serve_apply_log), which must not turn into an
 * environment source on a reload. */
static bool g_env_saved;
static char g_env_log[32], g_env_fmt[32];

static const char *env_get(const char *name)
{
    if (!g_env_saved) {
        const char *l = getenv("MESATEE_LOG"), *f = getenv("MESATEE_LOG_FORMAT");
        snprintf(g_env_log, sizeof g_env_log, "%s", l ? l : "");
        snprintf(g_env_fmt, sizeof g_env_fmt, "%s", f ? f : "");
        g_env_saved = true;
    }
    if (!strcmp(name, "MESATEE_LOG"))
        return g_env_log;
    if (!strcmp(name, "MESATEE_LOG_FORMAT"))
        return g_env_fmt;
    return getenv(name);
}

/* The file to read and whether it must exist; NULL for none. */
static const char *config_path(const cli_ctx *ctx, bool *must_exist)
{
    const char *p = cli_opt_get(ctx, "config");
    if (!p)
        p = ctx->f_config;
    if (!p && getenv("MESATEE_SERVE_CONFIG") && *getenv("MESATEE_SERVE_CONFIG"))
        p = getenv("MESATEE_SERVE_CONFIG");
    *must_exist = p != NULL;
    return p ? p : CLI_SERVE_DEFAULT_CONFIG;
}

/* Builds the settings; on failure msg holds the reason (naming the file and
 * line, the variable or the flag) and the status is returned. */
static mt_status load(const cli_ctx *ctx, serve_config **out, char *msg, size_t cap)
{
    *out = NULL;
    bool exec = ctx->cmd && !strcmp(ctx->cmd->group, "executor");
    serve_config *c = serve_config_new(exec ? "executor" : "serve");
    if (!c) {
        snprintf(msg, cap, "out of memory");
        return MT_ENOMEM;
    }
    mt_err err;
    mt_err_clear(&err);
    bool must_exist;
    const char *path = config_path(ctx, &must_exist);
    uint8_t *text = NULL;
    size_t len = 0;
    mt_status st = mt_file_read(path, SC_FILE_MAX, &text, &len, &err);
    if (st == MT_ENOTFOUND && !must_exist) {
        st = MT_OK;
    } else if (st != MT_OK) {
        snprintf(msg, cap, "cannot read configuration file %s: %s", path, err.msg);
    } else {
        int line = 0;
        st = serve_config_parse_file(c, path, (const char *)text, len, &line, &err);
        if (st != MT_OK && line > 0)
            snprintf(msg, cap, "%s:%d: %s", path, line, err.msg);
        else if (st != MT_OK)
            snprintf(msg, cap, "%s: %s", path, err.msg);
    }
    free(text);
    if (st == MT_OK && (st = serve_config_apply_env(c, env_get, &err)) != MT_OK)
        snprintf(msg, cap, "%s", err.msg);
    for (int i = 0; st == MT_OK && i < ctx->n_opt; i++) {
        const char *name = ctx->opt[i].name;
        if (!serve_config_key_known(c, name))
            continue;
        char label[80];
        snprintf(label, sizeof label, "--%s", name);
        if ((st = serve_config_set(c, name, ctx->opt[i].value, SC_SRC_FLAG, label, label,
                                   &err)) != MT_OK)
            snprintf(msg, cap, "%s", err.msg);
    }
    if (st != MT_OK) {
        serve_config_free(c);
        return st;
    }
    *out = c;
    return MT_OK;
}

int cli_serve_config_load(cli_ctx *ctx, serve_config **out)
{
    char msg[600];
    mt_status st = load(ctx, out, msg, sizeof msg);
    if (st == MT_OK)
        return CLI_OK;
    if (st == MT_EINVAL && !strstr(msg, "configuration file") && strncmp(msg, "--", 2) == 0)
        return cli_usage_error(ctx, "%s", msg); /* a bad flag: with the usage */
    return cli_fail("%s", msg);
}

int cli_serve_print_config(cli_ctx *ctx, const serve_config *c)
{
    char *s = serve_config_render(c, ctx->json);
    if (!s)
        return cli_fail("out of memory");
    fputs(s, stdout);
    if (ctx->json)
        fputc('\n', stdout);
    free(s);
    return CLI_OK;
}

int cli_serve_config_load_or_print(cli_ctx *ctx, serve_config **out, bool *printed)
{
    *printed = false;
    *out = NULL;
    serve_config *c = NULL;
    int rc = cli_serve_config_load(ctx, &c);
    if (rc != CLI_OK)
        return rc;
    if (cli_opt_has(ctx, "print-config")) {
        rc = cli_serve_print_config(ctx, c);
        serve_config_free(c);
        *printed = true;
        return rc;
    }
    *out = c;
    return CLI_OK;
}

/* ---- mesatee executor ---- */

static serve_config *g_exec; /* the executor's settings, for its options */

int cli_executor_config(cli_ctx *ctx, bool *done)
{
    *done = false;
    /* a second --scheduler would silently replace the first list below (the
     * effective value is the last): the nodes go in one list */
    const char *sched_all[2];
    if (cli_opt_all(ctx, "scheduler", sched_all, 2) > 1)
        return cli_usage_error(ctx, "--scheduler given more than once: list the nodes in one "
                                    "--scheduler, separated by commas");
    serve_config *c = NULL;
    int rc = cli_serve_config_load_or_print(ctx, &c, done);
    if (rc != CLI_OK || *done)
        return rc;
    /* the effective values replace the options given, so the executor's code
     * (and its measured text) sees flags, environment and file alike */
    int n = 0;
    for (int i = 0; i < ctx->n_opt; i++)
        if (!serve_config_key_known(c, ctx->opt[i].name))
            ctx->opt[n++] = ctx->opt[i];
    for (size_t k = 0; serve_config_key_at(c, k); k++) {
        const char *name = serve_config_key_at(c, k), *v = serve_config_get(c, name);
        if (!v || !strcmp(v, "false"))
            continue;
        if (n >= CLI_MAX_OPTS) {
            serve_config_free(c);
            return cli_usage_error(ctx, "too many options");
        }
        ctx->opt[n].name = name;
        ctx->opt[n].value = !strcmp(v, "true") && !strcmp(name, "log-task-errors") ? NULL : v;
        n++;
    }
    ctx->n_opt = n;
    mt_err err;
    mt_err_clear(&err);
    const char *l = serve_config_get(c, "log-level"), *f = serve_config_get(c, "log-format");
    mt_log_level lv = MT_LOG_INFO;
    if (l && mt_log_level_parse(l, &lv))
        mt_log_set_level(lv);
    if (f)
        mt_log_set_format(!strcmp(f, "json") ? MT_LOG_JSON : MT_LOG_TEXT);
    g_exec = c;
    return CLI_OK;
}

void cli_executor_config_done(void)
{
    serve_config_free(g_exec);
    g_exec = NULL;
}

/* Applies the log settings of c (log-level, log-format, access-log). */
mt_status cli_serve_apply_log(const serve_config *c, mt_err *err)
{
    mt_log_level lv = MT_LOG_INFO;
    const char *l = serve_config_get(c, "log-level");
    if (l && !mt_log_level_parse(l, &lv))
        return mt_err_set(err, MT_EINVAL, "bad log-level");
    const char *f = serve_config_get(c, "log-format");
    mt_status st = mt_log_set_access_file(serve_config_get(c, "access-log"), err);
    if (st != MT_OK)
        return st;
    mt_log_set_level(lv);
    mt_log_set_format(f && !strcmp(f, "json") ? MT_LOG_JSON : MT_LOG_TEXT);
    /* processes started from now on (the workers) log the same way */
    static const char *const names[] = {"debug", "info", "warn", "error"};
    (void)setenv("MESATEE_LOG", names[lv & 3], 1);
    (void)setenv("MESATEE_LOG_FORMAT", f ? f : "text", 1);
    return MT_OK;
}

/* The limits a running server may change (level none): task-mem-mb,
 * task-cpu-s, task-wall-s, token-ttl-s, max-connections. */
static mt_status cli_serve_apply_limits(const serve_config *c, mt_err *err)
{
#ifdef MT_CLI_HAVE_SERVER
    mt_server_limits l = {
        .task_mem_bytes = serve_config_u64(c, "task-mem-mb", 0) * 1024 * 1024,
        .task_cpu_seconds = (uint32_t)serve_config_u64(c, "task-cpu-s", 0),
        .task_wall_ms = (uint32_t)(serve_config_u64(c, "task-wall-s", 0) * 1000),
        .token_ttl_seconds = (int64_t)serve_config_u64(c, "token-ttl-s", 0),
        .max_connections = (unsigned)serve_config_u64(c, "max-connections", 0),
    };
    return mt_server_set_limits(&l, err);
#else
    (void)c;
    return mt_err_set(err, MT_EINVAL, "built without the server");
#endif
}

/* ---- SIGHUP ---- */

static cli_ctx *g_reload_ctx;
static const serve_config *g_started; /* the settings the daemon started with (not ours) */
static serve_config *g_last;          /* those of the last reload (ours) */

void cli_serve_reload_init(cli_ctx *ctx, const serve_config *started)
{
    g_reload_ctx = ctx;
    g_started = started;
    g_last = NULL;
}

/* Runs in the event loop on SIGHUP: reads the settings again (file,
 * environment, the same flags); applies those that can change at runtime;
 * logs the others as needing a restart. A bad file changes nothing. */
void cli_serve_reload(void *arg)
{
    (void)arg;
    if (!g_reload_ctx || !g_started)
        return;
    const serve_config *running = g_last ? g_last : g_started;
    serve_config *fresh = NULL;
    char msg[600];
    if (load(g_reload_ctx, &fresh, msg, sizeof msg) != MT_OK) {
        mt_error("mesatee: SIGHUP: configuration not reloaded, the running one stays: %s", msg);
        return;
    }
    const char *changed[64];
    int n = serve_config_diff(running, fresh, changed, 64);
    bool logs = false, limits = false;
    for (int i = 0; i < n; i++) {
        int kind = serve_config_reload_kind(changed[i]);
        logs = logs || kind == SC_RELOAD_YES;
        limits = limits || kind == SC_RELOAD_LEVEL_NONE;
        if (kind != SC_RELOAD_NO)
            continue;
        const char *v = serve_config_get(fresh, changed[i]);
        mt_warn("mesatee: SIGHUP: %s changed (now %s) but cannot change while running: it "
                "takes effect at the next restart",
                changed[i], v ? v : "the default");
    }
    mt_err err;
    mt_err_clear(&err);
    if (limits && cli_serve_apply_limits(fresh, &err) != MT_OK) {
        for (int i = 0; i < n; i++)
            if (serve_config_reload_kind(changed[i]) == SC_RELOAD_LEVEL_NONE)
                mt_warn("mesatee: SIGHUP: %s changed but %s: it takes effect at the next "
                        "restart",
                        changed[i], err.msg);
        limits = false;
    }
    /* said under the old log settings, so the change is seen */
    for (int i = 0; i < n; i++) {
        int kind = serve_config_reload_kind(changed[i]);
        if (kind == SC_RELOAD_YES || (limits && kind == SC_RELOAD_LEVEL_NONE)) {
            const char *v = serve_config_get(fresh, changed[i]);
            mt_warn("mesatee: SIGHUP: %s is now %s", changed[i], v ? v : "the default");
        }
    }
    if (logs) {
        if (cli_serve_apply_log(fresh, &err) != MT_OK) {
            mt_error("mesatee: SIGHUP: %s; the running log settings stay", err.msg);
            serve_config_free(fresh);
            return;
        }
    } else if (serve_config_get(fresh, "access-log")) {
        /* nothing changed: reopen the access log (after rotation) */
        if (mt_log_set_access_file(serve_config_get(fresh, "access-log"), &err) != MT_OK)
            mt_error("mesatee: SIGHUP: %s", err.msg);
    }
    mt_info("mesatee: SIGHUP: configuration reloaded (%d setting(s) changed)", n);
    /* the next reload reports what changes after this one */
    serve_config_free(g_last);
    g_last = fresh;
}

void cli_serve_reload_done(void)
{
    serve_config_free(g_last);
    g_last = NULL;
    g_reload_ctx = NULL;
    g_started = NULL;
}
