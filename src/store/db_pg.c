/* db_pg: the PostgreSQL backend of mt_db (mt_db.h), over libpq.
 *
 * Connection: the URL goes to libpq unchanged (PQconnectdbParams expands
 * it), so sslmode/sslrootcert/sslcert, several host:port pairs and
 * target_session_attrs=read-write (follow the primary after a failover) are
 * libpq's. Before it, TCP keepalives and a TCP user timeout are set by
 * default (PG_KEEPALIVE_DEFAULTS; a value the URL sets wins): a server that
 * vanished (partition, power loss) is noticed within ~25 s instead of the
 * kernel's ~2 h 11 min (docs/cluster.md "Partitions and TCP keepalives").
 * Notices are dropped (they would go to stderr).
 *
 * Statements: translated once (db_sql.c), prepared on the server at their
 * first run on a connection under a name kept per connection and per SQL
 * text (our SQL is a bounded set of constants), so a statement core
 * prepares and finalizes on every request is parsed by the server once.
 * After a reconnect (gen changes) the names are prepared again.
 * Parameters: text format with types left to the server to infer (so a
 * text-bound number works where SQLite would coerce it), blobs in binary
 * format. Results: text format (integers parsed, bytea hex decoded).
 *
 * Round trips (docs/cluster.md "Commits per task"): BEGIN (with the
 * writer lock of MT_DB_TX_IMMEDIATE) and the writer lock taken late
 * (mt_db_writer_lock) are not sent on their own: they wait in the
 * connection's pending list and go out with the transaction's next
 * statement in one round trip (libpq pipeline mode for a prepared
 * statement, one multi-command text otherwise), or with COMMIT. The server
 * runs them in order before that statement, so its snapshot (READ
 * COMMITTED: taken per statement) still follows the lock. A transaction
 * that ran nothing commits and rolls back without a round trip. While the
 * BEGIN is still pending nothing of the transaction has reached the server,
 * so a connection found broken then is re-established and the first
 * statement sent again, as a broken BEGIN was before.
 *
 * Errors: built from the SQLSTATE and the constraint/table names libpq
 * reports, never from the primary message or DETAIL (they can quote values),
 * except for class 42 (syntax or access rule: a fault in our own SQL), whose
 * message names only SQL text. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

#include "db_internal.h"

#define BYTEA_OID 17

/* mt_db_round_trips: requests this process sent to a PostgreSQL server and
 * waited for (a command text, a prepared statement, a prepare, a pipeline) */
static _Atomic uint64_t round_trips;

uint64_t mt_db_round_trips(void)
{
    return round_trips;
}

/* MT_DB_TRACE_TRIPS=1 in the environment: every round trip is written to
 * stderr as "mt_db trip: KIND SQL" (KIND: exec, pipe+N with N commands
 * queued before it, prep, commit, ...; SQL: our own constant text, never a
 * parameter), so the statements a request costs can be counted (the
 * benches' per-task lists, docs/cluster.md "Commits per task"). */
static _Atomic int trace_trips = -1;

void dbp_trip(const char *kind, const char *sql)
{
    round_trips++;
    if (trace_trips < 0) {
        const char *e = getenv("MT_DB_TRACE_TRIPS");
        trace_trips = e && *e && strcmp(e, "0");
    }
    if (trace_trips)
        fprintf(stderr, "mt_db trip: %s %.*s\n", kind, 160, sql ? sql : "");
}
#define PG_STMT_CACHE_MAX 4096

typedef struct pg_named {
    uint64_t hash;
    char *sql;
    char name[24];
} pg_named;

typedef struct pg_cache {
    pg_named *e;
    size_t n, cap;
} pg_cache;

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *conn(mt_db *db)
{
    return db->h;
}

static pg_cache *cache_of(mt_db *db);

#define PG_PENDING_MAX 8

/* A command of the open transaction not sent yet (see "Round trips"): a
 * text without parameters, or a prepared statement (mt_db_run_deferred)
 * with copies of its parameters. */
typedef struct pg_item {
    char text[80]; /* "" for a prepared statement */
    char name[24];
    int n;
    char **vals;
    int *lens, *fmts;
} pg_item;

typedef struct pg_pending {
    pg_item it[PG_PENDING_MAX];
    int n;
    int prepared; /* how many of them are prepared statements */
    bool begin;   /* it[0] is the transaction's BEGIN: nothing of it was sent */
    int capture;  /* the index of the prefetch (mt_db_set_prefetch), or -1 */
} pg_pending;

static pg_pending *pending_of(mt_db *db);
/* The connection can be used: up, and not marked broken (a pipeline whose
 * results were left unread: pipeline()). */
static bool conn_ok(mt_db *db);
static void broken_set(mt_db *db, bool broken);

/* The connection string (URL or key=value form) for messages, rebuilt from
 * libpq's own parse (PQconninfoParse) so that every form libpq accepts is
 * covered: "key='value' ..." of the options set, with password and
 * sslpassword shown as ***; a string libpq cannot parse is not shown. */
