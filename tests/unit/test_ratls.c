/* Tests of mt_ratls (RA-TLS certificates), mt_soft (soft evidence) and the
 * soft-level producer in mt_tee: the three real CCC interop certificates of
 * ra-tls/PROVENANCE.md at pinned times (plus Gramine's legacy extension), the
 * PROVENANCE negative cases (a changed claims byte, a swapped key), and a
 * soft certificate made by mt_tee and checked end to end. */
#include "test_attest_util.c"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "mt_ratls.h"
#include "mt_soft.h"
#include "mt_tee.h"
#include "mt_x5.h"

#define T_2023_06 1685577600 /* 2023-06-01T00:00:00Z: Gramine and rats-tls PCK valid */
#define T_2024_01 1705276800 /* 2024-01-15T00:00:00Z: Intel SGX SDK PCK valid (from 2023-12-15) */

static uint8_t *read_cert(const char *name, size_t *len)
{
    char rel[128];
    snprintf(rel, sizeof rel, "ra-tls/%s", name);
    return tv_read(rel, len);
}

static X509 *pem_x509(const uint8_t *b, size_t n)
{
    BIO *bio = BIO_new_mem_buf(b, (int)n);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

static void check_interop(const char *file, int64_t at, const char *mrenclave_hex)
{
    TV_REQUIRE();
    size_t n;
    uint8_t *pem = read_cert(file, &n);
    mt_attest_claims c;
    mt_ratls_info info;
    mt_err err;
    mt_status st = mt_ratls_verify_cert(pem, n, MT_RATLS_FORM_CCC, NULL, at, &c, &info, &err);
    if (st != MT_OK)
        fail_msg("%s: %s", file, err.msg);
    assert_int_equal(c.kind, MT_ATTEST_SGX);
    assert_int_equal(info.form, MT_RATLS_FORM_CCC);
    assert_int_equal(info.tag, 60000);
    assert_int_equal(info.claims.hash_alg, 1);
    assert_memory_equal(info.claims.pubkey_hash, info.spki_sha256, 32);
    const mt_attest_measurement *m = mt_attest_claims_measurement(&c, "mrenclave");
    assert_non_null(m);
    char hex[65];
    mt_hex_encode(m->value, 32, hex);
    assert_string_equal(hex, mrenclave_hex);
    /* The same bytes as DER. */
    X509 *x = pem_x509(pem, n);
    uint8_t *der = NULL;
    int dl = i2d_X509(x, &der);
    assert_true(dl > 0);
    assert_int_equal(mt_ratls_verify_cert(der, (size_t)dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL,
                                          &err),
                     MT_OK);
    /* The parsed certificate (what the TLS stack hands over): the same
     * claims and info; a year after notAfter/the PCK, the same refusal. */
    mt_attest_claims c2;
    mt_ratls_info info2;
    assert_int_equal(mt_ratls_verify_x509(x, MT_RATLS_FORM_CCC, NULL, at, &c2, &info2, &err),
                     MT_OK);
    assert_memory_equal(&c, &c2, sizeof c);
    assert_memory_equal(&info, &info2, sizeof info);
    mt_err e1, e2;
    assert_int_equal(mt_ratls_verify_cert(der, (size_t)dl, MT_RATLS_FORM_CCC, NULL,
                                          at + 40 * 366 * 86400LL, &c, NULL, &e1),
                     MT_EAUTH);
    assert_int_equal(mt_ratls_verify_x509(x, MT_RATLS_FORM_CCC, NULL, at + 40 * 366 * 86400LL,
                                          &c2, NULL, &e2),
                     MT_EAUTH);
    assert_string_equal(e1.msg, e2.msg);
    assert_int_equal(c2.kind, 0); /* zeroed */
    OPENSSL_free(der);
    X509_free(x);
    free(pem);
}

static void test_gramine(void **state)
{
    check_interop("ccc-gramine-cert.pem", T_2023_06,
                  "0866e7ca11b9f4efe4bf39b2607f4e1299f111920d96d95719080f01b62b7585");
}

static void test_sgxsdk(void **state)
{
    check_interop("ccc-intel-sgxsdk-cert.pem", T_2024_01,
                  "09e218a4be9dadbf7cdc82c45497d6d4f676d3b75445fc37a376f0b65b47de6a");
}

static void test_ratstls(void **state)
{
    check_interop("ccc-rats-tls-cert.pem", T_2023_06,
                  "38e1b40b8c68186f359c97ecb6a89965d9d8638f2df06fbe18e84d79a266c041");
    /* Expired: 2024-02-22. Today it is refused for its validity. */
    size_t n;
    uint8_t *pem = read_cert("ccc-rats-tls-cert.pem", &n);
    mt_attest_claims c;
    mt_err err;
    assert_int_equal(mt_ratls_verify_cert(pem, n, MT_RATLS_FORM_CCC, NULL, mt_now(), &c, NULL,
                                          &err),
                     MT_EAUTH);
    assert_non_null(strstr(err.msg, "not at"));
    assert_int_equal(c.kind, 0); /* zeroed */
    free(pem);
}

static void test_gramine_legacy(void **state)
{
    TV_REQUIRE();
    size_t n;
    uint8_t *pem = read_cert("ccc-gramine-cert.pem", &n);
    mt_attest_claims c;
    mt_ratls_info info;
    mt_err err;
    mt_status st = mt_ratls_verify_cert(pem, n, MT_RATLS_FORM_LEGACY, NULL, T_2023_06, &c, &info,
                                        &err);
    if (st != MT_OK)
        fail_msg("legacy: %s", err.msg);
    assert_int_equal(info.form, MT_RATLS_FORM_LEGACY);
    assert_memory_equal(c.report_data, info.spki_sha256, 32); /* SPKI hash directly */
    free(pem);
    /* The SGX SDK certificate has no legacy extension (its 1.13.1 copy is not one). */
    pem = read_cert("ccc-intel-sgxsdk-cert.pem", &n);
    assert_int_equal(mt_ratls_verify_cert(pem, n, MT_RATLS_FORM_LEGACY, NULL, T_2024_01, &c, NULL,
                                          &err),
                     MT_ENOTFOUND);
    free(pem);
}

/* ---- negative cases: certificates rebuilt around the real evidence ------- */

/* A certificate with public key `pub`, the extension value ext (OID
 * 2.23.133.5.4.9, non-critical), signed by `signer`; self-issued only when
 * self_issued (then signer must hold pub's private key). DER into *out. */
static bool g_ku_sign_only; /* make_cert adds keyUsage = digitalSignature */

static size_t make_cert(EVP_PKEY *pub, EVP_PKEY *signer, bool self_issued, const uint8_t *ext,
                        size_t ext_len, uint8_t **out)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    ASN1_TIME_set(X509_getm_notBefore(x), 978307200);  /* 2001-01-01 */
    ASN1_TIME_set(X509_getm_notAfter(x), 1924991999);  /* 2030-12-31 */
    X509_NAME *sub = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(sub, "CN", MBSTRING_ASC, (const unsigned char *)"subject", -1, -1,
                               0);
    X509_NAME *iss = X509_NAME_new();
    X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_ASC,
                               (const unsigned char *)(self_issued ? "subject" : "other issuer"),
                               -1, -1, 0);
    X509_set_issuer_name(x, iss);
    X509_NAME_free(iss);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    if (g_ku_sign_only) { /* keyUsage without keyCertSign */
        X509_EXTENSION *ku =
            X509V3_EXT_nconf_nid(NULL, NULL, NID_key_usage, "critical,digitalSignature");
        assert_non_null(ku);
        X509_add_ext(x, ku, -1);
        X509_EXTENSION_free(ku);
    }
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, ext, (int)ext_len);
    ASN1_OBJECT *oid = OBJ_txt2obj(MT_RATLS_OID, 1);
    X509_EXTENSION *xe = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
    assert_non_null(xe);
    X509_add_ext(x, xe, -1);
    X509_EXTENSION_free(xe);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(os);
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    *out = NULL;
    int n = i2d_X509(x, out);
    assert_true(n > 0);
    X509_free(x);
    return (size_t)n;
}

