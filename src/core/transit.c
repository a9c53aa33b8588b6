/* transit: the REST handlers of the user KeyStore's Vault-transit-compatible
 * API under /v1/transit/ (docs/keystore.md). api.c routes here inside its
 * transaction under core->mu; the key rows and the cache are transit_store.c,
 * the cryptography and input readers src/keystore/transit/.
 *
 * Responses have Vault's shape ({"request_id", "lease_id", "renewable",
 * "lease_duration", "data", "wrap_info", "warnings", "auth"}); errors carry
 * Vault's {"errors": [...]} next to mesatee's {"error": {...}} (api.c).
 *
 * Authorisation: a key belongs to its owner. A path names the caller's own
 * key as "name" and another user's key as "owner:name"; that works only for
 * the operations the owner granted the caller (transit_grants), and is
 * otherwise the same 404 as a key that does not exist. Only the owner
 * rotates, configures, deletes, imports into and grants a key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "mt_json.h"
#include "mt_secmem.h"
#include "mt_transit_parse.h"
#include "transit_ext.h"
#include "transit_store.h"

#define TRANSIT_PREFIX "/v1/transit/"
#define TRANSIT_RANDOM_MAX 65536
#define TRANSIT_MAX_KEYS 1000 /* keys per owner */
#define NO_SUCH_KEY "no such key, or it is not shared with you for this operation"

/* Operations a grant may name. */
static const char *const grant_ops[] = {"read", "encrypt", "decrypt", "rewrap", "datakey",
                                        "sign", "verify",  "hmac",    NULL};

/* ---- helpers ------------------------------------------------------------------- */

/* The n-th segment after /v1/transit/ (0-based) into out. */
static bool path_seg(core_ctx *x, unsigned n, char *out, size_t cap)
{
    const char *p = x->req->path + strlen(TRANSIT_PREFIX);
    for (unsigned i = 0; i < n; i++) {
        p = strchr(p, '/');
        if (!p)
            return false;
        p++;
    }
    size_t len = strcspn(p, "/");
    if (len == 0 || len >= cap)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

static mt_status body_parse(core_ctx *x, json_t **out)
{
    *out = NULL;
    if (!x->req->body_len) {
        *out = json_object();
        return *out ? MT_OK : mt_err_set(x->err, MT_ENOMEM, "out of memory");
    }
    *out = mt_json_parse((const char *)x->req->body, x->req->body_len, x->core->max_json_bytes,
                         x->core->max_json_depth, x->err);
    if (!*out)
        return x->err->code ? x->err->code : MT_EINVAL;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return mt_err_set(x->err, MT_EINVAL, "the request body must be a JSON object");
    }
    return MT_OK;
}

