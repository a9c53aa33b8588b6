/* bench_cluster: the store's cost per task (issue 14 "Benchmark"): one
 * mesatee node on SQLite (the anchor: the embedded default) beside one node
 * on PostgreSQL, measured in the same run, interleaved in every round.
 *
 * Columns, per server (run.sh starts them; soft attestation, the client
 * verifies the evidence in its TLS handshake, connections kept alive):
 *   wait ms   echo invoke -> the client sees "finished" through
 *             mesatee_task_wait (one GET, then long polls ?wait=), the task
 *             created and approved before the clock starts: median of the
 *             round's tasks
 *   tasks/s   C clients each invoking all of its M pre-created tasks at once
 *             and then collecting them with mesatee_task_wait: completed
 *             tasks per second
 * Every round is printed, then the median over rounds and the ratio of the
 * servers to the first one.
 *
 * A server whose URL field lists several nodes (URL1|URL2: nodes on one
 * store) is a cluster: the latency tasks alternate between its nodes (each
 * created, invoked and waited for through one node; the other node's
 * scheduler may run it), and throughput client i talks to node i mod N.
 *
 * Usage: bench_cluster -S NAME,URL[|URL...],POLICY,FUNCTION (2..4 times, the
 *   first is the anchor) -u USER -w PASSWORD_FILE [-r ROUNDS] [-n LATENCY_TASKS]
 *   [-m TASKS_PER_CLIENT] [-c CLIENTS] [-x "LABEL: TEXT"] (a column that is
 *   not measured, printed as TEXT in every row, e.g. a configuration this
 *   build cannot run yet) */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mesatee.h"

#define MAX_SRV 4
#define MAX_ROUNDS 20
#define MAX_LAT 64
#define MAX_CLIENTS 16
#define MAX_PER 64

#define MAX_NODES 4

typedef struct server {
    char *name, *url, *policy, *fn;
    char *urls[MAX_NODES];
    int nurls;
    char token[512];
    double wait[MAX_ROUNDS], tput[MAX_ROUNDS];
} server;

