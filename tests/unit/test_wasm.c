/* Unit tests for src/wasm: decoder errors, the call API, host imports, and
 * every limit (fuel, call depth, value stack, memory pages, table size,
 * module size). Modules are assembled by hand below; the spec runner
 * (tests/wasm) covers conformance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_siphash.h"
#include "mt_wasm.h"
#include "wasm_int.h"

typedef struct buf {
    uint8_t b[4096];
    size_t n;
} buf;

static void put(buf *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    if (n)
        memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put_u8(buf *m, uint8_t v) { put(m, &v, 1); }

static void put_uleb(buf *m, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        put_u8(m, (uint8_t)(b | (v ? 0x80 : 0)));
    } while (v);
}

static void section(buf *m, uint8_t id, const buf *content)
{
    put_u8(m, id);
    put_uleb(m, (uint32_t)content->n);
    put(m, content->b, content->n);
}

typedef struct spec {
    const uint8_t *params, *results;
    size_t np, nr;
    const uint8_t *body; /* locals + code + end, without the size */
    size_t body_len;
    int mem_min;         /* -1: no memory */
    int table_min;       /* -1: no table */
    bool import_host;    /* import env.h with the same type as function 0 */
} spec;

/* One type, optional import of env.h (same type), memory, table, and one
 * function exported as "f". */
static void build(buf *m, const spec *s)
{
    buf c;
    m->n = 0;
    put(m, "\0asm\1\0\0\0", 8);
    c.n = 0; /* type */
    put_uleb(&c, 1);
    put_u8(&c, 0x60);
    put_uleb(&c, (uint32_t)s->np);
    put(&c, s->params, s->np);
    put_uleb(&c, (uint32_t)s->nr);
    put(&c, s->results, s->nr);
    section(m, 1, &c);
    if (s->import_host) {
        c.n = 0;
        put_uleb(&c, 1);
        put_uleb(&c, 3);
        put(&c, "env", 3);
        put_uleb(&c, 1);
        put(&c, "h", 1);
        put_u8(&c, 0);
        put_uleb(&c, 0);
        section(m, 2, &c);
    }
    c.n = 0; /* function */
    put_uleb(&c, 1);
    put_uleb(&c, 0);
    section(m, 3, &c);
    if (s->table_min >= 0) {
        c.n = 0;
        put_uleb(&c, 1);
        put_u8(&c, 0x70);
        put_u8(&c, 0);
        put_uleb(&c, (uint32_t)s->table_min);
        section(m, 4, &c);
    }
    if (s->mem_min >= 0) {
        c.n = 0;
        put_uleb(&c, 1);
        put_u8(&c, 0);
        put_uleb(&c, (uint32_t)s->mem_min);
        section(m, 5, &c);
    }
    c.n = 0; /* export "f" */
    put_uleb(&c, 1);
    put_uleb(&c, 1);
    put(&c, "f", 1);
    put_u8(&c, 0);
    put_uleb(&c, s->import_host ? 1 : 0);
    section(m, 7, &c);
    c.n = 0; /* code */
    put_uleb(&c, 1);
    put_uleb(&c, (uint32_t)s->body_len);
    put(&c, s->body, s->body_len);
    section(m, 10, &c);
}

static const uint8_t T_I32[] = {MT_WASM_I32};

typedef struct run {
    mt_wasm_module *mod;
    mt_wasm_store *store;
    mt_wasm_instance *inst;
    mt_wasm_func *f;
    mt_status inst_status;
} run;

static mt_status resolve_host(void *env, const char *module, size_t mlen, const char *name,
                              size_t nlen, mt_wasm_extern *out, mt_err *err)
{
    (void)module, (void)mlen, (void)name, (void)nlen, (void)err;
    out->kind = MT_WASM_EXTERN_FUNC;
    out->of.func = env;
    return MT_OK;
}

/* Builds, decodes and instantiates; f is NULL when instantiation failed. */
static void setup(run *r, const spec *s, const mt_wasm_limits *lim, mt_wasm_func *(*host)(mt_wasm_store *))
{
    buf m;
    mt_err e;
    memset(r, 0, sizeof *r);
    build(&m, s);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, lim, &r->mod, &e), MT_OK);
    r->store = mt_wasm_store_new(lim);
    assert_non_null(r->store);
    mt_wasm_func *h = host ? host(r->store) : NULL;
    r->inst_status = mt_wasm_instantiate(r->store, r->mod, resolve_host, h, &r->inst, &e);
    if (r->inst_status != MT_OK)
        return;
    mt_wasm_extern x;
    assert_int_equal(mt_wasm_instance_export(r->inst, "f", 1, &x, &e), MT_OK);
    assert_int_equal(x.kind, MT_WASM_EXTERN_FUNC);
    r->f = x.of.func;
}

static void teardown(run *r)
{
    mt_wasm_store_free(r->store);
    mt_wasm_module_free(r->mod);
}

static mt_status call0(run *r, mt_wasm_val *res, size_t nres, mt_err *e)
{
    return mt_wasm_func_call(r->store, r->f, NULL, 0, res, nres, e);
}

