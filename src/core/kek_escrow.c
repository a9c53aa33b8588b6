/* kek_escrow: escrow of the KeyStore's root keys (POST
 * /v1/admin/keystore/escrow) and recovery of a lost KeyStore at start
 * (`serve --keystore-recover FILE --keystore-recover-key PEM...`), over
 * mt_escrow.h (docs/keystore.md "Escrow and recovery", docs/operations.md
 * "Lost TPM"). The escrow answer holds only ciphertext: the root keys
 * sealed under a key split among the recipients, each share encrypted to a
 * recipient's P-256 public key. Admin only; with release signers
 * (auditors) recorded also their signatures ("signatures", over the
 * document `mesatee admin keystore escrow draft` prints), as for a
 * release-policy change: an admin alone cannot take the keys out. Audited (object
 * "kek-escrow:T-of-N:SET", SET naming the recipients, see below). Thread-safety: a request handler under the core
 * lock; core_kek_recover runs in mt_core_open. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "mt_escrow.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_policy_sig.h"
#include "mt_util.h"

mt_status kek_escrow_handle(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    static const char *const keys[] = {"recipients", "threshold", "signatures", NULL};
    json_t *doc = mt_json_parse((const char *)x->req->body, x->req->body_len,
                                x->core->max_json_bytes, x->core->max_json_depth, x->err);
    if (!doc)
        return x->err->code ? x->err->code : MT_EINVAL;
    json_t *rc_list = NULL;
    const char *sigs = NULL;
    bool by = false;
    int64_t th = 1;
    const char *pems[MT_ESCROW_MAX_RECIPIENTS];
    size_t lens[MT_ESCROW_MAX_RECIPIENTS], n = 0;
    mt_status rc = json_is_object(doc)
                       ? MT_OK
                       : mt_err_set(x->err, MT_EINVAL, "the body must be a JSON object");
    if (!rc)
        rc = mt_json_only_keys(doc, keys, x->err);
    if (!rc)
        rc = mt_json_array(doc, "recipients", MT_ESCROW_MAX_RECIPIENTS, &rc_list, x->err);
    if (!rc && json_array_size(rc_list) == 0)
        rc = mt_err_set(x->err, MT_EINVAL, "field 'recipients': 1 to %d PEM texts expected",
                        MT_ESCROW_MAX_RECIPIENTS);
    if (!rc) {
        n = json_array_size(rc_list);
        rc = mt_json_int_opt(doc, "threshold", 1, (int64_t)n, &th, 1, x->err);
    }
    if (!rc)
        rc = mt_json_str_opt(doc, "signatures", MT_POLICY_SIG_FILE_MAX, &sigs, NULL, x->err);
    if (!rc) { /* audited also when refused (replaced by the set below) */
        char o[32];
        snprintf(o, sizeof o, "%lld-of-%zu", (long long)th, n);
        core_set_object(x, "kek-escrow", o);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        const json_t *v = json_array_get(rc_list, i);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > MT_ESCROW_PEM_MAX)
            rc = mt_err_set(x->err, MT_EINVAL,
                            "field 'recipients': item %zu: expected a PEM text of at most %u "
                            "bytes",
                            i + 1, MT_ESCROW_PEM_MAX);
        else {
            pems[i] = json_string_value(v);
            lens[i] = json_string_length(v);
        }
    }
    char *out = NULL;
    size_t ol = 0;
    if (!rc)
        rc = mt_keystore_escrow_signed(core_kek_keystore(x->core), pems, lens, n, (unsigned)th,
                                       sigs, sigs ? strlen(sigs) : 0, &out, &ol, &by, x->err);
    json_decref(doc);
    if (rc)
        return rc;
    mt_err perr;
    json_t *body = mt_json_parse(out, ol, MT_ESCROW_MAX_BYTES, 4, &perr);
    free(out);
    if (!body)
        return mt_err_set(x->err, MT_EINTERNAL, "escrow: %s", perr.msg);
    /* who can recover: the audit entry names the recipient set by the first
     * 16 hex of SHA-256 over the recipients' fingerprints (hex, in share
     * order), which anyone holding the escrow file recomputes */
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    uint8_t h[32];
    unsigned hl = 0;
    bool ok = mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) == 1;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(body, "shares"), i, s) {
        const char *fp = json_string_value(json_object_get(s, "recipient"));
        ok = ok && fp && EVP_DigestUpdate(mc, fp, strlen(fp)) == 1;
        if (fp)
            mt_info("KeyStore escrow: recipient %zu: SHA-256 of its public key %s", i + 1, fp);
    }
    ok = ok && EVP_DigestFinal_ex(mc, h, &hl) == 1;
    EVP_MD_CTX_free(mc);
    if (!ok) {
        json_decref(body);
        return mt_err_set(x->err, MT_EINTERNAL, "SHA-256 failed");
    }
    char hex[17], obj[64];
    mt_hex_encode(h, 8, hex);
    snprintf(obj, sizeof obj, "%lld-of-%zu:%.16s", (long long)th, n, hex);
    core_set_object(x, "kek-escrow", obj);
    mt_info("KeyStore: root keys escrowed to %zu recipient(s) (set %s), %lld needed to recover%s",
            n, hex, (long long)th, by ? " (auditor signatures checked)" : "");
    core_json_response(x, 200, body);
    return MT_OK;
}

mt_status core_kek_recover(mt_core *c, const char *req, size_t req_len, mt_keystore **ks,
                           mt_err *err)
{
    const mt_core_config *cfg = c->open_cfg;
    size_t n = cfg->n_keystore_recover_keys;
    if (n == 0 || n > MT_ESCROW_MAX_RECIPIENTS)
        return mt_err_set(err, MT_EINVAL,
                          "--keystore-recover needs 1 to %d --keystore-recover-key PEM files "
                          "(the recipients' private keys)",
                          MT_ESCROW_MAX_RECIPIENTS);
    uint8_t *esc = NULL, *keys[MT_ESCROW_MAX_RECIPIENTS] = {0};
    size_t el = 0, kl[MT_ESCROW_MAX_RECIPIENTS] = {0};
    mt_err ferr;
    mt_status rc = mt_file_read(cfg->keystore_recover, MT_ESCROW_MAX_BYTES, &esc, &el, &ferr);
    if (rc)
        rc = mt_err_set(err, rc, "--keystore-recover %s: %s", cfg->keystore_recover, ferr.msg);
    for (size_t i = 0; !rc && i < n; i++)
        if ((rc = mt_file_read(cfg->keystore_recover_keys[i], MT_ESCROW_PEM_MAX, &keys[i], &kl[i],
                               &ferr)))
            rc = mt_err_set(err, rc, "--keystore-recover-key %s: %s",
                            cfg->keystore_recover_keys[i], ferr.msg);
    if (!rc) {
        rc = mt_keystore_recover(c->tee, c->data_dir, c->keystore_collateral, req, req_len,
                                 (const char *)esc, el, (const char *const *)keys, kl, n, ks,
                                 err);
        /* MT_EPERM (too few keys) must not read as the release policy's
         * refusal, which the caller rewrites into "measurement not allowed" */
        if (rc == MT_EPERM)
            err->code = rc = MT_EINVAL;
        if (rc)
            mt_err_prefix(err, rc, "--keystore-recover %s: ", cfg->keystore_recover);
    }
    free(esc);
    for (size_t i = 0; i < n && i < MT_ESCROW_MAX_RECIPIENTS; i++) {
        if (keys[i])
            mt_wipe(keys[i], kl[i]);
        free(keys[i]);
    }
    return rc;
}
