/* libmesatee-pkcs11: a PKCS#11 3.0 module (2.40-compatible) whose one token
 * holds a user's KeyStore transit keys on a mesatee server
 * (docs/keystore.md, "PKCS#11 module").
 *
 * Model: one slot (id 0) with one token. After C_Login (PIN = the configured
 * user's password, or a mesatee token when the configuration names no user)
 * every version of every transit key the user can read appears as objects:
 * asymmetric keys as a CKO_PUBLIC_KEY and a CKO_PRIVATE_KEY, aes256-gcm96 as
 * a CKO_SECRET_KEY; CKA_LABEL is the key name, CKA_ID "NAME:vN". Private and
 * secret keys never leave the server: signing and decryption are transit
 * calls (AES-GCM encryption too); verification uses the public key locally;
 * digests are local (OpenSSL).
 *
 * Thread-safety (PKCS#11 2.40 section 6.7.6, "multi-threaded applications"):
 * the module always uses the OS's locks (pthread); C_Initialize accepts
 * CKF_OS_LOCKING_OK and refuses application-supplied locking functions alone
 * (CKR_CANT_LOCK). Locks, always taken in this order:
 *   1. a session's mutex (sess.mu), held for the whole of a call on that
 *      session, network included; a thread holds at most one;
 *   2. g_login_mu, held by C_Login/C_Logout (and the logout of the last
 *      C_CloseSession) around the login client G.client;
 *   3. g_mu, the module state (init, login state, object table, session
 *      table); held briefly, never across a network call.
 * Every session has its own libmesatee client (one TLS connection, the
 * login's token), so sessions make their REST calls in parallel. Objects
 * are reference-counted and immutable once published: an operation keeps a
 * reference to its key object, so a concurrent refresh or logout never frees
 * what a call in flight uses. A logout bumps G.epoch; a session notices at
 * its next call and drops its operation and search.
 * Errors: every entry point returns a CKR_ code and never crashes on bad
 * handles, NULL or garbage arguments (tests/unit/test_p11_randcall.c);
 * server failures are printed to stderr as "libmesatee-pkcs11: ..." with the
 * server's message. */
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesatee.h"
#include "mt_util.h"
#include "p11_conf.h"
#include "p11_import.h"
#include "p11_resp.h"
#include "p11_srv.h"
/* last: p11-kit's pkcs11.h defines macros on common lower-case words */
#include "p11_defs.h"

#define P11_EXPORT __attribute__((visibility("default")))
#define MAX_SESSIONS 256
#define MAX_DATA (1024u * 1024u) /* one-shot data sent to the server */
#define SLOT_ID 0

/* ------------------------------------------------------------------------ */
/* State                                                                     */

typedef struct p11_obj {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls;
    p11_ktype type;
    char *name;
    uint32_t version;
    bool live;
    uint8_t *spki;
    size_t spki_len;
    uint8_t *pub; /* EC: uncompressed point; Ed25519: 32 bytes; RSA: modulus */
    size_t pub_len;
    uint8_t *exp; /* RSA public exponent */
    size_t exp_len;
    EVP_PKEY *pkey; /* the public key, parsed once (read-only use is thread-safe) */
    _Atomic unsigned refs; /* the table's and operations' references */
} p11_obj;

enum {
    OP_NONE,
    OP_SIGN,
    OP_VERIFY,
    OP_ENCRYPT,
    OP_DECRYPT,
    OP_DIGEST,
    OP_MSG_ENCRYPT,
    OP_MSG_DECRYPT,
    OP_MSG_SIGN,
    OP_MSG_VERIFY
};

typedef struct p11_op {
    int kind;
    CK_MECHANISM_TYPE mech;
    CK_OBJECT_HANDLE key;
    p11_obj *ko; /* a reference to the key object */
    const EVP_MD *md;     /* hash-then-sign mechanisms and digests */
    EVP_MD_CTX *mdctx;    /* same */
    const EVP_MD *pss_md; /* RSA-PSS: hash of the input, MGF1 hash */
    long pss_salt;
    uint8_t *buf; /* accumulated input of single-shot mechanisms */
    size_t len, cap;
    uint8_t *aad; /* AES-GCM associated data */
    size_t aadn;
    bool multi; /* an Update was called */
    uint8_t *res; /* cached result of C_Sign/C_Encrypt/... after BUFFER_TOO_SMALL */
    size_t res_len;
    bool have_res;
} p11_op;

typedef struct p11_sess {
    pthread_mutex_t mu;  /* held for a whole call on this session */
    CK_SESSION_HANDLE h; /* 0: free; written with mu and g_mu held */
    CK_FLAGS flags;
    uint64_t epoch; /* G.epoch when op/found were last valid */
    p11_op op;
    CK_OBJECT_HANDLE *found;
    size_t nfound, fpos;
    bool finding;
    mesatee_client *client; /* this session's connection, made on first use */
    uint64_t client_epoch;  /* the login whose token client carries; 0: none */
} p11_sess;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_login_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_sess_once = PTHREAD_ONCE_INIT;
/* Slot i holds handles i + 1 + k * MAX_SESSIONS; the slots (and their
 * mutexes) live as long as the process. */
static p11_sess g_sess[MAX_SESSIONS];
static struct {
    bool init;
    p11_conf conf;          /* unchanged between C_Initialize and C_Finalize */
    mesatee_client *client; /* login/logout only, under g_login_mu */
    bool logged_in;
    bool password_login; /* the token was made by C_Login: revoke at logout */
    char *token;         /* the login's token, handed to session clients */
    uint64_t epoch;      /* +1 at every logout; a login belongs to one epoch */
    p11_obj **objs;
    size_t nobj, capobj;
    CK_OBJECT_HANDLE next_obj;
    CK_SESSION_HANDLE next_sess;
} G;
/* The session whose mutex this thread holds during an entry point. */
static _Thread_local p11_sess *tl_sess;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static void pad_copy(CK_UTF8CHAR *dst, size_t n, const char *src)
{
    memset(dst, ' ', n);
    size_t l = strlen(src);
    memcpy(dst, src, l < n ? l : n);
}

static void report(mesatee_client *c, const char *what)
{
    const char *m = c ? mesatee_client_errmsg(c) : "no client";
    if (*m) /* else the reader of the answer has said why */
        fprintf(stderr, "libmesatee-pkcs11: %s: %s\n", what, m);
}

static void objs_clear(void);

/* g_mu held: forgets the login (token wiped), starts a new epoch and drops
 * the session objects. */
static void session_clear(void)
{
    G.logged_in = false;
    G.password_login = false;
    if (G.token)
        mt_wipe(G.token, strlen(G.token));
    free(G.token);
    G.token = NULL;
    G.epoch++;
    objs_clear();
}

/* The server refused the token of login epoch ep: that login is over. */
static void login_lost(uint64_t ep)
{
    pthread_mutex_lock(&g_mu);
    if (G.logged_in && G.epoch == ep)
        session_clear();
    pthread_mutex_unlock(&g_mu);
}

/* Maps a libmesatee status of a call made with client c (carrying the token
 * of login epoch ep) onto a CKR_ for the operation kind. */
static CK_RV map_status_c(mesatee_client *c, uint64_t ep, int rc, const char *what)
{
    if (rc == MESATEE_OK)
        return CKR_OK;
    report(c, what);
    switch (rc) {
    case MESATEE_EAUTH: /* expired or revoked: log in again */
        login_lost(ep);
        return CKR_USER_NOT_LOGGED_IN;
    case MESATEE_EPERM: return CKR_KEY_FUNCTION_NOT_PERMITTED;
    case MESATEE_ENOTFOUND: return CKR_KEY_HANDLE_INVALID;
    case MESATEE_ECONFLICT: return CKR_ATTRIBUTE_VALUE_INVALID;
    case MESATEE_ETOOBIG: return CKR_DATA_LEN_RANGE;
    case MESATEE_ECRYPTO: return CKR_ENCRYPTED_DATA_INVALID;
    case MESATEE_ENOMEM: return CKR_HOST_MEMORY;
    case MESATEE_EINVAL: return CKR_FUNCTION_FAILED;
    default: return CKR_DEVICE_ERROR;
    }
}

/* Sessions counted under g_mu. */
static size_t sess_count(bool rw_only)
{
    size_t n = 0;
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (g_sess[i].h && (!rw_only || (g_sess[i].flags & CKF_RW_SESSION)))
            n++;
    return n;
}

static void obj_put(p11_obj *o);

static void op_clear(p11_op *op)
{
    if (op->ko)
        obj_put(op->ko);
    EVP_MD_CTX_free(op->mdctx);
    if (op->buf)
        mt_wipe(op->buf, op->cap);
    free(op->buf);
    free(op->aad);
    if (op->res)
        mt_wipe(op->res, op->res_len);
    free(op->res);
    memset(op, 0, sizeof *op);
}

static void find_clear(p11_sess *s)
{
    free(s->found);
    s->found = NULL;
    s->nfound = s->fpos = 0;
    s->finding = false;
}

/* Frees a session's state, keeping its mutex; the caller holds s->mu and
 * g_mu. The client is handed back in *client (freed outside g_mu). */
static void sess_close(p11_sess *s, mesatee_client **client)
{
    op_clear(&s->op);
    find_clear(s);
    *client = s->client;
    s->client = NULL;
    s->client_epoch = 0;
    s->h = 0;
    s->flags = 0;
}

/* The live object with handle h, under g_mu; valid while g_mu is held
 * (obj_get for longer). */
static p11_obj *obj_find(CK_OBJECT_HANDLE h)
{
    if (!G.logged_in) /* objects exist for a logged-in user only */
        return NULL;
    for (size_t i = 0; i < G.nobj; i++)
        if (G.objs[i]->h == h && G.objs[i]->live)
            return G.objs[i];
    return NULL;
}

static p11_obj *obj_get(p11_obj *o)
{
    atomic_fetch_add(&o->refs, 1);
    return o;
}

static void obj_free_fields(p11_obj *o)
{
    free(o->name);
    free(o->spki);
    free(o->pub);
    free(o->exp);
    EVP_PKEY_free(o->pkey);
    memset(o, 0, sizeof *o);
}

static void obj_put(p11_obj *o)
{
    if (atomic_fetch_sub(&o->refs, 1) == 1) {
        obj_free_fields(o);
        free(o);
    }
}

/* Drops the table (under g_mu); objects in use by operations live on. */
static void objs_clear(void)
{
    for (size_t i = 0; i < G.nobj; i++) {
        G.objs[i]->live = false; /* operations holding it see it gone */
        obj_put(G.objs[i]);
    }
    free(G.objs);
    G.objs = NULL;
    G.nobj = G.capobj = 0;
}

static bool kt_asym(p11_ktype t) { return t != P11_KT_AES256_GCM96 && t != P11_KT_OTHER; }
static bool kt_rsa(p11_ktype t)
{
    return t == P11_KT_RSA2048 || t == P11_KT_RSA3072 || t == P11_KT_RSA4096;
}
static bool kt_ec(p11_ktype t) { return t == P11_KT_ECDSA_P256 || t == P11_KT_ECDSA_P384; }

static uint8_t *bn_bytes(EVP_PKEY *pk, const char *param, size_t *len)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pk, param, &bn))
        return NULL;
    size_t n = (size_t)BN_num_bytes(bn);
    uint8_t *b = malloc(n ? n : 1);
    if (b)
        BN_bn2bin(bn, b);
    BN_free(bn);
    *len = n;
    return b;
}

/* Fills o's public fields from its SPKI; 0 on success. */
static int obj_fill_pub(p11_obj *o)
{
    const unsigned char *p = o->spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)o->spki_len);
    if (!pk)
        return -1;
    int rc = -1;
    if (kt_rsa(o->type)) {
        o->pub = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_N, &o->pub_len);
        o->exp = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_E, &o->exp_len);
        rc = o->pub && o->exp ? 0 : -1;
    } else {
        size_t n = 0;
        if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &n) && n &&
            n < 200 && (o->pub = malloc(n)) &&
            EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, o->pub, n, &o->pub_len))
            rc = 0;
    }
    if (rc == 0)
        o->pkey = pk;
    else
        EVP_PKEY_free(pk);
    return rc;
}

/* Adds or refreshes the object (name, version, cls); keeps its handle.
 * Under g_mu. */
static CK_RV obj_upsert(const p11_keyinfo *k, const p11_key_version *v, CK_OBJECT_CLASS cls,
                        CK_OBJECT_HANDLE *h_out)
{
    for (size_t i = 0; i < G.nobj; i++) {
        p11_obj *o = G.objs[i];
        if (o->cls == cls && o->version == v->version && !strcmp(o->name, k->name) &&
            o->type == k->type && o->spki_len == v->spki_len &&
            (!v->spki_len || !memcmp(o->spki, v->spki, v->spki_len))) {
            o->live = true;
            if (h_out)
                *h_out = o->h;
            return CKR_OK;
        }
    }
    if (G.nobj == G.capobj) {
        size_t nc = G.capobj ? G.capobj * 2 : 16;
        p11_obj **no = realloc(G.objs, nc * sizeof *no);
        if (!no)
            return CKR_HOST_MEMORY;
        G.objs = no;
        G.capobj = nc;
    }
    p11_obj *o = calloc(1, sizeof *o);
    if (!o)
        return CKR_HOST_MEMORY;
    o->cls = cls;
    o->type = k->type;
    o->version = v->version;
    o->name = mt_strdup(k->name);
    if (!o->name) {
        free(o);
        return CKR_HOST_MEMORY;
    }
    if (v->spki_len) {
        o->spki = malloc(v->spki_len);
        if (!o->spki) {
            obj_free_fields(o);
            free(o);
            return CKR_HOST_MEMORY;
        }
        memcpy(o->spki, v->spki, v->spki_len);
        o->spki_len = v->spki_len;
        if (obj_fill_pub(o) != 0) {
            obj_free_fields(o);
            free(o);
            return CKR_DEVICE_ERROR;
        }
    }
    o->h = ++G.next_obj;
    o->live = true;
    atomic_init(&o->refs, 1);
    G.objs[G.nobj++] = o;
    if (h_out)
        *h_out = o->h;
    return CKR_OK;
}

/* Adds the objects of one key (all versions from min_decryption_version).
 * Under g_mu. */
static CK_RV objs_add_key(const p11_keyinfo *k)
{
    if (k->type == P11_KT_OTHER || !p11_srv_ref_ok(k->name, strlen(k->name)))
        return CKR_OK; /* not representable: not shown */
    for (size_t i = 0; i < k->nver; i++) {
        const p11_key_version *v = &k->ver[i];
        if (v->version < k->min_decryption_version)
            continue;
        CK_RV rv;
        if (kt_asym(k->type)) {
            if ((rv = obj_upsert(k, v, CKO_PUBLIC_KEY, NULL)) != CKR_OK ||
                (rv = obj_upsert(k, v, CKO_PRIVATE_KEY, NULL)) != CKR_OK)
                return rv;
        } else if ((rv = obj_upsert(k, v, CKO_SECRET_KEY, NULL)) != CKR_OK) {
            return rv;
        }
    }
    return CKR_OK;
}

