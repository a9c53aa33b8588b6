/* api: the route table of the REST API (docs/design.md) and the dispatcher.
 * Each route names its method and pattern ({id}: a 32-hex object id,
 * {name}: a username), whether it needs a token and the admin role, what
 * body it takes, and its handler. The dispatcher checks all of that, then
 * runs the handler inside one SQLite transaction (BEGIN IMMEDIATE for state
 * changes) which it commits only when the handler succeeds: bad input
 * changes nothing. A state change's audit entry is appended inside that
 * same transaction (resp->audited), so no change commits unaudited.
 * Errors become {"error":{"code","message"}} responses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_decode.h"
#include "core_internal.h"
#include "mt_log.h"
#include "mt_trace.h"

typedef enum { BODY_NONE, BODY_JSON, BODY_RAW } body_kind;
typedef enum { TX_NONE, TX_READ, TX_WRITE } tx_kind;

typedef struct route {
    const char *method;
    const char *pattern;
    bool auth;
    bool admin;
    body_kind body;
    tx_kind tx;
    core_handler fn;
} route;

static const route routes[] = {
    {"GET", "/healthz", false, false, BODY_NONE, TX_NONE, health_handle},
    {"GET", "/readyz", false, false, BODY_NONE, TX_NONE, ready_handle},
    {"GET", "/metrics", false, false, BODY_NONE, TX_NONE, metrics_handle},
    /* Slow routes (mt_core_route_is_slow) run on the gateway's worker threads
     * and take the store lock themselves around their reads and writes. */
    {"POST", "/v1/auth/login", false, false, BODY_JSON, TX_NONE, auth_login},
    {"POST", "/v1/auth/logout", true, false, BODY_NONE, TX_WRITE, auth_logout},
    {"POST", "/v1/users", true, true, BODY_JSON, TX_NONE, auth_user_create},
    {"GET", "/v1/users", true, true, BODY_NONE, TX_READ, auth_user_list},
    {"GET", "/v1/users/me", true, false, BODY_NONE, TX_READ, auth_user_me},
    {"POST", "/v1/users/{name}/revoke-tokens", true, true, BODY_NONE, TX_WRITE, auth_user_revoke},
    /* user lifecycle (users.c; passwords in auth.c, slow routes); "me" is
     * not a valid new username, and {name} never matches it (shadowed) */
    {"POST", "/v1/users/me/password", true, false, BODY_JSON, TX_NONE, auth_password_self},
    {"POST", "/v1/users/{name}/password", true, true, BODY_JSON, TX_NONE, auth_password_reset},
    {"GET", "/v1/users/{name}", true, false, BODY_NONE, TX_READ, users_get},
    {"POST", "/v1/users/{name}/disable", true, true, BODY_NONE, TX_WRITE, users_disable},
    {"POST", "/v1/users/{name}/enable", true, true, BODY_NONE, TX_WRITE, users_enable},
    {"DELETE", "/v1/users/{name}", true, true, BODY_NONE, TX_WRITE, users_delete},
    {"POST", "/v1/objects", true, false, BODY_RAW, TX_NONE, files_upload}, /* slow */
    {"POST", "/v1/files/inputs", true, false, BODY_JSON, TX_WRITE, files_input_new},
    {"POST", "/v1/files/outputs", true, false, BODY_JSON, TX_WRITE, files_output_new},
    {"POST", "/v1/files/fusion", true, false, BODY_JSON, TX_WRITE, files_fusion_new},
    {"POST", "/v1/files/{id}/as-input", true, false, BODY_NONE, TX_WRITE, files_as_input},
    {"GET", "/v1/files", true, false, BODY_NONE, TX_READ, files_list},
    {"GET", "/v1/files/{id}", true, false, BODY_NONE, TX_READ, files_get},
    {"GET", "/v1/files/{id}/content", true, false, BODY_NONE, TX_NONE, files_content}, /* slow */
    {"DELETE", "/v1/files/{id}", true, false, BODY_NONE, TX_WRITE, files_delete},
    {"POST", "/v1/functions", true, false, BODY_JSON, TX_NONE, functions_create}, /* slow */
    {"GET", "/v1/functions", true, false, BODY_NONE, TX_READ, functions_list},
    {"GET", "/v1/functions/{id}", true, false, BODY_NONE, TX_READ, functions_get},
    {"PUT", "/v1/functions/{id}", true, false, BODY_JSON, TX_WRITE, functions_update},
    {"POST", "/v1/functions/{id}/disable", true, false, BODY_NONE, TX_WRITE, functions_disable},
    {"DELETE", "/v1/functions/{id}", true, false, BODY_NONE, TX_WRITE, functions_delete},
    {"GET", "/v1/functions/{id}/stats", true, false, BODY_NONE, TX_READ, functions_stats},
    {"GET", "/v1/builtins", true, false, BODY_NONE, TX_NONE, functions_builtins},
    {"POST", "/v1/tasks", true, false, BODY_JSON, TX_WRITE, tasks_create},
    {"POST", "/v1/tasks/{id}/assign", true, false, BODY_JSON, TX_WRITE, tasks_assign},
    {"POST", "/v1/tasks/{id}/approve", true, false, BODY_NONE, TX_WRITE, tasks_approve},
    {"POST", "/v1/tasks/{id}/invoke", true, false, BODY_NONE, TX_WRITE, tasks_invoke},
    {"POST", "/v1/tasks/{id}/cancel", true, false, BODY_NONE, TX_WRITE, tasks_cancel},
    {"GET", "/v1/tasks/{id}", true, false, BODY_NONE, TX_READ, tasks_get},
    {"GET", "/v1/tasks", true, false, BODY_NONE, TX_READ, tasks_list},
    {"GET", "/v1/audit", true, false, BODY_NONE, TX_READ, audit_list},
    {"GET", "/v1/audit/checkpoint", true, false, BODY_NONE, TX_READ, audit_checkpoint_handle},
    {"POST", "/v1/audit/prune", true, true, BODY_JSON, TX_WRITE, audit_prune_handle},
    /* issue 10: the platform KeyStore (kek.c) */
    {"GET", "/v1/admin/keystore", true, true, BODY_NONE, TX_READ, kek_status_handle},
    {"POST", "/v1/admin/keystore/rotate", true, true, BODY_NONE, TX_WRITE, kek_rotate_handle},
    {"POST", "/v1/admin/keystore/legacy", true, true, BODY_JSON, TX_WRITE, kek_legacy_handle},
    {"POST", "/v1/admin/keystore/escrow", true, true, BODY_JSON, TX_WRITE, kek_escrow_handle},
    {"GET", "/v1/admin/release-policy", true, true, BODY_NONE, TX_READ, release_policy_get},
    {"POST", "/v1/admin/release-policy/allow", true, true, BODY_JSON, TX_WRITE,
     release_policy_allow},
    {"POST", "/v1/admin/release-policy/revoke", true, true, BODY_JSON, TX_WRITE,
     release_policy_revoke},
    {"POST", "/v1/admin/release-policy/signers", true, true, BODY_JSON, TX_WRITE,
     release_policy_signers},
    /* KeyStore transit API (transit.c, docs/keystore.md); {key} is "name" or "owner:name" */
    {"GET", "/v1/transit/keys", true, false, BODY_NONE, TX_READ, transit_key_list},
    {"POST", "/v1/transit/keys/{key}", true, false, BODY_JSON, TX_NONE, transit_key_create}, /* slow */
    {"GET", "/v1/transit/keys/{key}", true, false, BODY_NONE, TX_READ, transit_key_read},
    {"DELETE", "/v1/transit/keys/{key}", true, false, BODY_NONE, TX_WRITE, transit_key_delete},
    {"POST", "/v1/transit/keys/{key}/config", true, false, BODY_JSON, TX_WRITE, transit_key_config},
    {"POST", "/v1/transit/keys/{key}/rotate", true, false, BODY_JSON, TX_NONE,
     transit_key_rotate}, /* slow */
    {"POST", "/v1/transit/keys/{key}/import", true, false, BODY_JSON, TX_WRITE, transit_key_import},
    {"POST", "/v1/transit/keys/{key}/import_version", true, false, BODY_JSON, TX_WRITE,
     transit_key_import_version},
    {"POST", "/v1/transit/keys/{key}/grants", true, false, BODY_JSON, TX_WRITE, transit_grant_add},
    {"DELETE", "/v1/transit/keys/{key}/grants/{name}", true, false, BODY_NONE, TX_WRITE,
     transit_grant_revoke},
    {"GET", "/v1/transit/wrapping_key", true, false, BODY_NONE, TX_WRITE, transit_wrapping_key},
    {"POST", "/v1/transit/encrypt/{key}", true, false, BODY_JSON, TX_WRITE, transit_encrypt},
    {"POST", "/v1/transit/decrypt/{key}", true, false, BODY_JSON, TX_WRITE, transit_decrypt},
    {"POST", "/v1/transit/rewrap/{key}", true, false, BODY_JSON, TX_WRITE, transit_rewrap},
    {"POST", "/v1/transit/datakey/{kind}/{key}", true, false, BODY_JSON, TX_WRITE, transit_datakey},
    {"POST", "/v1/transit/sign/{key}", true, false, BODY_JSON, TX_WRITE, transit_sign},
    {"POST", "/v1/transit/sign/{key}/{alg}", true, false, BODY_JSON, TX_WRITE, transit_sign},
    {"POST", "/v1/transit/verify/{key}", true, false, BODY_JSON, TX_WRITE, transit_verify},
    {"POST", "/v1/transit/verify/{key}/{alg}", true, false, BODY_JSON, TX_WRITE, transit_verify},
    {"POST", "/v1/transit/hmac/{key}", true, false, BODY_JSON, TX_WRITE, transit_hmac},
    {"POST", "/v1/transit/hmac/{key}/{alg}", true, false, BODY_JSON, TX_WRITE, transit_hmac},
    {"POST", "/v1/transit/random", true, false, BODY_JSON, TX_WRITE, transit_random},
    {"POST", "/v1/transit/random/{bytes}", true, false, BODY_JSON, TX_WRITE, transit_random},
    {"POST", "/v1/transit/hash", true, false, BODY_JSON, TX_WRITE, transit_hash},
    {"POST", "/v1/transit/hash/{alg}", true, false, BODY_JSON, TX_WRITE, transit_hash},
    /* Vault transit: export, trim, backup, restore (transit_ext.c) */
    {"POST", "/v1/transit/keys/{key}/trim", true, false, BODY_JSON, TX_WRITE, transit_key_trim},
    {"GET", "/v1/transit/export/{kind}/{key}", true, false, BODY_NONE, TX_WRITE, transit_export},
    {"GET", "/v1/transit/export/{kind}/{key}/{version}", true, false, BODY_NONE, TX_WRITE,
     transit_export},
    {"GET", "/v1/transit/backup/{key}", true, false, BODY_NONE, TX_WRITE, transit_backup},
    {"POST", "/v1/transit/restore", true, false, BODY_JSON, TX_WRITE, transit_restore},
    {"POST", "/v1/transit/restore/{key}", true, false, BODY_JSON, TX_WRITE, transit_restore},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Matches path against pattern; the {id}/{name} segment is copied into seg
 * (cap bytes). Segments longer than cap never match. */
