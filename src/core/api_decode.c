/* api_decode: request bodies -> validated structs (see api_decode.h). */
#include "api_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_pwhash.h"
#include "mt_util.h"

/* ---- format checks ----------------------------------------------------- */

bool dec_username_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool dec_slot_name_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static bool lower_hex(const char *s, size_t len)
{
    if (!s || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool dec_key_hex_valid(const char *s)
{
    return lower_hex(s, 64);
}
bool dec_sha256_hex_valid(const char *s)
{
    return lower_hex(s, 64);
}

/* Parses the body as a JSON object with only the allowed keys into *root. */
static mt_status parse_object(const uint8_t *b, size_t n, const dec_limits *l,
                              const char *const *allowed, json_t **root, mt_err *err)
{
    mt_err local;
    if (!err)
        err = &local;
    mt_err_clear(err);
    *root = NULL;
    json_t *v = mt_json_parse((const char *)b, n, l->max_bytes,
                              l->max_depth ? l->max_depth : MT_JSON_DEFAULT_DEPTH, err);
    if (!v)
        return err->code ? err->code : MT_EINVAL;
    if (!json_is_object(v)) {
        json_decref(v);
        return mt_err_set(err, MT_EINVAL, "request body must be a JSON object");
    }
    mt_status rc = mt_json_only_keys(v, allowed, err);
    if (rc) {
        json_decref(v);
        return rc;
    }
    *root = v;
    return MT_OK;
}

/* Prefixes err's message with the field and item it came from. */
static mt_status item_err(mt_err *err, mt_status rc, const char *field, size_t i)
{
    return mt_err_prefix(err, rc, "field '%s' item %zu: ", field, i);
}

static mt_status key_field(const json_t *o, const char *field, uint8_t key[32], mt_err *err)
{
    const char *hex;
    mt_status rc = mt_json_str(o, field, 64, &hex, err);
    if (rc)
        return rc;
    if (!dec_key_hex_valid(hex))
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': expected 64 lower-case hex characters (a 32-byte key)",
                          field);
    return mt_hex_decode(hex, key, 32, err);
}

/* Reads an array of unique usernames into out. */
static mt_status user_list(const json_t *o, const char *field, bool required, size_t max,
                           const char **out, size_t *n, mt_err *err)
{
    json_t *arr;
    mt_status rc = required ? mt_json_array(o, field, max, &arr, err)
                            : mt_json_array_opt(o, field, max, &arr, err);
    *n = 0;
    if (rc || !arr)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!json_is_string(v) || strlen(s) != json_string_length(v) || !dec_username_valid(s))
            return mt_err_set(err, MT_EINVAL,
                              "field '%s' item %zu: expected a username ([a-z0-9_.-]{1,64})", field,
                              i);
        for (size_t j = 0; j < *n; j++)
            if (!strcmp(out[j], s))
                return mt_err_set(err, MT_EINVAL, "field '%s': user '%s' is listed twice", field,
                                  s);
        out[(*n)++] = s;
    }
    return MT_OK;
}

/* ---- auth -------------------------------------------------------------- */

