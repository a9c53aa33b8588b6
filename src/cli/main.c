/* mesatee: command-line entry. Parses the command line, resolves the global
 * settings (flags > environment > config file > defaults), builds the client
 * and dispatches to the command's handler. See docs/cli.md. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "cli_help.h"
#include "mt_secmem.h"
#include "mt_util.h"

#ifdef MT_CLI_HAVE_SERVER
#include "mt_evmem.h"
#endif

#define CLI_DEFAULT_SERVER "https://127.0.0.1:7443"

/* ======================================================================== */
/* Command table                                                             */

/* Entries may stop after has_arg ({"name", true}): the remaining fields are
 * zero, and test_cli_help then names the option that lacks its help. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const cli_opt o_none[] = {{NULL, false}};
/* serve (and measure): the measured ones are listed in docs/cli.md */
static const cli_opt o_serve[] = {
    {"data-dir", true, 'd', "DIR",
     "the server's data directory (store, objects, keys, TLS certificate)",
     "required by serve, not used by measure"},
    {"store", true, 0, "URL",
     "the store: a SQLite file (PATH or file:PATH); postgres:// is refused until the whole core "
     "runs on the database layer (docs/cluster.md)",
     "DIR/mesatee.db"},
    {"objects", true, 0, "dir|dir:PATH|db",
     "where objects (ciphertext) live: the data directory, a directory such as a shared mount "
     "(dir:/mnt/shared), or chunked rows in the store's database (db: replicated with it; "
     "docs/cluster.md)",
     "dir (DIR/objects)"},
    {"listen", true, 'l', "HOST:PORT",
     "address of the REST API; port 0 picks a free port (see DIR/server.url)",
     "127.0.0.1:7443"},
    {"level", true, 0, "none|soft|tpm2|sev-snp|tdx|sgx", "TEE level (docs/attestation.md)", "none"},
    {"workers", true, 0, "N", "concurrent tasks", "number of cores"},
    {"admin-password-file", true, 0, "FILE", "admin password at first start",
     "MESATEE_ADMIN_PASSWORD, else generated and printed once"},
    {"file-url-root", true, 0, "DIR", "allow file:// inputs under DIR", "none (file:// refused)"},
    {"task-mem-mb", true, 0, "N", "per-task memory limit in MiB", "2048"},
    {"task-cpu-s", true, 0, "N", "per-task CPU seconds", "600"},
    {"task-wall-s", true, 0, "N", "per-task wall-clock seconds", "900"},
    {"token-ttl-s", true, 0, "N", "login token lifetime in seconds", "43200"},
    {"worker", true, 0, "PATH", "the mesatee-worker executable",
     "MESATEE_WORKER, else next to mesatee, else libexec"},
    {"worker-start", true, 0, "zygote|spawn",
     "how each task's worker process starts: forked by a zygote that has the worker loaded, or "
     "posix_spawn per task (both sandboxed alike; docs/design.md \"Worker start\")",
     "zygote"},
    {"zygote-max-tasks", true, 0, "N",
     "a worker zygote is replaced after N task starts: its children share its memory layout "
     "and stack canary (1..1000000; 1: one task per zygote, the next warming up meanwhile; "
     "docs/design.md \"Worker start\")",
     "256"},
    {"max-connections", true, 0, "N", "open connections", "256"},
    {"max-task-waiters", true, 0, "N",
     "GET /v1/tasks/{id}?wait= requests held at once (task wait); more are answered 503", "256"},
    {"audit-spool-max-kib", true, 0, "N",
     "KiB the local audit spool may hold while the store cannot take audit entries; past it "
     "requests that need a new entry are answered 503 (docs/operations.md \"Audit spool\")",
     "16384"},
    {"fetch-allow", true, 0, "CIDR,..", "https:// inputs may reach these address blocks (measured)",
     "none"},
    {"log-task-errors", false, 0, NULL,
     "log the detail behind task failures (may hold participants' data; measured)", "off"},
    {"seal-legacy-store", false, 0, NULL,
     "MAC the rows of a store written before store integrity, and claimed tasks' lease MACs "
     "of one before schema 16, once (measured)",
     "off"},
    {"release-signers", true, 0, "PEM",
     "auditor P-256 public keys whose signatures KeyStore release-policy changes need "
     "(recorded in the KeyStore at first use)",
     "none"},
    {"release-threshold", true, 0, "N", "with --release-signers: how many must sign", "all"},
    {"keystore-collateral", true, 0, "DIR",
     "levels sev-snp, tdx, sgx: collateral directory (VCEK/PCK chains, TCB info) that verifies "
     "this node's evidence for the KeyStore release policy (not exercised on hardware)",
     "none"},
    {"keystore-recover", true, 0, "FILE",
     "rebuild a KeyStore whose state no longer opens (lost TPM) from this escrow file "
     "(`mesatee admin keystore escrow`), with --keystore-recover-key; once",
     "none"},
    {"keystore-recover-key", true, 0, "PEM",
     "with --keystore-recover: a recipient's P-256 private key (unencrypted PEM file, no comma "
     "in the path); as many as the escrow's threshold",
     "none", true},
    {"tpm2-tcti", true, 0, "TCTI", "level tpm2: how to reach the TPM",
     "MESATEE_TPM2_TCTI, else device:/dev/tpmrm0"},
    {"cert-renew-s", true, 0, "N",
     "above level none: new TLS key and evidence every N seconds; 0 = never",
     "3600"},
    {"remote-executors", false, 0, NULL,
     "run no scheduler threads; serve separate executors on the executor API", "off"},
    {"executor-listen", true, 0, "HOST:PORT", "with --remote-executors: executor API address",
     "127.0.0.1:7444"},
    {"executor-policy", true, 0, "FILE", "with --remote-executors: policy executors must satisfy",
     "required with --remote-executors"},
    {"keystore-listen", true, 0, "HOST:PORT",
     "several nodes on one --store: serve KeyStore joins (attested TLS; the release policy "
     "decides) from this node, the KeyStore node",
     "off"},
    {"keystore-join", true, 0, "URL",
     "several nodes on one --store: join the KeyStore node at https://HOST:PORT for the shared "
     "keys before opening the store",
     "off"},
    {"keystore-policy", true, 0, "FILE",
     "with --keystore-join: policy the KeyStore node's evidence must satisfy",
     "required with --keystore-join"},
    {"keystore-join-timeout-s", true, 0, "SECONDS",
     "with --keystore-join: the most a whole join (and each refresh or database certificate "
     "renewal) may take, however its steps go (5..3600)",
     "60"},
    {"keystore-db-ca", true, 0, "FILE",
     "with --keystore-listen: PEM with the database CA's certificate and key, sealed into "
     "keystore.sealed (later starts need no file); joining nodes get a 24 h client certificate "
     "(role mesatee) and open the store with it (they renew it at two thirds of its lifetime)",
     "none"},
    {"keystore-db-ca-create", false, 0, NULL,
     "with --keystore-listen: make a database CA inside the KeyStore (sealed in "
     "keystore.sealed) unless one is sealed; its certificate goes to DATA_DIR/db-ca.crt",
     "off"},
    {"keystore-db-cert-ttl", true, 0, "SECONDS",
     "with --keystore-db-ca: lifetime of the database client certificates (10..86400; short "
     "ones are for tests)",
     "86400"},
    {"keystore-advertise", true, 0, "URL",
     "with --keystore-listen: the https://HOST:PORT joining nodes use, written to "
     "DATA_DIR/keystore.url",
     "the listen address (https://127.0.0.1:PORT for 0.0.0.0 or ::)"},
    {"executor-max-buffered-mib", true, 0, "N",
     "with --remote-executors: report bodies held in memory across connections", "512"},
    {"executor-lease-ms", true, 0, "N",
     "with --remote-executors: an executor's lease on a task it runs (renewed every third of "
     "it; when it runs out the task runs elsewhere) (100..3600000)",
     "30000"},
    {"executor-max-attempts", true, 0, "N",
     "claims per task before an expired executor lease, or a run lost with its node (several "
     "nodes on PostgreSQL), fails it (1..1000)",
     "3"},
    {"node-dead-after-ms", true, 0, "N",
     "several nodes on PostgreSQL: a node seen without its liveness lock this long loses its "
     "running tasks to the queue (100..86400000)",
     "60000"},
    {"tls-san", true, 0, "NAME|IP", "a name or address for the level-none certificate and the "
     "RA-TLS certificates (docs/getting-started.md)", "the listen host, the host name, localhost", true},
    {"tls-cert", true, 0, "FILE", "operator-supplied certificate chain (PEM; level none; "
     "re-read on SIGHUP)", "a self-signed identity kept in DIR"},
    {"tls-key", true, 0, "FILE", "the key of --tls-cert (PEM)", "required with --tls-cert"},
    {"metrics-token-file", true, 0, "FILE", "/metrics needs this bearer token (the file's first "
     "line)", "none (/metrics open)"},
    {"config", true, 'c', "FILE", "the daemon's configuration file (INI; keys are these long "
     "options; env MESATEE_SERVE_CONFIG)", "/etc/mesatee/mesatee.conf when it exists"},
    {"print-config", false, 0, NULL, "print the effective settings with their sources and exit",
     "off"},
    {"log-level", true, 0, "error|warn|info|debug", "log level (env MESATEE_LOG; SIGHUP reloads)",
     "info"},
    {"log-format", true, 0, "text|json", "log line format (env MESATEE_LOG_FORMAT)", "text"},
    {"access-log", true, 0, "FILE", "one line per HTTP request to FILE", "the log stream"},
    {"shutdown-grace-s", true, 0, "N", "after SIGTERM, how long running tasks may go on before "
     "they are stopped and requeued (0..86400)", "30"},
    {"python-allow", true, 0, "MOD,..", "top-level modules python functions may import besides "
     "the default list (bound into each task's approval; docs/python-functions.md)", "none", true},
    {"python-deny", true, 0, "MOD,..", "modules removed from the default python allow-list "
     "(bound into each task's approval; docs/python-functions.md)", "none", true},
    {NULL, false}};
