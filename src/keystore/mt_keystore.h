/* mt_keystore: the platform KeyStore (issue 10). Two roles, in one header
 * because they speak the same messages:
 *
 *  - the KeyStore service (mt_keystore_*): holds the versioned platform root
 *    keys (32 random bytes per version, never derived from a measurement)
 *    and the release policy, both in ONE sealed state file
 *    <data-dir>/keystore.sealed (untrusted host storage: AES-256-GCM under
 *    the TEE platform key "keystore-seal/v1", which is bound to the platform
 *    secret and not to the binary, so an upgraded daemon opens it). It
 *    At level tpm2 the seal key is instead 32 random bytes sealed INSIDE the
 *    TPM (a sealed-data object under an owner-hierarchy storage key,
 *    <data-dir>/keystore.tpm), so a copy of the disk opens on no other TPM,
 *    and every save of the state is counted on a TPM NV counter (ks_nv.c):
 *    a state older than the counter (a rollback) is refused at open.
 *    It releases the root keys only to a node whose attestation evidence (an
 *    RA-TLS certificate) satisfies the release policy, verified with
 *    mt_policy_verify_cert, encrypted to the certificate's key.
 *  - the node (mt_keystore_request / mt_keystore_accept / mt_keyring_*):
 *    makes a fresh attested identity, asks for the keys, opens the answer
 *    with its private key, and derives key-encryption keys:
 *        KEK(purpose, v) = HKDF-SHA256(ikm = root key v, salt =
 *                          "mesatee-kek/v1", info = purpose).
 *
 * Today both roles run inside `mesatee serve` (mt_core_open); the request and
 * response are self-contained byte strings (JSON, docs/formats.md "KeyStore
 * release messages"), exactly what a separate `keystore` role would exchange
 * over the network later.
 *
 * Release policy (JSON, docs/formats.md): {"level", "measurements": [hex
 * evidence measurements, i.e. `mesatee measure --output json`
 * .measurement], "soft_platform_keys": [...], "tpm2_aks": [...], "seq"}.
 * It is built into an mt_policy (allowed_kinds = the level's kind, soft:
 * measurements.gateway.measurement; tpm2: measurements.gateway.pcr23 =
 * SHA-256(0^32 || M) and the AK pins; sev-snp / tdx / sgx, NOT exercised
 * on hardware: measurements.gateway.measurement / mrtd (96 hex) / mrenclave
 * (64 hex) and collateral_dir = the open's coll_dir). Level none: the policy records
 * "none" and the keys are released without evidence (level none protects
 * nothing; a warning is logged).
 *
 * First start (no state file): root key v1 is created and the policy allows
 * exactly the requesting node (its measurement and its soft platform key or
 * TPM AK, read from its own verified evidence); logged.
 *
 * Errors: MT_EPERM when the policy refuses (the message names the
 * measurement and how to allow it), MT_EINVAL for malformed messages or
 * arguments (field named), MT_ECRYPTO when a sealed blob does not
 * authenticate, MT_EIO for file errors.
 * Ownership: opaque handles, *_free(NULL) is a no-op; returned strings are
 * heap (free()).
 * Thread-safety: an mt_keystore serialises its operations internally; an
 * mt_keyring is immutable after mt_keystore_accept and may be shared. */
#ifndef MT_KEYSTORE_H
#define MT_KEYSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_policy.h"
#include "mt_tee.h"

#define MT_KEYSTORE_FILE "keystore.sealed"
#define MT_KEYSTORE_TPM_FILE "keystore.tpm" /* level tpm2: the seal key, sealed in the TPM */
#define MT_KEYSTORE_MAX_VERSIONS 64
#define MT_KEYSTORE_MAX_ENTRIES 64 /* per policy list */
#define MT_KEYSTORE_MSG_MAX (256u * 1024u)
#define MT_KEYSTORE_STATE_MAX (1u << 20)
#define MT_KEYSTORE_SIGNERS_MAX (16u * 1024u) /* auditor PEM bundle */
#define MT_KEYSTORE_DBCA_PEM_MAX 8192u /* the sealed database CA: each PEM (mt_dbcert.h) */

