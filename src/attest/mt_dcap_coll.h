/* mt_dcap_coll: DCAP collateral for SGX and TDX quotes: the reader of TCB
 * info and QE identity JSON (from a QuoteCollateralV3 bundle or from PCS
 * responses, keeping the exact signed bytes), their signature and issuer
 * chain checks, TCB level selection (SGX components, PCESVN, TDX
 * components, the TDX module rule, QE identity, status convergence), and the
 * verification cache that every collateral handle carries (mt_dcap_cache).
 *
 * Ownership: mt_dcap_coll owns everything it points to; clear it with
 * mt_dcap_coll_clear (safe on a zeroed struct). Thread-safety: reentrant;
 * a cache has its own mutex (see below). */
#ifndef MT_DCAP_COLL_H
#define MT_DCAP_COLL_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_dcap.h"

typedef struct mt_dcap_coll {
    /* TCB info: exact signed bytes of the tcbInfo value, signature r||s. */
    char *tcb_raw;
    size_t tcb_raw_len;
    uint8_t tcb_sig[64];
    STACK_OF(X509) *tcb_chain;
    /* QE identity: exact bytes of the enclaveIdentity value. */
    char *qe_raw;
    size_t qe_raw_len;
    uint8_t qe_sig[64];
    STACK_OF(X509) *qe_chain;
    X509_CRL *pck_crl, *root_crl;
} mt_dcap_coll;

/* Collects the DCAP items of coll (bundle first, then separate items, which
 * override it). Absent items stay NULL. MT_EINVAL if an item is malformed. */
mt_status mt_dcap_coll_load(const mt_attest_collateral *coll, mt_dcap_coll *out, mt_err *err);
void mt_dcap_coll_clear(mt_dcap_coll *c);

/* Finds the value of a top-level member of the JSON object in buf and
 * returns its exact bytes (borrowed). False if buf is not an object whose
 * members can be scanned, or the key is absent. */
bool mt_dcap_json_member(const char *buf, size_t len, const char *key, const char **val,
                         size_t *vlen);

/* What the platform reports, for TCB evaluation. */
typedef struct mt_dcap_platform {
    bool tdx;
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint8_t sgx_comp[16]; /* from the PCK certificate */
    uint16_t pcesvn;      /* from the PCK certificate */
    uint8_t tee_tcb_svn[16];
    uint8_t mrsignerseam[48];
    uint8_t seam_attributes[8];
    /* QE report */
    uint8_t qe_mrsigner[32];
    uint16_t qe_isvprodid, qe_isvsvn;
    uint32_t qe_miscselect;
    uint8_t qe_attributes[16];
} mt_dcap_platform;

/* ---- verification cache of a collateral handle ---------------------------
 *
 * Every mt_attest_collateral holds one mt_dcap_cache. It makes repeated
 * verifications with one handle cheap without skipping a check whose outcome
 * could differ; only successes are remembered, so a failure is recomputed and
 * reads exactly as it would on a fresh handle. It remembers:
 *   - the parsed collateral (mt_dcap_coll), parsed on first use;
 *   - per signed document (TCB info, QE identity): that its ECDSA signature
 *     over the exact bytes verifies, and the parsed document (both depend on
 *     the bytes only); and the window (mt_x5_validity of its issuer chain,
 *     the pinned root and the root CA CRL) in which its issuer chain verified.
 *     A verification at a time inside that window (lo < at < hi) does not
 *     verify the chain again; outside it, it does (and fails as without the
 *     cache). The document's own issueDate/nextUpdate are compared at every
 *     verification, so "TCB info expired at ..." is reported unchanged;
 *   - up to MT_DCAP_PCK_SLOTS verified PCK chains, keyed by the SHA-256 of
 *     the quote's certification data (the PEM chain): the parsed leaf and
 *     pinned root, the root's fingerprint, the PCK SGX extensions, and the
 *     window of every certificate of the chain and both CRLs. The oldest
 *     entry is replaced first. With each chain, the last QE report whose
 *     signature verified under its PCK leaf (the report's and the
 *     signature's exact bytes) and the attestation key imported from the
 *     quote that carried it (its 64 bytes and the checked EVP_PKEY): a QE
 *     report is made once per attestation key, so every quote of a platform
 *     carries the same one. It lives and ends with the chain's entry (a
 *     signature has no time of its own); the binding of the key to the
 *     report (report_data) and the quote's own signature are checked for
 *     every quote. The SEV-SNP verifier keeps its verified VCEK/VLEK chains
 *     in the same slots under keys of their own (mt_snp.c chain_key: leaf =
 *     VCEK/VLEK, root = pinned ARK, ext unused). Every slot records which
 *     verifier put it (mt_dcap_chain_kind); a lookup finds only slots of its
 *     own kind, so an SGX/TDX quote never takes an SNP chain (or the
 *     reverse) even if the keys were equal. The keys are separated too: both
 *     hash a label of their own first (mt_dcap.c pck_key, mt_snp.c
 *     chain_key).
 * Thread-safety: one mutex per cache guards lookups and insertions; what is
 * published is not changed again (OpenSSL objects are shared read-only, by
 * reference) until mt_dcap_cache_reset, which, like mt_attest_collateral_add
 * that calls it, must not run while the handle is used by a verifier. */
typedef struct mt_dcap_cache mt_dcap_cache;
#define MT_DCAP_PCK_SLOTS 16

/* An empty cache; NULL on allocation failure. */
mt_dcap_cache *mt_dcap_cache_new(void);
/* Forgets everything (the collateral changed). NULL is a no-op. */
void mt_dcap_cache_reset(mt_dcap_cache *c);
/* Frees the cache; NULL is a no-op. */
void mt_dcap_cache_free(mt_dcap_cache *c);

