/* mt_keywrap: wraps 32-byte data keys under a 32-byte key-encryption key
 * (AES-256-GCM, random 12-byte nonce, caller AAD binding the key to its
 * object, e.g. the file id). Wrapped form: version(1)=1 || nonce(12) ||
 * ciphertext(32) || tag(16) = MT_KEYWRAP_LEN bytes.
 * Thread-safety: reentrant. */
#ifndef MT_KEYWRAP_H
#define MT_KEYWRAP_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_KEYWRAP_LEN 61

mt_status mt_keywrap_seal(const uint8_t kek[32], const uint8_t *aad, size_t aad_len,
                          const uint8_t key[32], uint8_t out[MT_KEYWRAP_LEN], mt_err *err);

/* MT_ECRYPTO ("key unwrap failed") on any mismatch; out is wiped then. */
__attribute__((warn_unused_result)) mt_status
mt_keywrap_open(const uint8_t kek[32], const uint8_t *aad, size_t aad_len,
                const uint8_t *wrapped, size_t wrapped_len, uint8_t out[32], mt_err *err);

#endif
