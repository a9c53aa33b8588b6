/* sched: the scheduler. The durable queue is the tasks table itself
 * (status 'staged', ordered by staged_seq). cfg->workers threads, each with
 * its own SQLite connection, claim the oldest staged task atomically
 * (UPDATE ... WHERE status = 'staged' RETURNING, inside BEGIN IMMEDIATE),
 * build an mt_job from the assigned files (keys unwrapped with the sealing
 * key), run it with mt_executor_run and store the outcome, the metering and
 * the written outputs in one transaction. Cancellation: should_cancel reads
 * the task's cancel_requested flag (and the stop flag at shutdown).
 * At start, tasks left 'running' by a crash are marked failed.
 *
 * Several nodes on PostgreSQL (docs/cluster.md "A node that never comes
 * back"): a claim records the node (tasks.run_node) and counts the claims
 * (tasks.run_attempt); another node's sweeper (node_live.c) may requeue the
 * run of a node it takes for stopped, so a local run's outcome is stored
 * only while the row is still running under this node's id and claim count
 * (current_run_sql, inside the outcome's transaction; the worker's cancel
 * check asks the same and stops a run that lost it), else dropped.
 *
 * Group commit (issue 13, docs/design.md "Scheduler"): a thread that stores
 * a task's outcome claims its next task in the same transaction (the
 * outcome first; the claim inside a savepoint, so that a failed claim never
 * costs the outcome), so a busy thread commits once per task instead of
 * twice. The durability contract is unchanged: a task event (which answers
 * a waiting client) is raised only after that commit returned (synchronous
 * =FULL, so the outcome is on disk), and every row keeps its MAC.
 * Claim on invoke: when a thread sleeps, the invoke's own transaction
 * also claims the task it stages (sched_invoke_claim, in a savepoint, with
 * the "task running" entry) and the commit hands it to that thread
 * (sched_invoke_claimed; a small queue, one reserved sleeping thread per
 * entry): the claim is durable before the run, as before, one commit less.
 *
 * Orphaned runs (docs/design.md "Orphaned runs"): a claim whose commit
 * reported a failure may have committed anyway (a connection broken during
 * COMMIT); nobody runs it and this node, alive, is never swept. Every local
 * run this process claims is tracked (runs_add before the claim's commit,
 * runs_del after its outcome's commit or a failed claim commit); one thread
 * per scheduler (orphan_main) requeues, fenced on the run, the rows running
 * under this node's id that stay untracked for ORPHAN_GRACE_MS.
 *
 * Wake-ups are events only: sched_wake (after an invoke commits: anything
 * that makes a task 'staged' must call it) signals one sleeping thread; a
 * thread sleeps only when a claim found nothing and no wake came since it
 * looked (a generation counter, read before the claim). There is no safety
 * poll; the one timed sleep is the retry after a claim failed (a store
 * error), counted as a timer wake-up in the metrics (sched_metrics_text).
 * Each thread keeps its prepared statements (core_stmt_thread_bind).
 *
 * Graceful stop (docs/service.md "Stopping"): mt_core_drain first stops
 * new claims while the running tasks go on; when the stop flag is then set
 * (sched_stop, after the grace period), a running worker is killed and its
 * task goes back to the queue ('staged', keeping its place, outcome cleared
 * and re-sealed, audited "task requeued (stop)") instead of failing, unless
 * its cancellation was requested (then it is canceled). Nothing of it is
 * visible: the executor writes outputs to temporary files that it renames
 * only after the worker reported success, and unlinks them when it kills the
 * worker; an output row is marked written only with the task's outcome, in
 * the same transaction. A task whose worker finished before the stop is
 * stored as usual (finish runs before the thread exits).
 *
 * The store is untrusted: before a claimed task's keys are unwrapped for an
 * executor (local worker or remote executor), build_job verifies its
 * declaration, files, binding and every participant's approval
 * (integ_task_verify_row); a task that fails is marked failed with "integrity
 * check failed: CLASS" and nothing runs. Every state change the scheduler
 * commits (claim, outcome, recovery) carries its audit entry in the same
 * transaction (actor "scheduler"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core_internal.h"
#include "keyuse.h"
#include "python_modules.h"
#include "mt_executor.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_trace.h"

#define RESTART_REASON "daemon restarted while the task was running"
#define STOP_REASON "daemon stopped while the task was running"
#define RETRY_MS 200 /* after a failed claim (a store error) only */
#define SCHED_HANDOFF_MAX 64 /* claims on invoke waiting for their thread */
#define ORPHAN_TICK_MS 1000 /* the orphaned-run check's round */
#define ORPHAN_GRACE_MS 5000 /* seen orphaned this long (every round) before the requeue */
#define ORPHAN_MAX 256 /* orphan candidates followed at once (more: next rounds) */

/* ---- the local runs this process claimed (docs/design.md "Orphaned runs")
 * Every claim of a local run made by this process (claim, the group commit's
 * claim, the claim on invoke) is added here inside its transaction, before
 * its commit, and removed once the thread that ran it stored its outcome
 * (or gave up), or when the claim's commit failed (its outcome unknown: a
 * broken connection may have committed it). A handed claim (the hand-off
 * queue) stays here until its run ended. The orphan check (orphan_main)
 * takes a row running under this node's id that is not here for a run
 * nobody runs. Process-wide: several cores of one process may share one
 * node id (tests). */
typedef struct {
    char task_id[MT_ID_LEN + 1];
    int64_t attempt;
} run_key;
static pthread_mutex_t g_runs_mu = PTHREAD_MUTEX_INITIALIZER;
static run_key *g_runs;
static size_t g_runs_n, g_runs_cap;

/* false when out of memory: the caller must fail (roll back) the claim, so
 * no run this process goes on with is ever untracked (the orphan check would
 * requeue it while it runs; SQLite's outcome is not fenced by attempt). */
static bool runs_add(const char *task_id, int64_t attempt)
{
    pthread_mutex_lock(&g_runs_mu);
    if (g_runs_n == g_runs_cap) {
        size_t cap = g_runs_cap ? g_runs_cap * 2 : 64;
        run_key *n = realloc(g_runs, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&g_runs_mu);
            mt_error("scheduler: out of memory tracking task %s's run; the claim is undone",
                     task_id);
            return false;
        }
        g_runs = n;
        g_runs_cap = cap;
    }
    snprintf(g_runs[g_runs_n].task_id, sizeof g_runs[g_runs_n].task_id, "%s", task_id);
    g_runs[g_runs_n++].attempt = attempt;
    pthread_mutex_unlock(&g_runs_mu);
    return true;
}

static void runs_del(const char *task_id, int64_t attempt)
{
    pthread_mutex_lock(&g_runs_mu);
    for (size_t i = 0; i < g_runs_n; i++)
        if (g_runs[i].attempt == attempt && !strcmp(g_runs[i].task_id, task_id)) {
            g_runs[i] = g_runs[--g_runs_n];
            break;
        }
    pthread_mutex_unlock(&g_runs_mu);
}

static bool runs_has(const char *task_id, int64_t attempt)
{
    pthread_mutex_lock(&g_runs_mu);
    bool has = false;
    for (size_t i = 0; i < g_runs_n && !has; i++)
        has = g_runs[i].attempt == attempt && !strcmp(g_runs[i].task_id, task_id);
    pthread_mutex_unlock(&g_runs_mu);
    return has;
}

struct core_sched {
    mt_core *core;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen; /* bumped by every wake */
    unsigned sleeping; /* threads waiting on cv (under mu) */
    atomic_bool stop;
    /* counters for /metrics (sched_metrics_text) */
    atomic_uint_fast64_t wake_event, wake_timer, commits, transitions;
    atomic_uint_fast64_t dropped; /* outcomes of local runs no longer current (finish) */
    atomic_uint_fast64_t on_invoke; /* claims committed with their invoke */
    atomic_uint_fast64_t handed_unsynced; /* ... whose commit could not be made durable */
    /* claims that rode on an invoke's commit (sched_invoke_claim), waiting
     * for the sleeping thread reserved for them (under mu) */
    struct {
        char task_id[MT_ID_LEN + 1];
        int64_t attempt;
        uint64_t sync_mark; /* the invoke's commit (mt_db_sync_mark) */
    } ho[SCHED_HANDOFF_MAX];
    unsigned ho_head, ho_n, ho_reserved;
    /* the orphan check (orphan_main): its thread, connection and wake */
    pthread_t orph;
    bool orph_started;
    mt_db *orph_db;
    pthread_cond_t ocv;
    atomic_uint_fast64_t orphans; /* orphaned runs requeued */
    unsigned n;
    pthread_t *threads;
    mt_db **dbs;
    bool *started;
};

typedef struct cancel_ctx {
    core_sched *s;
    mt_db *db;
    const char *task_id;
    int64_t attempt; /* the claim's tasks.run_attempt */
} cancel_ctx;

/* A local run's claim is still the task's current one (PostgreSQL, where
 * another node's sweeper may have requeued it: node_live.c): the row is
 * running under this node's id and the same attempt. Used inside the
 * outcome's transaction (finish) and by should_cancel. SQLite: one node,
 * nobody else requeues a run: always true, as before. */
static const char *const current_run_sql =
    "SELECT cancel_requested FROM tasks WHERE task_id = ? AND status = 'running' AND "
    "run_node = ? AND run_attempt = CAST(? AS INTEGER)";

/* ---- recovery ---------------------------------------------------------- */

/* Audits "task STATUS" for each task the query returns (inside the caller's
 * transaction, before the change it records). */
static mt_status audit_tasks(mt_core *c, mt_db *mdb, const char *sql, const char *param,
                             const char *action, json_t **ids_out, mt_err *err)
{
    json_t *ids;
    mt_status rc = store_ids(mdb, sql, param, &ids, err);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (rc)
            break;
        char obj[8 + MT_ID_LEN];
        snprintf(obj, sizeof obj, "task:%s", json_string_value(v));
        rc = audit_append(c, mdb, "scheduler", action, obj, 0, err);
    }
    if (ids_out && !rc)
        *ids_out = json_incref(ids);
    json_decref(ids);
    return rc;
}

/* The running rows this node recovers at its start and requeues at its stop
 * (tasks.run_node, store.c migration 12): on PostgreSQL, where several nodes
 * share the store, its own local runs and rows from before run_node ('');
 * on SQLite, one node by construction, all of them as before. prefix names
 * the table ("t." or ""). node_id is our own hex, never outside input. */
static void run_scope(const mt_core *c, mt_db *mdb, const char *prefix, char *out, size_t n)
{
    if (mt_db_backend_of(mdb) == MT_DB_PG)
        snprintf(out, n, " AND %srun_node IN ('', '%s')", prefix, c->node_id);
    else
        out[0] = 0;
}

/* result_mac of each task in ids over the outcome the caller just wrote to
 * all of them (result NULL, failure_reason reason, log NULL): computed from
 * those values, never from a read back of the rows. */
static mt_status outcome_mac_ids(mt_core *c, mt_db *mdb, json_t *ids, const char *reason,
                                 mt_err *err)
{
    size_t i;
    json_t *v;
    mt_status rc = MT_OK;
    json_array_foreach(ids, i, v)
    {
        char mac[65];
        const char *id = json_string_value(v);
        if (rc || (rc = integ_task_result_mac(c, id, NULL, reason, NULL, mac, err)) ||
            (rc = store_run(mdb, err, NULL, "UPDATE tasks SET result_mac = ? WHERE task_id = ?",
                            mac, id)))
            break;
    }
    return rc;
}

