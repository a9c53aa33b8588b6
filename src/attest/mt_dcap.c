/* mt_dcap: DCAP quote parser and verifier; see mt_dcap.h. */
#include "mt_dcap.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "mt_attest_int.h"
#include "mt_dcap_coll.h"
#include "mt_rd.h"
#include "mt_util.h"
#include "mt_x5.h"

#define HEADER_LEN 48
#define SGX_BODY_LEN 384
#define TD10_BODY_LEN 584
#define TD15_BODY_LEN 648
#define QE_REPORT_LEN 384

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

/* SHA-256 of the DER Intel SGX Root CA (P-256, 2018 -> 2049). */
static const char *const intel_root_pin =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/* ---- parser -------------------------------------------------------------- */

static void read_sgx_body(mt_rd *r, mt_sgx_report_body *b)
{
    mt_rd_bytes(r, b->cpusvn, 16);
    b->miscselect = mt_rd_u32le(r);
    mt_rd_skip(r, 12);
    mt_rd_bytes(r, b->isv_ext_prod_id, 16);
    mt_rd_bytes(r, b->attributes, 16);
    mt_rd_bytes(r, b->mrenclave, 32);
    mt_rd_skip(r, 32);
    mt_rd_bytes(r, b->mrsigner, 32);
    mt_rd_skip(r, 32);
    mt_rd_bytes(r, b->config_id, 64);
    b->isv_prod_id = mt_rd_u16le(r);
    b->isv_svn = mt_rd_u16le(r);
    b->config_svn = mt_rd_u16le(r);
    mt_rd_skip(r, 42);
    mt_rd_bytes(r, b->isv_family_id, 16);
    mt_rd_bytes(r, b->report_data, 64);
}

static void read_td_body(mt_rd *r, mt_td_report_body *b, bool v15)
{
    mt_rd_bytes(r, b->tee_tcb_svn, 16);
    mt_rd_bytes(r, b->mrseam, 48);
    mt_rd_bytes(r, b->mrsignerseam, 48);
    mt_rd_bytes(r, b->seam_attributes, 8);
    mt_rd_bytes(r, b->td_attributes, 8);
    mt_rd_bytes(r, b->xfam, 8);
    mt_rd_bytes(r, b->mrtd, 48);
    mt_rd_bytes(r, b->mrconfigid, 48);
    mt_rd_bytes(r, b->mrowner, 48);
    mt_rd_bytes(r, b->mrownerconfig, 48);
    for (int i = 0; i < 4; i++)
        mt_rd_bytes(r, b->rtmr[i], 48);
    mt_rd_bytes(r, b->report_data, 64);
    b->v15 = v15;
    if (v15) {
        mt_rd_bytes(r, b->tee_tcb_svn2, 16);
        mt_rd_bytes(r, b->mrservicetd, 48);
    }
}

