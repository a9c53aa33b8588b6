/* kek: key-encryption keys of mt_core from the platform KeyStore
 * (src/keystore, issue 10), the wrapped-key columns of the store, and the
 * background rewrap after a rotation or a legacy import.
 *
 * At open (core_kek_open) this node asks the KeyStore (in process today)
 * for the root keys with a fresh attested identity; a build whose evidence
 * the release policy does not allow gets nothing and mt_core_open fails
 * naming its measurement. KEK(purpose, v) = HKDF(root v, purpose)
 * (mt_keyring_kek).
 *
 * Rewrap (one thread, its own connection): for every entry of
 * core_wrapped_cols, the rows whose version column is not the current
 * version are rewrapped in batches of CORE_REWRAP_BATCH, one transaction per
 * batch (key, version, the row's MAC, the progress row): a crash loses at
 * most the batch in flight, which is redone at the next pass. Rows with
 * version 0 were wrapped before the KeyStore under the measurement-bound
 * sealing key (legacy); they are rewrapped with the legacy keys this process
 * holds (the current binary's, and those an operator supplied with
 * POST /v1/admin/keystore/legacy). A root version is retired (destroyed in
 * the KeyStore) only when no row of any entry records it.
 *
 * A rewrapped file or function key changes the binding of the tasks using
 * it (bound_tasks): their approvals valid before are resealed over the
 * binding pre-image of the one read that verified them, with only the
 * rewrapped value replaced (integ_rebind_prepare before the rewrite,
 * integ_rebind_seal after it), never over a binding read again after the
 * write (the host could re-point a slot in between). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "core_internal.h"
#include "transit_core.h"
#include "mt_json.h"
#include "mt_keystore.h"
#include "mt_ks_join.h"
#include "mt_policy_sig.h"
#include "mt_keywrap.h"
#include "mt_log.h"

#define CORE_REWRAP_BATCH 64
#define MAX_LEGACY 8

struct core_kek_state {
    pthread_mutex_t mu; /* guards everything below */
    mt_keystore *ks;
    mt_keyring *kr;
    uint8_t legacy[MAX_LEGACY][32]; /* measurement-bound "file-keys/v1" keys */
    size_t n_legacy;
    pthread_t th;
    bool th_started, stop, kick, running;
    pthread_cond_t cv;
    int64_t rewrapped, stuck; /* of the last or current pass */
    char last_error[MT_ERR_MSG_MAX];
};

/* ---- the wrapped-key columns ------------------------------------------- */

static mt_status rewrite_file(mt_core *c, mt_db *db, const char *id, const void *blob, size_t len,
                              uint32_t ver, char old_hex[65], char new_hex[65], mt_err *err)
{
    integ_file_change chg = {
        .set_wrapped = true, .wrapped = blob, .wrapped_len = len, .kek_version = ver};
    /* old_hex: the MAC its read verified, new_hex: the MAC written */
    return integ_file_rewrite(c, db, id, &chg, old_hex, new_hex, err);
}

/* functions.payload_key and payload_kek_version of one function. */
static mt_status store_run_blob_key(mt_db *db, const char *id, const void *blob, size_t len,
                                    const char *ver, mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(db,
                                 "UPDATE functions SET payload_key = ?, payload_kek_version = "
                                 "CAST(? AS INTEGER) WHERE function_id = ?",
                                 &st, err);
    if (rc)
        return rc;
    mt_db_bind_blob(st, 1, blob, len);
    mt_db_bind_text(st, 2, ver);
    mt_db_bind_text(st, 3, id);
    mt_db_step(st, &rc, err);
    mt_db_finalize(st);
    return rc;
}

static mt_status rewrite_function(mt_core *c, mt_db *db, const char *id, const void *blob,
                                  size_t len, uint32_t ver, char old_hex[65], char new_hex[65],
                                  mt_err *err)
{
    /* verify the row, write the new key, reseal the verified values with it;
     * old_hex: the verified old key's SHA-256 (the binding's payload key
     * field), new_hex: the new key's */
    integ_pin *pin = NULL;
    char v[16];
    snprintf(v, sizeof v, "%u", ver);
    mt_status rc = integ_function_pin(c, db, id, &pin, err);
    if (!rc) {
        const char *d = integ_pin_digest(pin);
        snprintf(old_hex, 65, "%s", d ? d : "");
        core_sha256_hex(blob, len, new_hex);
        rc = store_run_blob_key(db, id, blob, len, v, err);
    }
    if (!rc && !(rc = integ_pin_set_key(pin, blob, len, err)))
        rc = integ_pin_seal(c, db, pin, err);
    integ_pin_free(pin);
    return rc;
}

/* transit_wrapping_key: rewrapped by transit_rewrap_batch together with the
 * key versions; this entry only counts its row for retirement. */
static mt_status no_batch(mt_core *c, mt_db *db, uint32_t below, unsigned limit, unsigned *done,
                          mt_err *err)
{
    (void)c, (void)db, (void)below, (void)limit, (void)err;
    *done = 0;
    return MT_OK;
}

const core_wrapped_col core_wrapped_cols[] = {
    {"files", "file_id", "wrapped_key", "kek_version", "file-keys", "", true, NULL, NULL,
     "SELECT DISTINCT tf.task_id FROM task_files tf JOIN tasks t ON t.task_id = tf.task_id "
     "WHERE tf.file_id = ? AND t.status NOT IN ('finished','failed','canceled') "
     "ORDER BY tf.task_id",
     NULL, rewrite_file},
    {"functions", "function_id", "payload_key", "payload_kek_version", "file-keys", "function:",
     true, NULL, NULL,
     "SELECT task_id FROM tasks WHERE function_id = ? AND status NOT IN "
     "('finished','failed','canceled') ORDER BY task_id",
     NULL, rewrite_function},
    /* the transit API's key versions and its import wrapping key (one row):
     * transit_rewrap_batch rewraps both (transit_core.h) */
    {"transit_key_versions", "owner", "wrapped", "kek_version", "transit-keys", "", false, NULL,
     NULL, NULL, transit_rewrap_batch, NULL},
    {"transit_wrapping_key", "id", "wrapped", "kek_version", "transit-keys", "", false, NULL, NULL,
     NULL, no_batch, NULL},
};
const size_t core_n_wrapped_cols = sizeof core_wrapped_cols / sizeof core_wrapped_cols[0];

