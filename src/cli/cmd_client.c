/* cmd_client: the CLI's client commands (REST calls through libmesatee) and
 * the local file encryption commands. Text output is one concise line per
 * result or list entry; --output json prints the server's JSON unchanged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_progress.h"
#include "mt_secmem.h"
#include "mt_util.h"

#define MAX_MULTI 64

/* ======================================================================== */
/* Helpers                                                                   */

/* Prints the client's last error; adds a hint when not logged in. */
static int client_fail(cli_ctx *ctx)
{
    const char *msg = mesatee_client_errmsg(ctx->client);
    if (mesatee_client_http_status(ctx->client) == 401 && !ctx->have_token)
        return cli_fail("%s (not logged in: run 'mesatee login --user NAME'; token file %s)",
                        msg, ctx->token_file.value ? ctx->token_file.value : "-");
    return cli_fail("%s", msg);
}

/* Prints a JSON scalar (strings raw) or a compact dump. */
static void print_value(FILE *f, json_t *v)
{
    if (json_is_string(v)) {
        fputs(json_string_value(v), f);
    } else if (!v || json_is_null(v)) {
        fputs("-", f);
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fputs(s ? s : "?", f);
        free(s);
    }
}

/* "key: value" lines for each member of an object. */
static void print_object(json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        printf("%s: ", k);
        print_value(stdout, v);
        putchar('\n');
    }
}

/* One line per element of array field `field`, with the given columns
 * (NULL-terminated; NULL columns = every member as k=v). */
static void print_list(json_t *root, const char *field, const char *const *cols)
{
    json_t *arr = json_object_get(root, field), *e;
    size_t i;
    if (!json_is_array(arr)) {
        print_object(root);
        return;
    }
    json_array_foreach(arr, i, e)
    {
        if (cols) {
            for (int c = 0; cols[c]; c++) {
                if (c)
                    putchar(' ');
                print_value(stdout, json_object_get(e, cols[c]));
            }
        } else {
            const char *k;
            json_t *v;
            bool first = true;
            json_object_foreach(e, k, v)
            {
                printf("%s%s=", first ? "" : " ", k);
                print_value(stdout, v);
                first = false;
            }
        }
        putchar('\n');
    }
    if (json_array_size(arr) == 0)
        printf("(no %s)\n", field);
}

typedef void (*text_printer)(json_t *root, const void *arg);

/* Emits a successful answer: JSON as-is, or parsed and printed as text. */
static int emit(cli_ctx *ctx, const char *resp, text_printer printer, const void *arg)
{
    if (ctx->json) {
        size_t n = resp ? strlen(resp) : 0;
        fputs(resp ? resp : "", stdout);
        if (!n || resp[n - 1] != '\n')
            putchar('\n');
        return CLI_OK;
    }
    json_error_t jerr;
    json_t *root = resp && *resp ? json_loads(resp, JSON_DECODE_ANY, &jerr) : NULL;
    if (!root)
        return cli_fail("server answer is not JSON");
    printer(root, arg);
    json_decref(root);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail("cannot write output: %s", strerror(errno));
}

static void pr_object(json_t *root, const void *arg)
{
    (void)arg;
    print_object(root);
}

/* Prints the string field named by arg (e.g. "file_id"). */
static void pr_field(json_t *root, const void *arg)
{
    print_value(stdout, json_object_get(root, (const char *)arg));
    putchar('\n');
}

static void pr_message(json_t *root, const void *arg)
{
    (void)root;
    puts((const char *)arg);
}

typedef struct list_spec {
    const char *field;
    const char *const *cols;
} list_spec;

static void pr_list(json_t *root, const void *arg)
{
    const list_spec *ls = arg;
    print_list(root, ls->field, ls->cols);
}

/* Generic call + emit. */
static int call(cli_ctx *ctx, const char *method, const char *path, const char *body,
                text_printer printer, const void *arg)
{
    char *resp = NULL;
    int st = mesatee_call(ctx->client, method, path, body, &resp);
    int rc = st == MESATEE_OK ? emit(ctx, resp, printer, arg) : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

/* After a page printed as text: the --cursor of the next one, on stderr. */
static void hint_next_page(const char *resp)
{
    json_t *root = json_loads(resp, 0, NULL);
    const char *next = json_string_value(json_object_get(root, "next_cursor"));
    if (next)
        fprintf(stderr, "more: add --cursor %s for the next page\n", next);
    json_decref(root);
}

/* A list command: every page (mesatee_list_all), or the one page that
 * --limit N / --cursor C ask for; then a hint with the next cursor on stderr
 * (text output; JSON output carries next_cursor). */
static int list_cmd(cli_ctx *ctx, const char *path, const char *key, const char *const *cols)
{
    const char *lim = cli_opt_get(ctx, "limit"), *cur = cli_opt_get(ctx, "cursor");
    unsigned long l = 0;
    if (lim) {
        char *end;
        errno = 0;
        l = strtoul(lim, &end, 10);
        if (errno || *end || end == lim || lim[0] == '-' || l < 1 || l > 1000)
            return cli_usage_error(ctx, "--limit must be a number from 1 to 1000");
    }
    if (cur && (!*cur || strlen(cur) > 160 || strspn(cur, "0123456789abcdef") != strlen(cur)))
        return cli_usage_error(ctx, "--cursor takes the next cursor printed by the previous page");
    char *resp = NULL;
    int st = lim || cur ? mesatee_list_page(ctx->client, path, (unsigned)l, cur, &resp)
                        : mesatee_list_all(ctx->client, path, key, &resp);
    list_spec ls = {key, cols};
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr_list, &ls) : client_fail(ctx);
    if (rc == CLI_OK && !ctx->json && (lim || cur))
        hint_next_page(resp);
    mesatee_free(resp);
    return rc;
}

/* Positional argument i must be an object id; usage error otherwise. */
static const char *id_arg(cli_ctx *ctx, int i, const char *what)
{
    const char *id = ctx->pos[i];
    if (!mt_id_valid(id)) {
        cli_usage_error(ctx, "'%s' is not a %s id (expected %d lower-case hex characters)", id,
                        what, MT_ID_LEN);
        return NULL;
    }
    return id;
}

/* Required option; prints a usage error and returns NULL when missing. */
static const char *req_opt(cli_ctx *ctx, const char *name)
{
    const char *v = cli_opt_get(ctx, name);
    if (!v || !*v)
        cli_usage_error(ctx, "missing --%s", name);
    return v && *v ? v : NULL;
}

