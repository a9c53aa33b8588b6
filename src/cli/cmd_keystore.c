/* cmd_keystore: the platform KeyStore's operator commands (issue 10), all
 * through the running server's admin API (only it holds the KeyStore):
 *   mesatee admin release show|allow HEX|revoke HEX [--kind K]
 *   mesatee admin keystore status|rotate|legacy HEX
 * See docs/cli.md and docs/operations.md "KeyStore". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
    if (strcmp(op, "allow") && strcmp(op, "revoke"))
        return cli_usage_error(ctx, "expected show, allow HEX or revoke HEX");
    if (!hex64(value))
        return cli_usage_error(ctx, "release %s needs a value of 64 lowercase hex characters "
                                    "(a measurement from `mesatee measure --output json`)",
                               op);
    char body[160], path[64];
    snprintf(body, sizeof body, "{\"kind\":\"%s\",\"value\":\"%s\"}", kind, value);
    snprintf(path, sizeof path, "/v1/admin/release-policy/%s", op);
    return call_print(ctx, "POST", path, body, !strcmp(op, "allow") ? "release allow"
                                                                    : "release revoke");
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
    if (strcmp(op, "legacy"))
        return cli_usage_error(ctx, "expected status, rotate or legacy HEX");
    if (!hex64(value))
        return cli_usage_error(ctx, "keystore legacy needs the old binary's sha256sum (64 "
                                    "lowercase hex characters)");
    char body[128];
    snprintf(body, sizeof body, "{\"measurement\":\"%s\"}", value);
    return call_print(ctx, "POST", "/v1/admin/keystore/legacy", body, "keystore legacy");
}
