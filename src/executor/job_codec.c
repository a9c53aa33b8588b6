/* job_codec: encoder and bounded decoder of the parent -> worker job. */
#include "job_codec.h"

#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_util.h"

bool mt_job_slot_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > MT_JOB_SLOT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '/' || s[i] == '\\')
            return false;
    return true;
}

/* True for 64 lower-case hex characters (a SHA-256 as the store records it). */
static bool sha256_hex_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Adds {"slot","fd"|"url","key"} plus the optional "<extra_name>": extra
 * (skipped when extra is NULL or empty) to arr. */
static int add_io(json_t *arr, const char *slot, int fd, const char *url, const uint8_t key[32],
                  const char *extra_name, const char *extra)
{
    char hex[65];
    mt_hex_encode(key, 32, hex);
    json_t *o = json_object();
    int bad = !o || json_object_set_new(o, "slot", json_string(slot)) != 0 ||
              json_object_set_new(o, "key", json_string(hex)) != 0;
    if (!bad)
        bad = fd >= 0 ? json_object_set_new(o, "fd", json_integer(fd)) != 0
                      : json_object_set_new(o, "url", json_string(url)) != 0;
    if (!bad && extra && *extra)
        bad = json_object_set_new(o, extra_name, json_string(extra)) != 0;
    mt_wipe(hex, sizeof hex);
    if (bad || json_array_append_new(arr, o) != 0) {
        if (!bad)
            return -1; /* o was stolen */
        json_decref(o);
        return -1;
    }
    return 0;
}

json_t *mt_job_keys_json(const mt_job_key *keys, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        const mt_job_key *k = &keys[i];
        char *hex = malloc(2 * k->der_len + 1);
        json_t *o = NULL;
        if (hex) {
            mt_hex_encode(k->der, k->der_len, hex);
            o = json_pack("{s:s, s:s, s:I, s:s}", "arg", k->arg, "type", k->type, "version",
                          (json_int_t)k->version, "der", hex);
            mt_wipe(hex, 2 * k->der_len);
            free(hex);
        }
        if (!o || json_array_append_new(arr, o) != 0) {
            mt_job_keys_json_wipe(arr);
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

void mt_job_keys_json_wipe(json_t *arr)
{
    json_t *o;
    size_t i;
    json_array_foreach(arr, i, o) {
        json_t *der = json_object_get(o, "der");
        if (json_is_string(der))
            mt_wipe((char *)json_string_value(der), json_string_length(der));
    }
}

void mt_job_keys_free(mt_job_key *keys, size_t n)
{
    for (size_t i = 0; keys && i < n; i++) {
        if (keys[i].der)
            mt_wipe(keys[i].der, keys[i].der_len);
        free(keys[i].der);
        free(keys[i].arg);
        free(keys[i].type);
        free(keys[i].ref);
    }
    free(keys);
}

mt_status mt_job_keys_decode(const json_t *arr, const json_t *arguments, mt_job_key **out,
                             size_t *n, mt_err *err)
{
    static const char *const kk[] = {"arg", "type", "version", "der", NULL};
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > MT_JOB_MAX_KEYS)
        return mt_err_set(err, MT_EINVAL, "job: field 'keys' must be an array of 1 to %d keys",
                          MT_JOB_MAX_KEYS);
    size_t cnt = json_array_size(arr);
    mt_job_key *keys = calloc(cnt, sizeof *keys);
    if (!keys)
        return mt_err_set(err, MT_ENOMEM, "out of memory decoding the job");
    mt_status st = MT_OK;
    for (size_t i = 0; i < cnt && !st; i++) {
        json_t *o = json_array_get(arr, i);
        const char *arg, *type, *hex;
        int64_t ver;
        if (!json_is_object(o)) {
            st = mt_err_set(err, MT_EINVAL, "job: keys[%zu] must be an object", i);
            break;
        }
        if ((st = mt_json_only_keys(o, kk, err)) || (st = mt_json_str(o, "arg", 64, &arg, err)) ||
            (st = mt_json_str(o, "type", 32, &type, err)) ||
            (st = mt_json_int(o, "version", 1, UINT32_MAX, &ver, err)) ||
            (st = mt_json_str(o, "der", 2 * MT_JOB_KEY_MAX_DER, &hex, err)))
            break;
        size_t hl = strlen(hex);
        if (hl == 0 || hl % 2) {
            st = mt_err_set(err, MT_EINVAL, "job: keys[%zu]: 'der' must be hex bytes", i);
            break;
        }
        if (!json_is_string(json_object_get(arguments, arg))) {
            st = mt_err_set(err, MT_EINVAL, "job: keys[%zu]: no argument '%s'", i, arg);
            break;
        }
        for (size_t m = 0; m < i && !st; m++)
            if (!strcmp(keys[m].arg, arg))
                st = mt_err_set(err, MT_EINVAL, "job: keys[%zu]: argument '%s' twice", i, arg);
        if (st)
            break;
        mt_job_key *k = &keys[i];
        k->version = (uint32_t)ver;
        k->der_len = hl / 2;
        if (!(k->arg = strdup(arg)) || !(k->type = strdup(type)) ||
            !(k->der = malloc(k->der_len))) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory decoding the job");
            break;
        }
        if (mt_hex_decode(hex, k->der, k->der_len, NULL) != MT_OK)
            st = mt_err_set(err, MT_EINVAL, "job: keys[%zu]: 'der' must be hex bytes", i);
    }
    if (st) {
        mt_job_keys_free(keys, cnt);
        return st;
    }
    *out = keys;
    *n = cnt;
    return MT_OK;
}

