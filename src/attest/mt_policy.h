/* mt_policy: a client's attestation policy (a JSON file, format in
 * docs/attestation.md) and its evaluation over verified claims.
 *
 * mt_policy_check applies the rules in a fixed order and fails on the first
 * one that does not hold, with MT_EPERM and a message that names the rule:
 *   "policy rule 'measurements.gateway.measurement' failed: the server's
 *    measurement 3f2a... is not one of the 1 expected values".
 * TPM attestation keys are trusted only when pinned (tpm2_aks) or covered by
 * an enrolment record (tpm2_enrollers, tpm2_enrolments) verified at load; a
 * policy that allows tpm2 and cannot establish that is refused at load.
 * Relying-party requirements (required_checks, snp_vmpl, snp_policy_*,
 * expected_*) fail closed when the evidence cannot satisfy them.
 * The level "none" (no evidence) never satisfies a policy: a caller that
 * accepts it does so by an explicit insecure switch, outside the policy.
 * Ownership: mt_policy is opaque (parse/load allocate, free(NULL) no-op).
 * Thread-safety: a parsed policy is immutable and may be shared. */
#ifndef MT_POLICY_H
#define MT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_ratls.h"

#define MT_POLICY_MAX_BYTES (256u * 1024u)

typedef struct mt_policy mt_policy;

/* Parses a policy document; MT_EINVAL naming the bad field. */
mt_status mt_policy_parse(const char *json, size_t len, mt_policy **out, mt_err *err);
/* Reads and parses a policy file (at most MT_POLICY_MAX_BYTES). */
mt_status mt_policy_load(const char *path, mt_policy **out, mt_err *err);
/* As mt_policy_load, but first requires auditor signatures over the file's
 * exact bytes (mt_policy_sig.h): PATH.sig must hold valid signatures of at
 * least threshold (0 = all) of the public keys in signers_path (PEM).
 * MT_EAUTH when they do not. signers_path NULL: same as mt_policy_load. */
mt_status mt_policy_load_signed(const char *path, const char *signers_path, unsigned threshold,
                                mt_policy **out, mt_err *err);
void mt_policy_free(mt_policy *p);
/* Collateral the policy names (collateral_dir), to pass to
 * mt_ratls_verify_cert; NULL when it names none. Borrowed. Prefer
 * mt_policy_verify_cert, which uses it. */
const mt_attest_collateral *mt_policy_collateral(const mt_policy *p);
/* The role whose measurements are expected ("gateway" by default). */
const char *mt_policy_role(const mt_policy *p);

/* Security level of an evidence kind: soft 2, tpm2 3, sev-snp/tdx/nitro 4,
 * sgx 5 (none is 1). */
int mt_policy_level_of(mt_attest_kind kind);
/* Level from a name ("none", "soft", "tpm2", "sev-snp", "tdx", "nitro",
 * "sgx"); 0 if unknown. */
int mt_policy_level_parse(const char *name);

/* Checks verified claims against the policy at time now (evidence age).
 * MT_OK or MT_EPERM with the failing rule named. */
__attribute__((warn_unused_result)) mt_status
mt_policy_check(const mt_policy *p, const mt_attest_claims *c, int64_t now, mt_err *err);

/* Expected values a policy can demand (policy keys expected_report_data,
 * expected_nonce, expected_user_data; CLI --expect-*). */
typedef enum mt_policy_expect {
    MT_POLICY_EXPECT_REPORT_DATA = 0, /* 1..64 bytes; shorter: the rest must be zero */
    MT_POLICY_EXPECT_NONCE = 1,       /* exact (Nitro nonce, TPM extraData) */
    MT_POLICY_EXPECT_USER_DATA = 2,   /* exact (Nitro user_data) */
    MT_POLICY_EXPECT_N = 3,
} mt_policy_expect;

/* Sets (replaces) an expected value from hex. MT_EINVAL for bad hex or
 * size. Not thread-safe against concurrent checks with p. */
mt_status mt_policy_set_expected(mt_policy *p, mt_policy_expect which, const char *hex,
                                 mt_err *err);

