/* integrity: MACs over the rows of the untrusted store (store.c).
 *
 * The SQLite file is host-owned: at the hardware levels it lies outside the
 * TEE, and whoever writes it could otherwise flip an approval, swap an
 * input, add an owner or change an argument of a staged task. Every row that
 * decides what runs, on whose data and for whom carries an HMAC-SHA256 under
 * core->integ_key, a key derived inside the TEE provider
 * ("store-integrity/v1", mt_tee_platform_key: like a sealing key but not
 * bound to the binary, so upgrades keep it); the host never sees it.
 *
 *   files.mac          over every column of the file (kind, name, URL,
 *                      object, size, SHA-256 of the ciphertext, written,
 *                      created_at, SHA-256 of the wrapped key = its key id)
 *                      and its sorted owners (file_owners rows)
 *   tasks.decl_mac     over task_id, function_id, creator and the exact
 *                      stored texts of arguments, inputs_ownership,
 *                      outputs_ownership and participants
 *   users.mac          over username, role, password hash, created_at (and the
 *                      state when the account is disabled or deleted)
 *   functions.mac      over the function (owner, visibility, flags, quota,
 *                      declaration, payload) and its allow-list
 *   tokens.mac         over token hash, username, created_at, expires_at,
 *                      revoked (resealed when revoked)
 *   task_participants.approval_mac
 *                      per participant, over task_id, username and the
 *                      task's binding hash (below), written when that
 *                      participant approves through an authenticated request
 *
 * The binding hash is SHA-256 over the task declaration, the function's
 * executor type, built-in name, wasm payload object, payload SHA-256 and
 * wrapped payload key, and, per assigned slot (task_files, ordered), the
 * direction, slot, file id and that file's verified MAC (hence its ciphertext
 * hash, key id and owners). integ_task_verify_row recomputes it from the rows
 * and checks the declaration MAC, every file MAC, the structure (each slot
 * assigned once, to a file of the right kind whose owners are the declared
 * ones, every owner a participant, the assignments column equal to the
 * task_files rows, one task_participants row per participant) and every
 * participant's approval MAC, before any key is unwrapped for an executor.
 * Its row (row.assignments) is also the only source of where a task's
 * results go: the outcome's output files (sched.c: the job's mapping, or
 * the binding verified in the outcome's transaction) and the object of every
 * remote transfer, upload and report (remote_sched.c), never task_files read
 * again.
 *
 * Each field is encoded as u32be length || bytes (length 0xffffffff for SQL
 * NULL) after a domain string and a NUL, so no two field lists collide.
 * Failures say "integrity check failed: CLASS" (file, task, binding,
 * approval) and nothing derived from the rows; they are MT_EINTERNAL.
 * What this does not give: freshness. A host that restores an older,
 * consistent copy of the database (rollback) is not detected
 * (docs/threat-model.md).
 * Thread-safety: callers pass their own connection; each thread keeps up
 * to two keyed HMAC contexts of its own (mac_ctx: a copy of each key,
 * compared by bytes, wiped when its slot is replaced, by
 * integ_mac_thread_clear and at thread exit). Every thread's slots are in
 * one registry, so that integ_mac_forget (mt_core's close, for the core's
 * integ_key and audit_key) wipes a key from the slots of all threads, idle
 * ones included; a slot is used only under its thread's mutex, which
 * integ_mac_forget takes to wipe it. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "mt_algs.h"
#include "mt_json.h"
#include "mt_log.h"

/* ---- field buffer ------------------------------------------------------ */

typedef struct fbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} fbuf;

static void fb_raw(fbuf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void fb_len(fbuf *b, uint32_t v)
{
    uint8_t l[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    fb_raw(b, l, 4);
}

static void fb_bytes(fbuf *b, const void *d, size_t n)
{
    if (!d) {
        fb_len(b, 0xffffffffu);
        return;
    }
    if (n >= 0xffffffffu) {
        b->oom = true;
        return;
    }
    fb_len(b, (uint32_t)n);
    fb_raw(b, d, n);
}

static void fb_str(fbuf *b, const char *s)
{
    fb_bytes(b, s, s ? strlen(s) : 0);
}

/* Column i of st as a field (NULL stays distinct from ""). */
static void fb_col(fbuf *b, mt_db_stmt *st, int i)
{
    if (mt_db_col_null(st, i)) {
        fb_bytes(b, NULL, 0);
        return;
    }
    /* the column's text form (an integer in decimal on both backends) */
    const char *t = mt_db_col_text(st, i);
    fb_bytes(b, t, strlen(t));
}

/* SHA-256 of a blob column as a hex field (the key id of a wrapped key). */
static void fb_col_digest(fbuf *b, mt_db_stmt *st, int i)
{
    if (mt_db_col_null(st, i)) {
        fb_bytes(b, NULL, 0);
        return;
    }
    char h[65];
    size_t n = 0;
    const void *p = mt_db_col_blob(st, i, &n);
    core_sha256_hex(p ? p : "", n, h);
    fb_str(b, h);
}

static void fb_init(fbuf *b, const char *domain)
{
    memset(b, 0, sizeof *b);
    fb_raw(b, domain, strlen(domain) + 1);
}

static void fb_free(fbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- primitives -------------------------------------------------------- */

mt_status integ_fail(mt_err *err, const char *cls)
{
    return mt_err_set(err, MT_EINTERNAL, "integrity check failed: %s", cls);
}

/* Each thread keeps HMAC-SHA256 contexts keyed with the last MAC_TL_SLOTS
 * keys it used (thread-specific, freed and wiped when the thread exits):
 * re-keying per MAC (EVP_Q_mac fetched the algorithm and the digest each
 * time) cost about 1 us of the ~1.3 us a store-row MAC took. Two slots:
 * the scheduler and request threads alternate integ_key (rows, leases)
 * and audit_key (audit entries) within one task, which re-keyed the single
 * context at every switch. mt_core's close wipes the core's keys from
 * every thread's slots (integ_mac_forget) and frees the closing thread's
 * contexts (integ_mac_thread_clear).
 * Locking: a thread's slots are used (mac_ctx to the end of the MAC, fb_mac)
 * and wiped (integ_mac_forget) only under its mac_tl.mu; the registry of all
 * threads' mac_tl (mac_reg) changes only under mac_reg_mu. Order: mac_reg_mu,
 * then a mac_tl.mu; a thread holding its own mac_tl.mu takes no other lock.
 * Uncontended, the lock costs a few ns of the ~300 ns a MAC takes. */
#define MAC_TL_SLOTS 2
typedef struct mac_tl {
    pthread_mutex_t mu; /* the slots: their owner while it MACs, integ_mac_forget */
    struct {
        uint8_t key[32];
        EVP_MAC_CTX *ctx;
    } s[MAC_TL_SLOTS];
    unsigned next; /* the slot a new key replaces */
    struct mac_tl *reg_prev, *reg_next; /* mac_reg, under mac_reg_mu */
} mac_tl;

static pthread_key_t mac_tl_key;
static pthread_once_t mac_tl_once = PTHREAD_ONCE_INIT;
static bool mac_tl_ok;
static pthread_mutex_t mac_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mac_tl *mac_reg; /* every thread's slots */

/* Frees slot i's context and wipes its key (the caller holds t->mu, or t
 * is no longer reachable by anyone else). */
static void mac_slot_clear(mac_tl *t, unsigned i)
{
    EVP_MAC_CTX_free(t->s[i].ctx); /* OpenSSL wipes the keyed HMAC state */
    t->s[i].ctx = NULL;
    mt_wipe(t->s[i].key, sizeof t->s[i].key);
}

/* Thread exit (destructor of mac_tl_key) and integ_mac_thread_clear: takes
 * t out of the registry, then wipes and frees it. Once unlinked (under
 * mac_reg_mu) no integ_mac_forget can hold or take t->mu. */
static void mac_tl_free(void *p)
{
    mac_tl *t = p;
    pthread_mutex_lock(&mac_reg_mu);
    if (t->reg_prev)
        t->reg_prev->reg_next = t->reg_next;
    else
        mac_reg = t->reg_next;
    if (t->reg_next)
        t->reg_next->reg_prev = t->reg_prev;
    pthread_mutex_unlock(&mac_reg_mu);
    for (unsigned i = 0; i < MAC_TL_SLOTS; i++)
        mac_slot_clear(t, i);
    pthread_mutex_destroy(&t->mu);
    mt_wipe(t, sizeof *t);
    free(t);
}

static void mac_tl_init(void)
{
    mac_tl_ok = pthread_key_create(&mac_tl_key, mac_tl_free) == 0;
}

void integ_mac_thread_clear(void)
{
    pthread_once(&mac_tl_once, mac_tl_init);
    if (!mac_tl_ok)
        return;
    mac_tl *t = pthread_getspecific(mac_tl_key);
    if (t && !pthread_setspecific(mac_tl_key, NULL))
        mac_tl_free(t);
}

void integ_mac_forget(const uint8_t key[32])
{
    pthread_mutex_lock(&mac_reg_mu);
    for (mac_tl *t = mac_reg; t; t = t->reg_next) {
        pthread_mutex_lock(&t->mu);
        for (unsigned i = 0; i < MAC_TL_SLOTS; i++)
            if (t->s[i].ctx && mt_ct_equal(t->s[i].key, key, 32))
                mac_slot_clear(t, i);
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&mac_reg_mu);
}

size_t integ_mac_slots_holding(const uint8_t key[32])
{
    size_t n = 0;
    pthread_mutex_lock(&mac_reg_mu);
    for (mac_tl *t = mac_reg; t; t = t->reg_next) {
        pthread_mutex_lock(&t->mu);
        for (unsigned i = 0; i < MAC_TL_SLOTS; i++)
            n += t->s[i].ctx && mt_ct_equal(t->s[i].key, key, 32);
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&mac_reg_mu);
    return n;
}

/* The calling thread's slots, made and registered on first use; NULL on
 * failure. */
static mac_tl *mac_tl_get(void)
{
    pthread_once(&mac_tl_once, mac_tl_init);
    if (!mac_tl_ok)
        return NULL;
    mac_tl *t = pthread_getspecific(mac_tl_key);
    if (t)
        return t;
    if (!(t = calloc(1, sizeof *t)))
        return NULL;
    if (pthread_mutex_init(&t->mu, NULL)) {
        free(t);
        return NULL;
    }
    if (pthread_setspecific(mac_tl_key, t)) {
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&mac_reg_mu);
    t->reg_next = mac_reg;
    if (mac_reg)
        mac_reg->reg_prev = t;
    mac_reg = t;
    pthread_mutex_unlock(&mac_reg_mu);
    return t;
}

/* The calling thread's context, initialised for `key`, with *held locked
 * (the caller unlocks (*held)->mu when the MAC is done); NULL on failure
 * (nothing held). */
static EVP_MAC_CTX *mac_ctx(const uint8_t key[32], mac_tl **held)
{
    mac_tl *t = mac_tl_get();
    if (!t)
        return NULL;
    pthread_mutex_lock(&t->mu);
    EVP_MAC_CTX *ctx = NULL;
    for (unsigned i = 0; i < MAC_TL_SLOTS; i++)
        if (t->s[i].ctx && mt_ct_equal(t->s[i].key, key, 32)) {
            ctx = EVP_MAC_init(t->s[i].ctx, NULL, 0, NULL) ? t->s[i].ctx : NULL;
            goto out;
        }
    unsigned slot = t->next;
    t->next = (slot + 1) % MAC_TL_SLOTS;
    mac_slot_clear(t, slot);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    char digest[] = "SHA256";
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                      OSSL_PARAM_construct_end()};
    if (!ctx || !EVP_MAC_init(ctx, key, 32, p)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
        goto out;
    }
    memcpy(t->s[slot].key, key, 32);
    t->s[slot].ctx = ctx;
out:
    if (ctx)
        *held = t;
    else
        pthread_mutex_unlock(&t->mu);
    return ctx;
}

/* HMAC-SHA256(key, buffer) as hex. false on allocation failure. */
static bool fb_mac(const uint8_t key[32], const fbuf *b, char out[65])
{
    if (b->oom)
        return false;
    uint8_t md[32];
    size_t ml = 0;
    mac_tl *held = NULL;
    EVP_MAC_CTX *ctx = mac_ctx(key, &held);
    if (!ctx)
        return false;
    bool ok = EVP_MAC_update(ctx, b->p, b->len) && EVP_MAC_final(ctx, md, &ml, sizeof md) &&
              ml == 32;
    pthread_mutex_unlock(&held->mu);
    if (!ok)
        return false;
    mt_hex_encode(md, 32, out);
    return true;
}

bool integ_hex_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == 64 && lb == 64 && mt_ct_equal(a, b, 64);
}

mt_status integ_mac_text(const uint8_t key[32], const char *domain, const char *text,
                         char out[65], mt_err *err)
{
    fbuf b;
    fb_init(&b, domain);
    fb_str(&b, text);
    bool ok = fb_mac(key, &b, out);
    fb_free(&b);
    return ok ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
}

/* ---- files ------------------------------------------------------------- */

/* A row and the sorted list of names that belongs to it (file owners, a
 * function's allow-list), MACed together. */
typedef struct {
    const char *domain;   /* MAC domain, e.g. "mesatee-file/v1" */
    const char *row_sql;  /* selects the row by id: n_fields fields, then one
                             column MACed by digest, then the stored MAC */
    int n_fields;
    const char *list_sql; /* selects the names by id, sorted */
    const char *what;     /* for "no <what> <id>" */
} row_list_spec;

/* Computes the MAC the row and its list should carry; *stored receives the
 * stored one ("" when NULL). MT_ENOTFOUND when there is no such row. */
/* The row's fields (columns first..first+n_fields-1 of st, then the one
 * MACed by digest, then the stored MAC) and then the list sp->list_sql
 * selects by id: the MAC they should carry in *mac, the stored one in
 * *stored. For a row read by another statement (integ_task_binding reads
 * the function row joined to its task: one round trip less). */
/* A field that replaces column first+i of the row in a MAC: set, then text
 * (NULL: SQL NULL) for the n_fields fields, blob/blob_len for the digest. */
typedef struct {
    bool set;
    const char *text;
    const void *blob;
    size_t blob_len;
} fld_over;

static int names_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    if (!x || !y) /* NULL first */
        return (x != NULL) - (y != NULL);
    return strcmp(x, y);
}