mt_status sched_recover(mt_core *c, mt_db *mdb, mt_err *err)
{
    json_t *failed = NULL; /* the tasks failed here: their outcome is re-sealed */
    /* with remote executors a leased run may still be going on elsewhere:
     * its lease decides (mt_core_config.keep_leased) */
    const char *keep = c->keep_leased ? "1" : "0";
    char scope[64], tscope[64], q1[320], q2[768], q3[384], q0[360];
    run_scope(c, mdb, "", scope, sizeof scope);
    run_scope(c, mdb, "t.", tscope, sizeof tscope);
    snprintf(q1, sizeof q1,
             "SELECT task_id FROM tasks WHERE status = 'running' AND NOT (" SQL_REMOTE_LEASE(
                 "") " AND ?1 <> 0)%s",
             scope);
    /* nothing to fail: no change, so no wait for (or refusal by) the audit
     * spool's gate; an open with a spool the store cannot take yet goes on
     * (docs/operations.md "Audit spool that does not drain") */
    snprintf(q0, sizeof q0,
             "SELECT count(*) FROM tasks WHERE status = 'running' AND NOT (" SQL_REMOTE_LEASE(
                 "") " AND ?1 <> 0)%s",
             scope);
    int64_t running = 0;
    bool found = false;
    mt_status rc = store_int(mdb, err, &running, &found, q0, keep);
    if (rc)
        return rc;
    if (!found || running == 0)
        return MT_OK;
    if ((rc = core_change_begin(c, mdb, err))) {
        if (core_aspool_refusal(rc, err))
            mt_error("%lld task(s) left running by the last run cannot be marked failed: spooled "
                     "audit entries must reach the chain first and the store does not take "
                     "them (docs/operations.md \"Audit spool that does not drain\")",
                     (long long)running);
        return rc;
    }
    snprintf(q2, sizeof q2,
             "UPDATE functions SET tasks_failed = tasks_failed + (SELECT count(*) FROM tasks t "
             "WHERE t.function_id = functions.function_id AND t.status = 'running' AND NOT "
             "(" SQL_REMOTE_LEASE("t.") " AND ?1 <> 0)%s) WHERE function_id IN (SELECT "
             "function_id FROM tasks WHERE status = 'running' AND NOT (" SQL_REMOTE_LEASE(
                 "") " AND ?1 <> 0)%s)",
             tscope, scope);
    snprintf(q3, sizeof q3,
             "UPDATE tasks SET status = 'failed', failure_reason = '" RESTART_REASON
             "', result = NULL, log = NULL, cancel_requested = 0, updated_at = CAST(?1 AS INTEGER) WHERE status = "
             "'running' AND NOT (" SQL_REMOTE_LEASE("") " AND ?2 <> 0)%s",
             scope);
    if ((rc = audit_tasks(c, mdb, q1, keep, "task failed (restart)", &failed, err))) {
        store_rollback(mdb);
        return rc;
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    int n = 0;
    if ((rc = store_run(mdb, err, NULL, q2, keep)) ||
        (rc = store_run(mdb, err, &n, q3, now, keep)) ||
        (rc = outcome_mac_ids(c, mdb, failed, RESTART_REASON, err)) ||
        (rc = store_commit(mdb, err))) {
        json_decref(failed);
        store_rollback(mdb);
        return rc;
    }
    json_decref(failed);
    if (n)
        mt_warn("marked %d task(s) failed: " RESTART_REASON, n);
    return MT_OK;
}

/* Puts back in the queue the tasks that the query (one column: task_id)
 * returns, inside the caller's transaction. */
static mt_status requeue_ids(mt_core *c, mt_db *mdb, json_t *ids, mt_err *err)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    size_t i;
    json_t *v;
    mt_status rc = MT_OK;
    json_array_foreach(ids, i, v)
    {
        if (rc)
            break;
        const char *id = json_string_value(v);
        /* staged_seq is kept: the task runs first after the restart; the
         * empty outcome's MAC is written with it */
        char mac[65];
        if ((rc = integ_task_result_mac(c, id, NULL, NULL, NULL, mac, err)))
            break;
        rc = store_run(mdb, err, NULL,
                       "UPDATE tasks SET status = 'staged', result = NULL, failure_reason = NULL, "
                       "log = NULL, cpu_ms = 0, peak_rss_kb = 0, wall_ms = 0, bytes_in = 0, "
                       "bytes_out = 0, fuel_used = 0, key_signs = 0, result_mac = ?, "
                       "updated_at = CAST(? AS INTEGER) WHERE task_id = ? AND status = 'running'",
                       mac, now, id);
    }
    return rc;
}

mt_status sched_requeue_running(mt_core *c, mt_db *mdb, mt_err *err)
{
    mt_status rc = core_change_begin(c, mdb, err);
    if (rc)
        return rc;
    json_t *ids = NULL, *canceled = NULL;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    char scope[64], q1[192], q2[256], q3[256];
    run_scope(c, mdb, "", scope, sizeof scope);
    snprintf(q1, sizeof q1,
             "SELECT task_id FROM tasks WHERE status = 'running' AND cancel_requested != 0%s",
             scope);
    snprintf(q2, sizeof q2,
             "UPDATE tasks SET status = 'canceled', failure_reason = 'canceled while running', "
             "result = NULL, log = NULL, updated_at = CAST(? AS INTEGER) WHERE status = 'running' AND cancel_requested != "
             "0%s",
             scope);
    snprintf(q3, sizeof q3,
             "SELECT task_id FROM tasks WHERE status = 'running' AND NOT (" SQL_REMOTE_LEASE(
                 "") " AND ?1 <> 0)%s",
             scope);
    /* a cancellation requested meanwhile (remote runs) wins over the requeue */
    if ((rc = audit_tasks(c, mdb, q1, NULL, "task canceled", &canceled, err)) ||
        (rc = store_run(mdb, err, NULL, q2, now)) ||
        (rc = outcome_mac_ids(c, mdb, canceled, "canceled while running", err)) ||
        (rc = audit_tasks(c, mdb, q3, c->keep_leased ? "1" : "0", "task requeued (stop)", &ids,
                          err)) ||
        (rc = requeue_ids(c, mdb, ids, err)) || (rc = store_commit(mdb, err))) {
        json_decref(ids);
        json_decref(canceled);
        store_rollback(mdb);
        return rc;
    }
    json_decref(canceled);
    if (json_array_size(ids))
        mt_warn("stop: put %zu running task(s) back in the queue; they run again at the next "
                "start",
                json_array_size(ids));
    json_decref(ids);
    return MT_OK;
}

/* ---- claiming and running ---------------------------------------------- */

/* ---- concurrent claimers (issue 14, docs/cluster.md "Scheduling across
 * nodes") ---------------------------------------------------------------
 * On SQLite the claim runs in BEGIN IMMEDIATE, one writer at a time, as
 * before. On PostgreSQL several schedulers (threads, processes, nodes) claim
 * side by side: the transaction starts at READ COMMITTED without the writer
 * lock, the oldest staged row not locked by another claimer is locked with
 * FOR UPDATE SKIP LOCKED and marked running, and only then the writer lock
 * is taken for the audit append (the chain stays linear: the head is read
 * after the lock, and READ COMMITTED gives that statement a fresh
 * snapshot). A row locked by another claimer is skipped, one claimed and
 * committed meanwhile fails the status recheck: no task is claimed twice,
 * none is lost. Every claim clears lease_until: a local run is never taken
 * for an executor lease (core_internal.h SQL_REMOTE_LEASE), even when an
 * earlier lease left its fencing token; a remote claim sets it again in the
 * same transaction (remote_sched.c lease_grant). */
static const char *claim_sql(mt_db *mdb)
{
    if (mt_db_backend_of(mdb) == MT_DB_PG)
        return "UPDATE tasks SET status = 'running', updated_at = ?1, run_node = ?2, "
               "lease_until = 0, run_attempt = run_attempt + 1 WHERE "
               "task_id = (SELECT task_id FROM tasks WHERE status = 'staged' "
               "ORDER BY staged_seq, task_id LIMIT 1 FOR UPDATE SKIP LOCKED) AND "
               "status = 'staged' RETURNING task_id, run_attempt, lease_fence, lease_expired, lease_mac";
    return "UPDATE tasks SET status = 'running', updated_at = ?1, run_node = ?2, "
           "lease_until = 0, run_attempt = run_attempt + 1 WHERE "
           "task_id = (SELECT task_id FROM tasks WHERE status = 'staged' "
           "ORDER BY staged_seq, task_id LIMIT 1) AND status = 'staged' "
           "RETURNING task_id, run_attempt, lease_fence, lease_expired, lease_mac";
}

/* The claim's own transaction: IMMEDIATE on SQLite, READ COMMITTED without
 * the writer lock on PostgreSQL (claim_in takes it before the audit). */
static mt_status claim_tx_begin(mt_db *mdb, mt_err *err)
{
    if (mt_db_backend_of(mdb) == MT_DB_PG)
        return mt_db_begin(mdb, MT_DB_TX_DEFERRED, err);
    return store_begin(mdb, err);
}

/* True while a task claimed with its invoke waits in the hand-off queue:
 * a thread finishing a task then takes that one next instead of claiming
 * another from the store (so a handed task waits at most one task). */
static bool sched_handoff_waiting(core_sched *s)
{
    if (!s)
        return false;
    pthread_mutex_lock(&s->mu);
    bool waiting = s->ho_n > 0;
    pthread_mutex_unlock(&s->mu);
    return waiting;
}

/* Leaves savepoint `name` after a claim inside the caller's transaction.
 * A claim that failed (!*got after an error) is undone alone. On PostgreSQL
 * the claim's audit INSERT is deferred (mt_db_run_deferred) and its error
 * only shows at the RELEASE: then the transaction is aborted back to the
 * savepoint, which still exists, so ROLLBACK TO undoes the claim alone too
 * and *got becomes false. When the claim cannot be undone the caller's whole
 * transaction must fail (its error in err): a half-done claim is never
 * committed. failed: the claim returned an error. */
static mt_status savepoint_leave(mt_db *mdb, const char *name, bool *got, bool failed, mt_err *err)
{
    char q[64];
    /* the queue was empty: nothing was done under the savepoint, which the
     * caller's commit releases (or its rollback drops) with the rest (two
     * round trips less per claim that finds nothing) */
    if (!*got && !failed)
        return MT_OK;
    if (*got) {
        snprintf(q, sizeof q, "RELEASE %s", name);
        if (store_exec(mdb, q, NULL) == MT_OK)
            return MT_OK;
        *got = false;
        mt_warn("scheduler: a claim's statements failed at their savepoint; the claim is undone");
    }
    snprintf(q, sizeof q, "ROLLBACK TO %s", name);
    mt_status rc = store_exec(mdb, q, err);
    if (!rc) {
        snprintf(q, sizeof q, "RELEASE %s", name);
        rc = store_exec(mdb, q, err);
    }
    return rc;
}

/* Claims the oldest staged task inside the caller's transaction; *got false
 * when the queue is empty; *attempt (may be NULL) its claim count
 * (tasks.run_attempt, which the outcome of a local run checks). */
static mt_status claim_in(mt_core *c, mt_db *mdb, char task_id[MT_ID_LEN + 1], bool *got,
                          int64_t *attempt, mt_err *err)
{
    *got = false;
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(c, mdb, claim_sql(mdb), &st, err);
    if (rc)
        return rc;
    mt_db_bind_int64(st, 1, mt_now());
    mt_db_bind_text(st, 2, c->node_id);
    int s = mt_db_step(st, &rc, err);
    int64_t fence = 0, expired = 0, a = 0;
    char mac[LEASE_MAC_STORED_LEN + 2]; /* one more: a longer stored value stays too long */
    bool has_mac = false;
    if (s == MT_DB_ROW) {
        snprintf(task_id, MT_ID_LEN + 1, "%s", mt_db_col_text(st, 0));
        a = mt_db_col_int64(st, 1);
        if (attempt)
            *attempt = a;
        fence = mt_db_col_int64(st, 2);
        expired = mt_db_col_int64(st, 3);
        has_mac = !mt_db_col_null(st, 4);
        snprintf(mac, sizeof mac, "%s", has_mac ? mt_db_col_text(st, 4) : "");
        *got = true;
        mt_db_step(st, &rc, err); /* the end of RETURNING's rows */
        /* tracked before the commit (the orphan check) */
        if (!runs_add(task_id, a)) {
            if (!rc)
                rc = mt_err_set(err, MT_ENOMEM, "out of memory tracking a claimed run");
        } else if (rc)
            runs_del(task_id, a);
    }
    core_stmt_put(c, st);
    /* this claim's lease MAC (every claim: a missing one is refused after
     * the first), so no earlier holder's token verifies again
     * (core_internal.h lease_claimed) */
    if (!rc && *got)
        rc = lease_claimed(c, mdb, task_id, a, fence, expired, has_mac ? mac : NULL, err);
    if (!rc && *got) {
        char obj[8 + MT_ID_LEN];
        snprintf(obj, sizeof obj, "task:%s", task_id);
        /* PostgreSQL (claim_tx_begin): the chain's writer lock only now,
         * after the row is ours; a no-op where the transaction holds it */
        if (!(rc = mt_db_writer_lock(mdb, err)))
            rc = audit_append(c, mdb, "scheduler", "task running", obj, 0, err);
    }
    return rc;
}

