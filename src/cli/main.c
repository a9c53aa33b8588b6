/* mesatee: command-line entry. Parses the command line, resolves the global
 * settings (flags > environment > config file > defaults), builds the client
 * and dispatches to the command's handler. See docs/cli.md. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "mt_secmem.h"
#include "mt_util.h"

#define CLI_DEFAULT_SERVER "https://127.0.0.1:7443"

/* ======================================================================== */
/* Command table                                                             */

static const cli_opt o_none[] = {{NULL, false}};
static const cli_opt o_serve[] = {
    {"data-dir", true},      {"listen", true},        {"level", true},
    {"workers", true},       {"admin-password-file", true}, {"file-url-root", true},
    {"task-mem-mb", true},   {"task-cpu-s", true},    {"task-wall-s", true},
    {"token-ttl-s", true},   {"worker", true},        {"max-connections", true},
    {"fetch-allow", true},   {"log-task-errors", false}, {"seal-legacy-store", false},
    {"tpm2-tcti", true},     {"cert-renew-s", true},
    {"remote-executors", false}, {"executor-listen", true}, {"executor-policy", true},
    {"executor-max-buffered-mib", true}, {NULL, false}};
static const cli_opt o_executor[] = {
    {"scheduler", true}, {"data-dir", true}, {"level", true}, {"worker", true},
    {"tpm2-tcti", true}, {"poll-ms", true}, {"max-tasks", true}, {"file-url-root", true},
    {"fetch-allow", true}, {"log-task-errors", false},
    {"print-identity", false}, {"max-job-mib", true}, {NULL, false}};
static const cli_opt o_user_add[] = {{"role", true}, {"password-file", true}, {NULL, false}};
static const cli_opt o_login[] = {{"user", true}, {"password-file", true}, {NULL, false}};
static const cli_opt o_encrypt[] = {
    {"in", true}, {"out", true}, {"key-out", true}, {"key", true}, {NULL, false}};
static const cli_opt o_decrypt[] = {{"in", true},   {"out", true},  {"key", true},
                                    {"task", true}, {"slot", true}, {"file", true},
                                    {"allow-unbound", false}, {NULL, false}};
static const cli_opt o_register[] = {{"key", true}, {"sha256", true}, {"name", true}, {NULL, false}};
static const cli_opt o_register_out[] = {
    {"key", true}, {"name", true}, {"allow-key-reuse", false}, {NULL, false}};
static const cli_opt o_fusion[] = {{"owners", true}, {"name", true}, {NULL, false}};
static const cli_opt o_download[] = {{"out", true}, {"allow-unbound", false}, {NULL, false}};
static const cli_opt o_fn_register[] = {
    {"spec", true},        {"name", true},     {"builtin", true}, {"description", true},
    {"input-slot", true},  {"output-slot", true}, {"public", false}, {"private", false},
    {"allow", true},       {"quota", true},    {"arg", true},     {"wasm", true},
    {NULL, false}};
static const cli_opt o_spec[] = {{"spec", true}, {NULL, false}};
static const cli_opt o_task_create[] = {
    {"function", true}, {"arg", true}, {"input", true}, {"output", true}, {NULL, false}};
static const cli_opt o_task_assign[] = {{"input", true}, {"output", true}, {NULL, false}};
static const cli_opt o_wait[] = {{"timeout", true}, {NULL, false}};
static const cli_opt o_result[] = {
    {"slot", true}, {"key", true}, {"out", true}, {"allow-unbound", false}, {NULL, false}};
static const cli_opt o_audit_list[] = {{"after", true}, {"limit", true}, {NULL, false}};
static const cli_opt o_key_out[] = {{"out", true}, {NULL, false}};
static const cli_opt o_audit_verify[] = {
    {"data-dir", true}, {"checkpoint", true}, {"key-id", true},
    {"export", true}, {NULL, false}};
static const cli_opt o_audit_export[] = {
    {"data-dir", true}, {"since", true}, {"out", true}, {NULL, false}};
static const cli_opt o_audit_cp[] = {{"entries", true}, {"out", true}, {NULL, false}};
static const cli_opt o_policy_sign[] = {{"key", true}, {NULL, false}};
static const cli_opt o_attest_ev[] = {
    {"kind", true}, {"at", true}, {"collateral", true}, {"expect-report-data", true},
    {"expect-nonce", true}, {"expect-user-data", true}, {NULL, false}};