static bool match(const char *pattern, const char *path, char *seg, size_t cap)
{
    const char *p = pattern, *q = path;
    seg[0] = '\0';
    while (*p && *q) {
        if (*p == '{') {
            const char *pend = strchr(p, '}');
            size_t n = strcspn(q, "/");
            if (!pend || n == 0 || n >= cap)
                return false;
            memcpy(seg, q, n);
            seg[n] = '\0';
            p = pend + 1;
            q += n;
            continue;
        }
        if (*p != *q)
            return false;
        p++;
        q++;
    }
    return *p == '\0' && *q == '\0';
}

/* True when r's {id}/{name} segment, seg, is a literal segment of another
 * route at the same place ("me" in /v1/users/me, "inputs" in
 * /v1/files/inputs): that path is the literal route's, never r's, so
 * /v1/users/me is not /v1/users/{name} (each method once in Allow, and
 * DELETE /v1/users/me is a 405, not a user named "me"). */
static bool shadowed(const route *r, const char *seg)
{
    const char *brace = strchr(r->pattern, '{');
    if (!brace)
        return false;
    size_t pre = (size_t)(brace - r->pattern), n = strlen(seg);
    for (size_t j = 0; j < N_ROUTES; j++) {
        const char *p = routes[j].pattern;
        if (strncmp(p, r->pattern, pre) != 0 || p[pre] == '{')
            continue;
        size_t lit = strcspn(p + pre, "/");
        if (lit == n && !strncmp(p + pre, seg, n))
            return true;
    }
    return false;
}

