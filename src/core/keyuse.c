/* keyuse: KeyStore keys used by tasks (see keyuse.h). */
#include "keyuse.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_bschema.h"
#include "mt_log.h"
#include "mt_secmem.h"
#include "transit_core.h"
#include "transit_store.h"
#include "mt_util.h"

/* What a built-in can sign with: KeyStore type prefixes. */
static bool type_allowed(const char *builtin, const char *type)
{
    if (builtin && !strcmp(builtin, "rsa_sign"))
        return !strncmp(type, "rsa-", 4);
    return !strncmp(type, "rsa-", 4) || !strncmp(type, "ecdsa-", 6) || !strcmp(type, "ed25519");
}

static const mt_bschema *schema_for(const char *executor_type, const char *builtin)
{
    if (executor_type && !strcmp(executor_type, "wasm"))
        return mt_bschema_wasm(); /* wasm_key, for the host function key_sign */
    if (executor_type && !strcmp(executor_type, "python"))
        return mt_bschema_python(); /* python_key, for mesatee.key_sign */
    if (!executor_type || strcmp(executor_type, "builtin") != 0 || !builtin)
        return NULL;
    return mt_bschema_find(builtin);
}

static bool is_participant(const char *owner, const char *const *parts, size_t n,
                           const json_t *arr)
{
    for (size_t i = 0; parts && i < n; i++)
        if (!strcmp(parts[i], owner))
            return true;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), owner))
        return true;
    return false;
}

/* True when one of the participants holds the owner's grant of "sign" on
 * owner/name (transit_grants, MAC-checked; a row whose MAC fails counts as no
 * grant and is logged). */
static bool sign_granted(mt_core *c, mt_db *mdb, const char *owner, const char *name,
                         const char *const *parts, size_t n, const json_t *arr)
{
    mt_db_stmt *st;
    mt_err err;
    mt_err_clear(&err);
    /* kept per connection (stmt_cache.c: on a scheduler thread's own) */
    if (core_stmt_get(NULL, mdb,
                      "SELECT grantee, operations, created_at, mac FROM transit_grants "
                      "WHERE owner = ? AND name = ?",
                      &st, &err))
        return false;
    mt_db_bind_text(st, 1, owner);
    mt_db_bind_text(st, 2, name);
    bool found = false;
    mt_status rc = MT_OK;
    while (!found && mt_db_step(st, &rc, &err) == MT_DB_ROW) {
        const char *who = mt_db_col_text(st, 0), *ops = mt_db_col_text(st, 1);
        if (!is_participant(who, parts, n, arr))
            continue;
        bool sign = false;
        for (const char *p = ops; *p && !sign;) {
            size_t l = strcspn(p, ",");
            sign = l == 4 && !strncmp(p, "sign", 4);
            p += l + (p[l] == ',');
        }
        char mac[65];
        if (!sign || tstore_grant_mac(c, owner, name, who, ops, mt_db_col_int64(st, 2), mac,
                                      &err))
            continue;
        if (!integ_hex_equal(mac, mt_db_col_text(st, 3))) {
            mt_warn("integrity check failed: transit grant of %s/%s to %s (ignored for a task)",
                    owner, name, who);
            continue;
        }
        found = true;
    }
    core_stmt_put(NULL, st);
    return found;
}

#define NOT_PARTICIPANT                                                                      \
    "argument '%s': a KeyStore key can be used only by a task its owner, or a user the owner " \
    "granted 'sign' on it, takes part in (and so approves)"

mt_status keyuse_check_task(mt_core *c, mt_db *mdb, const char *executor_type, const char *builtin,
                            const json_t *args, const char *const *parts, size_t n_parts,
                            mt_err *err)
{
    const mt_bschema *s = schema_for(executor_type, builtin);
    for (size_t i = 0; s && i < s->n_args; i++) {
        const mt_barg *a = &s->args[i];
        const char *v = json_string_value(json_object_get(args, a->name));
        char owner[65], name[129];
        if (a->type != MT_BARG_KEYSTORE_KEY || !v || !*v)
            continue;
        if (!mt_bschema_key_split(v, owner, name))
            return mt_err_set(err, MT_EINVAL, "argument '%s': expected a KeyStore key OWNER/NAME",
                              a->name);
        if (!is_participant(owner, parts, n_parts, NULL) &&
            !sign_granted(c, mdb, owner, name, parts, n_parts, NULL))
            return mt_err_set(err, MT_EINVAL, NOT_PARTICIPANT, a->name);
    }
    return MT_OK;
}

