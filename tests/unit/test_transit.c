/* Unit tests of the transit API's crypto core and input readers
 * (src/keystore/transit): AEAD (a NIST GCM vector, round trips, tampering,
 * AAD), signatures of every type checked with plain OpenSSL, HMAC and digest
 * known answers, KEK sealing, BYOK import, key material checks, and the
 * readers of names, vault:vN: strings, base64 and request items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_secmem.h"
#include "mt_transit.h"
#include "mt_transit_parse.h"

static void unhex(const char *h, uint8_t *out)
{
    for (size_t i = 0; h[2 * i]; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
}

/* ---- types ------------------------------------------------------------------ */

static void test_types(void **state)
{
    (void)state;
    for (int t = MT_TK_AES256_GCM96; t <= MT_TK_ECDSA_P521; t++)
        assert_int_equal(mt_tk_type_parse(mt_tk_type_name((mt_tk_type)t)), t);
    assert_int_equal(mt_tk_type_parse("des"), MT_TK_NONE);
    assert_int_equal(mt_tk_type_parse("ecdsa-p224"), MT_TK_NONE);
    assert_true(mt_tk_type_signs(MT_TK_ECDSA_P521));
    assert_false(mt_tk_type_encrypts(MT_TK_ECDSA_P521));
    assert_true(mt_tk_type_derives(MT_TK_CHACHA20_POLY1305));
    assert_false(mt_tk_type_derives(MT_TK_RSA_2048));
    assert_int_equal(mt_tk_type_parse(NULL), MT_TK_NONE);
    assert_true(mt_tk_type_encrypts(MT_TK_CHACHA20_POLY1305));
    assert_false(mt_tk_type_encrypts(MT_TK_HMAC));
    assert_true(mt_tk_type_encrypts(MT_TK_RSA_2048));
    assert_false(mt_tk_type_encrypts(MT_TK_ECDSA_P256));
    assert_false(mt_tk_type_encrypts(MT_TK_ED25519));
    assert_true(mt_tk_type_signs(MT_TK_ED25519));
    assert_false(mt_tk_type_signs(MT_TK_AES256_GCM96));
    mt_tk_hash h;
    assert_true(mt_tk_hash_parse("sha3-384", &h));
    assert_int_equal(h, MT_TH_SHA3_384);
    assert_int_equal(mt_tk_hash_len(h), 48);
    assert_false(mt_tk_hash_parse("md5", &h));
    mt_tk_sigalg sa;
    mt_tk_marshal m;
    assert_true(mt_tk_sigalg_parse("pkcs1v15", &sa));
    assert_false(mt_tk_sigalg_parse("raw", &sa));
    assert_true(mt_tk_marshal_parse("jws", &m));
    assert_false(mt_tk_marshal_parse("der", &m));
}

/* ---- AEAD --------------------------------------------------------------------- */

/* GCM spec test case 14: K = 0^256, IV = 0^96, P = 0^128. */
static void test_gcm_vector(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, ct[12 + 16 + 16] = {0};
    unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919", ct + 12);
    mt_tk_key *k = NULL;
    mt_err err;
    assert_int_equal(mt_tk_key_from_material(MT_TK_AES256_GCM96, key, 32, &k, &err), MT_OK);
    uint8_t *pt = NULL;
    size_t n = 0;
    assert_int_equal(mt_tk_decrypt(k, ct, sizeof ct, NULL, 0, &pt, &n, &err), MT_OK);
    assert_int_equal(n, 16);
    uint8_t zero[16] = {0};
    assert_memory_equal(pt, zero, 16);
    mt_secmem_free(pt);
    ct[20] ^= 1;
    assert_int_equal(mt_tk_decrypt(k, ct, sizeof ct, NULL, 0, &pt, &n, &err), MT_ECRYPTO);
    assert_string_equal(err.msg, "decryption failed");
    assert_null(pt);
    mt_tk_key_free(k);
}

