/* bench_keystore: KeyStore operations per second (issue 10).
 *
 * Operations: transit encrypt and decrypt of 1 KiB (AES-256-GCM, 96-bit
 * nonce), sign and verify of a 1 KiB message with ecdsa-p256 (SHA-256),
 * ed25519 and rsa-2048 (RSASSA-PSS, SHA-256, largest salt: Vault's default
 * for RSA keys).
 * Columns, all in one run, with the same number of concurrent workers:
 *   rest     our REST API (/v1/transit, Vault's transit paths) on loopback
 *            over attested TLS (libmesatee with a policy file, verified in
 *            the handshake), one keep-alive connection per worker thread:
 *            what a libmesatee or hvac user gets
 *   softhsm  SoftHSM2 through PKCS#11 (this driver dlopens the module; one
 *            session per worker thread)
 *   ours-p11 our PKCS#11 module libmesatee-pkcs11.so, same driver
 *   openssl  plain OpenSSL 3 in process, one EVP context per operation (the
 *            floor)
 * Each round runs every operation on every column for the same duration,
 * interleaved (rest, softhsm, ours-p11, openssl per operation), so that a
 * load change on the shared machine hits all columns alike. Every round is
 * printed; the summary gives the median over rounds.
 * ECDSA through PKCS#11: SoftHSM2 has no CKM_ECDSA_SHA256, so the driver
 * hashes with SHA-256 (OpenSSL, inside the timed loop) and signs with
 * CKM_ECDSA, as pkcs11-tool does; the same for our module. AES-GCM: the
 * driver passes a fresh IV per encryption; our module ignores it (transit
 * picks the nonce and returns nonce || ciphertext || tag, which its decrypt
 * takes back), so each column decrypts what it encrypted.
 *
 * Usage: bench_keystore [-c CONNS] [-d SECONDS] [-r ROUNDS]
 *          [-s URL -P POLICY -u USER -w PASSWORD_FILE]
 *          [-m SOFTHSM_MODULE -p PIN] [-M OUR_MODULE -q PIN_FILE]
 * run.sh starts a server and a SoftHSM2 token and passes these. */
#include <dlfcn.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "mesatee.h"

#define MSG_LEN 1024
#define MAX_CONNS 64
#define MAX_ROUNDS 15

typedef enum { OP_ENC, OP_DEC, OP_SIGN_EC, OP_VER_EC, OP_SIGN_ED, OP_VER_ED, OP_SIGN_RSA,
               OP_VER_RSA, OP_COUNT } op_id;
static const char *const op_names[OP_COUNT] = {
    "encrypt 1KiB", "decrypt 1KiB", "sign ecdsa-p256", "verify ecdsa-p256",
    "sign ed25519", "verify ed25519", "sign rsa-2048", "verify rsa-2048"};
enum { K_AES, K_EC, K_ED, K_RSA, K_COUNT };
static const int op_key[OP_COUNT] = {K_AES, K_AES, K_EC, K_EC, K_ED, K_ED, K_RSA, K_RSA};

enum { COL_REST, COL_SOFTHSM, COL_OURS, COL_OPENSSL, COL_COUNT };
static const char *const col_names[COL_COUNT] = {"rest", "softhsm", "ours-p11", "openssl"};

static uint8_t g_msg[MSG_LEN];

/* A column: per-worker setup (untimed, includes one warm-up operation), the
 * timed operation, per-worker teardown. A worker returns false on failure
 * with a message in err. */
typedef struct column {
    const char *skip; /* non-NULL: not measured, why */
    void *(*worker_new)(struct column *col, op_id op, char *err, size_t errlen);
    bool (*run)(void *w, op_id op, char *err, size_t errlen);
    void (*worker_free)(void *w);
    void *state;
} column;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* OpenSSL in process                                                        */

typedef struct {
    EVP_PKEY *key[K_COUNT];
    uint8_t aes[32];
    uint8_t ct[12 + MSG_LEN + 16]; /* nonce | ciphertext | tag */
    uint8_t sig[K_COUNT][512];
    size_t sig_len[K_COUNT];
} ossl_state;

static bool ossl_encrypt(const uint8_t key[32], uint8_t *out)
{
    bool ok = false;
    int n = 0, f = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && RAND_bytes(out, 12) == 1 &&
        EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
        EVP_EncryptUpdate(c, out + 12, &n, g_msg, MSG_LEN) == 1 &&
        EVP_EncryptFinal_ex(c, out + 12 + n, &f) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + MSG_LEN) == 1)
        ok = true;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

