# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Integration tests against a real Kubernetes control plane (scripts/controlplane).

The ``integration`` marker is registered here (so it works when pytest runs from the repository
root) and added to every test that uses the ``controlplane`` fixture: ``make integration`` runs
``pytest tests/integration -m integration``.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections import namedtuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(REPO, "scripts", "controlplane")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "integration: needs the local Kubernetes control plane (scripts/controlplane); "
        "run with `make integration`",
    )


def pytest_collection_modifyitems(config, items):
    # A test that uses the control plane is an integration test, marked or not. (This hook sees
    # the whole session; other tests in this directory keep their own marks.)
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "controlplane" in names or "private_controlplane" in names:
            item.add_marker(pytest.mark.integration)


AuditWrite = namedtuple(
    "AuditWrite",
    "verb user groups api_group resource subresource namespace name code ok dry_run uri "
    "timestamp audit_id",
)
AuditWrite.__doc__ = """One write request from the audit log (create/update/patch/delete/deletecollection).

``code`` is the HTTP status, ``ok`` is ``code < 400`` (denied and invalid writes are recorded
too), ``dry_run`` tells a server-side dry run (``?dryRun=All``), ``timestamp`` is the
``stageTimestamp`` as an aware datetime. ``name`` is empty for a create (Metadata level does not
read the body).
"""