static void aead_roundtrip(mt_tk_type t)
{
    mt_tk_key *k = NULL;
    mt_err err;
    assert_int_equal(mt_tk_key_generate(t, &k, &err), MT_OK);
    const uint8_t msg[] = "transit", aad[] = "hdr";
    uint8_t *ct = NULL, *pt = NULL;
    size_t cn = 0, pn = 0;
    assert_int_equal(mt_tk_encrypt(k, msg, 7, aad, 3, &ct, &cn, &err), MT_OK);
    assert_int_equal(cn, 12 + 7 + 16);
    assert_int_equal(mt_tk_decrypt(k, ct, cn, aad, 3, &pt, &pn, &err), MT_OK);
    assert_int_equal(pn, 7);
    assert_memory_equal(pt, msg, 7);
    mt_secmem_free(pt);
    /* wrong or missing AAD, every tampered byte, short input */
    assert_int_equal(mt_tk_decrypt(k, ct, cn, NULL, 0, &pt, &pn, &err), MT_ECRYPTO);
    assert_int_equal(mt_tk_decrypt(k, ct, cn, (const uint8_t *)"hdx", 3, &pt, &pn, &err),
                     MT_ECRYPTO);
    for (size_t i = 0; i < cn; i++) {
        ct[i] ^= 0x80;
        assert_int_equal(mt_tk_decrypt(k, ct, cn, aad, 3, &pt, &pn, &err), MT_ECRYPTO);
        ct[i] ^= 0x80;
    }
    assert_int_equal(mt_tk_decrypt(k, ct, 27, aad, 3, &pt, &pn, &err), MT_ECRYPTO);
    /* empty plaintext */
    free(ct);
    assert_int_equal(mt_tk_encrypt(k, NULL, 0, NULL, 0, &ct, &cn, &err), MT_OK);
    assert_int_equal(cn, 28);
    assert_int_equal(mt_tk_decrypt(k, ct, cn, NULL, 0, &pt, &pn, &err), MT_OK);
    assert_int_equal(pn, 0);
    mt_secmem_free(pt);
    free(ct);
    mt_tk_key_free(k);
}

