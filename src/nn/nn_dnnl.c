/* nn_dnnl.c: the heavy ONNX operators on oneDNN 2.6's C API (contract: nn_dnnl.h).
 *
 * Structure. Every call validates its parameters, then finds or builds an "entry": the
 * oneDNN primitive(s) for that exact descriptor, up to three steps (reorder the NCHW
 * input into oneDNN's preferred layout, the operator, reorder the output back), the
 * memory objects they use and, for constant weights, the weights already reordered.
 * Entries live in a per-context hash table keyed by (operator, node key, every
 * descriptor field); a call with a NULL key builds a throw-away entry. Caller buffers
 * are bound with dnnl_memory_set_data_handle; the scratchpads of all steps and the
 * blocked copies of src/dst live in one arena per context that only grows, so a warm
 * call allocates nothing in this file (oneDNN's execute keeps a small argument map of
 * its own).
 *
 * Threads. Debian's libdnnl is built with the OpenMP (libgomp) runtime. The context's
 * thread count is applied with omp_set_num_threads() on the calling thread before every
 * build and execute (it is a per-thread setting, and oneDNN sizes its JIT kernels and
 * parallel loops by omp_get_max_threads()). The function is looked up in the libgomp
 * that libdnnl loaded (dlsym), so the build needs no -fopenmp and cannot pull in a second
 * OpenMP runtime. OMP_WAIT_POLICY=PASSIVE has to be in the process environment when
 * libgomp is loaded (it reads it in its constructor, before main): the executor puts it
 * into the worker's otherwise empty environment (docs/nn.md, "oneDNN backend").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include "nn_dnnl.h"
#include "nn_dnnl_priv.h"

#include <dlfcn.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_CONV = 1, OP_GEMM, OP_MATMUL, OP_POOL, OP_BN, OP_LRN, OP_SOFTMAX, OP_UNBLOCK };

struct mt_nn_dnnl_layout {
    dnnl_memory_desc_t md;
};

/* Caller buffers bound per call. */
enum { U_X, U_W, U_B, U_Y, U_MEAN, U_VAR, U_SCALE, U_SHIFT, U_N };

#define KEY_VALS 32
#define MAX_STEPS 3
#define MAX_ARGS 8
#define MAX_MEMS 16
#define BUCKETS 256
#define ALIGN 64
/* Descriptor-keyed entries (no node key) stop being cached beyond this many entries, so
 * a model with ever-changing shapes cannot grow the cache without bound. */
#define MAX_DESC_ENTRIES 4096

typedef struct {
    int64_t op;
    const void *key;
    int64_t v[KEY_VALS];
} ckey;

typedef struct {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
    dnnl_memory_t scratch; /* bound to the arena start, or NULL */
} step;

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    ckey k;
    step steps[MAX_STEPS];
    int nsteps;
    dnnl_memory_t user[U_N];
    dnnl_memory_t mems[MAX_MEMS]; /* every memory object, for destruction */
    int nmems;
    /* arena: [scratch | blocked src | blocked dst] */
    size_t scratch_bytes, src_off, dst_off, arena_need;
    dnnl_memory_t blk_src, blk_dst;
    /* weights in oneDNN's layout (NULL when the plain layout is used directly) */
    dnnl_memory_t wmem;
    void *wbuf;
    size_t wbytes;
    step wreorder;
    bool weights_ready;
    /* Conv with a blocked output kept for the next operator (mt_nn_dnnl_conv_io) */
    mt_nn_dnnl_layout ylayout;
    bool y_blocked;
} entry;

struct mt_nn_dnnl {
    int threads;
    int blocked;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    entry *buckets[BUCKETS];
    size_t nentries;
    void *arena;
    size_t arena_size;
    entry *last;     /* the cached entry the last dispatch ran (NULL: not cached) */
    void *tmp;       /* mt_nn_dnnl_to_plain's buffer */
    size_t tmp_size;
    void (*omp_set)(int);
    int (*omp_get)(void);
    mt_nn_dnnl_stats st;
};

/* ---- errors ------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* oneDNN status -> our code. Parameters were validated before oneDNN sees them, so
 * "invalid arguments" from a descriptor or primitive-descriptor means oneDNN does not
 * cover the case: the engine falls back to its reference kernel. */
static int dfail(char *err, size_t errlen, dnnl_status_t s, const char *op, const char *what)
{
    int code = MT_NN_DNNL_EFAIL;
    if (s == dnnl_unimplemented || s == dnnl_invalid_arguments)
        code = MT_NN_DNNL_EUNSUPPORTED;
    else if (s == dnnl_out_of_memory)
        code = MT_NN_DNNL_ENOMEM;
    return fail(err, errlen, code, "nn_dnnl %s: oneDNN %s failed: %s", op, what,
                dnnl_status2str(s));
}

#define DCK(expr, what)                                                               \
    do {                                                                              \
        dnnl_status_t s_ = (expr);                                                    \
        if (s_ != dnnl_success) {                                                     \
            rc = dfail(err, errlen, s_, opname, what);                                \
            goto out;                                                                 \
        }                                                                             \
    } while (0)

/* Element count of dims[0..nd) with overflow and sanity checks (below 2^40). */
static bool count_ok(const int64_t *dims, int nd)
{
    int64_t t = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 1 || __builtin_mul_overflow(t, dims[i], &t) || t > (INT64_C(1) << 40))
            return false;
    }
    return true;
}

/* ---- threads ------------------------------------------------------------------ */

static void apply_threads(mt_nn_dnnl *ctx)
{
    if (ctx->omp_set)
        ctx->omp_set(ctx->threads);
}

int mt_nn_dnnl_omp_threads(mt_nn_dnnl *ctx)
{
    if (!ctx || !ctx->omp_get)
        return -1;
    apply_threads(ctx);
    return ctx->omp_get();
}

/* ---- context ------------------------------------------------------------------ */

mt_nn_dnnl *mt_nn_dnnl_create(int threads, char *err, size_t errlen)
{
    if (threads < 1 || threads > 1024) {
        fail(err, errlen, MT_NN_DNNL_EINVAL, "nn_dnnl: threads must be in 1..1024");
        return NULL;
    }
    mt_nn_dnnl *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        fail(err, errlen, MT_NN_DNNL_ENOMEM, "nn_dnnl: out of memory");
        return NULL;
    }
    ctx->threads = threads;
    ctx->blocked = 1;
    /* POSIX allows converting dlsym's void * to a function pointer; memcpy keeps
     * -Wpedantic quiet. */
    void *sym = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (sym)
        memcpy(&ctx->omp_set, &sym, sizeof sym);
    sym = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    if (sym)
        memcpy(&ctx->omp_get, &sym, sizeof sym);
    apply_threads(ctx);
    dnnl_status_t s = dnnl_engine_create(&ctx->eng, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&ctx->stream, ctx->eng, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        fail(err, errlen, MT_NN_DNNL_EFAIL, "nn_dnnl: oneDNN CPU engine: %s",
             dnnl_status2str(s));
        mt_nn_dnnl_free(ctx);
        return NULL;
    }
    return ctx;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nsteps; i++) {
        if (e->steps[i].prim)
            dnnl_primitive_destroy(e->steps[i].prim);
    }
    if (e->wreorder.prim)
        dnnl_primitive_destroy(e->wreorder.prim);
    for (int i = 0; i < e->nmems; i++)
        dnnl_memory_destroy(e->mems[i]);
    free(e->wbuf);
    free(e);
}

