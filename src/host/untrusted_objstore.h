/* untrusted_objstore: the object directory on the host's disk
 * (<data-dir>/objects/<id>). It only ever holds ciphertext in the mt_ff
 * format, so the host sees sizes, never contents. Writes are crash-safe
 * (tmp + fsync + rename + fsync dir).
 * Ownership: mt_objstore from _open is freed with _close (NULL ok).
 * Thread-safety: all functions may be called from any thread. */
#ifndef UNTRUSTED_OBJSTORE_H
#define UNTRUSTED_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_objstore mt_objstore;

mt_status untrusted_objstore_open(const char *data_dir, mt_objstore **out, mt_err *err);
void untrusted_objstore_close(mt_objstore *s);

/* Path of object id ("<dir>/objects/<id>") into out. id must be mt_id_valid. */
mt_status untrusted_objstore_path(const mt_objstore *s, const char *id, char *out, size_t cap,
                                  mt_err *err);
/* Crash-safe write of a whole object; *sha256_hex (65 bytes) receives the digest. */
mt_status untrusted_objstore_put(mt_objstore *s, const char *id, const uint8_t *data,
                                 size_t len, char sha256_hex[65], mt_err *err);
/* Reads a whole object (max bytes). Caller frees *out. */
mt_status untrusted_objstore_get(mt_objstore *s, const char *id, size_t max, uint8_t **out,
                                 size_t *len, mt_err *err);
/* Opens object id for reading (O_RDONLY|O_NOFOLLOW|O_CLOEXEC) into *fd
 * (caller closes) with its size from fstat of that descriptor: what is then
 * read from *fd is the file that was opened, whatever the host renames or
 * replaces afterwards. MT_ENOTFOUND if absent, MT_EIO if not a regular file. */
mt_status untrusted_objstore_open_read(mt_objstore *s, const char *id, int *fd, uint64_t *size,
                                       mt_err *err);
/* SHA-256 (hex) of exactly len bytes of fd from offset 0, read with pread in
 * bounded pieces (memory does not grow with len). MT_EIO if fewer bytes can
 * be read (the file shrank). */
mt_status untrusted_objstore_hash_fd(int fd, uint64_t len, char sha256_hex[65], mt_err *err);
/* Size in bytes, MT_ENOTFOUND if absent. */
mt_status untrusted_objstore_size(mt_objstore *s, const char *id, uint64_t *size, mt_err *err);
/* Deletes; absent is not an error. */
mt_status untrusted_objstore_delete(mt_objstore *s, const char *id, mt_err *err);
/* Streaming writes (an upload that arrives in pieces): _writer_new creates a
 * temporary file "<dir>/upload.tmp.<pid>.<random>" (O_EXCL|O_NOFOLLOW, 0600),
 * _writer_write appends and hashes, _writer_commit fsyncs it, renames it to
 * the object id and fsyncs the directory. _writer_free closes and removes the
 * temporary file unless it was committed (NULL ok). A crash leaves only a
 * "*.tmp.*" file that _sweep removes at the next start. A writer is used by
 * one thread at a time. */
typedef struct mt_objstore_writer mt_objstore_writer;
mt_status untrusted_objstore_writer_new(mt_objstore *s, mt_objstore_writer **out, mt_err *err);
mt_status untrusted_objstore_writer_write(mt_objstore_writer *w, const uint8_t *data, size_t len,
                                          mt_err *err);
/* Bytes written so far; the first min(cap, size) of them are copied to out. */
uint64_t untrusted_objstore_writer_size(const mt_objstore_writer *w);
size_t untrusted_objstore_writer_prefix(const mt_objstore_writer *w, uint8_t *out, size_t cap);
mt_status untrusted_objstore_writer_commit(mt_objstore_writer *w, const char *id,
                                           char sha256_hex[65], mt_err *err);
void untrusted_objstore_writer_free(mt_objstore_writer *w);

/* Removes leftover "*.tmp.*" files from interrupted writes; returns count. */
size_t untrusted_objstore_sweep(mt_objstore *s);
/* Removes the leftovers of interrupted writes of every kind the core makes:
 * names containing ".tmp.", ".tmp-", ".report-", ".run-" or ".up-", except those
 * keep(ctx, name) wants kept (keep may be NULL) and those modified less than
 * min_age_s seconds ago. *bytes (may be NULL) receives their total size.
 * Returns how many were removed. */
typedef bool (*untrusted_objstore_keep_fn)(void *ctx, const char *name);
size_t untrusted_objstore_sweep_leftovers(mt_objstore *s, int64_t min_age_s,
                                          untrusted_objstore_keep_fn keep, void *ctx,
                                          uint64_t *bytes);

#endif
