/* mt_policy_sig: auditor signatures over a policy file (Teaclave's
 * enclave_info idea: the people who audited a build sign the expected
 * measurements, and a client accepts a policy only when enough of the
 * auditors it trusts signed exactly these bytes).
 *
 * POLICY.sig is text, one header line then one line per auditor:
 *   mesatee-policy-sig-v1
 *   <64 hex: SHA-256 of the auditor's SubjectPublicKeyInfo DER> <base64 DER ECDSA signature>
 * each line ends with "\n"; nothing else is allowed (no blank lines, no
 * repeated auditor, at most MT_POLICY_SIG_MAX entries). The signature is
 * ECDSA P-256 with SHA-256 over the exact bytes of the policy file.
 *
 * Ownership: parse fills a caller struct (no allocation); sign returns a heap
 * string (free()). Thread-safety: reentrant. */
#ifndef MT_POLICY_SIG_H
#define MT_POLICY_SIG_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_POLICY_SIG_MAX 32
#define MT_POLICY_SIG_FILE_MAX (16u * 1024u)
#define MT_POLICY_SIG_DER_MAX 72
#define MT_POLICY_SIG_HEADER "mesatee-policy-sig-v1"

typedef struct mt_policy_sig_entry {
    uint8_t signer[32]; /* SHA-256 of the auditor's SPKI DER */
    uint8_t sig[MT_POLICY_SIG_DER_MAX];
    size_t sig_len;
} mt_policy_sig_entry;

typedef struct mt_policy_sigs {
    mt_policy_sig_entry e[MT_POLICY_SIG_MAX];
    size_t n;
} mt_policy_sigs;

/* Parses a .sig file (format above). MT_EINVAL naming the line otherwise. */
mt_status mt_policy_sig_parse(const uint8_t *buf, size_t len, mt_policy_sigs *out, mt_err *err);

/* Signs policy with key (an EC P-256 private key) and returns the new .sig
 * text in *out (heap, NUL-terminated): the lines of existing (may be NULL)
 * with this auditor's line added or replaced. */
mt_status mt_policy_sig_sign(const uint8_t *policy, size_t len, EVP_PKEY *key,
                             const uint8_t *existing, size_t existing_len, char **out,
                             mt_err *err);

/* Checks that at least threshold of the auditors in signers_pem (a PEM
 * bundle of P-256 public keys; threshold 0 = all of them) have a valid
 * signature over policy in sig. MT_EAUTH names the first auditor whose
 * signature is missing or invalid when the threshold is not met; MT_EINVAL
 * for a malformed .sig or signer file. */
__attribute__((warn_unused_result)) mt_status
mt_policy_sig_verify(const uint8_t *policy, size_t len, const uint8_t *sig, size_t sig_len,
                     const uint8_t *signers_pem, size_t signers_len, unsigned threshold,
                     mt_err *err);

#endif
