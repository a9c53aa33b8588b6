/* libmesatee: the client library of mesatee (libcurl over TLS 1.3).
 *
 * What it is for: talking to a mesatee server's REST API (docs/design.md) from
 * C or from any language with a C FFI, and encrypting/decrypting files in
 * mesatee's file format (docs/formats.md) on the client side, so that the
 * platform and its host only ever see ciphertext.
 *
 * Ownership: mesatee_client_new returns a handle freed with
 * mesatee_client_free (NULL is a no-op); the handle wipes the token on free.
 * Every char ** output is a NUL-terminated heap string the caller frees with
 * mesatee_free (NULL is a no-op); outputs are set to NULL on failure. Output
 * pointers may be passed as NULL when the caller does not want the value.
 *
 * Errors: every fallible function returns a mesatee_status (MESATEE_OK == 0).
 * Functions that take a client record a readable message in the handle,
 * read with mesatee_client_errmsg(client), e.g.
 *   "HTTP 403 permission_denied: file 3f2a... is not owned by you".
 * Functions without a handle (mesatee_client_new, key and file helpers) record
 * their message per thread, read with mesatee_client_errmsg(NULL).
 * Decryption failures say "decryption failed" and nothing more.
 *
 * Thread-safety: a handle is used by one thread at a time; different handles
 * may be used concurrently. Call curl_global_init yourself before starting
 * threads if your program is multi-threaded (libmesatee calls it lazily).
 *
 * Secrets: the first mesatee_client_new registers a wiping allocator with
 * jansson (json_set_alloc_funcs), so passwords, tokens and keys that pass
 * through JSON are overwritten when freed; it leaves an allocator your
 * program registered itself in place. Like curl_global_init, create the first
 * client before other threads use jansson. Strings this library returns that
 * hold a secret (tokens) should be overwritten by the caller before
 * mesatee_free. */
#ifndef MESATEE_H
#define MESATEE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MESATEE_BUILDING)
#define MESATEE_API __attribute__((visibility("default")))
#else
#define MESATEE_API
#endif
#define MESATEE_MUST_CHECK __attribute__((warn_unused_result))

typedef enum mesatee_status {
    MESATEE_OK = 0,
    MESATEE_EINVAL = 1,      /* bad argument or malformed input (server: 400) */
    MESATEE_EAUTH = 2,       /* not logged in, bad credentials, expired token (401) */
    MESATEE_EPERM = 3,       /* not allowed (403) */
    MESATEE_ENOTFOUND = 4,   /* no such object, or not visible to the caller (404) */
    MESATEE_ECONFLICT = 5,   /* exists already, or wrong state (409) */
    MESATEE_ETOOBIG = 6,     /* over a size limit (413) */
    MESATEE_EQUOTA = 7,      /* usage quota exhausted (429) */
    MESATEE_ECRYPTO = 8,     /* decryption / authentication failed */
    MESATEE_EIO = 9,         /* local file I/O error */
    MESATEE_ENOMEM = 10,     /* allocation failed */
    MESATEE_ENET = 11,       /* connection, TLS or transfer failure; no HTTP answer */
    MESATEE_ESERVER = 12,    /* server error (5xx) or a response that makes no sense */
    MESATEE_ETIMEOUT = 13,   /* mesatee_task_wait gave up before a final status */
    MESATEE_EATTEST = 14,    /* the server's attestation is missing, invalid or fails the policy */
} mesatee_status;

/* Stable lower-case name of a status ("permission_denied", ...). Never NULL. */
MESATEE_API const char *mesatee_status_name(int status);

/* Library version string ("0.1.0"). */
MESATEE_API const char *mesatee_version(void);

/* Sizes, as functions so FFI users need no header. */
MESATEE_API size_t mesatee_key_bytes(void);  /* 32: file keys (AES-256) */
MESATEE_API size_t mesatee_id_chars(void);   /* 32: object ids are 32 lower-case hex chars */

/* Frees a string returned by this library. NULL is a no-op. */
MESATEE_API void mesatee_free(void *p);

/* ------------------------------------------------------------------------ */
/* Client handle                                                             */

typedef struct mesatee_client mesatee_client;

/* Creates a client for server_url, which must be "https://HOST[:PORT]" with
 * no path, query or credentials (a trailing '/' is allowed). Peer verification
 * uses the system CA store until mesatee_client_set_ca_file is called.
 * Returns NULL on a bad URL or allocation failure; the reason is in
 * mesatee_client_errmsg(NULL). */
