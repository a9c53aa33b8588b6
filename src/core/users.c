/* users: the account lifecycle an administrator runs (issue 9): show,
 * disable, enable, delete. Passwords (own change, admin reset) are in
 * auth.c with the failed-login limits.
 *
 * States (users.state, under users.mac when not active, integrity.c):
 *  - active: logs in, its tokens work;
 *  - disabled: no login; every token is revoked at once and
 *    mt_core_authenticate refuses the account's tokens even if a revocation
 *    were undone in the store; enable makes it active again (a fresh login is
 *    needed);
 *  - deleted: a tombstone. The password hash is dropped, tokens revoked, the
 *    user's functions disabled (no new tasks), and the name is never reused
 *    (a new account of that name would inherit the files it owns and the
 *    approvals it gave). Refused while the user takes part in an unfinished
 *    task: cancel or finish those first. Files it owns stay (other owners of
 *    a fusion file keep theirs), finished tasks keep their history.
 * The last active administrator can be neither disabled nor deleted.
 * All of them run in the dispatcher's write transaction with their audit
 * entry (api.c).
 *
 * Store: on the database layer (x->db, src/store/mt_db.h). */
#include <stdio.h>
#include <string.h>

#include "core_internal.h"

/* The state of user into state (16 bytes) after checking the row's MAC;
 * MT_ENOTFOUND when there is no such user. */
