/* cli: internals of the `mesatee` command (daemon + client CLI).
 *
 * main.c parses the command line into a cli_ctx (command, positional
 * arguments, options), resolves the global settings (flags > environment >
 * config file > defaults) and runs the command's handler. Handlers live in
 * cmd_client.c (REST commands through libmesatee, local file encryption) and
 * cmd_server.c (`serve`, offline `audit verify`).
 *
 * Exit codes: CLI_OK 0, CLI_FAIL 1 (operation or server error, message on
 * stderr as "mesatee: ..."), CLI_USAGE 2 (bad usage, with the command's usage).
 * `task wait` adds CLI_TASK_FAILED 3, CLI_TASK_CANCELED 4, CLI_WAIT_TIMEOUT 5
 * and CLI_SERVER_GONE 6 (docs/cli.md "Exit codes").
 * Ownership: the ctx owns the client handle and config strings; main frees it.
 * Thread-safety: single-threaded. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "mesatee.h"
#include "mt_err.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };
/* `task wait` outcomes beyond 0 (finished), 1 (another error), 2 (usage). */
enum {
    CLI_TASK_FAILED = 3,   /* the task ended 'failed' */
    CLI_TASK_CANCELED = 4, /* the task ended 'canceled' */
    CLI_WAIT_TIMEOUT = 5,  /* --timeout passed, the task is not final yet */
    CLI_SERVER_GONE = 6,   /* the server cannot be reached, or went away and did not
                              come back in time (connection, TLS, 502-504) */
};

#define CLI_MAX_POS 16
#define CLI_MAX_OPTS 64

/* One option of a command (or a global option). The parser, `--help`, the
 * usage lines, the man page and the shell completion are all generated from
 * these tables (cli_help.c), so they cannot drift apart. Fields after has_arg
 * are optional in the initialiser ({"name", true} still compiles), but
 * test_cli_help fails for an option without desc or def. */
typedef struct cli_opt {
    const char *name;    /* without "--" */
    bool has_arg;
    char short_name;     /* 'o' for -o, 0: no short form; one long name per letter */
    const char *metavar; /* placeholder of the value, e.g. "FILE"; NULL: "VALUE" */
    const char *desc;    /* one line for --help, man page */
    const char *def;     /* default as shown: a value, "required", "none", "off" */
    bool repeatable;     /* may be given more than once (cli_opt_all) */
} cli_opt;

typedef struct cli_ctx cli_ctx;

enum {
    CLI_NEEDS_CLIENT = 1u << 0, /* resolve config, build a client */
    CLI_NEEDS_TOKEN = 1u << 1,  /* load the token file into the client */
    CLI_NEEDS_CONFIG = 1u << 2, /* resolve config only */
    CLI_ONLINE_UNLESS_DATA_DIR = 1u << 3, /* client + token unless --data-dir is given */
    CLI_HIDDEN = 1u << 4,       /* not listed in --help, man page or completion */
};

typedef struct cli_cmd {
    const char *group;
    const char *sub;        /* NULL for one-word commands (serve, login, logout) */
    int (*run)(cli_ctx *ctx);
    const char *args_usage; /* positional arguments after "mesatee GROUP [SUB]"
                             * (options are added from opts) */
    const char *summary;
    const cli_opt *opts;    /* terminated by {NULL} */
    int min_pos, max_pos;
    unsigned flags;
} cli_cmd;

/* A resolved global setting and where it came from (for `config show`). */
typedef struct cli_setting {
    const char *value; /* NULL if unset */
    char source[320];
} cli_setting;

struct cli_ctx {
    const cli_cmd *cmd;
    const char *pos[CLI_MAX_POS];
    int n_pos;
    struct {
        const char *name;
        const char *value; /* NULL for flags */
    } opt[CLI_MAX_OPTS];
    int n_opt;
    /* global flags as given */
    const char *f_server, *f_ca, *f_token_file, *f_config, *f_output, *f_policy;
    const char *f_policy_signers, *f_policy_threshold;
    const char *f_tls_server_name;
    bool insecure;
    /* resolved */
    cli_setting server, ca, token_file, output, config, policy;
    cli_setting policy_signers, policy_threshold; /* auditor keys (PEM), how many must sign */
    cli_setting tls_server_name; /* name verified instead of the URL's host */
    bool config_found;
    bool json;
    bool have_token;
    unsigned flags; /* the command's flags, CLI_ONLINE_UNLESS_DATA_DIR resolved */
    mesatee_client *client;
    char *owned[8]; /* strings from the config file */
    int n_owned;
};