MESATEE_API mesatee_client *mesatee_client_new(const char *server_url);
/* Frees the handle and wipes its token. NULL is a no-op. */
MESATEE_API void mesatee_client_free(mesatee_client *c);

/* Verifies the server against the PEM certificate(s) in path: a CA or the
 * server's pinned self-signed certificate (<data-dir>/tls/server-cert.pem).
 * MESATEE_EIO if the file cannot be read. */
MESATEE_API int mesatee_client_set_ca_file(mesatee_client *c, const char *path);
/* Connects to the address of the server URL but verifies (and sends as TLS
 * SNI and Host) name instead: for a server reached by an address that its
 * certificate does not name (an IP address, a tunnel, a test host). name is
 * a DNS host name or an IP address; NULL clears it. MESATEE_EINVAL for
 * anything else. */
MESATEE_API int mesatee_client_set_tls_server_name(mesatee_client *c, const char *name);
/* INSECURE: on != 0 disables all verification of the server's certificate
 * and name. Anyone on the path can then read and change the traffic,
 * including the token and file keys. For debugging only. */
MESATEE_API int mesatee_client_set_insecure_skip_verify(mesatee_client *c, int on);
/* on == 0 skips the check that the certificate names the host (the chain is
 * still verified). Default on. */
MESATEE_API int mesatee_client_set_verify_hostname(mesatee_client *c, int on);
/* Attested TLS: loads the policy file at path (JSON, docs/attestation.md)
 * and from then on verifies the server INSIDE the TLS handshake: its
 * certificate must carry RA-TLS evidence (level >= soft) that verifies, is
 * bound to the certificate's key and satisfies the policy; otherwise the
 * handshake is aborted before any request byte (token included) is sent, and
 * calls fail with MESATEE_EATTEST and a message naming the failing rule. With
 * a policy the CA file is not used. A server at level none is refused unless
 * mesatee_client_set_insecure_skip_verify is on (which skips all checks).
 * NULL clears the policy. MESATEE_EIO (unreadable) or MESATEE_EINVAL (bad
 * policy, message names the field). A connection kept alive from before a
 * change of the policy (or of the CA file, TLS server name, hostname check or
 * insecure mode) never carries another request: the next one connects and
 * verifies anew. */
MESATEE_API int mesatee_client_set_policy_file(mesatee_client *c, const char *path);
/* Auditor signatures (docs/attestation.md): from now on a policy file is
 * accepted only when PATH.sig holds valid ECDSA P-256 signatures over its
 * exact bytes by at least threshold (0 = all) of the public keys in
 * signers_pem_path (PEM bundle; `mesatee policy sign` makes the .sig). Call
 * before mesatee_client_set_policy_file, which then fails with MESATEE_EATTEST
 * when the signatures are missing or invalid. NULL clears the requirement. */
MESATEE_API int mesatee_client_set_policy_signers(mesatee_client *c, const char *signers_pem_path,
                                                  unsigned threshold);
/* Connects, performs only the TLS handshake (no HTTP request, no token) and
 * returns the server's claims as JSON in *json_out: kind, level,
 * measurements, signer, soft_platform_key, svns, tcb_status, debug, time,
 * ratls{form,tag,spki_sha256,...}. With a policy set, the policy is enforced
 * as for any call and "policy_satisfied":true is added; without one the
 * evidence is verified (signature, binding) but nothing is pinned. A server
 * without evidence gives {"kind":"none","level":1,"evidence":false}. */
MESATEE_API int mesatee_client_attest(mesatee_client *c, char **json_out);

/* Bearer token for authenticated calls; NULL clears it. */
MESATEE_API int mesatee_client_set_token(mesatee_client *c, const char *token);
/* The current token (set or from mesatee_login), or NULL. Owned by the handle. */
MESATEE_API const char *mesatee_client_token(const mesatee_client *c);
/* Whole-request timeout in seconds. 0 (the default) = no overall limit, but a
 * transfer that moves no byte for 60 s is aborted. Connection setup is always
 * limited to 10 s, or the timeout if smaller. */
MESATEE_API int mesatee_client_set_timeout(mesatee_client *c, long seconds);
/* How long mesatee_task_wait keeps polling a server that went away (seconds
 * of continuous failure): 0 (the default) = until the wait's timeout, or
 * MESATEE_WAIT_RECONNECT_S when the wait has none. */
MESATEE_API int mesatee_client_set_wait_reconnect(mesatee_client *c, long seconds);

/* Progress of the handle's requests, for a progress display. Byte counts are
 * of the current request (0 total: unknown); task_status and waited_s are set
 * only by mesatee_task_wait, after each poll of the task (else NULL, 0). */
