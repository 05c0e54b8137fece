"""Ambient mode: the same policy as ServiceEntries behind a waypoint (docs/ambient.md).

Structure of the seed examples' objects, the errors and warnings of what ambient mode cannot
express (exact messages), golden files (``UPDATE_GOLDEN=1 make unit`` regenerates them), and
sidecar-mode output left as it was.
"""
import copy
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SEEDS, check_golden, errors, example, http, https, params, tcp, warnings

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import (
    expand,
    load,
    render,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import ambient as ambient_mode
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.ambient.services import (
    Group,
    authorization_policy,
    entry_keys,
    rules_by_entry,
    service_groups,
    upstream_rules,
    virtual_services,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.ambient.waypoint import (
    WaypointRef,
    default_waypoint_name,
    waypoint_gateway,
    waypoint_ref,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    MANAGED_BY_KEY,
    POLICY_KEY,
    short_hash,
)

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
WAYPOINT = "egressgateway-a-waypoint"
NS = "istio-egress"
SE_REF = {"group": "networking.istio.io", "kind": "ServiceEntry"}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def ambient(data):
    return expand(copy.deepcopy(data), "ambient")[0]


def index(objects):
    return {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}


def get(objects, kind, name, namespace=NS):
    return index(objects)[(kind, namespace, name)]


def kinds(objects, kind):
    return [o for o in objects if o["kind"] == kind]


@pytest.fixture(scope="module")
def seed1():
    return render(example("seed-1-http"), "ambient")


@pytest.fixture(scope="module")
def seed2():
    return render(example("seed-2-https-upgrade"), "ambient")


@pytest.fixture(scope="module")
def seed3():
    return render(example("seed-3-auto-ports"), "ambient")


# ---------------------------------------------------------------------------- seed 1: HTTP


def test_seed1_waypoint(seed1):
    gateway = get(seed1["objects"], "Gateway", WAYPOINT)
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway["metadata"]["labels"] == {
        MANAGED_BY_KEY: "servicemesh.egress", POLICY_KEY: "egress-by-egressgateway-a",
        "istio.io/waypoint-for": "service"}
    # same namespace as the ServiceEntries: no allowedRoutes (Istio's default "Same" suffices)
    assert gateway["spec"] == {
        "gatewayClassName": "istio-waypoint",
        "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
    }


def test_seed1_service_entry_uses_the_waypoint(seed1):
    se = get(seed1["objects"], "ServiceEntry", "egressgateway-a-httpbin-service-http")
    assert se["metadata"]["labels"]["istio.io/use-waypoint"] == WAYPOINT
    assert "istio.io/use-waypoint-namespace" not in se["metadata"]["labels"]
    assert se["spec"] == {
        "hosts": ["www.httpbin.org", "httpbin.org"],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
        "resolution": "DNS",
        "exportTo": ["."],
    }


def test_seed1_authorization_targets_the_service_entry(seed1):
    policy = get(seed1["objects"], "AuthorizationPolicy", "egressgateway-a-httpbin-service-http")
    assert policy["apiVersion"] == "security.istio.io/v1"
    assert policy["spec"] == {
        "targetRefs": [dict(SE_REF, name="egressgateway-a-httpbin-service-http")],
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"namespaces": ["mytest"]}}],
                   "to": [{"operation": {"ports": ["80"]}}]}],
    }
    assert "selector" not in policy["spec"]  # waypoints ignore selector policies


def test_seed1_apply_order_puts_service_entries_last(seed1):
    assert [(o["kind"], o["metadata"]["name"]) for o in seed1["objects"]] == [
        ("Gateway", WAYPOINT),
        ("AuthorizationPolicy", "egressgateway-a-httpbin-service-http"),
        ("ServiceEntry", "egressgateway-a-httpbin-service-http"),
    ]


def test_seed1_warnings(seed1):
    assert seed1["warnings"] == [
        "spec.egressRules[0].from[0].workloadSelector: cannot be enforced in ambient mode: the "
        "waypoint authorizes by identity, not by pod labels, so it admits every workload of "
        "namespace mytest; list the selected workloads' service accounts in "
        "spec.egressRules[0].from[0].serviceAccounts to narrow it",
        "spec.egressRules[0].to[0].byEgressGateway.port: ignored in ambient mode: workloads "
        "reach the waypoint through ztunnel on its HBONE port 15008, there are no gateway ports",
    ]


def test_seed1_routes(seed1):
    assert seed1["route_lines"] == [
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :80 -> waypoint %s -> "
        "www.httpbin.org :80 (plain HTTP)" % WAYPOINT,
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :80 -> waypoint %s -> "
        "httpbin.org :80 (plain HTTP)" % WAYPOINT,
    ]
    record = seed1["routes"][1]
    assert record == {
        "rule": 0, "entry": "httpbin-service-http",
        "source": {"namespace": "mytest", "workload_selector": {"app": "sleep-a"},
                   "service_accounts": []},
        "host": "httpbin.org", "service_host": "httpbin.org", "protocol": "HTTP", "port": 80,
        "waypoint": {"name": WAYPOINT, "namespace": NS},
        "service_entry": {"name": "egressgateway-a-httpbin-service-http", "namespace": NS},
        # each host is a service of its own in ambient mode: resolved by itself, not via H[0]
        "upstream": {"host": "httpbin.org", "port": 80, "tls": "plain", "sni": None,
                     "resolves": ["httpbin.org"]},
        "admitted": {"namespaces": ["mytest"], "principals": []},
        "by_address": False,
    }


