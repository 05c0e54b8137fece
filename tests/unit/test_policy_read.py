"""One test per validation rule of the policy contract, each with its exact message."""
import copy

import pytest

from helpers import errors, example, http, https, params, tcp, warnings

from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.read import (
    is_resource,
    read_identity,
    read_policy,
)

DNS_LABEL_TEXT = ("must be a DNS-1123 label (lower-case letters, digits and '-', starting and "
                  "ending with a letter or digit, at most 63 characters), got ")


# ---------------------------------------------------------------------------- to[].name


def test_entry_name_required():
    entry = http()
    del entry["name"]
    assert errors(params(entry)) == ["egress_rules[0].to[0].name: is required"]


def test_entry_name_must_be_dns_label():
    assert errors(params(http(name="Bad_Name"))) == [
        "egress_rules[0].to[0].name: " + DNS_LABEL_TEXT + "'Bad_Name'"
    ]


def test_entry_name_unique_across_rules():
    data = params(http(name="same", hosts=["a.example.com"]))
    data["egress_rules"].append({"from": [{"namespace": "other"}],
                                 "to": [http(name="same", hosts=["b.example.com"])]})
    assert errors(data) == [
        "egress_rules[1].to[0].name: duplicate name 'same': already used by egress_rules[0].to[0]"
    ]


# ---------------------------------------------------------------------------- to[].hosts


def test_hosts_required_and_non_empty():
    entry = http()
    del entry["hosts"]
    assert errors(params(entry)) == ["egress_rules[0].to[0].hosts: is required"]
    assert errors(params(http(hosts=[]))) == ["egress_rules[0].to[0].hosts: must not be empty"]


def test_host_must_be_valid_dns_name():
    assert errors(params(http(hosts=["bad_host.example.com"]))) == [
        "egress_rules[0].to[0].hosts[0]: 'bad_host.example.com' is not a valid DNS name"
    ]


def test_host_must_be_fully_qualified():
    assert errors(params(http(hosts=["httpbin"]))) == [
        "egress_rules[0].to[0].hosts[0]: 'httpbin' must be a fully qualified name with at least "
        "one dot: Istio reads a short name as a Kubernetes service in the policy's namespace"
    ]


def test_wildcard_host_must_follow_a_concrete_first_host():
    assert errors(params(http(hosts=["*.example.com"]))) == [
        "egress_rules[0].to[0].hosts[0]: wildcard '*.example.com' cannot be an entry's first "
        "host: the gateway dials the first host's address for every name of the entry, so list a "
        "concrete name first (e.g. 'www.example.com')"
    ]
    policy = load(params(http(hosts=["www.example.com", "*.example.com"])))[0]
    (target,) = policy.targets()
    assert target.wildcards == ("*.example.com",)
    assert errors(params(tcp(hosts=["db.example.com", "*.example.com"]))) == [
        "egress_rules[0].to[0].hosts[1]: wildcard '*.example.com' is allowed only on HTTP and "
        "HTTPS entries: the gateway tells their names apart by Host header or SNI, which TCP does "
        "not carry"
    ]


def test_duplicate_host_rejected():
    assert errors(params(http(hosts=["a.example.com", "a.example.com"]))) == [
        "egress_rules[0].to[0].hosts[1]: 'a.example.com' is listed twice"
    ]


@pytest.mark.parametrize("address", ["1.1.1.1", "2001:db8::1", "10.0.0.7/32"])
def test_address_allowed_for_tcp_only(address):
    assert errors(params(tcp(hosts=[address]))) == []
    assert errors(params(http(hosts=[address]))) == [
        "egress_rules[0].to[0].hosts[0]: '%s' is an IP address or CIDR, allowed only for TCP "
        "entries" % address
    ]


def test_wide_cidr_rejected():
    assert errors(params(tcp(hosts=["10.0.0.0/24"]))) == [
        "egress_rules[0].to[0].hosts[0]: CIDR '10.0.0.0/24' covers 256 addresses: the egress "
        "gateway cannot recover which address the workload dialled, so list single addresses"
    ]


def test_tcp_mixing_addresses_and_names_rejected():
    assert errors(params(tcp(hosts=["1.1.1.1", "db.example.com"]))) == [
        "egress_rules[0].to[0].hosts: a TCP entry lists either addresses or names, not both"
    ]