mt_status mt_dcap_quote_parse(const uint8_t *buf, size_t len, mt_dcap_quote *q, mt_err *err)
{
    memset(q, 0, sizeof *q);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    q->version = mt_rd_u16le(&r);
    q->att_key_type = mt_rd_u16le(&r);
    q->tee_type = mt_rd_u32le(&r);
    q->qe_svn = mt_rd_u16le(&r);
    q->pce_svn = mt_rd_u16le(&r);
    mt_rd_bytes(&r, q->qe_vendor_id, 16);
    mt_rd_bytes(&r, q->user_data, 20);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "quote is shorter than its %d-byte header", HEADER_LEN);
    if (q->version < 3 || q->version > 5)
        return mt_err_set(err, MT_EINVAL, "unsupported quote version %u (expected 3, 4 or 5)",
                          q->version);
    if (q->att_key_type != 2)
        return mt_err_set(err, MT_EINVAL,
                          "unsupported attestation key type %u (only 2, ECDSA P-256)",
                          q->att_key_type);
    if (q->version == 3)
        q->tee_type = MT_DCAP_TEE_SGX; /* reserved in v3 */
    if (q->tee_type != MT_DCAP_TEE_SGX && q->tee_type != MT_DCAP_TEE_TDX)
        return mt_err_set(err, MT_EINVAL, "unknown quote TEE type 0x%x", q->tee_type);
    if (q->version == 5 && q->tee_type != MT_DCAP_TEE_TDX)
        return mt_err_set(err, MT_EINVAL, "quote v5 is only supported for TDX");

    size_t body_len;
    bool v15 = false;
    if (q->version == 5) {
        q->body_type = mt_rd_u16le(&r);
        uint32_t bs = mt_rd_u32le(&r);
        if (q->body_type == 2)
            body_len = TD10_BODY_LEN;
        else if (q->body_type == 3)
            body_len = TD15_BODY_LEN, v15 = true;
        else
            return mt_err_set(err, MT_EINVAL, "unsupported quote v5 body type %u", q->body_type);
        if (bs != body_len)
            return mt_err_set(err, MT_EINVAL, "quote v5 body size %u, expected %zu for type %u", bs,
                              body_len, q->body_type);
    } else {
        body_len = q->tee_type == MT_DCAP_TEE_TDX ? TD10_BODY_LEN : SGX_BODY_LEN;
    }
    mt_rd body = mt_rd_sub(&r, body_len);
    if (q->tee_type == MT_DCAP_TEE_TDX)
        read_td_body(&body, &q->td, v15);
    else
        read_sgx_body(&body, &q->sgx);
    if (!mt_rd_ok(&r) || !mt_rd_ok(&body))
        return mt_err_set(err, MT_EINVAL, "quote is truncated in its report body");
    q->signed_len = r.off;

    uint32_t sig_len = mt_rd_u32le(&r);
    if (!mt_rd_ok(&r) || sig_len > mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL,
                          "quote signature data length %u exceeds the %zu bytes left", sig_len,
                          mt_rd_left(&r));
    mt_rd sd = mt_rd_sub(&r, sig_len);
    mt_rd_bytes(&sd, q->sig, 64);
    mt_rd_bytes(&sd, q->att_key, 64);
    mt_rd qe = sd; /* v3: QE data follows directly */
    if (q->version >= 4) {
        uint16_t t = mt_rd_u16le(&sd);
        uint32_t n = mt_rd_u32le(&sd);
        if (!mt_rd_ok(&sd))
            return mt_err_set(err, MT_EINVAL, "quote signature data is truncated");
        if (t != 6)
            return mt_err_set(err, MT_EINVAL,
                              "quote certification data type %u, expected 6 (QE report)", t);
        if (n != mt_rd_left(&sd))
            return mt_err_set(err, MT_EINVAL,
                              "QE report certification data size %u does not fill the %zu "
                              "bytes of signature data left",
                              n, mt_rd_left(&sd));
        qe = mt_rd_sub(&sd, n);
    }
    q->qe_report_raw = mt_rd_ptr(&qe);
    mt_rd qr = mt_rd_sub(&qe, QE_REPORT_LEN);
    read_sgx_body(&qr, &q->qe_report);
    mt_rd_bytes(&qe, q->qe_sig, 64);
    q->auth_len = mt_rd_u16le(&qe);
    q->auth_data = mt_rd_take(&qe, q->auth_len);
    q->cert_type = mt_rd_u16le(&qe);
    q->cert_len = mt_rd_u32le(&qe);
    q->cert_data = mt_rd_take(&qe, q->cert_len);
    if (!mt_rd_ok(&qe) || !mt_rd_ok(&qr))
        return mt_err_set(err, MT_EINVAL, "quote QE report data is truncated");
    if (mt_rd_left(&qe) != 0)
        return mt_err_set(err, MT_EINVAL, "quote signature data has %zu unexplained bytes",
                          mt_rd_left(&qe));
    if (q->cert_type != 5)
        return mt_err_set(err, MT_EINVAL,
                          "quote certification data type %u is not supported (need 5, PCK "
                          "certificate chain)",
                          q->cert_type);
    q->quote_len = r.off;
    const uint8_t *rest = mt_rd_ptr(&r);
    for (size_t i = 0; i < mt_rd_left(&r); i++)
        if (rest[i] != 0)
            return mt_err_set(err, MT_EINVAL, "quote has %zu trailing bytes that are not zero",
                              mt_rd_left(&r));
    return MT_OK;
}