def test_gateway_info_is_the_waypoint_without_service_ports(seed1):
    assert seed1["mode"] == "ambient"
    assert seed1["gateway"] == {
        "name": WAYPOINT, "namespace": NS, "kind": "waypoint", "create": True,
        "service": WAYPOINT + ".istio-egress.svc.cluster.local", "service_name": WAYPOINT,
        "labels": {"gateway.networking.k8s.io/gateway-name": WAYPOINT},
        "ports": [],
    }


# ---------------------------------------------------------------------------- seed 2: upgrade


def test_seed2_shared_hosts_make_one_service_entry_with_target_port(seed2):
    entries = kinds(seed2["objects"], "ServiceEntry")
    assert [e["metadata"]["name"] for e in entries] == [
        "egressgateway-a-httpbin-service-http", "egressgateway-a-aliyun-service-https"]
    httpbin = entries[0]["spec"]
    assert httpbin["hosts"] == ["www.httpbin.org", "httpbin.org"]
    assert httpbin["ports"] == [
        {"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443},
        {"number": 443, "name": "https", "protocol": "HTTPS"},
    ]
    hosts = [h for e in entries for h in e["spec"]["hosts"]]
    assert len(hosts) == len(set(hosts))  # one ServiceEntry per host, mesh-wide


def test_seed2_tls_origination_only_on_the_upgraded_port(seed2):
    rules = kinds(seed2["objects"], "DestinationRule")
    assert sorted(r["spec"]["host"] for r in rules) == ["httpbin.org", "www.httpbin.org"]
    for rule in rules:
        host = rule["spec"]["host"]
        assert rule["metadata"]["name"].startswith("egressgateway-a-httpbin-service-http-tls-")
        assert rule["spec"]["exportTo"] == ["."]
        # port-level only: the passthrough port 443 of the same host keeps the application's TLS
        assert rule["spec"]["trafficPolicy"] == {"portLevelSettings": [
            {"port": {"number": 80}, "tls": {"mode": "SIMPLE", "sni": host,
                                             "caCertificates": CA_BUNDLE}}]}


def test_seed2_authorization_per_entry_port(seed2):
    objects = seed2["objects"]
    httpbin = get(objects, "AuthorizationPolicy", "egressgateway-a-httpbin-service-http")["spec"]
    assert httpbin["targetRefs"] == [dict(SE_REF, name="egressgateway-a-httpbin-service-http")]
    assert [r["to"][0]["operation"]["ports"] for r in httpbin["rules"]] == [["80"], ["443"]]
    aliyun = get(objects, "AuthorizationPolicy", "egressgateway-a-aliyun-service-https")["spec"]
    assert aliyun["rules"] == [{"from": [{"source": {"namespaces": ["mytest"]}}],
                                "to": [{"operation": {"ports": ["443"]}}]}]


def test_seed2_routes(seed2):
    assert seed2["route_lines"] == [
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :80 -> waypoint %s -> "
        "www.httpbin.org :443 (HTTP upgraded: TLS originated at the waypoint, SNI "
        "www.httpbin.org)" % WAYPOINT,
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :80 -> waypoint %s -> "
        "httpbin.org :443 (HTTP upgraded: TLS originated at the waypoint, SNI httpbin.org)"
        % WAYPOINT,
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :443 -> waypoint %s -> "
        "www.httpbin.org :443 (TLS passthrough: the application's own TLS, SNI "
        "www.httpbin.org)" % WAYPOINT,
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :443 -> waypoint %s -> "
        "httpbin.org :443 (TLS passthrough: the application's own TLS, SNI httpbin.org)"
        % WAYPOINT,
        "mytest/app=sleep-b (selector not enforced) -> ztunnel :443 -> waypoint %s -> "
        "www.aliyun.com :443 (TLS passthrough: the application's own TLS, SNI www.aliyun.com)"
        % WAYPOINT,
    ]


def test_seed2_warns_for_every_gateway_port_and_selector(seed2):
    assert [w.split(":")[0] for w in seed2["warnings"]] == [
        "spec.egressRules[0].from[0].workloadSelector",
        "spec.egressRules[0].to[0].byEgressGateway.port",
        "spec.egressRules[0].to[1].byEgressGateway.port",
        "spec.egressRules[1].from[0].workloadSelector",
        "spec.egressRules[1].to[0].byEgressGateway.port",
    ]


def test_several_hosts_warning_is_sidecar_only():
    data = example("seed-1-http")
    sidecar = warnings(data)
    assert any("must resolve to the same IP address" in w for w in sidecar)
    assert not any("must resolve to the same IP address" in w for w in warnings(data, "ambient"))


# ---------------------------------------------------------------------------- seed 3: HTTP, TCP


def test_seed3_service_entries(seed3):
    entries = {e["metadata"]["name"]: e["spec"] for e in kinds(seed3["objects"], "ServiceEntry")}
    assert list(entries) == [
        "egressgateway-a-aliyun-com-http", "egressgateway-a-https-upgrade",
        "egressgateway-a-tcp-svc1", "egressgateway-a-tcp-svc2"]
    assert entries["egressgateway-a-aliyun-com-http"]["ports"] == [
        {"number": 80, "name": "http", "protocol": "HTTP"},
        {"number": 443, "name": "https", "protocol": "HTTPS"}]
    assert entries["egressgateway-a-https-upgrade"]["ports"] == [
        {"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443}]
    assert entries["egressgateway-a-tcp-svc1"] == {
        "hosts": ["tcp-svc1.egressgateway-a.egress.internal"],
        "addresses": ["1.1.1.1"],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 44, "name": "tcp", "protocol": "TCP"}],
        "resolution": "STATIC",
        "endpoints": [{"address": "1.1.1.1"}],
        "exportTo": ["."],
    }
    assert entries["egressgateway-a-tcp-svc2"] == {
        "hosts": ["test-tcp.com"], "location": "MESH_EXTERNAL",
        "ports": [{"number": 444, "name": "tcp", "protocol": "TCP"}],
        "resolution": "DNS", "exportTo": ["."]}


def test_seed3_origination_and_authorization(seed3):
    objects = seed3["objects"]
    rule = get(objects, "DestinationRule", "egressgateway-a-https-upgrade-tls")["spec"]
    assert rule == {"host": "taobao.com", "exportTo": ["."], "trafficPolicy": {
        "portLevelSettings": [{"port": {"number": 80},
                               "tls": {"mode": "SIMPLE", "sni": "taobao.com",
                                       "caCertificates": CA_BUNDLE}}]}}
    policies = kinds(objects, "AuthorizationPolicy")
    assert [(p["spec"]["targetRefs"][0]["name"],
             [r["to"][0]["operation"]["ports"] for r in p["spec"]["rules"]]) for p in policies] == [
        ("egressgateway-a-aliyun-com-http", [["80"], ["443"]]),
        ("egressgateway-a-https-upgrade", [["80"]]),
        ("egressgateway-a-tcp-svc1", [["44"]]),
        ("egressgateway-a-tcp-svc2", [["444"]]),
    ]


def test_seed3_routes_and_warnings(seed3):
    assert seed3["route_lines"][3:] == [
        "default/app=sleep (selector not enforced) -> ztunnel :44 -> waypoint %s -> 1.1.1.1 :44 "
        "(plain TCP)" % WAYPOINT,
        "default/app=sleep (selector not enforced) -> ztunnel :444 -> waypoint %s -> "
        "test-tcp.com :444 (plain TCP)" % WAYPOINT,
    ]
    assert seed3["routes"][3]["service_host"] == "tcp-svc1.egressgateway-a.egress.internal"
    assert seed3["routes"][3]["by_address"] is True
    assert seed3["warnings"][1] == (
        "spec.egressRules[0].to[4].hosts: TCP by host name in ambient mode relies on ztunnel's "
        "DNS proxy and Istio's address auto-allocation (cni.ambient.dnsCapture and "
        "PILOT_ENABLE_IP_AUTOALLOCATE, on by default since Istio 1.25): ztunnel tells "
        "test-tcp.com apart from other TCP traffic on port 444 only by the address allocated to "
        "its ServiceEntry")
    assert len(seed3["warnings"]) == 2
    assert seed3["gateway"]["ports"] == []  # no automatic gateway ports in ambient mode


# ---------------------------------------------------------------------------- every object


@pytest.mark.parametrize("name", SEEDS)
def test_every_object_owned_and_validly_named(name):
    objects = ambient(example(name))
    seen = set()
    for obj in objects:
        meta = obj["metadata"]
        assert meta["labels"][MANAGED_BY_KEY] == "servicemesh.egress"
        assert meta["labels"][POLICY_KEY] == "egress-by-egressgateway-a"
        assert _NAME.match(meta["name"]) and len(meta["name"]) <= 253
        key = (obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        assert key not in seen
        seen.add(key)
    assert objects == ambient(example(name))  # deterministic


def test_no_object_name_clashes_with_sidecar_mode():
    """Both sets can exist at once while a policy changes mode (docs/ambient.md, migration)."""
    for name in SEEDS:
        sidecar = set((o["apiVersion"], o["kind"], o["metadata"]["namespace"],
                       o["metadata"]["name"]) for o in expand(example(name))[0])
        for obj in ambient(example(name)):
            meta = obj["metadata"]
            assert (obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]) not in sidecar


# ---------------------------------------------------------------------------- golden files


# partner-tls-ambient: every extension of the last hop (tls, trafficPolicy, dynamicDns wildcards)
@pytest.mark.parametrize("name", SEEDS + ("partner-tls-ambient",))
@pytest.mark.parametrize("file_name", ["policy.yaml", "resources.yaml", "routes.json",
                                       "routes.txt"])
def test_golden(name, file_name):
    files = render_files(example(name), "ambient")[1]
    check_golden(os.path.join(GOLDEN, "ambient", name, file_name + ".golden"), files[file_name])


@pytest.mark.parametrize("name", SEEDS)
def test_sidecar_output_unchanged_by_an_ambient_render(name):
    """No state leaks from an ambient render into sidecar mode (test_bundle.py holds the sidecar
    output itself byte for byte)."""
    before = render_files(example(name))[1]
    render_files(example(name), "ambient")
    assert render_files(example(name), "sidecar")[1] == before
    assert render_files(example(name))[1] == before


# ---------------------------------------------------------------------------- mode selection


def test_mode_written_in_the_policy_and_overridden_by_the_argument():
    data = params(http(), mode="ambient")
    assert load(copy.deepcopy(data)).mode == "ambient"
    assert any(o["kind"] == "Sidecar" for o in expand(copy.deepcopy(data), "sidecar")[0]) is False
    assert kinds(expand(copy.deepcopy(data))[0], "Gateway")[0]["apiVersion"] == (
        "gateway.networking.k8s.io/v1")
    assert kinds(expand(copy.deepcopy(data), "sidecar")[0], "Gateway")[0]["apiVersion"] == (
        "networking.istio.io/v1")


def test_resource_spelling_with_mode_and_waypoint():
    data = example("seed-1-http")
    data["spec"]["mode"] = "ambient"
    data["spec"]["waypoint"] = {"name": "shared", "namespace": "egress-system", "create": False}
    result = render(data)
    assert result["mode"] == "ambient"
    assert result["policy"]["spec"]["waypoint"] == {
        "name": "shared", "namespace": "egress-system", "create": False}
    assert result["route_lines"][0].startswith(
        "mytest/app=sleep-a (selector not enforced) -> ztunnel :80 -> waypoint "
        "egress-system/shared -> ")


def test_a_sidecar_policy_rendered_in_ambient_mode_gets_the_ambient_checks():
    objects, found = expand(example("seed-1-http"), "ambient")
    assert kinds(objects, "Gateway")[0]["metadata"]["name"] == WAYPOINT
    assert [w.split(":")[0] for w in found] == [
        "spec.egressRules[0].from[0].workloadSelector",
        "spec.egressRules[0].to[0].byEgressGateway.port"]


def test_partial_gateway_ports_do_not_warn_about_assignment_in_ambient_mode():
    data = params(http(name="a", hosts=["a.example.com"], gateway_port=8080),
                  http(name="b", hosts=["b.example.com"]))
    assert any("assigned" in w for w in warnings(data))
    assert warnings(data, "ambient") == [
        "egress_rules[0].to[0].gateway_port: ignored in ambient mode: workloads reach the "
        "waypoint through ztunnel on its HBONE port 15008, there are no gateway ports"]


def test_policy_errors_are_the_same_in_ambient_mode():
    data = params(http(name="Bad_Name"))
    assert errors(data, "ambient") == errors(data)


# ---------------------------------------------------------------------------- identities, L7


def test_service_accounts_become_principals():
    data = params(http(), sources=[
        {"namespace": "mytest", "service_accounts": ["sleep-a", "sleep-b"]},
        {"namespace": "other"}])
    policy = kinds(ambient(data), "AuthorizationPolicy")[0]["spec"]
    assert policy["rules"] == [{
        "from": [{"source": {"namespaces": ["other"]}},
                 {"source": {"principals": ["*/ns/mytest/sa/sleep-a", "*/ns/mytest/sa/sleep-b"]}}],
        "to": [{"operation": {"ports": ["80"]}}],
    }]
    result = render(data, "ambient")
    assert result["routes"][0]["admitted"] == {
        "namespaces": [], "principals": ["*/ns/mytest/sa/sleep-a", "*/ns/mytest/sa/sleep-b"]}
    assert result["route_lines"][0].startswith("mytest (sa: sleep-a,sleep-b) -> ztunnel :80 ")
    assert result["warnings"] == []


def test_selector_with_service_accounts_warns_that_the_accounts_decide():
    data = params(http(), sources=[{"namespace": "mytest", "workload_selector": {"app": "a"},
                                    "service_accounts": ["a"]}])
    assert warnings(data, "ambient") == [
        "egress_rules[0].from[0].workload_selector: not enforced in ambient mode (waypoints "
        "authorize by identity, not by pod labels): the service accounts in "
        "egress_rules[0].from[0].service_accounts decide which workloads of namespace mytest are "
        "admitted"]
    line = render(data, "ambient")["route_lines"][0]
    assert line.startswith("mytest/app=a (sa: a) -> ztunnel :80 ")


def test_methods_and_path_prefixes_in_the_authorization():
    data = params(http(http={"methods": ["get", "HEAD"], "path_prefixes": ["/status", "/get"]}))
    policy = kinds(ambient(data), "AuthorizationPolicy")[0]["spec"]
    assert policy["rules"][0]["to"] == [{"operation": {
        "ports": ["80"], "methods": ["GET", "HEAD"], "paths": ["/status*", "/get*"]}}]
    assert kinds(ambient(data), "VirtualService") == []  # no timeout or retries: no route


def test_timeouts_and_retries_as_one_virtual_service_per_host():
    shaped = http(name="api", hosts=["api.example.com", "api2.example.com"], http={
        "timeout": "5s",
        "retries": {"attempts": 3, "per_try_timeout": "2s", "retry_on": "5xx,reset"}})
    plain_http = http(name="api-alt", hosts=["api.example.com", "api2.example.com"], number=8080)
    objects = ambient(params(shaped, plain_http))
    services = kinds(objects, "VirtualService")
    assert [s["spec"]["hosts"] for s in services] == [["api.example.com"], ["api2.example.com"]]
    for service in services:
        host = service["spec"]["hosts"][0]
        assert service["metadata"]["name"].startswith("egressgateway-a-api-route-")
        assert service["spec"]["exportTo"] == ["."]
        assert "gateways" not in service["spec"]  # bound to mesh: what waypoints read
        assert service["spec"]["http"] == [{
            "name": "api",
            "match": [{"port": 80}],
            "route": [{"destination": {"host": host, "port": {"number": 80}}}],
            "timeout": "5s",
            "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
        }]
    se = kinds(objects, "ServiceEntry")
    assert len(se) == 1 and [p["number"] for p in se[0]["spec"]["ports"]] == [80, 8080]


def test_single_host_virtual_service_name():
    data = params(http(http={"timeout": "1s"}))
    assert [s["metadata"]["name"] for s in kinds(ambient(data), "VirtualService")] == [
        "egressgateway-a-svc-route"]


def test_entries_of_different_rules_on_one_host_are_authorized_separately():
    data = params(http(name="web", hosts=["shop.example.com"]),
                  sources=[{"namespace": "frontend"}])
    data["egress_rules"].append({"from": [{"namespace": "payments"}],
                                 "to": [https(name="web-tls", hosts=["shop.example.com"])]})
    objects = ambient(data)
    assert len(kinds(objects, "ServiceEntry")) == 1
    rules = kinds(objects, "AuthorizationPolicy")[0]["spec"]["rules"]
    assert rules == [
        {"from": [{"source": {"namespaces": ["frontend"]}}],
         "to": [{"operation": {"ports": ["80"]}}]},
        {"from": [{"source": {"namespaces": ["payments"]}}],
         "to": [{"operation": {"ports": ["443"]}}]},
    ]


# ---------------------------------------------------------------------------- grouping


def test_partly_shared_hosts_split_into_groups():
    data = params(http(name="a", hosts=["one.example.com", "two.example.com"]),
                  https(name="b", hosts=["two.example.com"]))
    entries = kinds(ambient(data), "ServiceEntry")
    assert [(e["metadata"]["name"][:len("egressgateway-a-a")], e["spec"]["hosts"],
             [p["number"] for p in e["spec"]["ports"]]) for e in entries] == [
        ("egressgateway-a-a", ["one.example.com"], [80]),
        ("egressgateway-a-a", ["two.example.com"], [80, 443]),
    ]
    assert entries[0]["metadata"]["name"] != entries[1]["metadata"]["name"]
    assert re.match(r"^egressgateway-a-a-[0-9a-f]{8}$", entries[0]["metadata"]["name"])


def test_each_address_is_a_service_entry_of_its_own():
    data = params(tcp(name="db", hosts=["10.0.0.1", "10.0.0.2/32"], number=5432),
                  tcp(name="db-admin", hosts=["10.0.0.1"], number=5433))
    entries = kinds(ambient(data), "ServiceEntry")
    assert [(e["spec"]["addresses"], [p["number"] for p in e["spec"]["ports"]],
             e["spec"]["endpoints"]) for e in entries] == [
        (["10.0.0.1"], [5432, 5433], [{"address": "10.0.0.1"}]),
        (["10.0.0.2"], [5432], [{"address": "10.0.0.2"}]),
    ]
    for entry in entries:
        name = entry["metadata"]["name"]
        assert entry["spec"]["hosts"] == [
            name[len("egressgateway-a-"):] + ".egressgateway-a.egress.internal"]
        assert entry["spec"]["resolution"] == "STATIC"
    lines = render(data, "ambient")["route_lines"]
    assert [line.split(" -> ")[-1] for line in lines] == [
        "10.0.0.1 :5432 (plain TCP)", "10.0.0.2 :5432 (plain TCP)", "10.0.0.1 :5433 (plain TCP)"]


def test_duplicate_port_names_in_a_merged_service_entry():
    data = params(http(name="a", hosts=["x.example.com"]),
                  http(name="b", hosts=["x.example.com"], number=8080))
    ports = kinds(ambient(data), "ServiceEntry")[0]["spec"]["ports"]
    assert [p["name"] for p in ports] == ["http", "http-8080"]


# ---------------------------------------------------------------------------- the waypoint


def test_waypoint_in_another_namespace_is_created_there_and_allows_istio_egress():
    data = params(http(http={"timeout": "1s"}, https_upgrade={"port": 443}),
                  waypoint={"name": "egress-wp", "namespace": "mesh-egress"})
    objects = ambient(data)
    gateway = get(objects, "Gateway", "egress-wp", "mesh-egress")
    assert gateway["spec"]["listeners"] == [{
        "name": "mesh", "port": 15008, "protocol": "HBONE",
        "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
            "matchLabels": {"kubernetes.io/metadata.name": "istio-egress"}}}},
    }]
    se = kinds(objects, "ServiceEntry")[0]
    assert se["metadata"]["namespace"] == NS
    assert se["metadata"]["labels"]["istio.io/use-waypoint"] == "egress-wp"
    assert se["metadata"]["labels"]["istio.io/use-waypoint-namespace"] == "mesh-egress"
    for obj in objects:
        if obj["kind"] in ("ServiceEntry", "DestinationRule", "VirtualService"):
            assert obj["spec"]["exportTo"] == [".", "mesh-egress"]
    service = render(data, "ambient")["gateway"]["service"]
    assert service == "egress-wp.mesh-egress.svc.cluster.local"
    assert warnings(data, "ambient") == []