/* claim_in, but a failed claim is no longer tracked */
static mt_status claim_in_tracked(mt_core *c, mt_db *mdb, char task_id[MT_ID_LEN + 1],
                                  bool *got, int64_t *attempt, mt_err *err)
{
    int64_t a = 0;
    mt_status rc = claim_in(c, mdb, task_id, got, &a, err);
    if (rc && *got)
        runs_del(task_id, a);
    if (rc)
        *got = false;
    if (attempt)
        *attempt = a;
    return rc;
}

/* Claims the oldest staged task in a transaction of its own. */
static mt_status claim(core_sched *s, mt_core *c, mt_db *mdb, char task_id[MT_ID_LEN + 1],
                       bool *got, int64_t *attempt, sched_claim_hook hook, void *hctx,
                       mt_err *err)
{
    *got = false;
    /* its "task running" entry goes behind the spooled ones (audit_spool.c) */
    mt_status rc = core_aspool_before_change(c, err);
    if (!rc)
        rc = claim_tx_begin(mdb, err);
    if (rc)
        return rc;
    mt_status hrc = MT_OK;
    mt_err herr;
    int64_t a = 0;
    if (!(rc = claim_in_tracked(c, mdb, task_id, got, &a, err)) && *got && hook &&
        (hrc = hook(hctx, mdb, task_id, &herr)) != MT_OK) {
        /* the claim stands and the caller fails the task with the hook's
         * reason (an edited lease row, no token left); a transaction the
         * hook broke fails its commit and is undone below */
        if ((rc = store_commit(mdb, err)) == MT_OK) {
            runs_del(task_id, a); /* the caller fails it at once */
            if (err)
                *err = herr;
            return hrc; /* *got stays true */
        }
    } else if (!rc && *got) {
        rc = store_commit(mdb, err);
    }
    if (attempt)
        *attempt = a;
    if (*got && (rc || !s))
        /* a failed commit (its outcome unknown: the orphan check requeues
         * what it may have committed), or a remote run (hook: under its
         * executor lease, not a local run) */
        runs_del(task_id, a);
    if (rc || !*got) {
        store_rollback(mdb); /* nothing claimed: nothing to commit */
        *got = false;
    } else if (s) {
        atomic_fetch_add(&s->commits, 1);
        atomic_fetch_add(&s->transitions, 1);
    }
    return rc;
}

static bool should_cancel(void *arg)
{
    cancel_ctx *c = arg;
    if (atomic_load(&c->s->stop))
        return true;
    int64_t v = 0;
    bool found;
    if (mt_db_backend_of(c->db) == MT_DB_PG && c->attempt > 0) {
        /* a run requeued by another node's sweeper (this node was taken
         * for stopped) is stopped here; its outcome would be dropped */
        char a[24];
        snprintf(a, sizeof a, "%lld", (long long)c->attempt);
        if (store_int(c->db, NULL, &v, &found, current_run_sql, c->task_id,
                      c->s->core->node_id, a))
            return false;
        return !found || v != 0;
    }
    if (store_int(c->db, NULL, &v, &found, "SELECT cancel_requested FROM tasks WHERE task_id = ?",
                  c->task_id))
        return false;
    return v != 0;
}

static void job_free(mt_job *job)
{
    for (size_t i = 0; i < job->n_inputs; i++) {
        free(job->inputs[i].slot);
        free(job->inputs[i].path);
        free(job->inputs[i].url);
        mt_wipe(job->inputs[i].key, sizeof job->inputs[i].key);
    }
    for (size_t i = 0; i < job->n_outputs; i++) {
        free(job->outputs[i].slot);
        free(job->outputs[i].path);
        free(job->outputs[i].file_id);
        mt_wipe(job->outputs[i].key, sizeof job->outputs[i].key);
    }
    free(job->inputs);
    free(job->outputs);
    if (job->module) {
        mt_job_input *m = (mt_job_input *)job->module; /* allocated by build_job */
        free(m->path);
        mt_wipe(m->key, sizeof m->key);
        free(m);
    }
    keyuse_job_keys_free(job);
    json_decref(job->arguments);
    memset(job, 0, sizeof *job);
}

mt_status sched_bound_file(mt_core *c, mt_db *mdb, const integ_task_row *row, const char *file_id,
                           bool output, core_file *f, mt_err *err)
{
    char mac[65];
    /* the row verified by its MAC in this read, and that MAC the very one
     * the binding (and so every approval) covered: not another version of
     * the row a lying host answers this read with */
    mt_status rc = integ_file_load(c, mdb, file_id ? file_id : "", f, NULL, mac, err);
    if (rc)
        return rc;
    const char *bound = json_string_value(json_object_get(row->file_macs, file_id ? file_id : ""));
    if (!bound || !integ_hex_equal(bound, mac)) {
        mt_wipe(f, sizeof *f);
        return integ_fail(err, "binding");
    }
    /* an output is written once, by the task it is assigned to: a written
     * one here is a store that assigned it to two tasks (tasks.c's "output
     * of an unfinished task" query answered falsely); writing it again
     * would overwrite the other task's result */
    if (output && f->written) {
        mt_error("store integrity: output file %s is already written", file_id);
        mt_wipe(f, sizeof *f);
        return integ_fail(err, "file");
    }
    return MT_OK;
}

/* Fills one job slot from an assigned file (sched_bound_file: an output
 * already written is refused before any bytes move). Inputs (url != NULL)
 * also get the ciphertext SHA-256 recorded at registration into sha256 (the
 * worker checks it); an input without one is refused. */
static mt_status slot_from_file(mt_core *c, mt_db *mdb, const integ_task_row *row,
                                const char *file_id, char **path, char **url, uint8_t key[32],
                                char sha256[65], mt_err *err)
{
    core_file f;
    mt_status rc = sched_bound_file(c, mdb, row, file_id, !url, &f, err);
    if (rc)
        return rc;
    if (url && strlen(f.sha256) != 64)
        return mt_err_set(err, MT_EINVAL,
                          "input file %s has no recorded SHA-256 of its ciphertext (registered "
                          "by an older version); register it again with its sha256",
                          file_id);
    if (sha256)
        snprintf(sha256, 65, "%s", f.sha256);
    if ((rc = core_unwrap_key(c, f.file_id, f.wrapped_key, f.wrapped_len, key, err)))
        return rc;
    if (f.object_id[0]) {
        char p[4096];
        /* inputs: a local file holding the object; outputs: where it is produced */
        if ((rc = url ? untrusted_objects_read_path(c, f.object_id, p, sizeof p, err)
                      : untrusted_objects_write_path(c, f.object_id, p, sizeof p, err)))
            return rc;
        *path = strdup(p);
        if (!*path)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
    } else if (url) {
        *url = strdup(f.url);
        if (!*url)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
    } else
        return mt_err_set(err, MT_EINTERNAL, "output file %s has no local object", file_id);
    return MT_OK;
}

/* The encrypted module of a "wasm" function (the verified function row's
 * function_id, payload_object, payload_key, payload_sha256) into
 * job->module; the worker checks the decrypted module against the SHA-256. */
static mt_status module_from_row(mt_core *c, const integ_task_row *r, mt_job *job,
                                 char builtin[65], mt_err *err)
{
    char aad[16 + MT_ID_LEN], p[4096];
    snprintf(aad, sizeof aad, "function:%s", r->function_id);
    mt_job_input *m = calloc(1, sizeof *m);
    if (!m)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    job->module = m;
    snprintf(builtin, 65, "main");
    mt_status rc = untrusted_objects_read_path(c, r->payload_object, p, sizeof p, err);
    if (rc)
        return rc;
    if (!(m->path = strdup(p)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(m->plain_sha256, sizeof m->plain_sha256, "%s", r->payload_sha256);
    return core_unwrap_key(c, aad, r->payload_key, r->payload_key_len, m->key, err);
}

/* Builds the job of a claimed task. strings[] keep executor_type/function alive. */
static mt_status build_job(mt_core *c, mt_db *mdb, const char *task_id, mt_job *job,
                           char exec_type[33], char builtin[65], mt_err *err)
{
    memset(job, 0, sizeof *job);
    mt_status rc = store_exec(mdb, "BEGIN", err);
    if (rc)
        return rc;
    json_t *assign = NULL, *participants = NULL;
    /* the rows are untrusted: the whole binding and every approval of it,
     * in this same read transaction, before any key is unwrapped; the job
     * is built only from the values that check verified (the same
     * statement's row: on PostgreSQL a second read has its own snapshot,
     * and a lying host could answer it with other rows) */
    integ_task_row row;
    memset(&row, 0, sizeof row);
    if ((rc = integ_task_verify_row(c, mdb, task_id, &row, err)))
        goto out;
    job->arguments = json_incref(row.arguments);
    assign = json_incref(row.assignments);
    participants = json_incref(row.participants);
    snprintf(exec_type, 33, "%s", row.executor_type);
    snprintf(builtin, 65, "%s", row.builtin);
    if (!strcmp(exec_type, "wasm") || !strcmp(exec_type, "python"))
        rc = module_from_row(c, &row, job, builtin, err);
    if (rc)
        goto out;
    if (!job->arguments || !assign || !participants) {
        rc = mt_err_set(err, MT_EINTERNAL, "task %s: stored state is corrupt", task_id);
        goto out;
    }
    /* python: participants approved the allow-list stored in the task (a task
     * from before it was stored: the built-in one); the operator's current
     * one must be the same (python_modules.h) */
    if (!strcmp(exec_type, "python")) {
        const char *pm = json_string_value(json_object_get(job->arguments, MT_PYTHON_MODULES_ARG));
        char *dflt = NULL;
        mt_err e;
        mt_err_clear(&e);
        if (!pm && mt_python_modules_effective(NULL, NULL, &dflt, &e) == MT_OK)
            pm = dflt;
        bool same = pm && c->python_modules && !strcmp(pm, c->python_modules);
        free(dflt);
        if (!same) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "the server's python allow-list (--python-allow/--python-deny) "
                            "is not the one this task was created and approved with: create "
                            "the task again and approve the new list");
            goto out;
        }
    }
    /* KeyStore keys named in the (verified) arguments, for the built-in */
    if ((rc = keyuse_job_keys(c, mdb, exec_type, builtin, job->arguments, participants, job, err)))
        goto out;
    json_t *ins = json_object_get(assign, "inputs"), *outs = json_object_get(assign, "outputs");
    size_t ni = json_object_size(ins), no = json_object_size(outs);
    job->inputs = calloc(ni ? ni : 1, sizeof *job->inputs);
    job->outputs = calloc(no ? no : 1, sizeof *job->outputs);
    if (!job->inputs || !job->outputs) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    const char *slot;
    json_t *v;
    json_object_foreach(ins, slot, v)
    {
        mt_job_input *in = &job->inputs[job->n_inputs++];
        in->slot = strdup(slot);
        if (!in->slot) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = slot_from_file(c, mdb, &row, json_string_value(v), &in->path, &in->url, in->key,
                                 in->sha256, err)))
            goto out;
    }
    json_object_foreach(outs, slot, v)
    {
        mt_job_output *o = &job->outputs[job->n_outputs++];
        o->slot = strdup(slot);
        if (!o->slot) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if (!(o->file_id = strdup(json_string_value(v) ? json_string_value(v) : ""))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = slot_from_file(c, mdb, &row, json_string_value(v), &o->path, NULL, o->key, NULL,
                                 err)))
            goto out;
    }
    job->task_id = task_id;
    job->executor_type = exec_type;
    job->function = builtin;
    job->limits.mem_bytes = c->task_mem_bytes;
    job->limits.cpu_seconds = c->task_cpu_seconds;
    job->limits.wall_ms = c->task_wall_ms;
    job->worker_path = c->worker_path;
    job->file_url_root = c->file_url_root;
    job->fetch_allow = c->fetch_allow;
