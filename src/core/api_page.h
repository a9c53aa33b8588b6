/* api_page: paging of the list routes (GET /v1/files, /v1/functions,
 * /v1/tasks, /v1/users, /v1/audit): the query reader for `limit` and
 * `cursor` and the opaque cursor codec.
 *
 * Query: `limit=N` (1..DEC_PAGE_MAX, default DEC_PAGE_DEFAULT) and
 * `cursor=C` where C is the `next_cursor` of the previous page, unchanged.
 * GET /v1/audit also takes `after=SEQ` (kept from before paging; a cursor
 * wins over it). Anything else, a repeated key, a bad number or a cursor of
 * another list is refused with MT_EINVAL and a message naming the
 * parameter; the message never repeats the input.
 *
 * A cursor is the lower-case hex of "<list>.<position>" where <list> is one
 * letter per route and <position> the sort key of the last entry of the page
 * (created_at and id; username; audit seq). Clients treat it as opaque: the
 * position only says where the caller's own, already filtered, listing goes
 * on, so a forged cursor can skip entries of that listing, never show others.
 * Pure functions, no state: safe from any thread. */
#ifndef MT_API_PAGE_H
#define MT_API_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

#define DEC_PAGE_DEFAULT 100
#define DEC_PAGE_MAX 1000
#define DEC_CURSOR_MAX 160 /* hex characters of a cursor, NUL not counted */

typedef enum {
    PAGE_FILES = 'f',
    PAGE_FUNCTIONS = 'n',
    PAGE_TASKS = 't',
    PAGE_USERS = 'u',
    PAGE_AUDIT = 'a',
} page_list;

typedef struct dec_page {
    int64_t limit;
    bool has_pos; /* a cursor (or, for audit, after=) was given */
    int64_t time; /* files/functions/tasks: created_at of the last entry */
    int64_t seq;  /* audit: seq of the last entry (after= sets it too) */
    char key[72]; /* files/functions/tasks: id; users: username */
} dec_page;

/* Parses the raw query string (NULL or "" = first page, default limit) of
 * the list route `list`. On error *out is the first page and MT_EINVAL is
 * returned with a message naming the parameter. */
mt_status dec_page_query_parse(const char *query, page_list list, dec_page *out, mt_err *err);

/* Writes the cursor that continues after the entry (time, seq, key) of list
 * into out (cap >= DEC_CURSOR_MAX + 1); key may be NULL for audit. */
void page_cursor_make(page_list list, int64_t time, int64_t seq, const char *key, char *out,
                      size_t cap);

#endif
