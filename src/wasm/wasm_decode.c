/* wasm_decode: the binary decoder and module-level validator.
 *
 * Every byte of a module passes through the bounds-checked reader below
 * (rd_*), which fails instead of reading past its end; sections must consume
 * exactly their declared size. After the sections are decoded, module-level
 * rules are checked (indices, types of constant expressions, limits, export
 * names, data count) and every function body is validated and translated by
 * wasm_compile_func(). On any failure the module is freed and an MT_EINVAL
 * error names the section, the byte offset and the reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_siphash.h"
#include "mt_util.h"
#include "wasm_int.h"

typedef struct rd {
    const uint8_t *b;
    size_t pos, end;
    const char *sec;
    mt_err *err;
    bool failed;
} rd;

static bool rd_fail(rd *r, const char *why)
{
    if (!r->failed)
        mt_err_set(r->err, MT_EINVAL, "wasm: %s section, offset %zu: %s", r->sec, r->pos, why);
    r->failed = true;
    return false;
}

/* rd_fail with a formatted reason (numbers only: never input bytes). */
static bool rd_failf(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool rd_failf(rd *r, const char *fmt, ...)
{
    char why[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return rd_fail(r, why);
}

static bool rd_byte(rd *r, uint8_t *out)
{
    if (r->pos >= r->end)
        return rd_fail(r, "unexpected end of section or function");
    *out = r->b[r->pos++];
    return true;
}

static bool rd_bytes(rd *r, size_t n, const uint8_t **out)
{
    if (n > r->end - r->pos)
        return rd_fail(r, "unexpected end of section or function");
    *out = r->b + r->pos;
    r->pos += n;
    return true;
}

static bool rd_uleb(rd *r, unsigned bits, uint64_t *out)
{
    size_t used;
    wasm_leb_status st = wasm_leb_u(r->b + r->pos, r->end - r->pos, bits, out, &used);
    r->pos += used;
    if (st == WASM_LEB_OK)
        return true;
    return rd_fail(r, st == WASM_LEB_END ? "unexpected end of section or function"
                                         : wasm_leb_why(st));
}

static bool rd_sleb(rd *r, unsigned bits, int64_t *out)
{
    size_t used;
    wasm_leb_status st = wasm_leb_s(r->b + r->pos, r->end - r->pos, bits, out, &used);
    r->pos += used;
    if (st == WASM_LEB_OK)
        return true;
    return rd_fail(r, st == WASM_LEB_END ? "unexpected end of section or function"
                                         : wasm_leb_why(st));
}

static bool rd_u32(rd *r, uint32_t *out)
{
    uint64_t v = 0;
    if (!rd_uleb(r, 32, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static bool rd_name(rd *r, char **out, uint32_t *len)
{
    uint32_t n;
    const uint8_t *p;
    if (!rd_u32(r, &n) || !rd_bytes(r, n, &p))
        return false;
    if (!utf8_valid(p, n))
        return rd_fail(r, "malformed UTF-8 encoding");
    if (out) {
        *out = malloc((size_t)n + 1);
        if (!*out)
            return rd_fail(r, "out of memory");
        memcpy(*out, p, n);
        (*out)[n] = 0;
        *len = n;
    }
    return true;
}

static bool is_valtype(uint8_t t)
{
    return t == MT_WASM_I32 || t == MT_WASM_I64 || t == MT_WASM_F32 || t == MT_WASM_F64 ||
           t == MT_WASM_FUNCREF || t == MT_WASM_EXTERNREF;
}

static bool rd_valtype(rd *r, uint8_t *t)
{
    if (!rd_byte(r, t))
        return false;
    if (!is_valtype(*t))
        return rd_fail(r, *t == 0x7B ? "SIMD (v128) is not supported" : "malformed value type");
    return true;
}

static bool rd_reftype(rd *r, uint8_t *t)
{
    if (!rd_byte(r, t))
        return false;
    if (*t != MT_WASM_FUNCREF && *t != MT_WASM_EXTERNREF)
        return rd_fail(r, "malformed reference type");
    return true;
}

static bool rd_limits(rd *r, wasm_lim *l, uint64_t bound, const char *what)
{
    uint8_t flag;
    if (!rd_byte(r, &flag))
        return false;
    if (flag > 1)
        return rd_fail(r, flag & 0x80 ? "integer representation too long (limits flag)"
                                      : "integer too large (limits flag)");
    if (!rd_u32(r, &l->min))
        return false;
    l->has_max = flag == 1;
    l->max = 0;
    if (l->has_max && !rd_u32(r, &l->max))
        return false;
    if (l->min > bound || (l->has_max && l->max > bound))
        return rd_fail(r, what);
    if (l->has_max && l->max < l->min)
        return rd_fail(r, "size minimum must not be greater than maximum");
    return true;
}

/* Reads a constant expression; types and indices are checked later. */
static bool rd_constexpr(rd *r, mt_wasm_module *m, wasm_constexpr *ce)
{
    uint8_t op;
    int64_t s;
    const uint8_t *p;
    uint32_t idx;
    memset(ce, 0, sizeof *ce);
    if (!rd_byte(r, &op))
        return false;
    switch (op) {
    case 0x41:
        if (!rd_sleb(r, 32, &s))
            return false;
        ce->kind = CE_CONST, ce->type = MT_WASM_I32, ce->val = (uint32_t)s;
        break;
    case 0x42:
        if (!rd_sleb(r, 64, &s))
            return false;
        ce->kind = CE_CONST, ce->type = MT_WASM_I64, ce->val = (uint64_t)s;
        break;
    case 0x43: {
        uint32_t v;
        if (!rd_bytes(r, 4, &p))
            return false;
        memcpy(&v, p, 4);
        ce->kind = CE_CONST, ce->type = MT_WASM_F32, ce->val = v;
        break;
    }
    case 0x44:
        if (!rd_bytes(r, 8, &p))
            return false;
        memcpy(&ce->val, p, 8);
        ce->kind = CE_CONST, ce->type = MT_WASM_F64;
        break;
    case 0x23:
        if (!rd_u32(r, &idx))
            return false;
        /* constant expressions see imported globals only (Wasm 2.0) */
        if (idx >= m->nglobal_imports || idx >= m->nglobals)
            return rd_failf(r, "unknown global %u", idx);
        ce->kind = CE_GLOBAL, ce->type = m->globals[idx].type, ce->val = idx;
        if (m->globals[idx].mut)
            return rd_fail(r, "constant expression required");
        break;
    case 0xD0:
        if (!rd_reftype(r, &ce->type))
            return false;
        ce->kind = CE_REF_NULL;
        break;
    case 0xD2:
        if (!rd_u32(r, &idx))
            return false;
        if (idx >= m->nfuncs)
            return rd_failf(r, "unknown function %u", idx);
        ce->kind = CE_REF_FUNC, ce->type = MT_WASM_FUNCREF, ce->val = idx;
        m->declared_funcs[idx / 8] |= (uint8_t)(1u << (idx % 8));
        break;
    case 0x0B: /* an empty expression has no value */
        return rd_fail(r, "type mismatch (empty constant expression)");
    default:
        return rd_fail(r, "constant expression required");
    }
    if (!rd_byte(r, &op))
        return false;
    if (op != 0x0B)
        return rd_fail(r, "constant expression required (type mismatch)");
    return true;
}

static bool rd_count(rd *r, uint32_t *n, size_t min_item)
{
    if (!rd_u32(r, n))
        return false;
    /* every item takes at least min_item bytes: bound allocations by input */
    if (min_item && *n > (r->end - r->pos) / min_item)
        return rd_fail(r, "unexpected end of section or function (count larger than section)");
    return true;
}

/* Refuses a count over an implementation limit (WASM_MAX_* in wasm_int.h). */
static bool rd_cap(rd *r, uint64_t n, uint32_t cap, const char *what)
{
    if (n <= cap)
        return true;
    char why[96];
    snprintf(why, sizeof why, "too many %s (the limit is %u)", what, cap);
    return rd_fail(r, why);
}

static bool grow_arr(rd *r, void **arr, size_t elem, size_t n)
{
    void *p = realloc(*arr, (n ? n : 1) * elem);
    if (!p)
        return rd_fail(r, "out of memory");
    *arr = p;
    return true;
}

/* ---- sections ------------------------------------------------------------ */
static bool sec_type(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 3) || !rd_cap(r, n, WASM_MAX_TYPES, "types"))
        return false;
    m->types = calloc(n ? n : 1, sizeof *m->types);
    if (!m->types)
        return rd_fail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        uint8_t form;
        uint32_t np, nr;
        if (!rd_byte(r, &form))
            return false;
        if (form != 0x60)
            return rd_fail(r, "integer representation too long (expected func type 0x60)");
        if (!rd_count(r, &np, 1) || !rd_cap(r, np, WASM_MAX_PARAMS, "parameters"))
            return false;
        wasm_functype *ft = &m->types[i];
        m->ntypes = i + 1;
        ft->t = malloc((size_t)np + 1);
        if (!ft->t)
            return rd_fail(r, "out of memory");
        for (uint32_t k = 0; k < np; k++)
            if (!rd_valtype(r, &ft->t[k]))
                return false;
        ft->np = np;
        if (!rd_count(r, &nr, 1) || !rd_cap(r, nr, WASM_MAX_PARAMS, "results"))
            return false;
        uint8_t *t = realloc(ft->t, (size_t)np + nr + 1);
        if (!t)
            return rd_fail(r, "out of memory");
        ft->t = t;
        for (uint32_t k = 0; k < nr; k++)
            if (!rd_valtype(r, &ft->t[np + k]))
                return false;
        ft->nr = nr;
    }
    return true;
}

static bool sec_import(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 3) || !rd_cap(r, n, WASM_MAX_IMPORTS, "imports"))
        return false;
    m->imports = calloc(n ? n : 1, sizeof *m->imports);
    if (!m->imports)
        return rd_fail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        wasm_import *im = &m->imports[i];
        m->nimports = i + 1;
        if (!rd_name(r, &im->module, &im->mlen) || !rd_name(r, &im->name, &im->nlen) ||
            !rd_byte(r, &im->kind))
            return false;
        switch (im->kind) {
        case MT_WASM_EXTERN_FUNC:
            if (!rd_u32(r, &im->typeidx))
                return false;
            if (im->typeidx >= m->ntypes)
                return rd_fail(r, "unknown type");
            if (!grow_arr(r, (void **)&m->func_type, sizeof(uint32_t), m->nfuncs + 1))
                return false;
            m->func_type[m->nfuncs++] = im->typeidx;
            m->nfunc_imports++;
            break;
        case MT_WASM_EXTERN_TABLE:
            if (!rd_reftype(r, &im->table.elem) ||
                !rd_limits(r, &im->table.lim, UINT32_MAX, "table size") ||
                !rd_cap(r, (uint64_t)m->ntables + 1, WASM_MAX_TABLES, "tables"))
                return false;
            if (!grow_arr(r, (void **)&m->tables, sizeof(wasm_tabletype), m->ntables + 1))
                return false;
            m->tables[m->ntables++] = im->table;
            m->ntable_imports++;
            break;
        case MT_WASM_EXTERN_MEMORY:
            if (!rd_limits(r, &im->mem, WASM_MAX_PAGES,
                           "memory size must be at most 65536 pages (4GiB)"))
                return false;
            if (!grow_arr(r, (void **)&m->mems, sizeof(wasm_lim), m->nmems + 1))
                return false;
            m->mems[m->nmems++] = im->mem;
            m->nmem_imports++;
            break;
        case MT_WASM_EXTERN_GLOBAL: {
            uint8_t mut;
            if (!rd_valtype(r, &im->global.type) || !rd_byte(r, &mut))
                return false;
            if (mut > 1)
                return rd_fail(r, "malformed mutability");
            im->global.mut = mut;
            if (!grow_arr(r, (void **)&m->globals, sizeof(wasm_globaltype), m->nglobals + 1))
                return false;
            m->globals[m->nglobals++] = im->global;
            m->nglobal_imports++;
            break;
        }
        default:
            return rd_fail(r, "malformed import kind");
        }
    }
    return true;
}

