/* test_p11_threads: libmesatee-pkcs11 used by several threads at once, each
 * with its own session, against a live server (tests/integration/
 * it_pkcs11_threads.sh starts it). The module must run the sessions'
 * calls in parallel and keep every result right:
 *   - ECDSA P-256 sign (server) then verify (module, public key), and the
 *     same signature with one bit flipped must fail;
 *   - AES-GCM encrypt then decrypt with associated data, plaintext equal;
 *   - RSA-OAEP encrypt (module) then decrypt (server), plaintext equal;
 *   - PKCS#11 3.0 C_EncryptMessage / C_DecryptMessage (AES-GCM, the
 *     KeyStore's nonce returned in CK_GCM_MESSAGE_PARAMS), plaintext equal;
 *   - PKCS#11 3.0 C_SignMessage (two messages, one init; a short buffer)
 *     and C_VerifyMessage (both verify, a swapped one does not);
 *   - a search (C_FindObjectsInit refreshes the object table) and
 *     C_GenerateRandom in between;
 * then imports (C_CreateObject) checked against outside references: an
 * Ed25519 key (RFC 8032 test 1: public key and deterministic signature) and
 * an AES key (a ciphertext of the module decrypts with OpenSSL and the same
 * key bytes), and a logout race: threads keep signing while the main thread logs out;
 * every call must return CKR_OK or one of the codes of a login that ended,
 * never crash, and a new login works afterwards.
 * No timing thresholds: the program checks results only.
 * Usage: test_p11_threads MODULE.so (MESATEE_PKCS11_CONF, P11_PIN set;
 * P11_THREADS, P11_ITER optional). Exit 0 when every check held. */
#include <dlfcn.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11_defs.h"

static CK_FUNCTION_LIST *F;
static p11_function_list_3_0 *F3; /* the same module's 3.0 list */
static const char *g_pin;
static int g_iter = 10;
static atomic_int g_fail;
static atomic_int g_ops;
static atomic_bool g_stop;
static CK_OBJECT_HANDLE g_ec_priv, g_ec_pub, g_aes, g_rsa_priv, g_rsa_pub;

#define FAILF(...)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "FAIL: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        atomic_fetch_add(&g_fail, 1);                                                              \
    } while (0)

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h = 0;
    CK_ULONG n = 0;
    if (F->C_FindObjectsInit(s, t, 2) != CKR_OK)
        return 0;
    if (F->C_FindObjects(s, &h, 1, &n) != CKR_OK || n != 1)
        h = 0;
    F->C_FindObjectsFinal(s);
    return h;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 131u + i * 7u);
}

/* One round of every operation on session s; returns the first failing rv
 * (CKR_OK if all held). Result mismatches are counted as failures. */
