/* transit_store: rows, MACs, KEK wrapping and the unwrapped-key cache of the
 * transit API (contract: transit_core.h, transit_store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_secmem.h"
#include "transit_core.h"
#include "transit_store.h"

/* ---- MACs ----------------------------------------------------------------- */

static mt_status mac_json(mt_core *c, const char *domain, json_t *arr, char out[65], mt_err *err)
{
    if (!arr)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char *text = json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(arr);
    if (!text)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = integ_mac_text(c->integ_key, domain, text, out, err);
    free(text);
    return rc;
}

mt_status tstore_key_mac(mt_core *c, const tkey_row *k, char out[65], mt_err *err)
{
    json_t *a = json_pack("[s,s,s,I,I,I,b,b,b,b,I,I]", k->owner, k->name,
                          mt_tk_type_name(k->type), (json_int_t)k->latest, (json_int_t)k->min_dec,
                          (json_int_t)k->min_enc, k->deletion_allowed, k->exportable, k->imported,
                          k->allow_rotation, (json_int_t)k->created_at, (json_int_t)k->updated_at);
    /* The columns of migration 10 are MACed only when one differs from its
     * default, so that the MACs of rows written before it stay valid; a row
     * whose new columns are changed (either way) no longer verifies. */
    if (a && (k->allow_plaintext_backup || k->derived || k->convergent || k->min_avail)) {
        json_t *more = json_pack("[b,b,b,I]", k->allow_plaintext_backup, k->derived,
                                 k->convergent, (json_int_t)k->min_avail);
        if (!more || json_array_extend(a, more)) {
            json_decref(a);
            a = NULL;
        }
        json_decref(more);
    }
    return mac_json(c, "transit-key", a, out, err);
}

mt_status tstore_version_mac(mt_core *c, const char *owner, const char *name, uint32_t version,
                             const uint8_t *wrapped, size_t wl, uint32_t kek_version,
                             const char *pub, int64_t created_at, char out[65], mt_err *err)
{
    char *hex = malloc(2 * wl + 1);
    if (!hex)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_hex_encode(wrapped, wl, hex);
    mt_status rc = mac_json(c, "transit-key-version",
                            json_pack("[s,s,I,s,I,s,I]", owner, name, (json_int_t)version, hex,
                                      (json_int_t)kek_version, pub, (json_int_t)created_at),
                            out, err);
    free(hex);
    return rc;
}

mt_status tstore_grant_mac(mt_core *c, const char *owner, const char *name, const char *grantee,
                           const char *ops, int64_t created_at, char out[65], mt_err *err)
{
    return mac_json(c, "transit-grant",
                    json_pack("[s,s,s,s,I]", owner, name, grantee, ops, (json_int_t)created_at),
                    out, err);
}

size_t transit_version_aad(const char *owner, const char *name, uint32_t version,
                           uint8_t out[200])
{
    int n = snprintf((char *)out, 200, "transit-keys/v1%c%s%c%s%c%u", 0, owner, 0, name, 0,
                     (unsigned)version);
    return n < 0 ? 0 : n >= 200 ? 199 : (size_t)n;
}

/* ---- the cache of unwrapped keys ------------------------------------------- */

#define TCACHE_N 64

typedef struct tcache_ent {
    char mac[65]; /* the version row's MAC: binds owner, name, version, blob */
    char owner[65], name[65]; /* whose key (tstore_cache_forget) */
    mt_tk_key *key;
    uint64_t used;
} tcache_ent;

struct transit_cache {
    tcache_ent e[TCACHE_N];
    uint64_t tick;
};

void transit_cache_free(mt_core *c)
{
    if (!c || !c->transit)
        return;
    for (size_t i = 0; i < TCACHE_N; i++)
        mt_tk_key_free(c->transit->e[i].key);
    mt_wipe(c->transit, sizeof *c->transit);
    free(c->transit);
    c->transit = NULL;
}

/* Opens `wrapped` (sealed under KEK version `kek_version` with `aad`) into a key of `type`;
 * a failed open or a bad material is an integrity failure naming `what`. */
