/* builtin_csv: the one bounds-checked CSV reader of the built-ins, plus the
 * small shared helpers they use (growable output buffer, CSV writer, number
 * parsing and formatting, a string hash map, argument parsing).
 *
 * Format read (RFC 4180 with the usual relaxations): records end with LF or
 * CRLF; fields are separated by ','; a field may be quoted with '"' and then
 * contain ',', '"' (written "") and line breaks; a UTF-8 byte-order mark at
 * the start is skipped; lines that are completely empty are skipped. Refused,
 * with "input '<slot>', line L, column C: ..." (C counts fields from 1): a
 * quote inside an unquoted field, bytes after a closing quote, an
 * unterminated quote, a NUL byte, a CR not followed by LF, a record longer
 * than max_record bytes, more than max_cols fields, a record whose field
 * count differs from the header's, an empty, duplicate or overlong header
 * name, and an input with no header. Messages never quote field contents:
 * they go to every participant of the task.
 *
 * Ownership: mt_csv_parse returns a table owning copies of every field
 * (NUL-terminated, unescaped); free it with mt_csv_free (NULL is a no-op).
 * Thread-safety: reentrant; a table may be read from several threads. */
#ifndef BUILTIN_CSV_H
#define BUILTIN_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_bschema.h"
#include "mt_builtin.h"
#include "mt_err.h"
#include "mt_siphash.h"

#define MT_CSV_MAX_RECORD_DEFAULT (1u << 20) /* bytes of one record */
#define MT_CSV_MAX_COLS_DEFAULT 4096
#define MT_CSV_MAX_NAME 256 /* bytes of a header name */

typedef struct mt_csv_opts {
    const char *slot;   /* input slot, for messages */
    bool no_header;     /* true: every record is data, columns named c1, c2, ... */
    size_t max_record;  /* 0 = MT_CSV_MAX_RECORD_DEFAULT */
    size_t max_cols;    /* 0 = MT_CSV_MAX_COLS_DEFAULT */
} mt_csv_opts;

typedef struct mt_csv {
    char *slot;         /* copy of opts.slot */
    size_t n_cols;
    size_t n_rows;      /* data rows (the header is not counted) */
    char **header;      /* n_cols names */
    char **cells;       /* n_rows * n_cols fields, row-major */
    size_t *line;       /* line number (1-based) where each data row starts */
    char *arena;        /* storage of header names and cells */
} mt_csv;

/* Parses data[0..len) into *out. On error returns MT_EINVAL (MT_ETOOBIG for
 * an overlong record, MT_ENOMEM) with a message naming slot, line and column,
 * and *out is NULL. */
mt_status mt_csv_parse(const uint8_t *data, size_t len, const mt_csv_opts *opts, mt_csv **out,
                       mt_err *err);
void mt_csv_free(mt_csv *t);

/* Field (row, col); never NULL. */
static inline const char *mt_csv_cell(const mt_csv *t, size_t row, size_t col)
{
    return t->cells[row * t->n_cols + col];
}

/* Column index of spec: a header name, or, if no column has that name, a
 * decimal k meaning the k-th column (from 1). MT_EINVAL names the argument
 * (what) and the slot when there is no such column. */
mt_status mt_csv_column(const mt_csv *t, const char *spec, const char *what, size_t *col,
                        mt_err *err);

/* Strict number of field (row, col): optional sign, digits, '.', exponent;
 * no spaces, no hex, no inf/nan; finite. MT_EINVAL names slot, line, column. */
mt_status mt_csv_number(const mt_csv *t, size_t row, size_t col, double *out, mt_err *err);

/* ---- numeric rows without a table (the fast path of the numeric built-ins) ---- */

/* Parses only the header record of data, with the checks and messages of
 * mt_csv_parse (opts->no_header is not supported); the table has no rows.
 * *body and *body_line receive the offset and line number where the data
 * rows start. On error *out is NULL. */
mt_status mt_csv_parse_header(const uint8_t *data, size_t len, const mt_csv_opts *opts,
                              mt_csv **out, size_t *body, size_t *body_line, mt_err *err);

/* Columns to read as numbers: col[0..n) (distinct indices, in the order the
 * values are delivered); empty_nan (may be NULL): empty_nan[j] reads an empty
 * field of col[j] as NaN instead of failing it. */
typedef struct mt_csv_numcols {
    const size_t *col;
    const bool *empty_nan;
    size_t n;
} mt_csv_numcols;

/* Called for each data row, in order: line is where the record starts, v[j]
 * the number of column col[j] (NaN where it is not one). bad is the first j
 * whose field is not a strict finite number (nc->n when every one is), why
 * the reason for it ("not a finite number" or "empty numeric field"). A
 * number error is the caller's to report (it may defer it, so that a later
 * CSV syntax error wins as with mt_csv_parse). Any status but MT_OK stops
 * the reading and is returned. */
typedef mt_status (*mt_csv_row_fn)(void *u, size_t line, const double *v, size_t bad,
                                   const char *why, mt_err *err);

