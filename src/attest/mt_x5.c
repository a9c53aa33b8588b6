/* mt_x5: OpenSSL helpers of mt_attest; see mt_x5.h. */
#include "mt_x5.h"

#include <gmp.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mt_attest_int.h"
#include "mt_rd.h"
#include "mt_util.h"

mt_status mt_x5_load_certs(const uint8_t *buf, size_t len, const char *what,
                           STACK_OF(X509) **out, mt_err *err)
{
    *out = NULL;
    if (!buf || !len || len > INT32_MAX)
        return mt_err_set(err, MT_EINVAL, "%s: no certificate given", what);
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (!sk)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (buf[0] == 0x30) {
        const unsigned char *p = buf;
        X509 *c = d2i_X509(NULL, &p, (long)len);
        if (!c || p != buf + len) {
            X509_free(c);
            sk_X509_free(sk);
            ERR_clear_error();
            return mt_err_set(err, MT_EINVAL, "%s: not a DER X.509 certificate", what);
        }
        sk_X509_push(sk, c);
    } else {
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        X509 *c;
        while (b && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
            if (!sk_X509_push(sk, c))
                X509_free(c);
        BIO_free(b);
        ERR_clear_error();
        if (sk_X509_num(sk) == 0) {
            sk_X509_free(sk);
            return mt_err_set(err, MT_EINVAL, "%s: no PEM certificate found", what);
        }
    }
    *out = sk;
    return MT_OK;
}

mt_status mt_x5_load_crl(const uint8_t *buf, size_t len, const char *what, X509_CRL **out,
                         mt_err *err)
{
    *out = NULL;
    if (!buf || !len || len > INT32_MAX)
        return mt_err_set(err, MT_EINVAL, "%s: no CRL given", what);
    X509_CRL *crl = NULL;
    if (buf[0] == 0x30) {
        const unsigned char *p = buf;
        crl = d2i_X509_CRL(NULL, &p, (long)len);
        if (crl && p != buf + len) {
            X509_CRL_free(crl);
            crl = NULL;
        }
    } else {
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    }
    ERR_clear_error();
    if (!crl)
        return mt_err_set(err, MT_EINVAL, "%s: not a DER or PEM CRL", what);
    *out = crl;
    return MT_OK;
}

bool mt_x5_fingerprint(X509 *cert, uint8_t out[32])
{
    unsigned int n = 0;
    return X509_digest(cert, EVP_sha256(), out, &n) == 1 && n == 32;
}

bool mt_x5_is_pinned(X509 *cert, const char *pin_hex)
{
    uint8_t fp[32], pin[32];
    if (!mt_x5_fingerprint(cert, fp) || mt_hex_decode(pin_hex, pin, 32, NULL) != MT_OK)
        return false;
    return memcmp(fp, pin, 32) == 0;
}

void mt_x5_cn(X509 *cert, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    if (!cert)
        return;
    X509_NAME *nm = X509_get_subject_name(cert);
    if (nm && X509_NAME_get_text_by_NID(nm, NID_commonName, out, (int)cap) < 0)
        snprintf(out, cap, "?");
}

/* Seconds since the epoch of an ASN1_TIME, or 0. */
static int64_t asn1_time_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* Seconds since the epoch of an ASN1_TIME; false if it cannot be read. */
static bool asn1_time_to(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return false;
    }
    *out = (int64_t)timegm(&tm);
    return true;
}

/* Narrows [*lo, *hi] by a validity period; an absent upper bound (nu NULL)
 * leaves *hi alone. */
static bool narrow(const ASN1_TIME *nb, const ASN1_TIME *nu, int64_t *lo, int64_t *hi)
{
    int64_t a, b;
    if (!asn1_time_to(nb, &a))
        return false;
    if (a > *lo)
        *lo = a;
    if (nu) {
        if (!asn1_time_to(nu, &b))
            return false;
        if (b < *hi)
            *hi = b;
    }
    return true;
}

bool mt_x5_validity(STACK_OF(X509) *certs, X509 *extra, STACK_OF(X509_CRL) *crls, int64_t *lo,
                    int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (int i = 0; certs && i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (!narrow(X509_get0_notBefore(c), X509_get0_notAfter(c), lo, hi))
            return false;
    }
    if (extra && !narrow(X509_get0_notBefore(extra), X509_get0_notAfter(extra), lo, hi))
        return false;
    for (int i = 0; crls && i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *c = sk_X509_CRL_value(crls, i);
        if (!narrow(X509_CRL_get0_lastUpdate(c), X509_CRL_get0_nextUpdate(c), lo, hi))
            return false;
    }
    return *lo < *hi;
}

