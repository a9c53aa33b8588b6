"""The signature checker (tools/check_sigs.py) finds drift between the
ctypes table and the header, naming the function; and the real header and
table agree. Needs no server."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
HEADER = ROOT / "src/client/mesatee.h"
CHECK = ROOT / "sdk/python/tools/check_sigs.py"


def run(header):
    return subprocess.run([sys.executable, str(CHECK), str(header)], capture_output=True,
                          text=True)


def edited(tmp_path, old, new):
    text = HEADER.read_text()
    assert text.count(old) == 1, old
    p = tmp_path / "mesatee.h"
    p.write_text(text.replace(old, new))
    return p


def test_header_and_table_agree():
    r = run(HEADER)
    assert r.returncode == 0, r.stderr
    assert "with matching signatures" in r.stdout


def test_changed_argument_type(tmp_path):
    h = edited(tmp_path, "mesatee_task_wait(mesatee_client *c, const char *task_id, long timeout_s",
               "mesatee_task_wait(mesatee_client *c, const char *task_id, int timeout_s")
    r = run(h)
    assert r.returncode == 1
    assert "mesatee_task_wait: argument 3: table 'long', header 'int'" in r.stderr


def test_changed_return_type(tmp_path):
    h = edited(tmp_path, "MESATEE_API const char *mesatee_version(void);",
               "MESATEE_API char *mesatee_version(void);")
    r = run(h)
    assert r.returncode == 1 and "mesatee_version: return type" in r.stderr


def test_added_argument(tmp_path):
    h = edited(tmp_path, "MESATEE_API int mesatee_task_approve(mesatee_client *c, const char *task_id, char **json_out);",
               "MESATEE_API int mesatee_task_approve(mesatee_client *c, const char *task_id, unsigned flags, char **json_out);")
    r = run(h)
    assert r.returncode == 1 and "mesatee_task_approve: 3 arguments in the table, 4" in r.stderr


def test_new_function_must_be_wrapped_or_listed(tmp_path):
    h = edited(tmp_path, "MESATEE_API const char *mesatee_version(void);",
               "MESATEE_API const char *mesatee_version(void);\n"
               "MESATEE_API int mesatee_task_frobnicate(mesatee_client *c, const char *id);")
    r = run(h)
    assert r.returncode == 1
    assert "mesatee_task_frobnicate: declared in" in r.stderr and "NOT_WRAPPED" in r.stderr


def test_removed_function(tmp_path):
    h = edited(tmp_path, "MESATEE_API int mesatee_task_cancel(mesatee_client *c, const char *task_id, char **json_out);\n", "")
    r = run(h)
    assert r.returncode == 1
    assert "mesatee_task_cancel: in the ctypes table but not declared" in r.stderr


def test_unreadable_declaration_is_an_error(tmp_path):
    h = edited(tmp_path, "MESATEE_API const char *mesatee_version(void);",
               "MESATEE_API const char *mesatee_version(void);\nMESATEE_API int (*mesatee_fp)(int);")
    r = run(h)
    assert r.returncode == 1 and "mesatee.h:" in r.stderr
