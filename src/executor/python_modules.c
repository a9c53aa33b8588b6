/* python_modules: the operator's python allow-list (python_modules.h). */
#include "python_modules.h"

#include <stdlib.h>
#include <string.h>

#include "mt_bschema.h"

#define MAX_NAMES 512
#define MAX_NAME 64

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_set(char **set, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(set[i], name))
            return true;
    return false;
}

/* Splits list at ',' into names[] (copies); MT_EINVAL names the option. */
static mt_status split(const char *opt, const char *list, char **names, size_t *n, mt_err *err)
{
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            if (!valid_name(p, len))
                return mt_err_set(err, MT_EINVAL,
                                  "%s: '%.*s' is not a top-level module name "
                                  "([A-Za-z_][A-Za-z0-9_]{0,63})",
                                  opt, (int)(len > MAX_NAME ? MAX_NAME : len), p);
            if (*n >= MAX_NAMES)
                return mt_err_set(err, MT_EINVAL, "%s: more than %d modules", opt, MAX_NAMES);
            if (!(names[*n] = strndup(p, len)))
                return mt_err_set(err, MT_ENOMEM, "out of memory");
            (*n)++;
        }
        p = e ? e + 1 : NULL;
    }
    return MT_OK;
}

mt_status mt_python_modules_effective(const char *allow, const char *deny, char **out,
                                      mt_err *err)
{
    *out = NULL;
    char **set = calloc(2 * MAX_NAMES, sizeof *set), **add = calloc(MAX_NAMES, sizeof *add),
         **del = calloc(MAX_NAMES, sizeof *del);
    size_t n = 0, na = 0, nd = 0;
    mt_status rc = MT_OK;
    if (!set || !add || !del) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (const char *const *m = mt_bschema_python_modules(); *m; m++)
        set[n++] = (char *)*m; /* not owned */
    if ((rc = split("--python-allow", allow, add, &na, err)) ||
        (rc = split("--python-deny", deny, del, &nd, err)))
        goto out;
    for (size_t i = 0; i < nd; i++) {
        if (!strcmp(del[i], "mesatee")) {
            rc = mt_err_set(err, MT_EINVAL,
                            "--python-deny: 'mesatee' is the functions' own interface and "
                            "cannot be denied");
            goto out;
        }
        if (in_set(add, na, del[i])) {
            rc = mt_err_set(err, MT_EINVAL, "--python-deny: '%s' is also in --python-allow",
                            del[i]);
            goto out;
        }
        if (!in_set(set, n, del[i])) {
            rc = mt_err_set(err, MT_EINVAL,
                            "--python-deny: '%s' is not in the default allow-list "
                            "(`mesatee function builtins python` lists it)",
                            del[i]);
            goto out;
        }
    }
    for (size_t i = 0; i < na; i++)
        if (!in_set(set, n, add[i]))
            set[n++] = add[i];
    /* drop the denied ones, then sort */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!in_set(del, nd, set[i]))
            set[k++] = set[i];
    n = k;
    qsort(set, n, sizeof *set, cmp_str);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(set[i]) + 1;
    if (len > MT_PYTHON_MODULES_MAX) {
        rc = mt_err_set(err, MT_ETOOBIG,
                        "--python-allow: the allow-list is longer than %d bytes",
                        MT_PYTHON_MODULES_MAX);
        goto out;
    }
    char *t = malloc(len + 1), *p = t;
    if (!t) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    *t = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(set[i]);
        if (i)
            *p++ = ',';
        memcpy(p, set[i], l);
        p += l;
        *p = 0;
    }
    *out = t;
out:
    for (size_t i = 0; add && i < na; i++)
        free(add[i]);
    for (size_t i = 0; del && i < nd; i++)
        free(del[i]);
    free(set);
    free(add);
    free(del);
    return rc;
}

bool mt_python_modules_valid(const char *text)
{
    if (!text || strlen(text) > MT_PYTHON_MODULES_MAX || !*text)
        return false;
    const char *p = text, *prev = NULL;
    size_t prev_len = 0;
    bool has_mesatee = false;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!valid_name(p, len))
            return false;
        if (prev) { /* strictly increasing, as strcmp orders them */
            size_t m = prev_len < len ? prev_len : len;
            int c = memcmp(prev, p, m);
            if (c > 0 || (c == 0 && prev_len >= len))
                return false;
        }
        if (len == 7 && !memcmp(p, "mesatee", 7))
            has_mesatee = true;
        prev = p;
        prev_len = len;
        if (!e)
            break;
        p = e + 1;
    }
    return has_mesatee;
}

bool mt_python_modules_has(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, name, n))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}
