/* mt_attest: entry point, claims helpers, collateral handle, times.
 * See mt_attest.h for the contract. */
#include "mt_attest.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_attest_int.h"
#include "mt_dcap_coll.h"
#include "mt_soft.h"
#include "mt_tpm2.h"
#include "mt_util.h"

/* ---- names --------------------------------------------------------------- */

const char *mt_attest_kind_name(mt_attest_kind kind)
{
    switch (kind) {
    case MT_ATTEST_SEV_SNP: return "sev-snp";
    case MT_ATTEST_TDX: return "tdx";
    case MT_ATTEST_SGX: return "sgx";
    case MT_ATTEST_NITRO: return "nitro";
    case MT_ATTEST_SOFT: return "soft";
    case MT_ATTEST_TPM2: return "tpm2";
    }
    return NULL;
}

mt_status mt_attest_kind_parse(const char *name, mt_attest_kind *out, mt_err *err)
{
    static const mt_attest_kind all[] = {MT_ATTEST_SEV_SNP, MT_ATTEST_TDX, MT_ATTEST_SGX,
                                         MT_ATTEST_NITRO, MT_ATTEST_SOFT, MT_ATTEST_TPM2};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, mt_attest_kind_name(all[i])) == 0) {
            *out = all[i];
            return MT_OK;
        }
    }
    return mt_err_set(err, MT_EINVAL,
                      "unknown evidence kind '%s' (expected sev-snp, tdx, sgx, nitro, soft or tpm2)",
                      name ? name : "");
}

const char *mt_attest_tcb_status_name(mt_attest_tcb_status s)
{
    switch (s) {
    case MT_TCB_NOT_EVALUATED: return "NotEvaluated";
    case MT_TCB_UP_TO_DATE: return "UpToDate";
    case MT_TCB_SW_HARDENING_NEEDED: return "SWHardeningNeeded";
    case MT_TCB_CONFIGURATION_NEEDED: return "ConfigurationNeeded";
    case MT_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED: return "ConfigurationAndSWHardeningNeeded";
    case MT_TCB_OUT_OF_DATE: return "OutOfDate";
    case MT_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED: return "OutOfDateConfigurationNeeded";
    case MT_TCB_REVOKED: return "Revoked";
    }
    return "NotEvaluated";
}

/* ---- claims -------------------------------------------------------------- */

const mt_attest_measurement *mt_attest_claims_measurement(const mt_attest_claims *c,
                                                          const char *name)
{
    for (size_t i = 0; i < c->n_measurements; i++)
        if (strcmp(c->measurements[i].name, name) == 0)
            return &c->measurements[i];
    return NULL;
}

bool mt_attest_claims_svn(const mt_attest_claims *c, const char *name, uint64_t *out)
{
    for (size_t i = 0; i < c->n_svns; i++) {
        if (strcmp(c->svns[i].name, name) == 0) {
            *out = c->svns[i].value;
            return true;
        }
    }
    return false;
}

bool mt_attest_claims_has_advisory(const mt_attest_claims *c, const char *id)
{
    for (size_t i = 0; i < c->n_advisories; i++)
        if (strcmp(c->advisories[i], id) == 0)
            return true;
    return false;
}

void mt_attest_claims_add_meas(mt_attest_claims *c, const char *name, const uint8_t *v,
                               size_t len)
{
    if (c->n_measurements >= MT_ATTEST_MAX_MEASUREMENTS || len > MT_ATTEST_VALUE_MAX)
        return;
    mt_attest_measurement *m = &c->measurements[c->n_measurements++];
    snprintf(m->name, sizeof m->name, "%s", name);
    memcpy(m->value, v, len);
    m->len = len;
}