static int load_key(cli_ctx *ctx, const char *opt, uint8_t key[32], int *rc)
{
    const char *path = req_opt(ctx, opt);
    if (!path) {
        *rc = CLI_USAGE;
        return -1;
    }
    if (mesatee_key_read_file(path, key) != MESATEE_OK) {
        *rc = cli_fail("%s", mesatee_client_errmsg(NULL));
        return -1;
    }
    return 0;
}

/* Reads a whole small text file (password, spec) into a heap string. */
static char *read_text(const char *path, size_t max, int *rc)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err err;
    if (mt_file_read(path, max, &buf, &len, &err) != MT_OK) {
        *rc = cli_fail("cannot read %s: %s", path, err.msg);
        return NULL;
    }
    if (memchr(buf, '\0', len)) {
        mt_wipe(buf, len);
        free(buf);
        *rc = cli_fail("%s contains a NUL byte", path);
        return NULL;
    }
    return (char *)buf;
}

/* First line of a password file (trailing newline removed). */
static char *read_password(const char *path, int *rc)
{
    char *s = read_text(path, 4096, rc);
    if (!s)
        return NULL;
    s[strcspn(s, "\r\n")] = '\0';
    if (!*s) {
        mt_secmem_free(s);
        *rc = cli_fail("password file %s is empty", path);
        return NULL;
    }
    return s;
}

/* Wipes the whole heap block (not only up to the first NUL: a password file's
 * later lines stay behind the cut) and frees it. */
static void free_secret(char *s)
{
    mt_secmem_free(s);
}

/* --output json of `user add` / `user reset-password`: the server's object,
 * with "password" added when one was generated (NULL: not). */
static int emit_with_password(cli_ctx *ctx, const char *resp, const char *generated)
{
    json_t *root = json_loads(resp, 0, NULL);
    if (root && generated)
        json_object_set_new(root, "password", json_string(generated));
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    int rc = emit(ctx, s ? s : resp, pr_object, NULL);
    free_secret(s);
    json_decref(root);
    return rc;
}

/* The password for `user add` and `user reset-password`: the first line of
 * --password-file, or (without it) 18 random bytes in URL- and shell-friendly
 * base64, *generated then set. NULL with *rc set on failure. Free with
 * free_secret. */
static char *new_password(cli_ctx *ctx, bool *generated, int *rc)
{
    const char *pwfile = cli_opt_get(ctx, "password-file");
    if (pwfile)
        return read_password(pwfile, rc);
    uint8_t rnd[18];
    mt_err err;
    if (mt_random(rnd, sizeof rnd, &err) != MT_OK) {
        *rc = cli_fail("%s", err.msg);
        return NULL;
    }
    char *password = mt_b64_encode(rnd, sizeof rnd);
    mt_wipe(rnd, sizeof rnd);
    if (!password) {
        *rc = cli_fail("out of memory");
        return NULL;
    }
    for (char *p = password; *p; p++) /* URL- and shell-friendly */
        if (*p == '+' || *p == '/')
            *p = *p == '+' ? '-' : '_';
    *generated = true;
    return password;
}

/* Writes the token file (mode 0600, directory 0700 created if needed). */
static int save_token(cli_ctx *ctx, const char *token)
{
    const char *path = ctx->token_file.value;
    if (!path)
        return cli_fail("no token file: give --token-file or set MESATEE_TOKEN_FILE or HOME");
    char *dir = strdup(path);
    if (!dir)
        return cli_fail("out of memory");
    char *slash = strrchr(dir, '/');
    mt_err err;
    if (slash && slash != dir) {
        *slash = '\0';
        if (mt_mkdirs(dir, 0700, &err) != MT_OK) {
            free(dir);
            return cli_fail("cannot create %s: %s", path, err.msg);
        }
    }
    free(dir);
    size_t n = strlen(token);
    char *line = malloc(n + 2);
    if (!line)
        return cli_fail("out of memory");
    memcpy(line, token, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    mt_status st = mt_file_write_atomic(path, line, n + 1, 0600, &err);
    free_secret(line);
    if (st != MT_OK)
        return cli_fail("cannot write token file %s: %s", path, err.msg);
    return CLI_OK;
}

/* ======================================================================== */
/* Session and users                                                         */

int cli_cmd_login(cli_ctx *ctx)
{
    const char *user = req_opt(ctx, "user");
    if (!user)
        return CLI_USAGE;
    int rc = CLI_OK;
    char *password = NULL;
    const char *pwfile = cli_opt_get(ctx, "password-file");
    if (pwfile) {
        if (!(password = read_password(pwfile, &rc)))
            return rc;
    } else {
        const char *env = getenv("MESATEE_PASSWORD");
        if (!env || !*env)
            return cli_usage_error(ctx, "give --password-file F or set MESATEE_PASSWORD");
        if (!(password = strdup(env)))
            return cli_fail("out of memory");
        mt_wipe((char *)env, strlen(env)); /* also clears /proc/PID/environ */
        unsetenv("MESATEE_PASSWORD");
    }
    char *token = NULL, *resp = NULL;
    int st = mesatee_login(ctx->client, user, password, &token, &resp);
    free_secret(password);
    if (st != MESATEE_OK) {
        mesatee_free(resp);
        return cli_fail("%s", mesatee_client_errmsg(ctx->client));
    }
    rc = save_token(ctx, token);
    free_secret(token);
    if (rc == CLI_OK) {
        if (ctx->json) {
            rc = emit(ctx, resp, pr_object, NULL);
        } else {
            json_t *root = json_loads(resp, 0, NULL);
            printf("logged in as %s (%s); token saved to %s", user,
                   json_string_value(json_object_get(root, "role"))
                       ? json_string_value(json_object_get(root, "role"))
                       : "user",
                   ctx->token_file.value);
            json_t *exp = json_object_get(root, "expires_at");
            if (exp) {
                printf(", expires ");
                if (json_is_integer(exp)) {
                    char t[32];
                    mt_time_format(json_integer_value(exp), t);
                    fputs(t, stdout);
                } else {
                    print_value(stdout, exp);
                }
            }
            putchar('\n');
            json_decref(root);
        }
    }
    free_secret(resp);
    return rc;
}

int cli_cmd_logout(cli_ctx *ctx)
{
    if (!ctx->have_token)
        return cli_fail("not logged in (no token file %s)",
                        ctx->token_file.value ? ctx->token_file.value : "-");
    char *resp = NULL;
    int st = mesatee_logout(ctx->client, &resp);
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr_message, "logged out") : client_fail(ctx);
    mesatee_free(resp);
    /* The token is useless after a successful logout, or already refused. */
    if ((st == MESATEE_OK || st == MESATEE_EAUTH) && unlink(ctx->token_file.value) != 0 &&
        errno != ENOENT)
        rc = cli_fail("cannot delete token file %s: %s", ctx->token_file.value,
                      strerror(errno));
    return rc;
}

