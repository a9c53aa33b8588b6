/* transit_crypto: key types, AEAD, signatures, HMAC, hashes, KEK sealing and
 * BYOK import unwrapping of the transit API (contract: mt_transit.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "mt_secmem.h"
#include "mt_transit.h"
#include "mt_util.h"

struct mt_tk_key {
    mt_tk_type type;
    uint8_t *raw; /* symmetric / hmac material, mt_secmem */
    size_t raw_len;
    EVP_PKEY *pkey; /* asymmetric */
    uint8_t hmac_key[32]; /* derived HMAC key (non-hmac types) */
};

static const struct {
    mt_tk_type t;
    const char *name;
    const char *curve;
} types[] = {
    {MT_TK_AES256_GCM96, "aes256-gcm96", ""},
    {MT_TK_CHACHA20_POLY1305, "chacha20-poly1305", ""},
    {MT_TK_ECDSA_P256, "ecdsa-p256", "P-256"},
    {MT_TK_ECDSA_P384, "ecdsa-p384", "P-384"},
    {MT_TK_ECDSA_P521, "ecdsa-p521", "P-521"},
    {MT_TK_ED25519, "ed25519", "ed25519"},
    {MT_TK_RSA_2048, "rsa-2048", "rsa-2048"},
    {MT_TK_RSA_3072, "rsa-3072", "rsa-3072"},
    {MT_TK_RSA_4096, "rsa-4096", "rsa-4096"},
    {MT_TK_HMAC, "hmac", ""},
};
#define N_TYPES (sizeof types / sizeof types[0])

const char *mt_tk_type_name(mt_tk_type t)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].t == t)
            return types[i].name;
    return NULL;
}

const char *mt_tk_type_curve(mt_tk_type t)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].t == t)
            return types[i].curve;
    return "";
}

mt_tk_type mt_tk_type_parse(const char *s)
{
    for (size_t i = 0; s && i < N_TYPES; i++)
        if (!strcmp(types[i].name, s))
            return types[i].t;
    return MT_TK_NONE;
}

bool mt_tk_type_encrypts(mt_tk_type t)
{
    return t == MT_TK_AES256_GCM96 || t == MT_TK_CHACHA20_POLY1305 || t == MT_TK_RSA_2048 ||
           t == MT_TK_RSA_3072 || t == MT_TK_RSA_4096;
}

bool mt_tk_type_asymmetric(mt_tk_type t)
{
    return t == MT_TK_ECDSA_P256 || t == MT_TK_ECDSA_P384 || t == MT_TK_ECDSA_P521 ||
           t == MT_TK_ED25519 || t == MT_TK_RSA_2048 || t == MT_TK_RSA_3072 || t == MT_TK_RSA_4096;
}

bool mt_tk_type_signs(mt_tk_type t)
{
    return mt_tk_type_asymmetric(t);
}

static bool is_rsa(mt_tk_type t)
{
    return t == MT_TK_RSA_2048 || t == MT_TK_RSA_3072 || t == MT_TK_RSA_4096;
}

static bool is_ec(mt_tk_type t)
{
    return t == MT_TK_ECDSA_P256 || t == MT_TK_ECDSA_P384 || t == MT_TK_ECDSA_P521;
}

static const struct {
    mt_tk_hash h;
    const char *name;
    const char *ossl;
    size_t len;
} hashes[] = {
    {MT_TH_NONE, "none", NULL, 0},
    {MT_TH_SHA2_224, "sha2-224", "SHA224", 28},
    {MT_TH_SHA2_256, "sha2-256", "SHA256", 32},
    {MT_TH_SHA2_384, "sha2-384", "SHA384", 48},
    {MT_TH_SHA2_512, "sha2-512", "SHA512", 64},
    {MT_TH_SHA3_224, "sha3-224", "SHA3-224", 28},
    {MT_TH_SHA3_256, "sha3-256", "SHA3-256", 32},
    {MT_TH_SHA3_384, "sha3-384", "SHA3-384", 48},
    {MT_TH_SHA3_512, "sha3-512", "SHA3-512", 64},
};
#define N_HASHES (sizeof hashes / sizeof hashes[0])

bool mt_tk_hash_parse(const char *s, mt_tk_hash *out)
{
    for (size_t i = 0; s && i < N_HASHES; i++)
        if (!strcmp(hashes[i].name, s)) {
            *out = hashes[i].h;
            return true;
        }
    return false;
}

const char *mt_tk_hash_name(mt_tk_hash h)
{
    for (size_t i = 0; i < N_HASHES; i++)
        if (hashes[i].h == h)
            return hashes[i].name;
    return "none";
}

size_t mt_tk_hash_len(mt_tk_hash h)
{
    for (size_t i = 0; i < N_HASHES; i++)
        if (hashes[i].h == h)
            return hashes[i].len;
    return 0;
}

static const EVP_MD *hash_md(mt_tk_hash h)
{
    switch (h) {
    case MT_TH_SHA2_224: return EVP_sha224();
    case MT_TH_SHA2_256: return EVP_sha256();
    case MT_TH_SHA2_384: return EVP_sha384();
    case MT_TH_SHA2_512: return EVP_sha512();
    case MT_TH_SHA3_224: return EVP_sha3_224();
    case MT_TH_SHA3_256: return EVP_sha3_256();
    case MT_TH_SHA3_384: return EVP_sha3_384();
    case MT_TH_SHA3_512: return EVP_sha3_512();
    case MT_TH_NONE: break;
    }
    return NULL;
}