static void test_aead(void **state)
{
    (void)state;
    aead_roundtrip(MT_TK_AES256_GCM96);
    aead_roundtrip(MT_TK_CHACHA20_POLY1305);
    mt_tk_key *k = NULL;
    mt_err err;
    uint8_t *ct = NULL;
    size_t cn = 0;
    assert_int_equal(mt_tk_key_generate(MT_TK_ECDSA_P256, &k, &err), MT_OK);
    assert_int_equal(mt_tk_encrypt(k, (const uint8_t *)"x", 1, NULL, 0, &ct, &cn, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not support encryption"));
    mt_tk_key_free(k);
}

/* k's public key read back with plain OpenSSL from its PEM. */
static EVP_PKEY *ossl_pub(const mt_tk_key *k)
{
    char *pem = NULL;
    mt_err err;
    assert_int_equal(mt_tk_public_pem(k, &pem, &err), MT_OK);
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(pub);
    return pub;
}

/* RSA-OAEP-SHA256 (Vault's RSA encryption): round trip; a ciphertext made by
 * plain OpenSSL with the public PEM decrypts; limits and tampering. */
static void test_rsa_oaep(void **state)
{
    (void)state;
    mt_tk_key *k = NULL;
    mt_err err;
    uint8_t *ct = NULL, *pt = NULL;
    size_t cn = 0, pn = 0;
    static const uint8_t msg[] = "rsa oaep message";
    assert_int_equal(mt_tk_key_generate(MT_TK_RSA_2048, &k, &err), MT_OK);
    assert_int_equal(mt_tk_encrypt(k, msg, sizeof msg, NULL, 0, &ct, &cn, &err), MT_OK);
    assert_int_equal(cn, 256);
    assert_int_equal(mt_tk_decrypt(k, ct, cn, NULL, 0, &pt, &pn, &err), MT_OK);
    assert_int_equal(pn, sizeof msg);
    assert_memory_equal(pt, msg, pn);
    mt_secmem_free(pt);
    /* randomised: a second encryption differs */
    uint8_t *ct2 = NULL;
    size_t cn2 = 0;
    assert_int_equal(mt_tk_encrypt(k, msg, sizeof msg, NULL, 0, &ct2, &cn2, &err), MT_OK);
    assert_true(cn2 == cn && memcmp(ct, ct2, cn) != 0);
    free(ct2);
    /* tampered, truncated */
    ct[100] ^= 1;
    assert_int_equal(mt_tk_decrypt(k, ct, cn, NULL, 0, &pt, &pn, &err), MT_ECRYPTO);
    assert_string_equal(err.msg, "decryption failed");
    assert_null(pt);
    ct[100] ^= 1;
    assert_int_equal(mt_tk_decrypt(k, ct, cn - 1, NULL, 0, &pt, &pn, &err), MT_ECRYPTO);
    free(ct);
    ct = NULL;
    /* associated data refused; the plaintext limit is modulus - 66 */
    assert_int_equal(mt_tk_encrypt(k, msg, sizeof msg, (const uint8_t *)"a", 1, &ct, &cn, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "associated_data"));
    uint8_t big[191] = {0};
    assert_int_equal(mt_tk_encrypt(k, big, 190, NULL, 0, &ct, &cn, &err), MT_OK);
    free(ct);
    assert_int_equal(mt_tk_encrypt(k, big, 191, NULL, 0, &ct, &cn, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "at most 190 bytes"));
    assert_int_equal(mt_tk_encrypt(k, NULL, 0, NULL, 0, &ct, &cn, &err), MT_OK);
    assert_int_equal(mt_tk_decrypt(k, ct, cn, NULL, 0, &pt, &pn, &err), MT_OK);
    assert_int_equal(pn, 0);
    mt_secmem_free(pt);
    free(ct);
    /* plain OpenSSL with the public key, SHA-256 / MGF1-SHA-256 */
    EVP_PKEY *pub = ossl_pub(k);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pub, NULL);
    uint8_t oc[256];
    size_t ol = sizeof oc;
    assert_true(pc && EVP_PKEY_encrypt_init(pc) == 1 &&
                EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
                EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) == 1 &&
                EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) == 1 &&
                EVP_PKEY_encrypt(pc, oc, &ol, msg, sizeof msg) == 1);
    EVP_PKEY_CTX_free(pc);
    assert_int_equal(mt_tk_decrypt(k, oc, ol, NULL, 0, &pt, &pn, &err), MT_OK);
    assert_memory_equal(pt, msg, sizeof msg);
    mt_secmem_free(pt);
    /* the same with SHA-1 OAEP (another client's default) does not decrypt */
    pc = EVP_PKEY_CTX_new(pub, NULL);
    ol = sizeof oc;
    assert_true(pc && EVP_PKEY_encrypt_init(pc) == 1 &&
                EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
                EVP_PKEY_encrypt(pc, oc, &ol, msg, sizeof msg) == 1);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pub);
    assert_int_equal(mt_tk_decrypt(k, oc, ol, NULL, 0, &pt, &pn, &err), MT_ECRYPTO);
    mt_tk_key_free(k);
    /* rsa-4096: the limit follows the modulus */
    assert_int_equal(mt_tk_key_generate(MT_TK_RSA_4096, &k, &err), MT_OK);
    uint8_t big4[446] = {0};
    assert_int_equal(mt_tk_encrypt(k, big4, 446, NULL, 0, &ct, &cn, &err), MT_OK);
    assert_int_equal(cn, 512);
    free(ct);
    assert_int_equal(mt_tk_encrypt(k, big4, 447, NULL, 0, &ct, &cn, &err), MT_EINVAL);
    mt_tk_key_free(k);
}

/* ---- signatures ------------------------------------------------------------------ */

/* Verifies sig with plain OpenSSL from the key's public PEM. */
static bool ossl_verify(const mt_tk_key *k, const EVP_MD *md, int pad, const uint8_t *msg,
                        size_t n, const uint8_t *sig, size_t sl)
{
    EVP_PKEY *pub = ossl_pub(k);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    bool ok = EVP_DigestVerifyInit(mc, &pc, md, NULL, pub) == 1;
    if (ok && pad) {
        EVP_PKEY_CTX_set_rsa_padding(pc, pad);
        if (pad == RSA_PKCS1_PSS_PADDING)
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_AUTO);
    }
    ok = ok && EVP_DigestVerify(mc, sig, sl, msg, n) == 1;
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(pub);
    return ok;
}

