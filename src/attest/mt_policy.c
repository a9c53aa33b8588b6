/* mt_policy: attestation policy file and its evaluation; see mt_policy.h. */
#include "mt_policy.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_attest_int.h"
#include "mt_json.h"
#include "mt_policy_sig.h"
#include "mt_tpm2.h"
#include "mt_util.h"
#include "mt_vcache.h"

#define POL_MAX_ROLES 8
#define POL_MAX_NAMES 16
#define POL_MAX_VALUES 16
#define POL_MAX_KEYS 32
#define POL_MAX_LIST 32
#define POL_FUTURE_SKEW_S 300
#define POL_PATH_MAX 1024
#define POL_MAX_ENROLMENTS 256
#define POL_EXPECT_MAX MT_ATTEST_BLOB_MAX
#define POL_N_KINDS (MT_ATTEST_TPM2 + 1)

typedef struct pol_meas {
    char name[MT_ATTEST_NAME_MAX];
    uint8_t values[POL_MAX_VALUES][MT_ATTEST_VALUE_MAX];
    size_t lens[POL_MAX_VALUES];
    size_t n;
} pol_meas;

typedef struct pol_role {
    char name[64];
    pol_meas meas[POL_MAX_NAMES];
    size_t n;
} pol_role;

struct mt_policy {
    char role[64];
    unsigned kinds; /* bit (1 << kind) */
    int min_level;
    pol_role roles[POL_MAX_ROLES];
    size_t n_roles;
    uint8_t soft_keys[POL_MAX_KEYS][32];
    size_t n_soft_keys;
    mt_attest_svn min_svns[POL_MAX_LIST];
    size_t n_min_svns;
    bool allow_debug;
    char tcb[POL_MAX_LIST][48];
    size_t n_tcb;
    char adv[POL_MAX_LIST][24];
    size_t n_adv;
    int64_t max_age_s; /* 0 = no limit */
    uint8_t tpm2_aks[POL_MAX_KEYS][32]; /* SHA-256 of the AK's SPKI DER */
    size_t n_tpm2_aks;
    char ek_ca_path[POL_PATH_MAX];       /* "" when absent */
    char coll_dir[POL_PATH_MAX];         /* "" when absent */
    mt_attest_collateral *coll;          /* collateral dir; NULL when absent */
    /* TPM AK trust by enrolment: trusted enrollers (SHA-256 of their SPKI)
     * and the records verified at load (mt_tpm2_record_verify). */
    uint8_t enrollers[POL_MAX_KEYS][32];
    size_t n_enrollers;
    mt_tpm2_record *enrolled; /* heap, n_enrolled entries */
    size_t n_enrolled;
    /* Checks that must have run (MT_ATTEST_CHECKED_*), per evidence kind. */
    unsigned required[POL_N_KINDS];
    /* SEV-SNP: exact VMPL (-1 = any) and guest policy bits that must be
     * clear / set. */
    int64_t snp_vmpl;
    uint64_t snp_forbid, snp_require;
    /* Expected values bound into the evidence (offline freshness). */
    uint8_t *expect[MT_POLICY_EXPECT_N];
    size_t expect_len[MT_POLICY_EXPECT_N];
    /* Digest of everything the policy was made from (document, base
     * directory, collateral, enrolment and EK CA bytes, expected values):
     * part of the key of the verified-peer cache (mt_vcache.h). digest_ok
     * false (a hash failed): results checked against it are not cached. */
    uint8_t digest[32];
    bool digest_ok;
};

/* digest = SHA-256(digest || label || len || data). */
static void pol_mix(mt_policy *p, const char *label, const void *data, size_t len)
{
    uint8_t l8[8];
    for (int i = 0; i < 8; i++)
        l8[i] = (uint8_t)((uint64_t)len >> (8 * i));
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned hl = 0;
    bool ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(m, p->digest, 32) == 1 &&
              EVP_DigestUpdate(m, label, strlen(label) + 1) == 1 &&
              EVP_DigestUpdate(m, l8, 8) == 1 && (!len || EVP_DigestUpdate(m, data, len) == 1) &&
              EVP_DigestFinal_ex(m, p->digest, &hl) == 1;
    EVP_MD_CTX_free(m);
    if (!ok)
        p->digest_ok = false;
}

/* ---- parsing ------------------------------------------------------------ */

int mt_policy_level_of(mt_attest_kind kind)
{
    switch (kind) {
    case MT_ATTEST_SOFT: return 2;
    case MT_ATTEST_TPM2: return 3;
    case MT_ATTEST_SEV_SNP:
    case MT_ATTEST_TDX:
    case MT_ATTEST_NITRO: return 4;
    case MT_ATTEST_SGX: return 5;
    }
    return 0;
}

int mt_policy_level_parse(const char *name)
{
    static const struct {
        const char *n;
        int l;
    } t[] = {{"none", 1}, {"soft", 2}, {"tpm2", 3}, {"sev-snp", 4},
             {"tdx", 4},  {"nitro", 4}, {"sgx", 5}};
    for (size_t i = 0; name && i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].n, name))
            return t[i].l;
    return 0;
}

/* Hex string of 1..64 bytes into out. */
static int hex_value(const char *s, uint8_t *out, size_t *len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n / 2 > MT_ATTEST_VALUE_MAX)
        return 0;
    if (mt_hex_decode(s, out, n / 2, NULL) != MT_OK)
        return 0;
    *len = n / 2;
    return 1;
}

/* Array of strings (1..max items) from v; calls fn on each. */
static mt_status str_list(json_t *arr, const char *what, size_t max, size_t maxlen,
                          mt_status (*fn)(void *, const char *, const char *, mt_err *), void *ud,
                          mt_err *err)
{
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected an array of at most %zu strings",
                          what, max);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || strlen(s) > maxlen)
            return mt_err_set(err, MT_EINVAL,
                              "field '%s' item %zu: expected a string of at most %zu bytes", what,
                              i, maxlen);
        mt_status st = fn(ud, what, s, err);
        if (st != MT_OK)
            return st;
    }
    return MT_OK;
}

