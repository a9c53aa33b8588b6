/* serve_config: the daemon's settings with their sources; contract in
 * serve_config.h. */
#include "serve_config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"

/* ======================================================================== */
/* Keys                                                                      */

typedef enum { SC_STR, SC_U64, SC_BOOL, SC_ENUM, SC_HOSTPORT } sc_kind;

typedef struct sc_key {
    const char *name;
    sc_kind kind;
    uint64_t min, max;        /* SC_U64 */
    const char *const *enums; /* SC_ENUM, NULL-terminated */
    const char *env;          /* NULL: no environment variable */
    const char *dflt;         /* what --print-config shows at the default */
    bool repeatable;
    int reload; /* SC_RELOAD_*: whether a change takes effect on SIGHUP */
} sc_key;

static const char *const sc_levels[] = {"none", "soft", "tpm2", "sev-snp", "tdx", "sgx", NULL};
static const char *const sc_log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const sc_log_formats[] = {"text", "json", NULL};
static const char *const sc_worker_starts[] = {"zygote", "spawn", NULL};

#define D7 (86400ULL * 7)
#define D365 (86400ULL * 365)

/* The keys of `mesatee serve`: its long flags (src/cli/main.c o_serve), in
 * the order --print-config shows them. MESATEE_TPM2_TCTI is read by the
 * tpm2 attester itself, so tpm2-tcti has no variable here. */