/* The CCC extension value of a test-vector certificate (copied). */
static uint8_t *orig_ext(X509 *x, size_t *len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(MT_RATLS_OID, 1);
    int idx = X509_get_ext_by_OBJ(x, o, -1);
    ASN1_OBJECT_free(o);
    assert_true(idx >= 0);
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(x, idx));
    *len = (size_t)ASN1_STRING_length(os);
    uint8_t *b = malloc(*len);
    memcpy(b, ASN1_STRING_get0_data(os), *len);
    return b;
}

static void test_negative(void **state)
{
    TV_REQUIRE();
    size_t n, el;
    uint8_t *pem = read_cert("ccc-rats-tls-cert.pem", &n);
    X509 *orig = pem_x509(pem, n);
    EVP_PKEY *opub = X509_get0_pubkey(orig);
    uint8_t *ext = orig_ext(orig, &el);
    EVP_PKEY *other = EVP_EC_gen("P-256");
    assert_non_null(other);
    mt_attest_claims c;
    mt_err err;
    uint8_t *der;
    size_t dl;

    /* The original key and extension in a rebuilt certificate issued by
     * another name: every binding holds, but the issuer's signature cannot be
     * checked, so it is refused, and only for that (the issuer check runs
     * last, so the failures below have the stated cause). Before issue 8 this
     * certificate was accepted without any signature check. */
    dl = make_cert(opub, other, false, ext, el, &der);
    mt_status st = mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL, &err);
    assert_int_equal(st, MT_EAUTH);
    tv_assert_msg(&err, "is not self-issued");
    OPENSSL_free(der);

    /* 1. One claims byte changed (in rats-tls' custom claim "key_0"): report
     *    data no longer matches. */
    mt_ratls_ext e;
    assert_int_equal(mt_ratls_ext_parse(ext, el, &e, &err), MT_OK);
    uint8_t *flip = malloc(el);
    memcpy(flip, ext, el);
    size_t coff = (size_t)(e.claims - ext);
    uint8_t *v0 = memmem(flip + coff, e.claims_len, "value_0", 7);
    assert_non_null(v0);
    v0[6] ^= 0x01;
    dl = make_cert(opub, other, false, flip, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL,
                                          &err),
                     MT_EAUTH);
    assert_non_null(strstr(err.msg, "report_data does not hold SHA-256 of the claims"));
    OPENSSL_free(der);

    /* 2. One byte of the pubkey-hash changed: it no longer names the key. */
    memcpy(flip, ext, el);
    uint8_t *ph = memmem(flip + coff, e.claims_len, "pubkey-hash", 11);
    assert_non_null(ph);
    ph[11 + 2 + 4] ^= 0x80; /* bstr(36) head 2 bytes, [1, bstr32] 4 bytes: first hash byte */
    dl = make_cert(opub, other, false, flip, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL,
                                          &err),
                     MT_EAUTH);
    assert_non_null(strstr(err.msg, "pubkey-hash does not match"));
    OPENSSL_free(der);

    /* 3. The key swapped (a self-signed certificate with another key and the
     *    original evidence). */
    dl = make_cert(other, other, true, ext, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL,
                                          &err),
                     MT_EAUTH);
    assert_non_null(strstr(err.msg, "pubkey-hash does not match"));
    OPENSSL_free(der);

    /* 4. A byte of the quote's report_data changed: the quote's signature fails. */
    memcpy(flip, ext, el);
    size_t qoff = (size_t)(e.evidence - ext);
    flip[qoff + 368] ^= 0x01;
    dl = make_cert(opub, other, false, flip, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL,
                                          &err),
                     MT_EAUTH);
    OPENSSL_free(der);

    /* 5. An unknown tag and a critical extension are refused; no extension = none. */
    memcpy(flip, ext, el);
    flip[2] ^= 0x01; /* d9 ea 60 -> d9 ea 61: tag 60001 */
    dl = make_cert(opub, other, false, flip, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL,
                                          &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "60001"));
    OPENSSL_free(der);
    assert_int_equal(mt_ratls_verify_cert(pem, n / 2, MT_RATLS_FORM_CCC, NULL, T_2023_06, &c, NULL,
                                          &err),
                     MT_EINVAL);

    free(flip);
    free(ext);
    EVP_PKEY_free(other);
    X509_free(orig);
    free(pem);
}