static const cli_opt o_executor[] = {
    {"scheduler", true, 0, "URL[,URL...]",
     "the scheduler's executor API, https://HOST:PORT (IPv6: https://[ADDR]:PORT); several "
     "nodes of one cluster separated by commas (at most 8): a failed request moves to the "
     "next, every node checked against --policy", "required"},
    {"data-dir", true, 'd', "DIR", "the executor's data directory (keys, identity)", "required"},
    {"level", true, 0, "soft|tpm2", "TEE level of this executor", "soft"},
    {"worker", true, 0, "PATH", "the mesatee-worker executable",
     "MESATEE_WORKER, else next to mesatee, else libexec"},
    {"worker-start", true, 0, "zygote|spawn",
     "how each task's worker process starts: forked by a zygote that has the worker loaded, or "
     "posix_spawn per task (both sandboxed alike; docs/design.md \"Worker start\")",
     "zygote"},
    {"zygote-max-tasks", true, 0, "N",
     "a worker zygote is replaced after N task starts: its children share its memory layout "
     "and stack canary (1..1000000; 1: one task per zygote, the next warming up meanwhile; "
     "docs/design.md \"Worker start\")",
     "256"},
    {"tpm2-tcti", true, 0, "TCTI", "level tpm2: how to reach the TPM",
     "MESATEE_TPM2_TCTI, else device:/dev/tpmrm0"},
    {"poll-ms", true, 0, "N", "milliseconds between claims when idle (10..600000)", "500"},
    {"max-tasks", true, 0, "N", "exit after N tasks", "0 (run until stopped)"},
    {"file-url-root", true, 0, "DIR", "allow file:// inputs under DIR", "none (file:// refused)"},
    {"fetch-allow", true, 0, "CIDR,..", "https:// inputs may reach these address blocks (measured)",
     "none"},
    {"log-task-errors", false, 0, NULL,
     "log the detail behind task failures (may hold participants' data; measured)", "off"},
    {"print-identity", false, 0, NULL, "print this executor's identity (for a policy) and exit",
     "off"},
    {"max-job-mib", true, 0, "N", "largest job document read from the scheduler (1..4096)", "256"},
    {"slots", true, 0, "N", "tasks run at once, each in its own worker (1..64)", "1"},
    {"cert-renew-s", true, 0, "N",
     "new TLS key and certificate with fresh evidence every N seconds, so a scheduler policy "
     "with max_evidence_age_s keeps admitting this executor; 0 = never (0..31536000)",
     "3600"},
    {"name", true, 0, "NAME",
     "this executor's name in the scheduler's /metrics (1..64 of A-Z a-z 0-9 . _ : -)",
     "HOST-PID"},
    {"config", true, 'c', "FILE", "the executor's configuration file (INI; keys are these long "
     "options; env MESATEE_SERVE_CONFIG)", "/etc/mesatee/mesatee.conf when it exists"},
    {"print-config", false, 0, NULL, "print the effective settings with their sources and exit",
     "off"},
    {"log-level", true, 0, "error|warn|info|debug", "log level (env MESATEE_LOG)", "info"},
    {"log-format", true, 0, "text|json", "log line format (env MESATEE_LOG_FORMAT)", "text"},
    {NULL, false}};
static const cli_opt o_user_add[] = {
    {"role", true, 'r', "user|admin", "role of the new user", "user"},
    {"password-file", true, 'p', "FILE", "the password is the file's first line",
     "generated and printed once"},
    {NULL, false}};
static const cli_opt o_login[] = {
    {"user", true, 'u', "NAME", "user name", "required"},
    {"password-file", true, 'p', "FILE", "the password is the file's first line",
     "MESATEE_PASSWORD"},
    {NULL, false}};
static const cli_opt o_passwd[] = {
    {"old-password-file", true, 0, "FILE", "your current password (the file's first line)",
     "required"},
    {"new-password-file", true, 0, "FILE", "the new password (the file's first line)", "required"},
    {NULL, false}};
static const cli_opt o_pwfile[] = {
    {"password-file", true, 'p', "FILE", "the new password is the file's first line",
     "generated and printed once"},
    {NULL, false}};
static const cli_opt o_encrypt[] = {
    {"in", true, 'i', "PLAIN", "plaintext file to encrypt", "required"},
    {"out", true, 'o', "CIPHER", "ciphertext file to write", "required"},
    {"key-out", true, 0, "NEWKEYFILE", "generate a new key into this file (mode 0600)",
     "required unless --key"},
    {"key", true, 'k', "KEYFILE", "encrypt under this existing key", "required unless --key-out"},
    {NULL, false}};
static const cli_opt o_decrypt[] = {
    {"in", true, 'i', "CIPHER", "ciphertext file to decrypt", "required"},
    {"out", true, 'o', "PLAIN", "plaintext file to write (nothing is written on tampering)",
     "required"},
    {"key", true, 'k', "KEYFILE", "the file's key", "required"},
    {"task", true, 0, "TASK_ID", "accept only the output written by this task", "none"},
    {"slot", true, 0, "SLOT", "with --task: ... for this output slot", "none"},
    {"file", true, 0, "FILE_ID", "with --task: ... for this output file", "none"},
    {"allow-unbound", false, 0, NULL, "with --task: also accept outputs of format version 1",
     "off"},
    {NULL, false}};
static const cli_opt o_register[] = {
    {"key", true, 'k', "KEYFILE", "the file's key", "required"},
    {"sha256", true, 0, "HEX", "SHA-256 of the ciphertext (file://, https://)",
     "computed for a readable file:// path"},
    {"name", true, 'n', "NAME", "a name for the file", "none"},
    {NULL, false}};
static const cli_opt o_register_out[] = {
    {"key", true, 'k', "KEYFILE", "key the output is written under", "required"},
    {"name", true, 'n', "NAME", "a name for the file", "none"},
    {"allow-key-reuse", false, 0, NULL, "accept a key that is already another output's", "off"},
    {NULL, false}};
static const cli_opt o_fusion[] = {
    {"owners", true, 0, "U1,U2[,...]", "owners (at least 2, you included)", "required"},
    {"name", true, 'n', "NAME", "a name for the file", "none"},
    {NULL, false}};
static const cli_opt o_download[] = {
    {"out", true, 'o', "CIPHER", "where to write the ciphertext", "required"},
    {"allow-unbound", false, 0, NULL, "also accept outputs written before format version 2",
     "off"},
    {NULL, false}};
static const cli_opt o_fn_register[] = {
    {"spec", true, 0, "FILE.json", "the function as a JSON description (instead of the flags)",
     "none"},
    {"name", true, 'n', "NAME", "function name", "required unless --spec"},
    {"builtin", true, 0, "BUILTIN", "built-in function to run (see docs)",
     "required unless --wasm"},
    {"description", true, 0, "TEXT", "description", "none"},
    {"input-slot", true, 0, "SLOT", "an input slot", "none", true},
    {"output-slot", true, 0, "SLOT", "an output slot", "none", true},
    {"public", false, 0, NULL, "everyone may use the function", "private"},
    {"private", false, 0, NULL, "only the owner and --allow users may use it", "private"},
    {"allow", true, 0, "USER", "a user who may use a private function", "none", true},
    {"quota", true, 0, "N", "usage quota (number of tasks)", "unlimited"},
    {"arg", true, 'a', "NAME=DEFAULT[:overridable]", "an argument and its default", "none",
     true},
    {"wasm", true, 0, "FILE.wasm", "a C function compiled to WebAssembly",
     "required unless --builtin"},
    {"python", true, 0, "FILE.py|FILE.zip",
     "a Python 3 function: one module, or a zip of modules (docs/python-functions.md)",
     "one of --builtin, --wasm, --python"},
    {NULL, false}};
static const cli_opt o_spec[] = {
    {"spec", true, 0, "FILE.json", "{description?,public?,allowlist?,usage_quota?,arguments?}",
     "required"},
    {NULL, false}};
static const cli_opt o_task_create[] = {
    {"function", true, 'f', "FUNCTION_ID", "the function to run", "required"},
    {"arg", true, 'a', "K=V", "an overridable argument's value", "the function's default", true},
    {"input", true, 0, "SLOT=U1,U2", "the owners of an input slot", "none", true},
    {"output", true, 0, "SLOT=U1", "the owner of an output slot", "none", true},
    {NULL, false}};
