/* builtin_sql: a data clean room. Every input slot becomes a table of an
 * in-memory SQLite database inside the worker (CSV with a header; column
 * types inferred), the task's "query" argument runs against it, and the
 * result goes to every output as CSV.
 *
 * Policy enforced by the platform, not by the query: after loading, an
 * authorizer allows only SELECT, reads, functions (not load_extension) and
 * recursive CTEs, so tables are read-only and ATTACH, PRAGMA, DDL, DML and
 * transactions are refused at prepare time; extension loading is disabled,
 * triggers and views are off, SQLITE_LIMIT_ATTACHED is 0; exactly one
 * read-only statement; at most max_rows result rows; with min_group_size k
 * the query must return a "__group_size" column and rows where it is below
 * k are suppressed (see docs/builtins.md). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "builtin_csv.h"
#include "mt_util.h"

#define SQL_MAX_QUERY 100000
#define SQL_GROUP_COL "__group_size"

enum { SQL_INTEGER, SQL_REAL, SQL_TEXT };

typedef struct sql_auth {
    bool locked;
    char denied[160]; /* first refused action, for the message */
} sql_auth;

static const char *auth_name(int action)
{
    switch (action) {
    case SQLITE_ATTACH: return "ATTACH";
    case SQLITE_DETACH: return "DETACH";
    case SQLITE_PRAGMA: return "PRAGMA";
    case SQLITE_INSERT: return "INSERT";
    case SQLITE_UPDATE: return "UPDATE";
    case SQLITE_DELETE: return "DELETE";
    case SQLITE_TRANSACTION: return "transaction control";
    case SQLITE_SAVEPOINT: return "SAVEPOINT";
    case SQLITE_ALTER_TABLE: return "ALTER TABLE";
    case SQLITE_ANALYZE: return "ANALYZE";
    case SQLITE_REINDEX: return "REINDEX";
    case SQLITE_DROP_TABLE: case SQLITE_DROP_TEMP_TABLE: return "DROP TABLE";
    case SQLITE_CREATE_TABLE: case SQLITE_CREATE_TEMP_TABLE: return "CREATE TABLE";
    case SQLITE_CREATE_VIEW: case SQLITE_CREATE_TEMP_VIEW: return "CREATE VIEW";
    case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TEMP_INDEX: return "CREATE INDEX";
    case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_TEMP_TRIGGER: return "CREATE TRIGGER";
    case SQLITE_CREATE_VTABLE: return "CREATE VIRTUAL TABLE";
    default: return "this statement";
    }
}

static int sql_authorizer(void *arg, int action, const char *a, const char *b, const char *db,
                          const char *trigger)
{
    sql_auth *au = arg;
    if (!au->locked)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        if (b && sqlite3_stricmp(b, "load_extension") == 0) {
            if (!au->denied[0])
                snprintf(au->denied, sizeof au->denied, "function load_extension");
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_ALTER_TABLE:
        /* DDL: name it, even though SQLite asked about sqlite_schema first */
        snprintf(au->denied, sizeof au->denied, "%s", auth_name(action));
        return SQLITE_DENY;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        if (a && (sqlite3_stricmp(a, "sqlite_master") == 0 ||
                  sqlite3_stricmp(a, "sqlite_schema") == 0 ||
                  sqlite3_stricmp(a, "sqlite_temp_master") == 0)) {
            if (!au->denied[0])
                snprintf(au->denied, sizeof au->denied,
                         "changing the schema (CREATE, DROP, ALTER)");
            return SQLITE_DENY;
        }
        __attribute__((fallthrough)); /* other tables: named below */
    default:
        if (!au->denied[0])
            snprintf(au->denied, sizeof au->denied, "%s", auth_name(action));
        return SQLITE_DENY;
    }
}

/* Appends "name" as a quoted SQL identifier. */
static void put_ident(mt_sbuf *b, const char *s)
{
    mt_sbuf_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            mt_sbuf_put(b, "\"", 1);
        mt_sbuf_put(b, s, 1);
    }
    mt_sbuf_put(b, "\"", 1);
}

