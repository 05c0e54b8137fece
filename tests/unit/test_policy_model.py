"""policy/model.py: the read-only model and the two spellings."""
import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    PARAMS,
    RESOURCE,
    HttpRules,
    HttpsUpgrade,
    Policy,
    Port,
    Retries,
    Rule,
    Source,
    Spelling,
    Target,
    Telemetry,
    Tls,
    TrafficPolicy,
    Waypoint,
    is_address,
    is_wildcard,
)


def test_spellings_name_fields_the_users_way():
    assert isinstance(RESOURCE, Spelling)
    assert RESOURCE.key("gateway_port") == "byEgressGateway.port" and RESOURCE.root == "spec."
    assert PARAMS.key("gateway_port") == "gateway_port" and PARAMS.root == ""
    assert PARAMS.key("hosts") == "hosts"  # unknown logical names stay as they are


def test_is_address():
    assert is_address("192.0.2.1") and is_address("2001:db8::1") and is_address("192.0.2.1/32")
    assert not is_address("example.com") and not is_address("1.1.1")


def target(**extra):
    values = dict(name="e", hosts=["a.example.com"], port=Port("http", 80, "HTTP"))
    values.update(extra)
    return Target(**values)


def test_target_properties():
    plain = target()
    assert (plain.protocol, plain.upgraded, plain.by_address, plain.upstream_port,
            plain.port_class) == ("HTTP", False, False, 80, "HTTP")
    upgraded = target(https_upgrade=HttpsUpgrade(True, 443))
    assert upgraded.upgraded and upgraded.upstream_port == 443
    assert not target(https_upgrade=HttpsUpgrade(False, 443)).upgraded
    db = target(hosts=["192.0.2.1", "192.0.2.2"], port=Port("tcp", 5432, "TCP"))
    assert db.by_address and db.addresses == ("192.0.2.1", "192.0.2.2")
    assert db.port_class == "TCP"


def test_every_model_object_is_read_only():
    http = HttpRules(["GET"], ["/v1"], "5s", Retries(2, "1s", "5xx"))
    source = Source("mytest", {"app": "a"}, ["sa"])
    rule = Rule("r", [source], [target(http=http)])
    policy = Policy("egw", "istio-egress", "egw", [rule], waypoint=Waypoint("w"))
    for obj, attribute in ((http, "methods"), (http.retries, "attempts"), (source, "namespace"),
                           (rule, "targets"), (policy, "gateway"), (policy.waypoint, "name"),
                           (rule.targets[0], "hosts"), (rule.targets[0].port, "number"),
                           (HttpsUpgrade(True, 443), "port")):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(obj, attribute, None)
        with pytest.raises(AttributeError, match="read-only"):
            delattr(obj, attribute)
    assert http.methods == ("GET",) and source.selector_text() == "app=a"
    assert [t.name for t in policy.targets()] == ["e"] and policy.written == {}


def test_telemetry_defaults_and_spellings():
    assert (Telemetry().logging, Telemetry().denied) == ("none", False)
    assert (Telemetry("errors", True).logging, Telemetry("errors", True).denied) == ("errors", True)
    assert Telemetry().access_logging is None and Telemetry().denied_egress is None
    assert RESOURCE.key("access_logging") == "accessLogging"
    assert PARAMS.key("denied_egress") == "denied_egress"
    policy = Policy("egw", "istio-egress", "egw", [])
    assert policy.telemetry is None and policy.observed.logging == "none"
    with pytest.raises(AttributeError, match="read-only"):
        Telemetry().access_logging = "all"


def test_tls_traffic_policy_and_wildcards_of_a_target():
    tls = Tls("MUTUAL", "cert", None, ["a.example.com"])
    assert tls.subject_alt_names == ("a.example.com",)
    with pytest.raises(AttributeError):
        tls.mode = "SIMPLE"
    pool = TrafficPolicy({"tcp": {"maxConnections": 1}})
    assert pool.istio() == {"connectionPool": {"tcp": {"maxConnections": 1}}}
    assert TrafficPolicy(outlier_detection={"interval": "1s"}).istio() == {
        "outlierDetection": {"interval": "1s"}}
    target = Target("e", ["www.example.com", "*.example.com"], Port("tcp", 5432, "TCP"), tls=tls,
                    traffic_policy=pool)
    assert target.wildcards == ("*.example.com",) and target.originates_tls
    assert is_wildcard("*.example.com") and not is_wildcard("example.com")
    assert not Target("p", ["p.io"], Port("http", 80, "HTTP")).originates_tls
