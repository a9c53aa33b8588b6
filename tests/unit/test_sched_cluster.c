/* Several schedulers on one store (issue 14, docs/cluster.md "Scheduling
 * across nodes"): NCORES mt_core instances in this process, each with its
 * own scheduler threads and connections, on one database (argv[1]: a
 * PostgreSQL URL from tests/pg/pg-temp.sh, or "sqlite"), stand for
 * several nodes (argv[1] "sqlite": <data dir>/mesatee.db). Hundreds of tasks are invoked through all of them at once;
 * every task must run exactly once: one "task running" and one "task
 * finished" audit entry each, status finished, the audit chain intact and
 * gap-free. On PostgreSQL it also checks the LISTEN/NOTIFY wake-ups: a task
 * invoked on a core without a scheduler is run by another core, and the
 * first core's task listener (what wakes GET /v1/tasks/{id}?wait=) hears
 * of its end through a notification. */
#include "test_core_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core_internal.h" /* store_int, sched_stop, cwake_counts */

#ifndef MT_WORKER_TEST_PATH
#error "MT_WORKER_TEST_PATH must name the mesatee-worker-test executable"
#endif

#define NCORES 3

static const char *g_url;
static int g_tasks = 200;

typedef struct cluster {
    char dir[128];
    mt_tee *tee;
    mt_core_config cfg;
    tenv node[NCORES]; /* .core, shared dir/tee */
    char *tok;
    char fn[33];
} cluster;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void cluster_open(cluster *cl)
{
    memset(cl, 0, sizeof *cl);
    snprintf(cl->dir, sizeof cl->dir, "/tmp/mt_sched_cluster.XXXXXX");
    assert_non_null(mkdtemp(cl->dir));
    mt_err err;
    assert_int_equal(mt_tee_open("none", cl->dir, &cl->tee, &err), MT_OK);
    cl->cfg.admin_password = ADMIN_PW;
    cl->cfg.worker_path = MT_WORKER_TEST_PATH;
    cl->cfg.workers = 3;
    cl->cfg.data_dir = cl->dir;
    /* node_live.c: no run of another node expires before test_dead_node
     * asks for it (test_run_node_scope keeps one for a while) */
    cl->cfg.node_dead_after_ms = 3600000;
    if (mt_db_url_backend(g_url) == MT_DB_PG)
        cl->cfg.store_url = g_url;
    for (int i = 0; i < NCORES; i++) {
        tenv *e = &cl->node[i];
        snprintf(e->dir, sizeof e->dir, "%s", cl->dir);
        e->tee = cl->tee;
        e->cfg = cl->cfg;
        if (mt_core_open(&e->cfg, e->tee, &e->core, &err))
            fail_msg("mt_core_open %d: %s", i, err.msg);
    }
    cl->tok = tlogin(&cl->node[0], "admin", ADMIN_PW);
    json_t *o = NULL;
    assert_int_equal(treq(&cl->node[0], "POST", "/v1/functions", cl->tok,
                          "{\"name\":\"echo\",\"builtin\":\"echo\",\"arguments\":[{\"name\":"
                          "\"message\",\"default\":\"hi\",\"overridable\":true}]}",
                          &o),
                     201);
    snprintf(cl->fn, sizeof cl->fn, "%s", jstr(o, "function_id"));
    json_decref(o);
}

static void cluster_close(cluster *cl)
{
    for (int i = 0; i < NCORES; i++)
        mt_core_close(cl->node[i].core);
    free(cl->tok);
    mt_tee_free(cl->tee);
    tenv_rm(cl->dir);
}

/* Creates, approves and invokes one echo task through node e; false with
 * the failure in why (threads may not fail a cmocka test themselves). */
static bool try_invoke(cluster *cl, tenv *e, int k, char tid[33], char *why, size_t cap)
{
    json_t *o = NULL;
    int st = treqf(e, "POST", "/v1/tasks", cl->tok, &o,
                   "{\"function_id\":\"%s\",\"arguments\":{\"message\":\"m%d\"}}", cl->fn, k);
    if (st != 201) {
        snprintf(why, cap, "create -> %d %s", st, o ? terr_msg(o) : "");
        json_decref(o);
        return false;
    }
    snprintf(tid, 33, "%s", jstr(o, "task_id"));
    json_decref(o);
    char path[160];
    const char *act[] = {"approve", "invoke"};
    for (int a = 0; a < 2; a++) {
        snprintf(path, sizeof path, "/v1/tasks/%s/%s", tid, act[a]);
        st = treq(e, "POST", path, cl->tok, NULL, &o);
        if (st != 200) {
            snprintf(why, cap, "%s -> %d %s", act[a], st, o ? terr_msg(o) : "");
            json_decref(o);
            return false;
        }
        json_decref(o);
    }
    return true;
}

static void invoke_on(cluster *cl, tenv *e, int k, char tid[33])
{
    char why[512];
    if (!try_invoke(cl, e, k, tid, why, sizeof why))
        fail_msg("%s", why);
}

static int64_t count(mt_core *c, const char *sql)
{
    int64_t v = -1;
    bool found = false;
    mt_err err;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_int(c->db, &err, &v, &found, sql);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
    return v;
}

typedef struct inv_arg {
    cluster *cl;
    int node, from, to;
    bool failed;
    char why[512];
} inv_arg;

static void *invoker(void *p)
{
    inv_arg *a = p;
    for (int k = a->from; k < a->to && !a->failed; k++) {
        char tid[33];
        a->failed = !try_invoke(a->cl, &a->cl->node[a->node], k, tid, a->why, sizeof a->why);
    }
    return NULL;
}

static cluster g_cl; /* one database (and one set of platform keys) for both tests */

static int group_setup(void **state)
{
    (void)state;
    cluster_open(&g_cl);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cluster_close(&g_cl);
    return 0;
}

