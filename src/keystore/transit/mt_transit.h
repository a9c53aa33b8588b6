/* mt_transit: the pure cryptography of the user KeyStore's transit API
 * (docs/keystore.md): key types, key generation, AEAD encryption in Vault's
 * layout, signatures, HMACs, hashes, the KEK wrapping of stored key material
 * and the unwrapping of imported keys (Vault's BYOK format). No store, no
 * HTTP: src/core/transit*.c glues this to both.
 *
 * Ownership: an mt_tk_key owns its material (raw bytes in wiping memory,
 * mt_secmem) and its OpenSSL key; mt_tk_key_free(NULL) is a no-op. Every
 * uint8_t ** output is a new heap block the caller frees: material and
 * plaintext with mt_secmem_free, everything else with free(); outputs are
 * NULL on failure.
 * Errors: MT_EINVAL for a request the key cannot serve (wrong key type,
 * unknown algorithm, bad lengths), messages built from fixed text and the
 * key type only; MT_ECRYPTO "decryption failed" / "key unwrap failed" and
 * nothing more when authentication fails; MT_ENOMEM / MT_EINTERNAL for
 * OpenSSL failures.
 * Thread-safety: reentrant; a key may be used by several threads at once
 * (it is never changed after creation). */
#ifndef MT_TRANSIT_H
#define MT_TRANSIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef enum mt_tk_type {
    MT_TK_NONE = 0,
    MT_TK_AES256_GCM96,
    MT_TK_CHACHA20_POLY1305,
    MT_TK_ECDSA_P256,
    MT_TK_ECDSA_P384,
    MT_TK_ED25519,
    MT_TK_RSA_2048,
    MT_TK_RSA_3072,
    MT_TK_RSA_4096,
    MT_TK_HMAC,
    MT_TK_ECDSA_P521,
} mt_tk_type;

typedef enum mt_tk_hash {
    MT_TH_NONE = 0,
    MT_TH_SHA2_224,
    MT_TH_SHA2_256,
    MT_TH_SHA2_384,
    MT_TH_SHA2_512,
    MT_TH_SHA3_224,
    MT_TH_SHA3_256,
    MT_TH_SHA3_384,
    MT_TH_SHA3_512,
} mt_tk_hash;

typedef enum mt_tk_sigalg { MT_TS_DEFAULT = 0, MT_TS_PSS, MT_TS_PKCS1V15 } mt_tk_sigalg;
typedef enum mt_tk_marshal { MT_TM_ASN1 = 0, MT_TM_JWS } mt_tk_marshal;

/* Vault's names ("aes256-gcm96", ...); NULL for MT_TK_NONE. */
const char *mt_tk_type_name(mt_tk_type t);
/* MT_TK_NONE when s names no type. */
mt_tk_type mt_tk_type_parse(const char *s);
bool mt_tk_type_encrypts(mt_tk_type t); /* aes256-gcm96, chacha20-poly1305, rsa-* */
bool mt_tk_type_signs(mt_tk_type t);    /* ecdsa-*, ed25519, rsa-* */
bool mt_tk_type_asymmetric(mt_tk_type t);

/* "sha2-256", "sha3-512", ... (Vault's names; "none" is MT_TH_NONE);
 * false when s names no hash. */
bool mt_tk_hash_parse(const char *s, mt_tk_hash *out);
const char *mt_tk_hash_name(mt_tk_hash h);
size_t mt_tk_hash_len(mt_tk_hash h); /* 0 for MT_TH_NONE */
/* "pss", "pkcs1v15"; "asn1", "jws". */
bool mt_tk_sigalg_parse(const char *s, mt_tk_sigalg *out);
bool mt_tk_marshal_parse(const char *s, mt_tk_marshal *out);

typedef struct mt_tk_key mt_tk_key;

/* A new random key of type t. */
mt_status mt_tk_key_generate(mt_tk_type t, mt_tk_key **out, mt_err *err);
/* A key from its material: 32 raw bytes for the symmetric types and hmac
 * (hmac: 16 to 64 bytes), a PKCS#8 DER private key of the right algorithm
 * and size for the others. MT_EINVAL naming the mismatch otherwise. */
