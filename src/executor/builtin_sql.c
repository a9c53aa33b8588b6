/* builtin_sql: a data clean room. Every input slot becomes a table of an
 * in-memory SQLite database inside the worker (CSV with a header; column
 * types inferred), the task's "query" argument runs against it, and the
 * result goes to every output as CSV.
 *
 * Policy enforced by the platform, not by the query: after loading, an
 * authorizer allows only SELECT, reads of the input tables (never sqlite_*
 * schema tables or pragma_* functions), functions (not load_extension) and
 * recursive CTEs, so tables are read-only and ATTACH, PRAGMA, DDL, DML and
 * transactions are refused at prepare time; extension loading is disabled,
 * virtual-table modules other than json_each/json_tree are dropped, triggers
 * and views are off, SQLITE_LIMIT_ATTACHED is 0; exactly one read-only
 * statement; at most max_rows result rows.
 *
 * min_group_size k >= 1 is the aggregation mode: the query must have the
 * shape "SELECT dims and COUNT/SUM/AVG/TOTAL(...) FROM tables [WHERE]
 * [GROUP BY dims] [HAVING] [ORDER BY] [LIMIT]" (no subquery, CTE, compound,
 * window, DISTINCT or bare column), checked by a tokenizer below; the
 * platform adds COUNT(DISTINCT <ref>.rowid) for every input table in FROM to
 * the query it runs and suppresses every result row where one of them is
 * below k. The query's own columns (a "__group_size" among them) are never
 * trusted for this. k = 0 is the explicit no-aggregation mode.
 *
 * Failure reasons carry a class and a position only (SQLite's error code and
 * a fixed class name, the query offset, the input line): never SQLite's
 * message, which can quote query text and other parties' values (e.g. a
 * json_extract error). The message goes to mt_bctx_detail, for the
 * operator's log. The number of suppressed rows is not revealed. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "builtin_csv.h"
#include "builtin_sql.h"
#include "mt_util.h"

#define SQL_MAX_QUERY 100000
#define SQL_MAX_TOKENS 20000

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
    case SQLITE_READ:
        /* the schema (sqlite_master/sqlite_schema/sqlite_temp_master, which
         * hold every party's column names) and pragma/stat tables */
        if (a && (sqlite3_strnicmp(a, "sqlite_", 7) == 0 || sqlite3_strnicmp(a, "pragma_", 7) == 0 ||
                  sqlite3_stricmp(a, "dbstat") == 0)) {
            if (!au->denied[0])
                snprintf(au->denied, sizeof au->denied, "reading the schema or statistics");
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_SELECT:
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

/* A fixed class name for SQLite's current error, chosen by the message's
 * fixed prefix: only this literal, never the message, reaches a reason. */
static const char *sql_error_class(sqlite3 *db)
{
    static const char *const known[] = {
        "no such column", "no such table", "no such function", "ambiguous column name",
        "wrong number of arguments to function", "misuse of aggregate",
        "misuse of window function", "aggregate functions are not allowed",
        "duplicate column name", "unrecognized token", "incomplete input",
        "parser stack overflow", "too many columns", "too many terms", "malformed JSON",
        "bad JSON path", "JSON path error", "JSON cannot hold BLOB values", "integer overflow",
        "string or blob too big", "cannot store", "a GROUP BY clause is required",
        "HAVING clause on a non-aggregate query", "ORDER BY term out of range",
        "GROUP BY term out of range", "SELECTs to the left and right of", "row value misused",
        "sub-select returns", "no tables specified", NULL};
    const char *m = db ? sqlite3_errmsg(db) : NULL;
    if (!m)
        return "error";
    if (strncmp(m, "near \"", 6) == 0)
        return "syntax error";
    for (int i = 0; known[i]; i++)
        if (strncmp(m, known[i], strlen(known[i])) == 0)
            return known[i];
    return "error";
}

/* Fails with a class, SQLite's error code and (when SQLite knows it) the
 * byte offset in the query; SQLite's own message goes to the operator-only
 * detail. */
static mt_status sql_fail_at(mt_bctx *ctx, sqlite3 *db, const char *what, int ins_at,
                             int ins_len, mt_err *err)
{
    int code = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
    int off = db ? sqlite3_error_offset(db) : -1;
    /* an offset in the platform's rewrite, mapped back to the query's text */
    if (ins_len > 0 && off >= ins_at)
        off = off >= ins_at + ins_len ? off - ins_len : ins_at;
    mt_bctx_detail(ctx, "sql: %s: %s", what, db ? sqlite3_errmsg(db) : "?");
    char at[48] = "";
    if (off >= 0)
        snprintf(at, sizeof at, ", at byte %d of the query", off);
    return mt_err_set(err, MT_EINVAL, "sql: %s: %s (SQLite error %d: %s%s)", what,
                      sql_error_class(db), code, sqlite3_errstr(code), at);
}

static mt_status sql_fail(mt_bctx *ctx, sqlite3 *db, const char *what, mt_err *err)
{
    return sql_fail_at(ctx, db, what, 0, 0, err);
}

/* The name under which the table's rowid is reachable: the first of rowid,
 * _rowid_ and oid that is not also a column of the input; NULL if all are. */
static const char *pick_rowid(const mt_csv *t)
{
    static const char *const names[] = {"rowid", "_rowid_", "oid", NULL};
    for (int i = 0; names[i]; i++) {
        bool used = false;
        for (size_t c = 0; c < t->n_cols && !used; c++)
            used = sqlite3_stricmp(t->header[c], names[i]) == 0;
        if (!used)
            return names[i];
    }
    return NULL;
}

/* Creates and fills the table of one input; *rowid_name: see pick_rowid. */
static mt_status load_table(mt_bctx *ctx, sqlite3 *db, const mt_bctx_input *in,
                            const char **rowid_name, mt_err *err)
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
    *rowid_name = pick_rowid(t);
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
        mt_bctx_detail(ctx, "sql: input '%s': %s", in->slot, sqlite3_errmsg(db));
        st = mt_err_set(err, MT_EINVAL, "input '%s', line 1: cannot create its table: %s "
                        "(SQLite error %d; SQLite column names are case-insensitive)",
                        in->slot, sql_error_class(db), sqlite3_extended_errcode(db));
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
        st = sql_fail(ctx, db, "loading a table", err);
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
                st = sql_fail(ctx, db, "loading a table", err);
                goto out;
            }
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            mt_bctx_detail(ctx, "sql: input '%s', line %zu: %s", in->slot, t->line[r],
                           sqlite3_errmsg(db));
            st = mt_err_set(err, MT_EINVAL, "input '%s', line %zu: cannot load the row: %s "
                            "(SQLite error %d)", in->slot, t->line[r], sql_error_class(db),
                            sqlite3_extended_errcode(db));
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

