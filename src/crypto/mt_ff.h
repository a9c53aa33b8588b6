/* mt_ff: mesatee's authenticated, chunked streaming file format (AES-256-GCM).
 * Specified in docs/formats.md. Header: magic "MTF1", version, algorithm,
 * segment size, key id, per-file random nonce prefix; the header is the AAD
 * of every segment. Segment i's nonce = prefix(7) || i (u32 BE) || last-flag.
 * Detects truncation, extension, reordering, bit flips, and segments swapped
 * between files or keys. Version 2 adds an authenticated output binding
 * (task, slot, file) after the version 1 fields; readers accept both.
 *
 * Ownership: writer/reader handles from _new are freed with _free (NULL ok);
 * they wipe key material on free. Buffers returned by the one-shot helpers are
 * heap memory the caller frees.
 * Errors: every decrypt failure is MT_ECRYPTO with message "decryption failed"
 * plus at most the segment index; a wrong key is reported as MT_ECRYPTO
 * "wrong key (key id mismatch)" from the header check. Malformed headers are
 * MT_EINVAL.
 * Thread-safety: a handle is used by one thread at a time. */
#ifndef MT_FF_H
#define MT_FF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_FF_KEY_LEN 32
#define MT_FF_KEY_ID_LEN 16
#define MT_FF_HEADER_LEN 40      /* version 1 header; the shortest header */
#define MT_FF_HEADER_V2_LEN 88   /* version 2: version 1 fields + binding (48) */
#define MT_FF_HEADER_MAX MT_FF_HEADER_V2_LEN
#define MT_FF_BINDING_LEN 48
#define MT_FF_TAG_LEN 16
#define MT_FF_DEFAULT_SEGMENT (64 * 1024)
#define MT_FF_MIN_SEGMENT 4096
#define MT_FF_MAX_SEGMENT (16 * 1024 * 1024)

/* Output binding (format version 2): which task, output slot and file an
 * output was written for. Carried in clear in the header and authenticated as
 * part of the AAD of every segment, so an output copied onto another task's,
 * slot's or file's object is recognised (docs/formats.md 1.6). */
typedef struct mt_ff_binding {
    uint8_t task_id[16];   /* the task id's 32 hex characters, decoded */
    uint8_t slot_hash[16]; /* SHA-256("mesatee-ff-slot" || slot)[0..16] */
    uint8_t file_id[16];   /* the output file id, decoded */
} mt_ff_binding;

typedef struct mt_ff_header {
    uint8_t version;       /* 1 (unbound) or 2 (bound to a task output) */
    uint8_t algorithm;
    uint32_t segment_size;
    uint8_t key_id[MT_FF_KEY_ID_LEN];
    uint8_t nonce_prefix[7];
    size_t length;         /* header bytes: MT_FF_HEADER_LEN or MT_FF_HEADER_V2_LEN */
    bool bound;            /* version 2 */
    mt_ff_binding binding; /* when bound */
} mt_ff_header;

/* Fills a binding from a task id and a file id (32 hex characters each) and
 * a slot name (1..128 bytes). MT_EINVAL when an id is not 32 hex characters. */
mt_status mt_ff_binding_make(const char *task_id, const char *slot, const char *file_id,
                             mt_ff_binding *out, mt_err *err);

/* Compares a file's header with what the caller expects. expect NULL: any
 * header is fine. Otherwise the file must be bound (version 2) with the same
 * task, slot and file; MT_ECRYPTO names the first field that differs ("the
 * output of another task" ...) or says the file is not bound. The message
 * carries no bytes of the file. */
mt_status mt_ff_binding_check(const mt_ff_header *h, const mt_ff_binding *expect, mt_err *err);

/* Key id: first 16 bytes of SHA-256("mesatee-ff-key-id" || key). */
void mt_ff_key_id(const uint8_t key[MT_FF_KEY_LEN], uint8_t out[MT_FF_KEY_ID_LEN]);

/* Parses and validates the header at the start of buf (len >= the header's
 * length: 40 bytes for version 1, 88 for version 2; later bytes are ignored).
 * out->length tells how many bytes the header took. */
mt_status mt_ff_header_parse(const uint8_t *buf, size_t len, mt_ff_header *out, mt_err *err);

/* Ciphertext size for a plaintext of plain_len bytes with the default segment. */
uint64_t mt_ff_ciphertext_size(uint64_t plain_len);

/* Streaming writer. sink receives ciphertext bytes in order; a non-MT_OK
 * return aborts. */
typedef mt_status (*mt_ff_sink)(void *ctx, const uint8_t *buf, size_t len, mt_err *err);
typedef struct mt_ff_writer mt_ff_writer;
mt_status mt_ff_writer_new(const uint8_t key[MT_FF_KEY_LEN], mt_ff_sink sink, void *ctx,
                           mt_ff_writer **out, mt_err *err);
/* Like mt_ff_writer_new with a chosen segment size (a power of two in
 * 4096..16 MiB; MT_EINVAL otherwise). Small segments suit tests and tiny files. */
mt_status mt_ff_writer_new_segment(const uint8_t key[MT_FF_KEY_LEN], uint32_t segment_size,
                                   mt_ff_sink sink, void *ctx, mt_ff_writer **out, mt_err *err);
