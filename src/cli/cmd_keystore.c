/* cmd_keystore: the platform KeyStore's operator commands (issue 10), all
 * through the running server's admin API (only it holds the KeyStore):
 *   mesatee admin release show|allow HEX|revoke HEX [--kind K] [--signatures FILE]
 *   mesatee admin release draft allow|revoke HEX [--kind K]
 *   mesatee admin release draft --signers PEM [--threshold N]
 *   mesatee admin release signers --signers PEM [--threshold N] --signatures FILE
 *   mesatee admin keystore status|rotate|legacy HEX
 *   mesatee admin keystore escrow --recipient PEM... [--threshold N] [--signatures FILE]
 *           --out FILE | escrow draft --recipient PEM... [--threshold N] (cmd_escrow.c)
 * See docs/cli.md and docs/operations.md "KeyStore". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mt_keystore.h"
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

/* Prints the document auditors sign for "op value" (allow|revoke): the
 * server's policy after the change with seq + 1, sorted compact JSON and
 * "\n", made by the KeyStore's own edit (mt_keystore_release_draft), so it
 * is exactly what the server checks. */
static int release_draft(cli_ctx *ctx, const char *op, const char *kind, const char *value)
{
    char *resp = NULL;
    if (mesatee_call(ctx->client, "GET", "/v1/admin/release-policy", NULL, &resp) !=
        MESATEE_OK) {
        int rc = cli_fail("release draft: %s", mesatee_client_errmsg(ctx->client));
        mesatee_free(resp);
        return rc;
    }
    char *doc = NULL;
    mt_err err = {0};
    mt_status st = mt_keystore_release_draft(resp ? resp : "", resp ? strlen(resp) : 0,
                                             !strcmp(op, "allow"), kind, value, &doc, &err);
    mesatee_free(resp);
    if (st != MT_OK)
        return cli_fail("release draft: %s", err.msg);
    printf("%s", doc);
    free(doc);
    return CLI_OK;
}

/* --signers PEM [--threshold N]: the file's bytes (heap) and threshold
 * (0 = all). */
static int read_signers(cli_ctx *ctx, char **pem, size_t *len, unsigned *thr)
{
    const char *path = cli_opt_get(ctx, "signers"), *t = cli_opt_get(ctx, "threshold");
    *pem = NULL;
    *thr = 0;
    if (t) {
        char *end = NULL;
        long v = strtol(t, &end, 10);
        if (!*t || *end || v < 1 || v > 32 || t[0] == '+' || t[0] == ' ')
            return cli_usage_error(ctx, "--threshold must be a number 1 to 32");
        *thr = (unsigned)v;
    }
    uint8_t *buf = NULL;
    mt_err err = {0};
    if (mt_file_read(path, 16 * 1024, &buf, len, &err) != MT_OK)
        return cli_fail("--signers: %s", err.msg);
    *pem = (char *)buf;
    return CLI_OK;
}

/* Reads --signatures FILE into body["signatures"]. */
int cli_add_signatures(json_t *b, const char *sigfile)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err err = {0};
    if (mt_file_read(sigfile, 64 * 1024, &buf, &len, &err) != MT_OK)
        return cli_fail("--signatures: %s", err.msg);
    json_t *sv = json_stringn((const char *)buf, len);
    free(buf);
    if (!sv)
        return cli_fail("--signatures: %s is not a text file", sigfile);
    json_object_set_new(b, "signatures", sv);
    return CLI_OK;
}

/* admin release draft --signers / admin release signers: a signed change of
 * the recorded auditor set (the current auditors sign a document naming the
 * new set). */
static int release_signers(cli_ctx *ctx, bool draft)
{
    char *pem = NULL;
    size_t len = 0;
    unsigned thr = 0;
    int rc = read_signers(ctx, &pem, &len, &thr);
    if (rc != CLI_OK)
        return rc;
    if (draft) {
        char *resp = NULL, *doc = NULL;
        mt_err err = {0};
        if (mesatee_call(ctx->client, "GET", "/v1/admin/release-policy", NULL, &resp) !=
            MESATEE_OK)
            rc = cli_fail("release draft: %s", mesatee_client_errmsg(ctx->client));
        else if (mt_keystore_signers_draft(resp ? resp : "", resp ? strlen(resp) : 0, pem, len,
                                           thr, &doc, &err) != MT_OK)
            rc = cli_fail("release draft: %s", err.msg);
        else
            printf("%s", doc);
        mesatee_free(resp);
        free(doc);
        free(pem);
        return rc;
    }
    json_t *b = json_pack("{s:s%, s:i}", "pem", pem, len, "threshold", (int)thr);
    free(pem);
    if (!b)
        return cli_fail("--signers: the file is not text");
    const char *sigfile = cli_opt_get(ctx, "signatures");
    if (sigfile && (rc = cli_add_signatures(b, sigfile)) != CLI_OK) {
        json_decref(b);
        return rc;
    }
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!body)
        return cli_fail("out of memory");
    rc = call_print(ctx, "POST", "/v1/admin/release-policy/signers", body, "release signers");
    free(body);
    return rc;
}

