/* cluster_wake: wake-ups across the nodes of one PostgreSQL database
 * (issue 14; docs/cluster.md "Scheduling across nodes").
 *
 * In one process the scheduler sleeps until sched_wake (a task was staged)
 * and parked GET /v1/tasks/{id}?wait= requests until core_task_event (a
 * task's state changed). With several nodes on one database those events
 * happen on another node. On PostgreSQL each core runs one thread with its
 * own connection that LISTENs on channel "mesatee_wake":
 *   - sched_wake / core_task_event post a bit here (cwake_post: an atomic OR
 *     and an eventfd write, never blocking); the thread sends one NOTIFY per
 *     posted kind ("s:NODE" staged, "t:NODE" task changed), coalescing a
 *     burst into one. They are posted after the change committed, so a node
 *     that wakes finds it. A change made in a transaction that knows its
 *     wake-ups (an API write to a task, a task's outcome) sends them in that
 *     transaction instead (cwake_notify_tx: delivered at its commit, sent
 *     with its COMMIT: no round trip of their own).
 *   - a notification from another node (NODE differs: a random id per core)
 *     wakes this core's scheduler (sched_wake_local) or its parked requests
 *     (core_task_event_local); its own come back and are ignored.
 *   - the fallback: every CWAKE_POLL_MS without a notification both are
 *     woken anyway, and after every (re)connect, so a lost notification (a
 *     connection that broke, a database failover) only delays.
 * SQLite (one node): nothing starts, cwake_post returns at once.
 *
 * Thread-safety: cwake_post from any thread; cwake_start/cwake_stop from
 * the thread that opens/closes the core. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core_internal.h"
#include "mt_log.h"

#define CHANNEL "mesatee_wake"
#define CWAKE_POLL_MS 1000 /* fallback wake-up without notifications */
#define RECONNECT_MS 500

struct core_cwake {
    mt_core *core;
    pthread_t th;
    int efd;
    atomic_uint pending; /* CWAKE_* bits to send */
    atomic_bool stop;
    char node[17];
    atomic_uint_fast64_t sent, received, fallback;
};

void cwake_post(mt_core *c, unsigned what)
{
    struct core_cwake *w = c ? c->cwake : NULL;
    if (!w)
        return;
    unsigned before = atomic_fetch_or(&w->pending, what);
    if ((before & what) == what)
        return; /* already on its way */
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n; /* a full counter still wakes the thread */
}

bool cwake_notify_tx(mt_core *c, mt_db *db, unsigned what)
{
    struct core_cwake *w = c ? c->cwake : NULL;
    if (!w || !what || !mt_db_in_tx(db))
        return false;
    static const struct {
        unsigned bit;
        char kind;
    } kinds[] = {{CWAKE_STAGED, 's'}, {CWAKE_TASK, 't'}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!(what & kinds[i].bit))
            continue;
        char payload[24];
        snprintf(payload, sizeof payload, "%c:%s", kinds[i].kind, w->node);
        mt_err err;
        if (mt_db_notify(db, CHANNEL, payload, &err) != MT_OK)
            return false; /* the transaction fails with it; the caller posts */
        atomic_fetch_add(&w->sent, 1);
    }
    return true;
}

void cwake_counts(mt_core *c, uint64_t *sent, uint64_t *received, uint64_t *fallback)
{
    struct core_cwake *w = c ? c->cwake : NULL;
    *sent = w ? atomic_load(&w->sent) : 0;
    *received = w ? atomic_load(&w->received) : 0;
    *fallback = w ? atomic_load(&w->fallback) : 0;
}

static void on_notify(void *ctx, const char *channel, const char *payload)
{
    struct core_cwake *w = ctx;
    if (strcmp(channel, CHANNEL) || strlen(payload) != 2 + 16 || payload[1] != ':')
        return;
    if (!strcmp(payload + 2, w->node))
        return; /* our own, already woken in-process */
    atomic_fetch_add(&w->received, 1);
    if (payload[0] == 's')
        sched_wake_local(w->core);
    else if (payload[0] == 't')
        core_task_event_local(w->core, NULL);
}

static void wake_all(struct core_cwake *w)
{
    sched_wake_local(w->core);
    core_task_event_local(w->core, NULL);
}

