/* node_live: the local runs of a node that stopped and never comes back
 * (issue 14; docs/cluster.md "A node that never comes back").
 *
 * A local run (a task claimed by a node's own scheduler threads) is
 * `running` with tasks.run_node = that node's id (core.c node_id) and no
 * live executor lease. At its own start and stop a node recovers its runs
 * (sched.c); a node that dies for good would leave them `running` forever.
 *
 * On PostgreSQL each core runs one thread with its own connection that
 *   - holds a shared-mode session advisory lock keyed by its node id (the
 *     16 hex digits as a 64-bit key): "alive" means some session of the
 *     database holds that key (pg_locks). A node killed (or its connection
 *     ended by the server) loses it at once; a node cut off from the
 *     database loses it when the server ends its connection (TCP
 *     keepalives: docs/operations.md);
 *   - tries the sweeper lock (MT_DB_LOCK_NODE_SWEEP, exclusive) and keeps it
 *     while its connection lives: one node sweeps, every NLIVE_TICK_MS.
 * The sweeper looks at the nodes that have local runs; a node whose lock
 * nobody holds starts a grace period; a node seen with it again ends it;
 * a node seen without it in every round for node_dead_after_ms loses its
 * runs, each in one transaction, handled like an expired executor lease:
 * back in the queue (keeping its place, audited "task requeued (node
 * stopped)") up to run_max_attempts claims, canceled when that was asked,
 * else failed with "the node that ran the task stopped (node id N)...".
 *
 * A database failover drops every session lock at once and the nodes
 * reconnect: the grace periods are this thread's memory, and a new
 * connection (its own reconnect, a new sweeper on another node) starts
 * with none, so every node has the whole grace period to take its lock
 * again after the sweeper itself is back. A node that was only cut off and
 * finishes late stores nothing: the outcome of a local run is stored only
 * while the row is still running under its node id and claim count
 * (sched.c current_run_sql, inside the outcome's transaction).
 *
 * A node claims new local tasks only while it holds its own lock
 * (nlive_claim_ok, checked by sched.c before each claim): without it the
 * sweeper on another node would take the runs it claims for those of a
 * stopped node, requeue them and drop their outcomes, again and again. So
 * from its start until the lock is first taken, and from the moment this
 * thread finds its connection gone (the lock with it) or the lock refused
 * until it holds it again, the scheduler threads claim nothing (the runs
 * already going on go on: their outcomes are fenced by run_attempt); the
 * change is logged once each way and shown by /metrics
 * mesatee_node_liveness_lock_held and _lock_lost_total. The thread looks
 * every NLIVE_TICK_MS; a loss shows at the latest then.
 *
 * The store is untrusted: run_node, run_attempt and node_lost are not
 * MACed (threat-model.md "The node of a local run"); a node id read back
 * is used only when it is 16 lowercase hex digits. SQLite (one node):
 * nothing starts. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "mt_executor.h"
#include "mt_log.h"

#define NLIVE_TICK_MS 500    /* a sweeper round; a liveness (re)connect try */
#define NLIVE_MAX_NODES 256  /* grace periods followed at once (more: next rounds) */

/* a local run: not under an executor lease (remote_sched.c sweeps those) */
#define LOCAL_RUN SQL_LOCAL_RUN("")

typedef struct {
    char node[17];
    int64_t since_ms; /* monotonic: first seen without its lock */
} dead_node;