static bool valid_table_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || strncasecmp(s, "sqlite_", 7) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!(alpha || (i > 0 && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static mt_status sql_fail(sqlite3 *db, const char *what, mt_err *err)
{
    return mt_err_set(err, MT_EINVAL, "sql: %s: %.160s", what, db ? sqlite3_errmsg(db) : "?");
}

/* Creates and fills the table of one input. */
static mt_status load_table(sqlite3 *db, const mt_bctx_input *in, mt_err *err)
{
    if (!valid_table_name(in->slot))
        return mt_err_set(err, MT_EINVAL,
                          "sql: input slot '%.64s' is not usable as a table name "
                          "([A-Za-z_][A-Za-z0-9_]*, at most 64, not sqlite_*)",
                          in->slot);
    mt_csv_opts o = {.slot = in->slot};
    mt_csv *t = NULL;
    mt_status st = mt_csv_parse(in->data, in->len, &o, &t, err);
    if (st != MT_OK)
        return st;
    int *type = calloc(t->n_cols, sizeof *type);
    mt_sbuf q = {0};
    sqlite3_stmt *ins = NULL;
    if (!type) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        bool any = false, all_int = true, all_num = true;
        for (size_t r = 0; r < t->n_rows && all_num; r++) {
            const char *v = mt_csv_cell(t, r, c);
            if (!*v)
                continue;
            any = true;
            int64_t iv;
            double dv;
            if (all_int && !mt_int_parse(v, &iv))
                all_int = false;
            if (!all_int && !mt_num_parse(v, &dv))
                all_num = false;
        }
        type[c] = !any ? SQL_TEXT : all_int ? SQL_INTEGER : all_num ? SQL_REAL : SQL_TEXT;
    }
    mt_sbuf_puts(&q, "CREATE TABLE ");
    put_ident(&q, in->slot);
    mt_sbuf_puts(&q, " (");
    for (size_t c = 0; c < t->n_cols; c++) {
        if (c)
            mt_sbuf_puts(&q, ", ");
        put_ident(&q, t->header[c]);
        mt_sbuf_puts(&q, type[c] == SQL_INTEGER ? " INTEGER" : type[c] == SQL_REAL ? " REAL"
                                                                                  : " TEXT");
    }
    mt_sbuf_puts(&q, ") STRICT");
    if (q.oom) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if (sqlite3_exec(db, q.p, NULL, NULL, NULL) != SQLITE_OK) {
        st = mt_err_set(err, MT_EINVAL, "input '%s', line 1: cannot create its table: %.120s "
                        "(SQLite column names are case-insensitive)",
                        in->slot, sqlite3_errmsg(db));
        goto out;
    }
    mt_sbuf_free(&q);
    mt_sbuf_puts(&q, "INSERT INTO ");
    put_ident(&q, in->slot);
    mt_sbuf_puts(&q, " VALUES (");
    for (size_t c = 0; c < t->n_cols; c++)
        mt_sbuf_puts(&q, c ? ", ?" : "?");
    mt_sbuf_puts(&q, ")");
    if (q.oom || sqlite3_prepare_v2(db, q.p, -1, &ins, NULL) != SQLITE_OK) {
        st = sql_fail(db, "loading a table", err);
        goto out;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *v = mt_csv_cell(t, r, c);
            int rc;
            int64_t iv = 0;
            double dv = 0;
            if (!*v && type[c] != SQL_TEXT)
                rc = sqlite3_bind_null(ins, (int)c + 1);
            else if (type[c] == SQL_INTEGER && mt_int_parse(v, &iv))
                rc = sqlite3_bind_int64(ins, (int)c + 1, iv);
            else if (type[c] == SQL_REAL && mt_num_parse(v, &dv))
                rc = sqlite3_bind_double(ins, (int)c + 1, dv);
            else
                rc = sqlite3_bind_text(ins, (int)c + 1, v, -1, SQLITE_STATIC);
            if (rc != SQLITE_OK) {
                st = sql_fail(db, "loading a table", err);
                goto out;
            }
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            st = mt_err_set(err, MT_EINVAL, "input '%s', line %zu: cannot load the row: %.120s",
                            in->slot, t->line[r], sqlite3_errmsg(db));
            goto out;
        }
        sqlite3_reset(ins);
    }
out:
    sqlite3_finalize(ins);
    mt_sbuf_free(&q);
    free(type);
    mt_csv_free(t);
    return st;
}