int cli_cmd_user_add(cli_ctx *ctx)
{
    const char *name = ctx->pos[0];
    const char *role = cli_opt_get(ctx, "role");
    if (role && strcmp(role, "user") != 0 && strcmp(role, "admin") != 0)
        return cli_usage_error(ctx, "--role must be 'user' or 'admin'");
    int rc = CLI_OK;
    bool generated = false;
    char *password = new_password(ctx, &generated, &rc);
    if (!password)
        return rc;
    char *resp = NULL;
    int st = mesatee_user_add(ctx->client, name, password, role, &resp);
    if (st != MESATEE_OK) {
        rc = client_fail(ctx);
    } else if (ctx->json) {
        rc = emit_with_password(ctx, resp, generated ? password : NULL);
    } else {
        printf("user %s created (%s)\n", name, role ? role : "user");
        if (generated)
            printf("password: %s\n", password);
    }
    free_secret(password);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_user_list(cli_ctx *ctx)
{
    static const char *const cols[] = {"username", "role", "created_at", "state", NULL};
    return list_cmd(ctx, "/v1/users", "users", cols);
}

/* ======================================================================== */
/* Files                                                                     */

int cli_cmd_key_generate(cli_ctx *ctx)
{
    const char *out = req_opt(ctx, "out");
    if (!out)
        return CLI_USAGE;
    uint8_t key[32];
    int st = mesatee_key_generate(key);
    if (st == MESATEE_OK)
        st = mesatee_key_write_file(key, out);
    mt_wipe(key, sizeof key);
    if (st != MESATEE_OK)
        return cli_fail("%s", mesatee_client_errmsg(NULL));
    if (ctx->json)
        return cli_json_print(json_pack("{s:s}", "key_file", out));
    printf("new key in %s\n", out);
    return CLI_OK;
}

int cli_cmd_file_encrypt(cli_ctx *ctx)
{
    const char *in = req_opt(ctx, "in");
    const char *out = in ? req_opt(ctx, "out") : NULL;
    if (!out)
        return CLI_USAGE;
    bool existing = cli_opt_has(ctx, "key");
    if (existing && cli_opt_has(ctx, "key-out"))
        return cli_usage_error(ctx, "--key (an existing key) and --key-out (a new key) exclude "
                                    "each other");
    const char *kout = existing ? cli_opt_get(ctx, "key") : req_opt(ctx, "key-out");
    if (!kout)
        return CLI_USAGE;
    uint8_t key[32];
    int rc = CLI_OK;
    if (access(in, R_OK) != 0)
        return cli_fail("cannot read %s: %s", in, strerror(errno));
    if (existing) {
        if (load_key(ctx, "key", key, &rc) != 0)
            return rc;
    } else if (mesatee_key_generate(key) != MESATEE_OK ||
               mesatee_key_write_file(key, kout) != MESATEE_OK) {
        mt_wipe(key, sizeof key);
        return cli_fail("%s", mesatee_client_errmsg(NULL));
    }
    int st = mesatee_file_encrypt(key, in, out);
    mt_wipe(key, sizeof key);
    if (st != MESATEE_OK) {
        rc = cli_fail("%s", mesatee_client_errmsg(NULL));
        if (!existing)
            unlink(kout); /* the key protects nothing */
        return rc;
    }
    if (ctx->json) {
        return cli_json_print(json_pack("{s:s, s:s, s:s}", "in", in, "out", out, "key_file", kout));
    } else {
        printf("encrypted %s -> %s (key in %s)\n", in, out, kout);
    }
    return CLI_OK;
}

int cli_cmd_file_decrypt(cli_ctx *ctx)
{
    const char *in = req_opt(ctx, "in");
    const char *out = in ? req_opt(ctx, "out") : NULL;
    if (!out)
        return CLI_USAGE;
    uint8_t key[32];
    int rc = CLI_OK;
    if (load_key(ctx, "key", key, &rc) != 0)
        return rc;
    const char *task = cli_opt_get(ctx, "task"), *slot = cli_opt_get(ctx, "slot"),
               *file = cli_opt_get(ctx, "file");
    int st;
    if (task || slot || file) {
        if (!task || !slot || !file) {
            mt_wipe(key, sizeof key);
            return cli_usage_error(ctx, "--task, --slot and --file go together");
        }
        st = mesatee_file_decrypt_output(key, in, out, task, slot, file,
                                         cli_opt_has(ctx, "allow-unbound") ? MESATEE_ALLOW_UNBOUND
                                                                          : 0);
    } else {
        st = mesatee_file_decrypt(key, in, out);
    }
    mt_wipe(key, sizeof key);
    if (st != MESATEE_OK)
        return cli_fail("%s: %s", in, mesatee_client_errmsg(NULL));
    if (ctx->json)
        return cli_json_print(json_pack("{s:b,s:s,s:s}", "decrypted", 1, "in", in, "out", out));
    else
        printf("decrypted %s -> %s\n", in, out);
    return CLI_OK;
}

int cli_cmd_file_upload(cli_ctx *ctx)
{
    char *url = NULL, *resp = NULL;
    cli_progress_begin(ctx, "upload");
    int st = mesatee_upload_file(ctx->client, ctx->pos[0], &url, &resp);
    cli_progress_end(ctx);
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr_field, "url") : client_fail(ctx);
    mesatee_free(url);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_file_register(cli_ctx *ctx)
{
    uint8_t key[32];
    int rc = CLI_OK;
    if (load_key(ctx, "key", key, &rc) != 0)
        return rc;
    char *resp = NULL;
    const char *sha = cli_opt_get(ctx, "sha256");
    char computed[65];
    /* A file:// input needs the SHA-256 of its ciphertext: compute it when
     * the path is readable here (the same machine as the server's root). */
    if (!sha && !strncmp(ctx->pos[0], "file://", 7) && access(ctx->pos[0] + 7, R_OK) == 0 &&
        mesatee_file_sha256(ctx->pos[0] + 7, computed) == MESATEE_OK)
        sha = computed;
    int st = mesatee_file_register_input(ctx->client, ctx->pos[0], key, sha,
                                         cli_opt_get(ctx, "name"), NULL, &resp);
    mt_wipe(key, sizeof key);
    rc = st == MESATEE_OK ? emit(ctx, resp, pr_field, "file_id") : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_file_register_output(cli_ctx *ctx)
{
    uint8_t key[32];
    int rc = CLI_OK;
    if (load_key(ctx, "key", key, &rc) != 0)
        return rc;
    char *resp = NULL;
    int st = mesatee_file_register_output_ex(
        ctx->client, key, cli_opt_get(ctx, "name"),
        cli_opt_has(ctx, "allow-key-reuse") ? MESATEE_ALLOW_KEY_REUSE : 0, NULL, &resp);
    mt_wipe(key, sizeof key);
    rc = st == MESATEE_OK ? emit(ctx, resp, pr_field, "file_id") : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

/* Splits a comma list in place into out; count or -1 on an empty item. */
static int split_commas(char *s, const char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n >= max)
            return -1;
        out[n++] = t;
    }
    return n;
}

int cli_cmd_file_register_fusion(cli_ctx *ctx)
{
    const char *owners_opt = req_opt(ctx, "owners");
    if (!owners_opt)
        return CLI_USAGE;
    char *buf = strdup(owners_opt);
    if (!buf)
        return cli_fail("out of memory");
    const char *owners[MAX_MULTI];
    int n = split_commas(buf, owners, MAX_MULTI);
    if (n < 2) {
        free(buf);
        return cli_usage_error(ctx, "--owners needs at least 2 comma-separated users");
    }
    char *resp = NULL;
    int st = mesatee_file_register_fusion(ctx->client, owners, (size_t)n,
                                          cli_opt_get(ctx, "name"), NULL, &resp);
    free(buf);
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr_field, "file_id") : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_file_list(cli_ctx *ctx)
{
    static const char *const cols[] = {"file_id", "kind", "name", "written", NULL};
    return list_cmd(ctx, "/v1/files", "files", cols);
}

int cli_cmd_file_show(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "file");
    if (!id)
        return CLI_USAGE;
    char path[64];
    snprintf(path, sizeof path, "/v1/files/%s", id);
    return call(ctx, "GET", path, NULL, pr_object, NULL);
}

