/* remote_job: reader of the claimed job document; contract in remote_job.h. */
#include "remote_job.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "job_codec.h"
#include "mt_json.h"
#include "mt_util.h"

#define RJOB_MAX_BYTES (1024u * 1024u * 1024u)
#define RJOB_MAX_ARGS 64
#define RJOB_MAX_ARG_BYTES (64 * 1024)

static void io_clear(mt_rjob_io *io)
{
    free(io->slot);
    if (io->ciphertext) {
        OPENSSL_cleanse(io->ciphertext, io->ciphertext_len);
        free(io->ciphertext);
    }
    free(io->url);
    OPENSSL_cleanse(io->key, sizeof io->key);
    memset(io, 0, sizeof *io);
}

void mt_rjob_free(mt_rjob *j)
{
    if (!j)
        return;
    for (size_t i = 0; j->inputs && i < j->n_inputs; i++)
        io_clear(&j->inputs[i]);
    for (size_t i = 0; j->outputs && i < j->n_outputs; i++)
        io_clear(&j->outputs[i]);
    io_clear(&j->module);
    mt_job_keys_free(j->keys, j->n_keys);
    free(j->inputs);
    free(j->outputs);
    json_decref(j->root);
    memset(j, 0, sizeof *j);
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

bool mt_rlease_secret_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Optional lower-case hex field of exactly n characters into out (n + 1). */
static mt_status opt_hex(const json_t *o, const char *what, const char *key, size_t n, char *out,
                         mt_err *err)
{
    const char *s = NULL;
    mt_status rc = mt_json_str_opt(o, key, n, &s, NULL, err);
    if (rc)
        return mt_err_prefix(err, rc, "job %s: ", what);
    if (!s)
        return MT_OK;
    if (!is_hex(s, n))
        return mt_err_set(err, MT_EINVAL, "job %s: field '%s' must be %zu hex digits",
                          what, key, n);
    memcpy(out, s, n + 1);
    return MT_OK;
}

/* kind: 0 input, 1 output, 2 module. */
static mt_status decode_io(const json_t *o, int kind, const char *what, mt_rjob_io *io,
                           mt_err *err)
{
    static const char *const k_in[] = {"slot", "key",  "ciphertext", "url",
                                       "sha256", "stream", "size", NULL};
    static const char *const k_out[] = {"slot", "key", "file_id", NULL};
    static const char *const k_mod[] = {"key", "ciphertext", "plain_sha256", "stream", "size",
                                        NULL};
    if (!json_is_object(o))
        return mt_err_set(err, MT_EINVAL, "job %s: expected an object", what);
    mt_status rc = mt_json_only_keys(o, kind == 0 ? k_in : kind == 1 ? k_out : k_mod, err);
    if (rc)
        return mt_err_prefix(err, rc, "job %s: ", what);
    const char *slot = "(module)", *key = NULL, *ct = NULL, *url = NULL;
    if (kind != 2 && (rc = mt_json_str(o, "slot", MT_JOB_SLOT_MAX, &slot, err)))
        return mt_err_prefix(err, rc, "job %s: ", what);
    if (!mt_job_slot_valid(slot))
        return mt_err_set(err, MT_EINVAL, "job %s: invalid slot name", what);
    if ((rc = mt_json_str(o, "key", 64, &key, err)))
        return mt_err_prefix(err, rc, "job %s: ", what);
    if (!is_hex(key, 64))
        return mt_err_set(err, MT_EINVAL, "job %s: field 'key' must be 64 hex digits",
                          what);
    if (kind != 1 && ((rc = mt_json_str_opt(o, "ciphertext", RJOB_MAX_BYTES, &ct, NULL, err)) ||
                      (kind == 0 && (rc = mt_json_str_opt(o, "url", 2048, &url, NULL, err)))))
        return mt_err_prefix(err, rc, "job %s: ", what);
    int stream = 0;
    int64_t size = 0;
    if (kind != 1) {
        json_t *sv = json_object_get(o, "stream");
        if (sv && !json_is_true(sv))
            return mt_err_set(err, MT_EINVAL, "job %s: field 'stream' must be true", what);
        stream = sv != NULL;
        if (stream &&
            (rc = mt_json_int(o, "size", 0, (int64_t)MT_RXFER_MAX_BYTES, &size, err)))
            return mt_err_prefix(err, rc, "job %s: ", what);
        if (!stream && json_object_get(o, "size"))
            return mt_err_set(err, MT_EINVAL, "job %s: field 'size' without 'stream'", what);
    }
    if (kind == 0 && (ct != NULL) + (url != NULL) + stream != 1)
        return mt_err_set(err, MT_EINVAL,
                          "job %s: exactly one of 'ciphertext', 'url' and 'stream'", what);
    if (kind == 2 && (ct != NULL) + stream != 1)
        return mt_err_set(err, MT_EINVAL, "job %s: exactly one of 'ciphertext' and 'stream'",
                          what);
    io->stream = stream != 0;
    io->size = (uint64_t)size;
    if (url && (strncmp(url, "https://", 8) != 0 || strlen(url) <= 8))
        return mt_err_set(err, MT_EINVAL, "job %s: a url input must be https://", what);
    if ((kind == 0 && (rc = opt_hex(o, what, "sha256", 64, io->sha256, err))) ||
        (kind == 1 && (rc = opt_hex(o, what, "file_id", 32, io->file_id, err))) ||
        (kind == 2 && (rc = opt_hex(o, what, "plain_sha256", 64, io->plain_sha256, err))))
        return rc;
    if (!(io->slot = strdup(slot)) || (url && !(io->url = strdup(url))))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    if ((rc = mt_hex_decode(key, io->key, 32, err)))
        return mt_err_prefix(err, rc, "job %s: ", what);
    if (ct && (rc = mt_b64_decode(ct, &io->ciphertext, &io->ciphertext_len, err)))
        return mt_err_set(err, rc, "job %s: field 'ciphertext' is not base64", what);
    return MT_OK;
}

/* The slots of arr into a fresh array *out (n items), unique names. */
static mt_status decode_slots(const json_t *arr, int kind, mt_rjob_io **out, size_t *n,
                              mt_err *err)
{
    size_t count = json_array_size(arr);
    *out = calloc(count + 1, sizeof **out);
    if (!*out)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        char what[32];
        snprintf(what, sizeof what, "%s %zu", kind == 0 ? "input" : "output", i);
        mt_rjob_io *io = &(*out)[i];
        *n = i + 1; /* counted before decoding, so mt_rjob_free releases a partial item */
        mt_status rc = decode_io(json_array_get(arr, i), kind, what, io, err);
        if (rc)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp((*out)[k].slot, io->slot) == 0)
                return mt_err_set(err, MT_EINVAL, "job %s: slot repeated", what);
    }
    return MT_OK;
}

