/* audit: the audit log, hash-chained and keyed. Entry n stores
 *   hash_n = SHA-256(prev_hash_hex "\n" seq "\n" time "\n" actor "\n" action
 *                    "\n" object "\n" status)       (hex)
 *   mac_n  = HMAC-SHA256(audit_key, "mesatee-audit/v1" NUL || u32be(64) || hash_n)
 * with prev_hash of the first entry = 64 zeros and audit_key a key of the
 * TEE provider (mt_tee_platform_key "audit-chain/v1") the host never sees. The
 * store is untrusted (store.c): whoever writes the database can recompute
 * the hash chain after an edit, but not the MACs.
 *
 * Appends run inside the transaction of the change they record
 * (mt_core_handle for requests, sched.c for the scheduler), so no committed
 * change is left without its entry. Such a transaction begins with
 * core_change_begin (or after core_aspool_before_change): entries still
 * waiting in the audit spool are appended first (audit_spool.c "Changes").
 *
 * Checkpoints (GET /v1/audit/checkpoint): the daemon verifies the whole
 * chain with its MACs, then signs {entries, head hash, time, level} with the
 * provider's signing key (mt_tee_sign: the platform key at level soft).
 * Auditors keep them; `mesatee audit verify --checkpoint FILE` detects a
 * truncation or rewrite of the first `entries` entries, offline (hash chain
 * + signature, --data-dir) or against the running daemon (a fresh
 * checkpoint for the same count must have the same head).
 *
 * Cluster key: every checkpoint is also signed with an Ed25519 key whose
 * seed is HMAC-SHA256(audit_key, "mesatee-audit-cluster-key/v1"), so every
 * node holding the cluster's audit_key (the KeyStore node and the nodes that
 * joined it: docs/cluster.md) signs with the same key and an auditor pins
 * one key id for the whole cluster. The node's own key endorses it
 * ("endorsement": the node key's signature over
 * "mesatee-audit-cluster-key/v1\n<cluster_key_id>\n"), so a verifier that
 * trusts one attested node learns the cluster key from it.
 *
 * Retention (POST /v1/audit/prune, `mesatee audit prune`): the daemon
 * deletes the entries before a sequence number once the operator shows an
 * export that covers them (its last entry's hash must be this log's), and
 * records the anchor, the seq and hash of the last deleted entry, in
 * audit_anchor with
 *   anchor_mac = HMAC-SHA256(audit_key, "mesatee-audit-anchor/v1" NUL ||
 *                            field(seq "\n" hash))
 * The chain then starts at the anchor: entry anchor+1's prev_hash is the
 * anchor's hash. Only the daemon holds audit_key, so prune is a request to
 * it, not an offline edit; a forged or moved anchor fails its MAC (daemon)
 * or breaks the chain or a held checkpoint/export (offline). */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "core_internal.h"
#include "mt_json.h"
#include "mt_log.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define CHECKPOINT_FORMAT "mesatee-audit-checkpoint/v1"
#define CHECKPOINT_MAX 8192
#define CLUSTER_KEY_LABEL "mesatee-audit-cluster-key/v1"

static void entry_hash(const char *prev, int64_t seq, int64_t time, const char *actor,
                       const char *action, const char *object, int64_t status, char out[65])
{
    size_t n = strlen(prev) + strlen(actor) + strlen(action) + strlen(object) + 96;
    char *buf = malloc(n);
    if (!buf)
        abort(); /* a tiny allocation: nothing sensible can continue */
    int len = snprintf(buf, n, "%s\n%lld\n%lld\n%s\n%s\n%s\n%lld", prev, (long long)seq,
                       (long long)time, actor, action, object, (long long)status);
    core_sha256_hex(buf, (size_t)len, out);
    free(buf);
}

void audit_entry_hash(const char *prev, int64_t seq, int64_t time, const char *actor,
                      const char *action, const char *object, int64_t status, char out[65])
{
    entry_hash(prev, seq, time, actor, action, object, status, out);
}

static mt_status entry_mac(const mt_core *c, const char *hash, char out[65], mt_err *err)
{
    return integ_mac_text(c->audit_key, "mesatee-audit/v1", hash, out, err);
}

/* Strips control characters so one entry is one line of text. */
static void clean(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in ? in : "-"; *p && o + 1 < cap; p++)
        out[o++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
    out[o] = '\0';
    if (o == 0 && cap > 1) {
        out[0] = '-';
        out[1] = '\0';
    }
}

mt_status audit_append(mt_core *c, mt_db *mdb, const char *actor, const char *action,
                       const char *object, int status, mt_err *err)
{
    return audit_append_at(c, mdb, 0, actor, action, object, status, err);
}

#define HEAD_SQL "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"

/* The chain head this thread's transaction appended last (audit_append_at):
 * a connection is used by one thread at a time, a transaction begins and
 * ends on one thread. */
static _Thread_local struct {
    const mt_db *db;
    uint64_t tx; /* mt_db_tx_serial, 0: none */
    int64_t seq;
    char hash[65];
} head_cache;

/* time 0: now; else the time the entry records (an entry from the audit
 * spool keeps the time its request was answered at, audit_spool.c). */