/* Vault's response envelope around data (taken). */
static void vault_reply(core_ctx *x, int status, json_t *data)
{
    uint8_t rid[16];
    char hex[33], uuid[40];
    if (mt_random(rid, sizeof rid, NULL))
        memset(rid, 0, sizeof rid);
    mt_hex_encode(rid, sizeof rid, hex);
    snprintf(uuid, sizeof uuid, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
    core_json_response(x, status,
                       json_pack("{s:s, s:s, s:b, s:i, s:o, s:n, s:n, s:n}", "request_id", uuid,
                                 "lease_id", "", "renewable", 0, "lease_duration", 0, "data",
                                 data ? data : json_object(), "wrap_info", "warnings", "auth"));
}

static bool ops_has(const char *ops, const char *op)
{
    size_t n = strlen(op);
    for (const char *p = ops; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && !strncmp(p, op, n))
            return true;
        p += l;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Resolves the key segment seg for op (NULL: owner-only operation) at
 * version (0 = latest) into l; 404 when absent or not granted. */
static mt_status key_resolve(core_ctx *x, const char *seg, const char *op, uint32_t version,
                             tlookup *l)
{
    char owner[65], name[MT_TP_NAME_MAX + 1];
    if (!mt_tp_key_ref(seg, owner, name))
        return mt_err_set(x->err, MT_EINVAL,
                          "invalid key name: a name is 1 to 64 of [A-Za-z0-9_.-]; another "
                          "user's key is owner:name");
    bool own = !owner[0] || !strcmp(owner, x->who);
    if (own)
        snprintf(owner, sizeof owner, "%s", x->who);
    mt_status rc = tstore_lookup(x->core, x->db, owner, name, version, own ? "" : x->who, l, x->err);
    if (rc)
        return rc;
    char obj[140];
    snprintf(obj, sizeof obj, "%s:%s", owner, name);
    core_set_object(x, "transit-key", obj);
    if (!l->found)
        return mt_err_set(x->err, MT_ENOTFOUND, NO_SUCH_KEY);
    if (own)
        return MT_OK;
    if (!l->has_grant)
        return mt_err_set(x->err, MT_ENOTFOUND, NO_SUCH_KEY);
    if (!op)
        return mt_err_set(x->err, MT_EPERM, "only the key's owner may do this");
    if (!ops_has(l->grant_ops, op))
        return mt_err_set(x->err, MT_ENOTFOUND, NO_SUCH_KEY);
    return MT_OK;
}

/* Makes l hold version v of the same key (re-reading it when needed). */
static mt_status key_version(core_ctx *x, const char *seg, const char *op, uint32_t v, tlookup *l)
{
    if (l->has_ver && l->ver.version == v)
        return MT_OK;
    mt_status rc = key_resolve(x, seg, op, v, l);
    if (!rc && !l->has_ver)
        rc = mt_err_set(x->err, MT_EINVAL, "key version %u does not exist", (unsigned)v);
    return rc;
}

/* ---- key info ---------------------------------------------------------------- */

typedef struct info_ctx {
    json_t *keys;
    mt_tk_type type;
} info_ctx;

static mt_status info_version(void *arg, const tver_row *v, mt_err *err)
{
    info_ctx *ic = arg;
    char num[16];
    snprintf(num, sizeof num, "%u", (unsigned)v->version);
    json_t *e;
    if (mt_tk_type_asymmetric(ic->type)) {
        char t[32];
        mt_time_format(v->created_at, t);
        e = json_pack("{s:s, s:s, s:s}", "creation_time", t, "name", mt_tk_type_curve(ic->type),
                      "public_key", v->public_key);
    } else {
        e = json_integer(v->created_at);
    }
    if (!e || json_object_set_new(ic->keys, num, e))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

static json_t *grants_json(core_ctx *x, const tkey_row *k, mt_status *rc)
{
    json_t *g = json_object();
    mt_db_stmt *st;
    if ((*rc = mt_db_prepare(x->db,
                             "SELECT grantee, operations, created_at, mac FROM transit_grants "
                             "WHERE owner = ? AND name = ? ORDER BY grantee",
                             &st, x->err))) {
        json_decref(g);
        return NULL;
    }
    mt_db_bind_text(st, 1, k->owner);
    mt_db_bind_text(st, 2, k->name);
    while (!*rc && mt_db_step(st, rc, x->err) == MT_DB_ROW) {
        const char *who = mt_db_col_text(st, 0), *ops = mt_db_col_text(st, 1);
        char mac[65];
        *rc = tstore_grant_mac(x->core, k->owner, k->name, who, ops, mt_db_col_int64(st, 2), mac,
                               x->err);
        if (!*rc && !integ_hex_equal(mac, mt_db_col_text(st, 3)))
            *rc = integ_fail(x->err, "transit grant");
        json_t *arr = json_array();
        for (const char *p = ops; *p && arr;) {
            size_t l = strcspn(p, ",");
            json_array_append_new(arr, json_stringn(p, l));
            p += l;
            if (*p == ',')
                p++;
        }
        json_object_set_new(g, who, arr);
    }
    mt_db_finalize(st);
    if (*rc) {
        json_decref(g);
        return NULL;
    }
    return g;
}

/* The key's description as Vault's read shows it (public parts only). */
static mt_status key_info(core_ctx *x, const tkey_row *k, json_t **out)
{
    *out = NULL;
    mt_tk_type t = k->type;
    info_ctx ic = {json_object(), t};
    if (!ic.keys)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    mt_status rc = tstore_versions(x->core, x->db, k, info_version, &ic, x->err);
    if (rc) {
        json_decref(ic.keys);
        return rc;
    }
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, "
        "s:i, s:o}",
        "name", k->name, "owner", k->owner, "type", mt_tk_type_name(t), "latest_version",
        (json_int_t)k->latest, "min_available_version", (json_int_t)k->min_avail,
        "min_decryption_version",
        (json_int_t)k->min_dec, "min_encryption_version", (json_int_t)k->min_enc,
        "deletion_allowed", k->deletion_allowed, "exportable", k->exportable,
        "allow_plaintext_backup", k->allow_plaintext_backup, "derived", k->derived,
        "convergent_encryption", k->convergent, "supports_encryption", mt_tk_type_encrypts(t),
        "supports_decryption", mt_tk_type_encrypts(t), "supports_derivation",
        mt_tk_type_derives(t), "supports_signing",
        mt_tk_type_signs(t), "imported_key", k->imported, "auto_rotate_period", 0, "keys",
        ic.keys);
    if (!d)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    if (k->derived) /* Vault's fields of a derived key */
        json_object_set_new(d, "kdf", json_string("hkdf_sha256"));
    if (k->convergent)
        json_object_set_new(d, "convergent_encryption_version", json_integer(-1));
    if (!strcmp(k->owner, x->who)) {
        json_t *g = grants_json(x, k, &rc);
        if (rc) {
            json_decref(d);
            return rc;
        }
        json_object_set_new(d, "grants", g);
    }
    *out = d;
    return MT_OK;
}

/* ---- keys ------------------------------------------------------------------------ */

/* A request that creates the key named by path segment 1 (copied into seg, 160 bytes): the
 * name must be the caller's own; name gets it without owner, *b the parsed body. */
static mt_status new_key_request(core_ctx *x, char seg[160], char name[MT_TP_NAME_MAX + 1],
                                 json_t **b)
{
    char owner[65];
    if (!path_seg(x, 1, seg, 160))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    if (!mt_tp_key_ref(seg, owner, name))
        return mt_err_set(x->err, MT_EINVAL,
                          "invalid key name: a name is 1 to 64 of [A-Za-z0-9_.-]");
    if (owner[0] && strcmp(owner, x->who))
        return mt_err_set(x->err, MT_EPERM, "keys are created in your own name only");
    return body_parse(x, b);
}

/* Options of create and import that must keep their Vault defaults here. */
static mt_status unsupported_opts(core_ctx *x, const json_t *b)
{
    const json_t *arp = json_object_get(b, "auto_rotate_period");
    if (arp && !json_is_null(arp) &&
        !(json_is_integer(arp) && json_integer_value(arp) == 0) &&
        !(json_is_string(arp) && (!strcmp(json_string_value(arp), "0") ||
                                  !strcmp(json_string_value(arp), ""))))
        return mt_err_set(x->err, MT_EINVAL, "field 'auto_rotate_period': not supported");
    return MT_OK;
}

/* Reads exportable, allow_plaintext_backup and (when derive) derived and
 * convergent_encryption of a create or import body into f (false when absent); checks
 * them against key type t. */
static mt_status key_flags(core_ctx *x, const json_t *b, mt_tk_type t, bool derive, tkey_row *f)
{
    memset(f, 0, sizeof *f);
    mt_status rc;
    if ((rc = mt_json_bool_opt(b, "exportable", &f->exportable, false, x->err)) ||
        (rc = mt_json_bool_opt(b, "allow_plaintext_backup", &f->allow_plaintext_backup, false,
                               x->err)) ||
        (rc = mt_json_bool_opt(b, "derived", &f->derived, false, x->err)) ||
        (rc = mt_json_bool_opt(b, "convergent_encryption", &f->convergent, false, x->err)))
        return rc;
    if (!derive && (f->derived || f->convergent))
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'derived': not supported at import; create the key instead");
    if (f->convergent && !f->derived)
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'convergent_encryption': requires derived=true");
    if (f->derived && !mt_tk_type_derives(t))
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'derived': only aes256-gcm96 and chacha20-poly1305 keys are "
                          "derived here");
    return MT_OK;
}

static mt_status key_type_field(core_ctx *x, const json_t *b, mt_tk_type *t)
{
    const char *ts = NULL;
    mt_status rc = mt_json_str_opt(b, "type", 64, &ts, "aes256-gcm96", x->err);
    if (rc)
        return rc;
    *t = mt_tk_type_parse(ts);
    if (*t == MT_TK_NONE)
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'type': unknown key type; use aes256-gcm96, chacha20-poly1305, "
                          "ecdsa-p256, ecdsa-p384, ecdsa-p521, ed25519, rsa-2048, rsa-3072, "
                          "rsa-4096 or hmac");
    return MT_OK;
}

static mt_status reply_key(core_ctx *x, const tkey_row *k)
{
    json_t *d = NULL;
    mt_status rc = key_info(x, k, &d);
    if (!rc)
        vault_reply(x, 200, d);
    return rc;
}

/* Creates the key row and version 1 from key, with the flags of f (key_flags). */
static mt_status key_insert(core_ctx *x, const char *name, mt_tk_type t, const mt_tk_key *key,
                            bool imported, bool allow_rotation, const tkey_row *f)
{
    int64_t n = 0;
    bool found = false;
    mt_status rc = store_int(x->db, x->err, &n, &found,
                             "SELECT count(*) FROM transit_keys WHERE owner = ?", x->who, NULL);
    if (rc)
        return rc;
    if (n >= TRANSIT_MAX_KEYS)
        return mt_err_set(x->err, MT_EQUOTA,
                          "you have %d KeyStore keys, the most one user may have; delete one",
                          TRANSIT_MAX_KEYS);
    tkey_row k;
    memset(&k, 0, sizeof k);
    snprintf(k.owner, sizeof k.owner, "%s", x->who);
    snprintf(k.name, sizeof k.name, "%s", name);
    k.type = t;
    k.latest = 1;
    k.min_dec = 1;
    k.imported = imported;
    k.allow_rotation = allow_rotation;
    k.exportable = f->exportable;
    k.allow_plaintext_backup = f->allow_plaintext_backup;
    k.derived = f->derived;
    k.convergent = f->convergent;
    k.created_at = k.updated_at = mt_now();
    rc = tstore_key_write(x->core, x->db, &k, true, x->err);
    if (!rc)
        rc = tstore_version_add(x->core, x->db, k.owner, k.name, 1, key, k.created_at, x->err);
    if (!rc)
        rc = reply_key(x, &k);
    return rc;
}

