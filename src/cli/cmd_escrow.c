/* cmd_escrow: `mesatee admin keystore escrow --recipient PEM... [--threshold N]
 * --out FILE` (issue 10, lost TPM): asks the running server (POST
 * /v1/admin/keystore/escrow, admin) for an escrow of the KeyStore's root
 * keys to the recipients' P-256 public keys (certificates or PUBLIC KEY
 * PEMs) and writes it to FILE. The file holds only ciphertext; any
 * threshold of the recipients' private keys recovers the keys with `serve
 * --keystore-recover` (docs/operations.md "Lost TPM"). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mt_util.h"

#define MAX_RECIPIENTS 16
#define PEM_MAX (64 * 1024)

int cli_keystore_escrow(cli_ctx *ctx)
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
    if (!out)
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
