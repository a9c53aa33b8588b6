/* Fuzz target: the PKCS#11 module's reader of C_CreateObject templates
 * (p11_import_material, src/pkcs11/p11_import.c).
 * Input: byte 0 picks the class (0 private key, 1 secret key, else that
 * value), then records tag(1) len(2, big-endian) value(len) become template
 * attributes (tag picks among the attributes the reader knows; a 1-byte
 * CKA_KEY_TYPE value picks EC / Edwards / RSA / AES, other lengths are passed
 * as they are).
 * Invariants: a refusal leaves no output; an accepted secret key is 32 bytes
 * of AES material; an accepted private key is PKCS#8 DER that OpenSSL parses
 * back into a key of the reported type. */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p11_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const CK_ATTRIBUTE_TYPE tags[] = {
    CKA_KEY_TYPE,    CKA_EC_PARAMS,        CKA_VALUE,       CKA_VALUE_LEN,  CKA_MODULUS,
    CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,    CKA_EXPONENT_1,
    CKA_EXPONENT_2,  CKA_COEFFICIENT,      CKA_LABEL,
};
#define NTAGS (sizeof tags / sizeof tags[0])
#define MAXA 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    CK_OBJECT_CLASS cls = data[0] == 0 ? CKO_PRIVATE_KEY : data[0] == 1 ? CKO_SECRET_KEY : data[0];
    CK_ATTRIBUTE t[MAXA];
    CK_KEY_TYPE kts[MAXA];
    CK_ULONG n = 0;
    size_t i = 1;
    while (n < MAXA && i + 3 <= size) {
        CK_ATTRIBUTE_TYPE a = tags[data[i] % NTAGS];
        size_t len = ((size_t)data[i + 1] << 8) | data[i + 2];
        i += 3;
        if (len > size - i)
            len = size - i;
        t[n].type = a;
        t[n].pValue = len ? (void *)(data + i) : NULL;
        t[n].ulValueLen = len;
        if (a == CKA_KEY_TYPE && len == 1) {
            static const CK_KEY_TYPE pick[] = {CKK_EC, CKK_EC_EDWARDS, CKK_RSA, CKK_AES};
            kts[n] = data[i] < 4 ? pick[data[i]] : data[i];
            t[n].pValue = &kts[n];
            t[n].ulValueLen = sizeof kts[n];
        }
        i += len;
        n++;
    }
    p11_ktype type = P11_KT_OTHER;
    uint8_t *der = (uint8_t *)1;
    size_t dl = 7;
    CK_RV rv = p11_import_material(t, n, cls, &type, &der, &dl);
    if (rv != CKR_OK) {
        if (der || dl || type != P11_KT_OTHER)
            abort();
        return 0;
    }
    if (!der || !dl)
        abort();
    if (cls == CKO_SECRET_KEY) {
        if (type != P11_KT_AES256_GCM96 || dl != 32)
            abort();
    } else {
        const unsigned char *p = der;
        EVP_PKEY *pk = d2i_AutoPrivateKey(NULL, &p, (long)dl);
        if (!pk || p != der + dl)
            abort();
        int id = EVP_PKEY_get_base_id(pk);
        int want = type == P11_KT_ED25519                                   ? EVP_PKEY_ED25519
                   : type == P11_KT_ECDSA_P256 || type == P11_KT_ECDSA_P384 ? EVP_PKEY_EC
                                                                            : EVP_PKEY_RSA;
        if (id != want || type == P11_KT_AES256_GCM96 || type == P11_KT_OTHER)
            abort();
        EVP_PKEY_free(pk);
    }
    p11_import_free(der, dl);
    return 0;
}