/* True if s holds only whitespace and SQL comments. */
static bool only_comments(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            if (!e)
                return true; /* an unterminated comment runs to the end */
            s = e + 2;
        } else {
            return *s == 0 || (*s == ';' && only_comments(s + 1));
        }
    }
}

static void put_value(mt_sbuf *b, sqlite3_stmt *st, int c, bool lone)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_NULL:
        if (lone)
            mt_sbuf_puts(b, "\"\"");
        break;
    case SQLITE_INTEGER:
        mt_sbuf_printf(b, "%lld", (long long)sqlite3_column_int64(st, c));
        break;
    case SQLITE_BLOB: {
        const uint8_t *p = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        for (int i = 0; i < n; i++)
            mt_sbuf_printf(b, "%02x", p[i]);
        break;
    }
    default: /* TEXT; FLOAT in SQLite's own text form ("4.0", 15 digits) as the shell */ {
        const char *s = (const char *)sqlite3_column_text(st, c);
        size_t n = (size_t)sqlite3_column_bytes(st, c);
        if (lone && n == 0)
            mt_sbuf_puts(b, "\"\"");
        else
            mt_sbuf_csv_field(b, s ? s : "", s ? n : 0);
    }
    }
}

/* SQLite seeds its PRNG through the default VFS's xRandomness, which for
 * the unix VFS opens /dev/urandom: forbidden in the sandbox. This VFS is the
 * unix one with getrandom(2) instead (the database is in memory: no file of
 * the VFS is ever opened). */
static int sandbox_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    int done = 0;
    while (done < n) {
        ssize_t r = getrandom(out + done, (size_t)(n - done), 0);
        if (r <= 0)
            break;
        done += (int)r;
    }
    return done;
}

static mt_status sql_vfs_init(mt_err *err)
{
    static sqlite3_vfs vfs;
    if (sqlite3_vfs_find("mt_sandbox"))
        return MT_OK;
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base)
        return mt_err_set(err, MT_EINTERNAL, "sql: SQLite has no default VFS");
    vfs = *base;
    vfs.zName = "mt_sandbox";
    vfs.pNext = NULL;
    vfs.xRandomness = sandbox_randomness;
    if (sqlite3_vfs_register(&vfs, 1) != SQLITE_OK)
        return mt_err_set(err, MT_EINTERNAL, "sql: registering the sandbox VFS failed");
    return MT_OK;
}