bool mt_tk_sigalg_parse(const char *s, mt_tk_sigalg *out)
{
    if (s && !strcmp(s, "pss"))
        *out = MT_TS_PSS;
    else if (s && !strcmp(s, "pkcs1v15"))
        *out = MT_TS_PKCS1V15;
    else
        return false;
    return true;
}

bool mt_tk_marshal_parse(const char *s, mt_tk_marshal *out)
{
    if (s && !strcmp(s, "asn1"))
        *out = MT_TM_ASN1;
    else if (s && !strcmp(s, "jws"))
        *out = MT_TM_JWS;
    else
        return false;
    return true;
}

mt_status mt_tk_random(uint8_t *out, size_t n, mt_err *err)
{
    if (n && RAND_bytes(out, (int)n) != 1)
        return mt_err_set(err, MT_EINTERNAL, "random generator failed");
    return MT_OK;
}

/* ---- keys ---------------------------------------------------------------- */

static mt_tk_key *key_new(mt_tk_type t)
{
    mt_tk_key *k = calloc(1, sizeof *k);
    if (k)
        k->type = t;
    return k;
}

void mt_tk_key_free(mt_tk_key *k)
{
    if (!k)
        return;
    mt_secmem_free(k->raw);
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k->hmac_key, sizeof k->hmac_key);
    free(k);
}

mt_tk_type mt_tk_key_type(const mt_tk_key *k)
{
    return k ? k->type : MT_TK_NONE;
}

/* Derives the HMAC key of a non-hmac key from its material. */
static mt_status key_derive_hmac(mt_tk_key *k, const uint8_t *m, size_t n, mt_err *err)
{
    static const char label[] = "mesatee-transit-hmac/v1";
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), m, (int)n, (const uint8_t *)label, sizeof label - 1, k->hmac_key,
              &len) ||
        len != 32)
        return mt_err_set(err, MT_EINTERNAL, "HMAC key derivation failed");
    return MT_OK;
}

static int key_nid(mt_tk_type t)
{
    switch (t) {
    case MT_TK_ECDSA_P256: return NID_X9_62_prime256v1;
    case MT_TK_ECDSA_P384: return NID_secp384r1;
    case MT_TK_ECDSA_P521: return NID_secp521r1;
    default: return 0;
    }
}

static unsigned rsa_bits(mt_tk_type t)
{
    return t == MT_TK_RSA_2048 ? 2048 : t == MT_TK_RSA_3072 ? 3072 : t == MT_TK_RSA_4096 ? 4096 : 0;
}

/* True if pkey is of type t (algorithm, curve, size). */
static bool pkey_matches(EVP_PKEY *pkey, mt_tk_type t)
{
    if (is_rsa(t))
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA &&
               (unsigned)EVP_PKEY_get_bits(pkey) == rsa_bits(t);
    if (t == MT_TK_ED25519)
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
    if (is_ec(t)) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
            return false;
        char g[64];
        size_t gl = 0;
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof g, &gl))
            return false;
        return OBJ_txt2nid(g) == key_nid(t) || OBJ_sn2nid(g) == key_nid(t) ||
               EC_curve_nist2nid(g) == key_nid(t);
    }
    return false;
}

/* The first steps of making a key of type t: *out cleared, the type
 * checked, an empty key in *k. */