def test_same_host_and_port_in_two_entries_rejected():
    data = params(http(name="one", hosts=["a.example.com"]),
                  http(name="two", hosts=["b.example.com", "a.example.com"]))
    assert errors(data) == [
        "egress_rules[0].to[1].hosts: host a.example.com on port 80 is already routed by "
        "egress_rules[0].to[0] (one): list every source of one external service in a single rule"
    ]


def test_at_most_256_hosts_per_entry():
    hosts = ["h%d.example.com" % i for i in range(257)]
    assert errors(params(http(hosts=hosts))) == [
        "egress_rules[0].to[0].hosts: lists 257 hosts; Istio's ServiceEntry takes at most 256"
    ]
    assert errors(params(http(hosts=hosts[:256]))) == []


def test_several_hosts_warn_about_one_address():
    assert warnings(params(http(hosts=["www.example.com", "example.com"]))) == [
        "egress_rules[0].to[0].hosts: several hosts in one entry are all sent to the address of "
        "the first (www.example.com): they must resolve to the same IP address"
    ]


# ---------------------------------------------------------------------------- port


@pytest.mark.parametrize("number", [0, 70000, -1])
def test_port_number_range(number):
    assert errors(params(http(number=number))) == [
        "egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got %d" % number
    ]


@pytest.mark.parametrize("number, shown", [(True, "True"), ("eighty", "'eighty'"), (8.5, "8.5")])
def test_port_number_type(number, shown):
    assert errors(params(http(number=number))) == [
        "egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got %s" % shown
    ]


def test_port_number_as_digit_string_accepted():
    policy = load(params(http(number="8080")))[0]
    assert next(policy.targets()).port.number == 8080


def test_protocol_any_case_written_upper():
    entry = http()
    entry["port"]["protocol"] = "hTtP"
    policy = load(params(entry))[0]
    assert next(policy.targets()).port.protocol == "HTTP"


def test_protocol_must_be_known():
    entry = http()
    entry["port"]["protocol"] = "GRPC"
    assert errors(params(entry)) == [
        "egress_rules[0].to[0].port.protocol: must be one of HTTP, HTTPS, TCP (any case), "
        "got 'GRPC': use HTTP (gRPC is HTTP/2, routed by Host)"
    ]
    entry["port"]["protocol"] = "tls"
    assert errors(params(entry)) == [
        "egress_rules[0].to[0].port.protocol: must be one of HTTP, HTTPS, TCP (any case), "
        "got 'tls': the application's own TLS is HTTPS here (TLS passes through the gateway by "
        "SNI)"
    ]
    entry["port"]["protocol"] = "QUIC"
    assert errors(params(entry)) == [
        "egress_rules[0].to[0].port.protocol: must be one of HTTP, HTTPS, TCP (any case), "
        "got 'QUIC'"
    ]


def test_a_missing_protocol_is_one_error_not_two():
    entry = http()
    del entry["port"]["protocol"], entry["port"]["name"]
    assert errors(params(entry)) == ["egress_rules[0].to[0].port.protocol: is required"]


@pytest.mark.parametrize("host,error", [
    ("https://api.stripe.com", "'https://api.stripe.com' is a URL, not a host name: write the "
                               "host alone ('api.stripe.com'); the protocol goes in "
                               "port.protocol"),
    ("http://api.stripe.com:8080/x", "'http://api.stripe.com:8080/x' is a URL, not a host name: "
                                     "write the host alone ('api.stripe.com'); the protocol goes "
                                     "in port.protocol"),
    ("api.stripe.com/v1/charges", "'api.stripe.com/v1/charges' holds a path: write the host "
                                  "alone ('api.stripe.com'); to allow only some paths, list them "
                                  "in http.pathPrefixes (module: http.path_prefixes), e.g. "
                                  "'/v1/charges'"),
    ("api.stripe.com:443", "'api.stripe.com:443' holds a port: write the host alone "
                           "('api.stripe.com'); the port goes in port.number"),
])
def test_hosts_written_as_urls_say_how_to_fix_them(host, error):
    assert errors(params(https(hosts=[host]))) == ["egress_rules[0].to[0].hosts[0]: " + error]


def test_host_names_are_written_in_lower_case():
    loaded = load(params(https(hosts=["API.Stripe.com", "Files.Stripe.com"])))
    assert next(loaded.policy.targets()).hosts == ("api.stripe.com", "files.stripe.com")
    assert errors(params(https(hosts=["API.stripe.com", "api.STRIPE.com"]))) == [
        "egress_rules[0].to[0].hosts[1]: 'api.stripe.com' is listed twice"]


