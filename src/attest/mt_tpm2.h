/* mt_tpm2: TPM 2.0 quote verifier (the only reader of TPM structure bytes
 * in mesatee) and the software side of credential activation.
 *
 * Three layers:
 *  1. Readers (bounds-checked, big-endian as the TPM marshals, no trailing
 *     bytes): TPMS_ATTEST of a quote, TPMT_SIGNATURE (ECDSA, RSASSA, RSAPSS),
 *     TPMT_PUBLIC (RSA, ECC), the tpm2-tools PCR dump, and the mesatee TPM
 *     evidence container (below).
 *  2. mt_tpm2_quote_verify: a quote + signature + AK public key + PCR values +
 *     expected extraData -> claims. Checks: magic TPM_GENERATED_VALUE, type
 *     ATTEST_QUOTE, the signature with the AK, extraData == expected nonce,
 *     pcrDigest == H(selected PCR values in selection order). Used directly
 *     for foreign evidence (tpm2-tools, trustee, Azure vTPM).
 *  3. mt_attest_verify(MT_ATTEST_TPM2, ...) on the mesatee container: the AK
 *     must equal the pinned AK in collateral (MT_COLL_TPM2_AK), extraData must
 *     be SHA-256(report data). The EK certificate a container may carry is
 *     NOT checked and proves nothing (EK certificates are public; a quote
 *     does not bind the EK to the AK): collateral MT_COLL_TPM2_EK_CA is
 *     refused (MT_EINVAL) rather than giving a false sense of an EK check,
 *     and MT_ATTEST_CHECKED_EK_CHAIN is never set here.
 *
 * AK trust comes only from a pin or from enrollment (mt_tpm2_enroll_*): the
 * verifier checks the EK certificate chain, checks that the AK public area is
 * a restricted, fixedTPM signing key, and runs MakeCredential in software
 * (OpenSSL) against the EK public key and the AK name. Only a TPM holding
 * both the EK private key and a loaded object with exactly that AK name can
 * return the secret (ActivateCredential), so a correct answer proves the AK
 * lives in the TPM the EK certificate vouches for. The enroller then pins the
 * AK, or signs an enrolment record (mt_tpm2_enroll_record) that relying
 * parties trust through their policy (mt_policy.h: tpm2_enrollers,
 * tpm2_enrolments); only such a record sets MT_ATTEST_CHECKED_EK_CHAIN.
 *
 * Ownership: parsed structs borrow from the input buffer. mt_tpm2_enroll is
 * an opaque handle (new via begin, free; free(NULL) is a no-op) whose secret
 * is wiped on free. Thread-safety: reentrant. */
#ifndef MT_TPM2_H
#define MT_TPM2_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_err.h"

/* TPM_ALG_ID values used here. */
#define MT_TPM2_ALG_RSA 0x0001u
#define MT_TPM2_ALG_SHA1 0x0004u
#define MT_TPM2_ALG_AES 0x0006u
#define MT_TPM2_ALG_SHA256 0x000Bu
#define MT_TPM2_ALG_SHA384 0x000Cu
#define MT_TPM2_ALG_SHA512 0x000Du
#define MT_TPM2_ALG_NULL 0x0010u
#define MT_TPM2_ALG_RSASSA 0x0014u
#define MT_TPM2_ALG_RSAPSS 0x0016u
#define MT_TPM2_ALG_ECDSA 0x0018u
#define MT_TPM2_ALG_ECC 0x0023u
#define MT_TPM2_ALG_CFB 0x0043u

#define MT_TPM2_GENERATED_VALUE 0xff544347u
#define MT_TPM2_ST_ATTEST_QUOTE 0x8018u

/* TPMA_OBJECT bits. */
#define MT_TPMA_FIXED_TPM 0x00000002u
#define MT_TPMA_FIXED_PARENT 0x00000010u
#define MT_TPMA_SENSITIVE_DATA_ORIGIN 0x00000020u
#define MT_TPMA_USER_WITH_AUTH 0x00000040u
#define MT_TPMA_ADMIN_WITH_POLICY 0x00000080u
#define MT_TPMA_RESTRICTED 0x00010000u
#define MT_TPMA_DECRYPT 0x00020000u
#define MT_TPMA_SIGN 0x00040000u

