/* mt_tpm2: TPM 2.0 structure readers, quote verification, the mesatee TPM
 * evidence container and credential activation (verifier side). See
 * mt_tpm2.h for the contract and docs/attestation.md for the checks. */
#include "mt_tpm2.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mt_attest_int.h"
#include "mt_json.h"
#include "mt_rd.h"
#include "mt_util.h"
#include "mt_x5.h"

#define EVIDENCE_MAGIC "MTT2"
#define EVIDENCE_VERSION 1
#define MAX_NAME 68
#define MAX_RSA_BYTES 512 /* RSA 4096 */

/* ---- algorithms ---------------------------------------------------------- */

size_t mt_tpm2_hash_size(uint16_t alg)
{
    switch (alg) {
    case MT_TPM2_ALG_SHA1:
        return 20;
    case MT_TPM2_ALG_SHA256:
        return 32;
    case MT_TPM2_ALG_SHA384:
        return 48;
    case MT_TPM2_ALG_SHA512:
        return 64;
    }
    return 0;
}

const EVP_MD *mt_tpm2_hash_md(uint16_t alg)
{
    switch (alg) {
    case MT_TPM2_ALG_SHA1:
        return EVP_sha1();
    case MT_TPM2_ALG_SHA256:
        return EVP_sha256();
    case MT_TPM2_ALG_SHA384:
        return EVP_sha384();
    case MT_TPM2_ALG_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

/* Hashes a signature may use: SHA-1 is refused. */
static bool strong_hash(uint16_t alg)
{
    return alg == MT_TPM2_ALG_SHA256 || alg == MT_TPM2_ALG_SHA384 || alg == MT_TPM2_ALG_SHA512;
}

/* Reads a TPM2B (u16 size + bytes) of at most max bytes; borrowed. */
static const uint8_t *rd_tpm2b(mt_rd *r, size_t max, size_t *len)
{
    uint16_t n = mt_rd_u16be(r);
    *len = 0;
    if (!mt_rd_ok(r) || n > max) {
        (void)mt_rd_take(r, (size_t)SIZE_MAX); /* fail the reader */
        return NULL;
    }
    const uint8_t *p = mt_rd_take(r, n);
    if (p)
        *len = n;
    return p;
}

/* ---- TPMS_ATTEST (quote) ------------------------------------------------ */

/* TPML_PCR_SELECTION into sel[]/n. */
static bool rd_pcr_selection(mt_rd *r, mt_tpm2_pcr_select *sel, size_t *n, mt_err *err)
{
    uint32_t count = mt_rd_u32be(r);
    if (!mt_rd_ok(r)) {
        mt_err_set(err, MT_EINVAL, "TPM quote is truncated in the PCR selection");
        return false;
    }
    if (count == 0 || count > MT_TPM2_MAX_BANKS) {
        mt_err_set(err, MT_EINVAL, "TPM quote selects %u PCR banks (1 to %d allowed)",
                   (unsigned)count, MT_TPM2_MAX_BANKS);
        return false;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint16_t hash = mt_rd_u16be(r);
        uint8_t size = mt_rd_u8(r);
        if (!mt_rd_ok(r) || size < 1 || size > 4) {
            mt_err_set(err, MT_EINVAL, "TPM quote has a malformed PCR selection");
            return false;
        }
        uint8_t bytes[4] = {0};
        mt_rd_bytes(r, bytes, size);
        if (!mt_tpm2_hash_size(hash)) {
            mt_err_set(err, MT_EINVAL, "TPM quote selects PCR bank 0x%04x, which is unknown", hash);
            return false;
        }
        if (size == 4 && bytes[3]) {
            mt_err_set(err, MT_EINVAL, "TPM quote selects PCRs above 23");
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (sel[j].hash == hash) {
                mt_err_set(err, MT_EINVAL, "TPM quote selects PCR bank 0x%04x twice", hash);
                return false;
            }
        }
        sel[i].hash = hash;
        sel[i].mask = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16;
    }
    *n = count;
    return mt_rd_ok(r);
}

mt_status mt_tpm2_quote_parse(const uint8_t *buf, size_t len, mt_tpm2_quote *q, mt_err *err)
{
    memset(q, 0, sizeof *q);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    q->magic = mt_rd_u32be(&r);
    q->type = mt_rd_u16be(&r);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "TPM quote is truncated (%zu bytes)", len);
    if (q->magic != MT_TPM2_GENERATED_VALUE)
        return mt_err_set(err, MT_EINVAL,
                          "TPM quote magic is 0x%08x, not TPM_GENERATED_VALUE 0xff544347",
                          (unsigned)q->magic);
    if (q->type != MT_TPM2_ST_ATTEST_QUOTE)
        return mt_err_set(err, MT_EINVAL, "TPM attestation type is 0x%04x, not a quote (0x8018)",
                          q->type);
    q->signer_name = rd_tpm2b(&r, MAX_NAME, &q->signer_name_len);
    size_t el = 0;
    const uint8_t *extra = rd_tpm2b(&r, MT_TPM2_MAX_DIGEST, &el);
    if (!mt_rd_ok(&r))
        return mt_err_set(
            err, MT_EINVAL,
            "TPM quote has a malformed qualifiedSigner or extraData (over 64 bytes?)");
    if (el)
        memcpy(q->extra, extra, el);
    q->extra_len = el;
    q->clock = mt_rd_u64be(&r);
    q->reset_count = mt_rd_u32be(&r);
    q->restart_count = mt_rd_u32be(&r);
    q->safe = mt_rd_u8(&r);
    q->firmware_version = mt_rd_u64be(&r);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "TPM quote is truncated in clockInfo");
    if (q->safe > 1)
        return mt_err_set(err, MT_EINVAL, "TPM quote clockInfo.safe is %u, not 0 or 1", q->safe);
    if (!rd_pcr_selection(&r, q->sel, &q->n_sel, err))
        return err && err->code != MT_OK ? err->code
                                         : mt_err_set(err, MT_EINVAL, "bad PCR selection");
    size_t dl = 0;
    const uint8_t *d = rd_tpm2b(&r, MT_TPM2_MAX_DIGEST, &dl);
    if (!mt_rd_ok(&r) || dl == 0)
        return mt_err_set(err, MT_EINVAL, "TPM quote has a malformed pcrDigest");
    memcpy(q->pcr_digest, d, dl);
    q->pcr_digest_len = dl;
    if (mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL, "TPM quote has %zu trailing bytes", mt_rd_left(&r));
    return MT_OK;
}

/* ---- TPMT_SIGNATURE ------------------------------------------------------ */

mt_status mt_tpm2_sig_parse(const uint8_t *buf, size_t len, mt_tpm2_sig *s, mt_err *err)
{
    memset(s, 0, sizeof *s);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    s->alg = mt_rd_u16be(&r);
    s->hash = mt_rd_u16be(&r);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "TPM signature is truncated (%zu bytes)", len);
    if (!strong_hash(s->hash))
        return mt_err_set(err, MT_EINVAL,
                          "TPM signature hash 0x%04x is not SHA-256, SHA-384 or SHA-512", s->hash);
    switch (s->alg) {
    case MT_TPM2_ALG_ECDSA:
        s->a = rd_tpm2b(&r, 66, &s->a_len);
        s->b = rd_tpm2b(&r, 66, &s->b_len);
        if (!mt_rd_ok(&r) || !s->a_len || !s->b_len)
            return mt_err_set(err, MT_EINVAL, "TPM ECDSA signature has a malformed r or s");
        break;
    case MT_TPM2_ALG_RSASSA:
    case MT_TPM2_ALG_RSAPSS:
        s->a = rd_tpm2b(&r, MAX_RSA_BYTES, &s->a_len);
        if (!mt_rd_ok(&r) || !s->a_len)
            return mt_err_set(err, MT_EINVAL, "TPM RSA signature is malformed");
        break;
    default:
        return mt_err_set(err, MT_EINVAL,
                          "TPM signature algorithm 0x%04x is not ECDSA, RSASSA or RSAPSS", s->alg);
    }
    if (mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL, "TPM signature has %zu trailing bytes", mt_rd_left(&r));
    return MT_OK;
}

/* ---- TPMT_PUBLIC --------------------------------------------------------- */

