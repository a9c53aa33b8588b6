/* remote_sched: see mt_remote_sched.h. Claiming and storing reuse sched.c
 * (sched_claim_job, sched_finish), so local and remote runs store the same
 * outcome in the same single transaction. */
#include "mt_remote_sched.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core_internal.h"
#include "job_codec.h"
#include "keyuse.h"
#include "mt_executor.h"
#include "mt_json.h"
#include "mt_log.h"
#include "remote_job.h"

#define MAX_SLOTS 64

#define LEASE_DOMAIN "mesatee-task-lease/v3" /* v3: binds the claim nonce */
#define LEASE_DOMAIN_V2 "mesatee-task-lease/v2" /* only the upgrades write or read it */
#define LEASE_DOMAIN_V1 "mesatee-task-lease/v1" /* only lease_mac_upgrade reads it */
#define LEASE_SECRET_DOMAIN "mesatee-task-lease-secret/v3" /* v3: binds the claim nonce */
#define LEASE_NONCE_BYTES 16
#define LEASE_NONCE_HEX (2 * LEASE_NONCE_BYTES)
#define STAGE_SWEEP_ROUNDS 120 /* lease sweeps (250 ms apart) per sweep of staged uploads */
#define HEALTH_MAX 64 /* executors remembered for /metrics (the least recently seen goes) */

struct mt_remote_sched {
    mt_core *core;
    mt_db *db;
    uint32_t lease_ms;
    uint32_t max_attempts;
    uint64_t outages_seen; /* mt_db_outages' count already answered by leases_grace */
};

static void uploads_drop(mt_remote_sched *rs, const char *task_id, int64_t fence,
                         const json_t *outs);

/* ---- executor health (process-wide: one remote scheduler per daemon) --- */

typedef struct {
    mt_rhello h;
    char peer[MT_REMOTE_PEER_ID_LEN + 1]; /* who sent it (attested TLS key) */
    int64_t seen_ms;
} health_row;

static pthread_mutex_t health_mu = PTHREAD_MUTEX_INITIALIZER;
static health_row health[HEALTH_MAX];
static size_t n_health;
static uint64_t leases_expired_total, reports_fenced_total, remote_cancels_total;
static uint64_t leases_graced_total; /* leases_grace's extensions */
static bool health_on; /* a remote scheduler was opened in this process */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(uint64_t *c)
{
    pthread_mutex_lock(&health_mu);
    (*c)++;
    pthread_mutex_unlock(&health_mu);
}

void mt_remote_sched_health(const mt_rhello *h, const char *peer)
{
    if (!h->present || !peer)
        return;
    /* a row is (peer, name): an executor cannot overwrite the row of an
     * executor with another TLS key by sending the same name */
    pthread_mutex_lock(&health_mu);
    size_t i = 0, oldest = 0;
    for (; i < n_health && (strcmp(health[i].h.executor, h->executor) ||
                            strncmp(health[i].peer, peer, MT_REMOTE_PEER_ID_LEN));
         i++)
        if (health[i].seen_ms < health[oldest].seen_ms)
            oldest = i;
    if (i == n_health && n_health < HEALTH_MAX)
        n_health++;
    else if (i == n_health)
        i = oldest;
    health[i].h = *h;
    snprintf(health[i].peer, sizeof health[i].peer, "%.*s", MT_REMOTE_PEER_ID_LEN, peer);
    health[i].seen_ms = wall_ms();
    pthread_mutex_unlock(&health_mu);
}

/* A Prometheus label value: \ and " escaped (the reader allowed printable ASCII). */
static void label(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = 0;
}

char *mt_remote_sched_metrics(void)
{
    pthread_mutex_lock(&health_mu);
    if (!health_on) {
        pthread_mutex_unlock(&health_mu);
        return strdup("");
    }
    size_t cap = 2048 + n_health * 2048, n = 0; /* a row: 6 lines, < 1.5 KiB */
    char *b = malloc(cap);
    if (!b) {
        pthread_mutex_unlock(&health_mu);
        return NULL;
    }
#define PUT(...) n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, __VA_ARGS__)
    PUT("# HELP mesatee_executor_leases_expired_total Remote runs whose lease ran out "
        "(executor died or partitioned).\n# TYPE mesatee_executor_leases_expired_total counter\n"
        "mesatee_executor_leases_expired_total %" PRIu64 "\n",
        leases_expired_total);
    PUT("# HELP mesatee_executor_leases_graced_total Executor leases extended once after a "
        "store outage (at most once per lease until its executor renews it).\n"
        "# TYPE mesatee_executor_leases_graced_total counter\n"
        "mesatee_executor_leases_graced_total %" PRIu64 "\n",
        leases_graced_total);
    PUT("# HELP mesatee_executor_reports_fenced_total Reports and renewals refused: their "
        "fencing token is not the task's current lease.\n"
        "# TYPE mesatee_executor_reports_fenced_total counter\n"
        "mesatee_executor_reports_fenced_total %" PRIu64 "\n",
        reports_fenced_total);
    PUT("# HELP mesatee_executor_remote_cancels_total Cancellations passed to executors on "
        "renewal.\n# TYPE mesatee_executor_remote_cancels_total counter\n"
        "mesatee_executor_remote_cancels_total %" PRIu64 "\n",
        remote_cancels_total);
    static const char *const names[] = {"slots", "busy", "tasks_run_total", "tasks_failed_total",
                                        "last_seen_seconds", "error"};
    static const char *const helps[] = {
        "Task slots of the executor (its last claim).",
        "Slots running a task (its last claim).",
        "Tasks the executor ran since it started.",
        "Tasks the executor could not run or report since it started.",
        "Seconds since the executor's last claim.",
        "1 when the executor reported a last error (label error)."};
    static const char *const types[] = {"gauge", "gauge", "counter", "counter", "gauge", "gauge"};
    int64_t now = wall_ms();
    for (size_t m = 0; m < 6; m++) {
        PUT("# HELP mesatee_executor_%s %s\n# TYPE mesatee_executor_%s %s\n", names[m],
            helps[m], names[m], types[m]);
        for (size_t i = 0; i < n_health; i++) {
            const mt_rhello *h = &health[i].h;
            if (m == 5) {
                char le[2 * MT_RHELLO_ERROR_MAX + 1];
                label(le, sizeof le, h->last_error);
                PUT("mesatee_executor_error{executor=\"%s\",peer=\"%s\",error=\"%s\"} %d\n",
                    h->executor, health[i].peer, le, h->last_error[0] != 0);
                continue;
            }
            uint64_t v = m == 0   ? h->slots
                         : m == 1 ? h->busy
                         : m == 2 ? h->tasks_run
                         : m == 3 ? h->tasks_failed
                                  : (uint64_t)((now - health[i].seen_ms) / 1000);
            PUT("mesatee_executor_%s{executor=\"%s\",peer=\"%s\"} %" PRIu64 "\n", names[m],
                h->executor, health[i].peer, v);
        }
    }
#undef PUT
    pthread_mutex_unlock(&health_mu);
    if (n >= cap) { /* cannot happen with the sizes above; never a cut line */
        free(b);
        return NULL;
    }
    return b;
}

/* ---- the lease row ------------------------------------------------------ */

typedef struct {
    bool found;
    bool running;
    bool cancel;
    int64_t fence, expired, until;
    int64_t attempt; /* tasks.run_attempt: the claim the lease belongs to */
    bool remote; /* under an executor lease: core_internal.h SQL_REMOTE_LEASE */
    char nonce[LEASE_NONCE_HEX + 1]; /* the lease's claim nonce, "" without a MAC */
} lease_row;

/* A fresh claim nonce: LEASE_NONCE_BYTES from the CSPRNG, lowercase hex. */
static mt_status lease_nonce_new(char out[LEASE_NONCE_HEX + 1], mt_err *err)
{
    uint8_t rnd[LEASE_NONCE_BYTES];
    mt_status rc = mt_random(rnd, sizeof rnd, err);
    if (!rc)
        mt_hex_encode(rnd, sizeof rnd, out);
    mt_wipe(rnd, sizeof rnd);
    return rc;
}

/* Splits a stored v3 lease_mac into its nonce and MAC: false unless it is
 * exactly LEASE_MAC_STORED_LEN lowercase hex characters (a host-edited
 * value of any other shape is refused, never cut to fit). */
static bool lease_split(const char *stored, char nonce[LEASE_NONCE_HEX + 1], char mac[65])
{
    if (!stored || strlen(stored) != LEASE_MAC_STORED_LEN ||
        strspn(stored, "0123456789abcdef") != LEASE_MAC_STORED_LEN)
        return false;
    memcpy(nonce, stored, LEASE_NONCE_HEX);
    nonce[LEASE_NONCE_HEX] = 0;
    memcpy(mac, stored + LEASE_NONCE_HEX, 64);
    mac[64] = 0;
    return true;
}

/* The lease MAC (core_internal.h lease_claimed): task, fencing token, expiry
 * count, claim (run_attempt), kind (remote: lease_until > 0) and the claim
 * nonce. The text is as long as the id (a host-edited one is never cut: its
 * MAC simply does not verify). */