#define MT_TPM2_MAX_DIGEST 64
#define MT_TPM2_NUM_PCRS 24
#define MT_TPM2_MAX_BANKS 4

/* ---- readers ------------------------------------------------------------ */

typedef struct mt_tpm2_pcr_select {
    uint16_t hash; /* bank */
    uint32_t mask; /* bit i = PCR i (0..23) */
} mt_tpm2_pcr_select;

/* A parsed quote (TPMS_ATTEST with attested = TPMS_QUOTE_INFO). */
typedef struct mt_tpm2_quote {
    uint32_t magic;
    uint16_t type;
    const uint8_t *signer_name; /* qualifiedSigner, borrowed */
    size_t signer_name_len;
    uint8_t extra[MT_TPM2_MAX_DIGEST]; /* extraData */
    size_t extra_len;
    uint64_t clock;
    uint32_t reset_count, restart_count;
    uint8_t safe;
    uint64_t firmware_version;
    size_t n_sel;
    mt_tpm2_pcr_select sel[MT_TPM2_MAX_BANKS];
    uint8_t pcr_digest[MT_TPM2_MAX_DIGEST];
    size_t pcr_digest_len;
} mt_tpm2_quote;

/* Parses exactly len bytes of a TPMS_ATTEST (without the TPM2B size) whose
 * type is ATTEST_QUOTE. MT_EINVAL with the reason otherwise. */
mt_status mt_tpm2_quote_parse(const uint8_t *buf, size_t len, mt_tpm2_quote *out, mt_err *err);

typedef struct mt_tpm2_sig {
    uint16_t alg;     /* ECDSA, RSASSA or RSAPSS */
    uint16_t hash;    /* SHA-256, SHA-384 or SHA-512 */
    const uint8_t *a; /* ECDSA r, or the RSA signature; borrowed */
    size_t a_len;
    const uint8_t *b; /* ECDSA s; NULL for RSA */
    size_t b_len;
} mt_tpm2_sig;

/* Parses exactly len bytes of a TPMT_SIGNATURE. */
mt_status mt_tpm2_sig_parse(const uint8_t *buf, size_t len, mt_tpm2_sig *out, mt_err *err);

typedef struct mt_tpm2_public {
    uint16_t type;     /* RSA or ECC */
    uint16_t name_alg; /* SHA-256, SHA-384 or SHA-512 */
    uint32_t attrs;    /* TPMA_OBJECT */
    const uint8_t *auth_policy;
    size_t auth_policy_len;
    uint16_t sym_alg, sym_bits, sym_mode; /* symmetric (NULL for signing keys) */
    uint16_t scheme, scheme_hash;         /* NULL, RSASSA, RSAPSS, ECDSA */
    uint16_t rsa_bits;                    /* RSA */
    uint32_t rsa_exponent;                /* RSA; 0 means 65537 */
    uint16_t curve;                       /* ECC: TPM_ECC_NIST_P256 (3), P384 (4), P521 (5) */
    const uint8_t *x, *y;                 /* ECC unique point; RSA: x = modulus */
    size_t x_len, y_len;
} mt_tpm2_public;

/* Parses exactly len bytes of a TPMT_PUBLIC (no TPM2B size). Only RSA and
 * ECC keys are accepted. */
mt_status mt_tpm2_public_parse(const uint8_t *buf, size_t len, mt_tpm2_public *out, mt_err *err);
/* The OpenSSL public key of a parsed TPMT_PUBLIC (caller frees). */
mt_status mt_tpm2_public_key(const mt_tpm2_public *pub, EVP_PKEY **out, mt_err *err);
/* The TPM name of the marshalled TPMT_PUBLIC buf: nameAlg (2 bytes,
 * big-endian) || H_nameAlg(buf). out must hold 2 + 64 bytes. */
