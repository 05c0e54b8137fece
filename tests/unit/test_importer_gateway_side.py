"""importer/gateway_side.py: the gateway's half of a route (server, route, the two
DestinationRules on the way)."""
import copy

from test_importer import recipe
from test_importer_sidecar import drafts_of

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import Catalog
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import (
    Draft,
    Ledger,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.gateway_side import (
    candidates,
    expected_route,
    gateway_side,
    server_accepts,
    terminates_to_http,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    read_objects,
)

GW = "istio-egressgateway.istio-system.svc.cluster.local"


def server(protocol, mode=None, hosts=("*",)):
    out = {"port": {"number": 443, "protocol": protocol}, "hosts": list(hosts)}
    if mode:
        out["tls"] = {"mode": mode}
    return out


def test_the_route_kind_a_server_needs_and_whether_the_hop_is_mutual():
    assert expected_route("HTTP", server("HTTP")) == ("http", False)
    assert expected_route("HTTP", server("HTTPS", "ISTIO_MUTUAL")) == ("http", True)
    assert expected_route("HTTPS", server("TLS", "PASSTHROUGH")) == ("tls", False)
    assert expected_route("HTTPS", server("TLS", "ISTIO_MUTUAL")) == ("tcp", True)
    # protocol HTTPS ends the mutual TLS and serves HTTP: a workload's own TLS fails there
    assert expected_route("HTTPS", server("HTTPS", "ISTIO_MUTUAL")) is None
    assert expected_route("TCP", server("TCP")) == ("tcp", False)
    assert expected_route("TCP", server("TLS", "ISTIO_MUTUAL")) == ("tcp", True)
    assert expected_route("HTTP", server("HTTPS", "SIMPLE")) is None
    assert expected_route("TCP", server("HTTP")) is None


def test_a_server_that_ends_tls_as_https_serves_only_http():
    assert terminates_to_http(server("HTTPS", "ISTIO_MUTUAL"))
    assert terminates_to_http(server("HTTPS", "SIMPLE"))
    assert not terminates_to_http(server("HTTPS", "PASSTHROUGH"))
    assert not terminates_to_http(server("TLS", "ISTIO_MUTUAL"))
    assert not terminates_to_http(server("HTTP"))


def test_server_hosts_accept_by_namespace_and_host():
    accepting = server("HTTP", hosts=["./a.example.com", "shop/*.b.com", "c.example.com"])
    assert server_accepts(accepting, "a.example.com", "istio-system", "istio-system")
    assert not server_accepts(accepting, "a.example.com", "shop", "istio-system")
    assert server_accepts(accepting, "x.b.com", "shop", "istio-system")
    assert not server_accepts(accepting, "x.b.com", "other", "istio-system")
    assert server_accepts(accepting, "c.example.com", "any", "istio-system")


def test_candidates_take_the_mutual_hops_sni_and_say_what_is_hidden_or_missing():
    objects = recipe("wildcard-gateway")
    catalog = Catalog(read_objects(objects)[0])
    draft = Draft("sidecar", ["*.wiki.example"], {"name": "https", "number": 443,
                                                  "protocol": "HTTPS"}, "wiki", None)
    draft.gateway_port, draft.gateway_namespace = 443, "istio-system"
    missing, hidden = set(), set()
    found = candidates(catalog, draft, None, (True, "www.wiki.example"), missing, hidden)
    assert [(f[0].name, f[1], f[3], f[6]) for f in found] == [
        ("wiki-through-egress-gateway", "tcp", "spec.tcp[0]", True)]
    assert candidates(catalog, draft, None, (True, "www.other.example"), missing, hidden) == []
    objects[4]["spec"]["exportTo"] = ["."]
    objects[4]["spec"]["gateways"].append("istio-system/absent")
    objects[4]["spec"]["tcp"][0]["match"][0]["gateways"].append("istio-system/absent")
    catalog = Catalog(read_objects(objects)[0])
    assert candidates(catalog, draft, None, (True, "www.wiki.example"), missing, hidden) == []
    assert hidden == {"VirtualService docs/wiki-through-egress-gateway"}
    assert missing == {"istio-system/absent"}


def run(objects):
    drafts, ledger = drafts_of(objects)
    return drafts[0], ledger


def test_the_gateway_half_of_a_recipe():
    draft, ledger = run(recipe("mutual-origination"))
    assert draft.skipped is None and draft.gateway.name == "egress-ledger"
    assert draft.gateway_namespace == "istio-system" and draft.mtls_sni == "ledger.bank.example"
    assert draft.gateway_route == ("VirtualService billing/ledger-through-egress-gateway",
                                   "spec.http[1]")
    assert draft.last_hop[2] == "ledger.bank.example" and draft.upgrade_port == 443
    assert draft.tls["mode"] == "MUTUAL"
    assert [(o.name, p) for o, p, r, d in ledger.uses if r == "egress gateway server"] == [
        ("egress-ledger", "spec.servers[0]")]
    # gateway_side itself, on a draft whose sidecar side is known
    catalog = Catalog(read_objects(recipe("mutual-origination"))[0])
    again = Draft("sidecar", ["ledger.bank.example"], dict(draft.port), "ledger", None)
    again.gateway_port = 8080
    gateway_side(catalog, Ledger(), again, GW, "ledger", catalog.virtual_services[0])
    assert again.upgrade_port == 443 and again.skipped is None


def test_the_hop_to_the_gateway_must_be_what_its_server_expects():
    objects = recipe("http-gateway-mutual")
    objects[2]["spec"]["subsets"][0]["trafficPolicy"]["portLevelSettings"][0]["tls"] = {
        "mode": "DISABLE"}
    draft, dummy = run(objects)
    assert "expects Istio mutual TLS" in draft.skipped[2]
    objects[2]["spec"]["subsets"][0]["trafficPolicy"]["portLevelSettings"][0]["tls"] = {
        "mode": "SIMPLE"}
    draft, dummy = run(objects)
    assert draft.skipped[1].endswith(".tls.mode") and "originates SIMPLE TLS" in draft.skipped[2]


def test_two_gateway_routes_and_routes_that_go_elsewhere_are_not_imported():
    objects = recipe("http-gateway")
    copy_vs = copy.deepcopy(objects[3])
    copy_vs["metadata"]["name"] = "second"
    copy_vs["spec"]["http"] = copy_vs["spec"]["http"][1:]
    draft, dummy = run(objects + [copy_vs])
    assert draft.skipped[2].startswith("2 gateway-side routes take weather.example.com on port 80")
    objects = recipe("http-gateway")
    objects[3]["spec"]["http"][1]["route"][0]["destination"]["port"]["number"] = 8080
    draft, dummy = run(objects)
    assert draft.skipped[1] == "spec.http[1].route[0].destination.port"
    objects = recipe("tls-passthrough")
    objects.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": "double", "namespace": "istio-system"},
                    "spec": {"host": "api.payments.example.net",
                             "trafficPolicy": {"tls": {"mode": "SIMPLE"}}}})
    draft, dummy = run(objects)
    assert "around the application's own TLS" in draft.skipped[2]


def test_the_last_hop_reaches_the_one_dns_endpoint_of_an_alias_or_declares_the_difference():
    objects = recipe("http-gateway")
    objects[0]["spec"]["resolution"] = "STATIC"
    objects[0]["spec"]["endpoints"] = [{"address": "192.0.2.9"}]
    draft, dummy = run(objects)
    assert draft.skipped is None
    assert [d["what"] for d in draft.differences] == ["endpoint"]
    objects = recipe("tcp-by-address")
    objects[0]["spec"]["endpoints"] = [{"address": "192.0.2.41"}]
    draft, dummy = run(objects)
    assert draft.differences[0]["text"].startswith("the old gateway connected to ServiceEntry "
                                                   "billing/orders-db's endpoints (192.0.2.41)")
