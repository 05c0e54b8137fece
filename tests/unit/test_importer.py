"""The importer end to end (importer/__init__.py): istio.io-style recipes of both API generations
in, a policy and a report out; the usual mistakes reported and not imported; and the round
trip: importing the render of every example and of generated policies gives back an
equivalent policy (the same routes, ports, TLS, L7 settings and who gets them)."""
import copy
import glob
import os

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from helpers import EXAMPLES, ROOT

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load, render
from ansible_collections.servicemesh.egress.plugins.module_utils.importer import (
    ImportFailure,
    Imported,
    import_policy,
    run_import,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import Policy

try:  # the property tests' strategy of valid policies
    from test_expand_properties import valid_policy as generated_policies
except ImportError:
    from test_expand_properties import good_policy as generated_policies

RECIPES = os.path.join(ROOT, "tests", "unit", "recipes")
ISTIO_EXAMPLES = os.path.join(ROOT, "examples", "istio")


def recipe(name):
    """The objects of a recipe file (tests/unit/recipes, else examples/istio)."""
    path = os.path.join(RECIPES, name + ".yaml")
    if not os.path.exists(path):
        path = os.path.join(ISTIO_EXAMPLES, name + ".yaml")
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def imported(name, **options):
    return run_import(recipe(name), "egressgateway-a", source=name, **options)


def failure(objects, gateway="egressgateway-a", **options):
    with pytest.raises(ImportFailure) as caught:
        run_import(objects, gateway, **options)
    return caught.value.errors


def entries(result):
    return dict((t["name"], t) for r in result.resource["spec"]["egressRules"] for t in r["to"])


def not_imported(result):
    return [(i["object"], i["path"]) for i in result.report["not_imported"]]


def action(result, ref):
    return next(o for o in result.report["objects"] if o["object"] == ref)["action"]


# ---------------------------------------------------------------------------- equivalence


def plain_upgrade(target, host, sidecar):
    """Whether the entry's ``tls`` renders as ``httpsUpgrade`` alone does: SIMPLE with the
    system CA, the SNI an upgrade sends by itself (ambient: each host; sidecar: a one-host entry's
    host, else Istio's auto SNI) and the names checked that SNI's."""
    tls = target.tls
    default_sni = host if not sidecar else (target.hosts[0] if len(target.hosts) == 1 else None)
    sni = tls.sni or default_sni
    return (tls.mode == "SIMPLE" and target.upgraded and not tls.credential_name
            and sni == default_sni and tuple(tls.subject_alt_names) in ((), (sni,)))


def effective(data, mode=None):
    """What a policy does, independent of how it is written: per (host, port) the protocol,
    gateway port, upgrade port, L7 settings, the host the last hop dials, TLS, traffic policy,
    dynamic DNS and, per source namespace, which workloads get the route and whom the gateway
    admits (a namespace-wide grant subsumes selectors and service accounts)."""
    loaded = load(copy.deepcopy(data), mode)
    sidecar = loaded.mode == "sidecar"
    out = {}
    for rule in loaded.policy.rules:
        for target in rule.targets:
            http = None
            if target.http is not None:
                retries = target.http.retries
                http = (tuple(sorted(target.http.methods)), tuple(sorted(target.http.path_prefixes)),
                        target.http.timeout, None if retries is None else (
                            retries.attempts, retries.per_try_timeout, retries.retry_on))
                http = None if http == ((), (), None, None) else http
            traffic = repr(target.traffic_policy.istio()) if target.traffic_policy else None
            for host in target.hosts:
                tls = None
                if target.tls is not None and not plain_upgrade(target, host, sidecar):
                    # without an sni the origination sends the name of the host it dials
                    sni = target.tls.sni or (target.hosts[0] if sidecar else host)
                    tls = (target.tls.mode, target.tls.credential_name, sni,
                           tuple(target.tls.subject_alt_names) or (sni,))
                key = (host, target.port.number)
                assert key not in out, key
                grants = {}
                out[key] = (target.protocol,
                            loaded.gateway_ports[target.name] if sidecar else None,
                            target.upstream_port if target.upgraded else None, http,
                            target.hosts[0] if sidecar else host, tls, traffic,
                            bool(target.dynamic_dns) and host.startswith("*"), grants)
                for source in rule.sources:
                    routed, admitted = grants.setdefault(source.namespace, (set(), set()))
                    routed.add(tuple(sorted(source.workload_selector.items()))
                               if source.workload_selector and sidecar else "*")
                    admitted.update(source.service_accounts or ["*"])
    for key, value in out.items():
        grants = dict((ns, ("*" if "*" in r else frozenset(r), "*" if "*" in a else frozenset(a)))
                      for ns, (r, a) in value[-1].items())
        out[key] = value[:-1] + (grants,)
    return loaded.mode, out


def round_trip(data, mode):
    """Render a policy, import what it renders (the collection's own objects included), and
    compare what the two policies do."""
    rendered = render(copy.deepcopy(data), mode)
    gateway = rendered["policy"]["spec"]["byEgressGateway"]["name"]
    result = run_import(rendered["objects"], gateway, skip_managed=False)
    assert result.report["not_imported"] == [], result.report["not_imported"]
    assert effective(data, mode) == effective(result.resource)
    return result


EXAMPLE_FILES = sorted(glob.glob(os.path.join(EXAMPLES, "*.yaml")))


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[os.path.basename(p) for p in EXAMPLE_FILES])
def test_importing_the_render_of_every_example_gives_back_an_equivalent_policy(path, mode):
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    try:
        load(copy.deepcopy(data), mode)
    except PolicyError:
        pytest.skip("the example is written for the other mode")
    result = round_trip(data, mode)
    # every generated object is accounted for: deleted after the cut-over or kept with a reason
    assert all(o["action"] != "keep" or o["kind"] in ("Sidecar", "Gateway") and o["why"]
               for o in result.report["objects"]), result.report["objects"]


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=generated_policies())
def test_importing_the_render_of_generated_policies_gives_back_an_equivalent_policy(mode, data):
    try:
        load(copy.deepcopy(data), mode)
    except PolicyError:
        assume(False)
    round_trip(data, mode)


