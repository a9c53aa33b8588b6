/* tee_tpm2_nv: TPM 2.0 NV counters for the KeyStore's rollback detection at
 * level tpm2 (issue 10). Contract in tee_tpm2.h ("NV counter"). */
#include "tee_tpm2.h"

#include <stdio.h>
#include <string.h>

#include "tee_tpm2_int.h"

#ifndef MT_HAVE_TSS2

mt_status mt_tpm2_nv_counter(mt_tpm2_attester *a, mt_tpm2_nv_op op, uint32_t *index,
                             uint64_t *value, mt_err *err)
{
    (void)a, (void)op, (void)index, (void)value;
    return mt_err_set(err, MT_EUNAVAIL, "built without libtss2");
}

#else

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>

#define NV_ATTRS                                                                               \
    (TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA |                                  \
     ((TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) & TPMA_NV_TPM2_NT_MASK))
#define NV_TRIES 16

static mt_status nv_fail(mt_err *err, mt_status code, const char *what, uint32_t index,
                         TSS2_RC rc)
{
    return mt_err_set(err, code, "TPM NV counter 0x%08x: %s failed: %s (0x%x)", (unsigned)index,
                      what, Tss2_RC_Decode(rc), (unsigned)rc);
}

/* The TPM response code without layer, parameter and handle numbers. */
static TSS2_RC rc_base(TSS2_RC rc)
{
    rc &= 0xfff;
    return (rc & TPM2_RC_FMT1) ? (rc & (TPM2_RC_FMT1 | 0x3f)) : rc;
}

/* The ESYS handle of index, checked to be an NV counter (a monotonic
 * index: an ordinary index at the same handle could be written back). */
static mt_status nv_open(ESYS_CONTEXT *e, uint32_t index, ESYS_TR *nv, mt_err *err)
{
    TSS2_RC rc = Esys_TR_FromTPMPublic(e, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nv);
    if (rc != TSS2_RC_SUCCESS) {
        if (rc_base(rc) == TPM2_RC_HANDLE)
            return mt_err_set(err, MT_ENOTFOUND, "TPM NV counter 0x%08x is not defined in this "
                                                 "TPM",
                              (unsigned)index);
        return nv_fail(err, MT_ENOTFOUND, "lookup", index, rc);
    }
    TPM2B_NV_PUBLIC *pub = NULL;
    TPM2B_NAME *name = NULL;
    rc = Esys_NV_ReadPublic(e, *nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, &name);
    mt_status st = MT_OK;
    if (rc != TSS2_RC_SUCCESS)
        st = nv_fail(err, MT_EIO, "read public", index, rc);
    else if (((pub->nvPublic.attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT) !=
                 TPM2_NT_COUNTER ||
             pub->nvPublic.dataSize != 8)
        st = mt_err_set(err, MT_ECONFLICT,
                        "TPM NV index 0x%08x is not a counter (it was redefined)",
                        (unsigned)index);
    Esys_Free(pub);
    Esys_Free(name);
    if (st != MT_OK)
        Esys_TR_Close(e, nv);
    return st;
}

static mt_status nv_read(ESYS_CONTEXT *e, ESYS_TR nv, uint32_t index, uint64_t *value,
                         mt_err *err)
{
    TPM2B_MAX_NV_BUFFER *data = NULL;
    TSS2_RC rc =
        Esys_NV_Read(e, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
    if (rc != TSS2_RC_SUCCESS)
        return nv_fail(err, MT_EIO, "read", index, rc);
    mt_status st = MT_OK;
    if (data->size != 8)
        st = mt_err_set(err, MT_EIO, "TPM NV counter 0x%08x: read %u bytes, not 8",
                        (unsigned)index, (unsigned)data->size);
    uint64_t v = 0;
    for (int i = 0; st == MT_OK && i < 8; i++)
        v = (v << 8) | data->buffer[i];
    Esys_Free(data);
    if (st == MT_OK)
        *value = v;
    return st;
}

static mt_status nv_increment(ESYS_CONTEXT *e, ESYS_TR nv, uint32_t index, mt_err *err)
{
    TSS2_RC rc = Esys_NV_Increment(e, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    return rc == TSS2_RC_SUCCESS ? MT_OK : nv_fail(err, MT_EIO, "increment", index, rc);
}

/* Defines a counter at the first free index from *index on (NV_TRIES
 * tries) and increments it once (a counter is readable only once
 * written; the TPM starts it at the highest value any counter had). */
static mt_status nv_define(ESYS_CONTEXT *e, uint32_t *index, ESYS_TR *nv, mt_err *err)
{
    TPM2B_AUTH auth = {.size = 0};
    TSS2_RC rc = TSS2_RC_SUCCESS;
    for (int i = 0; i < NV_TRIES; i++) {
        TPM2B_NV_PUBLIC pub = {.size = 0,
                               .nvPublic = {.nvIndex = *index + (uint32_t)i,
                                            .nameAlg = TPM2_ALG_SHA256,
                                            .attributes = NV_ATTRS,
                                            .authPolicy = {.size = 0},
                                            .dataSize = 8}};
        rc = Esys_NV_DefineSpace(e, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &auth, &pub, nv);
        if (rc == TSS2_RC_SUCCESS) {
            *index += (uint32_t)i;
            return nv_increment(e, *nv, *index, err);
        }
        if (rc_base(rc) != TPM2_RC_NV_DEFINED)
            break;
    }
    return nv_fail(err, MT_EIO, "define", *index, rc);
}

mt_status mt_tpm2_nv_counter(mt_tpm2_attester *a, mt_tpm2_nv_op op, uint32_t *index,
                             uint64_t *value, mt_err *err)
{
    ESYS_CONTEXT *e = a ? mt_tpm2_attester_esys(a) : NULL;
    if (!e || !index || !value)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_nv_counter: bad argument");
    ESYS_TR nv = ESYS_TR_NONE;
    mt_status st = op == MT_TPM2_NV_DEFINE ? nv_define(e, index, &nv, err)
                                           : nv_open(e, *index, &nv, err);
    if (st == MT_OK && op == MT_TPM2_NV_INCREMENT)
        st = nv_increment(e, nv, *index, err);
    if (st == MT_OK)
        st = nv_read(e, nv, *index, value, err);
    if (nv != ESYS_TR_NONE)
        Esys_TR_Close(e, &nv);
    return st;
}

#endif
