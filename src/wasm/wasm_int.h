/* wasm_int: internal structures shared by the engine's modules (decoder,
 * translator, interpreter, runtime). Not a public interface.
 *
 * A decoded module (mt_wasm_module) owns all its arrays. Translated code is
 * an array of 64-bit cells per function: an operation cell (a label address
 * when the interpreter uses threaded dispatch, otherwise an op number)
 * followed by that operation's immediates. Branch targets are cell offsets
 * relative to the cell holding them; stack heights are slots above the
 * frame pointer and precomputed by the translator. A function's code
 * always starts with OP_FUEL (its entry block), which the call operations
 * execute themselves; likewise every conditional branch (br_if, if, and
 * their fused forms) is followed by the OP_FUEL of the block after it,
 * which the branch executes itself when it falls through. */
#ifndef MT_WASM_INT_H
#define MT_WASM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_siphash.h"
#include "mt_wasm.h"

#if defined(__GNUC__) && !defined(MT_WASM_NO_THREADED)
#define MT_WASM_THREADED 1
#endif

#define WASM_PAGE 65536u
#define WASM_MAX_PAGES 65536u

/* Fuel cost model (docs/wasm-engine.md, "Fuel"). Every instruction costs 1
 * unit (charged per basic block); on top of that, before doing the work:
 * memory.fill/copy/init 1 unit per WASM_FUEL_BYTES_PER_UNIT bytes (rounded
 * down), table.fill/copy/init/grow WASM_FUEL_PER_ELEM per element,
 * memory.grow WASM_FUEL_PER_PAGE per page asked for and table.grow per
 * element (charged when the new size is within the page / element cap: a
 * grow past the cap costs nothing extra; one within it that the store's byte
 * budget or the allocator then refuses keeps its charge), and 1 per WASM_FUEL_SLOTS_PER_UNIT value slots
 * for the locals a call zeroes and the operands a branch or return moves.
 * Not enough fuel left traps with MT_WASM_TRAP_FUEL and nothing is written. */
#define WASM_FUEL_BYTES_PER_UNIT 64u
/* Value-stack slots (8 bytes) per unit: locals zeroed at function entry and
 * values moved by a branch or return that drops operands below them. */
#define WASM_FUEL_SLOTS_PER_UNIT 8u
#define WASM_FUEL_PER_ELEM 1u
#define WASM_FUEL_PER_PAGE (WASM_PAGE / WASM_FUEL_BYTES_PER_UNIT)

/* Implementation limits of the decoder and validator (docs/wasm-engine.md,
 * "Limits"). A module over one is refused as invalid with a message naming
 * the limit; they bound what decoding, validating and instantiating a module
 * may allocate, whatever its size. Close to the JS API's limits where those
 * exist, lower where a count multiplies runtime objects. */
