"""egress_apply.py (apply and delete a policy) against an in-memory API server (fake_cluster.py)."""
import json

import pytest

from fake_cluster import KINDS, FakeCluster, Response, apply, client_for, entry, policy, rule

from ansible_collections.servicemesh.egress.plugins.module_utils import egress_apply
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube import compare


def actions(result):
    return sorted((o["action"], o["kind"], o["namespace"], o["name"]) for o in result["objects"])


def test_create_then_rerun_writes_nothing(cluster):
    first = apply(cluster, policy())
    assert first["changed"]
    assert {o["action"] for o in first["objects"]} == {"created"}
    assert len(cluster.store) == len(first["objects"])
    assert first["routes"] and first["gateway_ports"]
    mark = len(cluster.requests)
    second = apply(cluster, policy())
    assert not second["changed"]
    assert {o["action"] for o in second["objects"]} == {"unchanged"}
    new = cluster.requests[mark:]
    assert [r for r in new if r[0] != "GET"] == []
    # discovery + one list per generated kind + the gateway Service; no per-object reads
    assert len(new) == 2 + len(cluster.kinds)


def test_applies_run_in_kind_order(cluster):
    apply(cluster, policy())
    writes = cluster.writes()
    # the stored policy's status last, once everything is applied
    assert writes[-1][1].endswith("/asmegresstrafficpolicies/egw/status")
    kinds = [cluster.kinds[r[1].split("/")[-2]][2] for r in writes[:-1]]
    # output auto: the policy resource first (it is deleted last), then the Istio objects
    order = ["ASMEgressTrafficPolicy", "ServiceEntry", "DestinationRule", "Gateway",
             "VirtualService", "AuthorizationPolicy"]
    assert sorted(kinds, key=order.index) == kinds


def test_changing_one_entry_writes_only_its_objects(cluster):
    apply(cluster, policy())
    mark = len(cluster.requests)
    changed = policy(rule("mytest", entry("a", "a.example.com"), entry("b", "b2.example.com")))
    result = apply(cluster, changed)
    written = sorted(r[1].split("/", 5)[-1] for r in cluster.requests[mark:] if r[0] == "PATCH")
    updated = sorted((o["kind"], o["namespace"], o["name"]) for o in result["objects"]
                     if o["action"] != "unchanged")
    # entry b's hosts live in the stored policy (output auto), its client ServiceEntry and
    # VirtualService and its upstream ServiceEntry; nothing of entry a (nor the shared Gateway or
    # policies) is written
    assert updated == [("ASMEgressTrafficPolicy", "istio-egress", "egw"),
                       ("ServiceEntry", "istio-egress", "egw-b-upstream"),
                       ("ServiceEntry", "mytest", "egw-b"),
                       ("VirtualService", "mytest", "egw-b")]
    assert {o["action"] for o in result["objects"] if o["action"] != "unchanged"} == {"updated"}
    assert written == ["istio-egress/asmegresstrafficpolicies/egw",
                       "istio-egress/serviceentries/egw-b-upstream",
                       "mytest/serviceentries/egw-b", "mytest/virtualservices/egw-b"]


def test_removed_entry_is_pruned_in_reverse_order(cluster):
    apply(cluster, policy())
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com"))))
    deleted = [o for o in result["objects"] if o["action"] == "deleted"]
    assert deleted and all("-b" in o["name"] for o in deleted)
    assert not [k for k in cluster.store if "-b" in k[2]]
    deletes = [cluster.kinds[r[1].split("/")[-2]][2] for r in cluster.writes()
               if r[0] == "DELETE"]
    assert deletes.index("VirtualService") < deletes.index("ServiceEntry")


def test_only_objects_with_both_labels_of_this_policy_are_pruned(cluster):
    apply(cluster, policy())
    foreign = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
               "metadata": {"name": "keep-me", "namespace": "mytest",
                            "labels": {"app.kubernetes.io/managed-by": "servicemesh.egress",
                                       "egress.servicemesh.io/policy": "other"}},
               "spec": {"hosts": ["x.example.com"]}}
    cluster.put(foreign, "serviceentries")
    egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster))
    assert cluster.names() == ["serviceentries mytest/keep-me"]


