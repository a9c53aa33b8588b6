/* wasm_runtime: stores, runtime objects, instantiation (import matching,
 * segment initialisation, start function), exports and the call API.
 *
 * Every object is registered in its store's object list and freed with the
 * store, never before: an instance whose instantiation trapped stays alive
 * because functions it wrote into imported tables remain callable. */
#include <stdlib.h>
#include <string.h>

#include "wasm_int.h"

void mt_wasm_limits_default(mt_wasm_limits *lim)
{
    lim->fuel = UINT64_MAX;
    lim->max_memory_pages = 256;
    lim->max_table_elems = 100000;
    lim->max_call_depth = 10000;
    lim->max_stack_slots = 1u << 20;
    lim->max_module_bytes = (size_t)64 << 20;
}

const char *mt_wasm_trap_message(mt_wasm_trap t)
{
    switch (t) {
    case MT_WASM_TRAP_NONE: return "no trap";
    case MT_WASM_TRAP_UNREACHABLE: return "unreachable";
    case MT_WASM_TRAP_MEMORY_OOB: return "out of bounds memory access";
    case MT_WASM_TRAP_TABLE_OOB: return "out of bounds table access";
    case MT_WASM_TRAP_UNDEFINED_ELEMENT: return "undefined element";
    case MT_WASM_TRAP_UNINITIALIZED_ELEMENT: return "uninitialized element";
    case MT_WASM_TRAP_INDIRECT_TYPE: return "indirect call type mismatch";
    case MT_WASM_TRAP_DIV_ZERO: return "integer divide by zero";
    case MT_WASM_TRAP_INT_OVERFLOW: return "integer overflow";
    case MT_WASM_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case MT_WASM_TRAP_CALL_STACK: return "call stack exhausted";
    case MT_WASM_TRAP_VALUE_STACK: return "call stack exhausted (value stack limit)";
    case MT_WASM_TRAP_FUEL: return "fuel exhausted";
    case MT_WASM_TRAP_HOST: return "host function failed";
    }
    return "unknown trap";
}

mt_status wasm_trap(mt_wasm_store *s, mt_wasm_trap t, mt_err *err)
{
    s->trap = t;
    mt_status st = MT_EINVAL;
    if (t == MT_WASM_TRAP_FUEL)
        st = MT_EQUOTA;
    else if (t == MT_WASM_TRAP_CALL_STACK || t == MT_WASM_TRAP_VALUE_STACK)
        st = MT_ETOOBIG;
    return mt_err_set(err, st, "trap: %s", mt_wasm_trap_message(t));
}

bool wasm_functype_eq(const wasm_functype *a, const wasm_functype *b)
{
    return a->np == b->np && a->nr == b->nr &&
           (a->np + a->nr == 0 || !memcmp(a->t, b->t, (size_t)a->np + a->nr));
}

/* ---- store -------------------------------------------------------------- */
mt_wasm_store *mt_wasm_store_new(const mt_wasm_limits *lim)
{
    mt_wasm_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (lim)
        s->lim = *lim;
    else
        mt_wasm_limits_default(&s->lim);
    if (s->lim.max_call_depth == 0)
        s->lim.max_call_depth = 1;
    if (s->lim.max_stack_slots < 16)
        s->lim.max_stack_slots = 16;
    s->stack_slots = s->lim.max_stack_slots;
    s->stack = malloc(s->stack_slots * sizeof *s->stack);
    s->frames = malloc((size_t)s->lim.max_call_depth * sizeof *s->frames);
    if (!s->stack || !s->frames) {
        free(s->stack);
        free(s->frames);
        free(s);
        return NULL;
    }
    mt_wasm_store_set_fuel(s, s->lim.fuel);
    uint32_t pages = s->lim.max_memory_pages < WASM_MAX_PAGES ? s->lim.max_memory_pages
                                                              : WASM_MAX_PAGES;
    s->obj_bytes_cap = (uint64_t)pages * WASM_PAGE;
    return s;
}