mt_status mt_builtin_sql(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"query", "max_rows", "min_group_size", NULL};
    *ret = NULL;
    int64_t max_rows, min_group;
    mt_status st;
    if ((st = mt_arg_only(ctx, "sql", allowed, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "max_rows", 1, 10000000, 10000, &max_rows, err)) != MT_OK ||
        (st = mt_arg_int(ctx, "min_group_size", 0, 1000000000, 0, &min_group, err)) != MT_OK)
        return st;
    const char *query = mt_bctx_arg(ctx, "query");
    if (!query || !*query)
        return mt_err_set(err, MT_EINVAL, "sql: argument 'query' (one SELECT statement) is "
                                          "required");
    if (strlen(query) > SQL_MAX_QUERY)
        return mt_err_set(err, MT_EINVAL, "sql: argument 'query' is longer than %d bytes",
                          SQL_MAX_QUERY);
    if (ctx->n_inputs == 0)
        return mt_err_set(err, MT_EINVAL, "sql needs at least 1 input slot (one table each)");
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    sql_auth au = {0};
    mt_sbuf b = {0};
    size_t rows = 0, suppressed = 0;
    if ((st = sql_vfs_init(err)) != MT_OK)
        goto out;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = sql_fail(db, "cannot open the in-memory database", err);
        goto out;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
    if (sqlite3_exec(db, "PRAGMA temp_store = MEMORY; BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        st = sql_fail(db, "setting up the database", err);
        goto out;
    }
    for (size_t i = 0; i < ctx->n_inputs; i++)
        if ((st = load_table(db, &ctx->inputs[i], err)) != MT_OK)
            goto out;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = sql_fail(db, "loading the tables", err);
        goto out;
    }
    /* ---- locked from here on: only the approved query, read-only ---- */
    sqlite3_set_authorizer(db, sql_authorizer, &au);
    au.locked = true;
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, SQL_MAX_QUERY);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 64 << 20);
    sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 200);
    sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 100);
    sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 32);
    sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000);
    sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
    sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
    const char *tail = NULL;
    if (sqlite3_prepare_v3(db, query, -1, 0, &stmt, &tail) != SQLITE_OK) {
        if (au.denied[0])
            st = mt_err_set(err, MT_EPERM, "sql: %s is not allowed (read-only SELECT queries only)",
                            au.denied);
        else
            st = sql_fail(db, "the query does not compile", err);
        goto out;
    }
    if (!stmt) {
        st = mt_err_set(err, MT_EINVAL, "sql: argument 'query' holds no statement");
        goto out;
    }
    if (tail && !only_comments(tail)) {
        st = mt_err_set(err, MT_EINVAL, "sql: argument 'query' must hold exactly one statement");
        goto out;
    }
    if (!sqlite3_stmt_readonly(stmt)) {
        st = mt_err_set(err, MT_EPERM, "sql: only read-only SELECT queries are allowed");
        goto out;
    }
    int nc = sqlite3_column_count(stmt), gcol = -1;
    if (nc == 0) {
        st = mt_err_set(err, MT_EINVAL, "sql: the query returns no columns");
        goto out;
    }
    for (int c = 0; c < nc; c++) {
        const char *name = sqlite3_column_name(stmt, c);
        if (name && strcmp(name, SQL_GROUP_COL) == 0) {
            if (gcol >= 0) {
                st = mt_err_set(err, MT_EINVAL, "sql: the query returns two __group_size columns");
                goto out;
            }
            gcol = c;
        }
        if (c)
            mt_sbuf_put(&b, ",", 1);
        if (nc == 1 && (!name || !*name))
            mt_sbuf_puts(&b, "\"\"");
        else
            mt_sbuf_csv_field(&b, name ? name : "", name ? strlen(name) : 0);
    }
    mt_sbuf_put(&b, "\n", 1);
    if (min_group > 0 && gcol < 0) {
        st = mt_err_set(err, MT_EINVAL,
                        "sql: min_group_size is set, so the query must return the size of each "
                        "group as a column named __group_size (e.g. COUNT(*) AS __group_size)");
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (min_group > 0) {
            if (sqlite3_column_type(stmt, gcol) != SQLITE_INTEGER) {
                st = mt_err_set(err, MT_EINVAL,
                                "sql: result row %zu: __group_size is not an integer",
                                rows + suppressed + 1);
                goto out;
            }
            if (sqlite3_column_int64(stmt, gcol) < min_group) {
                suppressed++;
                continue;
            }
        }
        if (++rows > (size_t)max_rows) {
            st = mt_err_set(err, MT_ETOOBIG,
                            "sql: the result has more than max_rows = %lld rows",
                            (long long)max_rows);
            goto out;
        }
        for (int c = 0; c < nc; c++) {
            if (c)
                mt_sbuf_put(&b, ",", 1);
            put_value(&b, stmt, c, nc == 1);
        }
        mt_sbuf_put(&b, "\n", 1);
        if (b.oom)
            break;
    }
    if (!b.oom && rc != SQLITE_DONE) {
        st = sql_fail(db, "the query failed", err);
        goto out;
    }
    if ((st = mt_sbuf_write_all(ctx, &b, err)) != MT_OK)
        goto out;
    mt_bctx_log(ctx, "sql: %zu tables, %zu rows out, %zu suppressed", ctx->n_inputs, rows,
                suppressed);
    char buf[96];
    snprintf(buf, sizeof buf, "rows: %zu, suppressed: %zu", rows, suppressed);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    mt_sbuf_free(&b);
    return st;
}