void dbp_redact(const char *url, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = 0;
    /* a URL whose userinfo holds a raw '/' (user:pa/ss@host) is split by
     * libpq at that '/' (the rest would show as the database name): when the
     * last '@' before the query follows a '/', the whole userinfo is hidden */
    char safe[1024];
    const char *s = strstr(url, "://");
    if (s && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))) {
        s += 3;
        const char *q = strchr(s, '?');
        size_t region = q ? (size_t)(q - s) : strlen(s);
        const char *at = NULL;
        for (size_t i = 0; i < region; i++)
            if (s[i] == '@')
                at = s + i;
        if (at && memchr(s, '/', (size_t)(at - s))) {
            int w = snprintf(safe, sizeof safe, "%.*s***%s", (int)(s - url), url, at);
            if (w < 0 || (size_t)w >= sizeof safe) {
                snprintf(out, cap, "(a connection string too long to show)");
                return;
            }
            url = safe;
        }
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        PQfreemem(perr);
        snprintf(out, cap, "(a connection string libpq cannot parse)");
        return;
    }
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword && n + 1 < cap; o++) {
        if (!o->val)
            continue;
        bool secret = !strcmp(o->keyword, "password") || !strcmp(o->keyword, "sslpassword");
        int w = snprintf(out + n, cap - n, "%s%s='", n ? " " : "", o->keyword);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
        const char *v = secret ? "***" : o->val;
        for (; *v && n + 3 < cap; v++) {
            if (*v == '\'' || *v == '\\')
                out[n++] = '\\';
            out[n++] = *v;
        }
        if (n + 2 > cap)
            break;
        out[n++] = '\'';
        out[n] = 0;
    }
    /* a cut string never ends inside a secret: secrets are only "***" */
    PQconninfoFree(opts);
}

/* The session settings the decoding relies on: hex bytea output, UTF-8
 * text; and READ COMMITTED as the default isolation, which the plain reads
 * before a BEGIN and the transactions' statements rely on (a server or
 * role default of REPEATABLE READ or SERIALIZABLE would change what they
 * see and make writers fail). Run after every (re)connect. */
static bool session_setup(PGconn *c)
{
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, "SET bytea_output = hex; SET client_encoding = 'UTF8'; "
                            "SET default_transaction_isolation = 'read committed'");
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static const char *state_name(const char *s)
{
    static const struct {
        const char *code, *name;
    } names[] = {
        {"23505", "unique violation"},     {"23503", "foreign key violation"},
        {"23502", "not-null violation"},   {"23514", "check violation"},
        {"40001", "serialization failure"}, {"40P01", "deadlock"},
        {"55P03", "lock not available"},   {"25P02", "transaction aborted"},
        {"22P02", "invalid value"},        {"22003", "number out of range"},
        {"57P01", "server shutting down"}, {"57014", "statement canceled"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].code))
            return names[i].name;
    return "error";
}

static bool retryable_state(const char *s)
{
    return !strcmp(s, "40001") || !strcmp(s, "40P01") || !strcmp(s, "55P03") ||
           !strncmp(s, "08", 2) || !strncmp(s, "57P", 3);
}

/* Remembers whether a transaction is open (from the server's status while
 * the connection is up; a broken connection keeps the last known state, so
 * a transaction it broke is still "open" until rolled back). */
static void track_tx(mt_db *db)
{
    if (pending_of(db)->begin) {
        db->in_tx = true; /* begun here, not yet on the server */
        return;
    }
    if (!conn_ok(db))
        return;
    PGTransactionStatusType t = PQtransactionStatus(conn(db));
    db->in_tx = t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* An error from res (may be NULL: the connection failed). */
static mt_status pg_fail(mt_db *db, PGresult *res, const char *what, mt_err *err)
{
    track_tx(db);
    if (PQstatus(conn(db)) == CONNECTION_OK && !conn_ok(db)) /* not the store: ours */
        return db_fail(db, err, MT_EUNAVAIL, true,
                       "database connection reset during %s (its pipeline was left "
                       "unread; retry%s)",
                       what, db->in_tx ? " the transaction" : "");
    if (PQstatus(conn(db)) != CONNECTION_OK) {
        db_outage_begin();
        return db_fail(db, err, MT_EUNAVAIL, true,
                       "database connection lost during %s (retry)", what);
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return db_fail(db, err, MT_EIO, false, "database error during %s", what);
    const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    const char *table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
    const char *col = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    bool retry = retryable_state(state);
    char where[160] = "";
    if (cons)
        snprintf(where, sizeof where, " on constraint %.60s", cons);
    else if (table)
        snprintf(where, sizeof where, " on %.60s%s%.60s", table, col ? "." : "", col ? col : "");
    if (!strncmp(state, "42", 2)) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        return db_fail(db, err, MT_EIO, false, "database error %s during %s: %.120s", state,
                       what, msg ? msg : "");
    }
    return db_fail(db, err, retry ? MT_EUNAVAIL : MT_EIO, retry, "database %s (SQLSTATE %s)%s%s",
                   state_name(state), state, where, retry ? " (retry)" : "");
}

static bool ok_result(PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static void set_changes(mt_db *db, PGresult *r)
{
    const char *n = PQcmdTuples(r);
    if (n && n[0])
        db->changes = strtoll(n, NULL, 10);
}

/* Reconnects (same URL: a multi-host URL finds the read-write host again);
 * prepared names are forgotten. */
static mt_status reconnect(mt_db *db, mt_err *err)
{
    PQreset(conn(db)); /* a fresh connection: out of pipeline mode too */
    broken_set(db, false);
    db->gen++;
    pg_cache *c = cache_of(db);
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].sql);
    c->n = 0;
    db->in_tx = pending_of(db)->begin; /* a pending BEGIN is sent on the new one */
    /* mt_db_outages: a failed reconnect is the store being away; a
     * successful one ends an outage (a broken connection reconnected at
     * once, its statement sent again, refused nothing) */
    if (PQstatus(conn(db)) != CONNECTION_OK || !session_setup(conn(db))) {
        db_outage_begin();
        return db_fail(db, err, MT_EUNAVAIL, true, "database unreachable (retry)");
    }
    db_outage_end();
    return MT_OK;
}

