/* mt_nitro: AWS Nitro Enclaves attestation document reader (the CBOR
 * payload of a COSE_Sign1) and verifier: ES384 signature by the leaf
 * certificate, chain cabundle[0] (pinned AWS Nitro root G1) -> ... -> leaf
 * at the verification time, document timestamp not after that time, PCRs.
 * Parsed fields borrow from the input. Thread-safety: reentrant. */
#ifndef MT_NITRO_H
#define MT_NITRO_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_NITRO_MAX_PCRS 32
#define MT_NITRO_MAX_CABUNDLE 8

typedef struct mt_nitro_bytes {
    const uint8_t *p;
    size_t n;
} mt_nitro_bytes;

typedef struct mt_nitro_doc {
    const char *module_id;
    size_t module_id_len;
    uint64_t timestamp_ms;
    uint8_t pcr_index[MT_NITRO_MAX_PCRS];
    mt_nitro_bytes pcr[MT_NITRO_MAX_PCRS];
    size_t n_pcrs;
    mt_nitro_bytes certificate;
    mt_nitro_bytes cabundle[MT_NITRO_MAX_CABUNDLE];
    size_t n_cabundle;
    mt_nitro_bytes public_key, user_data, nonce; /* p NULL when absent or null */
} mt_nitro_doc;

/* Parses the payload map. Requires module_id, digest "SHA384", timestamp,
 * pcrs (index < 32, 48-byte values), certificate and a non-empty cabundle;
 * rejects unknown or repeated keys, optional fields over 1024 bytes and
 * trailing bytes. */
mt_status mt_nitro_doc_parse(const uint8_t *buf, size_t len, mt_nitro_doc *out, mt_err *err);

#endif
