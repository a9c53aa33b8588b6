/* bench_faas: the platform's own per-task overhead (issue 13).
 *
 * Columns, every one measured in each round, interleaved (ours, anchor,
 * ours, anchor ...) so a load change on the shared machine hits all alike:
 *   floor     fork + exec + wait of mesatee-worker given an empty job (it
 *             loads its libraries, reads EOF, reports, exits): the floor of
 *             any per-task process start
 *   spawn     posix_spawn of the worker with the daemon's file actions (the
 *             spawn path's start), same empty job
 *   wasm      an empty wasm module (_start returns at once, one memory page)
 *             decoded, instantiated and called in this process
 *   x-zyg     mt_executor_run of an echo job in this process, worker from
 *   x-spawn   the zygote / from posix_spawn: the worker start plus the
 *             executor's own work, no server
 * For each server (run.sh starts one with --worker-start zygote, one with
 * spawn; soft attestation, the client verifies the evidence in its TLS
 * handshake, connections kept alive):
 *   srv       echo invoke -> finished on the server. When the server log has
 *             the task's trace stamps (the daemon ran with
 *             MESATEE_TRACE_TASKS=1: run.sh TRACE=1), microsecond
 *             CLOCK_MONOTONIC stamps, gw_recv (invoke request parsed) to
 *             event_raised (the task's event, after the outcome's commit),
 *             as bench/faas/trace_breakdown.py's total; else the invoke
 *             request's arrival (access log: time - duration) to the
 *             scheduler's "task ID finished" log line, both with millisecond
 *             stamps (+-1 ms). The legend says which one each server got.
 *   cli       invoke -> the client sees "finished", polling GET every 0.5 ms
 *             (what the server allows a client; the task is created and
 *             approved before the clock starts)
 *   wait      the same with mesatee_task_wait, what a user of `task wait`
 *             sees: long polls (GET /v1/tasks/{id}?wait=), the first request
 *             one already, that the server answers when the task ends
 *             (before issue 13's long poll: polls at 100 ms, then growing)
 *   tput      trivial (echo) tasks completed per second by 8 concurrent
 *             clients, each invoking its next pre-created task when it sees
 *             the previous one finished (polling every 1 ms: each poll is an
 *             authenticated, audited request the server answers)
 *   wtput     the same with mesatee_task_wait (a long poll that the server
 *             answers when the task ends): what a user of libmesatee gets
 *   burst     the same tasks, each client invoking all of its tasks at once
 *             and then collecting them (polling every 10 ms): the server's
 *             rate without a client waiting between tasks
 * Latency columns are the median of the round's tasks in ms; every round is
 * printed, then the median over rounds, then every latency sample (srv, cli
 * and wait of every task, in order).
 *
 * Cost mode (bench/faas/cost.sh): -C URL,POLICY,FUNCTION -M poll|wait|burst
 * [-G FIFO] runs one throughput phase of that kind against one server and
 * prints its rate, the client's requests and its CPU (getrusage); with -G
 * it prints "READY" once the tasks are created and waits for a line on FIFO
 * before it invokes them (the script counts the server's work in between).
 *
 * Usage: bench_faas -A URL,POLICY,FUNCTION,ACCESS_LOG,SERVER_LOG (zygote
 *   server) -B ... (spawn server) [-N NAME: server B's label, default
 *   "spawn"; before -B] -u USER -w PASSWORD_FILE [-r ROUNDS]
 *   [-n LATENCY_TASKS] [-k WAIT_TASKS] [-m TASKS_PER_CLIENT] [-c CLIENTS]
 *   [-i ANCHOR_ITERATIONS] */

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mesatee.h"
#include "mt_executor.h"
#include "mt_wasm.h"
#include "worker_spawn.h"

#define MAX_ROUNDS 20
#define MAX_LAT 64
#define MAX_CLIENTS 32

