/* remote_sched: see mt_remote_sched.h. Claiming and storing reuse sched.c
 * (sched_claim_job, sched_finish), so local and remote runs store the same
 * outcome in the same single transaction. */
#include "mt_remote_sched.h"

#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "job_codec.h"
#include "keyuse.h"
#include "mt_executor.h"
#include "mt_json.h"
#include "mt_log.h"
#include "remote_job.h"

#define MAX_INPUT_BYTES (256u * 1024u * 1024u)
#define MAX_SLOTS 64

struct mt_remote_sched {
    mt_core *core;
    sqlite3 *db;
};

mt_status mt_remote_sched_new(mt_core *core, mt_remote_sched **out, mt_err *err)
{
    *out = NULL;
    if (!core)
        return mt_err_set(err, MT_EINVAL, "no core");
    if (core->sched)
        return mt_err_set(err, MT_EINVAL, "the local scheduler is running");
    mt_remote_sched *rs = calloc(1, sizeof *rs);
    if (!rs)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    rs->core = core;
    mt_status rc = store_open(core->db_path, false, &rs->db, err);
    if (rc) {
        free(rs);
        return rc;
    }
    atomic_store(&core->sched_running, true);
    atomic_store(&core->ran_tasks, true);
    *out = rs;
    return MT_OK;
}

void mt_remote_sched_free(mt_remote_sched *rs)
{
    if (!rs)
        return;
    atomic_store(&rs->core->sched_running, false);
    store_close(rs->db);
    free(rs);
}

/* {"ciphertext": b64 of path | "url": url, "key": hex} into o, plus
 * "<extra_name>": extra when extra is non-empty (an input's "sha256", an
 * output's "file_id", the module's "plain_sha256"). */
static mt_status slot_json(json_t *o, const char *path, const char *url, const uint8_t key[32],
                           const char *extra_name, const char *extra, mt_err *err)
{
    char hex[65];
    mt_hex_encode(key, 32, hex);
    int e = json_object_set_new(o, "key", json_string(hex));
    mt_wipe(hex, sizeof hex);
    if (extra && *extra)
        e |= json_object_set_new(o, extra_name, json_string(extra));
    if (path) {
        uint8_t *data = NULL;
        size_t len = 0;
        mt_status rc = mt_file_read(path, MAX_INPUT_BYTES, &data, &len, err);
        if (rc)
            return rc;
        char *b64 = mt_b64_encode(data, len);
        free(data);
        if (!b64)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        e |= json_object_set_new(o, "ciphertext", json_string(b64));
        free(b64);
    } else if (url) {
        e |= json_object_set_new(o, "url", json_string(url));
    }
    return e ? mt_err_set(err, MT_ENOMEM, "out of memory") : MT_OK;
}

static mt_status job_json(const mt_job *job, json_t **out, mt_err *err)
{
    mt_status rc = MT_OK;
    json_t *j = json_pack("{s:s, s:s, s:s, s:O, s:{s:I, s:I, s:I}, s:[], s:[]}", "task_id",
                          job->task_id, "executor_type", job->executor_type, "function",
                          job->function, "arguments", job->arguments, "limits", "mem_bytes",
                          (json_int_t)job->limits.mem_bytes, "cpu_seconds",
                          (json_int_t)job->limits.cpu_seconds, "wall_ms",
                          (json_int_t)job->limits.wall_ms, "inputs", "outputs");
    if (!j)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if (job->module) {
        json_t *m = json_object();
        if (!m || json_object_set_new(j, "module", m))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = slot_json(m, job->module->path, NULL, job->module->key, "plain_sha256",
                           job->module->plain_sha256, err);
    } else if (json_object_set_new(j, "module", json_null())) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !rc && i < job->n_inputs; i++) {
        json_t *o = json_pack("{s:s}", "slot", job->inputs[i].slot);
        if (!o || json_array_append_new(json_object_get(j, "inputs"), o))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = slot_json(o, job->inputs[i].path, job->inputs[i].url, job->inputs[i].key,
                           "sha256", job->inputs[i].sha256, err);
    }
    if (!rc && job->n_keys) { /* KeyStore keys, like file keys (docs/keystore.md, "Keys in tasks") */
        json_t *k = mt_job_keys_json(job->keys, job->n_keys);
        if (!k || json_object_set_new(j, "keys", k))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !rc && i < job->n_outputs; i++) {
        json_t *o = json_pack("{s:s}", "slot", job->outputs[i].slot);
        if (!o || json_array_append_new(json_object_get(j, "outputs"), o))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else
            rc = slot_json(o, NULL, NULL, job->outputs[i].key, "file_id",
                           job->outputs[i].file_id, err);
    }
    if (rc) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return MT_OK;
}

mt_status mt_remote_sched_claim(mt_remote_sched *rs, json_t **out, mt_err *err)
{
    *out = NULL;
    char task_id[MT_ID_LEN + 1], exec_type[33], builtin[65];
    bool got = false;
    mt_job job;
    memset(&job, 0, sizeof job);
    mt_status rc = sched_claim_job(rs->core, rs->db, task_id, &got, &job, exec_type, builtin, err);
    if (!got)
        return rc;
    if (!rc)
        rc = keyuse_audit(rs->core, rs->db, task_id, &job, err);
    if (!rc)
        rc = job_json(&job, out, err);
    if (!rc) {
        sched_job_free(&job);
        mt_info("task %s handed to a remote executor (%s/%s)", task_id, exec_type, builtin);
        return MT_OK;
    }
    char reason[MT_ERR_MSG_MAX + 64];
    snprintf(reason, sizeof reason, "could not prepare the task: %s", err->msg);
    if (job.task_id)
        sched_job_free(&job);
    mt_err ferr;
    if (sched_finish(rs->core, rs->db, task_id, NULL, reason, &ferr))
        mt_error("task %s: storing the failure failed: %s", task_id, ferr.msg);
    return rc;
}

