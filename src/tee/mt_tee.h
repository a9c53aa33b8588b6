/* mt_tee: the TEE provider interface. In this release two levels exist:
 *   "none" (level 1, no protection, a warning is logged at every start) and
 *   "soft" (level 2, SoftTEE: sealing bound to the SHA-256 measurement of the
 *   daemon executable; process hardening: not dumpable, no core files).
 * Attestation evidence (tpm2, sev-snp, tdx, sgx) is added by the attestation work.
 *
 * Roles provided now:
 *  - TLS identity: a fresh P-256 key and a self-signed X.509 certificate
 *    (CN=mesatee, 90 days), made at every start.
 *  - Sealing: 32-byte keys derived by HKDF-SHA256 from a 32-byte platform secret
 *    kept in <data-dir>/sealing.key (created 0600 on first start), the level
 *    and (soft) the measurement, and a caller label.
 * Ownership: mt_tee_open allocates; mt_tee_free releases (NULL ok).
 * Thread-safety: after open, all functions may be called from any thread. */
#ifndef MT_TEE_H
#define MT_TEE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_tee mt_tee;

/* level: "none" or "soft". Creates data_dir/sealing.key if absent. */
mt_status mt_tee_open(const char *level, const char *data_dir, mt_tee **out, mt_err *err);
void mt_tee_free(mt_tee *tee);

/* "none" or "soft". */
const char *mt_tee_level(const mt_tee *tee);
/* Hex SHA-256 measurement ("" for none). */
const char *mt_tee_measurement(const mt_tee *tee);

/* Makes a fresh key pair and self-signed certificate. Caller frees both
 * (EVP_PKEY_free, X509_free). Level soft: the certificate carries soft
 * evidence in the RA-TLS extension (mt_ratls.h), bound to the new key. */
mt_status mt_tee_tls_identity(mt_tee *tee, EVP_PKEY **key, X509 **cert, mt_err *err);

/* Level soft: records the configuration bytes and extra files (the worker
 * executable) and re-measures (mt_tee_measure_soft); the next TLS identity
 * carries evidence of that measurement. Level none: no-op. The sealing
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

#endif