static mt_status key_start(mt_tk_type t, mt_tk_key **out, mt_tk_key **k, mt_err *err)
{
    *out = NULL;
    if (!mt_tk_type_name(t))
        return mt_err_set(err, MT_EINVAL, "unknown key type");
    if (!(*k = key_new(t)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

mt_status mt_tk_key_generate(mt_tk_type t, mt_tk_key **out, mt_err *err)
{
    mt_tk_key *k;
    mt_status rc = key_start(t, out, &k, err);
    if (rc)
        return rc;
    if (!mt_tk_type_asymmetric(t)) {
        k->raw_len = 32;
        k->raw = mt_secmem_malloc(32);
        if (!k->raw)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = mt_tk_random(k->raw, 32, err);
        if (!rc && t != MT_TK_HMAC)
            rc = key_derive_hmac(k, k->raw, k->raw_len, err);
    } else {
        EVP_PKEY *p = NULL;
        if (is_rsa(t))
            p = EVP_RSA_gen(rsa_bits(t));
        else if (t == MT_TK_ED25519)
            p = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        else
            p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", mt_tk_type_curve(t));
        if (!p)
            rc = mt_err_set(err, MT_EINTERNAL, "key generation failed");
        k->pkey = p;
        if (!rc) {
            uint8_t *m = NULL;
            size_t n = 0;
            rc = mt_tk_key_material(k, &m, &n, err);
            if (!rc)
                rc = key_derive_hmac(k, m, n, err);
            mt_secmem_free(m);
        }
    }
    if (rc) {
        mt_tk_key_free(k);
        return rc;
    }
    *out = k;
    return MT_OK;
}

mt_status mt_tk_key_from_material(mt_tk_type t, const uint8_t *m, size_t n, mt_tk_key **out,
                                  mt_err *err)
{
    mt_tk_key *k;
    mt_status rc = key_start(t, out, &k, err);
    if (rc)
        return rc;
    if (!mt_tk_type_asymmetric(t)) {
        bool ok = t == MT_TK_HMAC ? (n >= 16 && n <= 64) : n == 32;
        if (!ok) {
            rc = mt_err_set(err, MT_EINVAL, "key material for a %s key must be %s",
                            mt_tk_type_name(t), t == MT_TK_HMAC ? "16 to 64 bytes" : "32 bytes");
        } else if (!(k->raw = mt_secmem_malloc(n))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        } else {
            memcpy(k->raw, m, n);
            k->raw_len = n;
            if (t != MT_TK_HMAC)
                rc = key_derive_hmac(k, m, n, err);
        }
    } else {
        const uint8_t *p = m;
        PKCS8_PRIV_KEY_INFO *p8 = n <= 16384 ? d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n) : NULL;
        EVP_PKEY *pk = p8 && p == m + n ? EVP_PKCS82PKEY(p8) : NULL;
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (!pk) {
            rc = mt_err_set(err, MT_EINVAL,
                            "key material for a %s key must be a PKCS#8 DER private key",
                            mt_tk_type_name(t));
        } else if (!pkey_matches(pk, t)) {
            EVP_PKEY_free(pk);
            rc = mt_err_set(err, MT_EINVAL, "the private key is not a %s key", mt_tk_type_name(t));
        } else {
            k->pkey = pk;
            rc = key_derive_hmac(k, m, n, err);
        }
    }
    if (rc) {
        mt_tk_key_free(k);
        return rc;
    }
    *out = k;
    return MT_OK;
}

mt_status mt_tk_key_material(const mt_tk_key *k, uint8_t **out, size_t *n, mt_err *err)
{
    *out = NULL;
    *n = 0;
    if (k->raw) {
        if (!(*out = mt_secmem_malloc(k->raw_len)))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        memcpy(*out, k->raw, k->raw_len);
        *n = k->raw_len;
        return MT_OK;
    }
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k->pkey);
    int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
    uint8_t *buf = len > 0 ? mt_secmem_malloc((size_t)len) : NULL;
    uint8_t *w = buf;
    if (!buf || i2d_PKCS8_PRIV_KEY_INFO(p8, &w) != len) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        mt_secmem_free(buf);
        return mt_err_set(err, MT_EINTERNAL, "cannot encode the private key");
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    *out = buf;
    *n = (size_t)len;
    return MT_OK;
}

mt_status mt_tk_public_pem(const mt_tk_key *k, char **out, mt_err *err)
{
    *out = NULL;
    if (!k->pkey)
        return mt_err_set(err, MT_EINVAL, "a %s key has no public key", mt_tk_type_name(k->type));
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (!b || !PEM_write_bio_PUBKEY(b, k->pkey) || (len = BIO_get_mem_data(b, &data)) <= 0 ||
        !(*out = malloc((size_t)len + 1))) {
        BIO_free(b);
        return mt_err_set(err, MT_EINTERNAL, "cannot encode the public key");
    }
    memcpy(*out, data, (size_t)len);
    (*out)[len] = '\0';
    BIO_free(b);
    return MT_OK;
}

mt_status mt_tk_public_text(const mt_tk_key *k, char **out, mt_err *err)
{
    *out = NULL;
    if (!k->pkey) {
        *out = mt_strdup("");
        return *out ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (k->type == MT_TK_ED25519) {
        uint8_t raw[32];
        size_t rl = sizeof raw;
        if (!EVP_PKEY_get_raw_public_key(k->pkey, raw, &rl) || rl != 32)
            return mt_err_set(err, MT_EINTERNAL, "cannot encode the public key");
        *out = mt_b64_encode(raw, rl);
        return *out ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    return mt_tk_public_pem(k, out, err);
}

/* ---- AEAD ------------------------------------------------------------------ */

static const EVP_CIPHER *aead_cipher(mt_tk_type t)
{
    return t == MT_TK_AES256_GCM96 ? EVP_aes_256_gcm()
           : t == MT_TK_CHACHA20_POLY1305 ? EVP_chacha20_poly1305()
                                           : NULL;
}

/* AES-256-GCM or ChaCha20-Poly1305 with a 12-byte nonce and 16-byte tag.
 * enc: out = nonce || ct || tag; dec: in is that. */
static mt_status aead_n(const EVP_CIPHER *ciph, const uint8_t key[32], bool enc,
                        const uint8_t *fixed_nonce, const uint8_t *in, size_t n,
                        const uint8_t *aad, size_t aad_len, uint8_t **out, size_t *out_len,
                        bool secure_out, mt_err *err);

static mt_status aead(const EVP_CIPHER *ciph, const uint8_t key[32], bool enc, const uint8_t *in,
                      size_t n, const uint8_t *aad, size_t aad_len, uint8_t **out,
                      size_t *out_len, bool secure_out, mt_err *err)
{
    return aead_n(ciph, key, enc, NULL, in, n, aad, aad_len, out, out_len, secure_out, err);
}

/* aead with, when encrypting and fixed_nonce is not NULL, that nonce instead of a random one
 * (convergent encryption). */
static mt_status aead_n(const EVP_CIPHER *ciph, const uint8_t key[32], bool enc,
                        const uint8_t *fixed_nonce, const uint8_t *in, size_t n,
                        const uint8_t *aad, size_t aad_len, uint8_t **out, size_t *out_len,
                        bool secure_out, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (n > (size_t)INT32_MAX - 64 || aad_len > (size_t)INT32_MAX)
        return mt_err_set(err, MT_ETOOBIG, "input too large");
    if (!enc && n < 28)
        return mt_err_set(err, MT_ECRYPTO, "decryption failed");
    size_t cap = enc ? n + 28 : n - 28;
    uint8_t *buf = secure_out ? mt_secmem_malloc(cap + 1) : malloc(cap + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    mt_status rc = MT_OK;
    if (!buf || !ctx) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    uint8_t nonce[12];
    const uint8_t *body = in;
    size_t body_len = n;
    uint8_t *dst = buf;
    if (enc && fixed_nonce) {
        memcpy(nonce, fixed_nonce, sizeof nonce);
        memcpy(buf, nonce, 12);
        dst = buf + 12;
    } else if (enc) {
        if ((rc = mt_tk_random(nonce, sizeof nonce, err)))
            goto out;
        memcpy(buf, nonce, 12);
        dst = buf + 12;
    } else {
        memcpy(nonce, in, 12);
        body = in + 12;
        body_len = n - 28;
    }
    int l = 0, l2 = 0;
    if (EVP_CipherInit_ex(ctx, ciph, NULL, NULL, NULL, enc ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc ? 1 : 0) != 1 ||
        (aad_len && EVP_CipherUpdate(ctx, NULL, &l, aad, (int)aad_len) != 1) ||
        (body_len && EVP_CipherUpdate(ctx, dst, &l, body, (int)body_len) != 1)) {
        rc = enc ? mt_err_set(err, MT_EINTERNAL, "encryption failed")
                 : mt_err_set(err, MT_ECRYPTO, "decryption failed");
        goto out;
    }
    if (!body_len)
        l = 0;
    if (!enc &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(in + n - 16)) != 1) {
        rc = mt_err_set(err, MT_ECRYPTO, "decryption failed");
        goto out;
    }
    if (EVP_CipherFinal_ex(ctx, dst + l, &l2) != 1) {
        rc = enc ? mt_err_set(err, MT_EINTERNAL, "encryption failed")
                 : mt_err_set(err, MT_ECRYPTO, "decryption failed");
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, dst + l + l2) != 1) {
        rc = mt_err_set(err, MT_EINTERNAL, "encryption failed");
        goto out;
    }
    *out_len = cap;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc) {
        if (buf)
            OPENSSL_cleanse(buf, cap);
        free(buf);
        buf = NULL;
    }
    *out = buf;
    return rc;
}

static bool oaep_setup(EVP_PKEY_CTX *pc, mt_tk_hash h);

/* RSA-OAEP with SHA-256 for the label hash and MGF1, empty label: what Vault's
 * transit engine does with rsa-* keys. Plaintext is an mt_secmem block. */
static mt_status rsa_oaep(const mt_tk_key *k, bool enc, const uint8_t *in, size_t n,
                          size_t aad_len, uint8_t **out, size_t *out_len, mt_err *err)
{
    if (aad_len)
        return mt_err_set(err, MT_EINVAL,
                          "associated_data is not supported with %s keys (RSA-OAEP)",
                          mt_tk_type_name(k->type));
    size_t rl = (size_t)EVP_PKEY_get_size(k->pkey);
    size_t max = rl - 2 * 32 - 2; /* OAEP-SHA256 */
    if (enc && n > max)
        return mt_err_set(err, MT_EINVAL,
                          "plaintext too long for a %s key: RSA-OAEP-SHA256 takes at most %zu "
                          "bytes",
                          mt_tk_type_name(k->type), max);
    if (!enc && n != rl)
        return mt_err_set(err, MT_ECRYPTO, "decryption failed");
    uint8_t *buf = enc ? malloc(rl) : mt_secmem_malloc(rl);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k->pkey, NULL);
    size_t ol = rl;
    bool ok = pc && (enc ? EVP_PKEY_encrypt_init(pc) : EVP_PKEY_decrypt_init(pc)) > 0 &&
              oaep_setup(pc, MT_TH_SHA2_256) &&
              (enc ? EVP_PKEY_encrypt(pc, buf, &ol, in, n) : EVP_PKEY_decrypt(pc, buf, &ol, in, n)) >
                  0;
    EVP_PKEY_CTX_free(pc);
    if (!ok) {
        ERR_clear_error();
        if (enc)
            free(buf);
        else
            mt_secmem_free(buf);
        return enc ? mt_err_set(err, MT_EINTERNAL, "RSA-OAEP encryption failed")
                   : mt_err_set(err, MT_ECRYPTO, "decryption failed");
    }
    *out = buf;
    *out_len = ol;
    return MT_OK;
}