mt_status mt_tpm2_public_parse(const uint8_t *buf, size_t len, mt_tpm2_public *p, mt_err *err)
{
    memset(p, 0, sizeof *p);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    p->type = mt_rd_u16be(&r);
    p->name_alg = mt_rd_u16be(&r);
    p->attrs = mt_rd_u32be(&r);
    p->auth_policy = rd_tpm2b(&r, MT_TPM2_MAX_DIGEST, &p->auth_policy_len);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "TPM public area is truncated (%zu bytes)", len);
    if (p->type != MT_TPM2_ALG_RSA && p->type != MT_TPM2_ALG_ECC)
        return mt_err_set(err, MT_EINVAL, "TPM public area type 0x%04x is not RSA or ECC", p->type);
    if (!strong_hash(p->name_alg))
        return mt_err_set(err, MT_EINVAL,
                          "TPM public area nameAlg 0x%04x is not SHA-256, SHA-384 or SHA-512",
                          p->name_alg);
    /* TPMT_SYM_DEF_OBJECT */
    p->sym_alg = mt_rd_u16be(&r);
    if (p->sym_alg != MT_TPM2_ALG_NULL) {
        p->sym_bits = mt_rd_u16be(&r);
        p->sym_mode = mt_rd_u16be(&r);
    }
    /* scheme: only schemes with a single hash field are accepted. */
    p->scheme = mt_rd_u16be(&r);
    if (p->scheme != MT_TPM2_ALG_NULL) {
        bool ok = p->type == MT_TPM2_ALG_RSA
                      ? p->scheme == MT_TPM2_ALG_RSASSA || p->scheme == MT_TPM2_ALG_RSAPSS
                      : p->scheme == MT_TPM2_ALG_ECDSA;
        if (!ok)
            return mt_err_set(err, MT_EINVAL,
                              "TPM public area scheme 0x%04x is not supported "
                              "(RSASSA, RSAPSS, ECDSA or NULL)",
                              p->scheme);
        p->scheme_hash = mt_rd_u16be(&r);
    }
    if (p->type == MT_TPM2_ALG_RSA) {
        p->rsa_bits = mt_rd_u16be(&r);
        p->rsa_exponent = mt_rd_u32be(&r);
        p->x = rd_tpm2b(&r, MAX_RSA_BYTES, &p->x_len);
        if (!mt_rd_ok(&r))
            return mt_err_set(err, MT_EINVAL, "TPM RSA public area is malformed");
        if (p->rsa_bits < 2048 || p->rsa_bits > 4096 || p->x_len * 8 != p->rsa_bits)
            return mt_err_set(err, MT_EINVAL,
                              "TPM RSA public area has %u key bits and a %zu-byte modulus "
                              "(2048 to 4096 bits, matching, required)",
                              p->rsa_bits, p->x_len);
    } else {
        p->curve = mt_rd_u16be(&r);
        uint16_t kdf = mt_rd_u16be(&r);
        if (kdf != MT_TPM2_ALG_NULL)
            return mt_err_set(err, MT_EINVAL,
                              "TPM ECC public area has a KDF (0x%04x); only NULL "
                              "is supported",
                              kdf);
        p->x = rd_tpm2b(&r, 66, &p->x_len);
        p->y = rd_tpm2b(&r, 66, &p->y_len);
        if (!mt_rd_ok(&r))
            return mt_err_set(err, MT_EINVAL, "TPM ECC public area is malformed");
        size_t cl = p->curve == 3 ? 32 : p->curve == 4 ? 48 : 0;
        if (!cl)
            return mt_err_set(err, MT_EINVAL, "TPM ECC curve 0x%04x is not NIST P-256 or P-384",
                              p->curve);
        if (p->x_len != cl || p->y_len != cl)
            return mt_err_set(err, MT_EINVAL, "TPM ECC point coordinates are not %zu bytes", cl);
    }
    if (mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL, "TPM public area has %zu trailing bytes", mt_rd_left(&r));
    return MT_OK;
}

mt_status mt_tpm2_public_key(const mt_tpm2_public *p, EVP_PKEY **out, mt_err *err)
{
    *out = NULL;
    if (p->type == MT_TPM2_ALG_ECC) {
        uint8_t xy[96];
        memcpy(xy, p->x, p->x_len);
        memcpy(xy + p->x_len, p->y, p->y_len);
        return mt_x5_ec_pub_from_xy(p->curve == 3 ? "P-256" : "P-384", xy, p->x_len + p->y_len, out,
                                    err);
    }
    uint32_t e = p->rsa_exponent ? p->rsa_exponent : 65537u;
    BIGNUM *bn = BN_bin2bn(p->x, (int)p->x_len, NULL);
    BIGNUM *be = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pc = NULL;
    mt_status st = MT_OK;
    if (!bn || !be || !bld || BN_set_word(be, e) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        st = mt_err_set(err, MT_EINVAL, "TPM RSA public key cannot be built");
        *out = NULL;
    }
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    ERR_clear_error();
    return st;
}

mt_status mt_tpm2_public_name(const uint8_t *buf, size_t len, uint8_t *out, size_t *out_len,
                              mt_err *err)
{
    mt_tpm2_public p;
    mt_status st = mt_tpm2_public_parse(buf, len, &p, err);
    if (st != MT_OK)
        return st;
    unsigned int dl = 0;
    out[0] = (uint8_t)(p.name_alg >> 8);
    out[1] = (uint8_t)p.name_alg;
    if (EVP_Digest(buf, len, out + 2, &dl, mt_tpm2_hash_md(p.name_alg), NULL) != 1)
        return mt_err_set(err, MT_EINTERNAL, "hashing the TPM public area failed in OpenSSL");
    *out_len = 2 + dl;
    return MT_OK;
}

/* ---- PCR values ---------------------------------------------------------- */

static mt_tpm2_pcr_bank *bank_find(const mt_tpm2_pcrs *p, uint16_t hash)
{
    for (size_t i = 0; i < p->n_banks; i++)
        if (p->banks[i].hash == hash)
            return (mt_tpm2_pcr_bank *)&p->banks[i];
    return NULL;
}

mt_status mt_tpm2_pcrs_set(mt_tpm2_pcrs *p, uint16_t hash, unsigned index, const uint8_t *value,
                           size_t len, mt_err *err)
{
    size_t hl = mt_tpm2_hash_size(hash);
    if (!hl)
        return mt_err_set(err, MT_EINVAL, "PCR bank 0x%04x is unknown", hash);
    if (index >= MT_TPM2_NUM_PCRS)
        return mt_err_set(err, MT_EINVAL, "PCR index %u is over 23", index);
    if (len != hl)
        return mt_err_set(err, MT_EINVAL, "PCR %u value is %zu bytes, bank 0x%04x needs %zu", index,
                          len, hash, hl);
    mt_tpm2_pcr_bank *b = bank_find(p, hash);
    if (!b) {
        if (p->n_banks >= MT_TPM2_MAX_BANKS)
            return mt_err_set(err, MT_EINVAL, "more than %d PCR banks", MT_TPM2_MAX_BANKS);
        b = &p->banks[p->n_banks++];
        memset(b, 0, sizeof *b);
        b->hash = hash;
    }
    memcpy(b->value[index], value, len);
    b->present |= 1u << index;
    return MT_OK;
}

const uint8_t *mt_tpm2_pcrs_get(const mt_tpm2_pcrs *p, uint16_t hash, unsigned index)
{
    const mt_tpm2_pcr_bank *b = bank_find(p, hash);
    if (!b || index >= MT_TPM2_NUM_PCRS || !(b->present & (1u << index)))
        return NULL;
    return b->value[index];
}

/* Little-endian readers for the tpm2-tools dump. */
static uint16_t rd_u16h(mt_rd *r)
{
    return mt_rd_u16le(r);
}
static uint32_t rd_u32h(mt_rd *r)
{
    return mt_rd_u32le(r);
}

