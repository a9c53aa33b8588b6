/* wasm_exec: the interpreter of translated code (see wasm_int.h).
 *
 * One C function runs all nested wasm calls of an entry: frames live in the
 * store's frame array and in its value stack, so wasm recursion never grows
 * the C stack (host functions that re-enter wasm do). Dispatch is threaded
 * (labels as values, one indirect jump per handler) with GCC and clang, a
 * switch otherwise. Hot state (ip, sp, fp, memory base and size, fuel) is in
 * locals. Every memory, table and stack access is bounds-checked; each trap
 * leaves through one exit that stores the fuel and names the reason.
 * Semantics follow the WebAssembly 2.0 spec: IEEE-754 binary32/64 in
 * round-to-nearest, NaN propagation, trapping and saturating truncation. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_int.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mt_wasm assumes a little-endian host"
#endif

#define ALL_OPS(X) X(0x28) X(0x29) X(0x2A) X(0x2B) X(0x2C) X(0x2D) X(0x2E) X(0x2F) X(0x30) \
    X(0x31) X(0x32) X(0x33) X(0x34) X(0x35) X(0x36) X(0x37) X(0x38) X(0x39) X(0x3A) X(0x3B) \
    X(0x3C) X(0x3D) X(0x3E) X(0x45) X(0x46) X(0x47) X(0x48) X(0x49) X(0x4A) X(0x4B) X(0x4C) \
    X(0x4D) X(0x4E) X(0x4F) X(0x50) X(0x51) X(0x52) X(0x53) X(0x54) X(0x55) X(0x56) X(0x57) \
    X(0x58) X(0x59) X(0x5A) X(0x5B) X(0x5C) X(0x5D) X(0x5E) X(0x5F) X(0x60) X(0x61) X(0x62) \
    X(0x63) X(0x64) X(0x65) X(0x66) X(0x67) X(0x68) X(0x69) X(0x6A) X(0x6B) X(0x6C) X(0x6D) \
    X(0x6E) X(0x6F) X(0x70) X(0x71) X(0x72) X(0x73) X(0x74) X(0x75) X(0x76) X(0x77) X(0x78) \
    X(0x79) X(0x7A) X(0x7B) X(0x7C) X(0x7D) X(0x7E) X(0x7F) X(0x80) X(0x81) X(0x82) X(0x83) \
    X(0x84) X(0x85) X(0x86) X(0x87) X(0x88) X(0x89) X(0x8A) X(0x8B) X(0x8C) X(0x8D) X(0x8E) \
    X(0x8F) X(0x90) X(0x91) X(0x92) X(0x93) X(0x94) X(0x95) X(0x96) X(0x97) X(0x98) X(0x99) \
    X(0x9A) X(0x9B) X(0x9C) X(0x9D) X(0x9E) X(0x9F) X(0xA0) X(0xA1) X(0xA2) X(0xA3) X(0xA4) \
    X(0xA5) X(0xA6) X(0xA7) X(0xA8) X(0xA9) X(0xAA) X(0xAB) X(0xAC) X(0xAD) X(0xAE) X(0xAF) \
    X(0xB0) X(0xB1) X(0xB2) X(0xB3) X(0xB4) X(0xB5) X(0xB6) X(0xB7) X(0xB8) X(0xB9) X(0xBA) \
    X(0xBB) X(0xBC) X(0xBD) X(0xBE) X(0xBF) X(0xC0) X(0xC1) X(0xC2) X(0xC3) X(0xC4) X(0xE0) \
    X(0xE1) X(0xE2) X(0xE3) X(0xE4) X(0xE5) X(0xE6) X(0xE7) X(OP_FUEL) X(OP_BR) X(OP_BR_DROP) \
    X(OP_BR_IF) X(OP_BR_IF_DROP) X(OP_BR_UNLESS) X(OP_BR_TABLE) X(OP_RETURN) X(OP_CALL) \
    X(OP_CALL_INDIRECT) X(OP_CONST) X(OP_LOCAL_GET) X(OP_LOCAL_SET) X(OP_LOCAL_TEE) \
    X(OP_GLOBAL_GET) X(OP_GLOBAL_SET) X(OP_TABLE_GET) X(OP_TABLE_SET) X(OP_MEMORY_SIZE) \
    X(OP_MEMORY_GROW) X(OP_REF_IS_NULL) X(OP_REF_FUNC) X(OP_MEMORY_INIT) X(OP_DATA_DROP) \
    X(OP_MEMORY_COPY) X(OP_MEMORY_FILL) X(OP_TABLE_INIT) X(OP_ELEM_DROP) X(OP_TABLE_COPY) \
    X(OP_TABLE_GROW) X(OP_TABLE_SIZE) X(OP_TABLE_FILL) X(OP_SELECT) X(OP_DROP) \
    X(OP_UNREACHABLE) X(OP_LOCAL_GET_LOCAL_GET) X(OP_BR_IF_L) X(OP_BR_UNLESS_L) X(OP_COPY)  \
    X(OP_SET_CONST) X(OP_COPY2) X(OP_BR_LOOP) X(OP_BR_IF_L_LOOP) X(OP_CALL_LOCAL) \
    X(OP_RETURN_FP0) X(OP_CALL_LC) X(OP_RET_LL_ADD) X(OP_SIG) X(OP_SIG_D) X(OP_SIG_A) X(OP_COPYN)

static uint64_t op_cells[OP_COUNT];
static pthread_once_t op_once = PTHREAD_ONCE_INIT;

static mt_status run(mt_wasm_store *s, mt_wasm_func *entry, uint64_t *base, mt_err *err);

static void init_cells(void) { run(NULL, NULL, NULL, NULL); }

const uint64_t *wasm_exec_op_cells(void)
{
    pthread_once(&op_once, init_cells);
    return op_cells;
}

/* ---- float helpers --------------------------------------------------------- */
static inline float f32v(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline double f64v(uint64_t v)
{
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static inline uint64_t bf32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline uint64_t bf64(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static inline uint64_t fmin32(uint64_t x, uint64_t y)
{
    float a = f32v(x), b = f32v(y);
    if (a != a || b != b)
        return bf32(a + b);
    if (a == b)
        return (uint32_t)(x | y);
    return a < b ? (uint32_t)x : (uint32_t)y;
}

static inline uint64_t fmax32(uint64_t x, uint64_t y)
{
    float a = f32v(x), b = f32v(y);
    if (a != a || b != b)
        return bf32(a + b);
    if (a == b)
        return (uint32_t)(x & y);
    return a > b ? (uint32_t)x : (uint32_t)y;
}

static inline uint64_t fmin64(uint64_t x, uint64_t y)
{
    double a = f64v(x), b = f64v(y);
    if (a != a || b != b)
        return bf64(a + b);
    if (a == b)
        return x | y;
    return a < b ? x : y;
}

static inline uint64_t fmax64(uint64_t x, uint64_t y)
{
    double a = f64v(x), b = f64v(y);
    if (a != a || b != b)
        return bf64(a + b);
    if (a == b)
        return x & y;
    return a > b ? x : y;
}

/* A NaN operand of a unary libm function comes back quiet (arithmetic). */
static inline uint64_t fun32(uint64_t x, float (*fn)(float))
{
    float a = f32v(x);
    if (a != a)
        return (uint32_t)x | 0x00400000u;
    return bf32(fn(a));
}

static inline uint64_t fun64(uint64_t x, double (*fn)(double))
{
    double a = f64v(x);
    if (a != a)
        return x | 0x0008000000000000ull;
    return bf64(fn(a));
}

/* saturating truncations */
static uint64_t sat_i32_s(double d)
{
    if (d != d)
        return 0;
    if (d <= -2147483649.0)
        return (uint32_t)INT32_MIN;
    if (d >= 2147483648.0)
        return (uint32_t)INT32_MAX;
    return (uint32_t)(int32_t)d;
}

static uint64_t sat_i32_u(double d)
{
    if (d != d || d <= -1.0)
        return 0;
    if (d >= 4294967296.0)
        return UINT32_MAX;
    return (uint32_t)d;
}

static uint64_t sat_i64_s(double d)
{
    if (d != d)
        return 0;
    if (d < -9223372036854775808.0)
        return (uint64_t)INT64_MIN;
    if (d >= 9223372036854775808.0)
        return (uint64_t)INT64_MAX;
    return (uint64_t)(int64_t)d;
}

static uint64_t sat_i64_u(double d)
{
    if (d != d || d <= -1.0)
        return 0;
    if (d >= 18446744073709551616.0)
        return UINT64_MAX;
    return (uint64_t)d;
}

/* ---- host calls --------------------------------------------------------------- */
static mt_status call_host(mt_wasm_store *s, mt_wasm_func *f, uint64_t *slots, mt_err *err)
{
    const wasm_functype *t = f->type;
    mt_wasm_val small[16];
    size_t n = t->np > t->nr ? t->np : t->nr;
    mt_wasm_val *args = small, *res;
    if (2 * n > 16) {
        args = calloc(2 * n, sizeof *args);
        if (!args)
            return wasm_trap(s, MT_WASM_TRAP_HOST, err);
    }
    res = args + n;
    for (uint32_t i = 0; i < t->np; i++) {
        args[i].type = t->t[i];
        args[i].of.i64 = slots[i];
        if (t->t[i] == MT_WASM_I32 || t->t[i] == MT_WASM_F32)
            args[i].of.i32 = (uint32_t)slots[i];
        else if (t->t[i] == MT_WASM_FUNCREF)
            args[i].of.func = (mt_wasm_func *)(uintptr_t)slots[i];
        else if (t->t[i] == MT_WASM_EXTERNREF)
            args[i].of.ext = (uintptr_t)slots[i];
    }
    for (uint32_t i = 0; i < t->nr; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].type = t->t[t->np + i];
    }
    mt_err herr;
    mt_err_clear(&herr);
    mt_status st = f->host(f->env, s, args, res, &herr);
    if (st == MT_OK) {
        for (uint32_t i = 0; i < t->nr; i++) {
            uint8_t ty = t->t[t->np + i];
            if (ty == MT_WASM_I32 || ty == MT_WASM_F32)
                slots[i] = res[i].of.i32;
            else if (ty == MT_WASM_FUNCREF)
                slots[i] = (uintptr_t)res[i].of.func;
            else if (ty == MT_WASM_EXTERNREF)
                slots[i] = res[i].of.ext;
            else
                slots[i] = res[i].of.i64;
        }
    } else if (s->trap != MT_WASM_TRAP_NONE) {
        /* a trap of a nested wasm call keeps its kind and message */
        mt_err_set(err, st, "%s", herr.msg);
    } else {
        s->trap = MT_WASM_TRAP_HOST;
        mt_err_set(err, st, "trap: %s", herr.msg[0] ? herr.msg : "host function failed");
    }
    if (args != small)
        free(args);
    return st;
}

mt_status wasm_exec_call(mt_wasm_store *s, mt_wasm_func *f, uint64_t *slots, mt_err *err)
{
    s->trap = MT_WASM_TRAP_NONE;
    if (f->host)
        return call_host(s, f, slots, err);
    return run(s, f, slots, err);
}

static bool funcs_match(const wasm_functype *a, const wasm_functype *b)
{
    return a == b || wasm_functype_eq(a, b);
}

/* ---- the interpreter ------------------------------------------------------- */
#ifdef MT_WASM_THREADED
#define CASE(x) L_##x:
#define NEXT() goto *(const void *)(uintptr_t)(*ip++)
#define REG(x) op_cells[x] = (uint64_t)(uintptr_t) && L_##x;
#else
#define CASE(x) case x:
#define NEXT() goto dispatch
#define REG(x) op_cells[x] = x;
#endif

#ifdef MT_WASM_THREADED
#define CASEN(name, num) L_##name:
#define REGN(name, num) op_cells[num] = (uint64_t)(uintptr_t) && L_##name;
#else
#define CASEN(name, num) case num:
#define REGN(name, num) op_cells[num] = num;
#endif

#define TRAP(k)                                                                            \
    do {                                                                                   \
        trapk = (k);                                                                       \
        goto trap;                                                                         \
    } while (0)

/* Charges u fuel units on top of the instruction's own unit (bulk
 * operations, locals, operands moved; see WASM_FUEL_* in wasm_int.h); traps
 * before any work is done when less is left. */
#define CHARGE(u)                                                                          \
    do {                                                                                   \
        uint64_t u_ = (u);                                                                 \
        if (fuel < 0 || u_ > (uint64_t)fuel) {                                             \
            fuel = 0;                                                                      \
            TRAP(MT_WASM_TRAP_FUEL);                                                       \
        }                                                                                  \
        fuel -= (int64_t)u_;                                                               \
    } while (0)

/* Zeroes the declared locals fp[np..nl) (nl > np) of a frame being entered,
 * charging WASM_FUEL_SLOTS_PER_UNIT per unit. Up to 4 by plain stores (their
 * charge is 0, and fuel is never negative between operations, so CHARGE(0)
 * could not trap): gcc turns a zeroing loop into a call of memset, which
 * cost fib ~6 % and spilled the frame registers around the call. */
_Static_assert(WASM_FUEL_SLOTS_PER_UNIT > 4, "up to 4 locals are zeroed free");
#define ZERO_LOCALS(np, nl)                                                                \
    do {                                                                                   \
        uint64_t *z_ = fp + (np);                                                          \
        uint32_t nz_ = (nl) - (np);                                                        \
        if (nz_ <= 4) {                                                                    \
            z_[0] = 0;                                                                     \
            if (nz_ > 1) {                                                                 \
                z_[1] = 0;                                                                 \
                if (nz_ > 2) {                                                             \
                    z_[2] = 0;                                                             \
                    if (nz_ > 3)                                                           \
                        z_[3] = 0;                                                         \
                }                                                                          \
            }                                                                              \
        } else {                                                                           \
            CHARGE(nz_ / WASM_FUEL_SLOTS_PER_UNIT);                                        \
            memset(z_, 0, (size_t)nz_ * sizeof *z_);                                       \
        }                                                                                  \
    } while (0)

#define RELOAD_MEM()                                                                       \
    do {                                                                                   \
        mt_wasm_memory *m0_ = inst && inst->mems ? inst->mems[0] : NULL;                   \
        mem = m0_ ? m0_->data : NULL;                                                      \
        memsize = m0_ ? m0_->size : 0;                                                     \
    } while (0)

#define LOAD(op, N, conv)                                                                  \
    CASE(op)                                                                               \
    {                                                                                      \
        uint64_t a_ = (uint64_t)(uint32_t)sp[-1] + *ip++;                                  \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        sp[-1] = (conv);                                                                   \
        NEXT();                                                                            \
    }

#define STORE(op, N)                                                                       \
    CASE(op)                                                                               \
    {                                                                                      \
        uint64_t v_ = sp[-1];                                                              \
        uint64_t a_ = (uint64_t)(uint32_t)sp[-2] + *ip++;                                  \
        sp -= 2;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        memcpy(mem + a_, &v_, (N));                                                        \
        NEXT();                                                                            \
    }

#define I32B(op, expr)                                                                     \
    CASE(op)                                                                               \
    {                                                                                      \
        uint32_t b = (uint32_t)sp[-1], a = (uint32_t)sp[-2];                               \
        --sp;                                                                              \
        sp[-1] = (uint32_t)(expr);                                                         \
        NEXT();                                                                            \
    }
#define I64B(op, expr)                                                                     \
    CASE(op)                                                                               \
    {                                                                                      \
        uint64_t b = sp[-1], a = sp[-2];                                                   \
        --sp;                                                                              \
        sp[-1] = (uint64_t)(expr);                                                         \
        NEXT();                                                                            \
    }
#define F32B(op, expr)                                                                     \
    CASE(op)                                                                               \
    {                                                                                      \
        float b = f32v(sp[-1]), a = f32v(sp[-2]);                                          \
        --sp;                                                                              \
        sp[-1] = (expr);                                                                   \
        NEXT();                                                                            \
    }
#define F64B(op, expr)                                                                     \
    CASE(op)                                                                               \
    {                                                                                      \
        double b = f64v(sp[-1]), a = f64v(sp[-2]);                                         \
        --sp;                                                                              \
        sp[-1] = (expr);                                                                   \
        NEXT();                                                                            \
    }
#define RAWB(op, expr)                                                                     \
    CASE(op)                                                                               \
    {                                                                                      \
        uint64_t b = sp[-1], a = sp[-2];                                                   \
        --sp;                                                                              \
        sp[-1] = (expr);                                                                   \
        NEXT();                                                                            \
    }
#define UNS(op, expr)                                                                      \
    CASE(op)                                                                               \
    {                                                                                      \
        uint64_t a = sp[-1];                                                               \
        sp[-1] = (expr);                                                                   \
        NEXT();                                                                            \
    }
/* A unary operation (numeric, conversion) that does not trap: the stack
 * form, UNL (`local.get x; OP`: x) and UNLD (`local.get x; OP; local.set d`:
 * x|d<<32). */
#define UN(op, expr)                                                                       \
    UNS(op, expr)                                                                          \
    CASEN(UNL_##op, OP_UNL + (op - 0x45))                                                  \
    {                                                                                      \
        uint64_t a = fp[*ip++];                                                            \
        *sp++ = (expr);                                                                    \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(UNLD_##op, OP_UNLD + (op - 0x45))                                                \
    {                                                                                      \
        uint64_t c_ = *ip++;                                                               \
        uint64_t a = fp[(uint32_t)c_];                                                     \
        fp[c_ >> 32] = (expr);                                                             \
        NEXT();                                                                            \
    }
#define UN_REG(op) REGN(UNL_##op, OP_UNL + (op - 0x45)) REGN(UNLD_##op, OP_UNLD + (op - 0x45))
/* The operations defined with UN below. */
#define UN_FUSED(X) X(0x50) X(0x67) X(0x68) X(0x69) X(0x79) X(0x7A) X(0x7B) X(0x8B)        \
    X(0x8C) X(0x8D) X(0x8E) X(0x8F) X(0x90) X(0x91) X(0x99) X(0x9A) X(0x9B) X(0x9C)        \
    X(0x9D) X(0x9E) X(0x9F) X(0xA7) X(0xAC) X(0xAD) X(0xB2) X(0xB3) X(0xB4) X(0xB5)        \
    X(0xB6) X(0xB7) X(0xB8) X(0xB9) X(0xBA) X(0xBB) X(0xBC) X(0xBD) X(0xBE) X(0xBF)        \
    X(0xC0) X(0xC1) X(0xC2) X(0xC3) X(0xC4)

/* Fused forms: the load of a local's address, the store of a local to a
 * local's address, and the 14 operand forms of each WASM_FB_LIST binop (see
 * wasm_int.h for their cells). Bounds checks are those of LOAD/STORE. */
#define LOAD_L(op, N, conv)                                                                \
    CASEN(LDL_##op, OP_LOAD_L + (op - 0x28))                                               \
    {                                                                                      \
        uint64_t a_ = (uint64_t)(uint32_t)fp[ip[0]] + ip[1];                               \
        ip += 2;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        *sp++ = (conv);                                                                    \
        NEXT();                                                                            \
    }

#define LOAD_L_D(op, N, conv)                                                              \
    CASEN(LDLD_##op, OP_LOAD_L_D + (op - 0x28))                                            \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        uint64_t a_ = (uint64_t)(uint32_t)fp[(uint32_t)c_] + ip[1];                        \
        ip += 2;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        fp[c_ >> 32] = (conv);                                                             \
        NEXT();                                                                            \
    }

/* local.get a; i32.const k; i32.add; LOAD off (the add wraps at 32 bits
 * as in wasm, then the offset is added in 64 bits) */
#define LOAD_LK(op, N, conv)                                                               \
    CASEN(LDLK_##op, OP_LOAD_LK + (op - 0x28))                                             \
    {                                                                                      \
        uint64_t a_ = (uint64_t)(uint32_t)(fp[ip[0]] + ip[1]) + ip[2];                     \
        ip += 3;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        *sp++ = (conv);                                                                    \
        NEXT();                                                                            \
    }

/* local.get a; local.get b; i32.add; LOAD off */
#define LOAD_LLA(op, N, conv)                                                              \
    CASEN(LDLLA_##op, OP_LOAD_LLA + (op - 0x28))                                           \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        uint64_t a_ = (uint64_t)(uint32_t)(fp[(uint32_t)c_] + fp[c_ >> 32]) + ip[1];       \
        ip += 2;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        *sp++ = (conv);                                                                    \
        NEXT();                                                                            \
    }

/* LOAD_LK then local.set/tee d: a|d<<32, k, offset */
#define LOAD_LK_D(op, N, conv)                                                             \
    CASEN(LDLKD_##op, OP_LOAD_LK_D + (op - 0x28))                                          \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        uint64_t a_ = (uint64_t)(uint32_t)(fp[(uint32_t)c_] + ip[1]) + ip[2];              \
        ip += 3;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        fp[c_ >> 32] = (conv);                                                             \
        NEXT();                                                                            \
    }

/* LOAD_LLA then local.set/tee d: a|b<<32, offset|d<<32 */
#define LOAD_LLA_D(op, N, conv)                                                            \
    CASEN(LDLLAD_##op, OP_LOAD_LLA_D + (op - 0x28))                                        \
    {                                                                                      \
        uint64_t c_ = ip[0], o_ = ip[1];                                                   \
        uint64_t a_ = (uint64_t)(uint32_t)(fp[(uint32_t)c_] + fp[c_ >> 32]) + (uint32_t)o_; \
        ip += 2;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t v = 0;                                                                    \
        memcpy(&v, mem + a_, (N));                                                         \
        fp[o_ >> 32] = (conv);                                                             \
        NEXT();                                                                            \
    }
#define LOADD_REG(op, N, conv)                                                             \
    REGN(LDLKD_##op, OP_LOAD_LK_D + (op - 0x28)) REGN(LDLLAD_##op, OP_LOAD_LLA_D + (op - 0x28))

/* local.get a; local.get b; i32.add; CONST k; STORE off: a|b<<32, k, off
 * (the sum wraps at 32 bits, then the offset is added in 64 bits) */
#define STORE_LLAK(op, N)                                                                  \
    CASEN(STLLAK_##op, OP_STORE_LLAK + (op - 0x36))                                        \
    {                                                                                      \
        uint64_t c_ = ip[0], v_ = ip[1];                                                   \
        uint64_t a_ = (uint64_t)(uint32_t)(fp[(uint32_t)c_] + fp[c_ >> 32]) + ip[2];       \
        ip += 3;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        memcpy(mem + a_, &v_, (N));                                                        \
        NEXT();                                                                            \
    }
#define STORES_LIST(X) X(0x36, 4) X(0x37, 8) X(0x38, 4) X(0x39, 8) X(0x3A, 1) X(0x3B, 2) \
    X(0x3C, 1) X(0x3D, 2) X(0x3E, 4)
#define STLLAK_REG(op, N) REGN(STLLAK_##op, OP_STORE_LLAK + (op - 0x36))

#define STORE_LL(op, N)                                                                    \
    CASEN(STLL_##op, OP_STORE_LL + (op - 0x36))                                            \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        uint64_t a_ = (uint64_t)(uint32_t)fp[(uint32_t)c_] + ip[1];                        \
        uint64_t v_ = fp[c_ >> 32];                                                        \
        ip += 2;                                                                           \
        if (a_ + (N) > memsize)                                                            \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        memcpy(mem + a_, &v_, (N));                                                        \
        NEXT();                                                                            \
    }

/* Operand kinds of WASM_FB_LIST: FBT the C type of a and b, FBL the read
 * of an operand from a 64-bit slot or immediate, FBR the slot value of a
 * result. */
#define FBT(W) FBT_##W
#define FBT_32 uint32_t
#define FBT_64 uint64_t
#define FBT_F32 float
#define FBT_F64 double
#define FBT_F32C float
#define FBT_F64C double
#define FBL(W, x) FBL_##W(x)
#define FBL_32(x) ((uint32_t)(x))
#define FBL_64(x) ((uint64_t)(x))
#define FBL_F32(x) f32v(x)
#define FBL_F64(x) f64v(x)
#define FBL_F32C(x) f32v(x)
#define FBL_F64C(x) f64v(x)
#define FBR(W, e) FBR_##W(e)
#define FBR_32(e) ((uint64_t)(uint32_t)(e))
#define FBR_64(e) ((uint64_t)(e))
#define FBR_F32(e) bf32(e)
#define FBR_F64(e) bf64(e)
#define FBR_F32C(e) ((uint64_t)(uint32_t)(e))
#define FBR_F64C(e) ((uint64_t)(uint32_t)(e))
/* Trapping divisions (statement expressions: the trap leaves the handler). */
#define DIV_S32(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        if ((a) == 0x80000000u && (b) == 0xFFFFFFFFu)                                      \
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);                                               \
        (uint32_t)(S32(a) / S32(b));                                                       \
    })
#define DIV_U32(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        (a) / (b);                                                                         \
    })
#define REM_S32(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        (b) == 0xFFFFFFFFu ? 0u : (uint32_t)(S32(a) % S32(b));                             \
    })
#define REM_U32(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        (a) % (b);                                                                         \
    })
#define DIV_S64(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        if ((a) == 0x8000000000000000ull && (b) == UINT64_MAX)                             \
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);                                               \
        (uint64_t)(S64(a) / S64(b));                                                       \
    })
