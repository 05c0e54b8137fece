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
    upstream_record,
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


def test_upstream_record_and_text_of_originated_tls():
    policy = load(params(
        http(https_upgrade={"enabled": True, "port": 443},
             tls={"mode": "MUTUAL", "credential_name": "partner-cert"}),
        tcp(tls={"mode": "SIMPLE"}), sources=[{"namespace": "ns"}])).policy
    upgraded, wrapped = policy.targets()
    record = upstream_record(upgraded, "up.internal", 443, "example.com", ["example.com"])
    assert record == {"host": "up.internal", "port": 443, "tls": ORIGINATION,
                      "sni": "example.com", "resolves": ["example.com"],
                      "origination": {"mode": "MUTUAL", "credential": "partner-cert"}}
    assert tls_text({"protocol": "HTTP", "host": "example.com", "upstream": record}) == (
        "HTTP upgraded: TLS originated at the gateway (MUTUAL, credential partner-cert), "
        "SNI example.com")
    record = upstream_record(wrapped, "db.internal", 5432, "db.example.com", ["db.example.com"])
    assert tls_text({"protocol": "TCP", "host": "db.example.com", "upstream": record},
                    "waypoint") == "TCP wrapped: TLS originated at the waypoint, SNI db.example.com"


def test_texts_of_wildcard_hosts():
    wildcard = {"host": "*.example.com", "protocol": "HTTPS",
                "upstream": {"tls": PASSTHROUGH, "sni": None}}
    assert tls_text(wildcard) == ("TLS passthrough: the application's own TLS, SNI of each name "
                                  "under example.com")
    upgraded = {"host": "*.example.com", "protocol": "HTTP",
                "upstream": {"tls": ORIGINATION, "sni": "*.example.com"}}
    assert tls_text(upgraded) == ("HTTP upgraded: TLS originated at the gateway, SNI of each name "
                                  "under example.com")