#define WASM_MAX_TYPES 100000u
#define WASM_MAX_PARAMS 1000u        /* params, and results, of one function type */
#define WASM_MAX_IMPORTS 10000u
#define WASM_MAX_FUNCS 200000u       /* imported + defined */
#define WASM_MAX_TABLES 100u         /* imported + defined */
#define WASM_MAX_GLOBALS 100000u     /* imported + defined */
#define WASM_MAX_EXPORTS 100000u
#define WASM_MAX_ELEM_SEGS 100000u
#define WASM_MAX_DATA_SEGS 100000u
#define WASM_MAX_LOCALS 50000u       /* params + declared locals of one function */
#define WASM_MAX_NESTING 10000u      /* nested block/loop/if in one function */
#define WASM_MAX_BR_TABLE 65536u     /* labels of one br_table */

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
    OP_LOAD_L,         /* 14 ops (0x28..0x35): local, offset: load from a local's address */
    OP_STORE_LL = OP_LOAD_L + 14, /* 9 ops (0x36..0x3E): addr | val << 32, offset */
    OP_LOAD_L_D = OP_STORE_LL + 9, /* 14 ops (0x28..0x35): addr | dst << 32, offset */
    OP_BR_IF_L = OP_LOAD_L_D + 14, /* local, off: branch if the local is nonzero */
    OP_BR_UNLESS_L,    /* local, off: branch if the local is zero */
    OP_COPY,           /* src | dst << 32: local.get; local.set */
    OP_SET_CONST,      /* dst, value: const; local.set */
    OP_LOAD_LK,        /* 14 ops (0x28..0x35): local, k, offset: load from (local + k) */
    OP_LOAD_LLA = OP_LOAD_LK + 14, /* 14 ops (0x28..0x35): a|b<<32, offset: load from (a + b) */
    OP_COPY2 = OP_LOAD_LLA + 14,   /* src|dst<<32, src|dst<<32: two OP_COPY */
    OP_BR_LOOP,        /* off: OP_BR to a loop head, charging its OP_FUEL */
    OP_BR_IF_L_LOOP,   /* local, off: OP_BR_IF_L to a loop head, likewise */
    OP_CALL_LOCAL,     /* code: call of a function defined by the same module
                        * (its wasm_code; the callee runs in the caller's instance) */
    OP_LDBR,           /* 10 ops (i32 comparisons 0..9 of WASM_FB_LIST): a, off, b, brofs:
                        * local.get a; i32.load off; local.get b; CMP; br_if */
    OP_FMM = OP_LDBR + 10, /* 8 ops (WASM_FB_LIST 42..49: f32/f64 add, sub, mul, div):
                        * a|b<<32, ka|kb<<32, offa|offb<<32: two float loads, each
                        * `local.get x; [i32.const k; i32.add;] fNN.load off`, then the
                        * binop; the result is pushed */
    OP_RETURN_FP0 = OP_FMM + 8, /* nres 1, the result already in slot 0 of the frame */
    OP_G2,             /* WASM_G2_LIST n: OP_G2 + n (b; result pushed),
                        * OP_G2 + WASM_G2_N + n (b|d<<32; result to local d) */
    OP_UNL = OP_G2 + 2 * 4, /* 128 ops, OP_UNL + (wasm opcode - 0x45): a unary
                        * numeric op or conversion that cannot trap, of a local: x */
    OP_UNLD = OP_UNL + 128, /* the same, result to a local: x|d<<32 */
    OP_F2_BASE = OP_UNLD + 128, /* WASM_F2_LIST: OP_F2_BASE + n */
    OP_INCBRL = OP_F2_BASE + 24, /* 10 ops (i32 comparisons 0..9 of WASM_FB_LIST):
                        * a|d<<32, k, k2, brofs: `local.get a; i32.const k; i32.add;
                        * local.tee d; i32.const k2; CMP; br_if` back to a loop head
                        * (the loop counter's step and test; charges the loop's fuel) */
    OP_FMMG2 = OP_INCBRL + 10, /* 4 ops, WASM_G2_LIST n: an OP_FMM multiply of the
                        * same type followed by G2 n to a local: FMM's 3 cells, b|d<<32 */
    OP_CALL_LC = OP_FMMG2 + 4, /* a, k, code: `local.get a; i32.const k; i32.add` as
                        * the last argument of OP_CALL_LOCAL */
    OP_RET_LL_ADD,     /* a|b<<32: `local.get a; local.get b; i32.add` as the only
                        * result, then return (OP_RETURN_FP0) */
    OP_INC2BRL,        /* 10 ops (as OP_INCBRL): a2|d2<<32, k2, then OP_INCBRL's 4 cells:
                        * `local.get a2; i32.const k2; i32.add; local.set d2` right
                        * before OP_INCBRL's sequence (a second induction variable) */
    OP_SIG = OP_INC2BRL + 10, /* x, sh: an xor of 2 or 3 i32 shifts/rotations of one
                        * local (`local.get x; i32.const k; OP` then one or two `local.get x;
                        * i32.const k; OP; i32.xor`, OP shl, shr_u, rotl or rotr: the sigma
                        * functions of SHA-2); sh packs each term as a left and a right
                        * shift of 0..32 (WASM_SIG_TERM); result pushed */
    OP_SIG_D,          /* x|d<<32, sh: the same, result to local d */
    OP_SIG_A,          /* x, sh: the same, then `i32.add` with the value under it:
                        * sp[-1] += sigma */
    OP_LOAD_LK_D,      /* 14 ops (0x28..0x35): a|d<<32, k, offset: OP_LOAD_LK then
                        * local.set/tee d */
    OP_LOAD_LLA_D = OP_LOAD_LK_D + 14, /* 14 ops: a|b<<32, offset|d<<32: OP_LOAD_LLA
                        * then local.set/tee d */
    OP_COPYN = OP_LOAD_LLA_D + 14, /* n, then n cells src|dst<<32: n >= 3 OP_COPY in
                        * a row, done in order (the register rotation of unrolled loops) */
    OP_F2L,            /* WASM_F2L_LIST n: OP_F2L + n, a|b<<32: `local.get a; local.get b;
                        * OP1; OP2` with OP2's left operand on the stack:
                        * sp[-1] = sp[-1] OP2 (a OP1 b) */
    OP_STORE_LLAK = OP_F2L + 16, /* 9 ops (0x36..0x3E): a|b<<32, k, offset:
                        * `local.get a; local.get b; i32.add; CONST k; STORE off` */
    OP_FB_BASE = OP_STORE_LLAK + 9,      /* fused binops: OP_FB(variant, index) */
    OP_COUNT = OP_FB_BASE + 16 * 70 /* FV_COUNT * WASM_FB_N */
};