void mt_nn_dnnl_free(mt_nn_dnnl *ctx)
{
    if (!ctx)
        return;
    for (int b = 0; b < BUCKETS; b++) {
        entry *e = ctx->buckets[b];
        while (e) {
            entry *n = e->next;
            entry_free(e);
            e = n;
        }
    }
    if (ctx->stream)
        dnnl_stream_destroy(ctx->stream);
    if (ctx->eng)
        dnnl_engine_destroy(ctx->eng);
    free(ctx->arena);
    free(ctx->tmp);
    free(ctx);
}

void mt_nn_dnnl_stats_get(const mt_nn_dnnl *ctx, mt_nn_dnnl_stats *out)
{
    if (!ctx || !out)
        return;
    *out = ctx->st;
    out->arena_bytes = ctx->arena_size;
    size_t n = 0, wb = 0;
    for (int b = 0; b < BUCKETS; b++) {
        for (const entry *e = ctx->buckets[b]; e; e = e->next) {
            n++;
            wb += e->wbuf ? e->wbytes : 0;
        }
    }
    out->entries = n;
    out->cached_weight_bytes = wb;
}

void mt_nn_dnnl_set_blocked(mt_nn_dnnl *ctx, int blocked)
{
    if (ctx)
        ctx->blocked = blocked ? 1 : 0;
}

/* ---- cache --------------------------------------------------------------------- */

static uint64_t key_hash(const ckey *k)
{
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof *k; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static entry *cache_find(mt_nn_dnnl *ctx, const ckey *k, uint64_t h)
{
    for (entry *e = ctx->buckets[h % BUCKETS]; e; e = e->next) {
        if (e->hash == h && memcmp(&e->k, k, sizeof *k) == 0)
            return e;
    }
    return NULL;
}

static void cache_put(mt_nn_dnnl *ctx, entry *e)
{
    entry **b = &ctx->buckets[e->hash % BUCKETS];
    e->next = *b;
    *b = e;
    ctx->nentries++;
}

static uint64_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- entry building helpers ---------------------------------------------------- */

static size_t align_up(size_t v)
{
    return (v + ALIGN - 1) / ALIGN * ALIGN;
}

static dnnl_status_t new_mem(entry *e, dnnl_engine_t eng, const dnnl_memory_desc_t *md,
                             dnnl_memory_t *out)
{
    if (e->nmems >= MAX_MEMS)
        return dnnl_runtime_error;
    dnnl_status_t s = dnnl_memory_create(out, md, eng, DNNL_MEMORY_NONE);
    if (s == dnnl_success)
        e->mems[e->nmems++] = *out;
    return s;
}

static dnnl_status_t plain_md(dnnl_memory_desc_t *md, int nd, const int64_t *dims,
                              dnnl_format_tag_t tag)
{
    dnnl_dims_t d;
    for (int i = 0; i < nd; i++)
        d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, nd, d, dnnl_f32, tag);
}

static void add_arg(step *st, int arg, dnnl_memory_t m)
{
    st->args[st->nargs++] = (dnnl_exec_arg_t){arg, m};
}

static void release(dnnl_primitive_desc_t pd, dnnl_primitive_attr_t attr)
{
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
}

/* Creates the primitive of pd as step st (scratchpad bound later to the arena). */
static dnnl_status_t make_step(mt_nn_dnnl *ctx, entry *e, dnnl_primitive_desc_t pd, step *st)
{
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ss = smd ? dnnl_memory_desc_get_size(smd) : 0;
    dnnl_status_t s = dnnl_primitive_create(&st->prim, pd);
    if (s != dnnl_success)
        return s;
    ctx->st.builds++;
    if (ss > 0) {
        s = new_mem(e, ctx->eng, smd, &st->scratch);
        if (s != dnnl_success)
            return s;
        add_arg(st, DNNL_ARG_SCRATCHPAD, st->scratch);
        if (ss > e->scratch_bytes)
            e->scratch_bytes = ss;
    }
    return dnnl_success;
}

static dnnl_status_t user_attr(dnnl_primitive_attr_t *attr)
{
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    return s;
}

/* A reorder from -> to as a step (from/to are memory objects of e). */
static dnnl_status_t make_reorder(mt_nn_dnnl *ctx, entry *e, dnnl_memory_t from,
                                  const dnnl_memory_desc_t *fmd, dnnl_memory_t to,
                                  const dnnl_memory_desc_t *tmd, step *st)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = user_attr(&attr);
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&pd, fmd, ctx->eng, tmd, ctx->eng, attr);
    if (s == dnnl_success) {
        add_arg(st, DNNL_ARG_FROM, from);
        add_arg(st, DNNL_ARG_TO, to);
        s = make_step(ctx, e, pd, st);
    }
    release(pd, attr);
    return s;
}

/* User memory for slot with the plain md umd; if the primitive wants pmd, a blocked
 * arena copy *blk (its size kept in *size until layout_arena). *prim_mem: the memory the
 * primitive uses. */
static dnnl_status_t bind_user(mt_nn_dnnl *ctx, entry *e, int slot,
                               const dnnl_memory_desc_t *umd, const dnnl_memory_desc_t *pmd,
                               dnnl_memory_t *blk, size_t *size, dnnl_memory_t *prim_mem)
{
    dnnl_status_t s = new_mem(e, ctx->eng, umd, &e->user[slot]);
    if (s != dnnl_success)
        return s;
    if (dnnl_memory_desc_equal(umd, pmd)) {
        *prim_mem = e->user[slot];
        return dnnl_success;
    }
    s = new_mem(e, ctx->eng, pmd, blk);
    if (s != dnnl_success)
        return s;
    *size = dnnl_memory_desc_get_size(pmd); /* temporarily: size */
    *prim_mem = *blk;
    return dnnl_success;
}

/* Sets up the src side: user memory for slot U_X with plain md umd; if the primitive
 * wants pmd, a blocked arena copy and a reorder step before the main one. Returns the
 * memory the primitive reads. */
static dnnl_status_t bind_src(mt_nn_dnnl *ctx, entry *e, const dnnl_memory_desc_t *umd,
                              const dnnl_memory_desc_t *pmd, dnnl_memory_t *prim_mem)
{
    dnnl_status_t s = bind_user(ctx, e, U_X, umd, pmd, &e->blk_src, &e->src_off, prim_mem);
    if (s != dnnl_success || !e->blk_src)
        return s;
    return make_reorder(ctx, e, e->user[U_X], umd, e->blk_src, pmd, &e->steps[e->nsteps++]);
}

/* Same for dst: the primitive writes pmd; the caller adds the reorder that writes the
 * user's y after its main step. */
static dnnl_status_t bind_dst(mt_nn_dnnl *ctx, entry *e, const dnnl_memory_desc_t *umd,
                              const dnnl_memory_desc_t *pmd, dnnl_memory_t *prim_mem)
{
    return bind_user(ctx, e, U_Y, umd, pmd, &e->blk_dst, &e->dst_off, prim_mem);
}

/* Weights: the user's plain layout umd, the primitive's pmd. When they differ, an owned
 * buffer in pmd's layout and a reorder run once (cached entries) or per call. */
