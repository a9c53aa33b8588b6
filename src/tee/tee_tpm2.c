/* tee_tpm2: TPM 2.0 attester over tss2 ESAPI. See tee_tpm2.h. */
#include "tee_tpm2.h"
#include "tee_tpm2_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_log.h"
#include "mt_tpm2.h"
#include "mt_util.h"

void mt_tpm2_expected_pcr(const uint8_t digest[32], uint8_t out[32])
{
    uint8_t buf[64] = {0};
    unsigned int n = 0;
    memcpy(buf + 32, digest, 32);
    if (EVP_Digest(buf, sizeof buf, out, &n, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

mt_status mt_tee_tpm2_open(const char *measurement_hex, mt_tpm2_attester **out, mt_err *err)
{
    *out = NULL;
    uint8_t m[32];
    if (!measurement_hex || mt_hex_decode(measurement_hex, m, sizeof m, NULL) != MT_OK)
        return mt_err_set(err, MT_EINTERNAL, "level tpm2: no daemon measurement to extend");
    unsigned pcr = MT_TPM2_DEFAULT_PCR;
    const char *env = getenv("MESATEE_TPM2_PCR");
    if (env && *env) {
        char *end = NULL;
        unsigned long v = strtoul(env, &end, 10);
        if (*end || v < 8 || v > 23)
            return mt_err_set(err, MT_EINVAL,
                              "MESATEE_TPM2_PCR=\"%.16s\" is not a PCR index from 8 to 23", env);
        pcr = (unsigned)v;
    }
    mt_tpm2_attester *a = NULL;
    mt_status st = mt_tpm2_attester_open(NULL, pcr, &a, err);
    if (st != MT_OK)
        return st;
    if ((st = mt_tpm2_attester_extend(a, m, true, err)) != MT_OK) {
        mt_tpm2_attester_free(a);
        return st;
    }
    mt_info("TEE level tpm2: measurement sha256:%s extended into PCR %u (after reset); "
            "sealing keys stay software-derived (HKDF) at this level",
            measurement_hex, pcr);
    *out = a;
    return MT_OK;
}

mt_status mt_tpm2_attester_enrol(mt_tpm2_attester *a, const uint8_t *ek_cert, size_t ek_len,
                                 const uint8_t *ek_ca, size_t ca_len, int64_t at,
                                 EVP_PKEY *enroller, char **record, mt_err *err)
{
    if (!a || !ek_ca || !enroller || !record)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_attester_enrol: NULL argument");
    *record = NULL;
    const uint8_t *ak = NULL, *blob = NULL, *sec = NULL;
    size_t akl = 0, bl = 0, sl = 0, al = 0;
    uint8_t answer[64];
    mt_status st;
    if (!ek_cert && (st = mt_tpm2_attester_ek_cert(a, &ek_cert, &ek_len, err)) != MT_OK)
        return st;
    mt_tpm2_attester_ak_public(a, &ak, &akl);
    mt_tpm2_enroll *e = NULL;
    if ((st = mt_tpm2_enroll_begin(ek_cert, ek_len, ek_ca, ca_len, at, ak, akl, &e, err)) !=
        MT_OK)
        return st;
    mt_tpm2_enroll_challenge(e, &blob, &bl, &sec, &sl);
    if ((st = mt_tpm2_attester_activate(a, blob, bl, sec, sl, answer, &al, err)) == MT_OK &&
        (st = mt_tpm2_enroll_finish(e, answer, al, err)) == MT_OK)
        st = mt_tpm2_enroll_record(e, enroller, record, err);
    mt_wipe(answer, sizeof answer);
    mt_tpm2_enroll_free(e);
    return st;
}

#ifndef MT_HAVE_TSS2

struct mt_tpm2_attester {
    int unused;
};

mt_status mt_tpm2_attester_open(const char *tcti, unsigned pcr, mt_tpm2_attester **out, mt_err *err)
{
    (void)tcti;
    (void)pcr;
    *out = NULL;
    return mt_err_set(err, MT_EUNAVAIL,
                      "TEE level tpm2 is unavailable: mesatee was built without libtss2 "
                      "(install libtss2-dev and rebuild)");
}
void mt_tpm2_attester_free(mt_tpm2_attester *a)
{
    free(a);
}
unsigned mt_tpm2_attester_pcr(const mt_tpm2_attester *a)
{
    (void)a;
    return MT_TPM2_DEFAULT_PCR;
}
void mt_tpm2_attester_ak_public(const mt_tpm2_attester *a, const uint8_t **buf, size_t *len)
{
    (void)a;
    *buf = NULL;
    *len = 0;
}
mt_status mt_tpm2_attester_ek_cert(const mt_tpm2_attester *a, const uint8_t **der, size_t *len,
                                   mt_err *err)
{
    (void)a;
    *der = NULL;
    *len = 0;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}
mt_status mt_tpm2_attester_activate(mt_tpm2_attester *a, const uint8_t *cb, size_t cbl,
                                    const uint8_t *s, size_t sl, uint8_t out[64], size_t *out_len,
                                    mt_err *err)
{
    (void)a, (void)cb, (void)cbl, (void)s, (void)sl, (void)out;
    *out_len = 0;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}
mt_status mt_tpm2_attester_extend(mt_tpm2_attester *a, const uint8_t digest[32], bool reset,
                                  mt_err *err)
{
    (void)a, (void)digest, (void)reset;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}
mt_status mt_tpm2_attester_seal(mt_tpm2_attester *a, const uint8_t *data, size_t len,
                                uint8_t **blob, size_t *blob_len, mt_err *err)
{
    (void)a, (void)data, (void)len;
    *blob = NULL;
    *blob_len = 0;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}
mt_status mt_tpm2_sealed_blob_check(const uint8_t *blob, size_t len, mt_err *err)
{
    (void)blob, (void)len;
    return mt_err_set(err, MT_EUNAVAIL, "level tpm2 needs a build with tss2 (libtss2-dev)");
}

mt_status mt_tpm2_attester_unseal(mt_tpm2_attester *a, const uint8_t *blob, size_t len,
                                  uint8_t *out, size_t cap, size_t *out_len, mt_err *err)
{
    (void)a, (void)blob, (void)len, (void)out, (void)cap;
    *out_len = 0;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}
mt_status mt_tpm2_attester_quote(mt_tpm2_attester *a, const uint8_t *rd, size_t len, uint8_t **out,
                                 size_t *out_len, mt_err *err)
{
    (void)a, (void)rd, (void)len;
    *out = NULL;
    *out_len = 0;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}

#else /* MT_HAVE_TSS2 */

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define DEFAULT_TCTI "device:/dev/tpmrm0"
#define NV_CHUNK 512
#define EK_CERT_MAX 4096
#define QUOTE_TRIES 3

struct mt_tpm2_attester {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR ek, ak;
    unsigned pcr;
    uint8_t ak_pub[sizeof(TPMT_PUBLIC)];
    size_t ak_pub_len;
    uint8_t *ek_cert;
    size_t ek_cert_len;
    char tcti_conf[128];
};

ESYS_CONTEXT *mt_tpm2_attester_esys(mt_tpm2_attester *a)
{
    return a->esys;
}

/* err from a TSS2 return code, naming the operation. */
static mt_status tss_fail(mt_err *err, mt_status code, const char *what, TSS2_RC rc)
{
    return mt_err_set(err, code, "TPM %s failed: %s (0x%x)", what, Tss2_RC_Decode(rc),
                      (unsigned)rc);
}

/* TCG EK Credential Profile template L-1: RSA 2048, AES-128-CFB, SHA-256,
 * PolicySecret(TPM_RH_ENDORSEMENT) as the admin policy. */
static void ek_template(TPM2B_PUBLIC *t)
{
    static const uint8_t policy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8,
                                       0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
                                       0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64,
                                       0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};
    memset(t, 0, sizeof *t);
    TPMT_PUBLIC *p = &t->publicArea;
    p->type = TPM2_ALG_RSA;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p->authPolicy.size = sizeof policy;
    memcpy(p->authPolicy.buffer, policy, sizeof policy);
    p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
    p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.rsaDetail.keyBits = 2048;
    p->parameters.rsaDetail.exponent = 0;
    p->unique.rsa.size = 256;
}

/* ECC P-256 restricted signing key, ECDSA/SHA-256, user auth empty. */
static void ak_template(TPM2B_PUBLIC *t)
{
    memset(t, 0, sizeof *t);
    TPMT_PUBLIC *p = &t->publicArea;
    p->type = TPM2_ALG_ECC;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* A primary key from tmpl in hierarchy (ESYS_TR_RH_ENDORSEMENT, _OWNER):
 * *out on success, ESYS_TR_NONE and an error naming what on failure. */
static mt_status create_primary(mt_tpm2_attester *a, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl,
                                ESYS_TR *out, TPM2B_PUBLIC **pub, const char *what, mt_err *err)
{
    TPM2B_SENSITIVE_CREATE sens;
    TPM2B_DATA outside;
    TPML_PCR_SELECTION creation;
    memset(&sens, 0, sizeof sens);
    memset(&outside, 0, sizeof outside);
    memset(&creation, 0, sizeof creation);
    TPM2B_CREATION_DATA *cd = NULL;
    TPM2B_DIGEST *ch = NULL;
    TPMT_TK_CREATION *tk = NULL;
    TSS2_RC rc =
        Esys_CreatePrimary(a->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                           tmpl, &outside, &creation, out, pub, &cd, &ch, &tk);
    Esys_Free(cd);
    Esys_Free(ch);
    Esys_Free(tk);
    if (rc != TSS2_RC_SUCCESS) {
        *out = ESYS_TR_NONE;
        return tss_fail(err, MT_EIO, what, rc);
    }
    return MT_OK;
}

/* Reads the EK certificate from NV if present (absence is not an error). */
static mt_status read_ek_cert(mt_tpm2_attester *a, mt_err *err)
{
    ESYS_TR nv = ESYS_TR_NONE;
    TPM2B_NV_PUBLIC *np = NULL;
    TPM2B_NAME *nn = NULL;
    TSS2_RC rc = Esys_TR_FromTPMPublic(a->esys, MT_TPM2_NV_EK_RSA_CERT, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, &nv);
    if (rc != TSS2_RC_SUCCESS)
        return MT_OK; /* no EK certificate in this TPM */
    mt_status st = MT_OK;
    rc = Esys_NV_ReadPublic(a->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &np, &nn);
    if (rc != TSS2_RC_SUCCESS) {
        st = tss_fail(err, MT_EIO, "NV_ReadPublic of the EK certificate", rc);
        goto out;
    }
    size_t size = np->nvPublic.dataSize;
    if (size == 0 || size > EK_CERT_MAX) {
        st = mt_err_set(err, MT_EINVAL, "TPM EK certificate NV index holds %zu bytes", size);
        goto out;
    }
    a->ek_cert = malloc(size);
    if (!a->ek_cert) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t off = 0; off < size;) {
        uint16_t n = (uint16_t)(size - off > NV_CHUNK ? NV_CHUNK : size - off);
        TPM2B_MAX_NV_BUFFER *data = NULL;
        rc = Esys_NV_Read(a->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                          (uint16_t)off, &data);
        if (rc != TSS2_RC_SUCCESS || data->size != n) {
            Esys_Free(data);
            st = tss_fail(err, MT_EIO, "NV_Read of the EK certificate", rc);
            goto out;
        }
        memcpy(a->ek_cert + off, data->buffer, n);
        Esys_Free(data);
        off += n;
    }
    /* The NV area may be larger than the DER certificate. */
    size_t der = size;
    if (size >= 4 && a->ek_cert[0] == 0x30 && a->ek_cert[1] == 0x82)
        der = 4 + ((size_t)a->ek_cert[2] << 8 | a->ek_cert[3]);
    a->ek_cert_len = der <= size ? der : size;
out:
    Esys_Free(np);
    Esys_Free(nn);
    Esys_TR_Close(a->esys, &nv);
    return st;
}

mt_status mt_tpm2_attester_open(const char *tcti, unsigned pcr, mt_tpm2_attester **out, mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_attester_open: NULL argument");
    *out = NULL;
    if (pcr < 8 || pcr > 23)
        return mt_err_set(err, MT_EINVAL,
                          "TPM application PCR %u is out of range (8 to 23; 0-7 are the boot "
                          "PCRs)",
                          pcr);
    if (!tcti || !*tcti)
        tcti = getenv("MESATEE_TPM2_TCTI");
    if (!tcti || !*tcti)
        tcti = DEFAULT_TCTI;
    mt_tpm2_attester *a = calloc(1, sizeof *a);
    if (!a)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    a->ek = a->ak = ESYS_TR_NONE;
    a->pcr = pcr;
    snprintf(a->tcti_conf, sizeof a->tcti_conf, "%s", tcti);
    mt_status st;
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &a->tcti);
    if (rc != TSS2_RC_SUCCESS) {
        st = mt_err_set(err, MT_EUNAVAIL,
                        "cannot reach the TPM through TCTI \"%.64s\": %s (set MESATEE_TPM2_TCTI, "
                        "e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321)",
                        tcti, Tss2_RC_Decode(rc));
        goto fail;
    }
    rc = Esys_Initialize(&a->esys, a->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        st = tss_fail(err, MT_EUNAVAIL, "ESAPI initialisation", rc);
        goto fail;
    }
    rc = Esys_Startup(a->esys, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && (rc & 0xfff) != TPM2_RC_INITIALIZE) {
        st = tss_fail(err, MT_EUNAVAIL, "Startup", rc);
        goto fail;
    }
    TPM2B_PUBLIC tmpl, *pub = NULL;
    ek_template(&tmpl);
    if ((st = create_primary(a, ESYS_TR_RH_ENDORSEMENT, &tmpl, &a->ek, &pub,
                             "EK creation (CreatePrimary)", err)) != MT_OK)
        goto fail;
    Esys_Free(pub);
    pub = NULL;
    ak_template(&tmpl);
    if ((st = create_primary(a, ESYS_TR_RH_ENDORSEMENT, &tmpl, &a->ak, &pub,
                             "AK creation (CreatePrimary)", err)) != MT_OK)
        goto fail;
    size_t off = 0;
    rc = Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, a->ak_pub, sizeof a->ak_pub, &off);
    Esys_Free(pub);
    if (rc != TSS2_RC_SUCCESS) {
        st = tss_fail(err, MT_EINTERNAL, "marshalling the AK public area", rc);
        goto fail;
    }
    a->ak_pub_len = off;
    if ((st = read_ek_cert(a, err)) != MT_OK)
        goto fail;
    *out = a;
    return MT_OK;
fail:
    mt_tpm2_attester_free(a);
    return st;
}