/* ---- decoder ------------------------------------------------------------------ */
static void test_decode_errors(void **state)
{
    (void)state;
    mt_wasm_module *m;
    mt_err e;
    assert_int_equal(mt_wasm_module_new((const uint8_t *)"\0asx\1\0\0\0", 8, NULL, &m, &e),
                     MT_EINVAL);
    assert_null(m);
    assert_non_null(strstr(e.msg, "header section, offset 4: magic header not detected"));
    assert_int_equal(mt_wasm_module_new((const uint8_t *)"\0asm\2\0\0\0", 8, NULL, &m, &e),
                     MT_EINVAL);
    assert_non_null(strstr(e.msg, "unknown binary version"));
    /* type section claiming 5 bytes with only 2 present */
    const uint8_t trunc[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1, 5, 1, 0x60};
    assert_int_equal(mt_wasm_module_new(trunc, sizeof trunc, NULL, &m, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "type section, offset 10"));
    /* empty module is valid */
    assert_int_equal(mt_wasm_module_new((const uint8_t *)"\0asm\1\0\0\0", 8, NULL, &m, &e), MT_OK);
    assert_int_equal(mt_wasm_module_num_exports(m), 0);
    mt_wasm_module_free(m);
    /* invalid body: i32.add on an empty stack */
    const uint8_t body[] = {0, 0x6A, 0x0B};
    spec s = {.body = body, .body_len = sizeof body, .mem_min = -1, .table_min = -1};
    buf b;
    build(&b, &s);
    assert_int_equal(mt_wasm_module_new(b.b, b.n, NULL, &m, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "code section, offset"));
    assert_non_null(strstr(e.msg, "type mismatch"));
    /* module size limit */
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_module_bytes = 7;
    assert_int_equal(mt_wasm_module_new((const uint8_t *)"\0asm\1\0\0\0", 8, &lim, &m, &e),
                     MT_ETOOBIG);
    assert_non_null(strstr(e.msg, "exceeds the limit"));
}

/* ---- calls ------------------------------------------------------------------- */
static void test_call_and_trap(void **state)
{
    (void)state;
    /* f(x) = 1 / x (signed) */
    const uint8_t body[] = {0, 0x41, 1, 0x20, 0, 0x6D, 0x0B};
    spec s = {T_I32, T_I32, 1, 1, body, sizeof body, -1, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, NULL, NULL);
    assert_non_null(r.f);
    mt_wasm_val a = {.type = MT_WASM_I32, .of.i32 = 1}, res;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.type, MT_WASM_I32);
    assert_int_equal(res.of.i32, 1);
    a.of.i32 = 0;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_EINVAL);
    assert_string_equal(e.msg, "trap: integer divide by zero");
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_DIV_ZERO);
    /* the store stays usable after a trap */
    a.of.i32 = 0xFFFFFFFFu;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 0xFFFFFFFFu);
    /* wrong argument type or count */
    a.type = MT_WASM_I64;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_EINVAL);
    assert_int_equal(mt_wasm_func_call(r.store, r.f, NULL, 0, &res, 1, &e), MT_EINVAL);
    mt_wasm_extern x;
    assert_int_equal(mt_wasm_instance_export(r.inst, "g", 1, &x, &e), MT_ENOTFOUND);
    teardown(&r);
}

static mt_status host_add1(void *env, mt_wasm_store *s, const mt_wasm_val *args,
                           mt_wasm_val *results, mt_err *err)
{
    (void)env, (void)s;
    if (args[0].of.i32 == 13)
        return mt_err_set(err, MT_EPERM, "13 is not allowed");
    results[0].of.i32 = args[0].of.i32 + 1;
    return MT_OK;
}

static mt_wasm_func *make_host(mt_wasm_store *s)
{
    mt_wasm_func *f;
    mt_err e;
    assert_int_equal(mt_wasm_func_new_host(s, T_I32, 1, T_I32, 1, host_add1, NULL, &f, &e),
                     MT_OK);
    return f;
}

static void test_host_import(void **state)
{
    (void)state;
    /* f(x) = h(x) * 2 */
    const uint8_t body[] = {0, 0x20, 0, 0x10, 0, 0x41, 2, 0x6C, 0x0B};
    spec s = {T_I32, T_I32, 1, 1, body, sizeof body, -1, -1, true};
    run r;
    mt_err e;
    setup(&r, &s, NULL, make_host);
    assert_non_null(r.f);
    mt_wasm_val a = {.type = MT_WASM_I32, .of.i32 = 20}, res;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 42);
    a.of.i32 = 13;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_EPERM);
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_HOST);
    assert_non_null(strstr(e.msg, "13 is not allowed"));
    teardown(&r);
    /* no resolver: unlinkable */
    buf b;
    build(&b, &s);
    mt_wasm_module *m;
    assert_int_equal(mt_wasm_module_new(b.b, b.n, NULL, &m, &e), MT_OK);
    mt_wasm_store *st = mt_wasm_store_new(NULL);
    mt_wasm_instance *inst;
    assert_int_equal(mt_wasm_instantiate(st, m, NULL, NULL, &inst, &e), MT_ENOTFOUND);
    assert_non_null(strstr(e.msg, "unknown import \"env\".\"h\""));
    assert_int_equal(mt_wasm_store_trap(st), MT_WASM_TRAP_NONE);
    mt_wasm_store_free(st);
    mt_wasm_module_free(m);
}

