/* db_sql: the SQL dialect translation of mt_db (mt_db.h, mt_db_translate).
 * Our SQL is written in SQLite's dialect, restricted to a subset that
 * PostgreSQL shares except for the few constructs translated here, all in
 * this one place (docs/design.md "Store backends" gives the reasons).
 *
 * It scans mesatee's own constant SQL only (no outside input reaches it),
 * but it is still written as a bounds-checked tokenizer: a statement is cut
 * into tokens (words, numbers, 'literals', "identifiers", comments,
 * parameters, single characters), the rules are applied on the tokens of
 * one statement, and the text is re-emitted token by token, so nothing
 * inside a literal or comment is ever rewritten. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mt_db.h"

typedef enum { T_WORD, T_NUM, T_STR, T_QID, T_COMMENT, T_PARAM, T_SPACE, T_SEMI, T_CHAR } tok_kind;

typedef struct {
    tok_kind kind;
    const char *p;
    size_t n;
    long param; /* T_PARAM: N of ?N, 0 for a bare ? */
} tok;

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static bool is_word_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool is_word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Cuts sql into tokens; MT_EINVAL for an unterminated literal/comment or a
 * named parameter. */
static mt_status tokenize(const char *sql, tok **out, size_t *n_out, mt_err *err)
{
    size_t cap = 64, n = 0;
    tok *t = malloc(cap * sizeof *t);
    if (!t)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    const char *p = sql;
    mt_status rc = MT_OK;
    while (*p) {
        if (n == cap) {
            tok *nt = realloc(t, 2 * cap * sizeof *t);
            if (!nt) {
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
                break;
            }
            t = nt;
            cap *= 2;
        }
        tok k = {.p = p, .param = 0};
        const char *q = p;
        if (isspace((unsigned char)*q)) {
            while (isspace((unsigned char)*q))
                q++;
            k.kind = T_SPACE;
        } else if (is_word_start(*q)) {
            while (is_word_char(*q))
                q++;
            k.kind = T_WORD;
        } else if (isdigit((unsigned char)*q)) {
            while (isalnum((unsigned char)*q) || *q == '.')
                q++;
            k.kind = T_NUM;
        } else if (*q == '\'' || *q == '"') {
            char quote = *q++;
            for (;;) {
                if (!*q) {
                    rc = mt_err_set(err, MT_EINVAL, "SQL: unterminated %s",
                                    quote == '\'' ? "string literal" : "quoted identifier");
                    goto out;
                }
                if (*q == quote) {
                    if (q[1] == quote) {
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                q++;
            }
            k.kind = quote == '\'' ? T_STR : T_QID;
        } else if (q[0] == '-' && q[1] == '-') {
            while (*q && *q != '\n')
                q++;
            k.kind = T_COMMENT;
        } else if (q[0] == '/' && q[1] == '*') {
            const char *e = strstr(q + 2, "*/");
            if (!e) {
                rc = mt_err_set(err, MT_EINVAL, "SQL: unterminated comment");
                goto out;
            }
            q = e + 2;
            k.kind = T_COMMENT;
        } else if (*q == '?') {
            q++;
            long v = 0;
            while (isdigit((unsigned char)*q)) {
                v = v * 10 + (*q - '0');
                if (v > 32767) {
                    rc = mt_err_set(err, MT_EINVAL, "SQL: parameter number too large");
                    goto out;
                }
                q++;
            }
            if (q - p > 1 && v == 0) {
                rc = mt_err_set(err, MT_EINVAL, "SQL: parameter ?0");
                goto out;
            }
            k.kind = T_PARAM;
            k.param = v;
        } else if ((*q == ':' || *q == '@' || *q == '$') && is_word_start(q[1])) {
            rc = mt_err_set(err, MT_EINVAL, "SQL: named parameter '%c...' (use ? or ?N)", *q);
            goto out;
        } else if (*q == ';') {
            q++;
            k.kind = T_SEMI;
        } else {
            q++;
            k.kind = T_CHAR;
        }
        k.n = (size_t)(q - p);
        t[n++] = k;
        p = q;
    }
out:
    if (rc) {
        free(t);
        return rc;
    }
    *out = t;
    *n_out = n;
    return MT_OK;
}

static bool word_is(const tok *t, const char *w)
{
    return t->kind == T_WORD && strlen(w) == t->n && !strncasecmp(t->p, w, t->n);
}

/* Index of the next significant token (not space/comment) at or after i,
 * or end. */
static size_t sig(const tok *t, size_t i, size_t end)
{
    while (i < end && (t[i].kind == T_SPACE || t[i].kind == T_COMMENT))
        i++;
    return i;
}

/* The primary keys of the tables written with INSERT OR REPLACE (PostgreSQL
 * needs the conflict target; SQLite's REPLACE replaces on any unique
 * constraint, and these tables have no other). A new INSERT OR REPLACE
 * target is one line here. */
static const struct {
    const char *table, *key;
} replace_keys[] = {
    {"audit_anchor", "id"},
    {"kek_rewrap", "id"},
    {"transit_grants", "owner,name,grantee"},
    {"mt_db_test_kv", "k"}, /* tests/unit/test_store_db.c */
};

static const char *replace_key(const tok *w)
{
    for (size_t i = 0; i < sizeof replace_keys / sizeof replace_keys[0]; i++)
        if (word_is(w, replace_keys[i].table))
            return replace_keys[i].key;
    return NULL;
}

static bool in_key(const char *key, const tok *col)
{
    const char *k = key;
    while (*k) {
        size_t l = strcspn(k, ",");
        if (l == col->n && !strncasecmp(k, col->p, l))
            return true;
        k += l;
        if (*k == ',')
            k++;
    }
    return false;
}

/* total(x): SQLite's sum that is 0.0 over no rows and never overflows (a
 * float); `CAST(total(x) AS INTEGER)` saturates at the int64 bounds. On
 * PostgreSQL sum(bigint) is an exact numeric, clamped here to the int64
 * range so that the same CAST gives the same saturated value. */
#define TOTAL_MIN "-9223372036854775808"
#define TOTAL_MAX "9223372036854775807"

/* A word the rules below rewrite or refuse (not usable as a column name in
 * an INSERT OR REPLACE list, whose names are copied into ON CONFLICT). */
static bool rewritten_word(const tok *w)
{
    static const char *const words[] = {"INTEGER", "BLOB", "ifnull", "total", "rowid",
                                        "AUTOINCREMENT"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (word_is(w, words[i]))
            return true;
    return false;
}

/* Translates the statement t[b..e) (no ';') into out. */
static mt_status pg_statement(const tok *t, size_t b, size_t e, sbuf *out, long *maxp,
                              mt_err *err)
{
    size_t f = sig(t, b, e);
    if (f == e) { /* only spaces/comments */
        for (size_t i = b; i < e; i++)
            sb_add(out, t[i].p, t[i].n);
        return MT_OK;
    }
    if (word_is(&t[f], "PRAGMA"))
        return MT_OK; /* SQLite connection settings: nothing on PostgreSQL */
    if (word_is(&t[f], "BEGIN")) {
        size_t s = sig(t, f + 1, e);
        if (s < e && (word_is(&t[s], "IMMEDIATE") || word_is(&t[s], "EXCLUSIVE"))) {
            char lock[96];
            snprintf(lock, sizeof lock, "BEGIN; SELECT pg_advisory_xact_lock(%" PRId64 ")",
                     (int64_t)MT_DB_WRITER_LOCK_KEY);
            sb_str(out, lock);
            s = sig(t, s + 1, e);
        } else {
            sb_str(out, "BEGIN");
            if (s < e && word_is(&t[s], "DEFERRED"))
                s = sig(t, s + 1, e);
        }
        if (s < e && word_is(&t[s], "TRANSACTION"))
            s = sig(t, s + 1, e);
        if (s != e)
            return mt_err_set(err, MT_EINVAL, "SQL: unexpected words after BEGIN");
        return MT_OK;
    }
    /* INSERT OR IGNORE / OR REPLACE */
    const char *conflict = NULL;
    char *conflict_buf = NULL;
    size_t skip_from = 0, skip_to = 0; /* the "OR X" tokens, removed */
    size_t returning = e;
    mt_status rc = MT_OK;
    if (word_is(&t[f], "INSERT")) {
        size_t o = sig(t, f + 1, e);
        if (o < e && word_is(&t[o], "OR")) {
            size_t a = sig(t, o + 1, e);
            skip_from = o;
            skip_to = a + 1;
            if (a < e && word_is(&t[a], "IGNORE")) {
                conflict = " ON CONFLICT DO NOTHING";
            } else if (a < e && word_is(&t[a], "REPLACE")) {
                size_t in = sig(t, a + 1, e);
                size_t tb = in < e && word_is(&t[in], "INTO") ? sig(t, in + 1, e) : e;
                const char *key = tb < e ? replace_key(&t[tb]) : NULL;
                if (!key)
                    return mt_err_set(err, MT_EINVAL,
                                      "SQL: INSERT OR REPLACE into a table without a known "
                                      "key (db_sql.c replace_keys)");
                size_t lp = sig(t, tb + 1, e);
                if (lp >= e || t[lp].kind != T_CHAR || t[lp].p[0] != '(')
                    return mt_err_set(err, MT_EINVAL,
                                      "SQL: INSERT OR REPLACE needs a column list");
                sbuf c = {0};
                sb_str(&c, " ON CONFLICT (");
                sb_str(&c, key);
                sb_str(&c, ") DO ");
                bool any = false;
                size_t i = lp + 1;
                for (;; i++) {
                    i = sig(t, i, e);
                    if (i >= e)
                        break;
                    if (t[i].kind == T_CHAR && t[i].p[0] == ')')
                        break;
                    if (t[i].kind == T_CHAR && t[i].p[0] == ',')
                        continue;
                    size_t nx = sig(t, i + 1, e);
                    if (nx >= e) {
                        i = e; /* unclosed, below */
                        break;
                    }
                    if (t[i].kind != T_WORD || rewritten_word(&t[i]) || nx >= e ||
                        t[nx].kind != T_CHAR || (t[nx].p[0] != ',' && t[nx].p[0] != ')')) {
                        free(c.s);
                        return mt_err_set(err, MT_EINVAL,
                                          "SQL: INSERT OR REPLACE column list: not a name");
                    }
                    if (in_key(key, &t[i]))
                        continue;
                    sb_str(&c, any ? ", " : "UPDATE SET ");
                    sb_add(&c, t[i].p, t[i].n);
                    sb_str(&c, " = EXCLUDED.");
                    sb_add(&c, t[i].p, t[i].n);
                    any = true;
                }
                if (i >= e) {
                    free(c.s);
                    return mt_err_set(err, MT_EINVAL, "SQL: unclosed column list");
                }
                if (!any)
                    sb_str(&c, "NOTHING");
                if (c.oom) {
                    free(c.s);
                    return mt_err_set(err, MT_ENOMEM, "out of memory");
                }
                conflict = conflict_buf = c.s;
            } else {
                return mt_err_set(err, MT_EINVAL,
                                  "SQL: INSERT OR %.*s has no PostgreSQL translation",
                                  a < e && t[a].kind == T_WORD ? (int)t[a].n : 1,
                                  a < e && t[a].kind == T_WORD ? t[a].p : "?");
            }
            size_t nx = sig(t, skip_to, e);
            if (nx < e && word_is(&t[nx], "OR")) {
                free(conflict_buf);
                return mt_err_set(err, MT_EINVAL, "SQL: a second INSERT OR");
            }
            for (size_t i = skip_to; i < e; i++)
                if (word_is(&t[i], "RETURNING")) {
                    returning = i;
                    break;
                }
        }
    }
    /* the last significant token's end: the ON CONFLICT goes there, before
     * trailing spaces/comments (or before RETURNING) */
    size_t last = e;
    if (conflict && returning == e) {
        for (size_t i = e; i > b; i--)
            if (t[i - 1].kind != T_SPACE && t[i - 1].kind != T_COMMENT) {
                last = i;
                break;
            }
    } else if (conflict) {
        last = returning;
    }
    int depth = 0; /* parentheses, for total( ... ) */
    int total_at[8];
    size_t n_total = 0;
    for (size_t i = b; i < e && !rc; i++) {
        if (conflict && i == last) {
            /* before RETURNING: after the space that precedes it */
            bool spaced = returning != e && out->n && isspace((unsigned char)out->s[out->n - 1]);
            sb_str(out, spaced ? conflict + 1 : conflict);
            if (returning != e)
                sb_str(out, " ");
        }
        if (skip_to && i >= skip_from && i < skip_to)
            continue; /* the "OR IGNORE" / "OR REPLACE" words */
        const tok *k = &t[i];
        if (k->kind == T_PARAM) {
            long v = k->param ? k->param : *maxp + 1;
            if (v > *maxp)
                *maxp = v;
            char num[16];
            snprintf(num, sizeof num, "$%ld", v);
            sb_str(out, num);
        } else if (word_is(k, "INTEGER")) {
            size_t a = sig(t, i + 1, e), b2 = a < e ? sig(t, a + 1, e) : e,
                   c = b2 < e ? sig(t, b2 + 1, e) : e;
            if (a < e && word_is(&t[a], "PRIMARY") && b2 < e && word_is(&t[b2], "KEY") && c < e &&
                word_is(&t[c], "AUTOINCREMENT")) {
                sb_str(out, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
                i = c;
            } else {
                sb_str(out, "BIGINT");
            }
        } else if (word_is(k, "BLOB")) {
            sb_str(out, "BYTEA");
        } else if (word_is(k, "ifnull")) {
            sb_str(out, "coalesce");
        } else if (word_is(k, "total") && sig(t, i + 1, e) < e &&
                   t[sig(t, i + 1, e)].kind == T_CHAR && t[sig(t, i + 1, e)].p[0] == '(') {
            /* total(x): a sum that is 0 over no rows */
            if (n_total == sizeof total_at / sizeof total_at[0]) {
                rc = mt_err_set(err, MT_EINVAL, "SQL: total() nested too deep");
                break;
            }
            i = sig(t, i + 1, e);
            depth++;
            total_at[n_total++] = depth;
            sb_str(out, "LEAST(GREATEST(coalesce(sum(");
        } else if (k->kind == T_CHAR && k->p[0] == '(') {
            depth++;
            sb_add(out, k->p, k->n);
        } else if (k->kind == T_CHAR && k->p[0] == ')') {
            sb_add(out, k->p, k->n);
            if (n_total && total_at[n_total - 1] == depth) {
                sb_str(out, ", 0), " TOTAL_MIN "), " TOTAL_MAX ")");
                n_total--;
            }
            depth--;
        } else if (word_is(k, "rowid") || word_is(k, "AUTOINCREMENT")) {
            rc = mt_err_set(err, MT_EINVAL, "SQL: %.*s has no PostgreSQL translation", (int)k->n,
                            k->p);
        } else {
            sb_add(out, k->p, k->n);
        }
    }
    if (!rc && n_total)
        rc = mt_err_set(err, MT_EINVAL, "SQL: unclosed total(");
    if (!rc && conflict && last == e)
        sb_str(out, conflict);
    free(conflict_buf);
    return rc;
}

mt_status mt_db_translate(mt_db_backend backend, const char *sql, char **out, int *nparams,
                          mt_err *err)
{
    *out = NULL;
    if (nparams)
        *nparams = 0;
    if (!sql)
        return mt_err_set(err, MT_EINVAL, "SQL: no text");
    tok *t = NULL;
    size_t n = 0;
    mt_status rc = tokenize(sql, &t, &n, err);
    if (rc)
        return rc;
    long maxp = 0;
    sbuf b = {0};
    sb_str(&b, "");
    if (backend == MT_DB_SQLITE) {
        for (size_t i = 0; i < n; i++)
            if (t[i].kind == T_PARAM && (t[i].param ? t[i].param : maxp + 1) > maxp)
                maxp = t[i].param ? t[i].param : maxp + 1;
        sb_str(&b, sql);
    } else if (backend == MT_DB_PG) {
        size_t s = 0;
        for (size_t i = 0; i <= n && !rc; i++) {
            if (i == n || t[i].kind == T_SEMI) {
                rc = pg_statement(t, s, i, &b, &maxp, err);
                if (i < n)
                    sb_str(&b, ";");
                s = i + 1;
            }
        }
    } else {
        rc = mt_err_set(err, MT_EINVAL, "SQL: unknown backend");
    }
    free(t);
    if (!rc && b.oom)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (rc) {
        free(b.s);
        return rc;
    }
    *out = b.s;
    if (nparams)
        *nparams = (int)maxp;
    return MT_OK;
}
