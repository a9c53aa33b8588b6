/* mt_keystore: the KeyStore service (sealed state, release policy, release,
 * rotation). Contract in mt_keystore.h; the node side is mt_keyring.c and
 * the shared message crypto is ks_msg.c. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "ks_internal.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_policy.h"
#include "mt_policy_sig.h"
#include "mt_ratls.h"
#include "mt_dbcert.h"
#include "tee_tpm2.h"
#include "mt_util.h"

#define STATE_MAGIC "MTKS\x01"
#define STATE_MAGIC_LEN 5
#define STATE_AAD "mesatee-keystore-state/v1"

typedef struct ks_version {
    uint32_t v;
    uint8_t key[32];
    int64_t created_at;
} ks_version;

/* Entries are 64 hex characters, except measurements at sev-snp and tdx
 * (48-byte MEASUREMENT / MRTD: 96 hex characters). */
#define KS_HEX_MAX 96
typedef struct ks_list {
    char hex[MT_KEYSTORE_MAX_ENTRIES][KS_HEX_MAX + 1];
    size_t n;
} ks_list;

typedef struct ks_state {
    uint32_t current;
    ks_version vers[MT_KEYSTORE_MAX_VERSIONS];
    size_t n;
    char level[16];
    ks_list meas, spk, aks;
    ks_ext ext; /* SGX signer-style release, minimum SVNs (ks_policy.c) */
    int64_t seq;
    char signers[MT_KEYSTORE_SIGNERS_MAX + 1]; /* auditor PEM bundle, "" = none */
    uint32_t threshold;                        /* with signers: 1..number of keys */
    uint32_t nv_index; /* tpm2: the TPM NV counter against rollback (ks_nv.c), 0 = none */
    uint64_t nv_value; /* the counter value this state was saved with */
    /* the database CA (mt_dbcert.h) sealed here, "" = none (optional "db_ca") */
    char db_ca_cert[MT_KEYSTORE_DBCA_PEM_MAX + 1];
    char db_ca_key[MT_KEYSTORE_DBCA_PEM_MAX + 1];
} ks_state;

struct mt_keystore {
    pthread_mutex_t mu;
    mt_tee *tee;
    char *path;
    uint8_t seal_key[32];
    char coll_dir[1024]; /* sev-snp / tdx / sgx: release verification collateral */
    ks_state st;
    bool nv;         /* level tpm2: saves count on the TPM NV counter */
    uint32_t nv_idx; /* its index (0: not defined yet) */
    uint64_t nv_tpm; /* its value as last read */
    /* != 0: a state recording this value may be on disk while the TPM counter
     * is below it (failed increment): the next save completes it or refuses */
    uint64_t nv_pending;
    /* ks_open_with_roots (recovery from an escrow, ks_escrow.c): the root
     * versions bootstrap takes instead of a fresh version 1; borrowed */
    const uint8_t *recover;
    size_t recover_len;
    uint32_t recover_current;
};

static void state_wipe(ks_state *s)
{
    mt_wipe(s, sizeof *s);
}

/* ---- state (de)serialisation ------------------------------------------- */

static bool hexn(const char *s, size_t n)
{
    return s && strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static bool hex64(const char *s)
{
    return hexn(s, 64);
}

/* Levels the KeyStore runs at. sev-snp, tdx and sgx: NOT exercised on
 * hardware (the policy side is tested against recorded evidence only). */
static bool ks_level_ok(const char *level)
{
    static const char *const ok[] = {"none", "soft", "tpm2", "sev-snp", "tdx", "sgx", NULL};
    for (size_t i = 0; level && ok[i]; i++)
        if (!strcmp(level, ok[i]))
            return true;
    return false;
}

#define KS_LEVELS_TEXT "none, soft, tpm2, sev-snp, tdx or sgx"

/* Hex length of a release-policy measurement at a level: the 48-byte SNP
 * MEASUREMENT and TDX MRTD are 96 hex characters, the rest 64. */
static size_t meas_hex_len(const char *level)
{
    return !strcmp(level, "sev-snp") || !strcmp(level, "tdx") ? 96 : 64;
}

/* The claim name the release policy's measurements are checked against. */
static const char *meas_claim(const char *level)
{
    if (!strcmp(level, "tpm2"))
        return "pcr23";
    if (!strcmp(level, "tdx"))
        return "mrtd";
    if (!strcmp(level, "sgx"))
        return "mrenclave";
    return "measurement"; /* soft, sev-snp */
}

static mt_status list_parse(const json_t *pol, const char *key, ks_list *l, size_t hexlen,
                            mt_err *err)
{
    json_t *arr = NULL;
    l->n = 0;
    mt_status rc = mt_json_array_opt(pol, key, MT_KEYSTORE_MAX_ENTRIES, &arr, err);
    if (rc || !arr)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!hexn(s, hexlen))
            return mt_err_set(err, MT_EINVAL,
                              "field '%s': entry %zu is not %zu lowercase hex characters", key, i,
                              hexlen);
        for (size_t j = 0; j < l->n; j++)
            if (!strcmp(l->hex[j], s))
                return mt_err_set(err, MT_EINVAL, "field '%s': entry %zu is a duplicate", key,
                                  i);
        snprintf(l->hex[l->n++], KS_HEX_MAX + 1, "%s", s);
    }
    return MT_OK;
}

/* Counts the P-256 public keys of a PEM bundle; MT_EINVAL when it holds
 * none, more than MT_POLICY_SIG_MAX, or a key of another type. */
static mt_status ks_signers_count(const uint8_t *pem, size_t len, unsigned *n, mt_err *err)
{
    *n = 0;
    if (len == 0 || len > MT_KEYSTORE_SIGNERS_MAX)
        return mt_err_set(err, MT_EINVAL, "the auditor key file is %zu bytes (1 to %u expected)",
                          len, MT_KEYSTORE_SIGNERS_MAX);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = MT_OK;
    EVP_PKEY *k;
    while (!rc && (k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) != NULL) {
        char group[32] = "";
        size_t gl = 0;
        if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
            EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) != 1 ||
            strcmp(group, "prime256v1"))
            rc = mt_err_set(err, MT_EINVAL, "auditor key %u is not a P-256 public key", *n + 1);
        else if (++*n > MT_POLICY_SIG_MAX)
            rc = mt_err_set(err, MT_EINVAL, "more than %d auditor keys", MT_POLICY_SIG_MAX);
        EVP_PKEY_free(k);
    }
    BIO_free(b);
    ERR_clear_error();
    if (!rc && *n == 0)
        rc = mt_err_set(err, MT_EINVAL, "the auditor key file holds no PEM public key");
    return rc;
}

/* "release_signers": {"pem", "threshold"} (the state file, and the
 * document of a signed change of the auditor set); pem / threshold receive
 * them when non-NULL. */
static mt_status signers_parse(const json_t *rs, char *pem_out, uint32_t *thr_out, size_t cap,
                               mt_err *err)
{
    static const char *const sig_keys[] = {"pem", "threshold", NULL};
    const char *pem = NULL;
    int64_t thr = 0;
    unsigned nkeys = 0;
    mt_status rc = MT_OK;
    if (!json_is_object(rs))
        rc = mt_err_set(err, MT_EINVAL, "field 'release_signers': expected an object");
    if (!rc)
        rc = mt_json_only_keys(rs, sig_keys, err);
    if (!rc)
        rc = mt_json_str(rs, "pem", MT_KEYSTORE_SIGNERS_MAX, &pem, err);
    if (!rc)
        rc = mt_json_int(rs, "threshold", 1, MT_POLICY_SIG_MAX, &thr, err);
    if (!rc && (rc = ks_signers_count((const uint8_t *)pem, strlen(pem), &nkeys, err)))
        mt_err_prefix(err, rc, "field 'release_signers.pem': ");
    if (!rc && (unsigned)thr > nkeys)
        rc = mt_err_set(err, MT_EINVAL, "field 'release_signers.threshold': more than the %u keys",
                        nkeys);
    if (!rc && pem_out) {
        snprintf(pem_out, cap, "%s", pem);
        *thr_out = (uint32_t)thr;
    }
    return rc;
}