/* ---- limits ------------------------------------------------------------------ */
static void test_fuel(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.fuel = 100000;
    /* an endless loop */
    const uint8_t loop[] = {0, 0x03, 0x40, 0x0C, 0, 0x0B, 0x0B};
    spec s = {NULL, NULL, 0, 0, loop, sizeof loop, -1, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(call0(&r, NULL, 0, &e), MT_EQUOTA);
    assert_string_equal(e.msg, "trap: fuel exhausted");
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_FUEL);
    assert_int_equal(mt_wasm_store_fuel(r.store), 0);
    teardown(&r);
    /* exact charge: i32.const, i32.const, i32.add, end = 4 */
    const uint8_t add[] = {0, 0x41, 1, 0x41, 2, 0x6A, 0x0B};
    spec s2 = {NULL, T_I32, 0, 1, add, sizeof add, -1, -1, false};
    lim.fuel = 10;
    setup(&r, &s2, &lim, NULL);
    mt_wasm_val res;
    assert_int_equal(call0(&r, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 3);
    assert_int_equal(mt_wasm_store_fuel(r.store), 6);
    assert_int_equal(call0(&r, &res, 1, &e), MT_OK);
    assert_int_equal(call0(&r, &res, 1, &e), MT_EQUOTA); /* 2 left, 4 needed */
    mt_wasm_store_set_fuel(r.store, UINT64_MAX);
    assert_int_equal(call0(&r, &res, 1, &e), MT_OK);
    assert_int_equal(mt_wasm_store_fuel(r.store), UINT64_MAX);
    teardown(&r);
}

static void test_call_depth(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_call_depth = 50;
    const uint8_t rec[] = {0, 0x10, 0, 0x0B}; /* f() { f(); } */
    spec s = {NULL, NULL, 0, 0, rec, sizeof rec, -1, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(call0(&r, NULL, 0, &e), MT_ETOOBIG);
    assert_string_equal(e.msg, "trap: call stack exhausted");
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_CALL_STACK);
    teardown(&r);
}

static void test_value_stack(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_stack_slots = 4096;
    /* 200 i64 locals per frame, recursing: the value stack runs out first */
    const uint8_t rec[] = {1, 0xC8, 0x01, 0x7E, 0x10, 0, 0x0B};
    spec s = {NULL, NULL, 0, 0, rec, sizeof rec, -1, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(call0(&r, NULL, 0, &e), MT_ETOOBIG);
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_VALUE_STACK);
    assert_non_null(strstr(e.msg, "value stack"));
    teardown(&r);
}

static void test_memory_cap(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_memory_pages = 4;
    /* memory.grow(n) returns the old size or -1 */
    const uint8_t grow[] = {0, 0x20, 0, 0x40, 0, 0x0B};
    spec s = {T_I32, T_I32, 1, 1, grow, sizeof grow, 1, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    mt_wasm_val a = {.type = MT_WASM_I32, .of.i32 = 10}, res;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 0xFFFFFFFFu);
    a.of.i32 = 3;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 1);
    a.of.i32 = 1;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 0xFFFFFFFFu);
    teardown(&r);
    /* a minimum above the cap cannot be instantiated */
    s.mem_min = 5;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(r.inst_status, MT_ETOOBIG);
    assert_null(r.f);
    teardown(&r);
    /* out-of-bounds load traps */
    const uint8_t load[] = {0, 0x20, 0, 0x28, 2, 0, 0x0B};
    spec s2 = {T_I32, T_I32, 1, 1, load, sizeof load, 1, -1, false};
    setup(&r, &s2, &lim, NULL);
    a.of.i32 = 65532;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    a.of.i32 = 65533;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_EINVAL);
    assert_string_equal(e.msg, "trap: out of bounds memory access");
    teardown(&r);
}

static void test_table_cap(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_table_elems = 10;
    /* table.grow(ref.null func, n) */
    const uint8_t grow[] = {0, 0xD0, 0x70, 0x20, 0, 0xFC, 0x0F, 0, 0x0B};
    spec s = {T_I32, T_I32, 1, 1, grow, sizeof grow, -1, 1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    mt_wasm_val a = {.type = MT_WASM_I32, .of.i32 = 100}, res;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 0xFFFFFFFFu);
    a.of.i32 = 9;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 1);
    teardown(&r);
    s.table_min = 11;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(r.inst_status, MT_ETOOBIG);
    teardown(&r);
}


/* ---- bulk operations are charged by length (issue 8, item 15) ---------------- */
/* Fuel used by f(n) (param i32, no result) from a full budget. */
static uint64_t fuel_used_mem(const uint8_t *body, size_t len, uint32_t n, int mem)
{
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.fuel = 1000000;
    spec s = {T_I32, NULL, 1, 0, body, len, mem, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    mt_wasm_val a = {.type = MT_WASM_I32, .of.i32 = n};
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, NULL, 0, &e), MT_OK);
    uint64_t used = 1000000 - mt_wasm_store_fuel(r.store);
    teardown(&r);
    /* with one unit less the same call traps for fuel */
    lim.fuel = used - 1;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, NULL, 0, &e), MT_EQUOTA);
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_FUEL);
    teardown(&r);
    return used;
}

static uint64_t fuel_used(const uint8_t *body, size_t len, uint32_t n)
{
    return fuel_used_mem(body, len, n, -1);
}

/* Branches back to a loop head charge the loop block's fuel themselves
 * (BR_LOOP, BR_IF_L_LOOP, BRL_LC, BRL_LL): every iteration still costs one
 * unit per wasm instruction of the loop. */
