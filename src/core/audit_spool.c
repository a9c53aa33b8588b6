/* audit_spool: no request is answered without its audit entry, even while
 * the store cannot take it (docs/design.md "Audit spool").
 *
 * mt_core_audit_record appends the entries of requests that changed nothing
 * (the gateway's own entries, the group commit's batches, the KeyStore's
 * join decisions) to the chain; when that fails (PostgreSQL failing over,
 * SQLite locked or out of disk), or while older entries still wait, it
 * appends them to the local spool file <data_dir>/audit-spool
 * (untrusted_spool.h: MACed records, write + fsync) instead, and the
 * request is answered as usual. A replay thread appends the spooled entries
 * to the chain, oldest first, with their original times, actors, actions,
 * objects and statuses, in chunks of at most REPLAY_CHUNK per transaction,
 * retrying with backoff (BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS) until
 * the store takes them; mt_core_open replays a spool left by an earlier run
 * before anything is served. After each committed chunk the spool is
 * rewritten without it (a crash between the commit and the rewrite appends
 * that chunk again at the next replay: an entry may repeat, none is lost;
 * a rewrite that fails while we run is retried, and the records already
 * appended are skipped meanwhile: a->skip).
 *
 * Fail closed: past the cap (serve --audit-spool-max-kib) an entry can be
 * neither appended nor spooled; mt_core_audit_record then fails and the
 * gateway answers 503 instead of serving the request unaudited.
 *
 * A spool that fails authentication (an edited, reordered or cut record, a
 * foreign key, records this run wrote missing) is refused whole: nothing of
 * it reaches the chain, the file is moved aside (audit-spool.refused-TIME),
 * the log says why, mesatee_audit_spool_refused_total counts it and an entry
 * "audit spool refused: CLASS" (status 500) records the gap in the chain.
 *
 * Strict order: order_mu is held from the look at pending through the
 * direct append and, if that fails, the spooling; so a direct append never
 * overtakes an entry on its way into the spool, and while the spool holds
 * records (pending, until the replay has appended them all: the replay
 * thread has seen the store back) every new entry goes behind them without
 * trying the store (one request waits for a failing store's error, not
 * every one: mesatee_audit_store_failures_total).
 *
 * Changes: entries written in a change's own transaction (a write route,
 * the scheduler, the KeyStore) do not pass mt_core_audit_record; they would
 * reach the chain as soon as the change commits, ahead of older spooled
 * entries still waiting for the replay's backoff. So every transaction that
 * appends audit entries of its own begins with core_change_begin (or calls
 * core_aspool_before_change first). The gate waits for a high-water mark:
 * the records spooled when it starts (seq_in) must be in the chain
 * (seq_out), never the spool empty, which steady audited traffic could keep
 * from happening. With no pass in flight it runs one itself, of at most
 * CHANGE_CHUNKS chunks; with one in flight (the replay thread's, another
 * change's) it waits while that pass appends at most CHANGE_CHUNKS + 1
 * chunks, and takes the result of a pass that ends failing (the replay
 * thread likewise takes a failed change pass's result and backs off, so a
 * failing store is not tried twice in a row). Past that it wakes the
 * replay thread (cutting its backoff) and refuses the change (MT_EUNAVAIL,
 * 503, CORE_ASPOOL_REFUSAL; core_aspool_refusal tells it from other
 * errors). So a change drains at most one chunk on the gateway's event
 * loop or under core->mu. A request answered before a change arrived
 * therefore precedes the change in the chain; an entry spooled while a
 * change is already under way (its request overlaps the change) may follow
 * it, as it may without the spool. Once the store took a chunk of a pass,
 * the pass appends its last chunk (what is left fits one) holding
 * order_mu, so nothing is spooled meanwhile and it ends with the spool
 * empty and pending false even under steady traffic (not before: a failing
 * store would hold every request's entry up for its error).
 *
 * Locks, always in this order: replay_mu (replays take turns), order_mu,
 * mu (the spool file and pending). mu is never held across a store
 * transaction; order_mu is (like audit.c's audit_mu, which serialises
 * every mt_core_audit_batch anyway). core_aspool_before_change runs before
 * its change's transaction begins, so it holds no writer lock (SQLite's
 * write lock, PostgreSQL's advisory lock) when it takes replay_mu and waits
 * for audit_mu and the writer lock in the replay, as the change's own
 * BEGIN IMMEDIATE would; its callers may hold core->mu or the KeyStore's
 * lock, which nothing holding replay_mu, order_mu, mu or audit_mu ever
 * takes. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "mt_log.h"
#include "untrusted_spool.h"

#define SPOOL_NAME "audit-spool"
#define SPOOL_DEFAULT_MAX (16ull << 20)
#define REPLAY_CHUNK 4096
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
/* chunks a change appends itself (or waits for) before it is refused */
#define CHANGE_CHUNKS 1