static void test_every_task_once(void **state)
{
    (void)state;
    cluster *clp = &g_cl;
#define cl (*clp)
    mt_err err;
    for (int i = 0; i < NCORES; i++) /* node 0's may run already */
        assert_int_equal(mt_core_start_scheduler(cl.node[i].core, &err), MT_OK);
    int64_t before = count(cl.node[0].core, "SELECT count(*) FROM tasks");
    /* one invoking thread per node, all at once, while every node claims */
    pthread_t th[NCORES];
    inv_arg args[NCORES];
    for (int i = 0; i < NCORES; i++) {
        args[i] = (inv_arg){&cl, i, g_tasks * i / NCORES, g_tasks * (i + 1) / NCORES, false, ""};
        assert_int_equal(pthread_create(&th[i], NULL, invoker, &args[i]), 0);
    }
    for (int i = 0; i < NCORES; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NCORES; i++)
        if (args[i].failed)
            fail_msg("node %d: %s", i, args[i].why);
    mt_core *c0 = cl.node[0].core;
    int64_t done = 0;
    for (int waited = 0; waited < 120000; waited += 20) {
        done = count(c0, "SELECT count(*) FROM tasks WHERE status IN ('finished', 'failed', "
                         "'canceled')") - before;
        if (done >= g_tasks)
            break;
        sleep_ms(20);
    }
    assert_int_equal(done, g_tasks);
    int64_t all = before + g_tasks;
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status = 'finished'"), all);
    /* exactly once: one claim and one outcome per task, no task without */
    assert_int_equal(count(c0, "SELECT count(*) FROM audit WHERE action = 'task running'"), all);
    assert_int_equal(count(c0, "SELECT count(DISTINCT object) FROM audit WHERE action = "
                               "'task running'"),
                     all);
    assert_int_equal(count(c0, "SELECT count(*) FROM audit WHERE action = 'task finished'"), all);
    assert_int_equal(count(c0, "SELECT count(DISTINCT object) FROM audit WHERE action = "
                               "'task finished'"),
                     all);
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM "
                               "audit a WHERE a.action = 'task finished' AND a.object = "
                               "'task:' || t.task_id)"),
                     0);
    assert_int_equal(count(c0, "SELECT sum(tasks_finished) FROM functions"), all);
    /* the chain: gap-free and every entry authenticated */
    assert_int_equal(count(c0, "SELECT count(*) FROM audit"),
                     count(c0, "SELECT max(seq) - min(seq) + 1 FROM audit"));
    uint64_t entries = 0;
    if (mt_core_audit_verify_dir(cl.dir, cl.cfg.store_url, NULL, 0, &entries, &err))
        fail_msg("audit verify: %s", err.msg);
    assert_true(entries >= (uint64_t)(3 * g_tasks));
    /* every node ran some tasks (the claims were spread, not serialised on
     * one node): logged, not asserted (scheduling is not deterministic) */
    for (int i = 0; i < NCORES; i++) {
        char *m = sched_metrics_text(cl.node[i].core);
        const char *t = m ? strstr(m, "\nmesatee_scheduler_transitions_total ") : NULL;
        print_message("node %d: %s", i, t ? t + 1 : "?\n");
        free(m);
    }
#undef cl
}

static atomic_int g_events;
static void on_event(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&g_events, 1);
}

/* PostgreSQL: node 0 has no scheduler; its invoke wakes node 1 or 2 through
 * NOTIFY, and the outcome there reaches node 0's task listener. */
static void test_wake_across_nodes(void **state)
{
    (void)state;
    if (mt_db_url_backend(g_url) != MT_DB_PG) {
        print_message("skipped: LISTEN/NOTIFY needs PostgreSQL\n");
        return;
    }
    cluster *clp = &g_cl;
#define cl (*clp)
    mt_err err;
    for (int i = 1; i < NCORES; i++)
        assert_int_equal(mt_core_start_scheduler(cl.node[i].core, &err), MT_OK);
    mt_core_set_task_listener(cl.node[0].core, on_event, NULL);
    uint64_t sent0, recv0, fb0, s1, r1, f1, s2, r2, f2;
    cwake_counts(cl.node[1].core, &s1, &r1, &f1);
    cwake_counts(cl.node[2].core, &s2, &r2, &f2);
    char tid[33];
    invoke_on(&cl, &cl.node[0], 0, tid);
    char *st = NULL;
    for (int waited = 0; waited < 60000; waited += 20) {
        free(st);
        st = ttask_status(&cl.node[0], cl.tok, tid);
        if (!strcmp(st, "finished"))
            break;
        sleep_ms(20);
    }
    assert_string_equal(st, "finished");
    free(st);
    /* node 0 told the others (a NOTIFY), they heard it */
    uint64_t s1b, r1b, f1b, s2b, r2b, f2b;
    /* every count polled: each node's listener thread takes its
     * notifications in its own time (nodes 1 and 2 may lag behind node 0) */
    for (int waited = 0; waited < 60000; waited += 20) {
        cwake_counts(cl.node[0].core, &sent0, &recv0, &fb0);
        cwake_counts(cl.node[1].core, &s1b, &r1b, &f1b);
        cwake_counts(cl.node[2].core, &s2b, &r2b, &f2b);
        if (recv0 > 0 && atomic_load(&g_events) > 0 && r1b + r2b > r1 + r2)
            break;
        sleep_ms(20);
    }
    assert_true(sent0 >= 1);
    assert_true(r1b + r2b > r1 + r2);
    /* and the outcome on node 1 or 2 came back to node 0 as a notification,
     * raising its task event (what parked ?wait= requests listen to) */
    assert_true(recv0 >= 1);
    assert_true(atomic_load(&g_events) >= 1);
    char *m = sched_metrics_text(cl.node[0].core); /* /metrics shows them */
    assert_non_null(m);
    assert_non_null(strstr(m, "mesatee_cluster_notifications_total{direction=\"received\"} "));
    assert_non_null(strstr(m, "mesatee_cluster_fallback_wakeups_total "));
    free(m);
    mt_core_set_task_listener(cl.node[0].core, NULL, NULL);
#undef cl
}

static uint64_t received_all(cluster *cl)
{
    uint64_t sum = 0;
    for (int i = 0; i < NCORES; i++) {
        uint64_t s, r, f;
        cwake_counts(cl->node[i].core, &s, &r, &f);
        sum += r;
    }
    return sum;
}

/* PostgreSQL restarted under the nodes (pg-temp.sh's MT_PG_RESTART): the
 * listening connections are re-established and notifications flow again;
 * a task invoked afterwards runs once. */
