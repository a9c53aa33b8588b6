/* files: uploads (POST /v1/objects), input / output / fusion file
 * registration, as-input chaining, metadata, ciphertext download and
 * deletion. File keys are stored only wrapped under the sealing key
 * "file-keys/v1" with AAD = file_id. Files are visible to their owners
 * only; everyone else gets 404 so existence is not revealed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_decode.h"
#include "core_internal.h"
#include "mt_ff.h"
#include "mt_log.h"

#define OBJECT_URL "mesatee://objects/"

/* ---- rows -------------------------------------------------------------- */

mt_status core_file_load(mt_core *c, mt_db *mdb, const char *file_id, core_file *out, mt_err *err)
{
    /* the row comes from untrusted storage: its MAC, and the values from
     * the very read the MAC was checked on (integ_file_load) */
    return integ_file_load(c, mdb, file_id, out, NULL, NULL, err);
}

json_t *core_file_owners(mt_db *mdb, const char *file_id, mt_err *err)
{
    mt_db_stmt *st;
    if (core_stmt_get(NULL, mdb,
                      "SELECT username FROM file_owners WHERE file_id = ? ORDER BY username", &st,
                      err))
        return NULL;
    mt_db_bind_text(st, 1, file_id);
    json_t *arr = json_array();
    mt_status rc = MT_OK;
    while (mt_db_step(st, &rc, err) == MT_DB_ROW)
        json_array_append_new(arr, json_string(mt_db_col_text(st, 0)));
    if (rc) {
        json_decref(arr);
        arr = NULL;
    }
    core_stmt_put(NULL, st);
    return arr;
}

mt_status core_file_is_owner(mt_core *c, mt_db *mdb, const char *file_id, const char *user,
                             bool *yes, mt_err *err)
{
    /* the owners the file's MAC covers, from the read it was checked on */
    *yes = false;
    json_t *owners = NULL;
    mt_status rc = integ_file_load(c, mdb, file_id, NULL, &owners, NULL, err);
    if (rc == MT_ENOTFOUND) {
        mt_err_clear(err);
        return MT_OK;
    }
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(owners, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), user))
        *yes = true;
    json_decref(owners);
    return MT_OK;
}

/* Loads a file the caller owns; MT_ENOTFOUND otherwise (existence hidden). */
static mt_status load_owned(core_ctx *x, const char *file_id, core_file *f)
{
    bool owner;
    mt_status rc = core_file_is_owner(x->core, x->db, file_id, x->who, &owner, x->err);
    if (rc)
        return rc;
    if (!owner)
        return mt_err_set(x->err, MT_ENOTFOUND, "no file %s among your files", file_id);
    return core_file_load(x->core, x->db, file_id, f, x->err);
}

static json_t *file_meta(core_ctx *x, const core_file *f)
{
    json_t *owners = core_file_owners(x->db, f->file_id, x->err);
    if (!owners)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:b, s:o}", "file_id", f->file_id, "kind",
                     f->kind, "name", f->name, "owners", owners, "url", f->url, "size",
                     f->has_size ? json_integer(f->size) : json_null(), "sha256",
                     f->sha256[0] ? json_string(f->sha256) : json_null(), "written", f->written,
                     "created_at", core_time_json(f->created_at));
}

