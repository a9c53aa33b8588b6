/* client_testing: hooks for libmesatee's own tests. They exist only in
 * libmesatee_testing (the library's sources built with MT_CLIENT_TESTING, a
 * static library for test programs); the shared library libmesatee, which
 * exports exactly mesatee.h, has none. Not installed. */
#ifndef MT_CLIENT_TESTING_H
#define MT_CLIENT_TESTING_H

#include "mesatee.h"

/* keep != 0: a change of TLS trust (CA file, insecure, hostname check,
 * policy, TLS server name) no longer replaces the handle's connection pool,
 * so a kept-alive connection opened under the earlier trust stays in it.
 * What then still keeps a request off such a connection is the per-
 * connection trust generation checked before sending (policy mode: the
 * request fails with MESATEE_EATTEST, nothing sent); it_client_pool tests
 * that check on its own with this. keep 0 restores the default. */
int mesatee_testing_keep_connections(mesatee_client *c, int keep);

#endif
