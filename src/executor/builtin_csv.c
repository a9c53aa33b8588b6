/* builtin_csv: CSV reader and shared helpers of the built-ins (see
 * builtin_csv.h for the format and the contract). */
#include "builtin_csv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "big_alloc.h"
#include "mt_util.h"

/* ------------------------------------------------------------- reader */

typedef struct csv_state {
    const uint8_t *d;
    size_t len, pos, line;
    const char *slot;
    size_t max_record, max_cols;
    char *dst;            /* next free byte of the arena */
    char **cells;         /* fields of the current and earlier records */
    size_t n_cells, cap_cells;
    size_t *lines;
    size_t n_lines, cap_lines;
} csv_state;

static mt_status csv_fail(mt_err *err, mt_status code, const csv_state *s, size_t line,
                          size_t col, const char *what)
{
    return mt_err_set(err, code, "input '%s', line %zu, column %zu: %s", s->slot, line, col,
                      what);
}

static mt_status csv_push_cell(csv_state *s, char *cell, mt_err *err)
{
    if (s->n_cells == s->cap_cells) {
        size_t cap = s->cap_cells ? s->cap_cells * 2 : 64;
        char **p = realloc(s->cells, cap * sizeof *p);
        if (!p)
            return mt_err_set(err, MT_ENOMEM, "input '%s': out of memory", s->slot);
        s->cells = p;
        s->cap_cells = cap;
    }
    s->cells[s->n_cells++] = cell;
    return MT_OK;
}

static mt_status csv_push_line(csv_state *s, size_t line, mt_err *err)
{
    if (s->n_lines == s->cap_lines) {
        size_t cap = s->cap_lines ? s->cap_lines * 2 : 64;
        size_t *p = realloc(s->lines, cap * sizeof *p);
        if (!p)
            return mt_err_set(err, MT_ENOMEM, "input '%s': out of memory", s->slot);
        s->lines = p;
        s->cap_lines = cap;
    }
    s->lines[s->n_lines++] = line;
    return MT_OK;
}

/* Parses one record starting at s->pos (not an empty line); *nf = fields. */
static mt_status csv_record(csv_state *s, size_t *nf, mt_err *err)
{
    const uint8_t *d = s->d;
    size_t n = s->len, rec_line = s->line, rec_start = s->pos, f = 0;
    for (;;) {
        f++;
        if (f > s->max_cols)
            return csv_fail(err, MT_EINVAL, s, s->line, f, "too many fields");
        char *cell = s->dst;
        if (s->pos < n && d[s->pos] == '"') {
            size_t open_line = s->line;
            s->pos++;
            for (;;) {
                if (s->pos >= n)
                    return csv_fail(err, MT_EINVAL, s, open_line, f, "unterminated quoted field");
                uint8_t c = d[s->pos];
                if (c == '"') {
                    if (s->pos + 1 < n && d[s->pos + 1] == '"') {
                        *s->dst++ = '"';
                        s->pos += 2;
                        continue;
                    }
                    s->pos++;
                    break;
                }
                if (c == 0)
                    return csv_fail(err, MT_EINVAL, s, s->line, f, "NUL byte");
                if (c == '\n')
                    s->line++;
                *s->dst++ = (char)c;
                s->pos++;
                if (s->pos - rec_start > s->max_record)
                    goto too_long;
            }
        } else {
            while (s->pos < n) {
                uint8_t c = d[s->pos];
                if (c == ',' || c == '\n')
                    break;
                if (c == '\r') {
                    if (s->pos + 1 < n && d[s->pos + 1] == '\n')
                        break;
                    return csv_fail(err, MT_EINVAL, s, s->line, f,
                                    "carriage return not followed by a line feed");
                }
                if (c == '"')
                    return csv_fail(err, MT_EINVAL, s, s->line, f,
                                    "quote inside an unquoted field (quote the whole field and "
                                    "double the quote)");
                if (c == 0)
                    return csv_fail(err, MT_EINVAL, s, s->line, f, "NUL byte");
                *s->dst++ = (char)c;
                s->pos++;
                if (s->pos - rec_start > s->max_record)
                    goto too_long;
            }
        }
        *s->dst++ = 0;
        mt_status st = csv_push_cell(s, cell, err);
        if (st != MT_OK)
            return st;
        if (s->pos >= n)
            break;
        uint8_t c = d[s->pos];
        if (c == ',') {
            s->pos++;
            continue;
        }
        if (c == '\n') {
            s->pos++;
            s->line++;
            break;
        }
        if (c == '\r' && s->pos + 1 < n && d[s->pos + 1] == '\n') {
            s->pos += 2;
            s->line++;
            break;
        }
        return csv_fail(err, MT_EINVAL, s, s->line, f,
                        "unexpected character after a closing quote");
    }
    *nf = f;
    (void)rec_line;
    return MT_OK;
too_long:
    return mt_err_set(err, MT_ETOOBIG,
                      "input '%s', line %zu, column %zu: record longer than %zu bytes", s->slot,
                      rec_line, f, s->max_record);
}

