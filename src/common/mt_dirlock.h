/* mt_dirlock: an exclusive lock on a data directory, so that two daemons
 * (`mesatee serve`, `mesatee executor`) never share one.
 *
 * mt_dirlock_acquire creates DIR/lock (mode 0600) and takes a POSIX write
 * lock (fcntl F_SETLK) on it, then writes this process's PID into it. The
 * lock belongs to the process: it is not inherited by forked children (the
 * workers) and the kernel releases it when the process exits, however it
 * exits. Nothing else in DIR is touched, so call it before anything else
 * writes there.
 * Errors: MT_ECONFLICT "data directory DIR is in use by PID N ..." when
 * another process holds it; MT_EIO when the file cannot be created.
 * Thread-safety: call from one thread; closing any other descriptor of
 * DIR/lock in this process would drop the lock (nothing else opens it). */
#ifndef MT_DIRLOCK_H
#define MT_DIRLOCK_H

#include "mt_err.h"

/* On success *fd holds the lock until mt_dirlock_release(*fd). */
mt_status mt_dirlock_acquire(const char *dir, int *fd, mt_err *err);
/* Releases (fd < 0: nothing). */
void mt_dirlock_release(int fd);

#endif
