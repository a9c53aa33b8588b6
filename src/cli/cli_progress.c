/* cli_progress: see cli_progress.h. */
#include "cli_progress.h"

#include "mt_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    char what[96];
    bool drawn;
    int64_t last_ms;
    size_t last_len;
} g;

/* "12.3 MiB" style size into buf. */
static const char *human(uint64_t n, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

static void draw(const char *line)
{
    size_t n = strlen(line);
    /* pad over a longer previous line */
    fprintf(stderr, "\r%s%*s", line, g.last_len > n ? (int)(g.last_len - n) : 0, "");
    fflush(stderr);
    g.last_len = n;
    g.drawn = true;
}

static void on_progress(const mesatee_progress *p, void *ud)
{
    (void)ud;
    char line[200], a[32], b[32];
    if (p->task_status) { /* one line per poll of task wait */
        snprintf(line, sizeof line, "%s: %s (%lds)", g.what, p->task_status, p->waited_s);
        draw(line);
        return;
    }
    uint64_t now = p->up_total ? p->up_now : p->down_now;
    uint64_t total = p->up_total ? p->up_total : p->down_total;
    if (!now && !total)
        return;
    int64_t t = mt_mono_ms();
    bool done = total && now >= total;
    if (!done && g.drawn && t - g.last_ms < 200) /* redraw at most 5 times a second */
        return;
    g.last_ms = t;
    if (total)
        snprintf(line, sizeof line, "%s: %s / %s (%" PRIu64 "%%)", g.what, human(now, a, sizeof a),
                 human(total, b, sizeof b), now * 100 / total);
    else
        snprintf(line, sizeof line, "%s: %s", g.what, human(now, a, sizeof a));
    draw(line);
}

void cli_progress_begin(cli_ctx *ctx, const char *what)
{
    const char *env = getenv("MESATEE_PROGRESS");
    bool want = env && *env ? strcmp(env, "0") != 0 : isatty(STDERR_FILENO) == 1;
    if (!want || !ctx->client)
        return;
    memset(&g, 0, sizeof g);
    snprintf(g.what, sizeof g.what, "%s", what);
    mesatee_client_set_progress(ctx->client, on_progress, NULL);
}

void cli_progress_end(cli_ctx *ctx)
{
    if (ctx->client)
        mesatee_client_set_progress(ctx->client, NULL, NULL);
    if (g.drawn) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    g.drawn = false;
}
