/* sandbox: rlimits and the seccomp allow-list of mesatee-worker. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <ucontext.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "job_codec.h"

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
#if !defined(MT_SANITIZER_BUILD)
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
    /* (mmap/mprotect: oneDNN's JIT kernels in onnx_infer, builtin_onnx.c, are written
     * to anonymous memory and made executable with these; no rule was added for them.)
     * Threads (OpenMP in XGBoost, builtin_gbdt.c, and in oneDNN plus the ONNX engine's
     * pool, builtin_onnx.c), created by clone with
     * CLONE_THREAD only (rule below): a new thread registers its robust
     * futex list and its restartable-sequence area (glibc), and libgomp's
     * omp_get_num_procs() reads this process's CPU affinity. All three only
     * touch the calling thread's own state. */
    SCMP_SYS(set_robust_list), SCMP_SYS(rseq),      SCMP_SYS(sched_getaffinity),
    /* raise() and abort(): signals to ourselves only (checked below). */
#if defined(MT_SANITIZER_BUILD)
    /* sanitizer runtime: error reports, alternate signal stacks */
    SCMP_SYS(sigaltstack),   SCMP_SYS(prctl),
    SCMP_SYS(readlink), SCMP_SYS(getppid),
#endif
};

/* Files that libraries probe for configuration and do without: openat() of
 * exactly these paths fails with ENOENT instead of killing the worker.
 * - XGBoost 1.7 reads the cgroup v1 CPU quota each time it creates a booster
 *   (xgboost::Context); later versions read cgroup v2's cpu.max.
 * - glibc's malloc reads overcommit_memory the first time it shrinks the heap
 *   of a thread's arena (check_may_shrink_heap); without it, it releases the
 *   memory with madvise(MADV_DONTNEED), which is allowed.
 * Any other openat() still kills the process with SIGSYS. */
static const char *const probe_paths[] = {
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
    "/sys/fs/cgroup/cpu.max",
    "/proc/sys/vm/overcommit_memory",
};

#if defined(__x86_64__)
/* SIGSYS handler of the openat trap (SECCOMP_RET_TRAP): answers ENOENT for a
 * probe path; for anything else restores the default action and re-raises,
 * so the worker dies of SIGSYS exactly as under SCMP_ACT_KILL_PROCESS. */
static void sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
    ucontext_t *uc = uctx;
    if (si->si_code == 1 /* SYS_SECCOMP */ && si->si_syscall == SYS_openat) {
        const char *path = (const char *)uc->uc_mcontext.gregs[REG_RSI];
        for (size_t i = 0; path && i < sizeof probe_paths / sizeof probe_paths[0]; i++)
            if (strcmp(path, probe_paths[i]) == 0) {
                uc->uc_mcontext.gregs[REG_RAX] = -ENOENT;
                return;
            }
    }
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns */
}
#endif

/* Landlock (kernel >= 5.13) through raw system calls (glibc has no
 * wrappers): a ruleset handling every file-system access right of the
 * kernel's ABI, with read access (files and directories) beneath each of
 * paths and nothing else. Returns NULL when applied, else why not. */