/* Makes the writer produce a version-2 file bound to b. Must be called before
 * the first write or finish (MT_EINVAL afterwards). */
mt_status mt_ff_writer_bind(mt_ff_writer *w, const mt_ff_binding *b, mt_err *err);
mt_status mt_ff_writer_write(mt_ff_writer *w, const uint8_t *buf, size_t len, mt_err *err);
/* Writes the last segment. Must be called exactly once. */
mt_status mt_ff_writer_finish(mt_ff_writer *w, mt_err *err);
void mt_ff_writer_free(mt_ff_writer *w);

/* Streaming reader: feed ciphertext in any chunking; plaintext goes to sink
 * only after each segment authenticates. finish fails if the last segment
 * was not seen (truncation). */
typedef struct mt_ff_reader mt_ff_reader;
mt_status mt_ff_reader_new(const uint8_t key[MT_FF_KEY_LEN], mt_ff_sink sink, void *ctx,
                           mt_ff_reader **out, mt_err *err);
/* Makes the reader refuse (MT_ECRYPTO, before any plaintext) a file that is
 * not bound to exactly *b (see mt_ff_binding_check). Call before the first
 * feed; b is copied. */
void mt_ff_reader_expect(mt_ff_reader *r, const mt_ff_binding *b);
/* Makes the reader decrypt each segment straight into out (the plaintext
 * so far is out[0..mt_ff_reader_out_len)) instead of into its own buffer
 * and handing it to the sink (a copy less; the sink is not called any
 * more). A segment that fails its tag is wiped from out before feed or
 * finish returns, as the reader's own buffer would be; one that would not
 * fit in cap fails with MT_ETOOBIG. The caller uses out only once finish
 * returned MT_OK. Call before the first feed. */
mt_status mt_ff_reader_into(mt_ff_reader *r, uint8_t *out, size_t cap, mt_err *err);
size_t mt_ff_reader_out_len(const mt_ff_reader *r);
__attribute__((warn_unused_result)) mt_status
mt_ff_reader_feed(mt_ff_reader *r, const uint8_t *buf, size_t len, mt_err *err);
__attribute__((warn_unused_result)) mt_status mt_ff_reader_finish(mt_ff_reader *r, mt_err *err);
void mt_ff_reader_free(mt_ff_reader *r);

/* One-shot helpers over memory. */
mt_status mt_ff_encrypt(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *plain, size_t len,
                        uint8_t **out, size_t *out_len, mt_err *err);
__attribute__((warn_unused_result)) mt_status
mt_ff_decrypt(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *ct, size_t len, uint8_t **out,
              size_t *out_len, mt_err *err);

/* The one-shot helpers writing into the caller's buffer out of cap bytes
 * (for callers that size and reuse their buffers: no allocation, no first
 * touch of fresh pages per call). Encrypt needs cap >= ciphertext length
 * (mt_ff_ciphertext_size(len)), decrypt cap >= plaintext length (at most
 * len - 56); MT_ETOOBIG otherwise. *out_len is the bytes written, 0 on
 * failure. plain/ct must not share a byte with out[0..cap): overlapping
 * buffers (in-place use included) fail with MT_EINVAL before anything is
 * read or written.
 * mt_ff_encrypt_into writes nothing to out on a failure.
 * mt_ff_decrypt_into: on every failure except a NULL argument or
 * overlapping buffers (MT_EINVAL, out untouched), whether the header, the
 * key, the size (MT_ETOOBIG) or a segment's tag failed, out[0..min(cap,
 * len)) is wiped (zeros): every byte a plaintext (never longer than len)
 * could have been written to; out[min(cap, len)..cap) is never written.
 * On success out[plain length..cap) is untouched.
 * Both read the header from plain/ct or write it to out once and use their
 * own copy for every segment: out and ct may be memory that others write. */
mt_status mt_ff_encrypt_into(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *plain, size_t len,
                             uint8_t *out, size_t cap, size_t *out_len, mt_err *err);
__attribute__((warn_unused_result)) mt_status
mt_ff_decrypt_into(const uint8_t key[MT_FF_KEY_LEN], const uint8_t *ct, size_t len, uint8_t *out,
                   size_t cap, size_t *out_len, mt_err *err);

/* File helpers: stream in_path to out_path (written crash-safely: tmp + fsync
 * + rename; on failure out_path is untouched). */
mt_status mt_ff_encrypt_file(const uint8_t key[MT_FF_KEY_LEN], const char *in_path,
                             const char *out_path, mt_err *err);
__attribute__((warn_unused_result)) mt_status
mt_ff_decrypt_file(const uint8_t key[MT_FF_KEY_LEN], const char *in_path, const char *out_path,
                   mt_err *err);
/* mt_ff_decrypt_file that first checks the header against expect (NULL: no
 * check); a mismatch leaves out_path untouched. */
__attribute__((warn_unused_result)) mt_status
mt_ff_decrypt_file_bound(const uint8_t key[MT_FF_KEY_LEN], const char *in_path,
                         const char *out_path, const mt_ff_binding *expect, mt_err *err);

#endif
