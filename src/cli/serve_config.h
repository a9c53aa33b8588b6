/* serve_config: the daemon's settings (`mesatee serve`, `mesatee measure`)
 * in one parsed structure, each with the source it came from.
 *
 * Keys are exactly the long flags of `mesatee serve` (serve_config_key_*),
 * e.g. `data-dir`, `task-wall-s`; in the file and in key lookups '_' may
 * stand for '-' (`task_wall_s`). Sources, lowest first: the built-in default
 * (not stored: each key documents its default for --print-config), the
 * configuration file (INI, read with libinih: serve_config_parse_file), the
 * environment (MESATEE_<KEY> upper-case with '_': serve_config_apply_env),
 * the command line (serve_config_set with SC_SRC_FLAG). A value from a higher
 * source replaces one from a lower source; a repeatable key (fetch-allow)
 * collects its values from the highest source that gives any.
 *
 * Values are validated when set (numbers in range, enumerations, booleans
 * true|false|yes|no|on|off|1|0, strings non-empty UTF-8, at most
 * SC_VALUE_MAX bytes, no control characters) and stored in canonical form
 * (decimal numbers without sign or leading zeros, "true"/"false").
 *
 * The file (the outside input this module reads; fuzz/serve_config.c):
 * UTF-8 text of at most SC_FILE_MAX bytes without NUL bytes, lines of at most
 * SC_LINE_MAX bytes; `key = value` lines; comments start a line with '#' or
 * ';' (or follow a value after " ;"); keys before any section apply, as do
 * keys in the section named after the command ([serve], [executor]); keys
 * in the other command's section are skipped (not checked); any other
 * section is refused. A key may appear once unless repeatable. A file with
 * any error is refused whole: nothing of it is applied.
 *
 * Ownership: serve_config_new / serve_config_free; strings returned by the
 * getters live until the next change of that key or the free.
 * Errors: MT_EINVAL with a message naming the key (as the source spells it:
 * "--workers", "MESATEE_WORKERS", "workers") and, for the file, *line set to
 * the line at fault; MT_ENOMEM.
 * Thread-safety: none (one thread builds and reads a structure).
 */
#ifndef MT_SERVE_CONFIG_H
#define MT_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define SC_FILE_MAX (64 * 1024)
#define SC_LINE_MAX 196 /* libinih's line buffer (200) less CR, LF, NUL */
#define SC_VALUE_MAX 1023
#define SC_MAX_VALUES 32 /* values of one repeatable key */
#define SC_ORIGIN_MAX 320

typedef enum { SC_SRC_DEFAULT = 0, SC_SRC_FILE, SC_SRC_ENV, SC_SRC_FLAG } sc_source;

typedef struct serve_config serve_config;

/* A new structure for command "serve" (also used by `measure`) or
 * "executor" (its own keys: the long options of `mesatee executor`) with
 * every key at its default; NULL when out of memory or the command is
 * unknown. */
serve_config *serve_config_new(const char *command);
void serve_config_free(serve_config *c);

/* The i-th key of c's command (static string), NULL past the last. */
const char *serve_config_key_at(const serve_config *c, size_t i);
/* True if name ('-' or '_') is a key of c's command. */
bool serve_config_key_known(const serve_config *c, const char *name);

/* Sets key name from source src. label is how the source spells the key in
 * messages ("--workers"); origin is what --print-config shows as the source
 * detail ("/etc/mesatee/mesatee.conf:3", "MESATEE_WORKERS", "--workers").
 * value NULL means "true" (a flag without a value). A lower source than the
 * key's current one is ignored (MT_OK). On error the key is unchanged. */
mt_status serve_config_set(serve_config *c, const char *name, const char *value, sc_source src,
                           const char *label, const char *origin, mt_err *err);

/* Parses the configuration file text (len bytes, from path, used in origins)
 * and applies it; all or nothing. On error *line is the line at fault (0 for
 * reasons of the whole file). */
mt_status serve_config_parse_file(serve_config *c, const char *path, const char *text,
                                  size_t len, int *line, mt_err *err);

/* Applies MESATEE_<KEY> variables through getenv_fn (getenv, or a test's);
 * empty variables count as unset. */
mt_status serve_config_apply_env(serve_config *c, const char *(*getenv_fn)(const char *name),
                                 mt_err *err);

/* The value of a key set by some source (canonical text; a repeatable key's
 * values joined with ','), or NULL when it is at its default. */
const char *serve_config_get(const serve_config *c, const char *name);
/* A boolean key: true only if set to true. */
bool serve_config_bool(const serve_config *c, const char *name);
/* A numeric key, or dflt when at its default. */
uint64_t serve_config_u64(const serve_config *c, const char *name, uint64_t dflt);
/* Where the key's value came from (SC_SRC_DEFAULT when not set), and the
 * detail (NULL for the default). */
sc_source serve_config_source(const serve_config *c, const char *name, const char **origin);
/* The path of the file applied, or NULL. */
const char *serve_config_file(const serve_config *c);

/* The settings text that level soft measures (docs/attestation.md): exactly
 * what cli_measured_config wrote from flags before this module, for the same
 * effective settings: "mesatee-config-v1\n" then "name=value\n" for level,
 * workers, task-mem-mb, task-cpu-s, task-wall-s, token-ttl-s, file-url-root,
 * max-connections (value "" when at the default), then fetch-allow=... when
 * set, log-task-errors=1 and seal-legacy-store=1 when true. */
void serve_config_measured(const serve_config *c, char *out, size_t cap);

/* --print-config: every key, its effective value (or the default's
 * description) and its source, as text lines or one JSON object. Heap string
 * (free), NULL when out of memory. */
char *serve_config_render(const serve_config *c, bool json);

/* Keys whose effective value differs between a and b (same command), into
 * out (at most max names); the count. */
int serve_config_diff(const serve_config *a, const serve_config *b, const char **out, int max);
/* Whether a change of key name takes effect on SIGHUP (docs/cli.md): never
 * (SC_RELOAD_NO), always (the log settings), or only at level none (the
 * limits, which are measured at the other levels). */
enum { SC_RELOAD_NO = 0, SC_RELOAD_YES, SC_RELOAD_LEVEL_NONE };
int serve_config_reload_kind(const char *name);

#endif