/* ---- KEKs -------------------------------------------------------------- */

static bool rejoin(mt_core *c);

mt_status core_kek(mt_core *c, const char *purpose, uint32_t version, uint8_t out[32],
                   uint32_t *used, mt_err *err)
{
    if (!c || !c->kek)
        return mt_err_set(err, MT_EINVAL, "core_kek: no KeyStore");
    pthread_mutex_lock(&c->kek->mu);
    mt_status rc = mt_keyring_kek(c->kek->kr, purpose, version, out, used, err);
    pthread_mutex_unlock(&c->kek->mu);
    if (rc == MT_ENOTFOUND && version && rejoin(c)) { /* a version made after this node joined */
        pthread_mutex_lock(&c->kek->mu);
        rc = mt_keyring_kek(c->kek->kr, purpose, version, out, used, err);
        pthread_mutex_unlock(&c->kek->mu);
    }
    return rc;
}

mt_status core_wrap_key(mt_core *c, const char *aad, const uint8_t key[32], uint8_t out[61],
                        uint32_t *version, mt_err *err)
{
    uint8_t kek[32];
    uint32_t v = 0;
    mt_status rc = core_kek(c, "file-keys", 0, kek, &v, err);
    if (!rc)
        rc = mt_keywrap_seal(kek, (const uint8_t *)aad, strlen(aad), key, out, err);
    mt_wipe(kek, sizeof kek);
    if (!rc && version)
        *version = v;
    return rc;
}

/* Unwraps under the KEK of purpose at versions current first, then the
 * older live ones (all within 63 of the current: a rotation adds one and at
 * most MT_KEYSTORE_MAX_VERSIONS are live), then (legacy) the legacy keys.
 * *from receives the version that opened it (0: legacy). */
static mt_status unwrap_any(mt_core *c, const char *purpose, bool legacy, const char *aad,
                            const void *wrapped, size_t len, uint8_t out[32], uint32_t *from,
                            mt_err *err)
{
    struct core_kek_state *k = c->kek;
    if (!wrapped)
        return mt_err_set(err, MT_EINTERNAL, "no wrapped key");
    uint8_t kek[32];
    mt_err e;
    mt_status rc = MT_ECRYPTO;
    pthread_mutex_lock(&k->mu);
    uint32_t cur = mt_keyring_current(k->kr);
    for (uint32_t d = 0; rc && d < MT_KEYSTORE_MAX_VERSIONS && d < cur; d++) {
        uint32_t v = cur - d;
        if (!mt_keyring_has(k->kr, v) || mt_keyring_kek(k->kr, purpose, v, kek, NULL, &e))
            continue;
        rc = mt_keywrap_open(kek, (const uint8_t *)aad, strlen(aad), wrapped, len, out, &e);
        if (!rc && from)
            *from = v;
    }
    for (size_t i = 0; rc && legacy && i < k->n_legacy; i++) {
        rc = mt_keywrap_open(k->legacy[i], (const uint8_t *)aad, strlen(aad), wrapped, len, out,
                             &e);
        if (!rc && from)
            *from = 0;
    }
    pthread_mutex_unlock(&k->mu);
    mt_wipe(kek, sizeof kek);
    if (rc)
        return mt_err_set(err, MT_ECRYPTO,
                          "key unwrap failed (a key wrapped by an older build before the "
                          "KeyStore needs `mesatee admin keystore legacy`)");
    return MT_OK;
}

/* A joined node whose keyring lacks a version made on the KeyStore node
 * after it joined (a rotation there): one fresh join, at most every
 * REJOIN_MIN_S seconds, then the unwrap is tried again. */
#define REJOIN_MIN_S 2
static mt_status refresh(mt_core *c, mt_err *err);
static bool rejoin(mt_core *c)
{
    static _Atomic int64_t last;
    int64_t now = mt_now(), l = atomic_load(&last);
    if (!c->joined || now - l < REJOIN_MIN_S || !atomic_compare_exchange_strong(&last, &l, now))
        return false;
    mt_err e;
    mt_err_clear(&e);
    if (refresh(c, &e)) {
        mt_error("joined node: re-join of the KeyStore at %s failed: %s",
                 mt_ks_joined_url(c->joined), e.msg);
        return false;
    }
    mt_info("joined node: re-joined the KeyStore at %s (root key version %u current)",
            mt_ks_joined_url(c->joined), mt_keyring_current(c->kek->kr));
    return true;
}

mt_status core_unwrap_key(mt_core *c, const char *aad, const void *wrapped, size_t len,
                          uint8_t out[32], mt_err *err)
{
    if (!wrapped)
        return mt_err_set(err, MT_EINTERNAL, "%s has no key", aad);
    mt_status rc = unwrap_any(c, "file-keys", true, aad, wrapped, len, out, NULL, err);
    if (rc == MT_ECRYPTO && rejoin(c))
        rc = unwrap_any(c, "file-keys", true, aad, wrapped, len, out, NULL, err);
    if (rc == MT_ECRYPTO && c->joined)
        rc = mt_err_set(err, MT_ECRYPTO,
                        "key unwrap failed on this joined node (a root key version the KeyStore "
                        "node at %s did not release to it; see both logs)",
                        mt_ks_joined_url(c->joined));
    return rc;
}

/* ---- release ----------------------------------------------------------- */

/* Asks the KeyStore for the root keys with a fresh attested identity; on
 * success *kr is the new keyring. first: open (or create) the KeyStore. */