mt_status audit_append_at(mt_core *c, mt_db *mdb, int64_t time, const char *actor,
                          const char *action, const char *object, int status, mt_err *err)
{
    char a[80], ac[160], ob[128];
    clean(actor, a, sizeof a);
    clean(action, ac, sizeof ac);
    clean(object, ob, sizeof ob);
    mt_db_stmt *st;
    char prev[65] = ZERO_HASH;
    int64_t seq = 1;
    mt_status rc = MT_OK;
    /* The head this transaction's own last append left (one round trip
     * less for a second entry: a claim riding on an invoke or outcome, a
     * group-commit batch). It cannot be stale: every appender holds the
     * writer lock (SQLite's write lock; PostgreSQL's advisory lock of
     * MT_DB_TX_IMMEDIATE / mt_db_writer_lock) from before its head read to
     * its commit, so after our append no one else appends until we end;
     * mt_db_tx_serial changes at commit, rollback and ROLLBACK TO (which may
     * undo our entry). The hash is our own, computed here; like a head read
     * from the store it is not re-checked (see below). */
    uint64_t tx = mt_db_tx_serial(mdb);
    bool row = false;
    int64_t head = 0;
    /* The head an IMMEDIATE transaction read right after taking its writer
     * lock, in its first round trip (mt_db_set_prefetch; PostgreSQL): as
     * good as reading it now, for the same reason, until our own first
     * append (taken once, so the cache above serves the next ones). */
    mt_db_set_prefetch(mdb, HEAD_SQL);
    if (tx && head_cache.tx == tx && head_cache.db == mdb) {
        seq = head_cache.seq + 1;
        memcpy(prev, head_cache.hash, sizeof prev);
        /* a prefetch nobody took predates our own append: dropped, so that
         * no later append (after a ROLLBACK TO changed the serial) uses it */
        bool r;
        int64_t i;
        char t[2];
        (void)mt_db_prefetch_take(mdb, &r, &i, t, sizeof t);
    } else if (mt_db_prefetch_take(mdb, &row, &head, prev, sizeof prev)) {
        if (row)
            seq = head + 1;
        else
            snprintf(prev, sizeof prev, "%s", ZERO_HASH);
    } else {
        if ((rc = core_stmt_get(NULL, mdb, HEAD_SQL, &st, err)))
            return rc;
        int s = mt_db_step(st, &rc, err);
        if (s == MT_DB_ROW) {
            seq = mt_db_col_int64(st, 0) + 1;
            snprintf(prev, sizeof prev, "%s", mt_db_col_text(st, 1));
        }
        core_stmt_put(NULL, st);
        if (rc)
            return rc;
    }
    head_cache.tx = 0;
    /* The head is not re-checked here: every entry's own MAC is checked by
     * chain_walk, so extending a forged log launders nothing, and service
     * does not stop on a host's edit (or after a binary change re-keys). */
    char h[65], mac[65];
    int64_t now = time > 0 ? time : mt_now();
    entry_hash(prev, seq, now, a, ac, ob, status, h);
    if ((rc = entry_mac(c, h, mac, err)))
        return rc;
    if ((rc = core_stmt_get(NULL, mdb,
                            "INSERT INTO audit(seq, time, actor, action, object, status, "
                            "prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            &st, err)))
        return rc;
    mt_db_bind_int64(st, 1, seq);
    mt_db_bind_int64(st, 2, now);
    mt_db_bind_text(st, 3, a);
    mt_db_bind_text(st, 4, ac);
    mt_db_bind_text(st, 5, ob);
    mt_db_bind_int64(st, 6, status);
    mt_db_bind_text(st, 7, prev);
    mt_db_bind_text(st, 8, h);
    mt_db_bind_text(st, 9, mac);
    /* nothing reads its result: on PostgreSQL it goes to the server with
     * the transaction's next statement or its COMMIT (one round trip less
     * per audited change; docs/cluster.md "Commits per task") */
    rc = mt_db_run_deferred(st, err);
    core_stmt_put(NULL, st);
    if (!rc && tx) {
        head_cache.db = mdb;
        head_cache.tx = tx;
        head_cache.seq = seq;
        memcpy(head_cache.hash, h, sizeof head_cache.hash);
    }
    return rc;
}

mt_status mt_core_audit(mt_core *core, const char *actor, const char *action, const char *object,
                        int status, mt_err *err)
{
    pthread_mutex_lock(&core->mu);
    mt_db *mdb = core->db;
    mt_status rc = core_change_begin(core, mdb, err);
    if (!rc)
        rc = audit_append(core, mdb, actor, action, object, status, err);
    if (!rc)
        rc = store_commit(mdb, err);
    if (rc)
        store_rollback(mdb);
    pthread_mutex_unlock(&core->mu);
    return rc;
}

/* Group commit (docs/design.md, "Audit log"): the gateway's committer thread
 * hands every entry queued since its last batch here and releases their
 * replies only after this returns. The batch runs on a second connection
 * (audit_db) so that its fsync does not hold mu: the loop's read
 * transactions go on (WAL), and any writer - this batch, a change's
 * BEGIN IMMEDIATE on core->db, the scheduler - holds SQLite's write lock
 * while it reads the head and appends, so the chain stays linear. */
mt_status mt_core_audit_batch(mt_core *core, const mt_audit_item *items, size_t n, mt_err *err)
{
    if (n == 0)
        return MT_OK;
    pthread_mutex_lock(&core->audit_mu);
    mt_status rc = MT_OK;
    if (!core->audit_db && !(rc = store_open_grouped(core->db_path, &core->audit_db, err)))
        core_stmt_audit_cache(core);
    mt_db *mdb = core->audit_db;
    if (!rc)
        rc = store_begin(mdb, err);
    if (!rc) {
        for (size_t i = 0; i < n && !rc; i++)
            rc = audit_append_at(core, mdb, items[i].time, items[i].actor, items[i].action,
                                 items[i].object, items[i].status, err);
        if (!rc)
            rc = store_commit(mdb, err);
        if (rc)
            store_rollback(mdb);
    }
    pthread_mutex_unlock(&core->audit_mu);
    return rc;
}

/* On the committer's connection (its lock): any group sync connection of
 * the file serves (mt_db_sync covers the commits of all of them). */
static mt_status core_sync(mt_core *core, bool to_mark, uint64_t mark, mt_err *err);

mt_status mt_core_sync(mt_core *core, mt_err *err)
{
    return core_sync(core, false, 0, err);
}

mt_status mt_core_sync_to(mt_core *core, uint64_t mark, mt_err *err)
{
    return core_sync(core, true, mark, err);
}

static mt_status core_sync(mt_core *core, bool to_mark, uint64_t mark, mt_err *err)
{
    /* PostgreSQL: every commit was durable when it returned (no group sync);
     * nothing to open either, which matters while the store is down and
     * entries go to the spool (server.c audit_record) */
    if (mt_db_backend_of(core->db) == MT_DB_PG)
        return MT_OK;
    pthread_mutex_lock(&core->audit_mu);
    mt_status rc = MT_OK;
    if (!core->audit_db && !(rc = store_open_grouped(core->db_path, &core->audit_db, err)))
        core_stmt_audit_cache(core);
    if (!rc)
        rc = to_mark ? mt_db_sync_to(core->audit_db, mark, err) : mt_db_sync(core->audit_db, err);
    pthread_mutex_unlock(&core->audit_mu);
    return rc;
}

/* ---- chain verification ------------------------------------------------- */

static mt_status anchor_mac(const mt_core *c, int64_t seq, const char *hash, char out[65],
                            mt_err *err)
{
    char text[96];
    snprintf(text, sizeof text, "%lld\n%s", (long long)seq, hash);
    return integ_mac_text(c->audit_key, "mesatee-audit-anchor/v1", text, out, err);
}

static bool hex64(const char *s);

/* The prune anchor (*seq 0 and ZERO_HASH when the log was never pruned or
 * the store predates schema 6); with c, its MAC is checked. */
static mt_status anchor_load(const mt_core *c, mt_db *mdb, int64_t *seq, char hash[65], mt_err *err)
{
    *seq = 0;
    snprintf(hash, 65, "%s", ZERO_HASH);
    /* audit_anchor exists from schema version 6 on (store.c); a portable
     * test, not a look at one engine's catalogue */
    int64_t version = 0;
    mt_status rc = store_int(mdb, err, &version, NULL, "SELECT max(version) FROM schema_version");
    if (rc || version < 6)
        return rc;
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(mdb, "SELECT seq, hash, mac FROM audit_anchor WHERE id = 1", &st, err)))
        return rc;
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW) {
        int64_t as = mt_db_col_int64(st, 0);
        const char *ah = mt_db_col_text(st, 1);
        if (as < 1 || !hex64(ah))
            rc = mt_err_set(err, MT_ECONFLICT, "audit chain broken: the prune anchor is damaged");
        else if (c) {
            char mac[65];
            if (!(rc = anchor_mac(c, as, ah, mac, err)) &&
                !integ_hex_equal(mac, mt_db_col_text(st, 2))) {
                mt_error("audit log: the prune anchor does not match its MAC");
                rc = mt_err_set(err, MT_EINTERNAL,
                                "integrity check failed: audit log (prune anchor)");
            }
        }
        if (!rc) {
            *seq = as;
            snprintf(hash, 65, "%s", ah);
        }
    }
    mt_db_finalize(st);
    return rc;
}