void mt_csv_free(mt_csv *t)
{
    if (!t)
        return;
    free(t->slot);
    free(t->header);
    free(t->cells);
    free(t->line);
    if (t->arena)
        free(t->arena);
    free(t);
}

/* mt_csv_parse, or with head_only the header record alone (then *body and
 * *body_line receive where the data rows start). */
static mt_status csv_parse(const uint8_t *data, size_t len, const mt_csv_opts *opts,
                           bool head_only, mt_csv **out, size_t *body, size_t *body_line,
                           mt_err *err)
{
    *out = NULL;
    csv_state s = {.d = data, .len = len, .line = 1, .slot = opts->slot ? opts->slot : "?"};
    s.max_record = opts->max_record ? opts->max_record : MT_CSV_MAX_RECORD_DEFAULT;
    s.max_cols = opts->max_cols ? opts->max_cols : MT_CSV_MAX_COLS_DEFAULT;
    mt_status st = MT_OK;
    mt_csv *t = calloc(1, sizeof *t);
    if (!t || !(t->slot = strdup(s.slot)))
        goto oom;
    /* Arena: every field is at most its raw bytes plus a NUL; fields are at
     * most separators + 1. Generated names (no header) need < 24 bytes each. */
    size_t arena;
    if (head_only) {
        /* one record: at most max_record + 1 bytes are copied before the
         * length check fails, and at most max_cols NULs */
        arena = (len < s.max_record ? len : s.max_record) + 1 + s.max_cols + 1;
    } else {
        size_t seps = 1;
        for (size_t i = 0; i < len; i++)
            seps += data[i] == ',' || data[i] == '\n';
        size_t extra = opts->no_header ? 24 * s.max_cols : 0;
        if (seps > (SIZE_MAX - extra) / 2 - len)
            goto oom;
        arena = len + seps + extra + 1;
    }
    /* about the input's size: populated at once (big_alloc.h,
     * a fresh worker's first touch; issue 13 "Cold memory") */
    if (!(t->arena = mt_big_alloc(arena)))
        goto oom;
    s.dst = t->arena;
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
        s.pos = 3;
    bool have_header = false;
    while (s.pos < len) {
        if (data[s.pos] == '\n') {
            s.pos++;
            s.line++;
            continue;
        }
        if (data[s.pos] == '\r' && s.pos + 1 < len && data[s.pos + 1] == '\n') {
            s.pos += 2;
            s.line++;
            continue;
        }
        size_t rec_line = s.line, nf = 0, first = s.n_cells;
        if ((st = csv_record(&s, &nf, err)) != MT_OK)
            goto fail;
        if (!have_header && !opts->no_header) {
            t->n_cols = nf;
            if (!(t->header = malloc(nf * sizeof *t->header)))
                goto oom;
            for (size_t i = 0; i < nf; i++) {
                char *name = s.cells[first + i];
                size_t nl = strlen(name);
                if (nl == 0 || nl > MT_CSV_MAX_NAME) {
                    st = csv_fail(err, MT_EINVAL, &s, rec_line, i + 1,
                                  nl ? "header name longer than 256 bytes" : "empty header name");
                    goto fail;
                }
                for (size_t j = 0; j < i; j++)
                    if (strcmp(t->header[j], name) == 0) {
                        st = csv_fail(err, MT_EINVAL, &s, rec_line, i + 1,
                                      "duplicate header name");
                        goto fail;
                    }
                t->header[i] = name;
            }
            s.n_cells = 0;
            have_header = true;
            if (head_only) {
                *body = s.pos;
                *body_line = s.line;
                break;
            }
            continue;
        }
        if (!have_header) { /* no_header: the first record fixes the width */
            t->n_cols = nf;
            if (!(t->header = malloc(nf * sizeof *t->header)))
                goto oom;
            for (size_t i = 0; i < nf; i++) {
                t->header[i] = s.dst;
                s.dst += snprintf(s.dst, 24, "c%zu", i + 1) + 1;
            }
            have_header = true;
        }
        if (nf != t->n_cols) {
            st = mt_err_set(err, MT_EINVAL,
                            "input '%s', line %zu, column %zu: expected %zu fields as in the "
                            "header, found %zu",
                            s.slot, rec_line, (nf < t->n_cols ? nf : t->n_cols) + 1, t->n_cols, nf);
            goto fail;
        }
        if ((st = csv_push_line(&s, rec_line, err)) != MT_OK)
            goto fail;
    }
    if (!have_header) {
        st = mt_err_set(err, MT_EINVAL, "input '%s', line 1, column 1: empty input (%s)", s.slot,
                        opts->no_header ? "no rows" : "no header row");
        goto fail;
    }
    t->n_rows = s.n_lines;
    t->cells = s.cells;
    t->line = s.lines;
    *out = t;
    return MT_OK;
oom:
    st = mt_err_set(err, MT_ENOMEM, "input '%s': out of memory", s.slot);
fail:
    free(s.cells);
    free(s.lines);
    mt_csv_free(t);
    return st;
}