/* ---- readers ------------------------------------------------------------ */

static void test_ext_claims_parse(void **state)
{
    uint8_t h[32];
    memset(h, 0xab, sizeof h);
    uint8_t cl[160];
    size_t cn;
    mt_err err;
    assert_int_equal(mt_ratls_claims_encode(h, (const uint8_t *)"nonce-123", 9, cl, sizeof cl, &cn,
                                            &err),
                     MT_OK);
    mt_ratls_claims rc;
    assert_int_equal(mt_ratls_claims_parse(cl, cn, &rc, &err), MT_OK);
    assert_int_equal(rc.hash_alg, 1);
    assert_memory_equal(rc.pubkey_hash, h, 32);
    assert_int_equal(rc.nonce_len, 9);
    /* truncated, trailing, missing pubkey-hash */
    assert_int_equal(mt_ratls_claims_parse(cl, cn - 1, &rc, &err), MT_EINVAL);
    uint8_t more[200];
    memcpy(more, cl, cn);
    more[cn] = 0;
    assert_int_equal(mt_ratls_claims_parse(more, cn + 1, &rc, &err), MT_EINVAL);
    const uint8_t empty_map[] = {0xa0};
    assert_int_equal(mt_ratls_claims_parse(empty_map, 1, &rc, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "no 'pubkey-hash'"));
    /* extension: round trip, then trailing byte and wrong shapes */
    uint8_t *ext = NULL;
    size_t el = 0;
    assert_int_equal(mt_ratls_ext_encode(60000, (const uint8_t *)"quote", 5, cl, cn, &ext, &el,
                                         &err),
                     MT_OK);
    mt_ratls_ext e;
    assert_int_equal(mt_ratls_ext_parse(ext, el, &e, &err), MT_OK);
    assert_int_equal(e.tag, 60000);
    assert_int_equal(e.evidence_len, 5);
    assert_int_equal(e.claims_len, cn);
    assert_int_equal(mt_ratls_ext_parse(ext, el - 1, &e, &err), MT_EINVAL);
    const uint8_t not_tag[] = {0x82, 0x41, 0x00, 0x41, 0x00};
    assert_int_equal(mt_ratls_ext_parse(not_tag, sizeof not_tag, &e, &err), MT_EINVAL);
    const uint8_t three[] = {0xd9, 0xea, 0x60, 0x83, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00};
    assert_int_equal(mt_ratls_ext_parse(three, sizeof three, &e, &err), MT_EINVAL);
    free(ext);
}

/* ---- issue 8, item 5: issuer signature and all 64 bytes of report data ---- */

/* Raw r||s ECDSA P-256/SHA-256 signature of msg. */
static void sign_rs(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t dl = sizeof der;
    assert_non_null(mc);
    assert_int_equal(EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(mc, der, &dl, msg, len), 1);
    EVP_MD_CTX_free(mc);
    const uint8_t *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    assert_non_null(s);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32), 32);
    ECDSA_SIG_free(s);
}

/* A CCC extension for tls_key with soft evidence signed by platform whose
 * report_data = SHA-256(claims) || tail. */
