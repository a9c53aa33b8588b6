/* core: opening and closing mt_core (configuration defaults, data directory,
 * object store, sealing key, database, first-start bootstrap, crash
 * recovery) and helpers shared by the services. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "mt_algs.h"
#include "transit_core.h"
#include "mt_json.h"
#include "mt_ks_join.h"
#include "mt_log.h"
#include "mt_util.h"
#include "python_modules.h"

/* ---- shared helpers ---------------------------------------------------- */

void core_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, mt_algs_sha256(), NULL) != 1 || mdlen != 32)
        abort(); /* SHA-256 cannot fail short of a broken libcrypto */
    mt_hex_encode(md, 32, out);
}

void core_key_fingerprint(mt_core *c, const uint8_t key[32], char out[65])
{
    static const char label[] = "mesatee-output-key-fp/v1";
    uint8_t msg[sizeof label - 1 + 32], md[32];
    unsigned int mdlen = 0;
    memcpy(msg, label, sizeof label - 1);
    memcpy(msg + sizeof label - 1, key, 32);
    if (!HMAC(EVP_sha256(), c->key_fp_key, sizeof c->key_fp_key, msg, sizeof msg, md, &mdlen) ||
        mdlen != 32)
        abort(); /* HMAC-SHA256 cannot fail short of a broken libcrypto */
    mt_wipe(msg, sizeof msg);
    mt_hex_encode(md, 32, out);
}

json_t *core_time_json(int64_t t)
{
    char buf[32];
    mt_time_format(t, buf);
    return json_string(buf);
}

json_t *core_json_load(const char *text)
{
    return json_loads(text ? text : "null", JSON_DECODE_ANY, NULL);
}

mt_status core_user_exists(mt_db *db, const char *username, bool *exists, mt_err *err)
{
    int64_t v;
    return store_int(db, err, &v, exists,
                     "SELECT 1 FROM users WHERE username = ? AND state != 'deleted'", username);
}

bool core_task_status_final(const char *s)
{
    return !strcmp(s, "finished") || !strcmp(s, "failed") || !strcmp(s, "canceled");
}

/* ---- open / close ------------------------------------------------------ */

static void core_free(mt_core *c)
{
    if (!c)
        return;
    nlive_stop(c); /* node_live.c: its sweeper wakes the scheduler (see mt_core_close) */
    cwake_stop(c); /* cluster_wake.c: before anything it wakes goes */
    core_kek_close(c); /* stops the rewrap thread before the store closes */
    /* audit_spool.c: its replay thread, before the store closes, and after
     * the rewrap thread, which records audit entries through it */
    core_aspool_close(c);
    transit_cache_free(c);
    core_stmt_cache_free(c); /* the same for the kept statements (stmt_cache.c) */
    store_close(c->audit_db); /* audit.c: the group committer's connection */
    store_close(c->db);
    auth_limits_free(c);
    untrusted_objects_close(c);
    mt_wipe(c->key_fp_key, sizeof c->key_fp_key);
    /* every thread's keyed HMAC contexts of these keys (integrity.c), then
     * the keys; this thread's contexts are freed */
    integ_mac_forget(c->integ_key);
    integ_mac_forget(c->audit_key);
    integ_mac_thread_clear();
    mt_wipe(c->integ_key, sizeof c->integ_key);
    mt_wipe(c->audit_key, sizeof c->audit_key);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->audit_mu);
    free(c->data_dir);
    free(c->release_signers);
    free(c->keystore_collateral);
    free(c->db_path);
    free(c->worker_path);
    free(c->file_url_root);
    free(c->fetch_allow);
    free(c->python_modules);
    free(c);
}

void mt_core_set_limits(mt_core *c, uint64_t task_mem_bytes, uint32_t task_cpu_seconds,
                        uint32_t task_wall_ms, int64_t token_ttl_seconds)
{
    c->token_ttl = token_ttl_seconds > 0 ? token_ttl_seconds : 12 * 3600;
    c->task_mem_bytes = task_mem_bytes ? task_mem_bytes : (2ULL << 30);
    c->task_cpu_seconds = task_cpu_seconds ? task_cpu_seconds : 600;
    c->task_wall_ms = task_wall_ms ? task_wall_ms : 900000;
}