typedef struct server {
    const char *name, *url, *policy, *fn, *access_log, *server_log;
    char token[512];
    atomic_long invokes; /* invoke requests sent, in order */
    /* per round: latency tasks (id, invoke index), client ms */
    char lat_id[MAX_ROUNDS][MAX_LAT][33];
    long lat_idx[MAX_ROUNDS][MAX_LAT];
    double cli[MAX_ROUNDS][MAX_LAT], wait[MAX_ROUNDS][MAX_LAT], srv[MAX_ROUNDS][MAX_LAT];
    double tput[MAX_ROUNDS], wtput[MAX_ROUNDS], burst[MAX_ROUNDS];
    bool srv_us; /* srv from the trace's microsecond stamps (else ms stamps) */
} server;

static int g_rounds = 5, g_lat = 20, g_wait = 3, g_per_client = 25, g_clients = 8, g_iter = 20;
static const char *g_user, *g_pwfile, *g_go;
static atomic_long g_gets; /* task GETs sent (polls and the waits' requests) */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_faas: %s: %s\n", what, msg ? msg : "failed");
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* This process's CPU time (user + system, all threads) in ms. */
static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double g_cpu_ms; /* CPU of the last throughput phase (cost mode) */

static double median(const double *v, int n)
{
    if (n <= 0)
        return -1;
    double t[256];
    if (n > 256)
        n = 256;
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ---- anchors ---------------------------------------------------------------- */

/* Runs the worker on an empty job: fork+exec (spawn false) or posix_spawn.
 * Returns ms from start to reaped. */
static double worker_once(bool use_spawn)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair", NULL);
    char *argv[] = {"mesatee-worker", NULL}, *envp[] = {NULL};
    double t0 = now_ms();
    pid_t pid;
    if (!use_spawn) {
        pid = fork();
        if (pid == 0) {
            int nul = open("/dev/null", O_RDWR);
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(sv[1], 3);
            close_range(4, ~0u, 0);
            execve(MT_WORKER_PATH, argv, envp);
            _exit(127);
        }
    } else {
        int hi = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        mt_worker_spawn_init(&fa, &at, hi);
        posix_spawn_file_actions_addclosefrom_np(&fa, 4);
        if (posix_spawn(&pid, MT_WORKER_PATH, &fa, &at, argv, envp) != 0)
            pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        close(hi);
    }
    if (pid < 0)
        die("start worker", NULL);
    close(sv[1]);
    shutdown(sv[0], SHUT_WR); /* empty job */
    char buf[4096];
    while (read(sv[0], buf, sizeof buf) > 0)
        ;
    int ws;
    waitpid(pid, &ws, 0);
    double t = now_ms() - t0;
    close(sv[0]);
    return t;
}

/* (module (memory (export "memory") 1) (func (export "_start"))) */
static const uint8_t empty_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, '_',
    's',  't',  'a',  'r',  't',  0x00, 0x00, 0x06, 'm',  'e',  'm',  'o',  'r',  'y',
    0x02, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b};

static double wasm_once(void)
{
    double t0 = now_ms();
    mt_err err = {0};
    mt_wasm_module *m = NULL;
    mt_wasm_store *s = NULL;
    mt_wasm_instance *inst = NULL;
    mt_wasm_extern ex;
    if (mt_wasm_module_new(empty_wasm, sizeof empty_wasm, NULL, &m, &err) != MT_OK ||
        !(s = mt_wasm_store_new(NULL)) ||
        mt_wasm_instantiate(s, m, NULL, NULL, &inst, &err) != MT_OK ||
        mt_wasm_instance_export(inst, "_start", 6, &ex, &err) != MT_OK ||
        mt_wasm_func_call(s, ex.of.func, NULL, 0, NULL, 0, &err) != MT_OK)
        die("wasm", err.msg);
    mt_wasm_store_free(s);
    mt_wasm_module_free(m);
    return now_ms() - t0;
}