def test_the_round_trip_would_see_a_lost_grant():
    data = yaml.safe_load(open(os.path.join(EXAMPLES, "seed-2-https-upgrade.yaml")))
    fewer = copy.deepcopy(data)
    fewer["spec"]["egressRules"][1]["from"] = [{"namespace": "other"}]
    assert effective(data) != effective(fewer)


# ---------------------------------------------------------------------------- the recipes


def test_http_through_the_gateway_imports_with_the_port_the_sidecar_route_sends_to():
    result = imported("http-gateway", sources=["default"])
    assert isinstance(result, Imported) and isinstance(result.policy, Policy)
    (entry,) = entries(result).values()
    assert entry["hosts"] == ["weather.example.com"]
    assert entry["port"] == {"name": "http-port", "number": 80, "protocol": "HTTP"}
    assert entry["byEgressGateway"] == {"port": 80}
    assert result.route_lines == ["default -> sidecar :80 -> gateway egressgateway-a :80 -> "
                                  "weather.example.com :80 (plain HTTP)"]
    assert [d["what"] for d in result.report["differences"]] == ["gateway", "mtls", "sources"]
    assert [d["name"] for d in result.report["delete"]] == [
        "weather-through-egress-gateway", "egressgateway-for-weather", "egress-weather",
        "weather"]


def test_plain_and_mutual_hops_and_both_api_generations_import_the_same():
    plain = imported("http-gateway", sources=["default"])
    mutual = imported("http-gateway-mutual", sources=["default"])
    assert plain.resource == mutual.resource
    assert "mtls" not in [d["what"] for d in mutual.report["differences"]]


def test_tls_origination_at_the_gateway_becomes_an_https_upgrade():
    result = imported("tls-origination", sources=["default"])
    (entry,) = entries(result).values()
    assert entry["httpsUpgrade"] == {"enabled": True, "port": 443}
    assert entry["byEgressGateway"] == {"port": 80}
    assert "tls" not in entry  # SIMPLE with the host as SNI: what an upgrade does by itself
    assert ("DestinationRule default/originate-tls-for-catalog",
            "spec.trafficPolicy.loadBalancer") in [
        (i["object"], i["path"]) for i in result.report["not_carried"]]
    assert action(result, "DestinationRule default/originate-tls-for-catalog") == "delete"


def test_passthrough_by_sni_for_several_hosts_with_sources_from_the_gateway_policy():
    result = imported("tls-passthrough")
    found = entries(result)
    assert found["payments"]["hosts"] == ["api.payments.example.net"]
    assert found["maps"]["hosts"] == ["maps.example.net", "tiles.maps.example.net"]
    assert {t["port"]["protocol"] for t in found.values()} == {"HTTPS"}
    assert result.resource["spec"]["egressRules"][0]["from"] == [{"namespace": "shop"}]
    assert result.report["entries"][0]["sources_from"].startswith(
        "AuthorizationPolicy istio-system/egress-callers")
    assert action(result, "AuthorizationPolicy istio-system/egress-callers") == "delete"