static dnnl_status_t bind_weights(mt_nn_dnnl *ctx, entry *e, const dnnl_memory_desc_t *umd,
                                  const dnnl_memory_desc_t *pmd, dnnl_memory_t *prim_mem)
{
    dnnl_status_t s = new_mem(e, ctx->eng, umd, &e->user[U_W]);
    if (s != dnnl_success)
        return s;
    if (dnnl_memory_desc_equal(umd, pmd)) {
        *prim_mem = e->user[U_W];
        e->weights_ready = true;
        return dnnl_success;
    }
    s = new_mem(e, ctx->eng, pmd, &e->wmem);
    if (s != dnnl_success)
        return s;
    e->wbytes = dnnl_memory_desc_get_size(pmd);
    if (posix_memalign(&e->wbuf, ALIGN, e->wbytes ? e->wbytes : ALIGN) != 0) {
        e->wbuf = NULL;
        return dnnl_out_of_memory;
    }
    s = dnnl_memory_set_data_handle(e->wmem, e->wbuf);
    if (s != dnnl_success)
        return s;
    *prim_mem = e->wmem;
    return make_reorder(ctx, e, e->user[U_W], umd, e->wmem, pmd, &e->wreorder);
}

/* For builders whose operands are all the caller's plain buffers: a user memory per
 * operand (created in order), no weights reorder, one step running pd over them. */
typedef struct {
    int arg, slot;
    const dnnl_memory_desc_t *md;
} plain_arg;

static int plain_step(mt_nn_dnnl *ctx, entry *e, dnnl_primitive_desc_t pd, const plain_arg *pa,
                      int n, const char *opname, char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; i < n; i++)
        DCK(new_mem(e, ctx->eng, pa[i].md, &e->user[pa[i].slot]), "memory");
    e->weights_ready = true;
    step *main = &e->steps[e->nsteps++];
    for (int i = 0; i < n; i++)
        add_arg(main, pa[i].arg, e->user[pa[i].slot]);
    DCK(make_step(ctx, e, pd, main), "primitive");
out:
    return rc;
}

/* A cache key for op from the values f[0..n) (the caller then appends post-ops). */
static void key_init(ckey *k, int64_t op, const void *key, const int64_t *f, size_t n)
{
    memset(k, 0, sizeof *k);
    k->op = op;
    k->key = key;
    memcpy(k->v, f, n * sizeof f[0]);
}

/* Finishes the arena layout once all steps exist (src_off/dst_off hold sizes). */
static void layout_arena(entry *e)
{
    size_t src_sz = e->src_off, dst_sz = e->dst_off;
    e->src_off = align_up(e->scratch_bytes);
    e->dst_off = align_up(e->src_off + src_sz);
    e->arena_need = e->dst_off + dst_sz;
}

/* ---- execution ----------------------------------------------------------------- */

static int arena_reserve(mt_nn_dnnl *ctx, size_t need, char *err, size_t errlen)
{
    if (need <= ctx->arena_size)
        return 0;
    void *p = NULL;
    if (posix_memalign(&p, 4096, need) != 0)
        return fail(err, errlen, MT_NN_DNNL_ENOMEM, "nn_dnnl: out of memory (arena of %zu bytes)",
                    need);
    free(ctx->arena);
    ctx->arena = p;
    ctx->arena_size = need;
    ctx->st.arena_grows++;
    return 0;
}

static int run_step(mt_nn_dnnl *ctx, step *st, const char *opname, char *err, size_t errlen)
{
    int rc = 0;
    if (st->scratch)
        DCK(dnnl_memory_set_data_handle(st->scratch, ctx->arena), "scratchpad binding");
    DCK(dnnl_primitive_execute(st->prim, ctx->stream, st->nargs, st->args), "execute");
out:
    return rc;
}

/* Binds the caller's buffers and the arena, reorders weights if needed, runs the steps. */
static int entry_run(mt_nn_dnnl *ctx, entry *e, void *const ptrs[U_N], const char *opname,
                     char *err, size_t errlen)
{
    int rc = arena_reserve(ctx, e->arena_need > 0 ? e->arena_need : 0, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < U_N; i++) {
        if (e->user[i])
            DCK(dnnl_memory_set_data_handle(e->user[i], ptrs[i]), "buffer binding");
    }
    char *base = ctx->arena;
    if (e->blk_src)
        DCK(dnnl_memory_set_data_handle(e->blk_src, base + e->src_off), "buffer binding");
    if (e->blk_dst)
        DCK(dnnl_memory_set_data_handle(e->blk_dst, base + e->dst_off), "buffer binding");
    if (!e->weights_ready) {
        rc = run_step(ctx, &e->wreorder, opname, err, errlen);
        if (rc)
            goto out;
        ctx->st.weight_reorders++;
        e->weights_ready = true;
    }
    for (int i = 0; i < e->nsteps; i++) {
        rc = run_step(ctx, &e->steps[i], opname, err, errlen);
        if (rc)
            goto out;
    }
    DCK(dnnl_stream_wait(ctx->stream), "stream wait");
out:
    return rc;
}

/* Looks k up (cacheable) or builds a new entry with build(); runs it with ptrs. */
typedef int (*build_fn)(mt_nn_dnnl *ctx, entry *e, const void *arg, char *err, size_t errlen);

static int dispatch(mt_nn_dnnl *ctx, const ckey *k, bool cacheable, build_fn build,
                    const void *arg, void *const ptrs[U_N], const char *opname, char *err,
                    size_t errlen)
{
    apply_threads(ctx);
    if (cacheable && !k->key && ctx->nentries >= MAX_DESC_ENTRIES)
        cacheable = cache_find(ctx, k, key_hash(k)) != NULL;
    uint64_t h = key_hash(k);
    entry *e = cacheable ? cache_find(ctx, k, h) : NULL;
    bool fresh = false;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e)
            return fail(err, errlen, MT_NN_DNNL_ENOMEM, "nn_dnnl %s: out of memory", opname);
        e->k = *k;
        e->hash = h;
        int rc = build(ctx, e, arg, err, errlen);
        if (rc) {
            entry_free(e);
            return rc;
        }
        layout_arena(e);
        fresh = true;
    }
    int rc = entry_run(ctx, e, ptrs, opname, err, errlen);
    ctx->last = NULL;
    if (fresh) {
        if (cacheable && rc == 0) {
            cache_put(ctx, e);
            ctx->last = e;
        } else {
            entry_free(e);
        }
    } else if (rc == 0) {
        ctx->last = e;
    }
    return rc;
}

static dnnl_status_t post_ops_attr(dnnl_primitive_attr_t attr, const mt_nn_post *p, bool sum)
{
    if (!sum && p->kind == MT_NN_POST_NONE)
        return dnnl_success;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s = dnnl_post_ops_create(&po);
    if (s == dnnl_success && sum)
        s = dnnl_post_ops_append_sum(po, 1.0f);
    if (s == dnnl_success) {
        switch (p->kind) {
        case MT_NN_POST_RELU:
            s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
            break;
        case MT_NN_POST_LEAKY_RELU:
            s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, p->alpha, 0.0f);
            break;
        case MT_NN_POST_CLIP:
            s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, p->lo, p->hi);
            break;
        case MT_NN_POST_NONE:
            break;
        }
    }
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_post_ops(attr, po);
    if (po)
        dnnl_post_ops_destroy(po);
    return s;
}

static int check_post(const mt_nn_post *p, const char *opname, char *err, size_t errlen)
{
    switch (p->kind) {
    case MT_NN_POST_NONE:
    case MT_NN_POST_RELU:
        return 0;
    case MT_NN_POST_CLIP:
        if (isnan(p->lo) || isnan(p->hi) || p->lo > p->hi)
            return fail(err, errlen, MT_NN_DNNL_EINVAL,
                        "nn_dnnl %s: post.lo/post.hi must be numbers with lo <= hi", opname);
        return 0;
    case MT_NN_POST_LEAKY_RELU:
        if (!isfinite(p->alpha))
            return fail(err, errlen, MT_NN_DNNL_EINVAL,
                        "nn_dnnl %s: post.alpha must be finite", opname);
        return 0;
    }
    return fail(err, errlen, MT_NN_DNNL_EINVAL, "nn_dnnl %s: post.kind is not a known kind",
                opname);
}

