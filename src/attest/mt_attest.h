/* mt_attest: offline verifiers of remote-attestation evidence.
 *
 * One entry point, mt_attest_verify(), turns evidence bytes of a given kind
 * (AMD SEV-SNP report, Intel SGX or TDX DCAP quote, AWS Nitro attestation
 * document) plus collateral (certificates, TCB info, QE identity, CRLs) into
 * a common mt_attest_claims, or fails with a precise reason in mt_err.
 *
 * Trust: the roots are pinned in the code (SHA-256 of the DER certificate of
 * AMD ARK-Milan/Genoa/Turin, the Intel SGX Root CA, the AWS Nitro Enclaves
 * root G1); a root supplied in collateral or evidence is accepted only if it
 * equals a pin. Verifiers never touch the network and never read the clock:
 * the verification time is an input, and every certificate, CRL, TCB info and
 * QE identity is checked for validity at that time.
 *
 * The verifiers establish what the evidence says and that the platform
 * vendor's keys vouch for it. They do not apply application policy (expected
 * measurements, debug forbidden, accepted TCB statuses, nonce freshness): a
 * caller compares the claims with its policy. The claims say which optional
 * checks were possible (MT_ATTEST_CHECKED_*), so a policy can demand them.
 *
 * Ownership: mt_attest_collateral is an opaque handle (new/free; free(NULL)
 * is a no-op) that copies whatever is added to it. Claims are plain values.
 *
 * Caching: a handle also remembers what SGX/TDX verifications established
 * about its collateral: the parsed items, the TCB info and QE identity whose
 * signatures verified, their issuer chains, and up to 16 verified PCK chains
 * (by SHA-256 of the chain bytes), each with the window of certificate and
 * CRL validity it holds for. A later verification at a time inside that
 * window skips the parsing and those signature checks; at any other time it
 * redoes them. Only successes are remembered and every adding of an item
 * forgets everything, so results and error messages are the same as with a
 * fresh handle. Keep one handle and reuse it; pass an empty handle rather
 * than NULL to cache PCK chains when there is no collateral.
 *
 * Thread-safety: all functions are reentrant; a collateral handle may be read
 * by several verifiers at once once it is no longer being modified (its
 * cache has its own mutex). Adding items must not overlap a verification. */
#ifndef MT_ATTEST_H
#define MT_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef enum mt_attest_kind {
    MT_ATTEST_SEV_SNP = 1, /* 1184-byte ATTESTATION_REPORT (raw bytes) */
    MT_ATTEST_TDX = 2,     /* DCAP quote v4/v5, tee_type 0x81 */
    MT_ATTEST_SGX = 3,     /* DCAP quote v3/v4, tee_type 0 */
    MT_ATTEST_NITRO = 4,   /* COSE_Sign1 attestation document (raw CBOR) */
    MT_ATTEST_SOFT = 5,    /* mesatee soft-level evidence (CBOR map, mt_soft.h) */
    MT_ATTEST_TPM2 = 6,    /* mesatee TPM 2.0 evidence container (mt_tpm2.h) */
} mt_attest_kind;

/* "sev-snp", "tdx", "sgx", "nitro", "soft"; NULL for an unknown kind. */
const char *mt_attest_kind_name(mt_attest_kind kind);
/* Inverse of mt_attest_kind_name; MT_EINVAL for an unknown name. */
mt_status mt_attest_kind_parse(const char *name, mt_attest_kind *out, mt_err *err);

typedef enum mt_attest_tcb_status {
    MT_TCB_NOT_EVALUATED = 0, /* no TCB info given, or none exists for the kind */
    MT_TCB_UP_TO_DATE,
    MT_TCB_SW_HARDENING_NEEDED,
    MT_TCB_CONFIGURATION_NEEDED,
    MT_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    MT_TCB_OUT_OF_DATE,
    MT_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
    MT_TCB_REVOKED,
} mt_attest_tcb_status;

/* Intel's spelling ("UpToDate", ...) or "NotEvaluated". */
const char *mt_attest_tcb_status_name(mt_attest_tcb_status s);