void keyuse_job_keys_free(mt_job *job)
{
    for (size_t i = 0; job->keys && i < job->n_keys; i++) {
        mt_job_key *k = &job->keys[i];
        if (k->der)
            mt_wipe(k->der, k->der_len);
        free(k->der);
        free(k->arg);
        free(k->type);
        free(k->ref);
    }
    free(job->keys);
    job->keys = NULL;
    job->n_keys = 0;
}

/* The version argument of key argument arg: "<arg>_version", 0 when absent. */
static mt_status version_arg(const json_t *args, const char *arg, uint32_t *out, mt_err *err)
{
    char vn[80];
    snprintf(vn, sizeof vn, "%s_version", arg);
    const char *v = json_string_value(json_object_get(args, vn));
    int64_t n = 0;
    if (v && *v && (!mt_int_parse(v, &n) || n < 0 || n > INT32_MAX))
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected an integer 0 to %d", vn,
                          INT32_MAX);
    *out = (uint32_t)n;
    return MT_OK;
}

/* PKCS#8 DER of the private key in material (PKCS#8 or traditional DER, or
 * PEM), heap, for the worker. */
static mt_status to_pkcs8(const uint8_t *material, size_t len, uint8_t **der, size_t *der_len,
                          mt_err *err)
{
    const unsigned char *p = material;
    EVP_PKEY *k = len <= INT32_MAX ? d2i_AutoPrivateKey(NULL, &p, (long)len) : NULL;
    if (!k)
        return mt_err_set(err, MT_EINTERNAL, "KeyStore key material is unreadable");
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    EVP_PKEY_free(k);
    unsigned char *out = NULL;
    int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &out) : -1;
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n <= 0 || n > MT_JOB_KEY_MAX_DER) {
        OPENSSL_clear_free(out, n > 0 ? (size_t)n : 0);
        return mt_err_set(err, MT_EINTERNAL, "KeyStore key material does not encode");
    }
    *der = malloc((size_t)n);
    if (*der)
        memcpy(*der, out, (size_t)n);
    OPENSSL_clear_free(out, (size_t)n);
    if (!*der)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    *der_len = (size_t)n;
    return MT_OK;
}

