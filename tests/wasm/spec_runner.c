/* spec_runner: runs the official WebAssembly core test suite (.wast) against
 * mt_wasm.
 *
 * usage: spec_runner [--floor N] [--work DIR] [--spec DIR] [-v] [NAME ...]
 * Each NAME.wast of the spec folder ($MESATEE_WASM_SPEC_DIR, else --spec,
 * else the built-in default) is converted by wabt's wast2json into the work
 * folder (reused while newer than the .wast) and every command is executed:
 * module, register, action (invoke/get), assert_return (with nan:canonical
 * and nan:arithmetic), assert_trap, assert_exhaustion, assert_invalid,
 * assert_malformed (binary modules; text ones are counted as skipped),
 * assert_unlinkable, assert_uninstantiable. Prints passed/failed/skipped per
 * file and in total. assert_invalid/assert_malformed modules must be refused,
 * and the spec's expected message must appear in ours: a module refused for
 * another reason is counted as a message mismatch, reported (count and the
 * first few), and fails the run only with --strict-messages. Exit status:
 * 77 (CTest's SKIP_RETURN_CODE) when the vectors, wast2json or any command
 * are absent; 1 when any command failed, a file could not be converted, or
 * fewer commands passed than the floor; 0 otherwise. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mt_wasm.h"

#ifndef MT_WASM_SPEC_DIR
#define MT_WASM_SPEC_DIR "../shared/testvectors/wasm-spec"
#endif

typedef struct reg_entry {
    char *name;
    mt_wasm_instance *inst;
} reg_entry;

typedef struct ctx {
    const char *work, *file;
    bool verbose;
    mt_wasm_store *store;
    mt_wasm_instance *cur;
    reg_entry *regs; /* registered (for imports) */
    size_t nregs;
    reg_entry *named; /* $names of modules */
    size_t nnamed;
    mt_wasm_instance *spectest;
    long passed, failed, skipped, text_skipped;
    int shown;
} ctx;

#define SKIP_CODE 77
#define MISMATCH_SHOWN 10

static long t_passed, t_failed, t_skipped, t_text, t_mismatch;

