/* mt_wasm: a WebAssembly 2.0 engine (without SIMD) for running code from
 * strangers: decoder, validator, translator to an internal threaded code,
 * and a metered interpreter.
 *
 * Contract
 * - mt_wasm_module_new() decodes and fully validates a binary module through
 *   one bounds-checked reader and translates every function once; nothing
 *   runs before that succeeded. Errors are MT_EINVAL (malformed or invalid,
 *   the message names the section, the byte offset and the reason) or
 *   MT_ETOOBIG (module size limit). A module is immutable afterwards and may
 *   be instantiated many times, also in different stores.
 * - A store owns every runtime object (instances, functions, memories,
 *   tables, globals) created in it; all are freed by mt_wasm_store_free().
 *   Objects of one store must never be passed to another store.
 * - No ambient authority: an instance sees only the imports the resolver
 *   hands it.
 * - Limits (mt_wasm_limits) are enforced: fuel (1 per instruction, charged
 *   per basic block, plus the length of bulk memory/table operations,
 *   memory.grow, locals zeroed and operands moved: docs/wasm-engine.md),
 *   memory pages (per memory, and for all memories and tables of a store
 *   together, tables at 8 bytes per element), table elements, call depth,
 *   value-stack slots, module size. A module over one of the decoder's
 *   implementation limits (tables, functions, globals, types, imports,
 *   exports, segments, locals, nesting depth, br_table labels) is invalid.
 *   Exhausting fuel, call depth or the value stack traps with a reason;
 *   memory.grow/table.grow beyond a cap return -1 as the spec requires, and
 *   instantiating a module whose minimum exceeds a cap fails with
 *   MT_ETOOBIG.
 * - A trap makes mt_wasm_func_call() return MT_EINVAL (MT_EQUOTA for fuel,
 *   MT_ETOOBIG for stack exhaustion) with "trap: <reason>"; the kind is
 *   available through mt_wasm_store_trap(). The host never crashes.
 * Thread-safety: a store and everything in it is used by one thread at a
 * time; modules may be shared read-only between threads. */
#ifndef MT_WASM_H
#define MT_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_wasm_module mt_wasm_module;
typedef struct mt_wasm_store mt_wasm_store;
typedef struct mt_wasm_instance mt_wasm_instance;
typedef struct mt_wasm_func mt_wasm_func;
typedef struct mt_wasm_memory mt_wasm_memory;
typedef struct mt_wasm_table mt_wasm_table;
typedef struct mt_wasm_global mt_wasm_global;

/* Value types, numbered as in the binary format. */
enum {
    MT_WASM_I32 = 0x7F,
    MT_WASM_I64 = 0x7E,
    MT_WASM_F32 = 0x7D,
    MT_WASM_F64 = 0x7C,
    MT_WASM_FUNCREF = 0x70,
    MT_WASM_EXTERNREF = 0x6F,
};

/* A value. Floats are carried as their IEEE bit patterns. An externref is an
 * opaque host word; 0 is the null reference. A null funcref is NULL. */
typedef struct mt_wasm_val {
    uint8_t type;
    union {
        uint32_t i32;
        uint64_t i64;
        uint32_t f32;
        uint64_t f64;
        mt_wasm_func *func;
        uintptr_t ext;
    } of;
} mt_wasm_val;

enum { MT_WASM_EXTERN_FUNC = 0, MT_WASM_EXTERN_TABLE = 1, MT_WASM_EXTERN_MEMORY = 2,
       MT_WASM_EXTERN_GLOBAL = 3 };

typedef struct mt_wasm_extern {
    uint8_t kind;
    union {
        mt_wasm_func *func;
        mt_wasm_table *table;
        mt_wasm_memory *memory;
        mt_wasm_global *global;
    } of;
} mt_wasm_extern;

typedef struct mt_wasm_limits {
    uint64_t fuel;              /* instruction budget of the store (UINT64_MAX: none) */
    uint32_t max_memory_pages;  /* per memory, pages of 64 KiB */
    uint32_t max_table_elems;   /* per table */
    uint32_t max_call_depth;    /* nested wasm calls */
    uint32_t max_stack_slots;   /* value stack, in 8-byte slots, locals included */
    size_t max_module_bytes;    /* size of a binary module */
} mt_wasm_limits;

/* Why a call trapped (MT_WASM_TRAP_NONE: it did not). */
typedef enum mt_wasm_trap {
    MT_WASM_TRAP_NONE = 0,
    MT_WASM_TRAP_UNREACHABLE,
    MT_WASM_TRAP_MEMORY_OOB,
    MT_WASM_TRAP_TABLE_OOB,
    MT_WASM_TRAP_UNDEFINED_ELEMENT,
    MT_WASM_TRAP_UNINITIALIZED_ELEMENT,
    MT_WASM_TRAP_INDIRECT_TYPE,
    MT_WASM_TRAP_DIV_ZERO,
    MT_WASM_TRAP_INT_OVERFLOW,
    MT_WASM_TRAP_INVALID_CONVERSION,
    MT_WASM_TRAP_CALL_STACK,
    MT_WASM_TRAP_VALUE_STACK,
    MT_WASM_TRAP_FUEL,
    MT_WASM_TRAP_HOST,
} mt_wasm_trap;

