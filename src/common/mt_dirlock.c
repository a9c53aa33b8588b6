/* mt_dirlock: see mt_dirlock.h. */
#include "mt_dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

mt_status mt_dirlock_acquire(const char *dir, int *fd, mt_err *err)
{
    *fd = -1;
    char path[4096];
    if (!dir || !*dir || snprintf(path, sizeof path, "%s/lock", dir) >= (int)sizeof path)
        return mt_err_set(err, MT_EINVAL, "bad data directory path");
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (f < 0)
        return mt_err_set(err, MT_EIO, "cannot open %s: %s", path, strerror(errno));
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(f, F_SETLK, &fl) != 0) {
        int e = errno;
        if (e != EACCES && e != EAGAIN) {
            close(f);
            return mt_err_set(err, MT_EIO, "cannot lock %s: %s", path, strerror(e));
        }
        struct flock q;
        memset(&q, 0, sizeof q);
        q.l_type = F_WRLCK;
        q.l_whence = SEEK_SET;
        long pid = 0;
        if (fcntl(f, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
            pid = (long)q.l_pid;
        close(f);
        if (pid > 0)
            return mt_err_set(err, MT_ECONFLICT,
                              "data directory %s is in use by another mesatee process "
                              "(PID %ld holds %s); stop it first or give another data directory",
                              dir, pid, path);
        return mt_err_set(err, MT_ECONFLICT,
                          "data directory %s is in use by another mesatee process (it holds "
                          "%s); stop it first or give another data directory",
                          dir, path);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, buf, (size_t)n, 0) != n) {
        int e = errno;
        close(f);
        return mt_err_set(err, MT_EIO, "cannot write %s: %s", path, strerror(e));
    }
    *fd = f;
    return MT_OK;
}

void mt_dirlock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