static bool ossl_decrypt(const uint8_t key[32], const uint8_t *in, uint8_t *out)
{
    bool ok = false;
    int n = 0, f = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
        EVP_DecryptUpdate(c, out, &n, in + 12, MSG_LEN) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + 12 + MSG_LEN)) == 1 &&
        EVP_DecryptFinal_ex(c, out + n, &f) == 1)
        ok = true;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

static bool ossl_sign_verify(EVP_PKEY *k, int kind, bool verify, uint8_t *sig, size_t *sig_len)
{
    bool ok = false;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    const EVP_MD *md = kind == K_ED ? NULL : EVP_sha256();
    if (!m)
        return false;
    int r = verify ? EVP_DigestVerifyInit(m, &pctx, md, NULL, k)
                   : EVP_DigestSignInit(m, &pctx, md, NULL, k);
    if (r != 1)
        goto out;
    if (kind == K_RSA && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) != 1))
        goto out;
    if (verify)
        ok = EVP_DigestVerify(m, sig, *sig_len, g_msg, MSG_LEN) == 1;
    else
        ok = EVP_DigestSign(m, sig, sig_len, g_msg, MSG_LEN) == 1;
out:
    EVP_MD_CTX_free(m);
    return ok;
}

static bool ossl_run(void *w, op_id op, char *err, size_t errlen)
{
    ossl_state *s = w;
    uint8_t buf[12 + MSG_LEN + 16];
    uint8_t sig[512];
    size_t sl = sizeof sig;
    int k = op_key[op];
    bool ok;
    switch (op) {
    case OP_ENC: ok = ossl_encrypt(s->aes, buf); break;
    case OP_DEC: ok = ossl_decrypt(s->aes, s->ct, buf); break;
    case OP_SIGN_EC: case OP_SIGN_ED: case OP_SIGN_RSA:
        ok = ossl_sign_verify(s->key[k], k, false, sig, &sl);
        break;
    default:
        sl = s->sig_len[k];
        ok = ossl_sign_verify(s->key[k], k, true, s->sig[k], &sl);
        break;
    }
    if (!ok)
        snprintf(err, errlen, "openssl %s failed", op_names[op]);
    return ok;
}

static void *ossl_worker_new(column *col, op_id op, char *err, size_t errlen)
{
    return ossl_run(col->state, op, err, errlen) ? col->state : NULL;
}

static void ossl_worker_free(void *w) { (void)w; }

static bool ossl_setup(column *col)
{
    static ossl_state s;
    s.key[K_EC] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    s.key[K_ED] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    s.key[K_RSA] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!s.key[K_EC] || !s.key[K_ED] || !s.key[K_RSA] || RAND_bytes(s.aes, 32) != 1 ||
        !ossl_encrypt(s.aes, s.ct))
        return false;
    for (int k = K_EC; k < K_COUNT; k++) {
        s.sig_len[k] = sizeof s.sig[k];
        if (!ossl_sign_verify(s.key[k], k, false, s.sig[k], &s.sig_len[k]))
            return false;
    }
    col->state = &s;
    col->worker_new = ossl_worker_new;
    col->run = ossl_run;
    col->worker_free = ossl_worker_free;
    return true;
}

/* ------------------------------------------------------------------------ */
/* REST: /v1/transit over attested TLS through libmesatee                    */

typedef struct {
    const char *url, *policy, *token;
    char path[OP_COUNT][128];
    char *body[OP_COUNT];
} rest_state;

typedef struct {
    rest_state *s;
    mesatee_client *c;
} rest_worker;

static const char *const rest_key_name[K_COUNT] = {"bench-aes", "bench-ecdsa", "bench-ed25519",
                                                   "bench-rsa"};
static const char *const rest_key_type[K_COUNT] = {"aes256-gcm96", "ecdsa-p256", "ed25519",
                                                   "rsa-2048"};

static mesatee_client *rest_client(const rest_state *s, char *err, size_t errlen)
{
    mesatee_client *c = mesatee_client_new(s->url);
    if (!c) {
        snprintf(err, errlen, "client: %s", mesatee_client_errmsg(NULL));
        return NULL;
    }
    if (mesatee_client_set_policy_file(c, s->policy) != MESATEE_OK ||
        (s->token && mesatee_client_set_token(c, s->token) != MESATEE_OK)) {
        snprintf(err, errlen, "client: %s", mesatee_client_errmsg(c));
        mesatee_client_free(c);
        return NULL;
    }
    return c;
}

/* The answer's data.<field> string, or NULL (caller frees). */
static char *json_data_str(const char *doc, const char *field)
{
    json_t *o = json_loads(doc, 0, NULL);
    const char *v = json_string_value(json_object_get(json_object_get(o, "data"), field));
    char *r = v ? strdup(v) : NULL;
    json_decref(o);
    return r;
}