/* Binary operations that have fused operand forms: X(index, wasm opcode,
 * operand kind, expression of a and b). Indices 0..19 are the integer
 * comparisons, which also have compare-and-branch forms. The division
 * expressions (DIV_S32 ...) trap exactly as the plain operations do. */
#define WASM_FB_LIST(X)                                                                    \
    X(0, 0x46, 32, a == b) X(1, 0x47, 32, a != b) X(2, 0x48, 32, S32(a) < S32(b))          \
    X(3, 0x49, 32, a < b) X(4, 0x4A, 32, S32(a) > S32(b)) X(5, 0x4B, 32, a > b)            \
    X(6, 0x4C, 32, S32(a) <= S32(b)) X(7, 0x4D, 32, a <= b) X(8, 0x4E, 32, S32(a) >= S32(b)) \
    X(9, 0x4F, 32, a >= b) X(10, 0x51, 64, a == b) X(11, 0x52, 64, a != b)                 \
    X(12, 0x53, 64, S64(a) < S64(b)) X(13, 0x54, 64, a < b) X(14, 0x55, 64, S64(a) > S64(b)) \
    X(15, 0x56, 64, a > b) X(16, 0x57, 64, S64(a) <= S64(b)) X(17, 0x58, 64, a <= b)       \
    X(18, 0x59, 64, S64(a) >= S64(b)) X(19, 0x5A, 64, a >= b) X(20, 0x6A, 32, a + b)      \
    X(21, 0x6B, 32, a - b) X(22, 0x6C, 32, a * b) X(23, 0x71, 32, a & b)                   \
    X(24, 0x72, 32, a | b) X(25, 0x73, 32, a ^ b) X(26, 0x74, 32, a << (b & 31))           \
    X(27, 0x75, 32, (uint32_t)(S32(a) >> (b & 31))) X(28, 0x76, 32, a >> (b & 31))         \
    X(29, 0x77, 32, (a << (b & 31)) | (a >> ((32 - b) & 31)))                              \
    X(30, 0x78, 32, (a >> (b & 31)) | (a << ((32 - b) & 31))) X(31, 0x7C, 64, a + b)       \
    X(32, 0x7D, 64, a - b) X(33, 0x7E, 64, a * b) X(34, 0x83, 64, a & b)                   \
    X(35, 0x84, 64, a | b) X(36, 0x85, 64, a ^ b) X(37, 0x86, 64, a << (b & 63))       \
    X(38, 0x87, 64, (uint64_t)(S64(a) >> (b & 63))) X(39, 0x88, 64, a >> (b & 63))         \
    X(40, 0x89, 64, (a << (b & 63)) | (a >> ((64 - b) & 63)))                              \
    X(41, 0x8A, 64, (a >> (b & 63)) | (a << ((64 - b) & 63)))                              \
    X(42, 0x92, F32, a + b) X(43, 0x93, F32, a - b) X(44, 0x94, F32, a * b)                \
    X(45, 0x95, F32, a / b) X(46, 0xA0, F64, a + b) X(47, 0xA1, F64, a - b)                \
    X(48, 0xA2, F64, a * b) X(49, 0xA3, F64, a / b) X(50, 0x5B, F32C, a == b)              \
    X(51, 0x5C, F32C, a != b) X(52, 0x5D, F32C, a < b) X(53, 0x5E, F32C, a > b)            \
    X(54, 0x5F, F32C, a <= b) X(55, 0x60, F32C, a >= b) X(56, 0x61, F64C, a == b)          \
    X(57, 0x62, F64C, a != b) X(58, 0x63, F64C, a < b) X(59, 0x64, F64C, a > b)            \
    X(60, 0x65, F64C, a <= b) X(61, 0x66, F64C, a >= b) X(62, 0x6D, 32, DIV_S32(a, b))     \
    X(63, 0x6E, 32, DIV_U32(a, b)) X(64, 0x6F, 32, REM_S32(a, b))                          \
    X(65, 0x70, 32, REM_U32(a, b)) X(66, 0x7F, 64, DIV_S64(a, b))                          \
    X(67, 0x80, 64, DIV_U64(a, b)) X(68, 0x81, 64, REM_S64(a, b))                          \
    X(69, 0x82, 64, REM_U64(a, b))