/* Walks the chain from entry 1, or from the prune anchor (its MAC checked
 * when c is not NULL): contiguous sequence numbers, prev_hash links,
 * recomputed hashes and, when c is not NULL, every entry's MAC. *count
 * receives the seq of the last entry (the number of entries ever logged);
 * for each i < n_at, hash_at[i] receives the hash of entry at[i] ("" when
 * the log is shorter or at[i] was pruned before the anchor; ZERO_HASH for
 * at[i] == 0). *anchor_out (optional) the anchor's seq, 0 when none.
 * Offline callers (c NULL) check the unkeyed chain only. */
static mt_status chain_walk(const mt_core *c, mt_db *mdb, const uint64_t *at, char (*hash_at)[65],
                            size_t n_at, uint64_t *count, char head[65], uint64_t *anchor_out,
                            mt_err *err)
{
    *count = 0;
    if (anchor_out)
        *anchor_out = 0;
    for (size_t i = 0; i < n_at; i++)
        snprintf(hash_at[i], 65, "%s", at[i] == 0 ? ZERO_HASH : "");
    char prev[65];
    int64_t anchor = 0;
    mt_status rc = anchor_load(c, mdb, &anchor, prev, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n_at; i++)
        if (anchor > 0 && at[i] == (uint64_t)anchor)
            memcpy(hash_at[i], prev, 65);
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(mdb,
                            "SELECT seq, time, actor, action, object, status, prev_hash, "
                            "hash, mac FROM audit ORDER BY seq",
                            &st, err)))
        return rc;
    int64_t expect_seq = anchor + 1;
    uint64_t n = (uint64_t)anchor;
    if (anchor_out)
        *anchor_out = (uint64_t)anchor;
    int s;
    while ((s = mt_db_step(st, &rc, err)) == MT_DB_ROW) {
        int64_t seq = mt_db_col_int64(st, 0);
        if (seq != expect_seq) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit chain broken: entry %lld follows %lld (entries removed)",
                            (long long)seq, (long long)expect_seq - 1);
            break;
        }
        if (strcmp(mt_db_col_text(st, 6), prev)) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit chain broken at entry %lld: prev_hash does not match the "
                            "previous entry",
                            (long long)seq);
            break;
        }
        char h[65];
        entry_hash(prev, seq, mt_db_col_int64(st, 1), mt_db_col_text(st, 2), mt_db_col_text(st, 3),
                   mt_db_col_text(st, 4), mt_db_col_int64(st, 5), h);
        if (strcmp(h, mt_db_col_text(st, 7))) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit chain broken at entry %lld: its content was changed",
                            (long long)seq);
            break;
        }
        if (c) {
            char mac[65];
            if ((rc = entry_mac(c, h, mac, err)))
                break;
            if (!integ_hex_equal(mac, mt_db_col_text(st, 8))) {
                mt_error("audit log: entry %lld does not match its MAC", (long long)seq);
                rc = mt_err_set(err, MT_EINTERNAL,
                                "integrity check failed: audit log (entry %lld)", (long long)seq);
                break;
            }
        }
        memcpy(prev, h, sizeof prev);
        n++;
        for (size_t i = 0; i < n_at; i++)
            if (at[i] == n)
                memcpy(hash_at[i], h, 65);
        expect_seq = seq + 1;
    }
    mt_db_finalize(st);
    *count = n;
    if (head)
        memcpy(head, prev, 65);
    return rc;
}