def test_absent_is_idempotent(cluster):
    apply(cluster, policy())
    first = egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster))
    assert first["changed"] and cluster.store == {}
    mark = len(cluster.requests)
    second = egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster))
    assert not second["changed"] and second["objects"] == []
    assert [r for r in cluster.requests[mark:] if r[0] != "GET"] == []


def test_check_mode_sends_only_dry_runs(cluster):
    result = apply(cluster, policy(), check_mode=True)
    assert result["changed"] and cluster.store == {}
    assert cluster.writes(dry_run=False) == []
    assert cluster.writes(dry_run=True)
    apply(cluster, policy())
    egress_apply.delete_policy({"gateway": "egw"}, client_for(cluster), check_mode=True)
    assert len(cluster.store) == len(result["objects"])


def test_diff_has_before_and_after_for_creates_updates_and_deletes(cluster):
    result = apply(cluster, policy(), diff=True)
    assert len(result["diff"]) == len(result["objects"])
    assert all(d["before"] == {} and d["after"]["metadata"]["name"] for d in result["diff"])
    assert all("managedFields" not in d["after"]["metadata"] for d in result["diff"])
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com"),
                                        entry("b", "b2.example.com"))), diff=True)
    updates = [d for d in result["diff"] if d["before"] and d["after"]]
    assert updates and all(d["before"] != d["after"] for d in updates)
    result = apply(cluster, policy(rule("mytest", entry("a", "a.example.com"))), diff=True)
    assert any(d["after"] == {} and d["before"] for d in result["diff"])


def test_conflict_names_the_object_and_writes_nothing(cluster):
    theirs = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
              "metadata": {"name": "egw-a", "namespace": "mytest", "resourceVersion": "1",
                           "labels": {"team": "web"}},
              "spec": {"hosts": ["mine.example.com"], "extra": "theirs"}}
    cluster.put(theirs, "serviceentries")
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    assert "ServiceEntry mytest/egw-a exists and is not owned by this policy" in exc.value.msg
    assert cluster.writes() == []
    result = apply(cluster, dict(policy(), force=True))
    took = [o for o in result["objects"] if o["name"] == "egw-a" and o["kind"] == "ServiceEntry"]
    assert took[0]["action"] == "updated"
    live = cluster.store[("serviceentries", "mytest", "egw-a")]
    assert live["metadata"]["labels"]["egress.servicemesh.io/policy"] == "egw"
    assert "team" not in live["metadata"]["labels"] and "extra" not in live["spec"]
    methods = [r[0] for r in cluster.writes() if r[1].endswith("/serviceentries/egw-a")]
    assert methods == ["PUT", "PATCH"]  # replaced, then applied
    assert apply(cluster, policy())["changed"] is False


def test_namespace_wide_sidecar_of_someone_else_is_a_conflict(cluster):
    theirs = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
              "metadata": {"name": "default", "namespace": "mytest"},
              "spec": {"egress": [{"hosts": ["./*"]}]}}
    cluster.put(theirs, "sidecars")
    params = policy(rule("mytest", entry("a", "a.example.com"), selector={"app": "sleep"}))
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, params)
    assert any("Sidecar mytest/default" in e and "namespace-wide" in e for e in exc.value.errors)
    assert cluster.writes() == []
    result = apply(cluster, dict(params, force=True))
    assert any("Sidecar mytest/default" in w for w in result["warnings"])


def test_missing_crd_and_namespace_fail_before_any_write():
    cluster = FakeCluster(kinds={k: v for k, v in KINDS.items() if k != "authorizationpolicies"})
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    assert "security.istio.io/v1 AuthorizationPolicy" in exc.value.msg
    assert "authorizationpolicies.security.istio.io" in exc.value.msg
    cluster = FakeCluster(namespaces=("istio-egress",))
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    assert exc.value.errors == ["namespace mytest does not exist: create it first (the module "
                                "never creates namespaces)"]
    assert cluster.writes() == []


