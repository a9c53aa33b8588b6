/* ks_msg: the KeyStore's release messages (docs/formats.md "KeyStore
 * release messages") and their crypto:
 *   request  {"mesatee_keystore": 1, "op": "release", "evidence": b64(DER
 *             RA-TLS certificate of a fresh P-256 key)}
 *   response {"mesatee_keystore": 1, "op": "release", "current": N,
 *             "ephemeral": b64(SPKI DER of a fresh P-256 key),
 *             "sealed": b64(nonce || AES-256-GCM ciphertext || tag)}
 * key = HKDF-SHA256(ikm = ECDH(ephemeral, certificate key), salt =
 * SHA-256(certificate DER), info = LABEL || ephemeral SPKI DER); AAD =
 * LABEL || SHA-256(certificate DER) || u32be(current). The plaintext is
 * 1..64 records u32be(version) || 32-byte root key, versions ascending.
 * Every field from outside goes through mt_json's bounded reader. */
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "ks_internal.h"
#include "mt_json.h"
#include "mt_util.h"

#define MAX_CERT (64u * 1024u)
#define LABEL_MAX 32

/* Version 1: the release of root keys; version 2 (ks_join.c): the join
 * answer, the same construction under its own label with the three shared
 * platform keys before the records (ks_internal.h). */
const ks_msg_kind ks_msg_release = {"mesatee-keystore-release/v1", 1, "release", 0};
const ks_msg_kind ks_msg_join = {"mesatee-keystore-join/v2", 2, "join", KS_JOIN_PLATFORM_LEN};

mt_status ks_gcm_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t len, uint8_t *out, mt_err *err)
{
    mt_status rc = mt_random(out, 12, err);
    if (rc)
        return rc;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, f = 0;
    if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, out) != 1 ||
        (aad_len && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
        EVP_EncryptUpdate(c, out + 12, &n, in, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, out + 12 + n, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + len) != 1)
        rc = mt_err_set(err, MT_EINTERNAL, "AES-256-GCM failed");
    EVP_CIPHER_CTX_free(c);
    return rc;
}

mt_status ks_gcm_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t in_len, uint8_t *out, mt_err *err)
{
    if (in_len < KS_GCM_OVERHEAD || in_len - KS_GCM_OVERHEAD > (size_t)INT32_MAX)
        return mt_err_set(err, MT_ECRYPTO, "decryption failed");
    size_t len = in_len - KS_GCM_OVERHEAD;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, f = 0;
    mt_status rc = MT_OK;
    if (!c || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) != 1 ||
        (aad_len && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
        EVP_DecryptUpdate(c, out, &n, in + 12, (int)len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + 12 + len)) != 1 ||
        EVP_DecryptFinal_ex(c, out + n, &f) != 1) {
        mt_wipe(out, len);
        rc = mt_err_set(err, MT_ECRYPTO, "decryption failed");
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* What a release request and a release answer both start with: only the
 * listed keys, "mesatee_keystore": 1 and "op": "release". */
static mt_status msg_head(const ks_msg_kind *k, const json_t *doc, const char *const *keys,
                          mt_err *err)
{
    int64_t v = 0;
    const char *op = NULL;
    mt_status rc = mt_json_only_keys(doc, keys, err);
    if (!rc)
        rc = mt_json_int(doc, "mesatee_keystore", k->version, k->version, &v, err);
    if (!rc)
        rc = mt_json_str(doc, "op", 16, &op, err);
    if (!rc && strcmp(op, k->op) != 0)
        rc = mt_err_set(err, MT_EINVAL, "field 'op': expected \"%s\"", k->op);
    return rc;
}

static mt_status release_head(const json_t *doc, const char *const *keys, mt_err *err)
{
    return msg_head(&ks_msg_release, doc, keys, err);
}

mt_status mt_keystore_parse_request(const char *req, size_t len, uint8_t **cert,
                                    size_t *cert_len, mt_err *err)
{
    *cert = NULL;
    *cert_len = 0;
    json_t *doc = mt_json_parse(req, len, MT_KEYSTORE_MSG_MAX, 4, err);
    if (!doc)
        return mt_err_prefix(err, MT_EINVAL, "KeyStore release request: ");
    static const char *const keys[] = {"mesatee_keystore", "op", "evidence", NULL};
    const char *ev = NULL;
    mt_status rc = release_head(doc, keys, err);
    if (!rc)
        rc = mt_json_str(doc, "evidence", MAX_CERT * 4 / 3 + 4, &ev, err);
    if (!rc && (rc = mt_b64_decode(ev, cert, cert_len, err)))
        mt_err_prefix(err, rc, "field 'evidence': ");
    if (!rc && (*cert_len == 0 || *cert_len > MAX_CERT))
        rc = mt_err_set(err, MT_EINVAL, "field 'evidence': bad certificate size");
    json_decref(doc);
    if (rc) {
        free(*cert);
        *cert = NULL;
        mt_err_prefix(err, rc, "KeyStore release request: ");
    }
    return rc;
}

mt_status ks_ecdh_hkdf(EVP_PKEY *mine, EVP_PKEY *peer, const uint8_t salt[32],
                       const uint8_t *info, size_t info_len, uint8_t key[32], mt_err *err)
{
    uint8_t z[66];
    size_t zl = sizeof z;
    mt_status rc = MT_OK;
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(mine, NULL);
    if (!dc || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, peer) != 1 ||
        EVP_PKEY_derive(dc, z, &zl) != 1)
        rc = mt_err_set(err, MT_ECRYPTO, "KeyStore: key agreement failed");
    EVP_PKEY_CTX_free(dc);
    if (rc)
        return rc;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM ps[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, zl),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len),
        OSSL_PARAM_construct_end(),
    };
    if (!kc || EVP_KDF_derive(kc, key, 32, ps) != 1)
        rc = mt_err_set(err, MT_EINTERNAL, "HKDF-SHA256 unavailable");
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    mt_wipe(z, sizeof z);
    return rc;
}