static mt_status kek_open(mt_core *c, uint32_t kek_version, const uint8_t *aad, size_t al,
                          const uint8_t *wrapped, size_t wl, mt_tk_type type, const char *what,
                          mt_tk_key **out, mt_err *err)
{
    *out = NULL;
    uint8_t kek[32];
    mt_status rc = core_kek(c, TRANSIT_KEK_PURPOSE, kek_version, kek, NULL, err);
    if (rc)
        return rc;
    uint8_t *m = NULL;
    size_t ml = 0;
    rc = mt_tk_open(kek, aad, al, wrapped, wl, &m, &ml, err);
    mt_wipe(kek, sizeof kek);
    if (rc)
        return integ_fail(err, what);
    rc = mt_tk_key_from_material(type, m, ml, out, err);
    mt_secmem_free(m);
    if (rc)
        return integ_fail(err, what);
    return MT_OK;
}

/* Seals `key`'s material under the current KEK with `aad`; *used gets the KEK version. */
static mt_status kek_seal(mt_core *c, const mt_tk_key *key, const uint8_t *aad, size_t al,
                          uint8_t **w, size_t *wl, uint32_t *used, mt_err *err)
{
    uint8_t *m = NULL, kek[32];
    size_t ml = 0;
    mt_status rc = mt_tk_key_material(key, &m, &ml, err);
    if (!rc)
        rc = core_kek(c, TRANSIT_KEK_PURPOSE, 0, kek, used, err);
    if (!rc) {
        rc = mt_tk_seal(kek, aad, al, m, ml, w, wl, err);
        mt_wipe(kek, sizeof kek);
    }
    mt_secmem_free(m);
    return rc;
}

/* Unwraps a version row's key (no cache). */
static mt_status version_unwrap(mt_core *c, const char *owner, const char *name, uint32_t version,
                                mt_tk_type type, const uint8_t *wrapped, size_t wl,
                                uint32_t kek_version, mt_tk_key **out, mt_err *err)
{
    uint8_t aad[200];
    size_t al = transit_version_aad(owner, name, version, aad);
    return kek_open(c, kek_version, aad, al, wrapped, wl, type, "transit key", out, err);
}

/* The key of version row `v` from the cache (by its MAC and type), else opened from `v` with
 * `aad` (a failure names `what`) and cached in place of the least recently used entry. */
