/* sandbox: rlimits and the seccomp allow-list of mesatee-worker. */
#include "sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static mt_status set_limit(int res, const char *name, rlim_t soft, rlim_t hard, mt_err *err)
{
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    if (setrlimit(res, &rl) != 0)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: setrlimit(%s) failed: %s", name,
                          strerror(errno));
    return MT_OK;
}

mt_status mt_sandbox_limits(uint64_t mem_bytes, uint32_t cpu_seconds, mt_err *err)
{
    mt_status st;
#if !defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer reserves terabytes of shadow address space, so a
     * sanitizer build of the worker cannot run under RLIMIT_AS. */
    if ((st = set_limit(RLIMIT_AS, "RLIMIT_AS", mem_bytes, mem_bytes, err)) != MT_OK)
        return st;
#else
    (void)mem_bytes;
#endif
    /* SIGXCPU at the soft limit, SIGKILL one second later. */
    if ((st = set_limit(RLIMIT_CPU, "RLIMIT_CPU", cpu_seconds, (rlim_t)cpu_seconds + 1, err)) !=
            MT_OK ||
        (st = set_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, 0, err)) != MT_OK ||
        (st = set_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", MT_SANDBOX_MAX_OUTPUT_BYTES,
                        MT_SANDBOX_MAX_OUTPUT_BYTES, err)) != MT_OK)
        return st;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: PR_SET_NO_NEW_PRIVS failed: %s",
                          strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: PR_SET_DUMPABLE failed: %s",
                          strerror(errno));
    return MT_OK;
}

/* System calls a built-in, the decryption/encryption code and libc's
 * allocator need once everything is open and initialised. */
static const int allowed[] = {
    SCMP_SYS(read),          SCMP_SYS(write),        SCMP_SYS(readv),
    SCMP_SYS(writev),        SCMP_SYS(pread64),      SCMP_SYS(close),
    SCMP_SYS(fstat),         SCMP_SYS(newfstatat),   SCMP_SYS(lseek),
    SCMP_SYS(mmap),          SCMP_SYS(munmap),       SCMP_SYS(mremap),
    SCMP_SYS(mprotect),      SCMP_SYS(brk),          SCMP_SYS(madvise),
    SCMP_SYS(futex),         SCMP_SYS(exit),         SCMP_SYS(exit_group),
    SCMP_SYS(rt_sigreturn),  SCMP_SYS(rt_sigprocmask), SCMP_SYS(getrandom),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),  SCMP_SYS(getpid),      SCMP_SYS(gettid),
    SCMP_SYS(sysinfo),       SCMP_SYS(fsync),       SCMP_SYS(fdatasync),
    SCMP_SYS(sched_yield),   SCMP_SYS(restart_syscall),
    /* raise() and abort(): signals to ourselves only (checked below). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
    /* sanitizer runtime: error reports, alternate signal stacks */
    SCMP_SYS(sigaltstack),   SCMP_SYS(prctl),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(readlink), SCMP_SYS(getppid),
#endif
};

mt_status mt_sandbox_lock(int highest_fd, mt_err *err)
{
    mt_status st;
    rlim_t nofile = (rlim_t)highest_fd + 1;
    if ((st = set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", nofile, nofile, err)) != MT_OK ||
        (st = set_limit(RLIMIT_NPROC, "RLIMIT_NPROC", 0, 0, err)) != MT_OK)
        return st;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: seccomp_init failed");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof allowed[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* raise()/abort() send a signal to this process only: tgkill(own pid). */
    if (rc == 0) {
        const struct scmp_arg_cmp own_pid = {
            .arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)getpid(), .datum_b = 0};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &own_pid);
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: installing the seccomp filter failed: %s",
                          strerror(-rc));
    return MT_OK;
}