static mt_status lease_mac_c(const mt_core *c, const char *task_id, int64_t fence,
                             int64_t expired, int64_t attempt, bool remote, const char *nonce,
                             char mac[65], mt_err *err)
{
    size_t cap = strlen(task_id) + strlen(nonce) + 96;
    char *text = malloc(cap);
    if (!text)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(text, cap, "%s\n%lld\n%lld\n%lld\n%s\n%s", task_id, (long long)fence,
             (long long)expired, (long long)attempt, remote ? "remote" : "local", nonce);
    mt_status rc = integ_mac_text(c->integ_key, LEASE_DOMAIN, text, mac, err);
    free(text);
    return rc;
}

/* *ok: whether stored (tasks.lease_mac) is the nonce and lease MAC of these
 * values; *nonce_out (may be NULL) gets its nonce. An error computing the
 * MAC (memory, the HMAC) is returned as such, never taken for a mismatch:
 * a mismatch marks the row as edited outside mesatee (a claim fails the
 * task for good), an error only fails this operation. */
static mt_status lease_mac_check(const mt_core *c, const char *task_id, int64_t fence,
                                 int64_t expired, int64_t attempt, bool remote,
                                 const char *stored, bool *ok,
                                 char nonce_out[LEASE_NONCE_HEX + 1], mt_err *err)
{
    char nonce[LEASE_NONCE_HEX + 1], got[65], want[65];
    *ok = false;
    if (!lease_split(stored, nonce, got))
        return MT_OK;
    mt_status rc = lease_mac_c(c, task_id, fence, expired, attempt, remote, nonce, want, err);
    if (rc)
        return rc;
    *ok = integ_hex_equal(want, got);
    if (*ok && nonce_out)
        memcpy(nonce_out, nonce, sizeof nonce);
    return MT_OK;
}

/* A fresh nonce and the stored lease_mac (nonce, then MAC) of these values;
 * nonce_out (may be NULL) gets the nonce. */
static mt_status lease_mac_new(const mt_core *c, const char *task_id, int64_t fence,
                               int64_t expired, int64_t attempt, bool remote,
                               char stored[LEASE_MAC_STORED_LEN + 1],
                               char nonce_out[LEASE_NONCE_HEX + 1], mt_err *err)
{
    char nonce[LEASE_NONCE_HEX + 1], mac[65];
    mt_status rc = lease_nonce_new(nonce, err);
    if (!rc)
        rc = lease_mac_c(c, task_id, fence, expired, attempt, remote, nonce, mac, err);
    if (rc)
        return rc;
    snprintf(stored, LEASE_MAC_STORED_LEN + 1, "%s%s", nonce, mac);
    if (nonce_out)
        memcpy(nonce_out, nonce, sizeof nonce);
    return MT_OK;
}

/* The v2 lease MAC (no nonce): only the upgrades (v1 -> v2 writes it, v2 ->
 * v3 checks it), byte for byte as the releases before v3 computed it. */
static mt_status lease_mac_v2(const mt_core *c, const char *task_id, int64_t fence,
                              int64_t expired, int64_t attempt, bool remote, char mac[65],
                              mt_err *err)
{
    char text[160];
    snprintf(text, sizeof text, "%s\n%lld\n%lld\n%lld\n%s", task_id, (long long)fence,
             (long long)expired, (long long)attempt, remote ? "remote" : "local");
    return integ_mac_text(c->integ_key, LEASE_DOMAIN_V2, text, mac, err);
}

mt_status lease_claimed(mt_core *c, mt_db *db, const char *task_id, int64_t attempt,
                        int64_t fence, int64_t expired, const char *mac, mt_err *err)
{
    /* no MAC: only the first claim of a row never claimed (a host that
     * deletes the MAC and resets token and count of a claimed row would
     * otherwise have the next remote claim hand out an old token again) */
    bool ok = !mac && attempt == 1 && fence == 0 && expired == 0;
    mt_status rc = MT_OK;
    if (mac && !(rc = lease_mac_check(c, task_id, fence, expired, attempt - 1, true, mac, &ok,
                                      NULL, err)) &&
        !ok)
        rc = lease_mac_check(c, task_id, fence, expired, attempt - 1, false, mac, &ok, NULL, err);
    if (rc)
        return rc; /* the claim's transaction fails; the row is not judged */
    if (!ok) {
        /* never laundered: the row stays refused wherever a lease counts */
        mt_error("store integrity: the lease of task %s does not match its MAC at its claim "
                 "(fencing token, expiry count, claim count, lease kind or claim nonce edited "
                 "outside mesatee, or the MAC deleted); no executor lease is accepted for it",
                 task_id);
        return MT_OK;
    }
    /* a fresh nonce for this claim: a row put back whole to an earlier state
     * (even to before its first claim) gets another one here */
    char now_mac[LEASE_MAC_STORED_LEN + 1], f[24];
    rc = lease_mac_new(c, task_id, fence, expired, attempt, false, now_mac, NULL, err);
    if (rc)
        return rc;
    snprintf(f, sizeof f, "%lld", (long long)fence);
    /* the row was claimed in this transaction (its fence just read): sent
     * with the next statement or the COMMIT (store_run_deferred) */
    return store_run_deferred(db, err,
                              "UPDATE tasks SET lease_mac = ? WHERE task_id = ? AND lease_fence = "
                              "CAST(? AS INTEGER)",
                              now_mac, task_id, f);
}

/* A row lease_mac_upgrade or lease_mac_upgrade_v3 reads (its text columns
 * copied as bytes: a host-edited value need not be UTF-8). */
typedef struct {
    char *id, *old; /* old: NULL where the row has no MAC */
    int64_t fence, expired, attempt;
    bool remote;
    bool running, cancel; /* only lease_mac_upgrade_v3 reads them */
} upgrade_row;

static void upgrade_rows_free(upgrade_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].old);
    }
    free(rows);
}

/* The rows of sql (task_id, lease_fence, lease_expired, run_attempt,
 * lease_until, lease_mac, status, cancel_requested). */
static mt_status upgrade_rows_read(mt_db *db, const char *sql, upgrade_row **out, size_t *n_out,
                                   mt_err *err)
{
    *out = NULL;
    *n_out = 0;
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(db, sql, &st, err);
    if (rc)
        return rc;
    upgrade_row *rows = NULL;
    size_t n = 0, cap = 0;
    while (mt_db_step(st, &rc, err) == MT_DB_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            upgrade_row *nr = realloc(rows, nc * sizeof *nr);
            if (!nr) {
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
                break;
            }
            rows = nr;
            cap = nc;
        }
        upgrade_row *r = &rows[n];
        r->id = strdup(mt_db_col_text(st, 0));
        r->fence = mt_db_col_int64(st, 1);
        r->expired = mt_db_col_int64(st, 2);
        r->attempt = mt_db_col_int64(st, 3);
        r->remote = mt_db_col_int64(st, 4) > 0;
        r->old = mt_db_col_null(st, 5) ? NULL : strdup(mt_db_col_text(st, 5));
        r->running = !strcmp(mt_db_col_text(st, 6), "running");
        r->cancel = mt_db_col_int64(st, 7) != 0;
        if (!r->id || (!r->old && !mt_db_col_null(st, 5))) {
            free(r->id);
            free(r->old);
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    mt_db_finalize(st);
    if (rc) {
        upgrade_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *n_out = n;
    return MT_OK;
}

/* Logs a lease left refused at an upgrade: the id only where it is one (a
 * host-edited one may be any bytes). */
static void upgrade_refused(const char *id)
{
    bool plain = strlen(id) == MT_ID_LEN && strspn(id, "0123456789abcdef") == MT_ID_LEN;
    mt_error("store integrity: the lease of task %s does not match its MAC; left refused at "
             "the upgrade",
             plain ? id : "(an id edited outside mesatee)");
}

mt_status lease_mac_upgrade(void *core, mt_db *db, mt_err *err)
{
    mt_core *c = core;
    /* the v1 MACs, and the claimed rows that may be claimed again (staged or
     * running) without one: before v2 "no MAC" stood for "never leased"
     * (token and count 0), now only for "never claimed" (lease_claimed), so
     * those get the MAC of the state they were accepted in; a row without a
     * MAC whose token or count is not 0 was refused and stays so. The v2
     * MACs written here move on to v3 in the same transaction
     * (lease_mac_upgrade_v3, core.c core_migrate_hook).
     *
     * Whether the store predates v2 is read from its (host-owned) schema
     * version: a host that deletes the version rows from 16 on, and the MAC
     * of a claimed row with its token and count reset, would otherwise have
     * this step MAC that row as "never leased" (its next claim accepted, its
     * expiry count, hence max_attempts, reset). Nothing in the store tells
     * such a row from one a release before v2 left, so, as for rows without
     * integrity MACs (integrity.c integ_seal_legacy), they get their MAC
     * only with the operator's measured consent (--seal-legacy-store);
     * without it the open is refused and the store left as it was. */
    upgrade_row *rows;
    size_t n;
    mt_status rc = upgrade_rows_read(db,
                                     "SELECT task_id, lease_fence, lease_expired, run_attempt, "
                                     "lease_until, lease_mac, status, cancel_requested FROM "
                                     "tasks WHERE lease_mac IS NOT NULL OR (run_attempt > 0 AND "
                                     "lease_fence = 0 AND lease_expired = 0 AND status IN "
                                     "('staged', 'running')) ORDER BY task_id",
                                     &rows, &n, err);
    if (rc)
        return rc;
    size_t done = 0, bad = 0, claimed = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const upgrade_row *r = &rows[i];
        char v2[65];
        if (r->old) {
            /* the migration run again: a v3 MAC (or a v2 one, moved on by
             * the v3 step) is no v1 MAC that does not verify */
            bool later;
            if ((rc = lease_mac_check(c, r->id, r->fence, r->expired, r->attempt, r->remote,
                                      r->old, &later, NULL, err)) ||
                (!later &&
                 (rc = lease_mac_v2(c, r->id, r->fence, r->expired, r->attempt, r->remote, v2,
                                    err))))
                break;
            if (later || integ_hex_equal(v2, r->old))
                continue;
            char text[160], v1[65];
            /* a host-edited id too long for the text fails the MAC below:
             * its row stays refused */
            int tl = snprintf(text, sizeof text, "%s\n%lld\n%lld", r->id, (long long)r->fence,
                              (long long)r->expired);
            if (tl < 0 || (size_t)tl >= sizeof text) {
                v1[0] = 0;
            } else if ((rc = integ_mac_text(c->integ_key, LEASE_DOMAIN_V1, text, v1, err))) {
                break;
            }
            if (!v1[0] || !integ_hex_equal(v1, r->old)) {
                bad++; /* stays refused: "integrity check failed: lease" */
                upgrade_refused(r->id);
                continue;
            }
            done++;
        } else if (!c->seal_legacy_store) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "the store has claimed tasks without a lease MAC (schema version "
                            "below 16: written by a mesatee from before lease MAC v2, or the "
                            "MACs were removed by someone with access to the database). If "
                            "you are upgrading, start once with --seal-legacy-store to trust "
                            "their leases as they are now (the flag is part of the measured "
                            "configuration)");
            break;
        } else {
            claimed++;
        }
        if (!(rc = lease_mac_v2(c, r->id, r->fence, r->expired, r->attempt, r->remote, v2, err)))
            rc = store_run(db, err, NULL,
                           "UPDATE tasks SET lease_mac = ? WHERE task_id = ?", v2, r->id);
    }
    upgrade_rows_free(rows, n);
    if (!rc && (done || bad || claimed))
        mt_info("store: %zu executor lease MAC(s) moved to mesatee-task-lease/v2 (%zu "
                "refused), %zu claimed task(s) without a lease given their lease MAC",
                done, bad, claimed);
    return rc;
}

