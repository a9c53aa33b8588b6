/* builtin_crypto: password_check (is one party's password in another
 * party's breached-password list; the answer is only true or false),
 * rsa_sign (one party's RSA private key, a key file or a KeyStore key named
 * by argument 'key', signs another party's data; the base64 signature is the
 * return value) and keystore_sign (the same with any KeyStore signing key:
 * ecdsa, ed25519, rsa). KeyStore keys reach the worker in the job, loaded by
 * the scheduler only for a task whose participants include the key's owner
 * (docs/keystore.md, "Keys in tasks"). OpenSSL (libcrypto) throughout. */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"
#include "mt_util.h"

#define PW_MAX 1024

/* Input named by argument arg (default dflt); MT_EINVAL if absent. */
static mt_status slot_arg(mt_bctx *ctx, const char *fn, const char *arg, const char *dflt,
                          const mt_bctx_input **out, mt_err *err)
{
    const char *name = mt_bctx_arg(ctx, arg);
    name = name ? name : dflt;
    *out = mt_bctx_input_find(ctx, name);
    if (!*out)
        return mt_err_set(err, MT_EINVAL, "%s: no input slot '%.64s' (argument '%s')", fn, name,
                          arg);
    return MT_OK;
}

/* ------------------------------------------------------------- password_check */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

