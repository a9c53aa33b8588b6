/* mt_dcap: Intel DCAP ECDSA quote parser (SGX v3/v4, TDX v4/v5; the only
 * reader of quote bytes) and verifier: attestation-key signature over
 * header||body, QE report signature by the PCK, QE report binding of the
 * attestation key, PCK chain to the pinned Intel SGX Root CA with CRLs, PCK
 * SGX extensions, then TCB evaluation with mt_dcap_coll.
 * Parsed structs borrow from the quote buffer. Thread-safety: reentrant. */
#ifndef MT_DCAP_H
#define MT_DCAP_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_DCAP_TEE_SGX 0x00u
#define MT_DCAP_TEE_TDX 0x81u

typedef struct mt_sgx_report_body {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t isv_ext_prod_id[16];
    uint8_t attributes[16];
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint8_t config_id[64];
    uint16_t isv_prod_id, isv_svn, config_svn;
    uint8_t isv_family_id[16];
    uint8_t report_data[64];
} mt_sgx_report_body;

typedef struct mt_td_report_body {
    uint8_t tee_tcb_svn[16];
    uint8_t mrseam[48], mrsignerseam[48];
    uint8_t seam_attributes[8], td_attributes[8], xfam[8];
    uint8_t mrtd[48], mrconfigid[48], mrowner[48], mrownerconfig[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    bool v15; /* body type 3: the two fields below are present */
    uint8_t tee_tcb_svn2[16];
    uint8_t mrservicetd[48];
} mt_td_report_body;

typedef struct mt_dcap_quote {
    uint16_t version, att_key_type;
    uint32_t tee_type;
    uint16_t qe_svn, pce_svn;
    uint8_t qe_vendor_id[16];
    uint8_t user_data[20];
    uint16_t body_type; /* v5 only */
    size_t signed_len;  /* header || body: what the attestation key signs */
    mt_sgx_report_body sgx; /* tee_type SGX */
    mt_td_report_body td;   /* tee_type TDX */
    uint8_t sig[64], att_key[64];
    const uint8_t *qe_report_raw; /* 384 bytes signed by the PCK */
    mt_sgx_report_body qe_report;
    uint8_t qe_sig[64];
    const uint8_t *auth_data;
    uint16_t auth_len;
    uint16_t cert_type;
    const uint8_t *cert_data;
    uint32_t cert_len;
    size_t quote_len; /* bytes used; the rest of the buffer is zero padding */
} mt_dcap_quote;

/* Parses a quote, following its length fields; bytes after the quote must
 * be zero (recorded quotes carry padding). MT_EINVAL with the reason. */
mt_status mt_dcap_quote_parse(const uint8_t *buf, size_t len, mt_dcap_quote *q, mt_err *err);

/* SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1). */
typedef struct mt_pck_ext {
    uint8_t comp[16];
    uint16_t pcesvn;
    uint8_t cpusvn[16];
    uint8_t pceid[2];
    uint8_t fmspc[6];
    uint8_t ppid[16];
} mt_pck_ext;
/* Parses the DER value of the SGX extensions. */
mt_status mt_dcap_pck_ext_parse(const uint8_t *der, size_t len, mt_pck_ext *out, mt_err *err);

#endif