/* Adds {"arg","type","version","der"} of every KeyStore key to root "keys". */
static int add_keys(json_t *root, const mt_job *job)
{
    if (job->n_keys == 0)
        return 0;
    json_t *arr = mt_job_keys_json(job->keys, job->n_keys);
    if (!arr)
        return -1;
    return json_object_set_new(root, "keys", arr) != 0 ? -1 : 0;
}

/* Wipes the hex key strings of root's "keys" array (encoder and decoder). */
static void wipe_keys(json_t *root)
{
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(root, "keys"), i, o) {
        json_t *der = json_object_get(o, "der");
        if (json_is_string(der))
            mt_wipe((char *)json_string_value(der), json_string_length(der));
    }
}

char *mt_wjob_encode(const mt_job *job, const int *in_fds, const int *out_fds, int module_fd,
                     mt_err *err)
{
    json_t *root = json_object(), *ins = json_array(), *outs = json_array(),
           *lim = json_object();
    char *s = NULL;
    if (!root || !ins || !outs || !lim) {
        json_decref(ins);
        json_decref(outs);
        json_decref(lim);
        goto oom;
    }
    json_object_set_new(root, "inputs", ins);
    json_object_set_new(root, "outputs", outs);
    json_object_set_new(root, "limits", lim);
    json_object_set_new(root, "v", json_integer(1));
    json_object_set_new(root, "task_id", json_string(job->task_id ? job->task_id : ""));
    json_object_set_new(root, "function", json_string(job->function ? job->function : ""));
    if (job->arguments)
        json_object_set(root, "arguments", job->arguments);
    else
        json_object_set_new(root, "arguments", json_object());
    for (size_t i = 0; i < job->n_inputs; i++)
        if (add_io(ins, job->inputs[i].slot, in_fds[i], job->inputs[i].url,
                   job->inputs[i].key, "sha256", job->inputs[i].sha256) != 0)
            goto oom;
    for (size_t i = 0; i < job->n_outputs; i++)
        if (add_io(outs, job->outputs[i].slot, out_fds[i], NULL, job->outputs[i].key,
                   "file_id", job->outputs[i].file_id) != 0)
            goto oom;
    if (job->fetch_allow)
        json_object_set_new(root, "fetch_allow", json_string(job->fetch_allow));
    if (job->executor_type && !strcmp(job->executor_type, "python"))
        json_object_set_new(root, "executor_type", json_string("python"));
    if (add_keys(root, job) != 0)
        goto oom;
    json_object_set_new(lim, "mem_bytes", json_integer((json_int_t)job->limits.mem_bytes));
    json_object_set_new(lim, "cpu_seconds", json_integer(job->limits.cpu_seconds));
    json_object_set_new(lim, "max_input_bytes",
                        json_integer((json_int_t)job->limits.max_input_bytes));
    if (job->module) {
        json_t *mods = json_array();
        if (!mods || json_object_set_new(root, "module", mods) != 0 ||
            add_io(mods, "(module)", module_fd, NULL, job->module->key, "plain_sha256",
                   job->module->plain_sha256) != 0)
            goto oom;
        /* the decoder wants {"fd","key"}: unwrap the one-element array */
        json_t *mo = json_incref(json_array_get(mods, 0));
        json_object_del(mo, "slot");
        json_object_set_new(root, "module", mo);
    }
    s = json_dumps(root, JSON_COMPACT);
    if (!s)
        goto oom;
    /* Wipe key strings held by jansson before releasing them. */
    for (size_t k = 0; k < 2; k++) {
        json_t *arr = k ? outs : ins, *o;
        size_t i;
        json_array_foreach(arr, i, o) {
            json_t *key = json_object_get(o, "key");
            if (json_is_string(key))
                mt_wipe((char *)json_string_value(key), json_string_length(key));
        }
    }
    json_t *mkey = json_object_get(json_object_get(root, "module"), "key");
    if (json_is_string(mkey))
        mt_wipe((char *)json_string_value(mkey), json_string_length(mkey));
    wipe_keys(root);
    json_decref(root);
    return s;
oom:
    wipe_keys(root);
    json_decref(root);
    mt_err_set(err, MT_ENOMEM, "out of memory encoding the job");
    return NULL;
}