mt_status mt_tpm2_public_name(const uint8_t *buf, size_t len, uint8_t *out, size_t *out_len,
                              mt_err *err);

/* PCR values, per bank. */
typedef struct mt_tpm2_pcr_bank {
    uint16_t hash;
    uint32_t present; /* bit i: value[i] is set */
    uint8_t value[MT_TPM2_NUM_PCRS][MT_TPM2_MAX_DIGEST];
} mt_tpm2_pcr_bank;

typedef struct mt_tpm2_pcrs {
    size_t n_banks;
    mt_tpm2_pcr_bank banks[MT_TPM2_MAX_BANKS];
} mt_tpm2_pcrs;

/* Sets PCR index of bank hash (adding the bank if new). MT_EINVAL for an
 * unknown bank, an index over 23, a value of the wrong size or too many
 * banks. */
mt_status mt_tpm2_pcrs_set(mt_tpm2_pcrs *p, uint16_t hash, unsigned index, const uint8_t *value,
                           size_t len, mt_err *err);
/* The value of PCR index in bank hash, or NULL. */
const uint8_t *mt_tpm2_pcrs_get(const mt_tpm2_pcrs *p, uint16_t hash, unsigned index);
/* Parses the PCR file written by tpm2_quote -o / read by tpm2_checkquote -f
 * (host-endian TPML_PCR_SELECTION, then u32 count of TPML_DIGEST structs)
 * into out. Little-endian hosts only, as tpm2-tools writes it raw. */
mt_status mt_tpm2_pcrs_parse_tools(const uint8_t *buf, size_t len, mt_tpm2_pcrs *out, mt_err *err);

/* Digest size of a TPM hash algorithm (0 if unknown) and its OpenSSL md. */
size_t mt_tpm2_hash_size(uint16_t alg);
const EVP_MD *mt_tpm2_hash_md(uint16_t alg);

/* ---- quote verification ------------------------------------------------- */

typedef struct mt_tpm2_quote_in {
    const uint8_t *attest; /* TPMS_ATTEST */
    size_t attest_len;
    const uint8_t *sig; /* TPMT_SIGNATURE */
    size_t sig_len;
    /* Non-zero: sig is a bare RSASSA-PKCS1-v1_5 signature with this hash
     * (as in Azure vTPM quote JSON), not a TPMT_SIGNATURE. */
    uint16_t raw_rsassa_hash;
    EVP_PKEY *ak;             /* AK public key (RSA or EC) */
    const mt_tpm2_pcrs *pcrs; /* values of at least every selected PCR */
    const uint8_t *nonce;     /* expected extraData, exact bytes */
    size_t nonce_len;
} mt_tpm2_quote_in;

/* Verifies a quote (see the checks at the top) and fills *claims (zeroed
 * first): kind MT_ATTEST_TPM2, endorsement "AK", product "TPM 2.0 fw <hex>",
 * one measurement per selected PCR ("pcr16" for SHA-256, "sha1.pcr16",
 * "sha384.pcr16", "sha512.pcr16" for the other banks), svns
 * "tpm.firmware_version", "tpm.reset_count", "tpm.restart_count",
 * "tpm.clock", "tpm.safe", nonce = extraData and report_data = extraData
 * when it is at most 64 bytes. MT_EINVAL for malformed input, MT_EAUTH for a
 * failed check (the message names it). On failure *claims is zeroed. */
__attribute__((warn_unused_result)) mt_status
mt_tpm2_quote_verify(const mt_tpm2_quote_in *in, mt_attest_claims *claims, mt_err *err);

/* ---- mesatee TPM evidence container -------------------------------------

 * All integers big-endian:
 *   "MTT2" | u16 version (1)
 *   u16 len | report data (0..64 bytes; extraData = SHA-256 of it)
 *   u16 len | TPMS_ATTEST
 *   u16 len | TPMT_SIGNATURE
 *   u16 len | TPMT_PUBLIC of the AK
 *   u16 len | EK certificate, DER (len 0: absent)
 *   u8 n    | n x (u16 bank, u8 pcr index, digest of the bank's size)
 * and nothing after. */