int cli_cmd_admin_release(cli_ctx *ctx)
{
    const char *op = ctx->pos[0], *value = ctx->n_pos > 1 ? ctx->pos[1] : NULL;
    const char *kind = cli_opt_get(ctx, "kind");
    if (!kind)
        kind = "measurement";
    mt_err verr = {0};
    if (strcmp(kind, "measurement") && strcmp(kind, "soft_platform_key") &&
        strcmp(kind, "tpm2_ak") && strcmp(kind, "mrsigner") && strcmp(kind, "isv_prod_id") &&
        strcmp(kind, "min_svn"))
        return cli_usage_error(ctx, "--kind must be " MT_KEYSTORE_KINDS_TEXT);
    bool has_signers = cli_opt_get(ctx, "signers") != NULL;
    if (cli_opt_get(ctx, "threshold") && !has_signers)
        return cli_usage_error(ctx, "--threshold goes with --signers");
    if (has_signers && cli_opt_get(ctx, "kind"))
        return cli_usage_error(ctx, "--signers takes no --kind");
    if (!strcmp(op, "signers") || (!strcmp(op, "draft") && has_signers)) {
        if (value)
            return cli_usage_error(ctx, "release %s --signers PEM takes no value", op);
        if (!has_signers)
            return cli_usage_error(ctx, "release signers needs --signers PEM");
        if (!strcmp(op, "draft") && cli_opt_get(ctx, "signatures"))
            return cli_usage_error(ctx, "release draft takes no --signatures");
        return release_signers(ctx, !strcmp(op, "draft"));
    }
    if (has_signers)
        return cli_usage_error(ctx, "--signers goes with release signers or release draft");
    if (!strcmp(op, "show")) {
        if (value)
            return cli_usage_error(ctx, "release show takes no value");
        return call_print(ctx, "GET", "/v1/admin/release-policy", NULL, "release show");
    }
    if (!strcmp(op, "draft")) {
        const char *what = ctx->n_pos > 2 ? ctx->pos[2] : NULL;
        if (!value || (strcmp(value, "allow") && strcmp(value, "revoke")))
            return cli_usage_error(ctx, "expected release draft allow HEX or draft revoke HEX");
        if (!what || mt_keystore_check_value(kind, !strcmp(value, "allow"), what, &verr))
            return cli_usage_error(ctx, "release draft %s: %s", value,
                                   what ? verr.msg : "a value is required");
        if (cli_opt_get(ctx, "signatures"))
            return cli_usage_error(ctx, "release draft takes no --signatures");
        return release_draft(ctx, value, kind, what);
    }
    if (ctx->n_pos > 2)
        return cli_usage_error(ctx, "release %s takes one value", op);
    if (strcmp(op, "allow") && strcmp(op, "revoke"))
        return cli_usage_error(ctx, "expected show, allow VALUE, revoke VALUE, draft "
                                    "allow|revoke VALUE, signers or draft --signers PEM");
    if (!value || mt_keystore_check_value(kind, !strcmp(op, "allow"), value, &verr))
        return cli_usage_error(ctx, "release %s: %s", op, value ? verr.msg : "a value is required");
    json_t *b = json_pack("{s:s, s:s}", "kind", kind, "value", value);
    const char *sigfile = cli_opt_get(ctx, "signatures");
    int src;
    if (b && sigfile && (src = cli_add_signatures(b, sigfile)) != CLI_OK) {
        json_decref(b);
        return src;
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
        if (value && strcmp(value, "draft"))
            return cli_usage_error(ctx, "keystore escrow takes no value (or: escrow draft)");
        return cli_keystore_escrow(ctx, value != NULL); /* cmd_escrow.c */
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