mt_status mt_rjob_decode(const char *buf, size_t len, mt_rjob *out, mt_err *err)
{
    static const char *const top[] = {"task_id", "executor_type", "function", "arguments",
                                      "limits",  "module",        "inputs",   "outputs",
                                      "keys",    "lease",         NULL};
    static const char *const lease_keys[] = {"fence", "ms", "secret", NULL};
    static const char *const lkeys[] = {"mem_bytes", "cpu_seconds", "wall_ms", NULL};
    memset(out, 0, sizeof *out);
    mt_rjob j = {0};
    mt_status rc;
    json_t *lim = NULL, *ins = NULL, *outs = NULL, *mod;
    int64_t mem = 0, cpu = 0, wall = 0;
    if (!(j.root = mt_json_parse(buf, len, RJOB_MAX_BYTES, 8, err)))
        return err ? err->code : MT_EINVAL;
    if (!json_is_object(j.root)) {
        rc = mt_err_set(err, MT_EINVAL, "job: expected a JSON object");
        goto fail;
    }
    if ((rc = mt_json_only_keys(j.root, top, err)) ||
        (rc = mt_json_str(j.root, "task_id", 32, &j.task_id, err)) ||
        (rc = mt_json_str(j.root, "executor_type", 16, &j.executor_type, err)) ||
        (rc = mt_json_str(j.root, "function", 64, &j.function, err)) ||
        (rc = mt_json_object_opt(j.root, "arguments", RJOB_MAX_ARGS, &j.arguments, err)) ||
        (rc = mt_json_object_opt(j.root, "limits", 8, &lim, err)) ||
        (rc = mt_json_array(j.root, "inputs", MT_JOB_MAX_SLOTS, &ins, err)) ||
        (rc = mt_json_array(j.root, "outputs", MT_JOB_MAX_SLOTS, &outs, err))) {
        mt_err_prefix(err, rc, "job: ");
        goto fail;
    }
    if (!mt_id_valid(j.task_id)) {
        rc = mt_err_set(err, MT_EINVAL, "job: task_id is not an id");
        goto fail;
    }
    bool modular = !strcmp(j.executor_type, "wasm") || !strcmp(j.executor_type, "python");
    if (strcmp(j.executor_type, "builtin") != 0 && !modular) {
        rc = mt_err_set(err, MT_EINVAL, "job: unknown executor_type");
        goto fail;
    }
    if (!j.function[0]) {
        rc = mt_err_set(err, MT_EINVAL, "job: empty function name");
        goto fail;
    }
    if (!j.arguments || !lim) {
        rc = mt_err_set(err, MT_EINVAL, "job: fields 'arguments' and 'limits' are required");
        goto fail;
    }
    const char *k;
    json_t *val;
    json_object_foreach(j.arguments, k, val) {
        if (!json_is_string(val) || json_string_length(val) > RJOB_MAX_ARG_BYTES ||
            strlen(json_string_value(val)) != json_string_length(val)) {
            rc = mt_err_set(err, MT_EINVAL, "job: every argument must be a string of at most "
                                            "64 KiB without NUL");
            goto fail;
        }
    }
    if ((rc = mt_json_only_keys(lim, lkeys, err)) ||
        (rc = mt_json_int(lim, "mem_bytes", 0, INT64_MAX, &mem, err)) ||
        (rc = mt_json_int(lim, "cpu_seconds", 0, UINT32_MAX, &cpu, err)) ||
        (rc = mt_json_int(lim, "wall_ms", 0, UINT32_MAX, &wall, err))) {
        mt_err_prefix(err, rc, "job limits: ");
        goto fail;
    }
    j.mem_bytes = (uint64_t)mem;
    j.cpu_seconds = (uint32_t)cpu;
    j.wall_ms = (uint32_t)wall;
    mod = json_object_get(j.root, "module");
    if (mod && !json_is_null(mod)) {
        if ((rc = decode_io(mod, 2, "module", &j.module, err)))
            goto fail;
        j.has_module = true;
    }
    if (j.has_module != modular) {
        rc = mt_err_set(err, MT_EINVAL,
                        "job: a wasm or python job has a module, a builtin job none");
        goto fail;
    }
    if ((rc = decode_slots(ins, 0, &j.inputs, &j.n_inputs, err)) ||
        (rc = decode_slots(outs, 1, &j.outputs, &j.n_outputs, err)))
        goto fail;
    json_t *keys = json_object_get(j.root, "keys");
    if (keys && (rc = mt_job_keys_decode(keys, j.arguments, &j.keys, &j.n_keys, err)))
        goto fail;
    if (keys) /* the hex copies in the tree are no longer needed */
        mt_job_keys_json_wipe(keys);
    json_t *lease = NULL;
    if ((rc = mt_json_object_opt(j.root, "lease", 3, &lease, err))) {
        mt_err_prefix(err, rc, "job: ");
        goto fail;
    }
    if (lease) {
        int64_t fence = 0, ms = 0;
        const char *sec = NULL;
        if ((rc = mt_json_only_keys(lease, lease_keys, err)) ||
            (rc = mt_json_int(lease, "fence", 1, MT_RLEASE_FENCE_MAX, &fence, err)) ||
            (rc = mt_json_int(lease, "ms", MT_RLEASE_MS_MIN, MT_RLEASE_MS_MAX, &ms, err)) ||
            (rc = mt_json_str(lease, "secret", 64, &sec, err))) {
            mt_err_prefix(err, rc, "job lease: ");
            goto fail;
        }
        if (!mt_rlease_secret_valid(sec)) {
            rc = mt_err_set(err, MT_EINVAL, "job lease: secret is not 64 hex characters");
            goto fail;
        }
        memcpy(j.lease_secret, sec, 65);
        j.lease_fence = (uint64_t)fence;
        j.lease_ms = (uint32_t)ms;
    }
    *out = j;
    return MT_OK;
fail:
    mt_rjob_free(&j);
    return rc;
}