def test_a_rejected_policy_carries_its_errors_only():
    # the two hosts would warn (sent to the first one's address), the port is wrong
    with pytest.raises(PolicyError) as exc:
        load(params(http(number=0, hosts=["a.example.com", "b.example.com"])))
    assert exc.value.warnings == [] and len(exc.value.errors) == 1


def test_port_name_required_in_resource():
    data = example("seed-1-http")
    del data["spec"]["egressRules"][0]["to"][0]["port"]["name"]
    assert errors(data) == [
        "spec.egressRules[0].to[0].port.name: is required (ASM requires a port name)"
    ]


def test_port_name_defaulted_from_protocol_in_params():
    entry = tcp()
    del entry["port"]["name"]
    policy = load(params(entry))[0]
    assert next(policy.targets()).port.name == "tcp"


def test_port_name_must_be_dns_label():
    entry = http()
    entry["port"]["name"] = "HTTP_PORT"
    assert errors(params(entry)) == [
        "egress_rules[0].to[0].port.name: must be a DNS-1123 label (Istio's rule for port "
        "names), got 'HTTP_PORT'"
    ]


# ---------------------------------------------------------------------------- httpsUpgrade


def test_upgrade_only_on_http():
    data = params(https(https_upgrade={"enabled": True, "port": 8443}))
    assert errors(data) == [
        "egress_rules[0].to[0].https_upgrade: is allowed only on HTTP entries (this entry's "
        "port.protocol is HTTPS)"
    ]


def test_upgrade_port_required_when_enabled():
    data = example("seed-2-https-upgrade")
    del data["spec"]["egressRules"][0]["to"][0]["httpsUpgrade"]["port"]
    assert errors(data) == [
        "spec.egressRules[0].to[0].httpsUpgrade.port: is required when the upgrade is enabled"
    ]


def test_upgrade_port_range():
    data = params(http(https_upgrade={"enabled": True, "port": 0}))
    assert errors(data) == [
        "egress_rules[0].to[0].https_upgrade.port: must be an integer from 1 to 65535, got 0"
    ]


def test_upgrade_port_must_differ_from_port_number():
    data = params(http(number=443, https_upgrade={"enabled": True, "port": 443}))
    assert errors(data) == [
        "egress_rules[0].to[0].https_upgrade.port: must differ from port.number (443): the "
        "gateway sends HTTPS to the upgrade port"
    ]


def test_upgrade_enabled_required_in_resource():
    data = example("seed-2-https-upgrade")
    del data["spec"]["egressRules"][0]["to"][0]["httpsUpgrade"]["enabled"]
    assert errors(data) == ["spec.egressRules[0].to[0].httpsUpgrade.enabled: is required"]


def test_disabled_upgrade_port_ignored_with_warning():
    data = example("seed-2-https-upgrade")
    data["spec"]["egressRules"][0]["to"][0]["httpsUpgrade"]["enabled"] = False
    loaded = load(data)
    policy, warns = loaded.policy, loaded.warnings
    assert not next(policy.targets()).upgraded
    assert "spec.egressRules[0].to[0].httpsUpgrade.port: ignored because the upgrade is " \
           "disabled" in warns


# ---------------------------------------------------------------------------- gateway ports


def test_gateway_port_range():
    assert errors(params(http(gateway_port=65536))) == [
        "egress_rules[0].to[0].gateway_port: must be an integer from 1 to 65535, got 65536"
    ]


@pytest.mark.parametrize("port", [15000, 15001, 15002, 15004, 15006, 15008, 15020, 15021,
                                  15053, 15090])
def test_gateway_port_not_reserved(port):
    assert errors(params(http(gateway_port=port))) == [
        "egress_rules[0].to[0].gateway_port: port %d is reserved by the Istio proxy (reserved: "
        "15000, 15001, 15002, 15004, 15006, 15008, 15020, 15021, 15053, 15090)" % port
    ]


def test_gateway_port_reserved_in_resource_spelling():
    data = example("seed-1-http")
    data["spec"]["egressRules"][0]["to"][0]["byEgressGateway"]["port"] = 15021
    assert errors(data)[0].startswith("spec.egressRules[0].to[0].byEgressGateway.port: port 15021 "
                                      "is reserved by the Istio proxy")