static uint8_t *soft_ext(EVP_PKEY *tls_key, EVP_PKEY *platform, const uint8_t tail[32],
                         size_t *el)
{
    uint8_t *spki = NULL, h[32], claims[160];
    int sl = i2d_PUBKEY(tls_key, &spki);
    unsigned int hl = 0;
    size_t cl = 0;
    mt_err err;
    assert_true(sl > 0);
    assert_int_equal(EVP_Digest(spki, (size_t)sl, h, &hl, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    assert_int_equal(mt_ratls_claims_encode(h, NULL, 0, claims, sizeof claims, &cl, &err), MT_OK);
    mt_soft_evidence e;
    memset(&e, 0, sizeof e);
    e.time = 1700000000;
    memset(e.measurement, 0x11, sizeof e.measurement);
    assert_int_equal(EVP_Digest(claims, cl, e.report_data, &hl, EVP_sha256(), NULL), 1);
    memcpy(e.report_data + 32, tail, 32);
    uint8_t *pk = NULL;
    int pl = i2d_PUBKEY(platform, &pk);
    assert_true(pl > 0 && (size_t)pl <= sizeof e.platform_key);
    memcpy(e.platform_key, pk, (size_t)pl);
    e.platform_key_len = (size_t)pl;
    OPENSSL_free(pk);
    uint8_t tbs[MT_SOFT_EVIDENCE_MAX], ev[MT_SOFT_EVIDENCE_MAX];
    size_t tl = 0, evl = 0;
    assert_int_equal(mt_soft_evidence_encode(&e, 0, tbs, sizeof tbs, &tl, &err), MT_OK);
    sign_rs(platform, tbs, tl, e.signature);
    assert_int_equal(mt_soft_evidence_encode(&e, 1, ev, sizeof ev, &evl, &err), MT_OK);
    uint8_t *ext = NULL;
    assert_int_equal(mt_ratls_ext_encode(MT_RATLS_TAG_SOFT, ev, evl, claims, cl, &ext, el, &err),
                     MT_OK);
    return ext;
}

static void test_issuer_and_report_data(void **state)
{
    (void)state;
    const int64_t at = 1750000000; /* 2025-06-15 */
    EVP_PKEY *k = EVP_EC_gen("P-256"), *platform = EVP_EC_gen("P-256"),
             *other = EVP_EC_gen("P-256");
    assert_true(k && platform && other);
    uint8_t zero[32] = {0}, tail[32] = {0};
    mt_attest_claims c;
    mt_err err;
    uint8_t *der;
    size_t el, dl;

    /* Baseline: self-issued, self-signed, report_data = SHA-256(claims) || 0^32. */
    uint8_t *ext = soft_ext(k, platform, zero, &el);
    dl = make_cert(k, k, true, ext, el, &der);
    if (mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL, &err) != MT_OK)
        fail_msg("baseline: %s", err.msg);
    OPENSSL_free(der);

    /* Issued by another name and signed by another key: refused (was accepted
     * without any signature check). */
    dl = make_cert(k, other, false, ext, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "is not self-issued");
    assert_int_equal(c.report_data_len, 0); /* no claims on failure */
    OPENSSL_free(der);

    /* Self-issued by name, signed by another key, keyUsage without
     * keyCertSign: X509_check_issued called this "not self-issued", so the
     * signature was skipped and the certificate accepted. */
    g_ku_sign_only = true;
    dl = make_cert(k, other, true, ext, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "does not verify with its own key");
    OPENSSL_free(der);
    /* MT_RATLS_PEER_PROVES_KEY (a TLS handshake proves the peer holds the
     * key): the signature is not checked, everything else is. */
    dl = make_cert(k, other, true, ext, el, &der);
    if (mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY, NULL, at, &c,
                             NULL, &err) != MT_OK)
        fail_msg("signed by another key, peer proves the key: %s", err.msg);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "does not verify with its own key");
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY,
                                          NULL, at + 40 * 366 * 86400LL, &c, NULL, &err),
                     MT_EAUTH); /* validity still checked */
    OPENSSL_free(der);
    dl = make_cert(k, other, false, ext, el, &der);
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC | MT_RATLS_PEER_PROVES_KEY,
                                          NULL, at, &c, NULL, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "is not self-issued");
    OPENSSL_free(der);
    /* The same, correctly self-signed, is fine: key usage is not consulted. */
    dl = make_cert(k, k, true, ext, el, &der);
    if (mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL, &err) != MT_OK)
        fail_msg("self-signed with keyUsage: %s", err.msg);
    OPENSSL_free(der);
    g_ku_sign_only = false;
    free(ext);

    /* report_data[32:64] must be zero: one bit set anywhere in the second
     * half is refused (the second half was ignored). */
    const size_t pos[] = {0, 17, 31};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        memset(tail, 0, sizeof tail);
        tail[pos[i]] = 0x01;
        ext = soft_ext(k, platform, tail, &el);
        dl = make_cert(k, k, true, ext, el, &der);
        assert_int_equal(
            mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, at, &c, NULL, &err), MT_EAUTH);
        tv_assert_msg(&err, "followed by 32 zero bytes");
        OPENSSL_free(der);
        free(ext);
    }

    /* A claims map with a repeated key (even one the reader skips) is not a
     * valid CBOR map: refused. */
    const uint8_t rep[] = {0xa3, 0x6b, 'p', 'u', 'b', 'k', 'e', 'y', '-', 'h', 'a', 's', 'h',
                           0x82, 0x01, 0x58, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                           0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x61, 'k',
                           0x00, 0x61, 'k', 0x01};
    mt_ratls_claims rc;
    assert_int_equal(mt_ratls_claims_parse(rep, sizeof rep, &rc, &err), MT_EINVAL);
    tv_assert_msg(&err, "distinct keys");
    uint8_t distinct[sizeof rep];
    memcpy(distinct, rep, sizeof rep);
    distinct[sizeof rep - 2] = 'j'; /* keys k and j: fine, both skipped */
    assert_int_equal(mt_ratls_claims_parse(distinct, sizeof distinct, &rc, &err), MT_OK);

    /* The private tags, as the docs and comments give them. */
    assert_int_equal(MT_RATLS_TAG_SOFT, 0x6d746101u);
    assert_int_equal(MT_RATLS_TAG_TPM2, 0x6d746102u);
    assert_int_equal(MT_RATLS_TAG_SNP, 0x6d746103u);
    assert_int_equal(MT_RATLS_TAG_QUOTE, 0xea60u);

    EVP_PKEY_free(k);
    EVP_PKEY_free(platform);
    EVP_PKEY_free(other);
}