static mt_status release(mt_core *c, bool first, mt_keyring **kr, mt_err *err)
{
    if (c->joined) { /* the KeyStore node's keys (mt_ks_join.h) */
        if (first && (*kr = mt_ks_joined_take_keyring(c->joined)))
            return MT_OK;
        return mt_ks_join_refresh(c->joined, kr, err);
    }
    mt_keystore_node *node = NULL;
    char *req = NULL, *resp = NULL, meas[MT_KEYSTORE_MEAS_HEX + 1];
    size_t rl = 0, pl = 0;
    bool created = false;
    mt_status rc = mt_keystore_request(c->tee, &node, &req, &rl, err);
    if (!rc && first && c->open_cfg && c->open_cfg->keystore_recover)
        rc = core_kek_recover(c, req, rl, &c->kek->ks, err); /* kek_escrow.c */
    else if (!rc && first)
        rc = mt_keystore_open_coll(c->tee, c->data_dir, c->keystore_collateral, req, rl,
                                   &c->kek->ks, &created, err);
    if (!rc)
        rc = mt_keystore_release(c->kek->ks, req, rl, &resp, &pl, meas, err);
    if (rc == MT_EPERM) {
        char m[MT_KEYSTORE_MEAS_HEX + 1];
        mt_tee_evidence_measurement(c->tee, m);
        if (!m[0] && meas[0]) {
            /* sev-snp, tdx, sgx (NOT exercised on hardware): the measurement
             * of the verified evidence; the policy may also have refused its
             * TCB status or debug mode, so its own reason is kept */
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            rc = mt_err_set(err, MT_EPERM,
                            "this build's measurement %s was refused by the KeyStore release "
                            "policy (%s); if it is a new build, on the running server run "
                            "`mesatee admin release allow %s`",
                            meas, why, meas);
        } else if (m[0])
            rc = mt_err_set(err, MT_EPERM,
                            "this build's measurement %s is not in the KeyStore release policy: "
                            "on the running server run `mesatee admin release allow %s`",
                            m, m);
    }
    if (!rc)
        rc = mt_keystore_accept(node, resp, pl, kr, err);
    mt_keystore_node_free(node);
    free(req);
    if (resp)
        mt_wipe(resp, pl);
    free(resp);
    return rc;
}

static mt_status refresh(mt_core *c, mt_err *err)
{
    mt_keyring *kr = NULL;
    mt_status rc = release(c, false, &kr, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->kek->mu);
    mt_keyring *old = c->kek->kr;
    c->kek->kr = kr;
    pthread_mutex_unlock(&c->kek->mu);
    mt_keyring_free(old);
    return MT_OK;
}

/* ---- rewrap ------------------------------------------------------------ */

typedef struct rw_row {
    char id[80];
    uint8_t *blob; /* heap */
    size_t len;
    uint32_t ver;
} rw_row;

#define ROW_BLOB_MAX (64u * 1024u)

/* Rewrap of one row of an entry with its own format (e->rewrap): the old
 * KEK is the row's recorded version (legacy rows: not supported there). */
static mt_status rewrap_custom(mt_core *c, const core_wrapped_col *e, const rw_row *r,
                               uint8_t **out, size_t *out_len, uint32_t *v, mt_err *err)
{
    uint8_t oldk[32], newk[32];
    mt_status rc = core_kek(c, e->purpose, r->ver, oldk, NULL, err);
    if (!rc)
        rc = core_kek(c, e->purpose, 0, newk, v, err);
    if (!rc)
        rc = e->rewrap(c, oldk, newk, r->id, r->blob, r->len, out, out_len, err);
    mt_wipe(oldk, sizeof oldk);
    mt_wipe(newk, sizeof newk);
    return rc;
}

/* The tasks bound_tasks selects for id, each verified once
 * (integ_rebind_prepare): *out (n entries) those whose verified row binds
 * id and holds approvals valid now, to be resealed after the rewrite. */
static void rebinds_free(integ_rebind **rb, size_t n)
{
    for (size_t i = 0; rb && i < n; i++)
        integ_rebind_free(rb[i]);
    free(rb);
}

static mt_status rebinds_before(mt_core *c, mt_db *db, const core_wrapped_col *e, const char *id,
                                integ_rebind ***out, size_t *n, mt_err *err)
{
    *out = NULL;
    *n = 0;
    json_t *tasks = NULL;
    mt_status rc = store_ids(db, e->bound_tasks, id, &tasks, err);
    if (rc)
        return rc;
    integ_rebind_what what =
        !strcmp(e->table, "functions") ? INTEG_REBIND_FUNCTION : INTEG_REBIND_FILE;
    integ_rebind **rb = json_array_size(tasks) ? calloc(json_array_size(tasks), sizeof *rb) : NULL;
    if (json_array_size(tasks) && !rb)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t i, k = 0;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (rc || (rc = integ_rebind_prepare(c, db, json_string_value(t), what, id, &rb[k], err)))
            break;
        if (rb[k])
            k++;
    }
    json_decref(tasks);
    if (rc) {
        rebinds_free(rb, k);
        return rc;
    }
    *out = rb;
    *n = k;
    return MT_OK;
}

/* One batch of entry e after cursor: at most CORE_REWRAP_BATCH rows, one
 * transaction. *n receives the rows seen (0: the entry is done). */
