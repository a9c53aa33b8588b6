/* http_head: the strict HTTP/1.x request-head reader of the gateway's input
 * filter (see mt_http_head.h). */
#include "mt_http_head.h"

#include <string.h>
#include <strings.h>

static bool gw_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

bool mt_http_head_parse(const char *h, size_t n, mt_http_head *hd)
{
    memset(hd, 0, sizeof *hd);
    size_t i = 0;
    while (i < sizeof hd->method - 1 && h[i] >= 'A' && h[i] <= 'Z')
        i++;
    if (i == 0 || h[i] != ' ')
        return false;
    memcpy(hd->method, h, i);
    hd->method[i] = '\0';
    size_t t0 = ++i;
    while ((unsigned char)h[i] > 0x20 && (unsigned char)h[i] < 0x7f)
        i++;
    if (i == t0 || h[i] != ' ')
        return false;
    hd->target = h + t0;
    hd->target_len = i - t0;
    i++;
    if (n - i < 10 ||
        (memcmp(h + i, "HTTP/1.1\r\n", 10) != 0 && memcmp(h + i, "HTTP/1.0\r\n", 10) != 0))
        return false;
    i += 10;
    for (unsigned lines = 0;; lines++) {
        if (h[i] == '\r' && h[i + 1] == '\n')
            return i + 2 == n;
        if (lines == MT_HTTP_HEAD_MAX_LINES)
            return false;
        size_t at = i;
        while (gw_tchar((unsigned char)h[i]))
            i++;
        if (i == at || h[i] != ':')
            return false;
        size_t name_len = i - at;
        i++;
        while (h[i] == ' ' || h[i] == '\t')
            i++;
        size_t v0 = i;
        while (h[i] == '\t' || ((unsigned char)h[i] >= 0x20 && h[i] != 0x7f))
            i++;
        if (h[i] != '\r' || h[i + 1] != '\n')
            return false;
        size_t v1 = i;
        while (v1 > v0 && (h[v1 - 1] == ' ' || h[v1 - 1] == '\t'))
            v1--;
        i += 2;
        const char *name = h + at, *v = h + v0;
        size_t vn = v1 - v0;
        if (name_len == 14 && !strncasecmp(name, "content-length", 14)) {
            if (hd->has_cl)
                hd->dup = true;
            if (vn == 0 || vn > 18)
                return false;
            uint64_t cl = 0;
            for (size_t k = 0; k < vn; k++) {
                if (v[k] < '0' || v[k] > '9')
                    return false;
                cl = cl * 10 + (uint64_t)(v[k] - '0');
            }
            hd->has_cl = true;
            hd->cl = cl;
            hd->cl_at = at;
            hd->cl_end = i;
        } else if (name_len == 17 && !strncasecmp(name, "transfer-encoding", 17)) {
            hd->has_te = true;
        } else if (name_len == 13 && !strncasecmp(name, "authorization", 13)) {
            if (hd->auth)
                hd->dup = true;
            hd->auth = v;
            hd->auth_len = vn;
        } else if (name_len == 6 && !strncasecmp(name, "expect", 6)) {
            if (hd->ex_end)
                hd->dup = true; /* only one Expect line is cut from a streamed head */
            hd->expect_continue = vn == 12 && !strncasecmp(v, "100-continue", 12);
            hd->ex_at = at;
            hd->ex_end = i;
        }
    }
}