static mt_status add_kind(void *ud, const char *what, const char *s, mt_err *err)
{
    mt_policy *p = ud;
    mt_attest_kind k;
    if (mt_attest_kind_parse(s, &k, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': unknown kind '%.32s' (sgx, tdx, sev-snp, nitro, tpm2, soft)", what,
                          s);
    p->kinds |= 1u << k;
    return MT_OK;
}

static mt_status add_soft_key(void *ud, const char *what, const char *s, mt_err *err)
{
    mt_policy *p = ud;
    if (p->n_soft_keys >= POL_MAX_KEYS || strlen(s) != 64 ||
        mt_hex_decode(s, p->soft_keys[p->n_soft_keys], 32, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': '%.70s' is not 64 hex characters (SHA-256 of the platform "
                          "key's SubjectPublicKeyInfo, as `mesatee attest show` prints it)",
                          what, s);
    p->n_soft_keys++;
    return MT_OK;
}

static mt_status add_tpm2_ak(void *ud, const char *what, const char *s, mt_err *err)
{
    mt_policy *p = ud;
    if (p->n_tpm2_aks >= POL_MAX_KEYS || strlen(s) != 64 ||
        mt_hex_decode(s, p->tpm2_aks[p->n_tpm2_aks], 32, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': '%.70s' is not 64 hex characters (SHA-256 of the TPM "
                          "attestation key's SubjectPublicKeyInfo, `mesatee attest show` prints "
                          "it as tpm2_ak)",
                          what, s);
    p->n_tpm2_aks++;
    return MT_OK;
}

static mt_status add_enroller(void *ud, const char *what, const char *s, mt_err *err)
{
    mt_policy *p = ud;
    if (p->n_enrollers >= POL_MAX_KEYS || strlen(s) != 64 ||
        mt_hex_decode(s, p->enrollers[p->n_enrollers], 32, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': '%.70s' is not 64 hex characters (SHA-256 of an "
                          "enroller's SubjectPublicKeyInfo, as `mesatee attest tpm-enroll` "
                          "prints it)",
                          what, s);
    p->n_enrollers++;
    return MT_OK;
}

/* Names of MT_ATTEST_CHECKED_* bits, as policies and claims JSON write them. */
static const struct {
    const char *name;
    unsigned bit;
} check_names[] = {{"tcb", MT_ATTEST_CHECKED_TCB},
                   {"revocation", MT_ATTEST_CHECKED_REVOCATION},
                   {"qe_identity", MT_ATTEST_CHECKED_QE_IDENTITY},
                   {"chip_id", MT_ATTEST_CHECKED_CHIP_ID},
                   {"ek_chain", MT_ATTEST_CHECKED_EK_CHAIN}};
#define N_CHECK_NAMES (sizeof check_names / sizeof check_names[0])

typedef struct req_ud {
    unsigned bits;
} req_ud;

static mt_status add_required(void *ud, const char *what, const char *s, mt_err *err)
{
    for (size_t i = 0; i < N_CHECK_NAMES; i++) {
        if (!strcmp(check_names[i].name, s)) {
            ((req_ud *)ud)->bits |= check_names[i].bit;
            return MT_OK;
        }
    }
    return mt_err_set(err, MT_EINVAL,
                      "field '%s': unknown check '%.32s' (tcb, revocation, qe_identity, chip_id, "
                      "ek_chain)",
                      what, s);
}

/* SEV-SNP guest policy bits by name (AMD SEV-SNP ABI, GUEST_POLICY). */
static const struct {
    const char *name;
    unsigned bit;
} snp_bits[] = {{"smt", 16},           {"migrate_ma", 18},          {"debug", 19},
                {"single_socket", 20}, {"cxl_allow", 21},           {"mem_aes_256_xts", 22},
                {"rapl_dis", 23},      {"ciphertext_hiding", 24},   {"page_swap_disable", 25}};

typedef struct snp_ud {
    uint64_t mask;
} snp_ud;

static mt_status add_snp_bit(void *ud, const char *what, const char *s, mt_err *err)
{
    for (size_t i = 0; i < sizeof snp_bits / sizeof snp_bits[0]; i++) {
        if (!strcmp(snp_bits[i].name, s)) {
            ((snp_ud *)ud)->mask |= 1ull << snp_bits[i].bit;
            return MT_OK;
        }
    }
    unsigned n = 0;
    char tail = 0;
    if (sscanf(s, "bit%2u%c", &n, &tail) == 1 && n < 64 && strlen(s) <= 5) {
        ((snp_ud *)ud)->mask |= 1ull << n;
        return MT_OK;
    }
    return mt_err_set(err, MT_EINVAL,
                      "field '%s': unknown SNP policy bit '%.32s' (smt, migrate_ma, debug, "
                      "single_socket, cxl_allow, mem_aes_256_xts, rapl_dis, ciphertext_hiding, "
                      "page_swap_disable, or bitN with N 0..63)",
                      what, s);
}

/* Paths of enrolment records, collected at parse and verified after the
 * EK CA is read. */
typedef struct enrol_paths {
    const char *paths[POL_MAX_ENROLMENTS];
    size_t n;
} enrol_paths;

static mt_status add_enrol_path(void *ud, const char *what, const char *s, mt_err *err)
{
    enrol_paths *e = ud;
    if (!*s || e->n >= POL_MAX_ENROLMENTS)
        return mt_err_set(err, MT_EINVAL, "field '%s': empty path or over %d records", what,
                          POL_MAX_ENROLMENTS);
    e->paths[e->n++] = s;
    return MT_OK;
}

static mt_status add_tcb(void *ud, const char *what, const char *s, mt_err *err)
{
    mt_policy *p = ud;
    bool known = false;
    for (int i = MT_TCB_NOT_EVALUATED; i <= MT_TCB_REVOKED; i++)
        if (!strcmp(mt_attest_tcb_status_name((mt_attest_tcb_status)i), s))
            known = true;
    if (!known || !strcmp(s, "Revoked"))
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': '%.48s' is not an acceptable TCB status (UpToDate, "
                          "SWHardeningNeeded, ConfigurationNeeded, ..., NotEvaluated)",
                          what, s);
    snprintf(p->tcb[p->n_tcb++], sizeof p->tcb[0], "%s", s);
    return MT_OK;
}

static mt_status add_adv(void *ud, const char *what, const char *s, mt_err *err)
{
    mt_policy *p = ud;
    if (!*s)
        return mt_err_set(err, MT_EINVAL, "field '%s': empty advisory id", what);
    snprintf(p->adv[p->n_adv++], sizeof p->adv[0], "%s", s);
    return MT_OK;
}

typedef struct meas_ud {
    pol_meas *m;
} meas_ud;

static mt_status add_meas_value(void *ud, const char *what, const char *s, mt_err *err)
{
    pol_meas *m = ((meas_ud *)ud)->m;
    if (!hex_value(s, m->values[m->n], &m->lens[m->n]))
        return mt_err_set(err, MT_EINVAL, "field '%s': '%.40s' is not 1 to 64 bytes of hex", what,
                          s);
    m->n++;
    return MT_OK;
}

static mt_status parse_roles(mt_policy *p, json_t *obj, mt_err *err)
{
    if (!obj || json_object_size(obj) == 0)
        return mt_err_set(err, MT_EINVAL,
                          "field 'measurements' is required: {\"<role>\": {\"measurement\": "
                          "[\"<hex>\"]}} (get the value with `mesatee measure`)");
    const char *rname;
    json_t *rv;
    json_object_foreach(obj, rname, rv)
    {
        if (p->n_roles >= POL_MAX_ROLES || strlen(rname) >= sizeof p->roles[0].name ||
            !json_is_object(rv) || json_object_size(rv) == 0 ||
            json_object_size(rv) > POL_MAX_NAMES)
            return mt_err_set(err, MT_EINVAL,
                              "field 'measurements.%.40s': expected an object of 1 to %d "
                              "measurement names (at most %d roles)",
                              rname, POL_MAX_NAMES, POL_MAX_ROLES);
        pol_role *r = &p->roles[p->n_roles++];
        snprintf(r->name, sizeof r->name, "%s", rname);
        const char *mname;
        json_t *mv;
        json_object_foreach(rv, mname, mv)
        {
            char what[160];
            snprintf(what, sizeof what, "measurements.%.40s.%.40s", rname, mname);
            if (strlen(mname) >= MT_ATTEST_NAME_MAX || !json_is_array(mv) ||
                json_array_size(mv) == 0)
                return mt_err_set(err, MT_EINVAL,
                                  "field '%s': expected a non-empty array of hex values", what);
            pol_meas *m = &r->meas[r->n++];
            snprintf(m->name, sizeof m->name, "%s", mname);
            meas_ud u = {m};
            mt_status st = str_list(mv, what, POL_MAX_VALUES, 2 * MT_ATTEST_VALUE_MAX,
                                    add_meas_value, &u, err);
            if (st != MT_OK)
                return st;
        }
    }
    return MT_OK;
}

/* Resolves a policy-relative path: absolute as is, else under base_dir
 * (the policy file's directory; NULL = the working directory). */
static void pol_path(const char *base_dir, const char *rel, char *out, size_t cap)
{
    if (rel[0] == '/' || !base_dir || !*base_dir)
        snprintf(out, cap, "%s", rel);
    else
        snprintf(out, cap, "%s/%s", base_dir, rel);
}

/* Loads the collateral directory the policy names. */
static mt_status pol_load_coll(mt_policy *p, const char *base_dir, mt_err *err)
{
    if (!p->coll_dir[0])
        return MT_OK;
    if (!(p->coll = mt_attest_collateral_new()))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char path[2 * POL_PATH_MAX + 2];
    mt_err e;
    mt_err_clear(&e);
    pol_path(base_dir, p->coll_dir, path, sizeof path);
    if (mt_attest_collateral_load_dir(p->coll, path, &e) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "field 'collateral_dir': %s: %s", path, e.msg);
    for (int item = MT_COLL_AMD_VCEK; item <= MT_COLL_TPM2_EK_CA; item++) {
        size_t il = 0;
        const uint8_t *b = mt_attest_coll_get(p->coll, (mt_attest_coll_item)item, &il);
        char label[24];
        snprintf(label, sizeof label, "collateral %d", item);
        pol_mix(p, label, b, b ? il : 0);
    }
    return MT_OK;
}

/* Verifies every enrolment record the policy names (signed by a trusted
 * enroller; EK chained to tpm2_ek_ca when given). One bad record refuses
 * the whole policy: a relying party must not silently trust fewer TPMs, or
 * more, than its policy says. */
static mt_status pol_load_enrolments(mt_policy *p, const enrol_paths *ep, const char *base_dir,
                                     mt_err *err)
{
    uint8_t *ca = NULL;
    size_t ca_len = 0;
    char path[2 * POL_PATH_MAX + 2];
    mt_err e;
    mt_err_clear(&e);
    mt_status st = MT_OK;
    if (p->ek_ca_path[0]) {
        pol_path(base_dir, p->ek_ca_path, path, sizeof path);
        if ((st = mt_file_read(path, MT_ATTEST_COLL_MAX, &ca, &ca_len, &e)) != MT_OK)
            return mt_err_set(err, MT_EINVAL,
                              "field 'tpm2_ek_ca': cannot use %s (a PEM bundle of the TPM "
                              "vendors' EK CA certificates): %s",
                              path, e.msg);
    }
    pol_mix(p, "tpm2_ek_ca", ca, ca ? ca_len : 0);
    if (ep->n && !(p->enrolled = calloc(ep->n, sizeof *p->enrolled))) {
        free(ca);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ep->n; i++) {
        uint8_t *rec = NULL;
        size_t rl = 0;
        pol_path(base_dir, ep->paths[i], path, sizeof path);
        if ((st = mt_file_read(path, MT_TPM2_RECORD_MAX, &rec, &rl, &e)) == MT_OK)
            pol_mix(p, "tpm2_enrolment", rec, rl);
        if (st == MT_OK)
            st = mt_tpm2_record_verify(rec, rl, (const uint8_t (*)[32])p->enrollers,
                                       p->n_enrollers, ca, ca_len, &p->enrolled[p->n_enrolled],
                                       &e);
        free(rec);
        if (st != MT_OK) {
            st = mt_err_set(err, st == MT_EAUTH ? MT_EAUTH : MT_EINVAL,
                            "field 'tpm2_enrolments': %s: %s", path, e.msg);
            break;
        }
        p->n_enrolled++;
    }
    free(ca);
    return st;
}

static mt_status policy_parse_in(const char *json, size_t len, const char *base_dir,
                                 mt_policy **out, mt_err *err);

mt_status mt_policy_parse(const char *json, size_t len, mt_policy **out, mt_err *err)
{
    return policy_parse_in(json, len, NULL, out, err);
}

static mt_status policy_parse_in(const char *json, size_t len, const char *base_dir,
                                 mt_policy **out, mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_policy_parse: NULL argument");
    *out = NULL;
    mt_err e;
    mt_err_clear(&e);
    json_t *doc = mt_json_parse(json, len, MT_POLICY_MAX_BYTES, 8, &e);
    if (!doc)
        return mt_err_set(err, MT_EINVAL, "policy: %s", e.msg);
    mt_policy *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(doc);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    p->digest_ok = true;
    pol_mix(p, "mesatee-policy-v1", json, len);
    pol_mix(p, "base_dir", base_dir ? base_dir : "", base_dir ? strlen(base_dir) : 0);
    static const char *const keys[] = {
        "mesatee_policy",      "role",     "allowed_kinds",       "min_level",
        "measurements",        "soft_platform_keys", "min_svns",   "allow_debug",
        "accepted_tcb_statuses", "accepted_advisories", "max_evidence_age_s", "comment",
        "tpm2_aks", "tpm2_ek_ca", "collateral_dir", "tpm2_enrollers", "tpm2_enrolments",
        "required_checks", "snp_vmpl", "snp_policy_forbidden", "snp_policy_required",
        "expected_report_data", "expected_nonce", "expected_user_data", NULL};
    enrol_paths ep;
    ep.n = 0;
    int64_t ver = 0;
    const char *role = NULL;
    json_t *arr = NULL, *obj = NULL;
    mt_status st;
    if ((st = mt_json_only_keys(doc, keys, &e)) != MT_OK ||
        (st = mt_json_int(doc, "mesatee_policy", 1, 1, &ver, &e)) != MT_OK ||
        (st = mt_json_str_opt(doc, "role", 63, &role, "gateway", &e)) != MT_OK)
        goto fail;
    snprintf(p->role, sizeof p->role, "%s", role);
    if ((st = mt_json_array(doc, "allowed_kinds", 8, &arr, &e)) != MT_OK ||
        (st = str_list(arr, "allowed_kinds", 8, 32, add_kind, p, &e)) != MT_OK)
        goto fail;
    if (!p->kinds) {
        st = mt_err_set(&e, MT_EINVAL, "field 'allowed_kinds' must name at least one kind");
        goto fail;
    }
    json_t *ml = json_object_get(doc, "min_level");
    if (!ml) {
        p->min_level = 2;
    } else if (!json_is_string(ml) || (p->min_level = mt_policy_level_parse(json_string_value(ml))) < 2) {
        st = mt_err_set(&e, MT_EINVAL, "field 'min_level': expected soft, tpm2, sev-snp, tdx, "
                                       "nitro or sgx (level none never satisfies a policy)");
        goto fail;
    }
    if ((st = mt_json_object_opt(doc, "measurements", POL_MAX_ROLES, &obj, &e)) != MT_OK ||
        (st = parse_roles(p, obj, &e)) != MT_OK)
        goto fail;
    if ((st = mt_json_array_opt(doc, "soft_platform_keys", POL_MAX_KEYS, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "soft_platform_keys", POL_MAX_KEYS, 64, add_soft_key, p,
                               &e)) != MT_OK))
        goto fail;
    if ((p->kinds & (1u << MT_ATTEST_SOFT)) && p->n_soft_keys == 0) {
        st = mt_err_set(&e, MT_EINVAL,
                        "field 'soft_platform_keys' is required when 'soft' is allowed: pin the "
                        "platform key hash that `mesatee attest show` prints");
        goto fail;
    }
    if ((st = mt_json_array_opt(doc, "tpm2_aks", POL_MAX_KEYS, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "tpm2_aks", POL_MAX_KEYS, 64, add_tpm2_ak, p, &e)) != MT_OK))
        goto fail;
    const char *ekca = NULL, *cdir = NULL;
    if ((st = mt_json_str_opt(doc, "tpm2_ek_ca", POL_PATH_MAX - 1, &ekca, NULL, &e)) != MT_OK ||
        (st = mt_json_str_opt(doc, "collateral_dir", POL_PATH_MAX - 1, &cdir, NULL, &e)) != MT_OK)
        goto fail;
    snprintf(p->ek_ca_path, sizeof p->ek_ca_path, "%s", ekca ? ekca : "");
    snprintf(p->coll_dir, sizeof p->coll_dir, "%s", cdir ? cdir : "");
    if ((st = mt_json_array_opt(doc, "tpm2_enrollers", POL_MAX_KEYS, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "tpm2_enrollers", POL_MAX_KEYS, 64, add_enroller, p, &e)) !=
                    MT_OK) ||
        (st = mt_json_array_opt(doc, "tpm2_enrolments", POL_MAX_ENROLMENTS, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "tpm2_enrolments", POL_MAX_ENROLMENTS, POL_PATH_MAX - 1,
                               add_enrol_path, &ep, &e)) != MT_OK))
        goto fail;
    /* AK trust: a pin, or an enrolment record signed by a trusted enroller.
     * Anything else cannot establish that an AK lives in a TPM, so such a
     * policy is refused here rather than accepting whatever AK the server
     * presents. */
    if (ep.n && !p->n_enrollers) {
        st = mt_err_set(&e, MT_EINVAL,
                        "field 'tpm2_enrolments' needs 'tpm2_enrollers': the SHA-256 of the "
                        "public keys whose signature on an enrolment record you trust");
        goto fail;
    }
    if (p->n_enrollers && !ep.n) {
        st = mt_err_set(&e, MT_EINVAL,
                        "field 'tpm2_enrollers' needs 'tpm2_enrolments': the enrolment records "
                        "(`mesatee attest tpm-enroll --out FILE`) of the TPMs to trust");
        goto fail;
    }
    if (p->ek_ca_path[0] && !ep.n) {
        st = mt_err_set(&e, MT_EINVAL,
                        "field 'tpm2_ek_ca' alone establishes no trust in a TPM attestation key "
                        "(EK certificates are public and a quote does not bind the EK to the "
                        "AK): it checks the EK certificates of 'tpm2_enrolments', which need "
                        "'tpm2_enrollers'; or pin the AKs in 'tpm2_aks' and drop 'tpm2_ek_ca'");
        goto fail;
    }
    if ((p->kinds & (1u << MT_ATTEST_TPM2)) && p->n_tpm2_aks == 0 && ep.n == 0) {
        st = mt_err_set(&e, MT_EINVAL,
                        "'tpm2' is allowed but the policy cannot establish trust in a TPM "
                        "attestation key: pin the AK hashes that `mesatee attest show` prints "
                        "as tpm2_ak in 'tpm2_aks', or list enrolment records in "
                        "'tpm2_enrolments' signed by a key in 'tpm2_enrollers' (`mesatee attest "
                        "tpm-enroll`)");
        goto fail;
    }
    if ((st = mt_json_object_opt(doc, "required_checks", POL_N_KINDS + 1, &obj, &e)) != MT_OK)
        goto fail;
    if (obj) {
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v)
        {
            char what[64];
            snprintf(what, sizeof what, "required_checks.%.32s", k);
            mt_attest_kind kind = MT_ATTEST_SGX;
            bool all = !strcmp(k, "all");
            if (!all && mt_attest_kind_parse(k, &kind, NULL) != MT_OK) {
                st = mt_err_set(&e, MT_EINVAL,
                                "field '%s': expected an evidence kind (sgx, tdx, sev-snp, "
                                "nitro, tpm2, soft) or 'all'",
                                what);
                goto fail;
            }
            req_ud u = {0};
            if ((st = str_list(v, what, N_CHECK_NAMES, 32, add_required, &u, &e)) != MT_OK)
                goto fail;
            for (int i = 1; i < POL_N_KINDS; i++)
                if (all || i == (int)kind)
                    p->required[i] |= u.bits;
        }
    }
    if ((st = mt_json_int_opt(doc, "snp_vmpl", 0, 3, &p->snp_vmpl, -1, &e)) != MT_OK)
        goto fail;
    snp_ud fu = {0}, ru = {0};
    if ((st = mt_json_array_opt(doc, "snp_policy_forbidden", 64, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "snp_policy_forbidden", 64, 32, add_snp_bit, &fu, &e)) !=
                    MT_OK) ||
        (st = mt_json_array_opt(doc, "snp_policy_required", 64, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "snp_policy_required", 64, 32, add_snp_bit, &ru, &e)) !=
                    MT_OK))
        goto fail;
    if (fu.mask & ru.mask) {
        st = mt_err_set(&e, MT_EINVAL,
                        "fields 'snp_policy_forbidden' and 'snp_policy_required' name the same bit");
        goto fail;
    }
    p->snp_forbid = fu.mask;
    p->snp_require = ru.mask;
    static const char *const expect_keys[MT_POLICY_EXPECT_N] = {
        "expected_report_data", "expected_nonce", "expected_user_data"};
    for (int i = 0; i < MT_POLICY_EXPECT_N; i++) {
        const char *hx = NULL;
        size_t max = i == MT_POLICY_EXPECT_REPORT_DATA ? 64 : POL_EXPECT_MAX;
        if ((st = mt_json_str_opt(doc, expect_keys[i], 2 * max, &hx, NULL, &e)) != MT_OK)
            goto fail;
        if (hx && (st = mt_policy_set_expected(p, (mt_policy_expect)i, hx, &e)) != MT_OK) {
            st = mt_err_set(&e, MT_EINVAL, "field '%s': %s", expect_keys[i], e.msg);
            goto fail;
        }
    }
    if ((st = mt_json_object_opt(doc, "min_svns", POL_MAX_LIST, &obj, &e)) != MT_OK)
        goto fail;
    if (obj) {
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v)
        {
            if (strlen(k) >= MT_ATTEST_NAME_MAX || !json_is_integer(v) || json_integer_value(v) < 0) {
                st = mt_err_set(&e, MT_EINVAL, "field 'min_svns.%.40s': expected an integer >= 0", k);
                goto fail;
            }
            mt_attest_svn *s = &p->min_svns[p->n_min_svns++];
            snprintf(s->name, sizeof s->name, "%s", k);
            s->value = (uint64_t)json_integer_value(v);
        }
    }
    if ((st = mt_json_bool_opt(doc, "allow_debug", &p->allow_debug, false, &e)) != MT_OK)
        goto fail;
    if ((st = mt_json_array_opt(doc, "accepted_tcb_statuses", POL_MAX_LIST, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "accepted_tcb_statuses", POL_MAX_LIST, 47, add_tcb, p,
                               &e)) != MT_OK))
        goto fail;
    if (!arr)
        snprintf(p->tcb[p->n_tcb++], sizeof p->tcb[0], "UpToDate");
    if ((st = mt_json_array_opt(doc, "accepted_advisories", POL_MAX_LIST, &arr, &e)) != MT_OK ||
        (arr && (st = str_list(arr, "accepted_advisories", POL_MAX_LIST, 23, add_adv, p, &e)) !=
                    MT_OK))
        goto fail;
    if ((st = mt_json_int_opt(doc, "max_evidence_age_s", 0, 10LL * 365 * 86400, &p->max_age_s, 0,
                              &e)) != MT_OK)
        goto fail;
    if ((st = pol_load_coll(p, base_dir, &e)) != MT_OK ||
        (st = pol_load_enrolments(p, &ep, base_dir, &e)) != MT_OK)
        goto fail;
    json_decref(doc);
    *out = p;
    return MT_OK;