/* Bits of mt_attest_claims.checked: optional checks that were done. */
#define MT_ATTEST_CHECKED_TCB 0x1u         /* TCB status from signed TCB info */
#define MT_ATTEST_CHECKED_REVOCATION 0x2u  /* CRLs for every certificate of the chain */
#define MT_ATTEST_CHECKED_QE_IDENTITY 0x4u /* QE identity (DCAP) */
#define MT_ATTEST_CHECKED_CHIP_ID 0x8u     /* SNP chip_id equals the VCEK hwID */
#define MT_ATTEST_CHECKED_EK_CHAIN 0x10u   /* TPM EK certificate chains to given roots */

#define MT_ATTEST_MAX_MEASUREMENTS 40
#define MT_ATTEST_MAX_SVNS 40
#define MT_ATTEST_MAX_ADVISORIES 64
#define MT_ATTEST_NAME_MAX 32
#define MT_ATTEST_VALUE_MAX 64
#define MT_ATTEST_BLOB_MAX 1024

typedef struct mt_attest_measurement {
    char name[MT_ATTEST_NAME_MAX]; /* "measurement", "mrenclave", "mrtd", "rtmr0", "pcr0" */
    uint8_t value[MT_ATTEST_VALUE_MAX];
    size_t len;
} mt_attest_measurement;

typedef struct mt_attest_svn {
    char name[MT_ATTEST_NAME_MAX]; /* "guest_svn", "isv_svn", "tcb.snp", "pce_svn" */
    uint64_t value;
} mt_attest_svn;

typedef struct mt_attest_claims {
    mt_attest_kind kind;
    /* Endorsing platform, from the vendor certificate: "Milan-B0", "Genoa",
     * "SGX FMSPC 00a067110000", "aws.nitro-enclaves". */
    char product[64];
    /* Key that signed the evidence: "VCEK", "VLEK", "PCK", "nitro leaf". */
    char endorsement[16];
    mt_attest_measurement measurements[MT_ATTEST_MAX_MEASUREMENTS];
    size_t n_measurements;
    /* Identity of who signed the workload: SGX MRSIGNER, SNP author key
     * digest (or ID key digest when no author key), TDX MROWNER; Nitro PCR8. */
    uint8_t signer[MT_ATTEST_VALUE_MAX];
    size_t signer_len;
    mt_attest_svn svns[MT_ATTEST_MAX_SVNS];
    size_t n_svns;
    mt_attest_tcb_status tcb_status;
    char advisories[MT_ATTEST_MAX_ADVISORIES][24]; /* "INTEL-SA-00289" */
    size_t n_advisories;
    bool debug; /* SNP policy.DEBUG, SGX ATTRIBUTES.DEBUG, TD_ATTRIBUTES.DEBUG, Nitro PCR0 zero */
    /* The 64 bytes the workload bound into the evidence. Nitro: user_data when
     * it is at most 64 bytes (zero-padded), else zero with report_data_len 0. */
    uint8_t report_data[64];
    size_t report_data_len;
    unsigned checked; /* MT_ATTEST_CHECKED_* */
    int64_t timestamp; /* Nitro: document time in ms since the epoch; 0 otherwise */
    /* Nitro optional fields (len 0 when absent). */
    uint8_t user_data[MT_ATTEST_BLOB_MAX];
    size_t user_data_len;
    uint8_t nonce[MT_ATTEST_BLOB_MAX];
    size_t nonce_len;
    uint8_t public_key[MT_ATTEST_BLOB_MAX];
    size_t public_key_len;
    /* Until when this result may be reused without verifying again (seconds
     * since the epoch): the earliest end of validity of what the verification
     * relied on (certificate notAfter, CRL / TCB info / QE identity
     * nextUpdate); INT64_MAX when nothing it relied on expires (soft, TPM
     * without an EK chain). 0 when it cannot be told: never reuse. */
    int64_t valid_until;
} mt_attest_claims;

/* Looks up a measurement (NULL if absent) or an svn (false if absent). */
const mt_attest_measurement *mt_attest_claims_measurement(const mt_attest_claims *c,
                                                          const char *name);
bool mt_attest_claims_svn(const mt_attest_claims *c, const char *name, uint64_t *out);
bool mt_attest_claims_has_advisory(const mt_attest_claims *c, const char *id);

/* ---- collateral ---------------------------------------------------------- */

