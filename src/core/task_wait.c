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

/* The numbered ring of task events (mt_core_task_changed). */
static pthread_mutex_t g_tev_mu = PTHREAD_MUTEX_INITIALIZER;

static void tev_record(mt_core *core, const char *task_id)
{
    if (!core)
        return;
    pthread_mutex_lock(&g_tev_mu);
    uint64_t k = ++core->tev_seq;
    char *slot = core->tev_id[k % CORE_TEV_RING];
    if (task_id && mt_id_valid(task_id))
        memcpy(slot, task_id, MT_ID_LEN + 1);
    else
        slot[0] = '\0'; /* any task */
    pthread_mutex_unlock(&g_tev_mu);
}

uint64_t mt_core_task_event_seq(mt_core *core)
{
    pthread_mutex_lock(&g_tev_mu);
    uint64_t v = core->tev_seq;
    pthread_mutex_unlock(&g_tev_mu);
    return v;
}

bool mt_core_task_changed(mt_core *core, const char *path, uint64_t since)
{
    if (!path || strncmp(path, "/v1/tasks/", 10) || strlen(path + 10) != MT_ID_LEN ||
        !mt_id_valid(path + 10))
        return true;
    const char *id = path + 10;
    bool changed = false;
    pthread_mutex_lock(&g_tev_mu);
    if (core->tev_seq - since >= CORE_TEV_RING) {
        changed = since != core->tev_seq; /* the ring no longer holds them all */
    } else {
        for (uint64_t k = since + 1; k <= core->tev_seq && !changed; k++) {
            const char *e = core->tev_id[k % CORE_TEV_RING];
            changed = !e[0] || !memcmp(e, id, MT_ID_LEN);
        }
    }
    pthread_mutex_unlock(&g_tev_mu);
    return changed;
}

static void listener_call(mt_core *core);

void core_task_event(mt_core *core)
{
    tev_record(core, NULL);
    cwake_post(core, CWAKE_TASK); /* other nodes' parked requests (cluster_wake.c) */
    listener_call(core);
}

void core_task_event_id(mt_core *core, const char *task_id)
{
    tev_record(core, task_id);
    cwake_post(core, CWAKE_TASK);
    listener_call(core);
}

void core_task_event_local(mt_core *core, const char *task_id)
{
    tev_record(core, task_id);
    listener_call(core);
}

static void listener_call(mt_core *core)
{
    if (!core || !atomic_load(&core->task_listener_set))
        return;
    pthread_mutex_lock(&g_listener_mu);
    if (core->task_listener)
        core->task_listener(core->task_listener_ctx);
    pthread_mutex_unlock(&g_listener_mu);
}