/* The names as MAC fields, in strcmp order whatever order the store (its
 * collation) or the caller gave them in: a seal computed from the values a
 * process wrote (no read back) and a check of what the store returns agree. */
/* fb_mac, then frees b: MT_OK, or MT_ENOMEM when the buffer could not be
 * built or the MAC computed. */
static mt_status fb_finish(const uint8_t key[32], fbuf *b, char out[65], mt_err *err)
{
    bool ok = fb_mac(key, b, out);
    fb_free(b);
    return ok ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
}

/* The task binding's hash: SHA-256 of the pre-image b (not freed), hex. */
static mt_status fb_binding_hash(const fbuf *b, char out[65], mt_err *err)
{
    uint8_t md[32];
    unsigned int ml = 0;
    if (b->oom || EVP_Digest(b->p, b->len, md, &ml, mt_algs_sha256(), NULL) != 1 || ml != 32)
        return mt_err_set(err, MT_ENOMEM, "out of memory hashing the task binding");
    mt_hex_encode(md, 32, out);
    return MT_OK;
}

static void fb_names(fbuf *b, const json_t *names)
{
    size_t n = json_array_size(names), i;
    const char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        b->oom = true;
        return;
    }
    for (i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(names, i));
    qsort(v, n, sizeof *v, names_cmp);
    for (i = 0; i < n; i++)
        fb_str(b, v[i]);
    free(v);
}

static mt_status row_list_mac_ov(mt_core *c, mt_db *mdb, const row_list_spec *sp, mt_db_stmt *row,
                                 int first, const char *id, const json_t *names,
                                 const fld_over *ov, char mac[65], char stored[65], mt_err *err);

static mt_status row_list_mac_at(mt_core *c, mt_db *mdb, const row_list_spec *sp, mt_db_stmt *row,
                                 int first, const char *id, const json_t *names, char mac[65],
                                 char stored[65], mt_err *err)
{
    return row_list_mac_ov(c, mdb, sp, row, first, id, names, NULL, mac, stored, err);
}

static json_t *col_json(mt_db_stmt *st, int i);

static mt_status row_list_mac_ov(mt_core *c, mt_db *mdb, const row_list_spec *sp, mt_db_stmt *row,
                                 int first, const char *id, const json_t *names,
                                 const fld_over *ov, char mac[65], char stored[65], mt_err *err)
{
    /* the row's own key must be the one asked for: a lying store could
     * answer WHERE id = X with Y's genuine row */
    if (mt_db_col_null(row, first) || strcmp(mt_db_col_text(row, first), id)) {
        mt_error("store integrity: asked for %s %s, the store answered with another row",
                 sp->what, id);
        return integ_fail(err, sp->what);
    }
    fbuf b;
    fb_init(&b, sp->domain);
    for (int i = 0; i < sp->n_fields; i++)
        if (ov && ov[i].set)
            fb_str(&b, ov[i].text);
        else
            fb_col(&b, row, first + i);
    if (ov && ov[sp->n_fields].set) {
        if (!ov[sp->n_fields].blob)
            fb_bytes(&b, NULL, 0);
        else {
            char h[65];
            core_sha256_hex(ov[sp->n_fields].blob, ov[sp->n_fields].blob_len, h);
            fb_str(&b, h);
        }
    } else
        fb_col_digest(&b, row, first + sp->n_fields);
    snprintf(stored, 65, "%s", mt_db_col_text(row, first + sp->n_fields + 1));
    mt_status rc = MT_OK;
    json_t *read = NULL;
    mt_db_stmt *st;
    if (!names && !(rc = core_stmt_get(NULL, mdb, sp->list_sql, &st, err))) {
        read = json_array();
        mt_db_bind_text(st, 1, id);
        while (mt_db_step(st, &rc, err) == MT_DB_ROW)
            if (!read || json_array_append_new(read, col_json(st, 0)))
                b.oom = true;
        core_stmt_put(NULL, st);
        names = read;
    }
    if (!rc)
        fb_names(&b, names);
    json_decref(read);
    if (!rc && !fb_mac(c->integ_key, &b, mac))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    fb_free(&b);
    return rc;
}

/* The list sp->list_sql selects by id, as a sorted array of names. */
static mt_status list_names(mt_db *mdb, const row_list_spec *sp, const char *id, json_t **out,
                            mt_err *err)
{
    *out = json_array();
    if (!*out)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(NULL, mdb, sp->list_sql, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, id);
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW)
        if (json_array_append_new(*out, col_json(st, 0)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    core_stmt_put(NULL, st);
    return rc;
}

/* row_list_mac; when fill is given, it is called on the very row the MAC
 * was computed over (after the caller compared the MAC) and *names_out
 * receives the list the MAC covers: callers use those values, never a
 * second read (on PostgreSQL each statement has its own snapshot). */
static mt_status row_list_mac_fill(mt_core *c, mt_db *mdb, const row_list_spec *sp,
                                   const char *id, char mac[65], char stored[65],
                                   json_t **names_out,
                                   mt_status (*fill)(mt_db_stmt *, void *, mt_err *), void *ctx,
                                   mt_err *err)
{
    mt_db_stmt *st;
    json_t *names = NULL;
    mt_status rc = core_stmt_get(NULL, mdb, sp->row_sql, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, id);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && !(rc = list_names(mdb, sp, id, &names, err)) &&
        !(rc = row_list_mac_at(c, mdb, sp, st, 0, id, names, mac, stored, err)) && fill) {
        if (!integ_hex_equal(mac, stored)) {
            mt_error("store integrity: %s %s does not match its MAC (edited outside mesatee)",
                     sp->what, id);
            rc = integ_fail(err, sp->what);
        } else
            rc = fill(st, ctx, err);
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no %s %s", sp->what, id);
    core_stmt_put(NULL, st);
    if (!rc && names_out)
        *names_out = json_incref(names);
    json_decref(names);
    return rc;
}

static mt_status row_list_mac(mt_core *c, mt_db *mdb, const row_list_spec *sp, const char *id,
                              char mac[65], char stored[65], mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(NULL, mdb, sp->row_sql, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, id);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW)
        rc = row_list_mac_at(c, mdb, sp, st, 0, id, NULL, mac, stored, err);
    else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no %s %s", sp->what, id);
    core_stmt_put(NULL, st);
    return rc;
}

static const row_list_spec file_spec = {
    "mesatee-file/v1",
    "SELECT file_id, kind, name, url, object_id, size, sha256, written, created_at, "
    "wrapped_key, mac FROM files WHERE file_id = ?",
    9, "SELECT username FROM file_owners WHERE file_id = ? ORDER BY username", "file"};

