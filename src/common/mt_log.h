/* mt_log: leveled logging to stderr, one line per call, with UTC timestamp.
 * Never log secrets (keys, passwords, tokens, plaintext).
 * Thread-safety: safe from any thread (each line is one write(2)). */
#ifndef MT_LOG_H
#define MT_LOG_H

typedef enum { MT_LOG_DEBUG = 0, MT_LOG_INFO, MT_LOG_WARN, MT_LOG_ERROR } mt_log_level;

/* Lines below this level are dropped. Default MT_LOG_INFO; the environment
 * variable MESATEE_LOG=debug|info|warn|error overrides at first use. */
void mt_log_set_level(mt_log_level level);

void mt_log(mt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)
#define mt_info(...) mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_warn(...) mt_log(MT_LOG_WARN, __VA_ARGS__)
#define mt_error(...) mt_log(MT_LOG_ERROR, __VA_ARGS__)

#endif