#define WASM_FB_N 70
#define WASM_FB_NCMP 20
/* Indices below this have integer results that a compare-and-branch may
 * test (the i32 comparisons and i32 arithmetic); 42..61 are the float
 * operations (F32/F64: float operands and result; F32C/F64C: comparisons
 * of float operands, i32 result), 62..69 the trapping integer divisions. */
#define WASM_FB_BR_LIMIT 31

/* Operand forms of a fused binop (L: a local, C: an immediate constant, S:
 * the operand stack; _D: the result goes to a local instead of the stack;
 * BR_: a comparison that branches when true, offset in the last cell).
 * Cells after the operation cell:
 *   LL a|b<<32       LC a, k          SL b           SC k
 *   LL_D a|b<<32, d  LC_D a|d<<32, k  SL_D b|d<<32   SC_D d, k   SS_D d
 *   BR_LL a|b<<32, off  BR_LC a, k, off  BR_SL b, off  BR_SC k, off  BR_SS off
 * BRL_LL and BRL_LC are BR_LL and BR_LC branching back to a loop head: the
 * target is the loop's OP_FUEL cell, whose charge they make themselves
 * (one dispatch less per iteration, same fuel at the same moment). */
enum {
    FV_LL, FV_LC, FV_SL, FV_SC, FV_LL_D, FV_LC_D, FV_SL_D, FV_SC_D, FV_SS_D,
    FV_BR_LL, FV_BR_LC, FV_BR_SL, FV_BR_SC, FV_BR_SS, FV_BRL_LL, FV_BRL_LC, FV_COUNT
};
#define OP_FB(v, i) (OP_FB_BASE + (v) * WASM_FB_N + (i))

/* Two fused i32 binops (found hot in SHA-256-like code): `local.get b;
 * i32.const k; OP1; OP2` with OP2's left operand on the stack:
 * sp[-1] = sp[-1] OP2 (b OP1 k). X(n, OP1 index, OP2 index) in
 * WASM_FB_LIST terms; OP1 one of and, shl, shr_s, shr_u, rotl, rotr, OP2
 * one of add, and, or, xor. Cells: b, k. */
#define WASM_F2_LIST(X) \
    X(0, 23, 20) X(1, 23, 23) X(2, 23, 24) X(3, 23, 25) X(4, 26, 20) X(5, 26, 23) \
    X(6, 26, 24) X(7, 26, 25) X(8, 27, 20) X(9, 27, 23) X(10, 27, 24) X(11, 27, 25) \
    X(12, 28, 20) X(13, 28, 23) X(14, 28, 24) X(15, 28, 25) X(16, 29, 20) \
    X(17, 29, 23) X(18, 29, 24) X(19, 29, 25) X(20, 30, 20) X(21, 30, 23) \
    X(22, 30, 24) X(23, 30, 25)