/* ---- PCK certificate extensions -------------------------------------------- */

#define SGX_OID "1.2.840.113741.1.13.1"

mt_status mt_dcap_pck_ext_parse(const uint8_t *der, size_t len, mt_pck_ext *o, mt_err *err)
{
    memset(o, 0, sizeof *o);
    unsigned seen = 0;
    mt_rd r, seq;
    mt_der d;
    mt_rd_init(&r, der, len);
    if (!mt_der_next(&r, &d) || d.tag != 0x30 || mt_rd_left(&r))
        goto bad;
    mt_rd_init(&seq, d.val, d.len);
    while (mt_rd_left(&seq)) {
        mt_der item, oid, val;
        mt_rd ir;
        char name[64];
        if (!mt_der_next(&seq, &item) || item.tag != 0x30)
            goto bad;
        mt_rd_init(&ir, item.val, item.len);
        if (!mt_der_next(&ir, &oid) || oid.tag != 0x06 || !mt_der_next(&ir, &val) ||
            mt_rd_left(&ir) || !mt_der_oid_text(oid.val, oid.len, name, sizeof name))
            goto bad;
        /* A repeated item is refused before its value is used. */
        unsigned bit = strcmp(name, SGX_OID ".1") == 0   ? 1
                       : strcmp(name, SGX_OID ".3") == 0 ? 2
                       : strcmp(name, SGX_OID ".4") == 0 ? 4
                       : strcmp(name, SGX_OID ".2") == 0 ? 8
                                                          : 0;
        if (seen & bit)
            goto bad;
        if (bit == 1 && val.tag == 0x04 && val.len == 16) {
            memcpy(o->ppid, val.val, 16);
            seen |= 1;
        } else if (bit == 2 && val.tag == 0x04 && val.len == 2) {
            memcpy(o->pceid, val.val, 2);
            seen |= 2;
        } else if (bit == 4 && val.tag == 0x04 && val.len == 6) {
            memcpy(o->fmspc, val.val, 6);
            seen |= 4;
        } else if (bit == 8 && val.tag == 0x30) {
            mt_rd tr;
            mt_rd_init(&tr, val.val, val.len);
            unsigned comps = 0;
            while (mt_rd_left(&tr)) {
                mt_der ti, to, tv;
                mt_rd tir;
                char tn[64];
                if (!mt_der_next(&tr, &ti) || ti.tag != 0x30)
                    goto bad;
                mt_rd_init(&tir, ti.val, ti.len);
                if (!mt_der_next(&tir, &to) || to.tag != 0x06 || !mt_der_next(&tir, &tv) ||
                    mt_rd_left(&tir) || !mt_der_oid_text(to.val, to.len, tn, sizeof tn) ||
                    strncmp(tn, SGX_OID ".2.", strlen(SGX_OID ".2.")) != 0)
                    goto bad;
                /* The last arc, exactly: 1 or 2 decimal digits and nothing
                 * after (a deeper OID such as .2.1.5 is not component 1). */
                const char *ks = tn + strlen(SGX_OID ".2.");
                size_t kn = strlen(ks);
                if (kn < 1 || kn > 2 || ks[0] < '0' || ks[0] > '9' ||
                    (kn == 2 && (ks[1] < '0' || ks[1] > '9')))
                    goto bad;
                int k = kn == 1 ? ks[0] - '0' : (ks[0] - '0') * 10 + (ks[1] - '0');
                uint64_t v;
                if (k >= 1 && k <= 18 && (comps & (1u << (k - 1))))
                    goto bad; /* repeated component */
                if (k >= 1 && k <= 16) {
                    if (!mt_der_uint(&tv, &v) || v > 255)
                        goto bad;
                    o->comp[k - 1] = (uint8_t)v;
                    comps |= 1u << (k - 1);
                } else if (k == 17) {
                    if (!mt_der_uint(&tv, &v) || v > 65535)
                        goto bad;
                    o->pcesvn = (uint16_t)v;
                    comps |= 1u << 16;
                } else if (k == 18) {
                    if (tv.tag != 0x04 || tv.len != 16)
                        goto bad;
                    memcpy(o->cpusvn, tv.val, 16);
                    comps |= 1u << 17;
                }
            }
            if ((comps & 0x1ffffu) != 0x1ffffu)
                goto bad;
            seen |= 8;
        }
    }
    if (seen != 15)
        goto bad;
    return MT_OK;
bad:
    return mt_err_set(err, MT_EINVAL, "PCK certificate SGX extensions are malformed or incomplete");
}

