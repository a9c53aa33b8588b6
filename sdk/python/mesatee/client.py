"""The mesatee client: a Pythonic layer over libmesatee (ctypes)."""
import base64
import ctypes
import json
import math
import os
import re
import tempfile
import threading
from typing import (Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence,
                    Union)

from . import _lib
from .errors import (ConflictError, MesateeError, TaskFailedError, WaitTimeoutError,
                     from_status)

PathLike = Union[str, "os.PathLike[str]"]
Json = Dict[str, Any]

_ID = re.compile(r"[0-9a-f]{32}\Z")
_ALLOW_KEY_REUSE = 1
_ALLOW_UNBOUND = 2
_FINAL = ("finished", "failed", "canceled")

# ---------------------------------------------------------------------------
# argument checks: TypeError/ValueError before anything reaches C


def _str(v: Any, what: str, *, empty: bool = False) -> bytes:
    if not isinstance(v, str):
        raise TypeError("%s must be a str, not %s" % (what, type(v).__name__))
    if not empty and not v:
        raise ValueError("%s must not be empty" % what)
    if "\0" in v:
        raise ValueError("%s must not contain a NUL character" % what)
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s is not valid UTF-8 text (lone surrogate)" % what) from None


def _opt_str(v: Any, what: str) -> Optional[bytes]:
    return None if v is None else _str(v, what)


def _path(v: Any, what: str) -> bytes:
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if isinstance(v, bytes):
        raise TypeError("%s must be a str or os.PathLike, not bytes" % what)
    if not isinstance(v, str):
        raise TypeError("%s must be a str or os.PathLike, not %s" % (what, type(v).__name__))
    return _str(v, what)


def _id(v: Any, what: str) -> bytes:
    b = _str(v, what)
    if not _ID.match(v):
        raise ValueError("%s %r is not an id (32 lower-case hex characters)" % (what, v[:40]))
    return b


def _key(v: Any) -> bytes:
    if not isinstance(v, (bytes, bytearray)):
        raise TypeError("key must be bytes, not %s" % type(v).__name__)
    if len(v) != 32:
        raise ValueError("key must be 32 bytes (AES-256), not %d" % len(v))
    return bytes(v)


def _slot_name(v: Any, what: str) -> str:
    _str(v, what)
    return v