/* Computes the MAC a file row (with its owners) should carry. */
static mt_status file_mac(mt_core *c, mt_db *mdb, const char *file_id, char mac[65],
                          char stored[65], mt_err *err)
{
    return row_list_mac(c, mdb, &file_spec, file_id, mac, stored, err);
}

mt_status integ_file_seal(mt_core *c, mt_db *mdb, const char *file_id, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = file_mac(c, mdb, file_id, mac, stored, err);
    if (!rc)
        rc = store_run(mdb, err, NULL, "UPDATE files SET mac = ? WHERE file_id = ?", mac, file_id);
    return rc;
}

mt_status integ_file_mac_values(mt_core *c, const char *const fields[9], const void *wrapped,
                                size_t wrapped_len, const char *const *owners, size_t n_owners,
                                char mac[65], mt_err *err)
{
    fbuf b;
    fb_init(&b, file_spec.domain);
    for (int i = 0; i < 9; i++)
        fb_str(&b, fields[i]);
    if (!wrapped)
        fb_bytes(&b, NULL, 0);
    else {
        char h[65];
        core_sha256_hex(wrapped, wrapped_len, h);
        fb_str(&b, h);
    }
    json_t *names = json_array();
    for (size_t i = 0; names && i < n_owners; i++)
        if (json_array_append_new(names, json_string_nocheck(owners[i])))
            b.oom = true;
    if (!names)
        b.oom = true;
    fb_names(&b, names);
    json_decref(names);
    return fb_finish(c->integ_key, &b, mac, err);
}

mt_status integ_file_rewrite(mt_core *c, mt_db *mdb, const char *file_id,
                             const integ_file_change *chg, char old_mac[65], char new_mac[65],
                             mt_err *err)
{
    /* one read: the row and its owners, verified against the stored MAC;
     * the new MAC is computed over those verified fields with the changed
     * ones replaced, and written with the change (never over a second,
     * unverified read) */
    mt_db_stmt *st;
    json_t *names = NULL;
    char mac[65], stored[65], nmac[65], szbuf[24];
    mt_status rc = core_stmt_get(NULL, mdb, file_spec.row_sql, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, file_id);
    fld_over ov[10] = {0};
    if (chg->set_written) {
        snprintf(szbuf, sizeof szbuf, "%lld", (long long)chg->size);
        ov[5] = (fld_over){true, szbuf, NULL, 0};
        ov[6] = (fld_over){true, chg->sha256, NULL, 0};
        ov[7] = (fld_over){true, "1", NULL, 0};
    }
    if (chg->set_wrapped)
        ov[9] = (fld_over){true, NULL, chg->wrapped, chg->wrapped_len};
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && !(rc = list_names(mdb, &file_spec, file_id, &names, err)) &&
        !(rc = row_list_mac_at(c, mdb, &file_spec, st, 0, file_id, names, mac, stored, err))) {
        if (!integ_hex_equal(mac, stored)) {
            mt_error("store integrity: file %s does not match its MAC (edited outside mesatee)",
                     file_id);
            rc = integ_fail(err, "file");
        } else
            rc = row_list_mac_ov(c, mdb, &file_spec, st, 0, file_id, names, ov, nmac, stored,
                                 err);
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no file %s", file_id);
    core_stmt_put(NULL, st);
    json_decref(names);
    if (rc)
        return rc;
    if (chg->set_written) {
        if ((rc = core_stmt_get(NULL, mdb,
                                "UPDATE files SET written = 1, size = ?, sha256 = ?, mac = ? "
                                "WHERE file_id = ?",
                                &st, err)))
            return rc;
        mt_db_bind_int64(st, 1, chg->size);
        mt_db_bind_text(st, 2, chg->sha256);
        mt_db_bind_text(st, 3, nmac);
        mt_db_bind_text(st, 4, file_id);
    } else if (chg->set_wrapped) {
        if ((rc = core_stmt_get(NULL, mdb,
                                "UPDATE files SET wrapped_key = ?, kek_version = ?, mac = ? "
                                "WHERE file_id = ?",
                                &st, err)))
            return rc;
        mt_db_bind_blob(st, 1, chg->wrapped, chg->wrapped_len);
        mt_db_bind_int64(st, 2, (int64_t)chg->kek_version);
        mt_db_bind_text(st, 3, nmac);
        mt_db_bind_text(st, 4, file_id);
    } else
        return MT_OK;
    mt_db_step(st, &rc, err);
    core_stmt_put(NULL, st);
    if (!rc && old_mac)
        memcpy(old_mac, mac, 65); /* the MAC the read verified */
    if (!rc && new_mac)
        memcpy(new_mac, nmac, 65); /* the MAC written */
    return rc;
}

mt_status integ_file_check(mt_core *c, mt_db *mdb, const char *file_id, char mac_out[65],
                           mt_err *err)
{
    return integ_file_load(c, mdb, file_id, NULL, NULL, mac_out, err);
}

/* file_spec's row (columns 0-9) into a core_file. */
static mt_status file_fill(mt_db_stmt *st, void *ctx, mt_err *err)
{
    (void)err;
    core_file *out = ctx;
    snprintf(out->file_id, sizeof out->file_id, "%s", mt_db_col_text(st, 0));
    snprintf(out->kind, sizeof out->kind, "%s", mt_db_col_text(st, 1));
    snprintf(out->name, sizeof out->name, "%s", mt_db_col_text(st, 2));
    snprintf(out->url, sizeof out->url, "%s", mt_db_col_text(st, 3));
    snprintf(out->object_id, sizeof out->object_id, "%s", mt_db_col_text(st, 4));
    out->has_size = !mt_db_col_null(st, 5);
    out->size = mt_db_col_int64(st, 5);
    snprintf(out->sha256, sizeof out->sha256, "%s", mt_db_col_text(st, 6));
    out->written = (int)mt_db_col_int64(st, 7) != 0;
    out->created_at = mt_db_col_int64(st, 8);
    size_t n = 0;
    const void *wk = mt_db_col_blob(st, 9, &n);
    if (n > 0 && n <= sizeof out->wrapped_key) {
        memcpy(out->wrapped_key, wk, n);
        out->wrapped_len = n;
    }
    return MT_OK;
}

mt_status integ_file_load(mt_core *c, mt_db *mdb, const char *file_id, core_file *out,
                          json_t **owners, char mac_out[65], mt_err *err)
{
    char mac[65], stored[65];
    core_file scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    mt_status rc =
        row_list_mac_fill(c, mdb, &file_spec, file_id, mac, stored, owners, file_fill, out, err);
    if (!rc && mac_out)
        memcpy(mac_out, mac, 65);
    return rc;
}

/* ---- task declaration -------------------------------------------------- */

static mt_status decl_mac(mt_core *c, mt_db *mdb, const char *task_id, char mac[65],
                          char stored[65], mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(NULL, mdb,
                                 "SELECT task_id, function_id, creator, arguments, "
                                 "inputs_ownership, outputs_ownership, participants, decl_mac "
                                 "FROM tasks WHERE task_id = ?",
                                 &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, task_id);
    fbuf b;
    fb_init(&b, "mesatee-task-decl/v1");
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && (mt_db_col_null(st, 0) || strcmp(mt_db_col_text(st, 0), task_id))) {
        mt_error("store integrity: asked for task %s, the store answered with another row",
                 task_id);
        rc = integ_fail(err, "task");
    } else if (s == MT_DB_ROW) {
        for (int i = 0; i < 7; i++)
            fb_col(&b, st, i);
        snprintf(stored, 65, "%s", mt_db_col_text(st, 7));
        if (!fb_mac(c->integ_key, &b, mac))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no task %s", task_id);
    core_stmt_put(NULL, st);
    fb_free(&b);
    return rc;
}

mt_status integ_task_decl_seal(mt_core *c, mt_db *mdb, const char *task_id, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = decl_mac(c, mdb, task_id, mac, stored, err);
    if (!rc)
        rc = store_run(mdb, err, NULL, "UPDATE tasks SET decl_mac = ? WHERE task_id = ?", mac,
                       task_id);
    return rc;
}

mt_status integ_task_decl_mac(mt_core *c, const char *const fields[7], char mac[65], mt_err *err)
{
    fbuf b;
    fb_init(&b, "mesatee-task-decl/v1");
    for (int i = 0; i < 7; i++)
        fb_str(&b, fields[i]);
    return fb_finish(c->integ_key, &b, mac, err);
}

/* The declaration MAC of a row read by another statement: columns
 * first..first+6 the declared fields in decl_mac's order, first+7 the stored
 * decl_mac. Same domain and fields as decl_mac, so the same verdict. */
mt_status integ_task_decl_row_check(mt_core *c, mt_db_stmt *st, int first, const char *task_id,
                                    mt_err *err)
{
    /* the row's own task_id must be the one asked for: a genuine row of
     * another task carries a valid MAC too */
    if (mt_db_col_null(st, first) || strcmp(mt_db_col_text(st, first), task_id)) {
        mt_error("store integrity: asked for task %s, the store answered with another row",
                 task_id);
        return integ_fail(err, "task");
    }
    fbuf b;
    fb_init(&b, "mesatee-task-decl/v1");
    for (int i = 0; i < 7; i++)
        fb_col(&b, st, first + i);
    char mac[65], stored[65];
    snprintf(stored, sizeof stored, "%s", mt_db_col_text(st, first + 7));
    mt_status rc = MT_OK;
    if (!fb_mac(c->integ_key, &b, mac))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    else if (!integ_hex_equal(mac, stored)) {
        mt_error("store integrity: task %s declaration does not match its MAC", task_id);
        rc = integ_fail(err, "task");
    }
    fb_free(&b);
    return rc;
}

/* ---- binding ----------------------------------------------------------- */

static bool arr_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s))
        return true;
    return false;
}

/* The declared owners of slot in an ownership array, or NULL. */
static const json_t *decl_owners(const json_t *own, const char *slot)
{
    size_t i;
    json_t *v;
    json_array_foreach(own, i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && !strcmp(n, slot))
            return json_object_get(v, "owners");
    }
    return NULL;
}

/* Structural checks of the declaration itself: well-formed, creator and
 * every declared owner among the participants. */