mt_status mt_csv_parse(const uint8_t *data, size_t len, const mt_csv_opts *opts, mt_csv **out,
                       mt_err *err)
{
    return csv_parse(data, len, opts, false, out, NULL, NULL, err);
}

mt_status mt_csv_parse_header(const uint8_t *data, size_t len, const mt_csv_opts *opts,
                              mt_csv **out, size_t *body, size_t *body_line, mt_err *err)
{
    *out = NULL;
    if (opts->no_header)
        return mt_err_set(err, MT_EINTERNAL, "mt_csv_parse_header: no_header is not supported");
    return csv_parse(data, len, opts, true, out, body, body_line, err);
}

mt_status mt_csv_column(const mt_csv *t, const char *spec, const char *what, size_t *col,
                        mt_err *err)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->header[i], spec) == 0) {
            *col = i;
            return MT_OK;
        }
    int64_t k;
    if (mt_int_parse(spec, &k) && k >= 1 && (uint64_t)k <= t->n_cols) {
        *col = (size_t)k - 1;
        return MT_OK;
    }
    return mt_err_set(err, MT_EINVAL, "argument '%s': input '%s' has no column '%.64s'", what,
                      t->slot, spec);
}

/* ------------------------------------------------------------- numbers */

enum { NUM_BAD, NUM_EXACT, NUM_STRTOD };

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Scans the strict number grammar (optional sign, digits with an optional
 * '.', at least one digit, optional exponent with at least one digit) from p
 * (before end); *stop receives where the grammar ends. NUM_BAD: no number.
 * NUM_EXACT: *out holds the value, correctly rounded, so bit-identical to
 * strtod: the decimal significand has at most 19 digits, is at most 2^53 and
 * the power of ten is at most 22 in magnitude, so significand and power are
 * exact doubles and one IEEE multiplication or division rounds once
 * (Clinger's fast path). NUM_STRTOD: valid, but the caller must use strtod. */
static int num_scan(const char *p, const char *end, double *out, const char **stop)
{
    bool neg = false, dropped = false;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int nd = 0;      /* significant digits in m */
    long e = 0;      /* decimal exponent applied to m */
    size_t digits = 0;
    while (p < end && (unsigned)(*p - '0') < 10) {
        unsigned dg = (unsigned)(*p - '0');
        if (nd < 19) {
            m = m * 10 + dg;
            nd += m != 0;
        } else {
            e++;
            dropped |= dg != 0;
        }
        p++;
        digits++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') < 10) {
            unsigned dg = (unsigned)(*p - '0');
            if (nd < 19) {
                m = m * 10 + dg;
                nd += m != 0;
                e--;
            } else {
                dropped |= dg != 0;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0) {
        *stop = p;
        return NUM_BAD;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (!(p < end && (unsigned)(*p - '0') < 10)) {
            *stop = p;
            return NUM_BAD;
        }
        long x = 0;
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (x < 100000)
                x = x * 10 + (*p - '0');
            p++;
        }
        e += eneg ? -x : x;
    }
    *stop = p;
    if (dropped || m > ((uint64_t)1 << 53))
        return NUM_STRTOD;
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return NUM_EXACT;
    }
    if (e < -22 || e > 22)
        return NUM_STRTOD;
    double v = (double)m;
    v = e < 0 ? v / pow10_exact[-e] : v * pow10_exact[e];
    *out = neg ? -v : v;
    return NUM_EXACT;
}

