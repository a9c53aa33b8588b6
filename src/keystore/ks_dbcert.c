/* ks_dbcert: database client certificates issued after attestation
 * (mt_dbcert.h). The attestation decision is mt_keystore_release's
 * (ks_attest_request); this file only loads the CA and signs. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ks_internal.h"
#include "mt_dbcert.h"
#include "mt_util.h"

struct mt_dbcert_ca {
    X509 *cert;
    EVP_PKEY *key;
};

void mt_dbcert_ca_free(mt_dbcert_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca);
}

static bool is_p256(EVP_PKEY *k)
{
    char group[32];
    size_t gl = 0;
    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) &&
           !strcmp(group, "prime256v1");
}

mt_status mt_dbcert_ca_load(const char *cert_pem, size_t cert_len, const char *key_pem,
                            size_t key_len, mt_dbcert_ca **out, mt_err *err)
{
    *out = NULL;
    if (!cert_pem || !key_pem || cert_len == 0 || key_len == 0 ||
        cert_len > MT_DBCERT_PEM_MAX || key_len > MT_DBCERT_PEM_MAX)
        return mt_err_set(err, MT_EINVAL, "database CA: certificate and key PEM needed "
                                          "(1..%u bytes each)",
                          MT_DBCERT_PEM_MAX);
    mt_dbcert_ca *ca = calloc(1, sizeof *ca);
    if (!ca)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status rc = MT_OK;
    BIO *b = BIO_new_mem_buf(cert_pem, (int)cert_len);
    ca->cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    b = BIO_new_mem_buf(key_pem, (int)key_len);
    ca->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!ca->cert)
        rc = mt_err_set(err, MT_EINVAL, "database CA: the certificate is not a PEM X.509 "
                                        "certificate");
    else if (!ca->key)
        rc = mt_err_set(err, MT_EINVAL, "database CA: the key is not an unencrypted PEM "
                                        "private key");
    else if (!is_p256(ca->key))
        rc = mt_err_set(err, MT_EINVAL, "database CA: the key must be EC P-256");
    else if (X509_check_private_key(ca->cert, ca->key) != 1)
        rc = mt_err_set(err, MT_EINVAL, "database CA: the key does not match the certificate");
    else if (X509_check_ca(ca->cert) != 1)
        rc = mt_err_set(err, MT_EINVAL, "database CA: the certificate is not a CA "
                                        "(basicConstraints CA:TRUE, keyCertSign)");
    else {
        time_t now = (time_t)mt_now();
        if (X509_cmp_time(X509_get0_notBefore(ca->cert), &now) > 0 ||
            X509_cmp_time(X509_get0_notAfter(ca->cert), &now) < 0)
            rc = mt_err_set(err, MT_EINVAL, "database CA: the certificate is not valid now");
    }
    ERR_clear_error();
    if (rc) {
        mt_dbcert_ca_free(ca);
        return rc;
    }
    *out = ca;
    return MT_OK;
}

mt_status mt_dbcert_check_role(const char *role, mt_err *err)
{
    size_t n = role ? strlen(role) : 0;
    if (n == 0 || n > MT_DBCERT_ROLE_MAX)
        return mt_err_set(err, MT_EINVAL, "database role: 1..%d characters", MT_DBCERT_ROLE_MAX);
    if (role[0] >= '0' && role[0] <= '9')
        return mt_err_set(err, MT_EINVAL, "database role: must not start with a digit");
    for (size_t i = 0; i < n; i++) {
        char c = role[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return mt_err_set(err, MT_EINVAL, "database role: only a-z, 0-9 and _ allowed");
    }
    /* the server's own administrative roles are never certified */
    if (!strcmp(role, "postgres") || !strncmp(role, "pg_", 3))
        return mt_err_set(err, MT_EINVAL,
                          "database role: postgres and pg_* roles are not certified");
    return MT_OK;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    bool ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* The client certificate for pub (the attested key), signed by ca. */
static mt_status issue(const mt_dbcert_ca *ca, EVP_PKEY *pub, const char *role, uint32_t ttl_s,
                       char **cert_pem, mt_err *err)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    BIO *mem = NULL;
    mt_status rc = MT_OK;
    uint8_t sr[16];
    if (!x || !nm)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc)
        rc = mt_random(sr, sizeof sr, err);
    /* the CA may have expired since it was loaded: a certificate past the
     * CA's notAfter would only fail later with an unclear error */
    time_t later = (time_t)mt_now() + (time_t)ttl_s;
    if (!rc && X509_cmp_time(X509_get0_notAfter(ca->cert), &later) < 0)
        rc = mt_err_set(err, MT_EUNAVAIL,
                        "the database CA certificate expires before the requested lifetime "
                        "ends; renew the CA or ask for a shorter lifetime");
    if (!rc) {
        sr[0] &= 0x7f; /* positive */
        sr[0] |= 0x01; /* and 16 bytes long */
        bn = BN_bin2bn(sr, sizeof sr, NULL);
        serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
        time_t now = (time_t)mt_now();
        time_t until = now + (time_t)ttl_s;
        bool ok = serial && X509_set_version(x, 2) && X509_set_serialNumber(x, serial) &&
                  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)role,
                                             -1, -1, 0) &&
                  X509_set_subject_name(x, nm) &&
                  X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) &&
                  X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now) &&
                  X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &until) && X509_set_pubkey(x, pub);
        /* never beyond the CA's own validity */
        if (ok && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca->cert)) > 0)
            ok = X509_set1_notAfter(x, X509_get0_notAfter(ca->cert));
        ok = ok && add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, ca->cert, NID_ext_key_usage, "clientAuth") &&
             add_ext(x, ca->cert, NID_subject_key_identifier, "hash") &&
             (!X509_get0_subject_key_id(ca->cert) ||
              add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always"));
        if (!ok)
            rc = mt_err_set(err, MT_ECRYPTO, "cannot build the database client certificate");
    }
    if (!rc && X509_sign(x, ca->key, EVP_sha256()) <= 0)
        rc = mt_err_set(err, MT_ECRYPTO, "cannot sign the database client certificate");
    if (!rc) {
        char *p = NULL;
        long n = 0;
        mem = BIO_new(BIO_s_mem());
        if (!mem || PEM_write_bio_X509(mem, x) != 1 || (n = BIO_get_mem_data(mem, &p)) <= 0)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else if (!(*cert_pem = malloc((size_t)n + 1)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else {
            memcpy(*cert_pem, p, (size_t)n);
            (*cert_pem)[n] = '\0';
        }
    }
    ERR_clear_error();
    BIO_free(mem);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_NAME_free(nm);
    X509_free(x);
    return rc;
}

static char *bio_take(BIO *b)
{
    char *p = NULL, *out = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n > 0 && (out = malloc((size_t)n + 1))) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
    }
    return out;
}