typedef struct mesatee_progress {
    uint64_t up_now, up_total;     /* request body bytes sent / to send */
    uint64_t down_now, down_total; /* response bytes received / announced */
    const char *task_status;       /* valid during the call only */
    long waited_s;
} mesatee_progress;
typedef void (*mesatee_progress_fn)(const mesatee_progress *p, void *userdata);
/* Calls fn(p, userdata) while the handle's requests move bytes (about every
 * second at least, from the calling thread) and after each poll of
 * mesatee_task_wait; fn NULL turns it off. fn must not use the handle. */
MESATEE_API int mesatee_client_set_progress(mesatee_client *c, mesatee_progress_fn fn,
                                            void *userdata);

/* Last error message of the handle ("" after success), or with c == NULL the
 * calling thread's last handle-less error. Never NULL. */
MESATEE_API const char *mesatee_client_errmsg(const mesatee_client *c);
/* Status (MESATEE_E*) that goes with mesatee_client_errmsg: of the handle's
 * last error, or with c == NULL of the thread's last handle-less error;
 * MESATEE_OK when the message is empty. */
MESATEE_API int mesatee_client_errcode(const mesatee_client *c);
/* HTTP status of the last request (0 if none was answered). */
MESATEE_API int mesatee_client_http_status(const mesatee_client *c);

/* ------------------------------------------------------------------------ */
/* Generic call                                                              */

/* Sends method ("GET", "POST", "PUT", "DELETE") to path (starting with "/",
 * may carry a query string) with json_body (NULL = no body) and the token.
 * On a 2xx answer returns MESATEE_OK and the response body in *json_out.
 * On other answers returns the status matching the server's error code and
 * sets errmsg to "HTTP <status> <code>: <message>"; *json_out still receives
 * the body when there is one.
 * Every answer held in memory (this call, the typed calls' json_out, the
 * error body of any request) is at most MESATEE_MAX_RESPONSE_BYTES: a longer
 * one (a broken or hostile server) aborts the transfer with MESATEE_ESERVER
 * ("response from URL is larger than N bytes"), so the client's memory stays
 * bounded whatever the server sends. File content is not held in memory
 * (mesatee_file_download streams it to disk). */
#define MESATEE_MAX_RESPONSE_BYTES (64u * 1024u * 1024u)
MESATEE_API int mesatee_call(mesatee_client *c, const char *method, const char *path,
                             const char *json_body, char **json_out);

/* ------------------------------------------------------------------------ */
/* Typed calls. json_out receives the server's JSON answer; id_out (where    */
/* present) the new object's id.                                            */

/* POST /v1/auth/login; on success the client keeps the token
 * (mesatee_client_token) and *token_out gets a copy. */
MESATEE_API int mesatee_login(mesatee_client *c, const char *username, const char *password,
                              char **token_out, char **json_out);
/* POST /v1/auth/logout: revokes the current token and clears it. */
MESATEE_API int mesatee_logout(mesatee_client *c, char **json_out);
/* POST /v1/users (admin); role is "user" or "admin" (NULL = "user"). */
MESATEE_API int mesatee_user_add(mesatee_client *c, const char *username, const char *password,
                                 const char *role, char **json_out);

/* User lifecycle (issue 9). GET /v1/users/me: who the token belongs to
 * ({username, role, state}). */
MESATEE_API int mesatee_whoami(mesatee_client *c, char **json_out);
/* GET /v1/users/{name}: {username, role, state, created_at, active_tokens};
 * administrators see anyone, users only themselves. */
MESATEE_API int mesatee_user_show(mesatee_client *c, const char *username, char **json_out);
/* POST /v1/users/me/password: changes the caller's own password (the old
 * one is checked under the failed-login limits); the caller's other tokens
 * are revoked. */
MESATEE_API int mesatee_user_change_password(mesatee_client *c, const char *old_password,
                                             const char *new_password, char **json_out);
/* Administrators: POST /v1/users/{name}/password sets a new password and
 * revokes every token of the user; /disable (tokens refused at once) and
 * /enable; DELETE /v1/users/{name} (refused while the user takes part in an
 * unfinished task; the name is not reused). The last active administrator
 * can be neither disabled nor deleted (MESATEE_ECONFLICT). */
MESATEE_API int mesatee_user_reset_password(mesatee_client *c, const char *username,
                                            const char *new_password, char **json_out);
