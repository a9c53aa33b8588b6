/* functions: registration of built-in functions with their argument and
 * slot declarations, visibility (public, owner, allow-list, admin), update,
 * disable, delete (soft, so finished tasks keep their history) and usage
 * statistics. Invisible functions answer 404; visible ones the caller does
 * not own answer 403 to owner-only operations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "core_internal.h"
#include "mt_executor.h"
#include "mt_ff.h"
#include "mt_json.h"

static bool names_have(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s))
        return true;
    return false;
}

void core_function_clear(core_function *f)
{
    if (!f)
        return;
    json_decref(f->arguments);
    json_decref(f->inputs);
    json_decref(f->outputs);
    memset(f, 0, sizeof *f);
}

mt_status core_function_load_visible(mt_core *c, mt_db *mdb, const char *function_id,
                                     const char *who, bool admin, core_function *out, mt_err *err)
{
    /* visibility and ownership come from untrusted storage: decided on the
     * values the function's MAC was checked on, in the same read (public,
     * owner, deleted, the allow-list), never on a further read */
    bool deleted = false;
    json_t *allow = NULL;
    mt_status rc = integ_function_load(c, mdb, function_id, out, &deleted, &allow, err);
    if (rc == MT_ENOTFOUND)
        return mt_err_set(err, MT_ENOTFOUND, "no function %s visible to you", function_id);
    if (rc)
        return rc;
    bool visible = !deleted && (admin || out->public_ || !strcmp(out->owner, who ? who : "") ||
                                (who && names_have(allow, who)));
    json_decref(allow);
    if (!visible) {
        core_function_clear(out);
        return mt_err_set(err, MT_ENOTFOUND, "no function %s visible to you", function_id);
    }
    if (!out->arguments || !out->inputs || !out->outputs) {
        core_function_clear(out);
        return mt_err_set(err, MT_EINTERNAL, "function %s: stored declaration is corrupt",
                          function_id);
    }
    return MT_OK;
}

/* Full JSON description of a function; allowlist only for owner/admin. */
static json_t *fn_json(core_ctx *x, const char *function_id)
{
    if (integ_function_check(x->core, x->db, function_id, x->err))
        return NULL;
    mt_db_stmt *st;
    if (mt_db_prepare(x->db,
                      "SELECT function_id, owner, name, description, executor_type, builtin, "
                      "public, disabled, arguments, inputs, outputs, usage_quota, "
                      "current_usage, created_at, updated_at, payload_size, payload_sha256 "
                      "FROM functions WHERE function_id = ?",
                      &st, x->err))
        return NULL;
    mt_db_bind_text(st, 1, function_id);
    json_t *o = NULL;
    mt_status rc = MT_OK;
    if (mt_db_step(st, &rc, x->err) == MT_DB_ROW) {
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:I, s:I, s:o, s:o}",
                      "function_id", mt_db_col_text(st, 0), "owner", mt_db_col_text(st, 1), "name",
                      mt_db_col_text(st, 2), "description", mt_db_col_text(st, 3), "executor_type",
                      mt_db_col_text(st, 4), "builtin", mt_db_col_text(st, 5), "public",
                      (int)mt_db_col_int64(st, 6), "disabled", (int)mt_db_col_int64(st, 7),
                      "arguments", core_json_load(mt_db_col_text(st, 8)), "inputs",
                      core_json_load(mt_db_col_text(st, 9)), "outputs",
                      core_json_load(mt_db_col_text(st, 10)), "usage_quota",
                      (json_int_t)mt_db_col_int64(st, 11), "current_usage",
                      (json_int_t)mt_db_col_int64(st, 12), "created_at",
                      core_time_json(mt_db_col_int64(st, 13)), "updated_at",
                      core_time_json(mt_db_col_int64(st, 14)));
        if (o && !mt_db_col_null(st, 15))
            json_object_set_new(o, "payload",
                                json_pack("{s:I, s:s}", "size", (json_int_t)mt_db_col_int64(st, 15),
                                          "sha256", mt_db_col_text(st, 16)));
        if (o && (x->admin || !strcmp(mt_db_col_text(st, 1), x->who))) {
            json_t *al = json_array();
            mt_db_stmt *a;
            if (!mt_db_prepare(x->db,
                               "SELECT username FROM function_allowlist WHERE function_id = ? "
                               "ORDER BY username",
                               &a, x->err)) {
                mt_db_bind_text(a, 1, function_id);
                mt_status arc = MT_OK;
                while (!arc && (mt_db_step(a, &arc, x->err) == MT_DB_ROW))
                    json_array_append_new(al, json_string(mt_db_col_text(a, 0)));
                mt_db_finalize(a);
                if (arc) { /* a partial allowlist would mislead: fail */
                    json_decref(al);
                    json_decref(o);
                    mt_db_finalize(st);
                    return NULL;
                }
            }
            json_object_set_new(o, "allowlist", al);
        }
    }
    mt_db_finalize(st);
    if (!o)
        mt_err_set(x->err, MT_EINTERNAL, "function %s could not be read", function_id);
    return o;
}