static bool decl_sane(const json_t *parts, const json_t *ins, const json_t *outs,
                      const char *creator)
{
    if (!json_is_array(parts) || !json_is_array(ins) || !json_is_array(outs) ||
        !arr_has(parts, creator))
        return false;
    const json_t *lists[2] = {ins, outs};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *v;
        json_array_foreach(lists[l], i, v)
        {
            const json_t *owners = json_object_get(v, "owners");
            if (!json_is_string(json_object_get(v, "name")) || !json_is_array(owners))
                return false;
            size_t j;
            json_t *o;
            json_array_foreach(owners, j, o) if (!json_is_string(o) ||
                                                  !arr_has(parts, json_string_value(o))) return
                false;
        }
    }
    return true;
}

static const row_list_spec function_spec;

/* BINDING_SQL: everything a binding reads, in one statement (one snapshot
 * on PostgreSQL, one round trip), ?1 the task; the last column (B_KIND)
 * tells the row's kind, rows in kind order:
 * - kind 0: the task's function's allow-list (column 0, sorted as
 *   function_spec sorts it), the function being the one of the task row
 *   the same statement reads;
 * - kind 1: the task row: the declaration (0-6, decl_mac 7, in decl_mac's
 *   order), assignments 8, the number of task_participants rows 9, then the
 *   function row as function_spec selects it (10-28; NULL when it is gone);
 * - kind 2: the assigned files (direction, slot, file, kind: columns 0-3;
 *   in the binding's order);
 * - kind 3: the participants' approval MACs (user 0, MAC 1).
 * The other columns of kinds 0, 2 and 3 are NULL. */
#define B_NULLS25                                                                                  \
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "   \
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
#define BINDING_SQL                                                                                \
    "SELECT username, NULL, NULL, NULL, " B_NULLS25 "0 FROM function_allowlist WHERE "             \
    "function_id = (SELECT function_id FROM tasks WHERE task_id = ?1) "                            \
    "UNION ALL SELECT t.task_id, t.function_id, t.creator, t.arguments, t.inputs_ownership, "      \
    "t.outputs_ownership, t.participants, t.decl_mac, t.assignments, (SELECT count(*) FROM "       \
    "task_participants p WHERE p.task_id = t.task_id), f.function_id, f.owner, f.name, "           \
    "f.description, f.executor_type, f.builtin, f.public, f.disabled, f.deleted, f.arguments, "    \
    "f.inputs, f.outputs, f.usage_quota, f.created_at, f.payload_object, f.payload_size, "         \
    "f.payload_sha256, f.payload_key, f.mac, 1 FROM tasks t LEFT JOIN functions f ON "             \
    "f.function_id = t.function_id WHERE t.task_id = ?1 "                                          \
    "UNION ALL SELECT tf.direction, tf.slot, tf.file_id, f.kind, " B_NULLS25 "2 FROM task_files "  \
    "tf JOIN files f ON f.file_id = tf.file_id WHERE tf.task_id = ?1 "                             \
    "UNION ALL SELECT username, approval_mac, NULL, NULL, " B_NULLS25 "3 FROM task_participants "  \
    "WHERE task_id = ?1 ORDER BY 30, 1, 2"
#define B_FN 10   /* first function column of BINDING_SQL's task row */
#define B_KIND 29 /* the kind column */

static json_t *col_json(mt_db_stmt *st, int i)
{
    return mt_db_col_null(st, i) ? json_null() : json_string_nocheck(mt_db_col_text(st, i));
}

/* BINDING_SQL's rows after the task row: *files ([direction, slot, file,
 * kind]), *approvals (user -> approval_mac, "" for NULL); another row of
 * kind 0 or 1 there is refused. */
static mt_status side_rows(mt_db_stmt *st, json_t *files, json_t *approvals, mt_err *err)
{
    mt_status rc = MT_OK;
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW) {
        int64_t k = mt_db_col_int64(st, B_KIND);
        int bad = 0;
        if (k == 2) {
            json_t *f = json_array();
            for (int i = 0; i <= 3 && f && !bad; i++)
                bad = json_array_append_new(f, json_string_nocheck(mt_db_col_text(st, i)));
            if (bad || !f)
                json_decref(f);
            bad = bad || !f || json_array_append_new(files, f);
        } else if (k == 3)
            bad = json_object_set_new_nocheck(approvals, mt_db_col_text(st, 0),
                                              json_string_nocheck(mt_db_col_text(st, 1)));
        else
            return integ_fail(err, "task"); /* out of order: not our statement's answer */
        if (bad)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    return rc;
}

/* integ_task_binding; *parts_out (optional) receives the verified
 * participants, *approvals_out (optional) the stored approval MACs (user ->
 * MAC, unverified: integ_task_verify_row checks them). Round trips
 * (PostgreSQL): one statement (BINDING_SQL) reads the task row with its
 * declaration MAC, its function row, its participant count, the function's
 * allow-list, the assigned files and the approvals (they were seven
 * statements, then two, plus one per participant in integ_task_verify_row):
 * every value the hash and the checks use comes from that read, verified
 * by their MACs before use, so nothing is read twice. Files assigned are
 * then checked one by one (integ_file_check, core_file_owners). */
/* Copies column i of st into dst (n bytes); false when it does not fit (a
 * verified value is never truncated into something else). */
static bool col_copy(mt_db_stmt *st, int i, char *dst, size_t n)
{
    const char *t = mt_db_col_null(st, i) ? "" : mt_db_col_text(st, i);
    return (size_t)snprintf(dst, n, "%s", t) < n;
}

/* The verified row's values the job and the invocation are built from
 * (BINDING_SQL's columns, after both MACs held). */
static mt_status task_row_fill(mt_db_stmt *st, integ_task_row *r, mt_err *err)
{
    r->arguments = core_json_load(mt_db_col_text(st, 3));
    r->assignments = core_json_load(mt_db_col_text(st, 8));
    r->participants = core_json_load(mt_db_col_text(st, 6));
    size_t kl = 0;
    const void *k = mt_db_col_blob(st, B_FN + 17, &kl);
    if (!r->arguments || !r->assignments || !r->participants ||
        !col_copy(st, B_FN, r->function_id, sizeof r->function_id) ||
        !col_copy(st, B_FN + 4, r->executor_type, sizeof r->executor_type) ||
        !col_copy(st, B_FN + 5, r->builtin, sizeof r->builtin) ||
        !col_copy(st, B_FN + 14, r->payload_object, sizeof r->payload_object) ||
        !col_copy(st, B_FN + 16, r->payload_sha256, sizeof r->payload_sha256) ||
        kl > sizeof r->payload_key)
        return integ_fail(err, "task");
    if (k && kl)
        memcpy(r->payload_key, k, kl);
    r->payload_key_len = kl;
    r->disabled = mt_db_col_int64(st, B_FN + 7) != 0;
    r->deleted = mt_db_col_int64(st, B_FN + 8) != 0;
    r->usage_quota = mt_db_col_null(st, B_FN + 12) ? 0 : mt_db_col_int64(st, B_FN + 12);
    return MT_OK;
}

void integ_task_row_free(integ_task_row *r)
{
    if (!r)
        return;
    json_decref(r->arguments);
    json_decref(r->assignments);
    json_decref(r->participants);
    json_decref(r->file_macs);
    mt_wipe(r, sizeof *r);
}

/* A binding's pre-image kept from its verifying read (the KEK rewrap,
 * integ_rebind_prepare): the hashed bytes, where the rewrapped value lies in
 * them (file_id's MAC in each slot it is assigned to, or the function's
 * payload key digest) and the verified function id. */
#define REBIND_MAX_OFF 64
typedef struct binding_pre {
    const char *file_id; /* NULL: record no slot */
    fbuf b;
    size_t off[REBIND_MAX_OFF], n_off, key_off;
    bool overflow;
    char function_id[MT_ID_LEN + 1];
} binding_pre;