MESATEE_API int mesatee_user_disable(mesatee_client *c, const char *username, char **json_out);
MESATEE_API int mesatee_user_enable(mesatee_client *c, const char *username, char **json_out);
MESATEE_API int mesatee_user_delete(mesatee_client *c, const char *username, char **json_out);
/* GET /v1/builtins: every built-in with its arguments and slots, and the
 * reserved arguments of wasm functions ({builtins:[...], wasm:{...}}). */
MESATEE_API int mesatee_builtins(mesatee_client *c, char **json_out);

/* POST /v1/objects: uploads ciphertext. From a file the body is streamed. */
MESATEE_API int mesatee_upload_file(mesatee_client *c, const char *path, char **url_out,
                                    char **json_out);
MESATEE_API int mesatee_upload_bytes(mesatee_client *c, const uint8_t *buf, size_t len,
                                     char **url_out, char **json_out);

/* POST /v1/files/inputs. sha256_hex and name may be NULL. */
MESATEE_API int mesatee_file_register_input(mesatee_client *c, const char *url,
                                            const uint8_t key[32], const char *sha256_hex,
                                            const char *name, char **id_out, char **json_out);
/* POST /v1/files/outputs. name may be NULL. */
MESATEE_API int mesatee_file_register_output(mesatee_client *c, const uint8_t key[32],
                                             const char *name, char **id_out,
                                             char **json_out);
/* Flags of the _ex functions below. */
#define MESATEE_ALLOW_KEY_REUSE 1u /* register an output whose key another output has */
#define MESATEE_ALLOW_UNBOUND 2u   /* accept an unbound (mt_ff version 1) output, e.g. one
                                      written by a server older than format version 2 */
/* POST /v1/files/outputs with flags (0 or MESATEE_ALLOW_KEY_REUSE). The
 * server refuses (MESATEE_ECONFLICT) a key that is already another output's
 * unless MESATEE_ALLOW_KEY_REUSE is given. */
MESATEE_API int mesatee_file_register_output_ex(mesatee_client *c, const uint8_t key[32],
                                                const char *name, unsigned flags,
                                                char **id_out, char **json_out);
/* POST /v1/files/fusion with n_owners usernames (the caller included). */
MESATEE_API int mesatee_file_register_fusion(mesatee_client *c, const char *const *owners,
                                             size_t n_owners, const char *name, char **id_out,
                                             char **json_out);
/* GET /v1/files/{id}/content into out_path (written to a temporary file
 * as it arrives, never held whole in memory, then renamed; on failure
 * out_path is untouched and the temporary file removed). The content must be an
 * output bound to file_id (mt_ff version 2 header, docs/formats.md):
 * MESATEE_ECRYPTO when the server returns another output's ciphertext (for
 * another file) or an unbound file. The header is authenticated when the
 * file is decrypted (mesatee_file_decrypt_output). */
MESATEE_API int mesatee_file_download(mesatee_client *c, const char *file_id,
                                      const char *out_path);
/* mesatee_file_download with flags (0 or MESATEE_ALLOW_UNBOUND: also accept
 * an unbound version 1 file; a file bound to another file is still refused). */
MESATEE_API int mesatee_file_download_ex(mesatee_client *c, const char *file_id,
                                         const char *out_path, unsigned flags);

/* POST /v1/functions with the function's JSON description. */
MESATEE_API int mesatee_function_register(mesatee_client *c, const char *spec_json,
                                          char **id_out, char **json_out);
/* POST /v1/tasks with the task's JSON description. */
MESATEE_API int mesatee_task_create(mesatee_client *c, const char *spec_json, char **id_out,
                                    char **json_out);
/* POST /v1/tasks/{id}/assign with {"inputs":{slot:file_id},"outputs":{...}}. */
MESATEE_API int mesatee_task_assign(mesatee_client *c, const char *task_id,
                                    const char *assign_json, char **json_out);