static bool sec_function(rd *r, mt_wasm_module *m, uint32_t *ndefined)
{
    uint32_t n;
    if (!rd_count(r, &n, 1) || !rd_cap(r, (uint64_t)m->nfuncs + n, WASM_MAX_FUNCS, "functions"))
        return false;
    if (!grow_arr(r, (void **)&m->func_type, sizeof(uint32_t), (size_t)m->nfuncs + n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        if (!rd_u32(r, &t))
            return false;
        if (t >= m->ntypes)
            return rd_fail(r, "unknown type");
        m->func_type[m->nfuncs++] = t;
    }
    *ndefined = n;
    return true;
}

static bool sec_table(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 2) ||
        !rd_cap(r, (uint64_t)m->ntables + n, WASM_MAX_TABLES, "tables"))
        return false;
    if (!grow_arr(r, (void **)&m->tables, sizeof(wasm_tabletype), (size_t)m->ntables + n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        wasm_tabletype *t = &m->tables[m->ntables];
        if (!rd_reftype(r, &t->elem) || !rd_limits(r, &t->lim, UINT32_MAX, "table size"))
            return false;
        m->ntables++;
    }
    return true;
}

static bool sec_memory(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 1))
        return false;
    if ((uint64_t)m->nmems + n > 1) /* Wasm 2.0: refused before allocating */
        return rd_fail(r, "multiple memories");
    if (!grow_arr(r, (void **)&m->mems, sizeof(wasm_lim), (size_t)m->nmems + n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!rd_limits(r, &m->mems[m->nmems], WASM_MAX_PAGES,
                       "memory size must be at most 65536 pages (4GiB)"))
            return false;
        m->nmems++;
    }
    return true;
}