out:
    integ_task_row_free(&row);
    json_decref(assign);
    json_decref(participants);
    store_rollback(mdb); /* read transaction */
    if (rc)
        job_free(job);
    return rc;
}

/* Checks every output file of the task: outs (slot -> file_id) is the
 * verified mapping (the job's, or the binding verified in the outcome's own
 * transaction), never task_files read again (the host could answer that read
 * with another file: another task's unwritten output, any file). Each file's
 * MAC must hold and the file must not be written yet (an output is written
 * once, by the task it is assigned to: a written one here is a store that
 * assigned it twice). *n: the number of output slots. */
mt_status sched_outputs_check(mt_core *c, mt_db *mdb, const json_t *outs, size_t *n, mt_err *err)
{
    *n = 0;
    const char *slot;
    json_t *v;
    json_object_foreach((json_t *)outs, slot, v)
    {
        const char *fid = json_string_value(v);
        core_file f;
        if (!fid)
            return integ_fail(err, "binding");
        /* one file bound to two slots: the slots' bytes would overwrite
         * each other */
        const char *s2;
        json_t *v2;
        json_object_foreach((json_t *)outs, s2, v2)
        {
            if (!strcmp(s2, slot))
                break;
            if (json_is_string(v2) && !strcmp(json_string_value(v2), fid))
                return integ_fail(err, "binding");
        }
        mt_status rc = integ_file_load(c, mdb, fid, &f, NULL, NULL, err);
        bool written = f.written;
        mt_wipe(&f, sizeof f);
        if (rc)
            return rc;
        if (written) {
            mt_error("store integrity: output file %s is already written", fid);
            return integ_fail(err, "file");
        }
        ++*n;
    }
    return MT_OK;
}

/* The task's output mapping from its binding, verified in this transaction
 * (integ_task_verify_row): for an outcome whose caller has no verified
 * mapping at hand. *outs: a new reference. */
static mt_status outputs_verified(mt_core *c, mt_db *mdb, const char *task_id, json_t **outs,
                                  mt_err *err)
{
    integ_task_row row;
    mt_status rc = integ_task_verify_row(c, mdb, task_id, &row, err);
    if (rc)
        return rc;
    *outs = json_incref(json_object_get(row.assignments, "outputs"));
    integ_task_row_free(&row);
    return *outs ? MT_OK : integ_fail(err, "binding");
}

/* Set by finish on a scheduler thread: its last committed outcome tried to
 * claim the next task in the same transaction and the queue was empty
 * (worker_main then does not claim again before it sleeps). */
static _Thread_local bool t_next_empty;

/* Stores the outcome in one transaction. When next (may be NULL) is given,
 * the oldest staged task is claimed in the same transaction (group commit):
 * *next_got tells whether one was, its id in next (its claim count in
 * *next_attempt). attempt > 0: a local run's claim (current_run_sql), on
 * PostgreSQL the outcome is stored only while it is still the task's
 * current run, else dropped with a log line (the fencing of local runs;
 * remote runs have their guard). */
static mt_status finish(core_sched *s, mt_core *c, mt_db *mdb, const char *task_id, int64_t attempt,
                        const mt_job_result *r, const char *setup_failure, char next[MT_ID_LEN + 1],
                        bool *next_got, int64_t *next_attempt, const json_t *outputs,
                        sched_finish_guard guard, void *gctx, mt_err *err)
{
    if (next_got)
        *next_got = false;
    t_next_empty = false;
    bool next_tried = false;
    json_t *outs_owned = NULL; /* outputs verified here (outputs NULL) */
    mt_status rc = core_change_begin(c, mdb, err);
    if (rc)
        return rc;
    /* the caller's condition (a remote lease's fencing token and secret),
     * checked under the same write lock as the outcome it guards */
    if (guard && (rc = guard(gctx, mdb, err)))
        goto out;
    int64_t cancel_req = 0;
    bool found = false, dropped = false;
    if (attempt > 0 && mt_db_backend_of(mdb) == MT_DB_PG) {
        /* the run check only: the output files come from the verified
         * mapping (outputs, else outputs_verified), never from task_files */
        char a[24];
        snprintf(a, sizeof a, "%lld", (long long)attempt);
        if ((rc = store_int(mdb, err, &cancel_req, &found, current_run_sql, task_id, c->node_id,
                            a)))
            goto out;
        if (!found) {
            /* another node's sweeper took this node for stopped and put the
             * run back in the queue (node_live.c): it runs, or ran, again
             * under a newer claim, whose outcome is the one that counts */
            mt_warn("task %s: outcome of attempt %lld dropped: the task is no longer this "
                    "node's run (requeued while this node was taken for stopped, node id %s)",
                    task_id, (long long)attempt, c->node_id);
            dropped = true;
            goto commit;
        }
    } else if ((rc = store_int(mdb, err, &cancel_req, &found,
                               "SELECT cancel_requested FROM tasks WHERE task_id = ? AND "
                               "status = 'running'",
                               task_id)))
        goto out;
    if (!found) /* no longer ours (cannot happen while we hold it) */
        goto commit;
    if (!setup_failure && r->canceled && !cancel_req && s && atomic_load(&s->stop)) {
        /* graceful stop after the grace period: the killed worker committed
         * nothing (its temporary outputs are gone), so the task runs again */
        char obj[8 + MT_ID_LEN];
        snprintf(obj, sizeof obj, "task:%s", task_id);
        json_t *ids = json_pack("[s]", task_id);
        if (!ids)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        if (!rc)
            rc = audit_append(c, mdb, "scheduler", "task requeued (stop)", obj, 0, err);
        if (!rc)
            rc = requeue_ids(c, mdb, ids, err);
        json_decref(ids);
        if (rc)
            goto out;
        mt_info("task %s requeued: " STOP_REASON "; it runs again at the next start", task_id);
        goto commit;
    }
    const char *status;
    const char *reason = NULL;
    json_t *result = NULL;
    if (setup_failure) {
        status = "failed";
        reason = setup_failure;
    } else if (r->canceled) {
        if (cancel_req) {
            status = "canceled";
            reason = "canceled while running";
        } else {
            status = "failed";
            reason = r->failure_reason ? r->failure_reason : "worker was stopped";
        }
    } else if (r->ok) {
        status = "finished";
        result = json_pack("{s:s?, s:O?}", "return_value", r->return_value, "outputs", r->outputs);
    } else {
        status = "failed";
        reason = r->failure_reason ? r->failure_reason : "the function failed";
    }
    /* an output row edited while the task ran is not marked written (nor
     * re-MACed): the task fails instead of being stuck retrying. Which files
     * are its outputs comes from a verified read only: the job's mapping
     * (outputs), else the binding verified here */
    size_t n_outputs = 0;
    mt_err ierr; /* reason may point into it */
    mt_err_clear(&ierr);
    if (!strcmp(status, "finished")) {
        mt_status irc = MT_OK;
        if (!outputs && !(irc = outputs_verified(c, mdb, task_id, &outs_owned, &ierr)))
            outputs = outs_owned;
        if (!irc)
            irc = sched_outputs_check(c, mdb, outputs, &n_outputs, &ierr);
        if (irc == MT_EINTERNAL) {
            status = "failed";
            /* "integrity check failed: CLASS": nothing from the rows */
            reason = strstr(ierr.msg, "integrity check failed: ") == ierr.msg
                         ? ierr.msg
                         : "integrity check failed: file";
            json_decref(result);
            result = NULL;
        } else if (irc) {
            json_decref(result);
            rc = mt_err_set(err, irc, "%s", ierr.msg);
            goto out;
        }
    }
    char *result_text = result ? mt_json_dump(result) : NULL;
    json_decref(result);
    if (result && !result_text) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    /* the outcome and its MAC in one statement (integ_task_result_mac) */
    char result_mac[65];
    mt_db_stmt *st;
    if ((rc = integ_task_result_mac(c, task_id, result_text, reason, r ? r->log : NULL, result_mac,
                                    err)) ||
        (rc = core_stmt_get(
             c, mdb,
             "UPDATE tasks SET status = ?1, result = ?2, failure_reason = ?3, "
             "log = ?4, cpu_ms = ?5, peak_rss_kb = ?6, wall_ms = ?7, bytes_in = "
             "?8, bytes_out = ?9, updated_at = ?10, fuel_used = ?12, key_signs = ?13, "
             "result_mac = ?14 WHERE task_id = ?11",
             &st, err))) {
        free(result_text);
        goto out;
    }
    mt_db_bind_text(st, 1, status);
    mt_db_bind_text(st, 2, result_text);
    mt_db_bind_text(st, 3, reason);
    mt_db_bind_text(st, 4, r ? r->log : NULL);
    mt_db_bind_int64(st, 5, r ? (int64_t)r->cpu_ms : 0);
    mt_db_bind_int64(st, 6, r ? (int64_t)r->peak_rss_kb : 0);
    mt_db_bind_int64(st, 7, r ? (int64_t)r->wall_ms : 0);
    mt_db_bind_int64(st, 8, r ? (int64_t)r->bytes_in : 0);
    mt_db_bind_int64(st, 9, r ? (int64_t)r->bytes_out : 0);
    mt_db_bind_int64(st, 10, mt_now());
    mt_db_bind_text(st, 11, task_id);
    mt_db_bind_int64(st, 12, r ? (int64_t)r->fuel_used : 0);
    mt_db_bind_int64(st, 13, r ? (int64_t)r->key_signs : 0);
    mt_db_bind_text(st, 14, result_mac);
    /* the row was read in this transaction (found above): the outcome goes
     * with the next statement or the COMMIT, no round trip of its own */
    rc = mt_db_run_deferred(st, err);
    core_stmt_put(c, st);
    free(result_text);
    if (rc)
        goto out;
    /* outputs: mark written, the verified mapping's files only (outputs:
     * never task_files read again) */
    if (!strcmp(status, "finished") && r->outputs && n_outputs) {
        const char *slot;
        json_t *v;
        json_object_foreach((json_t *)outputs, slot, v)
        {
            const char *fid = json_string_value(v);
            json_t *o = json_object_get(r->outputs, slot);
            const char *sha = json_string_value(json_object_get(o, "sha256"));
            json_int_t size = json_integer_value(json_object_get(o, "size"));
            /* the output enters the object store with the outcome (--objects
             * db: its rows, in this transaction); core_file_load verifies */
            core_file of;
            if (c->ostore && ((rc = core_file_load(c, mdb, fid, &of, err)) ||
                              (of.object_id[0] && (rc = untrusted_objects_publish_in(
                                                       c, mdb, of.object_id, sha, err)))))
                goto out;
            /* written, size and sha256 with the MAC over the row as verified
             * in the same read and so changed: never a MAC over whatever a
             * later read of the row returns */
            integ_file_change chg = {.set_written = true, .size = size, .sha256 = sha};
            if ((rc = integ_file_rewrite(c, mdb, fid, &chg, NULL, NULL, err)))
                goto out;
        }
    }
    /* function statistics */
    {
        mt_db_stmt *u;
        if ((rc = core_stmt_get(c, mdb,
                                "UPDATE functions SET tasks_finished = tasks_finished + ?1, "
                                "tasks_failed = tasks_failed + ?2, cpu_ms = cpu_ms + ?3 "
                                "WHERE function_id = (SELECT function_id FROM tasks WHERE "
                                "task_id = ?4)",
                                &u, err)))
            goto out;
        mt_db_bind_int64(u, 1, !strcmp(status, "finished"));
        mt_db_bind_int64(u, 2, !strcmp(status, "failed"));
        mt_db_bind_int64(u, 3, r ? (int64_t)r->cpu_ms : 0);
        mt_db_bind_text(u, 4, task_id);
        rc = mt_db_run_deferred(u, err); /* as the outcome's UPDATE */
        core_stmt_put(c, u);
        if (rc)
            goto out;
    }
    {
        char obj[8 + MT_ID_LEN], action[24];
        snprintf(obj, sizeof obj, "task:%s", task_id);
        snprintf(action, sizeof action, "task %s", status);
        if ((rc = audit_append(c, mdb, "scheduler", action, obj, 0, err)))
            goto out;
    }
    mt_info("task %s %s%s%s", task_id, status, reason ? ": " : "", reason ? reason : "");
commit:
    /* group commit: the next task's claim rides on this commit; a claim
     * that fails is undone alone (the outcome is kept) */
    if (next && next_got && !atomic_load(&c->draining) && !(s && atomic_load(&s->stop)) &&
        nlive_claim_ok(c) && !sched_handoff_waiting(s)) {
        mt_err cerr;
        if (store_exec(mdb, "SAVEPOINT claim_next", err) == MT_OK) {
            mt_status crc = claim_in_tracked(c, mdb, next, next_got, next_attempt, &cerr);
            bool failed = crc != MT_OK;
            if (failed) {
                *next_got = false;
                mt_warn("scheduler: claiming the next task failed: %s", cerr.msg);
            }
            bool claimed = *next_got;
            /* the queue was seen empty only by a claim that neither failed
             * nor claimed (a claim undone at its savepoint saw a task) */
            next_tried = !failed && !claimed;
            rc = savepoint_leave(mdb, "claim_next", next_got, failed, err);
            if (claimed && !*next_got)
                runs_del(next, *next_attempt);
            /* on PostgreSQL an earlier deferred write of this transaction
             * may have failed with the claim's statement: the ROLLBACK TO
             * then fails too ("transaction aborted"); keep the claim's own
             * retryable status so the outcome is retried, not discarded */
            if (rc && crc == MT_EUNAVAIL)
                rc = mt_err_set(err, MT_EUNAVAIL, "%s", cerr.msg);
            if (rc)
                goto out;
        }
    }
    /* the other nodes' parked requests: woken with this commit */
    bool notified = cwake_notify_tx(c, mdb, CWAKE_TASK);
    rc = store_commit(mdb, err);
    if (!rc) {
        t_next_empty = next_tried && !*next_got;
        if (s) {
            atomic_fetch_add(&s->commits, 1);
            atomic_fetch_add(&s->transitions, !dropped + (next_got && *next_got));
            if (dropped)
                atomic_fetch_add(&s->dropped, 1);
        }
        mt_trace_mark(task_id, "outcome_committed"); /* MESATEE_TRACE_TASKS (mt_trace.h) */
        /* wakes GET /v1/tasks/{id}?wait= (task_wait.c) */
        if (notified)
            core_task_event_local(c, task_id);
        else
            core_task_event_id(c, task_id);
        mt_trace_mark(task_id, "event_raised");
    }
out:
    json_decref(outs_owned);
    if (rc) {
        store_rollback(mdb);
        if (next_got && *next_got) /* the commit failed: its outcome unknown */
            runs_del(next, *next_attempt);
        if (next_got)
            *next_got = false;
    }
    return rc;
}

