# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""API faults, against a real API server: transient errors injected by a proxy on loopback
(429, 500, 503, 409 and connection resets) are retried; a failure that lasts names what was and
was not applied; the API server killed in the middle of a large apply, started again, and the
rerun converges with no duplicates and no orphans (objects counted by the ownership labels).

The kill test runs on a private control plane (``private_controlplane``), so the shared one of
the session (and other sessions) never sees its API server go away. docs/reliability.md records
the figures these tests print (``pytest -s``).
"""

from __future__ import annotations

import os
import time

import pytest

from faultproxy import AfterN, FaultProxy, FirstAttempts
from helpers_module import (
    EGRESS_NAMESPACE,
    KINDS,
    delete_namespace,
    ensure_namespace,
    entry,
    expansion,
    finish_module,
    ok,
    owned_objects,
    rule,
    run_module,
    start_module,
    unique,
)

pytestmark = pytest.mark.integration


def big_params(gateway, namespaces, entries):
    """``entries`` HTTPS entries spread over the source namespaces (5 objects per entry and
    namespace pair, give or take)."""
    rules = []
    per = max(1, entries // len(namespaces))
    for index, namespace in enumerate(namespaces):
        rules.append(rule(namespace, *[
            entry("svc-%d-%d" % (index, n), "svc-%d-%d.example.com" % (index, n))
            for n in range(per)]))
    # expanded objects only, so the writes counted are the expansion's
    return {"gateway": gateway, "egress_rules": rules, "output": "expanded"}


def unlabelled_leftovers(api, gateway, namespaces):
    """Objects of the generated kinds named after this gateway that lack the ownership labels
    (a write that landed without them would be an orphan no prune can find)."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    found = []
    for kind, (group, version, plural) in KINDS.items():
        for namespace in [EGRESS_NAMESPACE] + list(namespaces):
            for item in custom.list_namespaced_custom_object(group, version, namespace,
                                                             plural)["items"]:
                meta = item["metadata"]
                if meta["name"].startswith(gateway) and \
                        (meta.get("labels") or {}).get("egress.servicemesh.io/policy") != gateway:
                    found.append((kind, namespace, meta["name"]))
    return found


# ---------------------------------------------------------------------------- the proxy


@pytest.fixture
def proxy(controlplane):
    state = controlplane.info["stateDir"]
    p = FaultProxy(controlplane.server, controlplane.ca, os.path.join(state, "apiserver.crt"),
                   os.path.join(state, "apiserver.key")).start()
    yield p
    p.stop()


@pytest.fixture
def scene(controlplane, admin_api):
    gateway = unique("flt")
    namespaces = [unique("src"), unique("src")]
    for namespace in [EGRESS_NAMESPACE] + namespaces:
        ensure_namespace(admin_api, namespace)
    yield gateway, namespaces
    run_module(controlplane.admin_kubeconfig, {"gateway": gateway, "state": "absent"})
    for namespace in namespaces:
        delete_namespace(admin_api, namespace)


def test_transient_faults_are_retried_and_the_result_is_exact(
        controlplane, admin_api, proxy, scene, tmp_path):
    gateway, namespaces = scene
    params = big_params(gateway, namespaces, 8)
    expected = set(expansion(params))
    kubeconfig = proxy.kubeconfig(controlplane.admin_kubeconfig, tmp_path / "proxy.kubeconfig")
    # Every write fails on its first attempt (429, 503, 500 or a reset, in turn); every apply
    # then meets a 409 on its second; the first attempt of every read fails too.
    proxy.add_rule(FirstAttempts(FaultProxy.writes, ["429", "503", "500", "reset"]))
    proxy.add_rule(FirstAttempts(lambda m, p, q: m == "PATCH" and FaultProxy.writes(m, p, q),
                                 ["409"]))
    proxy.add_rule(FirstAttempts(FaultProxy.reads, ["503", "reset"]))

    started = time.monotonic()
    created = ok(run_module(kubeconfig, params))
    took = time.monotonic() - started
    injected = proxy.injected()
    print("\n%d objects through the fault proxy in %.1fs; faults injected: %s"
          % (len(expected), took, injected))
    assert {(o["kind"], o["namespace"], o["name"]) for o in created["objects"]} == expected
    assert set(owned_objects(admin_api, gateway)) == expected
    assert unlabelled_leftovers(admin_api, gateway, namespaces) == []
    # every kind of fault was met, and every write that met one was answered in the end
    assert {"429", "503", "500", "reset", "409"} <= set(injected)
    writes = [s for s in proxy.seen if FaultProxy.writes(s.method, s.path, s.query)]
    for seen in writes:
        if seen.fault:
            assert any(later.path == seen.path and later.method == seen.method
                       and later.status and later.status < 300 for later in writes), seen
    # a rerun through the same faults writes nothing (reads are still retried)
    again = ok(run_module(kubeconfig, params))
    assert again["changed"] is False


