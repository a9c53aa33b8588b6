/* client_internal: what libmesatee's own modules (typed.c) share with
 * client.c. Not installed, not exported (hidden visibility and the version
 * script keep every mt_* symbol local to the library). */
#ifndef MT_CLIENT_INTERNAL_H
#define MT_CLIENT_INTERNAL_H

#include "mesatee.h"

/* Records msg as c's last error (the calling thread's when c is NULL), as
 * every public call does on failure; returns st. */
int mt_client_set_err(mesatee_client *c, int st, const char *msg);

/* mt_client_set_err with a printf-style message (cut at 255 bytes). */
int mt_client_set_errf(mesatee_client *c, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
