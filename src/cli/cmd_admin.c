/* cmd_admin: operator commands on a data directory, run on the server's host
 * as the user that owns it: `backup`, `restore`, `audit export` and
 * `audit verify --export`; `audit prune`, which asks the running daemon
 * (only it holds the audit key that MACs the prune anchor). See
 * docs/operations.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifdef MT_CLI_HAVE_CORE
#include "mt_attest.h"
#include "mt_audit_export.h"
#include "mt_backup.h"
#include "mt_core.h"
#include "mt_util.h"
#endif

#define MAX_EXPORTS 64
#define MAX_CPS 64
#define EXPORT_READ_MAX (1u << 30)

#ifdef MT_CLI_HAVE_CORE
/* Prints o (taken) as one line of JSON on stdout. */
static void print_json(json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (t)
        printf("%s\n", t);
    else
        fprintf(stderr, "mesatee: out of memory\n");
    free(t);
}
#endif

int cli_cmd_backup(cli_ctx *ctx)
{
    const char *dir = cli_opt_get(ctx, "data-dir"), *out = cli_opt_get(ctx, "out");
    const char *level = cli_opt_get(ctx, "level");
    if (!dir || !*dir)
        return cli_usage_error(ctx, "missing --data-dir DIR (the server's data directory)");
    if (!out || !*out)
        return cli_usage_error(ctx, "missing --out FILE (the backup archive to write)");
#ifdef MT_CLI_HAVE_CORE
    static const char *const levels[] = {"none", "soft", "tpm2", "sev-snp", "tdx", "sgx", NULL};
    if (level) {
        bool ok = false;
        for (int i = 0; levels[i]; i++)
            ok = ok || !strcmp(level, levels[i]);
        if (!ok)
            return cli_usage_error(ctx, "--level must be one of none, soft, tpm2, sev-snp, "
                                        "tdx, sgx");
    }
    mt_err err;
    mt_err_clear(&err);
    if (mt_backup_store_check(dir, cli_opt_get(ctx, "store"), &err) != MT_OK)
        return cli_usage_error(ctx, "--store: %s", err.msg);
    mt_backup_info info;
    mt_status st = mt_backup_create(dir, level, out, &info, &err);
    if (st != MT_OK)
        return cli_fail("backup of %s failed (no file written): %s", dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    if (ctx->json)
        print_json(json_pack("{s:s, s:I, s:I, s:s, s:s}", "out", out, "files",
                             (json_int_t)info.entries, "bytes", (json_int_t)info.bytes, "level",
                             info.level, "sha256", info.sha256));
    else
        printf("backup written to %s: %u files, %llu bytes, level %s, sha256 %s\n", out,
               info.entries, (unsigned long long)info.bytes, info.level, info.sha256);
    return CLI_OK;
#else
    (void)level;
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

int cli_cmd_restore(cli_ctx *ctx)
{
    const char *in = cli_opt_get(ctx, "in"), *dir = cli_opt_get(ctx, "data-dir");
    bool check = cli_opt_has(ctx, "check");
    if (!in || !*in)
        return cli_usage_error(ctx, "missing --in FILE (the backup archive)");
    if (check && dir)
        return cli_usage_error(ctx, "--check verifies only: give it without --data-dir");
    if (!check && (!dir || !*dir))
        return cli_usage_error(ctx, "missing --data-dir DIR (a new or empty directory)");
#ifdef MT_CLI_HAVE_CORE
    mt_err err;
    mt_err_clear(&err);
    mt_backup_info info;
    if (check) {
        int fd = open(in, O_RDONLY | O_CLOEXEC);
        mt_status st = fd < 0 ? mt_err_set(&err, MT_EIO, "cannot open %s: %s", in,
                                           strerror(errno))
                              : mt_backup_read_fd(fd, NULL, NULL, &info, &err);
        if (fd >= 0)
            close(fd);
        if (st != MT_OK)
            return cli_fail("backup %s does not verify: %s", in,
                            err.msg[0] ? err.msg : mt_status_name(st));
        char when[32];
        mt_time_format(info.created, when);
        if (ctx->json)
            print_json(json_pack("{s:s, s:b, s:I, s:I, s:s, s:s, s:s}", "in", in, "intact", 1,
                                 "files", (json_int_t)info.entries, "bytes",
                                 (json_int_t)info.bytes, "level", info.level, "created", when,
                                 "sha256", info.sha256));
        else
            printf("backup %s intact: %u files, %llu bytes, level %s, made %s, sha256 %s\n",
                   in, info.entries, (unsigned long long)info.bytes, info.level, when,
                   info.sha256);
        return CLI_OK;
    }
    mt_status st = mt_backup_restore(in, dir, &info, &err);
    if (st != MT_OK)
        return cli_fail("restore of %s failed (nothing written to %s): %s", in, dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    char when[32];
    mt_time_format(info.created, when);
    if (ctx->json)
        print_json(json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "data_dir", dir, "files",
                             (json_int_t)info.entries, "bytes", (json_int_t)info.bytes, "level",
                             info.level, "created", when, "sha256", info.sha256));
    else
        printf("restored %u files (%llu bytes) into %s from a backup of %s (level %s); start "
               "`mesatee serve --data-dir %s` at that level\n",
               info.entries, (unsigned long long)info.bytes, dir, when, info.level, dir);
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

int cli_cmd_audit_export(cli_ctx *ctx)
{
    const char *dir = cli_opt_get(ctx, "data-dir"), *since = cli_opt_get(ctx, "since");
    const char *out = cli_opt_get(ctx, "out");
    if (!dir || !*dir)
        return cli_usage_error(ctx, "missing --data-dir DIR (the server's data directory)");
    if (!since || !*since)
        return cli_usage_error(ctx, "missing --since SEQ|TIME (first entry, or RFC 3339 time)");
    if (!out || !*out)
        return cli_usage_error(ctx, "missing --out FILE");
#ifdef MT_CLI_HAVE_CORE
    int64_t seq = 1, t = INT64_MIN;
    if (strspn(since, "0123456789") == strlen(since)) {
        char *end;
        errno = 0;
        long long v = strtoll(since, &end, 10);
        if (errno || v < 1 || strlen(since) > 18)
            return cli_usage_error(ctx, "--since: sequence number out of range (1..)");
        seq = v;
    } else {
        mt_err terr;
        if (mt_attest_time_parse(since, &t, &terr) != MT_OK)
            return cli_usage_error(ctx, "--since must be an entry number or an RFC 3339 time "
                                        "such as 2026-01-31T00:00:00Z");
    }
    mt_err err;
    mt_err_clear(&err);
    mt_audit_export_info info;
    const char *store = cli_opt_get(ctx, "store");
    if (!store || !*store)
        store = getenv("MESATEE_STORE"); /* as serve's */
    mt_status st = mt_audit_export_write(dir, store, seq, t, out, &info, &err);
    if (st != MT_OK)
        return cli_fail("audit export from %s failed (no file written): %s", dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    if (ctx->json)
        print_json(json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}", "out", out, "first",
                             (json_int_t)info.first, "last", (json_int_t)info.last, "entries",
                             (json_int_t)info.entries, "anchor", info.anchor, "head",
                             info.head));
    else
        printf("exported audit entries %llu..%llu (%llu) to %s; anchor %s, head %s\n",
               (unsigned long long)info.first, (unsigned long long)info.last,
               (unsigned long long)info.entries, out, info.anchor, info.head);
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

int cli_audit_verify_exports(cli_ctx *ctx)
{
#ifdef MT_CLI_HAVE_CORE
    const char *files[MAX_EXPORTS];
    int nf = cli_opt_all(ctx, "export", files, MAX_EXPORTS);
    if (nf <= 0)
        return cli_usage_error(ctx, "--export FILE: at most %d files", MAX_EXPORTS);
    mt_audit_checkpoint cps[MAX_CPS];
    int nc = 0;
    int rc = cli_load_checkpoints(ctx, cps, &nc);
    if (rc != CLI_OK)
        return rc;
    uint64_t at[MAX_CPS];
    char hash_at[MAX_CPS][65];
    bool matched[MAX_CPS] = {false};
    for (int i = 0; i < nc; i++)
        at[i] = cps[i].entries;
    mt_audit_export_info prev, cur, first_info;
    memset(&prev, 0, sizeof prev);
    memset(&first_info, 0, sizeof first_info);
    for (int i = 0; i < nf; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        mt_err err;
        mt_err_clear(&err);
        mt_status st = mt_file_read(files[i], EXPORT_READ_MAX, &buf, &len, &err);
        if (st == MT_OK)
            st = mt_audit_export_verify(buf, len, at, hash_at, (size_t)nc, &cur, &err);
        free(buf);
        if (st != MT_OK)
            return cli_fail("audit export %s: %s", files[i],
                            err.msg[0] ? err.msg : mt_status_name(st));
        if (i == 0)
            first_info = cur;
        else if (cur.first != prev.last + 1 || strcmp(cur.anchor, prev.head))
            return cli_fail("audit export %s does not continue %s (entries %llu.. after "
                            "..%llu, or its anchor is not the previous head)",
                            files[i], files[i - 1], (unsigned long long)cur.first,
                            (unsigned long long)prev.last);
        for (int k = 0; k < nc; k++) {
            if (cps[k].entries < cur.first || cps[k].entries > cur.last)
                continue;
            if (strcmp(hash_at[k], cps[k].head))
                return cli_fail("audit export %s was rewritten: entry %llu differs from the "
                                "held checkpoint",
                                files[i], (unsigned long long)cps[k].entries);
            matched[k] = true;
        }
        prev = cur;
    }
    int n_matched = 0;
    for (int k = 0; k < nc; k++)
        n_matched += matched[k];
    const char *dir = cli_opt_get(ctx, "data-dir");
    bool store = false;
    if (dir && *dir) {
        /* the store still holds the exported entries with the same hashes
         * (its entry `last` is the export's head), and the held checkpoints */
        mt_audit_checkpoint all[MAX_CPS + 1];
        size_t na = 0;
        for (int k = 0; k < nc; k++)
            if (!matched[k]) /* those inside an export are checked there */
                all[na++] = cps[k];
        memset(&all[na], 0, sizeof all[na]);
        all[na].entries = prev.last;
        memcpy(all[na].head, prev.head, 65);
        mt_err err;
        mt_err_clear(&err);
        uint64_t entries = 0;
        const char *surl = cli_opt_get(ctx, "store");
        if (!surl || !*surl)
            surl = getenv("MESATEE_STORE"); /* as serve's */
        mt_status st = mt_core_audit_verify_dir(dir, surl, all, na + 1, &entries, &err);
        if (st != MT_OK)
            return cli_fail("the audit log of %s does not continue the exports: %s", dir,
                            err.msg[0] ? err.msg : mt_status_name(st));
        store = true;
    }
    if (ctx->json)
        printf("{\"intact\":true,\"first\":%llu,\"last\":%llu,\"files\":%d,"
               "\"checkpoints_matched\":%d,\"store_continues\":%s}\n",
               (unsigned long long)first_info.first, (unsigned long long)prev.last, nf,
               n_matched, store ? "true" : "false");
    else
        printf("audit exports intact: entries %llu..%llu in %d file(s), chained from anchor "
               "%s; %d held checkpoint(s) inside them%s\n",
               (unsigned long long)first_info.first, (unsigned long long)prev.last, nf,
               first_info.anchor, n_matched,
               store ? "; the store continues them" : "");
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}

int cli_cmd_audit_prune(cli_ctx *ctx)
{
    const char *before = cli_opt_get(ctx, "before"), *file = cli_opt_get(ctx, "export");
    if (!before || !*before)
        return cli_usage_error(ctx, "missing --before SEQ (entries before SEQ are deleted)");
    if (!file || !*file)
        return cli_usage_error(ctx, "missing --export FILE (an audit export covering every "
                                    "entry to delete)");
    char *end;
    errno = 0;
    long long b = strtoll(before, &end, 10);
    if (errno || *end || end == before || before[0] == '-' || b < 2)
        return cli_usage_error(ctx, "--before must be an entry number of at least 2");
#ifdef MT_CLI_HAVE_CORE
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err err;
    mt_err_clear(&err);
    mt_audit_export_info info;
    mt_status st = mt_file_read(file, EXPORT_READ_MAX, &buf, &len, &err);
    if (st == MT_OK)
        st = mt_audit_export_verify(buf, len, NULL, NULL, 0, &info, &err);
    free(buf);
    if (st != MT_OK)
        return cli_fail("audit export %s: %s (nothing pruned)", file,
                        err.msg[0] ? err.msg : mt_status_name(st));
    if (info.last + 1 < (uint64_t)b)
        return cli_fail("audit export %s ends at entry %llu: it does not cover the entries "
                        "before %lld (nothing pruned)",
                        file, (unsigned long long)info.last, b);
    char body[256];
    snprintf(body, sizeof body,
             "{\"before\":%lld,\"export_first\":%llu,\"export_last\":%llu,"
             "\"export_head\":\"%s\"}",
             b, (unsigned long long)info.first, (unsigned long long)info.last, info.head);
    char *resp = NULL;
    if (mesatee_call(ctx->client, "POST", "/v1/audit/prune", body, &resp) != MESATEE_OK) {
        int rc = cli_fail("audit prune refused (nothing pruned): %s",
                          mesatee_client_errmsg(ctx->client));
        mesatee_free(resp);
        return rc;
    }
    json_error_t je;
    json_t *o = json_loads(resp ? resp : "", 0, &je);
    mesatee_free(resp);
    json_int_t seq = json_integer_value(json_object_get(o, "anchor_seq"));
    json_int_t del = json_integer_value(json_object_get(o, "deleted"));
    const char *hash = json_string_value(json_object_get(o, "anchor_hash"));
    if (!o || !hash) {
        json_decref(o);
        return cli_fail("audit prune: the server's answer is not understood");
    }
    if (ctx->json)
        print_json(json_incref(o));
    else
        printf("audit log pruned: %lld entries deleted; it now starts after anchor entry %lld "
               "(hash %s), covered by %s\n",
               (long long)del, (long long)seq, hash, file);
    json_decref(o);
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}