int cli_cmd_file_download(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "file");
    if (!id)
        return CLI_USAGE;
    const char *out = req_opt(ctx, "out");
    if (!out)
        return CLI_USAGE;
    cli_progress_begin(ctx, "download");
    int st = mesatee_file_download_ex(ctx->client, id, out,
                                      cli_opt_has(ctx, "allow-unbound") ? MESATEE_ALLOW_UNBOUND
                                                                        : 0);
    cli_progress_end(ctx);
    if (st != MESATEE_OK)
        return client_fail(ctx);
    if (ctx->json)
        return cli_json_print(
            json_pack("{s:b,s:s,s:s}", "downloaded", 1, "file_id", id, "out", out));
    else
        printf("downloaded %s -> %s\n", id, out);
    return CLI_OK;
}

int cli_cmd_file_delete(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "file");
    if (!id)
        return CLI_USAGE;
    char path[64];
    snprintf(path, sizeof path, "/v1/files/%s", id);
    return call(ctx, "DELETE", path, NULL, pr_message, "deleted");
}

int cli_cmd_file_as_input(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "file");
    if (!id)
        return CLI_USAGE;
    char path[64];
    snprintf(path, sizeof path, "/v1/files/%s/as-input", id);
    return call(ctx, "POST", path, "{}", pr_field, "file_id");
}

/* ======================================================================== */
/* Functions                                                                 */

/* Reads and checks a JSON spec file; heap string or NULL (rc set). */
static char *read_spec(cli_ctx *ctx, int *rc)
{
    const char *path = req_opt(ctx, "spec");
    if (!path) {
        *rc = CLI_USAGE;
        return NULL;
    }
    char *s = read_text(path, 1024 * 1024, rc);
    if (!s)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) {
        *rc = v ? cli_fail("%s: expected a JSON object", path)
                : cli_fail("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        json_decref(v);
        free(s);
        return NULL;
    }
    json_decref(v);
    return s;
}

static json_t *slot_array(cli_ctx *ctx, const char *opt)
{
    const char *vals[MAX_MULTI];
    int n = cli_opt_all(ctx, opt, vals, MAX_MULTI);
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:b}", "name", vals[i], "description",
                                             "", "optional", 0));
    return arr;
}

/* Builds the function description from flags; NULL after a printed error. */
static json_t *function_from_flags(cli_ctx *ctx, int *rc)
{
    const char *name = cli_opt_get(ctx, "name"), *builtin = cli_opt_get(ctx, "builtin"),
               *wasm = cli_opt_get(ctx, "wasm"), *python = cli_opt_get(ctx, "python");
    if (!name || (!!builtin + !!wasm + !!python) != 1) {
        *rc = cli_usage_error(ctx, "give --spec FILE.json, or --name and one of --builtin, "
                                   "--wasm and --python");
        return NULL;
    }
    const char *payload_opt = python ? "--python" : "--wasm";
    if (python)
        wasm = python; /* the same payload field: the source instead of a module */
    if (cli_opt_has(ctx, "public") && cli_opt_has(ctx, "private")) {
        *rc = cli_usage_error(ctx, "--public and --private exclude each other");
        return NULL;
    }
    json_t *fn = json_pack("{s:s, s:s, s:s}", "name", name, "description",
                           cli_opt_get(ctx, "description") ? cli_opt_get(ctx, "description")
                                                           : "",
                           "executor_type", python ? "python" : wasm ? "wasm" : "builtin");
    if (!fn) {
        *rc = cli_fail("out of memory");
        return NULL;
    }
    if (builtin) {
        json_object_set_new(fn, "builtin", json_string(builtin));
    } else {
        /* the module travels base64-encoded in the registration */
        uint8_t *mod = NULL;
        size_t len = 0;
        mt_err e;
        if (mt_file_read(wasm, 8u * 1024 * 1024, &mod, &len, &e) != MT_OK) {
            json_decref(fn);
            *rc = cli_fail("%s %s: %s", payload_opt, wasm, e.msg);
            return NULL;
        }
        char *b64 = mt_b64_encode(mod, len);
        free(mod);
        if (!b64) {
            json_decref(fn);
            *rc = cli_fail("out of memory");
            return NULL;
        }
        json_object_set_new(fn, "payload", json_string(b64));
        free(b64);
    }
    if (cli_opt_has(ctx, "public") || cli_opt_has(ctx, "private"))
        json_object_set_new(fn, "public", json_boolean(cli_opt_has(ctx, "public")));
    const char *vals[MAX_MULTI];
    int n = cli_opt_all(ctx, "allow", vals, MAX_MULTI);
    json_t *allow = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(allow, json_string(vals[i]));
    json_object_set_new(fn, "allowlist", allow);
    json_t *args = json_array();
    n = cli_opt_all(ctx, "arg", vals, MAX_MULTI);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(vals[i], '=');
        if (!eq || eq == vals[i]) {
            json_decref(args);
            json_decref(fn);
            *rc = cli_usage_error(ctx, "--arg '%s': expected NAME=DEFAULT[:overridable]",
                                  vals[i]);
            return NULL;
        }
        static const char suffix[] = ":overridable";
        size_t dlen = strlen(eq + 1);
        bool over = dlen >= sizeof suffix - 1 &&
                    !strcmp(eq + 1 + dlen - (sizeof suffix - 1), suffix);
        if (over)
            dlen -= sizeof suffix - 1;
        json_array_append_new(args, json_pack("{s:s%, s:s%, s:b}", "name", vals[i],
                                              (size_t)(eq - vals[i]), "default", eq + 1, dlen,
                                              "overridable", over));
    }
    json_object_set_new(fn, "arguments", args);
    json_object_set_new(fn, "inputs", slot_array(ctx, "input-slot"));
    json_object_set_new(fn, "outputs", slot_array(ctx, "output-slot"));
    const char *q = cli_opt_get(ctx, "quota");
    if (q) {
        char *end;
        errno = 0;
        long long v = strtoll(q, &end, 10);
        if (errno || *end || end == q || v < 0 || v > 2147483647) {
            json_decref(fn);
            *rc = cli_usage_error(ctx, "--quota must be a number from 0 to 2147483647");
            return NULL;
        }
        json_object_set_new(fn, "usage_quota", json_integer(v));
    }
    return fn;
}