static double exec_once(mt_worker_start mode)
{
    mt_executor_set_worker_start(mode);
    mt_job j = {0};
    j.task_id = "00000000000000000000000000000001";
    j.executor_type = "builtin";
    j.function = "echo";
    j.worker_path = MT_WORKER_PATH;
    j.arguments = json_pack("{s:s}", "message", "hi");
    mt_job_result r;
    mt_err err = {0};
    double t0 = now_ms();
    if (mt_executor_run(&j, NULL, NULL, &r, &err) != MT_OK || !r.ok)
        die("executor echo", r.failure_reason ? r.failure_reason : err.msg);
    double t = now_ms() - t0;
    mt_job_result_clear(&r);
    json_decref(j.arguments);
    return t;
}

/* ---- server columns ------------------------------------------------------------ */

static mesatee_client *client_of(server *s)
{
    mesatee_client *c = mesatee_client_new(s->url);
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
    mesatee_client *c = client_of(s);
    char *tok = NULL, *out = NULL;
    if (mesatee_login(c, g_user, pw, &tok, &out) != MESATEE_OK)
        die("login", mesatee_client_errmsg(c));
    snprintf(s->token, sizeof s->token, "%s", tok);
    mesatee_free(tok);
    mesatee_free(out);
    mesatee_client_free(c);
}

/* A created and approved echo task; its id in id. */
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

static void invoke(server *s, mesatee_client *c, const char *id, long *idx)
{
    char *out = NULL;
    long k = atomic_fetch_add(&s->invokes, 1);
    if (idx)
        *idx = k;
    if (mesatee_task_invoke(c, id, &out) != MESATEE_OK)
        die("task invoke", mesatee_client_errmsg(c));
    mesatee_free(out);
}

/* Polls until the task is final; false unless "finished". */
static bool poll_done(mesatee_client *c, const char *id, long sleep_us)
{
    for (;;) {
        char *out = NULL;
        atomic_fetch_add(&g_gets, 1);
        if (mesatee_task_get(c, id, &out) != MESATEE_OK)
            die("task get", mesatee_client_errmsg(c));
        json_t *o = json_loads(out, 0, NULL);
        json_t *d = json_object_get(o, "data");
        const char *st = json_string_value(json_object_get(d ? d : o, "status"));
        int fin = !st ? -1 : !strcmp(st, "finished") ? 1
                         : (!strcmp(st, "failed") || !strcmp(st, "canceled")) ? 0 : -1;
        json_decref(o);
        mesatee_free(out);
        if (fin >= 0)
            return fin == 1;
        struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
    }
}

static void latency(server *s, int round)
{
    mesatee_client *c = client_of(s);
    for (int i = 0; i < g_lat; i++) {
        char *id = s->lat_id[round][i];
        new_task(s, c, id);
        double t0 = now_ms();
        invoke(s, c, id, &s->lat_idx[round][i]);
        if (!poll_done(c, id, 500))
            die("latency task", "did not finish");
        s->cli[round][i] = now_ms() - t0;
    }
    for (int i = 0; i < g_wait; i++) {
        char id[33], st[16] = "", *out = NULL;
        new_task(s, c, id);
        double t0 = now_ms();
        invoke(s, c, id, NULL);
        if (mesatee_task_wait(c, id, 60, st, &out) != MESATEE_OK || strcmp(st, "finished"))
            die("task wait", mesatee_client_errmsg(c));
        s->wait[round][i] = now_ms() - t0;
        mesatee_free(out);
    }
    mesatee_client_free(c);
}

typedef enum { T_POLL, T_WAIT, T_BURST } tput_mode;

typedef struct tput_arg {
    server *s;
    pthread_barrier_t *bar;
    char (*ids)[33];
    bool ok;
    tput_mode mode;
} tput_arg;

/* Waits for the task with mesatee_task_wait; false unless "finished". */
static bool wait_done(mesatee_client *c, const char *id)
{
    char st[16] = "", *out = NULL;
    if (mesatee_task_wait(c, id, 120, st, &out) != MESATEE_OK)
        die("task wait", mesatee_client_errmsg(c));
    mesatee_free(out);
    return !strcmp(st, "finished");
}

