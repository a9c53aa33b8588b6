/* wasm_compile: validates one function body and translates it, in the same
 * single pass, into the interpreter's internal code (see wasm_int.h).
 *
 * Validation follows the WebAssembly 2.0 algorithm (operand type stack with
 * a polymorphic bottom after unconditional branches, control frames with
 * block types). Translation resolves every branch to a cell offset, and
 * records the stack height and arity to keep on each branch, so the
 * interpreter needs no label stack. Fuel is charged per basic block: each
 * block starts with OP_FUEL n, n being the number of wasm instructions up to
 * the next block boundary. Code that validation proves unreachable is not
 * emitted. A peephole over the tail of the current basic block fuses
 * local.get / const operands, local.set destinations, compare-and-branch,
 * and local-addressed loads and stores into superinstructions (see
 * WASM_FB_LIST and the OP_* list in wasm_int.h, docs/wasm-engine.md). On
 * failure an MT_EINVAL error names the code section, the byte offset in the
 * module and the reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wasm_int.h"

#define UNK 0

enum { K_BLOCK, K_LOOP, K_IF, K_ELSE, K_FUNC };

typedef struct ctl {
    uint8_t kind;
    bool unreachable;
    bool dead;          /* opened inside unreachable code: emit nothing */
    const uint8_t *params, *results;
    uint32_t np, nr;
    uint32_t height;    /* type-stack height at entry (params excluded) */
    size_t loop_pos;    /* loop: target cell */
    bool fuel_head;     /* loop: the target cell is its block's OP_FUEL */
    size_t patches;     /* forward branch cells to patch, list (index + 1) */
    size_t if_cell;     /* if: the BR_UNLESS offset cell (index + 1) */
    bool targeted;
    uint8_t single;     /* storage for single-result block types */
} ctl;

typedef struct comp {
    mt_wasm_module *m;
    const uint8_t *b;
    size_t pos, end;
    mt_err *err;
    bool failed;
    const uint64_t *cells;
    bool lv;            /* live(): the innermost frame is reachable (relive()) */
    uint32_t h;         /* the innermost frame's height (relive()) */
    uint8_t *locals;
    uint32_t nlocals;
    uint8_t *vals;
    uint32_t nvals, cap_vals;
    ctl *ctls;
    uint32_t nctls, cap_ctls;
    /* The function's code: cells [0, len) at sc->ir + base, cap cells there
     * before sc->ir must grow (grow_ir moves it). */
    uint64_t *ir;
    size_t len, cap;
    wasm_scratch *sc;
    size_t base;
    size_t fuel_cell;   /* index + 1 of the current OP_FUEL immediate */
    uint64_t fuel_count;
    uint32_t max_height;
    /* The last instruction(s) emitted in the current basic block, for the
     * peephole fusions (valid while tend == len, see tail()). */
    uint8_t tk;         /* TL_* */
    uint8_t tvar, tidx; /* TL_BIN: operand form (FV_*) and WASM_FB_LIST index */
    size_t tpos, tend;  /* first cell of the fusable sequence, cell count after it */
    uint32_t ta, tb;    /* locals */
    uint64_t tkv;       /* constant */
    size_t cpos;        /* TL_GET: index + 1 of an OP_COPY (or, with cn, an OP_COPY2 or
                         * OP_COPYN) just before it, else 0 */
    bool cn;
    unsigned brop;      /* the operation fuse_cond() wrote at tpos */
    size_t lpos;        /* TL_GET: index + 1 of an i32 LOAD_L just before it, else 0 */
    size_t blpos;       /* TL_BIN in form FV_SL: the same for its local.get, else 0 */
    uint64_t ninstr;    /* wasm instructions read so far (for OP_FMM's adjacency test) */
    /* While the function's entry block is open (it runs once per call, right
     * after the call zeroed the declared locals; the fall-through of a br_if
     * continues it): the declared locals not written yet with anything but
     * zero, for which `const 0; local.set` is dropped. */
    bool entry;
    uint32_t nparams;
    uint8_t *written;   /* one byte per local */
    uint64_t get_instr; /* ninstr of the last lone local.get (TL_GET) */
    /* The last two fused float loads (LOAD_L / LOAD_LK of f32 or f64), for
     * OP_FMM: cells [pos, end), wasm instructions [ifirst, ilast]. */
    struct fload {
        size_t pos, end;
        uint64_t ifirst, ilast;
        uint32_t a, k, off;
        uint8_t op;
    } fl[2];
    /* index + 1 of the last FB_LC_D i32.add (for OP_INCBRL), of the last
     * OP_FMM and the ninstr of its binop (for OP_FMMG2); 0: none. Cleared
     * at each basic block. */
    size_t ipos, fmpos;
    /* index + 1 of the FB_LC_D i32.add whose cells end where the one at
     * ipos begins (for OP_INC2BRL); 0: none. Cleared with ipos. */
    size_t ipos2;
    uint64_t fm_instr;
    /* An OP_SIG chain (index + 1 of its first cell, 0: none): an i32
     * shift/rotation of local sgx by a constant (FB_LC, sgn 1) or an OP_SIG
     * of sgn terms, its cells ending at sgend, its last wasm instruction
     * being number sg_instr. */
    size_t sgpos, sgend;
    /* TL_CONST: index + 1 of an FB_LL i32.add right before it (for
     * OP_STORE_LLAK), else 0 */
    size_t kpos;
    uint64_t sg_instr;
    uint32_t sgx;
    uint8_t sgn;
} comp;

/* Fusable tails: local.get a | local.get a; local.get b | const k |
 * local.get a; const k | a WASM_FB_LIST op (its form in tvar) | i32.eqz. */
enum { TL_NONE, TL_GET, TL_GETGET, TL_CONST, TL_GET_CONST, TL_BIN, TL_EQZ, TL_LOAD, TL_GET_EQZ,
       TL_COPY, TL_G2, TL_UN, TL_LOADX, TL_SIG, TL_COPYN };

static bool fail(comp *c, const char *why)
{
    if (!c->failed)
        mt_err_set(c->err, MT_EINVAL, "wasm: code section, offset %zu: %s", c->pos, why);
    c->failed = true;
    return false;
}

