/* nn_graph.c: prepare (shape inference with constant folding, Identity elimination,
 * dead-node removal, BatchNorm folding into Conv, Conv/Gemm + activation fusion, arena
 * planning) and run. See nn.h for the contract. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

static _Thread_local int t_phase; /* 1 while a kernel computes (nn_set_out does nothing) */

nn_t *nn_in(mt_nn_model *m, nn_node *n, int i)
{
    return i < n->nin && n->in[i] >= 0 ? &m->t[n->in[i]] : NULL;
}

nn_t *nn_out(mt_nn_model *m, nn_node *n, int i)
{
    return i < n->nout && n->out[i] >= 0 ? &m->t[n->out[i]] : NULL;
}

int nn_is_const(const nn_t *t) { return t && t->kind == NN_T_CONST; }
int nn_known(const nn_t *t) { return t && (t->kind == NN_T_CONST || t->pinned); }

int nn_set_out(mt_nn_model *m, nn_node *n, int i, int dtype, int rank, const int64_t *dims)
{
    nn_t *t = nn_out(m, n, i);
    if (!t || t_phase)
        return 0;
    if (rank < 0 || rank > MT_NN_MAX_RANK)
        return nn_node_fail(m, n, MT_NN_EUNSUPPORTED, "output rank %d above %d", rank,
                            MT_NN_MAX_RANK);
    if (!mt_nn_dtype_size(dtype))
        return nn_node_fail(m, n, MT_NN_EUNSUPPORTED, "output type %d not supported", dtype);
    t->dtype = dtype;
    t->rank = rank;
    for (int k = 0; k < rank; k++)
        t->dims[k] = dims[k];
    size_t b;
    if (nn_count(t->dims, rank, &t->count) || nn_bytes(dtype, t->count, &b))
        return nn_node_fail(m, n, MT_NN_ESHAPE, "output %d: invalid or too large shape", i);
    t->shaped = 1;
    return 0;
}

mt_nn_dnnl *nn_dnnl(mt_nn_model *m)
{
#ifdef MT_NN_HAVE_DNNL
    if (!m->dnnl) {
        char e[128];
        m->dnnl = mt_nn_dnnl_create(m->threads, e, sizeof e);
    }
    return m->dnnl;
#else
    (void)m;
    return NULL;
#endif
}

int nn_plain(mt_nn_model *m, const nn_node *n, nn_t *t)
{
    if (!t->layout)
        return 0;
#ifdef MT_NN_HAVE_DNNL
    char e[256];
    int rc = mt_nn_dnnl_to_plain(nn_dnnl(m), t->layout, t->data, e, sizeof e);
    if (rc)
        return n ? nn_node_fail(m, n, rc == MT_NN_DNNL_ENOMEM ? MT_NN_ENOMEM : MT_NN_EINVAL,
                                "oneDNN: %.200s", e)
                 : nn_fail(m, rc == MT_NN_DNNL_ENOMEM ? MT_NN_ENOMEM : MT_NN_EINVAL,
                           "oneDNN: %.200s", e);
#else
    (void)m;
    (void)n;
#endif
    t->layout = NULL;
    return 0;
}

static void reset(mt_nn_model *m)
{
    for (size_t k = 0; k < m->nt; k++) {
        nn_t *t = &m->t[k];
        if (t->init && k < m->nt_orig) /* kept; (a load that failed has nt_orig 0) */
            continue;
        if (t->own) {
            free(t->own);
            t->own = NULL;
        }
        t->data = NULL;
        t->shaped = 0;
        t->graph_out = 0;
        t->pinned = 0;
        if (t->kind != NN_T_INPUT)
            t->kind = NN_T_NONE;
    }
    m->nt = m->nt_orig;
    if (m->nodes) {
        for (size_t i = 0; i < m->nn; i++) {
            free(m->nodes[i].in);
            free(m->nodes[i].out);
        }
        free(m->nodes);
        m->nodes = NULL;
    }
    m->nn = 0;
    free(m->order);
    m->order = NULL;
    m->norder = 0;
    free(m->arena);
    m->arena = NULL;
    m->arena_size = 0;
    m->fold_bytes = 0;
    m->prepared = 0;
#ifdef MT_NN_HAVE_DNNL
    /* oneDNN caches weights by node key (a node's address): the nodes and the folded
       weights are rebuilt by every prepare, so the cache must not outlive them */
    if (m->dnnl) {
        mt_nn_dnnl_free(m->dnnl);
        m->dnnl = NULL;
    }
#endif
}