mt_status transit_key_create(core_ctx *x)
{
    char seg[160], name[MT_TP_NAME_MAX + 1];
    json_t *b = NULL;
    mt_tk_type t = MT_TK_NONE;
    tkey_row f;
    mt_status rc;
    if ((rc = new_key_request(x, seg, name, &b)))
        return rc;
    int64_t ks = 32;
    static const char *const allowed[] = {"type", "derived", "convergent_encryption",
                                          "exportable", "allow_plaintext_backup",
                                          "auto_rotate_period", "key_size", "managed_key_name",
                                          "managed_key_id", NULL};
    if ((rc = mt_json_only_keys(b, allowed, x->err)) || (rc = unsupported_opts(x, b)) ||
        (rc = key_type_field(x, b, &t)) || (rc = key_flags(x, b, t, true, &f)) ||
        (rc = mt_json_int_opt(b, "key_size", 0, 64, &ks, 0, x->err)))
        goto out;
    if (ks && t != MT_TK_HMAC) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'key_size' applies to hmac keys only");
        goto out;
    }
    if (ks && ks < 16) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'key_size': 16 to 64 bytes");
        goto out;
    }
    char obj[140];
    snprintf(obj, sizeof obj, "%s:%s", x->who, name);
    core_set_object(x, "transit-key", obj);
    /* A slow route (api.c): the key is generated (RSA-4096: seconds)
     * without the store lock, which is taken only to write. */
    mt_tk_key *key = NULL;
    if (t == MT_TK_HMAC && ks && ks != 32) {
        uint8_t m[64];
        rc = mt_random(m, (size_t)ks, x->err);
        if (!rc)
            rc = mt_tk_key_from_material(t, m, (size_t)ks, &key, x->err);
        mt_wipe(m, sizeof m);
    } else {
        rc = mt_tk_key_generate(t, &key, x->err);
    }
    tlookup *l = rc ? NULL : malloc(sizeof *l);
    if (!rc && !l)
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
    if (rc) {
        mt_tk_key_free(key);
        goto out;
    }
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&x->core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        rc = tstore_lookup(x->core, x->db, x->who, name, 0, "", l, x->err);
        if (!rc && l->found) {
            /* Vault: creating an existing key changes nothing */
            if (l->key.type != t)
                rc = mt_err_set(x->err, MT_ECONFLICT, "the key exists with another type");
            else
                rc = reply_key(x, &l->key);
        } else if (!rc) {
            rc = key_insert(x, name, t, key, false, true, &f);
        }
        rc = core_audit_commit(x, 200, rc);
    }
    pthread_mutex_unlock(&x->core->mu);
    free(l);
    mt_tk_key_free(key);
out:
    json_decref(b);
    return rc;
}

/* A request on the key named by path segment 1: copies the name into seg (160 bytes),
 * parses the body into *b when b is given, and allocates the lookup *l (to free). */
static mt_status key_request(core_ctx *x, char seg[160], json_t **b, tlookup **l)
{
    *l = NULL;
    if (!path_seg(x, 1, seg, 160))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    mt_status rc = b ? body_parse(x, b) : MT_OK;
    if (rc)
        return rc;
    if (!(*l = malloc(sizeof **l))) {
        if (b) {
            json_decref(*b);
            *b = NULL;
        }
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    }
    return MT_OK;
}

mt_status transit_key_read(core_ctx *x)
{
    char seg[160];
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, NULL, &l);
    if (rc)
        return rc;
    rc = key_resolve(x, seg, "read", 0, l);
    if (!rc)
        rc = reply_key(x, &l->key);
    free(l);
    return rc;
}

mt_status transit_key_list(core_ctx *x)
{
    const char *q = x->req->query;
    if (q && *q && strcmp(q, "list=true") != 0)
        return mt_err_set(x->err, MT_EINVAL, "the only query parameter taken here is list=true");
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(
        x->db,
        "SELECT name FROM transit_keys WHERE owner = ?1 UNION ALL "
        "SELECT owner || ':' || name FROM transit_grants WHERE grantee = ?1 ORDER BY 1",
        &st, x->err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, x->who);
    json_t *keys = json_array();
    while (!rc && mt_db_step(st, &rc, x->err) == MT_DB_ROW)
        json_array_append_new(keys, json_string(mt_db_col_text(st, 0)));
    mt_db_finalize(st);
    if (rc) {
        json_decref(keys);
        return rc;
    }
    if (json_array_size(keys) == 0) {
        /* Vault answers an empty list with 404 */
        json_decref(keys);
        core_json_response(x, 404,
                           json_pack("{s:[], s:{s:s, s:s}}", "errors", "error", "code",
                                     mt_status_name(MT_ENOTFOUND), "message", "no keys"));
        return MT_OK;
    }
    vault_reply(x, 200, json_pack("{s:o}", "keys", keys));
    return MT_OK;
}

mt_status transit_key_delete(core_ctx *x)
{
    char seg[160];
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, NULL, &l);
    if (rc)
        return rc;
    rc = key_resolve(x, seg, NULL, 0, l);
    if (!rc && !l->key.deletion_allowed)
        rc = mt_err_set(x->err, MT_EINVAL,
                        "deletion is not allowed for this key: set deletion_allowed with "
                        "POST /v1/transit/keys/{key}/config first");
    if (!rc)
        rc = store_run(x->db, x->err, NULL, "DELETE FROM transit_grants WHERE owner=? AND name=?",
                       l->key.owner, l->key.name, NULL);
    if (!rc)
        rc = store_run(x->db, x->err, NULL,
                       "DELETE FROM transit_key_versions WHERE owner=? AND name=?", l->key.owner,
                       l->key.name, NULL);
    if (!rc)
        rc = store_run(x->db, x->err, NULL, "DELETE FROM transit_keys WHERE owner=? AND name=?",
                       l->key.owner, l->key.name, NULL);
    if (!rc) /* the material leaves memory now (a rolled-back delete reloads it) */
        tstore_cache_forget(x->core, l->key.owner, l->key.name);
    free(l);
    if (!rc)
        core_json_response(x, 204, NULL);
    return rc;
}

mt_status transit_key_config(core_ctx *x)
{
    char seg[160];
    json_t *b = NULL;
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, &b, &l);
    if (rc)
        return rc;
    static const char *const allowed[] = {"min_decryption_version", "min_encryption_version",
                                          "deletion_allowed", "exportable",
                                          "allow_plaintext_backup", "auto_rotate_period", NULL};
    bool del = false, exp = false, apb = false;
    int64_t md = 0, me = 0;
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = key_resolve(x, seg, NULL, 0, l)) || (rc = unsupported_opts(x, b)))
        goto out;
    tkey_row k = l->key;
    if ((rc = mt_json_bool_opt(b, "exportable", &exp, k.exportable, x->err)) ||
        (rc = mt_json_bool_opt(b, "allow_plaintext_backup", &apb, k.allow_plaintext_backup,
                               x->err)))
        goto out;
    if ((k.exportable && !exp) || (k.allow_plaintext_backup && !apb)) {
        rc = mt_err_set(x->err, MT_EINVAL, "field '%s': once enabled it cannot be disabled",
                        k.exportable && !exp ? "exportable" : "allow_plaintext_backup");
        goto out;
    }
    if ((rc = mt_json_bool_opt(b, "deletion_allowed", &del, k.deletion_allowed, x->err)) ||
        (rc = mt_json_int_opt(b, "min_decryption_version", 0, MT_TP_MAX_VERSION, &md, k.min_dec,
                              x->err)) ||
        (rc = mt_json_int_opt(b, "min_encryption_version", 0, MT_TP_MAX_VERSION, &me, k.min_enc,
                              x->err)))
        goto out;
    if (md == 0)
        md = 1; /* Vault: 0 means 1 */
    if ((uint32_t)md > k.latest) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "min_decryption_version %lld is above the latest version %u",
                        (long long)md, (unsigned)k.latest);
        goto out;
    }
    if (me && ((uint32_t)me > k.latest || me < md)) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "min_encryption_version must be 0 or from min_decryption_version to the "
                        "latest version");
        goto out;
    }
    if (k.min_avail && ((uint32_t)md < k.min_avail || (me && (uint32_t)me < k.min_avail))) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "min_decryption_version and min_encryption_version cannot go below "
                        "min_available_version %u (older versions were trimmed)",
                        (unsigned)k.min_avail);
        goto out;
    }
    k.deletion_allowed = del;
    k.exportable = exp;
    k.allow_plaintext_backup = apb;
    k.min_dec = (uint32_t)md;
    k.min_enc = (uint32_t)me;
    k.updated_at = mt_now();
    rc = tstore_key_write(x->core, x->db, &k, false, x->err);
    if (!rc)
        rc = reply_key(x, &k);