mt_status mt_tk_key_from_material(mt_tk_type t, const uint8_t *m, size_t n, mt_tk_key **out,
                                  mt_err *err);
/* The material (the form mt_tk_key_from_material takes), mt_secmem block. */
mt_status mt_tk_key_material(const mt_tk_key *k, uint8_t **out, size_t *n, mt_err *err);
mt_tk_type mt_tk_key_type(const mt_tk_key *k);
void mt_tk_key_free(mt_tk_key *k);
/* The public key as Vault shows it: PEM SubjectPublicKeyInfo for ECDSA and
 * RSA, standard base64 of the 32 raw bytes for ed25519; "" (a heap empty
 * string) for symmetric keys. */
mt_status mt_tk_public_text(const mt_tk_key *k, char **out, mt_err *err);
/* PEM SubjectPublicKeyInfo for every asymmetric type (ed25519 included). */
mt_status mt_tk_public_pem(const mt_tk_key *k, char **out, mt_err *err);
/* Curve name Vault shows per version ("P-256", "P-384", "ed25519", "rsa-2048"). */
const char *mt_tk_type_curve(mt_tk_type t);

/* AEAD: out = nonce(12) || ciphertext || tag(16) (Vault's layout).
 * aad may be NULL when aad_len is 0.
 * rsa-* keys: out = RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) of pt, as
 * Vault does; aad must be empty (MT_EINVAL otherwise), pt at most
 * modulus - 66 bytes (MT_EINVAL); a ciphertext that is not one modulus long
 * or does not decrypt is MT_ECRYPTO "decryption failed". */
mt_status mt_tk_encrypt(const mt_tk_key *k, const uint8_t *pt, size_t n, const uint8_t *aad,
                        size_t aad_len, uint8_t **out, size_t *out_len, mt_err *err);
__attribute__((warn_unused_result)) mt_status
mt_tk_decrypt(const mt_tk_key *k, const uint8_t *ct, size_t n, const uint8_t *aad, size_t aad_len,
              uint8_t **out, size_t *out_len, mt_err *err);

/* Signs in (the data, or its digest when prehashed: then its length must be
 * the hash's) with hash h (ignored for ed25519, which must not be prehashed
 * nor given MT_TH_NONE... see docs/keystore.md), RSA padding sa (default PSS
 * with the largest salt), and marshaling m (jws: ECDSA as r||s). */
mt_status mt_tk_sign(const mt_tk_key *k, mt_tk_hash h, bool prehashed, mt_tk_sigalg sa,
                     mt_tk_marshal m, const uint8_t *in, size_t n, uint8_t **sig, size_t *sig_len,
                     mt_err *err);
/* *valid false (MT_OK) when the signature does not verify; MT_EINVAL when
 * the request is not one this key can check. */
mt_status mt_tk_verify(const mt_tk_key *k, mt_tk_hash h, bool prehashed, mt_tk_sigalg sa,
                       mt_tk_marshal m, const uint8_t *in, size_t n, const uint8_t *sig,
                       size_t sig_len, bool *valid, mt_err *err);

/* HMAC of in with the key's HMAC key (the material itself for hmac keys; for
 * the others a key derived from the material, HMAC-SHA256(material,
 * "mesatee-transit-hmac/v1")). out holds up to 64 bytes. */
mt_status mt_tk_hmac(const mt_tk_key *k, mt_tk_hash h, const uint8_t *in, size_t n,
                     uint8_t out[64], size_t *out_len, mt_err *err);
/* Digest of in (h != MT_TH_NONE); out holds up to 64 bytes. */
mt_status mt_tk_digest(mt_tk_hash h, const uint8_t *in, size_t n, uint8_t out[64],
                       size_t *out_len, mt_err *err);

/* Stored form of key material: version(1)=1 || nonce(12) || AES-256-GCM
 * ciphertext || tag(16) under kek with aad (which binds it to its owner,
 * key and version: docs/keystore.md "Storage"). */