void mt_nn_free(mt_nn_model *m)
{
    if (!m)
        return;
    reset(m);
    for (size_t k = 0; k < m->nt; k++)
        free(m->t[k].own);
    free(m->t);
    for (size_t i = 0; i < m->norig; i++) {
        free(m->orig[i].in);
        free(m->orig[i].out);
    }
    free(m->orig);
    free(m->inputs);
    free(m->outputs);
    free(m->hash);
    nn_pool_free(m->pool);
#ifdef MT_NN_HAVE_DNNL
    if (m->dnnl)
        mt_nn_dnnl_free(m->dnnl);
#endif
    if (m->mp)
        onnx__model_proto__free_unpacked(m->mp, NULL);
    free(m);
}

/* a new unnamed tensor (folded weights); not in the name table */
static int tensor_new(mt_nn_model *m)
{
    if (nn_tensor_slot(m))
        return -1;
    return (int)m->nt++;
}

/* every output has no elements: nothing to compute (and zero-sized tensors may still
   have huge other dims, which must not drive loops) */
static int outputs_empty(mt_nn_model *m, nn_node *n)
{
    for (int j = 0; j < n->nout; j++) {
        nn_t *t = nn_out(m, n, j);
        if (t && t->count)
            return 0;
    }
    return 1;
}