void dec_login_free(dec_login *d)
{
    if (!d)
        return;
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

mt_status dec_login_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_login *out,
                          mt_err *err)
{
    static const char *const keys[] = {"username", "password", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    mt_status rc;
    if ((rc = mt_json_str(root, "username", 64, &out->username, err)) ||
        (rc = mt_json_str(root, "password", MT_PASSWORD_MAX, &out->password, err))) {
        json_decref(root);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->root = root;
    return MT_OK;
}

void dec_user_new_free(dec_user_new *d)
{
    if (!d)
        return;
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

mt_status dec_user_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_user_new *out,
                             mt_err *err)
{
    static const char *const keys[] = {"username", "password", "role", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    mt_status rc;
    if ((rc = mt_json_str(root, "username", 64, &out->username, err)) ||
        (rc = mt_json_str(root, "password", MT_PASSWORD_MAX, &out->password, err)) ||
        (rc = mt_json_str_opt(root, "role", 16, &out->role, "user", err)))
        goto fail;
    if (!dec_username_valid(out->username)) {
        rc =
            mt_err_set(err, MT_EINVAL, "field 'username': use 1 to 64 characters from [a-z0-9_.-]");
        goto fail;
    }
    if (strlen(out->password) < MT_PASSWORD_MIN) {
        rc = mt_err_set(err, MT_EINVAL, "field 'password': use at least %d characters",
                        MT_PASSWORD_MIN);
        goto fail;
    }
    if (strcmp(out->role, "user") && strcmp(out->role, "admin")) {
        rc = mt_err_set(err, MT_EINVAL, "field 'role': expected \"user\" or \"admin\"");
        goto fail;
    }
    out->root = root;
    return MT_OK;
fail:
    json_decref(root);
    memset(out, 0, sizeof *out);
    return rc;
}

/* ---- files ------------------------------------------------------------- */

void dec_input_new_free(dec_input_new *d)
{
    if (!d)
        return;
    json_decref(d->root);
    mt_wipe(d, sizeof *d);
    memset(d, 0, sizeof *d);
}

#define OBJECT_URL_PREFIX "mesatee://objects/"

mt_status dec_input_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_input_new *out,
                              mt_err *err)
{
    static const char *const keys[] = {"url", "key", "sha256", "name", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    mt_status rc;
    if ((rc = mt_json_str(root, "url", DEC_MAX_URL, &out->url, err)) ||
        (rc = key_field(root, "key", out->key, err)) ||
        (rc = mt_json_str_opt(root, "sha256", 64, &out->sha256, NULL, err)) ||
        (rc = mt_json_str_opt(root, "name", DEC_MAX_NAME, &out->name, "", err)))
        goto fail;
    const char *u = out->url;
    if (!strncmp(u, OBJECT_URL_PREFIX, strlen(OBJECT_URL_PREFIX))) {
        const char *id = u + strlen(OBJECT_URL_PREFIX);
        if (!mt_id_valid(id)) {
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'url': mesatee://objects/ must be followed by the 32-hex "
                            "object id returned by POST /v1/objects");
            goto fail;
        }
        out->url_kind = DEC_URL_OBJECT;
        memcpy(out->object_id, id, 33);
    } else if (!strncmp(u, "file://", 7)) {
        if (u[7] != '/' || strstr(u, "/../") || strstr(u, "/./") ||
            (strlen(u) >= 3 && !strcmp(u + strlen(u) - 3, "/..")) || strchr(u, '?') ||
            strchr(u, '#')) {
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'url': file:// URLs must name an absolute, normalised path");
            goto fail;
        }
        out->url_kind = DEC_URL_FILE;
    } else if (!strncmp(u, "https://", 8)) {
        if (u[8] == '\0' || u[8] == '/') {
            rc = mt_err_set(err, MT_EINVAL, "field 'url': https:// URL without a host");
            goto fail;
        }
        out->url_kind = DEC_URL_HTTPS;
    } else {
        rc = mt_err_set(err, MT_EINVAL,
                        "field 'url': expected mesatee://objects/<id>, file:// or https://");
        goto fail;
    }
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'url': contains a space or non-ASCII character; "
                            "percent-encode it");
            goto fail;
        }
    if (out->sha256) {
        if (!dec_sha256_hex_valid(out->sha256)) {
            rc =
                mt_err_set(err, MT_EINVAL, "field 'sha256': expected 64 lower-case hex characters");
            goto fail;
        }
        out->has_sha256 = true;
    }
    out->root = root;
    return MT_OK;
fail:
    json_decref(root);
    mt_wipe(out, sizeof *out);
    memset(out, 0, sizeof *out);
    return rc;
}

void dec_output_new_free(dec_output_new *d)
{
    if (!d)
        return;
    json_decref(d->root);
    mt_wipe(d, sizeof *d);
    memset(d, 0, sizeof *d);
}