typedef struct mt_tpm2_evidence {
    const uint8_t *report_data;
    size_t report_data_len;
    const uint8_t *attest;
    size_t attest_len;
    const uint8_t *sig;
    size_t sig_len;
    const uint8_t *ak_public;
    size_t ak_public_len;
    const uint8_t *ek_cert; /* NULL when absent */
    size_t ek_cert_len;
    mt_tpm2_pcrs pcrs;
} mt_tpm2_evidence;

/* Parses a container (borrowing from buf); MT_EINVAL with the reason. */
mt_status mt_tpm2_evidence_parse(const uint8_t *buf, size_t len, mt_tpm2_evidence *out,
                                 mt_err *err);
/* Encodes ev (pcrs in bank order, ascending index) into a new buffer
 * (*out, free()). MT_EINVAL if a field is over its limit. */
mt_status mt_tpm2_evidence_encode(const mt_tpm2_evidence *ev, uint8_t **out, size_t *out_len,
                                  mt_err *err);

/* The mt_attest_verify back end for MT_ATTEST_TPM2. */
mt_status mt_tpm2_verify(const uint8_t *ev, size_t len, const mt_attest_collateral *coll,
                         int64_t at, mt_attest_claims *claims, mt_err *err);

/* ---- enrollment: EK certificate + credential activation ----------------- */

typedef struct mt_tpm2_enroll mt_tpm2_enroll;

/* Starts enrolling the AK ak_public (marshalled TPMT_PUBLIC):
 *  - ek_cert (DER or PEM) must chain at `at` to a self-signed certificate of
 *    ca_pem (PEM bundle: roots and intermediates);
 *  - the EK key must be RSA 2048 (TCG EK template L-1: AES-128-CFB,
 *    SHA-256 name; ECC EKs are not supported yet);
 *  - the AK must be fixedTPM, fixedParent, sensitiveDataOrigin, restricted,
 *    sign and not decrypt, with a SHA-256/384/512 name.
 * Then runs MakeCredential with a fresh 32-byte secret. MT_EAUTH when the
 * chain or the AK attributes fail, MT_EINVAL for malformed input. */
__attribute__((warn_unused_result)) mt_status
mt_tpm2_enroll_begin(const uint8_t *ek_cert, size_t ek_cert_len, const uint8_t *ca_pem,
                     size_t ca_len, int64_t at, const uint8_t *ak_public, size_t ak_public_len,
                     mt_tpm2_enroll **out, mt_err *err);
/* The challenge for the TPM: credentialBlob (TPM2B_ID_OBJECT contents,
 * without the size) and secret (TPM2B_ENCRYPTED_SECRET contents). Borrowed. */
void mt_tpm2_enroll_challenge(const mt_tpm2_enroll *e, const uint8_t **cred_blob,
                              size_t *cred_blob_len, const uint8_t **secret, size_t *secret_len);
/* Checks the TPM's answer (constant time). MT_OK means the AK is proven to
 * live in the TPM of the EK certificate; MT_EAUTH "credential activation
 * failed" otherwise. Only one answer is accepted per enrollment. */
__attribute__((warn_unused_result)) mt_status
mt_tpm2_enroll_finish(mt_tpm2_enroll *e, const uint8_t *answer, size_t answer_len, mt_err *err);
void mt_tpm2_enroll_free(mt_tpm2_enroll *e);

/* ---- enrolment records ---------------------------------------------------

 * A record is the enroller's signed statement "this AK was proven, by
 * credential activation, to live in the TPM of this EK certificate, whose
 * chain I checked at this time". JSON text (at most MT_TPM2_RECORD_MAX):
 *   {"mesatee_tpm2_enrolment": 1, "tpm2_ak": hex SHA-256 of the AK SPKI,
 *    "ak_public": hex TPMT_PUBLIC, "ek_cert": hex DER, "enrolled_at": RFC 3339,
 *    "enroller": hex SPKI DER (ECDSA P-256), "signature": hex DER ECDSA}
 * The signature (SHA-256) covers "mesatee-tpm2-enrolment-v1" NUL, then
 * u32 len | ak_public, u32 len | ek_cert, u64 enrolled_at, u32 len | enroller
 * (big-endian). */