typedef struct key_set {
    p11_keyinfo *k;
    size_t n;
} key_set;

static void key_set_free(key_set *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        p11_keyinfo_free(&ks->k[i]);
    free(ks->k);
    ks->k = NULL;
    ks->n = 0;
}

/* Reads the user's keys from the server with client c (token of login
 * epoch ep); no lock held. */
static CK_RV keys_fetch(mesatee_client *c, uint64_t ep, key_set *ks)
{
    memset(ks, 0, sizeof *ks);
    char **names = NULL;
    size_t n = 0;
    CK_RV rv = map_status_c(c, ep, p11_srv_list(c, &names, &n), "list keys");
    if (rv != CKR_OK)
        return rv;
    ks->k = calloc(n ? n : 1, sizeof *ks->k);
    if (!ks->k) {
        p11_names_free(names, n);
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; i < n && rv == CKR_OK; i++) {
        if (!p11_srv_ref_ok(names[i], strlen(names[i])))
            continue;
        p11_keyinfo k;
        int rc = p11_srv_read(c, names[i], &k);
        if (rc == MESATEE_ENOTFOUND || rc == MESATEE_EPERM) /* deleted meanwhile; a grant without read */
            continue;
        rv = map_status_c(c, ep, rc, "read key");
        if (rv == CKR_OK && strcmp(k.name, names[i]) != 0) {
            /* a granted key is read as NAME but used as OWNER:NAME */
            char *ref = mt_strdup(names[i]);
            if (!ref)
                rv = CKR_HOST_MEMORY;
            else {
                free(k.name);
                k.name = ref;
            }
        }
        if (rv == CKR_OK)
            ks->k[ks->n++] = k;
        else if (rc == MESATEE_OK)
            p11_keyinfo_free(&k);
    }
    p11_names_free(names, n);
    if (rv != CKR_OK)
        key_set_free(ks);
    return rv;
}

/* Makes the table what ks says, under g_mu: objects that went away lose
 * their handles; the others keep them. */
static CK_RV objs_apply(const key_set *ks)
{
    for (size_t i = 0; i < G.nobj; i++)
        G.objs[i]->live = false;
    CK_RV rv = CKR_OK;
    for (size_t i = 0; i < ks->n && rv == CKR_OK; i++)
        rv = objs_add_key(&ks->k[i]);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Attributes                                                                */

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

static CK_KEY_TYPE obj_key_type(const p11_obj *o)
{
    if (kt_rsa(o->type))
        return CKK_RSA;
    if (kt_ec(o->type))
        return CKK_EC;
    if (o->type == P11_KT_ED25519)
        return CKK_EC_EDWARDS;
    return CKK_AES;
}

static size_t obj_sig_len(const p11_obj *o)
{
    switch (o->type) {
    case P11_KT_ECDSA_P256: return 64;
    case P11_KT_ECDSA_P384: return 96;
    case P11_KT_ED25519: return 64;
    default: return o->pub_len; /* RSA: modulus bytes */
    }
}

enum { A_OK = 0, A_INVALID, A_SENSITIVE };

/* Encodes attribute t of o into buf (cap bytes at least 1024 + 2 * spki). */
static int attr_get(const p11_obj *o, CK_ATTRIBUTE_TYPE t, uint8_t *buf, size_t cap,
                    size_t *len)
{
    CK_BBOOL tr = CK_TRUE, fa = CK_FALSE;
    CK_ULONG ul;
    const void *src = NULL;
    size_t n = 0;
    bool priv = o->cls == CKO_PRIVATE_KEY, pubk = o->cls == CKO_PUBLIC_KEY,
         sec = o->cls == CKO_SECRET_KEY, rsa = kt_rsa(o->type);
#define BOOL(cond) (src = (cond) ? &tr : &fa, n = sizeof(CK_BBOOL))
#define ULONG(v) (ul = (CK_ULONG)(v), src = &ul, n = sizeof ul)
    switch (t) {
    case CKA_CLASS: ULONG(o->cls); break;
    case CKA_TOKEN: BOOL(1); break;
    case CKA_PRIVATE: BOOL(!pubk); break;
    case CKA_MODIFIABLE: BOOL(0); break;
    case CKA_COPYABLE: BOOL(0); break;
    case CKA_DESTROYABLE: BOOL(!pubk); break; /* C_DestroyObject deletes the transit key */
    case CKA_LABEL: src = o->name; n = strlen(o->name); break;
    case CKA_KEY_TYPE: ULONG(obj_key_type(o)); break;
    case CKA_ID: {
        int w = snprintf((char *)buf, cap, "%s:v%u", o->name, o->version);
        if (w < 0 || (size_t)w >= cap)
            return A_INVALID;
        *len = (size_t)w;
        return A_OK;
    }
    case CKA_START_DATE:
    case CKA_END_DATE: n = 0; src = ""; break;
    case CKA_DERIVE: BOOL(0); break;
    case CKA_LOCAL: BOOL(1); break;
    case CKA_KEY_GEN_MECHANISM:
        ULONG(rsa                          ? CKM_RSA_PKCS_KEY_PAIR_GEN
              : kt_ec(o->type)             ? CKM_EC_KEY_PAIR_GEN
              : o->type == P11_KT_ED25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN
                                           : CKM_AES_KEY_GEN);
        break;
    case CKA_ENCRYPT: BOOL(sec || (rsa && pubk)); break; /* RSA: CKM_RSA_PKCS_OAEP */
    case CKA_DECRYPT: BOOL(sec || (rsa && priv)); break;
    case CKA_SIGN: BOOL(priv); break;
    case CKA_VERIFY: BOOL(pubk); break;
    case CKA_SIGN_RECOVER:
    case CKA_VERIFY_RECOVER:
    case CKA_WRAP:
    case CKA_UNWRAP: BOOL(0); break;
    case CKA_SUBJECT:
        if (sec)
            return A_INVALID;
        n = 0;
        src = "";
        break;
    case CKA_TRUSTED:
        if (priv)
            return A_INVALID;
        BOOL(0);
        break;
    case CKA_SENSITIVE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_NEVER_EXTRACTABLE:
        if (pubk)
            return A_INVALID;
        BOOL(1);
        break;
    case CKA_EXTRACTABLE:
    case CKA_WRAP_WITH_TRUSTED:
    case CKA_ALWAYS_AUTHENTICATE:
        if (pubk)
            return A_INVALID;
        BOOL(0);
        break;
    case CKA_PUBLIC_KEY_INFO:
        if (sec)
            return A_INVALID;
        src = o->spki;
        n = o->spki_len;
        break;
    case CKA_MODULUS:
        if (!rsa)
            return A_INVALID;
        src = o->pub;
        n = o->pub_len;
        break;
    case CKA_MODULUS_BITS:
        if (!rsa)
            return A_INVALID;
        ULONG(o->pub_len * 8);
        break;
    case CKA_PUBLIC_EXPONENT:
        if (!rsa)
            return A_INVALID;
        src = o->exp;
        n = o->exp_len;
        break;
    case CKA_EC_PARAMS:
        if (o->type == P11_KT_ECDSA_P256)
            src = oid_p256, n = sizeof oid_p256;
        else if (o->type == P11_KT_ECDSA_P384)
            src = oid_p384, n = sizeof oid_p384;
        else if (o->type == P11_KT_ED25519)
            src = oid_ed25519, n = sizeof oid_ed25519;
        else
            return A_INVALID;
        break;
    case CKA_EC_POINT: /* DER OCTET STRING; also on the private key, for libp11 */
        if (!kt_ec(o->type) && o->type != P11_KT_ED25519)
            return A_INVALID;
        if (o->pub_len > 127 || cap < o->pub_len + 2)
            return A_INVALID;
        buf[0] = 0x04;
        buf[1] = (uint8_t)o->pub_len;
        memcpy(buf + 2, o->pub, o->pub_len);
        *len = o->pub_len + 2;
        return A_OK;
    case CKA_VALUE_LEN:
        if (!sec)
            return A_INVALID;
        ULONG(32);
        break;
    case CKA_VALUE:
    case CKA_PRIVATE_EXPONENT:
    case CKA_PRIME_1:
    case CKA_PRIME_2:
    case CKA_EXPONENT_1:
    case CKA_EXPONENT_2:
    case CKA_COEFFICIENT:
        if (pubk)
            return A_INVALID;
        if (t != CKA_VALUE && !rsa)
            return A_INVALID;
        return A_SENSITIVE;
    default: return A_INVALID;
    }
#undef BOOL
#undef ULONG
    if (n > cap)
        return A_INVALID;
    if (n)
        memcpy(buf, src, n);
    *len = n;
    return A_OK;
}

#define ATTR_CAP 4096

/* ------------------------------------------------------------------------ */
/* Mechanisms                                                                */

/* signature mechanisms: single-part and message-based (PKCS#11 3.0) */
#define SIG_FLAGS (CKF_SIGN | CKF_VERIFY | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY)

static const struct {
    CK_MECHANISM_TYPE m;
    CK_ULONG min, max;
    CK_FLAGS flags;
} mechs[] = {
    {CKM_EC_KEY_PAIR_GEN, 256, 384,
     CKF_GENERATE_KEY_PAIR | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS},
    {CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, 255, CKF_GENERATE_KEY_PAIR},
    {CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096, CKF_GENERATE_KEY_PAIR},
    {CKM_AES_KEY_GEN, 32, 32, CKF_GENERATE},
    {CKM_ECDSA, 256, 384,
     SIG_FLAGS | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS},
    {CKM_ECDSA_SHA256, 256, 384,
     SIG_FLAGS | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS},
    {CKM_ECDSA_SHA384, 256, 384,
     SIG_FLAGS | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS},
    {CKM_EDDSA, 255, 255, SIG_FLAGS},
    {CKM_RSA_PKCS, 2048, 4096, SIG_FLAGS},
    {CKM_SHA256_RSA_PKCS, 2048, 4096, SIG_FLAGS},
    {CKM_SHA384_RSA_PKCS, 2048, 4096, SIG_FLAGS},
    {CKM_SHA512_RSA_PKCS, 2048, 4096, SIG_FLAGS},
    {CKM_RSA_PKCS_PSS, 2048, 4096, SIG_FLAGS},
    {CKM_SHA256_RSA_PKCS_PSS, 2048, 4096, SIG_FLAGS},
    {CKM_SHA384_RSA_PKCS_PSS, 2048, 4096, SIG_FLAGS},
    {CKM_SHA512_RSA_PKCS_PSS, 2048, 4096, SIG_FLAGS},
    {CKM_AES_GCM, 32, 32, CKF_ENCRYPT | CKF_DECRYPT | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT},
    {CKM_RSA_PKCS_OAEP, 2048, 4096, CKF_ENCRYPT | CKF_DECRYPT},
    {CKM_SHA256, 0, 0, CKF_DIGEST},
    {CKM_SHA384, 0, 0, CKF_DIGEST},
    {CKM_SHA512, 0, 0, CKF_DIGEST},
};
#define NMECHS (sizeof mechs / sizeof mechs[0])

static const EVP_MD *mech_md(CK_MECHANISM_TYPE m)
{
    switch (m) {
    case CKM_SHA_1: return EVP_sha1();
    case CKM_SHA224: return EVP_sha224();
    case CKM_SHA256:
    case CKM_ECDSA_SHA256:
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS_PSS: return EVP_sha256();
    case CKM_SHA384:
    case CKM_ECDSA_SHA384:
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS_PSS: return EVP_sha384();
    case CKM_SHA512:
    case CKM_SHA512_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS_PSS: return EVP_sha512();
    default: return NULL;
    }
}

static bool mech_known(CK_MECHANISM_TYPE m)
{
    for (size_t i = 0; i < NMECHS; i++)
        if (mechs[i].m == m)
            return true;
    return false;
}

/* Transit name of a digest of len bytes ("sha2-256"), NULL if none. */
static const char *hash_name_by_len(size_t len)
{
    switch (len) {
    case 28: return "sha2-224"; /* transit signs no SHA-1 digests */
    case 32: return "sha2-256";
    case 48: return "sha2-384";
    case 64: return "sha2-512";
    default: return NULL;
    }
}

static const EVP_MD *md_by_len(size_t len)
{
    switch (len) {
    case 20: return EVP_sha1();
    case 28: return EVP_sha224();
    case 32: return EVP_sha256();
    case 48: return EVP_sha384();
    case 64: return EVP_sha512();
    default: return NULL;
    }
}

/* DigestInfo prefixes (RFC 8017 section 9.2, note 1). */
static const struct {
    uint8_t pre[19];
    size_t pre_len, hash_len;
} digest_infos[] = {
    {{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
     15, 20},
    {{0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04,
      0x05, 0x00, 0x04, 0x1c},
     19, 28},
    {{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
      0x05, 0x00, 0x04, 0x20},
     19, 32},
    {{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
      0x05, 0x00, 0x04, 0x30},
     19, 48},
    {{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
      0x05, 0x00, 0x04, 0x40},
     19, 64},
};

/* Splits a DigestInfo into its hash; NULL if in is not one we know. */
static const uint8_t *digest_info_hash(const uint8_t *in, size_t len, size_t *hash_len)
{
    for (size_t i = 0; i < sizeof digest_infos / sizeof digest_infos[0]; i++)
        if (len == digest_infos[i].pre_len + digest_infos[i].hash_len &&
            !memcmp(in, digest_infos[i].pre, digest_infos[i].pre_len)) {
            *hash_len = digest_infos[i].hash_len;
            return in + digest_infos[i].pre_len;
        }
    return NULL;
}

static const EVP_MD *mgf_md(CK_RSA_PKCS_MGF_TYPE mgf)
{
    switch (mgf) {
    case CKG_MGF1_SHA1: return EVP_sha1();
    case CKG_MGF1_SHA224: return EVP_sha224();
    case CKG_MGF1_SHA256: return EVP_sha256();
    case CKG_MGF1_SHA384: return EVP_sha384();
    case CKG_MGF1_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* Entry-point plumbing                                                      */

/* An entry point starts with LOCK() (no session held yet); sess_get takes
 * the session's mutex for the rest of the call; UNLOCK_RETURN releases it.
 * Functions without a session read the module state under g_mu. */
#define LOCK() (tl_sess = NULL)
#define UNLOCK_RETURN(rv)                                                                          \
    do {                                                                                           \
        CK_RV rv_ = (rv);                                                                          \
        sess_release();                                                                            \
        return rv_;                                                                                \
    } while (0)

static void sess_init_once(void)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        pthread_mutex_init(&g_sess[i].mu, NULL);
}

static void sess_release(void)
{
    if (tl_sess) {
        pthread_mutex_unlock(&tl_sess->mu);
        tl_sess = NULL;
    }
}

static bool module_ready(void)
{
    pthread_mutex_lock(&g_mu);
    bool r = G.init;
    pthread_mutex_unlock(&g_mu);
    return r;
}

static bool is_logged_in(void)
{
    pthread_mutex_lock(&g_mu);
    bool r = G.logged_in;
    pthread_mutex_unlock(&g_mu);
    return r;
}

/* Looks up a session of an initialised module and holds its mutex until the
 * entry point returns (UNLOCK_RETURN). Operation and search state from
 * before a logout is dropped here. */
static CK_RV sess_get(CK_SESSION_HANDLE h, p11_sess **out)
{
    *out = NULL;
    if (tl_sess) { /* a helper of the same entry point */
        if (tl_sess->h != h)
            return CKR_SESSION_HANDLE_INVALID;
        *out = tl_sess;
        return CKR_OK;
    }
    pthread_once(&g_sess_once, sess_init_once);
    if (!module_ready())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (h == 0)
        return CKR_SESSION_HANDLE_INVALID;
    p11_sess *s = &g_sess[(h - 1) % MAX_SESSIONS];
    if (pthread_mutex_lock(&s->mu) != 0)
        return CKR_GENERAL_ERROR;
    if (s->h != h) {
        pthread_mutex_unlock(&s->mu);
        return CKR_SESSION_HANDLE_INVALID;
    }
    pthread_mutex_lock(&g_mu);
    uint64_t ep = G.epoch;
    pthread_mutex_unlock(&g_mu);
    if (s->epoch != ep) {
        op_clear(&s->op);
        find_clear(s);
        s->epoch = ep;
    }
    tl_sess = s;
    *out = s;
    return CKR_OK;
}

/* A libmesatee client for the configuration; NULL with *what naming the
 * setting that failed (the message in the client, or per thread). */
static mesatee_client *client_from_conf(const p11_conf *conf, const char **what)
{
    *what = "server";
    mesatee_client *c = mesatee_client_new(conf->server);
    if (!c)
        return NULL;
    int rc = MESATEE_OK;
    if (conf->tls_server_name && (*what = "tls_server_name") &&
        (rc = mesatee_client_set_tls_server_name(c, conf->tls_server_name)) != MESATEE_OK) {
    } else if (conf->policy_signers && (*what = "policy_signers") &&
               (rc = mesatee_client_set_policy_signers(c, conf->policy_signers, 0)) !=
                   MESATEE_OK) {
    } else if (conf->policy && (*what = "policy") &&
               (rc = mesatee_client_set_policy_file(c, conf->policy)) != MESATEE_OK) {
    } else if (conf->ca && (*what = "ca") &&
               (rc = mesatee_client_set_ca_file(c, conf->ca)) != MESATEE_OK) {
    } else {
        *what = "timeout";
        rc = mesatee_client_set_timeout(c, conf->timeout);
    }
    if (rc != MESATEE_OK) {
        fprintf(stderr, "libmesatee-pkcs11: %s: %s\n", *what, mesatee_client_errmsg(c));
        mesatee_client_free(c);
        return NULL;
    }
    return c;
}

/* The session's own client, carrying the current login's token (made on
 * first use: one connection per session); *ep gets the login's epoch. The
 * caller holds s->mu. */
static CK_RV sess_client(p11_sess *s, mesatee_client **c, uint64_t *ep)
{
    pthread_mutex_lock(&g_mu);
    if (!G.logged_in || !G.token) {
        pthread_mutex_unlock(&g_mu);
        return CKR_USER_NOT_LOGGED_IN;
    }
    uint64_t e = G.epoch;
    char *tok = NULL;
    if (s->client_epoch != e && !(tok = mt_strdup(G.token))) {
        pthread_mutex_unlock(&g_mu);
        return CKR_HOST_MEMORY;
    }
    pthread_mutex_unlock(&g_mu);
    const char *what;
    if (!s->client && !(s->client = client_from_conf(&G.conf, &what))) {
        if (tok)
            mt_wipe(tok, strlen(tok));
        free(tok);
        return CKR_DEVICE_ERROR;
    }
    if (tok) {
        int rc = mesatee_client_set_token(s->client, tok);
        mt_wipe(tok, strlen(tok));
        free(tok);
        if (rc != MESATEE_OK)
            return CKR_HOST_MEMORY;
        s->client_epoch = e;
    }
    *c = s->client;
    *ep = e;
    return CKR_OK;
}

/* ------------------------------------------------------------------------ */
/* General functions                                                         */

static CK_RV do_initialize(void *init_args)
{
    if (G.init)
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    if (init_args) {
        CK_C_INITIALIZE_ARGS *a = init_args;
        if (a->pReserved)
            return CKR_ARGUMENTS_BAD;
        int nfn = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex + !!a->UnlockMutex;
        if (nfn != 0 && nfn != 4)
            return CKR_ARGUMENTS_BAD;
        if (nfn == 4 && !(a->flags & CKF_OS_LOCKING_OK))
            return CKR_CANT_LOCK; /* we only have the OS's locks */
    }
    const char *path = getenv(P11_CONF_ENV);
    if (!path || !*path)
        path = P11_CONF_DEFAULT_PATH;
    mt_err err;
    mt_err_clear(&err);
    p11_conf conf;
    if (p11_conf_load(path, &conf, &err) != MT_OK) {
        fprintf(stderr, "libmesatee-pkcs11: %s (set %s to the configuration file)\n", err.msg,
                P11_CONF_ENV);
        return CKR_GENERAL_ERROR;
    }
    const char *what;
    mesatee_client *c = client_from_conf(&conf, &what);
    if (!c) {
        fprintf(stderr, "libmesatee-pkcs11: %s: %s is not usable\n", path, what);
        p11_conf_clear(&conf);
        return CKR_GENERAL_ERROR;
    }
    uint64_t ep = G.epoch; /* epochs grow across C_Finalize: sessions' old state stays stale */
    memset(&G, 0, sizeof G);
    G.conf = conf;
    G.client = c;
    G.epoch = ep + 1;
    G.init = true;
    return CKR_OK;
}

/* Ends the login; the caller holds g_login_mu (and no g_mu). */
static void do_logout(void)
{
    pthread_mutex_lock(&g_mu);
    bool revoke = G.logged_in && G.password_login;
    session_clear();
    pthread_mutex_unlock(&g_mu);
    if (revoke && G.client) { /* revoke the session token C_Login made */
        char *out = NULL;
        (void)mesatee_logout(G.client, &out);
        mesatee_free(out);
    }
    if (G.client)
        mesatee_client_set_token(G.client, NULL);
}

CK_RV C_Initialize(void *init_args)
{
    LOCK();
    pthread_once(&g_sess_once, sess_init_once);
    pthread_mutex_lock(&g_login_mu);
    pthread_mutex_lock(&g_mu);
    CK_RV rv = do_initialize(init_args);
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_login_mu);
    return rv;
}

/* Closes every session, waiting for calls in flight on them. The caller
 * holds no lock. */
static void close_all_sessions(void)
{
    pthread_once(&g_sess_once, sess_init_once);
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        p11_sess *s = &g_sess[i];
        mesatee_client *c = NULL;
        pthread_mutex_lock(&s->mu);
        if (s->h) {
            pthread_mutex_lock(&g_mu);
            sess_close(s, &c);
            pthread_mutex_unlock(&g_mu);
        }
        pthread_mutex_unlock(&s->mu);
        mesatee_client_free(c);
    }
}

CK_RV C_Finalize(void *reserved_arg)
{
    LOCK();
    if (reserved_arg)
        return CKR_ARGUMENTS_BAD;
    if (!module_ready())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    close_all_sessions();
    pthread_mutex_lock(&g_login_mu);
    do_logout();
    pthread_mutex_lock(&g_mu);
    CK_RV rv = CKR_OK;
    if (!G.init) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED; /* a concurrent C_Finalize won */
    } else {
        mesatee_client_free(G.client);
        p11_conf_clear(&G.conf);
        uint64_t ep = G.epoch;
        memset(&G, 0, sizeof G);
        G.epoch = ep;
    }
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_login_mu);
    return rv;
}

