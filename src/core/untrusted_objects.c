/* untrusted_objects: see untrusted_objects.h. The local directory (c->objs)
 * is always open: the objects themselves (dir) or this node's cache and
 * staging area (db, where c->ostore holds the objects). */
#include "untrusted_objects.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_internal.h"
#include "mt_log.h"
#include "mt_ostore.h"

/* a shared directory: leftovers younger than this may be another node's write */
#define SHARED_SWEEP_MIN_AGE_S 3600

mt_status untrusted_objects_check(const char *spec, mt_err *err)
{
    if (!spec || !*spec || !strcmp(spec, "dir") || !strcmp(spec, "db"))
        return MT_OK;
    if (!strncmp(spec, "dir:", 4)) {
        if (spec[4] != '/')
            return mt_err_set(err, MT_EINVAL,
                              "dir: needs an absolute directory path (dir:/mnt/shared)");
        return MT_OK;
    }
    return mt_err_set(err, MT_EINVAL, "expected dir, dir:/ABSOLUTE/PATH or db");
}

mt_status untrusted_objects_open(mt_core *c, const char *spec, mt_err *err)
{
    mt_status rc = untrusted_objects_check(spec, err);
    if (rc)
        return mt_err_prefix(err, rc, "--objects: ");
    bool shared = spec && !strncmp(spec, "dir:", 4);
    const char *dir = shared ? spec + 4 : c->data_dir;
    if ((rc = mt_mkdirs(dir, 0700, err)) || (rc = untrusted_objstore_open(dir, &c->objs, err)))
        return rc;
    c->objs_shared = shared;
    if (spec && !strcmp(spec, "db")) {
        /* the objects live in the store's database; objects/ is the cache */
        mt_ostore_opts o = {.spool_dir = c->data_dir, .cache_dir = c->data_dir};
        if ((rc = mt_ostore_open_db(c->db_path, &o, &c->ostore, err)))
            return mt_err_prefix(err, rc, "--objects db: ");
    }
    return MT_OK;
}

void untrusted_objects_close(mt_core *c)
{
    mt_ostore_close(c->ostore);
    c->ostore = NULL;
    untrusted_objstore_close(c->objs);
    c->objs = NULL;
}

const char *untrusted_objects_kind(const mt_core *c)
{
    return c->ostore ? "db" : c->objs_shared ? "dir:PATH" : "dir";
}

mt_status untrusted_objects_read_path(mt_core *c, const char *id, char *path, size_t cap,
                                      mt_err *err)
{
    if (c->ostore)
        return mt_ostore_local(c->ostore, id, path, cap, err);
    return untrusted_objstore_path(c->objs, id, path, cap, err);
}

mt_status untrusted_objects_write_path(mt_core *c, const char *id, char *path, size_t cap,
                                       mt_err *err)
{
    return untrusted_objstore_path(c->objs, id, path, cap, err);
}

mt_status untrusted_objects_open_read(mt_core *c, const char *id, int *fd, uint64_t *size,
                                      mt_err *err)
{
    if (c->ostore) { /* fills the digest-checked cache copy */
        char p[4096];
        mt_status rc = mt_ostore_local(c->ostore, id, p, sizeof p, err);
        if (rc)
            return rc;
    }
    return untrusted_objstore_open_read(c->objs, id, fd, size, err);
}

mt_status untrusted_objects_head(mt_core *c, const char *id, uint8_t *buf, size_t cap, size_t *n,
                                 mt_err *err)
{
    *n = 0;
    if (c->ostore) {
        mt_ostore_reader *r = NULL;
        mt_status rc = mt_ostore_reader_open(c->ostore, id, &r, NULL, err);
        for (size_t got = 1; !rc && *n < cap && got;)
            if (!(rc = mt_ostore_reader_read(r, buf + *n, cap - *n, &got, err)))
                *n += got;
        mt_ostore_reader_close(r);
        return rc;
    }
    int fd = -1;
    uint64_t size = 0;
    mt_status rc = untrusted_objstore_open_read(c->objs, id, &fd, &size, err);
    if (rc)
        return rc;
    ssize_t got = pread(fd, buf, cap, 0);
    close(fd);
    if (got < 0)
        return mt_err_set(err, MT_EIO, "object %s: read failed: %s", id, strerror(errno));
    *n = (size_t)got;
    return MT_OK;
}

mt_status untrusted_objects_put(mt_core *c, const char *id, const uint8_t *data, size_t len,
                                char sha256_hex[65], mt_err *err)
{
    if (c->ostore)
        return mt_ostore_put(c->ostore, id, data, len, sha256_hex, err);
    return untrusted_objstore_put(c->objs, id, data, len, sha256_hex, err);
}

