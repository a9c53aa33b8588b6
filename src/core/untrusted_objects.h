/* untrusted_objects: the one interface through which the core reads, writes,
 * deletes and renames objects (uploaded inputs, function modules, task
 * outputs), whatever backend `serve --objects` chose (docs/cluster.md
 * "Object storage"):
 *   - "dir" (default, NULL or ""): <data-dir>/objects/<id>, today's layout;
 *   - "dir:PATH": PATH/objects/<id>, e.g. a shared mount used by several nodes;
 *   - "db": chunked rows in the store's own database (src/store/mt_ostore.h),
 *     replicated and failed over with it; <data-dir>/objects/ is then this
 *     node's local cache and staging directory (worker inputs are fetched
 *     there, digest-checked; worker outputs and executor uploads land there
 *     and enter the database in the transaction that stores the outcome).
 * The host (disk, database) is untrusted: objects are authenticated mt_ff
 * ciphertext and every consumer checks the SHA-256 recorded in the store's
 * MACed rows (worker inputs, downloads) or the authentication tag.
 *
 * Local paths: workers and executor transfers read and write files by path.
 * _read_path gives a file holding the object (dir: the object itself; db:
 * the digest-checked cached copy); _write_path the local file an output is
 * produced at (dir: the object itself; db: the staging file, stored by
 * _publish_in).
 * Thread-safety: all functions may be called from any thread. */
#ifndef UNTRUSTED_OBJECTS_H
#define UNTRUSTED_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_db.h"
#include "mt_err.h"
#include "untrusted_objstore.h"

typedef struct mt_core mt_core;
typedef struct mt_ostore mt_ostore;

/* Whether spec is a valid --objects value (NULL/"" = default); MT_EINVAL
 * naming the accepted forms otherwise. */
mt_status untrusted_objects_check(const char *spec, mt_err *err);
/* Opens the objects of core c (c->data_dir and c->db_path set): fills c->objs
 * (and c->ostore for "db"). */
mt_status untrusted_objects_open(mt_core *c, const char *spec, mt_err *err);
void untrusted_objects_close(mt_core *c);
/* "dir", "dir:PATH" or "db": the backend in use, for logs and metrics. */
const char *untrusted_objects_kind(const mt_core *c);

mt_status untrusted_objects_read_path(mt_core *c, const char *id, char *path, size_t cap,
                                      mt_err *err);
mt_status untrusted_objects_write_path(mt_core *c, const char *id, char *path, size_t cap,
                                       mt_err *err);
/* Opens the object for reading (see untrusted_objstore_open_read). */
mt_status untrusted_objects_open_read(mt_core *c, const char *id, int *fd, uint64_t *size,
                                      mt_err *err);
/* Reads the first cap bytes of the object into buf (*n = bytes read). */
mt_status untrusted_objects_head(mt_core *c, const char *id, uint8_t *buf, size_t cap, size_t *n,
                                 mt_err *err);
/* Stores a whole object (outside any transaction of the caller). */
mt_status untrusted_objects_put(mt_core *c, const char *id, const uint8_t *data, size_t len,
                                char sha256_hex[65], mt_err *err);
/* Stores a whole object inside the caller's open transaction on db (dir: a
 * crash-safe file write, independent of the transaction; db: its rows, which
 * commit or roll back with the caller's). */
mt_status untrusted_objects_put_in(mt_core *c, mt_db *db, const char *id, const uint8_t *data,
                                   size_t len, char sha256_hex[65], mt_err *err);
/* Undoes _put_in before the caller rolls back (dir: deletes the file; db:
 * nothing, the rollback removes the rows). */
void untrusted_objects_drop_in(mt_core *c, const char *id);
/* Commits a streamed upload (untrusted_objstore_writer over c->objs) as id and
 * stores it in the backend (db: one transaction; the local file is dropped). */