static void test_fuel_loops(void **state)
{
    (void)state;
    /* loop: local.get 0; i32.const 1; i32.sub; local.tee 0; br_if 0 (5 per iteration) */
    const uint8_t tee[] = {0, 0x03, 0x40, 0x20, 0, 0x41, 1, 0x6B, 0x22, 0, 0x0D, 0, 0x0B, 0x0B};
    /* loop: get; const 1; sub; set; get; const 0; i32.ne; br_if 0 (8) */
    const uint8_t ne[] = {0,    0x03, 0x40, 0x20, 0, 0x41, 1, 0x6B, 0x21, 0, 0x20,
                          0,    0x41, 0,    0x47, 0x0D, 0, 0x0B, 0x0B};
    /* block loop: get; eqz; br_if 1; get; const 1; sub; set; br 0 (8) */
    const uint8_t br[] = {0,    0x02, 0x40, 0x03, 0x40, 0x20, 0, 0x45, 0x0D, 1, 0x20, 0,
                          0x41, 1,    0x6B, 0x21, 0,    0x0C, 0, 0x0B, 0x0B, 0x0B};
    /* local 1 = 0; loop: get 1; const 1; add; set 1; get 1; get 0; i32.lt_u; br_if 0 (8) */
    const uint8_t ll[] = {1,    1,    0x7F, 0x03, 0x40, 0x20, 1,    0x41, 1,    0x6A, 0x21, 1,
                          0x20, 1,    0x20, 0,    0x49, 0x0D, 0,    0x0B, 0x0B};
    assert_int_equal(fuel_used(tee, sizeof tee, 11) - fuel_used(tee, sizeof tee, 10), 5);
    assert_int_equal(fuel_used(tee, sizeof tee, 40) - fuel_used(tee, sizeof tee, 10), 150);
    assert_int_equal(fuel_used(ne, sizeof ne, 21) - fuel_used(ne, sizeof ne, 20), 8);
    assert_int_equal(fuel_used(br, sizeof br, 21) - fuel_used(br, sizeof br, 20), 8);
    assert_int_equal(fuel_used(ll, sizeof ll, 21) - fuel_used(ll, sizeof ll, 20), 8);
    /* loop: get 0; const -1; add; tee 0; const 0; i32.ne; br_if 0 (7; OP_INCBRL) */
    const uint8_t inc[] = {0,    0x03, 0x40, 0x20, 0, 0x41, 0x7F, 0x6A, 0x22,
                           0,    0x41, 0,    0x47, 0x0D, 0, 0x0B, 0x0B};
    assert_int_equal(fuel_used(inc, sizeof inc, 21) - fuel_used(inc, sizeof inc, 20), 7);
    assert_int_equal(fuel_used(inc, sizeof inc, 1), 10); /* loop, 7, end, end */
    /* one iteration: the whole body once */
    assert_int_equal(fuel_used(tee, sizeof tee, 1), 8); /* loop, 5, end, end */
}

/* The fused forms OP_SIG_A, OP_SIG_D (xor chains of rotations), LOAD_LK_D,
 * LOAD_LLA_D (+ tee), OP_F2L, OP_COPYN and OP_STORE_LLAK charge one unit
 * per wasm instruction they stand for: 57 per iteration of this loop, and
 * one unit less traps. */
static void test_fuel_fused(void **state)
{
    (void)state;
    const uint8_t b[] = {
        1, 2, 0x7F, 0x03, 0x40,                                       /* (local i32 i32) loop */
        0x20, 1, 0x20, 0, 0x41, 6, 0x78, 0x20, 0, 0x41, 11, 0x78, 0x73, /* l1 + sigma(l0) (14) */
        0x20, 0, 0x41, 25, 0x78, 0x73, 0x6A, 0x21, 1,                 /* ... local.set 1 */
        0x20, 0, 0x41, 2, 0x78, 0x20, 0, 0x41, 13, 0x78, 0x73, 0x21, 2, /* SIG_D (8) */
        0x20, 0, 0x41, 4, 0x6A, 0x28, 2, 0, 0x21, 1,                  /* LOAD_LK_D (5) */
        0x20, 0, 0x20, 0, 0x6A, 0x2D, 0, 0, 0x22, 2, 0x1A,            /* LOAD_LLA_D, tee (6) */
        0x20, 1, 0x41, 1, 0x6A, 0x20, 0, 0x20, 2, 0x71, 0x73, 0x21, 1, /* F2L (8) */
        0x20, 1, 0x21, 2, 0x20, 2, 0x21, 1, 0x20, 1, 0x21, 2,         /* COPYN 3 (6) */
        0x20, 0, 0x20, 0, 0x6A, 0x41, 1, 0x3A, 0, 0,                  /* STORE_LLAK (5) */
        0x20, 0, 0x41, 1, 0x6B, 0x22, 0, 0x0D, 0, 0x0B, 0x0B};        /* step, br_if (5) */
    assert_int_equal(fuel_used_mem(b, sizeof b, 11, 1) - fuel_used_mem(b, sizeof b, 10, 1), 57);
    assert_int_equal(fuel_used_mem(b, sizeof b, 1, 1), 60); /* loop, 57, end, end */
}

/* Forward branches to a block end that starts a basic block charge that
 * block's fuel themselves (BR_IF_L, BR_LC, BR_LL and BR in their loop
 * forms): still one unit per wasm instruction executed, taken or not. */