static void test_sign(void **state)
{
    (void)state;
    static const mt_tk_type ts[] = {MT_TK_ECDSA_P256, MT_TK_ECDSA_P384, MT_TK_ECDSA_P521,
                                    MT_TK_ED25519, MT_TK_RSA_2048};
    const uint8_t msg[] = "message to sign";
    mt_err err;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        mt_tk_key *k = NULL;
        assert_int_equal(mt_tk_key_generate(ts[i], &k, &err), MT_OK);
        bool rsa = ts[i] == MT_TK_RSA_2048, ed = ts[i] == MT_TK_ED25519;
        for (int sa = 0; sa < (rsa ? 3 : 1); sa++) {
            uint8_t *sig = NULL;
            size_t sl = 0;
            bool valid = false;
            assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_384, false, (mt_tk_sigalg)sa, MT_TM_ASN1,
                                        msg, 15, &sig, &sl, &err),
                             MT_OK);
            int pad = !rsa ? 0 : sa == MT_TS_PKCS1V15 ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING;
            assert_true(ossl_verify(k, ed ? NULL : EVP_sha384(), pad, msg, 15, sig, sl));
            assert_int_equal(mt_tk_verify(k, MT_TH_SHA2_384, false, (mt_tk_sigalg)sa, MT_TM_ASN1,
                                          msg, 15, sig, sl, &valid, &err),
                             MT_OK);
            assert_true(valid);
            assert_int_equal(mt_tk_verify(k, MT_TH_SHA2_384, false, (mt_tk_sigalg)sa, MT_TM_ASN1,
                                          msg, 14, sig, sl, &valid, &err),
                             MT_OK);
            assert_false(valid);
            free(sig);
        }
        /* prehashed: the digest signs like the data (not ed25519) */
        uint8_t dg[32];
        unsigned int dl = 0;
        EVP_Digest(msg, 15, dg, &dl, EVP_sha256(), NULL);
        uint8_t *sig = NULL;
        size_t sl = 0;
        mt_status want = ed ? MT_EINVAL : MT_OK;
        assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_256, true, MT_TS_DEFAULT, MT_TM_ASN1, dg, 32,
                                    &sig, &sl, &err),
                         want);
        if (!ed) {
            assert_true(ossl_verify(k, EVP_sha256(), rsa ? RSA_PKCS1_PSS_PADDING : 0, msg, 15,
                                    sig, sl));
            free(sig);
            /* a digest of the wrong length */
            assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_256, true, MT_TS_DEFAULT, MT_TM_ASN1, dg,
                                        31, &sig, &sl, &err),
                             MT_EINVAL);
        }
        if (!rsa)
            assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_256, false, MT_TS_PSS, MT_TM_ASN1, msg, 15,
                                        &sig, &sl, &err),
                             MT_EINVAL);
        mt_tk_key_free(k);
    }
    /* ECDSA jws: r||s, verifies in that form */
    mt_tk_key *k = NULL;
    assert_int_equal(mt_tk_key_generate(MT_TK_ECDSA_P384, &k, &err), MT_OK);
    uint8_t *sig = NULL;
    size_t sl = 0;
    bool valid = false;
    assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_256, false, MT_TS_DEFAULT, MT_TM_JWS, msg, 15, &sig,
                                &sl, &err),
                     MT_OK);
    assert_int_equal(sl, 96);
    assert_int_equal(mt_tk_verify(k, MT_TH_SHA2_256, false, MT_TS_DEFAULT, MT_TM_JWS, msg, 15, sig,
                                  sl, &valid, &err),
                     MT_OK);
    assert_true(valid);
    assert_int_equal(mt_tk_verify(k, MT_TH_SHA2_256, false, MT_TS_DEFAULT, MT_TM_JWS, msg, 15, sig,
                                  95, &valid, &err),
                     MT_OK);
    assert_false(valid);
    free(sig);
    mt_tk_key_free(k);
    /* signing with an AES key */
    assert_int_equal(mt_tk_key_generate(MT_TK_AES256_GCM96, &k, &err), MT_OK);
    assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_256, false, MT_TS_DEFAULT, MT_TM_ASN1, msg, 15, &sig,
                                &sl, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not support signing"));
    mt_tk_key_free(k);
}

/* ---- HMAC, digests ----------------------------------------------------------------------- */

