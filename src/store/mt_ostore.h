/* mt_ostore: pluggable storage for mesatee's objects (uploaded inputs,
 * function modules, task outputs). Objects are authenticated ciphertext in
 * the mt_ff format (the key is wrapped in the store, the SHA-256 of the
 * ciphertext recorded beside it), so object storage needs no trust: it sees
 * sizes, never contents, and a changed or truncated object fails
 * authentication when decrypted. docs/cluster.md "Object storage" compares the
 * backends.
 *
 * Backends, chosen by the URL given to mt_ostore_open:
 *   - "dir:PATH" or a plain PATH (the default, PATH = the data directory):
 *     files PATH/objects/<id>, exactly the layout the core has always used
 *     (src/host/untrusted_objstore.c: temporary file + fsync + rename + fsync
 *     of the directory). PATH may be a shared mount (NFS, CephFS...) that
 *     several nodes use; rename must then be atomic on it.
 *   - "postgres://..." / "postgresql://...": chunked rows in that database
 *     (tables object_data and object_chunks, created at open if absent), so
 *     that objects are replicated with the database (Patroni, pg_basebackup).
 *     mt_ostore_open_db opens this backend on any mt_db URL (SQLite too).
 *
 * Atomicity: a put (mt_ostore_put, or a writer's commit) either makes the
 * whole new object visible or changes nothing; no reader ever sees a
 * half-written object or a mix of two versions. A put of an existing id
 * replaces it. Two concurrent puts of the same id: one wins whole; the other
 * replaces it whole afterwards (the database backend runs a put that lost
 * an insert race again), or fails with an error; never a mix. On the database
 * backend a put is ONE transaction (the writer spools the stream to an
 * unlinked temporary file first, so the transaction is not paced by the
 * network); a retryable database failure (failover, serialization conflict)
 * is retried up to 3 times from the spool.
 *
 * Readers stream: mt_ostore_reader_open pins one version of the object (on
 * the database backend: the row's generation; on dir: the open descriptor),
 * so a concurrent replace or delete never mixes versions: the reader either
 * reads the pinned version whole or fails with MT_EIO.
 *
 * Bad storage is reported, never trusted: a database object whose chunk set
 * is incomplete, has a chunk of the wrong length or an inconsistent header
 * fails with MT_EIO naming the object and the chunk; sizes are checked
 * against the header before memory is allocated.
 *
 * Ids are mt_id_valid (32 lower-case hex characters); others are MT_EINVAL.
 * Missing objects are MT_ENOTFOUND ("object <id> does not exist").
 *
 * Thread-safety: an mt_ostore may be used from several threads at once (the
 * database backend serialises its one connection with a mutex; a writer's
 * spool is its own). A reader or writer is used by one thread at a time. */
#ifndef MT_OSTORE_H
#define MT_OSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_ostore mt_ostore;
typedef struct mt_ostore_reader mt_ostore_reader;
typedef struct mt_ostore_writer mt_ostore_writer;

typedef enum mt_ostore_kind { MT_OSTORE_DIR = 1, MT_OSTORE_DB = 2 } mt_ostore_kind;

#define MT_OSTORE_CHUNK_DEFAULT (1024u * 1024u) /* database chunk: 1 MiB */
#define MT_OSTORE_CHUNK_MIN 64u
#define MT_OSTORE_CHUNK_MAX (64u * 1024u * 1024u)

typedef struct mt_ostore_opts {
    size_t chunk_size;     /* database backend: bytes per row; 0 = 1 MiB */
    const char *spool_dir; /* database writers' spool files; NULL = $TMPDIR or /tmp */
    /* Database backend: a directory (data-directory layout, objects under
     * cache_dir/objects/) where mt_ostore_local copies objects for workers
     * that read files by path. NULL: mt_ostore_local is MT_EINVAL there. */
    const char *cache_dir;
} mt_ostore_opts;

/* The backend a URL names, or 0 for an unknown scheme ("s3://...", "").
 * Plain paths and "dir:" are MT_OSTORE_DIR. */
mt_ostore_kind mt_ostore_url_kind(const char *url);
/* Opens the store a URL names (see the header); opts may be NULL. MT_EINVAL
 * naming the problem for an empty or unknown URL, a bad chunk size; the
 * backend's error (database connection, directory creation) otherwise. The
 * message names the URL without its password. */
