/* mt_ff: streaming authenticated file format (AES-256-GCM). See mt_ff.h for
 * the contract and docs/formats.md for the byte layout.
 *
 * Implementation notes:
 *  - Every handle owns one EVP_CIPHER_CTX keyed once; each segment only
 *    resets the IV (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1)).
 *  - A segment is "last" only when the writer is finished; so both writer and
 *    reader hold back one full segment until they know more data follows.
 *  - Large inputs bypass the internal buffer (encrypt/decrypt straight from
 *    the caller's memory); the one-shot helpers seal/open each segment straight
 *    between the caller's buffer and the output (the _into variants: a
 *    caller-owned, reusable output).
 *  - AES-256-GCM and SHA-256 are fetched once per process (mt_algs.h). */
#include "mt_ff.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_algs.h"
#include "mt_util.h"

#define FF_MAGIC "MTF1"
#define FF_VERSION 1
#define FF_VERSION_BOUND 2
#define FF_SLOT_LABEL "mesatee-ff-slot"
#define FF_ALG_AES256GCM 1
#define FF_PREFIX_LEN 7
#define FF_NONCE_LEN 12
#define FF_MAX_INDEX UINT32_MAX
#define FF_KEY_ID_LABEL "mesatee-ff-key-id"
#define FF_FILE_CHUNK (1024 * 1024)
#define FF_HUGE (2u << 20)

/* ------------------------------------------------------------------------ */
/* Algorithms, fetched once                                                  */
/* ------------------------------------------------------------------------ */


/* ------------------------------------------------------------------------ */
/* Header, key id, nonces                                                    */
/* ------------------------------------------------------------------------ */

void mt_ff_key_id(const uint8_t key[MT_FF_KEY_LEN], uint8_t out[MT_FF_KEY_ID_LEN])
{
    uint8_t msg[sizeof FF_KEY_ID_LABEL - 1 + MT_FF_KEY_LEN];
    uint8_t md[32];
    unsigned int mdlen = 0;
    memcpy(msg, FF_KEY_ID_LABEL, sizeof FF_KEY_ID_LABEL - 1);
    memcpy(msg + sizeof FF_KEY_ID_LABEL - 1, key, MT_FF_KEY_LEN);
    if (EVP_Digest(msg, sizeof msg, md, &mdlen, mt_algs_sha256(), NULL) != 1 || mdlen != 32)
        abort(); /* SHA-256 unavailable: no safe way to continue */
    memcpy(out, md, MT_FF_KEY_ID_LEN);
    mt_wipe(msg, sizeof msg);
    mt_wipe(md, sizeof md);
}