static void key_post(ckey *k, int i, const mt_nn_post *p)
{
    k->v[i] = p->kind;
    k->v[i + 1] = (int64_t)(fbits(p->lo) | (fbits(p->hi) << 32));
    k->v[i + 2] = (int64_t)fbits(p->alpha);
}

#define BAD(name, cond)                                                              \
    do {                                                                             \
        if (cond)                                                                    \
            return fail(err, errlen, MT_NN_DNNL_EINVAL, "nn_dnnl %s: %s", opname, name); \
    } while (0)

/* ---- Conv / ConvTranspose ------------------------------------------------------ */

typedef struct {
    const mt_nn_conv_desc *d;
    bool bias;
    const mt_nn_dnnl_layout *xl; /* x's layout, NULL: NCHW */
    size_t y_cap;                /* > 0: y may stay in the primitive's layout */
} conv_arg;

static int build_conv(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    const conv_arg *a = argp;
    const mt_nn_conv_desc *d = a->d;
    const char *opname = d->transposed ? "ConvTranspose" : "Conv";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int64_t g = d->group;
    int64_t xd[4] = {d->n, d->c, d->h, d->w}, yd[4] = {d->n, d->m, d->oh, d->ow};
    dnnl_memory_desc_t xmd, ymd, wmd, bmd, xany, yany, wany;
    int wnd = g > 1 ? 5 : 4;
    int64_t wd[5];
    if (g > 1) {
        wd[0] = g; wd[1] = d->m / g; wd[2] = d->c / g; wd[3] = d->kh; wd[4] = d->kw;
    } else {
        wd[0] = d->m; wd[1] = d->c; wd[2] = d->kh; wd[3] = d->kw;
    }
    dnnl_format_tag_t wtag = d->transposed ? (g > 1 ? dnnl_giohw : dnnl_iohw)
                                           : (g > 1 ? dnnl_goihw : dnnl_oihw);
    DCK(plain_md(&xmd, 4, xd, dnnl_nchw), "memory descriptor");
    DCK(plain_md(&ymd, 4, yd, dnnl_nchw), "memory descriptor");
    DCK(plain_md(&wmd, wnd, wd, wtag), "memory descriptor");
    DCK(plain_md(&wany, wnd, wd, dnnl_format_tag_any), "memory descriptor");
    DCK(plain_md(&bmd, 1, &d->m, dnnl_a), "memory descriptor");
    if (ctx->blocked) {
        DCK(plain_md(&xany, 4, xd, dnnl_format_tag_any), "memory descriptor");
        DCK(plain_md(&yany, 4, yd, dnnl_format_tag_any), "memory descriptor");
    } else {
        xany = xmd;
        yany = ymd;
    }
    dnnl_dims_t strides = {d->stride_h, d->stride_w};
    dnnl_dims_t dil = {d->dil_h - 1, d->dil_w - 1};
    dnnl_dims_t pl = {d->pad_t, d->pad_l};
    dnnl_dims_t pr = {d->pad_b - (d->transposed ? d->out_pad_h : 0),
                      d->pad_r - (d->transposed ? d->out_pad_w : 0)};
    const dnnl_memory_desc_t *bp = a->bias ? &bmd : NULL;
    DCK(user_attr(&attr), "attributes");
    DCK(post_ops_attr(attr, &d->post, false), "post-ops");
    if (d->transposed) {
        dnnl_deconvolution_desc_t cd;
        DCK(dnnl_dilated_deconvolution_forward_desc_init(&cd, dnnl_forward_inference,
                dnnl_deconvolution_direct, &xany, &wany, bp, &yany, strides, dil, pl, pr),
            "deconvolution descriptor");
        DCK(dnnl_primitive_desc_create(&pd, &cd, attr, ctx->eng, NULL), "primitive descriptor");
    } else {
        dnnl_convolution_desc_t cd;
        DCK(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                dnnl_convolution_direct, &xany, &wany, bp, &yany, strides, dil, pl, pr),
            "convolution descriptor");
        DCK(dnnl_primitive_desc_create(&pd, &cd, attr, ctx->eng, NULL), "primitive descriptor");
    }
    const dnnl_memory_desc_t *psrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_memory_t msrc, mw, mdst;
    const dnnl_memory_desc_t *xuser = a->xl ? &a->xl->md : &xmd;
    DCK(bind_src(ctx, e, xuser, psrc, &msrc), "source reorder");
    DCK(bind_weights(ctx, e, &wmd, pw, &mw), "weights reorder");
    /* the output stays in the primitive's layout when the caller has room for it */
    e->y_blocked = a->y_cap > 0 && !dnnl_memory_desc_equal(&ymd, pdst) &&
                   dnnl_memory_desc_get_size(pdst) <= a->y_cap;
    if (e->y_blocked)
        e->ylayout.md = *pdst;
    DCK(bind_dst(ctx, e, e->y_blocked ? pdst : &ymd, pdst, &mdst), "destination");
    step *main = &e->steps[e->nsteps++];
    add_arg(main, DNNL_ARG_SRC, msrc);
    add_arg(main, DNNL_ARG_WEIGHTS, mw);
    add_arg(main, DNNL_ARG_DST, mdst);
    if (a->bias) {
        DCK(new_mem(e, ctx->eng, &bmd, &e->user[U_B]), "memory");
        add_arg(main, DNNL_ARG_BIAS, e->user[U_B]);
    }
    DCK(make_step(ctx, e, pd, main), "primitive");
    if (e->blk_dst)
        DCK(make_reorder(ctx, e, e->blk_dst, pdst, e->user[U_Y], &ymd,
                         &e->steps[e->nsteps++]),
            "destination reorder");
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_conv(mt_nn_dnnl *ctx, const void *key, const mt_nn_conv_desc *d,
                    const float *x, const float *w, const float *bias, float *y,
                    char *err, size_t errlen)
{
    mt_nn_dnnl_io io = {NULL, 0, NULL};
    return mt_nn_dnnl_conv_io(ctx, key, d, x, w, bias, y, &io, err, errlen);
}

