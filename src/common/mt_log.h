/* mt_log: leveled logging to stderr, one line per call, with UTC timestamp,
 * as text or as JSON objects (one per line); and the access log, one line
 * per HTTP request (mt_log_access), to the log stream or its own file.
 * Never log secrets (keys, passwords, tokens, plaintext).
 * Thread-safety: safe from any thread (each line is one write(2); the
 * settings are atomics, so a reload may change them while others log). */
#ifndef MT_LOG_H
#define MT_LOG_H

#include <stdbool.h>

#include "mt_err.h"

typedef enum { MT_LOG_DEBUG = 0, MT_LOG_INFO, MT_LOG_WARN, MT_LOG_ERROR } mt_log_level;
typedef enum { MT_LOG_TEXT = 0, MT_LOG_JSON } mt_log_format;

/* Lines below this level are dropped. Default MT_LOG_INFO; the environment
 * variable MESATEE_LOG=debug|info|warn|error overrides at first use. */
void mt_log_set_level(mt_log_level level);
/* "error", "warn", "info" or "debug" -> level; false for anything else. */
bool mt_log_level_parse(const char *s, mt_log_level *out);
/* Text (default): "TIME LEVEL [PID] MESSAGE". JSON: {"time","level","pid","msg"}.
 * Default: MESATEE_LOG_FORMAT=json|text at first use, else text. */
void mt_log_set_format(mt_log_format format);

/* Where access lines go: path NULL = the log stream (stderr, at level info),
 * else appended to that file (created 0640), whatever the level. The file is
 * opened before the old one is closed: on failure nothing changes. Called
 * again with the same path it reopens the file (log rotation). */
mt_status mt_log_set_access_file(const char *path, mt_err *err);

/* One HTTP request, answered. Strings may be NULL ("-"). */
typedef struct mt_log_access_rec {
    const char *request_id;
    const char *method;
    const char *route; /* the route pattern, e.g. "GET /v1/tasks/{id}" */
    const char *user;  /* authenticated user, or NULL */
    int status;
    double duration_ms;
} mt_log_access_rec;
void mt_log_access(const mt_log_access_rec *r);

void mt_log(mt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)
#define mt_info(...) mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_warn(...) mt_log(MT_LOG_WARN, __VA_ARGS__)
#define mt_error(...) mt_log(MT_LOG_ERROR, __VA_ARGS__)

#endif
