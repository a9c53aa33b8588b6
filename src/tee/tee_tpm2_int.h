/* tee_tpm2_int: what tee_tpm2.c shares with the other TPM files of the tee
 * module (tee_tpm2_nv.c). Not installed. */
#ifndef TEE_TPM2_INT_H
#define TEE_TPM2_INT_H

#include "tee_tpm2.h"

#ifdef MT_HAVE_TSS2
#include <tss2/tss2_esys.h>
/* The attester's ESYS context (borrowed; the caller serialises). */
ESYS_CONTEXT *mt_tpm2_attester_esys(mt_tpm2_attester *a);
#endif

#endif
