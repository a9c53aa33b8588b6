/* ks_policy: the release-policy rules beyond the measurement lists (issue 10
 * "minimum levels/SVNs"): SGX signer-style release (mrsigners +
 * isv_prod_ids) and minimum security versions per level. Contract in
 * ks_internal.h ("release-policy extensions"). The minimums are handed to
 * mt_policy's own "min_svns" rule (same claim names, same check), so the
 * KeyStore and every relying party compare SVNs in one place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks_internal.h"
#include "mt_json.h"

/* The minimums a level's release policy may name: claim names of the
 * level's verifier (mt_snp.c reported TCB components, mt_dcap.c TD report
 * TEE_TCB_SVN bytes and ISV SVNs) and their largest value. */
static const struct {
    const char *level, *name;
    uint64_t max;
} min_names[] = {
    {"sev-snp", "tcb.bootloader", 255},   {"sev-snp", "tcb.tee", 255},
    {"sev-snp", "tcb.snp", 255},          {"sev-snp", "tcb.microcode", 255},
    {"sev-snp", "tcb.fmc", 255},          {"sev-snp", "guest_svn", UINT32_MAX},
    {"tdx", "tdx_module.svn", 255},       {"tdx", "tdx_module.major", 255},
    {"tdx", "tee_tcb_svn.0", 255},        {"tdx", "tee_tcb_svn.1", 255},
    {"tdx", "tee_tcb_svn.2", 255},        {"tdx", "tee_tcb_svn.3", 255},
    {"tdx", "tee_tcb_svn.4", 255},        {"tdx", "tee_tcb_svn.5", 255},
    {"tdx", "tee_tcb_svn.6", 255},        {"tdx", "tee_tcb_svn.7", 255},
    {"tdx", "tee_tcb_svn.8", 255},        {"tdx", "tee_tcb_svn.9", 255},
    {"tdx", "tee_tcb_svn.10", 255},       {"tdx", "tee_tcb_svn.11", 255},
    {"tdx", "tee_tcb_svn.12", 255},       {"tdx", "tee_tcb_svn.13", 255},
    {"tdx", "tee_tcb_svn.14", 255},       {"tdx", "tee_tcb_svn.15", 255},
    {"sgx", "isv_svn", 65535},            {"sgx", "config_svn", 65535},
};
#define N_MIN_NAMES (sizeof min_names / sizeof min_names[0])

#define MIN_NAMES_TEXT                                                                         \
    "sev-snp: tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode, tcb.fmc, guest_svn; tdx: "      \
    "tdx_module.svn, tdx_module.major, tee_tcb_svn.0 to tee_tcb_svn.15; sgx: isv_svn, "        \
    "config_svn"

/* The index of a minimum name allowed at level, or -1. */
static int min_name(const char *level, const char *name)
{
    for (size_t i = 0; level && name && i < N_MIN_NAMES; i++)
        if (!strcmp(min_names[i].level, level) && !strcmp(min_names[i].name, name))
            return (int)i;
    return -1;
}

static bool hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* A decimal number without sign, spaces or leading zeros, at most max. */
static bool dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static mt_status ext_add_min(ks_ext *x, const char *level, const char *name, uint64_t v,
                             bool replace, bool *changed, mt_err *err)
{
    int k = min_name(level, name);
    if (k < 0)
        return mt_err_set(err, MT_EINVAL,
                          "min_svn: not a security version of level %s (" MIN_NAMES_TEXT ")",
                          level);
    if (v > min_names[k].max)
        return mt_err_set(err, MT_EINVAL, "min_svn %s: at most %llu", min_names[k].name,
                          (unsigned long long)min_names[k].max);
    for (size_t i = 0; i < x->n_min; i++)
        if (!strcmp(x->min[i].name, name)) {
            if (!replace)
                return mt_err_set(err, MT_EINVAL, "field 'min_svns': %s is named twice",
                                  min_names[k].name);
            if (changed)
                *changed = x->min[i].value != v;
            x->min[i].value = v;
            return MT_OK;
        }
    if (x->n_min >= KS_EXT_MAX)
        return mt_err_set(err, MT_ETOOBIG, "the release policy holds at most %d minimums",
                          KS_EXT_MAX);
    snprintf(x->min[x->n_min].name, sizeof x->min[0].name, "%s", min_names[k].name);
    x->min[x->n_min++].value = v;
    if (changed)
        *changed = true;
    return MT_OK;
}