static void test_hmac_digest(void **state)
{
    (void)state;
    mt_err err;
    uint8_t out[64], want[64];
    size_t n = 0;
    /* sha2-256("abc") */
    assert_int_equal(mt_tk_digest(MT_TH_SHA2_256, (const uint8_t *)"abc", 3, out, &n, &err), MT_OK);
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want);
    assert_int_equal(n, 32);
    assert_memory_equal(out, want, 32);
    assert_int_equal(mt_tk_digest(MT_TH_NONE, (const uint8_t *)"abc", 3, out, &n, &err), MT_EINVAL);
    /* an hmac key is its material */
    uint8_t m[20];
    memset(m, 0x0b, sizeof m);
    mt_tk_key *k = NULL;
    assert_int_equal(mt_tk_key_from_material(MT_TK_HMAC, m, 20, &k, &err), MT_OK);
    assert_int_equal(mt_tk_hmac(k, MT_TH_SHA2_256, (const uint8_t *)"Hi There", 8, out, &n, &err),
                     MT_OK);
    /* RFC 4231 test case 1 */
    unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want);
    assert_int_equal(n, 32);
    assert_memory_equal(out, want, 32);
    mt_tk_key_free(k);
    assert_int_equal(mt_tk_key_from_material(MT_TK_HMAC, m, 15, &k, &err), MT_EINVAL);
    /* other types: a key derived from the material, not the material */
    uint8_t a[32] = {1};
    assert_int_equal(mt_tk_key_from_material(MT_TK_AES256_GCM96, a, 32, &k, &err), MT_OK);
    assert_int_equal(mt_tk_hmac(k, MT_TH_SHA2_256, (const uint8_t *)"x", 1, out, &n, &err), MT_OK);
    unsigned int wl = 0;
    HMAC(EVP_sha256(), a, 32, (const uint8_t *)"x", 1, want, &wl);
    assert_memory_not_equal(out, want, 32);
    mt_tk_key_free(k);
}

/* ---- sealing, material, import ---------------------------------------------------------------- */

static void test_seal(void **state)
{
    (void)state;
    uint8_t kek[32] = {7}, m[40];
    memset(m, 0x5a, sizeof m);
    mt_err err;
    uint8_t *w = NULL, *o = NULL;
    size_t wl = 0, ol = 0;
    assert_int_equal(mt_tk_seal(kek, (const uint8_t *)"aad", 3, m, 40, &w, &wl, &err), MT_OK);
    assert_int_equal(wl, 1 + 12 + 40 + 16);
    assert_int_equal(w[0], 1);
    assert_int_equal(mt_tk_open(kek, (const uint8_t *)"aad", 3, w, wl, &o, &ol, &err), MT_OK);
    assert_int_equal(ol, 40);
    assert_memory_equal(o, m, 40);
    mt_secmem_free(o);
    assert_int_equal(mt_tk_open(kek, (const uint8_t *)"aae", 3, w, wl, &o, &ol, &err), MT_ECRYPTO);
    assert_string_equal(err.msg, "key unwrap failed");
    w[0] = 2;
    assert_int_equal(mt_tk_open(kek, (const uint8_t *)"aad", 3, w, wl, &o, &ol, &err), MT_ECRYPTO);
    w[0] = 1;
    kek[0] ^= 1;
    assert_int_equal(mt_tk_open(kek, (const uint8_t *)"aad", 3, w, wl, &o, &ol, &err), MT_ECRYPTO);
    assert_int_equal(mt_tk_open(kek, (const uint8_t *)"aad", 3, w, 10, &o, &ol, &err), MT_ECRYPTO);
    free(w);
}

static void test_material(void **state)
{
    (void)state;
    mt_err err;
    for (int t = MT_TK_AES256_GCM96; t <= MT_TK_ECDSA_P521; t++) {
        if (t == MT_TK_RSA_3072 || t == MT_TK_RSA_4096)
            continue; /* slow key generation; the same code as rsa-2048 */
        mt_tk_key *k = NULL, *k2 = NULL;
        assert_int_equal(mt_tk_key_generate((mt_tk_type)t, &k, &err), MT_OK);
        uint8_t *m = NULL;
        size_t n = 0;
        assert_int_equal(mt_tk_key_material(k, &m, &n, &err), MT_OK);
        assert_int_equal(mt_tk_key_from_material((mt_tk_type)t, m, n, &k2, &err), MT_OK);
        char *p1 = NULL, *p2 = NULL;
        assert_int_equal(mt_tk_public_text(k, &p1, &err), MT_OK);
        assert_int_equal(mt_tk_public_text(k2, &p2, &err), MT_OK);
        assert_string_equal(p1, p2);
        if (mt_tk_type_asymmetric((mt_tk_type)t)) {
            assert_true(strlen(p1) > 0);
            assert_null(strstr(p1, "PRIVATE"));
            /* the DER of one type is not a key of another */
            mt_tk_type other = t == MT_TK_ECDSA_P256 ? MT_TK_ECDSA_P384 : MT_TK_ECDSA_P256;
            mt_tk_key *k3 = NULL;
            assert_int_equal(mt_tk_key_from_material(other, m, n, &k3, &err), MT_EINVAL);
            assert_null(k3);
            assert_int_equal(mt_tk_key_from_material((mt_tk_type)t, m, n - 1, &k3, &err),
                             MT_EINVAL);
        } else {
            assert_string_equal(p1, "");
        }
        free(p1);
        free(p2);
        mt_secmem_free(m);
        mt_tk_key_free(k);
        mt_tk_key_free(k2);
    }
    mt_tk_key *k = NULL;
    uint8_t b[31] = {0};
    assert_int_equal(mt_tk_key_from_material(MT_TK_AES256_GCM96, b, 31, &k, &err), MT_EINVAL);
    assert_int_equal(mt_tk_key_from_material(MT_TK_ED25519, b, 31, &k, &err), MT_EINVAL);
    assert_int_equal(mt_tk_key_generate(MT_TK_NONE, &k, &err), MT_EINVAL);
}

