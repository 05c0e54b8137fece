"""kube/apply.py: the Applier (reads, writes, dry run, diff, failures) against the in-memory API
server (fake_cluster.py), and its small helpers."""
import json

import pytest

from fake_cluster import FakeCluster, Response, client_for

from ansible_collections.servicemesh.egress.plugins.module_utils.kube import compare
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.apply import (
    Applier,
    Outcome,
    crd_name_guess,
    kinds_of,
    record,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.discovery import Discovery
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.errors import KubeError
from ansible_collections.servicemesh.egress.plugins.module_utils.kube.plan import (
    CREATE,
    DELETE,
    UNCHANGED,
    UPDATE,
    Change,
    plan,
)

MANAGER = "servicemesh.egress"
ANNOTATION = "egress.servicemesh.io/applied-hash"
OWNER = {"app.kubernetes.io/managed-by": "servicemesh.egress", "egress.servicemesh.io/policy": "p"}
SELECTOR = "app.kubernetes.io/managed-by=servicemesh.egress,egress.servicemesh.io/policy=p"
SE = ("networking.istio.io/v1", "ServiceEntry")
VS = ("networking.istio.io/v1", "VirtualService")


def obj(kind, name, namespace="mytest", labels=None, spec=None,
        api_version="networking.istio.io/v1"):
    """A desired object, stamped like egress_apply stamps them."""
    return compare.stamp({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": dict(OWNER if labels is None else labels)},
        "spec": spec or {"hosts": ["%s.example.com" % name], "resolution": "DNS"}},
        ANNOTATION)


def applier(cluster, **kw):
    client = client_for(cluster)()
    return Applier(client, Discovery(client), MANAGER, ANNOTATION, **kw)


def changes_for(app, desired, force=False):
    """The plan egress_apply makes: owned by selector, the others looked up by name."""
    owned = app.list_selected([SE, VS], SELECTOR)
    existing = app.lookup(desired, owned)
    changes, conflicts = plan(desired, owned, existing, OWNER, MANAGER, ANNOTATION, force=force,
                              kind_order=[("networking.istio.io", "ServiceEntry"),
                                          ("networking.istio.io", "VirtualService")])
    assert conflicts == []
    return changes


def reads(cluster):
    return [(r[1], r[2].get("labelSelector")) for r in cluster.requests if r[0] == "GET"]


def actions(records):
    return [(r["action"], r["kind"], r["name"]) for r in records]


# ---------------------------------------------------------------------------- helpers


def test_record_is_the_result_entry_of_a_change():
    se = obj("ServiceEntry", "a")
    change = Change(CREATE, compare.identity(se), se, None, "missing")
    assert record(change, "created") == {
        "kind": "ServiceEntry", "api_version": "networking.istio.io/v1", "namespace": "mytest",
        "name": "a", "action": "created"}
    gone = Change(DELETE, ("security.istio.io", "AuthorizationPolicy", "istio-egress", "p"),
                  None, {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"})
    assert record(gone, "deleted") == {
        "kind": "AuthorizationPolicy", "api_version": "security.istio.io/v1",
        "namespace": "istio-egress", "name": "p", "action": "deleted"}


def test_outcome_starts_with_nothing_done():
    outcome = Outcome()
    assert (outcome.records, outcome.diffs, outcome.applied, outcome.not_applied,
            outcome.warnings) == ([], [], [], [], [])
    assert outcome.changed is False and outcome.error is None


def test_kinds_of_keeps_the_first_appearance_order_without_repeats():
    objects = [obj("ServiceEntry", "a"), obj("VirtualService", "a"), obj("ServiceEntry", "b"),
               obj("Gateway", "g", api_version="gateway.networking.k8s.io/v1"),
               obj("Gateway", "h"), {"kind": "Odd"}]
    assert kinds_of(objects) == [SE, VS, ("gateway.networking.k8s.io/v1", "Gateway"),
                                 ("networking.istio.io/v1", "Gateway"), ("", "Odd")]
    assert kinds_of([]) == []


@pytest.mark.parametrize("api_version,kind,name", [
    ("networking.istio.io/v1", "Sidecar", "sidecars.networking.istio.io"),
    ("networking.istio.io/v1", "ServiceEntry", "serviceentries.networking.istio.io"),
    ("security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies.security.istio.io"),
    ("gateway.networking.k8s.io/v1", "Gateway", "gateways.gateway.networking.k8s.io"),
    ("istio.alibabacloud.com/v1beta1", "ASMEgressTrafficPolicy",
     "asmegresstrafficpolicies.istio.alibabacloud.com"),
    ("example.com/v1", "Key", "keys.example.com"),  # a vowel before the y: just an s
    ("v1", "ConfigMap", "configmaps"),                # the core group has no CRD suffix
])
def test_crd_name_guess(api_version, kind, name):
    assert crd_name_guess(api_version, kind) == name


# ---------------------------------------------------------------------------- reading


def test_resource_of_an_object_whose_kind_is_not_served_names_it(cluster):
    app = applier(cluster)
    assert app.resource_of(obj("ServiceEntry", "a")).plural == "serviceentries"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": "mytest"}}
    with pytest.raises(KubeError) as exc:
        app.resource_of(widget)
    assert exc.value.msg == "Widget mytest/w: the API server does not serve example.com/v1 Widget"


def test_missing_kinds_lists_only_the_kinds_not_served(cluster):
    app = applier(cluster)
    assert app.missing_kinds([SE, ("example.com/v1", "Widget"), ("v1", "Namespace"),
                              ("networking.istio.io/v1alpha3", "Sidecar")]) == [
        ("example.com/v1", "Widget"), ("networking.istio.io/v1alpha3", "Sidecar")]
    assert app.missing_kinds([]) == []


def test_missing_namespaces_reads_each_namespace_once_in_order(cluster):
    app = applier(cluster)
    assert app.missing_namespaces(["zz", "mytest", "aa", "zz", "other"]) == ["aa", "zz"]
    assert reads(cluster) == [("/api/v1/namespaces/aa", None), ("/api/v1/namespaces/mytest", None),
                              ("/api/v1/namespaces/other", None), ("/api/v1/namespaces/zz", None)]


@pytest.mark.parametrize("workers", [1, 4])
def test_list_selected_lists_each_served_kind_by_selector_across_namespaces(cluster, workers):
    ours = [obj("ServiceEntry", "a"), obj("ServiceEntry", "b", namespace="other"),
            obj("VirtualService", "a")]
    for o, plural in zip(ours, ["serviceentries", "serviceentries", "virtualservices"]):
        cluster.put(o, plural)
    cluster.put(obj("ServiceEntry", "theirs", labels={"app.kubernetes.io/managed-by":
                                                      "servicemesh.egress",
                                                      "egress.servicemesh.io/policy": "q"}),
                "serviceentries")
    found = applier(cluster, workers=workers).list_selected(
        [SE, VS, ("example.com/v1", "Widget")], SELECTOR)
    assert sorted(found) == sorted(compare.identity(o) for o in ours)
    assert found[("networking.istio.io", "VirtualService", "mytest", "a")]["spec"] == \
        ours[2]["spec"]
    assert sorted(reads(cluster)[1:]) == [
        ("/apis/networking.istio.io/v1/serviceentries", SELECTOR),
        ("/apis/networking.istio.io/v1/virtualservices", SELECTOR)]


def test_list_namespace_is_read_once_per_run(cluster):
    cluster.put(obj("ServiceEntry", "a", labels={}), "serviceentries")
    cluster.put(obj("ServiceEntry", "b", namespace="other"), "serviceentries")
    app = applier(cluster)
    first = app.list_namespace(*SE, namespace="mytest")
    assert [o["metadata"]["name"] for o in first] == ["a"]
    assert app.list_namespace(*SE, namespace="mytest") is first
    assert app.list_namespace("example.com/v1", "Widget", "mytest") == []
    assert reads(cluster) == [("/apis", None),
                              ("/apis/networking.istio.io/v1/namespaces/mytest/serviceentries",
                               None)]


def test_lookup_finds_existing_objects_with_one_list_per_kind_and_namespace(cluster):
    existing = obj("ServiceEntry", "b", labels={"team": "web"})
    cluster.put(existing, "serviceentries")
    known_se = obj("ServiceEntry", "known", namespace="other")
    desired = [obj("ServiceEntry", "a"), obj("ServiceEntry", "b"), obj("ServiceEntry", "c"),
               known_se, obj("VirtualService", "a")]
    found = applier(cluster).lookup(desired, {compare.identity(known_se): known_se})
    assert list(found) == [("networking.istio.io", "ServiceEntry", "mytest", "b")]
    assert found[compare.identity(existing)]["metadata"]["labels"] == {"team": "web"}
    assert sorted(reads(cluster)[1:]) == [
        ("/apis/networking.istio.io/v1/namespaces/mytest/serviceentries", None),
        ("/apis/networking.istio.io/v1/namespaces/mytest/virtualservices", None)]


# ---------------------------------------------------------------------------- writing


def test_run_creates_then_leaves_unchanged_then_updates_and_deletes(cluster):
    desired = [obj("ServiceEntry", "a"), obj("ServiceEntry", "b"), obj("VirtualService", "a")]
    app = applier(cluster)
    outcome = app.run(changes_for(app, desired))
    assert outcome.error is None and outcome.changed
    assert actions(outcome.records) == [("created", "ServiceEntry", "a"),
                                        ("created", "ServiceEntry", "b"),
                                        ("created", "VirtualService", "a")]
    assert outcome.applied == ["ServiceEntry mytest/a", "ServiceEntry mytest/b",
                               "VirtualService mytest/a"]
    assert outcome.warnings == [] and outcome.diffs == []
    assert cluster.names() == ["serviceentries mytest/a", "serviceentries mytest/b",
                               "virtualservices mytest/a"]
    stored = cluster.store[("serviceentries", "mytest", "a")]
    assert stored["metadata"]["managedFields"][-1]["manager"] == MANAGER

    mark = len(cluster.requests)
    app = applier(cluster)
    again = app.run(changes_for(app, desired))
    assert not again.changed and again.applied == []
    assert [r["action"] for r in again.records] == ["unchanged"] * 3
    assert [r for r in cluster.requests[mark:] if r[0] != "GET"] == []

    changed = [obj("ServiceEntry", "a", spec={"hosts": ["new.example.com"]}),
               obj("VirtualService", "a")]
    app = applier(cluster)
    third = app.run(changes_for(app, changed))
    assert actions(third.records) == [("updated", "ServiceEntry", "a"),
                                      ("unchanged", "VirtualService", "a"),
                                      ("deleted", "ServiceEntry", "b")]
    assert cluster.store[("serviceentries", "mytest", "a")]["spec"]["hosts"] == \
        ["new.example.com"]
    assert cluster.names() == ["serviceentries mytest/a", "virtualservices mytest/a"]


def test_check_mode_sends_only_dry_runs(cluster):
    cluster.put(obj("ServiceEntry", "old"), "serviceentries")
    app = applier(cluster, check_mode=True)
    outcome = app.run(changes_for(app, [obj("ServiceEntry", "a")]))
    assert outcome.changed
    assert actions(outcome.records) == [("created", "ServiceEntry", "a"),
                                        ("deleted", "ServiceEntry", "old")]
    assert cluster.names() == ["serviceentries mytest/old"]
    assert cluster.writes(dry_run=False) == []
    assert [r[0] for r in cluster.writes(dry_run=True)] == ["PATCH", "DELETE"]


def test_takeover_replaces_the_object_then_applies_it(cluster):
    theirs = obj("ServiceEntry", "a", labels={"team": "web"},
                 spec={"hosts": ["a.example.com"], "location": "MESH_EXTERNAL"})
    cluster.put(dict(theirs, metadata=dict(theirs["metadata"], resourceVersion="5")),
                "serviceentries")
    app = applier(cluster)
    outcome = app.run(changes_for(app, [obj("ServiceEntry", "a")], force=True))
    assert actions(outcome.records) == [("updated", "ServiceEntry", "a")]
    assert [r[0] for r in cluster.writes()] == ["PUT", "PATCH"]
    live = cluster.store[("serviceentries", "mytest", "a")]
    assert live["metadata"]["labels"] == OWNER
    assert live["spec"] == {"hosts": ["a.example.com"], "resolution": "DNS"}
    assert outcome.warnings == []


def test_takeover_in_check_mode_is_one_dry_run_replace(cluster):
    theirs = obj("ServiceEntry", "a", labels={"team": "web"})
    cluster.put(dict(theirs, metadata=dict(theirs["metadata"], resourceVersion="5")),
                "serviceentries")
    app = applier(cluster, check_mode=True, diff=True)
    outcome = app.run(changes_for(app, [obj("ServiceEntry", "a")], force=True))
    assert actions(outcome.records) == [("updated", "ServiceEntry", "a")]
    assert [(r[0], r[2].get("dryRun")) for r in cluster.writes()] == [("PUT", "All")]
    assert cluster.store[("serviceentries", "mytest", "a")]["metadata"]["labels"] == \
        {"team": "web"}
    assert outcome.warnings == []  # a replace's answer is not compared as an apply's
    assert outcome.diffs[0]["before"]["metadata"]["labels"] == {"team": "web"}
    assert outcome.diffs[0]["after"]["metadata"]["labels"] == OWNER


def test_a_failed_write_stops_the_rest_and_says_what_was_not_written(cluster):
    cluster.fail[("PATCH", "b")] = (422, {"reason": "Invalid", "message": "spec.hosts: Required"})
    desired = [obj("ServiceEntry", "a"), obj("ServiceEntry", "b"), obj("ServiceEntry", "c"),
               obj("VirtualService", "a")]
    app = applier(cluster, workers=1)
    outcome = app.run(changes_for(app, desired))
    assert isinstance(outcome.error, KubeError)
    assert outcome.error.msg == \
        "apply ServiceEntry mytest/b: HTTP 422 Invalid: spec.hosts: Required"
    assert outcome.changed
    assert outcome.applied == ["ServiceEntry mytest/a"]
    assert actions(outcome.records) == [("created", "ServiceEntry", "a")]
    assert [(n["kind"], n["name"], n["action"], n["reason"]) for n in outcome.not_applied] == [
        ("ServiceEntry", "b", "created", "missing"), ("ServiceEntry", "c", "created", "missing"),
        ("VirtualService", "a", "created", "missing")]
    assert [r[1].rsplit("/", 1)[-1] for r in cluster.writes()] == ["a", "b"]
    assert cluster.names() == ["serviceentries mytest/a"]


def test_a_failed_write_in_parallel_is_reported_and_the_next_kind_not_started(cluster):
    cluster.fail[("PATCH", "b")] = (422, {"reason": "Invalid", "message": "bad"})
    desired = [obj("ServiceEntry", n) for n in "abcdef"] + [obj("VirtualService", "a")]
    app = applier(cluster, workers=4)
    outcome = app.run(changes_for(app, desired))
    assert outcome.error.msg == "apply ServiceEntry mytest/b: HTTP 422 Invalid: bad"
    assert "VirtualService mytest/a" not in outcome.applied
    assert not [r for r in cluster.writes() if "/virtualservices/" in r[1]]
    assert len(outcome.applied) + len(outcome.not_applied) == len(desired)


def test_what_the_api_server_keeps_different_is_a_warning(cluster):
    original = cluster.call_api

    def defaulting(method, url, **kw):
        response = original(method, url, **kw)
        if method != "PATCH":
            return response
        body = json.loads(response.read())
        body["spec"]["resolution"] = "NONE"  # e.g. a mutating webhook
        return Response(response.status, body)

    cluster.call_api = defaulting
    app = applier(cluster)
    outcome = app.run(changes_for(app, [obj("ServiceEntry", "a")]))
    assert outcome.error is None
    assert outcome.warnings == [
        "ServiceEntry mytest/a: the API server keeps it different from what was applied "
        "(spec.resolution differs): it will be applied again on every run"]


def test_diff_shows_before_and_after_without_server_metadata(cluster):
    app = applier(cluster, diff=True)
    created = app.run(changes_for(app, [obj("ServiceEntry", "a"), obj("ServiceEntry", "b")]))
    first = created.diffs[0]
    assert first["before"] == {}
    assert first["before_header"] == first["after_header"] == \
        "networking.istio.io/v1 ServiceEntry mytest/a"
    assert first["after"]["spec"] == {"hosts": ["a.example.com"], "resolution": "DNS"}
    assert set(first["after"]["metadata"]) == {"name", "namespace", "labels", "annotations"}

    app = applier(cluster, diff=True)
    pruned = app.run(changes_for(app, [obj("ServiceEntry", "a")]))
    assert len(pruned.diffs) == 1  # unchanged objects have no diff
    assert pruned.diffs[0]["after"] == {}
    assert pruned.diffs[0]["before"]["metadata"]["name"] == "b"
    assert "managedFields" not in pruned.diffs[0]["before"]["metadata"]


def test_run_of_hand_made_changes_keeps_their_order_in_the_records(cluster):
    cluster.put(obj("VirtualService", "gone"), "virtualservices")
    se = obj("ServiceEntry", "a")
    changes = [Change(UNCHANGED, ("networking.istio.io", "ServiceEntry", "mytest", "same"),
                      obj("ServiceEntry", "same"), obj("ServiceEntry", "same")),
               Change(UPDATE, compare.identity(se), se, None, "the desired object changed"),
               Change(DELETE, ("networking.istio.io", "VirtualService", "mytest", "gone"), None,
                      obj("VirtualService", "gone"), "no longer generated")]
    outcome = applier(cluster).run(changes)
    assert actions(outcome.records) == [("unchanged", "ServiceEntry", "same"),
                                        ("updated", "ServiceEntry", "a"),
                                        ("deleted", "VirtualService", "gone")]
    assert cluster.names() == ["serviceentries mytest/a"]


def test_missing_namespace_fails_the_write_with_the_api_servers_answer():
    cluster = FakeCluster(namespaces=("istio-egress",))
    app = applier(cluster)
    outcome = app.run([Change(CREATE, compare.identity(obj("ServiceEntry", "a")),
                              obj("ServiceEntry", "a"), None, "missing")])
    assert outcome.error.status == 404
    assert outcome.error.msg == \
        "apply ServiceEntry mytest/a: HTTP 404 NotFound: namespace not found"
    assert outcome.changed is False and outcome.records == []