static void fail_msg(ctx *c, json_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_msg(ctx *c, json_t *cmd, const char *fmt, ...)
{
    c->failed++;
    if (c->verbose || c->shown < 8) {
        json_t *line = json_object_get(cmd, "line");
        json_t *ty = json_object_get(cmd, "type");
        printf("    FAIL %s:%lld %s: ", c->file, (long long)json_integer_value(line),
               json_string_value(ty));
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        c->shown++;
    }
}

/* ---- spectest host module --------------------------------------------------- */
static mt_status host_print(void *env, mt_wasm_store *s, const mt_wasm_val *args,
                            mt_wasm_val *results, mt_err *err)
{
    (void)env, (void)s, (void)args, (void)results, (void)err;
    return MT_OK;
}

typedef struct spec_objs {
    mt_wasm_extern ex[16];
    const char *names[16];
    int n;
} spec_objs;

static spec_objs g_spec;

static bool make_spectest(mt_wasm_store *s)
{
    mt_err e;
    spec_objs *o = &g_spec;
    o->n = 0;
    static const struct {
        const char *name;
        uint8_t p[2];
        size_t np;
    } prints[] = {{"print", {0}, 0},
                  {"print_i32", {MT_WASM_I32}, 1},
                  {"print_i64", {MT_WASM_I64}, 1},
                  {"print_f32", {MT_WASM_F32}, 1},
                  {"print_f64", {MT_WASM_F64}, 1},
                  {"print_i32_f32", {MT_WASM_I32, MT_WASM_F32}, 2},
                  {"print_f64_f64", {MT_WASM_F64, MT_WASM_F64}, 2}};
    for (size_t i = 0; i < sizeof prints / sizeof prints[0]; i++) {
        mt_wasm_func *f;
        if (mt_wasm_func_new_host(s, prints[i].p, prints[i].np, NULL, 0, host_print, NULL, &f,
                                  &e) != MT_OK)
            return false;
        o->names[o->n] = prints[i].name;
        o->ex[o->n].kind = MT_WASM_EXTERN_FUNC;
        o->ex[o->n++].of.func = f;
    }
    mt_wasm_val v[4];
    memset(v, 0, sizeof v);
    v[0].type = MT_WASM_I32, v[0].of.i32 = 666;
    v[1].type = MT_WASM_I64, v[1].of.i64 = 666;
    float f32 = 666.6f;
    double f64 = 666.6;
    v[2].type = MT_WASM_F32;
    memcpy(&v[2].of.f32, &f32, 4);
    v[3].type = MT_WASM_F64;
    memcpy(&v[3].of.f64, &f64, 8);
    static const char *gn[] = {"global_i32", "global_i64", "global_f32", "global_f64"};
    for (int i = 0; i < 4; i++) {
        mt_wasm_global *g;
        if (mt_wasm_global_new(s, &v[i], false, &g, &e) != MT_OK)
            return false;
        o->names[o->n] = gn[i];
        o->ex[o->n].kind = MT_WASM_EXTERN_GLOBAL;
        o->ex[o->n++].of.global = g;
    }
    mt_wasm_table *t;
    if (mt_wasm_table_new(s, MT_WASM_FUNCREF, 10, 20, true, &t, &e) != MT_OK)
        return false;
    o->names[o->n] = "table";
    o->ex[o->n].kind = MT_WASM_EXTERN_TABLE;
    o->ex[o->n++].of.table = t;
    mt_wasm_memory *m;
    if (mt_wasm_memory_new(s, 1, 2, true, &m, &e) != MT_OK)
        return false;
    o->names[o->n] = "memory";
    o->ex[o->n].kind = MT_WASM_EXTERN_MEMORY;
    o->ex[o->n++].of.memory = m;
    return true;
}

static mt_status resolve(void *env, const char *module, size_t mlen, const char *name,
                         size_t nlen, mt_wasm_extern *out, mt_err *err)
{
    ctx *c = env;
    if (mlen == 8 && !memcmp(module, "spectest", 8)) {
        for (int i = 0; i < g_spec.n; i++)
            if (strlen(g_spec.names[i]) == nlen && !memcmp(g_spec.names[i], name, nlen)) {
                *out = g_spec.ex[i];
                return MT_OK;
            }
        return mt_err_set(err, MT_ENOTFOUND, "unknown import spectest.%.*s", (int)nlen, name);
    }
    for (size_t i = c->nregs; i-- > 0;) {
        if (strlen(c->regs[i].name) == mlen && !memcmp(c->regs[i].name, module, mlen))
            return mt_wasm_instance_export(c->regs[i].inst, name, nlen, out, err);
    }
    return mt_err_set(err, MT_ENOTFOUND, "unknown import module %.*s", (int)mlen, module);
}

/* ---- helpers ------------------------------------------------------------------ */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return b;
}

static mt_wasm_module *load_module(ctx *c, const char *filename, mt_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->work, filename);
    size_t len;
    uint8_t *b = read_file(path, &len);
    if (!b) {
        mt_err_set(e, MT_EIO, "cannot read %s", path);
        return NULL;
    }
    mt_wasm_module *m = NULL;
    mt_wasm_module_new(b, len, NULL, &m, e);
    free(b);
    return m;
}

static mt_wasm_module **g_mods;
static size_t g_nmods;

static void keep_module(mt_wasm_module *m)
{
    mt_wasm_module **p = realloc(g_mods, (g_nmods + 1) * sizeof *p);
    if (!p)
        abort();
    g_mods = p;
    g_mods[g_nmods++] = m;
}

static mt_wasm_instance *find_named(ctx *c, json_t *name)
{
    if (!json_is_string(name))
        return c->cur;
    for (size_t i = c->nnamed; i-- > 0;)
        if (!strcmp(c->named[i].name, json_string_value(name)))
            return c->named[i].inst;
    return NULL;
}

static void add_entry(reg_entry **arr, size_t *n, const char *name, mt_wasm_instance *inst)
{
    reg_entry *p = realloc(*arr, (*n + 1) * sizeof *p);
    if (!p)
        abort();
    *arr = p;
    p[*n].name = strdup(name);
    p[*n].inst = inst;
    (*n)++;
}

