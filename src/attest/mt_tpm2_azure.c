/* mt_tpm2_azure: Azure vTPM evidence (HCL report -> hardware report ->
 * runtime claims -> HCLAkPub -> TPM quote). See mt_tpm2_azure.h. */
#include "mt_tpm2_azure.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_rd.h"
#include "mt_util.h"

#define HCL_HEADER_LEN 32
#define HCL_HW_LEN 1184
#define HCL_RUNTIME_HDR 20
#define HCL_CLAIMS_MAX (64u * 1024u)
#define TDREPORT_LEN 1024

mt_status mt_hcl_report_parse(const uint8_t *buf, size_t len, mt_hcl_report *h, mt_err *err)
{
    memset(h, 0, sizeof *h);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    const uint8_t *magic = mt_rd_take(&r, 4);
    h->version = mt_rd_u32le(&r);
    h->report_size = mt_rd_u32le(&r);
    h->request_type = mt_rd_u32le(&r);
    mt_rd_skip(&r, 16);
    if (!mt_rd_ok(&r) || memcmp(magic, "HCLA", 4) != 0)
        return mt_err_set(err, MT_EINVAL, "not an Azure HCL report (magic \"HCLA\" expected)");
    if (h->version < 1 || h->version > 2)
        return mt_err_set(err, MT_EINVAL, "HCL report version %u is not supported (1 or 2)",
                          (unsigned)h->version);
    if (h->report_size > len || h->report_size < HCL_HEADER_LEN + HCL_HW_LEN + HCL_RUNTIME_HDR)
        return mt_err_set(err, MT_EINVAL, "HCL report size %u does not fit the %zu bytes given",
                          (unsigned)h->report_size, len);
    h->hw_report = mt_rd_take(&r, HCL_HW_LEN);
    h->data_size = mt_rd_u32le(&r);
    h->data_version = mt_rd_u32le(&r);
    h->report_type = mt_rd_u32le(&r);
    h->hash_type = mt_rd_u32le(&r);
    h->claims_len = mt_rd_u32le(&r);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "HCL report is truncated");
    if (h->report_type != MT_HCL_REPORT_TYPE_SNP && h->report_type != MT_HCL_REPORT_TYPE_TDX)
        return mt_err_set(err, MT_EINVAL, "HCL report type %u is not SNP (2) or TDX (4)",
                          (unsigned)h->report_type);
    if (h->hash_type < 1 || h->hash_type > 3)
        return mt_err_set(err, MT_EINVAL, "HCL runtime-claims hash type %u is unknown",
                          (unsigned)h->hash_type);
    if (h->claims_len == 0 || h->claims_len > HCL_CLAIMS_MAX ||
        h->data_size != HCL_RUNTIME_HDR + h->claims_len ||
        h->report_size != HCL_HEADER_LEN + HCL_HW_LEN + h->data_size)
        return mt_err_set(
            err, MT_EINVAL, "HCL report sizes disagree (report %u, runtime data %u, claims %u)",
            (unsigned)h->report_size, (unsigned)h->data_size, (unsigned)h->claims_len);
    h->claims = mt_rd_take(&r, h->claims_len);
    if (!mt_rd_ok(&r))
        return mt_err_set(err, MT_EINVAL, "HCL report is truncated in the runtime claims");
    /* The NV index is larger than the report: the rest must be zero. */
    while (mt_rd_left(&r)) {
        if (mt_rd_u8(&r) != 0)
            return mt_err_set(err, MT_EINVAL, "HCL report has non-zero bytes after its end");
    }
    if (h->report_type == MT_HCL_REPORT_TYPE_TDX) {
        for (size_t i = TDREPORT_LEN; i < HCL_HW_LEN; i++)
            if (h->hw_report[i])
                return mt_err_set(err, MT_EINVAL, "HCL TDREPORT padding is not zero");
    }
    return MT_OK;
}

