/* cmd_executor: `mesatee executor`, the separate executor role (docs/design.md
 * "Separate roles"). It opens its own TEE identity (mt_tee in its own data
 * dir, measurement over this binary, the worker and its settings), connects
 * to the scheduler's executor API with mutually attested TLS (mt_atls.h: the
 * scheduler must satisfy --policy, role "gateway" or "scheduler"; the
 * scheduler checks this executor against its executor-role policy), polls for
 * staged tasks, runs each with mt_executor_run (the same sandboxed worker as
 * the single-process daemon) and reports the outcome and the outputs'
 * ciphertext. Protocol: mt_remote_sched.h. */
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
#include "remote_job.h"
#include "untrusted_fetch.h"
#include "mt_json.h"
#include "mt_tee.h"

#include "mt_remote_sched.h"

/* The largest job document read from the scheduler by default
 * (--max-job-mib): it is buffered whole, inputs' ciphertext included as
 * base64. A job above the limit is refused before its body is read. */
#define DEFAULT_MAX_JOB_MIB 256u
#define MAX_MAX_JOB_MIB 4096u
/* Reports answered 503 (scheduler buffering too much) are sent again this
 * many times, after 1, 2, 4 ... s. */
#define REPORT_RETRIES 3u

static void ex_sleep_ms(unsigned ms);

typedef struct ex_conf {
    char host[256];
    char port[16];
    SSL_CTX *ctx;
    const char *work_dir;
    const char *worker;
    const char *file_url_root;
    const char *fetch_allow;
    size_t max_job; /* bytes */
} ex_conf;

/* One request over a fresh attested connection. *status 0 when the handshake
 * or the connection failed (message in err). */
static mt_status ex_request(const ex_conf *c, const char *path, const char *body, size_t len,
                            int *status, uint8_t **resp, size_t *resp_len, mt_err *err)
{
    *status = 0;
    *resp = NULL;
    *resp_len = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(c->host, c->port, &hints, &ai) || !ai)
        return mt_err_set(err, MT_EIO, "cannot resolve %s", c->host);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return mt_err_set(err, MT_EIO, "cannot connect to %s:%s: %s", c->host, c->port,
                          strerror(errno));
    }
    int one = 1; /* requests go out as several TLS records: no Nagle delay */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(ai);
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    mt_status rc = MT_OK;
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        const char *why = mt_atls_last_refusal();
        rc = mt_err_set(err, MT_EAUTH, "attested TLS handshake with the scheduler failed: %s",
                        why[0] ? why : "the scheduler refused this executor");
        goto out;
    }
    char head[512];
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             path, c->host, len);
    /* TLS 1.3: the scheduler checks this executor's certificate after our
     * side of the handshake completed; a refusal shows as a closed channel. */
    char rhead[8192];
    if ((rc = mt_atls_write(ssl, head, strlen(head), err)) ||
        (len && (rc = mt_atls_write(ssl, body, len, err))) ||
        (rc = mt_atls_read_msg(ssl, rhead, sizeof rhead, c->max_job, resp, resp_len, err))) {
        if (rc == MT_ETOOBIG)
            rc = mt_err_set(err, MT_ETOOBIG,
                            "the scheduler's answer is larger than --max-job-mib (%zu MiB); "
                            "raise it to run such jobs",
                            c->max_job >> 20);
        if (rc == MT_EIO)
            rc = mt_err_set(err, MT_EAUTH, "attested TLS handshake with the scheduler failed: "
                                           "the scheduler refused this executor (see its log)");
        goto out;
    }
    if (sscanf(rhead, "HTTP/1.1 %d", status) != 1)
        rc = mt_err_set(err, MT_EIO, "bad response from the scheduler");
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
    return rc;
}

