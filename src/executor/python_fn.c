/* python_fn: executor type "python" (see python_fn.h): CPython 3.11 embedded
 * in mesatee-worker, the `mesatee` module, the audit hook and the runner. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python_fn.h"

#include "mt_bschema.h"
#include "python_modules.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The interpreter's files: read-only, nothing else (Landlock, sandbox.h). */
static const char *const ro_paths[] = {
    "/usr/lib/python3.11",
    "/usr/lib/python3/dist-packages",
    "/usr/lib/x86_64-linux-gnu", /* shared libraries of extension modules (OpenBLAS, ...) */
    "/usr/lib/aarch64-linux-gnu",
    "/usr/share/zoneinfo",       /* time zones for datetime/pandas */
    NULL,
};

const char *const *mt_python_fn_allowed(void)
{
    return mt_bschema_python_modules();
}

const char *const *mt_python_fn_ro_paths(void)
{
    return ro_paths;
}

/* ---- per-process state (one interpreter, one task) ---- */

static mt_bctx *g_ctx;
static bool g_armed;          /* the function's code runs: the audit hook refuses */
static char *g_result;        /* set_result value (heap) */
static uint64_t g_out_total, g_out_max;

static PyObject *refuse(PyObject *exc, const char *what)
{
    PyErr_Format(exc, "%s is not allowed in mesatee functions", what);
    return NULL;
}

/* ---- audit hook: early, clear messages (the OS sandbox is the boundary) ---- */

static bool under_ro_path(const char *p)
{
    for (size_t i = 0; ro_paths[i]; i++) {
        size_t n = strlen(ro_paths[i]);
        if (!strncmp(p, ro_paths[i], n) && (p[n] == '/' || p[n] == 0))
            return true;
    }
    return false;
}

static int audit_hook(const char *event, PyObject *args, void *data)
{
    (void)data;
    if (!g_armed)
        return 0;
    if (!strcmp(event, "open")) {
        PyObject *path = PyTuple_Size(args) > 0 ? PyTuple_GetItem(args, 0) : NULL;
        PyObject *mode = PyTuple_Size(args) > 1 ? PyTuple_GetItem(args, 1) : NULL;
        PyObject *flags = PyTuple_Size(args) > 2 ? PyTuple_GetItem(args, 2) : NULL;
        bool write = false;
        if (mode && PyUnicode_Check(mode)) {
            const char *m = PyUnicode_AsUTF8(mode);
            write = m && strpbrk(m, "wax+") != NULL;
        }
        if (flags && PyLong_Check(flags)) {
            long f = PyLong_AsLong(flags);
            write = write || (f & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) != 0;
        }
        PyErr_Clear();
        if (write) {
            refuse(PyExc_PermissionError, "writing files");
            return -1;
        }
        if (path && PyUnicode_Check(path)) {
            const char *p = PyUnicode_AsUTF8(path);
            if (!p || !under_ro_path(p)) {
                PyErr_Clear();
                refuse(PyExc_PermissionError,
                       "reading files (use mesatee.open_input for the task's inputs)");
                return -1;
            }
        }
        return 0;
    }
    static const struct {
        const char *prefix, *what;
    } refused[] = {
        {"socket.", "network access"},          {"os.system", "running commands"},
        {"os.exec", "running programs"},        {"os.posix_spawn", "starting processes"},
        {"os.fork", "starting processes"},      {"subprocess.", "starting processes"},
        {"os.kill", "sending signals"},
        {"resource.prlimit", "changing resource limits"},
        {"resource.setrlimit", "changing resource limits"},
        {"os.remove", "changing files"},        {"os.rename", "changing files"},
        {"os.mkdir", "changing files"},         {"os.chmod", "changing files"},
        {"shutil.", "changing files"},          {"sys.addaudithook", "adding audit hooks"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!strncmp(event, refused[i].prefix, strlen(refused[i].prefix))) {
            refuse(PyExc_PermissionError, refused[i].what);
            return -1;
        }
    return 0;
}

/* ---- the `mesatee` module: C part ---- */

static PyObject *m_input(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *slot = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!slot) {
        PyErr_SetString(PyExc_TypeError, "mesatee.open_input: the slot must be a str");
        return NULL;
    }
    const mt_bctx_input *in = g_ctx ? mt_bctx_input_find(g_ctx, slot) : NULL;
    if (!in) {
        PyErr_Format(PyExc_KeyError, "mesatee.open_input: no input is assigned to slot '%.128s'",
                     slot);
        return NULL;
    }
    /* A read-only view of the worker's decrypted buffer, no copy: the buffer
     * lives until the worker exits (worker_main.c frees the inputs only after
     * the function returned and never runs Python again), and it holds this
     * task's input only (a fresh process per task). */
    if (in->len > (size_t)PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_OverflowError, "mesatee.open_input: input too large");
        return NULL;
    }
    return PyMemoryView_FromMemory((char *)(uintptr_t)in->data, (Py_ssize_t)in->len, PyBUF_READ);
}

static PyObject *m_output_index(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *slot = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!slot) {
        PyErr_SetString(PyExc_TypeError, "mesatee.create_output: the slot must be a str");
        return NULL;
    }
    for (size_t i = 0; g_ctx && i < g_ctx->n_outputs; i++)
        if (!strcmp(g_ctx->outputs[i].slot, slot))
            return PyLong_FromSize_t(i);
    PyErr_Format(PyExc_KeyError, "mesatee.create_output: no output is assigned to slot '%.128s'",
                 slot);
    return NULL;
}