static void test_wake_after_restart(void **state)
{
    (void)state;
    const char *restart = getenv("MT_PG_RESTART");
    if (mt_db_url_backend(g_url) != MT_DB_PG || !restart) {
        print_message("skipped: needs PostgreSQL and MT_PG_RESTART\n");
        return;
    }
    cluster *cl = &g_cl;
    assert_int_equal(system(restart), 0);
    /* every listener back: its fallback counter moves only while it is
     * connected and listening (a notification sent before a node listens
     * again is lost by design: the fallback then finds the task) */
    uint64_t fb0[NCORES];
    for (int i = 0; i < NCORES; i++) {
        uint64_t sn, r;
        cwake_counts(cl->node[i].core, &sn, &r, &fb0[i]);
    }
    for (int i = 0; i < NCORES; i++) {
        uint64_t sn, r, f = fb0[i];
        for (int waited = 0; f <= fb0[i] && waited < 20000; waited += 20) {
            sleep_ms(20);
            cwake_counts(cl->node[i].core, &sn, &r, &f);
        }
        assert_true(f > fb0[i]);
    }
    uint64_t before = received_all(cl);
    char tid[33], why[512] = "";
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) { /* the first request may meet the broken connection */
        ok = try_invoke(cl, &cl->node[0], 100000 + i, tid, why, sizeof why);
        if (!ok)
            sleep_ms(50);
    }
    if (!ok)
        fail_msg("invoke after the restart: %s", why);
    char *st = NULL;
    for (int waited = 0; waited < 60000; waited += 20) {
        free(st);
        st = ttask_status(&cl->node[0], cl->tok, tid);
        if (!strcmp(st, "finished") && received_all(cl) > before)
            break;
        sleep_ms(20);
    }
    assert_string_equal(st, "finished");
    free(st);
    for (int i = 0; i < NCORES; i++) {
        uint64_t sn, r, f;
        cwake_counts(cl->node[i].core, &sn, &r, &f);
        print_message("node %d: notifications sent %llu, received %llu, fallback %llu\n", i,
                      (unsigned long long)sn, (unsigned long long)r, (unsigned long long)f);
    }
    assert_true(received_all(cl) > before);
    char q[160];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM audit WHERE object = 'task:%s' AND action IN ('task "
             "running', 'task finished')",
             tid);
    assert_int_equal(count(cl->node[0].core, q), 2); /* claimed once, finished once */
}

/* tasks.run_node (store.c migration 12): a node's start fails, and its stop
 * requeues, only its own local runs; another node's run is left to that
 * node. Runs are injected as rows (a finished task put back to 'running'),
 * after every real task finished. PostgreSQL only: a SQLite store has one
 * node by construction and keeps recovering every run. */
static void exec_sql(mt_core *c, const char *sql)
{
    mt_err err;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_run(c->db, &err, NULL, sql);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
}

static void test_run_node_scope(void **state)
{
    (void)state;
    if (mt_db_url_backend(g_url) != MT_DB_PG) {
        print_message("skipped: several nodes need PostgreSQL\n");
        return;
    }
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    /* every claim recorded the node (one node id here: one TEE, one dir) */
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status = 'finished' AND "
                               "length(run_node) <> 16"),
                     0);
    assert_int_equal(count(c0, "SELECT count(DISTINCT run_node) FROM tasks"), 1);
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status IN ('running', "
                               "'staged')"),
                     0);
    /* a run of another node, and one of this node */
    exec_sql(c0, "UPDATE tasks SET status = 'running', run_node = 'ffffffffffffffff' WHERE "
                 "task_id = (SELECT min(task_id) FROM tasks WHERE status = 'finished')");
    exec_sql(c0, "UPDATE tasks SET status = 'running' WHERE task_id = (SELECT max(task_id) "
                 "FROM tasks WHERE status = 'finished')");
    const char *foreign = "SELECT count(*) FROM tasks WHERE status = 'running' AND run_node = "
                          "'ffffffffffffffff'";
    /* the stop of node 2: its own run back in the queue (and run again by
     * the others), the other node's run untouched */
    mt_core_close(cl->node[2].core);
    cl->node[2].core = NULL;
    assert_int_equal(count(c0, foreign), 1);
    for (int waited = 0; waited < 60000; waited += 20) {
        if (count(c0, "SELECT count(*) FROM tasks WHERE status IN ('staged', 'running') AND "
                      "run_node <> 'ffffffffffffffff'") == 0)
            break;
        sleep_ms(20);
    }
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status IN ('staged', "
                               "'running') AND run_node <> 'ffffffffffffffff'"),
                     0);
    /* the start of node 2: its own run failed (restart), the other's kept */
    exec_sql(c0, "UPDATE tasks SET status = 'running' WHERE task_id = (SELECT max(task_id) "
                 "FROM tasks WHERE status = 'finished' AND run_node <> 'ffffffffffffffff')");
    mt_err err;
    if (mt_core_open(&cl->node[2].cfg, cl->node[2].tee, &cl->node[2].core, &err))
        fail_msg("mt_core_open: %s", err.msg);
    assert_int_equal(count(c0, foreign), 1);
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status = 'running'"), 1);
    assert_true(count(c0, "SELECT count(*) FROM tasks WHERE status = 'failed' AND "
                          "run_node <> 'ffffffffffffffff'") >= 1);
    /* a row from before run_node ('') is recovered by any node */
    exec_sql(c0, "UPDATE tasks SET run_node = '' WHERE run_node = 'ffffffffffffffff'");
    mt_core_close(cl->node[2].core);
    cl->node[2].core = NULL;
    if (mt_core_open(&cl->node[2].cfg, cl->node[2].tee, &cl->node[2].core, &err))
        fail_msg("mt_core_open: %s", err.msg);
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status = 'running'"), 0);
}

/* ---- a node that never comes back (node_live.c) ------------------------
 * The runs of a node whose liveness lock nobody holds for the grace period
 * go back to the queue (then fail after the retry limit); a lock dropped
 * for less (a failover: every session lock at once) changes nothing; a
 * late outcome of a run requeued meanwhile is dropped. The other node is
 * FAKE_NODE, its liveness lock held by this test on a connection of its
 * own; every core here has one node id (one TEE, one dir). */
#define FAKE_NODE "0123456789abcdef"
#define FAKE_KEY ((int64_t)0x0123456789abcdefLL)

static void nlive_sum(cluster *cl, uint64_t *rounds, uint64_t *dead, uint64_t *requeued,
                      uint64_t *failed)
{
    *rounds = *dead = *requeued = *failed = 0;
    for (int i = 0; i < NCORES; i++) {
        uint64_t r, d, q, f;
        nlive_counts(cl->node[i].core, &r, &d, &q, &f);
        *rounds += r;
        *dead += d;
        *requeued += q;
        *failed += f;
    }
}

/* Until the sweeper (whichever core holds its lock) did n more rounds. */
static void wait_rounds(cluster *cl, uint64_t n)
{
    uint64_t r0, r, d, q, f;
    nlive_sum(cl, &r0, &d, &q, &f);
    r = r0;
    for (int waited = 0; r < r0 + n && waited < 60000; waited += 20) {
        sleep_ms(20);
        nlive_sum(cl, &r, &d, &q, &f);
    }
    assert_true(r >= r0 + n);
}