def test_http_entries_may_share_a_gateway_port():
    data = params(http(name="a", hosts=["a.example.com"], gateway_port=8080),
                  http(name="b", hosts=["b.example.com"], gateway_port=8080))
    assert errors(data) == []


def test_https_entries_may_share_a_gateway_port_with_disjoint_hosts():
    data = params(https(name="a", hosts=["a.example.com"], gateway_port=8443),
                  https(name="b", hosts=["b.example.com"], gateway_port=8443))
    assert errors(data) == []


def test_shared_port_needs_disjoint_hosts():
    data = params(https(name="a", hosts=["a.example.com"], gateway_port=8443),
                  https(name="b", hosts=["a.example.com"], number=8443, gateway_port=8443))
    assert errors(data) == [
        "egress_rules[0].to[1].gateway_port: gateway port 8443 is shared with "
        "egress_rules[0].to[0] and both list host a.example.com: entries sharing a port must "
        "have disjoint hosts"
    ]


def test_tcp_needs_a_gateway_port_of_its_own():
    data = params(tcp(name="a", hosts=["a.example.com"], gateway_port=9000),
                  tcp(name="b", hosts=["b.example.com"], number=5433, gateway_port=9000))
    assert errors(data) == [
        "egress_rules[0].to[1].gateway_port: gateway port 9000 is already used by "
        "egress_rules[0].to[0]: a TCP entry needs a gateway port of its own"
    ]


def test_mixed_protocols_on_one_port_rejected():
    data = params(http(name="a", hosts=["a.example.com"], gateway_port=9000),
                  https(name="b", hosts=["b.example.com"], gateway_port=9000))
    assert errors(data) == [
        "egress_rules[0].to[1].gateway_port: gateway port 9000 is shared by entries of different "
        "protocols: egress_rules[0].to[0] (HTTP) and egress_rules[0].to[1] (HTTPS); only HTTP "
        "entries (routed by Host) or HTTPS entries (routed by SNI) may share a port"
    ]


# ---------------------------------------------------------------------------- from[]


def test_from_namespace_required():
    assert errors(params(http(), sources=[{"workload_selector": {"app": "a"}}])) == [
        "egress_rules[0].from[0].namespace: is required"
    ]


def test_from_namespace_must_be_dns_label():
    assert errors(params(http(), sources=[{"namespace": "My_NS"}])) == [
        "egress_rules[0].from[0].namespace: must be a DNS-1123 label (a Kubernetes namespace "
        "name), got 'My_NS'"
    ]


def test_from_required_and_non_empty():
    data = params(http())
    data["egress_rules"][0]["from"] = []
    assert errors(data) == ["egress_rules[0].from: must not be empty"]


def test_workload_selector_key_must_be_valid():
    data = params(http(), sources=[{"namespace": "mytest", "workload_selector": {"-bad": "x"}}])
    assert errors(data) == [
        "egress_rules[0].from[0].workload_selector: label key '-bad' is invalid (name part: at "
        "most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a "
        "letter or digit)"
    ]


def test_workload_selector_value_must_be_valid():
    data = example("seed-1-http")
    data["spec"]["egressRules"][0]["from"][0]["workloadSelector"] = {"app": "x" * 64}
    assert errors(data) == [
        "spec.egressRules[0].from[0].workloadSelector: label value '%s' is invalid (at most "
        "63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or "
        "digit)" % ("x" * 64)
    ]


def test_workload_selector_prefixed_key_accepted():
    data = params(http(), sources=[{"namespace": "mytest",
                                    "workload_selector": {"app.kubernetes.io/name": "sleep"}}])
    assert errors(data) == []


# ---------------------------------------------------------------------------- the policy


def test_gateway_name_at_most_32_characters():
    assert errors(params(http(), gateway="g" * 33)) == [
        "gateway: must be a DNS-1123 label (lower-case letters, digits and '-', starting and "
        "ending with a letter or digit) of at most 32 characters, got '%s'" % ("g" * 33)
    ]
    assert errors(params(http(), gateway="g" * 32)) == []


def test_resource_name_follows_the_gateway():
    data = example("seed-1-http")
    data["metadata"]["name"] = "something-else"
    assert errors(data) == [
        "metadata.name: must be the gateway name 'egressgateway-a' (or "
        "'egress-by-egressgateway-a', as in ASM's examples): the policy is named after its egress "
        "gateway, got 'something-else'"
    ]


