/* mt_dbrenew: a joined node renews its database client certificate
 * (issue 14, docs/cluster.md "Database credentials in the join answer").
 *
 * The KeyStore node issues short-lived certificates (mt_dbcert.h; 24 h by
 * default, --keystore-db-cert-ttl). A thread of the joined node asks for a
 * new one when two thirds of the remaining lifetime seen at receipt have
 * passed (mt_dbrenew_due): a join with fresh evidence for the SAME key
 * (mt_ks_join_renew_db_cert), so db-client.key never changes and the new
 * certificate replaces cert_path atomically (mt_file_write_atomic, 0600).
 * libpq reads sslcert/sslkey at every connection (PQconnectdb and PQreset),
 * so the store URL stays as it is and every new or re-established
 * connection uses the new file; connections already open are not touched
 * (PostgreSQL checks the client certificate at connection start only).
 *
 * A failed renewal is logged (error) and retried with backoff
 * (mt_dbrenew_retry_s: 2 s doubling to 300 s, never past half of the time
 * left before expiry, at least 1 s); an expired certificate is logged
 * (error) at every failed try. /metrics gauges: mt_dbrenew_metrics.
 *
 * Errors: MT_EINVAL (no certificate to renew: j has none), MT_ENOMEM,
 * MT_EINTERNAL (no thread).
 * Ownership: mt_dbrenew_start borrows j (must outlive the renewer);
 * mt_dbrenew_stop(NULL) is a no-op; *metrics heap.
 * Thread-safety: start/stop on one thread; metrics from any thread. */
#ifndef MT_DBRENEW_H
#define MT_DBRENEW_H

#include <stdint.h>

#include "mt_err.h"
#include "mt_ks_join.h"

typedef struct mt_dbrenew mt_dbrenew;

mt_status mt_dbrenew_start(mt_ks_joined *j, const char *cert_path, mt_dbrenew **out,
                           mt_err *err);
void mt_dbrenew_stop(mt_dbrenew *r);
/* Prometheus text (heap, NULL on out of memory):
 *   mesatee_db_cert_not_after_seconds       gauge, notAfter (Unix seconds)
 *   mesatee_db_cert_renew_due_seconds       gauge, next renewal (Unix s)
 *   mesatee_db_cert_renewals_total          counter
 *   mesatee_db_cert_renewal_failures_total  counter */
char *mt_dbrenew_metrics(mt_dbrenew *r);

/* When a certificate received at received (Unix s) that expires at
 * not_after is renewed: received + 2/3 of (not_after - received), never
 * before received. */
int64_t mt_dbrenew_due(int64_t received, int64_t not_after);
/* The wait after the n-th failure in a row (n >= 1) with left seconds to
 * expiry (<= 0: expired): 2^n s capped at 300 s and at left/2, >= 1 s. */
uint32_t mt_dbrenew_retry_s(unsigned n, int64_t left);

#endif
