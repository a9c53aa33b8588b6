/* mt_json: the one bounded reader for JSON from outside (request bodies,
 * config, worker messages), on top of jansson.
 *
 * mt_json_parse refuses input over a size limit, nesting deeper than a depth
 * limit (checked by a scan before jansson sees the bytes), NUL bytes, duplicate
 * object keys and trailing bytes. The typed getters return MT_EINVAL with a
 * message naming the field ("field 'name': expected a string of at most 128
 * bytes") so handlers never touch unvalidated json_t values.
 * Ownership: mt_json_parse returns a new reference (json_decref it). Getter
 * string outputs point into the json_t and live as long as it does.
 * Thread-safety: reentrant. */
#ifndef MT_JSON_H
#define MT_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_JSON_DEFAULT_DEPTH 32

json_t *mt_json_parse(const char *buf, size_t len, size_t max_len, size_t max_depth,
                      mt_err *err);

/* Required/optional typed fields. For optional getters a missing (or JSON
 * null) field leaves *out at the given default and returns MT_OK. */
mt_status mt_json_str(const json_t *obj, const char *key, size_t max_len, const char **out,
                      mt_err *err);
mt_status mt_json_str_opt(const json_t *obj, const char *key, size_t max_len, const char **out,
                          const char *dflt, mt_err *err);
mt_status mt_json_int(const json_t *obj, const char *key, int64_t min, int64_t max,
                      int64_t *out, mt_err *err);
mt_status mt_json_int_opt(const json_t *obj, const char *key, int64_t min, int64_t max,
                          int64_t *out, int64_t dflt, mt_err *err);
mt_status mt_json_bool_opt(const json_t *obj, const char *key, bool *out, bool dflt,
                           mt_err *err);
/* An array (max_items at most); *out borrowed. Optional: *out NULL if absent. */
mt_status mt_json_array(const json_t *obj, const char *key, size_t max_items, json_t **out,
                        mt_err *err);
mt_status mt_json_array_opt(const json_t *obj, const char *key, size_t max_items,
                            json_t **out, mt_err *err);
mt_status mt_json_object_opt(const json_t *obj, const char *key, size_t max_items,
                             json_t **out, mt_err *err);
/* Fails with MT_EINVAL naming the first key of obj that is not in the
 * NULL-terminated list allowed. */
mt_status mt_json_only_keys(const json_t *obj, const char *const *allowed, mt_err *err);

/* Serialises compactly; heap string (free()), NULL on allocation failure. */
char *mt_json_dump(const json_t *v);

#endif