static void test_fuel_forward(void **state)
{
    (void)state;
    /* block; get 0; br_if 0; nop x3; end; nop; nop */
    const uint8_t l[] = {0,    0x02, 0x40, 0x20, 0,    0x0D, 0, 0x01,
                         0x01, 0x01, 0x0B, 0x01, 0x01, 0x0B};
    /* block; get 0; const 5; lt_u; br_if 0; nop x3; end; nop; nop */
    const uint8_t lc[] = {0,    0x02, 0x40, 0x20, 0,    0x41, 5,    0x49, 0x0D,
                          0,    0x01, 0x01, 0x01, 0x0B, 0x01, 0x01, 0x0B};
    /* (local i32) block; get 0; get 1; gt_u; br_if 0; nop x3; end; nop; nop */
    const uint8_t ll[] = {1,    1,    0x7F, 0x02, 0x40, 0x20, 0,    0x20, 1,    0x4B,
                          0x0D, 0,    0x01, 0x01, 0x01, 0x0B, 0x01, 0x01, 0x0B};
    /* block; block; get 0; br_if 0; br 1; end; nop; end; nop */
    const uint8_t br[] = {0,    0x02, 0x40, 0x02, 0x40, 0x20, 0, 0x0D,
                          0,    0x0C, 1,    0x0B, 0x01, 0x0B, 0x01, 0x0B};
    assert_int_equal(fuel_used(l, sizeof l, 1), 6);
    assert_int_equal(fuel_used(l, sizeof l, 0), 10);
    assert_int_equal(fuel_used(lc, sizeof lc, 1), 8);
    assert_int_equal(fuel_used(lc, sizeof lc, 9), 12);
    assert_int_equal(fuel_used(ll, sizeof ll, 1), 8);
    assert_int_equal(fuel_used(ll, sizeof ll, 0), 12);
    assert_int_equal(fuel_used(br, sizeof br, 0), 7);
    assert_int_equal(fuel_used(br, sizeof br, 1), 8);
}

static void test_fuel_bulk(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.fuel = 100000;
    /* 200 times memory.fill(0, 1, 16 MiB): 3.2 GB written for ~3000 instructions
     * when fills cost one unit each */
    const uint8_t loop[] = {1,    1,    0x7F, 0x03, 0x40, 0x41, 0,    0x41, 1,    0x41,
                            0x80, 0x80, 0x80, 0x08, 0xFC, 0x0B, 0,    0x20, 0,    0x41,
                            1,    0x6A, 0x22, 0,    0x41, 0xC8, 0x01, 0x48, 0x0D, 0,
                            0x0B, 0x0B};
    spec s = {NULL, NULL, 0, 0, loop, sizeof loop, 256, -1, false};
    run r;
    mt_err e;
    setup(&r, &s, &lim, NULL);
    assert_non_null(r.f);
    assert_int_equal(call0(&r, NULL, 0, &e), MT_EQUOTA);
    assert_string_equal(e.msg, "trap: fuel exhausted");
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_FUEL);
    teardown(&r);
    /* exact charge of fill(0, 1, n): 5 instructions + n / 64 */
    const uint8_t fill[] = {0, 0x41, 0, 0x41, 1, 0x20, 0, 0xFC, 0x0B, 0, 0x0B};
    spec s2 = {T_I32, NULL, 1, 0, fill, sizeof fill, 1, -1, false};
    lim.fuel = 1000;
    setup(&r, &s2, &lim, NULL);
    mt_wasm_val a = {.type = MT_WASM_I32, .of.i32 = 640};
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, NULL, 0, &e), MT_OK);
    assert_int_equal(mt_wasm_store_fuel(r.store), 1000 - 5 - 10);
    a.of.i32 = 65536; /* 1024 + 5 > 985 left: traps before writing */
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, NULL, 0, &e), MT_EQUOTA);
    assert_int_equal(mt_wasm_store_trap(r.store), MT_WASM_TRAP_FUEL);
    teardown(&r);
    /* memory.grow: 1024 per page added; a grow refused by the cap costs nothing more */
    const uint8_t grow[] = {0, 0x20, 0, 0x40, 0, 0x0B};
    spec s3 = {T_I32, T_I32, 1, 1, grow, sizeof grow, 1, -1, false};
    lim.fuel = 3000;
    lim.max_memory_pages = 64;
    setup(&r, &s3, &lim, NULL);
    mt_wasm_val res;
    a.of.i32 = 1000; /* over the cap: -1, 3 units */
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 0xFFFFFFFFu);
    assert_int_equal(mt_wasm_store_fuel(r.store), 2997);
    a.of.i32 = 2; /* 2048 + 3 */
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 1);
    assert_int_equal(mt_wasm_store_fuel(r.store), 2997 - 2051);
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_EQUOTA);
    teardown(&r);
    /* a grow within the page cap that the store's byte budget refuses (a table
     * of 100,000 elements holds 800,000 bytes of the 64 pages) keeps its
     * charge: -1, 60 * 1024 + 3 (docs/wasm-engine.md, "Fuel") */
    spec s6 = {T_I32, T_I32, 1, 1, grow, sizeof grow, 1, 100000, false};
    uint32_t elems = lim.max_table_elems;
    lim.fuel = 100000;
    lim.max_table_elems = 100000;
    setup(&r, &s6, &lim, NULL);
    a.of.i32 = 60;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_OK);
    assert_int_equal(res.of.i32, 0xFFFFFFFFu);
    assert_int_equal(mt_wasm_store_fuel(r.store), 100000 - 60 * 1024 - 3);
    teardown(&r);
    lim.max_table_elems = elems;
    /* locals are zeroed at every call: 1 per 8 (4000 i64 locals: 500 + 1 for end) */
    const uint8_t locals[] = {1, 0xA0, 0x1F, 0x7E, 0x0B};
    spec s5 = {NULL, NULL, 0, 0, locals, sizeof locals, -1, -1, false};
    lim.fuel = 1000;
    setup(&r, &s5, &lim, NULL);
    assert_int_equal(call0(&r, NULL, 0, &e), MT_OK);
    assert_int_equal(mt_wasm_store_fuel(r.store), 499);
    assert_int_equal(call0(&r, NULL, 0, &e), MT_EQUOTA);
    teardown(&r);
    /* table.grow: 1 per element */
    const uint8_t tgrow[] = {0, 0xD0, 0x70, 0x20, 0, 0xFC, 0x0F, 0, 0x0B};
    spec s4 = {T_I32, T_I32, 1, 1, tgrow, sizeof tgrow, -1, 1, false};
    lim.fuel = 1000;
    setup(&r, &s4, &lim, NULL);
    a.of.i32 = 5000;
    assert_int_equal(mt_wasm_func_call(r.store, r.f, &a, 1, &res, 1, &e), MT_EQUOTA);
    teardown(&r);
}