void mt_tpm2_attester_free(mt_tpm2_attester *a)
{
    if (!a)
        return;
    if (a->esys) {
        if (a->ak != ESYS_TR_NONE)
            Esys_FlushContext(a->esys, a->ak);
        if (a->ek != ESYS_TR_NONE)
            Esys_FlushContext(a->esys, a->ek);
        Esys_Finalize(&a->esys);
    }
    if (a->tcti)
        Tss2_TctiLdr_Finalize(&a->tcti);
    free(a->ek_cert);
    free(a);
}

unsigned mt_tpm2_attester_pcr(const mt_tpm2_attester *a)
{
    return a->pcr;
}

void mt_tpm2_attester_ak_public(const mt_tpm2_attester *a, const uint8_t **buf, size_t *len)
{
    *buf = a->ak_pub;
    *len = a->ak_pub_len;
}

mt_status mt_tpm2_attester_ek_cert(const mt_tpm2_attester *a, const uint8_t **der, size_t *len,
                                   mt_err *err)
{
    *der = a->ek_cert;
    *len = a->ek_cert_len;
    if (!a->ek_cert)
        return mt_err_set(err, MT_ENOTFOUND, "the TPM has no RSA EK certificate at NV index 0x%08x",
                          MT_TPM2_NV_EK_RSA_CERT);
    return MT_OK;
}