static void *tput_client(void *p)
{
    tput_arg *a = p;
    mesatee_client *c = client_of(a->s);
    for (int i = 0; i < g_per_client; i++)
        new_task(a->s, c, a->ids[i]);
    pthread_barrier_wait(a->bar); /* created, connection up: clock starts */
    pthread_barrier_wait(a->bar);
    a->ok = true;
    if (a->mode == T_BURST) { /* all invoked at once, then collected (GET every 10 ms) */
        for (int i = 0; i < g_per_client; i++)
            invoke(a->s, c, a->ids[i], NULL);
        for (int i = 0; i < g_per_client; i++)
            a->ok = poll_done(c, a->ids[i], 10000) && a->ok;
    } else {
        for (int i = 0; i < g_per_client; i++) {
            invoke(a->s, c, a->ids[i], NULL);
            a->ok = (a->mode == T_WAIT ? wait_done(c, a->ids[i])
                                       : poll_done(c, a->ids[i], 1000)) &&
                    a->ok;
        }
    }
    mesatee_client_free(c);
    return NULL;
}

static double throughput(server *s, tput_mode mode)
{
    pthread_t th[MAX_CLIENTS];
    tput_arg args[MAX_CLIENTS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)g_clients + 1);
    for (int i = 0; i < g_clients; i++) {
        args[i] = (tput_arg){.s = s, .bar = &bar, .ids = calloc((size_t)g_per_client, 33),
                             .mode = mode};
        pthread_create(&th[i], NULL, tput_client, &args[i]);
    }
    pthread_barrier_wait(&bar);
    if (g_go) { /* cost mode: the script starts counting, then says go */
        printf("READY\n");
        fflush(stdout);
        char line[16];
        FILE *f = fopen(g_go, "r");
        if (!f || !fgets(line, sizeof line, f))
            die("go fifo", g_go);
        fclose(f);
    }
    double t0 = now_ms(), c0 = cpu_ms();
    pthread_barrier_wait(&bar);
    for (int i = 0; i < g_clients; i++) {
        pthread_join(th[i], NULL);
        if (!args[i].ok)
            die("throughput", "a task did not finish");
        free(args[i].ids);
    }
    double rate = (double)(g_clients * g_per_client) / ((now_ms() - t0) / 1e3);
    g_cpu_ms = cpu_ms() - c0;
    pthread_barrier_destroy(&bar);
    return rate;
}

/* ---- server-side times from the logs ------------------------------------------ */

/* "2026-12-06T08:46:28.259Z" at p -> ms since the epoch, or -1. */
static double stamp_ms(const char *p)
{
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) * 1e3 + ms;
}

/* srv from the trace lines "trace task ID STAGE US" (MESATEE_TRACE_TASKS=1)
 * when every latency task has both gw_recv and event_raised: microseconds,
 * the path trace_breakdown.py totals. Leaves srv as it is otherwise. */
static void trace_side(server *s)
{
    static long long gw[MAX_ROUNDS][MAX_LAT], ev[MAX_ROUNDS][MAX_LAT];
    for (int r = 0; r < g_rounds; r++)
        for (int i = 0; i < g_lat; i++)
            gw[r][i] = ev[r][i] = -1;
    FILE *f = fopen(s->server_log, "r");
    if (!f)
        die("server log", s->server_log);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        const char *t = strstr(line, "trace task ");
        char id[33], stage[32];
        long long us;
        if (!t || sscanf(t + 11, "%32[0-9a-f] %31[a-z_] %lld", id, stage, &us) != 3)
            continue;
        bool is_gw = !strcmp(stage, "gw_recv"), is_ev = !strcmp(stage, "event_raised");
        if (!is_gw && !is_ev)
            continue;
        for (int r = 0; r < g_rounds; r++)
            for (int i = 0; i < g_lat; i++)
                if (!strcmp(s->lat_id[r][i], id))
                    *(is_gw ? &gw[r][i] : &ev[r][i]) = us;
    }
    fclose(f);
    for (int r = 0; r < g_rounds; r++)
        for (int i = 0; i < g_lat; i++)
            if (gw[r][i] < 0 || ev[r][i] < gw[r][i])
                return;
    for (int r = 0; r < g_rounds; r++)
        for (int i = 0; i < g_lat; i++)
            s->srv[r][i] = (double)(ev[r][i] - gw[r][i]) / 1e3;
    s->srv_us = true;
}

