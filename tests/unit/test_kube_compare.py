"""kube/compare.py: is a live object already what server-side apply would make it?"""
import copy

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.kube import compare

MANAGER = "servicemesh.egress"
ANNOTATION = "example.com/applied-hash"


def desired():
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "se", "namespace": "ns", "labels": {"a": "1", "b.io/x": "2"}},
        "spec": {"hosts": ["example.com"], "ports": [{"number": 80, "name": "http"}],
                 "resolution": "DNS", "exportTo": ["."]},
    }


def fields_of(obj):
    """fieldsV1 as the API server records it for an apply of obj (lists atomic)."""
    tree = {}
    for path in compare.leaf_paths(obj):
        node = tree
        for part in path:
            node = node.setdefault("f:%s" % part, {})
    return tree


def live_of(obj, manager=MANAGER, extra_managers=()):
    live = copy.deepcopy(obj)
    live["metadata"].update({"uid": "u", "resourceVersion": "7", "generation": 1,
                             "creationTimestamp": "2026-01-01T00:00:00Z"})
    live["metadata"]["managedFields"] = [
        {"manager": manager, "operation": "Apply", "apiVersion": obj["apiVersion"],
         "fieldsType": "FieldsV1", "fieldsV1": fields_of(obj)}] + list(extra_managers)
    return live


def test_stamp_is_deterministic_and_ignores_key_order():
    a = compare.stamp(desired(), ANNOTATION)
    b_src = desired()
    b_src["spec"] = dict(reversed(list(b_src["spec"].items())))
    b = compare.stamp(b_src, ANNOTATION)
    assert a["metadata"]["annotations"][ANNOTATION] == b["metadata"]["annotations"][ANNOTATION]
    assert compare.content_hash(a, ANNOTATION) == a["metadata"]["annotations"][ANNOTATION]


def test_stamp_does_not_touch_the_input():
    obj = desired()
    compare.stamp(obj, ANNOTATION)
    assert "annotations" not in obj["metadata"]


def test_unchanged_when_applied_and_untouched():
    want = compare.stamp(desired(), ANNOTATION)
    assert compare.why_different(want, live_of(want), MANAGER, ANNOTATION) is None


def test_server_defaults_and_other_managers_fields_do_not_count():
    want = compare.stamp(desired(), ANNOTATION)
    live = live_of(want, extra_managers=[
        {"manager": "someone", "operation": "Update", "fieldsV1": {"f:spec": {"f:location": {}}}}])
    live["spec"]["location"] = "MESH_EXTERNAL"       # a field someone else added
    live["spec"]["ports"][0]["targetPort"] = 8080   # a default inside a list item
    live["status"] = {"conditions": []}
    assert compare.why_different(want, live, MANAGER, ANNOTATION) is None


def test_missing_and_never_applied():
    want = compare.stamp(desired(), ANNOTATION)
    assert compare.why_different(want, None, MANAGER, ANNOTATION) == "missing"
    live = live_of(desired())  # no hash annotation: created by something else
    assert "not applied" in compare.why_different(want, live, MANAGER, ANNOTATION)


def test_desired_change_is_seen_even_when_live_is_a_superset():
    old = desired()
    old["spec"]["ports"][0]["targetPort"] = 8080
    live = live_of(compare.stamp(old, ANNOTATION))
    want = compare.stamp(desired(), ANNOTATION)  # the key inside the list item was removed
    assert compare.why_different(want, live, MANAGER, ANNOTATION) == "the desired object changed"


def test_edit_by_someone_else_is_seen():
    want = compare.stamp(desired(), ANNOTATION)
    live = live_of(want)
    live["spec"]["hosts"] = ["evil.example.com"]
    # kubectl edit takes the field over: it leaves our apply entry
    del live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:hosts"]
    live["metadata"]["managedFields"].append(
        {"manager": "kubectl-edit", "operation": "Update",
         "fieldsV1": {"f:spec": {"f:hosts": {}}}})
    reason = compare.why_different(want, live, MANAGER, ANNOTATION)
    assert reason == "spec.hosts is managed by kubectl-edit (Update)"


def test_value_change_without_ownership_change_is_seen():
    want = compare.stamp(desired(), ANNOTATION)
    live = live_of(want)
    live["spec"]["resolution"] = "NONE"
    assert compare.why_different(want, live, MANAGER, ANNOTATION) == "spec.resolution differs"
    live = live_of(want)
    live["spec"]["hosts"].append("more.example.com")
    assert compare.why_different(want, live, MANAGER, ANNOTATION) == "spec.hosts differs"


