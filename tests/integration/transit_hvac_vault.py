"""Vault transit features beyond the first transit API, driven by an
unmodified python3-hvac (issue 10, docs/keystore.md): ecdsa-p521; exportable
keys and export of encryption, signing, HMAC and public keys; plaintext
backup and restore (with force, into the caller's namespace only); trim;
derived keys (a context per request, batch items included) and convergent
encryption. Every result is checked independently with python3-cryptography
(exported keys decrypt and verify what the server made; the derived key and
the convergent nonce are recomputed from the exported base key as
docs/keystore.md documents them), plus the bad-input cases of each.

Environment: MT_URL, MT_CA, MT_ALICE_TOKEN, MT_BOB_TOKEN (as transit_hvac.py).
"""
import base64
import hashlib
import hmac as pyhmac
import os
import struct
import sys

import hvac
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# hvac's default read timeout is 30 s; an RSA-4096 key generation alone took
# longer than that on a loaded 2-core machine (load 13): generous, not a bound
HTTP_TIMEOUT_S = 600

FAILS = []


def need(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg, file=sys.stderr)
    else:
        print("ok -", msg)


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s)


def client(token_file):
    tok = open(token_file).read().strip()
    return hvac.Client(url=os.environ["MT_URL"], token=tok, verify=os.environ["MT_CA"],
                       timeout=HTTP_TIMEOUT_S)


def expect(exc_type, fn, what, words=None):
    try:
        fn()
    except exc_type as e:
        errs = getattr(e, "errors", None) or []
        need(bool(errs) and (words is None or any(words in m for m in errs)),
             f"{what}: {exc_type.__name__} with errors {errs}")
        return
    except Exception as e:  # noqa: BLE001
        need(False, f"{what}: expected {exc_type.__name__}, got {e!r}")
        return
    need(False, f"{what}: expected {exc_type.__name__}, but it succeeded")


def body(ct):
    return unb64(ct.split(":", 2)[2])


def derive(base, ctx):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mesatee-transit-derived/v1",
                info=ctx).derive(base)