def test_output_crd_needs_the_policy_crd_and_prunes_istio_objects(cluster):
    apply(cluster, dict(policy(), output="expanded"))
    result = apply(cluster, dict(policy(), output="crd"))
    created = [o for o in result["objects"] if o["action"] == "created"]
    assert [(o["kind"], o["namespace"], o["name"]) for o in created] == [
        ("ASMEgressTrafficPolicy", "istio-egress", "egw")]
    assert cluster.names() == ["asmegresstrafficpolicies istio-egress/egw"]
    cr = cluster.store[("asmegresstrafficpolicies", "istio-egress", "egw")]
    assert cr["metadata"]["labels"]["egress.servicemesh.io/policy"] == "egw"
    assert cr["spec"]["byEgressGateway"] == {"name": "egw"}
    both = apply(cluster, dict(policy(), output="both"))
    # the resource records the output it was applied with, so it changes too
    assert [o["kind"] for o in both["objects"] if o["action"] != "created"] == [
        "ASMEgressTrafficPolicy"]
    # output auto is both where the CRD is served, and no write when both was applied
    auto = apply(cluster, policy())
    assert auto["output"] == "both" and auto["changed"] is False
    # output expanded deletes the stored resource, and says so
    expanded = apply(cluster, dict(policy(), output="expanded"))
    assert [o["kind"] for o in expanded["objects"] if o["action"] == "deleted"] == [
        "ASMEgressTrafficPolicy"]
    assert ("output: expanded deletes the ASMEgressTrafficPolicy istio-egress/egw that an "
            "earlier run stored: the cluster then keeps no source of truth and "
            "egress_policy_info can no longer report missing objects; use output: auto (the "
            "default) or both to keep it") in expanded["warnings"]
    no_crd = FakeCluster(kinds={k: v for k, v in KINDS.items()
                                if k != "asmegresstrafficpolicies"})
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(no_crd, dict(policy(), output="crd"))
    assert "ASMEgressTrafficPolicy" in exc.value.msg and "output: expanded" in exc.value.msg
    assert apply(no_crd, policy())["output"] == "expanded"
    assert egress_apply.effective_output(None, "crd") == "crd"
    assert egress_apply.dropped_resource_warning({}, "expanded", "egw") == []


def test_failure_midway_says_what_was_written_and_a_rerun_converges(cluster):
    # the DestinationRule "egw" fails twice (both attempts of the retry policy)
    calls = {"n": 0}
    original = cluster.call_api

    def flaky(method, url, **kw):
        if method == "PATCH" and "/destinationrules/egw?" in url and calls["n"] < 2:
            calls["n"] += 1
            return Response(500, {"reason": "InternalError", "message": "boom"})
        return original(method, url, **kw)

    cluster.call_api = flaky
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy())
    failure = exc.value
    assert "apply DestinationRule mytest/egw: HTTP 500 InternalError: boom" in failure.msg
    assert "a rerun converges" in failure.msg
    applied = failure.result["applied"]
    assert applied[0] == "ASMEgressTrafficPolicy istio-egress/egw"
    assert applied[1:] and all(a.startswith("ServiceEntry") for a in applied[1:])
    not_applied = {n["kind"] for n in failure.result["not_applied"]}
    assert not_applied >= {"DestinationRule", "VirtualService"}
    result = apply(cluster, policy())
    assert {o["action"] for o in result["objects"]} == {"created", "unchanged"}
    assert apply(cluster, policy())["changed"] is False


def test_bad_input_fails_before_any_request(cluster):
    def no_client():
        raise AssertionError("no client may be made for bad input")

    bad = policy(rule("Bad_NS", entry("a", "a.example.com", number=0)))
    with pytest.raises(PolicyError) as exc:
        egress_apply.apply_policy(bad, no_client)
    assert len(exc.value.errors) == 2
    assert any(e.startswith("egress_rules[0].from[0].namespace") for e in exc.value.errors)
    assert any(e.startswith("egress_rules[0].to[0].port.number") for e in exc.value.errors)


# ---------------------------------------------------------------------------- the pieces

POLICY_KEY = "egress.servicemesh.io/policy"
MANAGED_BY = {"app.kubernetes.io/managed-by": "servicemesh.egress"}


def sidecar(name, namespace="mytest", selector=None, labels=None):
    spec = {"egress": [{"hosts": ["./*"]}]}
    if selector:
        spec["workloadSelector"] = {"labels": selector}
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "spec": spec}