def test_a_failure_that_lasts_names_what_was_and_was_not_applied(
        controlplane, admin_api, proxy, scene, tmp_path):
    gateway, namespaces = scene
    params = big_params(gateway, namespaces, 6)
    expected = set(expansion(params))
    kubeconfig = proxy.kubeconfig(controlplane.admin_kubeconfig, tmp_path / "proxy.kubeconfig")
    proxy.add_rule(AfterN(FaultProxy.writes, 7, "503"))

    started = time.monotonic()
    failed = run_module(kubeconfig, params)
    took = time.monotonic() - started
    assert failed["failed"] is True and failed["_rc"] != 0
    assert "HTTP 503" in failed["msg"] and "attempts" in failed["msg"]
    assert "rerun converges" in failed["msg"]
    applied = set(failed["applied"])
    not_applied = {(o["kind"], o["namespace"], o["name"]) for o in failed["not_applied"]}
    print("\nfailure reported after %.1fs: %d applied, %d not applied, faults %s"
          % (took, len(applied), len(not_applied), proxy.injected()))
    print("message: %s" % failed["msg"][:400])
    # exactly the 7 writes that passed are reported applied, and they are the live objects
    live = owned_objects(admin_api, gateway)
    assert len(applied) == 7 and len(live) == 7
    assert {"%s %s/%s" % key for key in live} == applied
    assert not_applied == expected - set(live)

    proxy.clear_rules()
    rerun = ok(run_module(kubeconfig, params))
    assert {(o["kind"], o["namespace"], o["name"]) for o in rerun["objects"]
            if o["action"] == "created"} == not_applied
    assert set(owned_objects(admin_api, gateway)) == expected


# ---------------------------------------------------------------------------- the API server killed


ENTRIES = 300


def test_api_server_killed_in_the_middle_of_a_large_apply(private_controlplane, tmp_path):
    cp = private_controlplane
    api = cp.api_client()
    gateway = unique("crash")
    namespaces = [unique("src") for dummy in range(3)]
    for namespace in [EGRESS_NAMESPACE] + namespaces:
        ensure_namespace(api, namespace)
    params = big_params(gateway, namespaces, ENTRIES)
    expected = set(expansion(params))

    mark = cp.audit_mark()
    proc = start_module(cp.admin_kubeconfig, params)
    # Kill the API server once a quarter of the objects are written.
    deadline = time.monotonic() + 300
    while cp.count_writes(user=cp.admin_user, since=mark, dry_run=False) < len(expected) // 4:
        assert proc.poll() is None, "the apply ended before the kill: %s" % (
            finish_module(proc).get("msg"))
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cp.stop_apiserver()
    killed_at = time.monotonic()
    failed = finish_module(proc)
    gave_up = time.monotonic() - killed_at
    cp.start_apiserver()
    api = cp.api_client()
    written = len(owned_objects(api, gateway))
    print("\n%d objects; API server killed after %d writes; the module gave up %.1fs later; "
          "%d objects were live" % (len(expected), len(expected) // 4, gave_up, written))
    print("message: %s" % failed["msg"][:400])
    assert failed["failed"] is True
    assert "API server" in failed["msg"]
    assert failed["applied"] and failed["not_applied"]
    assert 0 < written < len(expected)
    # every object reported applied is live (some writes answered as the server died may be
    # live without being reported: the rerun finds them unchanged or applies them again)
    reported = set(failed["applied"])
    assert reported <= {"%s %s/%s" % key for key in owned_objects(api, gateway)}

    rerun = ok(run_module(cp.admin_kubeconfig, params))
    live = owned_objects(api, gateway)
    assert set(live) == expected and len(live) == len(expected)
    assert unlabelled_leftovers(api, gateway, namespaces) == []
    assert {(o["kind"], o["namespace"], o["name"]) for o in rerun["objects"]} == expected
    mark = cp.audit_mark()
    assert ok(run_module(cp.admin_kubeconfig, params))["changed"] is False
    assert cp.count_writes(user=cp.admin_user, since=mark, dry_run=None) == 0

    gone = ok(run_module(cp.admin_kubeconfig, {"gateway": gateway, "state": "absent"}))
    assert gone["changed"] is True and owned_objects(api, gateway) == {}
    api.close()