/* ---- soft level end to end ---------------------------------------------- */

static char *tmp_dir(void)
{
    char *d = strdup("/tmp/mt-ratls-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_dir(const char *d)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

static size_t cert_der(X509 *x, uint8_t **der)
{
    *der = NULL;
    int n = i2d_X509(x, der);
    assert_true(n > 0);
    return (size_t)n;
}

static void test_soft_cert(void **state)
{
    char *dir = tmp_dir();
    mt_tee *tee = NULL;
    mt_err err;
    if (mt_tee_open("soft", dir, &tee, &err) != MT_OK)
        fail_msg("%s", err.msg);
    const char *cfg = "mesatee-config-v1\nlevel=soft\n";
    assert_int_equal(mt_tee_set_config(tee, (const uint8_t *)cfg, strlen(cfg), NULL, &err), MT_OK);
    char meas[65], pk[65];
    mt_tee_soft_ids(tee, meas, pk);
    assert_int_equal(strlen(meas), 64);
    /* the key file exists with mode 0600 */
    char kp[512];
    snprintf(kp, sizeof kp, "%s/platform-key.pem", dir);
    struct stat sb;
    assert_int_equal(stat(kp, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* same measurement as a fresh computation; another config differs */
    uint8_t m[32], m2[32];
    char mh[65];
    assert_int_equal(mt_tee_measure_soft((const uint8_t *)cfg, strlen(cfg), NULL, m, &err), MT_OK);
    mt_hex_encode(m, 32, mh);
    assert_string_equal(mh, meas);
    assert_int_equal(mt_tee_measure_soft((const uint8_t *)"x", 1, NULL, m2, &err), MT_OK);
    assert_memory_not_equal(m, m2, 32);

    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    assert_int_equal(mt_tee_tls_identity(tee, &key, &x, &err), MT_OK);
    uint8_t *der;
    size_t dl = cert_der(x, &der);
    mt_attest_claims c;
    mt_ratls_info info;
    mt_status st = mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, mt_now(), &c, &info, &err);
    if (st != MT_OK)
        fail_msg("soft cert: %s", err.msg);
    assert_int_equal(c.kind, MT_ATTEST_SOFT);
    assert_int_equal(info.tag, MT_RATLS_TAG_SOFT);
    const mt_attest_measurement *cm = mt_attest_claims_measurement(&c, "measurement");
    assert_non_null(cm);
    assert_memory_equal(cm->value, m, 32);
    char sh[65];
    mt_hex_encode(c.signer, 32, sh);
    assert_string_equal(sh, pk);
    assert_true(c.timestamp / 1000 <= mt_now() && c.timestamp / 1000 > mt_now() - 60);

    /* The evidence alone, via mt_attest_verify; a flipped byte anywhere fails. */
    ASN1_OBJECT *o = OBJ_txt2obj(MT_RATLS_OID, 1);
    X509_EXTENSION *xe = X509_get_ext(x, X509_get_ext_by_OBJ(x, o, -1));
    ASN1_OBJECT_free(o);
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(xe);
    mt_ratls_ext e;
    assert_int_equal(mt_ratls_ext_parse(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os),
                                        &e, &err),
                     MT_OK);
    mt_attest_claims c2;
    assert_int_equal(mt_attest_verify(MT_ATTEST_SOFT, e.evidence, e.evidence_len, NULL, mt_now(),
                                      &c2, &err),
                     MT_OK);
    uint8_t ev[MT_SOFT_EVIDENCE_MAX];
    assert_true(e.evidence_len <= sizeof ev);
    for (size_t i = 0; i < e.evidence_len; i++) {
        memcpy(ev, e.evidence, e.evidence_len);
        ev[i] ^= 0x01;
        st = mt_attest_verify(MT_ATTEST_SOFT, ev, e.evidence_len, NULL, mt_now(), &c2, &err);
        if (st == MT_OK)
            fail_msg("soft evidence with byte %zu flipped verified", i);
    }
    /* made in the future relative to `at` */
    assert_int_equal(mt_attest_verify(MT_ATTEST_SOFT, e.evidence, e.evidence_len, NULL,
                                      mt_now() - 3600, &c2, &err),
                     MT_EAUTH);
    assert_non_null(strstr(err.msg, "after the verification time"));

    /* Another soft daemon with a different platform key: different signer. */
    char *dir2 = tmp_dir();
    mt_tee *tee2 = NULL;
    assert_int_equal(mt_tee_open("soft", dir2, &tee2, &err), MT_OK);
    char meas2[65], pk2[65];
    mt_tee_soft_ids(tee2, meas2, pk2);
    assert_string_not_equal(pk, pk2);
    /* The same data dir again: the key is kept. */
    mt_tee *tee3 = NULL;
    assert_int_equal(mt_tee_open("soft", dir, &tee3, &err), MT_OK);
    char meas3[65], pk3[65];
    mt_tee_soft_ids(tee3, meas3, pk3);
    assert_string_equal(pk, pk3);
    /* A key file open to others is refused. */
    mt_tee_free(tee3);
    tee3 = NULL;
    assert_int_equal(chmod(kp, 0644), 0);
    assert_int_equal(mt_tee_open("soft", dir, &tee3, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "chmod 600"));

    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
    mt_tee_free(tee2);
    mt_tee_free(tee);
    rm_dir(dir);
    rm_dir(dir2);
    free(dir);
    free(dir2);
}

static void test_none_cert(void **state)
{
    char *dir = tmp_dir();
    mt_tee *tee = NULL;
    mt_err err;
    assert_int_equal(mt_tee_open("none", dir, &tee, &err), MT_OK);
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    assert_int_equal(mt_tee_tls_identity(tee, &key, &x, &err), MT_OK);
    uint8_t *der;
    size_t dl = cert_der(x, &der);
    assert_false(mt_ratls_cert_has_evidence(der, dl, MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY));
    mt_attest_claims c;
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, mt_now(), &c, NULL,
                                          &err),
                     MT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "level none"));
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
    mt_tee_free(tee);
    rm_dir(dir);
    free(dir);
}