fail:
    json_decref(doc);
    mt_policy_free(p);
    return mt_err_set(err, st, "policy: %s", e.msg);
}

mt_status mt_policy_load(const char *path, mt_policy **out, mt_err *err)
{
    return mt_policy_load_signed(path, NULL, 0, out, err);
}

mt_status mt_policy_load_signed(const char *path, const char *signers_path, unsigned threshold,
                                mt_policy **out, mt_err *err)
{
    if (!path || !out)
        return mt_err_set(err, MT_EINVAL, "mt_policy_load: NULL argument");
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err e;
    mt_status st = mt_file_read(path, MT_POLICY_MAX_BYTES, &buf, &len, &e);
    if (st != MT_OK)
        return mt_err_set(err, st, "cannot read policy file %s: %s", path, e.msg);
    if (signers_path) {
        uint8_t *signers = NULL, *sig = NULL;
        size_t sl = 0, gl = 0;
        char sig_path[POL_PATH_MAX + 8];
        snprintf(sig_path, sizeof sig_path, "%s.sig", path);
        if ((st = mt_file_read(signers_path, 64 * 1024, &signers, &sl, &e)) != MT_OK) {
            free(buf);
            return mt_err_set(err, st, "cannot read the policy auditor keys %s: %s",
                              signers_path, e.msg);
        }
        st = mt_file_read(sig_path, MT_POLICY_SIG_FILE_MAX, &sig, &gl, &e);
        if (st == MT_OK || st == MT_ENOTFOUND || st == MT_EIO)
            st = mt_policy_sig_verify(buf, len, sig, st == MT_OK ? gl : 0, signers, sl,
                                      threshold, &e);
        free(signers);
        free(sig);
        if (st != MT_OK) {
            free(buf);
            return mt_err_set(err, st, "policy %s is not signed as required by %s: %s", path,
                              signers_path, e.msg);
        }
    }
    char base[POL_PATH_MAX];
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash)
        *slash = '\0';
    else
        base[0] = '\0';
    st = policy_parse_in((const char *)buf, len, base, out, &e);
    free(buf);
    if (st != MT_OK)
        return mt_err_set(err, st, "%s: %s", path, e.msg);
    return MT_OK;
}

