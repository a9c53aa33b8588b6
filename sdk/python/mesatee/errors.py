"""Exceptions of the mesatee SDK.

Every failure of libmesatee raises a MesateeError subclass chosen by the
library's status (mesatee_status in mesatee.h). For an answer of the server,
`code` and `message` are the server's error code and message (the JSON
{"error": {"code", "message"}} of docs/api/openapi.yaml) and `http_status`
its HTTP status; for local failures (files, keys, TLS, attestation) `code`
is the library's status name ("io_error", "attestation_failed", ...) and
`message` the library's message.

Bad arguments to the SDK itself (wrong type, malformed id, a key that is not
32 bytes, a NUL in a string) raise TypeError or ValueError before anything
reaches the C library."""
import re
from typing import Any, Dict, Optional

_HTTP = re.compile(r"HTTP (\d{3}) ([a-z_][a-z0-9_]*): (.*)\Z", re.S)
_HTTP_TEXT = re.compile(r"HTTP (\d{3}):? (.*)\Z", re.S)


class MesateeError(Exception):
    """A failure reported by libmesatee or the server.

    status:      libmesatee's status number (MESATEE_E*; 0 for TaskFailedError)
    code:        the server's error code ("not_found", "conflict", ...) or the
                 library's status name for a local failure
    message:     the server's (or library's) message
    http_status: HTTP status of the answer; 0 when the server gave none
    """

    status = -1

    def __init__(self, status: int, code: str, message: str, http_status: int = 0,
                 full: Optional[str] = None):
        self.status = status
        self.code = code
        self.message = message
        self.http_status = http_status
        super().__init__(full or message)

    def __repr__(self) -> str:
        return "%s(code=%r, message=%r, http_status=%d)" % (
            type(self).__name__, self.code, self.message, self.http_status)


class InvalidArgumentError(MesateeError):
    """MESATEE_EINVAL: the server (400) or the library refused an argument."""
    status = 1


class AuthenticationError(MesateeError):
    """MESATEE_EAUTH: not logged in, bad credentials, expired token (401)."""
    status = 2


class PermissionDeniedError(MesateeError):
    """MESATEE_EPERM: not allowed (403)."""
    status = 3


class NotFoundError(MesateeError):
    """MESATEE_ENOTFOUND: no such object, or not visible to the caller (404)."""
    status = 4


class ConflictError(MesateeError):
    """MESATEE_ECONFLICT: exists already, or the object is in the wrong state (409)."""
    status = 5


class TooBigError(MesateeError):
    """MESATEE_ETOOBIG: over a size limit (413)."""
    status = 6


class QuotaExceededError(MesateeError):
    """MESATEE_EQUOTA: usage quota exhausted (429)."""
    status = 7


class DecryptionError(MesateeError):
    """MESATEE_ECRYPTO: decryption or authentication failed (wrong key,
    tampering, or an output bound to another task, slot or file)."""
    status = 8


class LocalIOError(MesateeError):
    """MESATEE_EIO: a local file could not be read or written."""
    status = 9


class OutOfMemoryError(MesateeError):
    """MESATEE_ENOMEM."""
    status = 10


class NetworkError(MesateeError):
    """MESATEE_ENET: connection, TLS or transfer failure; no HTTP answer."""
    status = 11


class ServerError(MesateeError):
    """MESATEE_ESERVER: a 5xx answer, or an answer that makes no sense."""
    status = 12


class WaitTimeoutError(MesateeError):
    """MESATEE_ETIMEOUT: Tasks.wait gave up before the task ended; `task`
    holds the last state seen."""
    status = 13
    task: Optional[Dict[str, Any]] = None


class AttestationError(MesateeError):
    """MESATEE_EATTEST: the server's attestation is missing, invalid or fails
    the policy (the TLS handshake was aborted before any request)."""
    status = 14


class TaskFailedError(MesateeError):
    """A task ended as failed or canceled (Tasks.wait, Tasks.result): code is
    the task's status, message its failure reason; `task` is the task."""
    status = 0

    def __init__(self, task: Dict[str, Any]):
        st = str(task.get("status"))
        reason = task.get("failure_reason") or ("canceled" if st == "canceled" else "")
        super().__init__(0, st, str(reason),
                         full="task %s %s: %s" % (task.get("task_id"), st, reason))
        self.task = task
        self.log = task.get("log")


_BY_STATUS = {c.status: c for c in (
    InvalidArgumentError, AuthenticationError, PermissionDeniedError, NotFoundError,
    ConflictError, TooBigError, QuotaExceededError, DecryptionError, LocalIOError,
    OutOfMemoryError, NetworkError, ServerError, WaitTimeoutError, AttestationError)}


def from_status(status: int, status_name: str, errmsg: str, http_status: int) -> MesateeError:
    """The exception for a libmesatee failure (status != 0) with the handle's
    (or thread's) message; the server's code and message are read from the
    library's "HTTP <n> <code>: <message>" form."""
    cls = _BY_STATUS.get(status, MesateeError)
    code, message = status_name, errmsg or status_name
    m = _HTTP.match(errmsg or "")
    if m:
        http_status, code, message = int(m.group(1)), m.group(2), m.group(3)
    else:
        m = _HTTP_TEXT.match(errmsg or "")
        if m:
            http_status, message = int(m.group(1)), m.group(2)
    return cls(status, code, message, http_status, full=errmsg or status_name)
