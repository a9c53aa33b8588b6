/* mt_ratls: RA-TLS certificates, the Confidential Computing Consortium's
 * interoperable form (as made by Gramine >= 1.8, the Intel SGX SDK sgx_ttls
 * and inclavare rats-tls), plus Gramine's legacy DCAP extension.
 *
 * CCC form: a non-critical X.509 extension, OID 2.23.133.5.4.9 (TCG DICE
 * tagged evidence), whose value is CBOR  tag(T, [bstr evidence, bstr claims]).
 *   T = 60000            an SGX or TDX DCAP quote (kind from its tee_type)
 *   T = MT_RATLS_TAG_SOFT mesatee soft evidence (mt_soft.h); a private tag
 *                        from the first-come-first-served range, unregistered
 *   T = MT_RATLS_TAG_TPM2 mesatee TPM evidence container (mt_tpm2.h); the AK
 *                        is the one pinned in collateral (MT_COLL_TPM2_AK) or,
 *                        when none is pinned, the evidence's own AK: the
 *                        caller's policy must then pin it (claims.public_key)
 *                        or require an EK chain. TPM evidence has no wall
 *                        time; claims.timestamp is the certificate's notBefore
 *                        (signed with the key the quote binds).
 *   T = MT_RATLS_TAG_SNP  a raw SEV-SNP report; VCEK/chain from collateral
 * claims = CBOR map {"pubkey-hash": bstr(CBOR [alg, bstr hash]), ?"nonce":
 * bstr, other keys ignored}; alg 1 = SHA-256, 7 = SHA-384, 8 = SHA-512 over
 * the certificate's DER SubjectPublicKeyInfo. The evidence's report_data is
 * SHA-256(claims bytes) followed by 32 zero bytes (all 64 bytes are checked).
 * Legacy Gramine form (verify only): OID 1.2.840.113741.1337.6, or Gramine's
 * mis-encoded variant (OID content 06 09 2A 86 48 86 F8 4D 8A 39 06, read by
 * parsers as 0.6.9.42.840.113741.1337.6), whose value is a raw SGX quote with
 * report_data = SHA-256(SPKI DER) || 32 zero bytes.
 *
 * mt_ratls_verify_cert checks: certificate parses, valid at `at`, exactly one
 * evidence extension of the chosen form and not critical, pubkey-hash equals
 * the hash of the certificate's SPKI, the evidence verifies (mt_attest_verify),
 * report_data binds the claims (all 64 bytes), and the certificate is
 * self-issued and its signature verifies with its own key (not checked with
 * MT_RATLS_PEER_PROVES_KEY, see there): a certificate issued by another name
 * is refused (MT_EAUTH), as there is no issuer to verify it against. It applies no policy (see mt_policy.h).
 * Ownership: parse results borrow the input; nothing is allocated except by
 * mt_ratls_ext_encode. Thread-safety: reentrant. */
#ifndef MT_RATLS_H
#define MT_RATLS_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"

#define MT_RATLS_OID "2.23.133.5.4.9"
#define MT_RATLS_TAG_QUOTE 60000u
#define MT_RATLS_TAG_SOFT 1836343553u /* 0x6d746101: "mta" 01, mesatee private */
#define MT_RATLS_TAG_TPM2 1836343554u /* 0x6d746102: mesatee TPM evidence (mt_tpm2.h) */
#define MT_RATLS_TAG_SNP 1836343555u  /* 0x6d746103: raw SEV-SNP report (1184 bytes) */
#define MT_RATLS_EXT_MAX (64u * 1024u + 1024u)

/* Which extensions mt_ratls_verify_cert may use (CCC is tried first). */
#define MT_RATLS_FORM_CCC 0x1u
#define MT_RATLS_FORM_LEGACY 0x2u
/* Not a form: a flag for callers that verify the peer certificate inside a
 * TLS handshake (the TLS stack's verify callback), where the handshake
 * itself proves that the peer holds the certificate's private key (TLS 1.3
 * CertificateVerify under the certificate's key, checked by OpenSSL after
 * the callback; a failed check fails the handshake). With it the
 * certificate's self-signature is not verified (it is still required to be
 * self-issued): a self-signature proves only that a holder of the same key
 * signed these fields, and a peer that passes CertificateVerify holds the
 * key, so it could have signed any fields; the evidence binds the key, not
 * the signature. The caller must not use the verdict (nor claims taken from
 * the certificate's fields, such as notBefore) unless the handshake
 * completes. Never pass it for a certificate read from a file, a request
 * body or any place other than the live handshake's peer certificate.
 * (The self-signature is the largest cost of a first SGX RA-TLS handshake:
 * ~0.4 ms of ~0.8 ms, a P-384 ECDSA verification; issue 13.) mt_vcache keys
 * include the forms, so cached verdicts with and without it never mix. */