void mt_policy_free(mt_policy *p)
{
    if (!p)
        return;
    mt_attest_collateral_free(p->coll);
    free(p->enrolled);
    for (int i = 0; i < MT_POLICY_EXPECT_N; i++)
        free(p->expect[i]);
    free(p);
}

mt_status mt_policy_set_expected(mt_policy *p, mt_policy_expect which, const char *hex,
                                 mt_err *err)
{
    if (!p || !hex || (int)which < 0 || which >= MT_POLICY_EXPECT_N)
        return mt_err_set(err, MT_EINVAL, "mt_policy_set_expected: bad argument");
    size_t n = strlen(hex), max = which == MT_POLICY_EXPECT_REPORT_DATA ? 64 : POL_EXPECT_MAX;
    if (n == 0 || n % 2 || n / 2 > max)
        return mt_err_set(err, MT_EINVAL, "expected 2 to %zu hex characters", 2 * max);
    uint8_t *b = malloc(n / 2);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (mt_hex_decode(hex, b, n / 2, NULL) != MT_OK) {
        free(b);
        return mt_err_set(err, MT_EINVAL, "not hex");
    }
    free(p->expect[which]);
    p->expect[which] = b;
    p->expect_len[which] = n / 2;
    char label[24];
    snprintf(label, sizeof label, "expect %d", (int)which);
    pol_mix(p, label, b, n / 2);
    return MT_OK;
}