CK_RV C_GetInfo(CK_INFO *info)
{
    LOCK();
    if (!module_ready())
        UNLOCK_RETURN(CKR_CRYPTOKI_NOT_INITIALIZED);
    if (!info)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    memset(info, 0, sizeof *info);
    info->cryptokiVersion.major = 3;
    info->cryptokiVersion.minor = 0;
    pad_copy(info->manufacturerID, sizeof info->manufacturerID, "mesatee");
    pad_copy(info->libraryDescription, sizeof info->libraryDescription,
             "mesatee KeyStore PKCS#11");
    info->libraryVersion.major = 0;
    info->libraryVersion.minor = 1;
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID *list, CK_ULONG *n)
{
    LOCK();
    if (!module_ready())
        UNLOCK_RETURN(CKR_CRYPTOKI_NOT_INITIALIZED);
    if (!n)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    if (!list) {
        *n = 1;
        UNLOCK_RETURN(CKR_OK);
    }
    if (*n < 1) {
        *n = 1;
        UNLOCK_RETURN(CKR_BUFFER_TOO_SMALL);
    }
    list[0] = SLOT_ID;
    *n = 1;
    UNLOCK_RETURN(CKR_OK);
}

/* The checks of a call on the slot: the module initialised, the one slot,
 * then the caller's arguments (args_ok false: CKR_ARGUMENTS_BAD). */
static CK_RV slot_check(CK_SLOT_ID slot, bool args_ok)
{
    if (!module_ready())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (slot != SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    return args_ok ? CKR_OK : CKR_ARGUMENTS_BAD;
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    LOCK();
    CK_RV rv = slot_check(slot, info != NULL);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    memset(info, 0, sizeof *info);
    pad_copy(info->slotDescription, sizeof info->slotDescription, G.conf.server);
    pad_copy(info->manufacturerID, sizeof info->manufacturerID, "mesatee");
    info->flags = CKF_TOKEN_PRESENT;
    info->hardwareVersion.major = 0;
    info->firmwareVersion.minor = 1;
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    LOCK();
    CK_RV rv = slot_check(slot, info != NULL);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    memset(info, 0, sizeof *info);
    pad_copy(info->label, sizeof info->label, G.conf.token_label);
    pad_copy(info->manufacturerID, sizeof info->manufacturerID, "mesatee");
    pad_copy(info->model, sizeof info->model, "KeyStore transit");
    pad_copy(info->serialNumber, sizeof info->serialNumber,
             G.conf.user ? G.conf.user : "token");
    info->flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
                  CKF_TOKEN_INITIALIZED;
    info->ulMaxSessionCount = MAX_SESSIONS;
    info->ulMaxRwSessionCount = MAX_SESSIONS;
    pthread_mutex_lock(&g_mu);
    info->ulSessionCount = sess_count(false);
    info->ulRwSessionCount = sess_count(true);
    pthread_mutex_unlock(&g_mu);
    info->ulMaxPinLen = 4096;
    info->ulMinPinLen = 1;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->firmwareVersion.minor = 1;
    pad_copy(info->utcTime, sizeof info->utcTime, "");
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *n)
{
    LOCK();
    CK_RV rv = slot_check(slot, n != NULL);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!list) {
        *n = NMECHS;
        UNLOCK_RETURN(CKR_OK);
    }
    if (*n < NMECHS) {
        *n = NMECHS;
        UNLOCK_RETURN(CKR_BUFFER_TOO_SMALL);
    }
    for (size_t i = 0; i < NMECHS; i++)
        list[i] = mechs[i].m;
    *n = NMECHS;
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    LOCK();
    CK_RV rv = slot_check(slot, info != NULL);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    for (size_t i = 0; i < NMECHS; i++)
        if (mechs[i].m == type) {
            info->ulMinKeySize = mechs[i].min;
            info->ulMaxKeySize = mechs[i].max;
            info->flags = mechs[i].flags;
            UNLOCK_RETURN(CKR_OK);
        }
    UNLOCK_RETURN(CKR_MECHANISM_INVALID);
}

CK_RV C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR *pin, CK_ULONG pin_len, CK_UTF8CHAR *label)
{
    LOCK();
    CK_RV rv = slot_check(slot, true);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    /* the token is the user's account on the server: nothing to initialise */
    UNLOCK_RETURN(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR *old_pin, CK_ULONG old_len, CK_UTF8CHAR *new_pin,
               CK_ULONG new_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    /* passwords change with `mesatee user passwd` */
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED);
}

/* ------------------------------------------------------------------------ */
/* Sessions                                                                  */

CK_RV C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *app, CK_NOTIFY notify,
                    CK_SESSION_HANDLE *out)
{
    LOCK();
    CK_RV rv = slot_check(slot, true);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!(flags & CKF_SERIAL_SESSION))
        UNLOCK_RETURN(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    if (!out)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    pthread_once(&g_sess_once, sess_init_once);
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        p11_sess *s = &g_sess[i];
        if (pthread_mutex_trylock(&s->mu) != 0) /* a call in flight: a session in use */
            continue;
        if (s->h) {
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_lock(&g_mu);
        CK_SESSION_HANDLE gen = ++G.next_sess;
        s->h = gen * MAX_SESSIONS + i + 1; /* slot i, as sess_get finds it */
        s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
        s->epoch = G.epoch;
        pthread_mutex_unlock(&g_mu);
        *out = s->h;
        pthread_mutex_unlock(&s->mu);
        UNLOCK_RETURN(CKR_OK);
    }
    UNLOCK_RETURN(CKR_SESSION_COUNT);
}

/* Ends the login if no session is left (the last session ends it). The
 * caller holds no lock but possibly its session's. */
static void logout_if_no_session(void)
{
    pthread_mutex_lock(&g_login_mu);
    pthread_mutex_lock(&g_mu);
    bool out = G.logged_in && sess_count(false) == 0;
    pthread_mutex_unlock(&g_mu);
    if (out)
        do_logout();
    pthread_mutex_unlock(&g_login_mu);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE h)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    mesatee_client *c = NULL;
    pthread_mutex_lock(&g_mu);
    sess_close(s, &c);
    pthread_mutex_unlock(&g_mu);
    sess_release();
    mesatee_client_free(c);
    logout_if_no_session();
    return CKR_OK;
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slot)
{
    LOCK();
    CK_RV rv = slot_check(slot, true);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    close_all_sessions();
    logout_if_no_session();
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO *info)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!info)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    memset(info, 0, sizeof *info);
    info->slotID = SLOT_ID;
    bool rw = s->flags & CKF_RW_SESSION;
    info->state = is_logged_in() ? (rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS)
                              : (rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION);
    info->flags = s->flags;
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE *state, CK_ULONG *len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv == CKR_OK && !len)
        rv = CKR_ARGUMENTS_BAD;
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE h, CK_BYTE *state, CK_ULONG len,
                          CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED);
}

/* Logs in with pin: the configured user's password, or a token. The
 * caller holds g_login_mu and has seen no login. */
