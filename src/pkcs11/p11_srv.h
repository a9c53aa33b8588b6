/* p11_srv: the PKCS#11 module's calls to the server's transit API
 * (/v1/transit/..., docs/keystore.md) through libmesatee's typed
 * mesatee_transit_* calls.
 *
 * Every answer is read by p11_resp (bounded, checked). Key names passed in
 * are already checked by p11_srv_name_ok (URL-safe characters only).
 * Ownership: byte outputs are heap buffers (free()); on failure outputs are
 * NULL/0. Errors: a mesatee_status (MESATEE_OK == 0); the message is in
 * mesatee_client_errmsg(c). Thread-safety: one client handle, one thread at
 * a time (the module gives every session its own client). */
#ifndef MT_P11_SRV_H
#define MT_P11_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesatee.h"
#include "p11_resp.h"

/* true if s is a key name the module can create: 1..128 bytes of [A-Za-z0-9._-]. */
bool p11_srv_name_ok(const char *s, size_t len);
/* true if s names a key the module can use: a name, or "OWNER:NAME" for a
 * key another user granted (how transit lists those), 128 bytes at most. */
bool p11_srv_ref_ok(const char *s, size_t len);

int p11_srv_list(mesatee_client *c, char ***names, size_t *n);
int p11_srv_read(mesatee_client *c, const char *name, p11_keyinfo *out);
int p11_srv_create(mesatee_client *c, const char *name, p11_ktype type);
/* Signs in with version: prehashed (hash_alg names the digest: "sha2-256"...)
 * or the message itself (hash_alg NULL, Ed25519). sig_alg "pkcs1v15"/"pss"
 * for RSA (NULL otherwise). The signature comes back as transit returns it
 * (ECDSA: ASN.1 DER; Ed25519, RSA: raw). */
int p11_srv_sign(mesatee_client *c, const char *name, uint32_t version, const char *hash_alg,
                 const char *sig_alg, const uint8_t *in, size_t in_len, uint8_t **sig,
                 size_t *sig_len);
/* AES-GCM: *ct = nonce(12) || ciphertext || tag(16) as transit returns it.
 * aad may be NULL when aad_len is 0. */
int p11_srv_encrypt(mesatee_client *c, const char *name, uint32_t version, const uint8_t *pt,
                    size_t pt_len, const uint8_t *aad, size_t aad_len, uint8_t **ct,
                    size_t *ct_len);
/* ct is the raw transit ciphertext of that version (no "vault:vN:"). */
int p11_srv_decrypt(mesatee_client *c, const char *name, uint32_t version, const uint8_t *ct,
                    size_t ct_len, const uint8_t *aad, size_t aad_len, uint8_t **pt,
                    size_t *pt_len);
int p11_srv_random(mesatee_client *c, uint8_t *out, size_t n);
/* Transit import (BYOK) of material (p11_import.h) as a new key of type;
 * libmesatee wraps it for the server's wrapping key. */
int p11_srv_import(mesatee_client *c, const char *name, p11_ktype type, const uint8_t *material,
                   size_t n);
/* DELETE /v1/transit/keys/NAME: MESATEE_EINVAL when the key's
 * deletion_allowed is false. */
int p11_srv_delete(mesatee_client *c, const char *name);

#endif