mt_status mt_tpm2_attester_activate(mt_tpm2_attester *a, const uint8_t *cred_blob,
                                    size_t cred_blob_len, const uint8_t *secret, size_t secret_len,
                                    uint8_t out[64], size_t *out_len, mt_err *err)
{
    *out_len = 0;
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET sec;
    if (!cred_blob || !secret || cred_blob_len > sizeof blob.credential ||
        secret_len > sizeof sec.secret)
        return mt_err_set(err, MT_EINVAL, "credential challenge is malformed or too large");
    memset(&blob, 0, sizeof blob);
    memset(&sec, 0, sizeof sec);
    blob.size = (uint16_t)cred_blob_len;
    memcpy(blob.credential, cred_blob, cred_blob_len);
    sec.size = (uint16_t)secret_len;
    memcpy(sec.secret, secret, secret_len);

    /* The EK's admin policy: PolicySecret(TPM_RH_ENDORSEMENT). */
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    ESYS_TR sess = ESYS_TR_NONE;
    TSS2_RC rc =
        Esys_StartAuthSession(a->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &sess);
    if (rc != TSS2_RC_SUCCESS)
        return tss_fail(err, MT_EIO, "StartAuthSession", rc);
    mt_status st = MT_OK;
    TPM2B_NONCE empty_nonce = {0};
    TPM2B_DIGEST empty_cp = {0};
    TPM2B_TIMEOUT *to = NULL;
    TPMT_TK_AUTH *tk = NULL;
    TPM2B_DIGEST *info = NULL;
    rc = Esys_PolicySecret(a->esys, ESYS_TR_RH_ENDORSEMENT, sess, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &empty_nonce, &empty_cp, &empty_nonce, 0, &to, &tk);
    Esys_Free(to);
    Esys_Free(tk);
    if (rc != TSS2_RC_SUCCESS) {
        st = tss_fail(err, MT_EIO, "PolicySecret(endorsement)", rc);
        goto out;
    }
    rc = Esys_ActivateCredential(a->esys, a->ak, a->ek, ESYS_TR_PASSWORD, sess, ESYS_TR_NONE, &blob,
                                 &sec, &info);
    if (rc != TSS2_RC_SUCCESS) {
        st = tss_fail(err, MT_EAUTH,
                      "ActivateCredential (the challenge is not for this TPM's EK and AK)", rc);
        goto out;
    }
    if (info->size > 64) {
        st = mt_err_set(err, MT_EINVAL, "activated credential is over 64 bytes");
        goto out;
    }
    memcpy(out, info->buffer, info->size);
    *out_len = info->size;
out:
    if (info)
        mt_wipe(info, sizeof *info);
    Esys_Free(info);
    Esys_FlushContext(a->esys, sess); /* may already be gone; harmless */
    return st;
}