mt_status mt_tk_encrypt(const mt_tk_key *k, const uint8_t *pt, size_t n, const uint8_t *aad,
                        size_t aad_len, uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (!mt_tk_type_encrypts(k->type))
        return mt_err_set(err, MT_EINVAL, "a %s key does not support encryption",
                          mt_tk_type_name(k->type));
    if (is_rsa(k->type))
        return rsa_oaep(k, true, pt, n, aad_len, out, out_len, err);
    return aead(aead_cipher(k->type), k->raw, true, pt, n, aad, aad_len, out, out_len, false, err);
}

mt_status mt_tk_decrypt(const mt_tk_key *k, const uint8_t *ct, size_t n, const uint8_t *aad,
                        size_t aad_len, uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (!mt_tk_type_encrypts(k->type))
        return mt_err_set(err, MT_EINVAL, "a %s key does not support decryption",
                          mt_tk_type_name(k->type));
    if (is_rsa(k->type))
        return rsa_oaep(k, false, ct, n, aad_len, out, out_len, err);
    return aead(aead_cipher(k->type), k->raw, false, ct, n, aad, aad_len, out, out_len, true,
                err);
}

/* ---- signatures ------------------------------------------------------------ */

/* DER ECDSA signature <-> r||s of size 2*fl. */
static bool ecdsa_der_to_raw(const uint8_t *der, size_t n, size_t fl, uint8_t *out)
{
    const uint8_t *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
    bool ok = s && p == der + n &&
              BN_bn2binpad(ECDSA_SIG_get0_r(s), out, (int)fl) == (int)fl &&
              BN_bn2binpad(ECDSA_SIG_get0_s(s), out + fl, (int)fl) == (int)fl;
    ECDSA_SIG_free(s);
    return ok;
}