/* Replaces the allowlist; every user must exist. */
static mt_status set_allowlist(core_ctx *x, const char *fid, const dec_function *d)
{
    mt_status rc =
        store_run(x->db, x->err, NULL, "DELETE FROM function_allowlist WHERE function_id = ?", fid);
    for (size_t i = 0; !rc && i < d->n_allowlist; i++) {
        bool exists;
        if ((rc = core_user_exists(x->db, d->allowlist[i], &exists, x->err)))
            break;
        if (!exists)
            return mt_err_set(x->err, MT_EINVAL, "field 'allowlist': no user '%s'",
                              d->allowlist[i]);
        rc = store_run(x->db, x->err, NULL,
                       "INSERT INTO function_allowlist(function_id, username) VALUES (?, ?)", fid,
                       d->allowlist[i]);
    }
    return rc;
}

/* Stores the module of a "wasm" function: encrypted under a fresh key as an
 * object (mt_ff), the key wrapped under the sealing key with AAD
 * "function:<id>", the plaintext's size and SHA-256 beside it. On failure
 * the object is removed again. */
static mt_status store_payload(core_ctx *x, const char *fid, const dec_function *d,
                             integ_pin *pin)
{
    uint8_t key[32], wrapped[61], *ct = NULL;
    uint32_t kek_v = 0;
    size_t ct_len = 0;
    char aad[16 + MT_ID_LEN], sha_ct[65], sha_pt[65];
    mt_id oid;
    mt_id_new(&oid);
    snprintf(aad, sizeof aad, "function:%s", fid);
    mt_status rc = mt_random(key, sizeof key, x->err);
    if (!rc)
        rc = mt_ff_encrypt(key, d->payload, d->payload_len, &ct, &ct_len, x->err);
    if (!rc)
        rc = core_wrap_key(x->core, aad, key, wrapped, &kek_v, x->err);
    mt_wipe(key, sizeof key);
    if (rc)
        goto out;
    if ((rc = untrusted_objects_put_in(x->core, x->db, oid.s, ct, ct_len, sha_ct, x->err)))
        goto out;
    core_sha256_hex(d->payload, d->payload_len, sha_pt);
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(x->db,
                            "UPDATE functions SET payload_object = ?, payload_key = ?, "
                            "payload_size = ?, payload_sha256 = ?, payload_kek_version = ? "
                            "WHERE function_id = ?",
                            &st, x->err)))
        goto drop;
    mt_db_bind_text(st, 1, oid.s);
    mt_db_bind_blob(st, 2, wrapped, (size_t)(sizeof wrapped));
    mt_db_bind_int64(st, 3, (int64_t)d->payload_len);
    mt_db_bind_text(st, 4, sha_pt);
    mt_db_bind_int64(st, 5, (int64_t)kek_v);
    mt_db_bind_text(st, 6, fid);
    mt_db_step(st, &rc, x->err);
    mt_db_finalize(st);
    char psz[24];
    snprintf(psz, sizeof psz, "%lld", (long long)d->payload_len);
    if (!rc && !(rc = integ_pin_set(pin, "payload_object", oid.s, x->err)) &&
        !(rc = integ_pin_set(pin, "payload_size", psz, x->err)) &&
        !(rc = integ_pin_set(pin, "payload_sha256", sha_pt, x->err)))
        rc = integ_pin_set_key(pin, wrapped, sizeof wrapped, x->err);
drop:
    if (rc)
        untrusted_objects_drop_in(x->core, oid.s);
out:
    free(ct);
    return rc;
}

static mt_status create_locked(core_ctx *x, const dec_function *d, const char *sa, const char *si,
                               const char *so);

