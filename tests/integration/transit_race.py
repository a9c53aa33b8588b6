#!/usr/bin/python3
"""Concurrency correctness of the transit API (it_transit_race.sh).

Several keep-alive TLS connections (one per thread) encrypt, decrypt and
rewrap on one key while other threads rotate it and move its
min_decryption_version / min_encryption_version up and down; then a key is
deleted and re-created under the same name while threads use it. No timing
thresholds: every check is about answers.

- An encrypt answered after another on the same connection never uses an
  older version (no stale "latest" after a rotation).
- Right after a rotation is answered, encrypt uses the new version.
- Right after a config change is answered, a ciphertext below the new
  min_decryption_version is refused, and after lowering it decrypts again;
  an encrypt with a version below min_encryption_version is refused.
- Every ciphertext decrypts to its plaintext (or is refused by policy, with
  the policy's message, never with wrong bytes); rewrap keeps the plaintext.
- After a delete is answered, no request on the key succeeds; a re-created
  key of the same name does not open the old key's ciphertexts.
- A refused token (401, WWW-Authenticate) and bad bodies are answered.
The client's request counts per status are written to MT_COUNTS for the
shell to compare with the audit log.
"""
import base64
import http.client
import json
import os
import ssl
import sys
import threading
import urllib.parse

URL = urllib.parse.urlsplit(os.environ["MT_URL"])
CTX = ssl.create_default_context(cafile=os.environ["MT_CA"])
TOKEN = open(os.environ["MT_ALICE_TOKEN"]).read().strip()
WORKERS = int(os.environ.get("MT_RACE_WORKERS", "6"))
ITER = int(os.environ.get("MT_RACE_ITER", "40"))
ROTATIONS = 8

counts = {}
counts_mu = threading.Lock()
errors = []


def fail(msg):
    with counts_mu:
        errors.append(msg)
    raise SystemExit(msg)


