#!/usr/bin/env python3
# %% [markdown]
# # Two-party linear regression with the mesatee Python SDK
#
# Organisation A and organisation B each hold rows `x1,x2,y` they will not
# show each other. They agree on a Python function
# (`two_party_regression_fn.py`: numpy least squares over the union of the
# rows), run it on the mesatee server, and each receives, encrypted under its
# own key, the common coefficients and how well they fit ITS rows.
#
# Run it as one script (both organisations in one process, as in a demo) or
# cell by cell in a notebook (`# %%` cells: VS Code, Jupyter with jupytext).
# In real use each organisation runs its own cells with its own credentials.
#
# Environment:
#   MESATEE_SERVER        https://HOST:PORT
#   MESATEE_POLICY        attestation policy file (attested TLS), or
#   MESATEE_CA            the server's certificate (pinned)
#   ORG_A_USER, ORG_A_PASSWORD_FILE   organisation A's account
#   ORG_B_USER, ORG_B_PASSWORD_FILE   organisation B's account
#   MESATEE_LIB           libmesatee.so, if not installed (docs/python.md)
#   WORKDIR               where the data and keys go (default: a new temp dir)

# %%
import hashlib
import os
import pathlib
import tempfile

import numpy as np

import mesatee

HERE = pathlib.Path(__file__).resolve().parent
URL = os.environ["MESATEE_SERVER"]
TLS = ({"policy": os.environ["MESATEE_POLICY"]} if os.environ.get("MESATEE_POLICY")
       else {"ca": os.environ["MESATEE_CA"]})
WORK = pathlib.Path(os.environ.get("WORKDIR") or tempfile.mkdtemp(prefix="two-party-"))


def secret(var):
    return pathlib.Path(os.environ[var]).read_text().strip()


# %% [markdown]
# ## Each organisation's private data
# y = 1.5 + 2 x1 - 0.5 x2 plus a little noise; A has 60 rows, B has 40.

# %%
rng = np.random.default_rng(11)


def make_rows(n):
    x = rng.normal(size=(n, 2))
    y = 1.5 + 2.0 * x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.01, size=n)
    return np.column_stack([x, y])


for org, n in (("a", 60), ("b", 40)):
    np.savetxt(WORK / ("%s.csv" % org), make_rows(n), delimiter=",", fmt="%.6f")

# %% [markdown]
# ## Both organisations connect and log in
# With MESATEE_POLICY the server is verified by attested TLS: its
# certificate must carry evidence that satisfies the policy, checked in the
# handshake before the password is sent.

# %%
org_a = mesatee.Client(URL, **TLS)
org_b = mesatee.Client(URL, **TLS)
user_a, user_b = os.environ["ORG_A_USER"], os.environ["ORG_B_USER"]
org_a.login(user_a, secret("ORG_A_PASSWORD_FILE"))
org_b.login(user_b, secret("ORG_B_PASSWORD_FILE"))
print("server:", org_a.attest()["kind"], "| A is", org_a.whoami()["username"],
      "| B is", org_b.whoami()["username"])

# %% [markdown]
# ## Each registers its data (encrypted here; the server sees ciphertext)
# and an output file for its result, under a key only it holds.

# %%
inp_a = org_a.files.put(WORK / "a.csv", name="org A rows")
inp_b = org_b.files.put(WORK / "b.csv", name="org B rows")
key_a, key_b = mesatee.generate_key(), mesatee.generate_key()
out_a = org_a.files.register_output(key_a, name="org A result")
out_b = org_b.files.register_output(key_b, name="org B result")

# %% [markdown]
# ## A registers the function; B checks the exact code it will approve

# %%
fn = org_a.functions.register("two_party_regression",
                              python=HERE / "two_party_regression_fn.py",
                              inputs=["a", "b"], outputs=["ra", "rb"], allow=[user_b],
                              description="numpy least squares over both parties' rows")
shown = org_b.functions.get(fn)["payload"]["sha256"]
assert shown == hashlib.sha256((HERE / "two_party_regression_fn.py").read_bytes()).hexdigest()
print("function", fn, "sha256", shown)

# %% [markdown]
# ## The task: slots, bindings, approvals, invoke, wait

# %%
task = org_a.tasks.create(fn, inputs={"a": user_a, "b": user_b},
                          outputs={"ra": user_a, "rb": user_b})
org_a.tasks.assign(task, inputs={"a": inp_a.file_id}, outputs={"ra": out_a})
org_b.tasks.assign(task, inputs={"b": inp_b.file_id}, outputs={"rb": out_b})
org_a.tasks.approve(task)
org_b.tasks.approve(task)
org_a.tasks.invoke(task)
done = org_b.tasks.wait(task, timeout=120)
print("task", task, done["status"], "| result:", org_b.tasks.result(task))

# %% [markdown]
# ## Each organisation decrypts its own result

# %%
for org, client, slot, key in (("A", org_a, "ra", key_a), ("B", org_b, "rb", key_b)):
    text = client.tasks.result(task, slot, key=key).decode()
    print("organisation %s:" % org, " | ".join(text.splitlines()))
    (WORK / ("result_%s.txt" % slot)).write_text(text)

# %%
org_a.close()
org_b.close()
