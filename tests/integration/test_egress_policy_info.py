# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""servicemesh.egress.egress_policy_info against the real control plane: the live objects of a
policy, the policy reconstructed from its ASMEgressTrafficPolicy, and drift after edits made
behind the module's back (kubectl patch, delete, an extra object)."""

from __future__ import annotations

import copy

import pytest

from helpers_module import (
    EGRESS_NAMESPACE,
    INFO,
    create_object,
    delete_namespace,
    delete_object,
    ensure_namespace,
    entry,
    get_object,
    owned_objects,
    rule,
    run_module,
    unique,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(controlplane, admin_api):
    gateway = unique("egi")
    namespace = unique("src")
    for ns in (EGRESS_NAMESPACE, namespace):
        ensure_namespace(admin_api, ns)
    kubeconfig = controlplane.admin_kubeconfig
    params = {"gateway": gateway, "egress_rules": [rule(
        namespace, entry("alpha", "alpha.example.com"),
        entry("beta", "beta.example.com", 80, "HTTP",
              https_upgrade={"enabled": True, "port": 443}))]}
    yield gateway, namespace, kubeconfig, params
    run_module(kubeconfig, {"gateway": gateway, "state": "absent"})
    delete_namespace(admin_api, namespace)


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def info(kubeconfig, **args):
    return ok(run_module(kubeconfig, args, module=INFO))


def ref(kind, namespace, name):
    return (kind, namespace, name)


def refs(items):
    return {(i["kind"], i["namespace"], i["name"]) for i in items}


def test_policy_is_reconstructed_and_drift_is_reported(setup, admin_api, controlplane):
    gateway, namespace, kubeconfig, params = setup
    applied = ok(run_module(kubeconfig, dict(params, output="both")))

    (report,) = info(kubeconfig, name=gateway)["policies"]
    assert report["name"] == gateway and report["source"] == "resource"
    assert report["in_sync"] is True, report["drift"]
    assert report["drift"] == {"missing": [], "changed": [], "extra": []}
    assert report["output"] == "both" and report["mode"] == "sidecar"
    # the policy comes back in both spellings, as it was given
    assert report["params"]["gateway"] == gateway
    assert report["params"]["egress_rules"][0]["to"][1]["https_upgrade"] == {
        "enabled": True, "port": 443}
    assert report["policy"]["kind"] == "ASMEgressTrafficPolicy"
    assert report["routes"] == applied["routes"]
    assert {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
            for o in report["objects"]} == {(o["kind"], o["namespace"], o["name"])
                                            for o in applied["objects"]}
    assert all("managedFields" not in o["metadata"] for o in report["objects"])

    # by gateway, and among all policies
    assert [p["name"] for p in info(kubeconfig, gateway=gateway)["policies"]] == [gateway]
    assert gateway in [p["name"] for p in info(kubeconfig)["policies"]]

    # behind the module's back: an edit, a deletion, an extra object with our labels
    alpha = gateway + "-alpha"
    controlplane.kubectl_run("-n", namespace, "patch", "serviceentries.networking.istio.io",
                             alpha, "--type=merge", "-p", '{"spec": {"resolution": "NONE"}}')
    delete_object(admin_api, "VirtualService", namespace, gateway + "-beta")
    extra = copy.deepcopy(get_object(admin_api, "ServiceEntry", namespace, alpha))
    extra["metadata"] = {"name": gateway + "-stray", "namespace": namespace,
                         "labels": extra["metadata"]["labels"]}
    create_object(admin_api, extra)

    (report,) = info(kubeconfig, name=gateway)["policies"]
    assert report["in_sync"] is False
    drift = report["drift"]
    (changed,) = drift["changed"]
    assert (changed["kind"], changed["namespace"], changed["name"]) == ref(
        "ServiceEntry", namespace, alpha)
    assert "spec.resolution" in changed["reason"]
    assert changed["by"] == ["kubectl-patch"]
    assert refs(drift["missing"]) == {ref("VirtualService", namespace, gateway + "-beta")}
    assert refs(drift["extra"]) == {ref("ServiceEntry", namespace, gateway + "-stray")}

    # the module repairs all of it
    repaired = ok(run_module(kubeconfig, dict(params, output="both")))
    actions = {(o["kind"], o["namespace"], o["name"]): o["action"] for o in repaired["objects"]}
    assert actions[ref("ServiceEntry", namespace, alpha)] == "updated"
    assert actions[ref("VirtualService", namespace, gateway + "-beta")] == "created"
    assert actions[ref("ServiceEntry", namespace, gateway + "-stray")] == "deleted"
    (report,) = info(kubeconfig, name=gateway)["policies"]
    assert report["in_sync"] is True, report["drift"]


def test_edited_policy_resource_is_drift_too(setup, controlplane):
    gateway, namespace, kubeconfig, params = setup
    ok(run_module(kubeconfig, dict(params, output="both")))
    # someone changes the source of truth itself: the objects no longer match its expansion
    patch = ('[{"op": "replace", "path": "/spec/egressRules/0/to/0/hosts/0", '
             '"value": "alpha-edited.example.com"}]')
    controlplane.kubectl_run("-n", EGRESS_NAMESPACE, "patch", "asmegresstrafficpolicies",
                             gateway, "--type=json", "-p", patch)
    (report,) = info(kubeconfig, name=gateway)["policies"]
    assert report["in_sync"] is False
    assert report["params"]["egress_rules"][0]["to"][0]["hosts"] == ["alpha-edited.example.com"]
    changed = refs(report["drift"]["changed"])
    assert ("ASMEgressTrafficPolicy", EGRESS_NAMESPACE, gateway) in changed
    assert ("ServiceEntry", namespace, gateway + "-alpha") in changed


def test_without_the_resource_edits_are_found_by_field_owner(setup, admin_api, controlplane):
    gateway, namespace, kubeconfig, params = setup
    ok(run_module(kubeconfig, dict(params, output="expanded")))
    (report,) = info(kubeconfig, name=gateway)["policies"]
    assert report["source"] == "objects" and report["policy"] is None
    # without the stored policy a deleted object cannot be told: not "in sync", but unknown
    assert report["in_sync"] is None and "no stored policy resource" in report["note"]
    assert report["drift"]["missing"] is None and report["drift"]["extra"] is None
    assert len(report["objects"]) == len(owned_objects(admin_api, gateway))

    controlplane.kubectl_run("-n", EGRESS_NAMESPACE, "patch", "gateways.networking.istio.io",
                             gateway, "--type=merge", "-p",
                             '{"spec": {"selector": {"istio": "other"}}}')
    (report,) = info(kubeconfig, name=gateway)["policies"]
    assert report["in_sync"] is False
    (changed,) = report["drift"]["changed"]
    assert (changed["kind"], changed["name"]) == ("Gateway", gateway)
    assert "spec.selector" in changed["reason"] and changed["by"] == ["kubectl-patch"]


def test_unknown_policy_and_restricted_reads(setup, controlplane):
    kubeconfig = setup[2]
    assert info(kubeconfig, name=unique("nothing"))["policies"] == []
    denied = run_module(controlplane.restricted_kubeconfig, {"name": "x"}, module=INFO)
    assert denied["failed"] is True
    assert "permission denied (HTTP 403 Forbidden): cannot list" in denied["msg"]