static const cli_opt o_tpm_enroll[] = {
    {"tpm2-tcti", true}, {"ek-ca", true}, {"key", true}, {"out", true}, {"ek-cert", true},
    {"state", true}, {"answer", true}, {NULL, false}};
static const cli_opt o_tpm_challenge[] = {
    {"ek-ca", true}, {"state", true}, {"out", true}, {NULL, false}};
static const cli_opt o_tpm_host[] = {{"tpm2-tcti", true}, {"out", true}, {NULL, false}};
static const cli_opt o_backup[] = {
    {"data-dir", true}, {"out", true}, {"level", true}, {NULL, false}};
static const cli_opt o_restore[] = {
    {"in", true}, {"data-dir", true}, {"check", false}, {NULL, false}};

#define NC (CLI_NEEDS_CLIENT)
#define NT (CLI_NEEDS_CLIENT | CLI_NEEDS_TOKEN)

static const cli_cmd commands[] = {
    {"serve", NULL, cli_cmd_serve,
     "--data-dir DIR [--listen HOST:PORT] [--level none|soft|tpm2|sev-snp|tdx|sgx]\n"
     "        [--workers N] [--admin-password-file F] [--file-url-root DIR] [--task-mem-mb N]\n"
     "        [--task-cpu-s N] [--task-wall-s N] [--token-ttl-s N] [--worker PATH]\n"
     "        [--tpm2-tcti TCTI] [--cert-renew-s N] [--fetch-allow CIDR,..] [--log-task-errors]\n"
     "        [--seal-legacy-store]\n"
     "        [--remote-executors --executor-policy FILE [--executor-listen HOST:PORT]\n"
     "         [--executor-max-buffered-mib N]]",
     "run the server (daemon) in the foreground", o_serve, 0, 0, 0},
    {"executor", NULL, cli_cmd_executor,
     "--scheduler https://HOST:PORT --policy FILE --data-dir DIR [--level soft|tpm2]\n"
     "        [--worker PATH] [--poll-ms N] [--max-tasks N] [--file-url-root DIR]\n"
     "        [--tpm2-tcti TCTI] [--print-identity] [--fetch-allow CIDR,..] [--log-task-errors]\n"
     "        [--max-job-mib N]",
     "run a separate executor role: attested to the scheduler, runs its tasks", o_executor, 0,
     0, 0},
    {"login", NULL, cli_cmd_login, "--user U [--password-file F]  (or MESATEE_PASSWORD)",
     "log in and save the token to the token file", o_login, 0, 0, NC},
    {"logout", NULL, cli_cmd_logout, "", "revoke the saved token and delete the token file",
     o_none, 0, 0, NT},
    {"user", "add", cli_cmd_user_add, "NAME [--role user|admin] [--password-file F]",
     "create a user (admin)", o_user_add, 1, 1, NT},
    {"user", "list", cli_cmd_user_list, "", "list users (admin)", o_none, 0, 0, NT},
    {"key", "generate", cli_cmd_key_generate, "--out KEYFILE",
     "generate a fresh random key (e.g. for an output file)", o_key_out, 0, 0, 0},
    {"file", "encrypt", cli_cmd_file_encrypt,
     "--in PLAIN --out CIPHER (--key-out NEWKEYFILE | --key KEYFILE)",
     "encrypt a file locally under a new key (or an existing one)", o_encrypt, 0, 0, 0},
    {"file", "decrypt", cli_cmd_file_decrypt,
     "--in CIPHER --out PLAIN --key KEYFILE [--task T --slot S --file F [--allow-unbound]]",
     "decrypt a file locally (with --task/--slot/--file: only that task output)", o_decrypt, 0,
     0, 0},
    {"file", "upload", cli_cmd_file_upload, "CIPHERTEXT", "upload ciphertext; prints its url",
     o_none, 1, 1, NT},
    {"file", "register", cli_cmd_file_register, "URL --key KEYFILE [--sha256 HEX] [--name N]",
     "register an input file (file://, https://: --sha256 of the ciphertext; computed for a "
     "readable file:// path); prints its id",
     o_register, 1, 1, NT},
    {"file", "register-output", cli_cmd_file_register_output,
     "--key KEYFILE [--name N] [--allow-key-reuse]",
     "register an output file; prints its id", o_register_out, 0, 0, NT},
    {"file", "register-fusion", cli_cmd_file_register_fusion, "--owners U1,U2[,...] [--name N]",
     "register a fusion file (platform key); prints its id", o_fusion, 0, 0, NT},
    {"file", "list", cli_cmd_file_list, "", "list your files", o_none, 0, 0, NT},
    {"file", "show", cli_cmd_file_show, "FILE_ID", "show a file", o_none, 1, 1, NT},
    {"file", "download", cli_cmd_file_download, "FILE_ID --out CIPHER [--allow-unbound]",
     "download an output's ciphertext (refused unless bound to FILE_ID)", o_download, 1, 1, NT},
    {"file", "delete", cli_cmd_file_delete, "FILE_ID", "delete a file", o_none, 1, 1, NT},
    {"file", "as-input", cli_cmd_file_as_input, "FILE_ID",
     "turn a written output into a new input; prints its id", o_none, 1, 1, NT},
    {"function", "register", cli_cmd_function_register,
     "(--spec FILE.json | --name N (--builtin B | --wasm FILE.wasm) [--description D]\n"
     "        [--input-slot S]..."
     " [--output-slot S]... [--public|--private] [--allow USER]... [--quota N]\n"
     "        [--arg NAME=DEFAULT[:overridable]]...)",
     "register a function; prints its id", o_fn_register, 0, 0, NT},
    {"function", "list", cli_cmd_function_list, "", "list visible functions", o_none, 0, 0, NT},
    {"function", "show", cli_cmd_function_show, "FUNCTION_ID", "show a function", o_none, 1, 1,
     NT},
    {"function", "update", cli_cmd_function_update, "FUNCTION_ID --spec FILE.json",
     "update a function", o_spec, 1, 1, NT},
    {"function", "disable", cli_cmd_function_disable, "FUNCTION_ID", "disable a function",
     o_none, 1, 1, NT},
    {"function", "delete", cli_cmd_function_delete, "FUNCTION_ID", "delete a function", o_none,
     1, 1, NT},
    {"function", "stats", cli_cmd_function_stats, "FUNCTION_ID", "usage of a function",
     o_none, 1, 1, NT},
    {"task", "create", cli_cmd_task_create,
     "--function ID [--arg K=V]... [--input SLOT=U1,U2]... [--output SLOT=U1]...",
     "create a task; prints its id", o_task_create, 0, 0, NT},
    {"task", "assign", cli_cmd_task_assign, "TASK_ID [--input SLOT=FILE_ID]... "
     "[--output SLOT=FILE_ID]...", "assign your files to a task", o_task_assign, 1, 1, NT},
    {"task", "approve", cli_cmd_task_approve, "TASK_ID", "approve a task", o_none, 1, 1, NT},
    {"task", "invoke", cli_cmd_task_invoke, "TASK_ID", "start a task", o_none, 1, 1, NT},
    {"task", "cancel", cli_cmd_task_cancel, "TASK_ID", "cancel a task", o_none, 1, 1, NT},
    {"task", "show", cli_cmd_task_show, "TASK_ID", "show a task", o_none, 1, 1, NT},
    {"task", "list", cli_cmd_task_list, "", "list your tasks", o_none, 0, 0, NT},
    {"task", "wait", cli_cmd_task_wait, "TASK_ID [--timeout SECONDS]",
     "wait for a final status; exit 0 only if finished", o_wait, 1, 1, NT},
    {"task", "result", cli_cmd_task_result,
     "TASK_ID --slot S --key KEYFILE --out PLAIN [--allow-unbound]",
     "download and decrypt an output of a finished task (refused unless bound to it)", o_result,
     1, 1, NT},
    {"audit", "list", cli_cmd_audit_list, "[--after SEQ] [--limit N]",
     "audit entries you may see", o_audit_list, 0, 0, NT},
    {"audit", "checkpoint", cli_cmd_audit_checkpoint, "[--entries N] [--out FILE]",
     "get a signed audit checkpoint (entry count + head hash); --out keeps it", o_audit_cp, 0, 0,
     NT},
    {"audit", "export", cli_cmd_audit_export, "--data-dir DIR --since SEQ|TIME --out FILE",
     "export the audit entries from SEQ (or TIME, RFC 3339) on, with the chain anchor "
     "(offline, on the server's host)",
     o_audit_export, 0, 0, 0},
    {"audit", "verify", cli_cmd_audit_verify,
     "[--data-dir DIR] [--checkpoint FILE]... [--key-id HEX] [--export FILE]...",
     "check the audit log against held checkpoints: offline (--data-dir) or via the server",
     o_audit_verify, 0, 0, CLI_ONLINE_UNLESS_DATA_DIR},
    {"attest", "show", cli_cmd_attest_show, "[--server URL]",
     "print the server's attestation claims (TLS handshake only, no credentials sent)", o_none,
     0, 0, NC},
    {"attest", "verify", cli_cmd_attest_verify, "--policy FILE [--server URL]",
     "check the server against a policy (TLS handshake only)", o_none, 0, 0, NC},
    {"attest", "verify-evidence", cli_cmd_attest_verify_evidence,
     "--kind sgx|tdx|sev-snp|nitro|tpm2|soft|ratls-cert FILE [--at TIME|now]\n"
     "        [--collateral DIR | --policy FILE [--expect-report-data HEX]\n"
     "        [--expect-nonce HEX] [--expect-user-data HEX]]",
     "verify recorded evidence offline (with --policy: as a live client does)", o_attest_ev, 1,
     1, CLI_NEEDS_CONFIG},
    {"attest", "tpm-enroll", cli_cmd_attest_tpm_enroll,
     "--ek-ca CA.pem --key ENROLLER.pem --out RECORD.json [--tpm2-tcti TCTI]\n"
     "        [--ek-cert EK.der]  |  --state STATE --answer ANSWER.json --key ENROLLER.pem\n"
     "        --out RECORD.json [--ek-ca CA.pem]",
     "enrol a TPM's attestation key by credential activation; writes a signed record",
     o_tpm_enroll, 0, 0, 0},
    {"attest", "tpm-request", cli_cmd_attest_tpm_request, "--out REQUEST.json [--tpm2-tcti TCTI]",
     "TPM host: the AK and EK certificate to enrol (split enrolment, step 1)", o_tpm_host, 0, 0,
     0},
    {"attest", "tpm-challenge", cli_cmd_attest_tpm_challenge,
     "REQUEST.json --ek-ca CA.pem --state STATE --out CHALLENGE.json",
     "enroller: check the EK and make the activation challenge (step 2)", o_tpm_challenge, 1, 1,
     0},
    {"attest", "tpm-activate", cli_cmd_attest_tpm_activate,
     "CHALLENGE.json --out ANSWER.json [--tpm2-tcti TCTI]",
     "TPM host: answer the challenge with the TPM (step 3; then tpm-enroll --state)", o_tpm_host,
     1, 1, 0},
    {"measure", NULL, cli_cmd_measure,
     "[--level soft|tpm2] [the other serve options] [--worker PATH]",
     "print the expected measurement (soft) or application PCR value (tpm2), for a policy",
     o_serve, 0, 0, 0},
    {"policy", "sign", cli_cmd_policy_sign, "--key AUDITOR.pem POLICY",
     "sign a policy file as an auditor (writes or extends POLICY.sig)", o_policy_sign, 1, 1, 0},
    {"backup", NULL, cli_cmd_backup, "--data-dir DIR --out FILE [--level LEVEL]",
     "online snapshot of a data directory into one archive (run on the server's host)",
     o_backup, 0, 0, 0},
    {"restore", NULL, cli_cmd_restore, "--in FILE (--data-dir NEWDIR | --check)",
     "verify a backup archive, then restore it into a new or empty directory (--check: only "
     "verify)",
     o_restore, 0, 0, 0},
    {"config", "show", cli_cmd_config_show, "", "show the effective settings and their source",
     o_none, 0, 0, CLI_NEEDS_CONFIG},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char global_usage[] =
    "global options: --server URL  --ca FILE  --insecure  --token-file FILE\n"
    "                --config FILE  --output text|json  --policy FILE\n"
    "                --policy-signers FILE  --policy-threshold N\n";

static void print_cmd_usage(FILE *f, const cli_cmd *c)
{
    fprintf(f, "usage: mesatee %s%s%s%s%s\n", c->group, c->sub ? " " : "", c->sub ? c->sub : "",
            c->args_usage[0] ? " " : "", c->args_usage);
}

static void print_usage(FILE *f)
{
    fprintf(f, "usage: mesatee [global options] COMMAND [arguments]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char name[48];
        snprintf(name, sizeof name, "%s%s%s", commands[i].group, commands[i].sub ? " " : "",
                 commands[i].sub ? commands[i].sub : "");
        fprintf(f, "  %-26s %s\n", name, commands[i].summary);
    }
    fprintf(f, "\n%s\nRun 'mesatee COMMAND --help' for a command's options. See docs/cli.md.\n",
            global_usage);
}

/* ======================================================================== */
/* Helpers shared with the command modules                                   */

const char *cli_opt_get(const cli_ctx *ctx, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < ctx->n_opt; i++)
        if (strcmp(ctx->opt[i].name, name) == 0)
            v = ctx->opt[i].value;
    return v;
}