#define WASM_F2_N 24

/* Two fused i32 binops of two locals (SHA-2's choice and majority
 * functions): `local.get a; local.get b; OP1; OP2`, OP2's left operand on
 * the stack: sp[-1] = sp[-1] OP2 (a OP1 b). X(n, OP1 index, OP2 index) in
 * WASM_FB_LIST terms, OP1 and OP2 each one of i32 add, and, or, xor. */
#define WASM_F2L_LIST(X) \
    X(0, 20, 20) X(1, 20, 23) X(2, 20, 24) X(3, 20, 25) X(4, 23, 20) X(5, 23, 23) \
    X(6, 23, 24) X(7, 23, 25) X(8, 24, 20) X(9, 24, 23) X(10, 24, 24) X(11, 24, 25) \
    X(12, 25, 20) X(13, 25, 23) X(14, 25, 24) X(15, 25, 25)
#define WASM_F2L_N 16

/* Two fused float binops (the accumulation `acc = x + (y + acc)` of
 * unrolled dot products): `local.get b; OP1; OP2` with both of OP2's
 * operands on the stack: t = sp[-1] OP1 b; sp[-2] = sp[-2] OP2 t, the
 * intermediate never stored. X(n, OP1 index, OP2 index) in WASM_FB_LIST
 * terms, same type. */
#define WASM_G2_LIST(X) X(0, 46, 46) X(1, 48, 46) X(2, 42, 42) X(3, 44, 42)
#define WASM_G2_N 4

/* One term of OP_SIG: an i32 shift or rotation by a constant as a left
 * shift by l and a right shift by r (each 0..32) of the value widened to 64
 * bits, or-ed, the result's low 32 bits: shl k -> (k, 32), shr_u k -> (32, k),
 * rotl k -> (k, (32 - k) & 31 or 32 when k is 0), rotr k = rotl (32 - k) & 31,
 * k taken mod 32 as wasm does; (32, 32) is 0 (a 2-term OP_SIG's third).
 * Term i sits at bits 12 i of the sh cell: l | r << 6. */
#define WASM_SIG_TERM(l, r) ((uint64_t)(l) | (uint64_t)(r) << 6)
#define WASM_SIG_ZERO WASM_SIG_TERM(32, 32)

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
    uint32_t nparams;             /* params (the type's np), for the call path */
    uint32_t max_height;          /* frame size in slots: locals + operand stack */
    uint64_t *ir;                 /* ir_len cells in mt_wasm_module.ir (not owned) */
    size_t ir_len;
    size_t ir_off;                /* ir - mt_wasm_module.ir, in cells */
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
    uint64_t *ir;                    /* the translated code of all of them, one
                                      * after the other in function order */
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
    mt_wasm_store *store;            /* charged for its bytes */
};

struct mt_wasm_table {
    uint64_t *elems;                 /* references: 0 null, else mt_wasm_func * or extern word */
    uint32_t size;
    wasm_lim type;
    uint32_t cap;
    uint8_t elem;
    mt_wasm_store *store;            /* charged for its bytes */
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
    /* Bytes of all memories and tables (8 per element) in the store, and
     * their cap: max_memory_pages pages. A table is memory the module can
     * make the host allocate, so it counts against the same cap. */
    uint64_t obj_bytes, obj_bytes_cap;
};

typedef struct wasm_frame {
    const uint64_t *ip;
    uint64_t *fp;
    mt_wasm_instance *inst;  /* the caller's */
} wasm_frame;

/* ---- cross-module functions --------------------------------------------- */
/* wasm_compile.c: buffers the translator reuses from one function of a
 * module to the next (no allocation and regrowth per function); start
 * zeroed, release with wasm_scratch_free. ir is the module's code: each
 * function is translated in place at its end (cells [0, len) hold the
 * functions translated so far, cap cells are allocated); see
 * wasm_scratch_take_ir. */
