/* tasks: Teaclave's task state machine.
 *
 *   created --assign (participants, every declared slot)--> data_assigned
 *   data_assigned --approve (every participant)--> approved
 *   approved --invoke (creator; quota checked and counted)--> staged
 *   staged --scheduler claims--> running --> finished | failed
 *   any non-final --cancel (creator or admin)--> canceled
 *     (running: cancel_requested is set; the scheduler kills the worker)
 *
 * participants = every declared owner, the creator, and the function owner
 * when the function is private. Only participants see a task (others: 404).
 * Each handler runs inside the dispatcher's IMMEDIATE transaction.
 *
 * The store is untrusted (integrity.c): a task's declaration (function,
 * creator, arguments, ownership, participants) is MACed at create and
 * verified at every load; each approval is a MAC over the task's binding
 * recomputed from the rows; invoke (and the scheduler, before any executor
 * sees the task) verifies every participant's approval of that binding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "core_internal.h"
#include "keyuse.h"
#include "python_modules.h"
#include "mt_json.h"

typedef struct task_row {
    char task_id[MT_ID_LEN + 1];
    char function_id[MT_ID_LEN + 1];
    char creator[65];
    char status[16];
    json_t *inputs_own, *outputs_own, *participants, *approvals, *assignments;
    bool cancel_requested;
} task_row;

static void task_row_clear(task_row *t)
{
    json_decref(t->inputs_own);
    json_decref(t->outputs_own);
    json_decref(t->participants);
    json_decref(t->approvals);
    json_decref(t->assignments);
    memset(t, 0, sizeof *t);
}

static mt_status task_load(mt_core *c, mt_db *mdb, const char *task_id, task_row *t, mt_err *err)
{
    memset(t, 0, sizeof *t);
    /* participants decide who sees and acts: the declaration's MAC first,
     * over the same row read (columns 0-7, integ_task_decl_row_check), so
     * what is used is what was verified, in one round trip; kept prepared
     * (stmt_cache.c): every task request reads it */
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(c, mdb,
                                 "SELECT task_id, function_id, creator, arguments, "
                                 "inputs_ownership, outputs_ownership, participants, decl_mac, "
                                 "status, approvals, assignments, cancel_requested FROM tasks "
                                 "WHERE task_id = ?",
                                 &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, task_id);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && !(rc = integ_task_decl_row_check(c, st, 0, task_id, err))) {
        snprintf(t->task_id, sizeof t->task_id, "%s", mt_db_col_text(st, 0));
        snprintf(t->function_id, sizeof t->function_id, "%s", mt_db_col_text(st, 1));
        snprintf(t->creator, sizeof t->creator, "%s", mt_db_col_text(st, 2));
        snprintf(t->status, sizeof t->status, "%s", mt_db_col_text(st, 8));
        t->inputs_own = core_json_load(mt_db_col_text(st, 4));
        t->outputs_own = core_json_load(mt_db_col_text(st, 5));
        t->participants = core_json_load(mt_db_col_text(st, 6));
        t->approvals = core_json_load(mt_db_col_text(st, 9));
        t->assignments = core_json_load(mt_db_col_text(st, 10));
        t->cancel_requested = mt_db_col_int64(st, 11) != 0;
        if (!t->inputs_own || !t->outputs_own || !t->participants || !t->approvals ||
            !t->assignments) {
            task_row_clear(t);
            rc = mt_err_set(err, MT_EINTERNAL, "task %s: stored state is corrupt", task_id);
        }
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no task %s", task_id);
    core_stmt_put(c, st);
    return rc;
}

static bool json_array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return true;
    return false;
}

/* Loads the task if the caller participates (or is admin when allow_admin);
 * otherwise MT_ENOTFOUND so its existence is not revealed. */
static mt_status load_visible(core_ctx *x, bool allow_admin, task_row *t)
{
    core_set_object(x, "task", x->id);
    mt_status rc = task_load(x->core, x->db, x->id, t, x->err);
    if (rc == MT_ENOTFOUND ||
        (!rc && !json_array_has(t->participants, x->who) && !(allow_admin && x->admin))) {
        if (!rc)
            task_row_clear(t);
        return mt_err_set(x->err, MT_ENOTFOUND, "no task %s among your tasks", x->id);
    }
    return rc;
}