static bool rest_run(void *w, op_id op, char *err, size_t errlen)
{
    rest_worker *rw = w;
    char *out = NULL;
    int st = mesatee_call(rw->c, "POST", rw->s->path[op], rw->s->body[op], &out);
    bool ok = st == MESATEE_OK;
    if (ok && (op == OP_VER_EC || op == OP_VER_ED || op == OP_VER_RSA)) {
        json_t *o = json_loads(out, 0, NULL);
        ok = json_is_true(json_object_get(json_object_get(o, "data"), "valid"));
        json_decref(o);
        if (!ok)
            snprintf(err, errlen, "rest %s: signature not valid", op_names[op]);
    } else if (!ok) {
        snprintf(err, errlen, "rest %s: %s", op_names[op], mesatee_client_errmsg(rw->c));
    }
    free(out);
    return ok;
}

static void rest_worker_free(void *w)
{
    rest_worker *rw = w;
    if (rw)
        mesatee_client_free(rw->c);
    free(rw);
}

static void *rest_worker_new(column *col, op_id op, char *err, size_t errlen)
{
    rest_worker *rw = calloc(1, sizeof *rw);
    if (!rw)
        return NULL;
    rw->s = col->state;
    if (!(rw->c = rest_client(rw->s, err, errlen)) || !rest_run(rw, op, err, errlen)) {
        rest_worker_free(rw);
        return NULL;
    }
    return rw;
}

static char *b64(const uint8_t *p, size_t n)
{
    char *o = malloc(4 * ((n + 2) / 3) + 1);
    if (o)
        EVP_EncodeBlock((unsigned char *)o, p, (int)n);
    return o;
}

static char *rest_post(mesatee_client *c, const char *path, const char *body, char *err,
                       size_t errlen)
{
    char *out = NULL;
    if (mesatee_call(c, "POST", path, body, &out) != MESATEE_OK) {
        snprintf(err, errlen, "POST %s: %s", path, mesatee_client_errmsg(c));
        free(out);
        return NULL;
    }
    return out;
}