static CK_RV do_login(const CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    if (!pin || pin_len == 0 || pin_len > 4096 || memchr(pin, 0, pin_len))
        return CKR_PIN_INCORRECT;
    char *p = malloc(pin_len + 1);
    if (!p)
        return CKR_HOST_MEMORY;
    memcpy(p, pin, pin_len);
    p[pin_len] = '\0';
    int rc;
    char *out = NULL;
    if (G.conf.user) {
        rc = mesatee_login(G.client, G.conf.user, p, NULL, &out);
    } else {
        rc = mesatee_client_set_token(G.client, p);
        if (rc == MESATEE_OK)
            rc = mesatee_whoami(G.client, &out);
    }
    mt_wipe(p, pin_len);
    free(p);
    if (out)
        mt_wipe(out, strlen(out));
    mesatee_free(out);
    if (rc == MESATEE_EAUTH || rc == MESATEE_EINVAL) {
        report(G.client, "login");
        mesatee_client_set_token(G.client, NULL);
        return CKR_PIN_INCORRECT;
    }
    pthread_mutex_lock(&g_mu);
    uint64_t ep = G.epoch;
    pthread_mutex_unlock(&g_mu);
    if (rc != MESATEE_OK) {
        CK_RV rv = map_status_c(G.client, ep, rc, "login"); /* reports before the reset clears the message */
        mesatee_client_set_token(G.client, NULL);
        return rv;
    }
    const char *t = mesatee_client_token(G.client);
    char *tok = t ? mt_strdup(t) : NULL;
    key_set ks;
    CK_RV rv = tok ? keys_fetch(G.client, ep, &ks) : CKR_HOST_MEMORY;
    if (rv == CKR_OK) {
        pthread_mutex_lock(&g_mu);
        G.logged_in = true;
        G.password_login = G.conf.user != NULL;
        G.token = tok;
        tok = NULL;
        rv = objs_apply(&ks);
        pthread_mutex_unlock(&g_mu);
        key_set_free(&ks);
        if (rv != CKR_OK)
            do_logout();
    } else if (G.conf.user) { /* revoke the token just made */
        char *o2 = NULL;
        (void)mesatee_logout(G.client, &o2);
        mesatee_free(o2);
    }
    if (tok) {
        mt_wipe(tok, strlen(tok));
        free(tok);
    }
    if (rv != CKR_OK)
        mesatee_client_set_token(G.client, NULL);
    return rv;
}

/* The login of an entry point that holds its session: one at a time. */
static CK_RV login_serial(const CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    pthread_mutex_lock(&g_login_mu);
    CK_RV rv = is_logged_in() ? CKR_USER_ALREADY_LOGGED_IN : do_login(pin, pin_len);
    pthread_mutex_unlock(&g_login_mu);
    return rv;
}

CK_RV C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (user == CKU_SO || user == CKU_CONTEXT_SPECIFIC)
        UNLOCK_RETURN(is_logged_in() ? CKR_USER_ANOTHER_ALREADY_LOGGED_IN
                                     : CKR_USER_TYPE_INVALID);
    if (user != CKU_USER)
        UNLOCK_RETURN(CKR_USER_TYPE_INVALID);
    UNLOCK_RETURN(login_serial(pin, pin_len));
}

static CK_RV login_user(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR *pin,
                        CK_ULONG pin_len, CK_UTF8CHAR *name, CK_ULONG name_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (user != CKU_USER)
        UNLOCK_RETURN(CKR_USER_TYPE_INVALID);
    if (!name || name_len == 0)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    /* only the configured user: the token is that user's key ring */
    if (!G.conf.user || strlen(G.conf.user) != name_len || memcmp(G.conf.user, name, name_len))
        UNLOCK_RETURN(CKR_PIN_INCORRECT);
    UNLOCK_RETURN(login_serial(pin, pin_len));
}

CK_RV C_Logout(CK_SESSION_HANDLE h)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    pthread_mutex_lock(&g_login_mu);
    if (!is_logged_in())
        rv = CKR_USER_NOT_LOGGED_IN;
    else
        do_logout(); /* every session drops its operation at its next call */
    pthread_mutex_unlock(&g_login_mu);
    UNLOCK_RETURN(rv);
}

/* ------------------------------------------------------------------------ */
/* Objects                                                                   */

/* Checks a session for an object operation. */
static CK_RV sess_user(CK_SESSION_HANDLE h, p11_sess **s)
{
    CK_RV rv = sess_get(h, s);
    if (rv != CKR_OK)
        return rv;
    return is_logged_in() ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
}

/* true if handle o names a live object (under g_mu, briefly). */
static bool obj_exists(CK_OBJECT_HANDLE o)
{
    pthread_mutex_lock(&g_mu);
    bool r = obj_find(o) != NULL;
    pthread_mutex_unlock(&g_mu);
    return r;
}

static CK_RV create_object(p11_sess *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
static const CK_ATTRIBUTE *tmpl_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE t);
static CK_ULONG tmpl_ulong(const CK_ATTRIBUTE *a);
static CK_RV tmpl_check(const CK_ATTRIBUTE *tmpl, CK_ULONG n, bool private_part);
static CK_RV tmpl_label(const CK_ATTRIBUTE *t1, CK_ULONG n1, const CK_ATTRIBUTE *t2, CK_ULONG n2,
                        char name[P11_RESP_MAX_NAME + 1]);
static CK_RV key_on_server(p11_sess *s, const char *name, p11_ktype type, const uint8_t *material,
                           size_t mlen, CK_OBJECT_CLASS c1, CK_OBJECT_HANDLE *h1,
                           CK_OBJECT_CLASS c2, CK_OBJECT_HANDLE *h2);

/* Imports a private or secret key into the KeyStore (transit import; the
 * material is wrapped for the server's wrapping key before it leaves the
 * process): CKA_LABEL is the new key's name, CKA_TOKEN must not be false,
 * CKA_SENSITIVE true and CKA_EXTRACTABLE false (they are on the server).
 * Public keys, certificates and data objects are not held by transit:
 * CKR_ATTRIBUTE_VALUE_INVALID on CKA_CLASS. */
CK_RV C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv == CKR_OK && ((!tmpl && n) || !out))
        rv = CKR_ARGUMENTS_BAD;
    UNLOCK_RETURN(rv != CKR_OK ? rv : create_object(s, tmpl, n, out));
}

static CK_RV create_object(p11_sess *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    if (!is_logged_in())
        return CKR_USER_NOT_LOGGED_IN;
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    CK_RV rv = tmpl_check(tmpl, n, true);
    if (rv != CKR_OK)
        return rv;
    const CK_ATTRIBUTE *ca = tmpl_find(tmpl, n, CKA_CLASS);
    if (!ca)
        return CKR_TEMPLATE_INCOMPLETE;
    CK_ULONG cls = tmpl_ulong(ca);
    if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY) {
        fprintf(stderr, "libmesatee-pkcs11: the KeyStore holds private and secret keys only "
                        "(a transit key's public key comes with it)\n");
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    char name[P11_RESP_MAX_NAME + 1];
    if ((rv = tmpl_label(tmpl, n, NULL, 0, name)) != CKR_OK)
        return rv;
    const CK_ATTRIBUTE *id = tmpl_find(tmpl, n, CKA_ID);
    if (id && id->ulValueLen) { /* the module's CKA_ID is NAME:vN; v1 for an import */
        char want[P11_RESP_MAX_NAME + 8];
        int w = snprintf(want, sizeof want, "%s:v1", name);
        if (w < 0 || id->ulValueLen != (size_t)w || memcmp(id->pValue, want, (size_t)w))
            return CKR_ATTRIBUTE_READ_ONLY;
    }
    p11_ktype type;
    uint8_t *der = NULL;
    size_t dl = 0;
    if ((rv = p11_import_material(tmpl, n, cls, &type, &der, &dl)) != CKR_OK)
        return rv;
    if (cls == CKO_SECRET_KEY)
        rv = key_on_server(s, name, type, der, dl, CKO_SECRET_KEY, out, 0, NULL);
    else {
        CK_OBJECT_HANDLE pub;
        rv = key_on_server(s, name, type, der, dl, CKO_PRIVATE_KEY, out, CKO_PUBLIC_KEY, &pub);
    }
    p11_import_free(der, dl);
    return rv;
}

static CK_RV destroy_object(p11_sess *s, CK_OBJECT_HANDLE oh);

/* Deletes the transit key of a private or secret key object (with every
 * object of that key). Refused (CKR_ACTION_PROHIBITED) for public key
 * objects (the public key goes with its private key), for keys of another
 * user, for keys with more than one version, retired ones included
 * (destroying one object would delete them all: `mesatee key delete` does
 * that), and when the key's deletion_allowed is false. */
CK_RV C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_user(h, &s);
    UNLOCK_RETURN(rv != CKR_OK ? rv : destroy_object(s, o));
}

static CK_RV destroy_object(p11_sess *s, CK_OBJECT_HANDLE oh)
{
    pthread_mutex_lock(&g_mu);
    p11_obj *o = obj_find(oh);
    if (o)
        obj_get(o);
    pthread_mutex_unlock(&g_mu);
    if (!o)
        return CKR_OBJECT_HANDLE_INVALID;
    CK_RV rv = CKR_OK;
    if (!(s->flags & CKF_RW_SESSION))
        rv = CKR_SESSION_READ_ONLY;
    else if (o->cls == CKO_PUBLIC_KEY || strchr(o->name, ':'))
        rv = CKR_ACTION_PROHIBITED;
    mesatee_client *c = NULL;
    uint64_t ep = 0;
    if (rv == CKR_OK)
        rv = sess_client(s, &c, &ep);
    p11_keyinfo k;
    if (rv == CKR_OK && (rv = map_status_c(c, ep, p11_srv_read(c, o->name, &k), "read key")) == CKR_OK) {
        /* retired versions count too: the delete would take them all */
        if (k.latest_version != 1 || o->version != 1) {
            fprintf(stderr,
                    "libmesatee-pkcs11: key %s has %u versions: destroying one object would "
                    "delete them all (mesatee key delete does)\n",
                    o->name, k.latest_version);
            rv = CKR_ACTION_PROHIBITED;
        }
        p11_keyinfo_free(&k);
    } else if (rv == CKR_KEY_HANDLE_INVALID) {
        rv = CKR_OBJECT_HANDLE_INVALID;
    }
    if (rv == CKR_OK) {
        int rc = p11_srv_delete(c, o->name);
        if (rc == MESATEE_EINVAL) { /* deletion_allowed is false */
            report(c, "destroy");
            rv = CKR_ACTION_PROHIBITED;
        } else if (rc == MESATEE_ENOTFOUND) {
            rv = CKR_OBJECT_HANDLE_INVALID;
        } else {
            rv = map_status_c(c, ep, rc, "destroy");
        }
    }
    if (rv == CKR_OK) { /* every object of the key is gone */
        pthread_mutex_lock(&g_mu);
        for (size_t i = 0; i < G.nobj; i++)
            if (!strcmp(G.objs[i]->name, o->name))
                G.objs[i]->live = false;
        pthread_mutex_unlock(&g_mu);
    }
    obj_put(o);
    return rv;
}

/* A change to object o, which the module never makes: the session's and
 * the object's errors first, then CKR_ACTION_PROHIBITED. */
static CK_RV obj_prohibited(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o)
{
    p11_sess *s;
    CK_RV rv = sess_user(h, &s);
    if (rv == CKR_OK && !obj_exists(o))
        rv = CKR_OBJECT_HANDLE_INVALID;
    return rv != CKR_OK ? rv : CKR_ACTION_PROHIBITED;
}

CK_RV C_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                   CK_OBJECT_HANDLE *out)
{
    LOCK();
    UNLOCK_RETURN(obj_prohibited(h, o));
}


CK_RV C_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG *size)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_user(h, &s);
    if (rv == CKR_OK && !obj_exists(o))
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv == CKR_OK && !size)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        *size = CK_UNAVAILABLE_INFORMATION;
    UNLOCK_RETURN(rv);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE *tmpl,
                          CK_ULONG n)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_user(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    pthread_mutex_lock(&g_mu);
    p11_obj *o = obj_find(oh);
    if (o)
        obj_get(o);
    pthread_mutex_unlock(&g_mu);
    if (!o)
        UNLOCK_RETURN(CKR_OBJECT_HANDLE_INVALID);
    uint8_t *buf = (!tmpl && n) ? NULL : malloc(ATTR_CAP);
    if (!buf) {
        obj_put(o);
        UNLOCK_RETURN((!tmpl && n) ? CKR_ARGUMENTS_BAD : CKR_HOST_MEMORY);
    }
    for (CK_ULONG i = 0; i < n; i++) {
        size_t len = 0;
        int a = attr_get(o, tmpl[i].type, buf, ATTR_CAP, &len);
        if (a == A_SENSITIVE) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_SENSITIVE;
        } else if (a == A_INVALID) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if (rv == CKR_OK)
                rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (!tmpl[i].pValue) {
            tmpl[i].ulValueLen = len;
        } else if (tmpl[i].ulValueLen < len) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if (rv == CKR_OK)
                rv = CKR_BUFFER_TOO_SMALL;
        } else {
            memcpy(tmpl[i].pValue, buf, len);
            tmpl[i].ulValueLen = len;
        }
    }
    free(buf);
    obj_put(o);
    UNLOCK_RETURN(rv);
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_user(h, &s);
    if (rv == CKR_OK && !obj_exists(o))
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv == CKR_OK && !tmpl && n)
        rv = CKR_ARGUMENTS_BAD;
    /* CKA_MODIFIABLE is false on every object */
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_ACTION_PROHIBITED);
}

static bool obj_matches(const p11_obj *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n, uint8_t *buf)
{
    for (CK_ULONG i = 0; i < n; i++) {
        size_t len = 0;
        if (attr_get(o, tmpl[i].type, buf, ATTR_CAP, &len) != A_OK || len != tmpl[i].ulValueLen ||
            (len && (!tmpl[i].pValue || memcmp(buf, tmpl[i].pValue, len))))
            return false;
    }
    return true;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!tmpl && n)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    if (s->finding)
        UNLOCK_RETURN(CKR_OPERATION_ACTIVE);
    key_set ks = {0};
    mesatee_client *c = NULL;
    uint64_t ep = 0;
    bool fetched = false;
    if (is_logged_in()) { /* read the keys with this session's connection */
        rv = sess_client(s, &c, &ep);
        if (rv == CKR_OK)
            rv = keys_fetch(c, ep, &ks);
        if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN) /* logged out meanwhile: nothing */
            UNLOCK_RETURN(rv);
        fetched = rv == CKR_OK;
    }
    uint8_t *buf = malloc(ATTR_CAP);
    pthread_mutex_lock(&g_mu);
    if (fetched && G.logged_in && G.epoch == ep)
        rv = objs_apply(&ks);
    else
        rv = CKR_OK;
    CK_OBJECT_HANDLE *found = calloc(G.nobj ? G.nobj : 1, sizeof *found);
    size_t nf = 0;
    if (rv == CKR_OK && buf && found && G.logged_in) {
        /* newest version first, so that a label picks the latest key */
        for (size_t i = G.nobj; i-- > 0;)
            if (G.objs[i]->live && obj_matches(G.objs[i], tmpl, n, buf))
                found[nf++] = G.objs[i]->h;
    }
    pthread_mutex_unlock(&g_mu);
    key_set_free(&ks);
    free(buf);
    if (rv == CKR_OK && (!buf || !found))
        rv = CKR_HOST_MEMORY;
    if (rv != CKR_OK) {
        free(found);
        UNLOCK_RETURN(rv);
    }
    s->found = found;
    s->nfound = nf;
    s->fpos = 0;
    s->finding = true;
    UNLOCK_RETURN(CKR_OK);
}