out:
    free(l);
    json_decref(b);
    return rc;
}

/* Adds `key` as k's new latest version (key row and version row written), then replies
 * with k. */
static mt_status version_push(core_ctx *x, tkey_row *k, const mt_tk_key *key)
{
    k->latest++;
    k->updated_at = mt_now();
    mt_status rc = tstore_key_write(x->core, x->db, k, false, x->err);
    if (!rc)
        rc = tstore_version_add(x->core, x->db, k->owner, k->name, k->latest, key,
                                k->updated_at, x->err);
    if (!rc)
        rc = reply_key(x, k);
    return rc;
}

/* The rotation's checks and what its new version needs, read under the lock. */
static mt_status rotate_check(core_ctx *x, const char *seg, tlookup *l, size_t *hmac_len)
{
    mt_status rc = key_resolve(x, seg, NULL, 0, l);
    if (!rc && l->key.imported && !l->key.allow_rotation)
        rc = mt_err_set(x->err, MT_EINVAL,
                        "this imported key does not allow rotation (allow_rotation at import); "
                        "add a version with import_version");
    if (!rc && l->key.latest >= MT_TP_MAX_VERSION)
        rc = mt_err_set(x->err, MT_EINVAL, "the key has reached its last version");
    if (!rc && l->key.type == MT_TK_HMAC) {
        /* a new version of the same size as the latest */
        const mt_tk_key *cur = NULL;
        uint8_t *cm = NULL;
        size_t cn = 0;
        if (!l->has_ver)
            rc = mt_err_set(x->err, MT_EINTERNAL, "latest key version missing");
        if (!rc)
            rc = tstore_cached_key(x->core, &l->ver, l->key.type, &cur, x->err);
        if (!rc)
            rc = mt_tk_key_material(cur, &cm, &cn, x->err);
        mt_secmem_free(cm);
        *hmac_len = cn;
    }
    return rc;
}

/* A slow route (api.c): the new version is generated without the store
 * lock; the write checks that nobody rotated the key in between. */
mt_status transit_key_rotate(core_ctx *x)
{
    char seg[160];
    json_t *b = NULL;
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, &b, &l);
    json_decref(b);
    if (rc)
        return rc;
    mt_tk_key *key = NULL;
    size_t hl = 32;
    pthread_mutex_lock(&x->core->mu);
    if ((rc = store_exec(x->db, "BEGIN", x->err)) == MT_OK) {
        rc = rotate_check(x, seg, l, &hl);
        store_rollback(x->db); /* read only */
    }
    pthread_mutex_unlock(&x->core->mu);
    tkey_row k = l->key;
    if (!rc && k.type == MT_TK_HMAC) {
        uint8_t m[64];
        rc = hl >= 16 && hl <= 64 ? mt_random(m, hl, x->err)
                                  : mt_err_set(x->err, MT_EINTERNAL, "bad hmac key size");
        if (!rc)
            rc = mt_tk_key_from_material(k.type, m, hl, &key, x->err);
        mt_wipe(m, sizeof m);
    } else if (!rc) {
        rc = mt_tk_key_generate(k.type, &key, x->err);
    }
    if (rc)
        goto out;
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&x->core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        rc = rotate_check(x, seg, l, &hl);
        if (!rc && (l->key.latest != k.latest || l->key.type != k.type))
            rc = mt_err_set(x->err, MT_ECONFLICT, "the key was rotated meanwhile; retry");
        if (!rc) {
            k = l->key;
            rc = version_push(x, &k, key);
        }
        rc = core_audit_commit(x, 200, rc);
    }
    pthread_mutex_unlock(&x->core->mu);
out:
    mt_tk_key_free(key);
    free(l);
    return rc;
}

/* ---- import ------------------------------------------------------------------------- */

static mt_status import_hash(core_ctx *x, const json_t *b, mt_tk_hash *h)
{
    const char *hf = NULL;
    mt_status rc = mt_json_str_opt(b, "hash_function", 16, &hf, "SHA256", x->err);
    if (rc)
        return rc;
    if (!strcmp(hf, "SHA256"))
        *h = MT_TH_SHA2_256;
    else if (!strcmp(hf, "SHA384"))
        *h = MT_TH_SHA2_384;
    else if (!strcmp(hf, "SHA512"))
        *h = MT_TH_SHA2_512;
    else if (!strcmp(hf, "SHA224"))
        *h = MT_TH_SHA2_224;
    else
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'hash_function': use SHA224, SHA256, SHA384 or SHA512");
    return MT_OK;
}

/* Unwraps the body's ciphertext into a key of type t. */
static mt_status import_key(core_ctx *x, const json_t *b, mt_tk_type t, mt_tk_key **out)
{
    *out = NULL;
    mt_tk_hash h = MT_TH_SHA2_256;
    const char *ct = NULL;
    uint8_t *blob = NULL, *m = NULL;
    size_t bl = 0, ml = 0;
    const mt_tk_key *wk = NULL;
    mt_status rc;
    if ((rc = import_hash(x, b, &h)) ||
        (rc = mt_json_str(b, "ciphertext", 1u << 20, &ct, x->err)) ||
        (rc = mt_tp_b64("ciphertext", ct, 1u << 19, false, &blob, &bl, x->err)))
        return rc;
    rc = tstore_wrapping_key(x->core, x->db, false, &wk, NULL, x->err);
    if (rc == MT_ENOTFOUND)
        rc = mt_err_set(x->err, MT_EINVAL,
                        "no wrapping key yet: GET /v1/transit/wrapping_key and wrap for it");
    if (!rc)
        rc = mt_tk_import_unwrap(wk, h, blob, bl, &m, &ml, x->err);
    if (rc == MT_ECRYPTO)
        rc = mt_err_set(x->err, MT_EINVAL,
                        "import failed: the ciphertext does not unwrap with the wrapping key");
    if (!rc)
        rc = mt_tk_key_from_material(t, m, ml, out, x->err);
    free(blob);
    mt_secmem_free(m);
    return rc;
}