static bool rest_setup(column *col, const char *url, const char *policy, const char *user,
                       const char *pwfile, char *err, size_t errlen)
{
    static rest_state s;
    static char token[512];
    s.url = url;
    s.policy = policy;
    char pw[256] = "";
    FILE *f = fopen(pwfile, "r");
    if (!f || !fgets(pw, sizeof pw, f)) {
        snprintf(err, errlen, "cannot read %s", pwfile);
        if (f)
            fclose(f);
        return false;
    }
    fclose(f);
    pw[strcspn(pw, "\r\n")] = '\0';
    mesatee_client *c = rest_client(&s, err, errlen);
    if (!c)
        return false;
    char *out = NULL;
    bool ok = false;
    char *tok = NULL;
    if (mesatee_login(c, user, pw, &tok, &out) != MESATEE_OK) {
        snprintf(err, errlen, "login: %s", mesatee_client_errmsg(c));
        goto out;
    }
    snprintf(token, sizeof token, "%s", tok);
    s.token = token;
    free(tok);
    free(out);
    out = NULL;
    char *msg = b64(g_msg, MSG_LEN);
    if (!msg)
        goto out;
    char path[128], body[128];
    for (int k = 0; k < K_COUNT; k++) {
        snprintf(path, sizeof path, "/v1/transit/keys/%s", rest_key_name[k]);
        snprintf(body, sizeof body, "{\"type\":\"%s\"}", rest_key_type[k]);
        char *r = rest_post(c, path, body, err, errlen);
        if (!r) {
            free(msg);
            goto out;
        }
        free(r);
    }
    /* encrypt / decrypt */
    snprintf(s.path[OP_ENC], sizeof s.path[0], "/v1/transit/encrypt/%s", rest_key_name[K_AES]);
    snprintf(s.path[OP_DEC], sizeof s.path[0], "/v1/transit/decrypt/%s", rest_key_name[K_AES]);
    size_t bl = strlen(msg) + 64;
    s.body[OP_ENC] = malloc(bl);
    snprintf(s.body[OP_ENC], bl, "{\"plaintext\":\"%s\"}", msg);
    char *r = rest_post(c, s.path[OP_ENC], s.body[OP_ENC], err, errlen);
    char *ct = r ? json_data_str(r, "ciphertext") : NULL;
    free(r);
    if (!ct) {
        if (!err[0])
            snprintf(err, errlen, "encrypt: no data.ciphertext in the answer");
        free(msg);
        goto out;
    }
    bl = strlen(ct) + 64;
    s.body[OP_DEC] = malloc(bl);
    snprintf(s.body[OP_DEC], bl, "{\"ciphertext\":\"%s\"}", ct);
    free(ct);
    /* sign / verify */
    static const op_id sign_ops[] = {OP_SIGN_EC, OP_SIGN_ED, OP_SIGN_RSA};
    for (size_t i = 0; i < 3; i++) {
        op_id so = sign_ops[i], vo = so + 1;
        int k = op_key[so];
        const char *hash = k == K_ED ? "" : "/sha2-256";
        const char *alg = k == K_RSA ? ",\"signature_algorithm\":\"pss\"" : "";
        snprintf(s.path[so], sizeof s.path[0], "/v1/transit/sign/%s%s", rest_key_name[k], hash);
        snprintf(s.path[vo], sizeof s.path[0], "/v1/transit/verify/%s%s", rest_key_name[k],
                 hash);
        bl = strlen(msg) + 128;
        s.body[so] = malloc(bl);
        snprintf(s.body[so], bl, "{\"input\":\"%s\"%s}", msg, alg);
        r = rest_post(c, s.path[so], s.body[so], err, errlen);
        char *sig = r ? json_data_str(r, "signature") : NULL;
        free(r);
        if (!sig) {
            if (!err[0])
                snprintf(err, errlen, "%s: no data.signature in the answer", op_names[so]);
            free(msg);
            goto out;
        }
        bl = strlen(msg) + strlen(sig) + 128;
        s.body[vo] = malloc(bl);
        snprintf(s.body[vo], bl, "{\"input\":\"%s\",\"signature\":\"%s\"%s}", msg, sig, alg);
        free(sig);
    }
    free(msg);
    col->state = &s;
    col->worker_new = rest_worker_new;
    col->run = rest_run;
    col->worker_free = rest_worker_free;
    ok = true;
out:
    free(out);
    mesatee_client_free(c);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* PKCS#11 through a dlopened module                                         */

typedef struct {
    const char *name;
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE setup_sess;
    CK_OBJECT_HANDLE aes, priv[K_COUNT], pub[K_COUNT];
    uint8_t iv[12];
    uint8_t ct[MSG_LEN + 64]; /* SoftHSM2: ct || tag; ours: nonce || ct || tag */
    CK_ULONG ct_len;
    uint8_t sig[K_COUNT][512];
    CK_ULONG sig_len[K_COUNT];
    _Atomic uint64_t iv_ctr;
    char op_err[OP_COUNT][160]; /* setup failed for this operation (others still run) */
} p11_state;

typedef struct {
    p11_state *s;
    CK_SESSION_HANDLE h;
    uint64_t ctr;
} p11_worker;

/* the largest salt for rsa-2048 and SHA-256 (256 - 32 - 2): what transit
 * (Vault's "auto") signs with, and the only salt our module signs with */
static CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 222};

static CK_MECHANISM p11_sig_mech(int k)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    if (k == K_ED)
        m.mechanism = CKM_EDDSA;
    else if (k == K_RSA) {
        m.mechanism = CKM_SHA256_RSA_PKCS_PSS;
        m.pParameter = &pss;
        m.ulParameterLen = sizeof pss;
    }
    return m;
}

/* The bytes the mechanism takes: SHA-256 of the message for CKM_ECDSA. */
static void p11_sig_input(int k, uint8_t dg[32], CK_BYTE_PTR *in, CK_ULONG *inl)
{
    if (k == K_EC) {
        SHA256(g_msg, MSG_LEN, dg);
        *in = dg;
        *inl = 32;
    } else {
        *in = g_msg;
        *inl = MSG_LEN;
    }
}

static CK_RV p11_op(p11_state *s, CK_SESSION_HANDLE h, op_id op, const uint8_t *iv,
                    uint8_t *out, CK_ULONG *out_len)
{
    CK_FUNCTION_LIST_PTR f = s->f;
    CK_RV rv;
    int k = op_key[op];
    if (op == OP_ENC || op == OP_DEC) {
        CK_GCM_PARAMS g = {(CK_BYTE_PTR)iv, 12, 96, NULL, 0, 128};
        CK_MECHANISM m = {CKM_AES_GCM, &g, sizeof g};
        if (op == OP_ENC) {
            if ((rv = f->C_EncryptInit(h, &m, s->aes)) != CKR_OK)
                return rv;
            return f->C_Encrypt(h, g_msg, MSG_LEN, out, out_len);
        }
        if ((rv = f->C_DecryptInit(h, &m, s->aes)) != CKR_OK)
            return rv;
        return f->C_Decrypt(h, s->ct, s->ct_len, out, out_len);
    }
    CK_MECHANISM m = p11_sig_mech(k);
    uint8_t dg[32];
    CK_BYTE_PTR in;
    CK_ULONG inl;
    p11_sig_input(k, dg, &in, &inl);
    if (op == OP_SIGN_EC || op == OP_SIGN_ED || op == OP_SIGN_RSA) {
        if ((rv = f->C_SignInit(h, &m, s->priv[k])) != CKR_OK)
            return rv;
        return f->C_Sign(h, in, inl, out, out_len);
    }
    if ((rv = f->C_VerifyInit(h, &m, s->pub[k])) != CKR_OK)
        return rv;
    return f->C_Verify(h, in, inl, s->sig[k], s->sig_len[k]);
}