/* Inserts a files row plus one owner row per user. */
static mt_status insert_file(core_ctx *x, const char *file_id, const char *kind, const char *name,
                             const char *url, const char *object_id, const int64_t *size,
                             const char *sha256, const uint8_t key[32], bool written,
                             const char *const *owners, size_t n_owners)
{
    uint8_t wrapped[61];
    uint32_t kek_v = 0;
    mt_status rc = core_wrap_key(x->core, file_id, key, wrapped, &kek_v, x->err);
    if (rc)
        return rc;
    /* the MAC over the values bound below, written with them (no read back) */
    int64_t now = mt_now();
    char szb[24], nowb[24], mac[65];
    snprintf(szb, sizeof szb, "%lld", size ? (long long)*size : 0LL);
    snprintf(nowb, sizeof nowb, "%lld", (long long)now);
    const char *fields[9] = {file_id,
                             kind,
                             name ? name : "",
                             url,
                             object_id && *object_id ? object_id : NULL,
                             size ? szb : NULL,
                             sha256 && *sha256 ? sha256 : NULL,
                             written ? "1" : "0",
                             nowb};
    if ((rc = integ_file_mac_values(x->core, fields, wrapped, sizeof wrapped, owners, n_owners,
                                    mac, x->err)))
        return rc;
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(x->db,
                            "INSERT INTO files(file_id, kind, name, url, object_id, size, "
                            "sha256, wrapped_key, written, created_at, kek_version, mac) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            &st, x->err)))
        return rc;
    mt_db_bind_text(st, 1, file_id);
    mt_db_bind_text(st, 2, kind);
    mt_db_bind_text(st, 3, name ? name : "");
    mt_db_bind_text(st, 4, url);
    mt_db_bind_text(st, 5, object_id && *object_id ? object_id : NULL);
    if (size)
        mt_db_bind_int64(st, 6, *size);
    else
        mt_db_bind_null(st, 6);
    mt_db_bind_text(st, 7, sha256 && *sha256 ? sha256 : NULL);
    mt_db_bind_blob(st, 8, wrapped, (size_t)(sizeof wrapped));
    mt_db_bind_int64(st, 9, written ? 1 : 0);
    mt_db_bind_int64(st, 10, now);
    mt_db_bind_int64(st, 11, (int64_t)kek_v);
    mt_db_bind_text(st, 12, mac);
    mt_db_step(st, &rc, x->err);
    mt_db_finalize(st);
    for (size_t i = 0; !rc && i < n_owners; i++)
        rc = store_run(x->db, x->err, NULL,
                       "INSERT INTO file_owners(file_id, username) VALUES (?, ?)", file_id,
                       owners[i]);
    return rc;
}

static mt_status created_file(core_ctx *x, const char *file_id)
{
    core_set_object(x, "file", file_id);
    core_json_response(x, 201, json_pack("{s:s}", "file_id", file_id));
    return MT_OK;
}

/* ---- handlers ---------------------------------------------------------- */

/* ---- streamed uploads (mt_core.h) ---- */

struct mt_upload {
    mt_objstore_writer *w;
};

mt_status mt_core_upload_begin(mt_core *core, mt_upload **out, mt_err *err)
{
    *out = NULL;
    mt_upload *u = calloc(1, sizeof *u);
    if (!u)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = untrusted_objstore_writer_new(core->objs, &u->w, err);
    if (rc) {
        free(u);
        return rc;
    }
    *out = u;
    return MT_OK;
}

mt_status mt_core_upload_write(mt_upload *u, const uint8_t *data, size_t len, mt_err *err)
{
    return untrusted_objstore_writer_write(u->w, data, len, err);
}

void mt_core_upload_free(mt_upload *u)
{
    if (!u)
        return;
    untrusted_objstore_writer_free(u->w);
    free(u);
}

static mt_status upload_row(core_ctx *x, const char *id, size_t n, const char *sha);

mt_status files_upload(core_ctx *x)
{
    const uint8_t *b = x->req->body;
    size_t n = x->req->body_len;
    uint8_t head[MT_FF_HEADER_LEN];
    mt_upload *up = x->req->upload;
    if (up) {
        if (untrusted_objstore_writer_size(up->w) != n)
            return mt_err_set(x->err, MT_EINTERNAL, "streamed upload size mismatch");
        b = head;
        if (untrusted_objstore_writer_prefix(up->w, head, sizeof head) < sizeof head)
            n = 0;
    }
    mt_ff_header h;
    mt_err herr;
    if (n < MT_FF_HEADER_LEN || mt_ff_header_parse(b, MT_FF_HEADER_LEN, &h, &herr) != MT_OK)
        return mt_err_set(x->err, MT_EINVAL,
                          "the body is not a mesatee encrypted file (mt_ff header missing or "
                          "invalid); encrypt it with 'mesatee encrypt' first");
    mt_id id;
    mt_id_new(&id);
    char sha[65];
    /* A slow route: the object's fsync (up to 1 GiB of dirty pages) runs on a
     * worker thread outside the store lock; the row and its audit entry are
     * one transaction under it. */
    mt_status rc = up ? untrusted_objects_commit_upload(x->core, up->w, id.s, sha, x->err)
                      : untrusted_objects_put(x->core, id.s, b, n, sha, x->err);
    if (rc)
        return rc;
    bool stood = false; /* the row committed although the commit failed (its sync) */
    /* the audit spool's gate before core->mu: a replay it may run or wait
     * for never holds up the routes that need core->mu */
    rc = core_request_gate(x);
    pthread_mutex_lock(&x->core->mu);
    if (rc == MT_OK && (rc = core_request_begin_gated(x)) == MT_OK) {
        rc = upload_row(x, id.s, n, sha);
        rc = core_audit_commit(x, 201, rc);
        stood = rc && mt_db_outcome_unknown(x->db);
    }
    pthread_mutex_unlock(&x->core->mu);
    if (rc) {
        if (!stood) /* else its row may be durable: the object stays behind it */
            untrusted_objects_delete(x->core, id.s, NULL);
        return rc;
    }
    char url[64];
    snprintf(url, sizeof url, OBJECT_URL "%s", id.s);
    core_json_response(
        x, 201, json_pack("{s:s, s:I, s:s}", "url", url, "size", (json_int_t)n, "sha256", sha));
    return MT_OK;
}

/* The row of an uploaded object (store lock held, transaction open). */
static mt_status upload_row(core_ctx *x, const char *id, size_t n, const char *sha)
{
    mt_status rc;
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(x->db,
                            "INSERT INTO objects(id, uploader, size, sha256, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            &st, x->err)))
        return rc;
    mt_db_bind_text(st, 1, id);
    mt_db_bind_text(st, 2, x->who);
    mt_db_bind_int64(st, 3, (int64_t)n);
    mt_db_bind_text(st, 4, sha);
    mt_db_bind_int64(st, 5, mt_now());
    mt_db_step(st, &rc, x->err);
    mt_db_finalize(st);
    if (!rc)
        core_set_object(x, "object", id);
    return rc;
}

/* Reads the mt_ff header of a stored object. */
static mt_status object_header(core_ctx *x, const char *object_id, mt_ff_header *h)
{
    uint8_t buf[MT_FF_HEADER_LEN];
    size_t got = 0;
    mt_err e;
    if (untrusted_objects_head(x->core, object_id, buf, sizeof buf, &got, &e))
        return mt_err_set(x->err, MT_EIO, "object %s is missing from the object store", object_id);
    if (got != sizeof buf)
        return mt_err_set(x->err, MT_EINVAL, "object %s is too short to be a mesatee file",
                          object_id);
    return mt_ff_header_parse(buf, sizeof buf, h, x->err);
}

mt_status files_input_new(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_input_new d;
    mt_status rc = dec_input_new_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    int64_t size = 0;
    bool has_size = false;
    char sha[65] = "";
    if (d.url_kind == DEC_URL_OBJECT) {
        mt_db_stmt *st;
        if ((rc = mt_db_prepare(x->db, "SELECT uploader, size, sha256 FROM objects WHERE id = ?",
                                &st, x->err)))
            goto out;
        mt_db_bind_text(st, 1, d.object_id);
        int s = mt_db_step(st, &rc, x->err);
        bool mine = false;
        if (s == MT_DB_ROW) {
            mine = !strcmp(mt_db_col_text(st, 0), x->who);
            size = mt_db_col_int64(st, 1);
            snprintf(sha, sizeof sha, "%s", mt_db_col_text(st, 2));
            has_size = true;
        }
        mt_db_finalize(st);
        if (rc)
            goto out;
        if (!mine) {
            rc = mt_err_set(x->err, MT_ENOTFOUND,
                            "no uploaded object %s of yours; upload it with POST /v1/objects",
                            d.object_id);
            goto out;
        }
        mt_ff_header h;
        if ((rc = object_header(x, d.object_id, &h)))
            goto out;
        uint8_t kid[MT_FF_KEY_ID_LEN];
        mt_ff_key_id(d.key, kid);
        if (!mt_ct_equal(kid, h.key_id, sizeof kid)) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "key does not match the uploaded file (key id mismatch)");
            goto out;
        }
        if (d.has_sha256 && strcmp(d.sha256, sha)) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "sha256 does not match the uploaded object (stored %s)", sha);
            goto out;
        }
    } else if (d.url_kind == DEC_URL_FILE) {
        const char *root = x->core->file_url_root;
        if (!root) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "file:// inputs are disabled on this server (no file URL root is "
                            "configured); upload with POST /v1/objects instead");
            goto out;
        }
        size_t rl = strlen(root);
        while (rl > 1 && root[rl - 1] == '/')
            rl--;
        const char *path = d.url + 7;
        if (strncmp(path, root, rl) || path[rl] != '/') {
            rc = mt_err_set(x->err, MT_EINVAL, "file:// URL is outside the allowed root");
            goto out;
        }
    }
    if (d.url_kind != DEC_URL_OBJECT) {
        /* The worker checks every input's ciphertext against the SHA-256
         * recorded here; for a URL the owner must say which content is meant
         * (the host serving the URL is not trusted to). */
        if (!d.has_sha256) {
            rc = mt_err_set(x->err, MT_EINVAL,
                            "field 'sha256' is required for %s inputs: give the SHA-256 of the "
                            "encrypted file at the URL (e.g. `sha256sum FILE.enc`, or "
                            "`mesatee file register URL --sha256 HEX`); the task fails if the "
                            "content differs",
                            d.url_kind == DEC_URL_FILE ? "file://" : "https://");
            goto out;
        }
        snprintf(sha, sizeof sha, "%s", d.sha256);
    }

    mt_id fid;
    mt_id_new(&fid);
    const char *owners[1] = {x->who};
    if ((rc = insert_file(x, fid.s, "input", d.name, d.url,
                          d.url_kind == DEC_URL_OBJECT ? d.object_id : NULL,
                          has_size ? &size : NULL, sha, d.key, true, owners, 1)))
        goto out;
    rc = created_file(x, fid.s);
