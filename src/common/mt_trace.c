/* mt_trace: per-task stage timestamps; contract in mt_trace.h. */
#include "mt_trace.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_log.h"

static atomic_int g_on = -1; /* -1: not read yet */

bool mt_trace_on(void)
{
    int v = atomic_load_explicit(&g_on, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("MESATEE_TRACE_TASKS");
        v = e && !strcmp(e, "1");
        atomic_store(&g_on, v);
    }
    return v != 0;
}

int64_t mt_trace_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mt_trace_mark_at(const char *task_id, const char *stage, int64_t mono_us)
{
    if (!task_id || !stage || !mt_trace_on())
        return;
    mt_info("trace task %.32s %.32s %lld", task_id, stage, (long long)mono_us);
}

void mt_trace_mark(const char *task_id, const char *stage)
{
    if (task_id && mt_trace_on())
        mt_trace_mark_at(task_id, stage, mt_trace_now_us());
}

int mt_trace_mark_pairs(const char *task_id, const char *prefix, const char *t)
{
    int n = 0;
    size_t pl = prefix ? strnlen(prefix, 8) : 0;
    if (!t || (prefix && pl >= 8))
        return -1;
    while (*t) {
        size_t nl = strspn(t, "abcdefghijklmnopqrstuvwxyz_");
        if (nl == 0 || nl > 24 || t[nl] != '=')
            return -1;
        size_t dl = strspn(t + nl + 1, "0123456789");
        if (dl == 0 || dl > 18 || (t[nl + 1 + dl] != ',' && t[nl + 1 + dl] != 0))
            return -1;
        char stage[40];
        memcpy(stage, prefix ? prefix : "", pl);
        memcpy(stage + pl, t, nl);
        stage[pl + nl] = 0;
        mt_trace_mark_at(task_id, stage, strtoll(t + nl + 1, NULL, 10));
        n++;
        t += nl + 1 + dl;
        if (*t == ',' && !*++t)
            return -1; /* a trailing comma */
    }
    return n;
}

bool mt_trace_invoke_id(const char *path, char id[33])
{
    if (!path)
        return false;
    if (!strncmp(path, "POST ", 5))
        path += 5;
    if (strncmp(path, "/v1/tasks/", 10))
        return false;
    path += 10;
    for (int i = 0; i < 32; i++)
        if (!((path[i] >= '0' && path[i] <= '9') || (path[i] >= 'a' && path[i] <= 'f')))
            return false;
    if (strcmp(path + 32, "/invoke"))
        return false;
    memcpy(id, path, 32);
    id[32] = 0;
    return true;
}
