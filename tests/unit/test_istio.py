"""istio.py: the shared Istio facts and object fragments."""
from helpers import http, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    RESERVED_PORTS,
    STATUS_PORT,
    SYSTEM_CA_BUNDLE,
    authorization_sources,
    credential_names,
    http_operation,
    origination_tls,
    source_principals,
    unique_port_names,
    upstream_traffic_policy,
    virtual_service_hosts,
    with_http_settings,
)


def test_the_status_port_is_reserved():
    assert STATUS_PORT in RESERVED_PORTS


def test_unique_port_names_repeat_with_the_number():
    policy = load(params(http(name="a", hosts=["a.example.com"]),
                         http(name="b", hosts=["b.example.com"], number=8080))).policy
    assert unique_port_names(list(policy.targets())) == ["http", "http-8080"]


def test_with_http_settings_adds_only_what_is_set():
    settings = {"timeout": "5s", "retries": {"attempts": 2, "retry_on": "5xx"}}
    policy = load(params(http(http=settings))).policy
    (target,) = policy.targets()
    assert with_http_settings({"name": "r"}, target.http) == {
        "name": "r", "timeout": "5s", "retries": {"attempts": 2, "retryOn": "5xx"}}
    assert with_http_settings({"name": "r"}, None) == {"name": "r"}


def test_sources_namespaces_and_principals():
    policy = load(params(http(http={"methods": ["GET"], "path_prefixes": ["/v1"]}), sources=[
        {"namespace": "b"}, {"namespace": "a"}, {"namespace": "c", "service_accounts": ["x"]}],
    )).policy
    rule = policy.rules[0]
    assert source_principals(rule.sources[2]) == ["*/ns/c/sa/x"]
    assert authorization_sources(rule) == [{"source": {"namespaces": ["a", "b"]}},
                                           {"source": {"principals": ["*/ns/c/sa/x"]}}]
    (target,) = policy.targets()
    assert http_operation(8080, target.http) == {"ports": ["8080"], "methods": ["GET"],
                                                 "paths": ["/v1*"]}
    assert http_operation(443, None) == {"ports": ["443"]}


def _target(**extra):
    return next(load(params(http(**extra))).policy.targets())


UPGRADE = {"enabled": True, "port": 443}


def test_origination_tls_of_a_plain_upgrade_keeps_the_given_sni():
    target = _target(https_upgrade=UPGRADE)
    assert origination_tls(target, "example.com", sni="example.com") == {
        "mode": "SIMPLE", "sni": "example.com", "caCertificates": SYSTEM_CA_BUNDLE}
    # no SNI: Istio's auto SNI and auto SAN validation use each request's host
    assert origination_tls(target, "example.com") == {
        "mode": "SIMPLE", "caCertificates": SYSTEM_CA_BUNDLE}


def test_origination_tls_with_tls_written():
    mutual = _target(https_upgrade=UPGRADE, tls={"mode": "MUTUAL", "credential_name": "cert"})
    # the mode's SNI (the one host the rule serves) when tls.sni is not written, checked too
    assert origination_tls(mutual, "example.com", sni="example.com") == {
        "mode": "MUTUAL", "credentialName": "cert", "sni": "example.com",
        "subjectAltNames": ["example.com"]}
    # none: each request's own host (Istio's auto SNI and auto SAN)
    assert origination_tls(mutual, "example.com") == {"mode": "MUTUAL", "credentialName": "cert"}
    fixed = _target(https_upgrade=UPGRADE, tls={"mode": "SIMPLE", "sni": "api.example.com"})
    # a fixed SNI checks the certificate against it (Istio would check nothing else)
    assert origination_tls(fixed, "example.com") == {
        "mode": "SIMPLE", "caCertificates": SYSTEM_CA_BUNDLE, "sni": "api.example.com",
        "subjectAltNames": ["api.example.com"]}
    named = _target(https_upgrade=UPGRADE, tls={"mode": "SIMPLE", "subject_alt_names": ["x.io"]})
    assert origination_tls(named, "example.com") == {
        "mode": "SIMPLE", "caCertificates": SYSTEM_CA_BUNDLE, "subjectAltNames": ["x.io"]}
    tcp_entry = next(load(params(tcp(tls={"mode": "SIMPLE"}))).policy.targets())
    assert origination_tls(tcp_entry, "db.example.com") == {
        "mode": "SIMPLE", "caCertificates": SYSTEM_CA_BUNDLE, "sni": "db.example.com",
        "subjectAltNames": ["db.example.com"]}


def test_upstream_traffic_policy_and_credential_names():
    pool = {"connection_pool": {"tcp": {"max_connections": 10}}}
    target = _target(https_upgrade=UPGRADE, traffic_policy=pool,
                     tls={"mode": "SIMPLE", "credential_name": "ca"})
    assert upstream_traffic_policy(target, {"mode": "SIMPLE"}) == {
        "tls": {"mode": "SIMPLE"}, "connectionPool": {"tcp": {"maxConnections": 10}}}
    assert upstream_traffic_policy(_target(), None) == {}
    policy = load(params(http(https_upgrade=UPGRADE, tls={"mode": "SIMPLE", "credential_name": "b"}),
                         tcp(tls={"mode": "MUTUAL", "credential_name": "a"}),
                         tcp(name="t2", hosts=["t2.example.com"], number=6379,
                             tls={"mode": "MUTUAL", "credential_name": "a"}))).policy
    assert credential_names(policy) == ["a", "b"]


def test_virtual_service_hosts_leave_out_what_a_wildcard_covers():
    # Istio refuses "duplicate hosts in virtual service" for names that match each other
    assert virtual_service_hosts(["www.cdn.example", "*.cdn.example", "cdn.example"]) == [
        "*.cdn.example", "cdn.example"]
    assert virtual_service_hosts(["a.example", "*.b.a.example", "*.a.example"]) == [
        "a.example", "*.a.example"]
    assert virtual_service_hosts(["a.example", "b.example"]) == ["a.example", "b.example"]
