/* transit_ext: export, trim, backup and restore of transit keys
 * (contract: transit_ext.h; the API: docs/keystore.md, the backup format:
 * docs/formats.md "Transit key backup").
 *
 * Authorisation: only the key's owner exports private material, trims,
 * backs up, and restores (always into their own namespace); a grantee with
 * "read" may export the public key, like reading it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "mt_json.h"
#include "mt_secmem.h"
#include "mt_transit_backup.h"
#include "mt_transit_parse.h"
#include "transit_ext.h"

#define TRANSIT_MAX_KEYS 1000 /* keys per owner (transit.c) */
#define BACKUP_B64_MAX (64u << 20)

static const char *const export_kinds[] = {"encryption-key", "signing-key", "hmac-key",
                                           "public-key", NULL};

/* ---- export ------------------------------------------------------------------------ */

typedef struct export_ctx {
    core_ctx *x;
    mt_tk_type type;
    mt_tk_export_kind kind;
    uint32_t only; /* 0: every available version */
    json_t *keys;
} export_ctx;

static mt_status export_version(void *arg, const tver_row *v, mt_err *err)
{
    export_ctx *ec = arg;
    if (ec->only && v->version != ec->only)
        return MT_OK;
    const mt_tk_key *key = NULL;
    char *s = NULL, num[16];
    mt_status rc = tstore_cached_key(ec->x->core, v, ec->type, &key, err);
    if (!rc)
        rc = mt_tk_export(key, ec->kind, &s, err);
    if (rc)
        return rc;
    snprintf(num, sizeof num, "%u", (unsigned)v->version);
    json_t *j = json_string(s);
    mt_wipe(s, strlen(s));
    mt_secmem_free(s);
    if (!j || json_object_set_new(ec->keys, num, j))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* GET /v1/transit/export/{kind}/{key}[/{version}] */
mt_status transit_export(core_ctx *x)
{
    char kind[24], seg[160], vs[24] = "";
    if (!transit_x_seg(x, 1, kind, sizeof kind) || !transit_x_seg(x, 2, seg, sizeof seg))
        return mt_err_set(x->err, MT_EINVAL, "invalid export path");
    bool has_v = transit_x_seg(x, 3, vs, sizeof vs);
    size_t ki = 0;
    while (export_kinds[ki] && strcmp(export_kinds[ki], kind) != 0)
        ki++;
    if (!export_kinds[ki])
        return mt_err_set(x->err, MT_EINVAL,
                          "the export kind is encryption-key, signing-key, hmac-key or "
                          "public-key");
    export_ctx ec = {x, MT_TK_NONE, (mt_tk_export_kind)ki, 0, NULL};
    if (has_v && strcmp(vs, "latest") != 0) {
        int64_t v = 0;
        if (!dec_u63(vs, strlen(vs), &v) || v < 1 || v > MT_TP_MAX_VERSION)
            return mt_err_set(x->err, MT_EINVAL,
                              "the export version is 'latest' or a number from 1");
        ec.only = (uint32_t)v;
    }
    bool pub = ec.kind == MT_TX_PUBLIC;
    tlookup *l = malloc(sizeof *l);
    if (!l)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    mt_status rc = transit_x_resolve(x, seg, pub ? "read" : NULL, 0, l);
    if (rc)
        goto out;
    tkey_row *k = &l->key;
    ec.type = k->type;
    if (has_v && !ec.only)
        ec.only = k->latest;
    if (!pub && !k->exportable) {
        rc = mt_err_set(x->err, MT_EPERM,
                        "this key is not exportable: set exportable=true with POST "
                        "/v1/transit/keys/{key}/config (it cannot be unset afterwards)");
        goto out;
    }
    bool fits = ec.kind == MT_TX_HMAC ||
                (ec.kind == MT_TX_ENCRYPTION && mt_tk_type_encrypts(k->type)) ||
                (ec.kind == MT_TX_SIGNING && mt_tk_type_signs(k->type)) ||
                (ec.kind == MT_TX_PUBLIC && mt_tk_type_asymmetric(k->type));
    if (!fits) {
        rc = mt_err_set(x->err, MT_EINVAL, "a %s key has no %s to export",
                        mt_tk_type_name(k->type), export_kinds[ki]);
        goto out;
    }
    if (ec.only && (ec.only > k->latest || ec.only < k->min_avail)) {
        rc = mt_err_set(x->err, MT_EINVAL, "key version %u does not exist", (unsigned)ec.only);
        goto out;
    }
    if (ec.only && !pub && ec.only < k->min_dec) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "key version %u is below the key's min_decryption_version",
                        (unsigned)ec.only);
        goto out;
    }
    if (!(ec.keys = json_object())) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = tstore_versions(x->core, x->db, k, export_version, &ec, x->err)))
        goto out;
    if (json_object_size(ec.keys) == 0) {
        rc = mt_err_set(x->err, MT_EINVAL, "key version %u does not exist", (unsigned)ec.only);
        goto out;
    }
    transit_x_reply(x, 200,
                    json_pack("{s:s, s:s, s:O}", "name", k->name, "type",
                              mt_tk_type_name(k->type), "keys", ec.keys));
