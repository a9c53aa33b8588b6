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
 * Ownership: the ctx owns the client handle and config strings; main frees it.
 * Thread-safety: single-threaded. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "mesatee.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_MAX_POS 16
#define CLI_MAX_OPTS 64

typedef struct cli_opt {
    const char *name; /* without "--" */
    bool has_arg;
} cli_opt;

typedef struct cli_ctx cli_ctx;

enum {
    CLI_NEEDS_CLIENT = 1u << 0, /* resolve config, build a client */
    CLI_NEEDS_TOKEN = 1u << 1,  /* load the token file into the client */
    CLI_NEEDS_CONFIG = 1u << 2, /* resolve config only */
    CLI_ONLINE_UNLESS_DATA_DIR = 1u << 3, /* client + token unless --data-dir is given */
};

typedef struct cli_cmd {
    const char *group;
    const char *sub;        /* NULL for one-word commands (serve, login, logout) */
    int (*run)(cli_ctx *ctx);
    const char *args_usage; /* what follows "mesatee GROUP [SUB]" */
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
    bool insecure;
    /* resolved */
    cli_setting server, ca, token_file, output, config, policy;
    cli_setting policy_signers, policy_threshold; /* auditor keys (PEM), how many must sign */
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
/* Prints "mesatee: <msg>" to stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- cmd_client.c ---- */
int cli_cmd_login(cli_ctx *ctx);
int cli_cmd_logout(cli_ctx *ctx);
int cli_cmd_user_add(cli_ctx *ctx);
int cli_cmd_user_list(cli_ctx *ctx);
int cli_cmd_key_generate(cli_ctx *ctx);
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

/* ---- cmd_executor.c ---- */
/* `mesatee executor`: the separate executor role (docs/design.md). */
int cli_cmd_executor(cli_ctx *ctx);
/* The settings text measured at the soft level (serve and measure options). */
void cli_measured_config(const cli_ctx *ctx, char *out, size_t cap);

/* ---- cmd_admin.c ---- */
int cli_cmd_backup(cli_ctx *ctx);
int cli_cmd_restore(cli_ctx *ctx);
int cli_cmd_audit_export(cli_ctx *ctx);
/* `audit verify --export FILE...` (offline; with --data-dir and
 * --checkpoint as in `audit verify`). */
int cli_audit_verify_exports(cli_ctx *ctx);
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