mt_status dec_output_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_output_new *out,
                               mt_err *err)
{
    static const char *const keys[] = {"key", "name", "allow_key_reuse", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    mt_status rc;
    if ((rc = key_field(root, "key", out->key, err)) ||
        (rc = mt_json_str_opt(root, "name", DEC_MAX_NAME, &out->name, "", err)) ||
        (rc = mt_json_bool_opt(root, "allow_key_reuse", &out->allow_key_reuse, false, err))) {
        json_decref(root);
        mt_wipe(out, sizeof *out);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->root = root;
    return MT_OK;
}

void dec_fusion_new_free(dec_fusion_new *d)
{
    if (!d)
        return;
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

mt_status dec_fusion_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_fusion_new *out,
                               mt_err *err)
{
    static const char *const keys[] = {"owners", "name", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    mt_status rc;
    if ((rc = user_list(root, "owners", true, DEC_MAX_OWNERS, out->owners, &out->n_owners, err)) ||
        (rc = mt_json_str_opt(root, "name", DEC_MAX_NAME, &out->name, "", err)))
        goto fail;
    if (out->n_owners < 2) {
        rc = mt_err_set(err, MT_EINVAL,
                        "field 'owners': a fusion file needs at least 2 owners (you and "
                        "the other parties)");
        goto fail;
    }
    out->root = root;
    return MT_OK;
fail:
    json_decref(root);
    memset(out, 0, sizeof *out);
    return rc;
}

/* ---- functions --------------------------------------------------------- */

void dec_function_free(dec_function *d)
{
    if (!d)
        return;
    json_decref(d->root);
    if (d->payload) {
        mt_wipe(d->payload, d->payload_len);
        free(d->payload);
    }
    memset(d, 0, sizeof *d);
}

static mt_status fn_args(const json_t *root, dec_function *d, mt_err *err)
{
    static const char *const keys[] = {"name", "default", "overridable", "type", NULL};
    json_t *arr;
    mt_status rc = mt_json_array_opt(root, "arguments", DEC_MAX_SLOTS, &arr, err);
    if (rc || !arr)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        dec_fn_arg *a = &d->args[i];
        if (!json_is_object(v))
            return mt_err_set(err, MT_EINVAL, "field 'arguments' item %zu: expected an object", i);
        if ((rc = mt_json_only_keys(v, keys, err)) ||
            (rc = mt_json_str(v, "name", 64, &a->name, err)) ||
            (rc = mt_json_str_opt(v, "default", DEC_MAX_ARG_VALUE, &a->dflt, "", err)) ||
            (rc = mt_json_bool_opt(v, "overridable", &a->overridable, false, err)) ||
            (rc = mt_json_str_opt(v, "type", 16, &a->type, NULL, err)))
            return item_err(err, rc, "arguments", i);
        if (a->type && strcmp(a->type, "string") && strcmp(a->type, "integer") &&
            strcmp(a->type, "number") && strcmp(a->type, "boolean"))
            return mt_err_set(err, MT_EINVAL,
                              "field 'arguments' item %zu: type must be string, integer, number "
                              "or boolean",
                              i);
        if (!dec_slot_name_valid(a->name))
            return mt_err_set(err, MT_EINVAL,
                              "field 'arguments' item %zu: name must match [A-Za-z0-9_]{1,64}", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(d->args[j].name, a->name))
                return mt_err_set(err, MT_EINVAL, "field 'arguments': '%s' is declared twice",
                                  a->name);
        d->n_args = i + 1;
    }
    return MT_OK;
}

static mt_status fn_slots(const json_t *root, const char *field, dec_fn_slot *s, size_t *n,
                          mt_err *err)
{
    static const char *const keys[] = {"name", "description", "optional", NULL};
    json_t *arr;
    *n = 0;
    mt_status rc = mt_json_array_opt(root, field, DEC_MAX_SLOTS, &arr, err);
    if (rc || !arr)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_object(v))
            return mt_err_set(err, MT_EINVAL, "field '%s' item %zu: expected an object", field, i);
        if ((rc = mt_json_only_keys(v, keys, err)) ||
            (rc = mt_json_str(v, "name", 64, &s[i].name, err)) ||
            (rc = mt_json_str_opt(v, "description", DEC_MAX_DESCRIPTION, &s[i].description, "",
                                  err)) ||
            (rc = mt_json_bool_opt(v, "optional", &s[i].optional, false, err)))
            return item_err(err, rc, field, i);
        if (!dec_slot_name_valid(s[i].name))
            return mt_err_set(err, MT_EINVAL,
                              "field '%s' item %zu: name must match [A-Za-z0-9_]{1,64}", field, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s[j].name, s[i].name))
                return mt_err_set(err, MT_EINVAL, "field '%s': '%s' is declared twice", field,
                                  s[i].name);
        *n = i + 1;
    }
    return MT_OK;
}

