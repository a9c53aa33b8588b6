/* mt_secmem: see mt_secmem.h. */
#include "mt_secmem.h"

#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static mt_secmem_observer g_observer;
static void *g_observer_arg;

void *mt_secmem_malloc(size_t n)
{
    return malloc(n);
}

void mt_secmem_free(void *p)
{
    if (!p)
        return;
    size_t n = malloc_usable_size(p);
    OPENSSL_cleanse(p, n);
    if (g_observer)
        g_observer(p, n, g_observer_arg);
    free(p);
}

void *mt_secmem_realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    size_t old = malloc_usable_size(p);
    void *q = malloc(n ? n : 1);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    mt_secmem_free(p);
    return q;
}

bool mt_secmem_install_json(void)
{
    json_malloc_t m = NULL;
    json_free_t f = NULL;
    json_get_alloc_funcs(&m, &f);
    if (m == mt_secmem_malloc && f == mt_secmem_free)
        return true;
    if (m != malloc || f != free)
        return false; /* the application has its own allocator: keep it */
    json_set_alloc_funcs(mt_secmem_malloc, mt_secmem_free);
    return true;
}

void mt_secmem_set_observer(mt_secmem_observer fn, void *arg)
{
    g_observer_arg = arg;
    g_observer = fn;
}
