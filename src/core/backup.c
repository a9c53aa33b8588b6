/* backup: online snapshot of a data directory into a backup archive and its
 * restore into a new directory; see mt_backup.h and docs/operations.md.
 *
 * UNTRUSTED STORAGE: the archive holds the host-side files of the data
 * directory as they are (the store with its MACs, ciphertext objects, the
 * sealing key file at levels none/soft). Restoring it gives back exactly
 * what the host held; nothing in it is trusted more than the data directory
 * itself was (a restored store is verified by integrity.c like any other). */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_backup.h"
#include "mt_db.h"
#include "mt_util.h"

#define WALK_DEPTH 8
#define SNAPSHOT_TRIES 3

/* ======================================================================== */
/* Collecting the files                                                      */

typedef struct bfile {
    char *rel; /* name in the archive */
    char *abs; /* path on disk */
} bfile;

typedef struct flist {
    bfile *f;
    size_t n, cap;
} flist;

static void flist_free(flist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->f[i].rel);
        free(l->f[i].abs);
    }
    free(l->f);
    memset(l, 0, sizeof *l);
}

static mt_status flist_add(flist *l, const char *rel, const char *abs, mt_err *err)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        bfile *nf = realloc(l->f, nc * sizeof *nf);
        if (!nf)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        l->f = nf;
        l->cap = nc;
    }
    l->f[l->n].rel = strdup(rel);
    l->f[l->n].abs = strdup(abs);
    if (!l->f[l->n].rel || !l->f[l->n].abs) {
        free(l->f[l->n].rel);
        free(l->f[l->n].abs);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    l->n++;
    return MT_OK;
}

static int bfile_cmp(const void *a, const void *b)
{
    return strcmp(((const bfile *)a)->rel, ((const bfile *)b)->rel);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Files of the data directory that are not copied as they are. */
static bool skipped(const char *rel, const char *base)
{
    return !strcmp(rel, MT_BACKUP_DB_NAME) || !strcmp(rel, MT_BACKUP_DB_NAME "-wal") ||
           !strcmp(rel, MT_BACKUP_DB_NAME "-shm") || !strcmp(rel, MT_BACKUP_DB_NAME "-journal") ||
           strstr(base, ".tmp.") || ends_with(base, ".lock") || !strcmp(base, "lock") ||
           !strcmp(rel, "server.url");
}

typedef struct refs {
    char **ids; /* sorted */
    size_t n;
} refs;

static bool refs_has(const refs *r, const char *id)
{
    return r->n && bsearch(&id, r->ids, r->n, sizeof *r->ids, str_cmp) != NULL;
}

static void refs_free(refs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->ids[i]);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

static mt_status walk(const char *root, const char *rel, int depth, const refs *objs, flist *out,
                      mt_err *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel) >= (int)sizeof dir)
        return mt_err_set(err, MT_EINVAL, "path too long under %s", root);
    DIR *d = opendir(dir);
    if (!d)
        return mt_err_set(err, MT_EIO, "cannot read directory %s: %s", dir, strerror(errno));
    mt_status rc = MT_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char r[PATH_MAX], a[PATH_MAX];
        if (snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >= (int)sizeof r ||
            snprintf(a, sizeof a, "%s/%s", dir, e->d_name) >= (int)sizeof a) {
            rc = mt_err_set(err, MT_EINVAL, "path too long under %s", dir);
            break;
        }
        struct stat st;
        if (lstat(a, &st) != 0) {
            if (errno == ENOENT)
                continue; /* removed meanwhile (a temporary file) */
            rc = mt_err_set(err, MT_EIO, "cannot stat %s: %s", a, strerror(errno));
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth >= WALK_DEPTH)
                rc = mt_err_set(err, MT_EINVAL, "%s is nested too deeply to back up", a);
            else
                rc = walk(root, r, depth + 1, objs, out, err);
            continue;
        }
        if (!S_ISREG(st.st_mode) || skipped(r, e->d_name))
            continue; /* sockets, links, live database files, temporaries */
        if (!strncmp(r, "objects/", 8) && !refs_has(objs, r + 8))
            continue; /* not in the snapshot: written after it, or an orphan */
        if (!mt_backup_name_valid(r, strlen(r))) {
            rc = mt_err_set(err, MT_EINVAL,
                            "%s: file name cannot be stored in a backup (allowed: "
                            "A-Z a-z 0-9 . _ -)",
                            a);
            break;
        }
        rc = flist_add(out, r, a, err);
    }
    closedir(d);
    return rc;
}

/* ======================================================================== */
/* Store snapshot                                                            */