/* One remote lease in flight at the v3 upgrade (r->running, r->remote): its
 * executor holds a secret derived without a nonce, which no v3 check
 * accepts. Requeued as a lease expiry would be (remote_sched.c expire_one:
 * staged, its place in the queue kept, outcome cleared and re-sealed,
 * lease_until 0), but not counted as an expiry (the executor did nothing
 * wrong), or canceled when its cancellation was asked (as sched.c
 * sched_requeue_running); the row gets the v3 MAC of its new state under a
 * fresh nonce, and the audit entry. Inside the migration's transaction.
 * Outputs its executor staged under the old fence are not dropped here
 * (best-effort removals outside a transaction that may still roll back;
 * the migration has no remote scheduler to call uploads_drop): staged for a
 * fence that is no running task's lease, they go with the object sweep of
 * the same start (core.c, after the migration: untrusted_objects_sweep) and,
 * with --objects db, the remote scheduler's sweeps of staged uploads. */
static mt_status upgrade_requeue(mt_core *c, mt_db *db, const upgrade_row *r, mt_err *err)
{
    static const char cancel_reason[] = "canceled while running"; /* as sched.c */
    char now[24], obj[8 + MT_ID_LEN + 1], rmac[65], lmac[LEASE_MAC_STORED_LEN + 1];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    snprintf(obj, sizeof obj, "task:%s", r->id);
    /* canceled: the kind as it is (lease_until kept); requeued: a local
     * state (lease_until 0), as expire_one leaves it */
    mt_status rc = lease_mac_new(c, r->id, r->fence, r->expired, r->attempt, r->cancel, lmac,
                                 NULL, err);
    if (rc)
        return rc;
    if (r->cancel) {
        if ((rc = integ_task_result_mac(c, r->id, NULL, cancel_reason, NULL, rmac, err)) ||
            (rc = audit_append(c, db, "scheduler", "task canceled", obj, 0, err)))
            return rc;
        return store_run(db, err, NULL,
                         "UPDATE tasks SET status = 'canceled', failure_reason = ?, result = "
                         "NULL, log = NULL, result_mac = ?, lease_mac = ?, updated_at = CAST(? AS "
                         "INTEGER) WHERE task_id = ?",
                         cancel_reason, rmac, lmac, now, r->id);
    }
    if ((rc = integ_task_result_mac(c, r->id, NULL, NULL, NULL, rmac, err)) ||
        (rc = audit_append(c, db, "scheduler", "task requeued (upgrade)", obj, 0, err)))
        return rc;
    return store_run(db, err, NULL,
                     "UPDATE tasks SET status = 'staged', result = NULL, failure_reason = NULL, "
                     "log = NULL, cpu_ms = 0, peak_rss_kb = 0, wall_ms = 0, bytes_in = 0, "
                     "bytes_out = 0, fuel_used = 0, key_signs = 0, result_mac = ?, lease_until = "
                     "0, lease_graced = 0, lease_mac = ?, updated_at = CAST(? AS INTEGER) WHERE "
                     "task_id = ?",
                     rmac, lmac, now, r->id);
}

mt_status lease_mac_upgrade_v3(void *core, mt_db *db, mt_err *err)
{
    mt_core *c = core;
    upgrade_row *rows;
    size_t n;
    mt_status rc = upgrade_rows_read(db,
                                     "SELECT task_id, lease_fence, lease_expired, run_attempt, "
                                     "lease_until, lease_mac, status, cancel_requested FROM "
                                     "tasks WHERE lease_mac IS NOT NULL ORDER BY task_id",
                                     &rows, &n, err);
    if (rc)
        return rc;
    size_t done = 0, bad = 0, requeued = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const upgrade_row *r = &rows[i];
        /* already v3 (the migration run again): nothing to do */
        bool v3;
        if ((rc = lease_mac_check(c, r->id, r->fence, r->expired, r->attempt, r->remote, r->old,
                                  &v3, NULL, err)))
            break;
        if (v3)
            continue;
        char v2[65];
        if ((rc = lease_mac_v2(c, r->id, r->fence, r->expired, r->attempt, r->remote, v2, err)))
            break;
        if (!integ_hex_equal(v2, r->old)) {
            bad++; /* stays refused: "integrity check failed: lease" */
            upgrade_refused(r->id);
            continue;
        }
        done++;
        if (r->running && r->fence > 0 && r->remote) { /* SQL_REMOTE_LEASE */
            if ((rc = upgrade_requeue(c, db, r, err)))
                break;
            requeued++;
            continue;
        }
        char now_mac[LEASE_MAC_STORED_LEN + 1];
        if (!(rc = lease_mac_new(c, r->id, r->fence, r->expired, r->attempt, r->remote, now_mac,
                                 NULL, err)))
            rc = store_run(db, err, NULL, "UPDATE tasks SET lease_mac = ? WHERE task_id = ?",
                           now_mac, r->id);
    }
    upgrade_rows_free(rows, n);
    if (!rc && (done || bad))
        mt_info("store: %zu executor lease MAC(s) moved to mesatee-task-lease/v3 (%zu refused); "
                "%zu remote lease(s) in flight requeued or canceled (their executors' secrets "
                "had no claim nonce)",
                done, bad, requeued);
    return rc;
}

/* The lease secret of a lease: HMAC(TEE key, task id, fencing token, claim
 * (tasks.run_attempt), the lease's claim nonce). Sent to the executor with
 * the job, never stored: a renewal or report must present it (besides the
 * token), so an executor that lost the lease cannot forge the next one's
 * (token + 1) without the key. Unique per lease, whatever the host does to
 * the row: the nonce is drawn afresh (CSPRNG) by every grant and bound by
 * the lease MAC, so even a row put back whole to its state before its
 * first claim gives its next claim a secret no earlier holder has
 * (docs/threat-model.md "Executor leases"). */
static mt_status lease_secret(mt_remote_sched *rs, const char *task_id, int64_t fence,
                              int64_t attempt, const char *nonce, char out[65], mt_err *err)
{
    char text[MT_ID_LEN + LEASE_NONCE_HEX + 64];
    int tl = snprintf(text, sizeof text, "%s\n%lld\n%lld\n%s", task_id, (long long)fence,
                      (long long)attempt, nonce);
    if (tl < 0 || (size_t)tl >= sizeof text || strlen(nonce) != LEASE_NONCE_HEX)
        return mt_err_set(err, MT_EINVAL, "no lease secret for this task");
    return integ_mac_text(rs->core->integ_key, LEASE_SECRET_DOMAIN, text, out, err);
}

/* True when given (may be NULL) is the secret of the task's lease l (its
 * token, claim and nonce; constant-time comparison). */
static bool lease_secret_ok(mt_remote_sched *rs, const char *task_id, const lease_row *l,
                            const char *given)
{
    char want[65];
    mt_err e;
    bool ok = given && !lease_secret(rs, task_id, l->fence, l->attempt, l->nonce, want, &e) &&
              integ_hex_equal(want, given);
    mt_wipe(want, sizeof want);
    return ok;
}