static int alloc_const(mt_nn_model *m, nn_t *t, const char *what)
{
    size_t b;
    if (nn_bytes(t->dtype, t->count, &b))
        return nn_fail(m, MT_NN_ESHAPE, "%s: too large", what);
    int rc = nn_charge(m, b, what);
    if (rc)
        return rc;
    size_t ab = (b + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    t->own = aligned_alloc(NN_ALIGN, ab ? ab : NN_ALIGN);
    if (!t->own)
        return nn_fail(m, MT_NN_ENOMEM, "%s: out of memory", what);
    memset(t->own, 0, ab ? ab : NN_ALIGN);
    t->own_bytes = b;
    t->data = t->own;
    t->kind = NN_T_CONST;
    m->fold_bytes += b;
    return 0;
}

static int copy_nodes(mt_nn_model *m)
{
    m->nodes = calloc(m->norig + 1, sizeof(nn_node));
    if (!m->nodes)
        return -1;
    m->nn = m->norig;
    for (size_t i = 0; i < m->norig; i++) {
        nn_node *d = &m->nodes[i];
        *d = m->orig[i];
        d->in = calloc((size_t)d->nin + 3, sizeof(int));
        d->out = calloc((size_t)d->nout + 1, sizeof(int));
        if (!d->in || !d->out)
            return -1;
        memcpy(d->in, m->orig[i].in, (size_t)d->nin * sizeof(int));
        memcpy(d->out, m->orig[i].out, (size_t)d->nout * sizeof(int));
    }
    return 0;
}

/* Identity (and Dropout without mask output) nodes disappear: their consumers read the
 * input directly. Kept when the output is a graph output. */
static void identity_elim(mt_nn_model *m)
{
    int *alias = malloc(m->nt * sizeof(int));
    if (!alias)
        return;
    for (size_t k = 0; k < m->nt; k++)
        alias[k] = (int)k;
    for (size_t k = 0; k < m->nout; k++)
        m->t[m->outputs[k]].graph_out = 1;
    for (size_t i = 0; i < m->nn; i++) {
        nn_node *n = &m->nodes[i];
        int drop = strcmp(n->op, "Dropout") == 0 && (n->nout < 2 || n->out[1] < 0);
        if ((strcmp(n->op, "Identity") == 0 || drop) && n->nin >= 1 && n->in[0] >= 0 &&
            n->nout >= 1 && n->out[0] >= 0 && !m->t[n->out[0]].graph_out) {
            alias[n->out[0]] = n->in[0];
            n->dead = 1;
        }
    }
    for (size_t i = 0; i < m->nn; i++) {
        nn_node *n = &m->nodes[i];
        for (int j = 0; j < n->nin; j++) {
            int k = n->in[j], steps = 0;
            while (k >= 0 && alias[k] != k && steps++ < (int)m->nn)
                k = alias[k];
            n->in[j] = k;
        }
    }
    free(alias);
}

/* Tensor k is produced by a node still in the graph (an edge topo() orders by). */
static int live_input(const mt_nn_model *m, int k)
{
    return k >= 0 && m->t[k].producer >= 0 && !m->nodes[m->t[k].producer].dead;
}

static int topo(mt_nn_model *m)
{
    size_t nn = m->nn;
    /* consumers lists in CSR form */
    size_t nedge = 0;
    for (size_t i = 0; i < nn; i++)
        nedge += (size_t)m->nodes[i].nin;
    int *indeg = calloc(nn + 1, sizeof(int));
    int *q = calloc(nn + 1, sizeof(int));
    m->order = calloc(nn + 1, sizeof(int));
    int *cnt = calloc(m->nt + 1, sizeof(int));
    int *adj = calloc(nedge + 1, sizeof(int));
    int *fill = calloc(m->nt + 1, sizeof(int));
    if (!indeg || !q || !m->order || !cnt || !adj || !fill) {
        free(indeg); free(q); free(cnt); free(adj); free(fill);
        return nn_fail(m, MT_NN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nn; i++) {
        nn_node *n = &m->nodes[i];
        if (n->dead)
            continue;
        for (int j = 0; j < n->nin; j++) {
            int k = n->in[j];
            if (live_input(m, k)) {
                indeg[i]++;
                cnt[k + 1]++;
            }
        }
    }
    for (size_t k = 0; k < m->nt; k++)
        cnt[k + 1] += cnt[k];
    for (size_t i = 0; i < nn; i++) {
        nn_node *n = &m->nodes[i];
        if (n->dead)
            continue;
        for (int j = 0; j < n->nin; j++) {
            int k = n->in[j];
            if (live_input(m, k))
                adj[cnt[k] + fill[k]++] = (int)i;
        }
    }
    size_t qh = 0, qt = 0, live = 0;
    for (size_t i = 0; i < nn; i++)
        if (!m->nodes[i].dead) {
            live++;
            if (!indeg[i])
                q[qt++] = (int)i;
        }
    while (qh < qt) {
        int i = q[qh++];
        m->order[m->norder++] = i;
        nn_node *n = &m->nodes[i];
        for (int j = 0; j < n->nout; j++) {
            int k = n->out[j];
            if (k < 0)
                continue;
            for (int e = cnt[k]; e < cnt[k + 1]; e++)
                if (--indeg[adj[e]] == 0)
                    q[qt++] = adj[e];
        }
    }
    free(indeg); free(q); free(cnt); free(adj); free(fill);
    if (m->norder != live)
        return nn_fail(m, MT_NN_EINVAL, "graph: the nodes form a cycle");
    return 0;
}

static int *use_counts(mt_nn_model *m)
{
    int *u = calloc(m->nt + 1, sizeof(int));
    if (!u)
        return NULL;
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *n = &m->nodes[m->order[p]];
        if (n->dead)
            continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] >= 0)
                u[n->in[j]]++;
    }
    for (size_t k = 0; k < m->nout; k++)
        u[m->outputs[k]] += 1000000;
    return u;
}

static nn_node *sole_consumer(mt_nn_model *m, int k, const int *uses)
{
    if (k < 0 || uses[k] != 1)
        return NULL;
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *n = &m->nodes[m->order[p]];
        if (n->dead)
            continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] == k)
                return n;
    }
    return NULL;
}

