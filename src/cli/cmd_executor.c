/* cmd_executor: `mesatee executor`, the separate executor role (docs/design.md
 * "Separate roles"). This file parses the options, opens the executor's own
 * TEE identity (mt_tee in its own data dir, measurement over this binary, the
 * worker and its settings) and the mutually attested TLS context (mt_atls.h:
 * the scheduler must satisfy --policy, role "gateway" or "scheduler"; the
 * scheduler checks this executor against its executor-role policy; with
 * several --scheduler URLs every node must satisfy it). The role itself
 * (claims, leases, slots, reports, failover between nodes) is
 * mt_remote_executor.h. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mt_util.h"
#ifdef MT_CLI_HAVE_SERVER
#include "mt_dirlock.h"
#include "mt_atls.h"
#include "mt_executor.h"
#include "mt_remote_executor.h"
#include "remote_job.h"
#include "untrusted_fetch.h"
#include "mt_tee.h"

/* One --scheduler URL, the ul bytes at u: https://HOST:PORT or
 * https://[IPV6]:PORT (brackets stripped: nd->host is what getaddrinfo
 * takes; the executor writes it back in brackets). HOST: no whitespace or
 * control bytes, no '/', '@', '[', ']' (nor ':' outside brackets); PORT:
 * digits, 1..65535. */
static bool ex_parse_node(const char *u, size_t ul, mt_rexec_node *nd)
{
    if (ul <= 8 || strncmp(u, "https://", 8) != 0)
        return false;
    const char *h = u + 8, *end = u + ul, *he, *colon;
    bool v6 = *h == '[';
    if (v6) {
        h++;
        he = memchr(h, ']', (size_t)(end - h));
        if (!he || he + 1 >= end || he[1] != ':')
            return false;
        colon = he + 1;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon;
        if (!colon)
            return false;
    }
    size_t hl = (size_t)(he - h), pl = (size_t)(end - colon - 1);
    if (!hl || hl >= sizeof nd->host || !pl || pl > 5)
        return false;
    bool has_colon = false;
    for (const char *q = h; q < he; q++) {
        unsigned char ch = (unsigned char)*q;
        if (ch <= 0x20 || ch >= 0x7f || strchr("/@[]", ch))
            return false;
        if (ch == ':')
            has_colon = true;
    }
    if (v6 != has_colon) /* a bracketed name, or an IPv6 address without brackets */
        return false;
    unsigned long port = 0;
    for (const char *q = colon + 1; q < end; q++) {
        if (*q < '0' || *q > '9')
            return false;
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port < 1 || port > 65535)
        return false;
    memcpy(nd->host, h, hl);
    nd->host[hl] = 0;
    memcpy(nd->port, colon + 1, pl);
    nd->port[pl] = 0;
    return true;
}

/* The largest job document read from the scheduler by default
 * (--max-job-mib): it is buffered whole, inputs' ciphertext included as
 * base64. A job above the limit is refused before its body is read. */
#define DEFAULT_MAX_JOB_MIB 256u
#define MAX_MAX_JOB_MIB 4096u
/* The settings measured into the executor's evidence. */
static void ex_measured_config(const cli_ctx *ctx, char *out, size_t cap)
{
    static const char *const names[] = {"level", "poll-ms", "file-url-root", NULL};
    size_t n = (size_t)snprintf(out, cap, "mesatee-executor-config-v1\n");
    for (int i = 0; names[i] && n < cap; i++) {
        const char *v = cli_opt_get(ctx, names[i]);
        n += (size_t)snprintf(out + n, cap - n, "%s=%.900s\n", names[i], v ? v : "");
    }
    /* measured when used, as in cli_measured_config */
    const char *fa = cli_opt_get(ctx, "fetch-allow");
    if (fa && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "fetch-allow=%.900s\n", fa);
    if (cli_opt_has(ctx, "log-task-errors") && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "log-task-errors=1\n");
}
#endif

#ifdef MT_CLI_HAVE_SERVER
/* Certificate renewal (mt_rexec_config.renew): a fresh key and certificate
 * with fresh evidence, in a new client context with the same policy. */
typedef struct {
    mt_tee *tee;
    const mt_policy *pol;
} ex_renew_ctx;

static mt_status ex_renew(void *p, SSL_CTX **out, mt_err *err)
{
    ex_renew_ctx *r = p;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    mt_status rc = mt_tee_tls_identity(r->tee, &key, &cert, err);
    if (!rc)
        rc = mt_atls_ctx_new(false, key, cert, r->pol, out, err);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}
#endif

static int ex_main(cli_ctx *ctx);

int cli_cmd_executor(cli_ctx *ctx)
{
    bool done = false;
    int rc = cli_executor_config(ctx, &done);
    if (rc != CLI_OK || done)
        return rc;
    rc = ex_main(ctx);
    cli_executor_config_done();
    return rc;
}