static void set_grace(cluster *cl, uint32_t ms)
{
    for (int i = 0; i < NCORES; i++)
        nlive_set_grace_ms(cl->node[i].core, ms);
}

static char *task_col(mt_core *c, const char *col, const char *tid)
{
    char q[200];
    snprintf(q, sizeof q, "SELECT %s FROM tasks WHERE task_id = ?", col);
    json_t *ids = NULL;
    mt_err err;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_ids(c->db, q, tid, &ids, &err);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", q, err.msg);
    char *v = strdup(json_array_size(ids) == 1 && json_string_value(json_array_get(ids, 0))
                         ? json_string_value(json_array_get(ids, 0))
                         : "(none)");
    json_decref(ids);
    return v;
}

static void wait_task_status(cluster *cl, const char *tid, const char *want)
{
    char *st = NULL;
    for (int waited = 0; waited < 60000; waited += 20) {
        free(st);
        st = task_col(cl->node[0].core, "status", tid);
        if (!strcmp(st, want))
            break;
        sleep_ms(20);
    }
    assert_string_equal(st, want);
    free(st);
}

static int64_t audit_count(mt_core *c, const char *action, const char *tid)
{
    char q[200];
    snprintf(q, sizeof q, "SELECT count(*) FROM audit WHERE action = '%s' AND object = 'task:%s'",
             action, tid);
    return count(c, q);
}

static void test_dead_node(void **state)
{
    (void)state;
    if (mt_db_url_backend(g_url) != MT_DB_PG) {
        print_message("skipped: several nodes need PostgreSQL\n");
        return;
    }
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    mt_err err;
    assert_int_equal(count(c0, "SELECT count(*) FROM tasks WHERE status IN ('running', "
                               "'staged')"),
                     0);
    /* the other node is alive: its lock is held */
    mt_db *ldb = NULL, *adb = NULL;
    assert_int_equal(store_open(g_url, false, &ldb, &err), MT_OK);
    assert_int_equal(store_open(g_url, false, &adb, &err), MT_OK);
    bool got = false;
    assert_int_equal(mt_db_lock_shared(ldb, FAKE_KEY, &got, &err), MT_OK);
    assert_true(got);
    set_grace(cl, 3600000);
    json_t *ids = NULL;
    pthread_mutex_lock(&c0->mu);
    assert_int_equal(store_ids(c0->db, "SELECT min(task_id) FROM tasks WHERE status = "
                                       "'finished'",
                               NULL, &ids, &err),
                     MT_OK);
    pthread_mutex_unlock(&c0->mu);
    char tid[33];
    snprintf(tid, sizeof tid, "%s", json_string_value(json_array_get(ids, 0)));
    json_decref(ids);
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'running', run_node = '" FAKE_NODE
             "', run_attempt = run_attempt + 1 WHERE task_id = '%s'",
             tid);
    exec_sql(c0, sql);
    uint64_t r, d0, q0, f0, d, q, f;
    nlive_sum(cl, &r, &d0, &q0, &f0);
    wait_rounds(cl, 3); /* seen with its lock: nothing starts */
    nlive_sum(cl, &r, &d, &q, &f);
    assert_int_equal(d, d0);
    /* a failover: every session lock of the database dropped at once (the
     * cores' own, the sweeper's, the other node's) */
    json_t *killed = NULL;
    if (store_ids(adb, "SELECT CAST(pg_terminate_backend(pid) AS TEXT) FROM pg_locks WHERE "
                       "locktype = 'advisory' AND pid <> pg_backend_pid()",
                  NULL, &killed, &err))
        fail_msg("terminating the lock holders: %s", err.msg);
    assert_true(json_array_size(killed) >= 2); /* the other node's and the sweeper's */
    json_decref(killed);
    /* the sweeper (back on a new connection) sees the other node without
     * its lock; the other node takes it again well within the grace */
    for (int waited = 0; d == d0 && waited < 60000; waited += 20) {
        sleep_ms(20);
        nlive_sum(cl, &r, &d, &q, &f);
    }
    assert_true(d > d0);
    got = false;
    for (int i = 0; i < 200 && !got; i++) /* the first try meets the ended session */
        if (mt_db_lock_shared(ldb, FAKE_KEY, &got, &err) != MT_OK)
            sleep_ms(20);
    assert_true(got);
    wait_rounds(cl, 3);
    nlive_sum(cl, &r, &d, &q, &f);
    assert_int_equal(q, q0);
    assert_int_equal(f, f0);
    char *v = task_col(c0, "status", tid);
    assert_string_equal(v, "running");
    free(v);
    v = task_col(c0, "run_node", tid);
    assert_string_equal(v, FAKE_NODE);
    free(v);
    /* the other node stops for good: after the (now short) grace its run is
     * requeued once and run by a live node */
    store_close(ldb);
    set_grace(cl, 200);
    wait_task_status(cl, tid, "finished");
    assert_int_equal(audit_count(c0, "task requeued (node stopped)", tid), 1);
    v = task_col(c0, "run_node", tid);
    assert_string_equal(v, cl->node[0].core->node_id);
    free(v);
    v = task_col(c0, "CAST(node_lost AS TEXT)", tid);
    assert_string_equal(v, "1");
    free(v);
    nlive_sum(cl, &r, &d, &q, &f);
    assert_int_equal(q, q0 + 1);
    /* the retry limit (3 claims): a run lost for the third time fails */
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'running', run_node = '" FAKE_NODE
             "', node_lost = 2 WHERE task_id = '%s'",
             tid);
    exec_sql(c0, sql);
    wait_task_status(cl, tid, "failed");
    v = task_col(c0, "failure_reason", tid);
    assert_non_null(strstr(v, "the node that ran the task stopped (node id " FAKE_NODE ")"));
    assert_non_null(strstr(v, "no attempt left of 3"));
    free(v);
    assert_int_equal(audit_count(c0, "task requeued (node stopped)", tid), 1);
    assert_int_equal(audit_count(c0, "task failed", tid), 1);
    /* the last loss commits the count first and ends the run in a second
     * transaction: a run requeued and claimed again in between (here by a
     * trigger that moves the row to a live node's next claim as the count
     * is committed) is not ended (it was failed: the end was not fenced on
     * the lost run's node and claim) */
    const char *n0 = cl->node[0].core->node_id;
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION mt_test_steal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "UPDATE tasks SET run_node = '%s', run_attempt = run_attempt + 1 WHERE task_id = "
             "NEW.task_id; RETURN NULL; END $$",
             n0);
    exec_sql(c0, sql);
    exec_sql(c0, "CREATE TRIGGER mt_test_steal AFTER UPDATE OF node_lost ON tasks FOR EACH ROW "
                 "WHEN (NEW.status = 'running' AND NEW.node_lost = 3) EXECUTE FUNCTION "
                 "mt_test_steal()");
    nlive_sum(cl, &r, &d, &q, &f0);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'running', run_node = '" FAKE_NODE
             "', node_lost = 2, failure_reason = NULL WHERE task_id = '%s'",
             tid);
    exec_sql(c0, sql);
    v = NULL;
    for (int i = 0; i < 3000; i++) { /* up to 60 s */
        free(v);
        v = task_col(c0, "CAST(node_lost AS TEXT)", tid);
        if (!strcmp(v, "3"))
            break;
        sleep_ms(20);
    }
    assert_string_equal(v, "3");
    free(v);
    wait_rounds(cl, 2); /* the round that counted the loss is over */
    exec_sql(c0, "DROP TRIGGER mt_test_steal ON tasks");
    exec_sql(c0, "DROP FUNCTION mt_test_steal()");
    v = task_col(c0, "status", tid);
    if (strcmp(v, "running"))
        fail_msg("the run claimed again after the loss was ended: %s", v);
    free(v);
    v = task_col(c0, "run_node", tid);
    assert_string_equal(v, n0);
    free(v);
    nlive_sum(cl, &r, &d, &q, &f);
    assert_int_equal(f, f0);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", tid);
    exec_sql(c0, sql);
    store_close(adb);
}