char *mt_wjob_encode_wasm_check(int module_fd, uint64_t mem_bytes, uint32_t cpu_seconds,
                                mt_err *err)
{
    return mt_wjob_encode_check("wasm_check", module_fd, mem_bytes, cpu_seconds, err);
}

char *mt_wjob_encode_check(const char *kind, int module_fd, uint64_t mem_bytes,
                           uint32_t cpu_seconds, mt_err *err)
{
    json_t *root = json_pack("{s:i,s:s,s:s,s:s,s:{},s:[],s:[],s:{s:I,s:I,s:I},s:{s:i}}", "v", 1,
                             "kind", kind, "task_id", "", "function", "", "arguments",
                             "inputs", "outputs", "limits", "mem_bytes", (json_int_t)mem_bytes,
                             "cpu_seconds", (json_int_t)cpu_seconds, "max_input_bytes",
                             (json_int_t)0, "module", "fd", module_fd);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!s)
        mt_err_set(err, MT_ENOMEM, "out of memory encoding the job");
    return s;
}

/* kind: 0 input, 1 output, 2 module. */
static mt_status decode_io(json_t *arr, int kind, mt_wjob_io *out, size_t n, int *fds_seen,
                           mt_err *err)
{
    static const char *const keys_in[] = {"slot", "fd", "url", "key", "sha256", NULL};
    static const char *const keys_out[] = {"slot", "fd", "key", "file_id", NULL};
    static const char *const keys_mod[] = {"slot", "fd", "key", "plain_sha256", NULL};
    bool is_input = kind == 0;
    const char *what = is_input ? "input" : kind == 1 ? "output" : "module";
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        if (!json_is_object(o))
            return mt_err_set(err, MT_EINVAL, "job: %s %zu is not an object", what, i);
        mt_status st =
            mt_json_only_keys(o, is_input ? keys_in : kind == 1 ? keys_out : keys_mod, err);
        if (st != MT_OK)
            return st;
        const char *slot, *key, *url;
        int64_t fd;
        if ((st = mt_json_str(o, "slot", MT_JOB_SLOT_MAX, &slot, err)) != MT_OK)
            return st;
        if (!mt_job_slot_valid(slot))
            return mt_err_set(err, MT_EINVAL, "job: %s %zu: invalid slot name", what, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out[j].slot, slot) == 0)
                return mt_err_set(err, MT_EINVAL, "job: %s slot '%s' appears twice", what, slot);
        if ((st = mt_json_str_opt(o, "url", 4096, &url, NULL, err)) != MT_OK)
            return st;
        if ((st = mt_json_int_opt(o, "fd", MT_JOB_FIRST_FD + 1, MT_JOB_MAX_FD, &fd, -1, err)) !=
            MT_OK)
            return st;
        if (is_input ? (fd < 0) == (url == NULL) : (fd < 0 || url))
            return mt_err_set(err, MT_EINVAL, "job: %s '%s' needs exactly one of fd%s", what,
                              slot, is_input ? " or url" : "");
        if (url && strncmp(url, "https://", 8) != 0)
            return mt_err_set(err, MT_EINVAL, "job: input '%s': only https:// URLs go to the "
                                              "worker", slot);
        if (fd >= 0) {
            if (fds_seen[fd])
                return mt_err_set(err, MT_EINVAL, "job: fd %d is used twice", (int)fd);
            fds_seen[fd] = 1;
        }
        if ((st = mt_json_str(o, "key", 64, &key, err)) != MT_OK)
            return st;
        if (mt_hex_decode(key, out[i].key, 32, NULL) != MT_OK)
            return mt_err_set(err, MT_EINVAL, "job: %s '%s': key must be 64 hex characters",
                              what, slot);
        const char *sha = NULL, *psha = NULL, *fid = NULL;
        if ((st = mt_json_str_opt(o, "sha256", 64, &sha, NULL, err)) != MT_OK ||
            (st = mt_json_str_opt(o, "plain_sha256", 64, &psha, NULL, err)) != MT_OK ||
            (st = mt_json_str_opt(o, "file_id", 32, &fid, NULL, err)) != MT_OK)
            return st;
        if ((sha && !sha256_hex_valid(sha)) || (psha && !sha256_hex_valid(psha)))
            return mt_err_set(err, MT_EINVAL,
                              "job: %s '%s': a sha256 must be 64 lower-case hex characters",
                              what, slot);
        if (fid && !mt_id_valid(fid))
            return mt_err_set(err, MT_EINVAL, "job: output '%s': file_id is not an id", slot);
        out[i].slot = slot;
        out[i].fd = (int)fd;
        out[i].url = url;
        out[i].sha256 = sha;
        out[i].plain_sha256 = psha;
        out[i].file_id = fid;
    }
    return MT_OK;
}