static const cli_opt o_task_assign[] = {
    {"input", true, 0, "SLOT=FILE_ID", "bind your input file to a slot", "none", true},
    {"output", true, 0, "SLOT=FILE_ID", "bind your output file to a slot", "none", true},
    {NULL, false}};
static const cli_opt o_wait[] = {
    {"timeout", true, 't', "SECONDS", "give up after this long; 0 = no timeout", "0"},
    {"reconnect-s", true, 0, "SECONDS", "how long to keep polling a server that went away "
     "(restart) before exit code 6", "the --timeout, else 120"},
    {NULL, false}};
static const cli_opt o_result[] = {
    {"slot", true, 0, "SLOT", "the output slot", "required"},
    {"key", true, 'k', "KEYFILE", "key of the output file", "required"},
    {"out", true, 'o', "PLAIN", "where to write the plaintext", "required"},
    {"allow-unbound", false, 0, NULL, "also accept outputs written before format version 2",
     "off"},
    {NULL, false}};
static const cli_opt o_audit_list[] = {
    {"after", true, 0, "SEQ", "entries after this sequence number", "0"},
    {"limit", true, 0, "N", "at most N entries", "the server's page size"},
    {"cursor", true, 0, "C", "continue from the next_cursor of an earlier page", "first page"},
    {NULL, false}};
static const cli_opt o_list[] = {
    {"limit", true, 0, "N", "at most N entries (1..1000); without it every page is fetched",
     "all"},
    {"cursor", true, 0, "C", "continue from the next_cursor of an earlier page", "first page"},
    {NULL, false}};
static const cli_opt o_key_out[] = {
    {"out", true, 'o', "KEYFILE", "where to write the key (mode 0600; never overwritten)",
     "required"},
    {NULL, false}};
static const cli_opt o_audit_verify[] = {
    {"data-dir", true, 'd', "DIR", "verify offline from a server's data directory",
     "none (ask the server)"},
    {"checkpoint", true, 0, "FILE", "a held checkpoint (from audit checkpoint --out)", "none",
     true},
    {"key-id", true, 0, "HEX", "key id every checkpoint must be signed by",
     "the first checkpoint's key"},
    {"export", true, 0, "FILE", "verify an audit export offline (repeat: consecutive "
     "exports, in order)", "none", true},
    {"store", true, 0, "URL", "with --data-dir: the server's --store (SQLite path or "
     "postgres:// URL)", "MESATEE_STORE, else DATA_DIR/mesatee.db"},
    {NULL, false}};
static const cli_opt o_audit_prune[] = {
    {"before", true, 0, "SEQ", "delete the entries before SEQ (the last entry stays)",
     "required"},
    {"export", true, 0, "FILE", "a verified audit export covering every entry to delete",
     "required"},
    {NULL, false}};
static const cli_opt o_admin_release[] = {
    {"kind", true, 0, "KIND",
     "what VALUE is: measurement, soft_platform_key, tpm2_ak (hex); at sgx mrsigner (hex) or "
     "isv_prod_id (N) for signer-style release; at sev-snp/tdx/sgx min_svn (NAME=N to allow, "
     "NAME to revoke)",
     "measurement"},
    {"signatures", true, 0, "FILE",
     "auditor signatures (`mesatee policy sign` of the `release draft` output) for allow/revoke",
     "none"},
    {"signers", true, 0, "PEM",
     "release signers / draft --signers: the NEW auditor P-256 public keys (a signed change of "
     "the recorded set: the current auditors sign the draft)",
     "none"},
    {"threshold", true, 0, "N", "with --signers: how many of the new auditors must sign",
     "all"},
    {NULL, false}};
static const cli_opt o_admin_keystore[] = {
    {"recipient", true, 0, "PEM",
     "escrow: a recovery recipient's P-256 certificate or public key (PEM file)", "none", true},
    {"threshold", true, 0, "N", "escrow: how many recipients' keys recovery needs",
     "1 (each recipient alone)"},
    {"out", true, 'o', "FILE", "escrow: where the escrow file goes (mode 0600)", "required"},
    {"signatures", true, 0, "FILE",
     "escrow: auditor signatures (`mesatee policy sign` of the `keystore escrow draft` output); "
     "required when the KeyStore has release signers",
     "none"},
    {NULL, false}};
static const cli_opt o_audit_export[] = {
    {"data-dir", true, 'd', "DIR", "the server's data directory", "required"},
    {"since", true, 0, "SEQ|TIME", "first entry: a sequence number or an RFC 3339 time",
     "required"},
    {"out", true, 'o', "FILE", "the export file to write (mode 0600)", "required"},
    {"store", true, 0, "URL", "the server's --store (SQLite path or postgres:// URL)",
     "MESATEE_STORE, else DATA_DIR/mesatee.db"},
    {NULL, false}};
static const cli_opt o_backup[] = {
    {"data-dir", true, 'd', "DIR", "the server's data directory", "required"},
    {"out", true, 'o', "FILE", "the archive to write (atomically, mode 0600)", "required"},
    {"level", true, 0, "none|soft|tpm2|sev-snp|tdx|sgx", "the server's level, recorded in the "
     "archive", "none"},
    {"store", true, 0, "URL", "the server's --store: a PostgreSQL store is refused (back it up "
     "with pg_basebackup or pg_dump)", "DATA_DIR/mesatee.db"},
    {NULL, false}};
static const cli_opt o_restore[] = {
    {"in", true, 'i', "FILE", "the backup archive", "required"},
    {"data-dir", true, 'd', "NEWDIR", "where to restore (must not exist or be empty)",
     "required unless --check"},
    {"check", false, 0, NULL, "only verify the archive", "off"},
    {NULL, false}};
static const cli_opt o_audit_cp[] = {
    {"entries", true, 0, "N", "checkpoint at this entry count", "all entries"},
    {"out", true, 'o', "FILE", "keep the checkpoint in this file", "none"},
    {NULL, false}};
static const cli_opt o_policy_sign[] = {
    {"key", true, 'k', "AUDITOR.pem", "the auditor's P-256 private key (PEM)", "required"},
    {NULL, false}};
static const cli_opt o_attest_ev[] = {
    {"kind", true, 0, "sgx|tdx|sev-snp|nitro|tpm2|soft|ratls-cert", "kind of the evidence file",
     "required"},
    {"at", true, 0, "TIME|now", "verification time, RFC 3339 UTC", "now"},
    {"collateral", true, 0, "DIR", "collateral cache directory (without --policy)", "none"},
    {"expect-report-data", true, 0, "HEX", "with --policy: expected report data", "none"},
    {"expect-nonce", true, 0, "HEX", "with --policy: expected nonce", "none"},
    {"expect-user-data", true, 0, "HEX", "with --policy: expected user data", "none"},
    {NULL, false}};
static const cli_opt o_tpm_enroll[] = {
    {"tpm2-tcti", true, 0, "TCTI", "how to reach the TPM",
     "MESATEE_TPM2_TCTI, else device:/dev/tpmrm0"},
    {"ek-ca", true, 0, "CA.pem", "EK CA bundle the EK certificate must chain to",
     "required unless --state"},
    {"key", true, 'k', "ENROLLER.pem", "the enroller's signing key (P-256)", "required"},
    {"out", true, 'o', "RECORD.json", "where to write the signed enrolment record", "required"},
    {"ek-cert", true, 0, "EK.der", "EK certificate instead of the one in NV", "read from NV"},
    {"state", true, 0, "STATE", "split enrolment: state from tpm-challenge", "none"},
    {"answer", true, 0, "ANSWER.json", "split enrolment: answer from tpm-activate",
     "required with --state"},
    {NULL, false}};
static const cli_opt o_tpm_challenge[] = {
    {"ek-ca", true, 0, "CA.pem", "EK CA bundle the EK certificate must chain to", "required"},
    {"state", true, 0, "STATE", "where to keep the challenge's secret (mode 0600)", "required"},
    {"out", true, 'o', "CHALLENGE.json", "where to write the challenge", "required"},
    {NULL, false}};
static const cli_opt o_tpm_host[] = {
    {"tpm2-tcti", true, 0, "TCTI", "how to reach the TPM",
     "MESATEE_TPM2_TCTI, else device:/dev/tpmrm0"},
    {"out", true, 'o', "FILE.json", "where to write the result", "required"},
    {NULL, false}};

/* Global options: accepted before or after the command. help and version
 * are handled by the parser itself. */