MESATEE_API int mesatee_task_approve(mesatee_client *c, const char *task_id, char **json_out);
MESATEE_API int mesatee_task_invoke(mesatee_client *c, const char *task_id, char **json_out);
MESATEE_API int mesatee_task_cancel(mesatee_client *c, const char *task_id, char **json_out);
/* GET /v1/tasks/{id}. */
MESATEE_API int mesatee_task_get(mesatee_client *c, const char *task_id, char **json_out);
/* Polls GET /v1/tasks/{id} until its status is final (finished, failed,
 * canceled): with long polls (?wait=, up to 25 s each, within timeout_s and
 * the handle's timeout; the first one too) that the server answers as soon
 * as the task ends, or at once when it is final already; against a server
 * that answers them at once (an older one) or refuses one with 503 (too many
 * waiters), with plain polls every 100 ms to 1 s (after a refused first long
 * poll, a plain GET at once). MESATEE_OK with the task in *json_out and the status copied
 * into status_out (>= 16 bytes; may be NULL). MESATEE_ETIMEOUT after
 * timeout_s seconds (0 = wait forever; at most 2147483647, else
 * MESATEE_EINVAL) with the last task JSON. With a timeout, every request of
 * the wait (connect and transfer) ends by it plus 1 s (a name lookup that
 * the resolver does not give up on may take longer: libcurl waits for its
 * resolver thread): one still without a whole answer then (a stopped or stalled server,
 * an answer trickled out) is cut and the wait returns MESATEE_ETIMEOUT
 * ("no answer from the server ...", *json_out NULL), not an error. An answer
 * about another task than task_id (its "task_id" differs or is missing) is
 * a protocol error: MESATEE_ESERVER.
 * Once the server was reached (it answered, or the first poll's request went
 * out over a verified connection: a first hold cut, timed out or answered
 * 502, 503 or 504 counts), a server that goes away (connection refused,
 * reset or timed out; 502, 503, 504: a restart or a graceful stop) is polled
 * again with backoff, each hold ending by the timeout, until the timeout, or
 * for MESATEE_WAIT_RECONNECT_S without one
 * (mesatee_client_set_wait_reconnect); if it does not come back,
 * MESATEE_ENET ("the server went away ..."). A first poll that never reached
 * a server (connection refused or timed out, TLS handshake failed or cut,
 * a peer that is no TLS server) and refusals (TLS verification,
 * attestation, 4xx) are returned at once. */
#define MESATEE_WAIT_RECONNECT_S 120
MESATEE_API int mesatee_task_wait(mesatee_client *c, const char *task_id, long timeout_s,
                                  char status_out[16], char **json_out);
/* GET /v1/audit?after=after&limit=limit (limit 0 = server default). */
MESATEE_API int mesatee_audit_list(mesatee_client *c, uint64_t after, unsigned limit,
                                   char **json_out);
/* GET /v1/audit/checkpoint[?entries=N]: a signed audit checkpoint (the
 * newest when entries < 0). The document is returned as received; its
 * signature is checked by `mesatee audit checkpoint` / `audit verify`. */
MESATEE_API int mesatee_audit_checkpoint(mesatee_client *c, int64_t entries, char **json_out);

/* Paging of the list routes (GET /v1/files, /v1/functions, /v1/tasks,
 * /v1/users, /v1/audit; docs/api/openapi.yaml "Paging").
 * mesatee_list_page: one page, GET path?limit=limit&cursor=cursor (limit 0 =
 * the server's default of 100, at most 1000; cursor NULL = the first page,
 * else the previous answer's next_cursor). *json_out is the answer
 * ({"<list>":[...],"next_cursor":...}). MESATEE_EINVAL for a path that is not
 * "/..." without a query, a limit over 1000 or a cursor that is not one.
 * mesatee_list_all: every page, following next_cursor, joined into
 * {"<key>":[all entries],"next_cursor":null}; key names the list's array
 * ("files", "functions", "tasks", "users", "entries"). MESATEE_ESERVER when
 * an answer lacks that array or its next_cursor, repeats a cursor, or the
 * list passes 1,000,000 entries (page with mesatee_list_page instead). */
MESATEE_API int mesatee_list_page(mesatee_client *c, const char *path, unsigned limit,
                                  const char *cursor, char **json_out);
MESATEE_API int mesatee_list_all(mesatee_client *c, const char *path, const char *key,
                                 char **json_out);

/* ------------------------------------------------------------------------ */
/* Typed list and get calls                                                  */

/* The objects a caller can see, decoded from the server's JSON into structs
 * (fields: docs/api/openapi.yaml, schemas FileMeta, Function and Task).
 *
 * Ownership: the library allocates the array and every string in it; the
 * caller frees the whole array with the matching *_info_free(array, n), n
 * being the count returned (1 for *_get_info). Freeing NULL is a no-op.
 * Strings are NUL-terminated UTF-8 and never NULL, except the fields marked
 * "or NULL". json holds the whole object as the server sent it (compact), so
 * fields that newer servers add stay reachable.
 *
 * Paging: the list calls follow the server's paging. While an answer carries
 * "next_cursor", they request the next page (?cursor=...) and return the
 * items of all pages in one array; a server that does not page answers in
 * one page.
 *
 * Results: on success *out is never NULL (an empty list is an array with
 * *n == 0). On failure *out is NULL and *n is 0. Errors: those of
 * mesatee_call; MESATEE_EINVAL for a NULL handle or output pointer or a
 * malformed id; MESATEE_ESERVER when an answer is not JSON, lacks a required
 * field or has one of the wrong type (the message names it: "GET /v1/files:
 * bad answer: files[2].owners: expected an array of strings"), or when
 * paging does not end (a repeated or over-long cursor, more than
 * MESATEE_MAX_LIST_PAGES pages).
 *
 * Layout: the structs are part of the ABI of libmesatee.so.0; fields are
 * only added together with a new SONAME. */
