# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Ownership and check mode, against the real API server.

* An object made by hand whose name collides with a generated one is never modified or deleted
  without ``force``: not by a run (a conflict), not by ``state: absent``, not by a prune.
* Prune and absent select by the two ownership labels: an object that lost them is left alone.
* Check mode sends no write but dry runs on every path: create, update, prune, force takeover,
  a switch of mode, the CR output, a conflict, absent, absent of a policy that is not there.

test_egress_policy_module.py has the basic conflict/force and check-mode cases; these add the
paths it does not walk.
"""

from __future__ import annotations

import pytest

from helpers_module import (
    EGRESS_NAMESPACE,
    POLICY,
    create_object,
    delete_object,
    entry,
    get_object,
    keys,
    ok,
    Policy,
    rule,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def policy(controlplane, admin_api):
    p = Policy(controlplane, admin_api)
    yield p
    p.cleanup()


def versions(policy, extra=()):
    """resourceVersion of the policy's objects and of the ``extra`` keys."""
    out = {k: o["metadata"]["resourceVersion"] for k, o in policy.live().items()}
    for kind, namespace, name in extra:
        obj = get_object(policy.api, kind, namespace, name)
        out[(kind, namespace, name)] = obj["metadata"]["resourceVersion"] if obj else None
    return out


def hand_made(policy, kind, namespace, name, spec, labels=None):
    create_object(policy.api, {
        "apiVersion": "networking.istio.io/v1", "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"team": "web"}},
        "spec": spec})
    return get_object(policy.api, kind, namespace, name)["metadata"]["resourceVersion"]


def test_colliding_hand_made_objects_survive_runs_absent_and_check_mode(policy):
    # One collision on the client side (source namespace), one on the gateway side.
    client_name = policy.gateway + "-alpha"
    gateway_side = [k for k in keys(ok(policy.run(policy.params(), check=True)))
                    if k[0] == "VirtualService" and k[1] == EGRESS_NAMESPACE][0]
    ours = {
        ("ServiceEntry", policy.ns, client_name): hand_made(
            policy, "ServiceEntry", policy.ns, client_name,
            {"hosts": ["mine.example.com"], "resolution": "DNS",
             "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}),
        gateway_side: hand_made(policy, "VirtualService", EGRESS_NAMESPACE, gateway_side[2],
                                {"hosts": ["mine.example.com"], "http": [{"route": [
                                    {"destination": {"host": "mine.example.com"}}]}]}),
    }
    for check in (True, False):
        mark = policy.mark()
        failed = policy.run(policy.params(), check=check)
        assert failed["failed"] is True
        assert "%d objects in the way" % len(ours) in failed["msg"]
        errors = "\n".join(failed["errors"])
        for kind, namespace, name in ours:
            assert "%s %s/%s exists and is not owned by this policy" % (kind, namespace, name) \
                in errors
        assert policy.writes(mark, dry_run=None) == []
        assert versions(policy, ours) == ours
    # absent (and its check mode) deletes only what carries the labels: nothing here
    for check in (True, False):
        mark = policy.mark()
        ok(policy.run({"gateway": policy.gateway, "state": "absent"}, check=check))
        assert policy.writes(mark, dry_run=None) == []
        assert versions(policy, ours) == ours
    for key in ours:
        delete_object(policy.api, *key)


def test_prune_and_absent_leave_an_object_that_lost_the_labels(policy, controlplane):
    two = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com"),
                             entry("beta", "beta.example.com")))
    created = ok(policy.run(two))
    beta = sorted(k for k in keys(created) if k[0] == "ServiceEntry" and "beta" in k[2])[0]
    # Someone takes the object over: the ownership labels are removed by hand.
    controlplane.kubectl_run("label", "serviceentries.networking.istio.io", beta[2], "-n",
                             beta[1], POLICY + "-", "app.kubernetes.io/managed-by-")
    taken = get_object(policy.api, *beta)["metadata"]["resourceVersion"]
    one = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com")))
    pruned = ok(policy.run(one))
    assert beta not in keys(pruned, "deleted")
    assert keys(pruned, "deleted")  # the other beta objects, still labelled, are pruned
    assert get_object(policy.api, *beta)["metadata"]["resourceVersion"] == taken
    ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert policy.live() == {}
    assert get_object(policy.api, *beta)["metadata"]["resourceVersion"] == taken
    delete_object(policy.api, *beta)


def _check_run(policy, args, **kw):
    """A check-mode run: no real write (dry runs only) and no live object changed."""
    before = versions(policy)
    mark = policy.mark()
    result = policy.run(args, check=True, **kw)
    assert policy.writes(mark, dry_run=False) == []
    assert all(w.dry_run for w in policy.writes(mark, dry_run=None))
    assert versions(policy) == before
    return result


def test_check_mode_never_writes_on_any_path(policy):
    params = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com"),
                                entry("beta", "beta.example.com", 80, "HTTP"),
                                selector={"app": "sleep"}))
    assert ok(_check_run(policy, params))["changed"] is True                  # create
    ok(policy.run(params))
    assert ok(_check_run(policy, params))["changed"] is False                 # nothing to do
    update = policy.params(rule(policy.ns, entry("alpha", "alpha2.example.com"),
                                selector={"app": "sleep"}))
    planned = ok(_check_run(policy, update))                                  # update + prune
    assert keys(planned, "updated") and keys(planned, "deleted")
    planned = ok(_check_run(policy, dict(params, mode="ambient")))            # switch of mode
    assert keys(planned, "created") and keys(planned, "deleted")
    planned = ok(_check_run(policy, dict(params, output="both")))             # the CR too
    assert ("ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy.gateway) in keys(planned, "created")

    # a conflict, then the forced takeover of it, both in check mode
    victim = [k for k in keys(planned) if k[0] == "VirtualService"][0]
    delete_object(policy.api, *victim)
    hand_made(policy, "VirtualService", victim[1], victim[2], {"hosts": ["x.example.com"]})
    failed = _check_run(policy, params)
    assert failed["failed"] is True and "not owned by this policy" in failed["msg"]
    forced = ok(_check_run(policy, dict(params, force=True)))
    assert victim in keys(forced, "updated")
    ok(policy.run(dict(params, force=True)))

    planned = ok(_check_run(policy, {"gateway": policy.gateway, "state": "absent"}))  # absent
    assert keys(planned, "deleted") == set(policy.live())
    ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    nothing = ok(_check_run(policy, {"gateway": policy.gateway, "state": "absent"}))  # not there
    assert nothing["changed"] is False