static int fold_bn(mt_nn_model *m, int *uses)
{
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *c = &m->nodes[m->order[p]];
        if (c->dead || strcmp(c->op, "Conv") != 0 || c->nout != 1 || c->out[0] < 0)
            continue;
        nn_t *w = nn_in(m, c, 1), *cb = nn_in(m, c, 2);
        if (!nn_is_const(w) || w->dtype != MT_NN_FLOAT || w->rank < 3 || (cb && !nn_is_const(cb)))
            continue;
        nn_node *b = sole_consumer(m, c->out[0], uses);
        if (!b || strcmp(b->op, "BatchNormalization") != 0 || b->in[0] != c->out[0] ||
            b->nin < 5 || (b->nout > 1 && b->out[1] >= 0))
            continue;
        if (nn_attr_i(b, "training_mode", 0))
            continue;
        nn_t *sc = nn_in(m, b, 1), *bi = nn_in(m, b, 2), *me = nn_in(m, b, 3), *va = nn_in(m, b, 4);
        int64_t M = w->dims[0];
        if (!nn_is_const(sc) || !nn_is_const(bi) || !nn_is_const(me) || !nn_is_const(va) ||
            sc->count != (size_t)M || bi->count != (size_t)M || me->count != (size_t)M ||
            va->count != (size_t)M || sc->dtype != MT_NN_FLOAT || bi->dtype != MT_NN_FLOAT ||
            me->dtype != MT_NN_FLOAT || va->dtype != MT_NN_FLOAT)
            continue;
        float eps = nn_attr_f(b, "epsilon", 1e-5f);
        int wk = tensor_new(m), bk = tensor_new(m);
        if (wk < 0 || bk < 0)
            return nn_fail(m, MT_NN_ENOMEM, "out of memory");
        w = nn_in(m, c, 1); /* m->t may have moved */
        cb = nn_in(m, c, 2);
        sc = nn_in(m, b, 1); bi = nn_in(m, b, 2); me = nn_in(m, b, 3); va = nn_in(m, b, 4);
        nn_t *nw = &m->t[wk], *nb = &m->t[bk];
        nw->dtype = MT_NN_FLOAT; nw->rank = w->rank;
        memcpy(nw->dims, w->dims, sizeof w->dims);
        nw->count = w->count; nw->shaped = 1;
        nb->dtype = MT_NN_FLOAT; nb->rank = 1; nb->dims[0] = M; nb->count = (size_t)M; nb->shaped = 1;
        int rc = alloc_const(m, nw, "folded Conv weights");
        if (rc || (rc = alloc_const(m, nb, "folded Conv bias")))
            return rc;
        w = nn_in(m, c, 1); cb = nn_in(m, c, 2);
        size_t per = w->count / (size_t)(M ? M : 1);
        const float *W = w->data, *S = sc->data, *Bi = bi->data, *Me = me->data, *V = va->data;
        float *NW = nw->data, *NB = nb->data;
        for (int64_t o = 0; o < M; o++) {
            float s = S[o] / sqrtf(V[o] + eps);
            for (size_t i = 0; i < per; i++)
                NW[(size_t)o * per + i] = W[(size_t)o * per + i] * s;
            float b0 = cb ? ((const float *)cb->data)[o] : 0.f;
            NB[o] = (b0 - Me[o]) * s + Bi[o];
        }
        c->in[1] = wk;
        c->in[2] = bk;
        if (c->nin < 3)
            c->nin = 3;
        c->out[0] = b->out[0];
        c->bn_folded = 1;
        b->dead = 1;
        uses[c->out[0]] = uses[b->out[0]];
    }
    return 0;
}