/* The optional "keys" array: at most MT_JOB_MAX_KEYS entries {"arg" (a
 * present argument's name), "type", "version" (>= 1), "der" (even-length
 * hex of at most MT_JOB_KEY_MAX_DER bytes)}, each arg once. */
static mt_status decode_keys(mt_wjob *j, mt_err *err)
{
    static const char *const kk[] = {"arg", "type", "version", "der", NULL};
    json_t *arr = json_object_get(j->root, "keys");
    if (!arr)
        return MT_OK;
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > MT_JOB_MAX_KEYS)
        return mt_err_set(err, MT_EINVAL, "job: field 'keys' must be an array of 1 to %d keys",
                          MT_JOB_MAX_KEYS);
    size_t n = json_array_size(arr);
    if (!(j->keys = calloc(n, sizeof *j->keys)))
        return mt_err_set(err, MT_ENOMEM, "out of memory decoding the job");
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        mt_wjob_key *k = &j->keys[i];
        const char *hex;
        int64_t ver;
        mt_status st;
        if (!json_is_object(o))
            return mt_err_set(err, MT_EINVAL, "job: keys[%zu] must be an object", i);
        if ((st = mt_json_only_keys(o, kk, err)) != MT_OK ||
            (st = mt_json_str(o, "arg", 64, &k->arg, err)) != MT_OK ||
            (st = mt_json_str(o, "type", 32, &k->type, err)) != MT_OK ||
            (st = mt_json_int(o, "version", 1, UINT32_MAX, &ver, err)) != MT_OK ||
            (st = mt_json_str(o, "der", 2 * MT_JOB_KEY_MAX_DER, &hex, err)) != MT_OK)
            return st;
        size_t hl = strlen(hex);
        if (hl == 0 || hl % 2)
            return mt_err_set(err, MT_EINVAL, "job: keys[%zu]: 'der' must be hex bytes", i);
        if (!j->arguments || !json_is_string(json_object_get(j->arguments, k->arg)))
            return mt_err_set(err, MT_EINVAL, "job: keys[%zu]: no argument '%s'", i, k->arg);
        for (size_t m = 0; m < i; m++)
            if (!strcmp(j->keys[m].arg, k->arg))
                return mt_err_set(err, MT_EINVAL, "job: keys[%zu]: argument '%s' twice", i,
                                  k->arg);
        k->version = (uint32_t)ver;
        k->der_len = hl / 2;
        if (!(k->der = malloc(k->der_len)))
            return mt_err_set(err, MT_ENOMEM, "out of memory decoding the job");
        j->n_keys = i + 1;
        if ((st = mt_hex_decode(hex, k->der, k->der_len, err)) != MT_OK)
            return mt_err_set(err, MT_EINVAL, "job: keys[%zu]: 'der' must be hex bytes", i);
    }
    return MT_OK;
}

