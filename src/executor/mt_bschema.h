/* mt_bschema: the argument and slot schema of every built-in function, and
 * of the reserved arguments of "wasm" functions. ONE table (builtin_schema.c)
 * read by three parties:
 *  - the core (daemon) checks a function's declared arguments and slot counts
 *    when it is registered or updated, and a task's arguments (defaults merged
 *    with overrides) when the task is created, so a bad argument fails before
 *    any party approves;
 *  - the worker checks the job's arguments against it before the built-in
 *    runs (the built-ins still parse their own values: defence in depth);
 *  - GET /v1/builtins (`mesatee function builtins`) lists it.
 * The library is small on purpose (mt_common + jansson): the daemon links it
 * without the built-ins' heavy dependencies. A unit test keeps the table and
 * the worker's registry (builtins.c) in step.
 *
 * Argument values are strings (the REST API's task arguments). Error
 * messages name the function and the argument, never the value: a task's
 * failure reason is read by every participant.
 * Thread-safety: everything is read-only after load; reentrant. */
#ifndef MT_BSCHEMA_H
#define MT_BSCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef enum {
    MT_BARG_STRING,      /* any string up to max_len bytes (0: 4096) */
    MT_BARG_INT,         /* decimal integer in [imin, imax] */
    MT_BARG_NUMBER,      /* finite decimal number in [dmin, dmax] */
    MT_BARG_BOOL,        /* "true" or "false" */
    MT_BARG_ENUM,        /* one of choices */
    MT_BARG_INPUT_SLOT,  /* the name of one of the function's input slots */
    MT_BARG_OUTPUT_SLOT, /* the name of one of the function's output slots */
    MT_BARG_KEYSTORE_KEY, /* "" (none) or a KeyStore key "OWNER/NAME" that the scheduler
                            loads for the built-in (docs/keystore.md, "Keys in tasks"); its version
                            is the argument NAME_version when declared (0: latest) */
} mt_barg_type;

typedef struct mt_barg {
    const char *name;
    mt_barg_type type;
    bool required;          /* must be present and non-empty in a task's arguments */
    const char *dflt;       /* the built-in's default, for documentation; NULL = none */
    int64_t imin, imax;     /* MT_BARG_INT */
    double dmin, dmax;      /* MT_BARG_NUMBER */
    const char *const *choices; /* MT_BARG_ENUM, NULL-terminated */
    size_t max_len;         /* MT_BARG_STRING: 0 = 4096 */
    const char *help;
} mt_barg;

#define MT_BSLOTS_ANY UINT32_MAX

typedef struct mt_bschema {
    const char *name;
    const char *summary;
    const mt_barg *args;
    size_t n_args;
    bool open_args;         /* other argument names are allowed (wasm) */
    uint32_t min_inputs, max_inputs;   /* declared input slots */
    uint32_t min_outputs, max_outputs; /* declared output slots */
    bool outputs_by_role;   /* every output must be named by an OUTPUT_SLOT argument */
    const char *inputs_help, *outputs_help, *returns_help;
} mt_bschema;

/* The built-ins, in table order (the "__test_*" ones of the test worker are
 * not in it and are not checked). */
size_t mt_bschema_count(void);
const mt_bschema *mt_bschema_at(size_t i);
/* The built-in called name, or NULL. */
const mt_bschema *mt_bschema_find(const char *name);
/* The reserved task arguments of "wasm" functions (wasm_fuel, ...); any
 * other name is the function's own (open_args). */
const mt_bschema *mt_bschema_wasm(void);
/* The reserved task arguments of "python" functions (python_max_output_mb);
 * any other name not starting with "python_" is the function's own. */
const mt_bschema *mt_bschema_python(void);
/* The top-level modules a python function may import (NULL-terminated). */
const char *const *mt_bschema_python_modules(void);
/* The declaration of argument name, or NULL. */
const mt_barg *mt_bschema_arg(const mt_bschema *s, const char *name);

/* Checks one value against its declaration: MT_EINVAL "argument 'NAME':
 * expected ..." (the value is never quoted). Slot arguments are only checked
 * for the slot-name format here (mt_bschema_check_slots checks they exist). */
mt_status mt_bschema_check_value(const mt_barg *a, const char *v, mt_err *err);

/* Checks an object of arguments (name -> string): every name is declared
 * (or open_args and not a reserved "wasm_" name), every value valid; when
 * complete, every required argument is present and non-empty. */
mt_status mt_bschema_check_args(const mt_bschema *s, const json_t *args, bool complete,
                                mt_err *err);

/* Registration: decls is a function's argument declarations, an array of
 * {"name", "default", "overridable"}. Every name must be declared by the
 * schema (unless open_args); a default is checked unless it is "" and
 * overridable (then each task sets it); a required argument must be
 * declared. n_inputs/n_outputs: the function's declared slot counts. */
mt_status mt_bschema_check_decl(const mt_bschema *s, const json_t *decls, size_t n_inputs,
                                size_t n_outputs, mt_err *err);

/* Functions with open_args (wasm) may declare a type per argument
 * ({"name", "type": "string"|"integer"|"number"|"boolean"} in decls): the
 * defaults are checked by mt_bschema_check_decl, the task's merged values
 * (args) here. Built-in arguments take their type from the schema (a declared
 * type is refused). */
mt_status mt_bschema_check_typed(const json_t *decls, const json_t *args, mt_err *err);

/* Task creation: the merged arguments' slot arguments must name one of the
 * function's declared slots (inputs / outputs: arrays of {"name"}), and with
 * outputs_by_role every output must be named by one of them. */
mt_status mt_bschema_check_slots(const mt_bschema *s, const json_t *args, const json_t *inputs,
                                 const json_t *outputs, mt_err *err);

/* The schema as JSON (new reference; NULL when out of memory):
 * {name, summary, arguments:[{name,type,required,default?,min?,max?,choices?,
 *  max_length?,description}], inputs:{min,max|null,description},
 *  outputs:{min,max|null,description,by_role}, returns}. */
json_t *mt_bschema_json(const mt_bschema *s);
/* Name of a type ("string", "integer", "number", "boolean", "enum",
 * "input_slot", "output_slot", "keystore_key"). */
const char *mt_bschema_type_name(mt_barg_type t);

/* Parses s as a strict decimal integer (optional sign, digits, no spaces)
 * fitting int64; false otherwise. The built-ins' integer reader too. */
bool mt_int_parse(const char *s, int64_t *out);

/* Splits a MT_BARG_KEYSTORE_KEY value "OWNER/NAME" or "OWNER:NAME" (OWNER a user name
 * [A-Za-z0-9_.-]{1,64}, NAME [A-Za-z0-9_.-]{1,128}) into owner and name
 * (NUL-terminated); false when v has another form. */
bool mt_bschema_key_split(const char *v, char owner[65], char name[129]);

#endif
