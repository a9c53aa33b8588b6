/* api_decode: pure decoders from request body bytes to validated C structs.
 * No database, no I/O: each decoder runs the bounded JSON reader (size and
 * depth limits, no duplicate keys, no trailing bytes), refuses unknown
 * fields, checks types, lengths and formats (names, ids, keys, URLs) and
 * returns MT_EINVAL (or MT_ETOOBIG) with a message naming the field.
 * These are the functions fuzz/api_decode.c drives.
 *
 * Ownership: every decoded struct holds the parsed JSON (root); its strings
 * point into it. Release with the matching *_free (NULL-safe, wipes keys and
 * passwords). On error the struct is left empty (freeing it is still fine).
 * Thread-safety: reentrant. */
#ifndef MT_API_DECODE_H
#define MT_API_DECODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define DEC_MAX_SLOTS 64  /* arguments, inputs or outputs of a function */
#define DEC_MAX_OWNERS 64 /* owners of one file or slot */
#define DEC_MAX_ALLOWLIST 1024
#define DEC_MAX_NAME 128 /* function / file display names */
#define DEC_MAX_DESCRIPTION 4096
#define DEC_MAX_ARG_VALUE 4096
#define DEC_MAX_URL 2048
#define DEC_MAX_WASM (8u * 1024 * 1024) /* module bytes of a "wasm" function */

typedef struct dec_limits {
    size_t max_bytes;
    size_t max_depth;
} dec_limits;

/* Format checks shared with handlers. */
bool dec_username_valid(const char *s);   /* [a-z0-9_.-]{1,64} */
bool dec_slot_name_valid(const char *s);  /* [A-Za-z0-9_]{1,64} */
bool dec_key_hex_valid(const char *s);    /* 64 lower-case hex */
bool dec_sha256_hex_valid(const char *s); /* 64 lower-case hex */
/* Reads s[0..len) as a non-negative decimal of 1..18 digits (no sign, no
 * space) into *out; false (out untouched) for anything else. */
bool dec_u63(const char *s, size_t len, int64_t *out);

/* POST /v1/auth/login and POST /v1/users */
typedef struct dec_login {
    json_t *root;
    const char *username, *password;
} dec_login;
mt_status dec_login_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_login *out,
                          mt_err *err);
void dec_login_free(dec_login *d);

typedef struct dec_user_new {
    json_t *root;
    const char *username, *password, *role; /* role "user" (default) or "admin" */
} dec_user_new;
mt_status dec_user_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_user_new *out,
                             mt_err *err);
void dec_user_new_free(dec_user_new *d);

/* POST /v1/users/me/password {old_password, new_password} (need_old) and
 * POST /v1/users/{name}/password {password} (admin reset). The new password
 * has at least MT_PASSWORD_MIN characters; .password is the new one. */
typedef struct dec_password {
    json_t *root;
    const char *old_password, *password;
} dec_password;
mt_status dec_password_parse(const uint8_t *b, size_t n, const dec_limits *l, bool need_old,
                             dec_password *out, mt_err *err);
void dec_password_free(dec_password *d);

/* POST /v1/files/inputs */
typedef enum { DEC_URL_OBJECT, DEC_URL_FILE, DEC_URL_HTTPS } dec_url_kind;
typedef struct dec_input_new {
    json_t *root;
    const char *url;
    dec_url_kind url_kind;
    char object_id[33]; /* for mesatee://objects/<id> */
    uint8_t key[32];
    bool has_sha256;
    const char *sha256;
    const char *name; /* "" when absent */
} dec_input_new;
mt_status dec_input_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_input_new *out,
                              mt_err *err);
void dec_input_new_free(dec_input_new *d);

/* POST /v1/files/outputs */
typedef struct dec_output_new {
    json_t *root;
    uint8_t key[32];
    const char *name;
    bool allow_key_reuse; /* "allow_key_reuse": true: the key may already be another output's */
} dec_output_new;
mt_status dec_output_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_output_new *out,
                               mt_err *err);
void dec_output_new_free(dec_output_new *d);

/* POST /v1/files/fusion: owners unique, valid usernames, at least 2. */
typedef struct dec_fusion_new {
    json_t *root;
    const char *owners[DEC_MAX_OWNERS];
    size_t n_owners;
    const char *name;
} dec_fusion_new;
mt_status dec_fusion_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_fusion_new *out,
                               mt_err *err);
