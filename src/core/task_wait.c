/* task_wait: GET /v1/tasks/{id}?wait=DURATION (long poll, issue 13).
 *
 * The core does not hold requests: tasks_get answers the task's current
 * state at once and, when the query asks to wait and the state is not
 * final, sets mt_response.park_ms. The gateway then may park the request
 * (mt_gateway.h, "Parked requests") and handle it again when the core
 * reports a task event (mt_core_set_task_listener) or when park_ms passed.
 * A task event is raised after every committed change of a task's state
 * (scheduler outcome, remote outcome, a change through the API on
 * /v1/tasks...); listeners must be cheap and thread-safe (they only wake
 * the gateway's loop).
 *
 * Thread-safety: any thread; once mt_core_set_task_listener(core, NULL, NULL)
 * returned, the old listener is not called any more. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core_internal.h"

mt_status core_wait_query_parse(const char *query, unsigned *wait_ms, mt_err *err)
{
    *wait_ms = 0;
    if (!query || !*query)
        return MT_OK;
    static const char bad[] = "query 'wait': expected a duration from 0 to " /* no input bytes */
                              "60s, e.g. wait=30s, wait=500ms or wait=30 (seconds)";
    size_t n = strnlen(query, 64);
    if (n >= 64 || strncmp(query, "wait=", 5) != 0) {
        if (n < 64 && memchr(query, '=', n) == NULL && !strcmp(query, "wait"))
            return mt_err_set(err, MT_EINVAL, "%s", bad);
        return mt_err_set(err, MT_EINVAL, "query: unknown parameter (expected wait=DURATION)");
    }
    const char *v = query + 5;
    size_t len = n - 5, digits = 0;
    uint64_t num = 0;
    while (digits < len && v[digits] >= '0' && v[digits] <= '9') {
        if (digits >= 9)
            return mt_err_set(err, MT_EINVAL, "%s", bad);
        num = num * 10 + (uint64_t)(v[digits] - '0');
        digits++;
    }
    if (digits == 0)
        return mt_err_set(err, MT_EINVAL, "%s", bad);
    const char *unit = v + digits;
    size_t ulen = len - digits;
    uint64_t ms;
    if (ulen == 0 || (ulen == 1 && unit[0] == 's'))
        ms = num * 1000;
    else if (ulen == 2 && !strncmp(unit, "ms", 2))
        ms = num;
    else
        return mt_err_set(err, MT_EINVAL, "%s", bad);
    if (ms > CORE_WAIT_MAX_MS)
        return mt_err_set(err, MT_EINVAL, "%s", bad);
    *wait_ms = (unsigned)ms;
    return MT_OK;
}

/* One lock for every core's listener: a call is one write(2), and holding it
 * while calling means the listener is never called after it was unset. */
static pthread_mutex_t g_listener_mu = PTHREAD_MUTEX_INITIALIZER;

void mt_core_set_task_listener(mt_core *core, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&g_listener_mu);
    core->task_listener = fn;
    core->task_listener_ctx = ctx;
    atomic_store(&core->task_listener_set, fn != NULL);
    pthread_mutex_unlock(&g_listener_mu);
}

void core_task_event(mt_core *core)
{
    cwake_post(core, CWAKE_TASK); /* other nodes' parked requests (cluster_wake.c) */
    core_task_event_local(core);
}

void core_task_event_local(mt_core *core)
{
    if (!core || !atomic_load(&core->task_listener_set))
        return;
    pthread_mutex_lock(&g_listener_mu);
    if (core->task_listener)
        core->task_listener(core->task_listener_ctx);
    pthread_mutex_unlock(&g_listener_mu);
}