/* The session h with a search under way (C_FindObjectsInit). */
static CK_RV sess_finding(CK_SESSION_HANDLE h, p11_sess **s)
{
    CK_RV rv = sess_get(h, s);
    if (rv != CKR_OK)
        return rv;
    return (*s)->finding ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
}

CK_RV C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *n)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_finding(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!n || (!out && max))
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    CK_ULONG k = 0;
    while (k < max && s->fpos < s->nfound)
        out[k++] = s->found[s->fpos++];
    *n = k;
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE h)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_finding(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    find_clear(s);
    UNLOCK_RETURN(CKR_OK);
}

/* ------------------------------------------------------------------------ */
/* Crypto operations: init                                                   */

/* Checks mechanism m against key o for the operation kind. */
static CK_RV mech_fits(int kind, CK_MECHANISM_TYPE m, const p11_obj *o)
{
    bool rsa = kt_rsa(o->type), ec = kt_ec(o->type), ed = o->type == P11_KT_ED25519,
         aes = o->type == P11_KT_AES256_GCM96;
    bool sign = kind == OP_SIGN, verify = kind == OP_VERIFY;
    if ((sign && o->cls != CKO_PRIVATE_KEY) || (verify && o->cls != CKO_PUBLIC_KEY))
        return CKR_KEY_TYPE_INCONSISTENT;
    switch (m) {
    case CKM_ECDSA:
    case CKM_ECDSA_SHA256:
    case CKM_ECDSA_SHA384: return (sign || verify) ? (ec ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT)
                                                   : CKR_KEY_FUNCTION_NOT_PERMITTED;
    case CKM_EDDSA: return (sign || verify) ? (ed ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT)
                                            : CKR_KEY_FUNCTION_NOT_PERMITTED;
    case CKM_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS:
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS:
        return (sign || verify) ? (rsa ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT)
                                : CKR_KEY_FUNCTION_NOT_PERMITTED;
    case CKM_RSA_PKCS_OAEP:
        /* encrypt with the public key object, decrypt with the private one */
        if (!rsa || (kind == OP_ENCRYPT && o->cls != CKO_PUBLIC_KEY) ||
            (kind == OP_DECRYPT && o->cls != CKO_PRIVATE_KEY))
            return CKR_KEY_TYPE_INCONSISTENT;
        return (kind == OP_ENCRYPT || kind == OP_DECRYPT) ? CKR_OK
                                                          : CKR_KEY_FUNCTION_NOT_PERMITTED;
    case CKM_AES_GCM:
        if (!aes)
            return CKR_KEY_TYPE_INCONSISTENT;
        return (kind == OP_ENCRYPT || kind == OP_DECRYPT) ? CKR_OK
                                                          : CKR_KEY_FUNCTION_NOT_PERMITTED;
    default: return CKR_MECHANISM_INVALID;
    }
}

static CK_RV op_setup(int kind, p11_sess *s, const CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
                      p11_obj *o);

/* Common init of sign/verify/encrypt/decrypt. */
static CK_RV op_init(int kind, CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                     CK_OBJECT_HANDLE key)
{
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!mech)
        return CKR_ARGUMENTS_BAD;
    if (s->op.kind != OP_NONE)
        return CKR_OPERATION_ACTIVE;
    pthread_mutex_lock(&g_mu);
    bool li = G.logged_in;
    p11_obj *o = li ? obj_find(key) : NULL;
    if (o)
        obj_get(o);
    pthread_mutex_unlock(&g_mu);
    if (!li)
        return CKR_USER_NOT_LOGGED_IN;
    rv = op_setup(kind, s, mech, key, o);
    if (rv != CKR_OK && o)
        obj_put(o);
    return rv;
}

/* The checks of op_init after the login; on success s->op holds the
 * reference to o. */
static CK_RV op_setup(int kind, p11_sess *s, const CK_MECHANISM *mech, CK_OBJECT_HANDLE key,
                      p11_obj *o)
{
    CK_RV rv;
    if (!mech_known(mech->mechanism) || mech->mechanism == CKM_SHA256 ||
        mech->mechanism == CKM_SHA384 || mech->mechanism == CKM_SHA512 ||
        mech->mechanism == CKM_EC_KEY_PAIR_GEN || mech->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN ||
        mech->mechanism == CKM_EC_EDWARDS_KEY_PAIR_GEN || mech->mechanism == CKM_AES_KEY_GEN)
        return CKR_MECHANISM_INVALID;
    if (!mech->pParameter && mech->ulParameterLen)
        return CKR_MECHANISM_PARAM_INVALID;
    if (!o)
        return CKR_KEY_HANDLE_INVALID;
    if ((rv = mech_fits(kind, mech->mechanism, o)) != CKR_OK)
        return rv;
    p11_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.mech = mech->mechanism;
    op.key = key;
    op.pss_salt = -1;
    switch (mech->mechanism) {
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS: {
        if (!mech->pParameter || mech->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS))
            return CKR_MECHANISM_PARAM_INVALID;
        const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
        const EVP_MD *hm = mech_md(p->hashAlg), *mm = mgf_md(p->mgf);
        const EVP_MD *own = mech_md(mech->mechanism);
        /* transit's PSS uses MGF1 with the signing hash */
        if (!hm || !mm || EVP_MD_get_type(hm) != EVP_MD_get_type(mm) ||
            (own && EVP_MD_get_type(own) != EVP_MD_get_type(hm)) ||
            p->sLen > o->pub_len)
            return CKR_MECHANISM_PARAM_INVALID;
        /* transit signs PSS with the largest salt (Vault's "auto"): emLen - hLen - 2 */
        size_t em = (o->pub_len * 8 - 1 + 7) / 8;
        if (kind == OP_SIGN && p->sLen + (size_t)EVP_MD_get_size(hm) + 2 != em)
            return CKR_MECHANISM_PARAM_INVALID;
        op.pss_md = hm;
        op.pss_salt = (long)p->sLen;
        break;
    }
    case CKM_AES_GCM: {
        if (!mech->pParameter || mech->ulParameterLen != sizeof(CK_GCM_PARAMS))
            return CKR_MECHANISM_PARAM_INVALID;
        const CK_GCM_PARAMS *p = mech->pParameter;
        /* the server chooses the 96-bit nonce; the tag is 128 bits */
        if ((p->ulTagBits != 128 && p->ulTagBits != 0) || (!p->pAAD && p->ulAADLen) ||
            p->ulAADLen > 65536)
            return CKR_MECHANISM_PARAM_INVALID;
        if (p->ulAADLen) {
            op.aad = malloc(p->ulAADLen);
            if (!op.aad)
                return CKR_HOST_MEMORY;
            memcpy(op.aad, p->pAAD, p->ulAADLen);
            op.aadn = p->ulAADLen;
        }
        break;
    }
    case CKM_RSA_PKCS_OAEP: {
        /* transit's (Vault's) RSA encryption: OAEP, SHA-256, MGF1-SHA-256, no label */
        if (!mech->pParameter || mech->ulParameterLen != sizeof(CK_RSA_PKCS_OAEP_PARAMS))
            return CKR_MECHANISM_PARAM_INVALID;
        const CK_RSA_PKCS_OAEP_PARAMS *p = mech->pParameter;
        if (p->hashAlg != CKM_SHA256 || p->mgf != CKG_MGF1_SHA256 ||
            (p->source != 0 && p->source != CKZ_DATA_SPECIFIED) || p->ulSourceDataLen != 0)
            return CKR_MECHANISM_PARAM_INVALID;
        break;
    }
    case CKM_EDDSA:
        if (mech->pParameter) /* CK_EDDSA_PARAMS: Ed25519ph/ctx are not offered */
            return CKR_MECHANISM_PARAM_INVALID;
        break;
    default:
        if (mech->pParameter || mech->ulParameterLen)
            return CKR_MECHANISM_PARAM_INVALID;
        break;
    }
    op.md = mech_md(mech->mechanism);
    if (op.md) {
        op.mdctx = EVP_MD_CTX_new();
        if (!op.mdctx || !EVP_DigestInit_ex(op.mdctx, op.md, NULL)) {
            op_clear(&op);
            return CKR_HOST_MEMORY;
        }
    }
    op.ko = o;
    s->op = op;
    return CKR_OK;
}

CK_RV C_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(op_init(OP_ENCRYPT, h, m, k));
}
CK_RV C_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(op_init(OP_DECRYPT, h, m, k));
}
CK_RV C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(op_init(OP_SIGN, h, m, k));
}
CK_RV C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(op_init(OP_VERIFY, h, m, k));
}

/* ------------------------------------------------------------------------ */
/* Crypto operations: data                                                   */

/* Appends data to the op's buffer (single-shot mechanisms) or hash. */
static CK_RV op_feed(p11_op *op, const uint8_t *d, size_t n)
{
    if (op->mdctx)
        return EVP_DigestUpdate(op->mdctx, d, n) ? CKR_OK : CKR_FUNCTION_FAILED;
    if (n > MAX_DATA - op->len)
        return CKR_DATA_LEN_RANGE;
    if (op->len + n > op->cap) {
        size_t nc = op->cap ? op->cap : 256;
        while (nc < op->len + n)
            nc *= 2;
        uint8_t *nb = malloc(nc);
        if (!nb)
            return CKR_HOST_MEMORY;
        if (op->len)
            memcpy(nb, op->buf, op->len);
        if (op->buf)
            mt_wipe(op->buf, op->cap);
        free(op->buf);
        op->buf = nb;
        op->cap = nc;
    }
    if (n)
        memcpy(op->buf + op->len, d, n);
    op->len += n;
    return CKR_OK;
}

/* The input of the op as a single buffer: the digest for hash-then
 * mechanisms (finalising the hash once), else the accumulated data. */
static CK_RV op_input(p11_op *op, const uint8_t **in, size_t *len)
{
    if (op->mdctx) {
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned dl = 0;
        if (!EVP_DigestFinal_ex(op->mdctx, d, &dl))
            return CKR_FUNCTION_FAILED;
        EVP_MD_CTX_free(op->mdctx);
        op->mdctx = NULL;
        CK_RV rv = op_feed(op, d, dl);
        if (rv != CKR_OK)
            return rv;
    }
    *in = op->buf ? op->buf : (const uint8_t *)"";
    *len = op->len;
    return CKR_OK;
}

/* The object's public key, a new reference (EVP_PKEY_free). */
static EVP_PKEY *obj_pkey(const p11_obj *o)
{
    return o->pkey && EVP_PKEY_up_ref(o->pkey) ? o->pkey : NULL;
}

/* DER ECDSA signature -> r || s of 2 * half bytes. */
static CK_RV ecdsa_der_to_raw(const uint8_t *der, size_t len, uint8_t *raw, size_t half)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig || p != der + len) {
        ECDSA_SIG_free(sig);
        fprintf(stderr, "libmesatee-pkcs11: server sent a malformed ECDSA signature\n");
        return CKR_DEVICE_ERROR;
    }
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, (int)half) == (int)half &&
             BN_bn2binpad(s, raw + half, (int)half) == (int)half;
    ECDSA_SIG_free(sig);
    return ok ? CKR_OK : CKR_DEVICE_ERROR;
}

/* Signs the op's input with the server; *res gets the PKCS#11 signature. */
static CK_RV do_sign(mesatee_client *c, uint64_t ep, p11_op *op, const p11_obj *o, uint8_t **res,
                     size_t *res_len)
{
    const uint8_t *in;
    size_t len;
    CK_RV rv = op_input(op, &in, &len);
    if (rv != CKR_OK)
        return rv;
    const char *hash = NULL, *sigalg = NULL;
    const uint8_t *msg = in;
    size_t mlen = len;
    switch (op->mech) {
    case CKM_ECDSA:
    case CKM_ECDSA_SHA256:
    case CKM_ECDSA_SHA384:
        if (!(hash = hash_name_by_len(len)))
            return CKR_DATA_LEN_RANGE;
        break;
    case CKM_EDDSA: break;
    case CKM_RSA_PKCS:
        if (!(msg = digest_info_hash(in, len, &mlen)) || !(hash = hash_name_by_len(mlen)))
            return CKR_DATA_INVALID; /* transit signs DigestInfo of a SHA-2 hash only */
        sigalg = "pkcs1v15";
        break;
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS:
        hash = hash_name_by_len(len);
        sigalg = "pkcs1v15";
        break;
    default: /* PSS */
        if (len != (size_t)EVP_MD_get_size(op->pss_md))
            return CKR_DATA_LEN_RANGE;
        hash = hash_name_by_len(len);
        sigalg = "pss";
        break;
    }
    uint8_t *sig = NULL;
    size_t sl = 0;
    rv = map_status_c(c, ep,
                      p11_srv_sign(c, o->name, o->version, hash, sigalg, msg, mlen, &sig, &sl),
                      "sign");
    if (rv != CKR_OK)
        return rv;
    size_t want = obj_sig_len(o);
    uint8_t *out = malloc(want);
    if (!out) {
        free(sig);
        return CKR_HOST_MEMORY;
    }
    if (kt_ec(o->type)) {
        rv = ecdsa_der_to_raw(sig, sl, out, want / 2);
    } else if (sl != want) {
        fprintf(stderr, "libmesatee-pkcs11: server sent a signature of the wrong size\n");
        rv = CKR_DEVICE_ERROR;
    } else {
        memcpy(out, sig, sl);
    }
    free(sig);
    if (rv != CKR_OK) {
        free(out);
        return rv;
    }
    *res = out;
    *res_len = want;
    return CKR_OK;
}

/* Verifies sig over the op's input with the object's public key. */
static CK_RV do_verify(p11_op *op, const p11_obj *o, const uint8_t *sig, size_t sig_len)
{
    const uint8_t *in;
    size_t len;
    CK_RV rv = op_input(op, &in, &len);
    if (rv != CKR_OK)
        return rv;
    if (sig_len != obj_sig_len(o))
        return CKR_SIGNATURE_LEN_RANGE;
    EVP_PKEY *pk = obj_pkey(o);
    if (!pk)
        return CKR_DEVICE_ERROR;
    int ok = 0;
    if (o->type == P11_KT_ED25519) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(c, sig, sig_len, in, len) == 1;
        EVP_MD_CTX_free(c);
        EVP_PKEY_free(pk);
        return ok ? CKR_OK : CKR_SIGNATURE_INVALID;
    }
    uint8_t *der = NULL;
    size_t der_len = sig_len;
    const uint8_t *vs = sig;
    if (kt_ec(o->type)) {
        if (!md_by_len(len)) {
            EVP_PKEY_free(pk);
            return CKR_DATA_LEN_RANGE;
        }
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)(sig_len / 2), NULL);
        BIGNUM *s = BN_bin2bn(sig + sig_len / 2, (int)(sig_len / 2), NULL);
        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            EVP_PKEY_free(pk);
            return CKR_HOST_MEMORY;
        }
        int n = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (n <= 0) {
            EVP_PKEY_free(pk);
            return CKR_HOST_MEMORY;
        }
        vs = der;
        der_len = (size_t)n;
    }
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
    ok = pc && EVP_PKEY_verify_init(pc) == 1;
    if (ok && kt_rsa(o->type)) {
        if (op->pss_md) {
            ok = len == (size_t)EVP_MD_get_size(op->pss_md) &&
                 EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_signature_md(pc, op->pss_md) == 1 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(pc, op->pss_md) == 1 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, (int)op->pss_salt) == 1;
        } else {
            ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
            if (ok && op->mech != CKM_RSA_PKCS) /* hashed here: the digest is the input */
                ok = EVP_PKEY_CTX_set_signature_md(pc, op->md) == 1;
        }
    }
    ok = ok && EVP_PKEY_verify(pc, vs, der_len, in, len) == 1;
    EVP_PKEY_CTX_free(pc);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    return ok ? CKR_OK : CKR_SIGNATURE_INVALID;
}

