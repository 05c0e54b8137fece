"""importer/objects.py: reading the input objects, and Istio's rules for short host names,
exportTo, gateway references and Sidecar imports."""
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    Obj,
    Visibility,
    binds_mesh,
    flatten,
    fqdn,
    gateway_ref,
    host_matches,
    mapping,
    read_objects,
    selector_labels,
    selects,
    sequence,
    service_namespace,
    sidecar_imports,
    split_api_version,
    strings,
    visibility,
)


def obj(kind="ServiceEntry", spec=None, namespace="shop", name="x",
        api_version="networking.istio.io/v1", labels=None):
    meta = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return Obj({"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec or {}},
               "objects[0]", "default")


def test_small_readers_take_only_their_type():
    assert split_api_version("networking.istio.io/v1beta1") == ("networking.istio.io", "v1beta1")
    assert split_api_version("v1") == ("", "v1")
    assert mapping([1]) == {} and mapping({"a": 1}) == {"a": 1}
    assert sequence("abc") == [] and sequence([1]) == [1]
    assert strings(["a", 1, None, "b"]) == ["a", "b"] and strings("a") == []


def test_an_object_knows_its_kind_namespace_and_how_to_name_a_field():
    se = obj(namespace=None, labels={"a": "b", "n": 1})
    assert se.namespace == "default" and se.api_version == "networking.istio.io/v1"
    assert se.ref == "ServiceEntry default/x" and se.labels == {"a": "b"}
    assert se.at("spec.hosts") == "ServiceEntry default/x: spec.hosts"
    assert obj(kind="Namespace", namespace=None, api_version="v1").ref == "Namespace x"


def test_lists_are_flattened_with_their_origin():
    items = [{"kind": "List", "items": [{"a": 1}, {"b": 2}]}, {"c": 3}]
    assert [o for dummy, o in flatten(items, "f")] == ["f[0].items[0]", "f[0].items[1]", "f[1]"]


def test_reading_keeps_the_egress_kinds_of_every_generation_and_says_what_it_ignores():
    def raw(api, kind, name="x", spec=None):
        return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec or {}}
    items = [
        raw("networking.istio.io/v1alpha3", "VirtualService"),
        raw("networking.istio.io/v1beta1", "DestinationRule"),
        raw("security.istio.io/v1", "AuthorizationPolicy"),
        raw("gateway.networking.k8s.io/v1", "Gateway", "waypoint",
            {"gatewayClassName": "istio-waypoint"}),
        raw("gateway.networking.k8s.io/v1", "Gateway", "ingress", {"gatewayClassName": "istio"}),
        raw("networking.istio.io/v2", "ServiceEntry"),
        raw("networking.istio.io/v1alpha3", "EnvoyFilter"),
        raw("apps/v1", "Deployment"),
        raw("networking.istio.io/v1", "VirtualService"),
        None,
        "text",
    ]
    objects, ignored, errors = read_objects(items, "in.yaml")
    assert [o.ref for o in objects] == [
        "VirtualService default/x", "DestinationRule default/x", "AuthorizationPolicy default/x",
        "Gateway default/waypoint"]
    assert [r for r, w in ignored] == ["Gateway default/ingress", "ServiceEntry default/x",
                                       "EnvoyFilter default/x", "Deployment default/x"]
    assert "only waypoints" in ignored[0][1] and "networking.istio.io/v1alpha3" in ignored[1][1]
    assert errors == ["in.yaml[8]: VirtualService default/x is given twice (first at in.yaml[0])",
                      "in.yaml[10]: must be a Kubernetes object (a mapping), got a string"]


def test_hosts_resolve_as_istio_resolves_them():
    assert fqdn("istio-egressgateway", "istio-system") == \
        "istio-egressgateway.istio-system.svc.cluster.local"
    assert fqdn("Edition.CNN.com", "x") == "edition.cnn.com"
    assert fqdn("gw.istio-system", "x") == "gw.istio-system"  # a dot: taken as written
    assert fqdn("10.0.0.1", "x") == "10.0.0.1" and fqdn("*", "x") == "*"
    assert service_namespace("gw.istio-system.svc.cluster.local") == "istio-system"
    assert service_namespace("edition.cnn.com") is None
    assert host_matches("*", "a.b") and host_matches("*.b.com", "a.b.com")
    assert host_matches("*.b.com", "*.b.com") and not host_matches("*.b.com", "b.com")
    assert host_matches("A.com", "a.COM") and not host_matches("a.com", "b.com")


def test_visibility_follows_export_to():
    assert visibility(obj()).every and visibility(obj(spec={"exportTo": ["*", "."]})).every
    seen = visibility(obj(spec={"exportTo": [".", "audit", "~"]}))
    assert not seen.every and seen.names == {"shop", "audit"} and seen.sees("audit")
    assert not visibility(obj(spec={"exportTo": ["~"]})).sees("shop")
    both = seen & Visibility(False, ["audit", "x"])
    assert both.names == {"audit"} and (seen & Visibility(True)).names == seen.names
    assert (seen | Visibility(False, ["y"])).names == {"shop", "audit", "y"}
    assert (seen | Visibility(True)).every and Visibility(True).text() == "every namespace"
    assert Visibility(False).text() == "no namespace" and seen.text() == "audit, shop"


def test_gateway_references_and_mesh_binding():
    assert gateway_ref("mesh", "a") == "mesh"
    assert gateway_ref("egress", "default") == "default/egress"
    assert gateway_ref("./egress", "default") == "default/egress"
    assert gateway_ref("istio-system/egress", "default") == "istio-system/egress"
    assert gateway_ref("egress.istio-system.svc.cluster.local", "x") == "istio-system/egress"
    vs = obj("VirtualService")
    assert binds_mesh(vs)
    assert binds_mesh(obj("VirtualService", {"gateways": ["gw", "mesh"]}))
    assert not binds_mesh(obj("VirtualService", {"gateways": ["gw"]}))


def test_sidecar_imports_by_namespace_host_and_most_specific_port():
    sidecar = obj("Sidecar", {"workloadSelector": {"labels": {"app": "a"}}, "egress": [
        {"port": {"number": 443}, "hosts": ["analytics/reports.example.com"]},
        {"hosts": ["./*", "*/api.example.com", "~/blocked.example.com"]}]}, namespace="audit")
    assert sidecar_imports(sidecar, "analytics", "reports.example.com", 443)
    assert not sidecar_imports(sidecar, "analytics", "reports.example.com", 80)
    assert not sidecar_imports(sidecar, "audit", "api.example.com", 443)  # the port's listener
    assert sidecar_imports(sidecar, "audit", "anything.example.org", 80)
    assert sidecar_imports(sidecar, "other", "api.example.com", 80)
    assert not sidecar_imports(sidecar, "other", "blocked.example.com", 80)
    assert selector_labels(sidecar) == {"app": "a"} and selector_labels(obj("Sidecar")) is None
    assert selects({"app": "a"}, {"app": "a", "v": "1"}) and not selects({"app": "b"}, {})