mt_status keyuse_job_keys(mt_core *c, mt_db *mdb, const char *executor_type, const char *builtin,
                          const json_t *args, const json_t *participants, mt_job *job, mt_err *err)
{
    const mt_bschema *s = schema_for(executor_type, builtin);
    mt_status rc = MT_OK;
    job->keys = NULL;
    job->n_keys = 0;
    for (size_t i = 0; s && i < s->n_args; i++) {
        const mt_barg *a = &s->args[i];
        const char *v = json_string_value(json_object_get(args, a->name));
        char owner[65], name[129];
        uint32_t version = 0;
        if (a->type != MT_BARG_KEYSTORE_KEY || !v || !*v)
            continue;
        if (!mt_bschema_key_split(v, owner, name)) {
            rc = mt_err_set(err, MT_EINVAL, "argument '%s': expected a KeyStore key OWNER/NAME",
                            a->name);
            goto out;
        }
        if (!is_participant(owner, NULL, 0, participants) &&
            !sign_granted(c, mdb, owner, name, NULL, 0, participants)) {
            rc = mt_err_set(err, MT_EINVAL, NOT_PARTICIPANT, a->name);
            goto out;
        }
        if ((rc = version_arg(args, a->name, &version, err)))
            goto out;
        if (job->n_keys == MT_JOB_MAX_KEYS) {
            rc = mt_err_set(err, MT_EINVAL, "at most %d KeyStore keys per task", MT_JOB_MAX_KEYS);
            goto out;
        }
        if (!job->keys && !(job->keys = calloc(MT_JOB_MAX_KEYS, sizeof *job->keys))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        char type[33] = "";
        uint32_t used = 0;
        uint8_t *material = NULL;
        size_t mlen = 0;
        mt_err lerr;
        mt_err_clear(&lerr);
        mt_status lrc = core_transit_private_key(c, mdb, owner, name, version, type, &used,
                                                 &material, &mlen, &lerr);
        if (lrc == MT_ENOMEM) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if (lrc) {
            /* one message for every cause (absent key, version, unavailable
             * KeyStore): the cause goes to the operator's log only */
            mt_warn("task key argument '%s': %s", a->name, lerr.msg);
            rc = mt_err_set(err, MT_EINVAL,
                            "argument '%s': the KeyStore key is not available to this task (its "
                            "owner has no key of that name, or not at that version)",
                            a->name);
            goto out;
        }
        if (!type_allowed(builtin, type)) {
            mt_wipe(material, mlen);
            free(material);
            rc = mt_err_set(err, MT_EINVAL,
                            "argument '%s': %s cannot sign with a KeyStore key of type %s%s",
                            a->name, s == mt_bschema_wasm() ? "mesatee.key_sign" : builtin, type,
                            strcmp(builtin, "rsa_sign") ? ""
                                                        : " (rsa_sign needs an rsa key; "
                                                          "keystore_sign takes ecdsa and ed25519)");
            goto out;
        }
        mt_job_key *k = &job->keys[job->n_keys];
        rc = to_pkcs8(material, mlen, &k->der, &k->der_len, err);
        mt_wipe(material, mlen);
        free(material);
        if (rc)
            goto out;
        job->n_keys++;
        k->version = used;
        char ref[200];
        snprintf(ref, sizeof ref, "%s/%s", owner, name);
        if (!(k->arg = strdup(a->name)) || !(k->type = strdup(type)) ||
            !(k->ref = strdup(ref))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (rc)
        keyuse_job_keys_free(job);
    return rc;
}

mt_status keyuse_audit(mt_core *c, mt_db *mdb, const char *task_id, const mt_job *job, mt_err *err)
{
    if (job->n_keys == 0)
        return MT_OK;
    mt_status rc = core_change_begin(c, mdb, err);
    if (rc)
        return rc;
    char obj[8 + MT_ID_LEN], action[300];
    snprintf(obj, sizeof obj, "task:%s", task_id);
    for (size_t i = 0; !rc && i < job->n_keys; i++) {
        snprintf(action, sizeof action, "task signs with KeyStore key %s v%u", job->keys[i].ref,
                 (unsigned)job->keys[i].version);
        rc = audit_append(c, mdb, "scheduler", action, obj, 0, err);
    }
    if (!rc)
        rc = store_commit(mdb, err);
    if (rc)
        store_rollback(mdb);
    return rc;
}

/* ---- KeyStore adapter ----------------------------------------------------- */

mt_status core_transit_private_key(mt_core *c, mt_db *mdb, const char *owner, const char *name,
                                   uint32_t version, char type[33], uint32_t *used,
                                   uint8_t **material, size_t *len, mt_err *err)
{
    type[0] = '\0';
    *used = 0;
    *material = NULL;
    *len = 0;
    mt_tk_key *k = NULL;
    mt_status rc = transit_task_key_load(c, mdb, owner, name, version, &k, used, err);
    if (rc)
        return rc;
    const char *tn = mt_tk_type_name(mt_tk_key_type(k));
    snprintf(type, 33, "%s", tn ? tn : "?");
    uint8_t *m = NULL;
    size_t n = 0;
    if (mt_tk_type_signs(mt_tk_key_type(k))) /* never unwrap more than a signing key */
        rc = mt_tk_key_material(k, &m, &n, err);
    mt_tk_key_free(k);
    if (rc || !m)
        return rc;
    /* a plain heap copy the caller wipes; the mt_secmem block is freed here */
    if ((*material = malloc(n)))
        memcpy(*material, m, n);
    mt_wipe(m, n);
    mt_secmem_free(m);
    if (!*material)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    *len = n;
    return MT_OK;
}