struct core_nlive {
    mt_core *core;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop; /* under mu */
    atomic_uint grace_ms;
    atomic_uint_fast64_t rounds, seen_dead, requeued, failed;
    dead_node dead[NLIVE_MAX_NODES];
    size_t n_dead;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A node id as our lock key; false when it is not 16 lowercase hex digits
 * (a row the host edited: left alone). */
static bool node_key(const char *hex, int64_t *key)
{
    if (!hex || strlen(hex) != 16)
        return false;
    uint64_t k = 0;
    for (int i = 0; i < 16; i++) {
        char ch = hex[i];
        unsigned v;
        if (ch >= '0' && ch <= '9')
            v = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v = (unsigned)(ch - 'a' + 10);
        else
            return false;
        k = k << 4 | v;
    }
    *key = (int64_t)k;
    return true;
}

/* Sleeps up to ms; false when stopping. */
static bool nap(struct core_nlive *w, long ms)
{
    struct timespec ts;
    mt_mono_deadline(&ts, ms);
    pthread_mutex_lock(&w->mu);
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
        ;
    bool go = !w->stop;
    pthread_mutex_unlock(&w->mu);
    return go;
}

/* One run of a node that stopped: requeued, canceled or failed, in its own
 * transaction, rechecked there (it may have finished meanwhile). */
static mt_status lose_run(struct core_nlive *w, mt_db *db, const char *task_id, const char *node,
                          mt_err *err)
{
    mt_core *c = w->core;
    sched_lost out;
    int64_t lost = 0;
    mt_status rc = sched_lose_run(c, db, task_id, node, -1, "the node that ran the task stopped",
                                  "task requeued (node stopped)", &out, &lost, err);
    if (rc || out == SCHED_LOST_NONE)
        return rc;
    if (out == SCHED_LOST_ENDED) {
        atomic_fetch_add(&w->failed, 1);
        return MT_OK;
    }
    atomic_fetch_add(&w->requeued, 1);
    mt_warn("task %s: the node that ran it stopped (node id %s, without its liveness lock for "
            "%u ms or more); back in the queue, attempt %lld of %u",
            task_id, node, atomic_load(&w->grace_ms), (long long)lost + 1, c->run_max_attempts);
    return MT_OK;
}

/* The runs of a node that stayed without its lock for the grace period. */
static mt_status lose_node(struct core_nlive *w, mt_db *db, const char *node, mt_err *err)
{
    json_t *ids = NULL;
    mt_status rc = store_ids(db, "SELECT task_id FROM tasks WHERE run_node = ? AND " LOCAL_RUN,
                             node, &ids, err);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        mt_err e;
        mt_err_clear(&e);
        const char *id = json_string_value(v);
        if (lose_run(w, db, id, node, &e) != MT_OK) {
            mt_error("task %s: handling the run of stopped node %s failed: %s", id, node, e.msg);
            if (!rc)
                rc = mt_err_set(err, e.code, "%s", e.msg);
        }
    }
    json_decref(ids);
    return rc;
}

/* One sweeper round: the nodes with local runs, their locks, the grace
 * periods (a node with no run left, or seen alive, is forgotten). */
static mt_status sweep(struct core_nlive *w, mt_db *db, mt_err *err)
{
    mt_core *c = w->core;
    json_t *nodes = NULL;
    mt_status rc = store_ids(db,
                             "SELECT DISTINCT run_node FROM tasks WHERE " LOCAL_RUN
                             " AND run_node <> '' AND run_node <> ?",
                             c->node_id, &nodes, err);
    if (rc)
        return rc;
    dead_node next[NLIVE_MAX_NODES];
    size_t n = 0;
    int64_t now = mono_ms();
    uint32_t grace = atomic_load(&w->grace_ms);
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v)
    {
        const char *node = json_string_value(v);
        int64_t key;
        bool held = true;
        if (n >= NLIVE_MAX_NODES || !node_key(node, &key))
            continue;
        if ((rc = mt_db_lock_held(db, key, &held, err)))
            break;
        if (held)
            continue;
        int64_t since = now;
        bool known = false;
        for (size_t j = 0; j < w->n_dead && !known; j++)
            if (!strcmp(w->dead[j].node, node)) {
                since = w->dead[j].since_ms;
                known = true;
            }
        if (!known) {
            atomic_fetch_add(&w->seen_dead, 1);
            mt_info("node %s holds no liveness lock; its running tasks go back to the queue "
                    "if it stays so for %u ms",
                    node, grace);
        }
        snprintf(next[n].node, sizeof next[n].node, "%s", node);
        next[n++].since_ms = since;
        if (now - since >= (int64_t)grace) {
            mt_err e;
            mt_err_clear(&e);
            (void)lose_node(w, db, node, &e); /* each failure is logged there */
        }
    }
    json_decref(nodes);
    if (!rc) {
        memcpy(w->dead, next, n * sizeof *next);
        w->n_dead = n;
    }
    return rc;
}

/* Records whether this node holds its liveness lock; logs and wakes the
 * scheduler on a change (claims stop / resume: nlive_claim_ok). */
static void set_held(struct core_nlive *w, bool held, const char *why)
{
    /* in mt_core, not here: the scheduler threads read it until they stop,
     * which is after this thread is gone (mt_core_close) */
    bool was = !atomic_exchange(&w->core->live_unheld, !held);
    if (was == held)
        return;
    if (held) {
        mt_info("node liveness: this node holds its liveness lock; it claims tasks");
        sched_wake_all(w->core);
    } else {
        atomic_fetch_add(&w->core->live_lost, 1);
        mt_warn("node liveness: this node lost its liveness lock (%s); it claims no new task "
                "until it holds it again (other nodes would take its runs for those of a "
                "stopped node)",
                why);
    }
}