static const cli_opt o_global[] = {
    {"server", true, 's', "URL", "server, https://HOST[:PORT] (env MESATEE_SERVER)",
     CLI_DEFAULT_SERVER},
    {"ca", true, 0, "FILE", "PEM certificate to trust: a CA or the pinned server certificate "
     "(env MESATEE_CA)", "system CAs"},
    {"insecure", false, 0, NULL, "do NOT verify the server at all (prints a warning)", "off"},
    {"token-file", true, 0, "FILE", "where login saves the token (env MESATEE_TOKEN_FILE)",
     "~/.config/mesatee/token"},
    {"config", true, 'c', "FILE", "config file (env MESATEE_CONFIG)",
     "~/.config/mesatee/config"},
    {"output", true, 0, "text|json", "output format; json: JSON results on stdout and JSON "
     "errors on stderr (env MESATEE_OUTPUT)", "text"},
    {"policy", true, 0, "FILE", "attested TLS: verify the server against this policy (env "
     "MESATEE_POLICY)", "none"},
    {"policy-signers", true, 0, "FILE", "PEM bundle of auditor keys that must sign the policy "
     "(env MESATEE_POLICY_SIGNERS)", "none"},
    {"policy-threshold", true, 0, "N", "with --policy-signers: N of them suffice (env "
     "MESATEE_POLICY_THRESHOLD); 0 = all", "0"},
    {"tls-server-name", true, 0, "NAME", "verify the certificate for NAME while connecting to "
     "the --server address (env MESATEE_TLS_SERVER_NAME)", "the URL's host"},
    {"help", false, 'h', NULL, "show help for the command and exit", "off"},
    {"version", false, 'V', NULL, "print the version and exit", "off"},
    {NULL, false}};

/* KeyStore transit commands (cmd_key.c, docs/keystore.md) */
static const cli_opt o_tk_create[] = {
    {"type", true, 0, "TYPE", "aes256-gcm96, chacha20-poly1305, ecdsa-p256, ecdsa-p384, "
     "ecdsa-p521, ed25519, rsa-2048, rsa-3072, rsa-4096 or hmac", "aes256-gcm96"},
    {"exportable", false, 0, NULL, "the key may be exported (`key export`); cannot be undone",
     "off"},
    {"allow-plaintext-backup", false, 0, NULL, "with --exportable: `key backup` may back it up",
     "off"},
    {"derived", false, 0, NULL, "derive a key per --context (aes256-gcm96, chacha20-poly1305)",
     "off"},
    {"convergent", false, 0, NULL, "with --derived: the same plaintext and context give the "
     "same ciphertext", "off"},
    {NULL, false}};
static const cli_opt o_tk_config[] = {
    {"min-decryption-version", true, 0, "N", "refuse ciphertexts and signatures of older versions",
     "unchanged"},
    {"min-encryption-version", true, 0, "N", "oldest version that may encrypt or sign (0: latest)",
     "unchanged"},
    {"deletion-allowed", true, 0, "true|false", "whether `key delete` may delete the key",
     "unchanged"},
    {"exportable", false, 0, NULL, "let the key be exported (cannot be turned off again)",
     "unchanged"},
    {"allow-plaintext-backup", false, 0, NULL, "let the key be backed up in plaintext (cannot "
     "be turned off again)", "unchanged"},
    {NULL, false}};
static const cli_opt o_tk_export[] = {
    {"kind", true, 0, "KIND", "encryption-key, signing-key, hmac-key or public-key", "required"},
    {"key-version", true, 0, "N|latest", "only this version", "every version"},
    {NULL, false}};
static const cli_opt o_tk_backup[] = {
    {"out", true, 'o', "FILE", "write the backup here (mode 0600)", "stdout"},
    {NULL, false}};
static const cli_opt o_tk_restore[] = {
    {"in", true, 'i', "FILE", "the backup (`key backup` output)", "required"},
    {"force", false, 0, NULL, "replace an existing key of that name (its grants are removed)",
     "off"},
    {NULL, false}};
static const cli_opt o_tk_trim[] = {
    {"min-available-version", true, 0, "N", "destroy every version below N (at most the "
     "minimum decryption and encryption versions)", "required"},
    {NULL, false}};
static const cli_opt o_tk_import[] = {
    {"material", true, 'm', "FILE", "the key: 32 raw bytes (aes256-gcm96, chacha20-poly1305), "
     "16-64 bytes (hmac) or PKCS#8 DER (ecdsa, ed25519, rsa); wrapped for the server locally",
     "required"},
    {"type", true, 0, "TYPE", "the key's type", "aes256-gcm96"},
    {"allow-rotation", false, 0, NULL, "let `key rotate` add generated versions", "off"},
    {NULL, false}};
static const cli_opt o_tk_grant[] = {
    {"user", true, 'u', "NAME", "the user who may use the key (as OWNER:NAME)", "required"},
    {"op", true, 0, "OP", "an operation: read, encrypt, decrypt, rewrap, datakey, sign, verify, "
     "hmac", "required", true},
    {NULL, false}};
static const cli_opt o_tk_revoke[] = {
    {"user", true, 'u', "NAME", "the user whose grant is revoked", "required"},
    {NULL, false}};
static const cli_opt o_tk_encrypt[] = {
    {"in", true, 'i', "FILE", "plaintext to encrypt (at most 32 MiB)", "required"},
    {"aad-file", true, 0, "FILE", "associated data: authenticated, not encrypted", "none"},
    {"key-version", true, 0, "N", "encrypt with this version", "the latest"},
    {"context", true, 0, "TEXT", "derivation context of a derived key", "none"},
    {NULL, false}};
static const cli_opt o_tk_decrypt[] = {
    {"out", true, 'o', "FILE", "write the plaintext here (mode 0600)", "stdout"},
    {"aad-file", true, 0, "FILE", "the associated data given at encryption", "none"},
    {"context", true, 0, "TEXT", "derivation context given at encryption", "none"},
    {NULL, false}};
static const cli_opt o_tk_rewrap[] = {
    {"key-version", true, 0, "N", "re-encrypt under this version", "the latest"},
    {"context", true, 0, "TEXT", "derivation context of a derived key", "none"},
    {NULL, false}};
static const cli_opt o_tk_datakey[] = {
    {"bits", true, 0, "N", "128, 256 or 512", "256"},
    {"wrapped", false, 0, NULL, "only the encrypted data key, not the plaintext", "off"},
    {"context", true, 0, "TEXT", "derivation context of a derived key", "none"},
    {NULL, false}};
static const cli_opt o_tk_sign[] = {
    {"in", true, 'i', "FILE", "data to sign (its digest with --prehashed)", "required"},
    {"hash", true, 0, "ALG", "sha2-224, sha2-256, sha2-384, sha2-512, sha3-224 .. sha3-512 "
     "(not for ed25519)", "sha2-256"},
    {"prehashed", false, 0, NULL, "the input is already the digest of --hash", "off"},
    {"signature-algorithm", true, 0, "pss|pkcs1v15", "RSA padding", "pss"},
    {"marshaling", true, 0, "asn1|jws", "ECDSA signature form: DER or r||s (base64url)", "asn1"},
    {"key-version", true, 0, "N", "sign with this version", "the latest"},
    {NULL, false}};
static const cli_opt o_tk_verify[] = {
    {"in", true, 'i', "FILE", "the signed data (its digest with --prehashed)", "required"},
    {"hash", true, 0, "ALG", "the hash the signature (or HMAC) was made with", "sha2-256"},
    {"prehashed", false, 0, NULL, "the input is already the digest of --hash", "off"},
    {"signature-algorithm", true, 0, "pss|pkcs1v15", "RSA padding", "pss"},
    {"marshaling", true, 0, "asn1|jws", "ECDSA signature form", "asn1"},
    {"hmac", false, 0, NULL, "SIGNATURE is an HMAC from `key hmac`", "off"},
    {NULL, false}};
static const cli_opt o_tk_hmac[] = {
    {"in", true, 'i', "FILE", "data to authenticate", "required"},
    {"hash", true, 0, "ALG", "sha2-224, sha2-256, sha2-384, sha2-512, sha3-*", "sha2-256"},
    {"key-version", true, 0, "N", "use this version", "the latest"},
    {NULL, false}};
static const cli_opt o_tk_random[] = {
    {"bytes", true, 0, "N", "how many bytes (1 to 65536)", "32"},
    {"format", true, 0, "base64|hex", "output encoding", "base64"},
    {NULL, false}};
static const cli_opt o_tk_hash[] = {
    {"in", true, 'i', "FILE", "data to hash", "required"},
    {"hash", true, 0, "ALG", "sha2-224, sha2-256, sha2-384, sha2-512, sha3-*", "sha2-256"},
    {"format", true, 0, "hex|base64", "output encoding", "hex"},
    {NULL, false}};

#define NC (CLI_NEEDS_CLIENT)
#define NT (CLI_NEEDS_CLIENT | CLI_NEEDS_TOKEN)