static CK_RV round_ops(CK_SESSION_HANDLE s, unsigned seed)
{
    CK_RV rv;
    unsigned char dg[32], sig[64];
    CK_ULONG sl = sizeof sig;
    fill(dg, sizeof dg, seed);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    if ((rv = F->C_SignInit(s, &ecdsa, g_ec_priv)) != CKR_OK ||
        (rv = F->C_Sign(s, dg, sizeof dg, sig, &sl)) != CKR_OK)
        return rv;
    if (sl != 64)
        FAILF("ECDSA signature of %lu bytes", (unsigned long)sl);
    if ((rv = F->C_VerifyInit(s, &ecdsa, g_ec_pub)) != CKR_OK)
        return rv;
    if ((rv = F->C_Verify(s, dg, sizeof dg, sig, sl)) != CKR_OK) {
        FAILF("a fresh ECDSA signature does not verify (0x%lx)", (unsigned long)rv);
        return rv;
    }
    sig[seed % 64] ^= 1;
    if ((rv = F->C_VerifyInit(s, &ecdsa, g_ec_pub)) != CKR_OK)
        return rv;
    if ((rv = F->C_Verify(s, dg, sizeof dg, sig, sl)) != CKR_SIGNATURE_INVALID)
        FAILF("a flipped ECDSA signature gave 0x%lx", (unsigned long)rv);

    unsigned char pt[300], ct[400], back[400], aad[16];
    fill(pt, sizeof pt, seed + 1);
    fill(aad, sizeof aad, seed + 2);
    CK_GCM_PARAMS gp = {NULL, 0, 0, aad, sizeof aad, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof gp};
    CK_ULONG cl = sizeof ct, bl = sizeof back;
    if ((rv = F->C_EncryptInit(s, &gcm, g_aes)) != CKR_OK ||
        (rv = F->C_Encrypt(s, pt, sizeof pt, ct, &cl)) != CKR_OK)
        return rv;
    if ((rv = F->C_DecryptInit(s, &gcm, g_aes)) != CKR_OK ||
        (rv = F->C_Decrypt(s, ct, cl, back, &bl)) != CKR_OK)
        return rv;
    if (bl != sizeof pt || memcmp(back, pt, bl))
        FAILF("AES-GCM round trip changed the plaintext");

    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    unsigned char rct[256], rpt[256];
    CK_ULONG rcl = sizeof rct, rpl = sizeof rpt;
    if ((rv = F->C_EncryptInit(s, &oaep, g_rsa_pub)) != CKR_OK ||
        (rv = F->C_Encrypt(s, pt, 100, rct, &rcl)) != CKR_OK)
        return rv;
    if ((rv = F->C_DecryptInit(s, &oaep, g_rsa_priv)) != CKR_OK ||
        (rv = F->C_Decrypt(s, rct, rcl, rpt, &rpl)) != CKR_OK)
        return rv;
    if (rpl != 100 || memcmp(rpt, pt, 100))
        FAILF("RSA-OAEP round trip changed the plaintext");

    /* PKCS#11 3.0 message-based AES-GCM: the nonce comes back in the parameters */
    CK_BYTE iv[12], tag[16], mct[300], mpt[300];
    p11_gcm_message_params mp = {iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128};
    CK_MECHANISM mgcm = {CKM_AES_GCM, NULL, 0};
    CK_ULONG ml = sizeof mct, mpl = sizeof mpt;
    if ((rv = F3->C_MessageEncryptInit(s, &mgcm, g_aes)) != CKR_OK ||
        (rv = F3->C_EncryptMessage(s, &mp, sizeof mp, aad, sizeof aad, pt, sizeof pt, mct, &ml)) !=
            CKR_OK ||
        (rv = F3->C_MessageEncryptFinal(s)) != CKR_OK)
        return rv;
    mp.ivGenerator = CKG_NO_GENERATE;
    if ((rv = F3->C_MessageDecryptInit(s, &mgcm, g_aes)) != CKR_OK ||
        (rv = F3->C_DecryptMessage(s, &mp, sizeof mp, aad, sizeof aad, mct, ml, mpt, &mpl)) !=
            CKR_OK ||
        (rv = F3->C_MessageDecryptFinal(s)) != CKR_OK)
        return rv;
    if (ml != sizeof pt || mpl != sizeof pt || memcmp(mpt, pt, mpl))
        FAILF("AES-GCM message round trip changed the plaintext");

    /* PKCS#11 3.0 message-based ECDSA: two messages under one init, verified */
    CK_BYTE msig[64], msig2[64], mdg2[32];
    CK_ULONG msl = sizeof msig, msl2 = 10;
    fill(mdg2, sizeof mdg2, seed + 3);
    if ((rv = F3->C_MessageSignInit(s, &ecdsa, g_ec_priv)) != CKR_OK ||
        (rv = F3->C_SignMessage(s, NULL, 0, dg, sizeof dg, msig, &msl)) != CKR_OK)
        return rv;
    if ((rv = F3->C_SignMessage(s, NULL, 0, mdg2, sizeof mdg2, msig2, &msl2)) !=
            CKR_BUFFER_TOO_SMALL ||
        msl2 != 64)
        FAILF("C_SignMessage with a short buffer: 0x%lx, %lu", (unsigned long)rv,
              (unsigned long)msl2);
    if ((rv = F3->C_SignMessage(s, NULL, 0, mdg2, sizeof mdg2, msig2, &msl2)) != CKR_OK ||
        (rv = F3->C_MessageSignFinal(s)) != CKR_OK)
        return rv;
    if ((rv = F3->C_MessageVerifyInit(s, &ecdsa, g_ec_pub)) != CKR_OK)
        return rv;
    if (F3->C_VerifyMessage(s, NULL, 0, dg, sizeof dg, msig, msl) != CKR_OK ||
        F3->C_VerifyMessage(s, NULL, 0, mdg2, sizeof mdg2, msig2, msl2) != CKR_OK ||
        F3->C_VerifyMessage(s, NULL, 0, mdg2, sizeof mdg2, msig, msl) != CKR_SIGNATURE_INVALID)
        FAILF("message-based ECDSA signatures do not verify as they should");
    if ((rv = F3->C_MessageVerifyFinal(s)) != CKR_OK)
        return rv;

    if (seed % 3 == 0 && find_one(s, CKO_SECRET_KEY, "thr-aes") == 0)
        FAILF("search for the AES key found nothing");
    unsigned char rnd[32];
    if ((rv = F->C_GenerateRandom(s, rnd, sizeof rnd)) != CKR_OK)
        return rv;
    atomic_fetch_add(&g_ops, 12);
    return CKR_OK;
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    CK_SESSION_HANDLE s;
    CK_RV rv = F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        FAILF("thread %u: C_OpenSession 0x%lx", id, (unsigned long)rv);
        return NULL;
    }
    for (int i = 0; i < g_iter; i++)
        if ((rv = round_ops(s, id * 1000u + (unsigned)i)) != CKR_OK) {
            FAILF("thread %u round %d: 0x%lx", id, i, (unsigned long)rv);
            break;
        }
    if ((rv = F->C_CloseSession(s)) != CKR_OK)
        FAILF("thread %u: C_CloseSession 0x%lx", id, (unsigned long)rv);
    return NULL;
}