static const char *landlock_restrict(const char *const *paths)
{
#if defined(SYS_landlock_create_ruleset) && defined(LANDLOCK_ACCESS_FS_READ_FILE)
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return errno == EOPNOTSUPP ? "Landlock is disabled in this kernel"
                                   : "this kernel has no Landlock";
    __u64 handled = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                    LANDLOCK_ACCESS_FS_MAKE_SYM;
#if defined(LANDLOCK_ACCESS_FS_REFER)
    if (abi >= 2)
        handled |= LANDLOCK_ACCESS_FS_REFER;
#endif
#if defined(LANDLOCK_ACCESS_FS_TRUNCATE)
    if (abi >= 3)
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
    struct landlock_ruleset_attr ra = {.handled_access_fs = handled};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
    if (rs < 0)
        return "creating the Landlock ruleset failed";
    for (size_t i = 0; paths && paths[i]; i++) {
        int fd = open(paths[i], O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue; /* a package directory this host does not have */
        struct stat sb;
        struct landlock_path_beneath_attr pb = {
            .allowed_access = LANDLOCK_ACCESS_FS_READ_FILE,
            .parent_fd = fd,
        };
        if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
            pb.allowed_access |= LANDLOCK_ACCESS_FS_READ_DIR;
        long r = syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
        close(fd);
        if (r != 0) {
            close(rs);
            return "adding a Landlock rule failed";
        }
    }
    long r = syscall(SYS_landlock_restrict_self, rs, 0);
    close(rs);
    return r == 0 ? NULL : "Landlock restrict_self failed";
#else
    (void)paths;
    return "built without Landlock headers";
#endif
}

static mt_status lock_common(int highest_fd, bool python, mt_err *err);

mt_status mt_sandbox_lock(int highest_fd, mt_err *err)
{
    return lock_common(highest_fd, false, err);
}

mt_status mt_sandbox_lock_python(int highest_fd, const char *const *ro_paths,
                                 const char **landlock_why, mt_err *err)
{
    *landlock_why = landlock_restrict(ro_paths);
    return lock_common(highest_fd + 64, true, err);
}

/* Added for "python" only (CPython 3.11 importing modules, NumPy/pandas):
 * - getdents64: the import system lists package directories (os.listdir);
 * - fcntl, by command only (rule in build_filter): F_GETFD/F_SETFD
 *   (CPython sets and reads FD_CLOEXEC on the files it opens), F_GETFL,
 *   F_DUPFD/F_DUPFD_CLOEXEC (os.dup), F_SETFL without O_ASYNC (O_ASYNC:
 *   EPERM); file locks fail with EACCES; any other command (F_SETOWN,
 *   F_SETSIG: a signal the kernel would send for the worker to a process of
 *   its choice, at every later I/O on a shared file such as the stderr
 *   relay's pipe; F_SETPIPE_SZ, F_SETLEASE, F_NOTIFY, seals) kills the
 *   worker;
 * - ioctl: isatty() on stdio and io.open's probes; answered ENOTTY (below);
 * - getcwd, readlink: path normalisation (os.getcwd, realpath of modules);
 * - getuid/geteuid/getgid/getegid: module initialisation (os, pwd-less site);
 * - uname: platform and sysconfig queries at import;
 * - sched_getaffinity, sysinfo: os.cpu_count() and OpenBLAS's thread count;
 * - prlimit64: the resource limits read by NumPy/OpenBLAS, of this process
 *   only: its pid argument must be 0 (glibc's getrlimit/setrlimit pass 0;
 *   rule in build_filter). Another process of the same user (the zygote,
 *   its spare, a concurrent worker) would otherwise be open to having its
 *   limits lowered; prlimit64 with any other pid kills the worker.
 * - getrusage: the process's own resource usage (scikit-learn/joblib);
 * openat is allowed with read-only flags only (rule below); Landlock bounds
 * which files. */
static const int python_allowed[] = {
    SCMP_SYS(getdents64), SCMP_SYS(getcwd),  SCMP_SYS(readlink),
    SCMP_SYS(getuid),     SCMP_SYS(geteuid), SCMP_SYS(getgid),  SCMP_SYS(getegid),
    SCMP_SYS(uname),      SCMP_SYS(dup),     SCMP_SYS(statx),
    SCMP_SYS(getrusage),
};

/* python: calls that packages make at import and do without: they fail
 * with ENOSYS instead of killing the process.
 * - epoll_create1, pipe2: subprocess.Popen's set-up, which pandas reaches at
 *   import through platform.processor() (`uname -p`); it catches the OSError.
 *   (Starting the process itself would be killed: no fork, no exec.)
 * - poll: glibc's name-service client (nscd) when a package looks up the
 *   user (os.path.expanduser without HOME).
 * - statfs: libffi, allocating the first ctypes callback (XGBoost's Python
 *   package creates one at import), probes statfs("/selinux") and then
 *   /proc/mounts (Landlock: EACCES) for SELinux: it counts as absent.
 * socket fails with EACCES (below) for the same lookup: no socket exists in
 * the sandbox either way; a function's own socket.socket() is refused
 * earlier by the audit hook with a message. */
static const int python_enosys[] = {
    SCMP_SYS(epoll_create1), SCMP_SYS(pipe2), SCMP_SYS(poll), SCMP_SYS(statfs),
};

/* The seccomp filter of mt_sandbox_lock (python false) or
 * mt_sandbox_lock_python, for a process whose pid is pid (tgkill's rule).
 * NULL with *rcp (negative errno) on failure. */
static scmp_filter_ctx build_filter(bool python, pid_t pid, int *rcp)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        *rcp = -ENOMEM;
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof allowed[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    for (size_t i = 0; python && rc == 0 && i < sizeof python_allowed / sizeof python_allowed[0];
         i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, python_allowed[i], 0);
    /* python: prlimit64 on this process only (pid argument 0). Every call
     * of both filters that names a process or thread is confined to this
     * process: prlimit64 (here), tgkill (own thread group, below); kill,
     * tkill, ptrace, process_vm_*, pidfd_*, setpriority, sched_set* are
     * not allowed at all. sched_getaffinity (both filters) takes a thread
     * id, the caller's own when libgomp/glibc ask (pthread_getaffinity_np
     * passes the thread's tid, so no fixed value fits): it only reads. */
    if (python && rc == 0) {
        const struct scmp_arg_cmp self = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = 0, .datum_b = 0};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, &self);
    }
    if (python && rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
    /* python: fcntl by command (see python_allowed); F_SETFL only without
     * O_ASYNC (with it: EPERM); locks: EACCES; the rest kills */
    static const scmp_datum_t fcntl_ok[] = {F_GETFD, F_SETFD, F_GETFL, F_DUPFD,
                                            F_DUPFD_CLOEXEC};
    for (size_t i = 0; python && rc == 0 && i < sizeof fcntl_ok / sizeof fcntl_ok[0]; i++) {
        const struct scmp_arg_cmp c = {.arg = 1, .op = SCMP_CMP_EQ, .datum_a = fcntl_ok[i]};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &c);
    }
    for (int async = 0; python && rc == 0 && async <= 1; async++) {
        const struct scmp_arg_cmp c[2] = {
            {.arg = 1, .op = SCMP_CMP_EQ, .datum_a = F_SETFL},
            {.arg = 2, .op = SCMP_CMP_MASKED_EQ, .datum_a = O_ASYNC,
             .datum_b = async ? O_ASYNC : 0}};
        rc = seccomp_rule_add_array(ctx, async ? SCMP_ACT_ERRNO(EPERM) : SCMP_ACT_ALLOW,
                                    SCMP_SYS(fcntl), 2, c);
    }
    static const scmp_datum_t fcntl_locks[] = {F_GETLK,      F_SETLK,      F_SETLKW,
                                               F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW};
    for (size_t i = 0; python && rc == 0 && i < sizeof fcntl_locks / sizeof fcntl_locks[0];
         i++) {
        const struct scmp_arg_cmp c = {.arg = 1, .op = SCMP_CMP_EQ, .datum_a = fcntl_locks[i]};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(fcntl), 1, &c);
    }
    for (size_t i = 0; python && rc == 0 && i < sizeof python_enosys / sizeof python_enosys[0];
         i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), python_enosys[i], 0);
    if (python && rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0);
    /* python: openat read-only (no O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND/
     * O_TMPFILE); an openat with any of them fails with EACCES */
    if (python && rc == 0) {
        const struct scmp_arg_cmp ro = {
            .arg = 2, .op = SCMP_CMP_MASKED_EQ,
            .datum_a = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | (__O_TMPFILE & ~O_DIRECTORY),
            .datum_b = 0};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, &ro);
        /* any write-side flag: EACCES (packages probe, e.g. joblib's
         * semaphore check under /dev/shm at scikit-learn's import, and cope) */
        static const scmp_datum_t wbits[] = {O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND,
                                             __O_TMPFILE & ~O_DIRECTORY};
        for (size_t i = 0; rc == 0 && i < sizeof wbits / sizeof wbits[0]; i++) {
            const struct scmp_arg_cmp w = {.arg = 2, .op = SCMP_CMP_MASKED_EQ,
                                           .datum_a = wbits[i], .datum_b = wbits[i]};
            rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1, &w);
        }
    }
    /* shutdown of the channel (fd 3, MT_JOB_FIRST_FD) only: the worker ends
     * the connection after its complete result (worker_main.c report()), so
     * the daemon reads EOF even when a python function kept a dup of it.
     * The channel is the worker's only socket; a shutdown of it can only
     * cut this task's own result short. */
    if (rc == 0) {
        const struct scmp_arg_cmp chan = {
            .arg = 0, .op = SCMP_CMP_EQ, .datum_a = MT_JOB_FIRST_FD, .datum_b = 0};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(shutdown), 1, &chan);
    }
    /* raise()/abort() send a signal to this process only: tgkill(own pid). */
    if (rc == 0) {
        const struct scmp_arg_cmp own_pid = {
            .arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)pid, .datum_b = 0};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &own_pid);
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 0);
    /* clone: threads only. The flags (argument 0 on x86_64) must include
     * CLONE_THREAD and the sharing flags pthread_create always passes, so the
     * result is a thread of this process, never a new process. clone3 passes
     * its flags in memory, which seccomp cannot inspect: it fails with ENOSYS
     * and glibc falls back to clone. */
    if (rc == 0) {
        const scmp_datum_t thread_flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                                          CLONE_THREAD | CLONE_SYSVSEM;
        const struct scmp_arg_cmp is_thread = {.arg = 0, .op = SCMP_CMP_MASKED_EQ,
                                               .datum_a = thread_flags, .datum_b = thread_flags};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &is_thread);
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
#if defined(__x86_64__)
    /* openat traps to sandbox_sigsys (probe paths get ENOENT, others die;
     * the handler is installed by install_sigsys) */
    if (rc == 0 && !python)
        rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(openat), 0);
