/* mt_policy_sig: auditor signatures over a policy file; see mt_policy_sig.h. */
#include "mt_policy_sig.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_util.h"

#define B64_LINE_MAX 100 /* base64 of a 72-byte DER signature is 96 characters */
#define SIGNERS_FILE_MAX (64u * 1024u)

/* ---- reader ------------------------------------------------------------- */

/* The next "\n"-terminated line of buf at *off (without the newline) into
 * line/cap; false at the end, for a missing newline or a line too long. */
static bool next_line(const uint8_t *buf, size_t len, size_t *off, char *line, size_t cap,
                      bool *bad)
{
    *bad = false;
    if (*off >= len)
        return false;
    const uint8_t *nl = memchr(buf + *off, '\n', len - *off);
    size_t n = nl ? (size_t)(nl - (buf + *off)) : len - *off;
    if (!nl || n >= cap || memchr(buf + *off, '\0', n)) {
        *bad = true;
        return false;
    }
    memcpy(line, buf + *off, n);
    line[n] = '\0';
    *off += n + 1;
    return true;
}

mt_status mt_policy_sig_parse(const uint8_t *buf, size_t len, mt_policy_sigs *out, mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_policy_sig_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (!buf || len == 0 || len > MT_POLICY_SIG_FILE_MAX)
        return mt_err_set(err, MT_EINVAL, "policy signature file is %zu bytes (1 to %u expected)",
                          len, MT_POLICY_SIG_FILE_MAX);
    size_t off = 0;
    char line[64 + 1 + B64_LINE_MAX + 2];
    bool bad = false;
    if (!next_line(buf, len, &off, line, sizeof line, &bad) || strcmp(line, MT_POLICY_SIG_HEADER))
        return mt_err_set(err, MT_EINVAL,
                          "policy signature file: line 1 must be '%s' (made by `mesatee policy "
                          "sign`)",
                          MT_POLICY_SIG_HEADER);
    for (unsigned ln = 2; next_line(buf, len, &off, line, sizeof line, &bad); ln++) {
        if (out->n >= MT_POLICY_SIG_MAX) {
            memset(out, 0, sizeof *out);
            return mt_err_set(err, MT_EINVAL, "policy signature file: more than %d signatures",
                              MT_POLICY_SIG_MAX);
        }
        mt_policy_sig_entry *e = &out->e[out->n];
        uint8_t *der = NULL;
        size_t dl = 0;
        bool ok = strlen(line) > 65 && line[64] == ' ' && !strchr(line + 65, ' ');
        if (ok) {
            line[64] = '\0';
            ok = mt_hex_decode(line, e->signer, 32, NULL) == MT_OK &&
                 mt_b64_decode(line + 65, &der, &dl, NULL) == MT_OK && dl >= 8 &&
                 dl <= MT_POLICY_SIG_DER_MAX;
        }
        if (ok) {
            memcpy(e->sig, der, dl);
            e->sig_len = dl;
        }
        free(der);
        for (size_t i = 0; ok && i < out->n; i++)
            if (memcmp(out->e[i].signer, e->signer, 32) == 0) {
                memset(out, 0, sizeof *out);
                return mt_err_set(err, MT_EINVAL,
                                  "policy signature file line %u: auditor %.16s... signs twice",
                                  ln, line);
            }
        if (!ok) {
            memset(out, 0, sizeof *out);
            return mt_err_set(err, MT_EINVAL,
                              "policy signature file line %u: expected '<64 hex auditor key "
                              "hash> <base64 DER ECDSA signature>'",
                              ln);
        }
        out->n++;
    }
    if (bad) {
        memset(out, 0, sizeof *out);
        return mt_err_set(err, MT_EINVAL, "policy signature file: a line is too long, contains "
                                          "NUL or does not end with a newline");
    }
    return MT_OK;
}

/* ---- keys --------------------------------------------------------------- */

/* SHA-256 of key's SPKI DER; false on failure. */
static bool key_id(EVP_PKEY *key, uint8_t id[32])
{
    uint8_t *spki = NULL;
    int n = i2d_PUBKEY(key, &spki);
    unsigned int hl = 0;
    bool ok = n > 0 && EVP_Digest(spki, (size_t)n, id, &hl, EVP_sha256(), NULL) == 1;
    OPENSSL_free(spki);
    return ok;
}

static bool is_p256(EVP_PKEY *key)
{
    char group[32] = "";
    size_t gl = 0;
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &gl) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/* ---- sign --------------------------------------------------------------- */