/* The codes a call may give while another thread logs out. */
static int rv_of_ended_login(CK_RV rv)
{
    return rv == CKR_OK || rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_KEY_HANDLE_INVALID ||
           rv == CKR_OPERATION_NOT_INITIALIZED || rv == CKR_OBJECT_HANDLE_INVALID;
}

static void *racer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    CK_SESSION_HANDLE s;
    if (F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
        FAILF("racer %u: C_OpenSession", id);
        return NULL;
    }
    unsigned char dg[32], sig[64];
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    int after = 0;
    while (!atomic_load(&g_stop) || after++ < 3) {
        fill(dg, sizeof dg, id);
        CK_ULONG sl = sizeof sig;
        CK_RV rv = F->C_SignInit(s, &ecdsa, g_ec_priv);
        if (rv == CKR_OK)
            rv = F->C_Sign(s, dg, sizeof dg, sig, &sl);
        if (!rv_of_ended_login(rv)) {
            FAILF("racer %u: 0x%lx during a logout", id, (unsigned long)rv);
            break;
        }
        CK_SESSION_INFO si;
        if (F->C_GetSessionInfo(s, &si) != CKR_OK)
            FAILF("racer %u: C_GetSessionInfo", id);
    }
    F->C_CloseSession(s);
    return NULL;
}

/* The keys the script made (mesatee key create); false if one is missing. */
static bool find_keys(CK_SESSION_HANDLE s0)
{
    g_ec_priv = find_one(s0, CKO_PRIVATE_KEY, "thr-ec");
    g_ec_pub = find_one(s0, CKO_PUBLIC_KEY, "thr-ec");
    g_aes = find_one(s0, CKO_SECRET_KEY, "thr-aes");
    g_rsa_priv = find_one(s0, CKO_PRIVATE_KEY, "thr-rsa");
    g_rsa_pub = find_one(s0, CKO_PUBLIC_KEY, "thr-rsa");
    return g_ec_priv && g_ec_pub && g_aes && g_rsa_priv && g_rsa_pub;
}