mt_status mt_tpm2_attester_extend(mt_tpm2_attester *a, const uint8_t digest[32], bool reset,
                                  mt_err *err)
{
    ESYS_TR pcr = ESYS_TR_PCR0 + a->pcr;
    TSS2_RC rc;
    if (reset && (rc = Esys_PCR_Reset(a->esys, pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                      ESYS_TR_NONE)) != TSS2_RC_SUCCESS)
        return tss_fail(err, MT_EIO, "PCR_Reset (is the PCR resettable at locality 0?)", rc);
    TPML_DIGEST_VALUES d;
    memset(&d, 0, sizeof d);
    d.count = 1;
    d.digests[0].hashAlg = TPM2_ALG_SHA256;
    memcpy(d.digests[0].digest.sha256, digest, 32);
    rc = Esys_PCR_Extend(a->esys, pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d);
    if (rc != TSS2_RC_SUCCESS)
        return tss_fail(err, MT_EIO, "PCR_Extend", rc);
    return MT_OK;
}

/* PCRs 0-7 and the application PCR of the SHA-256 bank. */
static void quote_selection(const mt_tpm2_attester *a, TPML_PCR_SELECTION *sel)
{
    memset(sel, 0, sizeof *sel);
    sel->count = 1;
    sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel->pcrSelections[0].sizeofSelect = 3;
    sel->pcrSelections[0].pcrSelect[0] = 0xff;
    sel->pcrSelections[0].pcrSelect[a->pcr / 8] |= (uint8_t)(1u << (a->pcr % 8));
}

