/* cmd_key: `mesatee key create|read|list|rotate|config|delete|encrypt|decrypt|
 * rewrap|datakey|sign|verify|hmac|random|hash|import|grant|revoke`, the CLI of
 * the KeyStore's transit API (docs/keystore.md, docs/cli.md) over libmesatee's
 * mesatee_transit_* calls (mesatee_call for the rest). Text output prints the
 * answer's `data` as "key: value" lines, or the one value a command makes
 * (a ciphertext, a signature); --output json prints the server's answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cmd_key.h"
#include "mesatee.h"
#include "mt_util.h"

#define KEY_MAX_INPUT (32u * 1024u * 1024u) /* --in files */

static int key_client_fail(cli_ctx *ctx)
{
    return cli_fail("%s", mesatee_client_errmsg(ctx->client));
}

/* Prints an answer: json: unchanged; text: field `field` of data, or every
 * member of data as "key: value" (field NULL). Frees resp. */
int key_emit(cli_ctx *ctx, int st, char *resp, const char *field)
{
    if (st != MESATEE_OK) {
        mesatee_free(resp);
        return key_client_fail(ctx);
    }
    int rc = CLI_OK;
    if (ctx->json) {
        printf("%s\n", resp && *resp ? resp : "{}");
    } else {
        json_t *root = resp && *resp ? json_loads(resp, 0, NULL) : NULL;
        json_t *d = json_object_get(root, "data");
        if (!root && resp && *resp) {
            rc = cli_fail("server answer is not JSON");
        } else if (field) {
            const char *v = json_string_value(json_object_get(d, field));
            if (v)
                printf("%s\n", v);
            else
                rc = cli_fail("server answer has no '%s'", field);
        } else if (json_is_object(d)) {
            const char *k;
            json_t *v;
            json_object_foreach(d, k, v)
            {
                char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                printf("%s: %s\n", k, json_is_string(v) ? json_string_value(v) : s ? s : "?");
                free(s);
            }
        }
        json_decref(root);
    }
    if (resp)
        mt_wipe(resp, strlen(resp));
    mesatee_free(resp);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = cli_fail("cannot write output: %s", strerror(errno));
    return rc;
}

/* Reads the file of option `opt` (required when req). */
int read_opt_file(cli_ctx *ctx, const char *opt, bool req, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char *p = cli_opt_get(ctx, opt);
    if (!p)
        return req ? cli_usage_error(ctx, "--%s is required", opt) : CLI_OK;
    mt_err err;
    if (mt_file_read(p, KEY_MAX_INPUT, out, n, &err))
        return cli_fail("--%s %s: %s", opt, p, err.msg);
    return CLI_OK;
}

/* Parses a version option (0 when absent). */
int version_opt(cli_ctx *ctx, const char *opt, uint32_t *v)
{
    *v = 0;
    const char *s = cli_opt_get(ctx, opt);
    if (!s)
        return CLI_OK;
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(s, &end, 10);
    if (!*s || *end || errno || x > 1000000 || s[0] == '-')
        return cli_usage_error(ctx, "--%s: expected a version number from 0 to 1000000", opt);
    *v = (uint32_t)x;
    return CLI_OK;
}

/* A key name as a path segment: "name" or "owner:name" characters only
 * (the server checks the rest); CLI_USAGE otherwise. */
int key_name_check(cli_ctx *ctx, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 129 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != n)
        return cli_usage_error(ctx, "invalid key name: 1 to 64 of [A-Za-z0-9_.-], or owner:name");
    return CLI_OK;
}

/* POSTs body (consumed) to /v1/transit/<what>/<name><tail> with mesatee_call. */
int key_post(cli_ctx *ctx, const char *what, const char *name, json_t *body, char **resp)
{
    *resp = NULL;
    char path[256];
    snprintf(path, sizeof path, "/v1/transit/%s%s%s", what, name ? "/" : "", name ? name : "");
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int st = mesatee_call(ctx->client, "POST", path, b ? b : "{}", resp);
    if (b) {
        mt_wipe(b, strlen(b));
        free(b);
    }
    return st;
}