/* Reads the task's lease and verifies its MAC (only a row never claimed has
 * none: then fence, count and claim count must be 0; every claim MACs the
 * row, core_internal.h lease_claimed). "integrity check failed: lease" when the
 * row was edited outside mesatee (a rolled-back fence would let an old holder
 * in). */
static mt_status lease_load(mt_remote_sched *rs, const char *task_id, lease_row *l, mt_err *err)
{
    memset(l, 0, sizeof *l);
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(rs->db,
                                 "SELECT status, cancel_requested, lease_fence, lease_expired, "
                                 "lease_until, lease_mac, run_attempt FROM tasks WHERE "
                                 "task_id = ?",
                                 &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, task_id);
    int s = mt_db_step(st, &rc, err);
    /* one more: a longer stored value stays too long */
    char stored[LEASE_MAC_STORED_LEN + 2] = "";
    bool has_mac = false;
    if (s == MT_DB_ROW) {
        l->found = true;
        l->running = !strcmp(mt_db_col_text(st, 0), "running");
        l->cancel = mt_db_col_int64(st, 1) != 0;
        l->fence = mt_db_col_int64(st, 2);
        l->expired = mt_db_col_int64(st, 3);
        l->until = mt_db_col_int64(st, 4);
        has_mac = !mt_db_col_null(st, 5);
        snprintf(stored, sizeof stored, "%s", mt_db_col_text(st, 5));
        l->attempt = mt_db_col_int64(st, 6);
    }
    mt_db_finalize(st);
    if (rc || !l->found)
        return rc;
    l->remote = l->running && l->fence > 0 && l->until > 0;
    bool ok = !has_mac && l->fence == 0 && l->expired == 0 && l->attempt == 0;
    /* the kind as the row says (a local run made to look like a lease by
     * setting lease_until fails here); an error is no verdict on the row */
    if (has_mac && (rc = lease_mac_check(rs->core, task_id, l->fence, l->expired, l->attempt,
                                         l->until > 0, stored, &ok, l->nonce, err)))
        return rc;
    if (!ok) {
        mt_error("store integrity: the lease of task %s does not match its MAC (fencing token, "
                 "expiry count, claim count, lease kind or claim nonce edited outside mesatee)",
                 task_id);
        return integ_fail(err, "lease");
    }
    return MT_OK;
}

/* Stores fence, count, until and their MAC (inside the caller's transaction)
 * for the claim `attempt` (the row's run_attempt, which this does not
 * change); the kind is until > 0. Every call draws a fresh claim nonce
 * (nonce_out, may be NULL: the new lease's), so whatever lease the row held
 * before, its secret no longer verifies. */
static mt_status lease_store(mt_remote_sched *rs, const char *task_id, int64_t fence,
                             int64_t expired, int64_t until, int64_t attempt,
                             char nonce_out[LEASE_NONCE_HEX + 1], mt_err *err)
{
    char mac[LEASE_MAC_STORED_LEN + 1], f[24], e[24], u[24];
    mt_status rc =
        lease_mac_new(rs->core, task_id, fence, expired, attempt, until > 0, mac, nonce_out, err);
    if (rc)
        return rc;
    snprintf(f, sizeof f, "%lld", (long long)fence);
    snprintf(e, sizeof e, "%lld", (long long)expired);
    snprintf(u, sizeof u, "%lld", (long long)until);
    return store_run(rs->db, err, NULL,
                     "UPDATE tasks SET lease_fence = CAST(? AS INTEGER), lease_expired = "
                     "CAST(? AS INTEGER), lease_until = CAST(? AS INTEGER), lease_mac = ?, "
                     "lease_graced = 0 WHERE task_id = ?",
                     f, e, u, mac, task_id);
}

/* The claim's new lease (sched_claim_hook): the next fencing token and a
 * fresh claim nonce, inside the claim's transaction, so the task never runs
 * under the token of an expired lease (whose holder's late report would
 * then pass the guard). */
typedef struct {
    mt_remote_sched *rs;
    int64_t fence;
    int64_t attempt; /* the claim (tasks.run_attempt): the lease secret binds it */
    char nonce[LEASE_NONCE_HEX + 1]; /* the lease's claim nonce: so does the secret */
} grant_ctx;

static mt_status lease_grant(void *ctx, mt_db *db, const char *task_id, mt_err *err)
{
    grant_ctx *g = ctx;
    mt_remote_sched *rs = g->rs;
    (void)db; /* rs->db: the claim's connection */
    lease_row l;
    mt_status rc = lease_load(rs, task_id, &l, err);
    if (!rc) {
        if (!l.found || !l.running)
            rc = mt_err_set(err, MT_ECONFLICT, "task %s is not running", task_id);
        else if (l.fence >= MT_RLEASE_FENCE_MAX)
            rc = mt_err_set(err, MT_ECONFLICT, "task %s: no fencing token left", task_id);
    }
    if (!rc) {
        g->fence = l.fence + 1;
        g->attempt = l.attempt;
        rc = lease_store(rs, task_id, g->fence, l.expired, wall_ms() + rs->lease_ms, l.attempt,
                         g->nonce, err);
    }
    return rc;
}

mt_status mt_remote_sched_new(mt_core *core, mt_remote_sched **out, mt_err *err)
{
    *out = NULL;
    if (!core)
        return mt_err_set(err, MT_EINVAL, "no core");
    if (core->sched)
        return mt_err_set(err, MT_EINVAL, "the local scheduler is running");
    mt_remote_sched *rs = calloc(1, sizeof *rs);
    if (!rs)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    rs->core = core;
    rs->lease_ms = MT_REMOTE_LEASE_MS_DEFAULT;
    rs->max_attempts = MT_REMOTE_MAX_ATTEMPTS_DEFAULT;
    int64_t since;
    mt_db_outages(&rs->outages_seen, &since);
    mt_status rc = store_open_grouped(core->db_path, &rs->db, err);
    if (rc) {
        free(rs);
        return rc;
    }
    atomic_store(&core->sched_running, true);
    atomic_store(&core->ran_tasks, true);
    pthread_mutex_lock(&health_mu);
    health_on = true;
    pthread_mutex_unlock(&health_mu);
    *out = rs;
    return MT_OK;
}

mt_status mt_remote_sched_set_leases(mt_remote_sched *rs, uint32_t lease_ms,
                                     uint32_t max_attempts, mt_err *err)
{
    if (lease_ms < MT_RLEASE_MS_MIN || lease_ms > MT_RLEASE_MS_MAX)
        return mt_err_set(err, MT_EINVAL, "the executor lease must be %d..%d ms",
                          MT_RLEASE_MS_MIN, MT_RLEASE_MS_MAX);
    if (max_attempts < 1 || max_attempts > 1000)
        return mt_err_set(err, MT_EINVAL, "the executor attempts must be 1..1000");
    rs->lease_ms = lease_ms;
    rs->max_attempts = max_attempts;
    return MT_OK;
}

void mt_remote_sched_free(mt_remote_sched *rs)
{
    if (!rs)
        return;
    atomic_store(&rs->core->sched_running, false);
    store_close(rs->db);
    free(rs);
}

/* {"ciphertext": b64 of path | "url": url, "key": hex} into o, plus
 * "<extra_name>": extra when extra is non-empty (an input's "sha256", an
 * output's "file_id", the module's "plain_sha256"). */
static mt_status slot_json(json_t *o, const char *path, const char *url, const uint8_t key[32],
                           const char *extra_name, const char *extra, mt_err *err)
{
    char hex[65];
    mt_hex_encode(key, 32, hex);
    int e = json_object_set_new(o, "key", json_string(hex));
    mt_wipe(hex, sizeof hex);
    if (extra && *extra)
        e |= json_object_set_new(o, extra_name, json_string(extra));
    if (path) {
        /* the executor fetches the bytes raw (mt_remote_sched_xfer) */
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return mt_err_set(err, MT_EIO, "a ciphertext object of the task is missing");
        e |= json_object_set_new(o, "stream", json_true());
        e |= json_object_set_new(o, "size", json_integer((json_int_t)sb.st_size));
    } else if (url) {
        e |= json_object_set_new(o, "url", json_string(url));
    }
    return e ? mt_err_set(err, MT_ENOMEM, "out of memory") : MT_OK;
}

static mt_status job_json(const mt_job *job, json_t **out, mt_err *err)
{
    mt_status rc = MT_OK;
    json_t *j = json_pack("{s:s, s:s, s:s, s:O, s:{s:I, s:I, s:I}, s:[], s:[]}", "task_id",
                          job->task_id, "executor_type", job->executor_type, "function",
                          job->function, "arguments", job->arguments, "limits", "mem_bytes",
                          (json_int_t)job->limits.mem_bytes, "cpu_seconds",
                          (json_int_t)job->limits.cpu_seconds, "wall_ms",
                          (json_int_t)job->limits.wall_ms, "inputs", "outputs");
    if (!j)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (job->module) {
        json_t *m = json_object();
        if (!m || json_object_set_new(j, "module", m))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = slot_json(m, job->module->path, NULL, job->module->key, "plain_sha256",
                           job->module->plain_sha256, err);
    } else if (json_object_set_new(j, "module", json_null())) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !rc && i < job->n_inputs; i++) {
        json_t *o = json_pack("{s:s}", "slot", job->inputs[i].slot);
        if (!o || json_array_append_new(json_object_get(j, "inputs"), o))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = slot_json(o, job->inputs[i].path, job->inputs[i].url, job->inputs[i].key,
                           "sha256", job->inputs[i].sha256, err);
    }
    if (!rc && job->n_keys) { /* KeyStore keys, like file keys (docs/keystore.md, "Keys in tasks") */
        json_t *k = mt_job_keys_json(job->keys, job->n_keys);
        if (!k || json_object_set_new(j, "keys", k))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !rc && i < job->n_outputs; i++) {
        json_t *o = json_pack("{s:s}", "slot", job->outputs[i].slot);
        if (!o || json_array_append_new(json_object_get(j, "outputs"), o))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = slot_json(o, NULL, NULL, job->outputs[i].key, "file_id",
                           job->outputs[i].file_id, err);
    }
    if (rc) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return MT_OK;
}