static mt_status db_fail(sqlite3 *db, const char *what, mt_err *err)
{
    return mt_err_set(err, MT_EIO, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Copies src_path to dst_path with the online backup API, in one step. */
static mt_status db_snapshot(const char *src_path, const char *dst_path, mt_err *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    mt_status rc = MT_OK;
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(src, "cannot open the store", err);
        goto out;
    }
    sqlite3_busy_timeout(src, 10000);
    if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(dst, "cannot open the snapshot file", err);
        goto out;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        rc = db_fail(dst, "cannot start the store snapshot", err);
        goto out;
    }
    int s;
    for (int tries = 0;; tries++) {
        s = sqlite3_backup_step(b, -1); /* all pages in one read transaction */
        if ((s == SQLITE_BUSY || s == SQLITE_LOCKED) && tries < 100) {
            sqlite3_sleep(100);
            continue;
        }
        break;
    }
    sqlite3_backup_finish(b);
    if (s != SQLITE_DONE)
        rc = mt_err_set(err, MT_EIO, "store snapshot failed: %s", sqlite3_errstr(s));
    /* a self-contained file (no -wal beside it); the server sets WAL again */
    else if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(dst, "cannot finish the store snapshot", err);
out:
    sqlite3_close_v2(src);
    sqlite3_close_v2(dst);
    return rc;
}

/* Object ids of the snapshot from sql (one column), sorted. */
static mt_status db_ids(sqlite3 *db, const char *sql, refs *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    mt_status rc = MT_OK;
    size_t cap = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "cannot read the store snapshot", err);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!id || !mt_id_valid(id))
            continue; /* not an object name: nothing on disk to copy */
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **ni = realloc(out->ids, nc * sizeof *ni);
            if (!ni) {
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
                goto out;
            }
            out->ids = ni;
            cap = nc;
        }
        if (!(out->ids[out->n] = strdup(id))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        out->n++;
    }
    if (s != SQLITE_DONE)
        rc = db_fail(db, "reading the store snapshot failed", err);
    else if (out->n)
        qsort(out->ids, out->n, sizeof *out->ids, str_cmp);
out:
    sqlite3_finalize(st);
    if (rc)
        refs_free(out);
    return rc;
}

/* The objects of the snapshot: all it names (*all: copied when present) and
 * those that must exist (*need: uploaded objects, inputs, written outputs,
 * wasm modules; an output's object appears only once it is written). */
static mt_status db_refs(const char *path, refs *all, refs *need, mt_err *err)
{
    memset(all, 0, sizeof *all);
    memset(need, 0, sizeof *need);
    sqlite3 *db = NULL;
    mt_status rc;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(db, "cannot open the store snapshot", err);
        sqlite3_close_v2(db);
        return rc;
    }
    /* a store from before schema 2 has no functions.payload_object */
    int64_t v = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    const char *fn = v >= 2 ? " UNION SELECT payload_object FROM functions" : "";
    /* --objects db: objects that are rows of the snapshot need no file (a
     * file beside them is this node's cache, copied when present) */
    bool rows = false;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                           "'object_data'",
                           -1, &st, NULL) == SQLITE_OK)
        rows = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    char q1[512], q2[600];
    snprintf(q1, sizeof q1, "SELECT id FROM objects UNION SELECT object_id FROM files%s", fn);
    snprintf(q2, sizeof q2,
             "SELECT id FROM objects UNION SELECT object_id FROM files WHERE kind <> 'output' "
             "OR written = 1%s%s",
             fn, rows ? " EXCEPT SELECT id FROM object_data" : "");
    if ((rc = db_ids(db, q1, all, err)) || (rc = db_ids(db, q2, need, err))) {
        refs_free(all);
        refs_free(need);
    }
    sqlite3_close_v2(db);
    return rc;
}

static mt_status fd_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, mt_err *err)
{
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t k = read(fd, buf, cap);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return mt_err_set(err, MT_EIO, "reading the backup failed: %s", strerror(errno));
        *got = (size_t)k;
        return MT_OK;
    }
}

mt_status mt_backup_read_fd(int fd, mt_backup_sink sink, void *sink_ctx, mt_backup_info *info,
                            mt_err *err)
{
    return mt_backup_read(fd_read, &fd, sink, sink_ctx, info, err);
}

/* ======================================================================== */
/* Backup                                                                    */

/* One attempt: snapshot, collect, write the archive to out_fd. MT_ECONFLICT
 * when an object of the snapshot vanished before it was copied (retry). */
