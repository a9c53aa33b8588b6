/* mt_cose: COSE_Sign1 (RFC 9052) reader and ES384 verification, as used by
 * AWS Nitro attestation documents. The parser accepts the optional tag 18,
 * requires a protected header map with alg (1) = ES384 (-35), an unprotected
 * map, a byte-string payload (not detached) and a 96-byte signature, with no
 * trailing bytes. Parsed fields borrow from the input. Reentrant. */
#ifndef MT_COSE_H
#define MT_COSE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_cose_sign1 {
    const uint8_t *protected_hdr;
    size_t protected_len;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *sig; /* r||s, 48 bytes each, big-endian */
    size_t sig_len;
} mt_cose_sign1;

mt_status mt_cose_sign1_parse(const uint8_t *buf, size_t len, mt_cose_sign1 *out, mt_err *err);
/* Verifies the ES384 signature over Sig_structure ["Signature1", protected,
 * h'', payload] with key (P-384). True only for a valid signature. */
bool mt_cose_sign1_verify(const mt_cose_sign1 *m, EVP_PKEY *key);

#endif