#define MESATEE_MAX_LIST_PAGES 10000u

typedef struct mesatee_file_info {
    char *id;           /* file_id: 32 lower-case hex characters */
    char *kind;         /* "input", "output" or "fusion" */
    char *name;         /* "" when the file has no name */
    char *url;          /* where the ciphertext lives (mesatee://objects/..., https://...) */
    char **owners;      /* n_owners usernames */
    size_t n_owners;
    int64_t size;       /* ciphertext bytes; -1 when unknown (size null) */
    char *sha256;       /* 64 hex characters of the ciphertext's SHA-256, or NULL when unknown */
    int written;        /* outputs: 1 once a task has written it; inputs: 1 */
    char *created_at;   /* RFC 3339 UTC time */
    char *json;         /* the whole FileMeta object */
} mesatee_file_info;

typedef struct mesatee_function_info {
    char *id;            /* function_id */
    char *owner;         /* username of the owner */
    char *name;
    char *description;   /* "" when none */
    char *executor_type; /* "builtin" or "wasm" */
    char *builtin;       /* built-in name; "" for wasm functions */
    int is_public;       /* 1: every user may use it */
    int disabled;        /* 1: disabled by its owner; tasks cannot be created */
    char **inputs;       /* n_inputs input slot names, in declaration order */
    size_t n_inputs;
    char **outputs;      /* n_outputs output slot names */
    size_t n_outputs;
    int64_t usage_quota;   /* 0 = unlimited */
    int64_t current_usage;
    char *created_at;    /* RFC 3339 UTC times */
    char *updated_at;
    char *json;          /* the whole Function object (arguments, allowlist, payload...) */
} mesatee_function_info;

typedef struct mesatee_task_info {
    char *id;             /* task_id */
    char *function_id;
    char *function_name;
    char *creator;        /* username */
    char *status;         /* created, data_assigned, approved, staged, running,
                             finished, failed or canceled */
    char **participants;  /* n_participants usernames (creator and slot owners) */
    size_t n_participants;
    char **approvals;     /* n_approvals usernames that approved */
    size_t n_approvals;
    char *failure_reason; /* the reason a failed task failed, or NULL */
    int cancel_requested; /* 1 once a cancel was requested */
    int64_t cpu_ms;       /* metering */
    int64_t peak_rss_kb;
    int64_t wall_ms;
    int64_t bytes_in;
    int64_t bytes_out;
    int64_t fuel_used;    /* wasm instructions; 0 otherwise or when the server omits it */
    char *created_at;     /* RFC 3339 UTC times */
    char *updated_at;
    char *json;           /* the whole Task object (arguments, slots, assignments, result, log) */
} mesatee_task_info;

/* GET /v1/files (every page): the caller's files, oldest first. */
MESATEE_API int mesatee_file_list(mesatee_client *c, mesatee_file_info **out, size_t *n);
/* GET /v1/files/{id}: one file of the caller's (MESATEE_ENOTFOUND otherwise). */
MESATEE_API int mesatee_file_get_info(mesatee_client *c, const char *file_id,
                                      mesatee_file_info **out);
/* Frees an array of n file infos and all its strings. NULL is a no-op. */
MESATEE_API void mesatee_file_info_free(mesatee_file_info *v, size_t n);

/* GET /v1/functions (every page): the functions the caller may see (public,
 * own, allowlisted; all for admins), oldest first. */
MESATEE_API int mesatee_function_list(mesatee_client *c, mesatee_function_info **out,
                                      size_t *n);
/* GET /v1/functions/{id}. */
MESATEE_API int mesatee_function_get_info(mesatee_client *c, const char *function_id,
                                          mesatee_function_info **out);
MESATEE_API void mesatee_function_info_free(mesatee_function_info *v, size_t n);

/* GET /v1/tasks (every page): the tasks the caller participates in, oldest
 * first. */
