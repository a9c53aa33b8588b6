"""Fixtures of the SDK's tests against a real `mesatee serve` on loopback at
level soft, started by tests/integration/it_python_sdk.sh (lib.sh), which
passes: MT_URL, MT_CA (the server's certificate), MT_WORK (a scratch dir),
MT_ADMIN_PW (admin's password file), MESATEE_BIN, MESATEE_LIB.

Every client of the tests connects with attested TLS: the policy pins the
server's soft measurement and platform key (read once with the certificate
pinned, trust on first use, like `mesatee attest show`)."""
import json
import os
import pathlib
import secrets

import pytest

import mesatee

ROOT = pathlib.Path(__file__).resolve().parents[3]


def env(name):
    v = os.environ.get(name)
    if not v:
        pytest.skip("%s is not set: run through ctest (it_python_sdk)" % name)
    return v


@pytest.fixture(scope="session")
def work():
    return pathlib.Path(env("MT_WORK"))


@pytest.fixture(scope="session")
def url():
    return env("MT_URL")


@pytest.fixture(scope="session")
def claims(url):
    with mesatee.Client(url, ca=env("MT_CA")) as c:
        return c.attest()


def write_policy(path, measurement, platform_key):
    path.write_text(json.dumps({
        "mesatee_policy": 1, "allowed_kinds": ["soft"], "min_level": "soft",
        "measurements": {"gateway": {"measurement": [measurement]}},
        "soft_platform_keys": [platform_key], "max_evidence_age_s": 86400}))
    return path


@pytest.fixture(scope="session")
def policy(work, claims):
    return write_policy(work / "policy.json", claims["measurements"]["measurement"],
                        claims["soft_platform_key"])


@pytest.fixture(scope="session")
def admin(url, policy):
    c = mesatee.Client(url, policy=policy)
    c.login("admin", pathlib.Path(env("MT_ADMIN_PW")).read_text().strip())
    yield c
    c.close()


@pytest.fixture(scope="session")
def make_user(url, policy, admin, work):
    """make_user(name) -> logged-in Client (attested TLS); the password is
    in work/NAME.pw."""
    clients = []

    def make(name):
        pw = secrets.token_urlsafe(18)
        admin.user_add(name, pw)
        (work / ("%s.pw" % name)).write_text(pw)
        c = mesatee.Client(url, policy=policy)
        c.login(name, pw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="session")
def alice(make_user):
    return make_user("alice")


@pytest.fixture(scope="session")
def bob(make_user):
    return make_user("bob")
