/* untrusted_objects: see untrusted_objects.h. The local directory (c->objs)
 * is always open: the objects themselves (dir) or this node's cache and
 * staging area (db, where c->ostore holds the objects). */
#include "untrusted_objects.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
    if (rc == MT_ENOTFOUND && sha256_hex) {
        /* an executor's upload staged in the database was moved into place
         * earlier in this transaction (untrusted_objects_upload_publish_in) */
        char have[65];
        mt_err e2;
        if (mt_ostore_digest_in(c->ostore, db, id, have, &e2) == MT_OK &&
            !strcmp(have, sha256_hex))
            return MT_OK;
    }
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

void untrusted_objects_discard_output(mt_core *c, const char *path)
{
    if (!c->ostore || !path || !*path)
        return;
    if (unlink(path) && errno != ENOENT)
        mt_warn("objects: removing an output that could not be stored from the local object "
                "directory failed: %s: %s",
                path, strerror(errno));
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
    untrusted_objects_sweep_staged(c, db);
}

/* ---- executor uploads ------------------------------------------------------- */

/* Free space an upload must leave on the objects' file system (dir). */
#define UPLOAD_DISK_RESERVE ((uint64_t)1 << 30)

struct untrusted_upload {
    mt_ostore_stage *stage; /* db */
    int fd;                 /* dir: the temporary file */
    EVP_MD_CTX *md;
    char tmp[4096 + 64], path[4096 + 32];
};

/* dir: the staging name of an uploaded output, <object path>.up-<fence> */
static mt_status upload_path(mt_core *c, const char *object, int64_t fence, char out[4096 + 32],
                             mt_err *err)
{
    char p[4096];
    mt_status rc = untrusted_objstore_path(c->objs, object, p, sizeof p, err);
    if (!rc)
        snprintf(out, 4096 + 32, "%s.up-%lld", p, (long long)fence);
    return rc;
}