MESATEE_API int mesatee_task_list(mesatee_client *c, mesatee_task_info **out, size_t *n);
/* GET /v1/tasks/{id}, decoded (mesatee_task_get gives the raw JSON). */
MESATEE_API int mesatee_task_get_info(mesatee_client *c, const char *task_id,
                                      mesatee_task_info **out);
MESATEE_API void mesatee_task_info_free(mesatee_task_info *v, size_t n);

/* ------------------------------------------------------------------------ */
/* Keys and file encryption (no server involved)                             */

/* Fills key with 32 random bytes from the OS CSPRNG. */
MESATEE_API int mesatee_key_generate(uint8_t key[32]);
/* key -> 64 lower-case hex characters + NUL. */
MESATEE_API void mesatee_key_to_hex(const uint8_t key[32], char hex[65]);
/* 64 hex characters (either case) -> key. MESATEE_EINVAL otherwise. */
MESATEE_API int mesatee_key_from_hex(const char *hex, uint8_t key[32]);
/* Writes the key as one line of hex to a new file of mode 0600. Refuses to
 * overwrite an existing file (MESATEE_ECONFLICT): that could lose the only
 * copy of a key. */
MESATEE_API int mesatee_key_write_file(const uint8_t key[32], const char *path);
/* Reads a key file: 64 hex characters, optionally followed by a newline.
 * Refuses files that group or others may access (mode & 077), like ssh does
 * for private keys, with a message telling to chmod 600. */
MESATEE_API MESATEE_MUST_CHECK int mesatee_key_read_file(const char *path, uint8_t key[32]);

/* Encrypts in_path into out_path in mesatee's file format (crash-safe write:
 * on failure out_path is untouched). */
MESATEE_API int mesatee_file_encrypt(const uint8_t key[32], const char *in_path,
                                     const char *out_path);
/* Decrypts and authenticates in_path into out_path; MESATEE_ECRYPTO
 * ("decryption failed") on a wrong key or any tampering, and then out_path
 * is untouched. */
MESATEE_API MESATEE_MUST_CHECK int mesatee_file_decrypt(const uint8_t key[32],
                                                        const char *in_path,
                                                        const char *out_path);
/* mesatee_file_decrypt of a task's output that must be bound to exactly
 * (task_id, slot, file_id) (ids: 32 hex characters): MESATEE_ECRYPTO, with
 * out_path untouched, when it is the output of another task, slot or file
 * (copied by the host) or not bound at all (unless flags has
 * MESATEE_ALLOW_UNBOUND). */
MESATEE_API MESATEE_MUST_CHECK int
mesatee_file_decrypt_output(const uint8_t key[32], const char *in_path, const char *out_path,
                            const char *task_id, const char *slot, const char *file_id,
                            unsigned flags);
/* Downloads output file_id of task task_id (slot slot) and decrypts it into
 * out_path: the output must be bound to exactly (task_id, slot, file_id)
 * (see mesatee_file_decrypt_output; flags: 0 or MESATEE_ALLOW_UNBOUND). The
 * ciphertext goes to a temporary file that is removed; on any failure
 * out_path is untouched. */
MESATEE_API MESATEE_MUST_CHECK int
mesatee_task_output_download(mesatee_client *c, const char *task_id, const char *slot,
                             const char *file_id, const uint8_t key[32], const char *out_path,
                             unsigned flags);
/* SHA-256 of a file's bytes as 64 lower-case hex characters + NUL (what
 * POST /v1/files/inputs takes as "sha256" for a URL input). */
MESATEE_API int mesatee_file_sha256(const char *path, char hex[65]);

/* ------------------------------------------------------------------------ */
/* KeyStore transit API (docs/keystore.md): Vault-transit-compatible keys  */
/* held by the server. `name` is your key ("name") or a key another user   */
/* granted you ("owner:name"). json_out (optional) gets the server's whole */
/* answer ({"data": {...}} as Vault shapes it). Ciphertexts, signatures    */
/* and HMACs are Vault's "vault:v<N>:<base64>" strings; bytes go in and    */
/* come out raw. Plaintext outputs should be wiped by the caller before    */
/* mesatee_free.                                                            */

/* POST /v1/transit/keys/{name}: type "aes256-gcm96" (NULL), "chacha20-poly1305",
 * "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"
 * or "hmac". Creating an existing key of the same type changes nothing. */
MESATEE_API int mesatee_transit_key_create(mesatee_client *c, const char *name, const char *type,
                                           char **json_out);