/* Sends the posted kinds; false when the connection failed. */
static bool send_pending(struct core_cwake *w, mt_db *db)
{
    unsigned bits = atomic_exchange(&w->pending, 0);
    static const struct {
        unsigned bit;
        char kind;
    } kinds[] = {{CWAKE_STAGED, 's'}, {CWAKE_TASK, 't'}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!(bits & kinds[i].bit))
            continue;
        char payload[24];
        snprintf(payload, sizeof payload, "%c:%s", kinds[i].kind, w->node);
        mt_err err;
        if (mt_db_notify(db, CHANNEL, payload, &err) != MT_OK) {
            atomic_fetch_or(&w->pending, bits); /* sent again after the reconnect */
            mt_warn("cluster wake-up: %s; reconnecting", err.msg);
            return false;
        }
        atomic_fetch_add(&w->sent, 1);
    }
    return true;
}

static void *cwake_main(void *arg)
{
    struct core_cwake *w = arg;
    mt_db *db = NULL;
    while (!atomic_load(&w->stop)) {
        if (!db) {
            mt_err err;
            if (store_open(w->core->db_path, false, &db, &err) != MT_OK ||
                mt_db_listen(db, CHANNEL, &err) != MT_OK) {
                store_close(db);
                db = NULL;
                mt_warn("cluster wake-up: %s; retrying (tasks are still found every %d ms)",
                        err.msg, CWAKE_POLL_MS);
                struct pollfd p = {w->efd, POLLIN, 0};
                (void)poll(&p, 1, RECONNECT_MS); /* cwake_stop interrupts it */
                wake_all(w);
                continue;
            }
            wake_all(w); /* what was notified while we did not listen */
            /* what was posted while we could not send (a post that found
             * its bit set did not write the eventfd) */
            if (atomic_load(&w->pending) && !send_pending(w, db)) {
                store_close(db);
                db = NULL;
                continue;
            }
        }
        int sock = mt_db_socket(db);
        if (sock < 0) { /* the connection broke: listen again on a new one */
            store_close(db);
            db = NULL;
            continue;
        }
        struct pollfd p[2] = {{w->efd, POLLIN, 0}, {sock, POLLIN, 0}};
        int n = poll(p, 2, CWAKE_POLL_MS);
        if (n < 0 && errno == EINTR)
            continue;
        bool ok = true;
        if (n == 0) {
            atomic_fetch_add(&w->fallback, 1);
            wake_all(w);
        }
        if (n > 0 && (p[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t r = read(w->efd, &v, sizeof v);
            (void)r;
            if (!atomic_load(&w->stop))
                ok = send_pending(w, db);
        }
        if (ok && n > 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            mt_err err;
            if (mt_db_notifications(db, on_notify, w, &err) != MT_OK) {
                mt_warn("cluster wake-up: %s", err.msg);
                ok = false;
            }
        }
        if (!ok) {
            store_close(db);
            db = NULL;
        }
    }
    store_close(db);
    return NULL;
}

mt_status cwake_start(mt_core *c, mt_err *err)
{
    if (c->cwake || mt_db_url_backend(c->db_path) != MT_DB_PG)
        return MT_OK;
    struct core_cwake *w = calloc(1, sizeof *w);
    if (!w)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    w->core = c;
    uint8_t id[8];
    mt_status rc = mt_random(id, sizeof id, err);
    if (rc) {
        free(w);
        return rc;
    }
    mt_hex_encode(id, sizeof id, w->node);
    if ((w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        free(w);
        return mt_err_set(err, MT_EINTERNAL, "cannot create the wake-up eventfd: %s",
                          strerror(errno));
    }
    if (pthread_create(&w->th, NULL, cwake_main, w) != 0) {
        close(w->efd);
        free(w);
        return mt_err_set(err, MT_EINTERNAL, "cannot start the cluster wake-up thread");
    }
    c->cwake = w;
    return MT_OK;
}

void cwake_stop(mt_core *c)
{
    struct core_cwake *w = c ? c->cwake : NULL;
    if (!w)
        return;
    atomic_store(&w->stop, true);
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n;
    pthread_join(w->th, NULL);
    c->cwake = NULL;
    close(w->efd);
    free(w);
}