def test_existing_waypoint_is_referenced_not_created():
    data = params(http(), waypoint={"name": "shared", "namespace": "infra", "create": False})
    objects = ambient(data)
    assert kinds(objects, "Gateway") == []
    assert kinds(objects, "ServiceEntry")[0]["metadata"]["labels"]["istio.io/use-waypoint"] == (
        "shared")
    assert render(data, "ambient")["gateway"]["create"] is False
    assert warnings(data, "ambient") == [
        "waypoint.create: the policy uses the existing waypoint infra/shared without creating it: "
        "it must exist, be ready and handle service traffic (label istio.io/waypoint-for: service "
        "or all) and its mesh listener must allow namespace istio-egress "
        "(allowedRoutes.namespaces.from: All, or a Selector matching it); otherwise ztunnel sends "
        "the traffic straight to the external hosts, past every policy"]


def test_existing_waypoint_in_istio_egress():
    data = params(http(), waypoint={"name": "shared", "create": False})
    assert warnings(data, "ambient") == [
        "waypoint.create: the policy uses the existing waypoint istio-egress/shared without "
        "creating it: it must exist, be ready and handle service traffic (label "
        "istio.io/waypoint-for: service or all); otherwise ztunnel sends the traffic straight to "
        "the external hosts, past every policy"]
    labels = kinds(ambient(data), "ServiceEntry")[0]["metadata"]["labels"]
    assert "istio.io/use-waypoint-namespace" not in labels