mt_status mt_tpm2_pcrs_parse_tools(const uint8_t *buf, size_t len, mt_tpm2_pcrs *out, mt_err *err)
{
    /* TPML_PCR_SELECTION as a C struct: u32 count, 16 x {u16 hash, u8 size,
     * u8 select[4], pad} (8 bytes each); then u32 n, n x TPML_DIGEST {u32
     * count, 8 x {u16 size, u8 buffer[64]}}. */
    memset(out, 0, sizeof *out);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    uint32_t count = rd_u32h(&r);
    if (!mt_rd_ok(&r) || count == 0 || count > MT_TPM2_MAX_BANKS)
        return mt_err_set(err, MT_EINVAL, "PCR file has a bad selection count");
    mt_tpm2_pcr_select sel[16];
    for (size_t i = 0; i < 16; i++) {
        sel[i].hash = rd_u16h(&r);
        uint8_t size = mt_rd_u8(&r);
        uint8_t b[4];
        mt_rd_bytes(&r, b, 4);
        mt_rd_skip(&r, 1);
        if (i < count && (size < 1 || size > 4 || (size == 4 && b[3])))
            return mt_err_set(err, MT_EINVAL, "PCR file has a malformed selection");
        sel[i].mask = size >= 3 ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 : 0;
        for (size_t j = 0; j < i && i < count; j++) /* a bank twice would overwrite values */
            if (sel[j].hash == sel[i].hash)
                return mt_err_set(err, MT_EINVAL, "PCR file selects bank 0x%04x twice",
                                  sel[i].hash);
    }
    uint32_t nlists = rd_u32h(&r);
    if (!mt_rd_ok(&r) || nlists > 16)
        return mt_err_set(err, MT_EINVAL, "PCR file has a bad digest list count");
    /* Walk the selected PCRs in quote order and take digests in turn. */
    size_t want = 0, done = 0;
    for (uint32_t i = 0; i < count; i++)
        want += (size_t)__builtin_popcount(sel[i].mask);
    uint32_t bank = 0, pcr = 0;
    for (uint32_t l = 0; l < nlists; l++) {
        uint32_t n = rd_u32h(&r);
        if (!mt_rd_ok(&r) || n > 8)
            return mt_err_set(err, MT_EINVAL, "PCR file has a malformed digest list");
        for (uint32_t k = 0; k < 8; k++) {
            uint16_t sz = rd_u16h(&r);
            const uint8_t *v = mt_rd_take(&r, 64);
            if (!mt_rd_ok(&r))
                return mt_err_set(err, MT_EINVAL, "PCR file is truncated");
            if (k >= n)
                continue;
            while (bank < count && !(sel[bank].mask >> pcr)) {
                bank++;
                pcr = 0;
            }
            if (bank >= count)
                return mt_err_set(err, MT_EINVAL, "PCR file has more digests than selected PCRs");
            while (!(sel[bank].mask & (1u << pcr)))
                pcr++;
            mt_status st = mt_tpm2_pcrs_set(out, sel[bank].hash, pcr, v, sz, err);
            if (st != MT_OK)
                return st;
            pcr++;
            done++;
        }
    }
    if (done != want)
        return mt_err_set(err, MT_EINVAL, "PCR file has %zu digests for %zu selected PCRs", done,
                          want);
    if (mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL, "PCR file has %zu trailing bytes", mt_rd_left(&r));
    return MT_OK;
}

/* ---- quote verification -------------------------------------------------- */

/* Verifies sig over msg with key. */
static bool sig_verify(EVP_PKEY *key, const mt_tpm2_sig *s, const uint8_t *msg, size_t len)
{
    const EVP_MD *md = mt_tpm2_hash_md(s->hash);
    int base = EVP_PKEY_get_base_id(key);
    if (s->alg == MT_TPM2_ALG_ECDSA) {
        if (base != EVP_PKEY_EC)
            return false;
        size_t cl = (size_t)(EVP_PKEY_get_bits(key) + 7) / 8;
        if (s->a_len > cl || s->b_len > cl || cl > 66)
            return false;
        uint8_t r[66] = {0}, sv[66] = {0};
        memcpy(r + cl - s->a_len, s->a, s->a_len);
        memcpy(sv + cl - s->b_len, s->b, s->b_len);
        return mt_x5_ecdsa_verify(key, md, msg, len, r, sv, cl, false);
    }
    if (base != EVP_PKEY_RSA)
        return false;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    bool ok = mc && EVP_DigestVerifyInit(mc, &pc, md, NULL, key) == 1;
    if (ok && s->alg == MT_TPM2_ALG_RSAPSS)
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_AUTO) == 1;
    else if (ok)
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
    ok = ok && EVP_DigestVerify(mc, s->a, s->a_len, msg, len) == 1;
    EVP_MD_CTX_free(mc);
    ERR_clear_error();
    return ok;
}

static const char *bank_prefix(uint16_t hash)
{
    switch (hash) {
    case MT_TPM2_ALG_SHA1:
        return "sha1.";
    case MT_TPM2_ALG_SHA384:
        return "sha384.";
    case MT_TPM2_ALG_SHA512:
        return "sha512.";
    }
    return "";
}

/* The signature of in: a TPMT_SIGNATURE, or a bare RSASSA signature. */
static mt_status sig_get(const mt_tpm2_quote_in *in, mt_tpm2_sig *s, mt_err *err)
{
    if (!in->raw_rsassa_hash)
        return mt_tpm2_sig_parse(in->sig, in->sig_len, s, err);
    memset(s, 0, sizeof *s);
    if (!strong_hash(in->raw_rsassa_hash) || in->sig_len == 0 || in->sig_len > MAX_RSA_BYTES)
        return mt_err_set(err, MT_EINVAL, "bare RSASSA signature: bad hash or size");
    s->alg = MT_TPM2_ALG_RSASSA;
    s->hash = in->raw_rsassa_hash;
    s->a = in->sig;
    s->a_len = in->sig_len;
    return MT_OK;
}