static void fuse_act(mt_nn_model *m, int *uses)
{
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *c = &m->nodes[m->order[p]];
        if (c->dead || (strcmp(c->op, "Conv") != 0 && strcmp(c->op, "Gemm") != 0) ||
            c->post.kind != MT_NN_POST_NONE || c->nout != 1 || c->out[0] < 0 ||
            m->t[c->out[0]].dtype != MT_NN_FLOAT)
            continue;
        nn_node *a = sole_consumer(m, c->out[0], uses);
        if (!a || a->nin < 1 || a->in[0] != c->out[0] || a->nout != 1 || a->out[0] < 0)
            continue;
        mt_nn_post post = {MT_NN_POST_NONE, 0, 0, 0};
        if (strcmp(a->op, "Relu") == 0) {
            post.kind = MT_NN_POST_RELU;
        } else if (strcmp(a->op, "LeakyRelu") == 0) {
            post.kind = MT_NN_POST_LEAKY_RELU;
            post.alpha = nn_attr_f(a, "alpha", 0.01f);
        } else if (strcmp(a->op, "Clip") == 0) {
            post.kind = MT_NN_POST_CLIP;
            post.lo = -INFINITY;
            post.hi = INFINITY;
            if (a->nin == 1) {
                post.lo = nn_attr_f(a, "min", -INFINITY);
                post.hi = nn_attr_f(a, "max", INFINITY);
            }
            nn_t *lo = nn_in(m, a, 1), *hi = nn_in(m, a, 2);
            if ((lo && (!nn_is_const(lo) || lo->dtype != MT_NN_FLOAT || lo->count != 1)) ||
                (hi && (!nn_is_const(hi) || hi->dtype != MT_NN_FLOAT || hi->count != 1)))
                continue;
            if (lo)
                post.lo = *(const float *)lo->data;
            if (hi)
                post.hi = *(const float *)hi->data;
        } else {
            continue;
        }
        c->post = post;
        c->out[0] = a->out[0];
        a->dead = 1;
    }
}

/* Which intermediate tensors may stay in oneDNN's blocked layout between nodes: 4-D
 * float outputs of a Conv whose every consumer is a Conv reading them as input 0, and
 * that are no graph output (those are read by the caller in NCHW). */
static void plan_layouts(mt_nn_model *m)
{
    for (size_t k = 0; k < m->nt; k++) {
        m->t[k].blk_ok = 0;
        m->t[k].layout = NULL;
    }
#ifdef MT_NN_HAVE_DNNL
    int any_conv = 0; /* (a model without Conv does not start oneDNN here) */
    for (size_t p = 0; p < m->norder && !any_conv; p++)
        any_conv = !strcmp(m->nodes[m->order[p]].op, "Conv");
    if (!any_conv || !nn_dnnl(m))
        return;
    int *cons = calloc(m->nt + 1, sizeof *cons); /* -1: a consumer that needs NCHW */
    if (!cons)
        return; /* everything stays plain */
    for (size_t p = 0; p < m->norder; p++) {
        const nn_node *n = &m->nodes[m->order[p]];
        int conv = !strcmp(n->op, "Conv");
        for (int j = 0; j < n->nin; j++) {
            int k = n->in[j];
            if (k < 0)
                continue;
            if (conv && j == 0 && cons[k] >= 0)
                cons[k]++;
            else
                cons[k] = -1;
        }
    }
    for (size_t p = 0; p < m->norder; p++) {
        const nn_node *n = &m->nodes[m->order[p]];
        if (strcmp(n->op, "Conv") || n->nout < 1 || n->out[0] < 0)
            continue;
        nn_t *t = &m->t[n->out[0]];
        t->blk_ok = t->kind == NN_T_INTER && !t->graph_out && t->rank == 4 &&
                    t->dtype == MT_NN_FLOAT && cons[n->out[0]] > 0;
    }
    free(cons);
#endif
}

