"""importer/report.py: the report as data and as Markdown."""
from test_importer import imported, recipe

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import Catalog
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import Ledger
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    read_objects,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.report import (
    build_report,
    catalog_objects,
    report_markdown,
)


def test_every_input_object_is_in_the_report_with_what_happens_to_it_after_the_cut_over():
    report = imported("fault-and-mirror", sources=["default"]).report
    assert report["summary"] == {"entries": 1, "objects": 6, "not_imported": 2,
                                 "not_carried": 0, "differences": 4, "delete": 1}
    (kept,) = [d for d in report["differences"] if d["what"] == "kept-registration"]
    assert kept["hosts"] == ["c.example.com"] and kept["port"] == 80
    assert kept["text"].startswith("ServiceEntry default/apis stays (not all of it was imported)")
    records = dict((o["object"], o) for o in report["objects"])
    clean = records["VirtualService default/c-through-egress-gateway"]
    assert clean["action"] == "delete" and clean["entries"] == ["c-example-com"]
    assert clean["roles"] == ["sidecar-side route", "gateway-side route"]
    faulty = records["VirtualService default/a-through-egress-gateway"]
    assert faulty["action"] == "keep" and faulty["not_imported"][0]["path"] == "spec.http[0].fault"
    gateway = records["Gateway istio-system/egress-apis"]
    assert gateway["action"] == "keep" and gateway["why"].startswith("some of its routes")
    assert report["delete"] == [{
        "step": 1, "object": "VirtualService default/c-through-egress-gateway",
        "kind": "VirtualService", "api_version": "networking.istio.io/v1",
        "namespace": "default", "name": "c-through-egress-gateway", "condition": "delete"}]


def test_parts_no_route_uses_keep_an_object():
    objects = recipe("http-gateway")
    objects[1]["spec"]["servers"].append({"port": {"number": 9999, "name": "x",
                                                   "protocol": "HTTP"}, "hosts": ["*"]})
    from ansible_collections.servicemesh.egress.plugins.module_utils.importer import run_import
    report = run_import(objects, "egressgateway-a", sources=["default"]).report
    record = next(o for o in report["objects"] if o["kind"] == "Gateway")
    assert (record["action"], record["why"]) == (
        "keep", "parts the import did not recognize: spec.servers[1]")


def test_an_empty_report_lists_every_recognized_object_as_kept():
    objects, dummy, dummy2 = read_objects(recipe("http-gateway"))
    catalog = Catalog(objects)
    assert len(catalog_objects(catalog)) == 4 and catalog_objects(None) == []
    report = build_report(Ledger(), [], [], None, "sidecar", "egw", catalog)
    assert [o["action"] for o in report["objects"]] == ["keep"] * 4
    assert report["objects"][0]["why"] == "not part of an egress route the import recognizes"


def test_the_markdown_report_has_every_section_and_the_delete_commands_in_order():
    result = imported("http-gateway", sources=["default"])
    text = report_markdown(result.report, result.route_lines, "http-gateway.yaml")
    assert text.startswith("# Import report: egress policy egressgateway-a\n\n1 entry imported "
                           "(sidecar mode) from http-gateway.yaml; 0 routes or settings not "
                           "imported, 0 settings not carried over, 3 differences")
    for title in ("## Entries", "## Not imported", "## Not carried over",
                  "## Differences the cut-over makes", "## Objects",
                  "## Delete after the cut-over"):
        assert "\n%s\n" % title in text
    commands = [line for line in text.splitlines() if line.startswith("kubectl delete")]
    assert commands == [
        "kubectl delete virtualservices.networking.istio.io -n default "
        "weather-through-egress-gateway",
        "kubectl delete destinationrules.networking.istio.io -n default "
        "egressgateway-for-weather",
        "kubectl delete gateways.networking.istio.io -n default egress-weather",
        "kubectl delete serviceentries.networking.istio.io -n default weather"]
    assert "| weather | weather.example.com | 80 HTTP | 80 | none | default |" in text
    ambient = imported("ambient-waypoint")
    text = report_markdown(ambient.report, ambient.route_lines)
    assert "# step 1: right after the policy is applied" in text
    assert "Nothing: keep the hand-written objects" in report_markdown(
        build_report(Ledger(), [], [], None, "sidecar", "egw", None))


def test_a_deleted_service_entry_port_without_an_imported_route_is_a_declared_direct_path():
    report = imported("tls-origination", sources=["default"]).report
    (direct,) = [d for d in report["differences"] if d["what"] == "direct"]
    assert direct["hosts"] == ["catalog.example.org"] and direct["port"] == 443
    assert "a direct path past the egress gateway" in direct["text"]


def test_who_loses_a_routed_host_is_declared():
    # www-wiki (istio-system) registers www.wiki.example for every namespace; the route through
    # the gateway is exported to docs and istio-system, and the gateway admits everyone
    report = imported("wildcard-gateway").report
    found = dict((d["what"], d) for d in report["differences"] if d["what"] in ("direct", "sources"))
    assert found["direct"]["hosts"] == ["www.wiki.example"] and found["direct"]["port"] == 443
    assert found["direct"]["text"].startswith(
        "ServiceEntry istio-system/www-wiki registered www.wiki.example port 443 for every "
        "namespace, the route through the gateway only for docs, istio-system")
    assert found["sources"]["namespaces"] == ["docs"]
    assert found["sources"]["hosts"] == ["www.wiki.example", "*.wiki.example"]
    assert found["sources"]["text"] == (
        "VirtualService docs/wiki-through-egress-gateway routed www.wiki.example, *.wiki.example "
        "port 443 through the gateway for docs, istio-system; after the cut-over only docs do")


def test_no_loss_is_declared_where_the_gateway_refused_the_others_or_the_draft_says_it():
    passthrough = imported("tls-passthrough").report["differences"]  # sources from its policy
    assert [d["what"] for d in passthrough] == ["gateway"]
    http = imported("http-gateway", sources=["default"]).report["differences"]
    assert [d["what"] for d in http].count("sources") == 1  # the draft's own