def test_kind_order_without_objects_is_the_generated_kinds_policy_resource_first():
    assert egress_apply.kind_order() == [
        ("istio.alibabacloud.com", "ASMEgressTrafficPolicy"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("networking.istio.io", "ServiceEntry"),
        ("networking.istio.io", "DestinationRule"),
        ("networking.istio.io", "Gateway"),
        ("networking.istio.io", "VirtualService"),
        ("security.istio.io", "AuthorizationPolicy"),
        ("networking.istio.io", "Sidecar"),
        ("telemetry.istio.io", "Telemetry")]


def test_kind_order_follows_the_objects_then_the_other_generated_kinds():
    objects = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway"},
               {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"},
               {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"},
               {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry"},
               {"apiVersion": "example.com/v1", "kind": "Widget"}]
    assert egress_apply.kind_order(objects) == [
        ("gateway.networking.k8s.io", "Gateway"),
        ("security.istio.io", "AuthorizationPolicy"),
        ("networking.istio.io", "ServiceEntry"),
        ("example.com", "Widget"),
        ("istio.alibabacloud.com", "ASMEgressTrafficPolicy"),
        ("networking.istio.io", "DestinationRule"),
        ("networking.istio.io", "Gateway"),
        ("networking.istio.io", "VirtualService"),
        ("networking.istio.io", "Sidecar"),
        ("telemetry.istio.io", "Telemetry")]


def test_render_params_reads_module_parameters_and_the_mode():
    rendered = egress_apply.render_params(policy())
    assert rendered["mode"] == "sidecar"
    assert rendered["policy"]["metadata"] == {"name": "egw", "namespace": "istio-egress"}
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
            for o in rendered["objects"]][:2] == [("ServiceEntry", "mytest", "egw-a"),
                                                  ("ServiceEntry", "mytest", "egw-b")]
    ambient = egress_apply.render_params(dict(policy(), mode="ambient"))
    assert ambient["mode"] == "ambient"
    assert ambient["objects"][0]["kind"] == "Gateway"
    assert ambient["objects"][0]["apiVersion"].startswith("gateway.networking.k8s.io/")


def test_render_params_reads_a_definition_and_a_src_file(tmp_path):
    resource = egress_apply.render_params(policy())["policy"]
    from_definition = egress_apply.render_params({"definition": resource})
    assert from_definition["policy"] == resource
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(resource))
    assert egress_apply.render_params({"src": str(path)})["policy"] == resource


def test_render_params_lists_every_problem_and_names_an_unreadable_src(tmp_path):
    bad = policy(rule("Bad_NS", entry("a", "a.example.com", number=0)))
    with pytest.raises(PolicyError) as exc:
        egress_apply.render_params(bad)
    assert len(exc.value.errors) == 2
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError) as exc:
        egress_apply.render_params({"src": missing})
    assert exc.value.errors == ["src: cannot read %s: No such file or directory" % missing]


def test_desired_objects_expanded_are_the_rendered_objects_stamped_in_place():
    rendered = egress_apply.render_params(policy())
    objects = egress_apply.desired_objects(rendered, "expanded")
    assert len(objects) == len(rendered["objects"])
    assert all(a is b for a, b in zip(objects, rendered["objects"]))
    for o in objects:
        stamped = o["metadata"]["annotations"][egress_apply.HASH_ANNOTATION]
        assert stamped == compare.content_hash(o, egress_apply.HASH_ANNOTATION)
    assert all(o["kind"] != "ASMEgressTrafficPolicy" for o in objects)


def test_desired_objects_crd_is_the_labelled_policy_resource_only():
    rendered = egress_apply.render_params(policy())
    rendered["policy"]["metadata"]["labels"] = {"team": "web", POLICY_KEY: "wrong"}
    objects = egress_apply.desired_objects(rendered, "crd")
    assert len(objects) == 1
    resource = objects[0]
    assert (resource["apiVersion"], resource["kind"]) == ("istio.alibabacloud.com/v1beta1",
                                                          "ASMEgressTrafficPolicy")
    assert resource["metadata"]["labels"] == dict(MANAGED_BY, team="web", **{POLICY_KEY: "egw"})
    annotations = resource["metadata"]["annotations"]
    assert annotations[egress_apply.OUTPUT_ANNOTATION] == "crd"
    assert annotations[egress_apply.HASH_ANNOTATION] == \
        compare.content_hash(resource, egress_apply.HASH_ANNOTATION)
    assert resource["spec"] == rendered["policy"]["spec"]
    # the rendered resource itself is left as it was
    assert rendered["policy"]["metadata"] == {"name": "egw", "namespace": "istio-egress",
                                              "labels": {"team": "web", POLICY_KEY: "wrong"}}


