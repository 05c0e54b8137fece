"""importer/sidecar.py: the sidecar side of routes through an egress gateway, read from the
recipes (the gateway side is test_importer_gateway_side.py)."""
from test_importer import recipe

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import Catalog
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import Ledger
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    read_objects,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.sidecar import (
    recognize,
)


def drafts_of(objects):
    ledger = Ledger()
    found = recognize(Catalog(read_objects(objects)[0]), ledger)
    return found, ledger


def test_each_sidecar_side_route_is_a_draft_with_its_gateway_port():
    (draft,), ledger = drafts_of(recipe("tls-origination"))
    assert draft.hosts == ["catalog.example.org"] and draft.skipped is None
    assert draft.port == {"name": "http", "number": 80, "protocol": "HTTP"}
    assert (draft.gateway_port, draft.upgrade_port) == (80, 443)
    assert [(o.kind, p, r) for o, p, r, d in ledger.uses][:3] == [
        ("VirtualService", "spec.http[0].match[0]", "sidecar-side route"),
        ("ServiceEntry", "spec.ports[0]", "registers the host"),
        ("DestinationRule", "spec.subsets[0]", "subset for the hop to the gateway")]


def test_tcp_by_address_dials_the_addresses_of_the_service_entry():
    (draft,), dummy = drafts_of(recipe("tcp-by-address"))
    assert draft.hosts == ["192.0.2.40/32"] and draft.addressed_host == "orders-db.tcp.svc"
    assert (draft.protocol, draft.gateway_port) == ("TCP", 7777)


def test_routes_between_in_cluster_services_are_not_egress_and_unbound_mesh_is_reported():
    objects = recipe("missing-mesh-gateway") + [{
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "v2"}}]}]}}]
    drafts, ledger = drafts_of(objects)
    assert drafts == []
    ((obj, path, why, draft),) = ledger.skipped
    assert (obj.name, path, draft) == ("weather-through-egress-gateway",
                                       "spec.http[0].match[0].gateways", None)


def test_a_match_without_port_needs_one_port_of_its_protocol():
    objects = recipe("http-gateway")
    del objects[3]["spec"]["http"][0]["match"][0]["port"]
    (draft,), ledger = drafts_of(objects)
    assert draft.port["number"] == 80 and not draft.skipped
    objects[0]["spec"]["ports"].append({"number": 8080, "name": "alt", "protocol": "HTTP"})
    drafts, ledger = drafts_of(objects)
    assert drafts == [] and "declare 2 HTTP ports" in ledger.skipped[0][2]


def test_tls_routes_need_sni_hosts_and_ports_the_service_entry_declares():
    objects = recipe("tls-passthrough")
    del objects[4]["spec"]["tls"][0]["match"][0]["sniHosts"]
    objects[5]["spec"]["tls"][0]["match"][0]["port"] = 8443
    drafts, ledger = drafts_of(objects)
    assert [d.skipped[1] for d in drafts] == ["spec.ports"]
    assert [s[1] for s in ledger.skipped] == ["spec.tls[0].match[0].sniHosts", "spec.ports"]


def test_a_port_whose_protocol_differs_from_the_route_is_not_imported():
    objects = recipe("http-gateway")
    objects[0]["spec"]["ports"][0]["protocol"] = "TCP"
    (draft,), ledger = drafts_of(objects)
    assert draft.skipped[1] == "spec.ports[0].protocol"
    assert draft.skipped[2] == ("is TCP, but VirtualService default/weather-through-egress-"
                                "gateway: spec.http[0].match[0] routes it as HTTP")
