# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The ansible-core matrix: every minor meta/runtime.yml claims, on this machine's Python 3.11.

    nox -f tests/matrix/noxfile.py -l                  the sessions
    make test-matrix                                   all of them (nox pinned in requirements-dev.txt)
    make test-matrix-edges                             the oldest minor in full, the newest's smoke
    nox -f tests/matrix/noxfile.py -s ansible-2.17 -- units     one step of one minor

One session per minor, ``ansible-X.Y``, with a venv of its own (build/nox/ansible-X-Y): the newest
patch of that minor (CORE below; the newest minor's is the one constraints.txt pins) and the unit
tests' packages at the versions constraints.txt pins, resolvelib excepted (ansible-core before
2.19 wants it below 1.1). The venv is rebuilt only when those pins change. Steps, chosen by
posargs (default: sanity and units, plus smoke on the oldest and newest minor):

* ``sanity``: ``ansible-test sanity --requirements`` of that ansible-core (``make sanity-run``,
  the same copy of the tree as ``make sanity``; its per-test venvs are ansible-test's, cached in
  ~/.ansible/test).
* ``units``: ``pytest tests/unit`` with that ansible-core.
* ``smoke``: ``playbooks/render.yml`` (its files must be byte for byte the golden ones), then
  tests/matrix/smoke.yml: the modules against the local API server (scripts/controlplane up; it
  is stopped again only when this session started it).

kubernetes.core comes from .venv (the pinned ``ansible`` package) for every minor, through
build/matrix/collections. ansible-core 2.20 and later need Python 3.12, which this machine lacks.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess

import nox

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "3.11"
CONSTRAINTS = os.path.join(REPO, "constraints.txt")
MAIN_VENV = os.environ.get("VENV") or os.path.join(REPO, ".venv")


def _pinned(name):
    with open(CONSTRAINTS, encoding="utf-8") as handle:
        match = re.search(r"^%s==(\S+)$" % re.escape(name), handle.read(), re.M | re.I)
    return match.group(1) if match else None


# The newest patch of each minor that installs on Python 3.11 (`pip index versions ansible-core`);
# the newest minor's is constraints.txt's, so the matrix tests what `make test` uses.
CORE = {"2.16": "2.16.19", "2.17": "2.17.14", "2.18": "2.18.19", "2.19": _pinned("ansible-core")}
OLDEST, NEWEST = min(CORE, key=lambda v: tuple(map(int, v.split(".")))), \
    max(CORE, key=lambda v: tuple(map(int, v.split("."))))
# Pins that differ from constraints.txt for a minor: ansible-core < 2.19 requires
# resolvelib >= 0.5.3, < 1.1.0.
EXTRA_PINS = {"2.16": ["resolvelib==1.0.1"], "2.17": ["resolvelib==1.0.1"],
              "2.18": ["resolvelib==1.0.1"], "2.19": []}
OVERRIDDEN = ("ansible-core", "resolvelib")
# What the unit tests and the modules need besides ansible-core (versions from constraints.txt).
PACKAGES = ["kubernetes", "PyYAML", "jsonpatch", "pytest", "pytest-timeout", "hypothesis"]
STEPS = ("sanity", "units", "smoke")
MATRIX = os.path.join(REPO, "build", "matrix")
COLLECTIONS = os.path.join(MATRIX, "collections")
GOLDEN = os.path.join(REPO, "tests", "unit", "golden", "seed-2-https-upgrade")

nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"


def _constraints(minor):
    """build/matrix/constraints-X.Y.txt: constraints.txt with this minor's own pins."""
    lines = []
    with open(CONSTRAINTS, encoding="utf-8") as handle:
        for line in handle:
            name = re.split(r"[=<>!~ ]", line.strip(), 1)[0].lower()
            if line.strip() and not line.startswith("#") and name not in OVERRIDDEN:
                lines.append(line.strip())
    lines += ["ansible-core==%s" % CORE[minor]] + EXTRA_PINS[minor]
    os.makedirs(MATRIX, exist_ok=True)
    path = os.path.join(MATRIX, "constraints-%s.txt" % minor)
    text = "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path, hashlib.sha256((text + " ".join(PACKAGES)).encode()).hexdigest()


def _install(session, minor):
    path, digest = _constraints(minor)
    stamp = os.path.join(session.virtualenv.location, ".servicemesh-egress-stamp")
    if os.path.exists(stamp) and open(stamp, encoding="utf-8").read() == digest:
        session.log("venv current (ansible-core %s)" % CORE[minor])
        return
    session.install("--disable-pip-version-check", "-c", path,
                    "ansible-core==%s" % CORE[minor], *PACKAGES)
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write(digest)