/* Writes the reported ciphertext of every output slot of the task to its
 * object and builds r->outputs ({slot: {size, sha256}}). */
static mt_status store_outputs(mt_remote_sched *rs, const char *task_id, json_t *reported,
                               mt_job_result *r, mt_err *err)
{
    sqlite3_stmt *q;
    mt_status rc = store_prepare(rs->db,
                                 "SELECT slot, file_id FROM task_files WHERE task_id = ? AND "
                                 "direction = 'output'",
                                 &q, err);
    if (rc)
        return rc;
    store_bind_text(q, 1, task_id);
    r->outputs = json_object();
    if (!r->outputs)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    while (!rc && store_next(rs->db, q, &rc, err)) {
        const char *slot = store_col_text(q, 0);
        json_t *o = json_object_get(reported, slot);
        const char *ct = NULL, *sha = NULL;
        int64_t size = 0;
        if (!json_is_object(o) || (rc = mt_json_str(o, "ciphertext", SIZE_MAX, &ct, err)) ||
            (rc = mt_json_str(o, "sha256", 64, &sha, err)) ||
            (rc = mt_json_int(o, "size", 0, INT64_MAX, &size, err))) {
            if (!rc)
                rc = mt_err_set(err, MT_EINVAL, "output slot '%s' was not reported", slot);
            break;
        }
        uint8_t *data = NULL;
        size_t len = 0;
        if ((rc = mt_b64_decode(ct, &data, &len, err)))
            break;
        char hex[65];
        core_sha256_hex(data, len, hex);
        if ((size_t)size != len || strcmp(hex, sha) != 0) {
            free(data);
            rc = mt_err_set(err, MT_EINVAL, "output slot '%s': size or sha256 mismatch", slot);
            break;
        }
        core_file f;
        char path[4096];
        if (!(rc = core_file_load(rs->core, rs->db, store_col_text(q, 1), &f, err)) &&
            !(rc = untrusted_objstore_path(rs->core->objs, f.object_id, path, sizeof path, err)))
            rc = mt_file_write_atomic(path, data, len, 0600, err);
        free(data);
        if (!rc && json_object_set_new(r->outputs, slot,
                                       json_pack("{s:I, s:s}", "size", (json_int_t)len,
                                                 "sha256", hex)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    sqlite3_finalize(q);
    return rc;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

mt_status mt_remote_sched_report(mt_remote_sched *rs, const uint8_t *body, size_t len,
                                 mt_err *err)
{
    /* remote_job.h is the one reader of the report (fuzzed: fuzz/remote_report.c) */
    mt_rreport rep;
    mt_status rc = mt_rreport_decode((const char *)body, len, &rep, err);
    if (rc)
        return rc;
    mt_job_result r;
    memset(&r, 0, sizeof r);
    const char *task_id = rep.task_id;
    json_t *outs = rep.outputs;
    r.ok = rep.ok;
    r.canceled = rep.canceled;
    r.cpu_ms = rep.cpu_ms;
    r.peak_rss_kb = rep.peak_rss_kb;
    r.wall_ms = rep.wall_ms;
    r.bytes_in = rep.bytes_in;
    r.bytes_out = rep.bytes_out;
    r.fuel_used = rep.fuel_used;
    r.key_signs = rep.key_signs;
    r.return_value = dup_opt(rep.return_value);
    r.failure_reason = dup_opt(rep.failure_reason);
    r.log = dup_opt(rep.log);
    int64_t running = 0;
    bool found = false;
    if ((rc = store_int(rs->db, err, &running, &found,
                        "SELECT count(*) FROM tasks WHERE task_id = ? AND status = 'running'",
                        task_id)))
        goto out;
    if (!running) {
        rc = mt_err_set(err, MT_ECONFLICT, "task %s is not running", task_id);
        goto out;
    }
    if (r.key_signs) {
        /* signatures only where the claim handed out a key: its use is in
         * the audit log (keyuse_audit, before the job left) */
        int64_t uses = 0;
        char obj[8 + MT_ID_LEN];
        snprintf(obj, sizeof obj, "task:%s", task_id);
        if ((rc = store_int(rs->db, err, &uses, NULL,
                            "SELECT count(*) FROM audit WHERE object = ? AND actor = 'scheduler' "
                            "AND action LIKE 'task signs with KeyStore key %'",
                            obj)))
            goto out;
        if (!uses) {
            rc = mt_err_set(err, MT_EINVAL,
                            "report metering: key_signs for a task that was given no KeyStore "
                            "key");
            goto out;
        }
    }
    if (r.ok && !r.canceled) {
        mt_err oerr;
        if (store_outputs(rs, task_id, outs, &r, &oerr)) {
            r.ok = false;
            free(r.failure_reason);
            char reason[MT_ERR_MSG_MAX + 64];
            snprintf(reason, sizeof reason, "the executor's outputs were rejected: %s",
                     oerr.msg);
            r.failure_reason = strdup(reason);
        }
    }
    rc = sched_finish(rs->core, rs->db, task_id, &r, NULL, err);
out:
    mt_job_result_clear(&r);
    mt_rreport_free(&rep);
    return rc;
}
