/* cmd_admin: operator commands on a data directory, run on the server's host
 * as the user that owns it: `backup`, `restore`, `audit export` and
 * `audit verify --export`. See docs/operations.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifdef MT_CLI_HAVE_CORE
#include "mt_backup.h"
#include "mt_core.h"
#include "mt_util.h"
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
    mt_backup_info info;
    mt_status st = mt_backup_create(dir, level, out, &info, &err);
    if (st != MT_OK)
        return cli_fail("backup of %s failed (no file written): %s", dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    if (ctx->json)
        printf("{\"out\":\"%s\",\"files\":%u,\"bytes\":%llu,\"level\":\"%s\",\"sha256\":\"%s\"}\n",
               out, info.entries, (unsigned long long)info.bytes, info.level, info.sha256);
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
    if (!in || !*in)
        return cli_usage_error(ctx, "missing --in FILE (the backup archive)");
    if (!dir || !*dir)
        return cli_usage_error(ctx, "missing --data-dir DIR (a new or empty directory)");
#ifdef MT_CLI_HAVE_CORE
    mt_err err;
    mt_err_clear(&err);
    mt_backup_info info;
    mt_status st = mt_backup_restore(in, dir, &info, &err);
    if (st != MT_OK)
        return cli_fail("restore of %s failed (nothing written to %s): %s", in, dir,
                        err.msg[0] ? err.msg : mt_status_name(st));
    char when[32];
    mt_time_format(info.created, when);
    if (ctx->json)
        printf("{\"data_dir\":\"%s\",\"files\":%u,\"bytes\":%llu,\"level\":\"%s\","
               "\"created\":\"%s\",\"sha256\":\"%s\"}\n",
               dir, info.entries, (unsigned long long)info.bytes, info.level, when, info.sha256);
    else
        printf("restored %u files (%llu bytes) into %s from a backup of %s (level %s); start "
               "`mesatee serve --data-dir %s` at that level\n",
               info.entries, (unsigned long long)info.bytes, dir, when, info.level, dir);
    return CLI_OK;
#else
    return cli_fail("this mesatee binary was built without mt_core");
#endif
}