static bool p11_run(void *w, op_id op, char *err, size_t errlen)
{
    p11_worker *pw = w;
    uint8_t iv[12] = {0}, out[MSG_LEN + 64];
    CK_ULONG ol = sizeof out;
    if (op == OP_ENC) { /* a fresh nonce per encryption: 0^32 | worker << 32 | counter */
        uint64_t n = ++pw->ctr;
        memcpy(iv + 4, &n, 8);
    } else if (op == OP_DEC) {
        memcpy(iv, pw->s->iv, 12);
    }
    CK_RV rv = p11_op(pw->s, pw->h, op, iv, out, &ol);
    if (rv != CKR_OK)
        snprintf(err, errlen, "%s %s: CKR 0x%lx", pw->s->name, op_names[op], (unsigned long)rv);
    return rv == CKR_OK;
}

static void p11_worker_free(void *w)
{
    p11_worker *pw = w;
    if (pw && pw->h != CK_INVALID_HANDLE)
        pw->s->f->C_CloseSession(pw->h);
    free(pw);
}

static void *p11_worker_new(column *col, op_id op, char *err, size_t errlen)
{
    p11_state *s = col->state;
    if (s->op_err[op][0]) {
        snprintf(err, errlen, "%s", s->op_err[op]);
        return NULL;
    }
    p11_worker *pw = calloc(1, sizeof *pw);
    if (!pw)
        return NULL;
    pw->s = s;
    pw->h = CK_INVALID_HANDLE;
    pw->ctr = atomic_fetch_add(&s->iv_ctr, (uint64_t)1 << 32) + ((uint64_t)1 << 32);
    CK_RV rv = s->f->C_OpenSession(s->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                   &pw->h);
    if (rv != CKR_OK) {
        snprintf(err, errlen, "%s C_OpenSession: CKR 0x%lx", s->name, (unsigned long)rv);
        pw->h = CK_INVALID_HANDLE;
        p11_worker_free(pw);
        return NULL;
    }
    if (!p11_run(pw, op, err, errlen)) {
        p11_worker_free(pw);
        return NULL;
    }
    return pw;
}

static CK_RV p11_genpair(p11_state *s, int k, CK_BBOOL on_token)
{
    static CK_BYTE ec_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static CK_BYTE ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG bits = 2048;
    char label[64];
    snprintf(label, sizeof label, "bench-%s-%ld", rest_key_type[k], (long)getpid());
    CK_MECHANISM m = {k == K_RSA  ? CKM_RSA_PKCS_KEY_PAIR_GEN
                      : k == K_ED ? CKM_EC_EDWARDS_KEY_PAIR_GEN
                                  : CKM_EC_KEY_PAIR_GEN,
                      NULL, 0};
    CK_ATTRIBUTE pub[4] = {{CKA_TOKEN, &on_token, sizeof on_token},
                           {CKA_VERIFY, &yes, sizeof yes},
                           {CKA_LABEL, label, strlen(label)}};
    CK_ULONG npub = 3;
    if (k == K_RSA) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
    } else {
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, k == K_ED ? ed25519 : ec_p256,
                                     k == K_ED ? sizeof ed25519 : sizeof ec_p256};
    }
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &on_token, sizeof on_token},
                           {CKA_SIGN, &yes, sizeof yes},
                           {CKA_SENSITIVE, &yes, sizeof yes},
                           {CKA_PRIVATE, &yes, sizeof yes},
                           {CKA_LABEL, label, strlen(label)}};
    return s->f->C_GenerateKeyPair(s->setup_sess, &m, pub, npub, priv,
                                   sizeof priv / sizeof priv[0], &s->pub[k], &s->priv[k]);
}

static CK_RV p11_genaes(p11_state *s, CK_BBOOL on_token)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG len = 32;
    char label[64];
    snprintf(label, sizeof label, "bench-aes-%ld", (long)getpid());
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE t[] = {{CKA_TOKEN, &on_token, sizeof on_token},
                        {CKA_ENCRYPT, &yes, sizeof yes},
                        {CKA_DECRYPT, &yes, sizeof yes},
                        {CKA_SENSITIVE, &yes, sizeof yes},
                        {CKA_VALUE_LEN, &len, sizeof len},
                        {CKA_LABEL, label, strlen(label)}};
    return s->f->C_GenerateKey(s->setup_sess, &m, t, sizeof t / sizeof t[0], &s->aes);
}

