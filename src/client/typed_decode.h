/* typed_decode: libmesatee's reader of the server's file, function and task
 * JSON (docs/api/openapi.yaml: FileMeta, Function, Task and the list
 * answers {"files"|"functions"|"tasks": [...], "next_cursor": "..."}) into
 * the public mesatee_*_info structs of mesatee.h.
 *
 * The answers come from the network, so this is a parser of outside input:
 * every field is type-checked, required fields must be present, ids must be
 * 32 lower-case hex characters, duplicate keys and trailing bytes are
 * refused (fuzz target fuzz/client_typed.c). No HTTP here: typed.c does the
 * requests and the paging loop.
 *
 * Ownership: decoded items own all their strings; mt_typed_free releases an
 * array of them. On failure nothing is added to the vector (an item that
 * fails half-way is freed) and err names the item and field, e.g.
 * "files[2].owners: expected an array of strings". The message quotes no
 * byte of the answer except the list key and field names chosen here.
 *
 * Thread-safety: none needed; functions touch only their arguments. */
#ifndef MT_TYPED_DECODE_H
#define MT_TYPED_DECODE_H

#include <stddef.h>

#include "mesatee.h"

typedef enum mt_typed_kind {
    MT_TYPED_FILE = 0,     /* mesatee_file_info, list key "files" */
    MT_TYPED_FUNCTION = 1, /* mesatee_function_info, list key "functions" */
    MT_TYPED_TASK = 2,     /* mesatee_task_info, list key "tasks" */
} mt_typed_kind;

#define MT_TYPED_ERR_MAX 160

/* A growing array of decoded items of one kind. Zero-initialise it. */
typedef struct mt_typed_vec {
    void *items; /* mesatee_file_info[] etc. */
    size_t n, cap;
} mt_typed_vec;

/* Size of one item of kind k. */
size_t mt_typed_item_size(mt_typed_kind k);
/* List key of kind k ("files", "functions", "tasks"). */
const char *mt_typed_list_key(mt_typed_kind k);

/* Decodes one list page (len bytes of JSON) and appends its items to v.
 * *next_cursor gets the page's "next_cursor" (heap string) or NULL when the
 * page is the last (absent, null or ""). Returns MESATEE_OK, MESATEE_ESERVER
 * (malformed; err says where) or MESATEE_ENOMEM; on failure v keeps only the
 * items of earlier pages and *next_cursor is NULL. */
int mt_typed_decode_page(mt_typed_kind k, const char *json, size_t len, mt_typed_vec *v,
                         char **next_cursor, char err[MT_TYPED_ERR_MAX]);

/* Decodes one object (a GET /v1/<kind>/{id} answer) into a new array of one
 * item in *out. Same errors; *out is NULL on failure. */
int mt_typed_decode_one(mt_typed_kind k, const char *json, size_t len, void **out,
                        char err[MT_TYPED_ERR_MAX]);

/* Frees n items of kind k and the array. NULL is a no-op. */
void mt_typed_free(mt_typed_kind k, void *items, size_t n);

#endif
