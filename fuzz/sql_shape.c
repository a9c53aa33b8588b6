/* Fuzz target: the sql clean room's aggregation-mode query check and
 * rewrite (mt_sql_agg_rewrite: a tokenizer and shape rules over a query any
 * participant may propose). The input is the query text. An accepted query
 * must come back with 1..64 counts inserted (a table may appear more than
 * once) and its own text intact around them; SQLite must then be able to prepare the rewrite or refuse it
 * cleanly over tables t(a, b) and u(a, c). A refusal must say why. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tables[] = {"t", "u", "v"};
    static const char *const rowid[] = {"rowid", "_rowid_", "oid"};
    if (size > 4096)
        return 0;
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = 0;
    if (strlen(q) != size) { /* the built-in gets a C string */
        free(q);
        return 0;
    }
    char *out = NULL;
    int n = 0;
    mt_err err;
    if (mt_sql_agg_rewrite(q, tables, rowid, 3, &out, &n, &err) != MT_OK) {
        if (out || !err.msg[0])
            abort();
        free(q);
        return 0;
    }
    /* out = q[0, ins) + X + q[ins, size) with X = n times
     * "COUNT(DISTINCT ref.rowid), " */
    size_t ol = out ? strlen(out) : 0;
    if (!out || n < 1 || n > 64 || ol <= size)
        abort();
    size_t xl = ol - size, same = 0, ins;
    while (same < size && out[same] == q[same])
        same++;
    /* the insertion point is at or before the first difference */
    for (ins = 0; ins <= same; ins++)
        if (memcmp(out, q, ins) == 0 && memcmp(out + ins + xl, q + ins, size - ins) == 0 &&
            strncmp(out + ins, "COUNT(DISTINCT ", 15) == 0 && xl >= 3 &&
            memcmp(out + ins + xl - 3, "), ", 3) == 0)
            break;
    if (ins > same)
        abort();
    int seen = 0;
    for (const char *p = out + ins; p < out + ins + xl && (p = strstr(p, "COUNT(DISTINCT "));
         p += 15)
        if (p < out + ins + xl)
            seen++;
    if (seen < n)
        abort();
    if (!db) {
        if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
            sqlite3_exec(db, "CREATE TABLE t(a, b); CREATE TABLE u(a, c); CREATE TABLE v(x)",
                         NULL, NULL, NULL) != SQLITE_OK)
            abort();
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, out, -1, &st, NULL) == SQLITE_OK && st &&
        sqlite3_column_count(st) <= n)
        abort();
    sqlite3_finalize(st);
    free(out);
    free(q);
    return 0;
}