static int g_rounds = 5, g_lat = 20, g_per_client = 20, g_clients = 4;
static const char *g_user, *g_pwfile, *g_extra;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_cluster: %s: %s\n", what, msg ? msg : "failed");
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double t[MAX_LAT > MAX_ROUNDS ? MAX_LAT : MAX_ROUNDS];
    if (n <= 0)
        return -1;
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* A client of node i (mod the server's nodes). */
static mesatee_client *client_of(server *s, int i)
{
    mesatee_client *c = mesatee_client_new(s->urls[i % s->nurls]);
    if (!c || mesatee_client_set_policy_file(c, s->policy) != MESATEE_OK ||
        (s->token[0] && mesatee_client_set_token(c, s->token) != MESATEE_OK))
        die("client", mesatee_client_errmsg(c));
    return c;
}

static void login(server *s)
{
    char pw[256] = "";
    FILE *f = fopen(g_pwfile, "r");
    if (!f || !fgets(pw, sizeof pw, f))
        die("password file", g_pwfile);
    fclose(f);
    pw[strcspn(pw, "\r\n")] = 0;
    mesatee_client *c = client_of(s, 0); /* the token is valid on every node */
    char *tok = NULL, *out = NULL;
    if (mesatee_login(c, g_user, pw, &tok, &out) != MESATEE_OK)
        die("login", mesatee_client_errmsg(c));
    snprintf(s->token, sizeof s->token, "%s", tok);
    mesatee_free(tok);
    mesatee_free(out);
    mesatee_client_free(c);
}

static void new_task(server *s, mesatee_client *c, char id[33])
{
    char spec[256], *tid = NULL, *out = NULL;
    snprintf(spec, sizeof spec, "{\"function_id\":\"%s\",\"arguments\":{\"message\":\"hi\"}}",
             s->fn);
    if (mesatee_task_create(c, spec, &tid, &out) != MESATEE_OK)
        die("task create", mesatee_client_errmsg(c));
    snprintf(id, 33, "%s", tid);
    mesatee_free(tid);
    mesatee_free(out);
    out = NULL;
    (void)mesatee_task_approve(c, id, &out); /* the creator may have approved already */
    mesatee_free(out);
}

static void invoke(mesatee_client *c, const char *id)
{
    char *out = NULL;
    if (mesatee_task_invoke(c, id, &out) != MESATEE_OK)
        die("task invoke", mesatee_client_errmsg(c));
    mesatee_free(out);
}

static bool wait_done(mesatee_client *c, const char *id)
{
    char st[16] = "", *out = NULL;
    mesatee_status rc = mesatee_task_wait(c, id, 60, st, &out);
    mesatee_free(out);
    return rc == MESATEE_OK && !strcmp(st, "finished");
}

static void latency(server *s, int round)
{
    mesatee_client *cs[MAX_NODES];
    for (int k = 0; k < s->nurls; k++)
        cs[k] = client_of(s, k);
    double v[MAX_LAT];
    for (int i = 0; i < g_lat; i++) {
        char id[33];
        mesatee_client *c = cs[i % s->nurls];
        new_task(s, c, id);
        double t0 = now_ms();
        invoke(c, id);
        if (!wait_done(c, id))
            die("latency task", "did not finish");
        v[i] = now_ms() - t0;
    }
    s->wait[round] = median(v, g_lat);
    for (int k = 0; k < s->nurls; k++)
        mesatee_client_free(cs[k]);
}

typedef struct tput_arg {
    server *s;
    int idx;
    pthread_barrier_t *bar;
    char ids[MAX_PER][33];
    bool ok;
} tput_arg;

static void *tput_client(void *p)
{
    tput_arg *a = p;
    mesatee_client *c = client_of(a->s, a->idx);
    for (int i = 0; i < g_per_client; i++)
        new_task(a->s, c, a->ids[i]);
    pthread_barrier_wait(a->bar); /* created, connection up: the clock starts */
    pthread_barrier_wait(a->bar);
    a->ok = true;
    for (int i = 0; i < g_per_client; i++)
        invoke(c, a->ids[i]);
    for (int i = 0; i < g_per_client; i++)
        a->ok = wait_done(c, a->ids[i]) && a->ok;
    mesatee_client_free(c);
    return NULL;
}

static void throughput(server *s, int round)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)g_clients + 1);
    static tput_arg a[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    for (int i = 0; i < g_clients; i++) {
        a[i].s = s;
        a[i].idx = i;
        a[i].bar = &bar;
        if (pthread_create(&th[i], NULL, tput_client, &a[i]) != 0)
            die("thread", NULL);
    }
    pthread_barrier_wait(&bar);
    double t0 = now_ms();
    pthread_barrier_wait(&bar);
    for (int i = 0; i < g_clients; i++)
        pthread_join(th[i], NULL);
    double t = now_ms() - t0;
    for (int i = 0; i < g_clients; i++)
        if (!a[i].ok)
            die("throughput", "a task did not finish");
    pthread_barrier_destroy(&bar);
    s->tput[round] = (double)(g_clients * g_per_client) * 1000.0 / t;
}

static void parse_server(server *s, char *spec)
{
    char **f[] = {&s->name, &s->url, &s->policy, &s->fn};
    char *save = NULL, *tok = strtok_r(spec, ",", &save);
    for (size_t i = 0; i < 4; i++, tok = strtok_r(NULL, ",", &save)) {
        if (!tok)
            die("server spec", "NAME,URL,POLICY,FUNCTION");
        *f[i] = tok;
    }
    char *save2 = NULL;
    for (char *u = strtok_r(s->url, "|", &save2); u; u = strtok_r(NULL, "|", &save2)) {
        if (s->nurls == MAX_NODES)
            die("server spec", "at most 4 nodes (URL1|URL2|...)");
        s->urls[s->nurls++] = u;
    }
    if (!s->nurls)
        die("server spec", "NAME,URL,POLICY,FUNCTION");
}