/* ---- verifier ------------------------------------------------------------ */

/* Verifies the PCK chain of the quote (PEM in the certification data): it
 * ends in the pinned Intel SGX Root CA and verifies at `at`, against both
 * CRLs of dc when given; then reads the PCK SGX extensions. On success *out
 * holds references to the leaf and root, and [*lo, *hi] the window of every
 * certificate and CRL involved (*lo >= *hi when it cannot be known). */
static mt_status pck_verify(const mt_dcap_quote *q, const mt_dcap_coll *dc, int64_t at,
                            mt_dcap_pck *out, int64_t *lo, int64_t *hi, mt_err *err)
{
    STACK_OF(X509) *certs = NULL, *untrusted = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    mt_status st;
    *lo = *hi = 0;
    /* PCK chain: leaf, intermediate(s), root (the root must be the pin). */
    if ((st = mt_x5_load_certs(q->cert_data, q->cert_len, "quote PCK certificate chain", &certs,
                               err)) != MT_OK)
        goto out;
    int nc = sk_X509_num(certs);
    if (nc < 2) {
        st = mt_err_set(err, MT_EINVAL, "quote PCK chain has %d certificates, expected 3", nc);
        goto out;
    }
    X509 *pck = sk_X509_value(certs, 0);
    X509 *root = NULL;
    untrusted = sk_X509_new_null();
    if (!untrusted) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 1; i < nc; i++) {
        X509 *c = sk_X509_value(certs, i);
        if (mt_x5_is_pinned(c, intel_root_pin))
            root = c;
        else
            sk_X509_push(untrusted, c);
    }
    if (!root) {
        st = mt_err_set(err, MT_EAUTH, "quote PCK chain does not end in the pinned Intel SGX Root CA");
        goto out;
    }
    if ((dc->pck_crl != NULL) != (dc->root_crl != NULL)) {
        st = mt_err_set(err, MT_EINVAL, "give both the PCK CRL and the root CA CRL, or neither");
        goto out;
    }
    if (dc->pck_crl) {
        crls = sk_X509_CRL_new_null();
        if (!crls || !sk_X509_CRL_push(crls, dc->pck_crl) || !sk_X509_CRL_push(crls, dc->root_crl)) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
    }
    if ((st = mt_x5_verify_chain(pck, untrusted, root, crls, at, "PCK -> Intel SGX Root CA", err)) !=
        MT_OK)
        goto out;

    /* PCK extensions. */
    const uint8_t *xv;
    size_t xl;
    if (!mt_x5_ext(pck, SGX_OID, &xv, &xl)) {
        st = mt_err_set(err, MT_EAUTH, "PCK certificate has no SGX extensions");
        goto out;
    }
    if ((st = mt_dcap_pck_ext_parse(xv, xl, &out->ext, err)) != MT_OK)
        goto out;
    if (!mt_x5_fingerprint(root, out->root_fp) || X509_up_ref(pck) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "cannot reference the PCK chain");
        goto out;
    }
    if (X509_up_ref(root) != 1) {
        X509_free(pck);
        st = mt_err_set(err, MT_EINTERNAL, "cannot reference the PCK chain");
        goto out;
    }
    out->leaf = pck;
    out->root = root;
    if (!mt_x5_validity(certs, NULL, crls, lo, hi))
        *lo = *hi = 0;
    st = MT_OK;
