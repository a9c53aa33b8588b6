/* mt_sdnotify: tells the service manager (systemd, Type=notify) how the
 * daemon is doing, through sd_notify(3) of libsystemd: READY=1 once the
 * listening socket is bound, STOPPING=1 when a graceful stop begins,
 * RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a reload, and STATUS=
 * lines that `systemctl status` shows, WATCHDOG=1 when WatchdogSec= is set.
 * Without a service manager
 * (NOTIFY_SOCKET unset) every call does nothing. NOTIFY_SOCKET stays in the
 * environment (several messages are sent); mesatee-worker is started with an
 * empty environment, so it never inherits it.
 * Errors: a message that cannot be sent is logged once (warning) and
 * otherwise ignored: the service manager then times out on its own.
 * Thread-safety: any thread; each call sends one datagram. */
#ifndef MT_SDNOTIFY_H
#define MT_SDNOTIFY_H

#include <stdbool.h>

/* READY=1 and STATUS=<status> (status may be NULL). */
void mt_sdnotify_ready(const char *status);
/* STATUS=<printf format>. */
void mt_sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1 and STATUS=<status> (may be NULL). */
void mt_sdnotify_stopping(const char *status);
/* RELOADING=1 and MONOTONIC_USEC=<now>; send mt_sdnotify_ready when the
 * reload is over (a SIGHUP reload hook calls both). */
void mt_sdnotify_reloading(void);
/* The watchdog interval the service manager asked for (WatchdogSec=:
 * WATCHDOG_USEC, for this process), in microseconds; 0 = none. */
unsigned long long mt_sdnotify_watchdog_usec(void);
/* WATCHDOG=1: the daemon is alive (sent from the event loop, so a loop that
 * hangs stops the pings and systemd restarts the service). */
void mt_sdnotify_watchdog(void);
/* True when NOTIFY_SOCKET is set (a service manager listens). */
bool mt_sdnotify_enabled(void);

#endif