static bool sec_global(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 4) ||
        !rd_cap(r, (uint64_t)m->nglobals + n, WASM_MAX_GLOBALS, "globals"))
        return false;
    if (!grow_arr(r, (void **)&m->globals, sizeof(wasm_globaltype), (size_t)m->nglobals + n))
        return false;
    m->global_init = calloc(n ? n : 1, sizeof *m->global_init);
    if (!m->global_init)
        return rd_fail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        wasm_globaltype *g = &m->globals[m->nglobals];
        uint8_t mut;
        if (!rd_valtype(r, &g->type) || !rd_byte(r, &mut))
            return false;
        if (mut > 1)
            return rd_fail(r, "malformed mutability");
        g->mut = mut;
        /* only imported globals are visible to global initialisers */
        uint32_t saved = m->nglobals;
        m->nglobals = m->nglobal_imports;
        bool ok = rd_constexpr(r, m, &m->global_init[i]);
        m->nglobals = saved;
        if (!ok)
            return false;
        if (m->global_init[i].type != g->type)
            return rd_fail(r, "type mismatch in global initializer");
        m->nglobals++;
    }
    return true;
}

/* Hash of an export name for the duplicate check: SipHash-1-3 (a PRF,
 * mt_siphash.h) under a random key per module, so that a module's author
 * cannot choose names that collide (FNV-1a with a random key mixed in, used
 * before, is not a PRF). A collision costs time, never correctness. */