def _timeout(v: Any, what: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError("%s must be a number of seconds or None" % what)
    if not (v > 0) or math.isinf(v) or v > 2 ** 31:
        raise ValueError("%s must be a positive number of seconds (None: no limit)" % what)
    return max(1, math.ceil(v))


def _argval(v: Any, what: str) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise TypeError("%s must be a str, int or float, not %s" % (what, type(v).__name__))
    s = v if isinstance(v, str) else repr(v)
    _str(s, what, empty=True)
    return s


# ---------------------------------------------------------------------------
# keys and files without a server


def _fail_local(rc: int) -> MesateeError:
    lib = _lib.load()
    return from_status(rc, lib.mesatee_status_name(rc).decode(),
                       (lib.mesatee_client_errmsg(None) or b"").decode("utf-8", "replace"), 0)


def generate_key() -> bytes:
    """32 random bytes from the OS CSPRNG: a file key (AES-256)."""
    buf = ctypes.create_string_buffer(32)
    rc = _lib.load().mesatee_key_generate(buf)
    if rc:
        raise _fail_local(rc)
    return buf.raw


def key_to_hex(key: bytes) -> str:
    """64 lower-case hex characters."""
    k = _key(key)
    buf = ctypes.create_string_buffer(65)
    _lib.load().mesatee_key_to_hex(k, buf)
    return buf.value.decode()


def key_from_hex(text: str) -> bytes:
    b = _str(text, "hex key")
    if len(text) != 64:
        raise ValueError("a hex key has 64 hex characters, not %d" % len(text))
    buf = ctypes.create_string_buffer(32)
    rc = _lib.load().mesatee_key_from_hex(b, buf)
    if rc:
        raise _fail_local(rc)
    return buf.raw


def write_key(key: bytes, path: PathLike) -> None:
    """Writes the key as hex to a new file of mode 0600 (never overwrites:
    ConflictError when the file exists)."""
    rc = _lib.load().mesatee_key_write_file(_key(key), _path(path, "path"))
    if rc:
        raise _fail_local(rc)


def read_key(path: PathLike) -> bytes:
    """Reads a key file (64 hex characters); refuses files others may read."""
    buf = ctypes.create_string_buffer(32)
    rc = _lib.load().mesatee_key_read_file(_path(path, "path"), buf)
    if rc:
        raise _fail_local(rc)
    return buf.raw


def encrypt_file(src: PathLike, dst: PathLike, key: Optional[bytes] = None) -> bytes:
    """Encrypts src into dst in mesatee's file format; returns the key (a new
    random one unless given)."""
    s, d = _path(src, "src"), _path(dst, "dst")
    k = generate_key() if key is None else _key(key)
    rc = _lib.load().mesatee_file_encrypt(k, s, d)
    if rc:
        raise _fail_local(rc)
    return k


def decrypt_file(src: PathLike, dst: PathLike, key: bytes, *, task_id: Optional[str] = None,
                 slot: Optional[str] = None, file_id: Optional[str] = None,
                 allow_unbound: bool = False) -> None:
    """Decrypts and authenticates src into dst (DecryptionError on a wrong key
    or tampering; dst untouched then). With task_id, slot and file_id the
    file must be that task's output in that slot (the host cannot swap
    outputs)."""
    s, d, k = _path(src, "src"), _path(dst, "dst"), _key(key)
    lib = _lib.load()
    bound = (task_id, slot, file_id)
    if any(v is not None for v in bound):
        if any(v is None for v in bound):
            raise ValueError("give all of task_id, slot and file_id, or none")
        rc = lib.mesatee_file_decrypt_output(k, s, d, _id(task_id, "task_id"),
                                             _str(slot, "slot"), _id(file_id, "file_id"),
                                             _ALLOW_UNBOUND if allow_unbound else 0)
    else:
        rc = lib.mesatee_file_decrypt(k, s, d)
    if rc:
        raise _fail_local(rc)


def file_sha256(path: PathLike) -> str:
    buf = ctypes.create_string_buffer(65)
    rc = _lib.load().mesatee_file_sha256(_path(path, "path"), buf)
    if rc:
        raise _fail_local(rc)
    return buf.value.decode()


def version() -> str:
    """The version of the loaded libmesatee."""
    return _lib.load().mesatee_version().decode()


# ---------------------------------------------------------------------------
# the client


class Registered(NamedTuple):
    """An input registered by Files.put: its id and the key it is encrypted with."""
    file_id: str
    key: bytes


class Client:
    """A connection to one mesatee server (libmesatee handle).

    url:       "https://HOST[:PORT]"
    ca:        PEM file to verify the server with (its pinned certificate,
               <data-dir>/tls/server-cert.pem, or a CA); default: system CAs
    policy:    attestation policy file (docs/attestation.md): attested TLS,
               the server is verified inside the handshake (level >= soft);
               replaces ca
    policy_signers, policy_threshold: auditor signatures required on the
               policy (PATH.sig; 0 = all signers)
    tls_server_name: name to verify instead of the URL's host
    insecure_skip_verify: no verification at all (debugging only)
    timeout:   whole-request limit in seconds (None: none)
    token:     a bearer token from an earlier login

    Use as a context manager (`with Client(...) as c:`) or call close(). A
    client is safe to share between threads (calls are serialised)."""

    def __init__(self, url: str, *, policy: Optional[PathLike] = None,
                 ca: Optional[PathLike] = None, policy_signers: Optional[PathLike] = None,
                 policy_threshold: int = 0, tls_server_name: Optional[str] = None,
                 insecure_skip_verify: bool = False, timeout: Optional[float] = None,
                 token: Optional[str] = None):
        u = _str(url, "url")
        if not url.startswith("https://"):
            raise ValueError("url must start with https:// (got %r)" % url[:60])
        pol = None if policy is None else _path(policy, "policy")
        cab = None if ca is None else _path(ca, "ca")
        signers = None if policy_signers is None else _path(policy_signers, "policy_signers")
        if isinstance(policy_threshold, bool) or not isinstance(policy_threshold, int):
            raise TypeError("policy_threshold must be an int")
        if not 0 <= policy_threshold <= 1000:
            raise ValueError("policy_threshold must be 0 (all) to 1000")
        if signers is not None and pol is None:
            raise ValueError("policy_signers needs a policy")
        sni = _opt_str(tls_server_name, "tls_server_name")
        if not isinstance(insecure_skip_verify, bool):
            raise TypeError("insecure_skip_verify must be a bool")
        tmo = _timeout(timeout, "timeout")
        tok = _opt_str(token, "token")
        self._lock = threading.RLock()
        self._lib = _lib.load()
        self._h: Optional[int] = self._lib.mesatee_client_new(u)
        if not self._h:
            raise _fail_local(self._lib.mesatee_client_errcode(None) or 1)
        try:
            if sni is not None:
                self._check(self._lib.mesatee_client_set_tls_server_name(self._h, sni))
            if insecure_skip_verify:
                self._check(self._lib.mesatee_client_set_insecure_skip_verify(self._h, 1))
            if signers is not None:
                self._check(self._lib.mesatee_client_set_policy_signers(self._h, signers,
                                                                        policy_threshold))
            if pol is not None:
                self._check(self._lib.mesatee_client_set_policy_file(self._h, pol))
            elif cab is not None:
                self._check(self._lib.mesatee_client_set_ca_file(self._h, cab))
            if tmo:
                self._check(self._lib.mesatee_client_set_timeout(self._h, tmo))
            if tok is not None:
                self._check(self._lib.mesatee_client_set_token(self._h, tok))
        except BaseException:
            self.close()
            raise
        self.url = url
        self.files = Files(self)
        self.functions = Functions(self)
        self.tasks = Tasks(self)

    # -- plumbing ------------------------------------------------------------
    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        """Frees the handle (its token is wiped). Idempotent."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if getattr(self, "_h", None):
                self._lib.mesatee_client_free(self._h)
                self._h = None

    @property
    def closed(self) -> bool:
        return not getattr(self, "_h", None)

    def _handle(self) -> int:
        if not self._h:
            raise ValueError("the client is closed")
        return self._h

    def _error(self, rc: int) -> MesateeError:
        lib, h = self._lib, self._h
        msg = (lib.mesatee_client_errmsg(h) or b"").decode("utf-8", "replace")
        return from_status(rc, lib.mesatee_status_name(rc).decode(), msg,
                           lib.mesatee_client_http_status(h))

    def _check(self, rc: int) -> None:
        if rc:
            raise self._error(rc)

    @staticmethod
    def _take(p: ctypes.c_void_p, secret: bool = False) -> Optional[str]:
        if not p.value:
            return None
        s = ctypes.string_at(p.value)
        if secret:
            ctypes.memset(p.value, 0, len(s))
        _lib.load().mesatee_free(p.value)
        return s.decode("utf-8", "replace")

    def _invoke(self, fname: str, *args: Any, outs: int = 1, secret: Sequence[int] = ()
                ) -> List[Optional[str]]:
        """Calls fname(handle, *args, &out1, ...): the outputs as strings
        (freed in C); raises on failure."""
        with self._lock:
            h = self._handle()
            ptrs = [ctypes.c_void_p() for _ in range(outs)]
            rc = getattr(self._lib, fname)(h, *args, *[ctypes.byref(p) for p in ptrs])
            vals = [self._take(p, i in secret) for i, p in enumerate(ptrs)]
            if rc:
                raise self._error(rc)
            return vals

    @staticmethod
    def _json(text: Optional[str]) -> Any:
        return json.loads(text) if text else None

    # -- session ---------------------------------------------------------------
    def login(self, username: str, password: str) -> Json:
        """Logs in; the client keeps the token (Client.token). Returns the
        server's answer without the token."""
        u, p = _str(username, "username"), _str(password, "password")
        _, resp = self._invoke("mesatee_login", u, p, outs=2, secret=(0, 1))
        ans = self._json(resp) or {}
        ans.pop("token", None)
        return ans

    def logout(self) -> None:
        """Revokes the current token."""
        self._invoke("mesatee_logout")

    @property
    def token(self) -> Optional[str]:
        """The bearer token (from login, or given), or None."""
        with self._lock:
            t = self._lib.mesatee_client_token(self._handle())
            return t.decode() if t else None

    @token.setter
    def token(self, value: Optional[str]) -> None:
        b = _opt_str(value, "token")
        with self._lock:
            self._check(self._lib.mesatee_client_set_token(self._handle(), b))

    def whoami(self) -> Json:
        return self._json(self._invoke("mesatee_whoami")[0])

    def user_add(self, username: str, password: str, role: str = "user") -> Json:
        """(administrators) Creates a user; role "user" or "admin"."""
        if role not in ("user", "admin"):
            raise ValueError("role must be 'user' or 'admin', not %r" % (role,))
        return self._json(self._invoke("mesatee_user_add", _str(username, "username"),
                                       _str(password, "password"), role.encode())[0])

    def attest(self) -> Json:
        """TLS handshake only: the server's attestation claims (with a policy:
        enforced, and "policy_satisfied": true)."""
        return self._json(self._invoke("mesatee_client_attest")[0])

    def builtins(self) -> Json:
        """GET /v1/builtins: built-ins, wasm reserved arguments, python modules."""
        return self._json(self._invoke("mesatee_builtins")[0])

    def call(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        """Any REST call (docs/api/openapi.yaml): body is JSON-encoded; the
        JSON answer is returned decoded."""
        if method not in ("GET", "POST", "PUT", "DELETE"):
            raise ValueError("method must be GET, POST, PUT or DELETE")
        p = _str(path, "path")
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        b = None if body is None else json.dumps(body).encode()
        return self._json(self._invoke("mesatee_call", method.encode(), p, b)[0])

    def _list(self, path: str, key: str) -> List[Json]:
        ans = self._json(self._invoke("mesatee_list_all", path.encode(), key.encode())[0])
        return list(ans.get(key, []))


class Files:
    """Inputs and outputs: encryption, upload, registration, download."""

    def __init__(self, client: Client):
        self._c = client

    @staticmethod
    def encrypt(src: PathLike, dst: PathLike, key: Optional[bytes] = None) -> bytes:
        """Encrypts src into dst; returns the key (new unless given)."""
        return encrypt_file(src, dst, key)

    @staticmethod
    def decrypt(src: PathLike, dst: PathLike, key: bytes, **bound: Any) -> None:
        """decrypt_file: task_id=, slot=, file_id= bind it to a task's output."""
        decrypt_file(src, dst, key, **bound)

    def upload(self, path: PathLike) -> str:
        """Uploads ciphertext (streamed from path); returns its URL."""
        url, _ = self._c._invoke("mesatee_upload_file", _path(path, "path"), outs=2)
        return str(url)

    def register(self, url: str, key: bytes, *, sha256: Optional[str] = None,
                 name: Optional[str] = None) -> str:
        """Registers an input at url, encrypted with key; returns its file id."""
        u, k = _str(url, "url"), _key(key)
        if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", _str(sha256, "sha256")
                                                    .decode()):
            raise ValueError("sha256 must be 64 hex characters")
        fid, _ = self._c._invoke("mesatee_file_register_input", u, k,
                                 _opt_str(sha256, "sha256"), _opt_str(name, "name"), outs=2)
        return str(fid)

    def register_output(self, key: bytes, *, name: Optional[str] = None,
                        allow_key_reuse: bool = False) -> str:
        """Registers an output file that a task will write under key."""
        k = _key(key)
        fid, _ = self._c._invoke("mesatee_file_register_output_ex", k, _opt_str(name, "name"),
                                 _ALLOW_KEY_REUSE if allow_key_reuse else 0, outs=2)
        return str(fid)

    def register_fusion(self, owners: Sequence[str], *, name: Optional[str] = None) -> str:
        """A fusion output owned by several users (the caller included)."""
        if isinstance(owners, str) or not isinstance(owners, (list, tuple)):
            raise TypeError("owners must be a list of usernames")
        if not owners:
            raise ValueError("owners must not be empty")
        arr = (ctypes.c_char_p * len(owners))(*[_str(o, "owner") for o in owners])
        fid, _ = self._c._invoke("mesatee_file_register_fusion", arr, len(owners),
                                 _opt_str(name, "name"), outs=2)
        return str(fid)

    def put(self, path: PathLike, *, name: Optional[str] = None,
            key: Optional[bytes] = None) -> Registered:
        """encrypt + upload + register in one step: returns (file_id, key). The
        ciphertext goes through a temporary file that is removed."""
        src = _path(path, "path")
        with tempfile.TemporaryDirectory(prefix="mesatee-put-") as d:
            enc = os.path.join(d, "input.enc")
            k = encrypt_file(src.decode(), enc, key)
            url = self.upload(enc)
            return Registered(self.register(url, k, sha256=file_sha256(enc), name=name), k)

    def download(self, file_id: str, out: PathLike, *, allow_unbound: bool = False) -> None:
        """Downloads an output's ciphertext into out (decrypt it with
        Files.decrypt, or use Tasks.result)."""
        with self._c._lock:
            rc = self._c._lib.mesatee_file_download_ex(
                self._c._handle(), _id(file_id, "file_id"), _path(out, "out"),
                _ALLOW_UNBOUND if allow_unbound else 0)
            self._c._check(rc)

    def get(self, file_id: str) -> Json:
        return self._c.call("GET", "/v1/files/" + _id(file_id, "file_id").decode())

    def list(self) -> List[Json]:
        return self._c._list("/v1/files", "files")


def _slots(v: Any, what: str) -> List[Json]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise TypeError("%s must be a list of slot names" % what)
    return [{"name": _slot_name(s, what[:-1]), "description": "", "optional": False}
            for s in v]


class Functions:
    """Function registration (builtin, wasm or python)."""

    def __init__(self, client: Client):
        self._c = client

    def register(self, name: str, *, builtin: Optional[str] = None,
                 python: Optional[PathLike] = None, wasm: Optional[PathLike] = None,
                 inputs: Sequence[str] = (), outputs: Sequence[str] = (),
                 arguments: Optional[Mapping[str, Any]] = None,
                 overridable: Iterable[str] = (), public: Optional[bool] = None,
                 allow: Sequence[str] = (), description: str = "",
                 usage_quota: Optional[int] = None) -> str:
        """Registers a function; exactly one of builtin (a built-in's name),
        python (path of the source, or of a zip of modules) or wasm (path of
        the module). arguments: defaults; the names in overridable may be
        changed per task. Returns the function id."""
        _str(name, "name")
        if (builtin is not None) + (python is not None) + (wasm is not None) != 1:
            raise ValueError("give exactly one of builtin=, python= and wasm=")
        _str(description, "description", empty=True)
        spec: Json = {"name": name, "description": description,
                      "executor_type": "builtin" if builtin is not None else
                      "python" if python is not None else "wasm"}
        if builtin is not None:
            spec["builtin"] = _str(builtin, "builtin").decode()
        else:
            p = os.fsdecode(_path(python if python is not None else wasm,
                                  "python" if python is not None else "wasm"))
            with open(p, "rb") as f:
                payload = f.read(8 * 1024 * 1024 + 1)
            if len(payload) > 8 * 1024 * 1024:
                raise ValueError("%s: the payload is over 8 MiB" % p)
            spec["payload"] = base64.b64encode(payload).decode()
        if public is not None:
            if not isinstance(public, bool):
                raise TypeError("public must be a bool or None")
            spec["public"] = public
        if isinstance(allow, str) or not isinstance(allow, (list, tuple)):
            raise TypeError("allow must be a list of usernames")
        spec["allowlist"] = [_str(a, "allow entry").decode() for a in allow]
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise TypeError("arguments must be a mapping of name to default")
        over = set(overridable)
        if not over <= set(arguments):
            raise ValueError("overridable names no argument: %s" % sorted(over - set(arguments)))
        spec["arguments"] = [{"name": _slot_name(k, "argument name"),
                              "default": _argval(v, "argument %s" % k),
                              "overridable": k in over} for k, v in arguments.items()]
        spec["inputs"] = _slots(inputs, "inputs")
        spec["outputs"] = _slots(outputs, "outputs")
        if usage_quota is not None:
            if isinstance(usage_quota, bool) or not isinstance(usage_quota, int):
                raise TypeError("usage_quota must be an int")
            if not 0 <= usage_quota <= 2147483647:
                raise ValueError("usage_quota must be 0 to 2147483647")
            spec["usage_quota"] = usage_quota
        fid, _ = self._c._invoke("mesatee_function_register", json.dumps(spec).encode(), outs=2)
        return str(fid)

    def get(self, function_id: str) -> Json:
        return self._c.call("GET", "/v1/functions/" + _id(function_id, "function_id").decode())

    def list(self) -> List[Json]:
        return self._c._list("/v1/functions", "functions")


def _owners(v: Any, what: str) -> List[Json]:
    if not isinstance(v, Mapping):
        raise TypeError("%s must be a mapping of slot to owner(s)" % what)
    out = []
    for slot, who in v.items():
        _slot_name(slot, "%s slot" % what)
        names = [who] if isinstance(who, str) else who
        if not isinstance(names, (list, tuple)) or not names:
            raise TypeError("%s[%r] must be a username or a non-empty list of them"
                            % (what, slot))
        out.append({"name": slot, "owners": [_str(n, "owner").decode() for n in names]})
    return out


def _bindings(v: Any, what: str) -> Dict[str, str]:
    if not isinstance(v, Mapping):
        raise TypeError("%s must be a mapping of slot to file id" % what)
    return {_slot_name(s, "%s slot" % what): _id(f, "%s[%r]" % (what, s)).decode()
            for s, f in v.items()}


class Tasks:
    """Task life cycle: create, assign, approve, invoke, wait, result."""

    def __init__(self, client: Client):
        self._c = client

    def create(self, function_id: str, *, inputs: Optional[Mapping[str, Any]] = None,
               outputs: Optional[Mapping[str, Any]] = None,
               arguments: Optional[Mapping[str, Any]] = None) -> str:
        """Creates a task of function_id. inputs/outputs map each slot to its
        owner (a username, or a list of them); arguments override the
        function's overridable defaults. Returns the task id."""
        fid = _id(function_id, "function_id").decode()
        args = {} if arguments is None else arguments
        if not isinstance(args, Mapping):
            raise TypeError("arguments must be a mapping")
        spec = {"function_id": fid,
                "arguments": {_slot_name(k, "argument name"): _argval(v, "argument %s" % k)
                              for k, v in args.items()},
                "inputs": _owners(inputs or {}, "inputs"),
                "outputs": _owners(outputs or {}, "outputs")}
        tid, _ = self._c._invoke("mesatee_task_create", json.dumps(spec).encode(), outs=2)
        return str(tid)

    def assign(self, task_id: str, *, inputs: Optional[Mapping[str, str]] = None,
               outputs: Optional[Mapping[str, str]] = None) -> None:
        """Binds the caller's files to the task's slots ({slot: file_id})."""
        t = _id(task_id, "task_id")
        body = {"inputs": _bindings(inputs or {}, "inputs"),
                "outputs": _bindings(outputs or {}, "outputs")}
        if not body["inputs"] and not body["outputs"]:
            raise ValueError("give at least one input or output binding")
        self._c._invoke("mesatee_task_assign", t, json.dumps(body).encode())

    def approve(self, task_id: str) -> None:
        """Approves the task (its function, arguments and bindings) as the caller."""
        self._c._invoke("mesatee_task_approve", _id(task_id, "task_id"))

    def invoke(self, task_id: str) -> None:
        """Starts an approved task."""
        self._c._invoke("mesatee_task_invoke", _id(task_id, "task_id"))

    def cancel(self, task_id: str) -> None:
        self._c._invoke("mesatee_task_cancel", _id(task_id, "task_id"))

    def get(self, task_id: str) -> Json:
        """The task as the server shows it to the caller (status, slots,
        approvals, result, log, metering)."""
        return self._c._json(self._c._invoke("mesatee_task_get", _id(task_id, "task_id"))[0])

    def list(self) -> List[Json]:
        return self._c._list("/v1/tasks", "tasks")

    def wait(self, task_id: str, timeout: Optional[float] = None, *, check: bool = True) -> Json:
        """Waits (long polls) until the task is finished, failed or canceled
        and returns it. check: a failed or canceled task raises
        TaskFailedError. WaitTimeoutError after timeout seconds."""
        t = _id(task_id, "task_id")
        tmo = _timeout(timeout, "timeout")
        c = self._c
        with c._lock:
            h = c._handle()
            status = ctypes.create_string_buffer(16)
            p = ctypes.c_void_p()
            rc = c._lib.mesatee_task_wait(h, t, tmo, status, ctypes.byref(p))
            text = c._take(p)
            if rc:
                err = c._error(rc)
                if isinstance(err, WaitTimeoutError):
                    err.task = c._json(text)
                raise err
        task = c._json(text)
        if check and task.get("status") in ("failed", "canceled"):
            raise TaskFailedError(task)
        return task

    def result(self, task_id: str, slot: Optional[str] = None, *, key: Optional[bytes] = None,
               out: Optional[PathLike] = None, allow_unbound: bool = False
               ) -> Union[str, bytes, None]:
        """The result of a finished task (TaskFailedError when it failed,
        ConflictError when it is not finished yet).

        Without slot: the function's return value (str, or None).
        With slot and key: downloads the output bound to that slot, checks it
        is this task's output for this slot and file, and decrypts it: into
        out (returns None) or, without out, returns the plaintext bytes."""
        t = _id(task_id, "task_id")
        if slot is not None:
            _str(slot, "slot")
            k = _key(key) if key is not None else None
            if k is None:
                raise TypeError("result(slot=...) needs key=")
            o = None if out is None else _path(out, "out")
        elif key is not None or out is not None:
            raise ValueError("key= and out= go with slot=")
        task = self.get(t.decode())
        st = task.get("status")
        if st in ("failed", "canceled"):
            raise TaskFailedError(task)
        if st != "finished":
            raise ConflictError(5, "conflict", "task %s is %s, not finished" % (task_id, st))
        if slot is None:
            rv = (task.get("result") or {}).get("return_value")
            return None if rv is None else str(rv)
        fid = ((task.get("assignments") or {}).get("outputs") or {}).get(slot)
        if not isinstance(fid, str) or not _ID.match(fid):
            raise ValueError("task %s has no output slot %r bound to a file" % (task_id, slot))
        flags = _ALLOW_UNBOUND if allow_unbound else 0
        c = self._c
        if o is not None:
            with c._lock:
                c._check(c._lib.mesatee_task_output_download(
                    c._handle(), t, slot.encode(), fid.encode(), k, o, flags))
            return None
        with tempfile.TemporaryDirectory(prefix="mesatee-result-") as d:
            tmp = os.path.join(d, "out")
            with c._lock:
                c._check(c._lib.mesatee_task_output_download(
                    c._handle(), t, slot.encode(), fid.encode(), k, tmp.encode(), flags))
            with open(tmp, "rb") as f:
                return f.read()