def main():
    alice = client(os.environ["MT_ALICE_TOKEN"])
    bob = client(os.environ["MT_BOB_TOKEN"])
    t = alice.secrets.transit
    tb = bob.secrets.transit
    msg = b"attack at dawn"

    # ---- ecdsa-p521: create, read, sign, verify, rotate -----------------------------------
    r = t.create_key(name="p521", key_type="ecdsa-p521")["data"]
    need(r["type"] == "ecdsa-p521" and r["keys"]["1"]["name"] == "P-521", "create ecdsa-p521")
    pub1 = serialization.load_pem_public_key(r["keys"]["1"]["public_key"].encode())
    need(isinstance(pub1.curve, ec.SECP521R1), "ecdsa-p521 public key is on P-521")
    s1 = t.sign_data(name="p521", hash_input=b64(msg), hash_algorithm="sha2-512")["data"]
    pub1.verify(body(s1["signature"]), msg, ec.ECDSA(hashes.SHA512()))
    need(t.verify_signed_data(name="p521", hash_input=b64(msg), signature=s1["signature"],
                              hash_algorithm="sha2-512")["data"]["valid"] is True,
         "ecdsa-p521 sign/verify: server and python3-cryptography agree")
    t.rotate_key(name="p521")
    r = t.read_key(name="p521")["data"]
    pub2 = serialization.load_pem_public_key(r["keys"]["2"]["public_key"].encode())
    s2 = t.sign_data(name="p521", hash_input=b64(msg), marshaling_algorithm="jws")["data"]
    raw = base64.urlsafe_b64decode(s2["signature"].split(":", 2)[2] + "==")
    need(s2["signature"].startswith("vault:v2:") and len(raw) == 132,
         "ecdsa-p521 after rotate: version 2, jws r||s of 132 bytes")
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    pub2.verify(encode_dss_signature(int.from_bytes(raw[:66], "big"),
                                     int.from_bytes(raw[66:], "big")), msg,
                ec.ECDSA(hashes.SHA256()))
    need(t.verify_signed_data(name="p521", hash_input=b64(msg), signature=s1["signature"],
                              hash_algorithm="sha2-512")["data"]["valid"] is True,
         "ecdsa-p521 v1 signature still verifies after rotate")

    # ---- export ------------------------------------------------------------------------------
    t.create_key(name="ex-aes")
    ct = t.encrypt_data(name="ex-aes", plaintext=b64(msg))["data"]["ciphertext"]
    expect(hvac.exceptions.Forbidden,
           lambda: t.export_key(name="ex-aes", key_type="encryption-key"),
           "export of a key that is not exportable: 403", "not exportable")
    r = t.update_key_configuration(name="ex-aes", exportable=True)
    need(r["data"]["exportable"] is True, "exportable turned on by config")
    ek = t.export_key(name="ex-aes", key_type="encryption-key")["data"]
    k1 = unb64(ek["keys"]["1"])
    b = body(ct)
    need(ek["name"] == "ex-aes" and ek["type"] == "aes256-gcm96" and
         AESGCM(k1).decrypt(b[:12], b[12:], None) == msg,
         "export encryption-key: the key decrypts the server's ciphertext")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.update_key_configuration(name="ex-aes", exportable=False),
           "exportable cannot be turned off", "cannot be disabled")
    hk = unb64(t.export_key(name="ex-aes", key_type="hmac-key")["data"]["keys"]["1"])
    mac = t.generate_hmac(name="ex-aes", hash_input=b64(msg), algorithm="sha2-256")["data"]["hmac"]
    need(body(mac) == pyhmac.new(hk, msg, hashlib.sha256).digest(),
         "export hmac-key: the key makes the server's HMAC")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.export_key(name="ex-aes", key_type="signing-key"),
           "export signing-key of an aes key: 400", "no signing-key")
    t.rotate_key(name="ex-aes")
    ek = t.export_key(name="ex-aes", key_type="encryption-key")["data"]["keys"]
    need(sorted(ek) == ["1", "2"], "export: every version")
    latest = t.export_key(name="ex-aes", key_type="encryption-key", version="latest")["data"]["keys"]
    one = t.export_key(name="ex-aes", key_type="encryption-key", version="1")["data"]["keys"]
    need(list(latest) == ["2"] and latest["2"] == ek["2"] and list(one) == ["1"],
         "export: version latest and version 1")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.export_key(name="ex-aes", key_type="encryption-key", version="9"),
           "export of a version that does not exist", "does not exist")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.export_key(name="ex-aes", key_type="encryption-key", version="x1"),
           "export of a garbage version", "version")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.get("/v1/transit/export/private-key/ex-aes"),
           "export of an unknown kind", "export kind")
    t.create_key(name="ex-ec", key_type="ecdsa-p256", exportable=True)
    sk = t.export_key(name="ex-ec", key_type="signing-key")["data"]["keys"]["1"]
    priv = serialization.load_pem_private_key(sk.encode(), password=None)
    sig = t.sign_data(name="ex-ec", hash_input=b64(msg))["data"]["signature"]
    priv.public_key().verify(body(sig), msg, ec.ECDSA(hashes.SHA256()))
    need("BEGIN EC PRIVATE KEY" in sk, "export signing-key (ecdsa): EC PRIVATE KEY that "
         "verifies the server's signature")
    pk = alice.adapter.get("/v1/transit/export/public-key/ex-ec")["data"]["keys"]["1"]
    need(pk == t.read_key(name="ex-ec")["data"]["keys"]["1"]["public_key"],
         "export public-key equals read_key's public key")
    t.create_key(name="ex-rsa", key_type="rsa-2048", exportable=True)
    rct = t.encrypt_data(name="ex-rsa", plaintext=b64(msg))["data"]["ciphertext"]
    rk = serialization.load_pem_private_key(
        t.export_key(name="ex-rsa", key_type="encryption-key")["data"]["keys"]["1"].encode(),
        password=None)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    need(rk.decrypt(body(rct), oaep) == msg, "export encryption-key (rsa): decrypts RSA-OAEP")
    # a grantee with "read" may export the public key, never the private one
    alice.adapter.post("/v1/transit/keys/ex-ec/grants", json={"user": "bob", "operations": ["read"]})
    pk_b = bob.adapter.get("/v1/transit/export/public-key/alice:ex-ec")["data"]["keys"]["1"]
    need(pk_b == pk, "bob (read grant) exports alice's public key")
    expect(hvac.exceptions.Forbidden,
           lambda: tb.export_key(name="alice:ex-ec", key_type="signing-key"),
           "bob may not export alice's private key", "owner")
    expect(hvac.exceptions.InvalidPath,
           lambda: tb.export_key(name="alice:ex-aes", key_type="encryption-key"),
           "bob without a grant: the same 404 as a missing key", "no such key")
    alice.adapter.delete("/v1/transit/keys/ex-ec/grants/bob")

    # ---- backup / restore ----------------------------------------------------------------------
    t.create_key(name="bk", key_type="chacha20-poly1305")
    c1 = t.encrypt_data(name="bk", plaintext=b64(b"one"))["data"]["ciphertext"]
    t.rotate_key(name="bk")
    c2 = t.encrypt_data(name="bk", plaintext=b64(b"two"))["data"]["ciphertext"]
    expect(hvac.exceptions.Forbidden, lambda: t.backup_key(name="bk"),
           "backup without exportable/allow_plaintext_backup: 403", "allow_plaintext_backup")
    t.update_key_configuration(name="bk", exportable=True, allow_plaintext_backup=True,
                               min_decryption_version=1)
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.update_key_configuration(name="bk", allow_plaintext_backup=False),
           "allow_plaintext_backup cannot be turned off", "cannot be disabled")
    bk = t.backup_key(name="bk")["data"]["backup"]
    t.restore_key(backup=bk, name="bk-copy")
    need(unb64(t.decrypt_data(name="bk-copy", ciphertext=c1)["data"]["plaintext"]) == b"one" and
         unb64(t.decrypt_data(name="bk-copy", ciphertext=c2)["data"]["plaintext"]) == b"two",
         "restore under another name: both versions decrypt")
    rc = t.read_key(name="bk-copy")["data"]
    need(rc["latest_version"] == 2 and rc["type"] == "chacha20-poly1305" and
         rc["allow_plaintext_backup"] is True and rc["exportable"] is True,
         "restored key keeps type, versions and flags")
    expect(hvac.exceptions.InvalidRequest, lambda: t.restore_key(backup=bk, name="bk"),
           "restore over an existing key without force", "force")
    t.rotate_key(name="bk")
    t.restore_key(backup=bk, name="bk", force=True)
    need(t.read_key(name="bk")["data"]["latest_version"] == 2, "restore with force replaces the key")
    alice.adapter.post("/v1/transit/keys/bk-copy/config", json={"deletion_allowed": True})
    t.delete_key(name="bk-copy")
    expect(hvac.exceptions.InvalidRequest, lambda: t.restore_key(backup=bk),
           "restore without a name: the backup's own name, which exists", "force")
    raw_bk = unb64(bk)
    for what, bad in (("garbage", b64(b"not a backup at all, no")),
                      ("truncated", b64(raw_bk[:-5])),
                      ("one flipped bit", b64(raw_bk[:40] + bytes([raw_bk[40] ^ 1]) + raw_bk[41:])),
                      ("not base64", "%%%")):
        expect(hvac.exceptions.InvalidRequest, lambda bad=bad: t.restore_key(backup=bad, name="bk-bad"),
               f"restore of a {what} backup", "backup")
    expect(hvac.exceptions.InvalidPath, lambda: t.read_key(name="bk-bad"),
           "nothing was written by the refused restores")
    expect(hvac.exceptions.Forbidden, lambda: tb.restore_key(backup=bk, name="alice:bk-x"),
           "bob may not restore into alice's namespace", "your own name")
    tb.restore_key(backup=bk, name="mine")
    need(unb64(tb.decrypt_data(name="mine", ciphertext=c2)["data"]["plaintext"]) == b"two",
         "bob restores a backup he was given into his own namespace")
    expect(hvac.exceptions.InvalidPath, lambda: t.read_key(name="mine"),
           "bob's restored key is not alice's")
    bob.adapter.post("/v1/transit/keys/mine/config", json={"deletion_allowed": True})
    tb.delete_key(name="mine")  # bob has no keys again (transit_libmesatee.py expects that)

    # ---- trim -------------------------------------------------------------------------------------
    t.create_key(name="tr")
    cts = {}
    for v in range(1, 5):
        if v > 1:
            t.rotate_key(name="tr")
        cts[v] = t.encrypt_data(name="tr", plaintext=b64(msg))["data"]["ciphertext"]
    expect(hvac.exceptions.InvalidRequest, lambda: t.trim_key(name="tr", min_version=2),
           "trim while min_encryption_version is 0", "min_encryption_version")
    t.update_key_configuration(name="tr", min_decryption_version=3, min_encryption_version=4)
    expect(hvac.exceptions.InvalidRequest, lambda: t.trim_key(name="tr", min_version=4),
           "trim above min_decryption_version", "above")
    t.trim_key(name="tr", min_version=2)
    r = t.read_key(name="tr")["data"]
    need(r["min_available_version"] == 2 and sorted(r["keys"]) == ["2", "3", "4"],
         "trim: version 1 is gone, min_available_version 2")
    expect(hvac.exceptions.InvalidRequest, lambda: t.trim_key(name="tr", min_version=1),
           "trim cannot go back", "decremented")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/keys/tr/trim", json={"min_available_version": "x"}),
           "trim with a garbage version", "min_available_version")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.update_key_configuration(name="tr", min_decryption_version=1),
           "min_decryption_version below min_available_version", "trimmed")
    t.update_key_configuration(name="tr", min_decryption_version=2)
    expect(hvac.exceptions.InvalidRequest, lambda: t.decrypt_data(name="tr", ciphertext=cts[1]),
           "a ciphertext of a trimmed version does not decrypt")
    need(unb64(t.decrypt_data(name="tr", ciphertext=cts[2])["data"]["plaintext"]) == msg,
         "version 2 still decrypts after trim")

    # ---- derived keys ---------------------------------------------------------------------------------
    r = t.create_key(name="dv", derived=True, exportable=True)["data"]
    need(r["derived"] is True and r["supports_derivation"] is True and r.get("kdf") == "hkdf_sha256",
         "create derived key")
    c_a = b64(b"tenant-a")
    c_b = b64(b"tenant-b")
    expect(hvac.exceptions.InvalidRequest, lambda: t.encrypt_data(name="dv", plaintext=b64(msg)),
           "derived key without context", "context")
    e1 = t.encrypt_data(name="dv", plaintext=b64(msg), context=c_a)["data"]["ciphertext"]
    e2 = t.encrypt_data(name="dv", plaintext=b64(msg), context=c_a)["data"]["ciphertext"]
    need(e1 != e2, "derived, not convergent: two encryptions differ")
    need(unb64(t.decrypt_data(name="dv", ciphertext=e1, context=c_a)["data"]["plaintext"]) == msg,
         "derived key: decrypt with the same context")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="dv", ciphertext=e1, context=c_b),
           "derived key: another context does not decrypt", "decryption failed")
    base = unb64(t.export_key(name="dv", key_type="encryption-key")["data"]["keys"]["1"])
    b = body(e1)
    need(AESGCM(derive(base, b"tenant-a")).decrypt(b[:12], b[12:], None) == msg,
         "derived key is HKDF-SHA256(base, salt, context) as documented")
    try:
        t.encrypt_data(name="dv", plaintext="", batch_input=[
            {"plaintext": b64(b"x"), "context": c_a}, {"plaintext": b64(b"z")}])
        need(False, "batch item without context must fail")
    except hvac.exceptions.InvalidRequest:
        need(True, "batch item without context: 400")
    res = t.encrypt_data(name="dv", plaintext="", batch_input=[
        {"plaintext": b64(b"x"), "context": c_a}, {"plaintext": b64(b"y"), "context": c_b}])
    bi = [{"ciphertext": x["ciphertext"], "context": c} for x, c in
          zip(res["data"]["batch_results"], (c_a, c_b))]
    dr = t.decrypt_data(name="dv", ciphertext="", batch_input=bi)["data"]["batch_results"]
    need([unb64(x["plaintext"]) for x in dr] == [b"x", b"y"], "derived key: batch with contexts")
    t.rotate_key(name="dv")
    rw = t.rewrap_data(name="dv", ciphertext=e1, context=c_a)["data"]["ciphertext"]
    need(rw.startswith("vault:v2:") and
         unb64(t.decrypt_data(name="dv", ciphertext=rw, context=c_a)["data"]["plaintext"]) == msg,
         "derived key: rewrap with context")
    dk = t.generate_data_key(name="dv", key_type="plaintext", context=c_a)["data"]
    need(unb64(t.decrypt_data(name="dv", ciphertext=dk["ciphertext"], context=c_a)["data"]["plaintext"])
         == unb64(dk["plaintext"]), "derived key: datakey with context")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.generate_data_key(name="dv", key_type="wrapped"),
           "derived key: datakey without context", "context")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="ex-aes", plaintext=b64(msg), context=c_a),
           "context on a key that is not derived", "not derived")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="dv", plaintext=b64(msg), context="%%"),
           "context that is not base64", "context")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="dv", plaintext=b64(msg), context=c_a, nonce=b64(b"n" * 12)),
           "a nonce is refused", "nonce")

    # ---- convergent encryption ----------------------------------------------------------------------
    r = t.create_key(name="cv", key_type="chacha20-poly1305", derived=True,
                     convergent_encryption=True, exportable=True)["data"]
    need(r["convergent_encryption"] is True, "create convergent key")
    x1 = t.encrypt_data(name="cv", plaintext=b64(msg), context=c_a)["data"]["ciphertext"]
    x2 = t.encrypt_data(name="cv", plaintext=b64(msg), context=c_a)["data"]["ciphertext"]
    x3 = t.encrypt_data(name="cv", plaintext=b64(msg), context=c_b)["data"]["ciphertext"]
    x4 = t.encrypt_data(name="cv", plaintext=b64(b"other"), context=c_a)["data"]["ciphertext"]
    need(x1 == x2 and x1 != x3 and body(x1)[:12] != body(x4)[:12],
         "convergent: same plaintext and context, same ciphertext; otherwise not")
    base = unb64(t.export_key(name="cv", key_type="encryption-key")["data"]["keys"]["1"])
    dkey = derive(base, b"tenant-a")
    nk = pyhmac.new(dkey, b"mesatee-transit-convergent-nonce/v1", hashlib.sha256).digest()
    nonce = pyhmac.new(nk, struct.pack(">Q", 8) + b"tenant-a" + struct.pack(">Q", 0) + msg,
                       hashlib.sha256).digest()[:12]
    need(body(x1) == nonce + ChaCha20Poly1305(dkey).encrypt(nonce, msg, None),
         "convergent ciphertext recomputed from the documented construction")
    need(unb64(t.decrypt_data(name="cv", ciphertext=x1, context=c_a)["data"]["plaintext"]) == msg,
         "convergent: decrypt")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