mt_status ks_ext_parse(const json_t *pol, const char *level, ks_ext *x, mt_err *err)
{
    memset(x, 0, sizeof *x);
    bool sgx = !strcmp(level, "sgx");
    json_t *arr = NULL, *obj = NULL;
    mt_status rc = mt_json_array_opt(pol, "mrsigners", KS_EXT_MAX, &arr, err);
    if (!rc && arr && json_array_size(arr) && !sgx)
        rc = mt_err_set(err, MT_EINVAL, "field 'mrsigners': only at level sgx");
    size_t i;
    json_t *v;
    if (!rc && arr)
        json_array_foreach(arr, i, v)
        {
            const char *s = json_string_value(v);
            if (!hex64(s)) {
                rc = mt_err_set(err, MT_EINVAL,
                                "field 'mrsigners': entry %zu is not 64 lowercase hex characters",
                                i);
                break;
            }
            for (size_t j = 0; j < x->n_mrsigner; j++)
                if (!strcmp(x->mrsigner[j], s))
                    rc = mt_err_set(err, MT_EINVAL, "field 'mrsigners': entry %zu is a duplicate",
                                    i);
            if (rc)
                break;
            snprintf(x->mrsigner[x->n_mrsigner++], sizeof x->mrsigner[0], "%s", s);
        }
    if (!rc)
        rc = mt_json_array_opt(pol, "isv_prod_ids", KS_EXT_MAX, &arr, err);
    if (!rc && arr && json_array_size(arr) && !sgx)
        rc = mt_err_set(err, MT_EINVAL, "field 'isv_prod_ids': only at level sgx");
    if (!rc && arr)
        json_array_foreach(arr, i, v)
        {
            json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
            if (n < 0 || n > 65535) {
                rc = mt_err_set(err, MT_EINVAL,
                                "field 'isv_prod_ids': entry %zu is not an integer 0 to 65535", i);
                break;
            }
            for (size_t j = 0; j < x->n_prod; j++)
                if (x->prod[j] == (uint16_t)n)
                    rc = mt_err_set(err, MT_EINVAL,
                                    "field 'isv_prod_ids': entry %zu is a duplicate", i);
            if (rc)
                break;
            x->prod[x->n_prod++] = (uint16_t)n;
        }
    if (!rc)
        rc = mt_json_object_opt(pol, "min_svns", KS_EXT_MAX, &obj, err);
    if (!rc && obj) {
        const char *k;
        json_object_foreach(obj, k, v)
        {
            json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
            if (min_name(level, k) < 0) {
                rc = mt_err_set(err, MT_EINVAL,
                                "field 'min_svns': a name that is not a security version of "
                                "level %s (" MIN_NAMES_TEXT ")",
                                level);
                break;
            }
            if (n < 0) {
                rc = mt_err_set(err, MT_EINVAL, "field 'min_svns.%s': expected an integer >= 0",
                                min_names[min_name(level, k)].name);
                break;
            }
            if ((rc = ext_add_min(x, level, k, (uint64_t)n, false, NULL, err)))
                break;
        }
    }
    if (rc)
        memset(x, 0, sizeof *x);
    return rc;
}

void ks_ext_json(const ks_ext *x, json_t *pol)
{
    if (!pol)
        return;
    if (x->n_mrsigner) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < x->n_mrsigner; i++)
            json_array_append_new(a, json_string(x->mrsigner[i]));
        json_object_set_new(pol, "mrsigners", a);
    }
    if (x->n_prod) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < x->n_prod; i++)
            json_array_append_new(a, json_integer(x->prod[i]));
        json_object_set_new(pol, "isv_prod_ids", a);
    }
    if (x->n_min) {
        json_t *o = json_object();
        for (size_t i = 0; o && i < x->n_min; i++)
            json_object_set_new(o, x->min[i].name, json_integer((json_int_t)x->min[i].value));
        json_object_set_new(pol, "min_svns", o);
    }
}

bool ks_ext_kind(const char *kind)
{
    return kind && (!strcmp(kind, "mrsigner") || !strcmp(kind, "isv_prod_id") ||
                    !strcmp(kind, "min_svn"));
}