/* Removes the files a run's worker wrote, when the outputs' transaction
 * failed, but only while that run is still the task's current one (task,
 * this node, attempt): a run requeued meanwhile (another node's sweeper,
 * the orphan check) may have been claimed again by this node, whose worker
 * writes the same paths. The check holds the row (SQLite: the write lock;
 * PostgreSQL: FOR UPDATE) until the files are gone, so no requeue can come
 * between. Where the check fails the files are left (logged). */
static void discard_outputs(mt_core *c, mt_db *mdb, const char *task_id, int64_t attempt,
                            char **paths, size_t n)
{
    if (!n)
        return;
    mt_err err;
    mt_err_clear(&err);
    bool found = false;
    int64_t v;
    char a[24], q[256];
    snprintf(a, sizeof a, "%lld", (long long)attempt);
    snprintf(q, sizeof q, "%s%s", current_run_sql,
             mt_db_backend_of(mdb) == MT_DB_PG ? " FOR UPDATE" : "");
    /* the row lock (SQLite: the write lock) only, not the cluster's writer lock */
    mt_status rc = claim_tx_begin(mdb, &err);
    if (!rc)
        rc = store_int(mdb, &err, &v, &found, q, task_id, c->node_id, a);
    if (!rc && found)
        for (size_t i = 0; i < n; i++) /* not left on this node's disk */
            untrusted_objects_discard_output(c, paths[i]);
    else if (rc)
        mt_warn("task %s: its output files are left in place: whether its run is still the "
                "current one could not be checked: %s",
                task_id, err.msg);
    else
        mt_info("task %s: its output files are left in place: the run of attempt %lld is no "
                "longer current",
                task_id, (long long)attempt);
    store_rollback(mdb);
}

/* job's output slots as {slot: file_id} (the verified values build_job put
 * there); NULL when out of memory. */
static json_t *job_outputs_map(const mt_job *job)
{
    json_t *m = json_object();
    for (size_t i = 0; m && i < job->n_outputs; i++)
        if (!job->outputs[i].slot || !job->outputs[i].file_id ||
            json_object_set_new(m, job->outputs[i].slot, json_string(job->outputs[i].file_id))) {
            json_decref(m);
            m = NULL;
        }
    return m;
}

/* A local run's outputs are produced under a name of their own
 * (<object path>.run-<random>) and renamed over the objects only by
 * local_publish, inside the outcome's transaction, after the outputs were
 * checked there: an output written meanwhile by another task (a store that
 * assigned one file to two tasks) keeps that task's bytes. */
typedef struct local_stage {
    mt_core *c;
    const char *task_id;
    int64_t attempt;
    mt_job_result *r; /* NULL: a setup failure */
    const json_t *outs;
    size_t n;
    char **staged, **final; /* n each; staged[i] NULL once renamed */
} local_stage;

/* finish's guard for local runs: see local_stage. */
static mt_status local_publish(void *gctx, mt_db *mdb, mt_err *err)
{
    local_stage *ls = gctx;
    mt_job_result *r = ls->r;
    if (!r || !r->ok || r->canceled || !ls->n)
        return MT_OK;
    mt_status rc;
    if (ls->attempt > 0 && mt_db_backend_of(mdb) == MT_DB_PG) {
        /* no longer this node's run: finish drops the outcome, the objects
         * stay as they are */
        char a[24];
        int64_t v;
        bool found = false;
        snprintf(a, sizeof a, "%lld", (long long)ls->attempt);
        if ((rc = store_int(mdb, err, &v, &found, current_run_sql, ls->task_id, ls->c->node_id, a)))
            return rc;
        if (!found)
            return MT_OK;
    }
    size_t n;
    mt_err e;
    mt_err_clear(&e);
    if ((rc = sched_outputs_check(ls->c, mdb, ls->outs, &n, &e))) {
        if (rc != MT_EINTERNAL)
            return mt_err_set(err, rc, "%s", e.msg);
        /* finish's own check fails the outcome with the same reason */
        r->ok = false;
        json_decref(r->outputs);
        r->outputs = NULL;
        free(r->failure_reason);
        r->failure_reason = strdup(strstr(e.msg, "integrity check failed: ") == e.msg
                                       ? e.msg
                                       : "integrity check failed: file");
        return MT_OK;
    }
    /* every output's rename, then one fsync of their directory (the object
     * store is one flat directory), as the remote report_guard does: the
     * write lock is held here */
    const char *renamed = NULL;
    for (size_t i = 0; i < ls->n; i++) {
        if (!ls->staged[i])
            continue;
        if (rename(ls->staged[i], ls->final[i]) != 0) {
            int e2 = errno;
            if (renamed)
                (void)mt_fsync_parent_dir(renamed, NULL);
            return mt_err_set(err, MT_EIO, "storing output %zu of task %s: %s", i, ls->task_id,
                              strerror(e2));
        }
        free(ls->staged[i]);
        ls->staged[i] = NULL;
        renamed = ls->final[i];
    }
    if (renamed && (rc = mt_fsync_parent_dir(renamed, err)))
        return rc;
    return MT_OK;
}

/* Points the job's outputs at staging names (local_stage): ls->final keeps
 * the objects' paths, ls->staged the names the worker produces. */
static mt_status local_stage_outputs(mt_job *job, local_stage *ls, mt_err *err)
{
    ls->n = 0;
    if (!job->n_outputs)
        return MT_OK;
    if (!(ls->staged = calloc(job->n_outputs, sizeof *ls->staged)) ||
        !(ls->final = calloc(job->n_outputs, sizeof *ls->final)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < job->n_outputs; i++) {
        uint8_t rnd[8];
        char hex[17];
        mt_status rc = mt_random(rnd, sizeof rnd, err);
        if (rc)
            return rc;
        mt_hex_encode(rnd, sizeof rnd, hex);
        size_t len = strlen(job->outputs[i].path) + 6 + sizeof hex;
        char *st = malloc(len);
        if (!st)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        snprintf(st, len, "%s.run-%s", job->outputs[i].path, hex);
        ls->final[i] = job->outputs[i].path;
        ls->staged[i] = st;
        ls->n++;
        if (!(job->outputs[i].path = strdup(st)))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    return MT_OK;
}

/* Removes the staged outputs not renamed over their objects. */
static void local_stage_free(local_stage *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->staged && ls->staged[i]) {
            (void)unlink(ls->staged[i]);
            free(ls->staged[i]);
        }
        free(ls->final[i]);
    }
    free(ls->staged);
    free(ls->final);
    memset(ls, 0, sizeof *ls);
}

/* Runs a claimed task and stores its outcome, claiming the next task in
 * the same commit (*next_got, its id in next). */
