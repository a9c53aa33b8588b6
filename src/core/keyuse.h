/* keyuse: KeyStore keys used by tasks (docs/keystore.md, "Keys in tasks").
 *
 * A built-in whose schema declares an argument of type MT_BARG_KEYSTORE_KEY
 * (rsa_sign's and keystore_sign's "key", wasm's "wasm_key") signs with the
 * KeyStore key that the argument names, "OWNER/NAME" (or "OWNER:NAME", as
 * transit paths write another user's key), at the version named by the
 * argument "<arg>_version" (0 or absent: the latest). The rule: the key's
 * OWNER, or a user the owner granted "sign" on the key (transit_grants), must
 * be one of the task's participants. Every participant approves the task's
 * binding, which covers the arguments (integrity.c), before it can be
 * invoked, so the key is used only with the approval of its owner (or of
 * the owner's grantee) of exactly this use (function, arguments with the
 * key's name, inputs and outputs).
 *
 *  - keyuse_check_task runs at task creation: a key whose owner is not a
 *    participant is refused at once (400), before anyone approves.
 *  - keyuse_job_keys runs at dispatch (sched.c build_job), after
 *    integ_task_verify_row checked the declaration (participants, arguments)
 *    and every approval: it checks the rule again on those verified rows and
 *    loads each key's private part (PKCS#8 DER) from the KeyStore into the
 *    job. The key leaves this process only in the job, to the sandboxed
 *    worker (same TEE), the way file keys do: never to disk, logs, or an
 *    answer. A key that is absent, of a type the built-in cannot sign with,
 *    or at an unavailable version fails the task with a message that names
 *    the argument and never the key material or another user's keys.
 *
 * Errors: MT_EINVAL with an actionable message (which every participant
 * reads), MT_ENOMEM. Thread-safety: reentrant (the store handle is the
 * caller's). */
#ifndef MT_KEYUSE_H
#define MT_KEYUSE_H

#include <jansson.h>

#include "core_internal.h"
#include "mt_executor.h"

/* Task creation: for a built-in function, every non-empty KeyStore key
 * argument in args (merged) must name a key whose owner is in parts. */
mt_status keyuse_check_task(mt_core *c, mt_db *db, const char *executor_type, const char *builtin,
                            const json_t *args, const char *const *parts, size_t n_parts,
                            mt_err *err);

/* Dispatch: loads the KeyStore keys named by args into job->keys (n_keys).
 * participants is the task's verified participant array. On error the job
 * holds no key (nothing to wipe). */
mt_status keyuse_job_keys(mt_core *c, mt_db *db, const char *executor_type, const char *builtin,
                          const json_t *args, const json_t *participants, mt_job *job, mt_err *err);

/* The private part of KeyStore key OWNER/NAME at version (0: the latest):
 * its KeyStore type into type, the version into *used, the key material
 * (PKCS#8 or traditional DER, or PEM; heap, the caller wipes and frees it)
 * into *material. MT_ENOTFOUND when there is no such key or version. The
 * adapter over the transit module's internal function (keyuse.c). */
mt_status core_transit_private_key(mt_core *c, mt_db *db, const char *owner, const char *name,
                                   uint32_t version, char type[33], uint32_t *used,
                                   uint8_t **material, size_t *len, mt_err *err);

/* Records each key use of the task in the audit log (actor "scheduler",
 * object "task:ID", action "task signs with KeyStore key OWNER/NAME vN"),
 * which every participant reads, in its own write transaction on db. A task
 * whose key use cannot be recorded must not run (the caller fails it). */
mt_status keyuse_audit(mt_core *c, mt_db *db, const char *task_id, const mt_job *job, mt_err *err);

/* Wipes and frees job->keys. NULL-safe, idempotent. */
void keyuse_job_keys_free(mt_job *job);

#endif