static mt_status set_status(core_ctx *x, const char *task_id, const char *status)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    /* the caller loaded the row in this transaction: sent with the next
     * statement or the COMMIT (store_run_deferred) */
    return store_run_deferred(x->db, x->err,
                              "UPDATE tasks SET status = ?, updated_at = CAST(? AS INTEGER) "
                              "WHERE task_id = ?",
                              status, now, task_id);
}

static mt_status set_json_col(core_ctx *x, const char *col, const char *task_id, json_t *v)
{
    char *s = mt_json_dump(v);
    if (!s)
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE tasks SET %s = ? WHERE task_id = ?", col);
    mt_status rc = store_run_deferred(x->db, x->err, sql, s, task_id); /* as set_status */
    free(s);
    return rc;
}

static void status_response(core_ctx *x, int code, const char *task_id, const char *status)
{
    core_json_response(x, code, json_pack("{s:s, s:s}", "task_id", task_id, "status", status));
}

/* ---- create ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds s to the set (array of pointers) if absent. */
static void set_add(const char **set, size_t *n, size_t cap, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(set[i], s))
            return;
    if (*n < cap)
        set[(*n)++] = s;
}

static const json_t *find_decl(const json_t *decls, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(decls, i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && !strcmp(n, name))
            return v;
    }
    return NULL;
}

/* Checks declared ownership against the function's slots and builds the
 * stored form [{name, owners:[sorted]}]. */
static mt_status check_ownership(core_ctx *x, const char *dir, const json_t *decls,
                                 const dec_ownership *own, size_t n, json_t **out)
{
    *out = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!find_decl(decls, own[i].name))
            return mt_err_set(x->err, MT_EINVAL, "the function has no %s slot '%s'", dir,
                              own[i].name);
        const char *sorted[DEC_MAX_OWNERS];
        memcpy(sorted, own[i].owners, own[i].n_owners * sizeof *sorted);
        qsort(sorted, own[i].n_owners, sizeof *sorted, cmp_str);
        json_t *owners = json_array();
        for (size_t j = 0; j < own[i].n_owners; j++) {
            bool exists;
            mt_status rc = core_user_exists(x->db, sorted[j], &exists, x->err);
            if (!rc && !exists)
                rc = mt_err_set(x->err, MT_EINVAL, "%s slot '%s': no user '%s'", dir, own[i].name,
                                sorted[j]);
            if (rc) {
                json_decref(owners);
                return rc;
            }
            json_array_append_new(owners, json_string(sorted[j]));
        }
        json_array_append_new(*out, json_pack("{s:s, s:o}", "name", own[i].name, "owners", owners));
    }
    size_t i;
    json_t *d;
    json_array_foreach(decls, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        if (json_is_true(json_object_get(d, "optional")))
            continue;
        bool given = false;
        for (size_t j = 0; j < n; j++)
            if (!strcmp(own[j].name, name))
                given = true;
        if (!given)
            return mt_err_set(x->err, MT_EINVAL,
                              "%s slot '%s' of the function is required: declare its owners", dir,
                              name);
    }
    return MT_OK;
}