mt_status transit_key_import(core_ctx *x)
{
    char seg[160], name[MT_TP_NAME_MAX + 1];
    json_t *b = NULL;
    mt_tk_type t = MT_TK_NONE;
    mt_tk_key *key = NULL;
    bool rot = false;
    tkey_row f;
    mt_status rc;
    if ((rc = new_key_request(x, seg, name, &b)))
        return rc;
    static const char *const allowed[] = {"ciphertext", "hash_function", "type",
                                          "derived", "context", "exportable",
                                          "allow_plaintext_backup", "auto_rotate_period",
                                          "allow_rotation", NULL};
    char obj[140];
    snprintf(obj, sizeof obj, "%s:%s", x->who, name);
    core_set_object(x, "transit-key", obj);
    tlookup *l = malloc(sizeof *l);
    if (!l) {
        json_decref(b);
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    }
    if ((rc = mt_json_only_keys(b, allowed, x->err)) || (rc = unsupported_opts(x, b)) ||
        (rc = key_type_field(x, b, &t)) || (rc = key_flags(x, b, t, false, &f)) ||
        (rc = mt_json_bool_opt(b, "allow_rotation", &rot, false, x->err)) ||
        (rc = tstore_lookup(x->core, x->db, x->who, name, 0, "", l, x->err)))
        goto out;
    if (l->found) {
        rc = mt_err_set(x->err, MT_EINVAL, "the key already exists; use import_version");
        goto out;
    }
    rc = import_key(x, b, t, &key);
    if (!rc)
        rc = key_insert(x, name, t, key, true, rot, &f);
out:
    mt_tk_key_free(key);
    free(l);
    json_decref(b);
    return rc;
}

mt_status transit_key_import_version(core_ctx *x)
{
    char seg[160];
    json_t *b = NULL;
    mt_tk_key *key = NULL;
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, &b, &l);
    if (rc)
        return rc;
    static const char *const allowed[] = {"ciphertext", "hash_function", NULL};
    if ((rc = mt_json_only_keys(b, allowed, x->err)) || (rc = key_resolve(x, seg, NULL, 0, l)))
        goto out;
    if (!l->key.imported) {
        rc = mt_err_set(x->err, MT_EINVAL, "import_version applies to imported keys only");
        goto out;
    }
    if (l->key.latest >= MT_TP_MAX_VERSION) {
        rc = mt_err_set(x->err, MT_EINVAL, "the key has reached its last version");
        goto out;
    }
    tkey_row k = l->key;
    if ((rc = import_key(x, b, k.type, &key)))
        goto out;
    rc = version_push(x, &k, key);
out:
    mt_tk_key_free(key);
    free(l);
    json_decref(b);
    return rc;
}

mt_status transit_wrapping_key(core_ctx *x)
{
    const mt_tk_key *wk = NULL;
    char *pem = NULL;
    mt_status rc = tstore_wrapping_key(x->core, x->db, true, &wk, &pem, x->err);
    if (!rc)
        vault_reply(x, 200, json_pack("{s:s}", "public_key", pem));
    free(pem);
    core_set_object(x, "transit", "wrapping_key");
    return rc;
}

/* ---- grants ---------------------------------------------------------------------------- */

mt_status transit_grant_add(core_ctx *x)
{
    char seg[160];
    json_t *b = NULL, *ops = NULL;
    const char *user = NULL;
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, &b, &l);
    if (rc)
        return rc;
    static const char *const allowed[] = {"user", "operations", NULL};
    char list[256] = "";
    bool exists = false;
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = mt_json_str(b, "user", 64, &user, x->err)) ||
        (rc = mt_json_array(b, "operations", 8, &ops, x->err)) ||
        (rc = key_resolve(x, seg, NULL, 0, l)))
        goto out;
    if (!dec_username_valid(user) || !strcmp(user, x->who)) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'user': another user's name");
        goto out;
    }
    if ((rc = core_user_exists(x->db, user, &exists, x->err)))
        goto out;
    if (!exists) {
        rc = mt_err_set(x->err, MT_ENOTFOUND, "field 'user': no such user");
        goto out;
    }
    /* operations, in the canonical order, each once */
    for (size_t g = 0; grant_ops[g]; g++) {
        size_t i;
        json_t *v;
        json_array_foreach(ops, i, v)
        {
            if (json_is_string(v) && !strcmp(json_string_value(v), grant_ops[g])) {
                if (list[0])
                    strcat(list, ",");
                strcat(list, grant_ops[g]);
                break;
            }
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(ops, i, v)
    {
        bool known = false;
        for (size_t g = 0; grant_ops[g] && json_is_string(v); g++)
            known = known || !strcmp(json_string_value(v), grant_ops[g]);
        if (!known) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "field 'operations': item %zu is not one of read, encrypt, decrypt, "
                            "rewrap, datakey, sign, verify, hmac",
                            i);
            goto out;
        }
    }
    if (!list[0]) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'operations': name at least one operation");
        goto out;
    }
    int64_t now = mt_now();
    char mac[65], ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    if ((rc = tstore_grant_mac(x->core, l->key.owner, l->key.name, user, list, now, mac, x->err)))
        goto out;
    rc = store_run(x->db, x->err, NULL,
                   "INSERT OR REPLACE INTO transit_grants(owner, name, grantee, operations, "
                   "created_at, mac) VALUES (?,?,?,?,CAST(? AS INTEGER),?)",
                   l->key.owner, l->key.name, user, list, ts, mac, NULL);
    if (!rc)
        rc = reply_key(x, &l->key);
out:
    free(l);
    json_decref(b);
    return rc;
}

mt_status transit_grant_revoke(core_ctx *x)
{
    char seg[160];
    tlookup *l = NULL;
    mt_status rc = key_request(x, seg, NULL, &l);
    if (rc)
        return rc;
    int n = 0;
    rc = key_resolve(x, seg, NULL, 0, l);
    if (!rc)
        rc = store_run(x->db, x->err, &n,
                       "DELETE FROM transit_grants WHERE owner=? AND name=? AND grantee=?",
                       l->key.owner, l->key.name, x->id, NULL);
    if (!rc && n == 0)
        rc = mt_err_set(x->err, MT_ENOTFOUND, "that user has no grant on this key");
    if (!rc)
        rc = reply_key(x, &l->key);
    free(l);
    return rc;
}

/* ---- encryption ------------------------------------------------------------------------- */

/* One batch request being served: its body, parsed items, resolved key, the results array
 * and the first failure (what a single-item request answers with). */
typedef struct {
    json_t *b;
    mt_tp_batch bt;
    tlookup *l;
    json_t *results;
    size_t failed;
    mt_status first_rc;
    char first_msg[MT_ERR_MSG_MAX];
} tbatch;

/* Parses the body of a batch request (only the `allowed` fields) into t; t is always
 * initialised, so batch_free(t) is safe after any outcome. */
static mt_status batch_open(core_ctx *x, const char *const *allowed, tbatch *t)
{
    memset(t, 0, sizeof *t);
    mt_status rc = body_parse(x, &t->b);
    if (rc)
        return rc;
    t->l = malloc(sizeof *t->l);
    t->results = json_array();
    if (!t->l || !t->results)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    return mt_json_only_keys(t->b, allowed, x->err);
}

static void batch_free(tbatch *t)
{
    json_decref(t->results);
    mt_tp_batch_free(&t->bt);
    free(t->l);
    json_decref(t->b);
}

/* Starts item `it`'s result object (with its reference) in t->results; clears *e. */
static json_t *item_begin(tbatch *t, const mt_tp_item *it, mt_err *e)
{
    json_t *res = json_object();
    json_object_set_new(res, "reference", json_string(it->reference));
    json_array_append_new(t->results, res);
    mt_err_clear(e);
    return res;
}

/* Records an item's error into its result. */
static void item_fail(tbatch *t, json_t *res, const mt_err *e)
{
    if (!t->failed) {
        t->first_rc = e->code ? e->code : MT_EINVAL;
        snprintf(t->first_msg, sizeof t->first_msg, "%s", e->msg);
    }
    t->failed++;
    json_object_set_new(res, "error", json_string(e->msg));
}