mt_status mt_ostore_open(const char *url, const mt_ostore_opts *opts, mt_ostore **out,
                         mt_err *err);
/* Opens the database backend on any mt_db URL (SQLite paths included). */
mt_status mt_ostore_open_db(const char *db_url, const mt_ostore_opts *opts, mt_ostore **out,
                            mt_err *err);
void mt_ostore_close(mt_ostore *s); /* NULL is a no-op */
mt_ostore_kind mt_ostore_kind_of(const mt_ostore *s);

/* Stores len bytes as object id (replacing it); *sha256_hex (65 bytes, may
 * be NULL) receives the SHA-256 of the bytes. */
mt_status mt_ostore_put(mt_ostore *s, const char *id, const uint8_t *data, size_t len,
                        char sha256_hex[65], mt_err *err);
/* Reads a whole object of at most max bytes (MT_ETOOBIG above) into a new
 * buffer *out (caller frees; non-NULL even for an empty object). */
mt_status mt_ostore_get(mt_ostore *s, const char *id, size_t max, uint8_t **out, size_t *len,
                        mt_err *err);
/* Size of the object; MT_ENOTFOUND if absent. */
mt_status mt_ostore_size(mt_ostore *s, const char *id, uint64_t *size, mt_err *err);
/* *exists = whether the object is there (a failure is not "absent"). */
mt_status mt_ostore_exists(mt_ostore *s, const char *id, bool *exists, mt_err *err);
/* Deletes the object; absent is not an error. */
mt_status mt_ostore_delete(mt_ostore *s, const char *id, mt_err *err);
/* A path of a local file holding object id, for code that hands paths to
 * workers: the object's own file (dir), or a copy made in opts.cache_dir
 * (database; used only when its SHA-256 is the one recorded in the header
 * row, else fetched again by temporary file + rename; a fetched copy whose
 * digest is not the recorded one is removed and MT_EIO). The worker's own
 * SHA-256 and authentication checks still apply. MT_ENOTFOUND if the object
 * is absent. */
mt_status mt_ostore_local(mt_ostore *s, const char *id, char *path, size_t cap, mt_err *err);
/* Stores exactly size bytes of the regular file fd (read with pread, from
 * offset 0) as object id; *sha256_hex (may be NULL) receives their digest.
 * MT_EIO if the file is not size bytes long. */
mt_status mt_ostore_put_fd(mt_ostore *s, const char *id, int fd, uint64_t size,
                           char sha256_hex[65], mt_err *err);
/* Database backend only: the same, inside a transaction the caller opened on
 * db, a connection to the same database as the store's (so the object
 * becomes visible atomically with what the caller commits, and disappears
 * with a rollback). The caller serialises its use of db. */
struct mt_db;
mt_status mt_ostore_put_fd_in(mt_ostore *s, struct mt_db *db, const char *id, int fd,
                              uint64_t size, char sha256_hex[65], mt_err *err);
/* The same from memory. */
mt_status mt_ostore_put_in(mt_ostore *s, struct mt_db *db, const char *id, const uint8_t *data,
                           size_t len, char sha256_hex[65], mt_err *err);
/* Copies object id from src to dst (streamed; for moving between backends
 * and filling caches). *sha256_hex (may be NULL) is the copy's digest. */
mt_status mt_ostore_copy(mt_ostore *src, mt_ostore *dst, const char *id, char sha256_hex[65],
                         mt_err *err);

/* ---- streaming -------------------------------------------------------------- */
/* Opens object id for reading; *size (may be NULL) receives its size. */
mt_status mt_ostore_reader_open(mt_ostore *s, const char *id, mt_ostore_reader **out,
                                uint64_t *size, mt_err *err);
/* Reads up to cap bytes into buf; *n = 0 at the end. MT_EIO when the stored
 * object is damaged or was deleted/replaced under a database reader. */
mt_status mt_ostore_reader_read(mt_ostore_reader *r, uint8_t *buf, size_t cap, size_t *n,
                                mt_err *err);
void mt_ostore_reader_close(mt_ostore_reader *r); /* NULL is a no-op */

/* A writer for an object that arrives in pieces; nothing is visible until
 * _commit. _free discards an uncommitted writer (NULL ok). */
mt_status mt_ostore_writer_new(mt_ostore *s, mt_ostore_writer **out, mt_err *err);
mt_status mt_ostore_writer_write(mt_ostore_writer *w, const uint8_t *data, size_t len,
                                 mt_err *err);