mt_status mt_x5_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted, X509 *root,
                             STACK_OF(X509_CRL) *crls, int64_t at, const char *what,
                             mt_err *err)
{
    mt_status st = MT_ENOMEM;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!store || !ctx || X509_STORE_add_cert(store, root) != 1 ||
        X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        mt_err_set(err, MT_ENOMEM, "%s: cannot set up certificate verification", what);
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)at);
    if (crls) {
        X509_STORE_CTX_set0_crls(ctx, crls);
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
        char cn[96], ts[32], extra[96] = "";
        mt_x5_cn(cur, cn, sizeof cn);
        mt_attest_time_str(at, ts);
        if (cur && (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)) {
            char nb[32], na[32];
            mt_attest_time_str(asn1_time_epoch(X509_get0_notBefore(cur)), nb);
            mt_attest_time_str(asn1_time_epoch(X509_get0_notAfter(cur)), na);
            snprintf(extra, sizeof extra, ", valid %s to %s", nb, na);
        }
        st = mt_err_set(err, MT_EAUTH,
                        "%s: certificate chain does not verify at %s: %s (depth %d, CN=%s%s)",
                        what, ts, X509_verify_cert_error_string(e), depth, cn, extra);
        goto out;
    }
    /* The chain must end in the pinned root (the store's only anchor). */
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    int n = chain ? sk_X509_num(chain) : 0;
    if (n < 1 || X509_cmp(sk_X509_value(chain, n - 1), root) != 0) {
        st = mt_err_set(err, MT_EAUTH, "%s: chain does not end in the pinned root", what);
        goto out;
    }
    st = MT_OK;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return st;
}

bool mt_x5_ext(X509 *cert, const char *oid, const uint8_t **val, size_t *len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (!obj) {
        ERR_clear_error();
        return false;
    }
    int idx = X509_get_ext_by_OBJ(cert, obj, -1);
    /* An extension present twice is ambiguous: treated as absent (callers
     * then fail closed). */
    int again = idx < 0 ? -1 : X509_get_ext_by_OBJ(cert, obj, idx);
    ASN1_OBJECT_free(obj);
    if (idx < 0 || again >= 0)
        return false;
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    ASN1_OCTET_STRING *os = ext ? X509_EXTENSION_get_data(ext) : NULL;
    if (!os)
        return false;
    *val = ASN1_STRING_get0_data(os);
    *len = (size_t)ASN1_STRING_length(os);
    return true;
}

mt_status mt_x5_ec_pub_from_xy(const char *curve, const uint8_t *xy, size_t xylen,
                               EVP_PKEY **out, mt_err *err)
{
    *out = NULL;
    uint8_t pt[1 + 132];
    if (strcmp(curve, "P-256") != 0 && strcmp(curve, "P-384") != 0) /* see the check below */
        return mt_err_set(err, MT_EINVAL, "unsupported attestation key curve");
    if (xylen == 0 || xylen > sizeof pt - 1)
        return mt_err_set(err, MT_EINVAL, "bad EC point length %zu", xylen);
    pt[0] = 0x04;
    memcpy(pt + 1, xy, xylen);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, xylen + 1);
    params[2] = OSSL_PARAM_construct_end();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;
    if (!pc || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_CTX_free(pc);
        ERR_clear_error();
        return mt_err_set(err, MT_EAUTH, "attestation key is not a valid %s point", curve);
    }
    EVP_PKEY_CTX_free(pc);
    /* fromdata does not check that the point is on the curve. The quick
     * check (not infinity, coordinates in range, on the curve) is the whole
     * validation for the prime-order curves used here (P-256, P-384: cofactor
     * 1, so every point on the curve has the group's order); the full check
     * adds a scalar multiplication by the order, ~50 us per key. */
    EVP_PKEY_CTX *cc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    int ok = cc && EVP_PKEY_public_check_quick(cc) == 1;
    EVP_PKEY_CTX_free(cc);
    ERR_clear_error();
    if (!ok) {
        EVP_PKEY_free(pk);
        return mt_err_set(err, MT_EAUTH, "attestation key is not a valid %s point", curve);
    }
    *out = pk;
    return MT_OK;
}