/* key = HKDF(ECDH(mine, peer)), see the header comment. */
static mt_status derive(const ks_msg_kind *k, EVP_PKEY *mine, EVP_PKEY *peer,
                        const uint8_t chash[32], const uint8_t *eph_spki, size_t eph_len,
                        uint8_t key[32], mt_err *err)
{
    size_t ll = strlen(k->label);
    uint8_t *info = malloc(ll + eph_len);
    if (!info)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    memcpy(info, k->label, ll);
    memcpy(info + ll, eph_spki, eph_len);
    mt_status rc = ks_ecdh_hkdf(mine, peer, chash, info, ll + eph_len, key, err);
    free(info);
    return rc;
}

/* AAD = label || chash || u32be(current); returns its length. */
static size_t make_aad(const ks_msg_kind *k, const uint8_t chash[32], uint32_t current,
                       uint8_t aad[LABEL_MAX + 36])
{
    size_t ll = strlen(k->label);
    memcpy(aad, k->label, ll);
    memcpy(aad + ll, chash, 32);
    ks_put_u32(aad + ll + 32, current);
    return ll + 36;
}

/* The P-256 public key of a DER certificate. */
static mt_status cert_key(const uint8_t *cert, size_t len, EVP_PKEY **out, mt_err *err)
{
    const uint8_t *p = cert;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    EVP_PKEY *k = x ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    char grp[32] = "";
    size_t gl = 0;
    if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof grp, &gl) != 1 ||
        strcmp(grp, "prime256v1") != 0) {
        EVP_PKEY_free(k);
        return mt_err_set(err, MT_EINVAL, "KeyStore: the evidence certificate's key is not P-256");
    }
    *out = k;
    return MT_OK;
}

mt_status ks_release_encrypt(const uint8_t *cert, size_t cert_len, uint32_t current,
                             const uint8_t *plain, size_t plain_len, char **resp,
                             size_t *resp_len, mt_err *err)
{
    return ks_msg_encrypt(&ks_msg_release, cert, cert_len, current, plain, plain_len, resp,
                          resp_len, err);
}

mt_status ks_msg_encrypt(const ks_msg_kind *k, const uint8_t *cert, size_t cert_len,
                         uint32_t current, const uint8_t *plain, size_t plain_len, char **resp,
                         size_t *resp_len, mt_err *err)
{
    *resp = NULL;
    EVP_PKEY *peer = NULL, *eph = NULL;
    uint8_t *spki = NULL, *sealed = NULL, key[32], chash[32], aad[LABEL_MAX + 36];
    char *b_eph = NULL, *b_sealed = NULL;
    unsigned hl = 0;
    int sl = 0;
    mt_status rc = cert_key(cert, cert_len, &peer, err);
    if (rc)
        return rc;
    if (EVP_Digest(cert, cert_len, chash, &hl, EVP_sha256(), NULL) != 1 ||
        !(eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ||
        (sl = i2d_PUBKEY(eph, &spki)) <= 0) {
        rc = mt_err_set(err, MT_EINTERNAL, "KeyStore: ephemeral key generation failed");
        goto out;
    }
    if ((rc = derive(k, eph, peer, chash, spki, (size_t)sl, key, err)))
        goto out;
    size_t al = make_aad(k, chash, current, aad);
    if (!(sealed = malloc(plain_len + KS_GCM_OVERHEAD))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ks_gcm_seal(key, aad, al, plain, plain_len, sealed, err)))
        goto out;
    b_eph = mt_b64_encode(spki, (size_t)sl);
    b_sealed = mt_b64_encode(sealed, plain_len + KS_GCM_OVERHEAD);
    json_t *doc = (b_eph && b_sealed)
                      ? json_pack("{s:i, s:s, s:I, s:s, s:s}", "mesatee_keystore", k->version,
                                  "op", k->op, "current", (json_int_t)current, "ephemeral", b_eph,
                                  "sealed", b_sealed)
                      : NULL;
    *resp = doc ? mt_json_dump(doc) : NULL;
    json_decref(doc);
    if (!*resp)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    else
        *resp_len = strlen(*resp);
out:
    mt_wipe(key, sizeof key);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(eph);
    OPENSSL_free(spki);
    free(sealed);
    free(b_eph);
    free(b_sealed);
    return rc;
}