def test_resource_name_defaulted_from_gateway():
    policy = load(params(http()))[0]
    assert policy.name == "egressgateway-a"


def test_namespace_must_be_istio_egress():
    data = example("seed-1-http")
    data["metadata"]["namespace"] = "default"
    assert errors(data) == [
        "metadata.namespace: must be 'istio-egress': the policy lives in the egress gateway's "
        "namespace, got 'default'"
    ]


def test_unknown_fields_named():
    data = params(http(gatway_port=80))
    assert errors(data) == [
        "egress_rules[0].to[0].gatway_port: unknown field (expected one of: name, hosts, port, "
        "gateway_port, https_upgrade, http, tls, traffic_policy, dynamic_dns)"
    ]


def test_rules_required():
    assert errors({"gateway": "egressgateway-a"}) == ["egress_rules: is required"]


def test_every_error_reported_at_once():
    data = example("seed-3-auto-ports")
    to = data["spec"]["egressRules"][0]["to"]
    to[0]["port"]["number"] = 0
    to[1]["hosts"] = ["*.aliyun.com"]
    to[3]["name"] = "TCP"
    data["spec"]["byEgressGateway"]["name"] = "x" * 40
    found = errors(data)
    assert len(found) == 4
    assert [e.split(":")[0] for e in found] == [
        "spec.byEgressGateway.name",
        "spec.egressRules[0].to[0].port.number",
        "spec.egressRules[0].to[1].hosts[0]",
        "spec.egressRules[0].to[3].name",
    ]


def test_not_a_mapping():
    assert errors(["a", "list"]) == [
        "policy: must be a mapping (the ASMEgressTrafficPolicy resource or module parameters), "
        "got a list"
    ]


def test_policy_error_summary_lists_every_error():
    with pytest.raises(PolicyError) as raised:
        load(params(http(number=0), http(name="b", hosts=["x"])))
    text = str(raised.value)
    assert text.startswith("invalid egress policy: 2 errors")
    assert "\n  - egress_rules[0].to[0].port.number" in text
    assert "\n  - egress_rules[0].to[1].hosts[0]" in text


def test_seed_examples_are_valid():
    for name in ("seed-1-http", "seed-2-https-upgrade", "seed-3-auto-ports"):
        assert errors(example(name)) == []


def test_input_not_modified():
    data = example("seed-2-https-upgrade")
    before = copy.deepcopy(data)
    load(data)
    assert data == before


# ---------------------------------------------------------------------------- extensions


def test_l7_rules_only_on_http():
    data = params(https(http={"methods": ["GET"]}))
    assert errors(data) == [
        "egress_rules[0].to[0].http: L7 rules are allowed only on HTTP entries (this entry's "
        "port.protocol is HTTPS: its requests are not visible to the mesh)"
    ]


def test_l7_rule_values_checked():
    data = params(http(http={"methods": ["FETCH"], "path_prefixes": ["api"], "timeout": "10",
                             "retries": {"attempts": -1}}))
    assert errors(data) == [
        "egress_rules[0].to[0].http.methods[0]: must be one of GET, HEAD, POST, PUT, DELETE, "
        "CONNECT, OPTIONS, TRACE, PATCH, got 'FETCH'",
        "egress_rules[0].to[0].http.path_prefixes[0]: must be a path prefix starting with '/' "
        "without '*' or spaces, got 'api'",
        "egress_rules[0].to[0].http.timeout: must be a duration such as 500ms, 10s, 1m or 1h, "
        "got '10'",
        "egress_rules[0].to[0].http.retries.attempts: must be an integer from 0 to 100, got -1",
    ]


def test_a_duration_written_as_a_number_says_which_unit():
    data = params(http(http={"timeout": 10, "retries": {"attempts": 2, "per_try_timeout": 2.5}}))
    assert errors(data) == [
        "egress_rules[0].to[0].http.timeout: must be a duration with its unit such as 500ms, "
        "10s, 1m or 1h, got the number 10 (write 10s for seconds)",
        "egress_rules[0].to[0].http.retries.per_try_timeout: must be a duration with its unit "
        "such as 500ms, 10s, 1m or 1h, got the number 2.5 (write 2.5s for seconds)",
    ]


def test_mode_must_be_known():
    assert errors(params(http(), mode="proxyless")) == [
        "mode: must be one of sidecar, ambient, got 'proxyless'"
    ]