/* ---- implementation limits (issue 8, item 16) ----------------------------------- */
typedef struct big {
    uint8_t *b;
    size_t n, cap;
} big;

static void big_put(big *m, const void *p, size_t n)
{
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->b = realloc(m->b, m->cap);
        assert_non_null(m->b);
    }
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void big_uleb(big *m, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        b |= v ? 0x80 : 0;
        big_put(m, &b, 1);
    } while (v);
}

static void big_section(big *m, uint8_t id, const big *c)
{
    big_put(m, &id, 1);
    big_uleb(m, (uint32_t)c->n);
    big_put(m, c->b, c->n);
}

/* A module of ntables empty tables and one function () -> () whose body
 * nests depth blocks. */
static void big_module(big *m, uint32_t ntables, uint32_t depth)
{
    big c = {0};
    memset(m, 0, sizeof *m);
    big_put(m, "\0asm\1\0\0\0", 8);
    big_put(&c, "\1\x60\0\0", 4);
    big_section(m, 1, &c);
    c.n = 0;
    big_put(&c, "\1\0", 2);
    big_section(m, 3, &c);
    if (ntables) {
        c.n = 0;
        big_uleb(&c, ntables);
        for (uint32_t i = 0; i < ntables; i++)
            big_put(&c, "\x70\0\0", 3);
        big_section(m, 4, &c);
    }
    big body = {0};
    big_put(&body, "\0", 1);
    for (uint32_t i = 0; i < depth; i++)
        big_put(&body, "\x02\x40", 2);
    for (uint32_t i = 0; i <= depth; i++)
        big_put(&body, "\x0B", 1);
    c.n = 0;
    big_uleb(&c, 1);
    big_uleb(&c, (uint32_t)body.n);
    big_put(&c, body.b, body.n);
    big_section(m, 10, &c);
    free(body.b);
    free(c.b);
}

static void test_module_limits(void **state)
{
    (void)state;
    mt_wasm_module *mod = NULL;
    mt_err e;
    big m;
    /* 20,000 tables: refused by the decoder, nothing reserved */
    big_module(&m, 20000, 0);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_EINVAL);
    assert_null(mod);
    assert_non_null(strstr(e.msg, "table section"));
    assert_non_null(strstr(e.msg, "too many tables (the limit is 100)"));
    free(m.b);
    big_module(&m, 100, 0);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
    mt_wasm_module_free(mod);
    free(m.b);
    /* 200,000 nested blocks: refused by the validator */
    big_module(&m, 0, 200000);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_EINVAL);
    assert_null(mod);
    assert_non_null(strstr(e.msg, "code section"));
    assert_non_null(strstr(e.msg, "nested too deeply"));
    free(m.b);
    big_module(&m, 0, 10000);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
    mt_wasm_module_free(mod);
    free(m.b);
}

/* A module of one function () -> i32 per entry of names (exported under
 * that name, nexp of them, all naming function 0 when nfuncs is 1) whose
 * body is `block; i32.const 0; br_table 0 x nlab, 0; end; i32.const i`:
 * the br_table's labels make the translated code larger than one cell per
 * body byte, so the module's code buffer grows (and moves) while later
 * functions are translated. export_idx: the function index each export
 * names (NULL: 0). */