/* ------------------------------------------------- aggregation-mode checks */

/* A token of the query, as SQLite's tokenizer would cut it where that
 * matters here: comments and whitespace skipped; strings, quoted
 * identifiers ("..", [..], `..`) and numbers are single tokens; depth is the
 * parenthesis depth at the token. */
enum { TK_WORD, TK_QID, TK_STR, TK_NUM, TK_VAR, TK_PUNCT };

typedef struct sql_tok {
    int type;
    const char *p;
    size_t n;
    int depth;
} sql_tok;

typedef struct sql_toks {
    sql_tok *t;
    size_t n;
} sql_toks;

static bool word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || c >= 0x80;
}

/* Tokenizes q. False for what SQLite would not accept either (unterminated
 * string or quoted identifier, unbalanced parentheses) or too many tokens. */
static bool sql_tokenize(const char *q, sql_toks *out)
{
    size_t cap = 256, n = 0;
    sql_tok *t = malloc(cap * sizeof *t);
    int depth = 0;
    const char *s = q;
    if (!t)
        return false;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f')
            s++;
        if (!*s)
            break;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
            continue;
        }
        if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            s = e ? e + 2 : s + strlen(s);
            continue;
        }
        if (n == cap) {
            if (cap >= SQL_MAX_TOKENS)
                goto bad;
            sql_tok *nt = realloc(t, cap * 2 * sizeof *t);
            if (!nt)
                goto bad;
            t = nt;
            cap *= 2;
        }
        sql_tok *k = &t[n++];
        k->p = s;
        k->depth = depth;
        unsigned char c = (unsigned char)*s;
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : (char)c;
            s++;
            for (;;) {
                if (!*s)
                    goto bad;
                if (*s == close) {
                    if (close != ']' && s[1] == close) {
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                s++;
            }
            k->type = c == '\'' ? TK_STR : TK_QID;
        } else if ((c >= '0' && c <= '9') || (c == '.' && s[1] >= '0' && s[1] <= '9')) {
            while (word_char((unsigned char)*s) || *s == '.') {
                if ((*s == 'e' || *s == 'E') && (s[1] == '+' || s[1] == '-'))
                    s++;
                s++;
            }
            k->type = TK_NUM;
        } else if (word_char(c)) {
            while (word_char((unsigned char)*s))
                s++;
            k->type = TK_WORD;
        } else if (c == '?' || c == ':' || c == '@' || c == '#') {
            s++;
            while (word_char((unsigned char)*s))
                s++;
            k->type = TK_VAR;
        } else {
            if (c == '(')
                depth++;
            else if (c == ')' && --depth < 0)
                goto bad;
            if (c == ')')
                k->depth = depth;
            s++;
            k->type = TK_PUNCT;
        }
        k->n = (size_t)(s - k->p);
    }
    if (depth != 0)
        goto bad;
    out->t = t;
    out->n = n;
    return true;
