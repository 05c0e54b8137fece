"""Sidecar-mode expansion of the seed examples, checked hop by hop, and its building blocks."""
import copy

import pytest

from helpers import errors, example, http, https, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand, load, render
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    plain,
    read_policy,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes import sidecar as sidecar_mode
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.client import (
    client_objects,
    host_groups,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.gateway import (
    authorization_policies,
    gateway,
    gateway_destination_rules,
    gateway_virtual_service,
    needs_upstream_rule,
    upstream_rule,
    upstream_service_entry,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.hosts import (
    Context,
    client_hosts,
    export_to,
    granted_targets,
    mtls_sni,
    origination_sni,
    sni_suffix,
    source_tag,
    upstream_host,
    upstream_protocol,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.modes.sidecar.selectors import (
    can_select_one_pod,
    selector_overlaps,
    sidecar_listeners,
    sidecar_objects,
    sidecar_plan,
    sidecar_scopes,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.naming import (
    MANAGED_BY_KEY,
    POLICY_KEY,
)

GW = "egressgateway-a.istio-egress.svc.cluster.local"
GW_REF = "istio-egress/egressgateway-a"
POD_LABELS = {"app": "egressgateway-a", "istio": "egressgateway-a"}


def index(objects):
    return {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}


def get(objects, kind, namespace, name):
    return index(objects)[(kind, namespace, name)]["spec"]


def upstream(entry):
    return "%s.egressgateway-a.egress.internal" % entry


@pytest.fixture(scope="module")
def seed1():
    return expand(example("seed-1-http"))[0]


@pytest.fixture(scope="module")
def seed2():
    return expand(example("seed-2-https-upgrade"))[0]


@pytest.fixture(scope="module")
def seed3():
    return render(example("seed-3-auto-ports"))


# ---------------------------------------------------------------------------- seed 1: HTTP


def test_seed1_client_side_routes_port_80_to_gateway_port_80(seed1):
    se = get(seed1, "ServiceEntry", "mytest", "egressgateway-a-httpbin-service-http")
    assert se["hosts"] == ["www.httpbin.org", "httpbin.org"]
    assert se["ports"] == [{"number": 80, "name": "http", "protocol": "HTTP"}]
    assert se["resolution"] == "DNS" and se["location"] == "MESH_EXTERNAL"
    assert se["exportTo"] == ["."]
    vs = get(seed1, "VirtualService", "mytest", "egressgateway-a-httpbin-service-http")
    assert vs["gateways"] == ["mesh"] and vs["exportTo"] == ["."]
    assert vs["http"] == [{
        "name": "httpbin-service-http",
        "match": [{"port": 80}],
        "route": [{"destination": {"host": GW, "subset": "httpbin-service-http",
                                   "port": {"number": 80}}}],
    }]


def test_seed1_sidecar_to_gateway_is_istio_mutual_tls(seed1):
    dr = get(seed1, "DestinationRule", "mytest", "egressgateway-a")
    assert dr["host"] == GW
    assert dr["exportTo"] == ["."]
    assert dr["subsets"] == [{
        "name": "httpbin-service-http",
        "trafficPolicy": {"portLevelSettings": [{
            "port": {"number": 80}, "tls": {"mode": "ISTIO_MUTUAL", "sni": "www.httpbin.org"}}]},
    }]


def test_seed1_gateway_server_and_route_to_host_port_80(seed1):
    gateway = get(seed1, "Gateway", "istio-egress", "egressgateway-a")
    assert gateway["selector"] == POD_LABELS
    assert gateway["servers"] == [{
        "port": {"number": 80, "name": "https-80", "protocol": "HTTPS"},
        "hosts": ["./www.httpbin.org", "./httpbin.org"],
        "tls": {"mode": "ISTIO_MUTUAL"},
    }]
    vs = get(seed1, "VirtualService", "istio-egress", "egressgateway-a-httpbin-service-http")
    assert vs["gateways"] == [GW_REF] and vs["exportTo"] == ["."]
    assert vs["http"][0]["match"] == [{"gateways": [GW_REF], "port": 80}]
    assert vs["http"][0]["route"] == [{"destination": {
        "host": upstream("httpbin-service-http"), "port": {"number": 80}}}]
    se = get(seed1, "ServiceEntry", "istio-egress", "egressgateway-a-httpbin-service-http-upstream")
    assert se == {
        "hosts": [upstream("httpbin-service-http")], "location": "MESH_EXTERNAL",
        "ports": [{"number": 80, "name": "http-80", "protocol": "HTTP"}], "exportTo": ["."],
        "resolution": "DNS", "endpoints": [{"address": "www.httpbin.org"}],
    }


def test_seed1_gateway_admits_only_the_source_namespace(seed1):
    policy = get(seed1, "AuthorizationPolicy", "istio-egress",
                 "egressgateway-a-httpbin-service-http-admission")
    assert policy["selector"] == {"matchLabels": POD_LABELS}
    assert policy["action"] == "ALLOW"
    assert policy["rules"] == [{
        "from": [{"source": {"namespaces": ["mytest"]}}],
        "to": [{"operation": {"ports": ["80"], "hosts": [
            "www.httpbin.org", "www.httpbin.org:*", "httpbin.org", "httpbin.org:*"]}}],
    }]


def test_seed1_selector_scoped_by_sidecars(seed1):
    sidecars = [o for o in seed1 if o["kind"] == "Sidecar"]
    assert len(sidecars) == 2
    default, selected = sidecars
    assert default["metadata"]["namespace"] == selected["metadata"]["namespace"] == "mytest"
    assert "workloadSelector" not in default["spec"]
    assert default["spec"]["egress"] == [{"hosts": ["*/*.svc.cluster.local"]}]
    assert selected["spec"]["workloadSelector"] == {"labels": {"app": "sleep-a"}}
    assert selected["spec"]["egress"] == [
        {"hosts": ["*/*.svc.cluster.local", "./httpbin.org", "./www.httpbin.org"]}]


def test_sidecars_import_hosts_only_on_their_granted_ports():
    # login.example.com: the whole namespace on 8443 (HTTPS), app=a also on 80 (HTTP).
    data = params(https(name="login-tls", hosts=["login.example.com"], number=8443),
                  sources=[{"namespace": "team-a"}])
    data["egress_rules"].append({
        "from": [{"namespace": "team-a", "workload_selector": {"app": "a"}}],
        "to": [http(name="login-http", hosts=["login.example.com"], number=80)]})
    sidecars = {("workloadSelector" in o["spec"]): o["spec"]["egress"]
                for o in expand(data)[0] if o["kind"] == "Sidecar"}
    # The other workloads get login.example.com on 8443 only ...
    assert sidecars[False] == [
        {"port": {"number": 8443, "protocol": "TLS", "name": "tls-8443"},
         "hosts": ["*/*.svc.cluster.local", "./login.example.com"]},
        {"hosts": ["*/*.svc.cluster.local"]},
    ]
    # ... app=a on every port the namespace registers it on.
    assert sidecars[True] == [{"hosts": ["*/*.svc.cluster.local", "./login.example.com"]}]


def test_fully_granted_hosts_on_a_port_listener_port_join_it():
    data = params(http(name="web", hosts=["a.example.com"], number=8080),
                  http(name="api", hosts=["b.example.com"], number=8080),
                  sources=[{"namespace": "team-a"}])
    data["egress_rules"].append({
        "from": [{"namespace": "team-a", "workload_selector": {"app": "x"}}],
        "to": [http(name="admin", hosts=["a.example.com"], number=9090)]})
    default = next(o["spec"]["egress"] for o in expand(data)[0]
                   if o["kind"] == "Sidecar" and "workloadSelector" not in o["spec"])
    assert default == [
        {"port": {"number": 8080, "protocol": "HTTP", "name": "http-8080"},
         "hosts": ["*/*.svc.cluster.local", "./a.example.com", "./b.example.com"]},
        {"hosts": ["*/*.svc.cluster.local", "./b.example.com"]},
    ]


def test_one_protocol_per_sidecar_port_listener():
    data = params(http(name="web", hosts=["a.example.com"], number=8080),
                  tcp(name="db", hosts=["b.example.com"], number=8080),
                  sources=[{"namespace": "team-a"}])
    data["egress_rules"].append({
        "from": [{"namespace": "team-a", "workload_selector": {"app": "x"}}],
        "to": [tcp(name="admin", hosts=["a.example.com"], number=9090)]})
    assert errors(data) == [
        "egress_rules[0].to[1].port.protocol: the workloads of namespace team-a no selector picks "
        "would use port 8080 for web (HTTP) and db (TCP), but the Sidecar that enforces workload "
        "selectors gives a port one protocol"
    ]
    del data["egress_rules"][1]
    assert errors(data) == []


def test_every_object_carries_ownership_labels_and_valid_names(seed1, seed2, seed3):
    for objects in (seed1, seed2, seed3["objects"]):
        names = set()
        for obj in objects:
            labels = obj["metadata"]["labels"]
            assert labels[MANAGED_BY_KEY] == "servicemesh.egress"
            assert labels[POLICY_KEY] == "egress-by-egressgateway-a"
            key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
            assert key not in names
            names.add(key)
            assert len(obj["metadata"]["name"]) <= 253


# ---------------------------------------------------------------------------- seed 2: upgrade


def test_seed2_upgrade_originates_tls_to_443_on_its_own_cluster(seed2):
    vs = get(seed2, "VirtualService", "istio-egress", "egressgateway-a-httpbin-service-http")
    assert vs["http"][0]["match"] == [{"gateways": [GW_REF], "port": 80}]
    assert vs["http"][0]["route"][0]["destination"] == {
        "host": upstream("httpbin-service-http"), "port": {"number": 443}}
    se = get(seed2, "ServiceEntry", "istio-egress", "egressgateway-a-httpbin-service-http-upstream")
    assert se["ports"] == [{"number": 443, "name": "https-443", "protocol": "HTTPS"}]
    assert se["endpoints"] == [{"address": "www.httpbin.org"}]
    dr = get(seed2, "DestinationRule", "istio-egress", "egressgateway-a-httpbin-service-http-upstream")
    # two hosts: no fixed SNI, so each request carries its own host (Istio's auto SNI and SAN)
    assert dr == {"host": upstream("httpbin-service-http"), "exportTo": ["."],
                  "trafficPolicy": {"tls": {"mode": "SIMPLE",
                                            "caCertificates": "/etc/ssl/certs/ca-certificates.crt"}}}


def test_seed2_passthrough_is_not_originated(seed2):
    vs = get(seed2, "VirtualService", "istio-egress", "egressgateway-a-httpbin-service-https")
    assert "http" not in vs
    assert vs["tcp"] == [{"match": [{"gateways": [GW_REF], "port": 444}],
                          "route": [{"destination": {"host": upstream("httpbin-service-https"),
                                                     "port": {"number": 443}}}]}]
    rules = [o for o in seed2 if o["kind"] == "DestinationRule"
             and o["spec"]["host"] == upstream("httpbin-service-https")]
    assert rules == []


def test_seed2_client_side_merges_the_shared_hosts(seed2):
    se = get(seed2, "ServiceEntry", "mytest", "egressgateway-a-httpbin-service-http")
    # the workloads see 80 and 443 of httpbin, never a port the policy does not route
    assert se["ports"] == [{"number": 80, "name": "http", "protocol": "HTTP"},
                           {"number": 443, "name": "https", "protocol": "HTTPS"}]
    vs = get(seed2, "VirtualService", "mytest", "egressgateway-a-httpbin-service-http")
    assert vs["http"][0]["route"][0]["destination"] == {
        "host": GW, "subset": "httpbin-service-http", "port": {"number": 80}}
    assert vs["tls"] == [{
        "match": [{"port": 443, "sniHosts": ["www.httpbin.org", "httpbin.org"]}],
        "route": [{"destination": {"host": GW, "subset": "httpbin-service-https",
                                   "port": {"number": 444}}}],
    }]
    aliyun = get(seed2, "VirtualService", "mytest", "egressgateway-a-aliyun-service-https")
    assert aliyun["tls"][0]["route"][0]["destination"]["port"] == {"number": 445}


def test_seed2_gateway_servers_and_ports(seed2):
    servers = get(seed2, "Gateway", "istio-egress", "egressgateway-a")["servers"]
    assert [(s["port"]["number"], s["port"]["protocol"], s["tls"]["mode"]) for s in servers] == [
        (80, "HTTPS", "ISTIO_MUTUAL"), (444, "TLS", "ISTIO_MUTUAL"), (445, "TLS", "ISTIO_MUTUAL")]
    # HTTPS entries: a server per entry named by its SNI, which also names its sources' tag.
    tag = source_tag(load(example("seed-2-https-upgrade")).policy.rules[1])
    assert servers[2]["hosts"] == ["./aliyun-service-https.%s.egressgateway-a.egress.internal"
                                   % tag]


def test_seed2_each_selector_sees_only_its_rule(seed2):
    sidecars = {o["metadata"]["name"]: o["spec"] for o in seed2 if o["kind"] == "Sidecar"}
    by_app = {s["workloadSelector"]["labels"]["app"]: s["egress"][0]["hosts"]
              for s in sidecars.values() if "workloadSelector" in s}
    assert by_app == {
        "sleep-a": ["*/*.svc.cluster.local", "./httpbin.org", "./www.httpbin.org"],
        "sleep-b": ["*/*.svc.cluster.local", "./www.aliyun.com"],
    }


def test_seed2_authorization_per_http_entry_and_per_source_set(seed2):
    policies = [o for o in seed2 if o["kind"] == "AuthorizationPolicy"]
    # Both rules of seed 2 admit namespace mytest (their selectors are enforced by Sidecars): one
    # source set, one tag for the two HTTPS entries.
    tag = source_tag(load(example("seed-2-https-upgrade")).policy.rules[0])
    assert [o["metadata"]["name"] for o in policies] == [
        "egressgateway-a-httpbin-service-http-admission", "egressgateway-a-%s-sources" % tag]
    http_rule, tls_rule = [r for o in policies for r in o["spec"]["rules"]]
    assert http_rule["to"] == [{"operation": {"ports": ["80"], "hosts": [
        "www.httpbin.org", "www.httpbin.org:*", "httpbin.org", "httpbin.org:*"]}}]
    assert "when" not in http_rule
    assert tls_rule == {"from": [{"source": {"namespaces": ["mytest"]}}], "when": [{
        "key": "connection.sni", "values": ["*.%s.egressgateway-a.egress.internal" % tag]}]}


# ---------------------------------------------------------------------------- seed 3: auto ports


def test_seed3_gateway_service_ports(seed3):
    ports = seed3["gateway"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [
        ("tcp-12278", 12278), ("http-14917", 14917), ("tls-15864", 15864), ("tcp-18525", 18525),
        ("status-port", 15021)]


def test_seed3_tcp_by_address(seed3):
    objects = seed3["objects"]
    se = get(objects, "ServiceEntry", "default", "egressgateway-a-tcp-svc1")
    assert se["hosts"] == [upstream("tcp-svc1")]
    assert se["addresses"] == ["1.1.1.1"]
    assert se["resolution"] == "STATIC"
    vs = get(objects, "VirtualService", "default", "egressgateway-a-tcp-svc1")
    assert vs["tcp"] == [{"match": [{"port": 44, "destinationSubnets": ["1.1.1.1"]}],
                          "route": [{"destination": {"host": GW, "subset": "tcp-svc1",
                                                     "port": {"number": 12278}}}]}]
    upstream_se = get(objects, "ServiceEntry", "istio-egress", "egressgateway-a-tcp-svc1-upstream")
    assert upstream_se["resolution"] == "STATIC"
    assert upstream_se["addresses"] == ["1.1.1.1"]
    assert upstream_se["endpoints"] == [{"address": "1.1.1.1"}]
    assert upstream_se["ports"] == [{"number": 44, "name": "tcp-44", "protocol": "TCP"}]


def test_seed3_route_table(seed3):
    assert seed3["route_lines"] == [
        "default/app=sleep -> sidecar :80 -> gateway egressgateway-a :14917 -> aliyun.com :80 "
        "(plain HTTP)",
        "default/app=sleep -> sidecar :443 -> gateway egressgateway-a :15864 -> aliyun.com :443 "
        "(TLS passthrough: the application's own TLS, SNI aliyun.com)",
        "default/app=sleep -> sidecar :80 -> gateway egressgateway-a :14917 -> taobao.com :443 "
        "(HTTP upgraded: TLS originated at the gateway, SNI taobao.com)",
        "default/app=sleep -> sidecar :44 -> gateway egressgateway-a :12278 -> 1.1.1.1 :44 "
        "(plain TCP)",
        "default/app=sleep -> sidecar :444 -> gateway egressgateway-a :18525 -> test-tcp.com :444 "
        "(plain TCP)",
    ]


# ---------------------------------------------------------------------------- scoping


def test_a_rule_grants_only_its_own_sources():
    data = params(http(name="a", hosts=["a.example.com"]), sources=[{"namespace": "team-a"}])
    data["egress_rules"].append({"from": [{"namespace": "team-b"}],
                                 "to": [https(name="b", hosts=["b.example.com"])]})
    objects = expand(data)[0]
    client = {(o["kind"], o["metadata"]["namespace"], tuple(o["spec"]["hosts"]))
              for o in objects if o["metadata"]["namespace"] in ("team-a", "team-b")
              and o["kind"] != "DestinationRule"}
    assert client == {
        ("ServiceEntry", "team-a", ("a.example.com",)),
        ("VirtualService", "team-a", ("a.example.com",)),
        ("ServiceEntry", "team-b", ("b.example.com",)),
        ("VirtualService", "team-b", ("b.example.com",)),
    }
    rules = [r for o in objects if o["kind"] == "AuthorizationPolicy" for r in o["spec"]["rules"]]
    assert [r["from"] for r in rules] == [[{"source": {"namespaces": ["team-a"]}}],
                                          [{"source": {"namespaces": ["team-b"]}}]]
    # each namespace's DestinationRule of the gateway holds its own entries' subsets only
    for namespace, subset in (("team-a", "a"), ("team-b", "b")):
        dr = get(objects, "DestinationRule", namespace, "egressgateway-a")
        assert dr["exportTo"] == ["."] and [s["name"] for s in dr["subsets"]] == [subset]


def test_service_accounts_become_principals():
    data = params(http(), sources=[{"namespace": "team-a", "service_accounts": ["client"]},
                                   {"namespace": "team-b"}])
    rules = get(expand(data)[0], "AuthorizationPolicy", "istio-egress", "egressgateway-a-svc-admission")["rules"]
    assert rules[0]["from"] == [{"source": {"namespaces": ["team-b"]}},
                                {"source": {"principals": ["*/ns/team-a/sa/client"]}}]


def test_partly_overlapping_hosts_split_into_groups():
    data = params(http(name="one", hosts=["a.example.com", "b.example.com"]),
                  https(name="two", hosts=["b.example.com", "c.example.com"]))
    objects = [o for o in expand(data)[0] if o["metadata"]["namespace"] == "mytest"]
    entries = {tuple(o["spec"]["hosts"]): [p["number"] for p in o["spec"]["ports"]]
               for o in objects if o["kind"] == "ServiceEntry"}
    # a.example.com is never registered on 443, nor c.example.com on 80
    assert entries == {("a.example.com",): [80], ("b.example.com",): [80, 443],
                       ("c.example.com",): [443]}


def test_l7_rules_in_sidecar_mode():
    data = params(http(http={"methods": ["GET", "head"], "path_prefixes": ["/status"],
                             "timeout": "5s",
                             "retries": {"attempts": 3, "per_try_timeout": "2s",
                                         "retry_on": "5xx"}}))
    objects = expand(data)[0]
    route = get(objects, "VirtualService", "mytest", "egressgateway-a-svc")["http"][0]
    assert route["timeout"] == "5s"
    assert route["retries"] == {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"}
    operation = get(objects, "AuthorizationPolicy", "istio-egress",
                    "egressgateway-a-svc-admission")["rules"][0]["to"][0]["operation"]
    assert operation["methods"] == ["GET", "HEAD"]
    assert operation["paths"] == ["/status*"]


def test_port_names_unique_in_merged_service_entry():
    data = params(http(name="one", hosts=["a.example.com"], number=80),
                  http(name="two", hosts=["a.example.com"], number=8080))
    se = get(expand(data)[0], "ServiceEntry", "mytest", "egressgateway-a-one")
    assert [p["name"] for p in se["ports"]] == ["http", "http-8080"]


def test_tcp_by_name(seed3):
    vs = get(seed3["objects"], "VirtualService", "default", "egressgateway-a-tcp-svc2")
    assert vs["tcp"][0]["match"] == [{"port": 444}]
    assert get(seed3["objects"], "ServiceEntry", "default",
               "egressgateway-a-tcp-svc2")["resolution"] == "DNS"


def test_many_entries_stay_within_istio_schema_limits():
    # Istio's AuthorizationPolicy schema allows at most 512 rules per object: one per HTTP entry,
    # one per set of sources for the rest.
    data = params(*[tcp(name="db-%d" % i, hosts=["db%d.example.com" % i]) for i in range(600)]
                  + [http(name="web-%d" % i, hosts=["w%d.example.com" % i], gateway_port=8080)
                     for i in range(600)])
    policies = [o for o in expand(data)[0] if o["kind"] == "AuthorizationPolicy"]
    assert len(policies) == 601
    assert max(len(o["spec"]["rules"]) for o in policies) == 1


def test_no_sidecars_without_selectors():
    objects = expand(params(tcp()))[0]
    assert not [o for o in objects if o["kind"] == "Sidecar"]


def test_apply_order():
    kinds = [o["kind"] for o in expand(example("seed-2-https-upgrade"))[0]]
    order = ["ServiceEntry", "DestinationRule", "Gateway", "VirtualService",
             "AuthorizationPolicy", "Sidecar"]
    assert kinds == sorted(kinds, key=order.index)


# ---------------------------------------------------------------------------- building blocks


def loaded_of(data):
    return load(copy.deepcopy(data))


def test_hosts_of_each_hop():
    loaded = loaded_of(params(http(hosts=["a.example.com", "b.example.com"]),
                              tcp(name="db", hosts=["192.0.2.1"]),
                              sources=[{"namespace": "ns1"}, {"namespace": "ns2"}]))
    policy = loaded.policy
    web, db = policy.targets()
    assert upstream_host(policy, web) == upstream("svc")
    assert client_hosts(policy, web) == ["a.example.com", "b.example.com"]
    assert client_hosts(policy, db) == [upstream("db")]
    tag = source_tag(policy.rules[0])
    assert len(tag) == 8 and sni_suffix(policy, tag) == ".%s.egressgateway-a.egress.internal" % tag
    assert mtls_sni(policy, web) == "a.example.com"
    assert mtls_sni(policy, db) == "db.%s.egressgateway-a.egress.internal" % tag
    assert [upstream_protocol(t) for t in (web, db)] == ["HTTP", "TCP"]
    assert export_to(["ns2", "istio-egress", "ns1", "ns2"]) == [".", "ns1", "ns2"]
    assert {ns: [t.name for t in ts] for ns, ts in granted_targets(policy).items()} == {
        "ns1": ["svc", "db"], "ns2": ["svc", "db"]}
    ctx = Context(loaded)
    assert (ctx.gateway_ref, ctx.gateway_host, ctx.name("x")) == (GW_REF, GW, "egressgateway-a-x")
    assert ctx.meta("n")["namespace"] == "istio-egress"


def test_host_groups_and_client_objects_of_one_namespace():
    loaded = loaded_of(params(http(name="a", hosts=["x.example.com", "y.example.com"]),
                              https(name="b", hosts=["y.example.com"])))
    policy = loaded.policy
    targets = list(policy.targets())
    assert [(hosts, [t.name for t in owners]) for hosts, owners in host_groups(policy, targets)] \
        == [(["x.example.com"], ["a"]), (["y.example.com"], ["a", "b"])]
    objects = client_objects(Context(loaded), "mytest", targets)
    assert [(o["kind"], o["metadata"]["namespace"]) for o in objects] == [
        ("ServiceEntry", "mytest"), ("VirtualService", "mytest")] * 2
    shared = objects[3]["spec"]
    assert set(shared) == {"hosts", "gateways", "exportTo", "http", "tls"}
    assert shared["tls"][0]["match"] == [{"port": 443, "sniHosts": ["y.example.com"]}]


def test_gateway_side_builders_of_an_upgraded_entry():
    loaded = loaded_of(params(http(https_upgrade={"enabled": True, "port": 443},
                                   gateway_port=8080)))
    ctx = Context(loaded)
    (target,) = ctx.policy.targets()
    assert upstream_service_entry(ctx, target)["spec"]["ports"] == [
        {"number": 443, "name": "https-443", "protocol": "HTTPS"}]
    assert upstream_rule(ctx, target)["spec"]["trafficPolicy"]["tls"] == {
        "mode": "SIMPLE", "sni": "example.com", "caCertificates": "/etc/ssl/certs/ca-certificates.crt"}
    assert gateway_virtual_service(ctx, target)["spec"]["http"][0]["match"] == [
        {"gateways": [GW_REF], "port": 8080}]
    assert gateway(ctx)["spec"]["servers"] == [{
        "port": {"number": 8080, "name": "https-8080", "protocol": "HTTPS"},
        "hosts": ["./example.com"], "tls": {"mode": "ISTIO_MUTUAL"}}]
    (rule,) = gateway_destination_rules(ctx, {"mytest": [target]})
    assert rule["metadata"]["namespace"] == "mytest" and rule["spec"]["exportTo"] == ["."]
    assert rule["spec"]["subsets"][0]["trafficPolicy"]["portLevelSettings"][0]["tls"] == {
        "mode": "ISTIO_MUTUAL", "sni": "example.com"}
    (admission,) = authorization_policies(ctx)
    assert admission["spec"]["rules"][0]["to"] == [
        {"operation": {"ports": ["8080"], "hosts": ["example.com", "example.com:*"]}}]


def test_selector_building_blocks():
    data = params(http(name="a", hosts=["a.example.com"]), sources=[
        {"namespace": "mytest", "workload_selector": {"app": "x"}}])
    loaded = loaded_of(data)
    policy = loaded.policy
    scopes = sidecar_scopes(policy)
    assert list(scopes) == ["mytest"]
    whole, selected = scopes["mytest"]
    assert whole == [] and list(selected) == [(("app", "x"),)]
    (target,) = policy.targets()
    listeners, conflicts = sidecar_listeners(policy, [target], {"a.example.com": {80: target}})
    assert conflicts == [] and listeners == [
        {"hosts": ["*/*.svc.cluster.local", "./a.example.com"]}]
    sidecars, errors_found = sidecar_plan(policy)
    assert errors_found == [] and [(ns, sel) for ns, sel, dummy in sidecars] == [
        ("mytest", None), ("mytest", {"app": "x"})]
    objects, found = sidecar_objects(Context(loaded))
    assert [o["metadata"]["name"] for o in objects][0] == "egressgateway-a-default"
    assert found[0].startswith("namespace mytest: workload selectors are enforced by Sidecar")


# ---------------------------------------------------------------------------- overlapping selectors


def two_selectors(first, second, second_namespace="team-a"):
    data = params(http(name="web", hosts=["a.example.com"]),
                  sources=[{"namespace": "team-a", "workload_selector": first}])
    data["egress_rules"].append({"from": [{"namespace": second_namespace,
                                           "workload_selector": second}],
                                 "to": [http(name="api", hosts=["b.example.com"])]})
    return data


def test_can_select_one_pod():
    assert can_select_one_pod({"app": "a"}, {"app": "a", "tier": "t"})
    assert can_select_one_pod({"app": "a"}, {"tier": "t"})  # a pod may carry both labels
    assert not can_select_one_pod({"app": "a"}, {"app": "b", "tier": "t"})
    assert not can_select_one_pod({"app": "a", "tier": "t"}, {"app": "a", "tier": "u"})


def test_selectors_that_can_pick_one_pod_are_refused_naming_both():
    """Istio applies one Sidecar per workload: a pod labelled app=a,tier=t picked by both
    {app: a} and {app: a, tier: t} would silently lose one rule's hosts."""
    data = two_selectors({"app": "a"}, {"app": "a", "tier": "t"})
    assert errors(data) == [
        "egress_rules[1].from[0].workload_selector: picks pods that "
        "egress_rules[0].from[0].workload_selector also picks in namespace team-a (a pod "
        "labelled app=a,tier=t); Istio applies one Sidecar per workload, so such a pod would "
        "lose the hosts of one of them: make the selectors disjoint (a label both name, with "
        "different values) or use one selector"]
    resource = plain(to_resource(read_policy(data)[0]))
    assert errors(resource)[0].startswith(
        "spec.egressRules[1].from[0].workloadSelector: picks pods that "
        "spec.egressRules[0].from[0].workloadSelector also picks in namespace team-a")
    assert selector_overlaps(read_policy(data)[0]) == errors(data)
    # labels that cannot meet, other namespaces, and one selector in two rules are fine
    assert errors(two_selectors({"app": "a"}, {"app": "b", "tier": "t"})) == []
    assert errors(two_selectors({"app": "a"}, {"app": "a", "tier": "t"}, "team-b")) == []
    same = two_selectors({"app": "a"}, {"app": "a"})
    assert errors(same) == []
    (sidecar,) = [o for o in expand(same)[0] if o["kind"] == "Sidecar"
                  and "workloadSelector" in o["spec"]]
    assert sidecar["spec"]["egress"][-1]["hosts"][1:] == ["./a.example.com", "./b.example.com"]
    # ambient mode enforces no selector: nothing to refuse
    assert errors(data, "ambient") == []


def test_mode_interface_functions(seed1):
    loaded = load(example("seed-1-http"))
    rendered = render(example("seed-1-http"))
    records = sidecar_mode.route_records(loaded)
    assert records == rendered["routes"]
    info = sidecar_mode.gateway_info(loaded)
    assert info == rendered["gateway"]
    assert sidecar_mode.route_line(records[0], info) == rendered["route_lines"][0]
    assert sidecar_mode.hub_title(info) == "egress gateway egressgateway-a (namespace istio-egress)"
    assert sidecar_mode.mesh_text(records[0]) == (
        "Istio mTLS (ISTIO_MUTUAL) :%d, SNI %s" % (records[0]["gateway_port"], records[0]["sni"]))
    assert sidecar_mode.hub_node(records[0]) == (records[0]["entry"], [
        "entry %s" % records[0]["entry"], "server :%d" % records[0]["gateway_port"]])
    objects, findings = sidecar_mode.expand(loaded)
    assert objects == seed1
    assert sidecar_mode.check(loaded).errors == ()


# ---------------------------------------------------------------------------- tls, wildcards, pools

UPGRADE = {"enabled": True, "port": 443}
WILD = ["www.vendor.example", "*.vendor.example"]


def test_upstream_rule_merges_tls_and_connection_limits():
    pool = {"connection_pool": {"tcp": {"max_connections": 10}},
            "outlier_detection": {"consecutive_gateway_errors": 2}}
    ctx = Context(loaded_of(params(
        http(https_upgrade=UPGRADE, tls={"mode": "MUTUAL", "credential_name": "cert"},
             traffic_policy=pool),
        https(name="plain", hosts=["p.example.com"]),
        https(name="pooled", hosts=["q.example.com"], traffic_policy={
            "connection_pool": {"tcp": {"max_connections": 3}}}))))
    mutual, plain, pooled = ctx.policy.targets()
    assert [needs_upstream_rule(t) for t in (mutual, plain, pooled)] == [True, False, True]
    assert upstream_rule(ctx, mutual)["spec"] == {
        "host": upstream("svc"), "exportTo": ["."],
        "trafficPolicy": {"tls": {"mode": "MUTUAL", "credentialName": "cert", "sni": "example.com",
                                  "subjectAltNames": ["example.com"]},
                          "connectionPool": {"tcp": {"maxConnections": 10}},
                          "outlierDetection": {"consecutiveGatewayErrors": 2}}}
    assert upstream_rule(ctx, pooled)["spec"]["trafficPolicy"] == {
        "connectionPool": {"tcp": {"maxConnections": 3}}}
    objects = expand(params(http(https_upgrade=UPGRADE,
                                 tls={"mode": "MUTUAL", "credential_name": "cert"})))[0]
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "DestinationRule"]
    assert names == ["egressgateway-a", "egressgateway-a-svc-upstream"]


def test_origination_sni_per_kind_of_entry():
    policy = loaded_of(params(
        http(name="one", https_upgrade=UPGRADE),
        http(name="two", hosts=["a.example.com", "b.example.com"], https_upgrade=UPGRADE),
        http(name="fixed", hosts=["c.example.com", "d.example.com"], https_upgrade=UPGRADE,
             tls={"mode": "SIMPLE", "sni": "front.example.com"}),
        tcp(tls={"mode": "SIMPLE"}))).policy
    one, two, fixed, wrapped = policy.targets()
    assert origination_sni(one, "example.com") == "example.com"
    assert origination_sni(two, "b.example.com") == "b.example.com"
    assert origination_sni(fixed, "d.example.com") == "front.example.com"
    assert origination_sni(wrapped, "db.example.com") == "db.example.com"


def test_wildcards_are_matched_at_the_sidecar_and_the_gateway():
    rendered = render(params(https(hosts=WILD), http(name="web", hosts=WILD)))
    objects = rendered["objects"]
    client = get(objects, "ServiceEntry", "mytest", "egressgateway-a-svc-tls")
    # a wildcard cannot be resolved: the route sends everything to the gateway anyway
    assert client["hosts"] == WILD and client["resolution"] == "NONE"
    vs = get(objects, "VirtualService", "mytest", "egressgateway-a-svc-tls")
    assert vs["tls"][0]["match"][0]["sniHosts"] == WILD
    upstream_se = get(objects, "ServiceEntry", "istio-egress", "egressgateway-a-web-upstream")
    assert upstream_se["endpoints"] == [{"address": "www.vendor.example"}]
    servers = get(objects, "Gateway", "istio-egress", "egressgateway-a")["servers"]
    # HTTP by Host on the shared server; HTTPS by the entry's own mutual-TLS SNI
    assert [s["hosts"] for s in servers] == [
        ["./svc-tls.f5b9d895.egressgateway-a.egress.internal"],
        ["./www.vendor.example", "./*.vendor.example"]]
    admission = get(objects, "AuthorizationPolicy", "istio-egress", "egressgateway-a-web-admission")
    # Istio matches a leading '*' as a suffix of the Host header (no ':*' variant)
    assert admission["rules"][0]["to"][0]["operation"]["hosts"] == [
        "www.vendor.example", "www.vendor.example:*", "*.vendor.example"]
    warning = ("egress_rules[0].to[0].hosts: every name the entry matches, *.vendor.example "
               "included, is sent to the address of its first host www.vendor.example: that "
               "server must serve them all")
    assert warning in rendered["warnings"]


def test_dynamic_dns_is_refused_in_sidecar_mode():
    assert errors(params(https(hosts=WILD, dynamic_dns=True))) == [
        "egress_rules[0].to[0].dynamic_dns: sidecar mode has no DYNAMIC_DNS: Istio's egress "
        "gateways run no dynamic forward proxy (istio/istio#61831), so the gateway serves a "
        "wildcard by the first host's address; remove it, or use ambient mode"]
    assert errors(params(https(hosts=WILD, dynamic_dns=False))) == []


def test_gateway_info_names_the_secrets_to_check():
    info = render(params(tcp(tls={"mode": "MUTUAL", "credential_name": "db-client"})))["gateway"]
    assert info["secrets"] == ["db-client"]
    assert "secrets" not in render(params(tcp()))["gateway"]
