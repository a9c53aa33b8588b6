/* mt_tee: the TEE provider interface. Levels:
 *   "none"    (1) no protection, a warning is logged at every start;
 *   "soft"    (2) SoftTEE: evidence signed by a platform key (mt_tee_soft.h);
 *   "tpm2"    (3) a TPM 2.0 quote (tee_tpm2.h) over PCRs 0-7 and the
 *                 application PCR, into which the evidence measurement is
 *                 extended (after a reset) by mt_tee_set_config;
 *   "sev-snp", "tdx", "sgx" (4, 4, 5): evidence from configfs-tsm,
 *                 /dev/sev-guest or Gramine's /dev/attestation (tee_hw.h),
 *                 NOT exercised on hardware here; on a machine without the
 *                 interface mt_tee_open fails with MT_EUNAVAIL saying so.
 * Every level but none hardens the process (not dumpable, no core files).
 *
 * Roles provided:
 *  - TLS identity: a fresh P-256 key and a self-signed X.509 certificate
 *    (CN=mesatee, 90 days) per call; above level none it carries RA-TLS
 *    evidence (mt_ratls.h) bound to the new key. The gateway calls it again
 *    to renew the certificate with fresh evidence. Every certificate names
 *    the subject alternative names set by mt_tee_set_tls_san. At level none
 *    the server keeps a stable key in the data directory instead
 *    (mt_tls_id.h), certified by mt_tee_tls_cert_for_key.
 *  - Sealing: 32-byte keys derived by HKDF-SHA256 from a 32-byte platform secret
 *    kept in <data-dir>/sealing.key (created 0600 on first start), the level
 *    and (above none) the measurement of the daemon binary, and a caller label.
 * Ownership: mt_tee_open allocates; mt_tee_free releases (NULL ok).
 * Thread-safety: after open (and set_config), all functions may be called
 * from any thread; evidence production is serialised inside. */
#ifndef MT_TEE_H
#define MT_TEE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_tee mt_tee;

/* level: one of the levels above. Creates data_dir/sealing.key if absent
 * (hardware levels check their interface first and create nothing when it
 * is missing). MT_EINVAL for an unknown level, MT_EUNAVAIL when the TPM or
 * TEE interface cannot be reached. */
mt_status mt_tee_open(const char *level, const char *data_dir, mt_tee **out, mt_err *err);
void mt_tee_free(mt_tee *tee);

/* The level name given to mt_tee_open. */
const char *mt_tee_level(const mt_tee *tee);
/* Hex SHA-256 measurement ("" for none). */
const char *mt_tee_measurement(const mt_tee *tee);

/* Makes a fresh key pair and self-signed certificate. Caller frees both
 * (EVP_PKEY_free, X509_free). Above level none the certificate carries fresh
 * evidence in the RA-TLS extension (mt_ratls.h) whose report data is
 * SHA-256({"pubkey-hash": [1, SHA-256(SPKI)]}) || 32 zero bytes: soft
 * evidence, a TPM quote (tag MT_RATLS_TAG_TPM2), an SNP report
 * (MT_RATLS_TAG_SNP) or a TDX/SGX quote (60000). */
mt_status mt_tee_tls_identity(mt_tee *tee, EVP_PKEY **key, X509 **cert, mt_err *err);

/* Above level none only (MT_EINVAL otherwise): a fresh self-signed
 * certificate with fresh evidence, as mt_tee_tls_identity, for an existing
 * key made by it (key borrowed). For a credential certified for that key
 * that is renewed with new evidence while the key stays (a joined node's
 * database certificate, mt_dbrenew.h). Caller frees *cert. */
mt_status mt_tee_tls_identity_for_key(mt_tee *tee, EVP_PKEY *key, X509 **cert, mt_err *err);

/* The subjectAltName of every certificate made from now on, in OpenSSL's
 * form ("DNS:name,IP:addr", built by mt_tls_san_list); NULL or "" = the
 * default "DNS:localhost,IP:127.0.0.1". The caller validates the names. */