bool mt_x5_ecdsa_verify(EVP_PKEY *key, const EVP_MD *md, const uint8_t *msg, size_t msglen,
                        const uint8_t *r, const uint8_t *s, size_t clen, bool le)
{
    bool ok = false;
    unsigned char *der = NULL;
    EVP_MD_CTX *mc = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = le ? BN_lebin2bn(r, (int)clen, NULL) : BN_bin2bn(r, (int)clen, NULL);
    BIGNUM *bs = le ? BN_lebin2bn(s, (int)clen, NULL) : BN_bin2bn(s, (int)clen, NULL);
    if (!sig || !br || !bs || ECDSA_SIG_set0(sig, br, bs) != 1) {
        BN_free(br);
        BN_free(bs);
        goto out;
    }
    int dlen = i2d_ECDSA_SIG(sig, &der);
    if (dlen <= 0)
        goto out;
    mc = EVP_MD_CTX_new();
    if (!mc || EVP_DigestVerifyInit(mc, NULL, md, NULL, key) != 1)
        goto out;
    ok = EVP_DigestVerify(mc, der, (size_t)dlen, msg, msglen) == 1;
out:
    EVP_MD_CTX_free(mc);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return ok;
}

bool mt_x5_p384_verify(const uint8_t pub[97], const uint8_t *digest, size_t dlen,
                       const uint8_t r[48], const uint8_t s[48])
{
    if (pub[0] != 0x04 || !digest || dlen == 0)
        return false;
    struct ecc_point pt;
    struct dsa_signature sig;
    mpz_t x, y;
    ecc_point_init(&pt, nettle_get_secp_384r1());
    dsa_signature_init(&sig);
    mpz_init(x);
    mpz_init(y);
    mpz_import(x, 48, 1, 1, 0, 0, pub + 1);
    mpz_import(y, 48, 1, 1, 0, 0, pub + 49);
    mpz_import(sig.r, 48, 1, 1, 0, 0, r);
    mpz_import(sig.s, 48, 1, 1, 0, 0, s);
    /* ecc_point_set refuses coordinates >= p and points off the curve;
     * ecdsa_verify refuses r, s outside 1..n-1. */
    bool ok = ecc_point_set(&pt, x, y) && ecdsa_verify(&pt, dlen, digest, &sig);
    mpz_clear(x);
    mpz_clear(y);
    dsa_signature_clear(&sig);
    ecc_point_clear(&pt);
    return ok;
}

/* The uncompressed P-384 point of cert's key (borrowed), or NULL. */
static const uint8_t *p384_point(X509 *cert)
{
    ASN1_OBJECT *kobj = NULL;
    const uint8_t *kbits = NULL;
    int klen = 0, kptype = 0;
    X509_ALGOR *kalg = NULL;
    const void *kpval = NULL;
    if (X509_PUBKEY_get0_param(&kobj, &kbits, &klen, &kalg, X509_get_X509_PUBKEY(cert)) != 1 ||
        OBJ_obj2nid(kobj) != NID_X9_62_id_ecPublicKey || klen != 97 || kbits[0] != 0x04)
        return NULL;
    X509_ALGOR_get0(NULL, &kptype, &kpval, kalg);
    return kptype == V_ASN1_OBJECT && OBJ_obj2nid(kpval) == NID_secp384r1 ? kbits : NULL;
}

/* The Nettle path of mt_x5_verify_self_sig: 1 valid, 0 invalid, -1 not an
 * ecdsa-with-SHA256/384 signature under an uncompressed P-384 key, or a
 * TBSCertificate this DER walk does not take (then X509_verify decides).
 * The checks before the arithmetic are X509_verify's (OpenSSL 3.0
 * crypto/x509/x_all.c, crypto/asn1/a_verify.c, crypto/ec/ecdsa_ossl.c). */