/* Bytes written so far. */
uint64_t mt_ostore_writer_size(const mt_ostore_writer *w);
/* Stores what was written as object id (one commit per writer). */
mt_status mt_ostore_writer_commit(mt_ostore_writer *w, const char *id, char sha256_hex[65],
                                  mt_err *err);
void mt_ostore_writer_free(mt_ostore_writer *w);

/* ---- staged uploads (database backend only; docs/cluster.md "Object
 * storage": executor uploads with --objects db) ---------------------------
 * An output that a remote executor uploads before its report is staged in
 * the database (tables object_stage, object_stage_chunks), keyed by the task,
 * the lease's fencing token and the output's object id, so that any node on
 * the same database can take the report. The chunks are inserted one
 * statement each (a bounded transaction) as the stream arrives; the header
 * row, written by _commit, makes the upload complete (a retried upload of the
 * same key replaces it whole). Other keys are MT_EINVAL (ids: mt_id_valid,
 * fence >= 0); the dir backend is MT_EINVAL. */
typedef struct mt_ostore_stage mt_ostore_stage;
/* Starts staging size bytes; MT_ETOOBIG when the uploads of this lease for
 * its other objects, completed or in flight (per object the larger), plus
 * size exceed lease_cap. The check and this upload's reservation (table
 * object_stage_reserve, until _commit or _free) are one transaction under a
 * lock (SQLite BEGIN IMMEDIATE; PostgreSQL an advisory lock of the lease),
 * so concurrent uploads on any connections cannot pass the cap together. */
mt_status mt_ostore_stage_begin(mt_ostore *s, const char *task_id, int64_t fence,
                                const char *object, uint64_t size, uint64_t lease_cap,
                                mt_ostore_stage **out, mt_err *err);
/* Appends bytes (never more than the size announced: MT_EINVAL). */
mt_status mt_ostore_stage_write(mt_ostore_stage *w, const uint8_t *data, size_t len,
                                mt_err *err);
/* Completes the upload (all size bytes written, else MT_EINVAL);
 * *sha256_hex (may be NULL) receives the SHA-256 of the bytes received. */
mt_status mt_ostore_stage_commit(mt_ostore_stage *w, char sha256_hex[65], mt_err *err);
/* Frees w; an uncommitted upload's chunks are deleted (best effort). */
void mt_ostore_stage_free(mt_ostore_stage *w);
/* Size and SHA-256 recorded for a completed upload; MT_ENOTFOUND if none. */
mt_status mt_ostore_stage_info(mt_ostore *s, const char *task_id, int64_t fence,
                               const char *object, uint64_t *size, char sha256_hex[65],
                               mt_err *err);
/* Inside the caller's open transaction on db (the outcome's): the completed
 * upload becomes object `object` (replacing it) and its staging rows go, so
 * both commit or roll back with the caller's. The header must record size
 * and sha256_hex, and the chunks copied into the object are read back and
 * hashed: a missing, extra or wrong-length chunk or another digest is MT_EIO
 * naming the object and the chunk (nothing is changed that the caller's
 * rollback does not undo). MT_ENOTFOUND when there is no completed upload. */
mt_status mt_ostore_stage_publish_in(mt_ostore *s, struct mt_db *db, const char *task_id,
                                     int64_t fence, const char *object, uint64_t size,
                                     const char *sha256_hex, mt_err *err);
/* Deletes every staged row (complete or not) of the lease (task, fence). */
mt_status mt_ostore_stage_drop(mt_ostore *s, const char *task_id, int64_t fence, mt_err *err);
/* Drops the staged rows (chunks, headers, reservations) of every lease for
 * which keep(ctx, task, fence) is false: all of them, read in keyset pages
 * of 256 leases (each page one short read); *dropped = leases dropped. The
 * dir backend: nothing. */
mt_status mt_ostore_stage_sweep(mt_ostore *s,
                                bool (*keep)(void *ctx, const char *task_id, int64_t fence),
                                void *ctx, size_t *dropped, mt_err *err);
/* The SHA-256 recorded for object id, read on db (a connection to the same
 * database, e.g. inside the caller's transaction); MT_ENOTFOUND if absent. */
mt_status mt_ostore_digest_in(mt_ostore *s, struct mt_db *db, const char *id,
                              char sha256_hex[65], mt_err *err);

#endif
