/* builtin_sql: the clean room's aggregation-mode query check, exposed for
 * its fuzz target (fuzz/sql_shape.c); the built-in itself is mt_builtin_sql
 * (mt_builtin.h, docs/builtins.md).
 * Thread-safety: reentrant. */
#ifndef MT_BUILTIN_SQL_H
#define MT_BUILTIN_SQL_H

#include <stddef.h>

#include "mt_err.h"

/* Checks that query has the aggregation shape (docs/builtins.md) over input
 * tables tables[0..n) (rowid[i]: the name of table i's rowid) and returns in
 * *out (heap, NUL-terminated) the query with one COUNT(DISTINCT ref.rowid)
 * per input table in FROM inserted first in the result columns (*n_counts
 * of them). MT_EPERM naming the rule when the shape is not accepted. */
mt_status mt_sql_agg_rewrite(const char *query, const char *const *tables,
                             const char *const *rowid, size_t n, char **out, int *n_counts,
                             mt_err *err);

#endif