/* The task's slot -> file mapping (and its module's payload object) from
 * a verified read of its binding (integ_task_verify_row): every transfer,
 * upload and report takes the file an output goes to, or an input or the
 * module comes from, from here, never from a further read of task_files or
 * functions (the host could answer that read with another file: another
 * task's unwritten output, any object; docs/threat-model.md "Verified
 * values only"). The report may reach another node than the one that built
 * the job (executor failover), so each path verifies itself. */
static mt_status verified_row(mt_remote_sched *rs, const char *task_id, integ_task_row *row,
                              mt_err *err)
{
    return integ_task_verify_row(rs->core, rs->db, task_id, row, err);
}

/* The object a transfer of x's slot (output or input; "": the module)
 * reads or writes, from the verified binding: *object, and the local path
 * of that object (an input's or the module's: a file holding it; an
 * output's: where it is produced). */
static mt_status xfer_object(mt_remote_sched *rs, const mt_rxfer *x, bool output,
                             char object[MT_ID_LEN + 1], char path[4096], mt_err *err)
{
    integ_task_row row;
    mt_status rc = verified_row(rs, x->task_id, &row, err);
    if (rc)
        return rc;
    char id[MT_ID_LEN + 1] = "";
    const char *v =
        !x->slot[0]
            ? row.payload_object
            : json_string_value(json_object_get(
                  json_object_get(row.assignments, output ? "outputs" : "inputs"), x->slot));
    if (v && strlen(v) < sizeof id)
        snprintf(id, sizeof id, "%s", v);
    if (!id[0] || !x->slot[0]) {
        integ_task_row_free(&row);
        if (!id[0])
            return mt_err_set(err, MT_ENOTFOUND, "the task has no such %s slot",
                              output       ? "output"
                              : x->slot[0] ? "input"
                                           : "module");
        snprintf(object, MT_ID_LEN + 1, "%s", id);
        return untrusted_objects_read_path(rs->core, id, path, 4096, err);
    }
    /* the file row, verified by its MAC, that MAC the one the binding
     * covered; an output already written is refused before any byte of an
     * upload is taken (sched_bound_file) */
    core_file f;
    rc = sched_bound_file(rs->core, rs->db, &row, id, output, &f, err);
    integ_task_row_free(&row);
    if (rc)
        return rc;
    snprintf(object, MT_ID_LEN + 1, "%s", f.object_id);
    mt_wipe(&f, sizeof f);
    if (!object[0])
        return mt_err_set(err, MT_ENOTFOUND, "this slot's file has no local object");
    return output ? untrusted_objects_write_path(rs->core, object, path, 4096, err)
                  : untrusted_objects_read_path(rs->core, object, path, 4096, err);
}

/* The staging name of an uploaded output: <object>.up-<fence>. */
static void upload_name(const char *object, uint64_t fence, char out[4096 + 32])
{
    snprintf(out, 4096 + 32, "%s.up-%llu", object, (unsigned long long)fence);
}

/* mt_remote_sched_xfer, handing out the object it resolved. */
static mt_status xfer_resolve(mt_remote_sched *rs, const mt_rxfer *x, bool output,
                              char path[4096 + 32], char object[MT_ID_LEN + 1], mt_err *err)
{
    lease_row l;
    mt_status rc = lease_load(rs, x->task_id, &l, err);
    if (rc)
        return rc;
    if (!l.found || !l.running)
        return mt_err_set(err, MT_ECONFLICT, "the task is not running");
    if (!l.remote || (int64_t)x->fence != l.fence ||
        !lease_secret_ok(rs, x->task_id, &l, x->secret)) {
        count(&reports_fenced_total);
        return mt_err_set(err, MT_ECONFLICT, "lease lost: not the task's current lease");
    }
    if (output && !x->slot[0])
        return mt_err_set(err, MT_EINVAL, "an output transfer names a slot");
    char obj[4096];
    if ((rc = xfer_object(rs, x, output, object, obj, err)))
        return rc;
    if (output)
        upload_name(obj, x->fence, path);
    else
        snprintf(path, 4096 + 32, "%s", obj);
    return MT_OK;
}

mt_status mt_remote_sched_xfer(mt_remote_sched *rs, const mt_rxfer *x, bool output,
                               char path[4096 + 32], mt_err *err)
{
    char object[MT_ID_LEN + 1];
    return xfer_resolve(rs, x, output, path, object, err);
}

mt_status mt_remote_sched_upload_begin(mt_remote_sched *rs, const mt_rxfer *x, uint64_t size,
                                       untrusted_upload **out, mt_err *err)
{
    *out = NULL;
    char path[4096 + 32], object[MT_ID_LEN + 1];
    /* the lease, and the slot's file from the verified binding (one check) */
    mt_status rc = xfer_resolve(rs, x, true, path, object, err);
    if (rc)
        return rc;
    return untrusted_objects_upload_begin(rs->core, x->task_id, (int64_t)x->fence, object, size,
                                          MT_RXFER_MAX_BYTES, out, err);
}

mt_status mt_remote_sched_upload_write(untrusted_upload *u, const uint8_t *data, size_t len,
                                       mt_err *err)
{
    return untrusted_objects_upload_write(u, data, len, err);
}

mt_status mt_remote_sched_upload_commit(untrusted_upload *u, char sha256_hex[65], mt_err *err)
{
    return untrusted_objects_upload_commit(u, sha256_hex, err);
}

void mt_remote_sched_upload_free(untrusted_upload *u)
{
    untrusted_objects_upload_free(u);
}

mt_status mt_remote_sched_upload_recheck(mt_remote_sched *rs, const mt_rxfer *x, mt_err *err)
{
    lease_row l;
    mt_status rc = lease_load(rs, x->task_id, &l, err);
    if (rc)
        return rc;
    if (!l.remote || (int64_t)x->fence != l.fence ||
        !lease_secret_ok(rs, x->task_id, &l, x->secret)) {
        count(&reports_fenced_total);
        return mt_err_set(err, MT_ECONFLICT, "lease lost: not the task's current lease");
    }
    return MT_OK;
}

mt_status mt_remote_sched_claim(mt_remote_sched *rs, json_t **out, mt_err *err)
{
    *out = NULL;
    char task_id[MT_ID_LEN + 1], exec_type[33], builtin[65];
    bool got = false;
    mt_job job;
    memset(&job, 0, sizeof job);
    grant_ctx g = {rs, 0, 0, ""};
    mt_status rc = sched_claim_job(rs->core, rs->db, task_id, &got, &job, exec_type, builtin,
                                   lease_grant, &g, err);
    if (!got)
        return rc;
    int64_t fence = g.fence;
    char secret[65] = "";
    if (!rc)
        rc = lease_secret(rs, task_id, fence, g.attempt, g.nonce, secret, err);
    if (!rc)
        rc = keyuse_audit(rs->core, rs->db, task_id, &job, err);
    if (!rc)
        rc = job_json(&job, out, err);
    if (!rc && json_object_set_new(*out, "lease",
                                   json_pack("{s:I, s:I, s:s}", "fence", (json_int_t)fence,
                                             "ms", (json_int_t)rs->lease_ms, "secret",
                                             secret))) {
        json_decref(*out);
        *out = NULL;
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    mt_wipe(secret, sizeof secret);
    if (!rc) {
        sched_job_free(&job);
        mt_info("task %s handed to a remote executor (%s/%s)", task_id, exec_type, builtin);
        return MT_OK;
    }
    if (job.task_id)
        sched_job_free(&job);
    if (core_aspool_refusal(rc, err)) {
        /* the audit spool's gate refused the key-use entries (spooled
         * entries first): not the task's fault, so it is not failed; the
         * lease, which no executor holds, expires and the task is
         * requeued then (expire_one; the expiry counts towards the
         * executor attempts) */
        mt_warn("task %s: its KeyStore key use waits for the audit spool: left to its lease's "
                "expiry",
                task_id);
        return rc;
    }
    char reason[MT_ERR_MSG_MAX + 64];
    snprintf(reason, sizeof reason, "could not prepare the task: %s", err->msg);
    mt_err ferr;
    if (sched_finish(rs->core, rs->db, task_id, NULL, reason, &ferr))
        mt_error("task %s: storing the failure failed: %s", task_id, ferr.msg);
    return rc;
}

/* Writes the reported ciphertext of every output slot of the task to its
 * object and builds r->outputs ({slot: {size, sha256}}). */
/* Reported outputs are first written under a name of their own (the object's
 * path + ".report-<random>"), and renamed over the object only by
 * report_guard, inside the transaction that stores the outcome, after the
 * lease was checked there: a late report never clobbers the objects of the
 * lease holder's committed outcome. */
typedef struct {
    mt_remote_sched *rs;
    const char *task_id;
    uint64_t fence;
    const char *secret; /* the report's lease secret, NULL when absent */
    size_t n;
    char path[MT_JOB_MAX_SLOTS][4096], tmp[MT_JOB_MAX_SLOTS][4096 + 32];
    /* outputs uploaded before the report (untrusted_objects_upload_*) */
    size_t nup;
    char up_obj[MT_JOB_MAX_SLOTS][MT_ID_LEN + 1], up_sha[MT_JOB_MAX_SLOTS][65];
    uint64_t up_size[MT_JOB_MAX_SLOTS];
    bool lease_ok; /* report_guard found the lease current */
    /* the verified output mapping the staged files go to (borrowed), and
     * the outcome report_guard fails when one of them is written meanwhile */
    const json_t *outs;
    mt_job_result *r;
} report_stage;

static mt_status stage_add(report_stage *st, const char *path, mt_err *err)
{
    uint8_t rnd[8];
    char hex[17];
    if (st->n >= MT_JOB_MAX_SLOTS)
        return mt_err_set(err, MT_EINVAL, "too many output slots");
    mt_status rc = mt_random(rnd, sizeof rnd, err);
    if (rc)
        return rc;
    mt_hex_encode(rnd, sizeof rnd, hex);
    snprintf(st->path[st->n], sizeof st->path[0], "%s", path);
    snprintf(st->tmp[st->n], sizeof st->tmp[0], "%s.report-%s", path, hex);
    st->n++;
    return MT_OK;
}

/* Removes the staged files not renamed (a refused or failed report). */
static void stage_discard(report_stage *st)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->tmp[i][0])
            (void)unlink(st->tmp[i]);
    st->n = 0;
    st->nup = 0;
}