#define MT_TPM2_RECORD_MAX (32u * 1024u)
#define MT_TPM2_AK_PUBLIC_MAX 1024u
#define MT_TPM2_EK_CERT_MAX 8192u

typedef struct mt_tpm2_record {
    uint8_t ak_sha256[32];       /* SHA-256 of the AK's SPKI DER (claims "tpm2_ak") */
    uint8_t ek_cert_sha256[32];  /* SHA-256 of the EK certificate DER */
    uint8_t enroller_sha256[32]; /* SHA-256 of the enroller's SPKI DER */
    int64_t enrolled_at;
    bool ek_chain_checked; /* the EK chained to the ek_ca given to verify, at enrolled_at */
} mt_tpm2_record;

/* The record of a finished enrollment (mt_tpm2_enroll_finish returned
 * MT_OK), signed with enroller (ECDSA P-256 private key); *out heap JSON
 * text (free()). MT_EAUTH when the activation did not succeed. */
__attribute__((warn_unused_result)) mt_status
mt_tpm2_enroll_record(const mt_tpm2_enroll *e, EVP_PKEY *enroller, char **out, mt_err *err);
/* Enrolment in two places (the enroller never runs on the TPM host):
 * mt_tpm2_enroll_save writes a begun, unanswered enrollment as JSON text
 * (*out heap) holding the SECRET of the challenge, the AK, the EK
 * certificate and the time; whoever reads it can complete the enrolment
 * without the TPM, so it stays on the enroller's machine (mode 0600) and is
 * used once. mt_tpm2_enroll_load reads it back into a handle whose finish
 * then checks the TPM's answer (mt_tpm2_enroll_challenge is empty on it). */
mt_status mt_tpm2_enroll_save(const mt_tpm2_enroll *e, char **out, mt_err *err);
mt_status mt_tpm2_enroll_load(const uint8_t *buf, size_t len, mt_tpm2_enroll **out,
                              mt_err *err);
/* Signs a record from its parts. The signature is the enroller's word that
 * the binding was established (by mt_tpm2_enroll_* or by equivalent
 * tooling such as tpm2_makecredential/activatecredential): only an enroller
 * that did so may call this. The AK must have the attributes of an
 * attestation key (as for mt_tpm2_enroll_begin). */
__attribute__((warn_unused_result)) mt_status
mt_tpm2_record_sign(const uint8_t *ak_public, size_t ak_public_len, const uint8_t *ek_cert,
                    size_t ek_cert_len, int64_t at, EVP_PKEY *enroller, char **out, mt_err *err);
/* Verifies a record: well-formed, signed by an enroller whose SPKI SHA-256
 * is one of enrollers[0..n), AK public area of an attestation key whose hash
 * is the record's tpm2_ak, EK certificate parses and, when ek_ca (PEM
 * bundle) is given, chains to it at enrolled_at. Fills *out (zeroed on
 * failure). MT_EAUTH for an untrusted enroller, a bad signature or chain,
 * MT_EINVAL for a malformed record. */
__attribute__((warn_unused_result)) mt_status
mt_tpm2_record_verify(const uint8_t *buf, size_t len, const uint8_t (*enrollers)[32],
                      size_t n_enrollers, const uint8_t *ek_ca, size_t ca_len,
                      mt_tpm2_record *out, mt_err *err);

/* Credential protection, exposed for tests (TPM 2.0 Part 1, 24):
 * KDFa(hash, key, label, contextU, contextV, bits) into out (bits/8 bytes). */
mt_status mt_tpm2_kdfa(uint16_t hash, const uint8_t *key, size_t key_len, const char *label,
                       const uint8_t *ctx_u, size_t ctx_u_len, const uint8_t *ctx_v,
                       size_t ctx_v_len, uint8_t *out, size_t bits, mt_err *err);

#endif