/* Before a transaction or a statement outside one: a connection known to
 * be broken is re-established. */
static mt_status ensure(mt_db *db, mt_err *err)
{
    if (conn_ok(db))
        return MT_OK;
    /* a BEGIN not sent yet can go out on a new connection; a deferred
     * statement cannot (its prepared name died with the old one) */
    if (db->in_tx && !(pending_of(db)->begin && !pending_of(db)->prepared))
        return db_fail(db, err, MT_EUNAVAIL, true,
                       "database connection lost in a transaction (roll back and retry)");
    return reconnect(db, err);
}

mt_status dbp_ensure(mt_db *db, mt_err *err)
{
    return ensure(db, err);
}

/* ---- connection ---------------------------------------------------------- */

typedef struct pg_state {
    pg_cache cache;
    pg_pending pending;
    /* the connection must not be used again until reconnected: a pipeline
     * left results unread (PQexitPipelineMode failed), so what the server
     * ran of the transaction is unknown. Inside a transaction every
     * statement and the COMMIT fail (retryable) until the caller rolls back;
     * the next ensure() outside one reconnects. */
    bool broken;
    char prefetch_sql[80]; /* mt_db_set_prefetch, "" none */
    PGresult *prefetch;    /* its result in the open transaction, NULL none */
} pg_state;

static pg_state *state_of(mt_db *db);

/* The client side of docs/cluster.md "Partitions and TCP keepalives": an idle
 * connection probes after 10 s, every 5 s, and gives up after 3 unanswered
 * probes (10 + 3 x 5 = 25 s); data sent and not acknowledged for 25 s ends it
 * too (tcp_user_timeout, ms; Linux). libpq applies them to TCP connections
 * only (a Unix socket has no peer to lose). Keywords listed before the
 * expanded URL: the URL's own values override them (PQconnectdbParams
 * processes the arrays in order, the last value set wins). Not given at all
 * when the connection names a pg_service.conf service (the URL's service=
 * or PGSERVICE): libpq takes a service's values only for options still
 * unset, so these would override the service file; there it is the
 * service's to set them (docs/cluster.md). */
static const char *const pg_keepalive_kw[] = {"keepalives", "keepalives_idle",
                                              "keepalives_interval", "keepalives_count",
                                              "tcp_user_timeout"};
static const char *const pg_keepalive_val[] = {"1", "10", "5", "3", "25000"};
#define PG_KEEPALIVE_DEFAULTS (sizeof pg_keepalive_kw / sizeof pg_keepalive_kw[0])

bool dbp_conn_option(mt_db *db, const char *keyword, char *out, size_t cap)
{
    PQconninfoOption *opts = PQconninfo(db->h);
    bool found = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, keyword) && o->val) {
            found = (size_t)snprintf(out, cap, "%s", o->val) < cap;
            break;
        }
    PQconninfoFree(opts);
    return found;
}

mt_status dbp_open(const char *url, mt_db **out, mt_err *err)
{
    char shown[512];
    dbp_redact(url, shown, sizeof shown);
    mt_db *db = calloc(1, sizeof *db + sizeof(pg_state));
    if (!db || !(db->url = strdup(url))) {
        free(db);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    db->backend = MT_DB_PG;
    pending_of(db)->capture = -1;
    const char *kw[PG_KEEPALIVE_DEFAULTS + 2], *val[PG_KEEPALIVE_DEFAULTS + 2];
    size_t k = 0;
    /* libpq fills only options left unset from a service file, so defaults
     * given here would hide its keepalive settings: with a service (the
     * URL's service= or PGSERVICE) the defaults are left to it */
    bool service = getenv("PGSERVICE") && getenv("PGSERVICE")[0];
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &perr);
    PQfreemem(perr);
    for (PQconninfoOption *o = parsed; o && o->keyword; o++)
        if (!strcmp(o->keyword, "service") && o->val && o->val[0])
            service = true;
    PQconninfoFree(parsed);
    for (size_t i = 0; i < PG_KEEPALIVE_DEFAULTS && !service; i++, k++) {
        kw[k] = pg_keepalive_kw[k];
        val[k] = pg_keepalive_val[k];
    }
    kw[k] = "dbname"; /* expanded: the URL, whose values override the above */
    val[k++] = url;
    kw[k] = NULL;
    val[k] = NULL;
    PGconn *c = PQconnectdbParams(kw, val, 1);
    db->h = c;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names hosts and the failure, never data */
        char msg[200] = "out of memory";
        if (c) {
            snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
            msg[strcspn(msg, "\n")] = '\0';
        }
        mt_status rc = mt_err_set(err, MT_EUNAVAIL, "cannot open database %s: %s", shown, msg);
        dbp_close(db);
        return rc;
    }
    if (!session_setup(c)) {
        mt_status rc = mt_err_set(err, MT_EIO, "database %s: session settings refused", shown);
        dbp_close(db);
        return rc;
    }
    *out = db;
    return MT_OK;
}

static pg_state *state_of(mt_db *db)
{
    return (pg_state *)(db + 1);
}

static bool conn_ok(mt_db *db)
{
    return !state_of(db)->broken && PQstatus(conn(db)) == CONNECTION_OK;
}

static void broken_set(mt_db *db, bool broken)
{
    state_of(db)->broken = broken;
}

static pg_cache *cache_of(mt_db *db)
{
    return &state_of(db)->cache;
}

static pg_pending *pending_of(mt_db *db)
{
    return &state_of(db)->pending;
}

static void item_free(pg_item *it)
{
    for (int i = 0; i < it->n; i++)
        free(it->vals[i]);
    free(it->vals);
    free(it->lens);
    free(it->fmts);
    memset(it, 0, sizeof *it);
}