bool cli_opt_has(const cli_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->n_opt; i++)
        if (strcmp(ctx->opt[i].name, name) == 0)
            return true;
    return false;
}

int cli_opt_all(const cli_ctx *ctx, const char *name, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < ctx->n_opt && n < max; i++)
        if (strcmp(ctx->opt[i].name, name) == 0)
            out[n++] = ctx->opt[i].value;
    return n;
}

int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mesatee: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (ctx && ctx->cmd) {
        print_cmd_usage(stderr, ctx->cmd);
        fputs(global_usage, stderr);
    } else {
        print_usage(stderr);
    }
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mesatee: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

/* ======================================================================== */
/* Command line                                                              */

static const char *const global_with_arg[] = {"server", "ca", "token-file", "config", "output",
                                              "policy", "policy-signers", "policy-threshold",
                                              NULL};

/* Records a global option; returns false if name is not global. */
static bool set_global(cli_ctx *ctx, const char *name, const char *value)
{
    const char **slot = NULL;
    if (!strcmp(name, "server"))
        slot = &ctx->f_server;
    else if (!strcmp(name, "ca"))
        slot = &ctx->f_ca;
    else if (!strcmp(name, "token-file"))
        slot = &ctx->f_token_file;
    else if (!strcmp(name, "config"))
        slot = &ctx->f_config;
    else if (!strcmp(name, "output"))
        slot = &ctx->f_output;
    else if (!strcmp(name, "policy"))
        slot = &ctx->f_policy;
    else if (!strcmp(name, "policy-signers"))
        slot = &ctx->f_policy_signers;
    else if (!strcmp(name, "policy-threshold"))
        slot = &ctx->f_policy_threshold;
    if (!slot)
        return false;
    *slot = value;
    return true;
}