static mt_status backup_once(const char *data_dir, const char *level, const char *snap,
                             int out_fd, mt_backup_info *info, mt_err *err)
{
    char dbp[PATH_MAX];
    if (snprintf(dbp, sizeof dbp, "%s/" MT_BACKUP_DB_NAME, data_dir) >= (int)sizeof dbp)
        return mt_err_set(err, MT_EINVAL, "data directory path too long");
    if (access(dbp, R_OK) != 0)
        return mt_err_set(err, MT_ENOTFOUND, "%s has no " MT_BACKUP_DB_NAME " (%s): not a "
                          "mesatee data directory, or its store is in PostgreSQL (back that "
                          "up with pg_basebackup or pg_dump)",
                          data_dir, strerror(errno));
    refs objs = {0}, need = {0};
    flist files = {0};
    mt_backup_writer *w = NULL;
    mt_status rc;
    if ((rc = db_snapshot(dbp, snap, err)) || (rc = db_refs(snap, &objs, &need, err)) ||
        (rc = walk(data_dir, "", 0, &objs, &files, err)) ||
        (rc = flist_add(&files, MT_BACKUP_DB_NAME, snap, err)))
        goto out;
    qsort(files.f, files.n, sizeof *files.f, bfile_cmp);
    /* every object of the snapshot must be there */
    for (size_t i = 0, j = 0; i < need.n; i++) {
        char want[16 + MT_ID_LEN];
        snprintf(want, sizeof want, "objects/%s", need.ids[i]);
        while (j < files.n && strcmp(files.f[j].rel, want) < 0)
            j++;
        if (j == files.n || strcmp(files.f[j].rel, want)) {
            rc = mt_err_set(err, MT_ECONFLICT,
                            "object %s of the store is missing from %s/objects (deleted while "
                            "the backup ran, or lost)",
                            need.ids[i], data_dir);
            goto out;
        }
    }
    if (lseek(out_fd, 0, SEEK_SET) != 0 || ftruncate(out_fd, 0) != 0) {
        rc = mt_err_set(err, MT_EIO, "cannot rewind the backup file: %s", strerror(errno));
        goto out;
    }
    if ((rc = mt_backup_writer_new(out_fd, level, mt_now(), &w, err)))
        goto out;
    uint64_t total = 0;
    for (size_t i = 0; i < files.n; i++) {
        int fd = open(files.f[i].abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 && errno == ENOENT && !strncmp(files.f[i].rel, "objects/", 8)) {
            rc = mt_err_set(err, MT_ECONFLICT, "object %s vanished while the backup ran",
                            files.f[i].rel + 8);
            goto out;
        }
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            rc = mt_err_set(err, MT_EIO, "cannot read %s: %s", files.f[i].abs,
                            fd < 0 ? strerror(errno) : "not a regular file");
            if (fd >= 0)
                close(fd);
            goto out;
        }
        rc = mt_backup_writer_add_fd(w, files.f[i].rel, (uint32_t)(st.st_mode & 0777), fd,
                                     (uint64_t)st.st_size, err);
        close(fd);
        if (rc)
            goto out;
        total += (uint64_t)st.st_size;
    }
    if ((rc = mt_backup_writer_finish(w, err)))
        goto out;
    if (info) {
        memset(info, 0, sizeof *info);
        info->version = MT_BACKUP_VERSION;
        info->created = mt_now();
        snprintf(info->level, sizeof info->level, "%s", level);
        info->entries = (uint32_t)files.n;
        info->bytes = total;
    }
out:
    mt_backup_writer_free(w);
    flist_free(&files);
    refs_free(&objs);
    refs_free(&need);
    return rc;
}