/* A local run whose row stopped being its claim (requeued by a sweeper
 * and claimed again: here its run_attempt moved on) is stopped, and its
 * outcome is not stored. */
static void test_late_outcome_dropped(void **state)
{
    (void)state;
    if (mt_db_url_backend(g_url) != MT_DB_PG) {
        print_message("skipped: several nodes need PostgreSQL\n");
        return;
    }
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    mt_err err;
    /* a task that never ends: echo made __test_spin, the row resealed */
    json_t *o = NULL;
    assert_int_equal(treq(&cl->node[0], "POST", "/v1/functions", cl->tok,
                          "{\"name\":\"spin\",\"builtin\":\"echo\",\"arguments\":[{\"name\":"
                          "\"message\",\"default\":\"hi\",\"overridable\":true}]}",
                          &o),
                     201);
    char fn[33], sql[300];
    snprintf(fn, sizeof fn, "%s", jstr(o, "function_id"));
    json_decref(o);
    snprintf(sql, sizeof sql, "UPDATE functions SET builtin = '__test_spin' WHERE function_id = '%s'",
             fn);
    exec_sql(c0, sql);
    pthread_mutex_lock(&c0->mu);
    mt_status rc = integ_function_seal(c0, c0->db, fn, &err);
    pthread_mutex_unlock(&c0->mu);
    assert_int_equal(rc, MT_OK);
    char saved[33];
    memcpy(saved, cl->fn, sizeof saved);
    memcpy(cl->fn, fn, sizeof cl->fn);
    char tid[33];
    invoke_on(cl, &cl->node[0], 7, tid);
    memcpy(cl->fn, saved, sizeof saved);
    wait_task_status(cl, tid, "running");
    uint64_t dropped0 = 0;
    for (int i = 0; i < NCORES; i++) {
        char *m = sched_metrics_text(cl->node[i].core);
        const char *t = m ? strstr(m, "\nmesatee_scheduler_outcomes_dropped_total ") : NULL;
        assert_non_null(t);
        dropped0 += strtoull(t + strlen("\nmesatee_scheduler_outcomes_dropped_total "), NULL, 10);
        free(m);
    }
    /* the run is no longer this claim */
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET run_attempt = run_attempt + 100 WHERE task_id = '%s'", tid);
    exec_sql(c0, sql);
    uint64_t dropped = dropped0;
    for (int waited = 0; dropped == dropped0 && waited < 60000; waited += 20) {
        sleep_ms(20);
        dropped = 0;
        for (int i = 0; i < NCORES; i++) {
            char *m = sched_metrics_text(cl->node[i].core);
            const char *t = m ? strstr(m, "\nmesatee_scheduler_outcomes_dropped_total ") : NULL;
            if (t)
                dropped +=
                    strtoull(t + strlen("\nmesatee_scheduler_outcomes_dropped_total "), NULL, 10);
            free(m);
        }
    }
    assert_int_equal(dropped, dropped0 + 1);
    /* nothing stored: still running, no outcome in the audit chain */
    char *v = task_col(c0, "status", tid);
    assert_string_equal(v, "running");
    free(v);
    assert_int_equal(audit_count(c0, "task failed", tid), 0);
    assert_int_equal(audit_count(c0, "task canceled", tid), 0);
    assert_int_equal(audit_count(c0, "task finished", tid), 0);
    /* out of the way of the other tests */
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", tid);
    exec_sql(c0, sql);
}

/* One counter or gauge of sched_metrics_text (0 when absent). */
static uint64_t metric(mt_core *c, const char *name)
{
    char *m = sched_metrics_text(c);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *t = m ? strstr(m, key) : NULL;
    uint64_t v = t ? strtoull(t + strlen(key), NULL, 10) : 0;
    free(m);
    return v;
}

/* Orphaned runs (sched.c orphan_main; docs/design.md "Orphaned runs"): a
 * claim whose commit reported a failure yet stood leaves a row running under
 * this node's id that no thread runs. Simulated here by putting a finished
 * task back to running under the node id with a new attempt (what a claim
 * writes), no thread running it: the orphan check puts it back in the queue
 * with a "task requeued (orphaned)" entry and it runs once more. A task that
 * really runs (held at a gate: __test_spin) while the check looks is never
 * requeued: it runs from before the orphan was made, so every check round
 * that saw the orphan for the whole grace period saw it too. Both backends. */
