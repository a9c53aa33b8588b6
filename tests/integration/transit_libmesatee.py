"""libmesatee's typed transit calls (mesatee_transit_*, mesatee.h) against a
live server, through ctypes: what the PKCS#11 module builds on. Signatures
are checked with python3-cryptography against the PEM public key the library
returns. Environment: MESATEE_LIB (libmesatee.so), MT_URL, MT_CA,
MT_ALICE_TOKEN, MT_BOB_TOKEN (token files)."""
import ctypes as C
import hashlib
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

lib = C.CDLL(os.environ["MESATEE_LIB"])
u8p = C.POINTER(C.c_uint8)
lib.mesatee_client_new.restype = C.c_void_p
lib.mesatee_client_new.argtypes = [C.c_char_p]
lib.mesatee_client_errmsg.restype = C.c_char_p
lib.mesatee_client_errmsg.argtypes = [C.c_void_p]
lib.mesatee_free.argtypes = [C.c_void_p]
for name, args in {
    "mesatee_client_set_ca_file": [C.c_void_p, C.c_char_p],
    "mesatee_client_set_token": [C.c_void_p, C.c_char_p],
    "mesatee_transit_key_create": [C.c_void_p, C.c_char_p, C.c_char_p, C.POINTER(C.c_void_p)],
    "mesatee_transit_key_read": [C.c_void_p, C.c_char_p, C.POINTER(C.c_void_p)],
    "mesatee_transit_key_list": [C.c_void_p, C.POINTER(C.c_void_p)],
    "mesatee_transit_key_delete": [C.c_void_p, C.c_char_p],
    "mesatee_transit_key_rotate": [C.c_void_p, C.c_char_p, C.POINTER(C.c_void_p)],
    "mesatee_transit_key_config": [C.c_void_p, C.c_char_p, C.c_char_p, C.POINTER(C.c_void_p)],
    "mesatee_transit_key_import": [C.c_void_p, C.c_char_p, C.c_char_p, C.c_char_p, C.c_size_t,
                                   C.c_int, C.POINTER(C.c_void_p)],
    "mesatee_transit_grant": [C.c_void_p, C.c_char_p, C.c_char_p, C.POINTER(C.c_char_p),
                              C.c_size_t, C.POINTER(C.c_void_p)],
    "mesatee_transit_revoke": [C.c_void_p, C.c_char_p, C.c_char_p],
    "mesatee_transit_encrypt": [C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t, C.c_char_p,
                                C.c_size_t, C.c_uint32, C.POINTER(C.c_void_p)],
    "mesatee_transit_decrypt": [C.c_void_p, C.c_char_p, C.c_char_p, C.c_char_p, C.c_size_t,
                                C.POINTER(C.c_void_p), C.POINTER(C.c_size_t)],
    "mesatee_transit_sign": [C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t, C.c_char_p, C.c_int,
                             C.c_char_p, C.c_char_p, C.c_uint32, C.POINTER(C.c_void_p)],
    "mesatee_transit_verify": [C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t, C.c_char_p,
                               C.c_int, C.c_char_p, C.c_char_p, C.c_char_p, C.POINTER(C.c_int)],
    "mesatee_transit_random": [C.c_void_p, C.c_size_t, C.POINTER(C.c_void_p)],
    "mesatee_transit_public_key": [C.c_void_p, C.c_char_p, C.c_uint32, C.POINTER(C.c_void_p),
                                   C.POINTER(C.c_uint32)],
    "mesatee_transit_decode": [C.c_char_p, C.POINTER(C.c_uint32), C.POINTER(C.c_void_p),
                               C.POINTER(C.c_size_t)],
}.items():
    getattr(lib, name).argtypes = args
    getattr(lib, name).restype = C.c_int

FAILS = []


def need(cond, msg):
    print(("ok - " if cond else "FAIL: ") + msg, file=sys.stdout if cond else sys.stderr)
    if not cond:
        FAILS.append(msg)


def client(token_file):
    c = lib.mesatee_client_new(os.environ["MT_URL"].encode())
    assert lib.mesatee_client_set_ca_file(c, os.environ["MT_CA"].encode()) == 0
    assert lib.mesatee_client_set_token(c, open(token_file).read().strip().encode()) == 0
    return c


def take_str(p):
    s = C.cast(p, C.c_char_p).value.decode()
    lib.mesatee_free(p)
    return s


def take_bytes(p, n):
    b = C.string_at(p, n)
    lib.mesatee_free(p)
    return b