/* Finds the route; *path_known tells whether another method matches. */
static const route *find_route(const char *method, const char *path, char *seg, size_t cap,
                               bool *path_known)
{
    *path_known = false;
    if (!method || !path)
        return NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match(routes[i].pattern, path, seg, cap) || shadowed(&routes[i], seg))
            continue;
        if (!strcmp(routes[i].method, method))
            return &routes[i];
        *path_known = true;
    }
    return NULL;
}

bool mt_core_route_allow(const char *path, char *out, size_t cap)
{
    char seg[160];
    size_t n = 0;
    if (cap)
        out[0] = '\0';
    if (!path)
        return false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match(routes[i].pattern, path, seg, sizeof seg) || shadowed(&routes[i], seg))
            continue;
        /* a segment that is no id (or no username) names another route's
         * literal path: /v1/files/inputs is not /v1/files/{id} */
        if ((strstr(routes[i].pattern, "{id}") && !mt_id_valid(seg)) ||
            (strstr(routes[i].pattern, "{name}") && !dec_username_valid(seg)))
            continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", routes[i].method);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    return n > 0;
}

bool mt_core_route_needs_auth(const char *method, const char *path)
{
    char seg[160];
    bool known;
    const route *r = find_route(method, path, seg, sizeof seg, &known);
    return r ? r->auth : true;
}

