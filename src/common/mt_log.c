#include "mt_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = -1;

void mt_log_set_level(mt_log_level level) { atomic_store(&g_level, (int)level); }

static int current_level(void)
{
    int l = atomic_load(&g_level);
    if (l >= 0)
        return l;
    l = MT_LOG_INFO;
    const char *e = getenv("MESATEE_LOG");
    if (e) {
        if (!strcmp(e, "debug")) l = MT_LOG_DEBUG;
        else if (!strcmp(e, "warn")) l = MT_LOG_WARN;
        else if (!strcmp(e, "error")) l = MT_LOG_ERROR;
    }
    atomic_store(&g_level, l);
    return l;
}

void mt_log(mt_log_level level, const char *fmt, ...)
{
    if ((int)level < current_level())
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%d] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level & 3], (int)getpid());
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