static const sc_key sc_serve_keys[] = {
    {"data-dir", SC_STR, 0, 0, NULL, "MESATEE_DATA_DIR", "(required)", false, SC_RELOAD_NO},
    {"store", SC_STR, 0, 0, NULL, "MESATEE_STORE", "DATA_DIR/mesatee.db", false, SC_RELOAD_NO},
    {"objects", SC_STR, 0, 0, NULL, "MESATEE_OBJECTS", "dir (DATA_DIR/objects)", false,
     SC_RELOAD_NO},
    {"listen", SC_HOSTPORT, 0, 0, NULL, "MESATEE_LISTEN", "127.0.0.1:7443", false, SC_RELOAD_NO},
    {"level", SC_ENUM, 0, 0, sc_levels, "MESATEE_LEVEL", "none", false, SC_RELOAD_NO},
    {"workers", SC_U64, 1, 1024, NULL, "MESATEE_WORKERS", "(number of cores, at most 256)",
     false, SC_RELOAD_NO},
    {"admin-password-file", SC_STR, 0, 0, NULL, "MESATEE_ADMIN_PASSWORD_FILE",
     "DATA_DIR/admin-password (written at the first start)", false, SC_RELOAD_NO},
    {"file-url-root", SC_STR, 0, 0, NULL, "MESATEE_FILE_URL_ROOT", "(file:// inputs refused)",
     false, SC_RELOAD_NO},
    {"task-mem-mb", SC_U64, 16, 1024 * 1024, NULL, "MESATEE_TASK_MEM_MB", "2048", false,
     SC_RELOAD_LEVEL_NONE},
    {"task-cpu-s", SC_U64, 1, D7, NULL, "MESATEE_TASK_CPU_S", "600", false,
     SC_RELOAD_LEVEL_NONE},
    {"task-wall-s", SC_U64, 1, D7, NULL, "MESATEE_TASK_WALL_S", "900", false,
     SC_RELOAD_LEVEL_NONE},
    {"token-ttl-s", SC_U64, 60, D365, NULL, "MESATEE_TOKEN_TTL_S", "43200", false,
     SC_RELOAD_LEVEL_NONE},
    {"worker", SC_STR, 0, 0, NULL, "MESATEE_WORKER", "(next to this binary)", false, SC_RELOAD_NO},
    {"worker-start", SC_ENUM, 0, 0, sc_worker_starts, "MESATEE_WORKER_START", "zygote", false,
     SC_RELOAD_NO},
    {"zygote-max-tasks", SC_U64, 1, 1000000, NULL, "MESATEE_ZYGOTE_MAX_TASKS", "256", false,
     SC_RELOAD_NO},
    {"max-connections", SC_U64, 1, 65536, NULL, "MESATEE_MAX_CONNECTIONS", "256", false,
     SC_RELOAD_LEVEL_NONE},
    {"max-task-waiters", SC_U64, 1, 65536, NULL, "MESATEE_MAX_TASK_WAITERS", "256", false,
     SC_RELOAD_NO}, /* issue 13: GET /v1/tasks/{id}?wait= held at once */
    {"audit-spool-max-kib", SC_U64, 1, 16777216, NULL, "MESATEE_AUDIT_SPOOL_MAX_KIB", "16384",
     false,
     SC_RELOAD_NO}, /* issue 14: the local audit spool's cap (audit_spool.c) */
    {"fetch-allow", SC_STR, 0, 0, NULL, "MESATEE_FETCH_ALLOW", "(none)", true, SC_RELOAD_NO},
    {"log-task-errors", SC_BOOL, 0, 0, NULL, "MESATEE_LOG_TASK_ERRORS", "false", false, SC_RELOAD_NO},
    {"seal-legacy-store", SC_BOOL, 0, 0, NULL, "MESATEE_SEAL_LEGACY_STORE", "false", false,
     SC_RELOAD_NO},
    {"release-signers", SC_STR, 0, 0, NULL, "MESATEE_RELEASE_SIGNERS", "(none)", false,
     SC_RELOAD_NO},
    {"release-threshold", SC_U64, 1, 32, NULL, "MESATEE_RELEASE_THRESHOLD", "(all signers)",
     false, SC_RELOAD_NO},
    {"keystore-collateral", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_COLLATERAL", "(none)", false,
     SC_RELOAD_NO},
    {"keystore-recover", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_RECOVER", "(none)", false,
     SC_RELOAD_NO},
    {"keystore-recover-key", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_RECOVER_KEY", "(none)", true,
     SC_RELOAD_NO},
    {"tpm2-tcti", SC_STR, 0, 0, NULL, NULL, "(MESATEE_TPM2_TCTI, else the default TCTI)", false,
     SC_RELOAD_NO},
    {"cert-renew-s", SC_U64, 0, D365, NULL, "MESATEE_CERT_RENEW_S", "3600", false, SC_RELOAD_NO},
    {"remote-executors", SC_BOOL, 0, 0, NULL, "MESATEE_REMOTE_EXECUTORS", "false", false, SC_RELOAD_NO},
    {"executor-listen", SC_HOSTPORT, 0, 0, NULL, "MESATEE_EXECUTOR_LISTEN", "127.0.0.1:7444",
     false, SC_RELOAD_NO},
    {"executor-policy", SC_STR, 0, 0, NULL, "MESATEE_EXECUTOR_POLICY", "(none)", false, SC_RELOAD_NO},
    {"keystore-listen", SC_HOSTPORT, 0, 0, NULL, "MESATEE_KEYSTORE_LISTEN", "(off)", false,
     SC_RELOAD_NO},
    {"keystore-join", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_JOIN", "(off)", false, SC_RELOAD_NO},
    {"keystore-join-timeout-s", SC_U64, 5, 3600, NULL, "MESATEE_KEYSTORE_JOIN_TIMEOUT_S", "60",
     false, SC_RELOAD_NO},
    {"keystore-policy", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_POLICY", "(none)", false,
     SC_RELOAD_NO},
    {"keystore-db-ca", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_DB_CA", "(none)", false,
     SC_RELOAD_NO},
    {"keystore-db-ca-create", SC_BOOL, 0, 0, NULL, "MESATEE_KEYSTORE_DB_CA_CREATE", "false",
     false, SC_RELOAD_NO},
    {"keystore-db-cert-ttl", SC_U64, 10, 86400, NULL, "MESATEE_KEYSTORE_DB_CERT_TTL", "86400",
     false, SC_RELOAD_NO},
    {"keystore-advertise", SC_STR, 0, 0, NULL, "MESATEE_KEYSTORE_ADVERTISE",
     "(the listen address, or https://127.0.0.1:PORT for a wildcard)", false, SC_RELOAD_NO},
    {"executor-max-buffered-mib", SC_U64, 1, 65536, NULL, "MESATEE_EXECUTOR_MAX_BUFFERED_MIB",
     "(built-in)", false, SC_RELOAD_NO},
    {"executor-lease-ms", SC_U64, 100, 3600000, NULL, "MESATEE_EXECUTOR_LEASE_MS", "30000", false,
     SC_RELOAD_NO},
    {"executor-max-attempts", SC_U64, 1, 1000, NULL, "MESATEE_EXECUTOR_MAX_ATTEMPTS", "3", false,
     SC_RELOAD_NO},
    {"node-dead-after-ms", SC_U64, 100, 86400000, NULL, "MESATEE_NODE_DEAD_AFTER_MS", "60000",
     false, SC_RELOAD_NO},
    {"shutdown-grace-s", SC_U64, 0, 86400, NULL, "MESATEE_SHUTDOWN_GRACE_S", "30", false,
     SC_RELOAD_NO},
    {"tls-san", SC_STR, 0, 0, NULL, "MESATEE_TLS_SAN",
     "(the listen host, the host name, localhost, 127.0.0.1)", true, SC_RELOAD_NO},
    {"tls-cert", SC_STR, 0, 0, NULL, "MESATEE_TLS_CERT", "(an identity kept in DATA_DIR/tls)",
     false, SC_RELOAD_NO},
    {"tls-key", SC_STR, 0, 0, NULL, "MESATEE_TLS_KEY", "(with tls-cert)", false, SC_RELOAD_NO},
    {"metrics-token-file", SC_STR, 0, 0, NULL, "MESATEE_METRICS_TOKEN_FILE", "(/metrics open)",
     false, SC_RELOAD_NO},
    {"log-level", SC_ENUM, 0, 0, sc_log_levels, "MESATEE_LOG", "info",
     false, SC_RELOAD_YES},
    {"log-format", SC_ENUM, 0, 0, sc_log_formats, "MESATEE_LOG_FORMAT", "text",
     false, SC_RELOAD_YES},
    {"access-log", SC_STR, 0, 0, NULL, "MESATEE_ACCESS_LOG", "(the log stream)",
     false, SC_RELOAD_YES},
    {"python-allow", SC_STR, 0, 0, NULL, "MESATEE_PYTHON_ALLOW", "(none)", true, SC_RELOAD_NO},
    {"python-deny", SC_STR, 0, 0, NULL, "MESATEE_PYTHON_DENY", "(none)", true, SC_RELOAD_NO},
};
#define SC_NSERVE (sizeof sc_serve_keys / sizeof sc_serve_keys[0])

/* The keys of `mesatee executor` (src/cli/main.c o_executor); its own
 * checks (cmd_executor.c) still apply after these. */
static const sc_key sc_executor_keys[] = {
    {"scheduler", SC_STR, 0, 0, NULL, "MESATEE_SCHEDULER", "(required)", false, SC_RELOAD_NO},
    {"data-dir", SC_STR, 0, 0, NULL, "MESATEE_DATA_DIR", "(required)", false, SC_RELOAD_NO},
    {"level", SC_ENUM, 0, 0, sc_levels, "MESATEE_LEVEL", "soft", false, SC_RELOAD_NO},
    {"worker", SC_STR, 0, 0, NULL, "MESATEE_WORKER", "(next to this binary)", false, SC_RELOAD_NO},
    {"worker-start", SC_ENUM, 0, 0, sc_worker_starts, "MESATEE_WORKER_START", "zygote", false,
     SC_RELOAD_NO},
    {"zygote-max-tasks", SC_U64, 1, 1000000, NULL, "MESATEE_ZYGOTE_MAX_TASKS", "256", false,
     SC_RELOAD_NO},
    {"tpm2-tcti", SC_STR, 0, 0, NULL, NULL, "(MESATEE_TPM2_TCTI, else the default TCTI)", false,
     SC_RELOAD_NO},
    {"poll-ms", SC_U64, 10, 600000, NULL, "MESATEE_POLL_MS", "500", false, SC_RELOAD_NO},
    {"max-tasks", SC_U64, 1, 1000000000, NULL, "MESATEE_MAX_TASKS", "(no limit)", false,
     SC_RELOAD_NO},
    {"file-url-root", SC_STR, 0, 0, NULL, "MESATEE_FILE_URL_ROOT", "(file:// inputs refused)",
     false, SC_RELOAD_NO},
    {"fetch-allow", SC_STR, 0, 0, NULL, "MESATEE_FETCH_ALLOW", "(none)", true, SC_RELOAD_NO},
    {"log-task-errors", SC_BOOL, 0, 0, NULL, "MESATEE_LOG_TASK_ERRORS", "false", false,
     SC_RELOAD_NO},
    {"max-job-mib", SC_U64, 1, 4096, NULL, "MESATEE_MAX_JOB_MIB", "256", false, SC_RELOAD_NO},
    {"slots", SC_U64, 1, 64, NULL, "MESATEE_EXECUTOR_SLOTS", "1", false, SC_RELOAD_NO},
    {"cert-renew-s", SC_U64, 0, D365, NULL, "MESATEE_CERT_RENEW_S", "3600", false, SC_RELOAD_NO},
    {"name", SC_STR, 0, 0, NULL, "MESATEE_EXECUTOR_NAME", "(HOST-PID)", false, SC_RELOAD_NO},
    {"log-level", SC_ENUM, 0, 0, sc_log_levels, "MESATEE_LOG", "info", false, SC_RELOAD_NO},
    {"log-format", SC_ENUM, 0, 0, sc_log_formats, "MESATEE_LOG_FORMAT", "text", false,
     SC_RELOAD_NO},
};
#define SC_NEXECUTOR (sizeof sc_executor_keys / sizeof sc_executor_keys[0])
#define SC_NKEYS_MAX 56
_Static_assert(SC_NSERVE <= SC_NKEYS_MAX && SC_NEXECUTOR <= SC_NKEYS_MAX,
               "raise SC_NKEYS_MAX with the keys");

/* The commands whose sections a shared file may hold. */
static const char *const sc_sections[] = {"serve", "executor", NULL};

typedef struct sc_value {
    char *text; /* canonical; repeatable: the values joined with ',' */
    char *items[SC_MAX_VALUES];
    int n_items;
    sc_source src;
    char origin[SC_ORIGIN_MAX];
} sc_value;

struct serve_config {
    const char *command;
    const sc_key *keys;
    size_t n;
    sc_value v[SC_NKEYS_MAX];
    char *file;
};

/* ======================================================================== */
/* Structure                                                                 */

static void sc_value_clear(sc_value *v)
{
    free(v->text);
    for (int i = 0; i < v->n_items; i++)
        free(v->items[i]);
    memset(v, 0, sizeof *v);
}

serve_config *serve_config_new(const char *command)
{
    bool exec = command && !strcmp(command, "executor");
    if (!command || (strcmp(command, "serve") != 0 && !exec))
        return NULL;
    serve_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->command = exec ? "executor" : "serve";
    c->keys = exec ? sc_executor_keys : sc_serve_keys;
    c->n = exec ? SC_NEXECUTOR : SC_NSERVE;
    return c;
}

void serve_config_free(serve_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        sc_value_clear(&c->v[i]);
    free(c->file);
    free(c);
}

/* Index of key name ('_' for '-' allowed; at most 64 bytes), or -1. */
static int sc_find(const serve_config *c, const char *name, size_t len)
{
    if (len == 0 || len > 64)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->keys[i].name;
        if (strlen(k) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char a = name[j] == '_' ? '-' : name[j];
            if (a != k[j])
                break;
        }
        if (j == len)
            return (int)i;
    }
    return -1;
}

