#!/usr/bin/env python3
"""Checks the Python SDK's ctypes signature table (sdk/python/mesatee/_sigs.py)
against libmesatee's public header (src/client/mesatee.h), so that the two
cannot drift apart. Run by the build (a stamp target) and by ctest
(py_sdk_sigs).

The header is read by a small, strict parser of its prototypes: every
declaration that starts with MESATEE_API must have the form
    MESATEE_API [MESATEE_MUST_CHECK] RET [*] NAME(PARAM, ...);
where each PARAM is a type followed by a name (optionally an array [N]) or
the single word void. Anything else is an error naming the line, so a new
shape of declaration is seen rather than skipped.

Fails (exit 1), naming the function, when:
  - a function in the table is not in the header, or its return type or
    any argument type differs (names of parameters are ignored);
  - a function of the header is neither in the table nor in NOT_WRAPPED;
  - a function is both wrapped and listed as not wrapped;
  - (with --lib) the shared library exports a mesatee_* function that the
    header does not declare, or lacks one that the header declares.

Usage: check_sigs.py HEADER [--lib libmesatee.so] [--stamp FILE]"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from mesatee import _sigs  # noqa: E402  (pure data: does not load the library)

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class HeaderError(Exception):
    pass


def norm_type(tokens):
    """Canonical spelling of a C type: tokens joined by single spaces, with
    '*' attached to what follows ("const char *const *")."""
    out = ""
    for t in tokens:
        if t == "*":
            out += " *" if out and not out.endswith("*") else "*"
        elif out.endswith("*"):
            out += t
        else:
            out += (" " if out else "") + t
    return out


def tokenize(s):
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\*|\[|\]|\S", s)


def parse_param(text, where):
    toks = tokenize(text)
    if toks == ["void"]:
        return None
    arr = ""
    if len(toks) >= 3 and toks[-1] == "]":
        if toks[-3] != "[" or not toks[-2].isdigit():
            raise HeaderError("%s: cannot read array parameter '%s'" % (where, text))
        arr = " [%s]" % toks[-2]
        toks = toks[:-3]
    if len(toks) < 2 or not IDENT.match(toks[-1]) or toks[-1] in ("const", "void", "int",
                                                                  "char", "unsigned"):
        raise HeaderError("%s: parameter '%s' has no name" % (where, text.strip()))
    for t in toks[:-1]:
        if not (t == "*" or IDENT.match(t)):
            raise HeaderError("%s: cannot read parameter '%s'" % (where, text.strip()))
    return norm_type(toks[:-1]) + arr


def parse_header(path):
    """{name: (return type, [argument types])} of every MESATEE_API function."""
    src = open(path, encoding="utf-8").read()
    # comments become spaces (keeping newlines, for line numbers)
    src = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    lines = src.split("\n")
    # preprocessor lines (with continuations) are dropped
    keep, cont = [], False
    for ln in lines:
        s = ln.strip()
        drop = cont or s.startswith("#")
        cont = drop and s.endswith("\\")
        keep.append("" if drop else ln)
    src = "\n".join(keep)
    funcs = {}
    for m in re.finditer(r"\bMESATEE_API\b", src):
        line = src.count("\n", 0, m.start()) + 1
        where = "%s:%d" % (os.path.basename(path), line)
        end = src.find(";", m.end())
        if end < 0:
            raise HeaderError("%s: declaration without ';'" % where)
        decl = " ".join(src[m.end():end].split())
        dm = re.fullmatch(r"(?:MESATEE_MUST_CHECK\s+)?(.+?)\s*\b(mesatee_[a-z0-9_]+)\s*\((.*)\)",
                          decl)
        if not dm:
            raise HeaderError("%s: not a function prototype: '%s'" % (where, decl))
        ret_toks = tokenize(dm.group(1))
        if "MESATEE_MUST_CHECK" in ret_toks:
            ret_toks.remove("MESATEE_MUST_CHECK")
        if not ret_toks or any(not (t == "*" or IDENT.match(t)) for t in ret_toks):
            raise HeaderError("%s: cannot read the return type of %s" % (where, dm.group(2)))
        name = dm.group(2)
        if name in funcs:
            raise HeaderError("%s: %s declared twice" % (where, name))
        params = [p for p in (parse_param(t, where + " " + name)
                              for t in dm.group(3).split(",")) if p is not None]
        funcs[name] = (norm_type(ret_toks), params)
    if not funcs:
        raise HeaderError("%s: no MESATEE_API prototypes found" % path)
    return funcs


def exported_symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    syms = set()
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[1] in ("T", "t", "W") and parts[2].startswith("mesatee_"):
            syms.add(parts[2].split("@")[0])
    return syms


def check(header, lib=None):
    errors = []
    funcs = parse_header(header)
    table = _sigs.SIGNATURES
    for name, (ret, args) in sorted(table.items()):
        if name not in funcs:
            errors.append("%s: in the ctypes table but not declared in %s" % (name, header))
            continue
        hret, hargs = funcs[name]
        if ret != hret:
            errors.append("%s: return type: table '%s', header '%s'" % (name, ret, hret))
        if len(args) != len(hargs):
            errors.append("%s: %d arguments in the table, %d in the header (%s)"
                          % (name, len(args), len(hargs), ", ".join(hargs)))
        else:
            for i, (a, h) in enumerate(zip(args, hargs)):
                if a != h:
                    errors.append("%s: argument %d: table '%s', header '%s'" % (name, i + 1, a, h))
        if not _sigs.ctype_known(ret) or any(not _sigs.ctype_known(a) for a in args):
            errors.append("%s: a type of the table has no ctypes mapping" % name)
    for name in sorted(_sigs.NOT_WRAPPED):
        if name in table:
            errors.append("%s: both wrapped and listed in NOT_WRAPPED" % name)
        if name not in funcs:
            errors.append("%s: listed in NOT_WRAPPED but not declared in %s" % (name, header))
    for name in sorted(funcs):
        if name not in table and name not in _sigs.NOT_WRAPPED:
            errors.append("%s: declared in %s but neither wrapped in mesatee/_sigs.py nor "
                          "listed in NOT_WRAPPED" % (name, header))
    if lib:
        syms = exported_symbols(lib)
        for s in sorted(syms - set(funcs)):
            errors.append("%s: exported by %s but not declared in the header" % (s, lib))
        for s in sorted(set(funcs) - syms):
            errors.append("%s: declared in the header but not exported by %s" % (s, lib))
    return funcs, errors


def main(argv):
    args = argv[1:]
    lib = stamp = None
    while len(args) > 1 and args[-2] in ("--lib", "--stamp"):
        if args[-2] == "--lib":
            lib = args[-1]
        else:
            stamp = args[-1]
        args = args[:-2]
    if len(args) != 1:
        print(__doc__.split("Usage: ")[1], file=sys.stderr)
        return 2
    try:
        funcs, errors = check(args[0], lib)
    except (HeaderError, OSError, subprocess.CalledProcessError) as e:
        print("check_sigs: %s" % e, file=sys.stderr)
        return 1
    for e in errors:
        print("check_sigs: drift: %s" % e, file=sys.stderr)
    if errors:
        return 1
    print("check_sigs: %d functions in %s: %d wrapped with matching signatures, %d not wrapped"
          % (len(funcs), os.path.basename(args[0]), len(_sigs.SIGNATURES), len(_sigs.NOT_WRAPPED)))
    if stamp:
        with open(stamp, "w") as f:
            f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