out:
    dec_input_new_free(&d);
    return rc;
}

mt_status files_output_new(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_output_new d;
    mt_status rc = dec_output_new_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    mt_id fid;
    mt_id_new(&fid);
    char url[64];
    snprintf(url, sizeof url, OBJECT_URL "%s", fid.s);
    const char *owners[1] = {x->who};
    /* One key per output: a keyed fingerprint (the key itself is stored only
     * wrapped) finds an earlier output registered with the same key. */
    char fp[65];
    core_key_fingerprint(x->core, d.key, fp);
    if (!d.allow_key_reuse) {
        int64_t one;
        bool used = false;
        if ((rc = store_int(x->db, x->err, &one, &used,
                            "SELECT 1 FROM files WHERE key_fp = ? LIMIT 1", fp)))
            goto out;
        if (used) {
            rc = mt_err_set(x->err, MT_ECONFLICT,
                            "this key is already the key of another output: use a fresh key "
                            "for every output (`mesatee keygen`), or set allow_key_reuse "
                            "(`--allow-key-reuse`) if you mean to");
            goto out;
        }
    }
    if (!(rc = insert_file(x, fid.s, "output", d.name, url, fid.s, NULL, NULL, d.key, false, owners,
                           1)) &&
        !(rc = store_run(x->db, x->err, NULL, "UPDATE files SET key_fp = ? WHERE file_id = ?", fp,
                         fid.s)))
        rc = created_file(x, fid.s);
out:
    dec_output_new_free(&d);
    return rc;
}