mt_status tasks_create(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_task_new d;
    mt_status rc = dec_task_new_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    core_function fn;
    json_t *args = NULL, *ins = NULL, *outs = NULL, *parts = NULL;
    memset(&fn, 0, sizeof fn);
    if ((rc = core_function_load_visible(x->core, x->db, d.function_id, x->who, x->admin, &fn,
                                         x->err)))
        goto out;
    if (fn.disabled) {
        rc = mt_err_set(x->err, MT_ECONFLICT, "function %s is disabled: no new tasks",
                        d.function_id);
        goto out;
    }
    /* arguments: defaults, overridden only where the function allows */
    args = json_object();
    size_t i;
    json_t *a;
    json_array_foreach(fn.arguments, i, a) json_object_set(
        args, json_string_value(json_object_get(a, "name")), json_object_get(a, "default"));
    const char *k;
    json_t *v;
    json_object_foreach(d.arguments, k, v)
    {
        const json_t *decl = find_decl(fn.arguments, k);
        if (!decl) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "field 'arguments': the function has no argument '%s'", k);
            goto out;
        }
        if (!json_is_true(json_object_get(decl, "overridable"))) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "field 'arguments': argument '%s' cannot be overridden", k);
            goto out;
        }
        json_object_set(args, k, v);
    }
    /* the built-in's argument schema (mt_bschema.h): a bad value fails now,
     * before any party approves, not in the worker */
    if ((rc = fn_schema_check_task(x, &fn, args)))
        goto out;
    /* python: the operator's allow-list, bound into the declaration (MACed,
     * approved by every participant) and enforced by the worker as stored
     * (python_modules.h) */
    if (!strcmp(fn.executor_type, "python") &&
        json_object_set_new(args, MT_PYTHON_MODULES_ARG, json_string(x->core->python_modules))) {
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = check_ownership(x, "input", fn.inputs, d.inputs, d.n_inputs, &ins)) ||
        (rc = check_ownership(x, "output", fn.outputs, d.outputs, d.n_outputs, &outs)))
        goto out;
    /* participants */
    const char *pset[2 * DEC_MAX_SLOTS * DEC_MAX_OWNERS + 2];
    size_t np = 0, cap = sizeof pset / sizeof pset[0];
    set_add(pset, &np, cap, x->who);
    if (!fn.public_)
        set_add(pset, &np, cap, fn.owner);
    for (size_t s = 0; s < d.n_inputs; s++)
        for (size_t j = 0; j < d.inputs[s].n_owners; j++)
            set_add(pset, &np, cap, d.inputs[s].owners[j]);
    for (size_t s = 0; s < d.n_outputs; s++)
        for (size_t j = 0; j < d.outputs[s].n_owners; j++)
            set_add(pset, &np, cap, d.outputs[s].owners[j]);
    qsort(pset, np, sizeof *pset, cmp_str);
    /* a KeyStore key named in the arguments: its owner must take part */
    if ((rc = keyuse_check_task(x->core, x->db, fn.executor_type, fn.builtin, args, pset, np,
                                x->err)))
        goto out;
    parts = json_array();
    for (size_t j = 0; j < np; j++)
        json_array_append_new(parts, json_string(pset[j]));

    mt_id tid;
    mt_id_new(&tid);
    char *sa = mt_json_dump(args), *si = mt_json_dump(ins), *so = mt_json_dump(outs),
         *sp = mt_json_dump(parts);
    const char *status = (d.n_inputs + d.n_outputs == 0) ? "data_assigned" : "created";
    mt_db_stmt *st = NULL;
    char decl_mac[65];
    if (!sa || !si || !so || !sp)
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
    else if (!(rc = integ_task_decl_mac(
                   x->core, (const char *const[7]){tid.s, fn.function_id, x->who, sa, si, so, sp},
                   decl_mac, x->err)))
        /* the declaration with its MAC (integ_task_decl_mac) */
        rc = mt_db_prepare(x->db,
                           "INSERT INTO tasks(task_id, function_id, creator, status, arguments, "
                           "inputs_ownership, outputs_ownership, participants, created_at, "
                           "updated_at, decl_mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           &st, x->err);
    if (!rc) {
        int64_t now = mt_now();
        mt_db_bind_text(st, 1, tid.s);
        mt_db_bind_text(st, 2, fn.function_id);
        mt_db_bind_text(st, 3, x->who);
        mt_db_bind_text(st, 4, status);
        mt_db_bind_text(st, 5, sa);
        mt_db_bind_text(st, 6, si);
        mt_db_bind_text(st, 7, so);
        mt_db_bind_text(st, 8, sp);
        mt_db_bind_int64(st, 9, now);
        mt_db_bind_int64(st, 10, now);
        mt_db_bind_text(st, 11, decl_mac);
        rc = mt_db_run_deferred(st, x->err);
    }
    mt_db_finalize(st);
    free(sa);
    free(si);
    free(so);
    free(sp);
    /* plain INSERTs nothing reads (the task's above too): on PostgreSQL
     * sent with the next statement or the COMMIT (a failure fails that and
     * the transaction) */
    st = NULL;
    if (!rc)
        rc = mt_db_prepare(x->db, "INSERT INTO task_participants(task_id, username) VALUES (?, ?)",
                           &st, x->err);
    for (size_t j = 0; !rc && j < np; j++) {
        mt_db_reset(st);
        mt_db_bind_text(st, 1, tid.s);
        mt_db_bind_text(st, 2, pset[j]);
        rc = mt_db_run_deferred(st, x->err);
    }
    mt_db_finalize(st);
    if (rc)
        goto out;
    core_set_object(x, "task", tid.s);
    core_json_response(x, 201, json_pack("{s:s, s:s}", "task_id", tid.s, "status", status));
out:
    json_decref(args);
    json_decref(ins);
    json_decref(outs);
    json_decref(parts);
    core_function_clear(&fn);
    dec_task_new_free(&d);
    return rc;
}