static void run_task(core_sched *s, mt_db *mdb, const char *task_id, int64_t attempt,
                     char next[MT_ID_LEN + 1], bool *next_got, int64_t *next_attempt)
{
    *next_got = false;
    mt_core *c = s->core;
    mt_err err;
    mt_err_clear(&err);
    mt_job job;
    char exec_type[33], builtin[65];
    mt_job_result res;
    memset(&res, 0, sizeof res);
    char reason[MT_ERR_MSG_MAX + 64] = "";
    mt_status rc = build_job(c, mdb, task_id, &job, exec_type, builtin, &err);
    /* where the worker produces the outputs: removed again if they cannot
     * be stored (--objects db: node-local files that never became objects) */
    char **out_paths = NULL;
    size_t n_out = 0;
    if (!rc && job.n_outputs && (out_paths = calloc(job.n_outputs, sizeof *out_paths)))
        for (; n_out < job.n_outputs; n_out++)
            out_paths[n_out] = job.outputs[n_out].path ? strdup(job.outputs[n_out].path) : NULL;
    /* the output slots' files as the job was built from them (the binding
     * verified by build_job): the outcome marks these written, never what a
     * later read of task_files says */
    json_t *outmap = NULL;
    if (!rc && !(outmap = job_outputs_map(&job))) {
        rc = mt_err_set(&err, MT_ENOMEM, "out of memory");
        job_free(&job);
    }
    local_stage ls;
    memset(&ls, 0, sizeof ls);
    ls.c = c;
    ls.task_id = task_id;
    ls.attempt = attempt;
    ls.outs = outmap;
    if (!rc && (rc = local_stage_outputs(&job, &ls, &err)))
        job_free(&job);
    /* KeyStore key uses; a refusal of the audit spool's gate (spooled
     * entries first) is retried, never the task's failure */
    mt_status krc = MT_OK; /* the key-use audit's own status (rc: any step's) */
    for (int64_t ms = 250; !rc && (krc = rc = keyuse_audit(c, mdb, task_id, &job, &err)) &&
                           core_aspool_refusal(rc, &err) && !atomic_load(&s->stop);
         ms = ms * 2 > 5000 ? 5000 : ms * 2) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        krc = rc = MT_OK;
    }
    if (krc && core_aspool_refusal(krc, &err)) { /* stopping: left running, run again later */
        mt_warn("task %s: its KeyStore key use waits for the audit spool and the scheduler "
                "stops: left running (run again later)",
                task_id);
        job_free(&job);
        for (size_t i = 0; i < n_out; i++)
            free(out_paths[i]);
        free(out_paths);
        local_stage_free(&ls);
        json_decref(outmap);
        runs_del(task_id, attempt);
        return;
    }
    if (krc) {
        mt_warn("task %s: recording its KeyStore key use failed: %s", task_id, err.msg);
        mt_err_set(&err, rc, "its KeyStore key use could not be recorded in the audit log");
        job_free(&job);
    }
    mt_trace_mark(task_id, "job_built");
    if (rc) {
        snprintf(reason, sizeof reason, "could not prepare the task: %s", err.msg);
    } else {
        cancel_ctx cc = {s, mdb, task_id, attempt};
        mt_info("task %s running (%s/%s)", task_id, exec_type, builtin);
        rc = mt_executor_run(&job, should_cancel, &cc, &res, &err);
        mt_trace_mark(task_id, "exec_done");
        if (rc) {
            /* the message names host paths: the operator's log, not the reason */
            mt_warn("task %s: could not start the worker: %s", task_id, err.msg);
            snprintf(reason, sizeof reason, "could not start the worker (%s; see the server log)",
                     mt_status_name(rc));
        }
        job_free(&job);
    }
    /* Retry storing the outcome: it must not be lost to a transient error.
     * An outcome that cannot be stored (an output that does not enter the
     * object store: a changed local file, a damaged database object; or
     * retryable errors that do not pass) fails the task now, with the
     * reason, instead of leaving it 'running' until the next start. */
    bool failing = false;
    int64_t refused_ms = 250; /* the audit spool's refusals: backoff */
    for (int tries = 0; tries < 40;) {
        mt_err ferr;
        ls.r = rc || failing ? NULL : &res;
        mt_status frc = finish(s, c, mdb, task_id, attempt, ls.r, rc || failing ? reason : NULL,
                               next, next_got, next_attempt, outmap, local_publish, &ls, &ferr);
        if (frc == MT_OK)
            break;
        if (core_aspool_refusal(frc, &ferr)) {
            /* nothing of the outcome ran: spooled audit entries must reach
             * the chain first (audit_spool.c). Not an error of the outcome:
             * never converted into a failure, the outputs kept; retried
             * until the spool drains or we stop (the row stays running and
             * the orphan check or the next start runs the task again) */
            if (atomic_load(&s->stop)) {
                mt_warn("task %s: its outcome waits for the audit spool and the scheduler "
                        "stops: left running (run again later)",
                        task_id);
                break;
            }
            struct timespec ts = {refused_ms / 1000, (refused_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
            refused_ms = refused_ms * 2 > 5000 ? 5000 : refused_ms * 2;
            continue;
        }
        tries++;
        if (!rc && !failing && (frc != MT_EUNAVAIL || tries >= 20)) {
            mt_error("task %s: storing the outcome failed (%s); the task fails", task_id,
                     ferr.msg);
            snprintf(reason, sizeof reason,
                     "the task's outputs could not be stored (%s; see the server log)",
                     mt_status_name(frc));
            failing = true;
            discard_outputs(c, mdb, task_id, attempt, out_paths, n_out);
            continue;
        }
        mt_error("task %s: storing the outcome failed (%s); retrying", task_id, ferr.msg);
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < n_out; i++)
        free(out_paths[i]);
    free(out_paths);
    local_stage_free(&ls);
    json_decref(outmap);
    mt_job_result_clear(&res);
    /* after the outcome's commit (or after giving up: a row still running
     * is then the orphan check's, which runs it again) */
    runs_del(task_id, attempt);
}

typedef struct thread_arg {
    core_sched *s;
    unsigned idx;
} thread_arg;

static void *worker_main(void *p)
{
    thread_arg *ta = p;
    core_sched *s = ta->s;
    mt_db *db = s->dbs[ta->idx];
    free(ta);
    pthread_setname_np(pthread_self(), "mt-sched"); /* top -H, perf --per-thread */
    core_stmt_thread_bind(db);
    char task_id[MT_ID_LEN + 1], next[MT_ID_LEN + 1];
    int64_t attempt = 0, next_attempt = 0; /* their claims' tasks.run_attempt */
    bool got = false; /* task_id was claimed (by the last outcome's commit) */
    bool handed = false; /* ... taken from the hand-off queue (claim on invoke) */
    uint64_t handed_mark = 0; /* ... whose commit that mark covers (sync_mark) */
    int64_t refused_ms = RETRY_MS; /* claims the audit spool's gate refused: backoff */
    /* the last outcome's commit found the queue empty (t_next_empty) with
     * wake generation `run_gen` read before that run: no claim before the
     * sleep. A task staged after the claim's snapshot was committed after
     * it, and its wake (sched_wake after the commit, a NOTIFY delivered
     * after it) bumps the generation after that: then seen != s->gen and
     * the thread claims at once instead of sleeping (one empty claim, two
     * round trips on PostgreSQL, less per task) */
    bool queue_empty = false;
    uint64_t run_gen = 0;
    while (!atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->mu);
        uint64_t seen = s->gen;
        bool skip_claim = queue_empty && seen == run_gen;
        queue_empty = false;
        if (!got && s->ho_n) { /* claimed with its invoke: run it (even when draining) */
            unsigned h = s->ho_head;
            memcpy(task_id, s->ho[h].task_id, sizeof task_id);
            attempt = s->ho[h].attempt;
            handed_mark = s->ho[h].sync_mark;
            s->ho_head = (h + 1) % SCHED_HANDOFF_MAX;
            s->ho_n--;
            got = true;
            handed = true;
        }
        if (got) {
            skip_claim = false;
            run_gen = s->gen; /* before the run's outcome tries its next claim */
        }
        pthread_mutex_unlock(&s->mu);
        bool failed = false;
        mt_err err;
        /* a claim on invoke whose commit the gateway makes durable itself
         * (mt_request.defer_sync) may not be on disk yet: the run starts
         * only once it is (no fsync when it already is: mt_db_sync_to waits
         * for that commit only, not for every commit registered since,
         * which the committer's sync for the invoke's reply or another
         * thread's usually covers already) */
        if (got && handed && mt_db_sync_to(db, handed_mark, &err) != MT_OK) {
            mt_warn("task %s: its claim could not be made durable (%s); the orphan check "
                    "requeues it",
                    task_id, err.msg);
            runs_del(task_id, attempt);
            atomic_fetch_add(&s->handed_unsynced, 1);
            got = false;
        }
        handed = false;
        /* without its liveness lock this node claims nothing new
         * (node_live.c); the liveness thread wakes us once it holds it */
        int64_t wait_ms = RETRY_MS;
        if (!got && !skip_claim && !atomic_load(&s->core->draining) && nlive_claim_ok(s->core)) {
            pthread_mutex_lock(&s->mu);
            run_gen = s->gen; /* before this claim's snapshot */
            pthread_mutex_unlock(&s->mu);
            mt_status crc = claim(s, s->core, db, task_id, &got, &attempt, NULL, NULL, &err);
            failed = crc != MT_OK;
            if (failed && core_aspool_refusal(crc, &err)) {
                /* the audit spool's gate (logged there, rate-limited):
                 * retried with backoff, not every RETRY_MS */
                wait_ms = refused_ms;
                refused_ms = refused_ms * 2 > 5000 ? 5000 : refused_ms * 2;
            } else {
                refused_ms = RETRY_MS;
                if (failed)
                    mt_warn("scheduler: claiming a task failed: %s; retrying", err.msg);
            }
        }
        if (got) {
            mt_trace_mark(task_id, "sched_run"); /* MESATEE_TRACE_TASKS (mt_trace.h) */
            run_task(s, db, task_id, attempt, next, &got, &next_attempt);
            if (got) {
                memcpy(task_id, next, sizeof task_id);
                attempt = next_attempt;
            } else
                queue_empty = t_next_empty;
            continue;
        }
        /* sleep until a wake that came after `seen`; only a failed claim
         * also wakes on a timer (the store may be busy or full) */
        pthread_mutex_lock(&s->mu);
        while (!atomic_load(&s->stop) && s->gen == seen && !s->ho_n) {
            s->sleeping++;
            int e = 0;
            if (failed) {
                struct timespec ts;
                mt_mono_deadline(&ts, (long)wait_ms);
                e = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            } else
                pthread_cond_wait(&s->cv, &s->mu);
            s->sleeping--;
            if (e == ETIMEDOUT) {
                atomic_fetch_add(&s->wake_timer, 1);
                break;
            }
            if (s->gen != seen)
                atomic_fetch_add(&s->wake_event, 1);
        }
        pthread_mutex_unlock(&s->mu);
    }
    /* a task claimed by the last commit but not run is put back in the
     * queue by the requeue at close (sched_requeue_running) */
    if (got)
        runs_del(task_id, attempt);
    core_stmt_thread_release();
    return NULL;
}

/* ---- the orphan check (docs/design.md "Orphaned runs") -----------------
 * A claim whose commit reported a failure may have committed all the same
 * (the connection broke during COMMIT): the row is running under this
 * node's id, and this node, alive and holding its liveness lock, is never
 * swept (node_live.c). This thread finds such rows: local runs under this
 * node's id whose (task, attempt) is not in the tracked set (runs_add). The
 * order makes it safe for a run that goes on: the rows are read first, the
 * set after; a run is added before its claim commits, so a row read as
 * running is in the set unless its run ended (outcome committed: the fenced
 * UPDATE below finds it no longer running with that attempt) or its claim
 * never stood for this process. A row must be seen so in every round for
 * ORPHAN_GRACE_MS before it is requeued: a fenced UPDATE (task, running,
 * this node, attempt, no executor lease), keeping its place in the queue,
 * with its "task requeued (orphaned)" entry in the same transaction; it then
 * runs once more under a new claim. */
typedef struct {
    run_key k;
    int64_t since_ms;
} orphan_seen;

/* sched_lose_run's last step: the outcome only while the row is still the
 * lost run (node, claim, a local run); else gone and nothing is stored. */
typedef struct {
    const char *task_id, *node;
    char attempt[24];
    bool gone;
} lost_guard;

static mt_status lost_run_guard(void *gctx, mt_db *db, mt_err *err)
{
    lost_guard *g = gctx;
    int64_t v = 0;
    bool found = false;
    mt_status rc = store_int(db, err, &v, &found,
                             "SELECT 1 FROM tasks WHERE task_id = ? AND run_node = ? AND "
                             "run_attempt = CAST(? AS INTEGER) AND " SQL_LOCAL_RUN(""),
                             g->task_id, g->node, g->attempt);
    if (!rc && !found) {
        g->gone = true;
        rc = mt_err_set(err, MT_ECONFLICT, "the lost run is no longer the task's run");
    }
    return rc;
}

