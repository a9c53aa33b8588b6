/* mt_escrow: escrow of the KeyStore's root keys for the recovery of a lost
 * TPM (docs/keystore.md "Escrow and recovery", docs/formats.md "KeyStore
 * escrow file").
 *
 * At level tpm2 the KeyStore state (keystore.sealed) is sealed under a key
 * that only this machine's TPM unseals (keystore.tpm): a TPM that dies or is
 * cleared takes every root key, and so every stored file key, with it. An
 * escrow exports the live root-key versions encrypted to recovery
 * recipients, so that a new machine (new TPM) can be given them back.
 *
 * Scheme (all P-256 / SHA-256 / AES-256-GCM, OpenSSL):
 *  - E = 32 random bytes (the escrow key). The records (u32be version ||
 *    32-byte root key, versions ascending) are sealed under E with AES-256-GCM,
 *    AAD = H, the SHA-256 of the header (label, level, created_at, current,
 *    threshold, the versions, and every share's index and recipient), so no
 *    header field can be changed without the recovery failing.
 *  - E is split with Shamir's scheme over GF(2^8) (byte-wise, x = 1..n) into
 *    n shares with threshold t: any t shares give E, fewer give nothing
 *    about it. t = 1 makes every share E itself (a copy per recipient).
 *  - Share i is encrypted to recipient i's P-256 public key (from an X.509
 *    certificate or a PUBLIC KEY PEM): a fresh ephemeral P-256 key,
 *    K = HKDF-SHA256(ikm = ECDH, salt = H, info = LABEL_SHARE || u8 index ||
 *    recipient fingerprint || ephemeral SPKI DER), AES-256-GCM under K with
 *    AAD = H || u8 index. The recipient fingerprint is SHA-256 of the
 *    recipient's SubjectPublicKeyInfo DER.
 *
 * Recovery takes t recipients' private keys (PEM, unencrypted P-256),
 * decrypts their shares, combines them and opens the records. A key that is
 * no recipient, too few keys, a tampered file or shares of another escrow
 * fail with a clear message; nothing is returned then.
 *
 * Errors: MT_EINVAL (malformed input, the field or recipient named),
 * MT_ECRYPTO (a share or the records do not authenticate), MT_EPERM (too
 * few recipients' keys), MT_ENOMEM. Nothing here keeps state: thread-safe.
 * Ownership: *out buffers are heap; records are secret: mt_wipe then free. */
#ifndef MT_ESCROW_H
#define MT_ESCROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_ESCROW_MAX_BYTES (256u * 1024u) /* the escrow file */
#define MT_ESCROW_MAX_RECIPIENTS 16
#define MT_ESCROW_RECORD 36 /* u32be version || 32-byte key */
#define MT_ESCROW_PEM_MAX (64u * 1024u) /* one recipient certificate or key */

typedef struct mt_escrow mt_escrow;

/* Builds an escrow document (JSON text, *out heap, NUL-terminated) of the
 * records (1..MT_KEYSTORE_MAX_VERSIONS of MT_ESCROW_RECORD bytes, versions
 * ascending; current one of them) to the n (1..MT_ESCROW_MAX_RECIPIENTS)
 * recipients pems[i] (pem_lens[i] bytes each: a certificate or public key
 * PEM of a P-256 key; recipients must differ) with threshold 1..n.
 * Errors name the recipient by its position (1-based). */
mt_status mt_escrow_make(const uint8_t *records, size_t rec_len, uint32_t current,
                         const char *level, int64_t created_at, const char *const *pems,
                         const size_t *pem_lens, size_t n, unsigned threshold, char **out,
                         size_t *out_len, mt_err *err);

/* The one reader of escrow files: parses and validates every field (only
 * known keys, sizes, ranges, unique recipients and indices, versions
 * ascending, current among them). */
mt_status mt_escrow_parse(const char *text, size_t len, mt_escrow **out, mt_err *err);
void mt_escrow_free(mt_escrow *e);
unsigned mt_escrow_threshold(const mt_escrow *e);
unsigned mt_escrow_recipients(const mt_escrow *e);
uint32_t mt_escrow_current(const mt_escrow *e);
const char *mt_escrow_level(const mt_escrow *e);

/* Opens the escrow with recipients' private keys (keys[i]: PEM text of
 * key_lens[i] bytes). Every key must be a recipient (else MT_EINVAL naming
 * its position); at least threshold distinct ones are needed (MT_EPERM).
 * *records (heap, wipe then free) receives the root-key records, *current
 * the current version. */
mt_status mt_escrow_open(const mt_escrow *e, const char *const *keys, const size_t *key_lens,
                         size_t n, uint8_t **records, size_t *rec_len, uint32_t *current,
                         mt_err *err);

/* ---- the KeyStore's side (ks_escrow.c) ------------------------------------ */

#include "mt_keystore.h"

/* An escrow of ks's live root versions (and current) to the recipients, as
 * mt_escrow_make. The unsigned variant passes no signatures. */
mt_status mt_keystore_escrow(mt_keystore *ks, const char *const *pems, const size_t *pem_lens,
                             size_t n, unsigned threshold, char **out, size_t *out_len,
                             mt_err *err);
/* An escrow takes the root keys out of the TEE, so when the KeyStore has
 * release signers (auditors) it needs, like a release-policy change, at
 * least their threshold of signatures (sig: mt_policy_sig.h text) over the
 * document mt_keystore_escrow_draft makes: the policy document with seq + 1
 * and "escrow": {"purpose": "escrow", "recipients": [the recipients'
 * fingerprints, 64 hex, in this order], "threshold": T}. The escrow spends
 * that seq (persisted before the keys are exported), so a document is good
 * for one escrow. MT_EPERM (nothing written, nothing exported) for missing,
 * too few, replayed or foreign signatures; MT_EINVAL for a malformed sig.
 * Without auditors the admin is the authority: sig is ignored.
 * *signed_by (may be NULL): auditor signatures were checked. */
mt_status mt_keystore_escrow_signed(mt_keystore *ks, const char *const *pems,
                                    const size_t *pem_lens, size_t n, unsigned threshold,
                                    const char *sig, size_t sig_len, char **out, size_t *out_len,
                                    bool *signed_by, mt_err *err);
/* The document auditors sign for that escrow, for the policy the server
 * shows (`GET /v1/admin/release-policy` answer). *doc heap. */
mt_status mt_keystore_escrow_draft(const char *policy, size_t len, const char *const *pems,
                                   const size_t *pem_lens, size_t n, unsigned threshold,
                                   char **doc, mt_err *err);

/* Recovery of data_dir's KeyStore from the escrow document (text, len) with
 * recipients' private keys (PEM texts), then opened as mt_keystore_open_coll
 * would (*out). Everything is checked before anything is written: the
 * escrow parses and opens with the keys, its level is the daemon's, and the
 * present state (if any) does not open (else MT_ECONFLICT: nothing to
 * recover). Then keystore.sealed and keystore.tpm, if present, are renamed
 * to <name>.lost-<unix time> and a new state is bootstrapped from first_req
 * (the release policy allows this node: its measurement and its new TPM AK
 * or platform key) holding the escrowed versions, sealed under a new seal
 * key (level tpm2: sealed in this machine's TPM). If that fails the renamed
 * files are put back. */
mt_status mt_keystore_recover(mt_tee *tee, const char *data_dir, const char *coll_dir,
                              const char *first_req, size_t first_req_len, const char *escrow,
                              size_t escrow_len, const char *const *keys, const size_t *key_lens,
                              size_t n_keys, mt_keystore **out, mt_err *err);

#endif