static mt_status task_binding(mt_core *c, mt_db *mdb, const char *task_id, char hash_out[65],
                              json_t **parts_out, json_t **approvals_out, integ_task_row *row_out,
                              binding_pre *pre, mt_err *err)
{
    fbuf b;
    fb_init(&b, "mesatee-task-binding/v1");
    json_t *parts = NULL, *ins = NULL, *outs = NULL, *assign = NULL, *seen = NULL;
    json_t *allow = NULL, *files = NULL, *approvals = NULL;
    char creator[65] = "";
    int64_t nrows = 0;
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(NULL, mdb, BINDING_SQL, &st, err);
    if (rc)
        goto out;
    allow = json_array();
    files = json_array();
    approvals = json_object();
    if (!allow || !files || !approvals) {
        core_stmt_put(NULL, st);
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    mt_db_bind_text(st, 1, task_id);
    /* the allow-list rows come first (kind 0), then the task row (kind 1) */
    int s;
    while ((s = mt_db_step(st, &rc, err)) == MT_DB_ROW && mt_db_col_int64(st, B_KIND) == 0)
        if (json_array_append_new(allow, col_json(st, 0))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            break;
        }
    if (!rc && (s == MT_DB_DONE || (s == MT_DB_ROW && mt_db_col_int64(st, B_KIND) != 1))) {
        /* no task row: no such task (rows of other kinds without it are
         * not answers to this question) */
        s = MT_DB_DONE;
        rc = mt_err_set(err, MT_ENOTFOUND, "no task %s", task_id);
    }
    /* the declaration first, then its function (row and allow-list) */
    if (s == MT_DB_ROW && !rc && !(rc = integ_task_decl_row_check(c, st, 0, task_id, err))) {
        char fid[MT_ID_LEN + 1], mac[65], stored[65];
        snprintf(fid, sizeof fid, "%s", mt_db_col_text(st, 1));
        if (mt_db_col_null(st, B_FN) || strcmp(mt_db_col_text(st, B_FN), fid))
            rc = integ_fail(err, "task"); /* decl verified, function row gone */
        else if (!(rc = row_list_mac_at(c, mdb, &function_spec, st, B_FN, fid, allow, mac, stored,
                                        err)) &&
                 !integ_hex_equal(mac, stored)) {
            mt_error("store integrity: function %s does not match its MAC", fid);
            rc = integ_fail(err, "function");
        }
    }
    if (s == MT_DB_ROW && !rc) {
        for (int i = 0; i < 7; i++)
            fb_col(&b, st, i);
        fb_col(&b, st, B_FN + 4);         /* f.executor_type */
        fb_col(&b, st, B_FN + 5);         /* f.builtin */
        fb_col(&b, st, B_FN + 14);        /* f.payload_object */
        fb_col(&b, st, B_FN + 16);        /* f.payload_sha256 */
        if (pre) {
            pre->key_off = b.len;
            snprintf(pre->function_id, sizeof pre->function_id, "%s", mt_db_col_text(st, 1));
        }
        fb_col_digest(&b, st, B_FN + 17); /* f.payload_key */
        snprintf(creator, sizeof creator, "%s", mt_db_col_text(st, 2));
        ins = core_json_load(mt_db_col_text(st, 4));
        outs = core_json_load(mt_db_col_text(st, 5));
        parts = core_json_load(mt_db_col_text(st, 6));
        assign = core_json_load(mt_db_col_text(st, 8));
        nrows = mt_db_col_int64(st, 9);
        if (row_out && !(rc = task_row_fill(st, row_out, err)) &&
            !(row_out->file_macs = json_object()))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        /* then the assigned files and the approvals (kinds 2, 3) */
        if (!rc)
            rc = side_rows(st, files, approvals, err);
    }
    core_stmt_put(NULL, st);
    if (rc)
        goto out;
    if (!decl_sane(parts, ins, outs, creator) || !json_is_object(assign)) {
        rc = integ_fail(err, "binding");
        goto out;
    }
    /* assigned slots: the rows, their files' MACs, kinds and owners */
    seen = json_pack("{s:{}, s:{}}", "inputs", "outputs");
    if (!seen) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    size_t fi;
    json_t *fr;
    json_array_foreach(files, fi, fr)
    {
        const char *dir = json_string_value(json_array_get(fr, 0)),
                   *slot = json_string_value(json_array_get(fr, 1)),
                   *fid = json_string_value(json_array_get(fr, 2));
        bool input = !strcmp(dir, "input");
        const json_t *want = decl_owners(input ? ins : outs, slot);
        char fmac[65];
        json_t *owners = NULL;
        core_file f;
        /* the kind and owners the file's MAC covers, from the read it
         * verified (not BINDING_SQL's join nor another read) */
        if ((rc = integ_file_load(c, mdb, fid, &f, &owners, fmac, err)))
            break;
        bool kind_input = !strcmp(f.kind, "input");
        mt_wipe(&f, sizeof f);
        if (!want || input != kind_input) {
            json_decref(owners);
            rc = integ_fail(err, "binding");
            break;
        }
        bool eq = json_equal(owners, (json_t *)want);
        json_decref(owners);
        if (!eq) {
            rc = integ_fail(err, "binding");
            break;
        }
        json_object_set_new(json_object_get(seen, input ? "inputs" : "outputs"), slot,
                            json_string(fid));
        fb_str(&b, dir);
        fb_str(&b, slot);
        fb_str(&b, fid);
        if (pre && pre->file_id && !strcmp(fid, pre->file_id)) {
            if (pre->n_off < REBIND_MAX_OFF)
                pre->off[pre->n_off++] = b.len;
            else
                pre->overflow = true;
        }
        fb_str(&b, fmac);
        if (row_out && json_object_set_new(row_out->file_macs, fid, json_string(fmac))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            break;
        }
    }
    if (rc)
        goto out;
    /* what the job is built from (the assignments column) is exactly the
     * verified rows, and every declared slot is assigned */
    if (!json_equal(seen, assign) ||
        json_object_size(json_object_get(seen, "inputs")) != json_array_size(ins) ||
        json_object_size(json_object_get(seen, "outputs")) != json_array_size(outs)) {
        rc = integ_fail(err, "binding");
        goto out;
    }
    /* one task_participants row per participant and no other (counted in
     * BINDING_SQL) */
    if ((size_t)nrows != json_array_size(parts)) {
        rc = integ_fail(err, "task");
        goto out;
    }
    if ((rc = fb_binding_hash(&b, hash_out, err)))
        goto out;
    if (parts_out)
        *parts_out = json_incref(parts);
    if (approvals_out)
        *approvals_out = json_incref(approvals);
    if (pre) {
        pre->b = b; /* the pre-image, handed over */
        memset(&b, 0, sizeof b);
    }
out:
    fb_free(&b);
    json_decref(allow);
    json_decref(files);
    json_decref(approvals);
    json_decref(parts);
    json_decref(ins);
    json_decref(outs);
    json_decref(assign);
    json_decref(seen);
    return rc;
}

mt_status integ_task_binding(mt_core *c, mt_db *mdb, const char *task_id, char hash_out[65],
                             mt_err *err)
{
    return task_binding(c, mdb, task_id, hash_out, NULL, NULL, NULL, NULL, err);
}

/* ---- approvals --------------------------------------------------------- */

static mt_status approval_mac(mt_core *c, const char *task_id, const char *user,
                              const char *binding, char out[65], mt_err *err)
{
    fbuf b;
    fb_init(&b, "mesatee-approval/v1");
    fb_str(&b, task_id);
    fb_str(&b, user);
    fb_str(&b, binding);
    return fb_finish(c->integ_key, &b, out, err);
}

mt_status integ_approval_seal(mt_core *c, mt_db *mdb, const char *task_id, const char *user,
                              mt_err *err)
{
    char binding[65], mac[65];
    mt_status rc = integ_task_binding(c, mdb, task_id, binding, err);
    if (rc || (rc = approval_mac(c, task_id, user, binding, mac, err)))
        return rc;
    int changed = 0;
    if ((rc = store_run(mdb, err, &changed,
                        "UPDATE task_participants SET approval_mac = ? WHERE task_id = ? AND "
                        "username = ?",
                        mac, task_id, user)))
        return rc;
    return changed == 1 ? MT_OK : integ_fail(err, "task");
}

mt_status integ_task_verify_row(mt_core *c, mt_db *mdb, const char *task_id, integ_task_row *row,
                                mt_err *err)
{
    char binding[65];
    /* the participants the binding verified (its declaration MAC) and the
     * approval MACs it read with the allow-list and files (BINDING_SQL), not
     * further reads */
    json_t *parts = NULL, *approvals = NULL;
    if (row)
        memset(row, 0, sizeof *row);
    mt_status rc = task_binding(c, mdb, task_id, binding, &parts, &approvals, row, NULL, err);
    if (rc) {
        integ_task_row_free(row);
        return rc;
    }
    if (rc)
        return rc;
    if (!json_is_array(parts) || !json_is_object(approvals)) {
        json_decref(parts);
        json_decref(approvals);
        return integ_fail(err, "task");
    }
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *user = json_string_value(p);
        char want[65], stored[65] = "";
        if ((rc = approval_mac(c, task_id, user, binding, want, err)))
            break;
        const char *a = user ? json_string_value(json_object_get(approvals, user)) : NULL;
        snprintf(stored, sizeof stored, "%s", a ? a : "");
        if (!integ_hex_equal(want, stored)) {
            mt_error("store integrity: task %s lacks a valid approval of its binding", task_id);
            rc = integ_fail(err, "approval");
            break;
        }
    }
    json_decref(parts);
    json_decref(approvals);
    if (rc)
        integ_task_row_free(row);
    return rc;
}

/* Issue 10 (KeyStore rewrap): a task's approvals carried over a rewrap,
 * sealed only over values of one verifying read (docs/threat-model.md
 * "Verified values only, from the verifying read"). */
struct integ_rebind {
    char task_id[MT_ID_LEN + 1];
    json_t *users; /* participants whose approval matched the verified binding */
    binding_pre pre;
};

void integ_rebind_free(integ_rebind *rb)
{
    if (!rb)
        return;
    json_decref(rb->users);
    fb_free(&rb->pre.b);
    free(rb);
}

