/* libmesatee typed list and get calls (mesatee_file_list, ...): GET the
 * REST routes, follow paging, decode with typed_decode. Contract: mesatee.h,
 * "Typed list and get calls". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "mesatee.h"
#include "mt_util.h"
#include "typed_decode.h"

#define TYPED_CURSOR_MAX 1024 /* longest next_cursor accepted from a server */

/* "/v1/files?cursor=<percent-encoded cursor>" into buf. False if too long. */
static bool page_path(const char *base, const char *cursor, char *buf, size_t cap)
{
    int w = snprintf(buf, cap, "%s", base);
    if (w < 0 || (size_t)w >= cap)
        return false;
    if (!cursor)
        return true;
    size_t o = (size_t)w;
    const char *q = "?cursor=";
    if (o + strlen(q) >= cap)
        return false;
    memcpy(buf + o, q, strlen(q));
    o += strlen(q);
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)cursor; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
                     *p == '~';
        if (o + (plain ? 1 : 3) >= cap)
            return false;
        if (plain) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    buf[o] = '\0';
    return true;
}

/* GETs every page of the list at base and decodes it into *out / *n. */
static int list_all(mesatee_client *c, mt_typed_kind k, const char *base, void **out,
                    size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!c)
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!out || !n)
        return mt_client_set_errf(c, MESATEE_EINVAL, "output pointers must not be NULL");
    mt_typed_vec v = {0};
    char *cursor = NULL;
    char path[64 + 3 * TYPED_CURSOR_MAX];
    char err[MT_TYPED_ERR_MAX];
    int st = MESATEE_OK;
    for (unsigned page = 0;; page++) {
        if (page == MESATEE_MAX_LIST_PAGES) {
            st = mt_client_set_errf(c, MESATEE_ESERVER, "GET %s: paging did not end after %u pages",
                                    base, MESATEE_MAX_LIST_PAGES);
            break;
        }
        if (!page_path(base, cursor, path, sizeof path)) {
            st = mt_client_set_errf(c, MESATEE_ESERVER,
                                    "GET %s: the server's next_cursor is too long", base);
            break;
        }
        char *resp = NULL;
        st = mesatee_call(c, "GET", path, NULL, &resp);
        if (st != MESATEE_OK) { /* the handle's message says why */
            free(resp);
            break;
        }
        char *next = NULL;
        st = mt_typed_decode_page(k, resp, strlen(resp), &v, &next, err);
        free(resp);
        if (st != MESATEE_OK) {
            mt_client_set_errf(c, st, "GET %s: bad answer: %s", base, err);
            break;
        }
        if (!next)
            break;
        if (strlen(next) > TYPED_CURSOR_MAX || (cursor && !strcmp(next, cursor))) {
            st =
                mt_client_set_errf(c, MESATEE_ESERVER, "GET %s: the server's next_cursor is %s",
                                   base, strlen(next) > TYPED_CURSOR_MAX ? "too long" : "repeated");
            free(next);
            break;
        }
        free(cursor);
        cursor = next;
    }
    free(cursor);
    if (st != MESATEE_OK) {
        mt_typed_free(k, v.items, v.n);
        return st;
    }
    if (v.n == 0) { /* a valid empty array: one zeroed element, n = 0 */
        free(v.items);
        v.items = calloc(1, mt_typed_item_size(k));
        if (!v.items)
            return mt_client_set_errf(c, MESATEE_ENOMEM, "out of memory");
    }
    *out = v.items;
    *n = v.n;
    mt_client_set_err(c, MESATEE_OK, "");
    return MESATEE_OK;
}

/* GETs base/id and decodes the one object into *out. */
static int get_one(mesatee_client *c, mt_typed_kind k, const char *what, const char *base,
                   const char *id, void **out)
{
    if (out)
        *out = NULL;
    if (!c)
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!out)
        return mt_client_set_errf(c, MESATEE_EINVAL, "output pointer must not be NULL");
    if (!id || !mt_id_valid(id))
        return mt_client_set_errf(c, MESATEE_EINVAL,
                                  "invalid %s id '%.64s' (expected 32 lower-case hex characters)",
                                  what, id ? id : "");
    char path[96];
    snprintf(path, sizeof path, "%s/%s", base, id);
    char *resp = NULL;
    int st = mesatee_call(c, "GET", path, NULL, &resp);
    if (st != MESATEE_OK) {
        free(resp);
        return st;
    }
    char err[MT_TYPED_ERR_MAX];
    st = mt_typed_decode_one(k, resp, strlen(resp), out, err);
    free(resp);
    if (st != MESATEE_OK)
        return mt_client_set_errf(c, st, "GET %s/{id}: bad answer: %s", base, err);
    return MESATEE_OK;
}

MESATEE_API int mesatee_file_list(mesatee_client *c, mesatee_file_info **out, size_t *n)
{
    void *p = NULL;
    int st = list_all(c, MT_TYPED_FILE, "/v1/files", out ? &p : NULL, n);
    if (out)
        *out = p;
    return st;
}

MESATEE_API int mesatee_file_get_info(mesatee_client *c, const char *file_id,
                                      mesatee_file_info **out)
{
    void *p = NULL;
    int st = get_one(c, MT_TYPED_FILE, "file", "/v1/files", file_id, out ? &p : NULL);
    if (out)
        *out = p;
    return st;
}

MESATEE_API void mesatee_file_info_free(mesatee_file_info *v, size_t n)
{
    mt_typed_free(MT_TYPED_FILE, v, n);
}

MESATEE_API int mesatee_function_list(mesatee_client *c, mesatee_function_info **out,
                                      size_t *n)
{
    void *p = NULL;
    int st = list_all(c, MT_TYPED_FUNCTION, "/v1/functions", out ? &p : NULL, n);
    if (out)
        *out = p;
    return st;
}

MESATEE_API int mesatee_function_get_info(mesatee_client *c, const char *function_id,
                                          mesatee_function_info **out)
{
    void *p = NULL;
    int st = get_one(c, MT_TYPED_FUNCTION, "function", "/v1/functions", function_id, out ? &p : NULL);
    if (out)
        *out = p;
    return st;
}

MESATEE_API void mesatee_function_info_free(mesatee_function_info *v, size_t n)
{
    mt_typed_free(MT_TYPED_FUNCTION, v, n);
}

MESATEE_API int mesatee_task_list(mesatee_client *c, mesatee_task_info **out, size_t *n)
{
    void *p = NULL;
    int st = list_all(c, MT_TYPED_TASK, "/v1/tasks", out ? &p : NULL, n);
    if (out)
        *out = p;
    return st;
}

MESATEE_API int mesatee_task_get_info(mesatee_client *c, const char *task_id,
                                      mesatee_task_info **out)
{
    void *p = NULL;
    int st = get_one(c, MT_TYPED_TASK, "task", "/v1/tasks", task_id, out ? &p : NULL);
    if (out)
        *out = p;
    return st;
}

MESATEE_API void mesatee_task_info_free(mesatee_task_info *v, size_t n)
{
    mt_typed_free(MT_TYPED_TASK, v, n);
}