mt_status audit_seal_legacy(mt_core *c, mt_db *mdb, mt_err *err)
{
    uint64_t n;
    /* the unkeyed chain must hold before it is trusted (once, at upgrade) */
    mt_status rc = chain_walk(NULL, mdb, NULL, NULL, 0, &n, NULL, NULL, err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(mdb, "SELECT seq, hash FROM audit WHERE mac IS NULL", &st, err)))
        return rc;
    json_t *rows = json_array();
    int s;
    while ((s = mt_db_step(st, &rc, err)) == MT_DB_ROW)
        json_array_append_new(
            rows, json_pack("[I, s]", (json_int_t)mt_db_col_int64(st, 0), mt_db_col_text(st, 1)));
    mt_db_finalize(st);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (rc)
            break;
        char mac[65], seq[24];
        snprintf(seq, sizeof seq, "%lld", (long long)json_integer_value(json_array_get(r, 0)));
        if (!(rc = entry_mac(c, json_string_value(json_array_get(r, 1)), mac, err)))
            rc = store_run(mdb, err, NULL,
                           "UPDATE audit SET mac = ? WHERE seq = CAST(? AS INTEGER)", mac, seq);
    }
    json_decref(rows);
    return rc;
}

/* ---- checkpoints -------------------------------------------------------- */

/* The signed bytes of a checkpoint. */
static int checkpoint_message(char *buf, size_t cap, uint64_t entries, const char *head,
                              int64_t time, const char *level)
{
    return snprintf(buf, cap, CHECKPOINT_FORMAT "\n%llu\n%s\n%lld\n%s\n",
                    (unsigned long long)entries, head, (long long)time, level);
}

static bool hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The cluster checkpoint key (Ed25519) from audit_key; NULL on failure. */
static EVP_PKEY *cluster_key(const mt_core *c)
{
    uint8_t seed[32];
    size_t sl = 0;
    EVP_PKEY *k = NULL;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, c->audit_key, sizeof c->audit_key,
                  (const uint8_t *)CLUSTER_KEY_LABEL, strlen(CLUSTER_KEY_LABEL), seed,
                  sizeof seed, &sl) &&
        sl == sizeof seed)
        k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    OPENSSL_cleanse(seed, sizeof seed);
    return k;
}

/* The bytes the node key signs to endorse the cluster key. */
static int endorsement_message(char *buf, size_t cap, const char *cluster_kid)
{
    return snprintf(buf, cap, CLUSTER_KEY_LABEL "\n%s\n", cluster_kid);
}