/* Reads every selected PCR into pcrs (PCR_Read returns at most 8 a call). */
static mt_status read_pcrs(mt_tpm2_attester *a, const TPML_PCR_SELECTION *want, mt_tpm2_pcrs *pcrs,
                           mt_err *err)
{
    memset(pcrs, 0, sizeof *pcrs);
    TPML_PCR_SELECTION left = *want;
    for (int round = 0; round < 8; round++) {
        bool any = false;
        for (int i = 0; i < 3; i++)
            any |= left.pcrSelections[0].pcrSelect[i] != 0;
        if (!any)
            return MT_OK;
        UINT32 ctr = 0;
        TPML_PCR_SELECTION *got = NULL;
        TPML_DIGEST *vals = NULL;
        TSS2_RC rc = Esys_PCR_Read(a->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &left, &ctr,
                                   &got, &vals);
        if (rc != TSS2_RC_SUCCESS)
            return tss_fail(err, MT_EIO, "PCR_Read", rc);
        size_t k = 0;
        mt_status st = MT_OK;
        for (unsigned i = 0; i < 24 && got->count == 1 && st == MT_OK; i++) {
            if (!(got->pcrSelections[0].pcrSelect[i / 8] & (1u << (i % 8))))
                continue;
            if (k >= vals->count) {
                st = mt_err_set(err, MT_EIO, "TPM PCR_Read returned fewer values than selected");
                break;
            }
            st = mt_tpm2_pcrs_set(pcrs, MT_TPM2_ALG_SHA256, i, vals->digests[k].buffer,
                                  vals->digests[k].size, err);
            k++;
            left.pcrSelections[0].pcrSelect[i / 8] &= (uint8_t) ~(1u << (i % 8));
        }
        bool progress = k > 0;
        Esys_Free(got);
        Esys_Free(vals);
        if (st != MT_OK)
            return st;
        if (!progress)
            return mt_err_set(err, MT_EIO,
                              "TPM PCR_Read returned no values (is the SHA-256 bank active?)");
    }
    return mt_err_set(err, MT_EIO, "TPM PCR_Read did not return every selected PCR");
}