/* THE verification path of every relying party (the client's RA-TLS
 * handshake, the executor API's client-certificate check, mutually attested
 * TLS, `mesatee attest verify-evidence --policy`): verifies an RA-TLS
 * certificate with the policy's collateral (mt_ratls_verify_cert), records
 * in claims what the policy established (MT_ATTEST_CHECKED_EK_CHAIN for an
 * enrolled TPM AK), then applies mt_policy_check. Returns MT_EPERM (rule
 * named) when the policy refuses, another status when the evidence does not
 * verify. claims and info (may be NULL) are filled as far as verification
 * got. */
__attribute__((warn_unused_result)) mt_status
mt_policy_verify_cert(const mt_policy *p, const uint8_t *cert, size_t len, unsigned forms,
                      int64_t now, mt_attest_claims *claims, mt_ratls_info *info, mt_err *err);
/* mt_policy_verify_cert for a certificate OpenSSL has already read (the TLS
 * stack's peer certificate x): the cache key is taken from x's own encoding
 * (i2d_X509, the bytes OpenSSL read), and on a cache miss x is verified
 * without parsing it again (mt_ratls_verify_x509). MT_EINVAL if x is NULL
 * or cannot be encoded. */
__attribute__((warn_unused_result)) mt_status
mt_policy_verify_x509(const mt_policy *p, X509 *x, unsigned forms, int64_t now,
                      mt_attest_claims *claims, mt_ratls_info *info, mt_err *err);
/* Verified certificates are remembered (mt_vcache.h, process-wide: at most
 * 256 entries, 10 minutes, never past the certificate's notAfter or the
 * collateral's end) under SHA-256 of the certificate bytes, forms and
 * mt_policy_digest; a hit skips mt_ratls_verify_cert (parse, self-signature,
 * evidence) but applies mt_policy_check at now again. Only successes are
 * remembered. With MT_RATLS_PEER_PROVES_KEY in forms nothing is remembered
 * by these two functions (the self-signature was not checked, and the
 * handshake that would prove the key has not finished): use
 * mt_policy_verify_peer. */

/* What a handshake's verification would remember once the handshake proved
 * the peer's key (opaque; owned by the caller). */
typedef struct mt_policy_pending mt_policy_pending;

/* mt_policy_verify_x509 for the peer certificate of a TLS handshake in
 * progress, forms including MT_RATLS_PEER_PROVES_KEY (MT_EINVAL otherwise):
 * the same checks and results; a hit is used as by mt_policy_verify_x509,
 * but on a miss that succeeds the certificate is not remembered yet:
 * *pending (NULL on failure and on a hit) holds the entry, which
 * mt_policy_pending_commit stores once the handshake has completed (the
 * peer's CertificateVerify checked: SSL_CB_HANDSHAKE_DONE). A handshake that
 * fails frees it with mt_policy_pending_free, so a peer without the key
 * leaves nothing in the cache (it could otherwise fill it with copies of a
 * genuine certificate differing in unsigned bytes). */
__attribute__((warn_unused_result)) mt_status
mt_policy_verify_peer(const mt_policy *p, X509 *x, unsigned forms, int64_t now,
                      mt_attest_claims *claims, mt_ratls_info *info, mt_policy_pending **pending,
                      mt_err *err);
/* Stores the entry (once: later calls do nothing); pd may be NULL. */
void mt_policy_pending_commit(mt_policy_pending *pd);
/* Frees pd without storing it; NULL is a no-op. */
void mt_policy_pending_free(mt_policy_pending *pd);

/* SHA-256 chain over what the policy was made from: its document and base
 * directory, the bytes of its collateral, EK CA and enrolment records, and
 * every expected value set since. Two policies with the same digest decide
 * the same way. */
void mt_policy_digest(const mt_policy *p, uint8_t out[32]);

/* The same for raw evidence of a kind (recorded evidence, offline). TPM
 * evidence is checked with its own AK, which the policy must then trust (pin
 * or enrolment), exactly as in an RA-TLS certificate. */
__attribute__((warn_unused_result)) mt_status
mt_policy_verify_evidence(const mt_policy *p, mt_attest_kind kind, const uint8_t *ev,
                          size_t len, int64_t now, mt_attest_claims *claims, mt_err *err);

/* The claims (and, when info is non-NULL, the RA-TLS details) as a compact
 * JSON object; heap string (free()), NULL on allocation failure. */
char *mt_policy_claims_json(const mt_attest_claims *c, const mt_ratls_info *info);

#endif