/* ---- assign ------------------------------------------------------------ */

/* Compares the file's owners with the declared (sorted) owners. */

static mt_status assign_one(core_ctx *x, task_row *t, const dec_binding *b, bool input)
{
    const char *dir = input ? "input" : "output";
    const json_t *decl = find_decl(input ? t->inputs_own : t->outputs_own, b->slot);
    if (!decl)
        return mt_err_set(x->err, MT_EINVAL, "task %s has no %s slot '%s'", t->task_id, dir,
                          b->slot);
    json_t *map = json_object_get(t->assignments, input ? "inputs" : "outputs");
    if (json_object_get(map, b->slot))
        return mt_err_set(x->err, MT_ECONFLICT, "%s slot '%s' is already assigned", dir, b->slot);
    /* the file row and its owners as its MAC covers them, from one read:
     * ownership, kind and the owners compared below are those values */
    core_file f;
    json_t *actual = NULL;
    mt_status rc = integ_file_load(x->core, x->db, b->file_id, &f, &actual, NULL, x->err);
    bool owner = false;
    if (rc == MT_ENOTFOUND)
        mt_err_clear(x->err);
    else if (rc)
        return rc;
    else {
        size_t i;
        json_t *v;
        json_array_foreach(actual, i, v) if (json_is_string(v) &&
                                             !strcmp(json_string_value(v), x->who)) owner = true;
    }
    rc = MT_OK;
    if (!owner)
        rc = mt_err_set(x->err, MT_ENOTFOUND,
                        "no file %s among your files: you can only assign files you own",
                        b->file_id);
    else if (input && strcmp(f.kind, "input"))
        rc = mt_err_set(x->err, MT_EINVAL, "file %s is an %s file; input slots take input files",
                        f.file_id, f.kind);
    else if (!input) {
        if (!strcmp(f.kind, "input"))
            rc = mt_err_set(x->err, MT_EINVAL,
                            "file %s is an input file; output slots take output or fusion "
                            "files",
                            f.file_id);
        else if (f.written)
            rc = mt_err_set(x->err, MT_ECONFLICT,
                            "output file %s is already written; register a new output",
                            f.file_id);
        int64_t v;
        bool busy = false;
        if (!rc && (rc = store_int(x->db, x->err, &v, &busy,
                                   "SELECT 1 FROM task_files tf JOIN tasks t ON t.task_id = "
                                   "tf.task_id WHERE tf.file_id = ? AND tf.direction = 'output' "
                                   "AND t.status NOT IN ('finished','failed','canceled') LIMIT 1",
                                   f.file_id)))
            busy = false;
        if (!rc && busy)
            rc = mt_err_set(x->err, MT_ECONFLICT,
                            "output file %s is already the output of an unfinished task",
                            f.file_id);
    }
    if (rc) {
        json_decref(actual);
        return rc;
    }
    bool eq = json_equal(actual, json_object_get(decl, "owners"));
    if (!eq) {
        char *a = mt_json_dump(actual), *w = mt_json_dump(json_object_get(decl, "owners"));
        rc = mt_err_set(x->err, MT_EINVAL,
                        "owners of file %s (%.60s) differ from the owners declared for %s "
                        "slot '%s' (%.60s)",
                        f.file_id, a ? a : "?", dir, b->slot, w ? w : "?");
        free(a);
        free(w);
        json_decref(actual);
        return rc;
    }
    json_decref(actual);
    if ((rc = store_run(x->db, x->err, NULL,
                        "INSERT INTO task_files(task_id, slot, direction, file_id) "
                        "VALUES (?, ?, ?, ?)",
                        t->task_id, b->slot, dir, f.file_id)))
        return rc;
    json_object_set_new(map, b->slot, json_string(f.file_id));
    return MT_OK;
}

