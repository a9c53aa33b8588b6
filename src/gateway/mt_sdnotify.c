/* mt_sdnotify: see mt_sdnotify.h. */
#include "mt_sdnotify.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "mt_log.h"

static atomic_bool warned;

/* Sends msg; logs the first failure. */
static void send_msg(const char *msg)
{
    if (!mt_sdnotify_enabled())
        return;
    int r = sd_notify(0, msg);
    if (r < 0 && !atomic_exchange(&warned, true))
        mt_warn("sd_notify failed (error %d): the service manager is not told about this "
                "daemon's state",
                -r);
}

bool mt_sdnotify_enabled(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    return s && *s;
}

void mt_sdnotify_ready(const char *status)
{
    char msg[600];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%.500s", status ? status : "ready");
    send_msg(msg);
}

void mt_sdnotify_status(const char *fmt, ...)
{
    char msg[600] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + 7, sizeof msg - 7, fmt, ap);
    va_end(ap);
    send_msg(msg);
}

void mt_sdnotify_stopping(const char *status)
{
    char msg[600];
    snprintf(msg, sizeof msg, "STOPPING=1\nSTATUS=%.500s", status ? status : "stopping");
    send_msg(msg);
}

void mt_sdnotify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_msg(msg);
}

unsigned long long mt_sdnotify_watchdog_usec(void)
{
    uint64_t usec = 0;
    if (!mt_sdnotify_enabled() || sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return (unsigned long long)usec;
}

void mt_sdnotify_watchdog(void)
{
    send_msg("WATCHDOG=1");
}