mt_status mt_backup_store_check(const char *data_dir, const char *store_url, mt_err *err)
{
    if (!store_url || !*store_url)
        return MT_OK;
    const char *path = NULL;
    switch (mt_db_url_backend(store_url)) {
    case MT_DB_PG:
        return mt_err_set(err, MT_EINVAL,
                          "the store is PostgreSQL: `mesatee backup` archives SQLite stores only; "
                          "back the database up with pg_basebackup or pg_dump and keep the data "
                          "directory's sealing.key and tls/ (docs/operations.md)");
    case MT_DB_SQLITE:
        break;
    default:
        return mt_err_set(err, MT_EINVAL,
                          "store: unknown URL scheme (use a path, file:PATH or postgres://...)");
    }
    mt_status rc = mt_db_url_sqlite_path(store_url, &path, err);
    if (rc)
        return rc;
    char dbp[PATH_MAX];
    if (!data_dir || snprintf(dbp, sizeof dbp, "%s/" MT_BACKUP_DB_NAME, data_dir) >= (int)sizeof dbp)
        return mt_err_set(err, MT_EINVAL, "data directory path missing or too long");
    struct stat a, b;
    if (stat(path, &a) != 0 || stat(dbp, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return mt_err_set(err, MT_EINVAL,
                          "the store file is not %s/" MT_BACKUP_DB_NAME ": `mesatee backup` "
                          "archives the store inside the data directory only",
                          data_dir);
    return MT_OK;
}

mt_status mt_backup_create(const char *data_dir, const char *level, const char *out_path,
                           mt_backup_info *info, mt_err *err)
{
    if (!data_dir || !*data_dir || !out_path || !*out_path)
        return mt_err_set(err, MT_EINVAL, "backup needs a data directory and an output file");
    if (!level || !*level)
        level = "unspecified";
    /* an archive inside the data directory would be copied into the next one */
    char rd[PATH_MAX], ro[PATH_MAX], od[PATH_MAX];
    snprintf(od, sizeof od, "%s", out_path);
    char *slash = strrchr(od, '/');
    if (slash)
        *(slash == od ? slash + 1 : slash) = '\0';
    else
        snprintf(od, sizeof od, ".");
    if (realpath(data_dir, rd) && realpath(od, ro)) {
        size_t l = strlen(rd);
        if (!strncmp(ro, rd, l) && (ro[l] == '/' || ro[l] == '\0'))
            return mt_err_set(err, MT_EINVAL,
                              "write the backup outside the data directory (%s is inside %s)",
                              out_path, data_dir);
    }
    char tmp[PATH_MAX], snap[PATH_MAX];
    int fd = -1, sfd = -1;
    if (strlen(out_path) + MT_TMPFILE_EXTRA + 8 >= sizeof tmp)
        return mt_err_set(err, MT_EINVAL, "output path too long");
    mt_status rc = mt_tmpfile_open(out_path, 0600, tmp, sizeof tmp, &fd, err);
    if (rc)
        return rc;
    char sbase[PATH_MAX];
    snprintf(sbase, sizeof sbase, "%s.db", out_path);
    if ((rc = mt_tmpfile_open(sbase, 0600, snap, sizeof snap, &sfd, err))) {
        mt_tmpfile_discard(fd, tmp);
        return rc;
    }
    close(sfd);
    for (int i = 0; i < SNAPSHOT_TRIES; i++) {
        if (i) {
            /* a fresh, empty snapshot file for the next try */
            int t = open(snap, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
            if (t >= 0)
                close(t);
        }
        rc = backup_once(data_dir, level, snap, fd, info, err);
        if (rc != MT_ECONFLICT)
            break;
    }
    unlink(snap);
    static const char *const side[] = {"-journal", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char j[PATH_MAX + 16];
        snprintf(j, sizeof j, "%s%s", snap, side[i]);
        unlink(j);
    }
    if (rc) {
        mt_tmpfile_discard(fd, tmp);
        return rc;
    }
    /* the archive hash, from the bytes written (read back: what is on disk) */
    if (info) {
        mt_backup_info chk;
        if (lseek(fd, 0, SEEK_SET) != 0)
            rc = mt_err_set(err, MT_EIO, "cannot reread the backup: %s", strerror(errno));
        else
            rc = mt_backup_read_fd(fd, NULL, NULL, &chk, err);
        if (rc) {
            mt_tmpfile_discard(fd, tmp);
            return rc;
        }
        *info = chk;
    }
    return mt_tmpfile_publish(fd, tmp, out_path, err);
}

/* ======================================================================== */
/* Restore                                                                   */

typedef struct xctx {
    const char *root; /* the temporary directory */
    int fd;
} xctx;

static mt_status x_sink(void *ctx, const mt_backup_entry *e, bool begin, const uint8_t *data,
                        size_t n, bool end, mt_err *err)
{
    xctx *x = ctx;
    if (begin) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", x->root, e->name) >= (int)sizeof p)
            return mt_err_set(err, MT_EINVAL, "restored path too long for %s", e->name);
        /* parent directories (names were validated: no "..", no "//") */
        for (char *s = p + strlen(x->root) + 1; (s = strchr(s, '/')); s++) {
            *s = '\0';
            int r = mkdir(p, 0700);
            *s = '/';
            if (r != 0 && errno != EEXIST)
                return mt_err_set(err, MT_EIO, "cannot create a directory for %s: %s", e->name,
                                  strerror(errno));
        }
        x->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                     (mode_t)((e->mode & 0700) | 0600));
        if (x->fd < 0)
            return mt_err_set(err, MT_EIO, "cannot create %s: %s", e->name, strerror(errno));
        return MT_OK;
    }
    while (n) {
        ssize_t k = write(x->fd, data, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return mt_err_set(err, MT_EIO, "writing %s failed: %s", e->name,
                              k < 0 ? strerror(errno) : "no progress");
        data += k;
        n -= (size_t)k;
    }
    if (end) {
        int r = fsync(x->fd);
        int c = close(x->fd);
        x->fd = -1;
        if (r != 0 || c != 0)
            return mt_err_set(err, MT_EIO, "writing %s failed: %s", e->name, strerror(errno));
    }
    return MT_OK;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

static void rm_tree(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* fsyncs the directories of the restored tree (depth first). */
static int sync_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP) {
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    return 0;
}

/* MT_OK if path does not exist or is an empty directory (*exists says which). */
static mt_status target_ok(const char *path, bool *exists, mt_err *err)
{
    struct stat st;
    *exists = false;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return MT_OK;
        return mt_err_set(err, MT_EIO, "cannot check %s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return mt_err_set(err, MT_ECONFLICT, "%s exists and is not a directory; restore into a "
                          "new or empty directory",
                          path);
    DIR *d = opendir(path);
    if (!d)
        return mt_err_set(err, MT_EIO, "cannot read %s: %s", path, strerror(errno));
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    if (!empty)
        return mt_err_set(err, MT_ECONFLICT,
                          "%s is not empty; restore into a new or empty directory", path);
    *exists = true;
    return MT_OK;
}

mt_status mt_backup_restore(const char *in_path, const char *data_dir, mt_backup_info *info,
                            mt_err *err)
{
    if (!in_path || !*in_path || !data_dir || !*data_dir)
        return mt_err_set(err, MT_EINVAL, "restore needs a backup file and a data directory");
    char target[PATH_MAX];
    size_t tl = strlen(data_dir);
    while (tl > 1 && data_dir[tl - 1] == '/')
        tl--;
    if (tl + 40 >= sizeof target)
        return mt_err_set(err, MT_EINVAL, "data directory path too long");
    memcpy(target, data_dir, tl);
    target[tl] = '\0';
    bool exists;
    mt_status rc = target_ok(target, &exists, err);
    if (rc)
        return rc;
    int fd = open(in_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mt_err_set(err, MT_EIO, "cannot open %s: %s", in_path, strerror(errno));
    mt_backup_info first, second;
    /* pass 1: verify everything before writing anything */
    if ((rc = mt_backup_read_fd(fd, NULL, NULL, &first, err))) {
        close(fd);
        return rc;
    }
    /* the parent of the target, then a fresh directory beside the target */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", target);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if ((rc = mt_mkdirs(parent, 0700, err))) {
            close(fd);
            return rc;
        }
    }
    uint8_t rnd[8];
    char rhex[17], tmp[PATH_MAX];
    if ((rc = mt_random(rnd, sizeof rnd, err))) {
        close(fd);
        return rc;
    }
    mt_hex_encode(rnd, sizeof rnd, rhex);
    if (snprintf(tmp, sizeof tmp, "%s.restore.%s", target, rhex) >= (int)sizeof tmp ||
        mkdir(tmp, 0700) != 0) {
        rc = mt_err_set(err, MT_EIO, "cannot create %s: %s", tmp, strerror(errno));
        close(fd);
        return rc;
    }
    xctx x = {tmp, -1};
    if (lseek(fd, 0, SEEK_SET) != 0)
        rc = mt_err_set(err, MT_EIO, "cannot reread %s: %s", in_path, strerror(errno));
    else
        rc = mt_backup_read_fd(fd, x_sink, &x, &second, err); /* verified again */
    if (x.fd >= 0)
        close(x.fd);
    close(fd);
    if (!rc && strcmp(first.sha256, second.sha256))
        rc = mt_err_set(err, MT_ECONFLICT, "%s changed while it was restored", in_path);
    if (!rc) {
        nftw(tmp, sync_one, 16, FTW_DEPTH | FTW_PHYS);
        if (exists && rmdir(target) != 0)
            rc = mt_err_set(err, MT_ECONFLICT, "%s is no longer empty: %s", target,
                            strerror(errno));
        else if (rename(tmp, target) != 0) {
            rc = mt_err_set(err, MT_EIO, "cannot rename %s to %s: %s", tmp, target,
                            strerror(errno));
            if (exists)
                mkdir(target, 0700); /* it was an empty directory: leave one */
        }
        else
            rc = mt_fsync_parent_dir(target, err);
    }
    if (rc) {
        rm_tree(tmp);
        return rc;
    }
    if (info)
        *info = first;
    return MT_OK;
}