static bool is_global_with_arg(const char *name)
{
    for (int i = 0; global_with_arg[i]; i++)
        if (!strcmp(global_with_arg[i], name))
            return true;
    return false;
}

static const cli_opt *find_opt(const cli_cmd *c, const char *name)
{
    for (const cli_opt *o = c->opts; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

static bool group_exists(const char *g)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g))
            return true;
    return false;
}

static const cli_cmd *find_cmd(const char *g, const char *sub)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g) &&
            ((!commands[i].sub && !sub) || (commands[i].sub && sub && !strcmp(commands[i].sub, sub))))
            return &commands[i];
    return NULL;
}

static bool group_has_subs(const char *g)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g) && commands[i].sub)
            return true;
    return false;
}

static void print_group_usage(FILE *f, const char *g)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g))
            print_cmd_usage(f, &commands[i]);
    fputs(global_usage, f);
}

/* Parses argv into ctx. Returns CLI_OK, CLI_USAGE (message printed) or -1
 * for --help (usage printed to stdout, exit 0). */
static int parse_args(int argc, char **argv, cli_ctx *ctx)
{
    const char *group = NULL;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!only_pos && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            if (ctx->cmd) {
                print_cmd_usage(stdout, ctx->cmd);
                fputs(global_usage, stdout);
            } else if (group) {
                print_group_usage(stdout, group);
            } else {
                print_usage(stdout);
            }
            return -1;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            if (a[1] != '-')
                return cli_usage_error(ctx, "unknown option '%s' (options start with --)", a);
            char name[64];
            const char *eq = strchr(a + 2, '=');
            size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            if (nlen == 0 || nlen >= sizeof name)
                return cli_usage_error(ctx, "bad option '%s'", a);
            memcpy(name, a + 2, nlen);
            name[nlen] = '\0';
            const char *value = eq ? eq + 1 : NULL;
            if (!strcmp(name, "insecure")) {
                if (value)
                    return cli_usage_error(ctx, "--insecure takes no value");
                ctx->insecure = true;
                continue;
            }
            const cli_opt *o = NULL;
            /* A command's own option wins over a global one of the same name
             * (task create/assign --output SLOT=...); the global one is then
             * given before the command or through the environment. */
            bool global = is_global_with_arg(name) && !(ctx->cmd && find_opt(ctx->cmd, name));
            if (!global) {
                if (!ctx->cmd) {
                    if (group)
                        return cli_usage_error(ctx, "missing subcommand of '%s' before '%s'",
                                               group, a);
                    return cli_usage_error(ctx, "unknown global option '%s'", a);
                }
                if (!(o = find_opt(ctx->cmd, name)))
                    return cli_usage_error(ctx, "unknown option '--%s'", name);
            }
            if (global || o->has_arg) {
                if (!value) {
                    if (i + 1 >= argc)
                        return cli_usage_error(ctx, "option '--%s' needs a value", name);
                    value = argv[++i];
                }
            } else if (value) {
                return cli_usage_error(ctx, "option '--%s' takes no value", name);
            }
            if (global) {
                set_global(ctx, name, value);
                continue;
            }
            if (ctx->n_opt >= CLI_MAX_OPTS)
                return cli_usage_error(ctx, "too many options");
            ctx->opt[ctx->n_opt].name = o->name;
            ctx->opt[ctx->n_opt].value = value;
            ctx->n_opt++;
            continue;
        }
        /* a word */
        if (!ctx->cmd && !group) {
            if (!group_exists(a))
                return cli_usage_error(NULL, "unknown command '%s'", a);
            group = a;
            if (!group_has_subs(a))
                ctx->cmd = find_cmd(a, NULL);
            continue;
        }
        if (!ctx->cmd) {
            if (!(ctx->cmd = find_cmd(group, a))) {
                fprintf(stderr, "mesatee: unknown command '%s %s'\n", group, a);
                print_group_usage(stderr, group);
                return CLI_USAGE;
            }
            continue;
        }
        if (ctx->n_pos >= CLI_MAX_POS)
            return cli_usage_error(ctx, "too many arguments");
        ctx->pos[ctx->n_pos++] = a;
    }
    if (!ctx->cmd) {
        if (group) {
            fprintf(stderr, "mesatee: '%s' needs a subcommand\n", group);
            print_group_usage(stderr, group);
            return CLI_USAGE;
        }
        return cli_usage_error(NULL, "missing command");
    }
    if (ctx->n_pos < ctx->cmd->min_pos)
        return cli_usage_error(ctx, "missing argument");
    if (ctx->n_pos > ctx->cmd->max_pos)
        return cli_usage_error(ctx, "unexpected argument '%s'", ctx->pos[ctx->cmd->max_pos]);
    return CLI_OK;
}