#endif
    if (rc != 0) {
        seccomp_release(ctx);
        *rcp = rc;
        return NULL;
    }
    return ctx;
}

/* SIGSYS handler of the openat trap (x86_64); 0 or -errno. */
static int install_sigsys(void)
{
#if defined(__x86_64__)
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sandbox_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0)
        return -errno;
#endif
    return 0;
}

/* ---- the filter built once (mt_sandbox_prepare) ---- */

/* A pid no process can have (pid_max is at most 2^22): the placeholder of
 * tgkill's own-pid comparison in the prepared program. */
#define PID_MARK 0x6d74706du

static struct {
    struct sock_filter *ins;
    unsigned short len;
    size_t mark; /* the one instruction comparing with PID_MARK */
    bool ready;
} g_pre;

/* The BPF program of ctx (libseccomp's export), heap-allocated. */
static int export_prog(scmp_filter_ctx ctx, struct sock_filter **ins, size_t *n)
{
    *ins = NULL;
    *n = 0;
    int fd = memfd_create("mt-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (rc == 0 && (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
                    size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter))))
        rc = -EINVAL;
    struct sock_filter *p = rc == 0 ? malloc((size_t)size) : NULL;
    if (rc == 0 && !p)
        rc = -ENOMEM;
    if (rc == 0 && pread(fd, p, (size_t)size, 0) != size)
        rc = -EIO;
    close(fd);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *ins = p;
    *n = (size_t)size / sizeof(struct sock_filter);
    return 0;
}