#define DIV_U64(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        (a) / (b);                                                                         \
    })
#define REM_S64(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        (b) == UINT64_MAX ? 0u : (uint64_t)(S64(a) % S64(b));                              \
    })
#define REM_U64(a, b)                                                                      \
    ({                                                                                     \
        if ((b) == 0)                                                                      \
            TRAP(MT_WASM_TRAP_DIV_ZERO);                                                   \
        (a) % (b);                                                                         \
    })
#define FB_HEAD(W) FBT(W) a, b; uint64_t c_ = ip[0]; (void)c_;
#define FB_LL(W) a = FBL(W, fp[(uint32_t)c_]), b = FBL(W, fp[c_ >> 32])
#define FB_OPS(I, OPC, W, EXPR)                                                            \
    CASEN(FB_LL_##I, OP_FB(FV_LL, I))                                                      \
    {                                                                                      \
        FB_HEAD(W) FB_LL(W);                                                               \
        ip += 1;                                                                           \
        *sp++ = FBR(W, EXPR);                                                              \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_LC_##I, OP_FB(FV_LC, I))                                                      \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, fp[c_]), b = FBL(W, ip[1]);                                  \
        ip += 2;                                                                           \
        *sp++ = FBR(W, EXPR);                                                              \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_SL_##I, OP_FB(FV_SL, I))                                                      \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, sp[-1]), b = FBL(W, fp[c_]);                                 \
        ip += 1;                                                                           \
        sp[-1] = FBR(W, EXPR);                                                             \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_SC_##I, OP_FB(FV_SC, I))                                                      \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, sp[-1]), b = FBL(W, c_);                                     \
        ip += 1;                                                                           \
        sp[-1] = FBR(W, EXPR);                                                             \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_LL_D_##I, OP_FB(FV_LL_D, I))                                                  \
    {                                                                                      \
        FB_HEAD(W) FB_LL(W);                                                               \
        fp[ip[1]] = FBR(W, EXPR);                                                          \
        ip += 2;                                                                           \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_LC_D_##I, OP_FB(FV_LC_D, I))                                                  \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, fp[(uint32_t)c_]), b = FBL(W, ip[1]);                        \
        fp[c_ >> 32] = FBR(W, EXPR);                                                       \
        ip += 2;                                                                           \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_SL_D_##I, OP_FB(FV_SL_D, I))                                                  \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, sp[-1]), b = FBL(W, fp[(uint32_t)c_]);                       \
        fp[c_ >> 32] = FBR(W, EXPR);                                                       \
        sp--;                                                                              \
        ip += 1;                                                                           \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_SC_D_##I, OP_FB(FV_SC_D, I))                                                  \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, sp[-1]), b = FBL(W, ip[1]);                                  \
        fp[c_] = FBR(W, EXPR);                                                             \
        sp--;                                                                              \
        ip += 2;                                                                           \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_SS_D_##I, OP_FB(FV_SS_D, I))                                                  \
    {                                                                                      \
        FB_HEAD(W) b = FBL(W, sp[-1]), a = FBL(W, sp[-2]);                                 \
        fp[c_] = FBR(W, EXPR);                                                             \
        sp -= 2;                                                                           \
        ip += 1;                                                                           \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BR_LL_##I, OP_FB(FV_BR_LL, I))                                                \
    {                                                                                      \
        FB_HEAD(W) FB_LL(W);                                                               \
        if (FBR(W, EXPR) != 0)                                                             \
            ip += 1 + (int64_t)ip[1];                                                      \
        else                                                                               \
            FALL(2);                                                                       \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BR_LC_##I, OP_FB(FV_BR_LC, I))                                                \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, fp[c_]), b = FBL(W, ip[1]);                                  \
        if (FBR(W, EXPR) != 0)                                                             \
            ip += 2 + (int64_t)ip[2];                                                      \
        else                                                                               \
            FALL(3);                                                                       \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BR_SL_##I, OP_FB(FV_BR_SL, I))                                                \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, sp[-1]), b = FBL(W, fp[c_]);                                 \
        sp--;                                                                              \
        if (FBR(W, EXPR) != 0)                                                             \
            ip += 1 + (int64_t)ip[1];                                                      \
        else                                                                               \
            FALL(2);                                                                       \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BR_SC_##I, OP_FB(FV_BR_SC, I))                                                \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, sp[-1]), b = FBL(W, c_);                                     \
        sp--;                                                                              \
        if (FBR(W, EXPR) != 0)                                                             \
            ip += 1 + (int64_t)ip[1];                                                      \
        else                                                                               \
            FALL(2);                                                                       \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BR_SS_##I, OP_FB(FV_BR_SS, I))                                                \
    {                                                                                      \
        FB_HEAD(W) b = FBL(W, sp[-1]), a = FBL(W, sp[-2]);                                 \
        sp -= 2;                                                                           \
        if (FBR(W, EXPR) != 0)                                                             \
            ip += (int64_t)ip[0];                                                          \
        else                                                                               \
            FALL(1);                                                                       \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BRL_LL_##I, OP_FB(FV_BRL_LL, I))                                              \
    {                                                                                      \
        FB_HEAD(W) FB_LL(W);                                                               \
        if (FBR(W, EXPR) != 0) {                                                           \
            ip += 1 + (int64_t)ip[1];                                                      \
            LOOP_FUEL();                                                                   \
        } else {                                                                           \
            FALL(2);                                                                       \
        }                                                                                  \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(FB_BRL_LC_##I, OP_FB(FV_BRL_LC, I))                                              \
    {                                                                                      \
        FB_HEAD(W) a = FBL(W, fp[c_]), b = FBL(W, ip[1]);                                  \
        if (FBR(W, EXPR) != 0) {                                                           \
            ip += 2 + (int64_t)ip[2];                                                      \
            LOOP_FUEL();                                                                   \
        } else {                                                                           \
            FALL(3);                                                                       \
        }                                                                                  \
        NEXT();                                                                            \
    }

/* ip at a loop head's OP_FUEL cell, or at a function's first cell (always
 * its entry block's OP_FUEL): does that cell's work (see FV_BRL_LL). */
#define LOOP_FUEL()                                                                        \
    do {                                                                                   \
        fuel -= (int64_t)ip[1];                                                            \
        if (fuel < 0)                                                                      \
            TRAP(MT_WASM_TRAP_FUEL);                                                       \
        ip += 2;                                                                           \
    } while (0)

/* The fall-through of a conditional branch whose last cell is k cells
 * ahead: the next cell is always the OP_FUEL of the block that follows it
 * (wasm_int.h), whose charge the branch makes itself. */
#define FALL(k)                                                                            \
    do {                                                                                   \
        ip += (k);                                                                         \
        LOOP_FUEL();                                                                       \
    } while (0)

/* WASM_F2_LIST: OP1 of (b, k), OP2 of (a, t), by WASM_FB_LIST index. */
#define F2_OP1_23(b, k) ((b) & (k))
#define F2_OP1_26(b, k) ((b) << ((k) & 31))
#define F2_OP1_27(b, k) ((uint32_t)(S32(b) >> ((k) & 31)))
#define F2_OP1_28(b, k) ((b) >> ((k) & 31))
#define F2_OP1_29(b, k) (((b) << ((k) & 31)) | ((b) >> ((32 - (k)) & 31)))
#define F2_OP1_30(b, k) (((b) >> ((k) & 31)) | ((b) << ((32 - (k)) & 31)))
#define F2_OP2_20(a, t) ((a) + (t))
#define F2_OP2_23(a, t) ((a) & (t))
#define F2_OP2_24(a, t) ((a) | (t))
#define F2_OP2_25(a, t) ((a) ^ (t))
#define F2_OPS(N, I1, I2)                                                                  \
    CASEN(F2_##N, OP_F2_BASE + N)                                                          \
    {                                                                                      \
        uint32_t b = (uint32_t)fp[ip[0]], k = (uint32_t)ip[1], a = (uint32_t)sp[-1];       \
        uint32_t t = F2_OP1_##I1(b, k);                                                    \
        sp[-1] = (uint32_t)F2_OP2_##I2(a, t);                                              \
        ip += 2;                                                                           \
        NEXT();                                                                            \
    }
#define F2_REG(N, I1, I2) REGN(F2_##N, OP_F2_BASE + N)

/* WASM_F2L_LIST: sp[-1] = sp[-1] OP2 (a OP1 b), a and b locals */
#define F2L_OP_20(x, y) ((x) + (y))
#define F2L_OP_23(x, y) ((x) & (y))
#define F2L_OP_24(x, y) ((x) | (y))
#define F2L_OP_25(x, y) ((x) ^ (y))
#define F2L_OPS(N, I1, I2)                                                                 \
    CASEN(F2L_##N, OP_F2L + N)                                                             \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        uint32_t a = (uint32_t)fp[(uint32_t)c_], b = (uint32_t)fp[c_ >> 32];              \
        uint32_t t = F2L_OP_##I1(a, b);                                                    \
        sp[-1] = (uint32_t)F2L_OP_##I2((uint32_t)sp[-1], t);                               \
        ip += 1;                                                                           \
        NEXT();                                                                            \
    }
#define F2L_REG(N, I1, I2) REGN(F2L_##N, OP_F2L + N)

/* OP_LDBR: an i32 loaded from a local's address compared with a local,
 * then a conditional branch (with the fall-through fuel of FALL). */
#define LDBR_LIST(X)                                                                       \
    X(0, a == b) X(1, a != b) X(2, S32(a) < S32(b)) X(3, a < b) X(4, S32(a) > S32(b))      \
    X(5, a > b) X(6, S32(a) <= S32(b)) X(7, a <= b) X(8, S32(a) >= S32(b)) X(9, a >= b)
#define LDBR_OPS(I, EXPR)                                                                  \
    CASEN(LDBR_##I, OP_LDBR + I)                                                           \
    {                                                                                      \
        uint64_t a_ = (uint64_t)(uint32_t)fp[ip[0]] + ip[1];                               \
        if (a_ + 4 > memsize)                                                              \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint32_t a, b = (uint32_t)fp[ip[2]];                                               \
        memcpy(&a, mem + a_, 4);                                                           \
        if (EXPR)                                                                          \
            ip += 3 + (int64_t)ip[3];                                                      \
        else                                                                               \
            FALL(4);                                                                       \
        NEXT();                                                                            \
    }
#define LDBR_REG(I, EXPR) REGN(LDBR_##I, OP_LDBR + I)

/* OP_FMM: two float loads from (local + k) + offset, each address computed
 * as LOAD_LK does (the add wraps at 32 bits), both bounds-checked (the
 * first load's check first, as in wasm order; both trap the same way), then
 * a float binop of WASM_FB_LIST index I; the result is pushed. */
#define FMM_LIST(X)                                                                        \
    X(0, F32, a + b, 4) X(1, F32, a - b, 4) X(2, F32, a * b, 4) X(3, F32, a / b, 4)        \
    X(4, F64, a + b, 8) X(5, F64, a - b, 8) X(6, F64, a * b, 8) X(7, F64, a / b, 8)
#define FMM_OPS(I, W, EXPR, N)                                                             \
    CASEN(FMM_##I, OP_FMM + I)                                                             \
    {                                                                                      \
        uint64_t c0_ = ip[0], c1_ = ip[1], c2_ = ip[2];                                    \
        uint64_t a1_ = (uint64_t)(uint32_t)(fp[(uint32_t)c0_] + (uint32_t)c1_) +           \
                       (uint32_t)c2_;                                                      \
        uint64_t a2_ = (uint64_t)(uint32_t)(fp[c0_ >> 32] + (c1_ >> 32)) + (c2_ >> 32);    \
        ip += 3;                                                                           \
        if (a1_ + (N) > memsize || a2_ + (N) > memsize)                                    \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t va_ = 0, vb_ = 0;                                                         \
        memcpy(&va_, mem + a1_, (N));                                                      \
        memcpy(&vb_, mem + a2_, (N));                                                      \
        FBT(W) a = FBL(W, va_), b = FBL(W, vb_);                                           \
        *sp++ = FBR(W, EXPR);                                                              \
        NEXT();                                                                            \
    }
#define FMM_REG(I, W, EXPR, N) REGN(FMM_##I, OP_FMM + I)

/* WASM_G2_LIST: t = sp[-1] OP1 fp[b]; sp[-2] OP2 t, pushed or to local d. */
#define G2T_46 double
#define G2T_48 double
#define G2T_42 float
#define G2T_44 float
#define G2V_46(x) f64v(x)
#define G2V_48(x) f64v(x)
#define G2V_42(x) f32v(x)
#define G2V_44(x) f32v(x)
#define G2B_46(e) bf64(e)
#define G2B_42(e) bf32(e)
#define G2E_46(a, b) ((a) + (b))
#define G2E_48(a, b) ((a) * (b))
#define G2E_42(a, b) ((a) + (b))
#define G2E_44(a, b) ((a) * (b))
#define G2_OPS(N, I1, I2)                                                                  \
    CASEN(G2_##N, OP_G2 + N)                                                               \
    {                                                                                      \
        G2T_##I1 t_ = G2E_##I1(G2V_##I1(sp[-1]), G2V_##I1(fp[ip[0]]));                     \
        sp[-2] = G2B_##I2(G2E_##I2(G2V_##I2(sp[-2]), t_));                                 \
        sp--;                                                                              \
        ip++;                                                                              \
        NEXT();                                                                            \
    }                                                                                      \
    CASEN(G2D_##N, OP_G2 + WASM_G2_N + N)                                                  \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        G2T_##I1 t_ = G2E_##I1(G2V_##I1(sp[-1]), G2V_##I1(fp[(uint32_t)c_]));              \
        fp[c_ >> 32] = G2B_##I2(G2E_##I2(G2V_##I2(sp[-2]), t_));                           \
        sp -= 2;                                                                           \
        ip++;                                                                              \
        NEXT();                                                                            \
    }
#define G2_REG(N, I1, I2) REGN(G2_##N, OP_G2 + N) REGN(G2D_##N, OP_G2 + WASM_G2_N + N)

/* OP_INCBRL: the loop counter's step and test in one operation: d = a + k
 * (i32), then the comparison I of LDBR_LIST between d and k2; taken: back to
 * the loop head, charging its OP_FUEL (LOOP_FUEL); else FALL. The same
 * writes, charges and branch as FB_LC_D (add) followed by FB_BRL_LC. */
#define INCBRL_OPS(I, EXPR)                                                                \
    CASEN(INCBRL_##I, OP_INCBRL + I)                                                       \
    {                                                                                      \
        uint64_t c_ = ip[0];                                                               \
        uint32_t a = (uint32_t)fp[(uint32_t)c_] + (uint32_t)ip[1], b = (uint32_t)ip[2];   \
        fp[c_ >> 32] = a;                                                                  \
        if (EXPR) {                                                                        \
            ip += 3 + (int64_t)ip[3];                                                      \
            LOOP_FUEL();                                                                   \
        } else {                                                                           \
            FALL(4);                                                                       \
        }                                                                                  \
        NEXT();                                                                            \
    }
#define INCBRL_REG(I, EXPR) REGN(INCBRL_##I, OP_INCBRL + I)

/* OP_INC2BRL: FB_LC_D i32.add (d2 = a2 + k2) then OP_INCBRL, in that order */
#define INC2BRL_OPS(I, EXPR)                                                               \
    CASEN(INC2BRL_##I, OP_INC2BRL + I)                                                     \
    {                                                                                      \
        uint64_t c2_ = ip[0], c_ = ip[2];                                                  \
        fp[c2_ >> 32] = (uint32_t)((uint32_t)fp[(uint32_t)c2_] + (uint32_t)ip[1]);         \
        uint32_t a = (uint32_t)fp[(uint32_t)c_] + (uint32_t)ip[3], b = (uint32_t)ip[4];   \
        fp[c_ >> 32] = a;                                                                  \
        if (EXPR) {                                                                        \
            ip += 5 + (int64_t)ip[5];                                                      \
            LOOP_FUEL();                                                                   \
        } else {                                                                           \
            FALL(6);                                                                       \
        }                                                                                  \
        NEXT();                                                                            \
    }
#define INC2BRL_REG(I, EXPR) REGN(INC2BRL_##I, OP_INC2BRL + I)

/* OP_FMMG2 n: OP_FMM's multiply of G2 n's type (f64 for n 0-1, f32 for 2-3)
 * whose result feeds G2D n: y = load1 * load2 (bounds checks and addresses
 * as OP_FMM), t = y OP1 fp[b], fp[d] = sp[-1] OP2 t; the product is never
 * stored, each operation rounds as the unfused pair does. */
#define FMMG2_N_0 8
#define FMMG2_N_1 8
#define FMMG2_N_2 4
#define FMMG2_N_3 4
#define FMMG2_OPS(N, I1, I2)                                                               \
    CASEN(FMMG2_##N, OP_FMMG2 + N)                                                         \
    {                                                                                      \
        uint64_t c0_ = ip[0], c1_ = ip[1], c2_ = ip[2], c3_ = ip[3];                       \
        uint64_t a1_ = (uint64_t)(uint32_t)(fp[(uint32_t)c0_] + (uint32_t)c1_) +           \
                       (uint32_t)c2_;                                                      \
        uint64_t a2_ = (uint64_t)(uint32_t)(fp[c0_ >> 32] + (c1_ >> 32)) + (c2_ >> 32);    \
        ip += 4;                                                                           \
        if (a1_ + FMMG2_N_##N > memsize || a2_ + FMMG2_N_##N > memsize)                    \
            TRAP(MT_WASM_TRAP_MEMORY_OOB);                                                 \
        uint64_t va_ = 0, vb_ = 0;                                                         \
        memcpy(&va_, mem + a1_, FMMG2_N_##N);                                              \
        memcpy(&vb_, mem + a2_, FMMG2_N_##N);                                              \
        G2T_##I1 y_ = G2V_##I1(va_) * G2V_##I1(vb_);                                        \
        G2T_##I1 t_ = G2E_##I1(y_, G2V_##I1(fp[(uint32_t)c3_]));                           \
        fp[c3_ >> 32] = G2B_##I2(G2E_##I2(G2V_##I2(sp[-1]), t_));                          \
        sp--;                                                                              \
        NEXT();                                                                            \
    }
#define FMMG2_REG(N, I1, I2) REGN(FMMG2_##N, OP_FMMG2 + N)

#define FB_REG(I, OPC, W, EXPR)                                                            \
    REGN(FB_LL_##I, OP_FB(FV_LL, I)) REGN(FB_LC_##I, OP_FB(FV_LC, I))                      \
    REGN(FB_SL_##I, OP_FB(FV_SL, I)) REGN(FB_SC_##I, OP_FB(FV_SC, I))                      \
    REGN(FB_LL_D_##I, OP_FB(FV_LL_D, I)) REGN(FB_LC_D_##I, OP_FB(FV_LC_D, I))              \
    REGN(FB_SL_D_##I, OP_FB(FV_SL_D, I)) REGN(FB_SC_D_##I, OP_FB(FV_SC_D, I))              \
    REGN(FB_SS_D_##I, OP_FB(FV_SS_D, I)) REGN(FB_BR_LL_##I, OP_FB(FV_BR_LL, I))            \
    REGN(FB_BR_LC_##I, OP_FB(FV_BR_LC, I)) REGN(FB_BR_SL_##I, OP_FB(FV_BR_SL, I))          \
    REGN(FB_BR_SC_##I, OP_FB(FV_BR_SC, I)) REGN(FB_BR_SS_##I, OP_FB(FV_BR_SS, I))          \
    REGN(FB_BRL_LL_##I, OP_FB(FV_BRL_LL, I)) REGN(FB_BRL_LC_##I, OP_FB(FV_BRL_LC, I))

#define MEM_FUSED(X) X(LDL_, 0x28, OP_LOAD_L) X(LDL_, 0x29, OP_LOAD_L + 1)                  \
    X(LDL_, 0x2A, OP_LOAD_L + 2) X(LDL_, 0x2B, OP_LOAD_L + 3) X(LDL_, 0x2C, OP_LOAD_L + 4)  \
    X(LDL_, 0x2D, OP_LOAD_L + 5) X(LDL_, 0x2E, OP_LOAD_L + 6) X(LDL_, 0x2F, OP_LOAD_L + 7)  \
    X(LDL_, 0x30, OP_LOAD_L + 8) X(LDL_, 0x31, OP_LOAD_L + 9) X(LDL_, 0x32, OP_LOAD_L + 10) \
    X(LDL_, 0x33, OP_LOAD_L + 11) X(LDL_, 0x34, OP_LOAD_L + 12)                            \
    X(LDL_, 0x35, OP_LOAD_L + 13) X(STLL_, 0x36, OP_STORE_LL)                              \
    X(STLL_, 0x37, OP_STORE_LL + 1) X(STLL_, 0x38, OP_STORE_LL + 2)                        \
    X(STLL_, 0x39, OP_STORE_LL + 3) X(STLL_, 0x3A, OP_STORE_LL + 4)                        \
    X(STLL_, 0x3B, OP_STORE_LL + 5) X(STLL_, 0x3C, OP_STORE_LL + 6)                        \
    X(STLL_, 0x3D, OP_STORE_LL + 7) X(STLL_, 0x3E, OP_STORE_LL + 8)                        \
    X(LDLD_, 0x28, OP_LOAD_L_D) X(LDLD_, 0x29, OP_LOAD_L_D + 1)                            \
    X(LDLD_, 0x2A, OP_LOAD_L_D + 2) X(LDLD_, 0x2B, OP_LOAD_L_D + 3)                        \
    X(LDLD_, 0x2C, OP_LOAD_L_D + 4) X(LDLD_, 0x2D, OP_LOAD_L_D + 5)                        \
    X(LDLD_, 0x2E, OP_LOAD_L_D + 6) X(LDLD_, 0x2F, OP_LOAD_L_D + 7)                        \
    X(LDLD_, 0x30, OP_LOAD_L_D + 8) X(LDLD_, 0x31, OP_LOAD_L_D + 9)                        \
    X(LDLD_, 0x32, OP_LOAD_L_D + 10) X(LDLD_, 0x33, OP_LOAD_L_D + 11)                      \
    X(LDLD_, 0x34, OP_LOAD_L_D + 12) X(LDLD_, 0x35, OP_LOAD_L_D + 13)                      \
    X(LDLK_, 0x28, OP_LOAD_LK + 0) X(LDLLA_, 0x28, OP_LOAD_LLA + 0) \
    X(LDLK_, 0x29, OP_LOAD_LK + 1) X(LDLLA_, 0x29, OP_LOAD_LLA + 1) \
    X(LDLK_, 0x2A, OP_LOAD_LK + 2) X(LDLLA_, 0x2A, OP_LOAD_LLA + 2) \
    X(LDLK_, 0x2B, OP_LOAD_LK + 3) X(LDLLA_, 0x2B, OP_LOAD_LLA + 3) \
    X(LDLK_, 0x2C, OP_LOAD_LK + 4) X(LDLLA_, 0x2C, OP_LOAD_LLA + 4) \
    X(LDLK_, 0x2D, OP_LOAD_LK + 5) X(LDLLA_, 0x2D, OP_LOAD_LLA + 5) \
    X(LDLK_, 0x2E, OP_LOAD_LK + 6) X(LDLLA_, 0x2E, OP_LOAD_LLA + 6) \
    X(LDLK_, 0x2F, OP_LOAD_LK + 7) X(LDLLA_, 0x2F, OP_LOAD_LLA + 7) \
    X(LDLK_, 0x30, OP_LOAD_LK + 8) X(LDLLA_, 0x30, OP_LOAD_LLA + 8) \
    X(LDLK_, 0x31, OP_LOAD_LK + 9) X(LDLLA_, 0x31, OP_LOAD_LLA + 9) \
    X(LDLK_, 0x32, OP_LOAD_LK + 10) X(LDLLA_, 0x32, OP_LOAD_LLA + 10) \
    X(LDLK_, 0x33, OP_LOAD_LK + 11) X(LDLLA_, 0x33, OP_LOAD_LLA + 11) \
    X(LDLK_, 0x34, OP_LOAD_LK + 12) X(LDLLA_, 0x34, OP_LOAD_LLA + 12) \
    X(LDLK_, 0x35, OP_LOAD_LK + 13) X(LDLLA_, 0x35, OP_LOAD_LLA + 13)
#define MEM_REG(pre, op, num) REGN(pre##op, num)

_Static_assert(OP_COUNT == OP_FB_BASE + FV_COUNT * WASM_FB_N, "fused op numbering");
_Static_assert(OP_INCBRL == OP_F2_BASE + WASM_F2_N, "fused pair numbering");
_Static_assert(OP_INC2BRL == OP_RET_LL_ADD + 1, "fused op numbering");
_Static_assert(OP_UNL == OP_G2 + 2 * WASM_G2_N, "fused float pair numbering");

#define S32(x) ((int32_t)(uint32_t)(x))
#define S64(x) ((int64_t)(x))
/* OP_SIG: the xor of the three terms packed in sh (WASM_SIG_TERM) of x
 * (an i32 zero-extended to 64 bits; shifts 0..32, so none is undefined),
 * low 32 bits */
#define SIG_TERM(x, sh) (((x) << ((sh)&63)) | ((x) >> (((sh) >> 6) & 63)))
#define SIG_VAL(x, sh) \
    ((uint32_t)(SIG_TERM(x, sh) ^ SIG_TERM(x, (sh) >> 12) ^ SIG_TERM(x, (sh) >> 24)))
#define U32(x) ((uint32_t)(x))

/* the fused load forms, one per wasm load opcode: (opcode, bytes, conversion) */
#define LOAD_OPS_LIST(X) \
    X(0x28, 4, (uint32_t)v) \
    X(0x29, 8, v) \
    X(0x2A, 4, (uint32_t)v) \
    X(0x2B, 8, v) \
    X(0x2C, 1, (uint32_t)(int32_t)(int8_t)v) \
    X(0x2D, 1, (uint8_t)v) \
    X(0x2E, 2, (uint32_t)(int32_t)(int16_t)v) \
    X(0x2F, 2, (uint16_t)v) \
    X(0x30, 1, (uint64_t)(int64_t)(int8_t)v) \
    X(0x31, 1, (uint8_t)v) \
    X(0x32, 2, (uint64_t)(int64_t)(int16_t)v) \
    X(0x33, 2, (uint16_t)v) \
    X(0x34, 4, (uint64_t)(int64_t)(int32_t)v) \
    X(0x35, 4, (uint32_t)v)

static mt_status run(mt_wasm_store *s, mt_wasm_func *entry, uint64_t *base, mt_err *err)
{
    if (!s) {
        for (unsigned i = 0; i < OP_COUNT; i++)
            op_cells[i] = 0;
        ALL_OPS(REG)
        WASM_FB_LIST(FB_REG)
        WASM_F2_LIST(F2_REG)
        WASM_F2L_LIST(F2L_REG)
        LDBR_LIST(LDBR_REG)
        FMM_LIST(FMM_REG)
        WASM_G2_LIST(G2_REG)
        LDBR_LIST(INCBRL_REG)
        LDBR_LIST(INC2BRL_REG)
        WASM_G2_LIST(FMMG2_REG)
        UN_FUSED(UN_REG)
        MEM_FUSED(MEM_REG)
        LOAD_OPS_LIST(LOADD_REG)
        STORES_LIST(STLLAK_REG)
        return MT_OK;
    }
    mt_wasm_func *fn = entry;
    mt_wasm_instance *inst = fn->inst;
    uint64_t *fp = base, *sp;
    const uint64_t *ip;
    uint8_t *mem;
    uint64_t memsize;
    int64_t fuel = s->fuel;
    uint64_t *const stack_end = s->stack + s->stack_slots;
    /* frames[s->nframes..] are this entry's; fr is the next free one */
    wasm_frame *const frames = s->frames;
    wasm_frame *const fr_base = frames + s->nframes, *const fr_end = frames + s->lim.max_call_depth;
    wasm_frame *fr = fr_base;
    mt_wasm_trap trapk = MT_WASM_TRAP_NONE;
    mt_wasm_func *callee;

    /* mem and memsize always describe memory 0 of inst: reloaded when inst
     * changes (calls and returns across instances) and after anything that
     * may grow a memory (memory.grow, host calls). */
    RELOAD_MEM();
enter: {
    const wasm_code *code = fn->code;
    uint32_t np = code->nparams, nl = code->nlocals;
    if (code->max_height > (size_t)(stack_end - fp))
        TRAP(MT_WASM_TRAP_VALUE_STACK);
    if (nl > np)
        ZERO_LOCALS(np, nl);
    sp = fp + nl;
    ip = code->ir;
    if (fn->inst != inst) {
        inst = fn->inst;
        RELOAD_MEM();
    }
}
#ifdef MT_WASM_THREADED
    NEXT();
    {
#else
dispatch:
    switch (*ip++) {
#endif
    CASE(OP_FUEL)
    {
        fuel -= (int64_t)*ip++;
        if (fuel < 0)
            TRAP(MT_WASM_TRAP_FUEL);
        NEXT();
    }
    CASE(OP_UNREACHABLE) TRAP(MT_WASM_TRAP_UNREACHABLE);
    CASE(OP_BR)
    {
        ip += (int64_t)ip[0];
        NEXT();
    }
    CASE(OP_BR_DROP)
    {
        uint64_t d = ip[1];
        uint32_t h = (uint32_t)(d >> 32), n = (uint32_t)d;
        CHARGE(n / WASM_FUEL_SLOTS_PER_UNIT);
        memmove(fp + h, sp - n, (size_t)n * sizeof *sp);
        sp = fp + h + n;
        ip += (int64_t)ip[0];
        NEXT();
    }
    CASE(OP_BR_IF)
    {
        if ((uint32_t)*--sp)
            ip += (int64_t)ip[0];
        else
            FALL(1);
        NEXT();
    }
    CASE(OP_BR_IF_DROP)
    {
        if ((uint32_t)*--sp) {
            uint64_t d = ip[1];
            uint32_t h = (uint32_t)(d >> 32), n = (uint32_t)d;
            CHARGE(n / WASM_FUEL_SLOTS_PER_UNIT);
            memmove(fp + h, sp - n, (size_t)n * sizeof *sp);
            sp = fp + h + n;
            ip += (int64_t)ip[0];
        } else {
            FALL(2);
        }
        NEXT();
    }
    CASE(OP_BR_UNLESS)
    {
        if (!(uint32_t)*--sp)
            ip += (int64_t)ip[0];
        else
            FALL(1);
        NEXT();
    }
    CASE(OP_BR_TABLE)
    {
        uint64_t i = (uint32_t)*--sp, n = ip[0];
        if (i > n)
            i = n;
        const uint64_t *e = ip + 1 + 2 * i;
        uint64_t d = e[1];
        uint32_t h = (uint32_t)(d >> 32), k = (uint32_t)d;
        if (fp + h + k != sp) {
            CHARGE(k / WASM_FUEL_SLOTS_PER_UNIT);
            memmove(fp + h, sp - k, (size_t)k * sizeof *sp);
            sp = fp + h + k;
        }
        ip = e + (int64_t)e[0];
        NEXT();
    }
    CASE(OP_RETURN)
    {
        uint32_t n = (uint32_t)ip[0];
        if (n == 1) {
            fp[0] = sp[-1];
        } else {
            CHARGE(n / WASM_FUEL_SLOTS_PER_UNIT);
            memmove(fp, sp - n, (size_t)n * sizeof *sp);
        }
        if (fr == fr_base)
            goto done;
        sp = fp + n;
        wasm_frame *f = --fr;
        ip = f->ip, fp = f->fp;
        if (f->inst != inst) {
            inst = f->inst;
            RELOAD_MEM();
        }
        NEXT();
    }
    CASE(OP_RETURN_FP0)
    {
        /* OP_RETURN of one result that the operation before wrote to fp[0] */
        if (fr == fr_base)
            goto done;
        sp = fp + 1;
        wasm_frame *f = --fr;
        ip = f->ip, fp = f->fp;
        if (f->inst != inst) {
            inst = f->inst;
            RELOAD_MEM();
        }
        NEXT();
    }
    CASE(OP_RET_LL_ADD)
    {
        /* FB_LL_D (i32.add) into slot 0, then OP_RETURN_FP0 */
        uint64_t c_ = ip[0];
        fp[0] = (uint32_t)((uint32_t)fp[(uint32_t)c_] + (uint32_t)fp[c_ >> 32]);
        if (fr == fr_base)
            goto done;
        sp = fp + 1;
        wasm_frame *f = --fr;
        ip = f->ip, fp = f->fp;
        if (f->inst != inst) {
            inst = f->inst;
            RELOAD_MEM();
        }
        NEXT();
    }
    /* Pushes a frame for the wasm function `code` whose arguments are the
     * top nparams of the value stack, zeroes its other locals (charged as
     * fuel) and jumps to its first cell; traps on call or value stack
     * overflow. A macro so the call stays inline in the dispatch loop. */
#define ENTER_WASM_FRAME(code)                                                  \
    do {                                                                        \
        uint64_t *nfp = sp - (code)->nparams;                                   \
        uint32_t np = (code)->nparams, nl = (code)->nlocals;                    \
        if (fr >= fr_end)                                                       \
            TRAP(MT_WASM_TRAP_CALL_STACK);                                      \
        if ((code)->max_height > (size_t)(stack_end - nfp))                     \
            TRAP(MT_WASM_TRAP_VALUE_STACK);                                     \
        fr->ip = ip;                                                            \
        fr->fp = fp;                                                            \
        fr->inst = inst;                                                        \
        fr++;                                                                   \
        fp = nfp;                                                               \
        if (nl > np)                                                            \
            ZERO_LOCALS(np, nl);                                                \
        sp = fp + nl;                                                           \
        ip = (code)->ir;                                                        \
    } while (0)
    CASE(OP_CALL)
    {
        callee = inst->funcs[*ip++];
        if (callee->host)
            goto do_call;
        /* the common case inline: a wasm function, arguments in place */
        const wasm_code *code = callee->code;
        ENTER_WASM_FRAME(code);
        if (callee->inst != inst) {
            inst = callee->inst;
            RELOAD_MEM();
        }
        LOOP_FUEL(); /* the callee's first cell is its entry block's OP_FUEL */
        NEXT();
    }
    CASE(OP_CALL_LOCAL)
    {
        /* as OP_CALL's inline path; same instance, so no reload */
        const wasm_code *code = (const wasm_code *)(uintptr_t)*ip++;
        ENTER_WASM_FRAME(code);
        LOOP_FUEL(); /* the callee's entry block */
        NEXT();
    }
    CASE(OP_CALL_LC)
    {
        /* the last argument (local a + k, i32) pushed, then OP_CALL_LOCAL */
        *sp++ = (uint32_t)((uint32_t)fp[ip[0]] + (uint32_t)ip[1]);
        const wasm_code *code = (const wasm_code *)(uintptr_t)ip[2];
        ip += 3;
        ENTER_WASM_FRAME(code);
        LOOP_FUEL(); /* the callee's entry block */
        NEXT();
    }
#undef ENTER_WASM_FRAME
    CASE(OP_CALL_INDIRECT)
    {
        const wasm_functype *want = &inst->mod->types[ip[0]];
        mt_wasm_table *t = inst->tables[ip[1]];
        ip += 2;
        uint32_t i = (uint32_t)*--sp;
        if (i >= t->size)
            TRAP(MT_WASM_TRAP_UNDEFINED_ELEMENT);
        callee = (mt_wasm_func *)(uintptr_t)t->elems[i];
        if (!callee)
            TRAP(MT_WASM_TRAP_UNINITIALIZED_ELEMENT);
        if (!funcs_match(callee->type, want))
            TRAP(MT_WASM_TRAP_INDIRECT_TYPE);
        goto do_call;
    }
    CASE(OP_CONST)
    {
        *sp++ = *ip++;
        NEXT();
    }
    CASE(OP_LOCAL_GET)
    {
        *sp++ = fp[*ip++];
        NEXT();
    }
    CASE(OP_LOCAL_GET_LOCAL_GET)
    {
        sp[0] = fp[ip[0]];
        sp[1] = fp[ip[1]];
        sp += 2;
        ip += 2;
        NEXT();
    }
    CASE(OP_LOCAL_SET)
    {
        fp[*ip++] = *--sp;
        NEXT();
    }
    CASE(OP_LOCAL_TEE)
    {
        fp[*ip++] = sp[-1];
        NEXT();
    }
    CASE(OP_GLOBAL_GET)
    {
        *sp++ = inst->globals[*ip++]->val;
        NEXT();
    }
    CASE(OP_GLOBAL_SET)
    {
        inst->globals[*ip++]->val = *--sp;
        NEXT();
    }
    CASE(OP_DROP)
    {
        sp--;
        NEXT();
    }
    CASE(OP_SELECT)
    {
        uint32_t c = (uint32_t)sp[-1];
        sp -= 2;
        if (!c)
            sp[-1] = sp[0];
        NEXT();
    }
    CASE(OP_TABLE_GET)
    {
        mt_wasm_table *t = inst->tables[*ip++];
        uint32_t i = (uint32_t)sp[-1];
        if (i >= t->size)
            TRAP(MT_WASM_TRAP_TABLE_OOB);
        sp[-1] = t->elems[i];
        NEXT();
    }
    CASE(OP_TABLE_SET)
    {
        mt_wasm_table *t = inst->tables[*ip++];
        uint64_t v = sp[-1];
        uint32_t i = (uint32_t)sp[-2];
        sp -= 2;
        if (i >= t->size)
            TRAP(MT_WASM_TRAP_TABLE_OOB);
        t->elems[i] = v;
        NEXT();
    }
    CASE(OP_TABLE_SIZE)
    {
        *sp++ = inst->tables[*ip++]->size;
        NEXT();
    }
    CASE(OP_TABLE_GROW)
    {
        mt_wasm_table *t = inst->tables[*ip++];
        uint32_t n = (uint32_t)sp[-1];
        uint64_t init = sp[-2];
        sp--;
        if ((uint64_t)t->size + n <= t->cap)
            CHARGE((uint64_t)n * WASM_FUEL_PER_ELEM);
        sp[-1] = (uint32_t)wasm_table_grow(t, n, init);
        NEXT();
    }
    CASE(OP_TABLE_FILL)
    {
        mt_wasm_table *t = inst->tables[*ip++];
        uint64_t n = (uint32_t)sp[-1], v = sp[-2], i = (uint32_t)sp[-3];
        sp -= 3;
        if (i + n > t->size)
            TRAP(MT_WASM_TRAP_TABLE_OOB);
        CHARGE(n * WASM_FUEL_PER_ELEM);
        for (uint64_t k = 0; k < n; k++)
            t->elems[i + k] = v;
        NEXT();
    }
    CASE(OP_TABLE_COPY)
    {
        mt_wasm_table *dt = inst->tables[ip[0]], *st = inst->tables[ip[1]];
        ip += 2;
        uint64_t n = (uint32_t)sp[-1], si = (uint32_t)sp[-2], di = (uint32_t)sp[-3];
        sp -= 3;
        if (si + n > st->size || di + n > dt->size)
            TRAP(MT_WASM_TRAP_TABLE_OOB);
        CHARGE(n * WASM_FUEL_PER_ELEM);
        if (n)
            memmove(dt->elems + di, st->elems + si, (size_t)n * sizeof *dt->elems);
        NEXT();
    }
    CASE(OP_TABLE_INIT)
    {
        const wasm_elem *e = &inst->mod->elems[ip[0]];
        mt_wasm_table *t = inst->tables[ip[1]];
        uint64_t seglen = inst->elem_dropped[ip[0]] ? 0 : e->n;
        ip += 2;
        uint64_t n = (uint32_t)sp[-1], si = (uint32_t)sp[-2], di = (uint32_t)sp[-3];
        sp -= 3;
        if (si + n > seglen || di + n > t->size)
            TRAP(MT_WASM_TRAP_TABLE_OOB);
        CHARGE(n * WASM_FUEL_PER_ELEM);
        for (uint64_t k = 0; k < n; k++)
            t->elems[di + k] = wasm_eval_const(inst, &e->items[si + k]);
        NEXT();
    }
    CASE(OP_ELEM_DROP)
    {
        inst->elem_dropped[*ip++] = true;
        NEXT();
    }
    CASE(OP_MEMORY_SIZE)
    {
        *sp++ = inst->mems[0]->pages;
        NEXT();
    }
    CASE(OP_MEMORY_GROW)
    {
        mt_wasm_memory *m0 = inst->mems[0];
        if ((uint64_t)m0->pages + (uint32_t)sp[-1] <= m0->cap)
            CHARGE((uint64_t)(uint32_t)sp[-1] * WASM_FUEL_PER_PAGE);
        sp[-1] = (uint32_t)wasm_memory_grow(inst->mems[0], (uint32_t)sp[-1]);
        RELOAD_MEM();
        NEXT();
    }
    CASE(OP_MEMORY_INIT)
    {
        const wasm_data *d = &inst->mod->datas[ip[0]];
        uint64_t seglen = inst->data_dropped[ip[0]] ? 0 : d->len;
        ip++;
        uint64_t n = (uint32_t)sp[-1], si = (uint32_t)sp[-2], di = (uint32_t)sp[-3];
        sp -= 3;
        if (si + n > seglen || di + n > memsize)
            TRAP(MT_WASM_TRAP_MEMORY_OOB);
        CHARGE(n / WASM_FUEL_BYTES_PER_UNIT);
        if (n)
            memcpy(mem + di, d->bytes + si, (size_t)n);
        NEXT();
    }
    CASE(OP_DATA_DROP)
    {
        inst->data_dropped[*ip++] = true;
        NEXT();
    }
    CASE(OP_MEMORY_COPY)
    {
        uint64_t n = (uint32_t)sp[-1], si = (uint32_t)sp[-2], di = (uint32_t)sp[-3];
        sp -= 3;
        if (si + n > memsize || di + n > memsize)
            TRAP(MT_WASM_TRAP_MEMORY_OOB);
        CHARGE(n / WASM_FUEL_BYTES_PER_UNIT);
        if (n)
            memmove(mem + di, mem + si, (size_t)n);
        NEXT();
    }
    CASE(OP_MEMORY_FILL)
    {
        uint64_t n = (uint32_t)sp[-1], v = sp[-2], di = (uint32_t)sp[-3];
        sp -= 3;
        if (di + n > memsize)
            TRAP(MT_WASM_TRAP_MEMORY_OOB);
        CHARGE(n / WASM_FUEL_BYTES_PER_UNIT);
        if (n)
            memset(mem + di, (int)(uint8_t)v, (size_t)n);
        NEXT();
    }
    CASE(OP_REF_IS_NULL)
    {
        sp[-1] = sp[-1] == 0;
        NEXT();
    }
    CASE(OP_REF_FUNC)
    {
        *sp++ = (uintptr_t)inst->funcs[*ip++];
        NEXT();
    }

    /* loads and stores */
    LOAD(0x28, 4, (uint32_t)v)
    LOAD(0x29, 8, v)
    LOAD(0x2A, 4, (uint32_t)v)
    LOAD(0x2B, 8, v)
    LOAD(0x2C, 1, (uint32_t)(int32_t)(int8_t)v)
    LOAD(0x2D, 1, (uint8_t)v)
    LOAD(0x2E, 2, (uint32_t)(int32_t)(int16_t)v)
    LOAD(0x2F, 2, (uint16_t)v)
    LOAD(0x30, 1, (uint64_t)(int64_t)(int8_t)v)
    LOAD(0x31, 1, (uint8_t)v)
    LOAD(0x32, 2, (uint64_t)(int64_t)(int16_t)v)
    LOAD(0x33, 2, (uint16_t)v)
    LOAD(0x34, 4, (uint64_t)(int64_t)(int32_t)v)
    LOAD(0x35, 4, (uint32_t)v)
    STORE(0x36, 4)
    STORE(0x37, 8)
    STORE(0x38, 4)
    STORE(0x39, 8)
    STORE(0x3A, 1)
    STORE(0x3B, 2)
    STORE(0x3C, 1)
    STORE(0x3D, 2)
    STORE(0x3E, 4)
    LOAD_L(0x28, 4, (uint32_t)v)
    LOAD_L(0x29, 8, v)
    LOAD_L(0x2A, 4, (uint32_t)v)
    LOAD_L(0x2B, 8, v)
    LOAD_L(0x2C, 1, (uint32_t)(int32_t)(int8_t)v)
    LOAD_L(0x2D, 1, (uint8_t)v)
    LOAD_L(0x2E, 2, (uint32_t)(int32_t)(int16_t)v)
    LOAD_L(0x2F, 2, (uint16_t)v)
    LOAD_L(0x30, 1, (uint64_t)(int64_t)(int8_t)v)
    LOAD_L(0x31, 1, (uint8_t)v)
    LOAD_L(0x32, 2, (uint64_t)(int64_t)(int16_t)v)
    LOAD_L(0x33, 2, (uint16_t)v)
    LOAD_L(0x34, 4, (uint64_t)(int64_t)(int32_t)v)
    LOAD_L(0x35, 4, (uint32_t)v)
    STORE_LL(0x36, 4)
    STORE_LL(0x37, 8)
    STORE_LL(0x38, 4)
    STORE_LL(0x39, 8)
    STORE_LL(0x3A, 1)
    STORE_LL(0x3B, 2)
    STORE_LL(0x3C, 1)
    STORE_LL(0x3D, 2)
    STORE_LL(0x3E, 4)

    /* the fused load forms, one per wasm load opcode: (opcode, bytes, conversion) */
    LOAD_OPS_LIST(LOAD_L_D)
    LOAD_OPS_LIST(LOAD_LK)
    LOAD_OPS_LIST(LOAD_LLA)
    LOAD_OPS_LIST(LOAD_LK_D)
    LOAD_OPS_LIST(LOAD_LLA_D)
    CASE(OP_COPYN)
    {
        uint64_t n_ = ip[0];
        const uint64_t *q_ = ip + 1;
        ip += 1 + n_;
        for (uint64_t i_ = 0; i_ < n_; i_++) {
            uint64_t c_ = q_[i_];
            fp[c_ >> 32] = fp[(uint32_t)c_];
        }
        NEXT();
    }
    WASM_F2L_LIST(F2L_OPS)
    STORES_LIST(STORE_LLAK)
    CASE(OP_SIG)
    {
        uint64_t x = (uint32_t)fp[ip[0]], sh = ip[1];
        ip += 2;
        *sp++ = SIG_VAL(x, sh);
        NEXT();
    }
    CASE(OP_SIG_D)
    {
        uint64_t c_ = ip[0], x = (uint32_t)fp[(uint32_t)c_], sh = ip[1];
        ip += 2;
        fp[c_ >> 32] = SIG_VAL(x, sh);
        NEXT();
    }
    CASE(OP_SIG_A)
    {
        uint64_t x = (uint32_t)fp[ip[0]], sh = ip[1];
        ip += 2;
        sp[-1] = (uint32_t)((uint32_t)sp[-1] + SIG_VAL(x, sh));
        NEXT();
    }
    CASE(OP_COPY2)
    {
        uint64_t c0 = ip[0], c1 = ip[1];
        ip += 2;
        fp[c0 >> 32] = fp[(uint32_t)c0];
        fp[c1 >> 32] = fp[(uint32_t)c1];
        NEXT();
    }
    CASE(OP_BR_LOOP)
    {
        ip += (int64_t)ip[0];
        LOOP_FUEL();
        NEXT();
    }
    CASE(OP_BR_IF_L_LOOP)
    {
        if ((uint32_t)fp[ip[0]]) {
            ip += 1 + (int64_t)ip[1];
            LOOP_FUEL();
        } else {
            FALL(2);
        }
        NEXT();
    }
    CASE(OP_BR_IF_L)
    {
        if ((uint32_t)fp[ip[0]])
            ip += 1 + (int64_t)ip[1];
        else
            FALL(2);
        NEXT();
    }
    CASE(OP_BR_UNLESS_L)
    {
        if ((uint32_t)fp[ip[0]])
            FALL(2);
        else
            ip += 1 + (int64_t)ip[1];
        NEXT();
    }
    CASE(OP_COPY)
    {
        uint64_t c_ = *ip++;
        fp[c_ >> 32] = fp[(uint32_t)c_];
        NEXT();
    }
    CASE(OP_SET_CONST)
    {
        fp[ip[0]] = ip[1];
        ip += 2;
        NEXT();
    }

    /* fused binops */
    WASM_FB_LIST(FB_OPS)
    WASM_F2_LIST(F2_OPS)
    LDBR_LIST(LDBR_OPS)
    FMM_LIST(FMM_OPS)
    WASM_G2_LIST(G2_OPS)
    LDBR_LIST(INCBRL_OPS)
    LDBR_LIST(INC2BRL_OPS)
    WASM_G2_LIST(FMMG2_OPS)

    /* i32 comparisons */
    UNS(0x45, (uint32_t)a == 0)
    I32B(0x46, a == b)
    I32B(0x47, a != b)
    I32B(0x48, S32(a) < S32(b))
    I32B(0x49, a < b)
    I32B(0x4A, S32(a) > S32(b))
    I32B(0x4B, a > b)
    I32B(0x4C, S32(a) <= S32(b))
    I32B(0x4D, a <= b)
    I32B(0x4E, S32(a) >= S32(b))
    I32B(0x4F, a >= b)
    /* i64 comparisons */
    UN(0x50, a == 0)
    I64B(0x51, a == b)
    I64B(0x52, a != b)
    I64B(0x53, S64(a) < S64(b))
    I64B(0x54, a < b)
    I64B(0x55, S64(a) > S64(b))
    I64B(0x56, a > b)
    I64B(0x57, S64(a) <= S64(b))
    I64B(0x58, a <= b)
    I64B(0x59, S64(a) >= S64(b))
    I64B(0x5A, a >= b)
    /* float comparisons */
    F32B(0x5B, a == b)
    F32B(0x5C, a != b)
    F32B(0x5D, a < b)
    F32B(0x5E, a > b)
    F32B(0x5F, a <= b)
    F32B(0x60, a >= b)
    F64B(0x61, a == b)
    F64B(0x62, a != b)
    F64B(0x63, a < b)
    F64B(0x64, a > b)
    F64B(0x65, a <= b)
    F64B(0x66, a >= b)
    /* i32 arithmetic */
    UN(0x67, (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32)
    UN(0x68, (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32)
    UN(0x69, (uint64_t)__builtin_popcount((uint32_t)a))
    I32B(0x6A, a + b)
    I32B(0x6B, a - b)
    I32B(0x6C, a * b)
    CASE(0x6D)
    {
        uint32_t b = (uint32_t)sp[-1], a = (uint32_t)sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        if (a == 0x80000000u && b == 0xFFFFFFFFu)
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        --sp;
        sp[-1] = (uint32_t)(S32(a) / S32(b));
        NEXT();
    }
    CASE(0x6E)
    {
        uint32_t b = (uint32_t)sp[-1], a = (uint32_t)sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        --sp;
        sp[-1] = a / b;
        NEXT();
    }
    CASE(0x6F)
    {
        uint32_t b = (uint32_t)sp[-1], a = (uint32_t)sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        --sp;
        sp[-1] = b == 0xFFFFFFFFu ? 0 : (uint32_t)(S32(a) % S32(b));
        NEXT();
    }
    CASE(0x70)
    {
        uint32_t b = (uint32_t)sp[-1], a = (uint32_t)sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        --sp;
        sp[-1] = a % b;
        NEXT();
    }
    I32B(0x71, a & b)
    I32B(0x72, a | b)
    I32B(0x73, a ^ b)
    I32B(0x74, a << (b & 31))
    I32B(0x75, (uint32_t)(S32(a) >> (b & 31)))
    I32B(0x76, a >> (b & 31))
    I32B(0x77, (a << (b & 31)) | (a >> ((32 - b) & 31)))
    I32B(0x78, (a >> (b & 31)) | (a << ((32 - b) & 31)))
    /* i64 arithmetic */
    UN(0x79, a ? (uint64_t)__builtin_clzll(a) : 64)
    UN(0x7A, a ? (uint64_t)__builtin_ctzll(a) : 64)
    UN(0x7B, (uint64_t)__builtin_popcountll(a))
    I64B(0x7C, a + b)
    I64B(0x7D, a - b)
    I64B(0x7E, a * b)
    CASE(0x7F)
    {
        uint64_t b = sp[-1], a = sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        if (a == 0x8000000000000000ull && b == UINT64_MAX)
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        --sp;
        sp[-1] = (uint64_t)(S64(a) / S64(b));
        NEXT();
    }
    CASE(0x80)
    {
        uint64_t b = sp[-1], a = sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        --sp;
        sp[-1] = a / b;
        NEXT();
    }
    CASE(0x81)
    {
        uint64_t b = sp[-1], a = sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        --sp;
        sp[-1] = b == UINT64_MAX ? 0 : (uint64_t)(S64(a) % S64(b));
        NEXT();
    }
    CASE(0x82)
    {
        uint64_t b = sp[-1], a = sp[-2];
        if (b == 0)
            TRAP(MT_WASM_TRAP_DIV_ZERO);
        --sp;
        sp[-1] = a % b;
        NEXT();
    }
    I64B(0x83, a & b)
    I64B(0x84, a | b)
    I64B(0x85, a ^ b)
    I64B(0x86, a << (b & 63))
    I64B(0x87, (uint64_t)(S64(a) >> (b & 63)))
    I64B(0x88, a >> (b & 63))
    I64B(0x89, (a << (b & 63)) | (a >> ((64 - b) & 63)))
    I64B(0x8A, (a >> (b & 63)) | (a << ((64 - b) & 63)))
    /* f32 arithmetic */
    UN(0x8B, a & 0x7FFFFFFFu)
    UN(0x8C, (a ^ 0x80000000u) & 0xFFFFFFFFu)
    UN(0x8D, fun32(a, ceilf))
    UN(0x8E, fun32(a, floorf))
    UN(0x8F, fun32(a, truncf))
    UN(0x90, fun32(a, nearbyintf))
    UN(0x91, fun32(a, sqrtf))
    F32B(0x92, bf32(a + b))
    F32B(0x93, bf32(a - b))
    F32B(0x94, bf32(a * b))
    F32B(0x95, bf32(a / b))
    RAWB(0x96, fmin32(a, b))
    RAWB(0x97, fmax32(a, b))
    RAWB(0x98, (a & 0x7FFFFFFFu) | (b & 0x80000000u))
    /* f64 arithmetic */
    UN(0x99, a & 0x7FFFFFFFFFFFFFFFull)
    UN(0x9A, a ^ 0x8000000000000000ull)
    UN(0x9B, fun64(a, ceil))
    UN(0x9C, fun64(a, floor))
    UN(0x9D, fun64(a, trunc))
    UN(0x9E, fun64(a, nearbyint))
    UN(0x9F, fun64(a, sqrt))
    F64B(0xA0, bf64(a + b))
    F64B(0xA1, bf64(a - b))
    F64B(0xA2, bf64(a * b))
    F64B(0xA3, bf64(a / b))
    RAWB(0xA4, fmin64(a, b))
    RAWB(0xA5, fmax64(a, b))
    RAWB(0xA6, (a & 0x7FFFFFFFFFFFFFFFull) | (b & 0x8000000000000000ull))
    /* conversions */
    UN(0xA7, (uint32_t)a)
    CASE(0xA8)
    {
        float f = f32v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f >= -2147483648.0f && f < 2147483648.0f))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint32_t)(int32_t)f;
        NEXT();
    }
    CASE(0xA9)
    {
        float f = f32v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f > -1.0f && f < 4294967296.0f))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint32_t)f;
        NEXT();
    }
    CASE(0xAA)
    {
        double f = f64v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f > -2147483649.0 && f < 2147483648.0))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint32_t)(int32_t)f;
        NEXT();
    }
    CASE(0xAB)
    {
        double f = f64v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f > -1.0 && f < 4294967296.0))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint32_t)f;
        NEXT();
    }
    UN(0xAC, (uint64_t)(int64_t)(int32_t)(uint32_t)a)
    UN(0xAD, (uint32_t)a)
    CASE(0xAE)
    {
        float f = f32v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f >= -9223372036854775808.0f && f < 9223372036854775808.0f))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint64_t)(int64_t)f;
        NEXT();
    }
    CASE(0xAF)
    {
        float f = f32v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f > -1.0f && f < 18446744073709551616.0f))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint64_t)f;
        NEXT();
    }
    CASE(0xB0)
    {
        double f = f64v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint64_t)(int64_t)f;
        NEXT();
    }
    CASE(0xB1)
    {
        double f = f64v(sp[-1]);
        if (f != f)
            TRAP(MT_WASM_TRAP_INVALID_CONVERSION);
        if (!(f > -1.0 && f < 18446744073709551616.0))
            TRAP(MT_WASM_TRAP_INT_OVERFLOW);
        sp[-1] = (uint64_t)f;
        NEXT();
    }
    UN(0xB2, bf32((float)(int32_t)(uint32_t)a))
    UN(0xB3, bf32((float)(uint32_t)a))
    UN(0xB4, bf32((float)(int64_t)a))
    UN(0xB5, bf32((float)a))
    UN(0xB6, bf32((float)f64v(a)))
    UN(0xB7, bf64((double)(int32_t)(uint32_t)a))
    UN(0xB8, bf64((double)(uint32_t)a))
    UN(0xB9, bf64((double)(int64_t)a))
    UN(0xBA, bf64((double)a))
    UN(0xBB, bf64((double)f32v(a)))
    UN(0xBC, a)
    UN(0xBD, a)
    UN(0xBE, a)
    UN(0xBF, a)
    UN(0xC0, (uint32_t)(int32_t)(int8_t)a)
    UN(0xC1, (uint32_t)(int32_t)(int16_t)a)
    UN(0xC2, (uint64_t)(int64_t)(int8_t)a)
    UN(0xC3, (uint64_t)(int64_t)(int16_t)a)
    UN(0xC4, (uint64_t)(int64_t)(int32_t)a)
    UNS(0xE0, sat_i32_s(f32v(a)))
    UNS(0xE1, sat_i32_u(f32v(a)))
    UNS(0xE2, sat_i32_s(f64v(a)))
    UNS(0xE3, sat_i32_u(f64v(a)))
    UNS(0xE4, sat_i64_s(f32v(a)))
    UNS(0xE5, sat_i64_u(f32v(a)))
    UNS(0xE6, sat_i64_s(f64v(a)))
    UNS(0xE7, sat_i64_u(f64v(a)))
#ifndef MT_WASM_THREADED
    default:
        TRAP(MT_WASM_TRAP_UNREACHABLE);
#endif
    }

do_call: {
    uint32_t np = callee->type->np;
    uint64_t *nfp = sp - np;
    if (callee->host) {
        s->fuel = fuel;
        s->nframes = (uint32_t)(fr - frames);
        s->stack_used = (size_t)(sp - s->stack);
        mt_status st = call_host(s, callee, nfp, err);
        s->nframes = (uint32_t)(fr_base - frames);
        fuel = s->fuel;
        if (st != MT_OK) {
            s->fuel = fuel;
            return st;
        }
        sp = nfp + callee->type->nr;
        RELOAD_MEM();
        NEXT();
    }
    if (fr >= fr_end)
        TRAP(MT_WASM_TRAP_CALL_STACK);
    fr->ip = ip;
    fr->fp = fp;
    fr->inst = inst;
    fr++;
    fp = nfp;
    fn = callee;
    goto enter;
}

done:
    s->fuel = fuel;
    return MT_OK;
trap:
    s->fuel = fuel;
    return wasm_trap(s, trapk, err);
}