/* Reads the data rows data[body..len) of a CSV whose header is head (from
 * mt_csv_parse_header with the same opts), converting the fields nc->col to
 * doubles without copying fields: unquoted fields in the usual decimal forms
 * take a fast path whose values are bit-identical to strtod; any other
 * record (quotes, CRs, odd numbers, wrong field count, ...) goes through the
 * reader of mt_csv_parse, so values, syntax errors and their line and column
 * are exactly mt_csv_parse's + mt_num_parse's. The first syntax error stops
 * the reading (MT_EINVAL / MT_ETOOBIG); MT_ENOMEM. */
mt_status mt_csv_read_numbers(const uint8_t *data, size_t len, const mt_csv_opts *opts,
                              const mt_csv *head, size_t body, size_t body_line,
                              const mt_csv_numcols *nc, mt_csv_row_fn row, void *u, mt_err *err);

/* Parses s as a strict finite number (same rules); false if it is not one. */
bool mt_num_parse(const char *s, double *out);
/* mt_int_parse (strict decimal integer fitting int64): see mt_bschema.h. */

/* ---- output buffer ---- */

typedef struct mt_sbuf {
    char *p;
    size_t len, cap;
    bool oom;           /* an append failed; the content is incomplete */
} mt_sbuf;

void mt_sbuf_put(mt_sbuf *b, const void *s, size_t n);
void mt_sbuf_puts(mt_sbuf *b, const char *s);
void mt_sbuf_printf(mt_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as one CSV field, quoted when it holds ',', '"', CR, LF,
 * leading/trailing spaces or starts with 0xEF (a byte-order mark). A record
 * of one empty field must be written as "" by the caller (an empty line is
 * skipped by the reader). */
void mt_sbuf_csv_field(mt_sbuf *b, const char *s, size_t n);
/* Appends a double in the shortest of %.15g/%.17g that reads back exactly
 * ("-0" is written "0"). */
void mt_sbuf_num(mt_sbuf *b, double v);
/* Wipes and frees the content. */
void mt_sbuf_free(mt_sbuf *b);
/* Writes b to every output of ctx (MT_ENOMEM if b->oom). */
mt_status mt_sbuf_write_all(mt_bctx *ctx, const mt_sbuf *b, mt_err *err);

/* ---- string hash map: key bytes -> index (uint32) ---- */

typedef struct mt_strmap {
    struct mt_strmap_slot *slots;
    size_t mask, count;
    mt_siphash_key key;
} mt_strmap;

/* Empty map sized for about n keys. Keys (an untrusted party's CSV fields)
 * are hashed with SipHash-1-3 under a random key per map (mt_siphash.h), so
 * that they cannot be chosen to collide. Fails (nothing allocated) when
 * memory or the random key cannot be had. */
mt_status mt_strmap_init(mt_strmap *m, size_t n, mt_err *err);
/* Finds key; returns its value or -1. */
int64_t mt_strmap_get(const mt_strmap *m, const char *key, size_t len);
/* Inserts key -> value unless present; *found tells which. Keys are not
 * copied: they must outlive the map. */
mt_status mt_strmap_put(mt_strmap *m, const char *key, size_t len, uint32_t value,
                        bool *found, uint32_t *existing, mt_err *err);
void mt_strmap_free(mt_strmap *m);
/* The hash the map files key under (for tests). */
uint64_t mt_strmap_hash(const mt_strmap *m, const char *key, size_t len);

/* ---- arguments ---- */

/* Optional number argument in [min, max] (default dflt when absent). */
mt_status mt_arg_double(const mt_bctx *ctx, const char *name, double min, double max,
                        double dflt, double *out, mt_err *err);
mt_status mt_arg_int(const mt_bctx *ctx, const char *name, int64_t min, int64_t max,
                     int64_t dflt, int64_t *out, mt_err *err);
/* Optional "true"/"false" argument. */
mt_status mt_arg_bool(const mt_bctx *ctx, const char *name, bool dflt, bool *out, mt_err *err);
/* Fails naming the first argument not in the NULL-terminated list. */
mt_status mt_arg_only(const mt_bctx *ctx, const char *fn, const char *const *allowed,
                      mt_err *err);
/* Input slots in bytewise name order: idx[0..ctx->n_inputs). */
void mt_inputs_by_name(const mt_bctx *ctx, size_t *idx);
/* Output slots in bytewise name order: idx[0..ctx->n_outputs). */
void mt_outputs_by_name(const mt_bctx *ctx, size_t *idx);

/* ---- the built-ins of this set (registered in builtins.c) ---- */
mt_status mt_builtin_private_join_and_compute(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_psi_cardinality(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_ordered_set_intersect(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_ordered_set_join(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_linear_regression_train(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_linear_regression_predict(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_logistic_regression_train(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_logistic_regression_predict(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_sql(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_password_check(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_rsa_sign(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_keystore_sign(mt_bctx *ctx, char **ret, mt_err *err);

#endif