/* Answers a batch: 400 when any item failed (Vault's default), with every
 * result; single requests answer their first result's data or error. Takes t->results. */
static mt_status batch_reply(core_ctx *x, tbatch *t)
{
    json_t *results = t->results;
    t->results = NULL;
    if (!t->bt.batch) {
        json_t *r = json_incref(json_array_get(results, 0));
        json_decref(results);
        if (t->failed) {
            json_decref(r);
            return mt_err_set(x->err, t->first_rc, "%s", t->first_msg);
        }
        json_object_del(r, "reference");
        vault_reply(x, 200, r);
        return MT_OK;
    }
    vault_reply(x, t->failed ? 400 : 200, json_pack("{s:o}", "batch_results", results));
    if (t->failed) {
        json_t *errs = json_array();
        json_array_append_new(errs, json_string("one or more batch items failed; see "
                                                "batch_results"));
        json_object_set_new(x->resp->json, "errors", errs);
        json_object_set_new(x->resp->json, "error",
                            json_pack("{s:s, s:s}", "code", mt_status_name(t->first_rc),
                                      "message",
                                      "one or more batch items failed; see batch_results"));
    }
    return MT_OK;
}

/* Sets res[field] to `b` in Vault's vault:vN: form and res.key_version to v. */
static void put_versioned(json_t *res, const char *field, uint32_t v, const uint8_t *b, size_t n,
                          bool url)
{
    char *s = mt_tp_vault_format(v, b, n, url);
    json_object_set_new(res, field, json_string(s ? s : ""));
    json_object_set_new(res, "key_version", json_integer(v));
    free(s);
}

/* Sets res.plaintext to base64(p); the temporary encoding is wiped. */
static void put_plaintext(json_t *res, const uint8_t *p, size_t n)
{
    char *s = mt_b64_encode(p, n);
    json_object_set_new(res, "plaintext", json_string(s ? s : ""));
    if (s)
        mt_wipe(s, strlen(s));
    free(s);
}

/* Checks the version `v` named by an item's ciphertext or signature (`what`) against k. */
static mt_status data_version_check(const tkey_row *k, const char *what, uint32_t v, mt_err *e)
{
    if (v > k->latest)
        return mt_err_set(e, MT_EINVAL, "%s version %u does not exist", what, (unsigned)v);
    if (v < k->min_dec)
        return mt_err_set(e, MT_EINVAL, "%s version %u is disallowed by policy (too old)", what,
                          (unsigned)v);
    return MT_OK;
}

/* The key version an item encrypts/signs/MACs with: `req`, or k's latest when 0. */
static mt_status use_version(const tkey_row *k, uint32_t req, uint32_t *v, mt_err *e)
{
    *v = req ? req : k->latest;
    if (*v > k->latest)
        return mt_err_set(e, MT_EINVAL, "key version %u does not exist", (unsigned)*v);
    if (*v < k->min_enc || *v < k->min_dec)
        return mt_err_set(e, MT_EINVAL,
                          "key version %u is below the key's minimum encryption version",
                          (unsigned)*v);
    return MT_OK;
}

/* The key an item uses: `base` itself, or for a derived key the key of the item's context
 * (*tmp, which the caller frees). */
static mt_status item_key(const tkey_row *k, const mt_tp_item *it, const mt_tk_key *base,
                          const mt_tk_key **use, mt_tk_key **tmp, mt_err *e)
{
    *tmp = NULL;
    *use = base;
    if (!k->derived)
        return it->ctx ? mt_err_set(e, MT_EINVAL, "field 'context': this key is not derived")
                       : MT_OK;
    if (!it->ctx)
        return mt_err_set(e, MT_EINVAL, "field 'context': required, this key is derived");
    mt_status r = mt_tk_derive(base, it->ctx, it->ctx_len, tmp, e);
    if (!r)
        *use = *tmp;
    return r;
}

typedef enum { CRYPT_ENC, CRYPT_DEC, CRYPT_REWRAP } crypt_op;

static mt_status crypt_handle(core_ctx *x, crypt_op op)
{
    char seg[160];
    if (!path_seg(x, 1, seg, sizeof seg))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    static const char *const opname[] = {"encrypt", "decrypt", "rewrap"};
    static const mt_tp_op tpop[] = {MT_TP_ENCRYPT, MT_TP_DECRYPT, MT_TP_REWRAP};
    static const char *const allowed[] = {"plaintext", "ciphertext", "context", "nonce",
                                          "key_version", "batch_input", "type",
                                          "convergent_encryption", "associated_data",
                                          "partial_failure_response_code", "reference", NULL};
    tbatch t;
    mt_status rc = batch_open(x, allowed, &t);
    tlookup *l = t.l;
    if (rc || (rc = mt_tp_batch_parse(t.b, tpop[op], &t.bt, x->err)) ||
        (rc = key_resolve(x, seg, opname[op], 0, l)))
        goto out;
    if (!mt_tk_type_encrypts(l->key.type)) {
        rc = mt_err_set(x->err, MT_EINVAL, "a %s key does not support %s",
                        mt_tk_type_name(l->key.type), opname[op]);
        goto out;
    }
    for (size_t i = 0; i < t.bt.n; i++) {
        mt_tp_item *it = &t.bt.items[i];
        mt_err e;
        json_t *res = item_begin(&t, it, &e);
        uint8_t *pt = NULL, *ct = NULL;
        size_t ptl = 0, ctl = 0;
        const mt_tk_key *key = NULL;
        mt_tk_key *dk = NULL;
        mt_status r = MT_OK;
        tkey_row *k = &l->key;
        if (op != CRYPT_ENC) {
            uint32_t v = it->data_version;
            r = data_version_check(k, "ciphertext", v, &e);
            if (!r && (r = key_version(x, seg, opname[op], v, l)))
                e = *x->err;
            if (!r && (r = tstore_cached_key(x->core, &l->ver, k->type, &key, &e)) == MT_OK &&
                (r = item_key(k, it, key, &key, &dk, &e)) == MT_OK)
                r = mt_tk_decrypt(key, it->data, it->len, it->aad, it->aad_len, &pt, &ptl, &e);
            mt_tk_key_free(dk);
            dk = NULL;
            if (r == MT_ECRYPTO)
                mt_err_set(&e, MT_ECRYPTO, "decryption failed");
        } else {
            pt = it->data;
            ptl = it->len;
        }
        if (!r && op != CRYPT_DEC) {
            uint32_t v = 0;
            r = use_version(k, it->key_version, &v, &e);
            if (!r && (r = key_version(x, seg, opname[op], v, l)))
                e = *x->err;
            if (!r && (r = tstore_cached_key(x->core, &l->ver, k->type, &key, &e)) == MT_OK &&
                (r = item_key(k, it, key, &key, &dk, &e)) == MT_OK)
                r = k->convergent ? mt_tk_encrypt_convergent(key, it->ctx, it->ctx_len, pt, ptl,
                                                             it->aad, it->aad_len, &ct, &ctl, &e)
                                  : mt_tk_encrypt(key, pt, ptl, it->aad, it->aad_len, &ct, &ctl,
                                                  &e);
            mt_tk_key_free(dk);
            if (!r)
                put_versioned(res, "ciphertext", v, ct, ctl, false);
        } else if (!r) {
            put_plaintext(res, pt, ptl);
        }
        if (pt != it->data)
            mt_secmem_free(pt);
        free(ct);
        if (r)
            item_fail(&t, res, &e);
    }
    rc = batch_reply(x, &t);
out:
    batch_free(&t);
    return rc;
}

