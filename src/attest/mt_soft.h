/* mt_soft: mesatee's "soft" evidence (security level 2, SoftTEE): the
 * format, its bounds-checked reader, its canonical encoder, and its verifier.
 *
 * Evidence is one deterministic CBOR map (RFC 8949 section 4.2.1: shortest
 * heads, keys in length-first bytewise order) with exactly these entries:
 *   "kind"         tstr  "soft"
 *   "time"         uint  seconds since the Unix epoch when it was made
 *   "signature"    bstr  64 bytes, ECDSA P-256/SHA-256 r||s (big-endian)
 *   "measurement"  bstr  32 bytes (SHA-256, see mt_tee_soft_measure)
 *   "report_data"  bstr  64 bytes bound by the producer (RA-TLS: claims hash)
 *   "platform_key" bstr  DER SubjectPublicKeyInfo of the P-256 platform key
 * The signature covers the to-be-signed bytes: the same map without
 * "signature" (5 entries, same order), encoded deterministically. The reader
 * accepts only this exact encoding (it re-encodes and compares), so there is
 * one byte string per evidence value.
 *
 * Trust: the signature proves only that the holder of the platform key made
 * the evidence. The platform key is trusted by pinning its SPKI hash (the
 * claims' signer) in the client's policy; see docs/attestation.md.
 * Ownership: plain values, nothing allocated. Thread-safety: reentrant. */
#ifndef MT_SOFT_H
#define MT_SOFT_H

#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"

#define MT_SOFT_KEY_MAX 160      /* SPKI DER of a P-256 key is 91 bytes */
#define MT_SOFT_EVIDENCE_MAX 512 /* largest evidence accepted */

typedef struct mt_soft_evidence {
    int64_t time;
    uint8_t signature[64];
    uint8_t measurement[32];
    uint8_t report_data[64];
    uint8_t platform_key[MT_SOFT_KEY_MAX];
    size_t platform_key_len;
} mt_soft_evidence;

/* Parses evidence bytes into *out (zeroed on failure). MT_EINVAL with the
 * offending field named if the bytes are not exactly the canonical form. */
mt_status mt_soft_evidence_parse(const uint8_t *p, size_t len, mt_soft_evidence *out,
                                 mt_err *err);

/* Encodes the to-be-signed bytes (with_signature false) or the whole evidence
 * (true) into out (cap bytes); *len receives the length. MT_ETOOBIG if cap is
 * too small, MT_EINVAL for a platform key over MT_SOFT_KEY_MAX or a negative
 * time. */
mt_status mt_soft_evidence_encode(const mt_soft_evidence *e, int with_signature, uint8_t *out,
                                  size_t cap, size_t *len, mt_err *err);

/* Verifies soft evidence at time `at`: well-formed, P-256 platform key,
 * signature valid, time not more than 300 s after `at`. Fills claims: kind
 * MT_ATTEST_SOFT, measurement "measurement", signer = SHA-256(platform key
 * SPKI DER), report_data, timestamp (ms). MT_EINVAL malformed, MT_EAUTH bad
 * signature or time. Called by mt_attest_verify(MT_ATTEST_SOFT, ...). */
mt_status mt_soft_verify(const uint8_t *ev, size_t len, int64_t at, mt_attest_claims *claims,
                         mt_err *err);

#endif
