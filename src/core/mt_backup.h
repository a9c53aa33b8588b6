/* mt_backup: backups of a data directory (`mesatee backup` / `restore`) and
 * the archive format they use ("mesatee-backup/v1", docs/formats.md).
 *
 * Archive layout (all integers big-endian):
 *   "MTBACKUP" u32 version(=1) u64 created(unix s) u8 level_len level
 *   entry*:   'F' u16 name_len name u32 mode u64 size data[size]
 *   manifest: 'M' u32 count count x (u16 name_len name u32 mode u64 size
 *             sha256[32]) sha256[32] of every byte before it
 *   end of file.
 * Names are relative paths ([A-Za-z0-9._-] components joined by '/', no "."
 * or ".." component, at most 255 bytes), strictly increasing in byte order
 * (so no duplicates); modes are permission bits only (<= 0777); the manifest
 * repeats every entry, in order, with its SHA-256; "mesatee.db" is present.
 *
 * The reader (mt_backup_read) is the one bounds-checked parser of archive
 * bytes (outside input: a backup file may come from anywhere); it never
 * trusts a length before checking it against the limits below, and refuses
 * trailing bytes. fuzz/backup_archive.c fuzzes it.
 *
 * Ownership: writers and sources are opaque, freed by their _free (NULL ok).
 * Thread-safety: one thread per writer/read call; no shared state. */
#ifndef MT_BACKUP_H
#define MT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_BACKUP_MAGIC "MTBACKUP"
#define MT_BACKUP_VERSION 1u
#define MT_BACKUP_NAME_MAX 255
#define MT_BACKUP_MAX_ENTRIES 1000000u
#define MT_BACKUP_MAX_SIZE (1ULL << 40) /* per entry */
#define MT_BACKUP_DB_NAME "mesatee.db"

/* True if name is a valid entry name (see above). */
bool mt_backup_name_valid(const char *name, size_t len);

/* ---- writer ---- */
typedef struct mt_backup_writer mt_backup_writer;
/* Writes the header to fd (not closed by the writer). level: [a-z0-9-]{1,15}. */
mt_status mt_backup_writer_new(int fd, const char *level, int64_t created,
                               mt_backup_writer **out, mt_err *err);
/* Appends an entry with exactly size bytes read from in_fd (from its current
 * offset). Names must come in strictly increasing byte order. MT_EIO if in_fd
 * gives fewer bytes (the file shrank while it was copied). */
mt_status mt_backup_writer_add_fd(mt_backup_writer *w, const char *name, uint32_t mode,
                                  int in_fd, uint64_t size, mt_err *err);
/* Writes the manifest and the archive hash; the archive is then complete. */
mt_status mt_backup_writer_finish(mt_backup_writer *w, mt_err *err);
void mt_backup_writer_free(mt_backup_writer *w);

/* ---- reader ---- */
/* Reads up to cap bytes into buf; *got = 0 at end of input. */
typedef mt_status (*mt_backup_read_fn)(void *ctx, uint8_t *buf, size_t cap, size_t *got,
                                       mt_err *err);

typedef struct mt_backup_entry {
    const char *name; /* valid until the entry's last sink call */
    uint32_t mode;
    uint64_t size;
} mt_backup_entry;

/* Called for each entry: once with begin=true (n=0), then with its data in
 * pieces, then once with end=true (n=0). Data is handed out before the
 * manifest at the end of the archive is checked: a caller that must not act
 * on unverified bytes reads the archive twice (once with sink NULL). */
typedef mt_status (*mt_backup_sink)(void *ctx, const mt_backup_entry *e, bool begin,
                                    const uint8_t *data, size_t n, bool end, mt_err *err);

typedef struct mt_backup_info {
    uint32_t version;
    int64_t created;
    char level[16];
    uint32_t entries;
    uint64_t bytes; /* sum of entry sizes */
    char sha256[65]; /* the archive hash (hex) */
} mt_backup_info;

/* Parses and verifies a whole archive: structure, limits, names, every
 * entry's SHA-256 against the manifest, the archive hash, no trailing bytes.
 * MT_EINVAL (with the offset or entry name) for anything malformed or not
 * matching; MT_EIO from the read function. info may be NULL. */
mt_status mt_backup_read(mt_backup_read_fn rd, void *rd_ctx, mt_backup_sink sink,
                         void *sink_ctx, mt_backup_info *info, mt_err *err);
/* mt_backup_read over a memory buffer (the fuzz target and unit tests). */
mt_status mt_backup_read_mem(const uint8_t *buf, size_t len, mt_backup_sink sink,
                             void *sink_ctx, mt_backup_info *info, mt_err *err);

/* mt_backup_read over a file descriptor, from its current offset (backup.c). */
mt_status mt_backup_read_fd(int fd, mt_backup_sink sink, void *sink_ctx, mt_backup_info *info,
                            mt_err *err);

/* ---- data directories (backup.c) ---- */
/* Online snapshot of data_dir into the archive out_path, written atomically
 * (a temporary file renamed into place: on any failure no file is left at
 * out_path and an older one there is untouched). The store is copied with
 * SQLite's online backup API in one step (one read transaction: a consistent
 * snapshot while the server writes); then every other regular file of the
 * data directory except the live database files (mesatee.db-wal/-shm/
 * -journal), temporary files ("*.tmp.*"), lock files ("*.lock") and objects
 * the snapshot does not reference; every object the snapshot references must
 * be copied (retried a few times if one was deleted meanwhile). level is
 * recorded in the header (the level the data directory is served at). */
mt_status mt_backup_create(const char *data_dir, const char *level, const char *out_path,
                           mt_backup_info *info, mt_err *err);
/* Whether `mesatee backup` can archive the store a server of data_dir uses
 * (its --store URL; NULL or "" = the default DATA_DIR/mesatee.db): MT_OK for
 * the default or a SQLite URL naming that same file; MT_EINVAL with what to
 * do instead for a PostgreSQL store (back it up with pg_basebackup or
 * pg_dump, docs/operations.md "PostgreSQL stores"), a SQLite file elsewhere,
 * or an unknown URL. The URL is never quoted in the message. */
mt_status mt_backup_store_check(const char *data_dir, const char *store_url, mt_err *err);
/* Restores the archive in_path into data_dir, which must not exist or be an
 * empty directory. The archive is verified completely before anything is
 * written; then it is extracted (and verified again) into a new directory
 * beside data_dir that is renamed to data_dir at the end. On failure nothing
 * is left at data_dir (an empty one stays empty). */
mt_status mt_backup_restore(const char *in_path, const char *data_dir, mt_backup_info *info,
                            mt_err *err);

#endif