static void test_import(void **state)
{
    (void)state;
    mt_err err;
    mt_tk_key *w = NULL, *other = NULL;
    assert_int_equal(mt_tk_key_generate(MT_TK_RSA_2048, &w, &err), MT_OK);
    assert_int_equal(mt_tk_key_generate(MT_TK_RSA_2048, &other, &err), MT_OK);
    char *pem = NULL;
    assert_int_equal(mt_tk_public_pem(w, &pem, &err), MT_OK);
    uint8_t m[32];
    memset(m, 0x42, sizeof m);
    for (int h = MT_TH_SHA2_256; h <= MT_TH_SHA2_512; h++) {
        uint8_t *blob = NULL, *o = NULL;
        size_t bl = 0, ol = 0;
        assert_int_equal(mt_tk_import_wrap(pem, (mt_tk_hash)h, m, 32, &blob, &bl, &err), MT_OK);
        assert_int_equal(bl, 256 + 40);
        assert_int_equal(mt_tk_import_unwrap(w, (mt_tk_hash)h, blob, bl, &o, &ol, &err), MT_OK);
        assert_int_equal(ol, 32);
        assert_memory_equal(o, m, 32);
        mt_secmem_free(o);
        /* another wrapping key, another hash, truncation, tampering */
        assert_int_equal(mt_tk_import_unwrap(other, (mt_tk_hash)h, blob, bl, &o, &ol, &err),
                         MT_ECRYPTO);
        assert_int_equal(mt_tk_import_unwrap(w, h == MT_TH_SHA2_256 ? MT_TH_SHA2_384 : MT_TH_SHA2_256,
                                             blob, bl, &o, &ol, &err),
                         MT_ECRYPTO);
        assert_int_equal(mt_tk_import_unwrap(w, (mt_tk_hash)h, blob, bl - 8, &o, &ol, &err),
                         MT_ECRYPTO);
        assert_int_equal(mt_tk_import_unwrap(w, (mt_tk_hash)h, blob, bl - 3, &o, &ol, &err),
                         MT_EINVAL);
        assert_int_equal(mt_tk_import_unwrap(w, (mt_tk_hash)h, blob, 200, &o, &ol, &err),
                         MT_EINVAL);
        blob[bl - 1] ^= 1;
        assert_int_equal(mt_tk_import_unwrap(w, (mt_tk_hash)h, blob, bl, &o, &ol, &err),
                         MT_ECRYPTO);
        assert_null(o);
        free(blob);
    }
    uint8_t *blob = NULL;
    size_t bl = 0;
    assert_int_equal(mt_tk_import_wrap("not a pem", MT_TH_SHA2_256, m, 32, &blob, &bl, &err),
                     MT_EINVAL);
    free(pem);
    mt_tk_key_free(w);
    mt_tk_key_free(other);
}