mt_status mt_tpm2_attester_quote(mt_tpm2_attester *a, const uint8_t *report_data, size_t len,
                                 uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > 64 || (!report_data && len))
        return mt_err_set(err, MT_EINVAL, "report data must be 0 to 64 bytes");
    TPM2B_DATA nonce = {.size = 32};
    unsigned int nl = 0;
    if (EVP_Digest(report_data, len, nonce.buffer, &nl, EVP_sha256(), NULL) != 1)
        return mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
    TPML_PCR_SELECTION sel;
    quote_selection(a, &sel);
    TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
    mt_tpm2_evidence *ev = calloc(1, sizeof *ev);
    if (!ev)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status st = MT_EIO;
    for (int attempt = 0; attempt < QUOTE_TRIES; attempt++) {
        TPM2B_ATTEST *quoted = NULL;
        TPMT_SIGNATURE *sig = NULL;
        if ((st = read_pcrs(a, &sel, &ev->pcrs, err)) != MT_OK)
            break;
        TSS2_RC rc = Esys_Quote(a->esys, a->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                &nonce, &scheme, &sel, &quoted, &sig);
        if (rc != TSS2_RC_SUCCESS) {
            st = tss_fail(err, MT_EIO, "Quote", rc);
            break;
        }
        uint8_t sigbuf[sizeof(TPMT_SIGNATURE)];
        size_t sl = 0;
        rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sigbuf, sizeof sigbuf, &sl);
        if (rc != TSS2_RC_SUCCESS) {
            Esys_Free(quoted);
            Esys_Free(sig);
            st = tss_fail(err, MT_EINTERNAL, "marshalling the quote signature", rc);
            break;
        }
        ev->report_data = report_data;
        ev->report_data_len = len;
        ev->attest = quoted->attestationData;
        ev->attest_len = quoted->size;
        ev->sig = sigbuf;
        ev->sig_len = sl;
        ev->ak_public = a->ak_pub;
        ev->ak_public_len = a->ak_pub_len;
        ev->ek_cert = a->ek_cert;
        ev->ek_cert_len = a->ek_cert_len;
        /* Self-check: the PCR values read must be the ones quoted. */
        mt_tpm2_public pub;
        EVP_PKEY *ak = NULL;
        mt_attest_claims *claims = malloc(sizeof *claims);
        mt_tpm2_quote_in in = {.attest = ev->attest,
                               .attest_len = ev->attest_len,
                               .sig = ev->sig,
                               .sig_len = ev->sig_len,
                               .pcrs = &ev->pcrs,
                               .nonce = nonce.buffer,
                               .nonce_len = 32};
        mt_err qerr;
        st = claims ? mt_tpm2_public_parse(a->ak_pub, a->ak_pub_len, &pub, err)
                    : mt_err_set(err, MT_ENOMEM, "out of memory");
        if (st == MT_OK)
            st = mt_tpm2_public_key(&pub, &ak, err);
        if (st == MT_OK) {
            in.ak = ak;
            st = mt_tpm2_quote_verify(&in, claims, &qerr);
            if (st == MT_OK)
                st = mt_tpm2_evidence_encode(ev, out, out_len, err);
            else
                st = mt_err_set(err, MT_EIO,
                                "the TPM quote does not verify against the PCRs just read "
                                "(%s)",
                                qerr.msg);
        }
        EVP_PKEY_free(ak);
        free(claims);
        Esys_Free(quoted);
        Esys_Free(sig);
        if (st == MT_OK || (st != MT_EIO))
            break;
    }
    free(ev);
    return st;
}


/* ---- sealing inside the TPM (issue 10) ---------------------------------- */