static mt_status user_state(core_ctx *x, const char *user, char state[16], char role[16])
{
    mt_db_stmt *st;
    mt_status rc =
        mt_db_prepare(x->db, "SELECT state, role FROM users WHERE username = ?", &st, x->err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, user);
    int s = mt_db_step(st, &rc, x->err);
    if (s == MT_DB_ROW) {
        snprintf(state, 16, "%s", mt_db_col_text(st, 0));
        snprintf(role, 16, "%s", mt_db_col_text(st, 1));
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(x->err, MT_ENOTFOUND, "no user '%s'", user);
    mt_db_finalize(st);
    if (!rc)
        rc = integ_user_check(x->core, x->db, user, x->err);
    return rc;
}

/* MT_ECONFLICT when user is the last active administrator. */
static mt_status not_last_admin(core_ctx *x, const char *user, const char *role,
                                const char *state, const char *what)
{
    if (strcmp(role, "admin") != 0 || strcmp(state, "active") != 0)
        return MT_OK;
    int64_t others;
    mt_status rc = store_int(x->db, x->err, &others, NULL,
                             "SELECT count(*) FROM users WHERE role = 'admin' AND "
                             "state = 'active' AND username != ?",
                             user);
    if (!rc && others == 0)
        rc = mt_err_set(x->err, MT_ECONFLICT,
                        "'%s' is the last active administrator and cannot be %s: create or "
                        "enable another administrator first",
                        user, what);
    return rc;
}

static mt_status set_state(core_ctx *x, const char *user, const char *state, int *revoked)
{
    mt_status rc;
    *revoked = 0;
    /* verified row, changed, resealed from the verified values */
    if ((rc = integ_user_rewrite(x->core, x->db, user, NULL, state, x->err)))
        return rc;
    if (!strcmp(state, "active"))
        return MT_OK;
    return integ_tokens_revoke_user(x->core, x->db, user, NULL, revoked, x->err);
}

/* The user named in the path (x->id), as the object of the request, with its
 * state and role; a deleted account fails with `code` and "user '<id>' <what>". */
static mt_status undeleted_user(core_ctx *x, char state[16], char role[16], mt_status code,
                                const char *what)
{
    core_set_object(x, "user", x->id);
    mt_status rc = user_state(x, x->id, state, role);
    if (rc)
        return rc;
    if (!strcmp(state, "deleted"))
        return mt_err_set(x->err, code, "user '%s' %s", x->id, what);
    return MT_OK;
}

/* GET /v1/users/{name}: an administrator sees anyone, a user only itself. */
mt_status users_get(core_ctx *x)
{
    core_set_object(x, "user", x->id);
    if (!x->admin && strcmp(x->who, x->id) != 0)
        return mt_err_set(x->err, MT_EPERM,
                          "only administrators see other users (GET /v1/users/me shows you)");
    char state[16], role[16];
    mt_status rc = user_state(x, x->id, state, role);
    if (rc)
        return rc;
    int64_t created = 0, tokens = 0;
    int64_t now = mt_now();
    char snow[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now);
    if ((rc = store_int(x->db, x->err, &created, NULL,
                        "SELECT created_at FROM users WHERE username = ?", x->id)) ||
        (rc = store_int(x->db, x->err, &tokens, NULL,
                        "SELECT count(*) FROM tokens WHERE username = ? AND revoked = 0 AND "
                        "expires_at > CAST(? AS INTEGER)",
                        x->id, snow)))
        return rc;
    core_json_response(x, 200,
                       json_pack("{s:s, s:s, s:s, s:o, s:I}", "username", x->id, "role", role,
                                 "state", state, "created_at", core_time_json(created),
                                 "active_tokens", (json_int_t)tokens));
    return MT_OK;
}

mt_status users_disable(core_ctx *x)
{
    char state[16], role[16];
    mt_status rc = undeleted_user(x, state, role, MT_ECONFLICT, "was deleted");
    if (rc)
        return rc;
    int revoked = 0;
    if ((rc = not_last_admin(x, x->id, role, state, "disabled")) ||
        (rc = set_state(x, x->id, "disabled", &revoked)))
        return rc;
    core_json_response(x, 200,
                       json_pack("{s:s, s:s, s:i}", "username", x->id, "state", "disabled",
                                 "tokens_revoked", revoked));
    return MT_OK;
}

mt_status users_enable(core_ctx *x)
{
    char state[16], role[16];
    mt_status rc = undeleted_user(x, state, role, MT_ECONFLICT,
                                  "was deleted: deleted accounts are not restored");
    if (rc)
        return rc;
    int revoked;
    if ((rc = set_state(x, x->id, "active", &revoked)))
        return rc;
    core_json_response(x, 200, json_pack("{s:s, s:s}", "username", x->id, "state", "active"));
    return MT_OK;
}

mt_status users_delete(core_ctx *x)
{
    char state[16], role[16];
    mt_status rc = undeleted_user(x, state, role, MT_ENOTFOUND, "was already deleted");
    if (rc)
        return rc;
    if ((rc = not_last_admin(x, x->id, role, state, "deleted")))
        return rc;
    int64_t busy;
    if ((rc = store_int(x->db, x->err, &busy, NULL,
                        "SELECT count(*) FROM tasks t WHERE t.status NOT IN "
                        "('finished','failed','canceled') AND (t.creator = ?1 OR EXISTS "
                        "(SELECT 1 FROM task_participants p WHERE p.task_id = t.task_id AND "
                        "p.username = ?1))",
                        x->id)))
        return rc;
    if (busy)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "user '%s' takes part in %lld unfinished task(s): cancel or finish "
                          "them first",
                          x->id, (long long)busy);
    int revoked = 0, fns = 0;
    json_t *ids = NULL;
    if ((rc = integ_user_rewrite(x->core, x->db, x->id, "!", "deleted", x->err)) ||
        (rc = integ_tokens_revoke_user(x->core, x->db, x->id, NULL, &revoked, x->err)) ||
        (rc = store_ids(x->db, "SELECT function_id FROM functions WHERE owner = ? AND disabled = 0",
                        x->id, &ids, x->err)))
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *fid = json_string_value(v);
        integ_pin *pin = NULL; /* the verified row, resealed as changed */
        if (!(rc = integ_function_pin(x->core, x->db, fid, &pin, x->err)) &&
            !(rc = store_run(x->db, x->err, NULL,
                             "UPDATE functions SET disabled = 1 WHERE function_id = ?", fid)) &&
            !(rc = integ_pin_set(pin, "disabled", "1", x->err)))
            rc = integ_pin_seal(x->core, x->db, pin, x->err);
        integ_pin_free(pin);
        if (rc)
            break;
        fns++;
    }
    json_decref(ids);
    if (rc)
        return rc;
    core_json_response(x, 200,
                       json_pack("{s:s, s:s, s:i, s:i}", "username", x->id, "state", "deleted",
                                 "tokens_revoked", revoked, "functions_disabled", fns));
    return MT_OK;
}
