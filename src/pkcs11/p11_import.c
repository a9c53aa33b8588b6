/* p11_import: key material of a C_CreateObject template (p11_import.h). */
#include "p11_import.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <string.h>

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                       's', '2', '5', '5', '1', '9'};

static const CK_ATTRIBUTE *find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE a)
{
    for (CK_ULONG i = 0; t && i < n; i++)
        if (t[i].type == a)
            return &t[i];
    return NULL;
}

/* A non-empty byte attribute; NULL if absent or empty. */
static const CK_ATTRIBUTE *bytes(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE a)
{
    const CK_ATTRIBUTE *x = find(t, n, a);
    return x && x->pValue && x->ulValueLen && x->ulValueLen <= 8192 ? x : NULL;
}

static bool attr_is(const CK_ATTRIBUTE *a, const uint8_t *v, size_t n)
{
    return a && a->ulValueLen == n && !memcmp(a->pValue, v, n);
}

void p11_import_free(uint8_t *der, size_t der_len)
{
    if (der)
        OPENSSL_cleanse(der, der_len);
    free(der);
}

/* PKCS#8 DER of pk into *der (heap, malloc). */
static CK_RV to_pkcs8(EVP_PKEY *pk, uint8_t **der, size_t *der_len)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
    if (!p8)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    unsigned char *buf = NULL;
    int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n <= 0)
        return CKR_HOST_MEMORY;
    *der = malloc((size_t)n);
    if (*der)
        memcpy(*der, buf, (size_t)n);
    OPENSSL_clear_free(buf, (size_t)n);
    if (!*der)
        return CKR_HOST_MEMORY;
    *der_len = (size_t)n;
    return CKR_OK;
}

static EVP_PKEY *from_data(const char *alg, OSSL_PARAM_BLD *b)
{
    OSSL_PARAM *ps = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *c = ps ? EVP_PKEY_CTX_new_from_name(NULL, alg, NULL) : NULL;
    EVP_PKEY *pk = NULL;
    if (!c || EVP_PKEY_fromdata_init(c) != 1 ||
        EVP_PKEY_fromdata(c, &pk, EVP_PKEY_KEYPAIR, ps) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(ps);
    return pk;
}

/* true if pk passes OpenSSL's full key-pair check. */
static bool key_ok(EVP_PKEY *pk)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
    bool ok = c && EVP_PKEY_pairwise_check(c) == 1 && EVP_PKEY_private_check(c) == 1;
    EVP_PKEY_CTX_free(c);
    return ok;
}

static CK_RV ec_material(const CK_ATTRIBUTE *t, CK_ULONG n, p11_ktype *type, uint8_t **der,
                         size_t *der_len)
{
    const CK_ATTRIBUTE *ep = bytes(t, n, CKA_EC_PARAMS), *v = bytes(t, n, CKA_VALUE);
    if (!ep || !v)
        return CKR_TEMPLATE_INCOMPLETE;
    const char *group;
    int nid;
    size_t flen;
    if (attr_is(ep, oid_p256, sizeof oid_p256)) {
        group = "P-256", nid = NID_X9_62_prime256v1, flen = 32, *type = P11_KT_ECDSA_P256;
    } else if (attr_is(ep, oid_p384, sizeof oid_p384)) {
        group = "P-384", nid = NID_secp384r1, flen = 48, *type = P11_KT_ECDSA_P384;
    } else {
        return CKR_ATTRIBUTE_VALUE_INVALID; /* a curve transit does not offer */
    }
    if (v->ulValueLen > flen)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_RV rv = CKR_HOST_MEMORY;
    BIGNUM *d = BN_secure_new();
    BN_CTX *bc = BN_CTX_new();
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
    EC_POINT *q = g ? EC_POINT_new(g) : NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    uint8_t pub[1 + 2 * 48];
    size_t pl = 0;
    EVP_PKEY *pk = NULL;
    if (!d || !bc || !q || !b || !BN_bin2bn(v->pValue, (int)v->ulValueLen, d))
        goto out;
    rv = CKR_ATTRIBUTE_VALUE_INVALID;
    if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0)
        goto out;
    if (!EC_POINT_mul(g, q, d, NULL, NULL, bc) ||
        !(pl = EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, bc)))
        goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
        !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, pl))
        goto out;
    if ((pk = from_data("EC", b)) && key_ok(pk))
        rv = to_pkcs8(pk, der, der_len);
out:
    EVP_PKEY_free(pk);
    OSSL_PARAM_BLD_free(b);
    EC_POINT_free(q);
    EC_GROUP_free(g);
    BN_CTX_free(bc);
    BN_clear_free(d);
    return rv;
}

static CK_RV ed_material(const CK_ATTRIBUTE *t, CK_ULONG n, p11_ktype *type, uint8_t **der,
                         size_t *der_len)
{
    const CK_ATTRIBUTE *ep = bytes(t, n, CKA_EC_PARAMS), *v = bytes(t, n, CKA_VALUE);
    if (!ep || !v)
        return CKR_TEMPLATE_INCOMPLETE;
    if (!attr_is(ep, oid_ed25519, sizeof oid_ed25519) &&
        !attr_is(ep, name_ed25519, sizeof name_ed25519))
        return CKR_ATTRIBUTE_VALUE_INVALID; /* Ed448 is not offered */
    if (v->ulValueLen != 32)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, v->pValue, 32);
    if (!pk)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    *type = P11_KT_ED25519;
    CK_RV rv = to_pkcs8(pk, der, der_len);
    EVP_PKEY_free(pk);
    return rv;
}

