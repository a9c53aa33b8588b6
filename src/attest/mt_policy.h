/* mt_policy: a client's attestation policy (a JSON file, format in
 * docs/attestation.md) and its evaluation over verified claims.
 *
 * mt_policy_check applies the rules in a fixed order and fails on the first
 * one that does not hold, with MT_EPERM and a message that names the rule:
 *   "policy rule 'measurements.gateway.measurement' failed: the server's
 *    measurement 3f2a... is not one of the 1 expected values".
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
/* Collateral the policy names (tpm2_ek_ca, collateral_dir), to pass to
 * mt_ratls_verify_cert; NULL when it names none. Borrowed. */
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

/* The claims (and, when info is non-NULL, the RA-TLS details) as a compact
 * JSON object; heap string (free()), NULL on allocation failure. */
char *mt_policy_claims_json(const mt_attest_claims *c, const mt_ratls_info *info);

#endif