mt_status ks_release_decrypt(EVP_PKEY *priv, const uint8_t *cert, size_t cert_len,
                             const char *resp, size_t len, uint8_t **plain, size_t *plain_len,
                             uint32_t *current, mt_err *err)
{
    return ks_msg_decrypt(&ks_msg_release, priv, cert, cert_len, resp, len, plain, plain_len,
                          current, err);
}

mt_status ks_msg_decrypt(const ks_msg_kind *k, EVP_PKEY *priv, const uint8_t *cert,
                         size_t cert_len, const char *resp, size_t len, uint8_t **plain,
                         size_t *plain_len, uint32_t *current, mt_err *err)
{
    *plain = NULL;
    const char *what = k->version == 1 ? "KeyStore release response: " : "KeyStore join answer: ";
    json_t *doc = mt_json_parse(resp, len, MT_KEYSTORE_MSG_MAX, 4, err);
    if (!doc)
        return mt_err_prefix(err, MT_EINVAL, "%s", what);
    /* version 2 may carry "db_cert" (public, read by ks_join.c) */
    static const char *const keys1[] = {"mesatee_keystore", "op", "current", "ephemeral",
                                        "sealed", NULL};
    static const char *const keys2[] = {"mesatee_keystore", "op", "current", "ephemeral",
                                        "sealed", "db_cert", NULL};
    const char *const *keys = k->version == 1 ? keys1 : keys2;
    int64_t cur = 0;
    const char *b_eph = NULL, *b_sealed = NULL;
    uint8_t *spki = NULL, *sealed = NULL, key[32], chash[32], aad[LABEL_MAX + 36];
    size_t spki_len = 0, sealed_len = 0;
    EVP_PKEY *eph = NULL;
    unsigned hl = 0;
    mt_status rc = msg_head(k, doc, keys, err);
    if (!rc)
        rc = mt_json_int(doc, "current", 1, UINT32_MAX, &cur, err);
    if (!rc)
        rc = mt_json_str(doc, "ephemeral", 1024, &b_eph, err);
    if (!rc)
        rc = mt_json_str(doc, "sealed", 8192, &b_sealed, err);
    if (!rc)
        rc = mt_b64_decode(b_eph, &spki, &spki_len, err);
    if (!rc)
        rc = mt_b64_decode(b_sealed, &sealed, &sealed_len, err);
    if (!rc) {
        const uint8_t *p = spki;
        if (!(eph = d2i_PUBKEY(NULL, &p, (long)spki_len)) || p != spki + spki_len)
            rc = mt_err_set(err, MT_EINVAL, "field 'ephemeral': not a public key");
    }
    if (!rc && (sealed_len < KS_GCM_OVERHEAD + k->prefix + 36 ||
                (sealed_len - KS_GCM_OVERHEAD - k->prefix) % 36 != 0 ||
                sealed_len - KS_GCM_OVERHEAD - k->prefix > 36 * MT_KEYSTORE_MAX_VERSIONS))
        rc = mt_err_set(err, MT_EINVAL, "field 'sealed': bad size");
    if (!rc && EVP_Digest(cert, cert_len, chash, &hl, EVP_sha256(), NULL) != 1)
        rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
    if (!rc)
        rc = derive(k, priv, eph, chash, spki, spki_len, key, err);
    if (!rc && !(*plain = malloc(sealed_len - KS_GCM_OVERHEAD)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        size_t al = make_aad(k, chash, (uint32_t)cur, aad);
        rc = ks_gcm_open(key, aad, al, sealed, sealed_len, *plain, err);
    }
    if (!rc) {
        *plain_len = sealed_len - KS_GCM_OVERHEAD;
        *current = (uint32_t)cur;
    } else {
        free(*plain);
        *plain = NULL;
        mt_err_prefix(err, rc, "%s", what);
    }
    mt_wipe(key, sizeof key);
    EVP_PKEY_free(eph);
    free(spki);
    free(sealed);
    json_decref(doc);
    return rc;
}