static CK_RV rsa_material(const CK_ATTRIBUTE *t, CK_ULONG n, p11_ktype *type, uint8_t **der,
                          size_t *der_len)
{
    static const struct {
        CK_ATTRIBUTE_TYPE a;
        const char *p;
    } parts[] = {
        {CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N},
        {CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E},
        {CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},
        {CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
        {CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},
        {CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2},
        {CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
    };
    enum { NPARTS = sizeof parts / sizeof parts[0] };
    BIGNUM *bn[NPARTS] = {0};
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    CK_RV rv = b ? CKR_OK : CKR_HOST_MEMORY;
    for (size_t i = 0; i < NPARTS && rv == CKR_OK; i++) {
        const CK_ATTRIBUTE *x = bytes(t, n, parts[i].a);
        if (!x)
            rv = CKR_TEMPLATE_INCOMPLETE; /* transit keeps the CRT form: all parts */
        else if (!(bn[i] = BN_secure_new()) || !BN_bin2bn(x->pValue, (int)x->ulValueLen, bn[i]) ||
                 !OSSL_PARAM_BLD_push_BN(b, parts[i].p, bn[i]))
            rv = CKR_HOST_MEMORY;
    }
    if (rv == CKR_OK) {
        int bits = BN_num_bits(bn[0]);
        *type = bits == 2048 ? P11_KT_RSA2048 : bits == 3072 ? P11_KT_RSA3072
                                          : bits == 4096 ? P11_KT_RSA4096
                                                         : P11_KT_OTHER;
        if (*type == P11_KT_OTHER || !BN_is_word(bn[1], 65537))
            rv = CKR_ATTRIBUTE_VALUE_INVALID; /* transit's sizes; its keys use 65537 */
    }
    if (rv == CKR_OK)
        rv = (pk = from_data("RSA", b)) && key_ok(pk) ? to_pkcs8(pk, der, der_len)
                                                      : CKR_ATTRIBUTE_VALUE_INVALID;
    EVP_PKEY_free(pk);
    OSSL_PARAM_BLD_free(b);
    for (size_t i = 0; i < NPARTS; i++)
        BN_clear_free(bn[i]);
    return rv;
}

static CK_RV material(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_CLASS cls, p11_ktype *type,
                      uint8_t **der, size_t *der_len);

CK_RV p11_import_material(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_CLASS cls,
                          p11_ktype *type, uint8_t **der, size_t *der_len)
{
    CK_RV rv = material(tmpl, n, cls, type, der, der_len);
    if (rv != CKR_OK) { /* no half results */
        p11_import_free(*der, *der_len);
        *der = NULL;
        *der_len = 0;
        *type = P11_KT_OTHER;
    }
    return rv;
}

static CK_RV material(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_CLASS cls, p11_ktype *type,
                      uint8_t **der, size_t *der_len)
{
    *der = NULL;
    *der_len = 0;
    *type = P11_KT_OTHER;
    const CK_ATTRIBUTE *kt = find(tmpl, n, CKA_KEY_TYPE);
    if (!kt)
        return CKR_TEMPLATE_INCOMPLETE;
    CK_KEY_TYPE k;
    if (!kt->pValue || kt->ulValueLen != sizeof k)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    memcpy(&k, kt->pValue, sizeof k);
    if (cls == CKO_SECRET_KEY) {
        if (k != CKK_AES)
            return CKR_ATTRIBUTE_VALUE_INVALID; /* transit's secret keys here: AES-256-GCM */
        const CK_ATTRIBUTE *v = bytes(tmpl, n, CKA_VALUE);
        if (!v)
            return CKR_TEMPLATE_INCOMPLETE;
        const CK_ATTRIBUTE *vl = find(tmpl, n, CKA_VALUE_LEN);
        if (v->ulValueLen != 32 || vl) /* CKA_VALUE_LEN is not given with CKA_VALUE */
            return vl ? CKR_TEMPLATE_INCONSISTENT : CKR_ATTRIBUTE_VALUE_INVALID;
        if (!(*der = malloc(32)))
            return CKR_HOST_MEMORY;
        memcpy(*der, v->pValue, 32);
        *der_len = 32;
        *type = P11_KT_AES256_GCM96;
        return CKR_OK;
    }
    if (cls != CKO_PRIVATE_KEY)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    switch (k) {
    case CKK_EC: return ec_material(tmpl, n, type, der, der_len);
    case CKK_EC_EDWARDS: return ed_material(tmpl, n, type, der, der_len);
    case CKK_RSA: return rsa_material(tmpl, n, type, der, der_len);
    default: return CKR_ATTRIBUTE_VALUE_INVALID;
    }
}