/* Signs msg with the cluster key: base64 SPKI, its id and the signature. */
static mt_status cluster_sign(const mt_core *c, const char *msg, size_t ml, char **bkey,
                              char kid[65], char **bsig, mt_err *err)
{
    EVP_PKEY *k = cluster_key(c);
    EVP_MD_CTX *mc = NULL;
    uint8_t *spki = NULL, sig[64];
    size_t sl = sizeof sig;
    int pl = k ? i2d_PUBKEY(k, &spki) : -1;
    mt_status rc = MT_OK;
    *bkey = *bsig = NULL;
    if (pl <= 0 || !(mc = EVP_MD_CTX_new()) || EVP_DigestSignInit(mc, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(mc, sig, &sl, (const uint8_t *)msg, ml) != 1) {
        rc = mt_err_set(err, MT_ECRYPTO, "cannot sign the checkpoint with the cluster key");
        goto out;
    }
    core_sha256_hex(spki, (size_t)pl, kid);
    *bkey = mt_b64_encode(spki, (size_t)pl);
    *bsig = mt_b64_encode(sig, sl);
    if (!*bkey || !*bsig) {
        free(*bkey);
        free(*bsig);
        *bkey = *bsig = NULL;
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
out:
    OPENSSL_free(spki);
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(k);
    return rc;
}

mt_status audit_checkpoint_handle(core_ctx *x)
{
    bool has = false;
    int64_t want = 0;
    mt_status rc = dec_checkpoint_query_parse(x->req->query, &has, &want, x->err);
    if (rc)
        return rc;
    uint64_t at = (uint64_t)want, count = 0, anchor = 0;
    char hash_at[1][65], head[65];
    /* the daemon signs only a log whose every entry it can authenticate */
    if ((rc = chain_walk(x->core, x->db, &at, hash_at, 1, &count, head, &anchor, x->err))) {
        if (rc == MT_ECONFLICT) {
            mt_error("audit log: %s", x->err->msg);
            rc = integ_fail(x->err, "audit log");
        }
        return rc;
    }
    if (!has) {
        at = count;
        memcpy(hash_at[0], head, sizeof head);
    }
    if (at > count)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "the audit log has %llu entries, fewer than the %llu asked for "
                          "(truncated, or a checkpoint from another server)",
                          (unsigned long long)count, (unsigned long long)at);
    if (!hash_at[0][0])
        return mt_err_set(x->err, MT_ECONFLICT,
                          "entry %llu was pruned: the log starts after entry %llu (check older "
                          "checkpoints against the export, `mesatee audit verify --export`)",
                          (unsigned long long)at, (unsigned long long)anchor);
    const char *level = mt_tee_level(x->core->tee);
    int64_t now = mt_now();
    char msg[256];
    int ml = checkpoint_message(msg, sizeof msg, at, hash_at[0], now, level);
    uint8_t *sig = NULL, *spki = NULL;
    size_t sl = 0, pl = 0;
    if ((rc = mt_tee_sign(x->core->tee, (const uint8_t *)msg, (size_t)ml, &sig, &sl, &spki, &pl,
                          x->err)))
        return rc;
    char kid[65], ckid[65], emsg[128];
    core_sha256_hex(spki, pl, kid);
    char *bsig = mt_b64_encode(sig, sl), *bkey = mt_b64_encode(spki, pl);
    free(sig);
    free(spki);
    sig = spki = NULL;
    char *cbkey = NULL, *cbsig = NULL, *bend = NULL;
    if (!(rc = cluster_sign(x->core, msg, (size_t)ml, &cbkey, ckid, &cbsig, x->err))) {
        int el = endorsement_message(emsg, sizeof emsg, ckid);
        if (!(rc = mt_tee_sign(x->core->tee, (const uint8_t *)emsg, (size_t)el, &sig, &sl, &spki,
                               &pl, x->err)))
            bend = mt_b64_encode(sig, sl);
        free(sig);
        free(spki);
    }
    json_t *o = (!rc && bsig && bkey && bend)
                    ? json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                "format", CHECKPOINT_FORMAT, "entries", (json_int_t)at, "head",
                                hash_at[0], "time", (json_int_t)now, "level", level, "key", bkey,
                                "key_id", kid, "signature", bsig, "cluster_key", cbkey,
                                "cluster_key_id", ckid, "cluster_signature", cbsig,
                                "endorsement", bend)
                    : NULL;
    free(bsig);
    free(bkey);
    free(cbkey);
    free(cbsig);
    free(bend);
    if (rc)
        return rc;
    if (!o)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    core_json_response(x, 200, o);
    return MT_OK;
}

/* Decodes a base64 SPKI whose SHA-256 must be kid; Ed25519, or P-256 when
 * ec_ok. NULL (and err set) otherwise. */
