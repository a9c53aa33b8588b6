/* audit_export: `mesatee audit export` and the export reader; see
 * mt_audit_export.h and docs/formats.md ("Audit export"). */
#include "mt_audit_export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "mt_json.h"
#include "mt_util.h"

#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

static bool hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- writer -------------------------------------------------------------- */

static mt_status put_line(int fd, json_t *o, mt_err *err)
{
    if (!o)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t n = strlen(s);
    mt_status rc = MT_OK;
    if (n >= MT_AUDIT_EXPORT_LINE_MAX)
        rc = mt_err_set(err, MT_EINTERNAL, "audit entry too long to export");
    s[n] = '\n'; /* replaces the NUL: n + 1 bytes go out */
    for (const char *p = s; !rc && p < s + n + 1;) {
        ssize_t k = write(fd, p, (size_t)(s + n + 1 - p));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            rc = mt_err_set(err, MT_EIO, "writing the export failed: %s",
                            k < 0 ? strerror(errno) : "no progress");
        else
            p += k;
    }
    free(s);
    return rc;
}

mt_status mt_audit_export_write(const char *data_dir, const char *store, int64_t since_seq,
                                int64_t since_time, const char *out_path,
                                mt_audit_export_info *info, mt_err *err)
{
    if (!data_dir || !*data_dir || !out_path || !*out_path)
        return mt_err_set(err, MT_EINVAL, "audit export needs a data directory and a file");
    uint64_t total = 0;
    /* the chain must hold (unkeyed: this runs outside the TEE) */
    mt_status rc = mt_core_audit_verify_dir(data_dir, store, NULL, 0, &total, err);
    if (rc)
        return rc;
    mt_db *db;
    if ((rc = core_offline_store_open(data_dir, store, &db, err)))
        return rc;
    char tmp[4096 + MT_TMPFILE_EXTRA];
    int fd = -1;
    mt_db_stmt *st = NULL;
    mt_audit_export_info inf;
    memset(&inf, 0, sizeof inf);
    /* one read transaction: the bounds and the rows come from one snapshot */
    if ((rc = mt_db_begin(db, MT_DB_TX_DEFERRED, err)))
        goto out;
    int64_t first = 0, last = 0;
    bool found = false;
    char a[24], t[24];
    snprintf(a, sizeof a, "%lld", (long long)since_seq);
    snprintf(t, sizeof t, "%lld", (long long)since_time);
    if ((rc = store_int(db, err, &first, &found,
                        "SELECT min(seq) FROM audit WHERE seq >= CAST(? AS INTEGER) AND "
                        "time >= CAST(? AS INTEGER)",
                        a, t)) ||
        (rc = store_int(db, err, &last, NULL, "SELECT max(seq) FROM audit")))
        goto out;
    if (first <= 0) {
        rc = mt_err_set(err, MT_ENOTFOUND, "no audit entries at or after the given --since "
                                           "(the log has %llu)",
                        (unsigned long long)total);
        goto out;
    }
    if ((rc = mt_db_prepare(db,
                            "SELECT seq, time, actor, action, object, status, prev_hash, hash, "
                            "mac FROM audit WHERE seq >= ? AND seq <= ? ORDER BY seq",
                            &st, err)))
        goto out;
    mt_db_bind_int64(st, 1, first);
    mt_db_bind_int64(st, 2, last);
    /* the anchor and head, for the header */
    char anchor[65] = "", head[65] = "";
    {
        mt_db_stmt *h;
        if ((rc = mt_db_prepare(db, "SELECT prev_hash FROM audit WHERE seq = ?", &h, err)))
            goto out;
        mt_db_bind_int64(h, 1, first);
        if (mt_db_step(h, &rc, err) == MT_DB_ROW)
            snprintf(anchor, sizeof anchor, "%s", mt_db_col_text(h, 0));
        mt_db_finalize(h);
        if (rc || (rc = mt_db_prepare(db, "SELECT hash FROM audit WHERE seq = ?", &h, err)))
            goto out;
        mt_db_bind_int64(h, 1, last);
        if (mt_db_step(h, &rc, err) == MT_DB_ROW)
            snprintf(head, sizeof head, "%s", mt_db_col_text(h, 0));
        mt_db_finalize(h);
        if (rc)
            goto out;
    }
    if (!hex64(anchor) || !hex64(head)) {
        rc = mt_err_set(err, MT_ECONFLICT, "audit log changed or damaged while exporting");
        goto out;
    }
    if ((rc = mt_tmpfile_open(out_path, 0600, tmp, sizeof tmp, &fd, err)))
        goto out;
    inf.first = (uint64_t)first;
    inf.last = (uint64_t)last;
    inf.entries = (uint64_t)(last - first + 1);
    inf.exported_at = mt_now();
    memcpy(inf.anchor, anchor, 65);
    memcpy(inf.head, head, 65);
    if ((rc = put_line(fd,
                       json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:I}", "format",
                                 MT_AUDIT_EXPORT_FORMAT, "first", (json_int_t)first, "last",
                                 (json_int_t)last, "entries", (json_int_t)inf.entries, "anchor",
                                 anchor, "head", head, "exported_at",
                                 (json_int_t)inf.exported_at),
                       err)))
        goto out;
    uint64_t n = 0;
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW) {
        rc = put_line(fd,
                      json_pack("{s:I, s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "seq",
                                (json_int_t)mt_db_col_int64(st, 0), "time",
                                (json_int_t)mt_db_col_int64(st, 1), "actor",
                                mt_db_col_text(st, 2), "action", mt_db_col_text(st, 3), "object",
                                mt_db_col_text(st, 4), "status",
                                (json_int_t)mt_db_col_int64(st, 5), "prev_hash",
                                mt_db_col_text(st, 6), "hash", mt_db_col_text(st, 7), "mac",
                                mt_db_col_text(st, 8)),
                      err);
        n++;
    }
    if (!rc && n != inf.entries)
        rc = mt_err_set(err, MT_ECONFLICT, "audit log changed while exporting");
    if (!rc) {
        rc = mt_tmpfile_publish(fd, tmp, out_path, err); /* closes fd, removes tmp on error */
        fd = -1;
    }