mt_status integ_rebind_prepare(mt_core *c, mt_db *mdb, const char *task_id, integ_rebind_what what,
                               const char *id, integ_rebind **out, mt_err *err)
{
    *out = NULL;
    integ_rebind *rb = calloc(1, sizeof *rb);
    if (!rb || !(rb->users = json_array())) {
        integ_rebind_free(rb);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    snprintf(rb->task_id, sizeof rb->task_id, "%s", task_id);
    rb->pre.file_id = what == INTEG_REBIND_FILE ? id : NULL;
    char binding[65];
    json_t *parts = NULL, *approvals = NULL;
    mt_err e2;
    mt_status rc = task_binding(c, mdb, task_id, binding, &parts, &approvals, NULL, &rb->pre, &e2);
    if (rc) {
        /* the store failing is retried (the batch rolls back); a task that
         * does not verify is broken already: nothing to carry over */
        if (rc == MT_ENOMEM || rc == MT_EIO)
            *err = e2;
        else
            rc = MT_OK;
        goto out;
    }
    /* the verified row must bind what is rewrapped: the file in a slot, or
     * the function (its declaration's function_id) */
    bool binds = what == INTEG_REBIND_FILE ? rb->pre.n_off > 0 && !rb->pre.overflow
                                           : !strcmp(rb->pre.function_id, id);
    if (!binds || !json_is_array(parts) || !json_is_object(approvals))
        goto out;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *user = json_string_value(p);
        const char *a = user ? json_string_value(json_object_get(approvals, user)) : NULL;
        char want[65];
        if (!a || !*a)
            continue;
        if ((rc = approval_mac(c, task_id, user, binding, want, err)))
            goto out;
        if (integ_hex_equal(want, a) && json_array_append_new(rb->users, json_string(user))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (json_array_size(rb->users)) {
        *out = rb;
        rb = NULL;
    }
out:
    json_decref(parts);
    json_decref(approvals);
    integ_rebind_free(rb);
    return rc;
}

/* Replaces the 64-hex field at off of b (u32be 64 || hex) holding old_hex
 * with new_hex; false when the field is not exactly old_hex. */
static bool pre_replace(fbuf *b, size_t off, const char *old_hex, const char *new_hex)
{
    static const uint8_t len64[4] = {0, 0, 0, 64};
    char cur[65];
    if (b->oom || off > b->len || b->len - off < 4 + 64 || memcmp(b->p + off, len64, 4) ||
        strlen(old_hex) != 64 || strlen(new_hex) != 64)
        return false;
    memcpy(cur, b->p + off + 4, 64);
    cur[64] = 0;
    if (!integ_hex_equal(cur, old_hex))
        return false;
    memcpy(b->p + off + 4, new_hex, 64);
    return true;
}

mt_status integ_rebind_seal(mt_core *c, mt_db *mdb, integ_rebind *rb, const char *old_hex,
                            const char *new_hex, mt_err *err)
{
    bool ok = true;
    if (rb->pre.file_id)
        for (size_t i = 0; ok && i < rb->pre.n_off; i++)
            ok = pre_replace(&rb->pre.b, rb->pre.off[i], old_hex, new_hex);
    else
        ok = pre_replace(&rb->pre.b, rb->pre.key_off, old_hex, new_hex);
    if (!ok) {
        /* the value the rewrite verified is not the one this binding was
         * verified with: the host answered the two reads differently.
         * Nothing is resealed; the task's approvals no longer verify. */
        mt_error("store integrity: task %s changed during a key rewrap; its approvals are "
                 "not carried over",
                 rb->task_id);
        return MT_OK;
    }
    char binding[65];
    mt_status hrc = fb_binding_hash(&rb->pre.b, binding, err);
    if (hrc)
        return hrc;
    size_t i;
    json_t *u;
    json_array_foreach(rb->users, i, u)
    {
        char mac[65];
        int changed = 0;
        mt_status rc = approval_mac(c, rb->task_id, json_string_value(u), binding, mac, err);
        if (!rc)
            rc = store_run(mdb, err, &changed,
                           "UPDATE task_participants SET approval_mac = ? WHERE task_id = ? AND "
                           "username = ?",
                           mac, rb->task_id, json_string_value(u));
        if (rc)
            return rc;
        if (changed != 1)
            return integ_fail(err, "task");
    }
    return MT_OK;
}

/* ---- users and tokens --------------------------------------------------- */

/* Computes the MAC of the row `sql` selects by key (columns 0..n-2 are the
 * fields, column n-1 the stored MAC). MT_ENOTFOUND when there is no row. */
static mt_status row_mac(mt_core *c, mt_db *mdb, const char *domain, const char *sql, int n,
                         const char *key, char mac[65], char stored[65], mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(c, mdb, sql, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, key);
    fbuf b;
    fb_init(&b, domain);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && (mt_db_col_null(st, 0) || strcmp(mt_db_col_text(st, 0), key))) {
        mt_error("store integrity: the store answered a lookup with another row");
        rc = integ_fail(err, "row");
    } else if (s == MT_DB_ROW) {
        for (int i = 0; i < n - 1; i++)
            fb_col(&b, st, i);
        snprintf(stored, 65, "%s", mt_db_col_text(st, n - 1));
        if (!fb_mac(c->integ_key, &b, mac))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no such row");
    core_stmt_put(c, st);
    fb_free(&b);
    return rc;
}

#define USER_SQL "SELECT username, role, pwhash, created_at, mac FROM users WHERE username = ?"
#define TOKEN_SQL                                                                                  \
    "SELECT token_hash, username, created_at, expires_at, revoked, mac FROM tokens "              \
    "WHERE token_hash = ?"

/* An account that is not active (users.state 'disabled' or 'deleted', schema
 * 5) is MACed with its state under another domain; an active one exactly as
 * before the column existed, so rows sealed by earlier versions still verify
 * and setting a disabled account's state back to 'active' outside mesatee
 * breaks its MAC. */
#define USER_STATE_SQL                                                                             \
    "SELECT username, role, pwhash, created_at, state, mac FROM users WHERE username = ?"

/* The MAC a USER_STATE_SQL row should carry (its state decides the
 * domain, as above), from that one row: *mac, the stored one *stored. */
static mt_status user_row_mac(mt_core *c, mt_db_stmt *st, const char *username, char mac[65],
                              char stored[65], mt_err *err)
{
    if (mt_db_col_null(st, 0) || strcmp(mt_db_col_text(st, 0), username)) {
        mt_error("store integrity: asked for user %s, the store answered with another row",
                 username);
        return integ_fail(err, "user");
    }
    bool active = !strcmp(mt_db_col_text(st, 4), "active");
    fbuf b;
    fb_init(&b, active ? "mesatee-user/v1" : "mesatee-user-state/v1");
    for (int i = 0; i < (active ? 4 : 5); i++)
        fb_col(&b, st, i);
    snprintf(stored, 65, "%s", mt_db_col_text(st, 5));
    return fb_finish(c->integ_key, &b, mac, err);
}

/* One read of the user's row (USER_STATE_SQL): its MAC and, when fill
 * is set and the MAC holds, the verified role, password hash and state. */
static mt_status user_read(mt_core *c, mt_db *mdb, const char *username, char mac[65],
                           char stored[65], bool check, char *pwhash, size_t pwcap,
                           char role[16], char state[16], mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(c, mdb, USER_STATE_SQL, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, username);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no such row");
    else if (s == MT_DB_ROW && !(rc = user_row_mac(c, st, username, mac, stored, err)) && check) {
        if (!integ_hex_equal(mac, stored)) {
            mt_error("store integrity: user %s does not match its MAC (role or password hash "
                     "edited outside mesatee)",
                     username);
            rc = integ_fail(err, "user");
        } else if ((pwhash && !col_copy(st, 2, pwhash, pwcap)) ||
                   (role && !col_copy(st, 1, role, 16)) || (state && !col_copy(st, 4, state, 16)))
            rc = integ_fail(err, "user");
    }
    core_stmt_put(c, st);
    return rc;
}

static mt_status user_mac(mt_core *c, mt_db *mdb, const char *username, char mac[65],
                          char stored[65], mt_err *err)
{
    return user_read(c, mdb, username, mac, stored, false, NULL, 0, NULL, NULL, err);
}

mt_status integ_user_load(mt_core *c, mt_db *mdb, const char *username, char *pwhash,
                          size_t pwcap, char role[16], char state[16], mt_err *err)
{
    char mac[65], stored[65];
    return user_read(c, mdb, username, mac, stored, true, pwhash, pwcap, role, state, err);
}

mt_status integ_user_mac_values(mt_core *c, const char *username, const char *role,
                                const char *pwhash, const char *created_at, const char *state,
                                char mac[65], mt_err *err)
{
    bool active = !strcmp(state, "active");
    fbuf b;
    fb_init(&b, active ? "mesatee-user/v1" : "mesatee-user-state/v1");
    fb_str(&b, username);
    fb_str(&b, role);
    fb_str(&b, pwhash);
    fb_str(&b, created_at);
    if (!active)
        fb_str(&b, state);
    return fb_finish(c->integ_key, &b, mac, err);
}

mt_status integ_user_rewrite(mt_core *c, mt_db *mdb, const char *username, const char *pwhash,
                             const char *state, mt_err *err)
{
    /* one read, verified; the new MAC over its values as changed, written
     * with the change */
    mt_db_stmt *st;
    char mac[65], stored[65], nmac[65];
    char role[16] = "", created[32] = "", cur_state[16] = "";
    char *cur_pw = NULL;
    mt_status rc = core_stmt_get(c, mdb, USER_STATE_SQL, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, username);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no such row");
    else if (s == MT_DB_ROW && !(rc = user_row_mac(c, st, username, mac, stored, err))) {
        if (!integ_hex_equal(mac, stored)) {
            mt_error("store integrity: user %s does not match its MAC (role or password hash "
                     "edited outside mesatee)",
                     username);
            rc = integ_fail(err, "user");
        } else if (mt_db_col_null(st, 1) || mt_db_col_null(st, 2) || mt_db_col_null(st, 3) ||
                   !col_copy(st, 1, role, sizeof role) ||
                   !col_copy(st, 3, created, sizeof created) ||
                   !col_copy(st, 4, cur_state, sizeof cur_state) ||
                   !(cur_pw = strdup(mt_db_col_text(st, 2))))
            rc = integ_fail(err, "user");
    }
    core_stmt_put(c, st);
    if (!rc) {
        const char *pw = pwhash ? pwhash : cur_pw, *stt = state ? state : cur_state;
        if (!(rc = integ_user_mac_values(c, username, role, pw, created, stt, nmac, err)))
            rc = store_run(mdb, err, NULL,
                           "UPDATE users SET pwhash = ?, state = ?, mac = ? WHERE username = ?",
                           pw, stt, nmac, username);
    }
    if (cur_pw) {
        mt_wipe(cur_pw, strlen(cur_pw));
        free(cur_pw);
    }
    return rc;
}

mt_status integ_token_mac_values(mt_core *c, const char *token_hash, const char *username,
                                 const char *created_at, const char *expires_at,
                                 const char *revoked, char mac[65], mt_err *err)
{
    fbuf b;
    fb_init(&b, "mesatee-token/v1");
    fb_str(&b, token_hash);
    fb_str(&b, username);
    fb_str(&b, created_at);
    fb_str(&b, expires_at);
    fb_str(&b, revoked);
    return fb_finish(c->integ_key, &b, mac, err);
}

mt_status integ_token_revoke(mt_core *c, mt_db *mdb, const char *token_hash, const char *owner,
                             mt_err *err)
{
    mt_db_stmt *st;
    char mac[65], stored[65], nmac[65];
    char user[256] = "", created[32] = "", expires[32] = "";
    mt_status rc = core_stmt_get(c, mdb, TOKEN_SQL, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, token_hash);
    fbuf b;
    fb_init(&b, "mesatee-token/v1");
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && (mt_db_col_null(st, 0) || strcmp(mt_db_col_text(st, 0), token_hash))) {
        mt_error("store integrity: the store answered a lookup with another row");
        rc = integ_fail(err, "row");
    } else if (s == MT_DB_ROW) {
        for (int i = 0; i < 5; i++)
            fb_col(&b, st, i);
        snprintf(stored, sizeof stored, "%s", mt_db_col_text(st, 5));
        if (!fb_mac(c->integ_key, &b, mac))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
        else if (!integ_hex_equal(mac, stored)) {
            mt_error("store integrity: a token row does not match its MAC");
            rc = integ_fail(err, "token");
        } else if (mt_db_col_null(st, 1) || mt_db_col_null(st, 2) || mt_db_col_null(st, 3) ||
                   !col_copy(st, 1, user, sizeof user) ||
                   !col_copy(st, 2, created, sizeof created) ||
                   !col_copy(st, 3, expires, sizeof expires))
            rc = integ_fail(err, "token");
        else if (owner && strcmp(user, owner)) {
            mt_error("store integrity: a token of another user answered a lookup");
            rc = integ_fail(err, "token");
        }
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no such row");
    core_stmt_put(c, st);
    fb_free(&b);
    if (!rc &&
        !(rc = integ_token_mac_values(c, token_hash, user, created, expires, "1", nmac, err)))
        rc = store_run(mdb, err, NULL,
                       "UPDATE tokens SET revoked = 1, mac = ? WHERE token_hash = ?", nmac,
                       token_hash);
    return rc;
}

mt_status integ_tokens_revoke_user(mt_core *c, mt_db *mdb, const char *username,
                                   const char *keep, int *revoked, mt_err *err)
{
    json_t *ids = NULL;
    if (revoked)
        *revoked = 0;
    mt_status rc = store_ids(mdb, "SELECT token_hash FROM tokens WHERE username = ? AND revoked = 0",
                             username, &ids, err);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *th = json_string_value(v);
        if (rc)
            break;
        if (!th || (keep && !strcmp(th, keep)))
            continue;
        if (!(rc = integ_token_revoke(c, mdb, th, username, err)) && revoked)
            (*revoked)++;
    }
    json_decref(ids);
    return rc;
}

mt_status integ_user_seal(mt_core *c, mt_db *mdb, const char *username, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = user_mac(c, mdb, username, mac, stored, err);
    if (!rc)
        rc =
            store_run(mdb, err, NULL, "UPDATE users SET mac = ? WHERE username = ?", mac, username);
    return rc;
}

mt_status integ_user_check(mt_core *c, mt_db *mdb, const char *username, mt_err *err)
{
    return integ_user_load(c, mdb, username, NULL, 0, NULL, NULL, err);
}

/* Columns of AUTH_SQL: 0-4 and 5 as TOKEN_SQL's fields and MAC, 6-10 and
 * 11 as USER_STATE_SQL's (an active account's MAC leaves out the state). */
#define AUTH_SQL                                                                                   \
    "SELECT t.token_hash, t.username, t.created_at, t.expires_at, t.revoked, t.mac, "             \
    "u.username, u.role, u.pwhash, u.created_at, u.state, u.mac "                                 \
    "FROM tokens t JOIN users u ON u.username = t.username WHERE t.token_hash = ?"

static bool cols_mac_ok(mt_core *c, mt_db_stmt *st, const char *domain, int first, int n,
                        int mac_col, mt_err *err, mt_status *rc)
{
    fbuf b;
    fb_init(&b, domain);
    for (int i = first; i < first + n; i++)
        fb_col(&b, st, i);
    char mac[65];
    bool ok = false;
    if (!fb_mac(c->integ_key, &b, mac))
        *rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    else
        ok = integ_hex_equal(mac, mt_db_col_text(st, mac_col));
    fb_free(&b);
    return ok;
}

mt_status integ_auth_lookup(mt_core *c, mt_db *mdb, const char *token_hash, integ_auth_row *row,
                            mt_err *err)
{
    memset(row, 0, sizeof *row);
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(c, mdb, AUTH_SQL, &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, token_hash);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW) {
        snprintf(row->username, sizeof row->username, "%s", mt_db_col_text(st, 1));
        snprintf(row->role, sizeof row->role, "%s", mt_db_col_text(st, 7));
        snprintf(row->state, sizeof row->state, "%s", mt_db_col_text(st, 10));
        row->expires_at = mt_db_col_int64(st, 3);
        row->revoked = mt_db_col_int64(st, 4) != 0;
        /* the rows' own keys must be the ones asked for: another token's
         * genuine row (and MAC) answering this hash would authenticate its
         * user; the user row must be the token's user's */
        row->token_ok = cols_mac_ok(c, st, "mesatee-token/v1", 0, 5, 5, err, &rc) &&
                        !mt_db_col_null(st, 0) && !strcmp(mt_db_col_text(st, 0), token_hash);
        bool active = !strcmp(mt_db_col_text(st, 10), "active");
        if (!rc)
            row->user_ok =
                (active ? cols_mac_ok(c, st, "mesatee-user/v1", 6, 4, 11, err, &rc)
                        : cols_mac_ok(c, st, "mesatee-user-state/v1", 6, 5, 11, err, &rc)) &&
                !mt_db_col_null(st, 6) && !strcmp(mt_db_col_text(st, 6), row->username);
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no such row");
    core_stmt_put(c, st);
    if (rc)
        memset(row, 0, sizeof *row);
    return rc;
}

mt_status integ_auth_verdict(const integ_auth_row *row, mt_err *err)
{
    if (!row->token_ok) {
        mt_error("store integrity: a token row does not match its MAC (inserted or edited "
                 "outside mesatee)");
        return integ_fail(err, "token");
    }
    if (!row->user_ok) {
        mt_error("store integrity: user %s does not match its MAC (role or password hash "
                 "edited outside mesatee)",
                 row->username);
        return integ_fail(err, "user");
    }
    return MT_OK;
}

mt_status integ_token_seal(mt_core *c, mt_db *mdb, const char *token_hash, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = row_mac(c, mdb, "mesatee-token/v1", TOKEN_SQL, 6, token_hash, mac, stored, err);
    if (!rc)
        rc = store_run(mdb, err, NULL, "UPDATE tokens SET mac = ? WHERE token_hash = ?", mac,
                       token_hash);
    return rc;
}

mt_status integ_token_check(mt_core *c, mt_db *mdb, const char *token_hash, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = row_mac(c, mdb, "mesatee-token/v1", TOKEN_SQL, 6, token_hash, mac, stored, err);
    if (rc)
        return rc;
    if (!integ_hex_equal(mac, stored)) {
        mt_error("store integrity: a token row does not match its MAC (inserted or edited "
                 "outside mesatee)");
        return integ_fail(err, "token");
    }
    return MT_OK;
}

/* ---- functions ---------------------------------------------------------- */

/* The function row (all but its usage and statistics counters and
 * updated_at) and its sorted allow-list. */
static const row_list_spec function_spec = {
    "mesatee-function/v1",
    "SELECT function_id, owner, name, description, executor_type, builtin, public, disabled, "
    "deleted, arguments, inputs, outputs, usage_quota, created_at, payload_object, "
    "payload_size, payload_sha256, payload_key, mac FROM functions WHERE function_id = ?",
    17, "SELECT username FROM function_allowlist WHERE function_id = ? ORDER BY username",
    "function"};

static mt_status function_mac(mt_core *c, mt_db *mdb, const char *function_id, char mac[65],
                              char stored[65], mt_err *err)
{
    return row_list_mac(c, mdb, &function_spec, function_id, mac, stored, err);
}

mt_status integ_function_seal(mt_core *c, mt_db *mdb, const char *function_id, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = function_mac(c, mdb, function_id, mac, stored, err);
    if (!rc)
        rc = store_run(mdb, err, NULL, "UPDATE functions SET mac = ? WHERE function_id = ?", mac,
                       function_id);
    return rc;
}

/* ---- verify, change, reseal from the verified values ---------------- */

#define PIN_MAX 24

struct integ_pin {
    const row_list_spec *sp;
    const char *const *cols; /* names of the sp->n_fields fields, then the digest's */
    const char *table, *id_col;
    char *id;
    char *vals[PIN_MAX]; /* NULL: SQL NULL */
    char *digest;        /* hex; NULL: SQL NULL */
    json_t *names;
};

static const char *const function_cols[] = {
    "function_id", "owner",     "name",        "description",    "executor_type",
    "builtin",     "public",    "disabled",    "deleted",        "arguments",
    "inputs",      "outputs",   "usage_quota", "created_at",     "payload_object",
    "payload_size", "payload_sha256", "payload_key"};

void integ_pin_free(integ_pin *p)
{
    if (!p)
        return;
    for (int i = 0; i < PIN_MAX; i++)
        free(p->vals[i]);
    free(p->digest);
    free(p->id);
    json_decref(p->names);
    free(p);
}

static mt_status pin_take(mt_core *c, mt_db *mdb, const row_list_spec *sp,
                          const char *const *cols, const char *table, const char *id_col,
                          const char *id, integ_pin **out, mt_err *err)
{
    *out = NULL;
    integ_pin *p = calloc(1, sizeof *p);
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    p->sp = sp, p->cols = cols, p->table = table, p->id_col = id_col;
    mt_db_stmt *st;
    char mac[65], stored[65];
    mt_status rc = core_stmt_get(NULL, mdb, sp->row_sql, &st, err);
    if (rc) {
        integ_pin_free(p);
        return rc;
    }
    mt_db_bind_text(st, 1, id);
    int s = mt_db_step(st, &rc, err);
    if (s == MT_DB_ROW && !(rc = list_names(mdb, sp, id, &p->names, err)) &&
        !(rc = row_list_mac_at(c, mdb, sp, st, 0, id, p->names, mac, stored, err))) {
        if (!integ_hex_equal(mac, stored)) {
            mt_error("store integrity: %s %s does not match its MAC (edited outside mesatee)",
                     sp->what, id);
            rc = integ_fail(err, sp->what);
        } else {
            /* the very values the MAC was just verified over */
            for (int i = 0; !rc && i < sp->n_fields; i++)
                if (!mt_db_col_null(st, i) && !(p->vals[i] = strdup(mt_db_col_text(st, i))))
                    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            if (!rc && !mt_db_col_null(st, sp->n_fields)) {
                size_t n = 0;
                const void *b = mt_db_col_blob(st, sp->n_fields, &n);
                char h[65];
                core_sha256_hex(b ? b : "", n, h);
                if (!(p->digest = strdup(h)))
                    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            }
        }
    } else if (s == MT_DB_DONE)
        rc = mt_err_set(err, MT_ENOTFOUND, "no %s %s", sp->what, id);
    core_stmt_put(NULL, st);
    if (rc)
        integ_pin_free(p);
    else
        *out = p;
    return rc;
}

mt_status integ_pin_set(integ_pin *p, const char *col, const char *text, mt_err *err)
{
    for (int i = 0; i < p->sp->n_fields; i++)
        if (!strcmp(p->cols[i], col)) {
            char *v = text ? strdup(text) : NULL;
            if (text && !v)
                return mt_err_set(err, MT_ENOMEM, "out of memory");
            free(p->vals[i]);
            p->vals[i] = v;
            return MT_OK;
        }
    return mt_err_set(err, MT_EINTERNAL, "integrity: no MACed column %s", col);
}

mt_status integ_pin_set_key(integ_pin *p, const void *blob, size_t len, mt_err *err)
{
    free(p->digest);
    p->digest = NULL;
    if (!blob)
        return MT_OK;
    char h[65];
    core_sha256_hex(blob, len, h);
    return (p->digest = strdup(h)) ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
}

mt_status integ_pin_set_names(integ_pin *p, const char *const *names, size_t n, mt_err *err)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string_nocheck(names[i]))) {
            json_decref(a);
            a = NULL;
        }
    if (!a)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    json_decref(p->names);
    p->names = a;
    return MT_OK;
}