static mt_status state_parse(const char *text, size_t len, ks_state *s, mt_err *err)
{
    memset(s, 0, sizeof *s);
    json_t *doc = mt_json_parse(text, len, MT_KEYSTORE_STATE_MAX, 8, err);
    if (!doc)
        return MT_EINVAL;
    static const char *const top_keys[] = {"mesatee_keystore_state", "current", "versions",
                                           "policy", "release_signers", "tpm_nv", "db_ca",
                                           NULL};
    static const char *const ver_keys[] = {"version", "key", "created_at", NULL};
    static const char *const pol_keys[] = {"level",    "measurements", "soft_platform_keys",
                                           "tpm2_aks", "seq",          "mrsigners",
                                           "isv_prod_ids", "min_svns", NULL};
    int64_t fmt = 0, cur = 0, seq = 0;
    json_t *vers = NULL, *pol = NULL;
    const char *level = NULL;
    mt_status rc = mt_json_only_keys(doc, top_keys, err);
    if (!rc)
        rc = mt_json_int(doc, "mesatee_keystore_state", 1, 1, &fmt, err);
    if (!rc)
        rc = mt_json_int(doc, "current", 1, UINT32_MAX, &cur, err);
    if (!rc)
        rc = mt_json_array(doc, "versions", MT_KEYSTORE_MAX_VERSIONS, &vers, err);
    if (!rc && !(pol = json_object_get(doc, "policy")))
        rc = mt_err_set(err, MT_EINVAL, "field 'policy' is required");
    if (!rc && !json_is_object(pol))
        rc = mt_err_set(err, MT_EINVAL, "field 'policy': expected an object");
    if (!rc)
        rc = mt_json_only_keys(pol, pol_keys, err);
    if (!rc)
        rc = mt_json_str(pol, "level", 15, &level, err);
    if (!rc && !ks_level_ok(level))
        rc = mt_err_set(err, MT_EINVAL, "field 'policy.level': expected " KS_LEVELS_TEXT);
    if (!rc)
        rc = mt_json_int(pol, "seq", 0, INT64_MAX, &seq, err);
    if (!rc)
        rc = list_parse(pol, "measurements", &s->meas, meas_hex_len(level), err);
    if (!rc)
        rc = list_parse(pol, "soft_platform_keys", &s->spk, 64, err);
    if (!rc)
        rc = list_parse(pol, "tpm2_aks", &s->aks, 64, err);
    if (!rc)
        rc = ks_ext_parse(pol, level, &s->ext, err);
    size_t i;
    json_t *v;
    bool have_cur = false;
    if (!rc)
        json_array_foreach(vers, i, v)
        {
            int64_t ver = 0, created = 0;
            const char *key = NULL;
            if (!json_is_object(v)) {
                rc = mt_err_set(err, MT_EINVAL, "field 'versions': entry %zu is not an object", i);
                break;
            }
            if ((rc = mt_json_only_keys(v, ver_keys, err)) ||
                (rc = mt_json_int(v, "version", 1, UINT32_MAX, &ver, err)) ||
                (rc = mt_json_str(v, "key", 64, &key, err)) ||
                (rc = mt_json_int(v, "created_at", 0, INT64_MAX, &created, err)))
                break;
            if (!hex64(key) || (s->n && s->vers[s->n - 1].v >= (uint32_t)ver)) {
                rc = mt_err_set(err, MT_EINVAL,
                                "field 'versions': entry %zu has a bad key or is out of order", i);
                break;
            }
            ks_version *kv = &s->vers[s->n++];
            kv->v = (uint32_t)ver;
            kv->created_at = created;
            if ((rc = mt_hex_decode(key, kv->key, 32, err)))
                break;
            if (kv->v == (uint32_t)cur)
                have_cur = true;
        }
    if (!rc && !have_cur)
        rc = mt_err_set(err, MT_EINVAL, "field 'current': names no version in 'versions'");
    json_t *rs = rc ? NULL : json_object_get(doc, "release_signers");
    if (rs)
        rc = signers_parse(rs, s->signers, &s->threshold, sizeof s->signers, err);
    json_t *nv = rc ? NULL : json_object_get(doc, "tpm_nv");
    if (nv) {
        static const char *const nv_keys[] = {"index", "counter", NULL};
        int64_t idx = 0, ctr = 0;
        if (!json_is_object(nv))
            rc = mt_err_set(err, MT_EINVAL, "field 'tpm_nv': expected an object");
        if (!rc)
            rc = mt_json_only_keys(nv, nv_keys, err);
        if (!rc)
            rc = mt_json_int(nv, "index", 1, UINT32_MAX, &idx, err);
        if (!rc)
            rc = mt_json_int(nv, "counter", 0, INT64_MAX, &ctr, err);
        if (!rc) {
            s->nv_index = (uint32_t)idx;
            s->nv_value = (uint64_t)ctr;
        }
    }
    json_t *dc = rc ? NULL : json_object_get(doc, "db_ca");
    if (dc) { /* the database CA: PEM text; its content is checked where it is loaded */
        static const char *const dc_keys[] = {"cert", "key", NULL};
        const char *c = NULL, *k = NULL;
        if (!json_is_object(dc))
            rc = mt_err_set(err, MT_EINVAL, "field 'db_ca': expected an object");
        if (!rc)
            rc = mt_json_only_keys(dc, dc_keys, err);
        if (!rc)
            rc = mt_json_str(dc, "cert", MT_KEYSTORE_DBCA_PEM_MAX, &c, err);
        if (!rc)
            rc = mt_json_str(dc, "key", MT_KEYSTORE_DBCA_PEM_MAX, &k, err);
        if (!rc && (strncmp(c, "-----BEGIN ", 11) != 0 || strncmp(k, "-----BEGIN ", 11) != 0))
            rc = mt_err_set(err, MT_EINVAL, "field 'db_ca': cert and key must be PEM");
        if (!rc) {
            snprintf(s->db_ca_cert, sizeof s->db_ca_cert, "%s", c);
            snprintf(s->db_ca_key, sizeof s->db_ca_key, "%s", k);
        }
    }
    if (!rc) {
        s->current = (uint32_t)cur;
        s->seq = seq;
        snprintf(s->level, sizeof s->level, "%s", level);
    }
    json_decref(doc);
    if (rc)
        state_wipe(s);
    return rc;
}

mt_status mt_keystore_parse_state(const char *text, size_t len, mt_err *err)
{
    ks_state *s = malloc(sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = state_parse(text, len, s, err);
    state_wipe(s);
    free(s);
    return rc;
}

static json_t *list_json(const ks_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        json_array_append_new(a, json_string(l->hex[i]));
    return a;
}

static json_t *policy_json(const ks_state *s)
{
    json_t *p = json_pack("{s:s, s:o, s:o, s:o, s:I}", "level", s->level, "measurements",
                          list_json(&s->meas), "soft_platform_keys", list_json(&s->spk),
                          "tpm2_aks", list_json(&s->aks), "seq", (json_int_t)s->seq);
    ks_ext_json(&s->ext, p);
    return p;
}

/* Seals and writes the state (atomic replace); at tpm2 counted on the TPM
 * NV counter (ks_nv.c: the state records the value after this save's
 * increment, written before the increment). */
static mt_status state_save(mt_keystore *ks, mt_err *err)
{
    if (ks->nv) {
        uint64_t next = 0;
        mt_status nrc =
            ks_nv_before_save(ks->tee, &ks->nv_idx, &ks->nv_tpm, &ks->nv_pending, &next, err);
        if (nrc)
            return nrc;
        ks->st.nv_index = ks->nv_idx;
        ks->st.nv_value = next;
    }
    const ks_state *s = &ks->st;
    json_t *vers = json_array(), *doc = NULL;
    char hex[65];
    for (size_t i = 0; vers && i < s->n; i++) {
        mt_hex_encode(s->vers[i].key, 32, hex);
        json_array_append_new(vers, json_pack("{s:I, s:s, s:I}", "version",
                                              (json_int_t)s->vers[i].v, "key", hex, "created_at",
                                              (json_int_t)s->vers[i].created_at));
    }
    mt_wipe(hex, sizeof hex);
    if (vers)
        doc = json_pack("{s:i, s:I, s:o, s:o}", "mesatee_keystore_state", 1, "current",
                        (json_int_t)s->current, "versions", vers, "policy", policy_json(s));
    if (doc && s->signers[0])
        json_object_set_new(doc, "release_signers",
                            json_pack("{s:s, s:I}", "pem", s->signers, "threshold",
                                      (json_int_t)s->threshold));
    if (doc && s->nv_index)
        json_object_set_new(doc, "tpm_nv",
                            json_pack("{s:I, s:I}", "index", (json_int_t)s->nv_index, "counter",
                                      (json_int_t)s->nv_value));
    if (doc && s->db_ca_cert[0])
        json_object_set_new(doc, "db_ca",
                            json_pack("{s:s, s:s}", "cert", s->db_ca_cert, "key", s->db_ca_key));
    char *text = doc ? mt_json_dump(doc) : NULL;
    json_decref(doc); /* the keys in the JSON tree are freed here (jansson does not wipe) */
    if (!text)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t tl = strlen(text);
    uint8_t *blob = malloc(STATE_MAGIC_LEN + KS_GCM_OVERHEAD + tl);
    mt_status rc = MT_OK;
    if (!blob)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(blob, STATE_MAGIC, STATE_MAGIC_LEN);
        rc = ks_gcm_seal(ks->seal_key, (const uint8_t *)STATE_AAD, sizeof STATE_AAD - 1,
                         (const uint8_t *)text, tl, blob + STATE_MAGIC_LEN, err);
    }
    if (!rc)
        rc = mt_file_write_atomic(ks->path, blob, STATE_MAGIC_LEN + KS_GCM_OVERHEAD + tl, 0600,
                                  err);
    if (!rc && ks->nv)
        ks_nv_after_save(ks->tee, ks->nv_idx, &ks->nv_tpm, &ks->nv_pending, s->nv_value);
    if (rc && ks->nv && blob) {
        /* the write reported an error: when the new state is in place anyway
         * (renamed, then the directory fsync failed) or that cannot be told,
         * its counter value is owed before any other state is written */
        uint8_t *back = NULL;
        size_t bl = 0;
        mt_err e2;
        mt_err_clear(&e2);
        size_t want = STATE_MAGIC_LEN + KS_GCM_OVERHEAD + tl;
        if (mt_file_read(ks->path, MT_KEYSTORE_STATE_MAX + 64, &back, &bl, &e2) != MT_OK ||
            (bl == want && !memcmp(back, blob, want)))
            ks->nv_pending = s->nv_value;
        free(back);
    }
    mt_wipe(text, tl);
    free(text);
    free(blob);
    return rc;
}