out:
    mt_db_finalize(st);
    mt_db_rollback(db);
    mt_db_close(db);
    if (fd >= 0)
        mt_tmpfile_discard(fd, tmp);
    if (!rc && info)
        *info = inf;
    return rc;
}

/* ---- reader -------------------------------------------------------------- */

/* The next line of buf (without its '\n'); every line must end with one. */
static mt_status next_line(const uint8_t *buf, size_t len, size_t *pos, const char **line,
                           size_t *ll, uint64_t lineno, mt_err *err)
{
    const uint8_t *s = buf + *pos;
    size_t left = len - *pos;
    size_t cap = left < MT_AUDIT_EXPORT_LINE_MAX ? left : MT_AUDIT_EXPORT_LINE_MAX;
    const uint8_t *nl = memchr(s, '\n', cap);
    if (!nl)
        return mt_err_set(err, MT_EINVAL,
                          left > MT_AUDIT_EXPORT_LINE_MAX
                              ? "audit export: line %llu is too long"
                              : "audit export: line %llu is truncated (no newline)",
                          (unsigned long long)lineno);
    *line = (const char *)s;
    *ll = (size_t)(nl - s);
    *pos += *ll + 1;
    return MT_OK;
}

mt_status mt_audit_export_verify(const uint8_t *buf, size_t len, const uint64_t *at,
                                 char (*hash_at)[65], size_t n_at, mt_audit_export_info *info,
                                 mt_err *err)
{
    static const char *const hkeys[] = {"format", "first",  "last",        "entries",
                                        "anchor", "head",   "exported_at", NULL};
    static const char *const ekeys[] = {"seq",    "time",      "actor", "action", "object",
                                        "status", "prev_hash", "hash",  "mac",    NULL};
    for (size_t i = 0; i < n_at; i++)
        hash_at[i][0] = '\0';
    if (len > MT_AUDIT_EXPORT_MAX)
        return mt_err_set(err, MT_ETOOBIG, "audit export too large");
    mt_audit_export_info inf;
    memset(&inf, 0, sizeof inf);
    size_t pos = 0, ll = 0;
    const char *line = NULL;
    mt_status rc = next_line(buf, len, &pos, &line, &ll, 1, err);
    if (rc)
        return rc;
    json_t *h = mt_json_parse(line, ll, MT_AUDIT_EXPORT_LINE_MAX, 2, err);
    if (!h)
        return mt_err_prefix(err, MT_EINVAL, "audit export header: ");
    const char *fmt, *anchor, *head;
    int64_t first, last, entries, when;
    if ((rc = mt_json_only_keys(h, hkeys, err)) ||
        (rc = mt_json_str(h, "format", 64, &fmt, err)) ||
        (rc = mt_json_int(h, "first", 1, INT64_MAX, &first, err)) ||
        (rc = mt_json_int(h, "last", 1, INT64_MAX, &last, err)) ||
        (rc = mt_json_int(h, "entries", 1, INT64_MAX, &entries, err)) ||
        (rc = mt_json_str(h, "anchor", 64, &anchor, err)) ||
        (rc = mt_json_str(h, "head", 64, &head, err)) ||
        (rc = mt_json_int(h, "exported_at", 0, INT64_MAX, &when, err))) {
        json_decref(h);
        return mt_err_prefix(err, MT_EINVAL, "audit export header: ");
    }
    if (strcmp(fmt, MT_AUDIT_EXPORT_FORMAT) || !hex64(anchor) || !hex64(head) || last < first ||
        entries != last - first + 1 || (first == 1 && strcmp(anchor, ZERO64))) {
        json_decref(h);
        return mt_err_set(err, MT_EINVAL, "not a consistent " MT_AUDIT_EXPORT_FORMAT " header");
    }
    inf.first = (uint64_t)first;
    inf.last = (uint64_t)last;
    inf.entries = (uint64_t)entries;
    inf.exported_at = when;
    memcpy(inf.anchor, anchor, 65);
    memcpy(inf.head, head, 65);
    json_decref(h);
    char prev[65];
    memcpy(prev, inf.anchor, 65);
    for (uint64_t seq = inf.first; seq <= inf.last; seq++) {
        uint64_t lineno = seq - inf.first + 2;
        if (pos == len)
            return mt_err_set(err, MT_EINVAL, "audit export truncated: entry %llu is missing",
                              (unsigned long long)seq);
        if ((rc = next_line(buf, len, &pos, &line, &ll, lineno, err)))
            return rc;
        json_t *e = mt_json_parse(line, ll, MT_AUDIT_EXPORT_LINE_MAX, 2, err);
        if (!e)
            return mt_err_prefix(err, MT_EINVAL, "audit export line %llu: ",
                                 (unsigned long long)lineno);
        const char *actor, *action, *object, *ph, *hh, *mac;
        int64_t s, t, status;
        if ((rc = mt_json_only_keys(e, ekeys, err)) ||
            (rc = mt_json_int(e, "seq", 1, INT64_MAX, &s, err)) ||
            (rc = mt_json_int(e, "time", INT64_MIN, INT64_MAX, &t, err)) ||
            (rc = mt_json_str(e, "actor", 256, &actor, err)) ||
            (rc = mt_json_str(e, "action", 512, &action, err)) ||
            (rc = mt_json_str(e, "object", 512, &object, err)) ||
            (rc = mt_json_int(e, "status", INT32_MIN, INT32_MAX, &status, err)) ||
            (rc = mt_json_str(e, "prev_hash", 64, &ph, err)) ||
            (rc = mt_json_str(e, "hash", 64, &hh, err)) ||
            (rc = mt_json_str(e, "mac", 64, &mac, err))) {
            json_decref(e);
            return mt_err_prefix(err, MT_EINVAL, "audit export line %llu: ",
                                 (unsigned long long)lineno);
        }
        char calc[65];
        if ((uint64_t)s != seq)
            rc = mt_err_set(err, MT_ECONFLICT, "audit export: entry %llu where %llu belongs",
                            (unsigned long long)s, (unsigned long long)seq);
        else if (strcmp(ph, prev))
            rc = mt_err_set(err, MT_ECONFLICT,
                            seq == inf.first
                                ? "audit export: entry %llu does not follow the anchor"
                                : "audit export broken at entry %llu: prev_hash does not match "
                                  "the previous entry",
                            (unsigned long long)seq);
        else {
            audit_entry_hash(prev, s, t, actor, action, object, status, calc);
            if (strcmp(calc, hh))
                rc = mt_err_set(err, MT_ECONFLICT,
                                "audit export broken at entry %llu: its content was changed",
                                (unsigned long long)seq);
        }
        json_decref(e);
        if (rc)
            return rc;
        memcpy(prev, calc, 65);
        for (size_t i = 0; i < n_at; i++)
            if (at[i] == seq)
                memcpy(hash_at[i], calc, 65);
    }
    if (pos != len)
        return mt_err_set(err, MT_EINVAL, "audit export: bytes after entry %llu",
                          (unsigned long long)inf.last);
    if (strcmp(prev, inf.head))
        return mt_err_set(err, MT_ECONFLICT, "audit export: the last entry is not the head "
                                             "its header names");
    if (info)
        *info = inf;
    return MT_OK;
}