mt_status transit_encrypt(core_ctx *x)
{
    return crypt_handle(x, CRYPT_ENC);
}

mt_status transit_decrypt(core_ctx *x)
{
    return crypt_handle(x, CRYPT_DEC);
}

mt_status transit_rewrap(core_ctx *x)
{
    return crypt_handle(x, CRYPT_REWRAP);
}

mt_status transit_datakey(core_ctx *x)
{
    char kind[16], seg[160];
    json_t *b = NULL;
    if (!path_seg(x, 1, kind, sizeof kind) || !path_seg(x, 2, seg, sizeof seg))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    bool plain = !strcmp(kind, "plaintext");
    if (!plain && strcmp(kind, "wrapped") != 0)
        return mt_err_set(x->err, MT_EINVAL, "the data key kind is 'plaintext' or 'wrapped'");
    mt_status rc = body_parse(x, &b);
    if (rc)
        return rc;
    static const char *const allowed[] = {"bits", "context", "nonce", "key_version",
                                          "associated_data", NULL};
    tlookup *l = malloc(sizeof *l);
    int64_t bits = 256;
    const char *ctx = NULL, *nonce = NULL, *aad_s = NULL;
    uint8_t dk[64], *ct = NULL, *aad = NULL;
    size_t ctl = 0, aadl = 0;
    const mt_tk_key *key = NULL;
    mt_tk_key *derived = NULL;
    mt_tp_item it;
    memset(&it, 0, sizeof it);
    if (!l) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = mt_json_int_opt(b, "bits", 128, 512, &bits, 256, x->err)) ||
        (rc = mt_json_str_opt(b, "context", 8192, &ctx, "", x->err)) ||
        (rc = mt_json_str_opt(b, "nonce", 4096, &nonce, "", x->err)) ||
        (rc = mt_json_str_opt(b, "associated_data", 1u << 20, &aad_s, NULL, x->err)))
        goto out;
    if (bits != 128 && bits != 256 && bits != 512) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'bits': 128, 256 or 512");
        goto out;
    }
    if (nonce[0]) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "field 'nonce': not taken; convergent keys derive their nonce");
        goto out;
    }
    if (ctx[0] &&
        (rc = mt_tp_b64("context", ctx, MT_TP_CONTEXT_MAX, true, &it.ctx, &it.ctx_len, x->err)))
        goto out;
    if (aad_s && (rc = mt_tp_b64("associated_data", aad_s, 1u << 19, false, &aad, &aadl, x->err)))
        goto out;
    if ((rc = key_resolve(x, seg, "datakey", 0, l)))
        goto out;
    if (!mt_tk_type_encrypts(l->key.type)) {
        rc = mt_err_set(x->err, MT_EINVAL, "a %s key does not support datakey",
                        mt_tk_type_name(l->key.type));
        goto out;
    }
    if (l->key.min_enc > l->key.latest || !l->has_ver) {
        rc = mt_err_set(x->err, MT_EINTERNAL, "latest key version missing");
        goto out;
    }
    size_t n = (size_t)bits / 8;
    if ((rc = mt_random(dk, n, x->err)) ||
        (rc = tstore_cached_key(x->core, &l->ver, l->key.type, &key, x->err)) ||
        (rc = item_key(&l->key, &it, key, &key, &derived, x->err)) ||
        (rc = mt_tk_encrypt(key, dk, n, aad, aadl, &ct, &ctl, x->err)))
        goto out;
    json_t *d = json_object();
    put_versioned(d, "ciphertext", l->ver.version, ct, ctl, false);
    if (plain) {
        put_plaintext(d, dk, n);
    }
    vault_reply(x, 200, d);
out:
    mt_wipe(dk, sizeof dk);
    mt_tk_key_free(derived);
    mt_secmem_free(it.ctx);
    free(ct);
    free(aad);
    free(l);
    json_decref(b);
    return rc;
}

/* ---- signatures, HMACs -------------------------------------------------------------------- */

typedef enum { SIG_SIGN, SIG_VERIFY, SIG_HMAC } sig_op;

static mt_status sig_handle(core_ctx *x, sig_op op)
{
    char seg[160], palg[32] = "";
    if (!path_seg(x, 1, seg, sizeof seg))
        return mt_err_set(x->err, MT_EINVAL, "invalid key name");
    bool has_palg = path_seg(x, 2, palg, sizeof palg);
    static const char *const opname[] = {"sign", "verify", "hmac"};
    static const mt_tp_op tpop[] = {MT_TP_SIGN, MT_TP_VERIFY, MT_TP_HMAC};
    static const char *const allowed[] = {
        "name", "input", "key_version", "hash_algorithm", "algorithm", "context", "prehashed",
        "signature_algorithm", "marshaling_algorithm", "batch_input", "signature", "hmac",
        "salt_length", "reference", NULL};
    tbatch t;
    const char *hs = NULL, *hs2 = NULL, *sas = NULL, *ms = NULL, *salt = NULL;
    bool prehashed = false;
    mt_tk_hash h = MT_TH_SHA2_256;
    mt_tk_sigalg sa = MT_TS_DEFAULT;
    mt_tk_marshal m = MT_TM_ASN1;
    mt_status rc = batch_open(x, allowed, &t);
    json_t *b = t.b;
    tlookup *l = t.l;
    if (rc || (rc = mt_json_str_opt(b, "hash_algorithm", 32, &hs, NULL, x->err)) ||
        (rc = mt_json_str_opt(b, "algorithm", 32, &hs2, NULL, x->err)) ||
        (rc = mt_json_str_opt(b, "signature_algorithm", 32, &sas, NULL, x->err)) ||
        (rc = mt_json_str_opt(b, "marshaling_algorithm", 32, &ms, NULL, x->err)) ||
        (rc = mt_json_str_opt(b, "salt_length", 32, &salt, NULL, x->err)) ||
        (rc = mt_json_bool_opt(b, "prehashed", &prehashed, false, x->err)))
        goto out;
    const char *alg = has_palg ? palg : hs ? hs : hs2;
    if (alg && !mt_tk_hash_parse(alg, &h)) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "unknown hash algorithm; use sha2-224, sha2-256, sha2-384, sha2-512, "
                        "sha3-224, sha3-256, sha3-384 or sha3-512");
        goto out;
    }
    if (sas && !mt_tk_sigalg_parse(sas, &sa)) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'signature_algorithm': use pss or pkcs1v15");
        goto out;
    }
    if (ms && !mt_tk_marshal_parse(ms, &m)) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'marshaling_algorithm': use asn1 or jws");
        goto out;
    }
    if (salt && strcmp(salt, "auto") != 0) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'salt_length': only 'auto' is supported");
        goto out;
    }
    if ((rc = mt_tp_batch_parse(b, tpop[op], &t.bt, x->err)) ||
        (rc = key_resolve(x, seg, opname[op], 0, l)))
        goto out;
    tkey_row *k = &l->key;
    if (op != SIG_HMAC && !mt_tk_type_signs(k->type)) {
        /* verify of an HMAC works with every type */
        bool all_hmac = op == SIG_VERIFY;
        for (size_t i = 0; all_hmac && i < t.bt.n; i++)
            all_hmac = t.bt.items[i].is_hmac;
        if (!all_hmac) {
            rc = mt_err_set(x->err, MT_EINVAL, "a %s key does not support signing",
                            mt_tk_type_name(k->type));
            goto out;
        }
    }
    for (size_t i = 0; i < t.bt.n; i++) {
        mt_tp_item *it = &t.bt.items[i];
        mt_err e;
        json_t *res = item_begin(&t, it, &e);
        mt_status r = MT_OK;
        const mt_tk_key *key = NULL;
        uint32_t v = 0;
        uint8_t *sig = NULL;
        size_t sl = 0;
        if (op == SIG_VERIFY) {
            bool url = !it->is_hmac && m == MT_TM_JWS;
            r = mt_tp_vault_parse(it->is_hmac ? "hmac" : "signature", it->sig_text, url, &v,
                                  &sig, &sl, &e);
            if (!r)
                r = data_version_check(k, "signature", v, &e);
        } else {
            r = use_version(k, it->key_version, &v, &e);
        }
        if (!r && (r = key_version(x, seg, opname[op], v, l)))
            e = *x->err;
        if (!r)
            r = tstore_cached_key(x->core, &l->ver, k->type, &key, &e);
        if (!r && (op == SIG_HMAC || (op == SIG_VERIFY && it->is_hmac))) {
            uint8_t mac[64];
            size_t ml = 0;
            r = mt_tk_hmac(key, h, it->data, it->len, mac, &ml, &e);
            if (!r && op == SIG_HMAC) {
                put_versioned(res, "hmac", v, mac, ml, false);
            } else if (!r) {
                bool ok = sl == ml && mt_ct_equal(sig, mac, ml);
                json_object_set_new(res, "valid", json_boolean(ok));
            }
        } else if (!r && op == SIG_SIGN) {
            r = mt_tk_sign(key, h, prehashed, sa, m, it->data, it->len, &sig, &sl, &e);
            if (!r)
                put_versioned(res, "signature", v, sig, sl, m == MT_TM_JWS);
        } else if (!r) {
            bool ok = false;
            r = mt_tk_verify(key, h, prehashed, sa, m, it->data, it->len, sig, sl, &ok, &e);
            if (!r)
                json_object_set_new(res, "valid", json_boolean(ok));
        }
        free(sig);
        if (r)
            item_fail(&t, res, &e);
    }
    rc = batch_reply(x, &t);
