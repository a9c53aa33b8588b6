"""Loads libmesatee and applies the signature table (_sigs.py).

Where the library is looked for, first match wins:
  1. the environment variable MESATEE_LIB: the path of libmesatee.so(.0);
  2. next to this package: mesatee/libmesatee.so.0 or mesatee/libmesatee.so
     (a wheel or a copy that bundles the library);
  3. the system's library path: libmesatee.so.0 (the SONAME; installed by
     `cmake --install` or the .deb), found by the dynamic loader.
"""
import ctypes
import os
import threading
from typing import Optional

from . import _sigs

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def _ctype(c_type: str):
    name = _sigs.CTYPE_NAMES[c_type]
    if name == "None":
        return None
    if name.startswith("POINTER("):
        return ctypes.POINTER(getattr(ctypes, name[8:-1]))
    return getattr(ctypes, name)


def _candidates():
    env = os.environ.get("MESATEE_LIB")
    if env:
        return [("MESATEE_LIB", env)]
    here = os.path.dirname(os.path.abspath(__file__))
    out = [("package", os.path.join(here, n)) for n in ("libmesatee.so.0", "libmesatee.so")
           if os.path.exists(os.path.join(here, n))]
    return out + [("system", "libmesatee.so.0")]


def load() -> ctypes.CDLL:
    """The loaded library, with argtypes/restype set from the table.
    Raises OSError naming what was tried."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for where, path in _candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried.append("%s (%s): %s" % (path, where, e))
                continue
            for name, (ret, args) in _sigs.SIGNATURES.items():
                try:
                    fn = getattr(lib, name)
                except AttributeError:
                    raise OSError("%s does not export %s: an older libmesatee than this "
                                  "SDK" % (path, name)) from None
                fn.restype = _ctype(ret)
                fn.argtypes = [_ctype(a) for a in args]
            _lib = lib
            return lib
        raise OSError("libmesatee not found; set MESATEE_LIB to the path of libmesatee.so "
                      "(tried: %s)" % "; ".join(tried))


def path_of_loaded() -> Optional[str]:
    return _lib._name if _lib is not None else None
