/* mt_tpm2_azure: Azure confidential-VM vTPM evidence (paravisor "HCL").
 *
 * The vTPM's NV index 0x01400001 holds an HCL report: a 32-byte header
 * ("HCLA", version, report size, request type), the hardware report (SNP
 * ATTESTATION_REPORT, or a TDX TDREPORT padded to 1184 bytes), runtime data
 * (size, version, report type 2 = SNP / 4 = TDX, hash type, claims size) and
 * a JSON runtime-claims blob whose keys[kid=HCLAkPub] is the vTPM AK (RSA
 * JWK). Chain of trust checked here:
 *   AMD/Intel root -> hardware report (mt_attest) -> report_data[0:H] =
 *   H(runtime claims) -> HCLAkPub -> TPM quote (mt_tpm2_quote_verify) ->
 *   PCR values + extraData.
 * For TDX the TDREPORT is only MAC'd by the CPU, so the caller passes the
 * DCAP quote of that TDREPORT; its report_data and MRTD/RTMRs must equal the
 * TDREPORT's.
 * Every byte of the HCL report is read by mt_hcl_report_parse (bounds-checked,
 * trailing bytes after the report size must be zero). Thread-safety: reentrant. */
#ifndef MT_TPM2_AZURE_H
#define MT_TPM2_AZURE_H

#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_err.h"
#include "mt_tpm2.h"

#define MT_HCL_REPORT_TYPE_SNP 2u
#define MT_HCL_REPORT_TYPE_TDX 4u

typedef struct mt_hcl_report {
    uint32_t version, report_size, request_type;
    const uint8_t *hw_report; /* 1184 bytes (TDX: TDREPORT in the first 1024) */
    uint32_t data_size, data_version, report_type, hash_type, claims_len;
    const uint8_t *claims; /* runtime claims JSON, claims_len bytes; borrowed */
} mt_hcl_report;

/* Parses an HCL report; MT_EINVAL with the reason. */
mt_status mt_hcl_report_parse(const uint8_t *buf, size_t len, mt_hcl_report *out, mt_err *err);

typedef struct mt_tpm2_azure_in {
    const uint8_t *hcl; /* HCL report (NV 0x01400001) */
    size_t hcl_len;
    const uint8_t *td_quote; /* TDX: DCAP quote of the TDREPORT; NULL for SNP */
    size_t td_quote_len;
    const mt_attest_collateral *coll; /* SNP: VCEK + chain; TDX: DCAP collateral or NULL */
    int64_t at;                       /* verification time */
    mt_tpm2_quote_in quote;           /* .ak is ignored: HCLAkPub is used */
} mt_tpm2_azure_in;

/* Verifies the whole chain. *hw gets the hardware claims (SEV-SNP or TDX),
 * *tpm the quote claims (mt_tpm2_quote_verify) plus public_key = HCLAkPub
 * (SPKI DER) and user_data = the runtime claims' "user-data" when present.
 * MT_EINVAL malformed, MT_EAUTH a failed check; both claims zeroed then. */
__attribute__((warn_unused_result)) mt_status mt_tpm2_azure_verify(const mt_tpm2_azure_in *in,
                                                                   mt_attest_claims *hw,
                                                                   mt_attest_claims *tpm,
                                                                   mt_err *err);

#endif