out:
    sk_X509_CRL_free(crls); /* the CRLs themselves belong to dc */
    sk_X509_free(untrusted);
    sk_X509_pop_free(certs, X509_free);
    return st;
}

/* The key of a PCK chain in the handle's chain slots: SHA-256 over a label
 * (NUL included) and the quote's certification data. The label keeps it
 * apart from the SEV-SNP verifier's keys (mt_snp.c chain_key hashes its own
 * label first), on top of the slots' kind (MT_DCAP_CHAIN_INTEL_PCK). */
static bool pck_key(const uint8_t *cd, size_t cl, uint8_t key[32])
{
    static const char label[] = "mesatee DCAP PCK chain v1";
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    bool ok = mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(mc, label, sizeof label) == 1 && EVP_DigestUpdate(mc, cd, cl) == 1 &&
              EVP_DigestFinal_ex(mc, key, NULL) == 1;
    EVP_MD_CTX_free(mc);
    return ok;
}

mt_status mt_dcap_verify(mt_attest_kind kind, const uint8_t *ev, size_t len,
                         const mt_attest_collateral *coll, int64_t at,
                         mt_attest_claims *claims, mt_err *err)
{
    uint16_t ver = len >= 2 ? (uint16_t)(ev[0] | ev[1] << 8) : 0;
    if (kind == MT_ATTEST_TDX && (ver < 4 || ver > 5))
        return mt_err_set(err, MT_EINVAL, "unsupported TDX quote version %u (expected 4 or 5)", ver);
    if (kind == MT_ATTEST_SGX && (ver < 3 || ver > 4))
        return mt_err_set(err, MT_EINVAL, "unsupported SGX quote version %u (expected 3 or 4)", ver);
    mt_dcap_quote q;
    mt_status st = mt_dcap_quote_parse(ev, len, &q, err);
    if (st != MT_OK)
        return st;
    bool tdx = q.tee_type == MT_DCAP_TEE_TDX;
    if (tdx != (kind == MT_ATTEST_TDX))
        return mt_err_set(err, MT_EINVAL, "quote is a%s quote, not %s", tdx ? " TDX" : "n SGX",
                          kind == MT_ATTEST_TDX ? "TDX" : "SGX");
    if (memcmp(q.qe_vendor_id, intel_qe_vendor, 16) != 0)
        return mt_err_set(err, MT_EAUTH, "quote QE vendor id is not Intel's");

    mt_dcap_state *ds = NULL;
    mt_dcap_cache *cache = mt_attest_coll_dcap_cache(coll);
    mt_dcap_pck pck = {0};
    EVP_PKEY *ak = NULL;
    if ((st = mt_dcap_state_get(coll, &ds, err)) != MT_OK)
        goto out;
    const mt_dcap_coll *dc = mt_dcap_state_coll(ds);

    /* The PCK chain, or the same chain bytes verified before inside their
     * window with this handle's CRLs. */
    uint8_t key[32];
    bool keyed = cache && pck_key(q.cert_data, q.cert_len, key);
    if (!keyed || !mt_dcap_cache_pck_get(cache, MT_DCAP_CHAIN_INTEL_PCK, key, at, &pck)) {
        int64_t lo, hi;
        if ((st = pck_verify(&q, dc, at, &pck, &lo, &hi, err)) != MT_OK)
            goto out;
        pck.hi = lo < hi ? hi : at;
        if (keyed && lo < hi)
            mt_dcap_cache_pck_put(cache, MT_DCAP_CHAIN_INTEL_PCK, key, &pck, lo, hi);
    }
    X509 *root = pck.root;
    const mt_pck_ext px = pck.ext;

    /* QE report signed by the PCK: or the same report, signature and
     * attestation key seen with this chain before (mt_dcap_coll.h). */
    bool qe_known = keyed && mt_dcap_cache_qe_get(cache, MT_DCAP_CHAIN_INTEL_PCK, key,
                                                  q.qe_report_raw, q.qe_sig, q.att_key, &ak);
    EVP_PKEY *pk = qe_known ? NULL : X509_get0_pubkey(pck.leaf);
    if (!qe_known && (!pk || !mt_x5_ecdsa_verify(pk, EVP_sha256(), q.qe_report_raw,
                                                 QE_REPORT_LEN, q.qe_sig, q.qe_sig + 32, 32,
                                                 false))) {
        st = mt_err_set(err, MT_EAUTH, "PCK signature over the QE report does not verify");
        goto out;
    }
    /* QE report_data binds the attestation key and auth data. */
    {
        uint8_t h[32], zero[32] = {0};
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        unsigned hl = 0;
        bool ok = mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(mc, q.att_key, 64) == 1 &&
                  EVP_DigestUpdate(mc, q.auth_data, q.auth_len) == 1 &&
                  EVP_DigestFinal_ex(mc, h, &hl) == 1;
        EVP_MD_CTX_free(mc);
        if (!ok) {
            st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
            goto out;
        }
        if (memcmp(h, q.qe_report.report_data, 32) != 0 ||
            memcmp(zero, q.qe_report.report_data + 32, 32) != 0) {
            st = mt_err_set(err, MT_EAUTH,
                            "QE report data does not bind the attestation key "
                            "(SHA-256(key || auth data) mismatch)");
            goto out;
        }
    }
    /* The quote signature by the attestation key. */
    if (!qe_known) {
        if ((st = mt_x5_ec_pub_from_xy("P-256", q.att_key, 64, &ak, err)) != MT_OK)
            goto out;
        if (keyed)
            mt_dcap_cache_qe_put(cache, MT_DCAP_CHAIN_INTEL_PCK, key, q.qe_report_raw, q.qe_sig,
                                 q.att_key, ak);
    }
    if (!mt_x5_ecdsa_verify(ak, EVP_sha256(), ev, q.signed_len, q.sig, q.sig + 32, 32, false)) {
        st = mt_err_set(err, MT_EAUTH, "attestation key signature over the quote does not verify");
        goto out;
    }

    /* TCB. */
    mt_dcap_platform p = {0};
    p.tdx = tdx;
    memcpy(p.fmspc, px.fmspc, 6);
    memcpy(p.pceid, px.pceid, 2);
    memcpy(p.sgx_comp, px.comp, 16);
    p.pcesvn = px.pcesvn;
    if (tdx) {
        memcpy(p.tee_tcb_svn, q.td.tee_tcb_svn, 16);
        memcpy(p.mrsignerseam, q.td.mrsignerseam, 48);
        memcpy(p.seam_attributes, q.td.seam_attributes, 8);
    }
    memcpy(p.qe_mrsigner, q.qe_report.mrsigner, 32);
    p.qe_isvprodid = q.qe_report.isv_prod_id;
    p.qe_isvsvn = q.qe_report.isv_svn;
    p.qe_miscselect = q.qe_report.miscselect;
    memcpy(p.qe_attributes, q.qe_report.attributes, 16);
    if ((st = mt_dcap_coll_evaluate(ds, root, pck.root_fp, &p, at, claims, err)) != MT_OK)
        goto out;
    mt_attest_claims_until(claims, pck.hi); /* the TCB info / QE identity bound it too */
    if (dc->pck_crl) /* and root_crl: pck_verify requires both or neither */
        claims->checked |= MT_ATTEST_CHECKED_REVOCATION;

    /* Claims. */
    char fm[13];
    mt_hex_encode(px.fmspc, 6, fm);
    snprintf(claims->product, sizeof claims->product, "%s FMSPC %s", tdx ? "TDX" : "SGX", fm);
    snprintf(claims->endorsement, sizeof claims->endorsement, "PCK");
    mt_attest_claims_add_svn(claims, "quote_version", q.version);
    mt_attest_claims_add_svn(claims, "qe_svn", q.qe_svn);
    mt_attest_claims_add_svn(claims, "pce_svn", q.pce_svn);
    mt_attest_claims_add_svn(claims, "pck.pcesvn", px.pcesvn);
    mt_attest_claims_add_svn(claims, "qe.isv_svn", q.qe_report.isv_svn);
    mt_attest_claims_add_meas(claims, "fmspc", px.fmspc, 6);
    mt_attest_claims_add_meas(claims, "pck.tcb_components", px.comp, 16);
    if (tdx) {
        const mt_td_report_body *b = &q.td;
        mt_attest_claims_add_meas(claims, "mrtd", b->mrtd, 48);
        for (int i = 0; i < 4; i++) {
            char nm[8];
            snprintf(nm, sizeof nm, "rtmr%d", i);
            mt_attest_claims_add_meas(claims, nm, b->rtmr[i], 48);
        }
        mt_attest_claims_add_meas(claims, "mrconfigid", b->mrconfigid, 48);
        mt_attest_claims_add_meas(claims, "mrowner", b->mrowner, 48);
        mt_attest_claims_add_meas(claims, "mrownerconfig", b->mrownerconfig, 48);
        mt_attest_claims_add_meas(claims, "mrseam", b->mrseam, 48);
        mt_attest_claims_add_meas(claims, "mrsignerseam", b->mrsignerseam, 48);
        mt_attest_claims_add_meas(claims, "tee_tcb_svn", b->tee_tcb_svn, 16);
        mt_attest_claims_add_meas(claims, "td_attributes", b->td_attributes, 8);
        mt_attest_claims_add_meas(claims, "seam_attributes", b->seam_attributes, 8);
        mt_attest_claims_add_meas(claims, "xfam", b->xfam, 8);
        if (b->v15) {
            mt_attest_claims_add_meas(claims, "tee_tcb_svn2", b->tee_tcb_svn2, 16);
            mt_attest_claims_add_meas(claims, "mrservicetd", b->mrservicetd, 48);
        }
        mt_attest_claims_add_svn(claims, "tdx_module.svn", b->tee_tcb_svn[0]);
        mt_attest_claims_add_svn(claims, "tdx_module.major", b->tee_tcb_svn[1]);
        /* every TEE_TCB_SVN component, for minimums (policy min_svns, the
         * KeyStore release policy's min_svn) compared as the TCB info does */
        for (int i = 0; i < 16; i++) {
            char nm[MT_ATTEST_NAME_MAX];
            snprintf(nm, sizeof nm, "tee_tcb_svn.%d", i);
            mt_attest_claims_add_svn(claims, nm, b->tee_tcb_svn[i]);
        }
        memcpy(claims->signer, b->mrowner, 48);
        claims->signer_len = 48;
        claims->debug = (b->td_attributes[0] & 0x01) != 0;
        memcpy(claims->report_data, b->report_data, 64);
    } else {
        const mt_sgx_report_body *b = &q.sgx;
        mt_attest_claims_add_meas(claims, "mrenclave", b->mrenclave, 32);
        mt_attest_claims_add_meas(claims, "mrsigner", b->mrsigner, 32);
        mt_attest_claims_add_meas(claims, "attributes", b->attributes, 16);
        mt_attest_claims_add_meas(claims, "config_id", b->config_id, 64);
        mt_attest_claims_add_meas(claims, "isv_family_id", b->isv_family_id, 16);
        mt_attest_claims_add_meas(claims, "isv_ext_prod_id", b->isv_ext_prod_id, 16);
        mt_attest_claims_add_meas(claims, "cpusvn", b->cpusvn, 16);
        mt_attest_claims_add_svn(claims, "isv_prod_id", b->isv_prod_id);
        mt_attest_claims_add_svn(claims, "isv_svn", b->isv_svn);
        mt_attest_claims_add_svn(claims, "config_svn", b->config_svn);
        mt_attest_claims_add_svn(claims, "miscselect", b->miscselect);
        memcpy(claims->signer, b->mrsigner, 32);
        claims->signer_len = 32;
        claims->debug = (b->attributes[0] & 0x02) != 0;
        memcpy(claims->report_data, b->report_data, 64);
    }
    claims->report_data_len = 64;
    st = MT_OK;
out:
    EVP_PKEY_free(ak);
    X509_free(pck.leaf);
    X509_free(pck.root);
    mt_dcap_state_put(ds);
    return st;
}
