/* ks_internal: what the KeyStore's modules share (mt_keystore.c service,
 * mt_keyring.c node, ks_msg.c message crypto). Not installed. */
#ifndef MT_KS_INTERNAL_H
#define MT_KS_INTERNAL_H

#include <openssl/evp.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_attest.h"
#include "mt_keystore.h"

#define KS_GCM_OVERHEAD 28 /* nonce(12) || ciphertext || tag(16) */

static inline void ks_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t ks_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* AES-256-GCM with a random nonce: out = nonce || ct || tag (len +
 * KS_GCM_OVERHEAD bytes). */
mt_status ks_gcm_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t len, uint8_t *out, mt_err *err);
/* Inverse; out receives in_len - KS_GCM_OVERHEAD bytes. MT_ECRYPTO. */
mt_status ks_gcm_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t in_len, uint8_t *out, mt_err *err);
/* Encrypts plain (records: u32be version || 32-byte key) to the P-256 key
 * of the certificate cert (DER) as a release response (JSON, heap). */
mt_status ks_release_encrypt(const uint8_t *cert, size_t cert_len, uint32_t current,
                             const uint8_t *plain, size_t plain_len, char **resp,
                             size_t *resp_len, mt_err *err);
/* Decrypts a release response with the node's private key and certificate;
 * *plain heap (wipe + free), *current set. */
mt_status ks_release_decrypt(EVP_PKEY *priv, const uint8_t *cert, size_t cert_len,
                             const char *resp, size_t len, uint8_t **plain, size_t *plain_len,
                             uint32_t *current, mt_err *err);

/* The two kinds of sealed KeyStore answers (ks_msg.c): version 1, op
 * "release" (root key records only) and version 2, op "join" (ks_join.c:
 * KS_JOIN_PLATFORM_LEN bytes of shared platform keys, then the records).
 * label: the HKDF info prefix and AAD prefix (at most 32 bytes); prefix:
 * bytes before the records. */
#define KS_JOIN_PLATFORM_LEN 96
typedef struct ks_msg_kind {
    const char *label;
    int version;
    const char *op;
    size_t prefix;
} ks_msg_kind;
extern const ks_msg_kind ks_msg_release, ks_msg_join;
mt_status ks_msg_encrypt(const ks_msg_kind *k, const uint8_t *cert, size_t cert_len,
                         uint32_t current, const uint8_t *plain, size_t plain_len, char **resp,
                         size_t *resp_len, mt_err *err);
/* Decrypts and checks the size (prefix + 1..64 records); *plain heap. */
mt_status ks_msg_decrypt(const ks_msg_kind *k, EVP_PKEY *priv, const uint8_t *cert,
                         size_t cert_len, const char *resp, size_t len, uint8_t **plain,
                         size_t *plain_len, uint32_t *current, mt_err *err);
/* A keyring from records (u32be version || 32-byte key, ascending, one of
 * them current) (mt_keyring.c). MT_EINVAL when out of order or without the
 * current version. */
mt_status ks_keyring_from_records(const uint8_t *rec, size_t len, uint32_t current,
                                  mt_keyring **out, mt_err *err);

/* ---- release-policy extensions (ks_policy.c) ------------------------------
 * Rules of the release policy beyond the measurement lists, each optional
 * and absent from the JSON when empty (so older documents are unchanged):
 *  - "mrsigners" (64 hex) + "isv_prod_ids" (0..65535), level sgx only:
 *    signer-style release, as SGX sealing to the signer: an enclave whose
 *    MRSIGNER is listed and whose ISVPRODID is listed is released to
 *    whatever its MRENCLAVE, so an upgrade signed by the same key needs no
 *    policy change; a minimum isv_svn keeps older (vulnerable) builds out.
 *  - "min_svns" {name: N}: minimum security versions, passed to mt_policy's
 *    "min_svns" rule; the names a level allows are fixed (sev-snp: the
 *    reported TCB components tcb.bootloader/tee/snp/microcode/fmc and
 *    guest_svn; tdx: tee_tcb_svn.0..15, tdx_module.svn/major; sgx:
 *    isv_svn, config_svn), so a typo cannot lock every node out.
 * Errors never echo the value (MT_EINVAL names the field). */
#define KS_EXT_MAX 16
typedef struct ks_ext {
    char mrsigner[KS_EXT_MAX][65];
    size_t n_mrsigner;
    uint16_t prod[KS_EXT_MAX];
    size_t n_prod;
    struct {
        char name[24];
        uint64_t value;
    } min[KS_EXT_MAX];
    size_t n_min;
} ks_ext;

/* Parses the optional keys of a policy object at level. */
mt_status ks_ext_parse(const json_t *pol, const char *level, ks_ext *x, mt_err *err);
/* Adds the non-empty rules to a policy object. */
void ks_ext_json(const ks_ext *x, json_t *pol);
/* kind is one of the extension kinds: mrsigner, isv_prod_id, min_svn. */
bool ks_ext_kind(const char *kind);
/* Checks an allow/revoke value of an extension kind: mrsigner 64 hex,
 * isv_prod_id decimal, min_svn NAME=N (allow) / NAME (revoke). level NULL:
 * the shape only (any hardware level's names). */
mt_status ks_ext_check_value(const char *level, bool allow, const char *kind, const char *value,
                             mt_err *err);
/* Applies allow/revoke; *changed false for an allow that changes nothing;
 * MT_ENOTFOUND for a revoke of an absent value. */
mt_status ks_ext_edit(ks_ext *x, const char *level, bool allow, const char *kind,
                      const char *value, bool *changed, mt_err *err);