/* ---- the report (executor -> scheduler) --------------------------------- */

void mt_rreport_free(mt_rreport *r)
{
    if (!r)
        return;
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

static mt_status opt_text(const json_t *o, const char *key, const char **out, mt_err *err)
{
    /* the worker's own result is at most MT_JOB_RESULT_MAX in all */
    mt_status rc = mt_json_str_opt(o, key, MT_JOB_RESULT_MAX, out, NULL, err);
    return rc ? mt_err_prefix(err, rc, "report: ") : MT_OK;
}

mt_status mt_rreport_decode(const char *buf, size_t len, mt_rreport *out, mt_err *err)
{
    static const char *const keys[] = {"task_id", "ok",  "canceled", "return_value",
                                       "failure_reason", "log", "metering", "outputs",
                                       "fence", "lease_secret", NULL};
    static const char *const mk[] = {"cpu_ms",   "peak_rss_kb", "wall_ms",
                                     "bytes_in", "bytes_out",   "fuel_used", "key_signs",
                                     NULL};
    static const char *const ok_keys[] = {"ciphertext", "uploaded", "sha256", "size", NULL};
    memset(out, 0, sizeof *out);
    mt_rreport r = {0};
    mt_status rc;
    json_t *met = NULL;
    if (!(r.root = mt_json_parse(buf, len, MT_RREPORT_MAX_BYTES, 8, err)))
        return err ? err->code : MT_EINVAL;
    if (!json_is_object(r.root)) {
        rc = mt_err_set(err, MT_EINVAL, "report: expected a JSON object");
        goto fail;
    }
    if ((rc = mt_json_only_keys(r.root, keys, err)) ||
        (rc = mt_json_str(r.root, "task_id", 32, &r.task_id, err)) ||
        (rc = mt_json_bool_opt(r.root, "ok", &r.ok, false, err)) ||
        (rc = mt_json_bool_opt(r.root, "canceled", &r.canceled, false, err)) ||
        (rc = mt_json_object_opt(r.root, "metering", 7, &met, err)) ||
        (rc = mt_json_object_opt(r.root, "outputs", MT_JOB_MAX_SLOTS, &r.outputs, err))) {
        mt_err_prefix(err, rc, "report: ");
        goto fail;
    }
    if (!mt_id_valid(r.task_id)) {
        rc = mt_err_set(err, MT_EINVAL, "report: task_id is not an id");
        goto fail;
    }
    int64_t fence = 0;
    if ((rc = mt_json_int_opt(r.root, "fence", 1, MT_RLEASE_FENCE_MAX, &fence, 0, err))) {
        mt_err_prefix(err, rc, "report: ");
        goto fail;
    }
    r.fence = (uint64_t)fence;
    if ((rc = mt_json_str_opt(r.root, "lease_secret", 64, &r.lease_secret, NULL, err))) {
        mt_err_prefix(err, rc, "report: ");
        goto fail;
    }
    if (r.lease_secret && !mt_rlease_secret_valid(r.lease_secret)) {
        rc = mt_err_set(err, MT_EINVAL, "report: lease_secret is not 64 hex characters");
        goto fail;
    }
    if ((rc = opt_text(r.root, "return_value", &r.return_value, err)) ||
        (rc = opt_text(r.root, "failure_reason", &r.failure_reason, err)) ||
        (rc = opt_text(r.root, "log", &r.log, err)))
        goto fail;
    if (met) {
        uint64_t *dst[] = {&r.cpu_ms,   &r.peak_rss_kb, &r.wall_ms,
                           &r.bytes_in, &r.bytes_out,   &r.fuel_used, &r.key_signs};
        if ((rc = mt_json_only_keys(met, mk, err))) {
            mt_err_prefix(err, rc, "report metering: ");
            goto fail;
        }
        for (int i = 0; mk[i]; i++) {
            int64_t v = 0;
            /* key_signs bounded per task (MT_JOB_KEY_SIGNS_MAX): the sums stay exact */
            int64_t max = strcmp(mk[i], "key_signs") ? INT64_MAX : MT_JOB_KEY_SIGNS_MAX;
            if ((rc = mt_json_int_opt(met, mk[i], 0, max, &v, 0, err))) {
                mt_err_prefix(err, rc, "report metering: ");
                goto fail;
            }
            *dst[i] = (uint64_t)v;
        }
    }
    const char *slot;
    json_t *o;
    json_object_foreach(r.outputs, slot, o) {
        const char *ct = NULL, *sha = NULL;
        int64_t size = 0;
        if (!mt_job_slot_valid(slot)) {
            rc = mt_err_set(err, MT_EINVAL, "report: an output has an invalid slot name");
            goto fail;
        }
        if (!json_is_object(o)) {
            rc = mt_err_set(err, MT_EINVAL, "report: output '%s' must be an object", slot);
            goto fail;
        }
        json_t *up = json_object_get(o, "uploaded");
        if (up && !json_is_true(up)) {
            rc = mt_err_set(err, MT_EINVAL, "report output '%s': 'uploaded' must be true", slot);
            goto fail;
        }
        if ((rc = mt_json_only_keys(o, ok_keys, err)) ||
            (!up && (rc = mt_json_str(o, "ciphertext", MT_RREPORT_MAX_BYTES, &ct, err))) ||
            (rc = mt_json_str(o, "sha256", 64, &sha, err)) ||
            (rc = mt_json_int(o, "size", 0,
                              up ? (int64_t)MT_RXFER_MAX_BYTES : (int64_t)MT_RREPORT_MAX_BYTES,
                              &size, err))) {
            mt_err_prefix(err, rc, "report output '%s': ", slot);
            goto fail;
        }
        if (up && json_object_get(o, "ciphertext")) {
            rc = mt_err_set(err, MT_EINVAL,
                            "report output '%s': 'uploaded' and 'ciphertext' together", slot);
            goto fail;
        }
        if (!is_hex(sha, 64)) {
            rc = mt_err_set(err, MT_EINVAL, "report output '%s': sha256 must be 64 hex digits",
                            slot);
            goto fail;
        }
    }
    *out = r;
    return MT_OK;
fail:
    mt_rreport_free(&r);
    return rc;
}

/* ---- leases and executor health ---------------------------------------- */

/* Parses a small document of at most MT_RLEASE_MAX_BYTES into an object
 * with only the listed keys; *root to json_decref. */
static mt_status small_doc(const char *buf, size_t len, const char *what,
                           const char *const *keys, json_t **root, mt_err *err)
{
    *root = NULL;
    if (len > MT_RLEASE_MAX_BYTES)
        return mt_err_set(err, MT_ETOOBIG, "%s: larger than %u bytes", what,
                          MT_RLEASE_MAX_BYTES);
    json_t *j = mt_json_parse(buf, len, MT_RLEASE_MAX_BYTES, 4, err);
    if (!j)
        return err ? mt_err_prefix(err, err->code, "%s: ", what) : MT_EINVAL;
    mt_status rc = MT_OK;
    if (!json_is_object(j))
        rc = mt_err_set(err, MT_EINVAL, "%s: expected a JSON object", what);
    else if ((rc = mt_json_only_keys(j, keys, err)))
        mt_err_prefix(err, rc, "%s: ", what);
    if (rc) {
        json_decref(j);
        return rc;
    }
    *root = j;
    return MT_OK;
}

mt_status mt_rrenew_decode(const char *buf, size_t len, mt_rrenew *out, mt_err *err)
{
    static const char *const keys[] = {"task_id", "fence", "secret", NULL};
    memset(out, 0, sizeof *out);
    json_t *j;
    mt_status rc = small_doc(buf, len, "renewal", keys, &j, err);
    if (rc)
        return rc;
    const char *tid = NULL, *sec = NULL;
    int64_t fence = 0;
    if ((rc = mt_json_str(j, "task_id", 32, &tid, err)) ||
        (rc = mt_json_int(j, "fence", 1, MT_RLEASE_FENCE_MAX, &fence, err)) ||
        (rc = mt_json_str(j, "secret", 64, &sec, err)))
        mt_err_prefix(err, rc, "renewal: ");
    else if (!mt_id_valid(tid))
        rc = mt_err_set(err, MT_EINVAL, "renewal: task_id is not an id");
    else if (!mt_rlease_secret_valid(sec))
        rc = mt_err_set(err, MT_EINVAL, "renewal: secret is not 64 hex characters");
    if (!rc) {
        memcpy(out->task_id, tid, 33);
        out->fence = (uint64_t)fence;
        memcpy(out->secret, sec, 65);
    }
    json_decref(j);
    return rc;
}

mt_status mt_rrenew_answer_decode(const char *buf, size_t len, mt_rrenew_answer *out,
                                  mt_err *err)
{
    static const char *const keys[] = {"lease_ms", "cancel", NULL};
    memset(out, 0, sizeof *out);
    json_t *j;
    mt_status rc = small_doc(buf, len, "renewal answer", keys, &j, err);
    if (rc)
        return rc;
    int64_t ms = 0;
    bool cancel = false;
    if ((rc = mt_json_int(j, "lease_ms", MT_RLEASE_MS_MIN, MT_RLEASE_MS_MAX, &ms, err)) ||
        (rc = mt_json_bool_opt(j, "cancel", &cancel, false, err)))
        mt_err_prefix(err, rc, "renewal answer: ");
    else {
        out->lease_ms = (uint32_t)ms;
        out->cancel = cancel;
    }
    json_decref(j);
    return rc;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > MT_RHELLO_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

mt_status mt_rhello_decode(const char *buf, size_t len, mt_rhello *out, mt_err *err)
{
    static const char *const keys[] = {"executor", "slots", "busy", "tasks_run",
                                       "tasks_failed", "last_error", NULL};
    memset(out, 0, sizeof *out);
    if (len == 0)
        return MT_OK;
    json_t *j;
    mt_status rc = small_doc(buf, len, "executor health", keys, &j, err);
    if (rc)
        return rc;
    const char *name = NULL, *le = NULL;
    int64_t slots = 0, busy = 0, run = 0, failed = 0;
    if ((rc = mt_json_str(j, "executor", MT_RHELLO_NAME_MAX, &name, err)) ||
        (rc = mt_json_int(j, "slots", 1, MT_RHELLO_SLOTS_MAX, &slots, err)) ||
        (rc = mt_json_int(j, "busy", 0, MT_RHELLO_SLOTS_MAX, &busy, err)) ||
        (rc = mt_json_int_opt(j, "tasks_run", 0, MT_RLEASE_FENCE_MAX, &run, 0, err)) ||
        (rc = mt_json_int_opt(j, "tasks_failed", 0, MT_RLEASE_FENCE_MAX, &failed, 0, err)) ||
        (rc = mt_json_str_opt(j, "last_error", MT_RHELLO_ERROR_MAX, &le, NULL, err))) {
        mt_err_prefix(err, rc, "executor health: ");
        goto out;
    }
    if (!name_ok(name)) {
        rc = mt_err_set(err, MT_EINVAL,
                        "executor health: 'executor' must be 1..64 of A-Z a-z 0-9 . _ : -");
        goto out;
    }
    if (busy > slots) {
        rc = mt_err_set(err, MT_EINVAL, "executor health: 'busy' exceeds 'slots'");
        goto out;
    }
    for (const char *p = le; p && *p; p++)
        if (*p < 0x20 || *p > 0x7e) {
            rc = mt_err_set(err, MT_EINVAL,
                            "executor health: 'last_error' must be printable ASCII");
            goto out;
        }
    out->present = true;
    snprintf(out->executor, sizeof out->executor, "%s", name);
    out->slots = (uint32_t)slots;
    out->busy = (uint32_t)busy;
    out->tasks_run = (uint64_t)run;
    out->tasks_failed = (uint64_t)failed;
    snprintf(out->last_error, sizeof out->last_error, "%s", le ? le : "");
out:
    json_decref(j);
    return rc;
}

/* ---- raw transfers ------------------------------------------------------ */

_Static_assert(sizeof(((mt_rxfer *)0)->slot) == MT_JOB_SLOT_MAX + 1, "mt_rxfer.slot size");

/* Consumes "name=" at *p (end e); false if absent. */
static bool take(const char **p, const char *e, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(e - *p) < n || memcmp(*p, name, n) != 0)
        return false;
    *p += n;
    return true;
}

/* The value up to the next '&' (or e) as [*v, *v + *vn). */
static void value(const char **p, const char *e, const char **v, size_t *vn)
{
    *v = *p;
    while (*p < e && **p != '&')
        (*p)++;
    *vn = (size_t)(*p - *v);
}

static bool hexn(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

mt_status mt_rxfer_parse(const char *q, size_t len, mt_rxfer *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    const char *p = q, *e = q + len, *v;
    size_t vn;
    if (!take(&p, e, "task="))
        return mt_err_set(err, MT_EINVAL, "transfer: expected task= first");
    value(&p, e, &v, &vn);
    if (vn != 32 || !hexn(v, 32))
        return mt_err_set(err, MT_EINVAL, "transfer: task is not an id");
    memcpy(out->task_id, v, 32);
    if (!take(&p, e, "&fence="))
        return mt_err_set(err, MT_EINVAL, "transfer: expected &fence= after task");
    value(&p, e, &v, &vn);
    uint64_t f = 0;
    if (vn < 1 || vn > 16 || v[0] == '0')
        return mt_err_set(err, MT_EINVAL, "transfer: fence must be 1..2^53 in decimal");
    for (size_t i = 0; i < vn; i++) {
        if (v[i] < '0' || v[i] > '9')
            return mt_err_set(err, MT_EINVAL, "transfer: fence must be 1..2^53 in decimal");
        f = f * 10 + (uint64_t)(v[i] - '0');
    }
    if (f > (uint64_t)MT_RLEASE_FENCE_MAX)
        return mt_err_set(err, MT_EINVAL, "transfer: fence must be 1..2^53 in decimal");
    out->fence = f;
    if (!take(&p, e, "&secret="))
        return mt_err_set(err, MT_EINVAL, "transfer: expected &secret= after fence");
    value(&p, e, &v, &vn);
    if (vn != 64 || !hexn(v, 64))
        return mt_err_set(err, MT_EINVAL, "transfer: secret is not 64 hex characters");
    memcpy(out->secret, v, 64);
    if (!take(&p, e, "&slot="))
        return mt_err_set(err, MT_EINVAL, "transfer: expected &slot= after secret");
    value(&p, e, &v, &vn);
    if (p != e)
        return mt_err_set(err, MT_EINVAL, "transfer: nothing may follow slot");
    if (vn % 2 || vn > 2 * MT_JOB_SLOT_MAX || !hexn(v, vn))
        return mt_err_set(err, MT_EINVAL, "transfer: slot must be the slot name in hex");
    char hx[2 * MT_JOB_SLOT_MAX + 1];
    memcpy(hx, v, vn);
    hx[vn] = '\0';
    if (mt_hex_decode(hx, (uint8_t *)out->slot, vn / 2, err) != MT_OK)
        return mt_err_set(err, MT_EINVAL, "transfer: slot must be the slot name in hex");
    out->slot[vn / 2] = '\0';
    if (memchr(out->slot, 0, vn / 2)) /* a NUL would cut the name short */
        return mt_err_set(err, MT_EINVAL, "transfer: invalid slot name");
    if (vn && !mt_job_slot_valid(out->slot))
        return mt_err_set(err, MT_EINVAL, "transfer: invalid slot name");
    return MT_OK;
}

bool mt_rxfer_format(const mt_rxfer *x, char *out, size_t cap)
{
    if (!mt_id_valid(x->task_id) || x->fence < 1 || x->fence > (uint64_t)MT_RLEASE_FENCE_MAX ||
        !mt_rlease_secret_valid(x->secret) || (x->slot[0] && !mt_job_slot_valid(x->slot)))
        return false;
    int n = snprintf(out, cap, "task=%s&fence=%llu&secret=%s&slot=", x->task_id,
                     (unsigned long long)x->fence, x->secret);
    if (n < 0 || (size_t)n >= cap)
        return false;
    size_t len = strlen(x->slot);
    if ((size_t)n + 2 * len + 1 > cap)
        return false;
    mt_hex_encode((const uint8_t *)x->slot, len, out + n);
    return true;
}