/* RSA-OAEP (SHA-256, MGF1-SHA-256, no label) under the public key, here:
 * a public-key operation needs no secret, so it runs in the module without
 * a round trip, and the result is exactly what transit encrypt would give
 * (docs/keystore.md, "PKCS#11 module"). */
static CK_RV oaep_encrypt(const p11_obj *o, const uint8_t *in, size_t len, uint8_t **res,
                          size_t *res_len)
{
    if (o->pub_len < 66 || len > o->pub_len - 66)
        return CKR_DATA_LEN_RANGE;
    EVP_PKEY *pk = obj_pkey(o);
    uint8_t *buf = pk ? malloc(o->pub_len) : NULL;
    EVP_PKEY_CTX *pc = buf ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
    size_t ol = o->pub_len;
    bool ok = pc && EVP_PKEY_encrypt_init(pc) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) == 1 &&
              EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) == 1 &&
              EVP_PKEY_encrypt(pc, buf, &ol, in, len) == 1 && ol == o->pub_len;
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    if (!ok) {
        free(buf);
        return pk ? CKR_FUNCTION_FAILED : CKR_DEVICE_ERROR;
    }
    *res = buf;
    *res_len = ol;
    return CKR_OK;
}

/* Encrypts the op's input (AES-GCM) on the server. */
static CK_RV do_encrypt(mesatee_client *c, uint64_t ep, p11_op *op, const p11_obj *o,
                        uint8_t **res, size_t *res_len)
{
    const uint8_t *in;
    size_t len;
    CK_RV rv = op_input(op, &in, &len);
    if (rv != CKR_OK)
        return rv;
    if (op->mech == CKM_AES_GCM) {
        uint8_t *ct = NULL;
        size_t cl = 0;
        rv = map_status_c(c, ep,
                          p11_srv_encrypt(c, o->name, o->version, in, len, op->aad, op->aadn,
                                          &ct, &cl),
                          "encrypt");
        if (rv == CKR_OK && cl != len + 28) {
            fprintf(stderr, "libmesatee-pkcs11: server sent a ciphertext of the wrong size\n");
            free(ct);
            return CKR_DEVICE_ERROR;
        }
        if (rv == CKR_OK) {
            *res = ct;
            *res_len = cl;
        }
        return rv;
    }
    if (op->mech == CKM_RSA_PKCS_OAEP)
        return oaep_encrypt(o, in, len, res, res_len);
    return CKR_MECHANISM_INVALID;
}

static CK_RV do_decrypt(mesatee_client *c, uint64_t ep, p11_op *op, const p11_obj *o,
                        uint8_t **res, size_t *res_len)
{
    const uint8_t *in;
    size_t len;
    CK_RV rv = op_input(op, &in, &len);
    if (rv != CKR_OK)
        return rv;
    if (op->mech == CKM_AES_GCM && len < 28)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    if (op->mech == CKM_RSA_PKCS_OAEP && len != o->pub_len) /* one modulus, raw */
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    int rc = p11_srv_decrypt(c, o->name, o->version, in, len, op->aad, op->aadn, res, res_len);
    if (rc == MESATEE_EINVAL || rc == MESATEE_ECRYPTO) { /* tampered or not ours */
        report(c, "decrypt");
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    return map_status_c(c, ep, rc, "decrypt");
}

/* true if the operation's key object is still shown (logged in, not gone). */
static bool obj_usable(const p11_obj *o)
{
    pthread_mutex_lock(&g_mu);
    bool r = o && G.logged_in && o->live;
    pthread_mutex_unlock(&g_mu);
    return r;
}

/* Upper bound of the output of a single-part op before it runs. */
static size_t op_out_bound(const p11_op *op, const p11_obj *o, size_t in_len)
{
    switch (op->kind) {
    case OP_SIGN: return obj_sig_len(o);
    case OP_ENCRYPT: return op->mech == CKM_RSA_PKCS_OAEP ? o->pub_len : in_len + 28;
    case OP_DECRYPT:
        if (op->mech == CKM_RSA_PKCS_OAEP)
            return o->pub_len > 66 ? o->pub_len - 66 : 0;
        return in_len >= 28 ? in_len - 28 : 0;
    default: return 0;
    }
}

/* Runs the op into out/out_len with the PKCS#11 size convention: out NULL
 * asks for the size (the op stays active); a short buffer gives
 * CKR_BUFFER_TOO_SMALL with the exact size (the result is kept for the next
 * call); otherwise the op ends. */
static CK_RV op_finish(p11_sess *s, CK_BYTE *out, CK_ULONG *out_len, size_t in_len)
{
    p11_op *op = &s->op;
    p11_obj *o = op->ko;
    if (!obj_usable(o)) {
        op_clear(op);
        return CKR_KEY_HANDLE_INVALID;
    }
    if (!op->have_res && !out) {
        *out_len = op_out_bound(op, o, in_len);
        return CKR_OK;
    }
    CK_RV rv = CKR_OK;
    if (!op->have_res) {
        mesatee_client *c = NULL;
        uint64_t ep = 0;
        rv = sess_client(s, &c, &ep);
        if (rv == CKR_OK) {
            switch (op->kind) {
            case OP_SIGN: rv = do_sign(c, ep, op, o, &op->res, &op->res_len); break;
            case OP_ENCRYPT: rv = do_encrypt(c, ep, op, o, &op->res, &op->res_len); break;
            default: rv = do_decrypt(c, ep, op, o, &op->res, &op->res_len); break;
            }
        }
        if (rv != CKR_OK) {
            op_clear(op);
            return rv;
        }
        op->have_res = true;
    }
    if (!out) {
        *out_len = op->res_len;
        return CKR_OK;
    }
    if (*out_len < op->res_len) {
        *out_len = op->res_len;
        return CKR_BUFFER_TOO_SMALL;
    }
    if (op->res_len)
        memcpy(out, op->res, op->res_len);
    *out_len = op->res_len;
    op_clear(op);
    return CKR_OK;
}

/* Checks the session has op kind active. */
static CK_RV op_get(CK_SESSION_HANDLE h, int kind, p11_sess **s)
{
    CK_RV rv = sess_get(h, s);
    if (rv != CKR_OK)
        return rv;
    return (*s)->op.kind == kind ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
}

/* Single-part sign/encrypt/decrypt. */
static CK_RV op_single(int kind, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len,
                       CK_BYTE *out, CK_ULONG *out_len)
{
    p11_sess *s;
    CK_RV rv = op_get(h, kind, &s);
    if (rv != CKR_OK)
        return rv;
    if ((!in && in_len) || !out_len) {
        op_clear(&s->op);
        return CKR_ARGUMENTS_BAD;
    }
    if (s->op.multi) {
        op_clear(&s->op);
        return CKR_OPERATION_ACTIVE;
    }
    if (!s->op.have_res && out) {
        if ((rv = op_feed(&s->op, in ? in : (const CK_BYTE *)"", in_len)) != CKR_OK) {
            op_clear(&s->op);
            return rv;
        }
    }
    return op_finish(s, out, out_len, in_len);
}

/* Multi-part update. */
static CK_RV op_update(int kind, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len)
{
    p11_sess *s;
    CK_RV rv = op_get(h, kind, &s);
    if (rv != CKR_OK)
        return rv;
    if (!in && in_len) {
        op_clear(&s->op);
        return CKR_ARGUMENTS_BAD;
    }
    if (s->op.have_res) {
        op_clear(&s->op);
        return CKR_OPERATION_ACTIVE;
    }
    s->op.multi = true;
    rv = op_feed(&s->op, in ? in : (const CK_BYTE *)"", in_len);
    if (rv != CKR_OK)
        op_clear(&s->op);
    return rv;
}

static CK_RV op_final(int kind, CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len)
{
    p11_sess *s;
    CK_RV rv = op_get(h, kind, &s);
    if (rv != CKR_OK)
        return rv;
    if (!out_len) {
        op_clear(&s->op);
        return CKR_ARGUMENTS_BAD;
    }
    return op_finish(s, out, out_len, s->op.len);
}

/* An update of an op whose output all comes at Final: checks out_len (a
 * missing one ends the op), feeds the input and reports no bytes. */
static CK_RV op_update_noout(int kind, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len,
                             CK_ULONG *out_len)
{
    if (!out_len) {
        p11_sess *s;
        CK_RV rv = op_get(h, kind, &s);
        if (rv == CKR_OK)
            op_clear(&s->op);
        return rv != CKR_OK ? rv : CKR_ARGUMENTS_BAD;
    }
    CK_RV rv = op_update(kind, h, in, in_len);
    if (rv == CKR_OK)
        *out_len = 0;
    return rv;
}

CK_RV C_Encrypt(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(op_single(OP_ENCRYPT, h, in, in_len, out, out_len));
}

/* Multi-part encryption gives all output at C_EncryptFinal (transit works on
 * whole messages): updates return no bytes. */
CK_RV C_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                      CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(op_update_noout(OP_ENCRYPT, h, in, in_len, out_len));
}

CK_RV C_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(op_final(OP_ENCRYPT, h, out, out_len));
}

CK_RV C_Decrypt(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(op_single(OP_DECRYPT, h, in, in_len, out, out_len));
}

CK_RV C_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                      CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(op_update_noout(OP_DECRYPT, h, in, in_len, out_len));
}

CK_RV C_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(op_final(OP_DECRYPT, h, out, out_len));
}

CK_RV C_Sign(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *sig, CK_ULONG *sig_len)
{
    LOCK();
    UNLOCK_RETURN(op_single(OP_SIGN, h, in, in_len, sig, sig_len));
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len)
{
    LOCK();
    UNLOCK_RETURN(op_update(OP_SIGN, h, in, in_len));
}

CK_RV C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG *sig_len)
{
    LOCK();
    UNLOCK_RETURN(op_final(OP_SIGN, h, sig, sig_len));
}

/* Verification ends the op whatever the outcome. */
static CK_RV verify_end(p11_sess *s, const CK_BYTE *sig, CK_ULONG sig_len)
{
    p11_obj *o = s->op.ko;
    CK_RV rv = !sig              ? CKR_ARGUMENTS_BAD
               : !obj_usable(o) ? CKR_KEY_HANDLE_INVALID
                                 : do_verify(&s->op, o, sig, sig_len);
    op_clear(&s->op);
    return rv;
}

CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *sig, CK_ULONG sig_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = op_get(h, OP_VERIFY, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if ((!in && in_len) || s->op.multi) {
        op_clear(&s->op);
        UNLOCK_RETURN(s->op.multi ? CKR_OPERATION_ACTIVE : CKR_ARGUMENTS_BAD);
    }
    if ((rv = op_feed(&s->op, in ? in : (const CK_BYTE *)"", in_len)) != CKR_OK) {
        op_clear(&s->op);
        UNLOCK_RETURN(rv);
    }
    UNLOCK_RETURN(verify_end(s, sig, sig_len));
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len)
{
    LOCK();
    UNLOCK_RETURN(op_update(OP_VERIFY, h, in, in_len));
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG sig_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = op_get(h, OP_VERIFY, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    UNLOCK_RETURN(verify_end(s, sig, sig_len));
}

/* ------------------------------------------------------------------------ */
/* Digests (local)                                                           */

CK_RV C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM *m)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!m)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    if (s->op.kind != OP_NONE)
        UNLOCK_RETURN(CKR_OPERATION_ACTIVE);
    if (m->mechanism != CKM_SHA256 && m->mechanism != CKM_SHA384 && m->mechanism != CKM_SHA512)
        UNLOCK_RETURN(CKR_MECHANISM_INVALID);
    if (m->pParameter || m->ulParameterLen)
        UNLOCK_RETURN(CKR_MECHANISM_PARAM_INVALID);
    s->op.md = mech_md(m->mechanism);
    s->op.mdctx = EVP_MD_CTX_new();
    if (!s->op.mdctx || !EVP_DigestInit_ex(s->op.mdctx, s->op.md, NULL)) {
        op_clear(&s->op);
        UNLOCK_RETURN(CKR_HOST_MEMORY);
    }
    s->op.kind = OP_DIGEST;
    s->op.mech = m->mechanism;
    UNLOCK_RETURN(CKR_OK);
}

static CK_RV digest_out(p11_sess *s, CK_BYTE *out, CK_ULONG *out_len)
{
    size_t dl = (size_t)EVP_MD_get_size(s->op.md);
    if (!out) {
        *out_len = dl;
        return CKR_OK;
    }
    if (*out_len < dl) {
        *out_len = dl;
        return CKR_BUFFER_TOO_SMALL;
    }
    unsigned n = 0;
    CK_RV rv = EVP_DigestFinal_ex(s->op.mdctx, out, &n) ? CKR_OK : CKR_FUNCTION_FAILED;
    *out_len = n;
    op_clear(&s->op);
    return rv;
}

CK_RV C_Digest(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out, CK_ULONG *out_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = op_get(h, OP_DIGEST, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if ((!in && in_len) || !out_len || s->op.multi) {
        rv = s->op.multi ? CKR_OPERATION_ACTIVE : CKR_ARGUMENTS_BAD;
        op_clear(&s->op);
        UNLOCK_RETURN(rv);
    }
    if (out && *out_len >= (CK_ULONG)EVP_MD_get_size(s->op.md) && in_len &&
        !EVP_DigestUpdate(s->op.mdctx, in, in_len)) {
        op_clear(&s->op);
        UNLOCK_RETURN(CKR_FUNCTION_FAILED);
    }
    UNLOCK_RETURN(digest_out(s, out, out_len));
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = op_get(h, OP_DIGEST, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!in && in_len) {
        op_clear(&s->op);
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    }
    s->op.multi = true;
    if (in_len && !EVP_DigestUpdate(s->op.mdctx, in, in_len)) {
        op_clear(&s->op);
        UNLOCK_RETURN(CKR_FUNCTION_FAILED);
    }
    UNLOCK_RETURN(CKR_OK);
}

CK_RV C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = op_get(h, OP_DIGEST, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    rv = obj_exists(k) ? CKR_KEY_INDIGESTIBLE : CKR_KEY_HANDLE_INVALID; /* keys stay on the server */
    op_clear(&s->op);
    UNLOCK_RETURN(rv);
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = op_get(h, OP_DIGEST, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!out_len) {
        op_clear(&s->op);
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    }
    UNLOCK_RETURN(digest_out(s, out, out_len));
}

/* ------------------------------------------------------------------------ */
/* Unsupported combined / recover operations                                 */

static CK_RV sess_unsupported(CK_SESSION_HANDLE h)
{
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_SignRecover(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                    CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_VerifyRecover(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                      CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                            CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                            CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                          CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                            CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE k,
                CK_BYTE *out, CK_ULONG *out_len)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE uk, CK_BYTE *in,
                  CK_ULONG in_len, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
CK_RV C_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE base, CK_ATTRIBUTE *tmpl,
                  CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}

/* ------------------------------------------------------------------------ */
/* Key generation                                                            */

/* Finds attribute t in tmpl; NULL if absent. */
static const CK_ATTRIBUTE *tmpl_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE t)
{
    for (CK_ULONG i = 0; tmpl && i < n; i++)
        if (tmpl[i].type == t)
            return &tmpl[i];
    return NULL;
}

/* A CK_ULONG attribute's value (any alignment); (CK_ULONG)-1 if malformed. */
static CK_ULONG tmpl_ulong(const CK_ATTRIBUTE *a)
{
    CK_ULONG v;
    if (!a->pValue || a->ulValueLen != sizeof v)
        return (CK_ULONG)-1;
    memcpy(&v, a->pValue, sizeof v);
    return v;
}

/* A CK_BBOOL attribute: -1 absent, 0/1, -2 malformed. */
static int tmpl_bool(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE t)
{
    const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, t);
    if (!a)
        return -1;
    if (!a->pValue || a->ulValueLen != sizeof(CK_BBOOL))
        return -2;
    return *(const CK_BBOOL *)a->pValue ? 1 : 0;
}