/* Storage primary of the owner hierarchy: ECC P-256, AES-128-CFB. */
static void srk_template(TPM2B_PUBLIC *t)
{
    memset(t, 0, sizeof *t);
    TPMT_PUBLIC *p = &t->publicArea;
    p->type = TPM2_ALG_ECC;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                          TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.eccDetail.symmetric.keyBits.aes = 128;
    p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* A TPM without a resource manager (swtpm, /dev/tpm0) has three transient
 * object slots; the EK and AK hold two. The EK is parked (context saved and
 * flushed) while the storage key and a sealed object are loaded, then
 * loaded back. */
static mt_status ek_park(mt_tpm2_attester *a, TPMS_CONTEXT **ctx, mt_err *err)
{
    *ctx = NULL;
    if (a->ek == ESYS_TR_NONE)
        return MT_OK;
    TSS2_RC rc = Esys_ContextSave(a->esys, a->ek, ctx);
    if (rc != TSS2_RC_SUCCESS)
        return tss_fail(err, MT_EIO, "ContextSave (EK)", rc);
    rc = Esys_FlushContext(a->esys, a->ek);
    if (rc != TSS2_RC_SUCCESS) {
        Esys_Free(*ctx);
        *ctx = NULL;
        return tss_fail(err, MT_EIO, "FlushContext (EK)", rc);
    }
    a->ek = ESYS_TR_NONE;
    return MT_OK;
}

static mt_status ek_unpark(mt_tpm2_attester *a, TPMS_CONTEXT *ctx, mt_err *err)
{
    if (!ctx)
        return MT_OK;
    TSS2_RC rc = Esys_ContextLoad(a->esys, ctx, &a->ek);
    Esys_Free(ctx);
    if (rc != TSS2_RC_SUCCESS) {
        a->ek = ESYS_TR_NONE;
        return tss_fail(err, MT_EIO, "ContextLoad (EK)", rc);
    }
    return MT_OK;
}

static mt_status owner_srk(mt_tpm2_attester *a, ESYS_TR *srk, mt_err *err)
{
    TPM2B_PUBLIC tmpl, *pub = NULL;
    srk_template(&tmpl);
    mt_status st = create_primary(a, ESYS_TR_RH_OWNER, &tmpl, srk, &pub,
                                  "storage key creation (owner CreatePrimary)", err);
    Esys_Free(pub);
    return st;
}

static mt_status seal_inner(mt_tpm2_attester *a, const uint8_t *data, size_t len,
                            uint8_t **blob, size_t *blob_len, mt_err *err)
{
    *blob = NULL;
    *blob_len = 0;
    if (!a || !data || len == 0 || len > 128)
        return mt_err_set(err, MT_EINVAL, "TPM seal: 1 to 128 bytes");
    ESYS_TR srk;
    mt_status st = owner_srk(a, &srk, err);
    if (st)
        return st;
    TPM2B_SENSITIVE_CREATE sens;
    TPM2B_PUBLIC tmpl;
    TPM2B_DATA outside;
    TPML_PCR_SELECTION creation;
    memset(&sens, 0, sizeof sens);
    memset(&tmpl, 0, sizeof tmpl);
    memset(&outside, 0, sizeof outside);
    memset(&creation, 0, sizeof creation);
    sens.sensitive.data.size = (UINT16)len;
    memcpy(sens.sensitive.data.buffer, data, len);
    tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
    tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
    tmpl.publicArea.objectAttributes =
        TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH |
        TPMA_OBJECT_NODA;
    tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    TPM2B_PRIVATE *priv = NULL;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_CREATION_DATA *cd = NULL;
    TPM2B_DIGEST *ch = NULL;
    TPMT_TK_CREATION *tk = NULL;
    TSS2_RC rc = Esys_Create(a->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                             &tmpl, &outside, &creation, &priv, &pub, &cd, &ch, &tk);
    mt_wipe(&sens, sizeof sens);
    Esys_FlushContext(a->esys, srk);
    Esys_Free(cd);
    Esys_Free(ch);
    Esys_Free(tk);
    if (rc != TSS2_RC_SUCCESS) {
        Esys_Free(priv);
        Esys_Free(pub);
        return tss_fail(err, MT_EIO, "seal (Create)", rc);
    }
    size_t cap = sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE), off = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
    else if ((rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, b, cap, &off)) != TSS2_RC_SUCCESS ||
             (rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, b, cap, &off)) != TSS2_RC_SUCCESS)
        st = tss_fail(err, MT_EINTERNAL, "marshalling the sealed object", rc);
    Esys_Free(priv);
    Esys_Free(pub);
    if (st) {
        free(b);
        return st;
    }
    *blob = b;
    *blob_len = off;
    return MT_OK;
}