size_t mt_core_route_max_body(const mt_core *core, const char *method, const char *path)
{
    char seg[160];
    bool known;
    const route *r = find_route(method, path, seg, sizeof seg, &known);
    if (r && r->body == BODY_RAW)
        return core->max_upload_bytes;
    if (r && r->body == BODY_NONE)
        return 1024;
    /* a "wasm" function carries its module (base64) in the registration */
    size_t wasm_body = (DEC_MAX_WASM + 2) / 3 * 4 + 256 * 1024;
    if (r && !strcmp(method, "POST") && !strcmp(r->pattern, "/v1/functions") &&
        core->max_json_bytes < wasm_body)
        return wasm_body;
    return core->max_json_bytes;
}

/* Slow routes: their handlers take the store lock themselves, only around
 * their reads and writes, and do their slow part (password hashing, the
 * sandboxed wasm check, hashing a stored object, an upload's fsync) outside
 * it; those that change state write their own audit entry in the change's
 * transaction (resp->audited). */
static bool route_slow(const route *r)
{
    return r->fn == auth_login || r->fn == auth_user_create || r->fn == functions_create ||
           r->fn == files_content || r->fn == files_upload || r->fn == auth_password_self ||
           r->fn == auth_password_reset || r->fn == transit_key_create ||
           r->fn == transit_key_rotate;
}

/* Routes whose only write is their audit entry: with req->audit_later they
 * run in a read transaction and the caller group-commits the entry. */
static bool route_audit_only(const route *r)
{
    return r->fn == transit_encrypt || r->fn == transit_decrypt || r->fn == transit_rewrap ||
           r->fn == transit_datakey || r->fn == transit_sign || r->fn == transit_verify ||
           r->fn == transit_hmac || r->fn == transit_random || r->fn == transit_hash;
}

bool mt_core_route_audit_only(const char *method, const char *path)
{
    char seg[160];
    bool known;
    const route *r = find_route(method, path, seg, sizeof seg, &known);
    return r && route_audit_only(r);
}

bool mt_core_route_is_slow(const char *method, const char *path)
{
    char seg[160];
    bool known;
    const route *r = find_route(method, path, seg, sizeof seg, &known);
    return r && route_slow(r); /* see mt_core_handle */
}