/* fail with a formatted reason (numbers only: never input bytes). */
static bool failf(comp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failf(comp *c, const char *fmt, ...)
{
    char why[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return fail(c, why);
}

/* ---- reader over the body ------------------------------------------------ */
static inline bool rbyte(comp *c, uint8_t *out)
{
    if (c->pos >= c->end)
        return fail(c, "unexpected end of section or function");
    *out = c->b[c->pos++];
    return true;
}

static bool ruleb(comp *c, unsigned bits, uint64_t *out)
{
    size_t used;
    wasm_leb_status st = wasm_leb_u(c->b + c->pos, c->end - c->pos, bits, out, &used);
    c->pos += used;
    if (st == WASM_LEB_OK)
        return true;
    return fail(c, st == WASM_LEB_END ? "unexpected end of section or function" : wasm_leb_why(st));
}

static inline bool ru32(comp *c, uint32_t *out)
{
    if (c->pos < c->end && c->b[c->pos] < 0x80) { /* one byte: always valid */
        *out = c->b[c->pos++];
        return true;
    }
    uint64_t v = 0;
    if (!ruleb(c, 32, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static inline bool rsleb(comp *c, unsigned bits, int64_t *out)
{
    if (c->pos < c->end && c->b[c->pos] < 0x80) { /* one byte: always valid */
        uint8_t b = c->b[c->pos++];
        *out = (int64_t)(int8_t)(uint8_t)(b << 1) >> 1;
        return true;
    }
    size_t used;
    wasm_leb_status st = wasm_leb_s(c->b + c->pos, c->end - c->pos, bits, out, &used);
    c->pos += used;
    if (st == WASM_LEB_OK)
        return true;
    return fail(c, st == WASM_LEB_END ? "unexpected end of section or function" : wasm_leb_why(st));
}

static bool rfixed(comp *c, size_t n, uint64_t *out)
{
    if (n > c->end - c->pos)
        return fail(c, "unexpected end of section or function");
    *out = 0;
    memcpy(out, c->b + c->pos, n);
    c->pos += n;
    return true;
}

static bool rzero(comp *c)
{
    uint8_t z;
    if (!rbyte(c, &z))
        return false;
    if (z != 0)
        return fail(c, "zero byte expected");
    return true;
}

/* ---- emission ------------------------------------------------------------ */
static inline ctl *top(comp *c) { return &c->ctls[c->nctls - 1]; }

/* Whether code here is reachable: cached in c->lv, which relive() sets
 * whenever the innermost frame or its reachability changes. */
static inline bool live(comp *c) { return c->lv; }

static inline void relive(comp *c)
{
    ctl *t = c->nctls ? top(c) : NULL;
    c->lv = t && !t->unreachable && !t->dead;
    c->h = t ? t->height : 0;
}

/* Grows the module's code buffer (by half, at least to 256 cells); the
 * function's cells move with it. */
static __attribute__((noinline, cold)) bool grow_ir(comp *c)
{
    wasm_scratch *sc = c->sc;
    size_t total = sc->cap;
    size_t nc = total < 256 ? 256 : total + total / 2;
    if (nc > SIZE_MAX / sizeof *sc->ir)
        return fail(c, "out of memory");
    uint64_t *p = realloc(sc->ir, nc * sizeof *p);
    if (!p)
        return fail(c, "out of memory");
    sc->ir = p, sc->cap = nc;
    c->ir = p + c->base, c->cap = nc - c->base;
    return true;
}

/* c->len is written after the cell: a cell store may alias any size_t of
 * comp for the compiler, which otherwise reloads c->len after each one. */
static inline bool put(comp *c, uint64_t v)
{
    size_t len = c->len;
    if (len == c->cap && !grow_ir(c))
        return false;
    c->ir[len] = v;
    c->len = len + 1;
    return true;
}

/* Two cells (an operation and its immediate) with one capacity check. */
static inline bool put2(comp *c, uint64_t a, uint64_t b)
{
    size_t len = c->len;
    while (c->cap - len < 2)
        if (!grow_ir(c))
            return false;
    uint64_t *ir = c->ir;
    ir[len] = a;
    ir[len + 1] = b;
    c->len = len + 2;
    return true;
}

/* Three cells with one capacity check. */
static inline bool put3(comp *c, uint64_t a, uint64_t b, uint64_t d)
{
    size_t len = c->len;
    while (c->cap - len < 3)
        if (!grow_ir(c))
            return false;
    uint64_t *ir = c->ir;
    ir[len] = a;
    ir[len + 1] = b;
    ir[len + 2] = d;
    c->len = len + 3;
    return true;
}

static bool op0(comp *c, unsigned op)
{
    if (!live(c))
        return true;
    return put(c, c->cells[op]);
}

static bool op1(comp *c, unsigned op, uint64_t a)
{
    if (!live(c))
        return true;
    return put2(c, c->cells[op], a);
}

static bool op2(comp *c, unsigned op, uint64_t a, uint64_t b)
{
    if (!live(c))
        return true;
    return put3(c, c->cells[op], a, b);
}

/* ---- peephole fusion -----------------------------------------------------
 * Branch targets are always OP_FUEL cells (a basic block's first cell), and
 * every emission moves len past tend, so a tail describes instructions that
 * nothing can jump between: rewriting them into one operation is exact. */
static uint8_t tail(comp *c) { return c->tend == c->len && live(c) ? c->tk : TL_NONE; }

static void set_tail(comp *c, uint8_t k, size_t pos)
{
    c->tk = k;
    c->tpos = pos;
    c->tend = c->len;
}

static int fb_index(uint8_t op)
{
#define FB_IDX(I, OPC, W, EXPR) \
    case OPC:                   \
        return I;
    switch (op) {
        WASM_FB_LIST(FB_IDX)
    default:
        return -1;
    }
#undef FB_IDX
}

/* local.get x: fuses with a preceding lone local.get. */
static inline __attribute__((always_inline)) bool emit_get_hot(comp *c, uint32_t x);
static bool emit_get(comp *c, uint32_t x) { return emit_get_hot(c, x); }

/* emit_get, inlined for the local.get instruction itself. */
static inline __attribute__((always_inline)) bool emit_get_hot(comp *c, uint32_t x)
{
    if (!live(c))
        return true;
    uint8_t t = tail(c);
    if (t == TL_GET) {
        c->ir[c->tpos] = c->cells[OP_LOCAL_GET_LOCAL_GET];
        if (!put(c, x))
            return false;
        c->tb = x;
        set_tail(c, TL_GETGET, c->tpos);
        return true;
    }
    bool cn = t == TL_COPYN;
    size_t pos = c->len, cpos = t == TL_COPY || cn ? c->tpos + 1 : 0;
    size_t lpos = t == TL_LOAD && c->tidx == 0 ? c->tpos + 1 : 0;
    if (!put2(c, c->cells[OP_LOCAL_GET], x))
        return false;
    c->ta = x;
    c->get_instr = c->ninstr;
    set_tail(c, TL_GET, pos);
    c->cpos = cpos;
    c->cn = cn;
    c->lpos = lpos;
    return true;
}

static inline __attribute__((always_inline)) bool emit_const_hot(comp *c, uint64_t k);
static bool emit_const(comp *c, uint64_t k) { return emit_const_hot(c, k); }

/* emit_const, inlined for i32.const. */
static inline __attribute__((always_inline)) bool emit_const_hot(comp *c, uint64_t k)
{
    if (!live(c))
        return true;
    uint8_t t = tail(c);
    if (t == TL_GETGET) {
        /* local.get a; local.get b; const k: LOCAL_GET a, then b and k as a
         * TL_GET_CONST (the pair fuses with what follows: FB_LC, F2, OP_SIG,
         * LOAD_LK) */
        uint32_t b = c->tb;
        c->len = c->tpos;
        if (!put(c, c->cells[OP_LOCAL_GET]) || !put(c, c->ta))
            return false;
        size_t pos = c->len;
        if (!put(c, c->cells[OP_LOCAL_GET]) || !put(c, b))
            return false;
        c->ta = b;
        c->get_instr = c->ninstr - 1;
        c->cpos = c->lpos = 0;
        set_tail(c, TL_GET, pos);
        t = TL_GET;
    }
    bool after_get = t == TL_GET;
    size_t pos = after_get ? c->tpos : c->len;
    size_t kpos = t == TL_BIN && c->tvar == FV_LL && c->tidx == 20 &&
                          c->len == c->tpos + 2
                      ? c->tpos + 1
                      : 0;
    if (!put2(c, c->cells[OP_CONST], k))
        return false;
    c->tkv = k;
    c->kpos = kpos;
    set_tail(c, after_get ? TL_GET_CONST : TL_CONST, pos);
    return true;
}

/* The OP_SIG term (WASM_SIG_TERM) of i32 shl, shr_u, rotl or rotr
 * (WASM_FB_LIST index idx) by the constant k; WASM_SIG_ZERO for another op. */
static uint64_t sig_term(int idx, uint64_t k)
{
    unsigned n = (unsigned)k & 31;
    if (idx == 26)
        return WASM_SIG_TERM(n, 32);
    if (idx == 28)
        return WASM_SIG_TERM(32, n);
    if (idx == 30) /* rotr n = rotl (32 - n) mod 32 */
        n = (32 - n) & 31;
    if (idx == 29 || idx == 30)
        return WASM_SIG_TERM(n, n ? 32 - n : 32);
    return WASM_SIG_ZERO;
}

static bool is_sig_op(int idx) { return idx == 26 || idx == 28 || idx == 29 || idx == 30; }

/* At an i32.xor whose tail is FB_LC of a shift/rotation (the `local.get x;
 * i32.const k; OP` just before it): when that continues an OP_SIG chain
 * of the same local, the four wasm instructions right after the chain's
 * last and their cells right after its cells, extends the chain into one
 * OP_SIG (at most 3 terms). Returns whether it did. */
static bool extend_sig(comp *c)
{
    size_t p = c->sgpos - 1;
    uint32_t x = (uint32_t)c->ir[c->tpos + 1];
    if (!c->sgpos || c->sgend != c->tpos || c->sg_instr + 4 != c->ninstr || c->sgx != x ||
        c->sgn >= 3 || c->len != c->tpos + 3)
        return false;
    uint64_t term = sig_term(c->tidx, c->ir[c->tpos + 2]);
    if (c->sgn == 1) {
        int idx0 = -1;
        for (int i = 26; i <= 30; i++)
            if (is_sig_op(i) && c->ir[p] == c->cells[OP_FB(FV_LC, i)])
                idx0 = i;
        if (idx0 < 0 || (uint32_t)c->ir[p + 1] != x)
            return false;
        c->ir[p] = c->cells[OP_SIG];
        c->ir[p + 2] = sig_term(idx0, c->ir[p + 2]) | term << 12 | WASM_SIG_ZERO << 24;
    } else {
        if (c->ir[p] != c->cells[OP_SIG] || (uint32_t)c->ir[p + 1] != x)
            return false;
        c->ir[p + 2] = (c->ir[p + 2] & ((UINT64_C(1) << 24) - 1)) | term << 24;
    }
    c->len = p + 3;
    c->sgn++;
    c->sgend = c->len;
    c->sg_instr = c->ninstr;
    set_tail(c, TL_SIG, p);
    return true;
}

/* A WASM_FB_LIST binop (index idx): takes its operands from the locals and
 * constant just emitted when it can. */
static bool emit_binop(comp *c, uint8_t op, int idx)
{
    if (!live(c))
        return true;
    uint8_t t = tail(c), var = FV_SS_D; /* FV_SS_D: here "the plain op" */
    if (idx >= 42 && idx <= 49) {
        /* two float loads just before, adjacent in the code and in the wasm
         * instructions (so no block boundary or other instruction between):
         * one OP_FMM */
        const struct fload *l0 = &c->fl[0], *l1 = &c->fl[1];
        uint8_t lop = idx < 46 ? 0x2A : 0x2B;
        if (l1->end && l1->end == c->len && l1->ilast + 1 == c->ninstr && l0->end &&
            l0->end == l1->pos && l0->ilast + 1 == l1->ifirst && l0->op == lop &&
            l1->op == lop) {
            c->len = l0->pos;
            c->tk = TL_NONE;
            c->fl[0].end = c->fl[1].end = 0;
            c->fmpos = l0->pos + 1;
            c->fm_instr = c->ninstr;
            return put(c, c->cells[OP_FMM + (unsigned)(idx - 42)]) &&
                   put(c, (uint64_t)l0->a | (uint64_t)l1->a << 32) &&
                   put(c, (uint64_t)l0->k | (uint64_t)l1->k << 32) &&
                   put(c, (uint64_t)l0->off | (uint64_t)l1->off << 32);
        }
    }
    if (t == TL_BIN && c->tvar == FV_LC && idx == 25 && is_sig_op(c->tidx) && extend_sig(c))
        return true;
    if (t == TL_SIG && idx == 20) {
        /* OP_SIG; i32.add -> OP_SIG_A (the sum with the value under it) */
        c->ir[c->tpos] = c->cells[OP_SIG_A];
        c->tk = TL_NONE;
        c->sgpos = 0;
        return true;
    }
    if (t == TL_BIN && c->tvar == FV_LL && c->len == c->tpos + 2) {
        /* local.get a; local.get b; OP1; OP2 -> one WASM_F2L_LIST op (cell a|b<<32) */
        int n = -1;
#define F2L_FIND(N, I1, I2)                                                                \
    if (c->tidx == I1 && idx == I2)                                                        \
        n = N;
        WASM_F2L_LIST(F2L_FIND)
#undef F2L_FIND
        if (n >= 0) {
            c->ir[c->tpos] = c->cells[OP_F2L + n];
            c->tk = TL_NONE;
            return true;
        }
    }
    if (t == TL_BIN && c->tvar == FV_LC) {
        /* local.get b; const k; OP1; OP2 -> one WASM_F2_LIST op (cells b, k) */
        int n = -1;
#define F2_FIND(N, I1, I2)                                                                 \
    if (c->tidx == I1 && idx == I2)                                                        \
        n = N;
        WASM_F2_LIST(F2_FIND)
#undef F2_FIND
        if (n >= 0) {
            c->ir[c->tpos] = c->cells[OP_F2_BASE + n];
            c->tk = TL_NONE;
            return true;
        }
    }
    if (t == TL_BIN && c->tvar == FV_SL) {
        /* local.get b; OP1; OP2 (floats) -> one WASM_G2_LIST op (cell b) */
        int n = -1;
#define G2_FIND(N, I1, I2)                                                                 \
    if (c->tidx == I1 && idx == I2)                                                        \
        n = N;
        WASM_G2_LIST(G2_FIND)
#undef G2_FIND
        if (n >= 0) {
            c->ir[c->tpos] = c->cells[OP_G2 + n];
            c->tidx = (uint8_t)n;
            set_tail(c, TL_G2, c->tpos);
            return true;
        }
    }
    bool operands = t == TL_GETGET || t == TL_GET_CONST || t == TL_CONST || t == TL_GET;
    size_t pos = operands ? c->tpos : c->len;
    bool ok;
    c->len = pos;
    switch (t) {
    case TL_GETGET:
        var = FV_LL;
        ok = put2(c, c->cells[OP_FB(FV_LL, idx)], (uint64_t)c->ta | (uint64_t)c->tb << 32);
        break;
    case TL_GET_CONST:
        var = FV_LC;
        ok = put3(c, c->cells[OP_FB(FV_LC, idx)], c->ta, c->tkv);
        break;
    case TL_CONST:
        var = FV_SC;
        ok = put2(c, c->cells[OP_FB(FV_SC, idx)], c->tkv);
        break;
    case TL_GET:
        var = FV_SL;
        ok = put2(c, c->cells[OP_FB(FV_SL, idx)], c->ta);
        /* an i32 LOAD_L (3 cells) right before: kept for fuse_cond */
        c->blpos = c->lpos && c->lpos + 2 == pos ? c->lpos : 0;
        break;
    default:
        ok = put(c, c->cells[op]);
        break;
    }
    if (!ok)
        return false;
    c->tvar = var;
    c->tidx = (uint8_t)idx;
    set_tail(c, TL_BIN, pos);
    bool cont = c->sgpos && c->sgend == pos && c->sg_instr + 3 == c->ninstr &&
                c->sgx == c->ta && c->sgn < 3; /* the next term of a chain, if an xor follows */
    if (var == FV_LC && is_sig_op(idx) && !cont) { /* a possible OP_SIG chain's first term */
        c->sgpos = pos + 1;
        c->sgend = c->len;
        c->sg_instr = c->ninstr;
        c->sgx = c->ta;
        c->sgn = 1;
    }
    return true;
}

static bool emit_set(comp *c, uint32_t d, bool tee);

/* A fused float load LOAD_L / LOAD_LK (k 0 for LOAD_L) just emitted at
 * cell pos, its local.get being wasm instruction get_instr. */
static void note_fload(comp *c, size_t pos, uint32_t a, uint32_t k, uint64_t off, uint8_t op)
{
    c->fl[0] = c->fl[1];
    c->fl[1] = (struct fload){.pos = pos, .end = c->len, .ifirst = c->get_instr,
                              .ilast = c->ninstr, .a = a, .k = k, .off = (uint32_t)off,
                              .op = op};
}

/* The result of the operation just emitted (a fused binop or load, tail
 * TL_BIN, TL_LOAD, TL_G2 or TL_UN) as the function's only result: written to slot 0 of the
 * frame, then OP_RETURN_FP0 (one copy and one dispatch less than OP_RETURN).
 * Returns false when the tail has no such form (emit OP_RETURN then). */
static bool fuse_return(comp *c, bool *failed)
{
    uint8_t t = tail(c);
    *failed = false;
    if (t != TL_BIN && t != TL_LOAD && t != TL_G2 && t != TL_UN && t != TL_LOADX &&
        t != TL_SIG)
        return false;
    if (t == TL_BIN && c->tvar == FV_LL && c->tidx == 20 && c->len == c->tpos + 2) {
        /* local.get a; local.get b; i32.add; return -> OP_RET_LL_ADD a|b<<32 */
        c->ir[c->tpos] = c->cells[OP_RET_LL_ADD];
        c->tk = TL_NONE;
        return true;
    }
    if (!emit_set(c, 0, false) || !put(c, c->cells[OP_RETURN_FP0])) {
        *failed = true;
        return false;
    }
    c->tk = TL_NONE;
    return true;
}

/* local.set / local.tee d: a binop just emitted writes d directly. */
static bool emit_set(comp *c, uint32_t d, bool tee)
{
    if (!live(c))
        return true;
    uint8_t t = tail(c);
    if (c->entry && d >= c->nparams && !c->written[d] && t == TL_CONST && !tee &&
        c->tkv == 0) {
        /* still zero since the call: const 0; local.set d does nothing (its
         * fuel is the block's count, unchanged) */
        c->len = c->tpos;
        c->tk = TL_NONE;
        return true; /* d is still zero: a second `const 0; local.set d` drops too */
    }
    if (c->entry && d < c->nlocals)
        c->written[d] = 1;
    if (t == TL_G2 && c->fmpos && c->fmpos + 3 == c->tpos && c->len == c->tpos + 2 &&
        c->fm_instr + 4 == c->ninstr &&
        c->ir[c->fmpos - 1] == c->cells[OP_FMM + (c->tidx < 2 ? 6 : 2)]) {
        /* FMM (multiply); local.get b; OP1; OP2; local.set/tee d, the five
         * contiguous in the wasm code -> OP_FMMG2 (FMM's cells, b|d<<32) */
        size_t p = c->fmpos - 1;
        c->ir[p] = c->cells[OP_FMMG2 + c->tidx];
        c->ir[p + 4] = c->ir[c->tpos + 1] | (uint64_t)d << 32;
        c->len = p + 5;
        c->tk = TL_NONE;
        c->fmpos = 0;
        return tee ? emit_get(c, d) : true;
    }
    if (t == TL_LOADX) {
        /* LOAD_LK a, k, off -> LOAD_LK_D a|d<<32, k, off;
         * LOAD_LLA a|b<<32, off -> LOAD_LLA_D a|b<<32, off|d<<32 */
        bool lk = c->tvar == 0;
        c->ir[c->tpos] = c->cells[(lk ? OP_LOAD_LK_D : OP_LOAD_LLA_D) + c->tidx];
        c->ir[c->tpos + (lk ? 1 : 2)] |= (uint64_t)d << 32;
        c->fl[1].end = 0; /* no longer a pushed float load for OP_FMM */
        c->tk = TL_NONE;
        return tee ? emit_get(c, d) : true;
    }
    if (t == TL_SIG) {
        c->ir[c->tpos] = c->cells[OP_SIG_D];
        c->ir[c->tpos + 1] |= (uint64_t)d << 32;
        c->tk = TL_NONE;
        c->sgpos = 0;
        return tee ? emit_get(c, d) : true;
    }
    if (t == TL_G2 || t == TL_UN) {
        c->ir[c->tpos] = c->cells[t == TL_G2 ? OP_G2 + WASM_G2_N + c->tidx : OP_UNLD + c->tidx];
        c->ir[c->tpos + 1] |= (uint64_t)d << 32;
        c->tk = TL_NONE;
        return tee ? emit_get(c, d) : true;
    }
    if (t == TL_LOAD || (t == TL_GET && !tee) || t == TL_CONST) {
        /* LOAD_L a, off -> LOAD_L_D a|d<<32, off; GET a -> COPY; CONST k -> SET_CONST */
        uint64_t *ir = c->ir;
        size_t pos = c->tpos;
        c->tk = TL_NONE;
        if (t == TL_LOAD) {
            ir[pos] = c->cells[OP_LOAD_L_D + c->tidx];
            ir[pos + 1] |= (uint64_t)d << 32;
        } else if (t == TL_GET) {
            ir[pos + 1] |= (uint64_t)d << 32;
            size_t p = c->cpos - 1;
            if (!tee && c->cpos && !c->cn && p + 2 == pos) {
                /* COPY x; local.get a; local.set d -> COPY2 */
                ir[p] = c->cells[OP_COPY2];
                ir[pos] = ir[pos + 1];
                c->len = pos + 1;
                set_tail(c, TL_COPYN, p);
            } else if (!tee && c->cpos && c->cn && ir[p] == c->cells[OP_COPY2] &&
                       p + 3 == pos) {
                /* COPY2 x, y; local.get a; local.set d -> COPYN 3, x, y, a|d<<32 */
                uint64_t z = ir[pos + 1];
                ir[p] = c->cells[OP_COPYN];
                ir[p + 3] = ir[p + 2];
                ir[p + 2] = ir[p + 1];
                ir[p + 1] = 3;
                ir[p + 4] = z;
                c->len = p + 5;
                set_tail(c, TL_COPYN, p);
            } else if (!tee && c->cpos && c->cn && ir[p] == c->cells[OP_COPYN] &&
                       p + 2 + ir[p + 1] == pos) {
                /* COPYN n, ...; local.get a; local.set d -> COPYN n+1, ..., a|d<<32 */
                ir[p + 1]++;
                ir[pos] = ir[pos + 1];
                c->len = pos + 1;
                set_tail(c, TL_COPYN, p);
            } else {
                ir[pos] = c->cells[OP_COPY];
                if (!tee)
                    set_tail(c, TL_COPY, pos);
            }
        } else {
            uint64_t k = ir[pos + 1];
            ir[pos] = c->cells[OP_SET_CONST];
            ir[pos + 1] = d;
            if (!put(c, k))
                return false;
        }
        return tee ? emit_get(c, d) : true;
    }
    if (t != TL_BIN)
        return put2(c, c->cells[tee ? OP_LOCAL_TEE : OP_LOCAL_SET], d);
    size_t pos = c->tpos;
    uint64_t *ir = c->ir;
    int idx = c->tidx;
    bool ok = true;
    switch (c->tvar) {
    case FV_LL:
        ir[pos] = c->cells[OP_FB(FV_LL_D, idx)];
        ok = put(c, d);
        break;
    case FV_LC:
        ir[pos] = c->cells[OP_FB(FV_LC_D, idx)];
        ir[pos + 1] |= (uint64_t)d << 32;
        if (idx == 20) { /* i32.add: a loop counter's step, for OP_INCBRL */
            c->ipos2 = c->ipos && c->ipos + 2 == pos ? c->ipos : 0;
            c->ipos = pos + 1;
        }
        break;
    case FV_SL:
        ir[pos] = c->cells[OP_FB(FV_SL_D, idx)];
        ir[pos + 1] |= (uint64_t)d << 32;
        break;
    case FV_SC: {
        uint64_t k = ir[pos + 1];
        ir[pos] = c->cells[OP_FB(FV_SC_D, idx)];
        ir[pos + 1] = d;
        ok = put(c, k);
        break;
    }
    default:
        ir[pos] = c->cells[OP_FB(FV_SS_D, idx)];
        ok = put(c, d);
        break;
    }
    c->tk = TL_NONE;
    if (!ok)
        return false;
    return tee ? emit_get(c, d) : true;
}

/* Before a conditional branch (br_if, or the jump of if when invert):
 * turns the i32 condition just computed into a compare-and-branch whose
 * offset cell the caller appends. Returns whether it did. */
static bool fuse_cond(comp *c, bool invert)
{
    static const uint8_t inv[WASM_FB_NCMP] = {1,  0,  8,  9,  6,  7,  4,  5,  2,  3,
                                              11, 10, 18, 19, 16, 17, 14, 15, 12, 13};
    uint8_t t = tail(c);
    c->tk = TL_NONE;
    if (t == TL_GET || t == TL_GET_EQZ) {
        /* local.get a [i32.eqz]: branch on the local */
        bool unless = (t == TL_GET_EQZ) != invert;
        c->len = c->tpos;
        c->brop = unless ? OP_BR_UNLESS_L : OP_BR_IF_L;
        put2(c, c->cells[c->brop], c->ta); /* failure: c->failed */
        return true;
    }
    if (t == TL_EQZ) {
        c->len = c->tpos;
        c->brop = invert ? OP_BR_IF : OP_BR_UNLESS;
        put(c, c->cells[c->brop]); /* failure: c->failed */
        return true;
    }
    if (t != TL_BIN)
        return false;
    int idx = c->tidx;
    if (invert ? idx >= WASM_FB_NCMP : idx >= WASM_FB_BR_LIMIT) /* i64, float results */
        return false;
    if (invert)
        idx = inv[idx];
    if (c->tvar == FV_SL && c->blpos && idx < 10) {
        /* LOAD_L a, off; FB_SL b -> LDBR a, off, b (the caller adds the offset) */
        size_t p = c->blpos - 1;
        c->ir[p + 3] = c->ir[p + 4];
        c->len = p + 4;
        c->tpos = p;
        c->brop = OP_LDBR + (unsigned)idx;
        c->ir[p] = c->cells[c->brop];
        return true;
    }
    static const uint8_t br[] = {[FV_LL] = FV_BR_LL, [FV_LC] = FV_BR_LC, [FV_SL] = FV_BR_SL,
                                 [FV_SC] = FV_BR_SC, [FV_SS_D] = FV_BR_SS};
    c->brop = OP_FB(br[c->tvar], idx);
    c->ir[c->tpos] = c->cells[c->brop];
    return true;
}

/* Closes the current basic block and opens a new one here. */
static inline bool bb_begin(comp *c)
{
    c->entry = false;
    c->ipos = c->ipos2 = c->fmpos = 0;
    if (c->fuel_cell)
        c->ir[c->fuel_cell - 1] = c->fuel_count;
    c->fuel_cell = 0;
    c->fuel_count = 0;
    if (!live(c))
        return true;
    if (!put2(c, c->cells[OP_FUEL], 0))
        return false;
    c->fuel_cell = c->len;
    return true;
}

/* ---- type stack ---------------------------------------------------------- */
static __attribute__((noinline, cold)) bool grow_vals(comp *c)
{
    uint32_t nc = c->cap_vals ? c->cap_vals * 2 : 64;
    uint8_t *p = realloc(c->vals, nc);
    if (!p)
        return fail(c, "out of memory");
    c->vals = p, c->cap_vals = nc;
    return true;
}

static inline __attribute__((always_inline)) bool push_hot(comp *c, uint8_t t);

static inline bool push(comp *c, uint8_t t) { return push_hot(c, t); }

/* push, inlined where most pushes are (local.get, const, numeric results). */
static inline __attribute__((always_inline)) bool push_hot(comp *c, uint8_t t)
{
    uint32_t n = c->nvals;
    if (n == c->cap_vals && !grow_vals(c))
        return false;
    /* everything read before the byte store, which the compiler must assume
     * may alias any field of comp */
    uint8_t *vals = c->vals;
    uint32_t h = c->nlocals + n + 1;
    bool grows = live(c) && h > c->max_height;
    c->nvals = n + 1;
    if (grows)
        c->max_height = h;
    vals[n] = t;
    return true;
}

static bool is_num(uint8_t t)
{
    return t == MT_WASM_I32 || t == MT_WASM_I64 || t == MT_WASM_F32 || t == MT_WASM_F64;
}

static bool is_ref(uint8_t t) { return t == MT_WASM_FUNCREF || t == MT_WASM_EXTERNREF; }

/* Pops one value; expect UNK accepts any type. *got receives the type. */
static inline bool pop(comp *c, uint8_t expect, uint8_t *got)
{
    uint8_t v;
    if (c->nvals == c->h) {
        if (!top(c)->unreachable)
            return fail(c, "type mismatch (operand stack underflow)");
        v = UNK;
    } else {
        v = c->vals[--c->nvals];
    }
    if (expect != UNK && v != UNK && v != expect)
        return fail(c, "type mismatch");
    if (got)
        *got = v == UNK ? expect : v;
    return true;
}

/* True when the top n values are exactly ts (no polymorphic bottom involved):
 * the common case, checked in one memcmp. Validation then costs a few
 * nanoseconds per value however large a type's arity (up to
 * WASM_MAX_PARAMS). */
static bool top_is(comp *c, const uint8_t *ts, uint32_t n)
{
    if (n == 1) /* a single result: no memcmp call */
        return c->nvals > c->h && c->vals[c->nvals - 1] == ts[0];
    return n && c->nvals - c->h >= n && !memcmp(c->vals + c->nvals - n, ts, n);
}

static bool pop_n_slow(comp *c, const uint8_t *ts, uint32_t n)
{
    if (top_is(c, ts, n)) {
        c->nvals -= n;
        return true;
    }
    for (uint32_t i = n; i-- > 0;)
        if (!pop(c, ts[i], NULL))
            return false;
    return true;
}

static bool push_n_slow(comp *c, const uint8_t *ts, uint32_t n)
{
    if (n > 1 && c->cap_vals - c->nvals >= n) {
        memcpy(c->vals + c->nvals, ts, n);
        c->nvals += n;
        if (live(c) && c->nlocals + c->nvals > c->max_height)
            c->max_height = c->nlocals + c->nvals;
        return true;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!push(c, ts[i]))
            return false;
    return true;
}

/* Most block types, and many calls, have no values to check: no call. */
static inline bool pop_n(comp *c, const uint8_t *ts, uint32_t n)
{
    return n == 0 || pop_n_slow(c, ts, n);
}

static inline bool push_n(comp *c, const uint8_t *ts, uint32_t n)
{
    return n == 0 || push_n_slow(c, ts, n);
}

static bool push_ctl(comp *c, uint8_t kind, const uint8_t *params, uint32_t np,
                     const uint8_t *results, uint32_t nr, uint8_t single)
{
    if (c->nctls > WASM_MAX_NESTING) /* the function's own frame is not a block */
        return fail(c, "blocks nested too deeply (the limit is 10000)");
    if (c->nctls == c->cap_ctls) {
        uint32_t nc = c->cap_ctls ? c->cap_ctls * 2 : 16;
        ctl *p = realloc(c->ctls, nc * sizeof *p);
        if (!p)
            return fail(c, "out of memory");
        c->ctls = p, c->cap_ctls = nc;
    }
    bool dead = c->nctls ? !live(c) : false;
    uint32_t height = c->nvals;
    c->ctls[c->nctls++] = (ctl){.kind = kind, .dead = dead, .single = single, .params = params,
                                .np = np, .results = results, .nr = nr, .height = height};
    c->lv = !dead; /* relive() for the new frame */
    c->h = height;
    return true;
}

/* Label types of control frame depth l (0 = innermost). */
static void label_types(ctl *t, const uint8_t **ts, uint32_t *n)
{
    if (t->kind == K_LOOP)
        *ts = t->params, *n = t->np;
    else
        *ts = t->results, *n = t->nr;
}

/* Reads a block type. */
static bool blocktype_slow(comp *c, const uint8_t **params, uint32_t *np,
                           const uint8_t **results, uint32_t *nr, uint8_t *single)
{
    if (c->pos >= c->end)
        return fail(c, "unexpected end of section or function");
    uint8_t b = c->b[c->pos];
    *params = NULL, *np = 0, *results = NULL, *nr = 0, *single = 0;
    if (b == 0x40) {
        c->pos++;
        return true;
    }
    if (is_num(b) || is_ref(b)) {
        static const uint8_t one[6] = {MT_WASM_I32, MT_WASM_I64, MT_WASM_F32,
                                       MT_WASM_F64, MT_WASM_FUNCREF, MT_WASM_EXTERNREF};
        c->pos++;
        switch (b) {
        case MT_WASM_I32: *results = &one[0]; break;
        case MT_WASM_I64: *results = &one[1]; break;
        case MT_WASM_F32: *results = &one[2]; break;
        case MT_WASM_F64: *results = &one[3]; break;
        case MT_WASM_FUNCREF: *results = &one[4]; break;
        default: *results = &one[5]; break; /* MT_WASM_EXTERNREF */
        }
        *nr = 1;
        return true;
    }
    int64_t idx;
    if (!rsleb(c, 33, &idx))
        return false;
    if (idx < 0)
        return fail(c, "malformed block type");
    if ((uint64_t)idx >= c->m->ntypes)
        return fail(c, "unknown type");
    const wasm_functype *ft = &c->m->types[idx];
    *params = ft->t, *np = ft->np, *results = ft->t + ft->np, *nr = ft->nr;
    return true;
}

/* blocktype_slow, with the empty block type (most blocks) read inline. */
static inline bool blocktype(comp *c, const uint8_t **params, uint32_t *np,
                             const uint8_t **results, uint32_t *nr, uint8_t *single)
{
    if (c->pos < c->end && c->b[c->pos] == 0x40) {
        c->pos++;
        *params = NULL, *np = 0, *results = NULL, *nr = 0, *single = 0;
        return true;
    }
    return blocktype_slow(c, params, np, results, nr, single);
}

/* A branch without drop, operation `op` in cell `at`, that goes back to a
 * loop head (an OP_FUEL cell): switches it to the form that charges the
 * loop's fuel itself, where there is one (OP_BR, BR_IF_L, compare-and-branch
 * of locals and constants). */
static unsigned loop_form(unsigned op)
{
    unsigned to = 0;
    if (op == OP_BR)
        to = OP_BR_LOOP;
    else if (op == OP_BR_IF_L)
        to = OP_BR_IF_L_LOOP;
    else if (op >= OP_FB(FV_BR_LL, 0) && op < OP_FB(FV_BR_LL, WASM_FB_BR_LIMIT))
        to = OP_FB(FV_BRL_LL, op - OP_FB(FV_BR_LL, 0));
    else if (op >= OP_FB(FV_BR_LC, 0) && op < OP_FB(FV_BR_LC, WASM_FB_BR_LIMIT))
        to = OP_FB(FV_BRL_LC, op - OP_FB(FV_BR_LC, 0));
    return to;
}

static void to_loop_form(comp *c, size_t at, unsigned op)
{
    unsigned to = loop_form(op);
    if (to)
        c->ir[at] = c->cells[to];
}

/* FB_LC_D i32.add a,k -> d at cell p, then the compare-and-branch just made
 * FB_BRL_LC (an i32 comparison) of local d with k2 at cell at = p + 3 (so
 * nothing between them, and both in one basic block): one OP_INCBRL
 * a|d<<32, k, k2, offset to the loop head. */
static void fuse_incbrl(comp *c, size_t at, size_t loop_pos)
{
    size_t p = c->ipos - 1;
    if (!c->ipos || p + 3 != at || c->len != at + 4 ||
        c->ir[p] != c->cells[OP_FB(FV_LC_D, 20)] || c->ir[at + 1] != c->ir[p + 1] >> 32)
        return;
    for (unsigned i = 0; i < 10; i++)
        if (c->ir[at] == c->cells[OP_FB(FV_BRL_LC, i)]) {
            c->ir[p] = c->cells[OP_INCBRL + i];
            c->ir[p + 3] = c->ir[at + 2];
            c->ir[p + 4] = (uint64_t)((int64_t)loop_pos - (int64_t)(p + 4));
            c->len = p + 5;
            c->ipos = 0;
            size_t q = c->ipos2 - 1;
            if (c->ipos2 && q + 3 == p && c->ir[q] == c->cells[OP_FB(FV_LC_D, 20)]) {
                /* FB_LC_D i32.add at q right before: one OP_INC2BRL (its
                 * cells, then INCBRL's without the operation cell) */
                c->ir[q] = c->cells[OP_INC2BRL + i];
                memmove(&c->ir[p], &c->ir[p + 1], 4 * sizeof *c->ir);
                c->ir[p + 3] = (uint64_t)((int64_t)loop_pos - (int64_t)(p + 3));
                c->len = p + 4;
            }
            c->ipos2 = 0;
            return;
        }
}

/* A forward branch's offset cell, while its target is unknown, holds the
 * next cell of its label's patch list (index + 1) in the low PL_BITS bits
 * and, for a branch that has a form charging its target's OP_FUEL itself,
 * that form's op number and the distance from the operation cell above. */
#define PL_BITS 40
#define PL_NEXT(v) ((size_t)((v) & ((UINT64_C(1) << PL_BITS) - 1)))
#define PL_FORM(v) ((unsigned)(((v) >> PL_BITS) & 0xFFFF))
#define PL_DIST(v) ((size_t)((v) >> (PL_BITS + 16)))

/* Emits a branch to label depth l with the operand stack as it is now. */
static bool emit_branch(comp *c, uint32_t l, unsigned plain, unsigned drop)
{
    if (!live(c))
        return true;
    ctl *t = &c->ctls[c->nctls - 1 - l];
    const uint8_t *ts;
    uint32_t n;
    label_types(t, &ts, &n);
    bool needs_drop = c->nvals - n != t->height;
    size_t at;
    unsigned op;
    if (!needs_drop && plain == OP_BR_IF && fuse_cond(c, false)) {
        at = c->tpos, op = c->brop;
        if (c->failed || !put(c, 0))
            return false;
    } else {
        at = c->len, op = needs_drop ? drop : plain;
        if (!put2(c, c->cells[op], 0))
            return false;
    }
    size_t cell = c->len - 1;
    if (needs_drop && !put(c, DROP_INFO(c->nlocals + t->height, n)))
        return false;
    if (t->kind == K_LOOP) {
        c->ir[cell] = (uint64_t)((int64_t)t->loop_pos - (int64_t)cell);
        if (!needs_drop && t->fuel_head) {
            to_loop_form(c, at, op);
            fuse_incbrl(c, at, t->loop_pos);
        }
    } else {
        unsigned lf = needs_drop ? 0 : loop_form(op);
        c->ir[cell] = t->patches;
        if (lf)
            c->ir[cell] |= (uint64_t)lf << PL_BITS | (uint64_t)(cell - at) << (PL_BITS + 16);
        t->patches = cell + 1;
        t->targeted = true;
    }
    return true;
}

/* Resolves a patch list to target. fuel_head: target is an OP_FUEL cell
 * (a block end that starts a basic block), so the branches that can charge
 * it themselves are switched to those forms (one dispatch less per taken
 * branch, the same fuel at the same moment). */
static void patch_list_slow(comp *c, size_t head, size_t target, bool fuel_head)
{
    while (head) {
        size_t cell = head - 1;
        uint64_t v = c->ir[cell];
        head = PL_NEXT(v);
        if (fuel_head && PL_FORM(v))
            c->ir[cell - PL_DIST(v)] = c->cells[PL_FORM(v)];
        c->ir[cell] = (uint64_t)((int64_t)target - (int64_t)cell);
    }
}

/* patch_list_slow, inline for an empty list (no call). */
static inline void patch_list(comp *c, size_t head, size_t target, bool fuel_head)
{
    if (head)
        patch_list_slow(c, head, target, fuel_head);
}

static bool set_unreachable(comp *c)
{
    ctl *t = top(c);
    c->nvals = t->height;
    t->unreachable = true;
    relive(c);
    return true;
}

/* Signature of numeric opcodes 0x45..0xC4 (index op - 0x45): operand a,
 * operand b (0: unary), result; b is on top of the stack. */
#define I MT_WASM_I32
#define L MT_WASM_I64
#define F MT_WASM_F32
#define D MT_WASM_F64
static const uint8_t numeric_sig[0xC5 - 0x45][3] = {
    /* 45 */ {I, 0, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I},
    /* 4B */ {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {L, 0, I},
    /* 51 */ {L, L, I}, {L, L, I}, {L, L, I}, {L, L, I}, {L, L, I}, {L, L, I},
    /* 57 */ {L, L, I}, {L, L, I}, {L, L, I}, {L, L, I}, {F, F, I}, {F, F, I},
    /* 5D */ {F, F, I}, {F, F, I}, {F, F, I}, {F, F, I}, {D, D, I}, {D, D, I},
    /* 63 */ {D, D, I}, {D, D, I}, {D, D, I}, {D, D, I}, {I, 0, I}, {I, 0, I},
    /* 69 */ {I, 0, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I},
    /* 6F */ {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I},
    /* 75 */ {I, I, I}, {I, I, I}, {I, I, I}, {I, I, I}, {L, 0, L}, {L, 0, L},
    /* 7B */ {L, 0, L}, {L, L, L}, {L, L, L}, {L, L, L}, {L, L, L}, {L, L, L},
    /* 81 */ {L, L, L}, {L, L, L}, {L, L, L}, {L, L, L}, {L, L, L}, {L, L, L},
    /* 87 */ {L, L, L}, {L, L, L}, {L, L, L}, {L, L, L}, {F, 0, F}, {F, 0, F},
    /* 8D */ {F, 0, F}, {F, 0, F}, {F, 0, F}, {F, 0, F}, {F, 0, F}, {F, F, F},
    /* 93 */ {F, F, F}, {F, F, F}, {F, F, F}, {F, F, F}, {F, F, F}, {F, F, F},
    /* 99 */ {D, 0, D}, {D, 0, D}, {D, 0, D}, {D, 0, D}, {D, 0, D}, {D, 0, D},
    /* 9F */ {D, 0, D}, {D, D, D}, {D, D, D}, {D, D, D}, {D, D, D}, {D, D, D},
    /* A5 */ {D, D, D}, {D, D, D}, {L, 0, I}, {F, 0, I}, {F, 0, I}, {D, 0, I},
    /* AB */ {D, 0, I}, {I, 0, L}, {I, 0, L}, {F, 0, L}, {F, 0, L}, {D, 0, L},
    /* B1 */ {D, 0, L}, {I, 0, F}, {I, 0, F}, {L, 0, F}, {L, 0, F}, {D, 0, F},
    /* B7 */ {I, 0, D}, {I, 0, D}, {L, 0, D}, {L, 0, D}, {F, 0, D}, {F, 0, I},
    /* BD */ {D, 0, L}, {I, 0, F}, {L, 0, D}, {I, 0, I}, {I, 0, I}, {L, 0, L},
    /* C3 */ {L, 0, L}, {L, 0, L},
};
#undef I
#undef L
#undef F
#undef D

static bool memarg(comp *c, unsigned natural_log2, uint32_t *offset)
{
    uint32_t align;
    if (!ru32(c, &align) || !ru32(c, offset))
        return false;
    if (c->m->nmems == 0)
        return fail(c, "unknown memory 0");
    if (align > natural_log2)
        return fail(c, "alignment must not be larger than natural");
    return true;
}

static bool check_table(comp *c, uint32_t t)
{
    if (t >= c->m->ntables)
        return failf(c, "unknown table %u", t);
    return true;
}

/* ---- the main loop --------------------------------------------------------- */
/* Aligned to a cache line: the main loop's layout (and its speed, a few
 * percent) then does not depend on the size of the code before it. */
static __attribute__((aligned(64))) bool body(comp *c, const wasm_functype *ft)
{
    mt_wasm_module *m = c->m;
    if (!push_ctl(c, K_FUNC, NULL, 0, ft->t + ft->np, ft->nr, 0))
        return false;
    if (!bb_begin(c))
        return false;
    c->entry = c->written != NULL;
    while (c->nctls > 0) {
        uint8_t op, t1 = UNK, t2 = UNK;
        uint32_t x, y;
        if (!rbyte(c, &op))
            return false;
        c->ninstr++;
        if (live(c))
            c->fuel_count++;
        switch (op) {
        case 0x00:
            if (!op0(c, OP_UNREACHABLE))
                return false;
            set_unreachable(c);
            break;
        case 0x01:
            break;
        case 0x02:
        case 0x03: {
            const uint8_t *p, *r;
            uint32_t np, nr;
            uint8_t single;
            if (!blocktype(c, &p, &np, &r, &nr, &single) || !pop_n(c, p, np) ||
                !push_ctl(c, op == 0x02 ? K_BLOCK : K_LOOP, p, np, r, nr, single) ||
                !push_n(c, p, np))
                return false;
            if (op == 0x03) {
                if (!bb_begin(c))
                    return false;
                top(c)->loop_pos = c->len >= 2 ? c->len - 2 : 0;
                top(c)->fuel_head = live(c) && c->len >= 2; /* bb_begin put OP_FUEL 0 */
            }
            break;
        }
        case 0x04: {
            const uint8_t *p, *r;
            uint32_t np, nr;
            uint8_t single;
            if (!blocktype(c, &p, &np, &r, &nr, &single) || !pop(c, MT_WASM_I32, NULL) ||
                !pop_n(c, p, np))
                return false;
            bool was_live = live(c);
            if (was_live && fuse_cond(c, true)) {
                if (c->failed || !put(c, 0))
                    return false;
            } else if (!op1(c, OP_BR_UNLESS, 0)) {
                return false;
            }
            size_t cell = c->len;
            if (!push_ctl(c, K_IF, p, np, r, nr, single))
                return false;
            if (was_live)
                top(c)->if_cell = cell;
            if (!push_n(c, p, np) || !bb_begin(c))
                return false;
            break;
        }
        case 0x05: {
            ctl *t = top(c);
            if (t->kind != K_IF)
                return fail(c, "else without if");
            if (!pop_n(c, t->results, t->nr))
                return false;
            if (c->nvals != t->height)
                return fail(c, "type mismatch (values remaining at else)");
            /* jump from the end of the then branch to the end */
            if (live(c)) {
                if (!put2(c, c->cells[OP_BR], t->patches))
                    return false;
                t->patches = c->len;
                t->targeted = true;
            }
            t->kind = K_ELSE;
            t->unreachable = false;
            relive(c);
            if (t->if_cell) {
                patch_list(c, t->if_cell, c->len, false);
                t->if_cell = 0;
            }
            if (!bb_begin(c) || !push_n(c, t->params, t->np))
                return false;
            break;
        }
        case 0x0B: {
            ctl *t = top(c);
            if (!pop_n(c, t->results, t->nr))
                return false;
            if (c->nvals != t->height)
                return fail(c, "type mismatch (values remaining at end)");
            if (t->kind == K_IF) {
                if (t->np != t->nr || (t->np && memcmp(t->params, t->results, t->np)))
                    return fail(c, "type mismatch (if without else)");
            }
            if (t->kind == K_FUNC) {
                bool fused = false, ffail = false;
                if (live(c) && !t->targeted && t->nr == 1)
                    fused = fuse_return(c, &ffail);
                if (ffail)
                    return false;
                size_t target = c->len;
                if (!fused && (live(c) || t->targeted) &&
                    !put2(c, c->cells[OP_RETURN], t->nr))
                    return false;
                patch_list(c, t->patches, target, false);
                if (c->fuel_cell)
                    c->ir[c->fuel_cell - 1] = c->fuel_count;
                c->nctls--;
                relive(c);
                break;
            }
            bool was_unreachable = t->unreachable && !t->dead;
            bool need_bb = t->targeted || t->if_cell || t->kind == K_IF || t->kind == K_ELSE ||
                           was_unreachable;
            size_t head = t->patches, ifc = t->if_cell;
            const uint8_t *rs = t->results;
            uint32_t nr = t->nr;
            c->nctls--;
            relive(c);
            if (need_bb && !bb_begin(c))
                return false;
            bool fuel_head = c->len >= 2 && need_bb && live(c);
            size_t target = fuel_head ? c->len - 2 : c->len;
            patch_list(c, head, target, fuel_head);
            if (ifc)
                patch_list(c, ifc, target, false);
            if (!push_n(c, rs, nr))
                return false;
            break;
        }
        case 0x0C:
        case 0x0D: {
            if (!ru32(c, &x))
                return false;
            if (x >= c->nctls)
                return fail(c, "unknown label");
            if (op == 0x0D && !pop(c, MT_WASM_I32, NULL))
                return false;
            const uint8_t *ts;
            uint32_t n;
            label_types(&c->ctls[c->nctls - 1 - x], &ts, &n);
            /* heights are those with the values in place */
            if (!top_is(c, ts, n) && (!pop_n(c, ts, n) || !push_n(c, ts, n)))
                return false;
            if (op == 0x0C) {
                if (!emit_branch(c, x, OP_BR, OP_BR_DROP))
                    return false;
                set_unreachable(c);
            } else {
                /* the fall-through is reached only from the block before it, so
                 * an open entry block stays open (its locals not yet written are
                 * still zero) */
                bool entry = c->entry;
                if (!emit_branch(c, x, OP_BR_IF, OP_BR_IF_DROP) || !bb_begin(c))
                    return false;
                c->entry = entry;
            }
            break;
        }
        case 0x0E: {
            uint32_t n;
            if (!ru32(c, &n))
                return false;
            if (n > c->end - c->pos)
                return fail(c, "unexpected end of section or function");
            if (n > WASM_MAX_BR_TABLE)
                return fail(c, "br_table has too many labels (the limit is 65536)");
            uint32_t *labels = malloc(((size_t)n + 1) * sizeof *labels);
            if (!labels)
                return fail(c, "out of memory");
            bool ok = true;
            for (uint32_t i = 0; ok && i <= n; i++) {
                ok = ru32(c, &labels[i]);
                if (ok && labels[i] >= c->nctls)
                    ok = fail(c, "unknown label");
            }
            if (ok)
                ok = pop(c, MT_WASM_I32, NULL);
            const uint8_t *dts = NULL;
            uint32_t dn = 0;
            if (ok)
                label_types(&c->ctls[c->nctls - 1 - labels[n]], &dts, &dn);
            ctl *t = top(c);
            /* label type vectors already checked against the stack (the same
             * vector is checked once: n labels x arity must not be the cost) */
            const uint8_t *seen[16];
            uint32_t nseen = 0;
            for (uint32_t i = 0; ok && i <= n; i++) {
                const uint8_t *ts;
                uint32_t tn;
                label_types(&c->ctls[c->nctls - 1 - labels[i]], &ts, &tn);
                if (tn != dn) {
                    ok = fail(c, "type mismatch (br_table arity)");
                    break;
                }
                bool dup = false;
                for (uint32_t k = 0; k < nseen && !dup; k++)
                    dup = seen[k] == ts;
                if (dup)
                    continue;
                if (nseen < 16)
                    seen[nseen++] = ts;
                for (uint32_t k = 0; k < tn; k++) {
                    uint32_t slot = c->nvals - 1 - k;
                    uint8_t have;
                    if (c->nvals < k + 1 || slot < t->height) {
                        if (!t->unreachable) {
                            ok = fail(c, "type mismatch (br_table operands)");
                            break;
                        }
                        have = UNK;
                    } else {
                        have = c->vals[slot];
                    }
                    if (have != UNK && have != ts[tn - 1 - k]) {
                        ok = fail(c, "type mismatch (br_table operands)");
                        break;
                    }
                }
            }
            if (ok && live(c)) {
                ok = put(c, c->cells[OP_BR_TABLE]) && put(c, n);
                for (uint32_t i = 0; ok && i <= n; i++) {
                    ctl *lt = &c->ctls[c->nctls - 1 - labels[i]];
                    ok = put(c, 0) && put(c, DROP_INFO(c->nlocals + lt->height, dn));
                    if (!ok)
                        break;
                    size_t cell = c->len - 2;
                    if (lt->kind == K_LOOP) {
                        c->ir[cell] = (uint64_t)((int64_t)lt->loop_pos - (int64_t)cell);
                    } else {
                        c->ir[cell] = lt->patches;
                        lt->patches = cell + 1;
                        lt->targeted = true;
                    }
                }
            }
            free(labels);
            if (!ok)
                return false;
            set_unreachable(c);
            break;
        }
        case 0x0F: {
            ctl *f = &c->ctls[0];
            bool fused = false, ffail = false;
            if (!pop_n(c, f->results, f->nr))
                return false;
            if (live(c) && f->nr == 1)
                fused = fuse_return(c, &ffail);
            if (ffail || (!fused && !op1(c, OP_RETURN, f->nr)))
                return false;
            set_unreachable(c);
            break;
        }
        case 0x10: {
            if (!ru32(c, &x))
                return false;
            if (x >= m->nfuncs)
                return failf(c, "unknown function %u", x);
            const wasm_functype *t = &m->types[m->func_type[x]];
            bool defined = x >= m->nfunc_imports;
            if (defined && t->np && tail(c) == TL_BIN && c->tvar == FV_LC && c->tidx == 20 &&
                c->len == c->tpos + 3) {
                /* local.get a; i32.const k; i32.add; call f (defined) -> OP_CALL_LC */
                c->ir[c->tpos] = c->cells[OP_CALL_LC];
                c->tk = TL_NONE;
                if (!pop_n(c, t->t, t->np) ||
                    !put(c, (uint64_t)(uintptr_t)&m->codes[x - m->nfunc_imports]) ||
                    !push_n(c, t->t + t->np, t->nr))
                    return false;
                break;
            }
            if (!pop_n(c, t->t, t->np) ||
                !(defined ? op1(c, OP_CALL_LOCAL,
                                (uint64_t)(uintptr_t)&m->codes[x - m->nfunc_imports])
                          : op1(c, OP_CALL, x)) ||
                !push_n(c, t->t + t->np, t->nr))
                return false;
            break;
        }
        case 0x11: {
            if (!ru32(c, &x) || !ru32(c, &y))
                return false;
            if (x >= m->ntypes)
                return fail(c, "unknown type");
            if (!check_table(c, y))
                return false;
            if (m->tables[y].elem != MT_WASM_FUNCREF)
                return fail(c, "type mismatch (call_indirect needs a funcref table)");
            const wasm_functype *t = &m->types[x];
            if (!pop(c, MT_WASM_I32, NULL) || !pop_n(c, t->t, t->np) ||
                !op2(c, OP_CALL_INDIRECT, x, y) || !push_n(c, t->t + t->np, t->nr))
                return false;
            break;
        }
        case 0x1A:
            if (!pop(c, UNK, NULL) || !op0(c, OP_DROP))
                return false;
            break;
        case 0x1B:
        case 0x1C: {
            uint8_t want = UNK;
            if (op == 0x1C) {
                uint32_t n;
                if (!ru32(c, &n))
                    return false;
                if (n != 1)
                    return fail(c, "invalid result arity");
                if (!rbyte(c, &want))
                    return false;
                if (!is_num(want) && !is_ref(want))
                    return fail(c, "malformed value type");
            }
            if (!pop(c, MT_WASM_I32, NULL) || !pop(c, want, &t1) || !pop(c, want, &t2))
                return false;
            if (op == 0x1B) {
                if ((t1 != UNK && !is_num(t1)) || (t2 != UNK && !is_num(t2)))
                    return fail(c, "type mismatch (select needs numeric operands)");
                if (t1 != UNK && t2 != UNK && t1 != t2)
                    return fail(c, "type mismatch");
                want = t1 != UNK ? t1 : t2;
            }
            if (!op0(c, OP_SELECT) || !push(c, want))
                return false;
            break;
        }
        case 0x20:
        case 0x21:
        case 0x22:
            if (!ru32(c, &x))
                return false;
            if (x >= c->nlocals)
                return fail(c, "unknown local");
            if (op == 0x20) {
                if (!emit_get_hot(c, x) || !push_hot(c, c->locals[x]))
                    return false;
            } else if (op == 0x21) {
                if (!pop(c, c->locals[x], NULL) || !emit_set(c, x, false))
                    return false;
            } else {
                if (!pop(c, c->locals[x], NULL) || !emit_set(c, x, true) ||
                    !push(c, c->locals[x]))
                    return false;
            }
            break;
        case 0x23:
        case 0x24:
            if (!ru32(c, &x))
                return false;
            if (x >= m->nglobals)
                return failf(c, "unknown global %u", x);
            if (op == 0x23) {
                if (!op1(c, OP_GLOBAL_GET, x) || !push(c, m->globals[x].type))
                    return false;
            } else {
                if (!m->globals[x].mut)
                    return fail(c, "global is immutable");
                if (!pop(c, m->globals[x].type, NULL) || !op1(c, OP_GLOBAL_SET, x))
                    return false;
            }
            break;
        case 0x25:
        case 0x26:
            if (!ru32(c, &x) || !check_table(c, x))
                return false;
            if (op == 0x25) {
                if (!pop(c, MT_WASM_I32, NULL) || !op1(c, OP_TABLE_GET, x) ||
                    !push(c, m->tables[x].elem))
                    return false;
            } else {
                if (!pop(c, m->tables[x].elem, NULL) || !pop(c, MT_WASM_I32, NULL) ||
                    !op1(c, OP_TABLE_SET, x))
                    return false;
            }
            break;
        case 0x28: case 0x29: case 0x2A: case 0x2B: case 0x2C: case 0x2D: case 0x2E:
        case 0x2F: case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35: {
            static const uint8_t lg[] = {2, 3, 2, 3, 0, 0, 1, 1, 0, 0, 1, 1, 2, 2};
            static const uint8_t rt[] = {MT_WASM_I32, MT_WASM_I64, MT_WASM_F32, MT_WASM_F64,
                                         MT_WASM_I32, MT_WASM_I32, MT_WASM_I32, MT_WASM_I32,
                                         MT_WASM_I64, MT_WASM_I64, MT_WASM_I64, MT_WASM_I64,
                                         MT_WASM_I64, MT_WASM_I64};
            if (!memarg(c, lg[op - 0x28], &x) || !pop(c, MT_WASM_I32, NULL))
                return false;
            if (tail(c) == TL_GET) {
                c->len = c->tpos;
                c->tk = TL_NONE;
                size_t pos = c->len;
                if (!op2(c, OP_LOAD_L + (op - 0x28u), c->ta, x))
                    return false;
                c->tidx = (uint8_t)(op - 0x28);
                set_tail(c, TL_LOAD, pos);
                if (op == 0x2A || op == 0x2B)
                    note_fload(c, pos, c->ta, 0, x, op);
            } else if (tail(c) == TL_BIN && c->tidx == 20 /* i32.add */ &&
                       (c->tvar == FV_LC || c->tvar == FV_LL)) {
                /* local.get a; (i32.const k | local.get b); i32.add; LOAD */
                unsigned base = c->tvar == FV_LC ? OP_LOAD_LK : OP_LOAD_LLA;
                c->ir[c->tpos] = c->cells[base + (op - 0x28u)];
                if (!put(c, x)) /* a, k (LC) or a|b<<32 (LL) already in place */
                    return false;
                bool lk = c->tvar == FV_LC;
                if (lk && (op == 0x2A || op == 0x2B))
                    note_fload(c, c->tpos, (uint32_t)c->ir[c->tpos + 1],
                               (uint32_t)c->ir[c->tpos + 2], x, op);
                /* for local.set/tee: tvar 0 LOAD_LK, 1 LOAD_LLA */
                c->tvar = lk ? 0 : 1;
                c->tidx = (uint8_t)(op - 0x28);
                set_tail(c, TL_LOADX, c->tpos);
            } else if (!op1(c, op, x)) {
                return false;
            }
            if (!push(c, rt[op - 0x28]))
                return false;
            break;
        }
        case 0x36: case 0x37: case 0x38: case 0x39: case 0x3A: case 0x3B: case 0x3C:
        case 0x3D: case 0x3E: {
            static const uint8_t lg[] = {2, 3, 2, 3, 0, 1, 0, 1, 2};
            static const uint8_t vt[] = {MT_WASM_I32, MT_WASM_I64, MT_WASM_F32,
                                         MT_WASM_F64, MT_WASM_I32, MT_WASM_I32,
                                         MT_WASM_I64, MT_WASM_I64, MT_WASM_I64};
            if (!memarg(c, lg[op - 0x36], &x) || !pop(c, vt[op - 0x36], NULL) ||
                !pop(c, MT_WASM_I32, NULL))
                return false;
            if (tail(c) == TL_GETGET) {
                c->len = c->tpos;
                c->tk = TL_NONE;
                if (!op2(c, OP_STORE_LL + (op - 0x36u), (uint64_t)c->ta | (uint64_t)c->tb << 32,
                         x))
                    return false;
            } else if (tail(c) == TL_CONST && c->kpos && c->kpos + 1 == c->tpos &&
                       c->len == c->tpos + 2) {
                /* local.get a; local.get b; i32.add; CONST k; STORE off ->
                 * STORE_LLAK a|b<<32, k, off (FB_LL's cells, then k and off) */
                size_t p = c->kpos - 1;
                uint64_t k = c->ir[c->tpos + 1];
                c->ir[p] = c->cells[OP_STORE_LLAK + (op - 0x36u)];
                c->ir[p + 2] = k;
                c->ir[p + 3] = x;
                c->len = p + 4;
                c->tk = TL_NONE;
            } else if (!op1(c, op, x)) {
                return false;
            }
            break;
        }
        case 0x3F:
        case 0x40:
            if (!rzero(c))
                return false;
            if (m->nmems == 0)
                return fail(c, "unknown memory 0");
            if (op == 0x3F) {
                if (!op0(c, OP_MEMORY_SIZE) || !push(c, MT_WASM_I32))
                    return false;
            } else {
                if (!pop(c, MT_WASM_I32, NULL) || !op0(c, OP_MEMORY_GROW) ||
                    !push(c, MT_WASM_I32))
                    return false;
            }
            break;
        case 0x41: {
            int64_t v;
            if (!rsleb(c, 32, &v) || !emit_const_hot(c, (uint32_t)v) || !push_hot(c, MT_WASM_I32))
                return false;
            break;
        }
        case 0x42: {
            int64_t v;
            if (!rsleb(c, 64, &v) || !emit_const(c, (uint64_t)v) || !push(c, MT_WASM_I64))
                return false;
            break;
        }
        case 0x43:
        case 0x44: {
            uint64_t v;
            if (!rfixed(c, op == 0x43 ? 4 : 8, &v) || !emit_const(c, v) ||
                !push(c, op == 0x43 ? MT_WASM_F32 : MT_WASM_F64))
                return false;
            break;
        }
        case 0xD0:
            if (!rbyte(c, &t1))
                return false;
            if (!is_ref(t1))
                return fail(c, "malformed reference type");
            if (!op1(c, OP_CONST, 0) || !push(c, t1))
                return false;
            break;
        case 0xD1:
            if (!pop(c, UNK, &t1))
                return false;
            if (t1 != UNK && !is_ref(t1))
                return fail(c, "type mismatch (ref.is_null needs a reference)");
            if (!op0(c, OP_REF_IS_NULL) || !push(c, MT_WASM_I32))
                return false;
            break;
        case 0xD2:
            if (!ru32(c, &x))
                return false;
            if (x >= m->nfuncs)
                return failf(c, "unknown function %u", x);
            if (!(m->declared_funcs[x / 8] & (1u << (x % 8))))
                return fail(c, "undeclared function reference");
            if (!op1(c, OP_REF_FUNC, x) || !push(c, MT_WASM_FUNCREF))
                return false;
            break;
        case 0xFC: {
            uint32_t sub;
            if (!ru32(c, &sub))
                return false;
            const uint8_t I = MT_WASM_I32;
            if (sub <= 7) {
                static const uint8_t from[] = {MT_WASM_F32, MT_WASM_F32, MT_WASM_F64,
                                               MT_WASM_F64, MT_WASM_F32, MT_WASM_F32,
                                               MT_WASM_F64, MT_WASM_F64};
                if (!pop(c, from[sub], NULL) || !op0(c, OP_TRUNC_SAT_BASE + sub) ||
                    !push(c, sub < 4 ? MT_WASM_I32 : MT_WASM_I64))
                    return false;
                break;
            }
            switch (sub) {
            case 8:
            case 9:
                if (!ru32(c, &x))
                    return false;
                if (sub == 8 && !rzero(c))
                    return false;
                if (sub == 8 && m->nmems == 0)
                    return fail(c, "unknown memory 0");
                if (!m->has_datacount)
                    return failf(c, "unknown data segment %u (data count section required)", x);
                if (x >= m->datacount)
                    return failf(c, "unknown data segment %u", x);
                if (sub == 8) {
                    if (!pop(c, I, NULL) || !pop(c, I, NULL) || !pop(c, I, NULL) ||
                        !op1(c, OP_MEMORY_INIT, x))
                        return false;
                } else if (!op1(c, OP_DATA_DROP, x)) {
                    return false;
                }
                break;
            case 10:
            case 11:
                if (!rzero(c) || (sub == 10 && !rzero(c)))
                    return false;
                if (m->nmems == 0)
                    return fail(c, "unknown memory 0");
                if (!pop(c, I, NULL) || !pop(c, I, NULL) || !pop(c, I, NULL) ||
                    !op0(c, sub == 10 ? OP_MEMORY_COPY : OP_MEMORY_FILL))
                    return false;
                break;
            case 12:
                if (!ru32(c, &x) || !ru32(c, &y))
                    return false;
                if (!check_table(c, y))
                    return false;
                if (x >= m->nelems)
                    return failf(c, "unknown elem segment %u", x);
                if (m->elems[x].type != m->tables[y].elem)
                    return fail(c, "type mismatch (table.init)");
                if (!pop(c, I, NULL) || !pop(c, I, NULL) || !pop(c, I, NULL) ||
                    !op2(c, OP_TABLE_INIT, x, y))
                    return false;
                break;
            case 13:
                if (!ru32(c, &x))
                    return false;
                if (x >= m->nelems)
                    return failf(c, "unknown elem segment %u", x);
                if (!op1(c, OP_ELEM_DROP, x))
                    return false;
                break;
            case 14:
                if (!ru32(c, &x) || !ru32(c, &y) || !check_table(c, x) || !check_table(c, y))
                    return false;
                if (m->tables[x].elem != m->tables[y].elem)
                    return fail(c, "type mismatch (table.copy)");
                if (!pop(c, I, NULL) || !pop(c, I, NULL) || !pop(c, I, NULL) ||
                    !op2(c, OP_TABLE_COPY, x, y))
                    return false;
                break;
            case 15:
                if (!ru32(c, &x) || !check_table(c, x))
                    return false;
                if (!pop(c, I, NULL) || !pop(c, m->tables[x].elem, NULL) ||
                    !op1(c, OP_TABLE_GROW, x) || !push(c, I))
                    return false;
                break;
            case 16:
                if (!ru32(c, &x) || !check_table(c, x))
                    return false;
                if (!op1(c, OP_TABLE_SIZE, x) || !push(c, I))
                    return false;
                break;
            case 17:
                if (!ru32(c, &x) || !check_table(c, x))
                    return false;
                if (!pop(c, I, NULL) || !pop(c, m->tables[x].elem, NULL) ||
                    !pop(c, I, NULL) || !op1(c, OP_TABLE_FILL, x))
                    return false;
                break;
            default:
                return fail(c, "illegal opcode (0xFC prefix)");
            }
            break;
        }
        default:
            if (op >= 0x45 && op <= 0xC4) {
                const uint8_t *sig = numeric_sig[op - 0x45];
                uint8_t a = sig[0], b = sig[1], r = sig[2];
                uint32_t n = c->nvals;
                if (b && n >= 2 && n - 2 >= c->h && c->vals[n - 1] == b && c->vals[n - 2] == a) {
                    c->nvals = n - 2; /* both operands in place: the common case */
                } else if ((b && !pop(c, b, NULL)) || !pop(c, a, NULL)) {
                    return false;
                }
                int idx = fb_index(op);
                if (idx >= 0) {
                    if (!emit_binop(c, op, idx))
                        return false;
                } else if (op == 0x45 && tail(c) == TL_GET) {
                    /* local.get a; i32.eqz: kept as is, fused into a branch */
                    size_t pos = c->tpos;
                    if (!op0(c, op))
                        return false;
                    set_tail(c, TL_GET_EQZ, pos);
                } else if (op != 0x45 && tail(c) == TL_GET && c->cells[OP_UNL + op - 0x45]) {
                    /* local.get x; UNOP -> UNL x */
                    c->ir[c->tpos] = c->cells[OP_UNL + op - 0x45];
                    c->tidx = (uint8_t)(op - 0x45);
                    set_tail(c, TL_UN, c->tpos);
                } else {
                    size_t pos = c->len;
                    if (!op0(c, op))
                        return false;
                    if (op == 0x45 && live(c))
                        set_tail(c, TL_EQZ, pos);
                }
                if (!push_hot(c, r))
                    return false;
                break;
            }
            return fail(c, "illegal opcode");
        }
    }
    if (c->pos != c->end)
        return fail(c, "section size mismatch (code after function end)");
    return true;
}

void wasm_scratch_free(wasm_scratch *sc)
{
    free(sc->ir);
    free(sc->vals);
    free(sc->ctls);
    free(sc->locals);
    free(sc->written);
    memset(sc, 0, sizeof *sc);
}

void wasm_scratch_reserve(wasm_scratch *sc, size_t cells)
{
    if (sc->ir || cells < 256 || cells > SIZE_MAX / sizeof *sc->ir)
        return;
    uint64_t *p = malloc(cells * sizeof *p);
    if (!p)
        return;
    sc->ir = p, sc->cap = cells;
#ifdef MADV_HUGEPAGE
    /* A big module's code is megabytes written once, front to back: first
     * touches of 4 KiB pages (a fault each) cost ~15 % of translating it.
     * Transparent huge pages for the 2 MiB-aligned part of the buffer (whole
     * huge pages inside this allocation only) take that to a few faults. A
     * hint: refused or disabled, nothing changes but the time. */
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t hi = ((uintptr_t)p + cells * sizeof *p) & ~(huge - 1);
    if (hi > lo && cells * sizeof *p >= 2 * huge)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#endif
}

void wasm_scratch_take_ir(wasm_scratch *sc, mt_wasm_module *m)
{
    uint64_t *ir = sc->ir;
    /* Give back what the estimate left over: the buffer lives as long as
     * the module and counts against the worker's RLIMIT_AS (its memory
     * limit), so slack there is memory the task cannot have. From 32 MiB
     * on (glibc's largest mmap threshold: the buffer is a mapping of its
     * own) all of it from a page on: the shrinking realloc is an mremap in
     * place, no copy and no hole in the heap. Below that only a quarter or
     * more (dead code, say), so the slack kept is under 8 MiB whatever the
     * module: shrinking a heap chunk for a few percent leaves the allocator
     * a smaller free block than the next module of the same size asks for
     * (the 1 MiB translate benchmark: 4.8 -> 6.0 ms with every shrink). */
    size_t slack = sc->cap - sc->len;
    bool mapped = sc->cap >= ((size_t)32 << 20) / sizeof *ir;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    if (ir && (slack >= sc->cap / 4 || (mapped && slack >= page / sizeof *ir))) {
        uint64_t *p = realloc(ir, (sc->len ? sc->len : 1) * sizeof *ir);
        if (p)
            ir = p;
    }
    m->ir = ir;
    sc->ir = NULL;
    sc->len = sc->cap = 0;
    for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++)
        m->codes[i].ir = ir + m->codes[i].ir_off; /* every body has cells (its OP_FUEL) */
}

mt_status wasm_compile_func(mt_wasm_module *m, uint32_t i, wasm_scratch *sc, mt_err *err)
{
    wasm_code *code = &m->codes[i];
    const wasm_functype *ft = &m->types[m->func_type[m->nfunc_imports + i]];
    comp c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.b = m->bytes;
    c.pos = code->body_off;
    c.end = (size_t)code->body_off + code->body_len;
    c.err = err;
    c.cells = wasm_exec_op_cells();
    /* Each function's code starts on a 64-byte boundary where the buffer
     * has room for the skip (like the start of an allocation of its own, or
     * better): the interpreter's loops span no more cache lines than their
     * size needs. Skipped cells are never read. A buffer that grows later
     * moves, and the earlier functions keep their offsets. */
    if (sc->ir) {
        size_t skip = (size_t)(-(uintptr_t)(sc->ir + sc->len) & 63) / sizeof *sc->ir;
        if (skip <= sc->cap - sc->len)
            sc->len += skip;
    }
    c.sc = sc;
    c.base = sc->len;
    c.ir = sc->ir ? sc->ir + sc->len : NULL, c.cap = sc->cap - sc->len;
    c.vals = sc->vals, c.cap_vals = sc->cap_vals;
    c.ctls = sc->ctls, c.cap_ctls = sc->cap_ctls;
    bool ok = false;
    /* locals */
    uint32_t ngroups;
    uint64_t total = ft->np;
    if (!ru32(&c, &ngroups))
        goto out;
    size_t save = c.pos;
    for (uint32_t g = 0; g < ngroups; g++) {
        uint32_t n;
        uint8_t t;
        if (!ru32(&c, &n) || !rbyte(&c, &t))
            goto out;
        total += n;
        if (total > WASM_MAX_LOCALS) {
            fail(&c, total > UINT32_MAX ? "too many locals"
                                        : "too many locals (the limit is 50000 per function)");
            goto out;
        }
        if (!is_num(t) && !is_ref(t)) {
            fail(&c, "malformed value type");
            goto out;
        }
    }
    if (sc->cap_locals < total + 1) {
        free(sc->locals);
        free(sc->written);
        sc->written = NULL;
        sc->cap_locals = 0;
        if (!(sc->locals = malloc(total + 1))) {
            fail(&c, "out of memory");
            goto out;
        }
        sc->written = malloc(total + 1); /* NULL: no dropped stores, still correct */
        sc->cap_locals = total + 1;
    }
    c.locals = sc->locals;
    memcpy(c.locals, ft->t, ft->np);
    c.nlocals = ft->np;
    c.pos = save;
    for (uint32_t g = 0; g < ngroups; g++) {
        uint32_t n;
        uint8_t t;
        if (!ru32(&c, &n) || !rbyte(&c, &t))
            goto out;
        memset(c.locals + c.nlocals, t, n);
        c.nlocals += n;
    }
    c.max_height = c.nlocals;
    c.nparams = ft->np;
    c.written = sc->written;
    if (c.written)
        memset(c.written, 0, c.nlocals + 1);
    ok = body(&c, ft);
out:
    sc->vals = c.vals, sc->cap_vals = c.cap_vals;
    sc->ctls = c.ctls, sc->cap_ctls = c.cap_ctls;
    if (!ok)
        return c.failed ? MT_EINVAL : mt_err_set(err, MT_EINVAL, "wasm: invalid function");
    sc->len += c.len; /* the cells stay where they were written */
    code->ir_off = c.base;
    code->ir_len = c.len;
    code->nlocals = c.nlocals;
    code->nparams = ft->np;
    code->max_height = c.max_height + 1;
    return MT_OK;
}