static const cli_cmd commands[] = {
    {"serve", NULL, cli_cmd_serve, "",
     "run the server (daemon) in the foreground", o_serve, 0, 0, 0},
    {"executor", NULL, cli_cmd_executor, "",
     "run a separate executor role: attested to the scheduler, runs its tasks", o_executor, 0,
     0, 0},
    {"login", NULL, cli_cmd_login, "",
     "log in and save the token to the token file", o_login, 0, 0, NC},
    {"logout", NULL, cli_cmd_logout, "",
     "revoke the saved token and delete the token file",
     o_none, 0, 0, NT},
    {"user", "add", cli_cmd_user_add, "NAME",
     "create a user (admin)", o_user_add, 1, 1, NT},
    {"user", "list", cli_cmd_user_list, "", "list users (admin)", o_list, 0, 0, NT},
    {"user", "show", cli_cmd_user_show, "NAME",
     "show a user: role, state, active tokens (admin, or yourself)", o_none, 1, 1, NT},
    {"user", "passwd", cli_cmd_user_passwd, "",
     "change your own password (your other tokens are revoked)", o_passwd, 0, 0, NT},
    {"user", "reset-password", cli_cmd_user_reset_password, "NAME",
     "set a user's password, revoking their tokens (admin; generated and shown once "
     "without --password-file)",
     o_pwfile, 1, 1, NT},
    {"user", "disable", cli_cmd_user_disable, "NAME",
     "disable a user: no login, their tokens refused at once (admin)", o_none, 1, 1, NT},
    {"user", "enable", cli_cmd_user_enable, "NAME", "enable a disabled user (admin)", o_none, 1,
     1, NT},
    {"user", "delete", cli_cmd_user_delete, "NAME",
     "delete a user (admin; refused while they take part in unfinished tasks; the name is "
     "not reused)",
     o_none, 1, 1, NT},
    {"whoami", NULL, cli_cmd_whoami, "", "show who the saved token belongs to and its role",
     o_none, 0, 0, NT},
    {"key", "generate", cli_cmd_key_generate, "",
     "generate a fresh random key (e.g. for an output file)", o_key_out, 0, 0, 0},
    {"key", "create", cli_cmd_key_create, "NAME",
     "create a KeyStore key (Vault transit; docs/keystore.md)", o_tk_create, 1, 1, NT},
    {"key", "read", cli_cmd_key_read, "NAME",
     "show a KeyStore key: type, versions, public keys (NAME or OWNER:NAME)", o_none, 1, 1, NT},
    {"key", "list", cli_cmd_key_list, "", "list your KeyStore keys and those granted to you",
     o_none, 0, 0, NT},
    {"key", "rotate", cli_cmd_key_rotate, "NAME", "add a new latest version of a KeyStore key",
     o_none, 1, 1, NT},
    {"key", "config", cli_cmd_key_config, "NAME",
     "set a KeyStore key's minimum versions and deletion_allowed", o_tk_config, 1, 1, NT},
    {"key", "delete", cli_cmd_key_delete, "NAME",
     "delete a KeyStore key and all its versions (after --deletion-allowed true)", o_none, 1, 1,
     NT},
    {"key", "encrypt", cli_cmd_key_encrypt, "NAME",
     "encrypt a file with a KeyStore key; prints vault:vN:...", o_tk_encrypt, 1, 1, NT},
    {"key", "decrypt", cli_cmd_key_decrypt, "NAME CIPHERTEXT",
     "decrypt a vault:vN:... ciphertext with a KeyStore key", o_tk_decrypt, 2, 2, NT},
    {"key", "rewrap", cli_cmd_key_rewrap, "NAME CIPHERTEXT",
     "re-encrypt a ciphertext under the latest version, without seeing the plaintext",
     o_tk_rewrap, 2, 2, NT},
    {"key", "datakey", cli_cmd_key_datakey, "NAME",
     "make a random data key encrypted under a KeyStore key", o_tk_datakey, 1, 1, NT},
    {"key", "sign", cli_cmd_key_sign, "NAME", "sign a file with a KeyStore key", o_tk_sign, 1,
     1, NT},
    {"key", "verify", cli_cmd_key_verify, "NAME SIGNATURE",
     "verify a signature or HMAC; exit 1 when it does not verify", o_tk_verify, 2, 2, NT},
    {"key", "hmac", cli_cmd_key_hmac, "NAME", "HMAC of a file with a KeyStore key", o_tk_hmac, 1,
     1, NT},
    {"key", "random", cli_cmd_key_random, "", "random bytes from the KeyStore", o_tk_random, 0,
     0, NT},
    {"key", "hash", cli_cmd_key_hash, "", "hash a file on the server", o_tk_hash, 0, 0, NT},
    {"key", "import", cli_cmd_key_import, "NAME",
     "import your own key, wrapped locally for the KeyStore (Vault BYOK)", o_tk_import, 1, 1,
     NT},
    {"key", "grant", cli_cmd_key_grant, "NAME",
     "let another user use your KeyStore key for named operations", o_tk_grant, 1, 1, NT},
    {"key", "revoke", cli_cmd_key_revoke, "NAME", "revoke a user's grant on your KeyStore key",
     o_tk_revoke, 1, 1, NT},
    {"key", "export", cli_cmd_key_export, "NAME",
     "export an exportable KeyStore key (Vault's forms; public-key: any readable key)",
     o_tk_export, 1, 1, NT},
    {"key", "backup", cli_cmd_key_backup, "NAME",
     "plaintext backup of a key (needs --exportable and --allow-plaintext-backup)", o_tk_backup,
     1, 1, NT},
    {"key", "restore", cli_cmd_key_restore, "[NAME]",
     "restore a backup into your namespace (as NAME, else the backup's name)", o_tk_restore, 0,
     1, NT},
    {"key", "trim", cli_cmd_key_trim, "NAME", "destroy a KeyStore key's oldest versions",
     o_tk_trim, 1, 1, NT},
    {"file", "encrypt", cli_cmd_file_encrypt, "",
     "encrypt a file locally under a new key (or an existing one)", o_encrypt, 0, 0, 0},
    {"file", "decrypt", cli_cmd_file_decrypt, "",
     "decrypt a file locally (with --task/--slot/--file: only that task output)", o_decrypt, 0,
     0, 0},
    {"file", "upload", cli_cmd_file_upload, "CIPHERTEXT",
     "upload ciphertext; prints its url",
     o_none, 1, 1, NT},
    {"file", "register", cli_cmd_file_register, "URL",
     "register an input file (file://, https://: --sha256 of the ciphertext; computed for a "
     "readable file:// path); prints its id",
     o_register, 1, 1, NT},
    {"file", "register-output", cli_cmd_file_register_output, "",
     "register an output file; prints its id", o_register_out, 0, 0, NT},
    {"file", "register-fusion", cli_cmd_file_register_fusion, "",
     "register a fusion file (platform key); prints its id", o_fusion, 0, 0, NT},
    {"file", "list", cli_cmd_file_list, "",
     "list your files", o_list, 0, 0, NT},
    {"file", "show", cli_cmd_file_show, "FILE_ID",
     "show a file", o_none, 1, 1, NT},
    {"file", "download", cli_cmd_file_download, "FILE_ID",
     "download an output's ciphertext (refused unless bound to FILE_ID)", o_download, 1, 1, NT},
    {"file", "delete", cli_cmd_file_delete, "FILE_ID",
     "delete a file", o_none, 1, 1, NT},
    {"file", "as-input", cli_cmd_file_as_input, "FILE_ID",
     "turn a written output into a new input; prints its id", o_none, 1, 1, NT},
    {"function", "register", cli_cmd_function_register, "",
     "register a function; prints its id", o_fn_register, 0, 0, NT},
    {"function", "list", cli_cmd_function_list, "", "list visible functions", o_list, 0, 0, NT},
    {"function", "builtins", cli_cmd_function_builtins, "[NAME]",
     "list the built-in functions with their arguments and slots (and the reserved ones of "
     "wasm and python, and the modules python functions may import)",
     o_none, 0, 1, NT},
    {"function", "show", cli_cmd_function_show, "FUNCTION_ID", "show a function", o_none, 1, 1,
     NT},
    {"function", "update", cli_cmd_function_update, "FUNCTION_ID",
     "update a function", o_spec, 1, 1, NT},
    {"function", "disable", cli_cmd_function_disable, "FUNCTION_ID",
     "disable a function",
     o_none, 1, 1, NT},
    {"function", "delete", cli_cmd_function_delete, "FUNCTION_ID",
     "delete a function", o_none,
     1, 1, NT},
    {"function", "stats", cli_cmd_function_stats, "FUNCTION_ID",
     "usage of a function",
     o_none, 1, 1, NT},
    {"task", "create", cli_cmd_task_create, "",
     "create a task; prints its id", o_task_create, 0, 0, NT},
    {"task", "assign", cli_cmd_task_assign, "TASK_ID",
     "assign your files to a task", o_task_assign, 1, 1, NT},
    {"task", "approve", cli_cmd_task_approve, "TASK_ID",
     "approve a task", o_none, 1, 1, NT},
    {"task", "invoke", cli_cmd_task_invoke, "TASK_ID",
     "start a task", o_none, 1, 1, NT},
    {"task", "cancel", cli_cmd_task_cancel, "TASK_ID",
     "cancel a task", o_none, 1, 1, NT},
    {"task", "show", cli_cmd_task_show, "TASK_ID",
     "show a task", o_none, 1, 1, NT},
    {"task", "list", cli_cmd_task_list, "",
     "list your tasks", o_list, 0, 0, NT},
    {"task", "wait", cli_cmd_task_wait, "TASK_ID",
     "wait for a final status; exit 0 only if finished", o_wait, 1, 1, NT},
    {"task", "result", cli_cmd_task_result, "TASK_ID",
     "download and decrypt an output of a finished task (refused unless bound to it)", o_result,
     1, 1, NT},
    {"audit", "list", cli_cmd_audit_list, "",
     "audit entries you may see", o_audit_list, 0, 0, NT},
    {"audit", "checkpoint", cli_cmd_audit_checkpoint, "",
     "get a signed audit checkpoint (entry count + head hash); --out keeps it", o_audit_cp, 0, 0,
     NT},
    {"audit", "export", cli_cmd_audit_export, "",
     "export the audit entries from SEQ (or TIME, RFC 3339) on, with the chain anchor "
     "(offline, on the server's host)",
     o_audit_export, 0, 0, 0},
    {"audit", "prune", cli_cmd_audit_prune, "",
     "ask the server to delete the audit entries before SEQ, once FILE (an export) holds them",
     o_audit_prune, 0, 0, NT},
    {"admin", "release", cli_cmd_admin_release,
     "show|allow VALUE|revoke VALUE|draft [allow|revoke VALUE]|signers",
     "show or change the KeyStore release policy: which builds (measurements, SGX signers, "
     "minimum SVNs) and nodes get the platform keys; signers changes the auditor set; draft "
     "prints the document auditors sign for a change (admin)",
     o_admin_release, 1, 3, NT},
    {"admin", "keystore", cli_cmd_admin_keystore, "status|rotate|legacy HEX|escrow [draft]",
     "KeyStore root key versions and rewrap progress; rotate the root key; carry keys of a "
     "pre-KeyStore build over; escrow the root keys to recovery recipients (admin; with "
     "auditors: escrow draft prints the document they sign)",
     o_admin_keystore, 1, 2, NT},
    {"audit", "verify", cli_cmd_audit_verify, "",
     "check the audit log against held checkpoints: offline (--data-dir) or via the server",
     o_audit_verify, 0, 0, CLI_ONLINE_UNLESS_DATA_DIR},
    {"attest", "show", cli_cmd_attest_show, "",
     "print the server's attestation claims (TLS handshake only, no credentials sent)", o_none,
     0, 0, NC},
    {"attest", "verify", cli_cmd_attest_verify, "",
     "check the server against a policy (TLS handshake only)", o_none, 0, 0, NC},
    {"attest", "verify-evidence", cli_cmd_attest_verify_evidence, "FILE",
     "verify recorded evidence offline (with --policy: as a live client does)", o_attest_ev, 1,
     1, CLI_NEEDS_CONFIG},
    {"attest", "tpm-enroll", cli_cmd_attest_tpm_enroll, "",
     "enrol a TPM's attestation key by credential activation; writes a signed record",
     o_tpm_enroll, 0, 0, 0},
    {"attest", "tpm-request", cli_cmd_attest_tpm_request, "",
     "TPM host: the AK and EK certificate to enrol (split enrolment, step 1)", o_tpm_host, 0, 0,
     0},
    {"attest", "tpm-challenge", cli_cmd_attest_tpm_challenge, "REQUEST.json",
     "enroller: check the EK and make the activation challenge (step 2)", o_tpm_challenge, 1, 1,
     0},
    {"attest", "tpm-activate", cli_cmd_attest_tpm_activate, "CHALLENGE.json",
     "TPM host: answer the challenge with the TPM (step 3; then tpm-enroll --state)", o_tpm_host,
     1, 1, 0},
    {"measure", NULL, cli_cmd_measure, "",
     "print the expected measurement (soft) or application PCR value (tpm2), for a policy",
     o_serve, 0, 0, 0},
    {"policy", "sign", cli_cmd_policy_sign, "POLICY",
     "sign a policy file as an auditor (writes or extends POLICY.sig)", o_policy_sign, 1, 1, 0},
    {"backup", NULL, cli_cmd_backup, "",
     "online snapshot of a data directory into one archive (run on the server's host)",
     o_backup, 0, 0, 0},
    {"restore", NULL, cli_cmd_restore, "",
     "verify a backup archive, then restore it into a new or empty directory (--check: only "
     "verify)",
     o_restore, 0, 0, 0},
    {"config", "show", cli_cmd_config_show, "",
     "show the effective settings and their source",
     o_none, 0, 0, CLI_NEEDS_CONFIG},
    {"completion", "bash", cli_cmd_completion_bash, "",
     "print the bash completion script (source it, or install it as "
     "share/bash-completion/completions/mesatee)", o_none, 0, 0, 0},
    {"__man", NULL, cli_cmd_man, "", "print the mesatee(1) man page (troff)", o_none, 0, 0,
     CLI_HIDDEN},
    {"__check-help", NULL, cli_cmd_check_help, "", "check the command table's help texts",
     o_none, 0, 0, CLI_HIDDEN},
};
#pragma GCC diagnostic pop
#define N_COMMANDS (sizeof commands / sizeof commands[0])