static bool all_assigned(const json_t *own, const json_t *map)
{
    size_t i;
    json_t *v;
    json_array_foreach(own, i, v)
    {
        if (!json_object_get(map, json_string_value(json_object_get(v, "name"))))
            return false;
    }
    return true;
}

mt_status tasks_assign(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_assign d;
    mt_status rc = dec_assign_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    task_row t;
    if ((rc = load_visible(x, false, &t)))
        goto out_d;
    if (strcmp(t.status, "created")) {
        rc = mt_err_set(x->err, MT_ECONFLICT,
                        "task %s is %s: data can only be assigned while it is created", t.task_id,
                        t.status);
        goto out;
    }
    if (!json_object_get(t.assignments, "inputs"))
        json_object_set_new(t.assignments, "inputs", json_object());
    if (!json_object_get(t.assignments, "outputs"))
        json_object_set_new(t.assignments, "outputs", json_object());
    for (size_t i = 0; !rc && i < d.n_inputs; i++)
        rc = assign_one(x, &t, &d.inputs[i], true);
    for (size_t i = 0; !rc && i < d.n_outputs; i++)
        rc = assign_one(x, &t, &d.outputs[i], false);
    if (rc || (rc = set_json_col(x, "assignments", t.task_id, t.assignments)))
        goto out;
    const char *status = t.status;
    if (all_assigned(t.inputs_own, json_object_get(t.assignments, "inputs")) &&
        all_assigned(t.outputs_own, json_object_get(t.assignments, "outputs")))
        status = "data_assigned";
    if ((rc = set_status(x, t.task_id, status)))
        goto out;
    status_response(x, 200, t.task_id, status);
out:
    task_row_clear(&t);
out_d:
    dec_assign_free(&d);
    return rc;
}

/* ---- approve / invoke / cancel ----------------------------------------- */

mt_status tasks_approve(core_ctx *x)
{
    task_row t;
    mt_status rc = load_visible(x, false, &t);
    if (rc)
        return rc;
    if (strcmp(t.status, "data_assigned")) {
        rc = mt_err_set(x->err, MT_ECONFLICT,
                        "task %s is %s: it can be approved only once all data is assigned "
                        "(data_assigned)",
                        t.task_id, t.status);
        goto out;
    }
    if (json_array_has(t.approvals, x->who)) {
        rc = mt_err_set(x->err, MT_ECONFLICT, "you have already approved task %s", t.task_id);
        goto out;
    }
    json_array_append_new(t.approvals, json_string(x->who));
    bool all = true;
    size_t i;
    json_t *p;
    json_array_foreach(t.participants, i, p) if (!json_array_has(t.approvals, json_string_value(p)))
        all = false;
    const char *status = all ? "approved" : t.status;
    /* the approvals and the status in one UPDATE (neither is part of the
     * binding the seal below reads), deferred as set_status is */
    char *ap = mt_json_dump(t.approvals), now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    if (!ap)
        rc = mt_err_set(x->err, MT_ENOMEM, "out of memory");
    else
        rc = store_run_deferred(x->db, x->err,
                                "UPDATE tasks SET approvals = ?, status = ?, updated_at = "
                                "CAST(? AS INTEGER) WHERE task_id = ?",
                                ap, status, now, t.task_id);
    free(ap);
    if (rc)
        goto out;
    /* the approval that counts: a MAC over the binding as it is now */
    if ((rc = integ_approval_seal(x->core, x->db, t.task_id, x->who, x->err)))
        goto out;
    status_response(x, 200, t.task_id, status);
out:
    task_row_clear(&t);
    return rc;
}