/* c->node_id (core_internal.h): who claimed a running task (sched.c). */
static mt_status core_node_id(mt_core *c, mt_tee *tee, mt_err *err)
{
    uint8_t k[32], d[32];
    mt_status rc = mt_tee_platform_key(tee, "node-id/v1", k, err);
    if (rc)
        return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned dl = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, k, sizeof k) == 1 &&
              EVP_DigestUpdate(md, c->data_dir, strlen(c->data_dir)) == 1 &&
              EVP_DigestFinal_ex(md, d, &dl) == 1;
    EVP_MD_CTX_free(md);
    mt_wipe(k, sizeof k);
    if (!ok)
        return mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
    mt_hex_encode(d, 8, c->node_id);
    return MT_OK;
}

/* store_migrate's hook: the migrations that need the TEE's keys on rows
 * written before them (core_internal.h STORE_MIG_*). */
static mt_status core_migrate_hook(void *core, mt_db *db, unsigned marks, mt_err *err)
{
    mt_status rc = MT_OK;
    if ((marks & STORE_MIG_SEAL) && (rc = integ_seal_legacy(core, db, err)))
        return rc;
    if ((marks & STORE_MIG_LEASE_V2) && (rc = lease_mac_upgrade(core, db, err)))
        return rc;
    /* after the v2 step: a store from before both moves v1 -> v2 -> v3 */
    if (marks & STORE_MIG_LEASE_V3)
        rc = lease_mac_upgrade_v3(core, db, err);
    return rc;
}