/* base64url (no padding) of at most max decoded bytes into a heap buffer. */
static mt_status b64url_decode(const char *s, size_t max, uint8_t **out, size_t *out_len,
                               mt_err *err)
{
    size_t n = strlen(s);
    if (n > (max / 3 + 1) * 4)
        return mt_err_set(err, MT_EINVAL, "HCLAkPub: base64url value is too long");
    char *t = malloc(n + 4);
    if (!t)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' || c == '/' || c == '=') {
            free(t);
            return mt_err_set(err, MT_EINVAL, "HCLAkPub: value is not base64url");
        }
        t[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    size_t m = n;
    while (m % 4)
        t[m++] = '=';
    t[m] = 0;
    mt_status st = mt_b64_decode(t, out, out_len, err);
    free(t);
    return st;
}

/* The RSA key of runtime claims keys[kid=HCLAkPub]; *user_data gets the
 * decoded "user-data" hex (up to 64 bytes) when present. */
static mt_status claims_ak(const uint8_t *json, size_t len, EVP_PKEY **out, uint8_t ud[64],
                           size_t *ud_len, mt_err *err)
{
    *out = NULL;
    *ud_len = 0;
    json_t *root = mt_json_parse((const char *)json, len, HCL_CLAIMS_MAX, 8, err);
    if (!root)
        return err ? err->code : MT_EINVAL;
    json_t *keys = NULL;
    uint8_t *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    mt_status st = mt_json_array(root, "keys", 16, &keys, err);
    if (st != MT_OK)
        goto out;
    const json_t *ak = NULL;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const json_t *k = json_array_get(keys, i);
        const char *kid = NULL;
        if (json_is_object(k) && mt_json_str_opt(k, "kid", 64, &kid, NULL, NULL) == MT_OK && kid &&
            strcmp(kid, "HCLAkPub") == 0) {
            if (ak) { /* which one another verifier would take is not defined */
                st = mt_err_set(err, MT_EINVAL, "runtime claims name two keys \"HCLAkPub\"");
                goto out;
            }
            ak = k;
        }
    }
    if (!ak) {
        st = mt_err_set(err, MT_EINVAL, "runtime claims have no key with kid \"HCLAkPub\"");
        goto out;
    }
    const char *kty = NULL, *ns = NULL, *es = NULL;
    if ((st = mt_json_str(ak, "kty", 8, &kty, err)) != MT_OK)
        goto out;
    if (strcmp(kty, "RSA") != 0) {
        st = mt_err_set(err, MT_EINVAL, "HCLAkPub is a %s key, not RSA", kty);
        goto out;
    }
    if ((st = mt_json_str(ak, "n", 1024, &ns, err)) != MT_OK ||
        (st = mt_json_str(ak, "e", 16, &es, err)) != MT_OK ||
        (st = b64url_decode(ns, 512, &n, &nl, err)) != MT_OK ||
        (st = b64url_decode(es, 8, &e, &el, err)) != MT_OK)
        goto out;
    if (nl < 256 || nl > 512 || el == 0 || el > 8) {
        st =
            mt_err_set(err, MT_EINVAL, "HCLAkPub modulus (%zu bytes) or exponent is malformed", nl);
        goto out;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pc = NULL;
    if (!bn || !be || !bld || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        *out = NULL;
        st = mt_err_set(err, MT_EINVAL, "HCLAkPub is not a usable RSA key");
    }
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    ERR_clear_error();
    if (st != MT_OK)
        goto out;
    const char *uds = NULL;
    if (mt_json_str_opt(root, "user-data", 128, &uds, NULL, NULL) != MT_OK ||
        (uds && (strlen(uds) % 2 != 0 || strlen(uds) > 128 ||
                 mt_hex_decode(uds, ud, strlen(uds) / 2, NULL) != MT_OK))) {
        /* present but malformed: refused rather than read as absent */
        st = mt_err_set(err, MT_EINVAL, "runtime claims' user-data is not at most 64 bytes of hex");
        goto out;
    }
    if (uds)
        *ud_len = strlen(uds) / 2;
out:
    free(n);
    free(e);
    json_decref(root);
    return st;
}

