/* vault_head: Vault-client head rewriting for /v1/transit/ (contract:
 * mt_vault_head.h). */
#include "mt_vault_head.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VH_PREFIX "/v1/transit/"

/* The value of header `name` (trimmed) in the header lines of h; NULL if
 * absent. *line / *line_end (optional) get the line's start and the end of
 * its CRLF. */
static const char *vh_header(const char *h, size_t n, const char *name, size_t *vlen,
                             const char **line, const char **line_end)
{
    size_t nl = strlen(name);
    const char *p = strstr(h, "\r\n");
    while (p && (size_t)(p - h) + 2 < n) {
        p += 2;
        const char *eol = strstr(p, "\r\n");
        if (!eol || eol == p)
            return NULL;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            if (line)
                *line = p;
            if (line_end)
                *line_end = eol + 2;
            return v;
        }
        p = eol;
    }
    return NULL;
}

bool mt_vault_head_rewrite(const char *h, size_t n, char **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (n < 4 || !h)
        return false;
    const char *sp = memchr(h, ' ', n < 16 ? n : 16);
    if (!sp)
        return false;
    const char *target = sp + 1;
    if ((size_t)(target - h) + strlen(VH_PREFIX) > n ||
        strncmp(target, VH_PREFIX, strlen(VH_PREFIX)) != 0)
        return false;
    /* the target ends at the next space of the request line itself */
    const char *eol = strstr(h, "\r\n");
    const char *tend = strchr(target, ' ');
    if (!eol || !tend || tend > eol || (size_t)(eol - h) >= n)
        return false;
    bool list = (size_t)(sp - h) == 4 && !strncmp(h, "LIST", 4);
    size_t tl = 0, al = 0;
    const char *tline = NULL, *tline_end = NULL;
    const char *tok = vh_header(h, n, "x-vault-token", &tl, &tline, &tline_end);
    bool add_auth = tok && tl > 0 && !vh_header(h, n, "authorization", &al, NULL, NULL);
    if (!list && !add_auth)
        return false;
    bool has_q = memchr(target, '?', (size_t)(tend - target)) != NULL;
    size_t cap = n + 64;
    char *b = malloc(cap);
    if (!b)
        return false;
    size_t o = 0;
    const char *rest = target; /* from the target on */
    if (list) {
        memcpy(b, "GET ", 4);
        o = 4;
        memcpy(b + o, target, (size_t)(tend - target));
        o += (size_t)(tend - target);
        const char *q = has_q ? "&list=true" : "?list=true";
        memcpy(b + o, q, strlen(q));
        o += strlen(q);
        rest = tend;
    } else {
        memcpy(b, h, (size_t)(target - h));
        o = (size_t)(target - h);
    }
    if (add_auth) {
        /* the X-Vault-Token line becomes the Authorization line, in place:
         * "Authorization: Bearer " is 22 bytes for "X-Vault-Token: " (15) */
        memcpy(b + o, rest, (size_t)(tline - rest));
        o += (size_t)(tline - rest);
        memcpy(b + o, "Authorization: Bearer ", 22);
        o += 22;
        memcpy(b + o, tok, tl);
        o += tl;
        memcpy(b + o, "\r\n", 2);
        o += 2;
        rest = tline_end;
    }
    size_t tail = n - (size_t)(rest - h);
    memcpy(b + o, rest, tail);
    o += tail;
    b[o] = '\0';
    *out = b;
    *out_n = o;
    return true;
}