int cli_cmd_function_register(cli_ctx *ctx)
{
    int rc = CLI_OK;
    char *spec = NULL;
    if (cli_opt_has(ctx, "spec")) {
        for (int i = 0; i < ctx->n_opt; i++)
            if (strcmp(ctx->opt[i].name, "spec") != 0)
                return cli_usage_error(ctx, "--spec excludes --%s", ctx->opt[i].name);
        if (!(spec = read_spec(ctx, &rc)))
            return rc;
    } else {
        json_t *fn = function_from_flags(ctx, &rc);
        if (!fn)
            return rc;
        spec = json_dumps(fn, JSON_COMPACT);
        json_decref(fn);
        if (!spec)
            return cli_fail("out of memory");
    }
    char *resp = NULL;
    int st = mesatee_function_register(ctx->client, spec, NULL, &resp);
    free(spec);
    rc = st == MESATEE_OK ? emit(ctx, resp, pr_field, "function_id") : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_function_list(cli_ctx *ctx)
{
    static const char *const cols[] = {"function_id", "name", "builtin", "owner", NULL};
    return list_cmd(ctx, "/v1/functions", "functions", cols);
}

static int function_call(cli_ctx *ctx, const char *method, const char *suffix,
                         const char *body, text_printer pr, const void *arg)
{
    const char *id = id_arg(ctx, 0, "function");
    if (!id)
        return CLI_USAGE;
    char path[96];
    snprintf(path, sizeof path, "/v1/functions/%s%s", id, suffix);
    return call(ctx, method, path, body, pr, arg);
}

int cli_cmd_function_show(cli_ctx *ctx)
{
    return function_call(ctx, "GET", "", NULL, pr_object, NULL);
}

int cli_cmd_function_update(cli_ctx *ctx)
{
    if (!id_arg(ctx, 0, "function"))
        return CLI_USAGE;
    int rc = CLI_OK;
    char *spec = read_spec(ctx, &rc);
    if (!spec)
        return rc;
    rc = function_call(ctx, "PUT", "", spec, pr_message, "updated");
    free(spec);
    return rc;
}

int cli_cmd_function_disable(cli_ctx *ctx)
{
    return function_call(ctx, "POST", "/disable", "{}", pr_message, "disabled");
}

int cli_cmd_function_delete(cli_ctx *ctx)
{
    return function_call(ctx, "DELETE", "", NULL, pr_message, "deleted");
}

int cli_cmd_function_stats(cli_ctx *ctx)
{
    return function_call(ctx, "GET", "/stats", NULL, pr_object, NULL);
}

/* ======================================================================== */
/* Tasks                                                                     */

/* --opt SLOT=a,b,... -> [{"name":SLOT,"owners":[a,b]}]; NULL after a usage error. */
static json_t *ownership_array(cli_ctx *ctx, const char *opt, int *rc)
{
    const char *vals[MAX_MULTI];
    int n = cli_opt_all(ctx, opt, vals, MAX_MULTI);
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        const char *eq = strchr(vals[i], '=');
        char *users = eq ? strdup(eq + 1) : NULL;
        const char *names[MAX_MULTI];
        int k = users ? split_commas(users, names, MAX_MULTI) : -1;
        if (!eq || eq == vals[i] || k < 1) {
            free(users);
            json_decref(arr);
            *rc = cli_usage_error(ctx, "--%s '%s': expected SLOT=USER[,USER...]", opt, vals[i]);
            return NULL;
        }
        json_t *owners = json_array();
        for (int j = 0; j < k; j++)
            json_array_append_new(owners, json_string(names[j]));
        json_array_append_new(arr, json_pack("{s:s%, s:o}", "name", vals[i],
                                             (size_t)(eq - vals[i]), "owners", owners));
        free(users);
    }
    if (!arr)
        *rc = cli_fail("out of memory");
    return arr;
}

int cli_cmd_task_create(cli_ctx *ctx)
{
    const char *fn = req_opt(ctx, "function");
    if (!fn)
        return CLI_USAGE;
    if (!mt_id_valid(fn))
        return cli_usage_error(ctx, "--function '%s' is not a function id", fn);
    int rc = CLI_OK;
    json_t *args = json_object();
    const char *vals[MAX_MULTI];
    int n = cli_opt_all(ctx, "arg", vals, MAX_MULTI);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(vals[i], '=');
        if (!eq || eq == vals[i]) {
            json_decref(args);
            return cli_usage_error(ctx, "--arg '%s': expected KEY=VALUE", vals[i]);
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - vals[i]), vals[i]);
        json_object_set_new(args, key, json_string(eq + 1));
    }
    json_t *inputs = ownership_array(ctx, "input", &rc);
    json_t *outputs = inputs ? ownership_array(ctx, "output", &rc) : NULL;
    if (!inputs || !outputs) {
        json_decref(args);
        json_decref(inputs);
        return rc;
    }
    json_t *task = json_pack("{s:s, s:o, s:o, s:o}", "function_id", fn, "arguments", args,
                             "inputs", inputs, "outputs", outputs);
    char *spec = task ? json_dumps(task, JSON_COMPACT) : NULL;
    json_decref(task);
    if (!spec)
        return cli_fail("out of memory (arguments must be UTF-8)");
    char *resp = NULL;
    int st = mesatee_task_create(ctx->client, spec, NULL, &resp);
    free(spec);
    rc = st == MESATEE_OK ? emit(ctx, resp, pr_field, "task_id") : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