uint64_t wasm_export_name_hash(const mt_siphash_key *key, const char *s, uint32_t n)
{
    return mt_siphash13(key, s, n);
}

/* The export section. Duplicate names are found as each export is read (so
 * the first error in the section is the one reported, as before) with a set
 * of the names seen so far: open addressing over export indices + 1 (0
 * empty), at most half full, instead of comparing each name with all the
 * earlier ones (quadratic: 100,000 exports took 19 s). */
static bool sec_export_items(rd *r, mt_wasm_module *m, uint32_t n, uint32_t *seen, size_t mask,
                             const mt_siphash_key *key)
{
    for (uint32_t i = 0; i < n; i++) {
        wasm_export *e = &m->exports[i];
        m->nexports = i + 1;
        if (!rd_name(r, &e->name, &e->nlen) || !rd_byte(r, &e->kind) || !rd_u32(r, &e->idx))
            return false;
        uint32_t lim;
        const char *what;
        switch (e->kind) {
        case MT_WASM_EXTERN_FUNC: lim = m->nfuncs, what = "function"; break;
        case MT_WASM_EXTERN_TABLE: lim = m->ntables, what = "table"; break;
        case MT_WASM_EXTERN_MEMORY: lim = m->nmems, what = "memory"; break;
        case MT_WASM_EXTERN_GLOBAL: lim = m->nglobals, what = "global"; break;
        default: return rd_fail(r, "malformed export kind");
        }
        if (e->idx >= lim)
            return rd_failf(r, "unknown %s %u", what, e->idx);
        if (e->kind == MT_WASM_EXTERN_FUNC)
            m->declared_funcs[e->idx / 8] |= (uint8_t)(1u << (e->idx % 8));
        size_t j = (size_t)wasm_export_name_hash(key, e->name, e->nlen) & mask;
        for (; seen[j]; j = (j + 1) & mask) {
            const wasm_export *o = &m->exports[seen[j] - 1];
            if (o->nlen == e->nlen && !memcmp(o->name, e->name, e->nlen))
                return rd_fail(r, "duplicate export name");
        }
        seen[j] = i + 1;
    }
    return true;
}

