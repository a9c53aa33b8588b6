/* p11_import: the key material of a C_CreateObject template, as transit
 * import takes it (docs/keystore.md, "PKCS#11 module", "Objects"): 32 raw
 * bytes for an AES-256 secret key, PKCS#8 DER for an EC (P-256, P-384),
 * Ed25519 or RSA (2048, 3072, 4096 bits, e = 65537) private key. libmesatee
 * wraps it for the KeyStore's wrapping key before it leaves the process.
 *
 * The template is the caller's: every attribute is read through its length
 * (pValue may be NULL with ulValueLen 0). RSA keys must carry all CRT
 * components and pass OpenSSL's key check, EC scalars must lie in the
 * curve's range.
 * Ownership: *der is a heap buffer the caller wipes and frees
 * (p11_import_free). Errors: a CKR_ code (CKR_TEMPLATE_INCOMPLETE for a
 * missing attribute, CKR_ATTRIBUTE_VALUE_INVALID for a bad value or a key
 * transit does not hold, CKR_HOST_MEMORY). Thread-safety: none needed (no
 * state). */
#ifndef MT_P11_IMPORT_H
#define MT_P11_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "p11_resp.h"
/* last: p11-kit's pkcs11.h defines macros on common lower-case words */
#include "p11_defs.h"

CK_RV p11_import_material(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_CLASS cls,
                          p11_ktype *type, uint8_t **der, size_t *der_len);
void p11_import_free(uint8_t *der, size_t der_len);

#endif