#define MT_RATLS_PEER_PROVES_KEY 0x100u

/* The parsed extension value (borrowed from the input). */
typedef struct mt_ratls_ext {
    uint64_t tag;
    const uint8_t *evidence;
    size_t evidence_len;
    const uint8_t *claims;
    size_t claims_len;
} mt_ratls_ext;

/* The parsed claims map. */
typedef struct mt_ratls_claims {
    int hash_alg; /* 1, 7 or 8 */
    uint8_t pubkey_hash[64];
    size_t pubkey_hash_len;
    uint8_t nonce[64];
    size_t nonce_len; /* 0 when absent */
} mt_ratls_claims;

/* What mt_ratls_verify_cert found besides the attestation claims. */
typedef struct mt_ratls_info {
    unsigned form; /* MT_RATLS_FORM_CCC or MT_RATLS_FORM_LEGACY */
    uint64_t tag;  /* CCC tag; 0 for legacy */
    mt_ratls_claims claims;
    uint8_t spki_sha256[32]; /* of the certificate's key */
    int64_t not_before, not_after;
} mt_ratls_info;

/* Parses an extension value: tag(T, [bstr, bstr]) with nothing after it.
 * MT_EINVAL naming what is wrong. */
mt_status mt_ratls_ext_parse(const uint8_t *val, size_t len, mt_ratls_ext *out, mt_err *err);
/* Parses a claims map (at most 4 KiB); unknown keys are skipped; a repeated
 * "pubkey-hash" or "nonce", or a missing "pubkey-hash", is MT_EINVAL. */
mt_status mt_ratls_claims_parse(const uint8_t *p, size_t len, mt_ratls_claims *out,
                                mt_err *err);
/* Encodes claims {"pubkey-hash": [1, spki_sha256]} plus "nonce" when
 * nonce_len > 0 (at most 64) into out (cap >= 128 suffices). */
mt_status mt_ratls_claims_encode(const uint8_t spki_sha256[32], const uint8_t *nonce,
                                 size_t nonce_len, uint8_t *out, size_t cap, size_t *len,
                                 mt_err *err);
/* Encodes an extension value tag(tag, [evidence, claims]) into a malloc'd
 * buffer (*out, free()). */
mt_status mt_ratls_ext_encode(uint64_t tag, const uint8_t *evidence, size_t ev_len,
                              const uint8_t *claims, size_t claims_len, uint8_t **out,
                              size_t *len, mt_err *err);

/* True if the DER certificate carries an RA-TLS extension of one of the forms
 * (a certificate of level "none" has none). */
int mt_ratls_cert_has_evidence(const uint8_t *der, size_t len, unsigned forms);

/* Verifies an RA-TLS certificate given as DER or PEM (see the header
 * comment). coll may be NULL. On success fills *claims (kind, measurements,
 * ...) and *info (may be NULL). On failure claims are zeroed:
 *   MT_ENOTFOUND  no evidence extension of the requested forms (level none)
 *   MT_EINVAL     the certificate, extension, claims or evidence is malformed
 *   MT_EAUTH      validity, self-signature, pubkey-hash, evidence or binding
 *                 check failed. */
__attribute__((warn_unused_result)) mt_status
mt_ratls_verify_cert(const uint8_t *cert, size_t len, unsigned forms,
                     const mt_attest_collateral *coll, int64_t at, mt_attest_claims *claims,
                     mt_ratls_info *info, mt_err *err);

/* mt_ratls_verify_cert on a certificate OpenSSL has already read (the TLS
 * stack's peer certificate): the same checks and results, without parsing
 * the certificate again (OpenSSL 3.0's key decoder costs ~0.1-0.2 ms per
 * parse). cert is only read. */
__attribute__((warn_unused_result)) mt_status
mt_ratls_verify_x509(X509 *cert, unsigned forms, const mt_attest_collateral *coll, int64_t at,
                     mt_attest_claims *claims, mt_ratls_info *info, mt_err *err);

#endif