mt_status tasks_invoke(core_ctx *x)
{
    /* graceful stop (mt_core_drain): no new work; the task stays approved */
    if (atomic_load(&x->core->draining))
        return mt_err_set(x->err, MT_EUNAVAIL,
                          "the server is shutting down and accepts no new tasks; invoke the "
                          "task again once it has restarted");
    task_row t;
    mt_status rc = load_visible(x, false, &t);
    if (rc)
        return rc;
    if (strcmp(t.creator, x->who)) {
        rc = mt_err_set(x->err, MT_EPERM, "only the creator of task %s may invoke it", t.task_id);
        goto out;
    }
    if (strcmp(t.status, "approved")) {
        rc = mt_err_set(x->err, MT_ECONFLICT,
                        "task %s is %s: it can be invoked only once every participant "
                        "approved it",
                        t.task_id, t.status);
        goto out;
    }
    /* disabled, deleted and usage_quota are MACed function fields: taken
     * from the row integ_task_verify_row checked, not from another read */
    integ_task_row fr;
    if ((rc = integ_task_verify_row(x->core, x->db, t.task_id, &fr, x->err)))
        goto out;
    bool off = fr.disabled || fr.deleted;
    int64_t quota = fr.usage_quota;
    char fid[MT_ID_LEN + 1];
    snprintf(fid, sizeof fid, "%s", fr.function_id);
    integ_task_row_free(&fr);
    if (off) {
        rc = mt_err_set(x->err, MT_ECONFLICT, "function %s is disabled: the task cannot be invoked",
                        fid);
        goto out;
    }
    /* the quota's count (current_usage, not MACed by design) in one
     * statement: a refusal fails the request, whose transaction is rolled
     * back with the count */
    mt_db_stmt *st;
    if ((rc = core_stmt_get(x->core, x->db,
                            "UPDATE functions SET current_usage = current_usage + 1 "
                            "WHERE function_id = ? RETURNING current_usage - 1",
                            &st, x->err)))
        goto out;
    mt_db_bind_text(st, 1, fid);
    if (mt_db_step(st, &rc, x->err) != MT_DB_ROW)
        rc = mt_err_set(x->err, MT_EINTERNAL, "task %s: its function is missing", t.task_id);
    else if (quota > 0 && mt_db_col_int64(st, 0) >= quota)
        rc = mt_err_set(x->err, MT_EQUOTA,
                        "function %s has used its quota of %lld invocations; ask its owner to "
                        "raise usage_quota",
                        fid, (long long)quota);
    core_stmt_put(x->core, st);
    if (rc)
        goto out;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)mt_now());
    /* the row was loaded in this transaction: no round trip of its own
     * (store_run_deferred; the claim on invoke's UPDATE follows it) */
    if ((rc = store_run_deferred(x->db, x->err,
                                 "UPDATE tasks SET status = 'staged', updated_at = "
                                 "CAST(? AS INTEGER), staged_seq = (SELECT "
                                 "coalesce(max(staged_seq), 0) + 1 FROM tasks) WHERE task_id = ?",
                                 now, t.task_id)))
        goto out;
    x->wake_scheduler = true;
    status_response(x, 200, t.task_id, "staged");
out:
    task_row_clear(&t);
    return rc;
}