json_t *b64_json(const uint8_t *p, size_t n)
{
    char *s = mt_b64_encode(p ? p : (const uint8_t *)"", n);
    json_t *j = s ? json_string(s) : NULL;
    if (s)
        mt_wipe(s, strlen(s));
    free(s);
    return j;
}

/* ---- keys ---------------------------------------------------------------- */

int cli_cmd_key_create(cli_ctx *ctx)
{
    char *resp = NULL;
    json_t *flags = key_vault_flags(ctx, true);
    if (flags) { /* Vault options (cmd_key_vault.c): the plain POST */
        if (key_name_check(ctx, ctx->pos[0])) {
            json_decref(flags);
            return CLI_USAGE;
        }
        if (cli_opt_get(ctx, "type"))
            json_object_set_new(flags, "type", json_string(cli_opt_get(ctx, "type")));
        int st = key_post(ctx, "keys", ctx->pos[0], flags, &resp);
        return key_emit(ctx, st, resp, NULL);
    }
    int st = mesatee_transit_key_create(ctx->client, ctx->pos[0], cli_opt_get(ctx, "type"), &resp);
    return key_emit(ctx, st, resp, NULL);
}

int cli_cmd_key_read(cli_ctx *ctx)
{
    char *resp = NULL;
    int st = mesatee_transit_key_read(ctx->client, ctx->pos[0], &resp);
    return key_emit(ctx, st, resp, NULL);
}

int cli_cmd_key_list(cli_ctx *ctx)
{
    char *names = NULL;
    int st = mesatee_transit_key_list(ctx->client, &names);
    if (st)
        return key_client_fail(ctx);
    int rc = CLI_OK;
    if (ctx->json) {
        printf("{\"keys\":%s}\n", names);
    } else {
        json_t *a = json_loads(names, 0, NULL);
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) printf("%s\n", json_string_value(v));
        json_decref(a);
    }
    mesatee_free(names);
    if (fflush(stdout) != 0)
        rc = cli_fail("cannot write output: %s", strerror(errno));
    return rc;
}

int cli_cmd_key_rotate(cli_ctx *ctx)
{
    char *resp = NULL;
    int st = mesatee_transit_key_rotate(ctx->client, ctx->pos[0], &resp);
    return key_emit(ctx, st, resp, NULL);
}

int cli_cmd_key_config(cli_ctx *ctx)
{
    json_t *b = json_object();
    uint32_t v;
    int rc;
    if (cli_opt_has(ctx, "min-decryption-version")) {
        if ((rc = version_opt(ctx, "min-decryption-version", &v)))
            goto bad;
        json_object_set_new(b, "min_decryption_version", json_integer(v));
    }
    if (cli_opt_has(ctx, "min-encryption-version")) {
        if ((rc = version_opt(ctx, "min-encryption-version", &v)))
            goto bad;
        json_object_set_new(b, "min_encryption_version", json_integer(v));
    }
    const char *da = cli_opt_get(ctx, "deletion-allowed");
    if (da) {
        if (strcmp(da, "true") && strcmp(da, "false")) {
            rc = cli_usage_error(ctx, "--deletion-allowed: true or false");
            goto bad;
        }
        json_object_set_new(b, "deletion_allowed", json_boolean(!strcmp(da, "true")));
    }
    json_t *flags = key_vault_flags(ctx, false); /* --exportable, --allow-plaintext-backup */
    if (flags)
        json_object_update(b, flags);
    json_decref(flags);
    if (json_object_size(b) == 0) {
        rc = cli_usage_error(ctx, "nothing to configure: give at least one option");
        goto bad;
    }
    char *cfg = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char *resp = NULL;
    int st = mesatee_transit_key_config(ctx->client, ctx->pos[0], cfg, &resp);
    free(cfg);
    return key_emit(ctx, st, resp, NULL);
bad:
    json_decref(b);
    return rc;
}

