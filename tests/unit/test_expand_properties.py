"""Property tests: any input either expands or fails with field-path errors, never anything else.

`make test` runs a few hundred examples per property; the slow suite runs at least 10,000:

    HYPOTHESIS_PROFILE=slow make unit      (or: make test-slow)
"""
import copy
import os
import re
import time

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from ansible.errors import AnsibleFilterError

from ansible_collections.servicemesh.egress.plugins.filter import egress as filters
from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import load_yaml
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import expand, load
from ansible_collections.servicemesh.egress.plugins.module_utils.policy import plain, to_params, to_resource

# Profiles (default, slow; derandomized under CI): tests/conftest.py.

# "path: message", where the path is a dotted field path with optional [index] parts.
ERROR_LINE = re.compile(r"^(?=\S)([A-Za-z_][\w-]*)?((\.[\w./-]+)|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\]]*)\])*: \S")

# ---------------------------------------------------------------------------- strategies

labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
hostnames = st.builds(lambda a, b: "%s.%s" % (a, b), labels, st.sampled_from(["com", "org", "io"]))
odd_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["yes", "no", "80", "0x50", "1e3", "HTTP", "tcp", "", " ", "*", "~",
                     "ü" * 70, "a" * 300, "1.1.1.1", "10.0.0.0/8", "::1", "-1", "65536"]),
)
protocols = st.sampled_from(["HTTP", "HTTPS", "TCP", "http", "Https", "tcp"])
ports = st.one_of(st.integers(min_value=1, max_value=65535),
                  st.sampled_from([80, 443, 8080, 15021, 10000, 20000]))


@st.composite
def good_target(draw, index):
    protocol = draw(protocols)
    entry = {"name": "svc-%d" % index,
             "hosts": draw(st.lists(hostnames, min_size=1, max_size=3, unique=True)),
             "port": {"number": draw(ports), "protocol": protocol}}
    if protocol.upper() == "TCP" and draw(st.booleans()):
        entry["hosts"] = ["192.0.2.%d" % draw(st.integers(1, 254))]
    if draw(st.booleans()):
        entry["gateway_port"] = draw(ports)
    if protocol.upper() == "HTTP" and draw(st.booleans()):
        entry["https_upgrade"] = {"enabled": draw(st.booleans()), "port": draw(ports)}
    return entry


@st.composite
def good_policy(draw):
    count = draw(st.integers(min_value=1, max_value=8))
    targets = [draw(good_target(i)) for i in range(count)]
    rules = []
    while targets:
        take = draw(st.integers(min_value=1, max_value=len(targets)))
        sources = draw(st.lists(
            st.fixed_dictionaries({"namespace": labels},
                                  optional={"workload_selector": st.dictionaries(
                                      labels, labels, min_size=1, max_size=2),
                                      "service_accounts": st.lists(labels, max_size=2)}),
            min_size=1, max_size=3))
        rules.append({"from": sources, "to": targets[:take]})
        targets = targets[take:]
    return {"gateway": draw(labels), "egress_rules": rules}