out:
    json_decref(ec.keys);
    free(l);
    return rc;
}

/* ---- trim ---------------------------------------------------------------------------- */

/* POST /v1/transit/keys/{key}/trim {"min_available_version": N} (Vault's rules). */
mt_status transit_key_trim(core_ctx *x)
{
    char seg[160];
    json_t *b = NULL;
    if (!transit_x_seg(x, 1, seg, sizeof seg))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    mt_status rc = transit_x_body(x, &b);
    if (rc)
        return rc;
    static const char *const allowed[] = {"min_available_version", NULL};
    int64_t ma = 0;
    tlookup *l = malloc(sizeof *l);
    if (!l) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = mt_json_int(b, "min_available_version", 1, MT_TP_MAX_VERSION, &ma, x->err)) ||
        (rc = transit_x_resolve(x, seg, NULL, 0, l)))
        goto out;
    tkey_row k = l->key;
    const char *why = (uint32_t)ma < k.min_avail ? "it cannot be decremented"
                      : k.min_enc == 0
                          ? "min_encryption_version must be set first (it is 0: the latest)"
                      : (uint32_t)ma > k.min_enc ? "it cannot be above min_encryption_version"
                      : (uint32_t)ma > k.min_dec ? "it cannot be above min_decryption_version"
                                                 : NULL;
    if (why) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'min_available_version': %s", why);
        goto out;
    }
    char vs[16];
    snprintf(vs, sizeof vs, "%lld", (long long)ma);
    /* the trimmed versions are destroyed in this transaction */
    rc = store_run(x->db, x->err, NULL,
                   "DELETE FROM transit_key_versions WHERE owner=? AND name=? AND "
                   "version < CAST(? AS INTEGER)",
                   k.owner, k.name, vs, NULL);
    if (rc)
        goto out;
    k.min_avail = (uint32_t)ma;
    k.updated_at = mt_now();
    if ((rc = tstore_key_write(x->core, x->db, &k, false, x->err)))
        goto out;
    tstore_cache_forget(x->core, k.owner, k.name);
    rc = transit_x_reply_key(x, &k);
out:
    free(l);
    json_decref(b);
    return rc;
}

/* ---- backup ---------------------------------------------------------------------------- */

typedef struct backup_ctx {
    core_ctx *x;
    mt_tb_key *tb;
    size_t cap;
} backup_ctx;

static mt_status backup_version(void *arg, const tver_row *v, mt_err *err)
{
    backup_ctx *bc = arg;
    mt_tb_key *tb = bc->tb;
    if (tb->n == bc->cap) {
        size_t nc = bc->cap ? 2 * bc->cap : 8;
        if (nc > MT_TB_MAX_VERSIONS)
            return mt_err_set(err, MT_ETOOBIG, "the key has more than %d versions to back up",
                              MT_TB_MAX_VERSIONS);
        mt_tb_version *nv = realloc(tb->v, nc * sizeof *nv);
        if (!nv)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        tb->v = nv;
        bc->cap = nc;
    }
    const mt_tk_key *key = NULL;
    mt_tb_version *e = &tb->v[tb->n];
    memset(e, 0, sizeof *e);
    mt_status rc = tstore_cached_key(bc->x->core, v, tb->type, &key, err);
    if (!rc)
        rc = mt_tk_key_material(key, &e->material, &e->len, err);
    if (rc)
        return rc;
    e->version = v->version;
    e->created_at = v->created_at;
    tb->n++;
    return MT_OK;
}