/* ======================================================================== */
/* Settings: flags > environment > config file > defaults                    */

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $XDG_CONFIG_HOME/mesatee/<leaf> or ~/.config/mesatee/<leaf>; heap or NULL. */
static char *default_config_path(const char *leaf)
{
    const char *xdg = nonempty_env("XDG_CONFIG_HOME"), *home = nonempty_env("HOME");
    if (!xdg && !home)
        return NULL;
    size_t n = strlen(xdg ? xdg : home) + strlen(leaf) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, xdg ? "%s/mesatee/%s" : "%s/.config/mesatee/%s", xdg ? xdg : home, leaf);
    return p;
}

static void setting_from(cli_setting *s, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setting_from(cli_setting *s, const char *value, const char *fmt, ...)
{
    s->value = value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->source, sizeof s->source, fmt, ap);
    va_end(ap);
}

static char *keep(cli_ctx *ctx, char *s)
{
    if (s && ctx->n_owned < (int)(sizeof ctx->owned / sizeof ctx->owned[0]))
        ctx->owned[ctx->n_owned++] = s;
    else if (s) {
        free(s);
        s = NULL;
    }
    return s;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Reads the config file (cli_config.h is its one reader); fills file-level
 * settings (only where flag/env did not set them). Returns CLI_OK or
 * CLI_USAGE (message printed). */
static int read_config(cli_ctx *ctx, const char *path, bool must_exist)
{
    uint8_t *text = NULL;
    size_t len = 0;
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_file_read(path, CLI_CONFIG_MAX_BYTES, &text, &len, &err);
    if (st == MT_ENOTFOUND && !must_exist)
        return CLI_OK;
    if (st)
        return cli_usage_error(NULL, "cannot read config file %s (%s)", path, err.msg);
    ctx->config_found = true;
    cli_config cf;
    st = cli_config_parse((const char *)text, len, &cf, &err);
    free(text);
    if (st) {
        if (cf.error_line)
            cli_fail("%s:%d: %s", path, cf.error_line, err.msg);
        else
            cli_fail("%s: %s", path, err.msg);
        return CLI_USAGE;
    }
    cli_setting *targets[CLI_CONFIG_NKEYS] = {&ctx->server, &ctx->ca, &ctx->token_file,
                                              &ctx->output};
    int rc = CLI_OK;
    for (int k = 0; k < CLI_CONFIG_NKEYS; k++) {
        if (!cf.value[k] || targets[k]->value)
            continue;
        char *v = keep(ctx, cf.value[k]);
        cf.value[k] = NULL;
        if (!v) {
            rc = cli_fail("out of memory");
            break;
        }
        setting_from(targets[k], v, "config %s:%d", path, cf.line[k]);
    }
    cli_config_clear(&cf);
    return rc;
}

/* Resolves server, ca, token_file, output and config. */
static int resolve_settings(cli_ctx *ctx)
{
    const char *v;
    /* config path */
    bool must_exist = false;
    if (ctx->f_config) {
        setting_from(&ctx->config, ctx->f_config, "--config");
        must_exist = true;
    } else if ((v = nonempty_env("MESATEE_CONFIG"))) {
        setting_from(&ctx->config, v, "MESATEE_CONFIG");
    } else {
        char *p = keep(ctx, default_config_path("config"));
        setting_from(&ctx->config, p, "default");
    }
    struct {
        cli_setting *s;
        const char *flag, *flag_name, *env;
    } map[] = {
        {&ctx->server, ctx->f_server, "--server", "MESATEE_SERVER"},
        {&ctx->ca, ctx->f_ca, "--ca", "MESATEE_CA"},
        {&ctx->token_file, ctx->f_token_file, "--token-file", "MESATEE_TOKEN_FILE"},
        {&ctx->output, ctx->f_output, "--output", "MESATEE_OUTPUT"},
        {&ctx->policy, ctx->f_policy, "--policy", "MESATEE_POLICY"},
        {&ctx->policy_signers, ctx->f_policy_signers, "--policy-signers",
         "MESATEE_POLICY_SIGNERS"},
        {&ctx->policy_threshold, ctx->f_policy_threshold, "--policy-threshold",
         "MESATEE_POLICY_THRESHOLD"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].flag)
            setting_from(map[i].s, map[i].flag, "%s", map[i].flag_name);
        else if ((v = nonempty_env(map[i].env)))
            setting_from(map[i].s, v, "%s", map[i].env);
    }
    if (ctx->config.value) {
        int rc = read_config(ctx, ctx->config.value, must_exist);
        if (rc != CLI_OK)
            return rc;
    }
    if (!ctx->server.value)
        setting_from(&ctx->server, CLI_DEFAULT_SERVER, "default");
    if (!ctx->token_file.value) {
        char *p = keep(ctx, default_config_path("token"));
        setting_from(&ctx->token_file, p, "default");
    }
    if (!ctx->output.value)
        setting_from(&ctx->output, "text", "default");
    return CLI_OK;
}