def test_tcp_by_address_through_a_dedicated_port_with_sources_from_export_to():
    result = imported("tcp-by-address")
    (entry,) = entries(result).values()
    assert entry["hosts"] == ["192.0.2.40/32"] and entry["byEgressGateway"] == {"port": 7777}
    assert result.resource["spec"]["egressRules"][0]["from"] == [{"namespace": "billing"}]
    assert result.report["entries"][0]["sources_from"].startswith("exportTo")


def test_ambient_service_entries_bound_to_a_waypoint():
    result = imported("ambient-waypoint")
    spec = result.resource["spec"]
    assert spec["mode"] == "ambient"
    assert spec["waypoint"] == {"name": "egress-waypoint", "create": False}
    (entry,) = entries(result).values()
    assert entry["httpsUpgrade"] == {"enabled": True, "port": 443}
    # no sni in the DestinationRule: Istio's automatic SNI and name check, kept by tls
    assert entry["tls"] == {"mode": "SIMPLE"}
    assert entry["http"] == {"methods": ["GET", "POST"]}
    assert spec["egressRules"][0]["from"] == [{"namespace": "orders"}]
    assert action(result, "Gateway istio-egress/egress-waypoint") == "keep"
    assert [d["step"] for d in result.report["delete"]] == [1, 2, 2]


def test_mutual_origination_with_a_credential_and_the_last_hops_limits():
    result = imported("mutual-origination")
    (entry,) = entries(result).values()
    assert entry["tls"] == {"mode": "MUTUAL", "credentialName": "ledger-client",
                            "sni": "ledger.bank.example",
                            "subjectAltNames": ["ledger.bank.example"]}
    assert entry["trafficPolicy"] == {
        "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "3s"}},
        "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s",
                             "baseEjectionTime": "30s"}}
    assert entry["byEgressGateway"] == {"port": 8080}
    assert [s["namespace"] for s in result.resource["spec"]["egressRules"][0]["from"]] == [
        "billing", "finance"]
    assert ("DestinationRule istio-system/originate-mtls-for-ledger",
            "spec.trafficPolicy.portLevelSettings[0].connectionPool.tcp.maxConnectionDuration") in [
        (i["object"], i["path"]) for i in result.report["not_carried"]]


def test_sidecar_scopes_service_accounts_methods_paths_timeouts_and_retries():
    result = imported("scoped-and-principals")
    rules = result.resource["spec"]["egressRules"]
    assert rules[0]["from"] == [{"namespace": "analytics"},
                                {"namespace": "audit", "workloadSelector": {"app": "reporter"}}]
    assert rules[1]["from"] == [{"namespace": "analytics", "serviceAccounts": ["uploader"]}]
    assert rules[1]["to"][0]["http"] == {
        "methods": ["POST", "PUT"], "pathPrefixes": ["/v2/"], "timeout": "20s",
        "retries": {"attempts": 2, "perTryTimeout": "5s", "retryOn": "5xx"}}
    assert action(result, "Sidecar audit/reporter") == "keep"


def test_a_wildcard_routed_to_one_host_keeps_that_host_first():
    (entry,) = entries(imported("wildcard-gateway")).values()
    assert entry["hosts"] == ["www.wiki.example", "*.wiki.example"]


# ---------------------------------------------------------------------------- mistakes


def test_a_subset_no_destination_rule_defines_is_reported_not_imported():
    errors = failure(recipe("missing-subset"), sources=["default"])
    assert errors[0] == "no route could be imported into a policy"
    assert errors[1].startswith("VirtualService default/weather-through-egress-gateway: spec: "
                                "routes weather.example.com to subset weather of "
                                "istio-egressgateway.istio-system.svc.cluster.local, which no "
                                "DestinationRule defines")


def test_a_virtual_service_missing_the_mesh_gateway_is_reported_not_imported():
    errors = failure(recipe("missing-mesh-gateway"), sources=["default"])
    assert errors[1].startswith("VirtualService default/weather-through-egress-gateway: "
                                "spec.http[0].match[0].gateways: names mesh, but spec.gateways "
                                "(egress-weather) does not")


def test_a_gateway_server_that_ends_mutual_tls_as_https_is_reported_not_imported():
    errors = failure(recipe("https-server-ends-mutual-tls"))
    assert errors[0] == "no route could be imported into a policy"
    assert errors[1].startswith("VirtualService docs/wiki-through-egress-gateway: spec: sidecars "
                                "send *.wiki.example to "
                                "istio-egressgateway.istio-system.svc.cluster.local port 443")
    assert errors[1].endswith("Gateway istio-system/egress-wiki: spec.servers[0] ends TLS with "
                              "protocol HTTPS and serves only HTTP behind it, so the route's "
                              "tcp/tls match never applies there (protocol TLS carries it); not "
                              "imported")


