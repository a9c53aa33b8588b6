/* tee_tpm2: the TPM 2.0 attester of level "tpm2" (tss2 ESAPI).
 *
 * Opens a TPM through a TCTI configuration string ("device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321"; NULL: env MESATEE_TPM2_TCTI, else
 * "device:/dev/tpmrm0"), creates the endorsement key from the TCG RSA 2048
 * template L-1 (it matches the EK certificate in NV 0x01c00002), creates the
 * attestation key as an ECC P-256 restricted signing primary key in the
 * endorsement hierarchy (deterministic: the same AK on every start of the
 * same TPM, so a verifier enrolls it once and pins it), answers credential
 * activation challenges (mt_tpm2_enroll_* on the verifier side), extends a
 * measurement into a PCR, and produces mesatee TPM evidence (mt_tpm2.h
 * container): a quote over SHA-256 PCRs 0-7 and the application PCR with
 * extraData = SHA-256(report data).
 *
 * Ownership: mt_tpm2_attester_open allocates; mt_tpm2_attester_free flushes
 * the TPM objects and releases (NULL ok). Borrowed outputs live as long as
 * the attester. Thread-safety: one thread at a time per attester (the TPM
 * is one device; the caller serialises).
 * Built without libtss2 (MT_HAVE_TSS2 unset), open fails with MT_EUNAVAIL. */
#ifndef TEE_TPM2_H
#define TEE_TPM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

/* NV index of the RSA 2048 EK certificate (TCG EK Credential Profile). */
#define MT_TPM2_NV_EK_RSA_CERT 0x01c00002u
/* Default application PCR (resettable, locality 0). */
#define MT_TPM2_DEFAULT_PCR 23u

typedef struct mt_tpm2_attester mt_tpm2_attester;

/* Opens the TPM and creates EK and AK; reads the EK certificate if the
 * TPM has one. pcr: the application PCR quoted with PCRs 0-7 (8..23).
 * MT_EUNAVAIL when the TPM cannot be reached (message names the TCTI). */
mt_status mt_tpm2_attester_open(const char *tcti, unsigned pcr, mt_tpm2_attester **out,
                                mt_err *err);
void mt_tpm2_attester_free(mt_tpm2_attester *a);
/* The application PCR index. */
unsigned mt_tpm2_attester_pcr(const mt_tpm2_attester *a);

/* Marshalled TPMT_PUBLIC of the AK (what a verifier enrolls and pins). */
void mt_tpm2_attester_ak_public(const mt_tpm2_attester *a, const uint8_t **buf, size_t *len);
/* DER EK certificate from NV; MT_ENOTFOUND when the TPM has none. */
mt_status mt_tpm2_attester_ek_cert(const mt_tpm2_attester *a, const uint8_t **der, size_t *len,
                                   mt_err *err);

/* ActivateCredential with the EK and AK: answers a verifier's challenge
 * (mt_tpm2_enroll_challenge) with the secret (at most 64 bytes) in
 * out/out_len. MT_EAUTH when the TPM refuses (the challenge was not made for
 * this EK and AK). */
mt_status mt_tpm2_attester_activate(mt_tpm2_attester *a, const uint8_t *cred_blob,
                                    size_t cred_blob_len, const uint8_t *secret, size_t secret_len,
                                    uint8_t out[64], size_t *out_len, mt_err *err);

/* Enrolment (run by an enroller who holds the enroller key, against this
 * TPM): checks the EK certificate (ek_cert DER/PEM, or the TPM's own from
 * NV when NULL) against ek_ca (PEM bundle) at `at`, runs credential
 * activation for this attester's AK (mt_tpm2_enroll_* verifier side, this
 * TPM answering), and only when the TPM proved it holds both the EK and the
 * AK returns the signed enrolment record (mt_tpm2_enroll_record; *record
 * heap JSON text). MT_EAUTH when the chain, the AK attributes or the
 * activation fail. */
struct evp_pkey_st;
mt_status mt_tpm2_attester_enrol(mt_tpm2_attester *a, const uint8_t *ek_cert, size_t ek_len,
                                 const uint8_t *ek_ca, size_t ca_len, int64_t at,
                                 struct evp_pkey_st *enroller, char **record, mt_err *err);

/* Extends the 32-byte digest into the application PCR (SHA-256 bank);
 * with reset, the PCR is reset first so that it ends up as
 * SHA-256(32 zero bytes || digest). */
mt_status mt_tpm2_attester_extend(mt_tpm2_attester *a, const uint8_t digest[32], bool reset,
                                  mt_err *err);

/* Quotes PCRs 0-7 and the application PCR with extraData = SHA-256(report
 * data) and returns the evidence container (*out, free()). The PCR values
 * are read alongside and checked against the quote's pcrDigest (re-read and
 * re-quoted if a PCR changed in between). report_data: 0 to 64 bytes. */