static PyObject *m_write(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t idx;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "ny*", &idx, &b))
        return NULL;
    if (!g_ctx || idx < 0 || (size_t)idx >= g_ctx->n_outputs) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "mesatee: bad output handle");
        return NULL;
    }
    if ((uint64_t)b.len > g_out_max - g_out_total) {
        PyBuffer_Release(&b);
        PyErr_Format(PyExc_OSError,
                     "mesatee: output limit of %llu MiB exceeded (task argument "
                     "python_max_output_mb)",
                     (unsigned long long)(g_out_max >> 20));
        return NULL;
    }
    mt_err err = {0};
    mt_status st = mt_bctx_output_write(g_ctx, (size_t)idx, b.buf, (size_t)b.len, &err);
    Py_ssize_t n = b.len;
    PyBuffer_Release(&b);
    if (st != MT_OK) {
        PyErr_Format(PyExc_OSError, "mesatee: writing the output failed: %s", err.msg);
        return NULL;
    }
    g_out_total += (uint64_t)n;
    return PyLong_FromSsize_t(n);
}

static PyObject *m_log(PyObject *self, PyObject *arg)
{
    (void)self;
    PyObject *s = PyObject_Str(arg);
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!t) {
        Py_XDECREF(s);
        return NULL;
    }
    if (g_ctx)
        mt_bctx_log(g_ctx, "%s", t);
    Py_DECREF(s);
    Py_RETURN_NONE;
}

static PyObject *m_set_result(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t n = 0;
    const char *t = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : NULL;
    if (!t) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "mesatee.set_result: the result must be a str");
        return NULL;
    }
    if ((size_t)n > MT_PYTHON_FN_MAX_RESULT) {
        PyErr_Format(PyExc_ValueError, "mesatee.set_result: at most %u bytes",
                     MT_PYTHON_FN_MAX_RESULT);
        return NULL;
    }
    char *c = strndup(t, (size_t)n);
    if (!c)
        return PyErr_NoMemory();
    free(g_result);
    g_result = c;
    Py_RETURN_NONE;
}

/* key_sign(data) -> bytes: data signed by the KeyStore key that the task
 * argument python_key names (docs/keystore.md, "Keys in tasks") */
static PyObject *m_key_sign(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) != 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "mesatee.key_sign: data must be bytes-like");
        return NULL;
    }
    const mt_bctx_key *k = g_ctx ? mt_bctx_key_find(g_ctx, "python_key") : NULL;
    if (!k) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError,
                        "mesatee.key_sign: the task names no KeyStore key (argument python_key)");
        return NULL;
    }
    uint8_t *sig = NULL;
    size_t n = 0;
    mt_err serr;
    mt_err_clear(&serr);
    mt_status st = mt_bctx_key_sign(k, b.buf, (size_t)b.len, &sig, &n, &serr);
    PyBuffer_Release(&b);
    if (st != MT_OK) {
        PyErr_Format(PyExc_ValueError, "mesatee.key_sign: %s", serr.msg);
        return NULL;
    }
    g_ctx->key_signs++; /* metered */
    PyObject *r = PyBytes_FromStringAndSize((const char *)sig, (Py_ssize_t)n);
    free(sig);
    return r;
}