static mt_status cache_get(mt_core *c, const tver_row *v, mt_tk_type type, const uint8_t *aad,
                           size_t al, const char *what, const mt_tk_key **out, mt_err *err)
{
    *out = NULL;
    if (!c->transit && !(c->transit = calloc(1, sizeof *c->transit)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    struct transit_cache *tc = c->transit;
    tc->tick++;
    size_t victim = 0;
    for (size_t i = 0; i < TCACHE_N; i++) {
        if (tc->e[i].key && integ_hex_equal(tc->e[i].mac, v->mac) &&
            mt_tk_key_type(tc->e[i].key) == type) {
            tc->e[i].used = tc->tick;
            *out = tc->e[i].key;
            return MT_OK;
        }
        if (tc->e[i].used < tc->e[victim].used)
            victim = i;
    }
    mt_tk_key *k = NULL;
    mt_status rc = kek_open(c, v->kek_version, aad, al, v->wrapped, v->wrapped_len, type, what,
                            &k, err);
    if (rc)
        return rc;
    mt_tk_key_free(tc->e[victim].key);
    tc->e[victim].key = k;
    snprintf(tc->e[victim].mac, sizeof tc->e[victim].mac, "%s", v->mac);
    snprintf(tc->e[victim].owner, sizeof tc->e[victim].owner, "%s", v->owner);
    snprintf(tc->e[victim].name, sizeof tc->e[victim].name, "%s", v->name);
    tc->e[victim].used = tc->tick;
    *out = k;
    return MT_OK;
}

mt_status tstore_cached_key(mt_core *c, const tver_row *v, mt_tk_type type, const mt_tk_key **out,
                            mt_err *err)
{
    uint8_t aad[200];
    size_t al = transit_version_aad(v->owner, v->name, v->version, aad);
    return cache_get(c, v, type, aad, al, "transit key", out, err);
}

void tstore_cache_forget(mt_core *c, const char *owner, const char *name)
{
    for (size_t i = 0; c->transit && i < TCACHE_N; i++) {
        tcache_ent *e = &c->transit->e[i];
        if (e->key && !strcmp(e->owner, owner) && !strcmp(e->name, name)) {
            mt_tk_key_free(e->key);
            memset(e, 0, sizeof *e);
        }
    }
}

/* ---- rows ------------------------------------------------------------------------ */

#define KEY_COLS                                                                              \
    "k.owner, k.name, k.type, k.latest_version, k.min_decryption_version, "                   \
    "k.min_encryption_version, k.deletion_allowed, k.exportable, k.imported, "                \
    "k.allow_rotation, k.created_at, k.updated_at, k.mac, k.allow_plaintext_backup, "      \
    "k.derived, k.convergent_encryption, k.min_available_version"
#define KEY_NCOLS 17

static void key_from_stmt(mt_db_stmt *st, int o, tkey_row *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->owner, sizeof k->owner, "%s", mt_db_col_text(st, o));
    snprintf(k->name, sizeof k->name, "%s", mt_db_col_text(st, o + 1));
    k->type = mt_tk_type_parse(mt_db_col_text(st, o + 2));
    k->latest = (uint32_t)mt_db_col_int64(st, o + 3);
    k->min_dec = (uint32_t)mt_db_col_int64(st, o + 4);
    k->min_enc = (uint32_t)mt_db_col_int64(st, o + 5);
    k->deletion_allowed = (int)mt_db_col_int64(st, o + 6) != 0;
    k->exportable = (int)mt_db_col_int64(st, o + 7) != 0;
    k->imported = (int)mt_db_col_int64(st, o + 8) != 0;
    k->allow_rotation = (int)mt_db_col_int64(st, o + 9) != 0;
    k->created_at = mt_db_col_int64(st, o + 10);
    k->updated_at = mt_db_col_int64(st, o + 11);
    snprintf(k->mac, sizeof k->mac, "%s", mt_db_col_text(st, o + 12));
    k->allow_plaintext_backup = (int)mt_db_col_int64(st, o + 13) != 0;
    k->derived = (int)mt_db_col_int64(st, o + 14) != 0;
    k->convergent = (int)mt_db_col_int64(st, o + 15) != 0;
    k->min_avail = (uint32_t)mt_db_col_int64(st, o + 16);
}

static mt_status key_check(mt_core *c, const tkey_row *k, mt_err *err)
{
    char mac[65];
    mt_status rc = tstore_key_mac(c, k, mac, err);
    if (rc)
        return rc;
    if (k->type == MT_TK_NONE || !integ_hex_equal(mac, k->mac))
        return integ_fail(err, "transit key");
    return MT_OK;
}

static mt_status version_from_stmt(mt_core *c, mt_db_stmt *st, int o, const tkey_row *k,
                                   tver_row *v, mt_err *err)
{
    memset(v, 0, sizeof *v);
    snprintf(v->owner, sizeof v->owner, "%s", k->owner);
    snprintf(v->name, sizeof v->name, "%s", k->name);
    v->version = (uint32_t)mt_db_col_int64(st, o);
    size_t wl = 0;
    const void *w = mt_db_col_blob(st, o + 1, &wl);
    if (wl > sizeof v->wrapped)
        return integ_fail(err, "transit key");
    if (wl)
        memcpy(v->wrapped, w, wl);
    v->wrapped_len = wl;
    v->kek_version = (uint32_t)mt_db_col_int64(st, o + 2);
    snprintf(v->public_key, sizeof v->public_key, "%s", mt_db_col_text(st, o + 3));
    v->created_at = mt_db_col_int64(st, o + 4);
    snprintf(v->mac, sizeof v->mac, "%s", mt_db_col_text(st, o + 5));
    char mac[65];
    mt_status rc = tstore_version_mac(c, v->owner, v->name, v->version, v->wrapped,
                                      v->wrapped_len, v->kek_version, v->public_key,
                                      v->created_at, mac, err);
    if (rc)
        return rc;
    if (!integ_hex_equal(mac, v->mac))
        return integ_fail(err, "transit key");
    return MT_OK;
}

mt_status tstore_lookup(mt_core *c, mt_db *db, const char *owner, const char *name,
                        uint32_t version, const char *grantee, tlookup *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    static const char sql[] =
        "SELECT " KEY_COLS ", v.version, v.wrapped, v.kek_version, v.public_key, v.created_at, "
        "v.mac, g.operations, g.created_at, g.mac FROM transit_keys k "
        "LEFT JOIN transit_key_versions v ON v.owner = k.owner AND v.name = k.name AND "
        "v.version = (CASE WHEN ?3 = 0 THEN k.latest_version ELSE ?3 END) "
        "LEFT JOIN transit_grants g ON g.owner = k.owner AND g.name = k.name AND g.grantee = ?4 "
        "WHERE k.owner = ?1 AND k.name = ?2";
    /* kept prepared on the request connection (stmt_cache.c) */
    mt_db_stmt *st = NULL;
    mt_status rc = core_stmt_get(c, db, sql, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, owner);
    mt_db_bind_text(st, 2, name);
    mt_db_bind_int64(st, 3, version);
    mt_db_bind_text(st, 4, grantee ? grantee : "");
    int s = mt_db_step(st, &rc, err);
    if (s != MT_DB_ROW) { /* MT_DB_DONE: out->found false */
        core_stmt_put(c, st);
        return rc;
    }
    key_from_stmt(st, 0, &out->key);
    rc = key_check(c, &out->key, err);
    /* the row's own key must be the one asked for: another key's genuine
     * row (and MAC) answering this lookup would hand out that key */
    if (!rc && (strcmp(out->key.owner, owner) || strcmp(out->key.name, name)))
        rc = integ_fail(err, "transit key");
    if (!rc && !mt_db_col_null(st, KEY_NCOLS)) {
        rc = version_from_stmt(c, st, KEY_NCOLS, &out->key, &out->ver, err);
        /* and the version the one asked for (0: the verified latest) */
        if (!rc && out->ver.version != (version ? version : out->key.latest))
            rc = integ_fail(err, "transit key");
        out->has_ver = !rc;
    }
    if (!rc && !mt_db_col_null(st, KEY_NCOLS + 6)) {
        snprintf(out->grant_ops, sizeof out->grant_ops, "%s", mt_db_col_text(st, KEY_NCOLS + 6));
        int64_t gt = mt_db_col_int64(st, KEY_NCOLS + 7);
        char mac[65];
        rc = tstore_grant_mac(c, owner, name, grantee, out->grant_ops, gt, mac, err);
        if (!rc && !integ_hex_equal(mac, mt_db_col_text(st, KEY_NCOLS + 8)))
            rc = integ_fail(err, "transit grant");
        out->has_grant = !rc;
    }
    core_stmt_put(c, st);
    if (!rc)
        out->found = true;
    return rc;
}

mt_status tstore_key_write(mt_core *c, mt_db *db, tkey_row *k, bool insert, mt_err *err)
{
    mt_status rc = tstore_key_mac(c, k, k->mac, err);
    if (rc)
        return rc;
    const char *sql =
        insert ? "INSERT INTO transit_keys(type, latest_version, min_decryption_version, "
                 "min_encryption_version, deletion_allowed, exportable, imported, "
                 "allow_rotation, created_at, updated_at, mac, owner, name, "
                 "allow_plaintext_backup, derived, convergent_encryption, "
                 "min_available_version) "
                 "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
               : "UPDATE transit_keys SET type=?1, latest_version=?2, min_decryption_version=?3, "
                 "min_encryption_version=?4, deletion_allowed=?5, exportable=?6, imported=?7, "
                 "allow_rotation=?8, created_at=?9, updated_at=?10, mac=?11, "
                 "allow_plaintext_backup=?14, derived=?15, convergent_encryption=?16, "
                 "min_available_version=?17 WHERE owner=?12 AND name=?13";
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(db, sql, &st, err)))
        return rc;
    mt_db_bind_text(st, 1, mt_tk_type_name(k->type));
    mt_db_bind_int64(st, 2, k->latest);
    mt_db_bind_int64(st, 3, k->min_dec);
    mt_db_bind_int64(st, 4, k->min_enc);
    mt_db_bind_int64(st, 5, k->deletion_allowed);
    mt_db_bind_int64(st, 6, k->exportable);
    mt_db_bind_int64(st, 7, k->imported);
    mt_db_bind_int64(st, 8, k->allow_rotation);
    mt_db_bind_int64(st, 9, k->created_at);
    mt_db_bind_int64(st, 10, k->updated_at);
    mt_db_bind_text(st, 11, k->mac);
    mt_db_bind_text(st, 12, k->owner);
    mt_db_bind_text(st, 13, k->name);
    mt_db_bind_int64(st, 14, k->allow_plaintext_backup);
    mt_db_bind_int64(st, 15, k->derived);
    mt_db_bind_int64(st, 16, k->convergent);
    mt_db_bind_int64(st, 17, k->min_avail);
    mt_db_step(st, &rc, err);
    if (!rc && mt_db_changes(db) != 1)
        rc = mt_err_set(err, MT_EINTERNAL, "transit key row not written");
    mt_db_finalize(st);
    return rc;
}