mt_status dec_function_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_function *out,
                             mt_err *err)
{
    static const char *const keys[] = {
        "name",      "description", "executor_type", "builtin",     "public", "allowlist",
        "arguments", "inputs",      "outputs",       "usage_quota", "payload", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    out->root = root;
    mt_status rc;
    if ((rc = mt_json_str(root, "name", DEC_MAX_NAME, &out->name, err)) ||
        (rc = mt_json_str_opt(root, "description", DEC_MAX_DESCRIPTION, &out->description, "",
                              err)) ||
        (rc = mt_json_str_opt(root, "executor_type", 32, &out->executor_type, "builtin", err)) ||
        (rc = mt_json_str_opt(root, "builtin", 64, &out->builtin, NULL, err)) ||
        (rc = mt_json_bool_opt(root, "public", &out->public_, true, err)) ||
        (rc = user_list(root, "allowlist", false, DEC_MAX_ALLOWLIST, out->allowlist,
                        &out->n_allowlist, err)) ||
        (rc = fn_args(root, out, err)) ||
        (rc = fn_slots(root, "inputs", out->inputs, &out->n_inputs, err)) ||
        (rc = fn_slots(root, "outputs", out->outputs, &out->n_outputs, err)) ||
        (rc = mt_json_int_opt(root, "usage_quota", 0, INT32_MAX, &out->usage_quota, 0, err)))
        goto fail;
    if (out->name[0] == '\0') {
        rc = mt_err_set(err, MT_EINVAL, "field 'name' must not be empty");
        goto fail;
    }
    /* "python" carries its source as the payload, exactly like a wasm module */
    bool wasm = !strcmp(out->executor_type, "wasm") || !strcmp(out->executor_type, "python");
    if (strcmp(out->executor_type, "builtin") && !wasm) {
        rc = mt_err_set(err, MT_EINVAL,
                        "executor type '%.32s' is not supported; use \"builtin\", \"wasm\" "
                        "or \"python\"",
                        out->executor_type);
        goto fail;
    }
    const char *b64 = NULL;
    if ((rc = mt_json_str_opt(root, "payload", (DEC_MAX_WASM + 2) / 3 * 4, &b64, NULL, err))) {
        if (rc == MT_EINVAL && json_is_string(json_object_get(root, "payload")))
            rc = mt_err_set(err, MT_ETOOBIG, "field 'payload': a module is at most %u bytes",
                            DEC_MAX_WASM);
        goto fail;
    }
    if (wasm) {
        if (out->builtin || !b64) {
            rc = mt_err_set(err, MT_EINVAL,
                            "executor_type \"%s\" takes the module as 'payload' (base64) "
                            "and no 'builtin'", out->executor_type);
            goto fail;
        }
        mt_err derr;
        if (mt_b64_decode(b64, &out->payload, &out->payload_len, &derr) != MT_OK) {
            rc = mt_err_set(err, MT_EINVAL, "field 'payload': not valid base64");
            goto fail;
        }
        if (out->payload_len > DEC_MAX_WASM) {
            rc = mt_err_set(err, MT_ETOOBIG, "field 'payload': a module is at most %u bytes",
                            DEC_MAX_WASM);
            goto fail;
        }
        out->builtin = "";
    } else if (b64) {
        rc = mt_err_set(err, MT_EINVAL,
                        "field 'payload' is only for executor_type \"wasm\" or \"python\"");
        goto fail;
    }
    if (!out->builtin) {
        rc = mt_err_set(err, MT_EINVAL,
                        "field 'builtin' is required for executor_type \"builtin\" "
                        "(e.g. \"echo\", \"psi\")");
        goto fail;
    }
    for (size_t i = 0; i < out->n_inputs; i++)
        for (size_t j = 0; j < out->n_outputs; j++)
            if (!strcmp(out->inputs[i].name, out->outputs[j].name)) {
                rc = mt_err_set(err, MT_EINVAL,
                                "slot '%s' is declared both as an input and as an output",
                                out->inputs[i].name);
                goto fail;
            }
    out->has_description = out->has_public = out->has_allowlist = out->has_quota = out->has_args =
        true;
    return MT_OK;
fail:
    dec_function_free(out);
    return rc;
}

mt_status dec_function_update_parse(const uint8_t *b, size_t n, const dec_limits *l,
                                    dec_function *out, mt_err *err)
{
    static const char *const keys[] = {"description", "public",    "allowlist",
                                       "usage_quota", "arguments", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    out->root = root;
    mt_status rc;
    if ((rc = mt_json_str_opt(root, "description", DEC_MAX_DESCRIPTION, &out->description, NULL,
                              err)) ||
        (rc = mt_json_bool_opt(root, "public", &out->public_, false, err)) ||
        (rc = user_list(root, "allowlist", false, DEC_MAX_ALLOWLIST, out->allowlist,
                        &out->n_allowlist, err)) ||
        (rc = fn_args(root, out, err)) ||
        (rc = mt_json_int_opt(root, "usage_quota", 0, INT32_MAX, &out->usage_quota, 0, err)))
        goto fail;
    out->has_description = out->description != NULL;
    out->has_public = json_is_boolean(json_object_get(root, "public"));
    out->has_allowlist = json_is_array(json_object_get(root, "allowlist"));
    out->has_quota = json_is_integer(json_object_get(root, "usage_quota"));
    out->has_args = json_is_array(json_object_get(root, "arguments"));
    if (json_object_size(root) == 0) {
        rc = mt_err_set(err, MT_EINVAL,
                        "nothing to update: give description, public, allowlist, "
                        "usage_quota or arguments");
        goto fail;
    }
    return MT_OK;
fail:
    dec_function_free(out);
    return rc;
}

json_t *dec_function_args_json(const dec_function *d)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < d->n_args; i++) {
        json_t *o = json_pack("{s:s, s:s, s:b}", "name", d->args[i].name, "default",
                              d->args[i].dflt, "overridable", d->args[i].overridable);
        /* only when declared: rows of untyped functions keep their exact text */
        if (o && d->args[i].type)
            json_object_set_new(o, "type", json_string(d->args[i].type));
        json_array_append_new(a, o);
    }
    return a;
}