static void server_side(server *s)
{
    long n_inv = atomic_load(&s->invokes);
    double *arrive = calloc((size_t)n_inv + 1, sizeof *arrive);
    long k = 0;
    char line[1024];
    FILE *f = fopen(s->access_log, "r");
    if (!f)
        die("access log", s->access_log);
    while (fgets(line, sizeof line, f) && k < n_inv) {
        const char *d = strstr(line, "duration_ms=");
        if (!strstr(line, "route=\"POST /v1/tasks/{id}/invoke\"") || !d)
            continue;
        arrive[k++] = stamp_ms(line) - atof(d + 12);
    }
    fclose(f);
    if (k != n_inv)
        fprintf(stderr, "bench_faas: %s: %ld invoke lines for %ld invokes\n", s->name, k, n_inv);
    for (int r = 0; r < g_rounds; r++)
        for (int i = 0; i < g_lat; i++)
            s->srv[r][i] = -1;
    f = fopen(s->server_log, "r");
    if (!f)
        die("server log", s->server_log);
    while (fgets(line, sizeof line, f)) {
        const char *t = strstr(line, "] task ");
        if (!t || strncmp(t + 7 + 32, " finished", 9) != 0)
            continue;
        for (int r = 0; r < g_rounds; r++)
            for (int i = 0; i < g_lat; i++)
                if (!strncmp(s->lat_id[r][i], t + 7, 32) && s->lat_idx[r][i] < k)
                    s->srv[r][i] = stamp_ms(line) - arrive[s->lat_idx[r][i]];
    }
    fclose(f);
    free(arrive);
    trace_side(s);
}

static void parse_server(server *s, const char *name, char *spec)
{
    s->name = name;
    const char **f[] = {&s->url, &s->policy, &s->fn, &s->access_log, &s->server_log};
    char *save = NULL, *tok = strtok_r(spec, ",", &save);
    for (size_t i = 0; i < 5; i++, tok = strtok_r(NULL, ",", &save)) {
        if (!tok)
            die("server spec", "URL,POLICY,FUNCTION,ACCESS_LOG,SERVER_LOG");
        *f[i] = tok;
    }
}