def mutate(draw, data):
    """Replace, drop or add one value somewhere in the structure."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + (i,))

    walk(data, ())
    path = draw(st.sampled_from(paths[1:] or [()]))
    if not path:
        return draw(odd_scalars)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "replace" or isinstance(parent, list):
        parent[path[-1]] = draw(st.one_of(odd_scalars, st.lists(odd_scalars, max_size=3),
                                          st.dictionaries(st.text(max_size=8), odd_scalars,
                                                          max_size=3)))
    elif action == "drop":
        del parent[path[-1]]
    else:
        parent[draw(st.text(max_size=12))] = draw(odd_scalars)
    return data


@st.composite
def hostile_policy(draw):
    data = draw(good_policy())
    for dummy in range(draw(st.integers(min_value=1, max_value=4))):
        data = mutate(draw, data)
    return data


def entry_count(data):
    try:
        return sum(len(r.get("to") or []) for r in data.get("egress_rules") or [])
    except (AttributeError, TypeError):
        return 0


def check_outcome(data, mode=None):
    """Expand, or fail with a list of field-path errors; nothing else is acceptable."""
    start = time.monotonic()
    try:
        objects, warnings = expand(copy.deepcopy(data), mode)
    except PolicyError as exc:
        assert exc.errors, "a PolicyError must carry at least one error"
        for error in exc.errors:
            assert isinstance(error, str) and ERROR_LINE.match(error), error
            assert len(error) < 2000
        return None
    assert time.monotonic() - start < 5
    assert all(isinstance(w, str) for w in warnings)
    # Output is linear in the input: objects per entry are bounded by the namespaces involved.
    # (Counted on the module-style spelling, whichever spelling the input used.)
    params = data if "egress_rules" in data else plain(to_params(load(copy.deepcopy(data), mode)[0]))
    namespaces = {s["namespace"] for r in params["egress_rules"] for s in r["from"]}
    entries = entry_count(params)
    bound = 8 + entries * (4 + 2 * len(namespaces)) + 2 * len(namespaces) * (1 + entries)
    assert len(objects) <= bound
    return objects


# ---------------------------------------------------------------------------- properties


@given(good_policy())
def test_generated_policies_expand_or_fail_cleanly(data):
    check_outcome(data)


@given(hostile_policy())
def test_hostile_parameters_fail_cleanly(data):
    check_outcome(data)


@given(good_policy())
def test_valid_policies_round_trip(data):
    try:
        policy = load(copy.deepcopy(data))[0]
    except PolicyError:
        assume(False)
    resource = plain(to_resource(policy))
    again = load(copy.deepcopy(resource))[0]
    assert plain(to_resource(again)) == resource
    assert expand(resource)[0] == expand(plain(to_params(again)))[0]


@given(good_policy())
def test_valid_policies_render_parseable_files(data):
    try:
        result, files = render_files(copy.deepcopy(data))
    except PolicyError:
        assume(False)
    assert list(yaml.safe_load_all(files["resources.yaml"])) == result["objects"]


@given(hostile_policy())
def test_filters_raise_only_filter_errors(data):
    for function in (filters.egress_resources, filters.egress_policy, filters.egress_gateway_ports,
                     filters.egress_routes):
        try:
            function(copy.deepcopy(data))
        except AnsibleFilterError as exc:
            assert "invalid egress policy" in str(exc)


EXAMPLE_TEXTS = []
for _name in sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "playbooks",
                                            "examples"))):
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "playbooks", "examples",
                           _name)) as _f:
        EXAMPLE_TEXTS.append(_f.read())
YAML_SNIPPETS = ["yes", "no", "~", "null", "'80'", "0x50", "1e3", "-1", "99999999999999999999",
                 "[", "]", "{", "}", ": ", "- ", "&a", "*a", "!!binary", "\t", "#", "\u00fc" * 5,
                 "egress_rules:", "gateway: x", "\n  ", "\n- ", '"', "'", "...", "---"]


@st.composite
def mutated_text(draw):
    """An example policy file with a few textual edits: spans deleted, lines duplicated,
    YAML fragments inserted. Most are no longer valid; some still are."""
    text = draw(st.sampled_from(EXAMPLE_TEXTS))
    for dummy in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["delete", "insert", "duplicate-line", "swap-case"]))
        if action == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=40)):]
        elif action == "insert":
            piece = draw(st.one_of(st.sampled_from(YAML_SNIPPETS), st.text(max_size=12)))
            text = text[:at] + piece + text[at:]
        elif action == "duplicate-line":
            lines = text.split("\n")
            index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines.insert(index, lines[index])
            text = "\n".join(lines)
        else:
            text = text[:at] + text[at:at + 20].swapcase() + text[at + 20:]
    return text


@given(mutated_text())
def test_mutated_policy_files_fail_cleanly_or_expand(text):
    try:
        data = load_yaml(text, "policy.yaml")
    except PolicyError as exc:
        assert exc.errors and all(e.startswith("policy.yaml: ") for e in exc.errors)
        assert all(len(e) < 2000 for e in exc.errors)
        return
    check_outcome(data)
    check_outcome(data, "ambient")


YAML_ODDITIES = [
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: yes}]\n    to: []\n",
    "gateway: 123\negress_rules: null\n",
    "gateway: egressgateway-a\ngateway: other\negress_rules: []\n",
    "gateway: [a, b]\negress_rules: {a: 1}\n",
    "- just\n- a\n- list\n",
    "42\n",
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: ns}]\n    to:\n      - name: x\n"
    "        hosts: [a.example.com]\n        port: {number: 99999999999999999999999, protocol: TCP}\n",
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: ns}]\n    to:\n      - name: x\n"
    "        hosts: [a.example.com]\n        port: {number: '80', protocol: http, name: 'on'}\n",
    "gateway: \"\\u00fc\\u00fc\"\negress_rules: []\n",
    "a: &x [*x]\n",
    "{{{{\n",
    "---\ngateway: a\n---\ngateway: b\n",
    "gateway: egressgateway-a\negress_rules:\n  - from: [{namespace: " + "n" * 5000 + "}]\n"
    "    to: [{name: x, hosts: [a.b], port: {number: 1, protocol: TCP}}]\n",
]


@pytest.mark.parametrize("text", YAML_ODDITIES)
def test_yaml_oddities_fail_cleanly_or_expand(text):
    try:
        data = load_yaml(text, "policy.yaml")
    except PolicyError as exc:
        assert all(e.startswith("policy.yaml: ") for e in exc.errors)
        return
    check_outcome(data)


def test_huge_numbers_and_long_names_are_errors_not_crashes():
    data = load_yaml(YAML_ODDITIES[6], "p")
    with pytest.raises(PolicyError) as raised:
        load(data)
    assert raised.value.errors == [
        "egress_rules[0].to[0].port.number: must be an integer from 1 to 65535, got "
        "99999999999999999999999"
    ]
