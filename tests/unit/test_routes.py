"""routes.py: what a route record says, and its texts."""
from helpers import http, https, params, tcp

from ansible_collections.servicemesh.egress.plugins.module_utils.expand import load
from ansible_collections.servicemesh.egress.plugins.module_utils.routes import (
    ORIGINATION,
    PASSTHROUGH,
    PLAIN,
    last_hop_tls,
    source_record,
    source_text,
    tls_text,
)


def test_last_hop_tls_of_each_kind_of_entry():
    policy = load(params(http(https_upgrade={"enabled": True, "port": 443}),
                         https(hosts=["b.example.com"]), tcp(), http(name="p", hosts=["p.io"]),
                         sources=[{"namespace": "ns"}])).policy
    assert [last_hop_tls(t) for t in policy.targets()] == [ORIGINATION, PASSTHROUGH, PLAIN,
                                                           PLAIN]


def test_source_record_and_text():
    policy = load(params(http(), sources=[
        {"namespace": "ns", "workload_selector": {"b": "2", "a": "1"}},
        {"namespace": "other", "workload_selector": {"a": "1"}, "service_accounts": ["x"]}])).policy
    first, second = (source_record(s) for s in policy.rules[0].sources)
    assert first == {"namespace": "ns", "workload_selector": {"b": "2", "a": "1"},
                     "service_accounts": []}
    assert source_text(first) == "ns/a=1,b=2"
    assert source_text(first, selector_enforced=False) == "ns/a=1,b=2 (selector not enforced)"
    assert source_text(second, selector_enforced=False) == "other/a=1 (sa: x)"


def test_tls_text():
    record = {"protocol": "HTTP", "host": "h.io",
              "upstream": {"tls": ORIGINATION, "sni": "h.io"}}
    assert tls_text(record, "waypoint") == "HTTP upgraded: TLS originated at the waypoint, SNI h.io"
    record["upstream"]["tls"] = PASSTHROUGH
    assert tls_text(record) == "TLS passthrough: the application's own TLS, SNI h.io"
    record["upstream"]["tls"] = PLAIN
    assert tls_text(record) == "plain HTTP"
    record["protocol"] = "TCP"
    assert tls_text(record) == "plain TCP"