static void free_obj(wasm_obj *o)
{
    switch (o->kind) {
    case MT_WASM_EXTERN_FUNC: {
        mt_wasm_func *f = o->p;
        free(f->own_type.t);
        break;
    }
    case MT_WASM_EXTERN_TABLE: free(((mt_wasm_table *)o->p)->elems); break;
    case MT_WASM_EXTERN_MEMORY: free(((mt_wasm_memory *)o->p)->data); break;
    case 4: {
        mt_wasm_instance *i = o->p;
        free(i->funcs);
        free(i->tables);
        free(i->mems);
        free(i->globals);
        free(i->elem_dropped);
        free(i->data_dropped);
        break;
    }
    default: break;
    }
    free(o->p);
    free(o);
}

void mt_wasm_store_free(mt_wasm_store *s)
{
    if (!s)
        return;
    wasm_obj *o = s->objs;
    while (o) {
        wasm_obj *n = o->next;
        free_obj(o);
        o = n;
    }
    free(s->stack);
    free(s->frames);
    free(s);
}

uint64_t mt_wasm_store_fuel(const mt_wasm_store *s)
{
    if (s->fuel_unlimited)
        return UINT64_MAX;
    return s->fuel < 0 ? 0 : (uint64_t)s->fuel;
}

void mt_wasm_store_set_fuel(mt_wasm_store *s, uint64_t fuel)
{
    s->fuel_unlimited = fuel >= (uint64_t)INT64_MAX;
    s->fuel = s->fuel_unlimited ? INT64_MAX : (int64_t)fuel;
}

mt_wasm_trap mt_wasm_store_trap(const mt_wasm_store *s) { return s->trap; }

/* Allocates a zeroed object of size n registered in s; NULL on failure. */
static void *new_obj(mt_wasm_store *s, int kind, size_t n)
{
    wasm_obj *o = malloc(sizeof *o);
    void *p = calloc(1, n);
    if (!o || !p) {
        free(o);
        free(p);
        return NULL;
    }
    o->kind = kind;
    o->p = p;
    o->next = s->objs;
    s->objs = o;
    return p;
}

/* ---- memories and tables -------------------------------------------------------- */
/* Charges n more bytes of memories and tables to the store; false (nothing
 * charged) when that would pass the cap. */
static bool bytes_charge(mt_wasm_store *s, uint64_t n)
{
    if (n > s->obj_bytes_cap - s->obj_bytes)
        return false;
    s->obj_bytes += n;
    return true;
}

static mt_status memory_make(mt_wasm_store *s, wasm_lim lim, mt_wasm_memory **out, mt_err *err)
{
    uint32_t cap = s->lim.max_memory_pages;
    if (cap > WASM_MAX_PAGES)
        cap = WASM_MAX_PAGES;
    if (lim.has_max && lim.max < cap)
        cap = lim.max;
    if (lim.min > cap)
        return mt_err_set(err, MT_ETOOBIG,
                          "wasm: memory of %u pages exceeds the limit of %u pages", lim.min,
                          cap);
    if (!bytes_charge(s, (uint64_t)lim.min * WASM_PAGE))
        return mt_err_set(err, MT_ETOOBIG,
                          "wasm: memory of %u pages exceeds what is left of the memory cap of "
                          "%u pages (tables count against it)",
                          lim.min, s->lim.max_memory_pages);
    mt_wasm_memory *m = new_obj(s, MT_WASM_EXTERN_MEMORY, sizeof *m);
    if (!m)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    m->store = s;
    m->type = lim;
    m->cap = cap;
    if (lim.min) {
        m->data = calloc(lim.min, WASM_PAGE);
        if (!m->data)
            return mt_err_set(err, MT_ENOMEM, "wasm: out of memory for %u pages", lim.min);
    }
    m->pages = lim.min;
    m->size = (uint64_t)lim.min * WASM_PAGE;
    *out = m;
    return MT_OK;
}

int wasm_memory_grow(mt_wasm_memory *m, uint32_t delta)
{
    uint32_t old = m->pages;
    if (delta == 0)
        return (int)old;
    if ((uint64_t)old + delta > m->cap || !bytes_charge(m->store, (uint64_t)delta * WASM_PAGE))
        return -1;
    uint64_t nsize = (uint64_t)(old + delta) * WASM_PAGE;
    uint8_t *p = realloc(m->data, (size_t)nsize);
    if (!p) {
        m->store->obj_bytes -= (uint64_t)delta * WASM_PAGE;
        return -1;
    }
    memset(p + m->size, 0, (size_t)(nsize - m->size));
    m->data = p;
    m->size = nsize;
    m->pages = old + delta;
    return (int)old;
}