static EVP_PKEY *checkpoint_key(const char *b64, const char *kid, bool ec_ok, const char *what,
                                mt_err *err)
{
    uint8_t *spki = NULL;
    size_t pl = 0;
    EVP_PKEY *pk = NULL;
    if (mt_b64_decode(b64, &spki, &pl, err))
        return NULL;
    char h[65];
    core_sha256_hex(spki, pl, h);
    const uint8_t *p = spki;
    if (strcmp(h, kid) || !(pk = d2i_PUBKEY(NULL, &p, (long)pl)) || p != spki + pl ||
        !(EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 ||
          (ec_ok && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC))) {
        EVP_PKEY_free(pk);
        pk = NULL;
        mt_err_set(err, MT_EINVAL, "checkpoint: %s is not %s public key matching its id", what,
                   ec_ok ? "a P-256 or Ed25519" : "an Ed25519");
    }
    free(spki);
    return pk;
}

/* Verifies a base64 signature over msg (SHA-256 for P-256, none for Ed25519). */
static mt_status checkpoint_sig(EVP_PKEY *pk, const char *b64, const char *msg, size_t ml,
                                const char *what, mt_err *err)
{
    uint8_t *sg = NULL;
    size_t sl = 0;
    mt_status rc = mt_b64_decode(b64, &sg, &sl, err);
    if (rc)
        return rc;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC ? EVP_sha256() : NULL;
    if (!mc || EVP_DigestVerifyInit(mc, NULL, md, NULL, pk) != 1 ||
        EVP_DigestVerify(mc, sg, sl, (const uint8_t *)msg, ml) != 1)
        rc = mt_err_set(err, MT_ECRYPTO, "checkpoint %s verification failed", what);
    EVP_MD_CTX_free(mc);
    free(sg);
    return rc;
}

mt_status mt_core_audit_checkpoint_parse(const uint8_t *buf, size_t len, mt_audit_checkpoint *out,
                                         mt_err *err)
{
    static const char *const keys[] = {
        "format",    "entries",     "head",           "time",
        "level",     "key",         "key_id",         "signature",
        "cluster_key", "cluster_key_id", "cluster_signature", "endorsement",
        NULL};
    memset(out, 0, sizeof *out);
    json_t *j = mt_json_parse((const char *)buf, len, CHECKPOINT_MAX, 4, err);
    if (!j)
        return MT_EINVAL;
    const char *fmt, *head, *level, *key, *kid, *sig;
    const char *ckey = NULL, *ckid = NULL, *csig = NULL, *endo = NULL;
    int64_t entries, t;
    EVP_PKEY *pk = NULL, *ck = NULL;
    mt_status rc;
    if ((rc = mt_json_only_keys(j, keys, err)) ||
        (rc = mt_json_str(j, "format", 64, &fmt, err)) ||
        (rc = mt_json_int(j, "entries", 0, INT64_MAX, &entries, err)) ||
        (rc = mt_json_str(j, "head", 64, &head, err)) ||
        (rc = mt_json_int(j, "time", 0, INT64_MAX, &t, err)) ||
        (rc = mt_json_str(j, "level", 15, &level, err)) ||
        (rc = mt_json_str(j, "key", 1024, &key, err)) ||
        (rc = mt_json_str(j, "key_id", 64, &kid, err)) ||
        (rc = mt_json_str(j, "signature", 512, &sig, err)))
        goto out;
    /* the cluster fields: all four or none (checkpoints of older servers) */
    int has_cluster = !!json_object_get(j, "cluster_key") + !!json_object_get(j, "cluster_key_id") +
                      !!json_object_get(j, "cluster_signature") +
                      !!json_object_get(j, "endorsement");
    if (has_cluster != 0 && has_cluster != 4) {
        rc = mt_err_set(err, MT_EINVAL, "checkpoint: cluster_key, cluster_key_id, "
                                        "cluster_signature and endorsement go together");
        goto out;
    }
    if (has_cluster && ((rc = mt_json_str(j, "cluster_key", 1024, &ckey, err)) ||
                        (rc = mt_json_str(j, "cluster_key_id", 64, &ckid, err)) ||
                        (rc = mt_json_str(j, "cluster_signature", 512, &csig, err)) ||
                        (rc = mt_json_str(j, "endorsement", 512, &endo, err))))
        goto out;
    if (strcmp(fmt, CHECKPOINT_FORMAT) || !hex64(head) || !hex64(kid) || (ckid && !hex64(ckid))) {
        rc = mt_err_set(err, MT_EINVAL, "not a mesatee audit checkpoint (" CHECKPOINT_FORMAT ")");
        goto out;
    }
    for (const char *p = level; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            rc = mt_err_set(err, MT_EINVAL, "checkpoint: bad level");
            goto out;
        }
    if (!(pk = checkpoint_key(key, kid, true, "key", err)) ||
        (ckey && !(ck = checkpoint_key(ckey, ckid, false, "cluster_key", err)))) {
        rc = MT_EINVAL;
        goto out;
    }
    char msg[256];
    int ml = checkpoint_message(msg, sizeof msg, (uint64_t)entries, head, t, level);
    if ((rc = checkpoint_sig(pk, sig, msg, (size_t)ml, "signature", err)))
        goto out;
    if (ck) {
        char emsg[128];
        int el = endorsement_message(emsg, sizeof emsg, ckid);
        if ((rc = checkpoint_sig(ck, csig, msg, (size_t)ml, "cluster signature", err)) ||
            (rc = checkpoint_sig(pk, endo, emsg, (size_t)el, "endorsement of the cluster key",
                                 err)))
            goto out;
    }
    out->entries = (uint64_t)entries;
    out->time = t;
    snprintf(out->head, sizeof out->head, "%s", head);
    snprintf(out->key_id, sizeof out->key_id, "%s", kid);
    snprintf(out->cluster_key_id, sizeof out->cluster_key_id, "%s", ckid ? ckid : "");
    snprintf(out->level, sizeof out->level, "%s", level);
out:
    EVP_PKEY_free(pk);
    EVP_PKEY_free(ck);
    json_decref(j);
    return rc;
}