static void test_soft_parse(void **state)
{
    mt_soft_evidence e;
    memset(&e, 0, sizeof e);
    e.time = 1700000000;
    memset(e.measurement, 1, 32);
    memset(e.report_data, 2, 64);
    memset(e.signature, 3, 64);
    memset(e.platform_key, 4, 91);
    e.platform_key_len = 91;
    uint8_t b[MT_SOFT_EVIDENCE_MAX];
    size_t n;
    mt_err err;
    assert_int_equal(mt_soft_evidence_encode(&e, 1, b, sizeof b, &n, &err), MT_OK);
    mt_soft_evidence p;
    assert_int_equal(mt_soft_evidence_parse(b, n, &p, &err), MT_OK);
    assert_memory_equal(&p, &e, sizeof e);
    /* Not a P-256 key: the verifier says so. */
    mt_attest_claims c;
    assert_int_equal(mt_attest_verify(MT_ATTEST_SOFT, b, n, NULL, e.time, &c, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "P-256"));
    /* truncated, trailing, too small a buffer */
    assert_int_equal(mt_soft_evidence_parse(b, n - 1, &p, &err), MT_EINVAL);
    b[n] = 0;
    assert_int_equal(mt_soft_evidence_parse(b, n + 1, &p, &err), MT_EINVAL);
    assert_int_equal(mt_soft_evidence_encode(&e, 1, b, 10, &n, &err), MT_ETOOBIG);
    /* a non-shortest head for "time" (0x1a 32-bit form is shortest here; use 0x1b) */
    assert_int_equal(mt_soft_evidence_encode(&e, 1, b, sizeof b, &n, &err), MT_OK);
    uint8_t nc[MT_SOFT_EVIDENCE_MAX];
    size_t t = 1 + 5 + 5 + 5; /* map head, "kind", "soft", "time" */
    assert_int_equal(b[t], 0x1a);
    memcpy(nc, b, t);
    nc[t] = 0x1b;
    memset(nc + t + 1, 0, 4);
    memcpy(nc + t + 5, b + t + 1, n - t - 1);
    assert_int_equal(mt_soft_evidence_parse(nc, n + 4, &p, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "deterministic"));
}

/* ---- issue 13: the self-signature on P-384 through Nettle ----------------- */

/* mt_x5_verify_self_sig must decide exactly as X509_verify does. Every byte
 * of the certificate from `from` on (step `step`) is changed in turn (XOR
 * 0x01, then 0x80); each copy that still parses is verified both ways. */
static unsigned differential(const uint8_t *der, size_t dl, size_t from, size_t step)
{
    unsigned compared = 0;
    uint8_t *m = malloc(dl);
    assert_non_null(m);
    for (size_t i = from; i < dl; i += step) {
        for (int f = 0; f < 2; f++) {
            memcpy(m, der, dl);
            m[i] ^= f ? 0x80 : 0x01;
            const uint8_t *p = m;
            X509 *x = d2i_X509(NULL, &p, (long)dl);
            if (!x) {
                ERR_clear_error();
                continue;
            }
            EVP_PKEY *pub = X509_get0_pubkey(x);
            bool want = pub && X509_verify(x, pub) == 1;
            ERR_clear_error();
            bool got = mt_x5_verify_self_sig(x);
            if (got != want)
                fail_msg("byte %zu ^ %s: mt_x5_verify_self_sig %d, X509_verify %d", i,
                         f ? "0x80" : "0x01", got, want);
            compared++;
            X509_free(x);
        }
    }
    free(m);
    return compared;
}