/* sched_finish_guarded's guard: the lease is checked again under the write
 * lock of the outcome's transaction (an expiry or a new claim between the
 * first check and here is seen), then the staged outputs become the objects. */
static mt_status report_guard(void *gctx, mt_db *db, mt_err *err)
{
    report_stage *st = gctx;
    lease_row l;
    mt_status rc = lease_load(st->rs, st->task_id, &l, err);
    if (rc)
        return rc;
    if (!l.found || !l.running)
        return mt_err_set(err, MT_ECONFLICT, "task %s is not running", st->task_id);
    /* a local run (a node's scheduler claimed the task after an earlier
     * lease ran out: it keeps that lease's token) is no lease to report on */
    if (!l.remote || (int64_t)st->fence != l.fence ||
        !lease_secret_ok(st->rs, st->task_id, &l, st->secret)) {
        count(&reports_fenced_total);
        return mt_err_set(err, MT_ECONFLICT,
                          "lease lost: the report's fencing token %llu is not the task's "
                          "current lease (%lld); the task was handed to another executor",
                          (unsigned long long)st->fence, (long long)l.fence);
    }
    st->lease_ok = true;
    if ((st->nup || st->n) && st->outs) {
        /* under the outcome's write lock, before any byte moves: an output
         * written meanwhile (a store that assigned it to two tasks) keeps
         * the other task's bytes; this outcome fails (sched_outputs_check
         * in sched_finish refuses it too) and the staged files go */
        size_t n;
        mt_err e;
        mt_err_clear(&e);
        if ((rc = sched_outputs_check(st->rs->core, db, st->outs, &n, &e))) {
            if (rc != MT_EINTERNAL)
                return mt_err_set(err, rc, "%s", e.msg);
            mt_job_result *r = st->r;
            r->ok = false;
            json_decref(r->outputs);
            r->outputs = NULL;
            free(r->failure_reason);
            r->failure_reason = strdup(strstr(e.msg, "integrity check failed: ") == e.msg
                                           ? e.msg
                                           : "integrity check failed: file");
            stage_discard(st);
        }
    }
    for (size_t i = 0; i < st->nup; i++)
        if ((rc = untrusted_objects_upload_publish_in(st->rs->core, db, st->task_id,
                                                      (int64_t)st->fence, st->up_obj[i],
                                                      st->up_size[i], st->up_sha[i], err)))
            return rc;
    for (size_t i = 0; i < st->n; i++) {
        if (rename(st->tmp[i], st->path[i]) != 0)
            return mt_err_set(err, MT_EIO, "storing output %zu of task %s: %s", i, st->task_id,
                              strerror(errno));
        st->tmp[i][0] = '\0';
    }
    if (st->n && (rc = mt_fsync_parent_dir(st->path[0], err)))
        return rc;
    /* the lease ends with this outcome (one UPDATE, in its transaction):
     * the row keeps token, count, claim and kind under a fresh nonce, so a
     * host that sets only the status back to 'running' does not make this
     * holder's secret current again */
    char mac[LEASE_MAC_STORED_LEN + 1];
    if ((rc = lease_mac_new(st->rs->core, st->task_id, l.fence, l.expired, l.attempt,
                            l.until > 0, mac, NULL, err)))
        return rc;
    return store_run(db, err, NULL, "UPDATE tasks SET lease_mac = ? WHERE task_id = ?", mac,
                     st->task_id);
}

/* outs: the output slots' files from the verified binding (row, from
 * verified_row), never task_files read again; each file's row must be the
 * version that binding covered, no file written yet nor bound to two slots
 * (checked before anything is staged). */