const mt_attest_collateral *mt_policy_collateral(const mt_policy *p)
{
    return p ? p->coll : NULL;
}

const char *mt_policy_role(const mt_policy *p) { return p ? p->role : ""; }

/* ---- evaluation --------------------------------------------------------- */

#define RULE_FAIL(err, rule, ...)                                                                  \
    mt_err_set(err, MT_EPERM, "policy rule '" rule "' failed: " __VA_ARGS__)

/* SHA-256 of the AK SubjectPublicKeyInfo of TPM claims; false if none. */
static bool tpm2_ak_hash(const mt_attest_claims *c, uint8_t h[32])
{
    unsigned int hl = 0;
    return c->public_key_len > 0 && c->public_key_len <= sizeof c->public_key &&
           EVP_Digest(c->public_key, c->public_key_len, h, &hl, EVP_sha256(), NULL) == 1 &&
           hl == 32;
}

/* The verified enrolment record of an AK hash, or NULL. */
static const mt_tpm2_record *pol_enrolled(const mt_policy *p, const uint8_t h[32])
{
    for (size_t i = 0; i < p->n_enrolled; i++)
        if (memcmp(p->enrolled[i].ak_sha256, h, 32) == 0)
            return &p->enrolled[i];
    return NULL;
}

mt_status mt_policy_check(const mt_policy *p, const mt_attest_claims *c, int64_t now, mt_err *err)
{
    if (!p || !c)
        return mt_err_set(err, MT_EINVAL, "mt_policy_check: NULL argument");
    const char *kn = mt_attest_kind_name(c->kind);
    if (!kn || !(p->kinds & (1u << c->kind)))
        return RULE_FAIL(err, "allowed_kinds", "the %s's evidence is of kind '%s', not allowed",
                         p->role, kn ? kn : "?");
    if (mt_policy_level_of(c->kind) < p->min_level)
        return RULE_FAIL(err, "min_level", "kind '%s' is level %d, the policy needs level %d", kn,
                         mt_policy_level_of(c->kind), p->min_level);
    if (c->kind == MT_ATTEST_SOFT) {
        bool pinned = false;
        for (size_t i = 0; i < p->n_soft_keys; i++)
            if (c->signer_len == 32 && memcmp(c->signer, p->soft_keys[i], 32) == 0)
                pinned = true;
        if (!pinned) {
            char hex[65];
            mt_hex_encode(c->signer, c->signer_len == 32 ? 32 : 0, hex);
            return RULE_FAIL(err, "soft_platform_keys",
                             "the %s's platform key %s is not pinned (%zu pinned)", p->role,
                             hex, p->n_soft_keys);
        }
    }
    unsigned checked = c->checked;
    if (c->kind == MT_ATTEST_TPM2) {
        /* The AK that signed the quote is trusted only when pinned or
         * covered by a verified enrolment record (credential activation).
         * The EK certificate of the evidence is never a reason. */
        const mt_tpm2_record *rec = NULL;
        uint8_t h[32];
        if (!tpm2_ak_hash(c, h))
            return RULE_FAIL(err, "tpm2_aks", "the TPM evidence names no attestation key");
        bool pinned = false;
        for (size_t i = 0; i < p->n_tpm2_aks; i++)
            if (memcmp(h, p->tpm2_aks[i], 32) == 0)
                pinned = true;
        rec = pol_enrolled(p, h);
        if (!pinned && !rec) {
            char hex[65];
            mt_hex_encode(h, 32, hex);
            return RULE_FAIL(err, "tpm2_aks",
                             "the %s's TPM attestation key %s is neither pinned (%zu pinned) "
                             "nor enrolled (%zu enrolment records)",
                             p->role, hex, p->n_tpm2_aks, p->n_enrolled);
        }
        checked &= ~MT_ATTEST_CHECKED_EK_CHAIN; /* only an enrolment establishes it */
        if (rec && rec->ek_chain_checked)
            checked |= MT_ATTEST_CHECKED_EK_CHAIN;
    }
    unsigned need = c->kind > 0 && c->kind < POL_N_KINDS ? p->required[c->kind] : 0;
    for (size_t i = 0; i < N_CHECK_NAMES; i++)
        if ((need & check_names[i].bit) && !(checked & check_names[i].bit))
            return mt_err_set(err, MT_EPERM,
                              "policy rule 'required_checks' failed: the check '%s' is required "
                              "for kind '%s' and was not done on this evidence (missing "
                              "collateral, or the kind cannot provide it)",
                              check_names[i].name, kn);
    const pol_role *r = NULL;
    for (size_t i = 0; i < p->n_roles; i++)
        if (!strcmp(p->roles[i].name, p->role))
            r = &p->roles[i];
    if (!r)
        return mt_err_set(err, MT_EPERM,
                          "policy rule 'measurements.%s' failed: the policy expects no "
                          "measurement for role '%s'",
                          p->role, p->role);
    for (size_t i = 0; i < r->n; i++) {
        const pol_meas *m = &r->meas[i];
        const mt_attest_measurement *got = mt_attest_claims_measurement(c, m->name);
        if (!got)
            return mt_err_set(err, MT_EPERM,
                              "policy rule 'measurements.%s.%s' failed: the evidence has no "
                              "measurement '%s'",
                              p->role, m->name, m->name);
        bool match = false;
        for (size_t j = 0; j < m->n; j++)
            if (m->lens[j] == got->len && memcmp(m->values[j], got->value, got->len) == 0)
                match = true;
        if (!match) {
            char hex[2 * MT_ATTEST_VALUE_MAX + 1];
            mt_hex_encode(got->value, got->len, hex);
            return mt_err_set(err, MT_EPERM,
                              "policy rule 'measurements.%s.%s' failed: the %s's %s %.64s is "
                              "not one of the %zu expected",
                              p->role, m->name, p->role, m->name, hex, m->n);
        }
    }
    for (size_t i = 0; i < p->n_min_svns; i++) {
        uint64_t v;
        if (!mt_attest_claims_svn(c, p->min_svns[i].name, &v))
            return mt_err_set(err, MT_EPERM,
                              "policy rule 'min_svns.%s' failed: the evidence has no '%s'",
                              p->min_svns[i].name, p->min_svns[i].name);
        if (v < p->min_svns[i].value)
            return mt_err_set(err, MT_EPERM, "policy rule 'min_svns.%s' failed: %llu < %llu",
                              p->min_svns[i].name, (unsigned long long)v,
                              (unsigned long long)p->min_svns[i].value);
    }
    if (c->debug && !p->allow_debug)
        return RULE_FAIL(err, "allow_debug", "the server runs in debug mode (its memory is "
                                             "readable by the host)");
    if (c->kind == MT_ATTEST_SEV_SNP) {
        uint64_t v = 0;
        if (p->snp_vmpl >= 0) {
            if (!mt_attest_claims_svn(c, "vmpl", &v))
                return RULE_FAIL(err, "snp_vmpl", "the evidence has no VMPL");
            if (v != (uint64_t)p->snp_vmpl)
                return RULE_FAIL(err, "snp_vmpl", "the report was made at VMPL %llu, not %lld",
                                 (unsigned long long)v, (long long)p->snp_vmpl);
        }
        if (p->snp_forbid | p->snp_require) {
            if (!mt_attest_claims_svn(c, "policy", &v))
                return RULE_FAIL(err, "snp_policy", "the evidence has no guest policy");
            if (v & p->snp_forbid)
                return RULE_FAIL(err, "snp_policy_forbidden",
                                 "guest policy 0x%llx sets forbidden bits 0x%llx",
                                 (unsigned long long)v, (unsigned long long)(v & p->snp_forbid));
            if ((v & p->snp_require) != p->snp_require)
                return RULE_FAIL(err, "snp_policy_required",
                                 "guest policy 0x%llx lacks required bits 0x%llx",
                                 (unsigned long long)v,
                                 (unsigned long long)(p->snp_require & ~v));
        }
    }
    /* Expected values: exact bytes. report_data may be shorter than the
     * evidence's; the rest must then be zero (as workloads pad it). */
    if (p->expect[MT_POLICY_EXPECT_REPORT_DATA]) {
        size_t n = p->expect_len[MT_POLICY_EXPECT_REPORT_DATA];
        bool ok = c->report_data_len >= n && c->report_data_len <= sizeof c->report_data &&
                  memcmp(c->report_data, p->expect[MT_POLICY_EXPECT_REPORT_DATA], n) == 0;
        for (size_t i = n; ok && i < c->report_data_len; i++)
            ok = c->report_data[i] == 0;
        if (!ok)
            return RULE_FAIL(err, "expected_report_data",
                             "the evidence's report data (%zu bytes) is not the expected value",
                             c->report_data_len);
    }
    if (p->expect[MT_POLICY_EXPECT_NONCE] &&
        (c->nonce_len != p->expect_len[MT_POLICY_EXPECT_NONCE] ||
         memcmp(c->nonce, p->expect[MT_POLICY_EXPECT_NONCE], c->nonce_len) != 0))
        return RULE_FAIL(err, "expected_nonce", "the evidence of kind '%s' carries %s", kn,
                         c->nonce_len ? "another nonce" : "no nonce");
    if (p->expect[MT_POLICY_EXPECT_USER_DATA] &&
        (c->user_data_len != p->expect_len[MT_POLICY_EXPECT_USER_DATA] ||
         memcmp(c->user_data, p->expect[MT_POLICY_EXPECT_USER_DATA], c->user_data_len) != 0))
        return RULE_FAIL(err, "expected_user_data", "the evidence of kind '%s' carries %s", kn,
                         c->user_data_len ? "other user data" : "no user data");
    if (c->kind != MT_ATTEST_SOFT && c->kind != MT_ATTEST_TPM2) { /* no TCB to evaluate */
        const char *ts = mt_attest_tcb_status_name(c->tcb_status);
        bool ok = false;
        for (size_t i = 0; i < p->n_tcb; i++)
            if (!strcmp(p->tcb[i], ts))
                ok = true;
        if (!ok)
            return RULE_FAIL(err, "accepted_tcb_statuses", "the TCB status is %s", ts);
        for (size_t a = 0; a < c->n_advisories; a++) {
            bool acc = false;
            for (size_t i = 0; i < p->n_adv; i++)
                if (!strcmp(p->adv[i], c->advisories[a]))
                    acc = true;
            if (!acc)
                return RULE_FAIL(err, "accepted_advisories", "advisory %s is not accepted",
                                 c->advisories[a]);
        }
    }
    if (p->max_age_s > 0) {
        if (c->timestamp <= 0)
            return RULE_FAIL(err, "max_evidence_age_s",
                             "evidence of kind '%s' carries no time, so its age is unknown", kn);
        int64_t t = c->timestamp / 1000;
        if (t > now + POL_FUTURE_SKEW_S)
            return RULE_FAIL(err, "max_evidence_age_s", "the evidence is dated %lld s in the future",
                             (long long)(t - now));
        if (now - t > p->max_age_s)
            return RULE_FAIL(err, "max_evidence_age_s", "the evidence is %lld s old (at most %lld)",
                             (long long)(now - t), (long long)p->max_age_s);
    }
    return MT_OK;
}