static size_t self_signed(const char *curve, const EVP_MD *md, uint8_t **out)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 9);
    ASN1_TIME_set(X509_getm_notBefore(x), 978307200);
    ASN1_TIME_set(X509_getm_notAfter(x), 1924991999);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"p", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_int_equal(X509_set_pubkey(x, k), 1);
    assert_true(X509_sign(x, k, md) > 0);
    *out = NULL;
    int n = i2d_X509(x, out);
    assert_true(n > 0);
    X509_free(x);
    EVP_PKEY_free(k);
    return (size_t)n;
}

static void test_self_sig_p384(void **state)
{
    uint8_t *der;
    size_t dl;
    /* P-384 with SHA-256 and SHA-384 (Nettle), P-256 (X509_verify): valid as
     * made, then every byte changed. */
    const struct {
        const char *curve;
        const EVP_MD *md;
    } kinds[] = {{"P-384", EVP_sha256()}, {"P-384", EVP_sha384()}, {"P-256", EVP_sha256()}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        dl = self_signed(kinds[k].curve, kinds[k].md, &der);
        const uint8_t *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)dl);
        assert_non_null(x);
        assert_true(mt_x5_verify_self_sig(x));
        X509_free(x);
        assert_true(differential(der, dl, 0, 1) > dl);
        OPENSSL_free(der);
    }
    /* The outer signature algorithm differs from the signed one (SHA-384 in
     * place of SHA-256: 1.2.840.10045.4.3.2 -> .3): refused both ways. */
    dl = self_signed("P-384", EVP_sha256(), &der);
    static const uint8_t sha256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    uint8_t *last = NULL;
    for (size_t i = 0; i + sizeof sha256_oid <= dl; i++)
        if (!memcmp(der + i, sha256_oid, sizeof sha256_oid))
            last = der + i;
    assert_non_null(last);
    last[sizeof sha256_oid - 1] = 0x03;
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)dl);
    assert_non_null(x);
    assert_false(mt_x5_verify_self_sig(x));
    assert_int_not_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
    X509_free(x);
    OPENSSL_free(der);
    ERR_clear_error();

    /* The Intel SGX SDK certificate (P-384, ecdsa-with-SHA256): its whole
     * signature and every 61st byte before it; through mt_ratls_verify_cert a
     * changed signature byte is refused. */
    TV_REQUIRE();
    size_t n;
    uint8_t *pem = read_cert("ccc-intel-sgxsdk-cert.pem", &n);
    X509 *orig = pem_x509(pem, n);
    der = NULL;
    int odl = i2d_X509(orig, &der);
    assert_true(odl > 120);
    assert_true(mt_x5_verify_self_sig(orig));
    dl = (size_t)odl;
    assert_true(differential(der, dl, dl - 110, 1) >= 100);
    assert_true(differential(der, dl, 5, 61) >= 100);
    mt_attest_claims c;
    mt_err err;
    der[dl - 3] ^= 0x01; /* inside s */
    assert_int_equal(mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC, NULL, T_2024_01, &c, NULL,
                                          &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "signature does not verify");
    OPENSSL_free(der);
    X509_free(orig);
    free(pem);
}

/* A self-signed P-384 certificate whose TBSCertificate is re-encoded with
 * the given header (30 80: indefinite length, closed by 00 00; 30 84 00 00
 * LL LL: a non-minimal length) and signed over exactly those bytes, as
 * OpenSSL reads and keeps them. */
static size_t self_signed_ber_tbs(bool indefinite, const EVP_MD *md, uint8_t **out)
{
    EVP_PKEY *k = EVP_EC_gen("P-384");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 9);
    ASN1_TIME_set(X509_getm_notBefore(x), 978307200);
    ASN1_TIME_set(X509_getm_notAfter(x), 1924991999);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"p", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_int_equal(X509_set_pubkey(x, k), 1);
    assert_true(X509_sign(x, k, md) > 0);
    uint8_t *der = NULL;
    int dl = i2d_X509(x, &der);
    assert_true(dl > 0);
    X509_free(x);
    /* der: 30 82 LL LL | 30 81/82 .. tbs | 30 0a alg | 03 .. sig */
    assert_int_equal(der[0], 0x30);
    assert_int_equal(der[1], 0x82);
    const uint8_t *tbs = der + 4;
    assert_int_equal(tbs[0], 0x30);
    size_t thdr = (tbs[1] & 0x80) ? 2 + (tbs[1] & 0x7f) : 2, tlen = 0;
    for (size_t i = 2; i < thdr; i++)
        tlen = tlen << 8 | tbs[i];
    if (thdr == 2)
        tlen = tbs[1];
    const uint8_t *alg = tbs + thdr + tlen;
    assert_int_equal(alg[0], 0x30);
    size_t alen = 2 + (size_t)alg[1];

    uint8_t nt[1024];
    size_t nl = 0;
    nt[nl++] = 0x30;
    if (indefinite) {
        nt[nl++] = 0x80;
    } else {
        nt[nl++] = 0x84;
        nt[nl++] = 0;
        nt[nl++] = 0;
        nt[nl++] = (uint8_t)(tlen >> 8);
        nt[nl++] = (uint8_t)tlen;
    }
    assert_true(tlen + 2 + nl < sizeof nt);
    memcpy(nt + nl, tbs + thdr, tlen);
    nl += tlen;
    if (indefinite) {
        nt[nl++] = 0;
        nt[nl++] = 0;
    }
    uint8_t sig[128];
    size_t sl = sizeof sig;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    assert_non_null(mc);
    assert_int_equal(EVP_DigestSignInit(mc, NULL, md, NULL, k), 1);
    assert_int_equal(EVP_DigestSign(mc, sig, &sl, nt, nl), 1);
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(k);
    assert_true(sl + 1 < 0x80);

    size_t inner = nl + alen + 3 + sl, o = 0;
    uint8_t *c = malloc(4 + inner);
    assert_non_null(c);
    assert_true(inner > 0xff && inner <= 0xffff);
    c[o++] = 0x30;
    c[o++] = 0x82;
    c[o++] = (uint8_t)(inner >> 8);
    c[o++] = (uint8_t)inner;
    memcpy(c + o, nt, nl);
    o += nl;
    memcpy(c + o, alg, alen);
    o += alen;
    c[o++] = 0x03;
    c[o++] = (uint8_t)(sl + 1);
    c[o++] = 0x00;
    memcpy(c + o, sig, sl);
    o += sl;
    OPENSSL_free(der);
    *out = c;
    return o;
}