static mt_status rewrap_batch(mt_core *c, mt_db *db, const core_wrapped_col *e, char *cursor,
                              size_t cap, int batch, size_t *n, mt_err *err)
{
    *n = 0;
    char sql[512];
    uint32_t cur;
    pthread_mutex_lock(&c->kek->mu);
    cur = mt_keyring_current(c->kek->kr);
    pthread_mutex_unlock(&c->kek->mu);
    rw_row *rows = calloc(CORE_REWRAP_BATCH, sizeof *rows);
    if (!rows)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = store_begin(db, err);
    if (rc) {
        free(rows);
        return rc;
    }
    snprintf(sql, sizeof sql,
             "SELECT %s, %s, %s FROM %s WHERE %s IS NOT NULL AND %s != ? AND %s > ? "
             "ORDER BY %s LIMIT %d",
             e->id_col, e->key_col, e->ver_col, e->table, e->key_col, e->ver_col, e->id_col,
             e->id_col, batch);
    mt_db_stmt *st = NULL;
    if (!(rc = mt_db_prepare(db, sql, &st, err))) {
        mt_db_bind_int64(st, 1, (int64_t)cur);
        mt_db_bind_text(st, 2, cursor);
        while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW) {
            rw_row *r = &rows[*n];
            snprintf(r->id, sizeof r->id, "%s", mt_db_col_text(st, 0));
            size_t bl = 0;
            const void *blob = mt_db_col_blob(st, 1, &bl);
            r->len = bl <= ROW_BLOB_MAX ? bl : 0;
            r->ver = (uint32_t)mt_db_col_int64(st, 2);
            if (r->len && !(r->blob = malloc(r->len)))
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            else if (r->len)
                memcpy(r->blob, blob, r->len);
            (*n)++;
        }
        mt_db_finalize(st);
    }
    snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?, %s = ? WHERE %s = ?", e->table, e->key_col,
             e->ver_col, e->id_col);
    int64_t done = 0, stuck = 0;
    for (size_t i = 0; !rc && i < *n; i++) {
        rw_row *r = &rows[i];
        char aad[128];
        uint8_t key[32], kw[MT_KEYWRAP_LEN], *nb = kw;
        size_t nl = sizeof kw;
        uint32_t v = 0;
        mt_err e2;
        snprintf(cursor, cap, "%s", r->id);
        mt_status w;
        if (e->rewrap) {
            nb = NULL;
            w = rewrap_custom(c, e, r, &nb, &nl, &v, &e2);
            if (w == MT_ECRYPTO || w == MT_ENOTFOUND) {
                stuck++;
                continue;
            }
            if (w)
                *err = e2;
        } else {
            snprintf(aad, sizeof aad, "%s%s", e->aad_prefix, r->id);
            if (unwrap_any(c, e->purpose, e->legacy, aad, r->blob, r->len, key, NULL, &e2)) {
                stuck++;
                continue;
            }
            uint8_t kek[32];
            w = core_kek(c, e->purpose, 0, kek, &v, err);
            if (!w)
                w = mt_keywrap_seal(kek, (const uint8_t *)aad, strlen(aad), key, kw, err);
            mt_wipe(kek, sizeof kek);
            mt_wipe(key, sizeof key);
        }
        if ((rc = w))
            break;
        /* the approvals valid before the change, with the binding each was
         * verified over (only a verified write, e->rewrite, reseals them) */
        integ_rebind **carry = NULL;
        size_t n_carry = 0;
        char old_hex[65] = "", new_hex[65] = "";
        if (e->bound_tasks && e->rewrite &&
            (rc = rebinds_before(c, db, e, r->id, &carry, &n_carry, err))) {
            if (nb != kw)
                free(nb);
            break;
        }
        if (e->rewrite)
            rc = e->rewrite(c, db, r->id, nb, nl, v, old_hex, new_hex, err);
        else if (!(rc = mt_db_prepare(db, sql, &st, err))) {
            mt_db_bind_blob(st, 1, nb, nl);
            mt_db_bind_int64(st, 2, (int64_t)v);
            mt_db_bind_text(st, 3, r->id);
            mt_db_step(st, &rc, err);
            mt_db_finalize(st);
        }
        if (nb != kw)
            free(nb);
        if (!rc && e->reseal)
            rc = e->reseal(c, db, r->id, err);
        for (size_t k = 0; !rc && k < n_carry; k++)
            rc = integ_rebind_seal(c, db, carry[k], old_hex, new_hex, err);
        rebinds_free(carry, n_carry);
        done++;
    }
    if (!rc) {
        char a[24], b[24];
        snprintf(a, sizeof a, "%lld", (long long)done);
        snprintf(b, sizeof b, "%lld", (long long)stuck);
        rc = store_run(db, err, NULL,
                       "UPDATE kek_rewrap SET rewrapped = rewrapped + ?, stuck = stuck + ? "
                       "WHERE id = 1",
                       a, b);
    }
    if (!rc)
        rc = store_commit(db, err);
    if (rc)
        store_rollback(db);
    else {
        pthread_mutex_lock(&c->kek->mu);
        c->kek->rewrapped += done;
        c->kek->stuck += stuck;
        pthread_mutex_unlock(&c->kek->mu);
    }
    for (size_t i = 0; i < CORE_REWRAP_BATCH; i++)
        free(rows[i].blob);
    free(rows);
    return rc;
}

/* One batch of an entry with its own batch rewrap (e->batch), in one
 * transaction with the progress counter. *n: rows rewrapped (0 = done). */
static mt_status rewrap_table_batch(mt_core *c, mt_db *db, const core_wrapped_col *e,
                                    unsigned limit, size_t *n, mt_err *err)
{
    *n = 0;
    pthread_mutex_lock(&c->kek->mu);
    uint32_t cur = mt_keyring_current(c->kek->kr);
    pthread_mutex_unlock(&c->kek->mu);
    mt_status rc = store_begin(db, err);
    if (rc)
        return rc;
    unsigned done = 0;
    rc = e->batch(c, db, cur, limit, &done, err);
    if (!rc && done) {
        char a[24];
        snprintf(a, sizeof a, "%u", done);
        rc = store_run(db, err, NULL,
                       "UPDATE kek_rewrap SET rewrapped = rewrapped + ? WHERE id = 1", a);
    }
    if (!rc)
        rc = store_commit(db, err);
    if (rc) {
        store_rollback(db);
        return rc;
    }
    pthread_mutex_lock(&c->kek->mu);
    c->kek->rewrapped += done;
    pthread_mutex_unlock(&c->kek->mu);
    *n = done;
    return MT_OK;
}

