/* db_writer: the failover client of tests/cluster/failover.sh on mesatee's
 * own database layer (src/store, mt_db.h), as a node's store will run it:
 * one connection opened with a multi-host URL
 * (target_session_attrs=read-write), transactions retried on retryable
 * errors, reconnecting between transactions after the primary dies.
 *
 *   db_writer URL ACKFILE STOPFILE
 *
 * Inserts ids 1, 2, ... into table acked (id), one transaction each
 * (BEGIN IMMEDIATE = BEGIN + the layer's advisory lock; INSERT OR IGNORE, so
 * an attempt whose commit landed but whose answer was lost is not doubled
 * when retried). After each acknowledged commit it appends "ID UNIXTIME"
 * (seconds, 6 decimals) to ACKFILE; a failed attempt is retried with the same
 * id after 50 ms; commits are 10 ms apart. Stops when STOPFILE exists (exit 0), or after 120 s without
 * an acknowledged commit (exit 1). Errors go to stderr with whether they
 * were retryable. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mt_db.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(long ms)
{
    struct timespec ts = {0, ms * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* One attempt to insert id; MT_OK when committed. */
static mt_status attempt(mt_db *db, int64_t id, mt_err *err)
{
    mt_status rc = mt_db_begin(db, MT_DB_TX_IMMEDIATE, err);
    mt_db_stmt *st = NULL;
    if (!rc)
        rc = mt_db_prepare(db, "INSERT OR IGNORE INTO acked (id) VALUES (?)", &st, err);
    if (!rc) {
        mt_db_bind_int64(st, 1, id);
        if (mt_db_step(st, &rc, err) != MT_DB_DONE && !rc)
            rc = mt_err_set(err, MT_EINTERNAL, "INSERT returned a row");
    }
    mt_db_finalize(st);
    if (!rc)
        rc = mt_db_commit(db, err);
    if (rc && mt_db_in_tx(db))
        mt_db_rollback(db);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: db_writer URL ACKFILE STOPFILE\n");
        return 2;
    }
    const char *url = argv[1], *ack = argv[2], *stop = argv[3];
    mt_db *db = NULL;
    mt_err err;
    mt_err_clear(&err);
    int64_t id = 1;
    double last_ok = now_s();
    unsigned failures = 0;
    while (access(stop, F_OK) != 0) {
        if (now_s() - last_ok > 120) {
            fprintf(stderr, "db_writer: no commit for 120 s: %s\n", err.msg);
            mt_db_close(db);
            return 1;
        }
        mt_status rc = MT_OK;
        if (!db)
            rc = mt_db_open(url, 0, &db, &err);
        if (!rc)
            rc = attempt(db, id, &err);
        if (rc) {
            if (failures++ < 3 || failures % 20 == 0)
                fprintf(stderr, "db_writer: id %lld: %s (%s)\n", (long long)id, err.msg,
                        db && mt_db_retryable(db) ? "retryable" : "not retryable");
            /* a connection that failed to open is retried from scratch */
            nap(50);
            continue;
        }
        last_ok = now_s();
        FILE *f = fopen(ack, "a");
        if (!f || fprintf(f, "%lld %.6f\n", (long long)id, last_ok) < 0 || fclose(f) != 0) {
            fprintf(stderr, "db_writer: cannot append to %s\n", ack);
            mt_db_close(db);
            return 2;
        }
        id++;
        nap(10); /* a steady stream, not a CPU hog on a 2-core CI machine */
    }
    mt_db_close(db);
    return 0;
}