int cli_cmd_key_delete(cli_ctx *ctx)
{
    int st = mesatee_transit_key_delete(ctx->client, ctx->pos[0]);
    if (st)
        return key_client_fail(ctx);
    if (ctx->json)
        return cli_json_print(json_pack("{s:b, s:s}", "deleted", 1, "key", ctx->pos[0]));
    printf("deleted %s\n", ctx->pos[0]);
    return CLI_OK;
}

int cli_cmd_key_import(cli_ctx *ctx)
{
    uint8_t *m = NULL;
    size_t n = 0;
    int rc = read_opt_file(ctx, "material", true, &m, &n);
    if (rc)
        return rc;
    char *resp = NULL;
    int st = mesatee_transit_key_import(ctx->client, ctx->pos[0], cli_opt_get(ctx, "type"), m, n,
                                        cli_opt_has(ctx, "allow-rotation"), &resp);
    mt_wipe(m, n);
    free(m);
    return key_emit(ctx, st, resp, NULL);
}

int cli_cmd_key_grant(cli_ctx *ctx)
{
    const char *ops[16];
    int n = cli_opt_all(ctx, "op", ops, 16);
    const char *user = cli_opt_get(ctx, "user");
    if (!user)
        return cli_usage_error(ctx, "--user is required");
    if (n < 1)
        return cli_usage_error(ctx, "give at least one --op");
    char *resp = NULL;
    int st = mesatee_transit_grant(ctx->client, ctx->pos[0], user, ops, (size_t)n, &resp);
    return key_emit(ctx, st, resp, NULL);
}

int cli_cmd_key_revoke(cli_ctx *ctx)
{
    const char *user = cli_opt_get(ctx, "user");
    if (!user)
        return cli_usage_error(ctx, "--user is required");
    int st = mesatee_transit_revoke(ctx->client, ctx->pos[0], user);
    if (st)
        return key_client_fail(ctx);
    if (ctx->json)
        return cli_json_print(json_pack("{s:b, s:s, s:s}", "revoked", 1, "key", ctx->pos[0],
                                        "user", user));
    printf("revoked %s on %s\n", user, ctx->pos[0]);
    return CLI_OK;
}

/* ---- encryption -------------------------------------------------------------- */

int cli_cmd_key_encrypt(cli_ctx *ctx)
{
    uint8_t *in = NULL, *aad = NULL;
    size_t n = 0, an = 0;
    uint32_t v = 0;
    int rc;
    if ((rc = version_opt(ctx, "key-version", &v)) ||
        (rc = read_opt_file(ctx, "in", true, &in, &n)) ||
        (rc = read_opt_file(ctx, "aad-file", false, &aad, &an))) {
        free(in);
        return rc;
    }
    if (cli_opt_get(ctx, "context")) { /* a derived key (cmd_key_vault.c) */
        rc = key_encrypt_context(ctx, in, n, aad, an, v);
        mt_wipe(in, n);
        free(in);
        free(aad);
        return rc;
    }
    char *ct = NULL;
    int st = mesatee_transit_encrypt(ctx->client, ctx->pos[0], in, n, aad, an, v, &ct);
    mt_wipe(in, n);
    free(in);
    free(aad);
    if (st)
        return key_client_fail(ctx);
    if (ctx->json)
        rc = cli_json_print(json_pack("{s:s}", "ciphertext", ct));
    else
        printf("%s\n", ct);
    mesatee_free(ct);
    return rc;
}

