/* store_db: the store helpers of store.c (store_run, store_int, store_ids)
 * on the database layer (src/store/mt_db.h), for the modules converted to
 * it (docs/cluster.md "What is done"). Same contracts as their store.c
 * twins (core_internal.h); they differ only in the connection type, so a
 * module converts by changing x->db to x->store and store_ to sdb_. */
#include <stdarg.h>

#include "core_internal.h"

/* Prepares sql and binds the parameters (as many as the statement has)
 * from ap as text (NULL binds NULL). */
static mt_status prepare_va(mt_db *db, const char *sql, va_list ap, mt_db_stmt **st, mt_err *err)
{
    mt_status rc = mt_db_prepare(db, sql, st, err);
    if (rc)
        return rc;
    int n = mt_db_param_count(*st);
    for (int i = 1; i <= n; i++)
        mt_db_bind_text(*st, i, va_arg(ap, const char *));
    return MT_OK;
}

mt_status sdb_run(mt_db *db, mt_err *err, int *changes, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    mt_db_stmt *st;
    mt_status rc = prepare_va(db, sql, ap, &st, err);
    va_end(ap);
    if (rc)
        return rc;
    while (mt_db_step(st, &rc, err) == MT_DB_ROW)
        ;
    if (!rc && changes)
        *changes = (int)mt_db_changes(db);
    mt_db_finalize(st);
    return rc;
}

mt_status sdb_int(mt_db *db, mt_err *err, int64_t *out, bool *found, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    mt_db_stmt *st;
    mt_status rc = prepare_va(db, sql, ap, &st, err);
    va_end(ap);
    *out = 0;
    if (found)
        *found = false;
    if (rc)
        return rc;
    if (mt_db_step(st, &rc, err) == MT_DB_ROW) {
        *out = mt_db_col_int64(st, 0);
        if (found)
            *found = true;
    }
    mt_db_finalize(st);
    return rc;
}

mt_status sdb_ids(mt_db *db, const char *sql, const char *param, json_t **out, mt_err *err)
{
    *out = NULL;
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(db, sql, &st, err);
    if (rc)
        return rc;
    if (param)
        mt_db_bind_text(st, 1, param);
    json_t *ids = json_array();
    if (!ids)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW)
        if (json_array_append_new(ids, json_string(mt_db_col_text(st, 0))))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_db_finalize(st);
    if (rc)
        json_decref(ids);
    else
        *out = ids;
    return rc;
}