def test_desired_objects_both_puts_the_policy_resource_first():
    rendered = egress_apply.render_params(policy())
    count = len(rendered["objects"])
    objects = egress_apply.desired_objects(rendered, "both")
    assert len(objects) == count + 1
    assert objects[0]["kind"] == "ASMEgressTrafficPolicy"
    assert objects[0]["metadata"]["annotations"][egress_apply.OUTPUT_ANNOTATION] == "both"
    assert objects[1:] == rendered["objects"]
    crd = egress_apply.desired_objects(egress_apply.render_params(policy()), "crd")[0]
    # the output is part of the hash: switching outputs re-applies the resource
    assert crd["metadata"]["annotations"][egress_apply.HASH_ANNOTATION] != \
        objects[0]["metadata"]["annotations"][egress_apply.HASH_ANNOTATION]


def test_make_applier_uses_the_collections_field_manager_and_hash_annotation(cluster):
    client = client_for(cluster)()
    applier = egress_apply.make_applier(client, check_mode=True, diff=True, workers=2)
    assert applier.client is client and applier.discovery.client is client
    assert (applier.field_manager, applier.annotation) == (
        "servicemesh.egress", "egress.servicemesh.io/applied-hash")
    assert (applier.check_mode, applier.diff, applier.workers) == (True, True, 2)
    defaults = egress_apply.make_applier(client)
    assert (defaults.check_mode, defaults.diff, defaults.workers) == (False, False, 4)
    assert applier.resource_of(sidecar("s")).qualified == "sidecars.networking.istio.io"


def test_sidecar_conflicts_namespace_wide_sidecar_of_someone_else(cluster):
    cluster.put(sidecar("default"), "sidecars")
    applier = egress_apply.make_applier(client_for(cluster)())
    owner = egress_apply.ownership_labels("egw")
    mine = sidecar("egw-default", labels=owner)
    assert egress_apply.sidecar_conflicts(applier, [mine], {}, owner) == [
        "Sidecar mytest/default (namespace-wide, not owned by this policy) is in the way of "
        "Sidecar egw-default, which this policy needs as the namespace-wide Sidecar of mytest: "
        "Istio allows one namespace-wide Sidecar per namespace; set force: true to create it "
        "anyway, or remove the other one"]
    # a Sidecar of ours already in place is not checked again
    owned = {compare.identity(mine): mine}
    assert egress_apply.sidecar_conflicts(applier, [mine], owned, owner) == []


def test_sidecar_conflicts_same_workload_selector(cluster):
    cluster.put(sidecar("theirs", selector={"tier": "web", "app": "sleep"}), "sidecars")
    cluster.put(sidecar("narrower", selector={"app": "sleep", "tier": "web", "v": "2"}),
                "sidecars")
    applier = egress_apply.make_applier(client_for(cluster)())
    owner = egress_apply.ownership_labels("egw")
    mine = sidecar("egw-x", selector={"app": "sleep", "tier": "web"}, labels=owner)
    assert egress_apply.sidecar_conflicts(applier, [mine], {}, owner) == [
        "Sidecar mytest/theirs (not owned by this policy) selects the same workloads "
        "(app=sleep,tier=web) as Sidecar egw-x of this policy: Istio allows one Sidecar per "
        "workload; set force: true to create it anyway, or remove the other one"]