int main(int argc, char **argv)
{
    static server srv[2];
    int opt;
    char *cost_spec = NULL;
    const char *cost_mode = "burst", *b_name = "spawn";
    while ((opt = getopt(argc, argv, "N:A:B:C:M:G:u:w:r:n:k:m:c:i:")) != -1) {
        switch (opt) {
        case 'A': parse_server(&srv[0], "zygote", optarg); break;
        case 'B': parse_server(&srv[1], b_name, optarg); break;
        case 'N': b_name = optarg; break;
        case 'C': cost_spec = optarg; break;
        case 'M': cost_mode = optarg; break;
        case 'G': g_go = optarg; break;
        case 'u': g_user = optarg; break;
        case 'w': g_pwfile = optarg; break;
        case 'r': g_rounds = atoi(optarg); break;
        case 'n': g_lat = atoi(optarg); break;
        case 'k': g_wait = atoi(optarg); break;
        case 'm': g_per_client = atoi(optarg); break;
        case 'c': g_clients = atoi(optarg); break;
        case 'i': g_iter = atoi(optarg); break;
        default: die("usage", "see the comment at the top of bench_faas.c");
        }
    }
    if (cost_spec) {
        char spec[2048];
        snprintf(spec, sizeof spec, "%s,-,-", cost_spec);
        parse_server(&srv[0], "cost", spec);
        if (!g_user || !g_pwfile || g_clients < 1 || g_clients > MAX_CLIENTS || g_per_client < 1)
            die("usage", "-C URL,POLICY,FUNCTION -u USER -w PASSWORD_FILE [-M MODE] [-G FIFO]");
        tput_mode m = !strcmp(cost_mode, "poll") ? T_POLL
                      : !strcmp(cost_mode, "wait") ? T_WAIT
                      : !strcmp(cost_mode, "burst") ? T_BURST
                                                    : (die("-M", "poll, wait or burst"), T_POLL);
        login(&srv[0]);
        double rate = throughput(&srv[0], m);
        printf("bench_faas cost: %s, %d clients x %d tasks: %.0f tasks/s, %ld invokes, %ld task "
               "GETs (%.2f per task; the waits' long polls not counted)\n",
               cost_mode, g_clients, g_per_client, rate, atomic_load(&srv[0].invokes),
               atomic_load(&g_gets), (double)atomic_load(&g_gets) / (g_clients * g_per_client));
        printf("bench_faas cost: client CPU (getrusage, user+sys, all threads) %.1f ms, %.3f ms "
               "per task\n",
               g_cpu_ms, g_cpu_ms / (g_clients * g_per_client));
        return 0;
    }
    if (!srv[0].url || !srv[1].url || !g_user || !g_pwfile || g_rounds < 1 ||
        g_rounds > MAX_ROUNDS || g_lat < 1 || g_lat > MAX_LAT || g_wait < 0 || g_wait > MAX_LAT ||
        g_clients < 1 || g_clients > MAX_CLIENTS || g_per_client < 1 || g_iter < 1 ||
        g_iter > 256)
        die("usage", "-A and -B servers, -u, -w; rounds 1..20, -n 1..64, -c 1..32, -i 1..256");
    for (int i = 0; i < 2; i++)
        login(&srv[i]);
    double a_fork[MAX_ROUNDS], a_spawn[MAX_ROUNDS], a_wasm[MAX_ROUNDS], x_zyg[MAX_ROUNDS],
        x_spawn[MAX_ROUNDS], v[256];
    exec_once(MT_WORKER_START_ZYGOTE); /* start this process's zygote before the clock */
    for (int r = 0; r < g_rounds; r++) {
        /* ours and anchors interleaved, a few iterations at a time */
        double f[256], sp[256], w[256], xz[256], xs[256];
        for (int i = 0; i < g_iter; i++) {
            xz[i] = exec_once(MT_WORKER_START_ZYGOTE);
            f[i] = worker_once(false);
            xs[i] = exec_once(MT_WORKER_START_SPAWN);
            sp[i] = worker_once(true);
            w[i] = wasm_once();
        }
        a_fork[r] = median(f, g_iter);
        a_spawn[r] = median(sp, g_iter);
        a_wasm[r] = median(w, g_iter);
        x_zyg[r] = median(xz, g_iter);
        x_spawn[r] = median(xs, g_iter);
        latency(&srv[0], r);
        latency(&srv[1], r);
        srv[0].tput[r] = throughput(&srv[0], T_POLL);
        srv[1].tput[r] = throughput(&srv[1], T_POLL);
        srv[0].wtput[r] = throughput(&srv[0], T_WAIT);
        srv[1].wtput[r] = throughput(&srv[1], T_WAIT);
        srv[0].burst[r] = throughput(&srv[0], T_BURST);
        srv[1].burst[r] = throughput(&srv[1], T_BURST);
        fprintf(stderr, "bench_faas: round %d done\n", r + 1);
    }
    for (int i = 0; i < 2; i++)
        server_side(&srv[i]);
    printf("\nbench_faas: %d rounds; per round: %d anchor/executor iterations, %d latency tasks, "
           "%d task-wait tasks, %d clients x %d tasks (throughput); ms are medians of the round\n\n",
           g_rounds, g_iter, g_lat, g_wait, g_clients, g_per_client);
    printf("| round | floor fork+exec ms | posix_spawn ms | wasm inst ms | exec zygote ms | exec "
           "spawn ms |");
    for (int i = 0; i < 2; i++)
        printf(" %s srv ms | %s cli ms | %s wait ms | %s poll tasks/s | %s wait tasks/s | %s "
               "burst/s |",
               srv[i].name, srv[i].name, srv[i].name, srv[i].name, srv[i].name, srv[i].name);
    printf("\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    enum { NC = 17, PER = 6 };
#define RATE_COL(c) ((c) >= 5 && ((c) - 5) % PER >= 3)
    double col[NC][MAX_ROUNDS];
    for (int r = 0; r < g_rounds; r++) {
        double row[NC] = {a_fork[r], a_spawn[r], a_wasm[r], x_zyg[r], x_spawn[r]};
        for (int s = 0; s < 2; s++) {
            int n = 0;
            for (int i = 0; i < g_lat; i++)
                if (srv[s].srv[r][i] >= 0)
                    v[n++] = srv[s].srv[r][i];
            row[5 + PER * s] = median(v, n);
            row[6 + PER * s] = median(srv[s].cli[r], g_lat);
            row[7 + PER * s] = median(srv[s].wait[r], g_wait);
            row[8 + PER * s] = srv[s].tput[r];
            row[9 + PER * s] = srv[s].wtput[r];
            row[10 + PER * s] = srv[s].burst[r];
        }
        printf("| %d |", r + 1);
        for (int c = 0; c < NC; c++) {
            col[c][r] = row[c];
            printf(c == 2 ? " %.4f |" : RATE_COL(c) ? " %.0f |" : " %.2f |", row[c]);
        }
        printf("\n");
    }
    printf("| median |");
    for (int c = 0; c < NC; c++)
        printf(c == 2 ? " %.4f |" : RATE_COL(c) ? " %.0f |" : " %.2f |", median(col[c], g_rounds));
    printf("\n\n");
    for (int i = 0; i < 2; i++)
        printf("srv (%s server) = %s\n", srv[i].name,
               srv[i].srv_us ? "gw_recv (invoke request parsed) to event_raised, the trace's "
                               "microsecond stamps (MESATEE_TRACE_TASKS=1: its log lines cost "
                               "the server time in every column)"
                             : "invoke request arrival (access log) to the scheduler's finished "
                               "line, millisecond stamps (+-1 ms; run.sh TRACE=1 for "
                               "microseconds)");
    printf("cli = invoke to the client seeing finished (GET every 0.5 ms); wait = the same with "
           "mesatee_task_wait (long polls ?wait=); poll tasks/s = %d clients each "
           "invoking its next task when it saw the previous finished (GET every 1 ms, each an "
           "audited request); wait tasks/s = the same clients waiting with mesatee_task_wait "
           "(long poll); burst/s = each client invokes all its tasks, then collects them (GET "
           "every 10 ms).\n",
           g_clients);
    printf("\nEvery latency sample (ms), in the order run, rounds separated by \"/\":\n");
    for (int i = 0; i < 2; i++) {
        const struct {
            const char *what;
            double (*v)[MAX_LAT];
            int n;
            int prec;
        } kinds[] = {{"srv", srv[i].srv, g_lat, srv[i].srv_us ? 3 : 0},
                     {"cli", srv[i].cli, g_lat, 2},
                     {"wait", srv[i].wait, g_wait, 2}};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            printf("%s %s: ", srv[i].name, kinds[k].what);
            for (int r = 0; r < g_rounds; r++) {
                if (r)
                    printf("/ ");
                for (int j = 0; j < kinds[k].n; j++)
                    printf("%.*f ", kinds[k].prec, kinds[k].v[r][j]);
            }
            printf("\n");
        }
    }
    return 0;
}