/* --opt SLOT=FILE_ID into obj; false after a usage error. */
static bool bindings(cli_ctx *ctx, const char *opt, json_t *obj, int *rc)
{
    const char *vals[MAX_MULTI];
    int n = cli_opt_all(ctx, opt, vals, MAX_MULTI);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(vals[i], '=');
        if (!eq || eq == vals[i] || !mt_id_valid(eq + 1)) {
            *rc = cli_usage_error(ctx, "--%s '%s': expected SLOT=FILE_ID", opt, vals[i]);
            return false;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - vals[i]), vals[i]);
        json_object_set_new(obj, key, json_string(eq + 1));
    }
    return true;
}

int cli_cmd_task_assign(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "task");
    if (!id)
        return CLI_USAGE;
    if (!cli_opt_has(ctx, "input") && !cli_opt_has(ctx, "output"))
        return cli_usage_error(ctx, "give at least one --input or --output");
    int rc = CLI_OK;
    json_t *in = json_object(), *out = json_object();
    json_t *doc = json_object();
    if (!bindings(ctx, "input", in, &rc) || !bindings(ctx, "output", out, &rc)) {
        json_decref(in);
        json_decref(out);
        json_decref(doc);
        return rc;
    }
    json_object_set_new(doc, "inputs", in);
    json_object_set_new(doc, "outputs", out);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body)
        return cli_fail("out of memory");
    char *resp = NULL;
    int st = mesatee_task_assign(ctx->client, id, body, &resp);
    free(body);
    rc = st == MESATEE_OK ? emit(ctx, resp, pr_message, "assigned") : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

static int task_verb(cli_ctx *ctx, int (*fn)(mesatee_client *, const char *, char **),
                     const char *done)
{
    const char *id = id_arg(ctx, 0, "task");
    if (!id)
        return CLI_USAGE;
    char *resp = NULL;
    int st = fn(ctx->client, id, &resp);
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr_message, done) : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_task_approve(cli_ctx *ctx)
{
    return task_verb(ctx, mesatee_task_approve, "approved");
}

int cli_cmd_task_invoke(cli_ctx *ctx)
{
    return task_verb(ctx, mesatee_task_invoke, "invoked");
}

int cli_cmd_task_cancel(cli_ctx *ctx)
{
    return task_verb(ctx, mesatee_task_cancel, "canceled");
}

int cli_cmd_task_show(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "task");
    if (!id)
        return CLI_USAGE;
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%s", id);
    return call(ctx, "GET", path, NULL, pr_object, NULL);
}

int cli_cmd_task_list(cli_ctx *ctx)
{
    static const char *const cols[] = {"task_id", "status", "function_id", "creator", NULL};
    return list_cmd(ctx, "/v1/tasks", "tasks", cols);
}

static void pr_task_final(json_t *root, const void *arg)
{
    (void)arg;
    const char *status = json_string_value(json_object_get(root, "status"));
    printf("%s", status ? status : "?");
    json_t *r = json_object_get(root, "result");
    const char *reason = json_string_value(json_object_get(r, "failure_reason"));
    if (!reason)
        reason = json_string_value(json_object_get(root, "failure_reason"));
    const char *ret = json_string_value(json_object_get(r, "return_value"));
    if (!ret)
        ret = json_string_value(json_object_get(root, "return_value"));
    if (reason && *reason)
        printf(": %s", reason);
    else if (ret && *ret)
        printf(": %s", ret);
    putchar('\n');
}

int cli_cmd_task_wait(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "task");
    if (!id)
        return CLI_USAGE;
    long timeout = 0;
    const char *t = cli_opt_get(ctx, "timeout");
    if (t) {
        char *end;
        errno = 0;
        timeout = strtol(t, &end, 10);
        if (errno || *end || end == t || timeout < 0 || timeout > 86400 * 365)
            return cli_usage_error(ctx, "--timeout must be a number of seconds");
    }
    const char *rs = cli_opt_get(ctx, "reconnect-s");
    if (rs) {
        char *end;
        errno = 0;
        long r = strtol(rs, &end, 10);
        if (errno || *end || end == rs || r < 1 || r > 86400 * 365)
            return cli_usage_error(ctx, "--reconnect-s must be a number of seconds (at least 1)");
        mesatee_client_set_wait_reconnect(ctx->client, r);
    }
    char status[16], *resp = NULL;
    cli_progress_begin(ctx, "task");
    int st = mesatee_task_wait(ctx->client, id, timeout, status, &resp);
    cli_progress_end(ctx);
    int rc;
    if (st != MESATEE_OK) {
        rc = client_fail(ctx);
        /* distinct exit codes (cli.h): timeout, server unreachable / gone */
        if (st == MESATEE_ETIMEOUT)
            rc = CLI_WAIT_TIMEOUT;
        else if (st == MESATEE_ENET ||
                 (st == MESATEE_ESERVER && mesatee_client_http_status(ctx->client) >= 502 &&
                  mesatee_client_http_status(ctx->client) <= 504))
            rc = CLI_SERVER_GONE;
    } else {
        rc = emit(ctx, resp, pr_task_final, NULL);
        if (rc == CLI_OK && strcmp(status, "finished") != 0) {
            cli_fail("task %s %s", id, status);
            rc = !strcmp(status, "canceled") ? CLI_TASK_CANCELED : CLI_TASK_FAILED;
        }
    }
    mesatee_free(resp);
    return rc;
}

/* Finds the file id bound to output slot in a task document:
 * "assignments":{"outputs":{slot:file_id}}, else "outputs" as
 * [{name|slot, file_id}] or {slot: file_id | {file_id}}. */
