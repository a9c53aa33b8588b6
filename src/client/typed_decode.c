/* typed_decode: server JSON -> mesatee_*_info structs. Contract: typed_decode.h. */
#include "typed_decode.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_util.h"

/* ======================================================================== */
/* Field readers                                                             */

/* One object being read: where it is (for messages) and the first error. */
typedef struct rd {
    json_t *o;
    char where[48]; /* "files[12]" or "file" */
    char *err;      /* MT_TYPED_ERR_MAX bytes */
    int st;         /* MESATEE_OK until the first failure */
} rd;

__attribute__((format(printf, 3, 4))) static void rd_fail(rd *r, int st, const char *fmt, ...)
{
    if (r->st != MESATEE_OK)
        return;
    r->st = st;
    char what[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (st == MESATEE_ENOMEM)
        snprintf(r->err, MT_TYPED_ERR_MAX, "out of memory");
    else
        snprintf(r->err, MT_TYPED_ERR_MAX, "%s.%s", r->where, what);
}

static char *dup_or_fail(rd *r, const char *s)
{
    char *d = strdup(s);
    if (!d)
        rd_fail(r, MESATEE_ENOMEM, "out of memory");
    return d;
}

/* A string field. Absent or null: NULL when nullable, else "" when dflt_empty,
 * else an error. */
static char *get_str(rd *r, const char *f, bool nullable, bool dflt_empty)
{
    if (r->st != MESATEE_OK)
        return NULL;
    json_t *v = json_object_get(r->o, f);
    if (!v || json_is_null(v)) {
        if (nullable)
            return NULL;
        if (dflt_empty)
            return dup_or_fail(r, "");
        rd_fail(r, MESATEE_ESERVER, "%s: missing", f);
        return NULL;
    }
    if (!json_is_string(v)) {
        rd_fail(r, MESATEE_ESERVER, "%s: expected a string", f);
        return NULL;
    }
    return dup_or_fail(r, json_string_value(v));
}

static char *req_str(rd *r, const char *f)
{
    return get_str(r, f, false, false);
}

static char *opt_str(rd *r, const char *f) /* NULL when absent or null */
{
    return get_str(r, f, true, false);
}

static char *str_or_empty(rd *r, const char *f)
{
    return get_str(r, f, false, true);
}

/* A required object id: 32 lower-case hex characters. */
static char *req_id(rd *r, const char *f)
{
    char *s = req_str(r, f);
    if (s && !mt_id_valid(s)) {
        rd_fail(r, MESATEE_ESERVER, "%s: expected 32 lower-case hex characters", f);
        free(s);
        return NULL;
    }
    return s;
}

/* A 64-hex digest, or NULL when absent or null. */
static char *opt_hex64(rd *r, const char *f)
{
    char *s = opt_str(r, f);
    if (!s)
        return NULL;
    bool ok = strlen(s) == 64;
    for (size_t i = 0; ok && i < 64; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok) {
        rd_fail(r, MESATEE_ESERVER, "%s: expected 64 lower-case hex characters", f);
        free(s);
        return NULL;
    }
    return s;
}

/* An integer field of object o (r->o or a nested one); absent or null gives
 * dflt unless required. */
static int64_t get_int_in(rd *r, json_t *o, const char *f, bool required, int64_t dflt)
{
    if (r->st != MESATEE_OK)
        return dflt;
    json_t *v = json_object_get(o, f);
    if (!v || json_is_null(v)) {
        if (required)
            rd_fail(r, MESATEE_ESERVER, "%s: missing", f);
        return dflt;
    }
    if (!json_is_integer(v)) {
        rd_fail(r, MESATEE_ESERVER, "%s: expected an integer", f);
        return dflt;
    }
    return (int64_t)json_integer_value(v);
}

/* A boolean field; absent gives 0 unless required. */
static int get_bool(rd *r, const char *f, bool required)
{
    if (r->st != MESATEE_OK)
        return 0;
    json_t *v = json_object_get(r->o, f);
    if (!v) {
        if (required)
            rd_fail(r, MESATEE_ESERVER, "%s: missing", f);
        return 0;
    }
    if (!json_is_boolean(v)) {
        rd_fail(r, MESATEE_ESERVER, "%s: expected true or false", f);
        return 0;
    }
    return json_is_true(v) ? 1 : 0;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* An array of strings (member == NULL) or of objects whose string field
 * member is taken (slot lists: [{"name": ...}]). Absent gives an empty
 * array unless required. The result always has n + 1 slots, the last NULL,
 * so an empty list is a valid pointer. */
static char **get_strv(rd *r, const char *f, const char *member, bool required, size_t *n)
{
    *n = 0;
    if (r->st != MESATEE_OK)
        return NULL;
    json_t *a = json_object_get(r->o, f);
    if (!a && required) {
        rd_fail(r, MESATEE_ESERVER, "%s: missing", f);
        return NULL;
    }
    if (a && !json_is_array(a)) {
        rd_fail(r, MESATEE_ESERVER, "%s: expected an array", f);
        return NULL;
    }
    size_t len = a ? json_array_size(a) : 0;
    char **v = calloc(len + 1, sizeof *v);
    if (!v) {
        rd_fail(r, MESATEE_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(a, i);
        if (member)
            e = json_is_object(e) ? json_object_get(e, member) : NULL;
        if (!json_is_string(e)) {
            if (member)
                rd_fail(r, MESATEE_ESERVER, "%s[%zu]: expected an object with a string '%s'",
                        f, i, member);
            else
                rd_fail(r, MESATEE_ESERVER, "%s: expected an array of strings", f);
            free_strv(v, i);
            return NULL;
        }
        if (!(v[i] = dup_or_fail(r, json_string_value(e)))) {
            free_strv(v, i);
            return NULL;
        }
    }
    *n = len;
    return v;
}

static char *dump_obj(rd *r)
{
    if (r->st != MESATEE_OK)
        return NULL;
    char *s = json_dumps(r->o, JSON_COMPACT);
    if (!s)
        rd_fail(r, MESATEE_ENOMEM, "out of memory");
    return s;
}

/* ======================================================================== */
/* Items                                                                     */

static void file_clear(mesatee_file_info *f)
{
    free(f->id);
    free(f->kind);
    free(f->name);
    free(f->url);
    free_strv(f->owners, f->n_owners);
    free(f->sha256);
    free(f->created_at);
    free(f->json);
    memset(f, 0, sizeof *f);
}

static void file_read(rd *r, mesatee_file_info *f)
{
    f->id = req_id(r, "file_id");
    f->kind = req_str(r, "kind");
    if (f->kind && strcmp(f->kind, "input") && strcmp(f->kind, "output") &&
        strcmp(f->kind, "fusion"))
        rd_fail(r, MESATEE_ESERVER, "kind: expected input, output or fusion");
    f->name = str_or_empty(r, "name");
    f->url = str_or_empty(r, "url");
    f->owners = get_strv(r, "owners", NULL, true, &f->n_owners);
    f->size = get_int_in(r, r->o, "size", false, -1);
    if (f->size < -1)
        rd_fail(r, MESATEE_ESERVER, "size: expected a size >= 0");
    f->sha256 = opt_hex64(r, "sha256");
    f->written = get_bool(r, "written", true);
    f->created_at = str_or_empty(r, "created_at");
    f->json = dump_obj(r);
}

static void function_clear(mesatee_function_info *f)
{
    free(f->id);
    free(f->owner);
    free(f->name);
    free(f->description);
    free(f->executor_type);
    free(f->builtin);
    free_strv(f->inputs, f->n_inputs);
    free_strv(f->outputs, f->n_outputs);
    free(f->created_at);
    free(f->updated_at);
    free(f->json);
    memset(f, 0, sizeof *f);
}

static void function_read(rd *r, mesatee_function_info *f)
{
    f->id = req_id(r, "function_id");
    f->owner = req_str(r, "owner");
    f->name = req_str(r, "name");
    f->description = str_or_empty(r, "description");
    f->executor_type = req_str(r, "executor_type");
    f->builtin = str_or_empty(r, "builtin");
    f->is_public = get_bool(r, "public", true);
    f->disabled = get_bool(r, "disabled", false);
    f->inputs = get_strv(r, "inputs", "name", false, &f->n_inputs);
    f->outputs = get_strv(r, "outputs", "name", false, &f->n_outputs);
    f->usage_quota = get_int_in(r, r->o, "usage_quota", false, 0);
    f->current_usage = get_int_in(r, r->o, "current_usage", false, 0);
    f->created_at = str_or_empty(r, "created_at");
    f->updated_at = str_or_empty(r, "updated_at");
    f->json = dump_obj(r);
}

static void task_clear(mesatee_task_info *t)
{
    free(t->id);
    free(t->function_id);
    free(t->function_name);
    free(t->creator);
    free(t->status);
    free_strv(t->participants, t->n_participants);
    free_strv(t->approvals, t->n_approvals);
    free(t->failure_reason);
    free(t->created_at);
    free(t->updated_at);
    free(t->json);
    memset(t, 0, sizeof *t);
}

static void task_read(rd *r, mesatee_task_info *t)
{
    t->id = req_id(r, "task_id");
    t->function_id = req_id(r, "function_id");
    t->function_name = str_or_empty(r, "function_name");
    t->creator = req_str(r, "creator");
    t->status = req_str(r, "status");
    t->participants = get_strv(r, "participants", NULL, true, &t->n_participants);
    t->approvals = get_strv(r, "approvals", NULL, false, &t->n_approvals);
    t->failure_reason = opt_str(r, "failure_reason");
    t->cancel_requested = get_bool(r, "cancel_requested", false);
    json_t *m = json_object_get(r->o, "metering");
    if (m && !json_is_object(m) && !json_is_null(m))
        rd_fail(r, MESATEE_ESERVER, "metering: expected an object");
    else if (json_is_object(m)) {
        t->cpu_ms = get_int_in(r, m, "cpu_ms", false, 0);
        t->peak_rss_kb = get_int_in(r, m, "peak_rss_kb", false, 0);
        t->wall_ms = get_int_in(r, m, "wall_ms", false, 0);
        t->bytes_in = get_int_in(r, m, "bytes_in", false, 0);
        t->bytes_out = get_int_in(r, m, "bytes_out", false, 0);
        t->fuel_used = get_int_in(r, m, "fuel_used", false, 0);
    }
    t->created_at = str_or_empty(r, "created_at");
    t->updated_at = str_or_empty(r, "updated_at");
    t->json = dump_obj(r);
}

size_t mt_typed_item_size(mt_typed_kind k)
{
    switch (k) {
    case MT_TYPED_FILE: return sizeof(mesatee_file_info);
    case MT_TYPED_FUNCTION: return sizeof(mesatee_function_info);
    case MT_TYPED_TASK: return sizeof(mesatee_task_info);
    }
    return 0;
}

const char *mt_typed_list_key(mt_typed_kind k)
{
    switch (k) {
    case MT_TYPED_FILE: return "files";
    case MT_TYPED_FUNCTION: return "functions";
    case MT_TYPED_TASK: return "tasks";
    }
    return "";
}

/* Singular name for messages about a single object. */
static const char *one_name(mt_typed_kind k)
{
    switch (k) {
    case MT_TYPED_FILE: return "file";
    case MT_TYPED_FUNCTION: return "function";
    case MT_TYPED_TASK: return "task";
    }
    return "";
}

static void item_clear(mt_typed_kind k, void *item)
{
    switch (k) {
    case MT_TYPED_FILE: file_clear(item); break;
    case MT_TYPED_FUNCTION: function_clear(item); break;
    case MT_TYPED_TASK: task_clear(item); break;
    }
}

/* Reads object o into the zeroed item; on failure the item is cleared. */
static int item_read(mt_typed_kind k, json_t *o, const char *where, void *item, char *err)
{
    rd r = {.o = o, .err = err, .st = MESATEE_OK};
    snprintf(r.where, sizeof r.where, "%s", where);
    if (!json_is_object(o)) {
        snprintf(err, MT_TYPED_ERR_MAX, "%s: expected an object", where);
        return MESATEE_ESERVER;
    }
    switch (k) {
    case MT_TYPED_FILE: file_read(&r, item); break;
    case MT_TYPED_FUNCTION: function_read(&r, item); break;
    case MT_TYPED_TASK: task_read(&r, item); break;
    }
    if (r.st != MESATEE_OK)
        item_clear(k, item);
    return r.st;
}

void mt_typed_free(mt_typed_kind k, void *items, size_t n)
{
    if (!items)
        return;
    size_t sz = mt_typed_item_size(k);
    for (size_t i = 0; i < n; i++)
        item_clear(k, (char *)items + i * sz);
    free(items);
}

/* ======================================================================== */
/* Documents                                                                 */

static json_t *load(const char *json, size_t len, const char *what, char *err)
{
    json_error_t je;
    json_t *root = json ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!root) {
        snprintf(err, MT_TYPED_ERR_MAX, "%s: the answer is not valid JSON", what);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, MT_TYPED_ERR_MAX, "%s: the answer is not a JSON object", what);
        json_decref(root);
        return NULL;
    }
    return root;
}

int mt_typed_decode_page(mt_typed_kind k, const char *json, size_t len, mt_typed_vec *v,
                         char **next_cursor, char err[MT_TYPED_ERR_MAX])
{
    *next_cursor = NULL;
    err[0] = '\0';
    const char *key = mt_typed_list_key(k);
    json_t *root = load(json, len, key, err);
    if (!root)
        return MESATEE_ESERVER;
    int st = MESATEE_OK;
    size_t sz = mt_typed_item_size(k), n0 = v->n;
    char *cur = NULL;
    json_t *arr = json_object_get(root, key);
    json_t *nc = json_object_get(root, "next_cursor");
    if (!json_is_array(arr)) {
        snprintf(err, MT_TYPED_ERR_MAX, "%s: expected an array", key);
        st = MESATEE_ESERVER;
        goto out;
    }
    if (nc && !json_is_null(nc) && !json_is_string(nc)) {
        snprintf(err, MT_TYPED_ERR_MAX, "next_cursor: expected a string or null");
        st = MESATEE_ESERVER;
        goto out;
    }
    if (json_is_string(nc) && json_string_length(nc) > 0 && !(cur = strdup(json_string_value(nc)))) {
        st = MESATEE_ENOMEM;
        goto out;
    }
    size_t add = json_array_size(arr);
    if (v->n + add > v->cap) {
        size_t cap = v->cap ? v->cap : 16;
        while (cap < v->n + add) {
            if (cap > SIZE_MAX / 2 / sz) {
                st = MESATEE_ENOMEM;
                goto out;
            }
            cap *= 2;
        }
        void *p = realloc(v->items, cap * sz);
        if (!p) {
            st = MESATEE_ENOMEM;
            goto out;
        }
        v->items = p;
        v->cap = cap;
    }
    for (size_t i = 0; i < add; i++) {
        char where[48];
        snprintf(where, sizeof where, "%s[%zu]", key, v->n);
        void *item = (char *)v->items + v->n * sz;
        memset(item, 0, sz);
        if ((st = item_read(k, json_array_get(arr, i), where, item, err)) != MESATEE_OK)
            goto out;
        v->n++;
    }
out:
    if (st != MESATEE_OK) {
        if (st == MESATEE_ENOMEM)
            snprintf(err, MT_TYPED_ERR_MAX, "out of memory");
        for (size_t i = n0; i < v->n; i++)
            item_clear(k, (char *)v->items + i * sz);
        v->n = n0;
        free(cur);
        cur = NULL;
    }
    *next_cursor = cur;
    json_decref(root);
    return st;
}

int mt_typed_decode_one(mt_typed_kind k, const char *json, size_t len, void **out,
                        char err[MT_TYPED_ERR_MAX])
{
    *out = NULL;
    err[0] = '\0';
    json_t *root = load(json, len, one_name(k), err);
    if (!root)
        return MESATEE_ESERVER;
    void *item = calloc(1, mt_typed_item_size(k));
    int st = item ? item_read(k, root, one_name(k), item, err) : MESATEE_ENOMEM;
    if (st == MESATEE_ENOMEM)
        snprintf(err, MT_TYPED_ERR_MAX, "out of memory");
    if (st != MESATEE_OK)
        free(item);
    else
        *out = item;
    json_decref(root);
    return st;
}