json_t *dec_function_slots_json(const dec_fn_slot *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "name", s[i].name, "description",
                                           s[i].description, "optional", s[i].optional));
    return a;
}

/* ---- tasks ------------------------------------------------------------- */

void dec_task_new_free(dec_task_new *d)
{
    if (!d)
        return;
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

static mt_status ownership(const json_t *root, const char *field, dec_ownership *o, size_t *n,
                           mt_err *err)
{
    static const char *const keys[] = {"name", "owners", NULL};
    json_t *arr;
    *n = 0;
    mt_status rc = mt_json_array_opt(root, field, DEC_MAX_SLOTS, &arr, err);
    if (rc || !arr)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_object(v))
            return mt_err_set(err, MT_EINVAL, "field '%s' item %zu: expected an object", field, i);
        if ((rc = mt_json_only_keys(v, keys, err)) ||
            (rc = mt_json_str(v, "name", 64, &o[i].name, err)) ||
            (rc = user_list(v, "owners", true, DEC_MAX_OWNERS, o[i].owners, &o[i].n_owners, err)))
            return item_err(err, rc, field, i);
        if (!dec_slot_name_valid(o[i].name))
            return mt_err_set(err, MT_EINVAL,
                              "field '%s' item %zu: name must match [A-Za-z0-9_]{1,64}", field, i);
        if (o[i].n_owners == 0)
            return mt_err_set(err, MT_EINVAL, "field '%s' item %zu: owners must not be empty",
                              field, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(o[j].name, o[i].name))
                return mt_err_set(err, MT_EINVAL, "field '%s': slot '%s' is listed twice", field,
                                  o[i].name);
        *n = i + 1;
    }
    return MT_OK;
}