typedef struct wasm_scratch {
    uint64_t *ir;
    size_t len, cap;
    uint8_t *vals;
    uint32_t cap_vals;
    void *ctls;
    uint32_t cap_ctls;
    uint8_t *locals, *written;
    size_t cap_locals;
} wasm_scratch;
void wasm_scratch_free(wasm_scratch *sc);
/* wasm_compile.c: reserves room for about `cells` cells of code before the
 * first function (an estimate: the buffer still grows when it is short, and
 * a failed reservation is not an error). */
void wasm_scratch_reserve(wasm_scratch *sc, size_t cells);
/* wasm_compile.c: validates function body i (defined index) and translates
 * it, appending its IR to sc->ir (code->ir_len cells; code->ir is set by
 * wasm_scratch_take_ir, the buffer may still move until then). */
mt_status wasm_compile_func(mt_wasm_module *m, uint32_t i, wasm_scratch *sc, mt_err *err);
/* wasm_compile.c: after the last function: hands sc->ir to m->ir (trimmed
 * to its length when a quarter or more is unused) and points each defined
 * function's code->ir into it (at code->ir_off). */
void wasm_scratch_take_ir(wasm_scratch *sc, mt_wasm_module *m);
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


/* ---- LEB128 (shared by the module decoder and the code translator) ------ */
typedef enum { WASM_LEB_OK, WASM_LEB_END, WASM_LEB_LONG, WASM_LEB_BIG } wasm_leb_status;

/* Message of a failed decode ("integer representation too long", "integer
 * too large"); WASM_LEB_END is reported by the caller in its own words. */
static inline const char *wasm_leb_why(wasm_leb_status s)
{
    return s == WASM_LEB_LONG ? "integer representation too long" : "integer too large";
}

/* Unsigned LEB128 of at most `bits` bits from p[0..n). *used is the number of
 * bytes read, including the offending byte on failure (n at WASM_LEB_END). */
static inline wasm_leb_status wasm_leb_u(const uint8_t *p, size_t n, unsigned bits,
                                         uint64_t *out, size_t *used)
{
    uint64_t v = 0;
    unsigned shift = 0;
    size_t i = 0;
    for (;;) {
        if (i >= n) {
            *used = n;
            return WASM_LEB_END;
        }
        uint8_t b = p[i++];
        if (bits - shift <= 7) { /* last byte allowed */
            *used = i;
            if (b & 0x80)
                return WASM_LEB_LONG;
            if ((b & 0x7F) >> (bits - shift))
                return WASM_LEB_BIG;
            v |= (uint64_t)b << shift;
            break;
        }
        v |= (uint64_t)(b & 0x7F) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    *used = i;
    *out = v;
    return WASM_LEB_OK;
}

/* Signed LEB128 of at most `bits` bits; as wasm_leb_u. */
static inline wasm_leb_status wasm_leb_s(const uint8_t *p, size_t n, unsigned bits,
                                         int64_t *out, size_t *used)
{
    uint64_t v = 0;
    unsigned shift = 0;
    size_t i = 0;
    uint8_t b;
    for (;;) {
        if (i >= n) {
            *used = n;
            return WASM_LEB_END;
        }
        b = p[i++];
        if (bits - shift <= 7) {
            unsigned last = bits - shift;
            unsigned hi = (unsigned)(b & 0x7F) >> (last - 1);
            *used = i;
            if (b & 0x80)
                return WASM_LEB_LONG;
            if (hi != 0 && hi != (0x7Fu >> (last - 1)))
                return WASM_LEB_BIG;
            v |= (uint64_t)(b & 0x7F) << shift;
            shift += 7;
            break;
        }
        v |= (uint64_t)(b & 0x7F) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    *used = i;
    *out = (int64_t)v;
    return WASM_LEB_OK;
}

/* The hash of an export name in the decoder's duplicate check (SipHash-1-3
 * under key; declared here for tests/unit/test_wasm.c). */
uint64_t wasm_export_name_hash(const mt_siphash_key *key, const char *s, uint32_t n);

#endif