mt_status tstore_version_add(mt_core *c, mt_db *db, const char *owner, const char *name,
                             uint32_t version, const mt_tk_key *key, int64_t now, mt_err *err)
{
    uint8_t *w = NULL, aad[200];
    size_t wl = 0;
    uint32_t used = 0;
    char *pub = NULL, mac[65];
    size_t al = transit_version_aad(owner, name, version, aad);
    mt_status rc = kek_seal(c, key, aad, al, &w, &wl, &used, err);
    if (!rc && wl > TSTORE_WRAPPED_MAX)
        rc = mt_err_set(err, MT_EINTERNAL, "wrapped key too large");
    if (!rc)
        rc = mt_tk_public_text(key, &pub, err);
    if (!rc)
        rc = tstore_version_mac(c, owner, name, version, w, wl, used, pub, now, mac, err);
    mt_db_stmt *st = NULL;
    if (!rc)
        rc = mt_db_prepare(db,
                           "INSERT INTO transit_key_versions(owner, name, version, wrapped, "
                           "kek_version, public_key, created_at, mac) VALUES (?,?,?,?,?,?,?,?)",
                           &st, err);
    if (!rc) {
        mt_db_bind_text(st, 1, owner);
        mt_db_bind_text(st, 2, name);
        mt_db_bind_int64(st, 3, version);
        mt_db_bind_blob(st, 4, w, wl);
        mt_db_bind_int64(st, 5, used);
        mt_db_bind_text(st, 6, pub);
        mt_db_bind_int64(st, 7, now);
        mt_db_bind_text(st, 8, mac);
        mt_db_step(st, &rc, err);
    }
    mt_db_finalize(st);
    free(w);
    free(pub);
    return rc;
}

