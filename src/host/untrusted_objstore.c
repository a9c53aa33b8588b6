/* untrusted_objstore: object files <data-dir>/objects/<id>, written
 * crash-safely. See untrusted_objstore.h for the contract. */
#include "untrusted_objstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_util.h"

struct mt_objstore {
    char dir[PATH_MAX]; /* "<data-dir>/objects" */
};

mt_status untrusted_objstore_open(const char *data_dir, mt_objstore **out, mt_err *err)
{
    *out = NULL;
    if (!data_dir || !*data_dir)
        return mt_err_set(err, MT_EINVAL, "object store: data directory is empty");
    mt_objstore *s = calloc(1, sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (snprintf(s->dir, sizeof s->dir, "%s/objects", data_dir) >= (int)sizeof s->dir) {
        free(s);
        return mt_err_set(err, MT_EINVAL, "object store: data directory path too long");
    }
    mt_status st = mt_mkdirs(s->dir, 0700, err);
    if (st != MT_OK) {
        free(s);
        return st;
    }
    *out = s;
    return MT_OK;
}

void untrusted_objstore_close(mt_objstore *s)
{
    free(s);
}

mt_status untrusted_objstore_path(const mt_objstore *s, const char *id, char *out, size_t cap,
                                  mt_err *err)
{
    if (!mt_id_valid(id))
        return mt_err_set(err, MT_EINVAL, "object id must be 32 lower-case hex characters");
    if ((size_t)snprintf(out, cap, "%s/%s", s->dir, id) >= cap)
        return mt_err_set(err, MT_EINVAL, "object path too long for the buffer");
    return MT_OK;
}

/* Writes all of buf to fd, retrying on EINTR. Returns 0 or an errno value. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

mt_status untrusted_objstore_put(mt_objstore *s, const char *id, const uint8_t *data,
                                 size_t len, char sha256_hex[65], mt_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    mt_status st = untrusted_objstore_path(s, id, path, sizeof path, err);
    if (st != MT_OK)
        return st;

    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");

    int fd;
    if ((st = mt_tmpfile_open(path, 0600, tmp, sizeof tmp, &fd, err)) != MT_OK)
        return st;
    int e = write_all(fd, data, len);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return mt_err_set(err, e == ENOSPC ? MT_ETOOBIG : MT_EIO,
                          "object store: writing object %s failed: %s", id, strerror(e));
    }
    if ((st = mt_tmpfile_publish(-1, tmp, path, err)) != MT_OK)
        return st;
    mt_hex_encode(md, 32, sha256_hex);
    return MT_OK;
}

mt_status untrusted_objstore_get(mt_objstore *s, const char *id, size_t max, uint8_t **out,
                                 size_t *len, mt_err *err)
{
    *out = NULL;
    *len = 0;
    char path[PATH_MAX];
    mt_status st = untrusted_objstore_path(s, id, path, sizeof path, err);
    if (st != MT_OK)
        return st;
    st = mt_file_read(path, max, out, len, err);
    if (st == MT_ENOTFOUND)
        return mt_err_set(err, MT_ENOTFOUND, "object %s does not exist", id);
    return st;
}

mt_status untrusted_objstore_open_read(mt_objstore *s, const char *id, int *fd, uint64_t *size,
                                       mt_err *err)
{
    *fd = -1;
    *size = 0;
    char path[PATH_MAX];
    mt_status st = untrusted_objstore_path(s, id, path, sizeof path, err);
    if (st != MT_OK)
        return st;
    int f = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT)
            return mt_err_set(err, MT_ENOTFOUND, "object %s does not exist", id);
        return mt_err_set(err, MT_EIO, "object store: opening %s failed: %s", id,
                          strerror(errno));
    }
    struct stat sb;
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        close(f);
        return mt_err_set(err, MT_EIO, "object store: %s is not a regular file", id);
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return MT_OK;
}

mt_status untrusted_objstore_hash_fd(int fd, uint64_t len, char sha256_hex[65], mt_err *err)
{
    enum { PIECE = 256 * 1024 };
    uint8_t *buf = malloc(PIECE);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    mt_status st = MT_OK;
    if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory hashing an object");
        goto out;
    }
    for (uint64_t off = 0; off < len;) {
        size_t want = len - off < PIECE ? (size_t)(len - off) : PIECE;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = mt_err_set(err, MT_EIO, "object store: reading an object failed: %s",
                            n < 0 ? strerror(errno) : "it became shorter while read");
            goto out;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            st = mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
            goto out;
        }
        off += (uint64_t)n;
    }
    uint8_t d[32];
    unsigned int dl = 0;
    if (EVP_DigestFinal_ex(md, d, &dl) != 1 || dl != 32) {
        st = mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
        goto out;
    }
    mt_hex_encode(d, 32, sha256_hex);
out:
    EVP_MD_CTX_free(md);
    free(buf);
    return st;
}

mt_status untrusted_objstore_size(mt_objstore *s, const char *id, uint64_t *size, mt_err *err)
{
    *size = 0;
    char path[PATH_MAX];
    mt_status st = untrusted_objstore_path(s, id, path, sizeof path, err);
    if (st != MT_OK)
        return st;
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return mt_err_set(err, MT_ENOTFOUND, "object %s does not exist", id);
        return mt_err_set(err, MT_EIO, "object store: stat %s failed: %s", id, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode))
        return mt_err_set(err, MT_EIO, "object store: %s is not a regular file", id);
    *size = (uint64_t)sb.st_size;
    return MT_OK;
}

mt_status untrusted_objstore_delete(mt_objstore *s, const char *id, mt_err *err)
{
    char path[PATH_MAX];
    mt_status st = untrusted_objstore_path(s, id, path, sizeof path, err);
    if (st != MT_OK)
        return st;
    if (unlink(path) != 0 && errno != ENOENT)
        return mt_err_set(err, MT_EIO, "object store: deleting %s failed: %s", id,
                          strerror(errno));
    return mt_fsync_parent_dir(path, err);
}

size_t untrusted_objstore_sweep(mt_objstore *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".tmp."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- streaming writer ---------------------------------------------------- */

#define WRITER_PREFIX 256

struct mt_objstore_writer {
    mt_objstore *s;
    int fd;
    char tmp[PATH_MAX + 64];
    EVP_MD_CTX *md;
    uint64_t size;
    uint8_t prefix[WRITER_PREFIX];
    bool committed;
    bool failed;
};

mt_status untrusted_objstore_writer_new(mt_objstore *s, mt_objstore_writer **out, mt_err *err)
{
    *out = NULL;
    mt_objstore_writer *w = calloc(1, sizeof *w);
    if (!w)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    w->s = s;
    w->fd = -1;
    uint8_t rnd[8];
    char rhex[17];
    mt_status st = mt_random(rnd, sizeof rnd, err);
    if (st != MT_OK) {
        free(w);
        return st;
    }
    mt_hex_encode(rnd, sizeof rnd, rhex);
    snprintf(w->tmp, sizeof w->tmp, "%s/upload.tmp.%d.%s", s->dir, (int)getpid(), rhex);
    w->md = EVP_MD_CTX_new();
    if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(w->md);
        free(w);
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 unavailable");
    }
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->fd < 0) {
        int e = errno;
        EVP_MD_CTX_free(w->md);
        free(w);
        return mt_err_set(err, MT_EIO, "object store: cannot create an upload file: %s",
                          strerror(e));
    }
    *out = w;
    return MT_OK;
}