const char *serve_config_key_at(const serve_config *c, size_t i)
{
    return i < c->n ? c->keys[i].name : NULL;
}

bool serve_config_key_known(const serve_config *c, const char *name)
{
    return name && sc_find(c, name, strlen(name)) >= 0;
}

/* ======================================================================== */
/* Validation                                                                */

static bool sc_parse_bool(const char *v, bool *out)
{
    static const char *const t[] = {"true", "yes", "on", "1", NULL};
    static const char *const f[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; t[i]; i++)
        if (!strcmp(v, t[i])) {
            *out = true;
            return true;
        }
    for (int i = 0; f[i]; i++)
        if (!strcmp(v, f[i])) {
            *out = false;
            return true;
        }
    return false;
}

/* True if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
static bool sc_utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t j = 1; j <= n; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* Checks value for key k; the canonical text into out (cap bytes). */
static mt_status sc_check(const sc_key *k, const char *value, const char *label, char *out,
                          size_t cap, mt_err *err)
{
    size_t len = strlen(value);
    if (len == 0)
        return mt_err_set(err, MT_EINVAL, "%s has an empty value", label);
    if (len > SC_VALUE_MAX)
        return mt_err_set(err, MT_EINVAL, "%s is longer than %d bytes", label, SC_VALUE_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            return mt_err_set(err, MT_EINVAL, "%s contains a control character", label);
    if (!sc_utf8_ok((const unsigned char *)value, len))
        return mt_err_set(err, MT_EINVAL, "%s is not UTF-8 text", label);
    switch (k->kind) {
    case SC_U64: {
        bool digits = true;
        for (size_t i = 0; i < len; i++)
            digits = digits && value[i] >= '0' && value[i] <= '9';
        errno = 0;
        char *end = NULL;
        unsigned long long x = digits ? strtoull(value, &end, 10) : 0;
        if (!digits || errno || (end && *end) || x < k->min || x > k->max)
            return mt_err_set(err, MT_EINVAL, "%s must be a number from %llu to %llu", label,
                              (unsigned long long)k->min, (unsigned long long)k->max);
        snprintf(out, cap, "%llu", x);
        return MT_OK;
    }
    case SC_BOOL: {
        bool b;
        if (!sc_parse_bool(value, &b))
            return mt_err_set(err, MT_EINVAL, "%s must be true or false", label);
        snprintf(out, cap, "%s", b ? "true" : "false");
        return MT_OK;
    }
    case SC_ENUM: {
        for (int i = 0; k->enums[i]; i++)
            if (!strcmp(k->enums[i], value)) {
                snprintf(out, cap, "%s", value);
                return MT_OK;
            }
        char list[160] = "";
        size_t n = 0;
        for (int i = 0; k->enums[i] && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", k->enums[i]);
        return mt_err_set(err, MT_EINVAL, "%s must be one of %s", label, list);
    }
    case SC_HOSTPORT:
        if (!strchr(value, ':') || value[0] == ':')
            return mt_err_set(err, MT_EINVAL, "%s must be HOST:PORT", label);
        break;
    case SC_STR:
        break;
    }
    snprintf(out, cap, "%s", value);
    return MT_OK;
}

/* Rebuilds v->text from the items. */
static mt_status sc_join(sc_value *v, mt_err *err)
{
    size_t n = 0;
    for (int i = 0; i < v->n_items; i++)
        n += strlen(v->items[i]) + 1;
    char *t = malloc(n ? n : 1);
    if (!t)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t o = 0;
    for (int i = 0; i < v->n_items; i++) {
        size_t l = strlen(v->items[i]);
        if (i)
            t[o++] = ',';
        memcpy(t + o, v->items[i], l);
        o += l;
    }
    t[o] = '\0';
    free(v->text);
    v->text = t;
    return MT_OK;
}

mt_status serve_config_set(serve_config *c, const char *name, const char *value, sc_source src,
                           const char *label, const char *origin, mt_err *err)
{
    int i = name ? sc_find(c, name, strlen(name)) : -1;
    if (i < 0)
        return mt_err_set(err, MT_EINVAL, "unknown key '%.64s'", name ? name : "");
    const sc_key *k = &c->keys[i];
    sc_value *v = &c->v[i];
    if (!label)
        label = k->name;
    if (!value) {
        if (k->kind != SC_BOOL)
            return mt_err_set(err, MT_EINVAL, "%s needs a value", label);
        value = "true";
    }
    char canon[SC_VALUE_MAX + 1];
    mt_status st = sc_check(k, value, label, canon, sizeof canon, err);
    if (st != MT_OK)
        return st;
    if (v->text && src < v->src)
        return MT_OK; /* a higher source already set it */
    if (k->repeatable) {
        if (v->text && src > v->src) {
            sc_value_clear(v); /* a higher source replaces the lower one's list */
        }
        if (v->n_items >= SC_MAX_VALUES)
            return mt_err_set(err, MT_EINVAL, "%s is given more than %d times", label,
                              SC_MAX_VALUES);
        char *item = strdup(canon);
        if (!item)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        v->items[v->n_items++] = item;
        if ((st = sc_join(v, err)) != MT_OK) {
            free(v->items[--v->n_items]);
            return st;
        }
    } else {
        char *t = strdup(canon);
        if (!t)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        free(v->text);
        v->text = t;
    }
    v->src = src;
    snprintf(v->origin, sizeof v->origin, "%s", origin ? origin : label);
    return MT_OK;
}

/* ======================================================================== */
/* The file (libinih, fed line by line from the buffer)                      */

typedef struct sc_stream {
    const char *p, *end;
    int line;      /* lines handed to inih so far = the line being parsed */
    bool too_long; /* the line after `line` exceeds the buffer */
    bool stop;
} sc_stream;

typedef struct sc_parse {
    serve_config *tmp; /* the file's values, applied to the caller's only if all is well */
    const char *path;
    sc_stream *s;
    int err_line;
    mt_err *err;
    mt_status st;
    int seen_line[SC_NKEYS_MAX];
} sc_parse;

/* ini_reader: the next line of the buffer (with its '\n') into str. */
static char *sc_reader(char *str, int num, void *stream)
{
    sc_stream *s = stream;
    if (s->stop || s->p >= s->end || num < 2)
        return NULL;
    const char *nl = memchr(s->p, '\n', (size_t)(s->end - s->p));
    size_t n = nl ? (size_t)(nl - s->p) + 1 : (size_t)(s->end - s->p);
    if (n > (size_t)num - 1 || n > SC_LINE_MAX + 2) {
        s->too_long = true;
        s->stop = true;
        s->line++;
        return NULL;
    }
    memcpy(str, s->p, n);
    str[n] = '\0';
    s->p += n;
    s->line++;
    return str;
}

static bool sc_section_ok(const char *command, const char *section, bool *apply)
{
    *apply = !section[0] || !strcmp(section, command);
    if (*apply)
        return true;
    for (int i = 0; sc_sections[i]; i++)
        if (!strcmp(sc_sections[i], section))
            return true;
    return false;
}

static int sc_fail(sc_parse *p, mt_status st)
{
    p->st = st;
    p->err_line = p->s->line;
    p->s->stop = true;
    return 0;
}

static int sc_handler(void *user, const char *section, const char *name, const char *value)
{
    sc_parse *p = user;
    if (p->st != MT_OK)
        return 0;
    bool apply;
    if (!sc_section_ok(p->tmp->command, section, &apply))
        return sc_fail(p, mt_err_set(p->err, MT_EINVAL, "unknown section [%.64s]", section));
    size_t nlen = strlen(name);
    char key[72];
    snprintf(key, sizeof key, "%.64s", name);
    if (!apply) {
        /* another command's section: its keys are not ours to check further */
        return 1;
    }
    int i = sc_find(p->tmp, name, nlen);
    if (i < 0)
        return sc_fail(p, mt_err_set(p->err, MT_EINVAL,
                                     "unknown key '%s' (keys are the long options of "
                                     "`mesatee %s`)",
                                     key, p->tmp->command));
    const sc_key *k = &p->tmp->keys[i];
    if (p->seen_line[i] && !k->repeatable)
        return sc_fail(p, mt_err_set(p->err, MT_EINVAL, "key '%s' is set twice (first on line %d)",
                                     key, p->seen_line[i]));
    char origin[SC_ORIGIN_MAX];
    snprintf(origin, sizeof origin, "%.280s:%d", p->path, p->s->line);
    mt_status st = serve_config_set(p->tmp, k->name, value, SC_SRC_FILE, key, origin, p->err);
    if (st != MT_OK)
        return sc_fail(p, st);
    if (!p->seen_line[i])
        p->seen_line[i] = p->s->line;
    return 1;
}

mt_status serve_config_parse_file(serve_config *c, const char *path, const char *text,
                                  size_t len, int *line, mt_err *err)
{
    *line = 0;
    if (!path)
        path = "(config)";
    if (len > SC_FILE_MAX)
        return mt_err_set(err, MT_EINVAL, "the file is larger than %d bytes", SC_FILE_MAX);
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int ln = 1;
        for (const char *q = text; q < nul; q++)
            ln += *q == '\n';
        *line = ln;
        return mt_err_set(err, MT_EINVAL, "the file contains a NUL byte: not a text file");
    }
    sc_stream s = {text, text + len, 0, false, false};
    sc_parse p;
    memset(&p, 0, sizeof p);
    p.tmp = serve_config_new(c->command);
    if (!p.tmp)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    p.path = path;
    p.s = &s;
    p.err = err;
    p.st = MT_OK;
    int r = ini_parse_stream(sc_reader, &s, sc_handler, &p);
    mt_status st = p.st;
    if (st != MT_OK) {
        *line = p.err_line;
    } else if (s.too_long) {
        *line = s.line;
        st = mt_err_set(err, MT_EINVAL, "line longer than %d bytes", SC_LINE_MAX);
    } else if (r > 0) {
        *line = r;
        st = mt_err_set(err, MT_EINVAL,
                        "expected 'key = value', '[section]' or a comment ('#' or ';')");
    } else if (r < 0) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (st == MT_OK) {
        /* all or nothing: copy the file's values over the caller's */
        for (size_t i = 0; i < c->n && st == MT_OK; i++) {
            sc_value *f = &p.tmp->v[i];
            if (!f->text)
                continue;
            if (c->v[i].text && c->v[i].src > SC_SRC_FILE)
                continue;
            sc_value_clear(&c->v[i]);
            c->v[i] = *f;
            memset(f, 0, sizeof *f);
        }
        char *fp = strdup(path);
        if (!fp)
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
        free(c->file);
        c->file = fp;
    }
    serve_config_free(p.tmp);
    return st;
}

/* ======================================================================== */
/* Environment                                                               */

mt_status serve_config_apply_env(serve_config *c, const char *(*getenv_fn)(const char *name),
                                 mt_err *err)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *env = c->keys[i].env;
        if (!env)
            continue;
        const char *v = getenv_fn(env);
        if (!v || !*v)
            continue;
        mt_status st = serve_config_set(c, c->keys[i].name, v, SC_SRC_ENV, env, env, err);
        if (st != MT_OK)
            return st;
    }
    return MT_OK;
}