class ControlPlane:
    """The running control plane, as the ``controlplane`` fixture hands it to tests.

    Attributes:
        admin_kubeconfig: kubeconfig of ``admin`` (group system:masters).
        restricted_kubeconfig: kubeconfig of ``egress-operator``: authenticated, no RBAC grants
            (tests bind the Roles they want to it).
        restricted_user: ``"egress-operator"``; admin_user: ``"admin"``.
        audit_log: the API server's audit log (JSON lines, Metadata level, write verbs only).
        kubectl: the kubectl built with the API server (same version).
        bin_dir: directory holding kubectl, kube-apiserver, kube-controller-manager and etcd.
        server, ca: API server URL and its CA certificate file.
        version: the pinned Kubernetes version (``v1.34.x``), as /version reports it.
        started_here: True when this test session started it (and so stops it at the end).
    """

    def __init__(self, info, started_here):
        self.info = info
        self.server = info["server"]
        self.ca = info["ca"]
        self.version = info["kubernetesVersion"]
        self.etcd_version = info["etcdVersion"]
        self.admin_kubeconfig = info["adminKubeconfig"]
        self.restricted_kubeconfig = info["restrictedKubeconfig"]
        self.restricted_user = info["restrictedUser"]
        self.admin_user = info["adminUser"]
        self.audit_log = info["auditLog"]
        self.kubectl = info["kubectl"]
        self.bin_dir = info["binDir"]
        self.started_here = started_here
        self._barrier = info["auditBarrier"]

    # ------------------------------------------------------------------ clients

    def api_client(self, kubeconfig=None):
        """A ``kubernetes.client.ApiClient`` for ``kubeconfig`` (default: the admin's)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=kubeconfig or self.admin_kubeconfig)

    def dynamic_client(self, kubeconfig=None):
        """A ``kubernetes.dynamic.DynamicClient`` (``server_side_apply``, any kind)."""
        from kubernetes.dynamic import DynamicClient

        return DynamicClient(self.api_client(kubeconfig))

    def kubectl_run(self, *args, kubeconfig=None, check=True, input=None):
        """Run the matching kubectl; returns the CompletedProcess (text, captured)."""
        cmd = [self.kubectl, "--kubeconfig", kubeconfig or self.admin_kubeconfig] + list(args)
        result = subprocess.run(cmd, capture_output=True, text=True, input=input, check=False)
        if check and result.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s"
                                 % (" ".join(args), result.returncode, result.stdout,
                                    result.stderr))
        return result

    # ------------------------------------------------------------------ audit log

    def audit_mark(self):
        """A mark for ``writes``/``count_writes``: every request answered before it is before it.

        It is the audit log's size once a barrier request has been logged, so events of
        requests that completed earlier cannot land after the mark.
        """
        self._flush()
        return os.path.getsize(self.audit_log)

    def writes(self, user=None, since=None, dry_run=None, ok=None):
        """Write requests logged after ``since``, oldest first, as :class:`AuditWrite`.

        ``user``: only this user name (the API server and the controller-manager write too:
        leases, bootstrap RBAC, namespace cleanup; filter by user). ``since``: a mark from
        :meth:`audit_mark` (or a datetime, compared with the event's stageTimestamp); None
        means since the control plane started. ``dry_run``/``ok``: None counts both kinds,
        True or False keeps only those. Waits for requests answered before the call to be
        logged, so it can be called right after the requests it counts.
        """
        self._flush()
        offset = since if isinstance(since, int) else 0
        result = []
        for event in self._events(offset):
            write = self._write(event)
            if write is None or write.user == self._barrier["user"]:
                continue
            if user is not None and write.user != user:
                continue
            if isinstance(since, datetime.datetime) and write.timestamp < since:
                continue
            if dry_run is not None and write.dry_run != dry_run:
                continue
            if ok is not None and write.ok != ok:
                continue
            result.append(write)
        return result

    def count_writes(self, user=None, since=None, dry_run=None, ok=None):
        """How many write requests :meth:`writes` finds (same arguments)."""
        return len(self.writes(user=user, since=since, dry_run=dry_run, ok=ok))

    def _events(self, offset):
        with open(self.audit_log, "rb") as f:
            f.seek(offset)
            data = f.read()
        for line in data.split(b"\n"):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:  # the last line, half written
                    continue

    @staticmethod
    def _write(event):
        if event.get("verb") not in WRITE_VERBS:
            return None
        if event.get("stage") not in ("ResponseComplete", "Panic"):
            return None
        ref = event.get("objectRef") or {}
        code = (event.get("responseStatus") or {}).get("code", 0)
        uri = event.get("requestURI", "")
        query = uri.partition("?")[2]
        stamp = event.get("stageTimestamp") or event.get("requestReceivedTimestamp")
        user = event.get("user") or {}
        return AuditWrite(
            verb=event["verb"],
            user=user.get("username", ""),
            groups=tuple(user.get("groups") or ()),
            api_group=ref.get("apiGroup", ""),
            resource=ref.get("resource", ""),
            subresource=ref.get("subresource", ""),
            namespace=ref.get("namespace", ""),
            name=ref.get("name", ""),
            code=code,
            ok=0 < code < 400,
            dry_run="dryRun=All" in query.split("&"),
            uri=uri,
            timestamp=datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")),
            audit_id=event.get("auditID", ""),
        )

    def _flush(self, timeout=10):
        """Send a request that is audited (a denied dry-run create by a user with no rights) and
        wait until it is in the log: the API server writes events in order of completion."""
        tag = "audit-barrier-" + secrets.token_hex(8)
        url = "%s/api/v1/namespaces/default/configmaps?dryRun=All&fieldManager=%s" % (
            self.server, tag)
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": tag}}).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": "Bearer " + self._barrier["token"],
            "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10,
                                   context=ssl.create_default_context(cafile=self.ca)).close()
        except urllib.error.HTTPError:
            pass  # 403 expected: the barrier user may do nothing, and that is audited too
        needle = tag.encode()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.audit_log, "rb") as f:
                if needle in f.read():
                    return
            time.sleep(0.05)
        raise AssertionError("the audit barrier request never reached %s" % self.audit_log)


def _script(*args, check=True, state_dir=None):
    env = dict(os.environ)
    if state_dir:
        env["CONTROLPLANE_STATE_DIR"] = state_dir
    result = subprocess.run([SCRIPT] + list(args), capture_output=True, text=True, cwd=REPO,
                            check=False, env=env)
    if check and result.returncode != 0:
        pytest.fail("scripts/controlplane %s failed (%d):\n%s%s"
                    % (" ".join(args), result.returncode, result.stdout, result.stderr),
                    pytrace=False)
    return result


@pytest.fixture(scope="session")
def controlplane():
    """A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager).

    Runs ``scripts/controlplane up`` (building the binaries if the cache lacks them: ``make
    integration`` builds them first). When that started it, ``scripts/controlplane down`` runs
    at the end of the session, whether tests passed or not (unless another live test session
    in the same working tree still uses it: then it is left running, and says so); one that was
    already running (``scripts/controlplane up`` by hand) is reused and left running.

    Returns a :class:`ControlPlane`:

    * ``admin_kubeconfig``, ``restricted_kubeconfig`` (user ``egress-operator``, no RBAC
      grants), ``kubectl`` (the matching kubectl), ``bin_dir``, ``server``, ``ca``, ``version``;
    * ``api_client(kubeconfig=None)`` / ``dynamic_client(kubeconfig=None)``: kubernetes Python
      clients (admin by default); ``kubectl_run(*args, kubeconfig=None, check=True)``;
    * ``audit_log`` and the audit helpers::

          mark = controlplane.audit_mark()
          ...  # requests under test
          assert controlplane.count_writes(user="admin", since=mark) == 1
          controlplane.writes(user=controlplane.restricted_user, since=mark, ok=False)

      ``writes``/``count_writes(user=None, since=None, dry_run=None, ok=None)`` count
      create/update/patch/delete(collection) requests, successful or not (``ok``), dry runs
      included unless ``dry_run=False``. Filter by user: the API server and the
      controller-manager write by themselves.

    The cluster is shared by the whole session (and by a developer's running one): create
    uniquely named namespaces and clean up what you create.
    """
    # `up` is a no-op when it is running; "started" tells whether this call started it (another
    # session may have started it since a status check).
    started_here = False
    others = []
    try:
        info = json.loads(_script("up", "--json").stdout)
        started_here = info["started"]
        # Sessions sharing a working tree share its control plane: each session using it leaves
        # a file named after its pid, and the session that started it stops it only when no
        # other live session still uses it.
        users = os.path.join(info["stateDir"], "users")
        os.makedirs(users, exist_ok=True)
        mine = os.path.join(users, str(os.getpid()))
        open(mine, "w").close()
        try:
            yield ControlPlane(info, started_here)
        finally:
            if os.path.exists(mine):
                os.remove(mine)
            others = [n for n in os.listdir(users) if n.isdigit() and _alive(int(n))]
    finally:
        if started_here and others:
            print("\ncontrolplane: left running for the sessions still using it (pids %s); "
                  "stop it with scripts/controlplane down" % ", ".join(others))
        elif started_here:
            _script("down", check=False)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def admin_api(controlplane):
    """A kubernetes ApiClient as admin, shared by the session."""
    client = controlplane.api_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def dynamic(controlplane, admin_api):
    """A kubernetes DynamicClient as admin, shared by the session."""
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(admin_api)


class PrivateControlPlane(ControlPlane):
    """A control plane of one test module alone (its own state directory, ports and etcd), for
    tests that stop and start the API server. ``stop_apiserver()`` kills kube-apiserver as a
    crash would; ``start_apiserver()`` starts it again on the same port with the same data."""

    def __init__(self, info, state_dir):
        super().__init__(info, started_here=True)
        self.state_dir = state_dir

    def stop_apiserver(self):
        _script("apiserver", "stop", state_dir=self.state_dir)

    def start_apiserver(self):
        _script("apiserver", "start", state_dir=self.state_dir)


def start_private_controlplane(state_dir):
    """Start a control plane in ``state_dir`` (``CONTROLPLANE_STATE_DIR``), after stopping
    whatever an earlier run left there; a :class:`PrivateControlPlane`. Stop it with
    :func:`stop_private_controlplane`, whatever happens (a finalizer)."""
    _script("down", check=False, state_dir=state_dir)
    info = json.loads(_script("up", "--json", state_dir=state_dir).stdout)
    return PrivateControlPlane(info, state_dir)


def stop_private_controlplane(state_dir):
    """``scripts/controlplane down`` for ``state_dir``; safe to repeat."""
    _script("down", check=False, state_dir=state_dir)


@pytest.fixture(scope="module")
def private_controlplane(request):
    """A :class:`PrivateControlPlane` started for this test module and stopped after it (the
    binaries are the shared, cached ones; starting takes about 15 seconds)."""
    name = request.module.__name__.rpartition(".")[2]
    state_dir = os.path.join(REPO, "build", "controlplane-" + name.replace("_", "-"))
    try:
        yield start_private_controlplane(state_dir)
    finally:
        stop_private_controlplane(state_dir)