mt_status untrusted_objstore_writer_write(mt_objstore_writer *w, const uint8_t *data, size_t len,
                                          mt_err *err)
{
    if (w->failed || w->committed)
        return mt_err_set(err, MT_EINVAL, "object store: upload file is closed");
    if (len == 0)
        return MT_OK;
    if (w->size < WRITER_PREFIX) {
        size_t n = WRITER_PREFIX - (size_t)w->size;
        memcpy(w->prefix + w->size, data, n < len ? n : len);
    }
    int e = write_all(w->fd, data, len);
    if (e == 0 && EVP_DigestUpdate(w->md, data, len) != 1)
        e = EIO;
    if (e != 0) {
        w->failed = true;
        return mt_err_set(err, e == ENOSPC ? MT_ETOOBIG : MT_EIO,
                          "object store: writing an upload failed: %s", strerror(e));
    }
    w->size += len;
    return MT_OK;
}

uint64_t untrusted_objstore_writer_size(const mt_objstore_writer *w)
{
    return w ? w->size : 0;
}

size_t untrusted_objstore_writer_prefix(const mt_objstore_writer *w, uint8_t *out, size_t cap)
{
    size_t n = w->size < WRITER_PREFIX ? (size_t)w->size : WRITER_PREFIX;
    if (n > cap)
        n = cap;
    memcpy(out, w->prefix, n);
    return n;
}

mt_status untrusted_objstore_writer_commit(mt_objstore_writer *w, const char *id,
                                           char sha256_hex[65], mt_err *err)
{
    char path[PATH_MAX];
    mt_status st = untrusted_objstore_path(w->s, id, path, sizeof path, err);
    if (st != MT_OK)
        return st;
    if (w->failed || w->committed)
        return mt_err_set(err, MT_EINVAL, "object store: upload file is closed");
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen != 32) {
        w->failed = true;
        return mt_err_set(err, MT_EINTERNAL, "object store: SHA-256 failed");
    }
    int e = fsync(w->fd) != 0 ? errno : 0;
    if (close(w->fd) != 0 && e == 0)
        e = errno;
    w->fd = -1;
    if (e == 0 && rename(w->tmp, path) != 0)
        e = errno;
    if (e != 0) {
        w->failed = true;
        return mt_err_set(err, e == ENOSPC ? MT_ETOOBIG : MT_EIO,
                          "object store: writing object %s failed: %s", id, strerror(e));
    }
    w->committed = true;
    if ((st = mt_fsync_parent_dir(path, err)) != MT_OK)
        return st;
    mt_hex_encode(md, 32, sha256_hex);
    return MT_OK;
}

void untrusted_objstore_writer_free(mt_objstore_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (!w->committed)
        unlink(w->tmp);
    EVP_MD_CTX_free(w->md);
    free(w);
}

size_t untrusted_objstore_sweep_leftovers(mt_objstore *s, int64_t min_age_s,
                                          untrusted_objstore_keep_fn keep, void *ctx,
                                          uint64_t *bytes)
{
    if (bytes)
        *bytes = 0;
    DIR *d = opendir(s->dir);
    if (!d)
        return 0;
    size_t n = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (!strstr(nm, ".tmp.") && !strstr(nm, ".tmp-") && !strstr(nm, ".report-") &&
            !strstr(nm, ".run-") && !strstr(nm, ".up-"))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), nm, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (min_age_s > 0 && now - sb.st_mtime < min_age_s)
            continue;
        if (keep && keep(ctx, nm))
            continue;
        if (unlinkat(dirfd(d), nm, 0) == 0) {
            n++;
            if (bytes && S_ISREG(sb.st_mode))
                *bytes += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
    return n;
}