static const char *output_file_id(json_t *task, const char *slot)
{
    json_t *bound = json_object_get(json_object_get(json_object_get(task, "assignments"),
                                                    "outputs"),
                                    slot);
    if (json_is_string(bound))
        return json_string_value(bound);
    json_t *outs = json_object_get(task, "outputs"), *e;
    size_t i;
    if (json_is_array(outs)) {
        json_array_foreach(outs, i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name"));
            if (!n)
                n = json_string_value(json_object_get(e, "slot"));
            if (n && !strcmp(n, slot))
                return json_string_value(json_object_get(e, "file_id"));
        }
    } else if (json_is_object(outs)) {
        e = json_object_get(outs, slot);
        return json_is_string(e) ? json_string_value(e)
                                 : json_string_value(json_object_get(e, "file_id"));
    }
    return NULL;
}

int cli_cmd_task_result(cli_ctx *ctx)
{
    const char *id = id_arg(ctx, 0, "task");
    if (!id)
        return CLI_USAGE;
    const char *slot = req_opt(ctx, "slot");
    const char *out = slot ? req_opt(ctx, "out") : NULL;
    if (!out)
        return CLI_USAGE;
    uint8_t key[32];
    int rc = CLI_OK;
    if (load_key(ctx, "key", key, &rc) != 0)
        return rc;
    char *resp = NULL;
    json_t *task = NULL;
    if (mesatee_task_get(ctx->client, id, &resp) != MESATEE_OK) {
        rc = client_fail(ctx);
        goto out;
    }
    task = json_loads(resp, 0, NULL);
    const char *status = json_string_value(json_object_get(task, "status"));
    if (!status || strcmp(status, "finished") != 0) {
        rc = cli_fail("task %s is %s, not finished", id, status ? status : "in an unknown state");
        goto out;
    }
    const char *fid = output_file_id(task, slot);
    if (!fid || !mt_id_valid(fid)) {
        rc = cli_fail("task %s has no output slot '%s' bound to a file", id, slot);
        goto out;
    }
    /* The output must be the one written for this task, slot and file: the
     * server could serve another task's (or slot's) output under this id. */
    unsigned flags = cli_opt_has(ctx, "allow-unbound") ? MESATEE_ALLOW_UNBOUND : 0;
    cli_progress_begin(ctx, "download");
    int dst = mesatee_task_output_download(ctx->client, id, slot, fid, key, out, flags);
    cli_progress_end(ctx);
    if (dst != MESATEE_OK) {
        rc = cli_fail("output %s of task %s: %s", slot, id, mesatee_client_errmsg(ctx->client));
        goto out;
    }
    if (ctx->json)
        rc = cli_json_print(json_pack("{s:s,s:s,s:s}", "file_id", fid, "slot", slot, "out", out));
    else
        printf("wrote %s (output '%s', file %s)\n", out, slot, fid);
out:
    mt_wipe(key, sizeof key);
    json_decref(task);
    mesatee_free(resp);
    return rc;
}

/* ======================================================================== */
/* Audit and config                                                          */

