/* untrusted_fetch: https:// through libcurl and file:// under an allowed
 * root. See untrusted_fetch.h for the contract. */
#include "untrusted_fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FETCH_TIMEOUT_S 60L
#define FETCH_CONNECT_TIMEOUT_S 15L

int untrusted_fetch_url_supported(const char *url)
{
    if (!url)
        return 0;
    return strncmp(url, "https://", 8) == 0 || strncmp(url, "file://", 7) == 0;
}

/* ------------------------------------------------------------------ file:// */

/* True if path has a "." or ".." component or an empty one ("//"). */
static bool path_has_dot_parts(const char *p)
{
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return true;
        p += n;
    }
    return false;
}

mt_status untrusted_fetch_open_file(const char *url, const char *file_root, int *fd,
                                    uint64_t *size, mt_err *err)
{
    *fd = -1;
    *size = 0;
    if (!url || strncmp(url, "file://", 7) != 0)
        return mt_err_set(err, MT_EINVAL, "not a file:// URL");
    if (!file_root)
        return mt_err_set(err, MT_EPERM,
                          "file:// URLs are disabled on this server (no file root configured)");
    const char *path = url + 7;
    if (strncmp(path, "localhost/", 10) == 0)
        path += 9;
    if (path[0] != '/')
        return mt_err_set(err, MT_EINVAL, "file:// URL must name an absolute local path "
                                          "(file:///dir/file)");
    if (strpbrk(path, "%?#"))
        return mt_err_set(err, MT_EINVAL,
                          "file:// URL must not contain '%%', '?' or '#' (no escapes)");
    if (path_has_dot_parts(path) || strstr(path, "//"))
        return mt_err_set(err, MT_EPERM, "file:// URL path must not contain '.', '..' or "
                                         "empty components");
    char root[PATH_MAX], real[PATH_MAX];
    if (!realpath(file_root, root))
        return mt_err_set(err, MT_EIO, "file root %s is not accessible: %s", file_root,
                          strerror(errno));
    if (!realpath(path, real))
        return mt_err_set(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO,
                          "file:// URL: %s is not accessible: %s", path, strerror(errno));
    size_t rl = strlen(root);
    bool under = strncmp(real, root, rl) == 0 && (real[rl] == '/' || rl == 1);
    if (!under)
        return mt_err_set(err, MT_EPERM, "file:// URL %s is outside the allowed root %s", path,
                          file_root);
    /* The path as written must be the canonical one below the root: the part
     * after the root must match literally, so no symlink is followed below it. */
    size_t gl = strlen(file_root);
    while (gl > 1 && file_root[gl - 1] == '/')
        gl--;
    const char *suffix = NULL;
    if (strncmp(path, file_root, gl) == 0 && path[gl] == '/')
        suffix = path + gl;
    else if (strncmp(path, root, rl) == 0 && path[rl] == '/')
        suffix = path + rl;
    if (!suffix || strcmp(real + (rl == 1 ? 0 : rl), suffix) != 0)
        return mt_err_set(err, MT_EPERM,
                          "file:// URL %s goes through a symbolic link; name the file itself",
                          path);
    int f = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (f < 0)
        return mt_err_set(err, errno == ELOOP ? MT_EPERM : MT_EIO,
                          "file:// URL: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return mt_err_set(err, MT_EPERM, "file:// URL %s is not a regular file", path);
    }
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0)
        (void)fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    *size = (uint64_t)st.st_size;
    return MT_OK;
}

static mt_status fetch_file(const char *url, const char *file_root, size_t max, uint8_t **out,
                            size_t *len, mt_err *err)
{
    int fd;
    uint64_t size;
    mt_status st = untrusted_fetch_open_file(url, file_root, &fd, &size, err);
    if (st != MT_OK)
        return st;
    if (size > max) {
        close(fd);
        return mt_err_set(err, MT_ETOOBIG, "%s is %llu bytes, more than the limit of %zu", url,
                          (unsigned long long)size, max);
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        close(fd);
        return mt_err_set(err, MT_ENOMEM, "out of memory reading %s", url);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return mt_err_set(err, MT_EIO, "reading %s failed: %s", url,
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

/* ----------------------------------------------------------------- https:// */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct fetch_buf {
    uint8_t *data;
    size_t len, cap, max;
    bool too_big, oom;
} fetch_buf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    fetch_buf *b = ud;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            b->oom = true;
            return 0;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

static mt_status fetch_https(const char *url, size_t max, uint8_t **out, size_t *len,
                             mt_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return mt_err_set(err, MT_EINTERNAL, "libcurl initialisation failed");
    CURL *c = curl_easy_init();
    if (!c)
        return mt_err_set(err, MT_ENOMEM, "libcurl: out of memory");
    fetch_buf b = {.max = max};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, FETCH_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, FETCH_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(max > INT64_MAX ? INT64_MAX
                                                                                 : max));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mesatee-fetch/0.1");
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    mt_status st = MT_OK;
    if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED)
        st = mt_err_set(err, MT_ETOOBIG, "%s is larger than the limit of %zu bytes", url, max);
    else if (b.oom)
        st = mt_err_set(err, MT_ENOMEM, "out of memory fetching %s", url);
    else if (rc != CURLE_OK)
        st = mt_err_set(err, MT_EIO, "fetching %s failed: %s", url,
                        ebuf[0] ? ebuf : curl_easy_strerror(rc));
    else if (code < 200 || code > 299)
        st = mt_err_set(err, MT_EIO, "fetching %s failed: HTTP status %ld%s", url, code,
                        code >= 300 && code < 400 ? " (redirects are not followed)" : "");
    if (st != MT_OK) {
        free(b.data);
        return st;
    }
    if (!b.data && !(b.data = malloc(1)))
        return mt_err_set(err, MT_ENOMEM, "out of memory fetching %s", url);
    b.data[b.len] = 0;
    *out = b.data;
    *len = b.len;
    return MT_OK;
}

mt_status untrusted_fetch(const char *url, const char *file_root, size_t max, uint8_t **out,
                          size_t *len, mt_err *err)
{
    *out = NULL;
    *len = 0;
    if (!url)
        return mt_err_set(err, MT_EINVAL, "URL is missing");
    if (strncmp(url, "https://", 8) == 0)
        return fetch_https(url, max, out, len, err);
    if (strncmp(url, "file://", 7) == 0)
        return fetch_file(url, file_root, max, out, len, err);
    return mt_err_set(err, MT_EINVAL,
                      "unsupported URL scheme (only https:// and file:// are accepted)");
}
