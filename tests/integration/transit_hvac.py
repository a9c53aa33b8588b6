"""An unmodified Vault client (Debian's python3-hvac) against mesatee's
KeyStore transit API (issue 10, docs/keystore.md): every transit method hvac
has, plus import (Vault BYOK; hvac 0.11.2 has no import method, so that part
goes through hvac's own adapter on the same paths), grants, and bad input:
wrong key type, wrong and too-old versions, tampered ciphertext, an
oversized batch, another user's key, unknown algorithms -- each a clear 4xx
with Vault's {"errors": [...]}, and the key's state unchanged afterwards.

Environment: MT_URL, MT_CA (the server's certificate: TLS is verified),
MT_ALICE_TOKEN, MT_BOB_TOKEN (files holding mesatee tokens).
"""
import base64
import os
import sys

import hvac
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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


def expect(exc_type, fn, what, status_words=None, empty_ok=False):
    """fn must raise exc_type (an hvac exception) carrying Vault's errors."""
    try:
        fn()
    except exc_type as e:
        errs = getattr(e, "errors", None)
        ok = (bool(errs) or (empty_ok and errs == [])) and (status_words is None or any(status_words in m for m in errs))
        need(ok, f"{what}: {exc_type.__name__} with errors {errs}")
        return
    except Exception as e:  # noqa: BLE001
        need(False, f"{what}: expected {exc_type.__name__}, got {e!r}")
        return
    need(False, f"{what}: expected {exc_type.__name__}, but it succeeded")


def wrap_for_import(pem, material):
    """Vault's BYOK format made by python3-cryptography, not by mesatee."""
    pub = serialization.load_pem_public_key(pem.encode())
    eph = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return pub.encrypt(eph, oaep) + aes_key_wrap_with_padding(eph, material)