int cli_cmd_audit_list(cli_ctx *ctx)
{
    const char *after = cli_opt_get(ctx, "after"), *limit = cli_opt_get(ctx, "limit");
    unsigned long long a = 0;
    unsigned long l = 0;
    char *end;
    if (after) {
        errno = 0;
        a = strtoull(after, &end, 10);
        if (errno || *end || end == after || after[0] == '-')
            return cli_usage_error(ctx, "--after must be a sequence number");
    }
    if (limit) {
        errno = 0;
        l = strtoul(limit, &end, 10);
        if (errno || *end || end == limit || l < 1 || l > 1000)
            return cli_usage_error(ctx, "--limit must be a number from 1 to 1000");
    }
    /* --cursor: the page after the previous one (list_cmd; --after is then
     * not needed) */
    if (cli_opt_get(ctx, "cursor")) {
        if (after)
            return cli_usage_error(ctx, "give --after or --cursor, not both");
        return list_cmd(ctx, "/v1/audit", "entries", NULL);
    }
    char *resp = NULL;
    int st = mesatee_audit_list(ctx->client, a, (unsigned)l, &resp);
    list_spec ls = {"entries", NULL};
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr_list, &ls) : client_fail(ctx);
    if (rc == CLI_OK && !ctx->json)
        hint_next_page(resp);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_config_show(cli_ctx *ctx)
{
    struct {
        const char *key;
        const cli_setting *s;
    } rows[] = {{"server", &ctx->server},
                {"ca", &ctx->ca},
                {"token_file", &ctx->token_file},
                {"output", &ctx->output},
                {"tls_server_name", &ctx->tls_server_name},
                {"config", &ctx->config}};
    if (ctx->json) {
        json_t *o = json_object();
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            json_object_set_new(o, rows[i].key,
                                json_pack("{s:s?, s:s}", "value", rows[i].s->value, "source",
                                          rows[i].s->value ? rows[i].s->source : "unset"));
        json_object_set_new(o, "config_found", json_boolean(ctx->config_found));
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
            return cli_fail("out of memory");
        puts(s);
        free(s);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("%s = %s (%s)\n", rows[i].key, rows[i].s->value ? rows[i].s->value : "-",
               rows[i].s->value ? rows[i].s->source : "unset");
    if (!ctx->config_found && ctx->config.value)
        printf("# config file %s not found\n", ctx->config.value);
    return CLI_OK;
}

/* ======================================================================== */
/* User lifecycle (issue 9)                                                  */

/* Emits the answer of a typed call st (resp owned here). */
static int emit_typed(cli_ctx *ctx, int st, char *resp, text_printer pr, const void *arg)
{
    int rc = st == MESATEE_OK ? emit(ctx, resp, pr, arg) : client_fail(ctx);
    mesatee_free(resp);
    return rc;
}

int cli_cmd_whoami(cli_ctx *ctx)
{
    char *resp = NULL;
    int st = mesatee_whoami(ctx->client, &resp);
    return emit_typed(ctx, st, resp, pr_object, NULL);
}

/* `user show|disable|enable|delete NAME`: one call on the named user, its
 * answer printed as an object. */
static int user_cmd(cli_ctx *ctx, int (*call)(mesatee_client *, const char *, char **))
{
    char *resp = NULL;
    int st = call(ctx->client, ctx->pos[0], &resp);
    return emit_typed(ctx, st, resp, pr_object, NULL);
}

int cli_cmd_user_show(cli_ctx *ctx)
{
    return user_cmd(ctx, mesatee_user_show);
}

int cli_cmd_user_disable(cli_ctx *ctx)
{
    return user_cmd(ctx, mesatee_user_disable);
}

int cli_cmd_user_enable(cli_ctx *ctx)
{
    return user_cmd(ctx, mesatee_user_enable);
}

int cli_cmd_user_delete(cli_ctx *ctx)
{
    return user_cmd(ctx, mesatee_user_delete);
}

int cli_cmd_user_passwd(cli_ctx *ctx)
{
    const char *of = req_opt(ctx, "old-password-file");
    const char *nf = of ? req_opt(ctx, "new-password-file") : NULL;
    if (!nf)
        return CLI_USAGE;
    int rc = CLI_OK;
    char *oldpw = read_password(of, &rc);
    char *newpw = oldpw ? read_password(nf, &rc) : NULL;
    if (!newpw) {
        free_secret(oldpw);
        return rc;
    }
    char *resp = NULL;
    int st = mesatee_user_change_password(ctx->client, oldpw, newpw, &resp);
    free_secret(oldpw);
    free_secret(newpw);
    return emit_typed(ctx, st, resp, pr_message, "password changed; your other tokens are revoked");
}

int cli_cmd_user_reset_password(cli_ctx *ctx)
{
    const char *name = ctx->pos[0];
    int rc = CLI_OK;
    bool generated = false;
    char *password = new_password(ctx, &generated, &rc);
    if (!password)
        return rc;
    char *resp = NULL;
    int st = mesatee_user_reset_password(ctx->client, name, password, &resp);
    if (st != MESATEE_OK) {
        rc = client_fail(ctx);
    } else if (ctx->json) {
        rc = emit_with_password(ctx, resp, generated ? password : NULL);
    } else {
        printf("password of %s reset; every token of %s is revoked\n", name, name);
        if (generated)
            printf("password: %s\n", password); /* shown once */
    }
    free_secret(password);
    mesatee_free(resp);
    return rc;
}

/* ======================================================================== */
/* Built-in schemas (issue 9)                                                */

static void pr_builtin(json_t *b)
{
    printf("%s  %s\n", json_string_value(json_object_get(b, "name")),
           json_string_value(json_object_get(b, "summary")));
    static const char *const dirs[] = {"inputs", "outputs"};
    for (int d = 0; d < 2; d++) {
        json_t *s = json_object_get(b, dirs[d]);
        json_int_t lo = json_integer_value(json_object_get(s, "min"));
        json_t *hi = json_object_get(s, "max");
        printf("  %-8s ", dirs[d]);
        if (json_is_null(hi))
            printf("%lld or more", (long long)lo);
        else if (json_integer_value(hi) == 0)
            printf("none");
        else if (json_integer_value(hi) == lo)
            printf("exactly %lld", (long long)lo);
        else
            printf("%lld to %lld", (long long)lo, (long long)json_integer_value(hi));
        printf(" (%s)\n", json_string_value(json_object_get(s, "description")));
    }
    json_t *args = json_object_get(b, "arguments");
    if (json_array_size(args) == 0)
        printf("  arguments: none%s\n",
               json_is_true(json_object_get(b, "open_arguments")) ? " reserved" : "");
    else
        printf("  arguments%s:\n",
               json_is_true(json_object_get(b, "open_arguments"))
                   ? " (reserved; the function declares its own)"
                   : "");
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a)
    {
        const char *type = json_string_value(json_object_get(a, "type"));
        char range[256] = "";
        json_t *ch = json_object_get(a, "choices");
        if (json_is_array(ch)) {
            size_t o = 0, j;
            json_t *c;
            json_array_foreach(ch, j, c)
            {
                int w = snprintf(range + o, sizeof range - o, "%s%s", j ? "|" : "",
                                 json_string_value(c));
                if (w > 0 && (size_t)w < sizeof range - o)
                    o += (size_t)w;
            }
        } else if (json_is_integer(json_object_get(a, "min")))
            snprintf(range, sizeof range, "%lld..%lld",
                     (long long)json_integer_value(json_object_get(a, "min")),
                     (long long)json_integer_value(json_object_get(a, "max")));
        else if (json_is_number(json_object_get(a, "min")))
            snprintf(range, sizeof range, "%g..%g",
                     json_number_value(json_object_get(a, "min")),
                     json_number_value(json_object_get(a, "max")));
        const char *dflt = json_string_value(json_object_get(a, "default"));
        printf("    %-18s %-11s %s%s%s%s%s  %s\n", json_string_value(json_object_get(a, "name")),
               type, json_is_true(json_object_get(a, "required")) ? "required " : "", range,
               dflt ? (*range ? " " : "") : "", dflt ? "default " : "", dflt ? dflt : "",
               json_string_value(json_object_get(a, "description")));
    }
    printf("  returns  %s\n", json_string_value(json_object_get(b, "returns")));
}

int cli_cmd_function_builtins(cli_ctx *ctx)
{
    const char *only = ctx->n_pos > 0 ? ctx->pos[0] : NULL;
    char *resp = NULL;
    if (mesatee_builtins(ctx->client, &resp) != MESATEE_OK) {
        mesatee_free(resp);
        return client_fail(ctx);
    }
    json_t *root = json_loads(resp, 0, NULL);
    mesatee_free(resp);
    if (!root)
        return cli_fail("server answer is not JSON");
    json_t *list = json_object_get(root, "builtins"), *pick = NULL;
    size_t i;
    json_t *b;
    if (only) {
        json_array_foreach(list, i, b) if (!strcmp(json_string_value(json_object_get(b, "name")),
                                                   only)) pick = b;
        if (!pick && !strcmp(only, "wasm"))
            pick = json_object_get(root, "wasm");
        if (!pick && !strcmp(only, "python"))
            pick = json_object_get(root, "python");
        if (!pick) {
            json_decref(root);
            return cli_fail("no built-in function '%.64s' (mesatee function builtins lists them)",
                            only);
        }
    }
    int rc = CLI_OK;
    if (ctx->json) {
        char *s = json_dumps(pick ? pick : root, JSON_COMPACT);
        if (s)
            puts(s);
        else
            rc = cli_fail("out of memory");
        free(s);
    } else if (pick) {
        pr_builtin(pick);
    } else {
        json_array_foreach(list, i, b)
        {
            pr_builtin(b);
            putchar('\n');
        }
        pr_builtin(json_object_get(root, "wasm"));
    }
    if (!ctx->json && (!pick || pick == json_object_get(root, "python")) &&
        json_object_get(root, "python")) {
        if (!pick) {
            putchar('\n');
            pr_builtin(json_object_get(root, "python"));
        }
        fputs("  modules a python function may import:", stdout);
        json_array_foreach(json_object_get(root, "python_modules"), i, b)
            printf(" %s", json_string_value(b));
        putchar('\n');
    }
    json_decref(root);
    return rc;
}
