"""policy/fields.py: the field reader and the validators, message by message."""
import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import (
    FieldReader,
    as_int,
    host_problem,
    is_dns_label,
    is_dns_subdomain,
    key_path,
    label_key_problem,
    label_value_problem,
    show,
    type_name,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import PARAMS


def test_reader_collects_every_problem_with_its_path():
    reader = FieldReader(PARAMS)
    assert reader.mapping([], "a") is None
    assert reader.sequence(None, "b", required=True) is None
    assert reader.string(3, "c") is None
    assert reader.integer("x", "d", 1, 10) is None
    assert reader.port_number(70000, "e") is None
    assert reader.boolean("maybe", "f") is None
    assert reader.boolean("Yes", "g") is True
    reader.known_keys({"good": 1, "odd key": 2}, "h", ("good",))
    assert reader.duration(10, "i") is None
    assert reader.duration("10s", "j") == "10s"
    assert reader.string_map({"k": 1}, "k") == {}
    assert reader.sub("rules[0]", "gateway_port") == "rules[0].gateway_port"
    findings = reader.findings()
    assert findings.errors == (
        "a: must be a mapping, got a list",
        "b: is required",
        "c: must be a string, got an integer",
        "d: must be an integer from 1 to 10, got 'x'",
        "e: must be an integer from 1 to 65535, got 70000",
        "f: must be a boolean, got 'maybe'",
        "h['odd key']: unknown field (expected one of: good)",
        "i: must be a duration with its unit such as 500ms, 10s, 1m or 1h, got the number 10 "
        "(write 10s for seconds)",
        "k: keys and values must be strings ('k')",
    )


def test_string_map_of_labels_checks_keys_and_values():
    reader = FieldReader(PARAMS)
    assert reader.string_map({"app": "a", "bad key!": "x"}, "labels", labels=True) == {"app": "a"}
    assert reader.errors == ["labels: label key 'bad key!' is invalid (name part: at most 63 "
                             "characters of letters, digits, '-', '_' and '.', starting and "
                             "ending with a letter or digit)"]


@pytest.mark.parametrize("value,expected", [(None, "null"), (True, "a boolean"), (1, "an integer"),
                                            (1.5, "a number"), ("", "a string"),
                                            ({}, "a mapping"), ([], "a list")])
def test_type_name(value, expected):
    assert type_name(value) == expected


def test_small_helpers():
    assert key_path("", "a") == "a" and key_path("p", "a-b") == "p.a-b"
    assert key_path("p", 3) == "p[3]"
    assert show("x") == "'x'" and show(5) == "5" and len(show("y" * 200)) == 80
    assert [as_int(v) for v in (5, "42", " 7 ", 3.0, True, "0x5", 2.5)] == [
        5, 42, 7, 3, None, None, None]
    assert is_dns_label("egw-1") and not is_dns_label("Egw") and not is_dns_label("a" * 64)
    assert is_dns_label("a" * 32, 32) and not is_dns_label("a" * 33, 32)
    assert is_dns_subdomain("a.b-c.d") and not is_dns_subdomain("a..b") and not is_dns_subdomain("")


@pytest.mark.parametrize("host,protocol,problem", [
    ("api.example.com", "HTTPS", None),
    ("192.0.2.1", "TCP", None),
    ("192.0.2.1", "HTTP", "'192.0.2.1' is an IP address or CIDR, allowed only for TCP entries"),
    ("10.0.0.0/30", "TCP", "CIDR '10.0.0.0/30' covers 4 addresses: the egress gateway cannot "
                           "recover which address the workload dialled, so list single addresses"),
    ("*.example.com", "HTTPS", None),
    ("*.example.com", "HTTP", None),
    ("*.example.com", "TCP", "wildcard '*.example.com' is allowed only on HTTP and HTTPS entries: "
                             "the gateway tells their names apart by Host header or SNI, which "
                             "TCP does not carry"),
    ("*", "HTTP", "'*' would send every host through this entry: list the names (a wildcard such "
                  "as '*.example.com' covers one domain)"),
    ("api.*.example.com", "HTTP", "'api.*.example.com': '*' is allowed only as the whole leftmost "
                                  "label, as in '*.example.com'"),
    ("*api.example.com", "HTTP", "'*api.example.com': '*' is allowed only as the whole leftmost "
                                 "label, as in '*.example.com'"),
    ("*.*.example.com", "HTTP", "'*.*.example.com': '*' is allowed only as the whole leftmost "
                                "label, as in '*.example.com'"),
    ("*.com", "HTTP", "wildcard '*.com' must be '*.' and a domain with at least one dot, such as "
                      "'*.example.com'"),
    ("localhost", "HTTP", "'localhost' must be a fully qualified name with at least one dot: "
                          "Istio reads a short name as a Kubernetes service in the policy's "
                          "namespace"),
    ("a..b", "HTTP", "'a..b' is not a valid DNS name"),
    ("example.123", "HTTP", "'example.123' is not a valid DNS name (the last label is numeric)"),
])
def test_host_problem(host, protocol, problem):
    assert host_problem(host, protocol) == problem


def test_label_problems():
    assert label_key_problem("app.kubernetes.io/name") is None
    assert label_key_problem("Bad_Prefix/x").startswith("label key 'Bad_Prefix/x' has an invalid")
    assert label_key_problem("") == "label key '' must be a non-empty string"
    assert label_value_problem("ok-1") is None and label_value_problem("") is None
    assert label_value_problem(True) == "label value True must be a string"
    assert label_value_problem("-bad").startswith("label value '-bad' is invalid")