static void test_orphaned_run(void **state)
{
    (void)state;
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    mt_err err;
    uint64_t orph0 = 0;
    for (int i = 0; i < NCORES; i++)
        orph0 += metric(cl->node[i].core, "mesatee_scheduler_orphans_requeued_total");
    /* the held run */
    json_t *o = NULL;
    assert_int_equal(treq(&cl->node[0], "POST", "/v1/functions", cl->tok,
                          "{\"name\":\"gate\",\"builtin\":\"echo\",\"arguments\":[{\"name\":"
                          "\"message\",\"default\":\"hi\",\"overridable\":true}]}",
                          &o),
                     201);
    char fn[33], sql[400];
    snprintf(fn, sizeof fn, "%s", jstr(o, "function_id"));
    json_decref(o);
    snprintf(sql, sizeof sql, "UPDATE functions SET builtin = '__test_spin' WHERE function_id = '%s'",
             fn);
    exec_sql(c0, sql);
    pthread_mutex_lock(&c0->mu);
    mt_status rc = integ_function_seal(c0, c0->db, fn, &err);
    pthread_mutex_unlock(&c0->mu);
    assert_int_equal(rc, MT_OK);
    char saved[33], held[33], tid[33];
    memcpy(saved, cl->fn, sizeof saved);
    memcpy(cl->fn, fn, sizeof cl->fn);
    invoke_on(cl, &cl->node[0], 11, held);
    memcpy(cl->fn, saved, sizeof saved);
    wait_task_status(cl, held, "running");
    char *held_attempt = task_col(c0, "CAST(run_attempt AS TEXT)", held);

    /* the orphan: a finished task, running again under this node's id */
    invoke_on(cl, &cl->node[1], 12, tid);
    wait_task_status(cl, tid, "finished");
    assert_int_equal(audit_count(c0, "task finished", tid), 1);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'running', run_node = '%s', lease_until = 0, "
             "run_attempt = run_attempt + 1, result = NULL WHERE task_id = '%s'",
             c0->node_id, tid);
    exec_sql(c0, sql);
    for (int waited = 0; audit_count(c0, "task finished", tid) < 2 && waited < 90000;
         waited += 50)
        sleep_ms(50);
    assert_int_equal(audit_count(c0, "task finished", tid), 2);
    wait_task_status(cl, tid, "finished");
    assert_int_equal(audit_count(c0, "task requeued (orphaned)", tid), 1);
    assert_int_equal(audit_count(c0, "task running", tid), 2); /* its first claim and one more */
    uint64_t orph = 0;
    for (int i = 0; i < NCORES; i++)
        orph += metric(cl->node[i].core, "mesatee_scheduler_orphans_requeued_total");
    assert_int_equal(orph, orph0 + 1);

    /* the held run went on, untouched */
    char *v = task_col(c0, "status", held);
    assert_string_equal(v, "running");
    free(v);
    v = task_col(c0, "CAST(run_attempt AS TEXT)", held);
    assert_string_equal(v, held_attempt);
    free(v);
    free(held_attempt);
    assert_int_equal(audit_count(c0, "task requeued (orphaned)", held), 0);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/cancel", held);
    assert_int_equal(treq(&cl->node[0], "POST", path, cl->tok, NULL, &o), 200);
    json_decref(o);
    wait_task_status(cl, held, "canceled");

    /* an orphan at its last attempt is failed, not run again (a run whose
     * outcome can never be stored must not run forever); one whose
     * cancellation was asked is canceled */
    char last[33], canc[33];
    invoke_on(cl, &cl->node[1], 13, last);
    wait_task_status(cl, last, "finished");
    invoke_on(cl, &cl->node[1], 14, canc);
    wait_task_status(cl, canc, "finished");
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'running', run_node = '%s', lease_until = 0, "
             "run_attempt = run_attempt + 1, result = NULL, node_lost = %u WHERE task_id = '%s'",
             c0->node_id, c0->run_max_attempts - 1, last);
    exec_sql(c0, sql);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'running', run_node = '%s', lease_until = 0, "
             "run_attempt = run_attempt + 1, result = NULL, cancel_requested = 1 "
             "WHERE task_id = '%s'",
             c0->node_id, canc);
    exec_sql(c0, sql);
    wait_task_status(cl, last, "failed");
    wait_task_status(cl, canc, "canceled");
    v = task_col(c0, "failure_reason", last);
    assert_non_null(strstr(v, "without a stored outcome"));
    free(v);
    assert_int_equal(audit_count(c0, "task requeued (orphaned)", last), 0);
    assert_int_equal(audit_count(c0, "task requeued (orphaned)", canc), 0);
    assert_int_equal(audit_count(c0, "task running", last), 1); /* never run again */
    assert_int_equal(audit_count(c0, "task running", canc), 1);
}

/* Creates and approves one echo task through node 0, not invoked. */
static void create_approved(cluster *cl, int k, char tid[33])
{
    json_t *o = NULL;
    assert_int_equal(treqf(&cl->node[0], "POST", "/v1/tasks", cl->tok, &o,
                           "{\"function_id\":\"%s\",\"arguments\":{\"message\":\"m%d\"}}",
                           cl->fn, k),
                     201);
    snprintf(tid, 33, "%s", jstr(o, "task_id"));
    json_decref(o);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/approve", tid);
    assert_int_equal(treq(&cl->node[0], "POST", path, cl->tok, NULL, &o), 200);
    json_decref(o);
}

/* An invoke's transaction as api.c runs it (stage, claim on invoke), on
 * node 0's connection; commit or roll back, then the hand-off told
 * `committed`. Retries while no thread of node 0 sleeps (the claim on
 * invoke needs one). */
static void invoke_claim_tx2(cluster *cl, const char *tid, bool commit, bool committed,
                             bool nosync)
{
    mt_core *c0 = cl->node[0].core;
    for (int tries = 0;; tries++) {
        if (tries > 3000)
            fail_msg("no scheduler thread of node 0 became idle");
        pthread_mutex_lock(&c0->mu);
        mt_err err;
        int64_t attempt = 0;
        mt_status rc = store_begin(c0->db, &err);
        if (!rc)
            rc = store_run(c0->db, &err, NULL,
                           "UPDATE tasks SET status = 'staged', staged_seq = (SELECT "
                           "coalesce(max(staged_seq), 0) + 1 FROM tasks) WHERE task_id = ?",
                           tid);
        if (rc) {
            store_rollback(c0->db);
            pthread_mutex_unlock(&c0->mu);
            fail_msg("staging: %s", err.msg);
        }
        mt_status crc = MT_OK;
        bool claimed = sched_invoke_claim(c0, c0->db, tid, &attempt, &crc, &err);
        if (!claimed || crc) {
            store_rollback(c0->db);
            pthread_mutex_unlock(&c0->mu);
            if (crc)
                fail_msg("claim on invoke: %s", err.msg);
            sleep_ms(20);
            continue;
        }
        if (commit)
            rc = nosync ? mt_db_commit_nosync(c0->db, &err) : store_commit(c0->db, &err);
        else
            store_rollback(c0->db);
        sched_invoke_claimed(c0, tid, attempt, committed, mt_db_sync_mark(c0->db));
        pthread_mutex_unlock(&c0->mu);
        if (rc)
            fail_msg("commit: %s", err.msg);
        return;
    }
}