/* The DCAP collateral of a handle, parsed, with what was verified about it. */
typedef struct mt_dcap_state mt_dcap_state;
/* The state of coll: from its cache (parsed and published on first use), or
 * a private one when coll is NULL. Errors as mt_dcap_coll_load (nothing is
 * remembered then). Give it back with mt_dcap_state_put. */
mt_status mt_dcap_state_get(const mt_attest_collateral *coll, mt_dcap_state **out, mt_err *err);
/* Releases what mt_dcap_state_get gave (frees a private state). NULL is a no-op. */
void mt_dcap_state_put(mt_dcap_state *s);
/* The parsed collateral items of s (borrowed, read-only). */
const mt_dcap_coll *mt_dcap_state_coll(const mt_dcap_state *s);

/* A verified PCK chain: references to the leaf and the pinned root
 * (X509_free both), the root's SHA-256 fingerprint, the SGX extensions. */
typedef struct mt_dcap_pck {
    X509 *leaf, *root;
    uint8_t root_fp[32];
    mt_pck_ext ext;
    int64_t hi; /* end of the chain's window (mt_x5_validity); at when unknown */
} mt_dcap_pck;
/* Which verifier a remembered chain belongs to: an Intel PCK chain (SGX and
 * TDX quotes, mt_dcap.c) or an AMD VCEK/VLEK chain (SEV-SNP, mt_snp.c). */
typedef enum mt_dcap_chain_kind {
    MT_DCAP_CHAIN_INTEL_PCK = 1,
    MT_DCAP_CHAIN_AMD_SNP = 2,
} mt_dcap_chain_kind;

/* The chain of this kind remembered under key (mt_dcap.c: SHA-256 of a label
 * and the certification data) if its window contains `at`: *out gets new
 * references. False otherwise, and for a chain of another kind. */
bool mt_dcap_cache_pck_get(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                           int64_t at, mt_dcap_pck *out);
/* Remembers a chain of this kind that verified, valid for lo < at < hi,
 * taking its own references; replaces the entry with the same kind and key,
 * else the oldest. */
void mt_dcap_cache_pck_put(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                           const mt_dcap_pck *v, int64_t lo, int64_t hi);

/* The attestation key of a QE report that verified under the PCK leaf of the
 * chain of this kind remembered under key (the same kind and key as
 * mt_dcap_cache_pck_get's): true with *ak a new reference (EVP_PKEY_free) if
 * qe_report (384 bytes), qe_sig (64) and att_key (64) are byte for byte the
 * ones remembered. */
bool mt_dcap_cache_qe_get(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                          const uint8_t *qe_report, const uint8_t *qe_sig, const uint8_t *att_key,
                          EVP_PKEY **ak);
/* Remembers, with the chain of this kind under key (nothing if it is not
 * there), that qe_sig over qe_report verified under its PCK leaf and that
 * att_key is the valid point ak (a reference is taken); replaces what was
 * remembered. */
void mt_dcap_cache_qe_put(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                          const uint8_t *qe_report, const uint8_t *qe_sig, const uint8_t *att_key,
                          EVP_PKEY *ak);

/* Counters of a cache since it was created or reset (tests, benchmarks). */
typedef struct mt_dcap_cache_stats {
    uint64_t pck_hits;       /* PCK chains taken from the cache */
    uint64_t pck_stored;     /* PCK chains verified and remembered */
    uint64_t qe_hits;        /* QE report signatures and attestation keys not checked again */
    uint64_t chain_hits;     /* TCB info / QE identity issuer chains not verified again */
    uint64_t chain_verified; /* TCB info / QE identity issuer chains verified */
    size_t pck_entries;      /* PCK slots in use, at most MT_DCAP_PCK_SLOTS */
} mt_dcap_cache_stats;
void mt_dcap_cache_stats_get(mt_dcap_cache *c, mt_dcap_cache_stats *out);

/* Verifies the TCB info (and the QE identity when present) of s against the
 * pinned root at time `at`, selects the TCB level of the platform and fills
 * claims->tcb_status, advisories and checked bits. `root` is the pinned
 * Intel SGX Root CA and root_fp its SHA-256 fingerprint. MT_EAUTH on a bad
 * signature or chain, expired collateral, a mismatching FMSPC/PCE-ID/QE, no
 * matching level, or Revoked. Uses and fills the cache of s (see above). */
mt_status mt_dcap_coll_evaluate(mt_dcap_state *s, X509 *root, const uint8_t root_fp[32],
                                const mt_dcap_platform *p, int64_t at,
                                mt_attest_claims *claims, mt_err *err);

/* The signer of TCB info and QE identity (`what` names the document in the
 * message): Intel's TCB Signing certificate, i.e. exactly one subject CN
 * "Intel SGX TCB Signing", issued directly by `root` (the pinned Intel SGX
 * Root CA; its signature verifies with the root's key), an end entity
 * (CA:FALSE) whose key usage includes digitalSignature and neither
 * keyCertSign nor cRLSign, without the PCK SGX extension. Any other
 * certificate that chains to the root, a PCK certificate in particular, is
 * refused with MT_EAUTH. Validity and CRLs are checked by the chain check. */
mt_status mt_dcap_tcb_signer_check(X509 *signer, X509 *root, const char *what, mt_err *err);

/* Parses and checks TCB info JSON alone (the fuzz entry point). */
mt_status mt_dcap_tcb_info_check(const char *raw, size_t len, mt_err *err);

#endif