int mt_nn_dnnl_conv_io(mt_nn_dnnl *ctx, const void *key, const mt_nn_conv_desc *d,
                       const float *x, const float *w, const float *bias, float *y,
                       mt_nn_dnnl_io *io, char *err, size_t errlen)
{
    const char *opname = d && d->transposed ? "ConvTranspose" : "Conv";
    BAD("ctx is NULL", !ctx);
    BAD("desc is NULL", !d);
    BAD("x is NULL", !x);
    BAD("w is NULL", !w);
    BAD("y is NULL", !y);
    BAD("n, c, h, w must be >= 1", d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1);
    BAD("m must be >= 1", d->m < 1);
    BAD("oh, ow must be >= 1", d->oh < 1 || d->ow < 1);
    BAD("kh, kw must be >= 1", d->kh < 1 || d->kw < 1);
    BAD("group must be >= 1 and divide c and m",
        d->group < 1 || d->c % d->group != 0 || d->m % d->group != 0);
    BAD("stride_h, stride_w must be >= 1", d->stride_h < 1 || d->stride_w < 1);
    BAD("dil_h, dil_w must be >= 1", d->dil_h < 1 || d->dil_w < 1);
    /* ConvTranspose with an explicit output_shape can need negative pads (a larger
     * output): the engine's reference kernel does those */
    if (d->transposed == 1 && (d->pad_t < 0 || d->pad_l < 0 || d->pad_b < 0 || d->pad_r < 0))
        return fail(err, errlen, MT_NN_DNNL_EUNSUPPORTED,
                    "nn_dnnl ConvTranspose: negative pads are not supported");
    BAD("pad_t, pad_l, pad_b, pad_r must be >= 0",
        d->pad_t < 0 || d->pad_l < 0 || d->pad_b < 0 || d->pad_r < 0);
    BAD("transposed must be 0 or 1", d->transposed != 0 && d->transposed != 1);
    int64_t in4[4] = {d->n, d->c, d->h, d->w}, out4[4] = {d->n, d->m, d->oh, d->ow};
    int64_t w4[4] = {d->m, d->c / d->group, d->kh, d->kw};
    BAD("tensor sizes overflow", !count_ok(in4, 4) || !count_ok(out4, 4) || !count_ok(w4, 4));
    BAD("kernel, dilation or pads too large",
        d->kh > (INT64_C(1) << 20) || d->kw > (INT64_C(1) << 20) ||
            d->dil_h > (INT64_C(1) << 20) || d->dil_w > (INT64_C(1) << 20) ||
            d->pad_t > (INT64_C(1) << 30) || d->pad_b > (INT64_C(1) << 30) ||
            d->pad_l > (INT64_C(1) << 30) || d->pad_r > (INT64_C(1) << 30) ||
            d->stride_h > (INT64_C(1) << 30) || d->stride_w > (INT64_C(1) << 30));
    int64_t ekh = (d->kh - 1) * d->dil_h + 1, ekw = (d->kw - 1) * d->dil_w + 1;
    if (d->transposed) {
        BAD("out_pad_h, out_pad_w must be >= 0 and below max(stride, dilation)",
            d->out_pad_h < 0 || d->out_pad_w < 0 ||
                (d->out_pad_h >= d->stride_h && d->out_pad_h >= d->dil_h) ||
                (d->out_pad_w >= d->stride_w && d->out_pad_w >= d->dil_w));
        BAD("oh does not match stride_h*(h-1)+out_pad_h+(kh-1)*dil_h+1-pad_t-pad_b",
            d->oh != d->stride_h * (d->h - 1) + d->out_pad_h + ekh - d->pad_t - d->pad_b);
        BAD("ow does not match stride_w*(w-1)+out_pad_w+(kw-1)*dil_w+1-pad_l-pad_r",
            d->ow != d->stride_w * (d->w - 1) + d->out_pad_w + ekw - d->pad_l - d->pad_r);
    } else {
        BAD("out_pad_h, out_pad_w must be 0 for Conv", d->out_pad_h != 0 || d->out_pad_w != 0);
        BAD("kernel (with dilation) larger than the padded input height",
            d->h + d->pad_t + d->pad_b < ekh);
        BAD("kernel (with dilation) larger than the padded input width",
            d->w + d->pad_l + d->pad_r < ekw);
        BAD("oh does not match (h+pad_t+pad_b-(kh-1)*dil_h-1)/stride_h+1",
            d->oh != (d->h + d->pad_t + d->pad_b - ekh) / d->stride_h + 1);
        BAD("ow does not match (w+pad_l+pad_r-(kw-1)*dil_w-1)/stride_w+1",
            d->ow != (d->w + d->pad_l + d->pad_r - ekw) / d->stride_w + 1);
    }
    int rc = check_post(&d->post, opname, err, errlen);
    if (rc)
        return rc;

    const int64_t f[] = {d->n, d->c, d->h, d->w, d->m, d->oh, d->ow, d->kh, d->kw, d->group,
                         d->stride_h, d->stride_w, d->dil_h, d->dil_w, d->pad_t, d->pad_l,
                         d->pad_b, d->pad_r, d->transposed, d->out_pad_h, d->out_pad_w,
                         bias != NULL, ctx->blocked, 0, 0};
    BAD("io is NULL", !io);
    io->y_layout = NULL;
    /* a kept output layout lives in the cached entry: only with a node key */
    size_t y_cap = key ? io->y_cap : 0;
    const size_t nf = sizeof f / sizeof f[0];
    ckey k;
    key_init(&k, OP_CONV, key, f, nf);
    k.v[nf - 2] = (int64_t)(uintptr_t)io->x_layout;
    k.v[nf - 1] = (int64_t)y_cap;
    key_post(&k, (int)nf, &d->post);
    conv_arg a = {d, bias != NULL, io->x_layout, y_cap};
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)x;
    ptrs[U_W] = (void *)w;
    ptrs[U_B] = (void *)bias;
    ptrs[U_Y] = y;
    rc = dispatch(ctx, &k, key != NULL, build_conv, &a, ptrs, opname, err, errlen);
    if (rc == 0 && ctx->last && ctx->last->y_blocked) {
        io->y_layout = &ctx->last->ylayout;
        ctx->st.blocked_outputs++;
    }
    return rc;
}

/* ---- layouts back to NCHW ------------------------------------------------------- */

static int build_unblock(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    const mt_nn_dnnl_layout *l = argp;
    const char *opname = "to_plain";
    int rc = 0;
    dnnl_memory_desc_t ymd;
    DCK(dnnl_memory_desc_init_by_tag(&ymd, l->md.ndims, l->md.dims, dnnl_f32, dnnl_nchw),
        "memory descriptor");
    DCK(new_mem(e, ctx->eng, &l->md, &e->user[U_X]), "memory");
    DCK(new_mem(e, ctx->eng, &ymd, &e->user[U_Y]), "memory");
    e->weights_ready = true;
    DCK(make_reorder(ctx, e, e->user[U_X], &l->md, e->user[U_Y], &ymd, &e->steps[e->nsteps++]),
        "reorder");
out:
    return rc;
}

int mt_nn_dnnl_to_plain(mt_nn_dnnl *ctx, const mt_nn_dnnl_layout *l, float *buf, char *err,
                        size_t errlen)
{
    const char *opname = "to_plain";
    BAD("ctx is NULL", !ctx);
    BAD("buf is NULL", !buf);
    if (!l)
        return 0;
    BAD("layout is not 4-D", l->md.ndims != 4);
    size_t bytes = sizeof(float);
    for (int i = 0; i < 4; i++)
        bytes *= (size_t)l->md.dims[i];
    if (bytes > ctx->tmp_size) {
        void *p = NULL;
        if (posix_memalign(&p, 4096, bytes) != 0)
            return fail(err, errlen, MT_NN_DNNL_ENOMEM, "nn_dnnl to_plain: out of memory");
        free(ctx->tmp);
        ctx->tmp = p;
        ctx->tmp_size = bytes;
    }
    const int64_t f[1] = {4};
    ckey k;
    key_init(&k, OP_UNBLOCK, l, f, 1);
    void *ptrs[U_N] = {0};
    ptrs[U_X] = buf;
    ptrs[U_Y] = ctx->tmp;
    int rc = dispatch(ctx, &k, true, build_unblock, l, ptrs, opname, err, errlen);
    if (rc == 0) {
        memcpy(buf, ctx->tmp, bytes);
        ctx->st.to_plain++;
    }
    return rc;
}

/* ---- Gemm ------------------------------------------------------------------------ */