mt_status mt_policy_sig_sign(const uint8_t *policy, size_t len, EVP_PKEY *key,
                             const uint8_t *existing, size_t existing_len, char **out,
                             mt_err *err)
{
    if (!policy || !key || !out)
        return mt_err_set(err, MT_EINVAL, "mt_policy_sig_sign: NULL argument");
    *out = NULL;
    if (!is_p256(key))
        return mt_err_set(err, MT_EINVAL, "the auditor key must be an ECDSA P-256 private key "
                                          "(openssl genpkey -algorithm EC -pkeyopt "
                                          "ec_paramgen_curve:P-256)");
    mt_policy_sigs *sigs = calloc(1, sizeof *sigs);
    if (!sigs)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status st = MT_OK;
    if (existing && existing_len &&
        (st = mt_policy_sig_parse(existing, existing_len, sigs, err)) != MT_OK)
        goto out;
    uint8_t id[32];
    uint8_t der[MT_POLICY_SIG_DER_MAX];
    size_t dl = sizeof der;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    bool ok = mc && key_id(key, id) && EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestSign(mc, der, &dl, policy, len) == 1;
    EVP_MD_CTX_free(mc);
    ERR_clear_error();
    if (!ok) {
        st = mt_err_set(err, MT_ECRYPTO, "signing the policy failed in OpenSSL");
        goto out;
    }
    size_t slot = sigs->n;
    for (size_t i = 0; i < sigs->n; i++)
        if (memcmp(sigs->e[i].signer, id, 32) == 0)
            slot = i;
    if (slot == MT_POLICY_SIG_MAX) {
        st = mt_err_set(err, MT_ETOOBIG, "the policy already has %d signatures",
                        MT_POLICY_SIG_MAX);
        goto out;
    }
    memcpy(sigs->e[slot].signer, id, 32);
    memcpy(sigs->e[slot].sig, der, dl);
    sigs->e[slot].sig_len = dl;
    if (slot == sigs->n)
        sigs->n++;
    size_t cap = sizeof MT_POLICY_SIG_HEADER + 1 + sigs->n * (64 + 1 + B64_LINE_MAX + 1);
    char *text = malloc(cap);
    if (!text) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    size_t n = (size_t)snprintf(text, cap, "%s\n", MT_POLICY_SIG_HEADER);
    for (size_t i = 0; i < sigs->n; i++) {
        char hex[65];
        char *b64 = mt_b64_encode(sigs->e[i].sig, sigs->e[i].sig_len);
        if (!b64) {
            free(text);
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        mt_hex_encode(sigs->e[i].signer, 32, hex);
        n += (size_t)snprintf(text + n, cap - n, "%s %s\n", hex, b64);
        free(b64);
    }
    *out = text;
out:
    free(sigs);
    return st;
}

/* ---- verify ------------------------------------------------------------- */

mt_status mt_policy_sig_verify(const uint8_t *policy, size_t len, const uint8_t *sig,
                               size_t sig_len, const uint8_t *signers_pem, size_t signers_len,
                               unsigned threshold, mt_err *err)
{
    if (!policy || !signers_pem)
        return mt_err_set(err, MT_EINVAL, "mt_policy_sig_verify: NULL argument");
    if (signers_len == 0 || signers_len > SIGNERS_FILE_MAX)
        return mt_err_set(err, MT_EINVAL, "the auditor key file is %zu bytes (1 to %u expected)",
                          signers_len, SIGNERS_FILE_MAX);
    mt_policy_sigs *sigs = calloc(1, sizeof *sigs);
    if (!sigs)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status st = MT_OK;
    if (!sig || sig_len == 0) {
        st = mt_err_set(err, MT_EAUTH, "the policy has no auditor signatures (no .sig file); "
                                       "auditors sign it with `mesatee policy sign`");
        goto out;
    }
    if ((st = mt_policy_sig_parse(sig, sig_len, sigs, err)) != MT_OK)
        goto out;
    BIO *b = BIO_new_mem_buf(signers_pem, (int)signers_len);
    unsigned n_signers = 0, n_valid = 0;
    char first_bad[200] = "";
    EVP_PKEY *k = NULL;
    while (b && (k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) != NULL) {
        n_signers++;
        uint8_t id[32];
        char hex[65];
        bool ok = is_p256(k) && key_id(k, id);
        if (!ok) {
            EVP_PKEY_free(k);
            BIO_free(b);
            st = mt_err_set(err, MT_EINVAL, "auditor key %u of the auditor key file is not a "
                                            "P-256 public key",
                            n_signers);
            goto out;
        }
        mt_hex_encode(id, 32, hex);
        const mt_policy_sig_entry *e = NULL;
        for (size_t i = 0; i < sigs->n; i++)
            if (memcmp(sigs->e[i].signer, id, 32) == 0)
                e = &sigs->e[i];
        bool valid = false;
        if (e) {
            EVP_MD_CTX *mc = EVP_MD_CTX_new();
            valid = mc && EVP_DigestVerifyInit(mc, NULL, EVP_sha256(), NULL, k) == 1 &&
                    EVP_DigestVerify(mc, e->sig, e->sig_len, policy, len) == 1;
            EVP_MD_CTX_free(mc);
        }
        if (valid)
            n_valid++;
        else if (!first_bad[0])
            snprintf(first_bad, sizeof first_bad, "auditor %.16s...: %s", hex,
                     e ? "signature does not verify (the policy changed after signing?)"
                       : "no signature");
        EVP_PKEY_free(k);
    }
    BIO_free(b);
    ERR_clear_error();
    if (n_signers == 0) {
        st = mt_err_set(err, MT_EINVAL, "the auditor key file holds no PEM public key");
        goto out;
    }
    unsigned need = threshold ? threshold : n_signers;
    if (need > n_signers) {
        st = mt_err_set(err, MT_EINVAL, "threshold %u is more than the %u auditor keys", need,
                        n_signers);
        goto out;
    }
    if (n_valid < need)
        st = mt_err_set(err, MT_EAUTH,
                        "policy auditor signatures: %u of %u needed are valid (%s)", n_valid,
                        need, first_bad[0] ? first_bad : "?");
out:
    free(sigs);
    return st;
}
