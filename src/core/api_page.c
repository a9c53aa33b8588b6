/* api_page: list paging query reader and cursor codec (see api_page.h). */
#include "api_page.h"

#include <stdio.h>
#include <string.h>

#include "api_decode.h"
#include "mt_util.h"

static const char *page_list_name(page_list list)
{
    switch (list) {
    case PAGE_FILES:
        return "files";
    case PAGE_FUNCTIONS:
        return "functions";
    case PAGE_TASKS:
        return "tasks";
    case PAGE_USERS:
        return "users";
    case PAGE_AUDIT:
        return "audit";
    }
    return "?";
}

/* Decodes the cursor (hex, len characters) of list into out. */
static mt_status page_cursor_read(const char *hex, size_t len, page_list list, dec_page *out,
                                  mt_err *err)
{
    uint8_t raw[DEC_CURSOR_MAX / 2 + 1];
    char hx[DEC_CURSOR_MAX + 1];
    if (len < 4 || len > DEC_CURSOR_MAX || len % 2)
        goto bad;
    memcpy(hx, hex, len);
    hx[len] = '\0';
    mt_err e2;
    if (mt_hex_decode(hx, raw, len / 2, &e2) != MT_OK)
        goto bad;
    size_t n = len / 2;
    raw[n] = '\0';
    if (memchr(raw, '\0', n) || raw[1] != '.')
        goto bad;
    if (raw[0] != (uint8_t)list)
        return mt_err_set(err, MT_EINVAL,
                          "query 'cursor': this cursor belongs to another list; pass the "
                          "next_cursor of the previous page of %s unchanged",
                          page_list_name(list));
    const char *p = (const char *)raw + 2;
    size_t plen = n - 2;
    switch (list) {
    case PAGE_AUDIT:
        if (!dec_u63(p, plen, &out->seq))
            goto bad;
        break;
    case PAGE_USERS:
        if (plen >= sizeof out->key)
            goto bad;
        memcpy(out->key, p, plen);
        out->key[plen] = '\0';
        if (!dec_username_valid(out->key))
            goto bad;
        break;
    default: {
        const char *dot = memchr(p, '.', plen);
        if (!dot || !dec_u63(p, (size_t)(dot - p), &out->time))
            goto bad;
        size_t klen = plen - (size_t)(dot - p) - 1;
        if (klen >= sizeof out->key)
            goto bad;
        memcpy(out->key, dot + 1, klen);
        out->key[klen] = '\0';
        if (!mt_id_valid(out->key))
            goto bad;
    }
    }
    out->has_pos = true;
    return MT_OK;
bad:
    return mt_err_set(err, MT_EINVAL,
                      "query 'cursor': not a cursor of this list; pass the next_cursor of "
                      "the previous page of %s unchanged",
                      page_list_name(list));
}

mt_status dec_page_query_parse(const char *query, page_list list, dec_page *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    out->limit = DEC_PAGE_DEFAULT;
    if (!query || !*query)
        return MT_OK;
    mt_status rc = MT_OK;
    bool seen_limit = false, seen_cursor = false, seen_after = false;
    int64_t after = 0;
    if (strlen(query) > 512) {
        rc = mt_err_set(err, MT_EINVAL, "query string too long");
        goto out;
    }
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            rc = mt_err_set(err, MT_EINVAL,
                            "query: expected limit=N and cursor=C (name=value "
                            "pairs separated by '&')");
            goto out;
        }
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        int64_t v;
        if (klen == 5 && !strncmp(p, "limit", 5)) {
            if (seen_limit) {
                rc = mt_err_set(err, MT_EINVAL, "query 'limit' is given twice");
                goto out;
            }
            seen_limit = true;
            if (!dec_u63(eq + 1, vlen, &v) || v < 1 || v > DEC_PAGE_MAX) {
                rc = mt_err_set(err, MT_EINVAL, "query 'limit': expected a number from 1 to %d",
                                DEC_PAGE_MAX);
                goto out;
            }
            out->limit = v;
        } else if (klen == 6 && !strncmp(p, "cursor", 6)) {
            if (seen_cursor) {
                rc = mt_err_set(err, MT_EINVAL, "query 'cursor' is given twice");
                goto out;
            }
            seen_cursor = true;
            if ((rc = page_cursor_read(eq + 1, vlen, list, out, err)) != MT_OK)
                goto out;
        } else if (list == PAGE_AUDIT && klen == 5 && !strncmp(p, "after", 5)) {
            if (seen_after) {
                rc = mt_err_set(err, MT_EINVAL, "query 'after' is given twice");
                goto out;
            }
            seen_after = true;
            if (!dec_u63(eq + 1, vlen, &after)) {
                rc = mt_err_set(err, MT_EINVAL, "query 'after': expected a sequence number");
                goto out;
            }
        } else {
            rc = mt_err_set(err, MT_EINVAL, "query: unknown parameter (expected %s)",
                            list == PAGE_AUDIT ? "limit, cursor and after" : "limit and cursor");
            goto out;
        }
        p += len;
        if (*p == '&' && !*++p) {
            rc = mt_err_set(err, MT_EINVAL, "query: ends with '&'");
            goto out;
        }
    }
    if (seen_after && !seen_cursor) {
        out->seq = after;
        out->has_pos = true;
    }
out:
    if (rc) {
        memset(out, 0, sizeof *out);
        out->limit = DEC_PAGE_DEFAULT;
    }
    return rc;
}

void page_cursor_make(page_list list, int64_t time, int64_t seq, const char *key, char *out,
                      size_t cap)
{
    char txt[DEC_CURSOR_MAX / 2 + 1];
    int n;
    if (list == PAGE_AUDIT)
        n = snprintf(txt, sizeof txt, "%c.%lld", (char)list, (long long)seq);
    else if (list == PAGE_USERS)
        n = snprintf(txt, sizeof txt, "%c.%s", (char)list, key ? key : "");
    else
        n = snprintf(txt, sizeof txt, "%c.%lld.%s", (char)list, (long long)time, key ? key : "");
    if (n < 0 || (size_t)n >= sizeof txt || cap < 2 * (size_t)n + 1) {
        if (cap)
            out[0] = '\0';
        return;
    }
    mt_hex_encode((const uint8_t *)txt, (size_t)n, out);
}