bool mt_core_route_streams_body(const char *method, const char *path)
{
    char seg[160];
    bool known;
    const route *r = find_route(method, path, seg, sizeof seg, &known);
    return r && r->body == BODY_RAW;
}

void mt_response_clear(mt_response *resp)
{
    if (!resp)
        return;
    json_decref(resp->json);
    free(resp->raw);
    if (resp->has_raw_fd && resp->raw_fd >= 0)
        close(resp->raw_fd);
    memset(resp, 0, sizeof *resp);
}

void core_error_response(mt_response *resp, mt_status code, const char *msg)
{
    json_decref(resp->json);
    resp->json = NULL;
    free(resp->raw);
    resp->raw = NULL;
    resp->raw_len = 0;
    if (resp->has_raw_fd && resp->raw_fd >= 0)
        close(resp->raw_fd);
    resp->has_raw_fd = false;
    resp->raw_fd = -1;
    if (code == MT_OK)
        code = MT_EINTERNAL;
    resp->status = mt_status_http(code);
    resp->json = json_pack("{s:{s:s, s:s}}", "error", "code", mt_status_name(code), "message",
                           msg && *msg ? msg : mt_status_name(code));
}

void core_json_response(core_ctx *x, int status, json_t *body)
{
    json_decref(x->resp->json);
    x->resp->json = body;
    x->resp->status = status;
}