static bool sec_export(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 3) || !rd_cap(r, n, WASM_MAX_EXPORTS, "exports"))
        return false;
    m->exports = calloc(n ? n : 1, sizeof *m->exports);
    if (!m->exports)
        return rd_fail(r, "out of memory");
    size_t size = 16; /* a power of two, at least 2 n (n <= WASM_MAX_EXPORTS) */
    while (size < (size_t)n * 2)
        size *= 2;
    uint32_t *seen = calloc(size, sizeof *seen);
    if (!seen)
        return rd_fail(r, "out of memory");
    /* getrandom(2) directly, not OpenSSL (mt_siphash_key_random): the
     * decoder also runs in a worker whose seccomp filter is locked before the
     * module is read (wasm_check), where a first use of OpenSSL's RNG could
     * open files. Up to 64 exports unkeyed (a bounded cost); above that never
     * under a fixed key: the module fails when no key can be drawn. */
    mt_siphash_key key = {0, 0};
    if (n > 64 && !mt_siphash_key_random(&key)) {
        free(seen);
        return rd_fail(r, "no random key for the export-name check (getrandom failed); "
                          "try again");
    }
    bool ok = sec_export_items(r, m, n, seen, size - 1, &key);
    free(seen);
    return ok;
}

static bool sec_elem(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 2) || !rd_cap(r, n, WASM_MAX_ELEM_SEGS, "element segments"))
        return false;
    m->elems = calloc(n ? n : 1, sizeof *m->elems);
    if (!m->elems)
        return rd_fail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        wasm_elem *e = &m->elems[i];
        uint32_t flags, cnt;
        m->nelems = i + 1;
        if (!rd_u32(r, &flags))
            return false;
        if (flags > 7)
            return rd_fail(r, "malformed elements segment kind");
        e->mode = (flags & 1) ? ((flags & 2) ? SEG_DECLARATIVE : SEG_PASSIVE) : SEG_ACTIVE;
        e->table = 0;
        e->type = MT_WASM_FUNCREF;
        if (e->mode == SEG_ACTIVE) {
            if ((flags & 2) && !rd_u32(r, &e->table))
                return false;
            if (!rd_constexpr(r, m, &e->offset))
                return false;
            if (e->offset.type != MT_WASM_I32)
                return rd_fail(r, "type mismatch in element offset");
        }
        bool exprs = flags & 4;
        if (flags & 3) { /* elemkind or reftype present */
            if (exprs) {
                if (!rd_reftype(r, &e->type))
                    return false;
            } else {
                uint8_t k;
                if (!rd_byte(r, &k))
                    return false;
                if (k != 0)
                    return rd_fail(r, "malformed element kind");
            }
        }
        if (!rd_count(r, &cnt, 1))
            return false;
        e->items = calloc(cnt ? cnt : 1, sizeof *e->items);
        if (!e->items)
            return rd_fail(r, "out of memory");
        for (uint32_t k = 0; k < cnt; k++) {
            if (exprs) {
                if (!rd_constexpr(r, m, &e->items[k]))
                    return false;
                if (e->items[k].type != e->type)
                    return rd_fail(r, "type mismatch in element expression");
            } else {
                uint32_t f;
                if (!rd_u32(r, &f))
                    return false;
                if (f >= m->nfuncs)
                    return rd_failf(r, "unknown function %u", f);
                e->items[k].kind = CE_REF_FUNC;
                e->items[k].type = MT_WASM_FUNCREF;
                e->items[k].val = f;
                m->declared_funcs[f / 8] |= (uint8_t)(1u << (f % 8));
            }
            e->n = k + 1;
        }
        if (e->mode == SEG_ACTIVE) {
            if (e->table >= m->ntables)
                return rd_failf(r, "unknown table %u", e->table);
            if (m->tables[e->table].elem != e->type)
                return rd_fail(r, "type mismatch between element segment and table");
        }
    }
    return true;
}