mt_status mt_builtin_password_check(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"password_slot", "list_slot", "format", NULL};
    *ret = NULL;
    const mt_bctx_input *pw, *list;
    mt_status st;
    if ((st = mt_arg_only(ctx, "password_check", allowed, err)) != MT_OK ||
        (st = slot_arg(ctx, "password_check", "password_slot", "password", &pw, err)) != MT_OK ||
        (st = slot_arg(ctx, "password_check", "list_slot", "breached", &list, err)) != MT_OK)
        return st;
    const char *format = mt_bctx_arg(ctx, "format");
    format = format ? format : "plain";
    bool sha1 = strcmp(format, "sha1") == 0;
    if (!sha1 && strcmp(format, "plain") != 0)
        return mt_err_set(err, MT_EINVAL, "argument 'format': expected plain or sha1");
    if (ctx->n_inputs != 2 || pw == list)
        return mt_err_set(err, MT_EINVAL,
                          "password_check needs exactly 2 input slots: the password and the list");
    if (ctx->n_outputs != 0)
        return mt_err_set(err, MT_EINVAL,
                          "password_check answers only true or false as its return value: "
                          "declare no output slots (got %zu)",
                          ctx->n_outputs);
    size_t plen = pw->len;
    if (plen > 0 && pw->data[plen - 1] == '\n')
        plen--;
    if (plen > 0 && pw->data[plen - 1] == '\r')
        plen--;
    if (plen == 0)
        return mt_err_set(err, MT_EINVAL, "input '%s', line 1, column 1: empty password",
                          pw->slot);
    if (plen > PW_MAX)
        return mt_err_set(err, MT_EINVAL,
                          "input '%s', line 1, column 1: password longer than %d bytes",
                          pw->slot, PW_MAX);
    if (memchr(pw->data, '\n', plen))
        return mt_err_set(err, MT_EINVAL,
                          "input '%s', line 2, column 1: the password input holds one line only",
                          pw->slot);
    uint8_t target[PW_MAX];
    size_t tlen = plen;
    if (sha1) {
        unsigned int dl = 0;
        if (EVP_Digest(pw->data, plen, target, &dl, EVP_sha1(), NULL) != 1 || dl != 20)
            return mt_err_set(err, MT_EINTERNAL, "password_check: SHA-1 failed");
        tlen = 20;
    } else {
        memcpy(target, pw->data, plen);
    }
    /* every line is compared (no early exit) */
    int found = 0;
    size_t pos = 0, line = 0;
    const uint8_t *d = list->data;
    while (pos < list->len) {
        const uint8_t *s = d + pos, *nl = memchr(s, '\n', list->len - pos);
        size_t l = nl ? (size_t)(nl - s) : list->len - pos;
        pos += l + (nl ? 1 : 0);
        line++;
        if (l > 0 && s[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        if (!sha1) {
            if (l > PW_MAX) {
                mt_wipe(target, sizeof target);
                return mt_err_set(err, MT_EINVAL,
                                  "input '%s', line %zu, column 1: entry longer than %d bytes",
                                  list->slot, line, PW_MAX);
            }
            found |= l == tlen && CRYPTO_memcmp(s, target, tlen) == 0;
            continue;
        }
        uint8_t h[20];
        bool ok = l == 40 || (l > 41 && s[40] == ':');
        for (size_t i = 0; ok && i < 20; i++) {
            int a = hexval((char)s[2 * i]), b = hexval((char)s[2 * i + 1]);
            ok = a >= 0 && b >= 0;
            h[i] = (uint8_t)(a << 4 | (b & 15));
        }
        for (size_t i = 41; ok && i < l; i++)
            ok = s[i] >= '0' && s[i] <= '9';
        if (!ok) {
            mt_wipe(target, sizeof target);
            return mt_err_set(err, MT_EINVAL,
                              "input '%s', line %zu, column 1: expected 40 hex digits of a SHA-1, "
                              "optionally followed by :count",
                              list->slot, line);
        }
        found |= CRYPTO_memcmp(h, target, 20) == 0;
    }
    mt_wipe(target, sizeof target);
    mt_bctx_log(ctx, "password_check: %zu list lines (%s)", line, format);
    if (!(*ret = strdup(found ? "true" : "false")))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* ------------------------------------------------------------- rsa_sign */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1; /* encrypted keys are refused */
}

/* Signs data with pkey (md NULL for EdDSA; pss for RSA-PSS with the digest's
 * length as salt) and writes the base64 signature to every output and *ret. */
static mt_status sign_and_return(mt_bctx *ctx, const char *fn, EVP_PKEY *pkey, const EVP_MD *md,
                                 bool pss, const mt_bctx_input *data, char **ret, mt_err *err)
{
    mt_status st = MT_OK;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    char *b64 = NULL;
    if (!(mctx = EVP_MD_CTX_new()) || EVP_DigestSignInit(mctx, &pctx, md, NULL, pkey) != 1 ||
        (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
        EVP_DigestSign(mctx, NULL, &sig_len, data->data, data->len) != 1 ||
        !(sig = malloc(sig_len)) ||
        EVP_DigestSign(mctx, sig, &sig_len, data->data, data->len) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "%s: signing failed", fn);
        goto out;
    }
    if (!(b64 = mt_b64_encode(sig, sig_len))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ctx->n_outputs && st == MT_OK; i++)
        st = mt_bctx_output_write(ctx, i, b64, strlen(b64), err);
    if (st != MT_OK)
        goto out;
    *ret = b64;
    b64 = NULL;
out:
    free(b64);
    free(sig);
    EVP_MD_CTX_free(mctx);
    return st;
}

static const EVP_MD *digest_named(const char *dg)
{
    return !strcmp(dg, "sha256")   ? EVP_sha256()
           : !strcmp(dg, "sha384") ? EVP_sha384()
           : !strcmp(dg, "sha512") ? EVP_sha512()
                                   : NULL;
}

/* The signing arguments "digest" (default sha256) and "padding" (pkcs1 or
 * pss, default def_pad, which the error message names first): their names
 * in *dg and *pad, the digest in *md, pss or not in *pss. */
static mt_status sign_args(const mt_bctx *ctx, const char *def_pad, const char **dg,
                           const char **pad, const EVP_MD **md, bool *pss, mt_err *err)
{
    *dg = mt_bctx_arg(ctx, "digest");
    *pad = mt_bctx_arg(ctx, "padding");
    *dg = *dg ? *dg : "sha256";
    *pad = *pad ? *pad : def_pad;
    if (!(*md = digest_named(*dg)))
        return mt_err_set(err, MT_EINVAL, "argument 'digest': expected sha256, sha384 or sha512");
    *pss = strcmp(*pad, "pss") == 0;
    if (!*pss && strcmp(*pad, "pkcs1") != 0)
        return mt_err_set(err, MT_EINVAL, "argument 'padding': expected %s or %s", def_pad,
                          strcmp(def_pad, "pss") ? "pss" : "pkcs1");
    return MT_OK;
}

/* The private key of the KeyStore key named by argument "key" (the scheduler
 * put it in the job after checking that its owner takes part in the task).
 * Messages name the argument and the key's type, never the key's name. */
static mt_status keystore_key(mt_bctx *ctx, const char *fn, EVP_PKEY **out, const char **type,
                              mt_err *err)
{
    *out = NULL;
    const mt_bctx_key *k = mt_bctx_key_find(ctx, "key");
    if (!k)
        return mt_err_set(err, MT_EINVAL,
                          "%s: argument 'key': no KeyStore key was loaded for this task", fn);
    const unsigned char *p = k->der;
    if (k->der_len > INT32_MAX || !(*out = d2i_AutoPrivateKey(NULL, &p, (long)k->der_len)) ||
        p != k->der + k->der_len) {
        EVP_PKEY_free(*out);
        *out = NULL;
        return mt_err_set(err, MT_EINTERNAL, "%s: argument 'key': the KeyStore key is unreadable",
                          fn);
    }
    *type = k->type;
    return MT_OK;
}

/* The one input slot holding the data (argument data_slot, default "data"). */
static mt_status one_data_input(mt_bctx *ctx, const char *fn, const mt_bctx_input **data,
                                mt_err *err)
{
    mt_status st = slot_arg(ctx, fn, "data_slot", "data", data, err);
    if (st == MT_OK && ctx->n_inputs != 1)
        st = mt_err_set(err, MT_EINVAL,
                        "%s with a KeyStore key ('key') needs exactly 1 input slot: the data",
                        fn);
    return st;
}

mt_status mt_builtin_rsa_sign(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"key_slot", "data_slot", "digest", "padding",
                                          "key",      "key_version", NULL};
    *ret = NULL;
    const mt_bctx_input *key = NULL, *data;
    mt_status st;
    bool ks = mt_bctx_arg(ctx, "key") && *mt_bctx_arg(ctx, "key");
    if ((st = mt_arg_only(ctx, "rsa_sign", allowed, err)) != MT_OK)
        return st;
    if (ks) {
        if (mt_bctx_arg(ctx, "key_slot"))
            return mt_err_set(err, MT_EINVAL,
                              "rsa_sign: give either argument 'key' (a KeyStore key) or "
                              "'key_slot' (a key file), not both");
        if ((st = one_data_input(ctx, "rsa_sign", &data, err)) != MT_OK)
            return st;
    } else {
        if ((st = slot_arg(ctx, "rsa_sign", "key_slot", "key", &key, err)) != MT_OK ||
            (st = slot_arg(ctx, "rsa_sign", "data_slot", "data", &data, err)) != MT_OK)
            return st;
        if (key == data || ctx->n_inputs != 2)
            return mt_err_set(err, MT_EINVAL,
                              "rsa_sign needs exactly 2 input slots: the private key and the data");
    }
    const char *dg, *pad;
    const EVP_MD *md;
    bool pss;
    if ((st = sign_args(ctx, "pkcs1", &dg, &pad, &md, &pss, err)) != MT_OK)
        return st;
    EVP_PKEY *pkey = NULL;
    if (ks) {
        const char *type = NULL;
        if ((st = keystore_key(ctx, "rsa_sign", &pkey, &type, err)) != MT_OK)
            return st;
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            st = mt_err_set(err, MT_EINVAL,
                            "rsa_sign: argument 'key': the KeyStore key is of type %s, not "
                            "rsa-2048/3072/4096 (keystore_sign signs with any signing key)",
                            type);
            goto out;
        }
    } else {
        if (key->len > INT32_MAX)
            return mt_err_set(err, MT_EINVAL, "input '%s': key too large", key->slot);
        BIO *bio = BIO_new_mem_buf(key->data, (int)key->len);
        if (!bio)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        if (!pkey)
            return mt_err_set(err, MT_EINVAL,
                              "input '%s', line 1, column 1: not an unencrypted PEM private key",
                              key->slot);
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            st = mt_err_set(err, MT_EINVAL, "input '%s': the private key is not an RSA key",
                            key->slot);
            goto out;
        }
    }
    if (EVP_PKEY_get_bits(pkey) < 2048) {
        st = mt_err_set(err, MT_EINVAL, "input '%s': RSA key of %d bits, at least 2048 needed",
                        key ? key->slot : "(key)", EVP_PKEY_get_bits(pkey));
        goto out;
    }
    if ((st = sign_and_return(ctx, "rsa_sign", pkey, md, pss, data, ret, err)) != MT_OK)
        goto out;
    if (ks)
        ctx->key_signs++; /* metered: docs/keystore.md, "Keys in tasks" */
    mt_bctx_log(ctx, "rsa_sign: %zu bytes signed (%s, %s%s)", data->len, dg, pad,
                ks ? ", KeyStore key" : "");