mt_status untrusted_objects_put_in(mt_core *c, mt_db *db, const char *id, const uint8_t *data,
                                   size_t len, char sha256_hex[65], mt_err *err)
{
    if (c->ostore)
        return mt_ostore_put_in(c->ostore, db, id, data, len, sha256_hex, err);
    return untrusted_objstore_put(c->objs, id, data, len, sha256_hex, err);
}

void untrusted_objects_drop_in(mt_core *c, const char *id)
{
    if (!c->ostore)
        untrusted_objstore_delete(c->objs, id, NULL);
}

mt_status untrusted_objects_commit_upload(mt_core *c, mt_objstore_writer *w, const char *id,
                                          char sha256_hex[65], mt_err *err)
{
    mt_status rc = untrusted_objstore_writer_commit(w, id, sha256_hex, err);
    if (rc || !c->ostore)
        return rc;
    int fd = -1;
    uint64_t size = 0;
    char sha[65];
    if (!(rc = untrusted_objstore_open_read(c->objs, id, &fd, &size, err))) {
        rc = mt_ostore_put_fd(c->ostore, id, fd, size, sha, err);
        close(fd);
    }
    if (!rc && strcmp(sha, sha256_hex) != 0)
        rc = mt_err_set(err, MT_EIO, "object %s changed on the local disk before it was stored",
                        id);
    if (rc) /* the local file is not the object: never leave it as a cache */
        untrusted_objstore_delete(c->objs, id, NULL);
    return rc;
}

mt_status untrusted_objects_publish_in(mt_core *c, mt_db *db, const char *id,
                                       const char *sha256_hex, mt_err *err)
{
    if (!c->ostore)
        return MT_OK; /* the file is the object; what it holds is checked by readers */
    int fd = -1;
    uint64_t size = 0;
    mt_status rc = untrusted_objstore_open_read(c->objs, id, &fd, &size, err);
    if (rc)
        return mt_err_prefix(err, rc, "storing output object: ");
    char sha[65];
    rc = mt_ostore_put_fd_in(c->ostore, db, id, fd, size, sha, err);
    close(fd);
    if (!rc && sha256_hex && strcmp(sha, sha256_hex) != 0)
        rc = mt_err_set(err, MT_EIO,
                        "output object %s does not match the SHA-256 of the outcome (the local "
                        "file changed)",
                        id);
    return rc;
}

mt_status untrusted_objects_delete(mt_core *c, const char *id, mt_err *err)
{
    mt_status rc = untrusted_objstore_delete(c->objs, id, err);
    if (!rc && c->ostore)
        rc = mt_ostore_delete(c->ostore, id, err);
    return rc;
}

/* ---- crash leftovers -------------------------------------------------------- */

typedef struct sweep_ctx {
    mt_db *db;
} sweep_ctx;

/* Keeps "<object>.up-<fence>" when that fence is the lease of a running task
 * that has the object as an output (its executor may still report it). */
static bool keep_upload(void *arg, const char *name)
{
    sweep_ctx *x = arg;
    const char *up = strstr(name, ".up-");
    if (!up || up - name != MT_ID_LEN || !x->db)
        return false;
    char id[MT_ID_LEN + 1];
    memcpy(id, name, MT_ID_LEN);
    id[MT_ID_LEN] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long long fence = strtoull(up + 4, &end, 10);
    if (!mt_id_valid(id) || errno || !end || *end || end == up + 4 || fence > INT64_MAX)
        return false;
    mt_db_stmt *q = NULL;
    mt_err e;
    mt_status rc = mt_db_prepare(x->db,
                                 "SELECT 1 FROM tasks t JOIN task_files tf ON tf.task_id = "
                                 "t.task_id AND tf.direction = 'output' JOIN files f ON "
                                 "f.file_id = tf.file_id WHERE t.status = 'running' AND "
                                 "t.lease_fence = ? AND f.object_id = ?",
                                 &q, &e);
    if (rc)
        return true; /* cannot tell: keep it */
    mt_db_bind_int64(q, 1, (int64_t)fence);
    mt_db_bind_text(q, 2, id);
    int s = mt_db_step(q, &rc, &e);
    mt_db_finalize(q);
    return rc || s == MT_DB_ROW;
}

void untrusted_objects_sweep(mt_core *c, mt_db *db)
{
    sweep_ctx x = {db};
    uint64_t bytes = 0;
    size_t n = untrusted_objstore_sweep_leftovers(
        c->objs, c->objs_shared ? SHARED_SWEEP_MIN_AGE_S : 0, keep_upload, &x, &bytes);
    if (n)
        mt_info("objects: removed %zu leftover file(s) of interrupted writes (%" PRIu64
                " bytes)",
                n, bytes);
}
