"""importer/origination.py: a DestinationRule's TLS and traffic policy as the entry's tls and
trafficPolicy, or as what an upgrade does by itself."""
from test_importer_objects import obj

from ansible_collections.servicemesh.egress.plugins.module_utils.importer.draft import (
    Draft,
    Ledger,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.importer.origination import (
    default_sni,
    origination,
    traffic_policy,
)

DR = obj("DestinationRule", name="origin")


def draft(hosts=("a.example.com",), protocol="HTTP", mode="sidecar"):
    return Draft(mode, list(hosts), {"name": "p", "number": 80, "protocol": protocol}, "a", DR)


def read(tls, one=None):
    one = one or draft()
    ledger = Ledger()
    mode = origination(tls, one, DR, "spec.trafficPolicy.tls", ledger)
    return mode, one, ledger


def test_the_sni_an_entry_without_tls_sends():
    assert default_sni("sidecar", ["a"]) == "a" and default_sni("sidecar", ["a", "b"]) is None
    assert default_sni("ambient", ["a", "b"]) == "a"


def test_what_an_upgrade_does_by_itself_needs_no_tls():
    assert read({"mode": "SIMPLE", "sni": "a.example.com"})[1].tls is None
    assert read({"mode": "SIMPLE"}, draft(("a.example.com", "b.example.com")))[1].tls is None
    assert read({"mode": "DISABLE"})[0] is None and read({})[0] is None
    # no sni for one host: Istio's automatic SNI and name check, which tls keeps
    assert read({"mode": "SIMPLE"})[1].tls == {"mode": "SIMPLE"}


def test_settings_beyond_an_upgrade_become_tls():
    mode, one, ledger = read({"mode": "MUTUAL", "credentialName": "client", "sni": "x.example",
                              "subjectAltNames": ["x.example"], "caCertificates": "/ca.pem",
                              "insecureSkipVerify": False})
    assert mode == "MUTUAL" and one.tls == {"mode": "MUTUAL", "credentialName": "client",
                                            "sni": "x.example", "subjectAltNames": ["x.example"]}
    assert [(p, w[:30]) for o, p, w, d in ledger.not_carried] == [
        ("spec.trafficPolicy.tls.caCertificates", "the policy verifies the extern")]
    assert one.tls_origin == (DR, "spec.trafficPolicy.tls") and one.differences == []
    mode, one, dummy = read({"mode": "SIMPLE", "sni": "other.example"})
    assert one.tls == {"mode": "SIMPLE", "sni": "other.example"}
    assert [d["what"] for d in one.differences] == ["validation"]


def test_tcp_always_writes_tls_and_what_cannot_be_imported():
    mode, one, dummy = read({"mode": "SIMPLE"}, draft(protocol="TCP"))
    assert one.tls == {"mode": "SIMPLE"} and [d["what"] for d in one.differences] == ["sni"]
    addressed = draft(("192.0.2.1",), "TCP")
    addressed.addressed_host = "db.internal"
    assert "without an sni" in read({"mode": "SIMPLE"}, addressed)[1].skipped[2]
    assert "the host is not part of the mesh" in read({"mode": "ISTIO_MUTUAL"})[1].skipped[2]
    assert "unknown TLS mode" in read({"mode": "FANCY"})[1].skipped[2]
    skipped = read({"mode": "MUTUAL", "clientCertificate": "/c", "privateKey": "/k"})[1].skipped
    assert "MUTUAL without credentialName" in skipped[2]


def test_connection_pool_and_outlier_detection_become_the_traffic_policy():
    rule = obj("DestinationRule", {"trafficPolicy": {
        "loadBalancer": {"simple": "ROUND_ROBIN"},
        "connectionPool": {"tcp": {"maxConnections": 5}},
        "portLevelSettings": [
            {"port": {"number": 443}, "tls": {"mode": "SIMPLE"},
             "connectionPool": {"tcp": {"maxConnections": 9, "maxConnectionDuration": "1h"},
                                "http": {"idleTimeout": "1s", "useClientProtocol": True}},
             "outlierDetection": {"consecutive5xxErrors": 2}},
            {"port": {"number": 80}, "loadBalancer": {}}]}})
    one, ledger = draft(), Ledger()
    traffic_policy(rule, 443, ledger, one)
    assert one.traffic_policy == {"connectionPool": {"tcp": {"maxConnections": 9},
                                                     "http": {"idleTimeout": "1s"}},
                                  "outlierDetection": {"consecutive5xxErrors": 2}}
    assert [p for o, p, w, d in ledger.not_carried] == [
        "spec.trafficPolicy.loadBalancer",
        "spec.trafficPolicy.portLevelSettings[0].connectionPool.tcp.maxConnectionDuration",
        "spec.trafficPolicy.portLevelSettings[0].connectionPool.http.useClientProtocol"]
    other = draft()
    traffic_policy(rule, 8080, Ledger(), other)
    assert other.traffic_policy == {"connectionPool": {"tcp": {"maxConnections": 5}}}
    nothing = draft()
    traffic_policy(obj("DestinationRule"), 443, Ledger(), nothing)
    assert nothing.traffic_policy is None
