/* Test client of it_client_pool: libmesatee's kept-alive connections after a
 * change of TLS trust. Usage:
 *   client_pool policy   URL TOKEN_FILE POLICY_A POLICY_B
 *     GET /healthz under POLICY_A, then POLICY_B and three GET /v1/users/me
 *   client_pool insecure URL TOKEN_FILE POLICY_B
 *     GET /healthz with verification off, then on (POLICY_B) and three
 *     GET /v1/users/me
 *   client_pool keep     URL TOKEN_FILE POLICY_A POLICY_B
 *     as policy, with the connection pool kept across the change
 *     (mesatee_testing_keep_connections): the first request after it, on the
 *     connection verified under POLICY_A, must be refused by the trust
 *     generation check (MESATEE_EATTEST, nothing sent); the next, on a new
 *     connection, must succeed
 * Every request after the change must succeed (TOKEN_FILE is valid only on
 * the server POLICY_B admits). Prints one line per request; exit 0 when all
 * succeeded, 1 at the first failure, 2 on bad usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_testing.h"
#include "mesatee.h"

static int get(mesatee_client *c, const char *what, const char *path)
{
    char *resp = NULL;
    int st = mesatee_call(c, "GET", path, NULL, &resp);
    printf("%s: GET %s: %s%s%s\n", what, path, mesatee_status_name(st), st ? ": " : "",
           st ? mesatee_client_errmsg(c) : "");
    fflush(stdout);
    mesatee_free(resp);
    return st;
}

static char *read_token(const char *path)
{
    static char tok[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    tok[n] = '\0';
    tok[strcspn(tok, "\r\n")] = '\0';
    return tok[0] ? tok : NULL;
}

int main(int argc, char **argv)
{
    bool keep = argc == 6 && strcmp(argv[1], "keep") == 0;
    bool policy = keep || (argc == 6 && strcmp(argv[1], "policy") == 0);
    bool insecure = argc == 5 && strcmp(argv[1], "insecure") == 0;
    if (!policy && !insecure) {
        fprintf(stderr, "usage: client_pool policy|keep URL TOKEN_FILE POLICY_A POLICY_B\n"
                        "       client_pool insecure URL TOKEN_FILE POLICY_B\n");
        return 2;
    }
    mesatee_client *c = mesatee_client_new(argv[2]);
    const char *tok = read_token(argv[3]);
    if (!c || !tok || mesatee_client_set_token(c, tok) != MESATEE_OK) {
        fprintf(stderr, "client_pool: no client or token: %s\n", mesatee_client_errmsg(c));
        return 2;
    }
    mesatee_client_set_timeout(c, 60);
    const char *first = argv[4], *then = policy ? argv[5] : argv[4];
    if (mesatee_client_set_policy_file(c, first) != MESATEE_OK) {
        fprintf(stderr, "client_pool: policy %s: %s\n", first, mesatee_client_errmsg(c));
        return 2;
    }
    if (insecure)
        mesatee_client_set_insecure_skip_verify(c, 1);
    if (keep)
        mesatee_testing_keep_connections(c, 1);
    int rc = 0;
    if (get(c, "before", "/healthz") != MESATEE_OK)
        rc = 1;
    if (insecure)
        mesatee_client_set_insecure_skip_verify(c, 0);
    else if (mesatee_client_set_policy_file(c, then) != MESATEE_OK) {
        fprintf(stderr, "client_pool: policy %s: %s\n", then, mesatee_client_errmsg(c));
        return 2;
    }
    if (keep && rc == 0) {
        int st = get(c, "kept", "/v1/users/me");
        if (st != MESATEE_EATTEST ||
            !strstr(mesatee_client_errmsg(c), "not verified under the current policy") ||
            !strstr(mesatee_client_errmsg(c), "nothing was sent"))
            rc = 1;
    }
    for (int i = 0; i < 3 && rc == 0; i++)
        if (get(c, "after", "/v1/users/me") != MESATEE_OK)
            rc = 1;
    mesatee_client_free(c);
    return rc;
}