/* Output mode only (for commands that need no config): flag > env. */
static int resolve_output(cli_ctx *ctx)
{
    const char *out = ctx->output.value;
    if (!out) {
        out = ctx->f_output ? ctx->f_output : nonempty_env("MESATEE_OUTPUT");
        if (!out)
            out = "text";
    }
    if (!strcmp(out, "json"))
        ctx->json = true;
    else if (strcmp(out, "text") != 0)
        return cli_usage_error(ctx, "output must be 'text' or 'json', not '%.32s'", out);
    return CLI_OK;
}

/* Builds the client: server URL, CA, insecure flag, saved token. */
static int make_client(cli_ctx *ctx)
{
    ctx->client = mesatee_client_new(ctx->server.value);
    if (!ctx->client)
        return cli_usage_error(NULL, "%s (server from %s)", mesatee_client_errmsg(NULL),
                               ctx->server.source);
    if (ctx->insecure) {
        fprintf(stderr, "mesatee: WARNING: --insecure: the server's certificate is NOT "
                        "verified; the token and keys can be intercepted\n");
        mesatee_client_set_insecure_skip_verify(ctx->client, 1);
    } else if (ctx->policy.value) { /* attested TLS: the policy replaces CA pinning */
        unsigned threshold = 0;
        int trc = cli_policy_threshold(ctx, &threshold);
        if (trc != CLI_OK)
            return trc;
        if (ctx->policy_signers.value &&
            mesatee_client_set_policy_signers(ctx->client, ctx->policy_signers.value,
                                              threshold) != 0)
            return cli_fail("%s", mesatee_client_errmsg(ctx->client));
        if (mesatee_client_set_policy_file(ctx->client, ctx->policy.value) != 0)
            return cli_fail("%s (policy from %s)", mesatee_client_errmsg(ctx->client),
                            ctx->policy.source);
    } else if (ctx->ca.value && mesatee_client_set_ca_file(ctx->client, ctx->ca.value) != 0) {
        return cli_fail("%s (CA from %s)", mesatee_client_errmsg(ctx->client), ctx->ca.source);
    }
    if ((ctx->flags & CLI_NEEDS_TOKEN) && ctx->token_file.value) {
        FILE *f = fopen(ctx->token_file.value, "re");
        if (f)
            setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the token */
        if (!f) {
            if (errno == ENOENT)
                return CLI_OK; /* not logged in; the server will say so */
            return cli_fail("cannot read token file %s: %s", ctx->token_file.value,
                            strerror(errno));
        }
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *tok = trim(buf);
        if (*tok && mesatee_client_set_token(ctx->client, tok) == 0)
            ctx->have_token = true;
        mt_wipe(buf, sizeof buf);
        if (!ctx->have_token)
            return cli_fail("token file %s is malformed; run 'mesatee login' again",
                            ctx->token_file.value);
    }
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    mt_secmem_install_json(); /* passwords, keys, tokens in jansson's heap: wiped on free */
    if (argc < 2) {
        print_usage(stderr);
        return CLI_USAGE;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("mesatee %s\n", mesatee_version());
        return CLI_OK;
    }
    int rc = parse_args(argc, argv, &ctx);
    if (rc == -1)
        return CLI_OK;
    if (rc != CLI_OK)
        return rc;
    ctx.flags = ctx.cmd->flags;
    if ((ctx.flags & CLI_ONLINE_UNLESS_DATA_DIR) && !cli_opt_get(&ctx, "data-dir") &&
        !cli_opt_has(&ctx, "export")) /* `audit verify --export` is offline */
        ctx.flags |= CLI_NEEDS_CLIENT | CLI_NEEDS_TOKEN;
    if (ctx.flags & (CLI_NEEDS_CLIENT | CLI_NEEDS_CONFIG | CLI_NEEDS_TOKEN))
        rc = resolve_settings(&ctx);
    if (rc == CLI_OK)
        rc = resolve_output(&ctx);
    if (rc == CLI_OK && (ctx.flags & (CLI_NEEDS_CLIENT | CLI_NEEDS_TOKEN)))
        rc = make_client(&ctx);
    if (rc == CLI_OK)
        rc = ctx.cmd->run(&ctx);
    mesatee_client_free(ctx.client);
    for (int i = 0; i < ctx.n_owned; i++)
        free(ctx.owned[i]);
    return rc;
}