/* Number of leading ASCII digits in the 8 bytes v (first byte lowest). A
 * byte is a digit when its high nibble is 3 and its low nibble + 6 stays
 * below 16; no carry crosses bytes. */
static inline unsigned swar_digits(uint64_t v)
{
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0ULL, lo = 0x0F0F0F0F0F0F0F0FULL;
    uint64_t bad = ((v & hi) ^ 0x3030303030303030ULL) |
                   (((v & lo) + 0x0606060606060606ULL) & hi);
    return bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
}

/* Value of the k (1..8) leading digits of v: the digits are moved to the top
 * bytes (zero digits fill the bottom), then pairs, quads and the two halves
 * are combined with one multiplication each. */
static inline uint64_t swar_value(uint64_t v, unsigned k)
{
    uint64_t x = (v - 0x3030303030303030ULL) << (8 * (8 - k));
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFULL;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFULL;
    return (x * 10000 + (x >> 32)) & 0xFFFFFFFFULL;
}

static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                      100000000};

/* num_scan for a field followed by at least 24 readable bytes: the digits
 * before and after the '.' (up to 7 each) are converted 8 bytes at a time.
 * Anything longer or with an exponent goes to num_scan. Same results. */
static int num_scan_fast(const char *p0, const char *end, double *out, const char **stop)
{
    if (end - p0 < 24)
        return num_scan(p0, end, out, stop);
    const char *p = p0;
    bool neg = *p == '-';
    p += *p == '-' || *p == '+';
    uint64_t v;
    memcpy(&v, p, 8);
    unsigned k1 = swar_digits(v), k2 = 0;
    if (k1 == 8)
        return num_scan(p0, end, out, stop);
    uint64_t m = k1 ? swar_value(v, k1) : 0;
    p += k1;
    if (*p == '.') {
        p++;
        memcpy(&v, p, 8);
        k2 = swar_digits(v);
        if (k2 == 8)
            return num_scan(p0, end, out, stop);
        if (k2)
            m = m * pow10_u64[k2] + swar_value(v, k2);
        p += k2;
    }
    if (k1 + k2 == 0) {
        *stop = p;
        return NUM_BAD;
    }
    if (*p == 'e' || *p == 'E')
        return num_scan(p0, end, out, stop);
    *stop = p;
    /* at most 14 digits: m < 2^53, and 10^k2 is exact */
    double d = (double)m;
    if (k2)
        d /= (double)pow10_u64[k2];
    *out = neg ? -d : d;
    return NUM_EXACT;
}

bool mt_num_parse(const char *s, double *out)
{
    const char *end = s + strlen(s), *stop;
    double v = 0;
    int r = num_scan(s, end, &v, &stop);
    if (r == NUM_BAD || stop != end)
        return false;
    if (r == NUM_STRTOD) {
        errno = 0;
        v = strtod(s, NULL);
        if (!isfinite(v))
            return false;
    }
    *out = v;
    return true;
}

mt_status mt_csv_number(const mt_csv *t, size_t row, size_t col, double *out, mt_err *err)
{
    const char *s = mt_csv_cell(t, row, col);
    if (mt_num_parse(s, out))
        return MT_OK;
    return mt_err_set(err, MT_EINVAL, "input '%s', line %zu, column %zu: %s", t->slot,
                      t->line[row], col + 1, *s ? "not a finite number" : "empty numeric field");
}

/* ------------------------------------------------------------- numeric rows */

/* Bytes that end or complicate an unquoted field: the fast path hands any
 * record holding one (other than ',' and a final LF or CRLF) to csv_record. */
static bool csv_special(uint8_t c)
{
    return c == ',' || c == '\n' || c == '\r' || c == '"' || c == 0;
}

/* The generic path for one record at s->pos (line s->line): parses it with
 * csv_record into the scratch arena, checks the field count and converts the
 * wanted fields with mt_num_parse, exactly as mt_csv_parse + mt_csv_number
 * would. */