mt_status dec_task_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_task_new *out,
                             mt_err *err)
{
    static const char *const keys[] = {"function_id", "arguments", "inputs", "outputs", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    out->root = root;
    mt_status rc;
    json_t *args;
    if ((rc = mt_json_str(root, "function_id", MT_ID_LEN, &out->function_id, err)) ||
        (rc = mt_json_object_opt(root, "arguments", DEC_MAX_SLOTS, &args, err)) ||
        (rc = ownership(root, "inputs", out->inputs, &out->n_inputs, err)) ||
        (rc = ownership(root, "outputs", out->outputs, &out->n_outputs, err)))
        goto fail;
    if (!mt_id_valid(out->function_id)) {
        rc = mt_err_set(err, MT_EINVAL, "field 'function_id': expected a 32-hex function id");
        goto fail;
    }
    for (size_t i = 0; i < out->n_inputs; i++)
        for (size_t j = 0; j < out->n_outputs; j++)
            if (!strcmp(out->inputs[i].name, out->outputs[j].name)) {
                rc = mt_err_set(err, MT_EINVAL, "slot '%s' is listed as input and output",
                                out->inputs[i].name);
                goto fail;
            }
    if (!args) {
        args = json_object();
        if (!args || json_object_set_new(root, "arguments", args)) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto fail;
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(args, k, v)
    {
        if (!dec_slot_name_valid(k)) {
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'arguments': name '%.64s' must match [A-Za-z0-9_]{1,64}", k);
            goto fail;
        }
        if (!json_is_string(v) || json_string_length(v) > DEC_MAX_ARG_VALUE ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'arguments': value of '%s' must be a string of at most %d "
                            "bytes",
                            k, DEC_MAX_ARG_VALUE);
            goto fail;
        }
    }
    out->arguments = args;
    return MT_OK;
fail:
    dec_task_new_free(out);
    return rc;
}

void dec_assign_free(dec_assign *d)
{
    if (!d)
        return;
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

static mt_status bindings(const json_t *root, const char *field, dec_binding *bd, size_t *n,
                          mt_err *err)
{
    json_t *obj;
    *n = 0;
    mt_status rc = mt_json_object_opt(root, field, DEC_MAX_SLOTS, &obj, err);
    if (rc || !obj)
        return rc;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!dec_slot_name_valid(k))
            return mt_err_set(err, MT_EINVAL,
                              "field '%s': slot '%.64s' must match [A-Za-z0-9_]{1,64}", field, k);
        if (!json_is_string(v) || !mt_id_valid(json_string_value(v)))
            return mt_err_set(err, MT_EINVAL, "field '%s': value of '%s' must be a file id", field,
                              k);
        bd[*n].slot = k;
        bd[*n].file_id = json_string_value(v);
        (*n)++;
    }
    return MT_OK;
}

