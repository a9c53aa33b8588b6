/* untrusted_fetch: https:// through libcurl (peer addresses checked against
 * the outbound policy before every connect) and file:// under an allowed
 * root (opened race-free beneath it). See untrusted_fetch.h for the contract. */
#include "untrusted_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* Opens rel (a relative path without "." or ".." parts) beneath the
 * directory rootfd without following any symbolic link, in one step where
 * the kernel has openat2(2) (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), else by
 * walking the components with O_PATH | O_NOFOLLOW: no path is checked and
 * then opened again, so a symlink swapped in under the root at any moment is
 * refused (ELOOP) rather than followed. Returns the fd or -1 with errno. */
static int open_beneath(int rootfd, const char *rel, bool force_walk)
{
    const int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
#ifdef SYS_openat2
    if (!force_walk) {
        struct open_how how = {.flags = (uint64_t)flags,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                          RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM && errno != E2BIG))
            return (int)fd;
    }
#else
    (void)force_walk;
#endif
    /* fallback: one component at a time, each opened O_NOFOLLOW */
    int dir = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
    if (dir < 0)
        return -1;
    const char *p = rel;
    for (;;) {
        while (*p == '/')
            p++;
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char comp[NAME_MAX + 1];
        if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            close(dir);
            errno = EINVAL;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        int next;
        if (slash && slash[1])
            next = openat(dir, comp, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        else
            next = openat(dir, comp, flags);
        int e = errno;
        close(dir);
        if (next < 0) {
            /* a symlink as an intermediate component shows as ENOTDIR */
            errno = e == ENOTDIR ? ELOOP : e;
            return -1;
        }
        if (!slash || !slash[1])
            return next;
        dir = next;
        p = slash + 1;
    }
}

int untrusted_fetch_test_open_beneath(int rootfd, const char *rel, int force_walk)
{
    return open_beneath(rootfd, rel, force_walk != 0);
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
    /* Reasons name neither the path nor the root: both are the host's. */
    char root[PATH_MAX];
    if (!realpath(file_root, root))
        return mt_err_set(err, MT_EIO, "file:// URL: the server's file root is not accessible");
    size_t gl = strlen(file_root), rl = strlen(root);
    while (gl > 1 && file_root[gl - 1] == '/')
        gl--;
    const char *rel = NULL;
    if (gl > 1 && strncmp(path, file_root, gl) == 0 && path[gl] == '/')
        rel = path + gl;
    else if (rl > 1 && strncmp(path, root, rl) == 0 && path[rl] == '/')
        rel = path + rl;
    else if (rl == 1 || gl == 1)
        rel = path;
    if (!rel)
        return mt_err_set(err, MT_EPERM, "file:// URL is outside the allowed root");
    while (*rel == '/')
        rel++;
    if (!*rel)
        return mt_err_set(err, MT_EPERM, "file:// URL is not a regular file");
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return mt_err_set(err, MT_EIO, "file:// URL: the server's file root is not accessible");
    int f = open_beneath(rootfd, rel, false);
    int e = errno;
    close(rootfd);
    if (f < 0) {
        if (e == ELOOP || e == EXDEV)
            return mt_err_set(err, MT_EPERM,
                              "file:// URL goes through a symbolic link or leaves the allowed "
                              "root; name the file itself");
        if (e == ENOENT)
            return mt_err_set(err, MT_ENOTFOUND, "file:// URL names no existing file");
        return mt_err_set(err, e == EACCES ? MT_EPERM : MT_EIO,
                          "file:// URL cannot be opened (errno %d)", e);
    }
    struct stat st;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return mt_err_set(err, MT_EPERM, "file:// URL is not a regular file");
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
        return mt_err_set(err, MT_ETOOBIG, "file:// input is %llu bytes, more than the limit "
                          "of %zu", (unsigned long long)size, max);
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        close(fd);
        return mt_err_set(err, MT_ENOMEM, "out of memory reading a file:// input");
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
            return mt_err_set(err, MT_EIO, "reading a file:// input failed: %s",
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

/* ------------------------------------------------ outbound address policy */

/* One CIDR block; family AF_INET or AF_INET6, addr in network order. */
typedef struct cidr {
    int family;
    uint8_t addr[16];
    unsigned bits;
} cidr;

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

/* Parses "a.b.c.d/n" or "v6::/n" (a missing "/n" means one host). */
static bool cidr_parse(const char *s, size_t len, cidr *c)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash = 0;
        char *end;
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || bits < 0)
            return false;
    }
    memset(c, 0, sizeof *c);
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        if (bits > 32)
            return false;
        c->bits = bits < 0 ? 32 : (unsigned)bits;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        if (bits > 128)
            return false;
        c->bits = bits < 0 ? 128 : (unsigned)bits;
    } else {
        return false;
    }
    return true;
}

