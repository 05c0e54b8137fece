# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""servicemesh.egress.egress_policy against the real control plane, run as users run it.

Every run is ``ansible localhost -m servicemesh.egress.egress_policy`` (or ``ansible-playbook
playbooks/egress.yml``) in a subprocess with K8S_AUTH_KUBECONFIG; the API server's audit log
counts the writes. Each test uses its own gateway name and source namespaces, so tests (and other
sessions on the same control plane) never see each other's objects.
"""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from helpers_module import (
    EGRESS_NAMESPACE,
    POLICY,
    REPO,
    Policy,
    create_object,
    delete_object,
    entry,
    get_object,
    keys,
    ok,
    policy_params,
    rule,
    run_playbook,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration

RBAC = os.path.join(REPO, "docs", "rbac.yaml")


@pytest.fixture
def policy(controlplane, admin_api):
    p = Policy(controlplane, admin_api)
    yield p
    p.cleanup()


# ---------------------------------------------------------------------------- life cycle


def test_create_rerun_change_prune_absent(policy):
    mark = policy.mark()
    created = ok(policy.run(policy.params()))
    assert created["changed"] is True
    assert {o["action"] for o in created["objects"]} == {"created"}
    live = policy.live()
    assert set(live) == keys(created)
    kinds = {k[0] for k in live}
    assert kinds == {"ServiceEntry", "DestinationRule", "Gateway", "VirtualService",
                     "AuthorizationPolicy"}
    for obj in live.values():
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert managers == {"servicemesh.egress"}
    assert created["routes"] and any("alpha.example.com" in r for r in created["routes"])
    assert {p["port"] for p in created["gateway_ports"]} >= {15021}
    writes = policy.writes(mark)
    assert len(writes) == len(live)
    assert {w.verb for w in writes} == {"patch"}
    # the applies ran kind by kind in the expansion's order
    order = [w.resource for w in writes]
    first = {r: order.index(r) for r in set(order)}
    assert first["serviceentries"] < first["destinationrules"] < first["gateways"] < \
        first["virtualservices"] < first["authorizationpolicies"]

    mark = policy.mark()
    again = ok(policy.run(policy.params()))
    assert again["changed"] is False
    assert {o["action"] for o in again["objects"]} == {"unchanged"}
    assert policy.writes(mark, dry_run=None) == []
    assert set(again["api_requests"]) <= {"get", "list"}

    # change one entry's host: only the objects that carry it are written
    mark = policy.mark()
    changed = ok(policy.run(policy.params(rule(
        policy.ns, entry("alpha", "alpha2.example.com"),
        entry("beta", "beta.example.com", 80, "HTTP")))))
    assert changed["changed"] is True
    updated = keys(changed, "updated")
    assert updated and not keys(changed, "created") and not keys(changed, "deleted")
    assert all("beta" not in key[2] for key in updated)
    written = {(w.namespace, w.name) for w in policy.writes(mark)}
    assert written == {key[1:] for key in updated}
    assert get_object(policy.api, "ServiceEntry", policy.ns,
                      policy.gateway + "-alpha")["spec"]["hosts"] == ["alpha2.example.com"]

    # remove an entry: its objects are pruned, the others stay
    mark = policy.mark()
    pruned = ok(policy.run(policy.params(rule(policy.ns, entry("alpha", "alpha2.example.com")))))
    deleted = keys(pruned, "deleted")
    assert deleted and all("beta" in key[2] for key in deleted
                           if key[0] in ("ServiceEntry", "VirtualService"))
    assert not deleted & set(policy.live())
    deletes = [w for w in policy.writes(mark) if w.verb == "delete"]
    assert {(w.namespace, w.name) for w in deletes} == {key[1:] for key in deleted}

    # absent deletes everything, then changes nothing
    mark = policy.mark()
    gone = ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert gone["changed"] is True and {o["action"] for o in gone["objects"]} == {"deleted"}
    assert policy.live() == {}
    order = [w.resource for w in policy.writes(mark)]
    assert order.index("authorizationpolicies") < order.index("serviceentries")
    mark = policy.mark()
    again = ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert again["changed"] is False and again["objects"] == []
    assert policy.writes(mark, dry_run=None) == []


def test_out_of_band_edit_is_repaired_and_foreign_fields_are_left(policy, controlplane):
    ok(policy.run(policy.params()))
    name = policy.gateway + "-alpha"
    controlplane.kubectl_run("-n", policy.ns, "patch", "serviceentries.networking.istio.io",
                             name, "--type=merge", "-p",
                             '{"spec": {"hosts": ["evil.example.com"]}}')
    controlplane.kubectl_run("-n", policy.ns, "label", "serviceentries.networking.istio.io",
                             name, "team=someone")
    mark = policy.mark()
    repaired = ok(policy.run(policy.params()))
    assert keys(repaired, "updated") == {("ServiceEntry", policy.ns, name)}
    assert len(policy.writes(mark)) == 1
    live = get_object(policy.api, "ServiceEntry", policy.ns, name)
    assert live["spec"]["hosts"] == ["alpha.example.com"]
    assert live["metadata"]["labels"]["team"] == "someone"  # not ours: left alone
    mark = policy.mark()
    assert ok(policy.run(policy.params()))["changed"] is False
    assert policy.writes(mark, dry_run=None) == []


# ---------------------------------------------------------------------------- check and diff


def test_check_mode_writes_nothing(policy):
    mark = policy.mark()
    planned = ok(policy.run(policy.params(), check=True))
    assert planned["changed"] is True
    assert {o["action"] for o in planned["objects"]} == {"created"}
    assert policy.live() == {}
    assert policy.writes(mark) == []
    assert all(w.dry_run for w in policy.writes(mark, dry_run=None))

    created = ok(policy.run(policy.params()))
    before = {k: o["metadata"]["resourceVersion"] for k, o in policy.live().items()}

    mark = policy.mark()
    update = policy.params(rule(policy.ns, entry("alpha", "alpha3.example.com")))
    planned = ok(policy.run(update, check=True))
    assert keys(planned, "updated") and keys(planned, "deleted")
    assert policy.writes(mark) == []
    assert {k: o["metadata"]["resourceVersion"] for k, o in policy.live().items()} == before

    mark = policy.mark()
    planned = ok(policy.run({"gateway": policy.gateway, "state": "absent"}, check=True))
    assert planned["changed"] is True and keys(planned, "deleted") == keys(created)
    assert policy.writes(mark) == []
    assert set(policy.live()) == keys(created)


def test_diff_shows_before_and_after(policy):
    created = ok(policy.run(policy.params(), diff=True))
    diffs = created["diff"]
    assert len(diffs) == len(created["objects"])
    assert all(d["before"] == {} for d in diffs)
    after = dict((d["after_header"], d["after"]) for d in diffs)
    header = "networking.istio.io/v1 ServiceEntry %s/%s-alpha" % (policy.ns, policy.gateway)
    assert after[header]["spec"]["hosts"] == ["alpha.example.com"]
    assert "managedFields" not in after[header]["metadata"]

    updated = ok(policy.run(policy.params(rule(
        policy.ns, entry("alpha", "alpha4.example.com"),
        entry("beta", "beta.example.com", 80, "HTTP"))), diff=True, check=True))
    diffs = dict((d["before_header"], d) for d in updated["diff"])
    assert len(diffs) == len(keys(updated, "updated"))
    assert diffs[header]["before"]["spec"]["hosts"] == ["alpha.example.com"]
    assert diffs[header]["after"]["spec"]["hosts"] == ["alpha4.example.com"]

    removed = ok(policy.run({"gateway": policy.gateway, "state": "absent"}, diff=True))
    assert all(d["after"] == {} and d["before"]["metadata"]["name"] for d in removed["diff"])
    assert len(removed["diff"]) == len(created["objects"])


# ---------------------------------------------------------------------------- conflicts


def test_conflict_with_an_unowned_object_then_force(policy):
    name = policy.gateway + "-alpha"
    create_object(policy.api, {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": policy.ns, "labels": {"team": "web"}},
        "spec": {"hosts": ["mine.example.com"], "resolution": "DNS",
                 "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}})
    mark = policy.mark()
    failed = policy.run(policy.params())
    assert failed["failed"] is True and failed["_rc"] != 0
    assert "ServiceEntry %s/%s exists and is not owned by this policy" % (policy.ns, name) \
        in failed["msg"]
    assert "force" in failed["msg"]
    assert failed["errors"] and policy.writes(mark, dry_run=None) == []
    assert get_object(policy.api, "ServiceEntry", policy.ns, name)["spec"]["hosts"] == [
        "mine.example.com"]

    planned = ok(policy.run(policy.params(force=True), check=True, diff=True))
    assert ("ServiceEntry", policy.ns, name) in keys(planned, "updated")
    assert get_object(policy.api, "ServiceEntry", policy.ns, name)["spec"]["hosts"] == [
        "mine.example.com"]
    forced = ok(policy.run(policy.params(force=True)))
    assert ("ServiceEntry", policy.ns, name) in keys(forced, "updated")
    live = get_object(policy.api, "ServiceEntry", policy.ns, name)
    # replaced, not merged: none of the previous owner's fields (or port entries) survive
    assert live["spec"]["hosts"] == ["alpha.example.com"]
    assert [p["number"] for p in live["spec"]["ports"]] == [443]
    assert "team" not in live["metadata"]["labels"]
    assert live["metadata"]["labels"][POLICY] == policy.gateway
    mark = policy.mark()
    assert ok(policy.run(policy.params()))["changed"] is False
    assert policy.writes(mark, dry_run=None) == []


def test_objects_of_another_policy_are_conflicts_and_never_pruned(policy):
    other = {"app.kubernetes.io/managed-by": "servicemesh.egress", POLICY: "someone-else"}
    name = policy.gateway + "-alpha"
    stray = policy.gateway + "-stray"
    for object_name in (name, stray):
        create_object(policy.api, {
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": object_name, "namespace": policy.ns, "labels": other},
            "spec": {"hosts": ["x.example.com"]}})
    failed = policy.run(policy.params())
    assert failed["failed"] is True
    assert "VirtualService %s/%s" % (policy.ns, name) in failed["msg"]
    assert "label %s=someone-else" % POLICY in failed["msg"]
    delete_object(policy.api, "VirtualService", policy.ns, name)
    ok(policy.run(policy.params()))
    ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert policy.live() == {}
    # same managed-by label, another policy: neither pruned nor deleted
    assert get_object(policy.api, "VirtualService", policy.ns, stray) is not None
    delete_object(policy.api, "VirtualService", policy.ns, stray)


def test_namespace_wide_sidecar_we_do_not_own(policy):
    create_object(policy.api, {
        "apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": policy.ns},
        "spec": {"egress": [{"hosts": ["./*", "istio-system/*"]}]}})
    params = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com"),
                                selector={"app": "sleep"}))
    mark = policy.mark()
    failed = policy.run(params)
    assert failed["failed"] is True
    assert "Sidecar %s/default" % policy.ns in failed["msg"]
    assert "namespace-wide" in failed["msg"]
    assert policy.writes(mark, dry_run=None) == []
    forced = ok(policy.run(dict(params, force=True)))
    assert any("Sidecar %s/default" % policy.ns in w for w in forced.get("warnings", []))
    assert ("Sidecar", policy.ns, policy.gateway + "-default") in keys(forced, "created")


# ---------------------------------------------------------------------------- outputs


def test_output_crd_and_both(policy):
    policy_name = policy.gateway
    crd = ok(policy.run(policy.params(output="crd")))
    assert keys(crd) == {("ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy_name)}
    resource = get_object(policy.api, "ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy_name)
    assert resource["spec"]["byEgressGateway"]["name"] == policy.gateway
    assert [t["name"] for r in resource["spec"]["egressRules"] for t in r["to"]] == [
        "alpha", "beta"]
    assert resource["metadata"]["labels"][POLICY] == policy_name
    assert set(policy.live()) == keys(crd)
    assert crd["routes"]

    both = ok(policy.run(policy.params(output="both")))
    live = policy.live()
    assert ("ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy_name) in live
    assert len(live) > 1 and set(live) == keys(both)
    mark = policy.mark()
    assert ok(policy.run(policy.params(output="both")))["changed"] is False
    assert policy.writes(mark, dry_run=None) == []

    expanded = ok(policy.run(policy.params()))
    assert keys(expanded, "deleted") == {("ASMEgressTrafficPolicy", EGRESS_NAMESPACE,
                                          policy_name)}
    ok(policy.run(policy.params(output="both")))
    ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert policy.live() == {}


def test_output_auto_stores_the_policy_where_its_crd_is_served(policy):
    """The default output (auto): this API server serves the ASMEgressTrafficPolicy CRD
    (scripts/controlplane installs it), so the policy is stored beside its expansion."""
    params = policy.params()
    del params["output"]
    auto = ok(policy.run(params))
    stored = ("ASMEgressTrafficPolicy", EGRESS_NAMESPACE, policy.gateway)
    assert stored in keys(auto, "created")
    assert {k[0] for k in keys(auto)} > {"ASMEgressTrafficPolicy", "ServiceEntry"}
    assert set(policy.live()) == keys(auto)
    mark = policy.mark()
    assert ok(policy.run(params))["changed"] is False
    assert policy.writes(mark, dry_run=None) == []
    gone = ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert stored in keys(gone, "deleted") and policy.live() == {}


def test_ambient_mode_applies_a_waypoint_and_converges(policy, admin_api):
    params = policy.params(mode="ambient")
    created = ok(policy.run(params))
    kinds = {(o["api_version"], o["kind"]) for o in created["objects"]}
    assert ("gateway.networking.k8s.io/v1", "Gateway") in kinds
    assert ("networking.istio.io/v1", "ServiceEntry") in kinds
    assert all(o["namespace"] == EGRESS_NAMESPACE for o in created["objects"])
    assert any("waypoint" in line for line in created["routes"])
    from kubernetes import client

    waypoint = client.CustomObjectsApi(admin_api).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", EGRESS_NAMESPACE, "gateways",
        [o["name"] for o in created["objects"] if o["kind"] == "Gateway"][0])
    assert waypoint["metadata"]["labels"][POLICY] == policy.gateway
    mark = policy.mark()
    assert ok(policy.run(params))["changed"] is False
    assert policy.writes(mark, dry_run=None) == []
    # back to sidecar mode: the waypoint and the ambient objects are pruned
    sidecar = ok(policy.run(policy.params()))
    assert ("Gateway", EGRESS_NAMESPACE, [o["name"] for o in created["objects"]
                                          if o["kind"] == "Gateway"][0]) in keys(
        sidecar, "deleted")
    gone = ok(policy.run({"gateway": policy.gateway, "state": "absent"}))
    assert gone["changed"] is True


def test_policy_from_src_and_definition(policy, tmp_path):
    resource = {
        "apiVersion": "istio.alibabacloud.com/v1beta1", "kind": "ASMEgressTrafficPolicy",
        "metadata": {"name": policy.gateway, "namespace": EGRESS_NAMESPACE},
        "spec": {"byEgressGateway": {"name": policy.gateway}, "egressRules": [
            {"from": [{"namespace": policy.ns}],
             "to": [{"name": "alpha", "hosts": ["alpha.example.com"],
                     "port": {"name": "https", "number": 443, "protocol": "HTTPS"}}]}]}}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(resource))
    from_file = ok(policy.run({"src": str(path)}))
    assert from_file["changed"] is True and from_file["policy"] == policy.gateway
    from_definition = ok(policy.run({"definition": resource}))
    assert from_definition["changed"] is False
    params = policy.params(rule(policy.ns, entry("alpha", "alpha.example.com")), output="auto")
    assert ok(policy.run(params))["changed"] is False  # the same policy in module spelling


# ---------------------------------------------------------------------------- failures


def test_bad_input_fails_with_every_error_and_no_request(policy, tmp_path):
    bad = policy.params(rule("Not_A_Namespace", entry("alpha", "alpha.example.com", 0),
                             entry("alpha", "", 80, "SMTP")))
    # A kubeconfig that points nowhere: any request would fail differently.
    nowhere = tmp_path / "nowhere.kubeconfig"
    nowhere.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "users": [{"name": "x", "user": {"token": "t"}}]}))
    mark = policy.mark()
    for kubeconfig in (str(nowhere), policy.kubeconfig):
        failed = policy.run(bad, kubeconfig=kubeconfig)
        assert failed["failed"] is True
        errors = failed["errors"]
        assert len(errors) >= 4, errors
        assert any(e.startswith("egress_rules[0].from[0].namespace:") for e in errors)
        assert any(e.startswith("egress_rules[0].to[0].port.number:") for e in errors)
        assert any(e.startswith("egress_rules[0].to[1].port.protocol:") for e in errors)
        assert any(e.startswith("egress_rules[0].to[1].hosts[0]:") for e in errors)
        assert "Traceback" not in failed["msg"] and "Traceback" not in failed["_stderr"]
        assert "api_requests" not in failed
    assert policy.writes(mark, dry_run=None) == []
    # wrong types and unknown options are caught by the argument spec, without a traceback
    failed = policy.run({"gateway": policy.gateway, "egress_rules": "nope"})
    assert failed["failed"] is True and "Traceback" not in failed["msg"]
    failed = policy.run({"gateway": policy.gateway, "src": "/x.yaml"})
    assert "mutually exclusive" in failed["msg"]


def test_missing_namespace_fails_before_any_write(policy):
    missing = unique("nosuchns")
    mark = policy.mark()
    failed = policy.run(policy.params(rule(policy.ns, entry("alpha", "alpha.example.com")),
                                      rule(missing, entry("beta", "beta.example.com"))))
    assert failed["failed"] is True
    assert "namespace %s does not exist" % missing in failed["msg"]
    assert policy.writes(mark, dry_run=None) == []
    assert policy.live() == {}


def test_playbook_applies_prints_routes_checks_and_deletes(policy, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy_params(policy.params())))
    playbook = os.path.join(REPO, "playbooks", "egress.yml")
    mark = policy.mark()
    rc, tasks = run_playbook(policy.kubeconfig, playbook,
                             {"egress_policy_file": str(path)}, check=True)
    assert rc == 0, tasks
    assert policy.writes(mark) == [] and policy.live() == {}
    rc, tasks = run_playbook(policy.kubeconfig, playbook, {"egress_policy_file": str(path),
                                                           "egress_mode": "sidecar"})
    assert rc == 0, tasks
    results = dict(tasks)
    applied = [r for n, r in tasks if n.startswith("Apply the policy")][0]
    assert applied["changed"] is True
    routes = results["Show the route table"]["msg"]
    assert any("alpha.example.com" in line and policy.gateway in line for line in routes)
    assert set(policy.live()) == keys(applied)
    rc, tasks = run_playbook(policy.kubeconfig, playbook, {"egress_policy_file": str(path),
                                                           "egress_state": "absent"})
    assert rc == 0, tasks
    assert policy.live() == {}


# ---------------------------------------------------------------------------- RBAC


def _rbac_documents():
    """The modules' grants in docs/rbac.yaml (the role's are tested in test_least_privilege)."""
    with open(RBAC) as f:
        return [d for d in yaml.safe_load_all(f) if d and d["metadata"]["labels"].get(
            "app.kubernetes.io/component") == "egress-policy-module"]


def _apply_rbac(controlplane, documents):
    controlplane.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(documents))


def _delete_rbac(controlplane, documents):
    controlplane.kubectl_run("delete", "--ignore-not-found", "-f", "-",
                             input=yaml.safe_dump_all(documents), check=False)


def _can(controlplane, kubeconfig, verb, resource, namespace=None, as_user=None):
    args = ["auth", "can-i", verb, resource]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if as_user:
        args += ["--as", as_user]
    out = controlplane.kubectl_run(*args, kubeconfig=kubeconfig, check=False)
    return out.stdout.strip() == "yes"


def test_restricted_user_with_the_shipped_rbac(policy, controlplane):
    documents = _rbac_documents()
    restricted = controlplane.restricted_kubeconfig
    denied = policy.run(policy.params(), kubeconfig=restricted)
    assert denied["failed"] is True
    assert "permission denied (HTTP 403 Forbidden): cannot list" in denied["msg"]
    _apply_rbac(controlplane, documents)
    try:
        wait_until("the RBAC grants", lambda: _can(
            controlplane, restricted, "patch", "sidecars.networking.istio.io", policy.ns))
        created = ok(policy.run(policy.params(output="both"), kubeconfig=restricted))
        assert created["changed"] is True
        mark = policy.mark()
        again = ok(policy.run(policy.params(output="both"), kubeconfig=restricted))
        assert again["changed"] is False and policy.writes(mark, dry_run=None) == []
        assert ok(policy.run(policy.params(rule(policy.ns, entry("alpha", "a.example.com"))),
                             kubeconfig=restricted, check=True))["changed"] is True
        users = {w.user for w in policy.writes(mark, dry_run=True)}
        assert users == {controlplane.restricted_user}
        # the grants let the module check a tls.credentialName Secret (metadata only)
        mutual = entry("partner", "api.partner.example", 80, "HTTP",
                       https_upgrade={"enabled": True, "port": 443},
                       tls={"mode": "MUTUAL", "credential_name": "no-such-secret"})
        refused = policy.run(policy.params(rule(policy.ns, mutual)), kubeconfig=restricted,
                             check=True)
        assert refused["failed"] is True
        assert "Secret istio-egress/no-such-secret does not exist" in refused["msg"]
        info = ok(policy.run({"name": policy.gateway}, module="servicemesh.egress.egress_policy_info",
                             kubeconfig=restricted))
        assert info["policies"][0]["in_sync"] is True
        gone = ok(policy.run({"gateway": policy.gateway, "state": "absent"},
                             kubeconfig=restricted))
        assert gone["changed"] is True and policy.live() == {}
    finally:
        _delete_rbac(controlplane, documents)


def test_a_missing_verb_is_a_clear_error_and_a_rerun_converges(policy, controlplane, tmp_path):
    """The writer role without ``patch`` on VirtualServices, bound to a user impersonated by the
    admin (the module's impersonate_user option): the run stops at the first VirtualService,
    names the verb, the resource and the namespace, and reports what was written."""
    documents = copy.deepcopy(_rbac_documents())
    suffix = policy.gateway
    user = "egress-test-" + suffix
    for doc in documents:
        doc["metadata"]["name"] += "-" + suffix
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += "-" + suffix
            doc["subjects"] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                "name": user}]
        if doc["kind"] == "ClusterRole" and "writer" in doc["metadata"]["name"]:
            for item in doc["rules"]:
                if "virtualservices" in item["resources"]:
                    item["resources"] = [r for r in item["resources"] if r != "virtualservices"]
            doc["rules"].append({"apiGroups": ["networking.istio.io"],
                                 "resources": ["virtualservices"],
                                 "verbs": ["create", "delete"]})
    _apply_rbac(controlplane, documents)
    as_user = {"impersonate_user": user}
    try:
        wait_until("the RBAC grants", lambda: _can(
            controlplane, None, "list", "serviceentries.networking.istio.io", as_user=user)
            and _can(controlplane, None, "create", "virtualservices.networking.istio.io",
                     policy.ns, as_user=user))
        failed = policy.run(dict(policy.params(), **as_user))
        assert failed["failed"] is True
        assert "permission denied (HTTP 403 Forbidden): cannot patch " \
               "virtualservices.networking.istio.io in namespace" in failed["msg"]
        assert "rerun converges" in failed["msg"]
        applied = failed["applied"]
        assert applied and all(a.split()[0] in ("ServiceEntry", "DestinationRule", "Gateway")
                               for a in applied)
        not_applied = {(o["kind"], o["namespace"], o["name"]) for o in failed["not_applied"]}
        assert {key[0] for key in not_applied} >= {"VirtualService", "AuthorizationPolicy"}
        live = policy.live()
        assert {key[0] for key in live} == {"ServiceEntry", "DestinationRule", "Gateway"}
        # the admin reruns: only what was not written is written now
        mark = policy.mark()
        rerun = ok(policy.run(policy.params()))
        assert keys(rerun, "created") == not_applied
        assert len(policy.writes(mark)) == len(not_applied)
    finally:
        _delete_rbac(controlplane, documents)