static mt_status table_make(mt_wasm_store *s, uint8_t elem, wasm_lim lim, mt_wasm_table **out,
                            mt_err *err)
{
    uint32_t cap = s->lim.max_table_elems;
    if (lim.has_max && lim.max < cap)
        cap = lim.max;
    if (lim.min > cap)
        return mt_err_set(err, MT_ETOOBIG,
                          "wasm: table of %u elements exceeds the limit of %u", lim.min, cap);
    if (!bytes_charge(s, (uint64_t)lim.min * sizeof(uint64_t)))
        return mt_err_set(err, MT_ETOOBIG,
                          "wasm: table of %u elements exceeds what is left of the memory cap of "
                          "%u pages (8 bytes per element)",
                          lim.min, s->lim.max_memory_pages);
    mt_wasm_table *t = new_obj(s, MT_WASM_EXTERN_TABLE, sizeof *t);
    if (!t)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    t->store = s;
    t->elem = elem;
    t->type = lim;
    t->cap = cap;
    t->elems = calloc(lim.min ? lim.min : 1, sizeof *t->elems);
    if (!t->elems)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    t->size = lim.min;
    *out = t;
    return MT_OK;
}

int64_t wasm_table_grow(mt_wasm_table *t, uint32_t delta, uint64_t init)
{
    uint32_t old = t->size;
    if ((uint64_t)old + delta > t->cap)
        return -1;
    if (delta == 0)
        return old;
    if (!bytes_charge(t->store, (uint64_t)delta * sizeof(uint64_t)))
        return -1;
    uint64_t *p = realloc(t->elems, ((size_t)old + delta) * sizeof *p);
    if (!p) {
        t->store->obj_bytes -= (uint64_t)delta * sizeof(uint64_t);
        return -1;
    }
    for (uint32_t i = 0; i < delta; i++)
        p[old + i] = init;
    t->elems = p;
    t->size = old + delta;
    return old;
}

mt_status mt_wasm_memory_new(mt_wasm_store *s, uint32_t min, uint32_t max, bool has_max,
                             mt_wasm_memory **out, mt_err *err)
{
    if (min > WASM_MAX_PAGES || (has_max && (max > WASM_MAX_PAGES || max < min)))
        return mt_err_set(err, MT_EINVAL, "wasm: invalid memory limits");
    wasm_lim l = {min, max, has_max};
    return memory_make(s, l, out, err);
}

uint8_t *mt_wasm_memory_data(mt_wasm_memory *m, size_t *len)
{
    *len = (size_t)m->size;
    return m->data;
}

mt_status mt_wasm_table_new(mt_wasm_store *s, uint8_t elem_type, uint32_t min, uint32_t max,
                            bool has_max, mt_wasm_table **out, mt_err *err)
{
    if ((elem_type != MT_WASM_FUNCREF && elem_type != MT_WASM_EXTERNREF) ||
        (has_max && max < min))
        return mt_err_set(err, MT_EINVAL, "wasm: invalid table type");
    wasm_lim l = {min, max, has_max};
    return table_make(s, elem_type, l, out, err);
}

static uint64_t val_to_slot(const mt_wasm_val *v)
{
    switch (v->type) {
    case MT_WASM_I32:
    case MT_WASM_F32: return v->of.i32;
    case MT_WASM_FUNCREF: return (uintptr_t)v->of.func;
    case MT_WASM_EXTERNREF: return v->of.ext;
    default: return v->of.i64;
    }
}

static void slot_to_val(uint8_t type, uint64_t slot, mt_wasm_val *v)
{
    memset(v, 0, sizeof *v);
    v->type = type;
    switch (type) {
    case MT_WASM_I32:
    case MT_WASM_F32: v->of.i32 = (uint32_t)slot; break;
    case MT_WASM_FUNCREF: v->of.func = (mt_wasm_func *)(uintptr_t)slot; break;
    case MT_WASM_EXTERNREF: v->of.ext = (uintptr_t)slot; break;
    default: v->of.i64 = slot; break;
    }
}

static bool valtype_ok(uint8_t t)
{
    return t == MT_WASM_I32 || t == MT_WASM_I64 || t == MT_WASM_F32 || t == MT_WASM_F64 ||
           t == MT_WASM_FUNCREF || t == MT_WASM_EXTERNREF;
}

