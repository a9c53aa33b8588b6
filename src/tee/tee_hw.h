/* tee_hw: evidence producers of the hardware levels "sev-snp", "tdx" and
 * "sgx", written against the Linux interfaces.
 *
 *   NOT EXERCISED ON HARDWARE HERE. These paths were compiled and tested
 *   against fake directory trees and recorded outputs only (no SEV-SNP, TDX
 *   or SGX machine was available); every error they return says so.
 *
 *  - configfs-tsm (Linux >= 6.7), SNP and TDX: mkdir an entry under
 *    /sys/kernel/config/tsm/report, read its generation, write 64 bytes to
 *    inblob, read outblob (SNP: the 1184-byte report; TDX: a DCAP quote),
 *    auxblob (SNP certificate table, optional) and provider ("sev_guest",
 *    "tdx_guest"), then check that generation is the one after our write
 *    (no other writer in between), and rmdir the entry.
 *  - /dev/sev-guest (Linux >= 5.19), SNP fallback: the SNP_GET_EXT_REPORT
 *    ioctl; the response is MSG_REPORT_RSP (status, report_size, report).
 *  - Gramine's /dev/attestation (SGX inside Gramine-SGX): attestation_type
 *    must be "dcap"; write 64 bytes to user_report_data, read quote.
 *
 * Every path root is a parameter so tests can point it at a fake tree.
 * Ownership: out buffers are heap (free()); mt_tee_hw open/free pair.
 * Thread-safety: one call at a time per mt_tee_hw. */
#ifndef TEE_HW_H
#define TEE_HW_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_TSM_ROOT "/sys/kernel/config/tsm/report"
#define MT_SEV_GUEST_DEV "/dev/sev-guest"
#define MT_GRAMINE_ATTEST_ROOT "/dev/attestation"
#define MT_HW_NOT_EXERCISED "this producer was not exercised on hardware here"

/* ---- configfs-tsm -------------------------------------------------------- */

typedef struct mt_tsm_report {
    uint8_t *outblob;
    size_t outblob_len;
    uint8_t *auxblob; /* NULL when the entry has none or it is empty */
    size_t auxblob_len;
    char provider[32];
    uint64_t generation;
} mt_tsm_report;

/* Called after inblob is written (tests simulate the kernel or a concurrent
 * writer with it); NULL in production. */
typedef void (*mt_tsm_hook)(const char *entry_dir, void *ud);

/* Gets a report from configfs-tsm under root (MT_TSM_ROOT) through entry
 * (NULL: "mesatee-<pid>-<n>"; the entry is removed afterwards). provider
 * (NULL: any) must match the entry's provider. MT_EUNAVAIL when root is
 * missing, MT_EAGAIN when the generation shows another writer, MT_EIO for
 * other I/O failures; the message says the path was not exercised on
 * hardware here. */
mt_status mt_tsm_get_report(const char *root, const char *entry, const char *provider,
                            const uint8_t inblob[64], mt_tsm_hook hook, void *hook_ud,
                            mt_tsm_report *out, mt_err *err);
void mt_tsm_report_clear(mt_tsm_report *r);

/* ---- /dev/sev-guest ------------------------------------------------------ */

#define MT_SNP_REPORT_REQ_LEN 96   /* struct snp_report_req */
#define MT_SNP_REPORT_RESP_LEN 4000 /* struct snp_report_resp */
#define MT_SNP_REPORT_LEN 1184

/* struct snp_report_req: user_data[64], u32 vmpl (little-endian), 28 zero bytes. */
void mt_snp_report_req_encode(const uint8_t user_data[64], uint32_t vmpl,
                              uint8_t out[MT_SNP_REPORT_REQ_LEN]);
/* Reads MSG_REPORT_RSP (u32 status, u32 report_size, 24 reserved, report):
 * status 0, report_size 1184, report within len; *report borrows resp. */
mt_status mt_snp_report_resp_parse(const uint8_t *resp, size_t len, const uint8_t **report,
                                   mt_err *err);
/* SNP_GET_EXT_REPORT on dev (MT_SEV_GUEST_DEV) at VMPL 0: the report in
 * *report (1184 bytes, heap) and the certificate table in *certs (heap, may
 * be NULL when the host supplies none). */
mt_status mt_sev_guest_ext_report(const char *dev, const uint8_t user_data[64], uint8_t **report,
                                  uint8_t **certs, size_t *certs_len, mt_err *err);

/* ---- Gramine /dev/attestation -------------------------------------------- */

/* Writes user_report_data under root (MT_GRAMINE_ATTEST_ROOT) and reads the
 * DCAP quote (heap, at most 64 KiB). attestation_type must be "dcap". */
mt_status mt_gramine_quote(const char *root, const uint8_t user_data[64], uint8_t **quote,
                           size_t *len, mt_err *err);

/* ---- level producers (used by mt_tee) ------------------------------------ */

typedef struct mt_tee_hw mt_tee_hw;

/* Opens the producer of level "sev-snp", "tdx" or "sgx" at the given roots
 * (NULL: the defaults above) and checks that the interface exists; the
 * error at start names the missing path and says "not exercised on hardware
 * here". */
mt_status mt_tee_hw_open(const char *level, const char *tsm_root, const char *sev_dev,
                         const char *gramine_root, mt_tee_hw **out, mt_err *err);
void mt_tee_hw_free(mt_tee_hw *hw);
/* Evidence binding report_data: *tag is the RA-TLS tag (MT_RATLS_TAG_SNP for
 * an SNP report, MT_RATLS_TAG_QUOTE for a TDX or SGX quote); *ev heap. */
mt_status mt_tee_hw_evidence(mt_tee_hw *hw, const uint8_t report_data[64], uint64_t *tag,
                             uint8_t **ev, size_t *len, mt_err *err);

#endif