mt_status mt_tk_seal(const uint8_t kek[32], const uint8_t *aad, size_t aad_len, const uint8_t *m,
                     size_t n, uint8_t **out, size_t *out_len, mt_err *err);
/* MT_ECRYPTO "key unwrap failed" on any mismatch; *out is an mt_secmem block. */
__attribute__((warn_unused_result)) mt_status
mt_tk_open(const uint8_t kek[32], const uint8_t *aad, size_t aad_len, const uint8_t *w, size_t n,
           uint8_t **out, size_t *out_len, mt_err *err);

/* The import wrapping key: a new RSA-4096 key (mt_tk_key of type rsa-4096). */
/* Unwraps a Vault BYOK import blob: RSA-OAEP(hash h, MGF1 h; h is sha2-256
 * by default) of a 32-byte ephemeral AES key, followed by AES-KWP (RFC 5649)
 * of the target key's material under it. wrapping is an rsa-4096 key.
 * MT_EINVAL for a blob of the wrong shape, MT_ECRYPTO "key unwrap failed"
 * when it does not decrypt. *out is an mt_secmem block. */
mt_status mt_tk_import_unwrap(const mt_tk_key *wrapping, mt_tk_hash h, const uint8_t *blob,
                              size_t n, uint8_t **out, size_t *out_len, mt_err *err);
/* The client side of the same format (tests, CLI `mesatee key import`):
 * wraps material for the wrapping key's public PEM. */
mt_status mt_tk_import_wrap(const char *wrapping_pem, mt_tk_hash h, const uint8_t *m, size_t n,
                            uint8_t **out, size_t *out_len, mt_err *err);

/* ---- derived keys, convergent encryption, export (docs/keystore.md) ---- */

#define MT_TK_CONTEXT_MAX 4096 /* bytes of a derivation context */

/* Types that may be created with derived=true: aes256-gcm96, chacha20-poly1305. */
bool mt_tk_type_derives(mt_tk_type t);
/* The key of context ctx (1 to MT_TK_CONTEXT_MAX bytes) of a derived key:
 * material HKDF-SHA256(ikm = k's 32 bytes, salt "mesatee-transit-derived/v1",
 * info = ctx), 32 bytes, same type. MT_EINVAL for another type or context. */
mt_status mt_tk_derive(const mt_tk_key *k, const uint8_t *ctx, size_t n, mt_tk_key **out,
                       mt_err *err);
/* Convergent encryption with the derived key dk (from mt_tk_derive): as
 * mt_tk_encrypt, but the nonce is the first 12 bytes of
 * HMAC-SHA256(nk, u64be(len ctx) || ctx || u64be(len aad) || aad || pt) with
 * nk = HMAC-SHA256(dk, "mesatee-transit-convergent-nonce/v1"): the same
 * plaintext, context and aad give the same ciphertext; decrypt with
 * mt_tk_decrypt(dk, ...). */
mt_status mt_tk_encrypt_convergent(const mt_tk_key *dk, const uint8_t *ctx, size_t cl,
                                   const uint8_t *pt, size_t n, const uint8_t *aad, size_t al,
                                   uint8_t **out, size_t *out_len, mt_err *err);

typedef enum mt_tk_export_kind {
    MT_TX_ENCRYPTION, /* aes/chacha: base64 of the 32 bytes; rsa: PEM RSA PRIVATE KEY */
    MT_TX_SIGNING,    /* ecdsa: PEM EC PRIVATE KEY; rsa: PEM RSA PRIVATE KEY;
                         ed25519: base64(seed(32) || public key(32)) */
    MT_TX_HMAC,       /* base64 of the key's HMAC key (mt_tk_hmac) */
    MT_TX_PUBLIC,     /* mt_tk_public_text */
} mt_tk_export_kind;
/* The key in Vault's export form for kind (*out an mt_secmem string);
 * MT_EINVAL when the key type has no key of that kind. */
mt_status mt_tk_export(const mt_tk_key *k, mt_tk_export_kind kind, char **out, mt_err *err);

/* Random bytes (RAND_bytes). */
mt_status mt_tk_random(uint8_t *out, size_t n, mt_err *err);

#endif