static int build_gemm(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    const mt_nn_gemm_desc *d = ((const mt_nn_gemm_desc *const *)argp)[0];
    bool sum = ((const void *const *)argp)[1] != NULL;
    const char *opname = "Gemm";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t amd, bmd, bany, ymd;
    dnnl_dims_t ad = {d->m, d->k}, bd = {d->k, d->n}, yd = {d->m, d->n};
    dnnl_dims_t as = {d->trans_a ? 1 : d->k, d->trans_a ? d->m : 1};
    dnnl_dims_t bs = {d->trans_b ? 1 : d->n, d->trans_b ? d->k : 1};
    DCK(dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_f32, as), "memory descriptor");
    DCK(dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_f32, bs), "memory descriptor");
    DCK(dnnl_memory_desc_init_by_tag(&bany, 2, bd, dnnl_f32,
                                     e->k.key ? dnnl_format_tag_any : dnnl_ab),
        "memory descriptor");
    if (!e->k.key)
        bany = bmd;
    DCK(dnnl_memory_desc_init_by_tag(&ymd, 2, yd, dnnl_f32, dnnl_ab), "memory descriptor");
    DCK(user_attr(&attr), "attributes");
    if (d->alpha != 1.0f)
        DCK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &d->alpha), "output scale");
    DCK(post_ops_attr(attr, &d->post, sum), "post-ops");
    dnnl_matmul_desc_t md;
    DCK(dnnl_matmul_desc_init(&md, &amd, &bany, NULL, &ymd), "matmul descriptor");
    DCK(dnnl_primitive_desc_create(&pd, &md, attr, ctx->eng, NULL), "primitive descriptor");
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *psrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    dnnl_memory_t msrc, mw;
    DCK(bind_src(ctx, e, &amd, psrc, &msrc), "source reorder");
    DCK(bind_weights(ctx, e, &bmd, pw, &mw), "weights reorder");
    DCK(new_mem(e, ctx->eng, &ymd, &e->user[U_Y]), "memory");
    step *main = &e->steps[e->nsteps++];
    add_arg(main, DNNL_ARG_SRC, msrc);
    add_arg(main, DNNL_ARG_WEIGHTS, mw);
    add_arg(main, DNNL_ARG_DST, e->user[U_Y]);
    DCK(make_step(ctx, e, pd, main), "primitive");
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_gemm(mt_nn_dnnl *ctx, const void *key, const mt_nn_gemm_desc *d,
                    const float *a, const float *b, const float *c, float *y,
                    char *err, size_t errlen)
{
    const char *opname = "Gemm";
    BAD("ctx is NULL", !ctx);
    BAD("desc is NULL", !d);
    BAD("a is NULL", !a);
    BAD("b is NULL", !b);
    BAD("y is NULL", !y);
    BAD("m, k, n must be >= 1", d->m < 1 || d->k < 1 || d->n < 1);
    int64_t ak[2] = {d->m, d->k}, bk[2] = {d->k, d->n}, yk[2] = {d->m, d->n};
    BAD("tensor sizes overflow", !count_ok(ak, 2) || !count_ok(bk, 2) || !count_ok(yk, 2));
    BAD("trans_a, trans_b must be 0 or 1",
        (d->trans_a != 0 && d->trans_a != 1) || (d->trans_b != 0 && d->trans_b != 1));
    BAD("alpha, beta must be finite", !isfinite(d->alpha) || !isfinite(d->beta));
    if (c) {
        BAD("c_rows must be 1 or m", d->c_rows != 1 && d->c_rows != d->m);
        BAD("c_cols must be 1 or n", d->c_cols != 1 && d->c_cols != d->n);
    }
    int rc = check_post(&d->post, opname, err, errlen);
    if (rc)
        return rc;
    bool sum = c != NULL && d->beta != 0.0f;
    /* beta * C broadcast into y; the matmul then adds alpha * op(A) op(B) (sum post-op) */
    if (sum) {
        int64_t rs = d->c_rows == 1 ? 0 : d->c_cols, cs = d->c_cols == 1 ? 0 : 1;
        for (int64_t i = 0; i < d->m; i++) {
            const float *cr = c + i * rs;
            float *yr = y + i * d->n;
            for (int64_t j = 0; j < d->n; j++)
                yr[j] = d->beta * cr[j * cs];
        }
    }
    const int64_t f[] = {d->m, d->k, d->n, d->trans_a, d->trans_b, (int64_t)fbits(d->alpha),
                         sum};
    ckey k;
    key_init(&k, OP_GEMM, key, f, sizeof f / sizeof f[0]);
    key_post(&k, (int)(sizeof f / sizeof f[0]), &d->post);
    const void *arg[2] = {d, sum ? (const void *)c : NULL};
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)a;
    ptrs[U_W] = (void *)b;
    ptrs[U_Y] = y;
    return dispatch(ctx, &k, key != NULL, build_gemm, arg, ptrs, opname, err, errlen);
}

/* ---- MatMul -------------------------------------------------------------------- */

static int build_matmul(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    (void)argp;
    const char *opname = "MatMul";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const int64_t *v = e->k.v; /* batch, a_batch, b_batch, m, k, n */
    dnnl_dims_t ad = {v[1], v[3], v[4]}, bd = {v[2], v[4], v[5]}, yd = {v[0], v[3], v[5]};
    dnnl_memory_desc_t amd, bmd, ymd;
    DCK(dnnl_memory_desc_init_by_tag(&amd, 3, ad, dnnl_f32, dnnl_abc), "memory descriptor");
    DCK(dnnl_memory_desc_init_by_tag(&bmd, 3, bd, dnnl_f32, dnnl_abc), "memory descriptor");
    DCK(dnnl_memory_desc_init_by_tag(&ymd, 3, yd, dnnl_f32, dnnl_abc), "memory descriptor");
    DCK(user_attr(&attr), "attributes");
    dnnl_matmul_desc_t md;
    DCK(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &ymd), "matmul descriptor");
    DCK(dnnl_primitive_desc_create(&pd, &md, attr, ctx->eng, NULL), "primitive descriptor");
    /* B is used in place: MatMul operands may change per call */
    const plain_arg pa[] = {
        {DNNL_ARG_SRC, U_X, &amd}, {DNNL_ARG_WEIGHTS, U_W, &bmd}, {DNNL_ARG_DST, U_Y, &ymd}};
    rc = plain_step(ctx, e, pd, pa, (int)(sizeof pa / sizeof pa[0]), opname, err, errlen);
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_matmul(mt_nn_dnnl *ctx, const void *key, int64_t batch, int64_t a_batch,
                      int64_t b_batch, int64_t m, int64_t k, int64_t n, const float *a,
                      const float *b, float *y, char *err, size_t errlen)
{
    const char *opname = "MatMul";
    BAD("ctx is NULL", !ctx);
    BAD("a is NULL", !a);
    BAD("b is NULL", !b);
    BAD("y is NULL", !y);
    BAD("batch, m, k, n must be >= 1", batch < 1 || m < 1 || k < 1 || n < 1);
    BAD("a_batch must be 1 or batch", a_batch != 1 && a_batch != batch);
    BAD("b_batch must be 1 or batch", b_batch != 1 && b_batch != batch);
    int64_t ad[3] = {a_batch, m, k}, bd[3] = {b_batch, k, n}, yd[3] = {batch, m, n};
    BAD("tensor sizes overflow", !count_ok(ad, 3) || !count_ok(bd, 3) || !count_ok(yd, 3));
    const int64_t f[] = {batch, a_batch, b_batch, m, k, n};
    ckey kk;
    key_init(&kk, OP_MATMUL, key, f, sizeof f / sizeof f[0]);
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)a;
    ptrs[U_W] = (void *)b;
    ptrs[U_Y] = y;
    return dispatch(ctx, &kk, key != NULL, build_matmul, NULL, ptrs, opname, err, errlen);
}