int cli_cmd_key_decrypt(cli_ctx *ctx)
{
    uint8_t *aad = NULL, *pt = NULL;
    size_t an = 0, pn = 0;
    const char *out = cli_opt_get(ctx, "out");
    int rc = read_opt_file(ctx, "aad-file", false, &aad, &an);
    if (rc)
        return rc;
    int st = cli_opt_get(ctx, "context")
                 ? key_decrypt_context(ctx, aad, an, &pt, &pn) /* cmd_key_vault.c */
                 : mesatee_transit_decrypt(ctx->client, ctx->pos[0], ctx->pos[1], aad, an, &pt,
                                           &pn);
    if (st == -1) { /* an answer key_decrypt_context refused; it said why */
        free(aad);
        return CLI_FAIL;
    }
    free(aad);
    if (st)
        return key_client_fail(ctx);
    mt_err err;
    if (out) {
        if (mt_file_write_atomic(out, pt, pn, 0600, &err))
            rc = cli_fail("--out %s: %s", out, err.msg);
        else if (ctx->json)
            rc = cli_json_print(json_pack("{s:b, s:s}", "decrypted", 1, "out", out));
    } else if (fwrite(pt, 1, pn, stdout) != pn || fflush(stdout) != 0) {
        rc = cli_fail("cannot write output: %s", strerror(errno));
    }
    mt_wipe(pt, pn);
    mesatee_free(pt);
    return rc;
}

int cli_cmd_key_rewrap(cli_ctx *ctx)
{
    uint32_t v = 0;
    int rc = key_name_check(ctx, ctx->pos[0]);
    if (!rc)
        rc = version_opt(ctx, "key-version", &v);
    if (rc)
        return rc;
    json_t *b = json_pack("{s:s}", "ciphertext", ctx->pos[1]);
    if (v)
        json_object_set_new(b, "key_version", json_integer(v));
    key_context_set(ctx, b);
    char *resp = NULL;
    int st = key_post(ctx, "rewrap", ctx->pos[0], b, &resp);
    return key_emit(ctx, st, resp, ctx->json ? NULL : "ciphertext");
}

int cli_cmd_key_datakey(cli_ctx *ctx)
{
    const char *bits = cli_opt_get(ctx, "bits");
    long nb = 256;
    if (key_name_check(ctx, ctx->pos[0]))
        return CLI_USAGE;
    if (bits) {
        char *end = NULL;
        nb = strtol(bits, &end, 10);
        if (!*bits || *end || (nb != 128 && nb != 256 && nb != 512))
            return cli_usage_error(ctx, "--bits: 128, 256 or 512");
    }
    char what[32];
    snprintf(what, sizeof what, "datakey/%s", cli_opt_has(ctx, "wrapped") ? "wrapped" : "plaintext");
    char *resp = NULL;
    json_t *b = json_pack("{s:i}", "bits", (int)nb);
    key_context_set(ctx, b);
    int st = key_post(ctx, what, ctx->pos[0], b, &resp);
    return key_emit(ctx, st, resp, NULL);
}

/* ---- signatures ------------------------------------------------------------------- */

int cli_cmd_key_sign(cli_ctx *ctx)
{
    uint8_t *in = NULL;
    size_t n = 0;
    uint32_t v = 0;
    int rc;
    if ((rc = version_opt(ctx, "key-version", &v)) ||
        (rc = read_opt_file(ctx, "in", true, &in, &n)))
        return rc;
    char *sig = NULL;
    int st = mesatee_transit_sign(ctx->client, ctx->pos[0], in, n, cli_opt_get(ctx, "hash"),
                                  cli_opt_has(ctx, "prehashed"),
                                  cli_opt_get(ctx, "signature-algorithm"),
                                  cli_opt_get(ctx, "marshaling"), v, &sig);
    free(in);
    if (st)
        return key_client_fail(ctx);
    if (ctx->json)
        rc = cli_json_print(json_pack("{s:s}", "signature", sig));
    else
        printf("%s\n", sig);
    mesatee_free(sig);
    return rc;
}

