/* audit: the hash-chained audit log. Entry n stores
 *   hash_n = SHA-256(prev_hash_hex "\n" seq "\n" time "\n" actor "\n" action
 *                    "\n" object "\n" status)       (hex)
 * with prev_hash of the first entry = 64 zeros. Appends run in their own
 * transaction; verification recomputes the chain from a read-only connection
 * and names the first entry that does not match. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "core_internal.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static void entry_hash(const char *prev, int64_t seq, int64_t time, const char *actor,
                       const char *action, const char *object, int64_t status, char out[65])
{
    size_t n = strlen(prev) + strlen(actor) + strlen(action) + strlen(object) + 96;
    char *buf = malloc(n);
    if (!buf)
        abort(); /* a tiny allocation: nothing sensible can continue */
    int len = snprintf(buf, n, "%s\n%lld\n%lld\n%s\n%s\n%s\n%lld", prev, (long long)seq,
                       (long long)time, actor, action, object, (long long)status);
    core_sha256_hex(buf, (size_t)len, out);
    free(buf);
}

/* Strips control characters so one entry is one line of text. */
static void clean(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in ? in : "-"; *p && o + 1 < cap; p++)
        out[o++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
    out[o] = '\0';
    if (o == 0 && cap > 1) {
        out[0] = '-';
        out[1] = '\0';
    }
}

mt_status mt_core_audit(mt_core *core, const char *actor, const char *action, const char *object,
                        int status, mt_err *err)
{
    char a[80], ac[160], ob[128];
    clean(actor, a, sizeof a);
    clean(action, ac, sizeof ac);
    clean(object, ob, sizeof ob);
    pthread_mutex_lock(&core->mu);
    sqlite3 *db = core->db;
    mt_status rc = store_begin(db, err);
    if (rc)
        goto unlock;
    sqlite3_stmt *st;
    char prev[65] = ZERO_HASH;
    int64_t seq = 1;
    if ((rc = store_prepare(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &st, err)))
        goto out;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        seq = sqlite3_column_int64(st, 0) + 1;
        snprintf(prev, sizeof prev, "%s", store_col_text(st, 1));
    } else if (s != SQLITE_DONE)
        rc = store_fail(db, err);
    sqlite3_finalize(st);
    if (rc)
        goto out;
    int64_t now = mt_now();
    char h[65];
    entry_hash(prev, seq, now, a, ac, ob, status, h);
    if ((rc = store_prepare(db,
                            "INSERT INTO audit(seq, time, actor, action, object, status, "
                            "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            &st, err)))
        goto out;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, now);
    store_bind_text(st, 3, a);
    store_bind_text(st, 4, ac);
    store_bind_text(st, 5, ob);
    sqlite3_bind_int64(st, 6, status);
    store_bind_text(st, 7, prev);
    store_bind_text(st, 8, h);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = store_fail(db, err);
    sqlite3_finalize(st);
    if (!rc)
        rc = store_commit(db, err);
out:
    if (rc)
        store_rollback(db);
unlock:
    pthread_mutex_unlock(&core->mu);
    return rc;
}

mt_status mt_core_audit_verify_dir(const char *data_dir, uint64_t *entries, mt_err *err)
{
    if (entries)
        *entries = 0;
    if (!data_dir)
        return mt_err_set(err, MT_EINVAL, "no data directory given");
    size_t n = strlen(data_dir) + sizeof("/" CORE_DB_NAME);
    char *path = malloc(n);
    if (!path)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s", data_dir, CORE_DB_NAME);
    sqlite3 *db;
    mt_status rc = store_open(path, true, &db, err);
    free(path);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = store_prepare(db,
                            "SELECT seq, time, actor, action, object, status, prev_hash, hash "
                            "FROM audit ORDER BY seq",
                            &st, err))) {
        store_close(db);
        return rc;
    }
    char prev[65] = ZERO_HASH;
    int64_t expect_seq = 0;
    uint64_t count = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        if (expect_seq && seq != expect_seq) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit chain broken: entry %lld follows %lld (entries removed)",
                            (long long)seq, (long long)expect_seq - 1);
            break;
        }
        if (strcmp(store_col_text(st, 6), prev)) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit chain broken at entry %lld: prev_hash does not match the "
                            "previous entry",
                            (long long)seq);
            break;
        }
        char h[65];
        entry_hash(prev, seq, sqlite3_column_int64(st, 1), store_col_text(st, 2),
                   store_col_text(st, 3), store_col_text(st, 4), sqlite3_column_int64(st, 5), h);
        if (strcmp(h, store_col_text(st, 7))) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit chain broken at entry %lld: its content was changed",
                            (long long)seq);
            break;
        }
        memcpy(prev, h, sizeof prev);
        expect_seq = seq + 1;
        count++;
    }
    if (!rc && s != SQLITE_DONE)
        rc = store_fail(db, err);
    sqlite3_finalize(st);
    store_close(db);
    if (entries)
        *entries = count;
    return rc;
}

mt_status audit_list(core_ctx *x)
{
    dec_audit_query q;
    mt_status rc = dec_audit_query_parse(x->req->query, &q, x->err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    /* Users see entries they made, and entries about files they own, tasks
     * they participate in, functions they own, and their own user. */
    if ((rc = store_prepare(
             x->db,
             "SELECT seq, time, actor, action, object, status, hash FROM audit a WHERE "
             "a.seq > ?1 AND (?3 OR a.actor = ?2 OR a.object = 'user:' || ?2 OR "
             "(a.object LIKE 'file:%' AND EXISTS (SELECT 1 FROM file_owners o WHERE "
             "o.file_id = substr(a.object, 6) AND o.username = ?2)) OR "
             "(a.object LIKE 'task:%' AND EXISTS (SELECT 1 FROM task_participants p WHERE "
             "p.task_id = substr(a.object, 6) AND p.username = ?2)) OR "
             "(a.object LIKE 'function:%' AND EXISTS (SELECT 1 FROM functions f WHERE "
             "f.function_id = substr(a.object, 10) AND f.owner = ?2))) "
             "ORDER BY a.seq LIMIT ?4",
             &st, x->err)))
        return rc;
    sqlite3_bind_int64(st, 1, q.after);
    store_bind_text(st, 2, x->who);
    sqlite3_bind_int(st, 3, x->admin ? 1 : 0);
    sqlite3_bind_int64(st, 4, q.limit);
    json_t *arr = json_array();
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:I, s:o, s:s, s:s, s:s, s:I, s:s}", "seq",
                                             (json_int_t)sqlite3_column_int64(st, 0), "time",
                                             core_time_json(sqlite3_column_int64(st, 1)), "actor",
                                             store_col_text(st, 2), "action", store_col_text(st, 3),
                                             "object", store_col_text(st, 4), "status",
                                             (json_int_t)sqlite3_column_int64(st, 5), "hash",
                                             store_col_text(st, 6)));
    if (s != SQLITE_DONE)
        rc = store_fail(x->db, x->err);
    sqlite3_finalize(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    core_json_response(x, 200, json_pack("{s:o}", "entries", arr));
    return MT_OK;
}