static uint8_t *ecdsa_raw_to_der(const uint8_t *raw, size_t n, size_t *der_len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(n / 2), NULL), *sv = BN_bin2bn(raw + n / 2, (int)(n / 2), NULL);
    uint8_t *der = NULL;
    if (!s || !r || !sv || !ECDSA_SIG_set0(s, r, sv)) {
        BN_free(r);
        BN_free(sv);
        ECDSA_SIG_free(s);
        return NULL;
    }
    int len = i2d_ECDSA_SIG(s, &der);
    ECDSA_SIG_free(s);
    if (len <= 0)
        return NULL;
    *der_len = (size_t)len;
    return der; /* OPENSSL_free */
}

static size_t ec_field_len(mt_tk_type t)
{
    return t == MT_TK_ECDSA_P256 ? 32 : t == MT_TK_ECDSA_P384 ? 48 : 66;
}

/* Checks the request against the key: which hashes, prehashing, padding and
 * marshaling a key type takes (docs/keystore.md). */
static mt_status sign_check(const mt_tk_key *k, mt_tk_hash h, bool prehashed, mt_tk_sigalg sa,
                            mt_tk_marshal m, size_t n, mt_err *err)
{
    const char *tn = mt_tk_type_name(k->type);
    if (!mt_tk_type_signs(k->type))
        return mt_err_set(err, MT_EINVAL, "a %s key does not support signing", tn ? tn : "?");
    if (k->type == MT_TK_ED25519) {
        if (prehashed)
            return mt_err_set(err, MT_EINVAL, "an ed25519 key does not sign prehashed input");
    } else if (h == MT_TH_NONE) {
        return mt_err_set(err, MT_EINVAL, "hash_algorithm 'none' is not supported");
    }
    if (sa != MT_TS_DEFAULT && !is_rsa(k->type))
        return mt_err_set(err, MT_EINVAL, "signature_algorithm applies to rsa keys only");
    if (m == MT_TM_JWS && !is_ec(k->type) && k->type != MT_TK_ED25519 && !is_rsa(k->type))
        return mt_err_set(err, MT_EINVAL, "marshaling_algorithm jws is not supported here");
    if (prehashed && n != mt_tk_hash_len(h))
        return mt_err_set(err, MT_EINVAL,
                          "prehashed input must be the %zu-byte digest of hash_algorithm %s",
                          mt_tk_hash_len(h), mt_tk_hash_name(h));
    return MT_OK;
}

/* Sets RSA padding on a signing/verifying context. */
static bool rsa_pad(EVP_PKEY_CTX *pc, mt_tk_sigalg sa, bool sign)
{
    if (sa == MT_TS_PKCS1V15)
        return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0;
    return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, sign ? RSA_PSS_SALTLEN_MAX
                                                     : RSA_PSS_SALTLEN_AUTO) > 0;
}

mt_status mt_tk_sign(const mt_tk_key *k, mt_tk_hash h, bool prehashed, mt_tk_sigalg sa,
                     mt_tk_marshal m, const uint8_t *in, size_t n, uint8_t **sig, size_t *sig_len,
                     mt_err *err)
{
    *sig = NULL;
    *sig_len = 0;
    mt_status rc = sign_check(k, h, prehashed, sa, m, n, err);
    if (rc)
        return rc;
    size_t cap = (size_t)EVP_PKEY_get_size(k->pkey);
    uint8_t *buf = malloc(cap + 1);
    EVP_MD_CTX *mc = NULL;
    EVP_PKEY_CTX *pc = NULL;
    size_t len = cap;
    bool ok = false;
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (prehashed) {
        pc = EVP_PKEY_CTX_new(k->pkey, NULL);
        ok = pc && EVP_PKEY_sign_init(pc) > 0 &&
             EVP_PKEY_CTX_set_signature_md(pc, hash_md(h)) > 0 &&
             (!is_rsa(k->type) || rsa_pad(pc, sa, true)) &&
             EVP_PKEY_sign(pc, buf, &len, in, n) > 0;
    } else {
        mc = EVP_MD_CTX_new();
        const EVP_MD *md = k->type == MT_TK_ED25519 ? NULL : hash_md(h);
        ok = mc && EVP_DigestSignInit(mc, &pc, md, NULL, k->pkey) > 0 &&
             (!is_rsa(k->type) || rsa_pad(pc, sa, true)) &&
             EVP_DigestSign(mc, buf, &len, in, n) > 0;
        pc = NULL; /* owned by mc */
    }
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    if (!ok) {
        free(buf);
        return mt_err_set(err, MT_EINTERNAL, "signing failed");
    }
    if (m == MT_TM_JWS && is_ec(k->type)) {
        size_t fl = ec_field_len(k->type);
        uint8_t *raw = malloc(2 * fl);
        if (!raw || !ecdsa_der_to_raw(buf, len, fl, raw)) {
            free(raw);
            free(buf);
            return mt_err_set(err, MT_EINTERNAL, "signing failed");
        }
        free(buf);
        buf = raw;
        len = 2 * fl;
    }
    *sig = buf;
    *sig_len = len;
    return MT_OK;
}

