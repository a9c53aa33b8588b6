/* dbcert_node: the attestation-gated database credential flow in one
 * process, for the cluster tests (tests/cluster/failover.sh, dbcert_pg.sh;
 * docs/cluster.md "Database credentials after attestation").
 *
 *   dbcert_node ca-check CA.crt CA.key
 *       loads the database CA as the KeyStore would (exit 0, or 2 + message)
 *   dbcert_node node DIR CA.crt CA.key ROLE TTL right|wrong OUT
 *       DIR (created, must not exist): a soft-level TEE and its KeyStore,
 *       whose release policy allows this build (first start). With "wrong"
 *       the policy is then changed to allow another measurement only: this
 *       node's build is not in it, as for a node running a modified binary.
 *       The node makes its release request (fresh attested identity); the
 *       KeyStore attests it and issues a certificate for ROLE valid TTL s.
 *       Issued:  OUT.crt (certificate), OUT.key (the node's key, 0600); exit 0.
 *       Refused: OUT.self.crt / OUT.self.key (the node's own self-signed,
 *                attested identity: all a refused node holds); exit 3 and
 *                the KeyStore's reason on stderr.
 * Exit 2 for usage or I/O errors. Both roles run in this process, as they do
 * inside `mesatee serve` today (mt_keystore.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_dbcert.h"
#include "mt_keystore.h"
#include "mt_tee.h"

#define OTHER_MEAS "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(MT_DBCERT_PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, MT_DBCERT_PEM_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > MT_DBCERT_PEM_MAX) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int put(const char *prefix, const char *suffix, const char *text, mode_t mode)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s%s", prefix, suffix) >= (int)sizeof path)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -1;
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

static mt_dbcert_ca *load_ca(const char *cert, const char *key)
{
    size_t cl = 0, kl = 0;
    char *c = slurp(cert, &cl), *k = slurp(key, &kl);
    mt_dbcert_ca *ca = NULL;
    mt_err err;
    if (!c || !k)
        fprintf(stderr, "dbcert_node: cannot read the CA files\n");
    else if (mt_dbcert_ca_load(c, cl, k, kl, &ca, &err))
        fprintf(stderr, "dbcert_node: %s\n", err.msg);
    free(c);
    free(k);
    return ca;
}

static int node(char **argv)
{
    const char *dir = argv[2], *role = argv[5], *mode = argv[7], *out = argv[8];
    char *end = NULL;
    unsigned long ttl = strtoul(argv[6], &end, 10);
    bool wrong = !strcmp(mode, "wrong");
    if (!*argv[6] || *end || ttl > UINT32_MAX || (!wrong && strcmp(mode, "right"))) {
        fprintf(stderr, "dbcert_node: bad TTL or mode\n");
        return 2;
    }
    if (mkdir(dir, 0700) != 0) {
        fprintf(stderr, "dbcert_node: mkdir %s: %s\n", dir, strerror(errno));
        return 2;
    }
    mt_dbcert_ca *ca = load_ca(argv[3], argv[4]);
    if (!ca)
        return 2;
    mt_err err;
    mt_tee *tee = NULL;
    mt_keystore *ks = NULL;
    mt_keystore_node *nd = NULL;
    char *req = NULL, *pem = NULL, *key = NULL;
    size_t rl = 0;
    bool created = false, changed = false;
    char meas[MT_KEYSTORE_MEAS_HEX + 1], m[65], pk[65];
    int ret = 2;
    mt_status rc = mt_tee_open("soft", dir, &tee, &err);
    if (!rc)
        rc = mt_keystore_request(tee, &nd, &req, &rl, &err);
    if (!rc)
        rc = mt_keystore_open(tee, dir, req, rl, &ks, &created, &err);
    if (!rc && wrong) {
        mt_tee_soft_ids(tee, m, pk);
        rc = mt_keystore_policy_allow(ks, "measurement", OTHER_MEAS, &changed, &err);
        if (!rc)
            rc = mt_keystore_policy_revoke(ks, "measurement", m, &err);
    }
    if (!rc) {
        /* the node asks with a fresh attested identity, as at every join */
        mt_keystore_node_free(nd);
        nd = NULL;
        free(req);
        req = NULL;
        rc = mt_keystore_request(tee, &nd, &req, &rl, &err);
    }
    if (rc) {
        fprintf(stderr, "dbcert_node: setup: %s\n", err.msg);
        goto done;
    }
    rc = mt_keystore_db_cert(ks, ca, req, rl, role, (uint32_t)ttl, &pem, meas, &err);
    if (rc == MT_EPERM) {
        fprintf(stderr, "dbcert_node: refused (measurement %s): %s\n", meas, err.msg);
        char *self = NULL;
        if (!mt_keystore_node_cert_pem(nd, &self, &err) && !mt_keystore_node_key_pem(nd, &key, &err) &&
            !put(out, ".self.crt", self, 0644) && !put(out, ".self.key", key, 0600))
            ret = 3;
        free(self);
    } else if (rc) {
        fprintf(stderr, "dbcert_node: %s\n", err.msg);
    } else if (!mt_keystore_node_key_pem(nd, &key, &err) && !put(out, ".key", key, 0600) &&
               !put(out, ".crt", pem, 0644)) {
        printf("issued: role %s, %lu s, measurement %s\n", role, ttl, meas);
        ret = 0;
    } else {
        fprintf(stderr, "dbcert_node: cannot write %s.crt/.key\n", out);
    }
done:
    free(pem);
    free(key);
    free(req);
    mt_keystore_node_free(nd);
    mt_keystore_free(ks);
    mt_tee_free(tee);
    mt_dbcert_ca_free(ca);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "ca-check")) {
        mt_dbcert_ca *ca = load_ca(argv[2], argv[3]);
        mt_dbcert_ca_free(ca);
        return ca ? 0 : 2;
    }
    if (argc == 9 && !strcmp(argv[1], "node"))
        return node(argv);
    fprintf(stderr, "usage: dbcert_node ca-check CA.crt CA.key\n"
                    "       dbcert_node node DIR CA.crt CA.key ROLE TTL right|wrong OUT\n");
    return 2;
}