const cli_cmd *cli_commands(size_t *n)
{
    *n = N_COMMANDS;
    return commands;
}

const cli_opt *cli_global_opts(void)
{
    return o_global;
}

/* ======================================================================== */
/* Helpers shared with the command modules                                   */

const char *cli_opt_get(const cli_ctx *ctx, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < ctx->n_opt; i++)
        if (strcmp(ctx->opt[i].name, name) == 0)
            v = ctx->opt[i].value;
    return v;
}

bool cli_opt_has(const cli_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->n_opt; i++)
        if (strcmp(ctx->opt[i].name, name) == 0)
            return true;
    return false;
}

int cli_opt_all(const cli_ctx *ctx, const char *name, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < ctx->n_opt && n < max; i++)
        if (strcmp(ctx->opt[i].name, name) == 0)
            out[n++] = ctx->opt[i].value;
    return n;
}

/* The command line's context, for the error printers below (set by main). */
static cli_ctx *g_ctx;

/* JSON-safe copy of msg: bytes that are not printable ASCII become '?'. */
static void ascii_only(char *msg)
{
    for (unsigned char *p = (unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
}

/* Prints one error: "mesatee: <msg>" or, with --output json, the object
 * {"error":{"message","code","http_status","exit_code"}} on one line of
 * stderr. For server errors (libmesatee's "HTTP <status> <code>: <message>")
 * code and http_status are the server's; else code is "usage" or "failed". */
static void print_error(int exit_code, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void print_error(int exit_code, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!g_ctx || !g_ctx->json) {
        fprintf(stderr, "mesatee: %s\n", msg);
        return;
    }
    int http = 0;
    char code[64] = "";
    const char *h = strstr(msg, "HTTP ");
    if (h && sscanf(h, "HTTP %3d %63[a-z_]", &http, code) < 1)
        http = 0;
    if (http < 100 || http > 599)
        http = 0;
    if (!code[0] && exit_code != CLI_USAGE) { /* a libmesatee error: its status name */
        const char *cm = g_ctx->client ? mesatee_client_errmsg(g_ctx->client) : "";
        const char *tm = mesatee_client_errmsg(NULL);
        int st = *cm && strstr(msg, cm)   ? mesatee_client_errcode(g_ctx->client)
                 : *tm && strstr(msg, tm) ? mesatee_client_errcode(NULL)
                                          : MESATEE_OK;
        if (st != MESATEE_OK)
            snprintf(code, sizeof code, "%s", mesatee_status_name(st));
    }
    if (!code[0])
        snprintf(code, sizeof code, "%s", exit_code == CLI_USAGE ? "usage" : "failed");
    json_t *m = json_string(msg);
    if (!m) { /* not UTF-8 */
        ascii_only(msg);
        m = json_string(msg);
    }
    json_t *e = json_pack("{s:{s:o*,s:s,s:o,s:i}}", "error", "message", m, "code", code,
                          "http_status", http ? json_integer(http) : json_null(), "exit_code",
                          exit_code);
    char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s\n", s ? s : "{\"error\":{\"message\":\"out of memory\"}}");
    free(s);
    json_decref(e);
}

int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(CLI_USAGE, fmt, ap);
    va_end(ap);
    if (g_ctx && g_ctx->json)
        return CLI_USAGE;
    if (ctx && ctx->cmd)
        cli_help_hint(stderr, ctx->cmd);
    else
        fputs("Run 'mesatee --help' for the commands and options.\n", stderr);
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(CLI_FAIL, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_json_print(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s)
        return cli_fail("cannot encode the result as JSON (file names must be UTF-8)");
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail("cannot write output: %s", strerror(errno));
}

/* A usage error about a command group: the message, then (text mode) the
 * group's commands. */
static int group_error(const char *group, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int group_error(const char *group, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(CLI_USAGE, fmt, ap);
    va_end(ap);
    if (!g_ctx || !g_ctx->json)
        cli_help_group(stderr, group);
    return CLI_USAGE;
}

/* ======================================================================== */
/* Command line                                                              */

/* Records a global option; returns false if name is not global. */
static bool set_global(cli_ctx *ctx, const char *name, const char *value)
{
    const char **slot = NULL;
    if (!strcmp(name, "server"))
        slot = &ctx->f_server;
    else if (!strcmp(name, "ca"))
        slot = &ctx->f_ca;
    else if (!strcmp(name, "token-file"))
        slot = &ctx->f_token_file;
    else if (!strcmp(name, "config"))
        slot = &ctx->f_config;
    else if (!strcmp(name, "output")) {
        slot = &ctx->f_output;
        ctx->json = !strcmp(value, "json"); /* errors from here on in JSON */
    } else if (!strcmp(name, "policy"))
        slot = &ctx->f_policy;
    else if (!strcmp(name, "policy-signers"))
        slot = &ctx->f_policy_signers;
    else if (!strcmp(name, "policy-threshold"))
        slot = &ctx->f_policy_threshold;
    else if (!strcmp(name, "tls-server-name"))
        slot = &ctx->f_tls_server_name;
    if (!slot)
        return false;
    *slot = value;
    return true;
}

/* The option of list named name (long form) or letter (short form, name NULL). */
static const cli_opt *find_in(const cli_opt *list, const char *name, char letter)
{
    for (const cli_opt *o = list; o && o->name; o++)
        if (name ? !strcmp(o->name, name) : (letter && o->short_name == letter))
            return o;
    return NULL;
}

static bool group_exists(const char *g)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g))
            return true;
    return false;
}