/* arena bytes of t: room for the padded blocked form when it may be kept blocked */
static size_t arena_bytes(const nn_t *t)
{
    size_t b = t->count * mt_nn_dtype_size(t->dtype);
    if (t->blk_ok) {
        size_t bb = MT_NN_DNNL_BLOCKED_BYTES(t->dims[0], t->dims[1], t->dims[2], t->dims[3]);
        if (bb > b)
            b = bb;
    }
    b = (b + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    return b ? b : NN_ALIGN;
}

static int plan_arena(mt_nn_model *m)
{
    /* compact the order (dead nodes out) */
    size_t w = 0;
    for (size_t p = 0; p < m->norder; p++)
        if (!m->nodes[m->order[p]].dead)
            m->order[w++] = m->order[p];
    m->norder = w;
    for (size_t k = 0; k < m->nt; k++) {
        m->t[k].first = -1;
        m->t[k].last = -1;
    }
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *n = &m->nodes[m->order[p]];
        for (int j = 0; j < n->nout; j++)
            if (n->out[j] >= 0 && m->t[n->out[j]].kind == NN_T_INTER) {
                m->t[n->out[j]].first = (int)p;
                m->t[n->out[j]].last = (int)p;
            }
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] >= 0 && m->t[n->in[j]].kind == NN_T_INTER)
                m->t[n->in[j]].last = (int)p;
    }
    for (size_t k = 0; k < m->nout; k++)
        if (m->t[m->outputs[k]].kind == NN_T_INTER)
            m->t[m->outputs[k]].last = (int)m->norder;
    plan_layouts(m);
    /* greedy: biggest first, lowest offset that overlaps no live-at-the-same-time tensor */
    size_t ni = 0;
    int *idx = malloc((m->nt + 1) * sizeof(int));
    if (!idx)
        return nn_fail(m, MT_NN_ENOMEM, "out of memory");
    for (size_t k = 0; k < m->nt; k++)
        if (m->t[k].kind == NN_T_INTER && m->t[k].first >= 0)
            idx[ni++] = (int)k;
    /* insertion sort by size, descending (n is small) */
    for (size_t i = 1; i < ni; i++) {
        int v = idx[i];
        size_t j = i;
        while (j > 0 && arena_bytes(&m->t[idx[j - 1]]) < arena_bytes(&m->t[v])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    size_t total = 0;
    for (size_t i = 0; i < ni; i++) {
        nn_t *t = &m->t[idx[i]];
        size_t sz = arena_bytes(t);
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            for (size_t j = 0; j < i; j++) {
                nn_t *u = &m->t[idx[j]];
                size_t usz = arena_bytes(u);
                if (u->last < t->first || t->last < u->first)
                    continue;
                if (off < u->off + usz && u->off < off + sz) {
                    off = u->off + usz;
                    again = 1;
                }
            }
        }
        t->off = off;
        if (off + sz > total)
            total = off + sz;
    }
    free(idx);
    int rc = nn_charge(m, total, "the activation arena");
    if (rc)
        return rc;
    m->arena = aligned_alloc(NN_ALIGN, total ? total : NN_ALIGN);
    if (!m->arena)
        return nn_fail(m, MT_NN_ENOMEM, "the activation arena: out of memory");
    m->arena_size = total;
    for (size_t k = 0; k < m->nt; k++)
        if (m->t[k].kind == NN_T_INTER)
            m->t[k].data = m->t[k].first >= 0 ? m->arena + m->t[k].off : NULL;
    return 0;
}