/* The BPF program of build_filter(python, pid), heap-allocated. */
static mt_status compile_prog(bool python, pid_t pid, struct sock_filter **ins, size_t *n,
                              mt_err *err)
{
    int rc = 0;
    scmp_filter_ctx ctx = build_filter(python, pid, &rc);
    *ins = NULL;
    *n = 0;
    if (ctx) {
        rc = export_prog(ctx, ins, n);
        seccomp_release(ctx);
    }
    if (rc != 0)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: building the seccomp filter failed: %s",
                          strerror(-rc));
    return MT_OK;
}

mt_status mt_sandbox_prepare(mt_err *err)
{
    if (g_pre.ready)
        return MT_OK;
    struct sock_filter *ins;
    size_t n;
    mt_status st = compile_prog(false, (pid_t)PID_MARK, &ins, &n, err);
    if (st != MT_OK)
        return st;
    /* exactly one jump may compare with the placeholder: the own-pid test */
    size_t found = 0, at = 0;
    for (size_t i = 0; i < n; i++)
        if (ins[i].k == PID_MARK) {
            found++;
            at = i;
        }
    if (found != 1 || ins[at].code != (BPF_JMP | BPF_JEQ | BPF_K)) {
        free(ins);
        return mt_err_set(err, MT_EINTERNAL,
                          "sandbox: the prepared seccomp filter has no unique pid test");
    }
    g_pre.ins = ins;
    g_pre.len = (unsigned short)n;
    g_pre.mark = at;
    g_pre.ready = true;
    return MT_OK;
}