typedef struct core_aspool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_mutex_t replay_mu;
    /* order_mu: held by mt_core_audit_record from its look at pending
     * through the direct append and, when that fails, the spooling, so no
     * entry can be appended directly while an older one is on its way into
     * the spool (strict order), and the requests queued behind a failing
     * attempt see the spool in use and do not try the store again */
    pthread_mutex_t order_mu;
    mt_spool *sp;
    /* records wait in the spool: new entries queue behind them. Written
     * under mu; read without it by core_aspool_before_change's fast path */
    _Atomic bool pending;
    size_t skip;  /* records at the file's head already in the chain: a
                     rewrite after their commit failed (this run only) */
    /* High-water marks (under mu): seq_in counts the records ever put into
     * the spool (a spool left by an earlier run counts at open), seq_out
     * those of them now in the chain or dropped with a refused spool; so
     * records [seq_out, seq_in) wait. A change waits for seq_out to reach
     * the seq_in it saw when it began, never for the spool to be empty
     * (which steady traffic may keep from happening). */
    uint64_t seq_in, seq_out;
    uint64_t chunks;        /* chunks committed (or dropped) by replay passes */
    uint64_t passes;        /* replay passes ended */
    bool in_pass;           /* a replay pass runs (under replay_mu) */
    mt_status last_pass_rc; /* how the last pass ended (a failing store) */
    char last_pass_msg[MT_ERR_MSG_MAX];
    pthread_cond_t done_cv; /* CLOCK_MONOTONIC; seq_out moved or a pass ended */
    bool kick;              /* a change wants the replay thread now: cut its backoff */
    bool stop;
    bool th_on;
    pthread_t th;
    _Atomic uint64_t spooled, replayed, refused, full, store_failed, change_refused;
} core_aspool;

void (*core_aspool_test_after_fail)(void *arg);
void (*core_aspool_test_after_chunk)(void *arg, bool order_held);
void *core_aspool_test_arg;

static void to_rec(const mt_audit_item *it, int64_t now, mt_spool_rec *r)
{
    memset(r, 0, sizeof *r);
    r->time = it->time > 0 ? it->time : now;
    r->status = it->status;
    snprintf(r->actor, sizeof r->actor, "%s", it->actor ? it->actor : "-");
    snprintf(r->action, sizeof r->action, "%s", it->action ? it->action : "-");
    snprintf(r->object, sizeof r->object, "%s", it->object ? it->object : "-");
}

/* Under a->mu. */
static mt_status spool_put(core_aspool *a, const mt_spool_rec *recs, size_t n, mt_err *err)
{
    mt_status rc = mt_spool_append(a->sp, recs, n, err);
    if (rc) {
        if (rc == MT_ETOOBIG)
            atomic_fetch_add(&a->full, n);
        mt_error("audit: %zu entr%s could be neither appended to the chain nor spooled (%s): "
                 "their requests are refused (503)",
                 n, n == 1 ? "y" : "ies", err->msg);
        return rc;
    }
    atomic_fetch_add(&a->spooled, n);
    a->seq_in += n;
    if (!a->pending) {
        a->pending = true;
        pthread_cond_signal(&a->cv);
    }
    return MT_OK;
}