typedef struct mt_keystore mt_keystore;
typedef struct mt_keystore_node mt_keystore_node;
typedef struct mt_keyring mt_keyring;

/* ---- service ------------------------------------------------------------ */

/* Opens the KeyStore of data_dir with the TEE's platform key. When the state
 * file does not exist it is created (root v1, policy from the evidence in
 * first_req, a release request made by this node), and *created is set. */
mt_status mt_keystore_open(mt_tee *tee, const char *data_dir, const char *first_req,
                           size_t first_req_len, mt_keystore **out, bool *created,
                           mt_err *err);
/* The same; coll_dir (may be NULL) is the collateral directory (VCEK/PCK
 * chains, TCB info: mt_policy "collateral_dir") that verifies evidence at
 * levels sev-snp, tdx and sgx, for bootstrap and for every release. Those
 * three levels are NOT exercised on hardware: the release policy is tested
 * against recorded evidence only. */
mt_status mt_keystore_open_coll(mt_tee *tee, const char *data_dir, const char *coll_dir,
                                const char *first_req, size_t first_req_len, mt_keystore **out,
                                bool *created, mt_err *err);
void mt_keystore_free(mt_keystore *ks);

/* The database CA sealed in the state (optional "db_ca", docs/formats.md;
 * docs/cluster.md "Database credentials in the join answer"). set: checks
 * the pair as mt_dbcert_ca_load does (MT_EINVAL naming what is wrong; each
 * PEM at most MT_KEYSTORE_DBCA_PEM_MAX bytes) and saves the state (sealed,
 * counted at tpm2) unless it is already the sealed pair; *changed (may be
 * NULL) tells. get: heap copies (wipe and free the key), MT_ENOTFOUND when
 * none is sealed. */
mt_status mt_keystore_db_ca_set(mt_keystore *ks, const char *cert_pem, const char *key_pem,
                                bool *changed, mt_err *err);
mt_status mt_keystore_db_ca_get(mt_keystore *ks, char **cert_pem, char **key_pem, mt_err *err);

/* Hex length of the longest release-policy measurement (48-byte SNP
 * MEASUREMENT / TDX MRTD). */
#define MT_KEYSTORE_MEAS_HEX 96

/* The release policy (as mt_keystore_release checks it) of a KeyStore at
 * level sev-snp, tdx or sgx allowing the measurements meas[0..n) (96 hex
 * characters at sev-snp (claim "measurement") and tdx ("mrtd"), 64 at sgx
 * ("mrenclave")), collateral from coll_dir. For tests and tools; *out is
 * freed with mt_policy_free. */
mt_status mt_keystore_hw_policy(const char *level, const char *const *meas, size_t n,
                                const char *coll_dir, mt_policy **out, mt_err *err);

/* The release decision at level sev-snp, tdx or sgx over claims of
 * already verified evidence (recorded evidence, tests and tools): policy is a
 * release-policy object as `mesatee admin release show` prints it (level,
 * measurements, and the optional rules "mrsigners" + "isv_prod_ids" (sgx
 * signer-style release) and "min_svns" {name: N}; other keys ignored).
 * Exactly the check mt_keystore_release makes after verifying the
 * certificate (evidence age not checked). MT_OK, MT_EPERM naming the
 * rule(s) that refused, MT_EINVAL for a malformed policy. */
mt_status mt_keystore_hw_decide(const char *policy, size_t len, const mt_attest_claims *c,
                                mt_err *err);

/* SGX signer-style release of a policy as `admin release show` prints it
 * (its "signer_release" field): *state NULL (no signer rules, or not sgx),
 * "active" (an mrsigner, an isv_prod_id and a minimum isv_svn), or "inert:
 * <what is missing and the command>" (static text). MT_EINVAL when
 * malformed. */
mt_status mt_keystore_signer_release(const char *policy, size_t len, const char **state,
                                     mt_err *err);

/* Release-policy rule kinds of allow/revoke (mt_keystore_policy_allow). */
#define MT_KEYSTORE_KINDS_TEXT                                                                 \
    "measurement, soft_platform_key, tpm2_ak, mrsigner, isv_prod_id or min_svn"