def test_sidecar_conflicts_ignore_our_own_other_namespaces_and_other_kinds(cluster):
    owner = egress_apply.ownership_labels("egw")
    cluster.put(sidecar("egw-old", labels=owner), "sidecars")           # ours: pruned later
    cluster.put(sidecar("default", namespace="other"), "sidecars")     # another namespace
    cluster.put(sidecar("selective", selector={"app": "x"}), "sidecars")  # not namespace-wide
    cluster.put(sidecar("egw-default", labels={"team": "web"}), "sidecars")  # same name: a
    # name conflict, which the plan reports
    applier = egress_apply.make_applier(client_for(cluster)())
    mine = sidecar("egw-default", labels=owner)
    service_entry = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                     "metadata": {"name": "egw-a", "namespace": "mytest"}}
    assert egress_apply.sidecar_conflicts(applier, [service_entry, mine], {}, owner) == []
    other = egress_apply.ownership_labels("other-policy")
    # seen from another policy, our namespace-wide Sidecar is someone else's
    problems = egress_apply.sidecar_conflicts(applier, [mine], {}, other)
    assert [p.split(" (")[0] for p in problems] == ["Sidecar mytest/egw-old"]


# ---------------------------------------------------------------------------- gateway visibility


def gateway_service(annotations=None):
    meta = {"name": "egw", "namespace": "istio-egress"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"ports": [{"name": "tls-8443", "port": 8443}]}}


EXPORT_TO = "networking.istio.io/exportTo"


def test_a_policy_without_its_gateway_service_warns(cluster):
    result = apply(cluster, policy())
    assert ("the gateway Service istio-egress/egw does not exist yet: install the gateway (the "
            "egress_gateway role) before traffic can flow") in result["warnings"]


@pytest.mark.parametrize("annotations", [None, {}, {EXPORT_TO: "*"}, {EXPORT_TO: ".,mytest"},
                                         {EXPORT_TO: "istio-egress, mytest ,other"}])
def test_a_gateway_service_that_every_source_sees_is_left_alone(cluster, annotations):
    cluster.put(gateway_service(annotations), "services")
    result = apply(cluster, policy())
    assert not [w for w in result["warnings"] if "gateway Service" in w]
    assert not [r for r in cluster.writes() if "/services/" in r[1]]
    assert cluster.store[("services", "istio-egress", "egw")]["metadata"].get(
        "annotations") == annotations


def test_source_namespaces_are_added_to_a_scoped_gateway_service_before_the_routes(cluster):
    cluster.put(gateway_service({EXPORT_TO: ".,other"}), "services")
    result = apply(cluster, policy(), diff=True)
    assert result["objects"][0] == {
        "kind": "Service", "api_version": "v1", "namespace": "istio-egress", "name": "egw",
        "action": "updated",
        "reason": "networking.istio.io/exportTo: .,other -> .,mytest,other"}
    assert result["diff"][0]["after"] == {"metadata": {"annotations": {EXPORT_TO: ".,mytest,other"}}}
    writes = cluster.writes()
    assert "/services/egw" in writes[0][1], "the Service is written before any route to it"
    assert writes[0][2]["fieldManager"] == "servicemesh.egress"
    assert cluster.store[("services", "istio-egress", "egw")]["metadata"]["annotations"] == {
        EXPORT_TO: ".,mytest,other"}
    assert not apply(cluster, policy())["changed"]


def test_check_mode_dry_runs_the_visibility_change(cluster):
    cluster.put(gateway_service({EXPORT_TO: "."}), "services")
    result = apply(cluster, policy(), check_mode=True)
    assert result["changed"] and result["objects"][0]["kind"] == "Service"
    assert cluster.store[("services", "istio-egress", "egw")]["metadata"]["annotations"] == {
        EXPORT_TO: "."}


def test_gateway_visibility_warns_about_a_hidden_service(cluster):
    cluster.put(gateway_service({EXPORT_TO: "~"}), "services")
    applier = egress_apply.make_applier(client_for(cluster)())
    rendered = egress_apply.render_params(policy())
    change, warnings = egress_apply.gateway_visibility(applier, rendered["gateway"])
    assert change["after"] == ".,mytest,~"
    assert warnings == ["the gateway Service istio-egress/egw is exported to no namespace "
                        "(networking.istio.io/exportTo: ~): remove '~' from it, or no sidecar "
                        "reaches the gateway"]
    ambient = egress_apply.render_params(dict(policy(), mode="ambient"))
    assert egress_apply.gateway_visibility(applier, ambient["gateway"]) == (None, [])