static void *nlive_main(void *arg)
{
    struct core_nlive *w = arg;
    mt_core *c = w->core;
    mt_db *db = NULL;
    unsigned gen = 0;
    bool leader = false;
    unsigned retrying = 0; /* failed (re)takes of the lock in a row */
    int64_t key = 0;
    (void)node_key(c->node_id, &key);
    do {
        mt_err err;
        mt_err_clear(&err);
        if (db && mt_db_generation(db) != gen) { /* reconnected: its locks are gone */
            set_held(w, false, "its database connection was re-established");
            store_close(db);
            db = NULL;
        }
        if (!db) {
            set_held(w, false, "no database connection");
            leader = false;
            w->n_dead = 0; /* grace periods start again: every node may be reconnecting */
            bool got = false;
            if (store_open(c->db_path, false, &db, &err) != MT_OK ||
                mt_db_lock_shared(db, key, &got, &err) != MT_OK || !got) {
                if (!got && !err.msg[0])
                    mt_err_set(&err, MT_EUNAVAIL, "the liveness lock was refused");
                /* once per failure streak at warn (each retry at debug) */
                if (!retrying++)
                    mt_warn("node liveness: %s; retrying every %d ms, claiming no task "
                            "meanwhile (other nodes may take this node for stopped after %u ms "
                            "without it)",
                            err.msg, NLIVE_TICK_MS, atomic_load(&w->grace_ms));
                else
                    mt_debug("node liveness: %s; retrying", err.msg);
                store_close(db);
                db = NULL;
                continue;
            }
            gen = mt_db_generation(db);
            retrying = 0;
            set_held(w, true, "");
        }
        if (!leader) {
            if (mt_db_try_lock(db, MT_DB_LOCK_NODE_SWEEP, &leader, &err) != MT_OK) {
                set_held(w, false, "its database connection failed");
                mt_warn("node liveness: %s; reconnecting", err.msg);
                store_close(db);
                db = NULL;
                continue;
            }
            if (leader) {
                w->n_dead = 0;
                mt_debug("node liveness: this node sweeps the runs of stopped nodes");
            }
        }
        if (mt_db_generation(db) != gen)
            continue; /* the lock above may have reconnected: start over */

        if (leader) {
            if (sweep(w, db, &err) != MT_OK) {
                set_held(w, false, "its database connection failed");
                mt_warn("node liveness: the sweep failed: %s; reconnecting", err.msg);
                store_close(db);
                db = NULL;
                continue;
            }
            if (mt_db_generation(db) == gen)
                atomic_fetch_add(&w->rounds, 1);
        }
    } while (nap(w, NLIVE_TICK_MS));
    store_close(db); /* ends the session: both locks go */
    return NULL;
}

mt_status nlive_start(mt_core *c, mt_err *err)
{
    if (c->nlive || mt_db_url_backend(c->db_path) != MT_DB_PG)
        return MT_OK;
    struct core_nlive *w = calloc(1, sizeof *w);
    if (!w)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    w->core = c;
    atomic_store(&c->live_unheld, true); /* no claim before the lock is first taken */
    atomic_store(&w->grace_ms, c->node_dead_after_ms);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->th, NULL, nlive_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return mt_err_set(err, MT_EINTERNAL, "cannot start the node liveness thread");
    }
    c->nlive = w;
    return MT_OK;
}

void nlive_stop(mt_core *c)
{
    struct core_nlive *w = c ? c->nlive : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    c->nlive = NULL;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

bool nlive_claim_ok(mt_core *c)
{
    return !atomic_load(&c->live_unheld);
}

void nlive_set_grace_ms(mt_core *c, uint32_t ms)
{
    if (c && c->nlive)
        atomic_store(&c->nlive->grace_ms, ms);
}

void nlive_counts(mt_core *c, uint64_t *rounds, uint64_t *seen_dead, uint64_t *requeued,
                  uint64_t *failed)
{
    struct core_nlive *w = c ? c->nlive : NULL;
    *rounds = w ? atomic_load(&w->rounds) : 0;
    *seen_dead = w ? atomic_load(&w->seen_dead) : 0;
    *requeued = w ? atomic_load(&w->requeued) : 0;
    *failed = w ? atomic_load(&w->failed) : 0;
}