def test_waypoint_name_must_be_a_dns_label_in_ambient_mode():
    data = params(http(), waypoint={"name": "egress.waypoint"})
    assert errors(data) == []  # the model allows a subdomain; sidecar mode does not use it
    assert errors(data, "ambient") == [
        "waypoint.name: must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 "
        "characters) in ambient mode: istiod names the waypoint's Deployment, Service and service "
        "account after it, got 'egress.waypoint'"]


def test_waypoint_named_like_the_gateway_warns():
    data = params(http(), waypoint={"name": "egressgateway-a"})
    assert warnings(data, "ambient") == [
        "waypoint.name: the waypoint is named like the egress gateway egressgateway-a: istiod "
        "names the waypoint's Deployment and Service egressgateway-a in istio-egress, the names "
        "of the sidecar-mode gateway's own Deployment and Service; remove that gateway first or "
        "leave the name out (default egressgateway-a-waypoint)"]


# ---------------------------------------------------------------------------- properties

_labels = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True)
_hosts = st.builds(lambda a, b: "%s.%s" % (a, b), st.sampled_from(["a", "b", "c", "d"]),
                   st.sampled_from(["com", "org"]))


@st.composite
def _policies(draw):
    """Valid-looking policies whose entries share hosts and addresses a lot."""
    rules = []
    index = 0
    for dummy in range(draw(st.integers(1, 3))):
        targets = []
        for dummy in range(draw(st.integers(1, 4))):
            protocol = draw(st.sampled_from(["HTTP", "HTTPS", "TCP"]))
            entry = {"name": "e%d" % index,
                     "hosts": draw(st.lists(_hosts, min_size=1, max_size=3, unique=True)),
                     "port": {"number": draw(st.sampled_from([80, 443, 8080, 5432])),
                              "protocol": protocol}}
            index += 1
            if protocol == "TCP" and draw(st.booleans()):
                entry["hosts"] = draw(st.lists(st.sampled_from(
                    ["192.0.2.1", "192.0.2.2", "192.0.2.3/32"]), min_size=1, max_size=2,
                    unique=True))
            if protocol == "HTTP" and draw(st.booleans()):
                entry["https_upgrade"] = {"port": 443 if entry["port"]["number"] != 443 else 8443}
            if protocol == "HTTP" and draw(st.booleans()):
                entry["http"] = {"methods": ["GET"], "timeout": "3s"}
            targets.append(entry)
        sources = draw(st.lists(st.fixed_dictionaries(
            {"namespace": _labels},
            optional={"workload_selector": st.dictionaries(_labels, _labels, min_size=1,
                                                           max_size=1),
                      "service_accounts": st.lists(_labels, min_size=1, max_size=2)}),
            min_size=1, max_size=2))
        rules.append({"from": sources, "to": targets})
    data = {"gateway": "gw", "egress_rules": rules}
    if draw(st.booleans()):
        data["waypoint"] = {"namespace": draw(_labels), "create": draw(st.booleans())}
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policies())
def test_any_valid_policy_expands_consistently(data):
    try:
        result = render(copy.deepcopy(data), "ambient")
    except PolicyError as exc:  # e.g. the same host and port in two entries: the shared rules
        # ambient mode adds no error of its own for these policies (sidecar mode may add some)
        assert exc.errors and set(exc.errors) <= set(errors(data))
        return
    objects = result["objects"]
    entries = kinds(objects, "ServiceEntry")
    names = [e["metadata"]["name"] for e in entries]
    assert len(names) == len(set(names))
    # every host and address is in exactly one ServiceEntry; every port of one entry is unique
    keys = [k for e in entries for k in e["spec"].get("addresses") or e["spec"]["hosts"]]
    assert len(keys) == len(set(keys))
    for entry in entries:
        numbers = [p["number"] for p in entry["spec"]["ports"]]
        assert len(numbers) == len(set(numbers))
        assert len(set(p["name"] for p in entry["spec"]["ports"])) == len(numbers)
    # every ServiceEntry has its AuthorizationPolicy, with one rule per port
    policies = {p["spec"]["targetRefs"][0]["name"]: p
                for p in kinds(objects, "AuthorizationPolicy")}
    assert sorted(policies) == sorted(names)
    for entry in entries:
        ports = [r["to"][0]["operation"]["ports"] for r in
                 policies[entry["metadata"]["name"]]["spec"]["rules"]]
        assert ports == [[str(p["number"])] for p in entry["spec"]["ports"]]
    # TLS origination exactly on the ports that have a targetPort, per host
    originated = set((h, p["number"]) for e in entries for h in e["spec"]["hosts"]
                     for p in e["spec"]["ports"] if "targetPort" in p)
    rules = kinds(objects, "DestinationRule")
    assert set((r["spec"]["host"], s["port"]["number"]) for r in rules
               for s in r["spec"]["trafficPolicy"]["portLevelSettings"]) == originated
    assert len(set(r["spec"]["host"] for r in rules)) == len(rules)
    # one record per (entry, host or address, source); every line names the waypoint
    assert len(result["routes"]) == len(result["route_lines"])
    waypoint = result["gateway"]["name"]
    assert all(" -> waypoint " in line and waypoint in line for line in result["route_lines"])
    # unique object identities
    identities = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects]
    assert len(identities) == len(set(identities))