static PyMethodDef m_methods[] = {
    {"key_sign", m_key_sign, METH_O, "signs data with the task's KeyStore key (python_key)"},
    {"_input", m_input, METH_O, "plaintext of an input slot (read-only memoryview)"},
    {"_output_index", m_output_index, METH_O, "handle of an output slot"},
    {"_write", m_write, METH_VARARGS, "appends to an output (encrypted as written)"},
    {"log", m_log, METH_O, "appends one line to the task's log"},
    {"set_result", m_set_result, METH_O, "sets the task's result (str)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef m_def = {
    PyModuleDef_HEAD_INIT, "mesatee", "mesatee: the task's inputs, outputs and arguments", -1,
    m_methods, NULL, NULL, NULL, NULL,
};

static PyObject *PyInit_mesatee(void)
{
    return PyModule_Create(&m_def);
}

/* ---- the `mesatee` module: Python part, the import guard, stdio ---- */

static const char bootstrap[] =
    "import io as _io, builtins as _b, sys as _sys, operator as _op\n"
    "class _Output:\n"
    "    def __init__(self, i, slot):\n"
    "        self._i = i; self.name = slot; self.closed = False\n"
    "    def write(self, data):\n"
    "        if self.closed: raise ValueError('mesatee: the output is closed')\n"
    "        if isinstance(data, str): data = data.encode('utf-8')\n"
    "        return _write(self._i, data)\n"
    "    def writable(self): return True\n"
    "    def flush(self): pass\n"
    "    def close(self): self.closed = True\n"
    "    def __enter__(self): return self\n"
    "    def __exit__(self, *a): self.close()\n"
    "class _Input(_io.RawIOBase):\n"
    "    '''Reads a decrypted input from the worker's buffer (no copy of the whole input).'''\n"
    "    def __init__(self, mv, slot):\n"
    "        self._mv = mv; self._pos = 0; self.name = slot\n"
    "    def _chk(self):\n"
    "        if self.closed: raise ValueError('I/O operation on closed file')\n"
    "    def readable(self): return True\n"
    "    def seekable(self): return True\n"
    "    def tell(self):\n"
    "        self._chk(); return self._pos\n"
    "    def seek(self, off, whence=0):\n"
    "        self._chk()\n"
    "        off = _op.index(off)\n"
    "        if whence == 0: p = off\n"
    "        elif whence == 1: p = self._pos + off\n"
    "        elif whence == 2: p = len(self._mv) + off\n"
    "        else: raise ValueError('invalid whence (%r, should be 0, 1 or 2)' % (whence,))\n"
    "        if p < 0: raise ValueError('negative seek position %d' % p)\n"
    "        self._pos = p; return p\n"
    "    def readinto(self, b):\n"
    "        self._chk()\n"
    "        with memoryview(b) as v, v.cast('B') as m:\n"
    "            p = min(self._pos, len(self._mv)); n = min(len(m), len(self._mv) - p)\n"
    "            m[:n] = self._mv[p:p + n]\n"
    "        self._pos = p + n; return n\n"
    "    def readall(self):\n"
    "        self._chk()\n"
    "        p = min(self._pos, len(self._mv)); self._pos = len(self._mv)\n"
    "        return self._mv[p:].tobytes()\n"
    "def open_input(slot):\n"
    "    '''The decrypted input of slot, as a binary file object (io.BufferedReader).'''\n"
    "    return _io.BufferedReader(_Input(_input(slot), slot), 1 << 16)\n"
    "def input_buffer(slot):\n"
    "    '''The decrypted input of slot as a read-only memoryview, without a copy.'''\n"
    "    return _input(slot)\n"
    "def create_output(slot):\n"
    "    '''A writer for output slot, encrypted under its owner's key.'''\n"
    "    return _Output(_output_index(slot), slot)\n"
    "def read_csv(slot, **kw):\n"
    "    import pandas\n"
    "    return pandas.read_csv(open_input(slot), **kw)\n"
    "def write_csv(slot, df, index=False, **kw):\n"
    "    w = create_output(slot)\n"
    "    if not callable(getattr(df, 'to_csv', None)):\n"
    "        raise TypeError('mesatee.write_csv: df must be a pandas DataFrame or Series')\n"
    "    text = df.to_csv(index=index, **kw)\n"
    "    with w:\n"
    "        w.write(text)\n"
    "class _LogStream(_io.TextIOBase):\n"
    "    def __init__(self): self._b = ''\n"
    "    def writable(self): return True\n"
    "    def write(self, s):\n"
    "        self._b += s\n"
    "        while '\\n' in self._b:\n"
    "            line, self._b = self._b.split('\\n', 1)\n"
    "            log(line)\n"
    "        if len(self._b) > 4096: log(self._b); self._b = ''\n"
    "        return len(s)\n"
    "    def flush(self):\n"
    "        if self._b: log(self._b); self._b = ''\n"
    "_sys.stdout = _sys.stderr = _LogStream()\n"
    "_ALLOWED = frozenset(_ALLOWED)  # a copy for reading; the guard holds its own\n"
    "_IMPORTLIB = __import__('importlib').__file__.rpartition('/')[0] + '/'\n"
    "def _make_guard(allowed, orig, getframe, mesa_code):\n"
    "    # the import guard: state in this closure, not reachable from `mesatee`;\n"
    "    # an import is the function's own when the frame that asks for it runs\n"
    "    # code not from a file of the installation (the C audit hook refuses\n"
    "    # code objects with such file names while the function runs)\n"
    "    own = [frozenset()]\n"
    "    codes = []\n"
    "    def untrusted(f):\n"
    "        # past the import machinery's frames; one that runs a module being\n"
    "        # loaded (an extension's init has no frame) means the module asks\n"
    "        loading = False\n"
    "        while f is not None:\n"
    "            c = f.f_code\n"
    "            fn = c.co_filename\n"
    "            if c in codes:\n"
    "                f = f.f_back; continue\n"
    "            if fn.startswith('<frozen importlib') or fn.startswith(_IMPORTLIB):\n"
    "                loading = loading or c.co_name in ('exec_module', 'create_module', "
    "'load_module', '_load_backward_compatible')\n"
    "                f = f.f_back; continue\n"
    "            return not loading and fn.startswith('<function')\n"
    "        return False\n"
    "    def check(top):\n"
    "        if top not in allowed and top not in own[0]:\n"
    "            raise ImportError('module %s is not allowed in mesatee functions' % top, name=top)\n"
    "    def guard(name, globals=None, locals=None, fromlist=(), level=0):\n"
    "        if untrusted(getframe(0).f_back):\n"
    "            absname = name\n"
    "            if level:\n"
    "                pkg = globals.get('__package__') if isinstance(globals, dict) else None\n"
    "                if not isinstance(pkg, str) or not pkg:\n"
    "                    raise ImportError('module ? is not allowed in mesatee functions "
    "(a relative import without a package)')\n"
    "                base = pkg.rsplit('.', level - 1)\n"
    "                if len(base) < level:\n"
    "                    raise ImportError('attempted relative import beyond top-level package')\n"
    "                absname = base[0] + ('.' + name if name else '')\n"
    "            check(str(absname).partition('.')[0])\n"
    "        return orig(name, globals, locals, fromlist, level)\n"
    "    class Finder:\n"
    "        # first loads by any route (importlib.import_module, _gcd_import, ...)\n"
    "        @staticmethod\n"
    "        def find_spec(name, path=None, target=None):\n"
    "            if untrusted(getframe(0).f_back):\n"
    "                check(name.partition('.')[0])\n"
    "            return None\n"
    "    def set_own(names):\n"
    "        if own[0]: raise RuntimeError('mesatee: the zip modules are installed')\n"
    "        own[0] = frozenset(names)\n"
    "    def hook(event, args):\n"
    "        # the function's own code must stay recognisable: what it compiles is\n"
    "        # named '<function...'; code from bytes (marshal) is the libraries'\n"
    "        if event in ('compile', 'code.__new__') and len(args) > 1:\n"
    "            fn = args[1]\n"
    "            if isinstance(fn, bytes): fn = fn.decode('utf-8', 'replace')\n"
    "            if not (isinstance(fn, str) and fn.startswith('<function')) and "
    "untrusted(getframe(0).f_back):\n"
    "                raise PermissionError(\"compiling code under a file name not starting with "
    "'<function' is not allowed in mesatee functions (compile(src, '<function>', mode))\")\n"
    "        elif event in ('marshal.loads', 'marshal.load') and untrusted(getframe(0).f_back):\n"
    "            raise PermissionError('loading code with marshal is not allowed in mesatee functions')\n"
    "    _sys.addaudithook(hook)\n"
    "    codes.extend((guard.__code__, Finder.find_spec.__code__, hook.__code__))\n"
    "    return guard, Finder, set_own\n"
    "_b.__import__, _f, _set_own = _make_guard(_ALLOWED, _b.__import__, _sys._getframe, "
    "_sys._getframe(0).f_code)\n"
    "_sys.meta_path.insert(0, _f)\n"
    "del _make_guard, _f\n"
    "import traceback as _traceback, linecache as _linecache\n"
    "def _lines(src):\n"
    "    # the function's source for its tracebacks (the approved code)\n"
    "    _linecache.cache['<function>'] = (len(src), None, src.splitlines(True), '<function>')\n"
    "def _format_exc(e):\n"
    "    return ''.join(_traceback.format_exception(e))\n"
    /* zip payloads: Python's own zipfile over the bytes in memory (bounds
     * checked by the interpreter; no C parser of ours), modules served by
     * a meta-path finder; the limits are the registrant's messages */
    "_ZIP_MAX_ENTRIES = 1000\n"
    "_ZIP_MAX_FILE = 8 << 20\n"
    "_ZIP_MAX_TOTAL = 32 << 20\n"
    "def _zip_modules(data):\n"
    "    # a zip payload: {module name: (entry name, source, is package)}, the entry\n"
    "    # module's name; ValueError with a message for the registrant\n"
    "    import zipfile, importlib.util, importlib.machinery\n"
    "    try:\n"
    "        zf = zipfile.ZipFile(_io.BytesIO(data))\n"
    "        infos = zf.infolist()\n"
    "    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as e:\n"
    "        raise ValueError('not a readable zip archive (%s)' % type(e).__name__) from None\n"
    "    if len(infos) > _ZIP_MAX_ENTRIES:\n"
    "        raise ValueError('the zip has more than %d entries' % _ZIP_MAX_ENTRIES)\n"
    "    mods, total, std = {}, 0, set(_sys.stdlib_module_names) | set(_sys.builtin_module_names)\n"
    "    for zi in infos:\n"
    "        n = zi.filename\n"
    "        shown = n[:200].encode('ascii', 'backslashreplace').decode('ascii')\n"
    "        parts = n.rstrip('/').split('/')\n"
    "        if not n or n.startswith('/') or any(not p for p in parts):\n"
    "            raise ValueError(\"zip entry '%s': not a relative path\" % shown)\n"
    "        if n.endswith('/'):\n"
    "            if any(not p.isidentifier() for p in parts):\n"
    "                raise ValueError(\"zip entry '%s': directory names must be Python identifiers\" % shown)\n"
    "            continue\n"
    "        if not n.endswith('.py'):\n"
    "            raise ValueError(\"zip entry '%s': only .py modules (and their directories) may be in the zip\" % shown)\n"
    "        parts[-1] = parts[-1][:-3]\n"
    "        if any(not p.isidentifier() or not p.isascii() for p in parts):\n"
    "            raise ValueError(\"zip entry '%s': module paths must be ASCII Python identifiers\" % shown)\n"
    "        if zi.flag_bits & 1:\n"
    "            raise ValueError(\"zip entry '%s': encrypted entries are not supported\" % shown)\n"
    "        total += zi.file_size\n"
    "        if zi.file_size > _ZIP_MAX_FILE or total > _ZIP_MAX_TOTAL:\n"
    "            raise ValueError(\"zip entry '%s': the modules are larger than %d MiB (at most %d MiB each)\"\n"
    "                             % (shown, _ZIP_MAX_TOTAL >> 20, _ZIP_MAX_FILE >> 20))\n"
    "        pkg = parts[-1] == '__init__'\n"
    "        name = '.'.join(parts[:-1] if pkg else parts)\n"
    "        if not name:\n"
    "            raise ValueError(\"zip entry '%s': __init__.py at the root of the zip\" % shown)\n"
    "        top = name.partition('.')[0]\n"
    "        if top in std or top in _ALLOWED or top == 'mesatee' or "
    "importlib.machinery.PathFinder.find_spec(top) is not None:\n"
    "            raise ValueError(\"zip entry '%s': module %s has the name of a standard, allowed or installed module\" % (shown, top))\n"
    "        if name in mods:\n"
    "            raise ValueError(\"zip entry '%s': module %s appears twice\" % (shown, name))\n"
    "        try:\n"
    "            raw = zf.read(zi)\n"
    "        except Exception as e:\n"
    "            raise ValueError(\"zip entry '%s': unreadable (%s)\" % (shown, type(e).__name__)) from None\n"
    "        try:\n"
    "            src = raw.decode('utf-8')\n"
    "        except UnicodeDecodeError as e:\n"
    "            raise ValueError(\"zip entry '%s': not UTF-8 text (invalid sequence at byte offset %d)\" % (shown, e.start)) from None\n"
    "        if '\\0' in src:\n"
    "            raise ValueError(\"zip entry '%s': NUL byte at byte offset %d\" % (shown, raw.index(b'\\0')))\n"
    "        mods[name] = (n, src, pkg)\n"
    "    for name in mods:  # every package of a module is in the zip\n"
    "        p = name.rpartition('.')[0]\n"
    "        if p and p not in mods:\n"
    "            raise ValueError(\"module %s: its package %s has no __init__.py in the zip\" % (name, p))\n"
    "    entry = '__main__' if '__main__' in mods else 'main' if 'main' in mods else None\n"
    "    if entry is None:\n"
    "        raise ValueError('the zip has neither __main__.py nor main.py at its root (the entry module)')\n"
    "    if mods[entry][2]:\n"
    "        raise ValueError('the entry module must be a module, not a package')\n"
    "    return mods, entry\n"
    "def _zip_check(data):\n"
    "    mods, entry = _zip_modules(data)\n"
    "    for name, (n, src, pkg) in mods.items():\n"
    "        try:\n"
    "            compile(src, n, 'exec', dont_inherit=True)\n"
    "        except SyntaxError as e:\n"
    "            raise ValueError('%s: line %s, column %s: %s' % (n, e.lineno or 0, e.offset or 0, e.msg)) from None\n"
    "    return entry\n"
    "class _ZipLoader:\n"
    "    def __init__(self, mods): self._m = mods\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name not in self._m: return None\n"
    "        import importlib.util\n"
    "        n, src, pkg = self._m[name]\n"
    "        spec = importlib.util.spec_from_loader(name, self, origin='<function>/' + n, is_package=pkg)\n"
    "        return spec\n"
    "    def create_module(self, spec): return None\n"
    "    def exec_module(self, module):\n"
    "        n, src, pkg = self._m[module.__name__]\n"
    "        fn = '<function>/' + n\n"
    "        _linecache.cache[fn] = (len(src), None, src.splitlines(True), fn)\n"
    "        exec(compile(src, fn, 'exec', dont_inherit=True), module.__dict__)\n"
    "def _zip_install(data):\n"
    "    # the zip's modules importable by the function; returns the entry's source\n"
    "    mods, entry = _zip_modules(data)\n"
    "    _set_own(m.partition('.')[0] for m in mods if m != entry)\n"
    "    # after the standard finders: a zip module never shadows an installed one\n"
    "    _sys.meta_path.append(_ZipLoader({k: v for k, v in mods.items() if k != entry}))\n"
    "    return mods[entry][1]\n";

static mt_status py_fail(mt_err *err, const char *what)
{
    PyErr_Clear();
    return mt_err_set(err, MT_EINTERNAL, "python: %s failed", what);
}

/* 0 not started, 1 started in this process, 2 started in the zygote (this
 * is a forked child), -1 the start failed in the zygote */
static int g_interp;

/* The interpreter itself: audit hook, `mesatee` inittab, isolated config. */
static mt_status interp_init(mt_err *err)
{
    if (PySys_AddAuditHook(audit_hook, NULL) != 0 ||
        PyImport_AppendInittab("mesatee", PyInit_mesatee) != 0)
        return mt_err_set(err, MT_EINTERNAL, "python: installing the audit hook failed");
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    PyStatus s = Py_PreInitialize(&pre);
    if (PyStatus_Exception(s))
        return mt_err_set(err, MT_EINTERNAL, "python: pre-initialisation failed");
    PyConfig c;
    PyConfig_InitIsolatedConfig(&c);
    c.site_import = 0;
    c.write_bytecode = 0;
    c.install_signal_handlers = 0;
    c.pathconfig_warnings = 0;
    c.user_site_directory = 0;
    c.module_search_paths_set = 1;
    static const wchar_t *const paths[] = {L"/usr/lib/python3.11", L"/usr/lib/python3.11/lib-dynload",
                                           L"/usr/lib/python3/dist-packages"};
    s = PyConfig_SetString(&c, &c.program_name, L"mesatee-python");
    if (!PyStatus_Exception(s))
        s = PyConfig_SetString(&c, &c.home, L"/usr");
    for (size_t i = 0; !PyStatus_Exception(s) && i < sizeof paths / sizeof paths[0]; i++)
        s = PyWideStringList_Append(&c.module_search_paths, paths[i]);
    if (!PyStatus_Exception(s))
        s = Py_InitializeFromConfig(&c);
    PyConfig_Clear(&c);
    if (PyStatus_Exception(s))
        return mt_err_set(err, MT_EINTERNAL, "python: the interpreter did not start (%s)",
                          s.err_msg ? s.err_msg : "unknown");
    return MT_OK;
}

/* Heavy packages the zygote imports once (when installed), and the standard
 * modules the `mesatee` module's start imports in every task anyway. */
static const char *const warm_modules[] = {"numpy", "pandas", "traceback", "linecache", NULL};

/* The `mesatee` module's Python part, compiled once in the zygote (a code
 * object: no state of any task); NULL when this process compiles it. */
static PyObject *g_bootstrap_code;

mt_status mt_python_fn_zygote_init(mt_err *err)
{
    mt_err e = {0};
    if (interp_init(&e) != MT_OK) {
        /* the children report it per python task; other executor types
         * are unaffected */
        g_interp = -1;
        fprintf(stderr, "mesatee-worker: zygote: %s: python tasks will fail\n", e.msg);
        return MT_OK;
    }
    for (size_t i = 0; warm_modules[i]; i++) {
        PyObject *m = PyImport_ImportModule(warm_modules[i]);
        Py_XDECREF(m);
        PyErr_Clear(); /* not installed: imported per task if a function asks */
    }
    g_bootstrap_code = Py_CompileString(bootstrap, "<mesatee>", Py_file_input);
    PyErr_Clear(); /* NULL: each child compiles it (and reports the failure) */
    /* Everything the zygote created goes to the collector's permanent
     * generation: a child's collections then never walk (and write to) the
     * zygote's objects, so their pages stay shared instead of being copied
     * on write in every task. The child's own objects are collected as usual. */
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *fr = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    Py_XDECREF(fr);
    Py_XDECREF(gc);
    PyErr_Clear();
    g_interp = 2;
    (void)err;
    return MT_OK;
}

mt_status mt_python_fn_start(mt_bctx *ctx, mt_err *err)
{
    g_ctx = ctx;
    g_out_max = 1024ULL << 20;
    const char *mb = ctx ? mt_bctx_arg(ctx, "python_max_output_mb") : NULL;
    if (mb) {
        char *end;
        unsigned long long v = strtoull(mb, &end, 10);
        if (*end || v < 1 || v > 16384) /* the schema checked it already */
            return mt_err_set(err, MT_EINVAL, "argument 'python_max_output_mb' out of range");
        g_out_max = v << 20;
    }
    mt_status st;
    if (g_interp == -1)
        return mt_err_set(err, MT_EINTERNAL, "python: the interpreter did not start in the "
                                             "worker's zygote (see the daemon's log)");
    if (g_interp == 2) {
        /* a child of the zygote: the interpreter's own after-fork steps
         * (thread state, import lock, os.register_at_fork hooks: `random`
         * reseeds from the kernel), then NumPy's global generator, which
         * every child would otherwise share with the zygote */
        PyOS_AfterFork_Child();
        PyObject *gd = PyDict_New();
        PyObject *r = gd && PyDict_SetItemString(gd, "__builtins__", PyEval_GetBuiltins()) == 0
                          ? PyRun_String("import sys\n"
                                         "if 'numpy.random' in sys.modules:\n"
                                         "    sys.modules['numpy.random'].seed()\n",
                                         Py_file_input, gd, gd)
                          : NULL;
        Py_XDECREF(r);
        Py_XDECREF(gd);
        if (!r)
            return py_fail(err, "reseeding after the zygote's fork");
    } else if ((st = interp_init(err)) != MT_OK) {
        return st;
    } else {
        g_interp = 1;
    }
    /* the recursion limit (task argument within the schema's cap) */
    const char *rl = ctx ? mt_bctx_arg(ctx, "python_recursion_limit") : NULL;
    if (rl) {
        char *end;
        long v = strtol(rl, &end, 10);
        if (*end || v < 50 || v > 10000) /* the schema checked it already */
            return mt_err_set(err, MT_EINVAL, "argument 'python_recursion_limit' out of range");
        Py_SetRecursionLimit((int)v);
    }
    /* the allow-list the participants approved, as stored in the task
     * (python_modules.h); a job without it (a registration check) gets the
     * built-in one */
    const char *approved = ctx ? mt_bctx_arg(ctx, MT_PYTHON_MODULES_ARG) : NULL;
    if (approved && !mt_python_modules_valid(approved))
        return mt_err_set(err, MT_EINVAL, "argument '%s' is not a valid module list",
                          MT_PYTHON_MODULES_ARG);
    /* the Python part of `mesatee`, with the allow-list and the arguments */
    PyObject *m = PyImport_ImportModule("mesatee");
    PyObject *d = m ? PyModule_GetDict(m) : NULL;
    PyObject *allowed = PyFrozenSet_New(NULL);
    const char *const *allowed_modules = mt_python_fn_allowed();
    for (size_t i = 0; allowed && !approved && allowed_modules[i]; i++) {
        PyObject *n = PyUnicode_FromString(allowed_modules[i]);
        if (!n || PySet_Add(allowed, n) != 0) {
            Py_XDECREF(n);
            Py_CLEAR(allowed);
            break;
        }
        Py_DECREF(n);
    }
    for (const char *p = approved; allowed && p && *p;) {
        const char *e = strchr(p, ',');
        PyObject *n = PyUnicode_FromStringAndSize(p, e ? e - p : (Py_ssize_t)strlen(p));
        if (!n || PySet_Add(allowed, n) != 0) {
            Py_XDECREF(n);
            Py_CLEAR(allowed);
            break;
        }
        Py_DECREF(n);
        p = e ? e + 1 : NULL;
    }
    PyObject *args = PyDict_New();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(ctx ? ctx->args : NULL), k, v) {
        if (!strcmp(k, MT_PYTHON_MODULES_ARG))
            continue; /* the server's, not the function's (task show has it) */
        PyObject *pv = PyUnicode_FromString(json_string_value(v) ? json_string_value(v) : "");
        if (!args || !pv || PyDict_SetItemString(args, k, pv) != 0) {
            Py_XDECREF(pv);
            Py_CLEAR(args);
            break;
        }
        Py_DECREF(pv);
    }
    if (!d || !allowed || !args || PyDict_SetItemString(d, "_ALLOWED", allowed) != 0 ||
        PyDict_SetItemString(d, "args", args) != 0) {
        Py_XDECREF(allowed);
        Py_XDECREF(args);
        Py_XDECREF(m);
        return py_fail(err, "creating the mesatee module");
    }
    Py_DECREF(allowed);
    Py_DECREF(args);
    PyObject *r = NULL, *bc = g_bootstrap_code;
    if (bc)
        Py_INCREF(bc);
    else
        bc = Py_CompileString(bootstrap, "<mesatee>", Py_file_input);
    if (bc)
        r = PyEval_EvalCode(bc, d, d);
    Py_XDECREF(bc);
    Py_XDECREF(r);
    Py_DECREF(m);
    if (!r)
        return py_fail(err, "the mesatee module's start");
    return MT_OK;
}