mt_status mt_core_audit_record(mt_core *c, const mt_audit_item *items, size_t n, bool *spooled,
                               mt_err *err)
{
    if (spooled)
        *spooled = false;
    if (n == 0)
        return MT_OK;
    core_aspool *a = c->aspool;
    if (!a)
        return mt_core_audit_batch(c, items, n, err);
    int64_t now = mt_now();
    mt_audit_item *its = malloc(n * sizeof *its);
    mt_spool_rec *recs = malloc(n * sizeof *recs);
    if (!its || !recs) {
        free(its);
        free(recs);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        its[i] = items[i];
        if (its[i].time <= 0)
            its[i].time = now; /* the answer's time, kept if spooled */
        to_rec(&its[i], now, &recs[i]);
    }
    mt_status rc;
    pthread_mutex_lock(&a->order_mu);
    pthread_mutex_lock(&a->mu);
    if (a->pending) { /* behind the entries that wait, in order, store untried */
        rc = spool_put(a, recs, n, err);
        pthread_mutex_unlock(&a->mu);
        if (!rc && spooled)
            *spooled = true;
        goto out;
    }
    pthread_mutex_unlock(&a->mu);
    mt_err e1;
    mt_err_clear(&e1);
    rc = mt_core_audit_batch(c, its, n, &e1);
    if (rc) {
        atomic_fetch_add(&a->store_failed, 1);
        mt_warn("audit: the store cannot take %zu entr%s (%s): spooled locally until it can", n,
                n == 1 ? "y" : "ies", e1.msg);
        if (core_aspool_test_after_fail)
            core_aspool_test_after_fail(core_aspool_test_arg);
        pthread_mutex_lock(&a->mu);
        rc = spool_put(a, recs, n, err);
        pthread_mutex_unlock(&a->mu);
        if (!rc && spooled)
            *spooled = true;
    }
out:
    pthread_mutex_unlock(&a->order_mu);
    free(its);
    free(recs);
    return rc;
}

/* Under a->mu: moves a damaged spool aside. The chain entry is the
 * caller's, after mu is released. */
static void refuse(core_aspool *a, const char *why)
{
    char moved[4200] = "";
    mt_err e;
    mt_err_clear(&e);
    mt_status rc = mt_spool_quarantine(a->sp, moved, sizeof moved, &e);
    atomic_fetch_add(&a->refused, 1);
    a->pending = false;
    a->skip = 0;
    a->seq_out = a->seq_in; /* none of them waits any more */
    pthread_cond_broadcast(&a->done_cv);
    mt_error("ALARM audit spool refused, nothing of it appended to the audit chain: %s; %s", why,
             rc ? e.msg : moved[0] ? moved : "(moved aside)");
}

static void record_refusal(mt_core *c, const char *why)
{
    /* why is one of untrusted_spool.c's own fixed texts, never file bytes */
    char action[160];
    snprintf(action, sizeof action, "audit spool refused: %.*s",
             (int)(sizeof action - sizeof "audit spool refused: "), why);
    mt_audit_item it = {"-", action, "audit-spool", 500, 0};
    mt_err e;
    mt_err_clear(&e);
    if (mt_core_audit_record(c, &it, 1, NULL, &e))
        mt_error("audit: recording the spool refusal failed: %s", e.msg);
}

/* One chunk of a replay pass, under replay_mu (and order_mu when the
 * caller took it: then nothing can be spooled meanwhile). *more: go on
 * with the next chunk. A refused spool's reason goes to why (the caller
 * records it once it holds no lock of ours but replay_mu). */
