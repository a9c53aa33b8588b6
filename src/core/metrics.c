/* metrics: Prometheus text exposition of the core's gauges: tasks by state,
 * worker metering totals (CPU, bytes, wasm fuel, KeyStore signatures), numbers of users and files. Request counters
 * and latencies are the gateway's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* Sums use total() (a float, never an integer overflow) cast back: SQLite's
 * CAST saturates at INT64_MAX, so a huge claim cannot turn a sum into an
 * error (sum() fails with "integer overflow", which q() read as 0). */
static int64_t q(mt_db *db, const char *sql)
{
    int64_t v = 0;
    store_int(db, NULL, &v, NULL, sql);
    return v;
}

char *metrics_text(mt_db *db)
{
    static const char *const states[] = {"created", "data_assigned", "approved", "staged",
                                         "running", "finished",      "failed",   "canceled"};
    sbuf b = {0};
    sb_printf(&b, "# HELP mesatee_tasks Tasks by state.\n# TYPE mesatee_tasks gauge\n");
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        int64_t v = 0;
        store_int(db, NULL, &v, NULL, "SELECT count(*) FROM tasks WHERE status = ?", states[i]);
        sb_printf(&b, "mesatee_tasks{status=\"%s\"} %lld\n", states[i], (long long)v);
    }
    /* seconds, not milliseconds: Prometheus base units (promtool check metrics) */
    sb_printf(&b,
              "# HELP mesatee_task_cpu_seconds_total CPU seconds used by task workers.\n"
              "# TYPE mesatee_task_cpu_seconds_total counter\n"
              "mesatee_task_cpu_seconds_total %.3f\n",
              (double)q(db, "SELECT CAST(total(cpu_ms) AS INTEGER) FROM tasks") / 1000.0);
    sb_printf(&b,
              "# HELP mesatee_task_bytes_in_total Input bytes read by task workers.\n"
              "# TYPE mesatee_task_bytes_in_total counter\n"
              "mesatee_task_bytes_in_total %lld\n",
              (long long)q(db, "SELECT CAST(total(bytes_in) AS INTEGER) FROM tasks"));
    sb_printf(&b,
              "# HELP mesatee_task_bytes_out_total Output bytes written by task workers.\n"
              "# TYPE mesatee_task_bytes_out_total counter\n"
              "mesatee_task_bytes_out_total %lld\n",
              (long long)q(db, "SELECT CAST(total(bytes_out) AS INTEGER) FROM tasks"));
    sb_printf(&b,
              "# HELP mesatee_task_wasm_fuel_total Fuel (wasm instructions) used by tasks.\n"
              "# TYPE mesatee_task_wasm_fuel_total counter\n"
              "mesatee_task_wasm_fuel_total %lld\n",
              (long long)q(db, "SELECT CAST(total(fuel_used) AS INTEGER) FROM tasks"));
    sb_printf(&b,
              "# HELP mesatee_task_key_signs_total Signatures made by tasks with KeyStore "
              "keys.\n"
              "# TYPE mesatee_task_key_signs_total counter\n"
              "mesatee_task_key_signs_total %lld\n",
              (long long)q(db, "SELECT CAST(total(key_signs) AS INTEGER) FROM tasks"));
    sb_printf(&b,
              "# HELP mesatee_users Registered users.\n# TYPE mesatee_users gauge\n"
              "mesatee_users %lld\n",
              (long long)q(db, "SELECT count(*) FROM users"));
    sb_printf(&b,
              "# HELP mesatee_files Registered files.\n# TYPE mesatee_files gauge\n"
              "mesatee_files %lld\n",
              (long long)q(db, "SELECT count(*) FROM files"));
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *mt_core_metrics(mt_core *core)
{
    if (!core)
        return NULL;
    pthread_mutex_lock(&core->mu);
    char *m = metrics_text(core->db);
    pthread_mutex_unlock(&core->mu);
    char *p = metrics_process_text(core->tee ? mt_tee_level(core->tee) : "none");
    char *sc = sched_metrics_text(core); /* issue 13: scheduler wake-ups, commits */
    if (sc) { /* issue 13/14: the store's commits (what costs an fsync) */
        uint64_t w[2], r[2], gs, gw;
        mt_db_commit_counts(MT_DB_SQLITE, &w[0], &r[0]);
        mt_db_group_sync_counts(&gs, &gw);
        mt_db_commit_counts(MT_DB_PG, &w[1], &r[1]);
        char t[1600];
        int tn = snprintf(t, sizeof t,
                          "# HELP mesatee_store_commits_total Store transactions committed by "
                          "this process (kind write: it wrote, the database flushed its log; "
                          "read: it only read).\n"
                          "# TYPE mesatee_store_commits_total counter\n"
                          "mesatee_store_commits_total{backend=\"sqlite\",kind=\"write\"} %llu\n"
                          "mesatee_store_commits_total{backend=\"sqlite\",kind=\"read\"} %llu\n"
                          "mesatee_store_commits_total{backend=\"postgres\",kind=\"write\"} %llu\n"
                          "mesatee_store_commits_total{backend=\"postgres\",kind=\"read\"} %llu\n"
                          "# HELP mesatee_store_round_trips_total Requests this process sent to "
                          "PostgreSQL and waited for (a statement, a pipeline of several).\n"
                          "# TYPE mesatee_store_round_trips_total counter\n"
                          "mesatee_store_round_trips_total{backend=\"postgres\"} %llu\n"
                          "# HELP mesatee_store_group_syncs_total SQLite WAL fsyncs of the "
                          "group sync (one makes every commit before it durable).\n"
                          "# TYPE mesatee_store_group_syncs_total counter\n"
                          "mesatee_store_group_syncs_total %llu\n"
                          "# HELP mesatee_store_group_sync_waits_total Commits (and syncs "
                          "asked for) that waited for a group sync; waits / syncs is the mean "
                          "group.\n"
                          "# TYPE mesatee_store_group_sync_waits_total counter\n"
                          "mesatee_store_group_sync_waits_total %llu\n",
                          (unsigned long long)w[0], (unsigned long long)r[0],
                          (unsigned long long)w[1], (unsigned long long)r[1],
                          (unsigned long long)mt_db_round_trips(), (unsigned long long)gs,
                          (unsigned long long)gw);
        size_t sl = strlen(sc);
        char *ss = tn > 0 && (size_t)tn < sizeof t ? realloc(sc, sl + (size_t)tn + 1) : NULL;
        if (ss) {
            memcpy(ss + sl, t, (size_t)tn + 1);
            sc = ss;
        }
    }
    char *as = core_aspool_metrics(core); /* the audit spool (audit_spool.c) */
    const char *extra[] = {sc, as};
    for (size_t i = 0; i < 2; i++) {
        if (!p || !extra[i])
            continue;
        size_t pl = strlen(p), sl = strlen(extra[i]);
        char *ps = realloc(p, pl + sl + 1);
        if (ps) {
            memcpy(ps + pl, extra[i], sl + 1);
            p = ps;
        }
    }
    free(sc);
    free(as);
    if (!m || !p) {
        free(m);
        free(p);
        return NULL;
    }
    size_t a = strlen(m), b = strlen(p);
    char *all = realloc(m, a + b + 1);
    if (!all) {
        free(m);
        free(p);
        return NULL;
    }
    memcpy(all + a, p, b + 1);
    free(p);
    return all;
}