/* ---- readers ------------------------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    assert_true(mt_tp_name_valid("k1"));
    assert_true(mt_tp_name_valid("My.Key-2_x"));
    assert_false(mt_tp_name_valid(""));
    assert_false(mt_tp_name_valid("."));
    assert_false(mt_tp_name_valid(".."));
    assert_false(mt_tp_name_valid("a/b"));
    assert_false(mt_tp_name_valid("a:b"));
    assert_false(mt_tp_name_valid("a b"));
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(mt_tp_name_valid(long_name));
    long_name[64] = '\0';
    assert_true(mt_tp_name_valid(long_name));
    char owner[65], name[MT_TP_NAME_MAX + 1];
    assert_true(mt_tp_key_ref("k1", owner, name));
    assert_string_equal(owner, "");
    assert_string_equal(name, "k1");
    assert_true(mt_tp_key_ref("alice:k1", owner, name));
    assert_string_equal(owner, "alice");
    assert_string_equal(name, "k1");
    assert_false(mt_tp_key_ref("Alice:k1", owner, name)); /* usernames are lower case */
    assert_false(mt_tp_key_ref(":k1", owner, name));
    assert_false(mt_tp_key_ref("alice:", owner, name));
    assert_false(mt_tp_key_ref("a:b:c", owner, name));
    assert_false(mt_tp_key_ref(NULL, owner, name));
    char seg[32];
    assert_true(mt_tp_segment("/sha2-256", seg, sizeof seg));
    assert_string_equal(seg, "sha2-256");
    assert_false(mt_tp_segment("/a/b", seg, sizeof seg));
    assert_false(mt_tp_segment("sha", seg, sizeof seg));
    assert_false(mt_tp_segment("/", seg, sizeof seg));
}