mt_status mt_tk_verify(const mt_tk_key *k, mt_tk_hash h, bool prehashed, mt_tk_sigalg sa,
                       mt_tk_marshal m, const uint8_t *in, size_t n, const uint8_t *sig,
                       size_t sig_len, bool *valid, mt_err *err)
{
    *valid = false;
    mt_status rc = sign_check(k, h, prehashed, sa, m, n, err);
    if (rc)
        return rc;
    uint8_t *der = NULL;
    if (m == MT_TM_JWS && is_ec(k->type)) {
        if (sig_len != 2 * ec_field_len(k->type))
            return MT_OK;
        size_t dl = 0;
        if (!(der = ecdsa_raw_to_der(sig, sig_len, &dl)))
            return MT_OK;
        sig = der;
        sig_len = dl;
    }
    EVP_MD_CTX *mc = NULL;
    EVP_PKEY_CTX *pc = NULL;
    int r = 0;
    if (prehashed) {
        pc = EVP_PKEY_CTX_new(k->pkey, NULL);
        r = pc && EVP_PKEY_verify_init(pc) > 0 &&
                    EVP_PKEY_CTX_set_signature_md(pc, hash_md(h)) > 0 &&
                    (!is_rsa(k->type) || rsa_pad(pc, sa, false))
                ? EVP_PKEY_verify(pc, sig, sig_len, in, n)
                : -1;
    } else {
        mc = EVP_MD_CTX_new();
        const EVP_MD *md = k->type == MT_TK_ED25519 ? NULL : hash_md(h);
        r = mc && EVP_DigestVerifyInit(mc, &pc, md, NULL, k->pkey) > 0 &&
                    (!is_rsa(k->type) || rsa_pad(pc, sa, false))
                ? EVP_DigestVerify(mc, sig, sig_len, in, n)
                : -1;
        pc = NULL;
    }
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    OPENSSL_free(der);
    *valid = r == 1;
    return MT_OK;
}

/* ---- HMAC, digests ----------------------------------------------------------- */

mt_status mt_tk_hmac(const mt_tk_key *k, mt_tk_hash h, const uint8_t *in, size_t n,
                     uint8_t out[64], size_t *out_len, mt_err *err)
{
    *out_len = 0;
    const EVP_MD *md = hash_md(h);
    if (!md)
        return mt_err_set(err, MT_EINVAL, "an HMAC needs a hash algorithm");
    const uint8_t *key = k->type == MT_TK_HMAC ? k->raw : k->hmac_key;
    size_t kl = k->type == MT_TK_HMAC ? k->raw_len : sizeof k->hmac_key;
    unsigned int len = 0;
    if (!HMAC(md, key, (int)kl, in, n, out, &len))
        return mt_err_set(err, MT_EINTERNAL, "HMAC failed");
    *out_len = len;
    return MT_OK;
}

mt_status mt_tk_digest(mt_tk_hash h, const uint8_t *in, size_t n, uint8_t out[64],
                       size_t *out_len, mt_err *err)
{
    *out_len = 0;
    const EVP_MD *md = hash_md(h);
    unsigned int len = 0;
    if (!md)
        return mt_err_set(err, MT_EINVAL, "unknown hash algorithm");
    if (EVP_Digest(in, n, out, &len, md, NULL) != 1)
        return mt_err_set(err, MT_EINTERNAL, "hash failed");
    *out_len = len;
    return MT_OK;
}

/* ---- sealing under the KEK --------------------------------------------------- */

mt_status mt_tk_seal(const uint8_t kek[32], const uint8_t *aad, size_t aad_len, const uint8_t *m,
                     size_t n, uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    uint8_t *body = NULL;
    size_t bl = 0;
    mt_status rc = aead(EVP_aes_256_gcm(), kek, true, m, n, aad, aad_len, &body, &bl, false, err);
    if (rc)
        return rc;
    uint8_t *buf = malloc(bl + 1);
    if (!buf) {
        free(body);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    buf[0] = 1;
    memcpy(buf + 1, body, bl);
    free(body);
    *out = buf;
    *out_len = bl + 1;
    return MT_OK;
}

mt_status mt_tk_open(const uint8_t kek[32], const uint8_t *aad, size_t aad_len, const uint8_t *w,
                     size_t n, uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (n < 29 || w[0] != 1)
        return mt_err_set(err, MT_ECRYPTO, "key unwrap failed");
    mt_status rc = aead(EVP_aes_256_gcm(), kek, false, w + 1, n - 1, aad, aad_len, out, out_len,
                        true, err);
    if (rc)
        return mt_err_set(err, MT_ECRYPTO, "key unwrap failed");
    return MT_OK;
}

/* ---- BYOK import ------------------------------------------------------------- */

/* AES-256-KWP (RFC 5649) of in under key, wrap or unwrap. */
static mt_status kwp(const uint8_t key[32], bool wrap, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (n == 0 || n > 65536 || (!wrap && (n < 16 || n % 8)))
        return wrap ? mt_err_set(err, MT_EINVAL, "key material of a bad size")
                    : mt_err_set(err, MT_EINVAL, "import ciphertext has a bad length");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t *buf = mt_secmem_malloc(n + 16);
    int l = 0, l2 = 0;
    mt_status rc = MT_OK;
    if (!ctx || !buf) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, key, NULL, wrap ? 1 : 0) != 1 ||
        EVP_CipherUpdate(ctx, buf, &l, in, (int)n) != 1 ||
        EVP_CipherFinal_ex(ctx, buf + l, &l2) != 1) {
        rc = wrap ? mt_err_set(err, MT_EINTERNAL, "key wrap failed")
                  : mt_err_set(err, MT_ECRYPTO, "key unwrap failed");
        goto out;
    }
    *out_len = (size_t)(l + l2);
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc) {
        mt_secmem_free(buf);
        buf = NULL;
    }
    *out = buf;
    return rc;
}