def _collections():
    """build/matrix/collections: this tree as servicemesh.egress, kubernetes.core from .venv."""
    site = subprocess.run([os.path.join(MAIN_VENV, "bin", "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    links = {("servicemesh", "egress"): REPO,
             ("kubernetes", "core"): os.path.join(site, "ansible_collections", "kubernetes",
                                                  "core")}
    for (namespace, name), target in links.items():
        link = os.path.join(COLLECTIONS, "ansible_collections", namespace, name)
        if os.path.realpath(link) != os.path.realpath(target):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(target, link)
    return COLLECTIONS


def _env(session, minor):
    tmp = os.path.join(MATRIX, minor, "ansible-tmp")
    return {"ANSIBLE_COLLECTIONS_PATH": _collections(), "PYTHONPATH": COLLECTIONS,
            "ANSIBLE_LOCAL_TEMP": os.path.join(tmp, "local"),
            "ANSIBLE_REMOTE_TEMP": os.path.join(tmp, "remote"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "PATH": os.path.join(session.virtualenv.location, "bin") + os.pathsep
            + os.environ.get("PATH", "")}


def _check_version(session, minor):
    out = session.run("ansible", "--version", silent=True, env=_env(session, minor))
    first = out.splitlines()[0]
    if "[core %s]" % CORE[minor] not in first:
        session.error("expected ansible-core %s, got: %s" % (CORE[minor], first))
    session.log(first)


def _sanity(session, minor):
    session.run("make", "-s", "sanity-run", "SANITY_VENV=%s" % session.virtualenv.location,
                "SANITY_DIR=%s" % os.path.join(MATRIX, minor, "sanity"), external=True)


def _units(session, minor):
    session.run("python", "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider",
                env=_env(session, minor))


def _controlplane():
    """``(info, started here)`` of the local API server (scripts/controlplane up --json)."""
    out = subprocess.run([os.path.join(REPO, "scripts", "controlplane"), "up", "--json"],
                         check=True, capture_output=True, text=True, cwd=REPO).stdout
    info = json.loads(out)
    return info, info["started"]


def _smoke(session, minor):
    env = _env(session, minor)
    out = os.path.join(MATRIX, minor, "render")
    shutil.rmtree(out, ignore_errors=True)
    session.run("ansible-playbook", "playbooks/render.yml", "-e", "egress_output_dir=" + out,
                env=env)
    for name in sorted(os.listdir(GOLDEN)):
        with open(os.path.join(GOLDEN, name), encoding="utf-8") as golden, \
                open(os.path.join(out, name[:-len(".golden")]), encoding="utf-8") as rendered:
            if golden.read() != rendered.read():
                session.error("render with ansible-core %s: %s differs from %s"
                              % (CORE[minor], name[:-len(".golden")], os.path.join(GOLDEN, name)))
    session.log("render: %d files as the golden ones" % len(os.listdir(GOLDEN)))
    info, started = _controlplane()
    try:
        session.run("ansible-playbook", os.path.join(HERE, "smoke.yml"),
                    "-e", "smoke_id=%s" % secrets.token_hex(3),
                    env=dict(env, K8S_AUTH_KUBECONFIG=info["adminKubeconfig"]))
    finally:
        if started:
            subprocess.run([os.path.join(REPO, "scripts", "controlplane"), "down"], cwd=REPO,
                           check=False)


def _make_session(minor):
    tags = ["matrix"] + (["edges"] if minor in (OLDEST, NEWEST) else [])

    @nox.session(name="ansible-%s" % minor, python=PYTHON, venv_backend="venv", tags=tags)
    def run(session):
        steps = session.posargs or ["sanity", "units"] + (
            ["smoke"] if minor in (OLDEST, NEWEST) else [])
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            session.error("unknown steps %s (choose from %s)" % (unknown, ", ".join(STEPS)))
        session.chdir(REPO)
        _install(session, minor)
        _check_version(session, minor)
        for step in steps:
            session.log("ansible-core %s: %s" % (CORE[minor], step))
            {"sanity": _sanity, "units": _units, "smoke": _smoke}[step](session, minor)

    run.__doc__ = "ansible-core %s: %s" % (CORE[minor], "sanity, units" + (
        ", smoke" if minor in (OLDEST, NEWEST) else ""))
    return run


for _minor in CORE:
    _make_session(_minor)