/* A TBSCertificate that OpenSSL reads in BER (indefinite length) is hashed
 * by X509_verify as it was read: mt_x5_verify_self_sig gives the same verdict
 * (its DER walk declines it and leaves it to X509_verify), as for a
 * non-minimal length, valid and with a changed signature. */
static void test_self_sig_ber_tbs(void **state)
{
    (void)state;
    for (int ind = 0; ind < 2; ind++) {
        for (int h = 0; h < 2; h++) {
            uint8_t *der;
            size_t dl = self_signed_ber_tbs(ind, h ? EVP_sha384() : EVP_sha256(), &der);
            const uint8_t *p = der;
            X509 *x = d2i_X509(NULL, &p, (long)dl);
            assert_non_null(x);
            assert_ptr_equal(p, der + dl);
            if (ind) { /* OpenSSL keeps the BER encoding it read */
                uint8_t *re = NULL;
                assert_int_equal(i2d_X509(x, &re), (int)dl);
                assert_memory_equal(re, der, dl);
                OPENSSL_free(re);
            }
            assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
            ERR_clear_error();
            assert_true(mt_x5_verify_self_sig(x));
            X509_free(x);
            /* a changed byte of s: refused both ways */
            der[dl - 2] ^= 0x01;
            p = der;
            x = d2i_X509(NULL, &p, (long)dl);
            assert_non_null(x);
            assert_int_not_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
            ERR_clear_error();
            assert_false(mt_x5_verify_self_sig(x));
            X509_free(x);
            der[dl - 2] ^= 0x01;
            assert_true(differential(der, dl, 0, 3) > dl / 3);
            free(der);
        }
    }
}

/* mt_x5_p256_spki decides the canonical P-256 encoding as d2i_PUBKEY does and
 * declines everything else. */
static void test_p256_spki(void **state)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    uint8_t *der = NULL;
    int dl = i2d_PUBKEY(k, &der);
    assert_int_equal(dl, 91);
    EVP_PKEY *got = NULL;
    assert_true(mt_x5_p256_spki(der, (size_t)dl, &got));
    assert_int_equal(EVP_PKEY_eq(got, k), 1);
    EVP_PKEY_free(got);
    /* Every single-byte change: declined, or the same key d2i_PUBKEY reads. */
    for (int i = 0; i < dl; i++) {
        der[i] ^= 0x01;
        const uint8_t *p = der;
        EVP_PKEY *ref = d2i_PUBKEY(NULL, &p, dl);
        ERR_clear_error();
        if (mt_x5_p256_spki(der, (size_t)dl, &got)) {
            if (!ref || EVP_PKEY_eq(got, ref) != 1)
                fail_msg("byte %d: accepted a key d2i_PUBKEY does not read the same", i);
            EVP_PKEY_free(got);
            got = NULL;
        }
        assert_null(got);
        EVP_PKEY_free(ref);
        der[i] ^= 0x01;
    }
    assert_false(mt_x5_p256_spki(der, (size_t)dl - 1, &got));
    OPENSSL_free(der);
    /* Compressed point and P-384: left to d2i_PUBKEY. */
    der = NULL;
    EVP_PKEY_set_utf8_string_param(k, "point-format", "compressed");
    dl = i2d_PUBKEY(k, &der);
    assert_true(dl > 0 && dl != 91);
    assert_false(mt_x5_p256_spki(der, (size_t)dl, &got));
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    k = EVP_EC_gen("P-384");
    der = NULL;
    dl = i2d_PUBKEY(k, &der);
    assert_false(mt_x5_p256_spki(der, (size_t)dl, &got));
    assert_null(got);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gramine),        cmocka_unit_test(test_sgxsdk),
        cmocka_unit_test(test_ratstls),        cmocka_unit_test(test_gramine_legacy),
        cmocka_unit_test(test_negative),       cmocka_unit_test(test_ext_claims_parse),
        cmocka_unit_test(test_soft_cert),      cmocka_unit_test(test_none_cert),
        cmocka_unit_test(test_soft_parse),     cmocka_unit_test(test_issuer_and_report_data),
        cmocka_unit_test(test_self_sig_p384),  cmocka_unit_test(test_self_sig_ber_tbs),
        cmocka_unit_test(test_p256_spki),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