def test_a_policy_without_gateway_is_an_error_list_in_ambient_mode_too():
    data = {"egress_rules": [{"from": [{"namespace": "shop"}], "to": [
        {"name": "a", "hosts": ["a.example.com"], "port": {"number": 443, "protocol": "HTTPS"}}]}]}
    with pytest.raises(PolicyError) as raised:
        expand(data, "ambient")
    assert raised.value.errors == ["gateway: is required"]


# ---------------------------------------------------------------------------- building blocks


def test_waypoint_ref_defaults_and_written_values():
    loaded = load(example("seed-1-http"), "ambient")
    ref = waypoint_ref(loaded.policy)
    assert isinstance(ref, WaypointRef)
    assert (ref.name, ref.namespace, ref.create, ref.cross_namespace, ref.ref()) == (
        WAYPOINT, NS, True, False, WAYPOINT)
    assert default_waypoint_name("egw") == "egw-waypoint"
    shared = load(params(http(), waypoint={"name": "w", "namespace": "mesh", "create": False}),
                  "ambient")
    ref = waypoint_ref(shared.policy)
    assert (ref.name, ref.namespace, ref.create, ref.cross_namespace, ref.ref()) == (
        "w", "mesh", False, True, "mesh/w")


def test_waypoint_gateway_allows_istio_egress_only_across_namespaces():
    same = load(params(http()), "ambient").policy
    listener = waypoint_gateway(same, waypoint_ref(same))["spec"]["listeners"][0]
    assert listener == {"name": "mesh", "port": 15008, "protocol": "HBONE"}
    other = load(params(http(), waypoint={"namespace": "mesh"}), "ambient").policy
    listener = waypoint_gateway(other, waypoint_ref(other))["spec"]["listeners"][0]
    assert listener["allowedRoutes"] == {"namespaces": {"from": "Selector", "selector": {
        "matchLabels": {"kubernetes.io/metadata.name": "istio-egress"}}}}


