"""importer/catalog.py: the input indexed as Istio looks it up."""
from test_importer_objects import obj

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import (
    Catalog,
    policy_protocol,
)

GW = "istio-egressgateway.istio-system.svc.cluster.local"


def test_service_entry_protocols_in_the_policys_terms():
    assert [policy_protocol(p) for p in ("http", "HTTP2", "GRPC", "TLS", "HTTPS", "MONGO", None)] \
        == ["HTTP", "HTTP", "HTTP", "HTTPS", "HTTPS", "TCP", "TCP"]


def test_service_entries_by_host_and_the_one_a_namespace_uses():
    private = obj(spec={"hosts": ["a.example.com"], "exportTo": ["."],
                        "ports": [{"number": 80}, {"number": "x"}]}, namespace="shop", name="p")
    public = obj(spec={"hosts": ["A.example.com"]}, namespace="other", name="q")
    catalog = Catalog([private, public])
    assert catalog.entries_for("a.example.com") == [private, public]
    assert catalog.entries_for("a.example.com", "audit") == [public]
    assert catalog.entry_for("a.example.com", "shop") is private
    assert catalog.entry_for("a.example.com", "audit") is public
    assert catalog.entry_for("b.example.com", "shop") is None
    assert catalog.declares("a.example.com") and not catalog.declares("b.example.com")
    assert catalog.se_ports(private) == [(0, {"number": 80})]
    assert catalog.se_port(private, 80) == (0, {"number": 80})
    assert catalog.se_port(private, 443) == (None, None)


def test_services_and_the_labels_of_a_gateways_pods():
    svc = obj("Service", {"selector": {"istio": "egressgateway"}}, namespace="istio-system",
              name="istio-egressgateway", api_version="v1")
    catalog = Catalog([svc])
    assert catalog.service_for(GW) is svc and catalog.service_for("x.y.svc.cluster.local") is None
    gateway = obj("Gateway", {"selector": {"istio": "egressgateway"}})
    assert catalog.gateway_pods_labels(gateway) == {"istio": "egressgateway",
                                                    "app": "istio-egressgateway"}
    gateway = obj("Gateway", {"selector": {"app": "istio-egress"}})
    assert catalog.gateway_pods_labels(gateway) == {"app": "istio-egress", "istio": "egress"}


def test_destination_rules_most_specific_first_and_their_tls_per_port_and_subset():
    mine = obj("DestinationRule", {"host": "istio-egressgateway.istio-system", "exportTo": ["."]},
               namespace="shop", name="mine")
    root = obj("DestinationRule", {"host": GW}, namespace="istio-system", name="root")
    wild = obj("DestinationRule", {"host": "*.svc.cluster.local"}, namespace="shop", name="w")
    local = obj("DestinationRule", {"host": GW, "subsets": [
        {"name": "a", "trafficPolicy": {"portLevelSettings": [
            {"port": {"number": 443}, "tls": {"mode": "ISTIO_MUTUAL", "sni": "a"}}]}},
        {"name": "b"}], "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
        namespace="shop", name="local")
    catalog = Catalog([mine, root, wild, local])
    # the proxy's namespace first, the most specific host there ("istio-egressgateway.istio-system"
    # has a dot: Istio takes it as written, so it matches nothing); else the host's namespace
    assert catalog.rules_for(GW, "shop") == [local]
    assert catalog.rules_for(GW, "audit") == [root]
    assert catalog.rules_for(GW, "istio-system") == [root]
    private = obj("DestinationRule", {"host": "a.example.com", "exportTo": ["."]},
                  namespace="ext", name="private")
    assert Catalog([private]).rules_for("a.example.com", "shop", "ext") == []
    assert Catalog([private]).rules_for("a.example.com", "ext") == [private]
    assert catalog.subset(local, "b") == (1, {"name": "b"})
    assert catalog.subset(local, "z") == (None, None)
    assert catalog.tls_towards(local, 443, "a") == (
        {"mode": "ISTIO_MUTUAL", "sni": "a"},
        "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls")
    assert catalog.tls_towards(local, 80, "a") == ({"mode": "DISABLE"}, "spec.trafficPolicy.tls")
    assert catalog.tls_towards(root, 80) == (None, None)
    assert catalog.port_tls({"tls": {"mode": "SIMPLE"}}, 1, "p") == ({"mode": "SIMPLE"}, "p.tls")


def test_sidecars_of_a_namespace_with_the_root_namespaces_default():
    root = obj("Sidecar", {"egress": [{"hosts": ["*/*"]}]}, namespace="istio-system", name="d")
    whole = obj("Sidecar", {"egress": []}, namespace="shop", name="w")
    picked = obj("Sidecar", {"workloadSelector": {"labels": {"app": "a"}}}, namespace="shop",
                 name="p")
    catalog = Catalog([root, whole, picked])
    assert catalog.sidecars_in("shop") == (whole, [picked])
    assert catalog.sidecars_in("audit") == (root, [])
    assert Catalog([]).sidecars_in("shop") == (None, [])