/* Splits a min_svn value: "NAME=N" (allow) or "NAME" (revoke). */
static mt_status min_value(const char *level, bool allow, const char *value, int *k, uint64_t *v,
                           mt_err *err)
{
    const char *eq = strchr(value, '=');
    size_t nl = eq ? (size_t)(eq - value) : strlen(value);
    char name[MT_ATTEST_NAME_MAX];
    *k = -1;
    if (nl < sizeof name) {
        memcpy(name, value, nl);
        name[nl] = '\0';
        *k = min_name(level, name);
    }
    if (*k < 0)
        return mt_err_set(err, MT_EINVAL,
                          "field 'value': a min_svn is NAME=N (allow) or NAME (revoke), NAME a "
                          "security version of level %s (" MIN_NAMES_TEXT ")",
                          level);
    if (allow && (!eq || !dec(eq + 1, strlen(eq + 1), min_names[*k].max, v)))
        return mt_err_set(err, MT_EINVAL,
                          "field 'value': min_svn %s=N needs N a decimal number 0 to %llu",
                          min_names[*k].name, (unsigned long long)min_names[*k].max);
    if (!allow && eq)
        return mt_err_set(err, MT_EINVAL,
                          "field 'value': revoke a min_svn by its name alone (%s)",
                          min_names[*k].name);
    return MT_OK;
}

mt_status ks_ext_check_value(const char *level, bool allow, const char *kind, const char *value,
                             mt_err *err)
{
    if (!value)
        return mt_err_set(err, MT_EINVAL, "field 'value' is required");
    bool sgx = level && !strcmp(level, "sgx");
    uint64_t v = 0;
    int k;
    if (!strcmp(kind, "mrsigner") || !strcmp(kind, "isv_prod_id")) {
        if (level && !sgx)
            return mt_err_set(err, MT_EINVAL,
                              "kind %s: signer-style release is for level sgx only (this "
                              "KeyStore is at level %s)",
                              kind, level);
        if (!strcmp(kind, "mrsigner") && !hex64(value))
            return mt_err_set(err, MT_EINVAL,
                              "field 'value': an mrsigner is 64 lowercase hex characters");
        if (!strcmp(kind, "isv_prod_id") && !dec(value, strlen(value), 65535, &v))
            return mt_err_set(err, MT_EINVAL,
                              "field 'value': an isv_prod_id is a decimal number 0 to 65535");
        return MT_OK;
    }
    if (!strcmp(kind, "min_svn")) {
        if (!level) { /* the CLI: the level is the server's; check the shape */
            static const char *const lv[] = {"sev-snp", "tdx", "sgx"};
            mt_status rc = MT_EINVAL;
            for (size_t i = 0; rc && i < 3; i++)
                rc = min_value(lv[i], allow, value, &k, &v, NULL);
            if (rc)
                return mt_err_set(err, MT_EINVAL,
                                  "a min_svn is NAME=N (allow) or NAME (revoke), NAME one of "
                                  "(" MIN_NAMES_TEXT ")");
            return MT_OK;
        }
        if (strcmp(level, "sev-snp") && strcmp(level, "tdx") && !sgx)
            return mt_err_set(err, MT_EINVAL,
                              "kind min_svn: level %s has no security versions to set a minimum "
                              "for (not a security version of level %s; min_svn is for sev-snp, "
                              "tdx and sgx)",
                              level, level);
        return min_value(level, allow, value, &k, &v, err);
    }
    return mt_err_set(err, MT_EINVAL, "field 'kind': not a release-policy rule");
}

/* The minimum isv_svn of signer-style release is set. */
static bool has_min_isv_svn(const ks_ext *x)
{
    for (size_t i = 0; i < x->n_min; i++)
        if (!strcmp(x->min[i].name, "isv_svn"))
            return true;
    return false;
}

const char *ks_ext_signer_state(const ks_ext *x)
{
    if (!x->n_mrsigner && !x->n_prod)
        return NULL;
    if (!x->n_mrsigner)
        return "inert: it needs an mrsigner (`mesatee admin release allow --kind mrsigner HEX`)";
    if (!x->n_prod)
        return "inert: it needs an isv_prod_id (`mesatee admin release allow --kind isv_prod_id "
               "N`)";
    if (!has_min_isv_svn(x))
        return "inert: it needs a minimum isv_svn, or every older enclave of the signer would "
               "get the keys (`mesatee admin release allow --kind min_svn isv_svn=N`)";
    return "active";
}

bool ks_ext_release_possible(const ks_ext *x, size_t n_meas)
{
    return n_meas > 0 || ks_ext_signer_style(x);
}