mt_status mt_wjob_decode(const char *buf, size_t len, mt_wjob *out, mt_err *err)
{
    static const char *const top[] = {"v",       "task_id", "function", "arguments", "inputs",
                                      "outputs", "limits",  "module",   "kind",      "fetch_allow",
                                      "keys",    "executor_type", NULL};
    static const char *const check_mod[] = {"fd", NULL};
    static const char *const lkeys[] = {"mem_bytes", "cpu_seconds", "max_input_bytes", NULL};
    memset(out, 0, sizeof *out);
    mt_wjob j = {0};
    int *fds_seen = NULL;
    j.root = mt_json_parse(buf, len, MT_JOB_MAX, 8, err);
    if (!j.root)
        return err ? err->code : MT_EINVAL;
    mt_status st;
    json_t *ins, *outs, *args = NULL, *lim;
    int64_t v, mem, cpu, maxin;
    const char *kind = NULL;
    if (!json_is_object(j.root)) {
        st = mt_err_set(err, MT_EINVAL, "job: expected a JSON object");
        goto fail;
    }
    if ((st = mt_json_only_keys(j.root, top, err)) != MT_OK ||
        (st = mt_json_int(j.root, "v", 1, 1, &v, err)) != MT_OK ||
        (st = mt_json_str(j.root, "task_id", 64, &j.task_id, err)) != MT_OK ||
        (st = mt_json_str(j.root, "function", 64, &j.function, err)) != MT_OK ||
        (st = mt_json_object_opt(j.root, "arguments", 64, &args, err)) != MT_OK ||
        (st = mt_json_str_opt(j.root, "fetch_allow", 4096, &j.fetch_allow, NULL, err)) !=
            MT_OK ||
        (st = mt_json_array(j.root, "inputs", MT_JOB_MAX_SLOTS, &ins, err)) != MT_OK ||
        (st = mt_json_array(j.root, "outputs", MT_JOB_MAX_SLOTS, &outs, err)) != MT_OK ||
        (st = mt_json_str_opt(j.root, "kind", 16, &kind, NULL, err)) != MT_OK)
        goto fail;
    if (kind && strcmp(kind, "run") != 0 && strcmp(kind, "wasm_check") != 0 &&
        strcmp(kind, "python_check") != 0) {
        st = mt_err_set(err, MT_EINVAL, "job: unknown kind");
        goto fail;
    }
    const char *etype = NULL;
    if ((st = mt_json_str_opt(j.root, "executor_type", 16, &etype, NULL, err)) != MT_OK)
        goto fail;
    if (etype && strcmp(etype, "python") != 0) {
        st = mt_err_set(err, MT_EINVAL, "job: field 'executor_type' may only be \"python\"");
        goto fail;
    }
    j.python = (etype != NULL) || (kind && !strcmp(kind, "python_check"));
    j.wasm_check = kind && (!strcmp(kind, "wasm_check") || !strcmp(kind, "python_check"));
    if (j.wasm_check) {
        /* the plaintext module on one fd; nothing else */
        json_t *mod = json_object_get(j.root, "module");
        int64_t fd;
        if (json_array_size(ins) || json_array_size(outs) || !json_is_object(mod)) {
            st = mt_err_set(err, MT_EINVAL, "job: a wasm_check job has a module and no slots");
            goto fail;
        }
        if ((st = mt_json_only_keys(mod, check_mod, err)) != MT_OK ||
            (st = mt_json_int(mod, "fd", MT_JOB_FIRST_FD + 1, MT_JOB_MAX_FD, &fd, err)) != MT_OK)
            goto fail;
        j.module.fd = (int)fd;
        j.module.slot = "(module)";
    }
    lim = json_object_get(j.root, "limits");
    if (!json_is_object(lim)) {
        st = mt_err_set(err, MT_EINVAL, "job: field 'limits' must be an object");
        goto fail;
    }
    if ((st = mt_json_only_keys(lim, lkeys, err)) != MT_OK ||
        (st = mt_json_int(lim, "mem_bytes", 0, INT64_MAX, &mem, err)) != MT_OK ||
        (st = mt_json_int(lim, "cpu_seconds", 0, UINT32_MAX, &cpu, err)) != MT_OK ||
        (st = mt_json_int(lim, "max_input_bytes", 0, INT64_MAX, &maxin, err)) != MT_OK)
        goto fail;
    if (args) {
        const char *k;
        json_t *val;
        json_object_foreach(args, k, val) {
            if (!json_is_string(val) || json_string_length(val) > 64 * 1024 ||
                strlen(json_string_value(val)) != json_string_length(val)) {
                st = mt_err_set(err, MT_EINVAL,
                                "job: argument '%.64s' must be a string of at most 64 KiB", k);
                goto fail;
            }
        }
    }
    j.arguments = args;
    j.mem_bytes = (uint64_t)mem;
    j.cpu_seconds = (uint32_t)cpu;
    j.max_input_bytes = (uint64_t)maxin;
    j.n_inputs = json_array_size(ins);
    j.n_outputs = json_array_size(outs);
    j.inputs = calloc(j.n_inputs + 1, sizeof *j.inputs);
    j.outputs = calloc(j.n_outputs + 1, sizeof *j.outputs);
    fds_seen = calloc(MT_JOB_MAX_FD + 1, sizeof *fds_seen);
    if (!j.inputs || !j.outputs || !fds_seen) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory decoding the job");
        goto fail;
    }
    if ((st = decode_io(ins, 0, j.inputs, j.n_inputs, fds_seen, err)) != MT_OK ||
        (st = decode_io(outs, 1, j.outputs, j.n_outputs, fds_seen, err)) != MT_OK)
        goto fail;
    json_t *mod = j.wasm_check ? NULL : json_object_get(j.root, "module");
    if (mod) {
        /* same shape as an output (fd + key), under the fixed slot "(module)" */
        json_t *one = json_array(), *copy = json_is_object(mod) ? json_copy(mod) : NULL;
        if (copy)
            json_object_set_new(copy, "slot", json_string("(module)"));
        st = !one || (json_is_object(mod) && !copy) ? mt_err_set(err, MT_ENOMEM, "out of memory")
             : !copy ? mt_err_set(err, MT_EINVAL, "job: field 'module' must be an object")
             : json_array_append_new(one, copy) != 0
                 ? mt_err_set(err, MT_ENOMEM, "out of memory")
                 : decode_io(one, 2, &j.module, 1, fds_seen, err);
        if (st == MT_OK) /* point into the job's own tree, which outlives `one` */
            j.module.slot = "(module)";
        json_decref(one);
        if (st != MT_OK)
            goto fail;
        j.has_module = true;
    }
    if (j.python && !j.has_module && !j.wasm_check) {
        st = mt_err_set(err, MT_EINVAL, "job: a python job needs its module");
        goto fail;
    }
    if ((st = decode_keys(&j, err)) != MT_OK)
        goto fail;
    free(fds_seen);
    *out = j;
    return MT_OK;
