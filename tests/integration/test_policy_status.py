# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The status egress_policy writes on the stored ASMEgressTrafficPolicy (output crd or both),
against the real API server: what kubectl shows, when it is (not) written, a failed apply, and a
user who may apply policies but not write their status.

Every run is ``ansible localhost -m servicemesh.egress.egress_policy``; the audit log counts the
writes, status writes included (subresource ``status``).
"""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from helpers_module import (
    EGRESS_NAMESPACE,
    REPO,
    Policy,
    create_object,
    delete_object,
    entry,
    get_object,
    ok,
    rule,
    wait_until,
)

pytestmark = pytest.mark.integration

RBAC = os.path.join(REPO, "docs", "rbac.yaml")
PLURAL = "asmegresstrafficpolicies"


@pytest.fixture
def policy(controlplane, admin_api):
    p = Policy(controlplane, admin_api)
    yield p
    p.cleanup()


def live_status(policy):
    obj = get_object(policy.api, "ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy.gateway)
    return (obj or {}).get("status")


def status_writes(policy, since):
    return [w for w in policy.cp.writes(since=since, user=policy.cp.admin_user)
            if w.resource == PLURAL and w.subresource == "status" and w.name == policy.gateway]


def kubectl_get(policy, *extra):
    return policy.cp.kubectl_run("get", PLURAL, "-n", EGRESS_NAMESPACE, policy.gateway,
                                 *extra).stdout


def test_kubectl_shows_the_status_and_a_rerun_writes_nothing(policy):
    mark = policy.mark()
    first = ok(policy.run(policy.params(output="both")))
    count = sum(1 for o in first["objects"] if o["kind"] != "ASMEgressTrafficPolicy")
    # no gateway Service in this cluster: one warning, so the status is Warning
    assert first["warnings"] and any("does not exist yet" in w for w in first["warnings"])
    status = live_status(policy)
    assert status["status"] == "Warning"
    assert status["message"].startswith("%d objects applied (sidecar mode, output: both); "
                                        "1 warning: " % count)
    assert first["policy_status"] == dict(status, written=True)
    writes = status_writes(policy, mark)
    assert [(w.verb, w.ok, w.dry_run) for w in writes] == [("patch", True, False)]

    table = kubectl_get(policy).splitlines()
    assert table[0].split()[:5] == ["NAME", "GATEWAY", "MODE", "STATUS", "MESSAGE"]
    assert table[1].split()[:3] == [policy.gateway, policy.gateway, "Warning"]
    assert "%d objects applied" % count in table[1]
    assert kubectl_get(policy, "-o", "jsonpath={.status.status}") == "Warning"

    mark = policy.mark()
    again = ok(policy.run(policy.params(output="both")))
    assert again["changed"] is False
    assert again["policy_status"]["written"] is False
    assert again["policy_status"]["reason"] == "unchanged"
    assert policy.writes(mark, dry_run=None) == [] and status_writes(policy, mark) == []

    # the status subresource: a new spec leaves it until the module writes the new one
    mark = policy.mark()
    smaller = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com")), output="both")
    changed = ok(policy.run(smaller))
    assert changed["policy_status"]["written"] is True
    assert live_status(policy)["message"].startswith("%d objects applied" % sum(
        1 for o in changed["objects"]
        if o["kind"] != "ASMEgressTrafficPolicy" and o["action"] != "deleted"))
    assert len(status_writes(policy, mark)) == 1

    # check mode: no status write, dry run or not
    mark = policy.mark()
    checked = ok(policy.run(policy.params(output="both"), check=True))
    assert checked["policy_status"]["reason"] == "check mode: would be written"
    assert status_writes(policy, mark) == []


def test_output_crd_is_stored(policy):
    ok(policy.run(policy.params(output="crd")))
    assert live_status(policy)["status"] == "Stored"
    assert "output: crd" in kubectl_get(policy)


def test_a_failed_apply_of_the_stored_spec_is_the_status_until_a_run_succeeds(policy):
    ok(policy.run(policy.params(output="both")))
    # someone replaces one of the policy's objects with their own: the unchanged spec now fails
    name = policy.gateway + "-alpha"
    theirs = get_object(policy.api, "ServiceEntry", policy.ns, name)
    delete_object(policy.api, "ServiceEntry", policy.ns, name)
    create_object(policy.api, {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                               "metadata": {"name": name, "namespace": policy.ns},
                               "spec": copy.deepcopy(theirs["spec"])})
    failed = policy.run(policy.params(output="both"))
    assert failed["failed"] is True and "in the way of policy" in failed["msg"]
    status = live_status(policy)
    assert status["status"] == "Failed"
    assert "ServiceEntry %s/%s exists and is not owned by this policy" % (policy.ns, name) \
        in status["message"]
    assert "Failed" in kubectl_get(policy)
    assert failed["policy_status"]["written"] is True

    # a failure before a new spec was stored leaves the status of the stored one
    newer = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com"),
                               entry("gamma", "gamma.example.com")), output="both")
    assert policy.run(newer)["failed"] is True
    assert live_status(policy) == status

    delete_object(policy.api, "ServiceEntry", policy.ns, name)
    ok(policy.run(policy.params(output="both")))
    assert live_status(policy)["status"] == "Warning"


# ---------------------------------------------------------------------------- permissions


def rbac_for(user, suffix, status_grant):
    """The modules' grants of docs/rbac.yaml for ``user``, names suffixed; without the status
    rule unless ``status_grant``."""
    with open(RBAC) as f:
        documents = [d for d in yaml.safe_load_all(f) if d and d["metadata"]["labels"].get(
            "app.kubernetes.io/component") == "egress-policy-module"]
    status_rules = 0
    for doc in documents:
        doc["metadata"]["name"] += "-" + suffix
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            doc["roleRef"]["name"] += "-" + suffix
            doc["subjects"] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                "name": user}]
        for item in doc.get("rules", []):
            if "asmegresstrafficpolicies/status" in item["resources"]:
                status_rules += 1
        if not status_grant and doc.get("rules"):
            doc["rules"] = [r for r in doc["rules"]
                            if "asmegresstrafficpolicies/status" not in r["resources"]]
    assert status_rules == 1, "docs/rbac.yaml grants the status write once"
    return documents


def can(controlplane, user, verb, resource, subresource=None):
    args = ["auth", "can-i", verb, resource, "-n", EGRESS_NAMESPACE, "--as", user]
    args += ["--subresource", subresource] if subresource else []
    out = controlplane.kubectl_run(*args, check=False)
    return out.stdout.strip() == "yes"


def test_a_user_who_may_not_write_the_status_gets_a_warning_and_the_apply_stands(
        policy, controlplane):
    user = "egress-nostatus-" + policy.gateway
    as_user = {"impersonate_user": user}
    documents = rbac_for(user, policy.gateway, status_grant=False)
    controlplane.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    try:
        wait_until("the RBAC grants", lambda: can(controlplane, user, "patch", PLURAL))
        assert not can(controlplane, user, "patch", PLURAL, "status")
        mark = policy.mark()
        result = ok(policy.run(dict(policy.params(output="both"), **as_user)))
        assert result["changed"] is True
        assert policy.live(), "the policy's objects were applied"
        warning = ("the policy was applied, but its status (ASMEgressTrafficPolicy "
                   "%s/%s status.status and status.message) could not be written: permission "
                   "denied: grant patch on asmegresstrafficpolicies/status in %s (docs/rbac.yaml)"
                   % (EGRESS_NAMESPACE, policy.gateway, EGRESS_NAMESPACE))
        assert warning in result["warnings"]
        assert result["policy_status"]["written"] is False
        assert live_status(policy) is None
        # the audit log names the authenticated user (admin, who impersonates the test user)
        denied = status_writes(policy, mark)
        assert [(w.verb, w.code) for w in denied] == [("patch", 403)]

        # every rerun tries again (and warns again) until the grant is there
        again = ok(policy.run(dict(policy.params(output="both"), **as_user)))
        assert again["changed"] is False and warning in again["warnings"]

        documents = rbac_for(user, policy.gateway, status_grant=True)
        controlplane.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(documents))
        wait_until("the status grant",
                   lambda: can(controlplane, user, "patch", PLURAL, "status"))
        mark = policy.mark()
        granted = ok(policy.run(dict(policy.params(output="both"), **as_user)))
        assert granted["changed"] is True  # only the status was written
        assert {o["action"] for o in granted["objects"]} == {"unchanged"}
        assert live_status(policy)["status"] == "Warning"
        assert [(w.verb, w.code) for w in status_writes(policy, mark)] == [
            ("patch", 200)]
        assert not any("could not be written" in w for w in granted["warnings"])
    finally:
        controlplane.kubectl_run("delete", "--ignore-not-found", "-f", "-",
                                 input=yaml.safe_dump_all(documents), check=False)