static void test_b64_vault(void **state)
{
    (void)state;
    mt_err err;
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(mt_tp_b64("f", "aGk=", 10, false, &b, &n, &err), MT_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(b, "hi", 2);
    free(b);
    assert_int_equal(mt_tp_b64("f", "", 10, false, &b, &n, &err), MT_OK);
    assert_int_equal(n, 0);
    free(b);
    assert_int_equal(mt_tp_b64("f", "aGl=", 10, false, &b, &n, &err), MT_EINVAL); /* non-canonical */
    assert_int_equal(mt_tp_b64("f", "aGk", 10, false, &b, &n, &err), MT_EINVAL);  /* no padding */
    assert_int_equal(mt_tp_b64("f", "aG!=", 10, false, &b, &n, &err), MT_EINVAL);
    assert_int_equal(mt_tp_b64("f", "a=k=", 10, false, &b, &n, &err), MT_EINVAL);
    assert_int_equal(mt_tp_b64("f", "aGVsbG8=", 4, false, &b, &n, &err), MT_ETOOBIG);
    assert_non_null(strstr(err.msg, "field 'f'"));
    uint32_t v = 0;
    assert_int_equal(mt_tp_vault_parse("c", "vault:v12:aGk=", false, &v, &b, &n, &err), MT_OK);
    assert_int_equal(v, 12);
    assert_int_equal(n, 2);
    free(b);
    static const char *const bad[] = {"vault:v0:aGk=", "vault:v01:aGk=", "vault:v1aGk=",
                                      "vault:1:aGk=",  "vault:v1:",      "vault:v1:aGk",
                                      "Vault:v1:aGk=", "vault:v99999999:aGk=",
                                      "vault:v1000001:aGk=", "vault:v1:a-k="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mt_tp_vault_parse("c", bad[i], false, &v, &b, &n, &err), MT_EINVAL);
    assert_int_equal(mt_tp_vault_parse("c", "vault:v1:a-_k", true, &v, &b, &n, &err), MT_OK);
    free(b);
    uint8_t raw[5] = {0xfb, 0xff, 0xfe, 1, 2};
    for (int url = 0; url < 2; url++) {
        char *s = mt_tp_vault_format(3, raw, 5, url);
        assert_int_equal(mt_tp_vault_parse("c", s, url, &v, &b, &n, &err), MT_OK);
        assert_int_equal(v, 3);
        assert_int_equal(n, 5);
        assert_memory_equal(b, raw, 5);
        free(b);
        free(s);
    }
    char *u = mt_tp_b64url_encode(raw, 5);
    assert_string_equal(u, "-__-AQI");
    free(u);
}

static json_t *js(const char *s)
{
    mt_err err;
    json_t *j = mt_json_parse(s, strlen(s), 1 << 20, 16, &err);
    assert_non_null(j);
    return j;
}

static void test_batch(void **state)
{
    (void)state;
    mt_err err;
    mt_tp_batch bt;
    json_t *j = js("{\"plaintext\":\"aGk=\",\"associated_data\":\"eA==\",\"key_version\":2}");
    assert_int_equal(mt_tp_batch_parse(j, MT_TP_ENCRYPT, &bt, &err), MT_OK);
    assert_int_equal(bt.n, 1);
    assert_false(bt.batch);
    assert_int_equal(bt.items[0].len, 2);
    assert_int_equal(bt.items[0].aad_len, 1);
    assert_int_equal(bt.items[0].key_version, 2);
    mt_tp_batch_free(&bt);
    json_decref(j);
    j = js("{\"batch_input\":[{\"ciphertext\":\"vault:v2:AAAA\",\"reference\":\"r1\"},"
           "{\"ciphertext\":\"vault:v1:AAAA\"}]}");
    assert_int_equal(mt_tp_batch_parse(j, MT_TP_DECRYPT, &bt, &err), MT_OK);
    assert_true(bt.batch);
    assert_int_equal(bt.n, 2);
    assert_int_equal(bt.items[0].data_version, 2);
    assert_string_equal(bt.items[0].reference, "r1");
    assert_string_equal(bt.items[1].reference, "");
    mt_tp_batch_free(&bt);
    json_decref(j);
    /* errors name the field and the item */
    static const struct {
        const char *body;
        mt_tp_op op;
        const char *msg;
    } bad[] = {
        {"{\"batch_input\":[{\"ciphertext\":\"vault:v1:AAAA\"},{\"ciphertext\":\"x\"}]}",
         MT_TP_DECRYPT, "batch_input[1]: field 'ciphertext'"},
        {"{\"batch_input\":[]}", MT_TP_ENCRYPT, "non-empty"},
        {"{\"batch_input\":[{\"plaintext\":\"aGk=\",\"extra\":1}]}", MT_TP_ENCRYPT, "extra"},
        {"{\"input\":\"aGk=\",\"context\":\"eA==\"}", MT_TP_SIGN, "encryption only"},
        {"{\"plaintext\":\"aGk=\",\"context\":\"e\"}", MT_TP_ENCRYPT, "context"},
        {"{\"plaintext\":\"aGk=\",\"nonce\":\"eA==\"}", MT_TP_ENCRYPT, "convergent"},
        {"{}", MT_TP_ENCRYPT, "'plaintext' is required"},
        {"{\"input\":\"aGk=\"}", MT_TP_VERIFY, "exactly one"},
        {"{\"input\":\"aGk=\",\"signature\":\"a\",\"hmac\":\"b\"}", MT_TP_VERIFY, "exactly one"},
        {"{\"input\":\"aGk=\",\"associated_data\":\"eA==\"}", MT_TP_SIGN, "encryption only"},
        {"{\"input\":\"aGk=\",\"key_version\":-1}", MT_TP_HMAC, "key_version"},
        {"{\"input\":\"aGk=\",\"key_version\":\"1x\"}", MT_TP_HMAC, "key_version"},
        {"{\"plaintext\":7}", MT_TP_ENCRYPT, "plaintext"},
        {"[]", MT_TP_ENCRYPT, "JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = js(bad[i].body);
        mt_err_clear(&err);
        assert_int_not_equal(mt_tp_batch_parse(j, bad[i].op, &bt, &err), MT_OK);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("%s: message '%s' lacks '%s'", bad[i].body, err.msg, bad[i].msg);
        assert_null(bt.items);
        json_decref(j);
    }
    /* the batch limit */
    json_t *arr = json_array();
    for (int i = 0; i < MT_TP_MAX_BATCH + 1; i++)
        json_array_append_new(arr, json_pack("{s:s}", "plaintext", "aGk="));
    j = json_pack("{s:o}", "batch_input", arr);
    assert_int_equal(mt_tp_batch_parse(j, MT_TP_ENCRYPT, &bt, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "1000"));
    json_array_remove(arr, 0);
    assert_int_equal(mt_tp_batch_parse(j, MT_TP_ENCRYPT, &bt, &err), MT_OK);
    assert_int_equal(bt.n, MT_TP_MAX_BATCH);
    mt_tp_batch_free(&bt);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),    cmocka_unit_test(test_gcm_vector),
        cmocka_unit_test(test_aead),     cmocka_unit_test(test_sign),
        cmocka_unit_test(test_hmac_digest), cmocka_unit_test(test_seal),
        cmocka_unit_test(test_material), cmocka_unit_test(test_import),
        cmocka_unit_test(test_names),    cmocka_unit_test(test_b64_vault),
        cmocka_unit_test(test_batch),    cmocka_unit_test(test_rsa_oaep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