static int ex_main(cli_ctx *ctx)
{
#ifdef MT_CLI_HAVE_SERVER
    const char *data_dir = cli_opt_get(ctx, "data-dir");
    const char *sched = cli_opt_get(ctx, "scheduler");
    const char *policy_path = ctx->f_policy;
    const char *level = cli_opt_get(ctx, "level");
    bool print_id = cli_opt_has(ctx, "print-identity");
    if (!data_dir || !*data_dir)
        return cli_usage_error(ctx, "missing --data-dir");
    if (!level)
        level = "soft";
    if (!strcmp(level, "none"))
        return cli_usage_error(ctx, "an executor needs evidence: --level soft or tpm2");
    if (!print_id && (!sched || !policy_path))
        return cli_usage_error(ctx, "missing --scheduler URL or --policy FILE");
    unsigned long poll_ms = 500, max_tasks = 0;
    const char *v;
    char *end;
    if ((v = cli_opt_get(ctx, "poll-ms")) &&
        ((poll_ms = strtoul(v, &end, 10)) < 10 || poll_ms > 600000 || *end))
        return cli_usage_error(ctx, "--poll-ms must be 10..600000");
    if ((v = cli_opt_get(ctx, "max-tasks")) &&
        ((max_tasks = strtoul(v, &end, 10)) < 1 || max_tasks > 1000000000 || *end))
        return cli_usage_error(ctx, "--max-tasks must be a positive number");
    unsigned long max_job_mib = DEFAULT_MAX_JOB_MIB;
    if ((v = cli_opt_get(ctx, "max-job-mib")) &&
        ((max_job_mib = strtoul(v, &end, 10)) < 1 || max_job_mib > MAX_MAX_JOB_MIB || *end ||
         v[0] == '-'))
        return cli_usage_error(ctx, "--max-job-mib must be 1..4096");
    unsigned long renew_s = 3600; /* 0: never (range checked by serve_config) */
    if ((v = cli_opt_get(ctx, "cert-renew-s")))
        renew_s = strtoul(v, NULL, 10);
    unsigned long slots = 1;
    if ((v = cli_opt_get(ctx, "slots")) &&
        ((slots = strtoul(v, &end, 10)) < 1 || slots > MT_REXEC_MAX_SLOTS || *end ||
         v[0] == '-'))
        return cli_usage_error(ctx, "--slots must be 1..64");
    char name[MT_RHELLO_NAME_MAX + 1];
    mt_rexec_node nodes[MT_REXEC_MAX_NODES];
    unsigned n_nodes = 0;
    if ((v = cli_opt_get(ctx, "name"))) {
        size_t n = strlen(v);
        bool ok = n >= 1 && n <= MT_RHELLO_NAME_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                 (v[i] >= '0' && v[i] <= '9') || strchr("._:-", v[i]);
        if (!ok)
            return cli_usage_error(ctx, "--name must be 1..64 of A-Z a-z 0-9 . _ : -");
        snprintf(name, sizeof name, "%s", v);
    } else {
        char hn[65] = "executor";
        if (gethostname(hn, sizeof hn - 1) != 0)
            snprintf(hn, sizeof hn, "executor");
        hn[sizeof hn - 1] = 0;
        for (char *p = hn; *p; p++) /* keep the name within the health rules */
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr("._:-", *p)))
                *p = '_';
        snprintf(name, sizeof name, "%.50s-%ld", hn[0] ? hn : "executor", (long)getpid());
    }
    mt_rexec_config c;
    memset(&c, 0, sizeof c);
    c.max_job = (size_t)max_job_mib << 20;
    c.poll_ms = (unsigned)poll_ms;
    c.max_tasks = max_tasks;
    c.slots = (unsigned)slots;
    c.name = name;
    /* --scheduler URL[,URL...]: the nodes of one cluster, tried in turn
     * (mt_remote_executor.h "Failover"); a repeated --scheduler is refused
     * by cli_executor_config (cmd_serve_config.c) */
    for (const char *p = sched; p && *p;) {
        size_t ul = strcspn(p, ",");
        if (n_nodes == MT_REXEC_MAX_NODES)
            return cli_usage_error(ctx, "--scheduler: at most 8 URLs");
        if (!ex_parse_node(p, ul, &nodes[n_nodes]))
            return cli_usage_error(ctx, "--scheduler must be https://HOST:PORT (an IPv6 address "
                                        "in brackets, PORT 1..65535), or several separated by "
                                        "commas");
        n_nodes++;
        p += ul;
        if (*p == ',' && !*++p)
            return cli_usage_error(ctx, "--scheduler: a comma with no URL after it");
    }
    if (sched && !n_nodes)
        return cli_usage_error(ctx, "--scheduler must be https://HOST:PORT");
    c.nodes = nodes;
    c.n_nodes = n_nodes;
    const char *tcti = cli_opt_get(ctx, "tpm2-tcti");
    if (tcti && setenv("MESATEE_TPM2_TCTI", tcti, 1) != 0)
        return cli_fail("cannot set MESATEE_TPM2_TCTI: %s", strerror(errno));
    char *worker = cli_find_worker(ctx);
    if (!worker)
        return CLI_FAIL;
    int ret = CLI_FAIL;
    int lock_fd = -1; /* the data directory's lock, held to the end */
    mt_tee *tee = NULL;
    mt_policy *pol = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    mt_err err;
    mt_err_clear(&err);
    char measured[2048], work[4096];
    ex_measured_config(ctx, measured, sizeof measured);
    const char *files[] = {worker, NULL};
    snprintf(work, sizeof work, "%s/work", data_dir);
    c.work_dir = work;
    c.worker = worker;
    c.file_url_root = cli_opt_get(ctx, "file-url-root");
    c.fetch_allow = cli_opt_get(ctx, "fetch-allow");
    if (untrusted_fetch_allow_check(c.fetch_allow, &err) != MT_OK) {
        cli_fail("executor: --fetch-allow: %s", err.msg);
        goto out;
    }
    if (cli_opt_has(ctx, "log-task-errors"))
        mt_executor_set_log_task_errors(true);
    mt_worker_start wstart = MT_WORKER_START_ZYGOTE;
    if (cli_opt_get(ctx, "worker-start") &&
        !mt_worker_start_parse(cli_opt_get(ctx, "worker-start"), &wstart)) {
        cli_fail("executor: --worker-start must be zygote or spawn");
        goto out;
    }
    mt_executor_set_worker_start(wstart);
    if (cli_opt_get(ctx, "zygote-max-tasks")) /* range checked by serve_config */
        mt_executor_set_zygote_max_tasks(
            strtoull(cli_opt_get(ctx, "zygote-max-tasks"), NULL, 10));
    if (mt_mkdirs(data_dir, 0700, &err) || mt_dirlock_acquire(data_dir, &lock_fd, &err) ||
        mt_mkdirs(work, 0700, &err) ||
        mt_tee_open(level, data_dir, &tee, &err) ||
        mt_tee_set_config(tee, (const uint8_t *)measured, strlen(measured), files, &err)) {
        cli_fail("executor: %s", err.msg);
        goto out;
    }
    char meas[65], pk[65];
    mt_tee_soft_ids(tee, meas, pk);
    if (print_id) {
        printf("{\"level\":\"%s\",\"measurement\":\"%s\",\"soft_platform_key\":\"%s\"}\n",
               mt_tee_level(tee), meas, pk);
        ret = CLI_OK;
        goto out;
    }
    fprintf(stderr, "mesatee executor: level %s, evidence measurement %s, platform key %s\n",
            mt_tee_level(tee), meas, pk);
    if (mt_policy_load(policy_path, &pol, &err)) {
        cli_fail("executor: %s", err.msg);
        goto out;
    }
    if (strcmp(mt_policy_role(pol), "gateway") && strcmp(mt_policy_role(pol), "scheduler")) {
        cli_fail("executor: the policy %s must name the role \"gateway\" or \"scheduler\"",
                 policy_path);
        goto out;
    }
    if (mt_tee_tls_identity(tee, &key, &cert, &err) ||
        mt_atls_ctx_new(false, key, cert, pol, &c.ctx, &err)) {
        cli_fail("executor: %s", err.msg);
        goto out;
    }
    ex_renew_ctx rctx = {tee, pol};
    c.renew = ex_renew;
    c.renew_ctx = &rctx;
    c.renew_s = (unsigned)renew_s;
    if (renew_s)
        fprintf(stderr, "mesatee executor: %s, %u slot(s), certificate renewed every %lu s\n",
                c.name, c.slots, renew_s);
    else
        fprintf(stderr, "mesatee executor: %s, %u slot(s), certificate never renewed\n", c.name,
                c.slots);
    if (c.n_nodes > 1)
        fprintf(stderr, "mesatee executor: %u scheduler nodes, starting with https://%s%s%s:%s\n",
                c.n_nodes, strchr(nodes[0].host, ':') ? "[" : "", nodes[0].host,
                strchr(nodes[0].host, ':') ? "]" : "", nodes[0].port);
    if (mt_rexec_run(&c, &err)) {
        cli_fail("executor: %s", err.msg);
        goto out;
    }
    ret = CLI_OK;
out:
    SSL_CTX_free(c.ctx);
    EVP_PKEY_free(key);
    X509_free(cert);
    mt_policy_free(pol);
    mt_tee_free(tee);
    free(worker);
    mt_dirlock_release(lock_fd);
    return ret;
#else
    (void)ctx;
    return cli_fail("this mesatee binary was built without the executor (mt_gateway)");
#endif
}