def test_service_accounts_checked():
    data = params(http(), sources=[{"namespace": "mytest", "service_accounts": ["Bad SA"]}])
    assert errors(data) == [
        "egress_rules[0].from[0].service_accounts[0]: must be a service account name (DNS-1123 "
        "subdomain), got 'Bad SA'"
    ]


def test_tcp_by_name_warns_about_dns_proxy():
    found = warnings(params(tcp()))
    assert any(w.startswith("egress_rules[0].to[0].hosts: TCP by host name needs Istio's DNS "
                            "proxy") for w in found)
    assert not any("DNS proxy" in w for w in warnings(params(tcp(hosts=["1.1.1.1"]))))


# ---------------------------------------------------------------------------- the readers


def test_is_resource_tells_the_spellings_apart():
    assert is_resource(example("seed-1-http"))
    assert is_resource({"kind": "ASMEgressTrafficPolicy"})
    assert not is_resource(params(http())) and not is_resource(["spec"])


def test_read_policy_returns_the_model_and_every_finding():
    policy, findings = read_policy(example("seed-2-https-upgrade"))
    assert policy.gateway == "egressgateway-a" and policy.spelling.name == "resource"
    assert findings.errors == ()
    entries = [http(number=0), http(name="b", hosts=["b.example.com"], extra="x")]
    policy, findings = read_policy(params(*entries))
    assert [t.name for t in policy.targets()] == ["b"]  # what could be read, for the next checks
    assert [e.split(":")[0] for e in findings.errors] == [
        "egress_rules[0].to[0].port.number", "egress_rules[0].to[1].extra"]
    policy, findings = read_policy("text")
    assert policy is None and findings.errors == (
        "policy: must be a mapping (the ASMEgressTrafficPolicy resource or module parameters), "
        "got a string",)


def test_read_identity_reads_the_name_alone():
    assert read_identity({"gateway": "egw", "egress_rules": "not read"})[:2] == ("egw", "gateway")
    assert read_identity({"name": "p", "gateway": "egw"})[:2] == ("p", "name")
    name, field, findings = read_identity({"kind": "ASMEgressTrafficPolicy", "spec": {}})
    assert (name, field, findings.errors) == (None, "spec.byEgressGateway.name", ())
    name, field, findings = read_identity({"gateway": "Bad"})
    assert name is None and findings.errors == ("gateway: must be a DNS-1123 label, got 'Bad'",)


# ---------------------------------------------------------------------------- telemetry


def test_telemetry_read_in_both_spellings():
    policy = load(params(http(), telemetry={"access_logging": "Errors", "denied_egress": "yes"}))[0]
    assert (policy.telemetry.access_logging, policy.telemetry.denied_egress) == ("errors", True)
    resource = example("seed-1-http")
    resource["spec"]["telemetry"] = {"accessLogging": "all", "deniedEgress": False}
    policy = load(resource)[0]
    assert (policy.telemetry.logging, policy.telemetry.denied) == ("all", False)
    assert load(params(http()))[0].telemetry is None


def test_telemetry_errors_name_the_field_and_come_all_at_once():
    data = params(http(), telemetry={"access_logging": "verbose", "denied_egress": "maybe",
                                     "tracing": True})
    assert errors(data) == [
        "telemetry.tracing: unknown field (expected one of: access_logging, denied_egress)",
        "telemetry.access_logging: must be one of all, errors, none (any case), got 'verbose'",
        "telemetry.denied_egress: must be a boolean, got 'maybe'",
    ]
    resource = example("seed-1-http")
    resource["spec"]["telemetry"] = {"accessLogging": False, "deniedEgress": 3}
    resource["spec"]["egressRules"][0]["to"][0]["port"]["number"] = 0
    assert errors(resource) == [
        "spec.telemetry.accessLogging: must be one of all, errors, none, got the boolean False "
        "(to log nothing, write none)",
        "spec.telemetry.deniedEgress: must be a boolean, got 3",
        "spec.egressRules[0].to[0].port.number: must be an integer from 1 to 65535, got 0",
    ]


def test_telemetry_must_be_a_mapping():
    assert errors(params(http(), telemetry="errors")) == [
        "telemetry: must be a mapping, got a string"]
    resource = example("seed-1-http")
    resource["spec"]["telemetry"] = ["all"]
    assert errors(resource) == ["spec.telemetry: must be a mapping, got a list"]