/* TDX: the quote's body must be the TDREPORT's (report data, MRTD, RTMRs). */
static mt_status tdx_bind(const uint8_t *tdr, const mt_attest_claims *hw, mt_err *err)
{
    static const struct {
        const char *name;
        size_t off;
    } f[] = {{"mrtd", 528}, {"rtmr0", 720}, {"rtmr1", 768}, {"rtmr2", 816}, {"rtmr3", 864}};
    if (hw->report_data_len != 64 || memcmp(hw->report_data, tdr + 128, 64) != 0)
        return mt_err_set(err, MT_EAUTH, "TDX quote report_data differs from the HCL TDREPORT's");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        const mt_attest_measurement *m = mt_attest_claims_measurement(hw, f[i].name);
        if (!m || m->len != 48 || memcmp(m->value, tdr + f[i].off, 48) != 0)
            return mt_err_set(err, MT_EAUTH, "TDX quote %s differs from the HCL TDREPORT's",
                              f[i].name);
    }
    return MT_OK;
}

static mt_status azure_verify(const mt_tpm2_azure_in *in, mt_attest_claims *hw,
                              mt_attest_claims *tpm, mt_err *err)
{
    mt_hcl_report h;
    mt_status st = mt_hcl_report_parse(in->hcl, in->hcl_len, &h, err);
    if (st != MT_OK)
        return st;
    if (h.report_type == MT_HCL_REPORT_TYPE_SNP) {
        st =
            mt_attest_verify(MT_ATTEST_SEV_SNP, h.hw_report, HCL_HW_LEN, in->coll, in->at, hw, err);
    } else {
        if (!in->td_quote)
            return mt_err_set(err, MT_EINVAL,
                              "HCL report holds a TDX TDREPORT: the TD quote of it is needed");
        st = mt_attest_verify(MT_ATTEST_TDX, in->td_quote, in->td_quote_len, in->coll, in->at, hw,
                              err);
        if (st == MT_OK)
            st = tdx_bind(h.hw_report, hw, err);
    }
    if (st != MT_OK)
        return st;
    /* report_data[0:H] = H(runtime claims). */
    static const uint16_t algs[] = {0, MT_TPM2_ALG_SHA256, MT_TPM2_ALG_SHA384, MT_TPM2_ALG_SHA512};
    uint8_t dig[64];
    unsigned int dl = 0;
    if (EVP_Digest(h.claims, h.claims_len, dig, &dl, mt_tpm2_hash_md(algs[h.hash_type]), NULL) != 1)
        return mt_err_set(err, MT_EINTERNAL, "hashing the runtime claims failed in OpenSSL");
    if (hw->report_data_len < dl || memcmp(hw->report_data, dig, dl) != 0)
        return mt_err_set(err, MT_EAUTH,
                          "the hardware report does not bind the HCL runtime claims "
                          "(report_data is not their hash)");
    EVP_PKEY *ak = NULL;
    uint8_t ud[64];
    size_t udl = 0;
    if ((st = claims_ak(h.claims, h.claims_len, &ak, ud, &udl, err)) != MT_OK)
        return st;
    mt_tpm2_quote_in q = in->quote;
    q.ak = ak;
    st = mt_tpm2_quote_verify(&q, tpm, err);
    if (st == MT_OK) {
        unsigned char *spki = NULL;
        int sl = i2d_PUBKEY(ak, &spki);
        if (sl > 0 && (size_t)sl <= sizeof tpm->public_key) {
            memcpy(tpm->public_key, spki, (size_t)sl);
            tpm->public_key_len = (size_t)sl;
        }
        OPENSSL_free(spki);
        memcpy(tpm->user_data, ud, udl);
        tpm->user_data_len = udl;
        snprintf(tpm->endorsement, sizeof tpm->endorsement, "HCLAkPub");
        snprintf(tpm->product, sizeof tpm->product, "azure-vtpm %s %.40s",
                 h.report_type == MT_HCL_REPORT_TYPE_SNP ? "sev-snp" : "tdx", hw->product);
    }
    EVP_PKEY_free(ak);
    return st;
}

mt_status mt_tpm2_azure_verify(const mt_tpm2_azure_in *in, mt_attest_claims *hw,
                               mt_attest_claims *tpm, mt_err *err)
{
    if (!in || !hw || !tpm || !in->hcl)
        return mt_err_set(err, MT_EINVAL, "mt_tpm2_azure_verify: NULL argument");
    memset(hw, 0, sizeof *hw);
    memset(tpm, 0, sizeof *tpm);
    mt_status st = azure_verify(in, hw, tpm, err);
    if (st != MT_OK) {
        memset(hw, 0, sizeof *hw);
        memset(tpm, 0, sizeof *tpm);
    }
    return st;
}