/* GET /v1/transit/keys/{name}: type, versions, public keys (never private parts). */
MESATEE_API int mesatee_transit_key_read(mesatee_client *c, const char *name, char **json_out);
/* Your keys and those granted to you, as a JSON array text of names ("[]" when none). */
MESATEE_API int mesatee_transit_key_list(mesatee_client *c, char **names_out);
/* DELETE /v1/transit/keys/{name} (after config deletion_allowed=true). */
MESATEE_API int mesatee_transit_key_delete(mesatee_client *c, const char *name);
/* POST /v1/transit/keys/{name}/rotate: a new latest version. */
MESATEE_API int mesatee_transit_key_rotate(mesatee_client *c, const char *name, char **json_out);
/* POST /v1/transit/keys/{name}/config with config_json, e.g.
 * {"min_decryption_version":2,"deletion_allowed":true}. */
MESATEE_API int mesatee_transit_key_config(mesatee_client *c, const char *name,
                                           const char *config_json, char **json_out);
/* Imports your own key material (32 raw bytes for aes256-gcm96/chacha20-poly1305,
 * 16-64 bytes for hmac, PKCS#8 DER for the asymmetric types): fetches the
 * server's wrapping key and wraps the material for it (RSA-OAEP-SHA256 +
 * AES-KWP, Vault's BYOK format) before it leaves this process. */
MESATEE_API int mesatee_transit_key_import(mesatee_client *c, const char *name, const char *type,
                                           const uint8_t *material, size_t n, int allow_rotation,
                                           char **json_out);
/* Grants user the operations (of "read", "encrypt", "decrypt", "rewrap",
 * "datakey", "sign", "verify", "hmac") on your key; revokes the grant. */
MESATEE_API int mesatee_transit_grant(mesatee_client *c, const char *name, const char *user,
                                      const char *const *operations, size_t n_ops,
                                      char **json_out);
MESATEE_API int mesatee_transit_revoke(mesatee_client *c, const char *name, const char *user);
/* Encrypts pt (aad: associated data, NULL for none) with version key_version
 * (0 = latest); *ciphertext_out is "vault:v<N>:...". */
MESATEE_API int mesatee_transit_encrypt(mesatee_client *c, const char *name, const uint8_t *pt,
                                        size_t pt_len, const uint8_t *aad, size_t aad_len,
                                        uint32_t key_version, char **ciphertext_out);
/* Decrypts; MESATEE_ECRYPTO ("decryption failed") when it does not authenticate. */
MESATEE_API int mesatee_transit_decrypt(mesatee_client *c, const char *name,
                                        const char *ciphertext, const uint8_t *aad,
                                        size_t aad_len, uint8_t **pt_out, size_t *pt_len);
/* Signs in (its digest when prehashed; then hash_algorithm names the digest):
 * hash_algorithm "sha2-256" (NULL) / "sha2-224" / "sha2-384" / "sha2-512" /
 * "sha3-*" (ignored for ed25519); signature_algorithm (RSA) "pss" (NULL) or
 * "pkcs1v15"; marshaling_algorithm (ECDSA) "asn1" (NULL, DER) or "jws" (r||s,
 * base64url). key_version 0 = latest. */
MESATEE_API int mesatee_transit_sign(mesatee_client *c, const char *name, const uint8_t *in,
                                     size_t n, const char *hash_algorithm, int prehashed,
                                     const char *signature_algorithm,
                                     const char *marshaling_algorithm, uint32_t key_version,
                                     char **signature_out);
/* *valid_out 1 when signature verifies over in, else 0 (MESATEE_OK either way). */
MESATEE_API int mesatee_transit_verify(mesatee_client *c, const char *name, const uint8_t *in,
                                       size_t n, const char *hash_algorithm, int prehashed,
                                       const char *signature_algorithm,
                                       const char *marshaling_algorithm, const char *signature,
                                       int *valid_out);
/* n (1 to 65536) random bytes from the server. */
MESATEE_API int mesatee_transit_random(mesatee_client *c, size_t n, uint8_t **out);
/* The public key of version `version` (0 = latest) in PEM (SubjectPublicKeyInfo;
 * ed25519 too); *version_out (optional) the version. MESATEE_EINVAL for a
 * symmetric key. */
MESATEE_API int mesatee_transit_public_key(mesatee_client *c, const char *name, uint32_t version,
                                           char **pem_out, uint32_t *version_out);
/* Decodes a "vault:v<N>:<base64 or base64url>" string into N and its bytes
 * (e.g. a raw signature: DER for ECDSA asn1, r||s for jws). */
MESATEE_API int mesatee_transit_decode(const char *s, uint32_t *version, uint8_t **out,
                                       size_t *n);

#ifdef __cplusplus
}
#endif
#endif