static mt_status num_record_slow(csv_state *s, size_t n_cols, const mt_csv_numcols *nc,
                                 double *v, size_t *bad, const char **why, mt_err *err)
{
    size_t rec_line = s->line, nf = 0;
    s->n_cells = 0;
    char *arena = s->dst;
    mt_status st = csv_record(s, &nf, err);
    s->dst = arena;
    if (st != MT_OK)
        return st;
    if (nf != n_cols)
        return mt_err_set(err, MT_EINVAL,
                          "input '%s', line %zu, column %zu: expected %zu fields as in the "
                          "header, found %zu",
                          s->slot, rec_line, (nf < n_cols ? nf : n_cols) + 1, n_cols, nf);
    *bad = nc->n;
    for (size_t j = 0; j < nc->n; j++) {
        const char *cell = s->cells[nc->col[j]];
        if (!cell[0] && nc->empty_nan && nc->empty_nan[j]) {
            v[j] = NAN;
        } else if (!mt_num_parse(cell, &v[j])) {
            v[j] = NAN;
            if (*bad == nc->n) {
                *bad = j;
                *why = cell[0] ? "not a finite number" : "empty numeric field";
            }
        }
    }
    return MT_OK;
}

mt_status mt_csv_read_numbers(const uint8_t *data, size_t len, const mt_csv_opts *opts,
                              const mt_csv *head, size_t body, size_t body_line,
                              const mt_csv_numcols *nc, mt_csv_row_fn row, void *u, mt_err *err)
{
    csv_state s = {.d = data, .len = len, .pos = body, .line = body_line,
                   .slot = opts->slot ? opts->slot : "?"};
    s.max_record = opts->max_record ? opts->max_record : MT_CSV_MAX_RECORD_DEFAULT;
    s.max_cols = opts->max_cols ? opts->max_cols : MT_CSV_MAX_COLS_DEFAULT;
    size_t n_cols = head->n_cols;
    long *want = malloc(n_cols * sizeof *want);
    double *v = malloc((nc->n ? nc->n : 1) * sizeof *v);
    char *scratch = NULL;
    mt_status st = MT_OK;
    if (!want || !v) {
        st = mt_err_set(err, MT_ENOMEM, "input '%s': out of memory", s.slot);
        goto out;
    }
    for (size_t c = 0; c < n_cols; c++)
        want[c] = -1;
    for (size_t j = 0; j < nc->n; j++) {
        if (nc->col[j] >= n_cols || want[nc->col[j]] >= 0) {
            st = mt_err_set(err, MT_EINTERNAL, "mt_csv_read_numbers: bad column list");
            goto out;
        }
        want[nc->col[j]] = (long)j;
    }
    const char *d = (const char *)data, *end = d + len;
    while (s.pos < len) {
        const char *p = d + s.pos;
        if (*p == '\n') {
            s.pos++;
            s.line++;
            continue;
        }
        if (*p == '\r' && p + 1 < end && p[1] == '\n') {
            s.pos += 2;
            s.line++;
            continue;
        }
        /* fast path: unquoted fields, numbers in the common formats */
        const char *rec = p;
        size_t f = 0, rec_line = s.line;
        bool ok = true, eol = false;
        while (ok && !eol) {
            if (f == n_cols) {
                ok = false; /* too many fields: the generic path says so */
                break;
            }
            long j = want[f++];
            if (j >= 0) {
                const char *q;
                int r = num_scan_fast(p, end, &v[j], &q);
                if (r == NUM_BAD || (q < end && !csv_special((uint8_t)*q))) {
                    if (r == NUM_BAD && q == p && (p == end || *p == ',' || *p == '\n') &&
                        nc->empty_nan && nc->empty_nan[j])
                        v[j] = NAN; /* an empty field read as missing */
                    else
                        ok = false;
                } else if (r == NUM_STRTOD) {
                    char buf[64];
                    size_t tl = (size_t)(q - p);
                    if (tl >= sizeof buf) {
                        ok = false;
                    } else {
                        memcpy(buf, p, tl);
                        buf[tl] = 0;
                        v[j] = strtod(buf, NULL);
                        ok = isfinite(v[j]);
                    }
                    p = q;
                } else {
                    p = q;
                }
            } else {
                while (p < end && !csv_special((uint8_t)*p))
                    p++;
            }
            if (!ok)
                break;
            if (p == end) {
                eol = true;
            } else if (*p == ',') {
                p++;
            } else if (*p == '\n') {
                p++;
                eol = true;
            } else if (*p == '\r' && p + 1 < end && p[1] == '\n') {
                p += 2;
                eol = true;
            } else {
                ok = false; /* quote, NUL, lone CR */
            }
        }
        /* a record ending in ',' at the end of the data has one more (empty)
         * field: the generic path handles it */
        if (ok && (f != n_cols || (p == end && p > rec && p[-1] == ',') ||
                   (size_t)(p - rec) > s.max_record))
            ok = false;
        size_t bad = nc->n;
        const char *why = NULL;
        if (ok) {
            s.pos = (size_t)(p - d);
            s.line++;
        } else {
            if (!scratch) {
                if (!(scratch = malloc(s.max_record + 1 + s.max_cols + 1))) {
                    st = mt_err_set(err, MT_ENOMEM, "input '%s': out of memory", s.slot);
                    goto out;
                }
            }
            s.pos = (size_t)(rec - d);
            s.dst = scratch;
            if ((st = num_record_slow(&s, n_cols, nc, v, &bad, &why, err)) != MT_OK)
                goto out;
        }
        if ((st = row(u, rec_line, v, bad, why, err)) != MT_OK)
            goto out;
    }
out:
    free(want);
    free(v);
    free(scratch);
    free(s.cells);
    return st;
}