mt_status functions_create(core_ctx *x)
{
    dec_limits lim = {mt_core_route_max_body(x->core, "POST", "/v1/functions"),
                      x->core->max_json_depth};
    dec_function d;
    mt_status rc = dec_function_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    json_t *args = NULL, *ins = NULL, *outs = NULL;
    char *sa = NULL, *si = NULL, *so = NULL;
    bool wasm = !strcmp(d.executor_type, "wasm");
    bool python = !strcmp(d.executor_type, "python");
    args = dec_function_args_json(&d);
    /* the built-in's (or wasm's reserved) argument schema, before anyone
     * approves, and before the slow module check */
    if (args && (rc = fn_schema_check_register(x, d.executor_type, d.builtin, args, d.n_inputs,
                                               d.n_outputs)))
        goto out;
    if (wasm) {
        mt_err e;
        if ((rc = mt_executor_wasm_check(x->core->worker_path, d.payload, d.payload_len, &e))) {
            rc = mt_err_set(x->err, rc, "field 'payload': %s", e.msg);
            goto out;
        }
    }
    if (python) { /* compiled in the sandboxed worker: syntax errors with line and column */
        mt_err e;
        if ((rc = mt_executor_python_check(x->core->worker_path, d.payload, d.payload_len, &e))) {
            rc = mt_err_set(x->err, rc, "field 'payload': %s", e.msg);
            goto out;
        }
    }
    ins = dec_function_slots_json(d.inputs, d.n_inputs);
    outs = dec_function_slots_json(d.outputs, d.n_outputs);
    sa = args ? mt_json_dump(args) : NULL;
    si = ins ? mt_json_dump(ins) : NULL;
    so = outs ? mt_json_dump(outs) : NULL;
    if (!sa || !si || !so) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    /* The check above ran in a worker outside the store lock (a slow route:
     * mt_core_route_is_slow); the change and its audit entry are one
     * transaction under it. */
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&x->core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        rc = create_locked(x, &d, sa, si, so);
        rc = core_audit_commit(x, 201, rc);
    }
    pthread_mutex_unlock(&x->core->mu);
out:
    free(sa);
    free(si);
    free(so);
    json_decref(args);
    json_decref(ins);
    json_decref(outs);
    dec_function_free(&d);
    return rc;
}