static void pending_clear(mt_db *db)
{
    pg_pending *p = pending_of(db);
    for (int i = 0; i < p->n; i++)
        item_free(&p->it[i]);
    p->n = 0;
    p->prepared = 0;
    p->begin = false;
    p->capture = -1;
}

/* ROLLBACK TO `name` (the text after "ROLLBACK TO", spaces and an optional
 * SAVEPOINT keyword allowed): the pending commands queued after that
 * savepoint are dropped. A SAVEPOINT is itself deferred (dbp_exec): when it
 * still waits, it and everything before it stay (they are sent with the
 * ROLLBACK TO, in order); when it was sent, everything that waits came after
 * it (sending a command sends what waits before it). */
static void pending_drop_after_savepoint(mt_db *db, const char *name)
{
    pg_pending *p = pending_of(db);
    while (*name == ' ')
        name++;
    if (!strncasecmp(name, "SAVEPOINT ", 10))
        name += 10;
    while (*name == ' ')
        name++;
    int keep = 0; /* items [0, keep) stay */
    for (int i = p->n - 1; i >= 0; i--) {
        const char *x = p->it[i].text;
        if (!strncasecmp(x, "SAVEPOINT ", 10) && !strcasecmp(x + 10, name)) {
            keep = i + 1;
            break;
        }
    }
    for (int i = keep; i < p->n; i++) {
        if (!p->it[i].text[0])
            p->prepared--;
        item_free(&p->it[i]);
    }
    if (p->capture >= keep)
        p->capture = -1;
    p->n = keep;
}

/* Drops the transaction's prefetched result (it ended or begins). */
static void prefetch_drop(mt_db *db)
{
    PQclear(state_of(db)->prefetch);
    state_of(db)->prefetch = NULL;
}

/* The pending commands (texts only: p->prepared == 0), then `sql` (may be
 * NULL), as one text of commands separated by "; " (malloc'd). */
static char *pending_text(mt_db *db, const char *sql)
{
    pg_pending *p = pending_of(db);
    size_t n = sql ? strlen(sql) + 1 : 1;
    for (int i = 0; i < p->n; i++)
        n += strlen(p->it[i].text) + 2;
    char *t = malloc(n);
    if (!t)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < p->n; i++)
        o += (size_t)snprintf(t + o, n - o, "%s%s", o ? "; " : "", p->it[i].text);
    if (sql)
        snprintf(t + o, n - o, "%s%s", o ? "; " : "", sql);
    return t;
}

/* The pending commands, then the prepared statement `name` (with its n
 * parameters) or the single command `text` (both NULL: none), in one round
 * trip (pipeline mode). Returns the first failed result, else the last
 * command's; NULL when the connection failed. */
static PGresult *pipeline(mt_db *db, const char *label, const char *name, const char *text, int n,
                          const char *const *vals, const int *lens, const int *fmts)
{
    PGconn *c = conn(db);
    pg_pending *p = pending_of(db);
    if (trace_trips) {
        char kind[16];
        snprintf(kind, sizeof kind, "pipe+%d", p->n);
        dbp_trip(kind, label ? label : text ? text : "(deferred only)");
    } else
        dbp_trip(NULL, NULL);
    if (!PQenterPipelineMode(c))
        return NULL;
    bool sent = true;
    for (int i = 0; i < p->n && sent; i++) {
        pg_item *it = &p->it[i];
        sent = it->text[0] ? PQsendQueryParams(c, it->text, 0, NULL, NULL, NULL, NULL, 0)
                           : PQsendQueryPrepared(c, it->name, it->n, (const char *const *)it->vals,
                                                 it->lens, it->fmts, 0);
    }
    int last = p->n - 1;
    if (sent && name) {
        sent = PQsendQueryPrepared(c, name, n, vals, lens, fmts, 0);
        last++;
    } else if (sent && text) {
        sent = PQsendQueryParams(c, text, 0, NULL, NULL, NULL, NULL, 0);
        last++;
    }
    if (sent)
        sent = PQpipelineSync(c);
    PGresult *keep = NULL;
    /* each command's results end with a NULL; the sync ends the pipeline;
     * two NULLs in a row (nothing more will come) or a broken connection
     * end the loop too */
    for (int q = 0, nulls = 0; sent;) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            if (++nulls > 1 || PQstatus(c) != CONNECTION_OK)
                break;
            q++;
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (q == p->capture && q != last && PQresultStatus(r) == PGRES_TUPLES_OK) {
            prefetch_drop(db); /* mt_db_prefetch_take */
            state_of(db)->prefetch = r;
            continue;
        }
        if (!keep && (!ok_result(r) || q == last))
            keep = r; /* the first failure, or the last command's result */
        else
            PQclear(r);
    }
    if (!PQexitPipelineMode(c)) {
        /* results left unread (or the connection broke with some): the
         * connection is stuck in pipeline mode and what the server ran is
         * unknown. Marked broken, not reconnected here: a fresh connection
         * has no transaction, so the caller's next statements would run
         * outside one (autocommitted) and only the COMMIT would fail. Now
         * they and the COMMIT fail until the caller rolls back, and the
         * next use outside a transaction reconnects (ensure). in_tx stays
         * as it was (track_tx does not read a broken connection). The
         * socket is shut down at once, though: the server ends the session,
         * so its transaction (the writer lock, row locks) is rolled back
         * now, not left idle in transaction until the handle is next used
         * (libpq keeps the descriptor; ensure's PQreset closes it). */
        PQclear(keep);
        keep = NULL;
        pending_clear(db);
        broken_set(db, true);
        int fd = PQsocket(c);
        if (fd >= 0)
            (void)shutdown(fd, SHUT_RDWR);
    }
    return keep;
}

