/* mt_audit_export: retention of the audit log. `mesatee audit export` writes
 * the entries from a point on (a sequence number or a time) to a file in the
 * format "mesatee-audit-export/v1" (docs/formats.md): a JSON header line
 *   {"format","first","last","entries","anchor","head","exported_at"}
 * then one JSON line per entry {"seq","time","actor","action","object",
 * "status","prev_hash","hash","mac"}. anchor is the prev_hash of entry
 * `first` (the hash of entry first-1; 64 zeros when first is 1), head the
 * hash of entry `last`: an export verifies on its own from its anchor, two
 * consecutive exports chain (the second's anchor is the first's head), and a
 * signed checkpoint whose entry count falls inside an export pins it.
 *
 * The export reader (mt_audit_export_verify) is the bounded parser of this
 * format (outside input: export files are kept and passed around);
 * fuzz/audit_export.c fuzzes it.
 * Thread-safety: reentrant. */
#ifndef MT_AUDIT_EXPORT_H
#define MT_AUDIT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_AUDIT_EXPORT_FORMAT "mesatee-audit-export/v1"
#define MT_AUDIT_EXPORT_LINE_MAX 4096
#define MT_AUDIT_EXPORT_MAX (1ULL << 32) /* bytes of one export file */

typedef struct mt_audit_export_info {
    uint64_t first, last, entries;
    char anchor[65], head[65];
    int64_t exported_at;
} mt_audit_export_info;

/* Exports the entries of data_dir's audit log with seq >= since_seq and
 * time >= since_time to out_path (written atomically, mode 0600). The whole
 * unkeyed chain of the store is verified first. MT_ENOTFOUND when no entry
 * matches. Read-only on the store: runs beside the server. */
mt_status mt_audit_export_write(const char *data_dir, const char *store, int64_t since_seq,
                                int64_t since_time,
                                const char *out_path, mt_audit_export_info *info, mt_err *err);

/* Parses and verifies one export: header fields, contiguous sequence
 * numbers from first to last, the first prev_hash equal to the anchor (64
 * zeros when first is 1), every hash recomputed, the last equal to head, no
 * trailing bytes. For each i < n_at with first <= at[i] <= last, hash_at[i]
 * receives the hash of entry at[i] ("" otherwise). */
mt_status mt_audit_export_verify(const uint8_t *buf, size_t len, const uint64_t *at,
                                 char (*hash_at)[65], size_t n_at, mt_audit_export_info *info,
                                 mt_err *err);

#endif