def main():
    a = client(os.environ["MT_ALICE_TOKEN"])
    b = client(os.environ["MT_BOB_TOKEN"])
    out = C.c_void_p()
    for name, ty in (("lk-aes", b"aes256-gcm96"), ("lk-ec", b"ecdsa-p256"), ("lk-ed", b"ed25519"),
                     ("lk-rsa", b"rsa-2048")):
        st = lib.mesatee_transit_key_create(a, name.encode(), ty, C.byref(out))
        need(st == 0 and '"latest_version":1' in take_str(out), f"key_create {name}")
    st = lib.mesatee_transit_key_read(a, b"lk-ec", C.byref(out))
    need(st == 0 and "P-256" in take_str(out), "key_read")
    st = lib.mesatee_transit_key_list(a, C.byref(out))
    names = take_str(out) if st == 0 else ""
    need(st == 0 and "lk-aes" in names and "lk-ed" in names, f"key_list: {names}")
    st = lib.mesatee_transit_key_list(b, C.byref(out))
    need(st == 0 and take_str(out) == "[]", "key_list of a user without keys: []")

    msg = b"libmesatee transit"
    ct = C.c_void_p()
    st = lib.mesatee_transit_encrypt(a, b"lk-aes", msg, len(msg), b"aad", 3, 0, C.byref(ct))
    ct_s = take_str(ct) if st == 0 else ""
    need(ct_s.startswith("vault:v1:"), "encrypt with associated data")
    pt, n = C.c_void_p(), C.c_size_t()
    st = lib.mesatee_transit_decrypt(a, b"lk-aes", ct_s.encode(), b"aad", 3, C.byref(pt), C.byref(n))
    need(st == 0 and take_bytes(pt, n.value) == msg, "decrypt")
    st = lib.mesatee_transit_decrypt(a, b"lk-aes", ct_s.encode(), b"bad", 3, C.byref(pt), C.byref(n))
    need(st == 8 and b"decryption failed" in lib.mesatee_client_errmsg(a), "decrypt with wrong AAD: ECRYPTO")

    pem = C.c_void_p()
    ver = C.c_uint32()
    for key, sa, pre in (("lk-ec", None, 0), ("lk-ec", None, 1), ("lk-rsa", b"pkcs1v15", 0),
                         ("lk-rsa", b"pss", 1), ("lk-ed", None, 0)):
        data = hashlib.sha256(msg).digest() if pre else msg
        sig = C.c_void_p()
        st = lib.mesatee_transit_sign(a, key.encode(), data, len(data), b"sha2-256", pre, sa, None,
                                      0, C.byref(sig))
        sig_s = take_str(sig) if st == 0 else ""
        valid = C.c_int(-1)
        st2 = lib.mesatee_transit_verify(a, key.encode(), data, len(data), b"sha2-256", pre, sa,
                                         None, sig_s.encode(), C.byref(valid))
        st3 = lib.mesatee_transit_public_key(a, key.encode(), 0, C.byref(pem), C.byref(ver))
        pub = serialization.load_pem_public_key(take_str(pem).encode())
        raw, rl, v = C.c_void_p(), C.c_size_t(), C.c_uint32()
        st4 = lib.mesatee_transit_decode(sig_s.encode(), C.byref(v), C.byref(raw), C.byref(rl))
        rs = take_bytes(raw, rl.value)
        h = hashes.SHA256()
        try:
            if key == "lk-ec":
                pub.verify(rs, msg, ec.ECDSA(h))
            elif key == "lk-ed":
                pub.verify(rs, msg)
            elif sa == b"pss":
                pub.verify(rs, msg, padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO), h)
            else:
                pub.verify(rs, msg, padding.PKCS1v15(), h)
            ext = True
        except Exception:  # noqa: BLE001
            ext = False
        need(st == st2 == st3 == st4 == 0 and valid.value == 1 and v.value == 1 and ver.value == 1
             and ext, f"sign/verify/public_key/decode {key} {sa} prehashed={pre}")
    st = lib.mesatee_transit_public_key(a, b"lk-aes", 0, C.byref(pem), None)
    need(st != 0, "public_key of a symmetric key is refused")

    rnd = C.c_void_p()
    st = lib.mesatee_transit_random(a, 40, C.byref(rnd))
    need(st == 0 and len(take_bytes(rnd, 40)) == 40, "random")
    st = lib.mesatee_transit_key_rotate(a, b"lk-aes", C.byref(out))
    need(st == 0 and '"latest_version":2' in take_str(out), "rotate")
    st = lib.mesatee_transit_key_config(a, b"lk-aes", b'{"min_decryption_version":2}', C.byref(out))
    need(st == 0, "config")
    st = lib.mesatee_transit_decrypt(a, b"lk-aes", ct_s.encode(), b"aad", 3, C.byref(pt), C.byref(n))
    need(st == 1, "decrypt of a version below min_decryption_version: EINVAL")

    key = os.urandom(32)
    st = lib.mesatee_transit_key_import(a, b"lk-imp", b"aes256-gcm96", key, 32, 0, C.byref(out))
    need(st == 0 and '"imported_key":true' in take_str(out), "key_import (wrapped in the library)")

    ops = (C.c_char_p * 1)(b"sign")
    st = lib.mesatee_transit_grant(a, b"lk-ec", b"bob", ops, 1, C.byref(out))
    need(st == 0, "grant")
    sig = C.c_void_p()
    st = lib.mesatee_transit_sign(b, b"alice:lk-ec", msg, len(msg), None, 0, None, None, 0, C.byref(sig))
    need(st == 0, "bob signs with alice:lk-ec after the grant")
    if st == 0:
        lib.mesatee_free(sig)
    st = lib.mesatee_transit_revoke(a, b"lk-ec", b"bob")
    need(st == 0, "revoke")
    st = lib.mesatee_transit_sign(b, b"alice:lk-ec", msg, len(msg), None, 0, None, None, 0, C.byref(sig))
    need(st == 4, "after revoke: ENOTFOUND")
    st = lib.mesatee_transit_key_create(a, b"bad name", None, None)
    need(st == 1, "invalid key name refused locally")

    st = lib.mesatee_transit_key_config(a, b"lk-ed", b'{"deletion_allowed":true}', None)
    st2 = lib.mesatee_transit_key_delete(a, b"lk-ed")
    st3 = lib.mesatee_transit_key_read(a, b"lk-ed", None)
    need(st == 0 and st2 == 0 and st3 == 4, "delete")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