/* Defaults: unlimited fuel, 256 pages (16 MiB), 100000 table elements,
 * call depth 10000, 1 Mi stack slots (8 MiB), modules up to 64 MiB. */
void mt_wasm_limits_default(mt_wasm_limits *lim);

/* The spec's message for a trap kind ("out of bounds memory access"). */
const char *mt_wasm_trap_message(mt_wasm_trap trap);

/* Decodes, validates and translates a binary module (lim may be NULL for the
 * defaults; only max_module_bytes is used here). On error *out is NULL. */
mt_status mt_wasm_module_new(const uint8_t *bytes, size_t len, const mt_wasm_limits *lim,
                             mt_wasm_module **out, mt_err *err);
void mt_wasm_module_free(mt_wasm_module *m);

/* Number and description of a module's imports and exports (names are not
 * NUL-safe: use the length). Index out of range returns false. */
size_t mt_wasm_module_num_imports(const mt_wasm_module *m);
bool mt_wasm_module_import(const mt_wasm_module *m, size_t i, const char **module, size_t *mlen,
                           const char **name, size_t *nlen, uint8_t *kind);
size_t mt_wasm_module_num_exports(const mt_wasm_module *m);
bool mt_wasm_module_export(const mt_wasm_module *m, size_t i, const char **name, size_t *nlen,
                           uint8_t *kind);

/* A store with the given limits (NULL: defaults). NULL on allocation failure. */
mt_wasm_store *mt_wasm_store_new(const mt_wasm_limits *lim);
void mt_wasm_store_free(mt_wasm_store *s);
/* Fuel left, and reset of the budget (UINT64_MAX: unlimited). */
uint64_t mt_wasm_store_fuel(const mt_wasm_store *s);
void mt_wasm_store_set_fuel(mt_wasm_store *s, uint64_t fuel);
/* The trap of the last failed call or instantiation, MT_WASM_TRAP_NONE if it
 * failed for another reason (link error) or succeeded. */
mt_wasm_trap mt_wasm_store_trap(const mt_wasm_store *s);

/* Resolves one import; fills *out and returns MT_OK, or an error (the
 * instantiation then fails as unlinkable). */
typedef mt_status (*mt_wasm_resolver)(void *env, const char *module, size_t mlen,
                                      const char *name, size_t nlen, mt_wasm_extern *out,
                                      mt_err *err);

/* Instantiates m in s: resolves and type-checks imports (MT_ENOTFOUND unknown
 * import, MT_EINVAL incompatible import, trap kind NONE), allocates, runs
 * element and data segments and the start function. A trap there returns an
 * error with mt_wasm_store_trap() set; writes already made to imported
 * memories and tables stay, as the spec requires. The module must outlive
 * the store. */
mt_status mt_wasm_instantiate(mt_wasm_store *s, const mt_wasm_module *m, mt_wasm_resolver resolve,
                              void *env, mt_wasm_instance **out, mt_err *err);

/* Export by name; MT_ENOTFOUND when absent. */
mt_status mt_wasm_instance_export(const mt_wasm_instance *inst, const char *name, size_t nlen,
                                  mt_wasm_extern *out, mt_err *err);

/* Calls f with nargs arguments (types must match) and writes its results.
 * Traps are reported as described above. */
mt_status mt_wasm_func_call(mt_wasm_store *s, mt_wasm_func *f, const mt_wasm_val *args,
                            size_t nargs, mt_wasm_val *results, size_t nresults, mt_err *err);
/* The function's signature (arrays of value types, owned by the function). */
void mt_wasm_func_type(const mt_wasm_func *f, const uint8_t **params, size_t *np,
                       const uint8_t **results, size_t *nr);

/* A host function: called with the arguments, writes results (types preset);
 * a non-OK return traps the caller with err's message. */
typedef mt_status (*mt_wasm_host_fn)(void *env, mt_wasm_store *s, const mt_wasm_val *args,
                                     mt_wasm_val *results, mt_err *err);
mt_status mt_wasm_func_new_host(mt_wasm_store *s, const uint8_t *params, size_t np,
                                const uint8_t *results, size_t nr, mt_wasm_host_fn fn, void *env,
                                mt_wasm_func **out, mt_err *err);

/* Host-made memories, tables and globals (e.g. the spec's "spectest"). */
mt_status mt_wasm_memory_new(mt_wasm_store *s, uint32_t min, uint32_t max, bool has_max,
                             mt_wasm_memory **out, mt_err *err);
uint8_t *mt_wasm_memory_data(mt_wasm_memory *m, size_t *len);
mt_status mt_wasm_table_new(mt_wasm_store *s, uint8_t elem_type, uint32_t min, uint32_t max,
                            bool has_max, mt_wasm_table **out, mt_err *err);
mt_status mt_wasm_global_new(mt_wasm_store *s, const mt_wasm_val *v, bool mutable_,
                             mt_wasm_global **out, mt_err *err);
void mt_wasm_global_get(const mt_wasm_global *g, mt_wasm_val *out);

#endif