/* ---- verification + evaluation: the one path ---------------------------- */

/* Records in the claims what the policy established about a TPM AK: the EK
 * chain flag only when a verified enrolment record covers the AK. */
static void pol_mark(const mt_policy *p, mt_attest_claims *c)
{
    if (c->kind != MT_ATTEST_TPM2)
        return;
    c->checked &= ~MT_ATTEST_CHECKED_EK_CHAIN;
    uint8_t h[32];
    const mt_tpm2_record *rec = tpm2_ak_hash(c, h) ? pol_enrolled(p, h) : NULL;
    if (rec && rec->ek_chain_checked)
        c->checked |= MT_ATTEST_CHECKED_EK_CHAIN;
}

struct mt_policy_pending {
    uint8_t key[32];
    int64_t now;
    bool committed;
    mt_attest_claims raw;
    mt_ratls_info inf;
};

/* mt_policy_verify_cert / _x509 / _peer: x (may be NULL) is cert already
 * parsed. pending is NULL except for mt_policy_verify_peer. A miss is
 * remembered at once unless forms carry MT_RATLS_PEER_PROVES_KEY: then only
 * through *pending, after the handshake (mt_policy.h). */
static mt_status verify_cert(const mt_policy *p, X509 *x, const uint8_t *cert, size_t len,
                             unsigned forms, int64_t now, mt_attest_claims *claims,
                             mt_ratls_info *info, mt_policy_pending **pending, mt_err *err)
{
    if (!p || !cert || !claims)
        return mt_err_set(err, MT_EINVAL, "mt_policy_verify_cert: NULL argument");
    /* A certificate seen before with this policy, whose verification still
     * holds at now, is not parsed and verified again (mt_vcache.h); the
     * policy's rules are applied again, as they depend on now. */
    mt_vcache *vc = mt_vcache_global();
    uint8_t key[32];
    mt_ratls_info own;
    mt_ratls_info *inf = info ? info : &own;
    bool cacheable = p->digest_ok;
    bool deferred = (forms & MT_RATLS_PEER_PROVES_KEY) != 0;
    if (cacheable) {
        mt_vcache_key(cert, len, forms, p->digest, key);
        if (mt_vcache_get(vc, key, now, claims, inf)) {
            pol_mark(p, claims);
            mt_status st = mt_policy_check(p, claims, now, err);
            if (st != MT_OK)
                mt_vcache_drop(vc, key); /* only successes stay */
            return st;
        }
    }
    mt_status st = x ? mt_ratls_verify_x509(x, forms, p->coll, now, claims, inf, err)
                     : mt_ratls_verify_cert(cert, len, forms, p->coll, now, claims, inf, err);
    if (st != MT_OK)
        return st == MT_EPERM ? MT_EAUTH : st;
    if (deferred && !pending)
        cacheable = false; /* nothing would prove the key before it is used */
    mt_policy_pending *pd = cacheable ? malloc(sizeof *pd) : NULL;
    if (pd) {
        memcpy(pd->key, key, sizeof key);
        pd->now = now;
        pd->committed = false;
        memcpy(&pd->raw, claims, sizeof pd->raw);
        memcpy(&pd->inf, inf, sizeof pd->inf);
    }
    pol_mark(p, claims);
    st = mt_policy_check(p, claims, now, err);
    if (st == MT_OK && pd && deferred) {
        *pending = pd;
        return st;
    }
    if (st == MT_OK && pd)
        mt_vcache_put(vc, key, now, &pd->raw, inf);
    mt_policy_pending_free(pd);
    return st;
}