bad:
    free(t);
    return false;
}

static bool tok_is(const sql_tok *k, const char *word)
{
    return k->type == TK_WORD && strlen(word) == k->n && sqlite3_strnicmp(k->p, word, (int)k->n) == 0;
}

static bool tok_punct(const sql_tok *k, char c)
{
    return k->type == TK_PUNCT && k->p[0] == c;
}

static bool toks_equal(const sql_tok *a, size_t na, const sql_tok *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (a[i].type != b[i].type || a[i].n != b[i].n)
            return false;
        if (a[i].type == TK_WORD ? sqlite3_strnicmp(a[i].p, b[i].p, (int)a[i].n) != 0
                                 : memcmp(a[i].p, b[i].p, a[i].n) != 0)
            return false;
    }
    return true;
}

/* A run [b, e) of tokens. */
typedef struct span {
    size_t b, e;
} span;

/* Splits [b, e) at commas of depth d into parts; SIZE_MAX when there are
 * more than max (the caller refuses: no part goes unchecked). */
static size_t split_commas(const sql_toks *tk, size_t b, size_t e, int d, span *part, size_t max)
{
    size_t n = 0, start = b;
    for (size_t i = b; i <= e; i++)
        if (i == e || (tok_punct(&tk->t[i], ',') && tk->t[i].depth == d)) {
            if (n == max)
                return SIZE_MAX;
            part[n].b = start;
            part[n].e = i;
            n++;
            start = i + 1;
        }
    return n;
}

/* True if [b, e) is one call of COUNT, SUM, AVG or TOTAL: name '(' .. ')'. */
static bool is_aggregate_call(const sql_toks *tk, size_t b, size_t e)
{
    if (e - b < 3 || !tok_punct(&tk->t[b + 1], '(') || !tok_punct(&tk->t[e - 1], ')') ||
        tk->t[e - 1].depth != tk->t[b].depth)
        return false;
    for (size_t i = b + 2; i < e - 1; i++)
        if (tk->t[i].depth <= tk->t[b].depth)
            return false; /* the ')' closing the call is the last token */
    return tok_is(&tk->t[b], "COUNT") || tok_is(&tk->t[b], "SUM") ||
           tok_is(&tk->t[b], "AVG") || tok_is(&tk->t[b], "TOTAL");
}

/* Strips "[AS] alias" from a result column [b, *e). */
static void strip_alias(const sql_toks *tk, size_t b, size_t *e)
{
    size_t n = *e - b;
    if (n >= 3 && tok_is(&tk->t[*e - 2], "AS")) {
        *e -= 2;
        return;
    }
    if (n >= 2 && (tk->t[*e - 1].type == TK_WORD || tk->t[*e - 1].type == TK_QID)) {
        const sql_tok *prev = &tk->t[*e - 2];
        if (tok_punct(prev, ')') || prev->type == TK_QID || prev->type == TK_STR ||
            prev->type == TK_NUM || (prev->type == TK_WORD && !tok_is(prev, "CASE")))
            *e -= 1;
    }
}