static bool sec_code(rd *r, mt_wasm_module *m, uint32_t ndefined)
{
    uint32_t n;
    if (!rd_count(r, &n, 2))
        return false;
    if (n != ndefined)
        return rd_fail(r, "function and code section have inconsistent lengths");
    m->codes = calloc(n ? n : 1, sizeof *m->codes);
    if (!m->codes)
        return rd_fail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t size;
        if (!rd_u32(r, &size))
            return false;
        if (size > r->end - r->pos)
            return rd_fail(r, "unexpected end (function body)");
        m->codes[i].body_off = (uint32_t)r->pos;
        m->codes[i].body_len = size;
        r->pos += size;
    }
    return true;
}

static bool sec_data(rd *r, mt_wasm_module *m)
{
    uint32_t n;
    if (!rd_count(r, &n, 2) || !rd_cap(r, n, WASM_MAX_DATA_SEGS, "data segments"))
        return false;
    if (m->has_datacount && n != m->datacount)
        return rd_fail(r, "data count and data section have inconsistent lengths");
    m->datas = calloc(n ? n : 1, sizeof *m->datas);
    if (!m->datas)
        return rd_fail(r, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        wasm_data *d = &m->datas[i];
        uint32_t flags, mem = 0;
        m->ndatas = i + 1;
        if (!rd_u32(r, &flags))
            return false;
        if (flags > 2)
            return rd_fail(r, "malformed data segment kind");
        d->mode = flags == 1 ? SEG_PASSIVE : SEG_ACTIVE;
        if (flags == 2 && !rd_u32(r, &mem))
            return false;
        if (d->mode == SEG_ACTIVE) {
            if (mem >= m->nmems)
                return rd_failf(r, "unknown memory %u", mem);
            if (!rd_constexpr(r, m, &d->offset))
                return false;
            if (d->offset.type != MT_WASM_I32)
                return rd_fail(r, "type mismatch in data offset");
        }
        if (!rd_u32(r, &d->len) || !rd_bytes(r, d->len, &d->bytes))
            return false;
    }
    return true;
}