/* ---- Pooling ----------------------------------------------------------------- */

static int build_pool(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    const mt_nn_pool_desc *d = ((const mt_nn_pool_desc *const *)argp)[0];
    const int64_t *pr2 = ((const int64_t *const *)argp)[1];
    const char *opname = d->max ? "MaxPool" : "AveragePool";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int64_t xd[4] = {d->n, d->c, d->h, d->w}, yd[4] = {d->n, d->c, d->oh, d->ow};
    dnnl_memory_desc_t xmd, ymd;
    DCK(plain_md(&xmd, 4, xd, dnnl_nchw), "memory descriptor");
    DCK(plain_md(&ymd, 4, yd, dnnl_nchw), "memory descriptor");
    dnnl_dims_t strides = {d->stride_h, d->stride_w}, ker = {d->kh, d->kw};
    dnnl_dims_t dil = {d->dil_h - 1, d->dil_w - 1}, pl = {d->pad_t, d->pad_l};
    dnnl_dims_t pr = {pr2[0], pr2[1]};
    dnnl_alg_kind_t alg = d->max ? dnnl_pooling_max
                        : d->avg_include_pad ? dnnl_pooling_avg_include_padding
                                             : dnnl_pooling_avg_exclude_padding;
    DCK(user_attr(&attr), "attributes");
    dnnl_pooling_v2_desc_t pdsc;
    DCK(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &xmd, &ymd,
                                          strides, ker, dil, pl, pr),
        "pooling descriptor");
    DCK(dnnl_primitive_desc_create(&pd, &pdsc, attr, ctx->eng, NULL), "primitive descriptor");
    const plain_arg pa[] = {{DNNL_ARG_SRC, U_X, &xmd}, {DNNL_ARG_DST, U_Y, &ymd}};
    rc = plain_step(ctx, e, pd, pa, (int)(sizeof pa / sizeof pa[0]), opname, err, errlen);
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_pool(mt_nn_dnnl *ctx, const mt_nn_pool_desc *d, const float *x, float *y,
                    char *err, size_t errlen)
{
    const char *opname = d && d->max ? "MaxPool" : "AveragePool";
    BAD("ctx is NULL", !ctx);
    BAD("desc is NULL", !d);
    BAD("x is NULL", !x);
    BAD("y is NULL", !y);
    BAD("max must be 0 or 1", d->max != 0 && d->max != 1);
    BAD("avg_include_pad must be 0 or 1", d->avg_include_pad != 0 && d->avg_include_pad != 1);
    BAD("n, c, h, w must be >= 1", d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1);
    BAD("oh, ow must be >= 1", d->oh < 1 || d->ow < 1);
    BAD("kh, kw must be >= 1", d->kh < 1 || d->kw < 1);
    BAD("stride_h, stride_w must be >= 1", d->stride_h < 1 || d->stride_w < 1);
    BAD("dil_h, dil_w must be >= 1", d->dil_h < 1 || d->dil_w < 1);
    BAD("pad_t, pad_l, pad_b, pad_r must be >= 0",
        d->pad_t < 0 || d->pad_l < 0 || d->pad_b < 0 || d->pad_r < 0);
    int64_t xd[4] = {d->n, d->c, d->h, d->w}, yd[4] = {d->n, d->c, d->oh, d->ow};
    BAD("tensor sizes overflow", !count_ok(xd, 4) || !count_ok(yd, 4));
    const int64_t lim = INT64_C(1) << 30;
    BAD("kernel, stride, dilation or pads too large",
        d->kh > lim || d->kw > lim || d->stride_h > lim || d->stride_w > lim ||
            d->dil_h > lim || d->dil_w > lim || d->pad_t > lim || d->pad_b > lim ||
            d->pad_l > lim || d->pad_r > lim);
    BAD("pads must be smaller than the kernel",
        d->pad_t >= d->kh * d->dil_h || d->pad_b >= d->kh * d->dil_h ||
            d->pad_l >= d->kw * d->dil_w || d->pad_r >= d->kw * d->dil_w);
    int64_t ekh = (d->kh - 1) * d->dil_h + 1, ekw = (d->kw - 1) * d->dil_w + 1;
    int64_t sh = d->h + d->pad_t + d->pad_b - ekh, sw = d->w + d->pad_l + d->pad_r - ekw;
    BAD("kernel (with dilation) larger than the padded input", sh < 0 || sw < 0);
    int64_t fh = sh / d->stride_h + 1, fw = sw / d->stride_w + 1;
    int64_t ch = (sh + d->stride_h - 1) / d->stride_h + 1;
    int64_t cw = (sw + d->stride_w - 1) / d->stride_w + 1;
    BAD("oh must be the floor or ceil output height", d->oh != fh && d->oh != ch);
    BAD("ow must be the floor or ceil output width", d->ow != fw && d->ow != cw);
    /* ceil_mode: extend the right/bottom padding to cover the last window */
    int64_t pr[2] = {d->pad_b, d->pad_r};
    if (d->oh != fh)
        pr[0] = (d->oh - 1) * d->stride_h + ekh - d->h - d->pad_t;
    if (d->ow != fw)
        pr[1] = (d->ow - 1) * d->stride_w + ekw - d->w - d->pad_l;
    if ((pr[0] > d->pad_b || pr[1] > d->pad_r) && !d->max && d->avg_include_pad)
        return fail(err, errlen, MT_NN_DNNL_EUNSUPPORTED,
                    "nn_dnnl AveragePool: ceil_mode with count_include_pad is not covered");
    const int64_t f[] = {d->max, d->avg_include_pad, d->n, d->c, d->h, d->w, d->oh, d->ow,
                         d->kh, d->kw, d->stride_h, d->stride_w, d->dil_h, d->dil_w,
                         d->pad_t, d->pad_l, d->pad_b, d->pad_r};
    ckey k;
    key_init(&k, OP_POOL, NULL, f, sizeof f / sizeof f[0]);
    const void *arg[2] = {d, pr};
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)x;
    ptrs[U_Y] = y;
    return dispatch(ctx, &k, true, build_pool, arg, ptrs, opname, err, errlen);
}

/* ---- BatchNormalization -------------------------------------------------------- */