const char *integ_pin_digest(const integ_pin *p)
{
    return p->digest;
}

mt_status integ_pin_seal(mt_core *c, mt_db *mdb, integ_pin *p, mt_err *err)
{
    fbuf b;
    fb_init(&b, p->sp->domain);
    for (int i = 0; i < p->sp->n_fields; i++)
        fb_str(&b, p->vals[i]);
    fb_str(&b, p->digest);
    fb_names(&b, p->names);
    char mac[65], sql[160];
    bool ok = fb_mac(c->integ_key, &b, mac);
    fb_free(&b);
    if (!ok)
        return mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    snprintf(sql, sizeof sql, "UPDATE %s SET mac = ? WHERE %s = ?", p->table, p->id_col);
    return store_run(mdb, err, NULL, sql, mac, p->id);
}

mt_status integ_function_pin_new(const char *function_id, integ_pin **out, mt_err *err)
{
    integ_pin *p = calloc(1, sizeof *p);
    if (p) {
        p->sp = &function_spec, p->cols = function_cols, p->table = "functions",
        p->id_col = "function_id";
        p->names = json_array();
        p->id = strdup(function_id);
        p->vals[0] = strdup(function_id);
    }
    if (!p || !p->names || !p->id || !p->vals[0]) {
        integ_pin_free(p);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    *out = p;
    return MT_OK;
}

mt_status integ_function_pin(mt_core *c, mt_db *mdb, const char *function_id, integ_pin **out,
                             mt_err *err)
{
    return pin_take(c, mdb, &function_spec, function_cols, "functions", "function_id",
                    function_id, out, err);
}

typedef struct {
    core_function *f;
    bool *deleted;
} fn_fill_ctx;

/* function_spec's row into a core_function (and deleted). */
static mt_status function_fill(mt_db_stmt *st, void *ctx, mt_err *err)
{
    fn_fill_ctx *x = ctx;
    core_function *f = x->f;
    if (!col_copy(st, 0, f->function_id, sizeof f->function_id) ||
        !col_copy(st, 1, f->owner, sizeof f->owner) || !col_copy(st, 2, f->name, sizeof f->name) ||
        !col_copy(st, 4, f->executor_type, sizeof f->executor_type) ||
        !col_copy(st, 5, f->builtin, sizeof f->builtin))
        return integ_fail(err, "function");
    f->public_ = mt_db_col_int64(st, 6) != 0;
    f->disabled = mt_db_col_int64(st, 7) != 0;
    *x->deleted = mt_db_col_int64(st, 8) != 0;
    f->arguments = core_json_load(mt_db_col_text(st, 9));
    f->inputs = core_json_load(mt_db_col_text(st, 10));
    f->outputs = core_json_load(mt_db_col_text(st, 11));
    f->usage_quota = mt_db_col_null(st, 12) ? 0 : mt_db_col_int64(st, 12);
    return MT_OK;
}

mt_status integ_function_load(mt_core *c, mt_db *mdb, const char *function_id, core_function *out,
                              bool *deleted, json_t **allow, mt_err *err)
{
    char mac[65], stored[65];
    bool del = false;
    memset(out, 0, sizeof *out);
    fn_fill_ctx x = {out, &del};
    mt_status rc = row_list_mac_fill(c, mdb, &function_spec, function_id, mac, stored, allow,
                                     function_fill, &x, err);
    if (rc)
        core_function_clear(out);
    if (deleted)
        *deleted = del;
    return rc;
}

mt_status integ_function_check(mt_core *c, mt_db *mdb, const char *function_id, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc = function_mac(c, mdb, function_id, mac, stored, err);
    if (rc)
        return rc;
    if (!integ_hex_equal(mac, stored)) {
        mt_error("store integrity: function %s does not match its MAC", function_id);
        return integ_fail(err, "function");
    }
    return MT_OK;
}

/* ---- task outcomes ------------------------------------------------------ */

#define RESULT_SQL                                                                                 \
    "SELECT task_id, result, failure_reason, log, result_mac FROM tasks WHERE task_id = ?"

mt_status integ_task_result_seal(mt_core *c, mt_db *mdb, const char *task_id, mt_err *err)
{
    char mac[65], stored[65];
    mt_status rc =
        row_mac(c, mdb, "mesatee-task-result/v1", RESULT_SQL, 5, task_id, mac, stored, err);
    if (!rc)
        rc = store_run(mdb, err, NULL, "UPDATE tasks SET result_mac = ? WHERE task_id = ?", mac,
                       task_id);
    return rc;
}

mt_status integ_task_result_mac(mt_core *c, const char *task_id, const char *result,
                                const char *reason, const char *log, char mac[65], mt_err *err)
{
    /* the fields RESULT_SQL reads, as fb_col takes them (NULL stays NULL) */
    fbuf b;
    fb_init(&b, "mesatee-task-result/v1");
    fb_str(&b, task_id);
    fb_str(&b, result);
    fb_str(&b, reason);
    fb_str(&b, log);
    return fb_finish(c->integ_key, &b, mac, err);
}

mt_status integ_task_result_row_check(mt_core *c, mt_db_stmt *st, const char *task_id, int id_col,
                                      int first, int mac_col, mt_err *err)
{
    /* the row's own task_id must be the one asked for (even without an
     * outcome: the caller shows the rest of the row) */
    if (mt_db_col_null(st, id_col) || strcmp(mt_db_col_text(st, id_col), task_id)) {
        mt_error("store integrity: asked for task %s, the store answered with another row",
                 task_id);
        return integ_fail(err, "task");
    }
    /* no outcome yet (or one removed: nothing to show, nothing to vouch for) */
    if (mt_db_col_null(st, first) && mt_db_col_null(st, first + 1) && mt_db_col_null(st, first + 2))
        return MT_OK;
    fbuf b;
    fb_init(&b, "mesatee-task-result/v1");
    fb_col(&b, st, id_col);
    for (int i = 0; i < 3; i++)
        fb_col(&b, st, first + i);
    char mac[65], stored[65];
    snprintf(stored, sizeof stored, "%s", mt_db_col_text(st, mac_col));
    mt_status rc = MT_OK;
    if (!fb_mac(c->integ_key, &b, mac))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory computing a MAC");
    else if (!integ_hex_equal(mac, stored)) {
        mt_error("store integrity: the outcome of task %s does not match its MAC (result, "
                 "failure reason or log edited outside mesatee)",
                 mt_db_col_text(st, id_col));
        rc = integ_fail(err, "result");
    }
    fb_free(&b);
    return rc;
}

/* ---- sealing rows written before the MACs existed ---------------------- */

/* Runs fn(c, db, id, err) for every id the query returns. */
static mt_status for_each_id(mt_core *c, mt_db *mdb, const char *sql,
                             mt_status (*fn)(mt_core *, mt_db *, const char *, mt_err *),
                             mt_err *err)
{
    json_t *ids;
    mt_status rc = store_ids(mdb, sql, NULL, &ids, err);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) if (!rc) rc = fn(c, mdb, json_string_value(v), err);
    json_decref(ids);
    return rc;
}