out:
    batch_free(&t);
    return rc;
}

mt_status transit_sign(core_ctx *x)
{
    return sig_handle(x, SIG_SIGN);
}

mt_status transit_verify(core_ctx *x)
{
    return sig_handle(x, SIG_VERIFY);
}

mt_status transit_hmac(core_ctx *x)
{
    return sig_handle(x, SIG_HMAC);
}

/* ---- random, hash ------------------------------------------------------------------------- */

static mt_status out_format(core_ctx *x, const json_t *b, const char *dflt, bool *hex)
{
    const char *f = NULL;
    mt_status rc = mt_json_str_opt(b, "format", 16, &f, dflt, x->err);
    if (rc)
        return rc;
    if (strcmp(f, "hex") && strcmp(f, "base64"))
        return mt_err_set(x->err, MT_EINVAL, "field 'format': use hex or base64");
    *hex = !strcmp(f, "hex");
    return MT_OK;
}

static json_t *encode_out(const uint8_t *b, size_t n, bool hex)
{
    char *s = hex ? malloc(2 * n + 1) : mt_b64_encode(b, n);
    if (!s)
        return NULL;
    if (hex)
        mt_hex_encode(b, n, s);
    json_t *j = json_string(s);
    free(s);
    return j;
}

mt_status transit_random(core_ctx *x)
{
    char pseg[16] = "";
    bool has_p = path_seg(x, 1, pseg, sizeof pseg);
    json_t *b = NULL;
    mt_status rc = body_parse(x, &b);
    if (rc)
        return rc;
    static const char *const allowed[] = {"bytes", "format", "source", NULL};
    int64_t n = 32;
    bool hex = false;
    uint8_t *buf = NULL;
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = mt_json_int_opt(b, "bytes", 1, TRANSIT_RANDOM_MAX, &n, 32, x->err)) ||
        (rc = out_format(x, b, "base64", &hex)))
        goto out;
    if (has_p && !dec_u63(pseg, strlen(pseg), &n)) {
        rc = mt_err_set(x->err, MT_EINVAL, "the path's byte count is not a number");
        goto out;
    }
    if (n < 1 || n > TRANSIT_RANDOM_MAX) {
        rc = mt_err_set(x->err, MT_EINVAL, "bytes: 1 to %d", TRANSIT_RANDOM_MAX);
        goto out;
    }
    if (!(buf = malloc((size_t)n))) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = mt_tk_random(buf, (size_t)n, x->err)))
        goto out;
    vault_reply(x, 200, json_pack("{s:o}", "random_bytes", encode_out(buf, (size_t)n, hex)));
    core_set_object(x, "transit", "random");
out:
    if (buf)
        mt_wipe(buf, (size_t)n);
    free(buf);
    json_decref(b);
    return rc;
}

mt_status transit_hash(core_ctx *x)
{
    char palg[32] = "";
    bool has_p = path_seg(x, 1, palg, sizeof palg);
    json_t *b = NULL;
    mt_status rc = body_parse(x, &b);
    if (rc)
        return rc;
    static const char *const allowed[] = {"input", "algorithm", "format", NULL};
    const char *in = NULL, *alg = NULL;
    bool hex = true;
    uint8_t *data = NULL, out[64];
    size_t dl = 0, ol = 0;
    mt_tk_hash h = MT_TH_SHA2_256;
    if ((rc = mt_json_only_keys(b, allowed, x->err)) ||
        (rc = mt_json_str(b, "input", SIZE_MAX / 2, &in, x->err)) ||
        (rc = mt_json_str_opt(b, "algorithm", 32, &alg, "sha2-256", x->err)) ||
        (rc = out_format(x, b, "hex", &hex)))
        goto out;
    if (has_p)
        alg = palg;
    if (!mt_tk_hash_parse(alg, &h) || h == MT_TH_NONE) {
        rc = mt_err_set(x->err, MT_EINVAL,
                        "unknown hash algorithm; use sha2-224, sha2-256, sha2-384, sha2-512, "
                        "sha3-224, sha3-256, sha3-384 or sha3-512");
        goto out;
    }
    if ((rc = mt_tp_b64("input", in, 1u << 26, true, &data, &dl, x->err)) ||
        (rc = mt_tk_digest(h, data, dl, out, &ol, x->err)))
        goto out;
    vault_reply(x, 200, json_pack("{s:o}", "sum", encode_out(out, ol, hex)));
    core_set_object(x, "transit", "hash");
out:
    mt_secmem_free(data);
    json_decref(b);
    return rc;
}

/* ---- for transit_ext.c (transit_ext.h) ------------------------------------------------ */

bool transit_x_seg(core_ctx *x, unsigned n, char *out, size_t cap)
{
    return path_seg(x, n, out, cap);
}

mt_status transit_x_body(core_ctx *x, json_t **out)
{
    return body_parse(x, out);
}

void transit_x_reply(core_ctx *x, int status, json_t *data)
{
    vault_reply(x, status, data);
}

mt_status transit_x_resolve(core_ctx *x, const char *seg, const char *op, uint32_t version,
                            tlookup *l)
{
    return key_resolve(x, seg, op, version, l);
}

mt_status transit_x_reply_key(core_ctx *x, const tkey_row *k)
{
    return reply_key(x, k);
}