static uint8_t type_code(const char *t)
{
    if (!strcmp(t, "i32")) return MT_WASM_I32;
    if (!strcmp(t, "i64")) return MT_WASM_I64;
    if (!strcmp(t, "f32")) return MT_WASM_F32;
    if (!strcmp(t, "f64")) return MT_WASM_F64;
    if (!strcmp(t, "funcref")) return MT_WASM_FUNCREF;
    if (!strcmp(t, "externref")) return MT_WASM_EXTERNREF;
    return 0;
}

static bool parse_val(json_t *j, mt_wasm_val *v)
{
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *s = json_string_value(json_object_get(j, "value"));
    memset(v, 0, sizeof *v);
    if (!t)
        return false;
    v->type = type_code(t);
    if (!v->type || !s)
        return false;
    if (v->type == MT_WASM_FUNCREF) {
        if (strcmp(s, "null"))
            return false;
        v->of.func = NULL;
        return true;
    }
    if (v->type == MT_WASM_EXTERNREF) {
        v->of.ext = strcmp(s, "null") ? (uintptr_t)strtoull(s, NULL, 10) + 1 : 0;
        return true;
    }
    uint64_t x = strtoull(s, NULL, 10);
    if (v->type == MT_WASM_I32 || v->type == MT_WASM_F32)
        v->of.i32 = (uint32_t)x;
    else
        v->of.i64 = x;
    return true;
}

/* Compares a result with an expected JSON value (NaN patterns included). */
static bool match_val(json_t *j, const mt_wasm_val *v)
{
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *s = json_string_value(json_object_get(j, "value"));
    if (!t || type_code(t) != v->type)
        return false;
    if (!s) /* e.g. a funcref with no value: any non-null */
        return v->type == MT_WASM_FUNCREF ? v->of.func != NULL : false;
    if (v->type == MT_WASM_F32 && !strncmp(s, "nan:", 4)) {
        uint32_t b = v->of.f32 & 0x7FFFFFFFu;
        if (!strcmp(s, "nan:canonical"))
            return b == 0x7FC00000u;
        return (b & 0x7FC00000u) == 0x7FC00000u;
    }
    if (v->type == MT_WASM_F64 && !strncmp(s, "nan:", 4)) {
        uint64_t b = v->of.f64 & 0x7FFFFFFFFFFFFFFFull;
        if (!strcmp(s, "nan:canonical"))
            return b == 0x7FF8000000000000ull;
        return (b & 0x7FF8000000000000ull) == 0x7FF8000000000000ull;
    }
    if (v->type == MT_WASM_FUNCREF)
        return strcmp(s, "null") ? v->of.func != NULL : v->of.func == NULL;
    mt_wasm_val e;
    if (!parse_val(j, &e))
        return false;
    if (v->type == MT_WASM_EXTERNREF)
        return e.of.ext == v->of.ext;
    if (v->type == MT_WASM_I32 || v->type == MT_WASM_F32)
        return e.of.i32 == v->of.i32;
    return e.of.i64 == v->of.i64;
}

/* Runs an action; returns MT_OK with results, or the call's error. */
static mt_status do_action(ctx *c, json_t *act, mt_wasm_val *res, size_t *nres, mt_err *e)
{
    const char *type = json_string_value(json_object_get(act, "type"));
    json_t *field = json_object_get(act, "field");
    mt_wasm_instance *inst = find_named(c, json_object_get(act, "module"));
    *nres = 0;
    if (!inst || !type || !json_is_string(field))
        return mt_err_set(e, MT_ENOTFOUND, "no module instance for the action");
    mt_wasm_extern ex;
    mt_status st = mt_wasm_instance_export(inst, json_string_value(field),
                                           json_string_length(field), &ex, e);
    if (st != MT_OK)
        return st;
    if (!strcmp(type, "get")) {
        if (ex.kind != MT_WASM_EXTERN_GLOBAL)
            return mt_err_set(e, MT_EINVAL, "export is not a global");
        mt_wasm_global_get(ex.of.global, &res[0]);
        *nres = 1;
        return MT_OK;
    }
    if (ex.kind != MT_WASM_EXTERN_FUNC)
        return mt_err_set(e, MT_EINVAL, "export is not a function");
    json_t *args = json_object_get(act, "args");
    size_t na = json_array_size(args);
    mt_wasm_val av[64];
    if (na > 64)
        return mt_err_set(e, MT_EINVAL, "too many arguments");
    for (size_t i = 0; i < na; i++)
        if (!parse_val(json_array_get(args, i), &av[i]))
            return mt_err_set(e, MT_EINVAL, "unparsable argument");
    const uint8_t *p, *r;
    size_t np, nr;
    mt_wasm_func_type(ex.of.func, &p, &np, &r, &nr);
    if (nr > 64)
        return mt_err_set(e, MT_EINVAL, "too many results");
    st = mt_wasm_func_call(c->store, ex.of.func, av, na, res, nr, e);
    if (st == MT_OK)
        *nres = nr;
    return st;
}