bool mt_core_audit_checkpoint_signed_by(const mt_audit_checkpoint *cp, const char *key_id)
{
    return key_id && *key_id &&
           (!strcmp(cp->key_id, key_id) ||
            (cp->cluster_key_id[0] && !strcmp(cp->cluster_key_id, key_id)));
}

mt_status core_offline_store_open(const char *data_dir, const char *store, mt_db **db,
                                  mt_err *err)
{
    if (store && *store) {
        const char *sqlite_path = NULL;
        mt_status rc = mt_core_store_check(store, &sqlite_path, err);
        if (rc)
            return rc;
        return store_open(sqlite_path ? sqlite_path : store, true, db, err);
    }
    if (!data_dir)
        return mt_err_set(err, MT_EINVAL, "no data directory given");
    size_t n = strlen(data_dir) + sizeof("/" CORE_DB_NAME);
    char *path = malloc(n);
    if (!path)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s", data_dir, CORE_DB_NAME);
    mt_status rc = store_open(path, true, db, err);
    free(path);
    return rc;
}

mt_status mt_core_audit_verify_dir(const char *data_dir, const char *store,
                                   const mt_audit_checkpoint *cps, size_t n_cps,
                                   uint64_t *entries, mt_err *err)
{
    if (entries)
        *entries = 0;
    if (!data_dir && !store)
        return mt_err_set(err, MT_EINVAL, "no data directory given");
    if (n_cps > 64)
        return mt_err_set(err, MT_EINVAL, "at most 64 checkpoints at once");
    mt_db *db;
    mt_status rc = core_offline_store_open(data_dir, store, &db, err);
    if (rc)
        return rc;
    uint64_t at[64] = {0}, count = 0;
    char hash_at[64][65];
    for (size_t i = 0; i < n_cps; i++)
        at[i] = cps[i].entries;
    uint64_t anchor = 0;
    rc = chain_walk(NULL, db, at, hash_at, n_cps, &count, NULL, &anchor, err);
    store_close(db);
    for (size_t i = 0; !rc && i < n_cps; i++) {
        if (cps[i].entries > 0 && cps[i].entries < anchor)
            rc = mt_err_set(err, MT_ECONFLICT,
                            "entry %llu was pruned (the log starts after entry %llu): check it "
                            "against the export that holds it (audit verify --export)",
                            (unsigned long long)cps[i].entries, (unsigned long long)anchor);
        else if (cps[i].entries > count)
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit log truncated: it has %llu entries, a held checkpoint "
                            "records %llu",
                            (unsigned long long)count, (unsigned long long)cps[i].entries);
        else if (strcmp(hash_at[i], cps[i].head))
            rc = mt_err_set(err, MT_ECONFLICT,
                            "audit log rewritten: entry %llu differs from the held checkpoint",
                            (unsigned long long)cps[i].entries);
    }
    if (entries)
        *entries = count;
    return rc;
}

mt_status mt_core_audit_anchor_dir(const char *data_dir, const char *store, uint64_t *seq,
                                   char hash[65], mt_err *err)
{
    *seq = 0;
    snprintf(hash, 65, "%s", ZERO_HASH);
    mt_db *db;
    mt_status rc = core_offline_store_open(data_dir, store, &db, err);
    if (rc)
        return rc;
    int64_t s = 0;
    rc = anchor_load(NULL, db, &s, hash, err);
    store_close(db);
    *seq = (uint64_t)s;
    return rc;
}

/* POST /v1/audit/prune (admin; TX_WRITE: one transaction under the store
 * lock, so no append interleaves). The caller shows the export it keeps by
 * its first and last seq and the hash of its last entry; the daemon checks
 * its whole keyed chain, that the export covers every entry to delete and
 * that its last hash is this log's, then deletes and writes the MACed
 * anchor. The route's own audit entry follows in the same transaction. */