static mt_status state_load(mt_keystore *ks, const uint8_t *buf, size_t len, mt_err *err)
{
    if (len < STATE_MAGIC_LEN + KS_GCM_OVERHEAD || memcmp(buf, STATE_MAGIC, STATE_MAGIC_LEN))
        return mt_err_set(err, MT_EINVAL, "%s: not a mesatee KeyStore state file (format 1)",
                          ks->path);
    size_t pl = len - STATE_MAGIC_LEN - KS_GCM_OVERHEAD;
    char *text = malloc(pl + 1);
    if (!text)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = ks_gcm_open(ks->seal_key, (const uint8_t *)STATE_AAD, sizeof STATE_AAD - 1,
                               buf + STATE_MAGIC_LEN, len - STATE_MAGIC_LEN, (uint8_t *)text,
                               err);
    if (rc)
        rc = mt_err_set(err, MT_ECRYPTO,
                        "%s does not open with this platform's KeyStore seal key (another "
                        "machine's, or edited)",
                        ks->path);
    if (!rc) {
        text[pl] = '\0';
        rc = state_parse(text, pl, &ks->st, err);
        if (rc)
            mt_err_prefix(err, rc, "%s: ", ks->path);
    }
    mt_wipe(text, pl);
    free(text);
    return rc;
}

/* ---- policy ------------------------------------------------------------ */

/* The mt_policy document of the release policy (see the header). */
static mt_status build_policy_lists(const char *level, const ks_list *meas, const ks_list *spk,
                                    const ks_list *aks, const ks_ext *ext, bool signer,
                                    const char *coll_dir, mt_policy **out, mt_err *err)
{
    *out = NULL;
    bool tpm2 = !strcmp(level, "tpm2"), soft = !strcmp(level, "soft");
    /* signer: SGX signer-style release, the mrsigner rule instead of the
     * mrenclave one (the product id is checked on the claims afterwards) */
    json_t *ms = signer ? ks_ext_signer_list(ext) : json_array();
    for (size_t i = 0; ms && !signer && i < meas->n; i++) {
        if (!tpm2) {
            json_array_append_new(ms, json_string(meas->hex[i]));
            continue;
        }
        uint8_t m[32], pcr[32];
        char hex[65];
        if (mt_hex_decode(meas->hex[i], m, 32, err)) {
            json_decref(ms);
            return MT_EINVAL;
        }
        mt_tpm2_expected_pcr(m, pcr);
        mt_hex_encode(pcr, 32, hex);
        json_array_append_new(ms, json_string(hex));
    }
    json_t *doc = json_pack("{s:i, s:[s], s:s, s:{s:{s:o}}}", "mesatee_policy", 1,
                            "allowed_kinds", level, "min_level", level, "measurements",
                            "gateway", signer ? "mrsigner" : meas_claim(level), ms);
    ks_ext_policy_doc(ext, doc);
    if (doc && soft)
        json_object_set_new(doc, "soft_platform_keys", list_json(spk));
    if (doc && tpm2)
        json_object_set_new(doc, "tpm2_aks", list_json(aks));
    /* sev-snp / tdx / sgx: the VCEK/PCK chains and TCB info come from the
     * collateral directory (NOT exercised on hardware). */
    if (doc && !soft && !tpm2 && coll_dir && coll_dir[0])
        json_object_set_new(doc, "collateral_dir", json_string(coll_dir));
    char *text = doc ? mt_json_dump(doc) : NULL;
    json_decref(doc);
    if (!text)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = mt_policy_parse(text, strlen(text), out, err);
    free(text);
    if (rc)
        mt_err_prefix(err, rc, "KeyStore release policy: ");
    return rc;
}

/* The release decision for a state s: the measurement-style policy (when
 * the state lists measurements) and, at sgx with mrsigners, the
 * signer-style one; either may release. With der, the certificate is
 * verified (mt_policy_verify_cert, claims filled); without, the verified
 * claims c are checked (recorded evidence, tests). MT_EPERM names the
 * rule(s) that refused. */
static mt_status release_decide(const ks_state *s, const char *coll_dir, const uint8_t *der,
                                size_t der_len, mt_attest_claims *c, mt_err *err)
{
    mt_policy *pm = NULL, *ps = NULL;
    mt_status rc = MT_OK;
    if (s->meas.n)
        rc = build_policy_lists(s->level, &s->meas, &s->spk, &s->aks, &s->ext, false, coll_dir,
                                &pm, err);
    if (!rc && !strcmp(s->level, "sgx") && ks_ext_signer_style(&s->ext))
        rc = build_policy_lists(s->level, &s->meas, &s->spk, &s->aks, &s->ext, true, coll_dir,
                                &ps, err);
    const char *inert = NULL; /* signer rules present but not active (ks_policy.c) */
    if (!strcmp(s->level, "sgx") && !ps && ks_ext_signer_state(&s->ext))
        inert = ks_ext_signer_state(&s->ext);
    if (!rc && !pm && !ps)
        rc = mt_err_set(err, MT_EPERM, "the KeyStore release policy allows no measurement%s%s",
                        inert ? "; signer-style release is " : "", inert ? inert : "");
    mt_policy *first = pm ? pm : ps;
    int64_t now = der ? mt_now() : 0;
    if (!rc)
        rc = der ? mt_policy_verify_cert(first, der, der_len, MT_RATLS_FORM_CCC, now, c, NULL, err)
                 : mt_policy_check(first, c, now, err);
    if (!rc && first == ps)
        rc = ks_ext_signer_check(&s->ext, c, err);
    else if (rc == MT_EPERM && first == pm && ps) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        mt_err e2;
        mt_err_clear(&e2);
        mt_status r2 = mt_policy_check(ps, c, now, &e2);
        if (!r2)
            r2 = ks_ext_signer_check(&s->ext, c, &e2);
        rc = r2 ? mt_err_set(err, MT_EPERM, "%.400s; signer-style release: %.400s", why, e2.msg)
                : MT_OK;
    } else if (rc == MT_EPERM && inert) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        mt_err_set(err, MT_EPERM, "%.400s; signer-style release is %s", why, inert);
    }
    mt_policy_free(pm);
    mt_policy_free(ps);
    return rc;
}

mt_status mt_keystore_hw_policy(const char *level, const char *const *meas, size_t n,
                                const char *coll_dir, mt_policy **out, mt_err *err)
{
    *out = NULL;
    if (!level || (strcmp(level, "sev-snp") && strcmp(level, "tdx") && strcmp(level, "sgx")))
        return mt_err_set(err, MT_EINVAL, "mt_keystore_hw_policy: level sev-snp, tdx or sgx");
    if (n == 0 || n > MT_KEYSTORE_MAX_ENTRIES)
        return mt_err_set(err, MT_EINVAL, "mt_keystore_hw_policy: 1 to %d measurements",
                          MT_KEYSTORE_MAX_ENTRIES);
    ks_list *l = calloc(3, sizeof *l);
    if (!l)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = MT_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        if (!hexn(meas[i], meas_hex_len(level)))
            rc = mt_err_set(err, MT_EINVAL, "measurement %zu: expected %zu lowercase hex "
                                            "characters at level %s",
                            i, meas_hex_len(level), level);
        else
            snprintf(l[0].hex[l[0].n++], KS_HEX_MAX + 1, "%s", meas[i]);
    }
    if (!rc)
        rc = build_policy_lists(level, &l[0], &l[1], &l[2], &(ks_ext){0}, false, coll_dir, out,
                                err);
    free(l);
    return rc;
}

static mt_status list_field(ks_state *s, const char *field, ks_list **l, mt_err *err)
{
    if (field && !strcmp(field, "measurement"))
        *l = &s->meas;
    else if (field && !strcmp(field, "soft_platform_key"))
        *l = &s->spk;
    else if (field && !strcmp(field, "tpm2_ak"))
        *l = &s->aks;
    else
        return mt_err_set(err, MT_EINVAL,
                          "field 'kind': expected measurement, soft_platform_key or tpm2_ak");
    return MT_OK;
}

/* p (consumed; NULL on an earlier allocation failure) as sorted compact
 * JSON and a newline, NUL-terminated and malloc'd; NULL if out of memory. */
static char *policy_text(json_t *p)
{
    char *t = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(p);
    size_t n = t ? strlen(t) : 0;
    char *out = t ? malloc(n + 2) : NULL;
    if (out) {
        memcpy(out, t, n);
        memcpy(out + n, "\n", 2);
    }
    free(t);
    return out;
}

/* The document auditors sign for a policy change: the policy as it will be
 * after the change (seq included, so a signature is good for one change
 * only), JSON with sorted keys and no spaces, then "\n". Heap. */