/* Checks a template: readable attributes, no request the server cannot
 * honour (session objects, extractable or non-sensitive keys). */
static CK_RV tmpl_check(const CK_ATTRIBUTE *tmpl, CK_ULONG n, bool private_part)
{
    if (!tmpl && n)
        return CKR_ARGUMENTS_BAD;
    for (CK_ULONG i = 0; i < n; i++)
        if (!tmpl[i].pValue && tmpl[i].ulValueLen)
            return CKR_ATTRIBUTE_VALUE_INVALID;
    int tok = tmpl_bool(tmpl, n, CKA_TOKEN), ext = tmpl_bool(tmpl, n, CKA_EXTRACTABLE),
        sens = tmpl_bool(tmpl, n, CKA_SENSITIVE);
    if (tok == -2 || ext == -2 || sens == -2)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (tok == 0) /* every key lives on the server */
        return CKR_TEMPLATE_INCONSISTENT;
    if (private_part && (ext == 1 || sens == 0))
        return CKR_TEMPLATE_INCONSISTENT;
    return CKR_OK;
}

/* The label of either template (the key name). */
static CK_RV tmpl_label(const CK_ATTRIBUTE *t1, CK_ULONG n1, const CK_ATTRIBUTE *t2, CK_ULONG n2,
                        char name[P11_RESP_MAX_NAME + 1])
{
    const CK_ATTRIBUTE *a = tmpl_find(t1, n1, CKA_LABEL), *b = tmpl_find(t2, n2, CKA_LABEL);
    if (!a)
        a = b;
    if (!a)
        return CKR_TEMPLATE_INCOMPLETE;
    if (b && (b->ulValueLen != a->ulValueLen ||
              (a->ulValueLen && memcmp(a->pValue, b->pValue, a->ulValueLen))))
        return CKR_TEMPLATE_INCONSISTENT;
    if (!a->pValue || !p11_srv_name_ok(a->pValue, a->ulValueLen))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    memcpy(name, a->pValue, a->ulValueLen);
    name[a->ulValueLen] = '\0';
    return CKR_OK;
}

/* Creates the key on the server (or imports material, when not NULL) and
 * returns the handles of its newest version's objects of classes c1 (and c2
 * if nonzero). */
static CK_RV key_on_server(p11_sess *s, const char *name, p11_ktype type, const uint8_t *material,
                           size_t mlen, CK_OBJECT_CLASS c1, CK_OBJECT_HANDLE *h1,
                           CK_OBJECT_CLASS c2, CK_OBJECT_HANDLE *h2)
{
    mesatee_client *c = NULL;
    uint64_t ep = 0;
    CK_RV rv0 = sess_client(s, &c, &ep);
    if (rv0 != CKR_OK)
        return rv0;
    /* transit's create of an existing name is a no-op success (as Vault's):
     * look first, so that a new key pair never turns out to be an old key */
    p11_keyinfo old;
    int rc = p11_srv_read(c, name, &old);
    if (rc == MESATEE_OK) {
        p11_keyinfo_free(&old);
        fprintf(stderr, "libmesatee-pkcs11: a key named %s exists already\n", name);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (rc != MESATEE_ENOTFOUND)
        return map_status_c(c, ep, rc, "read key");
    rc = material ? p11_srv_import(c, name, type, material, mlen) : p11_srv_create(c, name, type);
    if (rc == MESATEE_ECONFLICT || rc == MESATEE_EINVAL) {
        report(c, material ? "import key" : "create key");
        return CKR_ATTRIBUTE_VALUE_INVALID; /* exists, or a name the server refuses */
    }
    CK_RV rv = map_status_c(c, ep, rc, "create key");
    if (rv != CKR_OK)
        return rv;
    p11_keyinfo k;
    if ((rv = map_status_c(c, ep, p11_srv_read(c, name, &k), "read key")) != CKR_OK)
        return rv;
    if (k.type != type || k.nver == 0) {
        p11_keyinfo_free(&k);
        fprintf(stderr, "libmesatee-pkcs11: the server made a key of another type\n");
        return CKR_DEVICE_ERROR;
    }
    const p11_key_version *v = &k.ver[k.nver - 1];
    pthread_mutex_lock(&g_mu);
    if (!G.logged_in || G.epoch != ep) {
        rv = CKR_USER_NOT_LOGGED_IN; /* logged out meanwhile */
    } else {
        rv = obj_upsert(&k, v, c1, h1);
        if (rv == CKR_OK && c2)
            rv = obj_upsert(&k, v, c2, h2);
    }
    pthread_mutex_unlock(&g_mu);
    p11_keyinfo_free(&k);
    return rv;
}

/* After the mechanism's own check, what both key generations need: no
 * mechanism parameter, a login and a read/write session. */
static CK_RV gen_allowed(const p11_sess *s, const CK_MECHANISM *m)
{
    if (m->pParameter || m->ulParameterLen)
        return CKR_MECHANISM_PARAM_INVALID;
    if (!is_logged_in())
        return CKR_USER_NOT_LOGGED_IN;
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    return CKR_OK;
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!m || !out)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    if (m->mechanism != CKM_AES_KEY_GEN)
        UNLOCK_RETURN(CKR_MECHANISM_INVALID);
    if ((rv = gen_allowed(s, m)) != CKR_OK)
        UNLOCK_RETURN(rv);
    if ((rv = tmpl_check(tmpl, n, true)) != CKR_OK)
        UNLOCK_RETURN(rv);
    const CK_ATTRIBUTE *vl = tmpl_find(tmpl, n, CKA_VALUE_LEN);
    if (!vl || tmpl_ulong(vl) != 32)
        UNLOCK_RETURN(vl ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_TEMPLATE_INCOMPLETE);
    const CK_ATTRIBUTE *kt = tmpl_find(tmpl, n, CKA_KEY_TYPE);
    if (kt && tmpl_ulong(kt) != CKK_AES)
        UNLOCK_RETURN(CKR_TEMPLATE_INCONSISTENT);
    char name[P11_RESP_MAX_NAME + 1];
    if ((rv = tmpl_label(tmpl, n, NULL, 0, name)) != CKR_OK)
        UNLOCK_RETURN(rv);
    UNLOCK_RETURN(
        key_on_server(s, name, P11_KT_AES256_GCM96, NULL, 0, CKO_SECRET_KEY, out, 0, NULL));
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_ATTRIBUTE *pub_t, CK_ULONG pub_n,
                        CK_ATTRIBUTE *priv_t, CK_ULONG priv_n, CK_OBJECT_HANDLE *pub_out,
                        CK_OBJECT_HANDLE *priv_out)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!m || !pub_out || !priv_out)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    if (m->mechanism != CKM_EC_KEY_PAIR_GEN && m->mechanism != CKM_RSA_PKCS_KEY_PAIR_GEN &&
        m->mechanism != CKM_EC_EDWARDS_KEY_PAIR_GEN)
        UNLOCK_RETURN(CKR_MECHANISM_INVALID);
    if ((rv = gen_allowed(s, m)) != CKR_OK)
        UNLOCK_RETURN(rv);
    if ((rv = tmpl_check(pub_t, pub_n, false)) != CKR_OK ||
        (rv = tmpl_check(priv_t, priv_n, true)) != CKR_OK)
        UNLOCK_RETURN(rv);
    p11_ktype type = P11_KT_OTHER;
    if (m->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN) {
        const CK_ATTRIBUTE *bits = tmpl_find(pub_t, pub_n, CKA_MODULUS_BITS);
        if (!bits)
            UNLOCK_RETURN(CKR_TEMPLATE_INCOMPLETE);
        CK_ULONG b = tmpl_ulong(bits);
        type = b == 2048 ? P11_KT_RSA2048 : b == 3072 ? P11_KT_RSA3072
                                        : b == 4096 ? P11_KT_RSA4096
                                                    : P11_KT_OTHER;
        const CK_ATTRIBUTE *e = tmpl_find(pub_t, pub_n, CKA_PUBLIC_EXPONENT);
        if (e) { /* transit keys use 65537 */
            size_t i = 0;
            const uint8_t *ev = e->pValue;
            while (i < e->ulValueLen && ev[i] == 0)
                i++;
            if (e->ulValueLen - i != 3 || ev[i] != 1 || ev[i + 1] != 0 || ev[i + 2] != 1)
                UNLOCK_RETURN(CKR_TEMPLATE_INCONSISTENT);
        }
    } else {
        const CK_ATTRIBUTE *ep = tmpl_find(pub_t, pub_n, CKA_EC_PARAMS);
        if (!ep && m->mechanism == CKM_EC_KEY_PAIR_GEN)
            UNLOCK_RETURN(CKR_TEMPLATE_INCOMPLETE);
        if (m->mechanism == CKM_EC_EDWARDS_KEY_PAIR_GEN) {
            static const char ed_name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                           's', '2', '5', '5', '1', '9'};
            if (!ep || (ep->ulValueLen == sizeof oid_ed25519 &&
                        !memcmp(ep->pValue, oid_ed25519, sizeof oid_ed25519)) ||
                (ep->ulValueLen == sizeof ed_name && !memcmp(ep->pValue, ed_name, sizeof ed_name)))
                type = P11_KT_ED25519;
        } else if (ep->ulValueLen == sizeof oid_p256 &&
                   !memcmp(ep->pValue, oid_p256, sizeof oid_p256)) {
            type = P11_KT_ECDSA_P256;
        } else if (ep->ulValueLen == sizeof oid_p384 &&
                   !memcmp(ep->pValue, oid_p384, sizeof oid_p384)) {
            type = P11_KT_ECDSA_P384;
        }
    }
    if (type == P11_KT_OTHER)
        UNLOCK_RETURN(CKR_ATTRIBUTE_VALUE_INVALID); /* a curve or size transit does not offer */
    char name[P11_RESP_MAX_NAME + 1];
    if ((rv = tmpl_label(pub_t, pub_n, priv_t, priv_n, name)) != CKR_OK)
        UNLOCK_RETURN(rv);
    UNLOCK_RETURN(
        key_on_server(s, name, type, NULL, 0, CKO_PUBLIC_KEY, pub_out, CKO_PRIVATE_KEY, priv_out));
}

/* ------------------------------------------------------------------------ */
/* Random, legacy parallel functions                                         */

CK_RV C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE *seed, CK_ULONG len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv == CKR_OK && !seed && len)
        rv = CKR_ARGUMENTS_BAD;
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_RANDOM_SEED_NOT_SUPPORTED);
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG len)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (!out && len)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    if (len == 0)
        UNLOCK_RETURN(CKR_OK);
    mesatee_client *c = NULL;
    uint64_t ep = 0;
    /* transit's random needs an authenticated caller */
    if ((rv = sess_client(s, &c, &ep)) != CKR_OK)
        UNLOCK_RETURN(rv);
    if (len > MAX_DATA)
        UNLOCK_RETURN(CKR_DATA_LEN_RANGE);
    UNLOCK_RETURN(map_status_c(c, ep, p11_srv_random(c, out, len), "random"));
}

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE h)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE h)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    UNLOCK_RETURN(rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved_arg)
{
    LOCK();
    if (!module_ready())
        UNLOCK_RETURN(CKR_CRYPTOKI_NOT_INITIALIZED);
    if (!slot || reserved_arg)
        UNLOCK_RETURN(CKR_ARGUMENTS_BAD);
    UNLOCK_RETURN(CKR_FUNCTION_NOT_SUPPORTED);
}

/* ------------------------------------------------------------------------ */
/* PKCS#11 3.0 functions                                                     */

static CK_RV session_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
    LOCK();
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        UNLOCK_RETURN(rv);
    if (flags & (CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY | CKF_DIGEST |
                 CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MESSAGE_SIGN |
                 CKF_MESSAGE_VERIFY)) {
        int k = s->op.kind;
        if ((k == OP_MSG_SIGN && (flags & CKF_MESSAGE_SIGN)) ||
            (k == OP_MSG_VERIFY && (flags & CKF_MESSAGE_VERIFY)) ||
            (k == OP_MSG_ENCRYPT && (flags & CKF_MESSAGE_ENCRYPT)) ||
            (k == OP_MSG_DECRYPT && (flags & CKF_MESSAGE_DECRYPT)) ||
            (k == OP_ENCRYPT && (flags & CKF_ENCRYPT)) ||
            (k == OP_DECRYPT && (flags & CKF_DECRYPT)) || (k == OP_SIGN && (flags & CKF_SIGN)) ||
            (k == OP_VERIFY && (flags & CKF_VERIFY)) || (k == OP_DIGEST && (flags & CKF_DIGEST)))
            op_clear(&s->op);
    }
    if ((flags & CKF_FIND_OBJECTS) && s->finding)
        find_clear(s);
    UNLOCK_RETURN(CKR_OK);
}

/* The message-based API for CKM_AES_GCM on aes256-gcm96 keys (PKCS#11 3.0
 * base 5.13-5.14): every C_EncryptMessage is one transit encrypt. The
 * KeyStore chooses the 96-bit nonce, so the per-message
 * CK_GCM_MESSAGE_PARAMS must ask for a generated IV (ivGenerator
 * CKG_GENERATE or CKG_GENERATE_RANDOM, no fixed bits, ulIvLen 12,
 * ulTagBits 128): the nonce transit chose is written back to pIv and the
 * tag to pTag; the ciphertext is as long as the plaintext. A caller's own
 * IV (CKG_NO_GENERATE) or a counter IV cannot be honoured:
 * CKR_MECHANISM_PARAM_INVALID. C_DecryptMessage takes pIv and pTag as given.
 * The multi-part forms (C_*MessageBegin/Next) are not offered (transit
 * works on whole messages), nor are the message-based sign/verify
 * functions: CKR_FUNCTION_NOT_SUPPORTED. */
