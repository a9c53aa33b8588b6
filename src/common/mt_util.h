/* mt_util: small helpers shared by every module: hex and base64 codecs,
 * randomness, object ids, secret wiping, constant-time compare, whole-file
 * reads with a size limit, crash-safe file writes, and clocks.
 * Ownership: functions returning char * / uint8_t * return heap memory the
 * caller frees with free(). Thread-safety: all reentrant. */
#ifndef MT_UTIL_H
#define MT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mt_err.h"

/* Object ids are 32 lower-case hex characters (128 random bits). */
#define MT_ID_LEN 32
typedef struct { char s[MT_ID_LEN + 1]; } mt_id;

/* Fills id with a fresh random id. Aborts only if the OS RNG fails. */
void mt_id_new(mt_id *id);
/* True if s is exactly 32 lower-case hex characters. */
bool mt_id_valid(const char *s);

/* Cryptographically secure random bytes (OpenSSL RAND_bytes). */
mt_status mt_random(uint8_t *out, size_t len, mt_err *err);

/* Wipes len bytes at p; never optimised away. */
void mt_wipe(void *p, size_t len);
/* Constant-time equality of two equal-length buffers. */
bool mt_ct_equal(const void *a, const void *b, size_t len);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void mt_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes exactly outlen bytes from a hex string of exactly 2*outlen chars.
 * Returns MT_EINVAL on wrong length or a non-hex character. */
mt_status mt_hex_decode(const char *hex, uint8_t *out, size_t outlen, mt_err *err);

/* Standard base64 with padding. Returns a NUL-terminated heap string. */
char *mt_b64_encode(const uint8_t *in, size_t len);
/* Strict standard base64 decode into a heap buffer; *outlen set. */
mt_status mt_b64_decode(const char *in, uint8_t **out, size_t *outlen, mt_err *err);

/* Reads a whole file, refusing files larger than max bytes (MT_ETOOBIG).
 * The buffer is NUL-terminated (not counted in *len). */
mt_status mt_file_read(const char *path, size_t max, uint8_t **out, size_t *len, mt_err *err);
/* Temporary files: the one way mesatee creates a file that is later renamed
 * into place (token file, sealing key, keys, downloads, outputs, objects).
 * mt_tmpfile_open creates "<path>.tmp.<16 random hex>" with
 * O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and the given mode: it never
 * opens an existing file or follows a symbolic link planted at that name, and
 * the name cannot be predicted. tmp (tmp_size >= strlen(path) +
 * MT_TMPFILE_EXTRA) receives the name; *fd the descriptor (-1 on failure).
 * mt_tmpfile_publish fsyncs and closes fd (when fd >= 0; pass -1 if the caller
 * closed it after fsync), renames tmp over path and fsyncs the directory; on
 * any failure it removes tmp, so no partial file is left and the old file at
 * path (if any) is untouched. mt_tmpfile_discard closes fd (if >= 0) and
 * removes tmp. */
#define MT_TMPFILE_EXTRA 22 /* ".tmp." + 16 hex + NUL */
mt_status mt_tmpfile_open(const char *path, int mode, char *tmp, size_t tmp_size, int *fd,
                          mt_err *err);
mt_status mt_tmpfile_publish(int fd, const char *tmp, const char *path, mt_err *err);
void mt_tmpfile_discard(int fd, const char *tmp);
/* Crash-safe write of a whole file through mt_tmpfile_open/_publish. On
 * failure the old file (if any) is untouched and no temporary file remains. */
mt_status mt_file_write_atomic(const char *path, const void *data, size_t len, int mode,
                               mt_err *err);
/* fsync of the directory containing path. */
mt_status mt_fsync_parent_dir(const char *path, mt_err *err);
/* mkdir -p with the given mode for created components. */
mt_status mt_mkdirs(const char *path, int mode, mt_err *err);

/* Seconds since the Unix epoch (wall clock). */
int64_t mt_now(void);
/* Monotonic milliseconds. */
int64_t mt_mono_ms(void);
/* *ts = CLOCK_MONOTONIC now + ms (ms >= 0): a deadline for
 * pthread_cond_timedwait on a condition variable set to CLOCK_MONOTONIC. */
void mt_mono_deadline(struct timespec *ts, long ms);

/* Formats t as RFC 3339 UTC ("2026-11-23T07:00:00Z") into out (>= 21 bytes). */
void mt_time_format(int64_t t, char out[32]);

/* strdup that returns NULL for NULL. */
char *mt_strdup(const char *s);

#endif