mt_status mt_dbcert_ca_create(const char *cn, unsigned days, char **cert_pem, char **key_pem,
                              mt_err *err)
{
    *cert_pem = NULL;
    *key_pem = NULL;
    if (days == 0 || days > 36500)
        return mt_err_set(err, MT_EINVAL, "database CA: validity must be 1..36500 days");
    uint8_t sr[16];
    mt_status rc = mt_random(sr, sizeof sr, err);
    if (rc)
        return rc;
    sr[0] &= 0x7f;
    sr[0] |= 0x01;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *bn = BN_bin2bn(sr, sizeof sr, NULL);
    ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    X509_NAME *nm = x ? X509_get_subject_name(x) : NULL;
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    bool ok = k && x && serial && nm && cb && kb && X509_set_version(x, 2) &&
              X509_set_serialNumber(x, serial) &&
              X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                         (const unsigned char *)(cn ? cn : "mesatee database CA"),
                                         -1, -1, 0) &&
              X509_set_issuer_name(x, nm) && X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
              X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) &&
              X509_set_pubkey(x, k) &&
              add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
              add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
              add_ext(x, x, NID_subject_key_identifier, "hash") &&
              X509_sign(x, k, EVP_sha256()) > 0 && PEM_write_bio_X509(cb, x) == 1 &&
              PEM_write_bio_PKCS8PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (ok) {
        *cert_pem = bio_take(cb);
        *key_pem = bio_take(kb);
    }
    if (!*cert_pem || !*key_pem) {
        if (*key_pem) {
            mt_wipe(*key_pem, strlen(*key_pem));
            free(*key_pem);
        }
        free(*cert_pem);
        *cert_pem = *key_pem = NULL;
        rc = mt_err_set(err, MT_ECRYPTO, "cannot make the database CA");
    }
    ERR_clear_error();
    BIO_free(cb);
    BIO_free(kb); /* BIO_s_mem frees (does not wipe) its buffer: a short-lived key copy */
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

mt_status mt_dbcert_ca_pem(const mt_dbcert_ca *ca, char **cert_pem, char **key_pem, mt_err *err)
{
    *cert_pem = NULL;
    *key_pem = NULL;
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    if (cb && kb && PEM_write_bio_X509(cb, ca->cert) == 1 &&
        PEM_write_bio_PKCS8PrivateKey(kb, ca->key, NULL, NULL, 0, NULL, NULL) == 1) {
        *cert_pem = bio_take(cb);
        *key_pem = bio_take(kb);
    }
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    if (*cert_pem && *key_pem)
        return MT_OK;
    if (*key_pem) {
        mt_wipe(*key_pem, strlen(*key_pem));
        free(*key_pem);
    }
    free(*cert_pem);
    *cert_pem = *key_pem = NULL;
    return mt_err_set(err, MT_ENOMEM, "cannot encode the database CA");
}

mt_status mt_keystore_db_cert(mt_keystore *ks, const mt_dbcert_ca *ca, const char *req,
                              size_t len, const char *role, uint32_t ttl_s, char **cert_pem,
                              char measurement[MT_KEYSTORE_MEAS_HEX + 1], mt_err *err)
{
    *cert_pem = NULL;
    if (measurement)
        measurement[0] = '\0';
    if (!ks || !ca)
        return mt_err_set(err, MT_EINVAL, "database certificate: KeyStore and CA needed");
    mt_status rc = mt_dbcert_check_role(role, err);
    if (rc)
        return rc;
    if (ttl_s < MT_DBCERT_TTL_MIN || ttl_s > MT_DBCERT_TTL_MAX)
        return mt_err_set(err, MT_EINVAL, "database certificate: ttl must be %u..%u seconds",
                          MT_DBCERT_TTL_MIN, MT_DBCERT_TTL_MAX);
    uint8_t *der = NULL;
    size_t dl = 0;
    rc = ks_attest_request(ks, req, len, &der, &dl, measurement, err);
    if (rc) {
        if (rc == MT_EPERM)
            mt_err_prefix(err, rc, "no database certificate: ");
        return rc;
    }
    const unsigned char *p = der;
    X509 *ev = d2i_X509(NULL, &p, (long)dl);
    EVP_PKEY *pub = ev ? X509_get0_pubkey(ev) : NULL;
    if (!pub)
        rc = mt_err_set(err, MT_EINVAL, "database certificate: the evidence certificate has no "
                                        "usable key");
    else
        rc = issue(ca, pub, role, ttl_s, cert_pem, err);
    ERR_clear_error();
    X509_free(ev);
    free(der);
    return rc;
}
