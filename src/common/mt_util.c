#include "mt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void mt_id_new(mt_id *id)
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        abort(); /* no entropy: nothing safe can continue */
    mt_hex_encode(raw, sizeof raw, id->s);
}

bool mt_id_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < MT_ID_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[MT_ID_LEN] == '\0';
}

mt_status mt_random(uint8_t *out, size_t len, mt_err *err)
{
    if (len > INT32_MAX || RAND_bytes(out, (int)len) != 1)
        return mt_err_set(err, MT_EINTERNAL, "random number generator failed");
    return MT_OK;
}

void mt_wipe(void *p, size_t len)
{
    if (!p || !len)
        return;
#if defined(__GNUC__) || defined(__clang__)
    /* memset (glibc's vectorised one: OPENSSL_cleanse stores 8 bytes a
     * step, and a worker wipes hundreds of MB of ids, issue 13) and a
     * compiler barrier that makes the stores observable, as glibc's
     * explicit_bzero does: never optimised away */
    memset(p, 0, len);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    OPENSSL_cleanse(p, len);
#endif
}

bool mt_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void mt_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

mt_status mt_hex_decode(const char *hex, uint8_t *out, size_t outlen, mt_err *err)
{
    if (!hex || strlen(hex) != 2 * outlen)
        return mt_err_set(err, MT_EINVAL, "expected %zu hex characters", 2 * outlen);
    for (size_t i = 0; i < outlen; i++) {
        int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
        if (h < 0 || l < 0)
            return mt_err_set(err, MT_EINVAL, "invalid hex character at position %zu",
                              h < 0 ? 2 * i : 2 * i + 1);
        out[i] = (uint8_t)(h << 4 | l);
    }
    return MT_OK;
}

char *mt_b64_encode(const uint8_t *in, size_t len)
{
    if (len > (SIZE_MAX / 4) * 3 - 4 || len > INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

mt_status mt_b64_decode(const char *in, uint8_t **out, size_t *outlen, mt_err *err)
{
    *out = NULL;
    *outlen = 0;
    size_t n = in ? strlen(in) : 0;
    if (n % 4 != 0)
        return mt_err_set(err, MT_EINVAL, "base64 length %zu is not a multiple of 4", n);
    size_t pad = 0;
    if (n >= 1 && in[n - 1] == '=') pad++;
    if (n >= 2 && in[n - 2] == '=') pad++;
    size_t cap = n / 4 * 3;
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && i + 4 == n && k >= 4 - (int)pad)
                v[k] = 0;
            else if ((v[k] = b64val(c)) < 0) {
                free(buf);
                return mt_err_set(err, MT_EINVAL, "invalid base64 character at position %zu",
                                  i + (size_t)k);
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        buf[o++] = (uint8_t)(w >> 16);
        buf[o++] = (uint8_t)(w >> 8);
        buf[o++] = (uint8_t)w;
    }
    *out = buf;
    *outlen = o - pad;
    return MT_OK;
}

mt_status mt_file_read(const char *path, size_t max, uint8_t **out, size_t *len, mt_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mt_err_set(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO, "cannot open %s: %s",
                          path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mt_err_set(err, MT_EINVAL, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return mt_err_set(err, MT_ETOOBIG, "%s is %lld bytes, more than the limit of %zu", path,
                          (long long)st.st_size, max);
    }
    size_t cap = (size_t)st.st_size;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return mt_err_set(err, MT_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return mt_err_set(err, MT_EIO, "read %s failed: %s", path,
                              r == 0 ? "file shrank" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    *len = got;
    return MT_OK;
}

mt_status mt_fsync_parent_dir(const char *path, mt_err *err)
{
    char *copy = strdup(path);
    if (!copy)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return mt_err_set(err, MT_EIO, "cannot open directory of %s: %s", path, strerror(errno));
    int rc = fsync(dfd);
    close(dfd);
    if (rc != 0)
        return mt_err_set(err, MT_EIO, "fsync of directory of %s failed", path);
    return MT_OK;
}

mt_status mt_tmpfile_open(const char *path, int mode, char *tmp, size_t tmp_size, int *fd,
                          mt_err *err)
{
    *fd = -1;
    if (tmp_size)
        tmp[0] = '\0';
    uint8_t rnd[8];
    char hex[2 * sizeof rnd + 1];
    mt_status st = mt_random(rnd, sizeof rnd, err);
    if (st != MT_OK)
        return st;
    mt_hex_encode(rnd, sizeof rnd, hex);
    int n = snprintf(tmp, tmp_size, "%s.tmp.%s", path, hex);
    if (n < 0 || (size_t)n >= tmp_size) {
        if (tmp_size)
            tmp[0] = '\0';
        return mt_err_set(err, MT_EINVAL, "path too long: %.200s", path);
    }
    *fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (*fd < 0) {
        int e = errno;
        return mt_err_set(err, MT_EIO, "cannot create %s: %s", tmp, strerror(e));
    }
    return MT_OK;
}

void mt_tmpfile_discard(int fd, const char *tmp)
{
    if (fd >= 0)
        close(fd);
    if (tmp && tmp[0])
        unlink(tmp);
}

mt_status mt_tmpfile_publish(int fd, const char *tmp, const char *path, mt_err *err)
{
    if (fd >= 0) {
        int e = fsync(fd) != 0 ? errno : 0;
        if (close(fd) != 0 && e == 0)
            e = errno;
        if (e != 0) {
            unlink(tmp);
            return mt_err_set(err, MT_EIO, "fsync %s failed: %s", tmp, strerror(e));
        }
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mt_err_set(err, MT_EIO, "rename to %s failed: %s", path, strerror(e));
    }
    return mt_fsync_parent_dir(path, err);
}

mt_status mt_file_write_atomic(const char *path, const void *data, size_t len, int mode,
                               mt_err *err)
{
    char tmp[4096];
    int fd;
    mt_status st = mt_tmpfile_open(path, mode, tmp, sizeof tmp, &fd, err);
    if (st != MT_OK)
        return st;
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            mt_tmpfile_discard(fd, tmp);
            return mt_err_set(err, MT_EIO, "write %s failed: %s", tmp, strerror(e));
        }
        off += (size_t)w;
    }
    return mt_tmpfile_publish(fd, tmp, path, err);
}

mt_status mt_mkdirs(const char *path, int mode, mt_err *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return mt_err_set(err, MT_EINVAL, "bad directory path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return mt_err_set(err, MT_EIO, "cannot create directory %s: %s", buf,
                                  strerror(errno));
            buf[i] = c;
        }
    }
    return MT_OK;
}

int64_t mt_now(void) { return (int64_t)time(NULL); }

int64_t mt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mt_mono_deadline(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void mt_time_format(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *mt_strdup(const char *s) { return s ? strdup(s) : NULL; }
