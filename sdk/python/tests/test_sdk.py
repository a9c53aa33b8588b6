"""The Python SDK end to end against a real server at level soft (attested
TLS): two users of two organisations run multi-party tasks (a builtin and a
python function), errors carry the server's code and message, and bad
arguments are refused in Python before reaching libmesatee."""
import os
import subprocess
import sys

import pytest

import mesatee
from conftest import ROOT, write_policy


def put_text(client, tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return client.files.put(p, name=name)


# ---- attested TLS ------------------------------------------------------------

def test_attested_tls_soft(url, policy, alice, claims, work):
    assert claims["kind"] == "soft" and claims["level"] == 2
    with mesatee.Client(url, policy=policy) as c:
        got = c.attest()
        assert got["policy_satisfied"] is True and got["kind"] == "soft"
    # the same client keeps working after an attest() between requests
    assert alice.attest()["policy_satisfied"] is True
    assert alice.whoami()["username"] == "alice"
    m = claims["measurements"]["measurement"]
    bad = write_policy(work / "bad-meas.json", ("1" if m[0] == "0" else "0") + m[1:],
                       claims["soft_platform_key"])
    with mesatee.Client(url, policy=bad) as c:
        with pytest.raises(mesatee.AttestationError) as ei:
            c.login("alice", (work / "alice.pw").read_text())
        assert "measurements.gateway.measurement" in ei.value.message
        assert ei.value.http_status == 0 and c.token is None


def test_policy_file_errors(url, work):
    with pytest.raises(mesatee.LocalIOError):
        mesatee.Client(url, policy=work / "no-such-policy.json")
    (work / "garbage.json").write_text('{"mesatee_policy": 1, "allowed_kinds": ["soft"], '
                                       '"min_level": 7}')
    with pytest.raises(mesatee.InvalidArgumentError) as ei:
        mesatee.Client(url, policy=work / "garbage.json")
    assert "min_level" in str(ei.value)


# ---- multi-party tasks ---------------------------------------------------------

def test_builtin_two_party(alice, bob, tmp_path):
    ia = put_text(alice, tmp_path, "a.txt", "x\ny\nz\n")
    # bob step by step: encrypt, upload, register (with the ciphertext's sha256)
    (tmp_path / "b.txt").write_text("y\nz\nw\n")
    kin = bob.files.encrypt(tmp_path / "b.txt", tmp_path / "b.enc")
    url = bob.files.upload(tmp_path / "b.enc")
    assert url.startswith("mesatee://")
    ib = mesatee.Registered(bob.files.register(url, kin, sha256=mesatee.file_sha256(
        tmp_path / "b.enc"), name="bob's ids"), kin)
    assert bob.files.get(ib.file_id)["name"] == "bob's ids"
    ka, kb = mesatee.generate_key(), mesatee.generate_key()
    oa, ob = alice.files.register_output(ka), bob.files.register_output(kb)
    fn = alice.functions.register("psi2", builtin="psi", inputs=["a", "b"],
                                  outputs=["ra", "rb"], public=True)
    t = alice.tasks.create(fn, inputs={"a": "alice", "b": "bob"},
                           outputs={"ra": "alice", "rb": ["bob"]})
    alice.tasks.assign(t, inputs={"a": ia.file_id}, outputs={"ra": oa})
    bob.tasks.assign(t, inputs={"b": ib.file_id}, outputs={"rb": ob})
    alice.tasks.approve(t)
    # not approved by every participant: the server's conflict, code and message
    with pytest.raises(mesatee.ConflictError) as ei:
        alice.tasks.invoke(t)
    e = ei.value
    assert (e.code, e.http_status, e.status) == ("conflict", 409, 5)
    assert "can be invoked only once every participant approved it" in e.message
    with pytest.raises(mesatee.ConflictError):
        alice.tasks.result(t)
    bob.tasks.approve(t)
    alice.tasks.invoke(t)
    done = bob.tasks.wait(t, timeout=60)
    assert done["status"] == "finished" and sorted(done["approvals"]) == ["alice", "bob"]
    assert alice.tasks.result(t) == "intersection size: 2"
    assert alice.tasks.result(t, "ra", key=ka) == b"y\nz\n"
    bob.tasks.result(t, "rb", key=kb, out=tmp_path / "rb.txt")
    assert (tmp_path / "rb.txt").read_bytes() == b"y\nz\n"
    # bob cannot read alice's output, and a wrong key does not decrypt
    with pytest.raises(mesatee.NotFoundError) as ei:
        bob.tasks.result(t, "ra", key=kb)
    assert ei.value.code == "not_found" and ei.value.http_status == 404
    with pytest.raises(mesatee.DecryptionError):
        alice.tasks.result(t, "ra", key=kb)
    # the raw ciphertext, decrypted bound to (task, slot, file) by hand
    alice.files.download(oa, tmp_path / "ra.enc")
    mesatee.decrypt_file(tmp_path / "ra.enc", tmp_path / "ra.txt", ka, task_id=t, slot="ra",
                         file_id=oa)
    assert (tmp_path / "ra.txt").read_bytes() == b"y\nz\n"
    with pytest.raises(mesatee.DecryptionError):  # bound to slot ra, not rb
        mesatee.decrypt_file(tmp_path / "ra.enc", tmp_path / "x", ka, task_id=t, slot="rb",
                             file_id=oa)
    assert any(x["task_id"] == t for x in bob.tasks.list())
    assert alice.files.get(oa)["written"] is True


def test_python_two_party(alice, bob, tmp_path):
    fn = alice.functions.register("linreg", python=ROOT / "examples/python/linreg.py",
                                  inputs=["a", "b"], allow=["bob"])
    info = bob.functions.get(fn)
    assert info["executor_type"] == "python" and len(info["payload"]["sha256"]) == 64
    ia = put_text(alice, tmp_path, "la.csv", "0,0,1\n1,0,3\n0,1,-2\n2,1,2\n")
    ib = put_text(bob, tmp_path, "lb.csv", "1,1,0\n3,2,1\n5,1,8\n")
    t = bob.tasks.create(fn, inputs={"a": "alice", "b": "bob"})
    alice.tasks.assign(t, inputs={"a": ia.file_id})
    bob.tasks.assign(t, inputs={"b": ib.file_id})
    for c in (alice, bob):
        c.tasks.approve(t)
    bob.tasks.invoke(t)
    done = alice.tasks.wait(t, timeout=120)
    assert "fitted 7 rows" in done["log"]
    assert bob.tasks.result(t) == "1.000 2.000 -3.000"


def test_failed_python_task(alice, tmp_path):
    src = tmp_path / "boom.py"
    src.write_text("def entrypoint(argv):\n    raise ValueError('boom')\n")
    fn = alice.functions.register("boom", python=src)
    t = alice.tasks.create(fn)
    alice.tasks.approve(t)
    alice.tasks.invoke(t)
    with pytest.raises(mesatee.TaskFailedError) as ei:
        alice.tasks.wait(t, timeout=60)
    assert ei.value.code == "failed" and "ValueError: boom" in ei.value.log
    assert alice.tasks.wait(t, check=False)["status"] == "failed"
    with pytest.raises(mesatee.TaskFailedError):
        alice.tasks.result(t)


def test_syntax_error_at_registration(alice, tmp_path):
    src = tmp_path / "syntax.py"
    src.write_text("def entrypoint(argv):\n    x = (1,\n    return x\n")
    with pytest.raises(mesatee.InvalidArgumentError) as ei:
        alice.functions.register("bad", python=src)
    assert ei.value.http_status == 400 and "line 2, column" in ei.value.message


# ---- errors with the server's code and message ------------------------------------

def test_bad_login(url, policy):
    with mesatee.Client(url, policy=policy) as c:
        with pytest.raises(mesatee.AuthenticationError) as ei:
            c.login("alice", "not the password")
        e = ei.value
        assert (e.code, e.message, e.http_status, e.status) == (
            "unauthenticated", "wrong username or password", 401, 2)
        assert str(e) == "HTTP 401 unauthenticated: wrong username or password"
        with pytest.raises(mesatee.AuthenticationError):
            c.whoami()


def test_unknown_task(alice):
    with pytest.raises(mesatee.NotFoundError) as ei:
        alice.tasks.get("0" * 32)
    e = ei.value
    assert (e.code, e.http_status) == ("not_found", 404)
    assert e.message == "no task %s among your tasks" % ("0" * 32)
    with pytest.raises(mesatee.NotFoundError):
        alice.tasks.wait("f" * 32, timeout=5)


def test_permission_and_conflict(alice, bob, admin):
    with pytest.raises(mesatee.PermissionDeniedError) as ei:
        alice.user_add("mallory", "pw-pw-pw-pw-pw")
    assert ei.value.http_status == 403
    with pytest.raises(mesatee.ConflictError) as ei:
        admin.user_add("alice", "pw-pw-pw-pw-pw")
    assert ei.value.code == "conflict"


def test_network_error(work):
    with mesatee.Client("https://127.0.0.1:1", ca=os.environ["MT_CA"], timeout=5) as c:
        with pytest.raises(mesatee.NetworkError) as ei:
            c.whoami()
        assert ei.value.http_status == 0


# ---- bad arguments: TypeError/ValueError before anything reaches C -----------------

class Spy:
    """Stands in for the loaded library and records every call."""

    def __init__(self, lib):
        self.lib, self.calls = lib, []

    def __getattr__(self, name):
        fn = getattr(self.lib, name)

        def call(*a):
            self.calls.append(name)
            return fn(*a)
        return call


BAD_CALLS = [
    (TypeError, lambda c: c.login(b"alice", "pw")),
    (ValueError, lambda c: c.login("", "pw")),
    (ValueError, lambda c: c.login("al\0ice", "pw")),
    (ValueError, lambda c: c.login("alice", "\udc80")),
    (TypeError, lambda c: c.tasks.get(123)),
    (ValueError, lambda c: c.tasks.get("nope")),
    (ValueError, lambda c: c.tasks.get("A" * 32)),
    (ValueError, lambda c: c.tasks.approve("0" * 31)),
    (ValueError, lambda c: c.tasks.wait("0" * 32, timeout=-1)),
    (TypeError, lambda c: c.tasks.wait("0" * 32, timeout="5")),
    (ValueError, lambda c: c.tasks.assign("0" * 32)),
    (ValueError, lambda c: c.tasks.assign("0" * 32, inputs={"a": "xyz"})),
    (TypeError, lambda c: c.tasks.assign("0" * 32, inputs=[("a", "0" * 32)])),
    (TypeError, lambda c: c.tasks.create("0" * 32, inputs={"a": 5})),
    (TypeError, lambda c: c.tasks.create("0" * 32, arguments={"n": object()})),
    (TypeError, lambda c: c.tasks.create("0" * 32, arguments={"n": True})),
    (TypeError, lambda c: c.tasks.result("0" * 32, "slot")),
    (ValueError, lambda c: c.tasks.result("0" * 32, key=b"k" * 32)),
    (TypeError, lambda c: c.files.register("mesatee://objects/x", "k" * 32)),
    (ValueError, lambda c: c.files.register("mesatee://objects/x", b"short")),
    (ValueError, lambda c: c.files.register("u", b"k" * 32, sha256="xyz")),
    (TypeError, lambda c: c.files.register_output(None)),
    (TypeError, lambda c: c.files.register_fusion("alice,bob")),
    (ValueError, lambda c: c.files.register_fusion([])),
    (TypeError, lambda c: c.files.upload(42)),
    (TypeError, lambda c: c.files.upload(b"/etc/passwd")),
    (ValueError, lambda c: c.files.download("0" * 32, "")),
    (ValueError, lambda c: c.functions.register("f")),
    (ValueError, lambda c: c.functions.register("f", builtin="echo", python="x.py")),
    (TypeError, lambda c: c.functions.register("f", builtin="echo", inputs="a")),
    (TypeError, lambda c: c.functions.register("f", builtin="echo", public="yes")),
    (ValueError, lambda c: c.functions.register("f", builtin="echo", usage_quota=-1)),
    (ValueError, lambda c: c.functions.register("f", builtin="echo", arguments={"a": "1"},
                                                overridable=["b"])),
    (TypeError, lambda c: c.functions.get(None)),
    (ValueError, lambda c: c.call("PATCH", "/v1/files")),
    (ValueError, lambda c: c.call("GET", "v1/files")),
    (ValueError, lambda c: c.user_add("x", "pw-pw-pw-pw", role="root")),
    (TypeError, lambda c: setattr(c, "token", 5)),
]


@pytest.mark.parametrize("exc,call", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bad_arguments_never_reach_c(alice, exc, call):
    spy = Spy(alice._lib)
    alice._lib = spy
    try:
        with pytest.raises(exc):
            call(alice)
    finally:
        alice._lib = spy.lib
    assert spy.calls == [], "reached C: %s" % spy.calls


def test_bad_arguments_module_level(tmp_path, url):
    with pytest.raises(TypeError):
        mesatee.Client(8443)
    with pytest.raises(ValueError):
        mesatee.Client("http://127.0.0.1:1")
    with pytest.raises(TypeError):
        mesatee.Client(url, ca=5)
    with pytest.raises(ValueError):
        mesatee.Client(url, timeout=0)
    with pytest.raises(ValueError):
        mesatee.Client(url, policy_signers="s.pem")
    with pytest.raises(TypeError):
        mesatee.encrypt_file(tmp_path / "a", tmp_path / "b", key="0" * 32)
    with pytest.raises(ValueError):
        mesatee.decrypt_file("a", "b", b"k" * 32, task_id="0" * 32)
    with pytest.raises(ValueError):
        mesatee.key_from_hex("abc")
    with pytest.raises(mesatee.InvalidArgumentError):  # 64 characters, not hex: from C
        mesatee.key_from_hex("z" * 64)


def test_closed_client(url, policy):
    c = mesatee.Client(url, policy=policy)
    with c:
        pass
    assert c.closed
    with pytest.raises(ValueError, match="closed"):
        c.whoami()
    c.close()  # idempotent


# ---- keys and files without a server --------------------------------------------------

def test_keys_and_files(tmp_path):
    k = mesatee.generate_key()
    assert len(k) == 32 and mesatee.key_from_hex(mesatee.key_to_hex(k)) == k
    mesatee.write_key(k, tmp_path / "k.key")
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    assert mesatee.read_key(tmp_path / "k.key") == k
    with pytest.raises(mesatee.ConflictError):
        mesatee.write_key(k, tmp_path / "k.key")
    os.chmod(tmp_path / "k.key", 0o644)
    with pytest.raises(mesatee.MesateeError) as ei:
        mesatee.read_key(tmp_path / "k.key")
    assert "chmod 600" in str(ei.value)
    (tmp_path / "p.txt").write_bytes(b"plain\n")
    k2 = mesatee.encrypt_file(tmp_path / "p.txt", tmp_path / "p.enc")
    assert (tmp_path / "p.enc").read_bytes().find(b"plain") < 0
    mesatee.decrypt_file(tmp_path / "p.enc", tmp_path / "p.out", k2)
    assert (tmp_path / "p.out").read_bytes() == b"plain\n"
    with pytest.raises(mesatee.DecryptionError):
        mesatee.decrypt_file(tmp_path / "p.enc", tmp_path / "p2.out", k)
    assert not (tmp_path / "p2.out").exists()
    with pytest.raises(mesatee.NotFoundError) as ei:  # libmesatee: ENOTFOUND, no HTTP
        mesatee.encrypt_file(tmp_path / "missing", tmp_path / "m.enc")
    assert ei.value.http_status == 0 and "No such file" in ei.value.message
    assert len(mesatee.file_sha256(tmp_path / "p.enc")) == 64


# ---- the notebook-style example, as two organisations --------------------------------

def test_two_party_regression_example(url, policy, make_user, work, tmp_path):
    make_user("org-a")
    make_user("org-b")
    env = dict(os.environ, MESATEE_SERVER=url, MESATEE_POLICY=str(policy),
               ORG_A_USER="org-a", ORG_A_PASSWORD_FILE=str(work / "org-a.pw"),
               ORG_B_USER="org-b", ORG_B_PASSWORD_FILE=str(work / "org-b.pw"),
               WORKDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, str(ROOT / "examples/python/two_party_regression.py")],
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "finished | result: rows a=60 b=40" in r.stdout
    for slot, rows in (("ra", 60), ("rb", 40)):
        lines = (tmp_path / ("result_%s.txt" % slot)).read_text().splitlines()
        coef = [float(x) for x in lines[0].split("=")[1].split()]
        assert abs(coef[0] - 1.5) < 0.01 and abs(coef[1] - 2.0) < 0.01
        assert abs(coef[2] + 0.5) < 0.01
        assert lines[1].startswith("rows=%d r2=0.99" % rows)