mt_status mt_tee_set_tls_san(mt_tee *tee, const char *san, mt_err *err);

/* Level none only (MT_EINVAL otherwise): a self-signed certificate (CN=mesatee,
 * the SANs above, no evidence) for an existing key, valid for days days from
 * now (minus a minute). Caller frees *cert. */
mt_status mt_tee_tls_cert_for_key(mt_tee *tee, EVP_PKEY *key, unsigned days, X509 **cert,
                                  mt_err *err);

/* Level soft: records the configuration bytes and extra files (the worker
 * executable) and re-measures (mt_tee_measure_soft); the next TLS identity
 * carries evidence of that measurement. Level tpm2: computes the same
 * measurement over the files mapped before the TPM was opened, resets the
 * application PCR and extends it, so PCR = SHA-256(32 zero bytes || M) (what
 * `mesatee measure --level tpm2` prints). Other levels: no-op. The sealing
 * measurement (mt_tee_measurement) is not changed by this. */
mt_status mt_tee_set_config(mt_tee *tee, const uint8_t *config, size_t len,
                            const char *const *extra_files, mt_err *err);
/* Level soft: the evidence measurement and the platform key id (SHA-256 of
 * its SPKI DER), 64 hex characters each; "" for none. */
void mt_tee_soft_ids(const mt_tee *tee, char measurement[65], char platform_key[65]);
/* The soft measurement of this process: SHA-256 over
 *   "mesatee-soft-measurement-v1" NUL || u32be(n) || n file digests || u64be(len) || config
 * where the files are /proc/self/exe, then every other file mapped executable
 * in /proc/self/maps (ordered by digest), then extra_files (NULL-terminated,
 * may be NULL) in order, each digest SHA-256 of the file's bytes. A daemon
 * and `mesatee measure` running the same installed files agree. */
mt_status mt_tee_measure_soft(const uint8_t *config, size_t len, const char *const *extra_files,
                              uint8_t out[32], mt_err *err);

/* Derives a 32-byte sealing key for label (e.g. "file-keys/v1"). */
mt_status mt_tee_sealing_key(mt_tee *tee, const char *label, uint8_t out[32], mt_err *err);

/* Issue 10 (KeyStore): the evidence measurement (hex, 64) of level soft
 * and tpm2 after mt_tee_set_config (tpm2: the M extended into the PCR);
 * "" at other levels. */
void mt_tee_evidence_measurement(const mt_tee *tee, char out[65]);
/* The sealing key for label that a daemon binary of sealing measurement
 * meas_hex (SHA-256 of its executable file, 64 hex) held at this level: how
 * keys wrapped by an older build (before the KeyStore) are carried over.
 * MT_EINVAL for a malformed measurement. */
mt_status mt_tee_legacy_sealing_key(mt_tee *tee, const char *meas_hex, const char *label,
                                    uint8_t out[32], mt_err *err);

/* Derives a 32-byte key for label like mt_tee_sealing_key but bound to the
 * platform secret only, not to the level or the daemon binary's
 * measurement: the analogue of signer-bound sealing, for keys an upgraded
 * (or re-levelled) daemon must still hold (the store's integrity MACs, the
 * checkpoint signing key). Never equal to a sealing key. */
mt_status mt_tee_platform_key(mt_tee *tee, const char *label, uint8_t out[32], mt_err *err);

/* Signs msg with the provider's signing key (audit checkpoints): at level
 * soft the platform key (ECDSA P-256 with SHA-256, DER signature: the key
 * clients pin); at every other level an Ed25519 key derived from the
 * platform secret with the label "signing-key/v1" (mt_tee_platform_key), so it never
 * leaves the provider and stays the same across upgrades of the daemon. *sig and *spki
 * (the public key as DER SubjectPublicKeyInfo; spki may be NULL) are
 * malloc'ed; the caller frees them. */
mt_status mt_tee_sign(mt_tee *tee, const uint8_t *msg, size_t len, uint8_t **sig,
                      size_t *sig_len, uint8_t **spki, size_t *spki_len, mt_err *err);

#endif