mt_status tasks_cancel(core_ctx *x)
{
    task_row t;
    mt_status rc = load_visible(x, true, &t);
    if (rc)
        return rc;
    if (!x->admin && strcmp(t.creator, x->who)) {
        rc = mt_err_set(x->err, MT_EPERM,
                        "only the creator of task %s or an administrator may cancel it", t.task_id);
        goto out;
    }
    if (core_task_status_final(t.status)) {
        rc = mt_err_set(x->err, MT_ECONFLICT, "task %s is already %s", t.task_id, t.status);
        goto out;
    }
    if (!strcmp(t.status, "running")) {
        if ((rc = store_run(x->db, x->err, NULL,
                            "UPDATE tasks SET cancel_requested = 1 WHERE task_id = ?", t.task_id)))
            goto out;
        core_json_response(x, 200,
                           json_pack("{s:s, s:s, s:b}", "task_id", t.task_id, "status", "running",
                                     "cancel_requested", 1));
        goto out;
    }
    /* the outcome (no result, no log) and its MAC over those values, in
     * one statement: no MAC over a read back of the row */
    char reason[320], rmac[65];
    snprintf(reason, sizeof reason, "canceled by %s", x->who);
    if ((rc = integ_task_result_mac(x->core, t.task_id, NULL, reason, NULL, rmac, x->err)) ||
        (rc = store_run(x->db, x->err, NULL,
                        "UPDATE tasks SET result = NULL, log = NULL, failure_reason = ?, "
                        "result_mac = ? WHERE task_id = ?",
                        reason, rmac, t.task_id)) ||
        (rc = set_status(x, t.task_id, "canceled")))
        goto out;
    status_response(x, 200, t.task_id, "canceled");
out:
    task_row_clear(&t);
    return rc;
}

/* ---- read -------------------------------------------------------------- */

/* A task as participants see it, from one read (one round trip): the
 * declaration's MAC (columns 0-7, integ_task_decl_row_check) and then, for
 * who (NULL: anyone, the caller checked), membership in the verified
 * participants (MT_ENOTFOUND and *not_member otherwise),
 * then the outcome's MAC (what participants read of it was written by the
 * TEE: integ_task_result_row_check on the same row), all checked
 * before anything of the row is used. NULL with x->err set on failure. */
static json_t *task_json(core_ctx *x, const char *task_id, const char *who, bool *not_member)
{
    *not_member = false;
    mt_db_stmt *st; /* kept prepared (stmt_cache.c): every GET of a task reads it */
    if (core_stmt_get(
            x->core, x->db,
            "SELECT t.task_id, t.function_id, t.creator, t.arguments, t.inputs_ownership, "
            "t.outputs_ownership, t.participants, t.decl_mac, f.name, t.status, t.approvals, "
            "t.assignments, t.result, t.failure_reason, t.log, t.cpu_ms, t.peak_rss_kb, t.wall_ms, "
            "t.bytes_in, t.bytes_out, t.cancel_requested, t.created_at, t.updated_at, t.fuel_used, "
            "t.key_signs, t.result_mac, f.function_id FROM tasks t LEFT JOIN functions f ON "
            "f.function_id = t.function_id WHERE t.task_id = ?",
            &st, x->err))
        return NULL;
    mt_db_bind_text(st, 1, task_id);
    json_t *o = NULL;
    mt_status rc = MT_OK;
    int s = mt_db_step(st, &rc, x->err);
    if (s == MT_DB_DONE && !rc)
        rc = mt_err_set(x->err, MT_ENOTFOUND, "no task %s", task_id);
    if (s == MT_DB_ROW && !(rc = integ_task_decl_row_check(x->core, st, 0, task_id, x->err)) &&
        who) {
        json_t *parts = core_json_load(mt_db_col_text(st, 6));
        if (!json_array_has(parts, who)) {
            *not_member = true;
            rc = mt_err_set(x->err, MT_ENOTFOUND, "no task %s among your tasks", task_id);
        }
        json_decref(parts);
    }
    /* the outcome (result 12, failure_reason 13, log 14) against its MAC */
    if (s == MT_DB_ROW && !rc)
        rc = integ_task_result_row_check(x->core, st, task_id, 0, 12, 25, x->err);
    if (s == MT_DB_ROW && !rc && !mt_db_col_null(st, 26)) {
        json_t *result =
            mt_db_col_null(st, 12) ? json_null() : core_json_load(mt_db_col_text(st, 12));
        o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
            "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:b, s:o, s:o}",
            "task_id", mt_db_col_text(st, 0), "function_id", mt_db_col_text(st, 1), "function_name",
            mt_db_col_text(st, 8), "creator", mt_db_col_text(st, 2), "status",
            mt_db_col_text(st, 9), "arguments", core_json_load(mt_db_col_text(st, 3)), "inputs",
            core_json_load(mt_db_col_text(st, 4)), "outputs", core_json_load(mt_db_col_text(st, 5)),
            "participants", core_json_load(mt_db_col_text(st, 6)), "approvals",
            core_json_load(mt_db_col_text(st, 10)), "assignments",
            core_json_load(mt_db_col_text(st, 11)), "result", result ? result : json_null(),
            "failure_reason",
            mt_db_col_null(st, 13) ? json_null() : json_string(mt_db_col_text(st, 13)), "log",
            mt_db_col_null(st, 14) ? json_null() : json_string(mt_db_col_text(st, 14)), "metering",
            "cpu_ms", (json_int_t)mt_db_col_int64(st, 15), "peak_rss_kb",
            (json_int_t)mt_db_col_int64(st, 16), "wall_ms", (json_int_t)mt_db_col_int64(st, 17),
            "bytes_in", (json_int_t)mt_db_col_int64(st, 18), "bytes_out",
            (json_int_t)mt_db_col_int64(st, 19), "fuel_used", (json_int_t)mt_db_col_int64(st, 23),
            "key_signs", (json_int_t)mt_db_col_int64(st, 24), "cancel_requested",
            (int)mt_db_col_int64(st, 20), "created_at", core_time_json(mt_db_col_int64(st, 21)),
            "updated_at", core_time_json(mt_db_col_int64(st, 22)));
    }
    core_stmt_put(x->core, st);
    if (rc)
        return NULL;
    /* python: the SHA-256 of the allow-list participants approve (python_modules.h) */
    const char *pm = o ? json_string_value(json_object_get(json_object_get(o, "arguments"),
                                                           MT_PYTHON_MODULES_ARG))
                       : NULL;
    if (pm) {
        char h[65];
        core_sha256_hex(pm, strlen(pm), h);
        json_object_set_new(o, "python_modules_sha256", json_string(h));
    }
    if (!o)
        mt_err_set(x->err, MT_EINTERNAL, "task %s could not be read", task_id);
    return o;
}

