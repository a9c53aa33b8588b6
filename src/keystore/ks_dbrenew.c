/* ks_dbrenew: see mt_dbrenew.h. */
#include "mt_dbrenew.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_log.h"
#include "mt_util.h"

#define RETRY_MAX_S 300u
#define WAIT_SLICE_S 30 /* the clock is looked at again at least this often */

struct mt_dbrenew {
    mt_ks_joined *j;
    char *path;
    pthread_t th;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    bool stop;
    int64_t not_after, due;
    uint64_t renewals, failures;
};

int64_t mt_dbrenew_due(int64_t received, int64_t not_after)
{
    if (not_after <= received)
        return received;
    return received + (not_after - received) * 2 / 3;
}

uint32_t mt_dbrenew_retry_s(unsigned n, int64_t left)
{
    uint64_t s = n >= 9 ? RETRY_MAX_S : (uint64_t)1 << (n ? n : 1);
    if (s > RETRY_MAX_S)
        s = RETRY_MAX_S;
    if (left > 0 && (uint64_t)(left / 2) < s)
        s = (uint64_t)(left / 2);
    return s < 1 ? 1u : (uint32_t)s;
}

/* Waits until the Unix time until or a stop; true when stopped. */
static bool wait_until(mt_dbrenew *r, int64_t until)
{
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        int64_t now = mt_now();
        if (now >= until)
            break;
        int64_t d = until - now < WAIT_SLICE_S ? until - now : WAIT_SLICE_S;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)d;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    bool stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

/* One renewal: the new certificate from the KeyStore node into r->path. */
static mt_status renew_once(mt_dbrenew *r, int64_t *na, mt_err *err)
{
    mt_status rc = mt_ks_join_renew_db_cert(r->j, err);
    char *pem = NULL;
    if (!rc)
        rc = mt_ks_joined_db_cert(r->j, &pem, NULL, NULL, na, err);
    if (!rc)
        rc = mt_file_write_atomic(r->path, pem, strlen(pem), 0600, err);
    free(pem);
    return rc;
}

static void *renew_main(void *p)
{
    mt_dbrenew *r = p;
    unsigned fails = 0;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int64_t due = r->due, na = r->not_after;
        pthread_mutex_unlock(&r->mu);
        if (wait_until(r, due))
            break;
        mt_err e;
        mt_err_clear(&e);
        int64_t new_na = 0, now = mt_now();
        mt_status rc = renew_once(r, &new_na, &e);
        pthread_mutex_lock(&r->mu);
        if (!rc) {
            fails = 0;
            r->renewals++;
            r->not_after = new_na;
            r->due = mt_dbrenew_due(now, new_na);
        } else {
            fails++;
            r->failures++;
            r->due = now + mt_dbrenew_retry_s(fails, na - now);
        }
        int64_t next = r->due;
        pthread_mutex_unlock(&r->mu);
        if (!rc)
            mt_info("joined node: database certificate renewed by %s (%s; valid %lld s more, "
                    "next renewal in %lld s)",
                    mt_ks_joined_url(r->j), r->path, (long long)(new_na - now),
                    (long long)(next - now));
        else
            mt_error("joined node: database certificate renewal at %s failed (%u in a row; %s; "
                     "next try in %lld s): %s",
                     mt_ks_joined_url(r->j), fails,
                     na > now ? "the current certificate is still valid"
                              : "the current certificate HAS EXPIRED: new database connections "
                                "fail",
                     (long long)(next - now), e.msg);
    }
    return NULL;
}

mt_status mt_dbrenew_start(mt_ks_joined *j, const char *cert_path, mt_dbrenew **out,
                           mt_err *err)
{
    *out = NULL;
    char *pem = NULL;
    int64_t na = 0;
    mt_status rc = mt_ks_joined_db_cert(j, &pem, NULL, NULL, &na, err);
    free(pem);
    if (rc)
        return rc == MT_ENOTFOUND ? mt_err_set(err, MT_EINVAL, "no database certificate to renew")
                                  : rc;
    mt_dbrenew *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(cert_path))) {
        free(r);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    r->j = j;
    r->not_after = na;
    r->due = mt_dbrenew_due(mt_now(), na);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->th, NULL, renew_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r->path);
        free(r);
        return mt_err_set(err, MT_EINTERNAL, "cannot start the database certificate renewal");
    }
    mt_info("joined node: the database certificate expires in %lld s; renewal in %lld s",
            (long long)(na - mt_now()), (long long)(r->due - mt_now()));
    *out = r;
    return MT_OK;
}

void mt_dbrenew_stop(mt_dbrenew *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL); /* a renewal in flight ends within the join's I/O timeouts */
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->path);
    free(r);
}

char *mt_dbrenew_metrics(mt_dbrenew *r)
{
    pthread_mutex_lock(&r->mu);
    long long na = (long long)r->not_after, due = (long long)r->due;
    unsigned long long ok = (unsigned long long)r->renewals,
                       bad = (unsigned long long)r->failures;
    pthread_mutex_unlock(&r->mu);
    static const char fmt[] =
        "# HELP mesatee_db_cert_not_after_seconds Expiry (Unix time) of this joined node's "
        "database client certificate.\n"
        "# TYPE mesatee_db_cert_not_after_seconds gauge\n"
        "mesatee_db_cert_not_after_seconds %lld\n"
        "# HELP mesatee_db_cert_renew_due_seconds When (Unix time) the database client "
        "certificate is renewed next (or the next try after a failure).\n"
        "# TYPE mesatee_db_cert_renew_due_seconds gauge\n"
        "mesatee_db_cert_renew_due_seconds %lld\n"
        "# HELP mesatee_db_cert_renewals_total Database client certificates renewed.\n"
        "# TYPE mesatee_db_cert_renewals_total counter\n"
        "mesatee_db_cert_renewals_total %llu\n"
        "# HELP mesatee_db_cert_renewal_failures_total Failed database client certificate "
        "renewals (retried with backoff).\n"
        "# TYPE mesatee_db_cert_renewal_failures_total counter\n"
        "mesatee_db_cert_renewal_failures_total %llu\n";
    size_t cap = sizeof fmt + 4 * 24;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, fmt, na, due, ok, bad);
    return out;
}