/* ---- module -------------------------------------------------------------- */
void mt_wasm_module_free(mt_wasm_module *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->ntypes; i++)
        free(m->types[i].t);
    free(m->types);
    for (uint32_t i = 0; i < m->nimports; i++) {
        free(m->imports[i].module);
        free(m->imports[i].name);
    }
    free(m->imports);
    free(m->func_type);
    free(m->tables);
    free(m->mems);
    free(m->globals);
    free(m->global_init);
    for (uint32_t i = 0; i < m->nexports; i++)
        free(m->exports[i].name);
    free(m->exports);
    for (uint32_t i = 0; i < m->nelems; i++)
        free(m->elems[i].items);
    free(m->elems);
    free(m->datas);
    free(m->ir);
    free(m->codes);
    free(m->declared_funcs);
    free(m->bytes);
    free(m);
}

static const char *const sec_names[] = {"custom", "type",   "import", "function", "table",
                                        "memory", "global", "export", "start",    "element",
                                        "code",   "data",   "data count"};

/* Canonical section order (custom sections excepted). */
static int sec_rank(uint8_t id)
{
    static const int rank[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10};
    return rank[id];
}

static bool decode(rd *r, mt_wasm_module *m)
{
    const uint8_t *p;
    r->sec = "header";
    if (!rd_bytes(r, 4, &p))
        return false;
    if (memcmp(p, "\0asm", 4))
        return rd_fail(r, "magic header not detected");
    if (!rd_bytes(r, 4, &p))
        return false;
    if (memcmp(p, "\1\0\0\0", 4))
        return rd_fail(r, "unknown binary version");
    int last = 0;
    uint32_t ndefined = 0;
    bool have_code = false, have_func = false;
    while (r->pos < r->end) {
        uint8_t id;
        uint32_t size;
        r->sec = "module";
        if (!rd_byte(r, &id))
            return false;
        if (id > 12)
            return rd_fail(r, "malformed section id");
        r->sec = sec_names[id];
        if (!rd_u32(r, &size))
            return false;
        if (size > r->end - r->pos)
            return rd_fail(r, "length out of bounds (section size)");
        if (id != 0) {
            if (sec_rank(id) <= last)
                return rd_fail(r, "unexpected content after last section (junk or order)");
            last = sec_rank(id);
        }
        size_t end = r->pos + size, saved_end = r->end;
        r->end = end;
        bool ok = true;
        switch (id) {
        case 0: ok = rd_name(r, NULL, NULL); r->pos = end; break;
        case 1: ok = sec_type(r, m); break;
        case 2: ok = sec_import(r, m); break;
        case 3:
            ok = sec_function(r, m, &ndefined);
            have_func = true;
            break;
        case 4: ok = sec_table(r, m); break;
        case 5: ok = sec_memory(r, m); break;
        case 6: ok = sec_global(r, m); break;
        case 7: ok = sec_export(r, m); break;
        case 8:
            ok = rd_u32(r, &m->start);
            if (ok && m->start >= m->nfuncs)
                ok = rd_failf(r, "unknown function %u", m->start);
            m->has_start = true;
            break;
        case 9: ok = sec_elem(r, m); break;
        case 10:
            ok = sec_code(r, m, ndefined);
            have_code = true;
            break;
        case 11: ok = sec_data(r, m); break;
        case 12:
            ok = rd_u32(r, &m->datacount) &&
                 rd_cap(r, m->datacount, WASM_MAX_DATA_SEGS, "data segments");
            m->has_datacount = true;
            break;
        }
        if (!ok)
            return false;
        if (r->pos != end)
            return rd_fail(r, "section size mismatch");
        r->end = saved_end;
        /* declared_funcs must exist before exports/elements/globals use it */
        if (id == 3 || id == 2 || !m->declared_funcs) {
            free(m->declared_funcs);
            m->declared_funcs = calloc((size_t)m->nfuncs / 8 + 1, 1);
            if (!m->declared_funcs)
                return rd_fail(r, "out of memory");
        }
    }
    r->sec = "module";
    (void)have_func;
    if (!have_code && ndefined > 0)
        return rd_fail(r, "function and code section have inconsistent lengths");
    if (m->has_datacount && m->datas == NULL && m->datacount != 0)
        return rd_fail(r, "data count and data section have inconsistent lengths");
    if (m->nmems > 1)
        return rd_fail(r, "multiple memories");
    if (m->has_start) {
        const wasm_functype *ft = &m->types[m->func_type[m->start]];
        if (ft->np || ft->nr)
            return rd_fail(r, "start function must have type [] -> []");
    }
    if (!m->codes) {
        m->codes = calloc(1, sizeof *m->codes);
        if (!m->codes)
            return rd_fail(r, "out of memory");
    }
    return true;
}