static void exports_module(big *m, uint32_t nfuncs, uint32_t nlab, uint32_t nexp,
                           const char *const *names, const uint32_t *export_idx)
{
    big c = {0};
    memset(m, 0, sizeof *m);
    big_put(m, "\0asm\1\0\0\0", 8);
    big_put(&c, "\1\x60\0\1\x7F", 5);
    big_section(m, 1, &c);
    c.n = 0;
    big_uleb(&c, nfuncs);
    for (uint32_t i = 0; i < nfuncs; i++)
        big_put(&c, "\0", 1);
    big_section(m, 3, &c);
    c.n = 0;
    big_uleb(&c, nexp);
    for (uint32_t i = 0; i < nexp; i++) {
        big_uleb(&c, (uint32_t)strlen(names[i]));
        big_put(&c, names[i], strlen(names[i]));
        big_put(&c, "\0", 1);
        big_uleb(&c, export_idx ? export_idx[i] : 0);
    }
    big_section(m, 7, &c);
    c.n = 0;
    big_uleb(&c, nfuncs);
    big body = {0};
    for (uint32_t f = 0; f < nfuncs; f++) {
        body.n = 0;
        big_put(&body, "\0\x02\x40\x41\0\x0E", 6);
        big_uleb(&body, nlab);
        for (uint32_t k = 0; k <= nlab; k++)
            big_put(&body, "\0", 1);
        big_put(&body, "\x0B\x41", 2);
        big_uleb(&body, f); /* i32.const f (f < 64: one byte, no sign bit) */
        big_put(&body, "\x0B", 1);
        big_uleb(&c, (uint32_t)body.n);
        big_put(&c, body.b, body.n);
    }
    big_section(m, 10, &c);
    free(body.b);
    free(c.b);
}

/* names[i] = "e%05u" of i, written into store (n entries). */
static void export_names(char (*store)[8], const char **names, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(store[i], sizeof store[i], "e%05u", i % 100000u); /* n <= 100000 */
        names[i] = store[i];
    }
}

/* Export names: the duplicate check keeps the earlier rules (first error
 * in the section wins) with many exports (its hashed set). */
static void test_many_exports(void **state)
{
    (void)state;
    enum { N = 3000 };
    static char store[N][8];
    const char *names[N];
    export_names(store, names, N);
    mt_wasm_module *mod = NULL;
    mt_err e;
    big m;
    exports_module(&m, 1, 1, N, names, NULL);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
    assert_int_equal(mt_wasm_module_num_exports(mod), N);
    const char *nm;
    size_t nl;
    uint8_t kind;
    assert_true(mt_wasm_module_export(mod, N - 1, &nm, &nl, &kind));
    assert_int_equal(nl, 6);
    assert_memory_equal(nm, "e02999", 6);
    mt_wasm_module_free(mod);
    free(m.b);
    /* the last name repeats the first: refused */
    names[N - 1] = "e00000";
    exports_module(&m, 1, 1, N, names, NULL);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_EINVAL);
    assert_null(mod);
    assert_non_null(strstr(e.msg, "export section"));
    assert_non_null(strstr(e.msg, "duplicate export name"));
    free(m.b);
    /* a prefix of another name, and the empty name, are other names */
    names[N - 1] = "e0000";
    names[N - 2] = "";
    exports_module(&m, 1, 1, N, names, NULL);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
    mt_wasm_module_free(mod);
    free(m.b);
    /* a duplicate before an unknown function index: the duplicate is reported */
    static uint32_t idx[N];
    idx[N - 1] = 7;
    names[N - 1] = "e02999";
    names[N - 2] = "e00010";
    exports_module(&m, 1, 1, N, names, idx);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "duplicate export name"));
    free(m.b);
    /* and the unknown index alone */
    names[N - 2] = "e02998";
    exports_module(&m, 1, 1, N, names, idx);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "unknown function 7"));
    free(m.b);
}

/* When no random key can be drawn (mt_siphash_test_fail_keys) a module of
 * more than 64 exports fails with an error instead of its names being
 * hashed under a fixed (zero) key; up to 64 are checked unkeyed. */
static void test_exports_no_key(void **state)
{
    (void)state;
    enum { N = 65 };
    static char store[N][8];
    const char *names[N];
    export_names(store, names, N);
    mt_wasm_module *mod = NULL;
    mt_err e;
    big m;
    mt_siphash_test_fail_keys(true);
    exports_module(&m, 1, 1, N, names, NULL);
    int rc = mt_wasm_module_new(m.b, m.n, NULL, &mod, &e);
    bool said = rc != MT_OK && strstr(e.msg, "no random key for the export-name check");
    free(m.b);
    exports_module(&m, 1, 1, N - 1, names, NULL);
    int rc64 = mt_wasm_module_new(m.b, m.n, NULL, &mod, &e);
    mt_wasm_module_free(mod);
    mod = NULL;
    free(m.b);
    mt_siphash_test_fail_keys(false); /* before any assertion can end the test */
    assert_int_equal(rc, MT_EINVAL);
    assert_true(said);
    assert_int_equal(rc64, MT_OK);
    /* with a key again: the 65 exports pass */
    exports_module(&m, 1, 1, N, names, NULL);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
    mt_wasm_module_free(mod);
    free(m.b);
}

/* All functions' code lives in one buffer that grows (and may move) while
 * the module is translated: every function still runs its own code. */
static void test_code_buffer(void **state)
{
    (void)state;
    enum { F = 60 };
    char store[F][4];
    const char *names[F];
    uint32_t idx[F];
    for (uint32_t i = 0; i < F; i++) {
        snprintf(store[i], sizeof store[i], "f%u", i);
        names[i] = store[i];
        idx[i] = i;
    }
    mt_wasm_module *mod = NULL;
    mt_err e;
    big m;
    exports_module(&m, F, 2000, F, names, idx);
    assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
    free(m.b);
    mt_wasm_store *s = mt_wasm_store_new(NULL);
    assert_non_null(s);
    mt_wasm_instance *in;
    assert_int_equal(mt_wasm_instantiate(s, mod, resolve_host, NULL, &in, &e), MT_OK);
    for (uint32_t i = 0; i < F; i++) {
        mt_wasm_extern x;
        mt_wasm_val res;
        assert_int_equal(mt_wasm_instance_export(in, names[i], strlen(names[i]), &x, &e), MT_OK);
        assert_int_equal(mt_wasm_func_call(s, x.of.func, NULL, 0, &res, 1, &e), MT_OK);
        assert_int_equal(res.of.i32, i);
    }
    mt_wasm_store_free(s);
    mt_wasm_module_free(mod);
}