mt_status mt_core_open(const mt_core_config *cfg, mt_tee *tee, mt_core **out, mt_err *err)
{
    *out = NULL;
    if (!cfg || !cfg->data_dir || !cfg->data_dir[0] || !tee)
        return mt_err_set(err, MT_EINVAL, "mt_core_open: data_dir and tee are required");
    mt_core *c = calloc(1, sizeof *c);
    if (!c)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->audit_mu, NULL);
    mt_status rc = MT_OK;
    c->data_dir = strdup(cfg->data_dir);
    c->seal_legacy_store = cfg->seal_legacy_store;
    c->release_signers = mt_strdup(cfg->release_signers);
    c->release_threshold = cfg->release_threshold;
    c->keystore_collateral = mt_strdup(cfg->keystore_collateral);
    c->worker_path = mt_strdup(cfg->worker_path);
    c->file_url_root = mt_strdup(cfg->file_url_root);
    c->fetch_allow = mt_strdup(cfg->fetch_allow);
    const char *store_path = NULL;
    if (cfg->store_url && (rc = mt_core_store_check(cfg->store_url, &store_path, err)))
        goto fail;
    size_t plen = strlen(cfg->data_dir) + sizeof("/" CORE_DB_NAME);
    bool pg = cfg->store_url && !store_path; /* postgres:// (mt_core_store_check) */
    if (pg)
        store_path = cfg->store_url;
    c->db_path = store_path ? strdup(store_path) : malloc(plen);
    if (!c->data_dir || !c->db_path || (cfg->worker_path && !c->worker_path) ||
        (cfg->release_signers && !c->release_signers) ||
        (cfg->keystore_collateral && !c->keystore_collateral) ||
        (cfg->file_url_root && !c->file_url_root) || (cfg->fetch_allow && !c->fetch_allow)) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto fail;
    }
    if (!store_path)
        snprintf(c->db_path, plen, "%s/%s", cfg->data_dir, CORE_DB_NAME);
    if ((rc = mt_python_modules_effective(cfg->python_allow, cfg->python_deny,
                                          &c->python_modules, err)))
        goto fail;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
    if (c->workers > 256)
        c->workers = 256;
    c->token_ttl = cfg->token_ttl_seconds > 0 ? cfg->token_ttl_seconds : 12 * 3600;
    c->task_mem_bytes = cfg->task_mem_bytes ? cfg->task_mem_bytes : (2ULL << 30);
    c->task_cpu_seconds = cfg->task_cpu_seconds ? cfg->task_cpu_seconds : 600;
    c->task_wall_ms = cfg->task_wall_ms ? cfg->task_wall_ms : 900000;
    c->max_json_bytes = cfg->max_json_bytes ? cfg->max_json_bytes : (1u << 20);
    c->max_json_depth = cfg->max_json_depth ? cfg->max_json_depth : MT_JSON_DEFAULT_DEPTH;
    c->max_upload_bytes = cfg->max_upload_bytes ? cfg->max_upload_bytes : (1ULL << 30);
    c->tee = tee;

    if ((rc = mt_mkdirs(c->data_dir, 0700, err)))
        goto fail;
    /* Keys held by the TEE provider only: the store is untrusted, so its
     * rows that matter carry MACs under these (integrity.c, audit.c). They
     * are not bound to the binary's measurement, so an upgraded daemon still
     * verifies the store. File keys are wrapped under KEKs from the KeyStore
     * (kek.c), released only to a build its release policy allows. */
    c->joined = cfg->keystore_joined;
    if (c->joined) { /* a joined node: the KeyStore node's keys (mt_ks_join.h) */
        const uint8_t *p = mt_ks_joined_platform(c->joined);
        memcpy(c->key_fp_key, p, 32);
        memcpy(c->integ_key, p + 32, 32);
        memcpy(c->audit_key, p + 64, 32);
    } else if ((rc = mt_tee_platform_key(tee, "output-key-fingerprint/v1", c->key_fp_key, err)) ||
               (rc = mt_tee_platform_key(tee, "store-integrity/v1", c->integ_key, err)) ||
               (rc = mt_tee_platform_key(tee, "audit-chain/v1", c->audit_key, err)))
        goto fail;
    c->keep_leased = cfg->keep_leased;
    c->node_dead_after_ms = cfg->node_dead_after_ms ? cfg->node_dead_after_ms : 60000;
    c->run_max_attempts = cfg->run_max_attempts ? cfg->run_max_attempts : 3;
    if ((rc = core_node_id(c, tee, err)))
        goto fail;
    c->open_cfg = cfg; /* KeyStore recovery reads its options (kek_escrow.c) */
    rc = core_kek_open(c, err);
    c->open_cfg = NULL;
    if (rc)
        goto fail;
    if ((rc = store_open(c->db_path, false, &c->db, err)))
        goto fail;
    if ((rc = store_migrate(c->db, core_migrate_hook, c, err)) ||
        (rc = mt_db_set_group_sync(c->db, err)))
        goto fail;
    /* the audit entries an earlier run could only spool: into the chain
     * before anything is served or changed, the admin's bootstrap included
     * (audit_spool.c) */
    if ((rc = core_aspool_open(c, cfg->audit_spool_max, err)))
        goto fail;
    if ((rc = auth_bootstrap(c, cfg->admin_password, cfg->admin_password_out, err)) || (rc = auth_dummy_init(c, err)))
        goto fail;
    if ((rc = sched_recover(c, c->db, err)))
        goto fail;
    /* objects (docs/cluster.md "Object storage"); leftovers of a crash are
     * swept once the store says which uploads a live lease still holds */
    if ((rc = untrusted_objects_open(c, cfg->objects, err)))
        goto fail;
    pthread_mutex_lock(&c->mu);
    untrusted_objects_sweep(c, c->db);
    pthread_mutex_unlock(&c->mu);
    if ((rc = core_kek_start(c, err)) || (rc = cwake_start(c, err)) ||
        (rc = nlive_start(c, err)))
        goto fail;
    *out = c;
    return MT_OK;
fail:
    core_free(c);
    return rc;
}