mt_status mt_policy_verify_cert(const mt_policy *p, const uint8_t *cert, size_t len,
                                unsigned forms, int64_t now, mt_attest_claims *claims,
                                mt_ratls_info *info, mt_err *err)
{
    return verify_cert(p, NULL, cert, len, forms, now, claims, info, NULL, err);
}

/* verify_cert on x keyed by x's own encoding: OpenSSL keeps the bytes it
 * read and i2d_X509 writes them back, so the key and what is verified on a
 * miss are the same certificate by construction. fn names the caller. */
static mt_status verify_own(const mt_policy *p, X509 *x, unsigned forms, int64_t now,
                            mt_attest_claims *claims, mt_ratls_info *info,
                            mt_policy_pending **pending, const char *fn, mt_err *err)
{
    if (!x)
        return mt_err_set(err, MT_EINVAL, "%s: NULL argument", fn);
    uint8_t *der = NULL;
    int dl = i2d_X509(x, &der);
    if (dl <= 0) {
        ERR_clear_error();
        OPENSSL_free(der);
        return mt_err_set(err, MT_EINVAL, "the certificate cannot be encoded");
    }
    mt_status st = verify_cert(p, x, der, (size_t)dl, forms, now, claims, info, pending, err);
    OPENSSL_free(der);
    return st;
}

