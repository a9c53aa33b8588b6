/* mt_http_head: a strict reader of one HTTP/1.x request head (request line
 * and header lines up to the blank line), from the network, untrusted. The
 * gateway's input filter uses it to judge a request before its body is read
 * (docs/design.md), and evhttp parses the same head again afterwards, so the
 * reader accepts only a strict subset that both read the same way: a method
 * of upper-case letters, single spaces, a target of visible ASCII,
 * "HTTP/1.1" or "HTTP/1.0", CRLF line ends only, header names of token
 * characters immediately followed by ':', no line folding, no control
 * characters but tab in values, Content-Length of 1-18 digits, at most
 * MT_HTTP_HEAD_MAX_LINES header lines.
 * Ownership: the result points into the caller's buffer.
 * Thread-safety: none needed (no state). */
#ifndef MT_HTTP_HEAD_H
#define MT_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_HTTP_HEAD_MAX_LINES 100

typedef struct mt_http_head {
    char method[16];
    const char *target; /* not NUL-terminated */
    size_t target_len;
    bool has_cl;
    uint64_t cl;
    bool has_te;      /* any Transfer-Encoding header */
    bool dup;         /* a repeated Content-Length or Authorization */
    const char *auth; /* Authorization value, trimmed, not NUL-terminated; NULL if absent */
    size_t auth_len;
    bool expect_continue;
    size_t cl_at, cl_end; /* offsets of the Content-Length line (end after its CRLF) */
    size_t ex_at, ex_end; /* offsets of the Expect line; ex_end 0 if absent */
} mt_http_head;

/* Parses h, n bytes that end with the head's CRLF CRLF; h[n] must be NUL.
 * Returns false (out unspecified) when the head is not strictly well-formed. */
bool mt_http_head_parse(const char *h, size_t n, mt_http_head *out);

#endif
