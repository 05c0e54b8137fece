"""istio.py: the shared Istio facts and object fragments."""
from helpers import http, params

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.istio import (
    RESERVED_PORTS,
    STATUS_PORT,
    authorization_sources,
    http_operation,
    source_principals,
    unique_port_names,
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
