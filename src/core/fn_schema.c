/* fn_schema: the core's side of the built-in argument schemas (mt_bschema.h):
 * checks at function registration/update and at task creation, so that a
 * bad argument fails before any party approves, and GET /v1/builtins, which
 * lists the table the worker checks jobs against. Errors name the argument
 * and never quote its value. */
#include <string.h>

#include "core_internal.h"
#include "mt_bschema.h"
#include "mt_executor.h"
#include "python_modules.h"

/* The schema of a function: its built-in's, or the reserved arguments of
 * "wasm". NULL with MT_EINVAL for an unknown built-in. */
static const mt_bschema *schema_of(const char *executor_type, const char *builtin, mt_err *err)
{
    if (executor_type && !strcmp(executor_type, "wasm"))
        return mt_bschema_wasm();
    if (executor_type && !strcmp(executor_type, "python"))
        return mt_bschema_python();
    const mt_bschema *s = mt_bschema_find(builtin);
    if (!s || !mt_builtin_exists(builtin))
        mt_err_set(err, MT_EINVAL,
                   "field 'builtin': no built-in function by that name (GET /v1/builtins, "
                   "`mesatee function builtins`, lists them)");
    return s && mt_builtin_exists(builtin) ? s : NULL;
}

/* Prefixes a schema error with the request field it concerns. */
static mt_status field_err(mt_err *err, const char *field, const mt_err *e)
{
    return mt_err_set(err, e->code ? e->code : MT_EINVAL, "field '%s': %s", field, e->msg);
}

mt_status fn_schema_check_register(core_ctx *x, const char *executor_type, const char *builtin,
                                   const json_t *arg_decls, size_t n_inputs, size_t n_outputs)
{
    const mt_bschema *s = schema_of(executor_type, builtin, x->err);
    if (!s)
        return x->err->code;
    /* the operator's allow-list: set by the server in each task (python_modules.h) */
    size_t i;
    const json_t *d;
    json_array_foreach((json_t *)arg_decls, i, d)
    {
        const char *n = json_string_value(json_object_get(d, "name"));
        if (s == mt_bschema_python() && n && !strcmp(n, MT_PYTHON_MODULES_ARG))
            return mt_err_set(x->err, MT_EINVAL,
                              "field 'arguments': argument '%s' is set by the server (the "
                              "operator's allow-list), not by a function",
                              MT_PYTHON_MODULES_ARG);
    }
    mt_err e;
    mt_err_clear(&e);
    if (mt_bschema_check_decl(s, arg_decls, n_inputs, n_outputs, &e))
        return field_err(x->err, strstr(e.msg, " slots, ") ? "inputs/outputs" : "arguments", &e);
    return MT_OK;
}

mt_status fn_schema_check_task(core_ctx *x, const core_function *fn, const json_t *args)
{
    /* a function whose built-in this build has no schema for (the test
     * worker's "__test_*") is left to the worker, which refuses unknown ones */
    const mt_bschema *s = !strcmp(fn->executor_type, "wasm")     ? mt_bschema_wasm()
                          : !strcmp(fn->executor_type, "python") ? mt_bschema_python()
                                                                 : mt_bschema_find(fn->builtin);
    if (!s)
        return MT_OK;
    mt_err e;
    mt_err_clear(&e);
    if (mt_bschema_check_args(s, args, true, &e) ||
        mt_bschema_check_slots(s, args, fn->inputs, fn->outputs, &e) ||
        (s->open_args && mt_bschema_check_typed(fn->arguments, args, &e)))
        return field_err(x->err, "arguments", &e);
    return MT_OK;
}

mt_status functions_builtins(core_ctx *x)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < mt_bschema_count(); i++) {
        const mt_bschema *s = mt_bschema_at(i);
        if (!mt_builtin_exists(s->name))
            continue; /* in the table but not in this build's registry */
        json_t *o = mt_bschema_json(s);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *w = arr ? mt_bschema_json(mt_bschema_wasm()) : NULL;
    json_t *py = arr ? mt_bschema_json(mt_bschema_python()) : NULL, *mods = json_array();
    /* the server's effective list (the operator's --python-allow/--python-deny) */
    for (const char *p = x->core->python_modules; mods && p && *p;) {
        const char *e = strchr(p, ',');
        json_t *m = json_stringn(p, e ? (size_t)(e - p) : strlen(p));
        if (!m || json_array_append_new(mods, m) != 0) {
            json_decref(mods);
            mods = NULL;
        }
        p = e ? e + 1 : NULL;
    }
    if (!w || !py || !mods) {
        json_decref(arr);
        json_decref(w);
        json_decref(py);
        json_decref(mods);
        return mt_err_set(x->err, MT_ENOMEM, "out of memory");
    }
    core_json_response(x, 200, json_pack("{s:o, s:o, s:o, s:o}", "builtins", arr, "wasm", w,
                                         "python", py, "python_modules", mods));
    return MT_OK;
}
