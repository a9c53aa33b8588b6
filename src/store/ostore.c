/* ostore: object storage backends (mt_ostore.h is the contract): "dir" over
 * src/host/untrusted_objstore.c (the core's layout), and chunked rows in a
 * database through mt_db. */
#include "mt_ostore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_internal.h"
#include "mt_db.h"
#include "mt_util.h"
#include "untrusted_objstore.h"

#define PUT_TRIES 3

struct mt_ostore {
    mt_ostore_kind kind;
    mt_objstore *dir;  /* MT_OSTORE_DIR */
    mt_objstore *cache; /* MT_OSTORE_DB: opts.cache_dir, or NULL */
    mt_db *db;         /* MT_OSTORE_DB */
    pthread_mutex_t mu; /* guards db */
    size_t chunk;
    char spool[PATH_MAX];
};

static const char DB_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS object_data("
    " id TEXT PRIMARY KEY, gen TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
    " chunks INTEGER NOT NULL, chunk_size INTEGER NOT NULL, sha256 TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS object_chunks("
    " gen TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(gen, seq));"
    /* staged uploads (mt_ostore_stage_*): keyed by the lease that wrote them */
    "CREATE TABLE IF NOT EXISTS object_stage("
    " task_id TEXT NOT NULL, fence INTEGER NOT NULL, object TEXT NOT NULL,"
    " gen TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, chunks INTEGER NOT NULL,"
    " chunk_size INTEGER NOT NULL, sha256 TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY(task_id, fence, object));"
    "CREATE TABLE IF NOT EXISTS object_stage_chunks("
    " gen TEXT NOT NULL, task_id TEXT NOT NULL, fence INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY(gen, seq));"
    "CREATE INDEX IF NOT EXISTS object_stage_chunks_lease ON object_stage_chunks(task_id, fence);"
    /* uploads in flight (mt_ostore_stage_begin until _commit/_free): their
     * announced sizes count against the lease's cap */
    "CREATE TABLE IF NOT EXISTS object_stage_reserve("
    " gen TEXT PRIMARY KEY, task_id TEXT NOT NULL, fence INTEGER NOT NULL,"
    " object TEXT NOT NULL, size INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS object_stage_reserve_lease ON object_stage_reserve(task_id, fence)";

mt_ostore_kind mt_ostore_url_kind(const char *url)
{
    if (!url || !*url)
        return 0;
    if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13))
        return MT_OSTORE_DB;
    if (!strncmp(url, "dir:", 4))
        return MT_OSTORE_DIR;
    if (strstr(url, "://") || strchr(url, ':') == url)
        return 0;
    const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
    if (colon && (!slash || colon < slash))
        return 0; /* "s3:bucket", "file:..." : a scheme we do not know */
    return MT_OSTORE_DIR;
}

static mt_status opts_check(const mt_ostore_opts *o, size_t *chunk, mt_err *err)
{
    *chunk = o && o->chunk_size ? o->chunk_size : MT_OSTORE_CHUNK_DEFAULT;
    if (*chunk < MT_OSTORE_CHUNK_MIN || *chunk > MT_OSTORE_CHUNK_MAX)
        return mt_err_set(err, MT_EINVAL,
                          "object store: chunk size %zu out of range (%u..%u bytes)", *chunk,
                          MT_OSTORE_CHUNK_MIN, MT_OSTORE_CHUNK_MAX);
    return MT_OK;
}