int main(int argc, char **argv)
{
    static server srv[MAX_SRV];
    int ns = 0, opt;
    while ((opt = getopt(argc, argv, "S:u:w:r:n:m:c:x:")) != -1) {
        switch (opt) {
        case 'S':
            if (ns == MAX_SRV)
                die("usage", "at most 4 servers");
            parse_server(&srv[ns++], optarg);
            break;
        case 'u': g_user = optarg; break;
        case 'w': g_pwfile = optarg; break;
        case 'r': g_rounds = atoi(optarg); break;
        case 'n': g_lat = atoi(optarg); break;
        case 'm': g_per_client = atoi(optarg); break;
        case 'c': g_clients = atoi(optarg); break;
        case 'x': g_extra = optarg; break;
        default: die("usage", "see the comment at the top of bench_cluster.c");
        }
    }
    if (ns < 2 || !g_user || !g_pwfile || g_rounds < 1 || g_rounds > MAX_ROUNDS || g_lat < 1 ||
        g_lat > MAX_LAT || g_clients < 1 || g_clients > MAX_CLIENTS || g_per_client < 1 ||
        g_per_client > MAX_PER)
        die("usage", "2..4 -S servers, -u, -w; rounds 1..20, -n 1..64, -c 1..16, -m 1..64");
    for (int i = 0; i < ns; i++)
        login(&srv[i]);
    for (int r = 0; r < g_rounds; r++) {
        /* interleaved: every server's latency, then every server's throughput,
         * the order rotated each round */
        for (int k = 0; k < ns; k++)
            latency(&srv[(k + r) % ns], r);
        for (int k = 0; k < ns; k++)
            throughput(&srv[(k + r) % ns], r);
        fprintf(stderr, "bench_cluster: round %d done\n", r + 1);
    }
    printf("\nbench_cluster: %d rounds; per round and server: %d latency tasks (median), "
           "%d clients x %d tasks (throughput)\n\n",
           g_rounds, g_lat, g_clients, g_per_client);
    char label[64] = "", text[128] = "";
    if (g_extra) {
        const char *colon = strchr(g_extra, ':');
        snprintf(label, sizeof label, "%.*s", colon ? (int)(colon - g_extra) : 0, g_extra);
        snprintf(text, sizeof text, "%s", colon ? colon + 1 + (colon[1] == ' ') : g_extra);
    }
    printf("| round |");
    for (int i = 0; i < ns; i++)
        printf(" %s wait ms | %s tasks/s |", srv[i].name, srv[i].name);
    if (g_extra)
        printf(" %s |", label);
    printf("\n|---|");
    for (int i = 0; i < ns; i++)
        printf("---|---|");
    printf(g_extra ? "---|\n" : "\n");
    for (int r = 0; r < g_rounds; r++) {
        printf("| %d |", r + 1);
        for (int i = 0; i < ns; i++)
            printf(" %.2f | %.1f |", srv[i].wait[r], srv[i].tput[r]);
        if (g_extra)
            printf(" %s |", text);
        printf("\n");
    }
    printf("| median |");
    double mw[MAX_SRV], mt[MAX_SRV];
    for (int i = 0; i < ns; i++) {
        mw[i] = median(srv[i].wait, g_rounds);
        mt[i] = median(srv[i].tput, g_rounds);
        printf(" %.2f | %.1f |", mw[i], mt[i]);
    }
    if (g_extra)
        printf(" %s |", text);
    printf("\n\nwait = invoke -> the client sees finished (mesatee_task_wait: a GET, then long "
           "polls); tasks/s = each client invokes all its tasks, then collects them.\n");
    for (int i = 1; i < ns; i++)
        printf("%s / %s per task: latency %.2fx, time per task at throughput %.2fx "
               "(medians over rounds)\n",
               srv[i].name, srv[0].name, mw[i] / mw[0], mt[0] / mt[i]);
    return 0;
}