void mt_attest_claims_add_svn(mt_attest_claims *c, const char *name, uint64_t v)
{
    if (c->n_svns >= MT_ATTEST_MAX_SVNS)
        return;
    mt_attest_svn *s = &c->svns[c->n_svns++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->value = v;
}

void mt_attest_claims_add_advisory(mt_attest_claims *c, const char *id)
{
    if (c->n_advisories >= MT_ATTEST_MAX_ADVISORIES || mt_attest_claims_has_advisory(c, id))
        return;
    snprintf(c->advisories[c->n_advisories++], sizeof c->advisories[0], "%s", id);
}

/* ---- collateral ---------------------------------------------------------- */

#define COLL_SLOTS (MT_COLL_TPM2_EK_CA + 1)

struct mt_attest_collateral {
    uint8_t *data[COLL_SLOTS];
    size_t len[COLL_SLOTS];
    /* What DCAP verifications remember about these items (mt_dcap_coll.h):
     * emptied by every add, guarded by its own mutex. */
    mt_dcap_cache *dcap;
};

mt_attest_collateral *mt_attest_collateral_new(void)
{
    mt_attest_collateral *c = calloc(1, sizeof(mt_attest_collateral));
    if (c && !(c->dcap = mt_dcap_cache_new())) {
        free(c);
        return NULL;
    }
    return c;
}

void mt_attest_collateral_free(mt_attest_collateral *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < COLL_SLOTS; i++)
        free(c->data[i]);
    mt_dcap_cache_free(c->dcap);
    free(c);
}

mt_status mt_attest_collateral_add(mt_attest_collateral *c, mt_attest_coll_item item,
                                   const uint8_t *data, size_t len, mt_err *err)
{
    if (!c || (int)item < MT_COLL_AMD_VCEK || (int)item >= COLL_SLOTS)
        return mt_err_set(err, MT_EINVAL, "unknown collateral item %d", (int)item);
    if (!data || len == 0)
        return mt_err_set(err, MT_EINVAL, "collateral item %d is empty", (int)item);
    if (len > MT_ATTEST_COLL_MAX)
        return mt_err_set(err, MT_ETOOBIG, "collateral item %d is over %u bytes", (int)item,
                          MT_ATTEST_COLL_MAX);
    /* NUL-terminated copy, so text items (PEM, JSON) can be handed to parsers. */
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    memcpy(copy, data, len);
    copy[len] = 0;
    free(c->data[item]);
    c->data[item] = copy;
    c->len[item] = len;
    mt_dcap_cache_reset(c->dcap); /* what was verified was about the old items */
    return MT_OK;
}

mt_status mt_attest_collateral_add_file(mt_attest_collateral *c, mt_attest_coll_item item,
                                        const char *path, mt_err *err)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    mt_status st = mt_file_read(path, MT_ATTEST_COLL_MAX, &buf, &n, err);
    if (st != MT_OK)
        return st;
    st = mt_attest_collateral_add(c, item, buf, n, err);
    free(buf);
    return st;
}

mt_status mt_attest_collateral_load_dir(mt_attest_collateral *c, const char *dir, mt_err *err)
{
    static const struct {
        const char *name;
        mt_attest_coll_item item;
    } files[] = {
        {"vcek.der", MT_COLL_AMD_VCEK},
        {"vcek.pem", MT_COLL_AMD_VCEK},
        {"cert_chain.pem", MT_COLL_AMD_CHAIN},
        {"collateral.json", MT_COLL_DCAP_BUNDLE},
        {"tcb_info.json", MT_COLL_TCB_INFO},
        {"tcb_info_issuer_chain.pem", MT_COLL_TCB_INFO_CHAIN},
        {"qe_identity.json", MT_COLL_QE_IDENTITY},
        {"qe_identity_issuer_chain.pem", MT_COLL_QE_IDENTITY_CHAIN},
        {"pck_crl.der", MT_COLL_PCK_CRL},
        {"pck_crl.pem", MT_COLL_PCK_CRL},
        {"root_crl.der", MT_COLL_ROOT_CRL},
        {"root_crl.pem", MT_COLL_ROOT_CRL},
    };
    size_t found = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (n < 0 || (size_t)n >= sizeof path)
            return mt_err_set(err, MT_EINVAL, "collateral directory path is too long");
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fclose(f);
        mt_status st = mt_attest_collateral_add_file(c, files[i].item, path, err);
        if (st != MT_OK)
            return st;
        found++;
    }
    if (!found)
        return mt_err_set(err, MT_ENOTFOUND, "no collateral files in %s", dir);
    return MT_OK;
}