/* Byte offset of the first invalid UTF-8 sequence or NUL, or len. */
static size_t utf8_bad(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                             : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0 || n == 0 || n > len - i || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
            return i;
        for (size_t j = 1; j < n; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return i;
        if ((n == 3 && c == 0xe0 && p[i + 1] < 0xa0) || (n == 3 && c == 0xed && p[i + 1] >= 0xa0) ||
            (n == 4 && c == 0xf0 && p[i + 1] < 0x90) || (n == 4 && c == 0xf4 && p[i + 1] >= 0x90))
            return i;
        i += n;
    }
    return len;
}

/* Compiles the source; a syntax error becomes err (line and column). */
static PyObject *compile_src(const uint8_t *src, size_t len, mt_err *err)
{
    if (len > MT_PYTHON_FN_MAX_SOURCE) {
        mt_err_set(err, MT_ETOOBIG, "python: the source is larger than %u bytes",
                   MT_PYTHON_FN_MAX_SOURCE);
        return NULL;
    }
    size_t bad = utf8_bad(src, len);
    if (bad < len) {
        mt_err_set(err, MT_EINVAL, "python: the source is not UTF-8 text (%s at byte offset %zu)",
                   src[bad] ? "invalid sequence" : "NUL byte", bad);
        return NULL;
    }
    char *z = malloc(len + 1);
    if (!z) {
        mt_err_set(err, MT_ENOMEM, "python: out of memory");
        return NULL;
    }
    memcpy(z, src, len);
    z[len] = 0;
    PyCompilerFlags fl = _PyCompilerFlags_INIT;
    fl.cf_flags = PyCF_SOURCE_IS_UTF8 | PyCF_IGNORE_COOKIE;
    PyObject *code = Py_CompileStringExFlags(z, "<function>", Py_file_input, &fl, -1);
    free(z);
    if (code)
        return code;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    long line = 0, col = 0;
    char msg[256] = "invalid source";
    if (v && PyErr_GivenExceptionMatches(t, PyExc_SyntaxError)) {
        PyObject *l = PyObject_GetAttrString(v, "lineno"), *o = PyObject_GetAttrString(v, "offset"),
                 *m = PyObject_GetAttrString(v, "msg");
        if (l && PyLong_Check(l))
            line = PyLong_AsLong(l);
        if (o && PyLong_Check(o))
            col = PyLong_AsLong(o);
        const char *ms = m && PyUnicode_Check(m) ? PyUnicode_AsUTF8(m) : NULL;
        if (ms)
            snprintf(msg, sizeof msg, "%s", ms);
        Py_XDECREF(l);
        Py_XDECREF(o);
        Py_XDECREF(m);
    } else if (t && PyErr_GivenExceptionMatches(t, PyExc_MemoryError)) {
        snprintf(msg, sizeof msg, "out of memory while compiling");
    }
    PyErr_Clear();
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    mt_err_set(err, MT_EINVAL, "python: line %ld, column %ld: %s", line, col, msg);
    return NULL;
}

