/* cmd_key_vault: `mesatee key export|backup|restore|trim` and the Vault
 * options of create/config/encrypt/decrypt/rewrap/datakey (--exportable,
 * --allow-plaintext-backup, --derived, --convergent, --context), over
 * mesatee_call (docs/cli.md, docs/keystore.md; helpers: cmd_key.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cmd_key.h"
#include "mesatee.h"
#include "mt_util.h"

json_t *key_vault_flags(cli_ctx *ctx, bool create)
{
    static const char *const opts[] = {"exportable", "allow-plaintext-backup", "derived",
                                       "convergent", NULL};
    static const char *const fields[] = {"exportable", "allow_plaintext_backup", "derived",
                                         "convergent_encryption", NULL};
    json_t *b = NULL;
    for (size_t i = 0; opts[i] && (create || i < 2); i++) {
        if (!cli_opt_has(ctx, opts[i]))
            continue;
        if (!b)
            b = json_object();
        json_object_set_new(b, fields[i], json_true());
    }
    return b;
}

void key_context_set(cli_ctx *ctx, json_t *body)
{
    const char *c = cli_opt_get(ctx, "context");
    if (c)
        json_object_set_new(body, "context", b64_json((const uint8_t *)c, strlen(c)));
}

int key_encrypt_context(cli_ctx *ctx, const uint8_t *in, size_t n, const uint8_t *aad, size_t an,
                        uint32_t version)
{
    if (key_name_check(ctx, ctx->pos[0]))
        return CLI_USAGE;
    json_t *b = json_pack("{s:o}", "plaintext", b64_json(in, n));
    if (aad)
        json_object_set_new(b, "associated_data", b64_json(aad, an));
    if (version)
        json_object_set_new(b, "key_version", json_integer(version));
    key_context_set(ctx, b);
    char *resp = NULL;
    int st = key_post(ctx, "encrypt", ctx->pos[0], b, &resp);
    return key_emit(ctx, st, resp, ctx->json ? NULL : "ciphertext");
}

int key_decrypt_context(cli_ctx *ctx, const uint8_t *aad, size_t an, uint8_t **pt, size_t *pn)
{
    *pt = NULL;
    *pn = 0;
    if (key_name_check(ctx, ctx->pos[0]))
        return -1;
    json_t *b = json_pack("{s:s}", "ciphertext", ctx->pos[1]);
    if (aad)
        json_object_set_new(b, "associated_data", b64_json(aad, an));
    key_context_set(ctx, b);
    char *resp = NULL;
    int st = key_post(ctx, "decrypt", ctx->pos[0], b, &resp);
    if (st) {
        mesatee_free(resp);
        return st;
    }
    json_t *root = json_loads(resp, 0, NULL);
    const char *p = json_string_value(json_object_get(json_object_get(root, "data"), "plaintext"));
    mt_err err;
    if (!p || mt_b64_decode(p, pt, pn, &err)) {
        cli_fail("server answer has no plaintext");
        st = -1;
    }
    json_decref(root); /* jansson's memory is wiped (mt_secmem_install_json) */
    mt_wipe(resp, strlen(resp));
    mesatee_free(resp);
    return st;
}

/* ---- export, backup, restore, trim ---------------------------------------------------- */

int cli_cmd_key_export(cli_ctx *ctx)
{
    const char *kind = cli_opt_get(ctx, "kind"), *ver = cli_opt_get(ctx, "key-version");
    static const char *const kinds[] = {"encryption-key", "signing-key", "hmac-key",
                                        "public-key", NULL};
    if (key_name_check(ctx, ctx->pos[0]))
        return CLI_USAGE;
    if (!kind)
        return cli_usage_error(ctx, "--kind is required");
    size_t i = 0;
    while (kinds[i] && strcmp(kinds[i], kind) != 0)
        i++;
    if (!kinds[i])
        return cli_usage_error(ctx, "--kind: encryption-key, signing-key, hmac-key or public-key");
    uint32_t v = 0;
    if (ver && strcmp(ver, "latest") != 0) {
        if (version_opt(ctx, "key-version", &v))
            return CLI_USAGE;
        if (v == 0)
            return cli_usage_error(ctx, "--key-version: 'latest' or a number from 1");
    }
    char path[256];
    if (ver && !v)
        snprintf(path, sizeof path, "/v1/transit/export/%s/%s/latest", kind, ctx->pos[0]);
    else if (v)
        snprintf(path, sizeof path, "/v1/transit/export/%s/%s/%u", kind, ctx->pos[0],
                 (unsigned)v);
    else
        snprintf(path, sizeof path, "/v1/transit/export/%s/%s", kind, ctx->pos[0]);
    char *resp = NULL;
    int st = mesatee_call(ctx->client, "GET", path, NULL, &resp);
    if (st || ctx->json)
        return key_emit(ctx, st, resp, NULL);
    /* text: each version's key after a "# version N" line */
    json_t *root = json_loads(resp, 0, NULL);
    json_t *keys = json_object_get(json_object_get(root, "data"), "keys");
    int rc = json_is_object(keys) ? CLI_OK : cli_fail("server answer has no keys");
    const char *k;
    json_t *val;
    json_object_foreach(keys, k, val)
    {
        const char *s = json_string_value(val);
        size_t l = s ? strlen(s) : 0;
        printf("# version %s\n%s%s", k, s ? s : "", l && s[l - 1] == '\n' ? "" : "\n");
    }
    json_decref(root);
    mt_wipe(resp, strlen(resp));
    mesatee_free(resp);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = cli_fail("cannot write output: %s", strerror(errno));
    return rc;
}

