/* auth: users (Argon2id password hashes), bearer tokens (32 random bytes,
 * base64url, shown once; only their SHA-256 is stored), expiry and
 * revocation, and the first-start admin bootstrap. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_decode.h"
#include "core_internal.h"
#include "mt_log.h"
#include "mt_pwhash.h"
#include "mt_util.h"

#define TOKEN_BYTES 32
#define TOKEN_CHARS 43 /* base64url without padding of 32 bytes */

/* base64url (RFC 4648 section 5) without padding; out has 4*ceil(n/3)+1 bytes. */
static void b64url(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

static bool token_format_ok(const char *t)
{
    if (!t || strlen(t) != TOKEN_CHARS)
        return false;
    for (const char *p = t; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* A random password of n characters from [A-Za-z0-9] (rejection sampling). */
static mt_status random_password(char *out, size_t n, mt_err *err)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t o = 0;
    while (o < n) {
        uint8_t buf[32];
        mt_status rc = mt_random(buf, sizeof buf, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < sizeof buf && o < n; i++)
            if (buf[i] < 248) /* 248 = 4 * 62 */
                out[o++] = a[buf[i] % 62];
        mt_wipe(buf, sizeof buf);
    }
    out[n] = '\0';
    return MT_OK;
}

/* First start (no users): creates 'admin' with admin_password, or with a
 * generated one written to password_out (default <data_dir>/admin-password,
 * mode 0600) before the account is committed, so a password that was never
 * saved is never the admin's. The file is removed if the commit fails. */
mt_status auth_bootstrap(mt_core *c, const char *admin_password, const char *password_out,
                         mt_err *err)
{
    int64_t n;
    mt_status rc = store_int(c->db, err, &n, NULL, "SELECT count(*) FROM users");
    if (rc || n > 0)
        return rc;
    char generated[22];
    char outbuf[4096];
    const char *pw = admin_password;
    memset(generated, 0, sizeof generated);
    if (!pw) {
        if (!password_out) {
            snprintf(outbuf, sizeof outbuf, "%s/admin-password", c->data_dir);
            password_out = outbuf;
        }
        if ((rc = random_password(generated, 20, err)))
            return rc;
        pw = generated;
    }
    char hash[MT_PWHASH_STRLEN];
    if ((rc = mt_pwhash_hash(pw, hash, err)))
        goto out;
    if (!admin_password) {
        generated[20] = '\n';
        rc = mt_file_write_atomic(password_out, generated, 21, 0600, err);
        generated[20] = '\0';
        if (rc) {
            mt_err_prefix(err, rc, "cannot save the generated admin password: ");
            goto out;
        }
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    /* the account and its audit entry in one transaction */
    if ((rc = core_change_begin(c, c->db, err)))
        goto out;
    char umac[65]; /* over the values inserted, written with them */
    if ((rc = integ_user_mac_values(c, "admin", "admin", hash, now, "active", umac, err)) ||
        (rc = store_run(c->db, err, NULL,
                        "INSERT INTO users(username, role, pwhash, created_at, state, mac) "
                        "VALUES ('admin', 'admin', ?, CAST(? AS INTEGER), 'active', ?)",
                        hash, now, umac)) ||
        (rc = audit_append(c, c->db, "-", "bootstrap: create admin", "user:admin", 0, err)) ||
        (rc = store_commit(c->db, err))) {
        bool stood = mt_db_outcome_unknown(c->db); /* committed, its sync failed */
        store_rollback(c->db);
        if (!admin_password && !stood)
            unlink(password_out);
        else if (!admin_password)
            mt_error("the administrator account 'admin' may have been created (its commit "
                     "failed after it stood): its generated password stays in %s",
                     password_out);
        goto out;
    }
    if (!admin_password)
        mt_info("created the administrator account 'admin'; its generated password is in %s "
                "(mode 0600, readable by this user only): log in, then delete the file",
                password_out);
    else
        mt_info("created the administrator account 'admin'");
out:
    mt_wipe(generated, sizeof generated);
    return rc;
}

mt_status mt_core_authenticate(mt_core *core, const char *token, mt_principal *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (!token || !*token)
        return mt_err_set(err, MT_EAUTH,
                          "missing token: send 'Authorization: Bearer <token>' from "
                          "POST /v1/auth/login");
    if (!token_format_ok(token))
        return mt_err_set(err, MT_EAUTH, "invalid token: log in again");
    char th[65];
    core_sha256_hex(token, strlen(token), th);
    pthread_mutex_lock(&core->mu);
    /* SQLite: one read transaction for the lookup and both MAC checks: one
     * snapshot, and one WAL read lock instead of one per statement.
     * PostgreSQL: none. Its transactions are READ COMMITTED, where every
     * statement takes a snapshot of its own anyway, so BEGIN and COMMIT
     * would only add two round trips to every request (docs/cluster.md
     * "Commits per task") */
    mt_err txe;
    bool txn = mt_db_backend_of(core->db) != MT_DB_PG && !mt_db_in_tx(core->db) &&
               !mt_db_begin(core->db, MT_DB_TX_DEFERRED, &txe);
    /* the token, its user and both rows' MACs in one statement */
    integ_auth_row row;
    mt_status rc = integ_auth_lookup(core, core->db, th, &row, err);
    if (rc == MT_ENOTFOUND)
        rc = mt_err_set(err, MT_EAUTH, "unknown token: log in again");
    else if (rc)
        ;
    /* a disabled or deleted account's tokens stop working at once (they
     * are also revoked; the state is under the user's MAC, checked below) */
    else if (strcmp(row.state, "active") != 0)
        rc = mt_err_set(err, MT_EAUTH, "the account is %s: ask an administrator",
                        !strcmp(row.state, "deleted") ? "deleted" : "disabled");
    else if (row.revoked)
        rc = mt_err_set(err, MT_EAUTH, "token was revoked: log in again");
    else if (row.expires_at <= mt_now())
        rc = mt_err_set(err, MT_EAUTH, "token expired: log in again");
    /* the store is untrusted: the token and the user's role are MACed */
    else if (!(rc = integ_auth_verdict(&row, err))) {
        snprintf(out->username, sizeof out->username, "%s", row.username);
        out->is_admin = !strcmp(row.role, "admin");
        memcpy(out->token_id, th, sizeof th);
    }
    if (txn && mt_db_commit(core->db, &txe))
        mt_db_rollback(core->db);
    pthread_mutex_unlock(&core->mu);
    return rc;
}

static mt_status auth_limits_init(mt_core *c, mt_err *err);

/* Hash of a random password, verified against when the user is unknown so
 * that unknown and known users cost the same. Made once at open. */
mt_status auth_dummy_init(mt_core *c, mt_err *err)
{
    char pw[21];
    mt_status rc = random_password(pw, 20, err);
    if (!rc)
        rc = mt_pwhash_hash(pw, c->dummy_hash, err);
    mt_wipe(pw, sizeof pw);
    if (!rc && !c->limits)
        rc = auth_limits_init(c, err);
    return rc;
}

/* ---- failed-login rate limits ------------------------------------------ */
/* Each key (an account name, a client address) has a leaky bucket of failed
 * logins: a failure adds one, the level drains at `per_s` per second, and
 * while one more failure would pass `burst` every login for that key gets 429
 * with Retry-After, before any password is hashed. A success empties the
 * account's bucket.
 *
 * Two copies of each bucket (docs/cluster.md "Login rate limits"):
 * - the shared one, in the store (table login_limits), counts the failures
 *   of every node on that store. It is kept as a theoretical arrival time
 *   (GCRA): tat_ms (wall clock, ms since the epoch) is when the bucket will
 *   be empty, a failure sets it to max(tat, now) + 1/per_s, and the level at
 *   `now` is (tat - now) * per_s: the same bucket in integers. A failure
 *   updates it by compare-and-swap (read, then UPDATE ... WHERE the row is
 *   still what was read; a new key is INSERT OR IGNORE), so nodes writing
 *   at once never lose a failure and take no store-wide lock. A success
 *   sets tat_ms = 0 and clear_ms = now: the clear marker, so the other nodes
 *   also empty their own local copies.
 * - the local one, in memory (fixed-size table; a new key takes a free slot
 *   or the one with the lowest level), counts this node's own failures. It
 *   is the front: while it, or the shared level read less than
 *   RL_RECHECK_MS ago, refuses, the store is not read, so a flood of refused
 *   attempts costs one store read per key and second. And it keeps today's
 *   per-node limit when the store's rows are gone.
 * The decision takes the higher of the two levels. Rows are MACed under the
 * integrity key ("mesatee-login-limit/v1" over kind, key, tat_ms, clear_ms):
 * a row that fails the check is ignored as if absent, so a host that writes
 * rows cannot lock anyone out; one that deletes or edits rows weakens the
 * limit to the per-node one (docs/threat-model.md). Rows whose bucket is
 * empty and whose clear marker is older than RL_KEEP_MS are deleted (each
 * node at most every RL_PRUNE_MS). */

#define RL_SLOTS 1024
#define RL_ACCOUNT_BURST 5.0
#define RL_ACCOUNT_DRAIN (1.0 / 12.0) /* 5 a minute */
#define RL_SOURCE_BURST 20.0
#define RL_SOURCE_DRAIN (1.0 / 3.0) /* 20 a minute */
#define RL_RECHECK_MS 1000         /* a refusal read from the store is reused this long */
#define RL_KEEP_MS 120000          /* clear markers outlive every local bucket (60 s) */
#define RL_PRUNE_MS 10000          /* a node deletes empty rows at most this often */
#define RL_CAS_TRIES 16
#define RL_MAC_DOMAIN "mesatee-login-limit/v1"

typedef struct rl_slot {
    char key[72];
    double level;         /* this node's own failures */
    int64_t at_ms;        /* monotonic */
    int64_t fail_wall_ms; /* wall clock of this node's last failure in level */
    int64_t shared_tat;   /* the store's tat_ms as last read or written (0: none) */
    int64_t read_ms;      /* monotonic: when shared_tat was learnt (0: never) */
} rl_slot;

typedef struct rl_table {
    char kind; /* 'a' account, 's' source address: login_limits.kind */
    double burst, drain;
    int64_t interval_ms; /* 1000 / drain: what one failure adds to tat_ms */
    rl_slot s[RL_SLOTS];
} rl_table;

struct auth_limits {
    pthread_mutex_t mu;
    rl_table account, source;
    int64_t pruned_ms; /* monotonic: the last prune of login_limits */
};

static int64_t rl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t rl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double rl_level(const rl_table *t, const rl_slot *e, int64_t now)
{
    double l = e->level - t->drain * (double)(now - e->at_ms) / 1000.0;
    return l > 0 ? l : 0;
}

static double rl_shared_level(const rl_table *t, const rl_slot *e, int64_t wall)
{
    return e->shared_tat > wall ? (double)(e->shared_tat - wall) / (double)t->interval_ms : 0;
}

/* The slot of key, or NULL when absent and !create. */
static rl_slot *rl_find(rl_table *t, const char *key, bool create, int64_t now, int64_t wall)
{
    rl_slot *victim = NULL;
    double low = 0;
    for (size_t i = 0; i < RL_SLOTS; i++) {
        rl_slot *e = &t->s[i];
        if (e->key[0] && !strcmp(e->key, key))
            return e;
        double l = -1;
        if (e->key[0]) {
            double sl = rl_shared_level(t, e, wall);
            l = rl_level(t, e, now);
            l = sl > l ? sl : l;
        }
        if (!victim || l < low) {
            victim = e;
            low = l;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->at_ms = now;
    return victim;
}

/* Seconds until one more failure for the slot fits, by the higher of its
 * local and shared levels; 0 when it fits now (or e is NULL). */
static unsigned rl_wait(const rl_table *t, const rl_slot *e, int64_t now, int64_t wall)
{
    if (!e)
        return 0;
    double lvl = rl_level(t, e, now), sl = rl_shared_level(t, e, wall);
    double over = (sl > lvl ? sl : lvl) + 1.0 - t->burst;
    if (over <= 0)
        return 0;
    return (unsigned)(over / t->drain) + 1;
}

/* The per-address key of a client: its IPv4 address, or its IPv6 /64 (one
 * host usually holds a whole /64). */
static void rl_source_key(const char *peer, char *out, size_t cap)
{
    struct in6_addr a6;
    if (peer && strchr(peer, ':') && inet_pton(AF_INET6, peer, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        char t[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a6, t, sizeof t)) {
            snprintf(out, cap, "%s/64", t);
            return;
        }
    }
    snprintf(out, cap, "%s", peer && *peer ? peer : "-");
}

/* ---- the shared copy (login_limits) ---- */

static mt_status rl_mac(mt_core *c, char kind, const char *key, int64_t tat, int64_t clear,
                        char mac[65], mt_err *err)
{
    char text[160];
    /* the key last: the fields before it hold no '|' */
    snprintf(text, sizeof text, "%c|%lld|%lld|%s", kind, (long long)tat, (long long)clear, key);
    return integ_mac_text(c->integ_key, RL_MAC_DOMAIN, text, mac, err);
}

/* Reads the shared row of (kind, key): *found only when it exists and its MAC
 * holds; *exists when a row exists at all (raw values in *raw_tat and *raw_clear
 * for the compare-and-swap). Called under core->mu. */
static mt_status rl_row_read(mt_core *c, mt_db *db, char kind, const char *key, bool *found,
                             int64_t *tat, int64_t *clear, bool *exists, int64_t *raw_tat,
                             int64_t *raw_clear, mt_err *err)
{
    *found = *exists = false;
    *tat = *clear = *raw_tat = *raw_clear = 0;
    mt_db_stmt *st;
    mt_status rc = mt_db_prepare(db,
                                 "SELECT tat_ms, clear_ms, mac FROM login_limits "
                                 "WHERE kind = ? AND lkey = ?",
                                 &st, err);
    if (rc)
        return rc;
    char k[2] = {kind, '\0'}, stored[80] = "", mac[65];
    mt_db_bind_text(st, 1, k);
    mt_db_bind_text(st, 2, key);
    if (mt_db_step(st, &rc, err) == MT_DB_ROW) {
        *exists = true;
        *raw_tat = mt_db_col_int64(st, 0);
        *raw_clear = mt_db_col_int64(st, 1);
        if (!mt_db_col_null(st, 2))
            snprintf(stored, sizeof stored, "%s", mt_db_col_text(st, 2));
    }
    mt_db_finalize(st);
    if (rc || !*exists)
        return rc;
    if ((rc = rl_mac(c, kind, key, *raw_tat, *raw_clear, mac, err)))
        return rc;
    if (integ_hex_equal(mac, stored)) {
        *found = true;
        *tat = *raw_tat;
        *clear = *raw_clear;
    } else {
        mt_warn("login limits: a login_limits row fails its MAC check and is ignored "
                "(the store was modified outside mesatee)");
    }
    return MT_OK;
}

/* Adds one failure to the shared bucket of (kind, key) by compare-and-swap;
 * *tat_out: its new tat_ms. Called under core->mu, outside a transaction. */
static mt_status rl_row_fail(mt_core *c, mt_db *db, const rl_table *t, const char *key,
                             int64_t wall, int64_t *tat_out, mt_err *err)
{
    char k[2] = {t->kind, '\0'};
    for (int i = 0; i < RL_CAS_TRIES; i++) {
        bool found, exists;
        int64_t tat, clear, raw_tat, raw_clear;
        mt_status rc = rl_row_read(c, db, t->kind, key, &found, &tat, &clear, &exists, &raw_tat,
                                   &raw_clear, err);
        if (rc)
            return rc;
        int64_t ntat = (tat > wall ? tat : wall) + t->interval_ms;
        char mac[65];
        if ((rc = rl_mac(c, t->kind, key, ntat, clear, mac, err)))
            return rc;
        mt_db_stmt *st;
        if ((rc = mt_db_prepare(db,
                                exists ? "UPDATE login_limits SET tat_ms = ?, clear_ms = ?, mac = ? "
                                         "WHERE kind = ? AND lkey = ? AND tat_ms = ? AND "
                                         "clear_ms = ?"
                                       : "INSERT OR IGNORE INTO login_limits(tat_ms, clear_ms, "
                                         "mac, kind, lkey) VALUES (?, ?, ?, ?, ?)",
                                &st, err)))
            return rc;
        mt_db_bind_int64(st, 1, ntat);
        mt_db_bind_int64(st, 2, clear);
        mt_db_bind_text(st, 3, mac);
        mt_db_bind_text(st, 4, k);
        mt_db_bind_text(st, 5, key);
        if (exists) {
            mt_db_bind_int64(st, 6, raw_tat);
            mt_db_bind_int64(st, 7, raw_clear);
        }
        mt_db_step(st, &rc, err);
        int64_t n = rc ? 0 : mt_db_changes(db);
        mt_db_finalize(st);
        if (rc)
            return rc;
        if (n == 1) {
            *tat_out = ntat;
            return MT_OK;
        }
        /* another node (or thread) changed the row in between: read again */
    }
    return mt_err_set(err, MT_EUNAVAIL,
                      "login limits: the shared counter kept changing; retry later");
}

/* Empties the shared account bucket and leaves the clear marker. */
static mt_status rl_row_clear(mt_core *c, mt_db *db, const char *key, int64_t wall, mt_err *err)
{
    char mac[65];
    mt_status rc = rl_mac(c, 'a', key, 0, wall, mac, err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(db,
                            "UPDATE login_limits SET tat_ms = 0, clear_ms = ?, mac = ? "
                            "WHERE kind = 'a' AND lkey = ?",
                            &st, err)))
        return rc;
    mt_db_bind_int64(st, 1, wall);
    mt_db_bind_text(st, 2, mac);
    mt_db_bind_text(st, 3, key);
    mt_db_step(st, &rc, err);
    mt_db_finalize(st);
    return rc;
}

/* Takes what the store says about key into its slot: the shared level, and
 * a clear newer than this node's last failure empties the local level. A
 * slot is made only when the shared level is above zero. */
static void rl_learn(rl_table *t, const char *key, bool found, int64_t tat, int64_t clear,
                     int64_t now, int64_t wall)
{
    rl_slot *e = rl_find(t, key, found && tat > wall, now, wall);
    if (!e)
        return;
    e->shared_tat = found ? tat : 0;
    e->read_ms = now;
    if (found && clear && clear >= e->fail_wall_ms) {
        e->level = 0;
        e->fail_wall_ms = 0;
    }
}

/* Refuses (MT_EQUOTA, Retry-After set) while the account key or the source
 * address is over its failed-attempt limit; `what` names the attempts in the
 * message ("failed logins"). The store is read unless the local copies
 * refuse on their own (see above). */
static mt_status rl_check(core_ctx *x, const char *akey, const char *src, const char *what)
{
    mt_core *core = x->core;
    struct auth_limits *L = core->limits;
    int64_t now = rl_now_ms(), wall = rl_wall_ms();
    pthread_mutex_lock(&L->mu);
    rl_slot *ea = rl_find(&L->account, akey, false, now, wall);
    rl_slot *es = rl_find(&L->source, src, false, now, wall);
    unsigned wait_a = rl_wait(&L->account, ea, now, wall);
    unsigned wait_s = rl_wait(&L->source, es, now, wall);
    bool fresh = (wait_a && ea->read_ms && now - ea->read_ms < RL_RECHECK_MS) ||
                 (wait_s && es->read_ms && now - es->read_ms < RL_RECHECK_MS);
    pthread_mutex_unlock(&L->mu);
    if (!fresh) {
        bool fa, fs, xa, xs;
        int64_t ta, ca, ts, cs, r1, r2;
        pthread_mutex_lock(&core->mu);
        mt_status rc = rl_row_read(core, x->db, 'a', akey, &fa, &ta, &ca, &xa, &r1, &r2, x->err);
        if (!rc)
            rc = rl_row_read(core, x->db, 's', src, &fs, &ts, &cs, &xs, &r1, &r2, x->err);
        pthread_mutex_unlock(&core->mu);
        if (rc)
            return rc;
        now = rl_now_ms();
        wall = rl_wall_ms();
        pthread_mutex_lock(&L->mu);
        rl_learn(&L->account, akey, fa, ta, ca, now, wall);
        rl_learn(&L->source, src, fs, ts, cs, now, wall);
        wait_a = rl_wait(&L->account, rl_find(&L->account, akey, false, now, wall), now, wall);
        wait_s = rl_wait(&L->source, rl_find(&L->source, src, false, now, wall), now, wall);
        pthread_mutex_unlock(&L->mu);
    }
    if (!wait_a && !wait_s)
        return MT_OK;
    x->resp->retry_after_s = wait_a > wait_s ? wait_a : wait_s;
    return mt_err_set(x->err, MT_EQUOTA, "too many %s for this %s; retry after %u s", what,
                      wait_a >= wait_s ? "account" : "address", x->resp->retry_after_s);
}

/* Counts a failed attempt for the account key and the source address, in
 * memory and in the store. A store that cannot be written leaves the local
 * count (logged; the attempt was refused anyway). */
static void rl_failed(core_ctx *x, const char *akey, const char *src)
{
    mt_core *core = x->core;
    struct auth_limits *L = core->limits;
    int64_t now = rl_now_ms(), wall = rl_wall_ms();
    bool prune = false;
    pthread_mutex_lock(&L->mu);
    rl_table *tabs[2] = {&L->account, &L->source};
    const char *keys[2] = {akey, src};
    for (int i = 0; i < 2; i++) {
        rl_slot *e = rl_find(tabs[i], keys[i], true, now, wall);
        e->level = rl_level(tabs[i], e, now) + 1.0;
        e->at_ms = now;
        e->fail_wall_ms = wall;
    }
    if (!L->pruned_ms || now - L->pruned_ms >= RL_PRUNE_MS) {
        L->pruned_ms = now;
        prune = true;
    }
    pthread_mutex_unlock(&L->mu);
    mt_err e;
    int64_t tat[2] = {0, 0};
    mt_status rc = MT_OK;
    pthread_mutex_lock(&core->mu);
    for (int i = 0; i < 2 && !rc; i++)
        rc = rl_row_fail(core, x->db, tabs[i], keys[i], wall, &tat[i], &e);
    if (!rc && prune) {
        char before_tat[24], before_clear[24];
        snprintf(before_tat, sizeof before_tat, "%lld", (long long)(wall - RL_PRUNE_MS));
        snprintf(before_clear, sizeof before_clear, "%lld", (long long)(wall - RL_KEEP_MS));
        rc = store_run(x->db, &e, NULL,
                       "DELETE FROM login_limits WHERE tat_ms < CAST(? AS INTEGER) AND "
                       "clear_ms < CAST(? AS INTEGER)",
                       before_tat, before_clear);
    }
    pthread_mutex_unlock(&core->mu);
    if (rc)
        mt_warn("login limits: cannot update the shared failed-login count (this node's own "
                "count still applies): %s",
                e.msg);
    now = rl_now_ms();
    pthread_mutex_lock(&L->mu);
    for (int i = 0; i < 2; i++) {
        rl_slot *s = tat[i] ? rl_find(tabs[i], keys[i], true, now, wall) : NULL;
        if (s && tat[i] > s->shared_tat) {
            s->shared_tat = tat[i];
            s->read_ms = now;
        }
    }
    pthread_mutex_unlock(&L->mu);
}

/* A success for the account: its local and shared buckets are emptied (the
 * other nodes empty theirs when they read the clear marker). */
static void rl_succeeded(mt_core *c, mt_db *db, const char *akey)
{
    struct auth_limits *L = c->limits;
    int64_t now = rl_now_ms(), wall = rl_wall_ms();
    pthread_mutex_lock(&L->mu);
    rl_slot *s = rl_find(&L->account, akey, false, now, wall);
    if (s) {
        s->level = 0;
        s->fail_wall_ms = 0;
        s->shared_tat = 0;
        s->read_ms = now;
    }
    pthread_mutex_unlock(&L->mu);
    mt_err e;
    pthread_mutex_lock(&c->mu);
    mt_status rc = rl_row_clear(c, db, akey, wall, &e);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        mt_warn("login limits: cannot clear the shared failed-login count: %s", e.msg);
}

static void rl_table_init(rl_table *t, char kind, double burst, double drain)
{
    t->kind = kind;
    t->burst = burst;
    t->drain = drain;
    t->interval_ms = (int64_t)(1000.0 / drain + 0.5);
}

static mt_status auth_limits_init(mt_core *c, mt_err *err)
{
    struct auth_limits *l = calloc(1, sizeof *l);
    if (!l || pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    rl_table_init(&l->account, 'a', RL_ACCOUNT_BURST, RL_ACCOUNT_DRAIN);
    rl_table_init(&l->source, 's', RL_SOURCE_BURST, RL_SOURCE_DRAIN);
    c->limits = l;
    return MT_OK;
}

void auth_limits_free(mt_core *c)
{
    if (!c || !c->limits)
        return;
    pthread_mutex_destroy(&c->limits->mu);
    free(c->limits);
    c->limits = NULL;
}

/* Runs on one of the gateway's worker threads (mt_core_route_is_slow): the
 * route has no transaction of its own; the store lock is taken to read the
 * hash and to write the token, never while Argon2id runs. */
mt_status auth_login(core_ctx *x)
{
    mt_core *core = x->core;
    dec_limits lim = {core->max_json_bytes, core->max_json_depth};
    dec_login d;
    mt_status rc = dec_login_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    char stored[MT_PWHASH_STRLEN] = "";
    char role[16] = "", state[16] = "";
    bool found = false;
    bool valid_name = dec_username_valid(d.username);
    char src[INET6_ADDRSTRLEN + 8];
    rl_source_key(x->req->peer, src, sizeof src);
    char akey[72];
    snprintf(akey, sizeof akey, "%.64s", valid_name ? d.username : "-");
    if (valid_name)
        core_set_object(x, "user", d.username);
    if ((rc = rl_check(x, akey, src, "failed logins")))
        goto out;
    if (valid_name) {
        pthread_mutex_lock(&core->mu);
        /* the password hash, role and state the TEE wrote: from the read
         * the user's MAC is checked on (a hash the TEE did not write is
         * never verified against) */
        rc = integ_user_load(x->core, x->db, d.username, stored, sizeof stored, role, state,
                             x->err);
        if (rc == MT_ENOTFOUND) {
            mt_err_clear(x->err);
            rc = MT_OK;
        } else if (!rc)
            found = true;
        pthread_mutex_unlock(&core->mu);
        if (rc)
            goto out;
    }
    /* dummy_hash is written once at open, before any thread runs. */
    bool ok = mt_pwhash_verify(found ? stored : core->dummy_hash, d.password);
    if (!found || !ok)
        rl_failed(x, akey, src);
    else
        rl_succeeded(core, x->db, akey);
    if (!found || !ok) {
        rc = mt_err_set(x->err, MT_EAUTH, "wrong username or password");
        goto out;
    }
    /* told only to whoever knows the password (a deleted account has none) */
    if (strcmp(state, "active") != 0) {
        rc = mt_err_set(x->err, MT_EAUTH, "the account is %s: ask an administrator", state);
        goto out;
    }
    uint8_t raw[TOKEN_BYTES];
    char token[TOKEN_CHARS + 2], th[65];
    if ((rc = mt_random(raw, sizeof raw, x->err)))
        goto out;
    b64url(raw, sizeof raw, token);
    mt_wipe(raw, sizeof raw);
    core_sha256_hex(token, strlen(token), th);
    int64_t now = mt_now(), exp = now + core->token_ttl;
    char snow[24], sexp[24], tmac[65];
    snprintf(snow, sizeof snow, "%lld", (long long)now);
    snprintf(sexp, sizeof sexp, "%lld", (long long)exp);
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        if ((rc = store_run(x->db, x->err, NULL,
                            "DELETE FROM tokens WHERE expires_at < CAST(? AS INTEGER) - 86400",
                            snow)) ||
            (rc = integ_token_mac_values(x->core, th, d.username, snow, sexp, "0", tmac,
                                         x->err)) ||
            (rc = store_run(x->db, x->err, NULL,
                            "INSERT INTO tokens(token_hash, username, created_at, expires_at, "
                            "revoked, mac) VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), "
                            "0, ?)",
                            th, d.username, snow, sexp, tmac)) ||
            /* the audit entry in the change's own transaction (audit.c) */
            (rc = audit_append(x->core, x->db, "-", x->resp->route, x->resp->object, 200,
                               x->err)) ||
            (rc = store_commit(x->db, x->err)))
            store_rollback(x->db);
        else
            x->resp->audited = true;
    }
    pthread_mutex_unlock(&core->mu);
    if (rc) {
        mt_wipe(token, sizeof token);
        goto out;
    }
    json_t *body = json_pack("{s:s, s:o, s:s, s:s}", "token", token, "expires_at",
                             core_time_json(exp), "username", d.username, "role", role);
    mt_wipe(token, sizeof token);
    if (!body) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    core_json_response(x, 200, body);
out:
    mt_wipe(stored, sizeof stored);
    dec_login_free(&d);
    return rc;
}

mt_status auth_logout(core_ctx *x)
{
    core_set_object(x, "user", x->who);
    /* the verified token row, revoked, resealed from the verified values */
    mt_status rc =
        integ_token_revoke(x->core, x->db, x->req->who->token_id, x->who, x->err);
    if (rc)
        return rc;
    core_json_response(x, 200, json_pack("{s:b}", "revoked", 1));
    return MT_OK;
}

/* Runs on one of the gateway's worker threads like auth_login: hashes the
 * password first, then checks and inserts in one write transaction. */
mt_status auth_user_create(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_user_new d;
    mt_status rc = dec_user_new_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    core_set_object(x, "user", d.username);
    bool exists;
    char hash[MT_PWHASH_STRLEN] = "";
    /* "me" names the caller in /v1/users/me/... */
    if (!strcmp(d.username, "me")) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'username': 'me' is reserved");
        goto out;
    }
    if ((rc = mt_pwhash_hash(d.password, hash, x->err)))
        goto out;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&x->core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        int64_t any;
        if ((rc = store_int(x->db, x->err, &any, &exists,
                            "SELECT 1 FROM users WHERE username = ?", d.username)) == MT_OK &&
            exists)
            rc = mt_err_set(x->err, MT_ECONFLICT,
                            "user '%s' already exists (names of deleted users are not reused)",
                            d.username);
        char umac[65]; /* over the values inserted, written with them */
        if (rc == MT_OK)
            rc = integ_user_mac_values(x->core, d.username, d.role, hash, now, "active", umac,
                                       x->err);
        if (rc == MT_OK)
            rc = store_run(x->db, x->err, NULL,
                           "INSERT INTO users(username, role, pwhash, created_at, state, mac) "
                           "VALUES (?, ?, ?, CAST(? AS INTEGER), 'active', ?)",
                           d.username, d.role, hash, now, umac);
        rc = core_audit_commit(x, 201, rc);
    }
    pthread_mutex_unlock(&x->core->mu);
    if (rc)
        goto out;
    core_json_response(x, 201, json_pack("{s:s, s:s}", "username", d.username, "role", d.role));
out:
    mt_wipe(hash, sizeof hash);
    dec_user_new_free(&d);
    return rc;
}

mt_status auth_user_list(core_ctx *x)
{
    dec_page pg;
    mt_status rc = dec_page_query_parse(x->req->query, PAGE_USERS, &pg, x->err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    rc = mt_db_prepare(x->db,
                       "SELECT username, role, created_at, state FROM users WHERE (?1 = 0 OR "
                       "username > ?2) ORDER BY username LIMIT ?3",
                       &st, x->err);
    if (rc)
        return rc;
    mt_db_bind_int64(st, 1, pg.has_pos ? 1 : 0);
    mt_db_bind_text(st, 2, pg.key);
    mt_db_bind_int64(st, 3, pg.limit + 1);
    json_t *arr = json_array();
    int64_t n = 0;
    char cur[DEC_CURSOR_MAX + 1] = "";
    while (!rc && mt_db_step(st, &rc, x->err) == MT_DB_ROW) {
        if (n++ == pg.limit) { /* a row beyond the page: the cursor is the last shown */
            json_t *last = json_array_get(arr, json_array_size(arr) - 1);
            page_cursor_make(PAGE_USERS, 0, 0, json_string_value(json_object_get(last, "username")),
                             cur, sizeof cur);
            break;
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s}", "username",
                                             mt_db_col_text(st, 0), "role", mt_db_col_text(st, 1),
                                             "created_at", core_time_json(mt_db_col_int64(st, 2)),
                                             "state", mt_db_col_text(st, 3)));
    }
    mt_db_finalize(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    core_json_response(x, 200, json_pack("{s:o, s:o}", "users", arr, "next_cursor",
                                          cur[0] ? json_string(cur) : json_null()));
    return MT_OK;
}

mt_status auth_user_me(core_ctx *x)
{
    core_set_object(x, "user", x->who);
    core_json_response(x, 200,
                       json_pack("{s:s, s:s, s:s}", "username", x->who, "role",
                                 x->admin ? "admin" : "user", "state", "active"));
    return MT_OK;
}

mt_status auth_user_revoke(core_ctx *x)
{
    core_set_object(x, "user", x->id);
    bool exists;
    mt_status rc = core_user_exists(x->db, x->id, &exists, x->err);
    if (rc)
        return rc;
    if (!exists)
        return mt_err_set(x->err, MT_ENOTFOUND, "no user '%s'", x->id);
    int n = 0;
    if ((rc = integ_tokens_revoke_user(x->core, x->db, x->id, NULL, &n, x->err)))
        return rc;
    core_json_response(x, 200, json_pack("{s:i}", "revoked", n));
    return MT_OK;
}

/* ---- user lifecycle: passwords (issue 9) ------------------------------- */

void auth_limits_forget(mt_core *c, mt_db *db, const char *username)
{
    char akey[72];
    snprintf(akey, sizeof akey, "%.64s", username);
    rl_succeeded(c, db, akey);
}

/* Stores hash as user's password (not for deleted accounts), reseals the row,
 * revokes the user's tokens except keep_token (NULL: all of them), appends
 * the audit entry: one transaction under the store lock. *revoked: tokens
 * revoked. MT_ENOTFOUND when no such active user. */
static mt_status set_password(core_ctx *x, const char *user, const char *hash,
                              const char *keep_token, int *revoked)
{
    mt_status rc;
    int n = 0;
    *revoked = 0;
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&x->core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        /* the verified row (not deleted), its new hash, resealed from the
         * verified values */
        char role[16], state[16];
        rc = integ_user_load(x->core, x->db, user, NULL, 0, role, state, x->err);
        if (rc == MT_ENOTFOUND || (!rc && !strcmp(state, "deleted")))
            rc = mt_err_set(x->err, MT_ENOTFOUND, "no user '%s'", user);
        if (!rc)
            rc = integ_user_rewrite(x->core, x->db, user, hash, NULL, x->err);
        if (!rc)
            rc = integ_tokens_revoke_user(x->core, x->db, user, keep_token, revoked, x->err);
        (void)n;
        rc = core_audit_commit(x, 200, rc);
    }
    pthread_mutex_unlock(&x->core->mu);
    return rc;
}

/* POST /v1/users/me/password: a slow route (two Argon2id runs outside the
 * store lock). The old password is checked under the same failed-login
 * limits as a login (a stolen token must not become a password oracle);
 * the caller's other tokens are revoked, the one in use stays. */
mt_status auth_password_self(core_ctx *x)
{
    mt_core *core = x->core;
    dec_limits lim = {core->max_json_bytes, core->max_json_depth};
    dec_password d;
    mt_status rc = dec_password_parse(x->req->body, x->req->body_len, &lim, true, &d, x->err);
    if (rc)
        return rc;
    core_set_object(x, "user", x->who);
    char stored[MT_PWHASH_STRLEN] = "", hash[MT_PWHASH_STRLEN] = "";
    char src[INET6_ADDRSTRLEN + 8], akey[72];
    rl_source_key(x->req->peer, src, sizeof src);
    snprintf(akey, sizeof akey, "%.64s", x->who);
    if ((rc = rl_check(x, akey, src, "wrong passwords")))
        goto out;
    bool found = false;
    pthread_mutex_lock(&core->mu);
    char ustate[16] = "";
    rc = integ_user_load(core, x->db, x->who, stored, sizeof stored, NULL, ustate, x->err);
    if (rc == MT_ENOTFOUND) {
        mt_err_clear(x->err);
        rc = MT_OK;
    } else if (!rc)
        found = !strcmp(ustate, "active");
    pthread_mutex_unlock(&core->mu);
    if (rc)
        goto out;
    bool ok = found && mt_pwhash_verify(stored, d.old_password);
    if (!ok)
        rl_failed(x, akey, src);
    if (!ok) {
        rc = mt_err_set(x->err, MT_EPERM, "field 'old_password': wrong password");
        goto out;
    }
    int revoked;
    if ((rc = mt_pwhash_hash(d.password, hash, x->err)) ||
        (rc = set_password(x, x->who, hash, x->req->who->token_id, &revoked)))
        goto out;
    auth_limits_forget(core, x->db, x->who);
    core_json_response(x, 200,
                       json_pack("{s:s, s:b, s:i}", "username", x->who, "password_changed", 1,
                                 "tokens_revoked", revoked));
out:
    mt_wipe(stored, sizeof stored);
    mt_wipe(hash, sizeof hash);
    dec_password_free(&d);
    return rc;
}

/* POST /v1/users/{name}/password (admin): a slow route. Sets a new password,
 * revokes every token of the user and clears the account's failed-login
 * count. */
mt_status auth_password_reset(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_password d;
    mt_status rc = dec_password_parse(x->req->body, x->req->body_len, &lim, false, &d, x->err);
    if (rc)
        return rc;
    core_set_object(x, "user", x->id);
    char hash[MT_PWHASH_STRLEN] = "";
    int revoked;
    if ((rc = mt_pwhash_hash(d.password, hash, x->err)) ||
        (rc = set_password(x, x->id, hash, NULL, &revoked)))
        goto out;
    auth_limits_forget(x->core, x->db, x->id);
    core_json_response(x, 200,
                       json_pack("{s:s, s:b, s:i}", "username", x->id, "password_reset", 1,
                                 "tokens_revoked", revoked));
out:
    mt_wipe(hash, sizeof hash);
    dec_password_free(&d);
    return rc;
}