void dbp_close(mt_db *db)
{
    prefetch_drop(db);
    pg_cache *c = cache_of(db);
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].sql);
    free(c->e);
    if (db->h)
        PQfinish(db->h);
    free(db->url);
    free(db);
}

/* One command text (no parameters); retried once after a reconnect when
 * `retry` (a BEGIN) and the connection broke. */
static mt_status run_text(mt_db *db, const char *sql, const char *what, bool retry, mt_err *err)
{
    /* the pending commands go first, in the same round trip; PQexec's
     * result is the last command's, or the first failure */
    if (pending_of(db)->prepared) {
        /* not expressible as one text: a pipeline of them and the command
         * (one command: pipeline mode takes no multi-command text), whose
         * result is the first failure (the server skips the rest then, as
         * it skips a text's commands after a failed one) */
        if (strchr(sql, ';')) {
            mt_status rc = dbp_flush(db, err);
            if (rc)
                return rc;
        } else {
            PGresult *r = pipeline(db, NULL, NULL, sql, 0, NULL, NULL, NULL);
            mt_status rc = MT_OK;
            if (r && ok_result(r))
                set_changes(db, r);
            else
                rc = pg_fail(db, r, what, err);
            PQclear(r);
            pending_clear(db);
            track_tx(db);
            return rc;
        }
    }
    char *text = NULL;
    if (pending_of(db)->n && !(text = pending_text(db, sql)))
        return db_fail(db, err, MT_ENOMEM, false, "out of memory");
    for (int attempt = 0;; attempt++) {
        bool began_here = pending_of(db)->begin;
        dbp_trip("text", text ? text : sql);
        PGresult *r = PQexec(conn(db), text ? text : sql);
        if (r && ok_result(r)) {
            pending_clear(db);
            set_changes(db, r);
            PQclear(r);
            track_tx(db);
            free(text);
            return MT_OK;
        }
        bool broken = !conn_ok(db);
        if (broken && attempt == 0 && ((retry && !db->in_tx) || began_here)) {
            PQclear(r);
            mt_status rc = reconnect(db, err);
            if (rc) {
                free(text);
                return rc;
            }
            continue;
        }
        pending_clear(db);
        mt_status rc = pg_fail(db, r, what, err);
        PQclear(r);
        free(text);
        return rc;
    }
}

mt_status dbp_flush(mt_db *db, mt_err *err)
{
    pg_pending *p = pending_of(db);
    if (!p->n)
        return MT_OK;
    if (!p->prepared) /* "SELECT 1": run_text needs a command after them */
        return run_text(db, "SELECT 1", "begin", false, err);
    PGresult *r = pipeline(db, NULL, NULL, NULL, 0, NULL, NULL, NULL);
    mt_status rc = MT_OK;
    if (!r || !ok_result(r))
        rc = pg_fail(db, r, "deferred statement", err);
    PQclear(r);
    pending_clear(db);
    track_tx(db);
    return rc;
}

mt_status dbp_defer(mt_db *db, const char *sql, mt_err *err)
{
    pg_pending *p = pending_of(db);
    if (strlen(sql) >= sizeof p->it[0].text)
        return db_fail(db, err, MT_EINTERNAL, false, "database: deferred command too long");
    if (p->n == PG_PENDING_MAX) {
        mt_status rc = dbp_flush(db, err);
        if (rc)
            return rc;
    }
    snprintf(p->it[p->n++].text, sizeof p->it[0].text, "%s", sql);
    return MT_OK;
}

mt_status dbp_exec(mt_db *db, const char *sql, mt_err *err)
{
    char *t;
    int np;
    mt_status rc = mt_db_translate(MT_DB_PG, sql, &t, &np, err);
    if (rc)
        return rc;
    pg_pending *p = pending_of(db);
    if (!np && p->n && !p->begin && !strncasecmp(t, "ROLLBACK TO", 11))
        /* what waits after the savepoint is undone by this command, so
         * dropped, not sent first, where a failing deferred statement (a
         * claim's audit INSERT) would abort the transaction and keep the
         * ROLLBACK TO that undoes it from being sent at all */
        pending_drop_after_savepoint(db, t + 11);
    if (np)
        rc = mt_err_set(err, MT_EINVAL, "SQL: parameters in mt_db_exec");
    else if (!db->in_tx && (!strcasecmp(sql, "BEGIN") || !strcasecmp(sql, "BEGIN IMMEDIATE")))
        /* as mt_db_begin: sent with the first statement ("Round trips") */
        rc = dbp_begin(db, sql[5] ? MT_DB_TX_IMMEDIATE : MT_DB_TX_DEFERRED, err);
    else if (db->in_tx && !strncasecmp(sql, "SAVEPOINT ", 10) && !strchr(sql, ';'))
        /* sent with the transaction's next statement, which the server
         * runs after it; a failure of it fails that statement (and the
         * transaction), as a deferred statement's does */
        rc = dbp_defer(db, t, err);
    else if (!(rc = ensure(db, err)))
        rc = run_text(db, t, "exec", !db->in_tx && !strncmp(t, "BEGIN", 5), err);
    free(t);
    return rc;
}