mt_status sched_lose_run(mt_core *c, mt_db *db, const char *task_id, const char *node,
                         int64_t attempt, const char *why, const char *requeue_entry,
                         sched_lost *out, int64_t *lost_count, mt_err *err)
{
    *out = SCHED_LOST_NONE;
    mt_status rc = core_change_begin(c, db, err);
    if (rc)
        return rc;
    char a[24], now[24], nl[24], obj[8 + MT_ID_LEN];
    snprintf(a, sizeof a, "%lld", (long long)attempt);
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    snprintf(obj, sizeof obj, "task:%s", task_id);
    /* the run, fenced: this node, (this attempt,) a local run; attempt < 0
     * matches any (CAST(-1) never equals a claimed attempt, so the OR) */
#define LOST_FENCE                                                                            \
    "task_id = ? AND run_node = ? AND (CAST(? AS INTEGER) < 0 OR run_attempt = CAST(? AS "    \
    "INTEGER)) AND " SQL_LOCAL_RUN("")
    int64_t lost = 0, cancel = 0;
    bool found = false, found2 = false;
    if ((rc = store_int(db, err, &lost, &found, "SELECT node_lost FROM tasks WHERE " LOST_FENCE,
                        task_id, node, a, a)) ||
        (found && (rc = store_int(db, err, &cancel, &found2,
                                  "SELECT cancel_requested FROM tasks WHERE task_id = ?",
                                  task_id))))
        goto out;
    if (!found) { /* finished or requeued meanwhile */
        store_rollback(db);
        return MT_OK;
    }
    /* the claim lost (attempt < 0: the one the row holds now), so that the
     * outcome below never ends a later claim of the task */
    int64_t run_attempt = attempt;
    if (attempt < 0 &&
        ((rc = store_int(db, err, &run_attempt, &found,
                         "SELECT run_attempt FROM tasks WHERE " LOST_FENCE, task_id, node, a,
                         a)) ||
         !found))
        goto out; /* not found: finished or requeued meanwhile, nothing to do */
    /* every loss counts: a run whose outcome can never be stored, or whose
     * node keeps stopping, is not run again and again */
    lost++;
    if (lost_count)
        *lost_count = lost;
    snprintf(nl, sizeof nl, "%lld", (long long)lost);
    uint32_t max = c->run_max_attempts;
    if (cancel || lost >= (int64_t)max) {
        /* as an expired lease's last attempt (remote_sched.c expire_one): the
         * count first, the outcome by sched_finish in its own transaction (a
         * crash between them leaves a run that fails the next round) */
        if ((rc = store_run(db, err, NULL,
                            "UPDATE tasks SET node_lost = CAST(? AS INTEGER) WHERE task_id = ?",
                            nl, task_id)) ||
            (rc = store_commit(db, err)))
            goto out;
        char reason[256];
        snprintf(reason, sizeof reason, "%s (node id %s); runs lost: %lld, no attempt left of %u",
                 why, node, (long long)lost, max);
        mt_job_result r;
        memset(&r, 0, sizeof r);
        r.canceled = true;
        if (cancel)
            mt_warn("task %s: %s (node id %s); its cancellation was requested: canceled",
                    task_id, why, node);
        else
            mt_warn("task %s: %s", task_id, reason);
        /* fenced on (node, claim): between the commit above and this
         * transaction the run may have been requeued and claimed again (by
         * another node's sweeper and scheduler); that run is not ended */
        lost_guard g = {task_id, node, "", false};
        snprintf(g.attempt, sizeof g.attempt, "%lld", (long long)run_attempt);
        rc = sched_finish_guarded(c, db, task_id, cancel ? &r : NULL, cancel ? NULL : reason, NULL,
                                  lost_run_guard, &g, err);
        if (g.gone) {
            mt_warn("task %s: the lost run (node id %s, attempt %lld) was requeued meanwhile; "
                    "its outcome is not stored",
                    task_id, node, (long long)run_attempt);
            return MT_OK;
        }
        if (!rc)
            *out = SCHED_LOST_ENDED;
        return rc;
    }
    /* staged_seq is kept: the task runs next; the next claim's run_attempt
     * makes a late outcome of the lost run miss (finish) */
    int n = 0;
    char rmac[65]; /* the empty outcome's MAC, written with it */
    if ((rc = integ_task_result_mac(c, task_id, NULL, NULL, NULL, rmac, err)) ||
        (rc = store_run(db, err, &n,
                        "UPDATE tasks SET status = 'staged', result = NULL, failure_reason = "
                        "NULL, log = NULL, cpu_ms = 0, peak_rss_kb = 0, wall_ms = 0, bytes_in = "
                        "0, bytes_out = 0, fuel_used = 0, key_signs = 0, node_lost = CAST(? AS "
                        "INTEGER), updated_at = CAST(? AS INTEGER), result_mac = ? WHERE " LOST_FENCE,
                        nl, now, rmac, task_id, node, a, a)))
        goto out;
#undef LOST_FENCE
    if (n != 1) { /* finished or requeued meanwhile */
        store_rollback(db);
        return MT_OK;
    }
    if ((rc = audit_append(c, db, "scheduler", requeue_entry, obj, 0, err)) ||
        (rc = store_commit(db, err)))
        goto out;
    *out = SCHED_LOST_REQUEUED;
    sched_wake(c); /* any node's scheduler claims it */
    core_task_event(c);
    return MT_OK;
out:
    store_rollback(db);
    return rc;
}

static mt_status orphan_requeue(core_sched *s, mt_db *db, const run_key *k, mt_err *err)
{
    mt_core *c = s->core;
    sched_lost out;
    int64_t lost = 0;
    mt_status rc = sched_lose_run(c, db, k->task_id, c->node_id, k->attempt,
                                  "the task's run ended on this node without a stored outcome",
                                  "task requeued (orphaned)", &out, &lost, err);
    if (rc || out == SCHED_LOST_NONE)
        return rc;
    atomic_fetch_add(&s->orphans, 1);
    if (out == SCHED_LOST_REQUEUED)
        mt_warn("task %s: its run (attempt %lld) was claimed by this node but nobody runs it (a "
                "claim's commit reported a failure yet stood, or its outcome could not be "
                "stored); back in the queue, attempt %lld of %u",
                k->task_id, (long long)k->attempt, (long long)lost + 1, c->run_max_attempts);
    return MT_OK;
}

static void *orphan_main(void *p)
{
    core_sched *s = p;
    mt_core *c = s->core;
    pthread_setname_np(pthread_self(), "mt-orphan");
    orphan_seen *seen = calloc(ORPHAN_MAX, sizeof *seen), *next = calloc(ORPHAN_MAX, sizeof *next);
    size_t n_seen = 0;
    char q[256];
    snprintf(q, sizeof q,
             "SELECT task_id || ':' || CAST(run_attempt AS TEXT) FROM tasks WHERE run_node = ? "
             "AND %s",
             SQL_LOCAL_RUN(""));
    pthread_mutex_lock(&s->mu);
    while (seen && next && !atomic_load(&s->stop)) {
        struct timespec ts;
        mt_mono_deadline(&ts, ORPHAN_TICK_MS);
        while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->ocv, &s->mu, &ts) != ETIMEDOUT)
            ;
        if (atomic_load(&s->stop))
            break;
        pthread_mutex_unlock(&s->mu);
        json_t *rows = NULL;
        mt_err err;
        mt_err_clear(&err);
        /* first the rows, then the set (see above) */
        if (store_ids(s->orph_db, q, c->node_id, &rows, &err) != MT_OK) {
            mt_debug("scheduler: the orphaned-run check failed: %s", err.msg);
            n_seen = 0;
            pthread_mutex_lock(&s->mu);
            continue;
        }
        int64_t now = mt_mono_ms();
        size_t n = 0, i;
        json_t *v;
        json_array_foreach(rows, i, v)
        {
            const char *r = json_string_value(v);
            const char *colon = r ? strchr(r, ':') : NULL;
            if (n >= ORPHAN_MAX || !colon || colon - r != MT_ID_LEN)
                continue;
            run_key k;
            memcpy(k.task_id, r, MT_ID_LEN);
            k.task_id[MT_ID_LEN] = 0;
            k.attempt = strtoll(colon + 1, NULL, 10);
            if (runs_has(k.task_id, k.attempt))
                continue;
            int64_t since = now;
            for (size_t j = 0; j < n_seen; j++)
                if (seen[j].k.attempt == k.attempt && !strcmp(seen[j].k.task_id, k.task_id))
                    since = seen[j].since_ms;
            if (now - since >= ORPHAN_GRACE_MS) {
                if (orphan_requeue(s, s->orph_db, &k, &err) != MT_OK)
                    mt_warn("task %s: requeueing its orphaned run failed: %s; retrying",
                            k.task_id, err.msg);
                else
                    continue;
            }
            next[n].k = k;
            next[n++].since_ms = since;
        }
        json_decref(rows);
        memcpy(seen, next, n * sizeof *next);
        n_seen = n;
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    free(seen);
    free(next);
    return NULL;
}

