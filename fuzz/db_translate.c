/* Fuzz target: the SQL dialect translation of the database layer
 * (src/store/db_sql.c, mt_db_translate). Its input is mesatee's own SQL, not
 * outside bytes; the target is here because the translation is a tokenizer
 * and rewriter whose mistakes would only show on PostgreSQL. Invariants:
 * no crash or leak on any text; a refusal is MT_EINVAL (or MT_ENOMEM) with a
 * message and no output; SQLite's translation is the text itself; an
 * accepted PostgreSQL translation has 0..32767 parameters and is a fixed
 * point (translating it again changes nothing and finds no parameter). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *sql = malloc(size + 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    sql[size] = '\0'; /* text up to the first NUL */
    char *out = NULL;
    int np = -1;
    mt_err err;
    mt_err_clear(&err);
    mt_status rc = mt_db_translate(MT_DB_SQLITE, sql, &out, &np, &err);
    if (rc == MT_OK) {
        if (!out || strcmp(out, sql) != 0 || np < 0 || np > 32767)
            abort();
    } else if (out || !err.msg[0] || (rc != MT_EINVAL && rc != MT_ENOMEM)) {
        abort();
    }
    free(out);
    out = NULL;
    mt_err_clear(&err);
    rc = mt_db_translate(MT_DB_PG, sql, &out, &np, &err);
    if (rc == MT_OK) {
        if (!out || np < 0 || np > 32767)
            abort();
        char *again = NULL;
        int np2 = -1;
        if (mt_db_translate(MT_DB_PG, out, &again, &np2, &err) != MT_OK || np2 != 0 ||
            strcmp(again, out) != 0)
            abort();
        free(again);
    } else if (out || !err.msg[0] || (rc != MT_EINVAL && rc != MT_ENOMEM)) {
        abort();
    }
    free(out);
    free(sql);
    return 0;
}