static mt_status seal_approvals(mt_core *c, mt_db *mdb, const char *task_id, mt_err *err)
{
    mt_db_stmt *st;
    mt_status rc =
        core_stmt_get(NULL, mdb, "SELECT approvals FROM tasks WHERE task_id = ?", &st, err);
    if (rc)
        return rc;
    mt_db_bind_text(st, 1, task_id);
    json_t *appr =
        mt_db_step(st, &rc, err) == MT_DB_ROW ? core_json_load(mt_db_col_text(st, 0)) : NULL;
    core_stmt_put(NULL, st);
    size_t i;
    json_t *v;
    json_array_foreach(appr, i, v)
    {
        if (rc)
            break;
        if (json_is_string(v))
            rc = integ_approval_seal(c, mdb, task_id, json_string_value(v), err);
    }
    json_decref(appr);
    /* a legacy task whose binding no longer holds keeps no approval: it
     * will fail its integrity check rather than run */
    if (rc == MT_EINTERNAL) {
        mt_warn("store integrity: task %s could not be sealed (%s)", task_id, err->msg);
        rc = MT_OK;
    }
    return rc;
}

mt_status integ_seal_legacy(void *core, mt_db *mdb, mt_err *err)
{
    mt_core *c = core;
    int64_t rows = 0;
    mt_status rc = store_int(mdb, err, &rows, NULL,
                             "SELECT (SELECT count(*) FROM files) + (SELECT count(*) FROM tasks) "
                             "+ (SELECT count(*) FROM audit) + (SELECT count(*) FROM users)");
    if (rc || rows == 0)
        return rc;
    /* The schema version is in the host's database: a host can make a sealed
     * store look unsealed (drop the MAC columns, delete the version rows),
     * edit it, and have this function MAC its edits. So rows are sealed as
     * they are only with the operator's explicit, measured consent. */
    if (!c->seal_legacy_store)
        return mt_err_set(err, MT_ECONFLICT,
                          "the store has rows without integrity MACs (schema version below 3: "
                          "written by a mesatee from before store integrity, or its MAC columns "
                          "were removed by someone with access to the database). If you are "
                          "upgrading, start once with --seal-legacy-store to trust its rows as "
                          "they are now (the flag is part of the measured configuration)");
    if ((rc = for_each_id(c, mdb, "SELECT username FROM users", integ_user_seal, err)) ||
        (rc = for_each_id(c, mdb, "SELECT token_hash FROM tokens", integ_token_seal, err)) ||
        (rc = for_each_id(c, mdb, "SELECT function_id FROM functions", integ_function_seal, err)) ||
        (rc = for_each_id(c, mdb, "SELECT file_id FROM files", integ_file_seal, err)) ||
        (rc = for_each_id(c, mdb, "SELECT task_id FROM tasks", integ_task_decl_seal, err)) ||
        (rc = for_each_id(c, mdb,
                          "SELECT task_id FROM tasks WHERE status IN ('data_assigned', "
                          "'approved', 'staged', 'running')",
                          seal_approvals, err)) ||
        (rc = for_each_id(c, mdb, "SELECT task_id FROM tasks", integ_task_result_seal, err)) ||
        (rc = audit_seal_legacy(c, mdb, err)))
        return rc;
    mt_info("store integrity: sealed the rows written before this version (trusted once, at "
            "this upgrade)");
    return MT_OK;
}