out:
    EVP_PKEY_free(pkey);
    return st;
}

/* ------------------------------------------------------------- keystore_sign */

mt_status mt_bctx_key_sign(const mt_bctx_key *k, const uint8_t *data, size_t len, uint8_t **sig,
                           size_t *sig_len, mt_err *err)
{
    *sig = NULL;
    *sig_len = 0;
    const unsigned char *p = k->der;
    EVP_PKEY *pkey = k->der_len <= INT32_MAX ? d2i_AutoPrivateKey(NULL, &p, (long)k->der_len)
                                              : NULL;
    if (!pkey || p != k->der + k->der_len) {
        EVP_PKEY_free(pkey);
        return mt_err_set(err, MT_EINTERNAL, "the KeyStore key is unreadable");
    }
    mt_status st = MT_OK;
    bool ed = EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
    bool rsa = EVP_PKEY_is_a(pkey, "RSA");
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    size_t n = 0;
    if (!ed && !rsa && !EVP_PKEY_is_a(pkey, "EC")) {
        st = mt_err_set(err, MT_EINVAL, "the KeyStore key (type %s) is not a signing key",
                        k->type);
        goto out;
    }
    if (!(mctx = EVP_MD_CTX_new()) ||
        EVP_DigestSignInit(mctx, &pctx, ed ? NULL : EVP_sha256(), NULL, pkey) != 1 ||
        (rsa && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
        EVP_DigestSign(mctx, NULL, &n, data, len) != 1 || n > MT_BCTX_SIG_MAX ||
        !(*sig = malloc(n)) || EVP_DigestSign(mctx, *sig, &n, data, len) != 1) {
        free(*sig);
        *sig = NULL;
        st = mt_err_set(err, MT_EINTERNAL, "signing with the KeyStore key failed");
        goto out;
    }
    *sig_len = n;
out:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(pkey);
    return st;
}

mt_status mt_builtin_keystore_sign(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"key", "key_version", "data_slot", "digest",
                                          "padding", NULL};
    *ret = NULL;
    const mt_bctx_input *data;
    mt_status st;
    if ((st = mt_arg_only(ctx, "keystore_sign", allowed, err)) != MT_OK ||
        (st = one_data_input(ctx, "keystore_sign", &data, err)) != MT_OK)
        return st;
    const char *dg, *pad;
    const EVP_MD *md;
    bool pss;
    if ((st = sign_args(ctx, "pss", &dg, &pad, &md, &pss, err)) != MT_OK)
        return st;
    EVP_PKEY *pkey = NULL;
    const char *type = NULL;
    if ((st = keystore_key(ctx, "keystore_sign", &pkey, &type, err)) != MT_OK)
        return st;
    bool ed = EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
    bool rsa = EVP_PKEY_is_a(pkey, "RSA");
    if (!ed && !rsa && !EVP_PKEY_is_a(pkey, "EC")) {
        st = mt_err_set(err, MT_EINVAL,
                        "keystore_sign: argument 'key': the KeyStore key is of type %s, not a "
                        "signing key (ecdsa-p256/p384/p521, ed25519, rsa-2048/3072/4096)",
                        type);
        goto out;
    }
    if ((st = sign_and_return(ctx, "keystore_sign", pkey, ed ? NULL : md, rsa && pss, data, ret,
                              err)) != MT_OK)
        goto out;
    ctx->key_signs++;
    mt_bctx_log(ctx, "keystore_sign: %zu bytes signed (%s%s%s%s)", data->len, type,
                ed ? "" : ", ", ed ? "" : dg, rsa ? (pss ? ", pss" : ", pkcs1") : "");
out:
    EVP_PKEY_free(pkey);
    return st;
}