/* Rows per KEK version over every entry: counts[v] for v < cap (0 =
 * legacy); *other receives rows of versions >= cap. */
static mt_status count_rows(mt_db *db, int64_t *counts, size_t cap, int64_t *other, mt_err *err)
{
    memset(counts, 0, cap * sizeof *counts);
    *other = 0;
    mt_status rc = MT_OK;
    for (size_t i = 0; !rc && i < core_n_wrapped_cols; i++) {
        const core_wrapped_col *e = &core_wrapped_cols[i];
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT %s, count(*) FROM %s WHERE %s IS NOT NULL GROUP BY %s",
                 e->ver_col, e->table, e->key_col, e->ver_col);
        mt_db_stmt *st;
        if ((rc = mt_db_prepare(db, sql, &st, err)))
            break;
        while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW) {
            int64_t v = mt_db_col_int64(st, 0), n = mt_db_col_int64(st, 1);
            if (v >= 0 && (uint64_t)v < cap)
                counts[v] += n;
            else
                *other += n;
        }
        mt_db_finalize(st);
    }
    return rc;
}

/* Retires every live version but the current one that no row records. */
static mt_status retire_unused(mt_core *c, mt_db *db, mt_err *err)
{
    /* a KeyStore node serving joins retires nothing: a joined node may
     * still wrap under the version it was given (docs/cluster.md) */
    if (atomic_load(&c->serves_joins))
        return MT_OK;
    struct core_kek_state *k = c->kek;
    uint32_t live[MT_KEYSTORE_MAX_VERSIONS];
    size_t n = 0;
    uint32_t cur = mt_keystore_versions(k->ks, live, MT_KEYSTORE_MAX_VERSIONS, &n);
    bool retired = false;
    for (size_t i = 0; i < n; i++) {
        if (live[i] == cur)
            continue;
        char sql[256], vs[16];
        snprintf(vs, sizeof vs, "%u", live[i]);
        int64_t total = 0;
        mt_status rc = MT_OK;
        for (size_t j = 0; !rc && j < core_n_wrapped_cols; j++) {
            const core_wrapped_col *e = &core_wrapped_cols[j];
            int64_t cnt = 0;
            snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s IS NOT NULL AND %s = ?",
                     e->table, e->key_col, e->ver_col);
            rc = store_int(db, err, &cnt, NULL, sql, vs);
            total += cnt;
        }
        if (rc)
            return rc;
        if (total > 0)
            continue;
        char obj[32];
        snprintf(obj, sizeof obj, "kek:%u", live[i]);
        /* The entry is durable BEFORE the version is destroyed: a crash or a
         * failed write after the destruction cannot lose it. A crash between
         * the two leaves the version live and the entry written; the next
         * pass retires it and writes the entry again (an entry may repeat,
         * none is missing). */
        if ((rc = core_change_begin(c, db, err)))
            return rc;
        if ((rc = audit_append(c, db, "-", "keystore: root key version retired", obj, 200, err)) ||
            (rc = store_commit(db, err))) {
            store_rollback(db);
            return rc;
        }
        if ((rc = mt_keystore_retire(k->ks, live[i], err))) {
            /* through the audit spool (audit_spool.c): kept even when the
             * store fails now too, logged when even that fails */
            mt_err e2;
            mt_err_clear(&e2);
            mt_audit_item it = {"-", "keystore: root key version retirement failed", obj, 500, 0};
            if (mt_core_audit_record(c, &it, 1, NULL, &e2))
                mt_error("KeyStore: the failed retirement of root key version %u could not be "
                         "audited: %s",
                         live[i], e2.msg);
            return rc;
        }
        /* test-only fault injection (it_keystore_retire_audit): the process
         * dies right after the destruction, before anything else is written */
        const char *crash = getenv("MESATEE_TEST_KEK_CRASH_AFTER_RETIRE");
        if (crash && !strcmp(crash, "1"))
            _exit(99);
        mt_info("KeyStore: root key version %u retired (no stored key uses it)", live[i]);
        retired = true;
    }
    return retired ? refresh(c, err) : MT_OK;
}