def test_the_same_policy_under_its_other_name_says_a_gateway_takes_one_policy(cluster):
    apply(cluster, policy())  # module spelling: named after the gateway, egw
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, dict(policy(), name="egress-by-egw"))
    first = exc.value.errors[0]
    assert first.startswith("gateway egw already has policy egw (")
    assert first.endswith("a gateway takes one policy. To change it, name this one egw (module: "
                          "name: egw; resource: metadata.name: egw); to replace it, delete policy "
                          "egw first (state: absent, name: egw)")
    assert "force" not in exc.value.msg.split(":", 1)[1].split(";")[0]
    assert egress_apply.other_policy_of_gateway({}, "egw", "egw") is None


# ---------------------------------------------------------------------------- namespaces


def test_check_mode_assumes_a_missing_namespace_comes_earlier_in_the_run():
    cluster = FakeCluster(namespaces=("istio-egress",))
    params = policy(rule("new-team", entry("a", "a.example.com")))
    result = apply(cluster, params, check_mode=True)
    assert ("namespace new-team does not exist: check mode assumes an earlier task of this run "
            "creates it, and reports the policy's objects there without a dry run; a real run "
            "fails unless it exists") in result["warnings"]
    skipped = [o for o in result["objects"] if o.get("reason")]
    assert {o["namespace"] for o in skipped} == {"new-team"} and skipped[0]["action"] == "created"
    assert not [r for r in cluster.writes() if "/namespaces/new-team/" in r[1]]
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, params)
    assert exc.value.errors == ["namespace new-team does not exist: create it first (the module "
                                "never creates namespaces)"]


def test_ambient_warns_about_namespaces_not_enrolled():
    cluster = FakeCluster(kinds=dict(KINDS, gateways=("gateway.networking.k8s.io", "v1",
                                                      "Gateway")))
    result = apply(cluster, dict(policy(), mode="ambient"))
    assert ("source namespace mytest is not enrolled in ambient mode (label "
            "istio.io/dataplane-mode: ambient): its traffic does not reach the waypoint, so the "
            "policy neither routes nor guards it; label it (kubectl label namespace mytest "
            "istio.io/dataplane-mode=ambient)") in result["warnings"]
    assert any(w.startswith("the waypoint's namespace istio-egress is not enrolled")
               for w in result["warnings"])
    applier = egress_apply.make_applier(client_for(cluster)())
    rendered = egress_apply.render_params(dict(policy(), mode="ambient"))
    enrolled = {"metadata": {"labels": {"istio.io/dataplane-mode": "ambient"}}}
    applier.namespaces = lambda names: {n: enrolled for n in names}
    assert egress_apply.namespace_check(applier, rendered["objects"], set(), rendered,
                                        False) == ([], [], [])
    assert egress_apply.display_record(rendered["objects"][0])["kind"] == "Gateway"


# ---------------------------------------------------------------------------- telemetry


def telemetry(name, namespace="mytest", selector=None, logging=None, labels=None):
    spec = {}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if logging is not None:
        spec["accessLogging"] = logging
    return {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "spec": spec}


LOGGED = {"access_logging": "errors", "denied_egress": True}


def test_telemetry_objects_are_applied_pruned_and_rerun_without_writes(cluster):
    first = apply(cluster, policy(telemetry=LOGGED))
    assert ("created", "Telemetry", "istio-egress", "egw-access-log") in actions(first)
    assert ("created", "Telemetry", "mytest", "egw-denied-egress") in actions(first)
    mark = len(cluster.requests)
    assert apply(cluster, policy(telemetry=LOGGED))["changed"] is False
    assert [r for r in cluster.requests[mark:] if r[0] != "GET"] == []
    # telemetry removed: both objects pruned, nothing else touched but the policy resource
    result = apply(cluster, policy())
    assert [a for a in actions(result) if a[0] != "unchanged"] == [
        ("deleted", "Telemetry", "istio-egress", "egw-access-log"),
        ("deleted", "Telemetry", "mytest", "egw-denied-egress"),
        ("updated", "ASMEgressTrafficPolicy", "istio-egress", "egw")]
    assert cluster.names("telemetries") == []