class Conn:
    """One keep-alive HTTPS connection; every request is counted."""

    def __init__(self, token=TOKEN):
        self.c = http.client.HTTPSConnection(URL.hostname, URL.port, context=CTX, timeout=120)
        self.token = token

    def req(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        hdr = {"X-Vault-Token": self.token}
        if data is not None:
            hdr["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=hdr)
        r = self.c.getresponse()
        text = r.read()
        with counts_mu:
            counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            fail(f"{method} {path}: answer is not JSON: {text[:200]!r}")
        return r.status, doc, r

    def ok(self, method, path, body=None, want=200):
        st, doc, _ = self.req(method, path, body)
        if st != want:
            fail(f"{method} {path}: {st} {doc}")
        return doc


def version_of(ct):
    assert ct.startswith("vault:v"), ct
    return int(ct.split(":")[1][1:])


def b64(b):
    return base64.b64encode(b).decode()


def err_text(doc):
    return " ".join(doc.get("errors", []))


POLICY = "disallowed by policy"
stop = threading.Event()


def worker(i):
    c = Conn()
    last = 0
    for n in range(ITER):
        pt = os.urandom(40 + i)
        ct = c.ok("POST", "/v1/transit/encrypt/race", {"plaintext": b64(pt)})["data"]["ciphertext"]
        v = version_of(ct)
        if v < last:
            fail(f"worker {i}: encrypt used v{v} after v{last} on the same connection")
        last = v
        st, doc, _ = c.req("POST", "/v1/transit/decrypt/race", {"ciphertext": ct})
        if st == 200:
            if base64.b64decode(doc["data"]["plaintext"]) != pt:
                fail(f"worker {i}: decrypt of v{v} gave other bytes")
        elif st != 400 or POLICY not in err_text(doc):
            fail(f"worker {i}: decrypt of v{v}: {st} {doc}")
        if n % 4 == 0:
            st, doc, _ = c.req("POST", "/v1/transit/rewrap/race", {"ciphertext": ct})
            if st == 200:
                nct = doc["data"]["ciphertext"]
                if version_of(nct) < v:
                    fail(f"worker {i}: rewrap of v{v} gave v{version_of(nct)}")
                st, doc, _ = c.req("POST", "/v1/transit/decrypt/race", {"ciphertext": nct})
                if st == 200 and base64.b64decode(doc["data"]["plaintext"]) != pt:
                    fail(f"worker {i}: decrypt after rewrap gave other bytes")
                if st != 200 and (st != 400 or POLICY not in err_text(doc)):
                    fail(f"worker {i}: decrypt after rewrap: {st} {doc}")
            elif st != 400 or POLICY not in err_text(doc):
                fail(f"worker {i}: rewrap of v{v}: {st} {doc}")


def rotator(old_ct):
    c = Conn()
    for _ in range(ROTATIONS):
        c.ok("POST", "/v1/transit/keys/race/rotate")
        latest = c.ok("GET", "/v1/transit/keys/race")["data"]["latest_version"]
        ct = c.ok("POST", "/v1/transit/encrypt/race", {"plaintext": b64(b"r")})["data"]["ciphertext"]
        if version_of(ct) != latest:
            fail(f"rotator: encrypt right after rotating to v{latest} used {ct[:9]}")
        # min_decryption_version up to latest: the v1 ciphertext is refused at once
        c.ok("POST", "/v1/transit/keys/race/config", {"min_decryption_version": latest})
        st, doc, _ = c.req("POST", "/v1/transit/decrypt/race", {"ciphertext": old_ct[0]})
        if st != 400 or POLICY not in err_text(doc):
            fail(f"rotator: v1 ciphertext after min_decryption_version={latest}: {st} {doc}")
        # min_encryption_version = latest: an older version is refused at once
        c.ok("POST", "/v1/transit/keys/race/config", {"min_encryption_version": latest})
        if latest > 1:
            st, doc, _ = c.req("POST", "/v1/transit/encrypt/race",
                               {"plaintext": b64(b"x"), "key_version": latest - 1})
            if st != 400:
                fail(f"rotator: encrypt with v{latest - 1} below min_encryption_version: {st}")
        # and back down: v1 opens again at once
        c.ok("POST", "/v1/transit/keys/race/config",
             {"min_encryption_version": 0, "min_decryption_version": 1})
        doc = c.ok("POST", "/v1/transit/decrypt/race", {"ciphertext": old_ct[0]})
        if base64.b64decode(doc["data"]["plaintext"]) != old_ct[1]:
            fail("rotator: v1 ciphertext gave other bytes")


def deleted_user(i, gone, ct_old):
    c = Conn()
    while not stop.is_set():
        after = gone.is_set()  # the delete was answered before this request began
        st, doc, _ = c.req("POST", "/v1/transit/encrypt/gone", {"plaintext": b64(b"g")})
        if after and st == 200:
            fail(f"deleted_user {i}: encrypt succeeded after the delete was answered")
        if st not in (200, 404):
            fail(f"deleted_user {i}: encrypt: {st} {doc}")
        st, doc, _ = c.req("POST", "/v1/transit/decrypt/gone", {"ciphertext": ct_old})
        if after and st == 200:
            fail(f"deleted_user {i}: decrypt succeeded after the delete was answered")
        if st not in (200, 404):
            fail(f"deleted_user {i}: decrypt: {st} {doc}")


def run(threads, start=True):
    for t in threads:
        if start:
            t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("FAIL: " + errors[0])


def main():
    c = Conn()
    st, doc, _ = c.req("POST", "/v1/transit/keys/race", {"type": "aes256-gcm96"})
    if st not in (200, 204):
        fail(f"create: {st} {doc}")
    pt1 = b"version one"
    ct1 = c.ok("POST", "/v1/transit/encrypt/race", {"plaintext": b64(pt1)})["data"]["ciphertext"]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    threads.append(threading.Thread(target=rotator, args=((ct1, pt1),)))
    run(threads)
    latest = c.ok("GET", "/v1/transit/keys/race")["data"]["latest_version"]
    if latest != 1 + ROTATIONS:
        fail(f"latest version {latest} after {ROTATIONS} rotations")
    print(f"ok: {WORKERS} connections x {ITER} encrypt/decrypt/rewrap during {ROTATIONS} "
          f"rotations and config changes: no stale version, every plaintext back")

    # delete while in use, then re-create under the same name
    st, doc, _ = c.req("POST", "/v1/transit/keys/gone", {"type": "aes256-gcm96"})
    if st not in (200, 204):
        fail(f"create gone: {st} {doc}")
    ct_old = c.ok("POST", "/v1/transit/encrypt/gone", {"plaintext": b64(b"old")})["data"]["ciphertext"]
    c.ok("POST", "/v1/transit/keys/gone/config", {"deletion_allowed": True})
    gone = threading.Event()
    users = [threading.Thread(target=deleted_user, args=(i, gone, ct_old)) for i in range(3)]
    for t in users:
        t.start()
    st, doc, _ = c.req("DELETE", "/v1/transit/keys/gone")
    if st not in (200, 204):
        fail(f"delete: {st} {doc}")
    gone.set()
    # let the users run a few requests after the delete
    for _ in range(20):
        st, _, _ = c.req("POST", "/v1/transit/encrypt/gone", {"plaintext": b64(b"g")})
        if st != 404:
            fail(f"encrypt after delete: {st}")
    stop.set()
    run(users, start=False)
    st, doc, _ = c.req("POST", "/v1/transit/keys/gone", {"type": "aes256-gcm96"})
    if st not in (200, 204):
        fail(f"re-create gone: {st} {doc}")
    st, doc, _ = c.req("POST", "/v1/transit/decrypt/gone", {"ciphertext": ct_old})
    if st == 200:
        fail("a re-created key of the same name opened the deleted key's ciphertext")
    print("ok: after a delete no request succeeds; a re-created key does not open old ciphertexts")

    # refused token and bad bodies through the same request threads
    # well formed (so the gateway's head check passes it), but unknown
    bad = Conn(token=TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1"))
    for _ in range(5):
        st, doc, r = bad.req("POST", "/v1/transit/encrypt/race", {"plaintext": b64(b"x")})
        if st != 401 or "invalid_token" not in (r.getheader("WWW-Authenticate") or ""):
            fail(f"bad token: {st} {r.getheader('WWW-Authenticate')} {doc}")
        if "log in again" not in err_text(doc) or "log in again" not in doc["error"]["message"]:
            fail(f"bad token: the answer does not say why: {doc}")
    for raw in ("{", "[]", '{"plaintext": 7}', '{"plaintext": "!!"}', "\x00" * 10):
        st, doc, _ = c.req("POST", "/v1/transit/encrypt/race", raw=raw)
        if st != 400:
            fail(f"garbage body {raw[:12]!r}: {st} {doc}")
    print("ok: refused tokens get 401 with WWW-Authenticate; garbage bodies get 400")
    with open(os.environ["MT_COUNTS"], "w") as f:
        json.dump(counts, f)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if errors or (e.code not in (None, 0)):
            print(f"FAIL: {errors[0] if errors else e.code}", file=sys.stderr)
            sys.exit(1)