static const cli_cmd *find_cmd(const char *g, const char *sub)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g) &&
            ((!commands[i].sub && !sub) || (commands[i].sub && sub && !strcmp(commands[i].sub, sub))))
            return &commands[i];
    return NULL;
}

static bool group_has_subs(const char *g)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].group, g) && commands[i].sub)
            return true;
    return false;
}

/* "; did you mean 'X'?" for a mistyped group (group NULL) or subcommand. */
static const char *suggest_cmd(const char *group, const char *word, char *buf, size_t cap)
{
    const char *cands[N_COMMANDS];
    size_t n = 0;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (commands[i].flags & CLI_HIDDEN)
            continue;
        if (!group)
            cands[n++] = commands[i].group;
        else if (!strcmp(commands[i].group, group) && commands[i].sub)
            cands[n++] = commands[i].sub;
    }
    const char *best = cli_closest(word, cands, n);
    if (!best)
        return "";
    snprintf(buf, cap, "; did you mean '%s%s%s'?", group ? group : "", group ? " " : "", best);
    return buf;
}

/* "; did you mean '--X'?" for a mistyped option of cmd (or a global one). */
static const char *suggest_opt(const cli_cmd *cmd, const char *name, char *buf, size_t cap)
{
    const char *cands[CLI_MAX_OPTS * 2];
    size_t n = 0;
    for (const cli_opt *o = cmd ? cmd->opts : NULL; o && o->name && n < CLI_MAX_OPTS; o++)
        cands[n++] = o->name;
    for (const cli_opt *o = o_global; o->name && n < CLI_MAX_OPTS * 2; o++)
        cands[n++] = o->name;
    const char *best = cli_closest(name, cands, n);
    if (!best)
        return "";
    snprintf(buf, cap, "; did you mean '--%s'?", best);
    return buf;
}

/* Prints the help that fits what was parsed so far; returns -1. */
static int print_help(const cli_ctx *ctx, const char *group)
{
    if (ctx->cmd)
        cli_help_command(stdout, ctx->cmd);
    else if (group)
        cli_help_group(stdout, group);
    else
        cli_help_top(stdout);
    return -1;
}

/* Parses argv into ctx. Returns CLI_OK, CLI_USAGE (message printed) or -1
 * for --help/--version (printed to stdout, exit 0). */
static int parse_args(int argc, char **argv, cli_ctx *ctx)
{
    const char *group = NULL;
    bool only_pos = false;
    char hint[128];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            char name[64];
            const char *value = NULL;
            const cli_opt *own = NULL, *glob = NULL;
            if (a[1] != '-') { /* -x, -xVALUE */
                own = ctx->cmd ? find_in(ctx->cmd->opts, NULL, a[1]) : NULL;
                glob = own ? NULL : find_in(o_global, NULL, a[1]);
                const cli_opt *o = own ? own : glob;
                if (!o)
                    return cli_usage_error(ctx, "unknown option '%.8s'", a);
                snprintf(name, sizeof name, "%s", o->name);
                if (a[2] && !o->has_arg)
                    return cli_usage_error(ctx, "option '-%c' (--%s) takes no value", a[1],
                                           name);
                if (a[2])
                    value = a + 2;
            } else {
                const char *eq = strchr(a + 2, '=');
                size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
                if (nlen == 0 || nlen >= sizeof name)
                    return cli_usage_error(ctx, "bad option '%.80s'", a);
                memcpy(name, a + 2, nlen);
                name[nlen] = '\0';
                value = eq ? eq + 1 : NULL;
                /* A command's own option wins over a global one of the same
                 * name (task create/assign --output SLOT=...); the global one
                 * is then given before the command or through the environment. */
                own = ctx->cmd ? find_in(ctx->cmd->opts, name, 0) : NULL;
                glob = own ? NULL : find_in(o_global, name, 0);
            }
            if (glob && (!strcmp(glob->name, "help") || !strcmp(glob->name, "version") ||
                         !strcmp(glob->name, "insecure"))) {
                if (value)
                    return cli_usage_error(ctx, "--%s takes no value", glob->name);
                if (!strcmp(glob->name, "help"))
                    return print_help(ctx, group);
                if (!strcmp(glob->name, "version")) {
                    printf("mesatee %s\n", mesatee_version());
                    return -1;
                }
                ctx->insecure = true;
                continue;
            }
            if (!own && !glob) {
                if (!ctx->cmd && group)
                    return group_error(group, "missing subcommand of '%s' before '%s'", group,
                                       a);
                if (!ctx->cmd)
                    return cli_usage_error(ctx, "unknown global option '%s'%s", a,
                                           suggest_opt(NULL, name, hint, sizeof hint));
                return cli_usage_error(ctx, "unknown option '--%s'%s", name,
                                       suggest_opt(ctx->cmd, name, hint, sizeof hint));
            }
            const cli_opt *o = own ? own : glob;
            if (o->has_arg) {
                if (!value) {
                    if (i + 1 >= argc)
                        return cli_usage_error(ctx, "option '--%s' needs a value", o->name);
                    value = argv[++i];
                }
            } else if (value) {
                return cli_usage_error(ctx, "option '--%s' takes no value", o->name);
            }
            if (glob) {
                set_global(ctx, o->name, value);
                continue;
            }
            if (ctx->n_opt >= CLI_MAX_OPTS)
                return cli_usage_error(ctx, "too many options");
            ctx->opt[ctx->n_opt].name = o->name;
            ctx->opt[ctx->n_opt].value = value;
            ctx->n_opt++;
            continue;
        }
        /* a word */
        if (!ctx->cmd && !group) {
            if (!strcmp(a, "help")) { /* mesatee help [COMMAND [SUB]] */
                if (i + 1 < argc && !group_exists(argv[i + 1]))
                    return cli_usage_error(NULL, "unknown command '%.64s'%s", argv[i + 1],
                                           suggest_cmd(NULL, argv[i + 1], hint, sizeof hint));
                if (i + 1 < argc) {
                    group = argv[++i];
                    if (i + 1 < argc)
                        ctx->cmd = find_cmd(group, argv[i + 1]);
                    if (!group_has_subs(group))
                        ctx->cmd = find_cmd(group, NULL);
                }
                return print_help(ctx, group);
            }
            if (!group_exists(a))
                return cli_usage_error(NULL, "unknown command '%.64s'%s", a,
                                       suggest_cmd(NULL, a, hint, sizeof hint));
            group = a;
            if (!group_has_subs(a))
                ctx->cmd = find_cmd(a, NULL);
            continue;
        }
        if (!ctx->cmd) {
            if (!(ctx->cmd = find_cmd(group, a)))
                return group_error(group, "unknown command '%s %.64s'%s", group, a,
                                   suggest_cmd(group, a, hint, sizeof hint));
            continue;
        }
        if (ctx->n_pos >= CLI_MAX_POS)
            return cli_usage_error(ctx, "too many arguments");
        ctx->pos[ctx->n_pos++] = a;
    }
    if (!ctx->cmd) {
        if (group)
            return group_error(group, "'%s' needs a subcommand", group);
        return cli_usage_error(NULL, "missing command");
    }
    if (ctx->n_pos < ctx->cmd->min_pos)
        return cli_usage_error(ctx, "missing argument");
    if (ctx->n_pos > ctx->cmd->max_pos)
        return cli_usage_error(ctx, "unexpected argument '%s'", ctx->pos[ctx->cmd->max_pos]);
    return CLI_OK;
}

/* ======================================================================== */
/* Settings: flags > environment > config file > defaults                    */

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $XDG_CONFIG_HOME/mesatee/<leaf> or ~/.config/mesatee/<leaf>; heap or NULL. */
static char *default_config_path(const char *leaf)
{
    const char *xdg = nonempty_env("XDG_CONFIG_HOME"), *home = nonempty_env("HOME");
    if (!xdg && !home)
        return NULL;
    size_t n = strlen(xdg ? xdg : home) + strlen(leaf) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, xdg ? "%s/mesatee/%s" : "%s/.config/mesatee/%s", xdg ? xdg : home, leaf);
    return p;
}

static void setting_from(cli_setting *s, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setting_from(cli_setting *s, const char *value, const char *fmt, ...)
{
    s->value = value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->source, sizeof s->source, fmt, ap);
    va_end(ap);
}

