/* mt_snp: AMD SEV-SNP ATTESTATION_REPORT parser (the only reader of report
 * bytes) and verifier: ECDSA P-384 signature by the VCEK or VLEK, the chain
 * VCEK/VLEK -> ASK/ASVK -> ARK with the ARK pinned (Milan, Genoa, Turin),
 * reported_tcb against the VCEK's TCB extensions, chip_id against hwID,
 * product family from the certificate. See docs/attestation.md.
 * Thread-safety: reentrant. */
#ifndef MT_SNP_H
#define MT_SNP_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_SNP_REPORT_LEN 1184
#define MT_SNP_SIGNED_LEN 0x2A0

typedef struct mt_snp_report {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;
    uint8_t family_id[16], image_id[16];
    uint32_t vmpl;
    uint32_t sig_algo;
    uint64_t current_tcb;
    uint64_t platform_info;
    uint32_t flags; /* bit 0 author key en, 1 mask chip id, 2..4 signing key */
    uint8_t report_data[64];
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint8_t report_id[32], report_id_ma[32];
    uint64_t reported_tcb;
    uint8_t cpuid_fam, cpuid_mod, cpuid_step; /* version >= 3 */
    uint8_t chip_id[64];
    uint64_t committed_tcb;
    uint8_t current_build, current_minor, current_major;
    uint8_t committed_build, committed_minor, committed_major;
    uint64_t launch_tcb;
    uint8_t sig_r[72], sig_s[72]; /* little-endian */
} mt_snp_report;

#define MT_SNP_POLICY_DEBUG (1ull << 19)
#define MT_SNP_SIGNING_KEY(flags) (((flags) >> 2) & 7u)

/* Parses exactly MT_SNP_REPORT_LEN bytes. Checks version (2..5), signature
 * algorithm 1 (ECDSA P-384 SHA-384), signing key (VCEK or VLEK), and that
 * reserved fields are zero. MT_EINVAL with the reason otherwise. */
mt_status mt_snp_report_parse(const uint8_t *buf, size_t len, mt_snp_report *out,
                              mt_err *err);

#endif