void dec_fusion_new_free(dec_fusion_new *d);

/* POST /v1/functions, PUT /v1/functions/{id} */
typedef struct dec_fn_arg {
    const char *name, *dflt;
    bool overridable;
    const char *type; /* wasm functions: "string", "integer", "number", "boolean"; NULL = any */
} dec_fn_arg;
typedef struct dec_fn_slot {
    const char *name, *description;
    bool optional;
} dec_fn_slot;
typedef struct dec_function {
    json_t *root;
    const char *name, *description, *executor_type, *builtin;
    uint8_t *payload; /* "wasm": the module (base64 "payload" decoded; heap) */
    size_t payload_len;
    bool public_;
    const char *allowlist[DEC_MAX_ALLOWLIST];
    size_t n_allowlist;
    dec_fn_arg args[DEC_MAX_SLOTS];
    size_t n_args;
    dec_fn_slot inputs[DEC_MAX_SLOTS];
    size_t n_inputs;
    dec_fn_slot outputs[DEC_MAX_SLOTS];
    size_t n_outputs;
    int64_t usage_quota;
    /* update only: which fields were present */
    bool has_description, has_public, has_allowlist, has_quota, has_args;
} dec_function;
mt_status dec_function_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_function *out,
                             mt_err *err);
mt_status dec_function_update_parse(const uint8_t *b, size_t n, const dec_limits *l,
                                    dec_function *out, mt_err *err);
void dec_function_free(dec_function *d);
/* The canonical JSON arrays stored for a function (new references). */
json_t *dec_function_args_json(const dec_function *d);
json_t *dec_function_slots_json(const dec_fn_slot *s, size_t n);

/* POST /v1/tasks */
typedef struct dec_ownership {
    const char *name;
    const char *owners[DEC_MAX_OWNERS];
    size_t n_owners;
} dec_ownership;
typedef struct dec_task_new {
    json_t *root;
    const char *function_id;
    json_t *arguments; /* borrowed object of strings (may be empty, never NULL) */
    dec_ownership inputs[DEC_MAX_SLOTS];
    size_t n_inputs;
    dec_ownership outputs[DEC_MAX_SLOTS];
    size_t n_outputs;
} dec_task_new;
mt_status dec_task_new_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_task_new *out,
                             mt_err *err);
void dec_task_new_free(dec_task_new *d);

/* POST /v1/tasks/{id}/assign */
typedef struct dec_binding {
    const char *slot, *file_id;
} dec_binding;
typedef struct dec_assign {
    json_t *root;
    dec_binding inputs[DEC_MAX_SLOTS];
    size_t n_inputs;
    dec_binding outputs[DEC_MAX_SLOTS];
    size_t n_outputs;
} dec_assign;
mt_status dec_assign_parse(const uint8_t *b, size_t n, const dec_limits *l, dec_assign *out,
                           mt_err *err);
void dec_assign_free(dec_assign *d);

/* Routes without a body accept an empty body or "{}". */
mt_status dec_empty_body(const uint8_t *b, size_t n, const dec_limits *l, mt_err *err);

/* GET /v1/audit?after=SEQ&limit=N (both optional; limit 1..1000, default 100). */
typedef struct dec_audit_query {
    int64_t after;
    int64_t limit;
} dec_audit_query;
mt_status dec_audit_query_parse(const char *query, dec_audit_query *out, mt_err *err);
/* GET /v1/audit/checkpoint?entries=N (optional; *has false when absent). */
mt_status dec_checkpoint_query_parse(const char *query, bool *has, int64_t *entries,
                                     mt_err *err);

/* POST /v1/audit/prune {before, export_first, export_last, export_head}:
 * before >= 2; export_first >= 1, export_last >= export_first; export_head
 * 64 lowercase hex (the hash of entry export_last in the operator's export). */
typedef struct dec_audit_prune {
    int64_t before, export_first, export_last;
    char export_head[65];
} dec_audit_prune;
mt_status dec_audit_prune_parse(const uint8_t *b, size_t n, const dec_limits *l,
                                dec_audit_prune *out, mt_err *err);

#endif