mt_status dec_assign_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_assign *out,
                           mt_err *err)
{
    static const char *const keys[] = {"inputs", "outputs", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    out->root = root;
    mt_status rc;
    if ((rc = bindings(root, "inputs", out->inputs, &out->n_inputs, err)) ||
        (rc = bindings(root, "outputs", out->outputs, &out->n_outputs, err)))
        goto fail;
    if (out->n_inputs + out->n_outputs == 0) {
        rc = mt_err_set(err, MT_EINVAL,
                        "nothing to assign: give inputs and/or outputs as {slot: file_id}");
        goto fail;
    }
    return MT_OK;
fail:
    dec_assign_free(out);
    return rc;
}

mt_status dec_empty_body(const uint8_t *b, size_t n, const dec_limits *l, mt_err *err)
{
    if (n == 0)
        return MT_OK;
    static const char *const keys[] = {NULL};
    json_t *root;
    mt_status prc = parse_object(b, n, l, keys, &root, err);
    if (prc)
        return prc;
    json_decref(root);
    return MT_OK;
}

bool dec_u63(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

mt_status dec_checkpoint_query_parse(const char *query, bool *has, int64_t *entries,
                                     mt_err *err)
{
    *has = false;
    *entries = 0;
    if (!query || !*query)
        return MT_OK;
    size_t n = strnlen(query, 64);
    if (n < 9 || n >= 64 || strncmp(query, "entries=", 8) != 0 ||
        !dec_u63(query + 8, n - 8, entries))
        return mt_err_set(err, MT_EINVAL, "query: expected entries=N (a number of entries)");
    *has = true;
    return MT_OK;
}

mt_status dec_audit_query_parse(const char *query, dec_audit_query *out, mt_err *err)
{
    out->after = 0;
    out->limit = 100;
    if (!query || !*query)
        return MT_OK;
    if (strlen(query) > 256)
        return mt_err_set(err, MT_EINVAL, "query string too long");
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return mt_err_set(err, MT_EINVAL, "query: expected after=SEQ&limit=N");
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        int64_t v;
        if (klen == 5 && !strncmp(p, "after", 5)) {
            if (!dec_u63(eq + 1, vlen, &v))
                return mt_err_set(err, MT_EINVAL, "query 'after': expected a sequence number");
            out->after = v;
        } else if (klen == 5 && !strncmp(p, "limit", 5)) {
            if (!dec_u63(eq + 1, vlen, &v) || v < 1 || v > 1000)
                return mt_err_set(err, MT_EINVAL, "query 'limit': expected 1 to 1000");
            out->limit = v;
        } else
            return mt_err_set(err, MT_EINVAL,
                              "query: unknown parameter (expected after and limit)");
        p += len;
        if (*p == '&')
            p++;
    }
    return MT_OK;
}

/* ---- user lifecycle (issue 9) ------------------------------------------- */

void dec_password_free(dec_password *d)
{
    if (!d)
        return;
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

mt_status dec_password_parse(const uint8_t *b, size_t n, const dec_limits *l, bool need_old,
                             dec_password *out, mt_err *err)
{
    static const char *const keys_self[] = {"old_password", "new_password", NULL};
    static const char *const keys_reset[] = {"password", NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status prc = parse_object(b, n, l, need_old ? keys_self : keys_reset, &root, err);
    if (prc)
        return prc;
    const char *field = need_old ? "new_password" : "password";
    mt_status rc;
    if ((need_old &&
         (rc = mt_json_str(root, "old_password", MT_PASSWORD_MAX, &out->old_password, err))) ||
        (rc = mt_json_str(root, field, MT_PASSWORD_MAX, &out->password, err)))
        goto fail;
    if (strlen(out->password) < MT_PASSWORD_MIN) {
        rc = mt_err_set(err, MT_EINVAL, "field '%s': use at least %d characters", field,
                        MT_PASSWORD_MIN);
        goto fail;
    }
    out->root = root;
    return MT_OK;
fail:
    json_decref(root);
    memset(out, 0, sizeof *out);
    return rc;
}

mt_status dec_audit_prune_parse(const uint8_t *b, size_t n, const dec_limits *l,
                                dec_audit_prune *out, mt_err *err)
{
    static const char *const keys[] = {"before", "export_first", "export_last", "export_head",
                                       NULL};
    memset(out, 0, sizeof *out);
    json_t *root;
    mt_status rc = parse_object(b, n, l, keys, &root, err);
    if (rc)
        return rc;
    const char *head = NULL;
    if ((rc = mt_json_int(root, "before", 2, INT64_MAX, &out->before, err)) ||
        (rc = mt_json_int(root, "export_first", 1, INT64_MAX, &out->export_first, err)) ||
        (rc = mt_json_int(root, "export_last", 1, INT64_MAX, &out->export_last, err)) ||
        (rc = mt_json_str(root, "export_head", 64, &head, err)))
        goto fail;
    bool hex = strlen(head) == 64;
    for (const char *p = head; hex && *p; p++)
        hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    if (!hex) {
        rc = mt_err_set(err, MT_EINVAL, "field 'export_head': 64 lowercase hex digits");
        goto fail;
    }
    if (out->export_last < out->export_first) {
        rc = mt_err_set(err, MT_EINVAL, "field 'export_last': before export_first");
        goto fail;
    }
    memcpy(out->export_head, head, 65);
    json_decref(root);
    return MT_OK;
fail:
    json_decref(root);
    memset(out, 0, sizeof *out);
    return rc;
}
