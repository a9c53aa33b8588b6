/* nn_pool.c: the model's worker threads for the reference kernels. Created once at
 * prepare (threads - 1 workers; the calling thread takes a share too), so that a run
 * creates nothing. nn_parallel splits [0, n) into one contiguous chunk per thread; each
 * output element is computed by exactly one thread in a fixed order, so results do not
 * depend on the thread count. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

struct nn_pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    pthread_t tid[64];
    int nthreads; /* workers */
    unsigned gen;
    int pending;
    int quit;
    nn_task fn;
    void *ctx;
    size_t n;
};

static void chunk(size_t n, int parts, int i, size_t *b, size_t *e)
{
    size_t per = n / (size_t)parts, rem = n % (size_t)parts, k = (size_t)i;
    *b = k * per + (k < rem ? k : rem);
    *e = *b + per + (k < rem ? 1 : 0);
}

typedef struct {
    nn_pool *p;
    int idx;
} worker_arg;


static void *worker(void *arg)
{
    nn_pool *p = ((worker_arg *)arg)->p;
    int idx = ((worker_arg *)arg)->idx;
    free(arg);
    unsigned seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        nn_task fn = p->fn;
        void *ctx = p->ctx;
        size_t n = p->n, b, e;
        pthread_mutex_unlock(&p->mu);
        chunk(n, p->nthreads + 1, idx + 1, &b, &e);
        if (b < e)
            fn(ctx, b, e);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

nn_pool *nn_pool_create(int threads)
{
    if (threads <= 1)
        return NULL;
    if (threads > 64)
        threads = 64;
    nn_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < threads - 1; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a)
            break;
        a->p = p;
        a->idx = i;
        if (pthread_create(&p->tid[i], NULL, worker, a)) {
            free(a);
            break;
        }
        p->nthreads++;
    }
    if (!p->nthreads) {
        nn_pool_free(p);
        return NULL;
    }
    return p;
}

void nn_pool_free(nn_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->tid[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p);
}

void nn_parallel(mt_nn_model *m, size_t n, nn_task fn, void *ctx)
{
    nn_pool *p = m->pool;
    if (!p || n < 2) {
        if (n)
            fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->pending = p->nthreads;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    size_t b, e;
    chunk(n, p->nthreads + 1, 0, &b, &e);
    if (b < e)
        fn(ctx, b, e);
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