mt_status ks_ext_edit(ks_ext *x, const char *level, bool allow, const char *kind,
                      const char *value, bool *changed, mt_err *err)
{
    *changed = false;
    mt_status rc = ks_ext_check_value(level, allow, kind, value, err);
    if (rc)
        return rc;
    if (!strcmp(kind, "min_svn")) {
        int k;
        uint64_t v = 0;
        if ((rc = min_value(level, allow, value, &k, &v, err)))
            return rc;
        if (allow)
            return ext_add_min(x, level, min_names[k].name, v, true, changed, err);
        for (size_t i = 0; i < x->n_min; i++)
            if (!strcmp(x->min[i].name, min_names[k].name)) {
                memmove(&x->min[i], &x->min[i + 1], (x->n_min - i - 1) * sizeof x->min[0]);
                x->n_min--;
                *changed = true;
                return MT_OK;
            }
        return mt_err_set(err, MT_ENOTFOUND, "the release policy has no minimum %s",
                          min_names[k].name);
    }
    if (!strcmp(kind, "mrsigner")) {
        size_t i = 0;
        while (i < x->n_mrsigner && strcmp(x->mrsigner[i], value))
            i++;
        if (allow) {
            if (i < x->n_mrsigner)
                return MT_OK;
            if (x->n_mrsigner >= KS_EXT_MAX)
                return mt_err_set(err, MT_ETOOBIG, "the release policy holds at most %d "
                                                   "mrsigners",
                                  KS_EXT_MAX);
            snprintf(x->mrsigner[x->n_mrsigner++], sizeof x->mrsigner[0], "%s", value);
        } else {
            if (i == x->n_mrsigner)
                return mt_err_set(err, MT_ENOTFOUND, "that value is not in the release policy");
            memmove(&x->mrsigner[i], &x->mrsigner[i + 1],
                    (x->n_mrsigner - i - 1) * sizeof x->mrsigner[0]);
            x->n_mrsigner--;
        }
        *changed = true;
        return MT_OK;
    }
    uint64_t v = 0;
    dec(value, strlen(value), 65535, &v); /* checked above */
    size_t i = 0;
    while (i < x->n_prod && x->prod[i] != (uint16_t)v)
        i++;
    if (allow) {
        if (i < x->n_prod)
            return MT_OK;
        if (x->n_prod >= KS_EXT_MAX)
            return mt_err_set(err, MT_ETOOBIG, "the release policy holds at most %d isv_prod_ids",
                              KS_EXT_MAX);
        x->prod[x->n_prod++] = (uint16_t)v;
    } else {
        if (i == x->n_prod)
            return mt_err_set(err, MT_ENOTFOUND, "that value is not in the release policy");
        memmove(&x->prod[i], &x->prod[i + 1], (x->n_prod - i - 1) * sizeof x->prod[0]);
        x->n_prod--;
    }
    *changed = true;
    return MT_OK;
}

void ks_ext_policy_doc(const ks_ext *x, json_t *doc)
{
    if (!doc || !x->n_min)
        return;
    json_t *o = json_object();
    for (size_t i = 0; o && i < x->n_min; i++)
        json_object_set_new(o, x->min[i].name, json_integer((json_int_t)x->min[i].value));
    json_object_set_new(doc, "min_svns", o);
}

bool ks_ext_signer_style(const ks_ext *x)
{
    return x->n_mrsigner > 0 && x->n_prod > 0 && has_min_isv_svn(x);
}

json_t *ks_ext_signer_list(const ks_ext *x)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < x->n_mrsigner; i++)
        json_array_append_new(a, json_string(x->mrsigner[i]));
    return a;
}

mt_status ks_ext_signer_check(const ks_ext *x, const mt_attest_claims *c, mt_err *err)
{
    uint64_t id = 0;
    if (!mt_attest_claims_svn(c, "isv_prod_id", &id))
        return mt_err_set(err, MT_EPERM,
                          "release policy rule 'isv_prod_ids' failed: the evidence has no "
                          "isv_prod_id");
    for (size_t i = 0; i < x->n_prod; i++)
        if (x->prod[i] == id)
            return MT_OK;
    return mt_err_set(err, MT_EPERM,
                      "release policy rule 'isv_prod_ids' failed: the enclave's isv_prod_id %llu "
                      "is not one of the %zu allowed (`mesatee admin release allow --kind "
                      "isv_prod_id N`)",
                      (unsigned long long)id, x->n_prod);
}

bool ks_ext_audit_object(const char *kind, const char *value, char *out, size_t cap)
{
    mt_err e;
    if (!ks_ext_kind(kind) || ks_ext_check_value(NULL, true, kind, value, &e) != MT_OK)
        if (!ks_ext_kind(kind) || ks_ext_check_value(NULL, false, kind, value, &e) != MT_OK)
            return false;
    snprintf(out, cap, "%s", value); /* validated: a name from the table, digits or hex */
    return true;
}