/* The spec's expected message must appear in ours (our messages are the
 * spec's, prefixed by "trap: " or "wasm: "). */
static bool text_matches(json_t *cmd, const char *msg)
{
    const char *t = json_string_value(json_object_get(cmd, "text"));
    const char *reason = strncmp(msg, "trap: ", 6) ? msg : msg + 6;
    return !t || strstr(msg, t) != NULL || !strncmp(t, reason, strlen(reason));
}

static void run_command(ctx *c, json_t *cmd)
{
    const char *type = json_string_value(json_object_get(cmd, "type"));
    mt_err e;
    mt_err_clear(&e);
    if (!type) {
        fail_msg(c, cmd, "%s", "command without type");
        return;
    }
    if (!strcmp(type, "module")) {
        const char *fn = json_string_value(json_object_get(cmd, "filename"));
        c->cur = NULL;
        mt_wasm_module *m = fn ? load_module(c, fn, &e) : NULL;
        if (!m) {
            fail_msg(c, cmd, "%s", e.msg);
            return;
        }
        keep_module(m);
        mt_wasm_instance *inst;
        if (mt_wasm_instantiate(c->store, m, resolve, c, &inst, &e) != MT_OK) {
            fail_msg(c, cmd, "%s", e.msg);
            return;
        }
        c->cur = inst;
        json_t *name = json_object_get(cmd, "name");
        if (json_is_string(name))
            add_entry(&c->named, &c->nnamed, json_string_value(name), inst);
        c->passed++;
    } else if (!strcmp(type, "register")) {
        mt_wasm_instance *inst = find_named(c, json_object_get(cmd, "name"));
        const char *as = json_string_value(json_object_get(cmd, "as"));
        if (!inst || !as) {
            fail_msg(c, cmd, "%s", "nothing to register");
            return;
        }
        add_entry(&c->regs, &c->nregs, as, inst);
        c->passed++;
    } else if (!strcmp(type, "action") || !strcmp(type, "assert_return")) {
        mt_wasm_val res[64];
        size_t nres;
        if (do_action(c, json_object_get(cmd, "action"), res, &nres, &e) != MT_OK) {
            fail_msg(c, cmd, "%s", e.msg);
            return;
        }
        json_t *exp = json_object_get(cmd, "expected");
        if (!strcmp(type, "assert_return")) {
            if (json_array_size(exp) != nres) {
                fail_msg(c, cmd, "%s", "wrong number of results");
                return;
            }
            for (size_t i = 0; i < nres; i++) {
                json_t *x = json_array_get(exp, i);
                if (!match_val(x, &res[i])) {
                    char buf[160];
                    snprintf(buf, sizeof buf, "result %zu: got 0x%llx, expected %s", i,
                             (unsigned long long)res[i].of.i64,
                             json_string_value(json_object_get(x, "value")));
                    fail_msg(c, cmd, "%s", buf);
                    return;
                }
            }
        }
        c->passed++;
    } else if (!strcmp(type, "assert_trap") || !strcmp(type, "assert_exhaustion")) {
        mt_wasm_val res[64];
        size_t nres;
        mt_status st = do_action(c, json_object_get(cmd, "action"), res, &nres, &e);
        mt_wasm_trap tk = mt_wasm_store_trap(c->store);
        bool exhaustion = !strcmp(type, "assert_exhaustion");
        if (st == MT_OK || tk == MT_WASM_TRAP_NONE) {
            fail_msg(c, cmd, "did not trap (%s)", st == MT_OK ? "returned" : e.msg);
            return;
        }
        if (exhaustion && tk != MT_WASM_TRAP_CALL_STACK && tk != MT_WASM_TRAP_VALUE_STACK) {
            fail_msg(c, cmd, "wrong trap: %s", e.msg);
            return;
        }
        if (!text_matches(cmd, e.msg)) {
            fail_msg(c, cmd, "wrong trap: %s, expected %s", e.msg,
                     json_string_value(json_object_get(cmd, "text")));
            return;
        }
        c->passed++;
    } else if (!strcmp(type, "assert_invalid") || !strcmp(type, "assert_malformed")) {
        const char *mt = json_string_value(json_object_get(cmd, "module_type"));
        if (mt && strcmp(mt, "binary")) {
            c->text_skipped++;
            c->skipped++;
            return;
        }
        const char *fn = json_string_value(json_object_get(cmd, "filename"));
        mt_wasm_module *m = fn ? load_module(c, fn, &e) : NULL;
        if (m) {
            mt_wasm_module_free(m);
            fail_msg(c, cmd, "module accepted (expected: %s)",
                     json_string_value(json_object_get(cmd, "text")));
            return;
        }
        if (!text_matches(cmd, e.msg)) {
            if (t_mismatch++ < MISMATCH_SHOWN || c->verbose)
                printf("    MISMATCH %s:%lld %s: expected \"%s\", got \"%s\"\n", c->file,
                       (long long)json_integer_value(json_object_get(cmd, "line")), type,
                       json_string_value(json_object_get(cmd, "text")), e.msg);
        }
        c->passed++;
    } else if (!strcmp(type, "assert_unlinkable") || !strcmp(type, "assert_uninstantiable")) {
        const char *fn = json_string_value(json_object_get(cmd, "filename"));
        mt_wasm_module *m = fn ? load_module(c, fn, &e) : NULL;
        if (!m) {
            fail_msg(c, cmd, "module rejected: %s", e.msg);
            return;
        }
        keep_module(m);
        mt_wasm_instance *inst;
        mt_status st = mt_wasm_instantiate(c->store, m, resolve, c, &inst, &e);
        mt_wasm_trap tk = mt_wasm_store_trap(c->store);
        bool want_trap = !strcmp(type, "assert_uninstantiable");
        if (st == MT_OK) {
            fail_msg(c, cmd, "%s", "instantiated");
            return;
        }
        if (want_trap != (tk != MT_WASM_TRAP_NONE) || !text_matches(cmd, e.msg)) {
            fail_msg(c, cmd, "failed the wrong way: %s, expected %s", e.msg,
                     json_string_value(json_object_get(cmd, "text")));
            return;
        }
        c->passed++;
    } else {
        c->skipped++;
        if (c->verbose)
            printf("    SKIP unknown command %s\n", type);
    }
}