mt_status mt_wasm_global_new(mt_wasm_store *s, const mt_wasm_val *v, bool mutable_,
                             mt_wasm_global **out, mt_err *err)
{
    if (!valtype_ok(v->type))
        return mt_err_set(err, MT_EINVAL, "wasm: invalid global type");
    mt_wasm_global *g = new_obj(s, MT_WASM_EXTERN_GLOBAL, sizeof *g);
    if (!g)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    g->type = v->type;
    g->mut = mutable_;
    g->val = val_to_slot(v);
    *out = g;
    return MT_OK;
}

void mt_wasm_global_get(const mt_wasm_global *g, mt_wasm_val *out)
{
    slot_to_val(g->type, g->val, out);
}

mt_status mt_wasm_func_new_host(mt_wasm_store *s, const uint8_t *params, size_t np,
                                const uint8_t *results, size_t nr, mt_wasm_host_fn fn, void *env,
                                mt_wasm_func **out, mt_err *err)
{
    if (np > 1000 || nr > 1000 || !fn)
        return mt_err_set(err, MT_EINVAL, "wasm: invalid host function");
    for (size_t i = 0; i < np; i++)
        if (!valtype_ok(params[i]))
            return mt_err_set(err, MT_EINVAL, "wasm: invalid host parameter type");
    for (size_t i = 0; i < nr; i++)
        if (!valtype_ok(results[i]))
            return mt_err_set(err, MT_EINVAL, "wasm: invalid host result type");
    mt_wasm_func *f = new_obj(s, MT_WASM_EXTERN_FUNC, sizeof *f);
    if (!f)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    f->own_type.t = malloc(np + nr + 1);
    if (!f->own_type.t)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    if (np)
        memcpy(f->own_type.t, params, np);
    if (nr)
        memcpy(f->own_type.t + np, results, nr);
    f->own_type.np = (uint32_t)np;
    f->own_type.nr = (uint32_t)nr;
    f->type = &f->own_type;
    f->host = fn;
    f->env = env;
    *out = f;
    return MT_OK;
}

void mt_wasm_func_type(const mt_wasm_func *f, const uint8_t **params, size_t *np,
                       const uint8_t **results, size_t *nr)
{
    *params = f->type->t;
    *np = f->type->np;
    *results = f->type->t + f->type->np;
    *nr = f->type->nr;
}

/* ---- instantiation -------------------------------------------------------- */
uint64_t wasm_eval_const(const mt_wasm_instance *inst, const wasm_constexpr *ce)
{
    switch (ce->kind) {
    case CE_CONST: return ce->val;
    case CE_GLOBAL: return inst->globals[ce->val]->val;
    case CE_REF_FUNC: return (uintptr_t)inst->funcs[ce->val];
    default: return 0;
    }
}

static bool limits_match(uint32_t have_min, const wasm_lim *have, const wasm_lim *want)
{
    if (have_min < want->min)
        return false;
    if (want->has_max && (!have->has_max || have->max > want->max))
        return false;
    return true;
}

static const char *kind_name(uint8_t k)
{
    static const char *const n[] = {"function", "table", "memory", "global"};
    return k < 4 ? n[k] : "?";
}

static mt_status link_import(mt_wasm_store *s, const mt_wasm_module *m, const wasm_import *im,
                             const mt_wasm_extern *ex, mt_err *err)
{
    (void)s;
    bool ok = ex->kind == im->kind;
    if (ok) {
        switch (im->kind) {
        case MT_WASM_EXTERN_FUNC:
            ok = ex->of.func && wasm_functype_eq(ex->of.func->type, &m->types[im->typeidx]);
            break;
        case MT_WASM_EXTERN_TABLE:
            ok = ex->of.table && ex->of.table->elem == im->table.elem &&
                 limits_match(ex->of.table->size, &ex->of.table->type, &im->table.lim);
            break;
        case MT_WASM_EXTERN_MEMORY:
            ok = ex->of.memory && limits_match(ex->of.memory->pages, &ex->of.memory->type,
                                               &im->mem);
            break;
        case MT_WASM_EXTERN_GLOBAL:
            ok = ex->of.global && ex->of.global->type == im->global.type &&
                 ex->of.global->mut == im->global.mut;
            break;
        }
    }
    if (!ok)
        return mt_err_set(err, MT_EINVAL,
                          "wasm: incompatible import type for %s \"%s\".\"%s\"",
                          kind_name(im->kind), im->module, im->name);
    return MT_OK;
}

