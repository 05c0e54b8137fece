# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Concurrent runs against the real API server, as two AWX jobs or two terminals would start
them: two policies on two gateways sharing a source namespace, 20 rounds, each round changing
both (new hosts, entries added and removed); and the same policy applied twice at once. After
every round each policy's objects are exactly what it expands to, and nothing else was touched.
"""

from __future__ import annotations

import pytest

from helpers_module import (
    EGRESS_NAMESPACE,
    delete_namespace,
    ensure_namespace,
    entry,
    expansion,
    finish_module,
    owned_objects,
    rule,
    run_module,
    start_module,
    unique,
)

pytestmark = pytest.mark.integration

ROUNDS = 20


def params_for(gateway, namespace, round_, tag):
    """A policy that differs every round: 2 to 4 entries (so entries come and go: prune), the
    hosts of every entry change with the round (updates)."""
    count = 2 + round_ % 3
    entries = [entry("svc-%d" % n, "%s-%d-r%d.example.com" % (tag, n, round_)) for n in range(count)]
    entries.append(entry("plain", "%s-plain.example.com" % tag, 80, "HTTP"))
    # expanded objects only: the stored policy (output auto) is tested in test_egress_policy_module
    return {"gateway": gateway, "egress_rules": [rule(namespace, *entries)], "output": "expanded"}


def assert_exact(api, gateway, params):
    """The live objects carrying the policy's labels are exactly the expansion, with its specs."""
    want = expansion(params)
    live = owned_objects(api, gateway)
    assert set(live) == set(want), (set(live) ^ set(want))
    for key, obj in want.items():
        assert live[key]["spec"] == obj["spec"], key
    return live


def describe(result):
    return "rc=%s msg=%s" % (result.get("_rc"), (result.get("msg") or "")[:600])


@pytest.fixture
def shared_namespace(controlplane, admin_api):
    namespace = unique("src")
    ensure_namespace(admin_api, EGRESS_NAMESPACE)
    ensure_namespace(admin_api, namespace)
    gateways = []
    yield namespace, gateways
    for gateway in gateways:
        run_module(controlplane.admin_kubeconfig, {"gateway": gateway, "state": "absent"})
    delete_namespace(admin_api, namespace)


def test_two_policies_on_two_gateways_at_the_same_time(controlplane, admin_api, shared_namespace):
    namespace, gateways = shared_namespace
    first, second = unique("cca"), unique("ccb")
    gateways += [first, second]
    kubeconfig = controlplane.admin_kubeconfig
    for round_ in range(ROUNDS):
        a = params_for(first, namespace, round_, "a")
        b = params_for(second, namespace, round_, "b")
        runs = [start_module(kubeconfig, a), start_module(kubeconfig, b)]
        results = [finish_module(p) for p in runs]
        for result in results:
            assert not result.get("failed"), "round %d: %s" % (round_, describe(result))
            assert result["changed"] is True
        assert_exact(admin_api, first, a)
        assert_exact(admin_api, second, b)

    # Deleting one policy leaves the other's objects exactly as they were (same resourceVersion).
    before = {key: obj["metadata"]["resourceVersion"]
              for key, obj in owned_objects(admin_api, second).items()}
    mark = controlplane.audit_mark()
    gone = run_module(kubeconfig, {"gateway": first, "state": "absent"})
    assert gone["changed"] is True and owned_objects(admin_api, first) == {}
    after = {key: obj["metadata"]["resourceVersion"]
             for key, obj in owned_objects(admin_api, second).items()}
    assert after == before
    touched = {(w.namespace, w.name) for w in controlplane.writes(since=mark, dry_run=None)
               if w.user == controlplane.admin_user}
    assert not touched & {(key[1], key[2]) for key in before}


def test_the_same_policy_applied_twice_at_the_same_time(controlplane, admin_api, shared_namespace):
    namespace, gateways = shared_namespace
    gateway = unique("ccs")
    gateways.append(gateway)
    kubeconfig = controlplane.admin_kubeconfig
    outcomes = {"both succeeded": 0, "one reported a conflict": 0}
    mark = controlplane.audit_mark()
    for round_ in range(8):
        params = params_for(gateway, namespace, round_, "s")
        results = [finish_module(p) for p in
                   [start_module(kubeconfig, params), start_module(kubeconfig, params)]]
        failures = [r for r in results if r.get("failed")]
        # At least one run succeeds; a run that loses a race says which object and why, and
        # reports what it did and did not apply.
        assert len(failures) < 2, [describe(r) for r in failures]
        for failure in failures:
            assert "HTTP 409" in failure["msg"] or "conflict" in failure["msg"].lower(), \
                describe(failure)
            assert "not_applied" in failure
        outcomes["one reported a conflict" if failures else "both succeeded"] += 1
        assert_exact(admin_api, gateway, params)
    # Races the API server settled with a 409 (two creates of one object): the module retries
    # those, so a losing request shows here and not as a failed run.
    races = [w for w in controlplane.writes(since=mark, dry_run=False)
             if w.user == controlplane.admin_user and w.code == 409
             and (w.namespace == namespace or w.name.startswith(gateway))]
    print("\nsame policy twice, 8 rounds: %s; requests answered 409 and retried: %d"
          % (outcomes, len(races)))
    # and a third run finds nothing to do
    again = run_module(kubeconfig, params_for(gateway, namespace, 7, "s"))
    assert not again.get("failed") and again["changed"] is False