fail:
    free(fds_seen);
    mt_wjob_free(&j);
    return st;
}

void mt_wjob_wipe_keys(mt_wjob *j)
{
    if (!j)
        return;
    for (size_t i = 0; j->inputs && i < j->n_inputs; i++)
        mt_wipe(j->inputs[i].key, sizeof j->inputs[i].key);
    for (size_t i = 0; j->outputs && i < j->n_outputs; i++)
        mt_wipe(j->outputs[i].key, sizeof j->outputs[i].key);
    mt_wipe(j->module.key, sizeof j->module.key);
    for (size_t i = 0; j->keys && i < j->n_keys; i++)
        if (j->keys[i].der)
            mt_wipe(j->keys[i].der, j->keys[i].der_len);
    if (j->root) {
        wipe_keys(j->root);
        json_t *mkey = json_object_get(json_object_get(j->root, "module"), "key");
        if (json_is_string(mkey))
            mt_wipe((char *)json_string_value(mkey), json_string_length(mkey));
        /* the hex keys inside the JSON tree */
        for (int k = 0; k < 2; k++) {
            json_t *arr = json_object_get(j->root, k ? "outputs" : "inputs"), *o;
            size_t i;
            json_array_foreach(arr, i, o) {
                json_t *key = json_object_get(o, "key");
                if (json_is_string(key))
                    mt_wipe((char *)json_string_value(key), json_string_length(key));
            }
        }
    }
}

void mt_wjob_free(mt_wjob *j)
{
    if (!j)
        return;
    mt_wjob_wipe_keys(j);
    if (j->inputs)
        mt_wipe(j->inputs, j->n_inputs * sizeof *j->inputs);
    if (j->outputs)
        mt_wipe(j->outputs, j->n_outputs * sizeof *j->outputs);
    free(j->inputs);
    free(j->outputs);
    mt_wipe(&j->module, sizeof j->module);
    for (size_t i = 0; j->keys && i < j->n_keys; i++)
        free(j->keys[i].der);
    free(j->keys);
    json_decref(j->root);
    memset(j, 0, sizeof *j);
}