static CK_RV msg_init_kind(int kind, CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    p11_sess *s;
    CK_RV rv = sess_get(h, &s);
    if (rv != CKR_OK)
        return rv;
    if (!m)
        return CKR_ARGUMENTS_BAD;
    if (s->op.kind != OP_NONE)
        return CKR_OPERATION_ACTIVE;
    if (m->mechanism != CKM_AES_GCM)
        return CKR_MECHANISM_INVALID;
    if (m->pParameter || m->ulParameterLen) /* the parameters come with each message */
        return CKR_MECHANISM_PARAM_INVALID;
    pthread_mutex_lock(&g_mu);
    bool li = G.logged_in;
    p11_obj *o = li ? obj_find(k) : NULL;
    if (o)
        obj_get(o);
    pthread_mutex_unlock(&g_mu);
    if (!li)
        return CKR_USER_NOT_LOGGED_IN;
    if (!o)
        return CKR_KEY_HANDLE_INVALID;
    if (o->type != P11_KT_AES256_GCM96) {
        obj_put(o);
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    memset(&s->op, 0, sizeof s->op);
    s->op.kind = kind;
    s->op.mech = CKM_AES_GCM;
    s->op.key = k;
    s->op.ko = o;
    return CKR_OK;
}

static CK_RV msg_encrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(msg_init_kind(OP_MSG_ENCRYPT, h, m, k));
}
static CK_RV msg_decrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(msg_init_kind(OP_MSG_DECRYPT, h, m, k));
}

/* Checks a CK_GCM_MESSAGE_PARAMS for the operation kind. */
static CK_RV gcm_msg_params(int kind, const void *p, CK_ULONG pl, p11_gcm_message_params *out)
{
    if (!p || pl != sizeof *out)
        return CKR_MECHANISM_PARAM_INVALID;
    memcpy(out, p, sizeof *out);
    if (!out->pIv || out->ulIvLen != 12 || !out->pTag || out->ulTagBits != 128)
        return CKR_MECHANISM_PARAM_INVALID;
    if (kind == OP_MSG_ENCRYPT &&
        ((out->ivGenerator != CKG_GENERATE && out->ivGenerator != CKG_GENERATE_RANDOM) ||
         out->ulIvFixedBits != 0))
        return CKR_MECHANISM_PARAM_INVALID; /* the KeyStore picks a random nonce */
    return CKR_OK;
}

static CK_RV msg_crypt_kind(int kind, CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *aad,
                            CK_ULONG aad_len, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                            CK_ULONG *out_len)
{
    p11_sess *s;
    CK_RV rv = op_get(h, kind, &s);
    if (rv != CKR_OK)
        return rv;
    /* an error in one message leaves the message operation active */
    if ((!aad && aad_len) || (!in && in_len) || !out_len)
        return CKR_ARGUMENTS_BAD;
    if (aad_len > 65536)
        return CKR_MECHANISM_PARAM_INVALID;
    if (in_len > MAX_DATA)
        return CKR_DATA_LEN_RANGE;
    p11_gcm_message_params gp;
    if ((rv = gcm_msg_params(kind, p, pl, &gp)) != CKR_OK)
        return rv;
    if (!out) {
        *out_len = in_len;
        return CKR_OK;
    }
    if (*out_len < in_len) {
        *out_len = in_len;
        return CKR_BUFFER_TOO_SMALL;
    }
    p11_obj *o = s->op.ko;
    if (!obj_usable(o))
        return CKR_KEY_HANDLE_INVALID;
    mesatee_client *c = NULL;
    uint64_t ep = 0;
    if ((rv = sess_client(s, &c, &ep)) != CKR_OK)
        return rv;
    const uint8_t *a = aad_len ? aad : NULL;
    if (kind == OP_MSG_ENCRYPT) {
        uint8_t *ct = NULL;
        size_t cl = 0;
        rv = map_status_c(c, ep,
                          p11_srv_encrypt(c, o->name, o->version, in ? in : (CK_BYTE *)"", in_len,
                                          a, aad_len, &ct, &cl),
                          "encrypt");
        if (rv == CKR_OK && cl != in_len + 28) {
            fprintf(stderr, "libmesatee-pkcs11: server sent a ciphertext of the wrong size\n");
            rv = CKR_DEVICE_ERROR;
        }
        if (rv == CKR_OK) { /* nonce(12) || ciphertext || tag(16) */
            memcpy(gp.pIv, ct, 12);
            if (in_len)
                memcpy(out, ct + 12, in_len);
            memcpy(gp.pTag, ct + 12 + in_len, 16);
            *out_len = in_len;
        }
        free(ct);
        return rv;
    }
    uint8_t *buf = malloc(in_len + 28), *pt = NULL;
    size_t ptl = 0;
    if (!buf)
        return CKR_HOST_MEMORY;
    memcpy(buf, gp.pIv, 12);
    if (in_len)
        memcpy(buf + 12, in, in_len);
    memcpy(buf + 12 + in_len, gp.pTag, 16);
    int rc = p11_srv_decrypt(c, o->name, o->version, buf, in_len + 28, a, aad_len, &pt, &ptl);
    free(buf);
    if (rc == MESATEE_EINVAL || rc == MESATEE_ECRYPTO) {
        report(c, "decrypt");
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    if ((rv = map_status_c(c, ep, rc, "decrypt")) != CKR_OK)
        return rv;
    if (ptl != in_len) {
        rv = CKR_DEVICE_ERROR;
    } else {
        if (ptl)
            memcpy(out, pt, ptl);
        *out_len = ptl;
    }
    if (pt)
        mt_wipe(pt, ptl);
    free(pt);
    return rv;
}

static CK_RV encrypt_msg(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *a, CK_ULONG al,
                         CK_BYTE *in, CK_ULONG il, CK_BYTE *out, CK_ULONG *ol)
{
    LOCK();
    UNLOCK_RETURN(msg_crypt_kind(OP_MSG_ENCRYPT, h, p, pl, a, al, in, il, out, ol));
}
static CK_RV decrypt_msg(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *a, CK_ULONG al,
                         CK_BYTE *in, CK_ULONG il, CK_BYTE *out, CK_ULONG *ol)
{
    LOCK();
    UNLOCK_RETURN(msg_crypt_kind(OP_MSG_DECRYPT, h, p, pl, a, al, in, il, out, ol));
}

/* Ends a message-based operation of kind. */
static CK_RV msg_final_kind(int kind, CK_SESSION_HANDLE h)
{
    p11_sess *s;
    CK_RV rv = op_get(h, kind, &s);
    if (rv == CKR_OK)
        op_clear(&s->op);
    return rv;
}
static CK_RV msg_encrypt_final(CK_SESSION_HANDLE h)
{
    LOCK();
    UNLOCK_RETURN(msg_final_kind(OP_MSG_ENCRYPT, h));
}
static CK_RV msg_decrypt_final(CK_SESSION_HANDLE h)
{
    LOCK();
    UNLOCK_RETURN(msg_final_kind(OP_MSG_DECRYPT, h));
}

/* Not offered: multi-part messages. */
static CK_RV msg_crypt_begin(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *a, CK_ULONG al)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
static CK_RV msg_crypt_next(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *in, CK_ULONG il,
                            CK_BYTE *out, CK_ULONG *ol, CK_FLAGS f)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
/* Message-based signing and verification (PKCS#11 3.0 base 5.15-5.16):
 * C_MessageSignInit / C_MessageVerifyInit take the mechanisms and keys of
 * C_SignInit / C_VerifyInit; each C_SignMessage is one single-part sign (one
 * transit request), each C_VerifyMessage one local verification. None of the
 * module's signature mechanisms has per-message parameters: a parameter is
 * CKR_MECHANISM_PARAM_INVALID. The multi-part forms (Begin/Next) are
 * CKR_FUNCTION_NOT_SUPPORTED. */
static CK_RV msg_sig_init(int kind, CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    CK_RV rv = op_init(kind == OP_MSG_SIGN ? OP_SIGN : OP_VERIFY, h, m, k);
    if (rv == CKR_OK)
        tl_sess->op.kind = kind; /* op_init succeeded: this thread holds the session */
    return rv;
}
static CK_RV msg_sign_init(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(msg_sig_init(OP_MSG_SIGN, h, m, k));
}
static CK_RV msg_verify_init(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    LOCK();
    UNLOCK_RETURN(msg_sig_init(OP_MSG_VERIFY, h, m, k));
}

/* One message of a message-based sign (sig_len != NULL) or verify
 * (sig_len == NULL, vsig_len the signature's length). */
static CK_RV msg_sig_one(int kind, CK_SESSION_HANDLE h, const void *p, CK_ULONG pl,
                         const CK_BYTE *d, CK_ULONG dl, CK_BYTE *sig, CK_ULONG *sig_len,
                         CK_ULONG vsig_len)
{
    p11_sess *s;
    CK_RV rv = op_get(h, kind, &s);
    if (rv != CKR_OK)
        return rv;
    if ((!d && dl) || (kind == OP_MSG_SIGN ? !sig_len : !sig))
        return CKR_ARGUMENTS_BAD;
    if (p || pl)
        return CKR_MECHANISM_PARAM_INVALID;
    p11_obj *o = s->op.ko;
    if (!obj_usable(o))
        return CKR_KEY_HANDLE_INVALID;
    size_t want = obj_sig_len(o); /* exact for every key the module shows */
    if (kind == OP_MSG_SIGN && (!sig || *sig_len < want)) {
        CK_RV r = sig ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *sig_len = want;
        return r;
    }
    /* this message's own operation state, from the initialised one */
    p11_op t;
    memset(&t, 0, sizeof t);
    t.kind = kind == OP_MSG_SIGN ? OP_SIGN : OP_VERIFY;
    t.mech = s->op.mech;
    t.key = s->op.key;
    t.ko = obj_get(o);
    t.md = s->op.md;
    t.pss_md = s->op.pss_md;
    t.pss_salt = s->op.pss_salt;
    if (t.md && (!(t.mdctx = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(t.mdctx, t.md, NULL)))
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = op_feed(&t, d ? d : (const CK_BYTE *)"", dl);
    if (rv == CKR_OK && kind == OP_MSG_VERIFY) {
        rv = do_verify(&t, o, sig, vsig_len);
    } else if (rv == CKR_OK) {
        mesatee_client *c = NULL;
        uint64_t ep = 0;
        uint8_t *res = NULL;
        size_t rl = 0;
        if ((rv = sess_client(s, &c, &ep)) == CKR_OK &&
            (rv = do_sign(c, ep, &t, o, &res, &rl)) == CKR_OK) {
            if (rl > *sig_len) {
                rv = CKR_DEVICE_ERROR;
            } else {
                memcpy(sig, res, rl);
                *sig_len = rl;
            }
        }
        free(res);
    }
    op_clear(&t);
    return rv;
}

static CK_RV sign_msg(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *d, CK_ULONG dl,
                      CK_BYTE *sig, CK_ULONG *sl)
{
    LOCK();
    UNLOCK_RETURN(msg_sig_one(OP_MSG_SIGN, h, p, pl, d, dl, sig, sl, 0));
}
static CK_RV verify_msg(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *d, CK_ULONG dl,
                        CK_BYTE *sig, CK_ULONG sl)
{
    LOCK();
    UNLOCK_RETURN(msg_sig_one(OP_MSG_VERIFY, h, p, pl, d, dl, sig, NULL, sl));
}
static CK_RV msg_sign_final(CK_SESSION_HANDLE h)
{
    LOCK();
    UNLOCK_RETURN(msg_final_kind(OP_MSG_SIGN, h));
}
static CK_RV msg_verify_final(CK_SESSION_HANDLE h)
{
    LOCK();
    UNLOCK_RETURN(msg_final_kind(OP_MSG_VERIFY, h));
}
/* Not offered: multi-part message signing. */
static CK_RV sign_msg_next(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *d, CK_ULONG dl,
                           CK_BYTE *sig, CK_ULONG *sl)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
static CK_RV sign_msg_begin(CK_SESSION_HANDLE h, void *p, CK_ULONG pl)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}
static CK_RV verify_msg_next(CK_SESSION_HANDLE h, void *p, CK_ULONG pl, CK_BYTE *d, CK_ULONG dl,
                             CK_BYTE *sig, CK_ULONG sl)
{
    LOCK();
    UNLOCK_RETURN(sess_unsupported(h));
}

/* ------------------------------------------------------------------------ */
/* Function lists and interfaces                                             */

#define P11_FUNCS_2_40                                                                             \
    C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,          \
        C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,  \
        C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo,                       \
        C_GetOperationState, C_SetOperationState, C_Login, C_Logout, C_CreateObject,               \
        C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,                       \
        C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,                 \
        C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt,       \
        C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,      \
        C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,           \
        C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal,                      \
        C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate, C_DecryptDigestUpdate,        \
        C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair, C_WrapKey,   \
        C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus,             \
        C_CancelFunction, C_WaitForSlotEvent

static CK_FUNCTION_LIST funcs_2_40 = {{2, 40}, P11_FUNCS_2_40};
static p11_function_list_3_0 funcs_3_0 = {
    {3, 0},
    P11_FUNCS_2_40,
    C_GetInterfaceList,
    C_GetInterface,
    login_user,
    session_cancel,
    msg_encrypt_init,
    encrypt_msg,
    msg_crypt_begin,
    msg_crypt_next,
    msg_encrypt_final,
    msg_decrypt_init,
    decrypt_msg,
    msg_crypt_begin,
    msg_crypt_next,
    msg_decrypt_final,
    msg_sign_init,
    sign_msg,
    sign_msg_begin,
    sign_msg_next,
    msg_sign_final,
    msg_verify_init,
    verify_msg,
    sign_msg_begin,
    verify_msg_next,
    msg_verify_final,
};

static CK_UTF8CHAR iface_name[] = "PKCS 11";
static p11_interface ifaces[] = {
    {iface_name, &funcs_3_0, 0},
    {iface_name, &funcs_2_40, 0},
};
#define NIFACES (sizeof ifaces / sizeof ifaces[0])

P11_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    *out = &funcs_2_40;
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetInterfaceList(p11_interface *list, CK_ULONG *n)
{
    if (!n)
        return CKR_ARGUMENTS_BAD;
    if (!list) {
        *n = NIFACES;
        return CKR_OK;
    }
    if (*n < NIFACES) {
        *n = NIFACES;
        return CKR_BUFFER_TOO_SMALL;
    }
    for (size_t i = 0; i < NIFACES; i++)
        list[i] = ifaces[i];
    *n = NIFACES;
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR *name, CK_VERSION *version, p11_interface **out,
                                CK_FLAGS flags)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    for (size_t i = 0; i < NIFACES; i++) {
        const CK_VERSION *v = ifaces[i].pFunctionList;
        if (name && strcmp((const char *)name, (const char *)ifaces[i].pInterfaceName) != 0)
            continue;
        if (version && (version->major != v->major || version->minor != v->minor))
            continue;
        if ((ifaces[i].flags & flags) != flags)
            continue;
        *out = &ifaces[i];
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}
