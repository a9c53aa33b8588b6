#include "mt_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = -1;
static atomic_int g_format = -1; /* -1: read MESATEE_LOG_FORMAT at first use */
static atomic_int g_access_fd = -1; /* -1: the log stream */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void mt_log_set_level(mt_log_level level) { atomic_store(&g_level, (int)level); }

void mt_log_set_format(mt_log_format format) { atomic_store(&g_format, (int)format); }

static int current_format(void)
{
    int f = atomic_load(&g_format);
    if (f >= 0)
        return f;
    const char *e = getenv("MESATEE_LOG_FORMAT");
    f = e && !strcmp(e, "json") ? MT_LOG_JSON : MT_LOG_TEXT;
    atomic_store(&g_format, f);
    return f;
}

bool mt_log_level_parse(const char *s, mt_log_level *out)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, level_names[i])) {
            *out = (mt_log_level)i;
            return true;
        }
    return false;
}

static int current_level(void)
{
    int l = atomic_load(&g_level);
    if (l >= 0)
        return l;
    mt_log_level lv = MT_LOG_INFO;
    (void)mt_log_level_parse(getenv("MESATEE_LOG"), &lv);
    l = (int)lv;
    atomic_store(&g_level, l);
    return l;
}

mt_status mt_log_set_access_file(const char *path, mt_err *err)
{
    int fd = -1;
    if (path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
            return mt_err_set(err, MT_EIO, "cannot open access log %s: %s", path,
                              strerror(errno));
    }
    int old = atomic_exchange(&g_access_fd, fd);
    if (old >= 0)
        close(old); /* a line being written to it concurrently fails with EBADF: dropped */
    return MT_OK;
}

/* Appends printf output to buf[*n..cap), clamping *n below cap. */
static void app(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void app(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (m > 0)
        *n = *n + (size_t)m >= cap ? cap - 1 : *n + (size_t)m;
}

/* Appends s to buf[*n..cap) as a JSON string body (no quotes). */
static void json_escape(char *buf, size_t cap, size_t *n, const char *s)
{
    for (; s && *s && *n + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[(*n)++] = '\\';
            buf[(*n)++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            app(buf, cap, n, "\\u%04x", ch);
        } else {
            buf[(*n)++] = (char)ch;
        }
    }
    buf[*n] = '\0';
}

/* Appends s as text: control characters become '?' (one line per entry). */
static void text_clean(char *buf, size_t cap, size_t *n, const char *s)
{
    for (; s && *s && *n + 2 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        buf[(*n)++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[*n] = '\0';
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into out (at least 64 bytes). */
static size_t timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int ms = (int)((ts.tv_nsec / 1000000) % 1000);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
                     (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
                     tm.tm_sec % 100, ms < 0 ? 0 : ms);
    return n < 0 ? 0 : (size_t)n;
}

static void emit(int fd, char *line, size_t len, size_t cap)
{
    if (len > cap - 2)
        len = cap - 2;
    line[len++] = '\n';
    ssize_t w = write(fd, line, len);
    (void)w;
}

void mt_log(mt_log_level level, const char *fmt, ...)
{
    if ((int)level < current_level())
        return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    char ts[64];
    timestamp(ts, sizeof ts);
    char line[2048];
    size_t n = 0;
    if (current_format() == MT_LOG_JSON) {
        app(line, sizeof line, &n, "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,"
                                                "\"msg\":\"",
                             ts, level_names[level & 3], (int)getpid());
        json_escape(line, sizeof line - 4, &n, msg);
        app(line, sizeof line, &n, "\"}");
    } else {
        app(line, sizeof line, &n, "%s %s [%d] ", ts, level_names[level & 3],
                             (int)getpid());
        text_clean(line, sizeof line, &n, msg);
    }
    emit(STDERR_FILENO, line, n, sizeof line);
}

void mt_log_access(const mt_log_access_rec *r)
{
    int fd = atomic_load(&g_access_fd);
    if (fd < 0) {
        if (current_level() > MT_LOG_INFO)
            return;
        fd = STDERR_FILENO;
    }
    char ts[64];
    timestamp(ts, sizeof ts);
    char line[1024];
    size_t n = 0;
    const char *user = r->user && *r->user ? r->user : "-";
    if (current_format() == MT_LOG_JSON) {
        app(line, sizeof line, &n,
                             "{\"time\":\"%s\",\"level\":\"info\",\"pid\":%d,\"type\":\"access\","
                             "\"request_id\":\"",
                             ts, (int)getpid());
        json_escape(line, sizeof line - 200, &n, r->request_id);
        app(line, sizeof line, &n, "\",\"method\":\"");
        json_escape(line, sizeof line - 160, &n, r->method);
        app(line, sizeof line, &n, "\",\"route\":\"");
        json_escape(line, sizeof line - 120, &n, r->route);
        app(line, sizeof line, &n, "\",\"status\":%d,\"duration_ms\":%.3f,"
                                                         "\"user\":",
                              r->status, r->duration_ms);
        if (r->user && *r->user) {
            app(line, sizeof line, &n, "\"");
            json_escape(line, sizeof line - 4, &n, r->user);
            app(line, sizeof line, &n, "\"}");
        } else {
            app(line, sizeof line, &n, "null}");
        }
    } else {
        app(line, sizeof line, &n, "%s info [%d] access request_id=", ts,
                             (int)getpid());
        text_clean(line, sizeof line, &n, r->request_id ? r->request_id : "-");
        app(line, sizeof line, &n, " method=");
        text_clean(line, sizeof line, &n, r->method ? r->method : "-");
        app(line, sizeof line, &n, " route=\"");
        text_clean(line, sizeof line - 200, &n, r->route ? r->route : "-");
        app(line, sizeof line, &n, "\" status=%d duration_ms=%.3f user=",
                              r->status, r->duration_ms);
        text_clean(line, sizeof line, &n, user);
    }
    if (n >= sizeof line)
        n = sizeof line - 2;
    emit(fd, line, n, sizeof line);
}