/* ======================================================================== */
/* Reading                                                                   */

static const sc_value *sc_get(const serve_config *c, const char *name)
{
    int i = name ? sc_find(c, name, strlen(name)) : -1;
    return i < 0 ? NULL : &c->v[i];
}

const char *serve_config_get(const serve_config *c, const char *name)
{
    const sc_value *v = sc_get(c, name);
    return v ? v->text : NULL;
}

bool serve_config_bool(const serve_config *c, const char *name)
{
    const char *v = serve_config_get(c, name);
    return v && !strcmp(v, "true");
}

uint64_t serve_config_u64(const serve_config *c, const char *name, uint64_t dflt)
{
    const char *v = serve_config_get(c, name);
    return v ? strtoull(v, NULL, 10) : dflt;
}

sc_source serve_config_source(const serve_config *c, const char *name, const char **origin)
{
    const sc_value *v = sc_get(c, name);
    if (!v || !v->text) {
        if (origin)
            *origin = NULL;
        return SC_SRC_DEFAULT;
    }
    if (origin)
        *origin = v->origin;
    return v->src;
}

const char *serve_config_file(const serve_config *c)
{
    return c->file;
}

void serve_config_measured(const serve_config *c, char *out, size_t cap)
{
    static const char *const names[] = {"level",       "workers",       "task-mem-mb",
                                        "task-cpu-s",  "task-wall-s",   "token-ttl-s",
                                        "file-url-root", "max-connections", NULL};
    if (cap == 0)
        return;
    size_t n = (size_t)snprintf(out, cap, "mesatee-config-v1\n");
    for (int i = 0; names[i] && n < cap; i++) {
        const char *v = serve_config_get(c, names[i]);
        n += (size_t)snprintf(out + n, cap - n, "%s=%.900s\n", names[i], v ? v : "");
    }
    /* Settings that loosen data protection are measured when used (absent,
     * the text is what it always was): the outbound allow-list, the
     * operator's log of task failure details, trusting a legacy store. */
    const char *fa = serve_config_get(c, "fetch-allow");
    if (fa && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "fetch-allow=%.900s\n", fa);
    if (serve_config_bool(c, "log-task-errors") && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "log-task-errors=1\n");
    if (serve_config_bool(c, "seal-legacy-store") && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "seal-legacy-store=1\n");
}