def main():
    alice = client(os.environ["MT_ALICE_TOKEN"])
    bob = client(os.environ["MT_BOB_TOKEN"])
    t = alice.secrets.transit
    tb = bob.secrets.transit
    msg = b"attack at dawn"

    # ---- create / read / list (LIST method) ------------------------------------
    types = ["aes256-gcm96", "chacha20-poly1305", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
             "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"]
    for ty in types:
        r = t.create_key(name="k-" + ty, key_type=ty)
        need(r["data"]["type"] == ty and r["data"]["latest_version"] == 1, f"create_key {ty}")
    r = alice.adapter.post("/v1/transit/keys/k-hmac", json={"type": "hmac"})
    need(r["data"]["type"] == "hmac", "create hmac key (type not in hvac's list: via adapter)")
    r = t.read_key(name="k-ecdsa-p256")
    v1 = r["data"]["keys"]["1"]
    need(v1["name"] == "P-256" and "BEGIN PUBLIC KEY" in v1["public_key"], "read_key: public part")
    need(r["data"]["exportable"] is False, "read_key: not exportable")
    flat = repr(r)
    need("PRIVATE" not in flat, "read_key: no private key material")
    sym = t.read_key(name="k-aes256-gcm96")["data"]["keys"]
    need(isinstance(sym["1"], int), "read_key (symmetric): only a creation time per version")
    lk = t.list_keys()["data"]["keys"]
    need(set(lk) == {"k-" + ty for ty in types} | {"k-hmac"}, f"list_keys (LIST): {lk}")
    expect(hvac.exceptions.InvalidPath, lambda: tb.list_keys(), "list_keys with no keys: 404 like Vault",
           empty_ok=True)

    # ---- encrypt / decrypt / rewrap, AAD, batch ------------------------------------
    for ty in ("aes256-gcm96", "chacha20-poly1305"):
        name = "k-" + ty
        ct = t.encrypt_data(name=name, plaintext=b64(msg))["data"]["ciphertext"]
        need(ct.startswith("vault:v1:"), f"encrypt_data {ty}: {ct[:12]}")
        pt = t.decrypt_data(name=name, ciphertext=ct)["data"]["plaintext"]
        need(unb64(pt) == msg, f"decrypt_data {ty}")
    name = "k-aes256-gcm96"
    ad = b64(b"header")
    r = alice.adapter.post("/v1/transit/encrypt/" + name,
                           json={"plaintext": b64(msg), "associated_data": ad})
    ct_ad = r["data"]["ciphertext"]
    r = alice.adapter.post("/v1/transit/decrypt/" + name,
                           json={"ciphertext": ct_ad, "associated_data": ad})
    need(unb64(r["data"]["plaintext"]) == msg, "decrypt with associated_data")
    expect(hvac.exceptions.InvalidRequest, lambda: t.decrypt_data(name=name, ciphertext=ct_ad),
           "decrypt without the associated_data fails", "decryption failed")
    # the ciphertext is AES-256-GCM in Vault's layout: nonce || ct || tag
    raw = unb64(ct_ad.split(":", 2)[2])
    need(len(raw) == 12 + len(msg) + 16, "ciphertext layout nonce(12) || ct || tag(16)")
    batch = [{"plaintext": b64(b"one"), "reference": "a"}, {"plaintext": b64(b"two")}]
    r = t.encrypt_data(name=name, plaintext="", batch_input=batch)
    res = r["data"]["batch_results"]
    need(len(res) == 2 and res[0]["reference"] == "a", "encrypt_data batch_input")
    r = t.decrypt_data(name=name, ciphertext="", batch_input=[{"ciphertext": x["ciphertext"]} for x in res])
    need([unb64(x["plaintext"]) for x in r["data"]["batch_results"]] == [b"one", b"two"],
         "decrypt_data batch_input")
    ct1 = t.encrypt_data(name=name, plaintext=b64(msg))["data"]["ciphertext"]
    r = t.rotate_key(name=name)
    need(r["data"]["latest_version"] == 2, "rotate_key")
    rw = t.rewrap_data(name=name, ciphertext=ct1)["data"]
    need(rw["ciphertext"].startswith("vault:v2:") and rw["key_version"] == 2, "rewrap_data to v2")
    need(unb64(t.decrypt_data(name=name, ciphertext=rw["ciphertext"])["data"]["plaintext"]) == msg,
         "decrypt the rewrapped ciphertext")
    r = t.encrypt_data(name=name, plaintext=b64(msg), key_version=1)["data"]
    need(r["ciphertext"].startswith("vault:v1:"), "encrypt_data with key_version=1")

    # ---- datakey ----------------------------------------------------------------------
    r = t.generate_data_key(name=name, key_type="plaintext", bits=256)["data"]
    dk = unb64(r["plaintext"])
    need(len(dk) == 32, "generate_data_key plaintext")
    back = unb64(t.decrypt_data(name=name, ciphertext=r["ciphertext"])["data"]["plaintext"])
    need(back == dk, "the data key's ciphertext decrypts to it")
    r = t.generate_data_key(name=name, key_type="wrapped", bits=512)["data"]
    need("plaintext" not in r and r["ciphertext"].startswith("vault:v2:"), "generate_data_key wrapped")

    # ---- RSA keys encrypt too: RSA-OAEP with SHA-256 / MGF1-SHA-256, like Vault -------------
    for ty in ("rsa-2048", "rsa-3072", "rsa-4096"):
        rd = t.read_key(name="k-" + ty)["data"]
        need(rd["supports_encryption"] is True and rd["supports_decryption"] is True
             and rd["supports_signing"] is True, f"read_key {ty}: supports_encryption/decryption")
        ct = t.encrypt_data(name="k-" + ty, plaintext=b64(msg))["data"]["ciphertext"]
        need(ct.startswith("vault:v1:") and len(unb64(ct.split(":", 2)[2])) * 8 == int(ty[4:]),
             f"encrypt_data {ty}: one modulus of OAEP ciphertext")
        need(unb64(t.decrypt_data(name="k-" + ty, ciphertext=ct)["data"]["plaintext"]) == msg,
             f"decrypt_data {ty}")
    need(t.read_key(name="k-ecdsa-p256")["data"]["supports_encryption"] is False,
         "read_key ecdsa-p256: no encryption")
    # a ciphertext made by python3-cryptography with the public key from read_key
    t.create_key(name="k-rsa-enc", key_type="rsa-2048")
    pub = serialization.load_pem_public_key(
        t.read_key(name="k-rsa-enc")["data"]["keys"]["1"]["public_key"].encode())
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None)
    ext = "vault:v1:" + b64(pub.encrypt(msg, oaep))
    need(unb64(t.decrypt_data(name="k-rsa-enc", ciphertext=ext)["data"]["plaintext"]) == msg,
         "decrypt of a python3-cryptography RSA-OAEP-SHA256 ciphertext")
    bad = bytearray(unb64(ext[9:]))
    bad[7] ^= 1
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="k-rsa-enc", ciphertext="vault:v1:" + b64(bytes(bad))),
           "tampered RSA ciphertext", "decryption failed")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/encrypt/k-rsa-enc",
                                      json={"plaintext": b64(msg), "associated_data": b64(b"h")}),
           "associated_data with an RSA key", "associated_data is not supported")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="k-rsa-enc", plaintext=b64(b"x" * 191)),
           "plaintext over the OAEP limit", "at most 190 bytes")
    r = t.encrypt_data(name="k-rsa-enc", plaintext="",
                       batch_input=[{"plaintext": b64(b"one")}, {"plaintext": b64(b"two")}])
    res = r["data"]["batch_results"]
    r = t.decrypt_data(name="k-rsa-enc", ciphertext="",
                       batch_input=[{"ciphertext": x["ciphertext"]} for x in res])
    need([unb64(x["plaintext"]) for x in r["data"]["batch_results"]] == [b"one", b"two"],
         "RSA encrypt/decrypt batch_input")
    t.rotate_key(name="k-rsa-enc")
    rw = t.rewrap_data(name="k-rsa-enc", ciphertext=ext)["data"]
    need(rw["ciphertext"].startswith("vault:v2:"), "rewrap_data RSA to v2")
    need(unb64(t.decrypt_data(name="k-rsa-enc", ciphertext=rw["ciphertext"])["data"]["plaintext"])
         == msg, "decrypt the rewrapped RSA ciphertext")
    t.update_key_configuration(name="k-rsa-enc", min_decryption_version=2)
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="k-rsa-enc", ciphertext=ext),
           "RSA v1 ciphertext below min_decryption_version", "disallowed by policy")
    r = t.generate_data_key(name="k-rsa-enc", key_type="plaintext", bits=256)["data"]
    need(r["ciphertext"].startswith("vault:v2:") and
         unb64(t.decrypt_data(name="k-rsa-enc", ciphertext=r["ciphertext"])["data"]["plaintext"])
         == unb64(r["plaintext"]), "generate_data_key with an RSA key")

    # ---- sign / verify, checked with python3-cryptography ------------------------------------
    for ty in ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa-2048", "rsa-3072",
               "rsa-4096"):
        name = "k-" + ty
        info = t.read_key(name=name)["data"]["keys"]["1"]
        if ty == "ed25519":
            pub = ed25519.Ed25519PublicKey.from_public_bytes(unb64(info["public_key"]))
        else:
            pub = serialization.load_pem_public_key(info["public_key"].encode())
        algs = ["sha2-256"] if ty == "ed25519" else ["sha2-256", "sha2-384", "sha2-512"]
        for alg in algs:
            sigalgs = ["pss", "pkcs1v15"] if ty.startswith("rsa") else [None]
            for sa in sigalgs:
                r = t.sign_data(name=name, hash_input=b64(msg), hash_algorithm=alg,
                                signature_algorithm=sa)["data"]
                sig = r["signature"]
                v = t.verify_signed_data(name=name, hash_input=b64(msg), signature=sig,
                                         hash_algorithm=alg, signature_algorithm=sa)["data"]["valid"]
                h = {"sha2-256": hashes.SHA256(), "sha2-384": hashes.SHA384(),
                     "sha2-512": hashes.SHA512()}[alg]
                raw = unb64(sig.split(":", 2)[2])
                try:
                    if ty == "ed25519":
                        pub.verify(raw, msg)
                    elif ty.startswith("ecdsa"):
                        pub.verify(raw, msg, ec.ECDSA(h))
                    elif sa == "pss":
                        pub.verify(raw, msg, padding.PSS(mgf=padding.MGF1(h),
                                                         salt_length=padding.PSS.AUTO), h)
                    else:
                        pub.verify(raw, msg, padding.PKCS1v15(), h)
                    ext = True
                except InvalidSignature:
                    ext = False
                need(v is True and ext, f"sign/verify {ty} {alg} {sa or ''}: server and "
                     "python3-cryptography agree")
                bad = t.verify_signed_data(name=name, hash_input=b64(b"other"), signature=sig,
                                           hash_algorithm=alg, signature_algorithm=sa)["data"]["valid"]
                need(bad is False, f"verify {ty} {alg} of other data: false")
    # prehashed and jws
    import hashlib
    dg = hashlib.sha256(msg).digest()
    r = t.sign_data(name="k-ecdsa-p256", hash_input=b64(dg), prehashed=True,
                    hash_algorithm="sha2-256")["data"]
    v = t.verify_signed_data(name="k-ecdsa-p256", hash_input=b64(msg),
                             signature=r["signature"])["data"]["valid"]
    need(v is True, "sign prehashed digest = sign of the data")
    r = t.sign_data(name="k-ecdsa-p256", hash_input=b64(msg), marshaling_algorithm="jws")["data"]
    need(len(base64.urlsafe_b64decode(r["signature"].split(":", 2)[2] + "==")) == 64,
         "marshaling_algorithm jws: r||s")
    v = t.verify_signed_data(name="k-ecdsa-p256", hash_input=b64(msg), signature=r["signature"],
                             marshaling_algorithm="jws")["data"]["valid"]
    need(v is True, "verify jws")

    # ---- hmac, random, hash ----------------------------------------------------------------------
    for name in ("k-hmac", "k-aes256-gcm96"):
        h = t.generate_hmac(name=name, hash_input=b64(msg), algorithm="sha2-512")["data"]["hmac"]
        need(h.startswith("vault:v") and len(unb64(h.split(":", 2)[2])) == 64, f"generate_hmac {name}")
        v = t.verify_signed_data(name=name, hash_input=b64(msg), hmac=h,
                                 hash_algorithm="sha2-512")["data"]["valid"]
        need(v is True, f"verify hmac {name}")
        v = t.verify_signed_data(name=name, hash_input=b64(b"x"), hmac=h,
                                 hash_algorithm="sha2-512")["data"]["valid"]
        need(v is False, f"verify hmac {name} of other data: false")
    r = t.generate_random_bytes(n_bytes=48, output_format="hex")["data"]["random_bytes"]
    need(len(bytes.fromhex(r)) == 48, "generate_random_bytes hex")
    r = t.generate_random_bytes(n_bytes=16)["data"]["random_bytes"]
    need(len(unb64(r)) == 16, "generate_random_bytes base64")
    r = t.hash_data(hash_input=b64(msg), algorithm="sha2-256")["data"]["sum"]
    need(r == hashlib.sha256(msg).hexdigest(), "hash_data sha2-256")
    r = t.hash_data(hash_input=b64(msg), algorithm="sha2-512", output_format="base64")["data"]["sum"]
    need(unb64(r) == hashlib.sha512(msg).digest(), "hash_data sha2-512 base64")

    # ---- import (Vault BYOK) through hvac's adapter ------------------------------------------------------
    wk = alice.adapter.get("/v1/transit/wrapping_key")["data"]["public_key"]
    wpub = serialization.load_pem_public_key(wk.encode())
    need(isinstance(wpub, rsa.RSAPublicKey) and wpub.key_size == 4096, "wrapping_key is RSA-4096")
    mine = os.urandom(32)
    r = alice.adapter.post("/v1/transit/keys/imported/import",
                           json={"ciphertext": b64(wrap_for_import(wk, mine)),
                                 "type": "aes256-gcm96", "hash_function": "SHA256"})
    need(r["data"]["imported_key"] is True, "import an aes256-gcm96 key")
    ct = t.encrypt_data(name="imported", plaintext=b64(msg))["data"]["ciphertext"]
    raw = unb64(ct.split(":", 2)[2])
    need(AESGCM(mine).decrypt(raw[:12], raw[12:], None) == msg,
         "the imported key is the one used: decrypts locally with the original key")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    der = ec_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    alice.adapter.post("/v1/transit/keys/imported-ec/import",
                       json={"ciphertext": b64(wrap_for_import(wk, der)), "type": "ecdsa-p256"})
    sig = t.sign_data(name="imported-ec", hash_input=b64(msg))["data"]["signature"]
    ec_key.public_key().verify(unb64(sig.split(":", 2)[2]), msg, ec.ECDSA(hashes.SHA256()))
    need(True, "import an ecdsa-p256 key (PKCS#8): its signatures verify with the original")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/keys/imported/import",
                                      json={"ciphertext": b64(wrap_for_import(wk, mine))}),
           "import over an existing key is refused")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/keys/imp-bad/import",
                                      json={"ciphertext": b64(wrap_for_import(wk, der)),
                                            "type": "ed25519"}),
           "import of a P-256 key as ed25519 is refused")

    # ---- bad input: clear 4xx, nothing changed --------------------------------------------------------
    before = t.read_key(name="k-aes256-gcm96")["data"]
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.sign_data(name="k-aes256-gcm96", hash_input=b64(msg)),
           "sign with an aes key: wrong key type", "does not support signing")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="k-ed25519", plaintext=b64(msg)),
           "encrypt with an ed25519 key: wrong key type", "does not support")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="k-aes256-gcm96", plaintext=b64(msg), key_version=9),
           "encrypt with a version that does not exist", "does not exist")
    good = t.encrypt_data(name="k-aes256-gcm96", plaintext=b64(msg))["data"]["ciphertext"]
    raw = bytearray(unb64(good.split(":", 2)[2]))
    raw[14] ^= 1
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="k-aes256-gcm96",
                                  ciphertext="vault:v2:" + b64(bytes(raw))),
           "tampered ciphertext", "decryption failed")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="k-aes256-gcm96", ciphertext="vault:v9:" + good[9:]),
           "ciphertext of a version that does not exist")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="k-aes256-gcm96", ciphertext="notvault"),
           "ciphertext not in vault:vN: form", "vault:v")
    t.update_key_configuration(name="k-aes256-gcm96", min_decryption_version=2)
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.decrypt_data(name="k-aes256-gcm96", ciphertext=ct1),
           "a too-old version (below min_decryption_version)", "too old")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.update_key_configuration(name="k-aes256-gcm96", min_decryption_version=7),
           "min_decryption_version above the latest version")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/keys/k-x", json={"convergent_encryption": True}),
           "convergent_encryption without derived is refused", "requires derived")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.create_key(name="k-x", key_type="ecdsa-p256", derived=True),
           "derived ecdsa key is refused", "derived")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/keys/k-y", json={"type": "des"}),
           "unknown key type", "unknown key type")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.encrypt_data(name="k-aes256-gcm96", plaintext="",
                                  batch_input=[{"plaintext": b64(b"x")}] * 1001),
           "oversized batch (over 1000 items)", "1000")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/sign/k-ecdsa-p256",
                                      json={"input": b64(msg), "hash_algorithm": "md5"}),
           "unknown hash algorithm", "unknown hash algorithm")
    expect(hvac.exceptions.InvalidRequest,
           lambda: alice.adapter.post("/v1/transit/sign/k-rsa-2048",
                                      json={"input": b64(msg), "signature_algorithm": "rsa-raw"}),
           "unknown signature algorithm", "signature_algorithm")
    expect(hvac.exceptions.InvalidRequest,
           lambda: t.delete_key(name="k-ecdsa-p256"),
           "delete without deletion_allowed", "deletion is not allowed")
    after = t.read_key(name="k-aes256-gcm96")["data"]
    before["min_decryption_version"] = 2
    need(after == before, "state after the refused requests: only the accepted config changed")

    # ---- another user's key --------------------------------------------------------------------------
    expect(hvac.exceptions.InvalidPath, lambda: tb.read_key(name="alice:k-aes256-gcm96"),
           "bob reads alice's key without a grant: 404", "no such key")
    expect(hvac.exceptions.InvalidPath, lambda: tb.read_key(name="alice:no-such-key"),
           "a key that does not exist: the same 404", "no such key")
    expect(hvac.exceptions.InvalidPath, lambda: tb.read_key(name="k-aes256-gcm96"),
           "bob's own namespace has no such key")
    alice.adapter.post("/v1/transit/keys/k-aes256-gcm96/grants",
                       json={"user": "bob", "operations": ["encrypt", "read"]})
    r = tb.encrypt_data(name="alice:k-aes256-gcm96", plaintext=b64(msg))["data"]
    need(r["ciphertext"].startswith("vault:v2:"), "bob encrypts with alice's key after a grant")
    need("alice:k-aes256-gcm96" in tb.list_keys()["data"]["keys"], "bob lists the granted key")
    expect(hvac.exceptions.InvalidPath,
           lambda: tb.decrypt_data(name="alice:k-aes256-gcm96", ciphertext=r["ciphertext"]),
           "bob may not decrypt (not granted)")
    expect(hvac.exceptions.Forbidden, lambda: tb.rotate_key(name="alice:k-aes256-gcm96"),
           "bob may not rotate alice's key")
    need(t.read_key(name="k-aes256-gcm96")["data"]["latest_version"] == 2,
         "alice's key unchanged by bob")
    alice.adapter.delete("/v1/transit/keys/k-aes256-gcm96/grants/bob")
    expect(hvac.exceptions.InvalidPath,
           lambda: tb.encrypt_data(name="alice:k-aes256-gcm96", plaintext=b64(msg)),
           "after revoke: 404 again")

    # ---- authentication ----------------------------------------------------------------------------------
    anon = hvac.Client(url=os.environ["MT_URL"], token="not-a-token", verify=os.environ["MT_CA"],
                       timeout=HTTP_TIMEOUT_S)
    expect(hvac.exceptions.Unauthorized, lambda: anon.secrets.transit.list_keys(),
           "a bad X-Vault-Token: 401")

    # ---- delete -------------------------------------------------------------------------------------------
    t.update_key_configuration(name="k-chacha20-poly1305", deletion_allowed=True)
    t.delete_key(name="k-chacha20-poly1305")
    expect(hvac.exceptions.InvalidPath, lambda: t.read_key(name="k-chacha20-poly1305"),
           "delete_key: gone")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