mt_status mt_wasm_instantiate(mt_wasm_store *s, const mt_wasm_module *m, mt_wasm_resolver resolve,
                              void *env, mt_wasm_instance **out, mt_err *err)
{
    *out = NULL;
    s->trap = MT_WASM_TRAP_NONE;
    mt_wasm_extern *ext = calloc(m->nimports ? m->nimports : 1, sizeof *ext);
    if (!ext)
        return mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
    mt_status st = MT_OK;
    for (uint32_t i = 0; i < m->nimports; i++) {
        const wasm_import *im = &m->imports[i];
        if (!resolve) {
            st = mt_err_set(err, MT_ENOTFOUND, "wasm: unknown import \"%s\".\"%s\"", im->module,
                            im->name);
            goto fail;
        }
        mt_err rerr;
        mt_err_clear(&rerr);
        st = resolve(env, im->module, im->mlen, im->name, im->nlen, &ext[i], &rerr);
        if (st != MT_OK) {
            mt_err_set(err, st, "wasm: unknown import \"%s\".\"%s\" (%s)", im->module,
                       im->name, rerr.msg);
            goto fail;
        }
        st = link_import(s, m, im, &ext[i], err);
        if (st != MT_OK)
            goto fail;
    }
    mt_wasm_instance *inst = new_obj(s, 4, sizeof *inst);
    if (!inst) {
        st = mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
        goto fail;
    }
    inst->mod = m;
    inst->funcs = calloc(m->nfuncs + 1, sizeof *inst->funcs);
    inst->tables = calloc(m->ntables + 1, sizeof *inst->tables);
    inst->mems = calloc(m->nmems + 1, sizeof *inst->mems);
    inst->globals = calloc(m->nglobals + 1, sizeof *inst->globals);
    inst->elem_dropped = calloc(m->nelems + 1, sizeof(bool));
    inst->data_dropped = calloc(m->ndatas + 1, sizeof(bool));
    if (!inst->funcs || !inst->tables || !inst->mems || !inst->globals || !inst->elem_dropped ||
        !inst->data_dropped) {
        st = mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
        goto fail;
    }
    if (m->nmems == 0) {
        free(inst->mems);
        inst->mems = NULL;
    }
    uint32_t nf = 0, nt = 0, nm = 0, ng = 0;
    for (uint32_t i = 0; i < m->nimports; i++) {
        switch (ext[i].kind) {
        case MT_WASM_EXTERN_FUNC: inst->funcs[nf++] = ext[i].of.func; break;
        case MT_WASM_EXTERN_TABLE: inst->tables[nt++] = ext[i].of.table; break;
        case MT_WASM_EXTERN_MEMORY: inst->mems[nm++] = ext[i].of.memory; break;
        default: inst->globals[ng++] = ext[i].of.global; break;
        }
    }
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++) {
        mt_wasm_func *f = new_obj(s, MT_WASM_EXTERN_FUNC, sizeof *f);
        if (!f) {
            st = mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
            goto fail;
        }
        f->type = &m->types[m->func_type[i]];
        f->inst = inst;
        f->code = &m->codes[i - m->nfunc_imports];
        inst->funcs[i] = f;
    }
    for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
        st = table_make(s, m->tables[i].elem, m->tables[i].lim, &inst->tables[i], err);
        if (st != MT_OK)
            goto fail;
    }
    for (uint32_t i = m->nmem_imports; i < m->nmems; i++) {
        st = memory_make(s, m->mems[i], &inst->mems[i], err);
        if (st != MT_OK)
            goto fail;
    }
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
        mt_wasm_global *g = new_obj(s, MT_WASM_EXTERN_GLOBAL, sizeof *g);
        if (!g) {
            st = mt_err_set(err, MT_ENOMEM, "wasm: out of memory");
            goto fail;
        }
        g->type = m->globals[i].type;
        g->mut = m->globals[i].mut;
        g->val = wasm_eval_const(inst, &m->global_init[i - m->nglobal_imports]);
        inst->globals[i] = g;
    }
    free(ext);
    ext = NULL;
    /* element segments, then data segments, then the start function */
    for (uint32_t i = 0; i < m->nelems; i++) {
        const wasm_elem *e = &m->elems[i];
        if (e->mode == SEG_ACTIVE) {
            uint64_t off = (uint32_t)wasm_eval_const(inst, &e->offset);
            mt_wasm_table *t = inst->tables[e->table];
            if (off + e->n > t->size) {
                *out = inst;
                return wasm_trap(s, MT_WASM_TRAP_TABLE_OOB, err);
            }
            for (uint32_t k = 0; k < e->n; k++)
                t->elems[off + k] = wasm_eval_const(inst, &e->items[k]);
        }
        if (e->mode != SEG_PASSIVE)
            inst->elem_dropped[i] = true;
    }
    for (uint32_t i = 0; i < m->ndatas; i++) {
        const wasm_data *d = &m->datas[i];
        if (d->mode != SEG_ACTIVE)
            continue;
        uint64_t off = (uint32_t)wasm_eval_const(inst, &d->offset);
        mt_wasm_memory *mem = inst->mems[0];
        if (off + d->len > mem->size) {
            *out = inst;
            return wasm_trap(s, MT_WASM_TRAP_MEMORY_OOB, err);
        }
        if (d->len)
            memcpy(mem->data + off, d->bytes, d->len);
        inst->data_dropped[i] = true;
    }
    if (m->has_start) {
        st = mt_wasm_func_call(s, inst->funcs[m->start], NULL, 0, NULL, 0, err);
        if (st != MT_OK) {
            *out = inst;
            return st;
        }
    }
    *out = inst;
    return MT_OK;
