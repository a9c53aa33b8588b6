/* mt_tee_soft: the producer side of the "soft" level (internal to mt_tee).
 *
 *  - Platform key: an ECDSA P-256 key in <data-dir>/platform-key.pem (PKCS#8
 *    PEM, mode 0600), created at the first start at level soft. Clients pin
 *    SHA-256 of its DER SubjectPublicKeyInfo (trust on first use, or given
 *    by the operator). It signs the soft evidence.
 *  - Measurement (mt_tee_measure_soft in mt_tee.h): SHA-256 over the daemon
 *    executable, the shared objects it has mapped executable, extra files
 *    (the worker executable) and the configuration bytes.
 *  - Evidence: mt_soft.h's CBOR map, put into the TLS certificate as the
 *    RA-TLS extension (mt_ratls.h, tag MT_RATLS_TAG_SOFT) with report_data =
 *    SHA-256(claims) || 32 zero bytes and claims = {"pubkey-hash": [1,
 *    SHA-256(TLS key SPKI DER)]}.
 * Ownership: open/free pair (free(NULL) no-op; the key is freed with it).
 * Thread-safety: set_config must not race with add_evidence. */
#ifndef MT_TEE_SOFT_H
#define MT_TEE_SOFT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_tee_soft mt_tee_soft;

/* The file part of the measurement (mt_tee_measure_soft), taken once: the
 * executable and the libraries mapped at that moment. Levels that load more
 * code later (tpm2: the TCTI module) measure from a snapshot taken before,
 * so the value equals what `mesatee measure` computes. */
typedef struct mt_tee_snapshot mt_tee_snapshot;
mt_status mt_tee_snapshot_take(mt_tee_snapshot **out, mt_err *err);
void mt_tee_snapshot_free(mt_tee_snapshot *s);
/* mt_tee_measure_soft over the snapshot's files, then extra_files, then config. */
mt_status mt_tee_snapshot_measure(const mt_tee_snapshot *snap, const uint8_t *config, size_t len,
                                  const char *const *extra_files, uint8_t out[32], mt_err *err);

/* Loads <data_dir>/platform-key.pem, creating it (0600) if absent, and
 * measures the process with no configuration and no extra file. */
mt_status mt_tee_soft_open(const char *data_dir, mt_tee_soft **out, mt_err *err);
void mt_tee_soft_free(mt_tee_soft *s);
/* Re-measures with the configuration bytes and extra files. */
mt_status mt_tee_soft_set_config(mt_tee_soft *s, const uint8_t *config, size_t len,
                                 const char *const *extra_files, mt_err *err);
/* The current evidence measurement (32 bytes). */
const uint8_t *mt_tee_soft_measurement(const mt_tee_soft *s);
/* The platform key (borrowed; lives as long as s). */
EVP_PKEY *mt_tee_soft_platform_key(const mt_tee_soft *s);
/* SHA-256 of the platform key's SPKI DER as 64 hex characters. */
void mt_tee_soft_platform_key_id(const mt_tee_soft *s, char out[65]);
/* Adds the RA-TLS extension with fresh soft evidence bound to tls_key to
 * cert (before the certificate is signed). */
mt_status mt_tee_soft_add_evidence(mt_tee_soft *s, X509 *cert, EVP_PKEY *tls_key, mt_err *err);

#endif