/* ------------------------------------------------------------- sbuf */

static bool sbuf_reserve(mt_sbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->p && n <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap + 1);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void mt_sbuf_put(mt_sbuf *b, const void *s, size_t n)
{
    if (!sbuf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void mt_sbuf_puts(mt_sbuf *b, const char *s)
{
    mt_sbuf_put(b, s, strlen(s));
}

void mt_sbuf_printf(mt_sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        mt_sbuf_put(b, tmp, (size_t)n);
        return;
    }
    if (!sbuf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mt_sbuf_csv_field(mt_sbuf *b, const char *s, size_t n)
{
    bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ' || (uint8_t)s[0] == 0xef);
    for (size_t i = 0; !quote && i < n; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        mt_sbuf_put(b, s, n);
        return;
    }
    mt_sbuf_put(b, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"') {
            mt_sbuf_put(b, s + from, i + 1 - from);
            mt_sbuf_put(b, "\"", 1);
            from = i + 1;
        }
    mt_sbuf_put(b, s + from, n - from);
    mt_sbuf_put(b, "\"", 1);
}

void mt_sbuf_num(mt_sbuf *b, double v)
{
    char tmp[40];
    if (v == 0)
        v = 0; /* -0 -> 0 */
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    mt_sbuf_puts(b, tmp);
}

void mt_sbuf_free(mt_sbuf *b)
{
    if (b->p) {
        mt_wipe(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof *b);
}

mt_status mt_sbuf_write_all(mt_bctx *ctx, const mt_sbuf *b, mt_err *err)
{
    if (b->oom)
        return mt_err_set(err, MT_ENOMEM, "out of memory building the output (memory limit?)");
    for (size_t i = 0; i < ctx->n_outputs; i++) {
        mt_status st = mt_bctx_output_write(ctx, i, b->p, b->len, err);
        if (st != MT_OK)
            return st;
    }
    return MT_OK;
}

/* ------------------------------------------------------------- strmap */

struct mt_strmap_slot {
    const char *key; /* NULL = empty */
    uint64_t hash;
    size_t len;
    uint32_t value;
};

/* SipHash-1-3 under the map's random key: a PRF, so a party choosing the
 * keys cannot make them collide (the multiply-fold hash with a random seed
 * used before could not stop that: a word equal to its constant zeroed the
 * state for every seed). */
static inline uint64_t map_hash(const char *p, size_t len, const mt_siphash_key *key)
{
    return mt_siphash13(key, p, len);
}

uint64_t mt_strmap_hash(const mt_strmap *m, const char *key, size_t len)
{
    return map_hash(key, len, &m->key);
}

mt_status mt_strmap_init(mt_strmap *m, size_t n, mt_err *err)
{
    memset(m, 0, sizeof *m);
    size_t sz = 16;
    while (sz < n * 2 && sz < ((size_t)1 << 40))
        sz <<= 1;
    if (!(m->slots = calloc(sz, sizeof *m->slots)))
        return mt_err_set(err, MT_ENOMEM, "out of memory for a table of %zu keys", n);
    m->mask = sz - 1;
    uint8_t kb[16];
    mt_status st = mt_random(kb, sizeof kb, err);
    if (st == MT_OK)
        m->key = mt_siphash_key_from(kb);
    mt_wipe(kb, sizeof kb);
    if (st != MT_OK) {
        free(m->slots);
        m->slots = NULL;
    }
    return st;
}

int64_t mt_strmap_get(const mt_strmap *m, const char *key, size_t len)
{
    uint64_t h = map_hash(key, len, &m->key);
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        const struct mt_strmap_slot *s = &m->slots[i];
        if (!s->key)
            return -1;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s->value;
    }
}

static mt_status map_grow(mt_strmap *m, mt_err *err)
{
    size_t sz = (m->mask + 1) * 2;
    struct mt_strmap_slot *ns = calloc(sz, sizeof *ns);
    if (!ns)
        return mt_err_set(err, MT_ENOMEM, "out of memory for a table of %zu keys", m->count);
    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = (size_t)m->slots[i].hash & (sz - 1);
        while (ns[j].key)
            j = (j + 1) & (sz - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->mask = sz - 1;
    return MT_OK;
}

mt_status mt_strmap_put(mt_strmap *m, const char *key, size_t len, uint32_t value,
                        bool *found, uint32_t *existing, mt_err *err)
{
    if ((m->count + 1) * 2 > m->mask + 1) {
        mt_status st = map_grow(m, err);
        if (st != MT_OK)
            return st;
    }
    uint64_t h = map_hash(key, len, &m->key);
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        struct mt_strmap_slot *s = &m->slots[i];
        if (!s->key) {
            s->key = key;
            s->len = len;
            s->hash = h;
            s->value = value;
            m->count++;
            *found = false;
            return MT_OK;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            *found = true;
            if (existing)
                *existing = s->value;
            return MT_OK;
        }
    }
}

void mt_strmap_free(mt_strmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------- arguments */

mt_status mt_arg_double(const mt_bctx *ctx, const char *name, double min, double max,
                        double dflt, double *out, mt_err *err)
{
    const char *v = mt_bctx_arg(ctx, name);
    if (!v) {
        *out = dflt;
        return MT_OK;
    }
    double d;
    if (!mt_num_parse(v, &d) || d < min || d > max)
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected a number from %g to %g", name,
                          min, max);
    *out = d;
    return MT_OK;
}

mt_status mt_arg_int(const mt_bctx *ctx, const char *name, int64_t min, int64_t max,
                     int64_t dflt, int64_t *out, mt_err *err)
{
    const char *v = mt_bctx_arg(ctx, name);
    if (!v) {
        *out = dflt;
        return MT_OK;
    }
    int64_t d;
    if (!mt_int_parse(v, &d) || d < min || d > max)
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected an integer from %lld to %lld",
                          name, (long long)min, (long long)max);
    *out = d;
    return MT_OK;
}

mt_status mt_arg_bool(const mt_bctx *ctx, const char *name, bool dflt, bool *out, mt_err *err)
{
    const char *v = mt_bctx_arg(ctx, name);
    if (!v)
        *out = dflt;
    else if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected true or false", name);
    return MT_OK;
}

mt_status mt_arg_only(const mt_bctx *ctx, const char *fn, const char *const *allowed,
                      mt_err *err)
{
    if (!ctx->args)
        return MT_OK;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ctx->args, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], k) == 0;
        if (!ok)
            return mt_err_set(err, MT_EINVAL, "%s: unknown argument '%.64s'", fn, k);
        if (!json_is_string(v))
            return mt_err_set(err, MT_EINVAL, "argument '%.64s': expected a string", k);
    }
    return MT_OK;
}

void mt_inputs_by_name(const mt_bctx *ctx, size_t *idx)
{
    for (size_t i = 0; i < ctx->n_inputs; i++) {
        size_t j = i;
        while (j > 0 && strcmp(ctx->inputs[idx[j - 1]].slot, ctx->inputs[i].slot) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}

void mt_outputs_by_name(const mt_bctx *ctx, size_t *idx)
{
    for (size_t i = 0; i < ctx->n_outputs; i++) {
        size_t j = i;
        while (j > 0 && strcmp(ctx->outputs[idx[j - 1]].slot, ctx->outputs[i].slot) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}
