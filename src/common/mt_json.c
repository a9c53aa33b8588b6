#include "mt_json.h"

#include <stdlib.h>
#include <string.h>

json_t *mt_json_parse(const char *buf, size_t len, size_t max_len, size_t max_depth,
                      mt_err *err)
{
    if (len > max_len) {
        mt_err_set(err, MT_ETOOBIG, "JSON body of %zu bytes exceeds the limit of %zu", len,
                   max_len);
        return NULL;
    }
    if (len == 0) {
        mt_err_set(err, MT_EINVAL, "empty body: expected a JSON object");
        return NULL;
    }
    /* Depth and NUL scan: strings are skipped so brackets inside them do not count. */
    size_t depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\0') {
            mt_err_set(err, MT_EINVAL, "JSON contains a NUL byte at offset %zu", i);
            return NULL;
        }
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                mt_err_set(err, MT_EINVAL, "JSON nesting deeper than %zu at offset %zu",
                           max_depth, i);
                return NULL;
            }
        } else if ((c == '}' || c == ']') && depth > 0)
            depth--;
    }
    json_error_t je;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v) {
        mt_err_set(err, MT_EINVAL, "malformed JSON at line %d column %d: %s", je.line,
                   je.column, je.text);
        return NULL;
    }
    return v;
}

static const json_t *field(const json_t *obj, const char *key)
{
    if (!json_is_object(obj))
        return NULL;
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

mt_status mt_json_str_opt(const json_t *obj, const char *key, size_t max_len, const char **out,
                          const char *dflt, mt_err *err)
{
    const json_t *v = field(obj, key);
    *out = dflt;
    if (!v)
        return MT_OK;
    if (!json_is_string(v) || json_string_length(v) > max_len ||
        strlen(json_string_value(v)) != json_string_length(v))
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': expected a string of at most %zu bytes without NUL", key,
                          max_len);
    *out = json_string_value(v);
    return MT_OK;
}

mt_status mt_json_str(const json_t *obj, const char *key, size_t max_len, const char **out,
                      mt_err *err)
{
    if (!field(obj, key))
        return mt_err_set(err, MT_EINVAL, "field '%s' is required", key);
    return mt_json_str_opt(obj, key, max_len, out, NULL, err);
}

mt_status mt_json_int_opt(const json_t *obj, const char *key, int64_t min, int64_t max,
                          int64_t *out, int64_t dflt, mt_err *err)
{
    const json_t *v = field(obj, key);
    *out = dflt;
    if (!v)
        return MT_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected an integer in [%lld, %lld]",
                          key, (long long)min, (long long)max);
    *out = json_integer_value(v);
    return MT_OK;
}

mt_status mt_json_int(const json_t *obj, const char *key, int64_t min, int64_t max,
                      int64_t *out, mt_err *err)
{
    if (!field(obj, key))
        return mt_err_set(err, MT_EINVAL, "field '%s' is required", key);
    return mt_json_int_opt(obj, key, min, max, out, 0, err);
}

mt_status mt_json_bool_opt(const json_t *obj, const char *key, bool *out, bool dflt,
                           mt_err *err)
{
    const json_t *v = field(obj, key);
    *out = dflt;
    if (!v)
        return MT_OK;
    if (!json_is_boolean(v))
        return mt_err_set(err, MT_EINVAL, "field '%s': expected true or false", key);
    *out = json_is_true(v);
    return MT_OK;
}

mt_status mt_json_array_opt(const json_t *obj, const char *key, size_t max_items,
                            json_t **out, mt_err *err)
{
    json_t *v = (json_t *)field(obj, key);
    *out = NULL;
    if (!v)
        return MT_OK;
    if (!json_is_array(v) || json_array_size(v) > max_items)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected an array of at most %zu items",
                          key, max_items);
    *out = v;
    return MT_OK;
}

mt_status mt_json_array(const json_t *obj, const char *key, size_t max_items, json_t **out,
                        mt_err *err)
{
    if (!field(obj, key)) {
        *out = NULL;
        return mt_err_set(err, MT_EINVAL, "field '%s' is required", key);
    }
    return mt_json_array_opt(obj, key, max_items, out, err);
}

mt_status mt_json_object_opt(const json_t *obj, const char *key, size_t max_items,
                             json_t **out, mt_err *err)
{
    json_t *v = (json_t *)field(obj, key);
    *out = NULL;
    if (!v)
        return MT_OK;
    if (!json_is_object(v) || json_object_size(v) > max_items)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected an object of at most %zu keys",
                          key, max_items);
    *out = v;
    return MT_OK;
}

mt_status mt_json_only_keys(const json_t *obj, const char *const *allowed, mt_err *err)
{
    if (!json_is_object(obj))
        return mt_err_set(err, MT_EINVAL, "expected a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, k)) {
                ok = true;
                break;
            }
        if (!ok)
            return mt_err_set(err, MT_EINVAL, "unknown field '%.64s'", k);
    }
    return MT_OK;
}

char *mt_json_dump(const json_t *v) { return json_dumps(v, JSON_COMPACT); }