int cli_cmd_key_backup(cli_ctx *ctx)
{
    if (key_name_check(ctx, ctx->pos[0]))
        return CLI_USAGE;
    const char *out = cli_opt_get(ctx, "out");
    char path[256], *resp = NULL;
    snprintf(path, sizeof path, "/v1/transit/backup/%s", ctx->pos[0]);
    int st = mesatee_call(ctx->client, "GET", path, NULL, &resp);
    if (st || !out)
        return key_emit(ctx, st, resp, ctx->json ? NULL : "backup");
    json_t *root = json_loads(resp, 0, NULL);
    const char *bk = json_string_value(json_object_get(json_object_get(root, "data"), "backup"));
    int rc = CLI_OK;
    mt_err err;
    if (!bk)
        rc = cli_fail("server answer has no backup");
    else if (mt_file_write_atomic(out, bk, strlen(bk), 0600, &err))
        rc = cli_fail("--out %s: %s", out, err.msg);
    else if (ctx->json)
        rc = cli_json_print(json_pack("{s:b, s:s}", "backed_up", 1, "out", out));
    else
        printf("backup of %s written to %s\n", ctx->pos[0], out);
    json_decref(root);
    mt_wipe(resp, strlen(resp));
    mesatee_free(resp);
    return rc;
}

int cli_cmd_key_restore(cli_ctx *ctx)
{
    const char *name = ctx->n_pos > 0 ? ctx->pos[0] : NULL;
    if (name && key_name_check(ctx, name))
        return CLI_USAGE;
    uint8_t *in = NULL;
    size_t n = 0;
    int rc = read_opt_file(ctx, "in", true, &in, &n);
    if (rc)
        return rc;
    while (n && (in[n - 1] == '\n' || in[n - 1] == '\r'))
        n--; /* the file `key backup --out` writes, or the printed line */
    json_t *b = json_pack("{s:s%}", "backup", (const char *)in, n);
    mt_wipe(in, n);
    free(in);
    if (!b)
        return cli_fail("--in: the backup is not text (base64 from `key backup`)");
    if (cli_opt_has(ctx, "force"))
        json_object_set_new(b, "force", json_true());
    char *resp = NULL;
    int st = key_post(ctx, "restore", name, b, &resp);
    mesatee_free(resp);
    if (st)
        return cli_fail("%s", mesatee_client_errmsg(ctx->client));
    if (ctx->json)
        return cli_json_print(json_pack("{s:b, s:s}", "restored", 1, "key", name ? name : ""));
    printf("restored%s%s\n", name ? " " : "", name ? name : "");
    return CLI_OK;
}

int cli_cmd_key_trim(cli_ctx *ctx)
{
    if (key_name_check(ctx, ctx->pos[0]))
        return CLI_USAGE;
    uint32_t v = 0;
    if (version_opt(ctx, "min-available-version", &v))
        return CLI_USAGE;
    if (v == 0)
        return cli_usage_error(ctx, "--min-available-version is required (a version from 1)");
    char *resp = NULL;
    char what[200];
    snprintf(what, sizeof what, "keys/%s/trim", ctx->pos[0]);
    int st = key_post(ctx, what, NULL, json_pack("{s:i}", "min_available_version", (int)v), &resp);
    return key_emit(ctx, st, resp, NULL);
}