int mt_nn_prepare(mt_nn_model *m, const mt_nn_tensor *shapes, size_t n, char *err, size_t errlen)
{
    m->err = err;
    m->errlen = errlen;
    if (errlen)
        err[0] = 0;
    reset(m);
    if (shapes && n != m->nin)
        return nn_fail(m, MT_NN_EINVAL, "prepare: %zu input shapes given, the model has %zu inputs",
                       n, m->nin);
    for (size_t i = 0; i < m->nin; i++) {
        nn_t *t = &m->t[m->inputs[i]];
        mt_nn_tensor d;
        if (shapes)
            d = shapes[i];
        else if (mt_nn_input_decl(m, i, &d))
            return nn_fail(m, MT_NN_EUNSUPPORTED, "input '%.128s': no tensor type declared",
                           t->name);
        if (!mt_nn_dtype_size(d.dtype))
            return nn_fail(m, MT_NN_EUNSUPPORTED, "input '%.128s': element type %d not supported",
                           t->name, d.dtype);
        if (d.rank < 0 || d.rank > MT_NN_MAX_RANK)
            return nn_fail(m, MT_NN_EUNSUPPORTED, "input '%.128s': rank %d not supported", t->name,
                           d.rank);
        for (int k = 0; k < d.rank; k++)
            if (d.dims[k] < 0)
                return nn_fail(m, MT_NN_EUNSUPPORTED,
                               "input '%.128s': dimension %d is symbolic; give a concrete shape",
                               t->name, k);
        t->dtype = d.dtype;
        t->rank = d.rank;
        memcpy(t->dims, d.dims, sizeof t->dims);
        size_t b;
        if (nn_count(t->dims, t->rank, &t->count) || nn_bytes(t->dtype, t->count, &b))
            return nn_fail(m, MT_NN_ESHAPE, "input '%.128s': shape too large", t->name);
        t->shaped = 1;
        t->kind = NN_T_INPUT;
        if (shapes && d.data && t->count <= NN_MAX_PIN) {
            /* values given: kept, so that shape-deciding inputs are known while planning;
               mt_nn_run then requires the same values */
            int rc = alloc_const(m, t, "a pinned input");
            if (rc)
                return rc;
            t->kind = NN_T_INPUT;
            memcpy(t->own, d.data, b);
            t->pinned = 1;
        }
    }
    if (copy_nodes(m))
        return nn_fail(m, MT_NN_ENOMEM, "out of memory");
    /* an output left unnamed ("") still gets a (hidden) tensor: kernels always have
       somewhere to write */
    for (size_t i = 0; i < m->nn; i++)
        for (int j = 0; j < m->nodes[i].nout; j++)
            if (m->nodes[i].out[j] < 0) {
                int k = tensor_new(m);
                if (k < 0)
                    return nn_fail(m, MT_NN_ENOMEM, "out of memory");
                m->t[k].producer = (int)i;
                m->nodes[i].out[j] = k;
            }
    identity_elim(m);
    int rc = topo(m);
    if (rc)
        return rc;
    /* shape inference + constant folding, in order */
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *nd = &m->nodes[m->order[p]];
        int allc = 1;
        for (int j = 0; j < nd->nin; j++) {
            nn_t *t = nn_in(m, nd, j);
            if (!t)
                continue;
            if (!t->shaped)
                return nn_node_fail(m, nd, MT_NN_EINVAL, "input '%.128s' has no value", t->name);
            if (t->kind != NN_T_CONST)
                allc = 0;
        }
        t_phase = 0;
        rc = nd->def->fn(m, nd, 0);
        if (rc)
            return rc;
        for (int j = 0; j < nd->nout; j++) {
            nn_t *t = nn_out(m, nd, j);
            if (t && !t->shaped)
                return nn_node_fail(m, nd, MT_NN_EUNSUPPORTED, "output %d is not supported", j);
        }
        if (allc || (nd->def->flags & NN_OP_SHAPEONLY)) {
            for (int j = 0; j < nd->nout; j++) {
                nn_t *t = nn_out(m, nd, j);
                if (t && (rc = alloc_const(m, t, "a folded constant")))
                    return rc;
            }
            t_phase = 1;
            rc = outputs_empty(m, nd) ? 0 : nd->def->fn(m, nd, 1);
            t_phase = 0;
            if (rc)
                return rc;
            nd->dead = 1;
        } else {
            for (int j = 0; j < nd->nout; j++) {
                nn_t *t = nn_out(m, nd, j);
                if (t)
                    t->kind = NN_T_INTER;
            }
        }
    }
    /* dead nodes: nothing reads their outputs */
    int *uses = use_counts(m);
    if (!uses)
        return nn_fail(m, MT_NN_ENOMEM, "out of memory");
    for (size_t p = m->norder; p-- > 0;) {
        nn_node *nd = &m->nodes[m->order[p]];
        if (nd->dead)
            continue;
        int used = 0;
        for (int j = 0; j < nd->nout; j++)
            if (nd->out[j] >= 0 && uses[nd->out[j]])
                used = 1;
        if (!used) {
            nd->dead = 1;
            for (int j = 0; j < nd->nin; j++)
                if (nd->in[j] >= 0)
                    uses[nd->in[j]]--;
        }
    }
    rc = m->no_passes ? 0 : fold_bn(m, uses);
    if (!rc && !m->no_passes)
        fuse_act(m, uses);
    free(uses);
    if (rc)
        return rc;
    if ((rc = plan_arena(m)))
        return rc;
    if (m->threads > 1 && !m->pool)
        m->pool = nn_pool_create(m->threads); /* NULL: runs on the calling thread */
    m->prepared = 1;
    return 0;
}

