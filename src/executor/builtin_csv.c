/* builtin_csv: CSV reader and shared helpers of the built-ins (see
 * builtin_csv.h for the format and the contract). */
#include "builtin_csv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

mt_status mt_csv_parse(const uint8_t *data, size_t len, const mt_csv_opts *opts, mt_csv **out,
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
    size_t seps = 1;
    for (size_t i = 0; i < len; i++)
        seps += data[i] == ',' || data[i] == '\n';
    size_t extra = opts->no_header ? 24 * s.max_cols : 0;
    if (seps > (SIZE_MAX - extra) / 2 - len)
        goto oom;
    if (!(t->arena = malloc(len + seps + extra + 1)))
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

bool mt_num_parse(const char *s, double *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (digits == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    errno = 0;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

bool mt_int_parse(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
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

static inline uint64_t map_mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t map_hash(const char *p, size_t len, uint64_t seed)
{
    uint64_t h = seed ^ (len * 0xa0761d6478bd642fULL);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = map_mix(w ^ 0x9e3779b97f4a7c15ULL, h ^ 0xd6e8feb86659fd93ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p + i, len - i);
    h = map_mix(w ^ 0x9e3779b97f4a7c15ULL ^ h, 0xd6e8feb86659fd93ULL ^ len);
    return map_mix(h, 0xa0761d6478bd642fULL);
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
    mt_status st = mt_random((uint8_t *)&m->seed, sizeof m->seed, err);
    if (st != MT_OK) {
        free(m->slots);
        m->slots = NULL;
    }
    return st;
}

int64_t mt_strmap_get(const mt_strmap *m, const char *key, size_t len)
{
    uint64_t h = map_hash(key, len, m->seed);
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
    uint64_t h = map_hash(key, len, m->seed);
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