/* ---- main.c ---- */
/* Last value of option name (NULL if absent or a flag). */
const char *cli_opt_get(const cli_ctx *ctx, const char *name);
/* True if the option was given at least once. */
bool cli_opt_has(const cli_ctx *ctx, const char *name);
/* Values of a repeatable option, in order, into out (max entries); count. */
int cli_opt_all(const cli_ctx *ctx, const char *name, const char **out, int max);
/* Prints "mesatee: <msg>" and the command's usage to stderr; returns CLI_USAGE. */
int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "mesatee: <msg>" to stderr; returns CLI_FAIL. Both print one JSON
 * object {"error":{...}} instead when --output json (docs/cli.md). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* --output json results: prints v (consumed) compactly on one line of stdout;
 * CLI_OK, or CLI_FAIL (message printed) if v is NULL (e.g. a name that is
 * not UTF-8) or stdout fails. */
int cli_json_print(json_t *v);
/* Reads --signatures FILE (at most 64 KiB of text) into b["signatures"];
 * CLI_OK, or CLI_FAIL with "--signatures: ..." printed (cmd_keystore.c). */
int cli_add_signatures(json_t *b, const char *sigfile);

/* ---- cmd_client.c ---- */
int cli_cmd_login(cli_ctx *ctx);
int cli_cmd_logout(cli_ctx *ctx);
int cli_cmd_user_add(cli_ctx *ctx);
int cli_cmd_user_list(cli_ctx *ctx);
int cli_cmd_whoami(cli_ctx *ctx);
int cli_cmd_user_show(cli_ctx *ctx);
int cli_cmd_user_passwd(cli_ctx *ctx);
int cli_cmd_user_reset_password(cli_ctx *ctx);
int cli_cmd_user_disable(cli_ctx *ctx);
int cli_cmd_user_enable(cli_ctx *ctx);
int cli_cmd_user_delete(cli_ctx *ctx);
int cli_cmd_function_builtins(cli_ctx *ctx);
int cli_cmd_key_generate(cli_ctx *ctx);
/* cmd_key.c: the KeyStore transit API (docs/keystore.md) */
int cli_cmd_key_create(cli_ctx *ctx);
int cli_cmd_key_read(cli_ctx *ctx);
int cli_cmd_key_list(cli_ctx *ctx);
int cli_cmd_key_rotate(cli_ctx *ctx);
int cli_cmd_key_config(cli_ctx *ctx);
int cli_cmd_key_delete(cli_ctx *ctx);
int cli_cmd_key_import(cli_ctx *ctx);
int cli_cmd_key_grant(cli_ctx *ctx);
int cli_cmd_key_revoke(cli_ctx *ctx);
int cli_cmd_key_export(cli_ctx *ctx); /* cmd_key_vault.c */
int cli_cmd_key_backup(cli_ctx *ctx);
int cli_cmd_key_restore(cli_ctx *ctx);
int cli_cmd_key_trim(cli_ctx *ctx);
int cli_cmd_key_encrypt(cli_ctx *ctx);
int cli_cmd_key_decrypt(cli_ctx *ctx);
int cli_cmd_key_rewrap(cli_ctx *ctx);
int cli_cmd_key_datakey(cli_ctx *ctx);
int cli_cmd_key_sign(cli_ctx *ctx);
int cli_cmd_key_verify(cli_ctx *ctx);
int cli_cmd_key_hmac(cli_ctx *ctx);
int cli_cmd_key_random(cli_ctx *ctx);
int cli_cmd_key_hash(cli_ctx *ctx);
int cli_cmd_file_encrypt(cli_ctx *ctx);
int cli_cmd_file_decrypt(cli_ctx *ctx);
int cli_cmd_file_upload(cli_ctx *ctx);
int cli_cmd_file_register(cli_ctx *ctx);
int cli_cmd_file_register_output(cli_ctx *ctx);
int cli_cmd_file_register_fusion(cli_ctx *ctx);
int cli_cmd_file_list(cli_ctx *ctx);
int cli_cmd_file_show(cli_ctx *ctx);
int cli_cmd_file_download(cli_ctx *ctx);
int cli_cmd_file_delete(cli_ctx *ctx);
int cli_cmd_file_as_input(cli_ctx *ctx);
int cli_cmd_function_register(cli_ctx *ctx);
int cli_cmd_function_list(cli_ctx *ctx);
int cli_cmd_function_show(cli_ctx *ctx);
int cli_cmd_function_update(cli_ctx *ctx);
int cli_cmd_function_disable(cli_ctx *ctx);
int cli_cmd_function_delete(cli_ctx *ctx);
int cli_cmd_function_stats(cli_ctx *ctx);
int cli_cmd_task_create(cli_ctx *ctx);
int cli_cmd_task_assign(cli_ctx *ctx);
int cli_cmd_task_approve(cli_ctx *ctx);
int cli_cmd_task_invoke(cli_ctx *ctx);
int cli_cmd_task_cancel(cli_ctx *ctx);
int cli_cmd_task_show(cli_ctx *ctx);
int cli_cmd_task_list(cli_ctx *ctx);
int cli_cmd_task_wait(cli_ctx *ctx);
int cli_cmd_task_result(cli_ctx *ctx);
int cli_cmd_audit_list(cli_ctx *ctx);
int cli_cmd_audit_checkpoint(cli_ctx *ctx);
/* `audit verify --checkpoint FILE...` against the running daemon. */
int cli_audit_verify_online(cli_ctx *ctx);
int cli_cmd_config_show(cli_ctx *ctx);