fail:
    free(ext);
    return st;
}

mt_status mt_wasm_instance_export(const mt_wasm_instance *inst, const char *name, size_t nlen,
                                  mt_wasm_extern *out, mt_err *err)
{
    const mt_wasm_module *m = inst->mod;
    for (uint32_t i = 0; i < m->nexports; i++) {
        const wasm_export *e = &m->exports[i];
        if (e->nlen != nlen || memcmp(e->name, name, nlen))
            continue;
        out->kind = e->kind;
        switch (e->kind) {
        case MT_WASM_EXTERN_FUNC: out->of.func = inst->funcs[e->idx]; break;
        case MT_WASM_EXTERN_TABLE: out->of.table = inst->tables[e->idx]; break;
        case MT_WASM_EXTERN_MEMORY: out->of.memory = inst->mems[e->idx]; break;
        default: out->of.global = inst->globals[e->idx]; break;
        }
        return MT_OK;
    }
    return mt_err_set(err, MT_ENOTFOUND, "wasm: no export named \"%.*s\"",
                      (int)(nlen > 100 ? 100 : nlen), name);
}

mt_status mt_wasm_func_call(mt_wasm_store *s, mt_wasm_func *f, const mt_wasm_val *args,
                            size_t nargs, mt_wasm_val *results, size_t nresults, mt_err *err)
{
    const wasm_functype *t = f->type;
    s->trap = MT_WASM_TRAP_NONE;
    if (nargs != t->np || nresults != t->nr)
        return mt_err_set(err, MT_EINVAL, "wasm: function takes %u arguments and returns %u "
                          "results, called with %zu and %zu", t->np, t->nr, nargs, nresults);
    for (size_t i = 0; i < nargs; i++)
        if (args[i].type != t->t[i])
            return mt_err_set(err, MT_EINVAL, "wasm: argument %zu has the wrong type", i);
    size_t need = t->np > t->nr ? t->np : t->nr;
    size_t used = s->stack_used;
    if (s->reentry >= 64 || need > s->stack_slots - used)
        return wasm_trap(s, MT_WASM_TRAP_CALL_STACK, err);
    uint64_t *base = s->stack + used;
    for (size_t i = 0; i < nargs; i++)
        base[i] = val_to_slot(&args[i]);
    s->reentry++;
    uint32_t saved_frames = s->nframes;
    mt_status st = wasm_exec_call(s, f, base, err);
    s->reentry--;
    s->nframes = saved_frames;
    s->stack_used = used;
    if (st != MT_OK)
        return st;
    for (size_t i = 0; i < nresults; i++)
        slot_to_val(t->t[t->np + i], base[i], &results[i]);
    return MT_OK;
}
