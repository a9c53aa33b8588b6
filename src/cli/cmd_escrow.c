/* cmd_escrow: `mesatee admin keystore escrow --recipient PEM... [--threshold N]
 * --out FILE` (issue 10, lost TPM): asks the running server (POST
 * /v1/admin/keystore/escrow, admin) for an escrow of the KeyStore's root
 * keys to the recipients' P-256 public keys (certificates or PUBLIC KEY
 * PEMs) and writes it to FILE. The file holds only ciphertext; any
 * threshold of the recipients' private keys recovers the keys with `serve
 * --keystore-recover` (docs/operations.md "Lost TPM").
 * With auditors (release signers) recorded the server also needs their
 * signatures: `admin keystore escrow draft --recipient PEM... [--threshold N]`
 * prints the document they sign (`mesatee policy sign`), and
 * `--signatures FILE` passes the result. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mt_escrow.h"
#include "mt_util.h"

#define MAX_RECIPIENTS 16
#define PEM_MAX (64 * 1024)

/* Prints the document auditors sign for this escrow (mt_keystore_escrow_draft
 * over the server's release policy), so it is exactly what the server checks. */
static int escrow_draft(cli_ctx *ctx, json_t *recipients, unsigned th)
{
    size_t n = json_array_size(recipients);
    const char *pems[MAX_RECIPIENTS];
    size_t lens[MAX_RECIPIENTS];
    for (size_t i = 0; i < n && i < MAX_RECIPIENTS; i++) {
        pems[i] = json_string_value(json_array_get(recipients, i));
        lens[i] = json_string_length(json_array_get(recipients, i));
    }
    char *resp = NULL, *doc = NULL;
    mt_err err = {0};
    int rc = CLI_OK;
    if (mesatee_call(ctx->client, "GET", "/v1/admin/release-policy", NULL, &resp) !=
        MESATEE_OK)
        rc = cli_fail("keystore escrow draft: %s", mesatee_client_errmsg(ctx->client));
    else if (mt_keystore_escrow_draft(resp ? resp : "", resp ? strlen(resp) : 0, pems, lens, n,
                                      th, &doc, &err) != MT_OK)
        rc = cli_fail("keystore escrow draft: %s", err.msg);
    else
        printf("%s", doc);
    mesatee_free(resp);
    free(doc);
    return rc;
}

int cli_keystore_escrow(cli_ctx *ctx, bool draft)
{
    const char *files[MAX_RECIPIENTS + 1];
    int n = cli_opt_all(ctx, "recipient", files, MAX_RECIPIENTS + 1);
    const char *out = cli_opt_get(ctx, "out"), *ts = cli_opt_get(ctx, "threshold");
    if (n == 0)
        return cli_usage_error(ctx, "keystore escrow needs --recipient PEM (1 to %d)",
                               MAX_RECIPIENTS);
    if (n > MAX_RECIPIENTS)
        return cli_usage_error(ctx, "keystore escrow takes at most %d --recipient",
                               MAX_RECIPIENTS);
    const char *sigfile = cli_opt_get(ctx, "signatures");
    if (draft && (out || sigfile))
        return cli_usage_error(ctx, "keystore escrow draft takes no --out or --signatures (it "
                                    "prints the document auditors sign)");
    if (!out && !draft)
        return cli_usage_error(ctx, "keystore escrow needs --out FILE");
    long long th = 1;
    if (ts && (strspn(ts, "0123456789") != strlen(ts) || !*ts || strlen(ts) > 3 ||
               (th = strtoll(ts, NULL, 10)) < 1 || th > n))
        return cli_usage_error(ctx, "--threshold: expected an integer 1 to %d (the number of "
                                    "recipients)",
                               n);
    json_t *body = json_pack("{s:[], s:I}", "recipients", "threshold", (json_int_t)th);
    if (!body)
        return cli_fail("out of memory");
    for (int i = 0; i < n; i++) {
        uint8_t *pem = NULL;
        size_t len = 0;
        mt_err err = {0};
        if (mt_file_read(files[i], PEM_MAX, &pem, &len, &err) != MT_OK) {
            json_decref(body);
            return cli_fail("--recipient %s: %s", files[i], err.msg);
        }
        json_t *s = json_stringn((const char *)pem, len);
        free(pem);
        if (!s || json_array_append_new(json_object_get(body, "recipients"), s)) {
            json_decref(body);
            return cli_fail("--recipient %s: not a PEM text file", files[i]);
        }
    }
    if (draft) {
        int rc = escrow_draft(ctx, json_object_get(body, "recipients"), (unsigned)th);
        json_decref(body);
        return rc;
    }
    if (sigfile) {
        int rc = cli_add_signatures(body, sigfile);
        if (rc != CLI_OK) {
            json_decref(body);
            return rc;
        }
    }
    char *b = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!b)
        return cli_fail("out of memory");
    char *resp = NULL;
    mesatee_status st = mesatee_call(ctx->client, "POST", "/v1/admin/keystore/escrow", b, &resp);
    free(b);
    if (st != MESATEE_OK) {
        int rc = cli_fail("keystore escrow: %s", mesatee_client_errmsg(ctx->client));
        mesatee_free(resp);
        return rc;
    }
    json_error_t je;
    json_t *doc = json_loads(resp ? resp : "", 0, &je);
    mesatee_free(resp);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_int_t nv = doc ? (json_int_t)json_array_size(json_object_get(doc, "versions")) : 0;
    json_decref(doc);
    if (!text)
        return cli_fail("keystore escrow: the server's answer is not understood");
    mt_err err = {0};
    size_t tl = strlen(text);
    text[tl] = '\n'; /* one line ending; the NUL is not written */
    mt_status ws = mt_file_write_atomic(out, text, tl + 1, 0600, &err);
    free(text);
    if (ws != MT_OK)
        return cli_fail("--out %s: %s", out, err.msg);
    if (ctx->json)
        printf("{\"out\":\"%s\",\"versions\":%lld,\"recipients\":%d,\"threshold\":%lld}\n", out,
               (long long)nv, n, th);
    else
        printf("escrow of %lld root key version(s) to %d recipient(s), %lld needed to recover, "
               "written to %s\n",
               (long long)nv, n, th, out);
    return CLI_OK;
}