static mt_status replay_chunk(mt_core *c, bool order_held, bool *more, char why[MT_ERR_MSG_MAX],
                              mt_err *err)
{
    core_aspool *a = c->aspool;
    *more = false;
    pthread_mutex_lock(&a->mu);
    if (!a->pending) {
        pthread_mutex_unlock(&a->mu);
        return MT_OK;
    }
    mt_spool_rec *recs = NULL;
    size_t n = 0;
    mt_status rc = mt_spool_load(a->sp, &recs, &n, err);
    if (rc == MT_ECRYPTO) {
        snprintf(why, MT_ERR_MSG_MAX, "%s", err->msg);
        refuse(a, why);
        pthread_mutex_unlock(&a->mu);
        return MT_ECRYPTO;
    }
    size_t skip = a->skip <= n ? a->skip : n;
    if (!rc && skip == n && n > 0) { /* all in the chain: only the rewrite is left */
        if (!(rc = mt_spool_reset(a->sp, NULL, 0, err))) {
            a->skip = 0;
            n = 0;
        }
    }
    if (rc || n == 0) {
        if (!rc) {
            a->pending = false;
            a->seq_out = a->seq_in;
            pthread_cond_broadcast(&a->done_cv);
        }
        pthread_mutex_unlock(&a->mu);
        free(recs);
        return rc;
    }
    pthread_mutex_unlock(&a->mu);
    if (skip) { /* appended before a failed rewrite: never twice in one run */
        memmove(recs, recs + skip, (n - skip) * sizeof *recs);
        n -= skip;
    }
    size_t m = n < REPLAY_CHUNK ? n : REPLAY_CHUNK;
    mt_audit_item *its = malloc(m * sizeof *its);
    if (!its) {
        free(recs);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m; i++)
        its[i] = (mt_audit_item){recs[i].actor, recs[i].action, recs[i].object, recs[i].status,
                                 recs[i].time > 0 ? recs[i].time : 1};
    rc = mt_core_audit_batch(c, its, m, err);
    free(its);
    free(recs);
    if (rc)
        return rc;
    if (core_aspool_test_after_chunk)
        core_aspool_test_after_chunk(core_aspool_test_arg, order_held);
    /* committed: drop them from the spool (which may have grown) */
    pthread_mutex_lock(&a->mu);
    a->seq_out += m;
    a->chunks++;
    pthread_cond_broadcast(&a->done_cv);
    atomic_fetch_add(&a->replayed, m);
    mt_spool_rec *all = NULL;
    size_t n2 = 0;
    rc = mt_spool_load(a->sp, &all, &n2, err);
    if (rc == MT_ECRYPTO) {
        snprintf(why, MT_ERR_MSG_MAX, "%s", err->msg);
        refuse(a, why);
        pthread_mutex_unlock(&a->mu);
        return MT_ECRYPTO;
    }
    size_t done = skip + m; /* records at the head now in the chain */
    if (!rc && n2 < done)
        rc = mt_err_set(err, MT_EINTERNAL, "audit spool shrank during a replay");
    if (!rc)
        rc = mt_spool_reset(a->sp, all + done, n2 - done, err);
    free(all);
    if (rc) {
        a->skip = done; /* the file is unchanged: skip them from now on */
        mt_error("audit: %zu spooled entries are in the chain but could not be removed from "
                 "the spool (%s): retrying; a restart before that appends them again",
                 done, err->msg);
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
    a->skip = 0;
    a->pending = n2 > done;
    *more = a->pending;
    pthread_mutex_unlock(&a->mu);
    mt_info("audit: %zu spooled entr%s appended to the chain%s", m, m == 1 ? "y" : "ies",
            n2 > done ? "; more follow" : "");
    return MT_OK;
}

/* One replay pass, under replay_mu: chunk after chunk until the spool is
 * empty, the store fails, seq_out reaches target or max_chunks were
 * appended. The last chunk (what is left fits one) is appended holding
 * order_mu, so that no entry is spooled meanwhile and the pass ends with
 * the spool empty even under steady audited traffic (which would otherwise
 * keep adding records behind it); mt_core_audit_record's callers wait for
 * that one transaction as they wait for a direct append. */
static mt_status replay_locked(mt_core *c, uint64_t target, uint64_t max_chunks, mt_err *err)
{
    core_aspool *a = c->aspool;
    mt_status rc = MT_OK;
    pthread_mutex_lock(&a->mu);
    a->in_pass = true;
    pthread_mutex_unlock(&a->mu);
    bool took = false; /* the store took a chunk of this pass */
    for (uint64_t k = 0; k < max_chunks; k++) {
        pthread_mutex_lock(&a->mu);
        bool go = a->pending && a->seq_out < target;
        uint64_t recs = mt_spool_records(a->sp);
        /* only once the store took a chunk of this pass: a failing store
         * must not hold every request's entry up (they go to the spool) */
        bool tail = took && recs - (a->skip <= recs ? a->skip : recs) <= REPLAY_CHUNK;
        pthread_mutex_unlock(&a->mu);
        if (!go)
            break;
        if (tail) /* lock order: replay_mu, order_mu, mu */
            pthread_mutex_lock(&a->order_mu);
        bool more = false;
        char why[MT_ERR_MSG_MAX] = "";
        rc = replay_chunk(c, tail, &more, why, err);
        if (tail)
            pthread_mutex_unlock(&a->order_mu);
        if (why[0]) { /* refused: the chain records the gap (takes order_mu) */
            record_refusal(c, why);
            break;
        }
        if (rc || !more)
            break;
        took = true;
    }
    pthread_mutex_lock(&a->mu);
    a->passes++;
    a->in_pass = false;
    a->last_pass_rc = rc;
    snprintf(a->last_pass_msg, sizeof a->last_pass_msg, "%s", rc ? err->msg : "");
    pthread_cond_broadcast(&a->done_cv);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static mt_status replay(mt_core *c, mt_err *err)
{
    pthread_mutex_lock(&c->aspool->replay_mu);
    mt_status rc = replay_locked(c, UINT64_MAX, UINT64_MAX, err);
    pthread_mutex_unlock(&c->aspool->replay_mu);
    return rc;
}

/* Under a->mu: the records spooled before the change began are in the
 * chain (or were dropped with a refused spool). */
static bool reached(core_aspool *a, uint64_t target)
{
    return !a->pending || a->seq_out >= target;
}

mt_status core_aspool_before_change(mt_core *c, mt_err *err)
{
    core_aspool *a = c ? c->aspool : NULL;
    if (!a || !atomic_load(&a->pending))
        return MT_OK; /* the common case: one atomic load */
    pthread_mutex_lock(&a->mu);
    uint64_t target = a->seq_in; /* entries spooled later overlap the change */
    bool ok = reached(a, target);
    pthread_mutex_unlock(&a->mu);
    if (ok)
        return MT_OK;
    mt_err e;
    mt_err_clear(&e);
    mt_status rc = MT_OK;
    const char *why = "the replay has not reached them yet";
    for (int tries = 0; !ok && !rc && tries < 20; tries++) {
        if (pthread_mutex_trylock(&a->replay_mu) == 0) {
            /* no pass in flight: run one, of at most CHANGE_CHUNKS chunks
             * (the caller may be the gateway's event loop or hold
             * core->mu); more is the replay thread's work */
            rc = replay_locked(c, target, CHANGE_CHUNKS, &e);
            pthread_mutex_unlock(&a->replay_mu);
            pthread_mutex_lock(&a->mu);
            ok = reached(a, target);
            pthread_mutex_unlock(&a->mu);
            if (!ok && !rc)
                why = "more than a change appends itself wait: the replay thread appends them";
            break;
        }
        /* a pass in flight (the replay thread's, or another change's):
         * wait while it appends chunks towards target, for at most
         * CHANGE_CHUNKS + 1 of them; a pass that ends failing gives its
         * result (a failing store is not tried twice in a row: on SQLite
         * each try may wait out the busy timeout); one that ends short of
         * target (another change's) or none running (replay_mu about to be
         * released): try again */
        pthread_mutex_lock(&a->mu);
        uint64_t pass0 = a->passes, chunk0 = a->chunks;
        while (!reached(a, target) && a->in_pass && a->passes == pass0 &&
               a->chunks - chunk0 <= CHANGE_CHUNKS)
            pthread_cond_wait(&a->done_cv, &a->mu);
        ok = reached(a, target);
        bool same = a->passes == pass0;
        bool ended = !same || !a->in_pass;
        if (!ok && a->passes != pass0 && a->last_pass_rc) {
            rc = a->last_pass_rc;
            snprintf(e.msg, sizeof e.msg, "%s", a->last_pass_msg);
        }
        pthread_mutex_unlock(&a->mu);
        if (!ok && !rc && !ended)
            break; /* the pass goes on, beyond what a change waits for */
        if (!ok && !rc && same)
            sched_yield(); /* replay_mu's holder is about to let go */
    }
    if (!ok && !rc) {
        pthread_mutex_lock(&a->mu);
        a->kick = true; /* the replay thread: now, not after its backoff */
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    if (ok)
        return MT_OK;
    atomic_fetch_add(&a->change_refused, 1);
    pthread_mutex_lock(&a->mu);
    uint64_t n = a->seq_in - a->seq_out;
    pthread_mutex_unlock(&a->mu);
    /* rate-limited: a refused scheduler retries often */
    static _Atomic int64_t last_warn;
    int64_t now = mt_now(), lw = atomic_load(&last_warn);
    if (now - lw >= 10 && atomic_compare_exchange_strong(&last_warn, &lw, now))
        mt_warn("audit: a change is refused (503): %llu spooled audit entr%s must reach the "
                "chain before it (%s); mesatee_audit_spool_change_refused_total counts the "
                "refusals",
                (unsigned long long)n, n == 1 ? "y" : "ies", rc ? e.msg : why);
    /* a fixed text: the client reads it */
    return mt_err_set(err, MT_EUNAVAIL, "%s", CORE_ASPOOL_REFUSAL);
}

bool core_aspool_refusal(mt_status rc, const mt_err *err)
{
    return rc == MT_EUNAVAIL && err && !strcmp(err->msg, CORE_ASPOOL_REFUSAL);
}

mt_status core_change_begin(mt_core *c, mt_db *db, mt_err *err)
{
    mt_status rc = core_aspool_before_change(c, err);
    return rc ? rc : store_begin(db, err);
}

mt_status mt_core_audit_spool_replay(mt_core *c, mt_err *err)
{
    if (!c->aspool)
        return MT_OK;
    mt_status rc = replay(c, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->aspool->mu);
    bool left = c->aspool->pending;
    pthread_mutex_unlock(&c->aspool->mu);
    return left ? mt_err_set(err, MT_EUNAVAIL, "audit entries still wait in the spool") : MT_OK;
}

void mt_core_audit_spool_state(mt_core *c, uint64_t *entries, uint64_t *bytes)
{
    *entries = *bytes = 0;
    if (!c || !c->aspool)
        return;
    pthread_mutex_lock(&c->aspool->mu);
    *entries = mt_spool_records(c->aspool->sp);
    *bytes = mt_spool_bytes(c->aspool->sp);
    pthread_mutex_unlock(&c->aspool->mu);
}

static void *replay_main(void *arg)
{
    mt_core *c = arg;
    core_aspool *a = c->aspool;
    int64_t backoff = BACKOFF_MIN_MS;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        if (!a->pending) {
            backoff = BACKOFF_MIN_MS;
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        pthread_mutex_unlock(&a->mu);
        mt_err err;
        mt_err_clear(&err);
        mt_status rc;
        if (pthread_mutex_trylock(&a->replay_mu)) {
            /* a change's pass (core_aspool_before_change) is running: when
             * it fails, its result is ours; a failing store is not tried
             * twice in a row (on SQLite each try may wait out the busy
             * timeout). A change's pass that ended well but short (it
             * appends at most CHANGE_CHUNKS) leaves the rest to us. */
            pthread_mutex_lock(&a->replay_mu);
            pthread_mutex_lock(&a->mu);
            rc = a->last_pass_rc;
            if (rc)
                mt_err_set(&err, rc, "%s", a->last_pass_msg);
            pthread_mutex_unlock(&a->mu);
            if (!rc)
                rc = replay_locked(c, UINT64_MAX, UINT64_MAX, &err);
        } else {
            rc = replay_locked(c, UINT64_MAX, UINT64_MAX, &err);
        }
        pthread_mutex_unlock(&a->replay_mu);
        pthread_mutex_lock(&a->mu);
        if (!rc)
            continue; /* empty now, or refused (pending false either way) */
        mt_warn("audit: spooled entries wait for the store (%s); retrying in %lld ms", err.msg,
                (long long)backoff);
        /* sleep out the backoff: new spooled entries do not cut it short,
         * a change that needs the spool drained does (a->kick) */
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += backoff / 1000;
        dl.tv_nsec += (backoff % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        a->kick = false;
        while (!a->stop && !a->kick && pthread_cond_timedwait(&a->cv, &a->mu, &dl) != ETIMEDOUT)
            ;
        if (a->kick) {
            a->kick = false;
            backoff = BACKOFF_MIN_MS;
        } else {
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

mt_status core_aspool_open(mt_core *c, uint64_t cap_bytes, mt_err *err)
{
    core_aspool *a = calloc(1, sizeof *a);
    if (!a)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t pl = strlen(c->data_dir) + sizeof("/" SPOOL_NAME);
    char *path = malloc(pl);
    if (!path) {
        free(a);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    snprintf(path, pl, "%s/%s", c->data_dir, SPOOL_NAME);
    mt_status rc = mt_spool_open(path, c->audit_key, cap_bytes ? cap_bytes : SPOOL_DEFAULT_MAX,
                                 &a->sp, err);
    free(path);
    if (rc) {
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->replay_mu, NULL);
    pthread_mutex_init(&a->order_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &ca);
    pthread_cond_init(&a->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    c->aspool = a;
    /* a spool an earlier run left: authenticate, then into the chain */
    mt_spool_rec *recs = NULL;
    size_t n = 0;
    mt_err e;
    mt_err_clear(&e);
    pthread_mutex_lock(&a->mu);
    rc = mt_spool_load(a->sp, &recs, &n, &e);
    free(recs);
    if (rc == MT_ECRYPTO) {
        char why[MT_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", e.msg);
        refuse(a, why);
        pthread_mutex_unlock(&a->mu);
        record_refusal(c, why);
    } else if (rc) {
        pthread_mutex_unlock(&a->mu);
        return mt_err_set(err, rc, "%s", e.msg); /* I/O: the operator must look */
    } else {
        a->pending = n > 0;
        a->seq_in = n;
        pthread_mutex_unlock(&a->mu);
        if (n > 0) {
            mt_info("audit: %zu entr%s left in the audit spool by an earlier run: appending "
                    "them to the chain before serving",
                    n, n == 1 ? "y" : "ies");
            if (replay(c, &e))
                mt_warn("audit: the spooled entries wait for the store (%s); retrying in the "
                        "background",
                        e.msg);
        }
    }
    /* test-only (tests/unit/test_audit_spool.c): no background replay, so
     * that a test decides when a replay runs */
    const char *manual = getenv("MESATEE_TEST_AUDIT_SPOOL_MANUAL");
    if (manual && !strcmp(manual, "1"))
        return MT_OK;
    if (pthread_create(&a->th, NULL, replay_main, c))
        return mt_err_set(err, MT_ENOMEM, "cannot start the audit spool's replay thread");
    a->th_on = true;
    return MT_OK;
}

void core_aspool_close(mt_core *c)
{
    core_aspool *a = c->aspool;
    if (!a)
        return;
    if (a->th_on) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->th, NULL);
    }
    if (a->pending)
        mt_warn("audit: %llu entries stay in the audit spool; the next start appends them",
                (unsigned long long)mt_spool_records(a->sp));
    mt_spool_free(a->sp);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->done_cv);
    pthread_mutex_destroy(&a->replay_mu);
    pthread_mutex_destroy(&a->order_mu);
    pthread_mutex_destroy(&a->mu);
    free(a);
    c->aspool = NULL;
}

char *core_aspool_metrics(mt_core *c)
{
    core_aspool *a = c->aspool;
    if (!a)
        return strdup("");
    uint64_t entries, bytes;
    mt_core_audit_spool_state(c, &entries, &bytes);
    char *out = NULL;
    if (asprintf(&out,
                 "# HELP mesatee_audit_spool_entries Audit entries waiting in the local audit "
                 "spool until the store takes them.\n"
                 "# TYPE mesatee_audit_spool_entries gauge\n"
                 "mesatee_audit_spool_entries %llu\n"
                 "# HELP mesatee_audit_spool_bytes Size of the local audit spool file.\n"
                 "# TYPE mesatee_audit_spool_bytes gauge\n"
                 "mesatee_audit_spool_bytes %llu\n"
                 "# HELP mesatee_audit_spool_max_bytes The audit spool's cap; past it requests "
                 "whose entry cannot be appended are answered 503.\n"
                 "# TYPE mesatee_audit_spool_max_bytes gauge\n"
                 "mesatee_audit_spool_max_bytes %llu\n"
                 "# HELP mesatee_audit_spooled_total Audit entries written to the local spool "
                 "because the store could not take them.\n"
                 "# TYPE mesatee_audit_spooled_total counter\n"
                 "mesatee_audit_spooled_total %llu\n"
                 "# HELP mesatee_audit_spool_replayed_total Spooled audit entries appended to "
                 "the chain.\n"
                 "# TYPE mesatee_audit_spool_replayed_total counter\n"
                 "mesatee_audit_spool_replayed_total %llu\n"
                 "# HELP mesatee_audit_spool_refused_total Audit spools refused as tampered or "
                 "truncated (alarm: see the log).\n"
                 "# TYPE mesatee_audit_spool_refused_total counter\n"
                 "mesatee_audit_spool_refused_total %llu\n"
                 "# HELP mesatee_audit_spool_full_total Audit entries neither appended nor "
                 "spooled (spool full): their requests were answered 503.\n"
                 "# TYPE mesatee_audit_spool_full_total counter\n"
                 "mesatee_audit_spool_full_total %llu\n"
                 "# HELP mesatee_audit_store_failures_total Direct audit appends the store "
                 "refused (the entries went to the spool); while the spool is in use new "
                 "entries go there without trying the store.\n"
                 "# TYPE mesatee_audit_store_failures_total counter\n"
                 "mesatee_audit_store_failures_total %llu\n"
                 "# HELP mesatee_audit_spool_change_refused_total Changes refused because "
                 "spooled audit entries, which must precede them in the chain, could not be "
                 "appended yet: write requests (answered 503) and steps of the scheduler, "
                 "the remote executors' claims, the KeyStore and the start's recovery "
                 "(retried).\n"
                 "# TYPE mesatee_audit_spool_change_refused_total counter\n"
                 "mesatee_audit_spool_change_refused_total %llu\n",
                 (unsigned long long)entries, (unsigned long long)bytes,
                 (unsigned long long)mt_spool_cap(a->sp),
                 (unsigned long long)atomic_load(&a->spooled),
                 (unsigned long long)atomic_load(&a->replayed),
                 (unsigned long long)atomic_load(&a->refused),
                 (unsigned long long)atomic_load(&a->full),
                 (unsigned long long)atomic_load(&a->store_failed),
                 (unsigned long long)atomic_load(&a->change_refused)) < 0)
        return NULL;
    return out;
}