static char *policy_doc_x(const ks_state *s, bool with_signers)
{
    json_t *p = policy_json(s);
    if (p)
        json_object_set_new(p, "mesatee_release_policy", json_integer(1));
    /* a change of the auditor set: the document names the new set */
    if (p && with_signers)
        json_object_set_new(p, "release_signers",
                            json_pack("{s:s, s:I}", "pem", s->signers, "threshold",
                                      (json_int_t)s->threshold));
    return policy_text(p);
}

static char *policy_doc(const ks_state *s)
{
    return policy_doc_x(s, false);
}

static mt_status escrow_obj_parse(const json_t *o, mt_err *err);

mt_status mt_keystore_parse_release_doc(const char *text, size_t len, mt_err *err)
{
    json_t *doc = mt_json_parse(text, len, MT_KEYSTORE_STATE_MAX, 4, err);
    if (!doc)
        return MT_EINVAL;
    static const char *const keys[] = {"mesatee_release_policy", "level", "measurements",
                                       "soft_platform_keys", "tpm2_aks", "seq", "mrsigners",
                                       "isv_prod_ids", "min_svns", "release_signers", "escrow",
                                       NULL};
    int64_t fmt = 0, seq = 0;
    const char *level = NULL;
    ks_list *l = malloc(sizeof *l);
    ks_ext *x = malloc(sizeof *x);
    if (!x) {
        free(l);
        l = NULL;
    }
    mt_status rc = l ? mt_json_only_keys(doc, keys, err)
                     : mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc)
        rc = mt_json_int(doc, "mesatee_release_policy", 1, 1, &fmt, err);
    if (!rc)
        rc = mt_json_str(doc, "level", 15, &level, err);
    if (!rc && !ks_level_ok(level))
        rc = mt_err_set(err, MT_EINVAL, "field 'level': expected " KS_LEVELS_TEXT);
    if (!rc)
        rc = mt_json_int(doc, "seq", 1, INT64_MAX, &seq, err);
    if (!rc)
        rc = list_parse(doc, "measurements", l, meas_hex_len(level), err);
    if (!rc)
        rc = list_parse(doc, "soft_platform_keys", l, 64, err);
    if (!rc)
        rc = list_parse(doc, "tpm2_aks", l, 64, err);
    if (!rc)
        rc = ks_ext_parse(doc, level, x, err);
    json_t *rs = rc ? NULL : json_object_get(doc, "release_signers");
    if (rs)
        rc = signers_parse(rs, NULL, NULL, 0, err);
    json_t *eo = rc ? NULL : json_object_get(doc, "escrow");
    if (eo && rs)
        rc = mt_err_set(err, MT_EINVAL, "a document is either an escrow or a change of the "
                                        "auditor set, not both");
    else if (eo)
        rc = escrow_obj_parse(eo, err);
    free(x);
    free(l);
    json_decref(doc);
    return rc;
}

/* With auditors configured: at least threshold of them signed the policy
 * document of s (the state after the change). MT_EPERM otherwise. */
static mt_status check_sigs_by(const ks_state *s, bool with_signers, const char *signers,
                               uint32_t threshold, const char *sig, size_t sig_len, mt_err *err)
{
    if (!signers[0])
        return MT_OK;
    char *doc = policy_doc_x(s, with_signers);
    if (!doc)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = mt_policy_sig_verify((const uint8_t *)doc, strlen(doc), (const uint8_t *)sig,
                                        sig ? sig_len : 0, (const uint8_t *)signers,
                                        strlen(signers), threshold, err);
    free(doc);
    if (rc == MT_EAUTH)
        rc = mt_err_prefix(err, MT_EPERM,
                           "release policy change refused: it needs %u auditor signatures over "
                           "the document `mesatee admin release draft` prints: ",
                           (unsigned)threshold);
    else if (rc == MT_EINVAL)
        mt_err_prefix(err, rc, "field 'signatures': ");
    return rc;
}

static mt_status check_sigs(const ks_state *s, const char *sig, size_t sig_len, mt_err *err)
{
    return check_sigs_by(s, false, s->signers, s->threshold, sig, sig_len, err);
}

/* A new auditor set: P-256 PEM bundle without NUL, threshold 0 = all. */
static mt_status signers_check(const char *pem, size_t len, unsigned *threshold, mt_err *err)
{
    unsigned n = 0;
    mt_status rc = ks_signers_count((const uint8_t *)pem, len, &n, err);
    if (rc)
        return mt_err_prefix(err, rc, "release signers: ");
    if (memchr(pem, '\0', len))
        return mt_err_set(err, MT_EINVAL, "release signers: the auditor key file holds a NUL byte");
    if (*threshold == 0)
        *threshold = n;
    if (*threshold > n)
        return mt_err_set(err, MT_EINVAL,
                          "release threshold %u is more than the %u auditor keys", *threshold, n);
    return MT_OK;
}

mt_status mt_keystore_db_ca_set(mt_keystore *ks, const char *cert_pem, const char *key_pem,
                                bool *changed, mt_err *err)
{
    if (changed)
        *changed = false;
    size_t cl = cert_pem ? strlen(cert_pem) : 0, kl = key_pem ? strlen(key_pem) : 0;
    if (!cl || !kl || cl > MT_KEYSTORE_DBCA_PEM_MAX || kl > MT_KEYSTORE_DBCA_PEM_MAX)
        return mt_err_set(err, MT_EINVAL, "database CA: certificate and key PEM needed (1..%u "
                                          "bytes each to be sealed)",
                          MT_KEYSTORE_DBCA_PEM_MAX);
    mt_dbcert_ca *ca = NULL;
    mt_status rc = mt_dbcert_ca_load(cert_pem, cl, key_pem, kl, &ca, err);
    mt_dbcert_ca_free(ca);
    if (rc)
        return rc;
    ks_state *bak = malloc(sizeof *bak);
    if (!bak)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    if (strcmp(s->db_ca_cert, cert_pem) != 0 || strcmp(s->db_ca_key, key_pem) != 0) {
        memcpy(bak, s, sizeof *bak);
        memcpy(s->db_ca_cert, cert_pem, cl + 1);
        memcpy(s->db_ca_key, key_pem, kl + 1);
        if ((rc = state_save(ks, err)))
            memcpy(s, bak, sizeof *bak);
        else if (changed)
            *changed = true;
    }
    pthread_mutex_unlock(&ks->mu);
    state_wipe(bak);
    free(bak);
    return rc;
}