/* ---- cmd_server.c ---- */
int cli_cmd_serve(cli_ctx *ctx);
int cli_cmd_policy_sign(cli_ctx *ctx);
/* --policy-threshold (or MESATEE_POLICY_THRESHOLD) as a number 0..32 (0 =
 * every listed auditor); usage error otherwise. */
int cli_policy_threshold(cli_ctx *ctx, unsigned *out);
int cli_cmd_audit_verify(cli_ctx *ctx);
int cli_cmd_measure(cli_ctx *ctx);
/* The mesatee-worker executable: --worker > MESATEE_WORKER > next to this
 * binary > the build tree. Heap string, or NULL (message printed). */
char *cli_find_worker(cli_ctx *ctx);
/* The same with the --worker value given (NULL: not given). */
char *cli_find_worker_at(const char *worker);

/* ---- cmd_executor.c ---- */
/* `mesatee executor`: the separate executor role (docs/design.md). */
int cli_cmd_executor(cli_ctx *ctx);
/* ---- cmd_serve_config.c (serve_config.h: the daemon's settings) ---- */
typedef struct serve_config serve_config;
/* The settings text measured at the soft level, from the parsed settings. */
void cli_measured_config(const serve_config *c, char *out, size_t cap);
/* serve/measure: the effective settings from the configuration file (serve's
 * --config, the global --config, MESATEE_SERVE_CONFIG, else
 * /etc/mesatee/mesatee.conf when it exists), MESATEE_<KEY> and the flags.
 * Errors are printed (file:line, variable or flag); CLI_OK, CLI_USAGE or CLI_FAIL. */
int cli_serve_config_load(cli_ctx *ctx, serve_config **out);
/* `mesatee executor`: its settings from the file, environment and flags
 * become its options (ctx->opt, values owned until _done); --print-config
 * prints them and sets *done. */
int cli_executor_config(cli_ctx *ctx, bool *done);
void cli_executor_config_done(void);
/* --print-config (text, or JSON with --output json). */
int cli_serve_print_config(cli_ctx *ctx, const serve_config *c);
/* serve / executor: cli_serve_config_load, and with --print-config the settings
 * printed and freed instead (*out NULL, *printed true, the printing's result). */
int cli_serve_config_load_or_print(cli_ctx *ctx, serve_config **out, bool *printed);
/* Runs the daemon with settings c (cmd_server.c). */
int cli_serve_run(cli_ctx *ctx, serve_config *c);
/* log-level, log-format, access-log of c into mt_log. */
mt_status cli_serve_apply_log(const serve_config *c, mt_err *err);
/* SIGHUP: set up with the ctx and the settings the daemon started with
 * (borrowed until _done); cli_serve_reload is the gateway's reload hook. */
void cli_serve_reload_init(cli_ctx *ctx, const serve_config *started);
void cli_serve_reload(void *arg);
void cli_serve_reload_done(void);

/* ---- cmd_admin.c ---- */
int cli_cmd_backup(cli_ctx *ctx);
int cli_cmd_restore(cli_ctx *ctx);
int cli_cmd_audit_export(cli_ctx *ctx);
/* `audit verify --export FILE...` (offline; with --data-dir and
 * --checkpoint as in `audit verify`). */
int cli_audit_verify_exports(cli_ctx *ctx);
int cli_cmd_audit_prune(cli_ctx *ctx);
/* issue 10: the platform KeyStore (cmd_keystore.c) */
int cli_cmd_admin_release(cli_ctx *ctx);
int cli_cmd_admin_keystore(cli_ctx *ctx);
int cli_keystore_escrow(cli_ctx *ctx, bool draft); /* cmd_escrow.c: admin keystore escrow [draft] */
/* cmd_server.c: the --checkpoint files (at most 64), signatures checked and
 * held to --key-id. */
struct mt_audit_checkpoint;
int cli_load_checkpoints(cli_ctx *ctx, struct mt_audit_checkpoint *cps, int *n);

/* ---- cmd_attest.c ---- */
int cli_cmd_attest_show(cli_ctx *ctx);
int cli_cmd_attest_verify(cli_ctx *ctx);
int cli_cmd_attest_verify_evidence(cli_ctx *ctx);
int cli_cmd_attest_tpm_enroll(cli_ctx *ctx);
int cli_cmd_attest_tpm_challenge(cli_ctx *ctx);
int cli_cmd_attest_tpm_request(cli_ctx *ctx);
int cli_cmd_attest_tpm_activate(cli_ctx *ctx);

#endif