static int unhex(const char *h, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sscanf(h + 2 * i, "%2hhx", &out[i]) != 1)
            return -1;
    return 0;
}

/* C_CreateObject of keys with known material, checked against references
 * computed outside the module. */
static void import_checks(CK_SESSION_HANDLE s0)
{
    static const char sk_hex[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    static const char pk_hex[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    static const char sig_hex[] = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                                  "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    static const CK_BYTE ed_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    unsigned char sk[32], pk[32], sig_ref[64];
    if (unhex(sk_hex, sk, 32) || unhex(pk_hex, pk, 32) || unhex(sig_hex, sig_ref, 64)) {
        FAILF("test vectors");
        return;
    }
    char label[48];
    snprintf(label, sizeof label, "thr-imp-ed-%ld", (long)getpid());
    CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC_EDWARDS;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &pc, sizeof pc},         {CKA_KEY_TYPE, &kt, sizeof kt},
                        {CKA_TOKEN, &yes, sizeof yes},       {CKA_SENSITIVE, &yes, sizeof yes},
                        {CKA_LABEL, label, strlen(label)},   {CKA_EC_PARAMS, (void *)ed_oid, sizeof ed_oid},
                        {CKA_VALUE, sk, sizeof sk}};
    CK_OBJECT_HANDLE priv = 0;
    CK_RV rv = F->C_CreateObject(s0, t, sizeof t / sizeof t[0], &priv);
    if (rv != CKR_OK) {
        FAILF("C_CreateObject Ed25519: 0x%lx", (unsigned long)rv);
        return;
    }
    CK_OBJECT_HANDLE pub = find_one(s0, CKO_PUBLIC_KEY, label);
    CK_BYTE pt[40];
    CK_ATTRIBUTE q = {CKA_EC_POINT, pt, sizeof pt};
    if (!pub || F->C_GetAttributeValue(s0, pub, &q, 1) != CKR_OK || q.ulValueLen != 34 ||
        memcmp(pt + 2, pk, 32))
        FAILF("the imported Ed25519 key's public key is not RFC 8032's");
    CK_MECHANISM ed = {CKM_EDDSA, NULL, 0};
    CK_BYTE sig[64];
    CK_ULONG sl = sizeof sig;
    if ((rv = F->C_SignInit(s0, &ed, priv)) != CKR_OK ||
        (rv = F->C_Sign(s0, (CK_BYTE *)"", 0, sig, &sl)) != CKR_OK || sl != 64 ||
        memcmp(sig, sig_ref, 64))
        FAILF("Ed25519 signature of the imported key differs from RFC 8032's (0x%lx)",
              (unsigned long)rv);
    if ((rv = F->C_DestroyObject(s0, priv)) != CKR_ACTION_PROHIBITED)
        FAILF("C_DestroyObject without deletion_allowed: 0x%lx", (unsigned long)rv);
    if ((rv = F->C_DestroyObject(s0, pub)) != CKR_ACTION_PROHIBITED)
        FAILF("C_DestroyObject of a public key: 0x%lx", (unsigned long)rv);
    CK_BBOOL dpriv = 9, dpub = 9;
    CK_ATTRIBUTE qd = {CKA_DESTROYABLE, &dpriv, 1}, qd2 = {CKA_DESTROYABLE, &dpub, 1};
    if (F->C_GetAttributeValue(s0, priv, &qd, 1) != CKR_OK || dpriv != CK_TRUE ||
        F->C_GetAttributeValue(s0, pub, &qd2, 1) != CKR_OK || dpub != CK_FALSE)
        FAILF("CKA_DESTROYABLE: private %d, public %d", dpriv, dpub);
    CK_ATTRIBUTE nl = {CKA_LABEL, "other", 5};
    CK_OBJECT_HANDLE copy = 0;
    if ((rv = F->C_SetAttributeValue(s0, priv, &nl, 1)) != CKR_ACTION_PROHIBITED)
        FAILF("C_SetAttributeValue: 0x%lx", (unsigned long)rv);
    if ((rv = F->C_CopyObject(s0, priv, &nl, 1, &copy)) != CKR_ACTION_PROHIBITED)
        FAILF("C_CopyObject: 0x%lx", (unsigned long)rv);
    CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tp[] = {{CKA_CLASS, &pubc, sizeof pubc}, {CKA_KEY_TYPE, &kt, sizeof kt},
                         {CKA_LABEL, "thr-pub", 7}, {CKA_EC_PARAMS, (void *)ed_oid, sizeof ed_oid},
                         {CKA_EC_POINT, pt, 34}};
    if ((rv = F->C_CreateObject(s0, tp, 5, &copy)) != CKR_ATTRIBUTE_VALUE_INVALID)
        FAILF("C_CreateObject of a public key: 0x%lx", (unsigned long)rv);
    OPENSSL_cleanse(sk, sizeof sk);

    /* AES-256: the module's ciphertext decrypts with OpenSSL and the key bytes */
    unsigned char key[32];
    fill(key, sizeof key, 77);
    snprintf(label, sizeof label, "thr-imp-aes-%ld", (long)getpid());
    CK_OBJECT_CLASS sc = CKO_SECRET_KEY;
    CK_KEY_TYPE ak = CKK_AES;
    CK_ATTRIBUTE ta[] = {{CKA_CLASS, &sc, sizeof sc},       {CKA_KEY_TYPE, &ak, sizeof ak},
                         {CKA_TOKEN, &yes, sizeof yes},     {CKA_SENSITIVE, &yes, sizeof yes},
                         {CKA_LABEL, label, strlen(label)}, {CKA_VALUE, key, sizeof key}};
    CK_OBJECT_HANDLE sk_h = 0;
    if ((rv = F->C_CreateObject(s0, ta, sizeof ta / sizeof ta[0], &sk_h)) != CKR_OK) {
        FAILF("C_CreateObject AES: 0x%lx", (unsigned long)rv);
        return;
    }
    CK_BYTE msg[] = "imported key", aad[] = "ad", ct[64], back[64];
    CK_GCM_PARAMS gp = {NULL, 0, 0, aad, sizeof aad, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof gp};
    CK_ULONG cl = sizeof ct;
    if ((rv = F->C_EncryptInit(s0, &gcm, sk_h)) != CKR_OK ||
        (rv = F->C_Encrypt(s0, msg, sizeof msg, ct, &cl)) != CKR_OK || cl != sizeof msg + 28) {
        FAILF("encrypt with the imported AES key: 0x%lx", (unsigned long)rv);
        return;
    }
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0, ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, ct) == 1 &&
                          EVP_DecryptUpdate(c, NULL, &n1, aad, sizeof aad) == 1 &&
                          EVP_DecryptUpdate(c, back, &n1, ct + 12, (int)sizeof msg) == 1 &&
                          EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
                                              ct + 12 + sizeof msg) == 1 &&
                          EVP_DecryptFinal_ex(c, back + n1, &n2) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok || n1 + n2 != (int)sizeof msg || memcmp(back, msg, sizeof msg))
        FAILF("OpenSSL does not decrypt the imported AES key's ciphertext with the key bytes");
    fprintf(stderr, "imports: Ed25519 matches RFC 8032, AES ciphertext decrypts with OpenSSL\n");
}