def test_entry_keys_are_hosts_or_plain_addresses():
    policy = load(params(http(hosts=["a.example.com", "b.example.com"]),
                         tcp(name="db", hosts=["192.0.2.1/32", "192.0.2.2"])), "ambient").policy
    web, db = policy.targets()
    assert entry_keys(web) == ["a.example.com", "b.example.com"]
    assert entry_keys(db) == ["192.0.2.1", "192.0.2.2"]


def test_service_groups_split_hosts_by_the_entries_that_share_them():
    policy = load(params(http(name="a", hosts=["x.example.com", "y.example.com"]),
                         https(name="b", hosts=["y.example.com"])), "ambient").policy
    groups = service_groups(policy)
    assert all(isinstance(g, Group) for g in groups)
    assert [(g.name, g.hosts, [t.name for t in g.targets]) for g in groups] == [
        ("egressgateway-a-a-" + short_hash("x.example.com", 8), ["x.example.com"], ["a"]),
        ("egressgateway-a-a-" + short_hash("y.example.com", 8), ["y.example.com"], ["a", "b"]),
    ]


def test_origination_rules_and_virtual_services_per_host_of_a_group():
    data = params(http(hosts=["a.example.com", "b.example.com"],
                       https_upgrade={"enabled": True, "port": 443},
                       http={"timeout": "5s"}))
    policy = load(data, "ambient").policy
    waypoint = waypoint_ref(policy)
    (group,) = service_groups(policy)
    rules = upstream_rules(policy, waypoint, group)
    assert [r["spec"]["host"] for r in rules] == ["a.example.com", "b.example.com"]
    assert rules[0]["spec"]["trafficPolicy"]["portLevelSettings"] == [{
        "port": {"number": 80},
        "tls": {"mode": "SIMPLE", "sni": "a.example.com", "caCertificates": CA_BUNDLE}}]
    services = virtual_services(policy, waypoint, group)
    assert [s["spec"]["hosts"] for s in services] == [["a.example.com"], ["b.example.com"]]
    assert services[0]["spec"]["http"][0]["timeout"] == "5s"


