/* metrics_process: the standard Prometheus process_* metrics of the daemon
 * (CPU seconds, resident and virtual memory, open and maximum descriptors,
 * start time), read from /proc/self, and mesatee_build_info. See
 * core_internal.h (metrics_process_text). A value that cannot be read is
 * left out (with its HELP/TYPE lines), never made up. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core_internal.h"

#ifndef MT_CORE_VERSION
#define MT_CORE_VERSION "unknown"
#endif

/* The fields of /proc/self/stat that we use. */
typedef struct proc_stat {
    unsigned long long utime, stime, starttime; /* clock ticks */
    unsigned long long vsize;                   /* bytes */
    long long rss;                              /* pages */
} proc_stat;

static bool read_proc_stat(proc_stat *ps)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) is in parentheses and may hold spaces */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) cutime cstime priority nice
     * threads itrealvalue starttime(22) vsize(23) rss(24) */
    char state;
    long long skip;
    int got = sscanf(p + 1,
                     " %c %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %llu %llu %lld %lld "
                     "%lld %lld %lld %lld %llu %llu %lld",
                     &state, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &skip,
                     &ps->utime, &ps->stime, &skip, &skip, &skip, &skip, &skip, &skip,
                     &ps->starttime, &ps->vsize, &ps->rss);
    return got == 22;
}

/* Boot time in Unix seconds (btime of /proc/stat), 0 if unknown. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    long long bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* Open descriptors of this process, -1 if unknown. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : n; /* not the descriptor of the directory itself */
}

/* Appends a Prometheus label value with \, " and newline escaped. */
static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

char *metrics_process_text(const char *level)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    proc_stat ps;
    if (tck > 0 && page > 0 && read_proc_stat(&ps)) {
        fprintf(f,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total %.2f\n",
                (double)(ps.utime + ps.stime) / (double)tck);
        fprintf(f,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                "# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %lld\n",
                ps.rss * (long long)page);
        fprintf(f,
                "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                "# TYPE process_virtual_memory_bytes gauge\n"
                "process_virtual_memory_bytes %llu\n",
                ps.vsize);
        long long bt = boot_time();
        if (bt > 0)
            fprintf(f,
                    "# HELP process_start_time_seconds Start time of the process since unix "
                    "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                    "process_start_time_seconds %.2f\n",
                    (double)bt + (double)ps.starttime / (double)tck);
    }
    long fds = open_fds();
    if (fds >= 0)
        fprintf(f,
                "# HELP process_open_fds Number of open file descriptors.\n"
                "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        fprintf(f,
                "# HELP process_max_fds Maximum number of open file descriptors.\n"
                "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                rl.rlim_cur == RLIM_INFINITY ? 0ULL : (unsigned long long)rl.rlim_cur);
    fputs("# HELP mesatee_build_info Version of the daemon and its TEE level; always 1.\n"
          "# TYPE mesatee_build_info gauge\nmesatee_build_info{version=\"",
          f);
    put_label(f, MT_CORE_VERSION);
    fputs("\",level=\"", f);
    put_label(f, level && *level ? level : "none");
    fputs("\"} 1\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