/* The shape of an allow (allow true) or revoke value of kind, as far as it
 * can be checked without the KeyStore's level: measurement 64 or 96 hex,
 * soft_platform_key / tpm2_ak / mrsigner 64 hex, isv_prod_id decimal
 * 0..65535, min_svn NAME=N (allow) or NAME (revoke). MT_EINVAL (never
 * echoing the value) otherwise. */
mt_status mt_keystore_check_value(const char *kind, bool allow, const char *value, mt_err *err);
/* A well-formed (kind, value) to record as an audit object into out. */
bool mt_keystore_audit_object(const char *kind, const char *value, char *out, size_t cap);
/* The document auditors sign for allow/revoke of (kind, value) on the policy
 * the server shows (policy: `GET /v1/admin/release-policy` answer): the same
 * edit the KeyStore makes (mt_keystore_policy_allow_signed), seq + 1, sorted
 * compact JSON and "\n". *doc heap. MT_ECONFLICT when the change changes
 * nothing or would leave no node releasable, MT_ENOTFOUND for a revoke of an
 * absent value, MT_EINVAL for a bad value. */
mt_status mt_keystore_release_draft(const char *policy, size_t len, bool allow,
                                    const char *kind, const char *value, char **doc, mt_err *err);

/* Verifies the request's evidence against the release policy and answers
 * with every live root key version encrypted to the evidence's key.
 * measurement (MT_KEYSTORE_MEAS_HEX + 1 bytes, may be NULL) receives the
 * evidence measurement (hex, "" when none), also on MT_EPERM. *resp is heap. */
mt_status mt_keystore_release(mt_keystore *ks, const char *req, size_t len, char **resp,
                              size_t *resp_len, char measurement[MT_KEYSTORE_MEAS_HEX + 1],
                              mt_err *err);

/* Release policy edits, persisted before returning. field: "measurement"
 * (64 hex evidence measurement; 96 hex at sev-snp and tdx), "soft_platform_key"
 * or "tpm2_ak" (64 hex); at sgx "mrsigner" (64 hex) and "isv_prod_id"
 * (decimal): signer-style release; at sev-snp, tdx, sgx "min_svn" (allow
 * NAME=N sets or replaces a minimum, revoke NAME removes it).
 * allow adds (no-op when present, *changed false), revoke removes
 * (MT_ENOTFOUND when absent; removing the last measurement, or the last
 * node key the level needs (soft_platform_key at soft, tpm2_ak at tpm2), is
 * refused with MT_ECONFLICT: nothing could start any more). */
mt_status mt_keystore_policy_allow(mt_keystore *ks, const char *field, const char *hex,
                                   bool *changed, mt_err *err);
mt_status mt_keystore_policy_revoke(mt_keystore *ks, const char *field, const char *hex,
                                    mt_err *err);
/* Auditor signatures over policy changes (mt_policy_sig.h format). When the
 * KeyStore has release signers, an allow/revoke that changes the policy takes
 * effect only when at least threshold of them signed the policy document as
 * it will be after the change: the policy JSON (level, measurements,
 * soft_platform_keys, tpm2_aks, seq + 1) dumped with sorted keys and no
 * spaces, with "mesatee_release_policy": 1 added, followed by "\n"
 * (`mesatee admin release draft` prints it; `mesatee policy sign` signs it).
 * MT_EPERM (nothing changed) otherwise; MT_EINVAL for a malformed sig.
 * The unsigned variants pass no signatures. */
mt_status mt_keystore_policy_allow_signed(mt_keystore *ks, const char *field, const char *hex,
                                          const char *sig, size_t sig_len, bool *changed,
                                          mt_err *err);
mt_status mt_keystore_policy_revoke_signed(mt_keystore *ks, const char *field, const char *hex,
                                           const char *sig, size_t sig_len, mt_err *err);
/* Records the auditor keys (PEM bundle of P-256 public keys, at most
 * MT_POLICY_SIG_MAX) and threshold (0 = all) in the sealed state when it has
 * none; from then on the host cannot remove or swap them: a different set or
 * threshold is MT_ECONFLICT (the recorded one stays in force). */