/* A zip payload (its local-header or empty-archive signature): source is
 * never that (bytes 0x03/0x05 are not valid in Python source). */
static bool is_zip(const uint8_t *src, size_t len)
{
    return len >= 4 && src[0] == 'P' && src[1] == 'K' &&
           ((src[2] == 3 && src[3] == 4) || (src[2] == 5 && src[3] == 6));
}

/* Calls mesatee.<fn>(bytes of the zip): its result, or NULL with err (a
 * ValueError's message is the registrant's: "python: MESSAGE"). */
static PyObject *zip_call(const char *fn, const uint8_t *src, size_t len, mt_err *err)
{
    if (len > MT_PYTHON_FN_MAX_SOURCE) {
        mt_err_set(err, MT_ETOOBIG, "python: the zip is larger than %u bytes",
                   MT_PYTHON_FN_MAX_SOURCE);
        return NULL;
    }
    PyObject *m = PyImport_ImportModule("mesatee");
    PyObject *f = m ? PyDict_GetItemString(PyModule_GetDict(m), fn) : NULL;
    PyObject *b = f ? PyBytes_FromStringAndSize((const char *)src, (Py_ssize_t)len) : NULL;
    PyObject *r = b ? PyObject_CallOneArg(f, b) : NULL;
    Py_XDECREF(b);
    Py_XDECREF(m);
    if (r)
        return r;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PyObject *s = v && PyErr_GivenExceptionMatches(t, PyExc_ValueError) ? PyObject_Str(v) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    if (msg)
        mt_err_set(err, MT_EINVAL, "python: %.400s", msg);
    else if (t && PyErr_GivenExceptionMatches(t, PyExc_MemoryError))
        mt_err_set(err, MT_ENOMEM, "python: out of memory while reading the zip");
    else
        mt_err_set(err, MT_EINVAL, "python: not a readable zip archive");
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    return NULL;
}