def test_removed_label_is_seen():
    want = compare.stamp(desired(), ANNOTATION)
    live = live_of(want)
    del live["metadata"]["labels"]["b.io/x"]
    del live["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]["f:b.io/x"]
    reason = compare.why_different(want, live, MANAGER, ANNOTATION)
    assert reason.startswith('metadata.labels["b.io/x"] is managed by nobody')


def test_only_the_apply_entry_of_our_manager_counts():
    want = compare.stamp(desired(), ANNOTATION)
    live = live_of(want, manager="other")
    assert compare.why_different(want, live, MANAGER, ANNOTATION).startswith("no field")


@pytest.mark.parametrize("a,b,same", [
    (1, 1.0, True), (True, 1, False), (1, True, False), (False, False, True),
    ("80", 80, False), (None, None, True), ("a", "a", True),
])
def test_scalars(a, b, same):
    assert (compare.first_difference(a, b) is None) is same


def test_first_difference_paths():
    assert compare.first_difference({"a": [{"b": 1}]}, {"a": [{"b": 2}]}) == ("a", 0, "b")
    assert compare.first_difference({"a": [1, 2]}, {"a": [1]}) == ("a",)
    assert compare.first_difference({"a": {"b": 1}}, {"a": "x"}) == ("a",)
    assert compare.first_difference({"a": 1}, {"a": 1, "z": 2}) is None


def test_leaf_paths_skip_identity_and_stop_at_lists():
    paths = compare.leaf_paths(desired())
    assert ("metadata", "name") not in paths
    assert ("kind",) not in paths
    assert ("spec", "ports") in paths
    assert ("metadata", "labels", "b.io/x") in paths


def test_format_path():
    assert compare.format_path(("spec", "ports", 0, "number")) == "spec.ports[0].number"
    assert compare.format_path(("metadata", "labels", "a.b/c")) == 'metadata.labels["a.b/c"]'


def test_clean_strips_server_fields():
    live = live_of(desired())
    live["status"] = {"x": 1}
    out = compare.clean(live)
    assert "status" not in out
    assert set(out["metadata"]) == {"name", "namespace", "labels"}
    assert "managedFields" in live["metadata"]  # the input is left alone


def test_foreign_fields():
    live = live_of(desired(), extra_managers=[
        {"manager": "kubectl-edit", "operation": "Update",
         "fieldsV1": {"f:spec": {"f:hosts": {}, "f:ports": {"k:{\"number\":80}": {}}}}},
        {"manager": "status-writer", "operation": "Update", "subresource": "status",
         "fieldsV1": {"f:status": {}}}])
    assert compare.foreign_fields(live, MANAGER) == [
        ("spec.hosts", "kubectl-edit"), ("spec.ports", "kubectl-edit")]


def test_identity_and_display():
    obj = desired()
    assert compare.identity(obj) == ("networking.istio.io", "ServiceEntry", "ns", "se")
    assert compare.display(obj) == "ServiceEntry ns/se"
    assert compare.display(("", "Namespace", "", "x")) == "Namespace x"


@pytest.mark.parametrize("api_version,parts", [
    ("networking.istio.io/v1", ("networking.istio.io", "v1")),
    ("istio.alibabacloud.com/v1beta1", ("istio.alibabacloud.com", "v1beta1")),
    ("v1", ("", "v1")),
    ("", ("", "")),
    ("a/b/c", ("a", "b/c")),
])
def test_split_api_version(api_version, parts):
    assert compare.split_api_version(api_version) == parts


def test_api_group():
    assert compare.api_group("security.istio.io/v1") == "security.istio.io"
    assert compare.api_group("gateway.networking.k8s.io/v1") == "gateway.networking.k8s.io"
    assert compare.api_group("v1") == ""


def test_canonical_is_compact_sorted_and_ascii():
    assert compare.canonical({"b": 1, "a": [True, None, "\u00e9"], "c": {"z": 1.5, "y": {}}}) == \
        '{"a":[true,null,"\\u00e9"],"b":1,"c":{"y":{},"z":1.5}}'
    assert compare.canonical(desired()) == compare.canonical(
        dict(reversed(list(desired().items()))))


def test_managed_fields_merges_the_apply_entries_of_one_manager():
    live = live_of(desired())
    live["metadata"]["managedFields"] = [
        {"manager": MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:hosts": {}}}},
        {"manager": MANAGER, "operation": "Apply",
         "fieldsV1": {"f:spec": {"f:ports": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}},
        {"manager": MANAGER, "operation": "Update", "fieldsV1": {"f:spec": {"f:location": {}}}},
        {"manager": MANAGER, "operation": "Apply", "subresource": "status",
         "fieldsV1": {"f:status": {}}},
        {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {"f:resolution": {}}}},
    ]
    assert compare.managed_fields(live, MANAGER) == {
        "f:spec": {"f:hosts": {}, "f:ports": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}


def test_managed_fields_is_none_without_an_apply_of_the_manager():
    assert compare.managed_fields(desired(), MANAGER) is None  # no managedFields at all
    live = live_of(desired(), manager="kubectl-client-side-apply")
    assert compare.managed_fields(live, MANAGER) is None
    live["metadata"]["managedFields"].append(
        {"manager": MANAGER, "operation": "Update", "fieldsV1": {"f:spec": {}}})
    assert compare.managed_fields(live, MANAGER) is None


def test_managed_fields_of_an_apply_without_fields_is_empty_not_none():
    live = live_of(desired())
    live["metadata"]["managedFields"] = [{"manager": MANAGER, "operation": "Apply"}]
    assert compare.managed_fields(live, MANAGER) == {}


@pytest.mark.parametrize("path,owned", [
    ((), True),
    (("spec",), True),
    (("spec", "hosts"), True),
    (("metadata", "labels", "b.io/x"), True),
    (("spec", "resolution"), False),
    (("spec", "hosts", "x"), False),
    (("metadata", "labels", "a"), False),
    (("status",), False),
])
def test_owns(path, owned):
    fields = {"f:spec": {"f:hosts": {}, "f:ports": {}},
              "f:metadata": {"f:labels": {"f:b.io/x": {}}}}
    assert compare.owns(fields, path) is owned


def test_owns_stops_at_a_leaf_that_is_not_a_map():
    assert compare.owns({"f:spec": None}, ("spec",)) is False
    assert compare.owns({"f:spec": "x"}, ("spec", "hosts")) is False
