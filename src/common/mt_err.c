#include "mt_err.h"

#include <stdarg.h>
#include <stdbool.h>
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

mt_status mt_err_prefix(mt_err *err, mt_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    char old[MT_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
        err->msg[0] = '\0';
    }
    if ((size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, "%s", old);
    err->code = code;
    return code;
}

void mt_err_clear(mt_err *err)
{
    if (err) {
        err->code = MT_OK;
        err->msg[0] = '\0';
    }
}

/* THE table of status codes: name (the REST API's error.code) and HTTP status.
 * Every other mapping (gateway, executor API, client library, CLI) derives
 * from this one; tests/unit/test_secrets.c pins each row. */
static const struct {
    mt_status code;
    const char *name;
    int http;
} k_status[] = {
    {MT_OK, "ok", 200},
    {MT_EINVAL, "invalid_argument", 400},
    {MT_EAUTH, "unauthenticated", 401},
    {MT_EPERM, "permission_denied", 403},
    {MT_ENOTFOUND, "not_found", 404},
    {MT_ECONFLICT, "conflict", 409},
    {MT_ETOOBIG, "too_large", 413},
    {MT_EQUOTA, "quota_exceeded", 429},
    {MT_ECRYPTO, "crypto_failed", 400},
    {MT_EIO, "io_error", 500},
    {MT_ENOMEM, "out_of_memory", 500},
    {MT_EINTERNAL, "internal", 500},
    {MT_EUNAVAIL, "unavailable", 503},
};
#define K_STATUS_N (sizeof k_status / sizeof k_status[0])

const char *mt_status_name(mt_status code)
{
    for (size_t i = 0; i < K_STATUS_N; i++)
        if (k_status[i].code == code)
            return k_status[i].name;
    return "unknown";
}

int mt_status_http(mt_status code)
{
    for (size_t i = 0; i < K_STATUS_N; i++)
        if (k_status[i].code == code)
            return k_status[i].http;
    return 500;
}

bool mt_status_from_name(const char *name, mt_status *out)
{
    for (size_t i = 0; name && i < K_STATUS_N; i++)
        if (strcmp(k_status[i].name, name) == 0) {
            *out = k_status[i].code;
            return true;
        }
    return false;
}

mt_status mt_status_from_http(int http)
{
    if (http >= 200 && http < 300)
        return MT_OK;
    if (http == 500)
        return MT_EINTERNAL; /* shared by EIO, ENOMEM and EINTERNAL */
    for (size_t i = 0; i < K_STATUS_N; i++) /* first row wins: 400 is MT_EINVAL */
        if (k_status[i].http == http && k_status[i].code != MT_OK)
            return k_status[i].code;
    return http >= 400 && http < 500 ? MT_EINVAL : MT_EINTERNAL;
}

const char *mt_http_reason(int http)
{
    switch (http) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    }
    return http < 400 ? "OK" : http < 500 ? "Client Error" : "Server Error";
}