const uint8_t *mt_attest_coll_get(const mt_attest_collateral *c, mt_attest_coll_item item,
                                  size_t *len)
{
    *len = 0;
    if (!c || (int)item < MT_COLL_AMD_VCEK || (int)item >= COLL_SLOTS)
        return NULL;
    *len = c->len[item];
    return c->data[item];
}

mt_dcap_cache *mt_attest_coll_dcap_cache(const mt_attest_collateral *c)
{
    return c ? c->dcap : NULL;
}

/* ---- times --------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n decimal digits. */
static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

mt_status mt_attest_time_parse(const char *s, int64_t *out, mt_err *err)
{
    unsigned y, mo, d, h, mi, se;
    if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        goto bad;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            goto bad;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    /* Impossible dates are refused, not normalised: the day must exist in
     * its month (Feb 29 only in leap years), hours 00-23, minutes 00-59, and
     * second 60 only as a leap second, at 23:59:60 (RFC 3339 5.7). */
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60)
        goto bad;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap ? 1u : 0u) || (se == 60 && (h != 23 || mi != 59)))
        goto bad;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return MT_OK;
bad:
    return mt_err_set(err, MT_EINVAL, "'%.40s' is not an RFC 3339 UTC time", s ? s : "");
}

void mt_attest_time_str(int64_t t, char out[32]) { mt_time_format(t, out); }

/* ---- dispatch ------------------------------------------------------------ */

void mt_attest_claims_until(mt_attest_claims *c, int64_t t)
{
    if (t < 1)
        t = 1;
    if (c->valid_until == 0 || t < c->valid_until)
        c->valid_until = t;
}

mt_status mt_attest_verify(mt_attest_kind kind, const uint8_t *evidence, size_t len,
                           const mt_attest_collateral *coll, int64_t at,
                           mt_attest_claims *claims, mt_err *err)
{
    if (!claims)
        return mt_err_set(err, MT_EINVAL, "no claims output given");
    memset(claims, 0, sizeof *claims);
    if (!evidence || len == 0)
        return mt_err_set(err, MT_EINVAL, "evidence is empty");
    if (len > MT_ATTEST_EVIDENCE_MAX)
        return mt_err_set(err, MT_EINVAL, "evidence is %zu bytes, over the %u-byte limit", len,
                          MT_ATTEST_EVIDENCE_MAX);
    mt_status st;
    switch (kind) {
    case MT_ATTEST_SEV_SNP: st = mt_snp_verify(evidence, len, coll, at, claims, err); break;
    case MT_ATTEST_TDX:
    case MT_ATTEST_SGX: st = mt_dcap_verify(kind, evidence, len, coll, at, claims, err); break;
    case MT_ATTEST_NITRO: st = mt_nitro_verify(evidence, len, at, claims, err); break;
    case MT_ATTEST_SOFT: st = mt_soft_verify(evidence, len, at, claims, err); break;
    case MT_ATTEST_TPM2: st = mt_tpm2_verify(evidence, len, coll, at, claims, err); break;
    default: return mt_err_set(err, MT_EINVAL, "unknown evidence kind %d", (int)kind);
    }
    if (st != MT_OK) {
        memset(claims, 0, sizeof *claims);
        return st;
    }
    claims->kind = kind;
    /* Soft evidence relies on no expiring collateral (its age is the
     * policy's, checked at every use); TPM evidence neither, unless an EK
     * chain was checked at `at` (not bounded here: never reused). */
    if (kind == MT_ATTEST_SOFT)
        mt_attest_claims_until(claims, INT64_MAX);
    else if (kind == MT_ATTEST_TPM2)
        mt_attest_claims_until(claims,
                               (claims->checked & MT_ATTEST_CHECKED_EK_CHAIN) ? at : INT64_MAX);
    return MT_OK;
}