mt_status files_fusion_new(core_ctx *x)
{
    dec_limits lim = {x->core->max_json_bytes, x->core->max_json_depth};
    dec_fusion_new d;
    mt_status rc = dec_fusion_new_parse(x->req->body, x->req->body_len, &lim, &d, x->err);
    if (rc)
        return rc;
    bool me = false;
    for (size_t i = 0; i < d.n_owners; i++) {
        if (!strcmp(d.owners[i], x->who))
            me = true;
        bool exists;
        if ((rc = core_user_exists(x->db, d.owners[i], &exists, x->err)))
            goto out;
        if (!exists) {
            rc = mt_err_set(x->err, MT_EINVAL, "field 'owners': no user '%s'", d.owners[i]);
            goto out;
        }
    }
    if (!me) {
        rc = mt_err_set(x->err, MT_EINVAL, "field 'owners' must include you ('%s')", x->who);
        goto out;
    }
    uint8_t key[32];
    if ((rc = mt_random(key, sizeof key, x->err)))
        goto out;
    mt_id fid;
    mt_id_new(&fid);
    char url[64];
    snprintf(url, sizeof url, OBJECT_URL "%s", fid.s);
    rc = insert_file(x, fid.s, "fusion", d.name, url, fid.s, NULL, NULL, key, false, d.owners,
                     d.n_owners);
    mt_wipe(key, sizeof key);
    if (!rc)
        rc = created_file(x, fid.s);
out:
    dec_fusion_new_free(&d);
    return rc;
}