static void invoke_claim_tx(cluster *cl, const char *tid, bool commit, bool committed)
{
    invoke_claim_tx2(cl, tid, commit, committed, false);
}

/* A counter of sched_metrics_text */
static uint64_t sched_metric(mt_core *c, const char *name)
{
    char *t = sched_metrics_text(c);
    assert_non_null(t);
    char key[160];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(t, key);
    assert_non_null(p);
    uint64_t v = strtoull(p + strlen(key), NULL, 10);
    free(t);
    return v;
}

/* Claim on invoke, the invoke rolled back after the claim: the task is as
 * before (approved, no claim entry), nothing runs it, no orphan; invoked
 * again it runs once. */
static void test_invoke_claim_rolled_back(void **state)
{
    (void)state;
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    char tid[33];
    create_approved(cl, 21, tid);
    char *before = task_col(c0, "status", tid);
    invoke_claim_tx(cl, tid, false, false);
    char *v = task_col(c0, "status", tid);
    assert_string_equal(v, before);
    free(v);
    free(before);
    assert_int_equal(audit_count(c0, "task running", tid), 0);
    char path[160];
    json_t *o = NULL;
    snprintf(path, sizeof path, "/v1/tasks/%s/invoke", tid);
    assert_int_equal(treq(&cl->node[0], "POST", path, cl->tok, NULL, &o), 200);
    json_decref(o);
    wait_task_status(cl, tid, "finished");
    assert_int_equal(audit_count(c0, "task running", tid), 1);
    assert_int_equal(audit_count(c0, "task finished", tid), 1);
    assert_int_equal(audit_count(c0, "task requeued (orphaned)", tid), 0);
}

/* Claim on invoke whose COMMIT happened although it was reported failed
 * (a connection broken during COMMIT): the hand-off is dropped
 * (committed = false) and the row stays running under this node's id with
 * nobody running it. The orphan check requeues it and it runs once: one
 * orphan entry, two claims, one outcome. Fails without the check: the task
 * stays running. */
static void test_invoke_claim_commit_unknown(void **state)
{
    (void)state;
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    char tid[33];
    create_approved(cl, 22, tid);
    invoke_claim_tx(cl, tid, true, false);
    for (int waited = 0; audit_count(c0, "task finished", tid) < 1 && waited < 90000;
         waited += 50)
        sleep_ms(50);
    wait_task_status(cl, tid, "finished");
    assert_int_equal(audit_count(c0, "task requeued (orphaned)", tid), 1);
    assert_int_equal(audit_count(c0, "task running", tid), 2);
    assert_int_equal(audit_count(c0, "task finished", tid), 1);
}

/* A node that cannot take its liveness lock claims nothing (node_live.c):
 * the sweeper on another node would take its runs for those of a stopped
 * node. This test ends every node's lock session and holds the locks
 * itself (exclusive: the nodes' shared tries fail); a task invoked then
 * stays queued although every scheduler was woken for it; once the test lets
 * go, the nodes take their locks again and run it. Fails without the fix:
 * the woken schedulers claimed and ran it. */
static void test_no_claim_without_lock(void **state)
{
    (void)state;
    if (mt_db_url_backend(g_url) != MT_DB_PG) {
        print_message("skipped: liveness locks need PostgreSQL\n");
        return;
    }
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    mt_err err;
    set_grace(cl, 3600000);
    mt_db *tdb = NULL;
    assert_int_equal(store_open(g_url, false, &tdb, &err), MT_OK);
    uint64_t lost0[NCORES];
    for (int i = 0; i < NCORES; i++) {
        mt_core *c = cl->node[i].core;
        assert_int_equal(metric(c, "mesatee_node_liveness_lock_held"), 1);
        lost0[i] = metric(c, "mesatee_node_liveness_lock_lost_total");
        int64_t key = (int64_t)strtoull(c->node_id, NULL, 16);
        uint64_t k = (uint64_t)key;
        char sql[400];
        snprintf(sql, sizeof sql,
                 "SELECT CAST(pg_terminate_backend(pid) AS TEXT) FROM pg_locks WHERE locktype "
                 "= 'advisory' AND classid = CAST(%u AS oid) AND objid = CAST(%u AS oid) AND "
                 "objsubid = 1 AND "
                 "pid <> pg_backend_pid()",
                 (unsigned)(k >> 32), (unsigned)(k & 0xffffffffu));
        /* the node takes its lock again on a new session: end that one
         * too until this test's exclusive try wins */
        bool got = false;
        for (int t = 0; t < 3000 && !got; t++) {
            json_t *killed = NULL;
            if (store_ids(tdb, sql, NULL, &killed, &err))
                fail_msg("terminating the lock holders: %s", err.msg);
            json_decref(killed);
            if (mt_db_try_lock(tdb, key, &got, &err) != MT_OK || !got)
                sleep_ms(20);
        }
        assert_true(got);
    }
    /* every node has seen the loss (its metric, its claims stopped) */
    for (int i = 0; i < NCORES; i++) {
        mt_core *c = cl->node[i].core;
        for (int w = 0; w < 3000 && metric(c, "mesatee_node_liveness_lock_held"); w++)
            sleep_ms(20);
        assert_int_equal(metric(c, "mesatee_node_liveness_lock_held"), 0);
        assert_true(metric(c, "mesatee_node_liveness_lock_lost_total") > lost0[i]);
    }
    /* a task: every scheduler is woken for it and goes back to sleep */
    uint64_t ev0[NCORES];
    for (int i = 0; i < NCORES; i++)
        ev0[i] = metric(cl->node[i].core, "mesatee_scheduler_wakeups_total{cause=\"event\"}");
    char tid[33];
    invoke_on(cl, &cl->node[0], 9001, tid);
    for (int i = 0; i < NCORES; i++) {
        mt_core *c = cl->node[i].core;
        if (!c->sched)
            continue;
        bool settled = false;
        for (int w = 0; w < 3000 && !settled; w++) {
            settled =
                metric(c, "mesatee_scheduler_wakeups_total{cause=\"event\"}") > ev0[i] &&
                metric(c, "mesatee_scheduler_sleeping") == cl->cfg.workers;
            if (!settled)
                sleep_ms(20);
        }
        assert_true(settled);
    }
    char *v = task_col(c0, "status", tid);
    assert_string_equal(v, "staged");
    free(v);
    /* the locks are free again: the nodes take them and run the task */
    store_close(tdb);
    wait_task_status(cl, tid, "finished");
    for (int i = 0; i < NCORES; i++) {
        mt_core *c = cl->node[i].core;
        for (int w = 0; w < 3000 && !metric(c, "mesatee_node_liveness_lock_held"); w++)
            sleep_ms(20);
        assert_int_equal(metric(c, "mesatee_node_liveness_lock_held"), 1);
    }
}