mt_status untrusted_fetch_allow_check(const char *allow, mt_err *err)
{
    if (!allow)
        return MT_OK;
    const char *p = allow;
    while (*p) {
        size_t n = strcspn(p, ",");
        cidr c;
        if (n && !cidr_parse(p, n, &c))
            return mt_err_set(err, MT_EINVAL,
                              "fetch allow-list: '%.*s' is not an IPv4 or IPv6 CIDR block "
                              "(e.g. 192.0.2.0/24 or 2001:db8::/32)",
                              (int)(n > 64 ? 64 : n), p);
        p += n;
        if (*p == ',')
            p++;
    }
    return MT_OK;
}

static bool in_allow_list(int family, const uint8_t *a, const char *allow)
{
    for (const char *p = allow; p && *p;) {
        size_t n = strcspn(p, ",");
        cidr c;
        if (n && cidr_parse(p, n, &c) && c.family == family && prefix_match(a, c.addr, c.bits))
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Special-purpose IPv4 blocks that an input URL must never reach: this
 * network, RFC 1918, CGNAT, loopback, link-local, IETF protocol assignments,
 * documentation, benchmarking, multicast, reserved and broadcast. */
static bool v4_denied(const uint8_t *a)
{
    static const struct {
        uint8_t net[4];
        unsigned bits;
    } deny[] = {
        {{0, 0, 0, 0}, 8},       {{10, 0, 0, 0}, 8},     {{100, 64, 0, 0}, 10},
        {{127, 0, 0, 0}, 8},     {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},
        {{192, 0, 0, 0}, 24},    {{192, 0, 2, 0}, 24},   {{192, 88, 99, 0}, 24},
        {{192, 168, 0, 0}, 16},  {{198, 18, 0, 0}, 15},  {{198, 51, 100, 0}, 24},
        {{203, 0, 113, 0}, 24},  {{224, 0, 0, 0}, 4},    {{240, 0, 0, 0}, 4},
    };
    for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
        if (prefix_match(a, deny[i].net, deny[i].bits))
            return true;
    return false;
}

static bool v6_denied(const uint8_t *a)
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    static const struct {
        uint8_t net[2];
        unsigned bits;
    } deny[] = {
        {{0xfc, 0x00}, 7},  /* unique local */
        {{0xfe, 0x80}, 10}, /* link-local */
        {{0xfe, 0xc0}, 10}, /* site-local (deprecated) */
        {{0xff, 0x00}, 8},  /* multicast */
    };
    /* ::/96 covers ::, ::1 and the deprecated IPv4-compatible addresses */
    if (memcmp(a, zero, 12) == 0)
        return true;
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_denied(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4: 2002:V4ADDR::/48 */
        return v4_denied(a + 2);
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) /* documentation */
        return true;
    if (a[0] == 0x01 && a[1] == 0x00 && memcmp(a + 2, zero, 6) == 0) /* discard 100::/64 */
        return true;
    for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
        if (prefix_match(a, deny[i].net, deny[i].bits))
            return true;
    return false;
}

/* True if a is one of this host's own interface addresses. */
static bool own_address(int family, const uint8_t *a)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return true; /* cannot tell: fail closed */
    bool own = false;
    for (struct ifaddrs *i = ifs; i && !own; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family)
            continue;
        if (family == AF_INET)
            own = memcmp(&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, a, 4) == 0;
        else
            own = memcmp(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, a, 16) == 0;
    }
    freeifaddrs(ifs);
    return own;
}