mt_status audit_prune_handle(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_audit_prune d;
    mt_status rc = dec_audit_prune_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    uint64_t at[2] = {(uint64_t)d.export_last, (uint64_t)d.before - 1};
    uint64_t count = 0, anchor = 0;
    char hash_at[2][65], head[65];
    if ((rc = chain_walk(x->core, x->db, at, hash_at, 2, &count, head, &anchor, x->err))) {
        if (rc == MT_ECONFLICT) {
            mt_error("audit log: %s", x->err->msg);
            rc = integ_fail(x->err, "audit log");
        }
        return rc;
    }
    uint64_t before = (uint64_t)d.before, first = anchor + 1;
    if (before > count)
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'before': the log's last entry is %llu and stays; prune "
                          "before at most %llu",
                          (unsigned long long)count, (unsigned long long)count);
    if (before <= first)
        return mt_err_set(x->err, MT_EINVAL,
                          "field 'before': the log already starts at entry %llu; nothing to "
                          "prune",
                          (unsigned long long)first);
    if ((uint64_t)d.export_first > first)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "the export does not cover entry %llu, the first one to delete "
                          "(export it: mesatee audit export --since %llu)",
                          (unsigned long long)first, (unsigned long long)first);
    if ((uint64_t)d.export_last < before - 1)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "the export does not cover entry %llu, the last one to delete",
                          (unsigned long long)before - 1);
    if ((uint64_t)d.export_last > count || strcmp(hash_at[0], d.export_head))
        return mt_err_set(x->err, MT_ECONFLICT,
                          "the export's last entry is not this audit log's (an export of "
                          "another server, or a changed one)");
    char b[24], s[24], t[24], mac[65];
    snprintf(b, sizeof b, "%llu", (unsigned long long)before);
    snprintf(s, sizeof s, "%llu", (unsigned long long)before - 1);
    int64_t now = mt_now();
    snprintf(t, sizeof t, "%lld", (long long)now);
    int deleted = 0;
    if ((rc = anchor_mac(x->core, (int64_t)before - 1, hash_at[1], mac, x->err)) ||
        (rc = store_run(x->db, x->err, &deleted,
                        "DELETE FROM audit WHERE seq < CAST(? AS INTEGER)", b)) ||
        (rc = store_run(x->db, x->err, NULL,
                        "INSERT OR REPLACE INTO audit_anchor(id, seq, hash, pruned_at, mac) "
                        "VALUES (1, CAST(? AS INTEGER), ?, CAST(? AS INTEGER), ?)",
                        s, hash_at[1], t, mac)))
        return rc;
    mt_info("audit log pruned: %d entries before %llu deleted (export %lld..%lld)", deleted,
            (unsigned long long)before, (long long)d.export_first, (long long)d.export_last);
    core_json_response(x, 200,
                       json_pack("{s:I, s:s, s:I, s:I}", "anchor_seq", (json_int_t)before - 1,
                                 "anchor_hash", hash_at[1], "deleted", (json_int_t)deleted,
                                 "first", (json_int_t)before));
    return MT_OK;
}

mt_status audit_list(core_ctx *x)
{
    dec_page q;
    mt_status rc = dec_page_query_parse(x->req->query, PAGE_AUDIT, &q, x->err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    /* Users see entries they made, and entries about files they own, tasks
     * they participate in, functions they own, and their own user. */
    if ((rc = mt_db_prepare(
             x->db,
             "SELECT seq, time, actor, action, object, status, hash FROM audit a WHERE "
             "a.seq > ?1 AND (?3 <> 0 OR a.actor = ?2 OR a.object = 'user:' || ?2 OR "
             "(a.object LIKE 'file:%' AND EXISTS (SELECT 1 FROM file_owners o WHERE "
             "o.file_id = substr(a.object, 6) AND o.username = ?2)) OR "
             "(a.object LIKE 'task:%' AND EXISTS (SELECT 1 FROM task_participants p WHERE "
             "p.task_id = substr(a.object, 6) AND p.username = ?2)) OR "
             "(a.object LIKE 'function:%' AND EXISTS (SELECT 1 FROM functions f WHERE "
             "f.function_id = substr(a.object, 10) AND f.owner = ?2))) "
             "ORDER BY a.seq LIMIT ?4",
             &st, x->err)))
        return rc;
    mt_db_bind_int64(st, 1, q.seq);
    mt_db_bind_text(st, 2, x->who);
    mt_db_bind_int64(st, 3, x->admin ? 1 : 0);
    mt_db_bind_int64(st, 4, q.limit + 1);
    json_t *arr = json_array();
    int s;
    int64_t n = 0, last_seq = 0;
    bool more = false;
    while ((s = mt_db_step(st, &rc, x->err)) == MT_DB_ROW) {
        if (n++ == q.limit) { /* a row beyond the page */
            more = true;
            s = MT_DB_DONE;
            break;
        }
        last_seq = mt_db_col_int64(st, 0);
        json_array_append_new(arr, json_pack("{s:I, s:o, s:s, s:s, s:s, s:I, s:s}", "seq",
                                             (json_int_t)mt_db_col_int64(st, 0), "time",
                                             core_time_json(mt_db_col_int64(st, 1)), "actor",
                                             mt_db_col_text(st, 2), "action", mt_db_col_text(st, 3),
                                             "object", mt_db_col_text(st, 4), "status",
                                             (json_int_t)mt_db_col_int64(st, 5), "hash",
                                             mt_db_col_text(st, 6)));
    }
    mt_db_finalize(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    char cur[DEC_CURSOR_MAX + 1] = "";
    if (more)
        page_cursor_make(PAGE_AUDIT, 0, last_seq, NULL, cur, sizeof cur);
    core_json_response(x, 200, json_pack("{s:o, s:o}", "entries", arr, "next_cursor",
                                         cur[0] ? json_string(cur) : json_null()));
    return MT_OK;
}
