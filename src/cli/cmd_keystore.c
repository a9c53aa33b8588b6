/* cmd_keystore: the platform KeyStore's operator commands (issue 10), all
 * through the running server's admin API (only it holds the KeyStore):
 *   mesatee admin release show|allow HEX|revoke HEX [--kind K] [--signatures FILE]
 *   mesatee admin release draft allow|revoke HEX [--kind K]
 *   mesatee admin keystore status|rotate|legacy HEX
 *   mesatee admin keystore escrow --recipient PEM... [--threshold N] --out FILE (cmd_escrow.c)
 * See docs/cli.md and docs/operations.md "KeyStore". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mt_util.h"

/* Sends the call and prints the answer (pretty JSON; one line with
 * --output json). */
static int call_print(cli_ctx *ctx, const char *method, const char *path, const char *body,
                      const char *what)
{
    char *resp = NULL;
    if (mesatee_call(ctx->client, method, path, body, &resp) != MESATEE_OK) {
        int rc = cli_fail("%s: %s", what, mesatee_client_errmsg(ctx->client));
        mesatee_free(resp);
        return rc;
    }
    json_error_t je;
    json_t *o = json_loads(resp ? resp : "", 0, &je);
    mesatee_free(resp);
    if (!o)
        return cli_fail("%s: the server's answer is not understood", what);
    char *t = json_dumps(o, ctx->json ? JSON_COMPACT : JSON_INDENT(2));
    json_decref(o);
    if (!t)
        return cli_fail("out of memory");
    printf("%s\n", t);
    free(t);
    return CLI_OK;
}

static bool hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* A release-policy value: 64 lowercase hex characters, or 96 for a
 * measurement (48-byte SEV-SNP MEASUREMENT / TDX MRTD; the server checks the
 * length its level needs). */
static bool policy_hex(const char *s, const char *kind)
{
    return hex64(s) || (!strcmp(kind, "measurement") && s && strlen(s) == 96 &&
                        strspn(s, "0123456789abcdef") == 96);
}

/* Prints the document auditors sign for "op value" (allow|revoke): the
 * server's policy after the change with seq + 1, sorted compact JSON and
 * "\n", exactly what the KeyStore checks (mt_keystore.h). */
static int release_draft(cli_ctx *ctx, const char *op, const char *kind, const char *value)
{
    static const char *const lists[][2] = {{"measurement", "measurements"},
                                           {"soft_platform_key", "soft_platform_keys"},
                                           {"tpm2_ak", "tpm2_aks"}};
    char *resp = NULL;
    if (mesatee_call(ctx->client, "GET", "/v1/admin/release-policy", NULL, &resp) !=
        MESATEE_OK) {
        int rc = cli_fail("release draft: %s", mesatee_client_errmsg(ctx->client));
        mesatee_free(resp);
        return rc;
    }
    json_error_t je;
    json_t *o = json_loads(resp ? resp : "", 0, &je);
    mesatee_free(resp);
    json_t *doc = json_object();
    static const char *const keep[] = {"level", "measurements", "soft_platform_keys",
                                       "tpm2_aks", "seq"};
    for (size_t i = 0; o && doc && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(o, keep[i]);
        if (v)
            json_object_set(doc, keep[i], v);
    }
    json_decref(o);
    const char *list = NULL;
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(kind, lists[i][0]))
            list = lists[i][1];
    json_t *arr = doc ? json_object_get(doc, list) : NULL;
    json_t *seq = doc ? json_object_get(doc, "seq") : NULL;
    if (!json_is_array(arr) || !json_is_integer(seq)) {
        json_decref(doc);
        return cli_fail("release draft: the server's answer is not understood");
    }
    arr = json_copy(arr);
    size_t i, at = SIZE_MAX;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), value))
            at = i;
    }
    int rc = CLI_OK;
    if (!strcmp(op, "allow") && at != SIZE_MAX)
        rc = cli_fail("release draft: %s is already allowed (nothing to sign)", value);
    else if (!strcmp(op, "revoke") && at == SIZE_MAX)
        rc = cli_fail("release draft: that value is not in the release policy");
    else if (!strcmp(op, "allow"))
        json_array_append_new(arr, json_string(value));
    else
        json_array_remove(arr, at);
    if (rc == CLI_OK) {
        json_object_set_new(doc, list, arr);
        arr = NULL;
        json_object_set_new(doc, "seq", json_integer(json_integer_value(seq) + 1));
        json_object_set_new(doc, "mesatee_release_policy", json_integer(1));
        char *t = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        if (!t)
            rc = cli_fail("out of memory");
        else
            printf("%s\n", t);
        free(t);
    }
    json_decref(arr);
    json_decref(doc);
    return rc;
}

