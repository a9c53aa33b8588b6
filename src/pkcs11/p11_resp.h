/* p11_resp: the one reader of the mesatee server's transit answers that the
 * PKCS#11 module uses (docs/keystore.md, Vault-transit JSON under "data").
 *
 * Every answer passes through here before the module looks at it: sizes,
 * types, the "vault:vN:" form, base64 and the public keys' DER are checked.
 * Ownership: outputs are heap values released with the matching _free /
 * free(); on failure outputs hold nothing. Errors: MT_ESERVER-like failures
 * are reported as MT_EINVAL with a message naming the field (never quoting
 * the server's bytes). Thread-safety: reentrant. */
#ifndef MT_P11_RESP_H
#define MT_P11_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define P11_RESP_MAX_BYTES (4u * 1024u * 1024u)
#define P11_RESP_MAX_NAME 128
#define P11_RESP_MAX_VERSIONS 1024
#define P11_RESP_MAX_KEYS 4096

typedef enum p11_ktype {
    P11_KT_OTHER = 0, /* a type the module does not show (hmac, chacha20, ...) */
    P11_KT_AES256_GCM96,
    P11_KT_ECDSA_P256,
    P11_KT_ECDSA_P384,
    P11_KT_ED25519,
    P11_KT_RSA2048,
    P11_KT_RSA3072,
    P11_KT_RSA4096,
} p11_ktype;

/* Transit type name of a p11_ktype ("ecdsa-p256"); NULL for P11_KT_OTHER. */
const char *p11_ktype_name(p11_ktype t);
p11_ktype p11_ktype_from_name(const char *s);

typedef struct p11_key_version {
    uint32_t version;
    uint8_t *spki; /* DER SubjectPublicKeyInfo; NULL for symmetric keys */
    size_t spki_len;
} p11_key_version;

typedef struct p11_keyinfo {
    char *name;
    p11_ktype type;
    uint32_t latest_version;
    uint32_t min_decryption_version;
    size_t nver;
    p11_key_version *ver; /* ascending by version */
} p11_keyinfo;

/* GET /v1/transit/keys/NAME answer. */
mt_status p11_resp_keyinfo(const char *json, size_t len, p11_keyinfo *out, mt_err *err);
void p11_keyinfo_free(p11_keyinfo *k);
/* LIST /v1/transit/keys answer: data.keys, an array of names (may be absent:
 * no keys). *names is an array of n heap strings, freed with p11_names_free. */
mt_status p11_resp_names(const char *json, size_t len, char ***names, size_t *n, mt_err *err);
void p11_names_free(char **names, size_t n);
/* A bare JSON array of key names (mesatee_transit_key_list's answer). */
mt_status p11_resp_name_list(const char *json, size_t len, char ***names, size_t *n, mt_err *err);
/* "vault:vN:<base64>" (a signature or ciphertext string): version and bytes. */
mt_status p11_resp_vault_str(const char *s, uint32_t *version, uint8_t **out, size_t *out_len,
                             mt_err *err);
/* data.<field> = "vault:vN:<base64>" (signature, ciphertext): version and bytes. */
mt_status p11_resp_vault_blob(const char *json, size_t len, const char *field, uint32_t *version,
                              uint8_t **out, size_t *out_len, mt_err *err);
/* data.<field> = "<base64>" (plaintext, random_bytes). */
mt_status p11_resp_b64(const char *json, size_t len, const char *field, uint8_t **out,
                       size_t *out_len, mt_err *err);
/* data.valid = true/false. */
mt_status p11_resp_valid(const char *json, size_t len, bool *valid, mt_err *err);

#endif
