/* wasm_int: internal structures shared by the engine's modules (decoder,
 * translator, interpreter, runtime). Not a public interface.
 *
 * A decoded module (mt_wasm_module) owns all its arrays. Translated code is
 * an array of 64-bit cells per function: an operation cell (a label address
 * when the interpreter uses threaded dispatch, otherwise an op number)
 * followed by that operation's immediates. Branch targets are cell offsets
 * relative to the cell holding them; stack heights are slots above the
 * frame pointer and precomputed by the translator. */
#ifndef MT_WASM_INT_H
#define MT_WASM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_wasm.h"

#if defined(__GNUC__) && !defined(MT_WASM_NO_THREADED)
#define MT_WASM_THREADED 1
#endif

#define WASM_PAGE 65536u
#define WASM_MAX_PAGES 65536u

/* ---- internal op numbers ------------------------------------------------ */
/* 0x00..0xD2: the single-byte wasm opcode of the same number (numeric ops,
 * loads and stores with an offset immediate, unreachable, drop, select).
 * 0xE0..0xE7: 0xFC 0..7 (saturating truncations). 0x100..: engine ops. */
enum {
    OP_TRUNC_SAT_BASE = 0xE0,
    OP_FUEL = 0x100,   /* n: charge n, trap when fuel runs out */
    OP_BR,             /* off */
    OP_BR_DROP,        /* off, drop */
    OP_BR_IF,          /* off */
    OP_BR_IF_DROP,     /* off, drop */
    OP_BR_UNLESS,      /* off */
    OP_BR_TABLE,       /* n, (off, drop) x (n+1) */
    OP_RETURN,         /* nres */
    OP_CALL,           /* funcidx */
    OP_CALL_INDIRECT,  /* typeidx, tableidx */
    OP_CONST,          /* value */
    OP_LOCAL_GET,      /* idx */
    OP_LOCAL_SET,      /* idx */
    OP_LOCAL_TEE,      /* idx */
    OP_GLOBAL_GET,     /* idx */
    OP_GLOBAL_SET,     /* idx */
    OP_TABLE_GET,      /* table */
    OP_TABLE_SET,      /* table */
    OP_MEMORY_SIZE,
    OP_MEMORY_GROW,
    OP_REF_IS_NULL,
    OP_REF_FUNC,       /* funcidx */
    OP_MEMORY_INIT,    /* seg */
    OP_DATA_DROP,      /* seg */
    OP_MEMORY_COPY,
    OP_MEMORY_FILL,
    OP_TABLE_INIT,     /* seg, table */
    OP_ELEM_DROP,      /* seg */
    OP_TABLE_COPY,     /* dst, src */
    OP_TABLE_GROW,     /* table */
    OP_TABLE_SIZE,     /* table */
    OP_TABLE_FILL,     /* table */
    OP_SELECT,
    OP_DROP,
    OP_UNREACHABLE,
    OP_LOCAL_GET_LOCAL_GET, /* idx, idx: fused pair */
    OP_COUNT
};

#define DROP_INFO(height, arity) (((uint64_t)(height) << 32) | (uint32_t)(arity))

/* ---- decoded module ------------------------------------------------------ */
typedef struct wasm_functype {
    uint32_t np, nr;
    uint8_t *t; /* np params then nr results */
} wasm_functype;

typedef struct wasm_lim {
    uint32_t min, max;
    bool has_max;
} wasm_lim;

typedef struct wasm_tabletype {
    uint8_t elem;
    wasm_lim lim;
} wasm_tabletype;

typedef struct wasm_globaltype {
    uint8_t type;
    bool mut;
} wasm_globaltype;

/* A constant expression: one instruction. */
enum { CE_CONST, CE_GLOBAL, CE_REF_FUNC, CE_REF_NULL };
typedef struct wasm_constexpr {
    uint8_t kind;
    uint8_t type;
    uint64_t val; /* constant bits, global index or function index */
} wasm_constexpr;

typedef struct wasm_import {
    char *module, *name;
    uint32_t mlen, nlen;
    uint8_t kind;
    uint32_t typeidx;        /* func */
    wasm_tabletype table;    /* table */
    wasm_lim mem;            /* memory */
    wasm_globaltype global;  /* global */
} wasm_import;

typedef struct wasm_export {
    char *name;
    uint32_t nlen;
    uint8_t kind;
    uint32_t idx;
} wasm_export;

enum { SEG_ACTIVE, SEG_PASSIVE, SEG_DECLARATIVE };

typedef struct wasm_elem {
    uint8_t mode, type;
    uint32_t table;
    wasm_constexpr offset;
    uint32_t n;
    wasm_constexpr *items;
} wasm_elem;

typedef struct wasm_data {
    uint8_t mode;
    wasm_constexpr offset;
    uint32_t len;
    const uint8_t *bytes; /* points into mt_wasm_module.bytes */
} wasm_data;

