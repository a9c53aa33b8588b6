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
