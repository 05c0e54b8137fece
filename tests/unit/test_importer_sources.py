"""importer/sources.py: who may use each imported route."""
import copy

from test_importer import recipe
from test_importer_sidecar import drafts_of

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import Catalog
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import Ledger
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    read_objects,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.sources import (
    HOW_TO_GIVE,
    decide,
    draft_visibility,
    from_policies,
    narrow,
    policies_for,
)


def policy(rules, action="ALLOW", namespace="istio-system", selector=None, name="p"):
    spec = {"action": action, "rules": rules}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def setup(objects):
    drafts, ledger = drafts_of(objects)
    return Catalog(read_objects(objects)[0]), drafts[0], ledger


def test_the_visibility_of_a_route_is_that_of_its_objects_together():
    dummy, draft, dummy2 = setup(recipe("mutual-origination"))
    assert draft_visibility(draft).names == {"billing", "finance", "istio-system"}


def test_policies_that_apply_to_the_gateway_pods():
    objects = recipe("http-gateway") + [
        policy([], selector={"app": "istio-egressgateway"}, name="by-chart-label"),
        policy([], action="DENY", selector={"istio": "egressgateway"}, name="deny"),
        policy([], selector={"app": "other"}, name="elsewhere"),
        policy([], namespace="default", name="other-namespace")]
    catalog, draft, ledger = setup(objects)
    allow, deny = policies_for(catalog, draft)
    assert [p.name for p in allow] == ["by-chart-label"] and [p.name for p in deny] == ["deny"]


def test_sources_from_namespaces_principals_and_l7_limits_of_the_admitting_rules():
    objects = recipe("http-gateway-mutual") + [policy([
        {"from": [{"source": {"namespaces": ["shop"], "ipBlocks": ["10.0.0.0/8"]}},
                  {"source": {"principals": ["cluster.local/ns/audit/sa/reader", "odd"]}}],
         "to": [{"operation": {"ports": ["80"], "hosts": ["weather.example.com"],
                               "methods": ["get"], "paths": ["/v1/*"]}}],
         "when": [{"key": "request.headers[x]", "values": ["y"]}]},
        {"from": [{"source": {"namespaces": ["never"]}}],
         "to": [{"operation": {"ports": ["443"]}}]}], selector={"istio": "egressgateway"})]
    catalog, draft, ledger = setup(objects)
    sources, refs = from_policies(catalog, ledger, draft)
    assert sources == [{"namespace": "shop"},
                       {"namespace": "audit", "serviceAccounts": ["reader"]}]
    assert refs == ["AuthorizationPolicy istio-system/p"]
    assert draft.http == {"methods": ["GET"], "pathPrefixes": ["/v1/"]}
    assert [p for o, p, w, d in ledger.not_carried] == [
        "spec.rules[0].when[0]", "spec.rules[0].from[0].source.ipBlocks",
        "spec.rules[0].from[1].source.principals"]
    assert [p for o, p, r, d in ledger.uses if o.kind == "AuthorizationPolicy"] == [
        "spec.rules[0]"]


def test_identities_over_a_plain_text_hop_admit_nobody_and_say_so():
    objects = recipe("http-gateway") + [policy([
        {"from": [{"source": {"namespaces": ["shop"]}}],
         "to": [{"operation": {"ports": ["80"]}}]}], selector={"istio": "egressgateway"})]
    catalog, draft, ledger = setup(objects)
    sources, refs = from_policies(catalog, ledger, draft)
    assert sources == []
    (note,) = [n for n in ledger.notes if "Istio mutual TLS" in n[1]]
    assert "spec.rules[0]: names sources by identity" in note[1]
    assert "admits nobody there today" in note[1]


def test_a_rule_admitting_any_source_leaves_sources_to_export_to():
    objects = recipe("tcp-by-address") + [policy([{"to": [{"operation": {"ports": ["7777"]}}]}],
                                                 selector={"istio": "egressgateway"})]
    catalog, draft, ledger = setup(objects)
    assert from_policies(catalog, ledger, draft) == (None, ["AuthorizationPolicy istio-system/p"])
    assert decide(catalog, ledger, draft, []) is None
    assert draft.sources == [{"namespace": "billing"}]
    assert draft.sources_from.startswith("exportTo (VirtualService billing/")


def test_no_admitting_rule_means_nobody_uses_the_route_today():
    objects = recipe("http-gateway") + [policy([{"to": [{"operation": {"ports": ["9"]}}]}])]
    catalog, draft, ledger = setup(objects)
    assert decide(catalog, ledger, draft, ["default"]) is None
    assert draft.skipped[2].startswith("no source reaches weather.example.com port 80 (HTTP) "
                                       "today")


def test_sources_given_to_the_import_come_last_and_their_absence_is_an_error():
    catalog, draft, ledger = setup(recipe("http-gateway"))
    error = decide(catalog, ledger, draft, [])
    assert error.endswith(HOW_TO_GIVE) and error.startswith(
        "VirtualService default/weather-through-egress-gateway: weather.example.com port 80")
    assert decide(catalog, ledger, draft, ["shop", "audit"]) is None
    assert draft.sources == [{"namespace": "shop"}, {"namespace": "audit"}]
    assert [d["what"] for d in draft.differences] == ["sources"]
    assert draft.differences[0]["namespaces"] == ["shop", "audit"]


def test_the_gateways_own_namespace_is_not_a_source():
    objects = recipe("tcp-by-address")
    for index in (0, 3):
        objects[index]["spec"]["exportTo"] = ["istio-system"]
    catalog, draft, ledger = setup(objects)
    assert decide(catalog, ledger, draft, []) is None
    assert draft.skipped[1] == "spec.exportTo"


def test_sidecars_narrow_a_namespace_to_the_workloads_they_give_the_host():
    objects = recipe("scoped-and-principals")
    drafts, dummy = drafts_of(objects)
    catalog, ledger = Catalog(read_objects(objects)[0]), Ledger()
    reports = drafts[0]
    given = [{"namespace": "analytics"}, {"namespace": "audit"}]
    assert narrow(catalog, ledger, reports, given) == [
        {"namespace": "analytics"},
        {"namespace": "audit", "workloadSelector": {"app": "reporter"}}]
    objects = copy.deepcopy(objects)
    objects[7]["spec"]["egress"][0]["hosts"] = ["./*"]
    catalog = Catalog(read_objects(objects)[0])
    assert narrow(catalog, ledger, reports, [{"namespace": "audit"}]) == []
    assert ledger.notes[-1][1].startswith("does not import reports.example.com: namespace audit "
                                          "is not a source")