/* Some node can still be released to: a measurement, or active
 * signer-style release. */
bool ks_ext_release_possible(const ks_ext *x, size_t n_meas);
/* Adds "min_svns" to an mt_policy document. */
void ks_ext_policy_doc(const ks_ext *x, json_t *doc);
/* Signer-style release is active: an mrsigner, an isv_prod_id AND a
 * minimum isv_svn (without one, every older, possibly vulnerable enclave of
 * the signer would be released to: the rules stay inert until it is set). */
bool ks_ext_signer_style(const ks_ext *x);
/* NULL without signer rules; "active"; or "inert: <what is missing, the
 * command>" (static text, for `admin release show` and errors). */
const char *ks_ext_signer_state(const ks_ext *x);
json_t *ks_ext_signer_list(const ks_ext *x);
/* Signer-style release after mt_policy matched the mrsigner: the claims'
 * isv_prod_id is allowed. MT_EPERM naming the rule. */
mt_status ks_ext_signer_check(const ks_ext *x, const mt_attest_claims *c, mt_err *err);
/* A well-formed extension value to record as the audit object. */
bool ks_ext_audit_object(const char *kind, const char *value, char *out, size_t cap);

/* ---- TPM NV counter (ks_nv.c): rollback detection at level tpm2 ----------
 * The state records {"tpm_nv": {"index", "counter"}}; every save writes
 * counter = TPM value + 1 and then increments the TPM counter (so a crash
 * in between leaves the state one ahead, which the next start completes).
 * ks_nv_before_save defines the counter at the first save (*idx 0) and
 * sets *next. *pending != 0 means a state recording *pending may be on disk
 * while the TPM counter is still below it (an increment failed, or the write
 * reported an error after it may have landed): before_save first brings the
 * TPM counter to *pending (re-read, increment) and refuses the save (MT_EUNAVAIL,
 * or MT_ECONFLICT when the counter moved elsewhere; nothing written) while it
 * cannot, so no two different states ever record the same counter value.
 * ks_nv_after_save increments; a failure is logged and sets *pending (the
 * state is durable; the next save or start completes it); ks_nv_check at
 * open refuses (MT_ECONFLICT, naming the file and what to do) a state older
 * than the counter, ahead of it by more than one, or whose counter the TPM
 * does not hold. Fault injection for tests (as the crash one): the environment
 * variable MESATEE_TEST_KS_NV_FAIL_INCREMENTS=n makes the first n increments
 * of this process fail as a TPM error would (which the host can cause anyway). */
#include "mt_tee.h"
mt_status ks_nv_before_save(mt_tee *tee, uint32_t *idx, uint64_t *tpm, uint64_t *pending,
                            uint64_t *next, mt_err *err);
void ks_nv_after_save(mt_tee *tee, uint32_t idx, uint64_t *tpm, uint64_t *pending,
                      uint64_t saved);
mt_status ks_nv_check(mt_tee *tee, const char *path, uint32_t idx, uint64_t state_value,
                      uint64_t *tpm, mt_err *err);
/* key = HKDF-SHA256(ikm = ECDH(mine, peer), salt, info) (32 bytes), for the
 * release messages and the escrow shares (ks_msg.c). MT_ECRYPTO when the
 * agreement fails (e.g. keys of different curves). */
mt_status ks_ecdh_hkdf(EVP_PKEY *mine, EVP_PKEY *peer, const uint8_t salt[32],
                       const uint8_t *info, size_t info_len, uint8_t key[32], mt_err *err);

/* Escrow (ks_escrow.c) hooks into the service (mt_keystore.c): the live
 * root versions as records (u32be version || 32-byte key, ascending; heap,
 * wipe + free), the current version and the state's level. */
mt_status ks_export_roots(mt_keystore *ks, uint8_t **records, size_t *len, uint32_t *current,
                          char level[16], mt_err *err);
/* Opens data_dir's KeyStore when no state file exists, bootstrapping it
 * (policy from req, like a first start) with the given root versions
 * instead of a fresh version 1. MT_ECONFLICT when a state exists. */
mt_status ks_open_with_roots(mt_tee *tee, const char *data_dir, const char *coll_dir,
                             const char *req, size_t req_len, const uint8_t *records,
                             size_t rec_len, uint32_t current, mt_keystore **out, mt_err *err);

/* Escrow authorization (mt_keystore.c, mt_escrow.h): with auditors
 * recorded, seq + 1 and at least threshold of them signed the policy
 * document with "escrow" (the object escrow) added, then the state is saved
 * (seq spent) before returning MT_OK, *signed_by true. Without auditors
 * MT_OK, nothing changes, *signed_by false. MT_EPERM (nothing changed) when
 * the signatures are missing, too few or over another document. */
mt_status ks_escrow_authorize(mt_keystore *ks, const json_t *escrow, const char *sig,
                              size_t sig_len, bool *signed_by, mt_err *err);
/* That document for the policy the server shows (*doc heap). */
mt_status ks_escrow_doc(const char *policy, size_t len, const json_t *escrow, char **doc,
                        mt_err *err);

/* The release decision over a release request without releasing anything
 * (mt_keystore.c): MT_OK with *der the verified evidence certificate (heap),
 * MT_EPERM when the policy refuses (measurement filled as by
 * mt_keystore_release) or at level none, MT_EINVAL for a malformed request.
 * Used by ks_dbcert.c. */
mt_status ks_attest_request(mt_keystore *ks, const char *req, size_t len, uint8_t **der,
                            size_t *der_len, char measurement[MT_KEYSTORE_MEAS_HEX + 1],
                            mt_err *err);

#endif