int mt_nn_run(mt_nn_model *m, const mt_nn_tensor *inputs, size_t nin, mt_nn_tensor *outputs,
              size_t nout, char *err, size_t errlen)
{
    m->err = err;
    m->errlen = errlen;
    if (errlen)
        err[0] = 0;
    if (!m->prepared)
        return nn_fail(m, MT_NN_EINVAL, "run: the model is not prepared");
    if (nin != m->nin || nout > m->nout)
        return nn_fail(m, MT_NN_EINVAL, "run: %zu inputs given, the model has %zu", nin, m->nin);
    for (size_t i = 0; i < nin; i++) {
        nn_t *t = &m->t[m->inputs[i]];
        const mt_nn_tensor *x = &inputs[i];
        int same = x->dtype == t->dtype && x->rank == t->rank && x->data;
        for (int k = 0; same && k < t->rank; k++)
            same = x->dims[k] == t->dims[k];
        if (!same)
            return nn_fail(m, MT_NN_ESHAPE,
                           "input '%.128s': type or shape differs from the prepared one", t->name);
        if (t->pinned && memcmp(t->own, x->data, t->own_bytes) != 0)
            return nn_fail(m, MT_NN_EINVAL,
                           "input '%.128s': values differ from those given at prepare (they decide "
                           "shapes; prepare again)", t->name);
        t->data = x->data;
    }
    t_phase = 1;
    for (size_t k = 0; k < m->nt; k++)
        m->t[k].layout = NULL;
    for (size_t p = 0; p < m->norder; p++) {
        nn_node *nd = &m->nodes[m->order[p]];
        if (outputs_empty(m, nd))
            continue;
        /* a kept oneDNN layout goes back to NCHW before any node but a Conv reading it
         * as its input 0 (prepare keeps it only for such consumers: this is the guard) */
        int conv = !strcmp(nd->op, "Conv");
        for (int j = 0; j < nd->nin; j++) {
            nn_t *t = nd->in[j] >= 0 ? &m->t[nd->in[j]] : NULL;
            int rc = t && t->layout && !(conv && j == 0) ? nn_plain(m, nd, t) : 0;
            if (rc) {
                t_phase = 0;
                return rc;
            }
        }
        int rc = nd->def->fn(m, nd, 1);
        if (rc) {
            t_phase = 0;
            return rc;
        }
    }
    t_phase = 0;
    for (size_t i = 0; i < nout; i++) {
        nn_t *t = &m->t[m->outputs[i]];
        if (t->layout) { /* not planned (graph outputs stay NCHW): a guard */
            int rc = nn_plain(m, NULL, t);
            if (rc)
                return rc;
        }
        outputs[i].dtype = t->dtype;
        outputs[i].rank = t->rank;
        memcpy(outputs[i].dims, t->dims, sizeof t->dims);
        outputs[i].data = t->data;
    }
    return 0;
}

size_t mt_nn_mem_used(const mt_nn_model *m) { return m->const_bytes + m->fold_bytes + m->arena_size; }
size_t mt_nn_num_nodes(const mt_nn_model *m) { return m->norder; }