mt_status untrusted_objects_commit_upload(mt_core *c, mt_objstore_writer *w, const char *id,
                                          char sha256_hex[65], mt_err *err);
/* Inside the caller's open transaction on db (the outcome of a task): the
 * output produced at _write_path(id) becomes the object. Its SHA-256 must be
 * sha256_hex (what the outcome records), else MT_EIO. dir: the file is the
 * object already (nothing to do); db: its rows are inserted on db, so they
 * commit or roll back with the outcome. */
mt_status untrusted_objects_publish_in(mt_core *c, mt_db *db, const char *id,
                                       const char *sha256_hex, mt_err *err);
/* db: removes the local file a worker produced an output in (path, from
 * _write_path) after the output could not be stored: the output never
 * became an object, so nothing else reads that file. dir: nothing (the
 * file is the object's own path, on a mount other nodes may share).
 * Absent is fine; other errors are logged. */
void untrusted_objects_discard_output(mt_core *c, const char *path);
/* Deletes the object (and a cached copy); absent is not an error. */
mt_status untrusted_objects_delete(mt_core *c, const char *id, mt_err *err);
/* Removes the leftovers of interrupted writes from the local object
 * directory: "*.tmp.*", "*.tmp-*", "*.report-*" and "<id>.up-<fence>" uploads
 * whose fence is not the lease of a running task (db: read on db). On a
 * shared directory ("dir:PATH") only files not modified for an hour (another
 * node may be writing). Logs how many files and bytes. */
void untrusted_objects_sweep(mt_core *c, mt_db *db);

/* ---- executor uploads (POST /v1/executor/output; docs/cluster.md "Object
 * storage") ----------------------------------------------------------------
 * An output uploaded by a remote executor under the lease (task, fence)
 * before its report. dir: the file <object>.up-<fence> in the object
 * directory (temporary file + fsync + rename; a free-disk reserve of 1 GiB
 * is kept), so several nodes need a shared mount. db: staged in the database
 * (mt_ostore_stage_*), so any node on it can take the report. At most
 * lease_cap bytes (db: all outputs of the lease together). */
typedef struct untrusted_upload untrusted_upload;
mt_status untrusted_objects_upload_begin(mt_core *c, const char *task_id, int64_t fence,
                                         const char *object, uint64_t size, uint64_t lease_cap,
                                         untrusted_upload **out, mt_err *err);
mt_status untrusted_objects_upload_write(untrusted_upload *u, const uint8_t *data, size_t len,
                                         mt_err *err);
/* Completes it; sha256_hex receives the digest of the bytes received. */
mt_status untrusted_objects_upload_commit(untrusted_upload *u, char sha256_hex[65], mt_err *err);
void untrusted_objects_upload_free(untrusted_upload *u); /* uncommitted: removed */
/* Size and SHA-256 of a completed upload (dir: hashed from the file; db:
 * as recorded, checked again by _publish_in); MT_ENOTFOUND if none. */
mt_status untrusted_objects_upload_info(mt_core *c, const char *task_id, int64_t fence,
                                        const char *object, uint64_t *size, char sha256_hex[65],
                                        mt_err *err);
/* Inside the outcome's transaction on db: the upload becomes the object
 * (dir: rename over it; db: rows moved and their digest checked against
 * sha256_hex, MT_EIO when damaged). */
mt_status untrusted_objects_upload_publish_in(mt_core *c, mt_db *db, const char *task_id,
                                              int64_t fence, const char *object, uint64_t size,
                                              const char *sha256_hex, mt_err *err);
/* Best effort: removes what was uploaded under (task, fence) (dir: the file
 * of object; db: every staged row of the lease, object ignored). */
void untrusted_objects_upload_drop(mt_core *c, const char *task_id, int64_t fence,
                                   const char *object);
/* db: drops the staged uploads of leases that are not the current lease of a
 * running task (read on db); logs how many. dir: nothing. */
void untrusted_objects_sweep_staged(mt_core *c, mt_db *db);

#endif
