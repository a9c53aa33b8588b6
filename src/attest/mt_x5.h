/* mt_x5: the OpenSSL 3 helpers of mt_attest: certificates and CRLs from
 * PEM or DER collateral, chain verification at an injected time against one
 * pinned root, CRL checks, certificate extensions, and ECDSA signatures given
 * as raw r||s (big- or little-endian) as DCAP, SNP and COSE encode them.
 * ECDSA on P-384 is computed with Nettle (hogweed) where it is used per new
 * certificate: OpenSSL 3.0 has only generic BIGNUM arithmetic for P-384
 * (~2x slower than Nettle's secp384r1 code); the checks are OpenSSL's.
 *
 * Ownership: functions returning OpenSSL objects transfer them to the caller
 * (X509_free, sk_X509_pop_free, X509_CRL_free, EVP_PKEY_free).
 * Thread-safety: reentrant. Failure: mt_status with a message naming `what`. */
#ifndef MT_X5_H
#define MT_X5_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

/* Certificates from one DER certificate or a concatenation of PEM blocks, in
 * file order. MT_EINVAL if none can be read. */
mt_status mt_x5_load_certs(const uint8_t *buf, size_t len, const char *what,
                           STACK_OF(X509) **out, mt_err *err);
/* One CRL, DER or PEM. */
mt_status mt_x5_load_crl(const uint8_t *buf, size_t len, const char *what, X509_CRL **out,
                         mt_err *err);
/* SHA-256 of the DER encoding of cert. */
bool mt_x5_fingerprint(X509 *cert, uint8_t out[32]);
/* True if cert's SHA-256 fingerprint equals pin_hex (64 hex characters). */
bool mt_x5_is_pinned(X509 *cert, const char *pin_hex);
/* Subject CN (or "?") into out. */
void mt_x5_cn(X509 *cert, char *out, size_t cap);

/* Verifies leaf -> untrusted... -> root at time `at`, where root is the only
 * trust anchor. With crls non-NULL, every certificate of the chain must be
 * covered by a CRL valid at `at` and not be listed in it. */
mt_status mt_x5_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted, X509 *root,
                             STACK_OF(X509_CRL) *crls, int64_t at, const char *what,
                             mt_err *err);

/* The window in which time-dependent chain checks cannot change their
 * outcome: *lo = the latest notBefore (certificates) or thisUpdate (CRLs),
 * *hi = the earliest notAfter or nextUpdate (a CRL without nextUpdate adds no
 * upper bound), over every certificate of certs and extra (either may be
 * NULL) and every CRL of crls (may be NULL). Callers treat the window as
 * open at both ends, lo < at < hi, which is never wider than what OpenSSL
 * accepts. False if a time cannot be read (then nothing may be assumed). */
bool mt_x5_validity(STACK_OF(X509) *certs, X509 *extra, STACK_OF(X509_CRL) *crls, int64_t *lo,
                    int64_t *hi);

/* Value bytes (contents of the extnValue OCTET STRING) of the extension with
 * dotted oid; false if absent or present more than once. Borrowed from cert. */
bool mt_x5_ext(X509 *cert, const char *oid, const uint8_t **val, size_t *len);

/* Verifies a certificate's signature with the certificate's own key (a
 * self-signed certificate), with exactly X509_verify's checks: the outer and
 * the TBSCertificate's signature algorithms are equal, the signature BIT
 * STRING has no unused bits, the algorithm's key type is the key's, the
 * ECDSA signature is DER (re-encoded and compared, no trailing bytes) with
 * 0 < r, s < n. ecdsa-with-SHA256/SHA384 under an uncompressed P-384 key is
 * verified by Nettle, everything else by X509_verify. True only for a valid
 * signature. */
bool mt_x5_verify_self_sig(X509 *cert);

/* ECDSA P-384 verification of a digest (any length; the leftmost 384 bits
 * are used, as FIPS 186-4 says) under the uncompressed point pub = 04||X||Y
 * (97 bytes; a point not on the curve fails), signature r, s big-endian of
 * 48 bytes each. True only for a valid signature. */
bool mt_x5_p384_verify(const uint8_t pub[97], const uint8_t *digest, size_t dlen,
                       const uint8_t r[48], const uint8_t s[48]);

/* mt_x5_ecdsa_verify under the key of cert: Nettle when it is an
 * uncompressed P-384 key and clen is 48, else OpenSSL. */
bool mt_x5_ecdsa_verify_cert(X509 *cert, const EVP_MD *md, const uint8_t *msg, size_t msglen,
                             const uint8_t *r, const uint8_t *s, size_t clen, bool le);

/* The key of the one DER SubjectPublicKeyInfo encoding of an uncompressed
 * P-256 point with named curve (91 bytes: the fixed 26-byte header, 04, X,
 * Y): true with *out (EVP_PKEY_free) if der is exactly that and the point is
 * on the curve, as d2i_PUBKEY would decide for these bytes, without
 * OpenSSL 3.0's decoder lookup (~0.1 ms). False for anything else (the
 * caller then uses d2i_PUBKEY, which decides every other encoding). */
bool mt_x5_p256_spki(const uint8_t *der, size_t len, EVP_PKEY **out);

/* EC public key (curve "P-256" or "P-384") from raw X||Y (2*clen bytes). */
mt_status mt_x5_ec_pub_from_xy(const char *curve, const uint8_t *xy, size_t xylen,
                               EVP_PKEY **out, mt_err *err);
/* ECDSA verification of msg under key with md; the signature is r and s of
 * clen bytes each, big-endian (le = false) or little-endian (le = true).
 * Returns true only for a valid signature. */
bool mt_x5_ecdsa_verify(EVP_PKEY *key, const EVP_MD *md, const uint8_t *msg, size_t msglen,
                        const uint8_t *r, const uint8_t *s, size_t clen, bool le);

#endif
