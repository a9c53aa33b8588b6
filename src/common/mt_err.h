/* mt_err: the one error model of mesatee.
 *
 * Every fallible function returns an mt_status (MT_OK == 0 on success) and,
 * when given a non-NULL mt_err *, fills it with a code and a message a user can
 * act on ("file 3f2a... is not owned by you"). Messages never contain secrets.
 * An mt_err is a plain value: no allocation, no cleanup, safe to copy.
 * Thread-safety: functions here are reentrant. */
#ifndef MT_ERR_H
#define MT_ERR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum mt_status {
    MT_OK = 0,
    MT_EINVAL,     /* malformed or invalid input (HTTP 400) */
    MT_EAUTH,      /* missing, bad, expired or revoked credentials (401) */
    MT_EPERM,      /* authenticated but not allowed (403) */
    MT_ENOTFOUND,  /* no such object, or not visible to the caller (404) */
    MT_ECONFLICT,  /* object exists or is in the wrong state (409) */
    MT_ETOOBIG,    /* input exceeds a configured limit (413) */
    MT_EQUOTA,     /* usage quota exhausted (429) */
    MT_ECRYPTO,    /* authentication of ciphertext failed; says "failed" only (400) */
    MT_EIO,        /* I/O error on the store, a file or the network (500) */
    MT_ENOMEM,     /* allocation failed (500) */
    MT_EINTERNAL,  /* broken invariant (500) */
    MT_EUNAVAIL,   /* temporarily unavailable, e.g. shutting down (503) */
} mt_status;

#define MT_ERR_MSG_MAX 256

typedef struct mt_err {
    mt_status code;
    char msg[MT_ERR_MSG_MAX];
} mt_err;

/* Sets err (if non-NULL) and returns code, so callers can write
 * `return mt_err_set(err, MT_EINVAL, "bad %s", x);`. */
mt_status mt_err_set(mt_err *err, mt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts a formatted prefix before err's current message and sets its code:
 * `return mt_err_prefix(err, MT_EINVAL, "argument '%s': ", name);` turns
 * "no column 'w'" into "argument 'features': no column 'w'". The old message
 * is copied before formatting, so the prefix appears once; never write
 * mt_err_set(err, c, "...%s", err->msg) (source and destination overlap).
 * Truncates to MT_ERR_MSG_MAX - 1 bytes. NULL err: returns code. */
mt_status mt_err_prefix(mt_err *err, mt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets err to MT_OK with an empty message. */
void mt_err_clear(mt_err *err);

/* Stable lower-case identifier of a code ("invalid_argument", ...). */
const char *mt_status_name(mt_status code);

/* The HTTP status that the REST API (and the executor API) uses for a code.
 * mt_status_name, mt_status_http and the two reverse mappings below read ONE
 * table (mt_err.c); no other module keeps its own copy. */
int mt_status_http(mt_status code);

/* Reverse of mt_status_name; false (and *out untouched) for unknown names. */
bool mt_status_from_name(const char *name, mt_status *out);

/* The code a client assumes for an HTTP answer without a (known) error code:
 * 2xx MT_OK; a status from the table its first code (400 MT_EINVAL); other
 * 4xx MT_EINVAL; anything else MT_EINTERNAL. */
mt_status mt_status_from_http(int http);

/* The reason phrase for an HTTP status ("Forbidden"). */
const char *mt_http_reason(int http);

#endif