mt_status files_as_input(core_ctx *x)
{
    core_file f;
    mt_status rc = load_owned(x, x->id, &f);
    if (rc)
        return rc;
    if (!strcmp(f.kind, "input") || !f.written)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "file %s is not a written output or fusion file; only those can be "
                          "turned into inputs",
                          f.file_id);
    uint8_t key[32];
    if ((rc = core_unwrap_key(x->core, f.file_id, f.wrapped_key, f.wrapped_len, key, x->err)))
        return rc;
    json_t *owners = core_file_owners(x->db, f.file_id, x->err);
    if (!owners) {
        mt_wipe(key, sizeof key);
        return x->err->code ? x->err->code : MT_EIO;
    }
    const char *ov[DEC_MAX_OWNERS];
    size_t no = 0;
    size_t i;
    json_t *v;
    json_array_foreach(owners, i, v) if (no < DEC_MAX_OWNERS) ov[no++] = json_string_value(v);
    mt_id fid;
    mt_id_new(&fid);
    rc = insert_file(x, fid.s, "input", f.name, f.url, f.object_id, f.has_size ? &f.size : NULL,
                     f.sha256, key, true, ov, no);
    mt_wipe(key, sizeof key);
    json_decref(owners);
    if (!rc)
        rc = created_file(x, fid.s);
    return rc;
}

/* Metadata of one file by id (rows come from the caller's own files). */
static json_t *file_meta_by_id(core_ctx *x, const char *file_id)
{
    core_file f;
    if (core_file_load(x->core, x->db, file_id, &f, x->err))
        return NULL;
    return file_meta(x, &f);
}