def test_weights_are_reported_not_imported():
    errors = failure(recipe("weights"), sources=["default"])
    assert "spec.http[0].route: traffic is split by weight between 2 destinations" in errors[1]


def test_fault_injection_and_mirrors_are_reported_and_the_clean_route_imports():
    result = imported("fault-and-mirror", sources=["default"])
    assert [e["hosts"] for e in entries(result).values()] == [["c.example.com"]]
    assert not_imported(result) == [
        ("VirtualService default/a-through-egress-gateway", "spec.http[0].fault"),
        ("VirtualService default/b-through-egress-gateway", "spec.http[1].mirror")]
    assert action(result, "VirtualService default/a-through-egress-gateway") == "keep"
    assert action(result, "VirtualService default/c-through-egress-gateway") == "delete"
    # the ServiceEntry also registers the hosts not imported: kept
    assert action(result, "ServiceEntry default/apis") == "keep"


def test_two_routes_for_one_host_and_a_host_no_service_entry_declares():
    result = imported("undeclared-and-two-routes", sources=["default"])
    assert [e["hosts"] for e in entries(result).values()] == [["sports.example.com"]]
    assert not_imported(result) == [
        ("VirtualService default/weather-unregistered", "spec.hosts"),
        ("VirtualService default/news-through-egress-gateway", "spec"),
        ("VirtualService default/news-copy", "spec")]
    why = result.report["not_imported"][1]["why"]
    assert "also routed by VirtualService default/news-copy" in why


def test_a_route_nobody_names_sources_for_fails_with_how_to_give_them():
    errors = failure(recipe("http-gateway"))
    assert errors == [
        "VirtualService default/weather-through-egress-gateway: weather.example.com port 80 "
        "(HTTP) has no source: no AuthorizationPolicy names who may use it, and VirtualService "
        "default/weather-through-egress-gateway and ServiceEntry default/weather are exported to "
        "every namespace; name the namespaces that call it: SOURCES=ns1,ns2 (make import), "
        "egress_import_sources (playbooks/import.yml) or sources (the egress_policy_import "
        "module)"]


def test_a_route_hidden_from_the_gateway_is_reported_with_why():
    objects = recipe("mutual-origination")
    objects[3]["spec"]["exportTo"] = [".", "finance"]
    errors = failure(objects)
    assert "not exported to the gateway's namespace istio-system, so the gateway does not see " \
           "them: VirtualService billing/ledger-through-egress-gateway" in errors[1]


# ---------------------------------------------------------------------------- modes and input


def test_sidecar_and_ambient_routes_together_need_a_mode():
    both = recipe("tls-passthrough") + recipe("ambient-waypoint")
    (error,) = failure(both)
    assert error.startswith("mode: the objects hold routes through an egress gateway")
    result = run_import(both, "egressgateway-a", mode="ambient")
    assert result.resource["spec"]["mode"] == "ambient"
    assert [i["why"][:40] for i in result.report["not_imported"]] == [
        "a route of sidecar mode (api.payments.ex", "a route of sidecar mode (maps.example.ne"]


def test_bad_parameters_and_input_fail_with_every_reason():
    errors = failure([42, {"kind": "ServiceEntry"}], gateway="Bad_Gateway",
                     sources=["ok", "Not OK"], mode="proxy")
    assert errors == [
        "gateway: must be a DNS-1123 label of at most 32 characters (the egress gateway the "
        "policy routes through), got 'Bad_Gateway'",
        "sources[1]: must be a namespace name (DNS-1123 label), got 'Not OK'",
        "mode: must be one of auto, sidecar, ambient, got 'proxy'",
        "objects[0]: must be a Kubernetes object (a mapping), got an integer",
        "objects[1]: not a Kubernetes object: apiVersion, metadata.name missing"]


def test_nothing_to_import_says_so():
    (error,) = failure([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert error.startswith("no route could be imported into a policy: the objects hold no "
                            "route through an egress gateway")


def test_objects_the_collection_generated_are_ignored_unless_asked():
    rendered = render(yaml.safe_load(open(os.path.join(EXAMPLES, "seed-1-http.yaml"))))
    errors = failure(rendered["objects"])
    assert errors == ["no route could be imported into a policy: the objects hold no route "
                      "through an egress gateway (sidecar mode) and no ServiceEntry bound to a "
                      "waypoint (ambient mode)"]
    policy, report = import_policy(rendered["objects"], "egressgateway-a", skip_managed=False)
    assert policy.gateway == "egressgateway-a" and report["summary"]["entries"] == 1