static bool oaep_setup(EVP_PKEY_CTX *pc, mt_tk_hash h)
{
    const EVP_MD *md = hash_md(h);
    return md && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) > 0;
}

mt_status mt_tk_import_unwrap(const mt_tk_key *wrapping, mt_tk_hash h, const uint8_t *blob,
                              size_t n, uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (!wrapping || !is_rsa(wrapping->type))
        return mt_err_set(err, MT_EINTERNAL, "no wrapping key");
    if (!hash_md(h))
        return mt_err_set(err, MT_EINVAL, "unknown hash_function");
    size_t rl = (size_t)EVP_PKEY_get_size(wrapping->pkey);
    if (n < rl + 16 || (n - rl) % 8)
        return mt_err_set(err, MT_EINVAL,
                          "import ciphertext must be the %zu-byte RSA-OAEP block followed by "
                          "the AES-KWP wrapped key",
                          rl);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(wrapping->pkey, NULL);
    uint8_t eph[512];
    size_t el = sizeof eph;
    bool ok = pc && EVP_PKEY_decrypt_init(pc) > 0 && oaep_setup(pc, h) &&
              EVP_PKEY_decrypt(pc, eph, &el, blob, rl) > 0 && el == 32;
    EVP_PKEY_CTX_free(pc);
    if (!ok) {
        OPENSSL_cleanse(eph, sizeof eph);
        return mt_err_set(err, MT_ECRYPTO, "key unwrap failed");
    }
    mt_status rc = kwp(eph, false, blob + rl, n - rl, out, out_len, err);
    OPENSSL_cleanse(eph, sizeof eph);
    return rc;
}

mt_status mt_tk_import_wrap(const char *wrapping_pem, mt_tk_hash h, const uint8_t *m, size_t n,
                            uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    BIO *b = BIO_new_mem_buf(wrapping_pem, -1);
    EVP_PKEY *pub = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!pub || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pub);
        return mt_err_set(err, MT_EINVAL, "the wrapping key is not an RSA public key in PEM");
    }
    uint8_t eph[32];
    size_t rl = (size_t)EVP_PKEY_get_size(pub);
    uint8_t *w = NULL;
    size_t wl = 0;
    mt_status rc = mt_tk_random(eph, sizeof eph, err);
    if (!rc)
        rc = kwp(eph, true, m, n, &w, &wl, err);
    uint8_t *buf = rc ? NULL : malloc(rl + wl);
    EVP_PKEY_CTX *pc = buf ? EVP_PKEY_CTX_new(pub, NULL) : NULL;
    size_t ol = rl;
    if (!rc && !(pc && EVP_PKEY_encrypt_init(pc) > 0 && oaep_setup(pc, h) &&
                 EVP_PKEY_encrypt(pc, buf, &ol, eph, sizeof eph) > 0 && ol == rl))
        rc = mt_err_set(err, MT_EINTERNAL, "cannot wrap the key for import");
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pub);
    OPENSSL_cleanse(eph, sizeof eph);
    if (!rc) {
        memcpy(buf + rl, w, wl);
        *out = buf;
        *out_len = rl + wl;
    } else {
        free(buf);
    }
    mt_secmem_free(w);
    return rc;
}

/* ---- derived keys, convergent encryption, export ------------------------------ */

bool mt_tk_type_derives(mt_tk_type t)
{
    return t == MT_TK_AES256_GCM96 || t == MT_TK_CHACHA20_POLY1305;
}

/* HKDF-SHA256 (RFC 5869) of ikm with salt and info into out (n bytes). */
static mt_status hkdf(const uint8_t *ikm, size_t il, const char *salt, const uint8_t *info,
                      size_t nl, uint8_t *out, size_t n, mt_err *err)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t ol = n;
    bool ok = pc && EVP_PKEY_derive_init(pc) > 0 &&
              EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
              EVP_PKEY_CTX_set1_hkdf_salt(pc, (const uint8_t *)salt, (int)strlen(salt)) > 0 &&
              EVP_PKEY_CTX_set1_hkdf_key(pc, ikm, (int)il) > 0 &&
              EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)nl) > 0 &&
              EVP_PKEY_derive(pc, out, &ol) > 0 && ol == n;
    EVP_PKEY_CTX_free(pc);
    return ok ? MT_OK : mt_err_set(err, MT_EINTERNAL, "key derivation failed");
}