typedef struct wasm_code {
    uint32_t body_off, body_len;  /* in the module bytes */
    uint32_t nlocals;             /* params + declared locals */
    uint32_t max_height;          /* frame size in slots: locals + operand stack */
    uint64_t *ir;
    size_t ir_len;
} wasm_code;

struct mt_wasm_module {
    uint8_t *bytes;
    size_t len;
    uint32_t ntypes;
    wasm_functype *types;
    uint32_t nimports;
    wasm_import *imports;
    uint32_t nfuncs, nfunc_imports;  /* total including imports */
    uint32_t *func_type;             /* typeidx per function */
    uint32_t ntables, ntable_imports;
    wasm_tabletype *tables;
    uint32_t nmems, nmem_imports;
    wasm_lim *mems;
    uint32_t nglobals, nglobal_imports;
    wasm_globaltype *globals;
    wasm_constexpr *global_init;     /* for defined globals, index - nglobal_imports */
    uint32_t nexports;
    wasm_export *exports;
    bool has_start;
    uint32_t start;
    uint32_t nelems;
    wasm_elem *elems;
    uint32_t ndatas;
    bool has_datacount;
    uint32_t datacount;
    wasm_data *datas;
    wasm_code *codes;                /* for defined functions */
    uint8_t *declared_funcs;         /* bitmap: may be named by ref.func */
};

/* ---- runtime objects ------------------------------------------------------ */
struct mt_wasm_func {
    const wasm_functype *type;
    mt_wasm_instance *inst;          /* NULL for host functions */
    const wasm_code *code;
    mt_wasm_host_fn host;
    void *env;
    wasm_functype own_type;          /* for host functions */
};

struct mt_wasm_memory {
    uint8_t *data;
    uint64_t size;                   /* bytes */
    uint32_t pages;
    wasm_lim type;                   /* declared limits (for import matching) */
    uint32_t cap;                    /* growth cap: declared max and store limit */
};

struct mt_wasm_table {
    uint64_t *elems;                 /* references: 0 null, else mt_wasm_func * or extern word */
    uint32_t size;
    wasm_lim type;
    uint32_t cap;
    uint8_t elem;
};

struct mt_wasm_global {
    uint64_t val;
    uint8_t type;
    bool mut;
};

struct mt_wasm_instance {
    const mt_wasm_module *mod;
    mt_wasm_func **funcs;
    mt_wasm_table **tables;
    mt_wasm_memory **mems;
    mt_wasm_global **globals;
    bool *elem_dropped;
    bool *data_dropped;
};

typedef struct wasm_obj {
    struct wasm_obj *next;
    int kind; /* 0 func, 1 table, 2 memory, 3 global, 4 instance */
    void *p;
} wasm_obj;

struct mt_wasm_store {
    mt_wasm_limits lim;
    int64_t fuel;            /* INT64_MAX: unlimited */
    bool fuel_unlimited;
    mt_wasm_trap trap;
    uint64_t *stack;         /* value stack */
    size_t stack_slots;
    size_t stack_used;       /* slots in use by active calls (host re-entry) */
    struct wasm_frame *frames; /* call frames, max_call_depth of them */
    uint32_t nframes;        /* frames in use by active calls */
    uint32_t reentry;        /* nesting of mt_wasm_func_call (host re-entry) */
    wasm_obj *objs;
};

typedef struct wasm_frame {
    const uint64_t *ip;
    uint64_t *fp;
    mt_wasm_func *fn;
} wasm_frame;

/* ---- cross-module functions --------------------------------------------- */
/* wasm_compile.c: validates function body i (defined index) and translates it. */
mt_status wasm_compile_func(mt_wasm_module *m, uint32_t i, mt_err *err);
/* wasm_exec.c: the table of operation cells (label addresses or numbers). */
const uint64_t *wasm_exec_op_cells(void);
/* wasm_exec.c: runs f with args in stack slots; results written back to the
 * same slots (s->stack[0..nr)). Returns MT_OK or a trap status. */
mt_status wasm_exec_call(mt_wasm_store *s, mt_wasm_func *f, uint64_t *slots, mt_err *err);
/* wasm_runtime.c */
mt_status wasm_trap(mt_wasm_store *s, mt_wasm_trap t, mt_err *err);
int wasm_memory_grow(mt_wasm_memory *m, uint32_t delta);   /* old pages or -1 */
int64_t wasm_table_grow(mt_wasm_table *t, uint32_t delta, uint64_t init);
/* The value of a constant expression in an instance. */
uint64_t wasm_eval_const(const mt_wasm_instance *inst, const wasm_constexpr *ce);
bool wasm_functype_eq(const wasm_functype *a, const wasm_functype *b);

#endif