static void ex_job_free(mt_job *job)
{
    for (size_t i = 0; i < job->n_inputs; i++) {
        free(job->inputs[i].slot);
        free(job->inputs[i].path);
        free(job->inputs[i].url);
        mt_wipe(job->inputs[i].key, 32);
    }
    for (size_t i = 0; i < job->n_outputs; i++) {
        if (job->outputs[i].path)
            unlink(job->outputs[i].path);
        free(job->outputs[i].slot);
        free(job->outputs[i].path);
        free(job->outputs[i].file_id);
        mt_wipe(job->outputs[i].key, 32);
    }
    free(job->inputs);
    free(job->outputs);
    if (job->module) {
        mt_job_input *m = (mt_job_input *)job->module;
        free(m->path);
        mt_wipe(m->key, 32);
        free(m);
    }
}

/* Writes ciphertext to fpath (0600, crash-safe) and returns a heap copy of
 * the path in *path. */
static mt_status ex_put(const mt_rjob_io *io, const char *fpath, char **path, mt_err *err)
{
    mt_status rc = mt_file_write_atomic(fpath, io->ciphertext, io->ciphertext_len, 0600, err);
    if (rc)
        return rc;
    if (!(*path = strdup(fpath)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* The decoded job (remote_job.h, the one reader of the scheduler's job
 * document) into job; ciphertexts become files under dir. job borrows
 * strings from rj, which must outlive it. */
static mt_status ex_job_build(const ex_conf *c, const mt_rjob *rj, const char *dir, mt_job *job,
                              mt_err *err)
{
    job->task_id = rj->task_id;
    job->executor_type = rj->executor_type;
    job->function = rj->function;
    job->keys = rj->keys; /* KeyStore keys: borrowed from rj, which wipes them */
    job->n_keys = rj->n_keys;
    job->arguments = rj->arguments;
    job->limits.mem_bytes = rj->mem_bytes;
    job->limits.cpu_seconds = rj->cpu_seconds;
    job->limits.wall_ms = rj->wall_ms;
    job->worker_path = c->worker;
    job->file_url_root = c->file_url_root;
    job->fetch_allow = c->fetch_allow;
    job->inputs = calloc(rj->n_inputs + 1, sizeof *job->inputs);
    job->outputs = calloc(rj->n_outputs + 1, sizeof *job->outputs);
    if (!job->inputs || !job->outputs)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    char p[4200];
    mt_status rc = MT_OK;
    if (rj->has_module) {
        mt_job_input *m = calloc(1, sizeof *m);
        if (!m)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        job->module = m;
        memcpy(m->key, rj->module.key, 32);
        memcpy(m->plain_sha256, rj->module.plain_sha256, sizeof m->plain_sha256);
        snprintf(p, sizeof p, "%s/module", dir);
        if ((rc = ex_put(&rj->module, p, &m->path, err)))
            return rc;
    }
    for (size_t i = 0; i < rj->n_inputs; i++) {
        const mt_rjob_io *r = &rj->inputs[i];
        mt_job_input *in = &job->inputs[job->n_inputs++];
        if (!(in->slot = strdup(r->slot)) || (r->url && !(in->url = strdup(r->url))))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        memcpy(in->key, r->key, 32);
        memcpy(in->sha256, r->sha256, sizeof in->sha256);
        snprintf(p, sizeof p, "%s/in-%zu", dir, i);
        if (r->ciphertext && (rc = ex_put(r, p, &in->path, err)))
            return rc;
    }
    for (size_t i = 0; i < rj->n_outputs; i++) {
        const mt_rjob_io *r = &rj->outputs[i];
        mt_job_output *o = &job->outputs[job->n_outputs++];
        snprintf(p, sizeof p, "%s/out-%zu", dir, i);
        if (!(o->slot = strdup(r->slot)) || !(o->path = strdup(p)) ||
            (r->file_id[0] && !(o->file_id = strdup(r->file_id))))
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        memcpy(o->key, r->key, 32);
    }
    return MT_OK;
}

/* The report document of a run (outputs' ciphertext included when ok). */
static json_t *ex_report(const mt_job *job, const mt_job_result *r, const char *setup_failure)
{
    json_t *rep = json_pack(
        "{s:s, s:b, s:b, s:s?, s:s?, s:s?, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{}}", "task_id",
        job->task_id, "ok", !setup_failure && r->ok, "canceled", !setup_failure && r->canceled,
        "return_value", setup_failure ? NULL : r->return_value, "failure_reason",
        setup_failure ? setup_failure : r->failure_reason, "log", setup_failure ? NULL : r->log,
        "metering", "cpu_ms", (json_int_t)r->cpu_ms, "peak_rss_kb", (json_int_t)r->peak_rss_kb,
        "wall_ms", (json_int_t)r->wall_ms, "bytes_in", (json_int_t)r->bytes_in, "bytes_out",
        (json_int_t)r->bytes_out, "fuel_used", (json_int_t)r->fuel_used, "outputs");
    /* only when there were any: a server before key metering refuses the key */
    if (rep && !setup_failure && r->key_signs &&
        json_object_set_new(json_object_get(rep, "metering"), "key_signs",
                            json_integer((json_int_t)r->key_signs))) {
        json_decref(rep);
        return NULL;
    }
    if (!rep || setup_failure || !r->ok)
        return rep;
    json_t *outs = json_object_get(rep, "outputs");
    for (size_t i = 0; i < job->n_outputs; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        mt_err err;
        /* an output above the report limit could not be stored anyway */
        if (mt_file_read(job->outputs[i].path, MT_REMOTE_MAX_REPORT, &data, &len, &err) !=
            MT_OK)
            continue; /* the scheduler fails the task for a missing slot */
        uint8_t md[32];
        char hex[65];
        SHA256(data, len, md);
        mt_hex_encode(md, 32, hex);
        char *b64 = mt_b64_encode(data, len);
        free(data);
        if (b64)
            json_object_set_new(outs, job->outputs[i].slot,
                                json_pack("{s:s, s:s, s:I}", "ciphertext", b64, "sha256", hex,
                                          "size", (json_int_t)len));
        free(b64);
    }
    return rep;
}

/* Runs one claimed job and reports it. */
/* The task id of a job document the reader refused, when it has a valid
 * one (so the scheduler learns the task failed); else "". */
static void ex_refused_task_id(const uint8_t *doc, size_t len, char tid[MT_ID_LEN + 1])
{
    tid[0] = 0;
    json_t *j = mt_json_parse((const char *)doc, len, len, MT_JSON_DEFAULT_DEPTH, NULL);
    const char *t = json_string_value(json_object_get(j, "task_id"));
    if (t && mt_id_valid(t))
        snprintf(tid, MT_ID_LEN + 1, "%s", t);
    json_decref(j);
}

/* Runs one claimed job document and reports it. */
static mt_status ex_run(const ex_conf *c, const uint8_t *doc, size_t doc_len, mt_err *err)
{
    mt_job job;
    memset(&job, 0, sizeof job);
    mt_job_result res;
    memset(&res, 0, sizeof res);
    mt_rjob rj;
    char dir[4096], reason[MT_ERR_MSG_MAX + 64] = "", tid[MT_ID_LEN + 1];
    mt_err jerr;
    mt_err_clear(&jerr);
    mt_status rc = mt_rjob_decode((const char *)doc, doc_len, &rj, &jerr);
    if (rc) {
        ex_refused_task_id(doc, doc_len, tid);
        if (!tid[0])
            return mt_err_set(err, MT_EINVAL, "malformed job from the scheduler: %s", jerr.msg);
        dir[0] = 0;
    } else {
        snprintf(tid, sizeof tid, "%s", rj.task_id);
        snprintf(dir, sizeof dir, "%s/%s", c->work_dir, tid);
        rc = mt_mkdirs(dir, 0700, &jerr);
        if (!rc)
            rc = ex_job_build(c, &rj, dir, &job, &jerr);
    }
    if (rc) {
        snprintf(reason, sizeof reason, "the executor could not prepare the task: %s",
                 jerr.msg);
    } else {
        fprintf(stderr, "mesatee executor: task %s running (%s/%s)\n", tid, job.executor_type,
                job.function);
        mt_status xrc = mt_executor_run(&job, NULL, NULL, &res, &jerr);
        if (xrc != MT_OK) {
            /* the message names host paths: the executor's log, not the reason */
            fprintf(stderr, "mesatee executor: task %s: could not start the worker: %s\n", tid,
                    jerr.msg);
            snprintf(reason, sizeof reason, "could not start the worker (%s; see the executor "
                     "log)", mt_status_name(xrc));
        }
    }
    job.task_id = tid;
    json_t *rep = ex_report(&job, &res, reason[0] ? reason : NULL);
    char *body = rep ? mt_json_dump(rep) : NULL;
    json_decref(rep);
    mt_job_result_clear(&res);
    ex_job_free(&job);
    mt_rjob_free(&rj);
    if (dir[0])
        rmdir(dir);
    if (!body)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    int status = 0;
    uint8_t *resp = NULL;
    size_t rlen = 0;
    /* 503: the scheduler is buffering too many reports; retry a few times */
    for (unsigned attempt = 0;; attempt++) {
        rc = ex_request(c, "/v1/executor/report", body, strlen(body), &status, &resp, &rlen,
                        err);
        if (rc || status != 503 || attempt == REPORT_RETRIES)
            break;
        fprintf(stderr, "mesatee executor: task %s: the scheduler is busy (HTTP 503), "
                        "retrying the report\n", tid);
        free(resp);
        resp = NULL;
        ex_sleep_ms(1000u << attempt);
    }
    free(body);
    if (!rc && status != 200)
        rc = mt_err_set(err, MT_EIO, "the scheduler did not store the report (HTTP %d): %.200s",
                        status, resp ? (const char *)resp : "");
    else if (!rc)
        fprintf(stderr, "mesatee executor: task %s reported\n", tid);
    free(resp);
    return rc;
}

static void ex_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

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
    ex_conf c;
    memset(&c, 0, sizeof c);
    c.max_job = (size_t)max_job_mib << 20;
    if (sched) {
        const char *hp = strncmp(sched, "https://", 8) ? NULL : sched + 8;
        const char *colon = hp ? strrchr(hp, ':') : NULL;
        if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof c.host ||
            strlen(colon + 1) >= sizeof c.port || !colon[1] || strchr(colon + 1, '/'))
            return cli_usage_error(ctx, "--scheduler must be https://HOST:PORT");
        memcpy(c.host, hp, (size_t)(colon - hp));
        snprintf(c.port, sizeof c.port, "%s", colon + 1);
    }
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
    unsigned long done = 0;
    unsigned backoff = (unsigned)poll_ms;
    while (!max_tasks || done < max_tasks) {
        int status = 0;
        uint8_t *resp = NULL;
        size_t rlen = 0;
        mt_err rerr;
        mt_err_clear(&rerr);
        if (ex_request(&c, "/v1/executor/claim", NULL, 0, &status, &resp, &rlen, &rerr)) {
            fprintf(stderr, "mesatee executor: %s\n", rerr.msg);
            free(resp);
            ex_sleep_ms(backoff);
            backoff = backoff < 10000 ? backoff * 2 : backoff;
            continue;
        }
        backoff = (unsigned)poll_ms;
        if (status == 200 && resp) {
            if (ex_run(&c, resp, rlen, &rerr))
                fprintf(stderr, "mesatee executor: %s\n", rerr.msg);
            mt_wipe(resp, rlen);
            done++;
        } else if (status != 204) {
            fprintf(stderr, "mesatee executor: claim failed (HTTP %d): %.200s\n", status,
                    resp ? (const char *)resp : "");
            ex_sleep_ms((unsigned)poll_ms);
        } else {
            ex_sleep_ms((unsigned)poll_ms);
        }
        free(resp);
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