def test_authorization_policy_targets_its_service_entry():
    policy = load(params(http(http={"methods": ["GET"]}), sources=[{"namespace": "a"}]),
                  "ambient").policy
    (group,) = service_groups(policy)
    owners = rules_by_entry(policy)
    assert list(owners) == ["svc"] and owners["svc"] is policy.rules[0]
    spec = authorization_policy(policy, group, owners)["spec"]
    assert spec["targetRefs"] == [dict(SE_REF, name=group.name)]
    assert spec["rules"] == [{"from": [{"source": {"namespaces": ["a"]}}],
                              "to": [{"operation": {"ports": ["80"], "methods": ["GET"]}}]}]


def test_mode_interface_functions(seed1):
    loaded = load(example("seed-1-http"), "ambient")
    records = ambient_mode.route_records(loaded)
    assert records == seed1["routes"]
    gateway = ambient_mode.gateway_info(loaded)
    assert ambient_mode.route_line(records[0], gateway) == seed1["route_lines"][0]
    assert ambient_mode.hub_title(gateway) == "waypoint %s (namespace istio-egress)" % WAYPOINT
    assert ambient_mode.mesh_text(records[0]) == "HBONE :15008 (Istio mTLS), service port 80"
    key, lines = ambient_mode.hub_node(records[0])
    assert key == (records[0]["entry"], records[0]["service_entry"]["name"])
    assert lines == ["entry %s" % records[0]["entry"],
                     "ServiceEntry %s" % records[0]["service_entry"]["name"]]
    objects, findings = ambient_mode.expand(loaded)
    assert objects == seed1["objects"] and findings.errors == () and findings.warnings == ()
    assert ambient_mode.check(loaded).warnings == loaded.warnings


# ---------------------------------------------------------------------------- tls, wildcards, pools

UPGRADE = {"enabled": True, "port": 443}
WILD = ["www.vendor.example", "*.vendor.example"]