static mt_status rewrap_pass(mt_core *c, mt_db *db, mt_err *err)
{
    struct core_kek_state *k = c->kek;
    pthread_mutex_lock(&k->mu);
    uint32_t cur = mt_keyring_current(k->kr);
    k->rewrapped = k->stuck = 0;
    pthread_mutex_unlock(&k->mu);
    char tv[16], now[24];
    snprintf(tv, sizeof tv, "%u", cur);
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    mt_status rc = store_run(db, err, NULL,
                             "INSERT OR REPLACE INTO kek_rewrap(id, target, rewrapped, stuck, "
                             "started_at, finished_at) VALUES (1, ?, 0, 0, ?, NULL)",
                             tv, now);
    /* throttles for a large store (docs/operations.md): rows per batch and a
     * pause between batches; they only slow the pass down */
    const char *bs = getenv("MESATEE_KEK_REWRAP_BATCH"), *pause = getenv("MESATEE_KEK_REWRAP_PAUSE_MS");
    long batch = bs ? strtol(bs, NULL, 10) : CORE_REWRAP_BATCH;
    long ms = pause ? strtol(pause, NULL, 10) : 0;
    if (batch < 1 || batch > CORE_REWRAP_BATCH)
        batch = CORE_REWRAP_BATCH;
    for (size_t i = 0; !rc && i < core_n_wrapped_cols; i++) {
        char cursor[80] = "";
        size_t n = 0;
        do {
            pthread_mutex_lock(&k->mu);
            bool stop = k->stop;
            pthread_mutex_unlock(&k->mu);
            if (stop)
                return MT_OK;
            if (core_wrapped_cols[i].batch)
                rc = rewrap_table_batch(c, db, &core_wrapped_cols[i], (unsigned)batch, &n, err);
            else
                rc = rewrap_batch(c, db, &core_wrapped_cols[i], cursor, sizeof cursor, (int)batch,
                                  &n, err);
            if (!rc && n && ms > 0 && ms <= 10000) {
                struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
        } while (!rc && n > 0);
    }
    if (!rc) {
        snprintf(now, sizeof now, "%lld", (long long)mt_now());
        rc = store_run(db, err, NULL, "UPDATE kek_rewrap SET finished_at = ? WHERE id = 1", now);
    }
    if (!rc)
        rc = retire_unused(c, db, err);
    pthread_mutex_lock(&k->mu);
    if (!rc && k->stuck)
        mt_warn("KeyStore rewrap: %lld stored keys could not be unwrapped (legacy keys of an "
                "older build: give its measurement with `mesatee admin keystore legacy`)",
                (long long)k->stuck);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

static void *rewrap_main(void *arg)
{
    mt_core *c = arg;
    struct core_kek_state *k = c->kek;
    mt_db *db = NULL;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        while (!k->kick && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        k->kick = false;
        k->running = true;
        pthread_mutex_unlock(&k->mu);
        mt_err err;
        mt_err_clear(&err);
        mt_status rc = db ? MT_OK : store_open(c->db_path, false, &db, &err);
        /* one rewrap pass at a time in a cluster (PostgreSQL advisory lock;
         * passes are idempotent, so this node's pass waits and then runs) */
        bool leader = false;
        while (!rc && !leader && !(rc = mt_db_try_lock(db, MT_DB_LOCK_REWRAP, &leader, &err)) &&
               !leader) {
            pthread_mutex_lock(&k->mu);
            bool stop = k->stop;
            pthread_mutex_unlock(&k->mu);
            if (stop)
                break;
            struct timespec ts = {0, 500 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (!rc && leader) {
            rc = rewrap_pass(c, db, &err);
            mt_db_unlock(db, MT_DB_LOCK_REWRAP);
        }
        if (rc)
            mt_error("KeyStore rewrap stopped (resumes at the next rotation or start): %s",
                     err.msg);
        pthread_mutex_lock(&k->mu);
        snprintf(k->last_error, sizeof k->last_error, "%s", rc ? err.msg : "");
        k->running = false;
    }
    pthread_mutex_unlock(&k->mu);
    store_close(db);
    return NULL;
}

static void kick(mt_core *c)
{
    pthread_mutex_lock(&c->kek->mu);
    c->kek->kick = true;
    pthread_cond_signal(&c->kek->cv);
    pthread_mutex_unlock(&c->kek->mu);
}

/* ---- open / close ------------------------------------------------------ */

mt_status core_kek_open(mt_core *c, mt_err *err)
{
    struct core_kek_state *k = calloc(1, sizeof *k);
    if (!k)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    c->kek = k;
    /* the measurement-bound key that wrapped file keys before the KeyStore */
    mt_status rc = mt_tee_sealing_key(c->tee, "file-keys/v1", k->legacy[0], err);
    if (rc)
        return rc;
    k->n_legacy = 1;
    if ((rc = release(c, true, &k->kr, err)))
        return rc;
    if (!c->release_signers)
        return MT_OK;
    if (c->joined)
        return mt_err_set(err, MT_EINVAL, "--release-signers is for the KeyStore node (this node "
                                          "joined %s)",
                          mt_ks_joined_url(c->joined));
    uint8_t *pem = NULL;
    size_t pl = 0;
    rc = mt_file_read(c->release_signers, MT_KEYSTORE_SIGNERS_MAX, &pem, &pl, err);
    if (rc)
        return mt_err_prefix(err, rc, "--release-signers: ");
    rc = mt_keystore_set_signers(k->ks, (const char *)pem, pl, c->release_threshold, err);
    free(pem);
    return rc;
}

/* Rollback of keystore.sealed (issue 10): a store row wrapped under a root
 * key version that the KeyStore no longer has can only mean that the state
 * file was replaced by an older copy (a version is retired only once no row
 * records it, and a new version is persisted before any row uses it).
 * Refused at start, naming the version, before anything is rewrapped. */
static mt_status rollback_check(mt_core *c, mt_err *err)
{
    mt_status rc = MT_OK;
    for (size_t i = 0; !rc && i < core_n_wrapped_cols; i++) {
        const core_wrapped_col *e = &core_wrapped_cols[i];
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT %s, count(*) FROM %s WHERE %s IS NOT NULL AND %s > 0 GROUP BY %s",
                 e->ver_col, e->table, e->key_col, e->ver_col, e->ver_col);
        mt_db_stmt *st;
        if ((rc = mt_db_prepare(c->db, sql, &st, err)))
            break;
        while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW) {
            int64_t v = mt_db_col_int64(st, 0), n = mt_db_col_int64(st, 1);
            bool have = v > 0 && v <= UINT32_MAX && mt_keyring_has(c->kek->kr, (uint32_t)v);
            if (!have)
                rc = mt_err_set(err, MT_ECRYPTO,
                                "the store holds %lld key(s) (%s) wrapped under KeyStore root "
                                "key version %lld, which %s/%s does not have: the KeyStore state "
                                "was replaced by an older copy (rollback) or by another "
                                "node's; put the newest keystore.sealed back (docs/operations.md "
                                "\"KeyStore\")",
                                (long long)n, e->table, (long long)v, c->data_dir,
                                MT_KEYSTORE_FILE);
        }
        mt_db_finalize(st);
    }
    return rc;
}

mt_status core_kek_start(mt_core *c, mt_err *err)
{
    struct core_kek_state *k = c->kek;
    if (c->joined) /* the KeyStore node checks rollback and rewraps (docs/cluster.md) */
        return MT_OK;
    mt_status rc = rollback_check(c, err);
    if (rc)
        return rc;
    if (pthread_create(&k->th, NULL, rewrap_main, c) != 0)
        return mt_err_set(err, MT_EINTERNAL, "cannot start the KeyStore rewrap thread");
    k->th_started = true;
    kick(c);
    return MT_OK;
}

void core_kek_close(mt_core *c)
{
    struct core_kek_state *k = c ? c->kek : NULL;
    if (!k)
        return;
    if (k->th_started) {
        pthread_mutex_lock(&k->mu);
        k->stop = true;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->th, NULL);
    }
    mt_keystore_free(k->ks);
    mt_keyring_free(k->kr);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    mt_wipe(k, sizeof *k);
    free(k);
    c->kek = NULL;
}

/* ---- admin REST (docs/design.md, docs/api/openapi.yaml) ---------------- */

static json_t *parse_body(core_ctx *x, const char *const *keys)
{
    json_t *doc = mt_json_parse((const char *)x->req->body, x->req->body_len,
                                x->core->max_json_bytes, x->core->max_json_depth, x->err);
    if (!doc)
        return NULL;
    if (!json_is_object(doc)) {
        mt_err_set(x->err, MT_EINVAL, "the body must be a JSON object");
        json_decref(doc);
        return NULL;
    }
    if (mt_json_only_keys(doc, keys, x->err)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

mt_status core_kek_joined_refuse(core_ctx *x)
{
    return mt_err_set(x->err, MT_ECONFLICT,
                      "this node joined the KeyStore node at %s: run KeyStore administration "
                      "(release policy, rotate, escrow, legacy keys, status) on that node",
                      mt_ks_joined_url(x->core->joined));
}

mt_status kek_status_handle(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    struct core_kek_state *k = x->core->kek;
    uint32_t live[MT_KEYSTORE_MAX_VERSIONS];
    size_t n = 0;
    uint32_t cur = mt_keystore_versions(k->ks, live, MT_KEYSTORE_MAX_VERSIONS, &n);
    int64_t *counts = calloc((size_t)cur + 1, sizeof *counts), other = 0;
    if (!counts)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    mt_status rc = count_rows(x->db, counts, (size_t)cur + 1, &other, x->err);
    json_t *vers = json_array();
    for (size_t i = 0; !rc && vers && i < n; i++)
        json_array_append_new(vers, json_pack("{s:I, s:b, s:I}", "version", (json_int_t)live[i],
                                              "current", live[i] == cur, "rows",
                                              (json_int_t)(live[i] <= cur ? counts[live[i]] : 0)));
    int64_t target = 0, started = 0, finished = 0, rewrapped = 0, stuck = 0;
    bool found = false;
    if (!rc)
        rc = store_int(x->db, x->err, &target, &found, "SELECT target FROM kek_rewrap WHERE id = 1");
    if (!rc && found) {
        store_int(x->db, x->err, &started, NULL, "SELECT started_at FROM kek_rewrap WHERE id = 1");
        store_int(x->db, x->err, &finished, NULL,
                  "SELECT coalesce(finished_at, 0) FROM kek_rewrap WHERE id = 1");
        store_int(x->db, x->err, &rewrapped, NULL,
                  "SELECT rewrapped FROM kek_rewrap WHERE id = 1");
        store_int(x->db, x->err, &stuck, NULL, "SELECT stuck FROM kek_rewrap WHERE id = 1");
    }
    int64_t pending = other, legacy = counts[0];
    for (uint32_t v = 0; v < cur; v++)
        pending += counts[v];
    pthread_mutex_lock(&k->mu);
    bool running = k->running || k->kick;
    json_t *lerr = k->last_error[0] ? json_string(k->last_error) : json_null();
    pthread_mutex_unlock(&k->mu);
    free(counts);
    if (rc) {
        json_decref(vers);
        json_decref(lerr);
        return rc;
    }
    json_t *rw = json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "running", running,
                           "target", (json_int_t)target, "pending", (json_int_t)pending,
                           "rewrapped", (json_int_t)rewrapped, "stuck", (json_int_t)stuck,
                           "started_at", started ? core_time_json(started) : json_null(),
                           "finished_at", finished ? core_time_json(finished) : json_null(),
                           "last_error", lerr);
    /* the join listener of a KeyStore node (null: this node serves no joins) */
    mt_core *c = x->core;
    json_t *join = !c->join_url[0]
                       ? json_null()
                       : json_pack("{s:s, s:o}", "url", c->join_url, "db_cert_ttl_s",
                                   c->join_db_cert_ttl_s ? json_integer(c->join_db_cert_ttl_s)
                                                         : json_null());
    core_json_response(x, 200,
                       json_pack("{s:I, s:o, s:I, s:o, s:o}", "current", (json_int_t)cur,
                                 "versions", vers, "legacy_rows", (json_int_t)legacy, "rewrap",
                                 rw, "join", join ? join : json_null()));
    return MT_OK;
}

mt_keystore *core_kek_keystore(mt_core *c)
{
    return c->kek->ks;
}

mt_status kek_rotate_handle(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    uint32_t v = 0;
    mt_status rc = mt_keystore_rotate(x->core->kek->ks, &v, x->err);
    if (!rc)
        rc = refresh(x->core, x->err);
    if (rc)
        return rc; /* a rotation that persisted is finished at the next start */
    kick(x->core);
    char obj[32];
    snprintf(obj, sizeof obj, "%u", v);
    core_set_object(x, "kek", obj);
    mt_info("KeyStore: root key rotated to version %u; rewrapping stored keys in the background",
            v);
    core_json_response(x, 202, json_pack("{s:I}", "version", (json_int_t)v));
    return MT_OK;
}

mt_status kek_legacy_handle(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    static const char *const keys[] = {"measurement", NULL};
    json_t *doc = parse_body(x, keys);
    if (!doc)
        return x->err->code ? x->err->code : MT_EINVAL;
    const char *m = NULL;
    uint8_t key[32];
    /* level none seals to no measurement: the current key is the old one */
    bool none = !strcmp(mt_tee_level(x->core->tee), "none");
    mt_status rc = mt_json_str(doc, "measurement", 64, &m, x->err);
    if (!rc && (strlen(m) != 64 || strspn(m, "0123456789abcdef") != 64 ||
                (!none && mt_tee_legacy_sealing_key(x->core->tee, m, "file-keys/v1", key,
                                                    x->err))))
        rc = mt_err_set(x->err, MT_EINVAL,
                        "field 'measurement': expected the sha256sum of the old mesatee binary "
                        "(64 lowercase hex)");
    if (!rc && none)
        memcpy(key, x->core->kek->legacy[0], 32);
    if (!rc)
        core_set_object(x, "measurement", m);
    json_decref(doc);
    if (rc)
        return rc;
    struct core_kek_state *k = x->core->kek;
    pthread_mutex_lock(&k->mu);
    bool have = false;
    for (size_t i = 0; i < k->n_legacy; i++)
        if (mt_ct_equal(k->legacy[i], key, 32))
            have = true;
    if (!have && k->n_legacy >= MAX_LEGACY)
        rc = mt_err_set(x->err, MT_ETOOBIG, "at most %d legacy keys per run", MAX_LEGACY);
    else if (!have)
        memcpy(k->legacy[k->n_legacy++], key, 32);
    pthread_mutex_unlock(&k->mu);
    mt_wipe(key, sizeof key);
    if (rc)
        return rc;
    int64_t counts[1], other = 0;
    if ((rc = count_rows(x->db, counts, 1, &other, x->err)))
        return rc;
    kick(x->core);
    core_json_response(x, 202, json_pack("{s:I}", "legacy_rows", (json_int_t)counts[0]));
    return MT_OK;
}

static mt_status policy_response(core_ctx *x, int status, json_t *extra)
{
    json_t *p = mt_keystore_policy(x->core->kek->ks);
    if (!p) {
        json_decref(extra);
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    }
    char m[65];
    mt_tee_evidence_measurement(x->core->tee, m);
    json_object_set_new(p, "this_build", m[0] ? json_string(m) : json_null());
    if (extra)
        json_object_update_new(p, extra);
    core_json_response(x, status, p);
    return MT_OK;
}

mt_status release_policy_get(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    return policy_response(x, 200, NULL);
}

static mt_status policy_edit(core_ctx *x, bool allow)
{
    static const char *const keys[] = {"kind", "value", "signatures", NULL};
    json_t *doc = parse_body(x, keys);
    if (!doc)
        return x->err->code ? x->err->code : MT_EINVAL;
    const char *kind = NULL, *value = NULL, *sigs = NULL;
    bool changed = true;
    mt_status rc = mt_json_str_opt(doc, "kind", 32, &kind, "measurement", x->err);
    if (!rc)
        rc = mt_json_str(doc, "value", MT_KEYSTORE_MEAS_HEX, &value, x->err);
    if (!rc)
        rc = mt_json_str_opt(doc, "signatures", MT_POLICY_SIG_FILE_MAX, &sigs, NULL, x->err);
    /* audited, also when refused (only well-formed values: the object names
     * what was asked, never arbitrary input) */
    char obj[MT_KEYSTORE_MEAS_HEX + 1];
    if (!rc && mt_keystore_audit_object(kind, value, obj, sizeof obj))
        core_set_object(x, kind, obj);
    size_t sl = sigs ? strlen(sigs) : 0;
    if (!rc)
        rc = allow ? mt_keystore_policy_allow_signed(x->core->kek->ks, kind, value, sigs, sl,
                                                     &changed, x->err)
                   : mt_keystore_policy_revoke_signed(x->core->kek->ks, kind, value, sigs, sl,
                                                      x->err);
    if (!rc)
        mt_info("KeyStore release policy: %s %s %s%s", allow ? "allowed" : "revoked", kind,
                value, sigs ? " (auditor signatures checked)" : "");
    json_decref(doc);
    if (rc)
        return rc;
    return policy_response(x, 200, json_pack("{s:b}", "changed", changed));
}

mt_status release_policy_allow(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    return policy_edit(x, true);
}

mt_status release_policy_revoke(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    return policy_edit(x, false);
}

/* A signed change of the recorded auditor set (mt_keystore_change_signers):
 * {"pem", "threshold"?, "signatures"}. Audited (object: the new threshold),
 * also when refused. */
mt_status release_policy_signers(core_ctx *x)
{
    if (x->core->joined)
        return core_kek_joined_refuse(x);
    static const char *const keys[] = {"pem", "threshold", "signatures", NULL};
    json_t *doc = parse_body(x, keys);
    if (!doc)
        return x->err->code ? x->err->code : MT_EINVAL;
    const char *pem = NULL, *sigs = NULL;
    int64_t thr = 0;
    mt_status rc = mt_json_str(doc, "pem", MT_KEYSTORE_SIGNERS_MAX, &pem, x->err);
    if (!rc)
        rc = mt_json_int_opt(doc, "threshold", 0, MT_POLICY_SIG_MAX, &thr, 0, x->err);
    if (!rc)
        rc = mt_json_str_opt(doc, "signatures", MT_POLICY_SIG_FILE_MAX, &sigs, NULL, x->err);
    if (!rc) {
        char obj[24];
        snprintf(obj, sizeof obj, "threshold-%d", (int)thr);
        core_set_object(x, "release_signers", obj);
        rc = mt_keystore_change_signers(x->core->kek->ks, pem, strlen(pem), (unsigned)thr, sigs,
                                        sigs ? strlen(sigs) : 0, x->err);
    }
    json_decref(doc);
    if (rc)
        return rc;
    return policy_response(x, 200, json_pack("{s:b}", "changed", true));
}