mt_status mt_keystore_set_signers(mt_keystore *ks, const char *pem, size_t len,
                                  unsigned threshold, mt_err *err);
/* A signed change of the recorded auditor set (issue 10): the new set pem
 * (PEM bundle of P-256 keys) and threshold (0 = all) take effect only when
 * at least the CURRENT threshold of the CURRENT auditors signed the policy
 * document with seq + 1 and "release_signers": {"pem": <new pem>,
 * "threshold": <new threshold>} added (sorted compact JSON and "\n",
 * mt_keystore_signers_draft). MT_EPERM (nothing changed) otherwise,
 * MT_ECONFLICT when no set is recorded or the set is the recorded one,
 * MT_EINVAL for a bad set or sig. After the change, start the server with
 * the new --release-signers file or without the flag. */
mt_status mt_keystore_change_signers(mt_keystore *ks, const char *pem, size_t len,
                                     unsigned threshold, const char *sig, size_t sig_len,
                                     mt_err *err);
/* The document of that change for the policy the server shows. *doc heap. */
mt_status mt_keystore_signers_draft(const char *policy, size_t len, const char *pem,
                                    size_t pem_len, unsigned threshold, char **doc, mt_err *err);
/* The policy as JSON (new reference), NULL on allocation failure; with
 * release signers it has "release_signers": {"keys", "threshold"}. */
json_t *mt_keystore_policy(mt_keystore *ks);

/* Rotation: adds root version current+1 and makes it current (persisted
 * atomically: a crash leaves either the old or the new state). */
mt_status mt_keystore_rotate(mt_keystore *ks, uint32_t *new_version, mt_err *err);
/* Destroys a version that is not current (persisted). MT_ECONFLICT for the
 * current one, MT_ENOTFOUND when absent. The caller checks first that no
 * stored wrapped key uses it. */
mt_status mt_keystore_retire(mt_keystore *ks, uint32_t version, mt_err *err);
/* Current version and the live versions (ascending) into list (cap). */
uint32_t mt_keystore_versions(mt_keystore *ks, uint32_t *list, size_t cap, size_t *n);

/* ---- node --------------------------------------------------------------- */

/* A fresh attested identity of this node (mt_tee_tls_identity) and the
 * release request carrying it (*req heap, JSON). */
mt_status mt_keystore_request(mt_tee *tee, mt_keystore_node **node, char **req, size_t *len,
                              mt_err *err);
void mt_keystore_node_free(mt_keystore_node *node);
/* Opens a release response with the node's private key. */
mt_status mt_keystore_accept(const mt_keystore_node *node, const char *resp, size_t len,
                             mt_keyring **out, mt_err *err);
void mt_keyring_free(mt_keyring *kr);
uint32_t mt_keyring_current(const mt_keyring *kr);
bool mt_keyring_has(const mt_keyring *kr, uint32_t version);
/* KEK for purpose (1..48 bytes of [a-z0-9-]) at version (0 = current);
 * *used (may be NULL) receives the version. MT_ENOTFOUND for a version the
 * keyring does not hold (retired or unknown). */
mt_status mt_keyring_kek(const mt_keyring *kr, const char *purpose, uint32_t version,
                         uint8_t out[32], uint32_t *used, mt_err *err);

/* ---- parsers (exposed for the fuzz targets) ------------------------------ */

/* Parses a release request: the DER certificate (heap). */
mt_status mt_keystore_parse_request(const char *req, size_t len, uint8_t **cert,
                                    size_t *cert_len, mt_err *err);
/* Validates a release-policy change document (what auditors sign, see
 * mt_keystore_policy_allow_signed): {"mesatee_release_policy": 1, "level",
 * "measurements", "soft_platform_keys", "tpm2_aks", "seq"}. */
mt_status mt_keystore_parse_release_doc(const char *text, size_t len, mt_err *err);
/* Parses the plaintext of a state file (JSON); validates every field. */
mt_status mt_keystore_parse_state(const char *text, size_t len, mt_err *err);

#endif