def test_wildcards_need_dynamic_dns_in_ambient_mode():
    assert errors(params(https(hosts=WILD)), "ambient") == [
        "egress_rules[0].to[0].hosts: wildcard *.vendor.example in ambient mode needs "
        "egress_rules[0].to[0].dynamic_dns: true: istiod allocates no address to a wildcard "
        "ServiceEntry unless its resolution is DYNAMIC_DNS, so ztunnel could not send the traffic "
        "to the waypoint (it would leave directly, past the policy)"]
    assert errors(params(http(hosts=WILD, dynamic_dns=True, https_upgrade=UPGRADE)),
                  "ambient") == [
        "egress_rules[0].to[0].https_upgrade: not available with wildcard hosts in ambient mode: "
        "the waypoint's dynamic forward proxy dials the port the workload called; list the names "
        "instead of *.vendor.example, or use sidecar mode"]
    assert warnings(params(https(dynamic_dns=True)), "ambient")[0] == (
        "egress_rules[0].to[0].dynamic_dns: ignored: the entry has no wildcard host")


def test_dynamic_dns_service_entries_hold_the_wildcards_alone():
    objects, = [expand(params(https(hosts=WILD, dynamic_dns=True),
                              http(name="web", hosts=WILD, dynamic_dns=True)), "ambient")[0]]
    entries = [o for o in objects if o["kind"] == "ServiceEntry"]
    assert [(e["spec"]["hosts"], e["spec"]["resolution"]) for e in entries] == [
        (["www.vendor.example"], "DNS"), (["*.vendor.example"], "DYNAMIC_DNS")]
    # DYNAMIC_DNS serves HTTP and TLS: HTTPS passes through as TLS
    assert [(p["number"], p["protocol"]) for p in entries[1]["spec"]["ports"]] == [
        (443, "TLS"), (80, "HTTP")]
    assert entries[1]["metadata"]["labels"]["istio.io/use-waypoint"] == "egressgateway-a-waypoint"
    groups = service_groups(load(params(https(hosts=WILD, dynamic_dns=True)), "ambient").policy)
    assert [(g.hosts, g.dynamic) for g in groups] == [(["www.vendor.example"], False),
                                                      (["*.vendor.example"], True)]
    lines = render(params(https(hosts=WILD, dynamic_dns=True)), "ambient")["route_lines"]
    assert lines[1].endswith("*.vendor.example :443 (TLS passthrough: the application's own TLS, "
                             "SNI of each name under vendor.example)")


def test_dynamic_dns_warnings_name_the_istio_version():
    tls_warning, = [w for w in warnings(params(https(hosts=WILD, dynamic_dns=True)), "ambient")
                    if "DYNAMIC_DNS" in w]
    assert tls_warning.endswith("needs Istio 1.29.1 or later, with istiod's environment variable "
                                "ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS=true (off by "
                                "default)")
    http_warning, = [w for w in warnings(params(http(hosts=WILD, dynamic_dns=True)), "ambient")
                     if "DYNAMIC_DNS" in w]
    assert http_warning.endswith("this needs Istio 1.28 or later")


def test_upstream_rules_carry_tls_and_connection_limits_per_host():
    pool = {"connection_pool": {"tcp": {"max_connections": 10}},
            "outlier_detection": {"consecutive_5xx_errors": 3}}
    data = params(http(hosts=["a.example.com", "b.example.com"], https_upgrade=UPGRADE,
                       tls={"mode": "MUTUAL", "credential_name": "cert"}, traffic_policy=pool),
                  tcp(tls={"mode": "SIMPLE"}), https(name="pooled", hosts=["p.example.com"],
                                                     traffic_policy={"connection_pool": {
                                                         "tcp": {"max_connections": 5}}}))
    rendered = render(data, "ambient")
    rules = dict((o["metadata"]["name"], o["spec"]) for o in rendered["objects"]
                 if o["kind"] == "DestinationRule")
    a = rules["egressgateway-a-svc-tls-" + short_hash("a.example.com", 8)]
    assert a["trafficPolicy"]["portLevelSettings"] == [{
        "port": {"number": 80}, "tls": {"mode": "MUTUAL", "credentialName": "cert",
                                        "sni": "a.example.com",
                                        "subjectAltNames": ["a.example.com"]},
        "connectionPool": {"tcp": {"maxConnections": 10}},
        "outlierDetection": {"consecutive5xxErrors": 3}}]
    assert rules["egressgateway-a-svc-tcp-tls"]["trafficPolicy"]["portLevelSettings"] == [{
        "port": {"number": 5432}, "tls": {"mode": "SIMPLE",
                                          "caCertificates": "/etc/ssl/certs/ca-certificates.crt",
                                          "sni": "db.example.com",
                                          "subjectAltNames": ["db.example.com"]}}]
    # connection limits alone: the DestinationRule is named -upstream
    assert rules["egressgateway-a-pooled-upstream"]["trafficPolicy"]["portLevelSettings"] == [{
        "port": {"number": 443}, "connectionPool": {"tcp": {"maxConnections": 5}}}]
    assert rendered["gateway"]["secrets"] == ["cert"]
    assert rendered["route_lines"][1].endswith(
        "b.example.com :443 (HTTP upgraded: TLS originated at the waypoint (MUTUAL, credential "
        "cert), SNI b.example.com)")
    mutual, = [w for w in rendered["warnings"] if ".tls:" in w]
    assert mutual == (
        "egress_rules[0].to[0].tls: istiod gives the waypoint the client certificate of Secret "
        "istio-egress/cert only when the waypoint's ServiceAccount egressgateway-a-waypoint may "
        "list Secrets there; the egress_gateway role grants it (Role and RoleBinding "
        "egressgateway-a-waypoint-credentials), otherwise grant it yourself")
