"""importer/ambient.py: ServiceEntries bound to a waypoint."""
import copy

from test_importer import recipe, round_trip

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render
from ansible_collections.servicemesh.egress.plugins.module_utils.importer import run_import
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.ambient import (
    policy_waypoint,
    recognize,
    waypoint_of,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.catalog import Catalog
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import Ledger
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.objects import (
    read_objects,
)


def catalog_of(objects):
    return Catalog(read_objects(objects)[0])


def drafts_of(objects):
    ledger = Ledger()
    return recognize(catalog_of(objects), ledger), ledger


def namespace(name, labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_the_waypoint_a_service_entry_uses():
    objects = recipe("ambient-waypoint")
    catalog = catalog_of(objects + [namespace("apps", {"istio.io/use-waypoint": "shared",
                                                       "istio.io/use-waypoint-namespace": "w"})])
    (se,) = catalog.service_entries
    assert waypoint_of(catalog, se) == ("istio-egress", "egress-waypoint")
    bare = copy.deepcopy(objects[1])
    del bare["metadata"]["labels"]
    bare["metadata"]["namespace"] = "apps"
    catalog = catalog_of([bare, namespace("apps", {"istio.io/use-waypoint": "shared",
                                                   "istio.io/use-waypoint-namespace": "w"})])
    assert waypoint_of(catalog, catalog.service_entries[0]) == ("w", "shared")
    bare["metadata"]["labels"] = {"istio.io/use-waypoint": "none"}
    assert waypoint_of(catalog_of([bare]), catalog_of([bare]).service_entries[0]) is None


def test_each_port_of_a_bound_service_entry_is_a_draft():
    (draft,), ledger = drafts_of(recipe("ambient-waypoint"))
    assert draft.mode == "ambient" and draft.gateway == ("istio-egress", "egress-waypoint")
    assert draft.upgrade_port == 443 and draft.tls == {"mode": "SIMPLE"}
    assert {r for o, p, r, d in ledger.uses} == {
        "registers the host, bound to the waypoint", "the waypoint",
        "TLS origination at the waypoint"}


def test_what_ambient_cannot_carry_is_not_imported():
    objects = recipe("ambient-waypoint")
    objects[1]["spec"]["hosts"] = ["*.partner.example.com"]
    drafts, ledger = drafts_of(objects)
    assert drafts == [] and "without resolution DYNAMIC_DNS" in ledger.skipped[0][2]
    objects[1]["spec"]["resolution"] = "DYNAMIC_DNS"
    (draft,), ledger = drafts_of(objects)
    assert draft.dynamic_dns
    objects = recipe("ambient-waypoint")
    del objects[1]["spec"]["ports"][0]["targetPort"]
    (draft,), dummy = drafts_of(objects)
    assert "on the port the workloads dial" in draft.skipped[2]
    objects = recipe("ambient-waypoint")
    del objects[2]
    (draft,), dummy = drafts_of(objects)
    assert draft.skipped[1] == "spec.ports[0].targetPort"


def test_the_hosts_of_one_service_entry_must_agree_on_their_tls():
    objects = recipe("ambient-waypoint")
    objects[1]["spec"]["hosts"].append("files.partner.example.com")
    (draft,), dummy = drafts_of(objects)
    # the second host has no DestinationRule: the waypoint sends it plain text
    assert "set different TLS or traffic policies" in draft.skipped[2]
    files = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
             "metadata": {"name": "files", "namespace": "istio-egress"},
             "spec": {"host": "files.partner.example.com",
                      "trafficPolicy": {"tls": {"mode": "SIMPLE"}}}}
    (draft,), dummy = drafts_of(objects + [files])
    assert draft.skipped is None and draft.tls == {"mode": "SIMPLE"}
    files["spec"]["trafficPolicy"]["tls"]["sni"] = "cdn.example.com"
    (draft,), dummy = drafts_of(objects + [files])
    assert "set different TLS or traffic policies" in draft.skipped[2]


def test_timeouts_and_retries_the_waypoint_applies():
    objects = recipe("ambient-waypoint") + [{
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "partner-timeouts", "namespace": "istio-egress"},
        "spec": {"hosts": ["api.partner.example.com"], "http": [{
            "timeout": "5s", "retries": {"attempts": 3},
            "route": [{"destination": {"host": "api.partner.example.com"}}]}]}}]
    (draft,), dummy = drafts_of(objects)
    assert draft.http == {"timeout": "5s", "retries": {"attempts": 3}}
    objects[-1]["spec"]["http"][0]["route"][0]["destination"]["host"] = "other.example.com"
    (draft,), dummy = drafts_of(objects)
    assert "instead of the host itself" in draft.skipped[2]


def test_the_policy_keeps_a_waypoint_that_accepts_its_service_entries():
    objects = recipe("ambient-waypoint")
    catalog = catalog_of(objects)
    assert policy_waypoint(catalog, ("istio-egress", "egress-waypoint")) == (
        {"name": "egress-waypoint", "create": False}, None)
    objects[0]["metadata"]["namespace"] = "shared"
    assert policy_waypoint(catalog_of(objects), ("shared", "egress-waypoint"))[0] is None
    objects[0]["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "All"}}
    assert policy_waypoint(catalog_of(objects), ("shared", "egress-waypoint")) == (
        {"name": "egress-waypoint", "namespace": "shared", "create": False}, None)


def test_the_per_host_tls_of_a_waypoint_becomes_the_one_setting_of_the_entry():
    data = {"gateway": "egw", "egress_rules": [{"from": [{"namespace": "ns-a"}], "to": [{
        "name": "pair", "hosts": ["a.example.com", "b.example.com"],
        "port": {"number": 80, "protocol": "HTTP"},
        "https_upgrade": {"enabled": True, "port": 443},
        "tls": {"mode": "SIMPLE", "subject_alt_names": ["a.example.com"]}}]}]}
    result = round_trip(data, "ambient")
    (entry,) = result.resource["spec"]["egressRules"][0]["to"]
    # each host's DestinationRule sends its own name; the entry says it by leaving sni out
    assert entry["tls"] == {"mode": "SIMPLE", "subjectAltNames": ["a.example.com"]}


WILDCARD = {"gateway": "egw", "egress_rules": [{"from": [{"namespace": "ns-a"}], "to": [{
    "name": "cdn", "hosts": ["www.cdn.example", "*.cdn.example"], "dynamic_dns": True,
    "port": {"number": 443, "protocol": "HTTPS"}}]}]}


def test_the_sni_condition_of_a_wildcard_is_the_policys_own():
    result = round_trip(WILDCARD, "ambient")
    assert result.report["not_carried"] == []


def test_another_sni_condition_on_a_wildcard_is_reported_not_carried():
    rendered = render(copy.deepcopy(WILDCARD), "ambient")
    conditions = 0
    for obj in rendered["objects"]:
        for rule in obj["spec"].get("rules", []) if obj["kind"] == "AuthorizationPolicy" else []:
            for condition in rule.get("when", []):
                condition["values"] = ["a.cdn.example"]
                conditions += 1
    assert conditions == 1
    result = run_import(rendered["objects"], "egw", skip_managed=False)
    (lost,) = result.report["not_carried"]
    assert lost["path"] == "spec.rules[0].when[0]" and "connection.sni" in lost["why"]