int cli_cmd_admin_release(cli_ctx *ctx)
{
    const char *op = ctx->pos[0], *value = ctx->n_pos > 1 ? ctx->pos[1] : NULL;
    const char *kind = cli_opt_get(ctx, "kind");
    if (!kind)
        kind = "measurement";
    if (strcmp(kind, "measurement") && strcmp(kind, "soft_platform_key") &&
        strcmp(kind, "tpm2_ak"))
        return cli_usage_error(ctx, "--kind must be measurement, soft_platform_key or tpm2_ak");
    if (!strcmp(op, "show")) {
        if (value)
            return cli_usage_error(ctx, "release show takes no value");
        return call_print(ctx, "GET", "/v1/admin/release-policy", NULL, "release show");
    }
    if (!strcmp(op, "draft")) {
        const char *what = ctx->n_pos > 2 ? ctx->pos[2] : NULL;
        if (!value || (strcmp(value, "allow") && strcmp(value, "revoke")))
            return cli_usage_error(ctx, "expected release draft allow HEX or draft revoke HEX");
        if (!policy_hex(what, kind))
            return cli_usage_error(ctx, "release draft %s needs a value of 64 lowercase hex "
                                        "characters (96 for a measurement at sev-snp or tdx)",
                                   value);
        if (cli_opt_get(ctx, "signatures"))
            return cli_usage_error(ctx, "release draft takes no --signatures");
        return release_draft(ctx, value, kind, what);
    }
    if (ctx->n_pos > 2)
        return cli_usage_error(ctx, "release %s takes one value", op);
    if (strcmp(op, "allow") && strcmp(op, "revoke"))
        return cli_usage_error(ctx, "expected show, allow HEX, revoke HEX or draft allow|revoke HEX");
    if (!policy_hex(value, kind))
        return cli_usage_error(ctx, "release %s needs a value of 64 lowercase hex characters "
                                    "(a measurement from `mesatee measure --output json`; 96 "
                                    "for the MEASUREMENT / MRTD at sev-snp or tdx)",
                               op);
    json_t *b = json_pack("{s:s, s:s}", "kind", kind, "value", value);
    const char *sigfile = cli_opt_get(ctx, "signatures");
    if (b && sigfile) {
        uint8_t *buf = NULL;
        size_t len = 0;
        mt_err err = {0};
        if (mt_file_read(sigfile, 64 * 1024, &buf, &len, &err) != MT_OK) {
            json_decref(b);
            return cli_fail("--signatures: %s", err.msg);
        }
        json_t *sv = json_stringn((const char *)buf, len);
        free(buf);
        if (!sv) {
            json_decref(b);
            return cli_fail("--signatures: %s is not a text file", sigfile);
        }
        json_object_set_new(b, "signatures", sv);
    }
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!body)
        return cli_fail("out of memory");
    char path[64];
    snprintf(path, sizeof path, "/v1/admin/release-policy/%s", op);
    int rc = call_print(ctx, "POST", path, body, !strcmp(op, "allow") ? "release allow"
                                                                      : "release revoke");
    free(body);
    return rc;
}

int cli_cmd_admin_keystore(cli_ctx *ctx)
{
    const char *op = ctx->pos[0], *value = ctx->n_pos > 1 ? ctx->pos[1] : NULL;
    if (!strcmp(op, "status") || !strcmp(op, "rotate")) {
        if (value)
            return cli_usage_error(ctx, "keystore %s takes no value", op);
        if (!strcmp(op, "status"))
            return call_print(ctx, "GET", "/v1/admin/keystore", NULL, "keystore status");
        return call_print(ctx, "POST", "/v1/admin/keystore/rotate", NULL, "keystore rotate");
    }
    if (!strcmp(op, "escrow")) {
        if (value)
            return cli_usage_error(ctx, "keystore escrow takes no value");
        return cli_keystore_escrow(ctx); /* cmd_escrow.c */
    }
    if (strcmp(op, "legacy"))
        return cli_usage_error(ctx, "expected status, rotate, legacy HEX or escrow");
    if (!hex64(value))
        return cli_usage_error(ctx, "keystore legacy needs the old binary's sha256sum (64 "
                                    "lowercase hex characters)");
    char body[128];
    snprintf(body, sizeof body, "{\"measurement\":\"%s\"}", value);
    return call_print(ctx, "POST", "/v1/admin/keystore/legacy", body, "keystore legacy");
}