/* GET /v1/transit/backup/{key} */
mt_status transit_backup(core_ctx *x)
{
    char seg[160];
    if (!transit_x_seg(x, 1, seg, sizeof seg))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    tlookup *l = malloc(sizeof *l);
    mt_tb_key tb;
    memset(&tb, 0, sizeof tb);
    uint8_t *bin = NULL;
    size_t bl = 0;
    char *b64 = NULL;
    mt_status rc = l ? transit_x_resolve(x, seg, NULL, 0, l)
                     : mt_err_set(x->err, MT_ENOMEM, "out of memory");
    if (rc)
        goto out;
    tkey_row *k = &l->key;
    if (!k->exportable || !k->allow_plaintext_backup) {
        rc = mt_err_set(x->err, MT_EPERM,
                        "a plaintext backup needs exportable=true and "
                        "allow_plaintext_backup=true (POST /v1/transit/keys/{key}/config)");
        goto out;
    }
    tb.type = k->type;
    snprintf(tb.name, sizeof tb.name, "%s", k->name);
    tb.latest = k->latest;
    tb.min_dec = k->min_dec;
    tb.min_enc = k->min_enc;
    tb.min_avail = k->min_avail;
    tb.deletion_allowed = k->deletion_allowed;
    tb.exportable = k->exportable;
    tb.allow_plaintext_backup = k->allow_plaintext_backup;
    tb.derived = k->derived;
    tb.convergent = k->convergent;
    tb.imported = k->imported;
    tb.allow_rotation = k->allow_rotation;
    tb.created_at = k->created_at;
    backup_ctx bc = {x, &tb, 0};
    if ((rc = tstore_versions(x->core, x->db, k, backup_version, &bc, x->err)) ||
        (rc = mt_tb_encode(&tb, &bin, &bl, x->err)))
        goto out;
    if (!(b64 = mt_b64_encode(bin, bl))) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    transit_x_reply(x, 200, json_pack("{s:s}", "backup", b64));
out:
    if (b64)
        mt_wipe(b64, strlen(b64));
    free(b64);
    mt_secmem_free(bin);
    mt_tb_key_clear(&tb);
    free(l);
    return rc;
}

/* ---- restore ----------------------------------------------------------------------------- */

/* Removes owner's key `name` (grants, versions, row) for a forced restore. */
static mt_status key_remove(core_ctx *x, const char *owner, const char *name)
{
    mt_status rc = store_run(x->db, x->err, NULL,
                             "DELETE FROM transit_grants WHERE owner=? AND name=?", owner, name,
                             NULL);
    if (!rc)
        rc = store_run(x->db, x->err, NULL,
                       "DELETE FROM transit_key_versions WHERE owner=? AND name=?", owner, name,
                       NULL);
    if (!rc)
        rc = store_run(x->db, x->err, NULL, "DELETE FROM transit_keys WHERE owner=? AND name=?",
                       owner, name, NULL);
    if (!rc)
        tstore_cache_forget(x->core, owner, name);
    return rc;
}