mt_status mt_tpm2_attester_quote(mt_tpm2_attester *a, const uint8_t *report_data, size_t len,
                                 uint8_t **out, size_t *out_len, mt_err *err);

/* Issue 10 (KeyStore): seals len (1..128) bytes inside the TPM as a
 * keyedhash sealed-data object (no policy, empty auth, noDA) under a storage
 * primary key of the OWNER hierarchy (ECC P-256, AES-128-CFB, restricted
 * decrypt; re-created from the owner seed at every use and flushed after).
 * *blob (heap) is TPM2B_PUBLIC || TPM2B_PRIVATE, marshalled: its private
 * part is encrypted by that storage key, so only this TPM (until its owner
 * hierarchy is cleared) opens it. unseal: MT_EINVAL for a malformed blob,
 * MT_ECRYPTO when this TPM cannot load it (another TPM's blob), MT_EIO for
 * other TPM errors. Not thread-safe against the attester's other calls:
 * used at start only. */
mt_status mt_tpm2_attester_seal(mt_tpm2_attester *a, const uint8_t *data, size_t len,
                                uint8_t **blob, size_t *blob_len, mt_err *err);
mt_status mt_tpm2_attester_unseal(mt_tpm2_attester *a, const uint8_t *blob, size_t len,
                                  uint8_t *out, size_t cap, size_t *out_len, mt_err *err);
/* The reader of a sealed blob (untrusted host bytes, <data-dir>/keystore.tpm)
 * without a TPM: TPM2B_PUBLIC || TPM2B_PRIVATE and nothing after them, the
 * public area a keyedhash sealed-data object (no sign/decrypt, fixedTPM and
 * fixedParent, name algorithm SHA-256), a non-empty private part. MT_EINVAL
 * naming what is wrong; MT_EUNAVAIL in a build without tss2. Used by unseal
 * before the blob reaches the TPM; fuzzed (fuzz/keystore_tpm_blob.c). */
mt_status mt_tpm2_sealed_blob_check(const uint8_t *blob, size_t len, mt_err *err);

/* NV counter (issue 10: rollback detection of the KeyStore state at level
 * tpm2). A TPM NV index of type counter (monotonic: it can only be
 * incremented; redefined after an undefine it starts at the highest value
 * any counter of the TPM had), empty auth, noDA, in the owner range.
 *  - MT_TPM2_NV_DEFINE: defines one at the first free index from *index
 *    (16 tries; *index receives the one used), increments it once;
 *  - MT_TPM2_NV_READ / MT_TPM2_NV_INCREMENT: the counter at *index.
 * *value receives the value after the operation. MT_ENOTFOUND when the
 * index is not defined, MT_ECONFLICT when it is not a counter, MT_EIO for
 * other TPM errors. Not thread-safe against the attester's other calls
 * (mt_tee_tpm2_counter takes the tee's lock). */
typedef enum mt_tpm2_nv_op {
    MT_TPM2_NV_READ = 0,
    MT_TPM2_NV_INCREMENT = 1,
    MT_TPM2_NV_DEFINE = 2,
} mt_tpm2_nv_op;
mt_status mt_tpm2_nv_counter(mt_tpm2_attester *a, mt_tpm2_nv_op op, uint32_t *index,
                             uint64_t *value, mt_err *err);
/* The first index the KeyStore tries for its counter (owner range). */
#define MT_TPM2_NV_KEYSTORE_BASE 0x01000a10u

/* Level tpm2 of mt_tee: opens the attester with the TCTI of env
 * MESATEE_TPM2_TCTI (default device:/dev/tpmrm0) and the PCR of env
 * MESATEE_TPM2_PCR (default 23), resets that PCR and extends the daemon's
 * measurement (64 hex characters) into it. */
mt_status mt_tee_tpm2_open(const char *measurement_hex, mt_tpm2_attester **out, mt_err *err);

/* The attester of a tee opened at level tpm2 (NULL otherwise); borrowed. */
struct mt_tee;
mt_tpm2_attester *mt_tee_tpm2(const struct mt_tee *tee);
/* mt_tpm2_nv_counter on the tee's attester, serialised with the evidence
 * producer (runtime calls). MT_EUNAVAIL below level tpm2. */
mt_status mt_tee_tpm2_counter(struct mt_tee *tee, mt_tpm2_nv_op op, uint32_t *index,
                              uint64_t *value, mt_err *err);

/* The expected value of the application PCR after
 * mt_tpm2_attester_extend(digest, reset = true). */
void mt_tpm2_expected_pcr(const uint8_t digest[32], uint8_t out[32]);

#endif