static bool is_clause_word(const sql_tok *k)
{
    static const char *const words[] = {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", NULL};
    for (int i = 0; words[i]; i++)
        if (tok_is(k, words[i]))
            return true;
    return false;
}

static bool is_join_word(const sql_tok *k)
{
    static const char *const words[] = {"JOIN",  "LEFT",    "RIGHT", "FULL", "INNER",
                                        "OUTER", "CROSS",   "NATURAL", "ON", "USING",
                                        "INDEXED", "NOT", NULL};
    for (int i = 0; words[i]; i++)
        if (tok_is(k, words[i]))
            return true;
    return false;
}

/* One input table used in FROM under ref (its alias, or its name). */
typedef struct agg_src {
    const sql_tok *ref;
    const char *rowid;
} agg_src;

#define AGG_MAX_SRC 64
#define AGG_MAX_COLS 2000

/* Checks the aggregation-mode shape of the query (see the file comment) and
 * builds the query the platform runs: the query with one
 * COUNT(DISTINCT ref.rowid) per input table in FROM inserted first in the
 * result columns (*n_counts of them). Reasons name the rule, never query
 * text beyond its token position. */
static mt_status agg_rewrite(const char *query, const char *const *tables, size_t n_tables,
                             const char *const *rowid, mt_sbuf *out, int *n_counts,
                             size_t *ins_at, mt_err *err)
{
    sql_toks tk = {0};
    span *items = NULL, *keys = NULL;
    agg_src src[AGG_MAX_SRC];
    size_t nsrc = 0;
    mt_status st = MT_OK;
#define AGG_FAIL(...)                                                                   \
    do {                                                                                \
        st = mt_err_set(err, MT_EPERM, "sql: with min_group_size set, " __VA_ARGS__);   \
        goto out;                                                                       \
    } while (0)
    if (!sql_tokenize(query, &tk))
        AGG_FAIL("the query must be one complete statement of at most %d tokens",
                 SQL_MAX_TOKENS);
    size_t n = tk.n;
    while (n > 0 && tok_punct(&tk.t[n - 1], ';') && tk.t[n - 1].depth == 0)
        n--;
    if (n == 0 || !tok_is(&tk.t[0], "SELECT"))
        AGG_FAIL("the query must start with SELECT (no WITH, no VALUES)");
    for (size_t i = 0; i < n; i++) {
        static const char *const banned[] = {"SELECT", "WITH", "VALUES", "UNION", "INTERSECT",
                                             "EXCEPT", "OVER", "WINDOW", "RECURSIVE", NULL};
        if (tok_punct(&tk.t[i], ';'))
            AGG_FAIL("the query must hold exactly one statement");
        for (int w = 0; banned[w]; w++)
            if (i > 0 && tok_is(&tk.t[i], banned[w]))
                AGG_FAIL("subqueries, CTEs, compound SELECTs and window functions are not "
                         "allowed (token %zu: %s)", i + 1, banned[w]);
    }
    size_t sel_b = 1;
    if (sel_b < n && tok_is(&tk.t[sel_b], "DISTINCT"))
        AGG_FAIL("SELECT DISTINCT is not allowed (group with GROUP BY)");
    if (sel_b < n && tok_is(&tk.t[sel_b], "ALL"))
        sel_b++;
    /* clause boundaries at depth 0 */
    size_t from = 0, where = 0, group = 0, having = 0, order = 0, limit = 0;
    for (size_t i = sel_b; i < n; i++) {
        const sql_tok *k = &tk.t[i];
        if (k->depth != 0)
            continue;
        if (!from && tok_is(k, "FROM"))
            from = i;
        else if (from && !where && !group && tok_is(k, "WHERE"))
            where = i;
        else if (from && !group && tok_is(k, "GROUP") && i + 1 < n && tok_is(&tk.t[i + 1], "BY"))
            group = i;
        else if (from && !having && tok_is(k, "HAVING"))
            having = i;
        else if (from && !order && tok_is(k, "ORDER") && i + 1 < n && tok_is(&tk.t[i + 1], "BY"))
            order = i;
        else if (from && !limit && tok_is(k, "LIMIT"))
            limit = i;
    }
    if (!from || from == sel_b)
        AGG_FAIL("the query must read input tables (SELECT ... FROM ...)");
    size_t from_e = where ? where : group ? group : having ? having : order ? order : limit ? limit : n;
    size_t group_e = having ? having : order ? order : limit ? limit : n;
    if ((group && group < from_e) || (having && having < group) || (order && order < having) ||
        (limit && limit < order))
        AGG_FAIL("clauses must come in the order FROM, WHERE, GROUP BY, HAVING, ORDER BY, "
                 "LIMIT");
    /* the GROUP BY keys */
    size_t nkeys = 0;
    if (!(items = calloc(AGG_MAX_COLS, sizeof *items)) ||
        !(keys = calloc(AGG_MAX_COLS, sizeof *keys))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if (group) {
        if (group + 2 >= group_e)
            AGG_FAIL("GROUP BY needs at least one key");
        nkeys = split_commas(&tk, group + 2, group_e, 0, keys, AGG_MAX_COLS);
        if (nkeys == SIZE_MAX)
            AGG_FAIL("at most %d GROUP BY keys", AGG_MAX_COLS);
    }
    /* every result column is an allowed aggregate or a GROUP BY key */
    size_t nitems = split_commas(&tk, sel_b, from, 0, items, AGG_MAX_COLS);
    if (nitems == SIZE_MAX)
        AGG_FAIL("at most %d result columns", AGG_MAX_COLS);
    for (size_t i = 0; i < nitems; i++) {
        size_t b = items[i].b, e = items[i].e;
        if (b == e)
            AGG_FAIL("result column %zu is empty", i + 1);
        strip_alias(&tk, b, &e);
        if (is_aggregate_call(&tk, b, e))
            continue;
        bool dim = false;
        for (size_t k = 0; k < nkeys && !dim; k++) {
            const sql_tok *kt = &tk.t[keys[k].b];
            size_t kn = keys[k].e - keys[k].b;
            dim = toks_equal(&tk.t[b], e - b, kt, kn) ||
                  (kn == 1 && kt->type == TK_NUM && (size_t)strtoul(kt->p, NULL, 10) == i + 1);
        }
        if (!dim)
            AGG_FAIL("result column %zu must be COUNT(..), SUM(..), AVG(..) or TOTAL(..) "
                     "alone, or exactly one of the GROUP BY keys", i + 1);
    }
    /* ORDER BY terms: a result column number or alias, an aggregate or a key */
    if (order) {
        span ob[64];
        size_t no = split_commas(&tk, order + 2, limit ? limit : n, 0, ob, 64);
        if (no == SIZE_MAX)
            AGG_FAIL("at most 64 ORDER BY terms");
        for (size_t o = 0; o < no; o++) {
            size_t b = ob[o].b, e = ob[o].e;
            while (e > b && (tok_is(&tk.t[e - 1], "ASC") || tok_is(&tk.t[e - 1], "DESC") ||
                             tok_is(&tk.t[e - 1], "FIRST") || tok_is(&tk.t[e - 1], "LAST") ||
                             tok_is(&tk.t[e - 1], "NULLS")))
                e--;
            if (e - b >= 2 && tok_is(&tk.t[e - 2], "COLLATE"))
                e -= 2;
            bool ok = e - b == 1 && (tk.t[b].type == TK_NUM || tk.t[b].type == TK_WORD ||
                                     tk.t[b].type == TK_QID);
            if (e - b == 1 && tk.t[b].type != TK_NUM) {
                /* a bare name must be a result column alias */
                ok = false;
                for (size_t i = 0; i < nitems && !ok; i++) {
                    size_t ie = items[i].e;
                    strip_alias(&tk, items[i].b, &ie);
                    ok = ie < items[i].e && toks_equal(&tk.t[b], 1, &tk.t[items[i].e - 1], 1);
                }
            }
            ok = ok || is_aggregate_call(&tk, b, e);
            for (size_t k = 0; k < nkeys && !ok; k++)
                ok = toks_equal(&tk.t[b], e - b, &tk.t[keys[k].b], keys[k].e - keys[k].b);
            if (!ok)
                AGG_FAIL("ORDER BY term %zu must be a result column (number or alias), an "
                         "aggregate or a GROUP BY key", o + 1);
        }
    }
    /* FROM: table [AS] alias | function(..) [AS] alias, joined by ',' or JOIN */
    bool expect = true;
    for (size_t i = from + 1; i < from_e; i++) {
        const sql_tok *k = &tk.t[i];
        if (k->depth != 0)
            continue;
        if (tok_punct(k, ',') || tok_is(k, "JOIN")) {
            expect = true;
            continue;
        }
        if (!expect)
            continue;
        expect = false;
        if (k->type != TK_WORD && k->type != TK_QID)
            AGG_FAIL("FROM may only name input tables and table-valued functions (no "
                     "parenthesised joins)");
        if (tok_is(k, "LEFT") || tok_is(k, "RIGHT") || tok_is(k, "FULL") || tok_is(k, "INNER") ||
            tok_is(k, "CROSS") || tok_is(k, "NATURAL") || tok_is(k, "OUTER")) {
            expect = true;
            continue;
        }
        if (i + 1 < from_e && tok_punct(&tk.t[i + 1], '.'))
            AGG_FAIL("FROM must name tables without a schema");
        /* which input table, if any */
        const char *rid = NULL;
        bool input = false;
        char name[80];
        size_t nl = k->type == TK_QID ? k->n - 2 : k->n;
        const char *np = k->type == TK_QID ? k->p + 1 : k->p;
        if (nl < sizeof name && !(k->type == TK_QID && memchr(np, k->p[0] == '[' ? ']' : k->p[0], nl))) {
            memcpy(name, np, nl);
            name[nl] = 0;
            for (size_t t = 0; t < n_tables && !input; t++)
                if (sqlite3_stricmp(tables[t], name) == 0) {
                    input = true;
                    rid = rowid[t];
                }
        }
        size_t j = i + 1;
        if (j < from_e && tok_punct(&tk.t[j], '(')) { /* table-valued function */
            int d = tk.t[j].depth;
            for (j++; j < from_e && !(tok_punct(&tk.t[j], ')') && tk.t[j].depth == d); j++)
                ;
            j++;
            input = false;
        }
        const sql_tok *ref = k;
        if (j < from_e && tok_is(&tk.t[j], "AS"))
            j++;
        if (j < from_e && (tk.t[j].type == TK_WORD || tk.t[j].type == TK_QID) &&
            !is_join_word(&tk.t[j]) && !is_clause_word(&tk.t[j]))
            ref = &tk.t[j];
        if (!input)
            continue;
        if (!rid)
            AGG_FAIL("input '%s' has columns named rowid, _rowid_ and oid: the platform cannot "
                     "count its rows", name);
        if (nsrc == AGG_MAX_SRC)
            AGG_FAIL("at most %d tables in FROM", AGG_MAX_SRC);
        src[nsrc].ref = ref;
        src[nsrc].rowid = rid;
        nsrc++;
    }
    if (nsrc == 0)
        AGG_FAIL("FROM must name at least one input table");
    /* the rewritten query: SELECT [ALL] <counts>, <the rest as written> */
    size_t ins = (size_t)(tk.t[sel_b].p - query);
    mt_sbuf_put(out, query, ins);
    for (size_t i = 0; i < nsrc; i++) {
        mt_sbuf_puts(out, "COUNT(DISTINCT ");
        mt_sbuf_put(out, src[i].ref->p, src[i].ref->n);
        mt_sbuf_puts(out, ".");
        mt_sbuf_puts(out, src[i].rowid);
        mt_sbuf_puts(out, "), ");
    }
    mt_sbuf_puts(out, query + ins);
    if (out->oom) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    *n_counts = (int)nsrc;
    *ins_at = ins;
out:
#undef AGG_FAIL
    free(items);
    free(keys);
    free(tk.t);
    return st;
}

mt_status mt_sql_agg_rewrite(const char *query, const char *const *tables,
                             const char *const *rowid, size_t n, char **out, int *n_counts,
                             mt_err *err)
{
    mt_sbuf b = {0};
    *out = NULL;
    *n_counts = 0;
    size_t at = 0;
    mt_status st = agg_rewrite(query, tables, n, rowid, &b, n_counts, &at, err);
    if (st != MT_OK) {
        mt_sbuf_free(&b);
        return st;
    }
    *out = b.p;
    return MT_OK;
}

mt_status mt_builtin_sql(mt_bctx *ctx, char **ret, mt_err *err)
{
    static const char *const allowed[] = {"query", "max_rows", "min_group_size", NULL};
    static const char *keep_modules[] = {"json_each", "json_tree", NULL};
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
    mt_sbuf b = {0}, rq = {0};
    size_t rows = 0, suppressed = 0;
    int n_counts = 0; /* aggregation mode: leading engine-computed group counts */
    int ins_at = 0, ins_len = 0; /* where and how long they are in the query run */
    const char **rowid = calloc(ctx->n_inputs, sizeof *rowid);
    const char **tables = calloc(ctx->n_inputs, sizeof *tables);
    if (!rowid || !tables) {
        free(rowid);
        free(tables);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ctx->n_inputs; i++)
        tables[i] = ctx->inputs[i].slot;
    if ((st = sql_vfs_init(err)) != MT_OK)
        goto out;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = sql_fail(ctx, db, "cannot open the in-memory database", err);
        goto out;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
    /* no virtual-table module but JSON's (dbstat, fts, rtree... are gone);
     * json_each is warmed up so its eponymous table exists before the lock */
    sqlite3_drop_modules(db, keep_modules);
    if (sqlite3_exec(db, "SELECT 1 FROM json_each('[]'); SELECT 1 FROM json_tree('[]'); "
                         "PRAGMA temp_store = MEMORY; BEGIN",
                     NULL, NULL, NULL) != SQLITE_OK) {
        st = sql_fail(ctx, db, "setting up the database", err);
        goto out;
    }
    for (size_t i = 0; i < ctx->n_inputs; i++)
        if ((st = load_table(ctx, db, &ctx->inputs[i], &rowid[i], err)) != MT_OK)
            goto out;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = sql_fail(ctx, db, "loading the tables", err);
        goto out;
    }
    /* aggregation mode: the platform's own group counts are added */
    if (min_group > 0) {
        size_t at = 0;
        if ((st = agg_rewrite(query, tables, ctx->n_inputs, rowid, &rq, &n_counts, &at, err)) !=
            MT_OK)
            goto out;
        ins_at = (int)at;
        ins_len = (int)(rq.len - strlen(query));
        query = rq.p;
    }
    /* ---- locked from here on: only the approved query, read-only ---- */
    sqlite3_set_authorizer(db, sql_authorizer, &au);
    au.locked = true;
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, SQL_MAX_QUERY + 64 * AGG_MAX_SRC + 256);
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
            st = sql_fail_at(ctx, db, "the query does not compile", ins_at, ins_len, err);
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
    int nc = sqlite3_column_count(stmt);
    if (nc <= n_counts) {
        st = mt_err_set(err, MT_EINVAL, "sql: the query returns no columns");
        goto out;
    }
    for (int c = n_counts; c < nc; c++) {
        const char *name = sqlite3_column_name(stmt, c);
        if (c > n_counts)
            mt_sbuf_put(&b, ",", 1);
        if (nc - n_counts == 1 && (!name || !*name))
            mt_sbuf_puts(&b, "\"\"");
        else
            mt_sbuf_csv_field(&b, name ? name : "", name ? strlen(name) : 0);
    }
    mt_sbuf_put(&b, "\n", 1);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        bool small = false;
        for (int c = 0; c < n_counts && !small; c++)
            small = sqlite3_column_type(stmt, c) != SQLITE_INTEGER ||
                    sqlite3_column_int64(stmt, c) < min_group;
        if (small) {
            suppressed++;
            continue;
        }
        if (++rows > (size_t)max_rows) {
            st = mt_err_set(err, MT_ETOOBIG,
                            "sql: the result has more than max_rows = %lld rows",
                            (long long)max_rows);
            goto out;
        }
        for (int c = n_counts; c < nc; c++) {
            if (c > n_counts)
                mt_sbuf_put(&b, ",", 1);
            put_value(&b, stmt, c, nc - n_counts == 1);
        }
        mt_sbuf_put(&b, "\n", 1);
        if (b.oom)
            break;
    }
    if (!b.oom && rc != SQLITE_DONE) {
        st = sql_fail_at(ctx, db, "the query failed", ins_at, ins_len, err);
        goto out;
    }
    if ((st = mt_sbuf_write_all(ctx, &b, err)) != MT_OK)
        goto out;
    /* the number of suppressed groups is not revealed (log and return value
     * are read by every participant) */
    (void)suppressed;
    mt_bctx_log(ctx, "sql: %zu tables, %zu rows out", ctx->n_inputs, rows);
    char buf[64];
    snprintf(buf, sizeof buf, "rows: %zu", rows);
    if (!(*ret = strdup(buf)))
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    mt_sbuf_free(&b);
    mt_sbuf_free(&rq);
    free(rowid);
    free(tables);
    return st;
}
