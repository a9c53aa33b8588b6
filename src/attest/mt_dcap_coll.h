/* mt_dcap_coll: DCAP collateral for SGX and TDX quotes: the reader of TCB
 * info and QE identity JSON (from a QuoteCollateralV3 bundle or from PCS
 * responses, keeping the exact signed bytes), their signature and issuer
 * chain checks, and TCB level selection (SGX components, PCESVN, TDX
 * components, the TDX module rule, QE identity, status convergence).
 *
 * Ownership: mt_dcap_coll owns everything it points to; clear it with
 * mt_dcap_coll_clear (safe on a zeroed struct). Thread-safety: reentrant. */
#ifndef MT_DCAP_COLL_H
#define MT_DCAP_COLL_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "mt_attest.h"

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

/* Verifies the TCB info (and the QE identity when present) against the
 * pinned root at time `at`, selects the TCB level of the platform and fills
 * claims->tcb_status, advisories and checked bits. `root` is the pinned
 * Intel SGX Root CA. MT_EAUTH on a bad signature or chain, expired
 * collateral, a mismatching FMSPC/PCE-ID/QE, no matching level, or Revoked. */
mt_status mt_dcap_coll_evaluate(const mt_dcap_coll *c, X509 *root, const mt_dcap_platform *p,
                                int64_t at, mt_attest_claims *claims, mt_err *err);

/* Parses and checks TCB info JSON alone (the fuzz entry point). */
mt_status mt_dcap_tcb_info_check(const char *raw, size_t len, mt_err *err);

#endif
