"""The last hop's settings: to[].tls, to[].trafficPolicy and wildcard hosts, read the way Istio
validates a DestinationRule, every problem with its field path in the user's spelling."""
from decimal import Decimal

import pytest

from helpers import errors, example, http, https, params, tcp, warnings

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import (
    read_policy,
    to_params,
    to_resource,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import FieldReader
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    PARAMS,
    RESOURCE,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.upstream import (
    CONNECTION_POOL_FIELDS,
    HTTP_POOL_FIELDS,
    KEEPALIVE_FIELDS,
    OUTLIER_FIELDS,
    TCP_POOL_FIELDS,
    TRAFFIC_POLICY_FIELDS,
    duration_ms,
    read_tls,
    read_traffic_policy,
    wildcard_problem,
    write_tls,
    write_traffic_policy,
)

UPGRADE = {"enabled": True, "port": 443}


def upgraded(**extra):
    return http(https_upgrade=dict(UPGRADE), **extra)


def target_of(data, mode=None):
    (target,) = load(data, mode).policy.targets()
    return target


# ---------------------------------------------------------------------------- tls


def test_tls_refines_an_upgrade_and_keeps_every_setting():
    tls = target_of(params(upgraded(tls={
        "mode": "mutual", "credential_name": "partner-cert", "sni": "API.Partner.example",
        "subject_alt_names": ["api.partner.example", "spiffe://partner/api"]}))).tls
    assert (tls.mode, tls.credential_name, tls.sni, tls.subject_alt_names) == (
        "MUTUAL", "partner-cert", "api.partner.example",
        ("api.partner.example", "spiffe://partner/api"))


def test_tls_on_tcp_originates_to_the_port_number():
    target = target_of(params(tcp(tls={"mode": "SIMPLE"})))
    assert target.tls.mode == "SIMPLE" and target.originates_tls and not target.upgraded
    assert target.upstream_port == 5432


def test_tls_where_it_cannot_apply():
    assert errors(params(https(tls={"mode": "SIMPLE"}))) == [
        "egress_rules[0].to[0].tls: is not allowed on HTTPS entries: the application's own TLS "
        "passes through the gateway untouched (for TLS the gateway originates, the application "
        "speaks HTTP with httpsUpgrade, or TCP)"]
    assert errors(params(http(tls={"mode": "SIMPLE"}))) == [
        "egress_rules[0].to[0].tls: on an HTTP entry needs https_upgrade enabled: it gives the "
        "port the gateway sends TLS to"]
    disabled = http(https_upgrade={"enabled": False}, tls={"mode": "SIMPLE"})
    assert errors(params(disabled)) == [
        "egress_rules[0].to[0].tls: on an HTTP entry needs https_upgrade enabled: it gives the "
        "port the gateway sends TLS to"]


def test_tls_errors_all_at_once_in_the_resource_spelling():
    data = example("seed-2-https-upgrade")
    entry = data["spec"]["egressRules"][0]["to"][0]
    entry["tls"] = {"mode": "ISTIO_MUTUAL", "credentialName": "kubernetes://ns/cert",
                    "sni": "*.example.com", "subjectAltNames": ["a b"], "caCertificates": "x"}
    path = "spec.egressRules[0].to[0].tls"
    assert errors(data) == [
        path + ".caCertificates: unknown field (expected one of: mode, credentialName, sni, "
               "subjectAltNames)",
        path + ".mode: must be SIMPLE or MUTUAL (any case), got 'ISTIO_MUTUAL': Istio's own "
               "mutual TLS is for services inside the mesh",
        path + ".credentialName: must be the name of a Secret (a DNS-1123 subdomain, without a "
               "kubernetes:// prefix), got 'kubernetes://ns/cert'",
        path + ".sni: an SNI names one server",
        path + ".subjectAltNames[0]: must not contain spaces, got 'a b'",
    ]


def test_mutual_needs_its_secret_and_an_address_entry_needs_an_sni():
    assert errors(params(upgraded(tls={"mode": "MUTUAL"}))) == [
        "egress_rules[0].to[0].tls.credential_name: is required when mode is MUTUAL: name the "
        "Secret holding the client certificate (tls.crt, tls.key) and the CA (ca.crt)"]
    assert errors(params(tcp(hosts=["192.0.2.10"], tls={"mode": "SIMPLE"}))) == [
        "egress_rules[0].to[0].tls.sni: is required on a TCP entry given by address: the gateway "
        "has no host name to send or to check the certificate against"]
    named = {"mode": "SIMPLE", "sni": "db.example.com"}
    assert errors(params(tcp(hosts=["192.0.2.10"], tls=named))) == []
    assert errors(params(upgraded(tls={"mode": "DISABLE"}))) == [
        "egress_rules[0].to[0].tls.mode: must be SIMPLE or MUTUAL (any case), got 'DISABLE': "
        "leave tls out for plain traffic"]
    assert errors(params(upgraded(tls={}))) == ["egress_rules[0].to[0].tls.mode: is required"]


def test_read_and_write_tls_directly():
    reader = FieldReader(RESOURCE)
    tls = read_tls(reader, {"mode": "simple", "credentialName": "ca-only"}, "tls", "TCP",
                   False, False)
    assert reader.errors == [] and tls.mode == "SIMPLE"
    assert write_tls(tls, RESOURCE) == {"mode": "SIMPLE", "credentialName": "ca-only"}
    assert write_tls(tls, PARAMS) == {"mode": "SIMPLE", "credential_name": "ca-only"}
    assert write_tls(None, PARAMS) is None
    assert read_tls(reader, None, "tls", "TCP", False, False) is None


# ---------------------------------------------------------------------------- trafficPolicy

POOL = {
    "connectionPool": {
        "tcp": {"maxConnections": 100, "connectTimeout": "2s",
                "tcpKeepalive": {"probes": 3, "time": "60s", "interval": "10s"}},
        "http": {"http1MaxPendingRequests": 10, "http2MaxRequests": 50,
                 "maxRequestsPerConnection": 5, "maxRetries": 3, "idleTimeout": "30s"}},
    "outlierDetection": {
        "consecutive5xxErrors": 0, "consecutiveGatewayErrors": 5,
        "consecutiveLocalOriginFailures": 4, "splitExternalLocalOriginErrors": True,
        "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 50,
        "minHealthPercent": 20}}


def test_traffic_policy_keeps_istios_names_in_both_spellings():
    data = example("seed-2-https-upgrade")
    data["spec"]["egressRules"][0]["to"][0]["trafficPolicy"] = POOL
    policy = load(data).policy
    target = next(policy.targets())
    assert target.traffic_policy.istio() == POOL
    params_form = to_params(policy)["egress_rules"][0]["to"][0]["traffic_policy"]
    assert params_form == {
        "connection_pool": {
            "tcp": {"max_connections": 100, "connect_timeout": "2s",
                    "tcp_keepalive": {"probes": 3, "time": "60s", "interval": "10s"}},
            "http": {"http1_max_pending_requests": 10, "http2_max_requests": 50,
                     "max_requests_per_connection": 5, "max_retries": 3, "idle_timeout": "30s"}},
        "outlier_detection": {
            "consecutive_5xx_errors": 0, "consecutive_gateway_errors": 5,
            "consecutive_local_origin_failures": 4, "split_external_local_origin_errors": True,
            "interval": "10s", "base_ejection_time": "30s", "max_ejection_percent": 50,
            "min_health_percent": 20}}
    again, findings = read_policy(to_params(policy))
    assert findings.errors == () and to_resource(again) == to_resource(policy)


@pytest.mark.parametrize("field, value, message", [
    ("connectionPool.tcp.maxConnections", 0, "must be at least 1 (0 would mean Istio's default: "
                                             "leave the field out for that)"),
    ("connectionPool.tcp.maxConnections", -1, "must be an integer from 1 to 2147483647, got -1"),
    ("connectionPool.tcp.maxConnections", "many", "must be an integer from 1 to 2147483647, got "
                                                  "'many'"),
    ("connectionPool.http.maxRetries", 2 ** 31, "must be an integer from 1 to 2147483647, got "
                                                "2147483648"),
    ("connectionPool.tcp.connectTimeout", "0.5ms", "must be at least 1ms (Istio's lower bound), "
                                                   "got '0.5ms'"),
    ("connectionPool.tcp.connectTimeout", "1.0005s", "must be a whole number of milliseconds "
                                                     "(Istio supports durations to ms precision), "
                                                     "got '1.0005s'"),
    ("connectionPool.tcp.connectTimeout", 2, "must be a duration with its unit such as 500ms, 10s, "
                                             "1m or 1h, got the number 2 (write 2s for seconds)"),
    ("connectionPool.http.idleTimeout", "soon", "must be a duration such as 500ms, 10s, 1m or 1h, "
                                                "got 'soon'"),
    ("outlierDetection.maxEjectionPercent", 101, "must be an integer from 0 to 100, got 101"),
    ("outlierDetection.minHealthPercent", -5, "must be an integer from 0 to 100, got -5"),
    ("outlierDetection.consecutive5xxErrors", 2 ** 32, "must be an integer from 0 to 4294967295, "
                                                       "got 4294967296"),
    ("outlierDetection.splitExternalLocalOriginErrors", "maybe", "must be a boolean, got "
                                                                 "'maybe'"),
    ("outlierDetection.baseEjectionTime", "0ms", "must be at least 1ms (Istio's lower bound), "
                                                 "got '0ms'"),
])
def test_traffic_policy_values_are_checked_as_istio_does(field, value, message):
    data = example("seed-2-https-upgrade")
    policy = {}
    node = policy
    parts = field.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    data["spec"]["egressRules"][0]["to"][0]["trafficPolicy"] = policy
    assert errors(data) == ["spec.egressRules[0].to[0].trafficPolicy.%s: %s" % (field, message)]


def test_traffic_policy_shape_errors_all_at_once():
    entry = upgraded(traffic_policy={
        "connection_pool": {"tcp": {}, "udp": {"max": 1}},
        "outlier_detection": {"consecutive_local_origin_failures": 3}})
    assert errors(params(entry)) == [
        "egress_rules[0].to[0].traffic_policy.connection_pool.udp: unknown field (expected one "
        "of: tcp, http)",
        "egress_rules[0].to[0].traffic_policy.connection_pool.tcp: must set at least one field "
        "(max_connections, connect_timeout, tcp_keepalive)",
        "egress_rules[0].to[0].traffic_policy.outlier_detection.consecutive_local_origin_failures: "
        "counts only when split_external_local_origin_errors is true (Istio refuses it "
        "otherwise): set split_external_local_origin_errors: true, or leave it out",
    ]
    assert errors(params(upgraded(traffic_policy={}))) == [
        "egress_rules[0].to[0].traffic_policy: must set at least one field (connection_pool, "
        "outlier_detection)"]


def test_http_pool_only_where_http_leaves_the_gateway():
    pool = {"connection_pool": {"http": {"max_retries": 2}}}
    assert errors(params(upgraded(traffic_policy=pool))) == []
    assert errors(params(http(traffic_policy=pool))) == []
    for entry in (https(traffic_policy=pool), tcp(traffic_policy=pool)):
        assert errors(params(entry)) == [
            "egress_rules[0].to[0].traffic_policy.connection_pool.http: applies to HTTP entries "
            "only: this entry's traffic leaves the gateway as TLS or TCP, so use "
            "egress_rules[0].to[0].traffic_policy.connection_pool.tcp"]
    assert errors(params(https(traffic_policy={"connection_pool": {"tcp": {
        "max_connections": 5}}}))) == []


def test_keepalive_in_whole_seconds_is_a_warning():
    entry = tcp(traffic_policy={"connection_pool": {"tcp": {"tcp_keepalive": {"time": "1500ms"}}}})
    assert ("egress_rules[0].to[0].traffic_policy.connection_pool.tcp.tcp_keepalive.time: Envoy "
            "counts TCP keepalive in whole seconds: 1500ms is sent as 1s") in warnings(params(entry))


def test_read_and_write_traffic_policy_directly():
    reader = FieldReader(PARAMS)
    policy = read_traffic_policy(reader, {"outlier_detection": {"interval": "1m"}}, "tp", "TCP")
    assert reader.errors == [] and policy.istio() == {"outlierDetection": {"interval": "1m"}}
    assert write_traffic_policy(policy, RESOURCE) == {"outlierDetection": {"interval": "1m"}}
    assert write_traffic_policy(None, RESOURCE) is None
    assert read_traffic_policy(reader, None, "tp", "TCP") is None


def test_field_tables_name_every_field_in_both_spellings():
    tables = (TRAFFIC_POLICY_FIELDS, CONNECTION_POOL_FIELDS, TCP_POOL_FIELDS, HTTP_POOL_FIELDS,
              KEEPALIVE_FIELDS, OUTLIER_FIELDS)
    for table in tables:
        for json_name, proto_name, dummy in table:
            # Istio's protobuf name is its JSON name in snake_case
            assert proto_name.replace("_", "") == json_name.lower()


@pytest.mark.parametrize("text, ms", [("1ms", 1), ("1.5s", 1500), ("2m", 120000),
                                      ("1h", 3600000), ("0.25ms", Decimal("0.25"))])
def test_duration_ms(text, ms):
    assert duration_ms(text) == ms


# ---------------------------------------------------------------------------- wildcards


def test_wildcard_problem_only_for_a_first_host():
    assert wildcard_problem("*.example.com", 1) is None
    assert wildcard_problem("api.example.com", 0) is None
    assert "cannot be an entry's first host" in wildcard_problem("*.example.com", 0)


def test_wildcard_entries_per_protocol():
    hosts = ["www.example.com", "*.example.com"]
    assert errors(params(http(hosts=hosts))) == []
    assert errors(params(https(hosts=hosts))) == []
    assert errors(params(upgraded(hosts=hosts))) == []
    assert errors(params(http(hosts=["www.example.com", "*"]))) == [
        "egress_rules[0].to[0].hosts[1]: '*' would send every host through this entry: list the "
        "names (a wildcard such as '*.example.com' covers one domain)"]


def test_dynamic_dns_is_read_in_both_spellings():
    target = target_of(params(https(hosts=["www.example.com", "*.example.com"], dynamic_dns=True)),
                       "ambient")
    assert target.dynamic_dns is True
    assert errors(params(https(dynamic_dns="sometimes"))) == [
        "egress_rules[0].to[0].dynamic_dns: must be a boolean, got 'sometimes'"]