static void sched_free(core_sched *s)
{
    if (!s)
        return;
    store_close(s->orph_db);
    pthread_cond_destroy(&s->ocv);
    for (unsigned i = 0; i < s->n; i++)
        store_close(s->dbs ? s->dbs[i] : NULL);
    free(s->dbs);
    free(s->threads);
    free(s->started);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void sched_stop(mt_core *c)
{
    core_sched *s = c->sched;
    if (!s)
        return;
    atomic_store(&c->sched_running, false);
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_cond_broadcast(&s->ocv);
    pthread_mutex_unlock(&s->mu);
    if (s->orph_started)
        pthread_join(s->orph, NULL);
    for (unsigned i = 0; i < s->n; i++)
        if (s->started[i])
            pthread_join(s->threads[i], NULL);
    /* handed claims not run: requeued at close (sched_requeue_running) */
    for (; s->ho_n; s->ho_n--, s->ho_head = (s->ho_head + 1) % SCHED_HANDOFF_MAX)
        runs_del(s->ho[s->ho_head].task_id, s->ho[s->ho_head].attempt);
    sched_free(s);
    c->sched = NULL;
}

void sched_wake(mt_core *c)
{
    cwake_post(c, CWAKE_STAGED); /* the other nodes' schedulers (cluster_wake.c) */
    sched_wake_local(c);
}

/* A new generation for this process's scheduler threads: one sleeping
 * thread woken (one task staged: the others see the new generation when they
 * next look), or all of them. */
static void wake_threads(mt_core *c, bool all)
{
    core_sched *s = c->sched;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->gen++;
    if (all)
        pthread_cond_broadcast(&s->cv);
    else
        pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sched_wake_local(mt_core *c)
{
    wake_threads(c, false);
}

void sched_wake_all(mt_core *c)
{
    wake_threads(c, true);
}

/* ---- claim on invoke (issue 13) ---------------------------------------- */

/* The claim of one task by id, as claim_in's (status, node, attempt and the
 * "task running" entry), inside the caller's transaction. */
static mt_status claim_by_id(mt_core *c, mt_db *mdb, const char *task_id, bool *got,
                             int64_t *attempt, mt_err *err)
{
    *got = false;
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(c, mdb,
                                 "UPDATE tasks SET status = 'running', updated_at = ?1, "
                                 "run_node = ?2, lease_until = 0, run_attempt = run_attempt + 1 "
                                 "WHERE task_id = ?3 AND status = 'staged' RETURNING run_attempt, "
                                 "lease_fence, lease_expired, lease_mac",
                                 &st, err);
    if (rc)
        return rc;
    mt_db_bind_int64(st, 1, mt_now());
    mt_db_bind_text(st, 2, c->node_id);
    mt_db_bind_text(st, 3, task_id);
    int64_t fence = 0, expired = 0;
    char mac[LEASE_MAC_STORED_LEN + 2]; /* one more: a longer stored value stays too long */
    bool has_mac = false;
    if (mt_db_step(st, &rc, err) == MT_DB_ROW) {
        *attempt = mt_db_col_int64(st, 0);
        fence = mt_db_col_int64(st, 1);
        expired = mt_db_col_int64(st, 2);
        has_mac = !mt_db_col_null(st, 3);
        snprintf(mac, sizeof mac, "%s", has_mac ? mt_db_col_text(st, 3) : "");
        *got = true;
        mt_db_step(st, &rc, err); /* the end of RETURNING's rows */
        /* tracked before the commit (the orphan check); untracked: no claim */
        if (!runs_add(task_id, *attempt)) {
            if (!rc)
                rc = mt_err_set(err, MT_ENOMEM, "out of memory tracking a claimed run");
            *got = false;
        }
    }
    core_stmt_put(c, st);
    if (!rc && *got) /* as claim_in */
        rc = lease_claimed(c, mdb, task_id, *attempt, fence, expired, has_mac ? mac : NULL,
                           err);
    if (!rc && *got) {
        char obj[8 + MT_ID_LEN];
        snprintf(obj, sizeof obj, "task:%s", task_id);
        if (!(rc = mt_db_writer_lock(mdb, err)))
            rc = audit_append(c, mdb, "scheduler", "task running", obj, 0, err);
    }
    if (rc && *got)
        runs_del(task_id, *attempt);
    if (rc)
        *got = false;
    return rc;
}

bool sched_invoke_claim(mt_core *c, mt_db *mdb, const char *task_id, int64_t *attempt,
                        mt_status *rc_out, mt_err *err_out)
{
    core_sched *s = c->sched;
    if (!s || atomic_load(&c->draining) || !nlive_claim_ok(c))
        return false;
    pthread_mutex_lock(&s->mu);
    bool idle = !atomic_load(&s->stop) && s->sleeping > s->ho_n + s->ho_reserved &&
                s->ho_n + s->ho_reserved < SCHED_HANDOFF_MAX;
    if (idle)
        s->ho_reserved++;
    pthread_mutex_unlock(&s->mu);
    if (!idle)
        return false;
    bool got = false;
    mt_err err;
    if (store_exec(mdb, "SAVEPOINT claim_on_invoke", &err) == MT_OK) {
        mt_status crc = claim_by_id(c, mdb, task_id, &got, attempt, &err);
        bool failed = crc != MT_OK;
        if (failed) {
            got = false;
            mt_warn("scheduler: claiming task %s with its invoke failed: %s; it is queued",
                    task_id, err.msg);
        }
        /* the claim cannot be undone alone: the invoke fails whole */
        bool claimed = got;
        mt_status rc = savepoint_leave(mdb, "claim_on_invoke", &got, failed, err_out);
        if (claimed && !got)
            runs_del(task_id, *attempt);
        /* a deferred write of the invoke failed with the claim (PostgreSQL:
         * the ROLLBACK TO then fails too): keep the retryable status (503) */
        if (rc && crc == MT_EUNAVAIL)
            rc = mt_err_set(err_out, MT_EUNAVAIL, "%s", err.msg);
        if (rc) {
            got = false;
            *rc_out = rc;
        }
    }
    if (!got) {
        pthread_mutex_lock(&s->mu);
        s->ho_reserved--;
        pthread_mutex_unlock(&s->mu);
    }
    return got;
}

void sched_invoke_claimed(mt_core *c, const char *task_id, int64_t attempt, bool committed,
                          uint64_t sync_mark)
{
    core_sched *s = c->sched;
    pthread_mutex_lock(&s->mu);
    s->ho_reserved--;
    if (committed) {
        unsigned t = (s->ho_head + s->ho_n) % SCHED_HANDOFF_MAX;
        snprintf(s->ho[t].task_id, sizeof s->ho[t].task_id, "%s", task_id);
        s->ho[t].attempt = attempt;
        s->ho[t].sync_mark = sync_mark;
        s->ho_n++;
        s->gen++;
        pthread_cond_signal(&s->cv);
        atomic_fetch_add(&s->on_invoke, 1);
    }
    pthread_mutex_unlock(&s->mu);
    /* rolled back, or its commit's outcome unknown (a broken connection may
     * have committed it): the orphan check requeues a claim that stands */
    if (!committed)
        runs_del(task_id, attempt);
}

char *sched_metrics_text(mt_core *c)
{
    core_sched *s = c ? c->sched : NULL;
    unsigned sleeping = 0;
    uint64_t ev = 0, tm = 0, cm = 0, tr = 0, dr = 0, oi = 0, orp = 0, hu = 0;
    if (s) {
        pthread_mutex_lock(&s->mu);
        sleeping = s->sleeping;
        pthread_mutex_unlock(&s->mu);
        ev = atomic_load(&s->wake_event);
        tm = atomic_load(&s->wake_timer);
        cm = atomic_load(&s->commits);
        tr = atomic_load(&s->transitions);
        dr = atomic_load(&s->dropped);
        oi = atomic_load(&s->on_invoke);
        hu = atomic_load(&s->handed_unsynced);
        orp = atomic_load(&s->orphans);
    }
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                 "# HELP mesatee_scheduler_sleeping Scheduler threads waiting for a task.\n"
                 "# TYPE mesatee_scheduler_sleeping gauge\n"
                 "mesatee_scheduler_sleeping %u\n"
                 "# HELP mesatee_scheduler_wakeups_total Scheduler thread wake-ups by cause "
                 "(event: a task was queued; timer: retry after a failed claim).\n"
                 "# TYPE mesatee_scheduler_wakeups_total counter\n"
                 "mesatee_scheduler_wakeups_total{cause=\"event\"} %llu\n"
                 "mesatee_scheduler_wakeups_total{cause=\"timer\"} %llu\n"
                 "# HELP mesatee_scheduler_commits_total Scheduler transactions committed with "
                 "task state changes.\n"
                 "# TYPE mesatee_scheduler_commits_total counter\n"
                 "mesatee_scheduler_commits_total %llu\n"
                 "# HELP mesatee_scheduler_transitions_total Task state changes (claims, "
                 "outcomes) committed by the scheduler.\n"
                 "# TYPE mesatee_scheduler_transitions_total counter\n"
                 "mesatee_scheduler_transitions_total %llu\n"
                 "# HELP mesatee_scheduler_outcomes_dropped_total Outcomes of local runs not "
                 "stored: the run was requeued meanwhile (this node was taken for stopped).\n"
                 "# TYPE mesatee_scheduler_outcomes_dropped_total counter\n"
                 "mesatee_scheduler_outcomes_dropped_total %llu\n"
                 "# HELP mesatee_node_liveness_lock_held Whether this node holds its liveness "
                 "lock (always 1 on SQLite); without it its scheduler claims no new task.\n"
                 "# TYPE mesatee_node_liveness_lock_held gauge\n"
                 "mesatee_node_liveness_lock_held %d\n"
                 "# HELP mesatee_node_liveness_lock_lost_total Times this node lost its "
                 "liveness lock (its claims paused until it held it again).\n"
                 "# TYPE mesatee_node_liveness_lock_lost_total counter\n"
                 "mesatee_node_liveness_lock_lost_total %llu\n"
                 "# HELP mesatee_scheduler_claims_on_invoke_total Claims committed in the "
                 "invoke's own transaction (a thread was idle), not counted above.\n"
                 "# TYPE mesatee_scheduler_claims_on_invoke_total counter\n"
                 "mesatee_scheduler_claims_on_invoke_total %llu\n"
                 "# HELP mesatee_scheduler_claims_on_invoke_unsynced_total Claims on invoke "
                 "not run because their commit could not be made durable (left to the orphan "
                 "check).\n"
                 "# TYPE mesatee_scheduler_claims_on_invoke_unsynced_total counter\n"
                 "mesatee_scheduler_claims_on_invoke_unsynced_total %llu\n"
                 "# HELP mesatee_scheduler_orphans_requeued_total Runs claimed by this node "
                 "that nobody ran (a claim's commit reported a failure yet stood), put back "
                 "in the queue (or failed/canceled at the attempt limit).\n"
                 "# TYPE mesatee_scheduler_orphans_requeued_total counter\n"
                 "mesatee_scheduler_orphans_requeued_total %llu\n",
                 sleeping, (unsigned long long)ev, (unsigned long long)tm,
                 (unsigned long long)cm, (unsigned long long)tr, (unsigned long long)dr,
                 c ? (int)nlive_claim_ok(c) : 1,
                 c ? (unsigned long long)atomic_load(&c->live_lost) : 0ULL, (unsigned long long)oi,
                 (unsigned long long)hu, (unsigned long long)orp);
    if (n < 0 || (size_t)n >= sizeof buf)
        return NULL;
    if (c && c->cwake) { /* PostgreSQL: the wake-ups between nodes (cluster_wake.c) */
        uint64_t sent, received, fallback;
        cwake_counts(c, &sent, &received, &fallback);
        int m = snprintf(buf + n, sizeof buf - (size_t)n,
                         "# HELP mesatee_cluster_notifications_total Wake-up notifications "
                         "(LISTEN/NOTIFY) sent to and received from other nodes.\n"
                         "# TYPE mesatee_cluster_notifications_total counter\n"
                         "mesatee_cluster_notifications_total{direction=\"sent\"} %llu\n"
                         "mesatee_cluster_notifications_total{direction=\"received\"} %llu\n"
                         "# HELP mesatee_cluster_fallback_wakeups_total Wake-ups after 1 s "
                         "without a notification (the fallback for lost ones).\n"
                         "# TYPE mesatee_cluster_fallback_wakeups_total counter\n"
                         "mesatee_cluster_fallback_wakeups_total %llu\n",
                         (unsigned long long)sent, (unsigned long long)received,
                         (unsigned long long)fallback);
        if (m < 0 || (size_t)m >= sizeof buf - (size_t)n)
            return NULL;
    }
    return strdup(buf);
}

mt_status mt_core_start_scheduler(mt_core *core, mt_err *err)
{
    if (!core)
        return mt_err_set(err, MT_EINVAL, "no core");
    if (core->sched)
        return MT_OK;
    if (!core->worker_path)
        return mt_err_set(err, MT_EINVAL,
                          "no worker executable configured: set the path of mesatee-worker");
    core_sched *s = calloc(1, sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    s->core = core;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_cond_init(&s->ocv, &ca);
    pthread_condattr_destroy(&ca);
    s->n = core->workers;
    s->threads = calloc(s->n, sizeof *s->threads);
    s->dbs = calloc(s->n, sizeof *s->dbs);
    s->started = calloc(s->n, sizeof *s->started);
    mt_status rc = MT_OK;
    if (!s->threads || !s->dbs || !s->started) {
        s->n = 0;
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < s->n; i++)
        if ((rc = store_open_grouped(core->db_path, &s->dbs[i], err)))
            goto fail;
    if ((rc = store_open_grouped(core->db_path, &s->orph_db, err)))
        goto fail;
    core->sched = s;
    for (unsigned i = 0; i < s->n; i++) {
        thread_arg *ta = malloc(sizeof *ta);
        if (!ta) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            break;
        }
        ta->s = s;
        ta->idx = i;
        int e = pthread_create(&s->threads[i], NULL, worker_main, ta);
        if (e) {
            free(ta);
            rc = mt_err_set(err, MT_EINTERNAL, "cannot start scheduler thread: %s", strerror(e));
            break;
        }
        s->started[i] = true;
    }
    if (!rc) {
        int e = pthread_create(&s->orph, NULL, orphan_main, s);
        if (e)
            rc = mt_err_set(err, MT_EINTERNAL, "cannot start the orphaned-run check: %s",
                            strerror(e));
        else
            s->orph_started = true;
    }
    if (rc) {
        sched_stop(core);
        return rc;
    }
    atomic_store(&core->sched_running, true);
    atomic_store(&core->ran_tasks, true);
    if (mt_executor_worker_start() == MT_WORKER_START_ZYGOTE) {
        /* issue 13: the first task does not pay for the zygote's start; a
         * failure here is retried by that task's start */
        mt_err zerr;
        mt_err_clear(&zerr);
        if (mt_executor_zygote_prestart(core->worker_path, &zerr) != MT_OK)
            mt_warn("scheduler: the worker zygote did not start (%s); tasks retry it", zerr.msg);
    }
    mt_info("scheduler started with %u worker thread(s)", s->n);
    return MT_OK;
fail:
    sched_free(s);
    return rc;
}

/* ---- for remote executors (remote_sched.c) ------------------------------ */

mt_status sched_claim_job(mt_core *c, mt_db *mdb, char task_id[MT_ID_LEN + 1], bool *got,
                          mt_job *job, char exec_type[33], char builtin[65],
                          sched_claim_hook hook, void *hctx, mt_err *err)
{
    *got = false;
    if (atomic_load(&c->draining)) /* graceful stop: no new task for remote executors */
        return MT_OK;
    mt_status rc = claim(NULL, c, mdb, task_id, got, NULL, hook, hctx, err);
    if (rc || !*got)
        return rc;
    return build_job(c, mdb, task_id, job, exec_type, builtin, err);
}

void sched_job_free(mt_job *job)
{
    job_free(job);
}

mt_status sched_finish(mt_core *c, mt_db *mdb, const char *task_id, const mt_job_result *r,
                       const char *setup_failure, mt_err *err)
{
    return finish(NULL, c, mdb, task_id, 0, r, setup_failure, NULL, NULL, NULL, NULL, NULL, NULL,
                  err);
}

mt_status sched_finish_guarded(mt_core *c, mt_db *mdb, const char *task_id, const mt_job_result *r,
                               const char *setup_failure, const json_t *outputs,
                               sched_finish_guard guard, void *gctx, mt_err *err)
{
    return finish(NULL, c, mdb, task_id, 0, r, setup_failure, NULL, NULL, NULL, outputs, guard,
                  gctx, err);
}