mt_status mt_wasm_module_new(const uint8_t *bytes, size_t len, const mt_wasm_limits *lim,
                             mt_wasm_module **out, mt_err *err)
{
    mt_wasm_limits dl;
    if (!lim) {
        mt_wasm_limits_default(&dl);
        lim = &dl;
    }
    *out = NULL;
    if (len > lim->max_module_bytes)
        return mt_err_set(err, MT_ETOOBIG, "wasm: module of %zu bytes exceeds the limit of %zu",
                          len, lim->max_module_bytes);
    if (len > UINT32_MAX)
        return mt_err_set(err, MT_ETOOBIG, "wasm: module larger than 4 GiB");
    mt_wasm_module *m = calloc(1, sizeof *m);
    if (!m)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    m->bytes = malloc(len ? len : 1);
    if (!m->bytes) {
        free(m);
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    }
    if (len)
        memcpy(m->bytes, bytes, len);
    m->len = len;
    rd r = {.b = m->bytes, .pos = 0, .end = len, .sec = "header", .err = err, .failed = false};
    if (!decode(&r, m)) {
        mt_wasm_module_free(m);
        return r.failed ? MT_EINVAL : mt_err_set(err, MT_EINVAL, "wasm: malformed module");
    }
    /* data segments point into m->bytes, which is ours */
    /* The code of all functions goes into one buffer, reserved up front at
     * one cell per byte of function bodies (the translated code of compiled
     * C is about that size; a short estimate only means the buffer grows).
     * No copy per function, no allocation per function. */
    wasm_scratch sc = {0};
    size_t body_bytes = 0;
    for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++)
        body_bytes += m->codes[i].body_len;
    wasm_scratch_reserve(&sc, body_bytes);
    for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++) {
        mt_status st = wasm_compile_func(m, i, &sc, err);
        if (st != MT_OK) {
            wasm_scratch_free(&sc);
            mt_wasm_module_free(m);
            return st;
        }
    }
    wasm_scratch_take_ir(&sc, m);
    wasm_scratch_free(&sc);
    *out = m;
    return MT_OK;
}

size_t mt_wasm_module_num_imports(const mt_wasm_module *m) { return m->nimports; }
size_t mt_wasm_module_num_exports(const mt_wasm_module *m) { return m->nexports; }

bool mt_wasm_module_import(const mt_wasm_module *m, size_t i, const char **module, size_t *mlen,
                           const char **name, size_t *nlen, uint8_t *kind)
{
    if (i >= m->nimports)
        return false;
    *module = m->imports[i].module, *mlen = m->imports[i].mlen;
    *name = m->imports[i].name, *nlen = m->imports[i].nlen;
    *kind = m->imports[i].kind;
    return true;
}

bool mt_wasm_module_export(const mt_wasm_module *m, size_t i, const char **name, size_t *nlen,
                           uint8_t *kind)
{
    if (i >= m->nexports)
        return false;
    *name = m->exports[i].name, *nlen = m->exports[i].nlen, *kind = m->exports[i].kind;
    return true;
}
