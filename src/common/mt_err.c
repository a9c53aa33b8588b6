#include "mt_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

mt_status mt_err_set(mt_err *err, mt_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void mt_err_clear(mt_err *err)
{
    if (err) {
        err->code = MT_OK;
        err->msg[0] = '\0';
    }
}

const char *mt_status_name(mt_status code)
{
    switch (code) {
    case MT_OK: return "ok";
    case MT_EINVAL: return "invalid_argument";
    case MT_EAUTH: return "unauthenticated";
    case MT_EPERM: return "permission_denied";
    case MT_ENOTFOUND: return "not_found";
    case MT_ECONFLICT: return "conflict";
    case MT_ETOOBIG: return "too_large";
    case MT_EQUOTA: return "quota_exceeded";
    case MT_ECRYPTO: return "crypto_failed";
    case MT_EIO: return "io_error";
    case MT_ENOMEM: return "out_of_memory";
    case MT_EINTERNAL: return "internal";
    case MT_EUNAVAIL: return "unavailable";
    }
    return "unknown";
}

int mt_status_http(mt_status code)
{
    switch (code) {
    case MT_OK: return 200;
    case MT_EINVAL: return 400;
    case MT_EAUTH: return 401;
    case MT_EPERM: return 403;
    case MT_ENOTFOUND: return 404;
    case MT_ECONFLICT: return 409;
    case MT_ETOOBIG: return 413;
    case MT_EQUOTA: return 429;
    case MT_ECRYPTO: return 400;
    case MT_EUNAVAIL: return 503;
    case MT_EIO:
    case MT_ENOMEM:
    case MT_EINTERNAL: return 500;
    }
    return 500;
}