/* task_json for tasks_list: the task_participants row that selected it is
 * untrusted, so membership is checked against the verified declaration. */
static json_t *task_json_participant(core_ctx *x, const char *task_id)
{
    bool not_member;
    json_t *o = task_json(x, task_id, x->who, &not_member);
    if (!o && not_member) /* selected by an untrusted row */
        integ_fail(x->err, "task");
    return o;
}

mt_status tasks_get(core_ctx *x)
{
    unsigned wait_ms; /* ?wait=: the gateway may hold the answer (task_wait.c) */
    mt_status rc = core_wait_query_parse(x->req->query, &wait_ms, x->err);
    if (rc)
        return rc;
    core_set_object(x, "task", x->id);
    /* load_visible's checks (declaration MAC, participant) and the
     * outcome's MAC on the row that is shown: one read */
    bool not_member;
    json_t *o = task_json(x, x->id, x->who, &not_member);
    if (!o) {
        /* missing or not the caller's: the same answer (existence not revealed) */
        if (x->err->code == MT_ENOTFOUND)
            return mt_err_set(x->err, MT_ENOTFOUND, "no task %s among your tasks", x->id);
        return x->err->code;
    }
    const char *status = json_string_value(json_object_get(o, "status"));
    if (wait_ms && status && !core_task_status_final(status))
        x->resp->park_ms = wait_ms;
    core_json_response(x, 200, o);
    return MT_OK;
}

mt_status tasks_list(core_ctx *x)
{
    dec_page pg;
    mt_status rc = dec_page_query_parse(x->req->query, PAGE_TASKS, &pg, x->err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    rc = mt_db_prepare(x->db,
                       "SELECT t.task_id, t.created_at FROM tasks t JOIN task_participants p "
                       "ON p.task_id = t.task_id WHERE p.username = ?1 AND (?2 = 0 OR "
                       "t.created_at > ?3 OR (t.created_at = ?3 AND t.task_id > ?4)) "
                       "ORDER BY t.created_at, t.task_id LIMIT ?5",
                       &st, x->err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, x->who);
    core_page_bind(st, 2, &pg);
    return core_list_response(x, st, "tasks", task_json_participant, PAGE_TASKS, &pg);
}