mt_status tstore_versions(mt_core *c, mt_db *db, const tkey_row *k, tver_cb cb, void *arg,
                          mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(db,
                                 "SELECT version, wrapped, kek_version, public_key, created_at, "
                                 "mac FROM transit_key_versions WHERE owner = ? AND name = ? "
                                 "ORDER BY version",
                                 &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, k->owner);
    mt_db_bind_text(st, 2, k->name);
    tver_row *v = malloc(sizeof *v);
    if (!v)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW) {
        rc = version_from_stmt(c, st, 0, k, v, err);
        if (!rc)
            rc = cb(arg, v, err);
    }
    mt_db_finalize(st);
    free(v);
    return rc;
}

/* ---- the import wrapping key ---------------------------------------------------- */

static const char wrap_aad[] = "transit-wrapping-key/v1";

/* Seals the import wrapping key `k` under the current KEK and writes its row (MACed over
 * `pub` and `created`): a new row when `insert`, else the existing row's wrapped key. */
static mt_status wrapping_write(mt_core *c, mt_db *db, const mt_tk_key *k, const char *pub,
                                int64_t created, bool insert, mt_err *err)
{
    uint8_t *w = NULL;
    size_t wl = 0;
    uint32_t used = 0;
    char mac[65];
    mt_status rc = kek_seal(c, k, (const uint8_t *)wrap_aad, sizeof wrap_aad - 1, &w, &wl,
                            &used, err);
    if (!rc)
        rc = tstore_version_mac(c, "-", "wrapping_key", 0, w, wl, used, pub, created, mac, err);
    mt_db_stmt *st = NULL;
    if (!rc)
        rc = mt_db_prepare(db,
                           insert ? "INSERT INTO transit_wrapping_key(id, wrapped, kek_version, "
                                    "public_key, created_at, mac) VALUES (1,?,?,?,?,?)"
                                  : "UPDATE transit_wrapping_key SET wrapped = ?, "
                                    "kek_version = ?, mac = ? WHERE id = 1",
                           &st, err);
    if (!rc) {
        mt_db_bind_blob(st, 1, w, wl);
        mt_db_bind_int64(st, 2, used);
        if (insert) {
            mt_db_bind_text(st, 3, pub);
            mt_db_bind_int64(st, 4, created);
            mt_db_bind_text(st, 5, mac);
        } else {
            mt_db_bind_text(st, 3, mac);
        }
        mt_db_step(st, &rc, err);
    }
    mt_db_finalize(st);
    free(w);
    return rc;
}

/* Reads the wrapping key's row into *v after checking its MAC; *found false
 * (MT_OK) when there is none. pem_out (may be NULL) gets the public key. */
