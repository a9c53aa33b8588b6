/* mt_dcap_coll: DCAP collateral reader and TCB evaluation; see mt_dcap_coll.h. */
#include "mt_dcap_coll.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mt_attest_int.h"
#include "mt_json.h"
#include "mt_util.h"
#include "mt_x5.h"

#define JSON_MAX (1024u * 1024u)
#define MAX_LEVELS 128
#define MAX_ADV 32

/* ---- raw JSON spans ------------------------------------------------------ */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Index just past the string starting at s[i] == '"', or 0 on error. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Index just past the JSON value at s[i], or 0 on error. */
static size_t skip_value(const char *s, size_t n, size_t i, int depth)
{
    if (i >= n || depth > 64)
        return 0;
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = skip_ws(s, n, i + 1);
        if (i < n && s[i] == close)
            return i + 1;
        for (;;) {
            if (close == '}') {
                if (i >= n || s[i] != '"' || !(i = skip_string(s, n, i)))
                    return 0;
                i = skip_ws(s, n, i);
                if (i >= n || s[i] != ':')
                    return 0;
                i = skip_ws(s, n, i + 1);
            }
            if (!(i = skip_value(s, n, i, depth + 1)))
                return 0;
            i = skip_ws(s, n, i);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, n, i + 1);
                continue;
            }
            if (i < n && s[i] == close)
                return i + 1;
            return 0;
        }
    }
    size_t st = i;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.'))
        i++;
    return i > st ? i : 0;
}

bool mt_dcap_json_member(const char *s, size_t n, const char *key, const char **val,
                         size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return false;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t ks = i + 1, ke = skip_string(s, n, i);
        if (!ke)
            return false;
        i = skip_ws(s, n, ke);
        if (i >= n || s[i] != ':')
            return false;
        i = skip_ws(s, n, i + 1);
        size_t ve = skip_value(s, n, i, 0);
        if (!ve)
            return false;
        if (ke - 1 - ks == klen && memcmp(s + ks, key, klen) == 0) {
            *val = s + i;
            *vlen = ve - i;
            return true;
        }
        i = skip_ws(s, n, ve);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
    }
    return false;
}

/* ---- loading ------------------------------------------------------------- */