mt_status mt_sandbox_program(bool prepared, bool python, int pid, void **prog, size_t *len,
                             mt_err *err)
{
    *prog = NULL;
    *len = 0;
    if (prepared) {
        if (!g_pre.ready || python)
            return mt_err_set(err, MT_EINVAL, "sandbox: no prepared filter");
        size_t sz = (size_t)g_pre.len * sizeof(struct sock_filter);
        struct sock_filter *p = malloc(sz);
        if (!p)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        memcpy(p, g_pre.ins, sz);
        p[g_pre.mark].k = (uint32_t)pid;
        *prog = p;
        *len = sz;
        return MT_OK;
    }
    struct sock_filter *ins;
    size_t n;
    mt_status st = compile_prog(python, (pid_t)pid, &ins, &n, err);
    if (st != MT_OK)
        return st;
    *prog = ins;
    *len = n * sizeof(struct sock_filter);
    return MT_OK;
}

static mt_status lock_common(int highest_fd, bool python, mt_err *err)
{
    mt_status st;
    rlim_t nofile = (rlim_t)highest_fd + 1;
    /* RLIMIT_NPROC is left as inherited: it counts threads too, and every
     * process-creating clone is refused by the filter below (fork, vfork,
     * clone without CLONE_THREAD). */
    if ((st = set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", nofile, nofile, err)) != MT_OK)
        return st;
    int rc = install_sigsys();
    if (rc == 0 && !python && g_pre.ready) {
        /* the program built once in the zygote (mt_sandbox_prepare), its
         * own-pid test set to this process: the same bytes build_filter
         * gives for this pid (test_sandbox), loaded as seccomp_load does
         * (no flags; no-new-privs first, which the kernel requires) */
        g_pre.ins[g_pre.mark].k = (uint32_t)getpid();
        struct sock_fprog fp = {.len = g_pre.len, .filter = g_pre.ins};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0)
            rc = -errno;
        if (rc != 0)
            return mt_err_set(err, MT_EINTERNAL,
                              "sandbox: installing the seccomp filter failed: %s", strerror(-rc));
        return MT_OK;
    }
    scmp_filter_ctx ctx = rc == 0 ? build_filter(python, getpid(), &rc) : NULL;
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (ctx)
        seccomp_release(ctx);
    if (rc != 0)
        return mt_err_set(err, MT_EINTERNAL, "sandbox: installing the seccomp filter failed: %s",
                          strerror(-rc));
    return MT_OK;
}