mt_status mt_policy_verify_x509(const mt_policy *p, X509 *x, unsigned forms, int64_t now,
                                mt_attest_claims *claims, mt_ratls_info *info, mt_err *err)
{
    return verify_own(p, x, forms, now, claims, info, NULL, "mt_policy_verify_x509", err);
}

mt_status mt_policy_verify_peer(const mt_policy *p, X509 *x, unsigned forms, int64_t now,
                                mt_attest_claims *claims, mt_ratls_info *info,
                                mt_policy_pending **pending, mt_err *err)
{
    if (!pending)
        return mt_err_set(err, MT_EINVAL, "mt_policy_verify_peer: NULL argument");
    *pending = NULL;
    if (!(forms & MT_RATLS_PEER_PROVES_KEY))
        return mt_err_set(err, MT_EINVAL,
                          "mt_policy_verify_peer: forms without MT_RATLS_PEER_PROVES_KEY");
    return verify_own(p, x, forms, now, claims, info, pending, "mt_policy_verify_peer", err);
}

void mt_policy_pending_commit(mt_policy_pending *pd)
{
    if (!pd || pd->committed)
        return;
    pd->committed = true;
    mt_vcache_put(mt_vcache_global(), pd->key, pd->now, &pd->raw, &pd->inf);
}

void mt_policy_pending_free(mt_policy_pending *pd)
{
    if (pd)
        mt_wipe(pd, sizeof *pd);
    free(pd);
}

void mt_policy_digest(const mt_policy *p, uint8_t out[32])
{
    memcpy(out, p->digest, 32);
}

mt_status mt_policy_verify_evidence(const mt_policy *p, mt_attest_kind kind, const uint8_t *ev,
                                    size_t len, int64_t now, mt_attest_claims *claims,
                                    mt_err *err)
{
    if (!p || !ev || !claims)
        return mt_err_set(err, MT_EINVAL, "mt_policy_verify_evidence: NULL argument");
    memset(claims, 0, sizeof *claims);
    const mt_attest_collateral *coll = p->coll;
    mt_attest_collateral *own = NULL;
    mt_tpm2_evidence *te = NULL;
    mt_status st = MT_OK;
    size_t pl = 0;
    if (kind == MT_ATTEST_TPM2 && !mt_attest_coll_get(coll, MT_COLL_TPM2_AK, &pl)) {
        /* As for RA-TLS: the quote is checked with the evidence's own AK,
         * and the AK is then trusted only by the policy (pin or
         * enrolment), in mt_policy_check. */
        if (!(te = malloc(sizeof *te)) || !(own = mt_attest_collateral_new())) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if ((st = mt_tpm2_evidence_parse(ev, len, te, err)) != MT_OK ||
            (st = mt_attest_collateral_add(own, MT_COLL_TPM2_AK, te->ak_public, te->ak_public_len,
                                           err)) != MT_OK)
            goto out;
        coll = own;
    }
    if ((st = mt_attest_verify(kind, ev, len, coll, now, claims, err)) != MT_OK) {
        st = st == MT_EPERM ? MT_EAUTH : st;
        goto out;
    }
    pol_mark(p, claims);
    st = mt_policy_check(p, claims, now, err);
out:
    mt_attest_collateral_free(own);
    free(te);
    return st;
}

/* ---- claims as JSON ----------------------------------------------------- */

static json_t *hexj(const uint8_t *b, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    mt_hex_encode(b, n, s);
    json_t *v = json_string(s);
    free(s);
    return v;
}

static json_t *timej(int64_t t)
{
    char s[32];
    mt_attest_time_str(t, s);
    return json_string(s);
}

char *mt_policy_claims_json(const mt_attest_claims *c, const mt_ratls_info *info)
{
    json_t *o = json_object(), *m = json_object(), *sv = json_object(), *adv = json_array();
    if (!o || !m || !sv || !adv) {
        json_decref(o);
        json_decref(m);
        json_decref(sv);
        json_decref(adv);
        return NULL;
    }
    const char *kn = mt_attest_kind_name(c->kind);
    json_object_set_new(o, "kind", json_string(kn ? kn : "?"));
    json_object_set_new(o, "level", json_integer(mt_policy_level_of(c->kind)));
    json_object_set_new(o, "product", json_string(c->product));
    json_object_set_new(o, "endorsement", json_string(c->endorsement));
    for (size_t i = 0; i < c->n_measurements && i < MT_ATTEST_MAX_MEASUREMENTS; i++)
        json_object_set_new(m, c->measurements[i].name,
                            hexj(c->measurements[i].value, c->measurements[i].len));
    json_object_set_new(o, "measurements", m);
    json_object_set_new(o, "signer", hexj(c->signer, c->signer_len));
    if (c->kind == MT_ATTEST_SOFT)
        json_object_set_new(o, "soft_platform_key", hexj(c->signer, c->signer_len));
    if (c->kind == MT_ATTEST_TPM2 && c->public_key_len) {
        uint8_t h[32];
        unsigned int hl = 0;
        if (EVP_Digest(c->public_key, c->public_key_len, h, &hl, EVP_sha256(), NULL) == 1)
            json_object_set_new(o, "tpm2_ak", hexj(h, 32));
    }
    for (size_t i = 0; i < c->n_svns && i < MT_ATTEST_MAX_SVNS; i++)
        json_object_set_new(sv, c->svns[i].name, json_integer((json_int_t)c->svns[i].value));
    json_object_set_new(o, "svns", sv);
    json_object_set_new(o, "tcb_status", json_string(mt_attest_tcb_status_name(c->tcb_status)));
    for (size_t i = 0; i < c->n_advisories && i < MT_ATTEST_MAX_ADVISORIES; i++)
        json_array_append_new(adv, json_string(c->advisories[i]));
    json_object_set_new(o, "advisories", adv);
    json_object_set_new(o, "debug", json_boolean(c->debug));
    json_object_set_new(o, "report_data", hexj(c->report_data, c->report_data_len));
    json_t *chk = json_array();
    for (size_t i = 0; chk && i < N_CHECK_NAMES; i++)
        if (c->checked & check_names[i].bit)
            json_array_append_new(chk, json_string(check_names[i].name));
    if (chk)
        json_object_set_new(o, "checked", chk);
    if (c->timestamp > 0)
        json_object_set_new(o, "time", timej(c->timestamp / 1000));
    if (info) {
        json_t *r = json_object();
        if (r) {
            json_object_set_new(r, "form", json_string(info->form == MT_RATLS_FORM_LEGACY
                                                           ? "gramine-legacy"
                                                           : "ccc"));
            if (info->form == MT_RATLS_FORM_CCC)
                json_object_set_new(r, "tag", json_integer((json_int_t)info->tag));
            json_object_set_new(r, "spki_sha256", hexj(info->spki_sha256, 32));
            if (info->claims.nonce_len)
                json_object_set_new(r, "nonce", hexj(info->claims.nonce, info->claims.nonce_len));
            json_object_set_new(r, "not_before", timej(info->not_before));
            json_object_set_new(r, "not_after", timej(info->not_after));
            json_object_set_new(o, "ratls", r);
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}