mt_status mt_tk_derive(const mt_tk_key *k, const uint8_t *ctx, size_t n, mt_tk_key **out,
                       mt_err *err)
{
    *out = NULL;
    if (!mt_tk_type_derives(k->type) || !k->raw)
        return mt_err_set(err, MT_EINVAL, "a %s key cannot be derived",
                          mt_tk_type_name(k->type));
    if (n == 0 || n > MT_TK_CONTEXT_MAX)
        return mt_err_set(err, MT_EINVAL, "field 'context': 1 to %d bytes for a derived key",
                          MT_TK_CONTEXT_MAX);
    uint8_t d[32];
    mt_status rc = hkdf(k->raw, k->raw_len, "mesatee-transit-derived/v1", ctx, n, d, sizeof d,
                        err);
    if (!rc)
        rc = mt_tk_key_from_material(k->type, d, sizeof d, out, err);
    OPENSSL_cleanse(d, sizeof d);
    return rc;
}

static void put_u64be(uint8_t b[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

mt_status mt_tk_encrypt_convergent(const mt_tk_key *dk, const uint8_t *ctx, size_t cl,
                                   const uint8_t *pt, size_t n, const uint8_t *aad, size_t al,
                                   uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (!mt_tk_type_derives(dk->type) || !dk->raw)
        return mt_err_set(err, MT_EINVAL, "convergent encryption needs a derived key");
    static const char label[] = "mesatee-transit-convergent-nonce/v1";
    uint8_t nk[32], mac[32], len[16];
    unsigned int ml = 0;
    size_t fl = 0;
    mt_status rc = MT_OK;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                            (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!h || !HMAC(EVP_sha256(), dk->raw, (int)dk->raw_len, (const uint8_t *)label,
                    sizeof label - 1, nk, &ml) ||
        ml != 32) {
        rc = mt_err_set(err, MT_EINTERNAL, "nonce derivation failed");
        goto out;
    }
    put_u64be(len, cl);
    put_u64be(len + 8, al);
    bool ok = EVP_MAC_init(h, nk, sizeof nk, params) == 1 && EVP_MAC_update(h, len, 8) == 1 &&
              (!cl || EVP_MAC_update(h, ctx, cl) == 1) && EVP_MAC_update(h, len + 8, 8) == 1 &&
              (!al || EVP_MAC_update(h, aad, al) == 1) && (!n || EVP_MAC_update(h, pt, n) == 1) &&
              EVP_MAC_final(h, mac, &fl, sizeof mac) == 1 && fl == 32;
    if (!ok) {
        rc = mt_err_set(err, MT_EINTERNAL, "nonce derivation failed");
        goto out;
    }
    rc = aead_n(aead_cipher(dk->type), dk->raw, true, mac, pt, n, aad, al, out, out_len, false,
                err);
out:
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(m);
    OPENSSL_cleanse(nk, sizeof nk);
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

/* s (a heap string) copied into a new mt_secmem string *out; s is wiped and freed. */
static mt_status secret_text(char *s, char **out, mt_err *err)
{
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t l = strlen(s);
    *out = mt_secmem_malloc(l + 1);
    if (*out)
        memcpy(*out, s, l + 1);
    OPENSSL_cleanse(s, l);
    free(s);
    return *out ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

/* PEM of the private key in its traditional form (RSA PRIVATE KEY, EC PRIVATE KEY). */
static mt_status private_pem(const mt_tk_key *k, char **out, mt_err *err)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len = 0;
    if (!b || !PEM_write_bio_PrivateKey_traditional(b, k->pkey, NULL, NULL, 0, NULL, NULL) ||
        (len = BIO_get_mem_data(b, &data)) <= 0 || !(*out = mt_secmem_malloc((size_t)len + 1))) {
        BIO_free(b);
        return mt_err_set(err, MT_EINTERNAL, "cannot encode the private key");
    }
    memcpy(*out, data, (size_t)len);
    (*out)[len] = '\0';
    BIO_free(b);
    return MT_OK;
}

mt_status mt_tk_export(const mt_tk_key *k, mt_tk_export_kind kind, char **out, mt_err *err)
{
    *out = NULL;
    const char *tn = mt_tk_type_name(k->type);
    switch (kind) {
    case MT_TX_ENCRYPTION:
        if (!mt_tk_type_encrypts(k->type))
            break;
        if (is_rsa(k->type))
            return private_pem(k, out, err);
        return secret_text(mt_b64_encode(k->raw, k->raw_len), out, err);
    case MT_TX_SIGNING:
        if (!mt_tk_type_signs(k->type))
            break;
        if (k->type == MT_TK_ED25519) {
            /* Vault's form: base64 of the 32-byte seed followed by the public key */
            uint8_t raw[64];
            size_t sl = 32, pl = 32;
            if (!EVP_PKEY_get_raw_private_key(k->pkey, raw, &sl) || sl != 32 ||
                !EVP_PKEY_get_raw_public_key(k->pkey, raw + 32, &pl) || pl != 32) {
                OPENSSL_cleanse(raw, sizeof raw);
                return mt_err_set(err, MT_EINTERNAL, "cannot encode the private key");
            }
            mt_status rc = secret_text(mt_b64_encode(raw, sizeof raw), out, err);
            OPENSSL_cleanse(raw, sizeof raw);
            return rc;
        }
        return private_pem(k, out, err);
    case MT_TX_HMAC:
        if (k->type == MT_TK_HMAC)
            return secret_text(mt_b64_encode(k->raw, k->raw_len), out, err);
        return secret_text(mt_b64_encode(k->hmac_key, sizeof k->hmac_key), out, err);
    case MT_TX_PUBLIC:
        if (!mt_tk_type_asymmetric(k->type))
            break;
        return mt_tk_public_text(k, out, err);
    }
    return mt_err_set(err, MT_EINVAL, "a %s key has no key of that kind to export",
                      tn ? tn : "?");
}
