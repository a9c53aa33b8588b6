/* untrusted_spool: the local audit spool, a file in the data directory that
 * keeps audit entries the store could not take (PostgreSQL failing over,
 * SQLite locked or on a full disk) until they are appended to the chain
 * (docs/design.md "Audit spool", file format in docs/formats.md "Audit
 * spool file").
 *
 * The file lies on the host's disk, which is untrusted: every record carries
 * an HMAC-SHA256 under a key derived from the audit-chain key (which only
 * the TEE holds) over the spool's random id, the record's index, the
 * previous record's MAC and the record itself, so an edited, reordered,
 * inserted or cut record is detected and the spool is refused as a whole.
 * What it still trusts the host for (hence the name): keeping the file.
 * Whole records removed from its end, or the whole file removed, while the
 * daemon is down cannot be told from a spool that never held them; while
 * the daemon runs it knows how many records it wrote and refuses a shorter
 * file.
 *
 * Records are appended with write + fsync (one fsync per call, all or
 * nothing: a failed append is cut off again); the file never grows past the
 * cap given at open (mt_spool_append answers MT_ETOOBIG instead).
 * Not thread-safe: the caller serialises every call on one mt_spool. */
#ifndef UNTRUSTED_SPOOL_H
#define UNTRUSTED_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_SPOOL_MAGIC "MTASPOOL"
#define MT_SPOOL_VERSION 1u
#define MT_SPOOL_HEADER_LEN 60u /* magic 8, version 4, id 16, header MAC 32 */
#define MT_SPOOL_ACTOR_MAX 79u  /* the audit chain's own caps (audit.c) */
#define MT_SPOOL_ACTION_MAX 159u
#define MT_SPOOL_OBJECT_MAX 127u
/* the body: time 8, status 4, three length-prefixed strings */
#define MT_SPOOL_BODY_MIN 15u
#define MT_SPOOL_BODY_MAX \
    (MT_SPOOL_BODY_MIN + MT_SPOOL_ACTOR_MAX + MT_SPOOL_ACTION_MAX + MT_SPOOL_OBJECT_MAX)
#define MT_SPOOL_REC_OVERHEAD 36u /* length 4 + MAC 32 */

/* One spooled audit entry, as the chain will record it. */
typedef struct mt_spool_rec {
    int64_t time; /* when the request was answered (seconds since the epoch) */
    int32_t status;
    char actor[MT_SPOOL_ACTOR_MAX + 1];
    char action[MT_SPOOL_ACTION_MAX + 1];
    char object[MT_SPOOL_OBJECT_MAX + 1];
} mt_spool_rec;

typedef struct mt_spool mt_spool;

/* The spool at path (not touched yet), its MAC key derived from audit_key,
 * at most cap_bytes on disk (at least one header and one largest record). */
mt_status mt_spool_open(const char *path, const uint8_t audit_key[32], uint64_t cap_bytes,
                        mt_spool **out, mt_err *err);
void mt_spool_free(mt_spool *s);

/* Reads and authenticates the whole file: *recs (heap, *n of them; NULL/0
 * when there is no file). The first load adopts the file; later ones also
 * require every record this process appended or loaded before (a shorter
 * or rewritten file is damage). Damage (bad header, MAC, structure, a cut
 * record, records missing): MT_ECRYPTO with the class in err, nothing
 * returned; I/O: MT_EIO. */
mt_status mt_spool_load(mt_spool *s, mt_spool_rec **recs, size_t *n, mt_err *err);

/* Appends n records (strings cut at the chain's caps) with one write and
 * one fsync; creates the file (header, fsync of the directory) first when
 * there is none. All or nothing. MT_ETOOBIG: the cap would be passed (the
 * file is unchanged). Call mt_spool_load once before the first append on
 * a file that may exist. */
mt_status mt_spool_append(mt_spool *s, const mt_spool_rec *recs, size_t n, mt_err *err);

/* Replaces the file by one holding only recs (a fresh id; written to a
 * temporary file, fsynced and renamed over it), or removes it when n == 0:
 * after the records before them were appended to the chain. */
mt_status mt_spool_reset(mt_spool *s, const mt_spool_rec *recs, size_t n, mt_err *err);

/* Moves a refused file aside to PATH.refused-UNIXTIME (kept for the
 * operator, never read again; the name in moved, may be NULL) and forgets
 * it: the next append starts a new file. */
mt_status mt_spool_quarantine(mt_spool *s, char *moved, size_t cap, mt_err *err);

uint64_t mt_spool_records(const mt_spool *s); /* records in the file, as last known */
uint64_t mt_spool_bytes(const mt_spool *s);   /* its size in bytes, as last known */
uint64_t mt_spool_cap(const mt_spool *s);

/* The parser alone (bounds-checked; the fuzz target's entry): the records
 * of the file image buf authenticated under spool_key (mt_spool_key); id
 * and last_mac (may be NULL) receive the spool id and the last record's
 * MAC (the header's when there is no record). MT_ECRYPTO on any damage. */
mt_status mt_spool_parse(const uint8_t *buf, size_t len, const uint8_t spool_key[32],
                         mt_spool_rec **recs, size_t *n, uint8_t id[16], uint8_t last_mac[32],
                         mt_err *err);
/* The spool's MAC key: HMAC-SHA256(audit_key, "mesatee-audit-spool-key/v1"). */
void mt_spool_key(const uint8_t audit_key[32], uint8_t out[32]);
/* Serialises records into a file image under spool_key with the given id
 * (heap, *len bytes): for tests and the fuzz corpus. */
mt_status mt_spool_image(const uint8_t spool_key[32], const uint8_t id[16],
                         const mt_spool_rec *recs, size_t n, uint8_t **out, size_t *len,
                         mt_err *err);

#endif
