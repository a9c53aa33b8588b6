/* mt_keyring: the node side of the KeyStore (mt_keystore.h): a fresh
 * attested identity per request, the opened release response, and the KEK
 * derivation KEK(purpose, v) = HKDF-SHA256(root v, "mesatee-kek/v1",
 * purpose). */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "ks_internal.h"
#include "mt_dbcert.h"
#include "mt_json.h"
#include "mt_util.h"

#define KEK_SALT "mesatee-kek/v1"

struct mt_keystore_node {
    EVP_PKEY *key;
    uint8_t *cert;
    size_t cert_len;
};

typedef struct kr_version {
    uint32_t v;
    uint8_t key[32];
} kr_version;

struct mt_keyring {
    uint32_t current;
    kr_version vers[MT_KEYSTORE_MAX_VERSIONS];
    size_t n;
};

void mt_keystore_node_free(mt_keystore_node *node)
{
    if (!node)
        return;
    EVP_PKEY_free(node->key);
    OPENSSL_free(node->cert);
    free(node);
}

mt_status mt_keystore_request(mt_tee *tee, mt_keystore_node **node, char **req, size_t *len,
                              mt_err *err)
{
    *node = NULL;
    *req = NULL;
    mt_keystore_node *n = calloc(1, sizeof *n);
    if (!n)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    X509 *x = NULL;
    mt_status rc = mt_tee_tls_identity(tee, &n->key, &x, err);
    int dl = 0;
    if (!rc && (dl = i2d_X509(x, &n->cert)) <= 0)
        rc = mt_err_set(err, MT_EINTERNAL, "cannot encode the evidence certificate");
    X509_free(x);
    char *b = NULL;
    if (!rc) {
        n->cert_len = (size_t)dl;
        if (!(b = mt_b64_encode(n->cert, n->cert_len)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    json_t *doc = b ? json_pack("{s:i, s:s, s:s}", "mesatee_keystore", 1, "op", "release",
                                "evidence", b)
                    : NULL;
    free(b);
    if (!rc && !(*req = doc ? mt_json_dump(doc) : NULL))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    json_decref(doc);
    if (rc) {
        mt_keystore_node_free(n);
        return rc;
    }
    *len = strlen(*req);
    *node = n;
    return MT_OK;
}

mt_status ks_keyring_from_records(const uint8_t *plain, size_t pl, uint32_t cur,
                                  mt_keyring **out, mt_err *err)
{
    *out = NULL;
    mt_status rc = MT_OK;
    mt_keyring *kr = calloc(1, sizeof *kr);
    bool have_cur = false;
    if (!kr)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc && (pl % 36 != 0 || pl / 36 > MT_KEYSTORE_MAX_VERSIONS))
        rc = mt_err_set(err, MT_EINVAL, "KeyStore answer: bad number of root key records");
    for (size_t off = 0; !rc && off + 36 <= pl; off += 36) {
        uint32_t v = ks_get_u32(plain + off);
        if (v == 0 || (kr->n && kr->vers[kr->n - 1].v >= v)) {
            rc = mt_err_set(err, MT_EINVAL, "KeyStore release response: versions out of order");
            break;
        }
        kr->vers[kr->n].v = v;
        memcpy(kr->vers[kr->n].key, plain + off + 4, 32);
        kr->n++;
        if (v == cur)
            have_cur = true;
    }
    if (!rc && !have_cur)
        rc = mt_err_set(err, MT_EINVAL, "KeyStore release response: no current version");
    if (rc) {
        mt_keyring_free(kr);
        return rc;
    }
    kr->current = cur;
    *out = kr;
    return MT_OK;
}

mt_status mt_keystore_accept(const mt_keystore_node *node, const char *resp, size_t len,
                             mt_keyring **out, mt_err *err)
{
    *out = NULL;
    uint8_t *plain = NULL;
    size_t pl = 0;
    uint32_t cur = 0;
    mt_status rc = ks_release_decrypt(node->key, node->cert, node->cert_len, resp, len, &plain,
                                      &pl, &cur, err);
    if (rc)
        return rc;
    rc = ks_keyring_from_records(plain, pl, cur, out, err);
    mt_wipe(plain, pl);
    free(plain);
    return rc;
}

void mt_keyring_free(mt_keyring *kr)
{
    if (!kr)
        return;
    mt_wipe(kr, sizeof *kr);
    free(kr);
}

uint32_t mt_keyring_current(const mt_keyring *kr)
{
    return kr ? kr->current : 0;
}

bool mt_keyring_has(const mt_keyring *kr, uint32_t version)
{
    for (size_t i = 0; kr && i < kr->n; i++)
        if (kr->vers[i].v == version)
            return true;
    return false;
}

mt_status mt_keyring_kek(const mt_keyring *kr, const char *purpose, uint32_t version,
                         uint8_t out[32], uint32_t *used, mt_err *err)
{
    size_t pl = purpose ? strnlen(purpose, 49) : 0;
    if (!kr || !out || pl == 0 || pl > 48 ||
        strspn(purpose, "abcdefghijklmnopqrstuvwxyz0123456789-") != pl)
        return mt_err_set(err, MT_EINVAL, "KEK: bad purpose");
    uint32_t v = version ? version : kr->current;
    const kr_version *kv = NULL;
    for (size_t i = 0; i < kr->n; i++)
        if (kr->vers[i].v == v)
            kv = &kr->vers[i];
    if (!kv)
        return mt_err_set(err, MT_ENOTFOUND, "key-encryption key version %u does not exist",
                          (unsigned)v);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM ps[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)kv->key, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *)KEK_SALT,
                                          sizeof KEK_SALT - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)purpose, pl),
        OSSL_PARAM_construct_end(),
    };
    mt_status rc = MT_OK;
    if (!kc || EVP_KDF_derive(kc, out, 32, ps) != 1) {
        mt_wipe(out, 32);
        rc = mt_err_set(err, MT_EINTERNAL, "HKDF-SHA256 unavailable");
    }
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    if (!rc && used)
        *used = v;
    return rc;
}