int untrusted_fetch_addr_allowed(const struct sockaddr *sa, const char *allow)
{
    uint8_t a[16];
    int family;
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        family = AF_INET6;
        memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    } else {
        return 0; /* AF_UNIX and anything else */
    }
    if (in_allow_list(family, a, allow))
        return 1;
    if (family == AF_INET ? v4_denied(a) : v6_denied(a))
        return 0;
    return !own_address(family, a);
}

/* ----------------------------------------------------------------- https:// */

typedef struct fetch_conn {
    const char *allow;
    bool refused; /* a resolved address was refused by the policy */
} fetch_conn;

/* libcurl asks for every socket it is about to connect, after DNS
 * resolution, with the exact peer address: the policy is applied here, so
 * a refused address never sees a packet. */
static curl_socket_t open_checked_socket(void *ud, curlsocktype purpose,
                                         struct curl_sockaddr *addr)
{
    fetch_conn *fc = ud;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        !untrusted_fetch_addr_allowed((const struct sockaddr *)&addr->addr, fc->allow)) {
        fc->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void put_detail(const untrusted_fetch_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put_detail(const untrusted_fetch_opts *o, const char *fmt, ...)
{
    if (!o || !o->detail || !o->detail_cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->detail, o->detail_cap, fmt, ap);
    va_end(ap);
}

/* Every failure has the one reason "fetch failed" (the code is MT_EIO, or
 * MT_ENOMEM/MT_EINTERNAL for local causes): no curl text, no address, no
 * distinction between refused, unreachable, timed out, TLS or HTTP errors,
 * so the reason is no port-scan oracle. The cause goes to o->detail. */
static mt_status fetch_https(const char *url, const untrusted_fetch_opts *o, size_t max,
                             uint8_t **out, size_t *len, mt_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return mt_err_set(err, MT_EINTERNAL, "libcurl initialisation failed");
    CURL *c = curl_easy_init();
    if (!c)
        return mt_err_set(err, MT_ENOMEM, "libcurl: out of memory");
    fetch_buf b = {.max = max};
    fetch_conn fc = {.allow = o ? o->allow : NULL};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* no redirect is ever followed */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");          /* no proxy from the environment */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &fc);
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
    if (b.oom) {
        st = mt_err_set(err, MT_ENOMEM, "fetch failed: out of memory");
    } else if (fc.refused) {
        put_detail(o, "address refused by the outbound fetch policy (loopback, private, "
                      "link-local, multicast or this host's own; see --fetch-allow)");
        st = mt_err_set(err, MT_EIO, "fetch failed");
    } else if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        put_detail(o, "larger than the limit of %zu bytes", max);
        st = mt_err_set(err, MT_EIO, "fetch failed");
    } else if (rc != CURLE_OK) {
        put_detail(o, "curl: %s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
        st = mt_err_set(err, MT_EIO, "fetch failed");
    } else if (code < 200 || code > 299) {
        put_detail(o, "HTTP status %ld%s", code,
                   code >= 300 && code < 400 ? " (redirects are not followed)" : "");
        st = mt_err_set(err, MT_EIO, "fetch failed");
    }
    if (st != MT_OK) {
        free(b.data);
        return st;
    }
    if (!b.data && !(b.data = malloc(1)))
        return mt_err_set(err, MT_ENOMEM, "fetch failed: out of memory");
    b.data[b.len] = 0;
    *out = b.data;
    *len = b.len;
    return MT_OK;
}

mt_status untrusted_fetch_ex(const char *url, const untrusted_fetch_opts *o, size_t max,
                             uint8_t **out, size_t *len, mt_err *err)
{
    *out = NULL;
    *len = 0;
    if (!url)
        return mt_err_set(err, MT_EINVAL, "URL is missing");
    if (strncmp(url, "https://", 8) == 0)
        return fetch_https(url, o, max, out, len, err);
    if (strncmp(url, "file://", 7) == 0)
        return fetch_file(url, o ? o->file_root : NULL, max, out, len, err);
    return mt_err_set(err, MT_EINVAL,
                      "unsupported URL scheme (only https:// and file:// are accepted)");
}

mt_status untrusted_fetch(const char *url, const char *file_root, size_t max, uint8_t **out,
                          size_t *len, mt_err *err)
{
    untrusted_fetch_opts o = {.file_root = file_root};
    return untrusted_fetch_ex(url, &o, max, out, len, err);
}