def test_namespace_wide_telemetry_of_someone_else_is_a_conflict(cluster):
    cluster.put(telemetry("mesh-logs", logging=[{"providers": [{"name": "otel"}]}]),
                "telemetries")
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy(telemetry=LOGGED))
    assert exc.value.errors == [
        "Telemetry mytest/mesh-logs (namespace-wide, not owned by this policy) sets the access log "
        "(client) that Telemetry egw-denied-egress of this policy takes over for the pods "
        "it selects: Istio gives each proxy one access log filter per provider, taken from the "
        "most specific Telemetry; set force: true to create it anyway, or remove the other one's "
        "accessLogging"]
    assert exc.value.msg.startswith("1 object in the way of policy egw (nothing was written)")
    assert cluster.writes() == []
    result = apply(cluster, policy(telemetry=LOGGED, force=True))
    assert result["warnings"][0] == "force: " + exc.value.errors[0]
    assert ("created", "Telemetry", "mytest", "egw-denied-egress") in actions(result)
    assert "telemetries mytest/mesh-logs" in cluster.names()  # never touched
    # ours in place: not checked again; the rerun only rewrites the policy's status (its force
    # warning is gone), and the next one writes nothing
    again = apply(cluster, policy(telemetry=LOGGED))
    assert {a[0] for a in actions(again)} == {"unchanged"} and again["policy_status"]["written"]
    assert "force" not in again["policy_status"]["message"]
    assert apply(cluster, policy(telemetry=LOGGED))["changed"] is False


def test_telemetry_conflicts_only_where_the_access_logs_meet(cluster):
    owner = egress_apply.ownership_labels("egw")
    server_only = [{"providers": [{"name": "envoy"}], "match": {"mode": "SERVER"}}]
    cluster.put(telemetry("inbound", logging=server_only), "telemetries")       # other direction
    cluster.put(telemetry("metrics-only"), "telemetries")                        # no access log
    cluster.put(telemetry("selective", selector={"app": "x"}, logging=[{}]), "telemetries")
    cluster.put(telemetry("gw", namespace="istio-egress", logging=server_only), "telemetries")
    applier = egress_apply.make_applier(client_for(cluster)())
    from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand
    desired = [o for o in expand(policy(telemetry=LOGGED))[0] if o["kind"] == "Telemetry"]
    # the gateway's Telemetry logs both directions (no match): a server-side one meets it
    assert egress_apply.telemetry_conflicts(applier, desired, {}, owner) == [
        "Telemetry istio-egress/gw (namespace-wide, not owned by this policy) sets the access log "
        "(server) that Telemetry egw-access-log of this policy takes over for the pods it "
        "selects: Istio gives each proxy one access log filter per provider, taken from the most "
        "specific Telemetry; set force: true to create it anyway, or remove the other one's "
        "accessLogging"]
    owned = {compare.identity(o): o for o in desired}
    assert egress_apply.telemetry_conflicts(applier, desired, owned, owner) == []
    ambient = [o for o in expand(policy(telemetry=LOGGED), "ambient")[0] if o["kind"] == "Telemetry"]
    assert "for the ServiceEntries it selects" in egress_apply.telemetry_conflicts(
        applier, ambient, {}, owner)[0]
    cluster.put(telemetry("old", namespace="istio-egress", labels=owner), "telemetries")
    assert len(egress_apply.telemetry_conflicts(applier, desired, {}, owner)) == 1


def test_missing_telemetry_crd_fails_before_any_write():
    cluster = FakeCluster(kinds={k: v for k, v in KINDS.items() if k != "telemetries"})
    with pytest.raises(egress_apply.EgressFailure) as exc:
        apply(cluster, policy(telemetry=LOGGED))
    assert exc.value.msg == (
        "the cluster cannot take policy egw: the API server does not serve telemetry.istio.io/v1 "
        "Telemetry (CRD telemetries.telemetry.istio.io is not installed): install Istio's CRDs "
        "(istioctl install, or the istio/base Helm chart)")
    assert cluster.writes() == []
    assert apply(cluster, policy())["changed"]  # without telemetry the kind is not needed