void mt_dcap_coll_clear(mt_dcap_coll *c)
{
    free(c->tcb_raw);
    free(c->qe_raw);
    sk_X509_pop_free(c->tcb_chain, X509_free);
    sk_X509_pop_free(c->qe_chain, X509_free);
    X509_CRL_free(c->pck_crl);
    X509_CRL_free(c->root_crl);
    memset(c, 0, sizeof *c);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Replaces *slot with a copy of n bytes. */
static mt_status set_raw(char **slot, size_t *slot_len, const char *s, size_t n, mt_err *err)
{
    char *d = dup_n(s, n);
    if (!d)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    free(*slot);
    *slot = d;
    *slot_len = n;
    return MT_OK;
}

static mt_status set_chain(STACK_OF(X509) **slot, const uint8_t *b, size_t n, const char *what,
                           mt_err *err)
{
    STACK_OF(X509) *sk = NULL;
    mt_status st = mt_x5_load_certs(b, n, what, &sk, err);
    if (st != MT_OK)
        return st;
    sk_X509_pop_free(*slot, X509_free);
    *slot = sk;
    return MT_OK;
}

/* A CRL given as DER, PEM, or hex text of DER (the bundle's form). */
static mt_status set_crl(X509_CRL **slot, const uint8_t *b, size_t n, const char *what,
                         mt_err *err)
{
    mt_status st;
    X509_CRL *crl = NULL;
    if (n >= 2 && n % 2 == 0 && isxdigit(b[0]) && isxdigit(b[1]) && b[0] == '3' && b[1] == '0') {
        uint8_t *der = malloc(n / 2);
        if (!der)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        char *hex = dup_n((const char *)b, n);
        st = hex ? mt_hex_decode(hex, der, n / 2, err) : MT_ENOMEM;
        free(hex);
        if (st == MT_OK)
            st = mt_x5_load_crl(der, n / 2, what, &crl, err);
        else
            st = mt_err_set(err, MT_EINVAL, "%s: bad hex", what);
        free(der);
    } else {
        st = mt_x5_load_crl(b, n, what, &crl, err);
    }
    if (st != MT_OK)
        return st;
    X509_CRL_free(*slot);
    *slot = crl;
    return MT_OK;
}

/* 64-byte r||s from 128 hex characters. */
static mt_status sig_hex(const char *hex, size_t n, uint8_t out[64], const char *what,
                         mt_err *err)
{
    char buf[129];
    if (n != 128)
        return mt_err_set(err, MT_EINVAL, "%s signature is not 128 hex characters", what);
    memcpy(buf, hex, 128);
    buf[128] = 0;
    if (mt_hex_decode(buf, out, 64, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "%s signature is not hex", what);
    return MT_OK;
}

/* The QuoteCollateralV3 JSON bundle. */
static mt_status load_bundle(const uint8_t *b, size_t n, mt_dcap_coll *o, mt_err *err)
{
    json_t *j = mt_json_parse((const char *)b, n, JSON_MAX, MT_JSON_DEFAULT_DEPTH, err);
    if (!j)
        return mt_err_prefix(err, MT_EINVAL, "DCAP collateral bundle: ");
    mt_status st = MT_OK;
    const char *s = NULL;
    static const char *const opt_keys[] = {"pck_crl_issuer_chain", "root_ca_crl", "pck_crl",
                                           "tcb_info_issuer_chain", "qe_identity_issuer_chain"};
    for (size_t i = 0; i < 5 && st == MT_OK; i++) {
        st = mt_json_str_opt(j, opt_keys[i], JSON_MAX, &s, NULL, err);
        if (st != MT_OK || !s)
            continue;
        size_t sl = strlen(s);
        if (i == 1)
            st = set_crl(&o->root_crl, (const uint8_t *)s, sl, "root CA CRL", err);
        else if (i == 2)
            st = set_crl(&o->pck_crl, (const uint8_t *)s, sl, "PCK CRL", err);
        else if (i == 3)
            st = set_chain(&o->tcb_chain, (const uint8_t *)s, sl, "TCB info issuer chain", err);
        else if (i == 4)
            st = set_chain(&o->qe_chain, (const uint8_t *)s, sl, "QE identity issuer chain", err);
    }
    const char *raw = NULL, *sig = NULL;
    if (st == MT_OK && (st = mt_json_str_opt(j, "tcb_info", JSON_MAX, &raw, NULL, err)) == MT_OK &&
        raw) {
        if ((st = mt_json_str(j, "tcb_info_signature", 256, &sig, err)) == MT_OK &&
            (st = sig_hex(sig, strlen(sig), o->tcb_sig, "TCB info", err)) == MT_OK)
            st = set_raw(&o->tcb_raw, &o->tcb_raw_len, raw, strlen(raw), err);
    }
    if (st == MT_OK &&
        (st = mt_json_str_opt(j, "qe_identity", JSON_MAX, &raw, NULL, err)) == MT_OK && raw) {
        if ((st = mt_json_str(j, "qe_identity_signature", 256, &sig, err)) == MT_OK &&
            (st = sig_hex(sig, strlen(sig), o->qe_sig, "QE identity", err)) == MT_OK)
            st = set_raw(&o->qe_raw, &o->qe_raw_len, raw, strlen(raw), err);
    }
    json_decref(j);
    if (st != MT_OK) /* every failure above is still unprefixed here */
        mt_err_prefix(err, st, "DCAP collateral bundle: ");
    return st;
}

/* A PCS response {"<member>": {...}, "signature": "hex"}. */
static mt_status load_pcs(const uint8_t *b, size_t n, const char *member, const char *what,
                          char **raw, size_t *raw_len, uint8_t sig[64], mt_err *err)
{
    /* Validate the whole document with the bounded reader first. */
    json_t *j = mt_json_parse((const char *)b, n, JSON_MAX, MT_JSON_DEFAULT_DEPTH, err);
    if (!j)
        return mt_err_set(err, MT_EINVAL, "%s response is not valid JSON", what);
    const char *hs = NULL;
    mt_status st = mt_json_str(j, "signature", 256, &hs, err);
    if (st == MT_OK)
        st = sig_hex(hs, strlen(hs), sig, what, err);
    json_decref(j);
    if (st != MT_OK)
        return st;
    const char *v;
    size_t vl;
    if (!mt_dcap_json_member((const char *)b, n, member, &v, &vl) || vl < 2 || v[0] != '{')
        return mt_err_set(err, MT_EINVAL, "%s response has no '%s' object", what, member);
    return set_raw(raw, raw_len, v, vl, err);
}

mt_status mt_dcap_coll_load(const mt_attest_collateral *coll, mt_dcap_coll *o, mt_err *err)
{
    memset(o, 0, sizeof *o);
    size_t n;
    const uint8_t *b;
    mt_status st = MT_OK;
    if ((b = mt_attest_coll_get(coll, MT_COLL_DCAP_BUNDLE, &n)))
        st = load_bundle(b, n, o, err);
    if (st == MT_OK && (b = mt_attest_coll_get(coll, MT_COLL_TCB_INFO, &n)))
        st = load_pcs(b, n, "tcbInfo", "TCB info", &o->tcb_raw, &o->tcb_raw_len, o->tcb_sig, err);
    if (st == MT_OK && (b = mt_attest_coll_get(coll, MT_COLL_TCB_INFO_CHAIN, &n)))
        st = set_chain(&o->tcb_chain, b, n, "TCB info issuer chain", err);
    if (st == MT_OK && (b = mt_attest_coll_get(coll, MT_COLL_QE_IDENTITY, &n)))
        st = load_pcs(b, n, "enclaveIdentity", "QE identity", &o->qe_raw, &o->qe_raw_len,
                      o->qe_sig, err);
    if (st == MT_OK && (b = mt_attest_coll_get(coll, MT_COLL_QE_IDENTITY_CHAIN, &n)))
        st = set_chain(&o->qe_chain, b, n, "QE identity issuer chain", err);
    if (st == MT_OK && (b = mt_attest_coll_get(coll, MT_COLL_PCK_CRL, &n)))
        st = set_crl(&o->pck_crl, b, n, "PCK CRL", err);
    if (st == MT_OK && (b = mt_attest_coll_get(coll, MT_COLL_ROOT_CRL, &n)))
        st = set_crl(&o->root_crl, b, n, "root CA CRL", err);
    if (st == MT_OK && o->qe_raw && !o->qe_chain && o->tcb_chain) {
        /* Intel uses one signing certificate for both. */
        o->qe_chain = X509_chain_up_ref(o->tcb_chain);
        if (!o->qe_chain)
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (st != MT_OK)
        mt_dcap_coll_clear(o);
    return st;
}

/* ---- TCB info and QE identity model ---------------------------------------- */

typedef struct tcb_level {
    uint8_t sgx[16];
    uint16_t pcesvn;
    uint8_t tdx[16];
    bool has_tdx;
    uint16_t isvsvn; /* QE identity / module identity levels */
    mt_attest_tcb_status status;
    char adv[MAX_ADV][24];
    size_t n_adv;
} tcb_level;

typedef struct module_id {
    char id[16];
    uint8_t mrsigner[48];
    uint8_t attr[8], attr_mask[8];
    tcb_level *levels;
    size_t n_levels;
} module_id;

typedef struct tcb_info {
    bool tdx;
    int64_t issue, next;
    uint8_t fmspc[6], pceid[2];
    int64_t eval;
    tcb_level *levels;
    size_t n_levels;
    bool has_module;
    uint8_t mod_mrsigner[48], mod_attr[8], mod_mask[8];
    module_id *mods;
    size_t n_mods;
} tcb_info;

static void tcb_info_free(tcb_info *t)
{
    free(t->levels);
    for (size_t i = 0; i < t->n_mods; i++)
        free(t->mods[i].levels);
    free(t->mods);
    memset(t, 0, sizeof *t);
}

static bool status_parse(const char *s, mt_attest_tcb_status *out)
{
    static const mt_attest_tcb_status all[] = {
        MT_TCB_UP_TO_DATE,
        MT_TCB_SW_HARDENING_NEEDED,
        MT_TCB_CONFIGURATION_NEEDED,
        MT_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
        MT_TCB_OUT_OF_DATE,
        MT_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
        MT_TCB_REVOKED,
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, mt_attest_tcb_status_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* A hex string field of exactly n bytes. */
static mt_status get_hex(const json_t *o, const char *key, uint8_t *out, size_t n,
                         const char *what, mt_err *err)
{
    const char *s;
    mt_status st = mt_json_str(o, key, 2 * n, &s, err);
    if (st != MT_OK || strlen(s) != 2 * n || mt_hex_decode(s, out, n, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "%s: '%s' is not %zu hex bytes", what, key, n);
    return MT_OK;
}

static mt_status get_time(const json_t *o, const char *key, int64_t *out, const char *what,
                          mt_err *err)
{
    const char *s;
    if (mt_json_str(o, key, 40, &s, err) != MT_OK || mt_attest_time_parse(s, out, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "%s: '%s' is not an RFC 3339 time", what, key);
    return MT_OK;
}

/* An array of 16 {"svn": n} component objects. */
static mt_status get_components(const json_t *tcb, const char *key, uint8_t out[16],
                                const char *what, mt_err *err)
{
    json_t *arr;
    mt_status st = mt_json_array(tcb, key, 16, &arr, err);
    if (st != MT_OK || json_array_size(arr) != 16)
        return mt_err_set(err, MT_EINVAL, "%s: '%s' is not 16 components", what, key);
    for (size_t i = 0; i < 16; i++) {
        int64_t v;
        json_t *c = json_array_get(arr, i);
        if (!json_is_object(c) || mt_json_int(c, "svn", 0, 255, &v, err) != MT_OK)
            return mt_err_set(err, MT_EINVAL, "%s: '%s'[%zu] has no svn in 0..255", what, key, i);
        out[i] = (uint8_t)v;
    }
    return MT_OK;
}

/* The common part of a level: tcbStatus and advisoryIDs. */
static mt_status get_status(const json_t *lv, tcb_level *l, const char *what, mt_err *err)
{
    const char *s;
    if (mt_json_str(lv, "tcbStatus", 64, &s, err) != MT_OK || !status_parse(s, &l->status))
        return mt_err_set(err, MT_EINVAL, "%s: a level has an unknown tcbStatus", what);
    json_t *adv = NULL;
    if (mt_json_array_opt(lv, "advisoryIDs", MAX_ADV, &adv, err) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "%s: advisoryIDs is not a list of at most %d", what,
                          MAX_ADV);
    for (size_t i = 0; adv && i < json_array_size(adv); i++) {
        const char *a = json_string_value(json_array_get(adv, i));
        if (!a || strlen(a) >= sizeof l->adv[0])
            return mt_err_set(err, MT_EINVAL, "%s: bad advisory id", what);
        snprintf(l->adv[l->n_adv++], sizeof l->adv[0], "%s", a);
    }
    return MT_OK;
}

/* tcbLevels of {tcb:{isvsvn}} form (QE identity, TDX module identity). */
static mt_status get_isv_levels(const json_t *o, tcb_level **out, size_t *n, const char *what,
                                mt_err *err)
{
    json_t *arr;
    if (mt_json_array(o, "tcbLevels", MAX_LEVELS, &arr, err) != MT_OK ||
        json_array_size(arr) == 0)
        return mt_err_set(err, MT_EINVAL, "%s: no tcbLevels", what);
    tcb_level *lv = calloc(json_array_size(arr), sizeof *lv);
    if (!lv)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *l = json_array_get(arr, i), *tcb;
        int64_t v;
        if (!json_is_object(l) || !json_is_object(tcb = json_object_get(l, "tcb")) ||
            mt_json_int(tcb, "isvsvn", 0, 65535, &v, err) != MT_OK) {
            free(lv);
            return mt_err_set(err, MT_EINVAL, "%s: level %zu has no tcb.isvsvn", what, i);
        }
        lv[i].isvsvn = (uint16_t)v;
        mt_status st = get_status(l, &lv[i], what, err);
        if (st != MT_OK) {
            free(lv);
            return st;
        }
    }
    *out = lv;
    *n = json_array_size(arr);
    return MT_OK;
}

/* Parses the exact tcbInfo bytes into t. */
static mt_status tcb_info_parse(const char *raw, size_t len, tcb_info *t, mt_err *err)
{
    memset(t, 0, sizeof *t);
    const char *W = "TCB info";
    json_t *j = mt_json_parse(raw, len, JSON_MAX, MT_JSON_DEFAULT_DEPTH, err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return mt_err_set(err, MT_EINVAL, "TCB info is not a JSON object");
    }
    mt_status st;
    const char *id, *fmspc, *pceid;
    int64_t ver, type;
    if ((st = mt_json_str(j, "id", 8, &id, err)) != MT_OK)
        goto out;
    if (strcmp(id, "SGX") && strcmp(id, "TDX")) {
        st = mt_err_set(err, MT_EINVAL, "TCB info id '%s' is neither SGX nor TDX", id);
        goto out;
    }
    t->tdx = strcmp(id, "TDX") == 0;
    if ((st = mt_json_int(j, "version", 0, 100, &ver, err)) != MT_OK)
        goto out;
    if (ver != 3) {
        st = mt_err_set(err, MT_EINVAL, "TCB info version %lld is not supported (need 3)",
                        (long long)ver);
        goto out;
    }
    if ((st = get_time(j, "issueDate", &t->issue, W, err)) != MT_OK ||
        (st = get_time(j, "nextUpdate", &t->next, W, err)) != MT_OK ||
        (st = mt_json_str(j, "fmspc", 12, &fmspc, err)) != MT_OK ||
        (st = mt_json_str(j, "pceId", 4, &pceid, err)) != MT_OK ||
        (st = mt_json_int(j, "tcbType", 0, 100, &type, err)) != MT_OK ||
        (st = mt_json_int(j, "tcbEvaluationDataNumber", 0, INT32_MAX, &t->eval, err)) != MT_OK)
        goto out;
    if (type != 0) {
        st = mt_err_set(err, MT_EINVAL, "TCB info tcbType %lld is not supported", (long long)type);
        goto out;
    }
    if (strlen(fmspc) != 12 || mt_hex_decode(fmspc, t->fmspc, 6, NULL) != MT_OK ||
        strlen(pceid) != 4 || mt_hex_decode(pceid, t->pceid, 2, NULL) != MT_OK) {
        st = mt_err_set(err, MT_EINVAL, "TCB info fmspc or pceId is not hex");
        goto out;
    }
    json_t *mod = json_object_get(j, "tdxModule");
    if (t->tdx && mod) {
        if (!json_is_object(mod) ||
            (st = get_hex(mod, "mrsigner", t->mod_mrsigner, 48, "tdxModule", err)) != MT_OK ||
            (st = get_hex(mod, "attributes", t->mod_attr, 8, "tdxModule", err)) != MT_OK ||
            (st = get_hex(mod, "attributesMask", t->mod_mask, 8, "tdxModule", err)) != MT_OK) {
            st = mt_err_set(err, MT_EINVAL, "TCB info tdxModule is malformed");
            goto out;
        }
        t->has_module = true;
    }
    json_t *mods = NULL;
    if (t->tdx && (st = mt_json_array_opt(j, "tdxModuleIdentities", 32, &mods, err)) != MT_OK)
        goto out;
    if (mods && json_array_size(mods)) {
        t->mods = calloc(json_array_size(mods), sizeof *t->mods);
        if (!t->mods) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < json_array_size(mods); i++) {
            json_t *m = json_array_get(mods, i);
            module_id *mi = &t->mods[t->n_mods++];
            const char *mid;
            if (!json_is_object(m) || mt_json_str(m, "id", 15, &mid, err) != MT_OK ||
                get_hex(m, "mrsigner", mi->mrsigner, 48, "tdxModuleIdentities", err) != MT_OK ||
                get_hex(m, "attributes", mi->attr, 8, "tdxModuleIdentities", err) != MT_OK ||
                get_hex(m, "attributesMask", mi->attr_mask, 8, "tdxModuleIdentities", err) !=
                    MT_OK) {
                st = mt_err_set(err, MT_EINVAL, "TCB info tdxModuleIdentities[%zu] is malformed", i);
                goto out;
            }
            snprintf(mi->id, sizeof mi->id, "%s", mid);
            if ((st = get_isv_levels(m, &mi->levels, &mi->n_levels, "TDX module identity",
                                     err)) != MT_OK)
                goto out;
        }
    }
    json_t *arr;
    if ((st = mt_json_array(j, "tcbLevels", MAX_LEVELS, &arr, err)) != MT_OK)
        goto out;
    if (json_array_size(arr) == 0) {
        st = mt_err_set(err, MT_EINVAL, "TCB info has no tcbLevels");
        goto out;
    }
    t->levels = calloc(json_array_size(arr), sizeof *t->levels);
    if (!t->levels) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *lv = json_array_get(arr, i), *tcb;
        tcb_level *l = &t->levels[t->n_levels++];
        int64_t pce;
        if (!json_is_object(lv) || !json_is_object(tcb = json_object_get(lv, "tcb")) ||
            (st = get_components(tcb, "sgxtcbcomponents", l->sgx, W, err)) != MT_OK ||
            (st = mt_json_int(tcb, "pcesvn", 0, 65535, &pce, err)) != MT_OK) {
            st = mt_err_set(err, MT_EINVAL, "TCB info level %zu is malformed", i);
            goto out;
        }
        l->pcesvn = (uint16_t)pce;
        if (t->tdx) {
            if ((st = get_components(tcb, "tdxtcbcomponents", l->tdx, W, err)) != MT_OK)
                goto out;
            l->has_tdx = true;
        }
        if ((st = get_status(lv, l, W, err)) != MT_OK)
            goto out;
    }
    st = MT_OK;
out:
    json_decref(j);
    if (st != MT_OK)
        tcb_info_free(t);
    return st;
}

mt_status mt_dcap_tcb_info_check(const char *raw, size_t len, mt_err *err)
{
    tcb_info t;
    mt_status st = tcb_info_parse(raw, len, &t, err);
    if (st == MT_OK)
        tcb_info_free(&t);
    return st;
}

typedef struct qe_identity {
    bool td;
    int64_t issue, next;
    uint32_t misc, misc_mask;
    uint8_t attr[16], attr_mask[16], mrsigner[32];
    uint16_t isvprodid;
    tcb_level *levels;
    size_t n_levels;
} qe_identity;

static mt_status qe_identity_parse(const char *raw, size_t len, qe_identity *q, mt_err *err)
{
    memset(q, 0, sizeof *q);
    const char *W = "QE identity";
    json_t *j = mt_json_parse(raw, len, JSON_MAX, MT_JSON_DEFAULT_DEPTH, err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return mt_err_set(err, MT_EINVAL, "QE identity is not a JSON object");
    }
    mt_status st;
    const char *id;
    int64_t ver, prod;
    uint8_t m[4], mm[4];
    if ((st = mt_json_str(j, "id", 8, &id, err)) != MT_OK)
        goto out;
    if (strcmp(id, "QE") && strcmp(id, "TD_QE")) {
        st = mt_err_set(err, MT_EINVAL, "QE identity id '%s' is neither QE nor TD_QE", id);
        goto out;
    }
    q->td = strcmp(id, "TD_QE") == 0;
    if ((st = mt_json_int(j, "version", 0, 100, &ver, err)) != MT_OK)
        goto out;
    if (ver != 2) {
        st = mt_err_set(err, MT_EINVAL, "QE identity version %lld is not supported (need 2)",
                        (long long)ver);
        goto out;
    }
    if ((st = get_time(j, "issueDate", &q->issue, W, err)) != MT_OK ||
        (st = get_time(j, "nextUpdate", &q->next, W, err)) != MT_OK ||
        (st = get_hex(j, "miscselect", m, 4, W, err)) != MT_OK ||
        (st = get_hex(j, "miscselectMask", mm, 4, W, err)) != MT_OK ||
        (st = get_hex(j, "attributes", q->attr, 16, W, err)) != MT_OK ||
        (st = get_hex(j, "attributesMask", q->attr_mask, 16, W, err)) != MT_OK ||
        (st = get_hex(j, "mrsigner", q->mrsigner, 32, W, err)) != MT_OK ||
        (st = mt_json_int(j, "isvprodid", 0, 65535, &prod, err)) != MT_OK ||
        (st = get_isv_levels(j, &q->levels, &q->n_levels, W, err)) != MT_OK)
        goto out;
    /* miscselect is written big-endian in JSON; compare as numbers. */
    q->misc = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
    q->misc_mask = (uint32_t)mm[0] << 24 | (uint32_t)mm[1] << 16 | (uint32_t)mm[2] << 8 | mm[3];
    q->isvprodid = (uint16_t)prod;
out:
    json_decref(j);
    if (st != MT_OK) {
        free(q->levels);
        q->levels = NULL;
    }
    return st;
}

/* ---- verification cache ---------------------------------------------------- */

/* What is known about one signed document (TCB info or QE identity). */
typedef struct signed_doc {
    bool ready;       /* signature over the exact bytes verified, document parsed */
    bool chain_ok;    /* issuer chain verified to root_fp; holds for lo < at < hi */
    int64_t lo, hi;
    uint8_t root_fp[32];
} signed_doc;

struct mt_dcap_state {
    mt_dcap_cache *cache; /* NULL: private state of one verification */
    mt_dcap_coll coll;
    tcb_info tcb;         /* valid once tcb_doc.ready */
    signed_doc tcb_doc;
    qe_identity qe;       /* valid once qe_doc.ready */
    signed_doc qe_doc;
};

typedef struct pck_slot {
    bool used;
    mt_dcap_chain_kind kind; /* which verifier put it; lookups match it */
    uint8_t key[32];
    mt_dcap_pck v;
    int64_t lo, hi;
    /* the QE report verified under v.leaf and its attestation key (ak NULL:
     * none yet) */
    uint8_t qe_report[384], qe_sig[64], att_key[64];
    EVP_PKEY *ak;
} pck_slot;

struct mt_dcap_cache {
    pthread_mutex_t mu;
    mt_dcap_state *state; /* published once, until reset */
    pck_slot pck[MT_DCAP_PCK_SLOTS];
    unsigned next;        /* slot to replace next */
    mt_dcap_cache_stats stats;
};

static void cache_lock(mt_dcap_cache *c)
{
    if (c)
        pthread_mutex_lock(&c->mu);
}

static void cache_unlock(mt_dcap_cache *c)
{
    if (c)
        pthread_mutex_unlock(&c->mu);
}

static void state_free(mt_dcap_state *s)
{
    if (!s)
        return;
    mt_dcap_coll_clear(&s->coll);
    tcb_info_free(&s->tcb);
    free(s->qe.levels);
    free(s);
}

mt_dcap_cache *mt_dcap_cache_new(void)
{
    mt_dcap_cache *c = calloc(1, sizeof *c);
    if (c && pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void mt_dcap_cache_reset(mt_dcap_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    state_free(c->state);
    c->state = NULL;
    for (size_t i = 0; i < MT_DCAP_PCK_SLOTS; i++) {
        X509_free(c->pck[i].v.leaf);
        X509_free(c->pck[i].v.root);
        EVP_PKEY_free(c->pck[i].ak);
        memset(&c->pck[i], 0, sizeof c->pck[i]);
    }
    c->next = 0;
    memset(&c->stats, 0, sizeof c->stats);
    pthread_mutex_unlock(&c->mu);
}

void mt_dcap_cache_stats_get(mt_dcap_cache *c, mt_dcap_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->pck_entries = 0;
    for (size_t i = 0; i < MT_DCAP_PCK_SLOTS; i++)
        out->pck_entries += c->pck[i].used;
    pthread_mutex_unlock(&c->mu);
}

void mt_dcap_cache_free(mt_dcap_cache *c)
{
    if (!c)
        return;
    mt_dcap_cache_reset(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

mt_status mt_dcap_state_get(const mt_attest_collateral *coll, mt_dcap_state **out, mt_err *err)
{
    *out = NULL;
    mt_dcap_cache *c = mt_attest_coll_dcap_cache(coll);
    cache_lock(c);
    mt_dcap_state *s = c ? c->state : NULL;
    cache_unlock(c);
    if (s) {
        *out = s;
        return MT_OK;
    }
    /* Parsed outside the lock; a concurrent first use may publish first. */
    if (!(s = calloc(1, sizeof *s)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status st = mt_dcap_coll_load(coll, &s->coll, err);
    if (st != MT_OK) {
        free(s);
        return st;
    }
    s->cache = c;
    if (c) {
        pthread_mutex_lock(&c->mu);
        if (c->state) {
            state_free(s);
            s = c->state;
        } else {
            c->state = s;
        }
        pthread_mutex_unlock(&c->mu);
    }
    *out = s;
    return MT_OK;
}

void mt_dcap_state_put(mt_dcap_state *s)
{
    if (s && !s->cache)
        state_free(s);
}

const mt_dcap_coll *mt_dcap_state_coll(const mt_dcap_state *s) { return &s->coll; }

/* A slot in use holding kind's chain under key. */
static bool slot_is(const pck_slot *e, mt_dcap_chain_kind kind, const uint8_t key[32])
{
    return e->used && e->kind == kind && memcmp(e->key, key, 32) == 0;
}

bool mt_dcap_cache_pck_get(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                           int64_t at, mt_dcap_pck *out)
{
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < MT_DCAP_PCK_SLOTS && !hit; i++) {
        const pck_slot *e = &c->pck[i];
        if (!slot_is(e, kind, key) || !(e->lo < at && at < e->hi))
            continue;
        if (X509_up_ref(e->v.leaf) != 1)
            break;
        if (X509_up_ref(e->v.root) != 1) {
            X509_free(e->v.leaf);
            break;
        }
        *out = e->v;
        hit = true;
        c->stats.pck_hits++;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void mt_dcap_cache_pck_put(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                           const mt_dcap_pck *v, int64_t lo, int64_t hi)
{
    if (X509_up_ref(v->leaf) != 1)
        return;
    if (X509_up_ref(v->root) != 1) {
        X509_free(v->leaf);
        return;
    }
    pthread_mutex_lock(&c->mu);
    pck_slot *e = NULL;
    for (size_t i = 0; i < MT_DCAP_PCK_SLOTS && !e; i++)
        if (slot_is(&c->pck[i], kind, key))
            e = &c->pck[i];
    if (!e) {
        e = &c->pck[c->next];
        c->next = (c->next + 1) % MT_DCAP_PCK_SLOTS;
    }
    X509_free(e->v.leaf); /* NULL for an unused slot */
    X509_free(e->v.root);
    EVP_PKEY_free(e->ak); /* a new chain starts without a QE report */
    e->ak = NULL;
    e->used = true;
    e->kind = kind;
    memcpy(e->key, key, 32);
    e->v = *v;
    e->lo = lo;
    e->hi = hi;
    c->stats.pck_stored++;
    pthread_mutex_unlock(&c->mu);
}

bool mt_dcap_cache_qe_get(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                          const uint8_t *qe_report, const uint8_t *qe_sig, const uint8_t *att_key,
                          EVP_PKEY **ak)
{
    bool hit = false;
    *ak = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < MT_DCAP_PCK_SLOTS; i++) {
        const pck_slot *e = &c->pck[i];
        if (!slot_is(e, kind, key))
            continue;
        if (e->ak && memcmp(e->qe_report, qe_report, sizeof e->qe_report) == 0 &&
            memcmp(e->qe_sig, qe_sig, sizeof e->qe_sig) == 0 &&
            memcmp(e->att_key, att_key, sizeof e->att_key) == 0 && EVP_PKEY_up_ref(e->ak) == 1) {
            *ak = e->ak;
            hit = true;
            c->stats.qe_hits++;
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void mt_dcap_cache_qe_put(mt_dcap_cache *c, mt_dcap_chain_kind kind, const uint8_t key[32],
                          const uint8_t *qe_report, const uint8_t *qe_sig, const uint8_t *att_key,
                          EVP_PKEY *ak)
{
    if (EVP_PKEY_up_ref(ak) != 1)
        return;
    pthread_mutex_lock(&c->mu);
    pck_slot *e = NULL;
    for (size_t i = 0; i < MT_DCAP_PCK_SLOTS && !e; i++)
        if (slot_is(&c->pck[i], kind, key))
            e = &c->pck[i];
    if (e) {
        EVP_PKEY_free(e->ak);
        e->ak = ak;
        ak = NULL;
        memcpy(e->qe_report, qe_report, sizeof e->qe_report);
        memcpy(e->qe_sig, qe_sig, sizeof e->qe_sig);
        memcpy(e->att_key, att_key, sizeof e->att_key);
    }
    pthread_mutex_unlock(&c->mu);
    EVP_PKEY_free(ak); /* not taken: the chain was replaced meanwhile */
}

/* ---- evaluation ---------------------------------------------------------- */

#define TCB_SIGNING_CN "Intel SGX TCB Signing"
#define PCK_SGX_EXT_OID "1.2.840.113741.1.13.1"

mt_status mt_dcap_tcb_signer_check(X509 *signer, X509 *root, const char *what, mt_err *err)
{
    if (!signer || !root)
        return mt_err_set(err, MT_EINVAL, "%s: no signing certificate", what);
    /* Subject: exactly one CN, exactly Intel's name for the role. */
    X509_NAME *nm = X509_get_subject_name(signer);
    int idx = nm ? X509_NAME_get_index_by_NID(nm, NID_commonName, -1) : -1;
    ASN1_STRING *cn = idx >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx)) : NULL;
    static const char want[] = TCB_SIGNING_CN;
    if (!cn || X509_NAME_get_index_by_NID(nm, NID_commonName, idx) >= 0 ||
        ASN1_STRING_length(cn) != (int)(sizeof want - 1) ||
        memcmp(ASN1_STRING_get0_data(cn), want, sizeof want - 1) != 0)
        return mt_err_set(err, MT_EAUTH,
                          "%s is not signed by the Intel SGX TCB Signing certificate (its signer's "
                          "subject CN is not \"" TCB_SIGNING_CN "\")",
                          what);
    /* Issued directly by the pinned root: its signature verifies with the
     * root's key (a PCK certificate is issued by a PCK Platform/Processor CA). */
    EVP_PKEY *rk = X509_get0_pubkey(root);
    if (!rk || X509_NAME_cmp(X509_get_issuer_name(signer), X509_get_subject_name(root)) != 0 ||
        X509_verify(signer, rk) != 1)
        return mt_err_set(err, MT_EAUTH,
                          "%s signing certificate is not issued directly by the pinned Intel SGX "
                          "Root CA",
                          what);
    /* Its role as Intel issues it: an end entity (CA:FALSE) whose key usage
     * is digitalSignature (with nonRepudiation), no certificate or CRL
     * signing, and no PCK SGX extension. */
    uint32_t flags = X509_get_extension_flags(signer);
    uint32_t ku = X509_get_key_usage(signer);
    ASN1_OBJECT *sgx = OBJ_txt2obj(PCK_SGX_EXT_OID, 1);
    int has_sgx = sgx ? X509_get_ext_by_OBJ(signer, sgx, -1) >= 0 : 1;
    ASN1_OBJECT_free(sgx);
    if ((flags & EXFLAG_INVALID) || (flags & EXFLAG_CA) || !(flags & EXFLAG_KUSAGE) ||
        !(ku & KU_DIGITAL_SIGNATURE) || (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) || has_sgx)
        return mt_err_set(err, MT_EAUTH,
                          "%s signing certificate does not have the TCB Signing role (end entity, "
                          "key usage digitalSignature only, no PCK SGX extension)",
                          what);
    return MT_OK;
}

/* Makes a signed document of s (TCB info, or QE identity when qe) usable at
 * `at`: its issuer chain verifies to the pinned root at `at` (against the
 * root CA CRL when given), and its ECDSA P-256 signature over its exact bytes
 * verifies and it parses. The checks that depend on the bytes only are done
 * once per state; the chain is verified again unless `at` lies inside the
 * window of an earlier success. Errors exactly as without the cache. */
static mt_status doc_ready(mt_dcap_state *s, bool qe, X509 *root, const uint8_t root_fp[32],
                           int64_t at, int64_t *hi_out, mt_err *err)
{
    *hi_out = at; /* unknown: a result relying on it is not reused */
    signed_doc *d = qe ? &s->qe_doc : &s->tcb_doc;
    STACK_OF(X509) *chain = qe ? s->coll.qe_chain : s->coll.tcb_chain;
    const char *raw = qe ? s->coll.qe_raw : s->coll.tcb_raw;
    size_t len = qe ? s->coll.qe_raw_len : s->coll.tcb_raw_len;
    const uint8_t *sig = qe ? s->coll.qe_sig : s->coll.tcb_sig;
    const char *what = qe ? "QE identity" : "TCB info";

    cache_lock(s->cache);
    bool ready = d->ready;
    bool hit = ready && d->chain_ok && d->lo < at && at < d->hi &&
               memcmp(d->root_fp, root_fp, 32) == 0;
    if (hit && s->cache)
        s->cache->stats.chain_hits++;
    if (hit)
        *hi_out = d->hi;
    cache_unlock(s->cache);
    if (hit)
        return MT_OK;

    if (!chain || sk_X509_num(chain) < 1)
        return mt_err_set(err, MT_EINVAL, "%s issuer chain was not given", what);
    X509 *signer = sk_X509_value(chain, 0);
    /* Any certificate chaining to the root is not enough (a PCK key of a
     * compromised platform could sign "UpToDate"): the signer must be the
     * TCB Signing certificate. Checked with the chain, inside the cache. */
    mt_status sst = mt_dcap_tcb_signer_check(signer, root, what, err);
    if (sst != MT_OK)
        return sst;
    STACK_OF(X509_CRL) *crls = NULL;
    if (s->coll.root_crl) {
        crls = sk_X509_CRL_new_null();
        if (!crls || !sk_X509_CRL_push(crls, s->coll.root_crl)) {
            sk_X509_CRL_free(crls);
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        }
    }
    /* The signer is issued by the root; the root CRL covers it. */
    char w[64];
    snprintf(w, sizeof w, "%s signing certificate", what);
    mt_status st = mt_x5_verify_chain(signer, chain, root, crls, at, w, err);
    int64_t lo = 0, hi = 0;
    bool window = st == MT_OK && mt_x5_validity(chain, root, crls, &lo, &hi);
    sk_X509_CRL_free(crls);
    if (st != MT_OK)
        return st;

    tcb_info t = {0};
    qe_identity q = {0};
    if (!ready) {
        EVP_PKEY *pk = X509_get0_pubkey(signer);
        if (!pk || !mt_x5_ecdsa_verify(pk, EVP_sha256(), (const uint8_t *)raw, len, sig,
                                       sig + 32, 32, false))
            return mt_err_set(err, MT_EAUTH, "%s signature does not verify", what);
        st = qe ? qe_identity_parse(raw, len, &q, err) : tcb_info_parse(raw, len, &t, err);
        if (st != MT_OK)
            return st;
    }
    cache_lock(s->cache);
    if (!ready && !d->ready) { /* else a concurrent verifier published it first */
        if (qe) {
            s->qe = q;
            q.levels = NULL;
        } else {
            s->tcb = t;
            memset(&t, 0, sizeof t);
        }
        d->ready = true;
    }
    if (s->cache)
        s->cache->stats.chain_verified++;
    if (window) {
        *hi_out = hi;
        d->chain_ok = true;
        d->lo = lo;
        d->hi = hi;
        memcpy(d->root_fp, root_fp, 32);
    }
    cache_unlock(s->cache);
    free(q.levels);
    tcb_info_free(&t);
    return MT_OK;
}

static mt_status check_window(int64_t issue, int64_t next, int64_t at, const char *what,
                              mt_err *err)
{
    char a[32], b[32], n[32];
    mt_attest_time_str(issue, a);
    mt_attest_time_str(next, n);
    mt_attest_time_str(at, b);
    if (at < issue)
        return mt_err_set(err, MT_EAUTH, "%s not yet valid: issued %s, verification time %s",
                          what, a, b);
    if (at >= next)
        return mt_err_set(err, MT_EAUTH, "%s expired at %s, verification time %s", what, n, b);
    return MT_OK;
}

/* Combines a platform status with a QE or TDX module status (Intel QVL rule). */
static mt_attest_tcb_status converge(mt_attest_tcb_status platform, mt_attest_tcb_status other)
{
    if (other == MT_TCB_REVOKED || platform == MT_TCB_REVOKED)
        return MT_TCB_REVOKED;
    if (other == MT_TCB_OUT_OF_DATE || other == MT_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) {
        if (platform == MT_TCB_CONFIGURATION_NEEDED ||
            platform == MT_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
            platform == MT_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED)
            return MT_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
        return MT_TCB_OUT_OF_DATE;
    }
    return platform;
}

/* Adds the advisories of a level. The claims hold MT_ATTEST_MAX_ADVISORIES;
 * one that does not fit fails the verification (a dropped advisory would
 * slip past a policy's accepted_advisories). */
static mt_status add_advisories(mt_attest_claims *c, const tcb_level *l, mt_err *err)
{
    for (size_t i = 0; i < l->n_adv; i++) {
        if (!mt_attest_claims_has_advisory(c, l->adv[i]) &&
            c->n_advisories >= MT_ATTEST_MAX_ADVISORIES)
            return mt_err_set(err, MT_EAUTH, "the TCB levels name more than %d advisories",
                              MT_ATTEST_MAX_ADVISORIES);
        mt_attest_claims_add_advisory(c, l->adv[i]);
    }
    return MT_OK;
}

/* First level of an isvsvn list that the given svn reaches. */
static const tcb_level *isv_level(const tcb_level *lv, size_t n, uint16_t svn)
{
    for (size_t i = 0; i < n; i++)
        if (svn >= lv[i].isvsvn)
            return &lv[i];
    return NULL;
}

static bool masked_eq(const uint8_t *v, const uint8_t *want, const uint8_t *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((v[i] & mask[i]) != (want[i] & mask[i]))
            return false;
    return true;
}

mt_status mt_dcap_coll_evaluate(mt_dcap_state *s, X509 *root, const uint8_t root_fp[32],
                                const mt_dcap_platform *p, int64_t at,
                                mt_attest_claims *claims, mt_err *err)
{
    mt_status st = MT_OK;
    mt_attest_tcb_status status = MT_TCB_NOT_EVALUATED;
    const tcb_info *t = &s->tcb;
    const qe_identity *q = &s->qe;
    char hex[16], hex2[16];
    int64_t doc_hi = at;
    if (!s->coll.tcb_raw)
        goto qe;
    if ((st = doc_ready(s, false, root, root_fp, at, &doc_hi, err)) != MT_OK)
        return st;
    /* the result holds while the TCB info and its chain do */
    mt_attest_claims_until(claims, doc_hi);
    mt_attest_claims_until(claims, t->next);
    if (t->tdx != p->tdx) {
        st = mt_err_set(err, MT_EAUTH, "TCB info is for %s, the quote is %s", t->tdx ? "TDX" : "SGX",
                        p->tdx ? "TDX" : "SGX");
        goto out;
    }
    if ((st = check_window(t->issue, t->next, at, "TCB info", err)) != MT_OK)
        goto out;
    if (memcmp(t->fmspc, p->fmspc, 6) != 0) {
        mt_hex_encode(t->fmspc, 6, hex);
        mt_hex_encode(p->fmspc, 6, hex2);
        st = mt_err_set(err, MT_EAUTH, "TCB info is for FMSPC %s, the PCK certificate has %s", hex,
                        hex2);
        goto out;
    }
    if (memcmp(t->pceid, p->pceid, 2) != 0) {
        st = mt_err_set(err, MT_EAUTH, "TCB info PCE-ID does not match the PCK certificate");
        goto out;
    }
    /* TDX module: the SEAM signer and attributes must be Intel's. */
    bool module_rule = p->tdx && p->tee_tcb_svn[1] > 0;
    if (p->tdx && t->has_module &&
        (memcmp(t->mod_mrsigner, p->mrsignerseam, 48) != 0 ||
         !masked_eq(p->seam_attributes, t->mod_attr, t->mod_mask, 8))) {
        st = mt_err_set(err, MT_EAUTH, "TDX module signer or attributes do not match the TCB info");
        goto out;
    }
    /* Platform level: the first that every component reaches. */
    const tcb_level *sel = NULL;
    for (size_t i = 0; i < t->n_levels && !sel; i++) {
        const tcb_level *l = &t->levels[i];
        bool ok = p->pcesvn >= l->pcesvn;
        for (size_t k = 0; k < 16 && ok; k++)
            ok = p->sgx_comp[k] >= l->sgx[k];
        for (size_t k = module_rule ? 2 : 0; p->tdx && k < 16 && ok; k++)
            ok = p->tee_tcb_svn[k] >= l->tdx[k];
        if (ok)
            sel = l;
    }
    if (!sel) {
        char comps[40], tdx[40];
        mt_hex_encode(p->sgx_comp, 16, comps);
        mt_hex_encode(p->tee_tcb_svn, 16, tdx);
        st = mt_err_set(err, MT_EAUTH,
                        "no TCB level of the TCB info matches the platform (PCK SGX components %s, "
                        "PCESVN %u%s%s): TCB is below every known level",
                        comps, p->pcesvn, p->tdx ? ", TEE_TCB_SVN " : "", p->tdx ? tdx : "");
        goto out;
    }
    status = sel->status;
    if ((st = add_advisories(claims, sel, err)) != MT_OK)
        goto out;
    mt_attest_claims_add_svn(claims, "tcb_evaluation_number", (uint64_t)t->eval);
    if (module_rule) {
        char want[16];
        snprintf(want, sizeof want, "TDX_%02X", p->tee_tcb_svn[1]);
        const module_id *mi = NULL;
        for (size_t i = 0; i < t->n_mods; i++)
            if (strcasecmp(t->mods[i].id, want) == 0)
                mi = &t->mods[i];
        if (!mi) {
            st = mt_err_set(err, MT_EAUTH, "TCB info has no TDX module identity %s", want);
            goto out;
        }
        if (memcmp(mi->mrsigner, p->mrsignerseam, 48) != 0 ||
            !masked_eq(p->seam_attributes, mi->attr, mi->attr_mask, 8)) {
            st = mt_err_set(err, MT_EAUTH, "TDX module signer or attributes do not match %s", want);
            goto out;
        }
        const tcb_level *ml = isv_level(mi->levels, mi->n_levels, p->tee_tcb_svn[0]);
        if (!ml) {
            st = mt_err_set(err, MT_EAUTH, "TDX module %s SVN %u is below every level", want,
                            p->tee_tcb_svn[0]);
            goto out;
        }
        status = converge(status, ml->status);
        if ((st = add_advisories(claims, ml, err)) != MT_OK)
            goto out;
    }
    claims->checked |= MT_ATTEST_CHECKED_TCB;

qe:

    /* QE identity. */
    if (s->coll.qe_raw) {
        if ((st = doc_ready(s, true, root, root_fp, at, &doc_hi, err)) != MT_OK)
            goto out;
        mt_attest_claims_until(claims, doc_hi);
        mt_attest_claims_until(claims, q->next);
        if (q->td != p->tdx) {
            st = mt_err_set(err, MT_EAUTH, "QE identity is for %s, the quote needs %s",
                            q->td ? "TD_QE" : "QE", p->tdx ? "TD_QE" : "QE");
            goto out;
        }
        if ((st = check_window(q->issue, q->next, at, "QE identity", err)) != MT_OK)
            goto out;
        if (memcmp(q->mrsigner, p->qe_mrsigner, 32) != 0 || q->isvprodid != p->qe_isvprodid) {
            st = mt_err_set(err, MT_EAUTH, "QE report MRSIGNER or ISVPRODID does not match the QE identity");
            goto out;
        }
        if ((p->qe_miscselect & q->misc_mask) != (q->misc & q->misc_mask) ||
            !masked_eq(p->qe_attributes, q->attr, q->attr_mask, 16)) {
            st = mt_err_set(err, MT_EAUTH, "QE report MISCSELECT or ATTRIBUTES do not match the QE identity");
            goto out;
        }
        const tcb_level *ql = isv_level(q->levels, q->n_levels, p->qe_isvsvn);
        if (!ql) {
            st = mt_err_set(err, MT_EAUTH, "QE ISVSVN %u is below every QE identity level",
                            p->qe_isvsvn);
            goto out;
        }
        mt_attest_claims_add_svn(claims, "qe_tcb_status", (uint64_t)ql->status);
        if (s->coll.tcb_raw) {
            status = converge(status, ql->status);
            if ((st = add_advisories(claims, ql, err)) != MT_OK)
                goto out;
        }
        claims->checked |= MT_ATTEST_CHECKED_QE_IDENTITY;
    }
    claims->tcb_status = status;
    if (status == MT_TCB_REVOKED) {
        st = mt_err_set(err, MT_EAUTH, "platform TCB is Revoked");
        goto out;
    }
    st = MT_OK;
out:
    return st;
}