static const char *sc_source_name(sc_source s)
{
    switch (s) {
    case SC_SRC_FILE:
        return "file";
    case SC_SRC_ENV:
        return "env";
    case SC_SRC_FLAG:
        return "flag";
    case SC_SRC_DEFAULT:
        break;
    }
    return "default";
}

char *serve_config_render(const serve_config *c, bool json)
{
    if (json) {
        json_t *root = json_object(), *set = json_object();
        if (!root || !set) {
            json_decref(root);
            json_decref(set);
            return NULL;
        }
        json_object_set_new(root, "command", json_string(c->command));
        json_object_set_new(root, "config_file", c->file ? json_string(c->file) : json_null());
        for (size_t i = 0; i < c->n; i++) {
            const sc_value *v = &c->v[i];
            json_t *o = json_object();
            if (!o)
                break;
            json_object_set_new(o, "value", v->text ? json_string(v->text) : json_null());
            json_object_set_new(o, "source", json_string(sc_source_name(v->src)));
            if (v->text)
                json_object_set_new(o, "origin", json_string(v->origin));
            else
                json_object_set_new(o, "default", json_string(c->keys[i].dflt));
            json_object_set_new(o, "reloadable",
                                c->keys[i].reload == SC_RELOAD_LEVEL_NONE
                                    ? json_string("level none")
                                    : json_boolean(c->keys[i].reload == SC_RELOAD_YES));
            json_object_set_new(set, c->keys[i].name, o);
        }
        json_object_set_new(root, "settings", set);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        return s;
    }
    size_t cap = 512 + c->n * (2 * SC_VALUE_MAX + SC_ORIGIN_MAX + 64), n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n, "# mesatee %s: effective configuration (file: %s)\n",
                          c->command, c->file ? c->file : "none");
    for (size_t i = 0; i < c->n && n < cap; i++) {
        const sc_value *v = &c->v[i];
        if (v->text)
            n += (size_t)snprintf(s + n, cap - n, "%-26s = %-24s # %s %s\n", c->keys[i].name,
                                  v->text, sc_source_name(v->src), v->origin);
        else
            n += (size_t)snprintf(s + n, cap - n, "%-26s   %-24s # default\n",
                                  c->keys[i].name, c->keys[i].dflt);
    }
    return s;
}

int serve_config_diff(const serve_config *a, const serve_config *b, const char **out, int max)
{
    int n = 0;
    for (size_t i = 0; i < a->n && i < b->n && n < max; i++) {
        const char *x = a->v[i].text, *y = b->v[i].text;
        if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
            out[n++] = a->keys[i].name;
    }
    return n;
}

int serve_config_reload_kind(const char *name)
{
    for (size_t i = 0; i < SC_NSERVE; i++)
        if (!strcmp(sc_serve_keys[i].name, name))
            return sc_serve_keys[i].reload;
    return SC_RELOAD_NO;
}