mt_status mt_python_fn_check(const uint8_t *src, size_t len, mt_err *err)
{
    if (is_zip(src, len)) { /* every module compiled: errors name the entry */
        PyObject *r = zip_call("_zip_check", src, len, err);
        Py_XDECREF(r);
        return r ? MT_OK : err->code;
    }
    PyObject *code = compile_src(src, len, err);
    if (!code)
        return err->code;
    Py_DECREF(code);
    return MT_OK;
}

/* The pending exception: type name into reason, traceback into the log. */
static mt_status report_exception(mt_bctx *ctx, PyObject *mod_dict, mt_err *err)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v && tb)
        PyException_SetTraceback(v, tb);
    char tname[128] = "an exception";
    if (t && PyType_Check(t))
        snprintf(tname, sizeof tname, "%s", ((PyTypeObject *)t)->tp_name);
    PyObject *fmt = PyDict_GetItemString(mod_dict, "_format_exc");
    PyObject *s = fmt && v ? PyObject_CallOneArg(fmt, v) : NULL;
    const char *txt = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    if (txt) {
        const char *p = txt;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            mt_bctx_log(ctx, "%.*s", (int)(n > 1000 ? 1000 : n), p);
            p += n + (nl ? 1 : 0);
        }
    }
    PyErr_Clear();
    Py_XDECREF(s);
    bool memory = t && PyErr_GivenExceptionMatches(t, PyExc_MemoryError);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    return mt_err_set(err, memory ? MT_ENOMEM : MT_EINVAL,
                      "python: the function raised %s (traceback in the log)", tname);
}

