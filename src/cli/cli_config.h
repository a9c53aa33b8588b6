/* cli_config: the one reader of the CLI's settings file.
 *
 * Format: UTF-8 text, one `key = value` per line; blank lines and lines whose
 * first non-blank character is '#' are ignored; spaces and tabs around key
 * and value are trimmed; CRLF line ends are accepted. Known keys: server, ca,
 * token_file, output, tls_server_name (cli_config_keys, in that order). A key may appear once;
 * values may not be empty; a line is at most CLI_CONFIG_MAX_LINE bytes; the
 * text may not contain NUL bytes; the whole file is at most
 * CLI_CONFIG_MAX_BYTES (the caller enforces that when reading).
 *
 * Ownership: cli_config_parse fills out->value[] with heap strings the
 * caller releases with cli_config_clear (also after a failure).
 * Errors: MT_EINVAL with the reason (a key is quoted at most 64 bytes) and
 * out->error_line set to the failing line (0 for whole-file reasons);
 * MT_ENOMEM. On failure out holds no values.
 * Thread-safety: none needed (no shared state).
 */
#ifndef MT_CLI_CONFIG_H
#define MT_CLI_CONFIG_H

#include <stddef.h>

#include "mt_err.h"

#define CLI_CONFIG_NKEYS 5
#define CLI_CONFIG_MAX_LINE 1023
#define CLI_CONFIG_MAX_BYTES (64 * 1024)

extern const char *const cli_config_keys[CLI_CONFIG_NKEYS];

typedef struct {
    char *value[CLI_CONFIG_NKEYS]; /* NULL where the file does not set the key */
    int line[CLI_CONFIG_NKEYS];    /* line number of each value, 1-based */
    int error_line;                /* after a failure: the line at fault, or 0 */
} cli_config;

mt_status cli_config_parse(const char *text, size_t len, cli_config *out, mt_err *err);
void cli_config_clear(cli_config *c);

#endif