mt_status mt_keystore_db_ca_get(mt_keystore *ks, char **cert_pem, char **key_pem, mt_err *err)
{
    *cert_pem = NULL;
    *key_pem = NULL;
    mt_status rc = MT_OK;
    pthread_mutex_lock(&ks->mu);
    if (!ks->st.db_ca_cert[0])
        rc = mt_err_set(err, MT_ENOTFOUND, "no database CA is sealed in the KeyStore");
    else if (!(*cert_pem = strdup(ks->st.db_ca_cert)) || !(*key_pem = strdup(ks->st.db_ca_key)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_unlock(&ks->mu);
    if (rc) {
        free(*cert_pem);
        *cert_pem = NULL;
    }
    return rc;
}

mt_status mt_keystore_change_signers(mt_keystore *ks, const char *pem, size_t len,
                                     unsigned threshold, const char *sig, size_t sig_len,
                                     mt_err *err)
{
    mt_status rc = signers_check(pem, len, &threshold, err);
    if (rc)
        return rc;
    ks_state *bak = malloc(sizeof *bak);
    if (!bak)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    if (!s->signers[0])
        rc = mt_err_set(err, MT_ECONFLICT,
                        "this KeyStore has no auditor signers recorded: the first set is "
                        "recorded at start (serve --release-signers PEM --release-threshold N)");
    else if (strlen(s->signers) == len && !memcmp(s->signers, pem, len) &&
             s->threshold == threshold)
        rc = mt_err_set(err, MT_ECONFLICT, "that is the recorded auditor set and threshold "
                                           "(nothing to change)");
    if (!rc) {
        memcpy(bak, s, sizeof *bak);
        memcpy(s->signers, pem, len);
        s->signers[len] = '\0';
        s->threshold = threshold;
        s->seq++;
        /* the document names the new set; the CURRENT auditors sign it */
        if ((rc = check_sigs_by(s, true, bak->signers, bak->threshold, sig, sig_len, err)) ||
            (rc = state_save(ks, err)))
            memcpy(s, bak, sizeof *bak);
    }
    pthread_mutex_unlock(&ks->mu);
    state_wipe(bak);
    free(bak);
    if (!rc)
        mt_info("KeyStore: the auditor set changed (signed by the previous auditors): release "
                "policy changes now need %u auditor signatures; start with the new "
                "--release-signers file, or without the flag",
                threshold);
    return rc;
}

mt_status mt_keystore_set_signers(mt_keystore *ks, const char *pem, size_t len,
                                  unsigned threshold, mt_err *err)
{
    mt_status rc = signers_check(pem, len, &threshold, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    if (s->signers[0]) {
        if (strlen(s->signers) != len || memcmp(s->signers, pem, len) ||
            s->threshold != threshold)
            rc = mt_err_set(err, MT_ECONFLICT,
                            "the release signers or threshold differ from the ones recorded in "
                            "the KeyStore (%s): the recorded set stays in force; start without "
                            "--release-signers, or with the recorded file and threshold",
                            ks->path);
        goto out;
    }
    memcpy(s->signers, pem, len);
    s->signers[len] = '\0';
    s->threshold = threshold;
    if ((rc = state_save(ks, err))) {
        s->signers[0] = '\0';
        s->threshold = 0;
        goto out;
    }
    mt_info("KeyStore: release policy changes now need %u auditor signatures", threshold);
out:
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

mt_status mt_keystore_policy_allow(mt_keystore *ks, const char *field, const char *hex,
                                   bool *changed, mt_err *err)
{
    return mt_keystore_policy_allow_signed(ks, field, hex, NULL, 0, changed, err);
}

mt_status mt_keystore_policy_revoke(mt_keystore *ks, const char *field, const char *hex,
                                    mt_err *err)
{
    return mt_keystore_policy_revoke_signed(ks, field, hex, NULL, 0, err);
}

/* The list a policy change names (field) and the value it adds or removes
 * (hex: 64 lowercase hex characters, 96 for a measurement at sev-snp and
 * tdx). */
static mt_status policy_target(ks_state *s, const char *field, const char *hex, ks_list **l,
                               mt_err *err)
{
    mt_status rc = list_field(s, field, l, err);
    if (rc)
        return rc;
    size_t want = *l == &s->meas ? meas_hex_len(s->level) : 64;
    if (!hexn(hex, want))
        return mt_err_set(err, MT_EINVAL,
                          "field 'value': expected %zu lowercase hex characters (a %s at level "
                          "%s)",
                          want, field, s->level);
    return MT_OK;
}

/* Applies allow/revoke of (field, value) to s, seq untouched; *changed
 * false for an allow of a value already there. Refuses (MT_ECONFLICT) a
 * revoke after which no node could be released to. */
static mt_status state_edit(ks_state *s, bool allow, const char *field, const char *value,
                            bool *changed, mt_err *err)
{
    *changed = false;
    if (ks_ext_kind(field)) {
        mt_status rc = ks_ext_edit(&s->ext, s->level, allow, field, value, changed, err);
        if (!rc && !allow && !ks_ext_release_possible(&s->ext, s->meas.n))
            rc = mt_err_set(err, MT_ECONFLICT,
                            "refusing to revoke this %s: signer-style release would become "
                            "inert while the policy lists no measurement (no node could "
                            "start); allow the replacement first",
                            field);
        return rc;
    }
    ks_list *l = NULL;
    mt_status rc = policy_target(s, field, value, &l, err);
    if (rc)
        return rc;
    size_t i = 0;
    while (i < l->n && strcmp(l->hex[i], value))
        i++;
    if (allow) {
        if (i < l->n)
            return MT_OK;
        if (l->n >= MT_KEYSTORE_MAX_ENTRIES)
            return mt_err_set(err, MT_ETOOBIG,
                              "the release policy holds at most %d entries per list",
                              MT_KEYSTORE_MAX_ENTRIES);
        snprintf(l->hex[l->n++], KS_HEX_MAX + 1, "%s", value);
        *changed = true;
        return MT_OK;
    }
    if (i == l->n)
        return mt_err_set(err, MT_ENOTFOUND, "that value is not in the release policy");
    bool needed = (l == &s->meas && !ks_ext_release_possible(&s->ext, 0)) ||
                  (l == &s->spk && !strcmp(s->level, "soft")) ||
                  (l == &s->aks && !strcmp(s->level, "tpm2"));
    if (l->n == 1 && needed)
        return mt_err_set(err, MT_ECONFLICT,
                          "refusing to revoke the last allowed %s (no node could start); allow "
                          "the replacement first",
                          field);
    memmove(&l->hex[i], &l->hex[i + 1], (l->n - i - 1) * sizeof l->hex[0]);
    l->n--;
    *changed = true;
    return MT_OK;
}

/* allow/revoke on the KeyStore: edit, seq + 1, auditor signatures over the
 * result, persist; on any failure the state is as before. */
static mt_status policy_change(mt_keystore *ks, bool allow, const char *field, const char *value,
                               const char *sig, size_t sig_len, bool *changed, mt_err *err)
{
    bool ch = false;
    if (changed)
        *changed = false;
    if (!value)
        return mt_err_set(err, MT_EINVAL, "field 'value' is required");
    ks_state *bak = malloc(sizeof *bak);
    if (!bak)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_lock(&ks->mu);
    memcpy(bak, &ks->st, sizeof *bak);
    mt_status rc = state_edit(&ks->st, allow, field, value, &ch, err);
    if (!rc && ch) {
        ks->st.seq++;
        if ((rc = check_sigs(&ks->st, sig, sig_len, err)) || (rc = state_save(ks, err)))
            memcpy(&ks->st, bak, sizeof *bak);
    }
    pthread_mutex_unlock(&ks->mu);
    state_wipe(bak);
    free(bak);
    if (!rc && changed)
        *changed = ch;
    return rc;
}

mt_status mt_keystore_policy_allow_signed(mt_keystore *ks, const char *field, const char *hex,
                                          const char *sig, size_t sig_len, bool *changed,
                                          mt_err *err)
{
    return policy_change(ks, true, field, hex, sig, sig_len, changed, err);
}

mt_status mt_keystore_policy_revoke_signed(mt_keystore *ks, const char *field, const char *hex,
                                           const char *sig, size_t sig_len, mt_err *err)
{
    return policy_change(ks, false, field, hex, sig, sig_len, NULL, err);
}

/* A policy object (as `admin release show` prints it: other keys are
 * ignored) into s (level, lists, rules, seq). */
static mt_status shown_policy_parse(const char *text, size_t len, ks_state *s, mt_err *err)
{
    static const char *const keep[] = {"level",        "measurements", "soft_platform_keys",
                                       "tpm2_aks",     "seq",          "mrsigners",
                                       "isv_prod_ids", "min_svns"};
    memset(s, 0, sizeof *s);
    json_t *in = mt_json_parse(text, len, MT_KEYSTORE_STATE_MAX, 6, err);
    if (!in)
        return MT_EINVAL;
    json_t *pol = json_is_object(in) ? json_object() : NULL;
    for (size_t i = 0; pol && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(in, keep[i]);
        if (v)
            json_object_set(pol, keep[i], v);
    }
    json_decref(in);
    const char *level = NULL;
    int64_t seq = 0;
    mt_status rc = pol ? mt_json_str(pol, "level", 15, &level, err)
                       : mt_err_set(err, MT_EINVAL, "expected a JSON object");
    if (!rc && !ks_level_ok(level))
        rc = mt_err_set(err, MT_EINVAL, "field 'level': expected " KS_LEVELS_TEXT);
    if (!rc)
        rc = mt_json_int(pol, "seq", 0, INT64_MAX - 1, &seq, err);
    if (!rc)
        rc = list_parse(pol, "measurements", &s->meas, meas_hex_len(level), err);
    if (!rc)
        rc = list_parse(pol, "soft_platform_keys", &s->spk, 64, err);
    if (!rc)
        rc = list_parse(pol, "tpm2_aks", &s->aks, 64, err);
    if (!rc)
        rc = ks_ext_parse(pol, level, &s->ext, err);
    if (!rc) {
        snprintf(s->level, sizeof s->level, "%s", level);
        s->seq = seq;
    }
    json_decref(pol);
    return rc;
}

mt_status mt_keystore_release_draft(const char *policy, size_t len, bool allow,
                                    const char *kind, const char *value, char **doc, mt_err *err)
{
    *doc = NULL;
    ks_state *s = malloc(sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    bool ch = false;
    mt_status rc = shown_policy_parse(policy, len, s, err);
    if (rc)
        mt_err_prefix(err, rc, "the server's release policy: ");
    if (!rc)
        rc = state_edit(s, allow, kind, value, &ch, err);
    if (!rc && !ch)
        rc = mt_err_set(err, MT_ECONFLICT, "that value is already allowed (nothing to sign)");
    if (!rc) {
        s->seq++;
        if (!(*doc = policy_doc(s)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    state_wipe(s);
    free(s);
    return rc;
}

mt_status mt_keystore_signers_draft(const char *policy, size_t len, const char *pem,
                                    size_t pem_len, unsigned threshold, char **doc, mt_err *err)
{
    *doc = NULL;
    mt_status rc = signers_check(pem, pem_len, &threshold, err);
    if (rc)
        return rc;
    ks_state *s = malloc(sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    rc = shown_policy_parse(policy, len, s, err);
    if (rc)
        mt_err_prefix(err, rc, "the server's release policy: ");
    if (!rc) {
        memcpy(s->signers, pem, pem_len);
        s->signers[pem_len] = '\0';
        s->threshold = threshold;
        s->seq++;
        if (!(*doc = policy_doc_x(s, true)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    state_wipe(s);
    free(s);
    return rc;
}

/* ---- escrow authorization (ks_escrow.c; security review of issue 10) ----
 * With auditors recorded, an escrow of the root keys is a release of them
 * outside the TEE: like a policy change it needs the current auditors'
 * threshold of signatures, over the policy document with seq + 1 and
 * "escrow" (recipients' fingerprints, threshold, purpose) added. seq counts
 * the escrow, so a signed document is good for one escrow only. */
static char *escrow_doc(const ks_state *s, const json_t *escrow)
{
    json_t *p = policy_json(s);
    if (p) {
        json_object_set_new(p, "mesatee_release_policy", json_integer(1));
        json_object_set_new(p, "escrow", json_deep_copy(escrow));
    }
    return policy_text(p);
}

mt_status ks_escrow_authorize(mt_keystore *ks, const json_t *escrow, const char *sig,
                              size_t sig_len, bool *signed_by, mt_err *err)
{
    *signed_by = false;
    ks_state *bak = malloc(sizeof *bak);
    if (!bak)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = MT_OK;
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    if (s->signers[0]) {
        memcpy(bak, s, sizeof *bak);
        s->seq++;
        char *doc = escrow_doc(s, escrow);
        if (!doc)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else if (!sig || sig_len == 0)
            rc = mt_err_set(err, MT_EPERM,
                            "escrow refused: this KeyStore has auditors, so an escrow of the "
                            "root keys needs %u auditor signatures over the document "
                            "`mesatee admin keystore escrow draft` prints",
                            (unsigned)s->threshold);
        else
            rc = mt_policy_sig_verify((const uint8_t *)doc, strlen(doc), (const uint8_t *)sig,
                                      sig_len, (const uint8_t *)s->signers, strlen(s->signers),
                                      s->threshold, err);
        free(doc);
        if (rc == MT_EAUTH)
            rc = mt_err_prefix(err, MT_EPERM,
                               "escrow refused: it needs %u auditor signatures over the "
                               "document `mesatee admin keystore escrow draft` prints: ",
                               (unsigned)s->threshold);
        else if (rc == MT_EINVAL)
            mt_err_prefix(err, rc, "field 'signatures': ");
        if (!rc)
            rc = state_save(ks, err); /* the seq is spent before any key leaves */
        if (rc)
            memcpy(s, bak, sizeof *bak);
        else
            *signed_by = true;
    }
    pthread_mutex_unlock(&ks->mu);
    state_wipe(bak);
    free(bak);
    return rc;
}

mt_status ks_escrow_doc(const char *policy, size_t len, const json_t *escrow, char **doc,
                        mt_err *err)
{
    *doc = NULL;
    ks_state *s = malloc(sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = shown_policy_parse(policy, len, s, err);
    if (rc)
        mt_err_prefix(err, rc, "the server's release policy: ");
    if (!rc) {
        s->seq++;
        if (!(*doc = escrow_doc(s, escrow)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    state_wipe(s);
    free(s);
    return rc;
}

/* "escrow" of a signed document: {"purpose": "escrow", "recipients": [1..16
 * distinct 64 hex], "threshold": 1..n}. */
static mt_status escrow_obj_parse(const json_t *o, mt_err *err)
{
    static const char *const keys[] = {"purpose", "recipients", "threshold", NULL};
    const char *purpose = NULL;
    json_t *r = NULL;
    int64_t t = 0;
    mt_status rc = json_is_object(o) ? mt_json_only_keys(o, keys, err)
                                     : mt_err_set(err, MT_EINVAL, "field 'escrow': expected an "
                                                                  "object");
    if (!rc)
        rc = mt_json_str(o, "purpose", 16, &purpose, err);
    if (!rc && strcmp(purpose, "escrow"))
        rc = mt_err_set(err, MT_EINVAL, "field 'escrow.purpose': expected \"escrow\"");
    if (!rc)
        rc = mt_json_array(o, "recipients", 16, &r, err);
    if (!rc && json_array_size(r) == 0)
        rc = mt_err_set(err, MT_EINVAL, "field 'escrow.recipients': 1 to 16 expected");
    for (size_t i = 0; !rc && i < json_array_size(r); i++) {
        const char *h = json_string_value(json_array_get(r, i));
        if (!h || strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64)
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'escrow.recipients': item %zu: expected 64 lowercase hex",
                            i + 1);
        for (size_t j = 0; !rc && j < i; j++)
            if (!strcmp(h, json_string_value(json_array_get(r, j))))
                rc = mt_err_set(err, MT_EINVAL,
                                "field 'escrow.recipients': item %zu repeats item %zu", i + 1,
                                j + 1);
    }
    if (!rc)
        rc = mt_json_int(o, "threshold", 1, (int64_t)json_array_size(r), &t, err);
    return rc;
}

mt_status mt_keystore_hw_decide(const char *policy, size_t len, const mt_attest_claims *c,
                                mt_err *err)
{
    ks_state *s = malloc(sizeof *s);
    mt_attest_claims *cc = malloc(sizeof *cc);
    mt_status rc = s && cc ? shown_policy_parse(policy, len, s, err)
                           : mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc && strcmp(s->level, "sev-snp") && strcmp(s->level, "tdx") && strcmp(s->level, "sgx"))
        rc = mt_err_set(err, MT_EINVAL, "mt_keystore_hw_decide: level sev-snp, tdx or sgx");
    if (!rc) {
        memcpy(cc, c, sizeof *cc);
        rc = release_decide(s, NULL, NULL, 0, cc, err);
    }
    free(cc);
    free(s);
    return rc;
}

mt_status mt_keystore_signer_release(const char *policy, size_t len, const char **state,
                                     mt_err *err)
{
    *state = NULL;
    ks_state *s = malloc(sizeof *s);
    mt_status rc = s ? shown_policy_parse(policy, len, s, err)
                     : mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc && !strcmp(s->level, "sgx"))
        *state = ks_ext_signer_state(&s->ext);
    free(s);
    return rc;
}

mt_status mt_keystore_check_value(const char *kind, bool allow, const char *value, mt_err *err)
{
    if (!kind || !value)
        return mt_err_set(err, MT_EINVAL, "kind and value are required");
    if (ks_ext_kind(kind))
        return ks_ext_check_value(NULL, allow, kind, value, err);
    if (strcmp(kind, "measurement") && strcmp(kind, "soft_platform_key") &&
        strcmp(kind, "tpm2_ak"))
        return mt_err_set(err, MT_EINVAL, "--kind must be " MT_KEYSTORE_KINDS_TEXT);
    if (!hexn(value, 64) && !(!strcmp(kind, "measurement") && hexn(value, 96)))
        return mt_err_set(err, MT_EINVAL,
                          "a %s is 64 lowercase hex characters (a measurement from `mesatee "
                          "measure --output json`; 96 for the MEASUREMENT / MRTD at sev-snp or "
                          "tdx)",
                          kind);
    return MT_OK;
}

bool mt_keystore_audit_object(const char *kind, const char *value, char *out, size_t cap)
{
    mt_err e;
    if (kind && value &&
        (!strcmp(kind, "measurement") || !strcmp(kind, "soft_platform_key") ||
         !strcmp(kind, "tpm2_ak")) &&
        mt_keystore_check_value(kind, true, value, &e) == MT_OK) {
        snprintf(out, cap, "%s", value);
        return true;
    }
    return ks_ext_audit_object(kind, value, out, cap);
}

json_t *mt_keystore_policy(mt_keystore *ks)
{
    pthread_mutex_lock(&ks->mu);
    json_t *p = policy_json(&ks->st);
    unsigned n = 0;
    mt_err e = {0};
    if (p && ks->st.signers[0] &&
        !ks_signers_count((const uint8_t *)ks->st.signers, strlen(ks->st.signers), &n, &e))
        json_object_set_new(p, "release_signers",
                            json_pack("{s:i, s:i}", "keys", (int)n, "threshold",
                                      (int)ks->st.threshold));
    const char *signer = ks_ext_signer_state(&ks->st.ext);
    if (p && signer && !strcmp(ks->st.level, "sgx"))
        json_object_set_new(p, "signer_release", json_string(signer));
    pthread_mutex_unlock(&ks->mu);
    return p;
}

/* ---- rotation ---------------------------------------------------------- */

mt_status mt_keystore_rotate(mt_keystore *ks, uint32_t *new_version, mt_err *err)
{
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    mt_status rc = MT_OK;
    if (s->n >= MT_KEYSTORE_MAX_VERSIONS || s->vers[s->n - 1].v == UINT32_MAX) {
        rc = mt_err_set(err, MT_ECONFLICT,
                        "%d root key versions are live: let the rewrap finish and retire the "
                        "old ones first",
                        MT_KEYSTORE_MAX_VERSIONS);
        goto out;
    }
    ks_version *kv = &s->vers[s->n];
    uint32_t old = s->current;
    if ((rc = mt_random(kv->key, 32, err)))
        goto out;
    kv->v = s->vers[s->n - 1].v + 1;
    kv->created_at = mt_now();
    s->n++;
    s->current = kv->v;
    if ((rc = state_save(ks, err))) {
        s->n--;
        s->current = old;
        mt_wipe(kv, sizeof *kv);
        goto out;
    }
    if (new_version)
        *new_version = kv->v;
out:
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

mt_status mt_keystore_retire(mt_keystore *ks, uint32_t version, mt_err *err)
{
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    mt_status rc = MT_OK;
    size_t i = 0;
    while (i < s->n && s->vers[i].v != version)
        i++;
    if (i == s->n)
        rc = mt_err_set(err, MT_ENOTFOUND, "root key version %u does not exist", version);
    else if (version == s->current)
        rc = mt_err_set(err, MT_ECONFLICT, "root key version %u is the current one", version);
    if (rc)
        goto out;
    ks_version saved = s->vers[i];
    memmove(&s->vers[i], &s->vers[i + 1], (s->n - i - 1) * sizeof s->vers[0]);
    s->n--;
    mt_wipe(&s->vers[s->n], sizeof s->vers[0]);
    if ((rc = state_save(ks, err))) {
        memmove(&s->vers[i + 1], &s->vers[i], (s->n - i) * sizeof s->vers[0]);
        s->vers[i] = saved;
        s->n++;
    }
    mt_wipe(&saved, sizeof saved);
out:
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

uint32_t mt_keystore_versions(mt_keystore *ks, uint32_t *list, size_t cap, size_t *n)
{
    pthread_mutex_lock(&ks->mu);
    size_t k = 0;
    for (size_t i = 0; i < ks->st.n && k < cap; i++)
        list[k++] = ks->st.vers[i].v;
    uint32_t cur = ks->st.current;
    pthread_mutex_unlock(&ks->mu);
    if (n)
        *n = k;
    return cur;
}

/* ---- release ----------------------------------------------------------- */


static void claims_measurement(const mt_attest_claims *c, const char *level,
                               char out[MT_KEYSTORE_MEAS_HEX + 1])
{
    out[0] = '\0';
    const mt_attest_measurement *m = mt_attest_claims_measurement(c, meas_claim(level));
    if (m && m->len == meas_hex_len(level) / 2)
        mt_hex_encode(m->value, m->len, out);
}

mt_status mt_keystore_release(mt_keystore *ks, const char *req, size_t len, char **resp,
                              size_t *resp_len, char measurement[MT_KEYSTORE_MEAS_HEX + 1],
                              mt_err *err)
{
    *resp = NULL;
    if (measurement)
        measurement[0] = '\0';
    uint8_t *der = NULL;
    size_t der_len = 0;
    mt_status rc = mt_keystore_parse_request(req, len, &der, &der_len, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    if (strcmp(s->level, "none") != 0) {
        mt_attest_claims claims;
        memset(&claims, 0, sizeof claims);
        rc = release_decide(s, ks->coll_dir, der, der_len, &claims, err);
        if (measurement)
            claims_measurement(&claims, s->level, measurement);
    } else if (mt_ratls_cert_has_evidence(der, der_len, MT_RATLS_FORM_CCC)) {
        rc = mt_err_set(err, MT_EPERM,
                        "this KeyStore was created at level none and releases keys only to "
                        "level none");
    }
    if (!rc) {
        uint8_t plain[MT_KEYSTORE_MAX_VERSIONS * 36];
        size_t pl = 0;
        for (size_t i = 0; i < s->n; i++) {
            ks_put_u32(plain + pl, s->vers[i].v);
            memcpy(plain + pl + 4, s->vers[i].key, 32);
            pl += 36;
        }
        rc = ks_release_encrypt(der, der_len, s->current, plain, pl, resp, resp_len, err);
        mt_wipe(plain, sizeof plain);
    }
    pthread_mutex_unlock(&ks->mu);
    free(der);
    return rc;
}

/* The release decision alone (ks_internal.h), for what the KeyStore issues
 * besides root keys (ks_dbcert.c). Level none attests nothing: refused. */
mt_status ks_attest_request(mt_keystore *ks, const char *req, size_t len, uint8_t **der,
                            size_t *der_len, char measurement[MT_KEYSTORE_MEAS_HEX + 1],
                            mt_err *err)
{
    *der = NULL;
    *der_len = 0;
    if (measurement)
        measurement[0] = '\0';
    uint8_t *d = NULL;
    size_t dl = 0;
    mt_status rc = mt_keystore_parse_request(req, len, &d, &dl, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&ks->mu);
    ks_state *s = &ks->st;
    if (!strcmp(s->level, "none")) {
        rc = mt_err_set(err, MT_EPERM, "a KeyStore at level none attests no node and issues "
                                       "no credentials");
    } else {
        mt_attest_claims claims;
        memset(&claims, 0, sizeof claims);
        rc = release_decide(s, ks->coll_dir, d, dl, &claims, err);
        if (measurement)
            claims_measurement(&claims, s->level, measurement);
    }
    pthread_mutex_unlock(&ks->mu);
    if (rc) {
        free(d);
        return rc;
    }
    *der = d;
    *der_len = dl;
    return MT_OK;
}

/* ---- open / free ------------------------------------------------------- */

/* First start: root v1 and a policy allowing exactly the requesting node. */
static mt_status bootstrap(mt_keystore *ks, const char *req, size_t req_len, mt_err *err)
{
    ks_state *s = &ks->st;
    memset(s, 0, sizeof *s);
    const char *level = mt_tee_level(ks->tee);
    if (!ks_level_ok(level))
        return mt_err_set(err, MT_EUNAVAIL, "the KeyStore supports levels " KS_LEVELS_TEXT
                                            ", not %s",
                          level);
    bool hw = !strcmp(level, "sev-snp") || !strcmp(level, "tdx") || !strcmp(level, "sgx");
    snprintf(s->level, sizeof s->level, "%s", level);
    mt_status rc = MT_OK;
    if (strcmp(level, "none") != 0) {
        uint8_t *der = NULL;
        size_t dl = 0;
        mt_attest_claims c;
        memset(&c, 0, sizeof c);
        if (!req)
            return mt_err_set(err, MT_EINVAL, "KeyStore bootstrap needs this node's evidence");
        rc = mt_keystore_parse_request(req, req_len, &der, &dl, err);
        /* sev-snp / tdx / sgx: the node's own evidence, verified with the
         * collateral directory (VCEK/PCK chains, TCB info) like a release.
         * NOT exercised on hardware. */
        mt_policy *cp = NULL;
        if (!rc && hw && ks->coll_dir[0]) {
            json_t *pd = json_pack("{s:i, s:[s], s:{}, s:s}", "mesatee_policy", 1,
                                   "allowed_kinds", level, "measurements", "collateral_dir",
                                   ks->coll_dir);
            char *pt = pd ? mt_json_dump(pd) : NULL;
            json_decref(pd);
            rc = pt ? mt_policy_parse(pt, strlen(pt), &cp, err)
                    : mt_err_set(err, MT_ENOMEM, "out of memory");
            free(pt);
        }
        if (!rc)
            rc = mt_ratls_verify_cert(der, dl, MT_RATLS_FORM_CCC,
                                      cp ? mt_policy_collateral(cp) : NULL, mt_now(), &c, NULL,
                                      err);
        mt_policy_free(cp);
        free(der);
        if (rc && hw && !ks->coll_dir[0])
            return mt_err_prefix(err, rc,
                                 "KeyStore bootstrap: this node's evidence (no collateral: "
                                 "give it with serve --keystore-collateral DIR): ");
        if (rc)
            return mt_err_prefix(err, rc, "KeyStore bootstrap: this node's evidence: ");
        if (hw)
            claims_measurement(&c, level, s->meas.hex[0]);
        else
            mt_tee_evidence_measurement(ks->tee, s->meas.hex[0]);
        if (!hexn(s->meas.hex[0], meas_hex_len(level)))
            return mt_err_set(err, MT_EINTERNAL,
                              "KeyStore bootstrap: this node's evidence has no %s of %zu bytes",
                              meas_claim(level), meas_hex_len(level) / 2);
        s->meas.n = 1;
        if (hw) {
            /* the measurement (and the platform's chain) is the whole policy */
        } else if (c.kind == MT_ATTEST_SOFT && c.signer_len == 32) {
            mt_hex_encode(c.signer, 32, s->spk.hex[0]);
            s->spk.n = 1;
        } else if (c.kind == MT_ATTEST_TPM2 && c.public_key_len > 0) {
            uint8_t h[32];
            unsigned hl = 0;
            if (EVP_Digest(c.public_key, c.public_key_len, h, &hl, EVP_sha256(), NULL) != 1)
                return mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
            mt_hex_encode(h, 32, s->aks.hex[0]);
            s->aks.n = 1;
        } else
            return mt_err_set(err, MT_EINTERNAL,
                              "KeyStore bootstrap: evidence of an unexpected kind");
    }
    s->seq = 1;
    if (ks->recover) { /* recovery: the escrowed versions (checked by ks_escrow.c) */
        s->n = ks->recover_len / 36;
        s->current = ks->recover_current;
        for (size_t i = 0; i < s->n; i++) {
            s->vers[i].v = ks_get_u32(ks->recover + 36 * i);
            memcpy(s->vers[i].key, ks->recover + 36 * i + 4, 32);
            s->vers[i].created_at = mt_now();
        }
        if ((rc = state_save(ks, err)))
            return rc;
        mt_info("KeyStore: recovered %zu root key version(s) (current %u) from an escrow into "
                "a new state; the release policy (level %s) allows this build's measurement %s "
                "and this node's %s %s",
                s->n, s->current, s->level, s->meas.n ? s->meas.hex[0] : "-",
                s->spk.n ? "platform key" : s->aks.n ? "TPM AK" : "(no platform key:)",
                s->spk.n ? s->spk.hex[0] : s->aks.n ? s->aks.hex[0] : "-");
        return MT_OK;
    }
    s->n = 1;
    s->current = 1;
    s->vers[0].v = 1;
    s->vers[0].created_at = mt_now();
    if ((rc = mt_random(s->vers[0].key, 32, err)) || (rc = state_save(ks, err)))
        return rc;
    if (s->meas.n)
        mt_info("KeyStore: first start: created root key version 1 and a release policy "
                "(level %s) allowing this build's measurement %s and this node's %s %s; allow a "
                "new build before upgrading with `mesatee admin release allow <measurement>`",
                s->level, s->meas.hex[0],
                s->spk.n ? "platform key" : s->aks.n ? "TPM AK" : "(no platform key:)",
                s->spk.n ? s->spk.hex[0] : s->aks.n ? s->aks.hex[0] : "-");
    else
        mt_warn("KeyStore: first start at level none: created root key version 1; level none "
                "releases the keys without any attestation");
    return MT_OK;
}

/* Level tpm2: the state's seal key is 32 random bytes sealed inside the TPM
 * (owner hierarchy, mt_tpm2_attester_seal) in <data-dir>/keystore.tpm, so a
 * copy of the data directory opens on no other TPM. */
static mt_status tpm_seal_key(mt_keystore *ks, const char *data_dir, mt_err *err)
{
    mt_tpm2_attester *a = mt_tee_tpm2(ks->tee);
    if (!a)
        return mt_err_set(err, MT_EINTERNAL, "level tpm2 without a TPM attester");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, MT_KEYSTORE_TPM_FILE);
    uint8_t *blob = NULL;
    size_t bl = 0, got = 0;
    mt_err rerr;
    mt_err_clear(&rerr);
    mt_status r = mt_file_read(path, 16384, &blob, &bl, &rerr);
    if (r == MT_OK) {
        r = mt_tpm2_attester_unseal(a, blob, bl, ks->seal_key, 32, &got, err);
        free(blob);
        if (!r && got != 32)
            r = mt_err_set(err, MT_EINVAL, "%s: the sealed key is not 32 bytes", path);
        if (r)
            return mt_err_prefix(err, r, "KeyStore seal key (%s): ", path);
        return MT_OK;
    }
    if (r != MT_ENOTFOUND)
        return mt_err_set(err, r, "%s", rerr.msg);
    if (access(ks->path, F_OK) == 0)
        return mt_err_set(err, MT_ENOTFOUND,
                          "%s is missing: the KeyStore state %s is sealed under it and cannot "
                          "be opened (restore it from the backup of this machine)",
                          path, ks->path);
    mt_status rc = mt_random(ks->seal_key, 32, err);
    if (!rc)
        rc = mt_tpm2_attester_seal(a, ks->seal_key, 32, &blob, &bl, err);
    if (!rc)
        rc = mt_file_write_atomic(path, blob, bl, 0600, err);
    free(blob);
    if (!rc)
        mt_info("KeyStore: seal key created and sealed inside the TPM (%s)", path);
    return rc;
}

mt_status mt_keystore_open(mt_tee *tee, const char *data_dir, const char *first_req,
                           size_t first_req_len, mt_keystore **out, bool *created, mt_err *err)
{
    return mt_keystore_open_coll(tee, data_dir, NULL, first_req, first_req_len, out, created,
                                 err);
}

static mt_status open_impl(mt_tee *tee, const char *data_dir, const char *coll_dir,
                           const char *first_req, size_t first_req_len, const uint8_t *recover,
                           size_t recover_len, uint32_t recover_current, mt_keystore **out,
                           bool *created, mt_err *err);

mt_status mt_keystore_open_coll(mt_tee *tee, const char *data_dir, const char *coll_dir,
                                const char *first_req, size_t first_req_len, mt_keystore **out,
                                bool *created, mt_err *err)
{
    return open_impl(tee, data_dir, coll_dir, first_req, first_req_len, NULL, 0, 0, out,
                     created, err);
}

mt_status ks_open_with_roots(mt_tee *tee, const char *data_dir, const char *coll_dir,
                             const char *req, size_t req_len, const uint8_t *records,
                             size_t rec_len, uint32_t current, mt_keystore **out, mt_err *err)
{
    bool created = false;
    if (!records || rec_len == 0 || rec_len % 36 || rec_len / 36 > MT_KEYSTORE_MAX_VERSIONS)
        return mt_err_set(err, MT_EINVAL, "KeyStore recovery: no root key versions");
    mt_status rc = open_impl(tee, data_dir, coll_dir, req, req_len, records, rec_len, current,
                             out, &created, err);
    if (!rc && !created) { /* a state was there: it is not replaced */
        mt_keystore_free(*out);
        *out = NULL;
        rc = mt_err_set(err, MT_ECONFLICT, "KeyStore recovery: a KeyStore state exists");
    }
    return rc;
}

mt_status ks_export_roots(mt_keystore *ks, uint8_t **records, size_t *len, uint32_t *current,
                          char level[16], mt_err *err)
{
    pthread_mutex_lock(&ks->mu);
    const ks_state *s = &ks->st;
    *len = s->n * 36;
    *records = malloc(*len ? *len : 1);
    if (*records) {
        for (size_t i = 0; i < s->n; i++) {
            ks_put_u32(*records + 36 * i, s->vers[i].v);
            memcpy(*records + 36 * i + 4, s->vers[i].key, 32);
        }
        *current = s->current;
        snprintf(level, 16, "%s", s->level);
    }
    pthread_mutex_unlock(&ks->mu);
    return *records ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

static mt_status open_impl(mt_tee *tee, const char *data_dir, const char *coll_dir,
                           const char *first_req, size_t first_req_len, const uint8_t *recover,
                           size_t recover_len, uint32_t recover_current, mt_keystore **out,
                           bool *created, mt_err *err)
{
    *out = NULL;
    if (created)
        *created = false;
    if (!tee || !data_dir)
        return mt_err_set(err, MT_EINVAL, "mt_keystore_open: NULL argument");
    mt_keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_init(&ks->mu, NULL);
    ks->tee = tee;
    ks->recover = recover;
    ks->recover_len = recover_len;
    ks->recover_current = recover_current;
    if (coll_dir && strlen(coll_dir) >= sizeof ks->coll_dir) {
        free(ks);
        return mt_err_set(err, MT_EINVAL, "the collateral directory path is too long");
    }
    snprintf(ks->coll_dir, sizeof ks->coll_dir, "%s", coll_dir ? coll_dir : "");
    struct stat cst;
    if (ks->coll_dir[0] && (stat(ks->coll_dir, &cst) != 0 || !S_ISDIR(cst.st_mode))) {
        pthread_mutex_destroy(&ks->mu);
        free(ks);
        return mt_err_set(err, MT_EINVAL,
                          "--keystore-collateral: not a readable directory (it holds the "
                          "collateral that verifies sev-snp, tdx or sgx evidence)");
    }
    size_t pl = strlen(data_dir) + sizeof "/" MT_KEYSTORE_FILE;
    mt_status rc = MT_OK;
    if (!(ks->path = malloc(pl))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(ks->path, pl, "%s/%s", data_dir, MT_KEYSTORE_FILE);
    ks->nv = !strcmp(mt_tee_level(tee), "tpm2");
    if (ks->nv)
        rc = tpm_seal_key(ks, data_dir, err);
    else
        rc = mt_tee_platform_key(tee, "keystore-seal/v1", ks->seal_key, err);
    if (rc)
        goto fail;
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err rerr;
    mt_err_clear(&rerr);
    mt_status r = mt_file_read(ks->path, MT_KEYSTORE_STATE_MAX + 64, &buf, &len, &rerr);
    if (r == MT_ENOTFOUND) {
        if ((rc = bootstrap(ks, first_req, first_req_len, err)))
            goto fail;
        if (created)
            *created = true;
    } else if (r) {
        rc = mt_err_set(err, r, "%s", rerr.msg);
        goto fail;
    } else {
        rc = state_load(ks, buf, len, err);
        free(buf);
        if (rc)
            goto fail;
        if (ks->recover) { /* ks_open_with_roots: the caller reports it */
            *out = ks;
            ks->recover = NULL;
            return MT_OK;
        }
        if (strcmp(ks->st.level, mt_tee_level(tee)) != 0) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "the KeyStore of this data directory was created at level %s; "
                            "this daemon runs at level %s",
                            ks->st.level, mt_tee_level(tee));
            goto fail;
        }
        /* tpm2: a state older than the TPM NV counter is a rollback; a
         * state made before the counter existed gets one now */
        if (ks->nv && ks->st.nv_index) {
            ks->nv_idx = ks->st.nv_index;
            if ((rc = ks_nv_check(tee, ks->path, ks->st.nv_index, ks->st.nv_value, &ks->nv_tpm,
                                  err)))
                goto fail;
        } else if (ks->nv && (rc = state_save(ks, err)))
            goto fail;
    }
    ks->recover = NULL;
    *out = ks;
    return MT_OK;
fail:
    mt_keystore_free(ks);
    return rc;
}

void mt_keystore_free(mt_keystore *ks)
{
    if (!ks)
        return;
    state_wipe(&ks->st);
    mt_wipe(ks->seal_key, sizeof ks->seal_key);
    pthread_mutex_destroy(&ks->mu);
    free(ks->path);
    free(ks);
}