static int self_sig_p384(X509 *cert)
{
    const ASN1_BIT_STRING *sigbits = NULL;
    const X509_ALGOR *alg = NULL;
    X509_get0_signature(&sigbits, &alg, cert);
    const ASN1_OBJECT *aobj = NULL;
    X509_ALGOR_get0(&aobj, NULL, NULL, alg);
    int signid = aobj ? OBJ_obj2nid(aobj) : NID_undef;
    const EVP_MD *md = signid == NID_ecdsa_with_SHA256   ? EVP_sha256()
                       : signid == NID_ecdsa_with_SHA384 ? EVP_sha384()
                                                         : NULL;
    const uint8_t *kbits = p384_point(cert);
    if (!md || !sigbits || !kbits)
        return -1;
    /* X509_verify: the signature algorithm inside the signed part is the
     * outer one; a_verify.c: no unused bits in the signature. */
    if (X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(cert)) != 0 ||
        (sigbits->flags & 0x7) != 0)
        return 0;
    /* ecdsa_ossl.c: the signature is DER, nothing after it, 0 < r, s < n
     * (the upper bound and zero are Nettle's, in ecdsa_verify). */
    int ok = 0;
    const uint8_t *p = sigbits->data;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, sigbits->length);
    uint8_t *re = NULL, *der = NULL;
    int rel = es ? i2d_ECDSA_SIG(es, &re) : -1;
    const BIGNUM *br = NULL, *bs = NULL;
    if (es)
        ECDSA_SIG_get0(es, &br, &bs);
    uint8_t rb[48], sb[48], h[48];
    unsigned hl = 0;
    if (!es || rel != sigbits->length || memcmp(re, sigbits->data, (size_t)rel) != 0 ||
        BN_is_negative(br) || BN_is_negative(bs) || BN_bn2binpad(br, rb, 48) != 48 ||
        BN_bn2binpad(bs, sb, 48) != 48)
        goto out;
    /* What X509_verify hashes: the TBSCertificate as it was read (OpenSSL
     * keeps its encoding, and i2d_X509 writes it back unchanged), the first
     * element of the certificate's SEQUENCE. Where this DER walk cannot take
     * it (a BER encoding OpenSSL accepted: indefinite length) or hashing
     * fails, X509_verify decides (-1), never this path. */
    ok = -1;
    int dl = i2d_X509(cert, &der);
    mt_rd rd, in;
    mt_der outer;
    if (dl <= 0)
        goto out;
    mt_rd_init(&rd, der, (size_t)dl);
    if (!mt_der_next(&rd, &outer) || outer.tag != 0x30)
        goto out;
    mt_rd_init(&in, outer.val, outer.len);
    const uint8_t *tbs = mt_rd_ptr(&in);
    mt_der t;
    if (!mt_der_next(&in, &t) || t.tag != 0x30 ||
        EVP_Digest(tbs, (size_t)(t.val + t.len - tbs), h, &hl, md, NULL) != 1)
        goto out;
    ok = mt_x5_p384_verify(kbits, h, hl, rb, sb) ? 1 : 0;
out:
    OPENSSL_free(re);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return ok;
}

bool mt_x5_verify_self_sig(X509 *cert)
{
    int r = self_sig_p384(cert);
    if (r < 0) {
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        r = pub && X509_verify(cert, pub) == 1;
        ERR_clear_error();
    }
    return r == 1;
}

bool mt_x5_ecdsa_verify_cert(X509 *cert, const EVP_MD *md, const uint8_t *msg, size_t msglen,
                             const uint8_t *r, const uint8_t *s, size_t clen, bool le)
{
    const uint8_t *pt = clen == 48 ? p384_point(cert) : NULL;
    if (!pt) {
        EVP_PKEY *pk = X509_get0_pubkey(cert);
        return pk && mt_x5_ecdsa_verify(pk, md, msg, msglen, r, s, clen, le);
    }
    uint8_t rb[48], sb[48], h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    for (size_t i = 0; i < 48; i++) {
        rb[i] = le ? r[47 - i] : r[i];
        sb[i] = le ? s[47 - i] : s[i];
    }
    bool ok = EVP_Digest(msg, msglen, h, &hl, md, NULL) == 1 &&
              mt_x5_p384_verify(pt, h, hl, rb, sb);
    ERR_clear_error();
    return ok;
}

bool mt_x5_p256_spki(const uint8_t *der, size_t len, EVP_PKEY **out)
{
    static const uint8_t hdr[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                  0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                  0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
    *out = NULL;
    mt_err err;
    if (!der || len != sizeof hdr + 64 || memcmp(der, hdr, sizeof hdr) != 0)
        return false;
    return mt_x5_ec_pub_from_xy("P-256", der + sizeof hdr, 64, out, &err) == MT_OK;
}