mt_status mt_python_fn_run(mt_bctx *ctx, const uint8_t *src, size_t len, char **ret,
                           mt_err *err)
{
    *ret = NULL;
    /* a zip: its modules become importable, the entry module runs as the
     * function's module (its source held by entry_src) */
    PyObject *entry_src = NULL;
    if (is_zip(src, len)) {
        Py_ssize_t n = 0;
        const char *s = NULL;
        if (!(entry_src = zip_call("_zip_install", src, len, err)))
            return err->code;
        if (!PyUnicode_Check(entry_src) || !(s = PyUnicode_AsUTF8AndSize(entry_src, &n))) {
            Py_DECREF(entry_src);
            return py_fail(err, "reading the zip's entry module");
        }
        src = (const uint8_t *)s;
        len = (size_t)n;
    }
    PyObject *m = PyImport_ImportModule("mesatee");
    PyObject *md = m ? PyModule_GetDict(m) : NULL;
    PyObject *code = md ? compile_src(src, len, err) : NULL;
    if (!md) {
        Py_XDECREF(m);
        Py_XDECREF(entry_src);
        return py_fail(err, "importing mesatee");
    }
    if (!code) {
        Py_DECREF(m);
        Py_XDECREF(entry_src);
        return err->code;
    }
    mt_status st = MT_OK;
    PyObject *g = PyDict_New(), *name = PyUnicode_FromString("__mesatee_function__");
    PyObject *r = NULL, *fn = NULL;
    if (!g || !name || PyDict_SetItemString(g, "__name__", name) != 0 ||
        PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) != 0) {
        st = py_fail(err, "creating the function's module");
        goto out;
    }
    /* tracebacks quote the function's own lines (participants approved them) */
    PyObject *lf = PyDict_GetItemString(md, "_lines"),
             *us = PyUnicode_DecodeUTF8((const char *)src, (Py_ssize_t)len, "strict");
    PyObject *lr = lf && us ? PyObject_CallOneArg(lf, us) : NULL;
    Py_XDECREF(lr);
    Py_XDECREF(us);
    PyErr_Clear();
    g_armed = true; /* the function's code from here on */
    r = PyEval_EvalCode(code, g, g);
    if (!r) {
        st = report_exception(ctx, md, err);
        goto out;
    }
    Py_CLEAR(r);
    if ((fn = PyDict_GetItemString(g, "entrypoint")) && PyCallable_Check(fn)) {
        /* argv: "main", then name=value per argument, sorted */
        PyObject *argv = PyList_New(0), *first = PyUnicode_FromString("main");
        bool ok = argv && first && PyList_Append(argv, first) == 0;
        Py_XDECREF(first);
        const char **keys = calloc(json_object_size(ctx->args) + 1, sizeof *keys);
        size_t nk = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)ctx->args, k, v) if (keys &&
                                                            strcmp(k, MT_PYTHON_MODULES_ARG))
            keys[nk++] = k;
        for (size_t i = 1; keys && i < nk; i++)
            for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
                const char *tmp = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = tmp;
            }
        for (size_t i = 0; ok && keys && i < nk; i++) {
            PyObject *a = PyUnicode_FromFormat(
                "%s=%s", keys[i], json_string_value(json_object_get(ctx->args, keys[i])));
            ok = a && PyList_Append(argv, a) == 0;
            Py_XDECREF(a);
        }
        ok = ok && keys;
        free(keys);
        if (!ok) {
            Py_XDECREF(argv);
            st = py_fail(err, "building argv");
            goto out;
        }
        r = PyObject_CallOneArg(fn, argv);
        Py_DECREF(argv);
    } else if ((fn = PyDict_GetItemString(g, "main")) && PyCallable_Check(fn)) {
        r = PyObject_CallOneArg(fn, m);
    } else {
        st = mt_err_set(err, MT_EINVAL,
                        "python: the module defines neither entrypoint(argv) nor main(ctx)");
        goto out;
    }
    if (!r) {
        st = report_exception(ctx, md, err);
        goto out;
    }
    /* flush a partial line printed without a newline */
    PyObject *out = PySys_GetObject("stdout");
    PyObject *fr = out ? PyObject_CallMethod(out, "flush", NULL) : NULL;
    Py_XDECREF(fr);
    PyErr_Clear();
    if (g_result) {
        *ret = g_result;
        g_result = NULL;
    } else if (r != Py_None) {
        PyObject *s = PyObject_Str(r);
        Py_ssize_t n = 0;
        const char *t = s ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
        if (!t) {
            Py_XDECREF(s);
            st = report_exception(ctx, md, err);
            goto out;
        }
        if ((size_t)n > MT_PYTHON_FN_MAX_RESULT) {
            Py_DECREF(s);
            st = mt_err_set(err, MT_EINVAL, "python: the result is longer than %u bytes",
                            MT_PYTHON_FN_MAX_RESULT);
            goto out;
        }
        *ret = strndup(t, (size_t)n);
        Py_DECREF(s);
        if (!*ret)
            st = mt_err_set(err, MT_ENOMEM, "python: out of memory");
    } else if (!(*ret = strdup(""))) {
        st = mt_err_set(err, MT_ENOMEM, "python: out of memory");
    }
out:
    g_armed = false;
    Py_XDECREF(r);
    Py_XDECREF(g);
    Py_XDECREF(name);
    Py_XDECREF(code);
    Py_XDECREF(m);
    Py_XDECREF(entry_src);
    return st;
}