/* The module keeps no more of its code buffer than its code uses (plus
 * less than a page) once the buffer is 32 MiB or more (a mapping of its own:
 * giving back is an mremap), and under a quarter of it below that (so under
 * 8 MiB in all): the buffer is reserved at one cell per body byte and counts
 * against the worker's RLIMIT_AS for the module's lifetime (up to a quarter
 * of any size was kept before: 128 MiB for a 64 MiB module). Bodies of
 * i32.const/drop pairs and a growing share of nops (no cells) leave 0..40 %
 * of the estimate unused. */
static void test_code_buffer_slack(void **state)
{
    (void)state;
    for (int pct = 0; pct <= 40; pct += 8)
        for (int large = 0; large < 2; large++) {
        big m = {0}, c = {0}, body = {0};
        big_put(&m, "\0asm\1\0\0\0", 8);
        big_put(&c, "\1\x60\0\0", 4);
        big_section(&m, 1, &c);
        c.n = 0;
        big_put(&c, "\1\0", 2);
        big_section(&m, 3, &c);
        big_put(&body, "\0", 1);
        size_t BODY = large ? (size_t)4400000 : 60000; /* cells: 35 MB or 480 KB */
        size_t nops = BODY * (size_t)pct / 100;
        for (size_t k = 0; k < nops; k++)
            big_put(&body, "\x01", 1);
        while (body.n + 3 < BODY)
            big_put(&body, "\x41\x01\x1A", 3);
        big_put(&body, "\x0B", 1);
        c.n = 0;
        big_uleb(&c, 1);
        big_uleb(&c, (uint32_t)body.n);
        big_put(&c, body.b, body.n);
        big_section(&m, 10, &c);
        mt_wasm_module *mod = NULL;
        mt_err e;
        assert_int_equal(mt_wasm_module_new(m.b, m.n, NULL, &mod, &e), MT_OK);
        size_t used = (mod->codes[0].ir_off + mod->codes[0].ir_len) * sizeof *mod->ir;
        size_t have = malloc_usable_size(mod->ir);
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        if (large ? have > used + page : (have - used) * 4 > have)
            fail_msg("%d %% nops: %zu bytes of code in a buffer of %zu", pct, used, have);
        mt_wasm_module_free(mod);
        free(m.b);
        free(c.b);
        free(body.b);
    }
}

/* Tables count against the store's memory cap (8 bytes per element). */
static void test_table_memory(void **state)
{
    (void)state;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_memory_pages = 1; /* 64 KiB: 8192 elements */
    const uint8_t nop[] = {0, 0x0B};
    spec s = {NULL, NULL, 0, 0, nop, sizeof nop, -1, 9000, false};
    run r;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(r.inst_status, MT_ETOOBIG);
    teardown(&r);
    s.table_min = 8000;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(r.inst_status, MT_OK);
    teardown(&r);
    /* a table and a memory share the cap */
    lim.max_memory_pages = 2;
    s.mem_min = 2;
    setup(&r, &s, &lim, NULL);
    assert_int_equal(r.inst_status, MT_ETOOBIG);
    teardown(&r);
}

/* The duplicate-export check hashes names with SipHash-1-3 under the
 * module's key (a PRF: names cannot be chosen to collide without the key).
 * Keyed FNV-1a, used before, failed this. */
static void test_export_name_hash_prf(void **state)
{
    (void)state;
    uint8_t kb[16];
    for (int i = 0; i < 16; i++)
        kb[i] = (uint8_t)i;
    mt_siphash_key k = mt_siphash_key_from(kb), k2 = {k.k0 ^ 1, k.k1};
    char name[32];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(name, sizeof name, "export_%d", i);
        assert_true(wasm_export_name_hash(&k, name, (uint32_t)n) == mt_siphash13(&k, name, (size_t)n));
        assert_true(wasm_export_name_hash(&k, name, (uint32_t)n) !=
                    wasm_export_name_hash(&k2, name, (uint32_t)n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_errors), cmocka_unit_test(test_call_and_trap),
        cmocka_unit_test(test_host_import),   cmocka_unit_test(test_fuel),
        cmocka_unit_test(test_call_depth),    cmocka_unit_test(test_value_stack),
        cmocka_unit_test(test_memory_cap),    cmocka_unit_test(test_table_cap),
        cmocka_unit_test(test_fuel_bulk),     cmocka_unit_test(test_module_limits),
        cmocka_unit_test(test_table_memory),  cmocka_unit_test(test_fuel_loops), cmocka_unit_test(test_fuel_forward),
        cmocka_unit_test(test_fuel_fused),    cmocka_unit_test(test_many_exports), cmocka_unit_test(test_exports_no_key), cmocka_unit_test(test_export_name_hash_prf),
        cmocka_unit_test(test_code_buffer),   cmocka_unit_test(test_code_buffer_slack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