/* Group sync (issue 13, docs/design.md "Group sync"; mt_db.h): on SQLite
 * the scheduler's and the requests' commits share their fsyncs. Several
 * outcomes committed close together, sharing syncs, each keep their claim
 * and outcome entries and their sealed result (GET checks the result's
 * MAC), the chain verifies. Then the next sync fails: the failure is
 * sticky (a later fsync cannot be trusted; the daemon exits), every invoke
 * after it is answered 500 and a later sync fails. PostgreSQL (no
 * group sync: its commits are durable at commit): the same tasks, no
 * failure injected. */
static void test_group_sync(void **state)
{
    (void)state;
    cluster *cl = &g_cl;
    mt_core *c0 = cl->node[0].core;
    mt_err err;
    bool lite = mt_db_url_backend(g_url) == MT_DB_SQLITE;
    uint64_t s0, w0, s1, w1;
    mt_db_group_sync_counts(&s0, &w0);
    enum { N = 9, F = 3 };
    struct {
        char id[33];
    } t[N + F];
    char path[160];
    for (int i = 0; i < N; i++) /* invoked back to back: their runs overlap */
        invoke_on(cl, &cl->node[i % NCORES], 300 + i, t[i].id);
    for (int i = 0; i < N; i++)
        wait_task_status(cl, t[i].id, "finished");
    mt_db_group_sync_counts(&s1, &w1);
    print_message("group sync: %llu syncs for %llu waits\n", (unsigned long long)(s1 - s0),
                  (unsigned long long)(w1 - w0));
    if (lite) {
        assert_true(s1 > s0);
        assert_true(w1 - w0 >= s1 - s0);
    }
    for (int i = 0; i < N; i++) {
        char id[33];
        memcpy(id, t[i].id, sizeof id);
        assert_int_equal(audit_count(c0, "task finished", id), 1);
        assert_true(audit_count(c0, "task running", id) >= 1);
        json_t *o = NULL;
        snprintf(path, sizeof path, "/v1/tasks/%s", id);
        assert_int_equal(treq(&cl->node[0], "GET", path, cl->tok, NULL, &o), 200);
        json_t *d = json_object_get(o, "data") ? json_object_get(o, "data") : o;
        assert_string_equal(json_string_value(json_object_get(d, "status")), "finished");
        assert_non_null(json_object_get(d, "result"));
        json_decref(o);
    }
    uint64_t entries = 0;
    if (mt_core_audit_verify_dir(cl->dir, cl->cfg.store_url, NULL, 0, &entries, &err))
        fail_msg("audit verify: %s", err.msg);
    /* the failure: whichever commit's sync it hits (an invoke, a claim or
     * an outcome), every later commit of the file fails too (sticky: no
     * later fsync can be trusted; the daemon would exit), so every invoke
     * after it is answered 500 */
    for (int i = N; i < N + F; i++)
        create_approved(cl, 400 + i, t[i].id);
    if (lite) {
        /* a claim on invoke committed without its sync (the gateway's
         * defer_sync) and handed to a scheduler thread: that thread's
         * mt_db_sync_to(the invoke's mark) runs the first sync, which
         * fails: the task is not run (counted, left to the orphan check).
         * Fails with the handed mark replaced by 0 (no sync: it runs). */
        char hid[33];
        create_approved(cl, 399, hid);
        uint64_t u0 = sched_metric(c0, "mesatee_scheduler_claims_on_invoke_unsynced_total");
        mt_db_test_fail_syncs(1);
        invoke_claim_tx2(cl, hid, true, true, true);
        uint64_t u = u0;
        for (int waited = 0; u == u0 && waited < 30000; waited += 20) {
            sleep_ms(20);
            u = sched_metric(c0, "mesatee_scheduler_claims_on_invoke_unsynced_total");
        }
        if (u != u0 + 1)
            fail_msg("the handed claim whose commit could not be synced was run (or not "
                     "dropped within 30 s)");
    }
    for (int i = N; i < N + F; i++) {
        json_t *o = NULL;
        snprintf(path, sizeof path, "/v1/tasks/%.32s/invoke", t[i].id);
        int st = treq(&cl->node[0], "POST", path, cl->tok, NULL, &o);
        if (lite) {
            assert_int_equal(st, 500);
            assert_non_null(strstr(terr_msg(o), "sync failed"));
            print_message("invoke %d: answered 500: %s\n", i - N, terr_msg(o));
        } else {
            assert_int_equal(st, 200);
        }
        json_decref(o);
    }
    if (lite) {
        assert_int_equal(mt_db_test_fail_syncs(0), 0); /* the failure happened */
        mt_db *db = NULL; /* joins the nodes' group of the file */
        char file[4096];
        snprintf(file, sizeof file, "%s/" CORE_DB_NAME, cl->dir);
        assert_int_equal(store_open_grouped(file, &db, &err), MT_OK);
        assert_int_equal(mt_db_sync(db, &err), MT_EIO);
        assert_non_null(strstr(err.msg, "an earlier WAL sync failed"));
        mt_db_close(db);
    } else {
        for (int i = N; i < N + F; i++)
            wait_task_status(cl, t[i].id, "finished");
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || !*argv[1]) {
        fprintf(stderr, "usage: test_sched_cluster STORE (a SQLite path or postgres:// URL)\n");
        return 2;
    }
    g_url = argv[1];
    const char *n = getenv("MT_TEST_SCHED_TASKS");
    if (n && atoi(n) > 0)
        g_tasks = atoi(n);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_across_nodes), /* before node 0's scheduler starts */
        cmocka_unit_test(test_every_task_once),
        cmocka_unit_test(test_wake_after_restart),
        cmocka_unit_test(test_run_node_scope),
        cmocka_unit_test(test_dead_node),
        cmocka_unit_test(test_late_outcome_dropped),
        cmocka_unit_test(test_no_claim_without_lock),
        cmocka_unit_test(test_orphaned_run),
        cmocka_unit_test(test_invoke_claim_rolled_back),
        cmocka_unit_test(test_invoke_claim_commit_unknown),
        cmocka_unit_test(test_group_sync), /* last: it makes syncs fail */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