mt_status files_list(core_ctx *x)
{
    dec_page pg;
    mt_status rc = dec_page_query_parse(x->req->query, PAGE_FILES, &pg, x->err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    rc = mt_db_prepare(x->db,
                       "SELECT f.file_id, f.created_at FROM files f JOIN file_owners o "
                       "ON o.file_id = f.file_id WHERE o.username = ?1 AND (?2 = 0 OR "
                       "f.created_at > ?3 OR (f.created_at = ?3 AND f.file_id > ?4)) "
                       "ORDER BY f.created_at, f.file_id LIMIT ?5",
                       &st, x->err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, x->who);
    core_page_bind(st, 2, &pg);
    return core_list_response(x, st, "files", file_meta_by_id, PAGE_FILES, &pg);
}

mt_status files_get(core_ctx *x)
{
    core_file f;
    core_set_object(x, "file", x->id);
    mt_status rc = load_owned(x, x->id, &f);
    if (rc)
        return rc;
    json_t *m = file_meta(x, &f);
    if (!m)
        return x->err->code ? x->err->code : MT_ENOMEM;
    core_json_response(x, 200, m);
    return MT_OK;
}

/* A slow route (mt_core_route_is_slow): the row is read and checked under
 * the store lock; the object is hashed outside it, from the descriptor that
 * the gateway then streams (never whole in memory), so the bytes served are
 * the bytes hashed. */
mt_status files_content(core_ctx *x)
{
    core_file f;
    core_set_object(x, "file", x->id);
    pthread_mutex_lock(&x->core->mu);
    mt_status rc = store_exec(x->db, "BEGIN", x->err);
    if (!rc) {
        rc = load_owned(x, x->id, &f);
        store_rollback(x->db); /* read only */
    }
    pthread_mutex_unlock(&x->core->mu);
    if (rc)
        return rc;
    if (!strcmp(f.kind, "fusion"))
        return mt_err_set(x->err, MT_EPERM,
                          "fusion files are never downloaded; turn it into an input with "
                          "POST /v1/files/%s/as-input",
                          f.file_id);
    if (strcmp(f.kind, "output") || !f.written || !f.object_id[0])
        return mt_err_set(x->err, MT_ECONFLICT,
                          "file %s has no content to download: only written outputs do", f.file_id);
    int fd = -1;
    uint64_t len = 0;
    if ((rc = untrusted_objects_open_read(x->core, f.object_id, &fd, &len, x->err)))
        return rc;
    /* The object directory is the host's: serve only the ciphertext the task
     * wrote (its SHA-256 was recorded when the task finished). Clients also
     * check the output binding in the file itself (docs/formats.md 1.6). */
    char sha[65];
    if ((rc = untrusted_objstore_hash_fd(fd, len, sha, x->err))) {
        close(fd);
        return rc;
    }
    if (f.sha256[0] && !mt_ct_equal(sha, f.sha256, 64)) {
        close(fd);
        mt_error("file %s: its object does not match the SHA-256 recorded when it was written "
                 "(the object directory was modified)",
                 f.file_id);
        return mt_err_set(x->err, MT_EIO,
                          "file %s: the stored ciphertext does not match the SHA-256 recorded "
                          "when it was written (integrity check failed); ask the operator",
                          f.file_id);
    }
    x->resp->has_raw_fd = true;
    x->resp->raw_fd = fd;
    x->resp->raw_fd_len = len;
    snprintf(x->resp->raw_fd_sha256, sizeof x->resp->raw_fd_sha256, "%s", sha);
    x->resp->status = 200;
    return MT_OK;
}

mt_status files_delete(core_ctx *x)
{
    core_file f;
    core_set_object(x, "file", x->id);
    mt_status rc = load_owned(x, x->id, &f);
    if (rc)
        return rc;
    int64_t busy;
    bool found;
    if ((rc = store_int(x->db, x->err, &busy, &found,
                        "SELECT t.task_id FROM task_files tf JOIN tasks t ON t.task_id = "
                        "tf.task_id WHERE tf.file_id = ? AND t.status NOT IN "
                        "('finished','failed','canceled') LIMIT 1",
                        f.file_id)))
        return rc;
    if (found)
        return mt_err_set(x->err, MT_ECONFLICT,
                          "file %s is used by a task that has not finished; cancel or finish "
                          "it first",
                          f.file_id);
    if ((rc = store_run(x->db, x->err, NULL, "DELETE FROM files WHERE file_id = ?", f.file_id)))
        return rc;
    if (f.object_id[0]) {
        int64_t others;
        if ((rc = store_int(x->db, x->err, &others, &found,
                            "SELECT 1 FROM files WHERE object_id = ? LIMIT 1", f.object_id)))
            return rc;
        if (!found) {
            if ((rc = store_run(x->db, x->err, NULL, "DELETE FROM objects WHERE id = ?",
                                f.object_id)))
                return rc;
            snprintf(x->drop_object, sizeof x->drop_object, "%s", f.object_id);
        }
    }
    core_json_response(x, 200, json_pack("{s:b}", "deleted", 1));
    return MT_OK;
}
