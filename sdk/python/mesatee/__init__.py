"""mesatee: Python SDK for the mesatee secure-computing platform.

A Pythonic layer over libmesatee (the C client library) through ctypes:

    import mesatee
    with mesatee.Client("https://server:8443", policy="policy.json") as c:
        c.login("alice", password)
        inp = c.files.put("data.csv")                       # encrypt, upload, register
        fn = c.functions.register("linreg", python="linreg.py", inputs=["a", "b"])
        t = c.tasks.create(fn, inputs={"a": "alice", "b": "bob"})
        c.tasks.assign(t, inputs={"a": inp.file_id})
        c.tasks.approve(t); c.tasks.invoke(t)
        c.tasks.wait(t, timeout=120)
        print(c.tasks.result(t))

libmesatee is found through MESATEE_LIB, next to this package, or on the
system library path (docs/python.md)."""
from .client import (Client, Files, Functions, Registered, Tasks, decrypt_file, encrypt_file,
                     file_sha256, generate_key, key_from_hex, key_to_hex, read_key, version,
                     write_key)
from .errors import (AttestationError, AuthenticationError, ConflictError, DecryptionError,
                     InvalidArgumentError, LocalIOError, MesateeError, NetworkError,
                     NotFoundError, OutOfMemoryError, PermissionDeniedError,
                     QuotaExceededError, ServerError, TaskFailedError, TooBigError,
                     WaitTimeoutError)

__version__ = "0.1.0"
__all__ = [
    "Client", "Files", "Functions", "Tasks", "Registered", "decrypt_file", "encrypt_file",
    "file_sha256", "generate_key", "key_from_hex", "key_to_hex", "read_key", "write_key",
    "version", "MesateeError", "InvalidArgumentError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "ConflictError", "TooBigError",
    "QuotaExceededError", "DecryptionError", "LocalIOError", "OutOfMemoryError", "NetworkError",
    "ServerError", "WaitTimeoutError", "AttestationError", "TaskFailedError",
]