static int build_bn(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    (void)argp;
    const char *opname = "BatchNormalization";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const int64_t *v = e->k.v; /* n, c, s, eps bits */
    float eps;
    uint32_t eb = (uint32_t)v[3];
    memcpy(&eps, &eb, sizeof eps);
    dnnl_memory_desc_t xmd, cmd;
    int64_t xd[3] = {v[0], v[1], v[2]};
    DCK(plain_md(&xmd, 3, xd, dnnl_abc), "memory descriptor");
    DCK(plain_md(&cmd, 1, &v[1], dnnl_a), "memory descriptor");
    DCK(user_attr(&attr), "attributes");
    dnnl_batch_normalization_desc_t bd;
    DCK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &xmd, eps,
            dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift),
        "batch normalization descriptor");
    DCK(dnnl_primitive_desc_create(&pd, &bd, attr, ctx->eng, NULL), "primitive descriptor");
    const plain_arg pa[] = {
        {DNNL_ARG_SRC, U_X, &xmd},       {DNNL_ARG_DST, U_Y, &xmd},
        {DNNL_ARG_MEAN, U_MEAN, &cmd},   {DNNL_ARG_VARIANCE, U_VAR, &cmd},
        {DNNL_ARG_SCALE, U_SCALE, &cmd}, {DNNL_ARG_SHIFT, U_SHIFT, &cmd},
    };
    rc = plain_step(ctx, e, pd, pa, (int)(sizeof pa / sizeof pa[0]), opname, err, errlen);
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_batchnorm(mt_nn_dnnl *ctx, int64_t n, int64_t c, int64_t s, float eps,
                         const float *scale, const float *bias, const float *mean,
                         const float *var, const float *x, float *y, char *err,
                         size_t errlen)
{
    const char *opname = "BatchNormalization";
    BAD("ctx is NULL", !ctx);
    BAD("scale is NULL", !scale);
    BAD("bias is NULL", !bias);
    BAD("mean is NULL", !mean);
    BAD("var is NULL", !var);
    BAD("x is NULL", !x);
    BAD("y is NULL", !y);
    BAD("n, c, s must be >= 1", n < 1 || c < 1 || s < 1);
    int64_t xd[3] = {n, c, s};
    BAD("tensor sizes overflow", !count_ok(xd, 3));
    BAD("epsilon must be finite and >= 0", !isfinite(eps) || eps < 0.0f);
    const int64_t f[] = {n, c, s, (int64_t)fbits(eps)};
    ckey k;
    key_init(&k, OP_BN, NULL, f, sizeof f / sizeof f[0]);
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)x;
    ptrs[U_Y] = y;
    ptrs[U_MEAN] = (void *)mean;
    ptrs[U_VAR] = (void *)var;
    ptrs[U_SCALE] = (void *)scale;
    ptrs[U_SHIFT] = (void *)bias;
    return dispatch(ctx, &k, true, build_bn, NULL, ptrs, opname, err, errlen);
}

/* ---- LRN ----------------------------------------------------------------------- */

static int build_lrn(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err, size_t errlen)
{
    (void)argp;
    const char *opname = "LRN";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const int64_t *v = e->k.v; /* n c h w size alpha beta bias */
    float p[3];
    for (int i = 0; i < 3; i++) {
        uint32_t b = (uint32_t)v[5 + i];
        memcpy(&p[i], &b, sizeof b);
    }
    dnnl_memory_desc_t xmd;
    DCK(plain_md(&xmd, 4, v, dnnl_nchw), "memory descriptor");
    DCK(user_attr(&attr), "attributes");
    dnnl_lrn_desc_t ld;
    /* ONNX: y = x / (bias + alpha / size * sum(x^2 over size channels))^beta, with
     * floor((size-1)/2) channels before and ceil((size-1)/2) after. oneDNN's across-
     * channel LRN divides alpha by local_size the same way; its window is symmetric,
     * which equals ONNX's for odd sizes (even sizes are refused by the caller). */
    DCK(dnnl_lrn_forward_desc_init(&ld, dnnl_forward_inference, dnnl_lrn_across_channels,
                                   &xmd, v[4], p[0], p[1], p[2]),
        "LRN descriptor");
    DCK(dnnl_primitive_desc_create(&pd, &ld, attr, ctx->eng, NULL), "primitive descriptor");
    const plain_arg pa[] = {{DNNL_ARG_SRC, U_X, &xmd}, {DNNL_ARG_DST, U_Y, &xmd}};
    rc = plain_step(ctx, e, pd, pa, (int)(sizeof pa / sizeof pa[0]), opname, err, errlen);
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_lrn(mt_nn_dnnl *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                   int64_t size, float alpha, float beta, float bias, const float *x,
                   float *y, char *err, size_t errlen)
{
    const char *opname = "LRN";
    BAD("ctx is NULL", !ctx);
    BAD("x is NULL", !x);
    BAD("y is NULL", !y);
    BAD("n, c, h, w must be >= 1", n < 1 || c < 1 || h < 1 || w < 1);
    int64_t xd[4] = {n, c, h, w};
    BAD("tensor sizes overflow", !count_ok(xd, 4));
    BAD("size must be >= 1", size < 1 || size > (INT64_C(1) << 20));
    BAD("alpha, beta, bias must be finite", !isfinite(alpha) || !isfinite(beta) ||
                                                !isfinite(bias));
    if (size % 2 == 0)
        return fail(err, errlen, MT_NN_DNNL_EUNSUPPORTED,
                    "nn_dnnl LRN: even size (asymmetric window) is not covered by oneDNN");
    const int64_t f[] = {n, c, h, w, size, (int64_t)fbits(alpha), (int64_t)fbits(beta),
                         (int64_t)fbits(bias)};
    ckey k;
    key_init(&k, OP_LRN, NULL, f, sizeof f / sizeof f[0]);
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)x;
    ptrs[U_Y] = y;
    return dispatch(ctx, &k, true, build_lrn, NULL, ptrs, opname, err, errlen);
}

/* ---- Softmax / LogSoftmax ------------------------------------------------------- */

static int build_softmax(mt_nn_dnnl *ctx, entry *e, const void *argp, char *err,
                         size_t errlen)
{
    (void)argp;
    const int64_t *v = e->k.v; /* log outer axis inner */
    const char *opname = v[0] ? "LogSoftmax" : "Softmax";
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t xmd;
    DCK(plain_md(&xmd, 3, v + 1, dnnl_abc), "memory descriptor");
    DCK(user_attr(&attr), "attributes");
    dnnl_softmax_v2_desc_t sd;
    DCK(dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference,
                                          v[0] ? dnnl_softmax_log : dnnl_softmax_accurate,
                                          &xmd, &xmd, 1),
        "softmax descriptor");
    DCK(dnnl_primitive_desc_create(&pd, &sd, attr, ctx->eng, NULL), "primitive descriptor");
    const plain_arg pa[] = {{DNNL_ARG_SRC, U_X, &xmd}, {DNNL_ARG_DST, U_Y, &xmd}};
    rc = plain_step(ctx, e, pd, pa, (int)(sizeof pa / sizeof pa[0]), opname, err, errlen);
out:
    release(pd, attr);
    return rc;
}

int mt_nn_dnnl_softmax(mt_nn_dnnl *ctx, int log, int64_t outer, int64_t axis,
                       int64_t inner, const float *x, float *y, char *err, size_t errlen)
{
    const char *opname = log ? "LogSoftmax" : "Softmax";
    BAD("ctx is NULL", !ctx);
    BAD("x is NULL", !x);
    BAD("y is NULL", !y);
    BAD("log must be 0 or 1", log != 0 && log != 1);
    BAD("outer, axis, inner must be >= 1", outer < 1 || axis < 1 || inner < 1);
    int64_t xd[3] = {outer, axis, inner};
    BAD("tensor sizes overflow", !count_ok(xd, 3));
    /* oneDNN's max reduction drops NaN (the row would come out as numbers) */
    for (int64_t i = 0, t = outer * axis * inner; i < t; i++)
        if (isnan(x[i]))
            return fail(err, errlen, MT_NN_DNNL_EUNSUPPORTED,
                        "nn_dnnl %s: the input holds NaN, which oneDNN would drop", opname);
    const int64_t f[] = {log, outer, axis, inner};
    ckey k;
    key_init(&k, OP_SOFTMAX, NULL, f, sizeof f / sizeof f[0]);
    void *ptrs[U_N] = {0};
    ptrs[U_X] = (void *)x;
    ptrs[U_Y] = y;
    return dispatch(ctx, &k, true, build_softmax, NULL, ptrs, opname, err, errlen);
}
