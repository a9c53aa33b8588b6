/* mt_remote_executor: the separate executor role (`mesatee executor`,
 * docs/design.md "Separate roles", "Executor leases"). The CLI
 * (src/cli/cmd_executor.c) parses the options, opens the TEE identity and the
 * mutually attested TLS context; this module does the rest: it claims staged
 * tasks from the scheduler's executor API (mt_executor_api.h), runs each with
 * mt_executor_run (the same sandboxed worker as the single-process daemon)
 * and reports the outcome and the outputs' ciphertext. Protocol:
 * mt_remote_sched.h; every document from the scheduler is read by
 * remote_job.h (fuzzed).
 *
 * Slots: cfg->slots threads each claim and run one task at a time, so at
 * most `slots` tasks run at once. Every claim (and a POST /v1/executor/health
 * after every task and when mt_rexec_run ends) carries the executor's health
 * (name, slots, busy, tasks run and failed, the last error as a fixed
 * phrase: never task data), which the scheduler shows in /metrics.
 *
 * Leases: while a task runs, a renewal thread renews its lease every third
 * of the lease (POST /v1/executor/renew with the fencing token). An answer
 * "cancel" (the task's cancellation was requested) or a lost lease (409: the
 * lease ran out and the task went to another executor) stops the worker; the
 * outcome (canceled) is reported either way, and the scheduler refuses a
 * report whose token is not the current one. A renewal that cannot reach the
 * scheduler is retried; the scheduler decides when the lease has run out.
 *
 * Failover: cfg->nodes are the nodes of one cluster (--scheduler URL,URL...;
 * an IPv6 host as its address, without brackets).
 * Every request goes to the current node; when it cannot be reached (name
 * resolution bounded at 5 s, connect at 5 s per address), its handshake or
 * channel fails, or it answers 503 (e.g. cut off from the database), the
 * next node becomes the current one (logged, naming both as configured;
 * a renewal waits for each read at most half the lease, at least 5 s, so a
 * node that accepts but does not answer is left while the lease lasts)
 * and the request (claim, renewal, report, health) is sent there at once,
 * each node at most once per request. A transfer (input, module or output
 * stream) whose node cannot be reached, fails the handshake without a
 * policy verdict (closed, or silent past the 120 s socket bound: a hung
 * node) or cuts the channel before answering moves the current node on as
 * well and is retried there after 1, 2, 4 s. A node refused by this
 * executor's --policy (MT_EAUTH; the verdict, which quotes the node's
 * evidence, is logged, the error is constant) is not retried by a transfer.
 * A node that answers with a TLS alert refused this executor; one that
 * closes without an answer may have (its log says), and is treated as cut.
 * A report answered 409 by the next node after the previous node lost its
 * answer is logged as "may already be stored (resent after a lost answer)",
 * not as a refusal. The lease, its fencing token and secret live in
 * the shared store, so the task keeps its lease: renewals and the report go
 * to the new node. Every node is attested with the same context (cfg->ctx,
 * one --policy): a node that fails the policy is refused like the first.
 *
 * Ownership: mt_rexec_run borrows everything in cfg (cfg->ctx is used from
 * several threads: SSL_CTX is safe for that once set up); contexts made by
 * cfg->renew are the module's and freed when no request uses them.
 * Errors: mt_rexec_run returns MT_OK after max_tasks tasks (never when
 * max_tasks is 0: it runs until the process ends); an error only when it
 * cannot start its threads. Failures of single requests or tasks are logged
 * to stderr and retried or reported, never fatal.
 * Thread-safety: one mt_rexec_run per process (the worker it runs is shared).
 * It ignores SIGPIPE for the whole process (a refused transfer's closed
 * connection is an EPIPE, retried). Transfers refused (503, cut, a node
 * unreachable or hung) are retried after 1, 2 and 4 s; fetched inputs are
 * deleted when the task ends. */
#ifndef MT_REMOTE_EXECUTOR_H
#define MT_REMOTE_EXECUTOR_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "mt_err.h"

#define MT_REXEC_MAX_SLOTS 64
#define MT_REXEC_MAX_NODES 8

/* One node's executor API (https://HOST:PORT of --scheduler). */
typedef struct {
    char host[256];
    char port[16];
} mt_rexec_node;

typedef struct {
    /* the scheduler's executor API: nodes[0..n_nodes) (1..MT_REXEC_MAX_NODES)
     * of one cluster (one shared store); requests go to one of them at a
     * time, starting with nodes[0] (see "Failover" above) */
    const mt_rexec_node *nodes;
    unsigned n_nodes;
    SSL_CTX *ctx;              /* mutually attested client context (mt_atls.h) */
    const char *work_dir;      /* per-task ciphertext files, 0700 */
    const char *worker;        /* the mesatee-worker executable */
    const char *file_url_root; /* NULL: file:// inputs refused */
    const char *fetch_allow;   /* NULL: https:// inputs refused */
    size_t max_job;            /* largest job document read, bytes */
    unsigned poll_ms;          /* between claims when idle */
    unsigned slots;            /* 1..MT_REXEC_MAX_SLOTS */
    unsigned long max_tasks;   /* 0: no limit */
    const char *name;          /* health name (mt_rhello rules) */
    /* Certificate renewal: every renew_s seconds (0: never) renew() makes a
     * new client context (a new TLS key and certificate with fresh evidence)
     * that later requests use; requests in flight keep the one they started
     * with. A failed renewal is logged and the current context kept. */
    mt_status (*renew)(void *renew_ctx, SSL_CTX **out, mt_err *err);
    void *renew_ctx;
    unsigned renew_s;
} mt_rexec_config;

mt_status mt_rexec_run(const mt_rexec_config *cfg, mt_err *err);

#endif