/* Loads module path, logs in to the first slot with a token with pin, makes
 * the keys (session objects; token objects where the module refuses those)
 * and one ciphertext and signature per key for the decrypt/verify rows. */
static bool p11_setup(column *col, const char *name, const char *path, const char *pin,
                      char *err, size_t errlen)
{
    p11_state *s = calloc(1, sizeof *s);
    if (!s)
        return false;
    s->name = name;
    CK_RV rv = CKR_OK;
    const char *step = "dlopen";
    CK_C_GetFunctionList gfl;
    if (!(s->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(err, errlen, "%s: dlopen %s: %s", name, path, dlerror());
        goto fail;
    }
    *(void **)&gfl = dlsym(s->dl, "C_GetFunctionList");
    step = "C_GetFunctionList";
    if (!gfl || (rv = gfl(&s->f)) != CKR_OK)
        goto fail_rv;
    CK_C_INITIALIZE_ARGS ia = {.flags = CKF_OS_LOCKING_OK};
    step = "C_Initialize";
    if ((rv = s->f->C_Initialize(&ia)) != CKR_OK)
        goto fail_rv;
    CK_SLOT_ID slots[16];
    CK_ULONG ns = 16;
    step = "C_GetSlotList";
    if ((rv = s->f->C_GetSlotList(CK_TRUE, slots, &ns)) != CKR_OK)
        goto fail_rv;
    if (ns == 0) {
        snprintf(err, errlen, "%s: no slot with a token", name);
        goto fail;
    }
    s->slot = slots[0];
    step = "C_OpenSession";
    if ((rv = s->f->C_OpenSession(s->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                  &s->setup_sess)) != CKR_OK)
        goto fail_rv;
    step = "C_Login";
    rv = s->f->C_Login(s->setup_sess, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        goto fail_rv;
    /* a key type or mechanism the module refuses fails its operations only */
    if ((rv = p11_genaes(s, CK_FALSE)) != CKR_OK && (rv = p11_genaes(s, CK_TRUE)) != CKR_OK) {
        snprintf(s->op_err[OP_ENC], sizeof s->op_err[0], "C_GenerateKey (AES-256): CKR 0x%lx",
                 (unsigned long)rv);
        memcpy(s->op_err[OP_DEC], s->op_err[OP_ENC], sizeof s->op_err[0]);
    } else {
        RAND_bytes(s->iv, 12);
        s->ct_len = sizeof s->ct;
        if ((rv = p11_op(s, s->setup_sess, OP_ENC, s->iv, s->ct, &s->ct_len)) != CKR_OK)
            snprintf(s->op_err[OP_DEC], sizeof s->op_err[0], "C_Encrypt (setup): CKR 0x%lx",
                     (unsigned long)rv);
    }
    static const op_id sign_ops[] = {OP_SIGN_EC, OP_SIGN_ED, OP_SIGN_RSA};
    for (size_t i = 0; i < 3; i++) {
        op_id so = sign_ops[i];
        int k = op_key[so];
        if ((rv = p11_genpair(s, k, CK_FALSE)) != CKR_OK &&
            (rv = p11_genpair(s, k, CK_TRUE)) != CKR_OK) {
            snprintf(s->op_err[so], sizeof s->op_err[0], "C_GenerateKeyPair: CKR 0x%lx",
                     (unsigned long)rv);
            memcpy(s->op_err[so + 1], s->op_err[so], sizeof s->op_err[0]);
            continue;
        }
        s->sig_len[k] = sizeof s->sig[k];
        if ((rv = p11_op(s, s->setup_sess, so, NULL, s->sig[k], &s->sig_len[k])) != CKR_OK)
            snprintf(s->op_err[so + 1], sizeof s->op_err[0], "C_Sign (setup): CKR 0x%lx",
                     (unsigned long)rv);
    }
    col->state = s;
    col->worker_new = p11_worker_new;
    col->run = p11_run;
    col->worker_free = p11_worker_free;
    return true;
fail_rv:
    snprintf(err, errlen, "%s: %s: CKR 0x%lx", name, step, (unsigned long)rv);
fail:
    /* the module stays loaded: some modules crash when unloaded half set up */
    free(s);
    return false;
}

/* ------------------------------------------------------------------------ */
/* Runner                                                                    */

typedef struct {
    column *col;
    op_id op;
    pthread_barrier_t *start;
    atomic_bool *stop;
    unsigned long ops;
    bool ok;
    char err[256];
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *a = p;
    void *w = a->col->worker_new(a->col, a->op, a->err, sizeof a->err);
    pthread_barrier_wait(a->start);
    if (!w)
        return NULL;
    a->ok = true;
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        if (!a->col->run(w, a->op, a->err, sizeof a->err)) {
            a->ok = false;
            break;
        }
        a->ops++;
    }
    a->col->worker_free(w);
    return NULL;
}

/* ops/s of col on op with conns workers for secs seconds; < 0 on failure
 * (message in err). */
static double run_cell(column *col, op_id op, unsigned conns, double secs, char *err,
                       size_t errlen)
{
    pthread_t th[MAX_CONNS];
    worker_arg a[MAX_CONNS];
    pthread_barrier_t start;
    atomic_bool stop = false;
    pthread_barrier_init(&start, NULL, conns + 1);
    for (unsigned i = 0; i < conns; i++) {
        a[i] = (worker_arg){.col = col, .op = op, .start = &start, .stop = &stop};
        pthread_create(&th[i], NULL, worker_main, &a[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, true);
    unsigned long total = 0;
    bool ok = true;
    for (unsigned i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        total += a[i].ops;
        if (!a[i].ok && ok) {
            ok = false;
            snprintf(err, errlen, "%s", a[i].err[0] ? a[i].err : "worker setup failed");
        }
    }
    double t = now_s() - t0;
    pthread_barrier_destroy(&start);
    return ok ? (double)total / t : -1.0;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(const double *v, unsigned n)
{
    double t[MAX_ROUNDS];
    memcpy(t, v, n * sizeof *v);
    qsort(t, n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void usage(const char *p)
{
    fprintf(stderr,
            "usage: %s [-c CONNS(1-%d)] [-d SECONDS] [-r ROUNDS(1-%d)]\n"
            "  [-s URL -P POLICY -u USER -w PASSWORD_FILE]   REST column\n"
            "  [-m SOFTHSM_MODULE -p PIN]                    SoftHSM2 column\n"
            "  [-M OUR_MODULE -q PIN]                        our PKCS#11 module column\n",
            p, MAX_CONNS, MAX_ROUNDS);
}

int main(int argc, char **argv)
{
    unsigned conns = 4, rounds = 3;
    double secs = 1.0;
    const char *url = NULL, *policy = NULL, *user = NULL, *pwfile = NULL;
    const char *hsm = NULL, *hsm_pin = "1234", *ours = NULL, *ours_pin = NULL;
    int o;
    while ((o = getopt(argc, argv, "c:d:r:s:P:u:w:m:p:M:q:h")) != -1) {
        switch (o) {
        case 'c': conns = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': secs = strtod(optarg, NULL); break;
        case 'r': rounds = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': url = optarg; break;
        case 'P': policy = optarg; break;
        case 'u': user = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'm': hsm = optarg; break;
        case 'p': hsm_pin = optarg; break;
        case 'M': ours = optarg; break;
        case 'q': ours_pin = optarg; break;
        default: usage(argv[0]); return 2;
        }
    }
    if (conns < 1 || conns > MAX_CONNS || rounds < 1 || rounds > MAX_ROUNDS || !(secs > 0) ||
        secs > 60) {
        usage(argv[0]);
        return 2;
    }
    RAND_bytes(g_msg, MSG_LEN);
    column cols[COL_COUNT] = {0};
    char err[512] = "";
    static char why[COL_COUNT][600];
    if (!url || !policy || !user || !pwfile)
        cols[COL_REST].skip = "not measured: no server given (-s -P -u -w)";
    else if (!rest_setup(&cols[COL_REST], url, policy, user, pwfile, err, sizeof err)) {
        snprintf(why[COL_REST], sizeof why[0], "not measured: %s", err);
        cols[COL_REST].skip = why[COL_REST];
    }
    err[0] = '\0';
    if (!hsm)
        cols[COL_SOFTHSM].skip = "not measured: no SoftHSM2 module given (-m)";
    else if (!p11_setup(&cols[COL_SOFTHSM], "softhsm", hsm, hsm_pin, err, sizeof err)) {
        snprintf(why[COL_SOFTHSM], sizeof why[0], "not measured: %s", err);
        cols[COL_SOFTHSM].skip = why[COL_SOFTHSM];
    }
    err[0] = '\0';
    if (!ours)
        cols[COL_OURS].skip = "not measured: module not merged";
    else if (!ours_pin || !p11_setup(&cols[COL_OURS], "ours-p11", ours, ours_pin, err,
                                     sizeof err)) {
        snprintf(why[COL_OURS], sizeof why[0], "not measured: %s",
                 ours_pin ? err : "no PIN given (-q)");
        cols[COL_OURS].skip = why[COL_OURS];
    }
    if (!ossl_setup(&cols[COL_OPENSSL])) {
        fprintf(stderr, "bench_keystore: OpenSSL setup failed\n");
        return 1;
    }
    printf("bench_keystore: %u concurrent workers per column (REST: %u keep-alive attested TLS "
           "connections; PKCS#11: %u sessions; OpenSSL: %u threads), %.1f s per cell, "
           "%u interleaved rounds, %ld online CPUs. Operations/s.\n\n",
           conns, conns, conns, conns, secs, rounds, sysconf(_SC_NPROCESSORS_ONLN));
    for (int c = 0; c < COL_COUNT; c++)
        if (cols[c].skip)
            printf("%s: %s\n", col_names[c], cols[c].skip);
    double res[OP_COUNT][COL_COUNT][MAX_ROUNDS];
    char fail[OP_COUNT][COL_COUNT][160];
    memset(fail, 0, sizeof fail);
    printf("\n| round | operation | rest | softhsm | ours-p11 | openssl |\n"
           "|---|---|---|---|---|---|\n");
    for (unsigned r = 0; r < rounds; r++) {
        for (int op = 0; op < OP_COUNT; op++) {
            printf("| %u | %s", r + 1, op_names[op]);
            for (int c = 0; c < COL_COUNT; c++) {
                res[op][c][r] = -1;
                if (cols[c].skip || fail[op][c][0]) {
                    printf(" | -");
                    continue;
                }
                err[0] = '\0';
                res[op][c][r] = run_cell(&cols[c], (op_id)op, conns, secs, err, sizeof err);
                if (res[op][c][r] < 0) {
                    snprintf(fail[op][c], sizeof fail[0][0], "%.159s", err);
                    printf(" | failed");
                } else {
                    printf(" | %.0f", res[op][c][r]);
                }
                fflush(stdout);
            }
            printf(" |\n");
        }
    }
    double med[OP_COUNT][COL_COUNT];
    printf("\nMedian of %u rounds (min-max), operations/s:\n\n"
           "| operation | rest | softhsm | ours-p11 | openssl (floor) | rest / openssl | "
           "ours-p11 / softhsm |\n|---|---|---|---|---|---|---|\n",
           rounds);
    for (int op = 0; op < OP_COUNT; op++) {
        printf("| %s", op_names[op]);
        for (int c = 0; c < COL_COUNT; c++) {
            med[op][c] = -1;
            if (cols[c].skip) {
                printf(" | not measured");
                continue;
            }
            if (fail[op][c][0]) {
                printf(" | failed: %s", fail[op][c]);
                continue;
            }
            double lo = res[op][c][0], hi = lo;
            for (unsigned r = 1; r < rounds; r++) {
                lo = res[op][c][r] < lo ? res[op][c][r] : lo;
                hi = res[op][c][r] > hi ? res[op][c][r] : hi;
            }
            med[op][c] = median(res[op][c], rounds);
            printf(" | %.0f (%.0f-%.0f)", med[op][c], lo, hi);
        }
        if (med[op][COL_REST] > 0 && med[op][COL_OPENSSL] > 0)
            printf(" | %.3f", med[op][COL_REST] / med[op][COL_OPENSSL]);
        else
            printf(" | -");
        if (med[op][COL_OURS] > 0 && med[op][COL_SOFTHSM] > 0)
            printf(" | %.2f |\n", med[op][COL_OURS] / med[op][COL_SOFTHSM]);
        else
            printf(" | - |\n");
    }
    printf("\nTargets (issue 10), from this run's medians:\n");
    double e = med[OP_ENC][COL_REST], s = med[OP_SIGN_EC][COL_REST];
    printf("- REST encrypt 1KiB >= 5000/s with keep-alive: %s\n",
           e < 0 ? "not measured" : e >= 5000 ? "met" : "not met");
    printf("- REST ecdsa-p256 sign >= 3000/s with keep-alive: %s\n",
           s < 0 ? "not measured" : s >= 3000 ? "met" : "not met");
    static const op_id sign_ops[] = {OP_SIGN_EC, OP_SIGN_ED, OP_SIGN_RSA};
    for (size_t i = 0; i < 3; i++) {
        double ou = med[sign_ops[i]][COL_OURS], sh = med[sign_ops[i]][COL_SOFTHSM];
        printf("- PKCS#11 %s through our module within 3x of SoftHSM2 (>= %.0f/s): %s\n",
               op_names[sign_ops[i]], sh > 0 ? sh / 3 : 0.0,
               ou < 0 || sh < 0 ? "not measured" : ou * 3 >= sh ? "met" : "not met");
    }
    return 0;
}