static mt_ostore *ostore_new(mt_ostore_kind kind, size_t chunk)
{
    mt_ostore *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->chunk = chunk;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

mt_status mt_ostore_open(const char *url, const mt_ostore_opts *opts, mt_ostore **out,
                         mt_err *err)
{
    *out = NULL;
    mt_ostore_kind k = mt_ostore_url_kind(url);
    if (k == MT_OSTORE_DB)
        return mt_ostore_open_db(url, opts, out, err);
    if (k != MT_OSTORE_DIR)
        return mt_err_set(err, MT_EINVAL,
                          "object store URL: %s; use a directory (dir:PATH or PATH) or "
                          "postgres://...",
                          url && *url ? "unknown scheme" : "empty");
    size_t chunk;
    mt_status st = opts_check(opts, &chunk, err);
    if (st)
        return st;
    const char *path = !strncmp(url, "dir:", 4) ? url + 4 : url;
    if (!*path)
        return mt_err_set(err, MT_EINVAL, "object store URL: dir: needs a directory path");
    mt_ostore *s = ostore_new(MT_OSTORE_DIR, chunk);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if ((st = untrusted_objstore_open(path, &s->dir, err))) {
        mt_ostore_close(s);
        return st;
    }
    untrusted_objstore_sweep(s->dir);
    *out = s;
    return MT_OK;
}

mt_status mt_ostore_open_db(const char *db_url, const mt_ostore_opts *opts, mt_ostore **out,
                            mt_err *err)
{
    *out = NULL;
    size_t chunk;
    mt_status st = opts_check(opts, &chunk, err);
    if (st)
        return st;
    mt_ostore *s = ostore_new(MT_OSTORE_DB, chunk);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    const char *spool = opts && opts->spool_dir ? opts->spool_dir : getenv("TMPDIR");
    if (!spool || !*spool)
        spool = "/tmp";
    if (snprintf(s->spool, sizeof s->spool, "%s", spool) >= (int)sizeof s->spool) {
        mt_ostore_close(s);
        return mt_err_set(err, MT_EINVAL, "object store: spool directory path too long");
    }
    if (opts && opts->cache_dir && (st = untrusted_objstore_open(opts->cache_dir, &s->cache, err)))
        goto fail;
    if ((st = mt_db_open(db_url, 0, &s->db, err)))
        goto fail;
    /* one creator at a time: concurrent CREATE TABLE IF NOT EXISTS can
     * collide on PostgreSQL's catalog */
    if ((st = mt_db_begin(s->db, MT_DB_TX_IMMEDIATE, err)) ||
        (st = mt_db_exec(s->db, DB_SCHEMA, err)) || (st = mt_db_commit(s->db, err))) {
        mt_db_rollback(s->db);
        mt_err_prefix(err, st, "object store: creating its tables: ");
        goto fail;
    }
    *out = s;
    return MT_OK;
fail:
    mt_ostore_close(s);
    return st;
}

void mt_ostore_close(mt_ostore *s)
{
    if (!s)
        return;
    untrusted_objstore_close(s->dir);
    untrusted_objstore_close(s->cache);
    mt_db_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

mt_ostore_kind mt_ostore_kind_of(const mt_ostore *s)
{
    return s->kind;
}

static mt_status id_check(const char *id, mt_err *err)
{
    if (!id || !mt_id_valid(id))
        return mt_err_set(err, MT_EINVAL, "object id must be 32 lower-case hex characters");
    return MT_OK;
}

/* ---- database backend: rows ------------------------------------------------- */

typedef struct db_head {
    char gen[33];
    int64_t size, chunks, chunk_size;
    char sha[65]; /* SHA-256 of the bytes, recorded by the put */
} db_head;

/* Reads the header row of id (caller holds s->mu). MT_ENOTFOUND if absent,
 * MT_EIO if it is inconsistent. */
static mt_status db_head_load(mt_ostore *s, const char *id, db_head *h, mt_err *err)
{
    memset(h, 0, sizeof *h);
    mt_db_stmt *q = NULL;
    mt_status rc = mt_db_prepare(
        s->db, "SELECT gen, size, chunks, chunk_size, sha256 FROM object_data WHERE id = ?", &q, err);
    if (rc)
        return rc;
    mt_db_bind_text(q, 1, id);
    int r = mt_db_step(q, &rc, err);
    if (r == MT_DB_ROW) {
        snprintf(h->gen, sizeof h->gen, "%s", mt_db_col_text(q, 0));
        h->size = mt_db_col_int64(q, 1);
        h->chunks = mt_db_col_int64(q, 2);
        h->chunk_size = mt_db_col_int64(q, 3);
        snprintf(h->sha, sizeof h->sha, "%s", mt_db_col_text(q, 4));
    } else if (r == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "object %s does not exist", id);
    mt_db_finalize(q);
    if (rc)
        return rc;
    if (!mt_id_valid(h->gen) || h->size < 0 || h->chunk_size < MT_OSTORE_CHUNK_MIN ||
        h->chunk_size > MT_OSTORE_CHUNK_MAX ||
        h->chunks != h->size / h->chunk_size + (h->size % h->chunk_size != 0))
        return mt_err_set(err, MT_EIO,
                          "object %s: its record in the object store database is inconsistent",
                          id);
    return MT_OK;
}

/* The transaction of a put or delete. SQLite has one writer anyway: IMMEDIATE
 * takes its write lock first (a deferred transaction that read first fails
 * at once, without waiting, when it meets another writer). PostgreSQL: plain
 * BEGIN, so that object writes do not take the core's writer lock; puts of
 * the same id meet on the primary key (see db_put_once). */
static mt_db_tx tx_mode(mt_ostore *s)
{
    return mt_db_backend_of(s->db) == MT_DB_SQLITE ? MT_DB_TX_IMMEDIATE : MT_DB_TX_DEFERRED;
}

/* Runs one statement with text parameters a (and b when non-NULL); *changes
 * (may be NULL) receives the rows it changed. */
static mt_status db_run2(mt_db *db, const char *sql, const char *a, const char *b,
                         int64_t *changes, mt_err *err)
{
    mt_db_stmt *q = NULL;
    mt_status rc = mt_db_prepare(db, sql, &q, err);
    if (rc)
        return rc;
    mt_db_bind_text(q, 1, a);
    if (b)
        mt_db_bind_text(q, 2, b);
    mt_db_step(q, &rc, err);
    if (!rc && changes)
        *changes = mt_db_changes(db);
    mt_db_finalize(q);
    return rc;
}

/* Removes the version of id that is there, if any (inside a transaction), by
 * its generation: read it, delete the header row of exactly that generation
 * (which locks it: a concurrent writer that replaced it first leaves 0 rows
 * changed, and the generation is read again), then its chunks. A damaged
 * header row goes with its chunks too. */
static mt_status db_remove(mt_db *db, const char *id, mt_err *err)
{
    for (int t = 0; t < 8; t++) {
        char gen[80] = "";
        mt_db_stmt *q = NULL;
        mt_status rc =
            mt_db_prepare(db, "SELECT gen FROM object_data WHERE id = ?", &q, err);
        if (rc)
            return rc;
        mt_db_bind_text(q, 1, id);
        bool found = mt_db_step(q, &rc, err) == MT_DB_ROW;
        if (found)
            snprintf(gen, sizeof gen, "%s", mt_db_col_text(q, 0));
        mt_db_finalize(q);
        if (rc || !found)
            return rc;
        int64_t n = 0;
        if ((rc = db_run2(db, "DELETE FROM object_data WHERE id = ? AND gen = ?", id, gen, &n,
                          err)))
            return rc;
        if (n == 0)
            continue; /* replaced meanwhile: read the generation again */
        return db_run2(db, "DELETE FROM object_chunks WHERE gen = ?", gen, NULL, NULL, err);
    }
    return mt_err_set(err, MT_EUNAVAIL, "object %s keeps changing under a concurrent writer", id);
}

/* The bytes of a put: from memory, or from a spool file. */
typedef struct put_src {
    const uint8_t *mem;
    int fd;
    uint64_t size;
    char sha[65];
} put_src;

static bool db_exists_locked(mt_ostore *s, const char *id)
{
    db_head h;
    return db_head_load(s, id, &h, NULL) != MT_ENOTFOUND;
}

/* Writes src as id on db inside a transaction that is open (the caller's):
 * removes the old version, inserts the header row and the chunks. */
static mt_status db_put_rows(mt_ostore *s, mt_db *db, const char *id, const put_src *src,
                             uint8_t *buf, bool *insert_failed, mt_err *err)
{
    *insert_failed = false;
    mt_id g;
    mt_id_new(&g);
    int64_t chunks = (int64_t)((src->size + s->chunk - 1) / s->chunk);
    mt_db_stmt *q = NULL;
    mt_status rc;
    if ((rc = db_remove(db, id, err)))
        goto out;
    if ((rc = mt_db_prepare(db,
                            "INSERT INTO object_data(id, gen, size, chunks, chunk_size, sha256, "
                            "created_at) VALUES(?, ?, ?, ?, ?, ?, ?)",
                            &q, err)))
        goto out;
    mt_db_bind_text(q, 1, id);
    mt_db_bind_text(q, 2, g.s);
    mt_db_bind_int64(q, 3, (int64_t)src->size);
    mt_db_bind_int64(q, 4, chunks);
    mt_db_bind_int64(q, 5, (int64_t)s->chunk);
    mt_db_bind_text(q, 6, src->sha);
    mt_db_bind_int64(q, 7, mt_now());
    mt_db_step(q, &rc, err);
    mt_db_finalize(q);
    q = NULL;
    if (rc) {
        /* a concurrent put inserted the same id first (unique violation once
         * it committed): run ours again, replacing it whole */
        *insert_failed = true;
        goto out;
    }
    if ((rc = mt_db_prepare(db, "INSERT INTO object_chunks(gen, seq, data) VALUES(?, ?, ?)",
                            &q, err)))
        goto out;
    for (int64_t i = 0; i < chunks && !rc; i++) {
        uint64_t off = (uint64_t)i * s->chunk;
        size_t n = src->size - off < s->chunk ? (size_t)(src->size - off) : s->chunk;
        const uint8_t *p = src->mem ? src->mem + off : buf;
        for (size_t got = 0; !src->mem && got < n;) {
            ssize_t r = pread(src->fd, buf + got, n - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = mt_err_set(err, MT_EIO, "object store: reading the spool file failed: %s",
                                r < 0 ? strerror(errno) : "it is shorter than written");
                goto out;
            }
            got += (size_t)r;
        }
        mt_db_reset(q);
        mt_db_bind_text(q, 1, g.s);
        mt_db_bind_int64(q, 2, i);
        mt_db_bind_blob(q, 3, p, n);
        mt_db_step(q, &rc, err);
    }
out:
    mt_db_finalize(q);
    return rc;
}

/* One attempt at storing src as id, in one transaction (caller holds mu). */
static mt_status db_put_once(mt_ostore *s, const char *id, const put_src *src, uint8_t *buf,
                             bool *lost_race, mt_err *err)
{
    *lost_race = false;
    mt_status rc = mt_db_begin(s->db, tx_mode(s), err);
    if (rc)
        return rc;
    bool insert_failed = false;
    rc = db_put_rows(s, s->db, id, src, buf, &insert_failed, err);
    /* a failed header insert: a concurrent put inserted the same id first
     * (unique violation once it committed): run ours again, replacing it whole */
    if (rc && insert_failed)
        *lost_race = !mt_db_retryable(s->db);
    if (!rc)
        rc = mt_db_commit(s->db, err);
    if (rc) {
        mt_db_rollback(s->db);
        if (*lost_race && !db_exists_locked(s, id))
            *lost_race = false; /* not a race: a real failure */
    }
    return rc;
}

static mt_status db_put(mt_ostore *s, const char *id, const put_src *src, mt_err *err)
{
    uint8_t *buf = NULL;
    if (!src->mem && src->size > 0 && !(buf = malloc(s->chunk)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = MT_OK;
    pthread_mutex_lock(&s->mu);
    for (int t = 0; t < PUT_TRIES; t++) {
        bool lost = false;
        rc = db_put_once(s, id, src, buf, &lost, err);
        if (!rc || !(lost || mt_db_retryable(s->db)))
            break;
    }
    pthread_mutex_unlock(&s->mu);
    free(buf);
    if (rc)
        return mt_err_prefix(err, rc, "object store: storing object %s: ", id);
    if (s->cache) /* a cached copy of the old version must not be used */
        untrusted_objstore_delete(s->cache, id, NULL);
    return MT_OK;
}

static mt_status sha256_hex(const uint8_t *p, size_t n, char out[65], mt_err *err)
{
    uint8_t md[32];
    unsigned int ml = 0;
    if (EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL) != 1 || ml != 32)
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    mt_hex_encode(md, 32, out);
    return MT_OK;
}

/* ---- whole objects ------------------------------------------------------------ */

mt_status mt_ostore_put(mt_ostore *s, const char *id, const uint8_t *data, size_t len,
                        char sha256_out[65], mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    char sha[65];
    if (s->kind == MT_OSTORE_DIR)
        rc = untrusted_objstore_put(s->dir, id, data ? data : (const uint8_t *)"", len, sha, err);
    else {
        put_src src = {.mem = data ? data : (const uint8_t *)"", .fd = -1, .size = len};
        if (!(rc = sha256_hex(src.mem, len, src.sha, err)))
            rc = db_put(s, id, &src, err);
        memcpy(sha, src.sha, sizeof sha);
    }
    if (!rc && sha256_out)
        memcpy(sha256_out, sha, 65);
    return rc;
}

mt_status mt_ostore_size(mt_ostore *s, const char *id, uint64_t *size, mt_err *err)
{
    *size = 0;
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    if (s->kind == MT_OSTORE_DIR)
        return untrusted_objstore_size(s->dir, id, size, err);
    db_head h;
    pthread_mutex_lock(&s->mu);
    rc = db_head_load(s, id, &h, err);
    pthread_mutex_unlock(&s->mu);
    if (!rc)
        *size = (uint64_t)h.size;
    return rc;
}

mt_status mt_ostore_exists(mt_ostore *s, const char *id, bool *exists, mt_err *err)
{
    *exists = false;
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    if (s->kind == MT_OSTORE_DIR) {
        uint64_t n;
        rc = untrusted_objstore_size(s->dir, id, &n, err);
        *exists = rc == MT_OK;
        return rc == MT_ENOTFOUND ? MT_OK : rc;
    }
    /* the row alone: a damaged object is there (reading it says what is wrong) */
    mt_db_stmt *q = NULL;
    pthread_mutex_lock(&s->mu);
    if (!(rc = mt_db_prepare(s->db, "SELECT 1 FROM object_data WHERE id = ?", &q, err))) {
        mt_db_bind_text(q, 1, id);
        *exists = mt_db_step(q, &rc, err) == MT_DB_ROW;
    }
    mt_db_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

mt_status mt_ostore_delete(mt_ostore *s, const char *id, mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    if (s->kind == MT_OSTORE_DIR)
        return untrusted_objstore_delete(s->dir, id, err);
    pthread_mutex_lock(&s->mu);
    for (int t = 0; t < PUT_TRIES; t++) {
        if (!(rc = mt_db_begin(s->db, tx_mode(s), err)) && !(rc = db_remove(s->db, id, err)))
            rc = mt_db_commit(s->db, err);
        if (rc)
            mt_db_rollback(s->db);
        if (!rc || !mt_db_retryable(s->db))
            break;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return mt_err_prefix(err, rc, "object store: deleting object %s: ", id);
    if (s->cache)
        untrusted_objstore_delete(s->cache, id, NULL);
    return MT_OK;
}

mt_status mt_ostore_get(mt_ostore *s, const char *id, size_t max, uint8_t **out, size_t *len,
                        mt_err *err)
{
    *out = NULL;
    *len = 0;
    mt_ostore_reader *r = NULL;
    uint64_t size = 0;
    mt_status rc = mt_ostore_reader_open(s, id, &r, &size, err);
    if (rc)
        return rc;
    if (size > max) {
        mt_ostore_reader_close(r);
        return mt_err_set(err, MT_ETOOBIG, "object %s is larger than %zu bytes", id, max);
    }
    uint8_t *b = malloc(size ? (size_t)size : 1);
    if (!b) {
        mt_ostore_reader_close(r);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    size_t got = 0, n = 1;
    while (!rc && n > 0 && got < size) {
        rc = mt_ostore_reader_read(r, b + got, (size_t)size - got, &n, err);
        got += n;
    }
    if (!rc && got != size)
        rc = mt_err_set(err, MT_EIO, "object %s became shorter while read", id);
    mt_ostore_reader_close(r);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = got;
    return MT_OK;
}

/* ---- readers ------------------------------------------------------------------ */

struct mt_ostore_reader {
    mt_ostore *s;
    char id[33];
    int fd;    /* dir */
    db_head h; /* database: the pinned version */
    int64_t next;   /* next chunk to fetch */
    uint8_t *chunk; /* current chunk */
    size_t have, pos;
    uint64_t left;
};

mt_status mt_ostore_reader_open(mt_ostore *s, const char *id, mt_ostore_reader **out,
                                uint64_t *size, mt_err *err)
{
    *out = NULL;
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    mt_ostore_reader *r = calloc(1, sizeof *r);
    if (!r)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    r->s = s;
    r->fd = -1;
    snprintf(r->id, sizeof r->id, "%s", id);
    uint64_t n = 0;
    if (s->kind == MT_OSTORE_DIR)
        rc = untrusted_objstore_open_read(s->dir, id, &r->fd, &n, err);
    else {
        pthread_mutex_lock(&s->mu);
        rc = db_head_load(s, id, &r->h, err);
        pthread_mutex_unlock(&s->mu);
        n = (uint64_t)r->h.size;
        if (!rc && n > 0 && !(r->chunk = malloc((size_t)r->h.chunk_size)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (rc) {
        mt_ostore_reader_close(r);
        return rc;
    }
    r->left = n;
    if (size)
        *size = n;
    *out = r;
    return MT_OK;
}

/* Fetches chunk r->next of the pinned version into r->chunk. */
static mt_status db_fetch_chunk(mt_ostore_reader *r, mt_err *err)
{
    mt_ostore *s = r->s;
    int64_t seq = r->next;
    uint64_t off = (uint64_t)seq * (uint64_t)r->h.chunk_size;
    uint64_t rest = (uint64_t)r->h.size - off;
    size_t want = rest < (uint64_t)r->h.chunk_size ? (size_t)rest : (size_t)r->h.chunk_size;
    mt_db_stmt *q = NULL;
    pthread_mutex_lock(&s->mu);
    mt_status rc = mt_db_prepare(s->db, "SELECT data FROM object_chunks WHERE gen = ? AND seq = ?",
                                 &q, err);
    if (!rc) {
        mt_db_bind_text(q, 1, r->h.gen);
        mt_db_bind_int64(q, 2, seq);
        int st = mt_db_step(q, &rc, err);
        if (st == MT_DB_ROW) {
            size_t n = 0;
            const void *p = mt_db_col_blob(q, 0, &n);
            if (mt_db_col_null(q, 0) || n != want)
                rc = mt_err_set(err, MT_EIO,
                                "object %s is damaged in the object store database (chunk %lld "
                                "of %lld has %zu bytes, expected %zu)",
                                r->id, (long long)seq, (long long)r->h.chunks, n, want);
            else if (n)
                memcpy(r->chunk, p, n);
        } else if (st == MT_DB_DONE)
            rc = mt_err_set(err, MT_EIO,
                            "object %s is incomplete in the object store database (chunk %lld "
                            "of %lld missing; deleted or replaced while read?)",
                            r->id, (long long)seq, (long long)r->h.chunks);
    }
    mt_db_finalize(q);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    r->have = want;
    r->pos = 0;
    r->next++;
    return MT_OK;
}

mt_status mt_ostore_reader_read(mt_ostore_reader *r, uint8_t *buf, size_t cap, size_t *n,
                                mt_err *err)
{
    *n = 0;
    if (r->left == 0 || cap == 0)
        return MT_OK;
    if (cap > r->left)
        cap = (size_t)r->left;
    if (r->s->kind == MT_OSTORE_DIR) {
        for (;;) {
            ssize_t got = read(r->fd, buf, cap);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return mt_err_set(err, MT_EIO, "object store: reading object %s failed: %s",
                                  r->id, got < 0 ? strerror(errno) : "it became shorter");
            *n = (size_t)got;
            r->left -= (uint64_t)got;
            return MT_OK;
        }
    }
    if (r->pos == r->have) {
        mt_status rc = db_fetch_chunk(r, err);
        if (rc)
            return rc;
    }
    size_t k = r->have - r->pos < cap ? r->have - r->pos : cap;
    memcpy(buf, r->chunk + r->pos, k);
    r->pos += k;
    r->left -= k;
    *n = k;
    return MT_OK;
}

void mt_ostore_reader_close(mt_ostore_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->chunk);
    free(r);
}

/* ---- writers ------------------------------------------------------------------ */

struct mt_ostore_writer {
    mt_ostore *s;
    mt_objstore_writer *dw; /* dir */
    int fd;                 /* database: unlinked spool file */
    EVP_MD_CTX *md;
    uint64_t size;
    bool done, failed;
};

mt_status mt_ostore_writer_new(mt_ostore *s, mt_ostore_writer **out, mt_err *err)
{
    *out = NULL;
    mt_ostore_writer *w = calloc(1, sizeof *w);
    if (!w)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    w->s = s;
    w->fd = -1;
    mt_status rc;
    if (s->kind == MT_OSTORE_DIR)
        rc = untrusted_objstore_writer_new(s->dir, &w->dw, err);
    else {
        char tmp[PATH_MAX + 32];
        snprintf(tmp, sizeof tmp, "%s/mt-ospool.XXXXXX", s->spool);
        w->fd = mkstemp(tmp);
        if (w->fd < 0)
            rc = mt_err_set(err, MT_EIO,
                            "object store: cannot create a spool file in %s: %s (set TMPDIR)",
                            s->spool, strerror(errno));
        else {
            unlink(tmp); /* nothing to clean up after a crash */
            (void)fcntl(w->fd, F_SETFD, FD_CLOEXEC);
            w->md = EVP_MD_CTX_new();
            rc = w->md && EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) == 1
                     ? MT_OK
                     : mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 unavailable");
        }
    }
    if (rc) {
        mt_ostore_writer_free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

mt_status mt_ostore_writer_write(mt_ostore_writer *w, const uint8_t *data, size_t len,
                                 mt_err *err)
{
    if (w->done || w->failed)
        return mt_err_set(err, MT_EINVAL, "object store: the writer is closed");
    if (w->dw) {
        mt_status rc = untrusted_objstore_writer_write(w->dw, data, len, err);
        if (rc)
            w->failed = true;
        else
            w->size += len;
        return rc;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(w->fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            w->failed = true;
            return mt_err_set(err, e == ENOSPC ? MT_ETOOBIG : MT_EIO,
                              "object store: writing the spool file failed: %s", strerror(e));
        }
        off += (size_t)n;
    }
    if (EVP_DigestUpdate(w->md, data, len) != 1) {
        w->failed = true;
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    }
    w->size += len;
    return MT_OK;
}

uint64_t mt_ostore_writer_size(const mt_ostore_writer *w)
{
    return w ? w->size : 0;
}

mt_status mt_ostore_writer_commit(mt_ostore_writer *w, const char *id, char sha256_out[65],
                                  mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    if (w->done || w->failed)
        return mt_err_set(err, MT_EINVAL, "object store: the writer is closed");
    w->done = true;
    char sha[65];
    if (w->dw)
        rc = untrusted_objstore_writer_commit(w->dw, id, sha, err);
    else {
        put_src src = {.fd = w->fd, .size = w->size};
        uint8_t md[32];
        unsigned int ml = 0;
        if (EVP_DigestFinal_ex(w->md, md, &ml) != 1 || ml != 32)
            return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
        mt_hex_encode(md, 32, src.sha);
        rc = db_put(w->s, id, &src, err);
        memcpy(sha, src.sha, sizeof sha);
    }
    if (!rc && sha256_out)
        memcpy(sha256_out, sha, 65);
    return rc;
}

void mt_ostore_writer_free(mt_ostore_writer *w)
{
    if (!w)
        return;
    untrusted_objstore_writer_free(w->dw);
    if (w->fd >= 0)
        close(w->fd);
    EVP_MD_CTX_free(w->md);
    free(w);
}

/* ---- copies ------------------------------------------------------------------- */

mt_status mt_ostore_copy(mt_ostore *src, mt_ostore *dst, const char *id, char sha256_out[65],
                         mt_err *err)
{
    enum { PIECE = 256 * 1024 };
    mt_ostore_reader *r = NULL;
    mt_ostore_writer *w = NULL;
    uint8_t *buf = malloc(PIECE);
    mt_status rc = buf ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc)
        rc = mt_ostore_reader_open(src, id, &r, NULL, err);
    if (!rc)
        rc = mt_ostore_writer_new(dst, &w, err);
    size_t n = 1;
    while (!rc && n > 0) {
        rc = mt_ostore_reader_read(r, buf, PIECE, &n, err);
        if (!rc && n)
            rc = mt_ostore_writer_write(w, buf, n, err);
    }
    if (!rc)
        rc = mt_ostore_writer_commit(w, id, sha256_out, err);
    mt_ostore_writer_free(w);
    mt_ostore_reader_close(r);
    free(buf);
    return rc;
}

/* SHA-256 (hex) of the file at path; false if it cannot be read whole. */
static bool file_sha(const char *path, uint64_t size, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    struct stat sb;
    bool ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size &&
              untrusted_objstore_hash_fd(fd, size, hex, NULL) == MT_OK;
    close(fd);
    return ok;
}

mt_status mt_ostore_local(mt_ostore *s, const char *id, char *path, size_t cap, mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    if (s->kind == MT_OSTORE_DIR) {
        uint64_t n;
        if ((rc = untrusted_objstore_size(s->dir, id, &n, err)))
            return rc;
        return untrusted_objstore_path(s->dir, id, path, cap, err);
    }
    if (!s->cache)
        return mt_err_set(err, MT_EINVAL,
                          "object store: a database object store needs a cache directory to "
                          "give workers a file");
    db_head h;
    pthread_mutex_lock(&s->mu);
    rc = db_head_load(s, id, &h, err);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    if ((rc = untrusted_objstore_path(s->cache, id, path, cap, err)))
        return rc;
    /* the cached copy is used only when its digest is the recorded one (a
     * same-size replacement by another node, or a changed cache file, is
     * refetched) */
    char have[65];
    if (file_sha(path, (uint64_t)h.size, have) && !strcmp(have, h.sha))
        return MT_OK;
    /* fill the cache through a dir store over the same directory */
    mt_ostore c = {.kind = MT_OSTORE_DIR, .dir = s->cache};
    char got[65];
    if ((rc = mt_ostore_copy(s, &c, id, got, err)))
        return rc;
    if (strcmp(got, h.sha) != 0) {
        untrusted_objstore_delete(s->cache, id, NULL);
        return mt_err_set(err, MT_EIO,
                          "object %s: the bytes in the object store database do not match the "
                          "SHA-256 recorded with them (damaged or modified object)",
                          id);
    }
    return MT_OK;
}

/* Hashes exactly size bytes of fd into src (an fd source). */
static mt_status fd_src(int fd, uint64_t size, put_src *src, mt_err *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != size)
        return mt_err_set(err, MT_EIO, "object store: the file to store changed size");
    *src = (put_src){.fd = fd, .size = size};
    return untrusted_objstore_hash_fd(fd, size, src->sha, err);
}

mt_status mt_ostore_put_fd(mt_ostore *s, const char *id, int fd, uint64_t size,
                           char sha256_out[65], mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    put_src src;
    if ((rc = fd_src(fd, size, &src, err)))
        return rc;
    if (s->kind == MT_OSTORE_DIR) {
        mt_ostore_writer *w = NULL;
        uint8_t buf[1 << 16];
        if ((rc = mt_ostore_writer_new(s, &w, err)))
            return rc;
        for (uint64_t off = 0; !rc && off < size;) {
            size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
            ssize_t r = pread(fd, buf, n, (off_t)off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                rc = mt_err_set(err, MT_EIO, "object store: the file to store is shorter");
            else if (!(rc = mt_ostore_writer_write(w, buf, (size_t)r, err)))
                off += (uint64_t)r;
        }
        char sha[65];
        if (!rc && !(rc = mt_ostore_writer_commit(w, id, sha, err)) && strcmp(sha, src.sha))
            rc = mt_err_set(err, MT_EIO, "object store: the file changed while it was stored");
        mt_ostore_writer_free(w);
    } else
        rc = db_put(s, id, &src, err);
    if (!rc && sha256_out)
        memcpy(sha256_out, src.sha, 65);
    return rc;
}

/* A put of src inside the caller's transaction on db (database backend). */
static mt_status db_put_in(mt_ostore *s, mt_db *db, const char *id, const put_src *src,
                           char sha256_out[65], mt_err *err)
{
    if (s->kind != MT_OSTORE_DB)
        return mt_err_set(err, MT_EINVAL, "object store: a put inside a transaction needs the "
                                          "database backend");
    uint8_t *buf = !src->mem && src->size > 0 ? malloc(s->chunk) : NULL;
    if (!src->mem && src->size > 0 && !buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    bool insert_failed = false;
    mt_status rc = db_put_rows(s, db, id, src, buf, &insert_failed, err);
    free(buf);
    if (rc)
        return mt_err_prefix(err, rc, "object store: storing object %s: ", id);
    if (s->cache) /* a cached copy of another version must not be used */
        untrusted_objstore_delete(s->cache, id, NULL);
    if (sha256_out)
        memcpy(sha256_out, src->sha, 65);
    return MT_OK;
}

mt_status mt_ostore_put_fd_in(mt_ostore *s, mt_db *db, const char *id, int fd, uint64_t size,
                              char sha256_out[65], mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    put_src src;
    if ((rc = fd_src(fd, size, &src, err)))
        return rc;
    return db_put_in(s, db, id, &src, sha256_out, err);
}

mt_status mt_ostore_put_in(mt_ostore *s, mt_db *db, const char *id, const uint8_t *data,
                           size_t len, char sha256_out[65], mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    put_src src = {.mem = data ? data : (const uint8_t *)"", .fd = -1, .size = len};
    if ((rc = sha256_hex(src.mem, len, src.sha, err)))
        return rc;
    return db_put_in(s, db, id, &src, sha256_out, err);
}

/* ---- staged uploads (database backend) ---------------------------------------
 * object_stage: one header row per (task, fence, object), written when an
 * upload completed; object_stage_chunks: the chunks, each inserted on its own
 * (a bounded transaction) as the stream arrives, keyed by the upload's own
 * generation so that a retried upload never mixes with an earlier one. */

struct mt_ostore_stage {
    mt_ostore *s;
    char task[MT_ID_LEN + 1], object[MT_ID_LEN + 1];
    int64_t fence;
    mt_id gen;
    uint64_t size, written;
    int64_t seq;
    uint8_t *buf;
    size_t fill;
    EVP_MD_CTX *md;
    bool committed;
    bool reserved; /* its object_stage_reserve row exists */
};

/* Deletes the reservation of upload gen (best effort: the sweep gets what
 * is left). */
static void stage_unreserve(mt_ostore *s, const char *gen)
{
    mt_db_stmt *q = NULL;
    mt_err e;
    mt_status rc;
    pthread_mutex_lock(&s->mu);
    if (!mt_db_prepare(s->db, "DELETE FROM object_stage_reserve WHERE gen = ?", &q, &e)) {
        mt_db_bind_text(q, 1, gen);
        mt_db_step(q, &rc, &e);
    }
    mt_db_finalize(q);
    pthread_mutex_unlock(&s->mu);
}

static mt_status stage_key_check(mt_ostore *s, const char *task, int64_t fence,
                                 const char *object, mt_err *err)
{
    if (s->kind != MT_OSTORE_DB)
        return mt_err_set(err, MT_EINVAL, "object store: staged uploads need the database "
                                          "backend");
    if (!task || !mt_id_valid(task) || fence < 0 || (object && !mt_id_valid(object)))
        return mt_err_set(err, MT_EINVAL, "object store: bad staging key");
    return MT_OK;
}

/* Runs sql with (task, fence[, object]) bound as ?1 ?2 ?3. */
static mt_status stage_run(mt_db *db, const char *sql, const char *task, int64_t fence,
                           const char *object, int64_t *one, mt_err *err)
{
    mt_db_stmt *q = NULL;
    mt_status rc = mt_db_prepare(db, sql, &q, err);
    if (rc)
        return rc;
    mt_db_bind_text(q, 1, task);
    mt_db_bind_int64(q, 2, fence);
    if (object)
        mt_db_bind_text(q, 3, object);
    if (mt_db_step(q, &rc, err) == MT_DB_ROW && one)
        *one = mt_db_col_int64(q, 0);
    mt_db_finalize(q);
    return rc;
}

mt_status mt_ostore_stage_begin(mt_ostore *s, const char *task_id, int64_t fence,
                                const char *object, uint64_t size, uint64_t lease_cap,
                                mt_ostore_stage **out, mt_err *err)
{
    *out = NULL;
    mt_status rc = stage_key_check(s, task_id, fence, object, err);
    if (rc)
        return rc;
    if (size > lease_cap || size > INT64_MAX)
        return mt_err_set(err, MT_ETOOBIG,
                          "the outputs uploaded under this lease would exceed %llu bytes",
                          (unsigned long long)lease_cap);
    mt_id gen;
    mt_id_new(&gen);
    /* the bound per lease: what this lease staged or is staging for its
     * other outputs (per output the larger of its completed upload and the
     * uploads in flight, since a retried upload replaces it) plus this one,
     * checked and reserved in one transaction that holds a lock, so that
     * concurrent uploads of different outputs cannot pass the cap together:
     * SQLite's one writer (BEGIN IMMEDIATE); on PostgreSQL an advisory lock
     * of this lease (never the cluster's writer lock: s->mu is held, and a
     * transaction holding the writer lock may wait for s->mu) */
    bool sqlite = mt_db_backend_of(s->db) == MT_DB_SQLITE;
    char lease_key[MT_ID_LEN + 48];
    snprintf(lease_key, sizeof lease_key, "mesatee-stage:%s:%lld", task_id, (long long)fence);
    int64_t staged = 0;
    bool over = false;
    pthread_mutex_lock(&s->mu);
    for (int t = 0; t < PUT_TRIES; t++) {
        mt_db_stmt *q = NULL;
        rc = mt_db_begin(s->db, sqlite ? MT_DB_TX_IMMEDIATE : MT_DB_TX_DEFERRED, err);
        if (!rc && !sqlite &&
            !(rc = mt_db_prepare(s->db, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
                                 &q, err))) {
            mt_db_bind_text(q, 1, lease_key);
            mt_db_step(q, &rc, err);
        }
        mt_db_finalize(q);
        q = NULL;
        if (!rc)
            rc = stage_run(s->db,
                           "SELECT coalesce(sum(m), 0) FROM (SELECT object, max(size) AS m FROM "
                           "(SELECT object, size FROM object_stage WHERE task_id = ?1 AND "
                           "fence = ?2 UNION ALL SELECT object, size FROM object_stage_reserve "
                           "WHERE task_id = ?1 AND fence = ?2) AS u WHERE object <> ?3 GROUP BY "
                           "object) AS v",
                           task_id, fence, object, &staged, err);
        over = !rc && (staged < 0 || (uint64_t)staged > lease_cap - size);
        if (!rc && !over &&
            !(rc = mt_db_prepare(s->db,
                                 "INSERT INTO object_stage_reserve(gen, task_id, fence, object, "
                                 "size, created_at) VALUES(?, ?, ?, ?, ?, ?)",
                                 &q, err))) {
            mt_db_bind_text(q, 1, gen.s);
            mt_db_bind_text(q, 2, task_id);
            mt_db_bind_int64(q, 3, fence);
            mt_db_bind_text(q, 4, object);
            mt_db_bind_int64(q, 5, (int64_t)size);
            mt_db_bind_int64(q, 6, mt_now());
            mt_db_step(q, &rc, err);
        }
        mt_db_finalize(q);
        if (!rc && !over && !(rc = mt_db_commit(s->db, err)))
            break;
        bool again = !over && mt_db_retryable(s->db);
        mt_db_rollback(s->db);
        if (!again)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return mt_err_prefix(err, rc, "object store: staging an upload: ");
    if (over)
        return mt_err_set(err, MT_ETOOBIG,
                          "the outputs uploaded under this lease would exceed %llu bytes",
                          (unsigned long long)lease_cap);
    mt_ostore_stage *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(s->chunk)) || !(w->md = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        mt_ostore_stage_free(w);
        stage_unreserve(s, gen.s);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    w->s = s;
    snprintf(w->task, sizeof w->task, "%s", task_id);
    snprintf(w->object, sizeof w->object, "%s", object);
    w->fence = fence;
    w->size = size;
    w->gen = gen;
    w->reserved = true;
    *out = w;
    return MT_OK;
}

/* Inserts the buffered chunk (its own statement: a bounded transaction). */
static mt_status stage_flush(mt_ostore_stage *w, mt_err *err)
{
    mt_ostore *s = w->s;
    mt_db_stmt *q = NULL;
    pthread_mutex_lock(&s->mu);
    mt_status rc = mt_db_prepare(s->db,
                                 "INSERT INTO object_stage_chunks(gen, task_id, fence, seq, data) "
                                 "VALUES(?, ?, ?, ?, ?)",
                                 &q, err);
    if (!rc) {
        mt_db_bind_text(q, 1, w->gen.s);
        mt_db_bind_text(q, 2, w->task);
        mt_db_bind_int64(q, 3, w->fence);
        mt_db_bind_int64(q, 4, w->seq);
        mt_db_bind_blob(q, 5, w->buf, w->fill);
        mt_db_step(q, &rc, err);
    }
    mt_db_finalize(q);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return mt_err_prefix(err, rc, "object store: staging an upload: ");
    w->seq++;
    w->fill = 0;
    return MT_OK;
}

mt_status mt_ostore_stage_write(mt_ostore_stage *w, const uint8_t *data, size_t len, mt_err *err)
{
    if (w->committed || len > w->size - w->written)
        return mt_err_set(err, MT_EINVAL, "object store: more bytes than the upload announced");
    if (EVP_DigestUpdate(w->md, data, len) != 1)
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    w->written += len;
    while (len) {
        size_t n = w->s->chunk - w->fill < len ? w->s->chunk - w->fill : len;
        memcpy(w->buf + w->fill, data, n);
        w->fill += n;
        data += n;
        len -= n;
        mt_status rc;
        if (w->fill == w->s->chunk && (rc = stage_flush(w, err)))
            return rc;
    }
    return MT_OK;
}

/* Removes the staged upload of (task, fence, object) there, if any: its
 * header and its chunks (inside a transaction on db). */
static mt_status stage_remove_one(mt_db *db, const char *task, int64_t fence, const char *object,
                                  mt_err *err)
{
    mt_status rc = stage_run(db,
                             "DELETE FROM object_stage_chunks WHERE gen IN (SELECT gen FROM "
                             "object_stage WHERE task_id = ?1 AND fence = ?2 AND object = ?3)",
                             task, fence, object, NULL, err);
    if (!rc)
        rc = stage_run(db,
                       "DELETE FROM object_stage WHERE task_id = ?1 AND fence = ?2 AND "
                       "object = ?3",
                       task, fence, object, NULL, err);
    return rc;
}

mt_status mt_ostore_stage_commit(mt_ostore_stage *w, char sha256_out[65], mt_err *err)
{
    if (w->committed || w->written != w->size)
        return mt_err_set(err, MT_EINVAL, "object store: the upload is incomplete");
    mt_status rc;
    if ((w->fill || w->seq == 0) && w->size && (rc = stage_flush(w, err)))
        return rc;
    uint8_t d[32];
    unsigned dl = 0;
    char sha[65];
    if (EVP_DigestFinal_ex(w->md, d, &dl) != 1)
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    mt_hex_encode(d, 32, sha);
    mt_ostore *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (int t = 0; t < PUT_TRIES; t++) {
        mt_db_stmt *q = NULL;
        if (!(rc = mt_db_begin(s->db, tx_mode(s), err)) &&
            !(rc = stage_remove_one(s->db, w->task, w->fence, w->object, err)) &&
            !(rc = mt_db_prepare(s->db,
                                 "INSERT INTO object_stage(task_id, fence, object, gen, size, "
                                 "chunks, chunk_size, sha256, created_at) VALUES(?, ?, ?, ?, ?, "
                                 "?, ?, ?, ?)",
                                 &q, err))) {
            mt_db_bind_text(q, 1, w->task);
            mt_db_bind_int64(q, 2, w->fence);
            mt_db_bind_text(q, 3, w->object);
            mt_db_bind_text(q, 4, w->gen.s);
            mt_db_bind_int64(q, 5, (int64_t)w->size);
            mt_db_bind_int64(q, 6, w->seq);
            mt_db_bind_int64(q, 7, (int64_t)s->chunk);
            mt_db_bind_text(q, 8, sha);
            mt_db_bind_int64(q, 9, mt_now());
            mt_db_step(q, &rc, err);
        }
        mt_db_finalize(q);
        q = NULL;
        if (!rc && !(rc = mt_db_prepare(s->db, "DELETE FROM object_stage_reserve WHERE gen = ?",
                                         &q, err))) { /* complete now: its header counts instead */
            mt_db_bind_text(q, 1, w->gen.s);
            mt_db_step(q, &rc, err);
            mt_db_finalize(q);
        }
        if (!rc)
            rc = mt_db_commit(s->db, err);
        if (!rc)
            break;
        mt_db_rollback(s->db);
        /* a concurrent upload of the same output committed first (primary
         * key): replace it, as a put does */
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return mt_err_prefix(err, rc, "object store: staging an upload: ");
    w->committed = true;
    w->reserved = false;
    if (sha256_out)
        memcpy(sha256_out, sha, 65);
    return MT_OK;
}

void mt_ostore_stage_free(mt_ostore_stage *w)
{
    if (!w)
        return;
    if (!w->committed && w->s && w->seq) { /* best effort: the sweep gets the rest */
        mt_db_stmt *q = NULL;
        mt_err e;
        mt_status rc;
        pthread_mutex_lock(&w->s->mu);
        if (!mt_db_prepare(w->s->db, "DELETE FROM object_stage_chunks WHERE gen = ?", &q, &e)) {
            mt_db_bind_text(q, 1, w->gen.s);
            mt_db_step(q, &rc, &e);
        }
        mt_db_finalize(q);
        pthread_mutex_unlock(&w->s->mu);
    }
    if (w->reserved && w->s)
        stage_unreserve(w->s, w->gen.s);
    EVP_MD_CTX_free(w->md);
    free(w->buf);
    free(w);
}

typedef struct stage_head {
    char gen[80];
    int64_t size, chunks, chunk_size;
    char sha[80];
} stage_head;

static mt_status stage_head_load(mt_db *db, const char *task, int64_t fence, const char *object,
                                 stage_head *h, mt_err *err)
{
    memset(h, 0, sizeof *h);
    mt_db_stmt *q = NULL;
    mt_status rc = mt_db_prepare(db,
                                 "SELECT gen, size, chunks, chunk_size, sha256 FROM object_stage "
                                 "WHERE task_id = ?1 AND fence = ?2 AND object = ?3",
                                 &q, err);
    if (rc)
        return rc;
    mt_db_bind_text(q, 1, task);
    mt_db_bind_int64(q, 2, fence);
    mt_db_bind_text(q, 3, object);
    int r = mt_db_step(q, &rc, err);
    if (r == MT_DB_ROW) {
        snprintf(h->gen, sizeof h->gen, "%s", mt_db_col_text(q, 0));
        h->size = mt_db_col_int64(q, 1);
        h->chunks = mt_db_col_int64(q, 2);
        h->chunk_size = mt_db_col_int64(q, 3);
        snprintf(h->sha, sizeof h->sha, "%s", mt_db_col_text(q, 4));
    } else if (r == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND,
                        "an uploaded output is missing (upload it before the report)");
    mt_db_finalize(q);
    if (rc)
        return rc;
    if (!mt_id_valid(h->gen) || h->size < 0 || h->chunk_size < MT_OSTORE_CHUNK_MIN ||
        h->chunk_size > MT_OSTORE_CHUNK_MAX || strlen(h->sha) != 64 ||
        h->chunks != h->size / h->chunk_size + (h->size % h->chunk_size != 0))
        return mt_err_set(err, MT_EIO,
                          "output object %s: its staged upload in the object store database is "
                          "inconsistent",
                          object);
    return MT_OK;
}

mt_status mt_ostore_stage_info(mt_ostore *s, const char *task_id, int64_t fence,
                               const char *object, uint64_t *size, char sha256_hex[65],
                               mt_err *err)
{
    mt_status rc = stage_key_check(s, task_id, fence, object, err);
    if (rc)
        return rc;
    stage_head h;
    pthread_mutex_lock(&s->mu);
    rc = stage_head_load(s->db, task_id, fence, object, &h, err);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    *size = (uint64_t)h.size;
    memcpy(sha256_hex, h.sha, 65);
    return MT_OK;
}

mt_status mt_ostore_stage_publish_in(mt_ostore *s, struct mt_db *db, const char *task_id,
                                     int64_t fence, const char *object, uint64_t size,
                                     const char *sha256_hex, mt_err *err)
{
    mt_status rc = stage_key_check(s, task_id, fence, object, err);
    if (rc)
        return rc;
    stage_head h;
    if ((rc = stage_head_load(db, task_id, fence, object, &h, err)))
        return rc;
    if ((uint64_t)h.size != size || strcmp(h.sha, sha256_hex) != 0)
        return mt_err_set(err, MT_EIO,
                          "output object %s: the staged upload is not the one the report "
                          "names (size or SHA-256)",
                          object);
    /* the object's new version: the staged chunks copied inside the
     * database, then read back and hashed: what commits is what was checked */
    mt_id g;
    mt_id_new(&g);
    mt_db_stmt *q = NULL;
    if ((rc = db_remove(db, object, err)) ||
        (rc = mt_db_prepare(db,
                            "INSERT INTO object_data(id, gen, size, chunks, chunk_size, sha256, "
                            "created_at) VALUES(?, ?, ?, ?, ?, ?, ?)",
                            &q, err)))
        return rc;
    mt_db_bind_text(q, 1, object);
    mt_db_bind_text(q, 2, g.s);
    mt_db_bind_int64(q, 3, h.size);
    mt_db_bind_int64(q, 4, h.chunks);
    mt_db_bind_int64(q, 5, h.chunk_size);
    mt_db_bind_text(q, 6, h.sha);
    mt_db_bind_int64(q, 7, mt_now());
    mt_db_step(q, &rc, err);
    mt_db_finalize(q);
    if (rc || (rc = db_run2(db,
                            "INSERT INTO object_chunks(gen, seq, data) SELECT CAST(? AS TEXT), seq, data FROM "
                            "object_stage_chunks WHERE gen = ?",
                            g.s, h.gen, NULL, err)))
        return rc;
    int64_t n = -1;
    if (!(rc = mt_db_prepare(db, "SELECT count(*) FROM object_chunks WHERE gen = ?", &q, err))) {
        mt_db_bind_text(q, 1, g.s);
        if (mt_db_step(q, &rc, err) == MT_DB_ROW)
            n = mt_db_col_int64(q, 0);
        mt_db_finalize(q);
    }
    if (rc)
        return rc;
    if (n != h.chunks)
        return mt_err_set(err, MT_EIO,
                          "output object %s: its staged upload in the object store database "
                          "has %lld chunk(s), expected %lld",
                          object, (long long)n, (long long)h.chunks);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if ((rc = mt_db_prepare(db, "SELECT data FROM object_chunks WHERE gen = ? AND seq = ?", &q,
                            err))) {
        EVP_MD_CTX_free(md);
        return rc;
    }
    for (int64_t i = 0; !rc && i < h.chunks; i++) {
        uint64_t rest = (uint64_t)h.size - (uint64_t)i * (uint64_t)h.chunk_size;
        size_t want = rest < (uint64_t)h.chunk_size ? (size_t)rest : (size_t)h.chunk_size;
        mt_db_reset(q);
        mt_db_bind_text(q, 1, g.s);
        mt_db_bind_int64(q, 2, i);
        size_t got = 0;
        const void *p = NULL;
        int st = mt_db_step(q, &rc, err);
        if (rc)
            break;
        if (st == MT_DB_ROW)
            p = mt_db_col_blob(q, 0, &got);
        if (st != MT_DB_ROW || got != want)
            rc = mt_err_set(err, MT_EIO,
                            "output object %s: its staged upload in the object store database "
                            "is damaged (chunk %lld of %lld: %s)",
                            object, (long long)i, (long long)h.chunks,
                            st != MT_DB_ROW ? "missing" : "wrong length");
        else if (got && EVP_DigestUpdate(md, p, got) != 1)
            rc = mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    }
    mt_db_finalize(q);
    uint8_t d[32];
    unsigned dl = 0;
    char got_sha[65];
    if (!rc && EVP_DigestFinal_ex(md, d, &dl) != 1)
        rc = mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    EVP_MD_CTX_free(md);
    if (rc)
        return rc;
    mt_hex_encode(d, 32, got_sha);
    if (strcmp(got_sha, sha256_hex) != 0)
        return mt_err_set(err, MT_EIO,
                          "output object %s: its staged upload in the object store database "
                          "does not match the SHA-256 of the report (damaged or modified)",
                          object);
    if ((rc = stage_remove_one(db, task_id, fence, object, err)))
        return rc;
    if (s->cache) /* a cached copy of another version must not be used */
        untrusted_objstore_delete(s->cache, object, NULL);
    return MT_OK;
}

mt_status mt_ostore_stage_drop(mt_ostore *s, const char *task_id, int64_t fence, mt_err *err)
{
    mt_status rc = stage_key_check(s, task_id, fence, NULL, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    rc = stage_run(s->db, "DELETE FROM object_stage WHERE task_id = ?1 AND fence = ?2", task_id,
                   fence, NULL, NULL, err);
    if (!rc)
        rc = stage_run(s->db,
                       "DELETE FROM object_stage_chunks WHERE task_id = ?1 AND fence = ?2",
                       task_id, fence, NULL, NULL, err);
    if (!rc)
        rc = stage_run(s->db,
                       "DELETE FROM object_stage_reserve WHERE task_id = ?1 AND fence = ?2",
                       task_id, fence, NULL, NULL, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

#define STAGE_SWEEP_BATCH 256 /* leases read per statement; a sweep reads them all */

mt_status mt_ostore_stage_sweep(mt_ostore *s, bool (*keep)(void *ctx, const char *task_id,
                                                          int64_t fence),
                                void *ctx, size_t *dropped, mt_err *err)
{
    *dropped = 0;
    if (s->kind != MT_OSTORE_DB)
        return MT_OK;
    struct {
        char task[MT_ID_LEN + 1];
        int64_t fence;
        bool valid;
    } *l = calloc(STAGE_SWEEP_BATCH, sizeof *l);
    if (!l)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    /* keyset pages in (task_id, fence) order: every lease is looked at once
     * per sweep, in batches that each hold the store only for one read.
     * The cursor is the last key read, whatever it holds (strdup'ed: a
     * host-written key of any length still moves it forward). */
    char *after = strdup("");
    int64_t after_fence = INT64_MIN;
    mt_status rc = after ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    while (!rc) {
        size_t n = 0;
        mt_db_stmt *q = NULL;
        pthread_mutex_lock(&s->mu);
        rc = mt_db_prepare(s->db,
                           "SELECT task_id, fence FROM (SELECT task_id, fence FROM object_stage "
                           "UNION SELECT task_id, fence FROM object_stage_chunks UNION SELECT "
                           "task_id, fence FROM object_stage_reserve) AS l WHERE task_id > ?1 OR "
                           "(task_id = ?1 AND fence > ?2) ORDER BY task_id, fence LIMIT 256",
                           &q, err);
        if (!rc) {
            mt_db_bind_text(q, 1, after);
            mt_db_bind_int64(q, 2, after_fence);
        }
        while (!rc && n < STAGE_SWEEP_BATCH && mt_db_step(q, &rc, err) == MT_DB_ROW) {
            const char *t = mt_db_col_text(q, 0);
            char *nx = strdup(t ? t : "");
            if (!nx) {
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
                break;
            }
            free(after);
            after = nx;
            after_fence = mt_db_col_int64(q, 1);
            l[n].valid = t && mt_id_valid(t); /* else not a key we write: left alone */
            snprintf(l[n].task, sizeof l[n].task, "%s", l[n].valid ? t : "");
            l[n].fence = after_fence;
            n++;
        }
        mt_db_finalize(q);
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; !rc && i < n; i++)
            if (l[i].valid && l[i].fence >= 0 && !keep(ctx, l[i].task, l[i].fence) &&
                !(rc = mt_ostore_stage_drop(s, l[i].task, l[i].fence, err)))
                (*dropped)++;
        if (n < STAGE_SWEEP_BATCH)
            break;
    }
    free(after);
    free(l);
    return rc;
}

mt_status mt_ostore_digest_in(mt_ostore *s, struct mt_db *db, const char *id,
                              char sha256_hex[65], mt_err *err)
{
    mt_status rc = id_check(id, err);
    if (rc)
        return rc;
    if (s->kind != MT_OSTORE_DB)
        return mt_err_set(err, MT_EINVAL, "object store: needs the database backend");
    mt_db_stmt *q = NULL;
    if ((rc = mt_db_prepare(db, "SELECT sha256 FROM object_data WHERE id = ?", &q, err)))
        return rc;
    mt_db_bind_text(q, 1, id);
    int r = mt_db_step(q, &rc, err);
    if (r == MT_DB_ROW) {
        const char *t = mt_db_col_text(q, 0);
        if (!t || strlen(t) != 64)
            rc = mt_err_set(err, MT_EIO, "object %s: its record in the object store database "
                                         "is inconsistent", id);
        else
            memcpy(sha256_hex, t, 65);
    } else if (r == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "object %s does not exist", id);
    mt_db_finalize(q);
    return rc;
}