typedef enum mt_attest_coll_item {
    /* SEV-SNP */
    MT_COLL_AMD_VCEK = 1,   /* VCEK or VLEK certificate, DER or PEM */
    MT_COLL_AMD_CHAIN,      /* KDS cert_chain: ASK (or ASVK) then ARK, PEM */
    /* DCAP (SGX, TDX) */
    MT_COLL_DCAP_BUNDLE,    /* QuoteCollateralV3 JSON (dcap-qvl, PCCS): everything below */
    MT_COLL_TCB_INFO,       /* PCS TCB info response {"tcbInfo":{...},"signature":"hex"} */
    MT_COLL_TCB_INFO_CHAIN, /* TCB-Info-Issuer-Chain, PEM (signing cert, root) */
    MT_COLL_QE_IDENTITY,    /* PCS QE identity response {"enclaveIdentity":{...},"signature":".."} */
    MT_COLL_QE_IDENTITY_CHAIN, /* SGX-Enclave-Identity-Issuer-Chain, PEM; defaults to TCB_INFO_CHAIN */
    MT_COLL_PCK_CRL,        /* PCK Platform/Processor CA CRL, DER or PEM */
    MT_COLL_ROOT_CRL,       /* Intel SGX Root CA CRL, DER or PEM */
    /* TPM 2.0 (mt_tpm2.h) */
    MT_COLL_TPM2_AK,        /* pinned AK: TPMT_PUBLIC, or SubjectPublicKeyInfo DER/PEM */
    MT_COLL_TPM2_EK_CA,     /* EK CA bundle, PEM: self-signed roots + intermediates */
} mt_attest_coll_item;

typedef struct mt_attest_collateral mt_attest_collateral;

/* A new empty collateral set; NULL on allocation failure. */
mt_attest_collateral *mt_attest_collateral_new(void);
/* Frees the set; NULL is a no-op. */
void mt_attest_collateral_free(mt_attest_collateral *c);
/* Copies len bytes as the given item, replacing an earlier one.
 * MT_EINVAL for an unknown item or an empty buffer, MT_ETOOBIG over 1 MiB. */
mt_status mt_attest_collateral_add(mt_attest_collateral *c, mt_attest_coll_item item,
                                   const uint8_t *data, size_t len, mt_err *err);
/* Reads a file (at most 1 MiB) as the given item. */
mt_status mt_attest_collateral_add_file(mt_attest_collateral *c, mt_attest_coll_item item,
                                        const char *path, mt_err *err);
/* Loads a cache directory: each of these names that exists is added:
 *   vcek.der|vcek.pem, cert_chain.pem, collateral.json, tcb_info.json,
 *   tcb_info_issuer_chain.pem, qe_identity.json, qe_identity_issuer_chain.pem,
 *   pck_crl.der|pck_crl.pem, root_crl.der|root_crl.pem.
 * MT_ENOTFOUND if dir holds none of them. */
mt_status mt_attest_collateral_load_dir(mt_attest_collateral *c, const char *dir, mt_err *err);

/* ---- verification ------------------------------------------------------- */

/* Verifies evidence of the given kind at time `at` (seconds since the Unix
 * epoch, UTC) with the collateral coll (may be NULL for kinds that carry
 * their own chain: Nitro; for DCAP the TCB is then not evaluated).
 * On success *claims is filled and MT_OK returned. On failure *claims is
 * zeroed, and err says why:
 *   MT_EINVAL  the evidence or the collateral is malformed, of the wrong kind,
 *              or collateral the kind needs is missing;
 *   MT_EAUTH   a signature, certificate chain, pin, validity period,
 *              revocation, binding or TCB check failed.
 * The message names the failing check, e.g. "VCEK signature over the report
 * does not verify" or "TCB info expired at 2023-07-18T08:42:58Z, verification
 * time 2025-01-01T00:00:00Z". Evidence is at most 64 KiB. */
__attribute__((warn_unused_result)) mt_status
mt_attest_verify(mt_attest_kind kind, const uint8_t *evidence, size_t len,
                 const mt_attest_collateral *coll, int64_t at, mt_attest_claims *claims,
                 mt_err *err);

/* Parses an RFC 3339 UTC time "2025-06-19T10:56:11Z" (fraction allowed and
 * truncated) into seconds since the epoch. */
mt_status mt_attest_time_parse(const char *s, int64_t *out, mt_err *err);

#endif
