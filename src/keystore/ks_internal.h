/* ks_internal: what the KeyStore's modules share (mt_keystore.c service,
 * mt_keyring.c node, ks_msg.c message crypto). Not installed. */
#ifndef MT_KS_INTERNAL_H
#define MT_KS_INTERNAL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_keystore.h"

#define KS_GCM_OVERHEAD 28 /* nonce(12) || ciphertext || tag(16) */

static inline void ks_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t ks_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* AES-256-GCM with a random nonce: out = nonce || ct || tag (len +
 * KS_GCM_OVERHEAD bytes). */
mt_status ks_gcm_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t len, uint8_t *out, mt_err *err);
/* Inverse; out receives in_len - KS_GCM_OVERHEAD bytes. MT_ECRYPTO. */
mt_status ks_gcm_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t in_len, uint8_t *out, mt_err *err);
/* Encrypts plain (records: u32be version || 32-byte key) to the P-256 key
 * of the certificate cert (DER) as a release response (JSON, heap). */
mt_status ks_release_encrypt(const uint8_t *cert, size_t cert_len, uint32_t current,
                             const uint8_t *plain, size_t plain_len, char **resp,
                             size_t *resp_len, mt_err *err);
/* Decrypts a release response with the node's private key and certificate;
 * *plain heap (wipe + free), *current set. */
mt_status ks_release_decrypt(EVP_PKEY *priv, const uint8_t *cert, size_t cert_len,
                             const char *resp, size_t len, uint8_t **plain, size_t *plain_len,
                             uint32_t *current, mt_err *err);

/* key = HKDF-SHA256(ikm = ECDH(mine, peer), salt, info) (32 bytes), for the
 * release messages and the escrow shares (ks_msg.c). MT_ECRYPTO when the
 * agreement fails (e.g. keys of different curves). */
mt_status ks_ecdh_hkdf(EVP_PKEY *mine, EVP_PKEY *peer, const uint8_t salt[32],
                       const uint8_t *info, size_t info_len, uint8_t key[32], mt_err *err);

/* Escrow (ks_escrow.c) hooks into the service (mt_keystore.c): the live
 * root versions as records (u32be version || 32-byte key, ascending; heap,
 * wipe + free), the current version and the state's level. */
mt_status ks_export_roots(mt_keystore *ks, uint8_t **records, size_t *len, uint32_t *current,
                          char level[16], mt_err *err);
/* Opens data_dir's KeyStore when no state file exists, bootstrapping it
 * (policy from req, like a first start) with the given root versions
 * instead of a fresh version 1. MT_ECONFLICT when a state exists. */
mt_status ks_open_with_roots(mt_tee *tee, const char *data_dir, const char *coll_dir,
                             const char *req, size_t req_len, const uint8_t *records,
                             size_t rec_len, uint32_t current, mt_keystore **out, mt_err *err);

#endif