/* *nonce_bad (optional) is set when the only failure is extraData != nonce. */
static mt_status quote_verify(const mt_tpm2_quote_in *in, mt_attest_claims *c, bool *nonce_bad,
                              mt_err *err)
{
    if (!in->attest || !in->sig || !in->ak || !in->pcrs || (!in->nonce && in->nonce_len))
        return mt_err_set(err, MT_EINVAL, "TPM quote verification: missing input");
    mt_tpm2_quote q;
    mt_tpm2_sig s;
    mt_status st;
    if ((st = mt_tpm2_quote_parse(in->attest, in->attest_len, &q, err)) != MT_OK ||
        (st = sig_get(in, &s, err)) != MT_OK)
        return st;
    if (!sig_verify(in->ak, &s, in->attest, in->attest_len))
        return mt_err_set(err, MT_EAUTH, "TPM quote signature does not verify with the AK");
    if (q.extra_len != in->nonce_len || !mt_ct_equal(q.extra, in->nonce, in->nonce_len)) {
        if (nonce_bad)
            *nonce_bad = true;
        return mt_err_set(err, MT_EAUTH,
                          "TPM quote extraData (%zu bytes) does not equal the expected nonce "
                          "(%zu bytes): stale or replayed quote",
                          q.extra_len, in->nonce_len);
    }
    /* pcrDigest = H_sig(PCR values in selection order, ascending index). */
    const EVP_MD *md = mt_tpm2_hash_md(s.hash);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    if (!mc || EVP_DigestInit_ex(mc, md, NULL) != 1) {
        EVP_MD_CTX_free(mc);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    st = MT_OK;
    for (size_t b = 0; b < q.n_sel && st == MT_OK; b++) {
        size_t hl = mt_tpm2_hash_size(q.sel[b].hash);
        for (unsigned i = 0; i < MT_TPM2_NUM_PCRS; i++) {
            if (!(q.sel[b].mask & (1u << i)))
                continue;
            const uint8_t *v = mt_tpm2_pcrs_get(in->pcrs, q.sel[b].hash, i);
            if (!v) {
                st = mt_err_set(err, MT_EINVAL,
                                "the quote selects %spcr%u but no value for it was given",
                                bank_prefix(q.sel[b].hash), i);
                break;
            }
            if (EVP_DigestUpdate(mc, v, hl) != 1) {
                st = mt_err_set(err, MT_EINTERNAL, "hashing PCR values failed in OpenSSL");
                break;
            }
            char name[MT_ATTEST_NAME_MAX];
            snprintf(name, sizeof name, "%spcr%u", bank_prefix(q.sel[b].hash), i);
            mt_attest_claims_add_meas(c, name, v, hl);
        }
    }
    uint8_t dig[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (st == MT_OK && EVP_DigestFinal_ex(mc, dig, &dl) != 1)
        st = mt_err_set(err, MT_EINTERNAL, "hashing PCR values failed in OpenSSL");
    EVP_MD_CTX_free(mc);
    if (st != MT_OK)
        return st;
    if (dl != q.pcr_digest_len || memcmp(dig, q.pcr_digest, dl) != 0)
        return mt_err_set(err, MT_EAUTH,
                          "TPM quote pcrDigest does not match the PCR values given with it");
    c->kind = MT_ATTEST_TPM2;
    snprintf(c->product, sizeof c->product, "TPM 2.0 fw %016llx",
             (unsigned long long)q.firmware_version);
    snprintf(c->endorsement, sizeof c->endorsement, "AK");
    mt_attest_claims_add_svn(c, "tpm.firmware_version", q.firmware_version);
    mt_attest_claims_add_svn(c, "tpm.reset_count", q.reset_count);
    mt_attest_claims_add_svn(c, "tpm.restart_count", q.restart_count);
    mt_attest_claims_add_svn(c, "tpm.clock", q.clock);
    mt_attest_claims_add_svn(c, "tpm.safe", q.safe);
    memcpy(c->nonce, q.extra, q.extra_len);
    c->nonce_len = q.extra_len;
    memcpy(c->report_data, q.extra, q.extra_len);
    c->report_data_len = q.extra_len;
    return MT_OK;
}

mt_status mt_tpm2_quote_verify(const mt_tpm2_quote_in *in, mt_attest_claims *claims, mt_err *err)
{
    if (!in || !claims)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_quote_verify: NULL argument");
    memset(claims, 0, sizeof *claims);
    mt_status st = quote_verify(in, claims, NULL, err);
    if (st != MT_OK)
        memset(claims, 0, sizeof *claims);
    return st;
}

/* ---- evidence container -------------------------------------------------- */

mt_status mt_tpm2_evidence_parse(const uint8_t *buf, size_t len, mt_tpm2_evidence *ev, mt_err *err)
{
    memset(ev, 0, sizeof *ev);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    const uint8_t *magic = mt_rd_take(&r, 4);
    uint16_t ver = mt_rd_u16be(&r);
    if (!mt_rd_ok(&r) || memcmp(magic, EVIDENCE_MAGIC, 4) != 0)
        return mt_err_set(err, MT_EINVAL, "not mesatee TPM evidence (magic \"MTT2\" expected)");
    if (ver != EVIDENCE_VERSION)
        return mt_err_set(err, MT_EINVAL, "TPM evidence version %u is not supported (1)", ver);
    ev->report_data = rd_tpm2b(&r, 64, &ev->report_data_len);
    ev->attest = rd_tpm2b(&r, 1024, &ev->attest_len);
    ev->sig = rd_tpm2b(&r, 1024, &ev->sig_len);
    ev->ak_public = rd_tpm2b(&r, 1024, &ev->ak_public_len);
    ev->ek_cert = rd_tpm2b(&r, 8192, &ev->ek_cert_len);
    if (!ev->ek_cert_len)
        ev->ek_cert = NULL;
    uint8_t n = mt_rd_u8(&r);
    if (!mt_rd_ok(&r) || !ev->attest_len || !ev->sig_len || !ev->ak_public_len)
        return mt_err_set(err, MT_EINVAL,
                          "TPM evidence is truncated or a field is over its limit (report data "
                          "64, quote, signature and AK 1024, EK certificate 8192 bytes)");
    for (unsigned i = 0; i < n; i++) {
        uint16_t bank = mt_rd_u16be(&r);
        uint8_t idx = mt_rd_u8(&r);
        size_t hl = mt_tpm2_hash_size(bank);
        const uint8_t *v = hl ? mt_rd_take(&r, hl) : NULL;
        if (!mt_rd_ok(&r) || !v)
            return mt_err_set(err, MT_EINVAL, "TPM evidence has a malformed PCR value %u", i);
        if (mt_tpm2_pcrs_get(&ev->pcrs, bank, idx))
            return mt_err_set(err, MT_EINVAL, "TPM evidence repeats PCR %u of bank 0x%04x", idx,
                              bank);
        mt_status st = mt_tpm2_pcrs_set(&ev->pcrs, bank, idx, v, hl, err);
        if (st != MT_OK)
            return st;
    }
    if (mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL, "TPM evidence has %zu trailing bytes", mt_rd_left(&r));
    return MT_OK;
}

/* Appends u16 length + bytes. */
static void put_tpm2b(uint8_t *out, size_t *off, const uint8_t *p, size_t n)
{
    out[(*off)++] = (uint8_t)(n >> 8);
    out[(*off)++] = (uint8_t)n;
    if (n)
        memcpy(out + *off, p, n);
    *off += n;
}

mt_status mt_tpm2_evidence_encode(const mt_tpm2_evidence *ev, uint8_t **out, size_t *out_len,
                                  mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (ev->report_data_len > 64 || ev->attest_len > 1024 || ev->sig_len > 1024 ||
        ev->ak_public_len > 1024 || ev->ek_cert_len > 8192 || !ev->attest_len || !ev->sig_len ||
        !ev->ak_public_len)
        return mt_err_set(err, MT_EINVAL, "TPM evidence field over its limit or empty");
    size_t npcr = 0, cap = 6 + 10 + 1 + ev->report_data_len + ev->attest_len + ev->sig_len +
                           ev->ak_public_len + ev->ek_cert_len;
    for (size_t b = 0; b < ev->pcrs.n_banks; b++) {
        int k = __builtin_popcount(ev->pcrs.banks[b].present);
        npcr += (size_t)k;
        cap += (size_t)k * (3 + mt_tpm2_hash_size(ev->pcrs.banks[b].hash));
    }
    if (npcr > 255)
        return mt_err_set(err, MT_EINVAL, "TPM evidence has over 255 PCR values");
    uint8_t *buf = malloc(cap);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t off = 0;
    memcpy(buf, EVIDENCE_MAGIC, 4);
    buf[4] = 0;
    buf[5] = EVIDENCE_VERSION;
    off = 6;
    put_tpm2b(buf, &off, ev->report_data, ev->report_data_len);
    put_tpm2b(buf, &off, ev->attest, ev->attest_len);
    put_tpm2b(buf, &off, ev->sig, ev->sig_len);
    put_tpm2b(buf, &off, ev->ak_public, ev->ak_public_len);
    put_tpm2b(buf, &off, ev->ek_cert, ev->ek_cert_len);
    buf[off++] = (uint8_t)npcr;
    for (size_t b = 0; b < ev->pcrs.n_banks; b++) {
        const mt_tpm2_pcr_bank *bk = &ev->pcrs.banks[b];
        size_t hl = mt_tpm2_hash_size(bk->hash);
        for (unsigned i = 0; i < MT_TPM2_NUM_PCRS; i++) {
            if (!(bk->present & (1u << i)))
                continue;
            buf[off++] = (uint8_t)(bk->hash >> 8);
            buf[off++] = (uint8_t)bk->hash;
            buf[off++] = (uint8_t)i;
            memcpy(buf + off, bk->value[i], hl);
            off += hl;
        }
    }
    *out = buf;
    *out_len = off;
    return MT_OK;
}

/* ---- certificates -------------------------------------------------------- */

/* Verifies cert against a CA bundle: the self-signed certificates of the
 * bundle are the trust anchors, the others untrusted intermediates. */
static mt_status ek_chain_verify(X509 *cert, const uint8_t *ca, size_t ca_len, int64_t at,
                                 mt_err *err)
{
    STACK_OF(X509) *all = NULL;
    mt_status st = mt_x5_load_certs(ca, ca_len, "EK CA bundle", &all, err);
    if (st != MT_OK)
        return st;
    STACK_OF(X509) *inter = sk_X509_new_null();
    if (!inter) {
        sk_X509_pop_free(all, X509_free);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < sk_X509_num(all); i++) {
        X509 *c = sk_X509_value(all, i);
        if (!(X509_get_extension_flags(c) & EXFLAG_SS))
            sk_X509_push(inter, c);
    }
    st = mt_err_set(err, MT_EAUTH, "EK certificate: the CA bundle holds no self-signed root");
    for (int i = 0; i < sk_X509_num(all); i++) {
        X509 *c = sk_X509_value(all, i);
        if (!(X509_get_extension_flags(c) & EXFLAG_SS))
            continue;
        st = mt_x5_verify_chain(cert, inter, c, NULL, at, "EK certificate", err);
        if (st == MT_OK)
            break;
    }
    sk_X509_free(inter);
    sk_X509_pop_free(all, X509_free);
    return st;
}

/* One certificate, DER or PEM. */
static mt_status cert_load(const uint8_t *buf, size_t len, const char *what, X509 **out,
                           mt_err *err)
{
    STACK_OF(X509) *sk = NULL;
    mt_status st = mt_x5_load_certs(buf, len, what, &sk, err);
    if (st != MT_OK)
        return st;
    if (sk_X509_num(sk) != 1) {
        sk_X509_pop_free(sk, X509_free);
        return mt_err_set(err, MT_EINVAL, "%s: expected one certificate", what);
    }
    *out = sk_X509_shift(sk);
    sk_X509_free(sk);
    return MT_OK;
}

/* ---- mt_attest_verify(MT_ATTEST_TPM2) ------------------------------------ */

/* Compares the evidence AK with the pinned AK (TPMT_PUBLIC, or SPKI DER/PEM). */
static mt_status ak_pinned(const uint8_t *pin, size_t pin_len, const uint8_t *ak_pub, size_t ak_len,
                           EVP_PKEY *ak, mt_err *err)
{
    if (pin_len == ak_len && memcmp(pin, ak_pub, ak_len) == 0)
        return MT_OK;
    mt_tpm2_public pp;
    EVP_PKEY *pk = NULL;
    if (mt_tpm2_public_parse(pin, pin_len, &pp, NULL) == MT_OK) {
        (void)mt_tpm2_public_key(&pp, &pk, NULL);
    } else {
        const unsigned char *p = pin;
        pk = d2i_PUBKEY(NULL, &p, (long)pin_len);
        if (!pk) {
            BIO *bio = BIO_new_mem_buf(pin, (int)pin_len);
            pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
            BIO_free(bio);
        }
    }
    ERR_clear_error();
    if (!pk)
        return mt_err_set(err, MT_EINVAL,
                          "pinned TPM AK is neither a TPMT_PUBLIC nor a SubjectPublicKeyInfo");
    int eq = EVP_PKEY_eq(pk, ak);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    if (eq != 1)
        return mt_err_set(err, MT_EAUTH, "the TPM AK of the evidence is not the pinned AK");
    return MT_OK;
}

mt_status mt_tpm2_verify(const uint8_t *buf, size_t len, const mt_attest_collateral *coll,
                         int64_t at, mt_attest_claims *claims, mt_err *err)
{
    mt_tpm2_evidence *ev = malloc(sizeof *ev);
    if (!ev)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    EVP_PKEY *ak = NULL;
    mt_tpm2_public pub;
    mt_status st = mt_tpm2_evidence_parse(buf, len, ev, err);
    if (st != MT_OK)
        goto out;
    size_t pin_len = 0, ca_len = 0;
    const uint8_t *pin = mt_attest_coll_get(coll, MT_COLL_TPM2_AK, &pin_len);
    const uint8_t *ca = mt_attest_coll_get(coll, MT_COLL_TPM2_EK_CA, &ca_len);
    if (!pin) {
        st = mt_err_set(err, MT_EINVAL,
                        "TPM evidence needs a pinned AK (collateral MT_COLL_TPM2_AK), "
                        "obtained by enrolling the TPM (EK certificate + credential activation)");
        goto out;
    }
    if ((st = mt_tpm2_public_parse(ev->ak_public, ev->ak_public_len, &pub, err)) != MT_OK ||
        (st = mt_tpm2_public_key(&pub, &ak, err)) != MT_OK ||
        (st = ak_pinned(pin, pin_len, ev->ak_public, ev->ak_public_len, ak, err)) != MT_OK)
        goto out;
    if (ca) {
        /* An EK certificate is public and nothing in a quote binds it to the
         * AK: checking its chain here would prove nothing about the AK. The
         * binding comes from enrolment (credential activation), below. */
        st = mt_err_set(err, MT_EINVAL,
                        "an EK CA bundle cannot make TPM evidence trustworthy (EK certificates "
                        "are public and a quote does not bind one to its AK): enrol the AK by "
                        "credential activation (`mesatee attest tpm-enroll`) and pin it or "
                        "trust its signed enrolment record");
        goto out;
    }
    (void)at;
    uint8_t nonce[32];
    unsigned int nl = 0;
    if (EVP_Digest(ev->report_data, ev->report_data_len, nonce, &nl, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    mt_tpm2_quote_in in = {.attest = ev->attest,
                           .attest_len = ev->attest_len,
                           .sig = ev->sig,
                           .sig_len = ev->sig_len,
                           .ak = ak,
                           .pcrs = &ev->pcrs,
                           .nonce = nonce,
                           .nonce_len = nl};
    bool nonce_bad = false;
    if ((st = quote_verify(&in, claims, &nonce_bad, err)) != MT_OK) {
        if (nonce_bad)
            st = mt_err_set(err, MT_EAUTH,
                            "TPM quote extraData is not SHA-256 of the evidence's report data");
        goto out;
    }
    memset(claims->report_data, 0, sizeof claims->report_data);
    memcpy(claims->report_data, ev->report_data, ev->report_data_len);
    claims->report_data_len = ev->report_data_len;
    uint8_t name[2 + MT_TPM2_MAX_DIGEST];
    size_t name_len = 0;
    if (mt_tpm2_public_name(ev->ak_public, ev->ak_public_len, name, &name_len, NULL) == MT_OK)
        mt_attest_claims_add_meas(claims, "ak_name", name, name_len);
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(ak, &spki);
    if (sl > 0 && (size_t)sl <= sizeof claims->public_key) {
        memcpy(claims->public_key, spki, (size_t)sl);
        claims->public_key_len = (size_t)sl;
    }
    OPENSSL_free(spki);
    st = MT_OK;
out:
    EVP_PKEY_free(ak);
    free(ev);
    ERR_clear_error();
    return st;
}

/* ---- credential activation (verifier side) ------------------------------ */

#define CRED_SECRET_LEN 32

struct mt_tpm2_enroll {
    uint8_t secret[CRED_SECRET_LEN];
    uint8_t blob[2 + 2 + MT_TPM2_MAX_DIGEST + 2 + CRED_SECRET_LEN];
    size_t blob_len;
    uint8_t enc[MAX_RSA_BYTES];
    size_t enc_len;
    bool used;
    bool activated; /* finish succeeded: a record may be made */
    /* What a record states: the AK public area, the EK certificate (DER)
     * and the time its chain was checked. */
    uint8_t ak_public[MT_TPM2_AK_PUBLIC_MAX];
    size_t ak_public_len;
    uint8_t ek_der[MT_TPM2_EK_CERT_MAX];
    size_t ek_der_len;
    int64_t at;
};

mt_status mt_tpm2_kdfa(uint16_t hash, const uint8_t *key, size_t key_len, const char *label,
                       const uint8_t *ctx_u, size_t ctx_u_len, const uint8_t *ctx_v,
                       size_t ctx_v_len, uint8_t *out, size_t bits, mt_err *err)
{
    const EVP_MD *md = mt_tpm2_hash_md(hash);
    if (!md || bits == 0 || bits % 8 || bits > 8 * 1024)
        return mt_err_set(err, MT_EINVAL, "KDFa: bad hash or size");
    size_t need = bits / 8, off = 0;
    uint8_t bits_be[4] = {(uint8_t)(bits >> 24), (uint8_t)(bits >> 16), (uint8_t)(bits >> 8),
                          (uint8_t)bits};
    for (uint32_t i = 1; off < need; i++) {
        uint8_t ctr[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        uint8_t blk[EVP_MAX_MD_SIZE], in[4 + 64 + 2 * 512 + 4];
        unsigned int bl = 0;
        size_t ll = strlen(label) + 1, il = 0;
        if (ll > 64 || ctx_u_len > 512 || ctx_v_len > 512)
            return mt_err_set(err, MT_EINVAL, "KDFa: label or context too long");
        memcpy(in + il, ctr, 4);
        il += 4;
        memcpy(in + il, label, ll); /* the label includes its NUL */
        il += ll;
        if (ctx_u_len)
            memcpy(in + il, ctx_u, ctx_u_len);
        il += ctx_u_len;
        if (ctx_v_len)
            memcpy(in + il, ctx_v, ctx_v_len);
        il += ctx_v_len;
        memcpy(in + il, bits_be, 4);
        il += 4;
        bool ok = HMAC(md, key, (int)key_len, in, il, blk, &bl) != NULL;
        if (!ok)
            return mt_err_set(err, MT_EINTERNAL, "KDFa: HMAC failed in OpenSSL");
        size_t take = need - off < bl ? need - off : bl;
        memcpy(out + off, blk, take);
        off += take;
        mt_wipe(blk, sizeof blk);
    }
    return MT_OK;
}

/* The AK must be a restricted signing key that never leaves the TPM. */
static mt_status ak_attrs_check(const mt_tpm2_public *p, mt_err *err)
{
    const uint32_t need = MT_TPMA_FIXED_TPM | MT_TPMA_FIXED_PARENT | MT_TPMA_SENSITIVE_DATA_ORIGIN |
                          MT_TPMA_RESTRICTED | MT_TPMA_SIGN;
    if ((p->attrs & need) != need || (p->attrs & MT_TPMA_DECRYPT))
        return mt_err_set(err, MT_EAUTH,
                          "TPM AK attributes 0x%08x are not those of an attestation key "
                          "(fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign, "
                          "not decrypt)",
                          (unsigned)p->attrs);
    return MT_OK;
}

/* RSA-OAEP(SHA-256, label "IDENTITY\0") of seed to the EK. */
static bool rsa_oaep_identity(EVP_PKEY *ek, const uint8_t *seed, size_t seed_len, uint8_t *out,
                              size_t *out_len)
{
    static const char label[] = "IDENTITY";
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL);
    char *lab = OPENSSL_malloc(sizeof label);
    bool ok = pc && lab && EVP_PKEY_encrypt_init(pc) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) == 1 &&
              EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) == 1;
    if (ok) {
        memcpy(lab, label, sizeof label); /* the label includes the NUL */
        ok = EVP_PKEY_CTX_set0_rsa_oaep_label(pc, lab, sizeof label) == 1;
        if (ok)
            lab = NULL; /* owned by pc now */
    }
    ok = ok && EVP_PKEY_encrypt(pc, out, out_len, seed, seed_len) == 1;
    OPENSSL_free(lab);
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    return ok;
}

/* AES-128-CFB with a zero IV (the TPM's credential encryption). */
static bool aes_cfb_encrypt(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out)
{
    static const uint8_t iv[16] = {0};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    bool ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_cfb128(), NULL, key, iv) == 1 &&
              EVP_EncryptUpdate(c, out, &n1, in, (int)len) == 1 &&
              EVP_EncryptFinal_ex(c, out + n1, &n2) == 1 && (size_t)(n1 + n2) == len;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/* MakeCredential (TPM 2.0 Part 1, 24) with an RSA 2048 EK of the TCG
 * template L-1 (nameAlg SHA-256, AES-128-CFB). */
static mt_status make_credential(mt_tpm2_enroll *e, EVP_PKEY *ek, const uint8_t *name,
                                 size_t name_len, mt_err *err)
{
    uint8_t seed[32], sym[16], hkey[32], plain[2 + CRED_SECRET_LEN], enc_id[2 + CRED_SECRET_LEN];
    mt_status st = mt_random(seed, sizeof seed, err);
    if (st != MT_OK)
        goto out;
    e->enc_len = sizeof e->enc;
    if (!rsa_oaep_identity(ek, seed, sizeof seed, e->enc, &e->enc_len)) {
        st = mt_err_set(err, MT_EINTERNAL, "RSA-OAEP to the EK failed in OpenSSL");
        goto out;
    }
    if ((st = mt_tpm2_kdfa(MT_TPM2_ALG_SHA256, seed, sizeof seed, "STORAGE", name, name_len, NULL,
                           0, sym, 128, err)) != MT_OK ||
        (st = mt_tpm2_kdfa(MT_TPM2_ALG_SHA256, seed, sizeof seed, "INTEGRITY", NULL, 0, NULL, 0,
                           hkey, 256, err)) != MT_OK)
        goto out;
    plain[0] = 0;
    plain[1] = CRED_SECRET_LEN;
    memcpy(plain + 2, e->secret, CRED_SECRET_LEN);
    if (!aes_cfb_encrypt(sym, plain, sizeof plain, enc_id)) {
        st = mt_err_set(err, MT_EINTERNAL, "AES-128-CFB failed in OpenSSL");
        goto out;
    }
    uint8_t mac[32];
    unsigned int ml = 0;
    uint8_t macin[sizeof enc_id + 2 + MT_TPM2_MAX_DIGEST];
    memcpy(macin, enc_id, sizeof enc_id);
    memcpy(macin + sizeof enc_id, name, name_len);
    bool ok = HMAC(EVP_sha256(), hkey, sizeof hkey, macin, sizeof enc_id + name_len, mac, &ml) &&
              ml == 32;
    if (!ok) {
        st = mt_err_set(err, MT_EINTERNAL, "HMAC failed in OpenSSL");
        goto out;
    }
    /* TPMS_ID_OBJECT: TPM2B_DIGEST integrityHMAC || encIdentity */
    size_t off = 0;
    e->blob[off++] = 0;
    e->blob[off++] = 32;
    memcpy(e->blob + off, mac, 32);
    off += 32;
    memcpy(e->blob + off, enc_id, sizeof enc_id);
    off += sizeof enc_id;
    e->blob_len = off;
    st = MT_OK;
out:
    mt_wipe(seed, sizeof seed);
    mt_wipe(sym, sizeof sym);
    mt_wipe(hkey, sizeof hkey);
    mt_wipe(plain, sizeof plain);
    return st;
}

mt_status mt_tpm2_enroll_begin(const uint8_t *ek_cert, size_t ek_cert_len, const uint8_t *ca_pem,
                               size_t ca_len, int64_t at, const uint8_t *ak_public,
                               size_t ak_public_len, mt_tpm2_enroll **out, mt_err *err)
{
    if (!out || !ek_cert || !ca_pem || !ak_public)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_enroll_begin: NULL argument");
    *out = NULL;
    X509 *cert = NULL;
    mt_tpm2_enroll *e = NULL;
    mt_tpm2_public pub;
    uint8_t name[2 + MT_TPM2_MAX_DIGEST];
    size_t name_len = 0;
    mt_status st;
    if ((st = mt_tpm2_public_parse(ak_public, ak_public_len, &pub, err)) != MT_OK ||
        (st = ak_attrs_check(&pub, err)) != MT_OK ||
        (st = mt_tpm2_public_name(ak_public, ak_public_len, name, &name_len, err)) != MT_OK ||
        (st = cert_load(ek_cert, ek_cert_len, "EK certificate", &cert, err)) != MT_OK ||
        (st = ek_chain_verify(cert, ca_pem, ca_len, at, err)) != MT_OK)
        goto out;
    EVP_PKEY *ek = X509_get0_pubkey(cert);
    if (!ek || EVP_PKEY_get_base_id(ek) != EVP_PKEY_RSA || EVP_PKEY_get_bits(ek) != 2048) {
        st = mt_err_set(err, MT_EINVAL,
                        "EK certificate key is not RSA 2048 (only the TCG RSA EK template L-1 "
                        "is supported for credential activation)");
        goto out;
    }
    if (ak_public_len > MT_TPM2_AK_PUBLIC_MAX) {
        st = mt_err_set(err, MT_EINVAL, "AK public area is over %u bytes", MT_TPM2_AK_PUBLIC_MAX);
        goto out;
    }
    if (!(e = calloc(1, sizeof *e))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    unsigned char *der = NULL;
    int dl = i2d_X509(cert, &der);
    if (dl <= 0 || (size_t)dl > sizeof e->ek_der) {
        OPENSSL_free(der);
        st = mt_err_set(err, MT_EINVAL, "EK certificate is over %u bytes DER", MT_TPM2_EK_CERT_MAX);
        goto out;
    }
    memcpy(e->ek_der, der, (size_t)dl);
    e->ek_der_len = (size_t)dl;
    OPENSSL_free(der);
    memcpy(e->ak_public, ak_public, ak_public_len);
    e->ak_public_len = ak_public_len;
    e->at = at;
    if ((st = mt_random(e->secret, sizeof e->secret, err)) != MT_OK ||
        (st = make_credential(e, ek, name, name_len, err)) != MT_OK)
        goto out;
    *out = e;
    e = NULL;
out:
    mt_tpm2_enroll_free(e);
    X509_free(cert);
    ERR_clear_error();
    return st;
}

void mt_tpm2_enroll_challenge(const mt_tpm2_enroll *e, const uint8_t **cred_blob,
                              size_t *cred_blob_len, const uint8_t **secret, size_t *secret_len)
{
    *cred_blob = e->blob;
    *cred_blob_len = e->blob_len;
    *secret = e->enc;
    *secret_len = e->enc_len;
}

mt_status mt_tpm2_enroll_finish(mt_tpm2_enroll *e, const uint8_t *answer, size_t answer_len,
                                mt_err *err)
{
    if (!e || (!answer && answer_len))
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_enroll_finish: NULL argument");
    bool first = !e->used;
    e->used = true;
    if (!first || answer_len != CRED_SECRET_LEN || !mt_ct_equal(answer, e->secret, answer_len))
        return mt_err_set(err, MT_EAUTH, "credential activation failed");
    e->activated = true;
    return MT_OK;
}

void mt_tpm2_enroll_free(mt_tpm2_enroll *e)
{
    if (!e)
        return;
    mt_wipe(e, sizeof *e);
    free(e);
}

/* ---- enrolment records --------------------------------------------------- */

#define RECORD_VERSION 1
#define RECORD_LABEL "mesatee-tpm2-enrolment-v1"
#define ENROLLER_SPKI_MAX 256
#define RECORD_SIG_MAX 80

/* The bytes an enroller signs:
 *   RECORD_LABEL NUL | u32 len | AK TPMT_PUBLIC | u32 len | EK cert DER |
 *   u64 enrolled_at (two's complement) | u32 len | enroller SPKI DER
 * all big-endian. *out is heap (free()). */
static mt_status record_tbs(const uint8_t *ak, size_t ak_len, const uint8_t *ek, size_t ek_len,
                            int64_t at, const uint8_t *spki, size_t spki_len, uint8_t **out,
                            size_t *out_len, mt_err *err)
{
    size_t n = sizeof RECORD_LABEL + 4 + ak_len + 4 + ek_len + 8 + 4 + spki_len, off = 0;
    uint8_t *b = malloc(n);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    memcpy(b, RECORD_LABEL, sizeof RECORD_LABEL);
    off = sizeof RECORD_LABEL;
    const uint8_t *parts[3] = {ak, ek, spki};
    size_t lens[3] = {ak_len, ek_len, spki_len};
    for (int i = 0; i < 3; i++) {
        if (i == 2) {
            uint64_t t = (uint64_t)at;
            for (int k = 7; k >= 0; k--)
                b[off++] = (uint8_t)(t >> (8 * k));
        }
        b[off++] = (uint8_t)(lens[i] >> 24);
        b[off++] = (uint8_t)(lens[i] >> 16);
        b[off++] = (uint8_t)(lens[i] >> 8);
        b[off++] = (uint8_t)lens[i];
        memcpy(b + off, parts[i], lens[i]);
        off += lens[i];
    }
    *out = b;
    *out_len = off;
    return MT_OK;
}

/* True for an EC key on NIST P-256 (the only enroller key type). */
static bool is_p256(EVP_PKEY *k)
{
    char group[32];
    size_t gl = 0;
    return EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                          &gl) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

static bool sha256_of(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned int l = 0;
    return EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) == 1 && l == 32;
}

/* SHA-256 of the SPKI DER of a TPMT_PUBLIC's key (what tpm2_aks pins). */
static mt_status ak_spki_hash(const uint8_t *ak, size_t ak_len, uint8_t out[32], mt_err *err)
{
    mt_tpm2_public pub;
    EVP_PKEY *k = NULL;
    mt_status st;
    if ((st = mt_tpm2_public_parse(ak, ak_len, &pub, err)) != MT_OK ||
        (st = ak_attrs_check(&pub, err)) != MT_OK ||
        (st = mt_tpm2_public_key(&pub, &k, err)) != MT_OK)
        return st;
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(k, &spki);
    EVP_PKEY_free(k);
    st = sl > 0 && sha256_of(spki, (size_t)sl, out)
             ? MT_OK
             : mt_err_set(err, MT_EINTERNAL, "cannot encode the AK public key");
    OPENSSL_free(spki);
    return st;
}

/* Adds "key": hex(bytes) to o; false on allocation failure. */
static bool json_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
    char *h = malloc(2 * n + 1);
    if (!h)
        return false;
    mt_hex_encode(b, n, h);
    bool ok = json_object_set_new(o, key, json_string(h)) == 0;
    free(h);
    return ok;
}

mt_status mt_tpm2_record_sign(const uint8_t *ak_public, size_t ak_public_len,
                              const uint8_t *ek_cert, size_t ek_cert_len, int64_t at,
                              EVP_PKEY *enroller, char **out, mt_err *err)
{
    if (!ak_public || !ek_cert || !enroller || !out)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_record_sign: NULL argument");
    *out = NULL;
    if (!is_p256(enroller))
        return mt_err_set(err, MT_EINVAL, "the enroller key must be an ECDSA P-256 private key");
    uint8_t ak_hash[32];
    X509 *cert = NULL;
    mt_status st;
    if (ak_public_len > MT_TPM2_AK_PUBLIC_MAX || ek_cert_len > MT_TPM2_EK_CERT_MAX)
        return mt_err_set(err, MT_EINVAL, "AK public area or EK certificate too large");
    if ((st = ak_spki_hash(ak_public, ak_public_len, ak_hash, err)) != MT_OK ||
        (st = cert_load(ek_cert, ek_cert_len, "EK certificate", &cert, err)) != MT_OK)
        return st;
    unsigned char *ek = NULL, *spki = NULL;
    int el = i2d_X509(cert, &ek), sl = i2d_PUBKEY(enroller, &spki);
    X509_free(cert);
    uint8_t *tbs = NULL, sig[RECORD_SIG_MAX];
    size_t tl = 0, gl = sizeof sig;
    json_t *o = NULL;
    EVP_MD_CTX *md = NULL;
    char ts[32];
    if (el <= 0 || sl <= 0 || (size_t)el > MT_TPM2_EK_CERT_MAX || (size_t)sl > ENROLLER_SPKI_MAX) {
        st = mt_err_set(err, MT_EINVAL, "cannot encode the EK certificate or the enroller key");
        goto out;
    }
    if ((st = record_tbs(ak_public, ak_public_len, ek, (size_t)el, at, spki, (size_t)sl, &tbs, &tl,
                         err)) != MT_OK)
        goto out;
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, enroller) != 1 ||
        EVP_DigestSign(md, sig, &gl, tbs, tl) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "signing the enrolment record failed in OpenSSL");
        goto out;
    }
    mt_time_format(at, ts);
    if (!(o = json_object()) ||
        json_object_set_new(o, "mesatee_tpm2_enrolment", json_integer(RECORD_VERSION)) ||
        !json_hex(o, "tpm2_ak", ak_hash, 32) || !json_hex(o, "ak_public", ak_public, ak_public_len) ||
        !json_hex(o, "ek_cert", ek, (size_t)el) ||
        json_object_set_new(o, "enrolled_at", json_string(ts)) ||
        !json_hex(o, "enroller", spki, (size_t)sl) || !json_hex(o, "signature", sig, gl) ||
        !(*out = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    st = MT_OK;
out:
    json_decref(o);
    EVP_MD_CTX_free(md);
    free(tbs);
    OPENSSL_free(ek);
    OPENSSL_free(spki);
    ERR_clear_error();
    return st;
}

mt_status mt_tpm2_enroll_record(const mt_tpm2_enroll *e, EVP_PKEY *enroller, char **out,
                                mt_err *err)
{
    if (!e || !out)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_enroll_record: NULL argument");
    *out = NULL;
    if (!e->activated)
        return mt_err_set(err, MT_EAUTH, "no enrolment record without a successful credential "
                                         "activation");
    return mt_tpm2_record_sign(e->ak_public, e->ak_public_len, e->ek_der, e->ek_der_len, e->at,
                               enroller, out, err);
}

/* A hex field of 1..max bytes into a new buffer. */
static mt_status rec_hex(json_t *doc, const char *key, size_t max, uint8_t **out, size_t *len,
                         mt_err *err)
{
    const char *s = NULL;
    mt_status st = mt_json_str(doc, key, 2 * max, &s, err);
    if (st != MT_OK)
        return st;
    size_t n = strlen(s);
    if (n == 0 || n % 2)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected hex", key);
    if (!(*out = malloc(n / 2)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (mt_hex_decode(s, *out, n / 2, NULL) != MT_OK) {
        free(*out);
        *out = NULL;
        return mt_err_set(err, MT_EINVAL, "field '%s': expected hex", key);
    }
    *len = n / 2;
    return MT_OK;
}

mt_status mt_tpm2_record_verify(const uint8_t *buf, size_t len, const uint8_t (*enrollers)[32],
                                size_t n_enrollers, const uint8_t *ek_ca, size_t ca_len,
                                mt_tpm2_record *out, mt_err *err)
{
    if (!buf || !out || (n_enrollers && !enrollers))
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_record_verify: NULL argument");
    memset(out, 0, sizeof *out);
    mt_err e;
    mt_err_clear(&e);
    json_t *doc = mt_json_parse((const char *)buf, len, MT_TPM2_RECORD_MAX, 4, &e);
    if (!doc)
        return mt_err_set(err, MT_EINVAL, "enrolment record: %s", e.msg);
    static const char *const keys[] = {"mesatee_tpm2_enrolment", "tpm2_ak", "ak_public",
                                       "ek_cert", "enrolled_at", "enroller", "signature", NULL};
    uint8_t *ak = NULL, *ek = NULL, *spki = NULL, *sig = NULL, *tbs = NULL, *claimed = NULL;
    size_t akl = 0, ekl = 0, sl = 0, gl = 0, tl = 0, cl = 0;
    int64_t ver = 0, at = 0;
    const char *ts = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    mt_status st;
    if ((st = mt_json_only_keys(doc, keys, &e)) != MT_OK ||
        (st = mt_json_int(doc, "mesatee_tpm2_enrolment", RECORD_VERSION, RECORD_VERSION, &ver,
                          &e)) != MT_OK ||
        (st = rec_hex(doc, "tpm2_ak", 32, &claimed, &cl, &e)) != MT_OK ||
        (st = rec_hex(doc, "ak_public", MT_TPM2_AK_PUBLIC_MAX, &ak, &akl, &e)) != MT_OK ||
        (st = rec_hex(doc, "ek_cert", MT_TPM2_EK_CERT_MAX, &ek, &ekl, &e)) != MT_OK ||
        (st = rec_hex(doc, "enroller", ENROLLER_SPKI_MAX, &spki, &sl, &e)) != MT_OK ||
        (st = rec_hex(doc, "signature", RECORD_SIG_MAX, &sig, &gl, &e)) != MT_OK ||
        (st = mt_json_str(doc, "enrolled_at", 40, &ts, &e)) != MT_OK ||
        (st = mt_attest_time_parse(ts, &at, &e)) != MT_OK)
        goto out;
    if (!sha256_of(spki, sl, out->enroller_sha256)) {
        st = mt_err_set(&e, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    bool trusted = false;
    for (size_t i = 0; i < n_enrollers; i++)
        if (memcmp(enrollers[i], out->enroller_sha256, 32) == 0)
            trusted = true;
    if (!trusted) {
        char hex[65];
        mt_hex_encode(out->enroller_sha256, 32, hex);
        st = mt_err_set(&e, MT_EAUTH, "signed by enroller %s, which is not a trusted enroller",
                        hex);
        goto out;
    }
    const unsigned char *p = spki;
    key = d2i_PUBKEY(NULL, &p, (long)sl);
    if (!key || p != spki + sl || !is_p256(key)) {
        st = mt_err_set(&e, MT_EINVAL, "field 'enroller': not an ECDSA P-256 public key");
        goto out;
    }
    if ((st = record_tbs(ak, akl, ek, ekl, at, spki, sl, &tbs, &tl, &e)) != MT_OK)
        goto out;
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestVerify(md, sig, gl, tbs, tl) != 1) {
        st = mt_err_set(&e, MT_EAUTH, "the enroller's signature does not verify");
        goto out;
    }
    if ((st = ak_spki_hash(ak, akl, out->ak_sha256, &e)) != MT_OK)
        goto out;
    if (cl != 32 || memcmp(claimed, out->ak_sha256, 32) != 0) {
        st = mt_err_set(&e, MT_EINVAL, "field 'tpm2_ak' is not the hash of 'ak_public'");
        goto out;
    }
    if ((st = cert_load(ek, ekl, "EK certificate", &cert, &e)) != MT_OK)
        goto out;
    if (ek_ca && (st = ek_chain_verify(cert, ek_ca, ca_len, at, &e)) != MT_OK)
        goto out;
    out->ek_chain_checked = ek_ca != NULL;
    (void)sha256_of(ek, ekl, out->ek_cert_sha256);
    out->enrolled_at = at;
    st = MT_OK;
out:
    if (st != MT_OK) {
        memset(out, 0, sizeof *out);
        mt_err_set(err, st, "enrolment record: %s", e.msg);
    }
    json_decref(doc);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    X509_free(cert);
    free(ak);
    free(ek);
    free(spki);
    free(sig);
    free(tbs);
    free(claimed);
    ERR_clear_error();
    return st;
}

/* ---- enrolment in two places: saved state ------------------------------- */

#define STATE_VERSION 1

mt_status mt_tpm2_enroll_save(const mt_tpm2_enroll *e, char **out, mt_err *err)
{
    if (!e || !out)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_enroll_save: NULL argument");
    *out = NULL;
    if (e->used)
        return mt_err_set(err, MT_EINVAL, "the enrolment was already answered");
    char ts[32];
    mt_time_format(e->at, ts);
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "mesatee_tpm2_enrol_state", json_integer(STATE_VERSION)) ||
        !json_hex(o, "secret", e->secret, sizeof e->secret) ||
        !json_hex(o, "ak_public", e->ak_public, e->ak_public_len) ||
        !json_hex(o, "ek_cert", e->ek_der, e->ek_der_len) ||
        json_object_set_new(o, "enrolled_at", json_string(ts)) ||
        !(*out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        json_decref(o);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    json_decref(o);
    return MT_OK;
}

mt_status mt_tpm2_enroll_load(const uint8_t *buf, size_t len, mt_tpm2_enroll **out, mt_err *err)
{
    if (!buf || !out)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_enroll_load: NULL argument");
    *out = NULL;
    mt_err e2;
    mt_err_clear(&e2);
    json_t *doc = mt_json_parse((const char *)buf, len, MT_TPM2_RECORD_MAX, 4, &e2);
    if (!doc)
        return mt_err_set(err, MT_EINVAL, "enrolment state: %s", e2.msg);
    static const char *const keys[] = {"mesatee_tpm2_enrol_state", "secret", "ak_public",
                                       "ek_cert", "enrolled_at", NULL};
    uint8_t *sec = NULL, *ak = NULL, *ek = NULL;
    size_t sl = 0, akl = 0, ekl = 0;
    int64_t ver = 0, at = 0;
    const char *ts = NULL;
    mt_tpm2_enroll *e = NULL;
    mt_status st;
    if ((st = mt_json_only_keys(doc, keys, &e2)) != MT_OK ||
        (st = mt_json_int(doc, "mesatee_tpm2_enrol_state", STATE_VERSION, STATE_VERSION, &ver,
                          &e2)) != MT_OK ||
        (st = rec_hex(doc, "secret", CRED_SECRET_LEN, &sec, &sl, &e2)) != MT_OK ||
        (st = rec_hex(doc, "ak_public", MT_TPM2_AK_PUBLIC_MAX, &ak, &akl, &e2)) != MT_OK ||
        (st = rec_hex(doc, "ek_cert", MT_TPM2_EK_CERT_MAX, &ek, &ekl, &e2)) != MT_OK ||
        (st = mt_json_str(doc, "enrolled_at", 40, &ts, &e2)) != MT_OK ||
        (st = mt_attest_time_parse(ts, &at, &e2)) != MT_OK)
        goto out;
    if (sl != CRED_SECRET_LEN) {
        st = mt_err_set(&e2, MT_EINVAL, "field 'secret' is not %d bytes", CRED_SECRET_LEN);
        goto out;
    }
    if (!(e = calloc(1, sizeof *e))) {
        st = mt_err_set(&e2, MT_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(e->secret, sec, sl);
    memcpy(e->ak_public, ak, akl);
    e->ak_public_len = akl;
    memcpy(e->ek_der, ek, ekl);
    e->ek_der_len = ekl;
    e->at = at;
    *out = e;
    st = MT_OK;
out:
    if (st != MT_OK)
        mt_err_set(err, st, "enrolment state: %s", e2.msg);
    if (sec)
        mt_wipe(sec, sl);
    free(sec);
    free(ak);
    free(ek);
    json_decref(doc); /* holds the secret's hex: jansson frees it unwiped */
    return st;
}