static mt_status store_outputs(mt_remote_sched *rs, const char *task_id, const integ_task_row *row,
                               const json_t *outs, json_t *reported, mt_job_result *r,
                               report_stage *st, mt_err *err)
{
    size_t nslots;
    mt_status rc = sched_outputs_check(rs->core, rs->db, outs, &nslots, err);
    if (rc)
        return rc;
    r->outputs = json_object();
    if (!r->outputs)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    const char *slot;
    json_t *fv;
    json_object_foreach((json_t *)outs, slot, fv)
    {
        if (rc)
            break;
        const char *fid = json_string_value(fv);
        if (!fid) {
            rc = integ_fail(err, "binding");
            break;
        }
        json_t *o = json_object_get(reported, slot);
        const char *ct = NULL, *sha = NULL;
        int64_t size = 0;
        bool up = json_is_true(json_object_get(o, "uploaded"));
        if (!json_is_object(o) ||
            (!up && (rc = mt_json_str(o, "ciphertext", SIZE_MAX, &ct, err))) ||
            (rc = mt_json_str(o, "sha256", 64, &sha, err)) ||
            (rc = mt_json_int(o, "size", 0, INT64_MAX, &size, err))) {
            if (!rc)
                rc = mt_err_set(err, MT_EINVAL, "output slot '%s' was not reported", slot);
            break;
        }
        if (up) { /* streamed before the report under this fence (upload_begin) */
            char hex[65];
            uint64_t got = 0;
            core_file f;
            if (st->nup >= MT_JOB_MAX_SLOTS) {
                rc = mt_err_set(err, MT_EINVAL, "too many output slots");
                break;
            }
            if ((rc = sched_bound_file(rs->core, rs->db, row, fid, true, &f, err)))
                break;
            if (!f.object_id[0]) {
                rc = mt_err_set(err, MT_ENOTFOUND, "this slot's file has no local object");
                break;
            }
            if ((rc = untrusted_objects_upload_info(rs->core, task_id, (int64_t)st->fence,
                                                    f.object_id, &got, hex, err))) {
                if (rc == MT_ENOTFOUND)
                    rc = mt_err_set(err, MT_EINVAL,
                                    "an uploaded output is missing (upload it before the report)");
                break;
            }
            snprintf(st->up_obj[st->nup], sizeof st->up_obj[0], "%s", f.object_id);
            memcpy(st->up_sha[st->nup], hex, 65);
            st->up_size[st->nup] = got;
            st->nup++;
            if (got != (uint64_t)size || strcmp(hex, sha) != 0) {
                rc = mt_err_set(err, MT_EINVAL, "output slot '%s': size or sha256 mismatch",
                                slot);
                break;
            }
            if (json_object_set_new(r->outputs, slot,
                                    json_pack("{s:I, s:s}", "size", (json_int_t)size, "sha256",
                                              hex)))
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            continue;
        }
        uint8_t *data = NULL;
        size_t len = 0;
        if ((rc = mt_b64_decode(ct, &data, &len, err)))
            break;
        char hex[65];
        core_sha256_hex(data, len, hex);
        if ((size_t)size != len || strcmp(hex, sha) != 0) {
            free(data);
            rc = mt_err_set(err, MT_EINVAL, "output slot '%s': size or sha256 mismatch", slot);
            break;
        }
        core_file f;
        char path[4096];
        if (!(rc = sched_bound_file(rs->core, rs->db, row, fid, true, &f, err)) &&
            !(rc = untrusted_objects_write_path(rs->core, f.object_id, path, sizeof path, err)) &&
            !(rc = stage_add(st, path, err)))
            rc = mt_file_write_atomic(st->tmp[st->n - 1], data, len, 0600, err);
        free(data);
        if (!rc && json_object_set_new(r->outputs, slot,
                                       json_pack("{s:I, s:s}", "size", (json_int_t)len,
                                                 "sha256", hex)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    return rc;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

mt_status mt_remote_sched_report(mt_remote_sched *rs, const uint8_t *body, size_t len,
                                 mt_err *err)
{
    /* remote_job.h is the one reader of the report (fuzzed: fuzz/remote_report.c) */
    mt_rreport rep;
    mt_status rc = mt_rreport_decode((const char *)body, len, &rep, err);
    if (rc)
        return rc;
    mt_job_result r;
    memset(&r, 0, sizeof r);
    const char *task_id = rep.task_id;
    json_t *outs = rep.outputs;
    r.ok = rep.ok;
    r.canceled = rep.canceled;
    r.cpu_ms = rep.cpu_ms;
    r.peak_rss_kb = rep.peak_rss_kb;
    r.wall_ms = rep.wall_ms;
    r.bytes_in = rep.bytes_in;
    r.bytes_out = rep.bytes_out;
    r.fuel_used = rep.fuel_used;
    r.key_signs = rep.key_signs;
    r.return_value = dup_opt(rep.return_value);
    r.failure_reason = dup_opt(rep.failure_reason);
    r.log = dup_opt(rep.log);
    report_stage *st = NULL;
    integ_task_row vrow; /* the binding verified for a finished outcome */
    memset(&vrow, 0, sizeof vrow);
    const json_t *outmap = NULL; /* its output slots (borrowed from vrow) */
    lease_row l;
    if ((rc = lease_load(rs, task_id, &l, err)))
        goto out;
    if (!l.running) { /* no lease is current (requeued, finished): fenced too */
        count(&reports_fenced_total);
        rc = mt_err_set(err, MT_ECONFLICT, "task %s is not running", task_id);
        goto out;
    }
    if (!l.remote) { /* a node runs it locally (core_internal.h SQL_LOCAL_RUN) */
        count(&reports_fenced_total);
        mt_warn("task %s: refused a report with fencing token %llu: the task is not under an "
                "executor lease (a node runs it itself)",
                task_id, (unsigned long long)rep.fence);
        rc = mt_err_set(err, MT_ECONFLICT,
                        "lease lost: the task is not under an executor lease any more; stop "
                        "the task");
        goto out;
    }
    /* fencing: only the current holder's outcome is stored (a late report
     * from an executor whose lease ran out, the task since handed to
     * another, is refused before any output is written) */
    if (l.fence && (int64_t)rep.fence == l.fence &&
        !lease_secret_ok(rs, task_id, &l, rep.lease_secret)) {
        count(&reports_fenced_total);
        mt_warn("task %s: refused a report with fencing token %llu: not the lease secret of "
                "that claim",
                task_id, (unsigned long long)rep.fence);
        rc = mt_err_set(err, MT_ECONFLICT,
                        "lease lost: the report does not carry the lease secret of fencing "
                        "token %llu",
                        (unsigned long long)rep.fence);
        goto out;
    }
    if (l.fence && (int64_t)rep.fence != l.fence) {
        count(&reports_fenced_total);
        mt_warn("task %s: refused a report with fencing token %llu: the current lease is %lld "
                "(the task was handed to another executor)",
                task_id, (unsigned long long)rep.fence, (long long)l.fence);
        rc = mt_err_set(err, MT_ECONFLICT,
                        "lease lost: the report's fencing token %llu is not the task's current "
                        "lease (%lld); the task was handed to another executor",
                        (unsigned long long)rep.fence, (long long)l.fence);
        goto out;
    }
    if (r.key_signs) {
        /* signatures only where the claim handed out a key: its use is in
         * the audit log (keyuse_audit, before the job left) */
        int64_t uses = 0;
        char obj[8 + MT_ID_LEN];
        snprintf(obj, sizeof obj, "task:%s", task_id);
        if ((rc = store_int(rs->db, err, &uses, NULL,
                            "SELECT count(*) FROM audit WHERE object = ? AND actor = 'scheduler' "
                            "AND action LIKE 'task signs with KeyStore key %'",
                            obj)))
            goto out;
        if (!uses) {
            rc = mt_err_set(err, MT_EINVAL,
                            "report metering: key_signs for a task that was given no KeyStore "
                            "key");
            goto out;
        }
    }
    if (!(st = calloc(1, sizeof *st))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    st->rs = rs;
    st->task_id = task_id;
    st->fence = rep.fence;
    st->secret = rep.lease_secret;
    if (r.ok && !r.canceled) {
        /* which file each output goes to: the binding, verified here (this
         * node may not be the one that built the job) */
        mt_err oerr;
        mt_status vrc = verified_row(rs, task_id, &vrow, &oerr);
        if (vrc && vrc != MT_EINTERNAL) { /* the store is away: the executor retries */
            rc = mt_err_set(err, vrc, "%s", oerr.msg);
            goto out;
        }
        if (!vrc)
            outmap = json_object_get(vrow.assignments, "outputs");
        if (vrc || !outmap || store_outputs(rs, task_id, &vrow, outmap, outs, &r, st, &oerr)) {
            if (!vrc && !outmap)
                integ_fail(&oerr, "binding");
            outmap = NULL;
            stage_discard(st);
            r.ok = false;
            free(r.failure_reason);
            char reason[MT_ERR_MSG_MAX + 64];
            snprintf(reason, sizeof reason, "the executor's outputs were rejected: %s",
                     oerr.msg);
            r.failure_reason = strdup(reason);
        }
    }
    st->outs = outmap;
    st->r = &r;
    rc = sched_finish_guarded(rs->core, rs->db, task_id, &r, NULL, outmap, report_guard, st, err);
    if (rc && st->lease_ok && (st->nup || st->n) && rc != MT_ECONFLICT && rc != MT_EUNAVAIL) {
        /* the lease was current but the outputs could not be stored (a
         * damaged staged upload, a local file gone): the task fails now with
         * the reason, instead of staying 'running' until its lease runs out */
        mt_error("task %s: storing the executor's outputs failed: %s", task_id, err->msg);
        char reason[160];
        snprintf(reason, sizeof reason,
                 "the executor's outputs could not be stored (%s; see the server log)",
                 mt_status_name(rc));
        stage_discard(st);
        st->lease_ok = false;
        r.ok = false;
        r.canceled = false;
        json_decref(r.outputs);
        r.outputs = NULL;
        free(r.failure_reason);
        r.failure_reason = strdup(reason);
        rc = sched_finish_guarded(rs->core, rs->db, task_id, &r, NULL, NULL, report_guard, st, err);
    }
    /* the outcome is stored: uploads of this lease not moved over an object
     * (a failed or canceled outcome, outputs the report did not name) go */
    if (!rc && rep.fence)
        uploads_drop(rs, task_id, (int64_t)rep.fence, outmap);
out:
    if (st) {
        stage_discard(st);
        free(st);
    }
    integ_task_row_free(&vrow);
    mt_job_result_clear(&r);
    mt_rreport_free(&rep);
    return rc;
}

/* ---- renewal, expiry ------------------------------------------------------ */

mt_status mt_remote_sched_renew(mt_remote_sched *rs, const uint8_t *body, size_t len,
                                json_t **answer, mt_err *err)
{
    *answer = NULL;
    mt_rrenew req;
    mt_status rc = mt_rrenew_decode((const char *)body, len, &req, err);
    if (rc)
        return rc;
    if ((rc = store_begin(rs->db, err)))
        return rc;
    lease_row l;
    if ((rc = lease_load(rs, req.task_id, &l, err)))
        goto out;
    if (!l.found || !l.remote || l.fence != (int64_t)req.fence ||
        !lease_secret_ok(rs, req.task_id, &l, req.secret)) {
        count(&reports_fenced_total);
        rc = mt_err_set(err, MT_ECONFLICT,
                        "lease lost: task %s is %s under fencing token %lld, this executor "
                        "holds %llu; stop the task",
                        req.task_id, !l.found ? "unknown" : l.running ? "held" : "no longer running",
                        (long long)l.fence, (unsigned long long)req.fence);
        goto out;
    }
    char u[24];
    snprintf(u, sizeof u, "%lld", (long long)(wall_ms() + rs->lease_ms));
    if ((rc = store_run(rs->db, err, NULL,
                        "UPDATE tasks SET lease_until = CAST(? AS INTEGER), lease_graced = 0 "
                        "WHERE task_id = ?",
                        u, req.task_id)) ||
        (rc = store_commit(rs->db, err)))
        goto out;
    mt_debug("task %s: lease renewed (fencing token %lld)", req.task_id, (long long)l.fence);
    if (l.cancel)
        count(&remote_cancels_total);
    *answer = json_pack("{s:I, s:b}", "lease_ms", (json_int_t)rs->lease_ms, "cancel", l.cancel);
    if (!*answer)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
out:
    store_rollback(rs->db);
    return rc;
}

/* One task whose lease ran out: back to the queue (keeping its place), or
 * canceled when that was asked, or failed after max_attempts leases. */
/* Best effort: removes the outputs uploaded under a lease that can never be
 * current again (its fence expired; fences only grow). */
static void uploads_drop(mt_remote_sched *rs, const char *task_id, int64_t fence,
                         const json_t *outs)
{
    /* which objects: the output slots' files from a verified read of the
     * binding (outs, else verified here: a task whose outcome is not
     * finished still has its outputs unwritten, so its binding holds);
     * when it does not verify, only the store's own rows of (task, fence)
     * go, and the sweep removes staged files no running lease names
     * (untrusted_objects_sweep) */
    mt_err e;
    mt_err_clear(&e);
    integ_task_row row;
    memset(&row, 0, sizeof row);
    if (!outs && verified_row(rs, task_id, &row, &e) == MT_OK)
        outs = json_object_get(row.assignments, "outputs");
    const char *slot;
    json_t *v;
    json_object_foreach((json_t *)outs, slot, v)
    {
        core_file f;
        if (json_string_value(v) &&
            core_file_load(rs->core, rs->db, json_string_value(v), &f, &e) == MT_OK &&
            f.object_id[0])
            untrusted_objects_upload_drop(rs->core, task_id, fence, f.object_id);
    }
    integ_task_row_free(&row);
    if (rs->core->ostore) /* also rows of an upload whose file row is gone */
        untrusted_objects_upload_drop(rs->core, task_id, fence, NULL);
}

static mt_status expire_one(mt_remote_sched *rs, const char *task_id, mt_err *err)
{
    mt_status rc = core_change_begin(rs->core, rs->db, err);
    if (rc)
        return rc;
    lease_row l;
    if ((rc = lease_load(rs, task_id, &l, err)))
        goto out;
    uint64_t outages;
    int64_t since;
    mt_db_outages(&outages, &since);
    if (!l.remote || l.until >= wall_ms() || /* renewed, finished or run locally meanwhile */
        outages != rs->outages_seen) { /* the store was away: leases_grace first */
        store_rollback(rs->db);
        return MT_OK;
    }
    count(&leases_expired_total);
    int64_t expired = l.expired + 1;
    if (l.cancel || expired >= (int64_t)rs->max_attempts) {
        /* the outcome is stored by sched_finish (its own transaction), the
         * count first: a crash between them leaves a task that fails again */
        /* its past end is kept: a crash before sched_finish leaves a remote
         * lease that this sweeper fails next round, not a "local run" */
        if ((rc = lease_store(rs, task_id, l.fence, expired, l.until, l.attempt, NULL, err)) ||
            (rc = store_commit(rs->db, err)))
            goto out;
        mt_job_result r;
        memset(&r, 0, sizeof r);
        r.canceled = true;
        char reason[200];
        snprintf(reason, sizeof reason,
                 "the executor's lease expired %lld time(s) (executor died or partitioned); "
                 "no attempt left of %u",
                 (long long)expired, rs->max_attempts);
        mt_warn("task %s: lease (fencing token %lld) expired; %s", task_id, (long long)l.fence,
                l.cancel ? "its cancellation was requested: canceled" : reason);
        uploads_drop(rs, task_id, l.fence, NULL);
        return sched_finish(rs->core, rs->db, task_id, l.cancel ? &r : NULL,
                            l.cancel ? NULL : reason, err);
    }
    char now[24], obj[8 + MT_ID_LEN];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    snprintf(obj, sizeof obj, "task:%s", task_id);
    /* staged_seq is kept: the task runs next; the next claim's token fences
     * the old holder off */
    char rmac[65]; /* the empty outcome's MAC, written with it */
    if ((rc = integ_task_result_mac(rs->core, task_id, NULL, NULL, NULL, rmac, err)) ||
        (rc = audit_append(rs->core, rs->db, "scheduler", "task requeued (lease expired)", obj,
                           0, err)) ||
        (rc = store_run(rs->db, err, NULL,
                        "UPDATE tasks SET status = 'staged', result = NULL, failure_reason = "
                        "NULL, log = NULL, cpu_ms = 0, peak_rss_kb = 0, wall_ms = 0, bytes_in = "
                        "0, bytes_out = 0, fuel_used = 0, key_signs = 0, result_mac = ?, "
                        "updated_at = CAST(? AS INTEGER) WHERE task_id = ? AND status = 'running'",
                        rmac, now, task_id)) ||
        (rc = lease_store(rs, task_id, l.fence, expired, 0, l.attempt, NULL, err)) ||
        (rc = store_commit(rs->db, err)))
        goto out;
    mt_warn("task %s: the executor's lease (fencing token %lld) expired (executor died or "
            "partitioned); back in the queue, attempt %lld of %u",
            task_id, (long long)l.fence, (long long)expired + 1, rs->max_attempts);
    uploads_drop(rs, task_id, l.fence, NULL);
    core_task_event_id(rs->core, task_id);
    return MT_OK;
out:
    store_rollback(rs->db);
    return rc;
}

static mt_status sweep_expired(mt_remote_sched *rs, mt_err *err);

/* After a store outage this process saw (mt_db_outages): the renewals sent
 * to this node while the store was away were answered 503 and never
 * stored, so every lease that was live when the outage began (until >=
 * its start - lease_ms: the margin covers renewals that failed on another
 * node a little earlier) gets one whole lease from now. An executor that
 * is alive renews within that lease; a dead one's task is requeued one
 * lease after the store is back. Fences are untouched (lease_until is not
 * under the lease MAC: it only decides when, never who).
 *
 * Bounded (tasks.lease_graced): a lease is extended at most once until its
 * holder renews it (or a new claim replaces it). Any successful reconnect
 * ends an outage, so a flapping connection (or several nodes, each seeing
 * the same outage) would otherwise extend a dead executor's lease again and
 * again; now its task is requeued at most one lease after the end of the
 * first outage that found the lease live, however often the store flaps,
 * while a live executor's renewal re-arms its lease for the next outage. */
static mt_status leases_grace(mt_remote_sched *rs, mt_err *err)
{
    uint64_t outages;
    int64_t since;
    mt_db_outages(&outages, &since);
    if (outages == rs->outages_seen)
        return MT_OK;
    int64_t now = wall_ms();
    char until[24], from[24];
    snprintf(until, sizeof until, "%lld", (long long)(now + rs->lease_ms));
    snprintf(from, sizeof from, "%lld", (long long)(since - (int64_t)rs->lease_ms));
    mt_status rc = store_begin(rs->db, err);
    if (rc)
        return rc;
    int n = 0;
    if ((rc = store_run(rs->db, err, &n,
                        "UPDATE tasks SET lease_until = CAST(? AS INTEGER), lease_graced = 1 "
                        "WHERE status = 'running' AND " SQL_REMOTE_LEASE("") " AND "
                        "lease_graced = 0 AND lease_until >= CAST(? AS INTEGER) AND "
                        "lease_until < CAST(? AS INTEGER)",
                        until, from, until)) ||
        (rc = store_commit(rs->db, err))) {
        store_rollback(rs->db);
        return rc;
    }
    rs->outages_seen = outages;
    if (n > 0) {
        pthread_mutex_lock(&health_mu);
        leases_graced_total += (uint64_t)n;
        pthread_mutex_unlock(&health_mu);
    }
    if (n > 0)
        mt_warn("the store was unreachable from %lld ms ago until now: %d executor lease(s) "
                "extended by one lease (%u ms) so that renewals it refused do not expire them "
                "(each lease at most once until its executor renews it)",
                (long long)(now - since), n, rs->lease_ms);
    return MT_OK;
}

mt_status mt_remote_sched_sweep(mt_remote_sched *rs, mt_err *err)
{
    /* one sweeper per cluster at a time (docs/cluster.md "Scheduling across
     * nodes"): a node that does not get the lock leaves this round to the
     * one that has it; SQLite always gets it */
    bool leader = false;
    mt_status lrc = mt_db_try_lock(rs->db, MT_DB_LOCK_LEASE_SWEEP, &leader, err);
    /* every node, leader or not, extends the leases after an outage it saw
     * (the lock's round trip above has reconnected this connection when the
     * store is back); expire_one refuses while an outage is not answered */
    mt_status grc = lrc ? MT_OK : leases_grace(rs, err);
    if (lrc || !leader || grc) {
        if (leader)
            mt_db_unlock(rs->db, MT_DB_LOCK_LEASE_SWEEP);
        return lrc ? lrc : grc;
    }
    mt_status rc = sweep_expired(rs, err);
    /* now and then (every STAGE_SWEEP_ROUNDS rounds): staged uploads of
     * leases no longer current that the paths above missed (an upload that
     * passed its lease check just before the expiry, a deleted task) */
    static _Atomic unsigned rounds;
    if (rs->core->ostore && atomic_fetch_add(&rounds, 1) % STAGE_SWEEP_ROUNDS == 0)
        untrusted_objects_sweep_staged(rs->core, rs->db);
    mt_db_unlock(rs->db, MT_DB_LOCK_LEASE_SWEEP);
    return rc;
}

static mt_status sweep_expired(mt_remote_sched *rs, mt_err *err)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)wall_ms());
    json_t *ids = NULL;
    mt_status rc = store_ids(rs->db,
                             "SELECT task_id FROM tasks WHERE status = 'running' AND "
                             SQL_REMOTE_LEASE("") " AND lease_until < CAST(? AS INTEGER)",
                             now, &ids, err);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        mt_err e;
        mt_err_clear(&e);
        const char *id = json_string_value(v);
        if (expire_one(rs, id, &e) != MT_OK) {
            mt_error("task %s: handling its expired lease failed: %s", id, e.msg);
            if (!rc)
                rc = mt_err_set(err, e.code, "%s", e.msg);
        }
    }
    json_decref(ids);
    return rc;
}