mt_status untrusted_objects_upload_begin(mt_core *c, const char *task_id, int64_t fence,
                                         const char *object, uint64_t size, uint64_t lease_cap,
                                         untrusted_upload **out, mt_err *err)
{
    *out = NULL;
    untrusted_upload *u = calloc(1, sizeof *u);
    if (!u)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    u->fd = -1;
    mt_status rc;
    if (c->ostore) {
        if ((rc = mt_ostore_stage_begin(c->ostore, task_id, fence, object, size, lease_cap,
                                        &u->stage, err)))
            goto fail;
        *out = u;
        return MT_OK;
    }
    if (size > lease_cap) {
        rc = mt_err_set(err, MT_ETOOBIG, "an output above %llu bytes",
                        (unsigned long long)lease_cap);
        goto fail;
    }
    uint8_t rnd[8];
    char hex[17];
    if ((rc = upload_path(c, object, fence, u->path, err)) ||
        (rc = mt_random(rnd, sizeof rnd, err)))
        goto fail;
    mt_hex_encode(rnd, sizeof rnd, hex);
    snprintf(u->tmp, sizeof u->tmp, "%s.tmp-%s", u->path, hex);
    /* the disk is shared by every task: an upload must leave a reserve */
    char dir[4096 + 32];
    snprintf(dir, sizeof dir, "%s", u->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    struct statvfs vfs;
    if (statvfs(slash ? dir : ".", &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < size + UPLOAD_DISK_RESERVE) {
        rc = mt_err_set(err, MT_EUNAVAIL,
                        "the scheduler has not enough free disk space for this output");
        goto fail;
    }
    u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (u->fd < 0) {
        rc = mt_err_set(err, MT_EIO, "the scheduler cannot store this output");
        goto fail;
    }
    if (!(u->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto fail;
    }
    *out = u;
    return MT_OK;
fail:
    untrusted_objects_upload_free(u);
    return rc;
}

mt_status untrusted_objects_upload_write(untrusted_upload *u, const uint8_t *data, size_t len,
                                         mt_err *err)
{
    if (u->stage)
        return mt_ostore_stage_write(u->stage, data, len, err);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(u->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return mt_err_set(err, errno == ENOSPC ? MT_EUNAVAIL : MT_EIO,
                              "the scheduler cannot store this output (%s)",
                              errno == ENOSPC ? "disk full" : "write error");
        off += (size_t)w;
    }
    if (EVP_DigestUpdate(u->md, data, len) != 1)
        return mt_err_set(err, MT_EINTERNAL, "sha256 failed");
    return MT_OK;
}

mt_status untrusted_objects_upload_commit(untrusted_upload *u, char sha256_hex[65], mt_err *err)
{
    if (u->stage)
        return mt_ostore_stage_commit(u->stage, sha256_hex, err);
    unsigned char d[32];
    unsigned dl = 0;
    if (fsync(u->fd) != 0 || EVP_DigestFinal_ex(u->md, d, &dl) != 1)
        return mt_err_set(err, MT_EIO, "the scheduler cannot store this output");
    close(u->fd);
    u->fd = -1;
    if (rename(u->tmp, u->path) != 0)
        return mt_err_set(err, MT_EIO, "the scheduler cannot store this output");
    u->tmp[0] = '\0';
    mt_hex_encode(d, 32, sha256_hex);
    return MT_OK;
}

void untrusted_objects_upload_free(untrusted_upload *u)
{
    if (!u)
        return;
    mt_ostore_stage_free(u->stage);
    if (u->fd >= 0)
        close(u->fd);
    if (u->tmp[0])
        (void)unlink(u->tmp);
    EVP_MD_CTX_free(u->md);
    free(u);
}

/* SHA-256 (hex) and size of a file, streamed. */
static mt_status file_digest(const char *path, char hex[65], uint64_t *size, mt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return mt_err_set(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO,
                          "an uploaded output is missing (upload it before the report)");
    struct stat sb;
    mt_status rc = fstat(fd, &sb) == 0 ? MT_OK : mt_err_set(err, MT_EIO, "stat failed");
    if (!rc)
        rc = untrusted_objstore_hash_fd(fd, (uint64_t)sb.st_size, hex, err);
    if (!rc)
        *size = (uint64_t)sb.st_size;
    close(fd);
    return rc;
}

mt_status untrusted_objects_upload_info(mt_core *c, const char *task_id, int64_t fence,
                                        const char *object, uint64_t *size, char sha256_hex[65],
                                        mt_err *err)
{
    *size = 0;
    if (c->ostore)
        return mt_ostore_stage_info(c->ostore, task_id, fence, object, size, sha256_hex, err);
    char up[4096 + 32];
    mt_status rc = upload_path(c, object, fence, up, err);
    return rc ? rc : file_digest(up, sha256_hex, size, err);
}

mt_status untrusted_objects_upload_publish_in(mt_core *c, mt_db *db, const char *task_id,
                                              int64_t fence, const char *object, uint64_t size,
                                              const char *sha256_hex, mt_err *err)
{
    if (c->ostore)
        return mt_ostore_stage_publish_in(c->ostore, db, task_id, fence, object, size,
                                          sha256_hex, err);
    char up[4096 + 32], p[4096];
    mt_status rc;
    if ((rc = upload_path(c, object, fence, up, err)) ||
        (rc = untrusted_objstore_path(c->objs, object, p, sizeof p, err)))
        return rc;
    if (rename(up, p) != 0)
        return mt_err_set(err, MT_EIO, "storing output object %s: %s", object, strerror(errno));
    return mt_fsync_parent_dir(p, err);
}

void untrusted_objects_upload_drop(mt_core *c, const char *task_id, int64_t fence,
                                   const char *object)
{
    if (c->ostore) {
        mt_err e;
        if (mt_ostore_stage_drop(c->ostore, task_id, fence, &e))
            mt_warn("task %s: dropping the uploads of fencing token %lld: %s", task_id,
                    (long long)fence, e.msg);
        return;
    }
    char up[4096 + 32];
    if (object && upload_path(c, object, fence, up, NULL) == MT_OK)
        (void)unlink(up);
}

/* A staged upload is kept while its lease is the current one of a running
 * task (its executor may still report it, through any node). */
static bool keep_stage(void *arg, const char *task_id, int64_t fence)
{
    mt_db *db = arg;
    mt_db_stmt *q = NULL;
    mt_err e;
    mt_status rc = mt_db_prepare(db,
                                 "SELECT 1 FROM tasks WHERE task_id = ? AND status = 'running' "
                                 "AND lease_fence = ?",
                                 &q, &e);
    if (rc)
        return true; /* cannot tell: keep it */
    mt_db_bind_text(q, 1, task_id);
    mt_db_bind_int64(q, 2, fence);
    int s = mt_db_step(q, &rc, &e);
    mt_db_finalize(q);
    return rc || s == MT_DB_ROW;
}

void untrusted_objects_sweep_staged(mt_core *c, mt_db *db)
{
    if (!c->ostore)
        return;
    size_t n = 0;
    mt_err e;
    if (mt_ostore_stage_sweep(c->ostore, keep_stage, db, &n, &e))
        mt_warn("objects: sweeping staged uploads: %s", e.msg);
    else if (n)
        mt_info("objects: removed the staged uploads of %zu lease(s) that are no longer current",
                n);
}