/* The database part of a registration (store lock held, transaction open). */
static mt_status create_locked(core_ctx *x, const dec_function *d, const char *sa, const char *si,
                               const char *so)
{
    bool wasm = !strcmp(d->executor_type, "wasm") || !strcmp(d->executor_type, "python");
    mt_status rc;
    mt_id fid;
    mt_id_new(&fid);
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(x->db,
                            "INSERT INTO functions(function_id, owner, name, description, "
                            "executor_type, builtin, public, arguments, inputs, outputs, "
                            "usage_quota, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            &st, x->err)))
        return rc;
    int64_t now = mt_now();
    mt_db_bind_text(st, 1, fid.s);
    mt_db_bind_text(st, 2, x->who);
    mt_db_bind_text(st, 3, d->name);
    mt_db_bind_text(st, 4, d->description);
    mt_db_bind_text(st, 5, d->executor_type);
    mt_db_bind_text(st, 6, d->builtin);
    mt_db_bind_int64(st, 7, d->public_ ? 1 : 0);
    mt_db_bind_text(st, 8, sa);
    mt_db_bind_text(st, 9, si);
    mt_db_bind_text(st, 10, so);
    mt_db_bind_int64(st, 11, d->usage_quota);
    mt_db_bind_int64(st, 12, now);
    mt_db_bind_int64(st, 13, now);
    mt_db_step(st, &rc, x->err);
    mt_db_finalize(st);
    /* the MAC over the values written here, never over a read back */
    integ_pin *pin = NULL;
    char pub[2] = {d->public_ ? '1' : '0', 0}, quota[24], created[24];
    snprintf(quota, sizeof quota, "%lld", (long long)d->usage_quota);
    snprintf(created, sizeof created, "%lld", (long long)now);
    if (rc || (rc = integ_function_pin_new(fid.s, &pin, x->err)) ||
        (rc = integ_pin_set(pin, "owner", x->who, x->err)) ||
        (rc = integ_pin_set(pin, "name", d->name, x->err)) ||
        (rc = integ_pin_set(pin, "description", d->description, x->err)) ||
        (rc = integ_pin_set(pin, "executor_type", d->executor_type, x->err)) ||
        (rc = integ_pin_set(pin, "builtin", d->builtin, x->err)) ||
        (rc = integ_pin_set(pin, "public", pub, x->err)) ||
        (rc = integ_pin_set(pin, "disabled", "0", x->err)) ||
        (rc = integ_pin_set(pin, "deleted", "0", x->err)) ||
        (rc = integ_pin_set(pin, "arguments", sa, x->err)) ||
        (rc = integ_pin_set(pin, "inputs", si, x->err)) ||
        (rc = integ_pin_set(pin, "outputs", so, x->err)) ||
        (rc = integ_pin_set(pin, "usage_quota", quota, x->err)) ||
        (rc = integ_pin_set(pin, "created_at", created, x->err)) ||
        (rc = set_allowlist(x, fid.s, d)) ||
        (rc = integ_pin_set_names(pin, d->allowlist, d->n_allowlist, x->err)) ||
        (wasm && (rc = store_payload(x, fid.s, d, pin))) ||
        (rc = integ_pin_seal(x->core, x->db, pin, x->err))) {
        integ_pin_free(pin);
        return rc;
    }
    integ_pin_free(pin);
    core_set_object(x, "function", fid.s);
    core_json_response(x, 201, json_pack("{s:s}", "function_id", fid.s));
    return MT_OK;
}

mt_status functions_list(core_ctx *x)
{
    dec_page pg;
    mt_status rc = dec_page_query_parse(x->req->query, PAGE_FUNCTIONS, &pg, x->err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    rc = mt_db_prepare(
        x->db,
        "SELECT function_id, created_at FROM functions f WHERE deleted = 0 AND (?2 <> 0 OR "
        "public = 1 OR owner = ?1 OR EXISTS (SELECT 1 FROM function_allowlist a WHERE "
        "a.function_id = f.function_id AND a.username = ?1)) AND (?3 = 0 OR created_at > ?4 "
        "OR (created_at = ?4 AND function_id > ?5)) ORDER BY created_at, function_id LIMIT ?6",
        &st, x->err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, x->who);
    mt_db_bind_int64(st, 2, x->admin ? 1 : 0);
    core_page_bind(st, 3, &pg);
    return core_list_response(x, st, "functions", fn_json, PAGE_FUNCTIONS, &pg);
}

mt_status functions_get(core_ctx *x)
{
    core_function f;
    core_set_object(x, "function", x->id);
    mt_status rc =
        core_function_load_visible(x->core, x->db, x->id, x->who, x->admin, &f, x->err);
    if (rc)
        return rc;
    core_function_clear(&f);
    json_t *o = fn_json(x, x->id);
    if (!o)
        return x->err->code;
    core_json_response(x, 200, o);
    return MT_OK;
}

/* Loads a visible function and requires the caller to own it (or be admin). */
static mt_status load_owned_fn(core_ctx *x, const char *what, core_function *f)
{
    core_set_object(x, "function", x->id);
    mt_status rc =
        core_function_load_visible(x->core, x->db, x->id, x->who, x->admin, f, x->err);
    if (rc)
        return rc;
    if (!x->admin && strcmp(f->owner, x->who)) {
        core_function_clear(f);
        return mt_err_set(x->err, MT_EPERM, "only the owner of function %s may %s it", x->id, what);
    }
    return MT_OK;
}

mt_status functions_update(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_function d;
    mt_status rc = dec_function_update_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    core_function f;
    memset(&f, 0, sizeof f);
    integ_pin *pin = NULL; /* the verified row, resealed as changed */
    if ((rc = load_owned_fn(x, "update", &f)) ||
        (rc = integ_function_pin(x->core, x->db, x->id, &pin, x->err)))
        goto out;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    if (d.has_description &&
        ((rc = store_run(x->db, x->err, NULL,
                        "UPDATE functions SET description = ? WHERE function_id = ?", d.description,
                        x->id)) ||
         (rc = integ_pin_set(pin, "description", d.description, x->err))))
        goto out;
    if (d.has_public &&
        ((rc = store_run(x->db, x->err, NULL,
                         "UPDATE functions SET public = CAST(? AS INTEGER) WHERE function_id = ?",
                         d.public_ ? "1" : "0", x->id)) ||
         (rc = integ_pin_set(pin, "public", d.public_ ? "1" : "0", x->err))))
        goto out;
    if (d.has_quota) {
        char q[24];
        snprintf(q, sizeof q, "%lld", (long long)d.usage_quota);
        if ((rc = store_run(x->db, x->err, NULL,
                            "UPDATE functions SET usage_quota = CAST(? AS INTEGER) "
                            "WHERE function_id = ?",
                            q, x->id)) ||
            (rc = integ_pin_set(pin, "usage_quota", q, x->err)))
            goto out;
    }
    if (d.has_args) {
        json_t *a = dec_function_args_json(&d);
        if (a && (rc = fn_schema_check_register(x, f.executor_type, f.builtin, a,
                                                json_array_size(f.inputs),
                                                json_array_size(f.outputs)))) {
            json_decref(a);
            goto out;
        }
        char *sa = a ? mt_json_dump(a) : NULL;
        json_decref(a);
        if (!sa) {
            rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
            goto out;
        }
        rc = store_run(x->db, x->err, NULL,
                       "UPDATE functions SET arguments = ? WHERE function_id = ?", sa, x->id);
        if (!rc)
            rc = integ_pin_set(pin, "arguments", sa, x->err);
        free(sa);
        if (rc)
            goto out;
    }
    if (d.has_allowlist &&
        ((rc = set_allowlist(x, x->id, &d)) ||
         (rc = integ_pin_set_names(pin, d.allowlist, d.n_allowlist, x->err))))
        goto out;
    if ((rc = store_run(x->db, x->err, NULL,
                        "UPDATE functions SET updated_at = CAST(? AS INTEGER) "
                        "WHERE function_id = ?",
                        now, x->id)) ||
        (rc = integ_pin_seal(x->core, x->db, pin, x->err)))
        goto out;
    json_t *o = fn_json(x, x->id);
    if (!o) {
        rc = x->err->code;
        goto out;
    }
    core_json_response(x, 200, o);
out:
    integ_pin_free(pin);
    core_function_clear(&f);
    dec_function_free(&d);
    return rc;
}

mt_status functions_disable(core_ctx *x)
{
    core_function f;
    mt_status rc = load_owned_fn(x, "disable", &f);
    if (rc)
        return rc;
    core_function_clear(&f);
    integ_pin *pin = NULL; /* the verified row, resealed as changed */
    rc = integ_function_pin(x->core, x->db, x->id, &pin, x->err);
    if (!rc)
        rc = store_run(x->db, x->err, NULL,
                       "UPDATE functions SET disabled = 1 WHERE function_id = ?", x->id);
    if (!rc && !(rc = integ_pin_set(pin, "disabled", "1", x->err)))
        rc = integ_pin_seal(x->core, x->db, pin, x->err);
    integ_pin_free(pin);
    if (rc)
        return rc;
    core_json_response(x, 200, json_pack("{s:s, s:b}", "function_id", x->id, "disabled", 1));
    return MT_OK;
}

mt_status functions_delete(core_ctx *x)
{
    core_function f;
    mt_status rc = load_owned_fn(x, "delete", &f);
    if (rc)
        return rc;
    core_function_clear(&f);
    int64_t v;
    bool busy;
    if ((rc = store_int(x->db, x->err, &v, &busy,
                        "SELECT 1 FROM tasks WHERE function_id = ? AND status NOT IN "
                        "('finished','failed','canceled') LIMIT 1",
                        x->id)))
        return rc;
    if (busy)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "function %s is used by unfinished tasks; cancel them first", x->id);
    integ_pin *pin = NULL; /* the verified row, resealed as changed */
    if (!(rc = integ_function_pin(x->core, x->db, x->id, &pin, x->err)) &&
        !(rc = store_run(x->db, x->err, NULL,
                         "UPDATE functions SET deleted = 1, disabled = 1 WHERE function_id = ?",
                         x->id)) &&
        !(rc = store_run(x->db, x->err, NULL,
                         "DELETE FROM function_allowlist WHERE function_id = ?", x->id)) &&
        !(rc = integ_pin_set(pin, "deleted", "1", x->err)) &&
        !(rc = integ_pin_set(pin, "disabled", "1", x->err)) &&
        !(rc = integ_pin_set_names(pin, NULL, 0, x->err)))
        rc = integ_pin_seal(x->core, x->db, pin, x->err);
    integ_pin_free(pin);
    if (rc)
        return rc;
    core_json_response(x, 200, json_pack("{s:b}", "deleted", 1));
    return MT_OK;
}

mt_status functions_stats(core_ctx *x)
{
    core_function f;
    mt_status rc = load_owned_fn(x, "read the statistics of", &f);
    if (rc)
        return rc;
    core_function_clear(&f);
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(x->db,
                            "SELECT usage_quota, current_usage, tasks_finished, tasks_failed, "
                            "cpu_ms, (SELECT CAST(total(key_signs) AS INTEGER) FROM tasks WHERE "
                            "function_id = ?1) FROM functions WHERE function_id = ?1",
                            &st, x->err)))
        return rc;
    mt_db_bind_text(st, 1, x->id);
    if (mt_db_step(st, &rc, x->err) == MT_DB_ROW)
        core_json_response(x, 200,
                           json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "usage_quota",
                                     (json_int_t)mt_db_col_int64(st, 0), "current_usage",
                                     (json_int_t)mt_db_col_int64(st, 1), "tasks_finished",
                                     (json_int_t)mt_db_col_int64(st, 2), "tasks_failed",
                                     (json_int_t)mt_db_col_int64(st, 3), "cpu_ms",
                                     (json_int_t)mt_db_col_int64(st, 4), "key_signs",
                                     (json_int_t)mt_db_col_int64(st, 5)));
    mt_db_finalize(st);
    return rc;
}