static char *keep(cli_ctx *ctx, char *s)
{
    if (s && ctx->n_owned < (int)(sizeof ctx->owned / sizeof ctx->owned[0]))
        ctx->owned[ctx->n_owned++] = s;
    else if (s) {
        free(s);
        s = NULL;
    }
    return s;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Reads the config file (cli_config.h is its one reader); fills file-level
 * settings (only where flag/env did not set them). Returns CLI_OK or
 * CLI_USAGE (message printed). */
static int read_config(cli_ctx *ctx, const char *path, bool must_exist)
{
    uint8_t *text = NULL;
    size_t len = 0;
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_file_read(path, CLI_CONFIG_MAX_BYTES, &text, &len, &err);
    if (st == MT_ENOTFOUND && !must_exist)
        return CLI_OK;
    if (st)
        return cli_usage_error(NULL, "cannot read config file %s (%s)", path, err.msg);
    ctx->config_found = true;
    cli_config cf;
    st = cli_config_parse((const char *)text, len, &cf, &err);
    free(text);
    if (st) {
        if (cf.error_line)
            cli_fail("%s:%d: %s", path, cf.error_line, err.msg);
        else
            cli_fail("%s: %s", path, err.msg);
        return CLI_USAGE;
    }
    cli_setting *targets[CLI_CONFIG_NKEYS] = {&ctx->server, &ctx->ca, &ctx->token_file,
                                              &ctx->output, &ctx->tls_server_name};
    int rc = CLI_OK;
    for (int k = 0; k < CLI_CONFIG_NKEYS; k++) {
        if (!cf.value[k] || targets[k]->value)
            continue;
        char *v = keep(ctx, cf.value[k]);
        cf.value[k] = NULL;
        if (!v) {
            rc = cli_fail("out of memory");
            break;
        }
        setting_from(targets[k], v, "config %s:%d", path, cf.line[k]);
    }
    cli_config_clear(&cf);
    return rc;
}

/* Resolves server, ca, token_file, output and config. */
static int resolve_settings(cli_ctx *ctx)
{
    const char *v;
    /* config path */
    bool must_exist = false;
    if (ctx->f_config) {
        setting_from(&ctx->config, ctx->f_config, "--config");
        must_exist = true;
    } else if ((v = nonempty_env("MESATEE_CONFIG"))) {
        setting_from(&ctx->config, v, "MESATEE_CONFIG");
    } else {
        char *p = keep(ctx, default_config_path("config"));
        setting_from(&ctx->config, p, "default");
    }
    struct {
        cli_setting *s;
        const char *flag, *flag_name, *env;
    } map[] = {
        {&ctx->server, ctx->f_server, "--server", "MESATEE_SERVER"},
        {&ctx->ca, ctx->f_ca, "--ca", "MESATEE_CA"},
        {&ctx->token_file, ctx->f_token_file, "--token-file", "MESATEE_TOKEN_FILE"},
        {&ctx->output, ctx->f_output, "--output", "MESATEE_OUTPUT"},
        {&ctx->policy, ctx->f_policy, "--policy", "MESATEE_POLICY"},
        {&ctx->policy_signers, ctx->f_policy_signers, "--policy-signers",
         "MESATEE_POLICY_SIGNERS"},
        {&ctx->policy_threshold, ctx->f_policy_threshold, "--policy-threshold",
         "MESATEE_POLICY_THRESHOLD"},
        {&ctx->tls_server_name, ctx->f_tls_server_name, "--tls-server-name",
         "MESATEE_TLS_SERVER_NAME"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].flag)
            setting_from(map[i].s, map[i].flag, "%s", map[i].flag_name);
        else if ((v = nonempty_env(map[i].env)))
            setting_from(map[i].s, v, "%s", map[i].env);
    }
    if (ctx->config.value) {
        int rc = read_config(ctx, ctx->config.value, must_exist);
        if (rc != CLI_OK)
            return rc;
    }
    if (!ctx->server.value)
        setting_from(&ctx->server, CLI_DEFAULT_SERVER, "default");
    if (!ctx->token_file.value) {
        char *p = keep(ctx, default_config_path("token"));
        setting_from(&ctx->token_file, p, "default");
    }
    if (!ctx->output.value)
        setting_from(&ctx->output, "text", "default");
    return CLI_OK;
}

/* Output mode only (for commands that need no config): flag > env. */
static int resolve_output(cli_ctx *ctx)
{
    const char *out = ctx->output.value;
    if (!out) {
        out = ctx->f_output ? ctx->f_output : nonempty_env("MESATEE_OUTPUT");
        if (!out)
            out = "text";
    }
    ctx->json = !strcmp(out, "json");
    if (!ctx->json && strcmp(out, "text") != 0)
        return cli_usage_error(ctx, "output must be 'text' or 'json', not '%.32s'", out);
    return CLI_OK;
}

/* Builds the client: server URL, CA, insecure flag, saved token. */
static int make_client(cli_ctx *ctx)
{
    ctx->client = mesatee_client_new(ctx->server.value);
    if (!ctx->client)
        return cli_usage_error(NULL, "%s (server from %s)", mesatee_client_errmsg(NULL),
                               ctx->server.source);
    if (ctx->tls_server_name.value &&
        mesatee_client_set_tls_server_name(ctx->client, ctx->tls_server_name.value) != 0)
        return cli_usage_error(ctx, "%s (from %s)", mesatee_client_errmsg(ctx->client),
                               ctx->tls_server_name.source);
    if (ctx->insecure) {
        fprintf(stderr, "mesatee: WARNING: --insecure: the server's certificate is NOT "
                        "verified; the token and keys can be intercepted\n");
        mesatee_client_set_insecure_skip_verify(ctx->client, 1);
    } else if (ctx->policy.value) { /* attested TLS: the policy replaces CA pinning */
        unsigned threshold = 0;
        int trc = cli_policy_threshold(ctx, &threshold);
        if (trc != CLI_OK)
            return trc;
        if (ctx->policy_signers.value &&
            mesatee_client_set_policy_signers(ctx->client, ctx->policy_signers.value,
                                              threshold) != 0)
            return cli_fail("%s", mesatee_client_errmsg(ctx->client));
        if (mesatee_client_set_policy_file(ctx->client, ctx->policy.value) != 0)
            return cli_fail("%s (policy from %s)", mesatee_client_errmsg(ctx->client),
                            ctx->policy.source);
    } else if (ctx->ca.value && mesatee_client_set_ca_file(ctx->client, ctx->ca.value) != 0) {
        return cli_fail("%s (CA from %s)", mesatee_client_errmsg(ctx->client), ctx->ca.source);
    }
    if ((ctx->flags & CLI_NEEDS_TOKEN) && ctx->token_file.value) {
        FILE *f = fopen(ctx->token_file.value, "re");
        if (f)
            setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the token */
        if (!f) {
            if (errno == ENOENT)
                return CLI_OK; /* not logged in; the server will say so */
            return cli_fail("cannot read token file %s: %s", ctx->token_file.value,
                            strerror(errno));
        }
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *tok = trim(buf);
        if (*tok && mesatee_client_set_token(ctx->client, tok) == 0)
            ctx->have_token = true;
        mt_wipe(buf, sizeof buf);
        if (!ctx->have_token)
            return cli_fail("token file %s is malformed; run 'mesatee login' again",
                            ctx->token_file.value);
    }
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    mt_secmem_install_json(); /* passwords, keys, tokens in jansson's heap: wiped on free */
#ifdef MT_CLI_HAVE_SERVER
    mt_evmem_install(); /* request bodies in libevent's buffers (mesatee serve): the same */
#endif
    g_ctx = &ctx;
    const char *env_out = nonempty_env("MESATEE_OUTPUT");
    ctx.json = env_out && !strcmp(env_out, "json"); /* JSON errors while parsing */
    if (argc < 2) {
        if (ctx.json)
            return cli_usage_error(NULL, "missing command");
        cli_help_top(stderr);
        return CLI_USAGE;
    }
    int rc = parse_args(argc, argv, &ctx);
    if (rc == -1)
        return CLI_OK;
    if (rc != CLI_OK)
        return rc;
    ctx.flags = ctx.cmd->flags;
    if ((ctx.flags & CLI_ONLINE_UNLESS_DATA_DIR) && !cli_opt_get(&ctx, "data-dir") &&
        !cli_opt_has(&ctx, "export")) /* `audit verify --export` is offline */
        ctx.flags |= CLI_NEEDS_CLIENT | CLI_NEEDS_TOKEN;
    if (ctx.flags & (CLI_NEEDS_CLIENT | CLI_NEEDS_CONFIG | CLI_NEEDS_TOKEN))
        rc = resolve_settings(&ctx);
    if (rc == CLI_OK)
        rc = resolve_output(&ctx);
    if (rc == CLI_OK && (ctx.flags & (CLI_NEEDS_CLIENT | CLI_NEEDS_TOKEN)))
        rc = make_client(&ctx);
    if (rc == CLI_OK)
        rc = ctx.cmd->run(&ctx);
    mesatee_client_free(ctx.client);
    for (int i = 0; i < ctx.n_owned; i++)
        free(ctx.owned[i]);
    return rc;
}