mt_status mt_core_join_source(mt_core *core, struct mt_keystore **ks, uint8_t platform[96],
                              mt_err *err)
{
    if (!core || !core->kek || !(*ks = core_kek_keystore(core)))
        return mt_err_set(err, MT_ECONFLICT, "--keystore-listen: this node joined another "
                                             "KeyStore node; only the KeyStore node serves joins");
    atomic_store(&core->serves_joins, true);
    memcpy(platform, core->key_fp_key, 32);
    memcpy(platform + 32, core->integ_key, 32);
    memcpy(platform + 64, core->audit_key, 32);
    return MT_OK;
}

void mt_core_set_join_info(mt_core *core, const char *url, uint32_t db_cert_ttl_s)
{
    snprintf(core->join_url, sizeof core->join_url, "%s", url ? url : "");
    core->join_db_cert_ttl_s = db_cert_ttl_s;
}

void mt_core_close(mt_core *core)
{
    if (!core)
        return;
    /* node_live.c first: its sweeper requeues other nodes' runs and wakes
     * the scheduler and the cluster listener, which go next (dropping this
     * node's liveness lock a moment before its own requeue below is
     * harmless: another node acts only after the whole grace period) */
    nlive_stop(core);
    cwake_stop(core); /* it wakes the scheduler: stops first */
    sched_stop(core);
    if (atomic_load(&core->ran_tasks) && core->db) {
        mt_err err;
        mt_err_clear(&err);
        pthread_mutex_lock(&core->mu);
        if (sched_requeue_running(core, core->db, &err))
            mt_error("stop: could not put the running tasks back in the queue (they fail at "
                     "the next start): %s",
                     err.msg);
        pthread_mutex_unlock(&core->mu);
    }
    core_free(core);
}

void mt_core_drain(mt_core *core)
{
    if (core)
        atomic_store(&core->draining, true);
}

int64_t mt_core_tasks_running(mt_core *core)
{
    if (!core || !core->db)
        return -1;
    int64_t n = 0;
    bool found = false;
    mt_err err;
    pthread_mutex_lock(&core->mu);
    mt_status rc = store_int(core->db, &err, &n, &found,
                             "SELECT count(*) FROM tasks WHERE status = 'running'");
    pthread_mutex_unlock(&core->mu);
    return rc ? -1 : n;
}

bool mt_core_ready(const mt_core *core)
{
    return core && core->db && atomic_load(&((mt_core *)core)->sched_running) &&
           !atomic_load(&((mt_core *)core)->draining);
}

/* ---- health ------------------------------------------------------------ */

static void text_response(core_ctx *x, int status, const char *text)
{
    size_t n = strlen(text);
    x->resp->raw = malloc(n + 1);
    if (x->resp->raw) {
        memcpy(x->resp->raw, text, n + 1);
        x->resp->raw_len = n;
    }
    x->resp->status = status;
}

mt_status health_handle(core_ctx *x)
{
    text_response(x, 200, "ok\n");
    return x->resp->raw ? MT_OK : mt_err_set(x->err, MT_ENOMEM, "out of memory");
}

mt_status ready_handle(core_ctx *x)
{
    if (atomic_load(&x->core->draining))
        return mt_err_set(x->err, MT_EUNAVAIL, "not ready: the server is shutting down");
    if (!mt_core_ready(x->core))
        return mt_err_set(x->err, MT_EUNAVAIL, "not ready: the scheduler is not running");
    text_response(x, 200, "ready\n");
    return x->resp->raw ? MT_OK : mt_err_set(x->err, MT_ENOMEM, "out of memory");
}

mt_status metrics_handle(core_ctx *x)
{
    char *m = metrics_text(x->db);
    if (!m)
        return mt_err_set(x->err, MT_EIO, "metrics unavailable");
    x->resp->raw = (uint8_t *)m;
    x->resp->raw_len = strlen(m);
    x->resp->status = 200;
    return MT_OK;
}

mt_status mt_core_objects_check(const char *spec, mt_err *err)
{
    return untrusted_objects_check(spec, err);
}
