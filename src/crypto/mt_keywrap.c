/* mt_keywrap: AES-256-GCM wrapping of 32-byte keys. See mt_keywrap.h and
 * docs/formats.md. The GCM AAD is version(1) || caller AAD, so the version
 * byte is authenticated too. */
#include "mt_keywrap.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

#include "mt_util.h"

#define KW_VERSION 1
#define KW_NONCE 12
#define KW_KEY 32
#define KW_TAG 16

_Static_assert(MT_KEYWRAP_LEN == 1 + KW_NONCE + KW_KEY + KW_TAG, "keywrap layout");

/* One AES-256-GCM operation over a 32-byte message. tag is written when
 * encrypting and checked when decrypting. Returns false on any failure. */
static bool gcm32(int enc, const uint8_t kek[32], const uint8_t nonce[KW_NONCE], const uint8_t *aad,
                  size_t aad_len, const uint8_t in[KW_KEY], uint8_t out[KW_KEY],
                  uint8_t tag[KW_TAG])
{
    const uint8_t ver = KW_VERSION;
    uint8_t fin[KW_TAG]; /* GCM final outputs nothing; never write past out */
    int n = 0, f = 0;
    if (aad_len > INT32_MAX)
        return false;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return false;
    bool ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KW_NONCE, NULL) == 1 &&
              EVP_CipherInit_ex(ctx, NULL, NULL, kek, nonce, enc) == 1 &&
              EVP_CipherUpdate(ctx, NULL, &n, &ver, 1) == 1 &&
              (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
              EVP_CipherUpdate(ctx, out, &n, in, KW_KEY) == 1 && n == KW_KEY;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KW_TAG, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(ctx, fin, &f) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KW_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

mt_status mt_keywrap_seal(const uint8_t kek[32], const uint8_t *aad, size_t aad_len,
                          const uint8_t key[32], uint8_t out[MT_KEYWRAP_LEN], mt_err *err)
{
    if (!kek || !key || !out || (!aad && aad_len))
        return mt_err_set(err, MT_EINVAL, "mt_keywrap_seal: NULL argument");
    out[0] = KW_VERSION;
    mt_status st = mt_random(out + 1, KW_NONCE, err);
    if (st != MT_OK)
        return st;
    if (!gcm32(1, kek, out + 1, aad, aad_len, key, out + 1 + KW_NONCE,
               out + 1 + KW_NONCE + KW_KEY)) {
        mt_wipe(out, MT_KEYWRAP_LEN);
        return mt_err_set(err, MT_EINTERNAL, "key wrap failed in OpenSSL");
    }
    return MT_OK;
}

mt_status mt_keywrap_open(const uint8_t kek[32], const uint8_t *aad, size_t aad_len,
                          const uint8_t *wrapped, size_t wrapped_len, uint8_t out[32], mt_err *err)
{
    if (!kek || !out || (!aad && aad_len) || (!wrapped && wrapped_len))
        return mt_err_set(err, MT_EINVAL, "mt_keywrap_open: NULL argument");
    if (wrapped_len != MT_KEYWRAP_LEN || wrapped[0] != KW_VERSION) {
        mt_wipe(out, KW_KEY);
        return mt_err_set(err, MT_ECRYPTO, "key unwrap failed");
    }
    uint8_t tag[KW_TAG];
    memcpy(tag, wrapped + 1 + KW_NONCE + KW_KEY, KW_TAG);
    if (!gcm32(0, kek, wrapped + 1, aad, aad_len, wrapped + 1 + KW_NONCE, out, tag)) {
        mt_wipe(out, KW_KEY);
        return mt_err_set(err, MT_ECRYPTO, "key unwrap failed");
    }
    return MT_OK;
}