static bool newer(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_mtime >= sb.st_mtime;
}

static int run_file(const char *spec, const char *work, const char *name, bool verbose)
{
    char src[4096], json[4096], cmdline[8192];
    snprintf(src, sizeof src, "%s/%s.wast", spec, name);
    snprintf(json, sizeof json, "%s/%s.json", work, name);
    if (!newer(json, src)) {
        snprintf(cmdline, sizeof cmdline,
                 "cd '%s' && wast2json '%s' -o '%s.json' 2>'%s.wast2json.err'", work, src, name,
                 name);
        if (system(cmdline) != 0) {
            printf("  %-28s conversion FAILED (see %s/%s.wast2json.err)\n", name, work, name);
            t_failed++;
            return 1;
        }
    }
    json_error_t jerr;
    json_t *root = json_load_file(json, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        printf("  %-28s cannot parse %s: %s\n", name, json, jerr.text);
        t_failed++;
        return 1;
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.work = work;
    c.file = name;
    c.verbose = verbose;
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_memory_pages = 65536;
    lim.max_table_elems = 10000000;
    lim.max_call_depth = 20000;
    c.store = mt_wasm_store_new(&lim);
    if (!c.store || !make_spectest(c.store)) {
        printf("  %-28s cannot create store\n", name);
        json_decref(root);
        return 1;
    }
    json_t *cmds = json_object_get(root, "commands");
    for (size_t i = 0; i < json_array_size(cmds); i++)
        run_command(&c, json_array_get(cmds, i));
    printf("  %-28s passed %6ld  failed %5ld  skipped %5ld (text modules %ld)\n", name, c.passed,
           c.failed, c.skipped, c.text_skipped);
    t_passed += c.passed, t_failed += c.failed, t_skipped += c.skipped;
    t_text += c.text_skipped;
    mt_wasm_store_free(c.store);
    for (size_t i = 0; i < g_nmods; i++)
        mt_wasm_module_free(g_mods[i]);
    free(g_mods);
    g_mods = NULL, g_nmods = 0;
    for (size_t i = 0; i < c.nregs; i++)
        free(c.regs[i].name);
    for (size_t i = 0; i < c.nnamed; i++)
        free(c.named[i].name);
    free(c.regs);
    free(c.named);
    json_decref(root);
    return c.failed ? 1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *spec = getenv("MESATEE_WASM_SPEC_DIR");
    const char *work = "wasm-spec-work";
    long floor = 0;
    bool verbose = false, strict = false;
    char **names = calloc((size_t)argc + 1, sizeof *names);
    size_t nnames = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--floor") && i + 1 < argc)
            floor = atol(argv[++i]);
        else if (!strcmp(argv[i], "--work") && i + 1 < argc)
            work = argv[++i];
        else if (!strcmp(argv[i], "--spec") && i + 1 < argc)
            spec = spec && *spec ? spec : argv[++i];
        else if (!strcmp(argv[i], "-v"))
            verbose = true;
        else if (!strcmp(argv[i], "--strict-messages"))
            strict = true;
        else
            names[nnames++] = argv[i];
    }
    if (!spec || !*spec)
        spec = MT_WASM_SPEC_DIR;
    DIR *d = opendir(spec);
    if (!d) {
        printf("spec_runner: SKIPPED: no test vectors at %s (set MESATEE_WASM_SPEC_DIR)\n", spec);
        free(names);
        return SKIP_CODE;
    }
    if (system("wast2json --version >/dev/null 2>&1") != 0) {
        printf("spec_runner: SKIPPED: wast2json not found (apt-get install wabt)\n");
        closedir(d);
        free(names);
        return SKIP_CODE;
    }
    char **all = NULL;
    size_t nall = 0;
    if (nnames == 0) {
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l > 5 && !strcmp(de->d_name + l - 5, ".wast")) {
                all = realloc(all, (nall + 1) * sizeof *all);
                all[nall++] = strndup(de->d_name, l - 5);
            }
        }
        if (nall)
            qsort(all, nall, sizeof *all, cmp_str);
    }
    closedir(d);
    if (nnames == 0 && nall == 0) {
        printf("spec_runner: SKIPPED: no .wast files in %s\n", spec);
        free(all);
        free(names);
        return SKIP_CODE;
    }
    if (mkdir(work, 0755) != 0 && errno != EEXIST) {
        printf("spec_runner: cannot create %s\n", work);
        return 1;
    }
    printf("spec_runner: %s -> %s\n", spec, work);
    size_t n = nnames ? nnames : nall;
    int files_failed = 0;
    for (size_t i = 0; i < n; i++)
        files_failed += run_file(spec, work, nnames ? names[i] : all[i], verbose);
    printf("spec_runner: TOTAL files %zu (with failures %d): passed %ld, failed %ld, skipped %ld "
           "(text-format assert_malformed/invalid: %ld)\n",
           n, files_failed, t_passed, t_failed, t_skipped, t_text);
    printf("spec_runner: assert_invalid/assert_malformed refused with another message than the "
           "spec's: %ld%s\n",
           t_mismatch, t_mismatch > MISMATCH_SHOWN && !verbose ? " (first ones shown; -v: all)" : "");
    printf("spec_runner: floor %ld: %s\n", floor, t_passed >= floor ? "OK" : "BELOW FLOOR");
    for (size_t i = 0; i < nall; i++)
        free(all[i]);
    free(all);
    free(names);
    if (t_passed + t_failed == 0) {
        printf("spec_runner: SKIPPED: no command was run\n");
        return SKIP_CODE;
    }
    if (t_failed > 0 || files_failed > 0) {
        printf("spec_runner: FAILED: %ld failed commands in %d files\n", t_failed, files_failed);
        return 1;
    }
    if (strict && t_mismatch > 0) {
        printf("spec_runner: FAILED: %ld message mismatches (--strict-messages)\n", t_mismatch);
        return 1;
    }
    return t_passed >= floor ? 0 : 1;
}