/* Parses and checks a sealed blob (see mt_tpm2_sealed_blob_check). */
static mt_status sealed_blob_parse(const uint8_t *blob, size_t len, TPM2B_PUBLIC *pub,
                                   TPM2B_PRIVATE *priv, mt_err *err)
{
    memset(pub, 0, sizeof *pub);
    memset(priv, 0, sizeof *priv);
    size_t off = 0;
    if (!blob || len == 0 || len > 4096)
        return mt_err_set(err, MT_EINVAL, "TPM sealed blob: %zu bytes (1 to 4096 expected)",
                          blob ? len : 0);
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, len, &off, pub) != TSS2_RC_SUCCESS)
        return mt_err_set(err, MT_EINVAL, "TPM sealed blob: the public part does not parse");
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, len, &off, priv) != TSS2_RC_SUCCESS)
        return mt_err_set(err, MT_EINVAL, "TPM sealed blob: the private part does not parse");
    if (off != len)
        return mt_err_set(err, MT_EINVAL, "TPM sealed blob: %zu bytes after the private part",
                          len - off);
    const TPMT_PUBLIC *p = &pub->publicArea;
    TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
    TPMA_OBJECT never = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT |
                        TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SENSITIVEDATAORIGIN;
    if (p->type != TPM2_ALG_KEYEDHASH || p->nameAlg != TPM2_ALG_SHA256 ||
        (p->objectAttributes & need) != need || (p->objectAttributes & never) != 0 ||
        p->parameters.keyedHashDetail.scheme.scheme != TPM2_ALG_NULL)
        return mt_err_set(err, MT_EINVAL,
                          "TPM sealed blob: not a sealed-data object of this TPM (type, name "
                          "algorithm or attributes)");
    if (priv->size == 0)
        return mt_err_set(err, MT_EINVAL, "TPM sealed blob: empty private part");
    return MT_OK;
}

mt_status mt_tpm2_sealed_blob_check(const uint8_t *blob, size_t len, mt_err *err)
{
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv;
    mt_status st = sealed_blob_parse(blob, len, &pub, &priv, err);
    mt_wipe(&priv, sizeof priv);
    return st;
}

static mt_status unseal_inner(mt_tpm2_attester *a, const uint8_t *blob, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len, mt_err *err)
{
    *out_len = 0;
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv;
    mt_status pst = sealed_blob_parse(blob, len, &pub, &priv, err);
    if (pst)
        return mt_err_prefix(err, pst, "TPM unseal: ");
    ESYS_TR srk, obj = ESYS_TR_NONE;
    mt_status st = owner_srk(a, &srk, err);
    if (st)
        return st;
    TSS2_RC rc = Esys_Load(a->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv,
                           &pub, &obj);
    Esys_FlushContext(a->esys, srk);
    if (rc != TSS2_RC_SUCCESS)
        return mt_err_set(err, MT_ECRYPTO,
                          "this TPM cannot load the sealed object (sealed by another TPM, or "
                          "its owner hierarchy was cleared): %s",
                          Tss2_RC_Decode(rc));
    TPM2B_SENSITIVE_DATA *data = NULL;
    rc = Esys_Unseal(a->esys, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data);
    Esys_FlushContext(a->esys, obj);
    if (rc != TSS2_RC_SUCCESS)
        return tss_fail(err, MT_EIO, "Unseal", rc);
    if (data->size > cap)
        st = mt_err_set(err, MT_EINVAL, "TPM unseal: %u bytes do not fit", (unsigned)data->size);
    else {
        memcpy(out, data->buffer, data->size);
        *out_len = data->size;
    }
    mt_wipe(data, sizeof *data);
    Esys_Free(data);
    return st;
}

mt_status mt_tpm2_attester_seal(mt_tpm2_attester *a, const uint8_t *data, size_t len,
                                uint8_t **blob, size_t *blob_len, mt_err *err)
{
    *blob = NULL;
    *blob_len = 0;
    if (!a)
        return mt_err_set(err, MT_EINVAL, "TPM seal: NULL argument");
    TPMS_CONTEXT *ctx = NULL;
    mt_status st = ek_park(a, &ctx, err);
    if (st)
        return st;
    st = seal_inner(a, data, len, blob, blob_len, err);
    mt_err e2;
    mt_status u = ek_unpark(a, ctx, &e2);
    if (!st && u) {
        *err = e2;
        st = u;
        free(*blob);
        *blob = NULL;
    }
    return st;
}

mt_status mt_tpm2_attester_unseal(mt_tpm2_attester *a, const uint8_t *blob, size_t len,
                                  uint8_t *out, size_t cap, size_t *out_len, mt_err *err)
{
    *out_len = 0;
    if (!a || !blob)
        return mt_err_set(err, MT_EINVAL, "TPM unseal: NULL argument");
    TPMS_CONTEXT *ctx = NULL;
    mt_status st = ek_park(a, &ctx, err);
    if (st)
        return st;
    st = unseal_inner(a, blob, len, out, cap, out_len, err);
    mt_err e2;
    mt_status u = ek_unpark(a, ctx, &e2);
    if (!st && u) {
        *err = e2;
        st = u;
        mt_wipe(out, cap);
        *out_len = 0;
    }
    return st;
}

#endif /* MT_HAVE_TSS2 */