static mt_status wrapping_row(mt_core *c, mt_db *db, tver_row *v, bool *found, char **pem_out,
                              mt_err *err)
{
    *found = false;
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(db,
                                 "SELECT wrapped, kek_version, public_key, created_at, mac "
                                 "FROM transit_wrapping_key WHERE id = 1",
                                 &st, err);
    if (rc)
        return rc;
    if (mt_db_step(st, &rc, err) != MT_DB_ROW) { /* MT_DB_DONE: *found false */
        mt_db_finalize(st);
        return rc;
    }
    memset(v, 0, sizeof *v);
    snprintf(v->owner, sizeof v->owner, "-");
    snprintf(v->name, sizeof v->name, "wrapping_key");
    size_t wl = 0;
    const void *w = mt_db_col_blob(st, 0, &wl);
    if (wl == 0 || wl > sizeof v->wrapped) {
        mt_db_finalize(st);
        return integ_fail(err, "transit wrapping key");
    }
    memcpy(v->wrapped, w, wl);
    v->wrapped_len = wl;
    v->kek_version = (uint32_t)mt_db_col_int64(st, 1);
    snprintf(v->public_key, sizeof v->public_key, "%s", mt_db_col_text(st, 2));
    v->created_at = mt_db_col_int64(st, 3);
    char mac[65];
    rc = tstore_version_mac(c, "-", "wrapping_key", 0, v->wrapped, v->wrapped_len, v->kek_version,
                            v->public_key, v->created_at, mac, err);
    if (!rc && !integ_hex_equal(mac, mt_db_col_text(st, 4)))
        rc = integ_fail(err, "transit wrapping key");
    snprintf(v->mac, sizeof v->mac, "%s", mac);
    mt_db_finalize(st);
    if (rc)
        return rc;
    if (pem_out && !(*pem_out = mt_strdup(v->public_key)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    *found = true;
    return MT_OK;
}

mt_status tstore_wrapping_key(mt_core *c, mt_db *db, bool create, const mt_tk_key **out,
                              char **pem_out, mt_err *err)
{
    *out = NULL;
    if (pem_out)
        *pem_out = NULL;
    tver_row v;
    bool found = false;
    mt_status rc = wrapping_row(c, db, &v, &found, pem_out, err);
    if (!rc && found) /* the cache entry is keyed by the MAC, which binds owner "-" */
        rc = tstore_cached_key_aad(c, &v, (const uint8_t *)wrap_aad, sizeof wrap_aad - 1, out,
                                   err);
    mt_wipe(&v, sizeof v);
    if (rc || found)
        return rc;
    if (!create)
        return mt_err_set(err, MT_ENOTFOUND, "no wrapping key yet: GET /v1/transit/wrapping_key");
    /* first use: a new RSA-4096 key */
    mt_tk_key *k = NULL;
    char *pub = NULL;
    rc = mt_tk_key_generate(MT_TK_RSA_4096, &k, err);
    if (!rc)
        rc = mt_tk_public_pem(k, &pub, err);
    if (!rc)
        rc = wrapping_write(c, db, k, pub, mt_now(), true, err);
    mt_tk_key_free(k);
    free(pub);
    if (rc)
        return rc;
    return tstore_wrapping_key(c, db, false, out, pem_out, err);
}

mt_status tstore_cached_key_aad(mt_core *c, const tver_row *v, const uint8_t *aad, size_t al,
                                const mt_tk_key **out, mt_err *err)
{
    /* the import wrapping key is always RSA-4096 */
    return cache_get(c, v, MT_TK_RSA_4096, aad, al, "transit wrapping key", out, err);
}

/* ---- entry points for other modules ---------------------------------------------- */

mt_status transit_task_key_load(mt_core *c, mt_db *db, const char *owner, const char *name,
                                uint32_t version, mt_tk_key **out, uint32_t *used, mt_err *err)
{
    *out = NULL;
    tlookup *l = malloc(sizeof *l);
    if (!l)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = tstore_lookup(c, db, owner, name, version, "", l, err);
    if (!rc && (!l->found || !l->has_ver))
        rc = mt_err_set(err, MT_ENOTFOUND, "no such KeyStore key or version");
    if (!rc && l->key.min_enc && l->ver.version < l->key.min_enc)
        rc = mt_err_set(err, MT_EINVAL, "key version %u is below the key's min_encryption_version",
                        (unsigned)l->ver.version);
    if (!rc)
        rc = version_unwrap(c, owner, name, l->ver.version, l->key.type, l->ver.wrapped,
                            l->ver.wrapped_len, l->ver.kek_version, out, err);
    if (!rc && used)
        *used = l->ver.version;
    mt_wipe(l, sizeof *l);
    free(l);
    return rc;
}

/* Rewraps the import wrapping key when its kek_version is below `below`. */
static mt_status wrapping_rewrap(mt_core *c, mt_db *db, uint32_t below, unsigned *done, mt_err *err)
{
    int64_t kv = 0, created = 0;
    bool found = false;
    mt_status rc = store_int(db, err, &kv, &found,
                             "SELECT kek_version FROM transit_wrapping_key WHERE id = 1", NULL);
    if (rc || !found || kv >= (int64_t)below)
        return rc;
    /* The rewrap thread never holds core->mu: it reads the row and opens the
     * key itself, never through the request connection's key cache. */
    tver_row v;
    memset(&v, 0, sizeof v);
    mt_tk_key *wk = NULL;
    rc = wrapping_row(c, db, &v, &found, NULL, err);
    if (!rc && !found)
        rc = mt_err_set(err, MT_EINTERNAL, "transit wrapping key vanished during rewrap");
    if (!rc)
        rc = kek_open(c, v.kek_version, (const uint8_t *)wrap_aad, sizeof wrap_aad - 1, v.wrapped,
                      v.wrapped_len, MT_TK_RSA_4096, "transit wrapping key", &wk, err);
    created = v.created_at;
    if (!rc)
        rc = wrapping_write(c, db, wk, v.public_key, created, false, err);
    mt_tk_key_free(wk);
    mt_wipe(&v, sizeof v);
    if (!rc)
        (*done)++;
    return rc;
}

mt_status transit_rewrap_batch(mt_core *c, mt_db *db, uint32_t below, unsigned limit,
                               unsigned *done, mt_err *err)
{
    *done = 0;
    mt_status rc;
    mt_db_stmt *st;
    rc = mt_db_prepare(db,
                       "SELECT owner, name, version FROM transit_key_versions "
                       "WHERE kek_version < ? LIMIT ?",
                       &st, err);
    if (rc)
        return rc;
    mt_db_bind_int64(st, 1, below);
    mt_db_bind_int64(st, 2, limit);
    json_t *todo = json_array();
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW)
        json_array_append_new(todo,
                              json_pack("[s,s,I]", mt_db_col_text(st, 0), mt_db_col_text(st, 1),
                                        (json_int_t)mt_db_col_int64(st, 2)));
    mt_db_finalize(st);
    size_t i;
    json_t *it;
    json_array_foreach(todo, i, it)
    {
        if (rc)
            break;
        const char *owner = json_string_value(json_array_get(it, 0));
        const char *name = json_string_value(json_array_get(it, 1));
        uint32_t ver = (uint32_t)json_integer_value(json_array_get(it, 2));
        mt_tk_key *k = NULL;
        tlookup *l = malloc(sizeof *l);
        rc = l ? tstore_lookup(c, db, owner, name, ver, "", l, err)
               : mt_err_set(err, MT_ENOMEM, "out of memory");
        if (!rc && !l->has_ver)
            rc = mt_err_set(err, MT_EINTERNAL, "transit key version vanished during rewrap");
        if (!rc)
            rc = version_unwrap(c, owner, name, ver, l->key.type, l->ver.wrapped,
                                l->ver.wrapped_len, l->ver.kek_version, &k, err);
        int64_t created = l && !rc ? l->ver.created_at : 0;
        if (l)
            mt_wipe(l, sizeof *l);
        free(l);
        if (!rc) {
            char vs[16];
            snprintf(vs, sizeof vs, "%u", (unsigned)ver);
            rc = store_run(db, err, NULL,
                           "DELETE FROM transit_key_versions WHERE owner=? AND name=? AND "
                           "version=CAST(? AS INTEGER)",
                           owner, name, vs, NULL);
        }
        if (!rc)
            rc = tstore_version_add(c, db, owner, name, ver, k, created, err);
        mt_tk_key_free(k);
        if (!rc)
            (*done)++;
    }
    json_decref(todo);
    if (!rc && *done < limit)
        rc = wrapping_rewrap(c, db, below, done, err);
    return rc;
}