static CK_RV login(CK_SESSION_HANDLE s)
{
    return F->C_Login(s, CKU_USER, (CK_UTF8CHAR *)g_pin, strlen(g_pin));
}

int main(int argc, char **argv)
{
    g_pin = getenv("P11_PIN");
    if (argc != 2 || !g_pin) {
        fprintf(stderr, "usage: P11_PIN=... %s MODULE.so\n", argv[0]);
        return 2;
    }
    int nthreads = getenv("P11_THREADS") ? atoi(getenv("P11_THREADS")) : 8;
    if (getenv("P11_ITER"))
        g_iter = atoi(getenv("P11_ITER"));
    if (nthreads < 2 || nthreads > 64 || g_iter < 1)
        return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CK_RV (*get_list)(CK_FUNCTION_LIST **) = NULL;
    if (lib)
        *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    CK_RV (*get_iface)(CK_UTF8CHAR *, CK_VERSION *, p11_interface **, CK_FLAGS) = NULL;
    if (lib)
        *(void **)&get_iface = dlsym(lib, "C_GetInterface");
    p11_interface *ifc = NULL;
    CK_VERSION v30 = {3, 0};
    if (!get_iface || get_iface(NULL, &v30, &ifc, 0) != CKR_OK || !ifc) {
        fprintf(stderr, "no PKCS#11 3.0 interface in %s\n", argv[1]);
        return 2;
    }
    F3 = ifc->pFunctionList;
    if (!get_list || get_list(&F) != CKR_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], lib ? "no function list" : dlerror());
        return 2;
    }
    /* application locking functions without the OS's: refused */
    CK_C_INITIALIZE_ARGS bad = {0};
    bad.CreateMutex = (CK_CREATEMUTEX)1;
    bad.DestroyMutex = (CK_DESTROYMUTEX)1;
    bad.LockMutex = (CK_LOCKMUTEX)1;
    bad.UnlockMutex = (CK_UNLOCKMUTEX)1;
    if (F->C_Initialize(&bad) != CKR_CANT_LOCK)
        FAILF("application locks without CKF_OS_LOCKING_OK were not refused");
    CK_C_INITIALIZE_ARGS ia = {0};
    ia.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = F->C_Initialize(&ia);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_Initialize: 0x%lx\n", (unsigned long)rv);
        return 1;
    }
    CK_SESSION_HANDLE s0;
    if (F->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s0) != CKR_OK ||
        (rv = login(s0)) != CKR_OK) {
        fprintf(stderr, "login: 0x%lx\n", (unsigned long)rv);
        return 1;
    }
    if (!find_keys(s0)) {
        fprintf(stderr, "keys thr-ec, thr-aes, thr-rsa not found\n");
        return 1;
    }

    import_checks(s0);
    pthread_t th[64];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) != 0)
            return 1;
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    int want = nthreads * g_iter * 12;
    if (atomic_load(&g_ops) != want)
        FAILF("%d of %d operations completed", atomic_load(&g_ops), want);
    fprintf(stderr, "%d threads x %d rounds: %d operations checked\n", nthreads, g_iter,
            atomic_load(&g_ops));

    /* logout while other sessions sign */
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, racer, (void *)(uintptr_t)i) != 0)
            return 1;
    usleep(200 * 1000);
    if ((rv = F->C_Logout(s0)) != CKR_OK)
        FAILF("C_Logout during signing: 0x%lx", (unsigned long)rv);
    atomic_store(&g_stop, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    CK_SESSION_INFO si;
    if (F->C_GetSessionInfo(s0, &si) != CKR_OK || si.state != CKS_RW_PUBLIC_SESSION)
        FAILF("session state after logout");
    /* log in again: the objects come back with usable handles */
    if ((rv = login(s0)) != CKR_OK)
        FAILF("second login: 0x%lx", (unsigned long)rv);
    if (!find_keys(s0) || round_ops(s0, 4242) != CKR_OK)
        FAILF("operations after a second login");
    /* C_CloseAllSessions from another thread's view: every handle is gone */
    if (F->C_CloseAllSessions(0) != CKR_OK)
        FAILF("C_CloseAllSessions");
    if (F->C_GetSessionInfo(s0, &si) != CKR_SESSION_HANDLE_INVALID)
        FAILF("a closed session still answers");
    if (F->C_Finalize(NULL) != CKR_OK)
        FAILF("C_Finalize");
    int f = atomic_load(&g_fail);
    fprintf(stderr, "%s: %d failures\n", f ? "FAIL" : "PASS", f);
    return f ? 1 : 0;
}