int cli_cmd_key_verify(cli_ctx *ctx)
{
    uint8_t *in = NULL;
    size_t n = 0;
    int rc = key_name_check(ctx, ctx->pos[0]);
    if (!rc)
        rc = read_opt_file(ctx, "in", true, &in, &n);
    if (rc)
        return rc;
    int valid = 0, st;
    if (cli_opt_has(ctx, "hmac")) {
        json_t *b = json_pack("{s:o, s:s}", "input", b64_json(in, n), "hmac", ctx->pos[1]);
        if (cli_opt_get(ctx, "hash"))
            json_object_set_new(b, "hash_algorithm", json_string(cli_opt_get(ctx, "hash")));
        char *resp = NULL;
        st = key_post(ctx, "verify", ctx->pos[0], b, &resp);
        json_t *root = st ? NULL : json_loads(resp, 0, NULL);
        valid = json_is_true(json_object_get(json_object_get(root, "data"), "valid"));
        json_decref(root);
        mesatee_free(resp);
    } else {
        st = mesatee_transit_verify(ctx->client, ctx->pos[0], in, n, cli_opt_get(ctx, "hash"),
                                    cli_opt_has(ctx, "prehashed"),
                                    cli_opt_get(ctx, "signature-algorithm"),
                                    cli_opt_get(ctx, "marshaling"), ctx->pos[1], &valid);
    }
    free(in);
    if (st)
        return key_client_fail(ctx);
    if (ctx->json)
        rc = cli_json_print(json_pack("{s:b}", "valid", valid));
    else
        printf("%s\n", valid ? "valid" : "invalid");
    return rc ? rc : valid ? CLI_OK : CLI_FAIL;
}

int cli_cmd_key_hmac(cli_ctx *ctx)
{
    uint8_t *in = NULL;
    size_t n = 0;
    uint32_t v = 0;
    int rc;
    if ((rc = key_name_check(ctx, ctx->pos[0])) || (rc = version_opt(ctx, "key-version", &v)) ||
        (rc = read_opt_file(ctx, "in", true, &in, &n)))
        return rc;
    json_t *b = json_pack("{s:o}", "input", b64_json(in, n));
    free(in);
    if (cli_opt_get(ctx, "hash"))
        json_object_set_new(b, "algorithm", json_string(cli_opt_get(ctx, "hash")));
    if (v)
        json_object_set_new(b, "key_version", json_integer(v));
    char *resp = NULL;
    int st = key_post(ctx, "hmac", ctx->pos[0], b, &resp);
    return key_emit(ctx, st, resp, ctx->json ? NULL : "hmac");
}

/* ---- random, hash ------------------------------------------------------------------ */

int cli_cmd_key_random(cli_ctx *ctx)
{
    const char *bs = cli_opt_get(ctx, "bytes");
    long nb = 32;
    if (bs) {
        char *end = NULL;
        nb = strtol(bs, &end, 10);
        if (!*bs || *end || nb < 1 || nb > 65536)
            return cli_usage_error(ctx, "--bytes: 1 to 65536");
    }
    const char *fmt = cli_opt_get(ctx, "format");
    json_t *b = json_pack("{s:i}", "bytes", (int)nb);
    if (fmt)
        json_object_set_new(b, "format", json_string(fmt));
    char *resp = NULL;
    int st = key_post(ctx, "random", NULL, b, &resp);
    return key_emit(ctx, st, resp, ctx->json ? NULL : "random_bytes");
}

int cli_cmd_key_hash(cli_ctx *ctx)
{
    uint8_t *in = NULL;
    size_t n = 0;
    int rc = read_opt_file(ctx, "in", true, &in, &n);
    if (rc)
        return rc;
    json_t *b = json_pack("{s:o}", "input", b64_json(in, n));
    free(in);
    if (cli_opt_get(ctx, "hash"))
        json_object_set_new(b, "algorithm", json_string(cli_opt_get(ctx, "hash")));
    if (cli_opt_get(ctx, "format"))
        json_object_set_new(b, "format", json_string(cli_opt_get(ctx, "format")));
    char *resp = NULL;
    int st = key_post(ctx, "hash", NULL, b, &resp);
    return key_emit(ctx, st, resp, ctx->json ? NULL : "sum");
}