mt_status core_list_response(core_ctx *x, mt_db_stmt *st, const char *key, core_render_fn render,
                             page_list list, const dec_page *pg)
{
    mt_status rc = MT_OK;
    json_t *arr = json_array();
    int64_t n = 0, last_time = 0;
    char last_id[72] = "";
    bool more = false;
    while (arr && !rc && mt_db_step(st, &rc, x->err) == MT_DB_ROW) {
        if (n == pg->limit) {
            more = true; /* a row beyond the page: there is a next page */
            break;
        }
        const char *id = mt_db_col_text(st, 0);
        snprintf(last_id, sizeof last_id, "%s", id);
        last_time = mt_db_col_int64(st, 1);
        json_t *o = render(x, id);
        if (!o) {
            rc = x->err->code ? x->err->code : MT_ENOMEM;
            break;
        }
        json_array_append_new(arr, o);
        n++;
    }
    if (!arr)
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
    mt_db_finalize(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    char cur[DEC_CURSOR_MAX + 1] = "";
    if (more)
        page_cursor_make(list, last_time, 0, last_id, cur, sizeof cur);
    core_json_response(x, 200,
                       json_pack("{s:o, s:o}", key, arr, "next_cursor",
                                 more && cur[0] ? json_string(cur) : json_null()));
    return MT_OK;
}

void core_page_bind(mt_db_stmt *st, int first, const dec_page *pg)
{
    mt_db_bind_int64(st, first, pg->has_pos ? 1 : 0);
    mt_db_bind_int64(st, first + 1, pg->time);
    mt_db_bind_text(st, first + 2, pg->key);
    mt_db_bind_int64(st, first + 3, pg->limit + 1);
}

void core_set_object(core_ctx *x, const char *kind, const char *id)
{
    snprintf(x->resp->object, sizeof x->resp->object, "%s:%s", kind, id);
}

mt_status core_request_gate(core_ctx *x)
{
    mt_status rc = core_aspool_before_change(x->core, x->err);
    if (rc)
        x->resp->retry_after_s = CORE_ASPOOL_RETRY_S;
    return rc;
}

mt_status core_request_begin_gated(core_ctx *x)
{
    return store_begin(x->db, x->err);
}

mt_status core_audit_commit(core_ctx *x, int status, mt_status rc)
{
    if (rc == MT_OK)
        rc = audit_append(x->core, x->db, x->who[0] ? x->who : "-", x->resp->route,
                          x->resp->object, status, x->err);
    if (rc == MT_OK)
        rc = store_commit(x->db, x->err);
    if (rc)
        store_rollback(x->db);
    else
        x->resp->audited = true;
    return rc;
}

static void core_handle(mt_core *core, const mt_request *req, mt_response *resp);

/* Routes and handles one request; a failed /v1/transit/ request also carries
 * Vault's {"errors": [message]} (docs/keystore.md). */
void mt_core_handle(mt_core *core, const mt_request *req, mt_response *resp)
{
    core_handle(core, req, resp);
    if (resp->status >= 400 && req->path && !strncmp(req->path, "/v1/transit/", 12) &&
        json_is_object(resp->json) && !json_object_get(resp->json, "errors")) {
        const char *m = json_string_value(
            json_object_get(json_object_get(resp->json, "error"), "message"));
        json_object_set_new(resp->json, "errors", json_pack("[s]", m ? m : "error"));
    }
}

static void core_handle(mt_core *core, const mt_request *req, mt_response *resp)
{
    memset(resp, 0, sizeof *resp);
    snprintf(resp->object, sizeof resp->object, "-");
    mt_err err;
    mt_err_clear(&err);
    char seg[160];
    bool known;
    const route *r = find_route(req->method, req->path, seg, sizeof seg, &known);
    if (!r) {
        snprintf(resp->route, sizeof resp->route, "unknown");
        char msg[160];
        if (known)
            snprintf(msg, sizeof msg, "method %.16s is not supported on %.100s",
                     req->method ? req->method : "?", req->path);
        else
            snprintf(msg, sizeof msg, "no such route: %.16s %.100s; see docs/api/openapi.yaml",
                     req->method ? req->method : "?", req->path ? req->path : "?");
        core_error_response(resp, MT_ENOTFOUND, msg);
        return;
    }
    snprintf(resp->route, sizeof resp->route, "%s %s", r->method, r->pattern);

    if (r->auth && (!req->who || !req->who->username[0])) {
        core_error_response(resp, MT_EAUTH,
                            "this route needs a token: send 'Authorization: Bearer <token>' "
                            "from POST /v1/auth/login");
        return;
    }
    if (r->admin && !req->who->is_admin) {
        core_error_response(resp, MT_EPERM, "this route is for administrators only");
        return;
    }
    /* Path segment: an id must look like one; otherwise nothing can match. */
    if (strstr(r->pattern, "{id}") && !mt_id_valid(seg)) {
        core_error_response(resp, MT_ENOTFOUND, "no such object: ids are 32 lower-case hex");
        return;
    }
    if (strstr(r->pattern, "{name}") && !dec_username_valid(seg)) {
        core_error_response(resp, MT_ENOTFOUND, "no such user");
        return;
    }
    size_t max = mt_core_route_max_body(core, req->method, req->path);
    if (req->body_len > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body of %zu bytes exceeds the limit of %zu",
                 req->body_len, max);
        core_error_response(resp, MT_ETOOBIG, msg);
        return;
    }
    if (req->upload && r->body != BODY_RAW) {
        core_error_response(resp, MT_EINTERNAL, "streamed body on a route that takes none");
        return;
    }
    if (r->body == BODY_NONE) {
        dec_limits lim = {max, core->max_json_depth};
        mt_status rc = dec_empty_body(req->body, req->body_len, &lim, &err);
        if (rc) {
            core_error_response(resp, rc, err.msg);
            return;
        }
    }

    core_ctx x;
    memset(&x, 0, sizeof x);
    x.core = core;
    x.db = core->db;
    x.req = req;
    x.who = req->who ? req->who->username : "";
    x.admin = req->who && req->who->is_admin;
    snprintf(x.id, sizeof x.id, "%.79s", seg);
    x.resp = resp;
    x.err = &err;

    mt_status rc = MT_OK;
    /* MESATEE_TRACE_TASKS=1: the invoke's stages (mt_trace.h) */
    const char *trace = r->fn == tasks_invoke && mt_trace_on() ? x.id : NULL;
    mt_trace_mark(trace, "api_enter");
    tx_kind tx = r->tx;
    bool notified = false; /* the wake-ups went with the commit (below) */
    /* Slow routes take the lock themselves, never during their slow part. */
    if (route_slow(r)) {
        rc = r->fn(&x);
        goto handled;
    }
    /* A route whose only write is its audit entry reads only, when the
     * caller group-commits that entry before replying (audit_later). */
    if (tx == TX_WRITE && req->audit_later && route_audit_only(r))
        tx = TX_READ;
    /* a change's entry goes behind the audit entries still in the spool
     * (audit_spool.c "Changes"): they are appended first, before the lock */
    if (tx == TX_WRITE && (rc = core_aspool_before_change(core, &err))) {
        resp->retry_after_s = CORE_ASPOOL_RETRY_S;
        goto handled;
    }
    pthread_mutex_lock(&core->mu);
    mt_trace_mark(trace, "api_locked");
    if (tx == TX_WRITE)
        rc = store_begin(core->db, &err);
    else if (tx == TX_READ)
        rc = store_exec(core->db, "BEGIN", &err);
    if (!rc)
        rc = r->fn(&x);
    /* A committed change carries its audit entry in its own transaction:
     * a crash can never leave a change without its entry. */
    if (!rc && tx == TX_WRITE) {
        rc = audit_append(core, core->db, x.who[0] ? x.who : "-", resp->route, resp->object,
                          resp->status ? resp->status : 200, &err);
        if (!rc)
            resp->audited = true;
    }
    /* issue 13: an idle scheduler thread's claim rides on the invoke's
     * commit (one commit less per task; the claim is as durable as before) */
    int64_t attempt = 0;
    bool claimed = !rc && tx == TX_WRITE && x.wake_scheduler &&
                   sched_invoke_claim(core, core->db, x.id, &attempt, &rc, &err);
    mt_trace_mark(trace, "api_handled");
    /* the other nodes' wake-ups go with this commit (cluster_wake.c), not
     * as round trips of their own after it */
    bool task_write = tx == TX_WRITE && !strncmp(req->path, "/v1/tasks/", 10);
    notified = !rc && task_write &&
               cwake_notify_tx(core, core->db,
                               CWAKE_TASK | (x.wake_scheduler && !claimed ? CWAKE_STAGED : 0u));
    if (tx != TX_NONE) {
        /* defer_sync: the caller syncs before its reply (not when an object
         * is deleted after the commit: that waits for the change on disk) */
        bool defer = tx == TX_WRITE && req->defer_sync && !x.drop_object[0];
        if (!rc)
            rc = defer ? mt_db_commit_nosync(core->db, &err) : store_commit(core->db, &err);
        if (rc)
            store_rollback(core->db);
        else if (defer) {
            resp->needs_sync = true;
            resp->sync_mark = mt_db_sync_mark(core->db);
        }
    }
    if (!rc)
        mt_trace_mark(trace, "api_committed"); /* before the hand-off: its thread may run now */
    if (claimed) {
        sched_invoke_claimed(core, x.id, attempt, !rc, rc ? 0 : mt_db_sync_mark(core->db));
        x.wake_scheduler = false; /* handed to its thread */
    }
    pthread_mutex_unlock(&core->mu);

handled:
    if (rc) {
        resp->audited = false; /* rolled back with the change */
        resp->needs_sync = false;
        /* a commit whose sync failed stood all the same (its outcome is
         * unknown): a staged task must not wait for the next invoke's wake */
        if (x.wake_scheduler)
            sched_wake(core);
        if (rc == MT_EIO || rc == MT_EINTERNAL || rc == MT_ENOMEM)
            mt_error("%s failed: %s", resp->route, err.msg);
        core_error_response(resp, rc, err.msg);
        return;
    }
    if (x.drop_object[0]) {
        mt_err e2;
        if (untrusted_objects_delete(core, x.drop_object, &e2))
            mt_warn("could not delete object %s: %s", x.drop_object, e2.msg);
    }
    if (x.wake_scheduler) {
        if (notified)
            sched_wake_local(core);
        else
            sched_wake(core);
    }
    mt_trace_mark(trace, "api_woke");
    if (tx == TX_WRITE && !strncmp(req->path, "/v1/tasks/", 10)) {
        /* canceled, approved...: wakes ?wait= requests (x.id "" on POST
         * /v1/tasks: any task) */
        if (notified)
            core_task_event_local(core, x.id);
        else
            core_task_event_id(core, x.id);
    }
    if (!resp->json && !resp->raw && !resp->has_raw_fd) {
        resp->json = json_object();
        if (!resp->status)
            resp->status = 200;
    }
    if (!resp->status)
        resp->status = 200;
}