/* ---- database credentials (mt_dbcert.h) --------------------------------- */

static mt_status bio_string(BIO *mem, bool ok, char **pem, mt_err *err)
{
    char *p = NULL;
    long n = 0;
    mt_status rc = MT_OK;
    if (!mem || !ok || (n = BIO_get_mem_data(mem, &p)) <= 0)
        rc = mt_err_set(err, MT_ENOMEM, "cannot encode PEM");
    else if (!(*pem = malloc((size_t)n + 1)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    else {
        memcpy(*pem, p, (size_t)n);
        (*pem)[n] = '\0';
    }
    ERR_clear_error();
    return rc;
}

mt_status mt_keystore_node_key_pem(const mt_keystore_node *node, char **pem, mt_err *err)
{
    *pem = NULL;
    if (!node || !node->key)
        return mt_err_set(err, MT_EINVAL, "no node identity");
    BIO *mem = BIO_new(BIO_s_mem());
    bool ok = mem && PEM_write_bio_PrivateKey(mem, node->key, NULL, NULL, 0, NULL, NULL) == 1;
    mt_status rc = bio_string(mem, ok, pem, err);
    BIO_free(mem);
    return rc;
}

mt_status mt_keystore_node_cert_pem(const mt_keystore_node *node, char **pem, mt_err *err)
{
    *pem = NULL;
    if (!node || !node->cert)
        return mt_err_set(err, MT_EINVAL, "no node identity");
    const unsigned char *p = node->cert;
    X509 *x = d2i_X509(NULL, &p, (long)node->cert_len);
    BIO *mem = BIO_new(BIO_s_mem());
    bool ok = x && mem && PEM_write_bio_X509(mem, x) == 1;
    mt_status rc = bio_string(mem, ok, pem, err);
    BIO_free(mem);
    X509_free(x);
    return rc;
}