/* POST /v1/transit/restore[/{name}] {"backup": base64, "force": bool, "name": ...} */
mt_status transit_restore(core_ctx *x)
{
    char seg[160] = "", owner[65], name[MT_TP_NAME_MAX + 1] = "";
    bool has_name = transit_x_seg(x, 1, seg, sizeof seg);
    json_t *b = NULL;
    mt_status rc = transit_x_body(x, &b);
    if (rc)
        return rc;
    static const char *const allowed[] = {"backup", "force", "name", NULL};
    const char *b64 = NULL, *bname = NULL;
    bool force = false;
    uint8_t *bin = NULL;
    size_t bl = 0;
    mt_tb_key tb;
    memset(&tb, 0, sizeof tb);
    mt_tk_key **keys = NULL;
    tlookup *l = malloc(sizeof *l);
    if (!l) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = mt_json_str(b, "backup", BACKUP_B64_MAX, &b64, x->err)) ||
        (rc = mt_json_bool_opt(b, "force", &force, false, x->err)) ||
        (rc = mt_json_str_opt(b, "name", 160, &bname, NULL, x->err)))
        goto out;
    if (!has_name && bname) {
        snprintf(seg, sizeof seg, "%s", bname);
        has_name = true;
    }
    if (has_name) {
        if (!mt_tp_key_ref(seg, owner, name)) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "invalid key name: a name is 1 to 64 of [A-Za-z0-9_.-]");
            goto out;
        }
        if (owner[0] && strcmp(owner, x->who) != 0) {
            rc = mt_err_set(x->err, MT_EPERM, "keys are restored into your own name only");
            goto out;
        }
    }
    if ((rc = mt_tp_b64("backup", b64, BACKUP_B64_MAX / 4 * 3, true, &bin, &bl, x->err)) ||
        (rc = mt_tb_decode(bin, bl, &tb, x->err)))
        goto out;
    if (!has_name)
        snprintf(name, sizeof name, "%s", tb.name);
    char obj[140];
    snprintf(obj, sizeof obj, "%s:%s", x->who, name);
    core_set_object(x, "transit-key", obj);
    /* every version's material must make a key of the backup's type */
    if (!(keys = calloc(tb.n, sizeof *keys))) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < tb.n; i++) {
        mt_err e;
        if (mt_tk_key_from_material(tb.type, tb.v[i].material, tb.v[i].len, &keys[i], &e)) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "backup: version %u is not a valid %s key",
                            (unsigned)tb.v[i].version, mt_tk_type_name(tb.type));
            goto out;
        }
    }
    if ((rc = tstore_lookup(x->core, x->db, x->who, name, 0, "", l, x->err)))
        goto out;
    if (l->found && !force) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "the key already exists: restore under another name, or set force=true "
                        "to replace it (its grants are removed)");
        goto out;
    }
    if (l->found) {
        if ((rc = key_remove(x, x->who, name)))
            goto out;
    } else {
        int64_t n = 0;
        bool found = false;
        if ((rc = store_int(x->db, x->err, &n, &found,
                            "SELECT count(*) FROM transit_keys WHERE owner = ?", x->who, NULL)))
            goto out;
        if (n >= TRANSIT_MAX_KEYS) {
            rc = mt_err_set(x->err, MT_EQUOTA,
                            "you have %d KeyStore keys, the most one user may have; delete one",
                            TRANSIT_MAX_KEYS);
            goto out;
        }
    }
    tkey_row k;
    memset(&k, 0, sizeof k);
    snprintf(k.owner, sizeof k.owner, "%s", x->who);
    snprintf(k.name, sizeof k.name, "%s", name);
    k.type = tb.type;
    k.latest = tb.latest;
    k.min_dec = tb.min_dec;
    k.min_enc = tb.min_enc;
    k.min_avail = tb.min_avail;
    k.deletion_allowed = tb.deletion_allowed;
    k.exportable = tb.exportable;
    k.allow_plaintext_backup = tb.allow_plaintext_backup;
    k.derived = tb.derived;
    k.convergent = tb.convergent;
    k.imported = tb.imported;
    k.allow_rotation = tb.allow_rotation;
    k.created_at = tb.created_at;
    k.updated_at = mt_now();
    /* one transaction (api.c): a failure below rolls every row back */
    rc = tstore_key_write(x->core, x->db, &k, true, x->err);
    for (size_t i = 0; !rc && i < tb.n; i++) /* sealed under the current KEK version */
        rc = tstore_version_add(x->core, x->db, k.owner, k.name, tb.v[i].version, keys[i],
                                tb.v[i].created_at, x->err);
    if (!rc)
        core_json_response(x, 204, NULL);
out:
    for (size_t i = 0; keys && i < tb.n; i++)
        mt_tk_key_free(keys[i]);
    free(keys);
    mt_tb_key_clear(&tb);
    mt_secmem_free(bin);
    free(l);
    json_decref(b);
    return rc;
}