static bool segment_size_valid(uint32_t s)
{
    return s >= MT_FF_MIN_SEGMENT && s <= MT_FF_MAX_SEGMENT && (s & (s - 1)) == 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

mt_status mt_ff_binding_make(const char *task_id, const char *slot, const char *file_id,
                             mt_ff_binding *out, mt_err *err)
{
    if (!task_id || !slot || !file_id || !out)
        return mt_err_set(err, MT_EINVAL, "mt_ff_binding_make: NULL argument");
    memset(out, 0, sizeof *out);
    size_t sl = strlen(slot);
    if (strlen(task_id) != 32 || strlen(file_id) != 32 || sl == 0 || sl > 128 ||
        mt_hex_decode(task_id, out->task_id, 16, NULL) != MT_OK ||
        mt_hex_decode(file_id, out->file_id, 16, NULL) != MT_OK)
        return mt_err_set(err, MT_EINVAL,
                          "an output binding needs a task id and a file id of 32 hex characters "
                          "and a slot name of 1..128 bytes");
    uint8_t msg[sizeof FF_SLOT_LABEL - 1 + 128], md[32];
    unsigned int mdlen = 0;
    memcpy(msg, FF_SLOT_LABEL, sizeof FF_SLOT_LABEL - 1);
    memcpy(msg + sizeof FF_SLOT_LABEL - 1, slot, sl);
    if (EVP_Digest(msg, sizeof FF_SLOT_LABEL - 1 + sl, md, &mdlen, mt_algs_sha256(), NULL) != 1 ||
        mdlen != 32)
        return mt_err_set(err, MT_EINTERNAL, "SHA-256 unavailable in OpenSSL");
    memcpy(out->slot_hash, md, sizeof out->slot_hash);
    return MT_OK;
}

mt_status mt_ff_binding_check(const mt_ff_header *h, const mt_ff_binding *expect, mt_err *err)
{
    if (!expect)
        return MT_OK;
    if (!h || !h->bound)
        return mt_err_set(err, MT_ECRYPTO,
                          "output binding check failed: the file is not bound to any task "
                          "output (an unbound mt_ff version 1 file), so it cannot be this "
                          "task's output");
    if (memcmp(h->binding.task_id, expect->task_id, 16) != 0)
        return mt_err_set(err, MT_ECRYPTO, "output binding check failed: the file is the "
                                           "output of another task (copied or substituted)");
    if (memcmp(h->binding.slot_hash, expect->slot_hash, 16) != 0)
        return mt_err_set(err, MT_ECRYPTO, "output binding check failed: the file is another "
                                           "output slot's output (copied or substituted)");
    if (memcmp(h->binding.file_id, expect->file_id, 16) != 0)
        return mt_err_set(err, MT_ECRYPTO, "output binding check failed: the file was written "
                                           "for another output file (copied or substituted)");
    return MT_OK;
}

static void header_encode(uint32_t segment_size, const uint8_t key_id[MT_FF_KEY_ID_LEN],
                          const uint8_t prefix[FF_PREFIX_LEN], uint8_t out[MT_FF_HEADER_LEN])
{
    memset(out, 0, MT_FF_HEADER_LEN);
    memcpy(out, FF_MAGIC, 4);
    out[4] = FF_VERSION;
    out[5] = FF_ALG_AES256GCM;
    put_be32(out + 8, segment_size);
    memcpy(out + 12, key_id, MT_FF_KEY_ID_LEN);
    memcpy(out + 28, prefix, FF_PREFIX_LEN);
}

mt_status mt_ff_header_parse(const uint8_t *buf, size_t len, mt_ff_header *out, mt_err *err)
{
    static const uint8_t zero[5] = {0};
    if (!buf || !out)
        return mt_err_set(err, MT_EINVAL, "mt_ff_header_parse: NULL argument");
    if (len < MT_FF_HEADER_LEN)
        return mt_err_set(err, MT_EINVAL,
                          "not an mt_ff file: %zu bytes, shorter than the %d-byte header", len,
                          MT_FF_HEADER_LEN);
    if (memcmp(buf, FF_MAGIC, 4) != 0)
        return mt_err_set(err, MT_EINVAL, "not an mt_ff file: bad magic (expected \"MTF1\")");
    if (buf[4] != FF_VERSION && buf[4] != FF_VERSION_BOUND)
        return mt_err_set(err, MT_EINVAL, "unsupported mt_ff version %u (this build reads 1 and 2)",
                          buf[4]);
    if (buf[4] == FF_VERSION_BOUND && len < MT_FF_HEADER_V2_LEN)
        return mt_err_set(err, MT_EINVAL,
                          "not an mt_ff file: %zu bytes, shorter than the %d-byte version 2 "
                          "header",
                          len, MT_FF_HEADER_V2_LEN);
    if (buf[5] != FF_ALG_AES256GCM)
        return mt_err_set(err, MT_EINVAL,
                          "unsupported mt_ff algorithm %u (this build reads 1 = AES-256-GCM)",
                          buf[5]);
    if (buf[6] != 0 || buf[7] != 0 || memcmp(buf + 35, zero, sizeof zero) != 0)
        return mt_err_set(err, MT_EINVAL, "malformed mt_ff header: reserved bytes are not zero");
    uint32_t seg = get_be32(buf + 8);
    if (!segment_size_valid(seg))
        return mt_err_set(err, MT_EINVAL,
                          "malformed mt_ff header: segment size %u is not a power of two in "
                          "4096..16777216",
                          seg);
    out->version = buf[4];
    out->algorithm = buf[5];
    out->segment_size = seg;
    memcpy(out->key_id, buf + 12, MT_FF_KEY_ID_LEN);
    memcpy(out->nonce_prefix, buf + 28, FF_PREFIX_LEN);
    out->bound = buf[4] == FF_VERSION_BOUND;
    out->length = out->bound ? MT_FF_HEADER_V2_LEN : MT_FF_HEADER_LEN;
    memset(&out->binding, 0, sizeof out->binding);
    if (out->bound) {
        memcpy(out->binding.task_id, buf + 40, 16);
        memcpy(out->binding.slot_hash, buf + 56, 16);
        memcpy(out->binding.file_id, buf + 72, 16);
    }
    return MT_OK;
}

/* Number of segments for a plaintext length: at least one (possibly empty). */
static uint64_t segment_count(uint64_t plain_len, uint32_t seg)
{
    return plain_len == 0 ? 1 : (plain_len + seg - 1) / seg;
}

uint64_t mt_ff_ciphertext_size(uint64_t plain_len)
{
    return MT_FF_HEADER_LEN + plain_len +
           MT_FF_TAG_LEN * segment_count(plain_len, MT_FF_DEFAULT_SEGMENT);
}

/* ------------------------------------------------------------------------ */
/* Segment crypto                                                            */
/* ------------------------------------------------------------------------ */

/* A keyed AES-256-GCM context; enc = 1 to encrypt, 0 to decrypt. NULL on failure. */
static EVP_CIPHER_CTX *ctx_new(const uint8_t key[MT_FF_KEY_LEN], int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return NULL;
    /* one init with the key (the IV length does not enter the key
     * schedule; 12 is GCM's default and is set explicitly all the same) */
    if (EVP_CipherInit_ex(ctx, mt_algs_aes256gcm(), NULL, key, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, FF_NONCE_LEN, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Seals one segment: ciphertext of len bytes to out, tag to out + len.
 * in and out must not overlap (no caller passes overlapping buffers; the
 * _into helpers refuse them: in a one-shot file each segment's output lies
 * ahead of its plaintext by the header and the tags before it, so an
 * overlap would seal plaintext already overwritten with ciphertext). hdr
 * (AAD and nonce prefix) must be the caller's own copy, never memory that
 * someone else can write (see encrypt_to). Returns false only on an
 * OpenSSL failure. */
static bool seg_seal(EVP_CIPHER_CTX *ctx, const uint8_t *hdr, size_t hdr_len, uint64_t index,
                     bool last, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t iv[FF_NONCE_LEN];
    int n = 0, f = 0;
    memcpy(iv, hdr + 28, FF_PREFIX_LEN);
    put_be32(iv + FF_PREFIX_LEN, (uint32_t)index);
    iv[11] = last ? 1 : 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, hdr, (int)hdr_len) != 1)
        return false;
    if (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
        return false;
    if (EVP_CipherFinal_ex(ctx, out + len, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MT_FF_TAG_LEN, out + len) != 1)
        return false;
    return true;
}

/* Opens one segment of ct_len bytes (ciphertext + tag) into out (ct_len - 16
 * bytes); ct and out must not overlap, hdr must be the caller's own copy (as
 * for seg_seal). Returns false if authentication fails; out is then wiped. */
static bool seg_open(EVP_CIPHER_CTX *ctx, const uint8_t *hdr, size_t hdr_len, uint64_t index,
                     bool last, const uint8_t *ct, size_t ct_len, uint8_t *out)
{
    uint8_t iv[FF_NONCE_LEN], tag[MT_FF_TAG_LEN];
    size_t len = ct_len - MT_FF_TAG_LEN;
    int n = 0, f = 0;
    memcpy(iv, hdr + 28, FF_PREFIX_LEN);
    put_be32(iv + FF_PREFIX_LEN, (uint32_t)index);
    iv[11] = last ? 1 : 0;
    memcpy(tag, ct + len, MT_FF_TAG_LEN);
    bool ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) == 1 &&
              EVP_CipherUpdate(ctx, NULL, &n, hdr, (int)hdr_len) == 1 &&
              (len == 0 || EVP_CipherUpdate(ctx, out, &n, ct, (int)len) == 1) &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MT_FF_TAG_LEN, tag) == 1 &&
              EVP_CipherFinal_ex(ctx, out + len, &f) == 1;
    if (!ok)
        mt_wipe(out, len);
    return ok;
}

static mt_status decrypt_failed(mt_err *err, uint64_t index, const char *why)
{
    return mt_err_set(err, MT_ECRYPTO, "decryption failed at segment %llu%s",
                      (unsigned long long)index, why);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

struct mt_ff_writer {
    EVP_CIPHER_CTX *ctx;
    mt_ff_sink sink;
    void *sink_ctx;
    uint8_t header[MT_FF_HEADER_MAX];
    size_t header_len;
    uint32_t seg;
    uint64_t index; /* index of the next segment */
    uint8_t *buf;   /* plaintext held back: buf_len <= seg */
    size_t buf_len;
    uint8_t *out; /* seg + tag: one sealed segment */
    bool header_sent, finished, failed;
};

mt_status mt_ff_writer_new_segment(const uint8_t key[MT_FF_KEY_LEN], uint32_t segment_size,
                                   mt_ff_sink sink, void *ctx, mt_ff_writer **out, mt_err *err)
{
    if (!key || !sink || !out)
        return mt_err_set(err, MT_EINVAL, "mt_ff_writer_new: NULL argument");
    *out = NULL;
    if (!segment_size_valid(segment_size))
        return mt_err_set(err, MT_EINVAL, "segment size %u is not a power of two in 4096..16777216",
                          segment_size);
    mt_ff_writer *w = calloc(1, sizeof *w);
    if (!w)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    uint8_t key_id[MT_FF_KEY_ID_LEN], prefix[FF_PREFIX_LEN];
    mt_status st = mt_random(prefix, sizeof prefix, err);
    if (st != MT_OK)
        goto out;
    mt_ff_key_id(key, key_id);
    header_encode(segment_size, key_id, prefix, w->header);
    w->header_len = MT_FF_HEADER_LEN;
    w->seg = segment_size;
    w->sink = sink;
    w->sink_ctx = ctx;
    w->buf = malloc(segment_size);
    w->out = malloc((size_t)segment_size + MT_FF_TAG_LEN);
    if (!w->buf || !w->out) {
        st =
            mt_err_set(err, MT_ENOMEM, "out of memory (segment buffers of %u bytes)", segment_size);
        goto out;
    }
    w->ctx = ctx_new(key, 1);
    if (!w->ctx) {
        st = mt_err_set(err, MT_EINTERNAL, "AES-256-GCM unavailable in OpenSSL");
        goto out;
    }
    *out = w;
    w = NULL;
out:
    mt_ff_writer_free(w);
    return st;
}

mt_status mt_ff_writer_new(const uint8_t key[MT_FF_KEY_LEN], mt_ff_sink sink, void *ctx,
                           mt_ff_writer **out, mt_err *err)
{
    return mt_ff_writer_new_segment(key, MT_FF_DEFAULT_SEGMENT, sink, ctx, out, err);
}

static mt_status writer_sink(mt_ff_writer *w, const uint8_t *buf, size_t len, mt_err *err)
{
    mt_status st = w->sink(w->sink_ctx, buf, len, err);
    if (st != MT_OK)
        w->failed = true;
    return st;
}

static mt_status writer_header(mt_ff_writer *w, mt_err *err)
{
    if (w->header_sent)
        return MT_OK;
    w->header_sent = true;
    return writer_sink(w, w->header, w->header_len, err);
}

mt_status mt_ff_writer_bind(mt_ff_writer *w, const mt_ff_binding *b, mt_err *err)
{
    if (!w || !b)
        return mt_err_set(err, MT_EINVAL, "mt_ff_writer_bind: NULL argument");
    if (w->header_sent || w->failed || w->finished)
        return mt_err_set(err, MT_EINVAL, "mt_ff_writer_bind: the header is already written");
    w->header[4] = FF_VERSION_BOUND;
    memcpy(w->header + 40, b->task_id, 16);
    memcpy(w->header + 56, b->slot_hash, 16);
    memcpy(w->header + 72, b->file_id, 16);
    w->header_len = MT_FF_HEADER_V2_LEN;
    return MT_OK;
}

/* Seals len (<= seg) plaintext bytes as the next segment and hands it to the sink. */
static mt_status writer_emit(mt_ff_writer *w, const uint8_t *in, size_t len, bool last, mt_err *err)
{
    if (w->index > FF_MAX_INDEX) {
        w->failed = true;
        return mt_err_set(err, MT_ETOOBIG,
                          "plaintext too large: mt_ff allows at most 2^32 segments");
    }
    if (!seg_seal(w->ctx, w->header, w->header_len, w->index, last, in, len, w->out)) {
        w->failed = true;
        return mt_err_set(err, MT_EINTERNAL, "AES-256-GCM encryption failed in OpenSSL");
    }
    w->index++;
    return writer_sink(w, w->out, len + MT_FF_TAG_LEN, err);
}

static mt_status writer_usable(mt_ff_writer *w, mt_err *err)
{
    if (!w)
        return mt_err_set(err, MT_EINVAL, "mt_ff writer is NULL");
    if (w->failed)
        return mt_err_set(err, MT_EINVAL, "mt_ff writer failed earlier; start a new one");
    if (w->finished)
        return mt_err_set(err, MT_EINVAL, "mt_ff writer is already finished");
    return MT_OK;
}

mt_status mt_ff_writer_write(mt_ff_writer *w, const uint8_t *buf, size_t len, mt_err *err)
{
    mt_status st = writer_usable(w, err);
    if (st != MT_OK)
        return st;
    if (!buf && len)
        return mt_err_set(err, MT_EINVAL, "mt_ff_writer_write: NULL buffer");
    if (len == 0)
        return MT_OK;
    if ((st = writer_header(w, err)) != MT_OK)
        return st;
    while (len > 0) {
        /* A full held-back segment is not the last one: more data follows. */
        if (w->buf_len == w->seg) {
            if ((st = writer_emit(w, w->buf, w->seg, false, err)) != MT_OK)
                return st;
            w->buf_len = 0;
        }
        if (w->buf_len == 0 && len > w->seg) {
            if ((st = writer_emit(w, buf, w->seg, false, err)) != MT_OK)
                return st;
            buf += w->seg;
            len -= w->seg;
            continue;
        }
        size_t n = w->seg - w->buf_len;
        if (n > len)
            n = len;
        memcpy(w->buf + w->buf_len, buf, n);
        w->buf_len += n;
        buf += n;
        len -= n;
    }
    return MT_OK;
}

mt_status mt_ff_writer_finish(mt_ff_writer *w, mt_err *err)
{
    mt_status st = writer_usable(w, err);
    if (st != MT_OK)
        return st;
    if ((st = writer_header(w, err)) != MT_OK)
        return st;
    st = writer_emit(w, w->buf, w->buf_len, true, err);
    mt_wipe(w->buf, w->buf_len);
    w->buf_len = 0;
    w->finished = true;
    return st;
}

void mt_ff_writer_free(mt_ff_writer *w)
{
    if (!w)
        return;
    EVP_CIPHER_CTX_free(w->ctx); /* cleanses the key schedule */
    if (w->buf) {
        mt_wipe(w->buf, w->seg);
        free(w->buf);
    }
    free(w->out); /* ciphertext only */
    mt_wipe(w, sizeof *w);
    free(w);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

struct mt_ff_reader {
    EVP_CIPHER_CTX *ctx;
    mt_ff_sink sink;
    void *sink_ctx;
    uint8_t key_id[MT_FF_KEY_ID_LEN];
    uint8_t header[MT_FF_HEADER_MAX];
    size_t header_len;
    size_t header_need; /* 40 until the version byte says 88 */
    bool has_expect;
    mt_ff_binding expect;
    size_t seg;    /* plaintext bytes of a full segment */
    size_t seg_ct; /* seg + tag */
    uint8_t *buf;  /* ciphertext held back: buf_len <= seg_ct */
    size_t buf_len;
    uint8_t *plain; /* seg bytes: verified plaintext of one segment */
    uint8_t *out;   /* mt_ff_reader_into: the caller's buffer, or NULL */
    size_t out_cap, out_len;
    uint64_t index;
    mt_status fail_code;
    bool finished;
};

mt_status mt_ff_reader_new(const uint8_t key[MT_FF_KEY_LEN], mt_ff_sink sink, void *ctx,
                           mt_ff_reader **out, mt_err *err)
{
    if (!key || !sink || !out)
        return mt_err_set(err, MT_EINVAL, "mt_ff_reader_new: NULL argument");
    *out = NULL;
    mt_ff_reader *r = calloc(1, sizeof *r);
    if (!r)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    r->ctx = ctx_new(key, 0);
    if (!r->ctx) {
        free(r);
        return mt_err_set(err, MT_EINTERNAL, "AES-256-GCM unavailable in OpenSSL");
    }
    mt_ff_key_id(key, r->key_id);
    r->header_need = MT_FF_HEADER_LEN;
    r->sink = sink;
    r->sink_ctx = ctx;
    *out = r;
    return MT_OK;
}

void mt_ff_reader_expect(mt_ff_reader *r, const mt_ff_binding *b)
{
    if (!r)
        return;
    r->has_expect = b != NULL;
    if (b)
        r->expect = *b;
}

static mt_status reader_fail(mt_ff_reader *r, mt_status st)
{
    if (st != MT_OK && r->fail_code == MT_OK)
        r->fail_code = st;
    return st;
}

/* Validates the completed header and allocates the segment buffers. */
static mt_status reader_start(mt_ff_reader *r, mt_err *err)
{
    mt_ff_header h;
    mt_status st = mt_ff_header_parse(r->header, r->header_len, &h, err);
    if (st != MT_OK)
        return st;
    if (!mt_ct_equal(h.key_id, r->key_id, MT_FF_KEY_ID_LEN))
        return mt_err_set(err, MT_ECRYPTO, "wrong key (key id mismatch)");
    if (r->has_expect && (st = mt_ff_binding_check(&h, &r->expect, err)) != MT_OK)
        return st;
    r->seg = h.segment_size;
    r->seg_ct = r->seg + MT_FF_TAG_LEN;
    r->buf = malloc(r->seg_ct);
    r->plain = malloc(r->seg);
    if (!r->buf || !r->plain)
        return mt_err_set(err, MT_ENOMEM, "out of memory (segment buffers of %zu bytes)", r->seg);
    return MT_OK;
}

/* Authenticates one segment and only then hands its plaintext to the sink. */
static mt_status reader_open(mt_ff_reader *r, const uint8_t *ct, size_t ct_len, bool last,
                             mt_err *err)
{
    if (r->index > FF_MAX_INDEX)
        return decrypt_failed(err, r->index, " (more than 2^32 segments)");
    size_t len = ct_len - MT_FF_TAG_LEN;
    if (r->out && len > r->out_cap - r->out_len)
        return mt_err_set(err, MT_ETOOBIG, "mt_ff reader: plaintext over the %zu-byte buffer",
                          r->out_cap);
    /* seg_open wipes what it wrote when the tag does not match */
    uint8_t *dst = r->out ? r->out + r->out_len : r->plain;
    if (!seg_open(r->ctx, r->header, r->header_len, r->index, last, ct, ct_len, dst))
        return decrypt_failed(err, r->index, "");
    r->index++;
    if (r->out) {
        r->out_len += len;
        return MT_OK;
    }
    return r->sink(r->sink_ctx, r->plain, len, err);
}

mt_status mt_ff_reader_into(mt_ff_reader *r, uint8_t *out, size_t cap, mt_err *err)
{
    if (!r || !out)
        return mt_err_set(err, MT_EINVAL, "mt_ff_reader_into: NULL argument");
    if (r->header_len || r->index || r->fail_code != MT_OK || r->finished)
        return mt_err_set(err, MT_EINVAL, "mt_ff_reader_into: the reader was already fed");
    r->out = out;
    r->out_cap = cap;
    r->out_len = 0;
    return MT_OK;
}

size_t mt_ff_reader_out_len(const mt_ff_reader *r)
{
    return r ? r->out_len : 0;
}

static mt_status reader_usable(mt_ff_reader *r, mt_err *err)
{
    if (!r)
        return mt_err_set(err, MT_EINVAL, "mt_ff reader is NULL");
    if (r->fail_code != MT_OK)
        return mt_err_set(err, r->fail_code, "mt_ff reader failed earlier; start a new one");
    if (r->finished)
        return mt_err_set(err, MT_EINVAL, "mt_ff reader is already finished");
    return MT_OK;
}

mt_status mt_ff_reader_feed(mt_ff_reader *r, const uint8_t *buf, size_t len, mt_err *err)
{
    mt_status st = reader_usable(r, err);
    if (st != MT_OK)
        return st;
    if (!buf && len)
        return mt_err_set(err, MT_EINVAL, "mt_ff_reader_feed: NULL buffer");
    if (len == 0)
        return MT_OK;
    while (r->header_len < r->header_need) {
        size_t n = r->header_need - r->header_len;
        if (n > len)
            n = len;
        memcpy(r->header + r->header_len, buf, n);
        r->header_len += n;
        buf += n;
        len -= n;
        if (r->header_len < r->header_need)
            return MT_OK;
        /* a version 2 header continues with the binding */
        if (r->header_need == MT_FF_HEADER_LEN && r->header[4] == FF_VERSION_BOUND &&
            memcmp(r->header, FF_MAGIC, 4) == 0) {
            r->header_need = MT_FF_HEADER_V2_LEN;
            continue;
        }
        if ((st = reader_start(r, err)) != MT_OK)
            return reader_fail(r, st);
    }
    while (len > 0) {
        /* A full held-back segment followed by more bytes is not the last one. */
        if (r->buf_len == r->seg_ct) {
            if ((st = reader_open(r, r->buf, r->seg_ct, false, err)) != MT_OK)
                return reader_fail(r, st);
            r->buf_len = 0;
        }
        if (r->buf_len == 0 && len > r->seg_ct) {
            if ((st = reader_open(r, buf, r->seg_ct, false, err)) != MT_OK)
                return reader_fail(r, st);
            buf += r->seg_ct;
            len -= r->seg_ct;
            continue;
        }
        size_t n = r->seg_ct - r->buf_len;
        if (n > len)
            n = len;
        memcpy(r->buf + r->buf_len, buf, n);
        r->buf_len += n;
        buf += n;
        len -= n;
    }
    return MT_OK;
}

mt_status mt_ff_reader_finish(mt_ff_reader *r, mt_err *err)
{
    mt_status st = reader_usable(r, err);
    if (st != MT_OK)
        return st;
    if (r->header_len < r->header_need)
        return reader_fail(r, mt_err_set(err, MT_EINVAL,
                                         "not an mt_ff file: %zu bytes, shorter than the "
                                         "%zu-byte header",
                                         r->header_len, r->header_need));
    if (r->buf_len < MT_FF_TAG_LEN)
        return reader_fail(r, decrypt_failed(err, r->index, " (truncated)"));
    st = reader_open(r, r->buf, r->buf_len, true, err);
    if (st != MT_OK)
        return reader_fail(r, st);
    r->finished = true;
    return MT_OK;
}

void mt_ff_reader_free(mt_ff_reader *r)
{
    if (!r)
        return;
    EVP_CIPHER_CTX_free(r->ctx);
    if (r->plain) {
        mt_wipe(r->plain, r->seg);
        free(r->plain);
    }
    free(r->buf); /* ciphertext only */
    mt_wipe(r, sizeof *r);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* One-shot helpers                                                          */
/* ------------------------------------------------------------------------ */

/* Heap buffer for a one-shot result, freed by the caller with free(). Large
 * buffers are 2 MiB-aligned and advised as transparent huge pages: first-touch
 * page faults otherwise cost as much as the AES-GCM work itself. */
static uint8_t *alloc_result(size_t len)
{
    if (len < 2 * FF_HUGE)
        return malloc(len ? len : 1);
    if (len > SIZE_MAX - FF_HUGE)
        return NULL;
    size_t rounded = (len + FF_HUGE - 1) / FF_HUGE * FF_HUGE;
    uint8_t *p = aligned_alloc(FF_HUGE, rounded);
    if (p)
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* advisory: failure is harmless */
    return p;
}

/* Whether [a, a + alen) and [b, b + blen) share a byte (no pointer
 * arithmetic past either range). */
static bool ranges_overlap(const void *a, size_t alen, const void *b, size_t blen)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    if (alen == 0 || blen == 0)
        return false;
    return x <= y ? y - x < alen : x - y < blen;
}

/* Ciphertext length of a len-byte plaintext in default segments; MT_ETOOBIG
 * when it would exceed 2^32 segments or SIZE_MAX. */
static mt_status encrypt_size(size_t len, uint64_t *nseg, size_t *total, mt_err *err)
{
    *nseg = segment_count(len, MT_FF_DEFAULT_SEGMENT);
    if (*nseg - 1 > FF_MAX_INDEX)
        return mt_err_set(err, MT_ETOOBIG, "plaintext too large: at most 2^32 segments");
    if (len > SIZE_MAX - MT_FF_HEADER_LEN - MT_FF_TAG_LEN * *nseg)
        return mt_err_set(err, MT_ETOOBIG, "plaintext too large for memory");
    *total = MT_FF_HEADER_LEN + len + (size_t)(MT_FF_TAG_LEN * *nseg);
    return MT_OK;
}

/* Seals plain into out (total bytes, checked by the caller): header, then
 * each segment straight from the caller's plaintext into its place. The
 * header (AAD and nonce prefix of every segment) is sealed from a local
 * copy, never re-read from out: the caller's buffer may be written by
 * someone else meanwhile (or map the same memory twice), and a nonce prefix
 * read back from it could repeat another file's (nonce reuse). */
static mt_status encrypt_to(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *plain, size_t len,
                            uint64_t nseg, uint8_t *out, mt_err *err)
{
    const uint32_t seg = MT_FF_DEFAULT_SEGMENT;
    uint8_t prefix[FF_PREFIX_LEN], key_id[MT_FF_KEY_ID_LEN];
    mt_status st = mt_random(prefix, sizeof prefix, err);
    if (st != MT_OK)
        return st;
    EVP_CIPHER_CTX *ctx = ctx_new(key, 1);
    if (!ctx)
        return mt_err_set(err, MT_EINTERNAL, "AES-256-GCM unavailable in OpenSSL");
    uint8_t hdr[MT_FF_HEADER_LEN];
    mt_ff_key_id(key, key_id);
    header_encode(seg, key_id, prefix, hdr);
    memcpy(out, hdr, sizeof hdr);
    uint8_t *o = out + MT_FF_HEADER_LEN;
    for (uint64_t i = 0; i < nseg; i++) {
        size_t n = (i + 1 < nseg) ? seg : len - (size_t)(i * seg);
        const uint8_t *in = plain ? plain + (size_t)(i * seg) : NULL;
        if (!seg_seal(ctx, hdr, sizeof hdr, i, i + 1 == nseg, in, n, o)) {
            EVP_CIPHER_CTX_free(ctx);
            return mt_err_set(err, MT_EINTERNAL, "AES-256-GCM encryption failed in OpenSSL");
        }
        o += n + MT_FF_TAG_LEN;
    }
    EVP_CIPHER_CTX_free(ctx);
    return MT_OK;
}

mt_status mt_ff_encrypt(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *plain, size_t len,
                        uint8_t **out, size_t *out_len, mt_err *err)
{
    if (!key || (!plain && len) || !out || !out_len)
        return mt_err_set(err, MT_EINVAL, "mt_ff_encrypt: NULL argument");
    *out = NULL;
    *out_len = 0;
    uint64_t nseg = 0;
    size_t total = 0;
    mt_status st = encrypt_size(len, &nseg, &total, err);
    if (st != MT_OK)
        return st;
    uint8_t *buf = alloc_result(total);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory (%zu bytes of ciphertext)", total);
    if ((st = encrypt_to(key, plain, len, nseg, buf, err)) != MT_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = total;
    return MT_OK;
}

mt_status mt_ff_encrypt_into(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *plain, size_t len,
                             uint8_t *out, size_t cap, size_t *out_len, mt_err *err)
{
    if (!key || (!plain && len) || !out || !out_len)
        return mt_err_set(err, MT_EINVAL, "mt_ff_encrypt_into: NULL argument");
    *out_len = 0;
    if (ranges_overlap(plain, len, out, cap))
        return mt_err_set(err, MT_EINVAL,
                          "mt_ff_encrypt_into: the plaintext overlaps the output buffer "
                          "(in-place encryption is not supported: use separate buffers)");
    uint64_t nseg = 0;
    size_t total = 0;
    mt_status st = encrypt_size(len, &nseg, &total, err);
    if (st != MT_OK)
        return st;
    if (cap < total)
        return mt_err_set(err, MT_ETOOBIG,
                          "mt_ff_encrypt_into: %zu bytes of ciphertext do not fit in %zu", total,
                          cap);
    if ((st = encrypt_to(key, plain, len, nseg, out, err)) != MT_OK)
        return st;
    *out_len = total;
    return MT_OK;
}

/* Checks a whole ciphertext's header and key and derives its segment layout
 * from the length alone: full segments, then a last one of 0..seg plaintext
 * bytes (a full last one if rem == 0). The header is copied to hdr once and
 * parsed there; decrypt_to opens every segment with that copy as AAD and
 * nonce prefix, never with ct's bytes again (ct may be mapped or shared
 * memory that changes between two reads). */
static mt_status decrypt_layout(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *ct, size_t len,
                                uint8_t hdr[MT_FF_HEADER_MAX], mt_ff_header *h, size_t *nseg,
                                size_t *plain_len, mt_err *err)
{
    size_t hlen = len < MT_FF_HEADER_MAX ? len : MT_FF_HEADER_MAX;
    if (hlen)
        memcpy(hdr, ct, hlen);
    mt_status st = mt_ff_header_parse(hdr, hlen, h, err);
    if (st != MT_OK)
        return st;
    uint8_t key_id[MT_FF_KEY_ID_LEN];
    mt_ff_key_id(key, key_id);
    if (!mt_ct_equal(key_id, h->key_id, MT_FF_KEY_ID_LEN))
        return mt_err_set(err, MT_ECRYPTO, "wrong key (key id mismatch)");
    size_t body = len - h->length, sc = (size_t)h->segment_size + MT_FF_TAG_LEN;
    size_t nfull = body / sc, rem = body % sc;
    if (rem == 0) {
        if (nfull == 0)
            return decrypt_failed(err, 0, " (truncated)");
        *nseg = nfull;
    } else {
        if (rem < MT_FF_TAG_LEN)
            return decrypt_failed(err, nfull, " (truncated)");
        *nseg = nfull + 1;
    }
    if ((uint64_t)*nseg - 1 > FF_MAX_INDEX)
        return decrypt_failed(err, (uint64_t)FF_MAX_INDEX + 1, " (more than 2^32 segments)");
    *plain_len = body - MT_FF_TAG_LEN * *nseg;
    return MT_OK;
}

/* Opens every segment of ct straight into out (plain_len bytes, checked by
 * the caller), with decrypt_layout's header copy hdr as AAD and nonce
 * prefix. On failure all of out[0..plain_len) is wiped. */
static mt_status decrypt_to(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *ct, size_t len,
                            const uint8_t *hdr, const mt_ff_header *h, size_t nseg, uint8_t *out,
                            size_t plain_len, mt_err *err)
{
    size_t body = len - h->length, seg = h->segment_size, sc = seg + MT_FF_TAG_LEN;
    EVP_CIPHER_CTX *ctx = ctx_new(key, 0);
    if (!ctx)
        return mt_err_set(err, MT_EINTERNAL, "AES-256-GCM unavailable in OpenSSL");
    mt_status st = MT_OK;
    const uint8_t *c = ct + h->length;
    for (size_t i = 0; i < nseg; i++) {
        size_t clen = (i + 1 < nseg) ? sc : body - i * sc;
        if (!seg_open(ctx, hdr, h->length, i, i + 1 == nseg, c, clen, out + i * seg)) {
            st = decrypt_failed(err, i, "");
            mt_wipe(out, plain_len);
            break;
        }
        c += clen;
    }
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

mt_status mt_ff_decrypt(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *ct, size_t len,
                        uint8_t **out, size_t *out_len, mt_err *err)
{
    if (!key || (!ct && len) || !out || !out_len)
        return mt_err_set(err, MT_EINVAL, "mt_ff_decrypt: NULL argument");
    *out = NULL;
    *out_len = 0;
    uint8_t hdr[MT_FF_HEADER_MAX];
    mt_ff_header h;
    size_t nseg = 0, plain_len = 0;
    mt_status st = decrypt_layout(key, ct, len, hdr, &h, &nseg, &plain_len, err);
    if (st != MT_OK)
        return st;
    uint8_t *buf = alloc_result(plain_len);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory (%zu bytes of plaintext)", plain_len);
    if ((st = decrypt_to(key, ct, len, hdr, &h, nseg, buf, plain_len, err)) != MT_OK) {
        free(buf); /* wiped by decrypt_to */
        return st;
    }
    *out = buf;
    *out_len = plain_len;
    return MT_OK;
}

mt_status mt_ff_decrypt_into(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *ct, size_t len,
                             uint8_t *out, size_t cap, size_t *out_len, mt_err *err)
{
    if (!key || (!ct && len) || !out || !out_len)
        return mt_err_set(err, MT_EINVAL, "mt_ff_decrypt_into: NULL argument");
    *out_len = 0;
    if (ranges_overlap(ct, len, out, cap))
        return mt_err_set(err, MT_EINVAL,
                          "mt_ff_decrypt_into: the ciphertext overlaps the output buffer "
                          "(in-place decryption is not supported: use separate buffers)");
    uint8_t hdr[MT_FF_HEADER_MAX];
    mt_ff_header h;
    size_t nseg = 0, plain_len = 0;
    mt_status st = decrypt_layout(key, ct, len, hdr, &h, &nseg, &plain_len, err);
    if (st == MT_OK && cap < plain_len)
        st = mt_err_set(err, MT_ETOOBIG,
                        "mt_ff_decrypt_into: %zu bytes of plaintext do not fit in %zu", plain_len,
                        cap);
    if (st == MT_OK && (st = decrypt_to(key, ct, len, hdr, &h, nseg, out, plain_len, err)) == MT_OK)
        *out_len = plain_len;
    else /* the contract in mt_ff.h: every byte a plaintext could occupy */
        mt_wipe(out, cap < len ? cap : len);
    return st;
}

/* ------------------------------------------------------------------------ */
/* File helpers                                                              */
/* ------------------------------------------------------------------------ */

struct fd_sink {
    int fd;
    const char *path;
};

static mt_status fd_sink_write(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    struct fd_sink *s = ctx;
    while (len > 0) {
        ssize_t w = write(s->fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return mt_err_set(err, MT_EIO, "write to %s failed: %s", s->path,
                              w < 0 ? strerror(errno) : "no progress");
        buf += w;
        len -= (size_t)w;
    }
    return MT_OK;
}

/* Streams in_path through a writer (encrypt) or a reader (decrypt) into a
 * private temporary file next to out_path, then fsyncs and renames it into
 * place. On any failure the temporary file is removed and out_path untouched. */
static mt_status stream_file(const uint8_t key[MT_FF_KEY_LEN], bool encrypt, const char *in_path,
                             const char *out_path, const mt_ff_binding *expect, mt_err *err)
{
    if (!key || !in_path || !out_path)
        return mt_err_set(err, MT_EINVAL, "mt_ff file helper: NULL argument");
    char tmp[PATH_MAX];
    mt_status st;
    int in = open(in_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return mt_err_set(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO, "cannot open %s: %s",
                          in_path, strerror(errno));
    int fd = -1;
    if ((st = mt_tmpfile_open(out_path, 0600, tmp, sizeof tmp, &fd, err)) != MT_OK) {
        close(in);
        return st;
    }
    struct fd_sink sink = {fd, tmp};
    mt_ff_writer *w = NULL;
    mt_ff_reader *r = NULL;
    uint8_t *chunk = malloc(FF_FILE_CHUNK);
    if (!chunk) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    st = encrypt ? mt_ff_writer_new(key, fd_sink_write, &sink, &w, err)
                 : mt_ff_reader_new(key, fd_sink_write, &sink, &r, err);
    if (st != MT_OK)
        goto out;
    if (r && expect)
        mt_ff_reader_expect(r, expect);
    for (;;) {
        ssize_t n = read(in, chunk, FF_FILE_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = mt_err_set(err, MT_EIO, "read %s failed: %s", in_path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        st = encrypt ? mt_ff_writer_write(w, chunk, (size_t)n, err)
                     : mt_ff_reader_feed(r, chunk, (size_t)n, err);
        if (st != MT_OK)
            goto out;
    }
    st = encrypt ? mt_ff_writer_finish(w, err) : mt_ff_reader_finish(r, err);
    if (st != MT_OK)
        goto out;
    st = mt_tmpfile_publish(fd, tmp, out_path, err); /* closes fd; removes tmp on failure */
    fd = -1;
out:
    if (chunk) {
        mt_wipe(chunk, FF_FILE_CHUNK);
        free(chunk);
    }
    mt_ff_writer_free(w);
    mt_ff_reader_free(r);
    close(in);
    if (fd >= 0)
        close(fd);
    if (st != MT_OK)
        unlink(tmp); /* after a successful rename tmp no longer exists */
    return st;
}

mt_status mt_ff_encrypt_file(const uint8_t key[MT_FF_KEY_LEN], const char *in_path,
                             const char *out_path, mt_err *err)
{
    return stream_file(key, true, in_path, out_path, NULL, err);
}

mt_status mt_ff_decrypt_file(const uint8_t key[MT_FF_KEY_LEN], const char *in_path,
                             const char *out_path, mt_err *err)
{
    return stream_file(key, false, in_path, out_path, NULL, err);
}

mt_status mt_ff_decrypt_file_bound(const uint8_t key[MT_FF_KEY_LEN], const char *in_path,
                                   const char *out_path, const mt_ff_binding *expect, mt_err *err)
{
    return stream_file(key, false, in_path, out_path, expect, err);
}