mt_status dbp_begin(mt_db *db, mt_db_tx mode, mt_err *err)
{
    mt_status rc = ensure(db, err);
    if (rc)
        return rc;
    if (db->in_tx)
        return db_fail(db, err, MT_EINTERNAL, false, "database: transaction already open");
    /* sent with the first statement ("Round trips" above) */
    pg_pending *p = pending_of(db);
    pending_clear(db);
    snprintf(p->it[p->n++].text, sizeof p->it[0].text, "%s",
             mode == MT_DB_TX_SERIALIZABLE ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN");
    if (mode == MT_DB_TX_IMMEDIATE)
        snprintf(p->it[p->n++].text, sizeof p->it[0].text, "SELECT pg_advisory_xact_lock(%lld)",
                 (long long)MT_DB_WRITER_LOCK_KEY);
    prefetch_drop(db);
    if (mode == MT_DB_TX_IMMEDIATE && state_of(db)->prefetch_sql[0]) { /* after the lock */
        p->capture = p->n;
        snprintf(p->it[p->n++].text, sizeof p->it[0].text, "%s", state_of(db)->prefetch_sql);
    }
    p->begin = true;
    db->in_tx = true;
    return MT_OK;
}

/* Whether the queue holds nothing but the transaction's BEGIN, writer lock
 * and prefetch: a transaction that did nothing, which COMMIT may skip. A
 * queued text command of the caller (NOTIFY, a savepoint) must reach the
 * server with the COMMIT. */
static bool pending_only_setup(const pg_pending *p)
{
    if (!p->begin || p->prepared)
        return false;
    for (int i = 0; i < p->n; i++) {
        const char *t = p->it[i].text;
        if (!(i == 0 && !strncmp(t, "BEGIN", 5)) && i != p->capture &&
            strncmp(t, "SELECT pg_advisory_xact_lock(", 29))
            return false;
    }
    return true;
}

mt_status dbp_commit(mt_db *db, mt_err *err)
{
    pg_pending *p = pending_of(db);
    prefetch_drop(db);
    if (pending_only_setup(p)) { /* nothing of it reached the server, nothing to send */
        pending_clear(db);
        db->in_tx = false;
        return MT_OK;
    }
    /* the checks first, then anything is sent: a late writer lock sent with
     * the COMMIT on a connection without the transaction would run, and the
     * COMMIT succeed, outside it (the lost work reading as committed) */
    if (!conn_ok(db)) {
        pending_clear(db);
        db->in_tx = false;
        return db_fail(db, err, MT_EUNAVAIL, true,
                       "database connection lost before commit (retry the transaction)");
    }
    if (PQtransactionStatus(conn(db)) == PQTRANS_IDLE && !p->begin) {
        /* no transaction on the server (a fresh connection): COMMIT would
         * only warn, so the lost work would read as committed */
        db->in_tx = false;
        return db_fail(db, err, MT_EUNAVAIL, true,
                       "database: the transaction was lost before commit (retry it)");
    }
    if (PQtransactionStatus(conn(db)) == PQTRANS_INERROR) {
        dbp_rollback(db);
        return db_fail(db, err, MT_EIO, false,
                       "database: commit of a failed transaction (rolled back)");
    }
    if (p->n && !p->prepared) { /* a late writer lock: with COMMIT, in one text */
        mt_status rc = run_text(db, "COMMIT", "commit", false, err);
        if (rc)
            dbp_rollback(db);
        return rc;
    }
    /* deferred statements (mt_db_run_deferred) go out with the COMMIT */
    if (!p->n)
        dbp_trip("commit", "COMMIT");
    PGresult *r =
        p->n ? pipeline(db, NULL, NULL, "COMMIT", 0, NULL, NULL, NULL) : PQexec(conn(db), "COMMIT");
    pending_clear(db);
    mt_status rc = MT_OK;
    if (!r || !ok_result(r))
        rc = pg_fail(db, r, "commit", err);
    else if (!strcmp(PQcmdStatus(r), "ROLLBACK"))
        rc = db_fail(db, err, MT_EIO, false, "database: transaction rolled back at commit");
    PQclear(r);
    if (rc)
        dbp_rollback(db);
    track_tx(db);
    return rc;
}

void dbp_rollback(mt_db *db)
{
    prefetch_drop(db);
    bool began = pending_of(db)->begin;
    pending_clear(db);
    if (began) { /* nothing of it reached the server */
        db->in_tx = false;
        return;
    }
    if (conn_ok(db) && PQtransactionStatus(conn(db)) != PQTRANS_IDLE) {
        dbp_trip("rollback", "ROLLBACK");
        PQclear(PQexec(conn(db), "ROLLBACK"));
    } /* a broken one was shut down when it broke (the server rolled back)
       * and is reset by the next ensure() */
    db->in_tx = false;
}

mt_status dbp_last_insert_id(mt_db *db, int64_t *id, mt_err *err)
{
    /* lastval() fails with 55000 when no sequence was used in this session */
    mt_status frc = dbp_flush(db, err);
    if (frc)
        return frc;
    dbp_trip("text", "SELECT lastval()");
    PGresult *r = PQexec(conn(db), "SELECT lastval()");
    mt_status rc = MT_OK;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (!(state && !strcmp(state, "55000") && !db->in_tx))
        rc = pg_fail(db, r, "last insert id", err);
    PQclear(r);
    track_tx(db);
    return rc;
}

/* ---- statements ---------------------------------------------------------- */

mt_status dbp_prepare(mt_db *db, const char *sql, mt_db_stmt *st, mt_err *err)
{
    mt_status rc = mt_db_translate(MT_DB_PG, sql, &st->sql, &st->nparams, err);
    if (rc)
        return rc;
    if (st->nparams && !(st->params = calloc((size_t)st->nparams, sizeof *st->params)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    st->row = -1;
    (void)db;
    return MT_OK;
}

static void drop_result(mt_db_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
    free(st->blob_buf);
    st->blob_buf = NULL;
    st->row = -1;
    st->nrows = 0;
    st->ran = false;
}

void dbp_finalize(mt_db_stmt *st)
{
    drop_result(st);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The server-side name of st's SQL on this connection, preparing it when
 * needed. */
static mt_status named(mt_db_stmt *st, const char **name, mt_err *err)
{
    mt_db *db = st->db;
    pg_cache *c = cache_of(db);
    uint64_t h = fnv(st->sql);
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].hash == h && !strcmp(c->e[i].sql, st->sql)) {
            *name = c->e[i].name;
            return MT_OK;
        }
    if (c->n == PG_STMT_CACHE_MAX) { /* never with our SQL; stay bounded anyway */
        if (db->in_tx) {
            *name = "";
            goto prepare_unnamed;
        }
        dbp_trip("text", "DEALLOCATE ALL");
        PQclear(PQexec(conn(db), "DEALLOCATE ALL"));
        for (size_t i = 0; i < c->n; i++)
            free(c->e[i].sql);
        c->n = 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        pg_named *e = realloc(c->e, cap * sizeof *e);
        if (!e)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        c->e = e;
        c->cap = cap;
    }
    pg_named *e = &c->e[c->n];
    if (!(e->sql = strdup(st->sql)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    e->hash = h;
    snprintf(e->name, sizeof e->name, "mt%u", db->next_id++);
    dbp_trip("prep", st->sql);
    PGresult *r = PQprepare(conn(db), e->name, st->sql, st->nparams, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        mt_status rc = pg_fail(db, r, "prepare", err);
        PQclear(r);
        free(e->sql);
        return rc;
    }
    PQclear(r);
    c->n++;
    *name = e->name;
    return MT_OK;
prepare_unnamed:;
    dbp_trip("prep", st->sql);
    PGresult *u = PQprepare(conn(db), "", st->sql, st->nparams, NULL);
    mt_status urc = MT_OK;
    if (!u || PQresultStatus(u) != PGRES_COMMAND_OK)
        urc = pg_fail(db, u, "prepare", err);
    PQclear(u);
    return urc;
}

static bool read_only(const char *sql)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '(')
        sql++;
    return !strncasecmp(sql, "SELECT", 6);
}

/* A SELECT that takes no lock and changes nothing: one that may run before
 * its DEFERRED transaction's BEGIN (see run). */
static bool plain_read(const char *sql)
{
    static const char *const no[] = {" FOR UPDATE", " FOR SHARE", " FOR NO KEY", " FOR KEY",
                                     "advisory",    "nextval",    "setval",      "notify"};
    if (!read_only(sql))
        return false;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasestr(sql, no[i]))
            return false;
    return true;
}

/* Runs st with its parameters; the result is kept for the steps. */
static mt_status run(mt_db_stmt *st, mt_err *err)
{
    mt_db *db = st->db;
    size_t np = st->nparams ? (size_t)st->nparams : 1;
    const char **vals = calloc(np, sizeof *vals);
    int *lens = calloc(np, sizeof *lens), *fmts = calloc(np, sizeof *fmts);
    mt_status rc = MT_OK;
    if (!vals || !lens || !fmts) {
        rc = db_fail(db, err, MT_ENOMEM, false, "out of memory");
        goto out;
    }
    for (int i = 0; i < st->nparams; i++) {
        db_param *p = &st->params[i];
        vals[i] = p->set && !p->is_null ? p->text : NULL;
        lens[i] = (int)p->len;
        fmts[i] = p->is_blob ? 1 : 0;
    }
    for (int attempt = 0;; attempt++) {
        if ((rc = ensure(db, err)))
            break;
        const char *name;
        PGresult *r = NULL;
        pg_pending *p = pending_of(db);
        bool began_here = p->begin;
        /* A DEFERRED transaction that has only read so far has not begun on
         * the server: its plain reads run on their own (READ COMMITTED
         * gives every statement its own snapshot, in a transaction or not,
         * and there is nothing of the transaction before them to see), its
         * BEGIN waits for its first other statement, and one that only
         * read ends without a round trip (dbp_commit, dbp_rollback). A
         * failed read leaves it pending (the caller rolls back). */
        bool virt = p->begin && p->n == 1 && !p->prepared && !strcmp(p->it[0].text, "BEGIN") &&
                    plain_read(st->sql);
        if (!(rc = named(st, &name, err)))
            r = p->n && !virt ? pipeline(db, st->sql, name, NULL, st->nparams,
                                         (const char *const *)vals, lens, fmts)
                              : (dbp_trip("exec", st->sql),
                                 PQexecPrepared(conn(db), name, st->nparams, vals, lens, fmts, 0));
        if (!rc && r && ok_result(r)) {
            if (!virt)
                pending_clear(db);
            st->res = r;
            st->nrows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
            set_changes(db, r);
            track_tx(db);
            break;
        }
        bool broken = !conn_ok(db);
        if (broken && attempt == 0 &&
            ((!db->in_tx && read_only(st->sql)) ||
             (began_here && pending_of(db)->begin && !pending_of(db)->prepared))) {
            /* a read outside a transaction, or the first statement of one
             * (its BEGIN was in the same round trip): safe to send again */
            PQclear(r);
            rc = MT_OK;
            if ((rc = reconnect(db, err)))
                break;
            continue;
        }
        if (!rc) {
            if (!virt)
                pending_clear(db);
            rc = pg_fail(db, r, "statement", err);
        }
        PQclear(r);
        break;
    }
out:
    free(vals);
    free(lens);
    free(fmts);
    return rc;
}

mt_status dbp_run_deferred(mt_db_stmt *st, mt_err *err)
{
    mt_db *db = st->db;
    pg_pending *p = pending_of(db);
    if (!db->in_tx)
        return db_fail(db, err, MT_EINTERNAL, false,
                       "database: deferred statement outside a transaction");
    mt_status rc;
    if (p->n == PG_PENDING_MAX && (rc = dbp_flush(db, err)))
        return rc;
    const char *name;
    if ((rc = ensure(db, err)) || (rc = named(st, &name, err)))
        return rc;
    if (!name[0]) /* the unnamed statement (a full cache) is replaced by the next */
        return db_fail(db, err, MT_EINTERNAL, false, "database: statement cache full");
    pg_item *it = &p->it[p->n];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    size_t np = st->nparams ? (size_t)st->nparams : 1;
    it->vals = calloc(np, sizeof *it->vals);
    it->lens = calloc(np, sizeof *it->lens);
    it->fmts = calloc(np, sizeof *it->fmts);
    if (!it->vals || !it->lens || !it->fmts) {
        item_free(it);
        return db_fail(db, err, MT_ENOMEM, false, "out of memory");
    }
    it->n = st->nparams;
    for (int i = 0; i < st->nparams; i++) {
        db_param *pa = &st->params[i];
        it->lens[i] = (int)pa->len;
        it->fmts[i] = pa->is_blob ? 1 : 0;
        if (!pa->set || pa->is_null)
            continue;
        size_t len = pa->is_blob ? pa->len : strlen(pa->text);
        if (!(it->vals[i] = malloc(len + 1))) {
            item_free(it);
            return db_fail(db, err, MT_ENOMEM, false, "out of memory");
        }
        memcpy(it->vals[i], pa->text, len);
        it->vals[i][len] = 0;
    }
    p->n++;
    p->prepared++;
    return MT_OK;
}

int dbp_step(mt_db_stmt *st, mt_status *rc, mt_err *err)
{
    free(st->blob_buf);
    st->blob_buf = NULL;
    if (!st->ran) {
        st->ran = true;
        mt_status r = run(st, *rc ? NULL : err);
        if (r) {
            if (*rc == MT_OK)
                *rc = r;
            return -1;
        }
    }
    if (st->row + 1 < st->nrows) {
        st->row++;
        return MT_DB_ROW;
    }
    st->row = st->nrows;
    return MT_DB_DONE;
}

void dbp_reset(mt_db_stmt *st)
{
    drop_result(st);
}

int dbp_col_count(const mt_db_stmt *st)
{
    return st->res ? PQnfields(st->res) : 0;
}

static bool on_row(const mt_db_stmt *st, int i)
{
    return st->res && st->row >= 0 && st->row < st->nrows && i >= 0 && i < PQnfields(st->res);
}

bool dbp_col_null(mt_db_stmt *st, int i)
{
    return !on_row(st, i) || PQgetisnull(st->res, st->row, i);
}

const char *dbp_col_raw(mt_db_stmt *st, int i)
{
    if (dbp_col_null(st, i))
        return NULL;
    return PQgetvalue(st->res, st->row, i);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const void *dbp_col_blob(mt_db_stmt *st, int i, size_t *n)
{
    *n = 0;
    const char *v = dbp_col_raw(st, i);
    if (!v)
        return NULL;
    size_t len = (size_t)PQgetlength(st->res, st->row, i);
    if (PQftype(st->res, i) != BYTEA_OID) {
        *n = len;
        return len ? v : NULL;
    }
    /* bytea_output = hex (the default since 9.0): "\x" then 2 digits a byte */
    if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2)
        return NULL;
    size_t out = (len - 2) / 2;
    if (!out)
        return NULL;
    free(st->blob_buf);
    if (!(st->blob_buf = malloc(out)))
        return NULL;
    for (size_t k = 0; k < out; k++) {
        int hi = hexval(v[2 + 2 * k]), lo = hexval(v[3 + 2 * k]);
        if (hi < 0 || lo < 0)
            return NULL;
        st->blob_buf[k] = (char)(hi << 4 | lo);
    }
    *n = out;
    return st->blob_buf;
}

void dbp_set_prefetch(mt_db *db, const char *sql)
{
    pg_state *ps = state_of(db);
    if (!sql || strlen(sql) >= sizeof ps->prefetch_sql || strchr(sql, ';') || !read_only(sql))
        ps->prefetch_sql[0] = '\0';
    else if (strcmp(ps->prefetch_sql, sql))
        snprintf(ps->prefetch_sql, sizeof ps->prefetch_sql, "%s", sql);
}

bool dbp_prefetch_take(mt_db *db, bool *row, int64_t *i0, char *t1, size_t cap)
{
    pg_state *ps = state_of(db);
    PGresult *r = ps->prefetch;
    pg_pending *p = pending_of(db);
    if (!r && db->in_tx && p->capture >= 0) {
        /* asked for before anything of the transaction was sent: the
         * caller reads it now itself (in the same round trip as the BEGIN
         * and the lock), so the queued copy is not run as well */
        item_free(&p->it[p->capture]);
        memmove(&p->it[p->capture], &p->it[p->capture + 1],
                (size_t)(p->n - p->capture - 1) * sizeof p->it[0]);
        p->n--;
        memset(&p->it[p->n], 0, sizeof p->it[0]);
        p->capture = -1;
        return false;
    }
    if (!r || !db->in_tx)
        return false;
    ps->prefetch = NULL;
    *row = PQntuples(r) > 0 && PQnfields(r) >= 2;
    if (*row) {
        *i0 = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        snprintf(t1, cap, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return true;
}
